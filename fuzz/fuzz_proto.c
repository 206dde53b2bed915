/* fuzz_proto.c - every phone session payload decoder on arbitrary bytes: the first byte
 * picks the frame type (any of 256), the rest is the payload. Whatever decodes must
 * re-encode to exactly the same bytes, and as a whole frame within its type's limit. */
#include <stdlib.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[FRAME_HDR_LEN + PROTO_PHONE_IN_MAX];
	struct proto_msg m;
	struct wr w = wr_init(out, sizeof(out));

	if (size < 1 || proto_decode(data[0], size > 1 ? data + 1 : NULL, size - 1, &m) != 0)
		return 0;
	if (proto_encode(&w, &m) != 0 || w.len != size - 1)
		abort();
	for (size_t i = 0; i < w.len; i++)
		if (out[i] != data[1 + i])
			abort();
	w = wr_init(out, sizeof(out));
	if (proto_frame_put(&w, &m) != 0 || w.len != FRAME_HDR_LEN + size - 1 ||
	    out[FRAME_HDR_LEN - 1] != data[0])
		abort();
	return 0;
}
