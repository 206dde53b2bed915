/* sam_int.h - what the parts of the sam core share: the session table (sam_sessions.c)
 * and the request handlers (sam_req.c dispatches, sam_scp.c and sam_ops.c handle).
 * Not an API outside src/sam. */
#ifndef TB_SAM_INT_H
#define TB_SAM_INT_H

#include "sam.h"

/* One request being handled: the payload after the request id, and the reply being
 * written after its header and id. A handler returns 0 (reply complete), TB_E_SAM_PROTO
 * (malformed or out of order: the connection ends) or another TB_E_* (an ERROR reply).
 * A handler parses the whole request before it changes anything. */
struct sam_call {
	struct sam *s;
	struct sam_conn *c;
	struct rd req;
	struct wr *out;
};

/* sam_sessions.c: a slot from the free list onto c's list (TB_E_SAM_BUSY when none;
 * the caller sets its state or frees it), the slot a handle names for c (NULL when
 * none: a stale, foreign or made-up handle), a slot's handle, and freeing (wipes it). */
int sam_sess_alloc(struct sam *s, struct sam_conn *c, uint32_t *idx);
struct sam_session *sam_sess_find(struct sam *s, const struct sam_conn *c, uint32_t handle);
uint32_t sam_sess_handle(const struct sam *s, const struct sam_session *ss);
void sam_sess_free(struct sam *s, struct sam_conn *c, struct sam_session *ss);

int sam_h_scp_open(struct sam_call *k);
int sam_h_scp_step(struct sam_call *k);
int sam_h_scp_wrap(struct sam_call *k);
int sam_h_scp_unwrap(struct sam_call *k);
int sam_h_scp_close(struct sam_call *k);
int sam_h_scp_put_key(struct sam_call *k);

/* sam_scp.c, for sam_putkey.c: the session the next 4 request bytes name (TB_E_SAM_PROTO
 * when this connection owns none), and a session's end after a security failure. */
int sam_scp_take(struct sam_call *k, struct sam_session **ss);
void sam_scp_fail(struct sam_session *ss);
/* sam_putkey.c: the keys of the version the card named in its INITIALIZE UPDATE answer
 * (SCP_OPEN kvn SAM_KVN_CARD) into ss->h before the answer is processed; the card's answer
 * to a PUT KEY (plain data in out from data_at) checked against ss->expect. */
int sam_scp_card_keys(struct sam *s, struct sam_session *ss, const uint8_t *resp, size_t rn);
int sam_putkey_check(struct sam_session *ss, const struct scp_resp *info, struct wr *out,
		     size_t data_at);

int sam_h_sign(struct sam_call *k);
int sam_h_seal_blob(struct sam_call *k);
int sam_h_open_blob(struct sam_call *k);
int sam_h_receipt_verify(struct sam_call *k);
int sam_h_derive(struct sam_call *k);
int sam_h_terminal_key(struct sam_call *k);
int sam_h_rotate(struct sam_call *k);
int sam_h_retire(struct sam_call *k);

#endif
