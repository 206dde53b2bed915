/* tool_tlv.c - placeholder until the tlv tool lands; says so and fails. */
#include <stdio.h>

#include "cmd.h"

int tool_tlv(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tapbridge tool tlv: not built yet\n");
	return 2;
}
