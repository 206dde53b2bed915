/* fuzz_phone_cmd.c - the phone's command line parser (ph_cmd_parse) on arbitrary text,
 * with a reason buffer whose size the first byte picks. A command that parses is written
 * back as its canonical line (numbers explicit where the words allow) and must parse to
 * the same command; a refusal leaves *out as it was and a NUL-terminated reason within
 * its buffer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "phone.h"

static void check(int ok)
{
	if (!ok)
		abort();
}

static const char *const verb[] = { [PH_CMD_MENU] = "menu", [PH_CMD_SELECT] = "select",
	[PH_CMD_ARM] = "arm", [PH_CMD_BALANCE] = "balance", [PH_CMD_HISTORY] = "history",
	[PH_CMD_LOCK] = "lock", [PH_CMD_WAIT_NOTICE] = "wait-notice", [PH_CMD_SERVE] = "serve",
	[PH_CMD_SLEEP] = "sleep", [PH_CMD_PING] = "ping", [PH_CMD_PORTAL] = "portal",
	[PH_CMD_QUIT] = "quit" };

/* 1 when the last word of s is a decimal 1..86400 (what wait-notice takes as seconds). */
static int ends_in_time(const char *s)
{
	const char *w = strrchr(s, ' ');
	unsigned long v = 0;
	size_t n;

	w = w != NULL ? w + 1 : s;
	n = strlen(w);
	if (n == 0 || n > 10 || strspn(w, "0123456789") != n)
		return 0;
	for (; *w != '\0'; w++)
		v = v * 10u + (unsigned long)(*w - '0');
	return v >= 1 && v <= 86400u;
}

static void canonical(const struct ph_cmd *c, char *out, size_t cap)
{
	static const char *const select_op[] = { "select", "use", "permit" };
	const char *v = c->kind == PH_CMD_SELECT ? select_op[c->op % 3] : verb[c->kind];

	switch (c->kind) {
	case PH_CMD_SELECT: case PH_CMD_ARM: case PH_CMD_HISTORY: case PH_CMD_PING:
		snprintf(out, cap, "%s %lu", v, (unsigned long)c->arg);
		break;
	case PH_CMD_WAIT_NOTICE:
		/* the default time is left out unless the prefix ends in what reads as one:
		 * a 16-word line has no room for it */
		if (c->ms == PH_CMD_WAIT_MS && !ends_in_time(c->text))
			snprintf(out, cap, "%s %s", v, c->text);
		else
			snprintf(out, cap, "%s %s %lu", v, c->text, (unsigned long)(c->ms / 1000u));
		break;
	case PH_CMD_SERVE:
		snprintf(out, cap, "%s %lu %s", v, (unsigned long)(c->ms / 1000u), c->text);
		break;
	case PH_CMD_SLEEP:
		snprintf(out, cap, "%s %lu", v, (unsigned long)c->ms);
		break;
	default:
		snprintf(out, cap, "%s", v);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char line[4096], again[PH_TEXT_MAX + 64];
	char why[64];
	struct ph_cmd c, d, keep;
	size_t whylen;

	if (size < 1 || size > sizeof(line))
		return 0;
	whylen = data[0] % (sizeof(why) + 1);
	memcpy(line, data + 1, size - 1);
	line[size - 1] = '\0';
	memset(&c, 0x5A, sizeof(c));
	keep = c;
	memset(why, 0x7F, sizeof(why));
	if (ph_cmd_parse(line, &c, why, whylen) != 0) {
		check(memcmp(&c, &keep, sizeof(c)) == 0);
		check(whylen == 0 || memchr(why, '\0', whylen) != NULL);
		for (size_t i = whylen; i < sizeof(why); i++)
			check(why[i] == 0x7F);
		return 0;
	}
	check(c.kind > PH_CMD_NONE && c.kind <= PH_CMD_QUIT && verb[c.kind] != NULL);
	check(memchr(c.text, '\0', sizeof(c.text)) != NULL);
	canonical(&c, again, sizeof(again));
	check(ph_cmd_parse(again, &d, NULL, 0) == 0);
	check(d.kind == c.kind && d.arg == c.arg && d.op == c.op && d.ms == c.ms &&
	      strcmp(d.text, c.text) == 0);
	return 0;
}
