/* se_proc.h - helpers for tests that run `tapbridge se` as a process (header-only,
 * static inline): the binary next to the test, a personalised image made with
 * `tapbridge admin`, starting and stopping the se, and our SCP03 host role over any
 * transmit function (a socket, SCardTransmit).
 *
 * Test keys (never used outside tests):
 *   server key set KVN 30, AES-128: enc 000102..0F, mac 101112..1F, dek 202122..2F
 *   reader key set KVN 31, AES-256: enc 40..5F, mac 60..7F, dek 80..9F */
#ifndef TB_TEST_SE_PROC_H
#define TB_TEST_SE_PROC_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "apdu.h"
#include "crypto.h"
#include "err.h"
#include "scp03.h"
#include "se.h"
#include "sw.h"
#include "vec.h"

#define SP_SERVER_KVN 0x30
#define SP_READER_KVN 0x31
#define SP_SERIAL_HEX "5345000000004321"

static inline void sp_keys(struct scp_keys *k, size_t len, uint8_t base)
{
	memset(k, 0, sizeof(*k));
	for (size_t i = 0; i < len; i++) {
		k->enc[i] = (uint8_t)(base + i);
		k->mac[i] = (uint8_t)(base + len + i);
		k->dek[i] = (uint8_t)(base + 2 * len + i);
	}
	k->len = len;
}

static inline void sp_server_keys(struct scp_keys *k) { sp_keys(k, 16, 0x00); }
static inline void sp_reader_keys(struct scp_keys *k) { sp_keys(k, 32, 0x40); }

static inline int64_t sp_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline void sp_sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* <dir of this test>/tapbridge: tests are built in the binary's build directory. */
static inline void sp_bin(char *out, size_t cap)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	assert_true(n > 0);
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	assert_non_null(slash);
	*slash = '\0';
	assert_true((size_t)snprintf(out, cap, "%s/tapbridge", exe) < cap);
	if (access(out, X_OK) != 0)
		fail_msg("no tapbridge binary at %s", out);
}

/* Runs argv (NULL-terminated) with stdout/stderr to out_path (NULL: inherited) and
 * returns its exit status (-1 when it did not exit normally). */
static inline int sp_run(char *const argv[], const char *out_path)
{
	pid_t pid = fork();
	int st;

	assert_true(pid >= 0);
	if (pid == 0) {
		if (out_path != NULL) {
			int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

			if (fd < 0)
				_exit(126);
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		assert_int_equal(errno, EINTR);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* A fresh image at path with the test server and reader key sets. */
static inline void sp_make_image(const char *bin, const char *path)
{
	char *init[] = { (char *)bin, "admin", "se-init", "--image", (char *)path, "--serial",
			 SP_SERIAL_HEX, NULL };
	char *server[] = { (char *)bin, "admin", "se-keys", "--image", (char *)path, "--kvn", "30",
			   "--enc", "000102030405060708090A0B0C0D0E0F",
			   "--mac", "101112131415161718191A1B1C1D1E1F",
			   "--dek", "202122232425262728292A2B2C2D2E2F", "--role", "server", NULL };
	char *reader[] = { (char *)bin, "admin", "se-keys", "--image", (char *)path, "--kvn", "31",
			   "--enc", "404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F",
			   "--mac", "606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F",
			   "--dek", "808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9F",
			   "--role", "reader", NULL };

	(void)unlink(path);
	assert_int_equal(sp_run(init, "/dev/null"), 0);
	assert_int_equal(sp_run(server, "/dev/null"), 0);
	assert_int_equal(sp_run(reader, "/dev/null"), 0);
}

/* Starts argv in the background, stdout and stderr appended to log_path. */
static inline pid_t sp_spawn(char *const argv[], const char *log_path)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
			close(fd);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

/* SIGTERM, then up to 5 s for it to exit (SIGKILL after that). Its exit status, or -1
 * when a signal ended it. Safe with pid <= 0 (returns -2). */
static inline int sp_stop(pid_t pid)
{
	int st = 0;

	if (pid <= 0)
		return -2;
	kill(pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
		if (r < 0 && errno != EINTR)
			return -1;
		sp_sleep_ms(10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

/* A connection to a unix socket, retried until timeout_ms (the se starting up);
 * -1 when it never answers. */
static inline int sp_unix_connect(const char *path, int timeout_ms)
{
	struct sockaddr_un sa;
	int64_t end = sp_now_us() + (int64_t)timeout_ms * 1000;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_true(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		assert_true(fd >= 0);
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		if (sp_now_us() > end)
			return -1;
		sp_sleep_ms(10);
	}
}

/* ------------------------------------------------------ SCP03, host role --- */

/* Sends one command APDU, writes the response (data || SW) to resp, returns its
 * length (>= 2) or fails the test. */
typedef size_t (*sp_xmit_fn)(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap);

struct sp_chan {
	sp_xmit_fn xmit;
	void *ctx;
	struct scp_host h;
	int open;
	uint8_t resp[SE_RESP_MAX + 64];
	size_t n;            /* plain response data length */
	uint16_t sw;
	int authenticated;
};

static inline uint16_t sp_raw(struct sp_chan *c, const uint8_t *cmd, size_t n)
{
	size_t k = c->xmit(c->ctx, cmd, n, c->resp, sizeof(c->resp));

	assert_true(k >= 2);
	c->n = k - 2;
	c->sw = (uint16_t)(c->resp[k - 2] << 8 | c->resp[k - 1]);
	c->authenticated = 0;
	return c->sw;
}

static inline uint16_t sp_raw_hex(struct sp_chan *c, const char *hex)
{
	uint8_t cmd[SE_CMD_MAX + 64];
	size_t n = hexbuf(hex, cmd, sizeof(cmd));

	return sp_raw(c, cmd, n);
}

static inline uint16_t sp_select(struct sp_chan *c, const uint8_t *aid, size_t n)
{
	uint8_t cmd[6 + SCP_AID_MAX] = { 0x00, 0xA4, 0x04, 0x00, (uint8_t)n };

	memcpy(cmd + 5, aid, n);
	cmd[5 + n] = 0x00;
	c->open = 0;
	return sp_raw(c, cmd, 6 + n);
}

/* The handshake on the selected application (aid, for the pseudo-random challenge
 * check). 0, or the TB_E_* our host role reported, or 0x10000 | SW when the card
 * refused a step. */
static inline int sp_open(struct sp_chan *c, uint8_t kvn, const struct scp_keys *keys,
			  uint8_t level, const uint8_t *aid, size_t aid_len)
{
	uint8_t challenge[8], out[128];
	struct scp_host_config hc;
	struct wr w = wr_init(out, sizeof(out));
	int rc;

	assert_int_equal(crypto_random(challenge, sizeof(challenge)), 0);
	memset(&hc, 0, sizeof(hc));
	hc.keys = keys;
	hc.host_challenge = challenge;
	hc.host_challenge_len = sizeof(challenge);
	hc.kvn = kvn;
	hc.level = level;
	hc.mode = SCP_MODE_S8;
	hc.aid = aid;
	hc.aid_len = aid_len;
	c->open = 0;
	assert_int_equal(scp_host_begin(&c->h, &hc, &w), 0);
	(void)sp_raw(c, out, w.len);
	w = wr_init(out, sizeof(out));
	if ((rc = scp_host_init_update(&c->h, c->resp, c->n + 2, &w)) != 0)
		return rc;
	if (sp_raw(c, out, w.len) != SW_OK)
		return 0x10000 | c->sw;
	if ((rc = scp_host_ext_auth(&c->h, c->resp, c->n + 2)) != 0)
		return rc;
	c->open = 1;
	return 0;
}

/* A command, wrapped when the channel is open; c->resp/n/sw get the plain response. */
static inline uint16_t sp_cmd(struct sp_chan *c, const uint8_t *cmd, size_t n)
{
	uint8_t wrapped[SE_CMD_MAX + 64], plain[SE_RESP_MAX + 64];
	struct wr w = wr_init(wrapped, sizeof(wrapped));
	struct wr pw = wr_init(plain, sizeof(plain));
	struct scp_resp info;

	if (!c->open)
		return sp_raw(c, cmd, n);
	assert_int_equal(scp_host_wrap(&c->h, cmd, n, &w), 0);
	(void)sp_raw(c, wrapped, w.len);
	assert_int_equal(scp_host_unwrap(&c->h, c->resp, c->n + 2, &info, &pw), 0);
	memcpy(c->resp, plain, pw.len);
	c->n = info.n;
	c->sw = info.sw;
	c->authenticated = info.authenticated;
	return c->sw;
}

static inline uint16_t sp_cmd_hex(struct sp_chan *c, const char *hex)
{
	uint8_t cmd[SE_CMD_MAX + 64];
	size_t n = hexbuf(hex, cmd, sizeof(cmd));

	return sp_cmd(c, cmd, n);
}

/* The wallet's balance (80 30 00 00 00: balance(4) counter(4) maximum(4)). */
static inline uint32_t sp_balance(struct sp_chan *c)
{
	assert_int_equal(sp_cmd_hex(c, "8030000000"), SW_OK);
	assert_int_equal(c->n, 12);
	return (uint32_t)c->resp[0] << 24 | (uint32_t)c->resp[1] << 16 |
	       (uint32_t)c->resp[2] << 8 | c->resp[3];
}

/* ------------------------------------------ frames (docs/protocol.md) --- */

#define FRAME_MAX 1300u

static inline void fr_write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && errno == EAGAIN) {
			/* A non-blocking peer (the pty master): wait for room, bounded, so a
			 * stuck se fails the test instead of hanging it. */
			struct pollfd pf = { fd, POLLOUT, 0 };

			assert_int_equal(poll(&pf, 1, 3000), 1);
			continue;
		}
		assert_true(k > 0);
		p += k;
		n -= (size_t)k;
	}
}

static inline void fr_send(int fd, uint8_t type, const uint8_t *p, size_t n)
{
	uint8_t hdr[5] = { (uint8_t)((n + 1) >> 24), (uint8_t)((n + 1) >> 16),
			   (uint8_t)((n + 1) >> 8), (uint8_t)(n + 1), type };

	fr_write_all(fd, hdr, sizeof(hdr));
	if (n > 0)
		fr_write_all(fd, p, n);
}

/* 0, -1 timeout, -2 closed by the se. */
static inline int read_exact(int fd, uint8_t *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int64_t left = deadline - sp_now_us();
		ssize_t k;

		if (left <= 0 || poll(&pf, 1, (int)(left / 1000) + 1) != 1)
			return -1;
		k = read(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -2;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

static inline int fr_recv(int fd, uint8_t *type, uint8_t *buf, size_t cap, size_t *n, int timeout_ms)
{
	int64_t deadline = sp_now_us() + (int64_t)timeout_ms * 1000;
	uint8_t hdr[5];
	uint32_t len;
	int rc = read_exact(fd, hdr, sizeof(hdr), deadline);

	if (rc != 0)
		return rc;
	len = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
	assert_true(len >= 1 && len - 1 <= cap);
	*type = hdr[4];
	*n = len - 1;
	return read_exact(fd, buf, *n, deadline);
}

/* The se ended this connection: EOF within timeout_ms, and no frame before it. */
static inline void expect_closed(int fd, int timeout_ms)
{
	uint8_t buf[FRAME_MAX], type;
	size_t n;

	assert_int_equal(fr_recv(fd, &type, buf, sizeof(buf), &n, timeout_ms), -2);
}

/* ------------------------------------------------------------ the peers --- */

struct ev {
	uint8_t type;
	uint8_t p[FRAME_MAX];
	size_t n;
};

struct peer {
	int fd;
	struct ev ev[32]; /* phone: events seen while waiting for a RESPONSE */
	size_t nev;
	struct sp_chan ch;
};

static inline size_t peer_xmit(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap)
{
	struct peer *p = ctx;
	uint8_t type = 0;
	size_t k = 0;

	fr_send(p->fd, 0x01, cmd, n);
	for (;;) {
		assert_int_equal(fr_recv(p->fd, &type, resp, cap, &k, 3000), 0);
		if (type == 0x81)
			return k;
		assert_true(p->nev < 32);
		p->ev[p->nev].type = type;
		memcpy(p->ev[p->nev].p, resp, k);
		p->ev[p->nev].n = k;
		p->nev++;
	}
}

static inline void peer_connect(struct peer *p, const char *path)
{
	memset(p, 0, sizeof(*p));
	p->fd = sp_unix_connect(path, 3000);
	assert_true(p->fd >= 0);
	p->ch.xmit = peer_xmit;
	p->ch.ctx = p;
}

static inline void peer_close(struct peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

/* The next event of type (seen already, or read within timeout_ms) into *out. */
static inline void peer_event(struct peer *ph, uint8_t type, struct ev *out, int timeout_ms)
{
	for (size_t i = 0; i < ph->nev; i++) {
		if (ph->ev[i].type == type) {
			*out = ph->ev[i];
			memmove(&ph->ev[i], &ph->ev[i + 1], (ph->nev - i - 1) * sizeof(ph->ev[0]));
			ph->nev--;
			return;
		}
	}
	for (;;) {
		int rc = fr_recv(ph->fd, &out->type, out->p, sizeof(out->p), &out->n, timeout_ms);

		if (rc != 0)
			fail_msg("no event %02X on the phone link (%d)", type, rc);
		if (out->type == type)
			return;
		assert_true(out->type != 0x81); /* no response without a command */
		assert_true(ph->nev < 32);
		ph->ev[ph->nev++] = *out;
	}
}

#endif
