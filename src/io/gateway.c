/* gateway.c - the gateway relay of gateway.h: per phone line a bufferevent pair, and per
 * direction a FIFO of timestamped chunks drained by one timer.
 * What stays true: bytes leave in the order they came and unchanged; due times never go
 * backwards within a direction; a side is not read while the backlog towards the other
 * side is over GW_PENDING_MAX; a line is freed only from the loop, once, after its log line. */
#define _DEFAULT_SOURCE /* TCP_NODELAY */
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include "io/gateway.h"
#include "lib/err.h"

#define GW_CHUNK_MAX (64u * 1024u) /* largest chunk taken from one read */
#define GW_BACKLOG 128

/* A direction is named by the side it reads: side 0 is the phone, side 1 the server. */
enum { GW_PHONE = 0, GW_SERVER = 1 };

struct gw_chunk {
	struct gw_chunk *next;
	int64_t due_us;
	size_t len;
	uint8_t data[];
};

struct gw_line;

struct gw_dir {
	struct gw_line *line;
	int side;              /* the side this direction reads */
	struct gw_chunk *head, *tail;
	size_t held;           /* bytes in the chunks */
	int64_t last_due_us;
	struct event *timer;
	uint64_t bytes;        /* forwarded to the other side */
	uint32_t stretched;    /* chunks given the extra rto */
	int eof;               /* the source ended: flush, then shut the destination's write */
	int shut;
};

struct gw_line {
	struct gw *g;
	struct gw_line *prev, *next;
	uint64_t id;
	struct bufferevent *bev[2];
	struct gw_dir dir[2];
	int connected;         /* the server side */
	int64_t t0_us;
};

struct gw {
	struct event_base *base;
	struct evconnlistener *lst;
	struct sockaddr_storage to;
	int to_len;
	struct gw_opts o;
	uint64_t rng;
	struct gw_line *lines;
	uint64_t nlines, open;
	uint64_t up, down, stretched; /* of closed lines */
};

static int64_t gw_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* xorshift64*: enough for "is this chunk lost", and repeatable from --seed. */
static uint32_t gw_rand(struct gw *g)
{
	g->rng ^= g->rng >> 12;
	g->rng ^= g->rng << 25;
	g->rng ^= g->rng >> 27;
	return (uint32_t)((g->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static void line_close(struct gw_line *l)
{
	struct gw *g = l->g;

	if (g->o.log != NULL)
		fprintf(g->o.log, "gw line=%" PRIu64 " up=%" PRIu64 " down=%" PRIu64
			" ms=%" PRId64 " stretched=%u\n", l->id, l->dir[GW_PHONE].bytes,
			l->dir[GW_SERVER].bytes, (gw_now_us() - l->t0_us) / 1000,
			l->dir[GW_PHONE].stretched + l->dir[GW_SERVER].stretched);
	g->up += l->dir[GW_PHONE].bytes;
	g->down += l->dir[GW_SERVER].bytes;
	g->stretched += l->dir[GW_PHONE].stretched + l->dir[GW_SERVER].stretched;
	g->open--;
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		g->lines = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	for (int d = 0; d < 2; d++) {
		struct gw_chunk *c = l->dir[d].head;

		while (c != NULL) {
			struct gw_chunk *n = c->next;

			free(c);
			c = n;
		}
		if (l->dir[d].timer != NULL)
			event_free(l->dir[d].timer);
		if (l->bev[d] != NULL)
			bufferevent_free(l->bev[d]);
	}
	free(l);
}

static size_t dir_backlog(const struct gw_dir *dd)
{
	const struct gw_line *l = dd->line;

	return dd->held + evbuffer_get_length(bufferevent_get_output(l->bev[1 - dd->side]));
}

/* Reading follows the backlog towards the other side. */
static void dir_gate(struct gw_dir *dd)
{
	struct bufferevent *src = dd->line->bev[dd->side];

	if (dd->eof)
		return;
	if (dir_backlog(dd) > GW_PENDING_MAX)
		bufferevent_disable(src, EV_READ);
	else
		bufferevent_enable(src, EV_READ);
}

/* Half-close travels through once everything before it did. 1 when the line is gone. */
static int dir_maybe_shut(struct gw_dir *dd)
{
	struct gw_line *l = dd->line;
	struct bufferevent *dst = l->bev[1 - dd->side];

	if (!dd->eof || dd->shut || dir_backlog(dd) != 0 ||
	    (dd->side == GW_PHONE && !l->connected))
		return 0;
	dd->shut = 1;
	(void)shutdown(bufferevent_getfd(dst), SHUT_WR);
	if (l->dir[0].shut && l->dir[1].shut) {
		line_close(l);
		return 1;
	}
	return 0;
}

/* Writes every chunk that is due and sets the timer for the next. 1 when the line is gone. */
static int dir_flush(struct gw_dir *dd)
{
	struct gw_line *l = dd->line;
	struct bufferevent *dst = l->bev[1 - dd->side];
	int64_t now = gw_now_us();

	while (dd->head != NULL && dd->head->due_us <= now) {
		struct gw_chunk *c = dd->head;

		if (bufferevent_write(dst, c->data, c->len) != 0) {
			line_close(l);
			return 1;
		}
		dd->bytes += c->len;
		dd->held -= c->len;
		dd->head = c->next;
		if (dd->head == NULL)
			dd->tail = NULL;
		free(c);
	}
	if (dd->head != NULL) {
		int64_t wait = dd->head->due_us - now;
		struct timeval tv = { (time_t)(wait / 1000000), (suseconds_t)(wait % 1000000) };

		evtimer_add(dd->timer, &tv);
	}
	dir_gate(dd);
	return dir_maybe_shut(dd);
}

static void dir_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)dir_flush(arg);
}

static void side_read_cb(struct bufferevent *bev, void *arg)
{
	struct gw_line *l = arg;
	struct gw_dir *dd = &l->dir[bev == l->bev[GW_PHONE] ? GW_PHONE : GW_SERVER];
	struct gw *g = l->g;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t n;

	if (g->o.delay_ms == 0 && g->o.loss_pct == 0 && dd->head == NULL) {
		/* Nothing to emulate: hand the bytes on without copying them. */
		n = evbuffer_get_length(in);
		if (bufferevent_write_buffer(l->bev[1 - dd->side], in) != 0) {
			line_close(l);
			return;
		}
		dd->bytes += n;
		dir_gate(dd);
		return;
	}
	while ((n = evbuffer_get_length(in)) > 0) {
		struct gw_chunk *c;
		int64_t due = gw_now_us() + (int64_t)g->o.delay_ms * 1000;

		if (n > GW_CHUNK_MAX)
			n = GW_CHUNK_MAX;
		c = malloc(sizeof(*c) + n);
		if (c == NULL || evbuffer_remove(in, c->data, n) != (int)n) {
			free(c);
			line_close(l);
			return;
		}
		if (g->o.loss_pct > 0 && gw_rand(g) % 100u < g->o.loss_pct) {
			due += (int64_t)g->o.rto_ms * 1000;
			dd->stretched++;
		}
		/* In-order delivery: a chunk never overtakes the one before it. */
		if (due < dd->last_due_us)
			due = dd->last_due_us;
		dd->last_due_us = due;
		c->due_us = due;
		c->len = n;
		c->next = NULL;
		if (dd->tail != NULL)
			dd->tail->next = c;
		else
			dd->head = c;
		dd->tail = c;
		dd->held += n;
	}
	(void)dir_flush(dd);
}

/* The destination's output drained (below its low-water mark, or empty). */
static void side_write_cb(struct bufferevent *bev, void *arg)
{
	struct gw_line *l = arg;
	int side = bev == l->bev[GW_PHONE] ? GW_PHONE : GW_SERVER;
	struct gw_dir *dd = &l->dir[1 - side];

	dir_gate(dd);
	(void)dir_maybe_shut(dd);
}

static void side_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct gw_line *l = arg;
	int side = bev == l->bev[GW_PHONE] ? GW_PHONE : GW_SERVER;

	if (what & BEV_EVENT_CONNECTED) {
		int one = 1;

		l->connected = 1;
		(void)setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one,
				 sizeof(one));
		(void)dir_maybe_shut(&l->dir[GW_PHONE]);
		return;
	}
	if ((what & BEV_EVENT_EOF) && (what & BEV_EVENT_READING) && !(what & BEV_EVENT_ERROR)) {
		l->dir[side].eof = 1;
		bufferevent_disable(bev, EV_READ);
		(void)dir_maybe_shut(&l->dir[side]);
		return;
	}
	line_close(l); /* reset, refused, or a write to a peer that is gone */
}

static void gw_accept_cb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
			 int salen, void *arg)
{
	struct gw *g = arg;
	struct gw_line *l;
	evutil_socket_t sfd;
	int one = 1;

	(void)lst;
	(void)sa;
	(void)salen;
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		evutil_closesocket(fd);
		return;
	}
	l->g = g;
	l->id = ++g->nlines;
	l->t0_us = gw_now_us();
	l->next = g->lines;
	if (g->lines != NULL)
		g->lines->prev = l;
	g->lines = l;
	g->open++;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	l->bev[GW_PHONE] = bufferevent_socket_new(g->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (l->bev[GW_PHONE] == NULL)
		evutil_closesocket(fd);
	sfd = socket(g->to.ss_family, SOCK_STREAM, 0);
	if (sfd >= 0) {
		(void)evutil_make_socket_nonblocking(sfd);
		(void)evutil_make_socket_closeonexec(sfd);
		(void)setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		l->bev[GW_SERVER] = bufferevent_socket_new(g->base, sfd, BEV_OPT_CLOSE_ON_FREE);
		if (l->bev[GW_SERVER] == NULL)
			evutil_closesocket(sfd);
	}
	for (int d = 0; d < 2; d++) {
		l->dir[d].line = l;
		l->dir[d].side = d;
		l->dir[d].timer = evtimer_new(g->base, dir_timer_cb, &l->dir[d]);
	}
	if (l->bev[0] == NULL || l->bev[1] == NULL || l->dir[0].timer == NULL ||
	    l->dir[1].timer == NULL) {
		line_close(l);
		return;
	}
	for (int s = 0; s < 2; s++) {
		bufferevent_setcb(l->bev[s], side_read_cb, side_write_cb, side_event_cb, l);
		bufferevent_setwatermark(l->bev[s], EV_WRITE, GW_PENDING_MAX / 2, 0);
	}
	if (bufferevent_socket_connect(l->bev[GW_SERVER], (struct sockaddr *)&g->to,
				       g->to_len) != 0) {
		line_close(l);
		return;
	}
	bufferevent_enable(l->bev[GW_PHONE], EV_READ);
	bufferevent_enable(l->bev[GW_SERVER], EV_READ);
}

static int gw_addr_text(const struct sockaddr *sa, char out[GW_ADDR_MAX])
{
	char ip[48];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		if (evutil_inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip)) == NULL)
			return TB_E_INVAL;
		snprintf(out, GW_ADDR_MAX, "%s:%u", ip, (unsigned)ntohs(in->sin_port));
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (evutil_inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip)) == NULL)
			return TB_E_INVAL;
		snprintf(out, GW_ADDR_MAX, "[%s]:%u", ip, (unsigned)ntohs(in6->sin6_port));
		return 0;
	}
	return TB_E_INVAL;
}

/* "A.B.C.D:PORT" or "[V6]:PORT", numeric only (no resolver on the loop); port 0 allowed
 * for a listener (libevent's own parser refuses it). */
static int gw_addr_parse(const char *text, struct sockaddr_storage *ss, int *len)
{
	char host[48];
	const char *colon = strrchr(text, ':');
	size_t hl;
	uint32_t port = 0;

	if (colon == NULL || colon[1] == '\0' || strlen(colon + 1) > 5)
		return TB_E_INVAL;
	for (const char *p = colon + 1; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return TB_E_INVAL;
		port = port * 10u + (uint32_t)(*p - '0');
	}
	hl = (size_t)(colon - text);
	if (port > 65535 || hl == 0 || hl >= sizeof(host))
		return TB_E_INVAL;
	memcpy(host, text, hl);
	host[hl] = '\0';
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[' && host[hl - 1] == ']') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		host[hl - 1] = '\0';
		if (evutil_inet_pton(AF_INET6, host + 1, &in6->sin6_addr) != 1)
			return TB_E_INVAL;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = (int)sizeof(*in6);
		return 0;
	}
	{
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		if (evutil_inet_pton(AF_INET, host, &in->sin_addr) != 1)
			return TB_E_INVAL;
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = (int)sizeof(*in);
	}
	return 0;
}

int gw_new(struct event_base *base, const char *listen, const char *to,
	   const struct gw_opts *opts, struct gw **out, char bound[GW_ADDR_MAX])
{
	struct gw *g = NULL;
	struct sockaddr_storage ls;
	socklen_t blen = sizeof(ls);
	int llen = (int)sizeof(ls), rc = TB_E_INVAL;

	if (base == NULL || listen == NULL || to == NULL || opts == NULL || out == NULL ||
	    opts->delay_ms > GW_DELAY_MS_MAX || opts->rto_ms > GW_DELAY_MS_MAX ||
	    opts->loss_pct > 100 || gw_addr_parse(listen, &ls, &llen) != 0)
		return TB_E_INVAL;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return TB_E_NOMEM;
	if (gw_addr_parse(to, &g->to, &g->to_len) != 0 ||
	    ((struct sockaddr_in *)&g->to)->sin_port == 0)
		goto out;
	g->base = base;
	g->o = *opts;
	g->rng = opts->seed != 0 ? opts->seed : 1;
	rc = TB_E_IO;
	g->lst = evconnlistener_new_bind(base, gw_accept_cb, g,
					 LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
					 LEV_OPT_CLOSE_ON_EXEC, GW_BACKLOG,
					 (struct sockaddr *)&ls, llen);
	if (g->lst == NULL)
		goto out;
	if (bound != NULL &&
	    (getsockname(evconnlistener_get_fd(g->lst), (struct sockaddr *)&ls, &blen) != 0 ||
	     gw_addr_text((struct sockaddr *)&ls, bound) != 0))
		goto out;
	*out = g;
	g = NULL;
	rc = 0;
out:
	gw_free(g);
	return rc;
}

void gw_stats(const struct gw *g)
{
	uint64_t up = g->up, down = g->down, st = g->stretched;

	if (g->o.log == NULL)
		return;
	for (const struct gw_line *l = g->lines; l != NULL; l = l->next) {
		up += l->dir[GW_PHONE].bytes;
		down += l->dir[GW_SERVER].bytes;
		st += l->dir[GW_PHONE].stretched + l->dir[GW_SERVER].stretched;
	}
	fprintf(g->o.log, "gw stats open=%" PRIu64 " lines=%" PRIu64 " up=%" PRIu64
		" down=%" PRIu64 " stretched=%" PRIu64 "\n", g->open, g->nlines, up, down, st);
}

void gw_free(struct gw *g)
{
	if (g == NULL)
		return;
	while (g->lines != NULL)
		line_close(g->lines);
	if (g->lst != NULL)
		evconnlistener_free(g->lst);
	free(g);
}
