/* test_reader_pcsc.c - `tapbridge reader` as a process through the real PC/SC stack:
 * pcscd with the vpcd driver in network namespace tb_pcsc (tests/pcscd_rig.sh), `tapbridge
 * se --vpcd` inside it holding an image with the READER key set derived from the test
 * terminal key, the server's channel over the se's phone link to credit and to store a
 * flag signed by a test ECDSA key, then an offline-flag pay (flow 3) by the reader over
 * PC/SC, and the same over the se's direct socket (--connect). Skips only where the rig
 * cannot run (exit 77). Needs RESOURCE_LOCK pcscd. */
#define _GNU_SOURCE
#include "se_proc.h"
#include "pcsc_rig.h"

#include <sys/stat.h>

#include "div.h"

#define RDR0 "Virtual PCD 00 00"
#define TERM_KVN 0x21

static const uint8_t term_key[32] = { 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0x7B,
				      0x7C, 0x7D, 0x7E, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0x85, 0x86,
				      0x87, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x8D, 0x8E, 0x8F, 0x90 };

static struct {
	char dir[64], bin[4096], img[128], link[128], sock[128], log[128], keys[128], state[128],
		out[128];
	int rig_skip;
	volatile pid_t pid;
	uint8_t priv[32], pub[65];
} S;

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

static void hex_of(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02X", p[i]);
}

static void make_image(void)
{
	uint8_t serial[8];
	struct scp_keys k;
	char enc[65], mac[65], dek[65];
	char *init[] = { S.bin, "admin", "se-init", "--image", S.img, "--serial", SP_SERIAL_HEX, NULL };
	char *server[] = { S.bin, "admin", "se-keys", "--image", S.img, "--kvn", "30",
			   "--enc", "000102030405060708090A0B0C0D0E0F",
			   "--mac", "101112131415161718191A1B1C1D1E1F",
			   "--dek", "202122232425262728292A2B2C2D2E2F", "--role", "server", NULL };
	char *reader[] = { S.bin, "admin", "se-keys", "--image", S.img, "--kvn", "21", "--enc", enc,
			   "--mac", mac, "--dek", dek, "--role", "reader", NULL };

	hexbuf(SP_SERIAL_HEX, serial, sizeof(serial));
	assert_int_equal(div_device_keys(term_key, 2, TERM_KVN, 16, serial, &k), 0);
	hex_of(k.enc, 16, enc);
	hex_of(k.mac, 16, mac);
	hex_of(k.dek, 16, dek);
	assert_int_equal(sp_run(init, "/dev/null"), 0);
	assert_int_equal(sp_run(server, "/dev/null"), 0);
	assert_int_equal(sp_run(reader, "/dev/null"), 0);
}

static void write_keyfile(void)
{
	char term[65], pub[131];
	FILE *f;

	hex_of(term_key, 32, term);
	hex_of(S.pub, 65, pub);
	f = fopen(S.keys, "w");
	assert_non_null(f);
	fprintf(f, "# reader 7, key set 31 (reader <-> server)\n"
		   "enc 404142434445464748494A4B4C4D4E4F\nmac 505152535455565758595A5B5C5D5E5F\n"
		   "dek 606162636465666768696A6B6C6D6E6F\nid 7\nkvn 31\nterminal %s\n"
		   "terminal-kvn 21\nterminal-keylen 16\nflag-pub %s\n", term, pub);
	fclose(f);
	assert_int_equal(chmod(S.keys, 0600), 0);
}

static void se_start(void)
{
	char vpcd[] = "127.0.0.1:35963", listen[160];
	char *argv[] = { "/usr/sbin/ip", "netns", "exec", "tb_pcsc", S.bin, "se", "--image", S.img,
			 "--vpcd", vpcd, "--link", S.link, "--listen", listen, NULL };
	char buf[4096];
	int64_t end = sp_now_us() + 10 * 1000000;

	snprintf(listen, sizeof(listen), "unix:%s", S.sock);
	if (access(argv[0], X_OK) != 0)
		argv[0] = "/sbin/ip";
	S.pid = sp_spawn(argv, S.log);
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
}

static int group_setup(void **state)
{
	int rc;

	(void)state;
	rc = rig_run("start");
	if (rc == 77) {
		S.rig_skip = 1;
		print_message("test_reader_pcsc: SKIPPED: the pcscd rig cannot run here\n");
		return 0;
	}
	if (rc != 0) {
		print_error("test_reader_pcsc: pcscd rig start failed (exit %d)\n", rc);
		return -1;
	}
	rig_started = 1;
	strcpy(S.dir, "/tmp/tb_rdr_pcsc.XXXXXX");
	assert_non_null(mkdtemp(S.dir));
	sp_bin(S.bin, sizeof(S.bin));
	snprintf(S.img, sizeof(S.img), "%s/se.img", S.dir);
	snprintf(S.link, sizeof(S.link), "%s/link.sock", S.dir);
	snprintf(S.sock, sizeof(S.sock), "%s/cl.sock", S.dir);
	snprintf(S.log, sizeof(S.log), "%s/se.log", S.dir);
	snprintf(S.keys, sizeof(S.keys), "%s/reader-7.keys", S.dir);
	snprintf(S.state, sizeof(S.state), "%s/state", S.dir);
	snprintf(S.out, sizeof(S.out), "%s/reader.out", S.dir);
	assert_int_equal(mkdir(S.state, 0700), 0);
	assert_int_equal(crypto_p256_keygen(S.priv, S.pub), 0);
	make_image();
	write_keyfile();
	se_start();
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[200];

	(void)state;
	if (S.pid > 0) {
		(void)sp_stop(S.pid);
		S.pid = 0;
	}
	rig_stop();
	if (S.dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", S.dir);
		if (system(cmd) != 0)
			print_error("could not remove %s\n", S.dir);
	}
	return 0;
}

/* The server's channel over the phone link: one secured wallet command. */
static void server_cmd(const uint8_t *cmd, size_t n, uint8_t *resp, size_t *rn)
{
	struct peer phone;
	struct scp_keys k;

	peer_connect(&phone, S.link);
	assert_int_equal(sp_select(&phone.ch, se_wallet_aid, SE_WALLET_AID_LEN), SW_OK);
	sp_server_keys(&k);
	assert_int_equal(sp_open(&phone.ch, SP_SERVER_KVN, &k, 0x33, se_wallet_aid,
				 SE_WALLET_AID_LEN), 0);
	if (sp_cmd(&phone.ch, cmd, n) != SW_OK)
		fail_msg("server command %02X: %04X", cmd[1], phone.ch.sw);
	if (resp != NULL) {
		memcpy(resp, phone.ch.resp, phone.ch.n);
		*rn = phone.ch.n;
	}
	peer_close(&phone);
}

static uint32_t balance(void)
{
	uint8_t cmd[] = { 0x80, 0x30, 0x00, 0x00, 0x00 }, r[64];
	size_t n = 0;

	server_cmd(cmd, sizeof(cmd), r, &n);
	assert_int_equal(n, 12);
	return (uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3];
}

static void put_flag(uint32_t limit)
{
	uint8_t cmd[5 + 37 + 64] = { 0x80, 0x64, 0x00, 0x00, 0x65 }, msg[42];
	uint8_t *t = cmd + 5;
	uint32_t expiry = (uint32_t)time(NULL) + 300;

	t[0] = 0x01;
	hexbuf(SP_SERIAL_HEX, t + 1, 8);
	memcpy(t + 9, "\x00\x00\x00\x0C", 4);
	for (int i = 0; i < 4; i++) {
		t[13 + i] = (uint8_t)(expiry >> (24 - 8 * i));
		t[33 + i] = (uint8_t)(limit >> (24 - 8 * i));
	}
	assert_int_equal(crypto_random(t + 17, 16), 0);
	memcpy(msg, "TBSG\x01", 5);
	memcpy(msg + 5, t, 37);
	assert_int_equal(crypto_ecdsa_sign(S.priv, msg, sizeof(msg), cmd + 5 + 37), 0);
	server_cmd(cmd, sizeof(cmd), NULL, NULL);
}

/* Runs the reader; its output in out (cap bytes); its exit status. */
static int run_reader(const char *port_opt, const char *port, char *out, size_t cap)
{
	char *argv[] = { S.bin, "reader", "--keys", S.keys, "--state", S.state, (char *)port_opt,
			 (char *)port, "--app", "pay", "--amount", "300", "--timeout", "10", NULL };
	int rc = sp_run(argv, S.out);
	FILE *f = fopen(S.out, "r");
	size_t n;

	assert_non_null(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
	print_message("%s", out);
	return rc;
}

static void test_offline_pay_pcsc(void **state)
{
	uint8_t credit[] = { 0x80, 0x32, 0x00, 0x00, 0x04, 0x00, 0x00, 0x03, 0xE8 };
	char out[4096];
	struct stat sb;

	(void)state;
	if (S.rig_skip)
		skip();
	server_cmd(credit, sizeof(credit), NULL, NULL);
	put_flag(500);
	assert_int_equal(run_reader("--pcsc", RDR0, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "reader: tap your phone\n"));
	assert_non_null(strstr(out, "reader: authenticated se " SP_SERIAL_HEX "\n"));
	assert_non_null(strstr(out, "reader: paid 300 (offline flag)\n"));
	assert_non_null(strstr(out, "reader: done\n"));
	assert_non_null(strstr(out, "reader: stats envelopes=0 tap-ms="));
	assert_int_equal(balance(), 700);
	{
		char p[200];

		snprintf(p, sizeof(p), "%s/reader.state", S.state);
		assert_int_equal(stat(p, &sb), 0);
		assert_int_equal(sb.st_size, 16 + (27 + 20) + (27 + 33)); /* FLAG, then PAY */
	}
	/* The flag was consumed: the next tap is refused, exit 1, nothing paid. */
	assert_int_equal(run_reader("--pcsc", RDR0, out, sizeof(out)), 1);
	assert_non_null(strstr(out, "reader: refused: offline and no flag on the phone\n"));
	assert_int_equal(balance(), 700);
}

/* Flow 5's port: the se's direct contactless socket instead of PC/SC. */
static void test_offline_pay_connect(void **state)
{
	char out[4096], spec[160];

	(void)state;
	if (S.rig_skip)
		skip();
	put_flag(500);
	snprintf(spec, sizeof(spec), "unix:%s", S.sock);
	assert_int_equal(run_reader("--connect", spec, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "reader: paid 300 (offline flag)\n"));
	assert_int_equal(balance(), 400);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_offline_pay_pcsc),
		cmocka_unit_test(test_offline_pay_connect),
	};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	alarm(100);
	signal(SIGPIPE, SIG_IGN);
	rig_path_init("test_reader_pcsc");
	atexit(cleanup_at_exit);
	return cmocka_run_group_tests_name("reader_pcsc", tests, group_setup, group_teardown);
}
