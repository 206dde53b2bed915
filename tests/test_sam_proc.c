/* test_sam_proc.c - `tapbridge sam` as real processes with SoftHSM2 holding the KEK in a
 * temporary token: --init, the owner-only socket, peers of another uid refused, a
 * pipelined burst of 1000 requests answered in order, SCP03 handshakes through the
 * process against in-process cards (one by one, then many concurrent ones on the async
 * client, timed), a malformed request closing its connection, rotation surviving a
 * restart, and the key file refusing to open without its token. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "frame.h"
#include "io/sam_client.h"
#include "sam.h"
#include "scp_sim.h"
#include "vec.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"

static char g_dir[PATH_MAX], g_bin[PATH_MAX], g_keys[PATH_MAX], g_sock[PATH_MAX];
static char g_pin[PATH_MAX], g_log[PATH_MAX], g_conf[PATH_MAX];
static pid_t g_pid = -1;
static int g_skip;

static const uint8_t isd_aid[8] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
static const uint8_t cmd_get[] = { 0x80, 0xCA, 0x00, 0x66, 0x04, 0xDE, 0xAD, 0xBE, 0xEF, 0x00 };

static void path_in(char *out, const char *name)
{
	int n = snprintf(out, PATH_MAX, "%s/%s", g_dir, name);

	assert_true(n > 0 && n < PATH_MAX);
}

/* Runs argv with stdout and stderr appended to the log; returns the exit status. */
static pid_t spawn(char *const argv[], const char *conf)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(g_log, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		setenv("SOFTHSM2_CONF", conf, 1);
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

static int run(char *const argv[], const char *conf)
{
	int st = 0;
	pid_t pid = spawn(argv, conf);

	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* 1 when the log holds s (the messages the sam prints are part of its interface). */
static int log_has(const char *s)
{
	static char buf[1 << 16];
	FILE *f = fopen(g_log, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, s) != NULL;
}

static int try_connect(const char *path)
{
	struct sockaddr_un sa;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Starts the sam on g_sock with extra flags; waits until it answers. */
static void sam_start(const char *flag)
{
	char *argv[16];
	int i = 0, fd = -1;

	argv[i++] = g_bin;
	argv[i++] = (char *)"sam";
	argv[i++] = (char *)"--socket";
	argv[i++] = g_sock;
	argv[i++] = (char *)"--keys";
	argv[i++] = g_keys;
	argv[i++] = (char *)"--pkcs11";
	argv[i++] = (char *)MODULE;
	argv[i++] = (char *)"--token-label";
	argv[i++] = (char *)"tapbridge";
	argv[i++] = (char *)"--pin-file";
	argv[i++] = g_pin;
	argv[i++] = (char *)"--sessions";
	argv[i++] = (char *)"1024";
	if (flag != NULL)
		argv[i++] = (char *)flag;
	argv[i] = NULL;
	g_pid = spawn(argv, g_conf);
	for (int t = 0; t < 1000 && fd < 0; t++) {
		int st;

		if (waitpid(g_pid, &st, WNOHANG) == g_pid)
			fail_msg("the sam exited early (status %d); see %s", st, g_log);
		if ((fd = try_connect(g_sock)) < 0)
			usleep(10000);
	}
	assert_true(fd >= 0);
	close(fd);
}

static void sam_stop(void)
{
	int st = 0;

	if (g_pid <= 0)
		return;
	kill(g_pid, SIGTERM);
	assert_int_equal(waitpid(g_pid, &st, 0), g_pid);
	g_pid = -1;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static int group_setup(void **state)
{
	char exe[PATH_MAX], cmd[PATH_MAX * 2];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;
	FILE *f;
	struct stat st;

	(void)state;
	if (stat(MODULE, &st) != 0 || system("command -v softhsm2-util >/dev/null 2>&1") != 0) {
		fprintf(stderr, "SoftHSM2 is not installed: skipping the sam process tests\n");
		g_skip = 1;
		return 0;
	}
	assert_true(n > 0);
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	*slash = '\0';
	assert_true(snprintf(g_bin, sizeof(g_bin), "%s/tapbridge", exe) < (int)sizeof(g_bin));
	memcpy(g_dir, "/tmp/tb_sam_XXXXXX", sizeof("/tmp/tb_sam_XXXXXX"));
	assert_non_null(mkdtemp(g_dir));
	path_in(g_keys, "sam.keys");
	path_in(g_sock, "sam.sock");
	path_in(g_pin, "pin");
	path_in(g_log, "sam.log");
	path_in(g_conf, "softhsm2.conf");
	assert_true(snprintf(cmd, sizeof(cmd), "mkdir -p %s/tokens %s/tokens2", g_dir, g_dir) <
		    (int)sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	f = fopen(g_conf, "w");
	assert_non_null(f);
	fprintf(f, "directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\n",
		g_dir);
	fclose(f);
	assert_true(snprintf(cmd, sizeof(cmd), "SOFTHSM2_CONF=%s softhsm2-util --init-token --free "
			     "--label tapbridge --so-pin 12345678 --pin 1234 >/dev/null", g_conf) <
		    (int)sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	f = fopen(g_pin, "w");
	assert_non_null(f);
	fprintf(f, "1234\n");
	fclose(f);
	assert_int_equal(chmod(g_pin, 0600), 0);
	return 0;
}

static int group_teardown(void **state)
{
	char cmd[PATH_MAX + 16];

	(void)state;
	if (g_pid > 0) {
		kill(g_pid, SIGKILL);
		waitpid(g_pid, NULL, 0);
	}
	if (g_dir[0] != '\0') {
		if (snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir) >= (int)sizeof(cmd) ||
		    system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", g_dir);
	}
	return 0;
}

#define SKIP_IF_NO_SOFTHSM() do { if (g_skip) { skip(); } } while (0)

/* ---------------------------------------------------------------- init --- */

static void test_init(void **state)
{
	char *argv[] = { g_bin, "sam", "--init", "--keys", g_keys, "--pkcs11", MODULE,
			 "--token-label", "tapbridge", "--pin-file", g_pin, NULL };
	struct stat st;

	(void)state;
	SKIP_IF_NO_SOFTHSM();
	assert_int_equal(run(argv, g_conf), 0);
	assert_true(log_has("generated a new key-encryption key"));
	assert_int_equal(stat(g_keys, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Never over existing keys. */
	assert_int_equal(run(argv, g_conf), 1);
	assert_true(log_has("refusing to replace keys"));
	/* A PIN file others can read is refused. */
	chmod(g_pin, 0644);
	argv[4] = (char *)"/nonexistent-dir-xyz/k";
	assert_int_equal(run(argv, g_conf), 1);
	assert_true(log_has("only its owner can read"));
	chmod(g_pin, 0600);
}

/* --------------------------------------------------- socket and peers --- */

static void test_socket_and_peers(void **state)
{
	struct stat st;
	pid_t child;
	int status = 0;

	(void)state;
	SKIP_IF_NO_SOFTHSM();
	sam_start(NULL);
	assert_int_equal(stat(g_sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	if (geteuid() != 0) {
		fprintf(stderr, "not root: skipping the other-uid peer check\n");
		return;
	}
	/* Another uid: the 0600 socket refuses the connect itself; with the mode opened up
	 * (test only) the sam's SO_PEERCRED check still closes it without a word. */
	for (int opened = 0; opened < 2; opened++) {
		if (opened)
			assert_int_equal(chmod(g_sock, 0666), 0);
		assert_int_equal(chmod(g_dir, 0755), 0);
		child = fork();
		assert_true(child >= 0);
		if (child == 0) {
			uint8_t hello[10] = { 0, 0, 0, 6, SAM_HELLO, 0, 0, 0, 1, SAM_PROTO_VERSION };
			uint8_t buf[64];
			int fd;

			signal(SIGPIPE, SIG_IGN);
			if (setgid(65534) != 0 || setuid(65534) != 0)
				_exit(10);
			fd = try_connect(g_sock);
			if (fd < 0)
				_exit(errno == EACCES ? 20 : 11);
			if (write(fd, hello, sizeof(hello)) < 0) /* may fail: already closed */
				_exit(21);
			_exit(read(fd, buf, sizeof(buf)) <= 0 ? 21 : 12);
		}
		assert_int_equal(waitpid(child, &status, 0), child);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), opened ? 21 : 20);
		assert_int_equal(chmod(g_sock, 0600), 0);
		assert_int_equal(chmod(g_dir, 0700), 0);
	}
	assert_true(log_has("refused a connection from uid 65534"));
}

/* ------------------------------------------------------ pipelined burst --- */

static uint8_t g_wbuf[1000 * 64 + 64];
static uint8_t g_rbuf[SAM_REPLY_MAX];

static size_t put_frame(uint8_t *p, uint8_t type, uint32_t id, const uint8_t *body, size_t n)
{
	struct wr w = wr_init(p, 9 + n);

	(void)wr_u32be(&w, (uint32_t)(1 + 4 + n));
	(void)wr_u8(&w, type);
	(void)wr_u32be(&w, id);
	(void)wr_bytes(&w, body, n);
	return w.len;
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		assert_true(w > 0);
		p += w;
		n -= (size_t)w;
	}
}

/* Reads one reply frame; returns its type, *id and *body into g_rbuf. */
static uint8_t read_reply(int fd, struct frame_rd *f, uint8_t *in, size_t *in_off,
			  size_t *in_len, uint32_t *id, const uint8_t **body, size_t *n)
{
	for (;;) {
		if (frame_rd_state(f) == FRAME_READY) {
			uint8_t type;
			const uint8_t *p;
			size_t pn;

			assert_int_equal(frame_rd_take(f, &type, &p, &pn), 0);
			assert_true(pn >= 4);
			*id = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
			*body = p + 4;
			*n = pn - 4;
			return type;
		}
		assert_int_equal(frame_rd_state(f), FRAME_NEED_MORE);
		if (*in_off == *in_len) {
			ssize_t r = read(fd, in, 4096);

			assert_true(r > 0);
			*in_off = 0;
			*in_len = (size_t)r;
		}
		*in_off += frame_rd_push(f, in + *in_off, *in_len - *in_off);
	}
}

static void test_pipelined_burst(void **state)
{
	static const uint8_t types[4] = { SAM_STATUS, SAM_SIGN, SAM_SEAL_BLOB, SAM_GET_PUBLIC_KEY };
	uint32_t limits[FRAME_TYPES];
	uint8_t in[4096], hello = SAM_PROTO_VERSION;
	struct frame_rd f;
	size_t off = 0, in_off = 0, in_len = 0;
	int fd;

	(void)state;
	SKIP_IF_NO_SOFTHSM();
	fd = try_connect(g_sock);
	assert_true(fd >= 0);
	sam_reply_limits(limits);
	assert_int_equal(frame_rd_init(&f, g_rbuf, sizeof(g_rbuf), sizeof(g_rbuf) + 1, limits), 0);
	off += put_frame(g_wbuf + off, SAM_HELLO, 7, &hello, 1);
	for (uint32_t i = 0; i < 1000; i++) {
		uint8_t body[32] = { 0 };
		size_t bn = 0;

		switch (types[i % 4]) {
		case SAM_SIGN: body[0] = SAM_SIGN_FLAG; body[1] = (uint8_t)i; bn = 2; break;
		case SAM_SEAL_BLOB: body[0] = 2; body[1] = 'i'; body[2] = (uint8_t)i; bn = 10; break;
		case SAM_GET_PUBLIC_KEY: bn = 1; break;
		default: break;
		}
		off += put_frame(g_wbuf + off, types[i % 4], 1000 + i, body, bn);
	}
	/* Everything at once, before reading a single reply. */
	write_all(fd, g_wbuf, off);
	for (uint32_t i = 0; i <= 1000; i++) {
		const uint8_t *body;
		size_t n;
		uint32_t id;
		uint8_t type = read_reply(fd, &f, in, &in_off, &in_len, &id, &body, &n);

		if (i == 0) {
			assert_int_equal(type, SAM_REPLY(SAM_HELLO));
			assert_int_equal(id, 7);
			continue;
		}
		assert_int_equal(id, 1000 + i - 1);
		assert_int_equal(type, SAM_REPLY(types[(i - 1) % 4]));
	}
	/* A frame of a type not in the table ends the connection without a reply. */
	off = put_frame(g_wbuf, 0x7E, 1, NULL, 0);
	write_all(fd, g_wbuf, off);
	assert_int_equal(read(fd, in, sizeof(in)), 0);
	close(fd);
	assert_true(log_has("closed: bad frame"));
}

/* ------------------------------------------------------------ SCP03 --- */

/* The card of serial, personalised with the keys the sam derives for it. */
static void card_for(struct sam_sync *s, struct scp_sim *m, const uint8_t serial[8])
{
	uint8_t body[16], reply[128];
	struct wr w = wr_init(body, sizeof(body));
	struct scp_keys k;
	size_t rn = 0;

	assert_int_equal(sam_enc_derive(&w, SAM_FAM_SE_SERVER, 0, serial), 0);
	assert_int_equal(sam_sync_call(s, SAM_DERIVE_DEVICE_KEYS, body, w.len, reply, sizeof(reply),
				       &rn), 0);
	assert_int_equal(rn, 3 + 3 * 16);
	memset(&k, 0, sizeof(k));
	k.len = reply[2];
	memcpy(k.enc, reply + 3, 16);
	memcpy(k.mac, reply + 19, 16);
	memcpy(k.dek, reply + 35, 16);
	assert_int_equal(scp_sim_init(m, 0x70, serial, isd_aid, sizeof(isd_aid), &k, reply[1]), 0);
	ct_wipe(&k, sizeof(k));
	ct_wipe(reply, sizeof(reply));
}

static void test_scp_handshake_sync(void **state)
{
	static const uint8_t serial[8] = { 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80 };
	uint8_t body[4200], reply[4200], resp[600], ea_resp[128], r1[600];
	struct sam_open_reply o;
	struct sam_step_reply st;
	struct sam_unwrap_reply u;
	struct scp_sim m;
	struct sam_sync s;
	struct wr w;
	size_t rn = 0, cn = 0, ean = 0, r1n = 0;

	(void)state;
	SKIP_IF_NO_SOFTHSM();
	assert_int_equal(sam_sync_connect(&s, g_sock), 0);
	assert_int_equal(s.hello.caps, 0);
	/* Not a factory sam: no device keys for anyone. */
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_derive(&w, SAM_FAM_SE_SERVER, 0, serial), 0);
	assert_int_equal(sam_sync_call(&s, SAM_DERIVE_DEVICE_KEYS, body, w.len, reply,
				       sizeof(reply), &rn), TB_E_SAM_DENIED);
	sam_sync_close(&s);
	sam_stop();
	sam_start("--allow-perso");
	assert_int_equal(sam_sync_connect(&s, g_sock), 0);
	assert_int_equal(s.hello.caps, SAM_CAP_PERSO);
	card_for(&s, &m, serial);

	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_open(&w, SAM_FAM_SE_SERVER, 0, serial, 0x33, 8, isd_aid,
					  sizeof(isd_aid)), 0);
	assert_int_equal(sam_sync_call(&s, SAM_SCP_OPEN, body, w.len, reply, sizeof(reply), &rn), 0);
	assert_int_equal(sam_dec_scp_open(reply, rn, &o), 0);
	assert_int_equal(scp_sim_apdu(&m, o.apdu, o.n, resp, sizeof(resp), &cn), 0);
	/* EXTERNAL AUTHENTICATE and the first command in one step. */
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_step(&w, o.handle, resp, cn, cmd_get, sizeof(cmd_get)), 0);
	assert_int_equal(sam_sync_call(&s, SAM_SCP_STEP, body, w.len, reply, sizeof(reply), &rn), 0);
	assert_int_equal(sam_dec_scp_step(reply, rn, &st), 0);
	assert_int_equal(st.state, SAM_SS_EA_SPEC);
	assert_int_equal(scp_sim_apdu(&m, st.ea, st.ea_n, ea_resp, sizeof(ea_resp), &ean), 0);
	assert_int_equal(scp_sim_apdu(&m, st.wrapped, st.wrapped_n, r1, sizeof(r1), &r1n), 0);
	assert_int_equal(m.auth_ok, 1);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_step(&w, o.handle, ea_resp, ean, NULL, 0), 0);
	assert_int_equal(sam_sync_call(&s, SAM_SCP_STEP, body, w.len, reply, sizeof(reply), &rn), 0);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_handle(&w, o.handle, r1, r1n), 0);
	assert_int_equal(sam_sync_call(&s, SAM_SCP_UNWRAP, body, w.len, reply, sizeof(reply), &rn), 0);
	assert_int_equal(sam_dec_scp_unwrap(reply, rn, &u), 0);
	assert_int_equal(u.sw, 0x9000);
	assert_int_equal(u.authenticated, 1);
	assert_int_equal(u.n, 4);
	assert_hex_equal(u.data, 4, "DEADBEEF");
	/* Out of order (UNWRAP with nothing wrapped) ends the connection. */
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_scp_handle(&w, o.handle, r1, r1n), 0);
	assert_int_equal(sam_sync_call(&s, SAM_SCP_UNWRAP, body, w.len, reply, sizeof(reply), &rn),
			 TB_E_IO);
	sam_sync_close(&s);
}

/* ------------------------------------------ many concurrent handshakes --- */

#define BENCH_CONC 64
#define BENCH_TOTAL 3000

struct bench;

struct hs {
	struct bench *b;
	struct scp_sim card;
	uint8_t serial[8];
	uint32_t handle;
	uint8_t r1[600];
	size_t r1n;
	int checks;
};

struct bench {
	struct event_base *base;
	struct sam_client *c;
	struct hs hs[BENCH_CONC];
	int started, done, failed;
};

static void hs_start(struct hs *h);

static void hs_fail(struct hs *h, const char *what, int err)
{
	fprintf(stderr, "handshake failed at %s: %s\n", what, tb_errname(err));
	h->b->failed++;
	event_base_loopbreak(h->b->base);
}

static void on_close(void *arg, int err, const uint8_t *b, size_t n)
{
	struct hs *h = arg;

	(void)b;
	(void)n;
	if (err != 0 || h->checks != 2) {
		hs_fail(h, "close", err);
		return;
	}
	h->b->done++;
	if (h->b->started < BENCH_TOTAL)
		hs_start(h);
	else if (h->b->done == BENCH_TOTAL)
		event_base_loopbreak(h->b->base);
}

static void on_ea(void *arg, int err, const uint8_t *b, size_t n)
{
	struct hs *h = arg;
	struct sam_step_reply st;

	if (err != 0 || sam_dec_scp_step(b, n, &st) != 0 || st.state != SAM_SS_DUE) {
		hs_fail(h, "EA check", err);
		return;
	}
	h->checks++;
}

static void on_unwrap(void *arg, int err, const uint8_t *b, size_t n)
{
	struct hs *h = arg;
	struct sam_unwrap_reply u;

	if (err != 0 || sam_dec_scp_unwrap(b, n, &u) != 0 || u.sw != 0x9000 || !u.authenticated) {
		hs_fail(h, "unwrap", err);
		return;
	}
	h->checks++;
}

static void on_step(void *arg, int err, const uint8_t *b, size_t n)
{
	struct hs *h = arg;
	struct sam_step_reply st;
	uint8_t body[700], ea_resp[128];
	struct wr w;
	size_t ean = 0;

	if (err != 0 || sam_dec_scp_step(b, n, &st) != 0 || st.ea == NULL || st.wrapped == NULL) {
		hs_fail(h, "step", err);
		return;
	}
	/* The card gets EA and the first command back to back, as through the phone. */
	if (scp_sim_apdu(&h->card, st.ea, st.ea_n, ea_resp, sizeof(ea_resp), &ean) != 0 ||
	    scp_sim_apdu(&h->card, st.wrapped, st.wrapped_n, h->r1, sizeof(h->r1), &h->r1n) != 0) {
		hs_fail(h, "card", TB_E_INTERNAL);
		return;
	}
	/* Three requests pipelined: confirm EA, unwrap, close. */
	w = wr_init(body, sizeof(body));
	(void)sam_enc_scp_step(&w, h->handle, ea_resp, ean, NULL, 0);
	if (sam_client_call(h->b->c, SAM_SCP_STEP, body, w.len, on_ea, h) != 0) {
		hs_fail(h, "submit", 0);
		return;
	}
	w = wr_init(body, sizeof(body));
	(void)sam_enc_scp_handle(&w, h->handle, h->r1, h->r1n);
	if (sam_client_call(h->b->c, SAM_SCP_UNWRAP, body, w.len, on_unwrap, h) != 0) {
		hs_fail(h, "submit", 0);
		return;
	}
	w = wr_init(body, sizeof(body));
	(void)sam_enc_scp_handle(&w, h->handle, NULL, 0);
	if (sam_client_call(h->b->c, SAM_SCP_CLOSE, body, w.len, on_close, h) != 0) {
		hs_fail(h, "submit", 0);
		return;
	}
}

static void on_open(void *arg, int err, const uint8_t *b, size_t n)
{
	struct hs *h = arg;
	struct sam_open_reply o;
	uint8_t body[700], resp[600];
	struct wr w = wr_init(body, sizeof(body));
	size_t rn = 0;

	if (err != 0 || sam_dec_scp_open(b, n, &o) != 0) {
		hs_fail(h, "open", err);
		return;
	}
	h->handle = o.handle;
	if (scp_sim_apdu(&h->card, o.apdu, o.n, resp, sizeof(resp), &rn) != 0) {
		hs_fail(h, "card", TB_E_INTERNAL);
		return;
	}
	(void)sam_enc_scp_step(&w, h->handle, resp, rn, cmd_get, sizeof(cmd_get));
	if (sam_client_call(h->b->c, SAM_SCP_STEP, body, w.len, on_step, h) != 0) {
		hs_fail(h, "submit", 0);
		return;
	}
}

static void hs_start(struct hs *h)
{
	uint8_t body[64];
	struct wr w = wr_init(body, sizeof(body));

	h->checks = 0;
	h->b->started++;
	(void)sam_enc_scp_open(&w, SAM_FAM_SE_SERVER, 0, h->serial, 0x33, 8, isd_aid,
			       sizeof(isd_aid));
	if (sam_client_call(h->b->c, SAM_SCP_OPEN, body, w.len, on_open, h) != 0)
		hs_fail(h, "submit", 0);
}

static void test_scp_concurrent(void **state)
{
	static struct bench b;
	struct sam_sync s;
	struct timespec t0, t1;
	double secs;

	(void)state;
	SKIP_IF_NO_SOFTHSM();
	memset(&b, 0, sizeof(b));
	assert_int_equal(sam_sync_connect(&s, g_sock), 0); /* still the --allow-perso sam */
	for (int i = 0; i < BENCH_CONC; i++) {
		b.hs[i].b = &b;
		memset(b.hs[i].serial, 0x5A, 8);
		b.hs[i].serial[7] = (uint8_t)i;
		card_for(&s, &b.hs[i].card, b.hs[i].serial);
	}
	sam_sync_close(&s);
	b.base = event_base_new();
	assert_non_null(b.base);
	assert_int_equal(sam_client_new(b.base, g_sock, 4 * BENCH_CONC, &b.c), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < BENCH_CONC; i++)
		hs_start(&b.hs[i]);
	assert_int_equal(event_base_dispatch(b.base), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(b.failed, 0);
	assert_int_equal(b.done, BENCH_TOTAL);
	for (int i = 0; i < BENCH_CONC; i++)
		assert_int_equal(b.hs[i].card.auth_ok, b.hs[i].card.delivered);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "sam: %d SCP03 mutual authentications (+1 secured command each), %d "
		"concurrent, one client connection: %.0f/s (cards simulated in this process)\n",
		BENCH_TOTAL, BENCH_CONC, BENCH_TOTAL / secs);
	sam_client_free(b.c);
	event_base_free(b.base);
}

/* ------------------------------------------- rotation across a restart --- */

static void test_rotation_persists(void **state)
{
	static const uint8_t id[] = "wallet/7", pt[] = "kept across rotation";
	uint8_t body[256], blob1[256], reply[256];
	struct sam_sync s;
	struct wr w;
	size_t bn = 0, rn = 0;
	uint8_t fam = SAM_FAM_BLOB;

	(void)state;
	SKIP_IF_NO_SOFTHSM();
	assert_int_equal(sam_sync_connect(&s, g_sock), 0);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_blob(&w, id, sizeof(id), pt, sizeof(pt)), 0);
	assert_int_equal(sam_sync_call(&s, SAM_SEAL_BLOB, body, w.len, blob1, sizeof(blob1), &bn), 0);
	assert_int_equal(sam_sync_call(&s, SAM_ROTATE, &fam, 1, reply, sizeof(reply), &rn),
			 TB_E_SAM_DENIED);
	sam_sync_close(&s);
	sam_stop();
	sam_start("--allow-rotate");
	assert_int_equal(sam_sync_connect(&s, g_sock), 0);
	assert_int_equal(sam_sync_call(&s, SAM_ROTATE, &fam, 1, reply, sizeof(reply), &rn), 0);
	assert_int_equal(rn, 2);
	assert_int_equal(reply[1], 2);
	sam_sync_close(&s);
	sam_stop();
	/* The rotated key file was sealed again through the token; it opens and holds both. */
	sam_start(NULL);
	assert_int_equal(sam_sync_connect(&s, g_sock), 0);
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_blob(&w, id, sizeof(id), blob1, bn), 0);
	assert_int_equal(sam_sync_call(&s, SAM_OPEN_BLOB, body, w.len, reply, sizeof(reply), &rn), 0);
	assert_int_equal(rn, sizeof(pt));
	assert_memory_equal(reply, pt, sizeof(pt));
	w = wr_init(body, sizeof(body));
	assert_int_equal(sam_enc_blob(&w, id, sizeof(id), pt, sizeof(pt)), 0);
	assert_int_equal(sam_sync_call(&s, SAM_SEAL_BLOB, body, w.len, reply, sizeof(reply), &rn), 0);
	assert_int_equal(reply[1], 2);
	sam_sync_close(&s);
	sam_stop();
}

/* ------------------------------------------ the key file without its token --- */

static void test_useless_without_token(void **state)
{
	char conf2[PATH_MAX], cmd[PATH_MAX * 2], kek[PATH_MAX], pin2[PATH_MAX];
	char *argv[] = { g_bin, "sam", "--socket", g_sock, "--keys", g_keys, "--pkcs11", MODULE,
			 "--token-label", "tapbridge", "--pin-file", g_pin, NULL };
	char *argv_kek[] = { g_bin, "sam", "--socket", g_sock, "--keys", g_keys, "--kek-file",
			     kek, NULL };
	struct stat st;
	FILE *f;

	(void)state;
	SKIP_IF_NO_SOFTHSM();
	assert_true(stat(g_sock, &st) != 0); /* the stopped sam removed its socket */
	/* Another token with the same label and PIN, as an attacker with the file would have. */
	path_in(conf2, "softhsm2-other.conf");
	f = fopen(conf2, "w");
	assert_non_null(f);
	fprintf(f, "directories.tokendir = %s/tokens2\nobjectstore.backend = file\nlog.level = ERROR\n",
		g_dir);
	fclose(f);
	assert_true(snprintf(cmd, sizeof(cmd), "SOFTHSM2_CONF=%s softhsm2-util --init-token --free "
			     "--label tapbridge --so-pin 12345678 --pin 1234 >/dev/null", conf2) <
		    (int)sizeof(cmd));
	assert_int_equal(system(cmd), 0);
	assert_int_equal(run(argv, conf2), 1);
	assert_true(log_has("does not hold the key-encryption key"));
	/* A development KEK file instead of the token. */
	path_in(kek, "kek");
	f = fopen(kek, "w");
	assert_non_null(f);
	for (int i = 0; i < 32; i++)
		fputc(i, f);
	fclose(f);
	chmod(kek, 0600);
	assert_int_equal(run(argv_kek, g_conf), 1);
	assert_true(log_has("does not open with this key-encryption key"));
	/* The right token with a wrong PIN. */
	path_in(pin2, "pin2");
	f = fopen(pin2, "w");
	assert_non_null(f);
	fprintf(f, "9999\n");
	fclose(f);
	chmod(pin2, 0600);
	argv[11] = pin2;
	assert_int_equal(run(argv, g_conf), 1);
	assert_true(log_has("wrong PIN"));
	/* And the right one still works. */
	argv[11] = g_pin;
	sam_start(NULL);
	sam_stop();
	assert_true(log_has("wiping keys and exiting"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_socket_and_peers),
		cmocka_unit_test(test_pipelined_burst),
		cmocka_unit_test(test_scp_handshake_sync),
		cmocka_unit_test(test_scp_concurrent),
		cmocka_unit_test(test_rotation_persists),
		cmocka_unit_test(test_useless_without_token),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
