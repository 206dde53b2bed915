/* sessions.c - benchmark `sessions`: memory per idle phone session. Measures the resident
 * set growth of `tapbridge server` holding N idle authenticated sessions (TLS 1.3, HELLO
 * answered with MENU and NOTICE), against a bare libevent loop (evconnlistener +
 * bufferevent_openssl, OpenSSL's defaults) holding N idle TLS 1.3 connections, and the
 * same bare loop with SSL_MODE_RELEASE_BUFFERS, all in one run; prints bytes per session
 * and the ratio to the bare loop.
 *
 * A measuring tool, not a part: like the tests it speaks OpenSSL directly (the bare loop
 * is the reference). Not built by CMake yet (`tapbridge bench` will carry it):
 *   cc -O2 -o /tmp/bench_sessions bench/sessions.c \
 *      $(pkg-config --cflags --libs libevent_openssl libevent_core libssl libcrypto)
 *   /tmp/bench_sessions build/release/tapbridge 10000
 * Needs 2 * N + 100 file descriptors (ulimit -n). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* ---- the bare reference: one libevent loop, one bufferevent_openssl per connection ---- */

static void bare_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_write_buffer(bev, bufferevent_get_input(bev)); /* echo, then idle */
}

static void bare_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		bufferevent_free(bev);
}

static void bare_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int n,
			void *arg)
{
	SSL *ssl = SSL_new(arg);
	struct bufferevent *bev;
	int one = 1;

	(void)l;
	(void)sa;
	(void)n;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bev = bufferevent_openssl_socket_new(evconnlistener_get_base(l), fd, ssl,
					     BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	bufferevent_setcb(bev, bare_read, NULL, bare_event, NULL);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Runs in a child: prints its port on fd out, serves until killed. */
static void bare_server(const char *dir, int release, int out)
{
	char cert[512], key[512];
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	struct event_base *base = event_base_new();
	struct evconnlistener *l;
	uint16_t port;

	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	if (SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
		exit(3);
	if (release)
		SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = evconnlistener_new_bind(base, bare_accept, ctx, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
				    1024, (struct sockaddr *)&a, sizeof(a));
	if (l == NULL)
		exit(3);
	getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&a, &alen);
	port = ntohs(a.sin_port);
	if (write(out, &port, sizeof(port)) != sizeof(port))
		exit(3);
	event_base_dispatch(base);
	exit(0);
}

/* ---- clients ---- */

struct conn {
	int fd;
	SSL *ssl;
};

static int conn_open(SSL_CTX *ctx, uint16_t port, struct conn *c)
{
	struct sockaddr_in a;
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->ssl = SSL_new(ctx);
	SSL_set_fd(c->ssl, c->fd);
	return SSL_connect(c->ssl) == 1 ? 0 : -1;
}

static int read_n(SSL *ssl, uint8_t *p, int n)
{
	for (int got = 0; got < n;) {
		int k = SSL_read(ssl, p + got, n - got);

		if (k <= 0)
			return -1;
		got += k;
	}
	return 0;
}

/* One frame of the phone protocol; its payload is dropped. */
static int read_frame(SSL *ssl, uint8_t *type)
{
	uint8_t h[5], p[4096];
	uint32_t n;

	if (read_n(ssl, h, 5) != 0)
		return -1;
	n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	*type = h[4];
	return n > 1 && n - 1 <= sizeof(p) ? read_n(ssl, p, (int)(n - 1)) : 0;
}

/* ours: HELLO, then MENU and NOTICE back; bare: one byte echoed. */
static int conn_authenticate(struct conn *c, int ours)
{
	static const uint8_t hello[] = { 0, 0, 0, 15, 0x01, 0, 1, 'S', 'E', 0, 0, 0, 0, 0, 1,
					 3, '1', '.', '0' };
	uint8_t t1 = 0, t2 = 0, b;

	if (!ours)
		return SSL_write(c->ssl, "x", 1) == 1 && read_n(c->ssl, &b, 1) == 0 ? 0 : -1;
	if (SSL_write(c->ssl, hello, sizeof(hello)) != (int)sizeof(hello) ||
	    read_frame(c->ssl, &t1) != 0 || read_frame(c->ssl, &t2) != 0)
		return -1;
	return t1 == 0x81 && t2 == 0x85 ? 0 : -1;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Opens n sessions to (pid, port), returns the RSS growth per session in bytes. */
static double measure(pid_t pid, uint16_t port, int ours, int n, struct conn *cs, SSL_CTX *ctx)
{
	long before, after;

	struct timespec t0, t1;

	sleep_ms(300);
	before = rss_kb(pid);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		if (conn_open(ctx, port, &cs[i]) != 0 || conn_authenticate(&cs[i], ours) != 0) {
			fprintf(stderr, "connection %d failed\n", i);
			exit(1);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	fprintf(stderr, "%d sessions opened in %.1f s\n", n,
		(double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	sleep_ms(1000);
	after = rss_kb(pid);
	for (int i = 0; i < n; i++) {
		SSL_free(cs[i].ssl);
		close(cs[i].fd);
	}
	return (double)(after - before) * 1024.0 / n;
}

static pid_t start_ours(const char *bin, const char *dir, int n, uint16_t *port)
{
	char max[16], line[256];
	int out[2];
	pid_t pid;
	FILE *f;

	snprintf(max, sizeof(max), "%d", n + 16);
	if (pipe(out) != 0)
		exit(1);
	pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		execl(bin, bin, "server", "--state", dir, "--listen", "127.0.0.1:0", "--http", "off",
		      "--quiet", "--idle", "3600", "--max-sessions", max, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	f = fdopen(out[0], "r");
	*port = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon = strrchr(line, ':');

		if (strncmp(line, "listening phones ", 17) == 0 && colon != NULL) {
			*port = (uint16_t)atoi(colon + 1);
			break;
		}
	}
	if (*port == 0)
		exit(1);
	return pid;
}

/* The bare loop runs in a fresh exec of this program, so it inherits none of our heap
 * (a forked copy would reuse our freed, already resident pages and look tiny). */
static pid_t start_bare(const char *self, const char *dir, int release, uint16_t *port)
{
	char fd[16];
	int out[2];
	pid_t pid;

	if (pipe(out) != 0)
		exit(1);
	pid = fork();
	if (pid == 0) {
		close(out[0]);
		snprintf(fd, sizeof(fd), "%d", out[1]);
		execl(self, self, "--bare-server", dir, release ? "1" : "0", fd, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	if (read(out[0], port, sizeof(*port)) != sizeof(*port))
		exit(1);
	close(out[0]);
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/tb_bench_XXXXXX";
	int n = argc > 2 ? atoi(argv[2]) : 10000;
	struct conn *cs;
	SSL_CTX *ctx;
	struct rlimit rl;
	uint16_t port;
	pid_t pid;
	double ours, bare, bare_rel;

	if (argc == 5 && strcmp(argv[1], "--bare-server") == 0) {
		bare_server(argv[2], atoi(argv[3]), atoi(argv[4]));
		return 0;
	}
	if (argc < 2 || n <= 0) {
		fprintf(stderr, "usage: %s TAPBRIDGE [SESSIONS]\n", argv[0]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (mkdtemp(dir) == NULL)
		return 1;
	cs = calloc((size_t)n, sizeof(*cs));
	ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

	pid = start_ours(argv[1], dir, n, &port); /* also makes the certificate the others use */
	ours = measure(pid, port, 1, n, cs, ctx);
	stop(pid);
	pid = start_bare("/proc/self/exe", dir, 0, &port);
	bare = measure(pid, port, 0, n, cs, ctx);
	stop(pid);
	pid = start_bare("/proc/self/exe", dir, 1, &port);
	bare_rel = measure(pid, port, 0, n, cs, ctx);
	stop(pid);

	printf("sessions: %d idle sessions each\n", n);
	printf("  tapbridge server (authenticated)           %8.0f bytes/session\n", ours);
	printf("  bare libevent + OpenSSL defaults           %8.0f bytes/session\n", bare);
	printf("  bare libevent + SSL_MODE_RELEASE_BUFFERS   %8.0f bytes/session\n", bare_rel);
	printf("  ratio ours / bare: %.3f   target: <= 8192 bytes/session: %s\n", ours / bare,
	       ours <= 8192.0 ? "met" : "NOT met");
	{
		char p[64];

		snprintf(p, sizeof(p), "%s/key.pem", dir);
		unlink(p);
		snprintf(p, sizeof(p), "%s/cert.pem", dir);
		unlink(p);
		rmdir(dir);
	}
	SSL_CTX_free(ctx);
	free(cs);
	return 0;
}
