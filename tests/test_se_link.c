/* test_se_link.c - `tapbridge se` as a process, without pcscd: this test is the reader
 * on the direct contactless socket (--listen unix:...) and the phone on the IC_I/F
 * link (--link ...), both in the frames of docs/protocol.md. Relay answered after
 * 500 ms while the se keeps serving the phone, relay refused unarmed, failed without a
 * phone, on the phone's word and on timeout; bad frames on either socket end only that
 * connection and change nothing in the core; events reach the phone, also those queued
 * while it was away; a serial tty link (a pty here). */
#define _GNU_SOURCE /* posix_openpt, ptsname */
#include "se_proc.h"

#define SERVICE 0x00000007u
#define RELAY_TIMEOUT_MS 1000

/* ------------------------------------------------------------- the process --- */

static struct {
	char dir[64], bin[4096], img[128], img2[128], cl[128], link[128], log[128];
	pid_t pid;
} S;

static void wait_started(const char *log, pid_t pid)
{
	char buf[4096];
	int64_t end = sp_now_us() + 10 * 1000000;

	for (;;) {
		FILE *f = fopen(log, "r");
		size_t n = 0;

		if (f != NULL) {
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
		}
		buf[n] = '\0';
		if (strstr(buf, "tapbridge se: serial ") != NULL)
			return;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			fail_msg("tapbridge se exited at start:\n%s", buf);
		if (sp_now_us() > end)
			fail_msg("tapbridge se did not start within 10 s:\n%s", buf);
		sp_sleep_ms(10);
	}
}

static int group_setup(void **state)
{
	char timeout[16];

	(void)state;
	strcpy(S.dir, "/tmp/tb_se_link.XXXXXX");
	assert_non_null(mkdtemp(S.dir));
	sp_bin(S.bin, sizeof(S.bin));
	snprintf(S.img, sizeof(S.img), "%s/se.img", S.dir);
	snprintf(S.img2, sizeof(S.img2), "%s/se2.img", S.dir);
	snprintf(S.cl, sizeof(S.cl), "%s/cl.sock", S.dir);
	snprintf(S.link, sizeof(S.link), "%s/link.sock", S.dir);
	snprintf(S.log, sizeof(S.log), "%s/se.log", S.dir);
	sp_make_image(S.bin, S.img);
	snprintf(timeout, sizeof(timeout), "%d", RELAY_TIMEOUT_MS);
	{
		char cl[140], *argv[] = { S.bin, "se", "--image", S.img, "--listen", cl, "--link",
					  S.link, "--relay-timeout-ms", timeout, "--trace", NULL };

		snprintf(cl, sizeof(cl), "unix:%s", S.cl);
		S.pid = sp_spawn(argv, S.log);
		wait_started(S.log, S.pid);
	}
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[200];

	(void)state;
	if (S.pid > 0)
		(void)sp_stop(S.pid);
	S.pid = 0;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", S.dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", S.dir);
	return 0;
}

static struct peer reader, phone;

static void phone_event(uint8_t type, struct ev *out, int timeout_ms)
{
	peer_event(&phone, type, out, timeout_ms);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* The phone connected, wallet selected, the server's channel open at level 33. */
static void phone_server_session(void)
{
	struct scp_keys k;

	peer_connect(&phone, S.link);
	assert_int_equal(sp_select(&phone.ch, se_wallet_aid, SE_WALLET_AID_LEN), SW_OK);
	sp_server_keys(&k);
	assert_int_equal(sp_open(&phone.ch, SP_SERVER_KVN, &k, 0x33, se_wallet_aid,
				 SE_WALLET_AID_LEN), 0);
}

static void reader_wallet(int with_channel)
{
	struct scp_keys k;

	peer_connect(&reader, S.cl);
	assert_int_equal(sp_select(&reader.ch, se_wallet_aid, SE_WALLET_AID_LEN), SW_OK);
	if (!with_channel)
		return;
	sp_reader_keys(&k);
	assert_int_equal(sp_open(&reader.ch, SP_READER_KVN, &k, 0x33, se_wallet_aid,
				 SE_WALLET_AID_LEN), 0);
}

static void arm_relay(void)
{
	uint8_t cmd[13] = { 0x80, 0x6C, 0x00, 0x00, 0x08 };

	put32(cmd + 5, SERVICE);
	put32(cmd + 9, (uint32_t)time(NULL) + 600);
	assert_int_equal(sp_cmd(&phone.ch, cmd, sizeof(cmd)), SW_OK);
	assert_true(phone.ch.authenticated);
}

static const uint8_t envelope[] = { 0x80, 0xC2, 0x00, 0x00, 0x05, 0x01, 0x02, 0x03, 0x04, 0x05, 0x00 };

/* Sends the ENVELOPE and waits for the RELAY event; returns its relay id. */
static uint32_t relay_start(void)
{
	struct ev e;

	fr_send(reader.fd, 0x01, envelope, sizeof(envelope));
	phone_event(0x90, &e, 3000);
	assert_int_equal(e.n, 8 + 5);
	assert_int_equal(be32(e.p + 4), SERVICE);
	assert_hex_equal(e.p + 8, 5, "0102030405");
	return be32(e.p);
}

static void reader_expect(const char *hex, int timeout_ms)
{
	uint8_t buf[FRAME_MAX], type;
	size_t n;

	assert_int_equal(fr_recv(reader.fd, &type, buf, sizeof(buf), &n, timeout_ms), 0);
	assert_int_equal(type, 0x81);
	assert_hex_equal(buf, n, hex);
}

static void reader_nothing_yet(void)
{
	struct pollfd pf = { reader.fd, POLLIN, 0 };

	assert_int_equal(poll(&pf, 1, 0), 0);
}

/* ---------------------------------------------------------------- tests --- */

static void test_start_line_and_plain_commands(void **state)
{
	char buf[4096];
	FILE *f = fopen(S.log, "r");
	size_t n;

	(void)state;
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "serial " SP_SERIAL_HEX));
	assert_non_null(strstr(buf, "ATR 3B8B8001806974617062726964676599"));
	peer_connect(&reader, S.cl);
	assert_int_equal(sp_raw_hex(&reader.ch, "00A4040008A000000151000000"), SW_OK);
	assert_int_equal(sp_raw_hex(&reader.ch, "80CA004500"), SW_OK);
	assert_hex_equal(reader.ch.resp, reader.ch.n, "4508" SP_SERIAL_HEX);
	/* A second reader replaces the first: the field has a new card holder. */
	{
		struct peer old = reader;

		peer_connect(&reader, S.cl);
		expect_closed(old.fd, 2000);
		close(old.fd);
	}
	assert_int_equal(sp_raw_hex(&reader.ch, "00A4040008A000000151000000"), SW_OK);
	peer_close(&reader);
}

static void test_relay_refused_unarmed(void **state)
{
	(void)state;
	phone_server_session();
	assert_int_equal(sp_cmd_hex(&phone.ch, "806C030000"), SW_OK); /* disarm */
	reader_wallet(0);
	fr_send(reader.fd, 0x01, envelope, sizeof(envelope));
	reader_expect("6985", 2000);
	assert_int_equal(phone.nev, 0);
	peer_close(&reader);
	peer_close(&phone);
}

/* The phone answers 500 ms later; meanwhile the se answers the phone at once. */
static void test_relay_answer_after_500ms(void **state)
{
	static const uint8_t answer_plain[] = { 0xA1, 0xA2, 0xA3 };
	uint8_t ans[4 + sizeof(answer_plain)];
	int64_t t_env, t_relay, t0, t1;
	uint32_t id;

	(void)state;
	phone_server_session();
	arm_relay();
	reader_wallet(0);
	t_env = sp_now_us();
	id = relay_start();
	t_relay = sp_now_us();
	/* Nothing serialises: the phone's channel works while the reader waits. */
	t0 = sp_now_us();
	assert_int_equal(sp_cmd_hex(&phone.ch, "80CA00C100"), SW_OK);
	t1 = sp_now_us();
	assert_true(phone.ch.authenticated);
	assert_int_equal(phone.ch.n, 10); /* C1 08 locked disabled(2) armed service(4) */
	assert_int_equal(phone.ch.resp[5], 1);
	assert_int_equal(be32(phone.ch.resp + 6), SERVICE);
	print_message("host APDU while a relay is pending: %.2f ms\n", (double)(t1 - t0) / 1000.0);
	assert_true(t1 - t0 < 200000);
	reader_nothing_yet();
	while (sp_now_us() - t_relay < 500000)
		sp_sleep_ms(5);
	put32(ans, id);
	memcpy(ans + 4, answer_plain, sizeof(answer_plain));
	fr_send(phone.fd, 0x10, ans, sizeof(ans));
	reader_expect("A1A2A39000", 2000);
	print_message("relayed ENVELOPE answered after %lld ms\n",
		      (long long)((sp_now_us() - t_env) / 1000));
	assert_true(sp_now_us() - t_env >= 500000);
	/* And a second relay through the reader's own channel at level 33. */
	{
		uint8_t wrapped[128], plain[64];
		struct wr w = wr_init(wrapped, sizeof(wrapped));
		struct wr pw = wr_init(plain, sizeof(plain));
		struct scp_keys k;
		struct scp_resp info;
		struct ev e;
		uint8_t type;
		size_t n;

		sp_reader_keys(&k);
		assert_int_equal(sp_open(&reader.ch, SP_READER_KVN, &k, 0x33, se_wallet_aid,
					 SE_WALLET_AID_LEN), 0);
		assert_int_equal(scp_host_wrap(&reader.ch.h, envelope, sizeof(envelope), &w), 0);
		fr_send(reader.fd, 0x01, wrapped, w.len);
		phone_event(0x90, &e, 3000);
		assert_hex_equal(e.p + 8, e.n - 8, "0102030405"); /* decrypted by the se: C-DEC */
		put32(ans, be32(e.p));
		fr_send(phone.fd, 0x10, ans, sizeof(ans));
		assert_int_equal(fr_recv(reader.fd, &type, reader.ch.resp, sizeof(reader.ch.resp), &n,
					 2000), 0);
		assert_int_equal(type, 0x81);
		assert_int_equal(scp_host_unwrap(&reader.ch.h, reader.ch.resp, n, &info, &pw), 0);
		assert_true(info.authenticated);
		assert_hex_equal(plain, pw.len, "A1A2A39000");
	}
	peer_close(&reader);
	peer_close(&phone);
}

static void test_relay_failures(void **state)
{
	uint8_t idb[4];
	uint32_t id;
	int64_t t0;

	(void)state;
	phone_server_session();
	arm_relay(); /* arming is the core's, not the phone connection's */
	/* The phone gives up. */
	reader_wallet(0);
	id = relay_start();
	put32(idb, id);
	fr_send(phone.fd, 0x11, idb, 4);
	reader_expect("6F00", 2000);
	/* The phone is silent: the relay timeout (1 s here) fails it; a late answer and
	 * an answer for another relay id are dropped, the reader never sees them. */
	t0 = sp_now_us();
	id = relay_start();
	put32(idb, id + 1000);
	fr_send(phone.fd, 0x11, idb, 4); /* not the pending relay: ignored */
	reader_expect("6F00", 3000);
	print_message("relay timeout after %lld ms (configured %d)\n",
		      (long long)((sp_now_us() - t0) / 1000), RELAY_TIMEOUT_MS);
	assert_true(sp_now_us() - t0 >= (RELAY_TIMEOUT_MS - 50) * 1000);
	put32(idb, id);
	fr_send(phone.fd, 0x10, idb, 4);
	assert_int_equal(sp_cmd_hex(&phone.ch, "80CA00C100"), SW_OK); /* the answer was seen */
	assert_int_equal(sp_select(&reader.ch, se_wallet_aid, SE_WALLET_AID_LEN), SW_OK);
	assert_int_equal(reader.ch.resp[0], 0x6F); /* the FCI, not the late answer */
	/* The phone goes away while the reader waits. */
	(void)relay_start();
	peer_close(&phone);
	reader_expect("6F00", 3000);
	/* No phone at all: failed at once. */
	t0 = sp_now_us();
	fr_send(reader.fd, 0x01, envelope, sizeof(envelope));
	reader_expect("6F00", 2000);
	assert_true(sp_now_us() - t0 < 500000);
	peer_close(&reader);
}

/* A reader that leaves the field while its ENVELOPE waits: the relay is dropped and
 * the phone's answer that comes later goes nowhere. */
static void test_relay_power_off(void **state)
{
	static const uint8_t off = 0x00;
	uint8_t ans[6];
	uint32_t id;

	(void)state;
	phone_server_session();
	arm_relay();
	reader_wallet(0);
	id = relay_start();
	fr_send(reader.fd, 0x02, &off, 1);
	/* The next APDU gets its own answer (SELECT's FCI), nothing stale before it. */
	assert_int_equal(sp_select(&reader.ch, se_wallet_aid, SE_WALLET_AID_LEN), SW_OK);
	assert_int_equal(reader.ch.resp[0], 0x6F);
	put32(ans, id);
	ans[4] = 0x90;
	ans[5] = 0x00;
	fr_send(phone.fd, 0x10, ans, sizeof(ans));
	assert_int_equal(sp_cmd_hex(&phone.ch, "80CA00C100"), SW_OK); /* the answer was seen */
	assert_int_equal(sp_select(&reader.ch, se_wallet_aid, SE_WALLET_AID_LEN), SW_OK);
	assert_int_equal(reader.ch.resp[0], 0x6F);
	peer_close(&reader);
	peer_close(&phone);
}

static uint32_t server_balance(void)
{
	return sp_balance(&phone.ch);
}

/* Bad frames end only their own connection; the other one and the core go on. */
static void test_bad_frames(void **state)
{
	static const struct {
		const char *what;
		const char *hex;
	} bad_phone[] = {
		{ "unknown type", "000000017F" },
		{ "empty frame", "00000000" },
		{ "APDU over SE_CMD_MAX", "0000FFFF01" },
		{ "APDU without bytes", "0000000101" },
		{ "POWER with two bytes", "00000003020202" },
		{ "POWER 05", "000000020205" },
		{ "RELAY FAIL short", "0000000411000000" },
		{ "RELAY ANSWER short", "000000031000AA" },
		{ "a response type from the phone", "00000003819000" },
	}, bad_reader[] = {
		{ "unknown type", "0000000190" },
		{ "empty frame", "00000000" },
		{ "APDU over SE_CMD_MAX", "0000FFFF01" },
		{ "POWER 03", "000000020203" },
		{ "a RELAY ANSWER on the contactless link", "00000005100000000190" },
	};
	uint8_t raw[64];
	uint32_t bal;
	size_t n;

	(void)state;
	phone_server_session();
	bal = server_balance();
	for (size_t i = 0; i < sizeof(bad_reader) / sizeof(bad_reader[0]); i++) {
		reader_wallet(1);
		n = hexbuf(bad_reader[i].hex, raw, sizeof(raw));
		fr_write_all(reader.fd, raw, n);
		expect_closed(reader.fd, 2000);
		peer_close(&reader);
		print_message("reader link: %s -> closed; the phone's channel goes on\n",
			      bad_reader[i].what);
		assert_int_equal(server_balance(), bal);
		assert_true(phone.ch.authenticated);
	}
	/* A second APDU before the first is answered (a pending relay) is a protocol error. */
	arm_relay();
	reader_wallet(0);
	(void)relay_start();
	fr_send(reader.fd, 0x01, envelope, sizeof(envelope));
	expect_closed(reader.fd, 2000);
	peer_close(&reader);
	peer_close(&phone);
	for (size_t i = 0; i < sizeof(bad_phone) / sizeof(bad_phone[0]); i++) {
		reader_wallet(1);
		assert_int_equal(sp_balance(&reader.ch), bal);
		peer_connect(&phone, S.link);
		n = hexbuf(bad_phone[i].hex, raw, sizeof(raw));
		fr_write_all(phone.fd, raw, n);
		expect_closed(phone.fd, 2000);
		peer_close(&phone);
		print_message("phone link: %s -> closed; the reader's channel goes on\n",
			      bad_phone[i].what);
		assert_int_equal(sp_balance(&reader.ch), bal);
		assert_true(reader.ch.authenticated);
		peer_close(&reader);
	}
}

static void expect_transaction(uint8_t kind, uint32_t amount, uint32_t balance, uint32_t counter)
{
	struct ev e;

	phone_event(0x91, &e, 2000);
	assert_int_equal(e.n, 13);
	assert_int_equal(e.p[0], kind);
	assert_int_equal(be32(e.p + 1), amount);
	assert_int_equal(be32(e.p + 5), balance);
	assert_int_equal(be32(e.p + 9), counter);
}

static void test_events(void **state)
{
	struct ev e;
	uint32_t bal, counter;

	(void)state;
	phone_server_session();
	bal = server_balance();
	counter = be32(phone.ch.resp + 4);
	assert_int_equal(sp_cmd_hex(&phone.ch, "803200000400000064"), SW_OK); /* credit 100 */
	assert_int_equal(phone.ch.n, 33); /* the receipt */
	expect_transaction(SE_TX_CREDIT, 100, bal + 100, counter + 1);
	assert_int_equal(sp_cmd_hex(&phone.ch, "80940000020005"), SW_OK);
	phone_event(0x92, &e, 2000);
	assert_hex_equal(e.p, e.n, "0005");
	assert_int_equal(sp_cmd_hex(&phone.ch, "80940000020000"), SW_OK);
	phone_event(0x92, &e, 2000);
	assert_hex_equal(e.p, e.n, "0000");
	assert_int_equal(sp_cmd_hex(&phone.ch, "8090000000"), SW_OK); /* lock */
	phone_event(0x93, &e, 2000);
	assert_int_equal(e.n, 0);
	assert_int_equal(sp_cmd_hex(&phone.ch, "8092000000"), SW_OK); /* unlock */
	phone_event(0x94, &e, 2000);
	assert_int_equal(e.n, 0);
	peer_close(&phone);
	/* Nine debits by a reader while no phone is there: the core keeps eight. */
	reader_wallet(1);
	for (int i = 0; i < 9; i++)
		assert_int_equal(sp_cmd_hex(&reader.ch, "803400000400000001"), SW_OK);
	peer_close(&reader);
	peer_connect(&phone, S.link);
	phone_event(0x95, &e, 2000);
	assert_int_equal(e.n, 4);
	assert_int_equal(be32(e.p), 1);
	for (uint32_t i = 2; i <= 9; i++)
		expect_transaction(SE_TX_DEBIT, 1, bal + 100 - i, counter + 1 + i);
	peer_close(&phone);
}

/* POWER on the link ends the host interface's session; a new phone connection, too. */
static void test_host_power_and_replace(void **state)
{
	static const uint8_t reset = 0x02;
	struct peer old;

	(void)state;
	phone_server_session();
	fr_send(phone.fd, 0x02, &reset, 1);
	assert_int_equal(sp_cmd_hex(&phone.ch, "8030000000"), SW_SECURITY_STATUS);
	peer_close(&phone);
	phone_server_session();
	old = phone;
	peer_connect(&phone, S.link);
	expect_closed(old.fd, 2000);
	close(old.fd);
	old.ch.ctx = &phone; /* the old channel's state, over the new connection */
	assert_int_equal(sp_cmd_hex(&old.ch, "8030000000"), SW_SECURITY_STATUS);
	peer_close(&phone);
}

/* --link-tty: the same frames over a pty, reopened after a bad frame. */
static void test_tty_link(void **state)
{
	char cl[140], log[140];
	uint8_t buf[FRAME_MAX], type;
	size_t n;
	int m = posix_openpt(O_RDWR | O_NOCTTY), ok = 0;
	pid_t pid;

	(void)state;
	assert_true(m >= 0);
	assert_int_equal(fcntl(m, F_SETFL, O_NONBLOCK), 0); /* writes never block (fr_write_all) */
	assert_int_equal(grantpt(m), 0);
	assert_int_equal(unlockpt(m), 0);
	sp_make_image(S.bin, S.img2);
	snprintf(cl, sizeof(cl), "unix:%s/cl2.sock", S.dir);
	snprintf(log, sizeof(log), "%s/se2.log", S.dir);
	{
		char *argv[] = { S.bin, "se", "--image", S.img2, "--listen", cl, "--link-tty",
				 ptsname(m), NULL };

		pid = sp_spawn(argv, log);
		wait_started(log, pid);
	}
	fr_send(m, 0x01, (const uint8_t *)"\x00\xA4\x04\x00\x00", 5);
	assert_int_equal(fr_recv(m, &type, buf, sizeof(buf), &n, 3000), 0);
	assert_int_equal(type, 0x81);
	assert_int_equal(buf[n - 2], 0x90);
	fr_send(m, 0x7F, NULL, 0); /* bad: the se drops the tty and opens it again */
	for (int i = 0; i < 30 && !ok; i++) {
		sp_sleep_ms(100);
		fr_send(m, 0x01, (const uint8_t *)"\x80\xCA\x00\x45\x00", 5);
		ok = fr_recv(m, &type, buf, sizeof(buf), &n, 200) == 0 && type == 0x81;
	}
	assert_true(ok);
	assert_hex_equal(buf, n, "4508" SP_SERIAL_HEX "9000");
	assert_int_equal(sp_stop(pid), 0);
	close(m);
}

/* SIGTERM ends the loop cleanly: exit 0, socket files gone. */
static void test_sigterm(void **state)
{
	int rc;

	(void)state;
	rc = sp_stop(S.pid);
	S.pid = 0;
	if (rc != 0) { /* an ASan or UBSan report ends up in the se's log */
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "cat '%s' >&2", S.log);
		if (system(cmd) != 0)
			print_error("(no log)\n");
		fail_msg("tapbridge se exited with %d on SIGTERM", rc);
	}
	assert_int_equal(access(S.cl, F_OK), -1);
	assert_int_equal(access(S.link, F_OK), -1);
}

/* Async-signal-safe: name the hang, show the tty se's log, stop the se, die. */
static void on_watchdog(int sig)
{
	static const char msg[] = "test_se_link: watchdog: a test hung for 100 s\n";
	char *cat[] = { "/bin/cat", S.log, NULL };

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	if (fork() == 0) {
		dup2(2, 1);
		execv(cat[0], cat);
		_exit(127);
	}
	if (S.pid > 0)
		kill(S.pid, SIGKILL);
	_exit(1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_start_line_and_plain_commands),
		cmocka_unit_test(test_relay_refused_unarmed),
		cmocka_unit_test(test_relay_answer_after_500ms),
		cmocka_unit_test(test_relay_failures),
		cmocka_unit_test(test_relay_power_off),
		cmocka_unit_test(test_bad_frames),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_host_power_and_replace),
		cmocka_unit_test(test_tty_link),
		cmocka_unit_test(test_sigterm),
	};

	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_watchdog);
	alarm(100); /* under ctest's 120 s: a hang is reported with the se's log */
	return cmocka_run_group_tests_name("se_link", tests, group_setup, group_teardown);
}
