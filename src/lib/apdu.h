/* apdu.h - ISO/IEC 7816-4 command and response APDUs.
 * Parsing yields a struct of pointers into the caller's buffer (no copies);
 * encoding writes through a struct wr. Cases 1-4, short and extended form. */
#ifndef TB_APDU_H
#define TB_APDU_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

#define APDU_MAX_NC_SHORT 255u
#define APDU_MAX_NE_SHORT 256u
#define APDU_MAX_NC_EXT 65535u
#define APDU_MAX_NE_EXT 65536u
/* Largest encoded command: 4 header + 3 Lc + 65535 data + 2 Le. */
#define APDU_MAX_CMD (4u + 3u + 65535u + 2u)

enum apdu_case {
	APDU_CASE_1 = 1, /* no data, no Le */
	APDU_CASE_2 = 2, /* Le only */
	APDU_CASE_3 = 3, /* data only */
	APDU_CASE_4 = 4, /* data and Le */
};

struct apdu {
	uint8_t cla, ins, p1, p2;
	const uint8_t *data; /* borrowed; NULL when nc == 0 */
	size_t nc;           /* Nc: number of data bytes (Lc) */
	size_t ne;           /* Ne: bytes expected; 0 = no Le field; Le 00 short = 256,
	                        Le 0000 extended = 65536 */
	int extended;        /* 1 when the length fields use (or must use) extended form */
};

/* The case a command is, from nc and ne. */
enum apdu_case apdu_case_of(const struct apdu *a);

/* Parses one whole command APDU. The buffer must hold exactly one APDU:
 * TB_E_APDU_SHORT (under 4 bytes), TB_E_APDU_LC (Lc and data disagree),
 * TB_E_APDU_LE, TB_E_APDU_FORM (other length-field errors). *out is set
 * only on success and borrows buf. */
int apdu_parse(const uint8_t *buf, size_t n, struct apdu *out);

/* apdu_parse, and on failure *where (when not NULL) gets the byte offset the
 * problem was found at, for tools: n for TB_E_APDU_SHORT; 4 (the start of the
 * Lc/Le field) for TB_E_APDU_LC and TB_E_APDU_FORM; the offset of the stray
 * byte for TB_E_APDU_LE. Decoding follows ISO 7816-4 5.1: after the header,
 * one byte is a short Le (case 2S, 00 = 256); a non-zero byte 4 followed by
 * more is a short Lc; 00 followed by two or more bytes is the extended form
 * (exactly 00 HH LL = case 2E, 0000 = 65536; else Lc HH LL, 1..65535). So a
 * cut case 3/4 APDU may still parse, as a different APDU (e.g. case 2S). */
int apdu_parse_at(const uint8_t *buf, size_t n, struct apdu *out, size_t *where);

/* Encodes a command. Short form unless a->extended is set or nc > 255 or
 * ne > 256; TB_E_INVAL when nc or ne exceed the extended limits. */
int apdu_encode(const struct apdu *a, struct wr *w);

/* A response: data (borrowed) then SW1 SW2. */
struct apdu_resp {
	const uint8_t *data;
	size_t n;
	uint16_t sw;
};

/* TB_E_APDU_RESP when fewer than 2 bytes. */
int apdu_resp_parse(const uint8_t *buf, size_t n, struct apdu_resp *out);
int apdu_resp_encode(const uint8_t *data, size_t n, uint16_t sw, struct wr *w);

#endif
