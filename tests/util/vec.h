/* vec.h - test helpers: known-answer vectors (JSON files under tests/vectors,
 * copied from shared/vectors) and hex in assertions. */
#ifndef TB_TEST_VEC_H
#define TB_TEST_VEC_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <jansson.h>

/* Loads tests/vectors/<name>; fails the test when missing or unparsable. */
json_t *vec_load(const char *name);

/* Decodes the hex string member `key` of obj into out; returns its length.
 * Fails the test when the member is missing, not hex or larger than cap. */
size_t vec_hex(const json_t *obj, const char *key, uint8_t *out, size_t cap);
/* 1 when obj has a string member key. */
int vec_has(const json_t *obj, const char *key);
const char *vec_str(const json_t *obj, const char *key);

/* Decodes a hex literal in a test; fails the test on bad hex. */
size_t hexbuf(const char *hex, uint8_t *out, size_t cap);

/* Asserts that n bytes at got equal the hex string want, printing both on mismatch. */
#define assert_hex_equal(got, n, want) vec_assert_hex((got), (n), (want), __FILE__, __LINE__)
void vec_assert_hex(const uint8_t *got, size_t n, const char *want, const char *file, int line);

#endif
