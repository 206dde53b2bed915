/* db_pg.c - the PostgreSQL driver under db_sql.c: one libpq connection, statements
 * prepared once per session, parameters as text (integers) or binary (bytea), results
 * in binary. synchronous_commit is forced on: a COMMIT that returned is on disk. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "lib/err.h"
#include "db_sql.h"

/* Type OIDs of the columns we read (pg_type.h is a server header). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_TEXT 25
#define OID_VARCHAR 1043

struct pq {
	struct db_sql s; /* first: the shared part */
	PGconn *c;
	uint8_t prepared[ST_COUNT];
	PGresult *res;
	int row, nrows;
};

static struct pq *pq_of(struct db_sql *s) { return (struct pq *)s; }

static void pq_msg(struct pq *d, const char *msg)
{
	size_t n;

	snprintf(d->s.errmsg, sizeof(d->s.errmsg), "postgresql: %s", msg != NULL ? msg : "?");
	n = strlen(d->s.errmsg);
	while (n > 0 && (d->s.errmsg[n - 1] == '\n' || d->s.errmsg[n - 1] == ' '))
		d->s.errmsg[--n] = '\0';
}

/* Integrity constraint violations (SQLSTATE class 23, which our triggers raise too)
 * are TB_E_DB_CONSTRAINT; everything else TB_E_DB. Clears r. */
static int pq_err(struct pq *d, PGresult *r)
{
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	int rc = state != NULL && strncmp(state, "23", 2) == 0 ? TB_E_DB_CONSTRAINT : TB_E_DB;

	pq_msg(d, r != NULL && PQresultErrorMessage(r)[0] != '\0' ? PQresultErrorMessage(r)
								 : PQerrorMessage(d->c));
	PQclear(r);
	return rc;
}

static int pq_ok(PGresult *r)
{
	ExecStatusType st = PQresultStatus(r);

	return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

static int pq_exec(struct db_sql *s, const char *sql)
{
	struct pq *d = pq_of(s);
	PGresult *r = PQexec(d->c, sql);

	if (!pq_ok(r))
		return pq_err(d, r);
	PQclear(r);
	return 0;
}

static int pq_prepare(struct pq *d, unsigned id, const char *sql, size_t np)
{
	char name[16];
	PGresult *r;

	snprintf(name, sizeof(name), "tb%u", id);
	r = PQprepare(d->c, name, sql, (int)np, NULL);
	if (!pq_ok(r))
		return pq_err(d, r);
	PQclear(r);
	d->prepared[id] = 1;
	return 0;
}

static int pq_run(struct db_sql *s, unsigned id, const char *sql, const struct dv *p, size_t np)
{
	struct pq *d = pq_of(s);
	const char *values[DB_SQL_PARAMS_MAX];
	int lengths[DB_SQL_PARAMS_MAX], formats[DB_SQL_PARAMS_MAX];
	char num[DB_SQL_PARAMS_MAX][24];
	char name[16];
	PGresult *r;
	int rc;

	if (id >= ST_COUNT || np > DB_SQL_PARAMS_MAX || d->res != NULL)
		return TB_E_INTERNAL;
	if (!d->prepared[id]) {
		rc = pq_prepare(d, id, sql, np);
		if (rc != 0)
			return rc;
	}
	for (size_t k = 0; k < np; k++) {
		values[k] = NULL;
		lengths[k] = 0;
		formats[k] = 0;
		switch (p[k].type) {
		case DV_INT:
			snprintf(num[k], sizeof(num[k]), "%lld", (long long)p[k].i);
			values[k] = num[k];
			break;
		case DV_BLOB:
			if (p[k].n > INT32_MAX)
				return TB_E_INVAL;
			values[k] = p[k].n > 0 ? p[k].p : "";
			lengths[k] = (int)p[k].n;
			formats[k] = 1;
			break;
		case DV_TEXT:
			values[k] = p[k].p;
			break;
		default:
			break;
		}
	}
	snprintf(name, sizeof(name), "tb%u", id);
	r = PQexecPrepared(d->c, name, (int)np, values, lengths, formats, 1);
	if (!pq_ok(r))
		return pq_err(d, r);
	d->res = r;
	d->row = -1;
	d->nrows = PQntuples(r);
	return 0;
}

static int pq_next(struct db_sql *s)
{
	struct pq *d = pq_of(s);

	if (d->res == NULL)
		return TB_E_INTERNAL;
	if (d->row + 1 >= d->nrows)
		return 0;
	d->row++;
	return 1;
}

static int64_t be_int(const uint8_t *p, int n)
{
	uint64_t v = (p[0] & 0x80) ? UINT64_MAX : 0; /* sign-extend */

	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return (int64_t)v;
}

static void pq_col(struct db_sql *s, unsigned i, struct dv *out)
{
	struct pq *d = pq_of(s);
	int c = (int)i, len;
	const uint8_t *v;

	memset(out, 0, sizeof(*out));
	if (d->res == NULL || d->row < 0 || c >= PQnfields(d->res) ||
	    PQgetisnull(d->res, d->row, c))
		return;
	v = (const uint8_t *)PQgetvalue(d->res, d->row, c);
	len = PQgetlength(d->res, d->row, c);
	switch (PQftype(d->res, c)) {
	case OID_INT8:
	case OID_INT4:
	case OID_INT2:
		if (len == 8 || len == 4 || len == 2) {
			out->type = DV_INT;
			out->i = be_int(v, len);
		}
		break;
	case OID_BYTEA:
		out->type = DV_BLOB;
		out->p = v;
		out->n = (size_t)len;
		break;
	case OID_TEXT:
	case OID_VARCHAR:
		out->type = DV_TEXT;
		out->p = v;
		out->n = (size_t)len;
		break;
	default:
		break;
	}
}

static void pq_done(struct db_sql *s)
{
	struct pq *d = pq_of(s);

	PQclear(d->res);
	d->res = NULL;
}

static int pq_session(struct pq *d)
{
	memset(d->prepared, 0, sizeof(d->prepared));
	return pq_exec(&d->s, "SET synchronous_commit = on; SET client_min_messages = warning; "
			      "SET default_transaction_isolation = 'read committed'");
}

/* A connection that broke is re-made at the next transaction: a server restart
 * fails the batch that was running, not the ones after it. */
static int pq_begin(struct db_sql *s)
{
	struct pq *d = pq_of(s);
	int rc;

	pq_done(s);
	if (PQstatus(d->c) != CONNECTION_OK) {
		PQreset(d->c);
		if (PQstatus(d->c) != CONNECTION_OK) {
			pq_msg(d, PQerrorMessage(d->c));
			return TB_E_DB;
		}
		rc = pq_session(d);
		if (rc != 0)
			return rc;
	}
	return pq_exec(s, "BEGIN");
}

static void pq_rollback(struct db_sql *s)
{
	struct pq *d = pq_of(s);
	PGTransactionStatusType ts;

	pq_done(s);
	ts = PQtransactionStatus(d->c);
	if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
		PQclear(PQexec(d->c, "ROLLBACK"));
}

/* COMMIT of a transaction that had failed answers "ROLLBACK", not an error. */
static int pq_commit(struct db_sql *s)
{
	struct pq *d = pq_of(s);
	PGresult *r;

	pq_done(s);
	r = PQexec(d->c, "COMMIT");
	if (!pq_ok(r)) {
		int rc = pq_err(d, r);

		pq_rollback(s);
		return rc;
	}
	if (strcmp(PQcmdStatus(r), "COMMIT") != 0) {
		PQclear(r);
		pq_msg(d, "COMMIT answered ROLLBACK: the transaction had failed");
		return TB_E_DB;
	}
	PQclear(r);
	return 0;
}

static int pq_savepoint(struct db_sql *s)
{
	pq_done(s);
	return pq_exec(s, "SAVEPOINT req");
}

/* The request's deferred constraint triggers (sum of postings) fire now, so a broken
 * request fails alone instead of failing the batch's COMMIT. */
static int pq_release(struct db_sql *s)
{
	pq_done(s);
	return pq_exec(s, "SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED; "
			  "RELEASE SAVEPOINT req");
}

static void pq_rollback_to(struct db_sql *s)
{
	pq_done(s);
	(void)pq_exec(s, "ROLLBACK TO SAVEPOINT req; RELEASE SAVEPOINT req; "
			 "SET CONSTRAINTS ALL DEFERRED");
}

static int pq_tx_lost(struct db_sql *s)
{
	PGTransactionStatusType ts = PQtransactionStatus(pq_of(s)->c);

	return ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR;
}

/* Two servers starting at once must not both migrate. */
static int pq_migrate_lock(struct db_sql *s)
{
	return pq_exec(s, "SELECT pg_advisory_xact_lock(7353411)");
}

static void pq_close(struct db_sql *s)
{
	struct pq *d = pq_of(s);

	pq_done(s);
	PQfinish(d->c);
	free(d);
}

static const struct db_drv pq_drv = {
	.name = "postgresql",
	.has_seals = 0,
	.exec = pq_exec,
	.run = pq_run,
	.next = pq_next,
	.col = pq_col,
	.done = pq_done,
	.begin = pq_begin,
	.commit = pq_commit,
	.rollback = pq_rollback,
	.savepoint = pq_savepoint,
	.release = pq_release,
	.rollback_to = pq_rollback_to,
	.tx_lost = pq_tx_lost,
	.migrate_lock = pq_migrate_lock,
	.close = pq_close,
};

static void pq_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

int db_pg_open(const char *conninfo, struct db_sql **out, char *err, size_t errcap)
{
	struct pq *d = calloc(1, sizeof(*d));
	int rc;

	if (d == NULL)
		return TB_E_NOMEM;
	d->s.drv = &pq_drv;
	d->c = PQconnectdb(conninfo);
	if (d->c == NULL || PQstatus(d->c) != CONNECTION_OK) {
		snprintf(err, errcap, "postgresql: cannot connect: %s",
			 d->c != NULL ? PQerrorMessage(d->c) : "out of memory");
		PQfinish(d->c);
		free(d);
		return TB_E_DB;
	}
	PQsetNoticeProcessor(d->c, pq_quiet, NULL);
	rc = pq_session(d);
	if (rc == 0)
		rc = db_sql_start(&d->s, &pq_drv);
	if (rc != 0) {
		snprintf(err, errcap, "%s", d->s.errmsg);
		pq_close(&d->s);
		return rc;
	}
	*out = &d->s;
	return 0;
}
