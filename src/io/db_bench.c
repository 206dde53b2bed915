/* db_bench.c - the `ledger` benchmark: durable e-money payments through the core rules
 * (ledger_pay), with group commit (one batch per loop turn holding every waiting
 * payer's payment) against one transaction per payment, in the same run, on the same
 * database. Every payment counted was committed before the next turn began. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/err.h"
#include "db_io.h"
#include "server/ledger.h"
#include "server/rules.h"

#define BENCH_PAYERS_MAX 4096
#define BENCH_TOPUP 1000000u
#define BENCH_ROUNDS 3 /* the two ways alternate, so drift of the disk hits both alike */

struct bench {
	struct db *db;
	uint32_t run;     /* reader id, service id and serial prefix of this run */
	uint32_t seq;     /* the reader's record sequence: the idempotency keys */
	int payers;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void payer_serial(const struct bench *b, int i, uint8_t out[DB_SERIAL_LEN])
{
	out[0] = 0xBE;
	out[1] = 0x4C;
	out[2] = (uint8_t)(b->run >> 24);
	out[3] = (uint8_t)(b->run >> 16);
	out[4] = (uint8_t)(b->run >> 8);
	out[5] = (uint8_t)b->run;
	out[6] = (uint8_t)(i >> 8);
	out[7] = (uint8_t)i;
}

/* One payment request of payer i, inside the current batch. */
static int pay_one(struct bench *b, int i)
{
	struct ledger_req rq;
	struct ledger_reply rep;
	int rc;

	memset(&rq, 0, sizeof(rq));
	payer_serial(b, i, rq.se);
	rq.reader = b->run;
	rq.service = b->run;
	rq.amount = 1;
	rq.time = rq.now = (int64_t)time(NULL);
	rc = ledger_key_reader(b->run, b->seq++, rq.key);
	if (rc != 0)
		return rc;
	rc = db_req_begin(b->db);
	if (rc != 0)
		return rc;
	rc = ledger_pay(b->db, &rq, &rep);
	return db_req_end(b->db, rc == 0) != 0 ? TB_E_DB : rc;
}

/* A reader, an e-money service and funded purses of this run's own. */
static int setup(struct bench *b)
{
	struct db_reader r = { .id = b->run, .state = DB_READER_ACTIVE };
	struct db_service sv = { .id = b->run, .kind = DB_SVC_EMONEY, .name = "bench" };
	int rc = b->db->ops->reader_add(b->db, &r);

	if (rc == 0)
		rc = b->db->ops->service_add(b->db, &sv);
	if (rc != 0)
		return rc;
	rc = db_batch_begin(b->db);
	for (int i = 0; rc == 0 && i < b->payers; i++) {
		struct ledger_req rq = { .service = b->run, .amount = BENCH_TOPUP };
		struct ledger_reply rep;

		payer_serial(b, i, rq.se);
		rc = ledger_key_se(rq.se, 0, rq.key);
		if (rc == 0)
			rc = db_req_begin(b->db);
		if (rc == 0)
			rc = srv_se_register(b->db, rq.se, 0);
		if (rc == 0)
			rc = ledger_topup(b->db, &rq, &rep);
		if (db_req_end(b->db, rc == 0) != 0 && rc == 0)
			rc = TB_E_DB;
	}
	if (rc != 0) {
		db_batch_abort(b->db);
		return rc;
	}
	return db_batch_commit(b->db);
}

/* A run id whose reader id is still free in this database. */
static int pick_run(struct bench *b)
{
	uint32_t seed = (uint32_t)time(NULL) * 2654435761u ^ (uint32_t)getpid();

	for (int attempt = 0; attempt < 16; attempt++) {
		struct db_reader r;
		int rc;

		b->run = (seed + (uint32_t)attempt * 0x9E3779B9u) | 1u;
		rc = b->db->ops->reader_get(b->db, b->run, &r);
		if (rc == TB_E_DB_NOT_FOUND)
			return 0;
		if (rc != 0)
			return rc;
	}
	return TB_E_DB_EXISTS;
}

/* Adds what a phase of `seconds` did to *done and its time to *spent. */
static int group_phase(struct bench *b, double seconds, long *done, double *spent)
{
	double t0 = now_s(), t;
	int rc = 0;

	do {
		rc = db_batch_begin(b->db);
		for (int i = 0; rc == 0 && i < b->payers; i++)
			rc = pay_one(b, i);
		if (rc != 0) {
			db_batch_abort(b->db);
			return rc;
		}
		rc = db_batch_commit(b->db);
		if (rc != 0)
			return rc;
		*done += b->payers; /* durable: now the turn's replies may go out */
		t = now_s() - t0;
	} while (t < seconds);
	*spent += t;
	return 0;
}

static int single_phase(struct bench *b, double seconds, long *done, double *spent)
{
	double t0 = now_s(), t;
	int i = 0, rc;

	do {
		rc = db_batch_begin(b->db);
		if (rc == 0)
			rc = pay_one(b, i);
		if (rc != 0) {
			db_batch_abort(b->db);
			return rc;
		}
		rc = db_batch_commit(b->db);
		if (rc != 0)
			return rc;
		(*done)++;
		i = (i + 1) % b->payers;
		t = now_s() - t0;
	} while (t < seconds);
	*spent += t;
	return 0;
}

int db_bench_ledger(const char *url, int payers, double seconds, double *ours_per_s,
		    double *ref_per_s)
{
	struct bench b;
	double t_ours = 0, t_ref = 0;
	long n_ours = 0, n_ref = 0;
	int rc;

	if (payers <= 0 || payers > BENCH_PAYERS_MAX || !(seconds > 0))
		return TB_E_INVAL;
	memset(&b, 0, sizeof(b));
	b.payers = payers;
	rc = db_open(url, &b.db);
	if (rc != 0)
		return rc;
	rc = pick_run(&b);
	if (rc == 0)
		rc = setup(&b);
	for (int r = 0; rc == 0 && r < BENCH_ROUNDS; r++) {
		rc = group_phase(&b, seconds / BENCH_ROUNDS, &n_ours, &t_ours);
		if (rc == 0)
			rc = single_phase(&b, seconds / BENCH_ROUNDS, &n_ref, &t_ref);
	}
	db_close(b.db);
	if (rc == 0) {
		*ours_per_s = (double)n_ours / t_ours;
		*ref_per_s = (double)n_ref / t_ref;
	}
	return rc;
}
