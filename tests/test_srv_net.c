/* test_srv_net.c - the phone transport (io/srv_net.h) over real TLS 1.3 on loopback: the
 * server loop runs in a thread with test handlers, the phones are blocking OpenSSL clients
 * pinned to the server's certificate. Checks HELLO -> MENU, PING -> PONG, the services'
 * frames, holding and resuming, pipelining past the output limit; that every bad frame
 * (before HELLO, oversize before and after HELLO, by type, unknown or wrong-direction type,
 * empty, malformed, wrong version, HELLO twice, out of order) gets an ERROR with its code
 * and then a close; that TLS garbage, a silent TCP peer, a session stopped mid-frame, a
 * trickling one and an idle one are closed in time; and that a well-behaved phone keeps
 * getting PONGs through all of it. Then 500 concurrent sessions, the session limit, the
 * shutdown, and log lines that carry no payload. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include "err.h"
#include "proto.h"
#include "srv_net.h"
#include "tls.h"
#include "vec.h"

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ---- the server side: a loop in a thread ---- */

struct rig {
	char dir[64];
	struct tls_server *tls;
	struct tls_client *client;
	struct event_base *base;
	struct srv *srv;
	struct event *cmd_ev, *resume_ev;
	struct srv_ref held;
	int cmd[2];
	pthread_t th;
	uint16_t port;
	FILE *log;
	atomic_int n_hello, n_close, n_frames;
	atomic_int handler_failures; /* checks made on the loop thread (no cmocka there) */
	atomic_int closes_by_code[32];
};

#define LOOP_CHECK(r, cond)                                                          \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "loop check failed: %s (line %d)\n", #cond, __LINE__); \
			atomic_fetch_add(&(r)->handler_failures, 1);                 \
		}                                                                    \
	} while (0)

static void rig_on_hello(struct srv_session *s, const struct proto_hello *h, void *arg)
{
	static const uint8_t menu[] = { 1, 0, 0, 0, 1, 2, PROTO_SVC_OFFERED, 4, 'T', 'e', 's', 't' };
	struct rig *r = arg;

	(void)h;
	atomic_fetch_add(&r->n_hello, 1);
	LOOP_CHECK(r, (srv_send(s, PROTO_MENU, menu, sizeof(menu))) == (0));
	LOOP_CHECK(r, (srv_send(s, PROTO_NOTICE, (const uint8_t *)"hello", 5)) == (0));
}

/* SELECT 2 holds the session for 200 ms, then answers and resumes: what the phone sent
 * meanwhile must wait. */
static void rig_resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rig *r = arg;
	struct srv_session *s = srv_session_get(r->srv, r->held);

	(void)fd;
	(void)what;
	if (s == NULL)
		return;
	(void)srv_send(s, PROTO_NOTICE, (const uint8_t *)"resumed", 7);
	srv_resume(s);
}

static int rig_on_frame(struct srv_session *s, const struct proto_msg *m, void *arg)
{
	static const uint8_t apdu[] = { 0, 0, 0, 1, 0x00, 0xA4, 0x04, 0x00, 0x00 };
	struct rig *r = arg;
	struct proto_msg out;
	struct timeval tv = { 0, 200000 };

	atomic_fetch_add(&r->n_frames, 1);
	switch (m->type) {
	case PROTO_SELECT:
		if (m->u.select.service == 2) {
			r->held = srv_session_ref(s);
			evtimer_add(r->resume_ev, &tv);
			return SRV_HOLD;
		}
		LOOP_CHECK(r, (srv_send(s, PROTO_SE_APDU, apdu, sizeof(apdu))) == (0));
		return 0;
	case PROTO_SE_RESP:
		if (m->u.apdu.seq != 1)
			srv_close_with_error(s, PROTO_ERR_OUT_OF_ORDER, "SE_RESP for no SE_APDU");
		else
			(void)srv_send(s, PROTO_NOTICE, (const uint8_t *)"ok", 2);
		return 0;
	case PROTO_RELAY_UP:
		out.type = PROTO_RELAY_DOWN;
		out.u.relay_down.relay = m->u.relay_up.relay;
		out.u.relay_down.status = PROTO_RELAY_ANSWER;
		out.u.relay_down.data = m->u.relay_up.data;
		out.u.relay_down.n = m->u.relay_up.n;
		LOOP_CHECK(r, (srv_send_msg(s, &out)) == (0));
		return 0;
	case PROTO_HISTORY_REQ:
		out.type = PROTO_HISTORY;
		out.u.history.more = 0;
		out.u.history.n = 0;
		LOOP_CHECK(r, (srv_send_msg(s, &out)) == (0));
		/* What the transport refuses to send. */
		LOOP_CHECK(r, (srv_send(s, PROTO_ERROR, (const uint8_t *)"\x00\x01x", 3)) == (TB_E_FRAME_TYPE));
		LOOP_CHECK(r, (srv_send(s, PROTO_HELLO, NULL, 0)) == (TB_E_FRAME_TYPE));
		LOOP_CHECK(r, (srv_send(s, PROTO_NOTICE, (const uint8_t *)"a\nb", 3)) == (TB_E_PROTO_TEXT));
		LOOP_CHECK(r, (srv_send(s, PROTO_NOTICE, NULL, 0)) == (TB_E_PROTO_FIELD));
		return 0;
	default:
		return 0;
	}
}

static void rig_on_close(struct srv_session *s, uint16_t code, void *arg)
{
	struct rig *r = arg;

	LOOP_CHECK(r, (srv_send(s, PROTO_NOTICE, (const uint8_t *)"x", 1)) == (TB_E_PROTO_STATE));
	LOOP_CHECK(r, (srv_session_get(r->srv, srv_session_ref(s))) == NULL);
	atomic_fetch_add(&r->n_close, 1);
	atomic_fetch_add(&r->closes_by_code[code < 32 ? code : 31], 1);
}

static const struct srv_handlers rig_handlers = { rig_on_hello, rig_on_frame, rig_on_close };

static void rig_cmd_cb(evutil_socket_t fd, short what, void *arg)
{
	struct rig *r = arg;
	char c;

	(void)what;
	if (read(fd, &c, 1) != 1)
		return;
	if (c == 'q')
		event_base_loopbreak(r->base);
	else if (c == 's')
		srv_shutdown(r->srv);
}

static void *rig_thread(void *arg)
{
	struct rig *r = arg;

	event_base_dispatch(r->base);
	return NULL;
}

static void rig_cmd(struct rig *r, char c)
{
	assert_int_equal(write(r->cmd[1], &c, 1), 1);
}

static struct rig *rig_start(const struct srv_config *cfg)
{
	struct rig *r = calloc(1, sizeof(*r));
	char why[256], bound[SRV_ADDR_MAX];
	uint8_t fpr[TLS_FPR_LEN];
	struct srv_config c = *cfg;

	assert_non_null(r);
	strcpy(r->dir, "/tmp/tb_srv_XXXXXX");
	assert_non_null(mkdtemp(r->dir));
	if (tls_server_open(r->dir, &r->tls, NULL, why, sizeof(why)) != 0)
		fail_msg("%s", why);
	tls_server_fingerprint(r->tls, fpr);
	assert_int_equal(tls_client_new(fpr, &r->client), 0);
	r->log = tmpfile();
	assert_non_null(r->log);
	c.log = getenv("TB_TEST_LOG") != NULL ? stderr : r->log;
	r->base = event_base_new();
	assert_non_null(r->base);
	assert_int_equal(srv_new(r->base, r->tls, &c, &rig_handlers, r, &r->srv), 0);
	assert_int_equal(srv_listen(r->srv, "127.0.0.1:0", bound), 0);
	assert_int_equal(srv_listen(r->srv, "127.0.0.1:0", bound), TB_E_INVAL); /* one listener */
	r->port = (uint16_t)atoi(strrchr(bound, ':') + 1);
	assert_true(r->port > 0);
	assert_int_equal(pipe(r->cmd), 0);
	r->cmd_ev = event_new(r->base, r->cmd[0], EV_READ | EV_PERSIST, rig_cmd_cb, r);
	r->resume_ev = evtimer_new(r->base, rig_resume_cb, r);
	assert_int_equal(event_add(r->cmd_ev, NULL), 0);
	assert_int_equal(pthread_create(&r->th, NULL, rig_thread, r), 0);
	return r;
}

/* Stops the loop; the server stays as it was, for inspection. */
static void rig_halt(struct rig *r)
{
	rig_cmd(r, 'q');
	assert_int_equal(pthread_join(r->th, NULL), 0);
	assert_int_equal(atomic_load(&r->handler_failures), 0);
}

static void rig_free(struct rig *r)
{
	srv_free(r->srv);
	/* libevent finishes freeing bufferevents (deferred callbacks) from its loop. */
	event_base_loop(r->base, EVLOOP_NONBLOCK);
	event_free(r->cmd_ev);
	event_free(r->resume_ev);
	event_base_free(r->base);
	tls_client_free(r->client);
	tls_server_free(r->tls);
	fclose(r->log);
	close(r->cmd[0]);
	close(r->cmd[1]);
	{
		char p[128];

		snprintf(p, sizeof(p), "%s/%s", r->dir, TLS_KEY_FILE);
		unlink(p);
		snprintf(p, sizeof(p), "%s/%s", r->dir, TLS_CERT_FILE);
		unlink(p);
		rmdir(r->dir);
	}
	free(r);
}

static void rig_stop(struct rig *r)
{
	rig_halt(r);
	rig_free(r);
}

/* Waits (up to 5 s) for the server thread to have counted n closes. */
static void rig_wait_closes(struct rig *r, int n)
{
	for (int i = 0; i < 500 && atomic_load(&r->n_close) < n; i++)
		sleep_us(10000);
	assert_int_equal(atomic_load(&r->n_close), n);
}

static void fast_config(struct srv_config *c)
{
	srv_config_default(c);
	c->hello_ms = 1500;
	c->idle_ms = 3000;
	c->frame_ms = 400;
	c->write_ms = 2000;
	c->close_ms = 500;
}

/* ---- the phone side: blocking clients ---- */

struct cli {
	int fd;
	SSL *ssl;
};

static int tcp_connect(uint16_t port, unsigned timeout_ms)
{
	struct sockaddr_in a;
	struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)((timeout_ms % 1000) * 1000) };
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	assert_true(fd >= 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

/* 0 when TLS is up; -1 when the server refused or closed. */
static int cli_try(struct rig *r, struct cli *c, unsigned timeout_ms)
{
	c->fd = tcp_connect(r->port, timeout_ms);
	c->ssl = tls_client_ssl(r->client);
	assert_non_null(c->ssl);
	SSL_set_fd(c->ssl, c->fd);
	if (SSL_connect(c->ssl) == 1)
		return 0;
	SSL_free(c->ssl);
	close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
	return -1;
}

static void cli_open(struct rig *r, struct cli *c)
{
	assert_int_equal(cli_try(r, c, 5000), 0);
}

static void cli_free(struct cli *c)
{
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	if (c->fd >= 0)
		close(c->fd);
	c->ssl = NULL;
	c->fd = -1;
}

static void cli_raw(struct cli *c, const uint8_t *p, size_t n)
{
	assert_int_equal(SSL_write(c->ssl, p, (int)n), (int)n);
}

static void cli_send(struct cli *c, uint8_t type, const char *payload_hex)
{
	uint8_t f[FRAME_HDR_LEN + 2048];
	size_t n = hexbuf(payload_hex, f + FRAME_HDR_LEN, sizeof(f) - FRAME_HDR_LEN);

	f[0] = (uint8_t)((n + 1) >> 24);
	f[1] = (uint8_t)((n + 1) >> 16);
	f[2] = (uint8_t)((n + 1) >> 8);
	f[3] = (uint8_t)(n + 1);
	f[4] = type;
	cli_raw(c, f, FRAME_HDR_LEN + n);
}

/* Reads exactly n bytes: 1, 0 when the server closed, -1 on timeout. */
static int cli_read(struct cli *c, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n) {
		int k = SSL_read(c->ssl, p + got, (int)(n - got));

		if (k > 0) {
			got += (size_t)k;
			continue;
		}
		if (SSL_get_error(c->ssl, k) == SSL_ERROR_ZERO_RETURN)
			return 0;
		return (errno == EAGAIN || errno == EWOULDBLOCK) ? -1 : 0;
	}
	return 1;
}

/* One frame: 1 (type, payload in p, *n), 0 closed, -1 timeout. */
static int cli_recv(struct cli *c, uint8_t *type, uint8_t *p, size_t cap, size_t *n)
{
	uint8_t h[FRAME_HDR_LEN];
	uint32_t len;
	int rc = cli_read(c, h, sizeof(h));

	if (rc != 1)
		return rc;
	len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	assert_true(len >= 1 && len - 1 <= cap);
	*type = h[4];
	*n = len - 1;
	return *n > 0 ? cli_read(c, p, *n) : 1;
}

static void cli_expect(struct cli *c, uint8_t type, struct proto_msg *m, uint8_t *buf, size_t cap)
{
	uint8_t t = 0;
	size_t n = 0;

	assert_int_equal(cli_recv(c, &t, buf, cap, &n), 1);
	if (t != type)
		fail_msg("got frame type %02X, want %02X", t, type);
	assert_int_equal(proto_decode(t, n ? buf : NULL, n, m), 0);
}

static void cli_expect_closed(struct cli *c)
{
	uint8_t t, p[PROTO_PHONE_IN_MAX];
	size_t n;

	assert_int_equal(cli_recv(c, &t, p, sizeof(p), &n), 0);
}

/* ERROR with this code (and reason, when given), then the close. */
static void cli_expect_error(struct cli *c, uint16_t code, const char *reason)
{
	uint8_t buf[PROTO_PHONE_IN_MAX];
	struct proto_msg m;

	cli_expect(c, PROTO_ERROR, &m, buf, sizeof(buf));
	if (m.u.error.code != code)
		fail_msg("ERROR code %u (%.*s), want %u", m.u.error.code, (int)m.u.error.n,
			 (const char *)m.u.error.reason, code);
	if (reason != NULL) {
		assert_int_equal(m.u.error.n, strlen(reason));
		assert_memory_equal(m.u.error.reason, reason, m.u.error.n);
	}
	cli_expect_closed(c);
	cli_free(c);
}

static void cli_hello(struct cli *c)
{
	uint8_t buf[PROTO_PHONE_IN_MAX];
	struct proto_msg m;

	cli_send(c, PROTO_HELLO, "0001" "5345000000004321" "03" "312E30");
	cli_expect(c, PROTO_MENU, &m, buf, sizeof(buf));
	assert_int_equal(m.u.menu.n, 1);
	assert_int_equal(m.u.menu.items[0].id, 1);
	cli_expect(c, PROTO_NOTICE, &m, buf, sizeof(buf));
	assert_int_equal(m.u.notice.n, 5);
}

static void cli_ping(struct cli *c)
{
	static uint32_t counter;
	uint8_t buf[PROTO_PHONE_IN_MAX], tok[PROTO_PING_LEN] = { 0x50, 0x49, 0x4E, 0x47 };
	char hex[2 * PROTO_PING_LEN + 1];
	struct proto_msg m;

	counter++;
	tok[4] = (uint8_t)(counter >> 24);
	tok[5] = (uint8_t)(counter >> 16);
	tok[6] = (uint8_t)(counter >> 8);
	tok[7] = (uint8_t)counter;
	for (size_t i = 0; i < PROTO_PING_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02X", tok[i]);
	cli_send(c, PROTO_PING, hex);
	cli_expect(c, PROTO_PONG, &m, buf, sizeof(buf));
	assert_memory_equal(m.u.ping.token, tok, PROTO_PING_LEN);
}

static uint64_t ms_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the tests ---- */

static void test_session(void **state)
{
	struct srv_config cfg;
	struct rig *r;
	struct cli c;
	uint8_t buf[PROTO_PHONE_IN_MAX];
	struct proto_msg m;

	(void)state;
	fast_config(&cfg);
	r = rig_start(&cfg);
	cli_open(r, &c);
	assert_string_equal(tls_ssl_version(c.ssl), "TLSv1.3");
	cli_hello(&c);
	cli_ping(&c);
	cli_send(&c, PROTO_HISTORY_REQ, "0000000000000000" "20");
	cli_expect(&c, PROTO_HISTORY, &m, buf, sizeof(buf));
	assert_int_equal(m.u.history.n, 0);
	cli_send(&c, PROTO_SELECT, "00000001");
	cli_expect(&c, PROTO_SE_APDU, &m, buf, sizeof(buf));
	assert_int_equal(m.u.apdu.seq, 1);
	assert_hex_equal(m.u.apdu.data, m.u.apdu.n, "00A4040000");
	cli_send(&c, PROTO_SE_RESP, "00000001" "9000");
	cli_expect(&c, PROTO_NOTICE, &m, buf, sizeof(buf));
	assert_memory_equal(m.u.notice.p, "ok", 2);
	cli_send(&c, PROTO_RELAY_UP, "0000002A" "00000001" "A1B2C3");
	cli_expect(&c, PROTO_RELAY_DOWN, &m, buf, sizeof(buf));
	assert_int_equal(m.u.relay_down.relay, 42);
	assert_hex_equal(m.u.relay_down.data, m.u.relay_down.n, "A1B2C3");
	cli_send(&c, PROTO_PONG, "0000000000000000"); /* unsolicited PONG: ignored */
	cli_ping(&c);
	/* Several frames in one TLS record are all taken. */
	{
		static const uint8_t two[] = { 0, 0, 0, 9, PROTO_PING, 1, 2, 3, 4, 5, 6, 7, 8,
					       0, 0, 0, 9, PROTO_PING, 8, 7, 6, 5, 4, 3, 2, 1 };

		cli_raw(&c, two, sizeof(two));
		cli_expect(&c, PROTO_PONG, &m, buf, sizeof(buf));
		assert_int_equal(m.u.ping.token[0], 1);
		cli_expect(&c, PROTO_PONG, &m, buf, sizeof(buf));
		assert_int_equal(m.u.ping.token[0], 8);
	}
	cli_send(&c, PROTO_BYE, "");
	cli_expect(&c, PROTO_BYE, &m, buf, sizeof(buf));
	cli_expect_closed(&c);
	cli_free(&c);
	rig_wait_closes(r, 1);
	assert_int_equal(atomic_load(&r->closes_by_code[0]), 1);
	rig_stop(r);
}

/* SELECT 2 is held for 200 ms: the PING sent right after it is answered only after the
 * held answer, and the session's timers do not run out meanwhile. */
static void test_hold_resume(void **state)
{
	struct srv_config cfg;
	struct rig *r;
	struct cli c;
	uint8_t buf[PROTO_PHONE_IN_MAX];
	struct proto_msg m;
	uint64_t t0;

	(void)state;
	fast_config(&cfg);
	r = rig_start(&cfg);
	cli_open(r, &c);
	cli_hello(&c);
	t0 = ms_now();
	cli_send(&c, PROTO_SELECT, "00000002");
	cli_send(&c, PROTO_PING, "0102030405060708");
	cli_expect(&c, PROTO_NOTICE, &m, buf, sizeof(buf));
	assert_int_equal(m.u.notice.n, 7);
	assert_true(ms_now() - t0 >= 150);
	cli_expect(&c, PROTO_PONG, &m, buf, sizeof(buf));
	cli_ping(&c);
	cli_free(&c);
	rig_wait_closes(r, 1);
	rig_stop(r);
}

/* 5000 PINGs in one write (65 KB, several TLS records): every PONG comes back, in order.
 * With the output limit at 1 KiB, each record's worth of PONGs backs the output up, so
 * reading that phone pauses and resumes many times on the way. */
static void test_pipelined(void **state)
{
	enum { N = 5000 };
	static uint8_t big[N * (FRAME_HDR_LEN + PROTO_PING_LEN)];
	struct srv_config cfg;
	struct srv_stats st;
	struct rig *r;
	struct cli c;
	uint8_t buf[PROTO_PHONE_IN_MAX];
	struct proto_msg m;

	(void)state;
	fast_config(&cfg);
	cfg.out_high = 1024;
	r = rig_start(&cfg);
	cli_open(r, &c);
	cli_hello(&c);
	for (size_t i = 0; i < N; i++) {
		uint8_t *f = big + i * (FRAME_HDR_LEN + PROTO_PING_LEN);

		memset(f, 0, FRAME_HDR_LEN + PROTO_PING_LEN);
		f[3] = 1 + PROTO_PING_LEN;
		f[4] = PROTO_PING;
		f[11] = (uint8_t)(i >> 8);
		f[12] = (uint8_t)i;
	}
	cli_raw(&c, big, sizeof(big));
	for (size_t i = 0; i < N; i++) {
		cli_expect(&c, PROTO_PONG, &m, buf, sizeof(buf));
		assert_int_equal(m.u.ping.token[6], (uint8_t)(i >> 8));
		assert_int_equal(m.u.ping.token[7], (uint8_t)i);
	}
	cli_ping(&c);
	cli_free(&c);
	rig_wait_closes(r, 1);
	rig_halt(r);
	srv_get_stats(r->srv, &st);
	print_message("reading paused %llu times\n", (unsigned long long)st.out_pauses);
	assert_true(st.out_pauses >= 1);
	assert_int_equal(st.errors, 0);
	assert_int_equal(st.hellos, 1);
	rig_free(r);
}

struct bad_case {
	const char *name;
	int hello_first;
	const char *raw_hex;   /* bytes inside TLS */
	uint16_t code;
	const char *reason;
};

static const struct bad_case bad_cases[] = {
	{ "PING before HELLO", 0, "00000009" "40" "0102030405060708", PROTO_ERR_BEFORE_HELLO,
	  "frame before HELLO" },
	{ "SELECT before HELLO", 0, "00000005" "02" "00000001", PROTO_ERR_BEFORE_HELLO, NULL },
	{ "oversize before HELLO", 0, "00000259" "01", PROTO_ERR_TOO_LARGE, "frame too large" },
	{ "HELLO of version 2", 0, "0000000F" "01" "0002" "5345000000004321" "03" "312E30",
	  PROTO_ERR_VERSION, "protocol version not supported" },
	{ "HELLO with a bad app version", 0, "0000000F" "01" "0001" "5345000000004321" "03" "310030",
	  PROTO_ERR_MALFORMED, "malformed HELLO" },
	{ "empty frame", 0, "00000000", PROTO_ERR_EMPTY, NULL },
	{ "oversize after HELLO", 1, "000186A0" "03", PROTO_ERR_TOO_LARGE, "frame too large" },
	{ "oversize for its type", 1, "00000007" "02" "000000010000", PROTO_ERR_TOO_LARGE, NULL },
	{ "SELECT with an unknown op", 1, "00000006" "02" "0000000105", PROTO_ERR_MALFORMED, NULL },
	{ "unknown type", 1, "00000001" "77", PROTO_ERR_UNKNOWN_TYPE, "unknown frame type" },
	{ "server-only type from the phone", 1, "00000002" "81" "00", PROTO_ERR_UNKNOWN_TYPE, NULL },
	{ "malformed SELECT", 1, "00000004" "02" "000001", PROTO_ERR_MALFORMED, "malformed SELECT" },
	{ "SELECT of service 0", 1, "00000005" "02" "00000000", PROTO_ERR_MALFORMED, NULL },
	{ "HELLO twice", 1, "0000000F" "01" "0001" "5345000000004321" "03" "312E30",
	  PROTO_ERR_HELLO_TWICE, "HELLO twice" },
	{ "SE_RESP out of order", 1, "00000007" "03" "00000009" "9000", PROTO_ERR_OUT_OF_ORDER,
	  "SE_RESP for no SE_APDU" },
};

static void run_bad_case(struct rig *r, const struct bad_case *b, struct cli *good)
{
	struct cli c;
	uint8_t raw[4096];
	size_t n = hexbuf(b->raw_hex, raw, sizeof(raw));

	print_message("bad case: %s\n", b->name);
	cli_open(r, &c);
	if (b->hello_first)
		cli_hello(&c);
	cli_raw(&c, raw, n);
	if (b->code == PROTO_ERR_TOO_LARGE) {
		/* More bytes after the bad header: the server must still answer, not reset. */
		memset(raw, 0x5A, sizeof(raw));
		(void)SSL_write(c.ssl, raw, (int)sizeof(raw));
	}
	cli_ping(good);
	cli_expect_error(&c, b->code, b->reason);
	cli_ping(good);
}

/* Raw TCP bytes that are not TLS: closed, nothing else breaks. */
static void run_garbage(struct rig *r, const char *bytes, size_t n, struct cli *good)
{
	int fd = tcp_connect(r->port, 5000);
	char b[64];
	ssize_t k;

	assert_int_equal(write(fd, bytes, n), (ssize_t)n);
	cli_ping(good);
	k = read(fd, b, sizeof(b));
	while (k > 0) /* a TLS alert, perhaps; then the close */
		k = read(fd, b, sizeof(b));
	assert_true(k == 0 || errno == ECONNRESET);
	close(fd);
	cli_ping(good);
}

static void test_bad_frames_keep_others(void **state)
{
	static const char http[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct srv_config cfg;
	struct rig *r;
	struct cli good, c;
	char junk[300];
	uint64_t t0;
	int hellos_bad = 0, closes;

	(void)state;
	fast_config(&cfg);
	r = rig_start(&cfg);
	cli_open(r, &good);
	cli_hello(&good);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		run_bad_case(r, &bad_cases[i], &good);
		hellos_bad += bad_cases[i].hello_first;
	}
	rig_wait_closes(r, hellos_bad);

	print_message("TLS garbage\n");
	run_garbage(r, http, sizeof(http) - 1, &good);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (char)(i * 37 + 11);
	run_garbage(r, junk, sizeof(junk), &good);
	/* A TLS record header with a huge length, then nothing. */
	run_garbage(r, "\x16\x03\x01\xFF\xFF", 5, &good);

	print_message("stopped mid-header\n");
	cli_open(r, &c);
	cli_hello(&c);
	cli_raw(&c, (const uint8_t *)"\x00\x00\x00", 3);
	t0 = ms_now();
	for (int i = 0; i < 3; i++) /* the stalled session blocks nobody */
		cli_ping(&good);
	cli_expect_error(&c, PROTO_ERR_FRAME_TIMEOUT, "frame not completed in time");
	assert_true(ms_now() - t0 >= cfg.frame_ms - 50);
	cli_ping(&good);

	print_message("stopped mid-payload\n");
	cli_open(r, &c);
	cli_hello(&c);
	cli_raw(&c, (const uint8_t *)"\x00\x00\x00\x32\x04" "0123456789", 15);
	cli_ping(&good);
	cli_expect_error(&c, PROTO_ERR_FRAME_TIMEOUT, NULL);

	print_message("trickling a frame\n");
	cli_open(r, &c);
	cli_hello(&c);
	t0 = ms_now();
	{
		static const uint8_t ping[] = { 0, 0, 0, 9, PROTO_PING, 1, 2, 3, 4, 5, 6, 7, 8 };
		size_t i;

		/* One byte each 150 ms: the frame deadline is absolute, so this fails even
		 * though bytes keep coming (the write may fail once the server has closed). */
		for (i = 0; i < sizeof(ping) && ms_now() - t0 < 2 * cfg.frame_ms; i++) {
			if (SSL_write(c.ssl, ping + i, 1) != 1)
				break;
			sleep_us(150000);
		}
		assert_true(i < sizeof(ping));
	}
	cli_expect_error(&c, PROTO_ERR_FRAME_TIMEOUT, NULL);
	cli_ping(&good);

	print_message("TLS up, no HELLO\n");
	cli_open(r, &c);
	t0 = ms_now();
	cli_ping(&good);
	cli_expect_error(&c, PROTO_ERR_HELLO_TIMEOUT, "no HELLO in time");
	assert_true(ms_now() - t0 >= cfg.hello_ms - 200);

	print_message("TCP up, no TLS\n");
	{
		int fd = tcp_connect(r->port, 5000);
		char b[8];

		t0 = ms_now();
		cli_ping(&good);
		assert_true(read(fd, b, sizeof(b)) <= 0);
		assert_true(ms_now() - t0 < 5000);
		close(fd);
	}

	print_message("idle after HELLO\n");
	closes = atomic_load(&r->n_close);
	cli_open(r, &c);
	cli_hello(&c);
	t0 = ms_now();
	while (ms_now() - t0 < cfg.idle_ms - 500) { /* keep the good one from idling */
		cli_ping(&good);
		sleep_us(200000);
	}
	cli_expect_error(&c, PROTO_ERR_IDLE, "idle timeout");
	rig_wait_closes(r, closes + 1);
	assert_int_equal(atomic_load(&r->closes_by_code[PROTO_ERR_IDLE]), 1);
	assert_int_equal(atomic_load(&r->closes_by_code[PROTO_ERR_FRAME_TIMEOUT]), 3);

	cli_ping(&good);
	cli_send(&good, PROTO_BYE, "");
	cli_free(&good);
	rig_stop(r);
}

static void raise_fd_limit(void)
{
	struct rlimit rl;

	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	rl.rlim_cur = rl.rlim_max;
	(void)setrlimit(RLIMIT_NOFILE, &rl);
}

static void test_many_sessions(void **state)
{
	enum { N = 500 };
	static struct cli cs[N];
	struct srv_config cfg;
	struct rig *r;
	uint64_t t0 = ms_now();

	(void)state;
	raise_fd_limit();
	srv_config_default(&cfg);
	r = rig_start(&cfg);
	for (size_t i = 0; i < N; i++) {
		cli_open(r, &cs[i]);
		cli_hello(&cs[i]);
	}
	assert_int_equal(atomic_load(&r->n_hello), N);
	for (size_t i = 0; i < N; i++)
		cli_ping(&cs[N - 1 - i]);
	print_message("%d sessions opened and answered in %llu ms\n", N,
		      (unsigned long long)(ms_now() - t0));
	for (size_t i = 0; i < N; i++)
		cli_free(&cs[i]);
	rig_wait_closes(r, N);
	rig_stop(r);
}

static void test_session_limit(void **state)
{
	struct srv_config cfg;
	struct rig *r;
	struct cli c[3], extra;

	(void)state;
	fast_config(&cfg);
	cfg.max_sessions = 3;
	r = rig_start(&cfg);
	for (size_t i = 0; i < 3; i++) {
		cli_open(r, &c[i]);
		cli_hello(&c[i]);
	}
	assert_int_equal(cli_try(r, &extra, 5000), -1); /* closed at accept */
	cli_ping(&c[0]);
	cli_free(&c[2]);
	rig_wait_closes(r, 1);
	cli_open(r, &c[2]); /* the slot is free again */
	cli_hello(&c[2]);
	cli_ping(&c[2]);
	for (size_t i = 0; i < 3; i++)
		cli_free(&c[i]);
	rig_wait_closes(r, 4);
	rig_stop(r);
}

static void test_shutdown(void **state)
{
	struct srv_config cfg;
	struct rig *r;
	struct cli c[3], late;

	(void)state;
	fast_config(&cfg);
	r = rig_start(&cfg);
	for (size_t i = 0; i < 3; i++)
		cli_open(r, &c[i]);
	cli_hello(&c[0]);
	cli_hello(&c[1]); /* c[2]: TLS up, no HELLO yet */
	sleep_us(100000);   /* ... and seen as up by the server (its handshake ends after ours) */
	rig_cmd(r, 's');
	for (size_t i = 0; i < 3; i++)
		cli_expect_error(&c[i], PROTO_ERR_SHUTDOWN, "server shutting down");
	rig_wait_closes(r, 2);
	assert_int_equal(atomic_load(&r->closes_by_code[PROTO_ERR_SHUTDOWN]), 2);
	assert_int_equal(cli_try(r, &late, 1000), -1);
	rig_stop(r);
}

/* The log has one line per event, with the session id, and none of the payloads. */
static void test_log_lines(void **state)
{
	struct srv_config cfg;
	struct rig *r;
	struct cli c;
	char text[8192];
	uint8_t buf[PROTO_PHONE_IN_MAX];
	struct proto_msg m;
	size_t n;

	(void)state;
	if (getenv("TB_TEST_LOG") != NULL)
		skip();
	fast_config(&cfg);
	r = rig_start(&cfg);
	cli_open(r, &c);
	cli_hello(&c);
	cli_send(&c, PROTO_RELAY_UP, "0000002A" "00000001" "C0FFEE1234");
	cli_expect(&c, PROTO_RELAY_DOWN, &m, buf, sizeof(buf));
	cli_ping(&c);
	cli_send(&c, PROTO_SE_RESP, "00000009" "CAFE9000");
	cli_expect_error(&c, PROTO_ERR_OUT_OF_ORDER, NULL);
	rig_wait_closes(r, 1);
	rig_halt(r);
	rewind(r->log);
	n = fread(text, 1, sizeof(text) - 1, r->log);
	text[n] = '\0';
	assert_non_null(strstr(text, "srv session=1 event=open\n"));
	assert_non_null(strstr(text, "srv session=1 event=tls version=TLSv1.3\n"));
	assert_non_null(strstr(text, "srv session=1 event=hello se=5345000000004321 app=\"1.0\"\n"));
	assert_non_null(strstr(text, "srv session=1 event=error code=11 reason=\"SE_RESP for no SE_APDU\"\n"));
	assert_non_null(strstr(text, "srv session=1 event=close reason="));
	assert_null(strstr(text, "C0FFEE"));
	assert_null(strstr(text, "c0ffee"));
	assert_null(strstr(text, "CAFE"));
	assert_null(strstr(text, "PING"));
	for (char *line = text; *line != '\0'; line = strchr(line, '\n') + 1)
		assert_true(strncmp(line, "srv ", 4) == 0);
	rig_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_session),
		cmocka_unit_test(test_hold_resume),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_bad_frames_keep_others),
		cmocka_unit_test(test_many_sessions),
		cmocka_unit_test(test_session_limit),
		cmocka_unit_test(test_shutdown),
		cmocka_unit_test(test_log_lines),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
