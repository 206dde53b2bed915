/* test_phone.c - the phone core (phone/phone.h) without I/O: the start (POWER reset, GET
 * DATA serial, HELLO), SE_APDU/SE_RESP pairing by seq with local commands interleaved,
 * the relay (HELLO answered from a STAGE once, RELAY_UP/RELAY_DOWN, stale answers
 * dropped, RELAY FAIL on status 1 and on timeout), se events on the screen, command
 * parsing, and each command's end (OK, FAILED with an error line, timeouts). */
#include <string.h>

#include "err.h"
#include "phone.h"
#include "vec.h"

static struct ph P;
static char screen[PH_SCREEN_MAX + 1];

static const uint8_t serial_resp[] = { 0x45, 0x08, 0x53, 0x45, 0x00, 0x00, 0x00, 0x00, 0x43,
				       0x21, 0x90, 0x00 };
static const uint8_t sw_ok[] = { 0x90, 0x00 };

/* The next action must be of this kind; returns it. */
static struct ph_act want(enum ph_act_kind k)
{
	struct ph_act a;

	memset(&a, 0, sizeof(a));
	if (ph_next_action(&P, &a) != 1)
		fail_msg("no action, want kind %d", (int)k);
	if (a.kind != k)
		fail_msg("action kind %d, want %d", (int)a.kind, (int)k);
	return a;
}

static void want_none(void)
{
	struct ph_act a;

	assert_int_equal(ph_next_action(&P, &a), 0);
}

static const char *scr(void)
{
	size_t n = 0;
	const char *s = ph_screen_take(&P, &n);

	memcpy(screen, s, n);
	screen[n] = '\0';
	return screen;
}

/* A started session with a MENU of two services. */
static void started(int trace)
{
	struct ph_config cfg = { .trace = trace };
	static const struct ph_menu_item items[] = {
		{ 1, 2, 1, (const uint8_t *)"top-up", 6 },
		{ 2, 4, 3, (const uint8_t *)"transit", 7 },
	};
	struct ph_act a;

	assert_int_equal(ph_init(&P, &cfg, 1000), 0);
	a = want(PH_ACT_SE_POWER);
	assert_int_equal(a.op, 2);
	a = want(PH_ACT_SE_APDU);
	assert_int_equal(a.n, 5);
	assert_memory_equal(a.data, "\x00\xCA\x00\x45\x00", 5);
	want_none();
	assert_false(ph_ready(&P));
	assert_int_equal(ph_se_response(&P, serial_resp, sizeof(serial_resp)), 0);
	want(PH_ACT_SRV_HELLO);
	assert_hex_equal(P.serial, 8, "5345000000004321");
	assert_false(ph_ready(&P));
	assert_int_equal(ph_srv_menu(&P, items, 2), 0);
	assert_true(ph_ready(&P));
	assert_string_equal(scr(), ""); /* the first MENU waits for the menu command */
}

static void run(const char *line)
{
	struct ph_cmd c;
	char why[128];

	if (ph_cmd_parse(line, &c, why, sizeof(why)) != 0)
		fail_msg("'%s': %s", line, why);
	assert_int_equal(ph_cmd_start(&P, &c), 0);
}

static void test_size(void **state)
{
	(void)state;
	assert_true(sizeof(struct ph) <= PH_SIZE_MAX);
}

static void test_start_bad_serial(void **state)
{
	struct ph_config cfg = { 0 };

	(void)state;
	assert_int_equal(ph_init(&P, &cfg, 0), 0);
	want(PH_ACT_SE_POWER);
	want(PH_ACT_SE_APDU);
	assert_int_equal(ph_se_response(&P, (const uint8_t *)"\x6A\x88", 2), TB_E_IO);
	want_none(); /* no HELLO without a serial */
	assert_non_null(strstr(scr(), "error: the se did not give its serial"));
	assert_true(ph_ready(&P)); /* ready to fail every command */
	run("balance");
	assert_int_equal(ph_cmd_state(&P), PH_CMD_FAILED);
}

static void test_menu_and_select(void **state)
{
	struct ph_act a;

	(void)state;
	started(0);
	run("menu");
	assert_int_equal(ph_cmd_state(&P), PH_CMD_OK);
	assert_string_equal(scr(), "menu 1 e-money [offered] top-up\nmenu 2 ticket [blocked] transit\n");

	run("use 1");
	a = want(PH_ACT_SRV_SELECT);
	assert_int_equal(a.a, 1);
	assert_int_equal(a.op, 1);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_RUNNING);
	/* The server carries its channel through the phone: SE_APDUs in order, by seq. */
	assert_int_equal(ph_srv_se_apdu(&P, 77, (const uint8_t *)"\x80\x50\x30\x00\x08", 5), 0);
	a = want(PH_ACT_SE_APDU);
	assert_int_equal(a.n, 5);
	assert_int_equal(ph_se_response(&P, (const uint8_t *)"\x01\x02\x90\x00", 4), 0);
	a = want(PH_ACT_SRV_SE_RESP);
	assert_int_equal(a.a, 77);
	assert_int_equal(a.n, 4);
	assert_int_equal(ph_srv_notice(&P, (const uint8_t *)"service available: tap the reader", 33), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_OK);
	{
		static const struct ph_menu_item items[] = { { 1, 2, 2, (const uint8_t *)"top-up", 6 } };

		assert_int_equal(ph_srv_menu(&P, items, 1), 0);
	}
	assert_string_equal(scr(), "notice service available: tap the reader\n"
				   "menu 1 e-money [ready] top-up\n");
	run("permit 5");
	a = want(PH_ACT_SRV_SELECT);
	assert_int_equal(a.op, 2);
	{
		struct ph_cmd c = { .kind = PH_CMD_SELECT, .arg = 5 };

		assert_int_equal(ph_cmd_start(&P, &c), TB_E_INVAL); /* one command at a time */
	}
	assert_int_equal(ph_cmd_state(&P), PH_CMD_RUNNING);
	assert_int_equal(ph_tick(&P, 1000 + PH_CMD_WAIT_MS), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_FAILED);
	assert_non_null(strstr(scr(), "error: no answer from the server in time"));
}

static void test_local_commands(void **state)
{
	static const uint8_t bal[] = { 0, 0, 0x02, 0xBC, 0, 0, 0, 3, 0, 1, 0x86, 0xA0, 0x90, 0x00 };
	struct ph_act a;

	(void)state;
	started(0);
	run("arm 3");
	a = want(PH_ACT_SE_APDU);
	assert_int_equal(a.n, 16);
	assert_memory_equal(a.data, "\x00\xA4\x04\x00\x0B\xF0\x54\x41\x50\x42\x52\x49\x44\x47\x45\x01", 16);
	/* A server APDU in between: the responses stay paired in order. */
	assert_int_equal(ph_srv_se_apdu(&P, 9, (const uint8_t *)"\x80\xCA\x00\xC1\x00", 5), 0);
	want(PH_ACT_SE_APDU);
	assert_int_equal(ph_se_response(&P, sw_ok, 2), 0);
	a = want(PH_ACT_SE_APDU);
	assert_int_equal(a.n, 9);
	assert_memory_equal(a.data, "\x80\x6C\x02\x00\x04\x00\x00\x00\x03", 9);
	assert_int_equal(ph_se_response(&P, (const uint8_t *)"\x6A\x88", 2), 0);
	a = want(PH_ACT_SRV_SE_RESP);
	assert_int_equal(a.a, 9);
	assert_memory_equal(a.data, "\x6A\x88", 2);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_RUNNING);
	assert_int_equal(ph_se_response(&P, sw_ok, 2), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_OK);
	assert_string_equal(scr(), "armed service 3: tap the reader\n");

	run("balance");
	want(PH_ACT_SE_APDU);
	assert_int_equal(ph_se_response(&P, sw_ok, 2), 0);
	a = want(PH_ACT_SE_APDU);
	assert_memory_equal(a.data, "\x80\x30\x00\x00\x00", 5);
	assert_int_equal(ph_se_response(&P, bal, sizeof(bal)), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_OK);
	assert_string_equal(scr(), "balance 700\n");

	run("lock");
	want(PH_ACT_SE_APDU);
	assert_int_equal(ph_se_response(&P, sw_ok, 2), 0);
	a = want(PH_ACT_SE_APDU);
	assert_memory_equal(a.data, "\x80\x90\x00\x00", 4);
	assert_int_equal(ph_se_response(&P, (const uint8_t *)"\x6A\x81", 2), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_FAILED);
	assert_string_equal(scr(), "error: lock refused by the se (6A81)\n");

	/* SELECT wallet refused: the command is not sent. */
	run("balance");
	want(PH_ACT_SE_APDU);
	assert_int_equal(ph_se_response(&P, (const uint8_t *)"\x6A\x82", 2), 0);
	want_none();
	assert_int_equal(ph_cmd_state(&P), PH_CMD_FAILED);
	assert_string_equal(scr(), "error: SELECT wallet refused by the se (6A82)\n");
}

static void test_relay_stage(void **state)
{
	static const uint8_t hello[] = { 0x01, 0x01, 0, 0, 0, 7 };
	static const uint8_t stage[] = { 0x80, 0x50, 0x31, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00 };
	static const uint8_t auth[] = { 0x02, 0, 0, 0, 7, 3, 0xAA, 0xBB, 0x90 };
	struct ph_act a;

	(void)state;
	started(1);
	assert_int_equal(ph_srv_stage(&P, stage, sizeof(stage)), 0);
	/* HELLO with a stage: answered at once, no network. */
	assert_int_equal(ph_se_relay(&P, 41, 1, hello, sizeof(hello)), 0);
	a = want(PH_ACT_SE_RELAY_ANSWER);
	assert_int_equal(a.a, 41);
	assert_int_equal(a.n, 1 + sizeof(stage));
	assert_int_equal(a.data[0], 0x81);
	assert_memory_equal(a.data + 1, stage, sizeof(stage));
	want_none();
	/* AUTH goes up; its answer comes down to the se. */
	assert_int_equal(ph_se_relay(&P, 42, 1, auth, sizeof(auth)), 0);
	a = want(PH_ACT_SRV_RELAY_UP);
	assert_int_equal(a.a, 42);
	assert_int_equal(a.b, 1);
	assert_int_equal(a.n, sizeof(auth));
	assert_int_equal(ph_srv_relay_down(&P, 41, 0, (const uint8_t *)"\x82", 1), 0);
	want_none(); /* not the pending relay: dropped */
	assert_int_equal(ph_srv_relay_down(&P, 42, 0, (const uint8_t *)"\x82\x01", 2), 0);
	a = want(PH_ACT_SE_RELAY_ANSWER);
	assert_int_equal(a.a, 42);
	assert_int_equal(a.n, 2);
	assert_int_equal(P.stat_rtts, 1);
	assert_int_equal(ph_srv_relay_down(&P, 42, 0, (const uint8_t *)"\x82", 1), 0);
	want_none(); /* twice: the second is stale */
	assert_int_equal(P.stat_rtts, 1);
	assert_string_equal(scr(), "staged a reader challenge\n"
				   "relay hello answered from the stage\nrelay up 1\n"
				   "relay answer for a relay that is over: dropped\n"
				   "relay answer for a relay that is over: dropped\n");

	/* The stage is used once: the next HELLO goes to the server. */
	assert_int_equal(ph_se_relay(&P, 43, 1, hello, sizeof(hello)), 0);
	a = want(PH_ACT_SRV_RELAY_UP);
	assert_int_equal(a.n, sizeof(hello));
	assert_int_equal(ph_srv_relay_down(&P, 43, 1, NULL, 0), 0);
	a = want(PH_ACT_SE_RELAY_FAIL);
	assert_int_equal(a.a, 43);
	assert_int_equal(P.stat_rtts, 2);
	assert_non_null(strstr(scr(), "error: relay refused by the server"));

	/* No RELAY_DOWN in time: RELAY FAIL, and a late one is dropped. */
	assert_int_equal(ph_se_relay(&P, 44, 1, auth, sizeof(auth)), 0);
	want(PH_ACT_SRV_RELAY_UP);
	assert_int_equal(ph_tick(&P, P.now + PH_RELAY_WAIT_MS), 0);
	a = want(PH_ACT_SE_RELAY_FAIL);
	assert_int_equal(a.a, 44);
	assert_int_equal(ph_srv_relay_down(&P, 44, 0, NULL, 0), 0);
	want_none();
	assert_int_equal(P.stat_rtts, 2);

	/* Bad stages are refused and keep nothing. */
	assert_int_equal(ph_srv_stage(&P, stage, 0), TB_E_INVAL);
	assert_int_equal(ph_srv_stage(&P, NULL, 5), TB_E_INVAL);
	assert_int_equal(P.stage_n, 0);
}

static void test_relay_without_server(void **state)
{
	static const uint8_t hello[] = { 0x01, 0x01, 0, 0, 0, 7 };
	struct ph_act a;

	(void)state;
	started(0);
	assert_int_equal(ph_se_relay(&P, 5, 1, hello, sizeof(hello)), 0);
	want(PH_ACT_SRV_RELAY_UP);
	/* The server goes away with a relay pending: the se hears RELAY FAIL. */
	assert_int_equal(ph_srv_error(&P, 15, (const uint8_t *)"server shutting down", 20), 0);
	a = want(PH_ACT_SE_RELAY_FAIL);
	assert_int_equal(a.a, 5);
	want(PH_ACT_CLOSE);
	assert_string_equal(scr(), "error: the server ended the session: 15 server shutting down\n");
	assert_int_equal(ph_se_relay(&P, 6, 1, hello, sizeof(hello)), 0);
	a = want(PH_ACT_SE_RELAY_FAIL);
	assert_int_equal(a.a, 6);
	run("history");
	assert_int_equal(ph_cmd_state(&P), PH_CMD_FAILED);
	run("quit"); /* nothing to say goodbye to: fine */
	assert_int_equal(ph_cmd_state(&P), PH_CMD_OK);
}

static void test_events_and_history(void **state)
{
	static const struct ph_hist_rec recs[] = {
		{ 3, 1700000000, 3, 1, 7, 300, 700 },
		{ 2, 0, 2, 1, 0, 500, 1000 },
		{ 1, -86401, 99, 0, 0, -5, 0 },
	};
	struct ph_act a;

	(void)state;
	started(0);
	assert_int_equal(ph_se_transaction(&P, 1, 500, 500, 1), 0);
	assert_int_equal(ph_se_transaction(&P, 2, 300, 200, 2), 0);
	assert_int_equal(ph_se_disable(&P, 3), 0);
	assert_int_equal(ph_se_locked(&P, 1), 0);
	assert_int_equal(ph_se_locked(&P, 0), 0);
	assert_int_equal(ph_se_lost(&P, 4), 0);
	assert_string_equal(scr(), "se says credit 500, balance 500, counter 1\n"
				   "se says debit 300, balance 200, counter 2\n"
				   "se says disable 0003\nse says locked\nse says unlocked\n"
				   "se says events lost 4\n");
	run("history 3");
	a = want(PH_ACT_SRV_HISTORY_REQ);
	assert_int_equal(a.a, 3);
	assert_int_equal(ph_srv_history(&P, 1, recs, 3), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_OK);
	assert_string_equal(scr(),
		"history 3 pay service 1 reader 7 amount 300 balance 700 time 2023-11-14T22:13:20Z\n"
		"history 2 top-up service 1 reader 0 amount 500 balance 1000 time 1970-01-01T00:00:00Z\n"
		"history 1 other service 0 reader 0 amount -5 time 1969-12-30T23:59:59Z\n"
		"history more: older records exist\n");
	run("history");
	a = want(PH_ACT_SRV_HISTORY_REQ);
	assert_int_equal(a.a, 10);
	assert_int_equal(ph_srv_history(&P, 0, NULL, 0), 0);
	assert_string_equal(scr(), "history empty\n");
}

static void test_notices_and_time(void **state)
{
	struct ph_act a;

	(void)state;
	started(0);
	/* A notice that came before the wait is found at once. */
	assert_int_equal(ph_srv_notice(&P, (const uint8_t *)"paid 300 at reader 7, balance 700", 33), 0);
	run("wait-notice paid 300");
	assert_int_equal(ph_cmd_state(&P), PH_CMD_OK);
	run("wait-notice paid 2");
	assert_int_equal(ph_cmd_state(&P), PH_CMD_RUNNING); /* claimed: it does not count twice */
	assert_int_equal(ph_srv_notice(&P, (const uint8_t *)"permit stored", 13), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_RUNNING);
	assert_int_equal(ph_tick(&P, P.now + 2000), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_FAILED);
	assert_non_null(strstr(scr(), "error: no notice \"paid\" within 2 s"));

	run("serve 10 done");
	assert_int_equal(ph_srv_notice(&P, (const uint8_t *)"nope", 4), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_RUNNING);
	assert_int_equal(ph_srv_notice(&P, (const uint8_t *)"done 1", 6), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_OK);
	run("sleep 100");
	assert_int_equal(ph_tick(&P, P.now + 99), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_RUNNING);
	assert_int_equal(ph_tick(&P, P.now + 1), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_OK);

	/* PING after 60 s without a frame to the server; not before. */
	(void)scr();
	assert_int_equal(ph_tick(&P, P.last_sent + PH_PING_MS - 1), 0);
	want_none();
	assert_int_equal(ph_tick(&P, P.last_sent + PH_PING_MS), 0);
	a = want(PH_ACT_SRV_PING);
	assert_int_equal(a.token[7], 1);
	assert_int_equal(ph_srv_ping(&P, a.token), 0);
	a = want(PH_ACT_SRV_PONG);
	assert_int_equal(a.token[7], 1);

	run("quit");
	want(PH_ACT_SRV_BYE);
	assert_int_equal(ph_srv_bye(&P), 0);
	want(PH_ACT_CLOSE);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_OK);
	assert_string_equal(scr(), "");
}

static void test_parse(void **state)
{
	static const struct {
		const char *line;
		int ok;
		enum ph_cmd_kind kind;
		uint32_t arg, ms;
		uint8_t op;
		const char *text;
	} cases[] = {
		{ "menu", 1, PH_CMD_MENU, 0, 0, 0, "" },
		{ "  use   2 ", 1, PH_CMD_SELECT, 2, 0, 1, "" },
		{ "permit 4294967295", 1, PH_CMD_SELECT, 0xFFFFFFFFu, 0, 2, "" },
		{ "topup 1", 1, PH_CMD_SELECT, 1, 0, 0, "" },
		{ "select 9", 1, PH_CMD_SELECT, 9, 0, 0, "" },
		{ "arm 3", 1, PH_CMD_ARM, 3, 0, 0, "" },
		{ "history", 1, PH_CMD_HISTORY, 10, 0, 0, "" },
		{ "history 32", 1, PH_CMD_HISTORY, 32, 0, 0, "" },
		{ "wait-notice", 1, PH_CMD_WAIT_NOTICE, 0, PH_CMD_WAIT_MS, 0, "" },
		{ "wait-notice topped up 5", 1, PH_CMD_WAIT_NOTICE, 0, 5000, 0, "topped up" },
		{ "wait-notice 5", 1, PH_CMD_WAIT_NOTICE, 0, 5000, 0, "" },
		{ "serve 3", 1, PH_CMD_SERVE, 0, 3000, 0, "" },
		{ "serve 3 paid", 1, PH_CMD_SERVE, 0, 3000, 0, "paid" },
		{ "sleep 250", 1, PH_CMD_SLEEP, 0, 250, 0, "" },
		{ "quit", 1, PH_CMD_QUIT, 0, 0, 0, "" },
		{ "", 0, 0, 0, 0, 0, "" },
		{ "use", 0, 0, 0, 0, 0, "" },
		{ "use 0", 0, 0, 0, 0, 0, "" },
		{ "use 4294967296", 0, 0, 0, 0, 0, "" },
		{ "use 1 2", 0, 0, 0, 0, 0, "" },
		{ "use x", 0, 0, 0, 0, 0, "" },
		{ "history 33", 0, 0, 0, 0, 0, "" },
		{ "history 0", 0, 0, 0, 0, 0, "" },
		{ "balance now", 0, 0, 0, 0, 0, "" },
		{ "serve", 0, 0, 0, 0, 0, "" },
		{ "serve -1", 0, 0, 0, 0, 0, "" },
		{ "sleep", 0, 0, 0, 0, 0, "" },
		{ "dance", 0, 0, 0, 0, 0, "" },
		{ "Menu", 0, 0, 0, 0, 0, "" },
	};
	char why[160];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ph_cmd c;
		int rc = ph_cmd_parse(cases[i].line, &c, why, sizeof(why));

		if ((rc == 0) != cases[i].ok)
			fail_msg("'%s': rc %d", cases[i].line, rc);
		if (!cases[i].ok) {
			assert_int_equal(rc, TB_E_INVAL);
			assert_true(strlen(why) > 0);
			continue;
		}
		assert_int_equal(c.kind, cases[i].kind);
		assert_int_equal(c.arg, cases[i].arg);
		assert_int_equal(c.ms, cases[i].ms);
		assert_int_equal(c.op, cases[i].op);
		assert_string_equal(c.text, cases[i].text);
	}
	assert_int_equal(ph_cmd_parse("use", NULL, why, sizeof(why)), TB_E_INVAL);
	assert_int_equal(ph_cmd_parse("use 1", &(struct ph_cmd){ 0 }, why, sizeof(why)), 0);
	(void)ph_cmd_parse("use", &(struct ph_cmd){ 0 }, why, sizeof(why));
	assert_string_equal(why, "usage: use SERVICE");
}

static void test_se_gone(void **state)
{
	(void)state;
	started(0);
	run("balance");
	want(PH_ACT_SE_APDU);
	assert_int_equal(ph_se_closed(&P, "the se closed it"), 0);
	assert_int_equal(ph_cmd_state(&P), PH_CMD_FAILED);
	assert_string_equal(scr(), "error: the se link closed: the se closed it\n"
				   "error: the se link ended before the se answered\n");
	assert_int_equal(ph_srv_se_apdu(&P, 1, (const uint8_t *)"\x80\x30\x00\x00", 4), TB_E_IO);
	run("arm 1");
	assert_int_equal(ph_cmd_state(&P), PH_CMD_FAILED);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size),
		cmocka_unit_test(test_start_bad_serial),
		cmocka_unit_test(test_menu_and_select),
		cmocka_unit_test(test_local_commands),
		cmocka_unit_test(test_relay_stage),
		cmocka_unit_test(test_relay_without_server),
		cmocka_unit_test(test_events_and_history),
		cmocka_unit_test(test_notices_and_time),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_se_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
