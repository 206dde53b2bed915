/* demo.c - placeholder until the demo lands. */
#include <stdio.h>

#include "cmd.h"

int cmd_demo(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "tapbridge demo: not built yet\n");
	return 2;
}
