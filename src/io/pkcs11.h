/* pkcs11.h - the sam's key-encryption key (KEK) in a PKCS#11 token: the module is
 * loaded with dlopen (SoftHSM2 in tests, a real HSM in production), one user session is
 * logged in, and the KEK is an AES-256 secret key object that never leaves the token
 * (CKA_SENSITIVE, not CKA_EXTRACTABLE). The sam wraps and unwraps its key file's
 * data-encryption key with C_Encrypt / C_Decrypt under CKM_AES_GCM.
 *
 * Loaded in the sam process only. Not thread-safe; one struct p11 per process.
 * Errors are TB_E_PKCS11 (with a human reason from p11_error()), TB_E_NOMEM, TB_E_AEAD
 * (unwrap: the tag does not verify under this KEK). */
#ifndef TB_IO_PKCS11_H
#define TB_IO_PKCS11_H

#include <stddef.h>
#include <stdint.h>

#include "sam/sam.h"

struct p11;

#define P11_KEK_LABEL_DEFAULT "tapbridge-sam-kek"

/* Loads module, finds the token whose label is token_label, opens a session and logs in
 * with pin (pin_len bytes; the caller wipes it). On failure *out is NULL and why (when
 * not NULL) holds the reason. */
int p11_open(const char *module, const char *token_label, const uint8_t *pin, size_t pin_len,
	     struct p11 **out, char *why, size_t whycap);

/* Selects the KEK whose CKA_ID is id. TB_E_PKCS11 when the token has no such key. */
int p11_kek_select(struct p11 *p, const uint8_t id[SAM_KEK_ID_LEN]);

/* Selects the KEK labelled label, generating it in the token (with a random 16-byte
 * CKA_ID) when there is none; *created tells which. id gets its CKA_ID. */
int p11_kek_ensure(struct p11 *p, const char *label, uint8_t id[SAM_KEK_ID_LEN], int *created);

/* Points kek at the selected key (kind SAM_KEK_PKCS11). TB_E_INVAL when none selected. */
int p11_kek(struct p11 *p, struct sam_kek *kek);

/* The reason for the last failure ("" when none). */
const char *p11_error(const struct p11 *p);

/* Logs out, closes, finalizes, unloads. Accepts NULL. */
void p11_close(struct p11 *p);

#endif
