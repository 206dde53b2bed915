/* pkcs11.c - the KEK in a PKCS#11 token (see pkcs11.h): dlopen, C_GetFunctionList, one
 * logged-in session, find or generate an AES key object, AES-GCM wrap and unwrap.
 * What stays true: the KEK's value is never asked for (it cannot leave the token), the
 * PIN is borrowed for C_Login only, and every plaintext DEK copy made here is wiped.
 * Names like `count` or `value` are macros in p11-kit's header: locals avoid them. */
#include "pkcs11.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>

#include "lib/crypto.h"
#include "lib/ct.h"
#include "lib/err.h"

#define P11_LABEL_LEN 32u /* CK_TOKEN_INFO label: blank-padded, not NUL-terminated */

struct p11 {
	void *dl;
	CK_FUNCTION_LIST_PTR fl;
	CK_SESSION_HANDLE sess;
	int initialized, has_session, logged_in;
	CK_OBJECT_HANDLE kek;
	int has_kek;
	uint8_t kek_id[SAM_KEK_ID_LEN];
	char err[200];
};

static int p11_fail(struct p11 *p, CK_RV rv, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int p11_fail(struct p11 *p, CK_RV rv, const char *fmt, ...)
{
	va_list ap;
	int off;

	va_start(ap, fmt);
	off = vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	if (rv != CKR_OK && off >= 0 && (size_t)off < sizeof(p->err))
		(void)snprintf(p->err + off, sizeof(p->err) - (size_t)off, " (CKR 0x%lx)",
			       (unsigned long)rv);
	return TB_E_PKCS11;
}

const char *p11_error(const struct p11 *p)
{
	return p != NULL ? p->err : "";
}

/* 1 when the token's blank-padded label is exactly want. */
static int label_is(const CK_UTF8CHAR *label, const char *want)
{
	size_t n = strlen(want), i;

	if (n > P11_LABEL_LEN)
		return 0;
	for (i = 0; i < n; i++)
		if (label[i] != (CK_UTF8CHAR)want[i])
			return 0;
	for (; i < P11_LABEL_LEN; i++)
		if (label[i] != ' ')
			return 0;
	return 1;
}

static int p11_load(struct p11 *p, const char *module)
{
	CK_C_GetFunctionList get;
	CK_RV rv;

	p->dl = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	if (p->dl == NULL)
		return p11_fail(p, CKR_OK, "cannot load PKCS#11 module %s: %s", module, dlerror());
	*(void **)&get = dlsym(p->dl, "C_GetFunctionList");
	if (get == NULL)
		return p11_fail(p, CKR_OK, "%s is not a PKCS#11 module (no C_GetFunctionList)",
				module);
	if ((rv = get(&p->fl)) != CKR_OK || p->fl == NULL)
		return p11_fail(p, rv, "C_GetFunctionList failed");
	rv = p->fl->C_Initialize(NULL);
	if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
		return p11_fail(p, rv, "C_Initialize failed");
	p->initialized = rv == CKR_OK;
	return 0;
}

/* The slot whose token is labelled token_label. */
static int p11_find_slot(struct p11 *p, const char *token_label, CK_SLOT_ID *slot)
{
	CK_SLOT_ID *slots = NULL;
	CK_ULONG nslots = 0;
	int rc = TB_E_PKCS11, found = 0;
	CK_RV rv;

	if ((rv = p->fl->C_GetSlotList(CK_TRUE, NULL, &nslots)) != CKR_OK)
		return p11_fail(p, rv, "C_GetSlotList failed");
	if (nslots == 0)
		return p11_fail(p, CKR_OK, "the module has no token");
	if ((slots = calloc(nslots, sizeof(*slots))) == NULL)
		return TB_E_NOMEM;
	if ((rv = p->fl->C_GetSlotList(CK_TRUE, slots, &nslots)) != CKR_OK) {
		rc = p11_fail(p, rv, "C_GetSlotList failed");
		goto out;
	}
	for (CK_ULONG i = 0; i < nslots && !found; i++) {
		CK_TOKEN_INFO ti;

		if (p->fl->C_GetTokenInfo(slots[i], &ti) == CKR_OK &&
		    label_is(ti.label, token_label)) {
			*slot = slots[i];
			found = 1;
		}
	}
	rc = found ? 0 : p11_fail(p, CKR_OK, "no token labelled '%s'", token_label);
out:
	free(slots);
	return rc;
}

int p11_open(const char *module, const char *token_label, const uint8_t *pin, size_t pin_len,
	     struct p11 **out, char *why, size_t whycap)
{
	struct p11 *p;
	CK_SLOT_ID slot = 0;
	CK_RV rv;
	int rc;

	*out = NULL;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return TB_E_NOMEM;
	if ((rc = p11_load(p, module)) != 0 || (rc = p11_find_slot(p, token_label, &slot)) != 0)
		goto fail;
	rv = p->fl->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &p->sess);
	if (rv != CKR_OK) {
		rc = p11_fail(p, rv, "C_OpenSession failed");
		goto fail;
	}
	p->has_session = 1;
	rv = p->fl->C_Login(p->sess, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pin_len);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
		rc = p11_fail(p, rv, "login to token '%s' failed%s", token_label,
			      rv == CKR_PIN_INCORRECT ? ": wrong PIN" : "");
		goto fail;
	}
	p->logged_in = rv == CKR_OK;
	*out = p;
	return 0;
fail:
	if (why != NULL && whycap > 0)
		(void)snprintf(why, whycap, "%s", p->err);
	p11_close(p);
	return rc;
}

/* At most one AES secret key matching attr (CKA_ID or CKA_LABEL = v, n bytes). */
static int p11_find(struct p11 *p, CK_ATTRIBUTE_TYPE attr, const void *v, size_t n,
		    CK_OBJECT_HANDLE *obj, int *found)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE tmpl[3] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ attr, (void *)v, (CK_ULONG)n },
	};
	CK_OBJECT_HANDLE objs[2];
	CK_ULONG got = 0;
	CK_RV rv;

	if ((rv = p->fl->C_FindObjectsInit(p->sess, tmpl, 3)) != CKR_OK)
		return p11_fail(p, rv, "C_FindObjectsInit failed");
	rv = p->fl->C_FindObjects(p->sess, objs, 2, &got);
	(void)p->fl->C_FindObjectsFinal(p->sess);
	if (rv != CKR_OK)
		return p11_fail(p, rv, "C_FindObjects failed");
	if (got > 1)
		return p11_fail(p, CKR_OK, "the token holds more than one matching KEK");
	*found = got == 1;
	if (got == 1)
		*obj = objs[0];
	return 0;
}

int p11_kek_select(struct p11 *p, const uint8_t id[SAM_KEK_ID_LEN])
{
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	int found = 0, rc;

	if ((rc = p11_find(p, CKA_ID, id, SAM_KEK_ID_LEN, &obj, &found)) != 0)
		return rc;
	if (!found)
		return p11_fail(p, CKR_OK, "this token does not hold the key-encryption key the "
				"key file was sealed under");
	p->kek = obj;
	p->has_kek = 1;
	memcpy(p->kek_id, id, SAM_KEK_ID_LEN);
	return 0;
}

static int p11_generate(struct p11 *p, const char *label, const uint8_t id[SAM_KEK_ID_LEN],
			CK_OBJECT_HANDLE *obj)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = SAM_KEY_LEN;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_MECHANISM mech = { CKM_AES_KEY_GEN, NULL, 0 };
	CK_ATTRIBUTE tmpl[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_KEY_TYPE, &kt, sizeof(kt) },
		{ CKA_VALUE_LEN, &len, sizeof(len) },
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &yes, sizeof(yes) },
		{ CKA_EXTRACTABLE, &no, sizeof(no) },
		{ CKA_ENCRYPT, &yes, sizeof(yes) },
		{ CKA_DECRYPT, &yes, sizeof(yes) },
		{ CKA_WRAP, &no, sizeof(no) },
		{ CKA_UNWRAP, &no, sizeof(no) },
		{ CKA_LABEL, (void *)label, (CK_ULONG)strlen(label) },
		{ CKA_ID, (void *)id, SAM_KEK_ID_LEN },
	};
	CK_RV rv = p->fl->C_GenerateKey(p->sess, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), obj);

	return rv == CKR_OK ? 0 : p11_fail(p, rv, "generating the KEK in the token failed");
}

int p11_kek_ensure(struct p11 *p, const char *label, uint8_t id[SAM_KEK_ID_LEN], int *created)
{
	CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
	uint8_t got_id[SAM_KEK_ID_LEN];
	CK_ATTRIBUTE a = { CKA_ID, got_id, sizeof(got_id) };
	int found = 0, rc;
	CK_RV rv;

	*created = 0;
	if ((rc = p11_find(p, CKA_LABEL, label, strlen(label), &obj, &found)) != 0)
		return rc;
	if (!found) {
		if ((rc = crypto_random(got_id, sizeof(got_id))) != 0 ||
		    (rc = p11_generate(p, label, got_id, &obj)) != 0)
			return rc;
		*created = 1;
	} else if ((rv = p->fl->C_GetAttributeValue(p->sess, obj, &a, 1)) != CKR_OK ||
		   a.ulValueLen != SAM_KEK_ID_LEN) {
		return p11_fail(p, rv, "the key labelled '%s' has no 16-byte CKA_ID: not ours",
				label);
	}
	p->kek = obj;
	p->has_kek = 1;
	memcpy(p->kek_id, got_id, SAM_KEK_ID_LEN);
	memcpy(id, got_id, SAM_KEK_ID_LEN);
	return 0;
}

static void gcm_params(CK_GCM_PARAMS *g, const uint8_t *nonce, const uint8_t *aad, size_t naad)
{
	memset(g, 0, sizeof(*g));
	g->pIv = (CK_BYTE_PTR)nonce;
	g->ulIvLen = CRYPTO_GCM_IV_LEN;
	g->ulIvBits = CRYPTO_GCM_IV_LEN * 8;
	g->pAAD = (CK_BYTE_PTR)aad;
	g->ulAADLen = (CK_ULONG)naad;
	g->ulTagBits = CRYPTO_GCM_TAG_LEN * 8;
}

static int p11_wrap(void *ctx, const uint8_t nonce[CRYPTO_GCM_IV_LEN], const uint8_t *aad,
		    size_t naad, const uint8_t dek[SAM_DEK_LEN], uint8_t out[SAM_WRAPPED_DEK_LEN])
{
	struct p11 *p = ctx;
	CK_GCM_PARAMS g;
	CK_MECHANISM mech = { CKM_AES_GCM, &g, sizeof(g) };
	CK_ULONG outl = SAM_WRAPPED_DEK_LEN;
	CK_RV rv;

	gcm_params(&g, nonce, aad, naad);
	if ((rv = p->fl->C_EncryptInit(p->sess, &mech, p->kek)) != CKR_OK)
		return p11_fail(p, rv, "C_EncryptInit(CKM_AES_GCM) failed");
	rv = p->fl->C_Encrypt(p->sess, (CK_BYTE_PTR)dek, SAM_DEK_LEN, out, &outl);
	if (rv != CKR_OK || outl != SAM_WRAPPED_DEK_LEN) {
		ct_wipe(out, SAM_WRAPPED_DEK_LEN);
		return p11_fail(p, rv, "C_Encrypt failed");
	}
	return 0;
}

static int p11_unwrap(void *ctx, const uint8_t nonce[CRYPTO_GCM_IV_LEN], const uint8_t *aad,
		      size_t naad, const uint8_t in[SAM_WRAPPED_DEK_LEN], uint8_t dek[SAM_DEK_LEN])
{
	struct p11 *p = ctx;
	CK_GCM_PARAMS g;
	CK_MECHANISM mech = { CKM_AES_GCM, &g, sizeof(g) };
	uint8_t tmp[SAM_WRAPPED_DEK_LEN]; /* some modules want room for the input's length */
	CK_ULONG outl = sizeof(tmp);
	CK_RV rv;
	int rc = 0;

	gcm_params(&g, nonce, aad, naad);
	if ((rv = p->fl->C_DecryptInit(p->sess, &mech, p->kek)) != CKR_OK)
		return p11_fail(p, rv, "C_DecryptInit(CKM_AES_GCM) failed");
	rv = p->fl->C_Decrypt(p->sess, (CK_BYTE_PTR)in, SAM_WRAPPED_DEK_LEN, tmp, &outl);
	if (rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE)
		rc = TB_E_AEAD;
	else if (rv != CKR_OK || outl != SAM_DEK_LEN)
		rc = p11_fail(p, rv, "C_Decrypt failed");
	else
		memcpy(dek, tmp, SAM_DEK_LEN);
	ct_wipe(tmp, sizeof(tmp));
	return rc;
}

int p11_kek(struct p11 *p, struct sam_kek *kek)
{
	if (p == NULL || !p->has_kek)
		return TB_E_INVAL;
	memset(kek, 0, sizeof(*kek));
	kek->kind = SAM_KEK_PKCS11;
	memcpy(kek->id, p->kek_id, SAM_KEK_ID_LEN);
	kek->wrap = p11_wrap;
	kek->unwrap = p11_unwrap;
	kek->ctx = p;
	return 0;
}

void p11_close(struct p11 *p)
{
	if (p == NULL)
		return;
	if (p->fl != NULL) {
		if (p->logged_in)
			(void)p->fl->C_Logout(p->sess);
		if (p->has_session)
			(void)p->fl->C_CloseSession(p->sess);
		if (p->initialized)
			(void)p->fl->C_Finalize(NULL);
	}
	if (p->dl != NULL)
		(void)dlclose(p->dl);
	ct_wipe(p, sizeof(*p));
	free(p);
}
