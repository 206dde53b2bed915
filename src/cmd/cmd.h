/* cmd.h - the sub-commands of the tapbridge binary. Each takes argc/argv with
 * argv[0] being its own name, and returns the process exit status. */
#ifndef TB_CMD_H
#define TB_CMD_H

#include <stddef.h>
#include <stdint.h>

int cmd_tool(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_se(int argc, char **argv);
int cmd_admin(int argc, char **argv);
int cmd_server(int argc, char **argv);
int cmd_sam(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_gateway(int argc, char **argv);
int cmd_reader(int argc, char **argv);
int cmd_phone(int argc, char **argv);

int tool_scp03(int argc, char **argv);
int tool_apdu(int argc, char **argv);
int tool_tlv(int argc, char **argv);

/* One option of a sub-command: `--name VALUE` (val) or a bare `--name` (flag). */
struct arg_opt {
	const char *name;
	const char **val; /* NULL until given */
	int *flag;        /* set to 1 when given */
};

/* Parses argv[1..argc-1] against opts. 0, or 2 after printing why on stderr
 * (unknown argument, missing value, an option given twice). */
int args_parse(const char *cmd, int argc, char **argv, const struct arg_opt *opts, size_t n);
/* Locks an open se image file for this process (fcntl write lock): 0, or TB_E_IO
 * when another process (a running se, another admin) holds it. */
int image_lock(int fd);
/* A decimal number in min..max into *out: 0, or -1 (*out untouched). */
int args_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);

#endif
