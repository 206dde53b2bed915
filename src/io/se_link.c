/* se_link.c - the IC_I/F link (see se_link.h): a table of the phone's frame types with
 * their size limits, the encoding of the core's events, and the unix socket or tty
 * underneath. What stays true: a frame reaches the handler only when its type and
 * exact size are right, so a bad frame ends the link without touching the core. */
#define _DEFAULT_SOURCE /* cfmakeraw */
#include "se_link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>

#include "framed.h"
#include "lib/bytes.h"
#include "lib/err.h"
#include "lib/frame.h"

#define SK_RELAY_ID_LEN 4u
#define SK_OUT_MAX (1u + 8u + SE_ENVELOPE_MAX > 1u + SE_RESP_MAX ? 1u + 8u + SE_ENVELOPE_MAX \
								    : 1u + SE_RESP_MAX)

struct se_link {
	struct event_base *base;
	struct se_link_handler h;
	void *arg;
	struct framed_listener *listener;
	struct framed *conn;
	char *tty_path;
	struct event *retry;        /* tty: reopen timer */
	uint32_t max_by_type[FRAME_TYPES];
};

/* ------------------------------------------------------------ phone frames --- */

struct sk_type {
	uint8_t type;
	size_t min;  /* payload bytes */
	size_t max;
	int (*fn)(struct se_link *l, const uint8_t *p, size_t n);
};

static uint32_t sk_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int sk_apdu(struct se_link *l, const uint8_t *p, size_t n)
{
	l->h.apdu(l, p, n, l->arg);
	return 0;
}

static int sk_power(struct se_link *l, const uint8_t *p, size_t n)
{
	(void)n;
	if (p[0] > 0x02)
		return TB_E_INVAL;
	l->h.power(l, p[0], l->arg);
	return 0;
}

static int sk_relay_answer(struct se_link *l, const uint8_t *p, size_t n)
{
	l->h.relay_answer(l, sk_be32(p), n > SK_RELAY_ID_LEN ? p + SK_RELAY_ID_LEN : NULL,
			  n - SK_RELAY_ID_LEN, l->arg);
	return 0;
}

static int sk_relay_fail(struct se_link *l, const uint8_t *p, size_t n)
{
	(void)n;
	l->h.relay_fail(l, sk_be32(p), l->arg);
	return 0;
}

static const struct sk_type sk_types[] = {
	{ SE_LINK_T_APDU, 1, SE_CMD_MAX, sk_apdu },
	{ SE_LINK_T_POWER, 1, 1, sk_power },
	{ SE_LINK_T_RELAY_ANSWER, SK_RELAY_ID_LEN, SK_RELAY_ID_LEN + SE_ENVELOPE_MAX,
	  sk_relay_answer },
	{ SE_LINK_T_RELAY_FAIL, SK_RELAY_ID_LEN, SK_RELAY_ID_LEN, sk_relay_fail },
};

static int sk_frame(struct framed *c, uint8_t type, const uint8_t *p, size_t n, void *arg)
{
	struct se_link *l = arg;

	(void)c;
	for (size_t i = 0; i < sizeof(sk_types) / sizeof(sk_types[0]); i++) {
		if (sk_types[i].type != type)
			continue;
		if (n < sk_types[i].min)
			return TB_E_TRUNC;
		if (n > sk_types[i].max)
			return TB_E_FRAME_OVERSIZE;
		return sk_types[i].fn(l, p, n);
	}
	return TB_E_FRAME_TYPE; /* the framed's table let through a type we do not know */
}

/* ---------------------------------------------------------- the connection --- */

static void sk_schedule_tty(struct se_link *l)
{
	struct timeval tv = { 0, (suseconds_t)SE_LINK_TTY_RETRY_MS * 1000 };

	evtimer_add(l->retry, &tv);
}

static void sk_closed(struct framed *c, int err, void *arg)
{
	struct se_link *l = arg;

	(void)c;
	if (err != TB_E_IO)
		fprintf(stderr, "tapbridge se: link: phone link closed: %s\n", tb_strerror(err));
	l->conn = NULL;
	if (l->tty_path != NULL)
		sk_schedule_tty(l);
	l->h.down(l, l->arg);
}

static const struct framed_handler sk_framed = { sk_frame, sk_closed };

static int sk_take(struct se_link *l, int fd)
{
	struct framed_config cfg;
	int rc;

	cfg.max_in = 1u + SK_RELAY_ID_LEN + SE_ENVELOPE_MAX > 1u + SE_CMD_MAX
			     ? 1u + SK_RELAY_ID_LEN + SE_ENVELOPE_MAX
			     : 1u + SE_CMD_MAX;
	cfg.max_by_type = l->max_by_type;
	cfg.max_out = SK_OUT_MAX;
	if ((rc = framed_new(l->base, fd, &cfg, &sk_framed, l, &l->conn)) != 0)
		return rc;
	l->h.up(l, l->arg);
	return 0;
}

static void sk_accept(int fd, void *arg)
{
	struct se_link *l = arg;

	if (l->conn != NULL) { /* the phone came back: the old link is dead */
		framed_free(l->conn);
		l->conn = NULL;
		l->h.down(l, l->arg);
	}
	if (sk_take(l, fd) != 0)
		fprintf(stderr, "tapbridge se: link: cannot take the phone's connection\n");
}

/* Raw mode: no echo, no line discipline, 8 bits, so frames pass byte for byte. */
static int sk_tty_open(const char *path)
{
	struct termios t;
	int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

	if (fd < 0)
		return TB_E_IO;
	if (isatty(fd)) {
		if (tcgetattr(fd, &t) != 0) {
			close(fd);
			return TB_E_IO;
		}
		cfmakeraw(&t);
		if (tcsetattr(fd, TCSANOW, &t) != 0) {
			close(fd);
			return TB_E_IO;
		}
		(void)tcflush(fd, TCIOFLUSH); /* half a frame from before is not ours */
	}
	return fd;
}

static void sk_tty_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct se_link *l = arg;
	int tfd;

	(void)fd;
	(void)what;
	if (l->conn != NULL)
		return;
	tfd = sk_tty_open(l->tty_path);
	if (tfd < 0 || sk_take(l, tfd) != 0)
		sk_schedule_tty(l);
}

int se_link_new(struct event_base *base, const struct se_link_config *cfg,
		const struct se_link_handler *h, void *arg, struct se_link **out)
{
	struct framed_addr a;
	struct se_link *l;
	size_t plen;
	int rc = TB_E_INVAL;

	if (base == NULL || cfg == NULL || h == NULL || out == NULL || h->up == NULL ||
	    h->down == NULL || h->apdu == NULL || h->power == NULL || h->relay_answer == NULL ||
	    h->relay_fail == NULL || (cfg->unix_path == NULL) == (cfg->tty_path == NULL))
		return TB_E_INVAL;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return TB_E_NOMEM;
	l->base = base;
	l->h = *h;
	l->arg = arg;
	for (size_t i = 0; i < sizeof(sk_types) / sizeof(sk_types[0]); i++)
		l->max_by_type[sk_types[i].type] = (uint32_t)(1u + sk_types[i].max);
	if (cfg->unix_path != NULL) {
		plen = strlen(cfg->unix_path);
		if (plen == 0 || plen >= sizeof(a.path))
			goto fail;
		memset(&a, 0, sizeof(a));
		a.is_unix = 1;
		memcpy(a.path, cfg->unix_path, plen + 1);
		if ((rc = framed_listen(base, &a, sk_accept, l, &l->listener)) != 0)
			goto fail;
	} else {
		rc = TB_E_NOMEM;
		l->tty_path = strdup(cfg->tty_path);
		l->retry = evtimer_new(base, sk_tty_retry_cb, l);
		if (l->tty_path == NULL || l->retry == NULL)
			goto fail;
		sk_tty_retry_cb(-1, 0, l); /* open now, or keep trying */
	}
	*out = l;
	return 0;
fail:
	se_link_free(l);
	return rc;
}

int se_link_connected(const struct se_link *l)
{
	return l != NULL && l->conn != NULL;
}

int se_link_response(struct se_link *l, const uint8_t *resp, size_t n)
{
	if (l == NULL || l->conn == NULL)
		return TB_E_IO;
	if (resp == NULL || n < 2)
		return TB_E_APDU_RESP;
	if (n > SE_RESP_MAX)
		return TB_E_FRAME_OVERSIZE;
	return framed_send(l->conn, SE_LINK_T_RESPONSE, resp, n);
}

/* ------------------------------------------------------------------ events --- */

static int sk_event_frame(const struct se_event *ev, uint32_t relay_id, struct wr *w,
			  uint8_t *type)
{
	switch (ev->kind) {
	case SE_EV_RELAY:
		*type = SE_LINK_T_RELAY;
		if (ev->n > SE_ENVELOPE_MAX || (ev->data == NULL && ev->n > 0))
			return TB_E_INVAL;
		(void)wr_u32be(w, relay_id);
		(void)wr_u32be(w, ev->service);
		return wr_bytes(w, ev->data, ev->n);
	case SE_EV_TRANSACTION:
		*type = SE_LINK_T_TRANSACTION;
		(void)wr_u8(w, ev->tx_kind);
		(void)wr_u32be(w, ev->amount);
		(void)wr_u32be(w, ev->balance);
		return wr_u32be(w, ev->counter);
	case SE_EV_DISABLE:
		*type = SE_LINK_T_DISABLE;
		return wr_u16be(w, ev->bitmap);
	case SE_EV_LOCKED:
		*type = SE_LINK_T_LOCKED;
		return 0;
	case SE_EV_UNLOCKED:
		*type = SE_LINK_T_UNLOCKED;
		return 0;
	default:
		return TB_E_INVAL;
	}
}

int se_link_event(struct se_link *l, const struct se_event *ev, uint32_t relay_id)
{
	uint8_t buf[8u + SE_ENVELOPE_MAX], lost[4], type = 0;
	struct wr w = wr_init(buf, sizeof(buf));
	struct wr lw = wr_init(lost, sizeof(lost));
	int rc;

	if (l == NULL || l->conn == NULL)
		return TB_E_IO;
	if (ev == NULL)
		return TB_E_INVAL;
	if ((rc = sk_event_frame(ev, relay_id, &w, &type)) != 0)
		return rc;
	if (ev->lost > 0) {
		(void)wr_u32be(&lw, ev->lost);
		if ((rc = framed_send(l->conn, SE_LINK_T_EVENTS_LOST, lost, lw.len)) != 0)
			return rc;
	}
	return framed_send(l->conn, type, buf, w.len);
}

void se_link_free(struct se_link *l)
{
	if (l == NULL)
		return;
	framed_free(l->conn);
	framed_listener_free(l->listener);
	if (l->retry != NULL)
		event_free(l->retry);
	free(l->tty_path);
	free(l);
}
