/* pcsc_rig.h - the PC/SC tests' handle on tests/pcscd_rig.sh (pcscd with the vpcd
 * driver in network namespace tb_pcsc). Header-only; rig_run() uses nothing but
 * fork/exec/waitpid, so signal handlers may call it to stop the rig. */
#ifndef TB_TEST_PCSC_RIG_H
#define TB_TEST_PCSC_RIG_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char rig_path[4096];
static char *rig_argv[4] = { "bash", rig_path, NULL, NULL };
static volatile int rig_started;

/* Runs `pcscd_rig.sh CMD`; its exit status (77: cannot run here, 3: refused), or -1. */
static int rig_run(char *cmd)
{
	pid_t pid;
	int st;

	rig_argv[2] = cmd;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv("/bin/bash", rig_argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void rig_stop(void)
{
	if (rig_started) {
		rig_started = 0;
		(void)rig_run("stop");
	}
}

/* The rig lives beside the vectors: TB_VECTOR_DIR is <src>/tests/vectors. */
static void rig_path_init(const char *who)
{
	const char *v = TB_VECTOR_DIR;
	size_t n = strlen(v);

	if (n <= 8 || strcmp(v + n - 8, "/vectors") != 0) {
		fprintf(stderr, "%s: TB_VECTOR_DIR %s does not end in /vectors\n", who, v);
		exit(1);
	}
	snprintf(rig_path, sizeof(rig_path), "%.*s/pcscd_rig.sh", (int)(n - 8), v);
}

#endif
