/* admin_vault.c - `tapbridge admin` changing what a deployment holds for a person:
 * se-replace (a lost se's balance to its replacement) and pauth-set (personal-auth
 * attributes, what a reader class may see). What stays true: every argument is checked
 * before the database is opened, and a lost se's balance moves in one durable batch or
 * not at all. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "admin_int.h"
#include "server/rules.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "se/se.h"

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

int adm_se_replace(int argc, char **argv)
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

int adm_pauth_set(int argc, char **argv)
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
