/* scp03_sm.c - SCP03 secure messaging shared by both roles (Amendment D 6.2.4-6.2.7):
 * padding, counter ICVs, C-MAC / R-MAC, and wrapping / unwrapping of one APDU.
 * MACs are checked with ct_eq() before anything is decrypted; the session (chain,
 * counter) advances only when the whole call succeeds; scratch plaintext is wiped. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "scp03_int.h"

/* Room the card needs in front of decrypted command data: the longest plain header. */
#define SCP_PLAIN_HDR_MAX 7u

int scp_sw_protected(uint16_t sw)
{
	unsigned sw1 = (unsigned)sw >> 8;

	return sw == 0x9000u || sw1 == 0x62u || sw1 == 0x63u;
}

void scp_counter_next(const uint8_t cur[SCP_BLOCK], uint8_t next[SCP_BLOCK])
{
	unsigned carry = 1;

	for (size_t k = SCP_BLOCK; k-- > 0;) {
		unsigned v = (unsigned)cur[k] + carry;

		next[k] = (uint8_t)v;
		carry = v >> 8;
	}
}

int scp_icv(const struct scp_session *s, const uint8_t counter[SCP_BLOCK], int response,
	    uint8_t icv[SCP_BLOCK])
{
	uint8_t block[SCP_BLOCK];
	int rc;

	memcpy(block, counter, SCP_BLOCK);
	if (response)
		block[0] = 0x80;
	rc = crypto_aes_ecb_encrypt(s->s_enc, s->keylen, block, icv);
	ct_wipe(block, sizeof(block));
	return rc;
}

size_t scp_padded_len(size_t n)
{
	return (n / SCP_BLOCK + 1) * SCP_BLOCK;
}

void scp_pad(uint8_t *p, size_t n)
{
	size_t end = scp_padded_len(n);

	p[n] = 0x80;
	memset(p + n + 1, 0, end - n - 1);
}

int scp_unpad(const uint8_t *p, size_t n, size_t *m)
{
	if (n == 0 || n % SCP_BLOCK != 0)
		return TB_E_SCP_PADDING;
	/* The marker sits in the last block: at most 15 zeros follow it. */
	for (size_t k = n; k-- > n - SCP_BLOCK;) {
		if (p[k] == 0x80) {
			*m = k;
			return 0;
		}
		if (p[k] != 0x00)
			break;
	}
	return TB_E_SCP_PADDING;
}

int scp_extended(size_t lc, size_t ne)
{
	return lc > APDU_MAX_NC_SHORT || ne > APDU_MAX_NE_SHORT;
}

/* CLA INS P1 P2 Lc as it enters the C-MAC (and is sent): Lc 1 byte, or 00 HH LL. */
static size_t scp_mac_header(uint8_t hdr[SCP_PLAIN_HDR_MAX], uint8_t cla, const struct apdu *a,
			     size_t lc, int ext)
{
	hdr[0] = cla;
	hdr[1] = a->ins;
	hdr[2] = a->p1;
	hdr[3] = a->p2;
	if (!ext) {
		hdr[4] = (uint8_t)lc;
		return 5;
	}
	hdr[4] = 0x00;
	hdr[5] = (uint8_t)(lc >> 8);
	hdr[6] = (uint8_t)lc;
	return 7;
}

/* Le after a data field: 1 byte (256 -> 00) or 2 bytes (65536 -> 0000); 00 HH LL
 * when an extended command has no data. Returns the bytes written at p. */
static size_t scp_put_le(uint8_t *p, size_t ne, int ext, int has_data)
{
	if (ne == 0)
		return 0;
	if (!ext) {
		p[0] = (uint8_t)ne; /* 256 -> 00 */
		return 1;
	}
	if (!has_data) {
		p[0] = 0x00;
		p[1] = (uint8_t)(ne >> 8);
		p[2] = (uint8_t)ne;
		return 3;
	}
	p[0] = (uint8_t)(ne >> 8); /* 65536 -> 0000 */
	p[1] = (uint8_t)ne;
	return 2;
}

static size_t scp_le_len(size_t ne, int ext, int has_data)
{
	if (ne == 0)
		return 0;
	return !ext ? 1u : has_data ? 2u : 3u;
}

int scp_cmac(const struct scp_session *s, const uint8_t *hdr, size_t nhdr, const uint8_t *data,
	     size_t n, uint8_t tag[SCP_BLOCK])
{
	struct crypto_part parts[3] = { { s->chain, SCP_BLOCK }, { hdr, nhdr }, { data, n } };

	return crypto_cmac_parts(s->s_mac, s->keylen, parts, 3, tag);
}

int scp_rmac(const struct scp_session *s, const uint8_t *data, size_t n, uint16_t sw,
	     uint8_t tag[SCP_BLOCK])
{
	uint8_t swb[2] = { (uint8_t)(sw >> 8), (uint8_t)sw };
	struct crypto_part parts[3] = { { s->chain, SCP_BLOCK }, { data, n }, { swb, 2 } };

	return crypto_cmac_parts(s->s_rmac, s->keylen, parts, 3, tag);
}

int scp_sm_wrap_command(struct scp_session *s, const struct apdu *a, struct wr *out)
{
	uint8_t hdr[SCP_PLAIN_HDR_MAX], next[SCP_BLOCK], icv[SCP_BLOCK], tag[SCP_BLOCK];
	int cdec = (s->level & SCP_LEVEL_CDEC) && a->nc > 0;
	size_t nhdr, clen, lc, total;
	uint8_t *p;
	int ext, rc = 0;

	if (a->cla != 0x80 && a->cla != 0x84 && a->cla != 0x00 && a->cla != 0x04)
		return TB_E_SCP_CLA;
	if (a->nc > APDU_MAX_NC_EXT || a->ne > APDU_MAX_NE_EXT || (a->nc > 0 && a->data == NULL))
		return TB_E_INVAL;
	clen = cdec ? scp_padded_len(a->nc) : a->nc;
	lc = clen + s->maclen;
	if (lc > APDU_MAX_NC_EXT)
		return TB_E_INVAL;
	ext = scp_extended(lc, a->ne);
	nhdr = scp_mac_header(hdr, (uint8_t)(a->cla | 0x04), a, lc, ext);
	total = nhdr + lc + scp_le_len(a->ne, ext, 1);
	if (total > wr_room(out))
		return TB_E_NOSPACE;
	p = out->p + out->len;
	/* Every command takes the next counter value, with or without data. */
	scp_counter_next(s->counter, next);
	memcpy(p, hdr, nhdr);
	if (a->nc > 0)
		memcpy(p + nhdr, a->data, a->nc);
	if (cdec) {
		scp_pad(p + nhdr, a->nc);
		if ((rc = scp_icv(s, next, 0, icv)) != 0)
			goto out;
		if ((rc = crypto_aes_cbc_encrypt(s->s_enc, s->keylen, icv, p + nhdr, clen, p + nhdr)) != 0)
			goto out;
	}
	if ((rc = scp_cmac(s, hdr, nhdr, p + nhdr, clen, tag)) != 0)
		goto out;
	memcpy(p + nhdr + clen, tag, s->maclen);
	(void)scp_put_le(p + nhdr + lc, a->ne, ext, 1);
	memcpy(s->chain, tag, SCP_BLOCK);
	memcpy(s->counter, next, SCP_BLOCK);
	out->len += total;
out:
	if (rc != 0)
		ct_wipe(p, total);
	ct_wipe(icv, sizeof(icv));
	ct_wipe(tag, sizeof(tag));
	return rc;
}

/* Decrypts clen bytes of C-DEC data to p and strips the padding. */
static int scp_decrypt_command(const struct scp_session *s, const uint8_t next[SCP_BLOCK],
			       const uint8_t *ct, size_t clen, uint8_t *p, size_t *m)
{
	uint8_t icv[SCP_BLOCK];
	int rc;

	if (clen % SCP_BLOCK != 0)
		return TB_E_SCP_PADDING;
	if ((rc = scp_icv(s, next, 0, icv)) == 0 &&
	    (rc = crypto_aes_cbc_decrypt(s->s_enc, s->keylen, icv, ct, clen, p)) == 0)
		rc = scp_unpad(p, clen, m);
	if (rc != 0)
		ct_wipe(p, clen);
	ct_wipe(icv, sizeof(icv));
	return rc;
}

int scp_sm_unwrap_command(struct scp_session *s, const struct apdu *a, struct wr *out)
{
	uint8_t hdr[SCP_PLAIN_HDR_MAX], next[SCP_BLOCK], tag[SCP_BLOCK];
	uint8_t *p = out->p + out->len;
	const uint8_t *plain;
	size_t nhdr, clen, m, phdr, total, scratch = 0;
	int pext, rc = 0;

	if (a->nc < s->maclen)
		return TB_E_SCP_CMAC;
	clen = a->nc - s->maclen;
	nhdr = scp_mac_header(hdr, a->cla, a, a->nc, scp_extended(a->nc, a->ne));
	if ((rc = scp_cmac(s, hdr, nhdr, a->data, clen, tag)) != 0)
		goto out;
	if (!ct_eq(tag, a->data + clen, s->maclen)) {
		rc = TB_E_SCP_CMAC;
		goto out;
	}
	scp_counter_next(s->counter, next);
	plain = a->data;
	m = clen;
	if ((s->level & SCP_LEVEL_CDEC) && clen > 0) {
		/* Decrypt behind room for the plain header, then slide the data into place. */
		if (SCP_PLAIN_HDR_MAX + clen > wr_room(out)) {
			rc = TB_E_NOSPACE;
			goto out;
		}
		scratch = SCP_PLAIN_HDR_MAX + clen;
		if ((rc = scp_decrypt_command(s, next, a->data, clen, p + SCP_PLAIN_HDR_MAX, &m)) != 0)
			goto out;
		plain = p + SCP_PLAIN_HDR_MAX;
	}
	pext = scp_extended(m, a->ne);
	phdr = m == 0 ? 4 : pext ? 7 : 5;
	total = phdr + m + scp_le_len(a->ne, pext, m > 0);
	if (total > wr_room(out)) {
		rc = TB_E_NOSPACE;
		goto out;
	}
	memmove(p + phdr, plain, m);
	if (m > 0) {
		(void)scp_mac_header(p, (uint8_t)(a->cla & ~0x04u), a, m, pext);
	} else {
		p[0] = (uint8_t)(a->cla & ~0x04u);
		p[1] = a->ins;
		p[2] = a->p1;
		p[3] = a->p2;
	}
	(void)scp_put_le(p + phdr + m, a->ne, pext, m > 0);
	memcpy(s->chain, tag, SCP_BLOCK);
	memcpy(s->counter, next, SCP_BLOCK);
	out->len += total;
	/* Plaintext left behind in the scratch area past the command. */
	if (scratch > total)
		ct_wipe(p + total, scratch - total);
	scratch = 0;
out:
	if (rc != 0 && scratch > 0)
		ct_wipe(p, scratch);
	ct_wipe(tag, sizeof(tag));
	return rc;
}

int scp_sm_wrap_response(const struct scp_session *s, const uint8_t *data, size_t n,
			 uint16_t sw, struct wr *out)
{
	uint8_t icv[SCP_BLOCK], tag[SCP_BLOCK];
	int renc = (s->level & SCP_LEVEL_RENC) && n > 0;
	size_t clen, total;
	uint8_t *p;
	int rc = 0;

	if (!scp_sw_protected(sw))
		return wr_u16be(out, sw); /* error SWs travel bare, without data */
	clen = renc ? scp_padded_len(n) : n;
	total = clen + s->maclen + 2;
	if (total > wr_room(out))
		return TB_E_NOSPACE;
	p = out->p + out->len;
	if (n > 0)
		memcpy(p, data, n);
	if (renc) {
		scp_pad(p, n);
		if ((rc = scp_icv(s, s->counter, 1, icv)) != 0)
			goto out;
		if ((rc = crypto_aes_cbc_encrypt(s->s_enc, s->keylen, icv, p, clen, p)) != 0)
			goto out;
	}
	if ((rc = scp_rmac(s, p, clen, sw, tag)) != 0)
		goto out;
	memcpy(p + clen, tag, s->maclen);
	p[clen + s->maclen] = (uint8_t)(sw >> 8);
	p[clen + s->maclen + 1] = (uint8_t)sw;
	out->len += total;
out:
	if (rc != 0)
		ct_wipe(p, total);
	ct_wipe(icv, sizeof(icv));
	return rc;
}

/* Decrypts R-ENC data to p (room checked) and strips the padding. */
static int scp_decrypt_response(const struct scp_session *s, const uint8_t *ct, size_t clen,
				uint8_t *p, size_t *m)
{
	uint8_t icv[SCP_BLOCK];
	int rc;

	if (clen % SCP_BLOCK != 0)
		return TB_E_SCP_PADDING;
	if ((rc = scp_icv(s, s->counter, 1, icv)) == 0 &&
	    (rc = crypto_aes_cbc_decrypt(s->s_enc, s->keylen, icv, ct, clen, p)) == 0 &&
	    (rc = scp_unpad(p, clen, m)) == 0)
		ct_wipe(p + *m, clen - *m);
	if (rc != 0)
		ct_wipe(p, clen);
	ct_wipe(icv, sizeof(icv));
	return rc;
}

int scp_sm_unwrap_response(const struct scp_session *s, const uint8_t *data, size_t n,
			   uint16_t sw, struct wr *out, int *authenticated)
{
	uint8_t tag[SCP_BLOCK];
	uint8_t *p = out->p + out->len;
	size_t clen, m;
	int rc;

	if (!scp_sw_protected(sw)) {
		/* A bare SW cannot vouch for data: data here is not the card's. */
		if (n > 0)
			return TB_E_SCP_RMAC;
		if ((rc = wr_u16be(out, sw)) == 0)
			*authenticated = 0;
		return rc;
	}
	if (n < s->maclen)
		return TB_E_SCP_RMAC;
	clen = n - s->maclen;
	if ((rc = scp_rmac(s, data, clen, sw, tag)) != 0)
		goto out;
	if (!ct_eq(tag, data + clen, s->maclen)) {
		rc = TB_E_SCP_RMAC;
		goto out;
	}
	if (clen + 2 > wr_room(out)) {
		rc = TB_E_NOSPACE;
		goto out;
	}
	m = clen;
	if ((s->level & SCP_LEVEL_RENC) && clen > 0) {
		if ((rc = scp_decrypt_response(s, data, clen, p, &m)) != 0)
			goto out;
	} else if (clen > 0) {
		memcpy(p, data, clen);
	}
	p[m] = (uint8_t)(sw >> 8);
	p[m + 1] = (uint8_t)sw;
	out->len += m + 2;
	*authenticated = 1;
out:
	ct_wipe(tag, sizeof(tag));
	return rc;
}

void scp_session_wipe(struct scp_session *s)
{
	ct_wipe(s, sizeof(*s));
}
