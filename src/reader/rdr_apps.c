/* rdr_apps.c - the reader's applications, each one local step through its se channel:
 * pay (DEBIT), checkout (DEBIT of the items' total), gate (TICKET LIST + CONSUME), id
 * (PAUTH PROVE with a fresh challenge), refund (a record only: the server credits the se
 * through its own channel, so it needs the relay); offline, each first reads, verifies (ECDSA, the
 * flag key) and consumes the authenticity-confirmation flag. What stays true: every
 * step that moved value or used a ticket is in the outbox (saved) before the tap goes
 * on; the flag is consumed before the value moves, so one flag serves one tap. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "rdr_int.h"

#define TOKEN_LEN 37u
#define FLAG_DATA_LEN (TOKEN_LEN + 64u)
#define TICKET_LEN RMSG_TICKET_LEN

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* An se refusal as a line; always TB_E_RDR_REFUSED. */
static int refused(struct rdr *r, const char *what)
{
	struct rdr_line l;

	line_start(&l, "reader: refused: ");
	switch (r->sw) {
	case 0x6985u:
		line_str(&l, what);
		break;
	case 0x6A81u:
		line_str(&l, "wallet locked");
		break;
	case 0x6A88u:
		line_str(&l, "not found on the se");
		break;
	default:
		line_str(&l, "the se answered ");
		line_sw(&l, r->sw);
	}
	rdr_say_line(r, &l);
	return TB_E_RDR_REFUSED;
}

static void rec_new(struct rdr *r, struct rdr_rec *rec, uint8_t kind, uint32_t service)
{
	memset(rec, 0, sizeof(*rec));
	rec->kind = kind;
	rec->time = r->now;
	rec->service = service;
	memcpy(rec->serial, r->serial, RMSG_SERIAL_LEN);
}

static int debit(struct rdr *r, uint32_t amount, uint8_t receipt[RMSG_RECEIPT_LEN])
{
	uint8_t cmd[10] = { 0x80, 0x34, 0x00, 0x00, 0x04 };
	int rc;

	if (amount == 0) {
		rdr_say(r, "reader: refused: no amount");
		return TB_E_RDR_REFUSED;
	}
	put32(cmd + 5, amount);
	cmd[9] = 0x00;
	if ((rc = rdr_cmd(r, cmd, sizeof(cmd))))
		return rc;
	if (r->sw != 0x9000u)
		return refused(r, "balance too low");
	/* serial(8) counter(4) kind(1) amount(4): the se debited what we asked, itself. */
	if (r->plain_n != RMSG_RECEIPT_LEN || !ct_eq(r->plain, r->serial, RMSG_SERIAL_LEN) ||
	    r->plain[12] != 0x02 || get32(r->plain + 13) != amount) {
		rdr_say(r, "reader: refused: the se's receipt does not match the debit");
		return TB_E_RDR_REFUSED;
	}
	memcpy(receipt, r->plain, RMSG_RECEIPT_LEN);
	return 0;
}

/* The items' total, or 0 when there are none or it overflows. */
static uint32_t items_total(const struct rdr_cfg *cfg)
{
	uint64_t t = 0;

	for (size_t i = 0; i < cfg->n_items && i < RMSG_ITEMS_MAX; i++)
		t += (uint64_t)cfg->items[i].qty * cfg->items[i].price;
	return t > UINT32_MAX ? 0 : (uint32_t)t;
}

static uint32_t app_amount(const struct rdr_cfg *cfg)
{
	return cfg->app == RDR_APP_CHECKOUT ? items_total(cfg) : cfg->amount;
}

/* The first ticket of service that is valid now with a use left: consumed. */
static int ticket_use(struct rdr *r, uint32_t service, uint8_t after[TICKET_LEN])
{
	static const uint8_t list[] = { 0x80, 0x42, 0x00, 0x00, 0x00 };
	uint8_t cmd[18] = { 0x80, 0x46, 0x00, 0x00, 0x0C };
	const uint8_t *pick = NULL;
	int rc;

	if ((rc = rdr_cmd(r, list, sizeof(list))))
		return rc;
	if (r->sw != 0x9000u || r->plain_n % TICKET_LEN != 0)
		return refused(r, "tickets unreadable");
	for (size_t off = 0; off < r->plain_n && pick == NULL; off += TICKET_LEN) {
		const uint8_t *t = r->plain + off;

		if (get32(t + 8) == service && t[20] > 0 && (int64_t)get32(t + 12) <= r->now &&
		    r->now <= (int64_t)get32(t + 16))
			pick = t;
	}
	if (pick == NULL) {
		rdr_say(r, "reader: refused: no valid ticket");
		return TB_E_RDR_REFUSED;
	}
	memcpy(cmd + 5, pick, 8);
	put32(cmd + 13, service);
	cmd[17] = 0x00;
	if ((rc = rdr_cmd(r, cmd, sizeof(cmd))))
		return rc;
	if (r->sw != 0x9000u)
		return refused(r, "ticket used up or not valid now");
	if (r->plain_n != TICKET_LEN) {
		rdr_say(r, "reader: refused: the se's ticket record is malformed");
		return TB_E_RDR_REFUSED;
	}
	memcpy(after, r->plain, TICKET_LEN);
	return 0;
}

/* PAUTH PROVE: body = id(16) || card nonce(8) || challenge(16) || proof(16). */
static int pauth(struct rdr *r, uint8_t body[RMSG_PAUTH_LEN])
{
	uint8_t cmd[22] = { 0x80, 0x62, 0x00, 0x00, 0x10 };
	int rc;

	if ((rc = crypto_random(cmd + 5, 16)))
		return rc;
	cmd[21] = 0x00;
	if ((rc = rdr_cmd(r, cmd, sizeof(cmd))))
		return rc;
	if (r->sw != 0x9000u)
		return refused(r, "personal authentication not possible");
	if (r->plain_n != 40) {
		rdr_say(r, "reader: refused: the se's proof is malformed");
		return TB_E_RDR_REFUSED;
	}
	memcpy(body, r->plain, 24);
	memcpy(body + 24, cmd + 5, 16);
	memcpy(body + 40, r->plain + 24, 16);
	return 0;
}

static uint32_t gate_service(const struct rdr *r)
{
	if (r->cfg->ticket_service != 0)
		return r->cfg->ticket_service;
	return r->armed ? r->armed_service : r->cfg->service;
}

int rdr_app_online(struct rdr *r)
{
	struct rdr_rec rec;
	uint32_t service = r->armed_service;
	int rc = 0;

	switch (r->cfg->app) {
	case RDR_APP_PAY:
		rec_new(r, &rec, RMSG_K_PAY, service);
		rec.body_n = RMSG_RECEIPT_LEN;
		rc = debit(r, r->cfg->amount, rec.body);
		break;
	case RDR_APP_CHECKOUT:
		rec_new(r, &rec, RMSG_K_ORDER, service);
		if (r->cfg->n_items == 0 || r->cfg->n_items > RMSG_ITEMS_MAX) {
			rdr_say(r, "reader: refused: no items");
			return TB_E_RDR_REFUSED;
		}
		rc = debit(r, items_total(r->cfg), rec.body);
		rec.body[RMSG_RECEIPT_LEN] = (uint8_t)r->cfg->n_items;
		rec.body_n = RMSG_RECEIPT_LEN + 1u;
		for (size_t i = 0; i < r->cfg->n_items; i++) {
			put32(rec.body + rec.body_n, r->cfg->items[i].id);
			rec.body[rec.body_n + 4] = (uint8_t)(r->cfg->items[i].qty >> 8);
			rec.body[rec.body_n + 5] = (uint8_t)r->cfg->items[i].qty;
			rec.body_n += RMSG_ITEM_LEN;
		}
		break;
	case RDR_APP_GATE:
		rec_new(r, &rec, RMSG_K_TICKET, gate_service(r));
		rec.body_n = TICKET_LEN;
		rc = ticket_use(r, gate_service(r), rec.body);
		break;
	case RDR_APP_ID:
		rec_new(r, &rec, RMSG_K_PAUTH, service);
		rec.body_n = RMSG_PAUTH_LEN;
		rc = pauth(r, rec.body);
		break;
	case RDR_APP_REFUND: {
		struct wr w = wr_init(rec.body, sizeof(rec.body));

		rec_new(r, &rec, RMSG_K_REFUND, service); /* zeroes the body w points at */
		if (rmsg_refund_enc(&w, r->cfg->refund_key,
				    strnlen(r->cfg->refund_key, sizeof(r->cfg->refund_key)),
				    r->cfg->amount) != 0) {
			rdr_say(r, "reader: refused: no refund key or amount");
			return TB_E_RDR_REFUSED;
		}
		rec.body_n = w.len;
		break;
	}
	default:
		return TB_E_INVAL;
	}
	if (rc != 0)
		return rc;
	return rdr_outbox_add(r, &rec, 1);
}

/* FLAG GET, then the checks a reader can make alone: version, this se, not expired,
 * the server's signature over "TBSG" || 01 || token. */
static int flag_read(struct rdr *r, uint8_t token[TOKEN_LEN])
{
	static const uint8_t cmd[] = { 0x80, 0x66, 0x00, 0x00, 0x00 };
	uint8_t msg[5 + TOKEN_LEN] = { 'T', 'B', 'S', 'G', 0x01 };
	int rc;

	if (!r->keys->has_flag_pub) {
		rdr_say(r, "reader: refused: offline and no flag key in the key file");
		return TB_E_RDR_REFUSED;
	}
	if ((rc = rdr_cmd(r, cmd, sizeof(cmd))))
		return rc;
	if (r->sw == 0x6A88u) {
		rdr_say(r, "reader: refused: offline and no flag on the phone");
		return TB_E_RDR_REFUSED;
	}
	if (r->sw != 0x9000u)
		return refused(r, "flag expired");
	if (r->plain_n != FLAG_DATA_LEN || r->plain[0] != 0x01 ||
	    !ct_eq(r->plain + 1, r->serial, RMSG_SERIAL_LEN)) {
		rdr_say(r, "reader: refused: the flag is not this se's");
		return TB_E_RDR_REFUSED;
	}
	if ((int64_t)get32(r->plain + 13) < r->now) {
		rdr_say(r, "reader: refused: flag expired");
		return TB_E_RDR_REFUSED;
	}
	memcpy(msg + 5, r->plain, TOKEN_LEN);
	if (crypto_ecdsa_verify(r->keys->flag_pub, msg, sizeof(msg), r->plain + TOKEN_LEN) != 0) {
		rdr_say(r, "reader: refused: flag signature does not verify");
		return TB_E_RDR_REFUSED;
	}
	memcpy(token, r->plain, TOKEN_LEN);
	return 0;
}

static int flag_consume(struct rdr *r, const uint8_t nonce[16])
{
	uint8_t cmd[21] = { 0x80, 0x68, 0x00, 0x00, 0x10 };
	int rc;

	memcpy(cmd + 5, nonce, 16);
	if ((rc = rdr_cmd(r, cmd, sizeof(cmd))))
		return rc;
	return r->sw == 0x9000u ? 0 : refused(r, "flag already used or expired");
}

/* Flow 3: the flag stands in for the server. Token: 01 serial(8) service(4) expiry(4)
 * nonce(16) limit(4). Records: FLAG (nonce, amount) and, for money, PAY (the receipt, under
 * the reader's --service) or, at a gate, TICKET. */
int rdr_app_offline(struct rdr *r)
{
	struct rdr_rec rec[2];
	uint8_t token[TOKEN_LEN] = { 0 };
	const uint8_t *nonce = token + 17;
	uint32_t amount = 0, service;
	struct rdr_line l;
	size_t n = 1;
	int money = r->cfg->app == RDR_APP_PAY || r->cfg->app == RDR_APP_CHECKOUT;
	int rc;

	if (r->cfg->app == RDR_APP_REFUND) {
		rdr_say(r, "reader: refused: refund needs the server");
		return TB_E_RDR_REFUSED;
	}
	if (r->st->n + 2 > RDR_OUTBOX_MAX) {
		rdr_say(r, "reader: refused: outbox full (report it online first)");
		return TB_E_RDR_FULL;
	}
	if ((rc = flag_read(r, token)))
		return rc;
	service = get32(token + 9);
	if (money) {
		amount = app_amount(r->cfg);
		if (amount == 0 || amount > get32(token + 33)) {
			rdr_say(r, "reader: refused: amount above the offline limit");
			return TB_E_RDR_REFUSED;
		}
	}
	if ((rc = flag_consume(r, nonce)))
		return rc;
	rec_new(r, &rec[0], RMSG_K_FLAG, service);
	memcpy(rec[0].body, nonce, 16);
	put32(rec[0].body + 16, amount);
	rec[0].body_n = RMSG_FLAG_LEN_NO_RECEIPT;
	if (money) {
		/* The flag's use and the payment are two records: the payment belongs to the
		 * reader's e-money service (--service), the flag to the service that set it. */
		rec_new(r, &rec[1], RMSG_K_PAY, r->cfg->service != 0 ? r->cfg->service : service);
		if ((rc = debit(r, amount, rec[1].body)))
			return rc;
		rec[1].body_n = RMSG_RECEIPT_LEN;
		n = 2;
	} else if (r->cfg->app == RDR_APP_GATE) {
		rec_new(r, &rec[1], RMSG_K_TICKET, gate_service(r));
		rec[1].body_n = TICKET_LEN;
		if ((rc = ticket_use(r, gate_service(r), rec[1].body)))
			return rc;
		n = 2;
	}
	if ((rc = rdr_outbox_add(r, rec, n)))
		return rc;
	switch (r->cfg->app) {
	case RDR_APP_PAY:
	case RDR_APP_CHECKOUT:
		line_start(&l, "reader: paid ");
		line_u32(&l, amount);
		line_str(&l, " (offline flag)");
		rdr_say_line(r, &l);
		break;
	case RDR_APP_GATE:
		rdr_say(r, "reader: ticket ok (offline flag)");
		break;
	default:
		rdr_say(r, "reader: identity confirmed (offline flag)");
	}
	return 0;
}
