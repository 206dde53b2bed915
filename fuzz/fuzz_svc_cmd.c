/* fuzz_svc_cmd.c - the services' se data on arbitrary bytes: the credit receipt, the
 * ticket record and the flag token. Whatever parses is written again and must give
 * back the bytes it was read from. */
#include <stdlib.h>

#include "ct.h"
#include "svc_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out[SVC_CMD_MAX];
	struct svc_receipt rc;
	struct svc_ticket t;
	struct svc_token k;
	struct rd r = rd_init(data, size);
	struct wr w = wr_init(out, sizeof(out));

	if (svc_receipt_parse(data, size, &rc) == 0 && size != SVC_RECEIPT_LEN)
		abort();
	if (svc_ticket_get(&r, &t) == 0 && t.uses > 0 && t.not_before <= t.not_after &&
	    (svc_ticket_put(&w, &t) != 0 || !ct_eq(out, data, SVC_TICKET_LEN)))
		abort();
	r = rd_init(data, size);
	w = wr_init(out, sizeof(out));
	if (svc_token_get(&r, &k) == 0 &&
	    (svc_token_put(&w, &k) != 0 || !ct_eq(out, data, SVC_TOKEN_LEN)))
		abort();
	return 0;
}
