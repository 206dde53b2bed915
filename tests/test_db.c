/* test_db.c - the server's storage (src/io/db*.c) and the core's service rules
 * (src/server/ledger.c, rules.c): one suite, run twice, against SQLite (a file next to
 * this binary) and against a real PostgreSQL cluster started and stopped here through
 * tests/pg_rig.sh. Each test gets an empty database. Covered: every operation, replay
 * and conflict, the ledger constraints (also against raw SQL that bypasses the
 * adapter), savepoint isolation inside a batch, batch states, history paging, the vault,
 * and each service rule's refusal. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "io/db_io.h"
#include "lib/err.h"
#include "pg_rig.h"
#include "server/db.h"
#include "server/ledger.h"
#include "server/rules.h"
#include "vec.h"

static const char *cur_url;   /* the back end of the running group; NULL: skip */
static char sqlite_path[4200];
static char sqlite_url[4300];
static char pg_url[512];

/* ------------------------------------------------------------ fixture --- */

static int fresh_sqlite(void)
{
	char p[4300];

	unlink(sqlite_path);
	snprintf(p, sizeof(p), "%s-wal", sqlite_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", sqlite_path);
	unlink(p);
	return 0;
}

/* libpq directly: the adapter would refuse a database some test left unusable. */
static int fresh_pg(void)
{
	PGconn *c = PQconnectdb(pg_url);
	PGresult *r;
	int ok;

	if (PQstatus(c) != CONNECTION_OK) {
		print_error("test_db: cannot connect to %s: %s\n", pg_url, PQerrorMessage(c));
		PQfinish(c);
		return -1;
	}
	r = PQexec(c, "SET client_min_messages = warning; DROP SCHEMA public CASCADE; "
		      "CREATE SCHEMA public;");
	ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		print_error("test_db: cannot empty the database: %s\n", PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok ? 0 : -1;
}

static int t_setup(void **state)
{
	struct db *db = NULL;

	*state = NULL;
	if (cur_url == NULL)
		return 0;
	if ((cur_url == pg_url ? fresh_pg() : fresh_sqlite()) != 0)
		return -1;
	if (db_open(cur_url, &db) != 0) {
		print_error("test_db: db_open(%s): %s\n", cur_url, db_open_error());
		return -1;
	}
	*state = db;
	return 0;
}

static int t_teardown(void **state)
{
	db_close(*state);
	return 0;
}

static struct db *fx(void **state)
{
	if (*state == NULL)
		skip();
	return *state;
}

static int is_pg(struct db *db)
{
	return strcmp(db_backend(db), "postgresql") == 0;
}

/* One request in a batch of its own; rc gets the rule's result (or req_end's). */
#define IN_REQ(db, rc, call)                                                   \
	do {                                                                   \
		int end_;                                                      \
		assert_int_equal(db_batch_begin(db), 0);                       \
		assert_int_equal(db_req_begin(db), 0);                         \
		(rc) = (call);                                                 \
		end_ = db_req_end((db), (rc) == 0);                            \
		if ((rc) == 0)                                                 \
			(rc) = end_;                                           \
		assert_int_equal(db_batch_commit(db), 0);                      \
	} while (0)

static const uint8_t SE_A[DB_SERIAL_LEN] = { 0x10, 0, 0, 0, 0, 0, 0, 0x0A };
static const uint8_t SE_B[DB_SERIAL_LEN] = { 0x10, 0, 0, 0, 0, 0, 0, 0x0B };
static const uint8_t SE_C[DB_SERIAL_LEN] = { 0x10, 0, 0, 0, 0, 0, 0, 0x0C };
static const uint8_t SE_X[DB_SERIAL_LEN] = { 0x99, 0, 0, 0, 0, 0, 0, 0x99 }; /* unknown */

enum {
	RDR = 1, RDR_REVOKED = 2, RDR_CLASS2 = 3, RDR_UNKNOWN = 77,
	SVC_MONEY = 10, SVC_TICKET = 20, SVC_SHOP = 30, SVC_PAUTH = 40, SVC_UNKNOWN = 99,
};

static struct ledger_req mkreq(const uint8_t se[DB_SERIAL_LEN], uint32_t reader, uint32_t service,
			       uint32_t amount, uint32_t seq)
{
	struct ledger_req rq;

	memset(&rq, 0, sizeof(rq));
	memcpy(rq.se, se, DB_SERIAL_LEN);
	rq.reader = reader;
	rq.service = service;
	rq.amount = amount;
	rq.time = 1000 + seq;
	rq.now = 2000 + seq;
	if (reader != 0)
		assert_int_equal(ledger_key_reader(reader, seq, rq.key), 0);
	else
		assert_int_equal(ledger_key_se(se, seq, rq.key), 0);
	return rq;
}

static void add_service(struct db *db, uint32_t id, uint8_t kind, const char *name,
			const struct db_price *prices, size_t n)
{
	struct db_service sv;

	memset(&sv, 0, sizeof(sv));
	sv.id = id;
	sv.kind = kind;
	snprintf(sv.name, sizeof(sv.name), "%s", name);
	sv.n_prices = n;
	if (n > 0)
		memcpy(sv.prices, prices, n * sizeof(*prices));
	assert_int_equal(db->ops->service_add(db, &sv), 0);
}

/* Three readers, four services, three ses; A holds 1000. */
static void world(struct db *db)
{
	static const struct db_price shop[] = { { 1, 250 }, { 2, 1000 }, { 7, 5 } };
	const struct db_reader readers[] = {
		{ RDR, 1, 1, DB_READER_ACTIVE, 0 },
		{ RDR_REVOKED, 1, 1, DB_READER_REVOKED, 0 },
		{ RDR_CLASS2, 1, 2, DB_READER_ACTIVE, 0 },
	};
	struct ledger_req rq = mkreq(SE_A, 0, SVC_MONEY, 1000, 1);
	struct ledger_reply rep;
	int rc;

	for (size_t i = 0; i < 3; i++)
		assert_int_equal(db->ops->reader_add(db, &readers[i]), 0);
	add_service(db, SVC_MONEY, DB_SVC_EMONEY, "cafe", NULL, 0);
	add_service(db, SVC_TICKET, DB_SVC_TICKET, "metro", NULL, 0);
	add_service(db, SVC_SHOP, DB_SVC_ECOMMERCE, "shop", shop, 3);
	add_service(db, SVC_PAUTH, DB_SVC_PAUTH, "door", NULL, 0);
	IN_REQ(db, rc, srv_se_register(db, SE_A, 1));
	assert_int_equal(rc, 0);
	IN_REQ(db, rc, srv_se_register(db, SE_B, 1));
	assert_int_equal(rc, 0);
	IN_REQ(db, rc, srv_se_register(db, SE_C, 1));
	assert_int_equal(rc, 0);
	IN_REQ(db, rc, ledger_topup(db, &rq, &rep));
	assert_int_equal(rc, 0);
	assert_int_equal(rep.balance, 1000);
}

static int64_t balance(struct db *db, const uint8_t se[DB_SERIAL_LEN])
{
	int64_t b = -1;

	assert_int_equal(ledger_balance(db, se, &b), 0);
	return b;
}

static void audit_clean(struct db *db, uint64_t transfers)
{
	struct db_audit a;

	assert_int_equal(db->ops->ledger_audit(db, &a), 0);
	assert_int_equal(a.transfers, transfers);
	assert_int_equal(a.postings, 2 * transfers);
	assert_int_equal(a.postings_sum, 0);
	assert_int_equal(a.unbalanced_transfers, 0);
	assert_int_equal(a.short_transfers, 0);
	assert_int_equal(a.balance_mismatches, 0);
	assert_int_equal(a.negative_purses, 0);
}

/* -------------------------------------------------- open, migrations --- */

static void read_file(const char *path, char *buf, size_t cap, size_t *n)
{
	int fd = open(path, O_RDONLY);
	ssize_t r;

	if (fd < 0)
		fail_msg("cannot open %s", path);
	*n = 0;
	while ((r = read(fd, buf + *n, cap - *n)) > 0)
		*n += (size_t)r;
	close(fd);
	assert_true(*n < cap);
}

static void t_migrations_embedded(void **state)
{
	static char file[65536];
	struct db *db = fx(state);
	const char *v = TB_VECTOR_DIR; /* <src>/tests/vectors */
	const char *folder = is_pg(db) ? "pg" : "sqlite";
	const struct db_migration *m;
	size_t count, n;
	char path[4400];

	assert_int_equal(db_migrations(db_backend(db), &m, &count), 0);
	assert_true(count >= 1);
	for (size_t i = 0; i < count; i++) {
		assert_int_equal(m[i].version, i + 1);
		snprintf(path, sizeof(path), "%.*s/db/migrations/%s/%s.sql",
			 (int)(strlen(v) - strlen("/tests/vectors")), v, folder, m[i].name);
		read_file(path, file, sizeof(file), &n);
		assert_int_equal(strlen(m[i].sql), n);
		assert_memory_equal(m[i].sql, file, n);
	}
	assert_int_equal(db_migrations("oracle", &m, &count), TB_E_INVAL);
}

/* Re-opening applies nothing (the schema would not survive a second CREATE TABLE) and
 * keeps the data; a schema newer than the program is refused. */
static void t_reopen(void **state)
{
	struct db *db = fx(state);
	struct db_se se = { .state = DB_SE_ACTIVE };
	struct db_se got;

	memcpy(se.serial, SE_A, DB_SERIAL_LEN);
	assert_int_equal(db->ops->se_add(db, &se), 0);
	db_close(db);
	*state = NULL;
	assert_int_equal(db_open(cur_url, &db), 0);
	*state = db;
	assert_int_equal(db->ops->se_get(db, SE_A, &got), 0);
	assert_int_equal(got.state, DB_SE_ACTIVE);
	assert_int_equal(db_exec_raw(db, "INSERT INTO schema_version (version, name, applied) "
					 "VALUES (9999, 'future', 0)"), 0);
	db_close(db);
	*state = NULL;
	assert_int_equal(db_open(cur_url, &db), TB_E_DB_SCHEMA);
	assert_non_null(strstr(db_open_error(), "newer"));
}

/* What "durable when db_batch_commit() returns 0" rests on, read back from the database:
 * a failed CHECK or a raised exception is TB_E_DB_CONSTRAINT. */
static void t_durability_settings(void **state)
{
	struct db *db = fx(state);

	if (is_pg(db)) {
		assert_int_equal(db_exec_raw(db, "DO $$ BEGIN IF current_setting('synchronous_commit') "
						 "<> 'on' OR current_setting('fsync') <> 'on' THEN "
						 "RAISE EXCEPTION 'not durable' USING ERRCODE = '23000'; "
						 "END IF; END $$"), 0);
		assert_int_equal(db_exec_raw(db, "DO $$ BEGIN RAISE EXCEPTION 'probe' USING "
						 "ERRCODE = '23000'; END $$"), TB_E_DB_CONSTRAINT);
		return;
	}
	assert_int_equal(db_exec_raw(db, "CREATE TEMP TABLE chk (what TEXT, ok INTEGER CHECK (ok = 1)); "
					 "INSERT INTO chk SELECT 'sync', synchronous = 2 FROM pragma_synchronous; "
					 "INSERT INTO chk SELECT 'wal', journal_mode = 'wal' FROM pragma_journal_mode; "
					 "INSERT INTO chk SELECT 'fk', foreign_keys = 1 FROM pragma_foreign_keys; "
					 "DROP TABLE chk"), 0);
	assert_int_equal(db_exec_raw(db, "CREATE TEMP TABLE chk (ok INTEGER CHECK (ok = 1)); "
					 "INSERT INTO chk SELECT synchronous = 1 FROM pragma_synchronous"),
			 TB_E_DB_CONSTRAINT); /* the probe can fail */
}

static void t_open_urls(void **state)
{
	struct db *db = NULL;

	(void)fx(state);
	assert_int_equal(db_open("", &db), TB_E_DB_URL);
	assert_int_equal(db_open(NULL, &db), TB_E_DB_URL);
	assert_int_equal(db_open("sqlite:", &db), TB_E_DB_URL);
	assert_int_equal(db_open("mysql://localhost/x", &db), TB_E_DB_URL);
	assert_int_equal(db_open("/nonexistent-folder/x/y.db", &db), TB_E_DB);
	assert_int_equal(db_open("postgresql://postgres@127.0.0.1:1/postgres", &db), TB_E_DB);
	assert_null(db);
	assert_non_null(strstr(db_open_error(), "postgresql"));
}

static void t_struct_sizes(void **state)
{
	(void)fx(state);
	/* The fixed sizes the core's callers put on their stacks (db.h). */
	assert_true(sizeof(struct db_pauth) <= 3072);
	assert_true(sizeof(struct db_order) <= 512);
	assert_true(sizeof(struct db_service) <= 512);
	assert_true(sizeof(struct db_transfer) <= 256);
}

/* ---------------------------------------------------- storage: ses... --- */

static void t_se_ops(void **state)
{
	struct db *db = fx(state);
	struct db_se se = { .state = DB_SE_ACTIVE, .created = 5, .changed = 5 }, got;
	uint8_t list[4][DB_SERIAL_LEN];
	uint64_t v0, v1, v2;
	size_t n;

	memcpy(se.serial, SE_A, DB_SERIAL_LEN);
	assert_int_equal(db->ops->se_add(db, &se), 0);
	assert_int_equal(db->ops->se_add(db, &se), TB_E_DB_EXISTS);
	memcpy(se.serial, SE_B, DB_SERIAL_LEN);
	assert_int_equal(db->ops->se_add(db, &se), 0);
	se.state = 9;
	assert_int_equal(db->ops->se_add(db, &se), TB_E_INVAL);
	assert_int_equal(db->ops->se_get(db, SE_A, &got), 0);
	assert_memory_equal(got.serial, SE_A, DB_SERIAL_LEN);
	assert_int_equal(got.state, DB_SE_ACTIVE);
	assert_int_equal(got.created, 5);
	assert_false(got.has_replaced_by);
	assert_int_equal(db->ops->se_get(db, SE_X, &got), TB_E_DB_NOT_FOUND);

	assert_int_equal(db->ops->deny_list(db, NULL, list, 4, &n, &v0), 0);
	assert_int_equal(n, 0);
	assert_int_equal(db->ops->se_set_state(db, SE_B, DB_SE_LOST, SE_C, 6), 0);
	assert_int_equal(db->ops->se_set_state(db, SE_A, DB_SE_LOCKED, NULL, 7), 0);
	assert_int_equal(db->ops->deny_list(db, NULL, list, 4, &n, &v1), 0);
	assert_int_equal(n, 2);
	assert_true(v1 == v0 + 2);
	assert_memory_equal(list[0], SE_A, DB_SERIAL_LEN); /* ascending */
	assert_memory_equal(list[1], SE_B, DB_SERIAL_LEN);
	assert_int_equal(db->ops->deny_list(db, NULL, list, 1, &n, &v2), 0); /* paging */
	assert_int_equal(n, 1);
	assert_int_equal(db->ops->deny_list(db, list[0], list, 1, &n, &v2), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(list[0], SE_B, DB_SERIAL_LEN);
	assert_int_equal(db->ops->deny_list(db, SE_B, list, 4, &n, &v2), 0);
	assert_int_equal(n, 0);
	/* The same state again changes nothing, so the version stays. */
	assert_int_equal(db->ops->se_set_state(db, SE_A, DB_SE_LOCKED, NULL, 8), 0);
	assert_int_equal(db->ops->deny_list(db, NULL, list, 4, &n, &v2), 0);
	assert_true(v2 == v1);
	assert_int_equal(db->ops->se_get(db, SE_B, &got), 0);
	assert_int_equal(got.state, DB_SE_LOST);
	assert_true(got.has_replaced_by);
	assert_memory_equal(got.replaced_by, SE_C, DB_SERIAL_LEN);
	assert_int_equal(got.changed, 6);
	assert_int_equal(db->ops->se_set_state(db, SE_X, DB_SE_LOCKED, NULL, 8), TB_E_DB_NOT_FOUND);
	assert_int_equal(db->ops->se_set_state(db, SE_A, 0, NULL, 8), TB_E_INVAL);
}

static void t_reader_ops(void **state)
{
	struct db *db = fx(state);
	struct db_reader r = { 5, 3, 2, DB_READER_ACTIVE, 100 }, got;

	assert_int_equal(db->ops->reader_add(db, &r), 0);
	assert_int_equal(db->ops->reader_add(db, &r), TB_E_DB_EXISTS);
	assert_int_equal(db->ops->reader_get(db, 5, &got), 0);
	assert_int_equal(got.id, 5);
	assert_int_equal(got.key_version, 3);
	assert_int_equal(got.reader_class, 2);
	assert_int_equal(got.state, DB_READER_ACTIVE);
	assert_int_equal(got.last_contact, 100);
	r.key_version = 4;
	r.state = DB_READER_REVOKED;
	r.last_contact = 200;
	assert_int_equal(db->ops->reader_update(db, &r), 0);
	assert_int_equal(db->ops->reader_get(db, 5, &got), 0);
	assert_int_equal(got.key_version, 4);
	assert_int_equal(got.state, DB_READER_REVOKED);
	assert_int_equal(got.last_contact, 200);
	assert_int_equal(db->ops->reader_get(db, 6, &got), TB_E_DB_NOT_FOUND);
	r.id = 6;
	assert_int_equal(db->ops->reader_update(db, &r), TB_E_DB_NOT_FOUND);
	r.id = 0;
	assert_int_equal(db->ops->reader_add(db, &r), TB_E_INVAL);
	r.id = 7;
	r.state = 5;
	assert_int_equal(db->ops->reader_add(db, &r), TB_E_INVAL);
	r.id = UINT32_MAX; /* the whole id range round-trips */
	r.state = DB_READER_ACTIVE;
	r.key_version = UINT32_MAX;
	assert_int_equal(db->ops->reader_add(db, &r), 0);
	assert_int_equal(db->ops->reader_get(db, UINT32_MAX, &got), 0);
	assert_int_equal(got.key_version, UINT32_MAX);
}

static void t_service_ops(void **state)
{
	static const struct db_price prices[] = { { 1, 250 }, { 2, 0 }, { 9, UINT32_MAX } };
	struct db *db = fx(state);
	struct db_service sv, got;

	add_service(db, 30, DB_SVC_ECOMMERCE, "shop", prices, 3);
	assert_int_equal(db->ops->service_get(db, 30, &got), 0);
	assert_string_equal(got.name, "shop");
	assert_int_equal(got.kind, DB_SVC_ECOMMERCE);
	assert_int_equal(got.n_prices, 3);
	assert_int_equal(got.prices[0].item, 1);
	assert_int_equal(got.prices[0].price, 250);
	assert_int_equal(got.prices[2].price, UINT32_MAX);
	assert_int_equal(db->ops->service_get(db, 31, &got), TB_E_DB_NOT_FOUND);
	memset(&sv, 0, sizeof(sv));
	sv.id = 30;
	sv.kind = DB_SVC_EMONEY;
	snprintf(sv.name, sizeof(sv.name), "again");
	assert_int_equal(db->ops->service_add(db, &sv), TB_E_DB_EXISTS);
	sv.id = 31;
	sv.n_prices = 2; /* not ascending */
	sv.prices[0].item = 5;
	sv.prices[1].item = 5;
	assert_int_equal(db->ops->service_add(db, &sv), TB_E_INVAL);
	sv.n_prices = 0;
	sv.kind = 7;
	assert_int_equal(db->ops->service_add(db, &sv), TB_E_INVAL);
	sv.kind = DB_SVC_PAUTH;
	memset(sv.name, 'n', sizeof(sv.name)); /* no NUL */
	assert_int_equal(db->ops->service_add(db, &sv), TB_E_INVAL);
	assert_int_equal(db->ops->service_get(db, 31, &got), TB_E_DB_NOT_FOUND);
}

/* ------------------------------------------------------- the ledger --- */

static struct db_transfer mktransfer(const char *key, uint8_t kind, uint32_t amount,
				     uint64_t from, uint64_t to)
{
	struct db_transfer t;

	memset(&t, 0, sizeof(t));
	snprintf(t.key, sizeof(t.key), "%s", key);
	t.kind = kind;
	t.amount = amount;
	t.rec_time = 11;
	t.now = 12;
	t.n_legs = 2;
	t.legs[0].account = from;
	t.legs[0].amount = -(int64_t)amount;
	t.legs[1].account = to;
	t.legs[1].amount = amount;
	return t;
}

static void t_accounts(void **state)
{
	struct db *db = fx(state);
	struct db_account a;
	uint64_t p, p2, f;

	assert_int_equal(db->ops->account_open(db, DB_ACCT_PURSE, "P:1", &p), 0);
	assert_int_equal(db->ops->account_open(db, DB_ACCT_FLOAT, "F", &f), 0);
	assert_true(p != f);
	assert_int_equal(db->ops->account_open(db, DB_ACCT_PURSE, "P:1", &p2), 0);
	assert_int_equal(p2, p);
	assert_int_equal(db->ops->account_open(db, DB_ACCT_REVENUE, "P:1", &p2), TB_E_DB_CONFLICT);
	assert_int_equal(db->ops->account_open(db, 0, "P:2", &p2), TB_E_INVAL);
	assert_int_equal(db->ops->account_open(db, DB_ACCT_PURSE, "", &p2), TB_E_INVAL);
	assert_int_equal(db->ops->account_get(db, "P:1", &a), 0);
	assert_int_equal(a.id, p);
	assert_int_equal(a.kind, DB_ACCT_PURSE);
	assert_int_equal(a.balance, 0);
	assert_string_equal(a.name, "P:1");
	assert_int_equal(db->ops->account_get(db, "P:9", &a), TB_E_DB_NOT_FOUND);
}

static void t_transfer_replay_conflict(void **state)
{
	struct db *db = fx(state);
	struct db_transfer t, t2, got;
	struct db_applied ap, ap2;
	struct db_account a;
	uint64_t p, f;
	int rc;

	assert_int_equal(db->ops->account_open(db, DB_ACCT_PURSE, "P:1", &p), 0);
	assert_int_equal(db->ops->account_open(db, DB_ACCT_FLOAT, "F", &f), 0);
	t = mktransfer("K1", DB_XFER_TOPUP, 100, f, p);
	t.result = 100;
	t.has_se = 1;
	memcpy(t.se, SE_A, DB_SERIAL_LEN);
	IN_REQ(db, rc, db->ops->transfer_apply(db, &t, &ap));
	assert_int_equal(rc, 0);
	assert_false(ap.replayed);
	assert_int_equal(ap.result, 100);
	assert_int_equal(db->ops->account_get(db, "P:1", &a), 0);
	assert_int_equal(a.balance, 100);
	assert_int_equal(db->ops->account_get(db, "F", &a), 0);
	assert_int_equal(a.balance, -100);

	/* The same record again: the first answer, nothing written. */
	t2 = t;
	t2.result = 555; /* not content: the stored result comes back */
	t2.now = 99;
	IN_REQ(db, rc, db->ops->transfer_apply(db, &t2, &ap2));
	assert_int_equal(rc, 0);
	assert_true(ap2.replayed);
	assert_int_equal(ap2.id, ap.id);
	assert_int_equal(ap2.result, 100);
	assert_int_equal(ap2.created, 12);
	audit_clean(db, 1);
	assert_int_equal(db->ops->account_get(db, "P:1", &a), 0);
	assert_int_equal(a.balance, 100);

	/* The same key with other content: refused, nothing written. */
	t2 = t;
	t2.amount = 101;
	t2.legs[0].amount = -101;
	t2.legs[1].amount = 101;
	assert_int_equal(db->ops->transfer_apply(db, &t2, &ap2), TB_E_DB_CONFLICT);
	t2 = t;
	t2.rec_time = 12;
	assert_int_equal(db->ops->transfer_apply(db, &t2, &ap2), TB_E_DB_CONFLICT);
	t2 = t;
	t2.se[0] ^= 1;
	assert_int_equal(db->ops->transfer_apply(db, &t2, &ap2), TB_E_DB_CONFLICT);
	audit_clean(db, 1);

	assert_int_equal(db->ops->transfer_get(db, "K1", &got, &ap2), 0);
	assert_int_equal(ap2.id, ap.id);
	assert_int_equal(got.kind, DB_XFER_TOPUP);
	assert_int_equal(got.amount, 100);
	assert_true(got.has_se);
	assert_memory_equal(got.se, SE_A, DB_SERIAL_LEN);
	assert_int_equal(got.n_legs, 2);
	assert_int_equal(got.legs[0].account, f);
	assert_int_equal(got.legs[1].amount, 100);
	assert_int_equal(db->ops->transfer_get(db, "K2", &got, &ap2), TB_E_DB_NOT_FOUND);

	t2 = t;
	t2.n_legs = 1;
	assert_int_equal(db->ops->transfer_apply(db, &t2, &ap2), TB_E_INVAL);
	t2 = t;
	t2.amount = 0;
	assert_int_equal(db->ops->transfer_apply(db, &t2, &ap2), TB_E_INVAL);
	t2 = t;
	t2.key[0] = '\0';
	assert_int_equal(db->ops->transfer_apply(db, &t2, &ap2), TB_E_INVAL);
	t2 = t;
	t2.legs[1].amount = 0;
	assert_int_equal(db->ops->transfer_apply(db, &t2, &ap2), TB_E_INVAL);
}

/* Four legs, refunds summed per payment. */
static void t_transfer_legs_refunds(void **state)
{
	struct db *db = fx(state);
	struct db_transfer t, got;
	struct db_applied ap, ap2;
	uint64_t a1, a2, a3, f;
	int64_t sum = -1;
	int rc;

	assert_int_equal(db->ops->account_open(db, DB_ACCT_FLOAT, "F", &f), 0);
	assert_int_equal(db->ops->account_open(db, DB_ACCT_PURSE, "P:1", &a1), 0);
	assert_int_equal(db->ops->account_open(db, DB_ACCT_PURSE, "P:2", &a2), 0);
	assert_int_equal(db->ops->account_open(db, DB_ACCT_REVENUE, "V:1", &a3), 0);
	t = mktransfer("four", DB_XFER_TOPUP, 60, f, a1);
	t.n_legs = 4;
	t.legs[0].amount = -60;
	t.legs[1].amount = 30;
	t.legs[2].account = a2;
	t.legs[2].amount = 20;
	t.legs[3].account = a3;
	t.legs[3].amount = 10;
	IN_REQ(db, rc, db->ops->transfer_apply(db, &t, &ap));
	assert_int_equal(rc, 0);
	assert_int_equal(db->ops->transfer_get(db, "four", &got, &ap2), 0);
	assert_int_equal(got.n_legs, 4);
	assert_int_equal(got.legs[3].amount, 10);
	assert_int_equal(db->ops->refunded_sum(db, ap.id, &sum), 0);
	assert_int_equal(sum, 0);
	t = mktransfer("ref1", DB_XFER_REFUND, 4, a3, a1);
	t.refund_of = ap.id;
	IN_REQ(db, rc, db->ops->transfer_apply(db, &t, &ap2));
	assert_int_equal(rc, 0);
	t = mktransfer("ref2", DB_XFER_REFUND, 3, a3, a1);
	t.refund_of = ap.id;
	IN_REQ(db, rc, db->ops->transfer_apply(db, &t, &ap2));
	assert_int_equal(rc, 0);
	assert_int_equal(db->ops->refunded_sum(db, ap.id, &sum), 0);
	assert_int_equal(sum, 7);
	assert_int_equal(db->ops->transfer_get(db, "ref2", &got, &ap2), 0);
	assert_int_equal(got.refund_of, ap.id);
}

/* A leg that would take a purse below zero: the CHECK refuses, the request goes. */
static void t_constraint_no_negative(void **state)
{
	struct db *db = fx(state);
	struct db_transfer t;
	struct db_applied ap;
	struct db_account a;
	uint64_t p, v;

	assert_int_equal(db->ops->account_open(db, DB_ACCT_PURSE, "P:1", &p), 0);
	assert_int_equal(db->ops->account_open(db, DB_ACCT_REVENUE, "V:1", &v), 0);
	t = mktransfer("neg", DB_XFER_PAY, 50, p, v);
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(db->ops->transfer_apply(db, &t, &ap), TB_E_DB_CONSTRAINT);
	/* Spoiled: the next operation is refused, the end rolls back. */
	assert_int_equal(db->ops->account_get(db, "P:1", &a), TB_E_DB_CONSTRAINT);
	assert_int_equal(db_req_end(db, 1), TB_E_DB_CONSTRAINT);
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(db->ops->account_get(db, "P:1", &a), 0);
	assert_int_equal(a.balance, 0);
	assert_int_equal(db->ops->transfer_get(db, "neg", NULL, &ap), TB_E_DB_NOT_FOUND);
	/* Raw SQL that bypasses the adapter meets the same CHECK. */
	assert_int_equal(db_exec_raw(db, "UPDATE accounts SET balance = -1 WHERE name = 'P:1'"),
			 TB_E_DB_CONSTRAINT);
	audit_clean(db, 0);
}

/* The postings of every transfer sum to zero, whoever writes them. */
static void t_constraint_sum_zero(void **state)
{
	struct db *db = fx(state);
	struct db_transfer t;
	struct db_applied ap;
	struct db_account a;
	char sql[512];
	uint64_t p, f;
	int rc;

	assert_int_equal(db->ops->account_open(db, DB_ACCT_PURSE, "P:1", &p), 0);
	assert_int_equal(db->ops->account_open(db, DB_ACCT_FLOAT, "F", &f), 0);

	/* Through the adapter, which leaves the sum to the database: unbalanced legs fail
	 * the request (SQLite when the transfer is sealed, PostgreSQL at db_req_end). */
	t = mktransfer("bad", DB_XFER_TOPUP, 100, f, p);
	t.legs[1].amount = 90;
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(db_req_begin(db), 0);
	rc = db->ops->transfer_apply(db, &t, &ap);
	assert_int_equal(rc, is_pg(db) ? 0 : TB_E_DB_CONSTRAINT);
	assert_int_equal(db_req_end(db, 1), TB_E_DB_CONSTRAINT);
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(db->ops->transfer_get(db, "bad", NULL, &ap), TB_E_DB_NOT_FOUND);

	/* Raw SQL inside a request: a transfer with one posting. */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO transfers (id, key, kind, amount, se, reader, service, rec_time, "
		 "refund_of, result, created) VALUES (900, 'raw', 1, 5, NULL, 0, 0, 0, NULL, 0, 0); "
		 "INSERT INTO postings (transfer_id, leg, account, amount) VALUES (900, 1, %llu, 5)",
		 (unsigned long long)p);
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(db_exec_raw(db, sql), 0); /* deferred: not yet */
	assert_int_equal(db_req_end(db, 1), TB_E_DB_CONSTRAINT);
	assert_int_equal(db_batch_commit(db), 0);
	/* ... and as a transaction of its own: the COMMIT refuses. */
	assert_int_equal(db_exec_raw(db, sql), TB_E_DB_CONSTRAINT);
	/* A transfer without postings at all. */
	assert_int_equal(db_exec_raw(db, "INSERT INTO transfers (id, key, kind, amount, se, reader, "
					 "service, rec_time, refund_of, result, created) VALUES "
					 "(901, 'empty', 1, 5, NULL, 0, 0, 0, NULL, 0, 0)"),
			 TB_E_DB_CONSTRAINT);
	if (!is_pg(db)) { /* SQLite: a seal over unbalanced postings is refused at once */
		snprintf(sql, sizeof(sql),
			 "INSERT INTO transfers (id, key, kind, amount, se, reader, service, "
			 "rec_time, refund_of, result, created) VALUES (902, 'seal', 1, 5, NULL, 0, "
			 "0, 0, NULL, 0, 0); INSERT INTO postings (transfer_id, leg, account, amount) "
			 "VALUES (902, 1, %llu, 5); INSERT INTO transfer_seals VALUES (902)",
			 (unsigned long long)p);
		assert_int_equal(db_exec_raw(db, sql), TB_E_DB_CONSTRAINT);
	}

	/* A committed transfer cannot be changed, shortened or extended. */
	t = mktransfer("good", DB_XFER_TOPUP, 100, f, p);
	IN_REQ(db, rc, db->ops->transfer_apply(db, &t, &ap));
	assert_int_equal(rc, 0);
	snprintf(sql, sizeof(sql), "UPDATE postings SET amount = 1 WHERE transfer_id = %llu",
		 (unsigned long long)ap.id);
	assert_int_equal(db_exec_raw(db, sql), TB_E_DB_CONSTRAINT);
	snprintf(sql, sizeof(sql), "DELETE FROM postings WHERE transfer_id = %llu AND leg = 2",
		 (unsigned long long)ap.id);
	assert_int_equal(db_exec_raw(db, sql), TB_E_DB_CONSTRAINT);
	snprintf(sql, sizeof(sql), "INSERT INTO postings (transfer_id, leg, account, amount) "
		 "VALUES (%llu, 3, %llu, 7)", (unsigned long long)ap.id, (unsigned long long)p);
	assert_int_equal(db_exec_raw(db, sql), TB_E_DB_CONSTRAINT);
	assert_int_equal(db_exec_raw(db, "DELETE FROM transfers"), TB_E_DB_CONSTRAINT);
	assert_int_equal(db->ops->account_get(db, "P:1", &a), 0);
	assert_int_equal(a.balance, 100);
	audit_clean(db, 1);
}

/* ----------------------------------------------- batches and requests --- */

static void t_batch_states(void **state)
{
	struct db *db = fx(state);
	struct db_se se = { .state = DB_SE_ACTIVE }, got;

	memcpy(se.serial, SE_X, DB_SERIAL_LEN);
	assert_int_equal(db_batch_commit(db), TB_E_DB_STATE);
	assert_int_equal(db_req_begin(db), TB_E_DB_STATE);
	assert_int_equal(db_req_end(db, 1), TB_E_DB_STATE);
	db_batch_abort(db); /* nothing open: nothing happens */
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(db_batch_begin(db), TB_E_DB_STATE);
	assert_int_equal(db->ops->se_get(db, SE_A, &got), TB_E_DB_STATE); /* outside a request */
	assert_int_equal(db_req_end(db, 1), TB_E_DB_STATE);
	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(db_req_begin(db), TB_E_DB_STATE);
	assert_int_equal(db_batch_commit(db), TB_E_DB_STATE); /* inside a request */
	assert_int_equal(db->ops->se_add(db, &se), 0);
	assert_int_equal(db_req_end(db, 1), 0);
	/* Aborted: gone. */
	db_batch_abort(db);
	assert_int_equal(db->ops->se_get(db, SE_X, &got), TB_E_DB_NOT_FOUND);
	/* Abort with a request open. */
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(db->ops->se_add(db, &se), 0);
	db_batch_abort(db);
	assert_int_equal(db->ops->se_get(db, SE_X, &got), TB_E_DB_NOT_FOUND);
	/* Committed: there. */
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(db->ops->se_add(db, &se), 0);
	assert_int_equal(db_req_end(db, 1), 0);
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(db->ops->se_get(db, SE_X, &got), 0);
}

/* One batch, five requests: two succeed, one is refused by a rule, two are spoiled by
 * the database; the commit keeps exactly the two. */
static void t_batch_savepoint_isolation(void **state)
{
	struct db *db = fx(state);
	struct ledger_req r1, r2, r5, r6;
	struct ledger_reply rep;
	struct db_transfer t;
	struct db_applied ap;
	struct db_account fl, pa;
	struct db_event ev[8];
	size_t n;

	world(db);
	r1 = mkreq(SE_A, RDR, SVC_MONEY, 100, 1);
	r2 = mkreq(SE_A, RDR, SVC_MONEY, 5000, 2);
	r5 = mkreq(SE_A, RDR, SVC_MONEY, 50, 5);
	r6 = mkreq(SE_B, RDR, SVC_MONEY, 10, 6);
	assert_int_equal(db->ops->account_get(db, LEDGER_FLOAT, &fl), 0);
	assert_int_equal(db->ops->account_get(db, "P:100000000000000A", &pa), 0);
	assert_int_equal(db_batch_begin(db), 0);

	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(ledger_pay(db, &r1, &rep), 0);
	assert_int_equal(rep.balance, 900);
	assert_int_equal(db_req_end(db, 1), 0);

	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(ledger_pay(db, &r2, &rep), TB_E_SRV_FUNDS);
	assert_int_equal(db_req_end(db, 0), 0);

	assert_int_equal(db_req_begin(db), 0); /* unbalanced: the database's rule */
	t = mktransfer("bad", DB_XFER_TOPUP, 10, fl.id, pa.id);
	t.legs[1].amount = 9;
	(void)db->ops->transfer_apply(db, &t, &ap);
	assert_int_equal(db_req_end(db, 1), TB_E_DB_CONSTRAINT);

	assert_int_equal(db_req_begin(db), 0); /* spoiled by a refused raw statement */
	assert_int_equal(db_exec_raw(db, "UPDATE postings SET amount = 1"), TB_E_DB_CONSTRAINT);
	assert_int_equal(ledger_pay(db, &r6, &rep), TB_E_DB_CONSTRAINT);
	assert_int_equal(db_req_end(db, 1), TB_E_DB_CONSTRAINT);

	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(ledger_pay(db, &r5, &rep), 0);
	assert_int_equal(rep.balance, 850); /* sees r1, not the rolled back ones */
	assert_int_equal(db_req_end(db, 1), 0);

	assert_int_equal(db_req_begin(db), 0); /* written, then given up by the caller */
	r6 = mkreq(SE_B, 0, SVC_MONEY, 10, 7);
	assert_int_equal(ledger_topup(db, &r6, &rep), 0);
	assert_int_equal(db_req_end(db, 0), 0);

	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(balance(db, SE_A), 850);
	assert_int_equal(balance(db, SE_B), 0);
	assert_int_equal(db->ops->transfer_get(db, r1.key, NULL, &ap), 0);
	assert_int_equal(db->ops->transfer_get(db, r5.key, NULL, &ap), 0);
	assert_int_equal(db->ops->transfer_get(db, r2.key, NULL, &ap), TB_E_DB_NOT_FOUND);
	assert_int_equal(db->ops->transfer_get(db, r6.key, NULL, &ap), TB_E_DB_NOT_FOUND);
	assert_int_equal(db->ops->history_by_se(db, SE_A, 0, ev, 8, &n), 0);
	assert_int_equal(n, 3); /* top-up, two payments */
	assert_int_equal(ev[0].kind, DB_EV_PAY);
	assert_int_equal(ev[0].amount, 50);
	assert_int_equal(ev[2].kind, DB_EV_TOPUP);
	audit_clean(db, 3);
}

/* ------------------------------------------------------------ history --- */

static void t_history_paging(void **state)
{
	struct db *db = fx(state);
	struct db_event ev, page[10], found;
	uint64_t before = 0, last = UINT64_MAX, id;
	size_t n, total = 0;

	memset(&ev, 0, sizeof(ev));
	ev.kind = DB_EV_CREDIT;
	ev.has_se = 1;
	for (int i = 0; i < 25; i++) {
		memcpy(ev.se, SE_C, DB_SERIAL_LEN);
		ev.reader = 4;
		ev.service = 10;
		ev.time = 100 + i;
		ev.amount = i;
		assert_int_equal(db->ops->history_add(db, &ev, &id), 0);
		memcpy(ev.se, SE_B, DB_SERIAL_LEN); /* noise for another se and reader */
		ev.reader = 5;
		assert_int_equal(db->ops->history_add(db, &ev, NULL), 0);
	}
	do {
		assert_int_equal(db->ops->history_by_se(db, SE_C, before, page, 10, &n), 0);
		for (size_t i = 0; i < n; i++) {
			assert_true(page[i].id < last); /* newest first, no repeats */
			last = page[i].id;
			assert_memory_equal(page[i].se, SE_C, DB_SERIAL_LEN);
			assert_int_equal(page[i].time, 100 + 24 - (int64_t)total);
			assert_int_equal(page[i].reader, 4);
			assert_string_equal(page[i].key, "");
			total++;
		}
		if (n > 0)
			before = page[n - 1].id;
	} while (n == 10);
	assert_int_equal(total, 25);
	assert_int_equal(db->ops->history_by_reader(db, 5, 0, page, 10, &n), 0);
	assert_int_equal(n, 10);
	assert_memory_equal(page[0].se, SE_B, DB_SERIAL_LEN);
	assert_int_equal(page[0].time, 124);
	assert_int_equal(db->ops->history_by_reader(db, 6, 0, page, 10, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(db->ops->history_by_se(db, SE_C, 0, page, 0, &n), 0);
	assert_int_equal(n, 0);

	/* Keys make an event idempotent. */
	snprintf(ev.key, sizeof(ev.key), "R:00000004:00000001");
	ev.has_se = 0;
	ev.amount = -7;
	ev.ref = 42;
	assert_int_equal(db->ops->history_add(db, &ev, &id), 0);
	assert_int_equal(db->ops->history_add(db, &ev, &id), TB_E_DB_EXISTS);
	assert_int_equal(db->ops->history_find(db, ev.key, &found), 0);
	assert_int_equal(found.id, id);
	assert_false(found.has_se);
	assert_int_equal(found.amount, -7);
	assert_int_equal(found.ref, 42);
	assert_string_equal(found.key, ev.key);
	assert_int_equal(db->ops->history_find(db, "R:00000004:00000002", &found), TB_E_DB_NOT_FOUND);
	ev.kind = 0;
	assert_int_equal(db->ops->history_add(db, &ev, &id), TB_E_INVAL);
}

/* ---------------------------------------------- tickets, orders, pauth --- */

static void t_ticket_ops(void **state)
{
	struct db *db = fx(state);
	struct db_ticket t = { .service = SVC_TICKET, .valid_from = 10, .valid_until = 20,
			       .uses_left = 3, .state = DB_TICKET_VALID };
	struct db_ticket got, list[4];
	struct db_applied ap, ap2;
	size_t n;

	world(db);
	memcpy(t.se, SE_A, DB_SERIAL_LEN);
	assert_int_equal(db->ops->ticket_issue(db, "T1", &t, &ap), 0);
	assert_false(ap.replayed);
	assert_int_equal(db->ops->ticket_issue(db, "T1", &t, &ap2), 0);
	assert_true(ap2.replayed);
	assert_int_equal(ap2.id, ap.id);
	t.valid_until = 21;
	assert_int_equal(db->ops->ticket_issue(db, "T1", &t, &ap2), TB_E_DB_CONFLICT);
	assert_int_equal(db->ops->ticket_issue(db, "T2", &t, &ap2), 0);
	memcpy(t.se, SE_X, DB_SERIAL_LEN);
	assert_int_equal(db->ops->ticket_issue(db, "T3", &t, &ap2), TB_E_DB_NOT_FOUND);
	t.valid_until = t.valid_from;
	assert_int_equal(db->ops->ticket_issue(db, "T4", &t, &ap2), TB_E_INVAL);
	assert_int_equal(db->ops->ticket_get(db, ap.id, &got), 0);
	assert_memory_equal(got.se, SE_A, DB_SERIAL_LEN);
	assert_int_equal(got.uses_left, 3);
	assert_int_equal(got.valid_until, 20);
	assert_int_equal(db->ops->ticket_update(db, ap.id, 0, DB_TICKET_SPENT), 0);
	assert_int_equal(db->ops->ticket_get(db, ap.id, &got), 0);
	assert_int_equal(got.uses_left, 0);
	assert_int_equal(got.state, DB_TICKET_SPENT);
	assert_int_equal(db->ops->ticket_update(db, 9999, 0, DB_TICKET_SPENT), TB_E_DB_NOT_FOUND);
	assert_int_equal(db->ops->ticket_get(db, 9999, &got), TB_E_DB_NOT_FOUND);
	assert_int_equal(db->ops->tickets_of_se(db, SE_A, 0, list, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].id, ap.id);
	assert_int_equal(db->ops->tickets_of_se(db, SE_A, list[0].id, list, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].id, ap2.id);
	assert_int_equal(db->ops->tickets_of_se(db, SE_B, 0, list, 4, &n), 0);
	assert_int_equal(n, 0);
}

static void t_order_ops(void **state)
{
	struct db *db = fx(state);
	struct db_order o, got;
	struct db_applied ap, ap2;

	world(db);
	memset(&o, 0, sizeof(o));
	memcpy(o.se, SE_A, DB_SERIAL_LEN);
	o.service = SVC_SHOP;
	o.total = 505;
	o.state = DB_ORDER_OPEN;
	o.created = 77;
	o.n_items = 2;
	o.items[0] = (struct db_order_item){ 1, 2, 250 };
	o.items[1] = (struct db_order_item){ 7, 1, 5 };
	assert_int_equal(db->ops->order_create(db, "O1", &o, &ap), 0);
	assert_false(ap.replayed);
	assert_int_equal(db->ops->order_create(db, "O1", &o, &ap2), 0);
	assert_true(ap2.replayed);
	assert_int_equal(ap2.id, ap.id);
	o.items[1].qty = 2;
	assert_int_equal(db->ops->order_create(db, "O1", &o, &ap2), TB_E_DB_CONFLICT);
	assert_int_equal(db->ops->order_get(db, ap.id, &got), 0);
	assert_int_equal(got.total, 505);
	assert_int_equal(got.n_items, 2);
	assert_int_equal(got.items[0].qty, 2);
	assert_int_equal(got.items[1].item, 7);
	assert_int_equal(got.created, 77);
	assert_int_equal(db->ops->order_set_state(db, ap.id, DB_ORDER_OPEN, DB_ORDER_PAID), 0);
	assert_int_equal(db->ops->order_set_state(db, ap.id, DB_ORDER_OPEN, DB_ORDER_PAID),
			 TB_E_DB_CONFLICT);
	assert_int_equal(db->ops->order_set_state(db, 9999, DB_ORDER_OPEN, DB_ORDER_PAID),
			 TB_E_DB_NOT_FOUND);
	assert_int_equal(db->ops->order_get(db, ap.id, &got), 0);
	assert_int_equal(got.state, DB_ORDER_PAID);
	o.n_items = 0;
	assert_int_equal(db->ops->order_create(db, "O2", &o, &ap2), TB_E_INVAL);
}

static void t_pauth_ops(void **state)
{
	static const char vis[2][DB_ATTR_NAME_MAX] = { "name", "age_over_18" };
	static const char dup[2][DB_ATTR_NAME_MAX] = { "name", "name" };
	struct db *db = fx(state);
	char names[4][DB_ATTR_NAME_MAX];
	struct db_pauth p, got;
	size_t n;

	world(db);
	memset(&p, 0, sizeof(p));
	memcpy(p.se, SE_A, DB_SERIAL_LEN);
	snprintf(p.identifier, sizeof(p.identifier), "member-0042");
	p.n_attrs = 3;
	snprintf(p.attrs[0].name, DB_ATTR_NAME_MAX, "zip");
	p.attrs[0].len = 5;
	memcpy(p.attrs[0].value, "10115", 5);
	snprintf(p.attrs[1].name, DB_ATTR_NAME_MAX, "name");
	p.attrs[1].len = 3;
	memcpy(p.attrs[1].value, "Ada", 3);
	snprintf(p.attrs[2].name, DB_ATTR_NAME_MAX, "age_over_18");
	p.attrs[2].len = 1;
	p.attrs[2].value[0] = 1;
	assert_int_equal(db->ops->pauth_put(db, &p), 0);
	assert_int_equal(db->ops->pauth_get(db, SE_A, &got), 0);
	assert_string_equal(got.identifier, "member-0042");
	assert_int_equal(got.n_attrs, 3);
	assert_string_equal(got.attrs[0].name, "age_over_18"); /* byte order of names */
	assert_string_equal(got.attrs[1].name, "name");
	assert_int_equal(got.attrs[1].len, 3);
	assert_memory_equal(got.attrs[1].value, "Ada", 3);
	/* Replaced as a whole. */
	p.n_attrs = 1;
	assert_int_equal(db->ops->pauth_put(db, &p), 0);
	assert_int_equal(db->ops->pauth_get(db, SE_A, &got), 0);
	assert_int_equal(got.n_attrs, 1);
	assert_string_equal(got.attrs[0].name, "zip");
	assert_int_equal(db->ops->pauth_get(db, SE_B, &got), TB_E_DB_NOT_FOUND);
	memcpy(p.se, SE_X, DB_SERIAL_LEN);
	assert_int_equal(db->ops->pauth_put(db, &p), TB_E_DB_NOT_FOUND);
	p.n_attrs = 2;
	snprintf(p.attrs[1].name, DB_ATTR_NAME_MAX, "zip");
	assert_int_equal(db->ops->pauth_put(db, &p), TB_E_INVAL);

	assert_int_equal(db->ops->pauth_visible_set(db, 1, vis, 2), 0);
	assert_int_equal(db->ops->pauth_visible_get(db, 1, names, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "age_over_18");
	assert_string_equal(names[1], "name");
	assert_int_equal(db->ops->pauth_visible_get(db, 1, names, 1, &n), TB_E_NOSPACE);
	/* Inside a request too, and the request goes on (no statement left open). */
	assert_int_equal(db_batch_begin(db), 0);
	assert_int_equal(db_req_begin(db), 0);
	assert_int_equal(db->ops->pauth_visible_get(db, 1, names, 1, &n), TB_E_NOSPACE);
	assert_int_equal(db->ops->pauth_visible_get(db, 1, names, 4, &n), 0);
	assert_int_equal(n, 2);
	p.n_attrs = 0;
	memcpy(p.se, SE_B, DB_SERIAL_LEN);
	assert_int_equal(db->ops->pauth_put(db, &p), 0);
	assert_int_equal(db_req_end(db, 1), 0);
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(db->ops->pauth_get(db, SE_B, &got), 0);
	assert_int_equal(got.n_attrs, 0);
	assert_int_equal(db->ops->pauth_visible_get(db, 2, names, 4, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(db->ops->pauth_visible_set(db, 1, dup, 2), TB_E_INVAL);
	assert_int_equal(db->ops->pauth_visible_set(db, 1, vis, 1), 0);
	assert_int_equal(db->ops->pauth_visible_get(db, 1, names, 4, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(names[0], "name");
}

/* -------------------------------------------------------------- vault --- */

static void t_vault_ops(void **state)
{
	static uint8_t big[DB_BLOB_MAX + 1];
	struct db *db = fx(state);
	uint8_t buf[DB_BLOB_MAX];
	uint32_t slots[4];
	uint64_t v;
	size_t n;

	world(db);
	assert_int_equal(db->ops->blob_put(db, SE_A, 1, 1, (const uint8_t *)"abc", 3, 5), 0);
	assert_int_equal(db->ops->blob_get(db, SE_A, 1, &v, buf, sizeof(buf), &n), 0);
	assert_int_equal(v, 1);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "abc", 3);
	assert_int_equal(db->ops->blob_put(db, SE_A, 1, 1, (const uint8_t *)"abc", 3, 6), 0);
	assert_int_equal(db->ops->blob_put(db, SE_A, 1, 1, (const uint8_t *)"abd", 3, 6), TB_E_DB_STALE);
	assert_int_equal(db->ops->blob_put(db, SE_A, 1, 0, (const uint8_t *)"new", 3, 6), TB_E_DB_STALE);
	assert_int_equal(db->ops->blob_put(db, SE_A, 1, 2, (const uint8_t *)"wxyz", 4, 7), 0);
	assert_int_equal(db->ops->blob_get(db, SE_A, 1, &v, buf, sizeof(buf), &n), 0);
	assert_int_equal(v, 2);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "wxyz", 4);
	assert_int_equal(db->ops->blob_get(db, SE_A, 1, &v, buf, 3, &n), TB_E_NOSPACE);
	assert_int_equal(db->ops->blob_get(db, SE_A, 2, &v, buf, sizeof(buf), &n), TB_E_DB_NOT_FOUND);
	memset(big, 0xA5, sizeof(big));
	assert_int_equal(db->ops->blob_put(db, SE_A, 5, 1, big, DB_BLOB_MAX, 8), 0);
	assert_int_equal(db->ops->blob_put(db, SE_A, 6, 1, big, DB_BLOB_MAX + 1, 8), TB_E_INVAL);
	assert_int_equal(db->ops->blob_put(db, SE_A, 7, 1, NULL, 0, 8), 0);
	assert_int_equal(db->ops->blob_get(db, SE_A, 7, &v, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(db->ops->blob_get(db, SE_A, 5, &v, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, DB_BLOB_MAX);
	assert_memory_equal(buf, big, DB_BLOB_MAX);
	assert_int_equal(db->ops->blob_slots(db, SE_A, slots, 4, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(slots[0], 1);
	assert_int_equal(slots[1], 5);
	assert_int_equal(slots[2], 7);
	assert_int_equal(db->ops->blob_put(db, SE_X, 1, 1, (const uint8_t *)"x", 1, 8),
			 TB_E_DB_NOT_FOUND);
}

/* ------------------------------------------------------- the rules --- */

static void t_rule_topup_pay(void **state)
{
	struct db *db = fx(state);
	struct ledger_req rq;
	struct ledger_reply rep;
	struct db_event ev[4];
	size_t n;
	int rc;

	world(db);
	rq = mkreq(SE_A, RDR, SVC_MONEY, 300, 1);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, 0);
	assert_int_equal(rep.balance, 700);
	assert_false(rep.replayed);
	assert_int_equal(balance(db, SE_A), 700);
	rq = mkreq(SE_A, RDR, SVC_MONEY, 50, 2);
	IN_REQ(db, rc, ledger_topup(db, &rq, &rep));
	assert_int_equal(rc, 0);
	assert_int_equal(rep.balance, 750);
	assert_int_equal(db->ops->history_by_reader(db, RDR, 0, ev, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ev[0].kind, DB_EV_TOPUP);
	assert_int_equal(ev[1].kind, DB_EV_PAY);
	assert_int_equal(ev[1].amount, 300);
	assert_int_equal(ev[1].service, SVC_MONEY);
	assert_int_equal(ev[1].time, 2001);
	/* Top-up up to the limit, not past it. */
	rq = mkreq(SE_B, 0, SVC_MONEY, LEDGER_AMOUNT_MAX, 1);
	for (uint32_t i = 0; i < LEDGER_BALANCE_MAX / LEDGER_AMOUNT_MAX; i++) {
		rq = mkreq(SE_B, 0, SVC_MONEY, LEDGER_AMOUNT_MAX, 10 + i);
		IN_REQ(db, rc, ledger_topup(db, &rq, &rep));
		assert_int_equal(rc, 0);
	}
	rq = mkreq(SE_B, 0, SVC_MONEY, 1, 99);
	IN_REQ(db, rc, ledger_topup(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_LIMIT);
	assert_int_equal(balance(db, SE_B), LEDGER_BALANCE_MAX);
	/* A top-up is an e-money service's business only. */
	rq = mkreq(SE_C, 0, SVC_SHOP, 1, 1);
	IN_REQ(db, rc, ledger_topup(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_KIND);
	audit_clean(db, 3 + LEDGER_BALANCE_MAX / LEDGER_AMOUNT_MAX);
}

static void t_rule_no_negative_balance(void **state)
{
	struct db *db = fx(state);
	struct ledger_req rq;
	struct ledger_reply rep;
	int rc;

	world(db);
	rq = mkreq(SE_A, RDR, SVC_MONEY, 1001, 1);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_FUNDS);
	assert_int_equal(balance(db, SE_A), 1000);
	rq = mkreq(SE_A, RDR, SVC_MONEY, 1000, 2); /* exactly all of it */
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, 0);
	assert_int_equal(rep.balance, 0);
	rq = mkreq(SE_A, RDR, SVC_MONEY, 1, 3);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_FUNDS);
	rq = mkreq(SE_C, RDR, SVC_MONEY, 1, 4); /* never topped up */
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_FUNDS);
	assert_int_equal(balance(db, SE_A), 0);
	audit_clean(db, 2);
}

static void t_rule_amount(void **state)
{
	struct db *db = fx(state);
	struct ledger_req rq;
	struct ledger_reply rep;
	int rc;

	world(db);
	rq = mkreq(SE_A, RDR, SVC_MONEY, 0, 1);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_AMOUNT);
	rq = mkreq(SE_A, RDR, SVC_MONEY, LEDGER_AMOUNT_MAX + 1, 2);
	IN_REQ(db, rc, ledger_topup(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_AMOUNT);
	rq.key[0] = '\0';
	rq.amount = 1;
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, TB_E_INVAL);
	audit_clean(db, 1);
}

static void t_rule_idempotent_replay(void **state)
{
	struct db *db = fx(state);
	struct ledger_req rq, other;
	struct ledger_reply rep, rep2;
	struct db_event ev[8];
	size_t n;
	int rc;

	world(db);
	rq = mkreq(SE_A, RDR, SVC_MONEY, 400, 1);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, 0);
	/* Again in another batch: the first answer, the money moved once. */
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep2));
	assert_int_equal(rc, 0);
	assert_true(rep2.replayed);
	assert_int_equal(rep2.transfer_id, rep.transfer_id);
	assert_int_equal(rep2.balance, 600);
	assert_int_equal(balance(db, SE_A), 600);
	/* Twice in one batch. */
	other = mkreq(SE_A, RDR, SVC_MONEY, 100, 2);
	assert_int_equal(db_batch_begin(db), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(db_req_begin(db), 0);
		assert_int_equal(ledger_pay(db, &other, &rep2), 0);
		assert_int_equal(rep2.replayed, i);
		assert_int_equal(rep2.balance, 500);
		assert_int_equal(db_req_end(db, 1), 0);
	}
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(balance(db, SE_A), 500);
	/* The rules would refuse it now (balance, lock), the replay still answers. */
	rq.amount = 400;
	IN_REQ(db, rc, srv_se_lock(db, SE_A, RDR, 3000));
	assert_int_equal(rc, 0);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep2));
	assert_int_equal(rc, 0);
	assert_true(rep2.replayed);
	assert_int_equal(rep2.balance, 600);
	/* The same key with other content: a conflict, nothing moves. */
	IN_REQ(db, rc, srv_se_unlock(db, SE_A, RDR, 3001));
	assert_int_equal(rc, 0);
	rq.amount = 401;
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep2));
	assert_int_equal(rc, TB_E_DB_CONFLICT);
	rq.amount = 400;
	rq.time++;
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep2));
	assert_int_equal(rc, TB_E_DB_CONFLICT);
	rq = mkreq(SE_A, RDR, SVC_MONEY, 400, 1); /* a top-up under a payment's key */
	IN_REQ(db, rc, ledger_topup(db, &rq, &rep2));
	assert_int_equal(rc, TB_E_DB_CONFLICT);
	assert_int_equal(balance(db, SE_A), 500);
	assert_int_equal(db->ops->history_by_se(db, SE_A, 0, ev, 8, &n), 0);
	assert_int_equal(n, 5); /* top-up, 2 payments, lock, unlock: no replays */
	audit_clean(db, 3);
}

static void t_rule_unknown_reader(void **state)
{
	struct db *db = fx(state);
	struct ledger_req rq;
	struct ledger_reply rep;
	uint64_t dv;
	uint32_t left;
	int rc, rp;

	world(db);
	rq = mkreq(SE_A, RDR_UNKNOWN, SVC_MONEY, 10, 1);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_UNKNOWN_READER);
	IN_REQ(db, rc, ledger_topup(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_UNKNOWN_READER);
	rq = mkreq(SE_A, RDR_REVOKED, SVC_MONEY, 10, 2);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_READER_REVOKED);
	IN_REQ(db, rc, srv_reader_contact(db, RDR_UNKNOWN, 1, 50, &dv));
	assert_int_equal(rc, TB_E_SRV_UNKNOWN_READER);
	IN_REQ(db, rc, srv_ticket_use(db, "R:0000004D:00000001", RDR_UNKNOWN, 1, 50, &left, &rp));
	assert_int_equal(rc, TB_E_SRV_UNKNOWN_READER);
	IN_REQ(db, rc, srv_se_lock(db, SE_A, RDR_UNKNOWN, 50));
	assert_int_equal(rc, TB_E_SRV_UNKNOWN_READER);
	assert_int_equal(balance(db, SE_A), 1000);
	audit_clean(db, 1);
}

static void t_rule_unknown_se_service(void **state)
{
	struct db *db = fx(state);
	struct ledger_req rq;
	struct ledger_reply rep;
	int rc;

	world(db);
	rq = mkreq(SE_X, RDR, SVC_MONEY, 10, 1);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_UNKNOWN_SE);
	rq = mkreq(SE_A, RDR, SVC_UNKNOWN, 10, 2);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_UNKNOWN_SERVICE);
	rq = mkreq(SE_A, RDR, SVC_PAUTH, 10, 3); /* nothing to pay at a door */
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_KIND);
	IN_REQ(db, rc, srv_se_register(db, SE_A, 5));
	assert_int_equal(rc, TB_E_DB_EXISTS);
	audit_clean(db, 1);
}

static void t_rule_locked_wallet(void **state)
{
	struct db *db = fx(state);
	struct srv_ticket_req tr;
	struct ledger_req rq;
	struct ledger_reply rep;
	struct db_applied ap;
	uint8_t deny[4][DB_SERIAL_LEN];
	uint64_t v0, v1;
	uint32_t left;
	size_t n;
	int rc, rp;

	world(db);
	memset(&tr, 0, sizeof(tr));
	snprintf(tr.key, sizeof(tr.key), "ticket-1");
	memcpy(tr.se, SE_A, DB_SERIAL_LEN);
	tr.service = SVC_TICKET;
	tr.valid_from = 100;
	tr.valid_until = 200;
	tr.uses = 5;
	IN_REQ(db, rc, srv_ticket_issue(db, &tr, &ap));
	assert_int_equal(rc, 0);
	assert_int_equal(db->ops->deny_list(db, NULL, deny, 4, &n, &v0), 0);
	IN_REQ(db, rc, srv_se_lock(db, SE_A, RDR, 150));
	assert_int_equal(rc, 0);
	assert_int_equal(db->ops->deny_list(db, NULL, deny, 4, &n, &v1), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(deny[0], SE_A, DB_SERIAL_LEN);
	assert_true(v1 > v0);
	rq = mkreq(SE_A, RDR, SVC_MONEY, 10, 1);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_LOCKED);
	rq = mkreq(SE_A, RDR, SVC_MONEY, 10, 2);
	IN_REQ(db, rc, ledger_topup(db, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_LOCKED);
	IN_REQ(db, rc, srv_ticket_use(db, "R:00000001:00000003", RDR, ap.id, 150, &left, &rp));
	assert_int_equal(rc, TB_E_SRV_LOCKED);
	snprintf(tr.key, sizeof(tr.key), "ticket-2");
	IN_REQ(db, rc, srv_ticket_issue(db, &tr, &ap));
	assert_int_equal(rc, TB_E_SRV_LOCKED);
	IN_REQ(db, rc, srv_vault_put(db, SE_A, 1, 1, (const uint8_t *)"x", 1, 150));
	assert_int_equal(rc, TB_E_SRV_LOCKED);
	IN_REQ(db, rc, srv_se_lock(db, SE_A, RDR, 151)); /* again: nothing changes */
	assert_int_equal(rc, 0);
	IN_REQ(db, rc, srv_se_unlock(db, SE_A, RDR, 152));
	assert_int_equal(rc, 0);
	rq = mkreq(SE_A, RDR, SVC_MONEY, 10, 4);
	IN_REQ(db, rc, ledger_pay(db, &rq, &rep));
	assert_int_equal(rc, 0);
	assert_int_equal(rep.balance, 990);
	assert_int_equal(db->ops->deny_list(db, NULL, deny, 4, &n, &v1), 0);
	assert_int_equal(n, 0);
	audit_clean(db, 2);
}

static void t_rule_tickets(void **state)
{
	struct db *db = fx(state);
	struct srv_ticket_req tr;
	struct db_applied ap, ap2;
	struct db_ticket t;
	struct db_event ev;
	uint32_t left = 0;
	int rc, rp = -1;

	world(db);
	memset(&tr, 0, sizeof(tr));
	snprintf(tr.key, sizeof(tr.key), "S:100000000000000A:00000002");
	memcpy(tr.se, SE_A, DB_SERIAL_LEN);
	tr.service = SVC_TICKET;
	tr.valid_from = 100;
	tr.valid_until = 200;
	tr.uses = 2;
	tr.now = 90;
	IN_REQ(db, rc, srv_ticket_issue(db, &tr, &ap));
	assert_int_equal(rc, 0);
	IN_REQ(db, rc, srv_ticket_issue(db, &tr, &ap2));
	assert_int_equal(rc, 0);
	assert_true(ap2.replayed);
	tr.service = SVC_MONEY;
	snprintf(tr.key, sizeof(tr.key), "other");
	IN_REQ(db, rc, srv_ticket_issue(db, &tr, &ap2));
	assert_int_equal(rc, TB_E_SRV_KIND);

	/* Not yet valid, then valid, then used up. */
	IN_REQ(db, rc, srv_ticket_use(db, "R:00000001:00000001", RDR, ap.id, 99, &left, &rp));
	assert_int_equal(rc, TB_E_SRV_EXPIRED);
	IN_REQ(db, rc, srv_ticket_use(db, "R:00000001:00000002", RDR, ap.id, 100, &left, &rp));
	assert_int_equal(rc, 0);
	assert_int_equal(left, 1);
	assert_false(rp);
	/* The reader sends the same record again: replayed, no second use. */
	IN_REQ(db, rc, srv_ticket_use(db, "R:00000001:00000002", RDR, ap.id, 120, &left, &rp));
	assert_int_equal(rc, 0);
	assert_true(rp);
	assert_int_equal(left, 1);
	IN_REQ(db, rc, srv_ticket_use(db, "R:00000001:00000002", RDR, ap.id + 1, 120, &left, &rp));
	assert_int_equal(rc, TB_E_DB_CONFLICT);
	IN_REQ(db, rc, srv_ticket_use(db, "R:00000001:00000003", RDR, ap.id, 199, &left, &rp));
	assert_int_equal(rc, 0);
	assert_int_equal(left, 0);
	IN_REQ(db, rc, srv_ticket_use(db, "R:00000001:00000004", RDR, ap.id, 150, &left, &rp));
	assert_int_equal(rc, TB_E_SRV_USED);
	assert_int_equal(db->ops->ticket_get(db, ap.id, &t), 0);
	assert_int_equal(t.state, DB_TICKET_SPENT);
	assert_int_equal(db->ops->history_find(db, "R:00000001:00000003", &ev), 0);
	assert_int_equal(ev.kind, DB_EV_TICKET_USE);
	assert_int_equal(ev.ref, ap.id);

	/* Expired: at valid_until and after. */
	snprintf(tr.key, sizeof(tr.key), "second");
	tr.service = SVC_TICKET;
	IN_REQ(db, rc, srv_ticket_issue(db, &tr, &ap));
	assert_int_equal(rc, 0);
	IN_REQ(db, rc, srv_ticket_use(db, "R:00000001:00000005", RDR, ap.id, 200, &left, &rp));
	assert_int_equal(rc, TB_E_SRV_EXPIRED);
	IN_REQ(db, rc, srv_ticket_use(db, "R:00000001:00000006", RDR, ap.id, 5000, &left, &rp));
	assert_int_equal(rc, TB_E_SRV_EXPIRED);
	assert_int_equal(db->ops->ticket_get(db, ap.id, &t), 0);
	assert_int_equal(t.uses_left, 2);
	assert_int_equal(db->ops->ticket_update(db, ap.id, 2, DB_TICKET_REVOKED), 0);
	IN_REQ(db, rc, srv_ticket_use(db, "R:00000001:00000007", RDR, ap.id, 150, &left, &rp));
	assert_int_equal(rc, TB_E_SRV_USED);
	IN_REQ(db, rc, srv_ticket_use(db, "R:00000001:00000008", RDR, 9999, 150, &left, &rp));
	assert_int_equal(rc, TB_E_SRV_UNKNOWN_TICKET);
}

static void t_rule_refund(void **state)
{
	struct db *db = fx(state);
	struct ledger_req pay, rf;
	struct ledger_reply rep;
	int rc;

	world(db);
	pay = mkreq(SE_A, RDR, SVC_MONEY, 300, 1);
	IN_REQ(db, rc, ledger_pay(db, &pay, &rep));
	assert_int_equal(rc, 0);
	rf = mkreq(SE_A, RDR, SVC_MONEY, 200, 2);
	IN_REQ(db, rc, ledger_refund(db, &rf, pay.key, &rep));
	assert_int_equal(rc, 0);
	assert_int_equal(rep.balance, 900);
	IN_REQ(db, rc, ledger_refund(db, &rf, pay.key, &rep)); /* replay */
	assert_int_equal(rc, 0);
	assert_true(rep.replayed);
	rf = mkreq(SE_A, RDR, SVC_MONEY, 101, 3);
	IN_REQ(db, rc, ledger_refund(db, &rf, pay.key, &rep)); /* 200 + 101 > 300 */
	assert_int_equal(rc, TB_E_SRV_REFUND);
	rf = mkreq(SE_B, RDR, SVC_MONEY, 10, 4); /* not B's payment */
	IN_REQ(db, rc, ledger_refund(db, &rf, pay.key, &rep));
	assert_int_equal(rc, TB_E_SRV_REFUND);
	rf = mkreq(SE_A, RDR, SVC_MONEY, 10, 5); /* a top-up is no payment */
	IN_REQ(db, rc, ledger_refund(db, &rf, "S:100000000000000A:00000001", &rep));
	assert_int_equal(rc, TB_E_SRV_REFUND);
	IN_REQ(db, rc, ledger_refund(db, &rf, "nothing", &rep));
	assert_int_equal(rc, TB_E_SRV_REFUND);
	/* Into a locked wallet: yes. */
	IN_REQ(db, rc, srv_se_lock(db, SE_A, 0, 10));
	assert_int_equal(rc, 0);
	rf = mkreq(SE_A, RDR, SVC_MONEY, 100, 6);
	IN_REQ(db, rc, ledger_refund(db, &rf, pay.key, &rep));
	assert_int_equal(rc, 0);
	assert_int_equal(balance(db, SE_A), 1000);
	audit_clean(db, 4);
}

static void t_rule_lost_replaced(void **state)
{
	struct db *db = fx(state);
	struct ledger_reply moved, again;
	struct ledger_req rq;
	struct db_event ev[4];
	uint8_t buf[16];
	uint64_t v;
	size_t n;
	int rc;

	world(db);
	IN_REQ(db, rc, srv_vault_put(db, SE_A, 3, 7, (const uint8_t *)"purse+tickets", 13, 50));
	assert_int_equal(rc, 0);
	IN_REQ(db, rc, srv_se_lost(db, SE_A, SE_A, 60, &moved));
	assert_int_equal(rc, TB_E_INVAL);
	IN_REQ(db, rc, srv_se_lost(db, SE_A, SE_X, 60, &moved));
	assert_int_equal(rc, TB_E_SRV_UNKNOWN_SE);
	IN_REQ(db, rc, srv_se_lost(db, SE_A, SE_B, 60, &moved));
	assert_int_equal(rc, 0);
	assert_true(moved.transfer_id != 0);
	assert_int_equal(moved.balance, 1000);
	assert_int_equal(balance(db, SE_A), 0);
	assert_int_equal(balance(db, SE_B), 1000);
	IN_REQ(db, rc, srv_se_lost(db, SE_A, SE_B, 61, &again)); /* replay */
	assert_int_equal(rc, 0);
	assert_true(again.replayed);
	assert_int_equal(again.transfer_id, moved.transfer_id);
	IN_REQ(db, rc, srv_se_lost(db, SE_A, SE_C, 62, &again));
	assert_int_equal(rc, TB_E_SRV_STATE);
	/* The lost one is refused everywhere, its replacement restores its vault. */
	rq = mkreq(SE_A, RDR, SVC_MONEY, 1, 1);
	IN_REQ(db, rc, ledger_pay(db, &rq, &again));
	assert_int_equal(rc, TB_E_SRV_LOST);
	IN_REQ(db, rc, srv_se_unlock(db, SE_A, 0, 63));
	assert_int_equal(rc, TB_E_SRV_LOST);
	IN_REQ(db, rc, srv_vault_put(db, SE_A, 3, 8, (const uint8_t *)"thief", 5, 64));
	assert_int_equal(rc, TB_E_SRV_LOST);
	IN_REQ(db, rc, srv_vault_get(db, SE_B, SE_A, 3, &v, buf, sizeof(buf), &n));
	assert_int_equal(rc, 0);
	assert_int_equal(v, 7);
	assert_int_equal(n, 13);
	assert_memory_equal(buf, "purse+tickets", 13);
	IN_REQ(db, rc, srv_vault_get(db, SE_C, SE_A, 3, &v, buf, sizeof(buf), &n));
	assert_int_equal(rc, TB_E_SRV_NOT_OWNER);
	IN_REQ(db, rc, srv_vault_get(db, SE_A, SE_A, 3, &v, buf, sizeof(buf), &n));
	assert_int_equal(rc, TB_E_SRV_LOST);
	IN_REQ(db, rc, srv_vault_get(db, SE_C, SE_C, 3, &v, buf, sizeof(buf), &n));
	assert_int_equal(rc, TB_E_DB_NOT_FOUND);
	assert_int_equal(db->ops->history_by_se(db, SE_A, 0, ev, 4, &n), 0);
	assert_int_equal(n, 3); /* top-up, lost, the money leaving */
	assert_int_equal(ev[0].kind, DB_EV_MOVE);
	assert_int_equal(ev[0].amount, -1000);
	assert_int_equal(ev[1].kind, DB_EV_LOST);
	audit_clean(db, 2);
}

static void t_rule_orders(void **state)
{
	struct db *db = fx(state);
	const struct db_order_item items[] = { { 1, 2, 0 }, { 7, 3, 0 } }, bad[] = { { 4, 1, 0 } };
	struct ledger_req rq;
	struct ledger_reply rep;
	struct db_applied ap;
	struct db_order o;
	uint64_t total = 0;
	int rc;

	world(db);
	IN_REQ(db, rc, srv_order_create(db, "O1", SE_A, SVC_SHOP, items, 2, 70, &ap, &total));
	assert_int_equal(rc, 0);
	assert_int_equal(total, 2 * 250 + 3 * 5);
	IN_REQ(db, rc, srv_order_create(db, "O2", SE_A, SVC_SHOP, bad, 1, 70, &ap, &total));
	assert_int_equal(rc, TB_E_SRV_ITEM);
	IN_REQ(db, rc, srv_order_create(db, "O3", SE_A, SVC_MONEY, items, 2, 70, &ap, &total));
	assert_int_equal(rc, TB_E_SRV_KIND);
	IN_REQ(db, rc, srv_order_create(db, "O1", SE_A, SVC_SHOP, items, 2, 70, &ap, &total));
	assert_int_equal(rc, 0);
	assert_true(ap.replayed);
	rq = mkreq(SE_A, RDR, SVC_SHOP, 514, 1);
	IN_REQ(db, rc, srv_order_pay(db, ap.id, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_AMOUNT);
	rq = mkreq(SE_B, RDR, SVC_SHOP, 515, 2);
	IN_REQ(db, rc, srv_order_pay(db, ap.id, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_STATE);
	rq = mkreq(SE_A, RDR, SVC_SHOP, 515, 3);
	IN_REQ(db, rc, srv_order_pay(db, ap.id, &rq, &rep));
	assert_int_equal(rc, 0);
	assert_int_equal(rep.balance, 485);
	IN_REQ(db, rc, srv_order_pay(db, ap.id, &rq, &rep)); /* replay */
	assert_int_equal(rc, 0);
	assert_true(rep.replayed);
	rq = mkreq(SE_A, RDR, SVC_SHOP, 515, 4); /* paid already: not twice */
	IN_REQ(db, rc, srv_order_pay(db, ap.id, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_STATE);
	IN_REQ(db, rc, srv_order_pay(db, 9999, &rq, &rep));
	assert_int_equal(rc, TB_E_SRV_UNKNOWN_ORDER);
	assert_int_equal(db->ops->order_get(db, ap.id, &o), 0);
	assert_int_equal(o.state, DB_ORDER_PAID);
	assert_int_equal(balance(db, SE_A), 485);
	audit_clean(db, 2);
}

static void t_rule_pauth_view(void **state)
{
	static const char vis1[2][DB_ATTR_NAME_MAX] = { "name", "age_over_18" };
	static const char vis2[1][DB_ATTR_NAME_MAX] = { "age_over_18" };
	struct db *db = fx(state);
	struct db_pauth p, view;
	int rc;

	world(db);
	memset(&p, 0, sizeof(p));
	memcpy(p.se, SE_A, DB_SERIAL_LEN);
	snprintf(p.identifier, sizeof(p.identifier), "member-7");
	p.n_attrs = 3;
	snprintf(p.attrs[0].name, DB_ATTR_NAME_MAX, "name");
	p.attrs[0].len = 3;
	memcpy(p.attrs[0].value, "Ada", 3);
	snprintf(p.attrs[1].name, DB_ATTR_NAME_MAX, "age_over_18");
	p.attrs[1].len = 1;
	p.attrs[1].value[0] = 1;
	snprintf(p.attrs[2].name, DB_ATTR_NAME_MAX, "address");
	p.attrs[2].len = 4;
	memcpy(p.attrs[2].value, "Home", 4);
	assert_int_equal(db->ops->pauth_put(db, &p), 0);
	assert_int_equal(db->ops->pauth_visible_set(db, 1, vis1, 2), 0);
	assert_int_equal(db->ops->pauth_visible_set(db, 2, vis2, 1), 0);
	IN_REQ(db, rc, srv_pauth_view(db, SE_A, RDR, 80, &view));
	assert_int_equal(rc, 0);
	assert_int_equal(view.n_attrs, 2);
	assert_string_equal(view.attrs[0].name, "age_over_18");
	assert_string_equal(view.attrs[1].name, "name");
	assert_string_equal(view.attrs[2].name, ""); /* wiped, not just hidden */
	IN_REQ(db, rc, srv_pauth_view(db, SE_A, RDR_CLASS2, 80, &view));
	assert_int_equal(rc, 0);
	assert_int_equal(view.n_attrs, 1);
	assert_string_equal(view.attrs[0].name, "age_over_18");
	IN_REQ(db, rc, srv_pauth_view(db, SE_A, RDR_UNKNOWN, 80, &view));
	assert_int_equal(rc, TB_E_SRV_UNKNOWN_READER);
	IN_REQ(db, rc, srv_pauth_view(db, SE_B, RDR, 80, &view));
	assert_int_equal(rc, TB_E_DB_NOT_FOUND);
	IN_REQ(db, rc, srv_se_lock(db, SE_A, 0, 81));
	assert_int_equal(rc, 0);
	IN_REQ(db, rc, srv_pauth_view(db, SE_A, RDR, 82, &view));
	assert_int_equal(rc, TB_E_SRV_LOCKED);
}

static void t_rule_reader_contact(void **state)
{
	struct db *db = fx(state);
	struct db_reader r;
	uint64_t v0 = 0, v1 = 0;
	int rc;

	world(db);
	IN_REQ(db, rc, srv_reader_contact(db, RDR, 2, 500, &v0));
	assert_int_equal(rc, 0);
	assert_int_equal(db->ops->reader_get(db, RDR, &r), 0);
	assert_int_equal(r.key_version, 2);
	assert_int_equal(r.last_contact, 500);
	IN_REQ(db, rc, srv_reader_contact(db, RDR, 1, 600, &v1));
	assert_int_equal(rc, TB_E_SRV_KEY_VERSION);
	IN_REQ(db, rc, srv_reader_contact(db, RDR_REVOKED, 1, 600, &v1));
	assert_int_equal(rc, TB_E_SRV_READER_REVOKED);
	IN_REQ(db, rc, srv_se_lock(db, SE_B, 0, 601));
	assert_int_equal(rc, 0);
	IN_REQ(db, rc, srv_reader_contact(db, RDR, 2, 602, &v1));
	assert_int_equal(rc, 0);
	assert_true(v1 > v0); /* the reader knows to fetch the deny list */
}

static void t_keys(void **state)
{
	char key[DB_KEY_MAX], name[DB_NAME_MAX];

	(void)fx(state);
	assert_int_equal(ledger_key_reader(42, 7, key), 0);
	assert_string_equal(key, "R:0000002A:00000007");
	assert_int_equal(ledger_key_reader(UINT32_MAX, UINT32_MAX, key), 0);
	assert_string_equal(key, "R:FFFFFFFF:FFFFFFFF");
	assert_int_equal(ledger_key_se(SE_A, 0x01020304, key), 0);
	assert_string_equal(key, "S:100000000000000A:01020304");
	assert_int_equal(ledger_key_move(SE_B, key), 0);
	assert_string_equal(key, "M:100000000000000B");
	assert_int_equal(ledger_name_purse(SE_C, name), 0);
	assert_string_equal(name, "P:100000000000000C");
	assert_int_equal(ledger_name_revenue(30, name), 0);
	assert_string_equal(name, "V:0000001E");
}

/* ------------------------------------------------------------- groups --- */

static int grp_sqlite(void **state)
{
	char dir[4096];

	(void)state;
	if (pg_rig_work_dir(dir, sizeof(dir)) != 0)
		return -1;
	snprintf(sqlite_path, sizeof(sqlite_path), "%s/test_db.sqlite", dir);
	snprintf(sqlite_url, sizeof(sqlite_url), "sqlite:%s", sqlite_path);
	cur_url = sqlite_url;
	return 0;
}

static int grp_sqlite_down(void **state)
{
	(void)state;
	fresh_sqlite();
	cur_url = NULL;
	return 0;
}

static int grp_pg(void **state)
{
	int rc;

	(void)state;
	cur_url = NULL;
	rc = pg_rig_group_start("test_db", "55432", pg_url, sizeof(pg_url));
	if (rc < 0)
		return -1;
	if (rc == 0)
		cur_url = pg_url;
	return 0;
}

static int grp_pg_down(void **state)
{
	(void)state;
	cur_url = NULL;
	pg_rig_stop();
	return 0;
}

static void on_fatal_signal(int sig)
{
	static const char msg[] = "test_db: watchdog or signal: stopping the PostgreSQL rig\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	pg_rig_stop();
	_exit(1);
}

#define T(f) cmocka_unit_test_setup_teardown(f, t_setup, t_teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(t_migrations_embedded), T(t_reopen), T(t_durability_settings), T(t_open_urls), T(t_struct_sizes),
		T(t_keys), T(t_se_ops), T(t_reader_ops), T(t_service_ops), T(t_accounts),
		T(t_transfer_replay_conflict), T(t_transfer_legs_refunds),
		T(t_constraint_no_negative), T(t_constraint_sum_zero), T(t_batch_states),
		T(t_batch_savepoint_isolation), T(t_history_paging), T(t_ticket_ops),
		T(t_order_ops), T(t_pauth_ops), T(t_vault_ops), T(t_rule_topup_pay),
		T(t_rule_no_negative_balance), T(t_rule_amount), T(t_rule_idempotent_replay),
		T(t_rule_unknown_reader), T(t_rule_unknown_se_service), T(t_rule_locked_wallet),
		T(t_rule_tickets), T(t_rule_refund), T(t_rule_lost_replaced), T(t_rule_orders),
		T(t_rule_pauth_view), T(t_rule_reader_contact),
	};
	struct sigaction sa;
	int failed = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	alarm(110); /* below ctest's 120 s, so the cluster is stopped by us */
	atexit(pg_rig_stop);
	failed += cmocka_run_group_tests_name("db_sqlite", tests, grp_sqlite, grp_sqlite_down);
	failed += cmocka_run_group_tests_name("db_postgresql", tests, grp_pg, grp_pg_down);
	return failed;
}
