/* db_sql_vault.c - the se's virtual memory over db_sql: opaque (sam-encrypted) blobs per
 * se and slot whose version only grows, so an old backup can never overwrite a newer
 * one; the same version with the same bytes is a replay. */
#include <string.h>

#include "lib/ct.h"
#include "lib/err.h"
#include "db_sql.h"

int dbs_blob_put(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t slot,
		 uint64_t version, const uint8_t *data, size_t n, int64_t now)
{
	uint8_t old[DB_BLOB_MAX];
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN), DV_I(slot) };
	const struct dv w[] = { DV_B(serial, DB_SERIAL_LEN), DV_I(slot), DV_I(version),
				DV_B(data, n), DV_I(now) };
	uint64_t have;
	size_t oldn = 0;
	int rc;

	if (n > DB_BLOB_MAX || (n > 0 && data == NULL) || version > INT64_MAX)
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_se_known(s, serial);
	if (rc != 0)
		return sql_leave(s, rc);
	rc = sql_row(s, ST_BLOB_GET, p, 2);
	if (rc == 0) {
		have = (uint64_t)col_int(s, 0);
		rc = col_blob(s, 1, old, sizeof(old), &oldn);
		sql_done(s);
		/* The same version again is a replay only with the same bytes. */
		if (rc == 0 && version < have)
			rc = TB_E_DB_STALE;
		else if (rc == 0 && version == have)
			rc = oldn == n && (n == 0 || ct_eq(old, data, n)) ? 1 : TB_E_DB_STALE;
	} else if (rc == TB_E_DB_NOT_FOUND) {
		rc = 0; /* a new slot */
	}
	if (rc == 0)
		rc = sql_exec(s, ST_BLOB_PUT, w, 5, NULL);
	return sql_leave(s, rc == 1 ? 0 : rc);
}

int dbs_blob_get(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t slot,
		 uint64_t *version, uint8_t *buf, size_t cap, size_t *n)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN), DV_I(slot) };
	struct dv v;
	int rc;

	if (cap > 0 && buf == NULL)
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_row(s, ST_BLOB_GET, p, 2);
	if (rc == 0) {
		s->drv->col(s, 1, &v);
		if (v.type != DV_BLOB) {
			rc = TB_E_DB;
		} else if (v.n > cap) {
			rc = TB_E_NOSPACE;
		} else {
			*version = (uint64_t)col_int(s, 0);
			if (v.n > 0)
				memcpy(buf, v.p, v.n);
			*n = v.n;
		}
		sql_done(s);
	}
	return sql_leave(s, rc);
}

int dbs_blob_slots(struct db *db, const uint8_t serial[DB_SERIAL_LEN], uint32_t *slots,
		   size_t cap, size_t *n)
{
	struct db_sql *s = db_sql_of(db);
	const struct dv p[] = { DV_B(serial, DB_SERIAL_LEN), DV_I(cap) };
	size_t got = 0;
	int rc;

	if (cap > INT32_MAX || (cap > 0 && slots == NULL))
		return TB_E_INVAL;
	rc = sql_enter(s);
	if (rc != 0)
		return rc;
	rc = sql_run(s, ST_BLOB_SLOTS, p, 2);
	while (rc == 0 && got < cap && (rc = sql_next(s)) == 1) {
		slots[got++] = (uint32_t)col_int(s, 0);
		rc = 0;
	}
	sql_done(s);
	if (rc == 0)
		*n = got;
	return sql_leave(s, rc);
}
