/* test_gateway.c - `tapbridge gateway` as a real process in front of an echo server that
 * runs in a thread of this test, on loopback: bytes round trip unchanged for 1 byte to
 * 1 MiB (half-close passed through), the added delay shows in the round trip, 30% loss
 * stretches some round trips by the rto and keeps order, the per-line byte counts logged
 * at close match what was sent, 50 concurrent lines stay intact, bad flags are refused. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vec.h"

struct echo_srv {
	int lfd;
	uint16_t port;
	pthread_t th;
};

struct gwp {
	pid_t pid;
	uint16_t port;
	char log[PATH_MAX];
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	uint8_t buf[16384];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));

			if (w <= 0)
				goto out;
			off += w;
		}
	}
out:
	close(fd);
	return NULL;
}

static void *echo_accept(void *arg)
{
	struct echo_srv *e = arg;
	int fd;

	while ((fd = accept(e->lfd, NULL, NULL)) >= 0) {
		pthread_t th;
		int one = 1;

		(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (pthread_create(&th, NULL, echo_conn, (void *)(intptr_t)fd) != 0) {
			close(fd);
			continue;
		}
		pthread_detach(th);
	}
	return NULL;
}

static void echo_start(struct echo_srv *e)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	e->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(e->lfd >= 0);
	assert_int_equal(bind(e->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(e->lfd, 128), 0);
	assert_int_equal(getsockname(e->lfd, (struct sockaddr *)&sa, &len), 0);
	e->port = ntohs(sa.sin_port);
	assert_int_equal(pthread_create(&e->th, NULL, echo_accept, e), 0);
}

static void echo_stop(struct echo_srv *e)
{
	shutdown(e->lfd, SHUT_RDWR);
	pthread_join(e->th, NULL);
	close(e->lfd);
}

static void gw_bin(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	assert_true(n > 0);
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	assert_non_null(slash);
	*slash = '\0';
	assert_true((size_t)snprintf(out, cap, "%s/tapbridge", exe) < cap);
}

/* Runs `tapbridge gateway ARGS...` (NULL-terminated), stderr to a log file; waits for
 * its start line and takes the port from it. Returns the exit status instead (and
 * pid -1) when it ends before printing one. */
static int gw_start(struct gwp *p, const char *const *args)
{
	char bin[PATH_MAX], line[256];
	const char *argv[24];
	size_t k = 0;
	int pfd[2], lfd, st;
	FILE *f;

	gw_bin(bin, sizeof(bin));
	argv[k++] = bin;
	argv[k++] = "gateway";
	for (; *args != NULL && k < 23; args++)
		argv[k++] = *args;
	argv[k] = NULL;
	strcpy(p->log, "/tmp/tb-gw-XXXXXX");
	lfd = mkstemp(p->log);
	assert_true(lfd >= 0);
	assert_int_equal(pipe(pfd), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		dup2(pfd[1], 1);
		dup2(lfd, 2);
		close(pfd[0]);
		close(pfd[1]);
		close(lfd);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(pfd[1]);
	close(lfd);
	f = fdopen(pfd[0], "r");
	assert_non_null(f);
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
			;
		p->pid = -1;
		unlink(p->log);
		return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	}
	fclose(f);
	{
		const char *c = strstr(line, "gateway listening 127.0.0.1:");
		unsigned port = 0;

		assert_non_null(c);
		assert_int_equal(sscanf(c, "gateway listening 127.0.0.1:%u -> ", &port), 1);
		assert_true(port > 0 && port < 65536);
		p->port = (uint16_t)port;
	}
	return 0;
}

/* The whole log so far (caller frees). */
static char *gw_log(const struct gwp *p)
{
	FILE *f = fopen(p->log, "r");
	char *buf = calloc(1, 1 << 20);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 20) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* Waits up to 5 s for `want` in the log. */
static int gw_log_wait(const struct gwp *p, const char *want)
{
	for (int i = 0; i < 500; i++) {
		char *s = gw_log(p);
		int hit = strstr(s, want) != NULL;

		free(s);
		if (hit)
			return 1;
		usleep(10000);
	}
	return 0;
}

static char *gw_stop(struct gwp *p)
{
	int st;
	char *s;

	assert_int_equal(kill(p->pid, SIGTERM), 0);
	while (waitpid(p->pid, &st, 0) < 0)
		assert_int_equal(errno, EINTR);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	s = gw_log(p);
	unlink(p->log);
	return s;
}

static int tcp_connect(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(port);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void fill(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* Sends n bytes while reading the echo (no deadlock on big sizes), then half-closes and
 * expects the echo's end too. 0, or -1 on a timeout, a short echo or extra bytes. */
static int echo_xfer(int fd, const uint8_t *out, uint8_t *in, size_t n)
{
	size_t sent = 0, got = 0;
	int64_t end = now_us() + 30 * 1000000;
	int shut = 0;

	while (now_us() < end) {
		struct pollfd pf = { fd, POLLIN, 0 };
		ssize_t r;

		if (sent < n)
			pf.events |= POLLOUT;
		else if (!shut) {
			shutdown(fd, SHUT_WR);
			shut = 1;
		}
		if (poll(&pf, 1, 1000) < 0 && errno != EINTR)
			return -1;
		if ((pf.revents & POLLOUT) && sent < n) {
			r = send(fd, out + sent, n - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r < 0 && errno != EAGAIN)
				return -1;
			if (r > 0)
				sent += (size_t)r;
		}
		if (pf.revents & (POLLIN | POLLHUP | POLLERR)) {
			uint8_t extra;

			if (got == n) {
				r = recv(fd, &extra, 1, MSG_DONTWAIT);
				if (r == 0 && shut)
					return 0;
				if (r > 0 || (r < 0 && errno != EAGAIN))
					return -1;
				continue;
			}
			r = recv(fd, in + got, n - got, MSG_DONTWAIT);
			if (r == 0 || (r < 0 && errno != EAGAIN))
				return -1;
			if (r > 0)
				got += (size_t)r;
		}
	}
	return -1;
}

static void xfer_check(uint16_t port, size_t n, uint64_t seed)
{
	uint8_t *out = malloc(n), *in = malloc(n);
	int fd = tcp_connect(port);

	assert_non_null(out);
	assert_non_null(in);
	fill(out, n, seed);
	if (echo_xfer(fd, out, in, n) != 0)
		fail_msg("%zu bytes did not come back whole", n);
	assert_memory_equal(out, in, n);
	close(fd);
	free(out);
	free(in);
}

/* One round trip of len bytes on an open connection, in microseconds; checks the echo. */
static int64_t rtt_us(int fd, const uint8_t *msg, size_t len)
{
	uint8_t back[64];
	size_t got = 0;
	int64_t t0 = now_us();

	assert_true(len <= sizeof(back));
	assert_int_equal(send(fd, msg, len, MSG_NOSIGNAL), (ssize_t)len);
	while (got < len) {
		ssize_t r = recv(fd, back + got, len - got, 0);

		assert_true(r > 0);
		got += (size_t)r;
	}
	assert_memory_equal(back, msg, len);
	return now_us() - t0;
}

static int64_t median_rtt_us(uint16_t port, int rounds)
{
	int64_t v[256], t;
	int fd = tcp_connect(port);
	uint8_t b = 0x5A;

	assert_true(rounds <= 256);
	for (int i = 0; i < rounds; i++)
		v[i] = rtt_us(fd, &b, 1);
	close(fd);
	for (int i = 1; i < rounds; i++)
		for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
			t = v[j];
			v[j] = v[j - 1];
			v[j - 1] = t;
		}
	return v[rounds / 2];
}

static void test_roundtrip_sizes(void **state)
{
	static const size_t sizes[] = { 1, 2, 100, 1460, 4096, 65535, 65536, 65537,
					262144, 300001, 1u << 20 };
	struct echo_srv e;
	struct gwp p;
	char to[32];
	int64_t direct, via;
	char *log;

	(void)state;
	echo_start(&e);
	snprintf(to, sizeof(to), "127.0.0.1:%u", e.port);
	assert_int_equal(gw_start(&p, (const char *[]){ "--listen", "127.0.0.1:0", "--to", to,
						       NULL }), 0);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		xfer_check(p.port, sizes[i], i + 1);
	direct = median_rtt_us(e.port, 200);
	via = median_rtt_us(p.port, 200);
	print_message("1-byte round trip, median of 200: direct %lld us, through the gateway "
		      "(--delay-ms 0) %lld us, overhead %lld us\n", (long long)direct,
		      (long long)via, (long long)(via - direct));
	assert_true(via < 50000);
	log = gw_stop(&p);
	assert_non_null(strstr(log, "gw line=1 up=1 down=1 "));
	assert_non_null(strstr(log, "gw line=11 up=1048576 down=1048576 "));
	free(log);
	echo_stop(&e);
}

static void test_delay(void **state)
{
	struct echo_srv e;
	struct gwp p;
	char to[32];
	uint8_t msg[16];
	int fd;
	char *log;

	(void)state;
	echo_start(&e);
	snprintf(to, sizeof(to), "127.0.0.1:%u", e.port);
	assert_int_equal(gw_start(&p, (const char *[]){ "--listen", "127.0.0.1:0", "--to", to,
						       "--delay-ms", "50", NULL }), 0);
	fd = tcp_connect(p.port);
	for (int i = 0; i < 5; i++) {
		int64_t t;

		fill(msg, sizeof(msg), (uint64_t)i);
		t = rtt_us(fd, msg, sizeof(msg));
		print_message("--delay-ms 50: round trip %lld us\n", (long long)t);
		assert_true(t >= 100000);
		assert_true(t < 1000000);
	}
	close(fd);
	xfer_check(p.port, 200000, 9); /* bulk through the held chunks */
	log = gw_stop(&p);
	assert_non_null(strstr(log, "gw line=2 up=200000 down=200000 "));
	free(log);
	echo_stop(&e);
}

static void test_loss(void **state)
{
	struct echo_srv e;
	struct gwp p;
	char to[32];
	int fd, slow = 0, fast = 0;
	char *log;

	(void)state;
	echo_start(&e);
	snprintf(to, sizeof(to), "127.0.0.1:%u", e.port);
	assert_int_equal(gw_start(&p, (const char *[]){ "--listen", "127.0.0.1:0", "--to", to,
						       "--loss", "30", "--rto-ms", "200",
						       "--seed", "7", NULL }), 0);
	fd = tcp_connect(p.port);
	for (uint32_t i = 0; i < 40; i++) {
		uint8_t msg[8];
		int64_t t;

		fill(msg, sizeof(msg), i);
		msg[0] = (uint8_t)i; /* the sequence number: the echo must be this one */
		t = rtt_us(fd, msg, sizeof(msg));
		if (t >= 200000)
			slow++;
		else
			fast++;
	}
	close(fd);
	print_message("--loss 30 --rto-ms 200: %d of 40 round trips stretched\n", slow);
	assert_true(slow > 0);
	assert_true(fast > 0);
	xfer_check(p.port, 300000, 11); /* order kept across stretched chunks */
	log = gw_stop(&p);
	{
		const char *c = strstr(log, "gw line=1 up=320 down=320 ");
		unsigned ms = 0, stretched = 0;

		assert_non_null(c);
		assert_int_equal(sscanf(c, "gw line=1 up=320 down=320 ms=%u stretched=%u", &ms,
					&stretched), 2);
		assert_true(stretched > 0); /* the gateway's count of what it stretched */
	}
	assert_non_null(strstr(log, "gw line=2 up=300000 down=300000 "));
	free(log);
	echo_stop(&e);
}

static void test_counts_and_stats(void **state)
{
	struct echo_srv e;
	struct gwp p;
	char to[32];
	char *log;

	(void)state;
	echo_start(&e);
	snprintf(to, sizeof(to), "127.0.0.1:%u", e.port);
	assert_int_equal(gw_start(&p, (const char *[]){ "--listen", "127.0.0.1:0", "--to", to,
						       "--delay-ms", "3", NULL }), 0);
	xfer_check(p.port, 12345, 1);
	assert_true(gw_log_wait(&p, "gw line=1 up=12345 down=12345 ms="));
	xfer_check(p.port, 777, 2);
	assert_true(gw_log_wait(&p, "gw line=2 up=777 down=777 ms="));
	assert_int_equal(kill(p.pid, SIGUSR1), 0);
	assert_true(gw_log_wait(&p, "gw stats open=0 lines=2 up=13122 down=13122 stretched=0"));
	log = gw_stop(&p);
	free(log);
	echo_stop(&e);
}

struct line_job {
	uint16_t port;
	uint64_t seed;
	int ok;
};

static void *line_thread(void *arg)
{
	struct line_job *j = arg;
	size_t n = 65536 + (size_t)j->seed * 97;
	uint8_t *out = malloc(n), *in = malloc(n);
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons(j->port);
	j->ok = 0;
	if (out != NULL && in != NULL && fd >= 0 &&
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		fill(out, n, j->seed + 100);
		if (echo_xfer(fd, out, in, n) == 0) {
			j->ok = 1;
			for (size_t i = 0; i < n; i++)
				if (in[i] != out[i])
					j->ok = 0;
		}
	}
	if (fd >= 0)
		close(fd);
	free(out);
	free(in);
	return NULL;
}

static void test_many_lines(void **state)
{
	enum { LINES = 50 };
	struct echo_srv e;
	struct gwp p;
	struct line_job jobs[LINES];
	pthread_t th[LINES];
	char to[32];
	char *log, *s;
	int closes = 0;

	(void)state;
	echo_start(&e);
	snprintf(to, sizeof(to), "127.0.0.1:%u", e.port);
	assert_int_equal(gw_start(&p, (const char *[]){ "--listen", "127.0.0.1:0", "--to", to,
						       "--delay-ms", "5", "--loss", "10",
						       "--rto-ms", "20", NULL }), 0);
	for (int i = 0; i < LINES; i++) {
		jobs[i].port = p.port;
		jobs[i].seed = (uint64_t)i;
		assert_int_equal(pthread_create(&th[i], NULL, line_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < LINES; i++) {
		pthread_join(th[i], NULL);
		if (!jobs[i].ok)
			fail_msg("line %d broken", i);
	}
	for (int i = 0; i < 500; i++) {
		log = gw_log(&p);
		closes = 0;
		for (s = log; (s = strstr(s, "gw line=")) != NULL; s++)
			closes++;
		free(log);
		if (closes == LINES)
			break;
		usleep(10000);
	}
	assert_int_equal(closes, LINES);
	log = gw_stop(&p);
	free(log);
	echo_stop(&e);
}

static void test_bad_args(void **state)
{
	struct gwp p;
	int fd;
	char b;

	(void)state;
	assert_int_equal(gw_start(&p, (const char *[]){ "--listen", "127.0.0.1:0", NULL }), 2);
	assert_int_equal(gw_start(&p, (const char *[]){ "--listen", "127.0.0.1:0", "--to",
						       "127.0.0.1:1", "--loss", "101", NULL }), 2);
	assert_int_equal(gw_start(&p, (const char *[]){ "--listen", "localhost:0", "--to",
						       "127.0.0.1:1", NULL }), 2);
	assert_int_equal(gw_start(&p, (const char *[]){ "--listen", "127.0.0.1:0", "--to",
						       "127.0.0.1:0", NULL }), 2);
	assert_int_equal(gw_start(&p, (const char *[]){ "--listen", "127.0.0.1:0", "--to",
						       "127.0.0.1:1", "--bogus", NULL }), 2);
	/* A server that refuses: the phone's line is closed, the gateway stays up. */
	assert_int_equal(gw_start(&p, (const char *[]){ "--listen", "127.0.0.1:0", "--to",
						       "127.0.0.1:1", NULL }), 0);
	fd = tcp_connect(p.port);
	assert_true(recv(fd, &b, 1, 0) <= 0);
	close(fd);
	free(gw_stop(&p));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_sizes),
		cmocka_unit_test(test_delay),
		cmocka_unit_test(test_loss),
		cmocka_unit_test(test_counts_and_stats),
		cmocka_unit_test(test_many_lines),
		cmocka_unit_test(test_bad_args),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
