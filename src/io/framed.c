/* framed.c - frames over a libevent bufferevent, and stream listeners (see framed.h).
 * What stays true: a frame reaches the handler only whole and within its type's
 * limit; after the first bad byte nothing more is read from that connection; a
 * connection is freed only from the loop, never under a handler's feet. */
#define _DEFAULT_SOURCE /* struct sockaddr_un helpers on some libcs */
#include "framed.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "lib/bytes.h"
#include "lib/err.h"
#include "lib/frame.h"
#include "vpcd.h" /* vpcd_parse_target: the one HOST[:PORT] parser */

struct framed {
	struct bufferevent *bev;
	struct event *kill;     /* ends a connection from the loop after a failed send */
	struct framed_handler h;
	void *arg;
	struct frame_rd rd;
	size_t max_out;
	int busy;               /* inside frame(): freeing waits until it returns */
	int freed;              /* framed_free() came while busy */
	int dying;              /* a send failed: closed() is on its way */
	int dying_err;
	uint8_t *out;           /* FRAME_HDR_LEN + max_out bytes: one outgoing frame */
	uint8_t buf[];          /* max_in - 1 bytes: the payload being received */
};

static void framed_destroy(struct framed *c)
{
	if (c->bev != NULL)
		bufferevent_free(c->bev);
	if (c->kill != NULL)
		event_free(c->kill);
	free(c->out);
	free(c);
}

/* Ends the connection with err and tells the handler; c is gone afterwards. */
static void framed_end(struct framed *c, int err)
{
	bufferevent_free(c->bev);
	c->bev = NULL;
	c->busy++; /* a framed_free() from closed() must not free c twice */
	if (c->h.closed != NULL)
		c->h.closed(c, err, c->arg);
	framed_destroy(c);
}

/* Hands up every whole frame in the input. 1 when c still exists. */
static int framed_drain(struct framed *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	while (!c->dying) {
		int st = frame_rd_state(&c->rd);

		if (st == FRAME_READY) {
			const uint8_t *p = NULL;
			uint8_t type = 0;
			size_t n = 0;
			int rc;

			(void)frame_rd_take(&c->rd, &type, &p, &n);
			c->busy++;
			rc = c->h.frame(c, type, p, n, c->arg);
			c->busy--;
			if (c->freed) {
				framed_destroy(c);
				return 0;
			}
			if (rc != 0) {
				framed_end(c, rc);
				return 0;
			}
			continue;
		}
		if (st < 0) {
			framed_end(c, st);
			return 0;
		}
		if (evbuffer_get_length(in) == 0)
			break;
		{
			struct evbuffer_iovec v;
			size_t used;

			if (evbuffer_peek(in, -1, NULL, &v, 1) < 1)
				break;
			used = frame_rd_push(&c->rd, v.iov_base, v.iov_len);
			(void)evbuffer_drain(in, used);
		}
	}
	return 1;
}

static void framed_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	(void)framed_drain(arg);
}

static void framed_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct framed *c = arg;

	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		framed_end(c, TB_E_IO);
}

static void framed_kill_cb(evutil_socket_t fd, short what, void *arg)
{
	struct framed *c = arg;

	(void)fd;
	(void)what;
	framed_end(c, c->dying_err);
}

static void framed_die(struct framed *c, int err)
{
	if (c->dying)
		return;
	c->dying = 1;
	c->dying_err = err;
	bufferevent_disable(c->bev, EV_READ);
	event_active(c->kill, EV_TIMEOUT, 1);
}

int framed_new(struct event_base *base, int fd, const struct framed_config *cfg,
	       const struct framed_handler *h, void *arg, struct framed **out)
{
	struct framed *c = NULL;
	struct timeval wt = { FRAMED_WRITE_TIMEOUT_MS / 1000u, 0 };
	int rc = TB_E_INVAL;

	if (base == NULL || fd < 0 || cfg == NULL || h == NULL || h->frame == NULL ||
	    out == NULL || cfg->max_in < 1 || cfg->max_in > FRAME_MAX_N || cfg->max_out < 1)
		goto fail;
	rc = TB_E_NOMEM;
	c = calloc(1, sizeof(*c) + cfg->max_in - 1);
	if (c == NULL)
		goto fail;
	c->out = malloc(FRAME_HDR_LEN + cfg->max_out);
	if (c->out == NULL)
		goto fail;
	if (frame_rd_init(&c->rd, c->buf, cfg->max_in - 1, cfg->max_in, cfg->max_by_type) != 0) {
		rc = TB_E_INVAL;
		goto fail;
	}
	c->h = *h;
	c->arg = arg;
	c->max_out = cfg->max_out;
	rc = TB_E_IO;
	c->kill = event_new(base, -1, 0, framed_kill_cb, c);
	c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (c->kill == NULL || c->bev == NULL)
		goto fail;
	fd = -1; /* the bufferevent owns it now */
	bufferevent_setcb(c->bev, framed_read_cb, NULL, framed_event_cb, c);
	bufferevent_set_timeouts(c->bev, NULL, &wt);
	if (bufferevent_enable(c->bev, EV_READ | EV_WRITE) != 0)
		goto fail;
	*out = c;
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	if (c != NULL)
		framed_destroy(c);
	return rc;
}

int framed_send(struct framed *c, uint8_t type, const uint8_t *payload, size_t n)
{
	struct wr w;
	int rc;

	if (c == NULL || c->dying || c->bev == NULL)
		return TB_E_IO;
	w = wr_init(c->out, FRAME_HDR_LEN + c->max_out);
	if ((rc = frame_write(&w, type, payload, n, c->max_out)) != 0)
		return rc;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) + w.len > FRAMED_OUT_LIMIT ||
	    bufferevent_write(c->bev, w.p, w.len) != 0) {
		/* A peer that does not read: end it rather than buffer without bound. */
		framed_die(c, TB_E_IO);
		return TB_E_IO;
	}
	return 0;
}

void framed_free(struct framed *c)
{
	if (c == NULL)
		return;
	if (c->busy) {
		c->freed = 1;
		if (c->bev != NULL)
			bufferevent_disable(c->bev, EV_READ | EV_WRITE);
		return;
	}
	framed_destroy(c);
}

/* ---------------------------------------------------------------- addresses --- */

int framed_addr_parse(const char *spec, struct framed_addr *a)
{
	struct framed_addr t;
	const char *rest, *colon;
	size_t n;
	int rc;

	if (spec == NULL || a == NULL)
		return TB_E_INVAL;
	memset(&t, 0, sizeof(t));
	if (strncmp(spec, "unix:", 5) == 0) {
		n = strlen(spec + 5);
		if (n == 0)
			return TB_E_INVAL;
		if (n >= sizeof(t.path))
			return TB_E_NOSPACE;
		memcpy(t.path, spec + 5, n + 1);
		t.is_unix = 1;
		*a = t;
		return 0;
	}
	if (strncmp(spec, "tcp:", 4) != 0)
		return TB_E_INVAL;
	rest = spec + 4;
	/* The port is required here (vpcd_parse_target would default it). */
	colon = strrchr(rest, ':');
	if (colon == NULL || (strchr(rest, ']') != NULL && colon < strchr(rest, ']')))
		return TB_E_INVAL;
	if ((rc = vpcd_parse_target(rest, t.host, sizeof(t.host), &t.port)) != 0)
		return rc;
	*a = t;
	return 0;
}

/* ---------------------------------------------------------------- listeners --- */

struct framed_listener {
	struct evconnlistener *l;
	framed_accept_fn cb;
	void *arg;
	char path[FRAMED_PATH_MAX]; /* unix: removed at free */
};

static void framed_accept_cb(struct evconnlistener *el, evutil_socket_t fd,
			     struct sockaddr *sa, int socklen, void *arg)
{
	struct framed_listener *l = arg;
	int one = 1;

	(void)el;
	(void)socklen;
	if (sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6))
		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	l->cb(fd, l->arg);
}

static void framed_accept_err_cb(struct evconnlistener *el, void *arg)
{
	(void)el;
	(void)arg;
	fprintf(stderr, "tapbridge: accept failed: %s\n", strerror(errno));
}

/* A unix socket path: replaces a dead socket, refuses a live one or any other file. */
static int framed_unix_socket(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			return TB_E_IO;
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return TB_E_IO;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 || errno != ECONNREFUSED) {
			close(fd);
			return TB_E_IO; /* somebody answers there */
		}
		close(fd);
		if (unlink(path) != 0)
			return TB_E_IO;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return TB_E_IO;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || chmod(path, 0600) != 0) {
		close(fd);
		return TB_E_IO;
	}
	return fd;
}

static int framed_tcp_socket(const struct framed_addr *a)
{
	struct addrinfo hints, *res = NULL;
	char serv[8];
	int fd, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	(void)snprintf(serv, sizeof(serv), "%u", (unsigned)a->port);
	if (getaddrinfo(a->host, serv, &hints, &res) != 0 || res == NULL)
		return TB_E_IO;
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0) {
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, res->ai_addr, res->ai_addrlen) != 0) {
			int e = errno; /* "address in use" is worth telling */

			close(fd);
			errno = e;
			fd = TB_E_IO;
		}
	} else {
		fd = TB_E_IO;
	}
	freeaddrinfo(res);
	return fd;
}

int framed_listen(struct event_base *base, const struct framed_addr *a, framed_accept_fn cb,
		  void *arg, struct framed_listener **out)
{
	struct framed_listener *l;
	int fd;

	if (base == NULL || a == NULL || cb == NULL || out == NULL)
		return TB_E_INVAL;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return TB_E_NOMEM;
	l->cb = cb;
	l->arg = arg;
	fd = a->is_unix ? framed_unix_socket(a->path) : framed_tcp_socket(a);
	if (fd < 0) {
		free(l);
		return fd;
	}
	if (a->is_unix)
		memcpy(l->path, a->path, sizeof(l->path));
	l->l = evconnlistener_new(base, framed_accept_cb, l,
				  LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16, fd);
	if (l->l == NULL) {
		close(fd);
		if (a->is_unix)
			(void)unlink(a->path);
		free(l);
		return TB_E_IO;
	}
	evconnlistener_set_error_cb(l->l, framed_accept_err_cb);
	*out = l;
	return 0;
}

void framed_listener_free(struct framed_listener *l)
{
	if (l == NULL)
		return;
	evconnlistener_free(l->l);
	if (l->path[0] != '\0')
		(void)unlink(l->path);
	free(l);
}
