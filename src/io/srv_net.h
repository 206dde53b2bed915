/* srv_net.h - the server's phone transport: a TLS 1.3 listener on one libevent loop,
 * one session per phone, the phone session protocol (server/proto.h) framed and checked,
 * and the interface through which the services answer.
 *
 * What a service sees: on_hello() once per session with a valid HELLO, then on_frame()
 * with each further frame, already decoded and within its limits, then on_close(). The
 * transport itself answers PING with PONG and BYE with BYE, and ends a session with an
 * ERROR frame (docs/protocol.md) on any malformed, oversize, unknown or
 * out-of-order frame, on timeouts, and on srv_close_with_error().
 *
 * Memory: a session holds its fixed struct (SRV_SESSION_SIZE_MAX bytes), the SSL object
 * and a libevent bufferevent. Frames wait in the bufferevent's input until whole and are
 * decoded through one receive buffer shared by all sessions, so an idle session holds no
 * frame buffer; with SSL_MODE_RELEASE_BUFFERS it holds no record buffer either. Input is
 * bounded without a read high-water mark (which can stall bufferevent_openssl with
 * decrypted bytes left inside the SSL): every read callback takes all whole frames, a
 * frame's header is checked as soon as it is in (512 bytes at most before HELLO, the
 * type's limit after), and reading stops while a session is held or its output is
 * backed up, so the input holds at most one partial frame and one TLS record. Measured
 * (bench/sessions.c): about 15 KiB resident per idle open session, 13 KiB of it OpenSSL's
 * own per-connection state (the SSL object alone is 7.6 KiB in OpenSSL 3.0).
 *
 * Threading: everything on the thread that runs the event_base. Callbacks never nest:
 * srv_send(), srv_close_with_error() and srv_resume() may be called from any callback,
 * also for other sessions; a session is freed only from the loop, after on_close(). */
#ifndef TB_IO_SRV_NET_H
#define TB_IO_SRV_NET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "server/proto.h"

struct event_base;
struct tls_server;
struct srv;
struct srv_session;

#define SRV_SESSIONS_LIMIT (1u << 20)  /* largest max_sessions */
#define SRV_OUT_HIGH (64u * 1024u)     /* default out_high */
#define SRV_SESSION_SIZE_MAX 192u      /* sizeof(struct srv_session) on LP64 (checked when built) */
#define SRV_ADDR_MAX 64u               /* "255.255.255.255:65535", "[v6]:port" with the NUL */

/* on_frame() result: read no further frame of this session until srv_resume(). */
#define SRV_HOLD 1

struct srv_config {
	size_t max_sessions; /* at once, TLS handshakes included; more are closed at accept */
	unsigned hello_ms;   /* accept -> TLS handshake and HELLO done */
	unsigned idle_ms;    /* an open session sends no frame (phones PING more often) */
	unsigned frame_ms;   /* a frame's first byte -> its last byte */
	unsigned write_ms;   /* output pending without progress */
	unsigned close_ms;   /* flushing the last frames, then waiting for the phone's close */
	size_t out_high;     /* unsent output above which a phone's frames stop being read,
			      * until it drains to a quarter of it; >= 1024 */
	FILE *log;           /* one line per event; NULL: none */
};

/* max_sessions 20000, hello 10 s, idle 300 s, frame 10 s, write 10 s, close 2 s,
 * out_high SRV_OUT_HIGH, log stderr. */
void srv_config_default(struct srv_config *c);

/* A handle a service may keep across loop turns (a pointer may dangle, a ref cannot). */
struct srv_ref {
	uint64_t id;
	uint32_t slot;
};

struct srv_handlers {
	/* A valid HELLO (version checked): the session is open. Answer with srv_send()
	 * (MENU, NOTICE, ...), or refuse with srv_close_with_error(). */
	void (*on_hello)(struct srv_session *s, const struct proto_hello *h, void *arg);
	/* One valid frame after HELLO of a type the server accepts, except PING, BYE and
	 * HELLO (the transport's). m and what it points to are borrowed until the return.
	 * Return 0 to go on, or SRV_HOLD to read no further frame of s until srv_resume(s)
	 * (answer asynchronously; the session's timeouts stop while it is held). */
	int (*on_frame)(struct srv_session *s, const struct proto_msg *m, void *arg);
	/* The session ends; only for sessions that had on_hello(). code is the ERROR code
	 * sent (enum proto_err), 0 when the phone said BYE or went away. s and its ref are
	 * invalid after the return; srv_send() on it is refused already. May be NULL. */
	void (*on_close)(struct srv_session *s, uint16_t code, void *arg);
};

/* A server on base with the certificate of tls (both borrowed; they must outlive it).
 * TB_E_INVAL for a bad config, TB_E_NOMEM. */
int srv_new(struct event_base *base, struct tls_server *tls, const struct srv_config *cfg,
	    const struct srv_handlers *h, void *arg, struct srv **out);

/* Listens on "HOST:PORT" (IPv4, or [IPv6]; port 0 picks a free one). bound (SRV_ADDR_MAX
 * bytes, may be NULL) gets the address actually bound. Only one listener per srv.
 * TB_E_INVAL (address), TB_E_IO (bind/listen), TB_E_NOMEM. */
int srv_listen(struct srv *srv, const char *addr, char bound[SRV_ADDR_MAX]);

/* Stops accepting and ends every session with ERROR "server shutting down"; sessions
 * go away as they flush (within close_ms). srv_count() says when all are gone. */
void srv_shutdown(struct srv *srv);
/* Sessions open now (handshakes included). */
size_t srv_count(const struct srv *srv);

/* Counters since srv_new, for benchmarks, tests and a future status page. */
struct srv_stats {
	uint64_t accepted;   /* connections that became sessions */
	uint64_t refused;    /* connections closed at accept (limit, shutdown, memory) */
	uint64_t hellos;     /* sessions opened by a valid HELLO */
	uint64_t errors;     /* ERROR frames sent */
	uint64_t out_pauses; /* times a phone's frames stopped being read: output backed up */
};
void srv_get_stats(const struct srv *srv, struct srv_stats *st);
/* Frees every session at once (no ERROR, no on_close), the listener and srv. Accepts NULL.
 * libevent completes freeing a bufferevent with pending deferred callbacks from its loop:
 * after the loop has stopped, give it one more turn (event_base_loop(base,
 * EVLOOP_NONBLOCK)) before event_base_free(), or those bufferevents leak. */
void srv_free(struct srv *srv);

/* ---- one session ---- */

uint64_t srv_session_id(const struct srv_session *s);
struct srv_ref srv_session_ref(const struct srv_session *s);
/* The session a ref names, or NULL when it has ended. */
struct srv_session *srv_session_get(struct srv *srv, struct srv_ref ref);
/* The se serial from its HELLO (PROTO_SERIAL_LEN bytes). */
const uint8_t *srv_session_serial(const struct srv_session *s);
/* A pointer for the services, NULL until set; the transport never touches it. */
void srv_session_set_user(struct srv_session *s, void *user);
void *srv_session_user(const struct srv_session *s);

/* Queues one frame for the phone. The payload must decode as its type (checked with
 * proto_decode, so the phone never gets what our own decoder refuses) and fit the
 * phone's limit for it. TB_E_FRAME_TYPE for a type the phone does not accept (ERROR goes
 * through srv_close_with_error), TB_E_PROTO_* / TB_E_TRUNC / TB_E_LEFTOVER for a bad
 * payload, TB_E_FRAME_OVERSIZE, TB_E_PROTO_STATE before HELLO or once the session is
 * ending, TB_E_NOMEM. Nothing is queued on error. */
int srv_send(struct srv_session *s, uint8_t type, const uint8_t *payload, size_t n);
/* Encodes m and queues it (srv_send's errors, and TB_E_NOSPACE never: the frame buffer
 * fits every message). */
int srv_send_msg(struct srv_session *s, const struct proto_msg *m);
/* Sends ERROR (code, and reason or the code's default when NULL; cut to
 * PROTO_REASON_MAX bytes, and replaced by the default when it is not clean text), then
 * closes after flushing, within close_ms. A second call, or one on an ending session,
 * does nothing. */
void srv_close_with_error(struct srv_session *s, uint16_t code, const char *reason);
/* Reads the session's frames again after on_frame() returned SRV_HOLD (from a later
 * loop turn; a no-op when it is not held). */
void srv_resume(struct srv_session *s);

/* The text of a bound IPv4 or IPv6 address ("127.0.0.1:8443", "[::1]:8443"): 0 or
 * TB_E_INVAL. Shared with srv_http. */
struct sockaddr;
int srv_addr_text(const struct sockaddr *sa, char out[SRV_ADDR_MAX]);
/* Parses "HOST:PORT" (an IPv4 or [IPv6] literal, PORT 0..65535; 0 picks a free port at
 * bind) into sa (cap bytes; *len in/out). 0 or TB_E_INVAL. */
int srv_addr_parse(const char *addr, struct sockaddr *sa, int *len);

/* A log line "srv session=N event=EVENT ..." for the services (fmt: the rest, may be
 * NULL). No secrets and no personal data: say what happened, not to whom. */
void srv_log(const struct srv_session *s, const char *event, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
