/* se_listen.h - the direct contactless link: the se's contactless interface served on
 * a TCP or unix socket (tests, and the local reader link of flow 5), in the frames of
 * lib/frame.h. Format: docs/protocol.md, "direct contactless link".
 *
 *   reader -> se   0x01 APDU      one command APDU (N <= 1 + SE_CMD_MAX)
 *                  0x02 POWER     one byte: 00 off, 01 on, 02 reset
 *   se -> reader   0x81 RESPONSE  data || SW1 SW2, one per APDU, in order
 *
 * One reader at a time, like one card in one field: a new connection replaces the
 * one before it. A connected reader powers the card; closing is leaving the field.
 * The reader waits for each RESPONSE before its next APDU (a second APDU while one is
 * unanswered ends the connection); a POWER frame may come at any time and makes an
 * unanswered APDU stale: it is never answered. Any bad frame ends the connection.
 *
 * Threading: every call and callback on the thread that runs the event_base. */
#ifndef TB_IO_SE_LISTEN_H
#define TB_IO_SE_LISTEN_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct se_listen;

#define SE_LISTEN_T_APDU 0x01u
#define SE_LISTEN_T_POWER 0x02u
#define SE_LISTEN_T_RESPONSE 0x81u

#define SE_LISTEN_POWER_OFF 0x00u
#define SE_LISTEN_POWER_ON 0x01u
#define SE_LISTEN_POWER_RESET 0x02u

enum se_listen_event {
	SE_LISTEN_EV_UP = 1,    /* a reader connected: the card is in its field, powered */
	SE_LISTEN_EV_DOWN,      /* it left (closed, bad frame, replaced): a pending APDU is
	                           forgotten */
	SE_LISTEN_EV_POWER_ON,
	SE_LISTEN_EV_POWER_OFF,
	SE_LISTEN_EV_RESET,
};

struct se_listen_handler {
	/* A command APDU (1..SE_CMD_MAX bytes, unchecked). cmd stays valid until
	 * se_listen_reply() or the next event. Answer now or later. */
	void (*apdu)(struct se_listen *l, const uint8_t *cmd, size_t n, void *arg);
	/* After any event, an APDU received before it must not be answered. */
	void (*event)(struct se_listen *l, enum se_listen_event ev, void *arg);
};

/* Listens on spec ("tcp:HOST:PORT" or "unix:PATH", see framed.h). TB_E_INVAL (spec,
 * handler), TB_E_IO (bind failed or the unix path is in use), TB_E_NOMEM. */
int se_listen_new(struct event_base *base, const char *spec, const struct se_listen_handler *h,
		  void *arg, struct se_listen **out);

/* Answers the pending APDU (2..SE_RESP_MAX bytes). TB_E_INVAL when none is pending
 * (none came, answered already, or an event made it stale), TB_E_APDU_RESP under 2
 * bytes, TB_E_FRAME_OVERSIZE, TB_E_IO. */
int se_listen_reply(struct se_listen *l, const uint8_t *resp, size_t n);

/* 1 while a reader is connected. */
int se_listen_connected(const struct se_listen *l);

/* Closes the listener and the connection, without callbacks. Accepts NULL. */
void se_listen_free(struct se_listen *l);

#endif
