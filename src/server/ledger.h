/* ledger.h - the e-money rules of the server core, over the storage interface (db.h):
 * top-up, payment, refund, and the move of a lost se's balance to its replacement, as
 * double-entry transfers with idempotency keys. No I/O, no allocation.
 *
 * Call every rule inside a request (db_req_begin ... db_req_end(db, rc == 0)): a rule
 * that fails may have written part of its work, which db_req_end(db, 0) rolls back.
 *
 * Idempotency keys (canonical ASCII, uppercase hex, fixed widths; docs/storage.md):
 *   R:<reader id, 8 hex>:<reader sequence, 8 hex>     a record a reader took
 *   S:<se serial, 16 hex>:<se counter, 8 hex>          a record the se signed
 *   M:<se serial, 16 hex>                              the balance move of a lost se
 * Account names: "P:<serial, 16 hex>" (purse), "V:<service, 8 hex>" (revenue), "F" (float).
 *
 * Replay: a request whose key was applied before answers the first result again
 * (replayed = 1) and changes nothing, even if the rules would refuse it now (the se
 * was locked since, the balance spent); the same key with other content is
 * TB_E_DB_CONFLICT. */
#ifndef TB_SERVER_LEDGER_H
#define TB_SERVER_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"

#define LEDGER_AMOUNT_MAX 1000000u   /* largest amount of one record (minor units) */
#define LEDGER_BALANCE_MAX 10000000  /* largest purse balance */
#define LEDGER_FLOAT "F"

int ledger_key_reader(uint32_t reader, uint32_t seq, char key[DB_KEY_MAX]);
int ledger_key_se(const uint8_t serial[DB_SERIAL_LEN], uint32_t counter, char key[DB_KEY_MAX]);
int ledger_key_move(const uint8_t serial[DB_SERIAL_LEN], char key[DB_KEY_MAX]);
int ledger_name_purse(const uint8_t serial[DB_SERIAL_LEN], char name[DB_NAME_MAX]);
int ledger_name_revenue(uint32_t service, char name[DB_NAME_MAX]);

/* One money record as a reader or the se reported it. */
struct ledger_req {
	char key[DB_KEY_MAX];
	uint8_t se[DB_SERIAL_LEN];
	uint32_t reader;   /* the reader that took it; 0: the se's own record through the phone */
	uint32_t service;
	uint32_t amount;   /* 1..LEDGER_AMOUNT_MAX */
	int64_t time;      /* the record's clock */
	int64_t now;       /* the server's clock */
};

struct ledger_reply {
	uint64_t transfer_id; /* 0: nothing to move (ledger_move of an empty purse) */
	int replayed;
	int64_t balance;      /* the purse after the transfer, as first applied */
};

/* Credit the se's purse from the float. TB_E_SRV_AMOUNT, _UNKNOWN_READER,
 * _READER_REVOKED, _UNKNOWN_SE, _LOCKED, _LOST, _UNKNOWN_SERVICE, _KIND (not e-money),
 * _LIMIT (balance above LEDGER_BALANCE_MAX), TB_E_DB_CONFLICT, TB_E_DB*. */
int ledger_topup(struct db *db, const struct ledger_req *rq, struct ledger_reply *out);
/* Debit the purse to the service's revenue account (e-money, ticket or e-commerce
 * service). As top-up, and TB_E_SRV_FUNDS instead of _LIMIT: never a negative balance. */
int ledger_pay(struct db *db, const struct ledger_req *rq, struct ledger_reply *out);
/* Give back up to what the payment under paid_key took, from its service's revenue to
 * the same se (also when locked; not when lost). TB_E_SRV_REFUND when paid_key is no
 * payment of this se and service, or the refunds would exceed it. */
int ledger_refund(struct db *db, const struct ledger_req *rq, const char *paid_key,
		  struct ledger_reply *out);
/* Move the whole balance of a lost se to its replacement (key M:<from>). from must be
 * LOST with replaced_by == to; an empty purse moves nothing (transfer_id 0). */
int ledger_move(struct db *db, const uint8_t from[DB_SERIAL_LEN], const uint8_t to[DB_SERIAL_LEN],
		int64_t now, struct ledger_reply *out);
/* The purse's balance (0 for a se without a purse yet). */
int ledger_balance(struct db *db, const uint8_t serial[DB_SERIAL_LEN], int64_t *balance);

#endif
