/* db_sql.c - the storage of server/db.h, once for both back ends: the SQL text of every
 * operation, the batch/request/savepoint state machine, the migration runner, the
 * vtable. An operation either completes or, on a database error, spoils its request
 * (rolled back at db_req_end); nothing is half-written after a return. */
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "db_io.h"
#include "db_sql.h"

const char *const db_sql_text[ST_COUNT] = {
	[ST_SE_ADD] = "INSERT INTO ses (serial, state, replaced_by, created, changed) "
		      "VALUES ($1, $2, $3, $4, $4) ON CONFLICT (serial) DO NOTHING RETURNING state",
	[ST_SE_GET] = "SELECT state, replaced_by, created, changed, pending, pending_since "
		      "FROM ses WHERE serial = $1",
	[ST_SE_SET] = "UPDATE ses SET state = $2, replaced_by = $3, changed = $4 WHERE serial = $1",
	[ST_DENY_LIST] = "SELECT serial FROM ses WHERE state <> 1 AND serial > $1 "
			 "ORDER BY serial LIMIT $2",
	[ST_DENY_VERSION] = "SELECT value FROM meta WHERE name = 'deny_version'",
	[ST_DENY_BUMP] = "UPDATE meta SET value = value + 1 WHERE name = 'deny_version'",
	[ST_READER_ADD] = "INSERT INTO readers (id, key_version, class, state, last_contact) "
			  "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING RETURNING id",
	[ST_READER_GET] = "SELECT key_version, class, state, last_contact FROM readers "
			  "WHERE id = $1",
	[ST_READER_UPD] = "UPDATE readers SET key_version = $2, class = $3, state = $4, "
			  "last_contact = $5 WHERE id = $1 RETURNING id",
	[ST_SVC_ADD] = "INSERT INTO services (id, name, kind) VALUES ($1, $2, $3) "
		       "ON CONFLICT (id) DO NOTHING RETURNING id",
	[ST_SVC_GET] = "SELECT s.name, s.kind, p.item, p.price FROM services s LEFT JOIN "
		       "service_prices p ON p.service = s.id WHERE s.id = $1 ORDER BY p.item",
	[ST_PRICE_ADD] = "INSERT INTO service_prices (service, item, price) VALUES ($1, $2, $3)",
	[ST_ACCT_ADD] = "INSERT INTO accounts (name, kind) VALUES ($1, $2) "
			"ON CONFLICT (name) DO NOTHING RETURNING id",
	[ST_ACCT_GET] = "SELECT id, kind, balance FROM accounts WHERE name = $1",
	[ST_XFER_ADD] = "INSERT INTO transfers (key, kind, amount, se, reader, service, rec_time, "
			"refund_of, result, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
			"ON CONFLICT (key) DO NOTHING RETURNING id",
	[ST_XFER_GET] = "SELECT id, kind, amount, se, reader, service, rec_time, refund_of, "
			"result, created FROM transfers WHERE key = $1",
	[ST_POST2_ADD] = "INSERT INTO postings (transfer_id, leg, account, amount) "
			 "VALUES ($1, 1, $2, $3), ($1, 2, $4, $5)",
	[ST_POST_ADD] = "INSERT INTO postings (transfer_id, leg, account, amount) "
			"VALUES ($1, $2, $3, $4)",
	[ST_SEAL_ADD] = "INSERT INTO transfer_seals (transfer_id) VALUES ($1)",
	[ST_LEGS_GET] = "SELECT account, amount FROM postings WHERE transfer_id = $1 ORDER BY leg",
	[ST_REFUNDED] = "SELECT CAST(coalesce(sum(amount), 0) AS BIGINT) FROM transfers "
			"WHERE refund_of = $1",
	[ST_AUDIT] = "SELECT (SELECT count(*) FROM transfers), (SELECT count(*) FROM postings), "
		     "(SELECT CAST(coalesce(sum(amount), 0) AS BIGINT) FROM postings), "
		     "(SELECT count(*) FROM (SELECT transfer_id FROM postings GROUP BY transfer_id "
		     "HAVING sum(amount) <> 0) AS u), "
		     "(SELECT count(*) FROM transfers t WHERE (SELECT count(*) FROM postings p "
		     "WHERE p.transfer_id = t.id) < 2), "
		     "(SELECT count(*) FROM accounts a LEFT JOIN (SELECT account, sum(amount) AS s "
		     "FROM postings GROUP BY account) AS p ON p.account = a.id "
		     "WHERE a.balance <> coalesce(p.s, 0)), "
		     "(SELECT count(*) FROM accounts WHERE kind <> 3 AND balance < 0)",
	[ST_TICKET_ADD] = "INSERT INTO tickets (key, se, service, valid_from, valid_until, "
			  "uses_left, state) VALUES ($1, $2, $3, $4, $5, $6, $7) "
			  "ON CONFLICT (key) DO NOTHING RETURNING id",
	[ST_TICKET_BY_KEY] = "SELECT id, se, service, valid_from, valid_until, uses_left, state "
			     "FROM tickets WHERE key = $1",
	[ST_TICKET_GET] = "SELECT id, se, service, valid_from, valid_until, uses_left, state "
			  "FROM tickets WHERE id = $1",
	[ST_TICKET_UPD] = "UPDATE tickets SET uses_left = $2, state = $3 WHERE id = $1 "
			  "RETURNING id",
	[ST_TICKETS_SE] = "SELECT id, se, service, valid_from, valid_until, uses_left, state "
			  "FROM tickets WHERE se = $1 AND id > $2 ORDER BY id LIMIT $3",
	[ST_ORDER_ADD] = "INSERT INTO orders (key, se, service, total, state, created) "
			 "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING RETURNING id",
	[ST_ORDER_BY_KEY] = "SELECT id, se, service, total, state, created FROM orders "
			    "WHERE key = $1",
	[ST_ORDER_GET] = "SELECT id, se, service, total, state, created FROM orders WHERE id = $1",
	[ST_ORDER_SET] = "UPDATE orders SET state = $3 WHERE id = $1 AND state = $2 RETURNING id",
	[ST_ITEM_ADD] = "INSERT INTO order_items (order_id, line, item, qty, price) "
			"VALUES ($1, $2, $3, $4, $5)",
	[ST_ITEMS_GET] = "SELECT item, qty, price FROM order_items WHERE order_id = $1 "
			 "ORDER BY line",
	[ST_PAUTH_PUT] = "INSERT INTO pauth (se, identifier) VALUES ($1, $2) "
			 "ON CONFLICT (se) DO UPDATE SET identifier = excluded.identifier",
	[ST_PAUTH_GET] = "SELECT identifier FROM pauth WHERE se = $1",
	[ST_PATTR_DEL] = "DELETE FROM pauth_attrs WHERE se = $1",
	[ST_PATTR_ADD] = "INSERT INTO pauth_attrs (se, name, value) VALUES ($1, $2, $3)",
	[ST_PATTR_GET] = "SELECT name, value FROM pauth_attrs WHERE se = $1",
	[ST_VIS_DEL] = "DELETE FROM pauth_visible WHERE class = $1",
	[ST_VIS_ADD] = "INSERT INTO pauth_visible (class, name) VALUES ($1, $2)",
	[ST_VIS_GET] = "SELECT name FROM pauth_visible WHERE class = $1",
	[ST_HIST_ADD] = "INSERT INTO history (time, kind, se, reader, service, amount, ref, key) "
			"VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
			"ON CONFLICT (key) DO NOTHING RETURNING id",
	[ST_HIST_FIND] = "SELECT id, time, kind, se, reader, service, amount, ref, key "
			 "FROM history WHERE key = $1",
	[ST_HIST_SE] = "SELECT id, time, kind, se, reader, service, amount, ref, key "
		       "FROM history WHERE se = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
	[ST_HIST_READER] = "SELECT id, time, kind, se, reader, service, amount, ref, key "
			   "FROM history WHERE reader = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
	[ST_BLOB_GET] = "SELECT version, data FROM vault WHERE se = $1 AND slot = $2",
	[ST_BLOB_PUT] = "INSERT INTO vault (se, slot, version, data, updated) "
			"VALUES ($1, $2, $3, $4, $5) ON CONFLICT (se, slot) DO UPDATE SET "
			"version = excluded.version, data = excluded.data, updated = excluded.updated",
	[ST_BLOB_SLOTS] = "SELECT slot FROM vault WHERE se = $1 ORDER BY slot LIMIT $2",
	[ST_SE_LIST] = "SELECT serial, state, replaced_by, created, changed, pending, "
		       "pending_since FROM ses WHERE serial > $1 ORDER BY serial LIMIT $2",
	[ST_READER_LIST] = "SELECT id, key_version, class, state, last_contact FROM readers "
			   "WHERE id > $1 ORDER BY id LIMIT $2",
	[ST_SE_PENDING] = "UPDATE ses SET pending = $2, pending_since = $3 WHERE serial = $1 "
			  "RETURNING state",
	[ST_PAUTH_DEL] = "DELETE FROM pauth WHERE se = $1 RETURNING se",
	[ST_CODE_PUT] = "INSERT INTO unlock_codes (se, salt, hash, expires, tries) "
			"VALUES ($1, $2, $3, $4, $5) ON CONFLICT (se) DO UPDATE SET "
			"salt = excluded.salt, hash = excluded.hash, expires = excluded.expires, "
			"tries = excluded.tries",
	[ST_CODE_GET] = "SELECT salt, hash, expires, tries FROM unlock_codes WHERE se = $1",
	[ST_CODE_DEL] = "DELETE FROM unlock_codes WHERE se = $1",
	[ST_MIG_VERSION] = "SELECT CAST(coalesce(max(version), 0) AS BIGINT) FROM schema_version",
	[ST_MIG_ADD] = "INSERT INTO schema_version (version, name, applied) VALUES ($1, $2, $3)",
};

/* ------------------------------------------------------------ helpers --- */

int sql_fail(struct db_sql *s, int rc)
{
	if (s->state == DB_SQL_REQ && s->spoiled == 0)
		s->spoiled = rc;
	if (s->state != DB_SQL_IDLE && s->batch_failed == 0 && s->drv->tx_lost(s))
		s->batch_failed = rc;
	return rc;
}

int sql_enter(struct db_sql *s)
{
	int rc;

	switch (s->state) {
	case DB_SQL_IDLE:
		rc = s->drv->begin(s);
		if (rc != 0)
			return rc;
		s->auto_tx = 1;
		return 0;
	case DB_SQL_BATCH:
		return TB_E_DB_STATE;
	case DB_SQL_REQ:
		if (s->batch_failed != 0)
			return s->batch_failed;
		return s->spoiled;
	}
	return TB_E_INTERNAL;
}

int sql_leave(struct db_sql *s, int rc)
{
	if (!s->auto_tx)
		return rc;
	s->auto_tx = 0;
	if (rc == 0)
		return s->drv->commit(s);
	s->drv->rollback(s);
	return rc;
}

int sql_run(struct db_sql *s, enum db_stmt id, const struct dv *p, size_t np)
{
	int rc = s->drv->run(s, (unsigned)id, db_sql_text[id], p, np);

	return rc == 0 ? 0 : sql_fail(s, rc);
}

int sql_next(struct db_sql *s)
{
	int rc = s->drv->next(s);

	if (rc < 0) {
		s->drv->done(s);
		return sql_fail(s, rc);
	}
	return rc;
}

void sql_done(struct db_sql *s)
{
	s->drv->done(s);
}

int sql_row(struct db_sql *s, enum db_stmt id, const struct dv *p, size_t np)
{
	int rc = sql_run(s, id, p, np);

	if (rc != 0)
		return rc;
	rc = sql_next(s);
	if (rc < 0)
		return rc;
	if (rc == 0) {
		sql_done(s);
		return TB_E_DB_NOT_FOUND;
	}
	return 0;
}

int sql_exec(struct db_sql *s, enum db_stmt id, const struct dv *p, size_t np, size_t *rows)
{
	size_t count = 0;
	int rc = sql_run(s, id, p, np);

	if (rc != 0)
		return rc;
	while ((rc = sql_next(s)) == 1)
		count++;
	if (rc < 0)
		return rc;
	sql_done(s);
	if (rows != NULL)
		*rows = count;
	return 0;
}

int64_t col_int(struct db_sql *s, unsigned i)
{
	struct dv v;

	s->drv->col(s, i, &v);
	return v.type == DV_INT ? v.i : 0;
}

int col_null(struct db_sql *s, unsigned i)
{
	struct dv v;

	s->drv->col(s, i, &v);
	return v.type == DV_NULL;
}

int col_fixed(struct db_sql *s, unsigned i, uint8_t *out, size_t n)
{
	struct dv v;

	s->drv->col(s, i, &v);
	if (v.type != DV_BLOB || v.n != n) {
		snprintf(s->errmsg, sizeof(s->errmsg), "column %u: expected a %zu-byte blob", i, n);
		return TB_E_DB;
	}
	memcpy(out, v.p, n);
	return 0;
}

int col_blob(struct db_sql *s, unsigned i, uint8_t *out, size_t cap, size_t *n)
{
	struct dv v;

	s->drv->col(s, i, &v);
	if (v.type == DV_NULL) {
		*n = 0;
		return 0;
	}
	if (v.type != DV_BLOB || v.n > cap) {
		snprintf(s->errmsg, sizeof(s->errmsg), "column %u: blob missing or too long", i);
		return TB_E_DB;
	}
	if (v.n > 0)
		memcpy(out, v.p, v.n);
	*n = v.n;
	return 0;
}

int col_text(struct db_sql *s, unsigned i, char *out, size_t cap)
{
	struct dv v;

	s->drv->col(s, i, &v);
	if (v.type == DV_NULL) {
		out[0] = '\0';
		return 0;
	}
	if (v.type != DV_TEXT || v.n >= cap || memchr(v.p, 0, v.n) != NULL) {
		snprintf(s->errmsg, sizeof(s->errmsg), "column %u: text missing or too long", i);
		return TB_E_DB;
	}
	memcpy(out, v.p, v.n);
	out[v.n] = '\0';
	return 0;
}

int sql_se_known(struct db_sql *s, const uint8_t serial[DB_SERIAL_LEN])
{
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN) };
	int rc = sql_row(s, ST_SE_GET, p, 1);

	if (rc == 0)
		sql_done(s);
	return rc;
}

int str_ok(const char *str, size_t cap, int nonempty)
{
	size_t n;

	if (str == NULL)
		return 0;
	n = strnlen(str, cap);
	return n < cap && (!nonempty || n > 0);
}

/* -------------------------------------------------- batches, requests --- */

static int op_batch_begin(struct db *db)
{
	struct db_sql *s = db_sql_of(db);
	int rc;

	if (s->state != DB_SQL_IDLE)
		return TB_E_DB_STATE;
	rc = s->drv->begin(s);
	if (rc != 0)
		return rc;
	s->state = DB_SQL_BATCH;
	s->batch_failed = 0;
	return 0;
}

static int op_batch_commit(struct db *db)
{
	struct db_sql *s = db_sql_of(db);
	int rc;

	if (s->state != DB_SQL_BATCH)
		return TB_E_DB_STATE;
	s->state = DB_SQL_IDLE;
	if (s->batch_failed != 0) {
		s->drv->rollback(s);
		return s->batch_failed;
	}
	rc = s->drv->commit(s);
	return rc;
}

static void op_batch_abort(struct db *db)
{
	struct db_sql *s = db_sql_of(db);

	if (s->state == DB_SQL_IDLE)
		return;
	s->drv->rollback(s);
	s->state = DB_SQL_IDLE;
	s->spoiled = 0;
}

static int op_req_begin(struct db *db)
{
	struct db_sql *s = db_sql_of(db);
	int rc;

	if (s->state != DB_SQL_BATCH)
		return TB_E_DB_STATE;
	if (s->batch_failed != 0)
		return s->batch_failed;
	rc = s->drv->savepoint(s);
	if (rc != 0)
		return sql_fail(s, rc);
	s->state = DB_SQL_REQ;
	s->spoiled = 0;
	return 0;
}

static int op_req_end(struct db *db, int ok)
{
	struct db_sql *s = db_sql_of(db);
	int rc = s->spoiled;

	if (s->state != DB_SQL_REQ)
		return TB_E_DB_STATE;
	s->state = DB_SQL_BATCH;
	s->spoiled = 0;
	if (s->batch_failed != 0)
		return s->batch_failed;
	if (ok && rc == 0) {
		rc = s->drv->release(s);
		if (rc == 0)
			return 0;
		if (s->drv->tx_lost(s)) {
			s->batch_failed = rc;
			return rc;
		}
	}
	s->drv->rollback_to(s);
	if (s->drv->tx_lost(s) && s->batch_failed == 0)
		s->batch_failed = TB_E_DB;
	return ok ? rc : 0;
}

/* -------------------------------------------------------- the vtable --- */

static const struct db_ops db_sql_ops = {
	.batch_begin = op_batch_begin,
	.batch_commit = op_batch_commit,
	.batch_abort = op_batch_abort,
	.req_begin = op_req_begin,
	.req_end = op_req_end,
	.se_add = dbs_se_add,
	.se_get = dbs_se_get,
	.se_set_state = dbs_se_set_state,
	.deny_list = dbs_deny_list,
	.reader_add = dbs_reader_add,
	.reader_get = dbs_reader_get,
	.reader_update = dbs_reader_update,
	.service_add = dbs_service_add,
	.service_get = dbs_service_get,
	.account_open = dbs_account_open,
	.account_get = dbs_account_get,
	.transfer_apply = dbs_transfer_apply,
	.transfer_get = dbs_transfer_get,
	.refunded_sum = dbs_refunded_sum,
	.ledger_audit = dbs_ledger_audit,
	.ticket_issue = dbs_ticket_issue,
	.ticket_get = dbs_ticket_get,
	.ticket_update = dbs_ticket_update,
	.tickets_of_se = dbs_tickets_of_se,
	.order_create = dbs_order_create,
	.order_get = dbs_order_get,
	.order_set_state = dbs_order_set_state,
	.pauth_put = dbs_pauth_put,
	.pauth_get = dbs_pauth_get,
	.pauth_visible_set = dbs_pauth_visible_set,
	.pauth_visible_get = dbs_pauth_visible_get,
	.history_add = dbs_history_add,
	.history_find = dbs_history_find,
	.history_by_se = dbs_history_by_se,
	.history_by_reader = dbs_history_by_reader,
	.blob_put = dbs_blob_put,
	.blob_get = dbs_blob_get,
	.blob_slots = dbs_blob_slots,
	.se_list = dbs_se_list,
	.reader_list = dbs_reader_list,
	.se_set_pending = dbs_se_set_pending,
	.pauth_delete = dbs_pauth_delete,
	.code_put = dbs_code_put,
	.code_get = dbs_code_get,
	.code_del = dbs_code_del,
};

/* --------------------------------------------------------- migrations --- */

static int migrate(struct db_sql *s, const struct db_migration *m, size_t count)
{
	int64_t have = 0;
	int rc;

	rc = s->drv->migrate_lock(s);
	if (rc == 0)
		rc = s->drv->exec(s, "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT "
				     "PRIMARY KEY, name TEXT NOT NULL, applied BIGINT NOT NULL)");
	if (rc == 0)
		rc = sql_row(s, ST_MIG_VERSION, NULL, 0);
	if (rc != 0)
		return rc;
	have = col_int(s, 0);
	sql_done(s);
	if (have > (int64_t)(count > 0 ? m[count - 1].version : 0)) {
		snprintf(s->errmsg, sizeof(s->errmsg),
			 "schema version %lld is newer than this program knows",
			 (long long)have);
		return TB_E_DB_SCHEMA;
	}
	for (size_t i = 0; i < count; i++) {
		const struct dv p[] = { DV_I(m[i].version), DV_T(m[i].name), DV_I(0) };

		if ((int64_t)m[i].version <= have)
			continue;
		rc = s->drv->exec(s, m[i].sql);
		if (rc == 0)
			rc = sql_exec(s, ST_MIG_ADD, p, 3, NULL);
		if (rc != 0)
			return TB_E_DB_SCHEMA;
	}
	return 0;
}

int db_sql_start(struct db_sql *s, const struct db_drv *drv)
{
	const struct db_migration *m;
	size_t count;
	int rc;

	s->db.ops = &db_sql_ops;
	s->drv = drv;
	s->state = DB_SQL_IDLE;
	rc = db_migrations(drv->name, &m, &count);
	if (rc != 0)
		return rc;
	rc = drv->begin(s);
	if (rc != 0)
		return rc;
	rc = migrate(s, m, count);
	if (rc == 0)
		return drv->commit(s);
	drv->rollback(s);
	return rc;
}

/* ------------------------------------------------- for tests and tools --- */

int db_exec_raw(struct db *db, const char *sql)
{
	struct db_sql *s = db_sql_of(db);
	int rc = sql_enter(s);

	if (rc != 0)
		return rc;
	rc = s->drv->exec(s, sql);
	if (rc != 0)
		rc = sql_fail(s, rc);
	return sql_leave(s, rc);
}

const char *db_errmsg(struct db *db)
{
	return db_sql_of(db)->errmsg;
}

const char *db_backend(struct db *db)
{
	return db_sql_of(db)->drv->name;
}
