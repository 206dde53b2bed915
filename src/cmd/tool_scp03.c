/* tool_scp03.c - placeholder until the scp03 tool lands; says so and fails. */
#include <stdio.h>

#include "cmd.h"

int tool_scp03(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tapbridge tool scp03: not built yet\n");
	return 2;
}
