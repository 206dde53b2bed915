/* fuzz_backup.c - the server's other se data codecs on arbitrary bytes: the backup blob
 * (svc_backup_get/_put), the TICKET LIST and GET BALANCE answers, and the opened
 * personal-auth blob with a PAUTH record's proof (svc_pauth_check). A backup that parses
 * is written again to the same bytes; a proof made with the blob's key is taken, and the
 * same proof with any one byte changed is refused. */
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "err.h"
#include "rmsg.h"
#include "svc.h"

static void check(int ok)
{
	if (!ok)
		abort();
}

static void lists(const uint8_t *data, size_t size)
{
	uint8_t out[SVC_BACKUP_MAX];
	struct svc_backup b, t;
	struct wr w = wr_init(out, sizeof(out));
	uint32_t bal = 0, ctr = 0;

	if (svc_backup_get(data, size, &b) == 0)
		check(b.n <= SVC_TICKETS_MAX && svc_backup_put(&w, &b) == 0 && w.len == size &&
		      memcmp(out, data, size) == 0);
	memset(&t, 0, sizeof(t));
	if (svc_tickets_parse(data, size, &t) == 0) {
		check(t.n * SVC_TICKET_LEN == size && t.n <= SVC_TICKETS_MAX);
		w = wr_init(out, sizeof(out));
		check(svc_backup_put(&w, &t) == 0 && w.len == SVC_BACKUP_HDR + size &&
		      (size == 0 || memcmp(out + SVC_BACKUP_HDR, data, size) == 0));
	} else {
		check(size % SVC_TICKET_LEN != 0 || size / SVC_TICKET_LEN > SVC_TICKETS_MAX);
	}
	if (svc_purse_parse(data, size, &bal, &ctr) == 0)
		check(size == SVC_PURSE_LEN && bal == ((uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 |
						      (uint32_t)data[2] << 8 | data[3]));
}

/* serial(8) || blob(32: id key) || nonce(8) || challenge(16) || flip(2): the real proof. */
static void pauth(const uint8_t *data, size_t size)
{
	uint8_t body[RMSG_PAUTH_LEN], msg[SVC_SERIAL_LEN + 24];
	const uint8_t *serial = data, *blob = data + 8;
	size_t at;

	/* as given: a blob of any length, the rest as the record's body */
	at = size > 8 ? 8 + data[8] % (size - 8) : size;
	if (size >= 8 && svc_pauth_check(serial, data + at, size - at, data + 8, at - 8) == 0)
		check(at - 8 == 32 && size - at == RMSG_PAUTH_LEN &&
		      memcmp(data + 8, data + at, SVC_PAUTH_ID_LEN) == 0);
	if (size < 8 + 32 + 24 + 2)
		return;
	memcpy(msg, serial, SVC_SERIAL_LEN);
	memcpy(msg + SVC_SERIAL_LEN, data + 40, 24);
	memcpy(body, blob, SVC_PAUTH_ID_LEN);
	memcpy(body + SVC_PAUTH_ID_LEN, data + 40, 24);
	check(crypto_cmac(blob + SVC_PAUTH_ID_LEN, SVC_PAUTH_KEY_LEN, msg, sizeof(msg),
			  body + RMSG_PAUTH_LEN - 16) == 0);
	check(svc_pauth_check(serial, body, sizeof(body), blob, 32) == 0);
	body[data[64] % sizeof(body)] ^= (uint8_t)(data[65] | 1);
	check(svc_pauth_check(serial, body, sizeof(body), blob, 32) == TB_E_VAULT_PROOF);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	lists(data, size);
	pauth(data, size);
	return 0;
}
