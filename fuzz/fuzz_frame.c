/* fuzz_frame.c - the frame decoder fed in chunks whose sizes come from the input's
 * first byte, with a small max and (by the input's choice) a per-type table; every
 * frame taken must re-encode to the bytes it came from. */
#include <stdlib.h>

#include "frame.h"

#define MAX_N 40u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint32_t table[FRAME_TYPES];
	uint8_t buf[MAX_N - 1], re[FRAME_HDR_LEN + MAX_N];
	struct frame_rd f;
	size_t off = 1, start = 1, step = 0;

	if (size < 1)
		return 0;
	for (unsigned t = 0; t < FRAME_TYPES; t++)
		table[t] = t % 3 == 0 ? 0 : t % 50; /* some refused, some tight */
	if (frame_rd_init(&f, buf, sizeof(buf), MAX_N, (data[0] & 0x80) ? table : NULL) != 0)
		abort();
	while (off < size && frame_rd_state(&f) >= 0) {
		size_t chunk = 1 + ((data[0] >> (step++ % 4)) & 0x0F);
		off += frame_rd_push(&f, data + off, chunk < size - off ? chunk : size - off);
		if (frame_rd_state(&f) == FRAME_READY) {
			uint8_t type;
			const uint8_t *p;
			size_t n;
			struct wr w = wr_init(re, sizeof(re));

			if (frame_rd_take(&f, &type, &p, &n) != 0 || frame_write(&w, type, p, n, MAX_N) != 0 ||
			    w.len != off - start)
				abort();
			for (size_t i = 0; i < w.len; i++)
				if (re[i] != data[start + i])
					abort();
			start = off;
		}
	}
	return 0;
}
