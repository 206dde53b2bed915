/* tool_tlv.c - `tapbridge tool tlv decode [--strict] HEX...`: an indented dump of
 * BER-TLV data, one element per line, two spaces per level. The line format is
 * stable (tests/check_tool_tlv.sh checks it); the error line goes to stderr. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "lib/err.h"
#include "lib/hex.h"
#include "lib/tlv.h"

/* Enough for any APDU response, extended ones included. */
#define TOOL_TLV_MAX_INPUT 65536

static const char *plural(size_t n)
{
	return n == 1 ? "" : "s";
}

static bool all_printable(const struct rd *v)
{
	for (size_t i = 0; i < v->n; i++) {
		if (v->p[i] < 0x20 || v->p[i] > 0x7E)
			return false;
	}
	return v->n > 0;
}

/* "<indent>TAG (constructed, N bytes)" or "<indent>TAG (N bytes) HEX ["ASCII"]". */
static int print_element(void *ctx, const struct tlv *t, unsigned depth, size_t off)
{
	size_t ts = tlv_tag_size(t->tag);

	(void)ctx;
	(void)off;
	printf("%*s%0*X", (int)(2 * depth), "", (int)(2 * ts), (unsigned)t->tag);
	if (t->constructed) {
		printf(" (constructed, %zu byte%s)\n", t->val.n, plural(t->val.n));
		return 0;
	}
	printf(" (%zu byte%s)", t->val.n, plural(t->val.n));
	if (t->val.n > 0)
		putchar(' ');
	for (size_t i = 0; i < t->val.n; i++)
		printf("%02X", t->val.p[i]);
	if (all_printable(&t->val))
		printf(" \"%.*s\"", (int)t->val.n, (const char *)t->val.p);
	putchar('\n');
	return 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: tapbridge tool tlv decode [--strict] HEX...\n"
			"  --strict  refuse non-minimal lengths (DER-style)\n");
	return 2;
}

/* Joins the hex arguments into buf; prints the error line itself. */
static int read_hex_args(int argc, char **argv, uint8_t *buf, size_t cap, size_t *n)
{
	size_t len = 0;

	for (int i = 0; i < argc; i++) {
		size_t got = 0;
		int rc = hex_decode(argv[i], strlen(argv[i]), buf + len, cap - len, &got);

		if (rc == TB_E_NOSPACE) {
			fprintf(stderr, "error: input longer than %d bytes\n", TOOL_TLV_MAX_INPUT);
			return rc;
		}
		if (rc != 0) {
			fprintf(stderr, "error: %s\n", tb_strerror(rc));
			return rc;
		}
		len += got;
	}
	*n = len;
	return 0;
}

int tool_tlv(int argc, char **argv)
{
	static uint8_t buf[TOOL_TLV_MAX_INPUT];
	unsigned flags = TLV_BER;
	size_t n = 0, err_off = 0;
	int first = 2, rc;

	if (argc < 3 || strcmp(argv[1], "decode") != 0)
		return usage();
	if (strcmp(argv[2], "--strict") == 0) {
		flags = TLV_STRICT;
		first = 3;
	}
	if (first >= argc || argv[first][0] == '-')
		return usage();
	if (read_hex_args(argc - first, argv + first, buf, sizeof(buf), &n) != 0)
		return 1;
	rc = tlv_walk_ex(buf, n, TLV_MAX_DEPTH, flags, print_element, NULL, &err_off);
	fflush(stdout);
	if (rc != 0) {
		fprintf(stderr, "error: %s at offset %zu\n", tb_strerror(rc), err_off);
		return 1;
	}
	return 0;
}
