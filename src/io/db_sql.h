/* db_sql.h - inside the storage adapter: the operations of server/db.h are written once
 * (db_sql*.c) over a small driver that runs one SQL statement with typed parameters and
 * walks its rows; db_sqlite.c and db_pg.c are the two drivers. The SQL text is the same
 * for both back ends (parameters $1..$n, types INTEGER/BIGINT, BLOB/BYTEA, TEXT). */
#ifndef TB_IO_DB_SQL_H
#define TB_IO_DB_SQL_H

#include <stddef.h>
#include <stdint.h>

#include "server/db.h"

/* A parameter or column value; pointers borrowed (columns: valid until the next row). */
enum dv_type { DV_NULL = 0, DV_INT, DV_BLOB, DV_TEXT };
struct dv {
	uint8_t type;
	int64_t i;
	const void *p;
	size_t n;
};

#define DV_I(x) { DV_INT, (int64_t)(x), NULL, 0 }
#define DV_B(ptr, len) { DV_BLOB, 0, (ptr), (len) }
#define DV_T(str) { DV_TEXT, 0, (str), 0 }
#define DV_NUL { DV_NULL, 0, NULL, 0 }
#define DB_SQL_PARAMS_MAX 12

struct db_sql;

/* What a back end provides. Every call returns 0 or a negative TB_E_* (TB_E_DB_CONSTRAINT
 * for constraint and trigger refusals, TB_E_DB for the rest) with the database's text in
 * s->errmsg. One statement is open at a time: run(), next() until 0, done(). */
struct db_drv {
	const char *name;
	int has_seals; /* SQLite: transfers are sealed (docs/storage.md) */
	int (*exec)(struct db_sql *s, const char *sql);  /* one or more statements, no rows */
	int (*run)(struct db_sql *s, unsigned id, const char *sql, const struct dv *p, size_t np);
	int (*next)(struct db_sql *s);                   /* 1 row, 0 no more, < 0 error */
	void (*col)(struct db_sql *s, unsigned i, struct dv *out);
	void (*done)(struct db_sql *s);
	int (*begin)(struct db_sql *s);
	int (*commit)(struct db_sql *s);                 /* rolls back itself when it fails */
	void (*rollback)(struct db_sql *s);
	int (*savepoint)(struct db_sql *s);
	int (*release)(struct db_sql *s);                /* checks deferred constraints first */
	void (*rollback_to)(struct db_sql *s);           /* and releases the savepoint */
	int (*tx_lost)(struct db_sql *s);                /* 1: the transaction is gone */
	int (*migrate_lock)(struct db_sql *s);           /* inside the migration transaction */
	void (*close)(struct db_sql *s);                 /* frees s */
};

enum db_sql_state { DB_SQL_IDLE = 0, DB_SQL_BATCH, DB_SQL_REQ };

/* The shared part of an open database; a driver's state starts with it. */
struct db_sql {
	struct db db;
	const struct db_drv *drv;
	enum db_sql_state state;
	int auto_tx;      /* an operation outside a batch runs in a transaction of its own */
	int spoiled;      /* the request's first database error, 0 if none */
	int batch_failed; /* the transaction is gone: the batch can only be aborted */
	char errmsg[256];
};

/* Statements, shared by both back ends (db_sql.c holds the text). */
enum db_stmt {
	ST_SE_ADD, ST_SE_GET, ST_SE_SET, ST_DENY_LIST, ST_DENY_VERSION, ST_DENY_BUMP,
	ST_READER_ADD, ST_READER_GET, ST_READER_UPD,
	ST_SVC_ADD, ST_SVC_GET, ST_PRICE_ADD,
	ST_ACCT_ADD, ST_ACCT_GET,
	ST_XFER_ADD, ST_XFER_GET, ST_POST2_ADD, ST_POST_ADD, ST_SEAL_ADD, ST_LEGS_GET,
	ST_REFUNDED, ST_AUDIT,
	ST_TICKET_ADD, ST_TICKET_BY_KEY, ST_TICKET_GET, ST_TICKET_UPD, ST_TICKETS_SE,
	ST_ORDER_ADD, ST_ORDER_BY_KEY, ST_ORDER_GET, ST_ORDER_SET, ST_ITEM_ADD, ST_ITEMS_GET,
	ST_PAUTH_PUT, ST_PAUTH_GET, ST_PATTR_DEL, ST_PATTR_ADD, ST_PATTR_GET,
	ST_VIS_DEL, ST_VIS_ADD, ST_VIS_GET,
	ST_HIST_ADD, ST_HIST_FIND, ST_HIST_SE, ST_HIST_READER,
	ST_BLOB_GET, ST_BLOB_PUT, ST_BLOB_SLOTS,
	ST_SE_LIST, ST_READER_LIST, ST_SE_PENDING, ST_PAUTH_DEL, ST_CODE_PUT, ST_CODE_GET,
	ST_CODE_DEL,
	ST_MIG_VERSION, ST_MIG_ADD,
	ST_COUNT
};

static inline struct db_sql *db_sql_of(struct db *db) { return (struct db_sql *)db; }

/* The two back ends: open, configure, migrate. 0 with *out, or an error with the
 * reason in err (nothing left open). */
int db_sqlite_open(const char *path, struct db_sql **out, char *err, size_t errcap);
int db_pg_open(const char *conninfo, struct db_sql **out, char *err, size_t errcap);

/* Binds s to its driver and brings the schema up to date (db_migrations.c).
 * On failure the caller closes s. */
int db_sql_start(struct db_sql *s, const struct db_drv *drv);

/* --- helpers for the operation files (db_sql.c) --- */

/* Transaction around one operation: its own outside a batch, refused in a batch
 * outside a request, refused in a spoiled request. */
int sql_enter(struct db_sql *s);
int sql_leave(struct db_sql *s, int rc);
/* Runs a statement; errors spoil the request. */
int sql_run(struct db_sql *s, enum db_stmt id, const struct dv *p, size_t np);
int sql_next(struct db_sql *s);
/* run + the first row: 0 with the statement open (read columns, then sql_done),
 * TB_E_DB_NOT_FOUND with it closed, or an error. */
int sql_row(struct db_sql *s, enum db_stmt id, const struct dv *p, size_t np);
/* run to the end, rows ignored; *rows gets their count when not NULL. */
int sql_exec(struct db_sql *s, enum db_stmt id, const struct dv *p, size_t np, size_t *rows);
void sql_done(struct db_sql *s);
int sql_fail(struct db_sql *s, int rc);

int64_t col_int(struct db_sql *s, unsigned i);
/* Exactly n bytes (a serial): TB_E_DB when the column is not a blob of n bytes. */
int col_fixed(struct db_sql *s, unsigned i, uint8_t *out, size_t n);
/* A blob of at most cap bytes (NULL reads as empty); TB_E_DB if longer. */
int col_blob(struct db_sql *s, unsigned i, uint8_t *out, size_t cap, size_t *n);
/* Text into out[cap] with its NUL; TB_E_DB if it does not fit. */
int col_text(struct db_sql *s, unsigned i, char *out, size_t cap);
/* 1 when the column is NULL. */
int col_null(struct db_sql *s, unsigned i);

/* 0 when the se exists, TB_E_DB_NOT_FOUND when not (nothing else is read). */
int sql_se_known(struct db_sql *s, const uint8_t serial[DB_SERIAL_LEN]);
/* Checks a caller's string: NUL within cap, not empty when nonempty is set. */
int str_ok(const char *str, size_t cap, int nonempty);

/* The operations of db_sql_parties.c, db_sql_ledger.c, db_sql_records.c (server/db.h). */
int dbs_se_add(struct db *db, const struct db_se *se);
int dbs_se_get(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct db_se *out);
int dbs_se_set_state(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint8_t state,
		     const uint8_t *replaced_by, int64_t now);
int dbs_deny_list(struct db *db, const uint8_t *after, uint8_t (*out)[DB_SERIAL_LEN],
		  size_t cap, size_t *n, uint64_t *version);
int dbs_reader_add(struct db *db, const struct db_reader *r);
int dbs_reader_get(struct db *db, uint32_t id, struct db_reader *out);
int dbs_reader_update(struct db *db, const struct db_reader *r);
int dbs_service_add(struct db *db, const struct db_service *s);
int dbs_service_get(struct db *db, uint32_t id, struct db_service *out);
int dbs_account_open(struct db *db, uint8_t kind, const char *name, uint64_t *id);
int dbs_account_get(struct db *db, const char *name, struct db_account *out);
int dbs_transfer_apply(struct db *db, const struct db_transfer *t, struct db_applied *out);
int dbs_transfer_get(struct db *db, const char *key, struct db_transfer *t,
		     struct db_applied *out);
int dbs_refunded_sum(struct db *db, uint64_t id, int64_t *sum);
int dbs_ledger_audit(struct db *db, struct db_audit *out);
int dbs_ticket_issue(struct db *db, const char *key, const struct db_ticket *t,
		     struct db_applied *out);
int dbs_ticket_get(struct db *db, uint64_t id, struct db_ticket *out);
int dbs_ticket_update(struct db *db, uint64_t id, uint32_t uses_left, uint8_t state);
int dbs_tickets_of_se(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint64_t after,
		      struct db_ticket *out, size_t cap, size_t *n);
int dbs_order_create(struct db *db, const char *key, const struct db_order *o,
		     struct db_applied *out);
int dbs_order_get(struct db *db, uint64_t id, struct db_order *out);
int dbs_order_set_state(struct db *db, uint64_t id, uint8_t from, uint8_t to);
int dbs_pauth_put(struct db *db, const struct db_pauth *p);
int dbs_pauth_get(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct db_pauth *out);
int dbs_pauth_visible_set(struct db *db, uint32_t reader_class,
			  const char (*names)[DB_ATTR_NAME_MAX], size_t n);
int dbs_pauth_visible_get(struct db *db, uint32_t reader_class,
			  char (*names)[DB_ATTR_NAME_MAX], size_t cap, size_t *n);
int dbs_history_add(struct db *db, const struct db_event *ev, uint64_t *id);
int dbs_history_find(struct db *db, const char *key, struct db_event *out);
int dbs_history_by_se(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint64_t before,
		      struct db_event *out, size_t cap, size_t *n);
int dbs_history_by_reader(struct db *db, uint32_t reader, uint64_t before,
			  struct db_event *out, size_t cap, size_t *n);
int dbs_blob_put(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t slot,
		 uint64_t version, const uint8_t *data, size_t n, int64_t now);
int dbs_blob_get(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t slot,
		 uint64_t *version, uint8_t *buf, size_t cap, size_t *n);
int dbs_blob_slots(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t *slots,
		   size_t cap, size_t *n);

/* The portal's operations (db_sql_portal.c). */
int dbs_se_list(struct db *db, const uint8_t *after, struct db_se *out, size_t cap, size_t *n);
int dbs_reader_list(struct db *db, uint32_t after, struct db_reader *out, size_t cap,
		    size_t *n);
int dbs_se_set_pending(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint8_t pending,
		       int64_t now);
int dbs_pauth_delete(struct db *db, const uint8_t serial[DB_SERIAL_LEN]);
int dbs_code_put(struct db *db, const uint8_t serial[DB_SERIAL_LEN],
		 const struct db_unlock_code *c);
int dbs_code_get(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct db_unlock_code *out);
int dbs_code_del(struct db *db, const uint8_t serial[DB_SERIAL_LEN]);
/* The columns of a ses row from column `first` on (state, replaced_by, created, changed,
 * pending, pending_since) into se (serial not touched). */
int se_cols(struct db_sql *s, unsigned first, struct db_se *se);

extern const char *const db_sql_text[ST_COUNT];

#endif
