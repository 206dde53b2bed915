/* portal_io.h - the portal (server/portal.h) on the server's event loop: HTTPS with
 * evhttp over OpenSSL bufferevents, using the server's own certificate (the one phones
 * pin), on a port of its own. docs/portal.md.
 *
 * Limits set explicitly: headers up to PORTAL_HEADERS_MAX bytes, bodies up to
 * PORTAL_HTTP_BODY_MAX (413 above; the core reads forms up to PORTAL_FORM_MAX),
 * PORTAL_TIMEOUT_S per connection read/write, methods GET, POST, HEAD, PUT, DELETE,
 * OPTIONS, PATCH reach the core (which answers 405 to all but its own; others get
 * libevent's 501). Every answer carries Content-Security-Policy default-src 'none';
 * style-src 'self'; form-action 'self'; frame-ancestors 'none', X-Content-Type-Options,
 * Referrer-Policy no-referrer, Cache-Control no-store, X-Frame-Options DENY.
 *
 * The link key: STATE/portal.key (32 random bytes, 0600, made on first use by the
 * server or by `tapbridge admin portal-login`); portal_start also writes
 * STATE/portal.url (its base URL) so admin can print whole links.
 * Threading: everything on the thread that runs the event_base. */
#ifndef TB_IO_PORTAL_IO_H
#define TB_IO_PORTAL_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "server/portal.h"
#include "srv_net.h"

struct event_base;
struct tls_server;
struct portal_srv;

#define PORTAL_HEADERS_MAX 8192u
#define PORTAL_HTTP_BODY_MAX 4096u
#define PORTAL_TIMEOUT_S 10
#define PORTAL_URL_MAX 128u
#define PORTAL_KEY_FILE "portal.key"
#define PORTAL_URL_FILE "portal.url"

struct portal_cfg {
	const char *listen;          /* "HOST:PORT" (port 0 picks one) */
	const char *state_dir;       /* the server's --state: portal.key, portal.url */
	const char *public_url;      /* base of the links ("https://host:port"); NULL: from
	                              * the bound address */
	struct tls_server *tls;      /* the server's certificate; borrowed, outlives the portal */
	struct db *db;               /* borrowed */
	FILE *log;                   /* one line per request; NULL: none */
};

/* Starts the portal on base. bound (may be NULL) gets the address. TB_E_INVAL,
 * TB_E_IO (cannot listen, key file), TB_E_NOMEM, TB_E_CRYPTO. */
int portal_start(struct event_base *base, const struct portal_cfg *cfg, struct portal_srv **out,
		 char bound[SRV_ADDR_MAX]);
/* Stops listening, ends every session, wipes the key. NULL is fine. */
void portal_stop(struct portal_srv *ps);

/* A one-time customer login link for se (what the phone shows): the whole URL,
 * valid PORTAL_LINK_TTL_S. TB_E_NOSPACE, TB_E_CRYPTO. */
int portal_customer_link(struct portal_srv *ps, const uint8_t se[DB_SERIAL_LEN], char *url,
			 size_t cap);

/* Loads STATE/portal.key, or makes it (0600) when missing. A key readable by group or
 * others, or of the wrong size: TB_E_IO. */
int portal_key_load(const char *state_dir, uint8_t key[PORTAL_KEY_LEN]);
/* The base URL a running portal wrote to STATE/portal.url ("" when none). */
int portal_url_load(const char *state_dir, char url[PORTAL_URL_MAX]);

#endif
