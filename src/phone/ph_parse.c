/* ph_parse.c - the phone's command line: words, the verb table with each verb's usage,
 * and each verb's arguments into a struct ph_cmd (ph_cmd_parse). What stays true: a line
 * parses whole or not at all (*out untouched), and a line it refuses gets its reason
 * in why. */
#include <string.h>

#include "err.h"
#include "phone.h"

#define SECONDS_MAX 86400u
#define HISTORY_DEFAULT 10u
#define PING_COUNT_MAX 10000u

struct words {
	const char *w[16];
	size_t len[16];
	size_t n;
};

static int split(const char *s, struct words *out)
{
	out->n = 0;
	while (*s != '\0') {
		size_t k = 0;

		while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
			s++;
		if (*s == '\0')
			break;
		while (s[k] != '\0' && s[k] != ' ' && s[k] != '\t' && s[k] != '\r' && s[k] != '\n')
			k++;
		if (out->n == 16)
			return TB_E_INVAL;
		out->w[out->n] = s;
		out->len[out->n++] = k;
		s += k;
	}
	return 0;
}

static int word_is(const struct words *w, size_t i, const char *s)
{
	return i < w->n && w->len[i] == strlen(s) && strncmp(w->w[i], s, w->len[i]) == 0;
}

/* A decimal in min..max: 0, or TB_E_INVAL. */
static int word_u32(const struct words *w, size_t i, uint32_t min, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;

	if (i >= w->n || w->len[i] == 0 || w->len[i] > 10)
		return TB_E_INVAL;
	for (size_t k = 0; k < w->len[i]; k++) {
		char c = w->w[i][k];

		if (c < '0' || c > '9')
			return TB_E_INVAL;
		v = v * 10u + (uint64_t)(c - '0');
	}
	if (v < min || v > max)
		return TB_E_INVAL;
	*out = (uint32_t)v;
	return 0;
}

/* Words from..to-1 joined by single spaces into c->text. */
static int join(const struct words *w, size_t from, size_t to, struct ph_cmd *c)
{
	size_t n = 0;

	for (size_t i = from; i < to; i++) {
		if (n + (i > from) + w->len[i] + 1 > sizeof(c->text))
			return TB_E_INVAL;
		if (i > from)
			c->text[n++] = ' ';
		memcpy(c->text + n, w->w[i], w->len[i]);
		n += w->len[i];
	}
	c->text[n] = '\0';
	return 0;
}

static void why_set(char *why, size_t cap, const char *a, const char *b)
{
	size_t n = 0;

	if (why == NULL || cap == 0)
		return;
	for (const char *s = a; s != NULL && *s != '\0' && n + 1 < cap; s++)
		why[n++] = *s;
	for (const char *s = b; s != NULL && *s != '\0' && n + 1 < cap; s++)
		why[n++] = *s;
	why[n] = '\0';
}

struct verb {
	const char *name;
	enum ph_cmd_kind kind;
	uint8_t op;
	const char *usage;
};

static const struct verb verbs[] = {
	{ "menu", PH_CMD_MENU, 0, "menu" },
	{ "use", PH_CMD_SELECT, 1, "use SERVICE" },
	{ "permit", PH_CMD_SELECT, 2, "permit SERVICE" },
	{ "topup", PH_CMD_SELECT, 0, "topup SERVICE" },
	{ "select", PH_CMD_SELECT, 0, "select SERVICE" },
	{ "arm", PH_CMD_ARM, 0, "arm SERVICE" },
	{ "balance", PH_CMD_BALANCE, 0, "balance" },
	{ "history", PH_CMD_HISTORY, 0, "history [COUNT 1..32]" },
	{ "lock", PH_CMD_LOCK, 0, "lock" },
	{ "wait-notice", PH_CMD_WAIT_NOTICE, 0, "wait-notice [TEXT-PREFIX] [SECONDS]" },
	{ "serve", PH_CMD_SERVE, 0, "serve SECONDS [TEXT-PREFIX]" },
	{ "sleep", PH_CMD_SLEEP, 0, "sleep MS" },
	{ "ping", PH_CMD_PING, 0, "ping [COUNT 1..10000]" },
	{ "portal", PH_CMD_PORTAL, 0, "portal" },
	{ "quit", PH_CMD_QUIT, 0, "quit" },
};

static int parse_args(const struct verb *v, const struct words *w, struct ph_cmd *c)
{
	uint32_t x = 0;

	switch (v->kind) {
	case PH_CMD_SELECT:
	case PH_CMD_ARM:
		c->op = v->op;
		return w->n == 2 ? word_u32(w, 1, 1, UINT32_MAX, &c->arg) : TB_E_INVAL;
	case PH_CMD_HISTORY:
		c->arg = HISTORY_DEFAULT;
		if (w->n == 1)
			return 0;
		return w->n == 2 ? word_u32(w, 1, 1, PH_HISTORY_MAX, &c->arg) : TB_E_INVAL;
	case PH_CMD_WAIT_NOTICE: {
		size_t end = w->n;

		c->ms = PH_CMD_WAIT_MS;
		/* A last word that is a number is the time; the words before it the prefix. */
		if (w->n >= 2 && word_u32(w, w->n - 1, 1, SECONDS_MAX, &x) == 0) {
			c->ms = x * 1000u;
			end--;
		}
		return join(w, 1, end, c);
	}
	case PH_CMD_SERVE:
		if (w->n < 2 || word_u32(w, 1, 0, SECONDS_MAX, &x) != 0)
			return TB_E_INVAL;
		c->ms = x * 1000u;
		return join(w, 2, w->n, c);
	case PH_CMD_SLEEP:
		if (w->n != 2 || word_u32(w, 1, 0, SECONDS_MAX * 1000u, &c->ms) != 0)
			return TB_E_INVAL;
		return 0;
	case PH_CMD_PING:
		c->arg = 1;
		if (w->n == 1)
			return 0;
		return w->n == 2 ? word_u32(w, 1, 1, PING_COUNT_MAX, &c->arg) : TB_E_INVAL;
	default:
		return w->n == 1 ? 0 : TB_E_INVAL;
	}
}

int ph_cmd_parse(const char *line, struct ph_cmd *out, char *why, size_t whylen)
{
	struct words w;
	struct ph_cmd c;

	if (line == NULL || out == NULL)
		return TB_E_INVAL;
	memset(&c, 0, sizeof(c));
	if (split(line, &w) != 0 || w.n == 0) {
		why_set(why, whylen, w.n == 0 ? "empty command" : "too many words", NULL);
		return TB_E_INVAL;
	}
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (!word_is(&w, 0, verbs[i].name))
			continue;
		c.kind = verbs[i].kind;
		if (parse_args(&verbs[i], &w, &c) != 0) {
			why_set(why, whylen, "usage: ", verbs[i].usage);
			return TB_E_INVAL;
		}
		*out = c;
		return 0;
	}
	why_set(why, whylen, "unknown command (menu, use, permit, topup, select, arm, balance, "
			     "history, lock, portal, wait-notice, serve, sleep, ping, quit)", NULL);
	return TB_E_INVAL;
}
