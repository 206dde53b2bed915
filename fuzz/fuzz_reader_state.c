/* fuzz_reader_state.c - the reader's state file codec (rdr_store_dec/_enc) on arbitrary
 * bytes. Whatever decodes re-encodes to the same bytes and keeps the store's promises
 * (next_seq >= 1, distinct record seqs below it, a 24-bit counter, bounded counts); a
 * refused file leaves the output as it was. The key file parser has its own target
 * (fuzz_reader_keys.c). */
#include <stdlib.h>
#include <string.h>

#include "rdr.h"
#include "scp03.h"

static uint8_t out[RDR_STORE_ENC_MAX];
static struct rdr_store st, canary;

static void check(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct wr w = wr_init(out, sizeof(out));

	memset(&st, 0xA5, sizeof(st));
	memset(&canary, 0xA5, sizeof(canary));
	if (rdr_store_dec(data, size, &st) != 0) {
		check(memcmp(&st, &canary, sizeof(st)) == 0);
		return 0;
	}
	check(st.next_seq >= 1 && st.card_counter <= SCP_COUNTER_LAST);
	check(st.deny_n <= RDR_DENY_MAX && st.n <= RDR_OUTBOX_MAX);
	for (size_t i = 0; i < st.n; i++) {
		check(st.rec[i].seq < st.next_seq && st.rec[i].body_n <= RMSG_BODY_MAX);
		for (size_t j = 0; j < i; j++)
			check(st.rec[j].seq != st.rec[i].seq);
	}
	for (size_t i = 0; i < st.deny_n; i++)
		check(rdr_denied(&st, st.deny[i]));
	check(rdr_store_enc(&w, &st) == 0 && w.len == size && memcmp(out, data, size) == 0);
	return 0;
}
