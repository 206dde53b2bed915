/* sam_srv.c - the sam's unix-socket server (see sam_srv.h): owner-only socket, peer uid
 * check at accept, and per connection a frame decoder, an input chunk and an output
 * buffer, all allocated at accept. What stays true: a request is handed to the core only
 * when a whole reply fits in the output buffer (else reading pauses until the client
 * drains it); replies leave in request order; a connection the core or the decoder gives
 * up on is closed at once and its sessions with it; nothing is allocated per request. */
#define _GNU_SOURCE /* struct ucred, accept4 */
#include "sam_srv.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "lib/ct.h"
#include "lib/err.h"
#include "lib/frame.h"
#include "sam/sam.h"

#define SRV_IN_CHUNK 16384u
#define SRV_READS_PER_TURN 8   /* fairness: other connections get the loop after this */

struct srv_conn {
	struct sam_srv *srv;
	int fd;
	struct event *rev, *wev;
	int reading;                 /* rev is armed */
	struct sam_conn core;
	struct frame_rd rd;
	uint8_t *rdbuf;              /* SAM_REQ_MAX: the request being received */
	uint8_t *out;                /* SAM_SRV_OUT_CAP: replies not yet written */
	size_t out_off, out_len;
	size_t in_off, in_len;
	struct srv_conn *prev, *next;
	uint8_t in[SRV_IN_CHUNK];
};

struct sam_srv {
	struct event_base *base;
	struct sam *core;
	int fd;
	struct event *lev;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint32_t limits[FRAME_TYPES];
	struct srv_conn *conns;
	size_t nconns;
	uid_t uid;
};

static void conn_free(struct srv_conn *c)
{
	struct sam_srv *srv = c->srv;

	sam_conn_close(srv->core, &c->core); /* its sessions end, their keys wiped */
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	srv->nconns--;
	if (c->rev != NULL)
		event_free(c->rev);
	if (c->wev != NULL)
		event_free(c->wev);
	close(c->fd);
	/* Replies may have held device keys (DERIVE_DEVICE_KEYS) or blob plaintexts. */
	if (c->out != NULL)
		ct_wipe(c->out, SAM_SRV_OUT_CAP);
	if (c->rdbuf != NULL)
		ct_wipe(c->rdbuf, SAM_REQ_MAX);
	free(c->out);
	free(c->rdbuf);
	ct_wipe(c, sizeof(*c));
	free(c);
}

/* Writes what is queued. 0, or TB_E_IO when the connection failed. */
static int conn_flush(struct srv_conn *c)
{
	while (c->out_off < c->out_len) {
		/* MSG_NOSIGNAL: a client gone away is an error here, not a SIGPIPE. */
		ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			(void)event_add(c->wev, NULL);
			return 0;
		}
		if (w <= 0)
			return TB_E_IO;
		c->out_off += (size_t)w;
	}
	ct_wipe(c->out, c->out_len);
	c->out_off = c->out_len = 0;
	(void)event_del(c->wev);
	return 0;
}

/* Room for one more whole reply, moving unsent bytes to the front if that helps. */
static int conn_has_room(struct srv_conn *c)
{
	if (SAM_SRV_OUT_CAP - c->out_len >= SAM_REPLY_FRAME_MAX)
		return 1;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
		c->out_len -= c->out_off;
		c->out_off = 0;
	}
	return SAM_SRV_OUT_CAP - c->out_len >= SAM_REPLY_FRAME_MAX;
}

static void conn_pause(struct srv_conn *c, int pause)
{
	if (pause && c->reading)
		(void)event_del(c->rev);
	else if (!pause && !c->reading)
		(void)event_add(c->rev, NULL);
	c->reading = !pause;
}

/* Hands one whole frame to the core. 0, 1 (paused: no room), or TB_E_* to close. */
static int conn_one(struct srv_conn *c)
{
	const uint8_t *p = NULL;
	uint8_t type = 0;
	size_t n = 0;
	struct wr w;
	int rc;

	if (!conn_has_room(c)) {
		if ((rc = conn_flush(c)) != 0)
			return rc;
		if (!conn_has_room(c)) {
			conn_pause(c, 1); /* the write event resumes us */
			return 1;
		}
	}
	(void)frame_rd_take(&c->rd, &type, &p, &n);
	w = wr_init(c->out + c->out_len, SAM_SRV_OUT_CAP - c->out_len);
	rc = sam_request(c->srv->core, &c->core, type, p, n, &w);
	if (rc != 0) {
		const char *name = sam_request_name(type);

		fprintf(stderr, "tapbridge sam: connection %u closed: %s request malformed or "
			"out of order\n", (unsigned)c->core.id, name != NULL ? name : "an unknown");
		return rc;
	}
	c->out_len += w.len;
	return 0;
}

/* Decodes and answers everything available. 0, or TB_E_* when c must be closed. */
static int conn_pump(struct srv_conn *c)
{
	int reads = 0, rc;

	for (;;) {
		int st = frame_rd_state(&c->rd);

		if (st == FRAME_READY) {
			if ((rc = conn_one(c)) != 0)
				return rc < 0 ? rc : 0;
			continue;
		}
		if (st < 0) {
			fprintf(stderr, "tapbridge sam: connection %u closed: bad frame (%s)\n",
				(unsigned)c->core.id, tb_errname(st));
			return st;
		}
		if (c->in_off < c->in_len) {
			c->in_off += frame_rd_push(&c->rd, c->in + c->in_off,
						   c->in_len - c->in_off);
			continue;
		}
		if (reads++ == SRV_READS_PER_TURN)
			break;
		{
			ssize_t r = read(c->fd, c->in, sizeof(c->in));

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (r <= 0)
				return TB_E_IO; /* the client went away */
			c->in_off = 0;
			c->in_len = (size_t)r;
		}
	}
	return conn_flush(c);
}

static void conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_conn *c = arg;

	(void)fd;
	(void)what;
	if (conn_pump(c) != 0) {
		(void)conn_flush(c); /* the replies to the requests before the bad one */
		conn_free(c);
	}
}

static void conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_conn *c = arg;

	(void)fd;
	(void)what;
	if (conn_flush(c) != 0) {
		conn_free(c);
		return;
	}
	if (!c->reading && conn_has_room(c)) {
		conn_pause(c, 0);
		if (conn_pump(c) != 0) /* frames that waited for room */
			conn_free(c);
	}
}

static int conn_new(struct sam_srv *srv, int fd)
{
	struct srv_conn *c = calloc(1, sizeof(*c));

	if (c == NULL) {
		close(fd);
		return TB_E_NOMEM;
	}
	c->srv = srv;
	c->fd = fd;
	c->rdbuf = malloc(SAM_REQ_MAX);
	c->out = malloc(SAM_SRV_OUT_CAP);
	c->rev = event_new(srv->base, fd, EV_READ | EV_PERSIST, conn_read_cb, c);
	c->wev = event_new(srv->base, fd, EV_WRITE | EV_PERSIST, conn_write_cb, c);
	c->next = srv->conns;
	if (srv->conns != NULL)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	sam_conn_open(srv->core, &c->core);
	if (c->rdbuf == NULL || c->out == NULL || c->rev == NULL || c->wev == NULL ||
	    frame_rd_init(&c->rd, c->rdbuf, SAM_REQ_MAX, SAM_REQ_MAX + 1u, srv->limits) != 0 ||
	    event_add(c->rev, NULL) != 0) {
		conn_free(c);
		return TB_E_NOMEM;
	}
	c->reading = 1;
	return 0;
}

/* Only the sam's own uid may talk to it: root included, nobody else. */
static int peer_allowed(const struct sam_srv *srv, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
		fprintf(stderr, "tapbridge sam: refused a connection without peer credentials\n");
		return 0;
	}
	if (cred.uid != srv->uid) {
		fprintf(stderr, "tapbridge sam: refused a connection from uid %u (pid %d): not "
			"the sam's uid %u\n", (unsigned)cred.uid, (int)cred.pid,
			(unsigned)srv->uid);
		return 0;
	}
	return 1;
}

static void srv_accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct sam_srv *srv = arg;

	(void)what;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				fprintf(stderr, "tapbridge sam: accept failed: %s\n",
					strerror(errno));
			return;
		}
		if (!peer_allowed(srv, fd)) {
			close(fd);
			continue;
		}
		if (conn_new(srv, fd) != 0)
			fprintf(stderr, "tapbridge sam: out of memory for a connection\n");
	}
}

/* The socket's directory must not let others replace the socket: not group or
 * world writable unless sticky, owned by us or root. */
static int dir_safe(const char *path, char *why, size_t whycap)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	struct stat st;

	if (slash == NULL)
		memcpy(dir, ".", 2);
	else if (slash == path)
		memcpy(dir, "/", 2);
	else {
		size_t n = (size_t)(slash - path);

		if (n >= sizeof(dir))
			return TB_E_INVAL;
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
		(void)snprintf(why, whycap, "socket directory %s: %s", dir,
			       errno != 0 ? strerror(errno) : "not a directory");
		return TB_E_IO;
	}
	if ((st.st_uid != geteuid() && st.st_uid != 0) ||
	    ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))) {
		(void)snprintf(why, whycap, "socket directory %s is writable by others: use a "
			       "private directory", dir);
		return TB_E_INVAL;
	}
	return 0;
}

/* Binds and listens on path with mode 0600, replacing only a dead socket. */
static int srv_socket(const char *path, char *why, size_t whycap)
{
	struct sockaddr_un sa;
	struct stat st;
	mode_t old;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (lstat(path, &st) == 0) {
		int probe;

		if (!S_ISSOCK(st.st_mode)) {
			(void)snprintf(why, whycap, "%s exists and is not a socket", path);
			return TB_E_IO;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe < 0)
			return TB_E_IO;
		if (connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
		    errno != ECONNREFUSED) {
			close(probe);
			(void)snprintf(why, whycap, "%s is in use by a running sam", path);
			return TB_E_IO;
		}
		close(probe);
		(void)unlink(path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return TB_E_IO;
	old = umask(077); /* no window in which the socket is open to others */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		umask(old);
		(void)snprintf(why, whycap, "bind %s: %s", path, strerror(errno));
		close(fd);
		return TB_E_IO;
	}
	umask(old);
	if (chmod(path, 0600) != 0 || listen(fd, 128) != 0) {
		(void)snprintf(why, whycap, "listen on %s: %s", path, strerror(errno));
		close(fd);
		(void)unlink(path);
		return TB_E_IO;
	}
	return fd;
}

int sam_srv_new(struct event_base *base, struct sam *core, const char *path,
		struct sam_srv **out, char *why, size_t whycap)
{
	struct sam_srv *srv;
	int rc;

	*out = NULL;
	if (base == NULL || core == NULL || path == NULL || path[0] == '\0')
		return TB_E_INVAL;
	if (strlen(path) >= sizeof(srv->path)) {
		(void)snprintf(why, whycap, "socket path too long (%zu bytes at most)",
			       sizeof(srv->path) - 1);
		return TB_E_INVAL;
	}
	if ((rc = dir_safe(path, why, whycap)) != 0)
		return rc;
	if ((srv = calloc(1, sizeof(*srv))) == NULL)
		return TB_E_NOMEM;
	srv->base = base;
	srv->core = core;
	srv->uid = geteuid();
	sam_request_limits(srv->limits);
	if ((srv->fd = srv_socket(path, why, whycap)) < 0) {
		rc = srv->fd;
		free(srv);
		return rc;
	}
	memcpy(srv->path, path, strlen(path) + 1);
	srv->lev = event_new(base, srv->fd, EV_READ | EV_PERSIST, srv_accept_cb, srv);
	if (srv->lev == NULL || event_add(srv->lev, NULL) != 0) {
		sam_srv_free(srv);
		return TB_E_NOMEM;
	}
	*out = srv;
	return 0;
}

size_t sam_srv_connections(const struct sam_srv *srv)
{
	return srv != NULL ? srv->nconns : 0;
}

void sam_srv_free(struct sam_srv *srv)
{
	if (srv == NULL)
		return;
	while (srv->conns != NULL)
		conn_free(srv->conns);
	if (srv->lev != NULL)
		event_free(srv->lev);
	if (srv->fd >= 0) {
		close(srv->fd);
		(void)unlink(srv->path);
	}
	free(srv);
}
