/* vpcd.h - the card side of vsmartcard's vpcd protocol on a libevent loop.
 * pcscd's vpcd driver listens (TCP 35963 = "Virtual PCD 00 00", 35964 = slot 1)
 * and a card connects to it; the card is "inserted" while the connection is
 * open. Frames in both directions: 2-byte big-endian length, then the body.
 * A 1-byte body from vpcd is a control byte (00 off, 01 on, 02 reset: no reply;
 * 04: reply with the ATR); any other body is a command APDU, answered by one
 * frame holding data and SW1 SW2.
 *
 * Threading: every vpcd_* call, and every callback, happens on the thread
 * that runs the event_base. None of them blocks except vpcd_new (it resolves
 * the host name once, with getaddrinfo).
 */
#ifndef TB_VPCD_H
#define TB_VPCD_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct vpcd;

#define VPCD_PORT_DEFAULT 35963u
/* The length field is 16 bits: no frame, either way, can be longer. */
#define VPCD_MAX_FRAME 0xFFFFu
#define VPCD_ATR_MAX 33u /* ISO 7816-3 */

/* 3B 8B 80 01 | 80 69 "tapbridge" | TCK: T=1 only (TD1 80, TD2 01, the
 * PC/SC part 3 shape of a contactless card), 11 historical bytes as ISO
 * 7816-4 compact-TLV (category 80, tag 6 "pre-issuing data", length 9). */
#define VPCD_ATR_DEFAULT_LEN 16u
extern const uint8_t vpcd_atr_default[VPCD_ATR_DEFAULT_LEN];

enum vpcd_event {
	VPCD_EV_LINK_UP = 1,   /* connected to vpcd: the card is inserted */
	VPCD_EV_LINK_DOWN = 2, /* connection lost (a pending command is forgotten);
	                          reconnecting with backoff */
	VPCD_EV_POWER_ON = 3,
	VPCD_EV_POWER_OFF = 4,
	VPCD_EV_RESET = 5,     /* warm reset: drop session state as for power on */
};

struct vpcd_handler {
	/* A command APDU (n >= 1, any bytes vpcd sent: the handler checks them).
	 * cmd is owned by the vpcd and stays valid until vpcd_reply() or
	 * VPCD_EV_LINK_DOWN, so an asynchronous handler need not copy it. Answer
	 * with vpcd_reply(), now or later; no further frame is read until then.
	 * After any event below, a command received before it must not be
	 * answered any more: vpcd cannot tell an old answer from a new one. */
	void (*apdu)(struct vpcd *v, const uint8_t *cmd, size_t n, void *arg);
	/* May be NULL. */
	void (*event)(struct vpcd *v, enum vpcd_event ev, void *arg);
};

struct vpcd_config {
	const char *host;    /* NULL: "127.0.0.1"; name or numeric, v4 or v6 */
	uint16_t port;       /* 0: VPCD_PORT_DEFAULT */
	const uint8_t *atr;  /* NULL: vpcd_atr_default; copied by vpcd_new */
	size_t atr_len;
	size_t max_cmd;      /* largest command body accepted; 0: VPCD_MAX_FRAME */
	unsigned idle_ms;    /* drop the link after this long without a frame while
	                        no command is pending (pcscd polls the ATR every
	                        400 ms); 0: 10000 */
};

struct vpcd_stats {
	uint64_t attempts;   /* connects tried, refused ones included */
	uint64_t connects;   /* links established */
	uint64_t drops;      /* links lost or dropped by us */
	uint64_t apdus;      /* command APDUs handed to the handler */
	uint64_t atrs;       /* ATR requests answered */
	int last_err;        /* why the last link ended: TB_E_IO (closed, error,
	                        timeout), TB_E_FRAME_EMPTY (zero-length frame),
	                        TB_E_FRAME_OVERSIZE (over max_cmd), TB_E_FRAME_TYPE
	                        (unknown control byte); 0 before any */
	int connected;       /* 1 while the link is up */
	int powered;         /* 1 between POWER_ON/RESET and POWER_OFF/LINK_DOWN */
	int pending;         /* 1 while a command waits for vpcd_reply() */
};

/* Starts connecting at once; reconnects forever with a backoff of 100 ms
 * doubling to 2 s (reset after the first frame of a link). TB_E_INVAL for a
 * bad config (ATR not 2..33 bytes, or its structure or TCK wrong), TB_E_IO
 * when the host does not resolve or libevent fails, TB_E_NOMEM. *out is set
 * on success only. */
int vpcd_new(struct event_base *base, const struct vpcd_config *cfg,
             const struct vpcd_handler *h, void *arg, struct vpcd **out);

/* Closes the link without callbacks. Accepts NULL. Not from inside one of
 * this vpcd's callbacks. */
void vpcd_free(struct vpcd *v);

/* Answers the pending command: resp = data then SW1 SW2 (2..65535 bytes),
 * sent as one frame in one write. TB_E_INVAL when no command is pending (none
 * came, it was answered, or the link dropped since), TB_E_APDU_RESP under 2
 * bytes, TB_E_FRAME_OVERSIZE over VPCD_MAX_FRAME, TB_E_IO when libevent
 * refuses the bytes. On error the pending command stays pending. */
int vpcd_reply(struct vpcd *v, const uint8_t *resp, size_t n);

void vpcd_get_stats(const struct vpcd *v, struct vpcd_stats *out);

/* Checks an ATR's structure: TS 3B or 3F, the T0/TDi interface-byte chain and
 * K historical bytes fit exactly, and TCK is right when present (required
 * when any protocol other than T=0 is indicated). 0 or TB_E_INVAL. */
int vpcd_atr_check(const uint8_t *atr, size_t n);

/* "HOST", "HOST:PORT", "[V6]" or "[V6]:PORT" (port 1..65535, decimal) into
 * host (NUL-terminated, hostcap bytes) and *port (VPCD_PORT_DEFAULT when
 * absent). TB_E_INVAL when malformed, TB_E_NOSPACE when host does not fit;
 * outputs are written on success only. */
int vpcd_parse_target(const char *s, char *host, size_t hostcap, uint16_t *port);

#endif
