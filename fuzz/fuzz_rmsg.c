/* fuzz_rmsg.c - the relay message decoders (src/lib/rmsg.c) on arbitrary bytes: every
 * message kind, REQUEST and RESULT, and the reader's state file; whatever decodes must
 * encode back to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rdr.h"
#include "rmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[RDR_STORE_ENC_MAX];
static struct rdr_store st;

static void same(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rmsg_record rec[RMSG_RECORDS_MAX];
	struct rmsg_result_item it[RMSG_RECORDS_MAX];
	const uint8_t *deny = NULL;
	struct wr w = wr_init(out, sizeof(out));
	size_t n = 0, dn = 0;
	struct rmsg m;

	(void)rmsg_up_dec(data, size, &m);
	(void)rmsg_down_dec(data, size, &m);
	if (rmsg_request_dec(data, size, rec, RMSG_RECORDS_MAX, &n) == 0) {
		if (rmsg_request_enc(&w, rec, n) != 0 || w.len != size)
			abort();
		same(out, data, size);
	}
	w = wr_init(out, sizeof(out));
	if (rmsg_result_dec(data, size, it, RMSG_RECORDS_MAX, &n, &deny, &dn) == 0) {
		if (rmsg_result_enc(&w, it, n, (const uint8_t(*)[RMSG_SERIAL_LEN])deny, dn) != 0 ||
		    w.len != size)
			abort();
		same(out, data, size);
	}
	w = wr_init(out, sizeof(out));
	if (rdr_store_dec(data, size, &st) == 0) {
		if (rdr_store_enc(&w, &st) != 0 || w.len != size)
			abort();
		same(out, data, size);
	}
	return 0;
}
