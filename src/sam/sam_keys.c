/* sam_keys.c - the key store: every family's versions in one fixed struct, rotation and
 * retirement, and the sealed key file (header, DEK wrapped under the KEK, records under
 * the DEK). What stays true: a failed call leaves the store as it was, every temporary
 * that held a key or a plaintext record is wiped, and a file opens only whole. */
#include <string.h>

#include "crypto.h"
#include "ct.h"
#include "err.h"
#include "sam.h"

static const uint8_t keyfile_magic[8] = { 'T', 'B', 'S', 'A', 'M', 'K', 'E', 'Y' };
#define KEYFILE_VERSION 0x01u
#define KEYFILE_WRAP_AAD_LEN 26u     /* magic, version, kind, KEK id */
#define KEYFILE_REC_LEN (4u + SAM_KEY_LEN)
#define REC_CURRENT 0x01u

static int fam_is_role(uint8_t family)
{
	return family >= SAM_FAM_SE_SERVER && family <= SAM_FAM_READER_SERVER;
}

static int version_ok(uint8_t family, uint8_t version)
{
	if (fam_is_role(family))
		return version > SAM_KVN_BASE(family) && version <= SAM_KVN_BASE(family) + 0x0Fu;
	return version != 0;
}

static int dev_keylen_ok(uint8_t family, uint8_t len)
{
	if (fam_is_role(family))
		return len == 16 || len == 24 || len == 32;
	return len == 0;
}

static struct sam_key *key_at(struct sam_keystore *ks, uint8_t family, uint8_t version)
{
	if (family < 1 || family > SAM_FAMILIES)
		return NULL;
	if (version == 0)
		version = ks->current[family - 1];
	if (version == 0)
		return NULL;
	for (size_t i = 0; i < SAM_VERSIONS; i++) {
		struct sam_key *k = &ks->k[family - 1][i];

		if (k->present && k->version == version)
			return k;
	}
	return NULL;
}

const struct sam_key *sam_keys_find(const struct sam_keystore *ks, uint8_t family,
				    uint8_t version)
{
	return key_at((struct sam_keystore *)ks, family, version);
}

/* A fresh key of family at version into k (wiped on failure). */
static int key_fresh(struct sam_key *k, uint8_t family, uint8_t version, uint8_t dev_keylen)
{
	int rc;

	memset(k, 0, sizeof(*k));
	if (family == SAM_FAM_SIGN)
		rc = crypto_p256_keygen(k->key, k->pub);
	else
		rc = crypto_random(k->key, SAM_KEY_LEN);
	if (rc != 0) {
		ct_wipe(k, sizeof(*k));
		return rc;
	}
	k->present = 1;
	k->version = version;
	k->dev_keylen = dev_keylen;
	return 0;
}

int sam_keys_generate(struct sam_keystore *ks, size_t dev_keylen)
{
	struct sam_keystore t;
	int rc = 0;

	if (dev_keylen != 16 && dev_keylen != 24 && dev_keylen != 32)
		return TB_E_KEYLEN;
	memset(&t, 0, sizeof(t));
	for (uint8_t f = 1; f <= SAM_FAMILIES && rc == 0; f++) {
		uint8_t v = fam_is_role(f) ? (uint8_t)(SAM_KVN_BASE(f) + 1u) : 1u;

		rc = key_fresh(&t.k[f - 1][0], f, v, fam_is_role(f) ? (uint8_t)dev_keylen : 0);
		t.current[f - 1] = v;
	}
	if (rc == 0)
		*ks = t;
	ct_wipe(&t, sizeof(t));
	return rc;
}

int sam_keys_rotate(struct sam_keystore *ks, uint8_t family, uint8_t *version)
{
	const struct sam_key *cur = sam_keys_find(ks, family, 0);
	struct sam_key *slot = NULL;
	uint8_t v;
	int rc;

	if (cur == NULL)
		return TB_E_SAM_KEY;
	v = (uint8_t)(cur->version + 1u);
	if (!version_ok(family, v) || sam_keys_find(ks, family, v) != NULL)
		return TB_E_SAM_FULL;
	for (size_t i = 0; i < SAM_VERSIONS && slot == NULL; i++)
		if (!ks->k[family - 1][i].present)
			slot = &ks->k[family - 1][i];
	if (slot == NULL)
		return TB_E_SAM_FULL;
	if ((rc = key_fresh(slot, family, v, cur->dev_keylen)) != 0)
		return rc;
	ks->current[family - 1] = v;
	*version = v;
	return 0;
}

int sam_keys_retire(struct sam_keystore *ks, uint8_t family, uint8_t version)
{
	struct sam_key *k = key_at(ks, family, version);

	if (version == 0 || k == NULL)
		return TB_E_SAM_KEY;
	if (ks->current[family - 1] == version)
		return TB_E_INVAL;
	ct_wipe(k, sizeof(*k));
	return 0;
}

/* One family: sound records, distinct versions, the current one present. */
static int family_check(const struct sam_keystore *ks, uint8_t f)
{
	uint8_t cur = ks->current[f - 1];
	int found = 0;

	for (size_t i = 0; i < SAM_VERSIONS; i++) {
		const struct sam_key *k = &ks->k[f - 1][i];

		if (!k->present)
			continue;
		if (k->present != 1 || !version_ok(f, k->version) ||
		    !dev_keylen_ok(f, k->dev_keylen))
			return TB_E_SAM_KEYFILE;
		for (size_t j = i + 1; j < SAM_VERSIONS; j++)
			if (ks->k[f - 1][j].present && ks->k[f - 1][j].version == k->version)
				return TB_E_SAM_KEYFILE;
		found |= k->version == cur;
	}
	return found ? 0 : TB_E_SAM_KEYFILE;
}

int sam_keys_check(const struct sam_keystore *ks)
{
	for (uint8_t f = 1; f <= SAM_FAMILIES; f++)
		if (family_check(ks, f) != 0)
			return TB_E_SAM_KEYFILE;
	return 0;
}

/* ------------------------------------------------------------- records --- */

static int body_encode(const struct sam_keystore *ks, struct wr *w)
{
	uint8_t count = 0;
	uint8_t *countp;
	int rc;

	if ((rc = wr_reserve(w, 1, &countp)) != 0)
		return rc;
	for (uint8_t f = 1; f <= SAM_FAMILIES; f++) {
		for (size_t i = 0; i < SAM_VERSIONS; i++) {
			const struct sam_key *k = &ks->k[f - 1][i];

			if (!k->present)
				continue;
			if ((rc = wr_u8(w, f)) || (rc = wr_u8(w, k->version)) ||
			    (rc = wr_u8(w, k->version == ks->current[f - 1] ? REC_CURRENT : 0)) ||
			    (rc = wr_u8(w, k->dev_keylen)) ||
			    (rc = wr_bytes(w, k->key, SAM_KEY_LEN)))
				return rc;
			count++;
		}
	}
	*countp = count;
	return 0;
}

/* One record into t: family, version, flags, device key length, key. */
static int record_decode(struct rd *r, struct sam_keystore *t)
{
	uint8_t f, v, flags, dkl;
	struct sam_key *slot = NULL;

	if (rd_u8(r, &f) || rd_u8(r, &v) || rd_u8(r, &flags) || rd_u8(r, &dkl))
		return TB_E_SAM_KEYFILE;
	if (f < 1 || f > SAM_FAMILIES || !version_ok(f, v) || (flags & ~REC_CURRENT) != 0 ||
	    !dev_keylen_ok(f, dkl) || sam_keys_find(t, f, v) != NULL)
		return TB_E_SAM_KEYFILE;
	if (flags & REC_CURRENT) {
		if (t->current[f - 1] != 0)
			return TB_E_SAM_KEYFILE;
		t->current[f - 1] = v;
	}
	for (size_t i = 0; i < SAM_VERSIONS && slot == NULL; i++)
		if (!t->k[f - 1][i].present)
			slot = &t->k[f - 1][i];
	if (slot == NULL || rd_copy(r, slot->key, SAM_KEY_LEN) != 0)
		return TB_E_SAM_KEYFILE;
	slot->present = 1;
	slot->version = v;
	slot->dev_keylen = dkl;
	/* A scalar that is not a valid P-256 private key is refused here. */
	if (f == SAM_FAM_SIGN && crypto_p256_public(slot->key, slot->pub) != 0)
		return TB_E_SAM_KEYFILE;
	return 0;
}

static int body_decode(const uint8_t *p, size_t n, struct sam_keystore *ks)
{
	struct sam_keystore t;
	struct rd r = rd_init(p, n);
	uint8_t count;
	int rc = TB_E_SAM_KEYFILE;

	memset(&t, 0, sizeof(t));
	if (rd_u8(&r, &count) != 0 || count > SAM_FAMILIES * SAM_VERSIONS)
		goto out;
	for (unsigned i = 0; i < count; i++)
		if ((rc = record_decode(&r, &t)) != 0)
			goto out;
	if (rd_end(&r) != 0 || sam_keys_check(&t) != 0) {
		rc = TB_E_SAM_KEYFILE;
		goto out;
	}
	*ks = t;
	rc = 0;
out:
	ct_wipe(&t, sizeof(t));
	return rc;
}

/* ---------------------------------------------------------- the file --- */

int sam_keyfile_seal(const struct sam_keystore *ks, const struct sam_kek *kek, struct wr *out)
{
	uint8_t body[SAM_KEYFILE_BODY_MAX], dek[SAM_DEK_LEN];
	uint8_t file[SAM_KEYFILE_MAX];
	struct wr b = wr_init(body, sizeof(body));
	struct wr w = wr_init(file, sizeof(file));
	uint8_t *wrap_nonce, *wrapped, *body_nonce, *ct, *tag;
	int rc;

	if (kek == NULL || kek->wrap == NULL || sam_keys_check(ks) != 0)
		return TB_E_INVAL;
	if (wr_room(out) < SAM_KEYFILE_MAX)
		return TB_E_NOSPACE;
	if ((rc = body_encode(ks, &b)) != 0)
		goto out;
	(void)wr_bytes(&w, keyfile_magic, sizeof(keyfile_magic));
	(void)wr_u8(&w, KEYFILE_VERSION);
	(void)wr_u8(&w, kek->kind);
	(void)wr_bytes(&w, kek->id, SAM_KEK_ID_LEN);
	(void)wr_reserve(&w, CRYPTO_GCM_IV_LEN, &wrap_nonce);
	(void)wr_reserve(&w, SAM_WRAPPED_DEK_LEN, &wrapped);
	(void)wr_reserve(&w, CRYPTO_GCM_IV_LEN, &body_nonce);
	(void)wr_u32be(&w, (uint32_t)b.len);
	(void)wr_reserve(&w, b.len, &ct);
	(void)wr_reserve(&w, CRYPTO_GCM_TAG_LEN, &tag);
	/* A fresh DEK and fresh nonces for every seal. */
	if ((rc = crypto_random(dek, sizeof(dek))) != 0 ||
	    (rc = crypto_random(wrap_nonce, CRYPTO_GCM_IV_LEN)) != 0 ||
	    (rc = crypto_random(body_nonce, CRYPTO_GCM_IV_LEN)) != 0)
		goto out;
	if ((rc = kek->wrap(kek->ctx, wrap_nonce, file, KEYFILE_WRAP_AAD_LEN, dek, wrapped)) != 0)
		goto out;
	if ((rc = crypto_aes_gcm_encrypt(dek, sizeof(dek), body_nonce, file, SAM_KEYFILE_HDR_LEN,
					 body, b.len, ct, tag)) != 0)
		goto out;
	rc = wr_bytes(out, file, w.len);
out:
	ct_wipe(body, sizeof(body));
	ct_wipe(dek, sizeof(dek));
	ct_wipe(file, sizeof(file));
	return rc;
}

/* The header fields, checked; pointers into file. */
struct keyfile_hdr {
	uint8_t kind;
	const uint8_t *id, *wrap_nonce, *wrapped, *body_nonce, *ct, *tag;
	uint32_t body_len;
};

static int keyfile_parse(const uint8_t *file, size_t n, struct keyfile_hdr *h)
{
	struct rd r = rd_init(file, n);
	const uint8_t *magic;
	uint8_t ver;

	if (file == NULL || rd_bytes(&r, sizeof(keyfile_magic), &magic) != 0 ||
	    !ct_eq(magic, keyfile_magic, sizeof(keyfile_magic)) || rd_u8(&r, &ver) != 0 ||
	    ver != KEYFILE_VERSION || rd_u8(&r, &h->kind) != 0 ||
	    rd_bytes(&r, SAM_KEK_ID_LEN, &h->id) != 0 ||
	    rd_bytes(&r, CRYPTO_GCM_IV_LEN, &h->wrap_nonce) != 0 ||
	    rd_bytes(&r, SAM_WRAPPED_DEK_LEN, &h->wrapped) != 0 ||
	    rd_bytes(&r, CRYPTO_GCM_IV_LEN, &h->body_nonce) != 0 || rd_u32be(&r, &h->body_len) != 0)
		return TB_E_SAM_KEYFILE;
	if ((h->kind != SAM_KEK_PKCS11 && h->kind != SAM_KEK_FILE) ||
	    h->body_len > SAM_KEYFILE_BODY_MAX || rd_bytes(&r, h->body_len, &h->ct) != 0 ||
	    rd_bytes(&r, CRYPTO_GCM_TAG_LEN, &h->tag) != 0 || rd_end(&r) != 0)
		return TB_E_SAM_KEYFILE;
	return 0;
}

int sam_keyfile_kek(const uint8_t *file, size_t n, uint8_t *kind, uint8_t id[SAM_KEK_ID_LEN])
{
	struct keyfile_hdr h;
	int rc = keyfile_parse(file, n, &h);

	if (rc != 0)
		return rc;
	*kind = h.kind;
	memcpy(id, h.id, SAM_KEK_ID_LEN);
	return 0;
}

int sam_keyfile_open(const uint8_t *file, size_t n, const struct sam_kek *kek,
		     struct sam_keystore *ks)
{
	uint8_t body[SAM_KEYFILE_BODY_MAX], dek[SAM_DEK_LEN];
	struct keyfile_hdr h;
	int rc;

	if (kek == NULL || kek->unwrap == NULL)
		return TB_E_INVAL;
	if ((rc = keyfile_parse(file, n, &h)) != 0)
		return rc;
	if (h.kind != kek->kind || !ct_eq(h.id, kek->id, SAM_KEK_ID_LEN))
		return TB_E_SAM_KEYFILE;
	rc = kek->unwrap(kek->ctx, h.wrap_nonce, file, KEYFILE_WRAP_AAD_LEN, h.wrapped, dek);
	if (rc == 0)
		rc = crypto_aes_gcm_decrypt(dek, sizeof(dek), h.body_nonce, file,
					    SAM_KEYFILE_HDR_LEN, h.ct, h.body_len, h.tag, body);
	if (rc == 0)
		rc = body_decode(body, h.body_len, ks);
	else
		rc = TB_E_SAM_KEYFILE;
	ct_wipe(body, sizeof(body));
	ct_wipe(dek, sizeof(dek));
	return rc;
}

/* ------------------------------------------------- the development KEK --- */

static int soft_wrap(void *ctx, const uint8_t nonce[CRYPTO_GCM_IV_LEN], const uint8_t *aad,
		     size_t naad, const uint8_t dek[SAM_DEK_LEN], uint8_t out[SAM_WRAPPED_DEK_LEN])
{
	const struct sam_soft_kek *sk = ctx;

	return crypto_aes_gcm_encrypt(sk->key, SAM_KEY_LEN, nonce, aad, naad, dek, SAM_DEK_LEN,
				      out, out + SAM_DEK_LEN);
}

static int soft_unwrap(void *ctx, const uint8_t nonce[CRYPTO_GCM_IV_LEN], const uint8_t *aad,
		       size_t naad, const uint8_t in[SAM_WRAPPED_DEK_LEN], uint8_t dek[SAM_DEK_LEN])
{
	const struct sam_soft_kek *sk = ctx;

	return crypto_aes_gcm_decrypt(sk->key, SAM_KEY_LEN, nonce, aad, naad, in, SAM_DEK_LEN,
				      in + SAM_DEK_LEN, dek);
}

int sam_kek_soft(struct sam_kek *kek, struct sam_soft_kek *sk)
{
	static const uint8_t label[] = { 'T', 'B', '-', 'K', 'E', 'K', '-', 'I', 'D' };
	uint8_t tag[CRYPTO_AES_BLOCK];
	int rc = crypto_cmac(sk->key, SAM_KEY_LEN, label, sizeof(label), tag);

	if (rc != 0)
		return rc;
	memset(kek, 0, sizeof(*kek));
	kek->kind = SAM_KEK_FILE;
	memcpy(kek->id, tag, SAM_KEK_ID_LEN);
	kek->wrap = soft_wrap;
	kek->unwrap = soft_unwrap;
	kek->ctx = sk;
	return 0;
}
