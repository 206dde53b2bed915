/* rdr_int.h - what the reader core's files share: the display line builder (a core has
 * no stdio), the se transport helpers and the outbox steps. Not for adapters. */
#ifndef TB_READER_RDR_INT_H
#define TB_READER_RDR_INT_H

#include <stddef.h>
#include <stdint.h>

#include "rdr.h"

/* A display line: appends are cut at RDR_LINE_MAX - 1; always NUL-terminated. */
struct rdr_line {
	char s[RDR_LINE_MAX];
	size_t n;
};

void line_start(struct rdr_line *l, const char *text);
void line_str(struct rdr_line *l, const char *text);
/* n bytes of printable ASCII (anything else shown as '?'). */
void line_text(struct rdr_line *l, const char *p, size_t n);
void line_u32(struct rdr_line *l, uint32_t v);
void line_hex(struct rdr_line *l, const uint8_t *p, size_t n);
void line_sw(struct rdr_line *l, uint16_t sw);
/* Shows "reader: " text. */
void rdr_say(struct rdr *r, const char *text);
void rdr_say_line(struct rdr *r, struct rdr_line *l);

/* Plain command (no channel): r->resp holds the response, r->plain/plain_n its data,
 * r->sw its SW. TB_E_RDR_CARD when the card is gone or answers under 2 bytes. */
int rdr_raw(struct rdr *r, const uint8_t *cmd, size_t n);
/* Through the se channel: data into r->plain / plain_n, r->sw. A 9000 without a
 * verified R-MAC, or an R-MAC failure: TB_E_SCP_RMAC (channel closed). An error SW
 * is no error here: the caller reads r->sw. */
int rdr_cmd(struct rdr *r, const uint8_t *cmd, size_t n);

/* The applications (rdr_apps.c): the local step, adding this tap's records to the
 * outbox (saved) when done. */
int rdr_app_online(struct rdr *r);
int rdr_app_offline(struct rdr *r);

/* The relay (rdr_relay.c): HELLO + AUTH (server authenticated, GET REQUEST kept), then
 * GET REQUEST + DATA + RESULT applied. */
int rdr_relay_open(struct rdr *r);
int rdr_relay_finish(struct rdr *r);

/* The outbox (rdr_store.c): adds n records in one save (seqs assigned from next_seq,
 * noted in r->tap_seq). TB_E_RDR_FULL, save errors; *r->st unchanged on error. */
int rdr_outbox_add(struct rdr *r, struct rdr_rec *recs, size_t n);
/* Saves r->scratch and makes it the store. */
int rdr_commit(struct rdr *r);

#endif
