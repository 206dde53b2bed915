/* hex.h - hex text <-> bytes for tools, traces and tests.
 * Decoding accepts upper or lower case and ignores spaces, tabs and colons
 * between byte pairs; anything else is TB_E_HEX. */
#ifndef TB_HEX_H
#define TB_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Decodes n characters at s into out (capacity cap); *outlen gets the count. */
int hex_decode(const char *s, size_t n, uint8_t *out, size_t cap, size_t *outlen);

/* Marks a buffer as secret: hex_encode refuses it (TB_E_SECRET), so keys and
 * personal data cannot end up in a log line by accident. */
enum hex_kind { HEX_PUBLIC = 0, HEX_SECRET = 1 };

/* Writes 2n uppercase hex digits and a NUL into out (capacity cap). */
int hex_encode(const uint8_t *p, size_t n, enum hex_kind kind, char *out, size_t cap);

#endif
