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

#endif
