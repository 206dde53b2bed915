/* rules.h - the server core's service rules besides money: the life of a se (active,
 * locked, lost and replaced), readers, tickets, e-commerce orders, personal auth and
 * the se's vault, over the storage interface (db.h). No I/O, no allocation.
 * As in ledger.h: call each rule inside a request and end it with db_req_end(db, rc == 0);
 * a key seen before answers the first result again (replayed = 1). */
#ifndef TB_SERVER_RULES_H
#define TB_SERVER_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "ledger.h"

/* The checks every rule shares. se: TB_E_SRV_UNKNOWN_SE, _LOCKED, _LOST (only ACTIVE
 * passes). reader: TB_E_SRV_UNKNOWN_READER, _READER_REVOKED. service: _UNKNOWN_SERVICE,
 * _KIND when its kind is not in the `kinds` bitmap (1u << enum db_svc_kind). out may be
 * NULL. */
int srv_se_check(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct db_se *out);
int srv_reader_check(struct db *db, uint32_t id, struct db_reader *out);
int srv_service_check(struct db *db, uint32_t id, unsigned kinds, struct db_service *out);
#define SRV_KIND(k) (1u << (k))

/* A new se, active, with its purse. TB_E_DB_EXISTS when known. */
int srv_se_register(struct db *db, const uint8_t serial[DB_SERIAL_LEN], int64_t now);
/* Lock / unlock the wallet (history LOCK / UNLOCK). Locking a locked se and unlocking
 * an active one change nothing; a lost se: TB_E_SRV_LOST. */
int srv_se_lock(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t reader, int64_t now);
int srv_se_unlock(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t reader, int64_t now);
/* Report `old` lost and replaced by `repl` (registered and active): old becomes LOST
 * (on the deny list), its balance moves to repl (*moved). Again with the same repl:
 * replayed; with another: TB_E_SRV_STATE. */
int srv_se_lost(struct db *db, const uint8_t old[DB_SERIAL_LEN], const uint8_t repl[DB_SERIAL_LEN],
		int64_t now, struct ledger_reply *moved);

/* A reader says hello: known and active, key version not older than the stored one
 * (TB_E_SRV_KEY_VERSION); stores version and last contact; *deny_version tells it
 * whether to fetch the deny list (db->ops->deny_list). */
int srv_reader_contact(struct db *db, uint32_t id, uint32_t key_version, int64_t now,
		       uint64_t *deny_version);

struct srv_ticket_req {
	char key[DB_KEY_MAX];
	uint8_t se[DB_SERIAL_LEN];
	uint32_t service;      /* a ticket service */
	int64_t valid_from;
	int64_t valid_until;   /* > valid_from */
	uint32_t uses;         /* > 0 */
	int64_t now;
};
/* Issue a ticket to an active se (history TICKET_ISSUE). */
int srv_ticket_issue(struct db *db, const struct srv_ticket_req *rq, struct db_applied *out);
/* A reader's record "ticket used" under key: reader known and active, ticket known
 * (TB_E_SRV_UNKNOWN_TICKET), its se active (TB_E_SRV_LOCKED, _LOST), valid at now
 * (TB_E_SRV_EXPIRED), a use left (TB_E_SRV_USED). *uses_left: what remains. */
int srv_ticket_use(struct db *db, const char *key, uint32_t reader, uint64_t ticket,
		   int64_t now, uint32_t *uses_left, int *replayed);

/* An order of items (item and qty set; prices come from the service's table:
 * TB_E_SRV_ITEM) for an active se at an e-commerce service. */
int srv_order_create(struct db *db, const char *key, const uint8_t se[DB_SERIAL_LEN],
		     uint32_t service, const struct db_order_item *items, size_t n, int64_t now,
		     struct db_applied *out, uint64_t *total);
/* Pay an open order: rq must name its se and service and its total as amount
 * (TB_E_SRV_STATE, TB_E_SRV_AMOUNT). The order becomes PAID. */
int srv_order_pay(struct db *db, uint64_t order, const struct ledger_req *rq,
		  struct ledger_reply *out);

/* What a reader may see of a se's personal-auth record: the attributes its class may
 * see (history PAUTH). TB_E_DB_NOT_FOUND when the se has no record. */
int srv_pauth_view(struct db *db, const uint8_t se[DB_SERIAL_LEN], uint32_t reader, int64_t now,
		   struct db_pauth *out);

/* The se's virtual memory. put: only an active se writes its own blobs (a lost phone
 * cannot overwrite the backup). get: a se reads its own, or those of the lost se it
 * replaces (TB_E_SRV_NOT_OWNER otherwise). */
int srv_vault_put(struct db *db, const uint8_t se[DB_SERIAL_LEN], uint32_t slot, uint64_t version,
		  const uint8_t *data, size_t n, int64_t now);
int srv_vault_get(struct db *db, const uint8_t requester[DB_SERIAL_LEN],
		  const uint8_t owner[DB_SERIAL_LEN], uint32_t slot, uint64_t *version,
		  uint8_t *buf, size_t cap, size_t *n);

#endif
