/* test_srv_http.c - the HTTP layer (io/srv_http.h) with raw HTTP/1.1 over loopback, the
 * loop in a thread: /health, prefix routes (whole segments, longest wins, a prefix longer
 * than the path, a catch-all "/"), method, query, headers and body reach the handler, a
 * handler that forgets to reply gets 500, a second reply is refused; PUT, oversize bodies
 * and oversize headers are refused by the limits; bad prefixes and a full table are refused. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "err.h"
#include "srv_http.h"
#include "vec.h"

struct hrig {
	struct event_base *base;
	struct srv_http *http;
	struct event *quit;
	int cmd[2];
	pthread_t th;
	uint16_t port;
	int bad_replies; /* loop-thread checks that failed */
};

/* Echoes what it saw: "METHOD route path query header body". */
static void echo_route(struct srv_http_req *r, void *arg)
{
	struct hrig *h = arg;
	char out[512];
	const uint8_t *body;
	size_t n;
	const char *q = srv_http_query(r), *x = srv_http_header(r, "X-Test");
	int len;

	srv_http_body(r, &body, &n);
	len = snprintf(out, sizeof(out), "%s %s %s %s %s %.*s",
		       srv_http_method(r) == SRV_HTTP_POST ? "POST" : "GET", srv_http_route_of(r),
		       srv_http_path(r), q != NULL ? q : "-", x != NULL ? x : "-", (int)n,
		       n > 0 ? (const char *)body : "");
	if (srv_http_reply(r, 200, "text/plain", (const uint8_t *)out, (size_t)len) != 0 ||
	    srv_http_reply(r, 200, NULL, NULL, 0) != TB_E_PROTO_STATE)
		h->bad_replies++;
}

static void silent_route(struct srv_http_req *r, void *arg)
{
	(void)r;
	(void)arg;
}

static void quit_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hrig *h = arg;
	char c;

	(void)what;
	if (read(fd, &c, 1) == 1)
		event_base_loopbreak(h->base);
}

static void *hrig_thread(void *arg)
{
	struct hrig *h = arg;

	event_base_dispatch(h->base);
	return NULL;
}

static void hrig_start(struct hrig *h)
{
	char bound[SRV_ADDR_MAX];

	memset(h, 0, sizeof(*h));
	h->base = event_base_new();
	assert_non_null(h->base);
	assert_int_equal(srv_http_new(h->base, "127.0.0.1:0", NULL, &h->http, bound), 0);
	h->port = (uint16_t)atoi(strrchr(bound, ':') + 1);
	assert_int_equal(srv_http_route(h->http, "/portal", echo_route, h), 0);
	assert_int_equal(srv_http_route(h->http, "/portal/deep", echo_route, h), 0);
	assert_int_equal(srv_http_route(h->http, "/silent", silent_route, h), 0);
	assert_int_equal(pipe(h->cmd), 0);
	h->quit = event_new(h->base, h->cmd[0], EV_READ, quit_cb, h);
	assert_int_equal(event_add(h->quit, NULL), 0);
	assert_int_equal(pthread_create(&h->th, NULL, hrig_thread, h), 0);
}

static void hrig_stop(struct hrig *h)
{
	assert_int_equal(write(h->cmd[1], "q", 1), 1);
	assert_int_equal(pthread_join(h->th, NULL), 0);
	srv_http_free(h->http);
	event_free(h->quit);
	event_base_loop(h->base, EVLOOP_NONBLOCK);
	event_base_free(h->base);
	close(h->cmd[0]);
	close(h->cmd[1]);
	assert_int_equal(h->bad_replies, 0);
}

/* Sends one raw request, returns the whole response (NUL-terminated) in out. */
static size_t http_raw(const struct hrig *h, const char *req, size_t reqlen, char *out, size_t cap)
{
	struct sockaddr_in a;
	struct timeval tv = { 5, 0 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t got = 0;
	ssize_t k;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(h->port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (size_t off = 0; off < reqlen;) {
		k = write(fd, req + off, reqlen - off);
		if (k <= 0)
			break; /* the server may answer and close before reading it all */
		off += (size_t)k;
	}
	while (got + 1 < cap && (k = read(fd, out + got, cap - 1 - got)) > 0)
		got += (size_t)k;
	out[got] = '\0';
	close(fd);
	return got;
}

static void http_get(const struct hrig *h, const char *target, char *out, size_t cap)
{
	char req[512];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
			 target);

	(void)http_raw(h, req, (size_t)n, out, cap);
}

static void assert_status(const char *resp, int status)
{
	char want[32];

	snprintf(want, sizeof(want), "HTTP/1.1 %d ", status);
	if (strncmp(resp, want, strlen(want)) != 0)
		fail_msg("want %d, got: %.60s", status, resp);
}

static const char *body_of(const char *resp)
{
	const char *b = strstr(resp, "\r\n\r\n");

	assert_non_null(b);
	return b + 4;
}

static void test_routes(void **state)
{
	struct hrig h;
	char resp[4096];

	(void)state;
	hrig_start(&h);
	http_get(&h, "/health", resp, sizeof(resp));
	assert_status(resp, 200);
	assert_string_equal(body_of(resp), "ok\n");
	assert_non_null(strstr(resp, "Cache-Control: no-store\r\n"));
	assert_non_null(strstr(resp, "X-Content-Type-Options: nosniff\r\n"));

	http_get(&h, "/portal", resp, sizeof(resp));
	assert_status(resp, 200);
	assert_string_equal(body_of(resp), "GET /portal /portal - - ");
	http_get(&h, "/portal/menu?x=1", resp, sizeof(resp));
	assert_string_equal(body_of(resp), "GET /portal /portal/menu x=1 - ");
	http_get(&h, "/portal/deep/er", resp, sizeof(resp));
	assert_string_equal(body_of(resp), "GET /portal/deep /portal/deep/er - - ");
	http_get(&h, "/portal/deeper", resp, sizeof(resp)); /* not a whole segment */
	assert_string_equal(body_of(resp), "GET /portal /portal/deeper - - ");
	http_get(&h, "/portalx", resp, sizeof(resp));
	assert_status(resp, 404);
	http_get(&h, "/p", resp, sizeof(resp)); /* shorter than every prefix */
	assert_status(resp, 404);
	http_get(&h, "/", resp, sizeof(resp));
	assert_status(resp, 404);
	http_get(&h, "/silent", resp, sizeof(resp));
	assert_status(resp, 500);
	hrig_stop(&h);
}

static void test_post_and_limits(void **state)
{
	static char big[SRV_HTTP_BODY_MAX + 4096];
	static const char post[] = "POST /portal/lock?now=1 HTTP/1.1\r\nHost: t\r\nX-Test: yes\r\n"
				   "Content-Length: 5\r\nConnection: close\r\n\r\nhello";
	static const char put[] = "PUT /portal HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	struct hrig h;
	char resp[4096];
	int n;

	(void)state;
	hrig_start(&h);
	(void)http_raw(&h, post, sizeof(post) - 1, resp, sizeof(resp));
	assert_status(resp, 200);
	assert_string_equal(body_of(resp), "POST /portal /portal/lock now=1 yes hello");
	(void)http_raw(&h, put, sizeof(put) - 1, resp, sizeof(resp));
	assert_status(resp, 501);

	n = snprintf(big, sizeof(big), "POST /portal HTTP/1.1\r\nHost: t\r\nContent-Length: %u\r\n"
				       "Connection: close\r\n\r\n", SRV_HTTP_BODY_MAX + 1);
	memset(big + n, 'b', SRV_HTTP_BODY_MAX + 1);
	(void)http_raw(&h, big, (size_t)n + SRV_HTTP_BODY_MAX + 1, resp, sizeof(resp));
	assert_status(resp, 413);

	n = snprintf(big, sizeof(big), "GET /portal HTTP/1.1\r\nHost: t\r\nX-Long: ");
	memset(big + n, 'h', SRV_HTTP_HEADERS_MAX);
	n += (int)SRV_HTTP_HEADERS_MAX;
	n += snprintf(big + n, sizeof(big) - (size_t)n, "\r\nConnection: close\r\n\r\n");
	(void)http_raw(&h, big, (size_t)n, resp, sizeof(resp));
	assert_null(strstr(resp, "HTTP/1.1 200")); /* refused: an error status or a close */
	hrig_stop(&h);
}

static void test_route_table(void **state)
{
	struct event_base *base = event_base_new();
	struct srv_http *http = NULL;
	char name[32];
	size_t added = 1; /* /health */

	(void)state;
	assert_int_equal(srv_http_new(base, "127.0.0.1:0", NULL, &http, NULL), 0);
	assert_int_equal(srv_http_route(http, "portal", echo_route, NULL), TB_E_INVAL);
	assert_int_equal(srv_http_route(http, "/portal/", echo_route, NULL), TB_E_INVAL);
	assert_int_equal(srv_http_route(http, "/a?b", echo_route, NULL), TB_E_INVAL);
	assert_int_equal(srv_http_route(http, "/a#b", echo_route, NULL), TB_E_INVAL);
	assert_int_equal(srv_http_route(http, "/ok", NULL, NULL), TB_E_INVAL);
	assert_int_equal(srv_http_route(http, "/health", echo_route, NULL), 0); /* replaced */
	assert_int_equal(srv_http_route(http, "/", echo_route, NULL), 0);
	added++;
	while (added < SRV_HTTP_ROUTES_MAX) {
		snprintf(name, sizeof(name), "/r%zu", added);
		assert_int_equal(srv_http_route(http, name, echo_route, NULL), 0);
		added++;
	}
	assert_int_equal(srv_http_route(http, "/one-more", echo_route, NULL), TB_E_NOSPACE);
	assert_int_equal(srv_http_route(http, "/r5", silent_route, NULL), 0); /* still replaceable */
	srv_http_free(http);
	assert_int_equal(srv_http_new(base, "nonsense", NULL, &http, NULL), TB_E_INVAL);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_post_and_limits),
		cmocka_unit_test(test_route_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
