/* test_server_kill.c - durability before confirmation, under SIGKILL: phones (one
 * process per se) top up concurrently while the server is killed at random moments and
 * restarted on the same port. Afterwards every top-up a phone was told about ("topped
 * up 500, balance B": the se's counter is B / 500) is in the ledger under its key
 * S:<serial>:<counter>, no receipt is in twice (the purse's ledger balance is exactly
 * the sum of the receipts found), and the ledger sums to zero. Credits the se applied
 * but the server never committed (killed in between) are booked by the reconciliation
 * of the next top-up (the se's purse is the source of truth): after one more top-up per
 * se, each purse in the ledger equals the se's own balance. */
#include "srv_rig.h"

#define KILL_SE 4
#define KILL_ROUNDS 6
#define KILL_MAX_PER_SE 180u  /* stays below the se's maximum balance (100000) */

static struct srv_rig g_rig;
static char g_conf[KILL_SE][PATH_MAX];

static int setup(void **state)
{
	(void)state;
	rig_setup(&g_rig, KILL_SE);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rig_teardown(&g_rig);
	return 0;
}

/* One phone process: top-ups until the deadline; each confirmation's balance goes to
 * its file, one line each. Exits 0. */
static void phone_proc(int i, int64_t deadline_us)
{
	FILE *f = fopen(g_conf[i], "w");
	unsigned done = 0;

	if (f == NULL)
		_exit(3);
	setvbuf(f, NULL, _IONBF, 0);
	while (sp_now_us() < deadline_us && done < KILL_MAX_PER_SE) {
		struct proto_menu menu;
		struct phone p;
		unsigned bal;

		if (phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[i].link, 3000) != 0) {
			sp_sleep_ms(20);
			continue;
		}
		while (sp_now_us() < deadline_us && done < KILL_MAX_PER_SE &&
		       phone_hello(&p, g_rig.se[i].serial, &menu) == 1) {
			int rc = phone_select(&p, RIG_SVC_TOPUP);

			if (rc != PROTO_NOTICE || sscanf(p.notice, "topped up 500, balance %u", &bal) != 1)
				break;
			fprintf(f, "%u\n", bal);
			done++;
			sp_sleep_ms(10); /* spread the top-ups over the kill rounds */
			/* a new session for the next one: HELLO again on a fresh connection */
			phone_close(&p);
			if (phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[i].link, 3000) != 0)
				break;
		}
		phone_close(&p);
	}
	fclose(f);
	_exit(0);
}

static void test_kill(void **state)
{
	pid_t kids[KILL_SE];
	int64_t start = sp_now_us(), deadline = start + (KILL_ROUNDS + 2) * 400000;
	struct db *db = NULL;
	struct db_audit au;
	unsigned confirmed_total = 0, unrecorded_total = 0, reconciled = 0;
	uint32_t seed = (uint32_t)time(NULL);

	(void)state;
	print_message("seed %u\n", seed);
	srand(seed);
	for (int i = 0; i < KILL_SE; i++) {
		char name[32];

		snprintf(name, sizeof(name), "confirmed%d", i);
		rig_path(&g_rig, g_conf[i], name);
	}
	for (int i = 0; i < KILL_SE; i++) {
		kids[i] = fork();
		assert_true(kids[i] >= 0);
		if (kids[i] == 0)
			phone_proc(i, deadline);
	}
	for (int r = 0; r < KILL_ROUNDS; r++) {
		sp_sleep_ms(100 + (unsigned)(rand() % 250));
		rig_server_kill(&g_rig);
		rig_server_start(&g_rig);
	}
	for (int i = 0; i < KILL_SE; i++) {
		int st;

		assert_int_equal(waitpid(kids[i], &st, 0), kids[i]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	/* One more top-up per se with the server left alone: the reconciliation books what
	 * the kills left unrecorded. */
	for (int i = 0; i < KILL_SE; i++) {
		struct proto_menu menu;
		struct phone p;

		assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[i].link, 10000), 0);
		assert_int_equal(phone_hello(&p, g_rig.se[i].serial, &menu), 1);
		assert_int_equal(phone_select(&p, RIG_SVC_TOPUP), PROTO_NOTICE);
		phone_close(&p);
	}
	assert_int_equal(sp_stop(g_rig.server), 0);
	g_rig.server = -1;

	assert_int_equal(db_open(g_rig.db_url, &db), 0);
	for (int i = 0; i < KILL_SE; i++) {
		FILE *f = fopen(g_conf[i], "r");
		unsigned bal, found = 0, confirmed = 0;
		uint32_t se_counter, se_balance;
		int64_t booked = 0;
		int64_t lbal = -1;
		struct phone p;

		assert_non_null(f);
		while (fscanf(f, "%u", &bal) == 1) {
			struct db_transfer t;
			struct db_applied ap;
			char key[DB_KEY_MAX];

			assert_int_equal(bal % RIG_TOPUP, 0);
			assert_int_equal(ledger_key_se(g_rig.se[i].serial, bal / RIG_TOPUP, key), 0);
			if (db->ops->transfer_get(db, key, &t, &ap) != 0)
				fail_msg("se %d: confirmed top-up %s is not in the ledger", i, key);
			assert_int_equal(t.amount, RIG_TOPUP);
			confirmed++;
		}
		fclose(f);
		assert_int_equal(phone_link_open(&p, g_rig.se[i].link), 0);
		se_balance = rig_se_balance(&p);
		se_counter = se_balance / RIG_TOPUP;
		phone_close(&p);
		for (uint32_t c = 1; c <= se_counter; c++) {
			struct db_transfer t;
			struct db_applied ap;
			char key[DB_KEY_MAX];

			assert_int_equal(ledger_key_se(g_rig.se[i].serial, c, key), 0);
			if (db->ops->transfer_get(db, key, &t, &ap) == 0) {
				found++;
				booked += t.amount;
			}
		}
		assert_int_equal(ledger_balance(db, g_rig.se[i].serial, &lbal), 0);
		/* each receipt once: the purse holds exactly the receipts found, and after the
		 * reconciliation exactly what the se holds */
		assert_int_equal(lbal, booked);
		assert_int_equal(lbal, (int64_t)se_balance);
		assert_true(found >= confirmed + 1);
		assert_true(confirmed > 0);
		confirmed_total += confirmed;
		unrecorded_total += se_counter - found;
		/* receipts in the ledger that no phone saw confirmed (the settle top-up aside) */
		reconciled += found - confirmed - 1;
	}
	assert_int_equal(db->ops->ledger_audit(db, &au), 0);
	assert_int_equal(au.postings_sum, 0);
	assert_int_equal(au.unbalanced_transfers, 0);
	assert_int_equal(au.balance_mismatches, 0);
	assert_int_equal(au.negative_purses, 0);
	db_close(db);
	print_message("%d kills: %u top-ups confirmed, all in the ledger once; %u receipts in "
		      "the ledger that no phone saw confirmed (committed just before a kill, or "
		      "booked by the reconciliation); %u receipt keys without a row of their own "
		      "(merged into a reconciliation)\n", KILL_ROUNDS, confirmed_total, reconciled,
		      unrecorded_total);
	print_message("last run: %s\n", rig_log_has(&g_rig, "srv event=stats") ? "stats logged" : "-");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
