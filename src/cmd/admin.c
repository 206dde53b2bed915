/* admin.c - `tapbridge admin`: the dispatch table of its sub-commands (admin_image.c: the
 * se image; admin_deploy.c, admin_books.c, admin_vault.c, admin_portal.c: a deployment
 * directory, docs/admin.md) and the helpers they share: hex arguments, locking an image,
 * the deployment's paths, database and private sam.
 * What stays true: every argument is checked before the image is opened, so a bad one
 * leaves the file as it was; key bytes never reach a log line and are wiped (and so are
 * the argv strings they came in) as soon as they are decoded or used. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin_int.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "se/se.h"

int image_lock(int fd)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	return fcntl(fd, F_SETLK, &fl) == 0 ? 0 : TB_E_IO;
}

/* Opens and locks an existing image: exit status 0, or 1 after saying why. */
int adm_open(const char *cmd, const char *path, struct store_file *sf)
{
	if (store_file_open(sf, path) != 0) {
		fprintf(stderr, "tapbridge admin %s: %s: missing, unreadable, or not an se image "
				"(%d bytes)\n", cmd, path, SE_IMAGE_SIZE);
		return 1;
	}
	if (image_lock(sf->fd) != 0) {
		fprintf(stderr, "tapbridge admin %s: %s is in use (a running `tapbridge se`?)\n", cmd,
			path);
		store_file_close(sf);
		return 1;
	}
	return 0;
}

/* Exactly want bytes of hex (want 0: 16, 24 or 32, a key). 0 or 2 after saying why. */
int adm_hex(const char *cmd, const char *what, const char *s, size_t want, uint8_t *out,
	    size_t cap, size_t *len)
{
	size_t n = 0;
	int rc = hex_decode(s, strlen(s), out, cap, &n);

	if (rc == 0 && (want != 0 ? n != want : n != 16 && n != 24 && n != 32))
		rc = TB_E_INVAL;
	if (rc != 0) {
		ct_wipe(out, cap);
		if (want != 0)
			fprintf(stderr, "tapbridge admin %s: %s wants %zu bytes of hex\n", cmd, what,
				want);
		else
			fprintf(stderr, "tapbridge admin %s: %s wants 16, 24 or 32 bytes of hex\n",
				cmd, what);
		return 2;
	}
	*len = n;
	return 0;
}

/* ========================================= the deployment directory (D) === */

int adm_path(char out[ADM_PATH], const char *dir, const char *name)
{
	int n = snprintf(out, ADM_PATH, "%s/%s", dir, name);

	return n > 0 && n < ADM_PATH ? 0 : TB_E_INVAL;
}

int adm_self(char out[ADM_PATH])
{
	ssize_t n = readlink("/proc/self/exe", out, ADM_PATH - 1);

	if (n <= 0)
		return TB_E_IO;
	out[n] = '\0';
	return 0;
}

/* The KEK options of the deployment's sam, one per line in D/sam.kek-args (written by
 * init: `--kek-file PATH`, or `--pkcs11 MODULE --token-label L --pin-file F [--kek-label
 * K]`); a deployment without the file uses D/sam.kek. n: how many were read. */
int adm_kek_args(const char *dir, char args[ADM_KEK_ARGS][ADM_PATH], size_t *n)
{
	char path[ADM_PATH];
	FILE *f;

	*n = 0;
	if (adm_path(path, dir, "sam.kek-args") != 0)
		return TB_E_IO;
	if ((f = fopen(path, "r")) == NULL) {
		snprintf(args[0], ADM_PATH, "--kek-file");
		*n = 2;
		return adm_path(args[1], dir, "sam.kek");
	}
	while (*n < ADM_KEK_ARGS && fgets(args[*n], ADM_PATH, f) != NULL) {
		args[*n][strcspn(args[*n], "\n")] = '\0';
		if (args[*n][0] != '\0')
			(*n)++;
	}
	fclose(f);
	return *n >= 2 ? 0 : TB_E_IO;
}

/* Starts a sam of deployment dir with flag (NULL, "--allow-perso", "--allow-rotate") and
 * connects to it. 0, or 1 after saying why. */
int adm_sam_start(const char *cmd, const char *dir, const char *flag, struct adm_sam *a)
{
	char self[ADM_PATH], keys[ADM_PATH], logp[ADM_PATH], kek[ADM_KEK_ARGS][ADM_PATH];
	char *argv[8 + ADM_KEK_ARGS];
	size_t nkek = 0;
	int i = 0, rc = TB_E_IO;

	a->pid = -1;
	a->c.fd = -1;
	if (adm_self(self) != 0 || adm_path(keys, dir, "sam.keys") != 0 ||
	    adm_kek_args(dir, kek, &nkek) != 0 || adm_path(logp, dir, "admin-sam.log") != 0 ||
	    (size_t)snprintf(a->sock, sizeof(a->sock), "%s/admin-%ld.sock", dir, (long)getpid()) >=
		    sizeof(a->sock))
		goto fail;
	argv[i++] = self;
	argv[i++] = (char *)"sam";
	argv[i++] = (char *)"--socket";
	argv[i++] = a->sock;
	argv[i++] = (char *)"--keys";
	argv[i++] = keys;
	for (size_t k = 0; k < nkek; k++)
		argv[i++] = kek[k];
	if (flag != NULL)
		argv[i++] = (char *)flag;
	argv[i] = NULL;
	a->pid = fork();
	if (a->pid < 0)
		goto fail;
	if (a->pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	for (int t = 0; t < 500; t++) {
		if ((rc = sam_sync_connect(&a->c, a->sock)) == 0)
			return 0;
		if (waitpid(a->pid, NULL, WNOHANG) == a->pid) {
			a->pid = -1;
			break;
		}
		{
			struct timespec ts = { 0, 10000000L };

			nanosleep(&ts, NULL);
		}
	}
fail:
	fprintf(stderr, "tapbridge admin %s: cannot start the sam of %s (see %s/admin-sam.log): %s\n",
		cmd, dir, dir, tb_strerror(rc));
	if (a->pid > 0) {
		kill(a->pid, SIGKILL);
		waitpid(a->pid, NULL, 0);
	}
	a->pid = -1;
	return 1;
}

void adm_sam_stop(struct adm_sam *a)
{
	sam_sync_close(&a->c);
	if (a->pid > 0) {
		kill(a->pid, SIGTERM);
		waitpid(a->pid, NULL, 0);
	}
	a->pid = -1;
}

/* The deployment's database. 0, or 1 after saying why. */
int adm_db(const char *cmd, const char *dir, struct db **db)
{
	char path[ADM_PATH], url[ADM_PATH + 8];
	int rc;

	if (adm_path(path, dir, "srv.db") != 0)
		return 1;
	snprintf(url, sizeof(url), "sqlite:%s", path);
	if ((rc = db_open(url, db)) != 0) {
		fprintf(stderr, "tapbridge admin %s: %s: %s %s\n", cmd, path, tb_strerror(rc),
			db_open_error());
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------- dispatch --- */

struct adm_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static const struct adm_cmd adm_cmds[] = {
	{ "se-init", adm_se_init, "se-init --image FILE --serial HEX         a blank se image" },
	{ "se-keys", adm_se_keys,
	  "se-keys --image FILE --kvn HEX (--enc HEX --mac HEX --dek HEX | --keys-file FILE)\n"
	  "          [--role server|reader]                  writes a key set" },
	{ "se-config", adm_se_config,
	  "se-config --image FILE [--max-balance N] [--lockout N]   wallet limits" },
	{ "se-info", adm_se_info, "se-info --image FILE                      what the image holds (no keys)" },
	{ "init", adm_init, "init --dir DIR [--device-key-len N]       a deployment: sam keys, "
	  "certificate, db" },
	{ "se-register", adm_se_register,
	  "se-register --dir DIR --image FILE --serial HEX   derive and write the se's key sets" },
	{ "reader-register", adm_reader_register,
	  "reader-register --dir DIR --id N [--class N]   a reader and its key file" },
	{ "service-add", adm_service_add,
	  "service-add --dir DIR --id N --kind KIND --name TEXT [--price ITEM=AMOUNT ...]" },
	{ "ledger", adm_ledger, "ledger --dir DIR [--se HEX]               audit and balances" },
	{ "history", adm_history, "history --dir DIR (--se HEX | --reader N)   usage history" },
	{ "rotate", adm_rotate, "rotate --dir DIR [--family 1..5]          a new sam key version" },
	{ "deny-list", adm_deny_list, "deny-list --dir DIR --reader N            signed deny list" },
	{ "se-replace", adm_se_replace,
	  "se-replace --dir DIR --old HEX --new HEX   a lost se: its balance to its replacement" },
	{ "pauth-set", adm_pauth_set,
	  "pauth-set --dir DIR (--se HEX [--attr NAME=VALUE ...] | --class N --visible N1,N2)\n"
	  "          a person's attributes, or what a reader class may see" },
	{ "portal-login", adm_portal_login,
	  "portal-login --dir DIR (--se HEX | --operator) [--ttl S] [--url URL]   a one-time link" },
	{ "portal-code", adm_portal_code,
	  "portal-code --dir DIR --se HEX [--ttl S]  the se's unlock code for the portal" },
};

int cmd_admin(int argc, char **argv)
{
	if (argc >= 2) {
		for (size_t i = 0; i < sizeof(adm_cmds) / sizeof(adm_cmds[0]); i++)
			if (strcmp(argv[1], adm_cmds[i].name) == 0)
				return adm_cmds[i].run(argc - 1, argv + 1);
		fprintf(stderr, "tapbridge admin: unknown command '%s'\n", argv[1]);
	}
	fprintf(stderr, "usage: tapbridge admin COMMAND ...  (the se must not be running on the image)\n");
	for (size_t i = 0; i < sizeof(adm_cmds) / sizeof(adm_cmds[0]); i++)
		fprintf(stderr, "  tapbridge admin %s\n", adm_cmds[i].usage);
	return 2;
}
