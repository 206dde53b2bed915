/* bench.c - `tapbridge bench [NAME...] [--seconds S]`: each benchmark measures ours and a
 * reference in the same run on this machine and prints exactly one line
 *   bench NAME ours=X UNIT ref=Y UNIT ratio=R
 * (ratio = ours / ref). Progress and reasons go to stderr; stdout carries only results. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cmd.h"
#include "io/db_io.h"
#include "io/tls.h"
#include "lib/err.h"

#define BENCH_SESSIONS 10000
#define BENCH_PAYERS 64

struct bench_opts {
	const char *self;   /* this binary, for the processes a benchmark starts */
	double seconds;     /* per side */
	int sessions;
};

double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

pid_t bench_spawn(char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

void bench_stop(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static void bench_line(const char *name, double ours, double ref, const char *unit)
{
	printf("bench %s ours=%.0f %s ref=%.0f %s ratio=%.3f\n", name, ours, unit, ref, unit,
	       ref > 0 ? ours / ref : 0.0);
	fflush(stdout);
}

static void rm_rf(const char *dir)
{
	char cmd[BENCH_PATH_MAX + 16];

	if (snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) < (int)sizeof(cmd) && system(cmd) != 0)
		fprintf(stderr, "bench: could not remove %s\n", dir);
}

/* ------------------------------------------------------------- auth --- */

/* Ours: SCP03 handshakes through the sam process. Ref: TLS 1.3 handshakes, same cores. */
static int bench_auth(const struct bench_opts *o)
{
	char dir[] = "/tmp/tb_bench_auth_XXXXXX", why[256];
	struct tls_server *s = NULL;
	struct tls_client *c = NULL;
	uint8_t pin[TLS_FPR_LEN];
	double ours = 0, ref = 0;
	int rc = 1;

	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "bench auth: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	if (bench_auth_sam(o->self, dir, o->seconds, &ours) != 0)
		goto out;
	if (tls_server_open(dir, &s, NULL, why, sizeof(why)) != 0) {
		fprintf(stderr, "bench auth: %s\n", why);
		goto out;
	}
	tls_server_fingerprint(s, pin);
	if (tls_client_new(pin, &c) != 0 || tls_bench_handshakes(s, c, o->seconds, &ref) != 0) {
		fprintf(stderr, "bench auth: the TLS reference failed\n");
		goto out;
	}
	bench_line("auth", ours, ref, "handshakes/s");
	rc = 0;
out:
	tls_client_free(c);
	tls_server_free(s);
	rm_rf(dir);
	return rc;
}

/* ----------------------------------------------------------- ledger --- */

/* DIR/../../tests/pg_rig.sh from the binary (build/<name>/tapbridge), or $TB_PG_RIG. */
static int pg_rig_path(const char *self, char out[BENCH_PATH_MAX])
{
	const char *env = getenv("TB_PG_RIG");
	char *slash;

	if (env != NULL)
		return snprintf(out, BENCH_PATH_MAX, "%s", env) < BENCH_PATH_MAX ? 0 : -1;
	if (snprintf(out, BENCH_PATH_MAX, "%s", self) >= BENCH_PATH_MAX ||
	    (slash = strrchr(out, '/')) == NULL)
		return -1;
	*slash = '\0';
	if (strlen(out) + sizeof("/../../tests/pg_rig.sh") > BENCH_PATH_MAX)
		return -1;
	strcat(out, "/../../tests/pg_rig.sh");
	return access(out, R_OK) == 0 ? 0 : -1;
}

static void bench_ledger_pg(const struct bench_opts *o)
{
	char rig[BENCH_PATH_MAX], dir[64], cmd[2 * BENCH_PATH_MAX], url[512] = "";
	double ours = 0, ref = 0;
	FILE *f;
	int st, rc;

	if (pg_rig_path(o->self, rig) != 0) {
		printf("bench ledger-pg skipped: tests/pg_rig.sh not found (set TB_PG_RIG)\n");
		return;
	}
	snprintf(dir, sizeof(dir), "/tmp/tb_bench_pg_%d", (int)getpid());
	snprintf(cmd, sizeof(cmd), "bash '%s' start '%s' 56432", rig, dir);
	f = popen(cmd, "r");
	if (f == NULL || fgets(url, sizeof(url), f) == NULL)
		url[0] = '\0';
	st = f != NULL ? pclose(f) : -1;
	url[strcspn(url, "\n")] = '\0';
	if (st != 0 || url[0] == '\0') {
		printf("bench ledger-pg skipped: %s\n", WIFEXITED(st) && WEXITSTATUS(st) == 77
			       ? "PostgreSQL cannot run here (pg_rig.sh said why on stderr)"
			       : "pg_rig.sh could not start PostgreSQL");
	} else if ((rc = db_bench_ledger(url, BENCH_PAYERS, o->seconds, &ours, &ref)) != 0) {
		printf("bench ledger-pg skipped: %s (%s)\n", tb_errname(rc), db_open_error());
	} else {
		bench_line("ledger-pg", ours, ref, "payments/s");
	}
	snprintf(cmd, sizeof(cmd), "bash '%s' stop '%s'", rig, dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench ledger-pg: pg_rig.sh stop failed\n");
	fflush(stdout);
}

/* Durable payments with group commit under 64 payers against one per transaction. */
static int bench_ledger(const struct bench_opts *o)
{
	char dir[] = "/tmp/tb_bench_ledger_XXXXXX", url[128];
	double ours = 0, ref = 0;
	int rc;

	if (mkdtemp(dir) == NULL) {
		fprintf(stderr, "bench ledger: mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(url, sizeof(url), "sqlite:%s/ledger.db", dir);
	rc = db_bench_ledger(url, BENCH_PAYERS, o->seconds, &ours, &ref);
	rm_rf(dir);
	if (rc != 0) {
		fprintf(stderr, "bench ledger: %s (%s)\n", tb_errname(rc), db_open_error());
		return 1;
	}
	bench_line("ledger", ours, ref, "payments/s");
	bench_ledger_pg(o);
	return 0;
}

/* --------------------------------------------------------- sessions --- */

struct conn {
	int fd;
	struct ssl_st *ssl;
};

static long rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

static int conn_open(struct tls_client *tc, uint16_t port, struct conn *c)
{
	struct timeval tv = { 10, 0 }; /* a stalled server fails the run instead of hanging it */
	struct sockaddr_in a;
	int one = 1;

	c->ssl = NULL;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		return -1;
	(void)setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void)setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if ((c->ssl = tls_client_ssl(tc)) == NULL)
		return -1;
	return tls_ssl_connect_fd(c->ssl, c->fd);
}

/* One phone protocol frame (u32 length, type, payload); the payload is dropped. */
static int read_frame(struct ssl_st *ssl, uint8_t *type)
{
	uint8_t h[5], p[4096];
	uint32_t n;

	if (tls_ssl_read_n(ssl, h, sizeof(h)) != 0)
		return -1;
	n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	*type = h[4];
	if (n < 1 || n - 1 > sizeof(p))
		return -1;
	return n > 1 ? tls_ssl_read_n(ssl, p, n - 1) : 0;
}

/* Ours: HELLO, answered with MENU and NOTICE (an authenticated idle session). Bare: one
 * byte echoed (its handshake is all the authentication it has). */
static int conn_authenticate(struct conn *c, int ours)
{
	static const uint8_t hello[] = { 0, 0, 0, 15, 0x01, 0, 1, 'S', 'E', 0, 0, 0, 0, 0, 1,
					 3, '1', '.', '0' };
	uint8_t t1 = 0, t2 = 0, b;

	if (!ours)
		return tls_ssl_write_all(c->ssl, (const uint8_t *)"x", 1) == 0 &&
		       tls_ssl_read_n(c->ssl, &b, 1) == 0 ? 0 : -1;
	if (tls_ssl_write_all(c->ssl, hello, sizeof(hello)) != 0 || read_frame(c->ssl, &t1) != 0 ||
	    read_frame(c->ssl, &t2) != 0)
		return -1;
	return t1 == 0x81 && t2 == 0x85 ? 0 : -1;
}

static void conns_close(struct conn *cs, int n)
{
	for (int i = 0; i < n; i++) {
		tls_ssl_free(cs[i].ssl);
		if (cs[i].fd >= 0)
			close(cs[i].fd);
	}
}

/* Opens n sessions to the server pid on port: RSS growth per session in bytes, or < 0. */
static double measure(pid_t pid, uint16_t port, int ours, int n, struct conn *cs,
		      struct tls_client *tc)
{
	long before, after;
	double t0 = bench_now();
	int i;

	sleep_ms(300);
	before = rss_kb(pid);
	for (i = 0; i < n; i++) {
		if (conn_open(tc, port, &cs[i]) != 0 || conn_authenticate(&cs[i], ours) != 0) {
			fprintf(stderr, "bench sessions: connection %d failed\n", i);
			conns_close(cs, i + 1);
			return -1;
		}
	}
	fprintf(stderr, "bench sessions: %d %s sessions opened in %.1f s\n", n,
		ours ? "tapbridge" : "bare", bench_now() - t0);
	sleep_ms(1000);
	after = rss_kb(pid);
	conns_close(cs, n);
	return before < 0 || after < 0 ? -1 : (double)(after - before) * 1024.0 / n;
}

static pid_t start_ours(const struct bench_opts *o, const char *dir, uint16_t *port)
{
	char max[16], line[256], log[BENCH_PATH_MAX];
	char *argv[] = { (char *)o->self, "server", "--state", (char *)dir, "--listen",
			 "127.0.0.1:0", "--http", "off", "--quiet", "--idle", "3600",
			 "--max-sessions", max, NULL };
	int out[2], fd;
	pid_t pid;
	FILE *f;

	snprintf(max, sizeof(max), "%d", o->sessions + 16);
	snprintf(log, sizeof(log), "%s/server.log", dir);
	if (pipe(out) != 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		dup2(out[1], 1);
		if (fd >= 0)
			dup2(fd, 2);
		close(out[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	*port = 0;
	if (pid < 0 || (f = fdopen(out[0], "r")) == NULL) {
		close(out[0]);
		bench_stop(pid);
		return -1;
	}
	while (*port == 0 && fgets(line, sizeof(line), f) != NULL) {
		char *colon = strrchr(line, ':');

		if (strncmp(line, "listening phones ", 17) == 0 && colon != NULL)
			*port = (uint16_t)atoi(colon + 1);
	}
	fclose(f); /* the server's later stdout lines go to a closed pipe: it runs --quiet */
	if (*port == 0) {
		fprintf(stderr, "bench sessions: the server did not start (see %s)\n", log);
		bench_stop(pid);
		return -1;
	}
	return pid;
}

/* The bare loop runs in a fresh exec of this binary, so it inherits none of our heap (a
 * forked copy would reuse our freed, already resident pages and look small). */
static pid_t start_bare(const struct bench_opts *o, const char *dir, int release,
			 uint16_t *port)
{
	char fd[16];
	char *argv[] = { (char *)o->self, "bench", "--bare-server", (char *)dir,
			 release ? "1" : "0", fd, NULL };
	int out[2];
	pid_t pid;

	if (pipe(out) != 0)
		return -1;
	snprintf(fd, sizeof(fd), "%d", out[1]);
	pid = fork();
	if (pid == 0) {
		close(out[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	if (pid < 0 || read(out[0], port, sizeof(*port)) != (ssize_t)sizeof(*port)) {
		close(out[0]);
		bench_stop(pid);
		return -1;
	}
	close(out[0]);
	return pid;
}

static void raise_nofile(int n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n + 200;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_cur < want)
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
		fprintf(stderr, "bench sessions: only %ld file descriptors (want %ld)\n",
			(long)rl.rlim_cur, (long)want);
}

/* Memory per idle authenticated session against a bare libevent + OpenSSL loop. */
static int bench_sessions(const struct bench_opts *o)
{
	char dir[] = "/tmp/tb_bench_sess_XXXXXX", why[256];
	struct tls_server *s = NULL;
	struct tls_client *tc = NULL;
	struct conn *cs = calloc((size_t)o->sessions, sizeof(*cs));
	uint8_t pin[TLS_FPR_LEN];
	double ours = -1, bare = -1, bare_rel = -1;
	uint16_t port = 0;
	pid_t pid;
	int rc = 1;

	raise_nofile(o->sessions);
	if (cs == NULL || mkdtemp(dir) == NULL) {
		free(cs);
		return 1;
	}
	if ((pid = start_ours(o, dir, &port)) < 0)
		goto out;
	/* The server made its certificate; the bare loop serves the same one. */
	if (tls_server_open(dir, &s, NULL, why, sizeof(why)) != 0) {
		fprintf(stderr, "bench sessions: %s\n", why);
		bench_stop(pid);
		goto out;
	}
	tls_server_fingerprint(s, pin);
	if (tls_client_new(pin, &tc) == 0)
		ours = measure(pid, port, 1, o->sessions, cs, tc);
	bench_stop(pid);
	if (ours >= 0 && (pid = start_bare(o, dir, 0, &port)) > 0) {
		bare = measure(pid, port, 0, o->sessions, cs, tc);
		bench_stop(pid);
	}
	/* For context on stderr: the bare loop tuned the way our contexts are. */
	if (bare > 0 && (pid = start_bare(o, dir, 1, &port)) > 0) {
		bare_rel = measure(pid, port, 0, o->sessions, cs, tc);
		bench_stop(pid);
	}
	if (ours < 0 || bare <= 0) {
		fprintf(stderr, "bench sessions: measurement failed\n");
		goto out;
	}
	fprintf(stderr, "bench sessions: bare loop with SSL_MODE_RELEASE_BUFFERS: %.0f "
		"bytes/session; target ours <= 8192: %s\n", bare_rel,
		ours <= 8192.0 ? "met" : "NOT met");
	bench_line("sessions", ours, bare, "bytes/session");
	rc = 0;
out:
	tls_client_free(tc);
	tls_server_free(s);
	rm_rf(dir);
	free(cs);
	return rc;
}

/* ------------------------------------------------------------- taps --- */

/* tools/bench-taps.sh from the binary's real path (build/<name>/tapbridge: ../../tools),
 * else under the current directory: 0, or -1 after saying where it looked. */
static int taps_script(const char *self, char out[BENCH_PATH_MAX])
{
	static const char rel[] = "tools/bench-taps.sh";
	char real[PATH_MAX], cwd[PATH_MAX], tried[2][BENCH_PATH_MAX];
	char *slash;

	if (realpath(self, real) == NULL)
		snprintf(real, sizeof(real), "%s", self);
	if ((slash = strrchr(real, '/')) != NULL)
		*slash = '\0';
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		snprintf(cwd, sizeof(cwd), ".");
	if (snprintf(tried[0], BENCH_PATH_MAX, "%s/../../%s", real, rel) >= BENCH_PATH_MAX)
		tried[0][0] = '\0';
	if (snprintf(tried[1], BENCH_PATH_MAX, "%s/%s", cwd, rel) >= BENCH_PATH_MAX)
		tried[1][0] = '\0';
	for (int i = 0; i < 2; i++) {
		if (tried[i][0] != '\0' && access(tried[i], R_OK) == 0) {
			memcpy(out, tried[i], BENCH_PATH_MAX);
			return 0;
		}
	}
	fprintf(stderr, "bench taps: %s not found: looked beside the binary at %s and under "
		"the current directory at %s (run from the source tree)\n", rel, tried[0],
		tried[1]);
	return -1;
}

/* The tap flows through the gateway at 25 ms each way (issue 6): a process rig, so the
 * script of `make demo`'s rig runs it (tools/bench-taps.sh prints the bench lines). */
static int bench_taps(const struct bench_opts *o)
{
	char script[BENCH_PATH_MAX];
	pid_t pid;
	int st = 0;

	if (taps_script(o->self, script) != 0)
		return 1;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* An ignored signal stays ignored across exec, and bash cannot undo it. */
		signal(SIGPIPE, SIG_DFL);
		execlp("bash", "bash", script, o->self, (char *)NULL);
		fprintf(stderr, "bench taps: cannot run bash: %s\n", strerror(errno));
		_exit(127);
	}
	if (pid < 0) {
		fprintf(stderr, "bench taps: fork: %s\n", strerror(errno));
		return 1;
	}
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : 1;
}

/* ------------------------------------------------------------ main --- */

struct bench_def {
	const char *name;
	int (*run)(const struct bench_opts *o);
	int named_only; /* not in the default set: runs only when named */
};

static const struct bench_def benches[] = {
	{ "auth", bench_auth, 0 },
	{ "ledger", bench_ledger, 0 },
	{ "sessions", bench_sessions, 0 },
	{ "taps", bench_taps, 1 },
};

#define BENCH_N (sizeof(benches) / sizeof(benches[0]))

static void bench_usage(FILE *f)
{
	fprintf(f, "usage: tapbridge bench [auth|ledger|sessions|taps ...] [--seconds S] "
		"[--sessions N]\n"
		"  prints one line per benchmark: bench NAME ours=X UNIT ref=Y UNIT ratio=R\n"
		"  (no names: auth, ledger, sessions; taps, the flows through a 25 ms gateway,\n"
		"  runs tools/bench-taps.sh from the source tree: TB_BENCH_TAPS taps per flow)\n"
		"  --seconds S   time for each side of auth and ledger (default 3)\n"
		"  --sessions N  idle sessions held by each server in sessions (default %d)\n",
		BENCH_SESSIONS);
}

static int bench_parse(int argc, char **argv, struct bench_opts *o, int want[BENCH_N])
{
	int any = 0;

	for (int i = 1; i < argc; i++) {
		size_t k;
		char *end = NULL;

		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			o->seconds = strtod(argv[++i], &end);
			if (*end != '\0' || !(o->seconds > 0 && o->seconds <= 3600))
				return -1;
			continue;
		}
		if (strcmp(argv[i], "--sessions") == 0 && i + 1 < argc) {
			uint32_t v;

			if (args_u32(argv[++i], 1, 100000, &v) != 0)
				return -1;
			o->sessions = (int)v;
			continue;
		}
		for (k = 0; k < BENCH_N && strcmp(argv[i], benches[k].name) != 0; k++)
			;
		if (k == BENCH_N)
			return -1;
		want[k] = 1;
		any = 1;
	}
	for (size_t k = 0; !any && k < BENCH_N; k++)
		want[k] = !benches[k].named_only;
	return 0;
}

int cmd_bench(int argc, char **argv)
{
	struct bench_opts o = { "/proc/self/exe", 3.0, BENCH_SESSIONS };
	char self[PATH_MAX];
	int want[BENCH_N] = { 0 }, fails = 0;
	ssize_t n;

	if (argc == 5 && strcmp(argv[1], "--bare-server") == 0) { /* start_bare()'s child */
		signal(SIGPIPE, SIG_IGN);
		return tls_bench_bare_serve(argv[2], atoi(argv[3]), atoi(argv[4])) == 0 ? 0 : 1;
	}
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		bench_usage(stdout);
		return 0;
	}
	if (bench_parse(argc, argv, &o, want) != 0) {
		bench_usage(stderr);
		return 2;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		fprintf(stderr, "tapbridge bench: cannot find this binary: %s\n", strerror(errno));
		return 1;
	}
	self[n] = '\0';
	o.self = self;
	signal(SIGPIPE, SIG_IGN);
	for (size_t k = 0; k < BENCH_N; k++) {
		if (want[k] && benches[k].run(&o) != 0) {
			fprintf(stderr, "tapbridge bench: %s failed\n", benches[k].name);
			fails++;
		}
	}
	return fails == 0 ? 0 : 1;
}
