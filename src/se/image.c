/* image.c - the records of the se's persistent image: encoding, strict decoding, the
 * invariants, and the one way to change them (img_commit: a journal transaction).
 * What stays true: a record is only ever written whole, through the journal, and a
 * loaded mirror always passed img_check(). */
#include <string.h>

#include "bytes.h"
#include "ct.h"
#include "err.h"
#include "image.h"

#define IMG_KIND_KEYSET 'K'
#define IMG_KIND_PURSE 'P'
#define IMG_KIND_WALLET 'W'
#define IMG_KIND_FLAG 'F'
#define IMG_KIND_TICKET 'T'
#define IMG_VERSION 1u
#define IMG_META_LEN 16u     /* key set meta: bytes 0..15 */
#define IMG_WALLET_META 64u  /* wallet meta: bytes 0..63 */
#define IMG_TICKET_AT 4u
#define IMG_TICKET_SIZE 28u

static const uint8_t img_magic[4] = { 'T', 'B', 'S', 'E' };

_Static_assert(IMG_PAGES <= SE_DATA_PAGES, "records fit the data pages");
_Static_assert(IMG_KEYS_AT + IMG_KEYS_LEN <= SE_PAGE_SIZE, "keys fit a page");
_Static_assert(IMG_PAUTH_KEY_AT + SE_PAUTH_KEY_LEN <= SE_PAGE_SIZE, "pauth key fits");
_Static_assert(2 + SE_FLAG_LEN <= SE_PAGE_SIZE, "flag fits a page");
_Static_assert(IMG_TICKET_AT + IMG_TICKETS_PER_PAGE * IMG_TICKET_SIZE <= SE_PAGE_SIZE,
	       "tickets fit a page");
_Static_assert(SE_TICKET_MAX == 2 * IMG_TICKETS_PER_PAGE, "two ticket pages");

static int img_same(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (uint8_t)(a[i] ^ b[i]);
	return d == 0;
}

/* ------------------------------------------------------------- encoding --- */

/* Writes the record of page pg from m over buf. Secret regions of buf are kept when
 * the record holds a secret, zeroed when it does not. The writers cannot run out of
 * room: every record fits its page (static asserts above). */
static void img_encode(const struct se_image *m, unsigned pg, uint8_t buf[SE_PAGE_SIZE])
{
	struct wr w = wr_init(buf, SE_PAGE_SIZE);

	if (pg >= IMG_PG_KEYSET && pg < IMG_PG_KEYSET + SE_KEYSET_MAX) {
		const struct se_keyset_meta *k = &m->ks[pg - IMG_PG_KEYSET];

		memset(buf, 0, IMG_META_LEN);
		memset(buf + IMG_KEYS_AT + IMG_KEYS_LEN, 0, SE_PAGE_SIZE - IMG_KEYS_AT - IMG_KEYS_LEN);
		if (!k->present)
			memset(buf + IMG_KEYS_AT, 0, IMG_KEYS_LEN);
		(void)wr_u8(&w, IMG_KIND_KEYSET);
		(void)wr_u8(&w, k->present);
		(void)wr_u8(&w, k->kvn);
		(void)wr_u8(&w, k->role);
		(void)wr_u8(&w, k->keylen);
		(void)wr_u8(&w, k->failures);
		(void)wr_u8(&w, k->locked);
		(void)wr_u24be(&w, k->counter);
		return;
	}
	if (pg == IMG_PG_WALLET) {
		memset(buf, 0, IMG_WALLET_META);
		memset(buf + IMG_PAUTH_KEY_AT + SE_PAUTH_KEY_LEN, 0,
		       SE_PAGE_SIZE - IMG_PAUTH_KEY_AT - SE_PAUTH_KEY_LEN);
		if (!m->pauth)
			memset(buf + IMG_PAUTH_KEY_AT, 0, SE_PAUTH_KEY_LEN);
		(void)wr_u8(&w, IMG_KIND_WALLET);
		(void)wr_u8(&w, m->locked);
		(void)wr_u16be(&w, m->disabled);
		(void)wr_u8(&w, m->permit);
		(void)wr_u32be(&w, m->permit_service);
		(void)wr_u32be(&w, m->permit_expiry);
		(void)wr_u8(&w, m->pauth);
		(void)wr_bytes(&w, m->pauth_id, SE_PAUTH_ID_LEN);
		return;
	}
	memset(buf, 0, SE_PAGE_SIZE);
	switch (pg) {
	case IMG_PG_IDENT:
		(void)wr_bytes(&w, img_magic, sizeof(img_magic));
		(void)wr_u8(&w, IMG_VERSION);
		(void)wr_bytes(&w, m->serial, SE_SERIAL_LEN);
		(void)wr_u8(&w, m->personalised);
		(void)wr_u32be(&w, m->max_balance);
		(void)wr_u8(&w, m->lockout_limit);
		break;
	case IMG_PG_PURSE:
		(void)wr_u8(&w, IMG_KIND_PURSE);
		(void)wr_u32be(&w, m->balance);
		(void)wr_u32be(&w, m->tx_counter);
		(void)wr_u8(&w, m->last_kind);
		(void)wr_u32be(&w, m->last_amount);
		break;
	case IMG_PG_FLAG:
		(void)wr_u8(&w, IMG_KIND_FLAG);
		(void)wr_u8(&w, m->flag);
		(void)wr_bytes(&w, m->flag_token, SE_FLAG_LEN);
		break;
	default: {
		unsigned first = (pg - IMG_PG_TICKET) * IMG_TICKETS_PER_PAGE;

		(void)wr_u8(&w, IMG_KIND_TICKET);
		(void)wr_u8(&w, (uint8_t)(pg - IMG_PG_TICKET));
		for (unsigned i = 0; i < IMG_TICKETS_PER_PAGE; i++) {
			const struct se_ticket *t = &m->tickets[first + i];

			w.len = IMG_TICKET_AT + i * IMG_TICKET_SIZE;
			(void)wr_u8(&w, t->used);
			(void)wr_bytes(&w, t->id, SE_TICKET_ID_LEN);
			(void)wr_u32be(&w, t->service);
			(void)wr_u32be(&w, t->not_before);
			(void)wr_u32be(&w, t->not_after);
			(void)wr_u8(&w, t->uses);
		}
		break;
	}
	}
}

/* ------------------------------------------------------------- decoding --- */

static int bool_ok(uint8_t v) { return v <= 1; }

static int dec_ident(struct rd *r, struct se_image *m)
{
	const uint8_t *magic;
	uint8_t ver;

	if (rd_bytes(r, sizeof(img_magic), &magic) || !img_same(magic, img_magic, sizeof(img_magic)) ||
	    rd_u8(r, &ver) || ver != IMG_VERSION || rd_copy(r, m->serial, SE_SERIAL_LEN) ||
	    rd_u8(r, &m->personalised) || rd_u32be(r, &m->max_balance) ||
	    rd_u8(r, &m->lockout_limit))
		return TB_E_SE_IMAGE;
	return bool_ok(m->personalised) && m->lockout_limit > 0 ? 0 : TB_E_SE_IMAGE;
}

static int dec_keyset(struct rd *r, struct se_keyset_meta *k)
{
	uint8_t kind;

	if (rd_u8(r, &kind) || kind != IMG_KIND_KEYSET || rd_u8(r, &k->present) ||
	    rd_u8(r, &k->kvn) || rd_u8(r, &k->role) || rd_u8(r, &k->keylen) ||
	    rd_u8(r, &k->failures) || rd_u8(r, &k->locked) || rd_u24be(r, &k->counter))
		return TB_E_SE_IMAGE;
	if (!bool_ok(k->present) || !bool_ok(k->locked))
		return TB_E_SE_IMAGE;
	if (!k->present)
		return (k->kvn | k->role | k->keylen | k->failures | k->locked) == 0 && k->counter == 0
			       ? 0
			       : TB_E_SE_IMAGE;
	if (k->role < SE_ROLE_SERVER || k->role > SE_ROLE_DEFAULT ||
	    (k->keylen != 16 && k->keylen != 24 && k->keylen != 32) || k->kvn == 0x00 ||
	    ((k->role == SE_ROLE_DEFAULT) != (k->kvn == SE_DEFAULT_KVN)))
		return TB_E_SE_IMAGE;
	return 0;
}

static int dec_purse(struct rd *r, struct se_image *m)
{
	uint8_t kind;

	if (rd_u8(r, &kind) || kind != IMG_KIND_PURSE || rd_u32be(r, &m->balance) ||
	    rd_u32be(r, &m->tx_counter) || rd_u8(r, &m->last_kind) || rd_u32be(r, &m->last_amount))
		return TB_E_SE_IMAGE;
	return m->last_kind <= 2 ? 0 : TB_E_SE_IMAGE;
}

static int dec_wallet(struct rd *r, struct se_image *m)
{
	uint8_t kind;

	if (rd_u8(r, &kind) || kind != IMG_KIND_WALLET || rd_u8(r, &m->locked) ||
	    rd_u16be(r, &m->disabled) || rd_u8(r, &m->permit) || rd_u32be(r, &m->permit_service) ||
	    rd_u32be(r, &m->permit_expiry) || rd_u8(r, &m->pauth) ||
	    rd_copy(r, m->pauth_id, SE_PAUTH_ID_LEN))
		return TB_E_SE_IMAGE;
	return bool_ok(m->locked) && bool_ok(m->permit) && bool_ok(m->pauth) ? 0 : TB_E_SE_IMAGE;
}

static int dec_flag(struct rd *r, struct se_image *m)
{
	uint8_t kind;

	if (rd_u8(r, &kind) || kind != IMG_KIND_FLAG || rd_u8(r, &m->flag) ||
	    rd_copy(r, m->flag_token, SE_FLAG_LEN))
		return TB_E_SE_IMAGE;
	return bool_ok(m->flag) ? 0 : TB_E_SE_IMAGE;
}

static int dec_tickets(const uint8_t buf[SE_PAGE_SIZE], unsigned page_index, struct se_image *m)
{
	if (buf[0] != IMG_KIND_TICKET || buf[1] != page_index)
		return TB_E_SE_IMAGE;
	for (unsigned i = 0; i < IMG_TICKETS_PER_PAGE; i++) {
		struct se_ticket *t = &m->tickets[page_index * IMG_TICKETS_PER_PAGE + i];
		struct rd r = rd_init(buf + IMG_TICKET_AT + i * IMG_TICKET_SIZE, IMG_TICKET_SIZE);

		if (rd_u8(&r, &t->used) || rd_copy(&r, t->id, SE_TICKET_ID_LEN) ||
		    rd_u32be(&r, &t->service) || rd_u32be(&r, &t->not_before) ||
		    rd_u32be(&r, &t->not_after) || rd_u8(&r, &t->uses) || !bool_ok(t->used))
			return TB_E_SE_IMAGE;
	}
	return 0;
}

static int img_decode(const uint8_t buf[SE_PAGE_SIZE], unsigned pg, struct se_image *m)
{
	struct rd r = rd_init(buf, SE_PAGE_SIZE);

	if (pg == IMG_PG_IDENT)
		return dec_ident(&r, m);
	if (pg >= IMG_PG_KEYSET && pg < IMG_PG_KEYSET + SE_KEYSET_MAX)
		return dec_keyset(&r, &m->ks[pg - IMG_PG_KEYSET]);
	if (pg == IMG_PG_PURSE)
		return dec_purse(&r, m);
	if (pg == IMG_PG_WALLET)
		return dec_wallet(&r, m);
	if (pg == IMG_PG_FLAG)
		return dec_flag(&r, m);
	return dec_tickets(buf, pg - IMG_PG_TICKET, m);
}

int img_keyset_find(const struct se_image *img, uint8_t kvn)
{
	for (int s = 0; s < (int)SE_KEYSET_MAX; s++)
		if (img->ks[s].present && img->ks[s].kvn == kvn)
			return s;
	return -1;
}

int img_check(const struct se_image *img)
{
	int have_default = 0;

	if (img->balance > img->max_balance || img->lockout_limit == 0)
		return TB_E_SE_IMAGE;
	for (unsigned s = 0; s < SE_KEYSET_MAX; s++) {
		const struct se_keyset_meta *k = &img->ks[s];

		if (!k->present)
			continue;
		if (img_keyset_find(img, k->kvn) != (int)s || k->counter > SCP_COUNTER_LAST)
			return TB_E_SE_IMAGE;
		have_default |= k->role == SE_ROLE_DEFAULT;
	}
	if (have_default == img->personalised)
		return TB_E_SE_IMAGE; /* the factory set exists exactly until personalisation */
	for (unsigned i = 0; i < SE_TICKET_MAX; i++) {
		const struct se_ticket *t = &img->tickets[i];

		if (!t->used)
			continue;
		if (t->not_before > t->not_after)
			return TB_E_SE_IMAGE;
		for (unsigned k = i + 1; k < SE_TICKET_MAX; k++)
			if (img->tickets[k].used &&
			    img_same(img->tickets[k].id, t->id, SE_TICKET_ID_LEN))
				return TB_E_SE_IMAGE;
	}
	return 0;
}

int img_load(struct jnl *j, struct se_image *img)
{
	uint8_t buf[SE_PAGE_SIZE];
	struct se_image m;
	int rc = 0;

	memset(&m, 0, sizeof(m));
	for (unsigned pg = 0; pg < IMG_PAGES && rc == 0; pg++) {
		if ((rc = jnl_read(j, (uint16_t)pg, buf)) == 0)
			rc = img_decode(buf, pg, &m);
	}
	if (rc == 0)
		rc = img_check(&m);
	if (rc == 0)
		*img = m;
	ct_wipe(buf, sizeof(buf));
	ct_wipe(&m, sizeof(m));
	return rc;
}

/* ------------------------------------------------------------- changing --- */

int img_commit(struct jnl *j, const struct se_image *next, const struct img_patch *patches,
	       size_t npatch)
{
	uint8_t cur[SE_PAGE_SIZE], buf[SE_PAGE_SIZE];
	int rc;

	for (size_t i = 0; i < npatch; i++)
		if (patches[i].page >= IMG_PAGES || patches[i].off + patches[i].n > SE_PAGE_SIZE)
			return TB_E_INVAL;
	if ((rc = jnl_begin(j)) != 0)
		return rc;
	for (unsigned pg = 0; pg < IMG_PAGES; pg++) {
		if ((rc = jnl_read(j, (uint16_t)pg, cur)) != 0)
			goto out;
		memcpy(buf, cur, SE_PAGE_SIZE);
		img_encode(next, pg, buf);
		for (size_t i = 0; i < npatch; i++)
			if (patches[i].page == pg)
				memcpy(buf + patches[i].off, patches[i].p, patches[i].n);
		if (!img_same(buf, cur, SE_PAGE_SIZE) && (rc = jnl_write(j, (uint16_t)pg, buf)) != 0)
			goto out;
	}
	rc = jnl_commit(j);
out:
	if (rc != 0)
		(void)jnl_abort(j); /* refused (nothing open) after a store error: fine */
	ct_wipe(cur, sizeof(cur));
	ct_wipe(buf, sizeof(buf));
	return rc;
}

int img_read_keys(struct jnl *j, unsigned slot, struct scp_keys *k)
{
	uint8_t buf[SE_PAGE_SIZE];
	struct se_keyset_meta meta;
	struct rd r;
	int rc;

	if (slot >= SE_KEYSET_MAX)
		return TB_E_INVAL;
	if ((rc = jnl_read(j, (uint16_t)(IMG_PG_KEYSET + slot), buf)) != 0)
		goto out;
	r = rd_init(buf, SE_PAGE_SIZE);
	if ((rc = dec_keyset(&r, &meta)) != 0)
		goto out;
	if (!meta.present) {
		rc = TB_E_SCP_KEYSET;
		goto out;
	}
	memcpy(k->enc, buf + IMG_KEYS_AT, SCP_KEY_MAX);
	memcpy(k->mac, buf + IMG_KEYS_AT + SCP_KEY_MAX, SCP_KEY_MAX);
	memcpy(k->dek, buf + IMG_KEYS_AT + 2 * SCP_KEY_MAX, SCP_KEY_MAX);
	k->len = meta.keylen;
out:
	ct_wipe(buf, sizeof(buf));
	return rc;
}

int img_read_pauth_key(struct jnl *j, uint8_t key[SE_PAUTH_KEY_LEN])
{
	uint8_t buf[SE_PAGE_SIZE];
	int rc;

	if ((rc = jnl_read(j, IMG_PG_WALLET, buf)) == 0)
		memcpy(key, buf + IMG_PAUTH_KEY_AT, SE_PAUTH_KEY_LEN);
	ct_wipe(buf, sizeof(buf));
	return rc;
}

/* ------------------------------------------------------------ formatting --- */

/* Writes pages[0..n) of m, each over a zeroed page (keys into the first key set slot
 * when given), as one transaction. */
static int img_write_pages(struct jnl *j, const struct se_image *m, const unsigned *pages,
			   size_t n, const uint8_t keys[IMG_KEYS_LEN])
{
	uint8_t buf[SE_PAGE_SIZE];
	int rc;

	if ((rc = jnl_begin(j)) != 0)
		return rc;
	for (size_t i = 0; i < n && rc == 0; i++) {
		memset(buf, 0, sizeof(buf));
		if (pages[i] == IMG_PG_KEYSET && keys != NULL)
			memcpy(buf + IMG_KEYS_AT, keys, IMG_KEYS_LEN);
		img_encode(m, pages[i], buf);
		rc = jnl_write(j, (uint16_t)pages[i], buf);
	}
	if (rc == 0)
		rc = jnl_commit(j);
	else
		(void)jnl_abort(j);
	ct_wipe(buf, sizeof(buf));
	return rc;
}

int img_format(const struct se_store *st, const uint8_t serial[SE_SERIAL_LEN])
{
	static const unsigned first[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	static const unsigned last[] = { 9, IMG_PG_IDENT };
	uint8_t zero[SE_PAGE_SIZE], keys[IMG_KEYS_LEN];
	struct se_image m;
	struct jnl j;
	int rc;

	memset(&m, 0, sizeof(m));
	memcpy(m.serial, serial, SE_SERIAL_LEN);
	m.lockout_limit = SE_DEFAULT_LOCKOUT;
	m.max_balance = SE_DEFAULT_MAX_BALANCE;
	m.ks[0].present = 1;
	m.ks[0].kvn = SE_DEFAULT_KVN;
	m.ks[0].role = SE_ROLE_DEFAULT;
	m.ks[0].keylen = 16;
	memset(keys, 0, sizeof(keys));
	for (unsigned i = 0; i < 16; i++) /* 40 41 .. 4F as Key-ENC, Key-MAC and Key-DEK */
		keys[i] = keys[SCP_KEY_MAX + i] = keys[2 * SCP_KEY_MAX + i] = (uint8_t)(0x40 + i);
	memset(zero, 0, sizeof(zero));
	jnl_init(&j, st);
	if ((rc = jnl_recover(&j)) != 0 || (rc = jnl_begin(&j)) != 0)
		goto out;
	if ((rc = jnl_write(&j, IMG_PG_IDENT, zero)) != 0 || (rc = jnl_commit(&j)) != 0)
		goto out;
	if ((rc = img_write_pages(&j, &m, first, 8, keys)) == 0)
		rc = img_write_pages(&j, &m, last, 2, NULL);
out:
	ct_wipe(keys, sizeof(keys));
	return rc;
}

int img_keyset_place(struct se_image *m, uint8_t kvn, uint8_t role, uint8_t keylen, int *slot)
{
	int s = img_keyset_find(m, kvn);

	if (s < 0 && !m->personalised)
		s = img_keyset_find(m, SE_DEFAULT_KVN);
	for (int i = 0; s < 0 && i < (int)SE_KEYSET_MAX; i++)
		if (!m->ks[i].present)
			s = i;
	if (s < 0)
		return TB_E_SE_FULL;
	if (role != SE_ROLE_DEFAULT && !m->personalised) {
		int d = img_keyset_find(m, SE_DEFAULT_KVN);

		if (d >= 0)
			memset(&m->ks[d], 0, sizeof(m->ks[d]));
		m->personalised = 1;
	}
	memset(&m->ks[s], 0, sizeof(m->ks[s]));
	m->ks[s].present = 1;
	m->ks[s].kvn = kvn;
	m->ks[s].role = role;
	m->ks[s].keylen = keylen;
	*slot = s;
	return 0;
}
