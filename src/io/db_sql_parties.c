/* db_sql_parties.c - the parties of the system over db_sql: ses (with the deny-list
 * version every state change bumps), readers, services with their price tables. Refusals
 * (unknown, exists, invalid) are found before anything is written. */
#include <string.h>

#include "lib/err.h"
#include "db_sql.h"

/* ---------------------------------------------------------------- ses --- */

int se_cols(struct db_sql *s, unsigned first, struct db_se *se)
{
	int rc = 0;

	se->state = (uint8_t)col_int(s, first);
	se->has_replaced_by = 0;
	if (!col_null(s, first + 1)) {
		rc = col_fixed(s, first + 1, se->replaced_by, DB_SERIAL_LEN);
		se->has_replaced_by = 1;
	}
	se->created = col_int(s, first + 2);
	se->changed = col_int(s, first + 3);
	se->pending = (uint8_t)col_int(s, first + 4);
	se->pending_since = col_int(s, first + 5);
	return rc;
}

static int se_read(struct db_sql *s, const uint8_t serial[DB_SERIAL_LEN], struct db_se *out)
{
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN) };
	struct db_se se;
	int rc;

	memset(&se, 0, sizeof(se));
	rc = sql_row(s, ST_SE_GET, p, 1);
	if (rc != 0)
		return rc;
	memcpy(se.serial, serial, DB_SERIAL_LEN);
	rc = se_cols(s, 0, &se);
	sql_done(s);
	if (rc == 0)
		*out = se;
	return rc;
}

static int se_state_ok(uint8_t state)
{
	return state == DB_SE_ACTIVE || state == DB_SE_LOCKED || state == DB_SE_LOST;
}

int dbs_se_add(struct db *db, const struct db_se *se)
{
	struct db_sql *s = db_sql_of(db);
	struct dv p[] = { DV_B(se->serial, DB_SERIAL_LEN), DV_I(se->state), DV_NUL,
			  DV_I(se->created) };
	int rc;

	if (!se_state_ok(se->state))
		return TB_E_INVAL;
	if (se->has_replaced_by) {
		p[2].type = DV_BLOB;
		p[2].p = se->replaced_by;
		p[2].n = DB_SERIAL_LEN;
	}
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_SE_ADD, p, 4);
	if (rc == 0)
		sql_done(s);
	else if (rc == TB_E_DB_NOT_FOUND)
		rc = TB_E_DB_EXISTS;
	if (rc == 0 && se->state != DB_SE_ACTIVE)
		rc = sql_exec(s, ST_DENY_BUMP, NULL, 0, NULL);
	return sql_leave(s, rc);
}

int dbs_se_get(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct db_se *out)
{
	struct db_sql *s = db_sql_of(db);
	int rc = sql_enter(s);

	if (rc != 0)
		return rc;
	return sql_leave(s, se_read(s, serial, out));
}

int dbs_se_set_state(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint8_t state,
		     const uint8_t *replaced_by, int64_t now)
{
	struct db_sql *s = db_sql_of(db);
	struct dv p[] = { DV_B(serial, DB_SERIAL_LEN), DV_I(state), DV_NUL, DV_I(now) };
	struct db_se old;
	int rc;

	if (!se_state_ok(state))
		return TB_E_INVAL;
	if (replaced_by != NULL) {
		p[2].type = DV_BLOB;
		p[2].p = replaced_by;
		p[2].n = DB_SERIAL_LEN;
	}
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = se_read(s, serial, &old);
	if (rc == 0)
		rc = sql_exec(s, ST_SE_SET, p, 4, NULL);
	if (rc == 0 && old.state != state)
		rc = sql_exec(s, ST_DENY_BUMP, NULL, 0, NULL);
	return sql_leave(s, rc);
}

int dbs_deny_list(struct db *db, const uint8_t *after, uint8_t (*out)[DB_SERIAL_LEN],
		  size_t cap, size_t *n, uint64_t *version)
{
	static const uint8_t empty[1] = { 0 };
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(after != NULL ? after : empty, after != NULL ? DB_SERIAL_LEN : 0),
				DV_I(cap) };
	size_t got = 0;
	uint64_t v = 0;
	int rc;

	if (cap > INT32_MAX || (cap > 0 && out == NULL))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_DENY_VERSION, NULL, 0);
	if (rc == 0) {
		v = (uint64_t)col_int(s, 0);
		sql_done(s);
		rc = sql_run(s, ST_DENY_LIST, p, 2);
	}
	while (rc == 0 && got < cap && (rc = sql_next(s)) == 1)
		rc = col_fixed(s, 0, out[got++], DB_SERIAL_LEN);
	sql_done(s); /* closed on every path (done twice is harmless) */
	if (rc == 0) {
		*n = got;
		*version = v;
	}
	return sql_leave(s, rc);
}

/* ------------------------------------------------------------ readers --- */

static int reader_ok(const struct db_reader *r)
{
	return r->id != 0 && (r->state == DB_READER_ACTIVE || r->state == DB_READER_REVOKED);
}

/* Insert and update take the same five values; only the statement and what "no row"
 * means differ (insert: the id exists; update: the reader is unknown). */
static int reader_write(struct db *db, const struct db_reader *r, enum db_stmt stmt, int no_row)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_I(r->id), DV_I(r->key_version), DV_I(r->reader_class),
				DV_I(r->state), DV_I(r->last_contact) };
	int rc;

	if (!reader_ok(r))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, stmt, p, 5);
	if (rc == 0)
		sql_done(s);
	else if (rc == TB_E_DB_NOT_FOUND)
		rc = no_row;
	return sql_leave(s, rc);
}

int dbs_reader_add(struct db *db, const struct db_reader *r)
{
	return reader_write(db, r, ST_READER_ADD, TB_E_DB_EXISTS);
}

int dbs_reader_get(struct db *db, uint32_t id, struct db_reader *out)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_I(id) };
	int rc = sql_enter(s);

	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_READER_GET, p, 1);
	if (rc == 0) {
		memset(out, 0, sizeof(*out));
		out->id = id;
		out->key_version = (uint32_t)col_int(s, 0);
		out->reader_class = (uint32_t)col_int(s, 1);
		out->state = (uint8_t)col_int(s, 2);
		out->last_contact = col_int(s, 3);
		sql_done(s);
	}
	return sql_leave(s, rc);
}

int dbs_reader_update(struct db *db, const struct db_reader *r)
{
	return reader_write(db, r, ST_READER_UPD, TB_E_DB_NOT_FOUND);
}

/* ----------------------------------------------------------- services --- */

/* Price items strictly ascending: no duplicates reach the primary key. */
static int service_ok(const struct db_service *sv)
{
	if (sv->id == 0 || sv->kind < DB_SVC_PAUTH || sv->kind > DB_SVC_TICKET ||
	    !str_ok(sv->name, DB_NAME_MAX, 1) || sv->n_prices > DB_PRICES_MAX)
		return 0;
	for (size_t i = 1; i < sv->n_prices; i++)
		if (sv->prices[i].item <= sv->prices[i - 1].item)
			return 0;
	return 1;
}

int dbs_service_add(struct db *db, const struct db_service *sv)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_I(sv->id), DV_T(sv->name), DV_I(sv->kind) };
	int rc;

	if (!service_ok(sv))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_SVC_ADD, p, 3);
	if (rc == 0)
		sql_done(s);
	else if (rc == TB_E_DB_NOT_FOUND)
		rc = TB_E_DB_EXISTS;
	for (size_t i = 0; rc == 0 && i < sv->n_prices; i++) {
		const struct dv q[] = { DV_I(sv->id), DV_I(sv->prices[i].item),
					DV_I(sv->prices[i].price) };

		rc = sql_exec(s, ST_PRICE_ADD, q, 3, NULL);
	}
	return sql_leave(s, rc);
}

/* One query: the service's row joined with its prices (none: one row of NULLs). */
static int service_read(struct db_sql *s, uint32_t id, struct db_service *sv)
{
	const struct dv p[] = { DV_I(id) };
	int rc;

	memset(sv, 0, sizeof(*sv));
	sv->id = id;
	rc = sql_row(s, ST_SVC_GET, p, 1);
	if (rc != 0)
		return rc;
	rc = col_text(s, 0, sv->name, sizeof(sv->name));
	sv->kind = (uint8_t)col_int(s, 1);
	for (;;) {
		if (rc == 0 && !col_null(s, 2)) {
			if (sv->n_prices == DB_PRICES_MAX) {
				rc = TB_E_NOSPACE;
			} else {
				sv->prices[sv->n_prices].item = (uint32_t)col_int(s, 2);
				sv->prices[sv->n_prices].price = (uint32_t)col_int(s, 3);
				sv->n_prices++;
			}
		}
		if (rc != 0)
			break;
		rc = sql_next(s);
		if (rc < 0)
			return rc; /* closed by sql_next */
		if (rc == 0)
			break;
		rc = 0;
	}
	sql_done(s);
	return rc;
}

int dbs_service_get(struct db *db, uint32_t id, struct db_service *out)
{
	struct db_sql *s = db_sql_of(db);
	struct db_service sv;
	int rc = sql_enter(s);

	if (rc != 0)
		return rc;
	rc = service_read(s, id, &sv);
	if (rc == 0)
		*out = sv;
	return sql_leave(s, rc);
}
