/* test_server_bad.c - misbehaving phones against the whole stack (sam, se, server as
 * processes): malformed, oversize and unknown frames, an SE_RESP nobody asked for, TLS
 * garbage, a frame cut off by a close, and a phone that leaves in the middle of a
 * top-up. Each gets its ERROR (or a plain close before TLS), a good phone keeps being
 * served in between, and the ledger keeps every confirmed row and sums to zero. */
#include "srv_rig.h"

static struct srv_rig g_rig;
static unsigned g_confirmed;

static int setup(void **state)
{
	(void)state;
	rig_setup(&g_rig, 2);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rig_teardown(&g_rig);
	return 0;
}

/* The good phone (se 0): a whole top-up, confirmed. */
static void good_topup(void)
{
	struct proto_menu menu;
	struct phone p;
	char want[64];

	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[0].link, 10000), 0);
	assert_int_equal(phone_hello(&p, g_rig.se[0].serial, &menu), 1);
	assert_int_equal(phone_select(&p, RIG_SVC_TOPUP), PROTO_NOTICE);
	g_confirmed++;
	snprintf(want, sizeof(want), "topped up 500, balance %u", g_confirmed * RIG_TOPUP);
	assert_string_equal(p.notice, want);
	phone_close(&p);
}

/* A session after HELLO (se 1, no link), then raw bytes inside TLS; the ERROR code. */
static uint16_t bad_after_hello(const uint8_t *raw, size_t n)
{
	struct proto_menu menu;
	struct phone p;
	uint16_t code = 0;

	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, NULL, 10000), 0);
	assert_int_equal(phone_hello(&p, g_rig.se[1].serial, &menu), 1);
	assert_int_equal(phone_raw(&p, raw, n), 0);
	for (;;) {
		int rc = phone_recv(&p);

		assert_int_equal(rc, 1);
		if (p.type == PROTO_ERROR) {
			assert_true(p.n >= 2);
			code = (uint16_t)(p.buf[0] << 8 | p.buf[1]);
			break;
		}
	}
	/* ... and then the server closes. */
	assert_int_equal(phone_recv(&p), 0);
	phone_close(&p);
	return code;
}

static void test_bad_frames(void **state)
{
	static const uint8_t short_select[] = { 0, 0, 0, 3, PROTO_SELECT, 0, 1 };
	static const uint8_t oversize[] = { 0, 1, 0, 0, PROTO_SE_RESP };
	static const uint8_t unknown[] = { 0, 0, 0, 1, 0x3F };
	static const uint8_t empty[] = { 0, 0, 0, 0 };
	static const uint8_t stray_resp[] = { 0, 0, 0, 7, PROTO_SE_RESP, 0, 0, 0, 9, 0x90, 0x00 };
	static const uint8_t zero_service[] = { 0, 0, 0, 5, PROTO_SELECT, 0, 0, 0, 0 };

	(void)state;
	good_topup();
	assert_int_equal(bad_after_hello(short_select, sizeof(short_select)), PROTO_ERR_MALFORMED);
	good_topup();
	assert_int_equal(bad_after_hello(oversize, sizeof(oversize)), PROTO_ERR_TOO_LARGE);
	assert_int_equal(bad_after_hello(unknown, sizeof(unknown)), PROTO_ERR_UNKNOWN_TYPE);
	assert_int_equal(bad_after_hello(empty, sizeof(empty)), PROTO_ERR_EMPTY);
	assert_int_equal(bad_after_hello(stray_resp, sizeof(stray_resp)), PROTO_ERR_OUT_OF_ORDER);
	assert_int_equal(bad_after_hello(zero_service, sizeof(zero_service)), PROTO_ERR_MALFORMED);
	good_topup();
}

static void test_tls_garbage_and_cut_frames(void **state)
{
	struct sockaddr_in a;
	uint8_t junk[512], buf[64];
	struct proto_menu menu;
	struct phone p;
	int fd;

	(void)state;
	/* Not TLS at all: closed without a frame. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(g_rig.port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(crypto_random(junk, sizeof(junk)), 0);
	junk[0] = 0x16; /* looks like a handshake record, then nonsense */
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	{
		struct timeval tv = { 5, 0 };
		ssize_t k;

		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		do
			k = read(fd, buf, sizeof(buf));
		while (k > 0);
		assert_true(k == 0 || (k < 0 && errno == ECONNRESET));
	}
	close(fd);
	good_topup();

	/* A frame cut off by the phone closing. */
	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, NULL, 10000), 0);
	assert_int_equal(phone_hello(&p, g_rig.se[1].serial, &menu), 1);
	{
		static const uint8_t half[] = { 0, 0, 0, 50, PROTO_SE_RESP, 0, 0 };

		assert_int_equal(phone_raw(&p, half, sizeof(half)), 0);
	}
	phone_close(&p);
	good_topup();

	/* A phone that leaves in the middle of a top-up: the se got INITIALIZE UPDATE and
	 * EXTERNAL AUTHENTICATE, never the CREDIT; the server's sam calls are still out. */
	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[1].link, 10000), 0);
	assert_int_equal(phone_hello(&p, g_rig.se[1].serial, &menu), 1);
	{
		struct proto_msg m = { .type = PROTO_SELECT };
		unsigned forwarded = 0;

		m.u.select.service = RIG_SVC_TOPUP;
		assert_int_equal(phone_send(&p, &m), 0);
		while (forwarded < 3) {
			struct proto_msg in, out = { .type = PROTO_SE_RESP };
			uint8_t resp[SE_RESP_MAX];
			size_t rn = 0;

			assert_int_equal(phone_recv(&p), 1);
			assert_int_equal(p.type, PROTO_SE_APDU);
			assert_int_equal(proto_decode(p.type, p.buf, p.n, &in), 0);
			assert_int_equal(phone_link(&p, SE_LINK_T_APDU, in.u.apdu.data, in.u.apdu.n, resp,
						    sizeof(resp), &rn), 0);
			out.u.apdu.seq = in.u.apdu.seq;
			out.u.apdu.data = resp;
			out.u.apdu.n = rn;
			assert_int_equal(phone_send(&p, &out), 0);
			forwarded++;
		}
	}
	phone_close(&p);
	good_topup();
	/* The same se again, from the start: a fresh session works. */
	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[1].link, 10000), 0);
	assert_int_equal(phone_hello(&p, g_rig.se[1].serial, &menu), 1);
	assert_int_equal(phone_select(&p, RIG_SVC_TOPUP), PROTO_NOTICE);
	assert_string_equal(p.notice, "topped up 500, balance 500");
	phone_close(&p);

	/* Phones that leave at once after a SELECT of a ticket (its row queued for the
	 * batch) or of the flag (the token at the sam's SIGN): the work finishes without
	 * them, other phones are served, the se's next session works. */
	for (int k = 0; k < 4; k++) {
		struct proto_msg m = { .type = PROTO_SELECT };

		assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[1].link, 10000), 0);
		assert_int_equal(phone_hello(&p, g_rig.se[1].serial, &menu), 1);
		m.u.select.service = k % 2 == 0 ? RIG_SVC_TICKET : RIG_SVC_PAUTH;
		assert_int_equal(phone_send(&p, &m), 0);
		phone_close(&p);
	}
	good_topup();
	assert_int_equal(phone_open(&p, g_rig.tc, g_rig.port, g_rig.se[1].link, 10000), 0);
	assert_int_equal(phone_hello(&p, g_rig.se[1].serial, &menu), 1);
	assert_int_equal(phone_select(&p, RIG_SVC_TICKET), PROTO_NOTICE);
	assert_int_equal(strncmp(p.notice, "ticket ", 7), 0);
	assert_int_equal(phone_select(&p, RIG_SVC_PAUTH), PROTO_NOTICE);
	assert_int_equal(strncmp(p.notice, "flag set until ", 15), 0);
	phone_close(&p);
}

static void test_ledger_intact(void **state)
{
	struct db *db = NULL;
	struct db_audit au;
	int64_t bal = -1;

	(void)state;
	assert_int_equal(waitpid(g_rig.server, NULL, WNOHANG), 0); /* still running */
	assert_int_equal(db_open(g_rig.db_url, &db), 0);
	assert_int_equal(ledger_balance(db, g_rig.se[0].serial, &bal), 0);
	assert_int_equal(bal, (int64_t)g_confirmed * RIG_TOPUP);
	for (uint32_t c = 1; c <= g_confirmed; c++) {
		struct db_transfer t;
		struct db_applied ap;
		char key[DB_KEY_MAX];

		assert_int_equal(ledger_key_se(g_rig.se[0].serial, c, key), 0);
		assert_int_equal(db->ops->transfer_get(db, key, &t, &ap), 0);
	}
	assert_int_equal(ledger_balance(db, g_rig.se[1].serial, &bal), 0);
	assert_int_equal(bal, RIG_TOPUP);
	assert_int_equal(db->ops->ledger_audit(db, &au), 0);
	assert_int_equal(au.transfers, g_confirmed + 1);
	assert_int_equal(au.postings_sum, 0);
	assert_int_equal(au.unbalanced_transfers, 0);
	assert_int_equal(au.balance_mismatches, 0);
	db_close(db);
	assert_int_equal(sp_stop(g_rig.server), 0);
	g_rig.server = -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_tls_garbage_and_cut_frames),
		cmocka_unit_test(test_ledger_intact),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
