/* test_vpcd_pcsc.c - the vpcd card adapter (src/io/vpcd.c), twice: against a fake vpcd
 * on loopback that sends what pcscd never would (split, queued, empty, oversize and
 * unknown frames, silence, refused links), and through the real PC/SC stack: pcscd with
 * the vpcd driver in network namespace tb_pcsc (tests/pcscd_rig.sh), a toy card handler
 * on a libevent loop inside that namespace, and libpcsclite as the client. */
#define _GNU_SOURCE /* setns, CLONE_NEWNET */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <winscard.h>

#include "io/vpcd.h"
#include "lib/apdu.h"
#include "lib/bytes.h"
#include "lib/err.h"
#include "vec.h"
#include "pcsc_rig.h"

/* ---- the toy card: what the se will be, reduced to four instructions ---- */

#define TOY_CLA 0x80
#define TOY_INS_SELECT 0xA4 /* any CLA: 9000 */
#define TOY_INS_ECHO 0xEE   /* data back, then 9000 */
#define TOY_INS_DELAY 0xD1  /* "DELAYED" 9000, 500 ms later, from a timer */
#define TOY_INS_CHECKS 0xC4 /* tries bad vpcd_reply calls, returns their codes */
#define TOY_DELAY_MS 500

struct toy {
	struct vpcd *v;
	struct event *timer;
	unsigned apdus, power_on, power_off, resets, link_up, link_down, reply_errors;
	uint8_t resp[VPCD_MAX_FRAME + 1];
};

static void toy_send(struct toy *t, const uint8_t *r, size_t n)
{
	if (vpcd_reply(t->v, r, n) != 0)
		t->reply_errors++;
}

static void toy_sw(struct toy *t, uint16_t sw)
{
	uint8_t r[2] = { (uint8_t)(sw >> 8), (uint8_t)sw };

	toy_send(t, r, sizeof(r));
}

static void toy_delayed(evutil_socket_t fd, short what, void *arg)
{
	static const uint8_t r[] = { 'D', 'E', 'L', 'A', 'Y', 'E', 'D', 0x90, 0x00 };

	(void)fd;
	(void)what;
	toy_send(arg, r, sizeof(r));
}

/* Each bad call must fail with its own code and leave the command pending. */
static void toy_checks(struct toy *t)
{
	uint8_t codes[5];

	codes[0] = (uint8_t)-vpcd_reply(t->v, t->resp, 1);
	codes[1] = (uint8_t)-vpcd_reply(t->v, NULL, 5);
	codes[2] = (uint8_t)-vpcd_reply(t->v, t->resp, VPCD_MAX_FRAME + 1);
	codes[3] = 0x90;
	codes[4] = 0x00;
	toy_send(t, codes, sizeof(codes));
	/* Answered: a second answer has nothing to pair with. */
	if (vpcd_reply(t->v, codes, sizeof(codes)) != TB_E_INVAL)
		t->reply_errors++;
}

static void toy_apdu(struct vpcd *v, const uint8_t *cmd, size_t n, void *arg)
{
	struct toy *t = arg;
	struct apdu a;
	struct wr w = wr_init(t->resp, sizeof(t->resp));
	struct timeval tv = { 0, TOY_DELAY_MS * 1000 };

	(void)v;
	t->apdus++;
	if (apdu_parse(cmd, n, &a) != 0) {
		toy_sw(t, 0x6700);
		return;
	}
	switch (a.ins) {
	case TOY_INS_SELECT:
		toy_sw(t, 0x9000);
		break;
	case TOY_INS_ECHO:
		if (wr_bytes(&w, a.data, a.nc) != 0 || wr_u16be(&w, 0x9000) != 0)
			t->reply_errors++;
		toy_send(t, w.p, w.len);
		break;
	case TOY_INS_DELAY:
		evtimer_add(t->timer, &tv);
		break;
	case TOY_INS_CHECKS:
		toy_checks(t);
		break;
	default:
		toy_sw(t, 0x6D00);
	}
}

/* Whatever happened to the link or the power, an old command is not answered. */
static void toy_event(struct vpcd *v, enum vpcd_event ev, void *arg)
{
	struct toy *t = arg;

	(void)v;
	switch (ev) {
	case VPCD_EV_LINK_UP: t->link_up++; return;
	case VPCD_EV_LINK_DOWN: t->link_down++; break;
	case VPCD_EV_POWER_ON: t->power_on++; break;
	case VPCD_EV_POWER_OFF: t->power_off++; break;
	case VPCD_EV_RESET: t->resets++; break;
	}
	evtimer_del(t->timer);
}

static const struct vpcd_handler toy_handler = { toy_apdu, toy_event };

/* ---- the card thread: one event loop, up to two vpcd links ---- */

struct card {
	pthread_t th;
	int in_netns;          /* enter tb_pcsc before the first socket */
	uint16_t ports[2];
	size_t nlinks;
	size_t max_cmd;
	unsigned idle_ms;
	struct event_base *base;
	struct toy toy[2];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ready, rc;
};

static struct card card;

static int card_enter_netns(void)
{
	int fd = open("/var/run/netns/tb_pcsc", O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = setns(fd, CLONE_NEWNET);
	close(fd);
	return rc;
}

static int card_setup(struct card *c)
{
	struct vpcd_config cfg;
	size_t i;

	if (c->in_netns && card_enter_netns() != 0)
		return TB_E_IO;
	c->base = event_base_new();
	if (c->base == NULL)
		return TB_E_IO;
	for (i = 0; i < c->nlinks; i++) {
		memset(&cfg, 0, sizeof(cfg));
		cfg.host = "127.0.0.1";
		cfg.port = c->ports[i];
		cfg.max_cmd = c->max_cmd;
		cfg.idle_ms = c->idle_ms;
		c->toy[i].timer = evtimer_new(c->base, toy_delayed, &c->toy[i]);
		if (c->toy[i].timer == NULL)
			return TB_E_IO;
		int rc = vpcd_new(c->base, &cfg, &toy_handler, &c->toy[i], &c->toy[i].v);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static void *card_main(void *arg)
{
	struct card *c = arg;
	int rc = card_setup(c);

	pthread_mutex_lock(&c->mu);
	c->rc = rc;
	c->ready = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	if (rc == 0)
		event_base_loop(c->base, EVLOOP_NO_EXIT_ON_EMPTY);
	return NULL;
}

static void card_free_all(struct card *c)
{
	for (size_t i = 0; i < 2; i++) {
		vpcd_free(c->toy[i].v);
		if (c->toy[i].timer != NULL)
			event_free(c->toy[i].timer);
	}
	if (c->base != NULL)
		event_base_free(c->base);
}

/* Starts the card thread; links connect to 127.0.0.1:ports[i]. */
static void card_start(int in_netns, const uint16_t *ports, size_t nlinks, size_t max_cmd,
                       unsigned idle_ms)
{
	memset(&card, 0, sizeof(card));
	card.in_netns = in_netns;
	memcpy(card.ports, ports, nlinks * sizeof(ports[0]));
	card.nlinks = nlinks;
	card.max_cmd = max_cmd;
	card.idle_ms = idle_ms;
	pthread_mutex_init(&card.mu, NULL);
	pthread_cond_init(&card.cv, NULL);
	assert_int_equal(pthread_create(&card.th, NULL, card_main, &card), 0);
	pthread_mutex_lock(&card.mu);
	while (!card.ready)
		pthread_cond_wait(&card.cv, &card.mu);
	pthread_mutex_unlock(&card.mu);
	if (card.rc != 0) {
		pthread_join(card.th, NULL);
		card_free_all(&card);
		fail_msg("card setup failed: %s", tb_strerror(card.rc));
	}
}

static void card_stop(void)
{
	if (card.base == NULL)
		return;
	event_base_loopbreak(card.base);
	pthread_join(card.th, NULL);
	card_free_all(&card);
	memset(&card, 0, sizeof(card));
}

/* vpcd_* and the toys belong to the loop thread: snapshots are taken there. */
struct snap {
	struct vpcd_stats st[2];
	struct toy toy[2]; /* counters only; resp is not copied */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
};

static void card_snap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct snap *s = arg;

	(void)fd;
	(void)what;
	for (size_t i = 0; i < card.nlinks; i++) {
		vpcd_get_stats(card.toy[i].v, &s->st[i]);
		s->toy[i].apdus = card.toy[i].apdus;
		s->toy[i].power_on = card.toy[i].power_on;
		s->toy[i].power_off = card.toy[i].power_off;
		s->toy[i].resets = card.toy[i].resets;
		s->toy[i].link_up = card.toy[i].link_up;
		s->toy[i].link_down = card.toy[i].link_down;
		s->toy[i].reply_errors = card.toy[i].reply_errors;
	}
	pthread_mutex_lock(&s->mu);
	s->done = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

static struct snap *card_snap(void)
{
	static struct snap s;
	struct timeval zero = { 0, 0 };

	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cv, NULL);
	assert_int_equal(event_base_once(card.base, -1, EV_TIMEOUT, card_snap_cb, &s, &zero), 0);
	pthread_mutex_lock(&s.mu);
	while (!s.done)
		pthread_cond_wait(&s.cv, &s.mu);
	pthread_mutex_unlock(&s.mu);
	return &s;
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Builds a command with apdu_encode; returns its length. */
static size_t mk_apdu(uint8_t cla, uint8_t ins, const uint8_t *data, size_t nc, size_t ne,
                      uint8_t *out, size_t cap)
{
	struct apdu a = { cla, ins, 0, 0, data, nc, ne, 0 };
	struct wr w = wr_init(out, cap);

	assert_int_equal(apdu_encode(&a, &w), 0);
	return w.len;
}

/* ---- the fake vpcd: blocking sockets on loopback, driven by the test ---- */

/* A listener on 127.0.0.1:port (0: any free port). */
static int fv_listen_on(uint16_t port)
{
	struct sockaddr_in sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;

	assert_true(fd >= 0);
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

static int fv_listen(uint16_t *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = fv_listen_on(0);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

/* -1 when nothing connects within timeout_ms. */
static int fv_accept(int lfd, int timeout_ms)
{
	struct pollfd p = { lfd, POLLIN, 0 };
	int fd, one = 1;

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void fv_write(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		assert_true(k > 0);
		p += k;
		n -= (size_t)k;
	}
}

static void fv_send(int fd, const uint8_t *body, size_t n)
{
	uint8_t hdr[2] = { (uint8_t)(n >> 8), (uint8_t)n };

	fv_write(fd, hdr, 2);
	fv_write(fd, body, n);
}

static void fv_ctrl(int fd, uint8_t c)
{
	fv_send(fd, &c, 1);
}

/* n bytes within the deadline: 0, -1 timeout, -2 closed by the card. */
static int fv_read_exact(int fd, uint8_t *p, size_t n, int64_t deadline)
{
	while (n > 0) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int64_t left = deadline - now_us();
		ssize_t k;

		if (left <= 0 || poll(&pf, 1, (int)(left / 1000) + 1) != 1)
			return -1;
		k = recv(fd, p, n, 0);
		if (k <= 0)
			return -2;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* One frame's body: its length, -1 on timeout, -2 when the card closed. */
static long fv_recv(int fd, uint8_t *buf, size_t cap, int timeout_ms)
{
	int64_t deadline = now_us() + (int64_t)timeout_ms * 1000;
	uint8_t hdr[2];
	size_t n;
	int rc = fv_read_exact(fd, hdr, 2, deadline);

	if (rc != 0)
		return rc;
	n = (size_t)hdr[0] << 8 | hdr[1];
	assert_true(n <= cap);
	rc = fv_read_exact(fd, buf, n, deadline);
	return rc != 0 ? rc : (long)n;
}

/* Asserts the next frame is exactly want (hex). */
static void fv_expect(int fd, const char *want, int timeout_ms)
{
	static uint8_t buf[VPCD_MAX_FRAME];
	long n = fv_recv(fd, buf, sizeof(buf), timeout_ms);

	assert_true(n >= 0);
	assert_hex_equal(buf, (size_t)n, want);
}

static const char atr_hex[] = "3B8B80018069746170627269646765" "99";

/* ---- pure functions ---- */

static void test_atr_check(void **state)
{
	uint8_t b[40];
	size_t n;

	(void)state;
	assert_int_equal(vpcd_atr_check(vpcd_atr_default, VPCD_ATR_DEFAULT_LEN), 0);
	assert_hex_equal(vpcd_atr_default, VPCD_ATR_DEFAULT_LEN, atr_hex);
	n = hexbuf("3B80800101", b, sizeof(b)); /* pcscd's minimal T=1 ATR */
	assert_int_equal(vpcd_atr_check(b, n), 0);
	n = hexbuf("3B00", b, sizeof(b)); /* T=0 only: no TCK */
	assert_int_equal(vpcd_atr_check(b, n), 0);
	n = hexbuf("3F9600801F438031E073FE211B5F", b, sizeof(b)); /* TA1 TD1 TD2 TA3... */
	assert_int_equal(vpcd_atr_check(b, n), TB_E_INVAL); /* cut short */
	/* Every truncation and every single-byte change of ours is refused. */
	memcpy(b, vpcd_atr_default, VPCD_ATR_DEFAULT_LEN);
	for (n = 0; n < VPCD_ATR_DEFAULT_LEN; n++)
		assert_int_equal(vpcd_atr_check(b, n), TB_E_INVAL);
	for (size_t i = 0; i < VPCD_ATR_DEFAULT_LEN; i++) {
		b[i] ^= 0x01;
		assert_int_equal(vpcd_atr_check(b, VPCD_ATR_DEFAULT_LEN), TB_E_INVAL);
		b[i] ^= 0x01;
	}
	b[VPCD_ATR_DEFAULT_LEN] = 0x00; /* a byte past TCK */
	assert_int_equal(vpcd_atr_check(b, VPCD_ATR_DEFAULT_LEN + 1), TB_E_INVAL);
	n = hexbuf("3A80800101", b, sizeof(b)); /* no such TS */
	assert_int_equal(vpcd_atr_check(b, n), TB_E_INVAL);
	assert_int_equal(vpcd_atr_check(NULL, 5), TB_E_INVAL);
	memset(b, 0, sizeof(b));
	b[0] = 0x3B;
	b[1] = 0x0F;
	assert_int_equal(vpcd_atr_check(b, 34), TB_E_INVAL); /* over 33 bytes */
}

static void test_parse_target(void **state)
{
	char host[16];
	uint16_t port = 1;
	static const char *bad[] = { "", ":35963", "h:", "h:0", "h:65536", "h:123456", "h:1x",
	                             "h:-1", "::1", "[::1", "[]:5", "[::1]x", "[::1]:", "a:1:2" };

	(void)state;
	assert_int_equal(vpcd_parse_target("127.0.0.1:35964", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 35964);
	assert_int_equal(vpcd_parse_target("localhost", host, sizeof(host), &port), 0);
	assert_string_equal(host, "localhost");
	assert_int_equal(port, VPCD_PORT_DEFAULT);
	assert_int_equal(vpcd_parse_target("[::1]:65535", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 65535);
	assert_int_equal(vpcd_parse_target("[::1]", host, sizeof(host), &port), 0);
	assert_int_equal(port, VPCD_PORT_DEFAULT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(host, "unchanged");
		port = 7;
		assert_int_equal(vpcd_parse_target(bad[i], host, sizeof(host), &port), TB_E_INVAL);
		assert_string_equal(host, "unchanged");
		assert_int_equal(port, 7);
	}
	assert_int_equal(vpcd_parse_target("0123456789abcdef:1", host, sizeof(host), &port),
	                 TB_E_NOSPACE);
	assert_int_equal(vpcd_parse_target("0123456789abcde:1", host, sizeof(host), &port), 0);
}

static void test_new_rejects_bad_config(void **state)
{
	struct event_base *base = event_base_new();
	struct vpcd_config cfg;
	struct vpcd *v = (struct vpcd *)&cfg; /* must stay untouched on failure */
	struct vpcd_handler no_apdu = { NULL, NULL };
	static const uint8_t bad_tck[] = { 0x3B, 0x80, 0x80, 0x01, 0x00 };

	(void)state;
	memset(&cfg, 0, sizeof(cfg));
	cfg.atr = bad_tck;
	cfg.atr_len = sizeof(bad_tck);
	assert_int_equal(vpcd_new(base, &cfg, &toy_handler, NULL, &v), TB_E_INVAL);
	cfg.atr = NULL;
	cfg.max_cmd = VPCD_MAX_FRAME + 1;
	assert_int_equal(vpcd_new(base, &cfg, &toy_handler, NULL, &v), TB_E_INVAL);
	cfg.max_cmd = 0;
	assert_int_equal(vpcd_new(base, &cfg, &no_apdu, NULL, &v), TB_E_INVAL);
	assert_int_equal(vpcd_new(NULL, &cfg, &toy_handler, NULL, &v), TB_E_INVAL);
	assert_ptr_equal(v, (struct vpcd *)&cfg);
	vpcd_free(NULL);
	event_base_free(base);
}

/* ---- against the fake vpcd ---- */

static int fake_lfd[2] = { -1, -1 };

static int fake_teardown(void **state)
{
	(void)state;
	card_stop();
	for (size_t i = 0; i < 2; i++) {
		if (fake_lfd[i] >= 0)
			close(fake_lfd[i]);
		fake_lfd[i] = -1;
	}
	return 0;
}

/* A card with n links to fresh listeners; returns the accepted fds in fds. */
static void fake_start(size_t n, size_t max_cmd, unsigned idle_ms, int *fds)
{
	uint16_t ports[2];

	for (size_t i = 0; i < n; i++)
		fake_lfd[i] = fv_listen(&ports[i]);
	card_start(0, ports, n, max_cmd, idle_ms);
	for (size_t i = 0; i < n; i++) {
		fds[i] = fv_accept(fake_lfd[i], 2000);
		assert_true(fds[i] >= 0);
	}
}

static void test_fake_control_and_atr(void **state)
{
	int fd;
	struct snap *s;

	(void)state;
	fake_start(1, 0, 0, &fd);
	fv_ctrl(fd, 0x04);
	fv_expect(fd, atr_hex, 1000);
	fv_ctrl(fd, 0x01); /* power on: no reply, so the next frame is the ATR */
	fv_ctrl(fd, 0x04);
	fv_expect(fd, atr_hex, 1000);
	s = card_snap();
	assert_int_equal(s->st[0].powered, 1);
	assert_int_equal(s->toy[0].power_on, 1);
	fv_ctrl(fd, 0x02);
	fv_ctrl(fd, 0x00);
	fv_ctrl(fd, 0x04);
	fv_expect(fd, atr_hex, 1000);
	s = card_snap();
	assert_int_equal(s->toy[0].resets, 1);
	assert_int_equal(s->toy[0].power_off, 1);
	assert_int_equal(s->st[0].powered, 0);
	assert_int_equal(s->st[0].atrs, 3);
	assert_int_equal(s->st[0].connects, 1);
	assert_int_equal(s->toy[0].link_up, 1);
	assert_int_equal(s->st[0].apdus, 0);
	close(fd);
}

static void test_fake_apdus(void **state)
{
	static uint8_t cmd[VPCD_MAX_FRAME], data[VPCD_MAX_FRAME], resp[VPCD_MAX_FRAME];
	size_t n, big = VPCD_MAX_FRAME - 7; /* 4 header + 3 Lc, no Le: the largest frame */
	long k;
	int fd;
	struct snap *s;

	(void)state;
	fake_start(1, 0, 0, &fd);
	/* A SELECT cut into single bytes, 2 ms apart: the card waits for all of it. */
	n = mk_apdu(0x00, TOY_INS_SELECT, (const uint8_t *)"\xA0\x00\x00\x01\x51", 5, 0, cmd + 2,
	            sizeof(cmd) - 2);
	cmd[0] = 0;
	cmd[1] = (uint8_t)n;
	for (size_t i = 0; i < n + 2; i++) {
		fv_write(fd, cmd + i, 1);
		sleep_ms(2);
	}
	fv_expect(fd, "9000", 1000);
	/* Echo up to the largest body the 16-bit length allows. */
	for (size_t i = 0; i < big; i++)
		data[i] = (uint8_t)(i * 7 + 3);
	n = mk_apdu(TOY_CLA, TOY_INS_ECHO, data, big, 0, cmd, sizeof(cmd));
	assert_int_equal(n, VPCD_MAX_FRAME);
	fv_send(fd, cmd, n);
	k = fv_recv(fd, resp, sizeof(resp), 2000);
	assert_int_equal(k, (long)big + 2);
	assert_memory_equal(resp, data, big);
	assert_int_equal(resp[big], 0x90);
	/* 2- and 3-byte bodies are commands too (the handler judges them). */
	fv_send(fd, (const uint8_t *)"\x00\xA4", 2);
	fv_expect(fd, "6700", 1000);
	/* The reply checks: 1 byte -> APDU_RESP, NULL -> INVAL, 65536 -> OVERSIZE. */
	n = mk_apdu(TOY_CLA, TOY_INS_CHECKS, NULL, 0, 0, cmd, sizeof(cmd));
	fv_send(fd, cmd, n);
	k = fv_recv(fd, resp, sizeof(resp), 1000);
	assert_int_equal(k, 5);
	assert_int_equal(resp[0], (uint8_t)-TB_E_APDU_RESP);
	assert_int_equal(resp[1], (uint8_t)-TB_E_INVAL);
	assert_int_equal(resp[2], (uint8_t)-TB_E_FRAME_OVERSIZE);
	s = card_snap();
	assert_int_equal(s->st[0].apdus, 4);
	assert_int_equal(s->toy[0].reply_errors, 0);
	assert_int_equal(s->st[0].pending, 0);
	close(fd);
}

/* While a command is pending, later frames wait in order and none is answered
 * early; the loop keeps serving a second link meanwhile. */
static void test_fake_async_and_second_link(void **state)
{
	uint8_t cmd[16];
	size_t n;
	int fds[2];
	int64_t t0, t_other, t_delayed;
	struct pollfd pf;
	struct snap *s;

	(void)state;
	fake_start(2, 0, 200, fds); /* idle 200 ms: must not fire while pending */
	n = mk_apdu(TOY_CLA, TOY_INS_DELAY, NULL, 0, 0, cmd, sizeof(cmd));
	t0 = now_us();
	fv_send(fds[0], cmd, n);
	fv_ctrl(fds[0], 0x04); /* queued behind the pending command */
	n = mk_apdu(0x00, TOY_INS_SELECT, NULL, 0, 0, cmd, sizeof(cmd));
	fv_send(fds[1], cmd, n);
	fv_expect(fds[1], "9000", 400);
	t_other = now_us();
	pf.fd = fds[0];
	pf.events = POLLIN;
	assert_int_equal(poll(&pf, 1, 0), 0); /* link 0 still silent */
	s = card_snap();
	assert_int_equal(s->st[0].pending, 1);
	fv_expect(fds[0], "44454C415945449000", 2000);
	t_delayed = now_us();
	fv_expect(fds[0], atr_hex, 1000);
	assert_true(t_other - t0 < 300000);
	assert_true(t_delayed - t0 >= (TOY_DELAY_MS - 10) * 1000);
	s = card_snap();
	assert_int_equal(s->st[0].drops, 0);
	assert_int_equal(s->st[0].pending, 0);
	assert_int_equal(s->toy[0].reply_errors, 0);
	close(fds[0]);
	close(fds[1]);
}

/* One bad frame of each kind: the card drops the link with the named reason
 * and comes back on its own. */
static void test_fake_bad_frames_reconnect(void **state)
{
	static const struct {
		const uint8_t *bytes;
		size_t n;
		int err;
	} cases[] = {
		{ (const uint8_t *)"\x00\x00", 2, TB_E_FRAME_EMPTY },
		{ (const uint8_t *)"\x01\x2D", 2, TB_E_FRAME_OVERSIZE }, /* 301 > max_cmd 300 */
		{ (const uint8_t *)"\x00\x01\x03", 3, TB_E_FRAME_TYPE },
		{ (const uint8_t *)"\x00\x01\xFF", 3, TB_E_FRAME_TYPE },
	};
	uint8_t buf[8];
	int fd;
	struct snap *s;

	(void)state;
	fake_start(1, 300, 0, &fd);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fv_ctrl(fd, 0x01);
		fv_write(fd, cases[i].bytes, cases[i].n);
		assert_int_equal(fv_recv(fd, buf, sizeof(buf), 1000), -2);
		close(fd);
		s = card_snap();
		assert_int_equal(s->st[0].last_err, cases[i].err);
		assert_int_equal(s->st[0].drops, i + 1);
		assert_int_equal(s->st[0].powered, 0);
		assert_int_equal(s->toy[0].link_down, i + 1);
		fd = fv_accept(fake_lfd[0], 1000); /* backoff was reset by the good frame */
		assert_true(fd >= 0);
	}
	/* And the new link works. */
	fv_ctrl(fd, 0x04);
	fv_expect(fd, atr_hex, 1000);
	close(fd);
}

/* Silence while idle ends the link; peers that hang up at once are retried
 * at 100, 200, 400, 800 ms: never in a tight loop. */
static void test_fake_idle_and_backoff(void **state)
{
	int fd;
	uint8_t buf[4];
	int64_t t[5];
	static const int64_t gap_ms[4] = { 100, 200, 400, 800 };
	struct snap *s;

	(void)state;
	fake_start(1, 0, 150, &fd);
	t[0] = now_us();
	assert_int_equal(fv_recv(fd, buf, sizeof(buf), 2000), -2);
	assert_true(now_us() - t[0] >= 140000);
	t[0] = now_us(); /* the drop: the first retry is due 100 ms later */
	close(fd);
	s = card_snap();
	assert_int_equal(s->st[0].last_err, TB_E_IO);
	for (size_t i = 1; i < 5; i++) {
		fd = fv_accept(fake_lfd[0], 3000);
		assert_true(fd >= 0);
		t[i] = now_us();
		close(fd);
	}
	for (size_t i = 0; i < 4; i++) {
		int64_t gap = (t[i + 1] - t[i]) / 1000;

		print_message("reconnect gap %zu: %lld ms (backoff %lld ms)\n", i, (long long)gap,
		              (long long)gap_ms[i]);
		assert_true(gap >= gap_ms[i] - 10);
		assert_true(gap <= gap_ms[i] + 250);
	}
	/* The card sees the last hang-up a moment after we made it. */
	for (int64_t end = now_us() + 1000000; now_us() < end; sleep_ms(5)) {
		s = card_snap();
		if (s->st[0].drops == 5)
			break;
	}
	assert_int_equal(s->st[0].drops, 5);
	assert_int_equal(s->st[0].connects, 5);
	assert_int_equal(s->toy[0].link_up, 5);
	assert_int_equal(s->st[0].apdus, 0);
}

/* Nobody listens: attempts at 0, 100, 300, 700, 1500 ms, then a listener
 * appears and the card is there within the 2 s cap. */
static void test_fake_refused_backoff(void **state)
{
	uint16_t port;
	int fd;
	int64_t t0;
	struct snap *s;

	(void)state;
	fake_lfd[0] = fv_listen(&port);
	close(fake_lfd[0]); /* a port with nobody behind it */
	fake_lfd[0] = -1;
	t0 = now_us();
	card_start(0, &port, 1, 0, 0);
	sleep_ms(1600);
	s = card_snap();
	print_message("%llu connect attempts in %lld ms against a closed port\n",
	              (unsigned long long)s->st[0].attempts, (long long)((now_us() - t0) / 1000));
	assert_true(s->st[0].attempts >= 4 && s->st[0].attempts <= 6);
	assert_int_equal(s->st[0].connects, 0);
	assert_int_equal(s->toy[0].link_up, 0);
	fake_lfd[0] = fv_listen_on(port);
	fd = fv_accept(fake_lfd[0], 2500);
	assert_true(fd >= 0);
	fv_ctrl(fd, 0x04);
	fv_expect(fd, atr_hex, 1000);
	close(fd);
}

/* ---- through pcscd ---- */

#define RDR0 "Virtual PCD 00 00"
#define RDR1 "Virtual PCD 00 01"
#define PCSC_BUF 65548 /* pcsc-lite's MAX_BUFFER_SIZE_EXTENDED */

static int rig_skip; /* why the PC/SC tests skip; 0 when they run */
static SCARDCONTEXT pc_ctx;

/* A hung test must not leave pcscd behind: stop the rig, then die. */
static void on_fatal_signal(int sig)
{
	static const char msg[] = "test_vpcd_pcsc: watchdog or signal: stopping the pcscd rig\n";

	(void)sig;
	(void)!write(2, msg, sizeof(msg) - 1);
	if (rig_started)
		(void)rig_run("stop");
	_exit(1);
}

static void pc_wait_present(const char *reader, int timeout_ms)
{
	int64_t deadline = now_us() + (int64_t)timeout_ms * 1000;

	for (;;) {
		SCARD_READERSTATE rs;

		memset(&rs, 0, sizeof(rs));
		rs.szReader = reader;
		rs.dwCurrentState = SCARD_STATE_UNAWARE;
		if (SCardGetStatusChange(pc_ctx, 0, &rs, 1) == SCARD_S_SUCCESS &&
		    (rs.dwEventState & SCARD_STATE_PRESENT))
			return;
		if (now_us() > deadline)
			fail_msg("no card in %s after %d ms", reader, timeout_ms);
		sleep_ms(20);
	}
}

static int pcsc_setup(void **state)
{
	static const uint16_t ports[2] = { 35963, 35964 };
	int rc;

	(void)state;
	rc = rig_run("start");
	if (rc == 77) {
		rig_skip = 1;
		print_message("test_vpcd_pcsc: PC/SC tests SKIPPED: the pcscd rig cannot run here "
		              "(reason above: needs root, ip netns, pcscd and vsmartcard-vpcd)\n");
		return 0;
	}
	if (rc != 0) {
		print_error("test_vpcd_pcsc: pcscd rig start failed (exit %d, reason above)\n", rc);
		return -1;
	}
	rig_started = 1;
	card_start(1, ports, 2, 0, 0);
	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &pc_ctx) != SCARD_S_SUCCESS) {
		print_error("test_vpcd_pcsc: SCardEstablishContext failed\n");
		return -1;
	}
	pc_wait_present(RDR0, 5000);
	pc_wait_present(RDR1, 5000);
	return 0;
}

static int pcsc_teardown(void **state)
{
	(void)state;
	if (pc_ctx != 0)
		SCardReleaseContext(pc_ctx);
	pc_ctx = 0;
	card_stop();
	rig_stop();
	return 0;
}

#define PCSC_RUNS()                                                                    \
	do {                                                                           \
		if (rig_skip)                                                          \
			skip();                                                        \
	} while (0)

static SCARDHANDLE pc_connect_on(SCARDCONTEXT ctx, const char *reader)
{
	SCARDHANDLE h = 0;
	DWORD proto = 0;
	LONG rv = SCardConnect(ctx, reader, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &h, &proto);

	if (rv != SCARD_S_SUCCESS)
		fail_msg("SCardConnect(%s): %s", reader, pcsc_stringify_error(rv));
	assert_int_equal(proto, SCARD_PROTOCOL_T1);
	return h;
}

static size_t pc_transmit(SCARDHANDLE h, const uint8_t *cmd, size_t n, uint8_t *resp)
{
	DWORD rlen = PCSC_BUF;
	LONG rv = SCardTransmit(h, SCARD_PCI_T1, cmd, (DWORD)n, NULL, resp, &rlen);

	if (rv != SCARD_S_SUCCESS)
		fail_msg("SCardTransmit: %s", pcsc_stringify_error(rv));
	return rlen;
}

static void test_pcsc_readers_and_atr(void **state)
{
	char readers[512], name[128];
	DWORD rlen = sizeof(readers), nlen = sizeof(name), st = 0, proto = 0, alen = 40;
	uint8_t atr[40];
	SCARDHANDLE h;
	int seen0 = 0, seen1 = 0;
	uint64_t before, polls;

	(void)state;
	PCSC_RUNS();
	assert_int_equal(SCardListReaders(pc_ctx, NULL, readers, &rlen), SCARD_S_SUCCESS);
	for (char *r = readers; *r != '\0'; r += strlen(r) + 1) {
		seen0 |= strcmp(r, RDR0) == 0;
		seen1 |= strcmp(r, RDR1) == 0;
	}
	assert_true(seen0 && seen1);
	/* pcscd polls the ATR every 400 ms even with no client: the idle timeout
	 * (default 10 s) only ends dead links. */
	before = card_snap()->st[0].atrs;
	sleep_ms(1000);
	polls = card_snap()->st[0].atrs - before;
	print_message("pcscd asked for the ATR %llu times in 1 s\n", (unsigned long long)polls);
	assert_true(polls >= 2);
	h = pc_connect_on(pc_ctx, RDR0);
	assert_int_equal(SCardStatus(h, name, &nlen, &st, &proto, atr, &alen), SCARD_S_SUCCESS);
	assert_string_equal(name, RDR0);
	print_message("SCardStatus state 0x%lx\n", (unsigned long)st);
	assert_true((st & SCARD_PRESENT) && (st & SCARD_POWERED));
	assert_hex_equal(atr, alen, atr_hex);
	SCardDisconnect(h, SCARD_LEAVE_CARD);
}

static void test_pcsc_select_and_echo(void **state)
{
	static const size_t sizes[] = { 0, 1, 255, 256, 1000, 4000, 65000 };
	static uint8_t cmd[PCSC_BUF], data[65536], resp[PCSC_BUF];
	SCARDHANDLE h;
	size_t n, k;
	struct snap *s;

	(void)state;
	PCSC_RUNS();
	h = pc_connect_on(pc_ctx, RDR0);
	k = hexbuf("00A4040008A000000151000000", cmd, sizeof(cmd));
	n = pc_transmit(h, cmd, k, resp);
	assert_hex_equal(resp, n, "9000");
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t sz = sizes[i];

		for (size_t j = 0; j < sz; j++)
			data[j] = (uint8_t)(j * 13 + i);
		k = mk_apdu(TOY_CLA, TOY_INS_ECHO, data, sz, sz, cmd, sizeof(cmd));
		n = pc_transmit(h, cmd, k, resp);
		if (n != sz + 2)
			fail_msg("echo of %zu bytes came back as %zu bytes", sz, n);
		assert_memory_equal(resp, data, sz);
		assert_int_equal(resp[sz], 0x90);
		assert_int_equal(resp[sz + 1], 0x00);
	}
	SCardDisconnect(h, SCARD_LEAVE_CARD);
	s = card_snap();
	assert_int_equal(s->toy[0].reply_errors, 0);
}

struct delayed_call {
	atomic_int done;
	int64_t t0, t1;
	size_t n;
	uint8_t resp[64];
	LONG rv;
};

/* The delayed command from a client thread of its own (own context). */
static void *delayed_client(void *arg)
{
	struct delayed_call *d = arg;
	static const uint8_t cmd[] = { TOY_CLA, TOY_INS_DELAY, 0, 0 };
	SCARDCONTEXT ctx = 0;
	SCARDHANDLE h = 0;
	DWORD proto = 0, rlen = sizeof(d->resp);

	d->rv = SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &ctx);
	if (d->rv == SCARD_S_SUCCESS)
		d->rv = SCardConnect(ctx, RDR0, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &h, &proto);
	if (d->rv == SCARD_S_SUCCESS) {
		d->t0 = now_us();
		d->rv = SCardTransmit(h, SCARD_PCI_T1, cmd, sizeof(cmd), NULL, d->resp, &rlen);
		d->t1 = now_us();
		d->n = rlen;
		SCardDisconnect(h, SCARD_LEAVE_CARD);
	}
	if (ctx != 0)
		SCardReleaseContext(ctx);
	atomic_store(&d->done, 1);
	return NULL;
}

/* The 500 ms answer arrives whole, and while it is pending the same event loop
 * answers the card in the other reader. */
static void test_pcsc_delayed_while_other_served(void **state)
{
	static const uint8_t sel[] = { 0x00, TOY_INS_SELECT, 0x04, 0x00 };
	struct delayed_call d;
	pthread_t th;
	SCARDHANDLE h;
	uint8_t resp[PCSC_BUF];
	unsigned served = 0;
	int64_t first_other = 0;

	(void)state;
	PCSC_RUNS();
	memset(&d, 0, sizeof(d));
	atomic_init(&d.done, 0);
	h = pc_connect_on(pc_ctx, RDR1);
	assert_int_equal(pthread_create(&th, NULL, delayed_client, &d), 0);
	sleep_ms(100); /* let the delayed command get going */
	for (int64_t end = now_us() + 3000000; now_us() < end && !atomic_load(&d.done); served++) {
		size_t n = pc_transmit(h, sel, sizeof(sel), resp);

		assert_hex_equal(resp, n, "9000");
		if (first_other == 0)
			first_other = now_us();
	}
	pthread_join(th, NULL);
	SCardDisconnect(h, SCARD_LEAVE_CARD);
	if (d.rv != SCARD_S_SUCCESS)
		fail_msg("delayed command: %s", pcsc_stringify_error(d.rv));
	assert_hex_equal(d.resp, d.n, "44454C415945449000");
	print_message("delayed answer after %lld ms; %u SELECTs in the other reader meanwhile\n",
	              (long long)((d.t1 - d.t0) / 1000), served);
	assert_true(d.t1 - d.t0 >= (TOY_DELAY_MS - 10) * 1000);
	assert_true(first_other > 0 && first_other < d.t1);
	assert_true(served > 10);
}

/* SCardReconnect with a reset, and an unpowering disconnect, reach the handler. */
static void test_pcsc_power_events(void **state)
{
	SCARDHANDLE h;
	DWORD proto = 0;
	unsigned before_reset, before_off, before_on;
	struct snap *s;

	(void)state;
	PCSC_RUNS();
	s = card_snap();
	before_reset = s->toy[0].resets;
	before_off = s->toy[0].power_off;
	before_on = s->toy[0].power_on;
	h = pc_connect_on(pc_ctx, RDR0);
	assert_int_equal(SCardReconnect(h, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, SCARD_RESET_CARD,
	                                &proto),
	                 SCARD_S_SUCCESS);
	assert_int_equal(SCardDisconnect(h, SCARD_UNPOWER_CARD), SCARD_S_SUCCESS);
	/* Power off gets no reply, so pcscd may return before the card has read it. */
	for (int64_t end = now_us() + 1000000; now_us() < end; sleep_ms(5)) {
		s = card_snap();
		if (s->toy[0].power_off > before_off)
			break;
	}
	s = card_snap();
	print_message("power events: resets %u->%u, off %u->%u, on %u->%u\n", before_reset,
	              s->toy[0].resets, before_off, s->toy[0].power_off, before_on,
	              s->toy[0].power_on);
	assert_true(s->toy[0].resets > before_reset);
	assert_true(s->toy[0].power_off > before_off);
	assert_int_equal(s->st[0].drops, 0);
}

static void test_pcsc_round_trip(void **state)
{
	static const uint8_t sel[] = { 0x00, TOY_INS_SELECT, 0x04, 0x00, 0x08, 0xA0, 0x00,
	                               0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
	enum { N = 2000 };
	uint8_t resp[PCSC_BUF];
	SCARDHANDLE h;
	int64_t t0, t1;

	(void)state;
	PCSC_RUNS();
	h = pc_connect_on(pc_ctx, RDR0);
	for (int i = 0; i < 20; i++) /* warm up */
		(void)pc_transmit(h, sel, sizeof(sel), resp);
	t0 = now_us();
	for (int i = 0; i < N; i++) {
		size_t n = pc_transmit(h, sel, sizeof(sel), resp);

		if (n != 2 || resp[0] != 0x90 || resp[1] != 0x00)
			fail_msg("APDU %d answered wrongly", i);
	}
	t1 = now_us();
	SCardDisconnect(h, SCARD_LEAVE_CARD);
	printf("vpcd round trip: %.1f us mean over %d APDUs\n", (double)(t1 - t0) / N, N);
	fflush(stdout);
}

/* pcscd restarts under the card: the card reconnects by itself (backoff at
 * most 2 s) and answers again. Runs last: the context is replaced. */
static void test_pcsc_pcscd_restart(void **state)
{
	static const uint8_t sel[] = { 0x00, TOY_INS_SELECT, 0x04, 0x00 };
	uint8_t resp[PCSC_BUF];
	SCARDHANDLE h;
	uint64_t before;
	size_t n;
	struct snap *s;

	(void)state;
	PCSC_RUNS();
	before = card_snap()->st[0].connects;
	SCardReleaseContext(pc_ctx);
	pc_ctx = 0;
	assert_int_equal(rig_run("restart"), 0);
	assert_int_equal(SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &pc_ctx),
	                 SCARD_S_SUCCESS);
	pc_wait_present(RDR0, 6000);
	h = pc_connect_on(pc_ctx, RDR0);
	n = pc_transmit(h, sel, sizeof(sel), resp);
	assert_hex_equal(resp, n, "9000");
	SCardDisconnect(h, SCARD_LEAVE_CARD);
	s = card_snap();
	assert_true(s->st[0].connects > before);
	assert_true(s->toy[0].link_down >= 1);
}

int main(void)
{
	const struct CMUnitTest pure[] = {
		cmocka_unit_test(test_atr_check),
		cmocka_unit_test(test_parse_target),
		cmocka_unit_test(test_new_rejects_bad_config),
	};
	const struct CMUnitTest fake[] = {
		cmocka_unit_test_teardown(test_fake_control_and_atr, fake_teardown),
		cmocka_unit_test_teardown(test_fake_apdus, fake_teardown),
		cmocka_unit_test_teardown(test_fake_async_and_second_link, fake_teardown),
		cmocka_unit_test_teardown(test_fake_bad_frames_reconnect, fake_teardown),
		cmocka_unit_test_teardown(test_fake_idle_and_backoff, fake_teardown),
		cmocka_unit_test_teardown(test_fake_refused_backoff, fake_teardown),
	};
	const struct CMUnitTest pcsc[] = {
		cmocka_unit_test(test_pcsc_readers_and_atr),
		cmocka_unit_test(test_pcsc_select_and_echo),
		cmocka_unit_test(test_pcsc_delayed_while_other_served),
		cmocka_unit_test(test_pcsc_power_events),
		cmocka_unit_test(test_pcsc_round_trip),
		cmocka_unit_test(test_pcsc_pcscd_restart),
	};
	struct sigaction sa;
	int failed = 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_fatal_signal;
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	alarm(100); /* below ctest's 120 s, so the rig is stopped by us */
	signal(SIGPIPE, SIG_IGN);
	rig_path_init("test_vpcd_pcsc");
	atexit(rig_stop);
	if (evthread_use_pthreads() != 0) {
		fprintf(stderr, "evthread_use_pthreads failed\n");
		return 1;
	}
	failed += cmocka_run_group_tests_name("vpcd_pure", pure, NULL, NULL);
	failed += cmocka_run_group_tests_name("vpcd_fake", fake, NULL, NULL);
	failed += cmocka_run_group_tests_name("vpcd_pcsc", pcsc, pcsc_setup, pcsc_teardown);
	return failed;
}
