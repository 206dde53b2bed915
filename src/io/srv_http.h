/* srv_http.h - the server's HTTP layer, on the same event loop as the phone sessions:
 * the place the portal (a later issue: service menu, usage history, wallet lock and
 * personal data for the phone's browser) plugs in. Plain HTTP for now; the portal issue
 * puts TLS in front.
 *
 * Routes are path prefixes ("/health", "/portal"): a prefix matches the path itself and
 * anything under it ("/portal/menu"), the longest match wins, nothing matches -> 404.
 * Limits: GET and POST only (others get 501 from libevent), headers up to
 * SRV_HTTP_HEADERS_MAX bytes, bodies up to SRV_HTTP_BODY_MAX, SRV_HTTP_TIMEOUT_S per
 * request. "/health" answers 200 "ok" from the start.
 *
 * A handler replies before it returns (srv_http_reply); one that does not gets a 500.
 * Threading: everything on the thread that runs the event_base. */
#ifndef TB_IO_SRV_HTTP_H
#define TB_IO_SRV_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "srv_net.h"

struct event_base;
struct srv_http;
struct srv_http_req;

#define SRV_HTTP_ROUTES_MAX 16u
#define SRV_HTTP_PREFIX_MAX 64u    /* with the NUL */
#define SRV_HTTP_HEADERS_MAX 8192u
#define SRV_HTTP_BODY_MAX 65536u
#define SRV_HTTP_TIMEOUT_S 10

enum srv_http_method { SRV_HTTP_GET = 1, SRV_HTTP_POST = 2 };

/* req is valid until the handler returns. */
typedef void (*srv_http_fn)(struct srv_http_req *req, void *arg);

/* An HTTP server on base listening on "HOST:PORT" (port 0 picks one; bound gets the
 * address, may be NULL). log: one line per request, NULL for none. TB_E_INVAL,
 * TB_E_IO, TB_E_NOMEM. */
int srv_http_new(struct event_base *base, const char *addr, FILE *log, struct srv_http **out,
		 char bound[SRV_ADDR_MAX]);
/* Adds a route: prefix starts with '/', has no '?', '#' or trailing '/' (except "/"
 * itself), shorter than SRV_HTTP_PREFIX_MAX; registering a prefix again replaces its
 * handler (also "/health"). TB_E_INVAL, TB_E_NOSPACE (table full). */
int srv_http_route(struct srv_http *h, const char *prefix, srv_http_fn fn, void *arg);
void srv_http_free(struct srv_http *h);

/* ---- inside a handler ---- */

enum srv_http_method srv_http_method(const struct srv_http_req *r);
/* The path, percent-decoding not applied, without the query; never NULL. */
const char *srv_http_path(const struct srv_http_req *r);
/* The route prefix that matched. */
const char *srv_http_route_of(const struct srv_http_req *r);
/* The raw query string, or NULL. */
const char *srv_http_query(const struct srv_http_req *r);
/* A request header, or NULL. */
const char *srv_http_header(const struct srv_http_req *r, const char *name);
/* The body (at most SRV_HTTP_BODY_MAX bytes), contiguous; *p is NULL when *n is 0. */
void srv_http_body(struct srv_http_req *r, const uint8_t **p, size_t *n);
/* Sends the reply (status 100..599) once; later calls return TB_E_PROTO_STATE.
 * content_type NULL means "text/plain; charset=utf-8". TB_E_INVAL, TB_E_NOMEM. */
int srv_http_reply(struct srv_http_req *r, int status, const char *content_type,
		   const uint8_t *body, size_t n);

#endif
