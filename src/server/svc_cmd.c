/* svc_cmd.c - the services' se commands and the credit receipt (svc_cmd.h). Every writer
 * writes into a scratch copy of the output and commits it whole, every reader parses a
 * copy of the input and stores only on success: a failed call changes nothing. */
#include "svc_cmd.h"

#include <string.h>

#include "err.h"

/* 80 ins 00 00 Lc, then the caller's data (Lc < 256 for every command here). */
static int cmd_head(struct wr *w, uint8_t ins, size_t lc)
{
	if (wr_u8(w, 0x80) != 0 || wr_u8(w, ins) != 0 || wr_u16be(w, 0x0000) != 0 ||
	    wr_u8(w, (uint8_t)lc) != 0)
		return TB_E_NOSPACE;
	return 0;
}

int svc_cmd_credit(struct wr *w, uint32_t amount)
{
	struct wr t = *w;

	if (amount == 0)
		return TB_E_INVAL;
	if (cmd_head(&t, 0x32, 4) != 0 || wr_u32be(&t, amount) != 0)
		return TB_E_NOSPACE;
	*w = t;
	return 0;
}

int svc_ticket_put(struct wr *w, const struct svc_ticket *tk)
{
	struct wr t = *w;

	if (tk->uses == 0 || tk->not_before > tk->not_after)
		return TB_E_INVAL;
	if (wr_u64be(&t, tk->id) != 0 || wr_u32be(&t, tk->service) != 0 ||
	    wr_u32be(&t, tk->not_before) != 0 || wr_u32be(&t, tk->not_after) != 0 ||
	    wr_u8(&t, tk->uses) != 0)
		return TB_E_NOSPACE;
	*w = t;
	return 0;
}

int svc_ticket_get(struct rd *r, struct svc_ticket *out)
{
	struct rd t = *r;
	struct svc_ticket k;

	if (rd_u64be(&t, &k.id) != 0 || rd_u32be(&t, &k.service) != 0 ||
	    rd_u32be(&t, &k.not_before) != 0 || rd_u32be(&t, &k.not_after) != 0 ||
	    rd_u8(&t, &k.uses) != 0)
		return TB_E_TRUNC;
	*r = t;
	*out = k;
	return 0;
}

int svc_cmd_ticket_store(struct wr *w, const struct svc_ticket *tk)
{
	struct wr t = *w;
	int rc;

	if (tk->uses == 0 || tk->not_before > tk->not_after)
		return TB_E_INVAL;
	if ((rc = cmd_head(&t, 0x40, SVC_TICKET_LEN)) != 0 || (rc = svc_ticket_put(&t, tk)) != 0)
		return rc;
	*w = t;
	return 0;
}

int svc_token_put(struct wr *w, const struct svc_token *tk)
{
	struct wr t = *w;

	if (wr_u8(&t, SVC_TOKEN_VERSION) != 0 || wr_bytes(&t, tk->serial, SVC_SERIAL_LEN) != 0 ||
	    wr_u32be(&t, tk->service) != 0 || wr_u32be(&t, tk->expiry) != 0 ||
	    wr_bytes(&t, tk->nonce, SVC_NONCE_LEN) != 0 || wr_u32be(&t, tk->limit) != 0)
		return TB_E_NOSPACE;
	*w = t;
	return 0;
}

int svc_token_get(struct rd *r, struct svc_token *out)
{
	struct rd t = *r;
	struct svc_token k;
	uint8_t version;

	if (rd_u8(&t, &version) != 0 || rd_copy(&t, k.serial, SVC_SERIAL_LEN) != 0 ||
	    rd_u32be(&t, &k.service) != 0 || rd_u32be(&t, &k.expiry) != 0 ||
	    rd_copy(&t, k.nonce, SVC_NONCE_LEN) != 0 || rd_u32be(&t, &k.limit) != 0)
		return TB_E_TRUNC;
	if (version != SVC_TOKEN_VERSION)
		return TB_E_INVAL;
	*r = t;
	*out = k;
	return 0;
}

int svc_cmd_flag_set(struct wr *w, const uint8_t token[SVC_TOKEN_LEN],
		     const uint8_t sig[SVC_SIG_LEN])
{
	struct wr t = *w;

	if (cmd_head(&t, 0x64, SVC_TOKEN_LEN + SVC_SIG_LEN) != 0 ||
	    wr_bytes(&t, token, SVC_TOKEN_LEN) != 0 || wr_bytes(&t, sig, SVC_SIG_LEN) != 0)
		return TB_E_NOSPACE;
	*w = t;
	return 0;
}

int svc_receipt_parse(const uint8_t *b, size_t n, struct svc_receipt *out)
{
	struct rd r = rd_init(b, n);
	struct svc_receipt k;

	if (rd_copy(&r, k.serial, SVC_SERIAL_LEN) != 0 || rd_u32be(&r, &k.counter) != 0 ||
	    rd_u8(&r, &k.kind) != 0 || rd_u32be(&r, &k.amount) != 0 ||
	    rd_u32be(&r, &k.balance) != 0 || rd_u8(&r, &k.kvn) != 0 || rd_u24be(&r, &k.seq) != 0 ||
	    rd_copy(&r, k.mac, SVC_RECEIPT_MAC_LEN) != 0)
		return TB_E_TRUNC;
	if (rd_end(&r) != 0)
		return TB_E_LEFTOVER;
	*out = k;
	return 0;
}

int svc_cmd_read(struct wr *w, uint8_t ins)
{
	struct wr t = *w;

	if (ins != 0x30 && ins != 0x42)
		return TB_E_INVAL;
	if (cmd_head(&t, ins, 0) != 0)
		return TB_E_NOSPACE;
	*w = t;
	return 0;
}

int svc_cmd_pauth_set(struct wr *w, const uint8_t id[SVC_PAUTH_ID_LEN],
		      const uint8_t key[SVC_PAUTH_KEY_LEN])
{
	struct wr t = *w;

	if (cmd_head(&t, 0x60, SVC_PAUTH_ID_LEN + SVC_PAUTH_KEY_LEN) != 0 ||
	    wr_bytes(&t, id, SVC_PAUTH_ID_LEN) != 0 || wr_bytes(&t, key, SVC_PAUTH_KEY_LEN) != 0)
		return TB_E_NOSPACE;
	*w = t;
	return 0;
}

int svc_purse_parse(const uint8_t *b, size_t n, uint32_t *balance, uint32_t *counter)
{
	struct rd r = rd_init(b, n);
	uint32_t bal, ctr, max;

	if (rd_u32be(&r, &bal) != 0 || rd_u32be(&r, &ctr) != 0 || rd_u32be(&r, &max) != 0)
		return TB_E_TRUNC;
	if (rd_end(&r) != 0)
		return TB_E_LEFTOVER;
	*balance = bal;
	*counter = ctr;
	return 0;
}

/* n records of 21 bytes from r into k (k->n counts them); the caller checks the end. */
static int tickets_get(struct rd *r, size_t n, struct svc_backup *k)
{
	for (k->n = 0; k->n < n; k->n++) {
		struct rd t = *r;

		/* svc_ticket_get would refuse nothing: the se's own records, uses 0 included */
		if (rd_u64be(&t, &k->t[k->n].id) != 0 || rd_u32be(&t, &k->t[k->n].service) != 0 ||
		    rd_u32be(&t, &k->t[k->n].not_before) != 0 ||
		    rd_u32be(&t, &k->t[k->n].not_after) != 0 || rd_u8(&t, &k->t[k->n].uses) != 0)
			return TB_E_TRUNC;
		*r = t;
	}
	return 0;
}

int svc_tickets_parse(const uint8_t *b, size_t n, struct svc_backup *out)
{
	struct rd r = rd_init(b, n);
	struct svc_backup k = *out;

	if (n % SVC_TICKET_LEN != 0)
		return TB_E_TRUNC;
	if (n / SVC_TICKET_LEN > SVC_TICKETS_MAX)
		return TB_E_LEFTOVER;
	if (tickets_get(&r, n / SVC_TICKET_LEN, &k) != 0)
		return TB_E_TRUNC;
	*out = k;
	return 0;
}

int svc_backup_put(struct wr *w, const struct svc_backup *b)
{
	struct wr t = *w;

	if (b->n > SVC_TICKETS_MAX)
		return TB_E_INVAL;
	if (wr_u8(&t, SVC_BACKUP_VERSION) != 0 || wr_bytes(&t, b->serial, SVC_SERIAL_LEN) != 0 ||
	    wr_u32be(&t, b->balance) != 0 || wr_u32be(&t, b->counter) != 0 ||
	    wr_u8(&t, (uint8_t)b->n) != 0)
		return TB_E_NOSPACE;
	for (size_t i = 0; i < b->n; i++)
		if (wr_u64be(&t, b->t[i].id) != 0 || wr_u32be(&t, b->t[i].service) != 0 ||
		    wr_u32be(&t, b->t[i].not_before) != 0 || wr_u32be(&t, b->t[i].not_after) != 0 ||
		    wr_u8(&t, b->t[i].uses) != 0)
			return TB_E_NOSPACE;
	*w = t;
	return 0;
}

int svc_backup_get(const uint8_t *p, size_t n, struct svc_backup *out)
{
	struct rd r = rd_init(p, n);
	struct svc_backup k;
	uint8_t version, count;

	memset(&k, 0, sizeof(k));
	if (rd_u8(&r, &version) != 0 || rd_copy(&r, k.serial, SVC_SERIAL_LEN) != 0 ||
	    rd_u32be(&r, &k.balance) != 0 || rd_u32be(&r, &k.counter) != 0 || rd_u8(&r, &count) != 0)
		return TB_E_TRUNC;
	if (version != SVC_BACKUP_VERSION || count > SVC_TICKETS_MAX)
		return TB_E_INVAL;
	if (tickets_get(&r, count, &k) != 0)
		return TB_E_TRUNC;
	if (rd_end(&r) != 0)
		return TB_E_LEFTOVER;
	*out = k;
	return 0;
}
