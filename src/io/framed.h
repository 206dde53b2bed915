/* framed.h - length-prefixed frames (lib/frame.h) over a libevent byte stream: one
 * connection (an accepted unix or TCP socket, or an open tty) with a per-type size
 * table, and the listeners that accept such connections.
 *
 * A connection decodes every frame completely before handing it up, so a handler
 * sees only whole frames within their type's limit; the first bad frame (unknown
 * type, over its limit, empty) ends the connection. Nothing in it times out while
 * the peer is silent: only a write that makes no progress for FRAMED_WRITE_TIMEOUT_MS
 * ends it, and a peer that lets FRAMED_OUT_LIMIT bytes of output pile up.
 *
 * Threading: every call and callback on the thread that runs the event_base. */
#ifndef TB_IO_FRAMED_H
#define TB_IO_FRAMED_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct framed;
struct framed_listener;

#define FRAMED_WRITE_TIMEOUT_MS 5000u
#define FRAMED_OUT_LIMIT (256u * 1024u)
#define FRAMED_PATH_MAX 108u /* sun_path */
#define FRAMED_HOST_MAX 256u

struct framed_handler {
	/* One whole frame; payload (n bytes, NULL when n == 0) is borrowed until the
	 * return. Return 0 to go on, or a negative TB_E_* to end the connection (then
	 * closed() runs with that code). May call framed_send() on c. */
	int (*frame)(struct framed *c, uint8_t type, const uint8_t *payload, size_t n, void *arg);
	/* The connection ended: peer closed or failed (TB_E_IO), a bad frame
	 * (TB_E_FRAME_*), or frame() returned err. c is freed right after the return;
	 * the handler must forget it. Not called by framed_free(). */
	void (*closed)(struct framed *c, int err, void *arg);
};

struct framed_config {
	size_t max_in;              /* largest N (type + payload) accepted, >= 1 */
	const uint32_t *max_by_type; /* FRAME_TYPES limits on N, 0 refuses a type; borrowed */
	size_t max_out;             /* largest N framed_send() writes, >= 1 */
};

/* Takes over fd (a connected non-blocking socket or tty; closed by the framed).
 * TB_E_INVAL, TB_E_NOMEM, TB_E_IO; on failure fd is closed too. */
int framed_new(struct event_base *base, int fd, const struct framed_config *cfg,
	       const struct framed_handler *h, void *arg, struct framed **out);

/* Queues one frame. TB_E_FRAME_OVERSIZE over max_out; TB_E_IO when the connection is
 * ending (closed() follows from the loop, never from inside this call). */
int framed_send(struct framed *c, uint8_t type, const uint8_t *payload, size_t n);

/* Closes at once, without callbacks. Accepts NULL. Not from inside c's own callbacks
 * (return an error from frame() instead). */
void framed_free(struct framed *c);

/* "tcp:HOST:PORT" (HOST a name, IPv4, or [IPv6]; PORT 1..65535) or "unix:PATH". */
struct framed_addr {
	int is_unix;
	char host[FRAMED_HOST_MAX]; /* tcp */
	uint16_t port;
	char path[FRAMED_PATH_MAX]; /* unix, NUL-terminated */
};

/* TB_E_INVAL when malformed, TB_E_NOSPACE when a part is too long; *a is written on
 * success only. */
int framed_addr_parse(const char *spec, struct framed_addr *a);

/* Accepted connections: fd is non-blocking and close-on-exec, TCP_NODELAY on TCP;
 * the callback owns it. */
typedef void (*framed_accept_fn)(int fd, void *arg);

/* Listens on a. A unix path that exists is replaced only when it is a socket nobody
 * answers on (left by a killed run); a live one is TB_E_IO ("in use"). The unix path
 * is removed again by framed_listener_free. TB_E_IO, TB_E_NOMEM. */
int framed_listen(struct event_base *base, const struct framed_addr *a, framed_accept_fn cb,
		  void *arg, struct framed_listener **out);
void framed_listener_free(struct framed_listener *l);

#endif
