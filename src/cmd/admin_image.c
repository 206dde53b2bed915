/* admin_image.c - `tapbridge admin` on an se image that no se is running on (factory and
 * tests): se-init, se-keys, se-config, se-info. What stays true: every argument is checked
 * before the image is opened; key bytes are wiped, with the argv strings they came in. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "admin_int.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "se/se.h"

#define ADM_KEYS_FILE_MAX 4096

static const char *const adm_role_name[] = { "none", "server", "reader", "default" };

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

/* -------------------------------------------------------------------- se-init --- */

int adm_se_init(int argc, char **argv)
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

int adm_se_keys(int argc, char **argv)
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

int adm_se_config(int argc, char **argv)
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

int adm_se_info(int argc, char **argv)
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
