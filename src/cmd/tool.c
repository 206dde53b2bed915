/* tool.c - `tapbridge tool`: trace tools for people integrating with real cards. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

struct tool {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *usage;
};

static const struct tool tools[] = {
	{ "scp03", tool_scp03, "scp03 replay < TRACE   recompute an SCP03 session from a host-side trace" },
	{ "apdu", tool_apdu, "apdu decode HEX        show a command APDU's fields" },
	{ "tlv", tool_tlv, "tlv decode HEX         indented dump of BER-TLV data" },
};

int cmd_tool(int argc, char **argv)
{
	if (argc >= 2) {
		for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
			if (strcmp(argv[1], tools[i].name) == 0)
				return tools[i].run(argc - 1, argv + 1);
		}
	}
	fprintf(stderr, "usage: tapbridge tool TOOL ...\n");
	for (size_t i = 0; i < sizeof(tools) / sizeof(tools[0]); i++)
		fprintf(stderr, "  tapbridge tool %s\n", tools[i].usage);
	return 2;
}
