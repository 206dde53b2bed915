/* vec.c - vector loading and hex assertions for the cmocka tests. */
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "hex.h"
#include "vec.h"

json_t *vec_load(const char *name)
{
	char path[1024];
	json_error_t jerr;
	json_t *root;

	snprintf(path, sizeof(path), "%s/%s", TB_VECTOR_DIR, name);
	root = json_load_file(path, 0, &jerr);
	if (root == NULL)
		fail_msg("cannot load %s: %s (line %d)", path, jerr.text, jerr.line);
	return root;
}

int vec_has(const json_t *obj, const char *key)
{
	return json_is_string(json_object_get(obj, key));
}

const char *vec_str(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_string(v))
		fail_msg("vector member %s missing", key);
	return json_string_value(v);
}

size_t hexbuf(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int rc = hex_decode(hex, strlen(hex), out, cap, &n);

	if (rc != 0)
		fail_msg("bad hex '%s': %s", hex, tb_strerror(rc));
	return n;
}

size_t vec_hex(const json_t *obj, const char *key, uint8_t *out, size_t cap)
{
	return hexbuf(vec_str(obj, key), out, cap);
}

void vec_assert_hex(const uint8_t *got, size_t n, const char *want, const char *file, int line)
{
	static uint8_t buf[70000];
	static char gothex[140001];
	size_t wn = hexbuf(want, buf, sizeof(buf));

	if (wn == n && (n == 0 || memcmp(buf, got, n) == 0)) /* test code: not a secret compare */
		return;
	if (hex_encode(got, n < 70000 ? n : 70000, HEX_PUBLIC, gothex, sizeof(gothex)) != 0)
		gothex[0] = '\0';
	fail_msg("%s:%d: bytes differ\n  got  %s (%zu)\n  want %s (%zu)", file, line, gothex, n, want, wn);
}
