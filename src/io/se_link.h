/* se_link.h - the IC_I/F link between the se and its phone: the se listens on a unix
 * socket (or holds a serial tty open) and speaks the frames of lib/frame.h.
 * Format and meaning: docs/protocol.md, "IC_I/F link".
 *
 *   phone -> se  0x01 APDU          command APDU for the host interface
 *                0x02 POWER         one byte: 00 off, 01 on, 02 reset (host interface)
 *                0x10 RELAY ANSWER  relay id(4) || the answer to the relayed ENVELOPE
 *                0x11 RELAY FAIL    relay id(4): the phone could not relay it
 *   se -> phone  0x81 RESPONSE      data || SW1 SW2, one per APDU, in order
 *                0x90 RELAY         relay id(4) service(4) ENVELOPE payload
 *                0x91 TRANSACTION   kind(1) amount(4) balance(4) counter(4)
 *                0x92 DISABLE       functions bitmap(2)
 *                0x93 LOCKED, 0x94 UNLOCKED (empty)
 *                0x95 EVENTS LOST   count(4): events dropped before the next one
 * Integers are big-endian. One phone at a time: a new connection replaces the one
 * before it. Any bad frame (unknown type, wrong size) ends the connection, and the
 * core sees nothing of it. A tty is reopened 200 ms after it fails.
 *
 * Threading: every call and callback on the thread that runs the event_base. */
#ifndef TB_IO_SE_LINK_H
#define TB_IO_SE_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "se/se.h"

struct event_base;
struct se_link;

#define SE_LINK_T_APDU 0x01u
#define SE_LINK_T_POWER 0x02u
#define SE_LINK_T_RELAY_ANSWER 0x10u
#define SE_LINK_T_RELAY_FAIL 0x11u
#define SE_LINK_T_RESPONSE 0x81u
#define SE_LINK_T_RELAY 0x90u
#define SE_LINK_T_TRANSACTION 0x91u
#define SE_LINK_T_DISABLE 0x92u
#define SE_LINK_T_LOCKED 0x93u
#define SE_LINK_T_UNLOCKED 0x94u
#define SE_LINK_T_EVENTS_LOST 0x95u

#define SE_LINK_TTY_RETRY_MS 200u

struct se_link_handler {
	void (*up)(struct se_link *l, void *arg);   /* a phone is there: events may flow */
	void (*down)(struct se_link *l, void *arg); /* it is gone (closed, bad frame, replaced) */
	/* A host-interface command (1..SE_CMD_MAX bytes, unchecked), borrowed for the
	 * call: answer it with se_link_response() before returning. */
	void (*apdu)(struct se_link *l, const uint8_t *cmd, size_t n, void *arg);
	void (*power)(struct se_link *l, uint8_t what, void *arg); /* 00 off, 01 on, 02 reset */
	/* The answer (0..SE_ENVELOPE_MAX bytes, borrowed for the call) or the failure of
	 * relay `id`; an id that is not the pending relay's is the caller's to ignore. */
	void (*relay_answer)(struct se_link *l, uint32_t id, const uint8_t *p, size_t n, void *arg);
	void (*relay_fail)(struct se_link *l, uint32_t id, void *arg);
};

struct se_link_config {
	const char *unix_path; /* listen here (replacing a dead socket file), or */
	const char *tty_path;  /* open this serial device in raw mode */
};

/* TB_E_INVAL (none or both paths, handler incomplete), TB_E_IO (bind, or the unix path
 * in use; a tty that does not open yet is retried, not an error), TB_E_NOMEM. */
int se_link_new(struct event_base *base, const struct se_link_config *cfg,
		const struct se_link_handler *h, void *arg, struct se_link **out);

/* 1 while a phone is connected (a tty: while it is open). */
int se_link_connected(const struct se_link *l);

/* The response to the APDU being handled (2..SE_RESP_MAX bytes). TB_E_IO when no phone
 * is connected or the link is ending, TB_E_APDU_RESP, TB_E_FRAME_OVERSIZE. */
int se_link_response(struct se_link *l, const uint8_t *resp, size_t n);

/* One event of the core (se_next_event) as its frame, preceded by EVENTS LOST when
 * ev->lost > 0; relay_id names a RELAY event. TB_E_IO when no phone is connected,
 * TB_E_INVAL for an event kind with no frame. */
int se_link_event(struct se_link *l, const struct se_event *ev, uint32_t relay_id);

/* Closes everything without callbacks. Accepts NULL. */
void se_link_free(struct se_link *l);

#endif
