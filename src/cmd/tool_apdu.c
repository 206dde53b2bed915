/* tool_apdu.c - placeholder until the apdu tool lands; says so and fails. */
#include <stdio.h>

#include "cmd.h"

int tool_apdu(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tapbridge tool apdu: not built yet\n");
	return 2;
}
