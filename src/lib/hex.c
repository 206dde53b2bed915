/* hex.c - hex text <-> bytes. Output is untouched on error. */
#include "err.h"
#include "hex.h"

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int is_sep(char c)
{
	return c == ' ' || c == '\t' || c == ':';
}

int hex_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	size_t count = 0;
	int hi = -1;

	/* First pass validates and counts, so a bad string writes nothing. */
	for (size_t i = 0; i < n; i++) {
		int v = nibble(s[i]);
		if (v < 0) {
			if (is_sep(s[i]) && hi < 0)
				continue;
			return TB_E_HEX;
		}
		if (hi < 0) {
			hi = v;
		} else {
			count++;
			hi = -1;
		}
	}
	if (hi >= 0)
		return TB_E_HEX;
	if (count > cap)
		return TB_E_NOSPACE;
	count = 0;
	for (size_t i = 0; i < n; i++) {
		int v = nibble(s[i]);
		if (v < 0)
			continue;
		if (hi < 0) {
			hi = v;
		} else {
			out[count++] = (uint8_t)((hi << 4) | v);
			hi = -1;
		}
	}
	*outlen = count;
	return 0;
}

int hex_encode(const uint8_t *p, size_t n, enum hex_kind kind, char *out, size_t cap)
{
	static const char digits[] = "0123456789ABCDEF";

	if (kind == HEX_SECRET)
		return TB_E_SECRET;
	if (cap == 0 || n > (cap - 1) / 2)
		return TB_E_NOSPACE;
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 0x0F];
	}
	out[2 * n] = '\0';
	return 0;
}
