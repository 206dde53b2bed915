/* test_se_pcsc.c - `tapbridge se --vpcd` through the real PC/SC stack: pcscd with the
 * vpcd driver in network namespace tb_pcsc (tests/pcscd_rig.sh), the se started inside
 * that namespace, and this program as the PC/SC application (libpcsclite): the ATR,
 * SELECT ISD, a level-33 SCP03 session with the test server keys, GET DATA, the wallet's
 * balance through a reader channel, a wrong-key handshake, a relay that the phone
 * answers 500 ms later while pcscd's SCardTransmit blocks, the APDU round trip, and a
 * pcscd restart under the se. Skips only where the rig cannot run (exit 77). */
#define _GNU_SOURCE
#include "se_proc.h"
#include "pcsc_rig.h"

#include <pthread.h>

#include <winscard.h>

#define RDR0 "Virtual PCD 00 00"
#define PCSC_BUF 65548
#define ATR_HEX "3B8B8001806974617062726964676599"
#define SERVICE 0x00000009u

static struct {
	char dir[64], bin[4096], img[128], link[128], log[128];
	int rig_skip;
	volatile pid_t pid;
	SCARDCONTEXT ctx;
} S;

/* A hung test leaves neither the se nor pcscd behind. */
static void on_fatal_signal(int sig)
{
	(void)sig;
	if (S.pid > 0)
		kill(S.pid, SIGKILL);
	if (rig_started)
		(void)rig_run("stop");
	_exit(1);
}

static void cleanup_at_exit(void)
{
	if (S.pid > 0) {
		kill(S.pid, SIGKILL);
		waitpid(S.pid, NULL, 0);
		S.pid = 0;
	}
	rig_stop();
}

/* Waits for the card in RDR0 with SCardGetStatusChange (it blocks until a change). */
static void pc_wait_present(int timeout_ms)
{
	SCARD_READERSTATE rs;
	int64_t end = sp_now_us() + (int64_t)timeout_ms * 1000;

	memset(&rs, 0, sizeof(rs));
	rs.szReader = RDR0;
	rs.dwCurrentState = SCARD_STATE_UNAWARE;
	for (;;) {
		LONG rv = SCardGetStatusChange(S.ctx, 200, &rs, 1);

		if (rv == SCARD_S_SUCCESS && (rs.dwEventState & SCARD_STATE_PRESENT))
			return;
		if (sp_now_us() > end)
			fail_msg("no card in %s after %d ms (last: %s)", RDR0, timeout_ms,
				 pcsc_stringify_error(rv));
		if (rv == SCARD_S_SUCCESS)
			rs.dwCurrentState = rs.dwEventState;
		else if (rv != SCARD_E_TIMEOUT)
			sp_sleep_ms(50); /* the reader is not listed yet: ask again */
	}
}

static void se_start(void)
{
	char vpcd[] = "127.0.0.1:35963";
	char *argv[] = { "/usr/sbin/ip", "netns", "exec", "tb_pcsc", S.bin, "se", "--image", S.img,
			 "--vpcd", vpcd, "--link", S.link, NULL };
	char buf[4096];
	int64_t end = sp_now_us() + 10 * 1000000;

	if (access(argv[0], X_OK) != 0)
		argv[0] = "/sbin/ip";
	S.pid = sp_spawn(argv, S.log); /* ip netns exec execs the se: same pid */
	for (;;) {
		FILE *f = fopen(S.log, "r");
		size_t n = 0;

		if (f != NULL) {
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
		}
		buf[n] = '\0';
		if (strstr(buf, "tapbridge se: serial ") != NULL)
			break;
		if (waitpid(S.pid, NULL, WNOHANG) == S.pid || sp_now_us() > end) {
			S.pid = 0;
			fail_msg("tapbridge se did not start:\n%s", buf);
		}
		sp_sleep_ms(10);
	}
	print_message("%s", buf);
}

static int group_setup(void **state)
{
	int rc;

	(void)state;
	rc = rig_run("start");
	if (rc == 77) {
		S.rig_skip = 1;
		print_message("test_se_pcsc: PC/SC tests SKIPPED: the pcscd rig cannot run here "
			      "(reason above: needs root, ip netns, pcscd and vsmartcard-vpcd)\n");
		return 0;
	}
	if (rc != 0) {
		print_error("test_se_pcsc: pcscd rig start failed (exit %d%s)\n", rc,
			    rc == 3 ? ": another pcscd runs on this machine and only one fits; "
				      "stop it first" : ", reason above");
		return -1;
	}
	rig_started = 1;
	strcpy(S.dir, "/tmp/tb_se_pcsc.XXXXXX");
	assert_non_null(mkdtemp(S.dir));
	sp_bin(S.bin, sizeof(S.bin));
	snprintf(S.img, sizeof(S.img), "%s/se.img", S.dir);
	snprintf(S.link, sizeof(S.link), "%s/link.sock", S.dir);
	snprintf(S.log, sizeof(S.log), "%s/se.log", S.dir);
	sp_make_image(S.bin, S.img);
	se_start();
	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &S.ctx) != SCARD_S_SUCCESS) {
		print_error("test_se_pcsc: SCardEstablishContext failed\n");
		return -1;
	}
	pc_wait_present(10000);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[200];

	(void)state;
	if (S.ctx != 0)
		SCardReleaseContext(S.ctx);
	S.ctx = 0;
	if (S.pid > 0) {
		int rc = sp_stop(S.pid);

		S.pid = 0;
		if (rc != 0) {
			print_error("test_se_pcsc: tapbridge se exited with %d; its log:\n", rc);
			snprintf(cmd, sizeof(cmd), "cat '%s' >&2", S.log);
			if (system(cmd) != 0)
				print_error("(no log)\n");
		}
	}
	rig_stop();
	if (S.dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", S.dir);
		if (system(cmd) != 0)
			print_error("could not remove %s\n", S.dir);
	}
	return 0;
}

#define PCSC_RUNS()                \
	do {                       \
		if (S.rig_skip)    \
			skip();    \
	} while (0)

static SCARDHANDLE pc_connect(void)
{
	SCARDHANDLE h = 0;
	DWORD proto = 0;
	LONG rv = SCardConnect(S.ctx, RDR0, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &h, &proto);

	if (rv != SCARD_S_SUCCESS)
		fail_msg("SCardConnect: %s", pcsc_stringify_error(rv));
	assert_int_equal(proto, SCARD_PROTOCOL_T1);
	return h;
}

static size_t pc_xmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap)
{
	SCARDHANDLE *h = ctx;
	DWORD rlen = (DWORD)cap;
	LONG rv = SCardTransmit(*h, SCARD_PCI_T1, cmd, (DWORD)n, NULL, resp, &rlen);

	if (rv != SCARD_S_SUCCESS)
		fail_msg("SCardTransmit: %s", pcsc_stringify_error(rv));
	return rlen;
}

static void chan_init(struct sp_chan *c, SCARDHANDLE *h)
{
	memset(c, 0, sizeof(*c));
	c->xmit = pc_xmit;
	c->ctx = h;
}

/* ---------------------------------------------------------------- tests --- */

static void test_atr(void **state)
{
	char name[128];
	DWORD nlen = sizeof(name), st = 0, proto = 0, alen = 40;
	uint8_t atr[40];
	SCARDHANDLE h;

	(void)state;
	PCSC_RUNS();
	h = pc_connect();
	assert_int_equal(SCardStatus(h, name, &nlen, &st, &proto, atr, &alen), SCARD_S_SUCCESS);
	assert_string_equal(name, RDR0);
	assert_true((st & SCARD_PRESENT) && (st & SCARD_POWERED));
	assert_hex_equal(atr, alen, ATR_HEX);
	SCardDisconnect(h, SCARD_LEAVE_CARD);
}

static void test_isd_level33(void **state)
{
	struct scp_keys k;
	struct sp_chan c;
	SCARDHANDLE h;
	const uint8_t *v;

	(void)state;
	PCSC_RUNS();
	h = pc_connect();
	chan_init(&c, &h);
	assert_int_equal(sp_raw_hex(&c, "00A4040008A000000151000000"), SW_OK);
	assert_hex_equal(c.resp, c.n, "6F108408A000000151000000A5049F6501FF");
	sp_server_keys(&k);
	assert_int_equal(sp_open(&c, SP_SERVER_KVN, &k, 0x33, se_isd_aid, SE_ISD_AID_LEN), 0);
	/* CPLC: IC fabricator = serial 0-1, IC serial number = 4-7, batch = 2-3. */
	assert_int_equal(sp_cmd_hex(&c, "80CA9F7F00"), SW_OK);
	assert_true(c.authenticated);
	assert_int_equal(c.n, 3 + 42);
	v = c.resp + 3;
	assert_hex_equal(c.resp, 3, "9F7F2A");
	assert_hex_equal(v, 2, "5345");
	assert_hex_equal(v + 12, 4, "00004321");
	assert_hex_equal(v + 16, 2, "0000");
	assert_int_equal(sp_cmd_hex(&c, "80CA004500"), SW_OK);
	assert_hex_equal(c.resp, c.n, "4508" SP_SERIAL_HEX);
	/* Key information: three AES keys of 16 bytes in set 30, of 32 in set 31. */
	assert_int_equal(sp_cmd_hex(&c, "80CA00E000"), SW_OK);
	assert_true(c.authenticated);
	assert_hex_equal(c.resp, c.n,
			 "E024C00401308810C00402308810C00403308810"
			 "C00401318820C00402318820C00403318820");
	SCardDisconnect(h, SCARD_RESET_CARD);
}

static void test_wallet_balance(void **state)
{
	struct scp_keys k;
	struct sp_chan c;
	SCARDHANDLE h;

	(void)state;
	PCSC_RUNS();
	h = pc_connect();
	chan_init(&c, &h);
	assert_int_equal(sp_select(&c, se_wallet_aid, SE_WALLET_AID_LEN), SW_OK);
	sp_reader_keys(&k);
	assert_int_equal(sp_open(&c, SP_READER_KVN, &k, 0x33, se_wallet_aid, SE_WALLET_AID_LEN), 0);
	assert_int_equal(sp_balance(&c), 0);
	assert_true(c.authenticated);
	assert_hex_equal(c.resp + 4, 8, "00000000000186A0"); /* counter 0, maximum 100000 */
	SCardDisconnect(h, SCARD_RESET_CARD);
}

static void test_wrong_keys(void **state)
{
	struct scp_keys k;
	struct sp_chan c;
	SCARDHANDLE h;

	(void)state;
	PCSC_RUNS();
	h = pc_connect();
	chan_init(&c, &h);
	assert_int_equal(sp_select(&c, se_isd_aid, SE_ISD_AID_LEN), SW_OK);
	/* A wrong Key-MAC: the card's cryptogram does not verify. (A wrong Key-ENC shows
	 * earlier: the pseudo-random card challenge is made with it.) */
	sp_server_keys(&k);
	k.mac[0] ^= 0x01;
	assert_int_equal(sp_open(&c, SP_SERVER_KVN, &k, 0x33, se_isd_aid, SE_ISD_AID_LEN),
			 TB_E_SCP_CARD_CRYPTOGRAM);
	sp_server_keys(&k);
	k.enc[0] ^= 0x01;
	assert_int_equal(sp_open(&c, SP_SERVER_KVN, &k, 0x33, se_isd_aid, SE_ISD_AID_LEN),
			 TB_E_SCP_CHALLENGE);
	/* No session came of it; the card and the key set are fine. */
	assert_int_equal(sp_raw_hex(&c, "80CA00E000"), SW_SECURITY_STATUS);
	sp_server_keys(&k);
	assert_int_equal(sp_open(&c, SP_SERVER_KVN, &k, 0x33, se_isd_aid, SE_ISD_AID_LEN), 0);
	assert_int_equal(sp_cmd_hex(&c, "80CA004500"), SW_OK);
	assert_true(c.authenticated);
	/* A key set the card does not have. */
	assert_int_equal(sp_open(&c, 0x42, &k, 0x33, se_isd_aid, SE_ISD_AID_LEN), TB_E_SCP_SW);
	SCardDisconnect(h, SCARD_RESET_CARD);
}

struct envelope_call {
	int64_t t0, t1;
	uint8_t resp[64];
	DWORD n;
	LONG rv;
};

/* The reader's blocking SCardTransmit, in a thread with a context of its own. */
static void *envelope_thread(void *arg)
{
	static const uint8_t sel[] = { 0x00, 0xA4, 0x04, 0x00, 0x0B, 0xF0, 'T', 'A', 'P', 'B',
				       'R',  'I',  'D',  'G',  'E',  0x01, 0x00 };
	static const uint8_t env[] = { 0x80, 0xC2, 0x00, 0x00, 0x03, 0xE1, 0xE2, 0xE3, 0x00 };
	struct envelope_call *e = arg;
	SCARDCONTEXT ctx = 0;
	SCARDHANDLE h = 0;
	DWORD proto = 0;

	e->rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
	if (e->rv == SCARD_S_SUCCESS)
		e->rv = SCardConnect(ctx, RDR0, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &h, &proto);
	if (e->rv == SCARD_S_SUCCESS) {
		e->n = sizeof(e->resp);
		e->rv = SCardTransmit(h, SCARD_PCI_T1, sel, sizeof(sel), NULL, e->resp, &e->n);
	}
	if (e->rv == SCARD_S_SUCCESS) {
		e->n = sizeof(e->resp);
		e->t0 = sp_now_us();
		e->rv = SCardTransmit(h, SCARD_PCI_T1, env, sizeof(env), NULL, e->resp, &e->n);
		e->t1 = sp_now_us();
		SCardDisconnect(h, SCARD_LEAVE_CARD);
	}
	if (ctx != 0)
		SCardReleaseContext(ctx);
	return NULL;
}

/* Through pcscd the reader's SCardTransmit blocks while the phone takes 500 ms; the se
 * answers the phone meanwhile. */
static void test_relay_500ms_through_pcscd(void **state)
{
	uint8_t arm[13] = { 0x80, 0x6C, 0x00, 0x00, 0x08 }, ans[4 + 3];
	struct envelope_call e;
	struct peer phone;
	struct scp_keys k;
	struct ev ev;
	pthread_t th;
	int64_t t_relay;
	uint32_t expiry = (uint32_t)time(NULL) + 600;

	(void)state;
	PCSC_RUNS();
	peer_connect(&phone, S.link);
	assert_int_equal(sp_select(&phone.ch, se_wallet_aid, SE_WALLET_AID_LEN), SW_OK);
	sp_server_keys(&k);
	assert_int_equal(sp_open(&phone.ch, SP_SERVER_KVN, &k, 0x33, se_wallet_aid,
				 SE_WALLET_AID_LEN), 0);
	arm[5] = arm[6] = arm[7] = 0;
	arm[8] = (uint8_t)SERVICE;
	arm[9] = (uint8_t)(expiry >> 24);
	arm[10] = (uint8_t)(expiry >> 16);
	arm[11] = (uint8_t)(expiry >> 8);
	arm[12] = (uint8_t)expiry;
	assert_int_equal(sp_cmd(&phone.ch, arm, sizeof(arm)), SW_OK);
	memset(&e, 0, sizeof(e));
	assert_int_equal(pthread_create(&th, NULL, envelope_thread, &e), 0);
	peer_event(&phone, 0x90, &ev, 5000);
	t_relay = sp_now_us();
	assert_hex_equal(ev.p + 4, ev.n - 4, "00000009E1E2E3");
	assert_int_equal(sp_cmd_hex(&phone.ch, "80CA00C100"), SW_OK); /* not serialised */
	assert_true(phone.ch.authenticated);
	while (sp_now_us() - t_relay < 500000)
		sp_sleep_ms(5);
	memcpy(ans, ev.p, 4);
	ans[4] = 0xB1;
	ans[5] = 0xB2;
	ans[6] = 0xB3;
	fr_send(phone.fd, 0x10, ans, sizeof(ans));
	pthread_join(th, NULL);
	if (e.rv != SCARD_S_SUCCESS)
		fail_msg("ENVELOPE through pcscd: %s", pcsc_stringify_error(e.rv));
	assert_hex_equal(e.resp, e.n, "B1B2B39000");
	print_message("ENVELOPE through pcscd answered by the phone after %lld ms\n",
		      (long long)((e.t1 - e.t0) / 1000));
	assert_true(e.t1 - e.t0 >= 500000);
	assert_int_equal(sp_cmd_hex(&phone.ch, "806C030000"), SW_OK); /* disarm */
	peer_close(&phone);
}

static void test_round_trip(void **state)
{
	enum { N = 1000 };
	struct scp_keys k;
	struct sp_chan c;
	SCARDHANDLE h;
	int64_t t0, t1, t2;

	(void)state;
	PCSC_RUNS();
	h = pc_connect();
	chan_init(&c, &h);
	for (int i = 0; i < 20; i++) /* warm up */
		(void)sp_raw_hex(&c, "00A4040008A000000151000000");
	t0 = sp_now_us();
	for (int i = 0; i < N; i++)
		if (sp_raw_hex(&c, "00A4040008A000000151000000") != SW_OK)
			fail_msg("SELECT %d: %04X", i, c.sw);
	t1 = sp_now_us();
	sp_server_keys(&k);
	assert_int_equal(sp_open(&c, SP_SERVER_KVN, &k, 0x33, se_isd_aid, SE_ISD_AID_LEN), 0);
	for (int i = 0; i < N; i++)
		if (sp_cmd_hex(&c, "80CA004500") != SW_OK || !c.authenticated)
			fail_msg("GET DATA %d: %04X", i, c.sw);
	t2 = sp_now_us();
	SCardDisconnect(h, SCARD_RESET_CARD);
	printf("se through pcscd: plain SELECT %.1f us mean, level-33 GET DATA %.1f us mean "
	       "(over %d APDUs each)\n", (double)(t1 - t0) / N, (double)(t2 - t1) / N, N);
	fflush(stdout);
}

/* pcscd restarts under the se: it reconnects by itself and answers again. */
static void test_pcscd_restart(void **state)
{
	struct sp_chan c;
	SCARDHANDLE h;

	(void)state;
	PCSC_RUNS();
	SCardReleaseContext(S.ctx);
	S.ctx = 0;
	assert_int_equal(rig_run("restart"), 0);
	assert_int_equal(SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &S.ctx),
			 SCARD_S_SUCCESS);
	pc_wait_present(10000);
	h = pc_connect();
	chan_init(&c, &h);
	assert_int_equal(sp_raw_hex(&c, "00A4040008A000000151000000"), SW_OK);
	SCardDisconnect(h, SCARD_LEAVE_CARD);
}

static void test_stop(void **state)
{
	int rc;

	(void)state;
	PCSC_RUNS();
	rc = sp_stop(S.pid);
	S.pid = 0;
	if (rc != 0) {
		char cmd[200];

		snprintf(cmd, sizeof(cmd), "cat '%s' >&2", S.log);
		if (system(cmd) != 0)
			print_error("(no log)\n");
		fail_msg("tapbridge se exited with %d on SIGTERM", rc);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_atr),
		cmocka_unit_test(test_isd_level33),
		cmocka_unit_test(test_wallet_balance),
		cmocka_unit_test(test_wrong_keys),
		cmocka_unit_test(test_relay_500ms_through_pcscd),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_pcscd_restart),
		cmocka_unit_test(test_stop),
	};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	alarm(100); /* below ctest's 120 s, so the rig and the se are stopped by us */
	signal(SIGPIPE, SIG_IGN);
	rig_path_init("test_se_pcsc");
	atexit(cleanup_at_exit);
	return cmocka_run_group_tests_name("se_pcsc", tests, group_setup, group_teardown);
}
