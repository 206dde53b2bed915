/* pg_rig.h - tests: a throwaway PostgreSQL cluster through tests/pg_rig.sh, in a folder
 * next to the test binary (<dir of /proc/self/exe>/pg-<name>), on a free loopback port.
 * pg_rig_start() answers 0 (up, URL in url), 77 (cannot run here: the caller skips and
 * says so) or -1. pg_rig_stop() is safe from atexit and signal handlers (fork, exec,
 * waitpid only) and does nothing when nothing was started.
 * Also: pg_rig_work_dir(), the folder next to the test binary for other scratch files. */
#ifndef TB_TEST_PG_RIG_H
#define TB_TEST_PG_RIG_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char pg_rig_script[4096];
static char pg_rig_dir[4200];
static char *pg_rig_argv[6];
static volatile int pg_rig_up;

/* The folder holding the test binary, from /proc/self/exe. */
static inline int pg_rig_work_dir(char *out, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", out, cap - 1);
	char *slash;

	if (n <= 0 || (size_t)n >= cap - 1)
		return -1;
	out[n] = '\0';
	slash = strrchr(out, '/');
	if (slash == NULL)
		return -1;
	*slash = '\0';
	return 0;
}

/* Runs the script with argv set up; its stdout (up to cap-1 bytes) into out. */
static inline int pg_rig_exec(char *out, size_t cap)
{
	int fds[2], st;
	char sink[64];
	size_t got = 0;
	pid_t pid;

	if (pipe(fds) != 0)
		return -1;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execv("/bin/bash", pg_rig_argv);
		_exit(127);
	}
	close(fds[1]);
	for (;;) {
		ssize_t r = out != NULL && got < cap - 1 ? read(fds[0], out + got, cap - 1 - got)
							 : read(fds[0], sink, sizeof(sink));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out != NULL && got < cap - 1)
			got += (size_t)r;
	}
	close(fds[0]);
	if (out != NULL) {
		out[got] = '\0';
		while (got > 0 && (out[got - 1] == '\n' || out[got - 1] == ' '))
			out[--got] = '\0';
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static inline void pg_rig_stop(void)
{
	if (!pg_rig_up)
		return;
	pg_rig_up = 0;
	pg_rig_argv[0] = "bash";
	pg_rig_argv[1] = pg_rig_script;
	pg_rig_argv[2] = "stop";
	pg_rig_argv[3] = pg_rig_dir;
	pg_rig_argv[4] = NULL;
	(void)pg_rig_exec(NULL, 0);
}

/* name: the folder's suffix (one per test binary); baseport: where the search starts. */
static inline int pg_rig_start(const char *name, const char *baseport, char *url, size_t cap)
{
	const char *v = TB_VECTOR_DIR; /* <src>/tests/vectors */
	size_t n = strlen(v);
	char dir[4096];
	int rc;

	if (n <= 8 || strcmp(v + n - 8, "/vectors") != 0 || pg_rig_work_dir(dir, sizeof(dir)) != 0)
		return -1;
	snprintf(pg_rig_script, sizeof(pg_rig_script), "%.*s/pg_rig.sh", (int)(n - 8), v);
	snprintf(pg_rig_dir, sizeof(pg_rig_dir), "%s/pg-%s", dir, name);
	pg_rig_argv[0] = "bash";
	pg_rig_argv[1] = pg_rig_script;
	pg_rig_argv[2] = "start";
	pg_rig_argv[3] = pg_rig_dir;
	pg_rig_argv[4] = (char *)baseport;
	pg_rig_argv[5] = NULL;
	pg_rig_up = 1; /* a half-started cluster is stopped too */
	rc = pg_rig_exec(url, cap);
	if (rc == 77)
		pg_rig_up = 0;
	if (rc != 0 && rc != 77) {
		pg_rig_stop();
		return -1;
	}
	return rc;
}

/* A cmocka group setup's use of the rig: 0 = up (URL in url), 1 = cannot run here, so
 * the caller skips its PostgreSQL tests (said on stdout), -1 = failed. Under CI a
 * PostgreSQL that cannot run is a failure: CI installs it and runs as root, so a skip
 * there would hide a break. */
static inline int pg_rig_group_start(const char *name, const char *baseport, char *url,
				     size_t cap)
{
	int rc = pg_rig_start(name, baseport, url, cap);

	if (rc == 77 && getenv("CI") != NULL) {
		fprintf(stderr, "%s: PostgreSQL cannot run under CI (reason above)\n", name);
		return -1;
	}
	if (rc == 77) {
		printf("%s: PostgreSQL tests SKIPPED: no cluster can run here (reason above: "
		       "needs the postgresql package and root or a user that may run initdb)\n",
		       name);
		return 1;
	}
	if (rc != 0) {
		fprintf(stderr, "%s: PostgreSQL rig failed to start (reason above)\n", name);
		return -1;
	}
	printf("%s: PostgreSQL at %s\n", name, url);
	return 0;
}

#endif
