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

#endif
