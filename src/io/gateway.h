/* gateway.h - the gateway between the phones' wireless line and the network (the
 * patent's gateway 10): a TCP relay on one libevent loop, one "phone line" per accepted
 * connection, each with its own connection to the server. Bytes pass through untouched
 * (TLS goes end to end between phone and server; the gateway never sees inside it).
 *
 * Emulating a mobile network (the kernel's netem is not available): every chunk read
 * from one side is held delay_ms before it is written to the other, in order. Loss: a
 * TCP relay cannot drop bytes without breaking the stream (and TLS with it), so loss is
 * modelled the way a lossy radio link looks to TCP above it: a chunk that the radio
 * "lost" arrives one retransmission timeout (rto_ms) later than it would have, and it
 * holds back everything behind it (head-of-line blocking), as TCP's in-order delivery
 * does. Probability loss_pct per chunk, from a seeded generator so runs repeat.
 *
 * Memory: per line a fixed struct, two bufferevents and the chunks in flight. Reading a
 * side stops while what waits for the other side (held chunks plus its socket output)
 * exceeds GW_PENDING_MAX, and resumes when it drains; so a line holds about
 * GW_PENDING_MAX + one read per direction at most.
 *
 * Log lines (to opts.log): at a line's close `gw line=N up=X down=Y ms=T stretched=K`
 * (up = bytes phone -> server, down = server -> phone, both as forwarded; ms = the
 * line's lifetime; K = chunks given the extra rto), and on gw_stats()
 * `gw stats open=N lines=M up=X down=Y stretched=K` over all lines so far. */
#ifndef TB_IO_GATEWAY_H
#define TB_IO_GATEWAY_H

#include <stdint.h>
#include <stdio.h>

struct event_base;
struct gw;

#define GW_ADDR_MAX 64                     /* "[v6addr]:port" text, NUL included */
#define GW_PENDING_MAX (256u * 1024u)      /* per direction, before reading stops */
#define GW_DELAY_MS_MAX 60000u
#define GW_RTO_MS_DEFAULT 200u

struct gw_opts {
	uint32_t delay_ms;  /* each way, 0..GW_DELAY_MS_MAX */
	uint32_t loss_pct;  /* 0..100: chance per chunk of an extra rto_ms */
	uint32_t rto_ms;    /* 0..GW_DELAY_MS_MAX */
	uint64_t seed;      /* of the loss generator; 0 is taken as 1 */
	FILE *log;          /* close and stats lines; NULL: none */
};

/* Listens on `listen` ("HOST:PORT", "[V6]:PORT"; port 0 picks one) and relays each
 * accepted connection to `to`. bound (may be NULL) gets the address actually bound.
 * 0, TB_E_INVAL (an address or option out of range), TB_E_IO (cannot listen),
 * TB_E_NOMEM. */
int gw_new(struct event_base *base, const char *listen, const char *to,
	   const struct gw_opts *opts, struct gw **out, char bound[GW_ADDR_MAX]);
/* Writes the stats line to opts.log. */
void gw_stats(const struct gw *g);
/* Closes every open line (each logs its close line) and the listener. NULL is fine. */
void gw_free(struct gw *g);

#endif
