/* admin_portal.c - `tapbridge admin` for the customer portal (docs/portal.md):
 * portal-login (a one-time login link) and portal-code (an unlock code).
 * What stays true: the link key, the link and the code are wiped once printed or stored. */
#include <stdio.h>
#include <time.h>

#include "admin_int.h"
#include "io/portal_io.h"
#include "server/portal.h"
#include "lib/ct.h"
#include "lib/err.h"
#include "se/se.h"

/* ------------------------------------------------ portal-login, portal-code --- */

/* A one-time login link for the portal (docs/portal.md), minted with the deployment's
 * link key (D/state/portal.key, shared with the server). Printed for tests and the demo;
 * customers get theirs from the phone. */
int adm_portal_login(int argc, char **argv)
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
int adm_portal_code(int argc, char **argv)
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
