/* sam_srv.h - the sam's unix-socket server on libevent around the core (sam/sam.h).
 * The socket is created owner-only (umask 077, chmod 0600) in a directory others cannot
 * write to (or a sticky one); a peer whose uid (SO_PEERCRED) is not the sam's own is
 * closed at accept. Each connection has fixed buffers allocated when it is accepted;
 * requests are answered in order, many may be in flight (pipelining), and nothing is
 * allocated per request. A malformed or out-of-order request, or a bad frame, ends that
 * connection and its SCP sessions.
 *
 * Threading: every call and callback on the thread that runs the event_base. */
#ifndef TB_IO_SAM_SRV_H
#define TB_IO_SAM_SRV_H

#include <stddef.h>

struct event_base;
struct sam;
struct sam_srv;

/* Reading stops while this much reply data waits for a slow client (backpressure). */
#define SAM_SRV_OUT_CAP (512u * 1024u)

/* Listens on the unix socket path for core (borrowed). A live socket at path is
 * TB_E_IO ("in use"); a stale one is replaced. why gets the reason on failure.
 * TB_E_INVAL, TB_E_IO, TB_E_NOMEM. */
int sam_srv_new(struct event_base *base, struct sam *core, const char *path,
		struct sam_srv **out, char *why, size_t whycap);

/* Connections open now. */
size_t sam_srv_connections(const struct sam_srv *srv);

/* Closes every connection (their sessions end) and the socket, and removes its path.
 * Accepts NULL. */
void sam_srv_free(struct sam_srv *srv);

#endif
