/* fuzz_portal.c - the portal's input parsers: whole requests through portal_handle (path,
 * method, query and form fields, Cookie, Origin, Content-Type) over a stateless fake db
 * (the parsers are static in portal_route.c), then the login link, session and CSRF
 * checks on the raw input. Input: flags (bits 0-1 method, 2 query, 3 cookie, 4-5 the
 * customer's se: active/locked/lost, 6 body as is), then NUL-separated path, query,
 * cookie, origin, fetch-site, host, content-type, a text the db hands out as names and
 * personal data, and the body (the rest). Outside a raw body "$c"/"$o" become the
 * customer's/operator's session id, "$t"/"$T" their CSRF tokens, "$l"/"$L" fresh login
 * links. Checked: a db that never fails gives rc 0, a known status, an escaped page,
 * terminated headers; a link under a good MAC parses only to a valid role, and once. */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "hex.h"
#include "portal_int.h"

#define T0 1800000000LL
static const uint8_t KEY[PORTAL_KEY_LEN] = { 7, 1, 7, 2, 7, 3 };
static const uint8_t SES[3][DB_SERIAL_LEN] = { { 0x53, 0x45, 0, 0, 0, 0, 0, 1 },
					       { 0x53, 0x45, 0, 0, 0, 0, 0, 2 },
					       { 0x53, 0x45, 0, 0, 0, 0, 0, 3 } };
static const uint8_t NONE[DB_SERIAL_LEN];
static const char CODE[PORTAL_CODE_DIGITS + 1] = "12345678"; /* the fake's unlock code */
static struct portal P;
static uint8_t body_buf[PORTAL_BODY_MIN];
static char name[DB_ATTR_VALUE_MAX]; /* from the input: service names, personal data */
static size_t name_n;

static void check(int ok)
{
	if (!ok)
		abort();
}

/* ---- a db that never fails: three ses (active, locked, lost), rows made up ---- */

static int f_ok(struct db *db) { (void)db; return 0; }
static void f_void(struct db *db) { (void)db; }
static int f_req_end(struct db *db, int ok) { (void)db; (void)ok; return 0; }
static int f_se_get(struct db *db, const uint8_t s[DB_SERIAL_LEN], struct db_se *o)
{
	(void)db;
	for (uint8_t i = 0; i < 3; i++)
		if (memcmp(s, SES[i], DB_SERIAL_LEN) == 0) {
			memset(o, 0, sizeof(*o));
			memcpy(o->serial, s, DB_SERIAL_LEN);
			o->state = (uint8_t)(DB_SE_ACTIVE + i);
			o->pending = i == 1 ? DB_SE_LOCK_PENDING : DB_SE_PENDING_NONE;
			o->pending_since = i == 1 ? T0 - 60 : 0;
			return 0;
		}
	return TB_E_DB_NOT_FOUND;
}
static int f_se_set_state(struct db *db, const uint8_t s[DB_SERIAL_LEN], uint8_t st,
			  const uint8_t *r, int64_t now)
{
	(void)db; (void)s; (void)st; (void)r; (void)now;
	return 0;
}
static int f_se_set_pending(struct db *db, const uint8_t s[DB_SERIAL_LEN], uint8_t p, int64_t now)
{
	(void)db; (void)s; (void)p; (void)now;
	return 0;
}
static int f_deny(struct db *db, const uint8_t *after, uint8_t (*o)[DB_SERIAL_LEN], size_t cap,
		  size_t *n, uint64_t *ver)
{
	(void)db; (void)after;
	*n = cap < 2 ? cap : 2;
	memcpy(o, SES[1], *n * DB_SERIAL_LEN);
	*ver = 3;
	return 0;
}
static int f_service_get(struct db *db, uint32_t id, struct db_service *o)
{
	(void)db;
	if (id == 0 || id > 3)
		return TB_E_DB_NOT_FOUND;
	memset(o, 0, sizeof(*o));
	o->id = id;
	o->kind = (uint8_t)id;
	memcpy(o->name, name, name_n < DB_NAME_MAX ? name_n : DB_NAME_MAX - 1);
	return 0;
}
static int f_account_get(struct db *db, const char *nm, struct db_account *o)
{
	(void)db;
	memset(o, 0, sizeof(*o));
	o->id = 1;
	o->kind = nm[0] == 'F' ? DB_ACCT_FLOAT : DB_ACCT_REVENUE;
	o->balance = nm[0] == 'F' ? -1234 : 1234;
	return 0;
}
static int f_audit(struct db *db, struct db_audit *o)
{
	(void)db;
	memset(o, 0, sizeof(*o));
	o->transfers = 5;
	o->postings = 10;
	return 0;
}
static int f_tickets(struct db *db, const uint8_t s[DB_SERIAL_LEN], uint64_t after,
		     struct db_ticket *o, size_t cap, size_t *n)
{
	(void)db;
	*n = 0;
	for (uint64_t id = after + 1; id <= 3 && *n < cap; id++, (*n)++) {
		memset(&o[*n], 0, sizeof(o[*n]));
		o[*n].id = id;
		memcpy(o[*n].se, s, DB_SERIAL_LEN);
		o[*n].service = (uint32_t)id;
		o[*n].valid_from = T0 - 10;
		o[*n].valid_until = T0 + 10 * (int64_t)id - 20;
		o[*n].uses_left = (uint32_t)id - 1;
		o[*n].state = (uint8_t)id;
	}
	return 0;
}
static int f_pauth_get(struct db *db, const uint8_t s[DB_SERIAL_LEN], struct db_pauth *o)
{
	(void)db;
	if (memcmp(s, SES[0], DB_SERIAL_LEN) != 0)
		return TB_E_DB_NOT_FOUND;
	memset(o, 0, sizeof(*o));
	memcpy(o->se, s, DB_SERIAL_LEN);
	memcpy(o->identifier, name, name_n < DB_NAME_MAX ? name_n : DB_NAME_MAX - 1);
	o->n_attrs = 2;
	memcpy(o->attrs[0].name, "name", 5);
	memcpy(o->attrs[0].value, name, name_n);
	o->attrs[0].len = name_n;
	memcpy(o->attrs[1].name, "<b>", 4);
	return 0;
}
static int f_pauth_delete(struct db *db, const uint8_t s[DB_SERIAL_LEN])
{
	(void)db;
	return memcmp(s, SES[0], DB_SERIAL_LEN) == 0 ? 0 : TB_E_DB_NOT_FOUND;
}
static int f_history_add(struct db *db, const struct db_event *ev, uint64_t *id)
{
	(void)db; (void)ev;
	if (id != NULL)
		*id = 1000;
	return 0;
}
/* 100 rows, ids 100..1, newest first: two history pages and two CSV rounds. */
static int f_history(struct db *db, const uint8_t s[DB_SERIAL_LEN], uint64_t before,
		     struct db_event *o, size_t cap, size_t *n)
{
	(void)db;
	*n = 0;
	for (uint64_t id = before == 0 || before > 101 ? 100 : before - 1; id >= 1 && *n < cap;
	     id--, (*n)++) {
		memset(&o[*n], 0, sizeof(o[*n]));
		o[*n].id = id;
		o[*n].time = T0 - (int64_t)id * 3600;
		o[*n].kind = (uint8_t)(id % 17);
		o[*n].has_se = 1;
		memcpy(o[*n].se, s, DB_SERIAL_LEN);
		o[*n].reader = (uint32_t)(id % 3);
		o[*n].service = (uint32_t)(id % 5);
		o[*n].amount = (int64_t)id * 100 - 5000;
	}
	return 0;
}
static int f_se_list(struct db *db, const uint8_t *after, struct db_se *o, size_t cap, size_t *n)
{
	*n = 0;
	for (size_t i = 0; i < 3 && *n < cap; i++)
		if (after == NULL || memcmp(SES[i], after, DB_SERIAL_LEN) > 0)
			(void)f_se_get(db, SES[i], &o[(*n)++]);
	return 0;
}
static int f_reader_list(struct db *db, uint32_t after, struct db_reader *o, size_t cap,
			 size_t *n)
{
	(void)db;
	*n = 0;
	for (uint32_t id = after + 1; id <= 2 && *n < cap; id++, (*n)++) {
		memset(&o[*n], 0, sizeof(o[*n]));
		o[*n].id = id;
		o[*n].state = (uint8_t)id;
		o[*n].last_contact = id == 1 ? 0 : T0 - 5;
	}
	return 0;
}
static int f_code_get(struct db *db, const uint8_t s[DB_SERIAL_LEN], struct db_unlock_code *o)
{
	uint8_t msg[DB_CODE_SALT_LEN + DB_SERIAL_LEN + PORTAL_CODE_DIGITS] = { 0 };

	(void)db;
	memset(o, 0, sizeof(*o));
	memcpy(msg + DB_CODE_SALT_LEN, s, DB_SERIAL_LEN);
	memcpy(msg + DB_CODE_SALT_LEN + DB_SERIAL_LEN, CODE, PORTAL_CODE_DIGITS);
	o->expires = T0 + 60;
	o->tries = name_n % 7; /* some dead codes too */
	return crypto_sha256(msg, sizeof(msg), o->hash) == 0 ? 0 : TB_E_CRYPTO;
}
static int f_code_put(struct db *db, const uint8_t s[DB_SERIAL_LEN], const struct db_unlock_code *c)
{
	(void)db; (void)s; (void)c;
	return 0;
}
static int f_code_del(struct db *db, const uint8_t s[DB_SERIAL_LEN])
{
	(void)db; (void)s;
	return 0;
}

static const struct db_ops fake_ops = {
	.batch_begin = f_ok, .batch_commit = f_ok, .batch_abort = f_void, .req_begin = f_ok,
	.req_end = f_req_end, .se_get = f_se_get, .se_set_state = f_se_set_state,
	.deny_list = f_deny, .service_get = f_service_get, .account_get = f_account_get,
	.ledger_audit = f_audit, .tickets_of_se = f_tickets, .pauth_get = f_pauth_get,
	.history_add = f_history_add, .history_by_se = f_history, .se_list = f_se_list,
	.reader_list = f_reader_list, .se_set_pending = f_se_set_pending,
	.pauth_delete = f_pauth_delete, .code_put = f_code_put, .code_get = f_code_get,
	.code_del = f_code_del,
};
static struct db fake_db = { &fake_ops };

/* ---- the request ---- */

/* Copies src into dst (NUL-terminated), each "$c", "$o", "$t", "$T", "$l", "$L" expanded. */
static void expand(const char *src, char *dst, size_t cap)
{
	size_t o = 0;

	for (; *src != '\0' && o + PORTAL_LINK_HEX < cap; src++) {
		char hex[PORTAL_LINK_HEX];
		const char *rep = NULL;

		if (src[0] == '$' && src[1] == 'c')
			rep = hex_encode(P.sess[0].id, PORTAL_ID_LEN, HEX_PUBLIC, hex, sizeof(hex)) ? "" : hex;
		else if (src[0] == '$' && src[1] == 'o')
			rep = hex_encode(P.sess[1].id, PORTAL_ID_LEN, HEX_PUBLIC, hex, sizeof(hex)) ? "" : hex;
		else if (src[0] == '$' && (src[1] == 't' || src[1] == 'T'))
			rep = hex_encode(P.sess[src[1] == 'T'].csrf, PORTAL_ID_LEN, HEX_PUBLIC, hex,
					 sizeof(hex)) ? "" : hex;
		else if (src[0] == '$' && (src[1] == 'l' || src[1] == 'L'))
			rep = portal_link_make(KEY, src[1] == 'l' ? PORTAL_CUSTOMER : PORTAL_OPERATOR,
					       SES[0], T0 * 1000, 60, hex) ? "" : hex;
		if (rep == NULL) {
			dst[o++] = *src;
			continue;
		}
		memcpy(dst + o, rep, strlen(rep));
		o += strlen(rep);
		src++;
	}
	dst[o] = '\0';
}

static void sess_set(struct portal_sess *s, uint8_t role, const uint8_t se[DB_SERIAL_LEN],
		     uint8_t fill)
{
	s->in_use = 1;
	s->role = role;
	memcpy(s->se, se, DB_SERIAL_LEN);
	memset(s->id, fill, PORTAL_ID_LEN);
	memset(s->csrf, fill ^ 0x5A, PORTAL_ID_LEN);
	s->created = s->last = T0 - 30;
}

/* Everything the portal writes into a page is escaped: no control bytes but \n. */
static void check_resp(const struct portal_resp *rs, const struct wr *w)
{
	int html = strncmp(rs->content_type, "text/html", 9) == 0;

	check(memchr(rs->set_cookie, '\0', sizeof(rs->set_cookie)) != NULL);
	check(memchr(rs->location, '\0', sizeof(rs->location)) != NULL);
	check(rs->status == 200 || rs->status == 303 || (rs->status >= 400 && rs->status <= 415) ||
	      rs->status == 503);
	check(rs->status != 303 || rs->location[0] == '/');
	check(rs->status != 405 || rs->allow != NULL);
	for (size_t i = 0; html && i < w->len; i++)
		check(w->p[i] >= 0x20 || w->p[i] == '\n');
}

static void request(const uint8_t *data, size_t size)
{
	static char f[8][PORTAL_FORM_MAX + 1 + 4 * PORTAL_LINK_HEX];
	static const uint8_t methods[4] = { PORTAL_GET, PORTAL_POST, PORTAL_HEAD, PORTAL_OTHER };
	static uint8_t bd[PORTAL_FORM_MAX + 2 * PORTAL_LINK_HEX];
	char raw[PORTAL_FORM_MAX + 1];
	struct wr w = wr_init(body_buf, sizeof(body_buf));
	struct portal_req rq = { 0 };
	struct portal_resp rs = { .body = &w };
	size_t at = 1, k;
	int rc;

	portal_init(&P, KEY, T0 * 1000 - 5000);
	sess_set(&P.sess[0], PORTAL_CUSTOMER, SES[(data[0] >> 4) % 3], 0xC1);
	sess_set(&P.sess[1], PORTAL_OPERATOR, NONE, 0x0B);
	for (k = 0; k < 8 && at <= size; k++) {
		const uint8_t *end = memchr(data + at, 0, size - at);
		size_t n = end != NULL ? (size_t)(end - data) - at : size - at;

		if (n > PORTAL_FORM_MAX)
			n = PORTAL_FORM_MAX;
		memcpy(raw, data + at, n);
		raw[n] = '\0';
		if (k == 7) {
			name_n = n < sizeof(name) ? n : sizeof(name);
			memcpy(name, raw, name_n);
		} else {
			expand(raw, f[k], sizeof(f[k]));
		}
		at += n + 1;
	}
	if (k < 8)
		return;
	rq.method = methods[data[0] & 3];
	rq.path = f[0];
	rq.query = (data[0] & 4) ? f[1] : NULL;
	rq.cookie = (data[0] & 8) ? f[2] : NULL;
	rq.origin = f[3][0] != '\0' ? f[3] : NULL;
	rq.fetch_site = f[4][0] != '\0' ? f[4] : NULL;
	rq.host = f[5][0] != '\0' ? f[5] : NULL;
	rq.content_type = f[6][0] != '\0' ? f[6] : NULL;
	if (at < size && (data[0] & 0x40)) { /* as is: NULs and all */
		rq.body_n = size - at < sizeof(bd) ? size - at : sizeof(bd);
		memcpy(bd, data + at, rq.body_n);
	} else if (at < size) {
		k = size - at < PORTAL_FORM_MAX ? size - at : PORTAL_FORM_MAX;
		memcpy(raw, data + at, k);
		raw[k] = '\0';
		expand(raw, (char *)bd, sizeof(bd));
		rq.body_n = strlen((const char *)bd);
	}
	rq.body = rq.body_n > 0 ? bd : NULL;
	rq.now = T0;
	rq.now_ms = T0 * 1000;
	rc = portal_handle(&P, &fake_db, &rq, &rs);
	check(rc == 0);
	check_resp(&rs, &w);
	for (int round = 0; rs.more && round < 10; round++) {
		w.len = 0;
		check(portal_csv_more(&fake_db, &rs) == 0);
	}
	check(!rs.more);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char tok[2 * PORTAL_LINK_BYTES + 2];
	uint8_t body[PORTAL_LINK_BYTES], role = 0, se[DB_SERIAL_LEN];
	struct portal_sess *s = NULL;
	size_t n = size < sizeof(tok) - 1 ? size : sizeof(tok) - 1;

	if (size == 0)
		return 0;
	request(data, size);
	/* the raw input as a link, a cookie and a CSRF token */
	memcpy(tok, data, n);
	tok[n] = '\0';
	portal_init(&P, KEY, 0);
	sess_set(&P.sess[0], PORTAL_CUSTOMER, SES[0], 0xC1);
	check(portal_link_use(&P, tok, T0 * 1000, &role, se) != 0);
	check(portal_sess_find(&P, tok, T0, &s) != 0 || s == &P.sess[0]);
	(void)portal_csrf_ok(&P.sess[0], tok);
	/* the input as a link's body under a good MAC: only the checks behind it decide */
	if (size >= PORTAL_LINK_BYTES - PORTAL_MAC_LEN) {
		memcpy(body, data, PORTAL_LINK_BYTES - PORTAL_MAC_LEN);
		check(crypto_cmac(KEY, PORTAL_KEY_LEN, body, PORTAL_LINK_BYTES - PORTAL_MAC_LEN,
				  body + PORTAL_LINK_BYTES - PORTAL_MAC_LEN) == 0);
		check(hex_encode(body, sizeof(body), HEX_PUBLIC, tok, sizeof(tok)) == 0);
		role = 0;
		if (portal_link_use(&P, tok, T0 * 1000, &role, se) == 0) {
			check(role == PORTAL_CUSTOMER || role == PORTAL_OPERATOR);
			check(portal_link_use(&P, tok, T0 * 1000, &role, se) == TB_E_PORTAL_LINK);
		}
	}
	return 0;
}
