/* relay_book.h - booking one reader record that came through the relay (relay_book.c). */
#ifndef TB_SERVER_RELAY_BOOK_H
#define TB_SERVER_RELAY_BOOK_H

#include <stdint.h>

#include "db.h"
#include "svc.h"

/* Books x (its body at body, x->len bytes) for reader inside its own savepoint of the
 * open batch; sets x->status, info, amount and balance. 0 (booked, replayed or refused
 * by a rule: see x->status), or a database error that spoils the batch. */
int relay_book(struct db *db, uint32_t reader, struct svc_rl_rec *x, const uint8_t *body,
	       int64_t now);

/* Refunds booked for an se reach it as a CREDIT through the server's channel, once. The
 * rule, from the db alone (it survives a restart): a refund of the se (history REFUND,
 * ref = its transfer) is due while no history row keyed "C:<transfer id, 16 hex>" exists;
 * that row (kind TAP, amount, reader, ref = the credit receipt's counter) is written once
 * the se's credit receipt was verified. Only the newest RELAY_DUE_SCAN history rows of the
 * se are looked at. */
#define RELAY_DUE_SCAN 32u
struct relay_due {
	uint64_t xfer;       /* the refund's transfer id; 0: nothing due */
	uint32_t amount;
	uint32_t service;
	uint32_t reader;
};
/* The oldest refund due in the window (out->xfer 0: none), read inside a request of a
 * batch (or outside any batch). 0 or a TB_E_DB*. */
int relay_refund_due(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct relay_due *out);
/* The credit of d done (receipt counter), in its own request of the open batch; *replayed
 * when it was marked before. 0 or a TB_E_DB*. */
int relay_refund_credited(struct db *db, const uint8_t serial[DB_SERIAL_LEN],
			  const struct relay_due *d, uint32_t counter, int64_t now, int *replayed);

/* One credit per refund, as the restore's (docs/services.md): the channel reads the se's
 * purse first, and the credit is recorded begun at its counter c0 (history row keyed
 * "CB:<transfer id, 16 hex>", kind CREDIT, amount 0, ref c0), committed before the CREDIT
 * is sent. A later attempt that finds that row sends the CREDIT again only while the se's
 * counter still equals c0; a counter that moved means the CREDIT was applied and its mark
 * lost, so the credit is marked done (C:<transfer>, ref c0 + 1: the counter its receipt
 * had) and not sent. */
enum relay_credit_step {
	RELAY_CREDIT_SEND = 1,    /* send the CREDIT (begun now, or begun at this counter) */
	RELAY_CREDIT_APPLIED = 2, /* begun at another counter: taken as applied, marked done */
	RELAY_CREDIT_DONE = 3,    /* marked done already: nothing to send */
};
/* The rule alone: done (a C: row), begun (a CB: row, at c0), the se's counter now. */
uint8_t relay_refund_decide(int done, int begun, uint32_t c0, uint32_t counter);
/* The rule applied for d with the se's counter now, in its own request of the open batch:
 * the CB: row added (SEND, first attempt) or the C: mark added (APPLIED); *step says which
 * (left 0 on an error). 0 or a TB_E_DB*. */
int relay_refund_begin(struct db *db, const uint8_t serial[DB_SERIAL_LEN],
		       const struct relay_due *d, uint32_t counter, int64_t now, uint8_t *step);

#endif
