/* db_sql_ledger.c - the double-entry ledger over db_sql: accounts, transfers with
 * their postings, replay by idempotency key, the audit. The adapter does not check
 * that legs sum to zero: the database's own rule does (docs/storage.md), so the rule
 * is the one that holds against every writer, not a courtesy of this file. */
#include <string.h>

#include "lib/ct.h"
#include "lib/err.h"
#include "db_sql.h"

static int kind_ok(uint8_t kind)
{
	return kind >= DB_ACCT_PURSE && kind <= DB_ACCT_FLOAT;
}

static int account_read(struct db_sql *s, const char *name, struct db_account *out)
{
	const struct dv p[] = { DV_T(name) };
	int rc = sql_row(s, ST_ACCT_GET, p, 1);

	if (rc != 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->id = (uint64_t)col_int(s, 0);
	out->kind = (uint8_t)col_int(s, 1);
	out->balance = col_int(s, 2);
	memcpy(out->name, name, strlen(name) + 1); /* callers checked: fits */
	sql_done(s);
	return 0;
}

int dbs_account_open(struct db *db, uint8_t kind, const char *name, uint64_t *id)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_T(name), DV_I(kind) };
	struct db_account a;
	int rc;

	if (!kind_ok(kind) || !str_ok(name, DB_NAME_MAX, 1))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_ACCT_ADD, p, 2);
	if (rc == 0) {
		*id = (uint64_t)col_int(s, 0);
		sql_done(s);
	} else if (rc == TB_E_DB_NOT_FOUND) {
		rc = account_read(s, name, &a);
		if (rc == 0 && a.kind != kind)
			rc = TB_E_DB_CONFLICT;
		if (rc == 0)
			*id = a.id;
	}
	return sql_leave(s, rc);
}

int dbs_account_get(struct db *db, const char *name, struct db_account *out)
{
	struct db_sql *s = db_sql_of(db);
	int rc;

	if (!str_ok(name, DB_NAME_MAX, 1))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	return sql_leave(s, account_read(s, name, out));
}

/* ---------------------------------------------------------- transfers --- */

static int transfer_ok(const struct db_transfer *t)
{
	if (!str_ok(t->key, DB_KEY_MAX, 1) || t->kind < DB_XFER_TOPUP || t->kind > DB_XFER_MOVE ||
	    t->amount == 0 || t->n_legs < 2 || t->n_legs > DB_LEGS_MAX ||
	    t->refund_of > INT64_MAX)
		return 0;
	for (size_t i = 0; i < t->n_legs; i++)
		if (t->legs[i].amount == 0 || t->legs[i].account == 0 ||
		    t->legs[i].account > INT64_MAX)
			return 0;
	return 1;
}

/* Everything a replay must repeat: all but the key, the result and the server time. */
static int same_content(const struct db_transfer *a, const struct db_transfer *b)
{
	if (a->kind != b->kind || a->amount != b->amount || a->has_se != b->has_se ||
	    a->reader != b->reader || a->service != b->service || a->rec_time != b->rec_time ||
	    a->refund_of != b->refund_of || a->n_legs != b->n_legs)
		return 0;
	if (a->has_se && !ct_eq(a->se, b->se, DB_SERIAL_LEN))
		return 0;
	for (size_t i = 0; i < a->n_legs; i++)
		if (a->legs[i].account != b->legs[i].account || a->legs[i].amount != b->legs[i].amount)
			return 0;
	return 1;
}

static int transfer_read(struct db_sql *s, const char *key, struct db_transfer *t,
			 struct db_applied *ap)
{
	const struct dv p[] = { DV_T(key) };
	int rc = sql_row(s, ST_XFER_GET, p, 1);

	if (rc != 0)
		return rc;
	memset(t, 0, sizeof(*t));
	memset(ap, 0, sizeof(*ap));
	memcpy(t->key, key, strlen(key) + 1);
	ap->id = (uint64_t)col_int(s, 0);
	t->kind = (uint8_t)col_int(s, 1);
	t->amount = (uint32_t)col_int(s, 2);
	if (!col_null(s, 3)) {
		t->has_se = 1;
		rc = col_fixed(s, 3, t->se, DB_SERIAL_LEN);
	}
	t->reader = (uint32_t)col_int(s, 4);
	t->service = (uint32_t)col_int(s, 5);
	t->rec_time = col_int(s, 6);
	t->refund_of = (uint64_t)col_int(s, 7);
	t->result = ap->result = col_int(s, 8);
	t->now = ap->created = col_int(s, 9);
	sql_done(s);
	if (rc == 0) {
		const struct dv q[] = { DV_I(ap->id) };

		rc = sql_run(s, ST_LEGS_GET, q, 1);
	}
	while (rc == 0 && (rc = sql_next(s)) == 1) {
		if (t->n_legs == DB_LEGS_MAX) {
			sql_done(s);
			return TB_E_DB;
		}
		t->legs[t->n_legs].account = (uint64_t)col_int(s, 0);
		t->legs[t->n_legs].amount = col_int(s, 1);
		t->n_legs++;
		rc = 0;
	}
	if (rc == 0)
		sql_done(s);
	ap->replayed = 1;
	return rc;
}

static int postings_add(struct db_sql *s, uint64_t id, const struct db_transfer *t)
{
	int rc = 0;

	if (t->n_legs == 2) {
		const struct dv p[] = { DV_I(id), DV_I(t->legs[0].account), DV_I(t->legs[0].amount),
					DV_I(t->legs[1].account), DV_I(t->legs[1].amount) };

		rc = sql_exec(s, ST_POST2_ADD, p, 5, NULL);
	} else {
		for (size_t i = 0; rc == 0 && i < t->n_legs; i++) {
			const struct dv p[] = { DV_I(id), DV_I(i + 1), DV_I(t->legs[i].account),
						DV_I(t->legs[i].amount) };

			rc = sql_exec(s, ST_POST_ADD, p, 4, NULL);
		}
	}
	if (rc == 0 && s->drv->has_seals) {
		const struct dv p[] = { DV_I(id) };

		rc = sql_exec(s, ST_SEAL_ADD, p, 1, NULL);
	}
	return rc;
}

/* The key is claimed first (INSERT ... ON CONFLICT DO NOTHING): a replay writes
 * nothing and is told apart from a conflict by comparing what is stored. */
static int transfer_apply(struct db_sql *s, const struct db_transfer *t, struct db_applied *out)
{
	struct dv p[] = { DV_T(t->key), DV_I(t->kind), DV_I(t->amount), DV_NUL, DV_I(t->reader),
			  DV_I(t->service), DV_I(t->rec_time), DV_NUL, DV_I(t->result),
			  DV_I(t->now) };
	struct db_transfer old;
	struct db_applied ap;
	uint64_t id;
	int rc;

	if (t->has_se) {
		p[3].type = DV_BLOB;
		p[3].p = t->se;
		p[3].n = DB_SERIAL_LEN;
	}
	if (t->refund_of != 0) {
		p[7].type = DV_INT;
		p[7].i = (int64_t)t->refund_of;
	}
	rc = sql_row(s, ST_XFER_ADD, p, 10);
	if (rc == TB_E_DB_NOT_FOUND) {
		rc = transfer_read(s, t->key, &old, &ap);
		if (rc == 0 && !same_content(t, &old))
			rc = TB_E_DB_CONFLICT;
		if (rc == 0)
			*out = ap;
		return rc;
	}
	if (rc != 0)
		return rc;
	id = (uint64_t)col_int(s, 0);
	sql_done(s);
	rc = postings_add(s, id, t);
	if (rc == 0) {
		out->id = id;
		out->replayed = 0;
		out->result = t->result;
		out->created = t->now;
	}
	return rc;
}

int dbs_transfer_apply(struct db *db, const struct db_transfer *t, struct db_applied *out)
{
	struct db_sql *s = db_sql_of(db);
	int rc;

	if (!transfer_ok(t))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	return sql_leave(s, transfer_apply(s, t, out));
}

int dbs_transfer_get(struct db *db, const char *key, struct db_transfer *t,
		     struct db_applied *out)
{
	struct db_sql *s = db_sql_of(db);
	struct db_transfer tt;
	struct db_applied ap;
	int rc;

	if (!str_ok(key, DB_KEY_MAX, 1))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = transfer_read(s, key, &tt, &ap);
	if (rc == 0) {
		if (t != NULL)
			*t = tt;
		if (out != NULL)
			*out = ap;
	}
	return sql_leave(s, rc);
}

int dbs_refunded_sum(struct db *db, uint64_t id, int64_t *sum)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_I(id) };
	int rc;

	if (id > INT64_MAX)
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_REFUNDED, p, 1);
	if (rc == 0) {
		*sum = col_int(s, 0);
		sql_done(s);
	}
	return sql_leave(s, rc);
}

int dbs_ledger_audit(struct db *db, struct db_audit *out)
{
	struct db_sql *s = db_sql_of(db);
	int rc = sql_enter(s);

	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_AUDIT, NULL, 0);
	if (rc == 0) {
		out->transfers = (uint64_t)col_int(s, 0);
		out->postings = (uint64_t)col_int(s, 1);
		out->postings_sum = col_int(s, 2);
		out->unbalanced_transfers = (uint64_t)col_int(s, 3);
		out->short_transfers = (uint64_t)col_int(s, 4);
		out->balance_mismatches = (uint64_t)col_int(s, 5);
		out->negative_purses = (uint64_t)col_int(s, 6);
		sql_done(s);
	}
	return sql_leave(s, rc);
}
