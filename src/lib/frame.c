/* frame.c - the length-prefixed frame decoder engine and encoder (see frame.h).
 * Limits are checked when the length and type bytes arrive, so no payload byte of a
 * refused frame is ever stored; the first failure sticks until frame_rd_init. */
#include "err.h"
#include "frame.h"

static int frame_max_ok(size_t cap, size_t max)
{
	return max >= 1 && max - 1 <= cap;
}

int frame_rd_init(struct frame_rd *f, uint8_t *buf, size_t cap, size_t max,
		  const uint32_t *max_by_type)
{
	struct frame_rd z = { 0 };

	if (f == NULL || (buf == NULL && cap > 0) || !frame_max_ok(cap, max))
		return TB_E_INVAL;
	z.buf = buf;
	z.cap = cap;
	z.max = max;
	z.max_by_type = max_by_type;
	*f = z;
	return 0;
}

int frame_rd_set_max(struct frame_rd *f, size_t max)
{
	if (!frame_max_ok(f->cap, max))
		return TB_E_INVAL;
	f->max = max;
	return 0;
}

static int frame_complete(const struct frame_rd *f)
{
	return f->have >= FRAME_HDR_LEN && f->have - 4 == f->n;
}

/* The 4th length byte is in: N is known, and so is whether it can be accepted. */
static int frame_check_len(struct frame_rd *f)
{
	f->n = (uint32_t)f->lenbuf[0] << 24 | (uint32_t)f->lenbuf[1] << 16 |
	       (uint32_t)f->lenbuf[2] << 8 | f->lenbuf[3];
	if (f->n == 0)
		return TB_E_FRAME_EMPTY;
	if (f->n > f->max)
		return TB_E_FRAME_OVERSIZE;
	return 0;
}

static int frame_check_type(const struct frame_rd *f)
{
	if (f->max_by_type == NULL)
		return 0;
	if (f->max_by_type[f->type] == 0)
		return TB_E_FRAME_TYPE;
	if (f->n > f->max_by_type[f->type])
		return TB_E_FRAME_OVERSIZE;
	return 0;
}

/* Consumes what the current step needs from r: a length byte, the type byte or
 * a run of payload bytes. */
static int frame_step(struct frame_rd *f, struct rd *r)
{
	size_t want;

	if (f->have < 4) {
		if (rd_u8(r, &f->lenbuf[f->have]) != 0)
			return TB_E_INTERNAL;
		f->have++;
		return f->have == 4 ? frame_check_len(f) : 0;
	}
	if (f->have == 4) {
		if (rd_u8(r, &f->type) != 0)
			return TB_E_INTERNAL;
		f->have++;
		return frame_check_type(f);
	}
	want = 4 + (size_t)f->n - f->have;
	if (want > rd_left(r))
		want = rd_left(r);
	if (rd_copy(r, f->buf + (f->have - FRAME_HDR_LEN), want) != 0)
		return TB_E_INTERNAL;
	f->have += want;
	return 0;
}

size_t frame_rd_push(struct frame_rd *f, const uint8_t *p, size_t n)
{
	struct rd r = rd_init(p, n);

	if (p == NULL && n > 0) {
		if (f->err == 0)
			f->err = TB_E_INVAL;
		return 0;
	}
	while (f->err == 0 && !frame_complete(f) && rd_left(&r) > 0)
		f->err = frame_step(f, &r);
	return n - rd_left(&r);
}

int frame_rd_state(const struct frame_rd *f)
{
	if (f->err != 0)
		return f->err;
	return frame_complete(f) ? FRAME_READY : FRAME_NEED_MORE;
}

int frame_rd_take(struct frame_rd *f, uint8_t *type, const uint8_t **payload, size_t *n)
{
	if (f->err != 0)
		return f->err;
	if (!frame_complete(f))
		return TB_E_TRUNC;
	*type = f->type;
	*n = (size_t)f->n - 1;
	*payload = *n > 0 ? f->buf : NULL;
	f->have = 0;
	f->n = 0;
	return 0;
}

int frame_write(struct wr *w, uint8_t type, const uint8_t *payload, size_t n, size_t max)
{
	if (n > 0 && payload == NULL)
		return TB_E_INVAL;
	if (n >= max || n >= FRAME_MAX_N)
		return TB_E_FRAME_OVERSIZE;
	if (n > wr_room(w) || wr_room(w) - n < FRAME_HDR_LEN)
		return TB_E_NOSPACE;
	/* From here on every write fits. */
	(void)wr_u32be(w, (uint32_t)(n + 1));
	(void)wr_u8(w, type);
	(void)wr_bytes(w, payload, n);
	return 0;
}
