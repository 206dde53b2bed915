/* purse.c - the e-money purse: balance, credit (server), debit (reader or server), the
 * transaction counter, and the receipt of every credit and debit.
 * What stays true: balance <= maximum balance, the counter grows by exactly one with
 * every change of balance, and a receipt leaves only after its state is durable.
 *
 * Receipt (33 bytes): serial(8) counter(4) kind(1) amount(4) balance(4) kvn(1) seq(3)
 * mac(8). It travels as response data, so the session's R-MAC (and R-ENC at 33) proves
 * it to the off-card entity of this session at once; kvn and seq (the session's
 * sequence counter, which made its card challenge) bind it to that session. mac =
 * CMAC(K_r, the first 25 bytes), first 8 bytes, with K_r = SP 800-108 CMAC KDF of the
 * first SERVER key set's Key-MAC, label "tapbridge receipt" 00, L 0080, context serial:
 * the server can verify a receipt a reader hands in later, the reader cannot forge one. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "se_int.h"

#define PURSE_RECEIPT_BODY 25u
#define PURSE_RECEIPT_MAC 8u
#define PURSE_RECEIPT_LEN (PURSE_RECEIPT_BODY + PURSE_RECEIPT_MAC)

static int purse_receipt_key(struct se *se, uint8_t key[16])
{
	static const uint8_t label[] = { 't', 'a', 'p', 'b', 'r', 'i', 'd', 'g', 'e', ' ', 'r',
					 'e', 'c', 'e', 'i', 'p', 't', 0x00, 0x00, 0x80 };
	struct scp_keys k;
	int slot = -1, rc;

	for (int s = 0; s < (int)SE_KEYSET_MAX && slot < 0; s++)
		if (se->img.ks[s].present && se->img.ks[s].role == SE_ROLE_SERVER)
			slot = s;
	if (slot < 0)
		return TB_E_SE_STATE; /* not personalised for the server: no receipts, no money */
	if ((rc = img_read_keys(&se->jnl, (unsigned)slot, &k)) == 0)
		rc = crypto_kdf_ctr_cmac(k.mac, k.len, label, sizeof(label), se->img.serial,
					 SE_SERIAL_LEN, key, 16);
	ct_wipe(&k, sizeof(k));
	return rc;
}

/* Writes the receipt of the state in next to out (room checked by the caller). */
static int purse_receipt(struct se_cmd *c, const struct se_image *next, struct wr *out)
{
	uint8_t body[PURSE_RECEIPT_BODY], key[16], tag[16];
	struct wr w = wr_init(body, sizeof(body));
	int rc;

	(void)wr_bytes(&w, next->serial, SE_SERIAL_LEN);
	(void)wr_u32be(&w, next->tx_counter);
	(void)wr_u8(&w, next->last_kind);
	(void)wr_u32be(&w, next->last_amount);
	(void)wr_u32be(&w, next->balance);
	(void)wr_u8(&w, c->kvn);
	(void)wr_u24be(&w, c->seq);
	if ((rc = purse_receipt_key(c->se, key)) == 0 &&
	    (rc = crypto_cmac(key, sizeof(key), body, sizeof(body), tag)) == 0 &&
	    (rc = wr_bytes(out, body, sizeof(body))) == 0)
		rc = wr_bytes(out, tag, PURSE_RECEIPT_MAC);
	ct_wipe(key, sizeof(key));
	ct_wipe(tag, sizeof(tag));
	return rc;
}

/* Response: balance(4) counter(4) maximum(4). */
int purse_balance(struct se_cmd *c)
{
	const struct se_image *img = &c->se->img;
	int rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER | SE_ALLOW_READER | SE_ALLOW_HOST_PLAIN,
			     SE_LEVEL_WALLET)) ||
	    (rc = se_expect(c, 0, 0, 0)))
		return rc;
	if (wr_room(c->out) < 12)
		return TB_E_NOSPACE;
	(void)wr_u32be(c->out, img->balance);
	(void)wr_u32be(c->out, img->tx_counter);
	return wr_u32be(c->out, img->max_balance);
}

/* Credit and debit: data amount(4), response the receipt. */
static int purse_change(struct se_cmd *c, unsigned allow, enum se_tx_kind kind)
{
	struct se_image next = c->se->img;
	struct se_ev_slot ev;
	uint32_t amount;
	int rc;

	if ((rc = se_require(c, allow, SE_LEVEL_WALLET)) || (rc = se_expect(c, 0, 0, 4)))
		return rc;
	amount = (uint32_t)c->a->data[0] << 24 | (uint32_t)c->a->data[1] << 16 |
		 (uint32_t)c->a->data[2] << 8 | c->a->data[3];
	if (amount == 0)
		return TB_E_INVAL;
	if (next.tx_counter == UINT32_MAX)
		return TB_E_SE_STATE;
	if (kind == SE_TX_CREDIT && amount > next.max_balance - next.balance)
		return TB_E_SE_LIMIT;
	if (kind == SE_TX_DEBIT && amount > next.balance)
		return TB_E_SE_FUNDS;
	next.balance = kind == SE_TX_CREDIT ? next.balance + amount : next.balance - amount;
	next.tx_counter++;
	next.last_kind = (uint8_t)kind;
	next.last_amount = amount;
	if (wr_room(c->out) < PURSE_RECEIPT_LEN)
		return TB_E_NOSPACE;
	/* The receipt is made first: nothing can fail after the commit. */
	if ((rc = purse_receipt(c, &next, c->out)) != 0 ||
	    (rc = se_persist(c->se, &next, NULL, 0)) != 0)
		return rc;
	memset(&ev, 0, sizeof(ev));
	ev.kind = SE_EV_TRANSACTION;
	ev.tx_kind = (uint8_t)kind;
	ev.amount = amount;
	ev.balance = next.balance;
	ev.counter = next.tx_counter;
	se_event_push(c->se, &ev);
	return 0;
}

int purse_credit(struct se_cmd *c)
{
	return purse_change(c, SE_ALLOW_SERVER, SE_TX_CREDIT);
}

int purse_debit(struct se_cmd *c)
{
	return purse_change(c, SE_ALLOW_SERVER | SE_ALLOW_READER, SE_TX_DEBIT);
}
