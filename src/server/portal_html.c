/* portal_html.c - how the portal writes pages: templates with {{name}} slots filled by
 * pt_emit through the one escape function, CSV fields, times and names, the page frame
 * and the stylesheet. What stays true: no value reaches a page without pt_escape(), and
 * a failed append leaves a buffer the caller throws away (pages are all or nothing). */
#include <string.h>
#include <time.h>

#include "err.h"
#include "portal_int.h"

static int put(struct wr *w, const char *s, size_t n)
{
	return wr_bytes(w, (const uint8_t *)s, n);
}

/* The length of the valid UTF-8 sequence at p (1..4), or 0. Overlong forms, surrogates
 * and code points above U+10FFFF are not valid. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
	uint8_t b = p[0];
	size_t len;
	uint32_t cp;

	if (b < 0x80)
		return 1;
	if (b >= 0xC2 && b <= 0xDF)
		len = 2, cp = b & 0x1Fu;
	else if (b >= 0xE0 && b <= 0xEF)
		len = 3, cp = b & 0x0Fu;
	else if (b >= 0xF0 && b <= 0xF4)
		len = 4, cp = b & 0x07u;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3Fu);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
		return 0;
	return len;
}

int pt_escape(struct wr *w, const uint8_t *p, size_t n)
{
	static const char repl[] = "\xEF\xBF\xBD"; /* U+FFFD */
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0;) {
		uint8_t b = p[i];
		size_t len = utf8_len(p + i, n - i);

		if (len == 0 || b < 0x20 || b == 0x7F) {
			rc = put(w, repl, 3);
			i += len == 0 ? 1 : len;
			continue;
		}
		switch (b) {
		case '&': rc = put(w, "&amp;", 5); break;
		case '<': rc = put(w, "&lt;", 4); break;
		case '>': rc = put(w, "&gt;", 4); break;
		case '"': rc = put(w, "&quot;", 6); break;
		case '\'': rc = put(w, "&#39;", 5); break;
		default: rc = wr_bytes(w, p + i, len); break;
		}
		i += len;
	}
	return rc;
}

int pt_emit(struct wr *w, const char *tpl, const struct pt_val *v, size_t nv)
{
	const char *s = tpl;
	int rc = 0;

	while (rc == 0 && *s != '\0') {
		const char *open = strstr(s, "{{"), *close;
		size_t k;

		if (open == NULL)
			return put(w, s, strlen(s));
		rc = put(w, s, (size_t)(open - s));
		close = strstr(open + 2, "}}");
		if (rc != 0 || close == NULL)
			return rc != 0 ? rc : TB_E_INTERNAL;
		for (k = 0; k < nv; k++)
			if (strlen(v[k].name) == (size_t)(close - open - 2) &&
			    strncmp(v[k].name, open + 2, (size_t)(close - open - 2)) == 0)
				break;
		if (k == nv || v[k].text == NULL)
			return TB_E_INTERNAL;
		rc = pt_escape(w, (const uint8_t *)v[k].text,
			       v[k].n == PT_STR ? strlen(v[k].text) : v[k].n);
		s = close + 2;
	}
	return rc;
}

int pt_csv_field(struct wr *w, const char *s, int last)
{
	int rc = 0;

	if (strchr("=+-@", s[0]) != NULL && s[0] != '\0' && (s[1] < '0' || s[1] > '9'))
		rc = put(w, "'", 1); /* not a number: keep a spreadsheet from running it */
	if (rc == 0 && strpbrk(s, ",\"\r\n") != NULL) {
		rc = put(w, "\"", 1);
		for (const char *q = s; rc == 0 && *q != '\0'; q++)
			rc = *q == '"' ? put(w, "\"\"", 2) : put(w, q, 1);
		if (rc == 0)
			rc = put(w, "\"", 1);
	} else if (rc == 0) {
		rc = put(w, s, strlen(s));
	}
	if (rc == 0)
		rc = last ? put(w, "\r\n", 2) : put(w, ",", 1);
	return rc;
}

void pt_udec(uint64_t v, char out[PT_NUM_LEN])
{
	char tmp[PT_NUM_LEN];
	size_t n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10u);
		v /= 10u;
	} while (v != 0);
	for (size_t i = 0; i < n; i++)
		out[i] = tmp[n - 1 - i];
	out[n] = '\0';
}

void pt_dec(const char *prefix, int64_t v, char out[PT_NUM_LEN])
{
	size_t p = strlen(prefix) < 8 ? strlen(prefix) : 8;

	memcpy(out, prefix, p);
	if (v < 0)
		out[p++] = '-';
	pt_udec(v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, out + p);
}

void pt_join(char *out, size_t cap, const char *a, const char *b, const char *c)
{
	const char *parts[3] = { a, b, c };
	size_t o = 0;

	for (size_t i = 0; i < 3; i++)
		for (const char *q = parts[i]; q != NULL && *q != '\0' && o + 1 < cap; q++)
			out[o++] = *q;
	out[o] = '\0';
}

void pt_time(int64_t t, char out[PT_TIME_LEN])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL ||
	    strftime(out, PT_TIME_LEN, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		memcpy(out, "-", 2);
}

void pt_serial(const uint8_t se[DB_SERIAL_LEN], char out[2 * DB_SERIAL_LEN + 1])
{
	static const char hx[] = "0123456789ABCDEF";

	for (size_t i = 0; i < DB_SERIAL_LEN; i++) {
		out[2 * i] = hx[se[i] >> 4];
		out[2 * i + 1] = hx[se[i] & 15];
	}
	out[2 * DB_SERIAL_LEN] = '\0';
}

const char *pt_kind_name(uint8_t kind)
{
	static const char *const names[] = {
		"?", "Refund credited to the phone", "Top-up", "Payment", "Refund", "Lock", "Unlock", "Reported lost",
		"Replacement", "Ticket issued", "Ticket used", "Order", "Identity checked",
		"Backup stored", "Balance moved", "Personal data deleted",
	};

	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

const char *pt_svc_kind_name(uint8_t kind)
{
	static const char *const names[] = { "?", "Personal authentication", "E-money",
					     "E-commerce", "Ticket" };

	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

const char *pt_se_state(const struct db_se *se)
{
	if (se->state == DB_SE_LOST)
		return "Reported lost";
	if (se->pending == DB_SE_LOCK_PENDING)
		return "Lock pending";
	if (se->pending == DB_SE_UNLOCK_PENDING)
		return "Unlock pending";
	return se->state == DB_SE_LOCKED ? "Locked" : "Active";
}

/* ------------------------------------------------------------- frame --- */

static const char tpl_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	"<meta name=\"referrer\" content=\"no-referrer\">"
	"<title>{{title}} - tapbridge</title><link rel=\"stylesheet\" href=\"/style.css\">"
	"</head><body><header><span class=\"brand\">tapbridge</span>";
static const char tpl_nav_customer[] =
	"<nav><a href=\"/\">Wallet</a><a href=\"/tickets\">Tickets</a>"
	"<a href=\"/history\">History</a><a href=\"/wallet\">Lock</a>"
	"<a href=\"/personal\">Personal data</a></nav>";
static const char tpl_nav_operator[] =
	"<nav><a href=\"/op\">Ledgers</a><a href=\"/op/ses\">SEs</a>"
	"<a href=\"/op/readers\">Readers</a></nav>";
static const char tpl_logout[] =
	"<form method=\"post\" action=\"/logout\" class=\"out\">"
	"<input type=\"hidden\" name=\"csrf\" value=\"{{csrf}}\">"
	"<button type=\"submit\">Sign out</button></form>";
static const char tpl_main[] = "</header><main><h1>{{title}}</h1>\n";

int pt_page_open(struct pt_ctx *c, const char *title)
{
	const struct pt_val v[] = { PV("title", title), PV("csrf", c->csrf) };
	struct wr *w = c->rs->body;
	int rc = pt_emit(w, tpl_head, v, 2);

	if (rc == 0 && c->s != NULL) {
		rc = pt_emit(w, c->s->role == PORTAL_OPERATOR ? tpl_nav_operator : tpl_nav_customer,
			     v, 2);
		if (rc == 0)
			rc = pt_emit(w, tpl_logout, v, 2);
	}
	if (rc == 0)
		rc = pt_emit(w, tpl_main, v, 2);
	c->rs->status = 200;
	c->rs->content_type = "text/html; charset=utf-8";
	return rc;
}

int pt_page_close(struct pt_ctx *c)
{
	return pt_emit(c->rs->body, "</main><footer>Times are UTC. Amounts in minor units."
			"</footer></body></html>\n", NULL, 0);
}

int pt_message(struct pt_ctx *c, int status, const char *title, const char *text)
{
	const struct pt_val v[] = { PV("text", text) };
	int rc;

	c->rs->body->len = 0;
	rc = pt_page_open(c, title);
	if (rc == 0)
		rc = pt_emit(c->rs->body, "<p class=\"msg\">{{text}}</p>\n", v, 1);
	if (rc == 0 && c->s == NULL)
		rc = pt_emit(c->rs->body, "<p>To sign in, open the portal from your phone "
				"(<b>Portal</b> in the tapbridge app) and follow the one-time "
				"link it shows.</p>\n", NULL, 0);
	else if (rc == 0)
		rc = pt_emit(c->rs->body, "<p><a href=\"/\">Back</a></p>\n", NULL, 0);
	if (rc == 0)
		rc = pt_page_close(c);
	c->rs->status = status;
	return rc;
}

void pt_redirect(struct pt_ctx *c, const char *where)
{
	size_t n = strlen(where);

	c->rs->status = 303;
	c->rs->body->len = 0;
	if (n < sizeof(c->rs->location))
		memcpy(c->rs->location, where, n + 1);
}

/* --------------------------------------------------------- stylesheet --- */

const char portal_css[] =
	":root{color-scheme:light;--fg:#1b1f24;--mut:#5b6470;--line:#d9dee4;--acc:#0b5cad;"
	"--ok:#1d6b33;--warn:#8a4b00;--bad:#a3161b;--bg:#f5f7f9}\n"
	"*{box-sizing:border-box}\n"
	"body{margin:0;font:16px/1.45 \"DejaVu Sans\",system-ui,sans-serif;color:var(--fg);"
	"background:var(--bg)}\n"
	"header{background:#fff;border-bottom:1px solid var(--line);padding:.5rem .75rem}\n"
	".brand{font-weight:700;color:var(--acc);margin-right:.5rem}\n"
	"nav{display:flex;flex-wrap:wrap;gap:.25rem .75rem;margin:.25rem 0}\n"
	"nav a{color:var(--acc);text-decoration:none;padding:.2rem 0}\n"
	"form.out{display:inline}\n"
	"form.out button{font-size:.85rem;padding:.2rem .5rem;margin-top:.25rem}\n"
	"main{max-width:40rem;margin:0 auto;padding:.75rem}\n"
	"h1{font-size:1.35rem;margin:.25rem 0 .75rem}\n"
	"h2{font-size:1.1rem;margin:1.25rem 0 .5rem}\n"
	".card{background:#fff;border:1px solid var(--line);border-radius:.5rem;"
	"padding:.75rem;margin:.5rem 0}\n"
	".big{font-size:2rem;font-weight:700;margin:.1rem 0}\n"
	".mut{color:var(--mut);font-size:.9rem}\n"
	".st{display:inline-block;padding:.05rem .5rem;border-radius:1rem;font-size:.85rem;"
	"border:1px solid currentColor}\n"
	".st-ok{color:var(--ok)}.st-warn{color:var(--warn)}.st-bad{color:var(--bad)}\n"
	".tw{overflow-x:auto}\n"
	"table{border-collapse:collapse;width:100%;background:#fff;font-size:.9rem}\n"
	"th,td{text-align:left;padding:.35rem .4rem;border-bottom:1px solid var(--line);"
	"vertical-align:top}\n"
	"td.n,th.n{text-align:right;white-space:nowrap}\n"
	"button,input{font:inherit}\n"
	"button{background:var(--acc);color:#fff;border:0;border-radius:.4rem;"
	"padding:.55rem 1rem;min-height:2.5rem}\n"
	"button.danger{background:var(--bad)}\n"
	"input[type=text]{width:100%;padding:.5rem;border:1px solid var(--line);"
	"border-radius:.4rem;font-size:1.2rem;letter-spacing:.1em}\n"
	"label{display:block;margin:.5rem 0 .25rem}\n"
	".msg{background:#fff;border-left:4px solid var(--warn);padding:.75rem}\n"
	".pager{display:flex;justify-content:space-between;margin:.75rem 0}\n"
	"a{color:var(--acc)}\n"
	"footer{max-width:40rem;margin:1rem auto;padding:0 .75rem 1rem;color:var(--mut);"
	"font-size:.8rem}\n";
