/* vpcd.c - the card side of the vpcd protocol over one libevent bufferevent.
 * At most one command is pending; no frame is read past it until the handler
 * answers, so replies always pair with requests. Every input length is checked
 * before bytes move, and a link that breaks the protocol is dropped and
 * reconnected with backoff, never retried in a tight loop. */
#define _DEFAULT_SOURCE /* TCP_QUICKACK */
#include "vpcd.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "lib/bytes.h"
#include "lib/err.h"

#define VPCD_BACKOFF_MIN_MS 100u
#define VPCD_BACKOFF_MAX_MS 2000u
#define VPCD_IDLE_DEFAULT_MS 10000u
/* A connect or a write that makes no progress for this long ends the link. */
#define VPCD_WRITE_TIMEOUT_MS 5000u
/* Stop reading requests while this much output is unsent: a peer that asks
 * for ATRs and never reads cannot grow our buffers. */
#define VPCD_OUT_LIMIT (2u * (2u + VPCD_MAX_FRAME))

enum {
	VPCD_CTRL_OFF = 0x00,
	VPCD_CTRL_ON = 0x01,
	VPCD_CTRL_RESET = 0x02,
	VPCD_CTRL_ATR = 0x04,
};

const uint8_t vpcd_atr_default[VPCD_ATR_DEFAULT_LEN] = {
	0x3B, 0x8B, 0x80, 0x01, 0x80, 0x69,
	't', 'a', 'p', 'b', 'r', 'i', 'd', 'g', 'e',
	0x99, /* TCK: XOR of T0..the last historical byte */
};

struct vpcd {
	struct event_base *base;
	struct vpcd_handler h;
	void *arg;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint8_t atr[VPCD_ATR_MAX];
	size_t atr_len;
	size_t max_cmd;
	unsigned idle_ms;
	unsigned backoff_ms;
	int up;                  /* the current bev has connected */
	struct bufferevent *bev; /* NULL while waiting to reconnect */
	struct event *retry;     /* reconnect timer */
	struct event *kick;      /* resumes reading after an asynchronous reply */
	struct vpcd_stats st;
	uint8_t *cmd;            /* max_cmd bytes: the pending command */
	uint8_t *frame;          /* 2 + VPCD_MAX_FRAME bytes: one outgoing frame */
};

static void vpcd_connect(struct vpcd *v);
static void vpcd_pump(struct vpcd *v);

static struct timeval vpcd_tv(unsigned ms)
{
	struct timeval tv;

	tv.tv_sec = (time_t)(ms / 1000u);
	tv.tv_usec = (suseconds_t)((ms % 1000u) * 1000u);
	return tv;
}

static void vpcd_emit(struct vpcd *v, enum vpcd_event ev)
{
	if (v->h.event != NULL)
		v->h.event(v, ev, v->arg);
}

/* Idle timeout only while waiting for vpcd: while a command is pending, vpcd
 * is blocked on our answer and silence is expected. */
static void vpcd_set_timeouts(struct vpcd *v)
{
	struct timeval rt = vpcd_tv(v->idle_ms), wt = vpcd_tv(VPCD_WRITE_TIMEOUT_MS);

	bufferevent_set_timeouts(v->bev, v->st.pending ? NULL : &rt, &wt);
}

/* Without a quick ACK, vpcd's length-then-body writes meet our delayed ACK
 * and every APDU stalls ~40 ms; the kernel clears the flag, so re-arm it. */
static void vpcd_quickack(struct vpcd *v)
{
	int one = 1;

	(void)setsockopt(bufferevent_getfd(v->bev), IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
}

static void vpcd_schedule(struct vpcd *v)
{
	struct timeval tv = vpcd_tv(v->backoff_ms);

	evtimer_add(v->retry, &tv);
	v->backoff_ms = v->backoff_ms * 2u > VPCD_BACKOFF_MAX_MS ? VPCD_BACKOFF_MAX_MS
	                                                       : v->backoff_ms * 2u;
}

static void vpcd_drop(struct vpcd *v, int err)
{
	int was_up = v->up;

	bufferevent_free(v->bev);
	v->bev = NULL;
	v->up = 0;
	v->st.connected = 0;
	v->st.powered = 0;
	v->st.pending = 0;
	if (was_up) {
		v->st.drops++;
		v->st.last_err = err;
	}
	vpcd_schedule(v);
	if (was_up)
		vpcd_emit(v, VPCD_EV_LINK_DOWN);
}

/* Header and body go out in one write so vpcd reads them in one segment. */
static int vpcd_send_frame(struct vpcd *v, const uint8_t *body, size_t n)
{
	struct wr w = wr_init(v->frame, 2u + VPCD_MAX_FRAME);

	if (n > VPCD_MAX_FRAME)
		return TB_E_FRAME_OVERSIZE;
	if (wr_u16be(&w, (uint16_t)n) != 0 || wr_bytes(&w, body, n) != 0)
		return TB_E_INTERNAL;
	if (bufferevent_write(v->bev, w.p, w.len) != 0)
		return TB_E_IO;
	return 0;
}

/* 0, or an error after which the link has been dropped. */
static int vpcd_control(struct vpcd *v, uint8_t c)
{
	switch (c) {
	case VPCD_CTRL_OFF:
		v->st.powered = 0;
		vpcd_emit(v, VPCD_EV_POWER_OFF);
		return 0;
	case VPCD_CTRL_ON:
		v->st.powered = 1;
		vpcd_emit(v, VPCD_EV_POWER_ON);
		return 0;
	case VPCD_CTRL_RESET:
		v->st.powered = 1;
		vpcd_emit(v, VPCD_EV_RESET);
		return 0;
	case VPCD_CTRL_ATR:
		if (vpcd_send_frame(v, v->atr, v->atr_len) != 0) {
			vpcd_drop(v, TB_E_IO);
			return TB_E_IO;
		}
		v->st.atrs++;
		return 0;
	default:
		vpcd_drop(v, TB_E_FRAME_TYPE);
		return TB_E_FRAME_TYPE;
	}
}

/* Takes one whole frame off the input, if there is one. 1 when a frame was
 * taken (and v->cmd holds its body of *len bytes), 0 when more bytes are
 * needed, negative after dropping the link. */
static int vpcd_take_frame(struct vpcd *v, size_t *len)
{
	struct evbuffer *in = bufferevent_get_input(v->bev);
	size_t have = evbuffer_get_length(in);
	uint8_t hdr[2];
	struct rd r = rd_init(hdr, sizeof(hdr));
	uint16_t n;

	if (have < sizeof(hdr) || evbuffer_copyout(in, hdr, sizeof(hdr)) != (ev_ssize_t)sizeof(hdr))
		return 0;
	(void)rd_u16be(&r, &n);
	if (n == 0) {
		vpcd_drop(v, TB_E_FRAME_EMPTY);
		return TB_E_FRAME_EMPTY;
	}
	if (n > v->max_cmd) {
		vpcd_drop(v, TB_E_FRAME_OVERSIZE);
		return TB_E_FRAME_OVERSIZE;
	}
	if (have - sizeof(hdr) < n)
		return 0;
	(void)evbuffer_drain(in, sizeof(hdr));
	if (evbuffer_remove(in, v->cmd, n) != (int)n) {
		vpcd_drop(v, TB_E_IO);
		return TB_E_IO;
	}
	*len = n;
	return 1;
}

static void vpcd_pump(struct vpcd *v)
{
	size_t n = 0;

	while (v->bev != NULL && !v->st.pending) {
		if (evbuffer_get_length(bufferevent_get_output(v->bev)) > VPCD_OUT_LIMIT)
			return; /* the write callback resumes */
		if (vpcd_take_frame(v, &n) <= 0)
			return;
		v->backoff_ms = VPCD_BACKOFF_MIN_MS; /* this peer speaks vpcd */
		if (n == 1) {
			if (vpcd_control(v, v->cmd[0]) != 0)
				return;
			continue;
		}
		v->st.pending = 1;
		v->st.apdus++;
		vpcd_set_timeouts(v);
		v->h.apdu(v, v->cmd, n, v->arg);
	}
}

static void vpcd_link_up(struct vpcd *v)
{
	v->up = 1;
	v->st.connected = 1;
	v->st.connects++;
	vpcd_emit(v, VPCD_EV_LINK_UP);
}

static void vpcd_read_cb(struct bufferevent *bev, void *arg)
{
	struct vpcd *v = arg;

	(void)bev;
	vpcd_quickack(v);
	/* The socket can turn readable before libevent reports the connect. */
	if (!v->up)
		vpcd_link_up(v);
	vpcd_pump(v);
}

static void vpcd_write_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	vpcd_pump(arg);
}

static void vpcd_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct vpcd *v = arg;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED) {
		vpcd_quickack(v);
		if (!v->up)
			vpcd_link_up(v);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
		/* An EOF means the peer had accepted us, even when it hung up before
		 * libevent reported the connect: count it as a link that went down. */
		if ((what & BEV_EVENT_EOF) && !v->up)
			vpcd_link_up(v);
		vpcd_drop(v, TB_E_IO);
	}
}

static void vpcd_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	vpcd_connect(arg);
}

static void vpcd_kick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	vpcd_pump(arg);
}

static void vpcd_connect(struct vpcd *v)
{
	int one = 1;

	v->st.attempts++;
	v->bev = bufferevent_socket_new(v->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (v->bev == NULL)
		goto fail;
	bufferevent_setcb(v->bev, vpcd_read_cb, vpcd_write_cb, vpcd_event_cb, v);
	/* A whole frame of the largest allowed size always fits; no more is read. */
	bufferevent_setwatermark(v->bev, EV_READ, 0, 2u + v->max_cmd);
	vpcd_set_timeouts(v);
	/* libevent reports a refused connect through the event callback, later. */
	if (bufferevent_socket_connect(v->bev, (struct sockaddr *)&v->addr, (int)v->addrlen) != 0)
		goto fail;
	(void)setsockopt(bufferevent_getfd(v->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (bufferevent_enable(v->bev, EV_READ | EV_WRITE) != 0)
		goto fail;
	return;
fail:
	if (v->bev != NULL)
		bufferevent_free(v->bev);
	v->bev = NULL;
	vpcd_schedule(v);
}

static int vpcd_resolve(struct vpcd *v, const char *host, uint16_t port)
{
	struct addrinfo hints, *res = NULL;
	char serv[8];

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	(void)snprintf(serv, sizeof(serv), "%u", (unsigned)port);
	if (getaddrinfo(host, serv, &hints, &res) != 0 || res == NULL)
		return TB_E_IO;
	if (res->ai_addrlen > sizeof(v->addr)) {
		freeaddrinfo(res);
		return TB_E_IO;
	}
	memcpy(&v->addr, res->ai_addr, res->ai_addrlen);
	v->addrlen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int vpcd_configure(struct vpcd *v, const struct vpcd_config *cfg)
{
	const uint8_t *atr = cfg->atr != NULL ? cfg->atr : vpcd_atr_default;
	size_t atr_len = cfg->atr != NULL ? cfg->atr_len : VPCD_ATR_DEFAULT_LEN;

	if (vpcd_atr_check(atr, atr_len) != 0 || cfg->max_cmd > VPCD_MAX_FRAME)
		return TB_E_INVAL;
	memcpy(v->atr, atr, atr_len);
	v->atr_len = atr_len;
	v->max_cmd = cfg->max_cmd != 0 ? cfg->max_cmd : VPCD_MAX_FRAME;
	v->idle_ms = cfg->idle_ms != 0 ? cfg->idle_ms : VPCD_IDLE_DEFAULT_MS;
	v->backoff_ms = VPCD_BACKOFF_MIN_MS;
	return vpcd_resolve(v, cfg->host != NULL ? cfg->host : "127.0.0.1",
	                    cfg->port != 0 ? cfg->port : (uint16_t)VPCD_PORT_DEFAULT);
}

int vpcd_new(struct event_base *base, const struct vpcd_config *cfg,
             const struct vpcd_handler *h, void *arg, struct vpcd **out)
{
	struct vpcd *v = NULL;
	int rc;

	if (base == NULL || cfg == NULL || h == NULL || h->apdu == NULL || out == NULL)
		return TB_E_INVAL;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return TB_E_NOMEM;
	v->base = base;
	v->h = *h;
	v->arg = arg;
	rc = vpcd_configure(v, cfg);
	if (rc != 0)
		goto out;
	rc = TB_E_NOMEM;
	v->cmd = malloc(v->max_cmd);
	v->frame = malloc(2u + VPCD_MAX_FRAME);
	if (v->cmd == NULL || v->frame == NULL)
		goto out;
	rc = TB_E_IO;
	v->retry = evtimer_new(base, vpcd_retry_cb, v);
	v->kick = event_new(base, -1, 0, vpcd_kick_cb, v);
	if (v->retry == NULL || v->kick == NULL)
		goto out;
	vpcd_connect(v);
	*out = v;
	v = NULL;
	rc = 0;
out:
	vpcd_free(v);
	return rc;
}

void vpcd_free(struct vpcd *v)
{
	if (v == NULL)
		return;
	if (v->bev != NULL)
		bufferevent_free(v->bev);
	if (v->retry != NULL)
		event_free(v->retry);
	if (v->kick != NULL)
		event_free(v->kick);
	free(v->cmd);
	free(v->frame);
	free(v);
}

int vpcd_reply(struct vpcd *v, const uint8_t *resp, size_t n)
{
	int rc;

	if (v == NULL || (resp == NULL && n > 0) || !v->st.pending || v->bev == NULL)
		return TB_E_INVAL;
	if (n < 2)
		return TB_E_APDU_RESP;
	rc = vpcd_send_frame(v, resp, n);
	if (rc != 0)
		return rc;
	v->st.pending = 0;
	vpcd_set_timeouts(v);
	/* Frames that arrived meanwhile: read them from the loop, not from inside
	 * the handler that is calling us. */
	if (evbuffer_get_length(bufferevent_get_input(v->bev)) > 0)
		event_active(v->kick, EV_TIMEOUT, 1);
	return 0;
}

void vpcd_get_stats(const struct vpcd *v, struct vpcd_stats *out)
{
	*out = v->st;
}

/* Walks the interface bytes: TDi's high nibble says which of TA/TB/TC/TD
 * follow, its low nibble the protocol (anything but T=0 makes TCK due). */
int vpcd_atr_check(const uint8_t *atr, size_t n)
{
	struct rd r;
	uint8_t ts, t0, td, tck, x = 0;
	unsigned y;
	int need_tck = 0;

	if (atr == NULL || n < 2 || n > VPCD_ATR_MAX)
		return TB_E_INVAL;
	r = rd_init(atr, n);
	if (rd_u8(&r, &ts) != 0 || (ts != 0x3B && ts != 0x3F) || rd_u8(&r, &t0) != 0)
		return TB_E_INVAL;
	for (y = t0 >> 4;;) {
		size_t skip = (size_t)((y & 1u) + ((y >> 1) & 1u) + ((y >> 2) & 1u));

		if (rd_skip(&r, skip) != 0)
			return TB_E_INVAL;
		if ((y & 8u) == 0)
			break;
		if (rd_u8(&r, &td) != 0)
			return TB_E_INVAL;
		need_tck |= (td & 0x0F) != 0;
		y = td >> 4;
	}
	if (rd_skip(&r, t0 & 0x0Fu) != 0)
		return TB_E_INVAL;
	if (need_tck) {
		if (rd_u8(&r, &tck) != 0)
			return TB_E_INVAL;
		for (size_t i = 1; i < n; i++)
			x ^= atr[i];
		if (x != 0)
			return TB_E_INVAL;
	}
	return rd_end(&r) == 0 ? 0 : TB_E_INVAL;
}

static int vpcd_parse_port(const char *s, uint16_t *port)
{
	unsigned long val = 0;
	size_t i;

	for (i = 0; s[i] != '\0'; i++) {
		if (i >= 5 || s[i] < '0' || s[i] > '9')
			return TB_E_INVAL;
		val = val * 10u + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || val == 0 || val > 65535u)
		return TB_E_INVAL;
	*port = (uint16_t)val;
	return 0;
}

int vpcd_parse_target(const char *s, char *host, size_t hostcap, uint16_t *port)
{
	const char *h, *end, *rest;
	uint16_t p = (uint16_t)VPCD_PORT_DEFAULT;

	if (s == NULL || host == NULL || port == NULL)
		return TB_E_INVAL;
	if (s[0] == '[') {
		h = s + 1;
		end = strchr(h, ']');
		if (end == NULL)
			return TB_E_INVAL;
		rest = end + 1;
	} else {
		h = s;
		end = strchr(s, ':');
		if (end != NULL && strchr(end + 1, ':') != NULL)
			return TB_E_INVAL; /* a bare IPv6 address needs brackets */
		if (end == NULL)
			end = s + strlen(s);
		rest = end;
	}
	if (end == h)
		return TB_E_INVAL;
	if (*rest != '\0' && (*rest != ':' || vpcd_parse_port(rest + 1, &p) != 0))
		return TB_E_INVAL;
	if ((size_t)(end - h) >= hostcap)
		return TB_E_NOSPACE;
	memcpy(host, h, (size_t)(end - h));
	host[end - h] = '\0';
	*port = p;
	return 0;
}
