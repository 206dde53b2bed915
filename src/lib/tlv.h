/* tlv.h - BER-TLV as ISO 7816-4, GlobalPlatform and EMV use it: a zero-copy
 * reader over struct rd and a builder over struct wr (both from bytes.h).
 *
 * Accepted encoding:
 *   tag     1 to 3 bytes, kept as a big-endian uint32_t (0x4F, 0x9F70, 0xDF8101);
 *           low 5 bits 11111 in the first byte mean more bytes follow, and b8 of
 *           each later byte says whether yet another follows. More than 3 bytes:
 *           TB_E_TLV_TAG. Constructed = b6 (0x20) of the first byte.
 *   length  00..7F, or 81 XX, 82 XXXX, 83 XXXXXX (so at most TLV_MAX_LEN).
 *           80 (indefinite): TB_E_TLV_INDEFINITE; 84 and up: TB_E_TLV_LEN_FORM;
 *           cut short: TB_E_TLV_LEN_TRUNC; value longer than the enclosing data:
 *           TB_E_TLV_LEN_PAST_END. An input that ends inside a tag, or has no
 *           tag at all, is TB_E_TRUNC.
 *   BER (flags 0) accepts non-minimal long lengths (81 05, 82 007F); TLV_STRICT
 *   rejects them with TB_E_TLV_LEN_FORM, and a first subsequent tag byte of 80
 *   (a padded tag number, invalid in both ISO 7816-4 and DER) with TB_E_TLV_TAG.
 *   Tag numbers below 31 in the long form (EMV's 9F02, 9F1A) are accepted in
 *   both modes because EMV uses them.
 *
 * Padding: bytes 00 and FF between elements are NOT skipped. 00 is an ordinary
 * tag (00 00 is an empty element with tag 0x00; a lone trailing 00 is
 * TB_E_TLV_LEN_TRUNC); FF opens a multi-byte tag, so FF FF FF is TB_E_TLV_TAG.
 * A caller whose format pads strips the padding itself, with its own bound.
 *
 * Every function returns 0 or a negative TB_E_*; on error nothing is consumed
 * or written and *out is untouched. Values are borrowed from the caller's
 * buffer and valid while it is. No allocation anywhere. */
#ifndef TB_TLV_H
#define TB_TLV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

/* Deepest nesting tlv_walk accepts (top-level elements are depth 0, so at most
 * TLV_MAX_DEPTH levels); also the size of its fixed stack. */
#define TLV_MAX_DEPTH 8
/* Longest value the 83 XXXXXX form can state. */
#define TLV_MAX_LEN 0xFFFFFFu
/* Longest header: 3 tag bytes + 83 XXXXXX. */
#define TLV_MAX_HDR 7

/* Reader flags. */
#define TLV_BER 0u    /* lenient: any long-form length of 1-3 bytes */
#define TLV_STRICT 1u /* minimal (DER-style) lengths, no 80 padding in tags */

/* One element. val points into the reader's buffer; for a constructed element
 * it is the reader over its children. */
struct tlv {
	uint32_t tag;
	bool constructed;
	size_t hdr_len; /* tag + length bytes; the element is hdr_len + val.n */
	struct rd val;
};

/* Reads one element and advances r past it. TB_E_TRUNC when r is empty. */
int tlv_read(struct rd *r, unsigned flags, struct tlv *out);
/* tlv_read with flags TLV_BER. */
int tlv_next(struct rd *r, struct tlv *out);

/* Reads the next element, which must carry tag: TB_E_TLV_NOT_FOUND otherwise
 * (nothing consumed). */
int tlv_expect(struct rd *r, unsigned flags, uint32_t tag, struct tlv *out);
/* Opens the next element, which must carry tag and be constructed
 * (TB_E_TLV_NOT_CONSTRUCTED): *inner reads its value, whose length has been
 * taken out of r. Close with rd_end(inner) to refuse leftover bytes. */
int tlv_enter(struct rd *r, unsigned flags, uint32_t tag, struct rd *inner);
/* Finds the first element with tag among the elements of one level (level is
 * not changed; children are not searched). The whole level must parse, so a
 * malformed element after the match is still an error. TB_E_TLV_NOT_FOUND
 * when no element has the tag. */
int tlv_find(const struct rd *level, unsigned flags, uint32_t tag, struct tlv *out);

/* Called for each element, parents before children. depth 0 = top level;
 * off = offset of the element's first tag byte from the start of the walked
 * data. A non-zero return stops the walk and is returned by it. */
typedef int (*tlv_visit_fn)(void *ctx, const struct tlv *t, unsigned depth, size_t off);

/* Visits every element of p[0..n) depth first, descending into every
 * constructed element. max_depth (1..TLV_MAX_DEPTH, else TB_E_INVAL) is the
 * number of levels allowed: an element at depth >= max_depth fails with
 * TB_E_TLV_DEPTH. fn may be NULL to validate only; elements before an error
 * have been visited, so a caller that must not act on partial data validates
 * first. BER flags. */
int tlv_walk(const uint8_t *p, size_t n, unsigned max_depth, tlv_visit_fn fn, void *ctx);
/* The same with reader flags; on error (also a stop by fn) *err_off, when not
 * NULL, gets the offset of the element that failed or stopped the walk. */
int tlv_walk_ex(const uint8_t *p, size_t n, unsigned max_depth, unsigned flags,
		tlv_visit_fn fn, void *ctx, size_t *err_off);

/* Bytes the tag takes encoded (1..3), 0 when tag is not a valid 1-3 byte
 * encoding (e.g. 0x1F alone, 0x9F80 whose last byte says more follow). */
size_t tlv_tag_size(uint32_t tag);

/* Writes tag and the minimal length for an n-byte value (the value follows).
 * TB_E_TLV_TAG for an invalid tag, TB_E_TLV_LEN_FORM for n > TLV_MAX_LEN. */
int tlv_put_header(struct wr *w, uint32_t tag, size_t n);
/* Writes a whole element with the minimal length. v (may be NULL when n is 0)
 * must not overlap the free room of w. */
int tlv_put(struct wr *w, uint32_t tag, const uint8_t *v, size_t n);

/* Nested building: tlv_open writes the tag and reserves one length byte;
 * write the value (more tlv_put / tlv_open); tlv_close fills in the minimal
 * length, moving the value up by 1-3 bytes when the length needs the long
 * form, which needs that much free room (TB_E_NOSPACE otherwise, with the
 * buffer as it was). Close marks in reverse order of opening. To abandon an
 * element after a failure, set w->len = m.start. */
struct tlv_mark {
	size_t start;  /* offset of the element's first tag byte */
	size_t len_at; /* offset of the reserved length byte; SIZE_MAX once closed */
};

int tlv_open(struct wr *w, uint32_t tag, struct tlv_mark *m);
int tlv_close(struct wr *w, struct tlv_mark *m);

#endif
