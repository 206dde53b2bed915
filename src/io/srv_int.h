/* srv_int.h - what srv_net.c (the server: listener, session table, deadlines) and
 * srv_sess.c (one session: framing, closing, sending) share. Private to those two. */
#ifndef TB_IO_SRV_INT_H
#define TB_IO_SRV_INT_H

#include <stdint.h>
#include <time.h>

#include "srv_net.h"

struct bufferevent;
struct event;
struct evconnlistener;

enum ss_state {
	SS_HELLO,   /* TLS handshake, then waiting for HELLO */
	SS_OPEN,    /* HELLO done: frames go to the services */
	SS_CLOSING, /* the last frame (ERROR or BYE) queued: flushing it */
	SS_LINGER,  /* flushed, close_notify and FIN sent: reading until the phone closes */
	SS_GONE,    /* being freed: on_close() runs */
};

struct srv_session {
	struct srv *srv;
	struct bufferevent *bev;
	void *user;
	uint64_t id;
	uint64_t t_open;       /* ms (monotonic): accepted */
	uint64_t t_last;       /* ms: the last whole frame */
	uint64_t t_frame;      /* ms: first seen bytes of the frame in progress; 0: none */
	uint64_t t_close;      /* ms: the close began */
	uint32_t slot;
	uint32_t frames_in;
	uint32_t frames_out;
	uint16_t close_code;   /* the ERROR code sent, 0 for none */
	uint8_t state;         /* enum ss_state */
	uint8_t tls_up;
	uint8_t opened;        /* on_hello() ran: on_close() is owed */
	uint8_t held;          /* on_frame() said SRV_HOLD */
	uint8_t out_full;      /* reading paused until the output drains */
	uint8_t serial[PROTO_SERIAL_LEN];
	struct frame_rd rd;    /* empty between callbacks; its buffer is srv->rxbuf */
};

_Static_assert(sizeof(struct srv_session) <= SRV_SESSION_SIZE_MAX, "srv_session grew");

struct srv {
	struct event_base *base;
	struct tls_server *tls;
	struct srv_config cfg;
	struct srv_handlers h;
	void *arg;
	struct evconnlistener *lst;
	struct event *sweep;        /* checks every session's deadline */
	struct event *accept_retry; /* accepting again after running out of descriptors */
	struct srv_session **slots; /* max_sessions entries */
	uint32_t *free_slots;       /* a stack of the empty ones */
	size_t n_free;
	size_t count;
	uint64_t next_id;
	struct srv_stats stats;
	int shutting;
	uint8_t rxbuf[PROTO_SRV_IN_MAX - 1];
	uint8_t txbuf[FRAME_HDR_LEN + PROTO_PHONE_IN_MAX];
};

static inline uint64_t srv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A session for an accepted connection (fd is taken over): 0, or TB_E_NOMEM (fd closed). */
int srv_sess_new(struct srv *srv, int fd);
/* Ends the session when one of its deadlines has passed (may free it). */
void srv_sess_check(struct srv_session *s, uint64_t now);

#endif
