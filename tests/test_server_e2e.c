/* test_server_e2e.c - the whole stack as processes: sam, se behind its IC_I/F link, and
 * `tapbridge server`; a scripted phone opens a pinned TLS session, says HELLO, selects
 * the top-up service, carries the server's SCP03 level-33 session to its se, and is told
 * "topped up 500" only once the ledger holds the receipt; the balance is then read back
 * from the se itself and from the ledger. */
#include "srv_rig.h"

static struct srv_rig g_rig;

static int setup(void **state)
{
	(void)state;
	rig_setup(&g_rig, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rig_teardown(&g_rig);
	return 0;
}

static void ledger_check(const uint8_t serial[8], int64_t want, uint32_t counter)
{
	struct db *db = NULL;
	struct db_audit au;
	struct db_transfer t;
	struct db_applied ap;
	char key[DB_KEY_MAX];
	int64_t bal = -1;

	assert_int_equal(db_open(g_rig.db_url, &db), 0);
	assert_int_equal(ledger_balance(db, serial, &bal), 0);
	assert_int_equal(bal, want);
	assert_int_equal(ledger_key_se(serial, counter, key), 0);
	assert_int_equal(db->ops->transfer_get(db, key, &t, &ap), 0);
	assert_int_equal(t.amount, RIG_TOPUP);
	assert_int_equal(db->ops->ledger_audit(db, &au), 0);
	assert_int_equal(au.postings_sum, 0);
	assert_int_equal(au.unbalanced_transfers, 0);
	assert_int_equal(au.balance_mismatches, 0);
	db_close(db);
}

static void test_topup(void **state)
{
	struct proto_menu menu;
	struct phone p;
	int64_t t0, us;

	(void)state;
	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[0].link, 10000), 0);
	assert_int_equal(phone_hello(&p, g_rig.se[0].serial, &menu), 1);
	assert_int_equal(menu.n, 2);
	assert_int_equal(menu.items[0].id, RIG_SVC_TOPUP);
	assert_int_equal(menu.items[0].kind, DB_SVC_EMONEY);
	assert_int_equal(menu.items[0].state, PROTO_SVC_OFFERED);
	assert_int_equal(menu.items[1].kind, DB_SVC_TICKET);

	t0 = sp_now_us();
	assert_int_equal(phone_select(&p, RIG_SVC_TOPUP), PROTO_NOTICE);
	us = sp_now_us() - t0;
	assert_string_equal(p.notice, "topped up 500, balance 500");
	/* SELECT wallet, INITIALIZE UPDATE, EXTERNAL AUTHENTICATE, CREDIT */
	assert_int_equal(p.apdus, 4);
	print_message("top-up through phone, server, sam and se: %lld us\n", (long long)us);
	ledger_check(g_rig.se[0].serial, 500, 1);

	/* A second one in the same session. */
	t0 = sp_now_us();
	assert_int_equal(phone_select(&p, RIG_SVC_TOPUP), PROTO_NOTICE);
	us = sp_now_us() - t0;
	assert_string_equal(p.notice, "topped up 500, balance 1000");
	print_message("second top-up: %lld us\n", (long long)us);
	ledger_check(g_rig.se[0].serial, 1000, 2);

	/* The history: two top-ups, newest first. */
	{
		struct proto_msg q = { .type = PROTO_HISTORY_REQ }, h;

		q.u.history_req.before = 0;
		q.u.history_req.max = 1;
		assert_int_equal(phone_send(&p, &q), 0);
		assert_int_equal(phone_recv(&p), 1);
		assert_int_equal(p.type, PROTO_HISTORY);
		assert_int_equal(proto_decode(p.type, p.buf, p.n, &h), 0);
		assert_int_equal(h.u.history.n, 1);
		assert_int_equal(h.u.history.more, 1);
		assert_int_equal(h.u.history.recs[0].kind, DB_EV_TOPUP);
		assert_int_equal(h.u.history.recs[0].amount, RIG_TOPUP);
		q.u.history_req.before = h.u.history.recs[0].id;
		q.u.history_req.max = 32;
		assert_int_equal(phone_send(&p, &q), 0);
		assert_int_equal(phone_recv(&p), 1);
		assert_int_equal(proto_decode(p.type, p.buf, p.n, &h), 0);
		assert_int_equal(h.u.history.n, 1);
		assert_int_equal(h.u.history.more, 0);
	}
	/* The se's own balance: the purse is the source of truth. */
	assert_int_equal(rig_se_balance(&p), 1000);
	/* A service with no phone flow yet says so and the session goes on. */
	assert_int_equal(phone_select(&p, RIG_SVC_TICKET), PROTO_NOTICE);
	assert_int_equal(phone_select(&p, 77), PROTO_NOTICE);
	assert_string_equal(p.notice, "no such service");
	phone_close(&p);
}

static void test_unknown_se(void **state)
{
	static const uint8_t other[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct proto_menu menu;
	struct phone p;

	(void)state;
	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, NULL, 10000), 0);
	assert_int_equal(phone_hello(&p, other, &menu), 0);
	assert_int_equal(p.err_code, PROTO_ERR_UNKNOWN_SE);
	phone_close(&p);
}

static void test_stop(void **state)
{
	(void)state;
	assert_int_equal(sp_stop(g_rig.server), 0);
	g_rig.server = -1;
	assert_true(rig_log_has(&g_rig, "srv event=stats batches="));
	assert_false(rig_log_has(&g_rig, "commit_failed=1"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_topup),
		cmocka_unit_test(test_unknown_se),
		cmocka_unit_test(test_stop),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
