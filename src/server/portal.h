/* portal.h - the web portal (the patent's portal 71 and user interface 72), as a core:
 * the customer's pages (service menu, balance, tickets, history with CSV export, wallet
 * lock and unlock, personal data) and the operator's read-only view, with the login
 * links, sessions, CSRF tokens and unlock codes behind them. No I/O, no allocation: the
 * adapter (io/portal_io.c) feeds one request at a time and sends what comes back.
 * docs/portal.md.
 *
 * Login links are MAC'd, not stored: token = role(1) || serial(8) || issued_ms(8) ||
 * ttl_s(2) || nonce(12) || CMAC-AES-256(key, those 31 bytes)(16), in hex. Anyone with
 * the key (the server, `tapbridge admin portal-login`, both read STATE/portal.key) can
 * mint one; the portal takes each nonce once (a table of used nonces until they
 * expire) and refuses links issued before it started (so a restart cannot make a used
 * link good again).
 *
 * Sessions live in a fixed table: a random 32-byte id (the cookie) and a random 32-byte
 * CSRF token per session, an idle and an absolute timeout; ids and tokens are compared
 * with ct_eq(). Everything the portal shows goes through one escape function
 * (portal_html.c); the only writes are lock, unlock (with the operator's code),
 * personal data deletion and the pending marks: each one db request, committed before
 * the reply. */
#ifndef TB_SERVER_PORTAL_H
#define TB_SERVER_PORTAL_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "db.h"

#define PORTAL_KEY_LEN 32
#define PORTAL_NONCE_LEN 12
#define PORTAL_MAC_LEN 16
#define PORTAL_LINK_BYTES (1 + DB_SERIAL_LEN + 8 + 2 + PORTAL_NONCE_LEN + PORTAL_MAC_LEN) /* 47 */
#define PORTAL_LINK_HEX (2 * PORTAL_LINK_BYTES + 1)        /* with the NUL */
#define PORTAL_LINK_TTL_S 120u         /* default life of a login link */
#define PORTAL_LINK_TTL_MAX 600u
#define PORTAL_SESSIONS_MAX 64u
#define PORTAL_USED_MAX 256u           /* used link nonces remembered until they expire */
#define PORTAL_IDLE_S 600              /* a session unused this long ends */
#define PORTAL_ABS_S 3600              /* and any session after this */
#define PORTAL_ID_LEN 32               /* session id (the cookie) and CSRF token */
#define PORTAL_ID_HEX (2 * PORTAL_ID_LEN + 1)
#define PORTAL_COOKIE "tbp"
#define PORTAL_CODE_DIGITS 8           /* the operator's unlock code */
#define PORTAL_CODE_TTL_S 900u         /* default life of an unlock code */
#define PORTAL_CODE_TRIES 5u           /* wrong codes before the code is dead */
#define PORTAL_HISTORY_PAGE 25u        /* rows per history page */
#define PORTAL_FORM_MAX 2048u          /* largest form body the portal reads */
#define PORTAL_PATH_MAX 256u
#define PORTAL_BODY_MIN 65536u         /* the smallest response buffer portal_handle takes */

enum portal_role { PORTAL_CUSTOMER = 1, PORTAL_OPERATOR = 2 };
enum portal_method { PORTAL_GET = 1, PORTAL_POST = 2, PORTAL_HEAD = 3, PORTAL_OTHER = 4 };

struct portal_sess {
	uint8_t in_use;
	uint8_t role;                        /* enum portal_role */
	uint8_t se[DB_SERIAL_LEN];           /* the customer's se (zero for the operator) */
	uint8_t id[PORTAL_ID_LEN];           /* SECRET */
	uint8_t csrf[PORTAL_ID_LEN];         /* SECRET */
	int64_t created;
	int64_t last;
};

struct portal_used {
	uint8_t nonce[PORTAL_NONCE_LEN];
	int64_t until_ms;                    /* 0: free */
};

/* About 11 KiB: the server keeps one. */
struct portal {
	uint8_t key[PORTAL_KEY_LEN];         /* SECRET: the link MAC key */
	int64_t start_ms;                    /* links issued before are refused */
	struct portal_sess sess[PORTAL_SESSIONS_MAX];
	struct portal_used used[PORTAL_USED_MAX];
};

void portal_init(struct portal *p, const uint8_t key[PORTAL_KEY_LEN], int64_t start_ms);
/* Wipes the key and every session. */
void portal_wipe(struct portal *p);

/* ---- login links ---- */

/* A login link token for role (and se, for a customer; ignored for the operator) valid
 * ttl_s (1..PORTAL_LINK_TTL_MAX) seconds from now_ms. TB_E_INVAL, TB_E_CRYPTO. */
int portal_link_make(const uint8_t key[PORTAL_KEY_LEN], uint8_t role, const uint8_t se[DB_SERIAL_LEN],
		     int64_t now_ms, uint32_t ttl_s, char out[PORTAL_LINK_HEX]);
/* Checks a token (MAC, issued after the portal started and not in the future by more
 * than a minute, not expired, nonce not used before) and marks its nonce used. All
 * refusals: TB_E_PORTAL_LINK; the used-nonce table full: TB_E_PORTAL_FULL. *role, se:
 * written on success only. */
int portal_link_use(struct portal *p, const char *tok, int64_t now_ms, uint8_t *role,
		    uint8_t se[DB_SERIAL_LEN]);

/* ---- sessions ---- */

/* A new session (a free slot or an expired one); TB_E_PORTAL_FULL, TB_E_CRYPTO. */
int portal_sess_new(struct portal *p, uint8_t role, const uint8_t se[DB_SERIAL_LEN], int64_t now,
		    struct portal_sess **out);
/* The session whose id is the hex in cookie (exactly PORTAL_ID_HEX - 1 digits); ends it
 * when idle or too old. Refreshes its idle time. TB_E_PORTAL_SESSION. */
int portal_sess_find(struct portal *p, const char *hex, int64_t now, struct portal_sess **out);
void portal_sess_end(struct portal_sess *s);
/* 1 when hex is the session's CSRF token. */
int portal_csrf_ok(const struct portal_sess *s, const char *hex);

/* ---- unlock codes ---- */

/* A fresh random code of PORTAL_CODE_DIGITS digits (digits gets them and a NUL) and
 * its stored form for serial, valid ttl_s from now. TB_E_CRYPTO, TB_E_INVAL. */
int portal_code_new(const uint8_t se[DB_SERIAL_LEN], int64_t now, uint32_t ttl_s,
		    char digits[PORTAL_CODE_DIGITS + 1], struct db_unlock_code *out);
/* Checks a typed code against the se's stored one: 0 and the code is deleted;
 * TB_E_PORTAL_CODE (wrong: the try is counted; expired or none), TB_E_PORTAL_TRIES
 * (PORTAL_CODE_TRIES wrong ones: the code is dead), TB_E_DB*. Call inside a request. */
int portal_code_check(struct db *db, const uint8_t se[DB_SERIAL_LEN], const char *typed,
		      int64_t now, uint32_t *tries_left);

/* ---- requests ---- */

struct portal_req {
	uint8_t method;                      /* enum portal_method */
	const char *path;                    /* as sent, without the query; not NULL */
	const char *query;                   /* raw, or NULL */
	const char *cookie;                  /* the Cookie header, or NULL */
	const char *origin;                  /* the Origin header, or NULL */
	const char *fetch_site;              /* the Sec-Fetch-Site header, or NULL */
	const char *host;                    /* the Host header, or NULL */
	const char *content_type;            /* or NULL */
	const uint8_t *body;                 /* the body (NULL when n is 0) */
	size_t body_n;
	int64_t now;                         /* seconds since 1970 */
	int64_t now_ms;
};

#define PORTAL_SET_COOKIE_MAX 160
#define PORTAL_LOCATION_MAX 64

struct portal_resp {
	int status;
	const char *content_type;            /* static text */
	const char *allow;                   /* 405: the Allow header, else NULL */
	const char *disposition;             /* CSV: Content-Disposition, else NULL */
	char set_cookie[PORTAL_SET_COOKIE_MAX]; /* "" or a Set-Cookie value */
	char location[PORTAL_LOCATION_MAX];  /* "" or where a 303 goes */
	struct wr *body;                     /* the caller's buffer, at least PORTAL_BODY_MIN */
	/* CSV export: more rows follow; send the body, empty it, call portal_csv_more(). */
	int more;
	uint64_t cursor;
	uint8_t csv_se[DB_SERIAL_LEN];
	const char *log_route;               /* a fixed name for the log line */
};

/* Answers one request into rs (every field set). Returns 0, or an error of the storage
 * when the page could not be made (rs then holds a 500 page). */
int portal_handle(struct portal *p, struct db *db, const struct portal_req *rq,
		  struct portal_resp *rs);
/* The next rows of a CSV export (rs->more was 1): appended to rs->body, rs->more again. */
int portal_csv_more(struct db *db, struct portal_resp *rs);

/* The stylesheet, served at /style.css (also for tests). */
extern const char portal_css[];

#endif
