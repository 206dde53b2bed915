/* db.h - the storage interface of the server core: one vtable (struct db_ops) that the
 * adapters implement (src/io/db_sql.c over SQLite or PostgreSQL, opened by db_open() in
 * src/io/db_io.h). The core sees struct db as a handle with an ops pointer; the adapter's
 * state follows it. Schema, key formats and the commit rules: docs/storage.md.
 *
 * Batches and requests (group commit). The server runs every request of one loop turn
 * inside one batch, commits once, and only then replies to all of them:
 *
 *     db_batch_begin(db);                      one transaction
 *     for each request:
 *         db_req_begin(db);                    a savepoint
 *         rc = <rules: ledger_pay(db, ...), ...>;
 *         rc = db_req_end(db, rc == 0);        release, or roll back to the savepoint
 *     rc = db_batch_commit(db);                durable when it returns 0
 *     reply to each request: its own result if the commit returned 0, else a failure
 *
 * A request that fails (db_req_end(db, 0)) leaves no trace; the others in the batch are
 * not affected. db_req_end(db, 1) checks the request's deferred ledger constraints
 * (PostgreSQL: SET CONSTRAINTS ALL IMMEDIATE; SQLite: no deferred foreign key left
 * open) and, if they fail, rolls the request back and returns TB_E_DB_CONSTRAINT.
 * After an operation failed with TB_E_DB or TB_E_DB_CONSTRAINT inside a request, the
 * request is spoiled: further operations return that error and db_req_end() rolls it
 * back whatever ok says, returning the error. Every other error of an operation
 * (TB_E_DB_NOT_FOUND, _EXISTS, _CONFLICT, _STALE, TB_E_INVAL, TB_E_NOSPACE) is found
 * before anything is written: the operation changed nothing and the request goes on.
 * If db_batch_commit() fails, the whole batch is rolled back: nothing of it is durable
 * and no request of it may be confirmed (clients retry with the same idempotency keys).
 *
 * Outside a batch every operation runs as a transaction of its own (durable when it
 * returns 0); inside a batch, outside a request, operations return TB_E_DB_STATE.
 * Calls out of order (commit inside a request, a second begin, ...) return
 * TB_E_DB_STATE and change nothing.
 *
 * Conventions: 0 or a negative TB_E_*; outputs are written only on success; strings
 * are NUL-terminated, at most the stated size including the NUL (longer: TB_E_INVAL);
 * pointers are borrowed for the call. Times are seconds since 1970 (int64_t).
 * Reader id 0 and service id 0 mean "none". */
#ifndef TB_SERVER_DB_H
#define TB_SERVER_DB_H

#include <stddef.h>
#include <stdint.h>

#define DB_SERIAL_LEN 8        /* se serial (se/image.h SE_SERIAL_LEN) */
#define DB_KEY_MAX 48          /* idempotency key with its NUL (ledger.h formats) */
#define DB_NAME_MAX 64         /* service, account names and identifiers with the NUL */
#define DB_PRICES_MAX 16       /* price table entries per service */
#define DB_ITEMS_MAX 16        /* lines per order */
#define DB_LEGS_MAX 4          /* postings per transfer */
#define DB_ATTRS_MAX 16        /* personal-auth attributes per se */
#define DB_ATTR_NAME_MAX 32    /* attribute name with the NUL */
#define DB_ATTR_VALUE_MAX 128  /* attribute value bytes */
#define DB_BLOB_MAX 4096       /* one vault blob (sam-encrypted, opaque here) */
#define DB_SLOTS_MAX 16        /* vault slots per se */

enum db_se_state { DB_SE_ACTIVE = 1, DB_SE_LOCKED = 2, DB_SE_LOST = 3 };
enum db_reader_state { DB_READER_ACTIVE = 1, DB_READER_REVOKED = 2 };
enum db_svc_kind { DB_SVC_PAUTH = 1, DB_SVC_EMONEY = 2, DB_SVC_ECOMMERCE = 3, DB_SVC_TICKET = 4 };
/* Purse and revenue balances never go below zero (a CHECK); the float (the issuer's
 * side of every top-up) is the mirror image of all the money out there: negative. */
enum db_acct_kind { DB_ACCT_PURSE = 1, DB_ACCT_REVENUE = 2, DB_ACCT_FLOAT = 3 };
enum db_xfer_kind { DB_XFER_TOPUP = 1, DB_XFER_PAY = 2, DB_XFER_REFUND = 3, DB_XFER_MOVE = 4 };
enum db_ticket_state { DB_TICKET_VALID = 1, DB_TICKET_SPENT = 2, DB_TICKET_REVOKED = 3 };
enum db_order_state {
	DB_ORDER_OPEN = 1, DB_ORDER_PAID = 2, DB_ORDER_CANCELLED = 3, DB_ORDER_REFUNDED = 4
};
/* Usage history kinds (one row per tap, top-up, refund, lock, ...). */
enum db_ev_kind {
	DB_EV_CREDIT = 1,   /* a refund credited to the se by the server (key C:<transfer>) */
	DB_EV_TOPUP = 2, DB_EV_PAY = 3, DB_EV_REFUND = 4, DB_EV_LOCK = 5,
	DB_EV_UNLOCK = 6, DB_EV_LOST = 7, DB_EV_REPLACE = 8, DB_EV_TICKET_ISSUE = 9,
	DB_EV_TICKET_USE = 10, DB_EV_ORDER = 11, DB_EV_PAUTH = 12, DB_EV_VAULT = 13,
	DB_EV_MOVE = 14, DB_EV_PAUTH_DELETE = 15,
};
/* A lock or unlock the server has recorded (the portal, the operator) that the se itself
 * has not confirmed yet; cleared when it has (at its next contact). */
enum db_se_pending { DB_SE_PENDING_NONE = 0, DB_SE_LOCK_PENDING = 1, DB_SE_UNLOCK_PENDING = 2 };

struct db_se {
	uint8_t serial[DB_SERIAL_LEN];
	uint8_t state;                       /* enum db_se_state */
	uint8_t has_replaced_by;             /* LOST: the replacement se */
	uint8_t replaced_by[DB_SERIAL_LEN];
	int64_t created;
	int64_t changed;                     /* last state change */
	uint8_t pending;                     /* enum db_se_pending (se_get; se_add ignores it) */
	int64_t pending_since;               /* when it was asked for, 0 with NONE */
};

struct db_reader {
	uint32_t id;                         /* > 0 */
	uint32_t key_version;
	uint32_t reader_class;               /* selects visible personal-auth attributes */
	uint8_t state;                       /* enum db_reader_state */
	int64_t last_contact;
};

struct db_price {
	uint32_t item;
	uint32_t price;
};

struct db_service {
	uint32_t id;                         /* > 0 */
	uint8_t kind;                        /* enum db_svc_kind */
	char name[DB_NAME_MAX];
	size_t n_prices;                     /* sorted by item on output */
	struct db_price prices[DB_PRICES_MAX];
};

struct db_account {
	uint64_t id;
	uint8_t kind;                        /* enum db_acct_kind */
	char name[DB_NAME_MAX];              /* ledger.h: "P:<serial>", "V:<service>", "F" */
	int64_t balance;                     /* the sum of the account's postings */
};

struct db_leg {
	uint64_t account;
	int64_t amount;                      /* != 0; the legs of a transfer sum to zero */
};

/* A money movement. Its content (everything but the key and result) is what a replay
 * under the same key must repeat exactly; otherwise TB_E_DB_CONFLICT. */
struct db_transfer {
	char key[DB_KEY_MAX];                /* idempotency key, UNIQUE */
	uint8_t kind;                        /* enum db_xfer_kind */
	uint32_t amount;                     /* nominal amount, > 0 */
	uint8_t has_se;
	uint8_t se[DB_SERIAL_LEN];
	uint32_t reader;
	uint32_t service;
	int64_t rec_time;                    /* the record's own clock (reader or se) */
	uint64_t refund_of;                  /* REFUND: the refunded transfer's id, else 0 */
	int64_t result;                      /* stored, handed back on replay (purse balance) */
	int64_t now;                         /* server time, stored as created (not content) */
	size_t n_legs;                       /* 2..DB_LEGS_MAX */
	struct db_leg legs[DB_LEGS_MAX];
};

/* What an idempotent write did: the row's id, whether it existed already (replayed:
 * nothing was written), and the result and server time stored with the first one. */
struct db_applied {
	uint64_t id;
	int replayed;
	int64_t result;
	int64_t created;
};

/* The ledger's invariants, as counted by the database. */
struct db_audit {
	uint64_t transfers;
	uint64_t postings;
	int64_t postings_sum;                /* 0 */
	uint64_t unbalanced_transfers;       /* transfers whose legs do not sum to zero: 0 */
	uint64_t short_transfers;            /* transfers with fewer than two legs: 0 */
	uint64_t balance_mismatches;         /* accounts whose balance != their postings: 0 */
	uint64_t negative_purses;            /* purse/revenue accounts below zero: 0 */
};

struct db_ticket {
	uint64_t id;                         /* assigned by ticket_issue */
	uint8_t se[DB_SERIAL_LEN];
	uint32_t service;
	int64_t valid_from;                  /* usable while valid_from <= now < valid_until */
	int64_t valid_until;
	uint32_t uses_left;
	uint8_t state;                       /* enum db_ticket_state */
};

struct db_order_item {
	uint32_t item;
	uint32_t qty;
	uint32_t price;                      /* unit price when ordered */
};

struct db_order {
	uint64_t id;                         /* assigned by order_create */
	uint8_t se[DB_SERIAL_LEN];
	uint32_t service;
	uint64_t total;
	uint8_t state;                       /* enum db_order_state */
	int64_t created;
	size_t n_items;                      /* 1..DB_ITEMS_MAX */
	struct db_order_item items[DB_ITEMS_MAX];
};

struct db_attr {
	char name[DB_ATTR_NAME_MAX];
	size_t len;
	uint8_t value[DB_ATTR_VALUE_MAX];
};

/* The personal-auth record of one se (about 2.7 KiB). */
struct db_pauth {
	uint8_t se[DB_SERIAL_LEN];
	char identifier[DB_NAME_MAX];
	size_t n_attrs;                      /* sorted by name on output */
	struct db_attr attrs[DB_ATTRS_MAX];
};

struct db_event {
	uint64_t id;                         /* assigned by history_add; newest is largest */
	int64_t time;
	uint8_t kind;                        /* enum db_ev_kind */
	uint8_t has_se;
	uint8_t se[DB_SERIAL_LEN];
	uint32_t reader;
	uint32_t service;
	int64_t amount;
	uint64_t ref;                        /* transfer, ticket or order id, or 0 */
	char key[DB_KEY_MAX];                /* "" or the record's key (UNIQUE when set) */
};

#define DB_CODE_SALT_LEN 16
#define DB_CODE_HASH_LEN 32
/* The operator's one-time unlock code of a se (the customer's second factor in the
 * portal), stored hashed: hash = SHA-256(salt || serial || code digits). */
struct db_unlock_code {
	uint8_t salt[DB_CODE_SALT_LEN];
	uint8_t hash[DB_CODE_HASH_LEN];
	int64_t expires;
	uint32_t tries;                      /* wrong codes so far */
};

struct db;

struct db_ops {
	/* Batches and requests: see the top of this file. */
	int (*batch_begin)(struct db *db);
	int (*batch_commit)(struct db *db);
	void (*batch_abort)(struct db *db);
	int (*req_begin)(struct db *db);
	int (*req_end)(struct db *db, int ok);

	/* ses. se_add: TB_E_DB_EXISTS. se_set_state also sets (or, with NULL, clears)
	 * replaced_by and bumps the deny-list version when the state changes. */
	int (*se_add)(struct db *db, const struct db_se *se);
	int (*se_get)(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct db_se *out);
	int (*se_set_state)(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint8_t state,
			    const uint8_t *replaced_by, int64_t now);
	/* Locked and lost serials in ascending order after `after` (NULL: from the
	 * start), at most cap; *version changes whenever the list may have changed. */
	int (*deny_list)(struct db *db, const uint8_t *after, uint8_t (*out)[DB_SERIAL_LEN],
			 size_t cap, size_t *n, uint64_t *version);

	/* readers. reader_update writes key version, class, state and last contact. */
	int (*reader_add)(struct db *db, const struct db_reader *r);
	int (*reader_get)(struct db *db, uint32_t id, struct db_reader *out);
	int (*reader_update)(struct db *db, const struct db_reader *r);

	/* services with their price tables. */
	int (*service_add)(struct db *db, const struct db_service *s);
	int (*service_get)(struct db *db, uint32_t id, struct db_service *out);

	/* ledger. account_open finds or creates the account `name` (TB_E_DB_CONFLICT if
	 * it exists with another kind). transfer_apply writes the transfer and its legs
	 * (balances follow, by trigger); a key seen before with the same content writes
	 * nothing and answers the first result with replayed = 1; with different content
	 * TB_E_DB_CONFLICT. A leg that would take a purse below zero: TB_E_DB_CONSTRAINT. */
	int (*account_open)(struct db *db, uint8_t kind, const char *name, uint64_t *id);
	int (*account_get)(struct db *db, const char *name, struct db_account *out);
	int (*transfer_apply)(struct db *db, const struct db_transfer *t, struct db_applied *out);
	int (*transfer_get)(struct db *db, const char *key, struct db_transfer *t,
			    struct db_applied *out);
	/* Sum of the amounts of the refunds of transfer `id` (0 when none). */
	int (*refunded_sum)(struct db *db, uint64_t id, int64_t *sum);
	int (*ledger_audit)(struct db *db, struct db_audit *out);

	/* tickets. ticket_issue assigns the id; the key makes it idempotent as above. */
	int (*ticket_issue)(struct db *db, const char *key, const struct db_ticket *t,
			    struct db_applied *out);
	int (*ticket_get)(struct db *db, uint64_t id, struct db_ticket *out);
	int (*ticket_update)(struct db *db, uint64_t id, uint32_t uses_left, uint8_t state);
	/* Tickets of one se with id > after, ascending, at most cap. */
	int (*tickets_of_se)(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint64_t after,
			     struct db_ticket *out, size_t cap, size_t *n);

	/* e-commerce orders. order_create assigns the id (idempotent by key). order_set_state
	 * moves from -> to, TB_E_DB_CONFLICT when the order is not in `from`. */
	int (*order_create)(struct db *db, const char *key, const struct db_order *o,
			    struct db_applied *out);
	int (*order_get)(struct db *db, uint64_t id, struct db_order *out);
	int (*order_set_state)(struct db *db, uint64_t id, uint8_t from, uint8_t to);

	/* personal auth. pauth_put replaces the se's record; visibility: the attribute
	 * names a reader class may see (replaced as a whole). */
	int (*pauth_put)(struct db *db, const struct db_pauth *p);
	int (*pauth_get)(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct db_pauth *out);
	int (*pauth_visible_set)(struct db *db, uint32_t reader_class,
				 const char (*names)[DB_ATTR_NAME_MAX], size_t n);
	int (*pauth_visible_get)(struct db *db, uint32_t reader_class,
				 char (*names)[DB_ATTR_NAME_MAX], size_t cap, size_t *n);

	/* usage history. history_add: TB_E_DB_EXISTS when ev->key is set and known.
	 * Paging goes from the newest: rows with id < before (0: from the newest), at most
	 * cap, newest first; pass the last id seen as the next `before`. */
	int (*history_add)(struct db *db, const struct db_event *ev, uint64_t *id);
	int (*history_find)(struct db *db, const char *key, struct db_event *out);
	int (*history_by_se)(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint64_t before,
			     struct db_event *out, size_t cap, size_t *n);
	int (*history_by_reader)(struct db *db, uint32_t reader, uint64_t before,
				 struct db_event *out, size_t cap, size_t *n);

	/* the se's virtual memory: opaque blobs per (se, slot) with a version that only
	 * grows. blob_put: version below or equal to the stored one with other bytes:
	 * TB_E_DB_STALE; the same version and bytes again: 0 (a replay). */
	int (*blob_put)(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t slot,
			uint64_t version, const uint8_t *data, size_t n, int64_t now);
	int (*blob_get)(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t slot,
			uint64_t *version, uint8_t *buf, size_t cap, size_t *n);
	int (*blob_slots)(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t *slots,
			  size_t cap, size_t *n);

	/* --- the portal (docs/portal.md) --- */
	/* Every se / reader in ascending order after `after` (NULL / 0: from the start), at
	 * most cap (the operator's view). */
	int (*se_list)(struct db *db, const uint8_t *after, struct db_se *out, size_t cap,
		       size_t *n);
	int (*reader_list)(struct db *db, uint32_t after, struct db_reader *out, size_t cap,
			   size_t *n);
	/* Sets the se's pending mark (enum db_se_pending) and its time (0 with NONE).
	 * TB_E_DB_NOT_FOUND, TB_E_INVAL. */
	int (*se_set_pending)(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint8_t pending,
			      int64_t now);
	/* Removes the se's personal-auth record and its attributes: TB_E_DB_NOT_FOUND when
	 * it has none. */
	int (*pauth_delete)(struct db *db, const uint8_t serial[DB_SERIAL_LEN]);
	/* The se's unlock code: put replaces it (TB_E_DB_NOT_FOUND for an unknown se), get
	 * reads it (TB_E_DB_NOT_FOUND when none), del removes it (no code: 0). */
	int (*code_put)(struct db *db, const uint8_t serial[DB_SERIAL_LEN],
			const struct db_unlock_code *c);
	int (*code_get)(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct db_unlock_code *out);
	int (*code_del)(struct db *db, const uint8_t serial[DB_SERIAL_LEN]);
};

/* The handle: adapters put this first in their own state. */
struct db {
	const struct db_ops *ops;
};

static inline int db_batch_begin(struct db *db) { return db->ops->batch_begin(db); }
static inline int db_batch_commit(struct db *db) { return db->ops->batch_commit(db); }
static inline void db_batch_abort(struct db *db) { db->ops->batch_abort(db); }
static inline int db_req_begin(struct db *db) { return db->ops->req_begin(db); }
static inline int db_req_end(struct db *db, int ok) { return db->ops->req_end(db, ok); }

#endif
