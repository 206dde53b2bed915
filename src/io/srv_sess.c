/* srv_sess.c - one phone session (see srv_net.h): framing through a decoder that is
 * empty between callbacks, the ERROR-then-close path, deadlines, sending. What stays
 * true: a frame is acted on only when whole and checked; after the first ERROR nothing
 * more is handed up; while the server runs, a session is freed in one place: sess_end(). */
#define _DEFAULT_SOURCE /* TCP_NODELAY */
#include "srv_int.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/util.h>

#include "lib/err.h"
#include "lib/hex.h"
#include "tls.h"

static void sess_pump(struct srv_session *s);
static void sess_end(struct srv_session *s, const char *why);

/* Log-safe copy of short peer-chosen text (already printable ASCII): no quotes or
 * backslashes, so a value cannot fake another key. */
static void log_safe(char *out, size_t cap, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n && i + 1 < cap; i++)
		out[i] = (p[i] == '"' || p[i] == '\\' || p[i] < 0x20 || p[i] > 0x7E) ? '?' : (char)p[i];
	out[i] = '\0';
}

uint64_t srv_session_id(const struct srv_session *s) { return s->id; }
const uint8_t *srv_session_serial(const struct srv_session *s) { return s->serial; }
void srv_session_set_user(struct srv_session *s, void *user) { s->user = user; }
void *srv_session_user(const struct srv_session *s) { return s->user; }

struct srv_ref srv_session_ref(const struct srv_session *s)
{
	struct srv_ref r = { s->id, s->slot };

	return r;
}

struct srv_session *srv_session_get(struct srv *srv, struct srv_ref ref)
{
	struct srv_session *s;

	if (ref.slot >= srv->cfg.max_sessions)
		return NULL;
	s = srv->slots[ref.slot];
	if (s == NULL || s->id != ref.id || s->state == SS_GONE)
		return NULL;
	return s;
}

/* ---- reading ---- */

/* Reading is on while frames are wanted, and while closing (to drain what the phone still
 * sends, so the close is not a reset that could destroy our ERROR in flight). */
static void sess_update_read(struct srv_session *s)
{
	int want = s->state >= SS_CLOSING || (!s->held && !s->out_full);

	if (want)
		bufferevent_enable(s->bev, EV_READ);
	else
		bufferevent_disable(s->bev, EV_READ);
}

static void sess_set_out_full(struct srv_session *s)
{
	if (s->out_full || s->state != SS_OPEN ||
	    evbuffer_get_length(bufferevent_get_output(s->bev)) <= s->srv->cfg.out_high)
		return;
	s->out_full = 1;
	s->srv->stats.out_pauses++;
	s->t_frame = 0; /* the frame clock restarts when reading does */
	bufferevent_setwatermark(s->bev, EV_WRITE, s->srv->cfg.out_high / 4, 0);
	sess_update_read(s);
}

/* Puts one whole frame (already checked) on the wire. */
static int sess_queue(struct srv_session *s, const uint8_t *frame, size_t n)
{
	if (bufferevent_write(s->bev, frame, n) != 0)
		return TB_E_NOMEM;
	s->frames_out++;
	sess_set_out_full(s);
	return 0;
}

/* Moves the session to closing: nothing more is read up or sent, what is queued drains. */
static void sess_begin_close(struct srv_session *s, uint16_t code)
{
	s->state = SS_CLOSING;
	s->close_code = code;
	s->t_close = srv_now_ms();
	s->held = 0;
	s->out_full = 0;
	bufferevent_setwatermark(s->bev, EV_WRITE, 0, 0);
	sess_update_read(s);
	if (evbuffer_get_length(bufferevent_get_output(s->bev)) == 0)
		bufferevent_trigger(s->bev, EV_WRITE, BEV_TRIG_DEFER_CALLBACKS);
}

/* Everything is flushed: close_notify, FIN, then wait (within close_ms) for the phone. */
static void sess_linger(struct srv_session *s)
{
	s->state = SS_LINGER;
	tls_ssl_close_notify(bufferevent_openssl_get_ssl(s->bev));
	(void)shutdown(bufferevent_getfd(s->bev), SHUT_WR);
}

/* Cuts a reason to PROTO_REASON_MAX bytes on a character boundary. */
static size_t reason_len(const char *r)
{
	size_t n = strlen(r);

	if (n <= PROTO_REASON_MAX)
		return n;
	n = PROTO_REASON_MAX;
	while (n > 0 && ((uint8_t)r[n] & 0xC0u) == 0x80u)
		n--;
	return n;
}

void srv_close_with_error(struct srv_session *s, uint16_t code, const char *reason)
{
	struct proto_msg m;
	struct wr w = wr_init(s->srv->txbuf, sizeof(s->srv->txbuf));

	if (s->state >= SS_CLOSING)
		return;
	if (code == 0)
		code = PROTO_ERR_INTERNAL;
	if (reason == NULL || !proto_text_ok((const uint8_t *)reason, reason_len(reason)) ||
	    reason_len(reason) == 0)
		reason = proto_err_reason(code);
	m.type = PROTO_ERROR;
	m.u.error.code = code;
	m.u.error.reason = (const uint8_t *)reason;
	m.u.error.n = reason_len(reason);
	srv_log(s, "error", "code=%u reason=\"%.*s\"", code, (int)m.u.error.n, reason);
	s->srv->stats.errors++;
	if (!s->tls_up) { /* nothing can be said before the handshake: just go */
		s->close_code = code;
		s->state = SS_CLOSING;
		s->t_close = 0; /* the sweep ends it */
		return;
	}
	if (proto_frame_put(&w, &m) != 0 || sess_queue(s, w.p, w.len) != 0)
		srv_log(s, "error-unsent", NULL);
	sess_begin_close(s, code);
}

static void sess_hello(struct srv_session *s, const struct proto_hello *h)
{
	struct srv *srv = s->srv;
	char serial[2 * PROTO_SERIAL_LEN + 1], app[PROTO_APP_MAX + 1];

	memcpy(s->serial, h->serial, PROTO_SERIAL_LEN);
	s->state = SS_OPEN;
	srv->stats.hellos++;
	s->opened = 1;
	(void)frame_rd_set_max(&s->rd, PROTO_SRV_IN_MAX);
	if (hex_encode(h->serial, PROTO_SERIAL_LEN, HEX_PUBLIC, serial, sizeof(serial)) != 0)
		serial[0] = '\0';
	log_safe(app, sizeof(app), h->app, h->app_len);
	srv_log(s, "hello", "se=%s app=\"%s\"", serial, app);
	if (srv->h.on_hello != NULL)
		srv->h.on_hello(s, h, srv->arg);
}

/* BYE: answered with BYE, then the same flush-and-close as after an ERROR. */
static void sess_bye(struct srv_session *s)
{
	static const uint8_t bye[FRAME_HDR_LEN] = { 0, 0, 0, 1, PROTO_BYE };

	srv_log(s, "bye", NULL);
	(void)sess_queue(s, bye, sizeof(bye));
	sess_begin_close(s, 0);
}

static void sess_frame(struct srv_session *s, uint8_t type, const uint8_t *p, size_t n)
{
	struct srv *srv = s->srv;
	struct proto_msg m;
	char why[48];
	int rc;

	if (s->state == SS_HELLO && type != PROTO_HELLO) {
		srv_close_with_error(s, PROTO_ERR_BEFORE_HELLO, NULL);
		return;
	}
	if (s->state == SS_OPEN && type == PROTO_HELLO) {
		srv_close_with_error(s, PROTO_ERR_HELLO_TWICE, NULL);
		return;
	}
	rc = proto_decode(type, p, n, &m);
	if (rc != 0) {
		snprintf(why, sizeof(why), "malformed %s", proto_type_name(type));
		srv_close_with_error(s, proto_err_from(rc), rc == TB_E_PROTO_VERSION ? NULL : why);
		return;
	}
	if (type == PROTO_HELLO) {
		sess_hello(s, &m.u.hello);
	} else if (type == PROTO_PING) {
		(void)srv_send(s, PROTO_PONG, m.u.ping.token, PROTO_PING_LEN);
	} else if (type == PROTO_BYE) {
		sess_bye(s);
	} else if (srv->h.on_frame != NULL && srv->h.on_frame(s, &m, srv->arg) == SRV_HOLD &&
		   s->state == SS_OPEN) {
		s->held = 1;
		s->t_frame = 0; /* the frame clock restarts when reading does */
		sess_update_read(s);
	}
}

/* 1: a frame was taken and handled; 0: wait for more bytes; < 0: a bad frame (TB_E_*).
 * The header goes through a copy of the decoder as soon as it is in, so an oversize or
 * unknown frame is refused before its payload is waited for. */
static int sess_next_frame(struct srv_session *s, struct evbuffer *in)
{
	uint8_t hdr[FRAME_HDR_LEN], type;
	size_t len = evbuffer_get_length(in), k = len < FRAME_HDR_LEN ? len : FRAME_HDR_LEN, n;
	struct frame_rd probe = s->rd;
	const uint8_t *whole, *payload;
	uint32_t total;

	if (k == 0)
		return 0;
	if (evbuffer_copyout(in, hdr, k) != (ev_ssize_t)k)
		return TB_E_INTERNAL;
	(void)frame_rd_push(&probe, hdr, k);
	if (frame_rd_state(&probe) < 0)
		return frame_rd_state(&probe);
	if (k < FRAME_HDR_LEN)
		return 0;
	total = 4u + ((uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3]);
	if (len < total)
		return 0;
	whole = evbuffer_pullup(in, (ev_ssize_t)total);
	if (whole == NULL)
		return TB_E_NOMEM;
	if (frame_rd_push(&s->rd, whole, total) != total ||
	    frame_rd_take(&s->rd, &type, &payload, &n) != 0)
		return TB_E_INTERNAL;
	evbuffer_drain(in, total);
	s->t_frame = 0;
	s->t_last = srv_now_ms();
	s->frames_in++;
	sess_frame(s, type, payload, n);
	return 1;
}

static void sess_pump(struct srv_session *s)
{
	struct evbuffer *in = bufferevent_get_input(s->bev);
	int rc = 0;

	if (s->state >= SS_CLOSING) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	while (s->state <= SS_OPEN && !s->held && !s->out_full) {
		rc = sess_next_frame(s, in);
		if (rc <= 0)
			break;
	}
	if (rc < 0) {
		srv_close_with_error(s, rc == TB_E_INTERNAL || rc == TB_E_NOMEM ? PROTO_ERR_INTERNAL
										 : proto_err_from(rc),
				     NULL);
		return;
	}
	if (s->state <= SS_OPEN && s->t_frame == 0 && evbuffer_get_length(in) > 0 && !s->held &&
	    !s->out_full)
		s->t_frame = srv_now_ms();
}

static void sess_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	sess_pump(arg);
}

static void sess_write_cb(struct bufferevent *bev, void *arg)
{
	struct srv_session *s = arg;
	size_t left = evbuffer_get_length(bufferevent_get_output(bev));

	if (s->state == SS_CLOSING && left == 0) {
		sess_linger(s);
	} else if (s->out_full && left <= s->srv->cfg.out_high / 4) {
		s->out_full = 0;
		bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
		sess_update_read(s);
		bufferevent_trigger(bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
	}
}

static void sess_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct srv_session *s = arg;
	unsigned long e = bufferevent_get_openssl_error(bev);
	char detail[120], why[160];

	if (what & BEV_EVENT_CONNECTED) {
		s->tls_up = 1;
		srv_log(s, "tls", "version=%s", tls_ssl_version(bufferevent_openssl_get_ssl(bev)));
		return;
	}
	if (s->state >= SS_CLOSING) {
		sess_end(s, "closed");
	} else if (what & BEV_EVENT_TIMEOUT) {
		sess_end(s, "write-timeout");
	} else if (what & BEV_EVENT_EOF) {
		sess_end(s, evbuffer_get_length(bufferevent_get_input(bev)) > 0 ? "eof-mid-frame" : "eof");
	} else if (e != 0) {
		snprintf(why, sizeof(why), "tls detail=\"%s\"", tls_err_text(e, detail, sizeof(detail)));
		sess_end(s, why);
	} else {
		snprintf(why, sizeof(why), "io detail=\"%s\"", strerror(EVUTIL_SOCKET_ERROR()));
		sess_end(s, why);
	}
}

/* The one place a session is freed. */
static void sess_end(struct srv_session *s, const char *why)
{
	struct srv *srv = s->srv;

	srv_log(s, "close", "reason=%s code=%u in=%u out=%u ms=%llu", why, s->close_code,
		s->frames_in, s->frames_out, (unsigned long long)(srv_now_ms() - s->t_open));
	s->state = SS_GONE;
	if (s->opened && srv->h.on_close != NULL)
		srv->h.on_close(s, s->close_code, srv->arg);
	srv->slots[s->slot] = NULL;
	srv->free_slots[srv->n_free++] = s->slot;
	srv->count--;
	bufferevent_free(s->bev);
	free(s);
}

/* Deadlines are absolute, so a phone that trickles a byte now and then gains nothing. */
void srv_sess_check(struct srv_session *s, uint64_t now)
{
	const struct srv_config *c = &s->srv->cfg;

	switch (s->state) {
	case SS_HELLO:
		if (now - s->t_open < c->hello_ms)
			return;
		if (s->tls_up)
			srv_close_with_error(s, PROTO_ERR_HELLO_TIMEOUT, NULL);
		else
			sess_end(s, "handshake-timeout");
		return;
	case SS_OPEN:
		if (s->held || s->out_full)
			return;
		if (s->t_frame != 0 && now - s->t_frame >= c->frame_ms)
			srv_close_with_error(s, PROTO_ERR_FRAME_TIMEOUT, NULL);
		else if (evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
			s->t_last = now; /* still being answered: the write timeout watches it */
		else if (s->t_frame == 0 && now - s->t_last >= c->idle_ms)
			srv_close_with_error(s, PROTO_ERR_IDLE, NULL);
		return;
	case SS_CLOSING:
	case SS_LINGER:
		if (now - s->t_close >= c->close_ms)
			sess_end(s, s->state == SS_LINGER ? "closed" : "close-timeout");
		return;
	default:
		return;
	}
}


int srv_sess_new(struct srv *srv, int fd)
{
	struct srv_session *s = calloc(1, sizeof(*s));
	struct ssl_st *ssl = s != NULL ? tls_server_ssl(srv->tls) : NULL;
	int one = 1;

	if (ssl == NULL) {
		free(s);
		evutil_closesocket(fd);
		return TB_E_NOMEM;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	s->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
						BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL) {
		/* libevent may have freed ssl and fd already, or not: leak, never free twice */
		free(s);
		return TB_E_NOMEM;
	}
	(void)frame_rd_init(&s->rd, srv->rxbuf, sizeof(srv->rxbuf), PROTO_PREHELLO_MAX, proto_srv_in);
	s->srv = srv;
	s->id = ++srv->next_id;
	s->t_open = s->t_last = srv_now_ms();
	s->state = SS_HELLO;
	s->slot = srv->free_slots[--srv->n_free];
	srv->slots[s->slot] = s;
	srv->count++;
	srv->stats.accepted++;
	bufferevent_openssl_set_allow_dirty_shutdown(s->bev, 1);
	bufferevent_setcb(s->bev, sess_read_cb, sess_write_cb, sess_event_cb, s);
	{
		struct timeval wt = { (time_t)(srv->cfg.write_ms / 1000u),
				      (suseconds_t)((srv->cfg.write_ms % 1000u) * 1000u) };
		bufferevent_set_timeouts(s->bev, NULL, &wt);
	}
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	srv_log(s, "open", NULL);
	return 0;
}

/* ---- sending ---- */

static int sess_can_send(const struct srv_session *s, uint8_t type, size_t n)
{
	if (s->state != SS_OPEN)
		return TB_E_PROTO_STATE;
	if (type == PROTO_ERROR || proto_phone_in[type] == 0)
		return TB_E_FRAME_TYPE;
	if (n + 1 > proto_phone_in[type])
		return TB_E_FRAME_OVERSIZE;
	return 0;
}

int srv_send(struct srv_session *s, uint8_t type, const uint8_t *payload, size_t n)
{
	uint8_t *f = s->srv->txbuf;
	struct proto_msg m;
	int rc = sess_can_send(s, type, n);

	if (rc != 0)
		return rc;
	rc = proto_decode(type, payload, n, &m);
	if (rc != 0)
		return rc;
	f[0] = (uint8_t)((n + 1) >> 24);
	f[1] = (uint8_t)((n + 1) >> 16);
	f[2] = (uint8_t)((n + 1) >> 8);
	f[3] = (uint8_t)(n + 1);
	f[4] = type;
	if (n > 0)
		memmove(f + FRAME_HDR_LEN, payload, n);
	return sess_queue(s, f, FRAME_HDR_LEN + n);
}

int srv_send_msg(struct srv_session *s, const struct proto_msg *m)
{
	struct wr w = wr_init(s->srv->txbuf, sizeof(s->srv->txbuf));
	int rc = sess_can_send(s, m->type, 0);

	if (rc != 0)
		return rc;
	rc = proto_frame_put(&w, m);
	if (rc != 0)
		return rc;
	return sess_queue(s, w.p, w.len);
}

void srv_resume(struct srv_session *s)
{
	if (!s->held || s->state != SS_OPEN)
		return;
	s->held = 0;
	s->t_last = srv_now_ms();
	sess_update_read(s);
	bufferevent_trigger(s->bev, EV_READ, BEV_TRIG_DEFER_CALLBACKS | BEV_TRIG_IGNORE_WATERMARKS);
}
