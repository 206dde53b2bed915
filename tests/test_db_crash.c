/* test_db_crash.c - durability before confirmation, against SQLite and a real PostgreSQL:
 * a child process applies payments and top-ups in group-commit batches and writes each
 * idempotency key to a pipe only after db_batch_commit() returned; the parent SIGKILLs
 * it at a random moment, reopens the database and checks that every key it was told
 * about is in the ledger (once: the key is UNIQUE), that the ledger still balances, and
 * that a client retrying its unconfirmed records gets each applied exactly once.
 * Bounded: ROUNDS kills per back end, each after at most KILL_MAX_MS. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/db_io.h"
#include "lib/err.h"
#include "pg_rig.h"
#include "server/db.h"
#include "server/ledger.h"
#include "server/rules.h"
#include "vec.h"

#define ROUNDS 6
#define KILL_MIN_MS 40
#define KILL_MAX_MS 400
#define SES 4
#define KEYS_MAX 200000
#define RETRY_WINDOW 40 /* records a client may have sent but not seen confirmed */
#define READER 1
#define SERVICE 10

static const char *cur_url;
static char sqlite_path[4200];
static char sqlite_url[4300];
static char pg_url[512];
static uint32_t printed[KEYS_MAX];
static size_t n_printed;

static void se_of(uint32_t i, uint8_t se[DB_SERIAL_LEN])
{
	memset(se, 0, DB_SERIAL_LEN);
	se[0] = 0xC0;
	se[7] = (uint8_t)i;
}

/* Record seq, the same every time it is built: what a reader's outbox would resend. */
static int record(struct db *db, uint32_t seq, struct ledger_reply *rep)
{
	struct ledger_req rq;

	memset(&rq, 0, sizeof(rq));
	se_of(seq % SES, rq.se);
	rq.reader = READER;
	rq.service = SERVICE;
	rq.amount = 1 + seq % 5;
	rq.time = seq;
	rq.now = seq;
	if (ledger_key_reader(READER, seq, rq.key) != 0)
		return TB_E_INTERNAL;
	return seq % 3 == 0 ? ledger_pay(db, &rq, rep) : ledger_topup(db, &rq, rep);
}

static int setup_world(struct db *db)
{
	struct db_reader r = { READER, 1, 1, DB_READER_ACTIVE, 0 };
	struct db_service sv = { .id = SERVICE, .kind = DB_SVC_EMONEY, .name = "cafe" };
	int rc = db->ops->reader_add(db, &r);

	if (rc == 0)
		rc = db->ops->service_add(db, &sv);
	for (uint32_t i = 0; rc == 0 && i < SES; i++) {
		uint8_t se[DB_SERIAL_LEN];

		se_of(i, se);
		rc = db_batch_begin(db);
		if (rc == 0)
			rc = db_req_begin(db);
		if (rc == 0)
			rc = srv_se_register(db, se, 0);
		if (rc == 0)
			rc = db_req_end(db, 1);
		if (rc == 0)
			rc = db_batch_commit(db);
	}
	return rc;
}

/* ------------------------------------------------------------ the child --- */

static void write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			_exit(3);
		p += w;
		n -= (size_t)w;
	}
}

/* Batches of 1..32 records; a payment refused for funds is a refusal, not a crash. */
static void child(int fd, uint32_t seq, unsigned seed)
{
	struct db *db;
	char line[32];

	pg_rig_up = 0; /* the parent's cluster: not ours to stop */
	if (db_open(cur_url, &db) != 0)
		_exit(2);
	srand(seed);
	for (;;) {
		uint32_t first = seq, count = 1 + (uint32_t)(rand() % 32);
		int ok[32];

		if (db_batch_begin(db) != 0)
			_exit(4);
		for (uint32_t i = 0; i < count; i++, seq++) {
			struct ledger_reply rep;
			int rc;

			if (db_req_begin(db) != 0)
				_exit(5);
			rc = record(db, seq, &rep);
			ok[i] = rc == 0;
			if (rc != 0 && rc != TB_E_SRV_FUNDS)
				_exit(6);
			if (db_req_end(db, rc == 0) != 0)
				_exit(7);
		}
		if (db_batch_commit(db) != 0)
			_exit(8);
		/* Durable now: only now may the confirmations leave. */
		for (uint32_t i = 0; i < count; i++) {
			if (!ok[i])
				continue;
			int n = snprintf(line, sizeof(line), "%u\n", first + i);

			write_all(fd, line, (size_t)n);
		}
	}
}

/* ------------------------------------------------------------ the parent --- */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads "seq\n" lines until the deadline, then kills; then drains what is left. */
static void collect(int fd, pid_t pid, int kill_ms)
{
	int64_t deadline = now_ms() + kill_ms;
	char buf[4096], partial[32];
	size_t plen = 0;
	int killed = 0;

	for (;;) {
		struct pollfd p = { fd, POLLIN, 0 };
		int wait = killed ? 1000 : (int)(deadline - now_ms());
		ssize_t r;

		if (!killed && wait <= 0) {
			kill(pid, SIGKILL);
			killed = 1;
			continue;
		}
		if (poll(&p, 1, wait) == 0)
			continue;
		r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break; /* the child is gone and the pipe is empty */
		for (ssize_t i = 0; i < r; i++) {
			if (buf[i] != '\n') {
				assert_true(plen < sizeof(partial) - 1);
				partial[plen++] = buf[i];
				continue;
			}
			partial[plen] = '\0';
			plen = 0;
			assert_true(n_printed < KEYS_MAX);
			printed[n_printed++] = (uint32_t)strtoul(partial, NULL, 10);
		}
	}
	assert_int_equal(plen, 0); /* lines are written whole */
}

static void check_after_crash(uint32_t round_first, uint32_t round_end_hint)
{
	struct db *db;
	struct db_audit a;
	struct db_applied ap;
	char key[DB_KEY_MAX];

	if (db_open(cur_url, &db) != 0)
		fail_msg("reopen after the crash: %s", db_open_error());
	for (size_t i = 0; i < n_printed; i++) {
		assert_int_equal(ledger_key_reader(READER, printed[i], key), 0);
		if (db->ops->transfer_get(db, key, NULL, &ap) != 0)
			fail_msg("confirmed record %s is not in the ledger", key);
	}
	/* The client resends what it sent but never saw confirmed: each is applied once,
	 * whether the crash came before or after its commit. */
	assert_int_equal(db_batch_begin(db), 0);
	for (uint32_t seq = round_first; seq < round_end_hint + RETRY_WINDOW; seq++) {
		struct ledger_reply rep;
		int rc;

		assert_int_equal(db_req_begin(db), 0);
		rc = record(db, seq, &rep);
		if (rc != 0 && rc != TB_E_SRV_FUNDS)
			fail_msg("retry of %u: %s", seq, tb_errname(rc));
		assert_int_equal(db_req_end(db, rc == 0), 0);
	}
	assert_int_equal(db_batch_commit(db), 0);
	assert_int_equal(db->ops->ledger_audit(db, &a), 0);
	assert_int_equal(a.postings, 2 * a.transfers);
	assert_int_equal(a.postings_sum, 0);
	assert_int_equal(a.unbalanced_transfers, 0);
	assert_int_equal(a.short_transfers, 0);
	assert_int_equal(a.balance_mismatches, 0);
	assert_int_equal(a.negative_purses, 0);
	db_close(db);
}

static void t_crash(void **state)
{
	unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
	size_t total = 0;
	struct db *db;

	(void)state;
	if (cur_url == NULL)
		skip();
	if (db_open(cur_url, &db) != 0)
		fail_msg("open: %s", db_open_error());
	assert_int_equal(setup_world(db), 0);
	db_close(db);
	print_message("test_db_crash: seed %u\n", seed);
	srand(seed);
	for (int round = 0; round < ROUNDS; round++) {
		uint32_t first = (uint32_t)round * 1000000u;
		int kill_ms = KILL_MIN_MS + rand() % (KILL_MAX_MS - KILL_MIN_MS);
		uint32_t last = first;
		int fds[2], st;
		pid_t pid;

		assert_int_equal(pipe(fds), 0);
		pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			child(fds[1], first, seed + (unsigned)round);
		}
		close(fds[1]);
		n_printed = 0;
		collect(fds[0], pid, kill_ms);
		close(fds[0]);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL)
			fail_msg("the child ended by itself (status %d): it failed", st);
		for (size_t i = 0; i < n_printed; i++)
			if (printed[i] > last)
				last = printed[i];
		check_after_crash(first, last + 1);
		total += n_printed;
	}
	print_message("test_db_crash: %s: %zu confirmed records over %d kills, all found\n",
		      cur_url == pg_url ? "postgresql" : "sqlite", total, ROUNDS);
	assert_true(total > 0);
}

/* ------------------------------------------------------------- groups --- */

static int grp_sqlite(void **state)
{
	char dir[4096], p[4300];

	(void)state;
	if (pg_rig_work_dir(dir, sizeof(dir)) != 0)
		return -1;
	snprintf(sqlite_path, sizeof(sqlite_path), "%s/test_db_crash.sqlite", dir);
	snprintf(sqlite_url, sizeof(sqlite_url), "sqlite:%s", sqlite_path);
	unlink(sqlite_path);
	snprintf(p, sizeof(p), "%s-wal", sqlite_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", sqlite_path);
	unlink(p);
	cur_url = sqlite_url;
	return 0;
}

static int grp_sqlite_down(void **state)
{
	char p[4300];

	(void)state;
	unlink(sqlite_path);
	snprintf(p, sizeof(p), "%s-wal", sqlite_path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", sqlite_path);
	unlink(p);
	cur_url = NULL;
	return 0;
}

static int grp_pg(void **state)
{
	int rc;

	(void)state;
	cur_url = NULL;
	rc = pg_rig_group_start("test_db_crash", "55632", pg_url, sizeof(pg_url));
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
	static const char msg[] = "test_db_crash: watchdog or signal: stopping the rig\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	pg_rig_stop();
	_exit(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(t_crash) };
	struct sigaction sa;
	int failed = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	alarm(110);
	atexit(pg_rig_stop);
	failed += cmocka_run_group_tests_name("db_crash_sqlite", tests, grp_sqlite, grp_sqlite_down);
	failed += cmocka_run_group_tests_name("db_crash_postgresql", tests, grp_pg, grp_pg_down);
	return failed;
}
