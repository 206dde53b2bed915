/* args.c - the flags of sub-commands that take `--name VALUE` and `--name` options:
 * one small parser so every sub-command refuses the same mistakes the same way
 * (unknown flag, missing value, a flag given twice, stray words) with exit status 2. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

int args_parse(const char *cmd, int argc, char **argv, const struct arg_opt *opts, size_t n)
{
	for (int i = 1; i < argc; i++) {
		const struct arg_opt *o = NULL;

		for (size_t k = 0; k < n; k++)
			if (strcmp(argv[i], opts[k].name) == 0)
				o = &opts[k];
		if (o == NULL) {
			fprintf(stderr, "tapbridge %s: unknown argument '%s'\n", cmd, argv[i]);
			return 2;
		}
		if (o->flag != NULL) {
			*o->flag = 1;
			continue;
		}
		if (*o->val != NULL) {
			fprintf(stderr, "tapbridge %s: %s given twice\n", cmd, o->name);
			return 2;
		}
		if (i + 1 >= argc) {
			fprintf(stderr, "tapbridge %s: %s needs a value\n", cmd, o->name);
			return 2;
		}
		*o->val = argv[++i];
	}
	return 0;
}

int args_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (s == NULL || s[0] == '\0')
		return -1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 10)
			return -1;
		v = v * 10u + (uint64_t)(s[i] - '0');
	}
	if (v < min || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}
