/* bytes.h - the one bounded reader and writer every parser and encoder uses.
 * Each get checks, then consumes, then stores: a failed call changes neither
 * the reader/writer nor the output. Lengths are size_t, bytes uint8_t. */
#ifndef TB_BYTES_H
#define TB_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* A borrowed view of n readable bytes at p. */
struct rd {
	const uint8_t *p;
	size_t n;
};

/* A borrowed output buffer: cap bytes at p, len of them written. */
struct wr {
	uint8_t *p;
	size_t cap;
	size_t len;
};

static inline struct rd rd_init(const uint8_t *p, size_t n)
{
	struct rd r = { p, n };
	return r;
}

static inline struct wr wr_init(uint8_t *p, size_t cap)
{
	struct wr w = { p, cap, 0 };
	return w;
}

static inline size_t rd_left(const struct rd *r) { return r->n; }

/* Readers: 0, or TB_E_TRUNC when fewer bytes remain than asked for. */
int rd_u8(struct rd *r, uint8_t *v);
int rd_u16be(struct rd *r, uint16_t *v);
int rd_u24be(struct rd *r, uint32_t *v);
int rd_u32be(struct rd *r, uint32_t *v);
int rd_u64be(struct rd *r, uint64_t *v);
/* Zero-copy: *out points into the reader's buffer, valid while it is. */
int rd_bytes(struct rd *r, size_t n, const uint8_t **out);
int rd_copy(struct rd *r, uint8_t *dst, size_t n);
/* Takes the next n bytes as a reader of their own. */
int rd_sub(struct rd *r, size_t n, struct rd *sub);
int rd_skip(struct rd *r, size_t n);
/* Looks at the next byte without consuming it. */
int rd_peek(const struct rd *r, uint8_t *v);
/* 0 when nothing is left, TB_E_LEFTOVER otherwise. */
int rd_end(const struct rd *r);

/* Writers: 0, or TB_E_NOSPACE when the rest of the buffer is too small. */
int wr_u8(struct wr *w, uint8_t v);
int wr_u16be(struct wr *w, uint16_t v);
int wr_u24be(struct wr *w, uint32_t v);
int wr_u32be(struct wr *w, uint32_t v);
int wr_u64be(struct wr *w, uint64_t v);
int wr_bytes(struct wr *w, const uint8_t *src, size_t n);
int wr_fill(struct wr *w, uint8_t v, size_t n);
/* Hands out n bytes of room to fill in place (for lengths known later). */
int wr_reserve(struct wr *w, size_t n, uint8_t **out);
static inline size_t wr_room(const struct wr *w) { return w->cap - w->len; }

#endif
