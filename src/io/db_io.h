/* db_io.h - opening the server's storage (the adapters behind server/db.h), the
 * embedded schema migrations, and the ledger benchmark. docs/storage.md.
 *
 * URLs: "postgresql://..." or "postgres://..." -> PostgreSQL through libpq (the URL is
 * libpq's connection string; synchronous_commit is forced on); "sqlite:PATH" or a plain
 * PATH -> SQLite in WAL mode with synchronous=FULL and foreign keys on (the file is
 * created when missing). Opening applies the migrations the database lacks, in order,
 * in one transaction; a database whose schema is newer than this program is refused
 * (TB_E_DB_SCHEMA). One struct db is used by one thread at a time. */
#ifndef TB_IO_DB_IO_H
#define TB_IO_DB_IO_H

#include <stddef.h>
#include <stdint.h>

#include "server/db.h"

/* 0 with *out open, TB_E_DB_URL, TB_E_DB (cannot open or connect: db_open_error()),
 * TB_E_DB_SCHEMA, TB_E_NOMEM. */
int db_open(const char *url, struct db **out);
/* Rolls back an open batch and closes. NULL is fine. */
void db_close(struct db *db);
/* The database's text for the last failure, for logs (never personal data of ours,
 * but it may quote keys). */
const char *db_errmsg(struct db *db);
/* The text for the last failed db_open() of this thread. */
const char *db_open_error(void);
/* "sqlite" or "postgresql". */
const char *db_backend(struct db *db);

/* Tests and tools: runs SQL text as one operation (inside the current request, or as
 * a transaction of its own outside a batch). Errors spoil the request like any other. */
int db_exec_raw(struct db *db, const char *sql);

/* The embedded migrations (db/migrations/<backend>/NNNN_name.sql, byte for byte). */
struct db_migration {
	unsigned version;
	const char *name;   /* "0001_init" */
	const char *sql;
};
/* backend: "sqlite" or "postgresql"; TB_E_INVAL for anything else. */
int db_migrations(const char *backend, const struct db_migration **out, size_t *count);

/* Benchmark: durable e-money payments through the core rules (ledger_pay) from `payers`
 * concurrent payers, `seconds` each way (in three alternating rounds): with group
 * commit (each loop turn commits every waiting payer's payment in one batch, as the
 * server does) -> *ours_per_s, and with one transaction per payment -> *ref_per_s.
 * Each payment is one transfer of two postings, counted once durable. Adds its own
 * ses, reader, service and accounts to the database (use a scratch one). */
int db_bench_ledger(const char *url, int payers, double seconds, double *ours_per_s,
		    double *ref_per_s);

#endif
