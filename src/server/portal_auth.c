/* portal_auth.c - who may see the portal: MAC'd one-time login links, the fixed session
 * table with its timeouts and CSRF tokens, and the operator's hashed unlock codes.
 * What stays true: a link works once and never after a restart; every secret compare
 * is ct_eq(); a refused check changes nothing but the count of wrong unlock codes. */
#include <string.h>

#include "bytes.h"
#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "hex.h"
#include "portal.h"
#include "rules.h"

#define LINK_BODY (PORTAL_LINK_BYTES - PORTAL_MAC_LEN)
#define LINK_SKEW_MS 60000 /* a link may come from a clock up to a minute ahead */

void portal_init(struct portal *p, const uint8_t key[PORTAL_KEY_LEN], int64_t start_ms)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->key, key, PORTAL_KEY_LEN);
	p->start_ms = start_ms;
}

void portal_wipe(struct portal *p)
{
	ct_wipe(p, sizeof(*p));
}

/* ------------------------------------------------------------- links --- */

static int link_mac(const uint8_t key[PORTAL_KEY_LEN], const uint8_t *body,
		    uint8_t mac[PORTAL_MAC_LEN])
{
	return crypto_cmac(key, PORTAL_KEY_LEN, body, LINK_BODY, mac) == 0 ? 0 : TB_E_CRYPTO;
}

int portal_link_make(const uint8_t key[PORTAL_KEY_LEN], uint8_t role, const uint8_t se[DB_SERIAL_LEN],
		     int64_t now_ms, uint32_t ttl_s, char out[PORTAL_LINK_HEX])
{
	static const uint8_t none[DB_SERIAL_LEN] = { 0 };
	uint8_t buf[PORTAL_LINK_BYTES], nonce[PORTAL_NONCE_LEN];
	struct wr w = wr_init(buf, sizeof(buf));
	int rc = TB_E_INVAL;

	if ((role != PORTAL_CUSTOMER && role != PORTAL_OPERATOR) || ttl_s == 0 ||
	    ttl_s > PORTAL_LINK_TTL_MAX || now_ms < 0 || (role == PORTAL_CUSTOMER && se == NULL))
		return TB_E_INVAL;
	if (crypto_random(nonce, sizeof(nonce)) != 0)
		return TB_E_CRYPTO;
	if (wr_u8(&w, role) != 0 ||
	    wr_bytes(&w, role == PORTAL_CUSTOMER ? se : none, DB_SERIAL_LEN) != 0 ||
	    wr_u64be(&w, (uint64_t)now_ms) != 0 || wr_u16be(&w, (uint16_t)ttl_s) != 0 ||
	    wr_bytes(&w, nonce, sizeof(nonce)) != 0)
		goto out;
	rc = link_mac(key, buf, buf + LINK_BODY);
	if (rc == 0)
		rc = hex_encode(buf, sizeof(buf), HEX_PUBLIC, out, PORTAL_LINK_HEX);
out:
	ct_wipe(buf, sizeof(buf));
	return rc;
}

/* Marks nonce used until until_ms: 0, TB_E_PORTAL_LINK (seen before), TB_E_PORTAL_FULL. */
static int link_consume(struct portal *p, const uint8_t nonce[PORTAL_NONCE_LEN], int64_t until_ms,
			int64_t now_ms)
{
	struct portal_used *free_slot = NULL;

	for (size_t i = 0; i < PORTAL_USED_MAX; i++) {
		struct portal_used *u = &p->used[i];

		if (u->until_ms != 0 && u->until_ms < now_ms)
			u->until_ms = 0; /* expired: its link is refused by its time anyway */
		if (u->until_ms == 0) {
			if (free_slot == NULL)
				free_slot = u;
			continue;
		}
		if (ct_eq(u->nonce, nonce, PORTAL_NONCE_LEN))
			return TB_E_PORTAL_LINK;
	}
	if (free_slot == NULL)
		return TB_E_PORTAL_FULL;
	memcpy(free_slot->nonce, nonce, PORTAL_NONCE_LEN);
	free_slot->until_ms = until_ms;
	return 0;
}

int portal_link_use(struct portal *p, const char *tok, int64_t now_ms, uint8_t *role,
		    uint8_t se[DB_SERIAL_LEN])
{
	uint8_t buf[PORTAL_LINK_BYTES], mac[PORTAL_MAC_LEN], r = 0, nonce[PORTAL_NONCE_LEN];
	uint8_t serial[DB_SERIAL_LEN];
	struct rd rd;
	uint64_t issued = 0;
	uint16_t ttl = 0;
	size_t n = 0;
	int rc = TB_E_PORTAL_LINK;

	if (tok == NULL || strlen(tok) != PORTAL_LINK_HEX - 1 ||
	    hex_decode(tok, PORTAL_LINK_HEX - 1, buf, sizeof(buf), &n) != 0 || n != sizeof(buf))
		goto out;
	if (link_mac(p->key, buf, mac) != 0 || !ct_eq(mac, buf + LINK_BODY, PORTAL_MAC_LEN))
		goto out;
	rd = rd_init(buf, LINK_BODY);
	if (rd_u8(&rd, &r) != 0 || rd_copy(&rd, serial, DB_SERIAL_LEN) != 0 ||
	    rd_u64be(&rd, &issued) != 0 || rd_u16be(&rd, &ttl) != 0 ||
	    rd_copy(&rd, nonce, PORTAL_NONCE_LEN) != 0 || rd_end(&rd) != 0)
		goto out;
	if ((r != PORTAL_CUSTOMER && r != PORTAL_OPERATOR) || ttl == 0 || ttl > PORTAL_LINK_TTL_MAX ||
	    issued > (uint64_t)INT64_MAX / 2 || (int64_t)issued < p->start_ms ||
	    (int64_t)issued > now_ms + LINK_SKEW_MS ||
	    now_ms >= (int64_t)issued + (int64_t)ttl * 1000)
		goto out;
	rc = link_consume(p, nonce, (int64_t)issued + (int64_t)ttl * 1000, now_ms);
	if (rc != 0)
		goto out;
	*role = r;
	memcpy(se, serial, DB_SERIAL_LEN);
out:
	ct_wipe(buf, sizeof(buf));
	ct_wipe(mac, sizeof(mac));
	return rc;
}

/* ---------------------------------------------------------- sessions --- */

static int sess_expired(const struct portal_sess *s, int64_t now)
{
	return now - s->last >= PORTAL_IDLE_S || now - s->created >= PORTAL_ABS_S || now < s->created;
}

int portal_sess_new(struct portal *p, uint8_t role, const uint8_t se[DB_SERIAL_LEN], int64_t now,
		    struct portal_sess **out)
{
	struct portal_sess *s = NULL, t;

	if ((role != PORTAL_CUSTOMER && role != PORTAL_OPERATOR) || se == NULL)
		return TB_E_INVAL;
	for (size_t i = 0; i < PORTAL_SESSIONS_MAX && s == NULL; i++)
		if (!p->sess[i].in_use || sess_expired(&p->sess[i], now))
			s = &p->sess[i];
	if (s == NULL)
		return TB_E_PORTAL_FULL;
	memset(&t, 0, sizeof(t));
	if (crypto_random(t.id, sizeof(t.id)) != 0 || crypto_random(t.csrf, sizeof(t.csrf)) != 0) {
		ct_wipe(&t, sizeof(t));
		return TB_E_CRYPTO;
	}
	t.in_use = 1;
	t.role = role;
	if (role == PORTAL_CUSTOMER)
		memcpy(t.se, se, DB_SERIAL_LEN);
	t.created = t.last = now;
	*s = t;
	ct_wipe(&t, sizeof(t));
	*out = s;
	return 0;
}

int portal_sess_find(struct portal *p, const char *hex, int64_t now, struct portal_sess **out)
{
	uint8_t id[PORTAL_ID_LEN];
	struct portal_sess *found = NULL;
	size_t n = 0;

	if (hex == NULL || strlen(hex) != PORTAL_ID_HEX - 1 ||
	    hex_decode(hex, PORTAL_ID_HEX - 1, id, sizeof(id), &n) != 0 || n != sizeof(id))
		return TB_E_PORTAL_SESSION;
	for (size_t i = 0; i < PORTAL_SESSIONS_MAX; i++) {
		struct portal_sess *s = &p->sess[i];

		/* every slot is compared: the time does not tell which one matched */
		if (s->in_use && ct_eq(s->id, id, PORTAL_ID_LEN))
			found = s;
	}
	ct_wipe(id, sizeof(id));
	if (found == NULL)
		return TB_E_PORTAL_SESSION;
	if (sess_expired(found, now)) {
		portal_sess_end(found);
		return TB_E_PORTAL_SESSION;
	}
	found->last = now;
	*out = found;
	return 0;
}

void portal_sess_end(struct portal_sess *s)
{
	ct_wipe(s, sizeof(*s));
}

int portal_csrf_ok(const struct portal_sess *s, const char *hex)
{
	uint8_t t[PORTAL_ID_LEN];
	size_t n = 0;
	int ok;

	if (hex == NULL || strlen(hex) != PORTAL_ID_HEX - 1 ||
	    hex_decode(hex, PORTAL_ID_HEX - 1, t, sizeof(t), &n) != 0 || n != sizeof(t))
		return 0;
	ok = ct_eq(t, s->csrf, PORTAL_ID_LEN);
	ct_wipe(t, sizeof(t));
	return ok;
}

/* ------------------------------------------------------ unlock codes --- */

static int code_hash(const uint8_t salt[DB_CODE_SALT_LEN], const uint8_t se[DB_SERIAL_LEN],
		     const char digits[PORTAL_CODE_DIGITS], uint8_t out[DB_CODE_HASH_LEN])
{
	uint8_t msg[DB_CODE_SALT_LEN + DB_SERIAL_LEN + PORTAL_CODE_DIGITS];
	int rc;

	memcpy(msg, salt, DB_CODE_SALT_LEN);
	memcpy(msg + DB_CODE_SALT_LEN, se, DB_SERIAL_LEN);
	memcpy(msg + DB_CODE_SALT_LEN + DB_SERIAL_LEN, digits, PORTAL_CODE_DIGITS);
	rc = crypto_sha256(msg, sizeof(msg), out) == 0 ? 0 : TB_E_CRYPTO;
	ct_wipe(msg, sizeof(msg));
	return rc;
}

int portal_code_new(const uint8_t se[DB_SERIAL_LEN], int64_t now, uint32_t ttl_s,
		    char digits[PORTAL_CODE_DIGITS + 1], struct db_unlock_code *out)
{
	uint8_t rnd[PORTAL_CODE_DIGITS * 2];
	struct db_unlock_code c;
	char d[PORTAL_CODE_DIGITS + 1];
	int rc = TB_E_CRYPTO;

	if (ttl_s == 0 || ttl_s > 86400u)
		return TB_E_INVAL;
	memset(&c, 0, sizeof(c));
	if (crypto_random(rnd, sizeof(rnd)) != 0 || crypto_random(c.salt, sizeof(c.salt)) != 0)
		goto out;
	/* 16 bits per digit, mod 10: a bias below 1e-4 per digit */
	for (size_t i = 0; i < PORTAL_CODE_DIGITS; i++)
		d[i] = (char)('0' + (((unsigned)rnd[2 * i] << 8 | rnd[2 * i + 1]) % 10u));
	d[PORTAL_CODE_DIGITS] = '\0';
	c.expires = now + (int64_t)ttl_s;
	c.tries = 0;
	rc = code_hash(c.salt, se, d, c.hash);
	if (rc == 0) {
		memcpy(digits, d, sizeof(d));
		*out = c;
	}
out:
	ct_wipe(rnd, sizeof(rnd));
	ct_wipe(d, sizeof(d));
	ct_wipe(&c, sizeof(c));
	return rc;
}

int portal_code_check(struct db *db, const uint8_t se[DB_SERIAL_LEN], const char *typed,
		      int64_t now, uint32_t *tries_left)
{
	struct db_unlock_code c;
	uint8_t h[DB_CODE_HASH_LEN];
	char d[PORTAL_CODE_DIGITS];
	size_t n = 0;
	int rc;

	*tries_left = 0;
	/* digits only; spaces a person may type between groups are dropped */
	for (const char *s = typed != NULL ? typed : ""; *s != '\0'; s++) {
		if (*s == ' ' || *s == '-')
			continue;
		if (*s < '0' || *s > '9' || n == PORTAL_CODE_DIGITS) {
			n = 0;
			break;
		}
		d[n++] = *s;
	}
	rc = db->ops->code_get(db, se, &c);
	if (rc == TB_E_DB_NOT_FOUND)
		rc = TB_E_PORTAL_CODE;
	if (rc != 0)
		goto out;
	if (c.tries >= PORTAL_CODE_TRIES) {
		rc = TB_E_PORTAL_TRIES;
		goto out;
	}
	if (now >= c.expires) {
		rc = TB_E_PORTAL_CODE;
		goto out;
	}
	if (n == PORTAL_CODE_DIGITS && (rc = code_hash(c.salt, se, d, h)) != 0)
		goto out;
	if (n == PORTAL_CODE_DIGITS && ct_eq(h, c.hash, sizeof(h))) {
		rc = db->ops->code_del(db, se);
		goto out;
	}
	c.tries++;
	rc = db->ops->code_put(db, se, &c);
	if (rc == 0) {
		*tries_left = PORTAL_CODE_TRIES - c.tries;
		rc = c.tries >= PORTAL_CODE_TRIES ? TB_E_PORTAL_TRIES : TB_E_PORTAL_CODE;
	}
out:
	ct_wipe(&c, sizeof(c));
	ct_wipe(h, sizeof(h));
	ct_wipe(d, sizeof(d));
	return rc;
}
