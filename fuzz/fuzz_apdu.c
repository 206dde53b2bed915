/* fuzz_apdu.c - command and response APDU parsers; whatever parses must re-encode to
 * the very same bytes (the encoding is canonical) and parse back to the same fields. */
#include <stdlib.h>

#include "apdu.h"

static uint8_t out[APDU_MAX_CMD];

static void same_bytes(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct apdu a, b;
	struct apdu_resp r;
	struct wr w = wr_init(out, sizeof(out));

	if (apdu_parse(data, size, &a) == 0) {
		if (apdu_encode(&a, &w) != 0 || w.len != size || apdu_parse(out, w.len, &b) != 0)
			abort();
		same_bytes(out, data, size);
		if (a.cla != b.cla || a.ins != b.ins || a.p1 != b.p1 || a.p2 != b.p2 ||
		    a.nc != b.nc || a.ne != b.ne || a.extended != b.extended)
			abort();
		if (a.nc > 0)
			same_bytes(a.data, b.data, a.nc);
	}
	w = wr_init(out, sizeof(out));
	if (apdu_resp_parse(data, size, &r) == 0 && size <= sizeof(out)) {
		if (apdu_resp_encode(r.data, r.n, r.sw, &w) != 0 || w.len != size)
			abort();
		same_bytes(out, data, size);
	}
	return 0;
}
