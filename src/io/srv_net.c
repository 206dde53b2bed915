/* srv_net.c - the phone transport's server side (see srv_net.h): configuration, log
 * lines, addresses, the listener, the session table and the sweep that enforces every
 * session's deadlines. One session's life is in srv_sess.c. What stays true: a slot
 * holds at most one live session, and its id never repeats. */
#define _DEFAULT_SOURCE /* inet_ntop */
#include "srv_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "lib/err.h"

#define SRV_BACKLOG 1024
#define SRV_ACCEPT_RETRY_MS 1000u
#define SRV_LOG_MAX 256

void srv_config_default(struct srv_config *c)
{
	c->max_sessions = 20000;
	c->hello_ms = 10000;
	c->idle_ms = 300000;
	c->frame_ms = 10000;
	c->write_ms = 10000;
	c->close_ms = 2000;
	c->out_high = SRV_OUT_HIGH;
	c->log = stderr;
}

/* ---- logs ---- */

static void srv_vlog(const struct srv *srv, const struct srv_session *s, const char *event,
		     const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void srv_vlog(const struct srv *srv, const struct srv_session *s, const char *event,
		     const char *fmt, va_list ap)
{
	char rest[SRV_LOG_MAX] = "";

	if (srv->cfg.log == NULL)
		return;
	if (fmt != NULL)
		vsnprintf(rest, sizeof(rest), fmt, ap);
	if (s != NULL)
		fprintf(srv->cfg.log, "srv session=%llu event=%s%s%s\n", (unsigned long long)s->id,
			event, rest[0] ? " " : "", rest);
	else
		fprintf(srv->cfg.log, "srv event=%s%s%s\n", event, rest[0] ? " " : "", rest);
}

static void srv_glog(const struct srv *srv, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void srv_glog(const struct srv *srv, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	srv_vlog(srv, NULL, event, fmt, ap);
	va_end(ap);
}

void srv_log(const struct srv_session *s, const char *event, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	srv_vlog(s->srv, s, event, fmt, ap);
	va_end(ap);
}

int srv_addr_text(const struct sockaddr *sa, char out[SRV_ADDR_MAX])
{
	char host[INET6_ADDRSTRLEN];
	int n;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		if (inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)) == NULL)
			return TB_E_INVAL;
		n = snprintf(out, SRV_ADDR_MAX, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)) == NULL)
			return TB_E_INVAL;
		n = snprintf(out, SRV_ADDR_MAX, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		return TB_E_INVAL;
	}
	return n > 0 && n < (int)SRV_ADDR_MAX ? 0 : TB_E_INVAL;
}

/* libevent refuses port 0, which tests and tools use to get a free port: a ":0" suffix
 * is parsed as the host alone, whose port libevent leaves at 0. */
int srv_addr_parse(const char *addr, struct sockaddr *sa, int *len)
{
	char host[SRV_ADDR_MAX];
	size_t n = addr != NULL ? strlen(addr) : 0;

	if (n < 3 || n >= sizeof(host))
		return TB_E_INVAL;
	if (strcmp(addr + n - 2, ":0") == 0) {
		memcpy(host, addr, n - 2);
		host[n - 2] = '\0';
		if (host[0] == '[' && host[n - 3] == ']') { /* "[::1]" -> "::1" */
			memmove(host, host + 1, n - 4);
			host[n - 4] = '\0';
		}
		return evutil_parse_sockaddr_port(host, sa, len) == 0 ? 0 : TB_E_INVAL;
	}
	return evutil_parse_sockaddr_port(addr, sa, len) == 0 ? 0 : TB_E_INVAL;
}

/* ---- the session table ---- */

size_t srv_count(const struct srv *srv) { return srv->count; }
void srv_get_stats(const struct srv *srv, struct srv_stats *st) { *st = srv->stats; }

static void srv_sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv *srv = arg;
	uint64_t now = srv_now_ms();

	(void)fd;
	(void)what;
	for (size_t i = 0; i < srv->cfg.max_sessions; i++)
		if (srv->slots[i] != NULL)
			srv_sess_check(srv->slots[i], now);
}

/* ---- accepting ---- */

static void srv_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
			  int salen, void *arg)
{
	struct srv *srv = arg;

	(void)l;
	(void)sa;
	(void)salen;
	if (srv->shutting || srv->n_free == 0) {
		srv_glog(srv, "refused", "reason=%s sessions=%zu", srv->shutting ? "shutdown" : "busy",
			 srv->count);
		srv->stats.refused++;
		evutil_closesocket(fd);
		return;
	}
	if (srv_sess_new(srv, fd) != 0) {
		srv_glog(srv, "refused", "reason=nomem");
		srv->stats.refused++;
	}
}

/* Out of descriptors: the pending connection stays readable, so stop accepting for a
 * while instead of spinning on it. */
static void srv_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct srv *srv = arg;
	struct timeval tv = { SRV_ACCEPT_RETRY_MS / 1000u, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	srv_glog(srv, "accept-error", "detail=\"%s\"", strerror(err));
	if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
		evconnlistener_disable(l);
		evtimer_add(srv->accept_retry, &tv);
	}
}

static void srv_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv *srv = arg;

	(void)fd;
	(void)what;
	if (srv->lst != NULL && !srv->shutting)
		evconnlistener_enable(srv->lst);
}

/* ---- the server ---- */

static unsigned srv_tick_ms(const struct srv_config *c)
{
	unsigned m = c->hello_ms;

	if (c->idle_ms < m)
		m = c->idle_ms;
	if (c->frame_ms < m)
		m = c->frame_ms;
	if (c->close_ms < m)
		m = c->close_ms;
	m /= 4;
	return m < 10 ? 10 : m > 500 ? 500 : m;
}

int srv_new(struct event_base *base, struct tls_server *tls, const struct srv_config *cfg,
	    const struct srv_handlers *h, void *arg, struct srv **out)
{
	struct srv *srv = NULL;
	struct timeval tick;
	unsigned ms;

	if (base == NULL || tls == NULL || cfg == NULL || h == NULL || out == NULL ||
	    cfg->max_sessions == 0 || cfg->max_sessions > SRV_SESSIONS_LIMIT || cfg->hello_ms == 0 ||
	    cfg->idle_ms == 0 || cfg->frame_ms == 0 || cfg->write_ms == 0 || cfg->close_ms == 0 ||
	    cfg->out_high < 1024)
		return TB_E_INVAL;
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		return TB_E_NOMEM;
	srv->base = base;
	srv->tls = tls;
	srv->cfg = *cfg;
	srv->h = *h;
	srv->arg = arg;
	srv->slots = calloc(cfg->max_sessions, sizeof(*srv->slots));
	srv->free_slots = calloc(cfg->max_sessions, sizeof(*srv->free_slots));
	srv->sweep = event_new(base, -1, EV_PERSIST, srv_sweep_cb, srv);
	srv->accept_retry = evtimer_new(base, srv_accept_retry_cb, srv);
	if (srv->slots == NULL || srv->free_slots == NULL || srv->sweep == NULL ||
	    srv->accept_retry == NULL) {
		srv_free(srv);
		return TB_E_NOMEM;
	}
	for (size_t i = 0; i < cfg->max_sessions; i++)
		srv->free_slots[i] = (uint32_t)(cfg->max_sessions - 1 - i);
	srv->n_free = cfg->max_sessions;
	ms = srv_tick_ms(cfg);
	tick.tv_sec = (time_t)(ms / 1000u);
	tick.tv_usec = (suseconds_t)((ms % 1000u) * 1000u);
	event_add(srv->sweep, &tick);
	*out = srv;
	return 0;
}

int srv_listen(struct srv *srv, const char *addr, char bound[SRV_ADDR_MAX])
{
	struct sockaddr_storage ss;
	socklen_t blen = sizeof(ss);
	int len = (int)sizeof(ss);

	if (srv->lst != NULL || srv_addr_parse(addr, (struct sockaddr *)&ss, &len) != 0)
		return TB_E_INVAL;
	srv->lst = evconnlistener_new_bind(srv->base, srv_accept_cb, srv,
					   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
						   LEV_OPT_CLOSE_ON_EXEC,
					   SRV_BACKLOG, (struct sockaddr *)&ss, len);
	if (srv->lst == NULL)
		return TB_E_IO;
	evconnlistener_set_error_cb(srv->lst, srv_accept_error_cb);
	if (bound != NULL &&
	    (getsockname(evconnlistener_get_fd(srv->lst), (struct sockaddr *)&ss, &blen) != 0 ||
	     srv_addr_text((struct sockaddr *)&ss, bound) != 0))
		return TB_E_IO;
	return 0;
}

void srv_shutdown(struct srv *srv)
{
	srv->shutting = 1;
	if (srv->lst != NULL)
		evconnlistener_disable(srv->lst);
	for (size_t i = 0; i < srv->cfg.max_sessions; i++)
		if (srv->slots[i] != NULL)
			srv_close_with_error(srv->slots[i], PROTO_ERR_SHUTDOWN, NULL);
}

void srv_free(struct srv *srv)
{
	if (srv == NULL)
		return;
	for (size_t i = 0; srv->slots != NULL && i < srv->cfg.max_sessions; i++) {
		struct srv_session *s = srv->slots[i];

		if (s == NULL)
			continue;
		bufferevent_free(s->bev);
		free(s);
	}
	if (srv->lst != NULL)
		evconnlistener_free(srv->lst);
	if (srv->sweep != NULL)
		event_free(srv->sweep);
	if (srv->accept_retry != NULL)
		event_free(srv->accept_retry);
	free(srv->slots);
	free(srv->free_slots);
	free(srv);
}
