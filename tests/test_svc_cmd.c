/* test_svc_cmd.c - the services' se commands and the credit receipt (src/server/
 * svc_cmd.c): byte layouts as docs/se.md writes them, round trips, every truncation,
 * and the se core itself as the other side: it takes our CREDIT, TICKET STORE and FLAG
 * SET through a level-33 server channel, and its receipt parses to what it holds. */
#include "se_rig.h"

#include "svc_cmd.h"

static const struct svc_ticket tk1 = {
	.id = 0x0102030405060708ull, .service = 2, .not_before = RIG_NOW,
	.not_after = RIG_NOW + 86399, .uses = 1,
};

static void ticket_same(const struct svc_ticket *a, const struct svc_ticket *b)
{
	assert_int_equal(a->id, b->id);
	assert_int_equal(a->service, b->service);
	assert_int_equal(a->not_before, b->not_before);
	assert_int_equal(a->not_after, b->not_after);
	assert_int_equal(a->uses, b->uses);
}

static void test_credit(void **state)
{
	uint8_t b[16];
	struct wr w = wr_init(b, sizeof(b));

	(void)state;
	assert_int_equal(svc_cmd_credit(&w, 500), 0);
	assert_hex_equal(b, w.len, "80320000040000 01F4");
	w = wr_init(b, sizeof(b));
	assert_int_equal(svc_cmd_credit(&w, 0), TB_E_INVAL);
	assert_int_equal(w.len, 0);
	for (size_t cap = 0; cap < 9; cap++) {
		w = wr_init(b, cap);
		assert_int_equal(svc_cmd_credit(&w, 500), TB_E_NOSPACE);
		assert_int_equal(w.len, 0);
	}
}

static void test_ticket(void **state)
{
	uint8_t b[64];
	struct wr w = wr_init(b, sizeof(b));
	struct svc_ticket t, bad;
	struct rd r;

	(void)state;
	assert_int_equal(svc_cmd_ticket_store(&w, &tk1), 0);
	assert_hex_equal(b, w.len, "8040000015 0102030405060708 00000002 6553F100 6555427F 01");
	/* round trip, every truncation */
	r = rd_init(b + 5, SVC_TICKET_LEN);
	assert_int_equal(svc_ticket_get(&r, &t), 0);
	assert_int_equal(r.n, 0);
	ticket_same(&t, &tk1);
	for (size_t n = 0; n < SVC_TICKET_LEN; n++) {
		r = rd_init(b + 5, n);
		assert_int_equal(svc_ticket_get(&r, &t), TB_E_TRUNC);
		assert_int_equal(r.n, n);
	}
	/* what the se would refuse is refused here */
	bad = tk1;
	bad.uses = 0;
	w = wr_init(b, sizeof(b));
	assert_int_equal(svc_cmd_ticket_store(&w, &bad), TB_E_INVAL);
	bad = tk1;
	bad.not_after = bad.not_before - 1;
	assert_int_equal(svc_ticket_put(&w, &bad), TB_E_INVAL);
	assert_int_equal(w.len, 0);
	for (size_t cap = 0; cap < 5 + SVC_TICKET_LEN; cap++) {
		w = wr_init(b, cap);
		assert_int_equal(svc_cmd_ticket_store(&w, &tk1), TB_E_NOSPACE);
		assert_int_equal(w.len, 0);
	}
}

static void make_token(struct svc_token *t, uint32_t expiry)
{
	memcpy(t->serial, rig_serial, sizeof(t->serial));
	t->service = 3;
	t->expiry = expiry;
	for (size_t i = 0; i < sizeof(t->nonce); i++)
		t->nonce[i] = (uint8_t)(0xA0 + i);
	t->limit = 2000;
}

static void test_token(void **state)
{
	uint8_t b[SVC_CMD_MAX], sig[SVC_SIG_LEN];
	struct wr w = wr_init(b, sizeof(b));
	struct svc_token t, back;
	struct rd r;

	(void)state;
	make_token(&t, RIG_NOW + 300);
	assert_int_equal(svc_token_put(&w, &t), 0);
	assert_hex_equal(b, w.len, "01 5345000000001234 00000003 6553F22C "
			 "A0A1A2A3A4A5A6A7A8A9AAABACADAEAF 000007D0");
	r = rd_init(b, w.len);
	assert_int_equal(svc_token_get(&r, &back), 0);
	assert_memory_equal(&back, &t, sizeof(t));
	for (size_t n = 0; n < SVC_TOKEN_LEN; n++) {
		r = rd_init(b, n);
		assert_int_equal(svc_token_get(&r, &back), TB_E_TRUNC);
	}
	b[0] = 0x02;
	r = rd_init(b, SVC_TOKEN_LEN);
	assert_int_equal(svc_token_get(&r, &back), TB_E_INVAL);
	assert_int_equal(r.n, SVC_TOKEN_LEN);
	b[0] = 0x01;

	memset(sig, 0x5A, sizeof(sig));
	{
		uint8_t c[SVC_CMD_MAX];
		struct wr cw = wr_init(c, sizeof(c));

		assert_int_equal(svc_cmd_flag_set(&cw, b, sig), 0);
		assert_int_equal(cw.len, SVC_CMD_MAX);
		assert_hex_equal(c, 5, "8064000065");
		assert_memory_equal(c + 5, b, SVC_TOKEN_LEN);
		assert_memory_equal(c + 5 + SVC_TOKEN_LEN, sig, SVC_SIG_LEN);
		cw = wr_init(c, SVC_CMD_MAX - 1);
		assert_int_equal(svc_cmd_flag_set(&cw, b, sig), TB_E_NOSPACE);
		assert_int_equal(cw.len, 0);
	}
}

/* The se core takes our CREDIT; its receipt parses to what it says in GET BALANCE. */
static void test_receipt_from_se(void **state)
{
	uint8_t cmd[16], rcpt[SVC_RECEIPT_LEN + 1];
	struct wr w = wr_init(cmd, sizeof(cmd));
	struct svc_receipt rc;

	(void)state;
	rig_personalised();
	assert_int_equal(rig_select_wallet(SE_IF_HOST), 0x9000);
	assert_int_equal(rig_open_server(SE_IF_HOST, 0x33), 0x9000);
	assert_int_equal(svc_cmd_credit(&w, 500), 0);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, w.len), 0x9000);
	assert_int_equal(R.n, SVC_RECEIPT_LEN);
	memcpy(rcpt, R.resp, SVC_RECEIPT_LEN);
	assert_int_equal(svc_receipt_parse(rcpt, SVC_RECEIPT_LEN, &rc), 0);
	assert_memory_equal(rc.serial, rig_serial, 8);
	assert_int_equal(rc.counter, 1);
	assert_int_equal(rc.kind, SVC_TX_CREDIT);
	assert_int_equal(rc.amount, 500);
	assert_int_equal(rc.balance, 500);
	assert_int_equal(rc.kvn, RIG_SERVER_KVN);
	assert_memory_equal(rc.mac, rcpt + SVC_RECEIPT_BODY, SVC_RECEIPT_MAC_LEN);
	for (size_t n = 0; n < SVC_RECEIPT_LEN; n++)
		assert_int_equal(svc_receipt_parse(rcpt, n, &rc), TB_E_TRUNC);
	rcpt[SVC_RECEIPT_LEN] = 0;
	assert_int_equal(svc_receipt_parse(rcpt, SVC_RECEIPT_LEN + 1, &rc), TB_E_LEFTOVER);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "8030000000"), 0x9000);
	assert_hex_equal(R.resp, 8, "000001F400000001");
}

/* TICKET STORE and FLAG SET as we build them: the se stores both, and hands back the
 * same bytes (TICKET LIST on the host side, FLAG GET in a reader channel). */
static void test_store_in_se(void **state)
{
	uint8_t cmd[SVC_CMD_MAX], token[SVC_TOKEN_LEN], sig[SVC_SIG_LEN];
	struct wr w = wr_init(cmd, sizeof(cmd));
	struct wr tw = wr_init(token, sizeof(token));
	struct svc_token t;
	struct svc_ticket back;
	struct rd r;

	(void)state;
	rig_personalised();
	assert_int_equal(rig_select_wallet(SE_IF_HOST), 0x9000);
	assert_int_equal(rig_open_server(SE_IF_HOST, 0x33), 0x9000);
	assert_int_equal(svc_cmd_ticket_store(&w, &tk1), 0);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, w.len), 0x9000);
	assert_int_equal(rig_cmd_hex(SE_IF_HOST, "8042000000"), 0x9000);
	assert_int_equal(R.n, SVC_TICKET_LEN);
	assert_memory_equal(R.resp, cmd + 5, SVC_TICKET_LEN);
	r = rd_init(R.resp, R.n);
	assert_int_equal(svc_ticket_get(&r, &back), 0);
	ticket_same(&back, &tk1);

	make_token(&t, RIG_NOW + 300);
	assert_int_equal(svc_token_put(&tw, &t), 0);
	memset(sig, 0x5A, sizeof(sig));
	w = wr_init(cmd, sizeof(cmd));
	assert_int_equal(svc_cmd_flag_set(&w, token, sig), 0);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, w.len), 0x9000);
	assert_int_equal(rig_select_wallet(SE_IF_CONTACTLESS), 0x9000);
	assert_int_equal(rig_open_reader(SE_IF_CONTACTLESS, 0x33), 0x9000);
	assert_int_equal(rig_cmd_hex(SE_IF_CONTACTLESS, "80660000"), 0x9000);
	assert_int_equal(R.n, SVC_TOKEN_LEN + SVC_SIG_LEN);
	assert_memory_equal(R.resp, token, SVC_TOKEN_LEN);
	assert_memory_equal(R.resp + SVC_TOKEN_LEN, sig, SVC_SIG_LEN);
	/* an expired token: the se refuses it (6985), so the expiry field is where we put it */
	make_token(&t, RIG_NOW - 1);
	tw = wr_init(token, sizeof(token));
	assert_int_equal(svc_token_put(&tw, &t), 0);
	w = wr_init(cmd, sizeof(cmd));
	assert_int_equal(svc_cmd_flag_set(&w, token, sig), 0);
	assert_int_equal(rig_cmd(SE_IF_HOST, cmd, w.len), 0x6985);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_credit),
		cmocka_unit_test(test_ticket),
		cmocka_unit_test(test_token),
		cmocka_unit_test(test_receipt_from_se),
		cmocka_unit_test(test_store_in_se),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
