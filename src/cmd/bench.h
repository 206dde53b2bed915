/* bench.h - the pieces of `tapbridge bench` shared between its files: a clock, child
 * processes of this binary with their output in a log, and the sam half of bench auth. */
#ifndef TB_CMD_BENCH_H
#define TB_CMD_BENCH_H

#include <sys/types.h>

#define BENCH_PATH_MAX 4096

double bench_now(void);
/* Starts argv (argv[0] a path) with stdout and stderr appended to log; -1 on failure. */
pid_t bench_spawn(char *const argv[], const char *log);
/* SIGTERM, then waits. Accepts pid <= 0. */
void bench_stop(pid_t pid);
/* SCP03 mutual authentications per second through a real `self sam` process started
 * in dir (a fresh temporary directory): 0 with *per_s, or 1 after saying why. */
int bench_auth_sam(const char *self, const char *dir, double seconds, double *per_s);

#endif
