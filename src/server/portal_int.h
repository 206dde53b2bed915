/* portal_int.h - inside the portal core: the template emitter with its one escape
 * function (portal_html.c), the page context the handlers share, and the handlers of
 * portal_pages.c (customer) and portal_op.c (operator). */
#ifndef TB_SERVER_PORTAL_INT_H
#define TB_SERVER_PORTAL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "portal.h"

/* A named value for a template: text of n bytes (PT_STR: up to its NUL). Every value
 * is escaped by pt_emit; nothing else writes values into a page. */
struct pt_val {
	const char *name;
	const char *text;
	size_t n;
};
#define PT_STR ((size_t)-1)
#define PV(name, text) { (name), (text), PT_STR }

/* Appends tpl to w with every "{{name}}" replaced by the escaped value of that name;
 * an unknown name or an unclosed "{{" is TB_E_INTERNAL. TB_E_NOSPACE. */
int pt_emit(struct wr *w, const char *tpl, const struct pt_val *v, size_t nv);
/* The one HTML escape: & < > " ' as entities; control bytes and invalid UTF-8 as
 * U+FFFD; everything else as is. */
int pt_escape(struct wr *w, const uint8_t *p, size_t n);
/* One CSV field (RFC 4180 quoting); a field that a spreadsheet would run as a formula
 * (= + - @ first) gets a leading apostrophe. */
int pt_csv_field(struct wr *w, const char *s, int last);

#define PT_NUM_LEN 32
/* Decimal text (a '-' when negative); a prefix (may be "") goes first: "+", "reader ". */
void pt_dec(const char *prefix, int64_t v, char out[PT_NUM_LEN]);
void pt_udec(uint64_t v, char out[PT_NUM_LEN]);
/* a, b, c joined into out[cap] (NULL for none), cut to fit. */
void pt_join(char *out, size_t cap, const char *a, const char *b, const char *c);

#define PT_TIME_LEN 24
/* "2026-01-02 13:45 UTC" (or "-" for 0). */
void pt_time(int64_t t, char out[PT_TIME_LEN]);
void pt_serial(const uint8_t se[DB_SERIAL_LEN], char out[2 * DB_SERIAL_LEN + 1]);
const char *pt_kind_name(uint8_t kind);        /* history kinds */
const char *pt_svc_kind_name(uint8_t kind);    /* service kinds */
const char *pt_se_state(const struct db_se *se);

/* What a handler gets. */
struct pt_ctx {
	struct portal *p;
	struct db *db;
	const struct portal_req *rq;
	struct portal_resp *rs;
	struct portal_sess *s;               /* NULL on public pages */
	char csrf[PORTAL_ID_HEX];            /* the session's token, hex */
	/* the form or query fields a route takes (NULL: absent) */
	const char *f_csrf, *f_code, *f_serial, *f_confirm, *f_before, *f_t;
	char form[PORTAL_FORM_MAX + 1];      /* decoded fields live here */
};

/* The page frame: title, the navigation of the session's role (with the sign-out
 * form), then the handler's body, then pt_page_close. */
int pt_page_open(struct pt_ctx *c, const char *title);
int pt_page_close(struct pt_ctx *c);
/* A whole page with a heading and one paragraph, and the status. */
int pt_message(struct pt_ctx *c, int status, const char *title, const char *text);
/* A 303 to a fixed local path. */
void pt_redirect(struct pt_ctx *c, const char *where);

/* customer (portal_pages.c) */
int pt_home(struct pt_ctx *c);
int pt_tickets(struct pt_ctx *c);
int pt_history(struct pt_ctx *c);
int pt_history_csv(struct pt_ctx *c);
int pt_wallet(struct pt_ctx *c);
int pt_lock(struct pt_ctx *c);
int pt_unlock(struct pt_ctx *c);
int pt_personal(struct pt_ctx *c);
int pt_personal_delete(struct pt_ctx *c);
/* operator (portal_op.c) */
int pt_op_home(struct pt_ctx *c);
int pt_op_ses(struct pt_ctx *c);
int pt_op_readers(struct pt_ctx *c);
int pt_op_lock(struct pt_ctx *c);
int pt_op_unlock(struct pt_ctx *c);

/* Lock / unlock with the pending mark, as one committed request (portal_pages.c). */
int pt_set_lock(struct db *db, const uint8_t se[DB_SERIAL_LEN], int lock, int64_t now);

#endif
