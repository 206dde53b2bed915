/* db_sqlite.c - the SQLite driver under db_sql.c: one connection, WAL with
 * synchronous=FULL (a COMMIT that returned is on disk), foreign keys on (the deferred
 * seal of every transfer depends on it), statements prepared once and kept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "lib/err.h"
#include "db_sql.h"

enum fixed_stmt { FX_BEGIN, FX_COMMIT, FX_ROLLBACK, FX_SAVE, FX_RELEASE, FX_ROLLBACK_TO, FX_COUNT };

static const char *const fixed_sql[FX_COUNT] = {
	[FX_BEGIN] = "BEGIN IMMEDIATE",
	[FX_COMMIT] = "COMMIT",
	[FX_ROLLBACK] = "ROLLBACK",
	[FX_SAVE] = "SAVEPOINT req",
	[FX_RELEASE] = "RELEASE req",
	[FX_ROLLBACK_TO] = "ROLLBACK TO req",
};

struct sq {
	struct db_sql s; /* first: the shared part */
	sqlite3 *h;
	sqlite3_stmt *st[ST_COUNT];
	uint8_t pidx[ST_COUNT][DB_SQL_PARAMS_MAX];
	sqlite3_stmt *fx[FX_COUNT];
	sqlite3_stmt *cur;
};

static struct sq *sq_of(struct db_sql *s) { return (struct sq *)s; }

static int sq_err(struct sq *d, int rc)
{
	snprintf(d->s.errmsg, sizeof(d->s.errmsg), "sqlite: %s", sqlite3_errmsg(d->h));
	return (rc & 0xff) == SQLITE_CONSTRAINT ? TB_E_DB_CONSTRAINT : TB_E_DB;
}

static int sq_exec(struct db_sql *s, const char *sql)
{
	struct sq *d = sq_of(s);
	int rc = sqlite3_exec(d->h, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sq_err(d, rc);
}

/* Maps $1..$n to SQLite's parameter indexes once; all of them must be used. */
static int sq_prepare(struct sq *d, unsigned id, const char *sql, size_t np)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v3(d->h, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);

	if (rc != SQLITE_OK)
		return sq_err(d, rc);
	if ((size_t)sqlite3_bind_parameter_count(st) != np)
		goto bad;
	for (size_t k = 0; k < np; k++) {
		char name[8];
		int idx;

		snprintf(name, sizeof(name), "$%zu", k + 1);
		idx = sqlite3_bind_parameter_index(st, name);
		if (idx <= 0)
			goto bad;
		d->pidx[id][k] = (uint8_t)idx;
	}
	d->st[id] = st;
	return 0;
bad:
	snprintf(d->s.errmsg, sizeof(d->s.errmsg), "sqlite: statement %u parameters", id);
	sqlite3_finalize(st);
	return TB_E_INTERNAL;
}

static int sq_bind(sqlite3_stmt *st, int idx, const struct dv *v)
{
	static const uint8_t empty[1] = { 0 };

	switch (v->type) {
	case DV_INT:
		return sqlite3_bind_int64(st, idx, v->i);
	case DV_BLOB: /* a NULL pointer would bind NULL, not an empty blob */
		return sqlite3_bind_blob(st, idx, v->n > 0 ? v->p : empty, (int)v->n, SQLITE_STATIC);
	case DV_TEXT:
		return sqlite3_bind_text(st, idx, v->p, -1, SQLITE_STATIC);
	default:
		return sqlite3_bind_null(st, idx);
	}
}

static int sq_run(struct db_sql *s, unsigned id, const char *sql, const struct dv *p, size_t np)
{
	struct sq *d = sq_of(s);
	int rc;

	if (id >= ST_COUNT || np > DB_SQL_PARAMS_MAX || d->cur != NULL)
		return TB_E_INTERNAL;
	if (d->st[id] == NULL) {
		rc = sq_prepare(d, id, sql, np);
		if (rc != 0)
			return rc;
	}
	for (size_t k = 0; k < np; k++) {
		if (p[k].type == DV_BLOB && p[k].n > INT32_MAX)
			return TB_E_INVAL;
		rc = sq_bind(d->st[id], d->pidx[id][k], &p[k]);
		if (rc != SQLITE_OK) {
			sqlite3_clear_bindings(d->st[id]);
			return sq_err(d, rc);
		}
	}
	d->cur = d->st[id];
	return 0;
}

static void sq_done(struct db_sql *s)
{
	struct sq *d = sq_of(s);

	if (d->cur == NULL)
		return;
	sqlite3_reset(d->cur);
	sqlite3_clear_bindings(d->cur);
	d->cur = NULL;
}

static int sq_next(struct db_sql *s)
{
	struct sq *d = sq_of(s);
	int rc;

	if (d->cur == NULL)
		return TB_E_INTERNAL;
	rc = sqlite3_step(d->cur);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	rc = sq_err(d, rc);
	sq_done(s);
	return rc;
}

static void sq_col(struct db_sql *s, unsigned i, struct dv *out)
{
	struct sq *d = sq_of(s);
	int c = (int)i;

	memset(out, 0, sizeof(*out));
	if (d->cur == NULL || c >= sqlite3_column_count(d->cur))
		return;
	switch (sqlite3_column_type(d->cur, c)) {
	case SQLITE_INTEGER:
		out->type = DV_INT;
		out->i = sqlite3_column_int64(d->cur, c);
		break;
	case SQLITE_BLOB:
		out->type = DV_BLOB;
		out->p = sqlite3_column_blob(d->cur, c);
		out->n = (size_t)sqlite3_column_bytes(d->cur, c);
		break;
	case SQLITE_TEXT:
		out->type = DV_TEXT;
		out->p = sqlite3_column_text(d->cur, c);
		out->n = (size_t)sqlite3_column_bytes(d->cur, c);
		break;
	default:
		break;
	}
}

/* The transaction statements, prepared once and stepped to the end. */
static int sq_fixed(struct sq *d, enum fixed_stmt f)
{
	int rc;

	if (d->fx[f] == NULL) {
		rc = sqlite3_prepare_v3(d->h, fixed_sql[f], -1, SQLITE_PREPARE_PERSISTENT,
					&d->fx[f], NULL);
		if (rc != SQLITE_OK)
			return sq_err(d, rc);
	}
	rc = sqlite3_step(d->fx[f]);
	sqlite3_reset(d->fx[f]);
	return rc == SQLITE_DONE ? 0 : sq_err(d, rc);
}

static int sq_begin(struct db_sql *s) { return sq_fixed(sq_of(s), FX_BEGIN); }

static void sq_rollback(struct db_sql *s)
{
	struct sq *d = sq_of(s);

	sq_done(s);
	if (!sqlite3_get_autocommit(d->h))
		(void)sq_fixed(d, FX_ROLLBACK);
}

static int sq_commit(struct db_sql *s)
{
	struct sq *d = sq_of(s);
	int rc;

	sq_done(s);
	rc = sq_fixed(d, FX_COMMIT);
	if (rc != 0)
		sq_rollback(s);
	return rc;
}

static int sq_savepoint(struct db_sql *s) { return sq_fixed(sq_of(s), FX_SAVE); }

/* SQLite has no deferred triggers: the seal of a transfer is a deferred foreign key,
 * and an unresolved one inside this request means a transfer left unsealed. */
static int sq_release(struct db_sql *s)
{
	struct sq *d = sq_of(s);
	int cur = 0, hi = 0;

	sq_done(s);
	if (sqlite3_db_status(d->h, SQLITE_DBSTATUS_DEFERRED_FKS, &cur, &hi, 0) != SQLITE_OK)
		return sq_err(d, SQLITE_ERROR);
	if (cur != 0) {
		snprintf(s->errmsg, sizeof(s->errmsg),
			 "sqlite: deferred foreign key open: a transfer is not sealed (balanced)");
		return TB_E_DB_CONSTRAINT;
	}
	return sq_fixed(d, FX_RELEASE);
}

static void sq_rollback_to(struct db_sql *s)
{
	struct sq *d = sq_of(s);

	sq_done(s);
	if (sqlite3_get_autocommit(d->h))
		return;
	(void)sq_fixed(d, FX_ROLLBACK_TO);
	(void)sq_fixed(d, FX_RELEASE);
}

static int sq_tx_lost(struct db_sql *s) { return sqlite3_get_autocommit(sq_of(s)->h) != 0; }

/* BEGIN IMMEDIATE already holds the one write lock. */
static int sq_migrate_lock(struct db_sql *s)
{
	(void)s;
	return 0;
}

static void sq_close(struct db_sql *s)
{
	struct sq *d = sq_of(s);

	sq_done(s);
	for (size_t i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(d->st[i]);
	for (size_t i = 0; i < FX_COUNT; i++)
		sqlite3_finalize(d->fx[i]);
	sqlite3_close_v2(d->h);
	free(d);
}

static const struct db_drv sq_drv = {
	.name = "sqlite",
	.has_seals = 1,
	.exec = sq_exec,
	.run = sq_run,
	.next = sq_next,
	.col = sq_col,
	.done = sq_done,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.savepoint = sq_savepoint,
	.release = sq_release,
	.rollback_to = sq_rollback_to,
	.tx_lost = sq_tx_lost,
	.migrate_lock = sq_migrate_lock,
	.close = sq_close,
};

/* WAL must really be on: journal_mode answers the mode it ended up in. */
static int sq_configure(struct sq *d)
{
	sqlite3_stmt *st = NULL;
	int rc, wal = 0;

	sqlite3_extended_result_codes(d->h, 1);
	sqlite3_busy_timeout(d->h, 5000);
	rc = sqlite3_prepare_v2(d->h, "PRAGMA journal_mode=WAL", -1, &st, NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
		const unsigned char *mode = sqlite3_column_text(st, 0);

		wal = mode != NULL && strcmp((const char *)mode, "wal") == 0;
	}
	sqlite3_finalize(st);
	if (!wal) {
		snprintf(d->s.errmsg, sizeof(d->s.errmsg), "sqlite: cannot switch to WAL: %s",
			 sqlite3_errmsg(d->h));
		return TB_E_DB;
	}
	return sq_exec(&d->s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA temp_store=MEMORY;");
}

int db_sqlite_open(const char *path, struct db_sql **out, char *err, size_t errcap)
{
	struct sq *d = calloc(1, sizeof(*d));
	int rc;

	if (d == NULL)
		return TB_E_NOMEM;
	rc = sqlite3_open_v2(path, &d->h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				 SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errcap, "sqlite: cannot open %s: %s", path,
			 d->h != NULL ? sqlite3_errmsg(d->h) : "out of memory");
		sqlite3_close_v2(d->h);
		free(d);
		return TB_E_DB;
	}
	d->s.drv = &sq_drv;
	rc = sq_configure(d);
	if (rc == 0)
		rc = db_sql_start(&d->s, &sq_drv);
	if (rc != 0) {
		snprintf(err, errcap, "%s", d->s.errmsg);
		sq_close(&d->s);
		return rc;
	}
	*out = &d->s;
	return 0;
}
