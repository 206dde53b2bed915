/* svc_refund.c - a refund booked at a reader (relay_book.c) reaching the se: the se's purse
 * read, the credit recorded begun at its counter, then a CREDIT of its amount in the same
 * level-33 channel on the same phone session, right after the RESULT, its receipt checked
 * like a top-up's and verified by the sam, then the credit marked done in the db
 * (relay_refund_credited: no ledger row, the money moved with the refund). What stays
 * true: the CREDIT is sent only after its begin committed, and again only while the se's
 * counter is the one it began at (relay_refund_begin), so a lost mark never makes a second
 * credit; the phone hears "refund A at reader R" only after the mark committed; a credit
 * the se refused or that failed leaves the refund due for a later exchange. */
#include <string.h>

#include "ct.h"
#include "err.h"
#include "relay_book.h"
#include "svc_int.h"

void svc_refund_start(struct svc *v, const struct svc_io *io, int64_t now_us)
{
	struct wr w = wr_init(v->cmd, sizeof(v->cmd)), wn = wr_init(v->next, sizeof(v->next));

	if (v->rl.due_xfer == 0 || v->state != SV_IDLE || v->gone || !io->live(v))
		return;
	v->rekeyed = 0;
	v->op = SVC_OP_REFUND;
	v->service = v->rl.due_service;
	v->amount = v->rl.due_amount;
	v->rf_xfer = v->rl.due_xfer;
	v->rf_reader = v->rl.due_reader;
	v->rf_step = 0;
	v->c0 = 0;
	v->rl.due_xfer = 0;
	v->t0_us = now_us;
	if (svc_cmd_read(&w, 0x30) != 0 || svc_cmd_credit(&wn, v->amount) != 0) {
		svc_fail(v, io, "credit");
		return;
	}
	v->cmd_n = w.len;
	v->next_n = wn.len;
	svc_tell_kind(v, io, SVC_T_START);
	svc_channel_start(v, io);
}

/* The purse (the channel's first answer, under the R-MAC: a counter the phone made up could
 * make a credit look not applied): its counter is what the begin records. The channel stays
 * open while the begin commits. */
void svc_refund_purse(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	uint32_t bal = 0, ctr = 0;

	if (!r->authenticated || svc_purse_parse(r->data, r->n, &bal, &ctr) != 0) {
		svc_fail(v, io, "purse");
		return;
	}
	v->balance = bal;
	v->counter = ctr;
	v->c0 = ctr;
	svc_queue_phase(v, io, SVC_PH_RF_BEGIN);
}

/* The begin committed: the CREDIT goes, or (taken as applied, or marked before) the phone
 * hears the credit done with the balance as read. */
static void svc_refund_begun(struct svc *v, const struct svc_io *io, int rc)
{
	struct svc_tell t = { .kind = SVC_T_REFUNDED };

	v->phase = SVC_PH_NONE;
	if (rc == 0 && v->rf_step == RELAY_CREDIT_SEND) {
		memcpy(v->cmd, v->next, v->next_n);
		v->cmd_n = v->next_n;
		ct_wipe(v->next, sizeof(v->next));
		svc_chan_next(v, io);
		return;
	}
	svc_close_handle(v, io);
	v->state = SV_IDLE;
	if (rc == 0 && v->rf_step != RELAY_CREDIT_APPLIED && v->rf_step != RELAY_CREDIT_DONE)
		rc = TB_E_INTERNAL;
	if (rc != 0) {
		svc_tell_rc(v, io, rc);
		return;
	}
	t.replayed = 1;
	io->tell(v, &t);
}

/* The begin (v->state SV_JOB) or the mark committed (rc 0), a rule, or lost db work as for
 * any operation. A lost mark leaves the se credited and the refund due: the next attempt
 * finds the se's counter moved past the begin's and marks it without a second CREDIT. */
void svc_refund_done(struct svc *v, const struct svc_io *io, int rc)
{
	struct svc_tell t = { .kind = SVC_T_REFUNDED };

	if (v->state == SV_JOB) {
		svc_refund_begun(v, io, rc);
		return;
	}
	svc_close_handle(v, io);
	v->state = SV_IDLE;
	if (rc != 0) {
		svc_tell_rc(v, io, rc);
		return;
	}
	io->tell(v, &t);
}
