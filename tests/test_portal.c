/* test_portal.c - the portal core (server/portal*.c) over a scratch SQLite database:
 * login links (once, expiry, restart, every byte under the MAC), sessions (timeouts,
 * sign-out, table full), CSRF, the one escape function and the templates, CSV quoting,
 * and whole requests through portal_handle: path tricks, methods, query and form
 * fields, roles, lock with its pending mark, unlock with the operator's code and its
 * try limit, history paging and CSV without a row limit, personal data deletion. Every
 * refusal is checked to have changed nothing in the database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "io/db_io.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "server/db.h"
#include "server/ledger.h"
#include "server/portal.h"
#include "server/portal_int.h"
#include "server/rules.h"

static const uint8_t SE_A[DB_SERIAL_LEN] = { 0x53, 0x45, 0, 0, 0, 0, 0, 1 };
static const uint8_t SE_B[DB_SERIAL_LEN] = { 0x53, 0x45, 0, 0, 0, 0, 0, 2 };
static const uint8_t KEY[PORTAL_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
					     17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
#define T0 1800000000LL /* seconds */
#define T0_MS (T0 * 1000)

static struct portal P;
static uint8_t body_buf[2 * PORTAL_BODY_MIN];
static struct wr body;
static struct portal_resp rs;
static char db_path[256];
static struct db *db;

/* ------------------------------------------------------------ links --- */

static void t_link_once(void **state)
{
	char tok[PORTAL_LINK_HEX];
	uint8_t role = 0, se[DB_SERIAL_LEN] = { 0 };

	(void)state;
	portal_init(&P, KEY, T0_MS - 5000);
	assert_int_equal(portal_link_make(KEY, PORTAL_CUSTOMER, SE_A, T0_MS, 120, tok), 0);
	assert_int_equal(strlen(tok), PORTAL_LINK_HEX - 1);
	assert_int_equal(portal_link_use(&P, tok, T0_MS + 1000, &role, se), 0);
	assert_int_equal(role, PORTAL_CUSTOMER);
	assert_memory_equal(se, SE_A, DB_SERIAL_LEN);
	role = 9;
	assert_int_equal(portal_link_use(&P, tok, T0_MS + 2000, &role, se), TB_E_PORTAL_LINK);
	assert_int_equal(role, 9); /* untouched on failure */
	/* operator links carry no serial */
	assert_int_equal(portal_link_make(KEY, PORTAL_OPERATOR, NULL, T0_MS, 60, tok), 0);
	assert_int_equal(portal_link_use(&P, tok, T0_MS, &role, se), 0);
	assert_int_equal(role, PORTAL_OPERATOR);
	assert_int_equal(portal_link_make(KEY, 3, SE_A, T0_MS, 60, tok), TB_E_INVAL);
	assert_int_equal(portal_link_make(KEY, PORTAL_CUSTOMER, SE_A, T0_MS, 0, tok), TB_E_INVAL);
	assert_int_equal(portal_link_make(KEY, PORTAL_CUSTOMER, SE_A, T0_MS, PORTAL_LINK_TTL_MAX + 1,
					  tok), TB_E_INVAL);
}

static void t_link_time(void **state)
{
	char tok[PORTAL_LINK_HEX];
	uint8_t role, se[DB_SERIAL_LEN];

	(void)state;
	portal_init(&P, KEY, T0_MS);
	/* expired at issued + ttl exactly */
	assert_int_equal(portal_link_make(KEY, PORTAL_CUSTOMER, SE_A, T0_MS, 2, tok), 0);
	assert_int_equal(portal_link_use(&P, tok, T0_MS + 2000, &role, se), TB_E_PORTAL_LINK);
	assert_int_equal(portal_link_use(&P, tok, T0_MS + 1999, &role, se), 0);
	/* issued before the portal started (a restart): refused, even fresh */
	assert_int_equal(portal_link_make(KEY, PORTAL_CUSTOMER, SE_A, T0_MS - 1, 120, tok), 0);
	assert_int_equal(portal_link_use(&P, tok, T0_MS + 10, &role, se), TB_E_PORTAL_LINK);
	/* from the future beyond the allowed skew */
	assert_int_equal(portal_link_make(KEY, PORTAL_CUSTOMER, SE_A, T0_MS + 120000, 120, tok), 0);
	assert_int_equal(portal_link_use(&P, tok, T0_MS, &role, se), TB_E_PORTAL_LINK);
}

static void t_link_tamper(void **state)
{
	static const uint8_t other[PORTAL_KEY_LEN] = { 9 };
	char tok[PORTAL_LINK_HEX], bad[PORTAL_LINK_HEX];
	uint8_t role, se[DB_SERIAL_LEN];

	(void)state;
	portal_init(&P, KEY, T0_MS);
	assert_int_equal(portal_link_make(KEY, PORTAL_CUSTOMER, SE_A, T0_MS, 120, tok), 0);
	/* every single digit changed: refused (the MAC covers all, or the hex breaks) */
	for (size_t i = 0; i < PORTAL_LINK_HEX - 1; i++) {
		memcpy(bad, tok, sizeof(bad));
		bad[i] = bad[i] == '0' ? '1' : '0';
		assert_int_equal(portal_link_use(&P, bad, T0_MS, &role, se), TB_E_PORTAL_LINK);
	}
	/* every truncation and an extension */
	for (size_t n = 0; n < PORTAL_LINK_HEX - 1; n++) {
		memcpy(bad, tok, n);
		bad[n] = '\0';
		assert_int_equal(portal_link_use(&P, bad, T0_MS, &role, se), TB_E_PORTAL_LINK);
	}
	assert_int_equal(portal_link_use(&P, NULL, T0_MS, &role, se), TB_E_PORTAL_LINK);
	/* another deployment's key */
	assert_int_equal(portal_link_make(other, PORTAL_CUSTOMER, SE_A, T0_MS, 120, bad), 0);
	assert_int_equal(portal_link_use(&P, bad, T0_MS, &role, se), TB_E_PORTAL_LINK);
	/* the good one still works once after all that */
	assert_int_equal(portal_link_use(&P, tok, T0_MS, &role, se), 0);
}

static void t_link_table_full(void **state)
{
	char tok[PORTAL_LINK_HEX];
	uint8_t role, se[DB_SERIAL_LEN];

	(void)state;
	portal_init(&P, KEY, T0_MS);
	for (size_t i = 0; i < PORTAL_USED_MAX; i++) {
		assert_int_equal(portal_link_make(KEY, PORTAL_CUSTOMER, SE_A, T0_MS, 10, tok), 0);
		assert_int_equal(portal_link_use(&P, tok, T0_MS, &role, se), 0);
	}
	assert_int_equal(portal_link_make(KEY, PORTAL_CUSTOMER, SE_A, T0_MS, 60, tok), 0);
	assert_int_equal(portal_link_use(&P, tok, T0_MS + 1, &role, se), TB_E_PORTAL_FULL);
	/* once the earlier links expired, their slots are free again; the refused link was
	 * not marked used */
	assert_int_equal(portal_link_use(&P, tok, T0_MS + 10001, &role, se), 0);
}

/* --------------------------------------------------------- sessions --- */

static void t_sessions(void **state)
{
	struct portal_sess *s = NULL, *f = NULL;
	char hex[PORTAL_ID_HEX], csrf[PORTAL_ID_HEX];

	(void)state;
	portal_init(&P, KEY, T0_MS);
	assert_int_equal(portal_sess_new(&P, PORTAL_CUSTOMER, SE_A, T0, &s), 0);
	assert_int_equal(hex_encode(s->id, PORTAL_ID_LEN, HEX_PUBLIC, hex, sizeof(hex)), 0);
	assert_int_equal(hex_encode(s->csrf, PORTAL_ID_LEN, HEX_PUBLIC, csrf, sizeof(csrf)), 0);
	assert_int_equal(portal_sess_find(&P, hex, T0 + 10, &f), 0);
	assert_ptr_equal(f, s);
	assert_true(portal_csrf_ok(s, csrf));
	assert_false(portal_csrf_ok(s, hex));
	assert_false(portal_csrf_ok(s, NULL));
	csrf[10] = csrf[10] == 'A' ? 'B' : 'A';
	assert_false(portal_csrf_ok(s, csrf));
	hex[63] = '\0';
	assert_int_equal(portal_sess_find(&P, hex, T0 + 10, &f), TB_E_PORTAL_SESSION);
	(void)hex_encode(s->id, PORTAL_ID_LEN, HEX_PUBLIC, hex, sizeof(hex));
	/* idle: each use refreshes, PORTAL_IDLE_S unused ends it */
	assert_int_equal(portal_sess_find(&P, hex, T0 + PORTAL_IDLE_S, &f), 0);
	assert_int_equal(portal_sess_find(&P, hex, T0 + 2 * PORTAL_IDLE_S, &f), TB_E_PORTAL_SESSION);
	assert_int_equal(portal_sess_find(&P, hex, T0 + 2 * PORTAL_IDLE_S - 1, &f),
			 TB_E_PORTAL_SESSION); /* ended for good */
	/* absolute limit */
	assert_int_equal(portal_sess_new(&P, PORTAL_CUSTOMER, SE_A, T0, &s), 0);
	(void)hex_encode(s->id, PORTAL_ID_LEN, HEX_PUBLIC, hex, sizeof(hex));
	for (int64_t t = T0; t < T0 + PORTAL_ABS_S; t += PORTAL_IDLE_S / 2)
		assert_int_equal(portal_sess_find(&P, hex, t, &f), 0);
	assert_int_equal(portal_sess_find(&P, hex, T0 + PORTAL_ABS_S, &f), TB_E_PORTAL_SESSION);
	/* sign-out */
	assert_int_equal(portal_sess_new(&P, PORTAL_OPERATOR, SE_A, T0, &s), 0);
	assert_memory_equal(s->se, (uint8_t[DB_SERIAL_LEN]){ 0 }, DB_SERIAL_LEN);
	(void)hex_encode(s->id, PORTAL_ID_LEN, HEX_PUBLIC, hex, sizeof(hex));
	portal_sess_end(s);
	assert_int_equal(portal_sess_find(&P, hex, T0, &f), TB_E_PORTAL_SESSION);
	/* full table; expired slots are reused */
	portal_init(&P, KEY, T0_MS);
	for (size_t i = 0; i < PORTAL_SESSIONS_MAX; i++)
		assert_int_equal(portal_sess_new(&P, PORTAL_CUSTOMER, SE_A, T0, &s), 0);
	assert_int_equal(portal_sess_new(&P, PORTAL_CUSTOMER, SE_A, T0 + 1, &s), TB_E_PORTAL_FULL);
	assert_int_equal(portal_sess_new(&P, PORTAL_CUSTOMER, SE_A, T0 + PORTAL_IDLE_S, &s), 0);
}

/* ------------------------------------------------------ html, csv --- */

static void t_escape(void **state)
{
	uint8_t buf[256];
	struct wr w = wr_init(buf, sizeof(buf));
	static const char in[] = "<script>\"a'&b</script>";
	static const uint8_t odd[] = { 'x', 0x01, 0xC3, 0xA9, 0xFF, 0xE2, 0x82, 'y', 0xED, 0xA0, 0x80 };
	const struct pt_val v[] = { PV("a", in), { "b", (const char *)odd, sizeof(odd) } };

	(void)state;
	assert_int_equal(pt_emit(&w, "<p title=\"{{a}}\">{{b}}</p>", v, 2), 0);
	buf[w.len] = 0;
	assert_string_equal((char *)buf, "<p title=\"&lt;script&gt;&quot;a&#39;&amp;b&lt;/script&gt;\">"
				       "x\xEF\xBF\xBD\xC3\xA9\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBDy"
				       "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD</p>");
	w.len = 0;
	assert_int_equal(pt_emit(&w, "{{c}}", v, 2), TB_E_INTERNAL);
	assert_int_equal(pt_emit(&w, "{{a", v, 2), TB_E_INTERNAL);
	w = wr_init(buf, 10);
	assert_int_equal(pt_emit(&w, "{{a}}", v, 2), TB_E_NOSPACE);
}

static void t_csv(void **state)
{
	uint8_t buf[256];
	struct wr w = wr_init(buf, sizeof(buf));

	(void)state;
	assert_int_equal(pt_csv_field(&w, "plain", 0), 0);
	assert_int_equal(pt_csv_field(&w, "a,\"b\"", 0), 0);
	assert_int_equal(pt_csv_field(&w, "=HYPERLINK(1)", 0), 0);
	assert_int_equal(pt_csv_field(&w, "-500", 0), 0);
	assert_int_equal(pt_csv_field(&w, "line\nbreak", 1), 0);
	buf[w.len] = 0;
	assert_string_equal((char *)buf, "plain,\"a,\"\"b\"\"\",'=HYPERLINK(1),-500,\"line\nbreak\"\r\n");
}

/* ------------------------------------------------- whole requests --- */

static int db_setup(void **state)
{
	struct db_se se = { .state = DB_SE_ACTIVE, .created = T0, .changed = T0 };
	struct db_service sv = { .id = 1, .kind = DB_SVC_EMONEY, .name = "Top-up <b>" };
	struct db_pauth pa = { .identifier = "Hanako <Yamada>", .n_attrs = 1 };
	char url[300];
	int fd;

	(void)state;
	snprintf(db_path, sizeof(db_path), "/tmp/test_portal_XXXXXX");
	fd = mkstemp(db_path);
	assert_true(fd >= 0);
	close(fd);
	unlink(db_path);
	snprintf(url, sizeof(url), "sqlite:%s", db_path);
	assert_int_equal(db_open(url, &db), 0);
	memcpy(se.serial, SE_A, DB_SERIAL_LEN);
	assert_int_equal(db->ops->se_add(db, &se), 0);
	memcpy(se.serial, SE_B, DB_SERIAL_LEN);
	assert_int_equal(db->ops->se_add(db, &se), 0);
	assert_int_equal(db->ops->service_add(db, &sv), 0);
	memcpy(pa.se, SE_A, DB_SERIAL_LEN);
	strcpy(pa.attrs[0].name, "name");
	memcpy(pa.attrs[0].value, "<script>x</script>", 18);
	pa.attrs[0].len = 18;
	assert_int_equal(db->ops->pauth_put(db, &pa), 0);
	for (int i = 0; i < 60; i++) { /* 60 events over a year: no 20-row or 26-week limit */
		struct db_event ev = { .time = T0 - (int64_t)(59 - i) * 6 * 86400, .has_se = 1,
				       .kind = (uint8_t)(i % 2 ? DB_EV_PAY : DB_EV_TOPUP), .service = 1,
				       .reader = (uint32_t)(i % 2 ? 7 : 0), .amount = 100 + i };

		memcpy(ev.se, SE_A, DB_SERIAL_LEN);
		assert_int_equal(db->ops->history_add(db, &ev, NULL), 0);
	}
	{
		struct db_event ev = { .time = T0, .has_se = 1, .kind = DB_EV_TOPUP, .amount = 99999 };

		memcpy(ev.se, SE_B, DB_SERIAL_LEN);
		assert_int_equal(db->ops->history_add(db, &ev, NULL), 0);
	}
	portal_init(&P, KEY, T0_MS - 1000);
	body = wr_init(body_buf, sizeof(body_buf));
	return 0;
}

static int db_teardown(void **state)
{
	char p[300];

	(void)state;
	db_close(db);
	db = NULL;
	unlink(db_path);
	snprintf(p, sizeof(p), "%s-wal", db_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db_path);
	unlink(p);
	return 0;
}

static char cookie[100], csrf[PORTAL_ID_HEX];

/* One request; the body as a NUL-terminated string in body_buf. */
static int req(uint8_t method, const char *path, const char *query, const char *form,
	       const char *cook, int64_t now)
{
	struct portal_req rq = { .method = method, .path = path, .query = query, .cookie = cook,
				 .content_type = form != NULL ? "application/x-www-form-urlencoded" : NULL,
				 .body = (const uint8_t *)form, .body_n = form != NULL ? strlen(form) : 0,
				 .now = now, .now_ms = now * 1000 };

	memset(&rs, 0, sizeof(rs));
	rs.body = &body;
	(void)portal_handle(&P, db, &rq, &rs);
	if (body.len >= body.cap)
		body.len = body.cap - 1;
	body_buf[body.len] = '\0';
	return rs.status;
}

static int has(const char *s) { return strstr((const char *)body_buf, s) != NULL; }

/* Signs in (customer of se, or operator) and keeps the cookie and the CSRF token. */
static void login(uint8_t role, const uint8_t *se, int64_t now)
{
	char tok[PORTAL_LINK_HEX], q[PORTAL_LINK_HEX + 4];
	const char *p;

	assert_int_equal(portal_link_make(KEY, role, se, now * 1000, 120, tok), 0);
	snprintf(q, sizeof(q), "t=%s", tok);
	assert_int_equal(req(PORTAL_GET, "/login", q, NULL, NULL, now), 303);
	assert_string_equal(rs.location, role == PORTAL_OPERATOR ? "/op" : "/");
	assert_non_null(strstr(rs.set_cookie, "HttpOnly"));
	assert_non_null(strstr(rs.set_cookie, "Secure"));
	assert_non_null(strstr(rs.set_cookie, "SameSite=Strict"));
	snprintf(cookie, sizeof(cookie), "%.*s", (int)strcspn(rs.set_cookie, ";"), rs.set_cookie);
	assert_int_equal(req(PORTAL_GET, role == PORTAL_OPERATOR ? "/op" : "/", NULL, NULL, cookie,
			     now), 200);
	p = strstr((const char *)body_buf, "name=\"csrf\" value=\"");
	assert_non_null(p);
	memcpy(csrf, p + 19, PORTAL_ID_HEX - 1);
	csrf[PORTAL_ID_HEX - 1] = '\0';
}

static void se_state(const uint8_t *serial, uint8_t *st, uint8_t *pend)
{
	struct db_se se;

	assert_int_equal(db->ops->se_get(db, serial, &se), 0);
	*st = se.state;
	*pend = se.pending;
}

static size_t history_count(const uint8_t *serial)
{
	static struct db_event ev[200];
	size_t n = 0;

	assert_int_equal(db->ops->history_by_se(db, serial, 0, ev, 200, &n), 0);
	return n;
}

static void t_req_refusals(void **state)
{
	char form[300];
	uint8_t st, pend;
	size_t h0;

	(void)state;
	login(PORTAL_CUSTOMER, SE_A, T0);
	h0 = history_count(SE_A);
	/* path tricks, unknown pages, methods */
	assert_int_equal(req(PORTAL_GET, "/../op", NULL, NULL, cookie, T0), 400);
	assert_int_equal(req(PORTAL_GET, "//op", NULL, NULL, cookie, T0), 400);
	assert_int_equal(req(PORTAL_GET, "/%2e%2e/op", NULL, NULL, cookie, T0), 400);
	assert_int_equal(req(PORTAL_GET, "/history/", NULL, NULL, cookie, T0), 404);
	assert_int_equal(req(PORTAL_GET, "/etc/passwd", NULL, NULL, cookie, T0), 404);
	assert_true(has("There is no such page"));
	assert_int_equal(req(PORTAL_GET, "/lock", NULL, NULL, cookie, T0), 405);
	assert_string_equal(rs.allow, "POST");
	assert_int_equal(req(PORTAL_OTHER, "/history", NULL, NULL, cookie, T0), 405);
	assert_string_equal(rs.allow, "GET");
	assert_int_equal(req(PORTAL_HEAD, "/", NULL, NULL, cookie, T0), 405);
	/* another se's history: the page takes no serial */
	assert_int_equal(req(PORTAL_GET, "/history", "se=5345000000000002", NULL, cookie, T0), 400);
	assert_false(has("99999"));
	assert_int_equal(req(PORTAL_GET, "/history", "before=abc", NULL, cookie, T0), 400);
	/* operator pages with a customer session */
	assert_int_equal(req(PORTAL_GET, "/op/ses", NULL, NULL, cookie, T0), 403);
	snprintf(form, sizeof(form), "csrf=%s&serial=5345000000000002", csrf);
	assert_int_equal(req(PORTAL_POST, "/op/lock", NULL, form, cookie, T0), 403);
	/* POSTs without or with a wrong CSRF token, with extra fields, too large */
	assert_int_equal(req(PORTAL_POST, "/lock", NULL, "", cookie, T0), 403);
	assert_true(has("Nothing was changed"));
	assert_int_equal(req(PORTAL_POST, "/lock", NULL, "csrf=00", cookie, T0), 403);
	snprintf(form, sizeof(form), "csrf=%s&serial=5345000000000002", csrf);
	assert_int_equal(req(PORTAL_POST, "/lock", NULL, form, cookie, T0), 400);
	snprintf(form, sizeof(form), "csrf=%s&csrf=%s", csrf, csrf);
	assert_int_equal(req(PORTAL_POST, "/lock", NULL, form, cookie, T0), 400);
	{
		static char big[PORTAL_FORM_MAX + 100];

		memset(big, 'a', sizeof(big) - 1);
		memcpy(big, "csrf=", 5);
		assert_int_equal(req(PORTAL_POST, "/lock", NULL, big, cookie, T0), 413);
	}
	/* bad cookies */
	assert_int_equal(req(PORTAL_GET, "/", NULL, NULL, "tbp=zz", T0), 401);
	assert_int_equal(req(PORTAL_GET, "/", NULL, NULL, NULL, T0), 401);
	snprintf(form, sizeof(form), "%s; %s", cookie, cookie);
	assert_int_equal(req(PORTAL_GET, "/", NULL, NULL, form, T0), 401);
	/* a cross-site POST with the right token: the Origin check */
	{
		struct portal_req rq = { .method = PORTAL_POST, .path = "/lock", .cookie = cookie,
					 .origin = "https://evil.example", .host = "127.0.0.1:1",
					 .content_type = "application/x-www-form-urlencoded",
					 .now = T0, .now_ms = T0_MS };

		snprintf(form, sizeof(form), "csrf=%s", csrf);
		rq.body = (const uint8_t *)form;
		rq.body_n = strlen(form);
		rs.body = &body;
		(void)portal_handle(&P, db, &rq, &rs);
		assert_int_equal(rs.status, 403);
	}
	se_state(SE_A, &st, &pend);
	assert_int_equal(st, DB_SE_ACTIVE);
	assert_int_equal(pend, DB_SE_PENDING_NONE);
	se_state(SE_B, &st, &pend);
	assert_int_equal(st, DB_SE_ACTIVE);
	assert_int_equal(history_count(SE_A), h0);
	/* sign-out: the cookie is dead, also for a POST with its token */
	snprintf(form, sizeof(form), "csrf=%s", csrf);
	assert_int_equal(req(PORTAL_POST, "/logout", NULL, form, cookie, T0), 200);
	assert_non_null(strstr(rs.set_cookie, "Max-Age=0"));
	assert_int_equal(req(PORTAL_GET, "/", NULL, NULL, cookie, T0), 401);
	assert_int_equal(req(PORTAL_POST, "/lock", NULL, form, cookie, T0), 401);
	se_state(SE_A, &st, &pend);
	assert_int_equal(st, DB_SE_ACTIVE);
}

static void t_req_pages(void **state)
{
	char q[40];
	const char *p;

	(void)state;
	login(PORTAL_CUSTOMER, SE_A, T0);
	assert_int_equal(req(PORTAL_GET, "/", NULL, NULL, cookie, T0), 200);
	assert_true(has("id=\"balance\">0<"));
	assert_true(has("Top-up &lt;b&gt;"));
	assert_int_equal(req(PORTAL_GET, "/style.css", NULL, NULL, NULL, T0), 200);
	assert_string_equal(rs.content_type, "text/css; charset=utf-8");
	/* history: 25 per page, newest first, paging down to the oldest (a year back) */
	assert_int_equal(req(PORTAL_GET, "/history", NULL, NULL, cookie, T0), 200);
	assert_true(has("+158")); /* the newest top-up */
	assert_true(has("\xE2\x88\x92" "159"));
	assert_false(has("99999")); /* B's row */
	for (int page = 0; page < 2; page++) {
		p = strstr((const char *)body_buf, "/history?before=");
		assert_non_null(p);
		snprintf(q, sizeof(q), "before=%.*s", (int)strcspn(p + 16, "\""), p + 16);
		assert_int_equal(req(PORTAL_GET, "/history", q, NULL, cookie, T0), 200);
	}
	assert_true(has("+100")); /* the oldest, 354 days back */
	assert_false(has("id=\"older\""));
	/* CSV: every row, in one answer or continued */
	assert_int_equal(req(PORTAL_GET, "/history.csv", NULL, NULL, cookie, T0), 200);
	assert_int_equal(rs.more, 0);
	{
		size_t lines = 0;

		for (const char *s = (const char *)body_buf; (s = strstr(s, "\r\n")) != NULL; s += 2)
			lines++;
		assert_int_equal(lines, 61);
	}
	assert_true(has("-159"));
	/* personal data: escaped, never markup */
	assert_int_equal(req(PORTAL_GET, "/personal", NULL, NULL, cookie, T0), 200);
	assert_true(has("&lt;script&gt;x&lt;/script&gt;"));
	assert_false(has("<script>"));
	assert_true(has("Hanako &lt;Yamada&gt;"));
	/* operator */
	login(PORTAL_OPERATOR, NULL, T0);
	assert_int_equal(req(PORTAL_GET, "/op", NULL, NULL, cookie, T0), 200);
	assert_true(has("Balanced"));
	assert_int_equal(req(PORTAL_GET, "/op/ses", NULL, NULL, cookie, T0), 200);
	assert_true(has("5345000000000001"));
	assert_true(has("5345000000000002"));
	assert_int_equal(req(PORTAL_GET, "/op/readers", NULL, NULL, cookie, T0), 200);
	assert_int_equal(req(PORTAL_GET, "/history", NULL, NULL, cookie, T0), 403);
	assert_int_equal(req(PORTAL_GET, "/", NULL, NULL, cookie, T0), 303);
}

static void t_req_lock_unlock(void **state)
{
	struct db_unlock_code c;
	char digits[PORTAL_CODE_DIGITS + 1], form[200];
	uint8_t st, pend;
	uint64_t v0, v1;
	size_t n, h0;
	uint8_t deny[4][DB_SERIAL_LEN];

	(void)state;
	login(PORTAL_CUSTOMER, SE_A, T0);
	h0 = history_count(SE_A);
	assert_int_equal(db->ops->deny_list(db, NULL, deny, 4, &n, &v0), 0);
	assert_int_equal(n, 0);
	snprintf(form, sizeof(form), "csrf=%s", csrf);
	assert_int_equal(req(PORTAL_POST, "/lock", NULL, form, cookie, T0), 303);
	assert_string_equal(rs.location, "/wallet");
	se_state(SE_A, &st, &pend);
	assert_int_equal(st, DB_SE_LOCKED);
	assert_int_equal(pend, DB_SE_LOCK_PENDING);
	assert_int_equal(history_count(SE_A), h0 + 1);
	assert_int_equal(db->ops->deny_list(db, NULL, deny, 4, &n, &v1), 0);
	assert_int_equal(n, 1); /* readers refuse it from now on */
	assert_memory_equal(deny[0], SE_A, DB_SERIAL_LEN);
	assert_true(v1 != v0);
	assert_int_equal(req(PORTAL_GET, "/wallet", NULL, NULL, cookie, T0), 200);
	assert_true(has("Lock pending"));
	assert_true(has("name=\"code\""));
	/* a second lock changes nothing */
	assert_int_equal(req(PORTAL_POST, "/lock", NULL, form, cookie, T0), 303);
	assert_int_equal(history_count(SE_A), h0 + 1);
	/* unlock: no code set, then a wrong one (counted and kept), then the right one */
	snprintf(form, sizeof(form), "csrf=%s&code=12345678", csrf);
	assert_int_equal(req(PORTAL_POST, "/unlock", NULL, form, cookie, T0), 403);
	assert_int_equal(portal_code_new(SE_A, T0, 900, digits, &c), 0);
	assert_int_equal(db->ops->code_put(db, SE_A, &c), 0);
	snprintf(form, sizeof(form), "csrf=%s&code=%c%s", csrf, digits[0] == '9' ? '0' : '9',
		 digits + 1);
	assert_int_equal(req(PORTAL_POST, "/unlock", NULL, form, cookie, T0), 403);
	assert_true(has("4 tries left"));
	assert_int_equal(db->ops->code_get(db, SE_A, &c), 0);
	assert_int_equal(c.tries, 1);
	se_state(SE_A, &st, &pend);
	assert_int_equal(st, DB_SE_LOCKED);
	snprintf(form, sizeof(form), "csrf=%s&code=%.4s+%s", csrf, digits, digits + 4);
	assert_int_equal(req(PORTAL_POST, "/unlock", NULL, form, cookie, T0), 303);
	se_state(SE_A, &st, &pend);
	assert_int_equal(st, DB_SE_ACTIVE);
	assert_int_equal(pend, DB_SE_PENDING_NONE); /* the se never saw the lock */
	assert_int_equal(db->ops->code_get(db, SE_A, &c), TB_E_DB_NOT_FOUND); /* used up */
	assert_int_equal(history_count(SE_A), h0 + 2);
	/* the try limit: five wrong codes kill the code, the right one then fails too */
	snprintf(form, sizeof(form), "csrf=%s", csrf);
	assert_int_equal(req(PORTAL_POST, "/lock", NULL, form, cookie, T0), 303);
	assert_int_equal(db->ops->se_set_pending(db, SE_A, DB_SE_PENDING_NONE, T0), 0); /* se saw it */
	assert_int_equal(portal_code_new(SE_A, T0, 900, digits, &c), 0);
	assert_int_equal(db->ops->code_put(db, SE_A, &c), 0);
	for (unsigned i = 0; i < PORTAL_CODE_TRIES; i++) {
		snprintf(form, sizeof(form), "csrf=%s&code=x", csrf);
		assert_int_equal(req(PORTAL_POST, "/unlock", NULL, form, cookie, T0), 403);
	}
	assert_true(has("Too many wrong codes"));
	snprintf(form, sizeof(form), "csrf=%s&code=%s", csrf, digits);
	assert_int_equal(req(PORTAL_POST, "/unlock", NULL, form, cookie, T0), 403);
	se_state(SE_A, &st, &pend);
	assert_int_equal(st, DB_SE_LOCKED);
	/* an expired code */
	assert_int_equal(portal_code_new(SE_A, T0 - 1000, 900, digits, &c), 0);
	assert_int_equal(db->ops->code_put(db, SE_A, &c), 0);
	snprintf(form, sizeof(form), "csrf=%s&code=%s", csrf, digits);
	assert_int_equal(req(PORTAL_POST, "/unlock", NULL, form, cookie, T0), 403);
	/* the operator unlocks without a code; the se had seen the lock: unlock pending */
	login(PORTAL_OPERATOR, NULL, T0);
	snprintf(form, sizeof(form), "csrf=%s&serial=5345000000000001", csrf);
	assert_int_equal(req(PORTAL_POST, "/op/unlock", NULL, form, cookie, T0), 303);
	se_state(SE_A, &st, &pend);
	assert_int_equal(st, DB_SE_ACTIVE);
	assert_int_equal(pend, DB_SE_UNLOCK_PENDING);
	snprintf(form, sizeof(form), "csrf=%s&serial=53450000000000FF", csrf);
	assert_int_equal(req(PORTAL_POST, "/op/lock", NULL, form, cookie, T0), 404);
}

static void t_req_personal_delete(void **state)
{
	struct db_pauth pa;
	struct db_event ev[1];
	char form[200];
	size_t n;

	(void)state;
	login(PORTAL_CUSTOMER, SE_A, T0);
	snprintf(form, sizeof(form), "csrf=%s", csrf); /* not confirmed */
	assert_int_equal(req(PORTAL_POST, "/personal/delete", NULL, form, cookie, T0), 400);
	assert_int_equal(db->ops->pauth_get(db, SE_A, &pa), 0);
	snprintf(form, sizeof(form), "csrf=%s&confirm=yes", csrf);
	assert_int_equal(req(PORTAL_POST, "/personal/delete", NULL, form, cookie, T0 + 5), 200);
	assert_true(has("deleted"));
	assert_int_equal(db->ops->pauth_get(db, SE_A, &pa), TB_E_DB_NOT_FOUND);
	/* the personal-auth service refuses from now on */
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(srv_pauth_view(db, SE_A, 0, T0 + 6, &pa) != 0, 1);
	assert_int_equal(db_req_end(db, 0), 0);
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(db->ops->history_by_se(db, SE_A, 0, ev, 1, &n), 0);
	assert_int_equal(ev[0].kind, DB_EV_PAUTH_DELETE);
	assert_int_equal(ev[0].time, T0 + 5);
	assert_int_equal(req(PORTAL_GET, "/history", NULL, NULL, cookie, T0 + 6), 200);
	assert_true(has("Personal data deleted"));
	assert_int_equal(req(PORTAL_POST, "/personal/delete", NULL, form, cookie, T0 + 7), 404);
	assert_int_equal(req(PORTAL_GET, "/personal", NULL, NULL, cookie, T0 + 7), 200);
	assert_true(has("holds no data"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_link_once),
		cmocka_unit_test(t_link_time),
		cmocka_unit_test(t_link_tamper),
		cmocka_unit_test(t_link_table_full),
		cmocka_unit_test(t_sessions),
		cmocka_unit_test(t_escape),
		cmocka_unit_test(t_csv),
		cmocka_unit_test_setup_teardown(t_req_refusals, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(t_req_pages, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(t_req_lock_unlock, db_setup, db_teardown),
		cmocka_unit_test_setup_teardown(t_req_personal_delete, db_setup, db_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
