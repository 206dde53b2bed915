/* admin.c - `tapbridge admin`: personalisation of an se image that no se is running
 * on (factory and tests): se-init, se-keys, se-config, se-info; and the operator's
 * server-side commands over a deployment directory (docs/admin.md): init, se-register,
 * reader-register, service-add, ledger, history, rotate, deny-list, se-replace, pauth-set, portal-login,
 * portal-code.
 * What stays true: every argument is checked before the image is opened, so a bad one
 * leaves the file as it was; key bytes never reach a log line and are wiped (and so are
 * the argv strings they came in) as soon as they are decoded or used. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "io/db_io.h"
#include "io/portal_io.h"
#include "io/sam_client.h"
#include "io/store_file.h"
#include "io/tls.h"
#include "server/ledger.h"
#include "server/portal.h"
#include "server/proto.h"
#include "server/rules.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "se/se.h"

#define ADM_KEYS_FILE_MAX 4096

static const char *const adm_role_name[] = { "none", "server", "reader", "default" };

int image_lock(int fd)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	return fcntl(fd, F_SETLK, &fl) == 0 ? 0 : TB_E_IO;
}

/* Opens and locks an existing image: exit status 0, or 1 after saying why. */
static int adm_open(const char *cmd, const char *path, struct store_file *sf)
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

/* The image's mirror as the se would load it. */
static int adm_load(struct store_file *sf, struct se_image *img)
{
	struct jnl j;
	int rc;

	jnl_init(&j, &sf->store);
	if ((rc = jnl_recover(&j)) != 0)
		return rc;
	return img_load(&j, img);
}

/* Exactly want bytes of hex (want 0: 16, 24 or 32, a key). 0 or 2 after saying why. */
static int adm_hex(const char *cmd, const char *what, const char *s, size_t want, uint8_t *out,
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

/* -------------------------------------------------------------------- se-init --- */

static int adm_se_init(int argc, char **argv)
{
	const char *image = NULL, *serial_hex = NULL;
	const struct arg_opt opts[] = { { "--image", &image, NULL }, { "--serial", &serial_hex, NULL } };
	uint8_t serial[SE_SERIAL_LEN];
	struct store_file sf;
	size_t n;
	int rc;

	if ((rc = args_parse("admin se-init", argc, argv, opts, 2)) != 0)
		return rc;
	if (image == NULL || serial_hex == NULL) {
		fprintf(stderr, "usage: tapbridge admin se-init --image FILE --serial HEX(8 bytes)\n");
		return 2;
	}
	if ((rc = adm_hex("se-init", "--serial", serial_hex, SE_SERIAL_LEN, serial, sizeof(serial),
			  &n)) != 0)
		return rc;
	if (store_file_create(&sf, image) != 0) {
		fprintf(stderr, "tapbridge admin se-init: cannot create %s: %s\n", image,
			errno == EEXIST ? "it exists (never overwritten)" : strerror(errno));
		return 1;
	}
	if ((rc = se_format(&sf.store, serial)) != 0) {
		store_file_close(&sf);
		(void)unlink(image);
		fprintf(stderr, "tapbridge admin se-init: %s: %s\n", image, tb_strerror(rc));
		return 1;
	}
	store_file_close(&sf);
	printf("se-init: %s: serial %s, factory key set FF, not personalised\n", image, serial_hex);
	return 0;
}

/* -------------------------------------------------------------------- se-keys --- */

struct adm_keys {
	const char *enc, *mac, *dek; /* from argv */
	size_t len[3];
	struct scp_keys k;           /* SECRET */
};

/* Wipes the argv copy of a key so it does not linger in /proc/PID/cmdline. */
static void adm_wipe_arg(const char *s)
{
	if (s != NULL)
		ct_wipe((char *)(uintptr_t)s, strlen(s));
}

/* "enc HEX", "mac HEX", "dek HEX" lines; blank lines and # comments ignored. */
static int adm_keys_file(const char *path, struct adm_keys *a)
{
	static const char *const names[3] = { "enc", "mac", "dek" };
	uint8_t *dst[3] = { a->k.enc, a->k.mac, a->k.dek };
	const char *argk[3] = { a->enc, a->mac, a->dek };
	char buf[ADM_KEYS_FILE_MAX];
	int rc = 2, seen[3] = { 0, 0, 0 };
	FILE *f = fopen(path, "r");

	if (f == NULL) {
		fprintf(stderr, "tapbridge admin se-keys: --keys-file %s: %s\n", path, strerror(errno));
		return 1;
	}
	while (fgets(buf, sizeof(buf), f) != NULL) {
		char *line = buf + strspn(buf, " \t"), *end = line + strcspn(line, "\r\n");
		int k = -1;

		*end = '\0';
		if (*line == '\0' || *line == '#')
			continue;
		for (int i = 0; i < 3; i++)
			if (strncmp(line, names[i], 3) == 0 && (line[3] == ' ' || line[3] == '\t'))
				k = i;
		if (k < 0 || seen[k] || argk[k] != NULL) {
			fprintf(stderr, "tapbridge admin se-keys: --keys-file: %s line '%.3s'\n",
				k < 0 ? "unknown" : "repeated (or also on the command line)", line);
			goto out;
		}
		seen[k] = 1;
		line += 4;
		if (adm_hex("se-keys", names[k], line + strspn(line, " \t"), 0, dst[k], SCP_KEY_MAX,
			    &a->len[k]) != 0)
			goto out;
	}
	rc = 0;
out:
	ct_wipe(buf, sizeof(buf));
	fclose(f);
	return rc;
}

/* The keys from the command line and/or the keys file: all three, one length. */
static int adm_keys_take(const char *keys_file, struct adm_keys *a)
{
	static const char *const flags[3] = { "--enc", "--mac", "--dek" };
	const char *argk[3] = { a->enc, a->mac, a->dek };
	uint8_t *dst[3] = { a->k.enc, a->k.mac, a->k.dek };
	int rc = 0;

	for (int i = 0; i < 3 && rc == 0; i++)
		if (argk[i] != NULL)
			rc = adm_hex("se-keys", flags[i], argk[i], 0, dst[i], SCP_KEY_MAX, &a->len[i]);
	for (int i = 0; i < 3; i++)
		adm_wipe_arg(argk[i]);
	if (rc == 0 && keys_file != NULL)
		rc = adm_keys_file(keys_file, a);
	if (rc != 0)
		return rc;
	for (int i = 0; i < 3; i++) {
		if (a->len[i] == 0) {
			fprintf(stderr, "tapbridge admin se-keys: no %s key (%s or a keys-file line "
					"'%s HEX')\n", flags[i] + 2, flags[i], flags[i] + 2);
			return 2;
		}
	}
	if (a->len[0] != a->len[1] || a->len[1] != a->len[2]) {
		fprintf(stderr, "tapbridge admin se-keys: enc, mac and dek must be the same length\n");
		return 2;
	}
	a->k.len = a->len[0];
	return 0;
}

/* Without --role: a KVN that exists keeps its role; otherwise the first set of an image
 * with no server set is the server's, later ones are readers' (the ISD's PUT KEY rule). */
static uint8_t adm_default_role(const struct se_image *img, uint8_t kvn)
{
	int slot = img_keyset_find(img, kvn);

	if (slot >= 0 && img->ks[slot].role != SE_ROLE_DEFAULT)
		return img->ks[slot].role;
	for (unsigned s = 0; s < SE_KEYSET_MAX; s++)
		if (img->ks[s].present && img->ks[s].role == SE_ROLE_SERVER)
			return SE_ROLE_READER;
	return SE_ROLE_SERVER;
}

static int adm_se_keys_run(const char *image, uint8_t kvn, int role, struct adm_keys *a)
{
	struct store_file sf;
	struct se_image img;
	int rc;

	if ((rc = adm_open("se-keys", image, &sf)) != 0)
		return rc;
	if ((rc = adm_load(&sf, &img)) != 0) {
		fprintf(stderr, "tapbridge admin se-keys: %s: %s\n", image, tb_strerror(rc));
		store_file_close(&sf);
		return 1;
	}
	if (role < 0)
		role = adm_default_role(&img, kvn);
	rc = se_put_keyset(&sf.store, kvn, (enum se_role)role, &a->k);
	store_file_close(&sf);
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin se-keys: %s: key set %02X: %s\n", image, kvn,
			tb_strerror(rc));
		return 1;
	}
	printf("se-keys: %s: key set %02X written (%s, AES-%zu)\n", image, kvn,
	       adm_role_name[role], a->k.len * 8);
	return 0;
}

static int adm_se_keys(int argc, char **argv)
{
	struct adm_keys a;
	const char *image = NULL, *kvn_hex = NULL, *role_s = NULL, *keys_file = NULL;
	const struct arg_opt opts[] = {
		{ "--image", &image, NULL }, { "--kvn", &kvn_hex, NULL },
		{ "--enc", &a.enc, NULL },   { "--mac", &a.mac, NULL },
		{ "--dek", &a.dek, NULL },   { "--role", &role_s, NULL },
		{ "--keys-file", &keys_file, NULL },
	};
	uint8_t kvn = 0;
	size_t n;
	int role = -1, rc;

	memset(&a, 0, sizeof(a));
	if ((rc = args_parse("admin se-keys", argc, argv, opts, sizeof(opts) / sizeof(opts[0]))) != 0)
		goto out;
	rc = 2;
	if (image == NULL || kvn_hex == NULL) {
		fprintf(stderr, "usage: tapbridge admin se-keys --image FILE --kvn HEX "
				"(--enc HEX --mac HEX --dek HEX | --keys-file FILE) [--role server|reader]\n");
		goto out;
	}
	if (adm_hex("se-keys", "--kvn", kvn_hex, 1, &kvn, 1, &n) != 0)
		goto out;
	if (kvn == 0x00 || kvn == SE_DEFAULT_KVN) {
		fprintf(stderr, "tapbridge admin se-keys: --kvn must be 01..FE\n");
		goto out;
	}
	if (role_s != NULL) {
		role = strcmp(role_s, "server") == 0 ? SE_ROLE_SERVER
		       : strcmp(role_s, "reader") == 0 ? SE_ROLE_READER : -2;
		if (role == -2) {
			fprintf(stderr, "tapbridge admin se-keys: --role is server or reader\n");
			goto out;
		}
	}
	if ((rc = adm_keys_take(keys_file, &a)) != 0)
		goto out;
	rc = adm_se_keys_run(image, kvn, role, &a);
out:
	adm_wipe_arg(a.enc);
	adm_wipe_arg(a.mac);
	adm_wipe_arg(a.dek);
	ct_wipe(&a, sizeof(a));
	return rc;
}

/* ------------------------------------------------------------------ se-config --- */

static int adm_se_config(int argc, char **argv)
{
	const char *image = NULL, *max_s = NULL, *lock_s = NULL;
	const struct arg_opt opts[] = { { "--image", &image, NULL },
					{ "--max-balance", &max_s, NULL },
					{ "--lockout", &lock_s, NULL } };
	struct store_file sf;
	struct se_image img;
	uint32_t max = 0, lockout = 0;
	int rc;

	if ((rc = args_parse("admin se-config", argc, argv, opts, 3)) != 0)
		return rc;
	if (image == NULL || (max_s == NULL && lock_s == NULL)) {
		fprintf(stderr, "usage: tapbridge admin se-config --image FILE [--max-balance N] "
				"[--lockout 1..255]\n");
		return 2;
	}
	if ((max_s != NULL && args_u32(max_s, 0, UINT32_MAX, &max) != 0) ||
	    (lock_s != NULL && args_u32(lock_s, 1, 255, &lockout) != 0)) {
		fprintf(stderr, "tapbridge admin se-config: --max-balance 0..%u, --lockout 1..255\n",
			UINT32_MAX);
		return 2;
	}
	if ((rc = adm_open("se-config", image, &sf)) != 0)
		return rc;
	if ((rc = adm_load(&sf, &img)) == 0)
		rc = se_configure(&sf.store, max_s != NULL ? max : img.max_balance,
				  lock_s != NULL ? (uint8_t)lockout : img.lockout_limit);
	store_file_close(&sf);
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin se-config: %s: %s\n", image, tb_strerror(rc));
		return 1;
	}
	printf("se-config: %s: maximum balance %u, lockout after %u failures\n", image,
	       max_s != NULL ? max : img.max_balance,
	       lock_s != NULL ? lockout : (uint32_t)img.lockout_limit);
	return 0;
}

/* -------------------------------------------------------------------- se-info --- */

static int adm_se_info(int argc, char **argv)
{
	const char *image = NULL;
	const struct arg_opt opts[] = { { "--image", &image, NULL } };
	char serial[2 * SE_SERIAL_LEN + 1];
	struct store_file sf;
	struct se_image img;
	int rc;

	if ((rc = args_parse("admin se-info", argc, argv, opts, 1)) != 0)
		return rc;
	if (image == NULL) {
		fprintf(stderr, "usage: tapbridge admin se-info --image FILE\n");
		return 2;
	}
	if ((rc = adm_open("se-info", image, &sf)) != 0)
		return rc;
	rc = adm_load(&sf, &img);
	store_file_close(&sf);
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin se-info: %s: %s\n", image, tb_strerror(rc));
		return 1;
	}
	(void)hex_encode(img.serial, SE_SERIAL_LEN, HEX_PUBLIC, serial, sizeof(serial));
	printf("serial %s\npersonalised %s\nmaximum balance %u\nlockout %u\n", serial,
	       img.personalised ? "yes" : "no", img.max_balance, (unsigned)img.lockout_limit);
	for (unsigned s = 0; s < SE_KEYSET_MAX; s++) {
		const struct se_keyset_meta *k = &img.ks[s];

		if (k->present)
			printf("key set %02X %s AES-%u failures %u%s counter %u\n", k->kvn,
			       adm_role_name[k->role < 4 ? k->role : 0], k->keylen * 8u,
			       (unsigned)k->failures, k->locked ? " LOCKED" : "", k->counter);
	}
	printf("balance %u\ntransactions %u\nwallet %s\n", img.balance, img.tx_counter,
	       img.locked ? "locked" : "unlocked");
	return 0;
}


/* ============================================== server-side administration === */
/* A deployment directory D holds: sam.keys (sealed) and sam.kek (development KEK file),
 * state/ (the server's certificate), srv.db (SQLite), tapbridge.conf (what `tapbridge
 * sam` and `tapbridge server` are to be started with), reader-N.keys (reader key files).
 * Commands that need the sam start their own one on a private socket inside D, with
 * only the capability they need, and stop it before they return. */

#define ADM_PATH 4096
#define ADM_DENY_MAX 48 /* serials in one signed deny list (8 x 48 + 18 <= 512) */

static int adm_path(char out[ADM_PATH], const char *dir, const char *name)
{
	int n = snprintf(out, ADM_PATH, "%s/%s", dir, name);

	return n > 0 && n < ADM_PATH ? 0 : TB_E_INVAL;
}

static int adm_self(char out[ADM_PATH])
{
	ssize_t n = readlink("/proc/self/exe", out, ADM_PATH - 1);

	if (n <= 0)
		return TB_E_IO;
	out[n] = '\0';
	return 0;
}

/* Runs `tapbridge ARGS...` (this binary) and waits: its exit status, or -1. */
static int adm_run_self(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

struct adm_sam {
	pid_t pid;
	char sock[ADM_PATH];
	struct sam_sync c;
};

#define ADM_KEK_ARGS 8

/* The KEK options of the deployment's sam, one per line in D/sam.kek-args (written by
 * init: `--kek-file PATH`, or `--pkcs11 MODULE --token-label L --pin-file F [--kek-label
 * K]`); a deployment without the file uses D/sam.kek. n: how many were read. */
static int adm_kek_args(const char *dir, char args[ADM_KEK_ARGS][ADM_PATH], size_t *n)
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
static int adm_sam_start(const char *cmd, const char *dir, const char *flag, struct adm_sam *a)
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

static void adm_sam_stop(struct adm_sam *a)
{
	sam_sync_close(&a->c);
	if (a->pid > 0) {
		kill(a->pid, SIGTERM);
		waitpid(a->pid, NULL, 0);
	}
	a->pid = -1;
}

/* The deployment's database. 0, or 1 after saying why. */
static int adm_db(const char *cmd, const char *dir, struct db **db)
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

/* ----------------------------------------------------------------------- init --- */

static int adm_init(int argc, char **argv)
{
	const char *dir = NULL, *keylen = "16", *module = NULL, *token = NULL, *pin = NULL;
	const char *label = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--device-key-len", &keylen, NULL },
					{ "--pkcs11", &module, NULL }, { "--token-label", &token, NULL },
					{ "--pin-file", &pin, NULL }, { "--kek-label", &label, NULL } };
	char self[ADM_PATH], keys[ADM_PATH], kek[ADM_PATH], state[ADM_PATH], conf[ADM_PATH];
	char sock[ADM_PATH], dbp[ADM_PATH], why[512], hex[TLS_FPR_HEX_LEN], kargs[ADM_PATH];
	char kekline[4 * ADM_PATH];
	uint8_t fpr[TLS_FPR_LEN];
	struct tls_server *tls = NULL;
	struct db *db = NULL;
	int rc, created = 0;
	FILE *f;

	if ((rc = args_parse("admin init", argc, argv, opts, 6)) != 0)
		return rc;
	if (dir == NULL || (module != NULL) != (token != NULL) || (module != NULL) != (pin != NULL) ||
	    (label != NULL && module == NULL)) {
		fprintf(stderr, "usage: tapbridge admin init --dir DIR [--device-key-len 16|24|32]\n"
				"         [--pkcs11 MODULE --token-label LABEL --pin-file FILE "
				"[--kek-label LABEL]]\n");
		return 2;
	}
	if (mkdir(dir, 0700) != 0) {
		fprintf(stderr, "tapbridge admin init: %s: %s\n", dir,
			errno == EEXIST ? "exists (a deployment is never overwritten)" : strerror(errno));
		return 1;
	}
	if (adm_self(self) != 0 || adm_path(keys, dir, "sam.keys") != 0 ||
	    adm_path(kek, dir, "sam.kek") != 0 || adm_path(state, dir, "state") != 0 ||
	    adm_path(conf, dir, "tapbridge.conf") != 0 || adm_path(sock, dir, "sam.sock") != 0 ||
	    adm_path(dbp, dir, "srv.db") != 0 || adm_path(kargs, dir, "sam.kek-args") != 0)
		return 1;
	/* The KEK options every later sam of this deployment is started with. */
	if (module != NULL)
		snprintf(kekline, sizeof(kekline), "--pkcs11\n%s\n--token-label\n%s\n--pin-file\n%s\n%s%s%s",
			 module, token, pin, label != NULL ? "--kek-label\n" : "",
			 label != NULL ? label : "", label != NULL ? "\n" : "");
	else
		snprintf(kekline, sizeof(kekline), "--kek-file\n%s\n", kek);
	if ((f = fopen(kargs, "w")) == NULL || fputs(kekline, f) < 0 || fclose(f) != 0) {
		fprintf(stderr, "tapbridge admin init: %s: %s\n", kargs, strerror(errno));
		return 1;
	}
	{
		char kk[ADM_KEK_ARGS][ADM_PATH];
		char *sam_argv[8 + ADM_KEK_ARGS];
		size_t nk = 0;
		int j = 0;

		if (adm_kek_args(dir, kk, &nk) != 0)
			return 1;
		sam_argv[j++] = self;
		sam_argv[j++] = (char *)"sam";
		sam_argv[j++] = (char *)"--init";
		sam_argv[j++] = (char *)"--keys";
		sam_argv[j++] = keys;
		for (size_t k = 0; k < nk; k++)
			sam_argv[j++] = kk[k];
		sam_argv[j++] = (char *)"--device-key-len";
		sam_argv[j++] = (char *)keylen;
		sam_argv[j] = NULL;
		if (adm_run_self(sam_argv) != 0) {
			fprintf(stderr, "tapbridge admin init: `tapbridge sam --init` failed\n");
			return 1;
		}
	}
	if (mkdir(state, 0700) != 0 || tls_server_open(state, &tls, &created, why, sizeof(why)) != 0) {
		fprintf(stderr, "tapbridge admin init: %s: certificate: %s\n", state, why);
		return 1;
	}
	tls_server_fingerprint(tls, fpr);
	(void)tls_fpr_hex(fpr, hex);
	tls_server_free(tls);
	if (adm_db("init", dir, &db) != 0)
		return 1;
	db_close(db);
	f = fopen(conf, "w");
	if (f == NULL) {
		fprintf(stderr, "tapbridge admin init: %s: %s\n", conf, strerror(errno));
		return 1;
	}
	for (char *p = kekline; (p = strchr(p, '\n')) != NULL;)
		*p = ' ';
	fprintf(f, "# tapbridge deployment (made by `tapbridge admin init`)\n"
		   "sam: tapbridge sam --socket %s --keys %s %s\n"
		   "server: tapbridge server --state %s --db sqlite:%s --sam %s\n"
		   "fingerprint SHA256:%s\n", sock, keys, kekline, state, dbp, sock, hex);
	if (fclose(f) != 0)
		return 1;
	printf("init: %s: sam keys, certificate, database, %s\nfingerprint SHA256:%s\n", dir, conf,
	       hex);
	if (module == NULL)
		printf("WARNING: the KEK is a development file (%s); use --pkcs11 with a token in "
		       "production\n", kek);
	else
		printf("init: the KEK is in the PKCS#11 token '%s' (%s)\n", token, module);
	return 0;
}

/* ------------------------------------------------------------ se-register --- */

/* DERIVE_DEVICE_KEYS for role at serial into k (and *kvn). */
static int adm_derive(struct adm_sam *a, uint8_t role, const uint8_t serial[SAM_SERIAL_LEN],
		      struct scp_keys *k, uint8_t *kvn)
{
	uint8_t body[16], reply[128];
	struct wr w = wr_init(body, sizeof(body));
	size_t rn = 0, kl;
	int rc = sam_enc_derive(&w, role, 0, serial);

	if (rc == 0)
		rc = sam_sync_call(&a->c, SAM_DERIVE_DEVICE_KEYS, body, w.len, reply, sizeof(reply), &rn);
	if (rc == 0 && (rn < 3 || (kl = reply[2]) > SCP_KEY_MAX || rn != 3 + 3 * kl))
		rc = TB_E_SAM_PROTO;
	if (rc == 0) {
		memset(k, 0, sizeof(*k));
		k->len = kl;
		memcpy(k->enc, reply + 3, kl);
		memcpy(k->mac, reply + 3 + kl, kl);
		memcpy(k->dek, reply + 3 + 2 * kl, kl);
		*kvn = reply[1];
	}
	ct_wipe(reply, sizeof(reply));
	return rc;
}

/* TERMINAL_KEY of the current se-reader version: out = kvn(1) keylen(1) key(32). */
static int adm_terminal_key(struct adm_sam *a, uint8_t out[2 + SAM_KEY_LEN])
{
	uint8_t body[1] = { 0 }, reply[2 + SAM_KEY_LEN + 8];
	size_t rn = 0;
	int rc = sam_sync_call(&a->c, SAM_TERMINAL_KEY, body, sizeof(body), reply, sizeof(reply),
			       &rn);

	if (rc == 0 && rn != 2 + SAM_KEY_LEN)
		rc = TB_E_SAM_PROTO;
	if (rc == 0)
		memcpy(out, reply, 2 + SAM_KEY_LEN);
	ct_wipe(reply, sizeof(reply));
	return rc;
}

static int adm_se_register(int argc, char **argv)
{
	const char *dir = NULL, *image = NULL, *serial_hex = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--image", &image, NULL },
					{ "--serial", &serial_hex, NULL } };
	uint8_t serial[SE_SERIAL_LEN], kvn_s = 0, kvn_r = 0;
	struct scp_keys ks, kr;
	struct store_file sf;
	struct adm_sam a;
	struct db *db = NULL;
	struct db_se se;
	size_t n;
	int rc, fresh = 0;

	if ((rc = args_parse("admin se-register", argc, argv, opts, 3)) != 0)
		return rc;
	if (dir == NULL || image == NULL || serial_hex == NULL) {
		fprintf(stderr, "usage: tapbridge admin se-register --dir DIR --image FILE --serial HEX\n");
		return 2;
	}
	if ((rc = adm_hex("se-register", "--serial", serial_hex, SE_SERIAL_LEN, serial,
			  sizeof(serial), &n)) != 0)
		return rc;
	if (adm_db("se-register", dir, &db) != 0)
		return 1;
	if (adm_sam_start("se-register", dir, "--allow-perso", &a) != 0) {
		db_close(db);
		return 1;
	}
	rc = adm_derive(&a, SAM_FAM_SE_SERVER, serial, &ks, &kvn_s);
	if (rc == 0)
		rc = adm_derive(&a, SAM_FAM_SE_READER, serial, &kr, &kvn_r);
	adm_sam_stop(&a);
	if (rc == 0) {
		if (store_file_create(&sf, image) == 0)
			fresh = 1;
		else if (adm_open("se-register", image, &sf) != 0)
			rc = TB_E_IO;
	}
	if (rc == 0) {
		if (fresh)
			rc = se_format(&sf.store, serial);
		if (rc == 0)
			rc = se_put_keyset(&sf.store, kvn_s, SE_ROLE_SERVER, &ks);
		if (rc == 0)
			rc = se_put_keyset(&sf.store, kvn_r, SE_ROLE_READER, &kr);
		store_file_close(&sf);
		if (rc != 0 && fresh)
			(void)unlink(image);
	}
	ct_wipe(&ks, sizeof(ks));
	ct_wipe(&kr, sizeof(kr));
	if (rc == 0) {
		memset(&se, 0, sizeof(se));
		memcpy(se.serial, serial, sizeof(se.serial));
		se.state = DB_SE_ACTIVE;
		se.created = se.changed = (int64_t)time(NULL);
		rc = db->ops->se_add(db, &se);
	}
	db_close(db);
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin se-register: %s: %s\n", serial_hex, tb_strerror(rc));
		return 1;
	}
	printf("se-register: %s: server key set %02X, reader key set %02X written to %s; "
	       "registered\n", serial_hex, kvn_s, kvn_r, image);
	return 0;
}

/* -------------------------------------------------------- reader-register --- */

static int adm_reader_register(int argc, char **argv)
{
	const char *dir = NULL, *id_s = NULL, *class_s = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--id", &id_s, NULL },
					{ "--class", &class_s, NULL } };
	uint8_t serial[SAM_SERIAL_LEN] = { 0 }, kvn = 0;
	uint8_t term[2 + SAM_KEY_LEN], pub[SAM_PUB_LEN];
	char path[ADM_PATH], name[48];
	uint32_t id = 0, cls = 0;
	struct scp_keys k;
	struct db_reader r;
	struct adm_sam a;
	struct db *db = NULL;
	FILE *f;
	int rc, fd;

	if ((rc = args_parse("admin reader-register", argc, argv, opts, 3)) != 0)
		return rc;
	if (dir == NULL || id_s == NULL || args_u32(id_s, 1, UINT32_MAX, &id) != 0 ||
	    (class_s != NULL && args_u32(class_s, 0, UINT32_MAX, &cls) != 0)) {
		fprintf(stderr, "usage: tapbridge admin reader-register --dir DIR --id N [--class N]\n");
		return 2;
	}
	/* A reader's diversification input: 00 00 00 00 || id. */
	serial[4] = (uint8_t)(id >> 24);
	serial[5] = (uint8_t)(id >> 16);
	serial[6] = (uint8_t)(id >> 8);
	serial[7] = (uint8_t)id;
	snprintf(name, sizeof(name), "reader-%u.keys", id);
	if (adm_path(path, dir, name) != 0 || adm_db("reader-register", dir, &db) != 0)
		return 1;
	if (adm_sam_start("reader-register", dir, "--allow-perso", &a) != 0) {
		db_close(db);
		return 1;
	}
	rc = adm_derive(&a, SAM_FAM_READER_SERVER, serial, &k, &kvn);
	if (rc == 0)
		rc = adm_terminal_key(&a, term);
	memcpy(pub, a.c.hello.pub, sizeof(pub));
	adm_sam_stop(&a);
	if (rc == 0) {
		memset(&r, 0, sizeof(r));
		r.id = id;
		r.key_version = kvn;
		r.reader_class = cls;
		r.state = DB_READER_ACTIVE;
		rc = db->ops->reader_add(db, &r);
	}
	db_close(db);
	if (rc == 0 && ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)) < 0 ||
			(f = fdopen(fd, "w")) == NULL))
		rc = TB_E_IO;
	if (rc == 0) {
		/* The reader's key file, in se-keys' --keys-file format. */
		const uint8_t *parts[3] = { k.enc, k.mac, k.dek };
		static const char *const names[3] = { "enc", "mac", "dek" };

		fprintf(f, "# reader %u, key set %02X (reader <-> server)\n", id, kvn);
		for (int i = 0; i < 3; i++) {
			fprintf(f, "%s ", names[i]);
			for (size_t j = 0; j < k.len; j++)
				fprintf(f, "%02X", parts[i][j]);
			fputc('\n', f);
		}
		fprintf(f, "id %u\nkvn %02X\nterminal ", id, kvn);
		for (size_t j = 0; j < SAM_KEY_LEN; j++)
			fprintf(f, "%02X", term[2 + j]);
		fprintf(f, "\nterminal-kvn %02X\nterminal-keylen %u\nflag-pub ", term[0], term[1]);
		for (size_t j = 0; j < sizeof(pub); j++)
			fprintf(f, "%02X", pub[j]);
		fputc('\n', f);
		if (fclose(f) != 0)
			rc = TB_E_IO;
	}
	ct_wipe(&k, sizeof(k));
	ct_wipe(term, sizeof(term));
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin reader-register: reader %u: %s\n", id, tb_strerror(rc));
		return 1;
	}
	printf("reader-register: reader %u, key set %02X, keys in %s\n", id, kvn, path);
	return 0;
}

/* ------------------------------------------------------------- service-add --- */

static const char *const adm_kind_name[] = { "", "personal-auth", "e-money", "e-commerce",
					     "ticket" };

static int adm_service_add(int argc, char **argv)
{
	const char *dir = NULL, *id_s = NULL, *kind_s = NULL, *name = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--id", &id_s, NULL },
					{ "--kind", &kind_s, NULL }, { "--name", &name, NULL } };
	char *rest[32];
	struct db_service sv;
	struct db *db = NULL;
	int nrest = 0, rc;
	uint32_t id = 0;

	memset(&sv, 0, sizeof(sv));
	/* --price may repeat: taken out here, the rest goes through args_parse. */
	for (int i = 0; i < argc; i++) {
		unsigned item, price;
		char tail;

		if (i > 0 && strcmp(argv[i], "--price") == 0) {
			if (i + 1 >= argc || sv.n_prices >= DB_PRICES_MAX ||
			    sscanf(argv[i + 1], "%u=%u%c", &item, &price, &tail) != 2) {
				fprintf(stderr, "tapbridge admin service-add: --price ITEM=AMOUNT (at most "
						"%d)\n", DB_PRICES_MAX);
				return 2;
			}
			sv.prices[sv.n_prices].item = item;
			sv.prices[sv.n_prices].price = price;
			sv.n_prices++;
			i++;
			continue;
		}
		if (nrest >= (int)(sizeof(rest) / sizeof(rest[0])) - 1)
			return 2;
		rest[nrest++] = argv[i];
	}
	rest[nrest] = NULL;
	if ((rc = args_parse("admin service-add", nrest, rest, opts, 4)) != 0)
		return rc;
	for (uint8_t k = 1; kind_s != NULL && k <= 4; k++)
		if (strcmp(kind_s, adm_kind_name[k]) == 0)
			sv.kind = k;
	if (dir == NULL || id_s == NULL || args_u32(id_s, 1, UINT32_MAX, &id) != 0 || sv.kind == 0 ||
	    name == NULL || strlen(name) == 0 || strlen(name) >= DB_NAME_MAX ||
	    !proto_text_ok((const uint8_t *)name, strlen(name))) {
		fprintf(stderr, "usage: tapbridge admin service-add --dir DIR --id N --kind "
				"e-money|ticket|personal-auth|e-commerce --name TEXT [--price ITEM=AMOUNT ...]\n"
				"  e-money: item 1 is the amount of a top-up from the phone\n");
		return 2;
	}
	sv.id = id;
	memcpy(sv.name, name, strlen(name) + 1);
	if (adm_db("service-add", dir, &db) != 0)
		return 1;
	rc = db->ops->service_add(db, &sv);
	db_close(db);
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin service-add: service %u: %s\n", id, tb_strerror(rc));
		return 1;
	}
	printf("service-add: %u %s \"%s\", %zu prices\n", id, adm_kind_name[sv.kind], name,
	       sv.n_prices);
	return 0;
}

/* ------------------------------------------------------------ ledger, history --- */

static int adm_ledger(int argc, char **argv)
{
	const char *dir = NULL, *serial_hex = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--se", &serial_hex, NULL } };
	uint8_t serial[SE_SERIAL_LEN];
	struct db_account acc;
	struct db_service sv;
	struct db_audit au;
	struct db *db = NULL;
	size_t n;
	int rc;

	if ((rc = args_parse("admin ledger", argc, argv, opts, 2)) != 0)
		return rc;
	if (dir == NULL) {
		fprintf(stderr, "usage: tapbridge admin ledger --dir DIR [--se HEX]\n");
		return 2;
	}
	if (serial_hex != NULL && (rc = adm_hex("ledger", "--se", serial_hex, SE_SERIAL_LEN, serial,
						sizeof(serial), &n)) != 0)
		return rc;
	if (adm_db("ledger", dir, &db) != 0)
		return 1;
	rc = db->ops->ledger_audit(db, &au);
	if (rc == 0) {
		printf("transfers %llu\npostings %llu\nsum %lld\nunbalanced %llu\nmismatched %llu\n"
		       "negative %llu\n", (unsigned long long)au.transfers,
		       (unsigned long long)au.postings, (long long)au.postings_sum,
		       (unsigned long long)au.unbalanced_transfers,
		       (unsigned long long)au.balance_mismatches,
		       (unsigned long long)au.negative_purses);
		if (db->ops->account_get(db, LEDGER_FLOAT, &acc) == 0)
			printf("account F float %lld\n", (long long)acc.balance);
		for (uint32_t id = 1; id <= 256; id++) {
			char vname[DB_NAME_MAX];

			if (db->ops->service_get(db, id, &sv) != 0 || ledger_name_revenue(id, vname) != 0 ||
			    db->ops->account_get(db, vname, &acc) != 0)
				continue;
			printf("account %s revenue %lld\n", vname, (long long)acc.balance);
		}
	}
	if (rc == 0 && serial_hex != NULL) {
		int64_t bal = 0;

		if ((rc = ledger_balance(db, serial, &bal)) == 0)
			printf("purse %s %lld\n", serial_hex, (long long)bal);
	}
	db_close(db);
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin ledger: %s\n", tb_strerror(rc));
		return 1;
	}
	return au.postings_sum == 0 && au.unbalanced_transfers == 0 && au.balance_mismatches == 0 ? 0 : 3;
}

static int adm_history(int argc, char **argv)
{
	const char *dir = NULL, *serial_hex = NULL, *reader_s = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--se", &serial_hex, NULL },
					{ "--reader", &reader_s, NULL } };
	static struct db_event ev[32];
	uint8_t serial[SE_SERIAL_LEN];
	struct db *db = NULL;
	uint64_t before = 0;
	uint32_t reader = 0;
	size_t n = 0;
	int rc;

	if ((rc = args_parse("admin history", argc, argv, opts, 3)) != 0)
		return rc;
	if (dir == NULL || (serial_hex == NULL) == (reader_s == NULL) ||
	    (reader_s != NULL && args_u32(reader_s, 1, UINT32_MAX, &reader) != 0)) {
		fprintf(stderr, "usage: tapbridge admin history --dir DIR (--se HEX | --reader N)\n");
		return 2;
	}
	if (serial_hex != NULL && (rc = adm_hex("history", "--se", serial_hex, SE_SERIAL_LEN, serial,
						sizeof(serial), &n)) != 0)
		return rc;
	if (adm_db("history", dir, &db) != 0)
		return 1;
	do {
		rc = serial_hex != NULL ?
			     db->ops->history_by_se(db, serial, before, ev, 32, &n) :
			     db->ops->history_by_reader(db, reader, before, ev, 32, &n);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			printf("%llu time %lld kind %u service %u reader %u amount %lld ref %llu\n",
			       (unsigned long long)ev[i].id, (long long)ev[i].time, (unsigned)ev[i].kind,
			       ev[i].service, ev[i].reader, (long long)ev[i].amount,
			       (unsigned long long)ev[i].ref);
			before = ev[i].id;
		}
	} while (rc == 0 && n == 32);
	db_close(db);
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin history: %s\n", tb_strerror(rc));
		return 1;
	}
	return 0;
}

/* -------------------------------------------------------- rotate, deny-list --- */

static int adm_rotate(int argc, char **argv)
{
	const char *dir = NULL, *fam_s = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--family", &fam_s, NULL } };
	uint8_t body[1], reply[16];
	struct adm_sam a;
	uint32_t fam = SAM_FAM_SE_SERVER;
	size_t rn = 0;
	int rc;

	if ((rc = args_parse("admin rotate", argc, argv, opts, 2)) != 0)
		return rc;
	if (dir == NULL || (fam_s != NULL && args_u32(fam_s, 1, SAM_FAMILIES, &fam) != 0)) {
		fprintf(stderr, "usage: tapbridge admin rotate --dir DIR [--family 1..5]\n"
				"  1 se-server 2 se-reader 3 reader-server 4 signing 5 blobs (default 1)\n");
		return 2;
	}
	if (adm_sam_start("rotate", dir, "--allow-rotate", &a) != 0)
		return 1;
	body[0] = (uint8_t)fam;
	rc = sam_sync_call(&a.c, SAM_ROTATE, body, 1, reply, sizeof(reply), &rn);
	adm_sam_stop(&a);
	if (rc != 0 || rn != 2) {
		fprintf(stderr, "tapbridge admin rotate: %s\n", tb_strerror(rc != 0 ? rc : TB_E_SAM_PROTO));
		return 1;
	}
	printf("rotate: family %u now at version %02X (the old one stays until retired)\n", fam,
	       reply[1]);
	return 0;
}

static int adm_deny_list(int argc, char **argv)
{
	const char *dir = NULL, *reader_s = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--reader", &reader_s, NULL } };
	static uint8_t list[ADM_DENY_MAX][DB_SERIAL_LEN];
	uint8_t msg[SAM_SIGN_MSG_MAX], body[SAM_SIGN_MSG_MAX + 1], reply[128];
	struct wr w = wr_init(msg, sizeof(msg)), bw = wr_init(body, sizeof(body));
	struct db_reader r;
	struct adm_sam a;
	struct db *db = NULL;
	uint64_t version = 0;
	uint32_t reader = 0;
	size_t n = 0, rn = 0;
	int rc;

	if ((rc = args_parse("admin deny-list", argc, argv, opts, 2)) != 0)
		return rc;
	if (dir == NULL || reader_s == NULL || args_u32(reader_s, 1, UINT32_MAX, &reader) != 0) {
		fprintf(stderr, "usage: tapbridge admin deny-list --dir DIR --reader N\n");
		return 2;
	}
	if (adm_db("deny-list", dir, &db) != 0)
		return 1;
	rc = db->ops->reader_get(db, reader, &r);
	if (rc == 0)
		rc = db->ops->deny_list(db, NULL, list, ADM_DENY_MAX, &n, &version);
	db_close(db);
	/* Signed for offline readers: "DENY" reader(4) version(8) count(2) serials. */
	if (rc == 0 && (wr_bytes(&w, (const uint8_t *)"DENY", 4) != 0 || wr_u32be(&w, reader) != 0 ||
			wr_u64be(&w, version) != 0 || wr_u16be(&w, (uint16_t)n) != 0))
		rc = TB_E_NOSPACE;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = wr_bytes(&w, list[i], DB_SERIAL_LEN);
	if (rc == 0 && adm_sam_start("deny-list", dir, NULL, &a) != 0)
		return 1;
	if (rc == 0) {
		rc = sam_enc_sign(&bw, SAM_SIGN_READER, msg, w.len);
		if (rc == 0)
			rc = sam_sync_call(&a.c, SAM_SIGN, body, bw.len, reply, sizeof(reply), &rn);
		adm_sam_stop(&a);
	}
	if (rc == 0 && rn != 1 + SAM_SIG_LEN)
		rc = TB_E_SAM_PROTO;
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin deny-list: reader %u: %s\n", reader, tb_strerror(rc));
		return 1;
	}
	printf("deny-list reader %u version %llu count %zu\n", reader, (unsigned long long)version, n);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < DB_SERIAL_LEN; j++)
			printf("%02X", list[i][j]);
		putchar('\n');
	}
	printf("message ");
	for (size_t i = 0; i < w.len; i++)
		printf("%02X", msg[i]);
	printf("\nsignature %02X ", reply[0]);
	for (size_t i = 1; i < rn; i++)
		printf("%02X", reply[i]);
	putchar('\n');
	return 0;
}

/* ------------------------------------------------------------------- dispatch --- */

static int adm_portal_login(int argc, char **argv);
static int adm_portal_code(int argc, char **argv);

struct adm_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static int adm_se_replace(int argc, char **argv);
static int adm_pauth_set(int argc, char **argv);

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

/* ------------------------------------------------ portal-login, portal-code --- */

/* A one-time login link for the portal (docs/portal.md), minted with the deployment's
 * link key (D/state/portal.key, shared with the server). Printed for tests and the demo;
 * customers get theirs from the phone. */
static int adm_portal_login(int argc, char **argv)
{
	const char *dir = NULL, *serial_hex = NULL, *ttl_s = NULL, *url_s = NULL;
	int op = 0, rc;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--se", &serial_hex, NULL },
					{ "--operator", NULL, &op }, { "--ttl", &ttl_s, NULL },
					{ "--url", &url_s, NULL } };
	uint8_t serial[SE_SERIAL_LEN] = { 0 }, key[PORTAL_KEY_LEN];
	char state[ADM_PATH], base[PORTAL_URL_MAX], tok[PORTAL_LINK_HEX];
	uint32_t ttl = PORTAL_LINK_TTL_S;
	struct timespec ts;
	struct db_se se;
	struct db *db = NULL;
	size_t n;

	if ((rc = args_parse("admin portal-login", argc, argv, opts, 5)) != 0)
		return rc;
	if (dir == NULL || (serial_hex == NULL) == (op == 0) ||
	    (ttl_s != NULL && args_u32(ttl_s, 1, PORTAL_LINK_TTL_MAX, &ttl) != 0)) {
		fprintf(stderr, "usage: tapbridge admin portal-login --dir DIR (--se HEX | --operator) "
				"[--ttl 1..%u] [--url https://HOST:PORT]\n", PORTAL_LINK_TTL_MAX);
		return 2;
	}
	if (serial_hex != NULL && (rc = adm_hex("portal-login", "--se", serial_hex, SE_SERIAL_LEN,
						serial, sizeof(serial), &n)) != 0)
		return rc;
	if (adm_path(state, dir, "state") != 0)
		return 1;
	if (url_s != NULL)
		snprintf(base, sizeof(base), "%s", url_s);
	else if (portal_url_load(state, base) != 0 || base[0] == '\0') {
		fprintf(stderr, "tapbridge admin portal-login: no running portal wrote %s/%s: give "
				"--url https://HOST:PORT\n", state, PORTAL_URL_FILE);
		return 1;
	}
	if (serial_hex != NULL) {
		if (adm_db("portal-login", dir, &db) != 0)
			return 1;
		rc = db->ops->se_get(db, serial, &se);
		db_close(db);
		if (rc != 0) {
			fprintf(stderr, "tapbridge admin portal-login: %s: %s\n", serial_hex, tb_strerror(rc));
			return 1;
		}
	}
	if ((rc = portal_key_load(state, key)) != 0) {
		fprintf(stderr, "tapbridge admin portal-login: %s/%s: %s\n", state, PORTAL_KEY_FILE,
			tb_strerror(rc));
		return 1;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	rc = portal_link_make(key, op ? PORTAL_OPERATOR : PORTAL_CUSTOMER, serial,
			      (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, ttl, tok);
	ct_wipe(key, sizeof(key));
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin portal-login: %s\n", tb_strerror(rc));
		return 1;
	}
	printf("%s login link (one-time, expires in %u s):\n%s/login?t=%s\n",
	       op ? "operator" : "customer", ttl, base, tok);
	ct_wipe(tok, sizeof(tok));
	return 0;
}

/* The second factor of the customer's unlock in the portal: a code the operator hands
 * over (phone call, letter), stored hashed with an expiry and a try limit. */
static int adm_portal_code(int argc, char **argv)
{
	const char *dir = NULL, *serial_hex = NULL, *ttl_s = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--se", &serial_hex, NULL },
					{ "--ttl", &ttl_s, NULL } };
	uint8_t serial[SE_SERIAL_LEN];
	char digits[PORTAL_CODE_DIGITS + 1];
	struct db_unlock_code c;
	uint32_t ttl = PORTAL_CODE_TTL_S;
	struct db *db = NULL;
	size_t n;
	int rc;

	if ((rc = args_parse("admin portal-code", argc, argv, opts, 3)) != 0)
		return rc;
	if (dir == NULL || serial_hex == NULL ||
	    (ttl_s != NULL && args_u32(ttl_s, 1, 86400, &ttl) != 0)) {
		fprintf(stderr, "usage: tapbridge admin portal-code --dir DIR --se HEX [--ttl 1..86400]\n");
		return 2;
	}
	if ((rc = adm_hex("portal-code", "--se", serial_hex, SE_SERIAL_LEN, serial, sizeof(serial),
			  &n)) != 0)
		return rc;
	if (adm_db("portal-code", dir, &db) != 0)
		return 1;
	rc = portal_code_new(serial, (int64_t)time(NULL), ttl, digits, &c);
	if (rc == 0)
		rc = db->ops->code_put(db, serial, &c);
	db_close(db);
	ct_wipe(&c, sizeof(c));
	if (rc != 0) {
		ct_wipe(digits, sizeof(digits));
		fprintf(stderr, "tapbridge admin portal-code: %s: %s\n", serial_hex,
			rc == TB_E_DB_NOT_FOUND ? "unknown se" : tb_strerror(rc));
		return 1;
	}
	printf("unlock code for %s: %s (expires in %u s, %u tries; replaces any earlier code)\n",
	       serial_hex, digits, ttl, PORTAL_CODE_TRIES);
	ct_wipe(digits, sizeof(digits));
	return 0;
}

/* ------------------------------------------------------ se-replace, pauth-set --- */

/* One rule in one request of one batch: durable when this returns 0. */
static int adm_se_lost(struct db *db, const uint8_t old[DB_SERIAL_LEN],
		       const uint8_t repl[DB_SERIAL_LEN], struct ledger_reply *moved)
{
	int rc = db_batch_begin(db), r2;

	if (rc != 0)
		return rc;
	if ((rc = db_req_begin(db)) == 0) {
		r2 = srv_se_lost(db, old, repl, (int64_t)time(NULL), moved);
		rc = db_req_end(db, r2 == 0);
		if (r2 != 0)
			rc = r2;
	}
	if (rc == 0)
		return db_batch_commit(db);
	db_batch_abort(db);
	return rc;
}

static int adm_se_replace(int argc, char **argv)
{
	const char *dir = NULL, *old_hex = NULL, *new_hex = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--old", &old_hex, NULL },
					{ "--new", &new_hex, NULL } };
	uint8_t old[SE_SERIAL_LEN], repl[SE_SERIAL_LEN];
	struct ledger_reply moved;
	struct db *db = NULL;
	size_t n;
	int rc;

	if ((rc = args_parse("admin se-replace", argc, argv, opts, 3)) != 0)
		return rc;
	if (dir == NULL || old_hex == NULL || new_hex == NULL) {
		fprintf(stderr, "usage: tapbridge admin se-replace --dir DIR --old HEX --new HEX\n");
		return 2;
	}
	if ((rc = adm_hex("se-replace", "--old", old_hex, SE_SERIAL_LEN, old, sizeof(old), &n)) != 0 ||
	    (rc = adm_hex("se-replace", "--new", new_hex, SE_SERIAL_LEN, repl, sizeof(repl), &n)) != 0)
		return rc;
	if (adm_db("se-replace", dir, &db) != 0)
		return 1;
	memset(&moved, 0, sizeof(moved));
	rc = adm_se_lost(db, old, repl, &moved);
	db_close(db);
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin se-replace: %s -> %s: %s\n", old_hex, new_hex,
			tb_strerror(rc));
		return 1;
	}
	printf("se-replace: %s lost, replaced by %s; balance %lld moved%s\n", old_hex, new_hex,
	       moved.transfer_id != 0 ? (long long)moved.balance : 0LL,
	       moved.replayed ? " (before)" : "");
	return 0;
}

/* An attribute name: 1..31 of [a-z0-9_-] (it goes into "k=v;k=v" answers to readers). */
static int adm_attr_name_ok(const char *s, size_t n)
{
	if (n == 0 || n >= DB_ATTR_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
		      s[i] == '-'))
			return 0;
	return 1;
}

/* NAME=VALUE into a: the value printable ASCII without ';' (0..127 bytes). */
static int adm_attr(const char *arg, struct db_attr *a)
{
	const char *eq = strchr(arg, '=');
	size_t nl, vl;

	if (eq == NULL)
		return -1;
	nl = (size_t)(eq - arg);
	vl = strlen(eq + 1);
	if (!adm_attr_name_ok(arg, nl) || vl >= DB_ATTR_VALUE_MAX)
		return -1;
	for (size_t i = 0; i < vl; i++)
		if (eq[1 + i] < 0x20 || eq[1 + i] > 0x7E || eq[1 + i] == ';')
			return -1;
	memset(a, 0, sizeof(*a));
	memcpy(a->name, arg, nl);
	memcpy(a->value, eq + 1, vl);
	a->len = vl;
	return 0;
}

/* --visible a,b,c into names; the count, or -1. */
static int adm_visible(const char *list, char (*names)[DB_ATTR_NAME_MAX])
{
	int n = 0;

	while (*list != '\0') {
		size_t l = strcspn(list, ",");

		if (n >= DB_ATTRS_MAX || !adm_attr_name_ok(list, l))
			return -1;
		memcpy(names[n], list, l);
		names[n++][l] = '\0';
		list += l + (list[l] == ',');
	}
	return n;
}

static int adm_pauth_usage(void)
{
	fprintf(stderr, "usage: tapbridge admin pauth-set --dir DIR --se HEX [--attr NAME=VALUE ...]\n"
			"       tapbridge admin pauth-set --dir DIR --class N --visible NAME,NAME\n"
			"  NAME: 1..31 of a-z 0-9 _ -; VALUE: printable ASCII without ';', < 128\n");
	return 2;
}

/* The person's record of the se (replacing its attributes, keeping the identifier the
 * server set), and/or the names a reader class may see. */
static int adm_pauth_write(struct db *db, const char *serial_hex, struct db_pauth *given,
			   const char *class_s, uint32_t cls,
			   const char (*names)[DB_ATTR_NAME_MAX], int nnames)
{
	static struct db_pauth p;
	struct db_se se;
	int rc = 0;

	if (serial_hex != NULL) {
		rc = db->ops->se_get(db, given->se, &se);
		/* "-" until the server registers the se's key and sets the key's id */
		memcpy(given->identifier, "-", 2);
		if (rc == 0 && db->ops->pauth_get(db, given->se, &p) == 0)
			memcpy(given->identifier, p.identifier, sizeof(given->identifier));
		if (rc == 0)
			rc = db->ops->pauth_put(db, given);
		ct_wipe(&p, sizeof(p));
	}
	if (rc == 0 && class_s != NULL)
		rc = db->ops->pauth_visible_set(db, cls, names, (size_t)nnames);
	return rc;
}

static int adm_pauth_set(int argc, char **argv)
{
	const char *dir = NULL, *serial_hex = NULL, *class_s = NULL, *visible = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--se", &serial_hex, NULL },
					{ "--class", &class_s, NULL }, { "--visible", &visible, NULL } };
	static struct db_pauth given;
	char names[DB_ATTRS_MAX][DB_ATTR_NAME_MAX];
	char *rest[16];
	struct db *db = NULL;
	uint32_t cls = 0;
	int nrest = 0, nnames = 0, rc;
	size_t n, nattrs;

	memset(&given, 0, sizeof(given));
	memset(names, 0, sizeof(names));
	/* --attr may repeat: taken out here, the rest goes through args_parse. */
	for (int i = 0; i < argc; i++) {
		if (i > 0 && strcmp(argv[i], "--attr") == 0) {
			if (i + 1 >= argc || given.n_attrs >= DB_ATTRS_MAX ||
			    adm_attr(argv[i + 1], &given.attrs[given.n_attrs]) != 0)
				return adm_pauth_usage();
			given.n_attrs++;
			i++;
			continue;
		}
		if (nrest >= (int)(sizeof(rest) / sizeof(rest[0])) - 1)
			return 2;
		rest[nrest++] = argv[i];
	}
	rest[nrest] = NULL;
	if ((rc = args_parse("admin pauth-set", nrest, rest, opts, 4)) != 0)
		return rc;
	if (dir == NULL || (serial_hex == NULL && class_s == NULL) ||
	    (serial_hex == NULL && given.n_attrs > 0) || (class_s == NULL) != (visible == NULL) ||
	    (class_s != NULL && args_u32(class_s, 0, UINT32_MAX, &cls) != 0) ||
	    (visible != NULL && (nnames = adm_visible(visible, names)) < 0))
		return adm_pauth_usage();
	if (serial_hex != NULL && (rc = adm_hex("pauth-set", "--se", serial_hex, SE_SERIAL_LEN,
						given.se, sizeof(given.se), &n)) != 0)
		return rc;
	if (adm_db("pauth-set", dir, &db) != 0)
		return 1;
	nattrs = given.n_attrs;
	rc = adm_pauth_write(db, serial_hex, &given, class_s, cls,
			     (const char(*)[DB_ATTR_NAME_MAX])names, nnames);
	db_close(db);
	ct_wipe(&given, sizeof(given));
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin pauth-set: %s\n", tb_strerror(rc));
		return 1;
	}
	if (serial_hex != NULL)
		printf("pauth-set: %s: %zu attributes\n", serial_hex, nattrs);
	if (class_s != NULL)
		printf("pauth-set: class %u sees %d attributes\n", cls, nnames);
	return 0;
}
