/* sam_ops.c - the sam's key operations besides SCP03: flag signatures, sealed blobs,
 * receipt checks, device keys for personalisation, rotation and retirement.
 * What stays true: no master key, signing scalar or per-blob key reaches the reply;
 * every derived key and every plaintext temporary is wiped on every path; a key change
 * is kept only once the adapter made it durable. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "sam_int.h"

/* domain(1) message -> version(1) signature(64) over "TBSG" || domain || message */
int sam_h_sign(struct sam_call *k)
{
	uint8_t msg[SAM_SIGN_PREFIX_LEN + SAM_SIGN_MSG_MAX], sig[SAM_SIG_LEN];
	const struct sam_key *key = sam_keys_find(&k->s->ks, SAM_FAM_SIGN, 0);
	const uint8_t *m = NULL;
	uint8_t domain;
	size_t n;
	int rc;

	if (rd_u8(&k->req, &domain) || (domain != SAM_SIGN_FLAG && domain != SAM_SIGN_READER))
		return TB_E_SAM_PROTO;
	n = rd_left(&k->req);
	if (n > SAM_SIGN_MSG_MAX || (n > 0 && rd_bytes(&k->req, n, &m)))
		return TB_E_SAM_PROTO;
	if (key == NULL)
		return TB_E_SAM_KEY;
	msg[0] = 'T';
	msg[1] = 'B';
	msg[2] = 'S';
	msg[3] = 'G';
	msg[4] = domain;
	if (n > 0)
		memcpy(msg + SAM_SIGN_PREFIX_LEN, m, n);
	if ((rc = crypto_ecdsa_sign(key->key, msg, SAM_SIGN_PREFIX_LEN + n, sig)) != 0)
		return rc;
	if ((rc = wr_u8(k->out, key->version)) == 0)
		rc = wr_bytes(k->out, sig, sizeof(sig));
	return rc;
}

/* Blob id length(1) and id, for SEAL_BLOB and OPEN_BLOB. */
static int blob_id(struct sam_call *k, const uint8_t **id, uint8_t *n)
{
	if (rd_u8(&k->req, n) || *n == 0 || *n > SAM_BLOB_ID_MAX || rd_bytes(&k->req, *n, id))
		return TB_E_SAM_PROTO;
	return 0;
}

/* The AAD of a sealed blob: format, key version, id length, id. */
static void blob_aad(uint8_t version, const uint8_t *id, uint8_t n,
		     uint8_t aad[3 + SAM_BLOB_ID_MAX])
{
	aad[0] = SAM_BLOB_FORMAT;
	aad[1] = version;
	aad[2] = n;
	memcpy(aad + 3, id, n);
}

/* id length(1) id plaintext -> format(1) version(1) nonce(12) ciphertext tag(16) */
int sam_h_seal_blob(struct sam_call *k)
{
	const struct sam_key *m = sam_keys_find(&k->s->ks, SAM_FAM_BLOB, 0);
	uint8_t key[SAM_KEY_LEN], aad[3 + SAM_BLOB_ID_MAX];
	uint8_t *nonce, *ct, *tag;
	const uint8_t *id, *pt = NULL;
	uint8_t idn;
	size_t n;
	int rc;

	if ((rc = blob_id(k, &id, &idn)) != 0)
		return rc;
	n = rd_left(&k->req);
	if (n > SAM_BLOB_MAX || (n > 0 && rd_bytes(&k->req, n, &pt)))
		return TB_E_SAM_PROTO;
	if (m == NULL)
		return TB_E_SAM_KEY;
	if (wr_u8(k->out, SAM_BLOB_FORMAT) || wr_u8(k->out, m->version) ||
	    wr_reserve(k->out, CRYPTO_GCM_IV_LEN, &nonce) || wr_reserve(k->out, n, &ct) ||
	    wr_reserve(k->out, CRYPTO_GCM_TAG_LEN, &tag))
		return TB_E_NOSPACE;
	blob_aad(m->version, id, idn, aad);
	/* A random nonce under a key of this blob alone. */
	if ((rc = crypto_random(nonce, CRYPTO_GCM_IV_LEN)) == 0 &&
	    (rc = sam_div_blob_key(m, id, idn, key)) == 0)
		rc = crypto_aes_gcm_encrypt(key, sizeof(key), nonce, aad, 3u + idn, pt, n, ct, tag);
	ct_wipe(key, sizeof(key));
	return rc;
}

/* id length(1) id sealed blob -> plaintext */
int sam_h_open_blob(struct sam_call *k)
{
	uint8_t key[SAM_KEY_LEN], aad[3 + SAM_BLOB_ID_MAX];
	const uint8_t *id, *nonce, *ct = NULL, *tag;
	const struct sam_key *m;
	uint8_t idn, fmt, version;
	uint8_t *pt;
	size_t n;
	int rc;

	if ((rc = blob_id(k, &id, &idn)) != 0)
		return rc;
	if (rd_left(&k->req) > SAM_BLOB_MAX + SAM_BLOB_OVERHEAD)
		return TB_E_SAM_PROTO;
	/* From here on the bytes are stored data, not protocol: bad ones are an ERROR. */
	if (rd_u8(&k->req, &fmt) || fmt != SAM_BLOB_FORMAT || rd_u8(&k->req, &version) ||
	    rd_bytes(&k->req, CRYPTO_GCM_IV_LEN, &nonce) ||
	    rd_left(&k->req) < CRYPTO_GCM_TAG_LEN)
		return TB_E_SAM_BLOB;
	n = rd_left(&k->req) - CRYPTO_GCM_TAG_LEN;
	if ((n > 0 && rd_bytes(&k->req, n, &ct)) || rd_bytes(&k->req, CRYPTO_GCM_TAG_LEN, &tag))
		return TB_E_SAM_BLOB;
	/* Version 0 would mean "current" to the key store: no blob names it. */
	if (version == 0 || (m = sam_keys_find(&k->s->ks, SAM_FAM_BLOB, version)) == NULL)
		return TB_E_SAM_KEY;
	if (wr_reserve(k->out, n, &pt) != 0)
		return TB_E_NOSPACE;
	blob_aad(version, id, idn, aad);
	if ((rc = sam_div_blob_key(m, id, idn, key)) == 0)
		rc = crypto_aes_gcm_decrypt(key, sizeof(key), nonce, aad, 3u + idn, ct, n, tag, pt);
	ct_wipe(key, sizeof(key));
	return rc;
}

/* kvn(1) serial(8) mac length(1) mac body: the se's receipt MAC (src/se/purse.c) under
 * its SE_SERVER key set kvn (0 = current). A verdict only: nothing keyed comes back. */
int sam_h_receipt_verify(struct sam_call *k)
{
	uint8_t rkey[16], tag[CRYPTO_AES_BLOCK];
	const uint8_t *serial, *mac, *body;
	const struct sam_key *m;
	struct scp_keys dev;
	uint8_t kvn, maclen;
	size_t n;
	int rc;

	if (rd_u8(&k->req, &kvn) || rd_bytes(&k->req, SAM_SERIAL_LEN, &serial) ||
	    rd_u8(&k->req, &maclen) || maclen < 4 || maclen > CRYPTO_AES_BLOCK ||
	    rd_bytes(&k->req, maclen, &mac))
		return TB_E_SAM_PROTO;
	n = rd_left(&k->req);
	if (n == 0 || n > SAM_RECEIPT_BODY_MAX || rd_bytes(&k->req, n, &body))
		return TB_E_SAM_PROTO;
	if ((m = sam_keys_find(&k->s->ks, SAM_FAM_SE_SERVER, kvn)) == NULL)
		return TB_E_SAM_KEY;
	if ((rc = sam_div_device_keys(m, SAM_FAM_SE_SERVER, serial, &dev)) == 0 &&
	    (rc = sam_div_receipt_key(&dev, serial, rkey)) == 0 &&
	    (rc = crypto_cmac(rkey, sizeof(rkey), body, n, tag)) == 0 && !ct_eq(tag, mac, maclen))
		rc = TB_E_SAM_RECEIPT;
	ct_wipe(&dev, sizeof(dev));
	ct_wipe(rkey, sizeof(rkey));
	ct_wipe(tag, sizeof(tag));
	return rc;
}

/* role(1) kvn(1) serial(8) -> role kvn keylen ENC MAC DEK. Factory personalisation only. */
int sam_h_derive(struct sam_call *k)
{
	const uint8_t *serial;
	const struct sam_key *m;
	struct scp_keys dev;
	uint8_t role, kvn;
	int rc;

	if (rd_u8(&k->req, &role) || rd_u8(&k->req, &kvn) ||
	    rd_bytes(&k->req, SAM_SERIAL_LEN, &serial) || rd_end(&k->req) ||
	    role < SAM_FAM_SE_SERVER || role > SAM_FAM_READER_SERVER)
		return TB_E_SAM_PROTO;
	if ((m = sam_keys_find(&k->s->ks, role, kvn)) == NULL)
		return TB_E_SAM_KEY;
	if ((rc = sam_div_device_keys(m, role, serial, &dev)) == 0 &&
	    (rc = wr_u8(k->out, role)) == 0 && (rc = wr_u8(k->out, m->version)) == 0 &&
	    (rc = wr_u8(k->out, (uint8_t)dev.len)) == 0 &&
	    (rc = wr_bytes(k->out, dev.enc, dev.len)) == 0 &&
	    (rc = wr_bytes(k->out, dev.mac, dev.len)) == 0)
		rc = wr_bytes(k->out, dev.dek, dev.len);
	ct_wipe(&dev, sizeof(dev));
	return rc;
}

/* Applies a key change made on a copy: persisted first, then kept. */
static int keys_commit(struct sam *s, struct sam_keystore *next)
{
	int rc = 0;

	if (s->cfg.persist != NULL)
		rc = s->cfg.persist(s->cfg.ctx, next);
	if (rc == 0) {
		ct_wipe(&s->ks, sizeof(s->ks));
		s->ks = *next;
	}
	ct_wipe(next, sizeof(*next));
	return rc;
}

/* family(1) -> family version */
int sam_h_rotate(struct sam_call *k)
{
	struct sam_keystore next;
	uint8_t family, version = 0;
	int rc;

	if (rd_u8(&k->req, &family) || rd_end(&k->req) || family < 1 || family > SAM_FAMILIES)
		return TB_E_SAM_PROTO;
	next = k->s->ks;
	if ((rc = sam_keys_rotate(&next, family, &version)) != 0) {
		ct_wipe(&next, sizeof(next));
		return rc;
	}
	if ((rc = keys_commit(k->s, &next)) != 0)
		return rc;
	(void)wr_u8(k->out, family);
	return wr_u8(k->out, version);
}

/* family(1) version(1) */
int sam_h_retire(struct sam_call *k)
{
	struct sam_keystore next;
	uint8_t family, version;
	int rc;

	if (rd_u8(&k->req, &family) || rd_u8(&k->req, &version) || rd_end(&k->req) ||
	    family < 1 || family > SAM_FAMILIES)
		return TB_E_SAM_PROTO;
	next = k->s->ks;
	if ((rc = sam_keys_retire(&next, family, version)) != 0) {
		ct_wipe(&next, sizeof(next));
		return rc;
	}
	return keys_commit(k->s, &next);
}

/* TERMINAL_KEY kvn(1) -> kvn(1) keylen(1) key(32): the se-reader family's terminal key for
 * a reader's key store (factory personalisation only, like DERIVE_DEVICE_KEYS). */
int sam_h_terminal_key(struct sam_call *k)
{
	const struct sam_key *m;
	uint8_t kvn, t[SAM_KEY_LEN];
	int rc;

	if (rd_u8(&k->req, &kvn) || rd_end(&k->req))
		return TB_E_SAM_PROTO;
	if ((m = sam_keys_find(&k->s->ks, SAM_FAM_SE_READER, kvn)) == NULL)
		return TB_E_SAM_KEY;
	if ((rc = sam_div_terminal_key(m, t)) == 0 && (rc = wr_u8(k->out, m->version)) == 0 &&
	    (rc = wr_u8(k->out, m->dev_keylen)) == 0)
		rc = wr_bytes(k->out, t, sizeof(t));
	ct_wipe(t, sizeof(t));
	return rc;
}
