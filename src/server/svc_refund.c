/* svc_refund.c - a refund booked at a reader (relay_book.c) reaching the se: a CREDIT of
 * its amount through the server's level-33 channel on the same phone session, right after
 * the RESULT, its receipt checked like a top-up's and verified by the sam, then the credit
 * marked done in the db (relay_refund_credited: no ledger row, the money moved with the
 * refund). What stays true: the phone hears "refund A at reader R" only after that mark
 * committed; a credit the se refused or that failed leaves the refund due for a later
 * exchange. */
#include <string.h>

#include "err.h"
#include "svc_int.h"

void svc_refund_start(struct svc *v, const struct svc_io *io, int64_t now_us)
{
	if (v->rl.due_xfer == 0 || v->state != SV_IDLE || v->gone || !io->live(v))
		return;
	v->rekeyed = 0;
	v->op = SVC_OP_REFUND;
	v->service = v->rl.due_service;
	v->amount = v->rl.due_amount;
	v->rf_xfer = v->rl.due_xfer;
	v->rf_reader = v->rl.due_reader;
	v->rl.due_xfer = 0;
	v->t0_us = now_us;
	svc_credit_start(v, io);
}

/* The mark committed (rc 0): told; a rule or lost db work as for any operation. A lost
 * mark leaves the se credited and the refund due: the next credit would be a second one,
 * which the next top-up's reconciliation books from the float (docs/services.md). */
void svc_refund_done(struct svc *v, const struct svc_io *io, int rc)
{
	struct svc_tell t = { .kind = SVC_T_REFUNDED };

	svc_close_handle(v, io);
	v->state = SV_IDLE;
	if (rc != 0) {
		svc_tell_rc(v, io, rc);
		return;
	}
	io->tell(v, &t);
}
