/* srv_http.c - the HTTP layer (see srv_http.h): evhttp on the server's event loop, a
 * fixed table of prefix routes, explicit limits. What stays true: every request gets
 * exactly one reply, and a log line names the route, never the path or query (they may
 * carry personal data). */
#include "srv_http.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "lib/err.h"

#define SRV_HTTP_BACKLOG 128

struct srv_http_route_ent {
	char prefix[SRV_HTTP_PREFIX_MAX];
	size_t len;
	srv_http_fn fn;
	void *arg;
};

struct srv_http {
	struct evhttp *http;
	FILE *log;
	size_t n_routes;
	struct srv_http_route_ent routes[SRV_HTTP_ROUTES_MAX];
};

struct srv_http_req {
	struct evhttp_request *req;
	const struct srv_http_route_ent *route;
	const char *path;
	const char *query;
	int status; /* 0 until replied */
};

static void http_health(struct srv_http_req *r, void *arg)
{
	static const uint8_t ok[] = "ok\n";

	(void)arg;
	(void)srv_http_reply(r, 200, NULL, ok, sizeof(ok) - 1);
}

static int http_prefix_ok(const char *p)
{
	size_t n;

	if (p == NULL || p[0] != '/')
		return 0;
	n = strlen(p);
	if (n >= SRV_HTTP_PREFIX_MAX || (n > 1 && p[n - 1] == '/'))
		return 0;
	return strpbrk(p, "?#") == NULL;
}

int srv_http_route(struct srv_http *h, const char *prefix, srv_http_fn fn, void *arg)
{
	struct srv_http_route_ent *e = NULL;

	if (!http_prefix_ok(prefix) || fn == NULL)
		return TB_E_INVAL;
	for (size_t i = 0; i < h->n_routes; i++)
		if (strcmp(h->routes[i].prefix, prefix) == 0)
			e = &h->routes[i];
	if (e == NULL) {
		if (h->n_routes == SRV_HTTP_ROUTES_MAX)
			return TB_E_NOSPACE;
		e = &h->routes[h->n_routes++];
		e->len = strlen(prefix);
		memcpy(e->prefix, prefix, e->len + 1);
	}
	e->fn = fn;
	e->arg = arg;
	return 0;
}

/* The longest prefix that is the path or a whole-segment start of it. */
static const struct srv_http_route_ent *http_match(const struct srv_http *h, const char *path)
{
	const struct srv_http_route_ent *best = NULL;

	for (size_t i = 0; i < h->n_routes; i++) {
		const struct srv_http_route_ent *e = &h->routes[i];

		/* path[e->len] exists only once the prefix has matched */
		if (strncmp(path, e->prefix, e->len) != 0)
			continue;
		if ((e->len == 1 || path[e->len] == '\0' || path[e->len] == '/') &&
		    (best == NULL || e->len > best->len))
			best = e;
	}
	return best;
}

static void http_gencb(struct evhttp_request *req, void *arg)
{
	static const uint8_t not_found[] = "not found\n", no_reply[] = "no reply\n";
	struct srv_http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	struct srv_http_req r = { req, NULL, NULL, NULL, 0 };

	r.path = uri != NULL ? evhttp_uri_get_path(uri) : NULL;
	r.query = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	if (r.path == NULL || r.path[0] == '\0')
		r.path = "/";
	r.route = http_match(h, r.path);
	if (r.route == NULL) {
		(void)srv_http_reply(&r, 404, NULL, not_found, sizeof(not_found) - 1);
	} else {
		r.route->fn(&r, r.route->arg);
		if (r.status == 0)
			(void)srv_http_reply(&r, 500, NULL, no_reply, sizeof(no_reply) - 1);
	}
	if (h->log != NULL)
		fprintf(h->log, "srv http event=request method=%s route=%s status=%d\n",
			srv_http_method(&r) == SRV_HTTP_POST ? "POST" : "GET",
			r.route != NULL ? r.route->prefix : "-", r.status);
}

int srv_http_new(struct event_base *base, const char *addr, FILE *log, struct srv_http **out,
		 char bound[SRV_ADDR_MAX])
{
	struct srv_http *h = NULL;
	struct evconnlistener *lst = NULL;
	struct sockaddr_storage ss;
	socklen_t blen = sizeof(ss);
	int len = (int)sizeof(ss), rc = TB_E_NOMEM;

	if (base == NULL || addr == NULL || out == NULL ||
	    srv_addr_parse(addr, (struct sockaddr *)&ss, &len) != 0)
		return TB_E_INVAL;
	h = calloc(1, sizeof(*h));
	if (h == NULL || (h->http = evhttp_new(base)) == NULL)
		goto out;
	h->log = log;
	evhttp_set_max_headers_size(h->http, SRV_HTTP_HEADERS_MAX);
	evhttp_set_max_body_size(h->http, SRV_HTTP_BODY_MAX);
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
	evhttp_set_timeout(h->http, SRV_HTTP_TIMEOUT_S);
	evhttp_set_gencb(h->http, http_gencb, h);
	if (srv_http_route(h, "/health", http_health, NULL) != 0)
		goto out;
	rc = TB_E_IO;
	lst = evconnlistener_new_bind(base, NULL, NULL,
				      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
				      SRV_HTTP_BACKLOG, (struct sockaddr *)&ss, len);
	if (lst == NULL)
		goto out;
	if (evhttp_bind_listener(h->http, lst) == NULL) {
		evconnlistener_free(lst);
		goto out;
	}
	if (bound != NULL &&
	    (getsockname(evconnlistener_get_fd(lst), (struct sockaddr *)&ss, &blen) != 0 ||
	     srv_addr_text((struct sockaddr *)&ss, bound) != 0))
		goto out;
	*out = h;
	h = NULL;
	rc = 0;
out:
	srv_http_free(h);
	return rc;
}

void srv_http_free(struct srv_http *h)
{
	if (h == NULL)
		return;
	if (h->http != NULL)
		evhttp_free(h->http);
	free(h);
}

enum srv_http_method srv_http_method(const struct srv_http_req *r)
{
	return evhttp_request_get_command(r->req) == EVHTTP_REQ_POST ? SRV_HTTP_POST : SRV_HTTP_GET;
}

const char *srv_http_path(const struct srv_http_req *r) { return r->path; }
const char *srv_http_route_of(const struct srv_http_req *r) { return r->route->prefix; }
const char *srv_http_query(const struct srv_http_req *r) { return r->query; }

const char *srv_http_header(const struct srv_http_req *r, const char *name)
{
	return evhttp_find_header(evhttp_request_get_input_headers(r->req), name);
}

void srv_http_body(struct srv_http_req *r, const uint8_t **p, size_t *n)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(r->req);

	*n = evbuffer_get_length(in);
	*p = *n > 0 ? evbuffer_pullup(in, -1) : NULL;
	if (*p == NULL)
		*n = 0;
}

int srv_http_reply(struct srv_http_req *r, int status, const char *content_type,
		   const uint8_t *body, size_t n)
{
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(r->req);
	struct evbuffer *buf;

	if (r->status != 0)
		return TB_E_PROTO_STATE;
	if (status < 100 || status > 599 || (body == NULL && n > 0))
		return TB_E_INVAL;
	buf = evbuffer_new();
	if (buf == NULL || (n > 0 && evbuffer_add(buf, body, n) != 0) ||
	    evhttp_add_header(hdr, "Content-Type",
			      content_type != NULL ? content_type : "text/plain; charset=utf-8") != 0 ||
	    evhttp_add_header(hdr, "Cache-Control", "no-store") != 0 ||
	    evhttp_add_header(hdr, "X-Content-Type-Options", "nosniff") != 0) {
		if (buf != NULL)
			evbuffer_free(buf);
		return TB_E_NOMEM;
	}
	evhttp_send_reply(r->req, status, NULL, buf);
	evbuffer_free(buf);
	r->status = status;
	return 0;
}
