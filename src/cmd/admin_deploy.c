/* admin_deploy.c - `tapbridge admin` setting up a deployment directory (docs/admin.md):
 * init, se-register, reader-register, service-add, rotate. What stays true: device keys
 * come from the deployment's own sam and are wiped once written to the image or key file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin_int.h"
#include "io/tls.h"
#include "server/proto.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "se/se.h"

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

/* ----------------------------------------------------------------------- init --- */

int adm_init(int argc, char **argv)
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

int adm_se_register(int argc, char **argv)
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

int adm_reader_register(int argc, char **argv)
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

int adm_service_add(int argc, char **argv)
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
/* --------------------------------------------------------------------- rotate --- */

int adm_rotate(int argc, char **argv)
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
