/* phone_net.c - the phone core on one libevent loop: the se's IC_I/F link (unix socket)
 * and the server session (TCP + TLS 1.3, pinned), each frame read here and handed to the
 * core, each action of the core written here (phone_frames.c translates both ways).
 * What stays true: a link is freed only from the top of the loop, never inside its own
 * callback. */
#define _DEFAULT_SOURCE
#include "phone_net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "io/framed.h"
#include "io/phone_frames.h"
#include "io/se_link.h"
#include "lib/bytes.h"
#include "lib/err.h"
#include "lib/frame.h"
#include "server/proto.h"

#define TICK_MS 50
#define SE_IN_MAX (1u + 8u + SE_ENVELOPE_MAX) /* RELAY is the largest se -> phone frame */

struct pn_link {
	struct bufferevent *bev;
	struct frame_rd rd;
	int up;                   /* connected (TLS: handshake done) */
	int dead;                 /* ended: free from the top of the loop */
};

struct phone_net {
	struct event_base *base;
	struct event *tick;
	struct tls_client *tc;
	struct ph ph;
	FILE *out;
	struct pn_link se, srv;
	uint8_t se_buf[SE_IN_MAX];
	uint8_t srv_buf[PROTO_PHONE_IN_MAX];
	struct pn_frame_buf fb;
	uint8_t wbuf[FRAME_HDR_LEN + PROTO_SRV_IN_MAX + 16];
	uint32_t se_max_by_type[FRAME_TYPES];
	char why[400];
	int fd_ready;
};

static uint64_t pn_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- outputs of the core ---- */

static void pn_screen(struct phone_net *n)
{
	size_t len = 0;
	const char *s = ph_screen_take(&n->ph, &len);

	while (len > 0) {
		const char *nl = memchr(s, '\n', len);
		size_t k = nl != NULL ? (size_t)(nl - s) : len;

		fprintf(n->out, "phone: %.*s\n", (int)k, s);
		k += nl != NULL;
		s += k;
		len -= k;
	}
	fflush(n->out);
}

static void pn_srv_write(struct phone_net *n, const struct proto_msg *m)
{
	struct wr w = wr_init(n->wbuf, sizeof(n->wbuf));
	int rc;

	if (n->srv.bev == NULL || n->srv.dead)
		return;
	if ((rc = proto_frame_put(&w, m)) != 0) {
		fprintf(n->out, "phone: error: cannot encode %s: %s\n", proto_type_name(m->type),
			tb_strerror(rc));
		return;
	}
	(void)bufferevent_write(n->srv.bev, n->wbuf, w.len);
}

static void pn_se_write(struct phone_net *n, uint8_t type, const uint8_t *a4, int with_id,
			const uint8_t *p, size_t len)
{
	struct wr w = wr_init(n->wbuf, sizeof(n->wbuf));
	uint8_t *hdr = NULL;
	size_t body = (with_id ? 4u : 0u) + len;

	if (n->se.bev == NULL || n->se.dead || body + FRAME_HDR_LEN > sizeof(n->wbuf))
		return;
	(void)wr_reserve(&w, FRAME_HDR_LEN, &hdr);
	hdr[0] = (uint8_t)((body + 1) >> 24);
	hdr[1] = (uint8_t)((body + 1) >> 16);
	hdr[2] = (uint8_t)((body + 1) >> 8);
	hdr[3] = (uint8_t)(body + 1);
	hdr[4] = type;
	if (with_id)
		(void)wr_bytes(&w, a4, 4);
	(void)wr_bytes(&w, p, len);
	(void)bufferevent_write(n->se.bev, n->wbuf, w.len);
}

static void pn_act(struct phone_net *n, const struct ph_act *a)
{
	uint8_t id[4] = { (uint8_t)(a->a >> 24), (uint8_t)(a->a >> 16), (uint8_t)(a->a >> 8),
			  (uint8_t)a->a };

	if (pn_act_msg(a, n->ph.serial, &n->fb.msg)) {
		pn_srv_write(n, &n->fb.msg);
		return;
	}
	switch (a->kind) {
	case PH_ACT_SE_APDU:
		pn_se_write(n, SE_LINK_T_APDU, NULL, 0, a->data, a->n);
		break;
	case PH_ACT_SE_POWER:
		pn_se_write(n, SE_LINK_T_POWER, NULL, 0, &a->op, 1);
		break;
	case PH_ACT_SE_RELAY_ANSWER:
		pn_se_write(n, SE_LINK_T_RELAY_ANSWER, id, 1, a->data, a->n);
		break;
	case PH_ACT_SE_RELAY_FAIL:
		pn_se_write(n, SE_LINK_T_RELAY_FAIL, id, 1, NULL, 0);
		break;
	case PH_ACT_CLOSE:
		n->srv.dead = 1;
		break;
	default:
		break;
	}
}

/* After every input: what the core queued goes out, its screen lines get printed. */
static void pn_flush(struct phone_net *n)
{
	struct ph_act a;

	while (ph_next_action(&n->ph, &a))
		pn_act(n, &a);
	pn_screen(n);
}

/* ---- both links ---- */

static void pn_read(struct phone_net *n, struct pn_link *l)
{
	struct evbuffer *in = bufferevent_get_input(l->bev);
	uint8_t tmp[4096];

	while (!l->dead) {
		int st = frame_rd_state(&l->rd);

		if (st == FRAME_READY) {
			const uint8_t *p = NULL;
			uint8_t type = 0;
			size_t len = 0;

			(void)frame_rd_take(&l->rd, &type, &p, &len);
			if (l == &n->srv)
				(void)pn_srv_in(&n->ph, &n->fb, type, p, len, pn_now(), n->why,
						sizeof(n->why));
			else
				(void)pn_se_in(&n->ph, type, p, len, &l->dead);
			pn_flush(n);
			continue;
		}
		if (st < 0) {
			l->dead = 1;
			snprintf(n->why, sizeof(n->why), "bad frame (%s)", tb_strerror(st));
			if (l == &n->srv)
				(void)ph_srv_closed(&n->ph, n->why);
			else
				(void)ph_se_closed(&n->ph, n->why);
			pn_flush(n);
			return;
		}
		ev_ssize_t got = evbuffer_copyout(in, tmp, sizeof(tmp));

		if (got <= 0)
			return;
		(void)evbuffer_drain(in, frame_rd_push(&l->rd, tmp, (size_t)got));
	}
}

static void pn_read_cb(struct bufferevent *bev, void *arg)
{
	struct phone_net *n = arg;

	pn_read(n, bev == n->srv.bev ? &n->srv : &n->se);
}

/* Why the TLS session failed, in words an operator can act on. */
static void pn_tls_why(struct phone_net *n, short what)
{
	unsigned long e;
	char buf[160];
	int verify = 0;

	buf[0] = '\0';
	while ((e = bufferevent_get_openssl_error(n->srv.bev)) != 0) {
		(void)tls_err_text(e, buf, sizeof(buf));
		if (strstr(buf, "certificate verify failed") != NULL)
			verify = 1;
	}
	if (verify)
		snprintf(n->why, sizeof(n->why),
			 "the server's certificate does not match the pinned fingerprint");
	else if (!n->srv.up)
		snprintf(n->why, sizeof(n->why), "TLS handshake failed%s%s",
			 buf[0] != '\0' ? ": " : "", buf);
	else
		snprintf(n->why, sizeof(n->why), "%s",
			 (what & BEV_EVENT_EOF) ? "the server closed the connection"
						: "the connection failed");
}

static void pn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct phone_net *n = arg;
	struct pn_link *l = bev == n->srv.bev ? &n->srv : &n->se;

	if (what & BEV_EVENT_CONNECTED) {
		l->up = 1;
		return;
	}
	if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
		return;
	if (l == &n->srv) {
		pn_read(n, l); /* frames that came just before the close (an ERROR) count */
		pn_tls_why(n, what);
		l->dead = 1;
		(void)ph_srv_closed(&n->ph, n->why);
	} else {
		l->dead = 1;
		(void)ph_se_closed(&n->ph, (what & BEV_EVENT_EOF) ? "the se closed it" : "failed");
	}
	pn_flush(n);
}

static void pn_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct phone_net *n = arg;

	(void)fd;
	(void)what;
	(void)ph_tick(&n->ph, pn_now());
	pn_flush(n);
}

/* Frees links that ended (outside their callbacks). */
static void pn_reap(struct phone_net *n)
{
	struct pn_link *ls[2] = { &n->srv, &n->se };

	for (int i = 0; i < 2; i++) {
		if (ls[i]->dead && ls[i]->bev != NULL) {
			if (ls[i] == &n->srv && ls[i]->up)
				tls_ssl_close_notify(bufferevent_openssl_get_ssl(ls[i]->bev));
			bufferevent_free(ls[i]->bev);
			ls[i]->bev = NULL;
		}
	}
}

static void pn_loop_once(struct phone_net *n)
{
	(void)event_base_loop(n->base, EVLOOP_ONCE);
	pn_reap(n);
}

/* ---- connecting ---- */

static int pn_unix_connect(const char *path)
{
	struct sockaddr_un su;
	int fd;

	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(su.sun_path))
		return -1;
	memcpy(su.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&su, sizeof(su)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A TCP connection to host:port within PHONE_NET_CONNECT_MS; -1 with why set. */
static int pn_tcp_connect(struct phone_net *n, const char *spec)
{
	char tcp[FRAMED_HOST_MAX + 16], portstr[8];
	struct framed_addr a;
	struct addrinfo hints, *ai = NULL;
	int fd = -1, one = 1;

	snprintf(tcp, sizeof(tcp), "tcp:%s", spec);
	if (strlen(spec) > FRAMED_HOST_MAX || framed_addr_parse(tcp, &a) != 0 || a.is_unix) {
		snprintf(n->why, sizeof(n->why), "--server wants HOST:PORT, not '%s'", spec);
		return -1;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)a.port);
	if (getaddrinfo(a.host, portstr, &hints, &ai) != 0 || ai == NULL) {
		snprintf(n->why, sizeof(n->why), "cannot resolve '%s'", a.host);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		struct pollfd pf = { fd, POLLOUT, 0 };
		int err = errno;
		socklen_t el = sizeof(err);

		if (err == EINPROGRESS) {
			err = ETIMEDOUT;
			if (poll(&pf, 1, (int)PHONE_NET_CONNECT_MS) == 1 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0)
				err = EIO;
		}
		if (err != 0) {
			close(fd);
			fd = -1;
			errno = err;
		}
	}
	freeaddrinfo(ai);
	if (fd < 0) {
		snprintf(n->why, sizeof(n->why), "cannot connect to the server %s: %s", spec,
			 strerror(errno));
		return -1;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int pn_link_init(struct phone_net *n, struct pn_link *l, struct bufferevent *bev,
			uint8_t *buf, size_t cap, const uint32_t *table)
{
	l->bev = bev;
	if (bev == NULL)
		return TB_E_NOMEM;
	if (frame_rd_init(&l->rd, buf, cap, cap + 1, table) != 0)
		return TB_E_INVAL;
	bufferevent_setcb(bev, pn_read_cb, NULL, pn_event_cb, n);
	return bufferevent_enable(bev, EV_READ) == 0 ? 0 : TB_E_IO;
}

static void pn_se_table(struct phone_net *n)
{
	memset(n->se_max_by_type, 0, sizeof(n->se_max_by_type));
	n->se_max_by_type[SE_LINK_T_RESPONSE] = 1u + SE_RESP_MAX;
	n->se_max_by_type[SE_LINK_T_RELAY] = 1u + 8u + SE_ENVELOPE_MAX;
	n->se_max_by_type[SE_LINK_T_TRANSACTION] = 1u + 13u;
	n->se_max_by_type[SE_LINK_T_DISABLE] = 1u + 2u;
	n->se_max_by_type[SE_LINK_T_LOCKED] = 1u;
	n->se_max_by_type[SE_LINK_T_UNLOCKED] = 1u;
	n->se_max_by_type[SE_LINK_T_EVENTS_LOST] = 1u + 4u;
}

static int pn_fail(struct phone_net *n, int rc)
{
	fprintf(n->out, "phone: error: %s\n", n->why);
	fflush(n->out);
	return rc;
}

static int pn_connect(struct phone_net *n, const struct phone_net_config *cfg)
{
	struct timeval tv = { 0, TICK_MS * 1000 };
	struct ssl_st *ssl;
	int fd, rc;

	if ((fd = pn_unix_connect(cfg->link)) < 0) {
		snprintf(n->why, sizeof(n->why), "cannot connect to the se link %s: %s", cfg->link,
			 strerror(errno));
		return pn_fail(n, TB_E_IO);
	}
	(void)evutil_make_socket_nonblocking(fd);
	rc = pn_link_init(n, &n->se, bufferevent_socket_new(n->base, fd, BEV_OPT_CLOSE_ON_FREE),
			  n->se_buf, sizeof(n->se_buf), n->se_max_by_type);
	if (n->se.bev == NULL)
		close(fd);
	if (rc != 0)
		return rc;
	n->se.up = 1;
	if ((fd = pn_tcp_connect(n, cfg->server)) < 0)
		return pn_fail(n, TB_E_IO);
	if ((ssl = tls_client_ssl(n->tc)) == NULL) {
		close(fd);
		return TB_E_NOMEM;
	}
	n->srv.bev = bufferevent_openssl_socket_new(n->base, fd, ssl, BUFFEREVENT_SSL_CONNECTING,
						    BEV_OPT_CLOSE_ON_FREE);
	if (n->srv.bev == NULL) {
		tls_ssl_free(ssl);
		close(fd);
		return TB_E_NOMEM;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(n->srv.bev, 1);
	if ((rc = pn_link_init(n, &n->srv, n->srv.bev, n->srv_buf, sizeof(n->srv_buf),
			       proto_phone_in)) != 0)
		return rc;
	n->tick = event_new(n->base, -1, EV_PERSIST, pn_tick_cb, n);
	if (n->tick == NULL || event_add(n->tick, &tv) != 0)
		return TB_E_NOMEM;
	return 0;
}

int phone_net_open(const struct phone_net_config *cfg, struct phone_net **out_net)
{
	struct phone_net *n = calloc(1, sizeof(*n));
	uint64_t end;
	int rc;

	*out_net = NULL;
	if (n == NULL)
		return TB_E_NOMEM;
	n->out = cfg->out;
	pn_se_table(n);
	if ((n->base = event_base_new()) == NULL || tls_client_new(cfg->pin, &n->tc) != 0) {
		phone_net_free(n);
		return TB_E_NOMEM;
	}
	if ((rc = pn_connect(n, cfg)) != 0) {
		phone_net_free(n);
		return rc;
	}
	(void)ph_init(&n->ph, &cfg->ph, pn_now());
	pn_flush(n);
	end = pn_now() + PHONE_NET_CONNECT_MS;
	while (!ph_ready(&n->ph) && pn_now() < end)
		pn_loop_once(n);
	if (!ph_ready(&n->ph) || !ph_srv_up(&n->ph) || n->se.bev == NULL) {
		if (ph_ready(&n->ph))
			rc = strstr(n->why, "certificate") != NULL || strstr(n->why, "TLS") != NULL
				     ? TB_E_CRYPTO : TB_E_IO;
		else {
			fprintf(n->out, "phone: error: the session did not start within %u s\n",
				PHONE_NET_CONNECT_MS / 1000u);
			rc = TB_E_IO;
		}
		phone_net_free(n);
		return rc;
	}
	*out_net = n;
	return 0;
}

int phone_net_run(struct phone_net *n, const struct ph_cmd *c)
{
	n->ph.now = pn_now();
	if (ph_cmd_start(&n->ph, c) != 0 && ph_cmd_state(&n->ph) != PH_CMD_FAILED)
		return TB_E_INVAL;
	pn_flush(n);
	while (ph_cmd_state(&n->ph) == PH_CMD_RUNNING)
		pn_loop_once(n);
	return ph_cmd_state(&n->ph) == PH_CMD_OK ? 0 : TB_E_IO;
}

static void pn_fd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct phone_net *n = arg;

	(void)fd;
	(void)what;
	n->fd_ready = 1;
}

int phone_net_wait_fd(struct phone_net *n, int fd)
{
	struct event *ev = event_new(n->base, fd, EV_READ, pn_fd_cb, n);

	if (ev == NULL || event_add(ev, NULL) != 0) {
		event_free(ev);
		return TB_E_NOMEM;
	}
	n->fd_ready = 0;
	while (!n->fd_ready && (n->se.bev != NULL || n->srv.bev != NULL))
		pn_loop_once(n);
	event_free(ev);
	return n->fd_ready ? 0 : TB_E_IO;
}

uint64_t phone_net_relay_rtts(const struct phone_net *n)
{
	return n->ph.stat_rtts;
}

void phone_net_free(struct phone_net *n)
{
	if (n == NULL)
		return;
	if (n->srv.bev != NULL && !n->srv.dead && ph_srv_up(&n->ph) && n->ph.hello_sent &&
	    !n->ph.quit_sent) {
		struct ph_cmd quit = { .kind = PH_CMD_QUIT };

		(void)phone_net_run(n, &quit);
	}
	if (n->srv.bev != NULL)
		n->srv.dead = 1;
	if (n->se.bev != NULL)
		n->se.dead = 1;
	pn_reap(n);
	if (n->tick != NULL)
		event_free(n->tick);
	tls_client_free(n->tc);
	if (n->base != NULL)
		event_base_free(n->base);
	free(n);
}
