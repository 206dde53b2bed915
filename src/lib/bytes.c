/* bytes.c - bounded reads and writes. A failed call leaves everything as it was. */
#include <string.h>

#include "bytes.h"
#include "err.h"

int rd_bytes(struct rd *r, size_t n, const uint8_t **out)
{
	if (n > r->n)
		return TB_E_TRUNC;
	*out = r->p;
	if (n == 0)
		return 0; /* p may be NULL for an empty view: no pointer arithmetic on it */
	r->p += n;
	r->n -= n;
	return 0;
}

static int rd_be(struct rd *r, size_t n, uint64_t *v)
{
	const uint8_t *p;
	uint64_t x = 0;

	if (rd_bytes(r, n, &p) != 0)
		return TB_E_TRUNC;
	for (size_t i = 0; i < n; i++)
		x = (x << 8) | p[i];
	*v = x;
	return 0;
}

int rd_u8(struct rd *r, uint8_t *v)
{
	uint64_t x;
	int rc = rd_be(r, 1, &x);
	if (rc == 0)
		*v = (uint8_t)x;
	return rc;
}

int rd_u16be(struct rd *r, uint16_t *v)
{
	uint64_t x;
	int rc = rd_be(r, 2, &x);
	if (rc == 0)
		*v = (uint16_t)x;
	return rc;
}

int rd_u24be(struct rd *r, uint32_t *v)
{
	uint64_t x;
	int rc = rd_be(r, 3, &x);
	if (rc == 0)
		*v = (uint32_t)x;
	return rc;
}

int rd_u32be(struct rd *r, uint32_t *v)
{
	uint64_t x;
	int rc = rd_be(r, 4, &x);
	if (rc == 0)
		*v = (uint32_t)x;
	return rc;
}

int rd_u64be(struct rd *r, uint64_t *v)
{
	return rd_be(r, 8, v);
}

int rd_copy(struct rd *r, uint8_t *dst, size_t n)
{
	const uint8_t *p;

	if (rd_bytes(r, n, &p) != 0)
		return TB_E_TRUNC;
	if (n > 0)
		memcpy(dst, p, n);
	return 0;
}

int rd_sub(struct rd *r, size_t n, struct rd *sub)
{
	const uint8_t *p;

	if (rd_bytes(r, n, &p) != 0)
		return TB_E_TRUNC;
	sub->p = p;
	sub->n = n;
	return 0;
}

int rd_skip(struct rd *r, size_t n)
{
	const uint8_t *p;
	return rd_bytes(r, n, &p);
}

int rd_peek(const struct rd *r, uint8_t *v)
{
	if (r->n == 0)
		return TB_E_TRUNC;
	*v = r->p[0];
	return 0;
}

int rd_end(const struct rd *r)
{
	return r->n == 0 ? 0 : TB_E_LEFTOVER;
}

int wr_reserve(struct wr *w, size_t n, uint8_t **out)
{
	if (n > w->cap - w->len)
		return TB_E_NOSPACE;
	if (n == 0) {
		*out = w->p; /* p may be NULL for a zero-capacity writer */
		return 0;
	}
	*out = w->p + w->len;
	w->len += n;
	return 0;
}

static int wr_be(struct wr *w, uint64_t v, size_t n)
{
	uint8_t *p;

	if (wr_reserve(w, n, &p) != 0)
		return TB_E_NOSPACE;
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
	return 0;
}

int wr_u8(struct wr *w, uint8_t v) { return wr_be(w, v, 1); }
int wr_u16be(struct wr *w, uint16_t v) { return wr_be(w, v, 2); }
int wr_u24be(struct wr *w, uint32_t v) { return v > 0xFFFFFFu ? TB_E_INVAL : wr_be(w, v, 3); }
int wr_u32be(struct wr *w, uint32_t v) { return wr_be(w, v, 4); }
int wr_u64be(struct wr *w, uint64_t v) { return wr_be(w, v, 8); }

int wr_bytes(struct wr *w, const uint8_t *src, size_t n)
{
	uint8_t *p;

	if (wr_reserve(w, n, &p) != 0)
		return TB_E_NOSPACE;
	if (n > 0)
		memmove(p, src, n);
	return 0;
}

int wr_fill(struct wr *w, uint8_t v, size_t n)
{
	uint8_t *p;

	if (wr_reserve(w, n, &p) != 0)
		return TB_E_NOSPACE;
	if (n > 0)
		memset(p, v, n);
	return 0;
}
