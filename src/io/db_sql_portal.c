/* db_sql_portal.c - the storage operations the portal adds (server/db.h, "the portal"):
 * lists of ses and readers for the operator's view, the se's pending lock/unlock mark,
 * deletion of a personal-auth record, and the hashed unlock codes. As everywhere in
 * db_sql*.c: refusals are found before anything is written, outputs only on success. */
#include <string.h>

#include "lib/ct.h"
#include "lib/err.h"
#include "db_sql.h"

int dbs_se_list(struct db *db, const uint8_t *after, struct db_se *out, size_t cap, size_t *n)
{
	static const uint8_t empty[1] = { 0 };
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(after != NULL ? after : empty, after != NULL ? DB_SERIAL_LEN : 0),
				DV_I(cap) };
	size_t got = 0;
	int rc;

	if (cap > INT32_MAX || (cap > 0 && out == NULL))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_run(s, ST_SE_LIST, p, 2);
	while (rc == 0 && got < cap && (rc = sql_next(s)) == 1) {
		memset(&out[got], 0, sizeof(out[got]));
		rc = col_fixed(s, 0, out[got].serial, DB_SERIAL_LEN);
		if (rc == 0)
			rc = se_cols(s, 1, &out[got]);
		got++;
	}
	sql_done(s);
	if (rc == 0)
		*n = got;
	return sql_leave(s, rc);
}

int dbs_reader_list(struct db *db, uint32_t after, struct db_reader *out, size_t cap, size_t *n)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_I(after), DV_I(cap) };
	size_t got = 0;
	int rc;

	if (cap > INT32_MAX || (cap > 0 && out == NULL))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_run(s, ST_READER_LIST, p, 2);
	while (rc == 0 && got < cap && (rc = sql_next(s)) == 1) {
		struct db_reader *r = &out[got++];

		memset(r, 0, sizeof(*r));
		r->id = (uint32_t)col_int(s, 0);
		r->key_version = (uint32_t)col_int(s, 1);
		r->reader_class = (uint32_t)col_int(s, 2);
		r->state = (uint8_t)col_int(s, 3);
		r->last_contact = col_int(s, 4);
		rc = 0;
	}
	sql_done(s);
	if (rc == 0)
		*n = got;
	return sql_leave(s, rc);
}

int dbs_se_set_pending(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint8_t pending,
		       int64_t now)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN), DV_I(pending),
				DV_I(pending == DB_SE_PENDING_NONE ? 0 : now) };
	int rc;

	if (pending > DB_SE_UNLOCK_PENDING)
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_SE_PENDING, p, 3);
	if (rc == 0)
		sql_done(s);
	return sql_leave(s, rc);
}

int dbs_pauth_delete(struct db *db, const uint8_t serial[DB_SERIAL_LEN])
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN) };
	int rc = sql_enter(s);

	if (rc != 0)
		return rc;
	/* The attributes first (they reference the record). A se without a record has no
	 * attributes either (the foreign key), so TB_E_DB_NOT_FOUND has deleted nothing. */
	rc = sql_exec(s, ST_PATTR_DEL, p, 1, NULL);
	if (rc == 0)
		rc = sql_row(s, ST_PAUTH_DEL, p, 1);
	if (rc == 0)
		sql_done(s);
	return sql_leave(s, rc);
}

int dbs_code_put(struct db *db, const uint8_t serial[DB_SERIAL_LEN],
		 const struct db_unlock_code *c)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN), DV_B(c->salt, DB_CODE_SALT_LEN),
				DV_B(c->hash, DB_CODE_HASH_LEN), DV_I(c->expires), DV_I(c->tries) };
	int rc = sql_enter(s);

	if (rc != 0)
		return rc;
	rc = sql_se_known(s, serial);
	if (rc == 0)
		rc = sql_exec(s, ST_CODE_PUT, p, 5, NULL);
	return sql_leave(s, rc);
}

int dbs_code_get(struct db *db, const uint8_t serial[DB_SERIAL_LEN], struct db_unlock_code *out)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN) };
	struct db_unlock_code c;
	int rc = sql_enter(s);

	if (rc != 0)
		return rc;
	memset(&c, 0, sizeof(c));
	rc = sql_row(s, ST_CODE_GET, p, 1);
	if (rc == 0) {
		rc = col_fixed(s, 0, c.salt, DB_CODE_SALT_LEN);
		if (rc == 0)
			rc = col_fixed(s, 1, c.hash, DB_CODE_HASH_LEN);
		c.expires = col_int(s, 2);
		c.tries = (uint32_t)col_int(s, 3);
		sql_done(s);
	}
	if (rc == 0)
		*out = c;
	ct_wipe(&c, sizeof(c));
	return sql_leave(s, rc);
}

int dbs_code_del(struct db *db, const uint8_t serial[DB_SERIAL_LEN])
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN) };
	int rc = sql_enter(s);

	if (rc != 0)
		return rc;
	rc = sql_exec(s, ST_CODE_DEL, p, 1, NULL);
	return sql_leave(s, rc);
}
