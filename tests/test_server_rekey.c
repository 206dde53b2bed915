/* test_server_rekey.c - re-keying after `rotate`, with the whole stack as processes (sam
 * with --allow-rotate, two ses behind their IC_I/F links, `tapbridge server`): an se
 * personalised before a rotation of the se-server and se-reader families is still topped
 * up through its phone and leaves with both sets at the new versions (its own key
 * information says so), the next top-up opens with the new KVN directly; a second rotation
 * of the se-server family alone re-keys that set only; an se whose version was retired is
 * refused (the sam no longer holds its keys) and the server goes on. */
#include "lib/crypto.h"
#include "srv_rig.h"

static struct srv_rig g_rig;

static int setup(void **state)
{
	(void)state;
	rig_setup_sam(&g_rig, 2, "--allow-rotate"); /* a sam that may rotate */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rig_teardown(&g_rig);
	return 0;
}

/* ROTATE (version 0) or RETIRE (version given) at the sam: the new version, or 0. */
static uint8_t sam_keys_op(uint8_t family, uint8_t version)
{
	struct sam_sync sam;
	uint8_t body[2] = { family, version }, reply[16];
	size_t rn = 0;

	assert_int_equal(sam_sync_connect(&sam, g_rig.sam_sock), 0);
	if (version == 0) {
		assert_int_equal(sam_sync_call(&sam, SAM_ROTATE, body, 1, reply, sizeof(reply), &rn), 0);
		assert_int_equal(rn, 2);
		assert_int_equal(reply[0], family);
	} else {
		assert_int_equal(sam_sync_call(&sam, SAM_RETIRE, body, 2, reply, sizeof(reply), &rn), 0);
		reply[1] = 0;
	}
	sam_sync_close(&sam);
	return reply[1];
}

/* The se's key information (GET DATA 00 E0, plain on the ISD after a reset): the KVN of
 * each set, at most 4. */
static size_t se_kvns(struct phone *p, uint8_t kvns[4])
{
	static const uint8_t get[] = { 0x00, 0xCA, 0x00, 0xE0, 0x00 };
	uint8_t reset = 0x02, resp[256];
	size_t rn = 0, n = 0;

	assert_int_equal(phone_link(p, SE_LINK_T_POWER, &reset, 1, NULL, 0, NULL), 0);
	assert_int_equal(phone_link(p, SE_LINK_T_APDU, get, sizeof(get), resp, sizeof(resp), &rn),
			 0);
	assert_true(rn >= 4);
	assert_int_equal(resp[rn - 2], 0x90);
	assert_int_equal(resp[0], 0xE0);
	assert_int_equal(resp[1], rn - 4);
	/* C0 04 id kvn 88 len, three per set (ids 1..3) */
	for (size_t at = 2; at + 6 <= rn - 2; at += 6) {
		assert_int_equal(resp[at], 0xC0);
		if (resp[at + 2] == 1) {
			assert_true(n < 4);
			kvns[n++] = resp[at + 3];
		}
	}
	return n;
}

static int has_kvn(const uint8_t *kvns, size_t n, uint8_t kvn)
{
	for (size_t i = 0; i < n; i++)
		if (kvns[i] == kvn)
			return 1;
	return 0;
}

/* One top-up through the phone: its notice, and the SE_APDUs it took. */
static unsigned topup(struct phone *p, const char *want)
{
	unsigned before = p->apdus;

	assert_int_equal(phone_select(p, RIG_SVC_TOPUP), PROTO_NOTICE);
	assert_string_equal(p->notice, want);
	return p->apdus - before;
}

static void ledger_is(const uint8_t serial[8], int64_t want)
{
	struct db *db = NULL;
	struct db_audit au;
	int64_t bal = -1;

	assert_int_equal(db_open(g_rig.db_url, &db), 0);
	assert_int_equal(ledger_balance(db, serial, &bal), 0);
	assert_int_equal(bal, want);
	assert_int_equal(db->ops->ledger_audit(db, &au), 0);
	assert_int_equal(au.postings_sum, 0);
	assert_int_equal(au.unbalanced_transfers, 0);
	db_close(db);
}

static void test_rekey(void **state)
{
	struct proto_menu menu;
	struct phone p, q;
	uint8_t kvns[4];
	size_t n;

	(void)state;
	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[0].link, 10000), 0);
	assert_int_equal(phone_hello(&p, g_rig.se[0].serial, &menu), 1);
	/* Before any rotation: four APDUs, no re-key. */
	assert_int_equal(topup(&p, "topped up 500, balance 500"), 4);
	assert_false(rig_log_has(&g_rig, "rekey_start"));
	n = se_kvns(&p, kvns);
	assert_int_equal(n, 2);
	assert_true(has_kvn(kvns, n, 0x11) && has_kvn(kvns, n, 0x21));

	/* Both families of the se rotated: the top-up still works and re-keys the se. */
	assert_int_equal(sam_keys_op(SAM_FAM_SE_SERVER, 0), 0x12);
	assert_int_equal(sam_keys_op(SAM_FAM_SE_READER, 0), 0x22);
	/* SELECT, IU (6A88); SELECT ISD + IU (P1 00); EA + GET DATA; PUT KEY reader; PUT KEY
	 * server; then the top-up's own four. */
	assert_int_equal(topup(&p, "topped up 500, balance 1000"), 12);
	assert_true(rig_log_has(&g_rig, "event=rekey_done server=11>12 reader=21>22"));
	n = se_kvns(&p, kvns);
	assert_int_equal(n, 2);
	assert_true(has_kvn(kvns, n, 0x12) && has_kvn(kvns, n, 0x22));
	assert_false(has_kvn(kvns, n, 0x11) || has_kvn(kvns, n, 0x21));
	/* The next one opens with the new KVN directly. */
	assert_int_equal(topup(&p, "topped up 500, balance 1500"), 4);
	assert_int_equal(rig_se_balance(&p), 1500);
	ledger_is(g_rig.se[0].serial, 1500);

	/* A second rotation of the se-server family alone, and the oldest version retired:
	 * se 0 (at 12) is re-keyed to 13, its reader set (22, current) stays. */
	assert_int_equal(sam_keys_op(SAM_FAM_SE_SERVER, 0), 0x13);
	assert_int_equal(sam_keys_op(SAM_FAM_SE_SERVER, 0x11), 0);
	assert_int_equal(topup(&p, "topped up 500, balance 2000"), 11);
	assert_true(rig_log_has(&g_rig, "event=rekey_done server=12>13 reader=22>00"));
	n = se_kvns(&p, kvns);
	assert_true(has_kvn(kvns, n, 0x13) && has_kvn(kvns, n, 0x22));
	assert_false(has_kvn(kvns, n, 0x12));
	assert_int_equal(topup(&p, "topped up 500, balance 2500"), 4);
	ledger_is(g_rig.se[0].serial, 2500);

	/* Se 1 was never reached since its personalisation under 11, now retired: the sam
	 * holds no keys for it; the top-up fails (the se is untouched), nothing is booked. */
	assert_int_equal(phone_open(&q, g_rig.tc, g_rig.port, g_rig.se[1].link, 10000), 0);
	assert_int_equal(phone_hello(&q, g_rig.se[1].serial, &menu), 1);
	assert_int_equal(phone_select(&q, RIG_SVC_TOPUP), PROTO_ERROR);
	assert_int_equal(q.err_code, PROTO_ERR_INTERNAL);
	assert_true(rig_log_has(&g_rig, "event=topup_failed why=rekey initialize update"));
	phone_close(&q);
	assert_int_equal(phone_open(&q, g_rig.tc, g_rig.port, g_rig.se[1].link, 10000), 0);
	n = se_kvns(&q, kvns);
	assert_true(has_kvn(kvns, n, 0x11) && has_kvn(kvns, n, 0x21));
	assert_int_equal(rig_se_balance(&q), 0);
	phone_close(&q);
	ledger_is(g_rig.se[1].serial, 0);

	/* The server went on: se 0 still served. */
	assert_int_equal(topup(&p, "topped up 500, balance 3000"), 4);
	phone_close(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rekey, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
