/* portal_route.c - one request through the portal: the path and method against a fixed
 * route table, the query and form fields each route takes (nothing else), the session
 * cookie, the Origin and CSRF checks for every POST, then the route's handler; and the
 * public routes (login link, sign-out, stylesheet). What stays true: every refusal is a
 * whole page with its status and happens before any handler runs, so it changes nothing. */
#include <stddef.h>
#include <string.h>

#include "ct.h"
#include "err.h"
#include "hex.h"
#include "portal_int.h"

enum { F_CSRF = 1, F_CODE = 2, F_SERIAL = 4, F_CONFIRM = 8, F_BEFORE = 16, F_T = 32 };

struct field {
	const char *name;
	unsigned bit;
	size_t off;                          /* of the const char * in struct pt_ctx */
};

static const struct field fields[] = {
	{ "csrf", F_CSRF, offsetof(struct pt_ctx, f_csrf) },
	{ "code", F_CODE, offsetof(struct pt_ctx, f_code) },
	{ "serial", F_SERIAL, offsetof(struct pt_ctx, f_serial) },
	{ "confirm", F_CONFIRM, offsetof(struct pt_ctx, f_confirm) },
	{ "before", F_BEFORE, offsetof(struct pt_ctx, f_before) },
	{ "t", F_T, offsetof(struct pt_ctx, f_t) },
};

enum { R_PUBLIC = 0, R_ANY = 3 }; /* else enum portal_role */

struct route {
	const char *path;
	uint8_t method;                      /* enum portal_method */
	uint8_t role;
	unsigned query, form;                /* the fields it takes (F_*) */
	int (*fn)(struct pt_ctx *c);
};

static int pt_login(struct pt_ctx *c);
static int pt_logout(struct pt_ctx *c);
static int pt_css(struct pt_ctx *c);
static int pt_root(struct pt_ctx *c);

static const struct route routes[] = {
	{ "/", PORTAL_GET, R_ANY, 0, 0, pt_root },
	{ "/login", PORTAL_GET, R_PUBLIC, F_T, 0, pt_login },
	{ "/logout", PORTAL_POST, R_ANY, 0, F_CSRF, pt_logout },
	{ "/style.css", PORTAL_GET, R_PUBLIC, 0, 0, pt_css },
	{ "/tickets", PORTAL_GET, PORTAL_CUSTOMER, 0, 0, pt_tickets },
	{ "/history", PORTAL_GET, PORTAL_CUSTOMER, F_BEFORE, 0, pt_history },
	{ "/history.csv", PORTAL_GET, PORTAL_CUSTOMER, 0, 0, pt_history_csv },
	{ "/wallet", PORTAL_GET, PORTAL_CUSTOMER, 0, 0, pt_wallet },
	{ "/lock", PORTAL_POST, PORTAL_CUSTOMER, 0, F_CSRF, pt_lock },
	{ "/unlock", PORTAL_POST, PORTAL_CUSTOMER, 0, F_CSRF | F_CODE, pt_unlock },
	{ "/personal", PORTAL_GET, PORTAL_CUSTOMER, 0, 0, pt_personal },
	{ "/personal/delete", PORTAL_POST, PORTAL_CUSTOMER, 0, F_CSRF | F_CONFIRM,
	  pt_personal_delete },
	{ "/op", PORTAL_GET, PORTAL_OPERATOR, 0, 0, pt_op_home },
	{ "/op/ses", PORTAL_GET, PORTAL_OPERATOR, 0, 0, pt_op_ses },
	{ "/op/readers", PORTAL_GET, PORTAL_OPERATOR, 0, 0, pt_op_readers },
	{ "/op/lock", PORTAL_POST, PORTAL_OPERATOR, 0, F_CSRF | F_SERIAL, pt_op_lock },
	{ "/op/unlock", PORTAL_POST, PORTAL_OPERATOR, 0, F_CSRF | F_SERIAL, pt_op_unlock },
};
#define N_ROUTES (sizeof(routes) / sizeof(routes[0]))

/* ------------------------------------------------------------ parsing --- */

/* Letters, digits, '/', '.', '_', '-'; no "..", no "//": nothing to decode, nothing to
 * climb out of. */
static int path_ok(const char *p)
{
	size_t n = strlen(p);

	if (n == 0 || n > PORTAL_PATH_MAX || p[0] != '/' || strstr(p, "..") != NULL ||
	    strstr(p, "//") != NULL)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '/' || ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Splits "a=1&b=2" (form encoding: '+' is a space, %XX a byte; no NUL, no field twice,
 * only the fields in `allowed`) into c->form and the f_* pointers. */
static int parse_fields(struct pt_ctx *c, const uint8_t *in, size_t n, unsigned allowed)
{
	size_t o = 0, i = 0;
	unsigned seen = 0;

	if (n > PORTAL_FORM_MAX)
		return TB_E_PORTAL_REQUEST;
	while (i < n) {
		size_t start = o, k;

		/* the name, up to '=' */
		while (i < n && in[i] != '=' && in[i] != '&')
			c->form[o++] = (char)in[i++];
		if (i == n || in[i] != '=')
			return TB_E_PORTAL_REQUEST;
		c->form[o++] = '\0';
		i++;
		for (k = 0; k < sizeof(fields) / sizeof(fields[0]); k++)
			if (strcmp(fields[k].name, c->form + start) == 0)
				break;
		if (k == sizeof(fields) / sizeof(fields[0]) || (fields[k].bit & allowed) == 0 ||
		    (fields[k].bit & seen) != 0)
			return TB_E_PORTAL_REQUEST;
		seen |= fields[k].bit;
		*(const char **)(void *)((char *)c + fields[k].off) = c->form + o;
		for (; i < n && in[i] != '&'; i++) {
			int hi, lo;

			if (in[i] == '+') {
				c->form[o++] = ' ';
			} else if (in[i] != '%') {
				c->form[o++] = (char)in[i];
			} else {
				if (i + 2 >= n)
					return TB_E_PORTAL_REQUEST;
				hi = hexval((char)in[i + 1]);
				lo = hexval((char)in[i + 2]);
				if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
					return TB_E_PORTAL_REQUEST;
				c->form[o++] = (char)(hi << 4 | lo);
				i += 2;
			}
		}
		c->form[o++] = '\0';
		if (i < n)
			i++; /* the '&' */
	}
	return 0;
}

/* The value of the one "tbp" cookie, into out; 0 when none or more than one. */
static int cookie_value(const char *hdr, char out[PORTAL_ID_HEX])
{
	const size_t name_n = sizeof(PORTAL_COOKIE) - 1;
	int found = 0;

	for (const char *s = hdr; s != NULL && *s != '\0';) {
		size_t len;

		s += strspn(s, " ;");
		len = strcspn(s, ";");
		if (len > name_n && strncmp(s, PORTAL_COOKIE "=", name_n + 1) == 0) {
			if (found || len - name_n - 1 != PORTAL_ID_HEX - 1)
				return 0;
			memcpy(out, s + name_n + 1, PORTAL_ID_HEX - 1);
			out[PORTAL_ID_HEX - 1] = '\0';
			found = 1;
		}
		s += len;
	}
	return found;
}

/* A POST another site made: refused whatever the cookie and token say. Browsers say so
 * in Sec-Fetch-Site, and in Origin unless it is "null" (what our no-referrer policy
 * makes a browser send for our own forms); the CSRF token is checked after this. */
static int origin_ok(const struct portal_req *rq)
{
	static const char scheme[] = "https://";

	if (rq->fetch_site != NULL && strcmp(rq->fetch_site, "same-origin") != 0 &&
	    strcmp(rq->fetch_site, "none") != 0)
		return 0;
	if (rq->origin == NULL || strcmp(rq->origin, "null") == 0)
		return 1;
	return rq->host != NULL && strncmp(rq->origin, scheme, sizeof(scheme) - 1) == 0 &&
	       strcmp(rq->origin + sizeof(scheme) - 1, rq->host) == 0;
}

/* ------------------------------------------------------ public routes --- */

static void set_cookie(struct pt_ctx *c, const struct portal_sess *s)
{
	char hex[PORTAL_ID_HEX];
	struct wr w = wr_init((uint8_t *)c->rs->set_cookie, sizeof(c->rs->set_cookie) - 1);
	static const char attrs[] = "; Path=/; Secure; HttpOnly; SameSite=Strict";

	if (s == NULL) {
		(void)wr_bytes(&w, (const uint8_t *)PORTAL_COOKIE "=; Max-Age=0", sizeof(PORTAL_COOKIE) + 11);
	} else {
		(void)hex_encode(s->id, PORTAL_ID_LEN, HEX_PUBLIC, hex, sizeof(hex));
		(void)wr_bytes(&w, (const uint8_t *)PORTAL_COOKIE "=", sizeof(PORTAL_COOKIE));
		(void)wr_bytes(&w, (const uint8_t *)hex, PORTAL_ID_HEX - 1);
		ct_wipe(hex, sizeof(hex));
	}
	(void)wr_bytes(&w, (const uint8_t *)attrs, sizeof(attrs) - 1);
	c->rs->set_cookie[w.len] = '\0';
}

static int pt_login(struct pt_ctx *c)
{
	uint8_t role = 0, se[DB_SERIAL_LEN];
	struct portal_sess *s = NULL;
	struct db_se rec;
	int rc;

	rc = portal_link_use(c->p, c->f_t, c->rq->now_ms, &role, se);
	if (rc == TB_E_PORTAL_FULL)
		return pt_message(c, 503, "Busy", "Too many sign-ins at once. Ask for a new link in a "
				  "minute.");
	if (rc != 0)
		return pt_message(c, 403, "Link not valid", "This sign-in link has expired, was "
				  "already used, or is not a tapbridge link. Ask your phone for a new "
				  "one.");
	if (role == PORTAL_CUSTOMER && (rc = c->db->ops->se_get(c->db, se, &rec)) != 0)
		return rc == TB_E_DB_NOT_FOUND ?
			       pt_message(c, 403, "Link not valid", "This wallet is not known here.") : rc;
	if (c->s != NULL)
		portal_sess_end(c->s); /* a new sign-in replaces the browser's old session */
	c->s = NULL;
	rc = portal_sess_new(c->p, role, se, c->rq->now, &s);
	if (rc == TB_E_PORTAL_FULL)
		return pt_message(c, 503, "Busy", "Too many people are signed in. Try again later.");
	if (rc != 0)
		return rc;
	set_cookie(c, s);
	pt_redirect(c, role == PORTAL_OPERATOR ? "/op" : "/");
	return 0;
}

static int pt_logout(struct pt_ctx *c)
{
	portal_sess_end(c->s);
	c->s = NULL;
	set_cookie(c, NULL);
	return pt_message(c, 200, "Signed out", "You are signed out. This browser's session no "
			  "longer works, also not from a copy of its cookie.");
}

static int pt_css(struct pt_ctx *c)
{
	c->rs->status = 200;
	c->rs->content_type = "text/css; charset=utf-8";
	return wr_bytes(c->rs->body, (const uint8_t *)portal_css, strlen(portal_css));
}

static int pt_root(struct pt_ctx *c)
{
	if (c->s->role == PORTAL_OPERATOR) {
		pt_redirect(c, "/op");
		return 0;
	}
	return pt_home(c);
}

/* ----------------------------------------------------------- dispatch --- */

static void resp_reset(struct portal_resp *rs)
{
	rs->status = 500;
	rs->content_type = "text/html; charset=utf-8";
	rs->allow = NULL;
	rs->disposition = NULL;
	rs->set_cookie[0] = '\0';
	rs->location[0] = '\0';
	rs->body->len = 0;
	rs->more = 0;
	rs->cursor = 0;
	rs->log_route = "-";
}

/* The checks before a handler: 0 to run it, else the refusal page is made (rc of that). */
static int admit(struct pt_ctx *c, const struct route **out)
{
	const struct portal_req *rq = c->rq;
	const struct route *r = NULL;
	char cookie[PORTAL_ID_HEX];
	int any_path = 0;

	if (!path_ok(rq->path))
		return pt_message(c, 400, "Bad request", "That address is not valid here.");
	for (size_t i = 0; i < N_ROUTES; i++)
		if (strcmp(routes[i].path, rq->path) == 0) {
			any_path = 1;
			c->rs->log_route = routes[i].path;
			if (routes[i].method == rq->method)
				r = &routes[i];
		}
	if (!any_path)
		return pt_message(c, 404, "Not found", "There is no such page.");
	if (r == NULL) {
		for (size_t i = 0; i < N_ROUTES; i++)
			if (strcmp(routes[i].path, rq->path) == 0)
				c->rs->allow = routes[i].method == PORTAL_GET ? "GET" : "POST";
		return pt_message(c, 405, "Method not allowed", "This page does not take that kind "
				  "of request.");
	}
	c->rs->log_route = r->path;
	if (rq->query != NULL &&
	    parse_fields(c, (const uint8_t *)rq->query, strlen(rq->query), r->query) != 0)
		return pt_message(c, 400, "Bad request", "That address carries something this page "
				  "does not take.");
	if (rq->cookie != NULL && cookie_value(rq->cookie, cookie))
		(void)portal_sess_find(c->p, cookie, rq->now, &c->s);
	if (c->s != NULL)
		(void)hex_encode(c->s->csrf, PORTAL_ID_LEN, HEX_PUBLIC, c->csrf, sizeof(c->csrf));
	if (r->role != R_PUBLIC && c->s == NULL)
		return pt_message(c, 401, "Signed out", "You are not signed in, or your session "
				  "ended (after 10 minutes unused, an hour at most, or a sign-out).");
	if (r->role != R_PUBLIC && r->role != R_ANY && c->s->role != r->role)
		return pt_message(c, 403, "Not for this sign-in", "This page belongs to another "
				  "kind of sign-in.");
	if (r->method == PORTAL_POST) {
		if (rq->content_type == NULL ||
		    strncmp(rq->content_type, "application/x-www-form-urlencoded", 33) != 0)
			return pt_message(c, 415, "Bad request", "Forms only.");
		if (rq->body_n > PORTAL_FORM_MAX)
			return pt_message(c, 413, "Too large", "That form is larger than any of ours.");
		if (parse_fields(c, rq->body, rq->body_n, r->form) != 0)
			return pt_message(c, 400, "Bad request", "That form is not one of ours.");
		if (!origin_ok(rq) || !portal_csrf_ok(c->s, c->f_csrf))
			return pt_message(c, 403, "Form expired", "That form did not come from this "
					  "session's page. Nothing was changed; open the page again.");
	}
	*out = r;
	return 0;
}

int portal_handle(struct portal *p, struct db *db, const struct portal_req *rq,
		  struct portal_resp *rs)
{
	static struct pt_ctx c; /* one request at a time; 2 KiB of fields */
	const struct route *r = NULL;
	int rc;

	memset(&c, 0, sizeof(c));
	c.p = p;
	c.db = db;
	c.rq = rq;
	c.rs = rs;
	resp_reset(rs);
	if (rs->body->cap < PORTAL_BODY_MIN)
		return TB_E_NOSPACE;
	rc = admit(&c, &r);
	if (rc == 0 && r != NULL)
		rc = r->fn(&c);
	if (rc != 0) {
		const char *route = rs->log_route;

		resp_reset(rs);
		rs->log_route = route;
		(void)pt_message(&c, 500, "Something went wrong", "The server could not answer. "
				 "Nothing was changed.");
	}
	ct_wipe(c.csrf, sizeof(c.csrf));
	ct_wipe(c.form, sizeof(c.form));
	return rc;
}
