/* cmd.h - the sub-commands of the tapbridge binary. Each takes argc/argv with
 * argv[0] being its own name, and returns the process exit status. */
#ifndef TB_CMD_H
#define TB_CMD_H

int cmd_tool(int argc, char **argv);
int cmd_demo(int argc, char **argv);

int tool_scp03(int argc, char **argv);
int tool_apdu(int argc, char **argv);
int tool_tlv(int argc, char **argv);

#endif
