/* frame.h - length-prefixed frames for byte-stream links (phone <-> se over the
 * IC_I/F link, phone <-> server session). A decoder engine with no I/O and no
 * heap: the caller owns the buffer, pushes bytes as they arrive and takes frames.
 *
 * Wire format, one frame:
 *
 *   offset 0      4      5                    4+N
 *          +------+------+--------------------+
 *          |  N   | type | payload (N-1 bytes) |
 *          +------+------+--------------------+
 *   N: 4 bytes big-endian, counts the type byte and the payload, so N >= 1.
 *
 * All sizes below ("max", the per-type table) are limits on N, the value of the
 * length field: a frame with an empty payload has N = 1.
 */
#ifndef TB_FRAME_H
#define TB_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

#define FRAME_HDR_LEN 5u        /* length field + type byte */
#define FRAME_TYPES 256u        /* entries in a per-type table */
#define FRAME_MAX_N 0xFFFFFFFFu /* the largest N the length field can carry */

/* What the decoder wants next (frame_rd_state); failures are negative TB_E_*. */
enum frame_state {
	FRAME_NEED_MORE = 0, /* push more bytes */
	FRAME_READY = 1,     /* a whole frame is in: take it before pushing more */
};

/* Decoder state: at most 64 bytes on LP64 (a test checks). Fields are private to frame.c. */
struct frame_rd {
	uint8_t *buf;                /* caller-owned, holds the payload being received */
	size_t cap;                  /* bytes at buf */
	size_t max;                  /* largest N accepted, max - 1 <= cap */
	const uint32_t *max_by_type; /* NULL, or FRAME_TYPES limits on N (0 = type refused) */
	size_t have;                 /* bytes of the current frame consumed, header included */
	uint32_t n;                  /* N of the current frame, once 4 bytes are in */
	uint8_t lenbuf[4];
	uint8_t type;
	int err;                     /* sticky: 0 or the first TB_E_* seen */
};

/* Prepares a decoder over buf (cap bytes, borrowed for the decoder's life).
 * max is the largest N accepted (so payloads up to max - 1 bytes; needs
 * 1 <= max and max - 1 <= cap). max_by_type, when not NULL, must have
 * FRAME_TYPES entries (borrowed): entry t is the largest N for type t, 0 refuses
 * the type (TB_E_FRAME_TYPE); the overall max still applies. TB_E_INVAL on bad
 * arguments, and then *f is not touched. */
int frame_rd_init(struct frame_rd *f, uint8_t *buf, size_t cap, size_t max,
		  const uint32_t *max_by_type);

/* Changes the overall limit for frames whose length field is not complete yet
 * (e.g. raise it after authentication). TB_E_INVAL when max is 0 or max - 1 > cap. */
int frame_rd_set_max(struct frame_rd *f, size_t max);

/* Feeds up to n bytes; returns how many were consumed. Stops at the end of a
 * frame (the rest waits until the frame is taken), consumes nothing while a frame
 * is ready or after a failure. Checks as the bytes arrive, before any payload byte
 * is stored: N = 0 -> TB_E_FRAME_EMPTY, N > max -> TB_E_FRAME_OVERSIZE (on the 4th
 * length byte); refused type -> TB_E_FRAME_TYPE, N above the type's limit ->
 * TB_E_FRAME_OVERSIZE (on the type byte). The byte that shows a failure counts as
 * consumed. Failures are sticky: only frame_rd_init starts over. p may be NULL
 * when n == 0; NULL with n > 0 fails with TB_E_INVAL. */
size_t frame_rd_push(struct frame_rd *f, const uint8_t *p, size_t n);

/* FRAME_NEED_MORE, FRAME_READY, or the sticky negative TB_E_*. */
int frame_rd_state(const struct frame_rd *f);

/* Takes the ready frame: *type, *payload (borrowed from the decoder's buffer,
 * valid until the next push; NULL when *n == 0) and *n = N - 1. The decoder then
 * waits for the next frame. TB_E_TRUNC when no whole frame is in yet, the sticky
 * error after a failure; outputs untouched on error. */
int frame_rd_take(struct frame_rd *f, uint8_t *type, const uint8_t **payload, size_t *n);

/* Writes one frame (header and payload) through w. TB_E_FRAME_OVERSIZE when
 * N = n + 1 exceeds max (or FRAME_MAX_N), TB_E_INVAL for a NULL payload with n > 0,
 * TB_E_NOSPACE when the frame does not fit; w is untouched on error. */
int frame_write(struct wr *w, uint8_t type, const uint8_t *payload, size_t n, size_t max);

#endif
