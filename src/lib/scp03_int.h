/* scp03_int.h - SCP03 building blocks shared by the host and card roles
 * (scp03_kdf.c: key derivation and cryptograms; scp03_sm.c: secure messaging).
 * Not an application API: the roles in scp03.h use these, and the tests use them
 * to check intermediate values (ICVs, padding) against published vectors. */
#ifndef TB_SCP03_INT_H
#define TB_SCP03_INT_H

#include <stddef.h>
#include <stdint.h>

#include "apdu.h"
#include "bytes.h"
#include "scp03.h"

/* Derivation constants (Amendment D Table 4-1). */
#define SCP_DC_CARD_CRYPTOGRAM 0x00u
#define SCP_DC_HOST_CRYPTOGRAM 0x01u
#define SCP_DC_CARD_CHALLENGE 0x02u
#define SCP_DC_S_ENC 0x04u
#define SCP_DC_S_MAC 0x06u
#define SCP_DC_S_RMAC 0x07u

/* ---- scp03_kdf.c */

/* The Amendment D KDF: PRF input 00x11 || constant || 00 || L(2, bits) || i || context,
 * output truncated to outlen bytes (1..32). */
int scp_kdf(const uint8_t *key, size_t keylen, uint8_t constant, const uint8_t *context,
	    size_t ncontext, uint8_t *out, size_t outlen);

/* S-ENC, S-MAC, S-RMAC into s from the static keys and host || card challenge. On
 * failure s's keys are wiped. */
int scp_session_keys(struct scp_session *s, const struct scp_keys *k, const uint8_t *context,
		     size_t ncontext);

/* Card (SCP_DC_CARD_CRYPTOGRAM) or host (SCP_DC_HOST_CRYPTOGRAM) cryptogram,
 * s->maclen bytes, keyed with S-MAC. */
int scp_cryptogram(const struct scp_session *s, uint8_t constant, const uint8_t *context,
		   size_t ncontext, uint8_t out[SCP_S16]);

/* Pseudo-random card challenge: KDF(static Key-ENC, 02, counter(3) || aid), len bytes. */
int scp_card_challenge(const struct scp_keys *k, uint32_t counter, const uint8_t *aid,
		       size_t aid_len, uint8_t *out, size_t len);

/* ---- scp03_sm.c */

/* 1 for the SWs SCP03 protects: 9000, 62XX, 63XX. */
int scp_sw_protected(uint16_t sw);

/* The big-endian 16-byte counter block plus one. */
void scp_counter_next(const uint8_t cur[SCP_BLOCK], uint8_t next[SCP_BLOCK]);

/* ICV = AES-ECB(S-ENC, counter block); for responses the block's first byte is 80. */
int scp_icv(const struct scp_session *s, const uint8_t counter[SCP_BLOCK], int response,
	    uint8_t icv[SCP_BLOCK]);

/* Length of n bytes after 80 00.. padding (always at least one byte added). */
size_t scp_padded_len(size_t n);
/* Writes the padding after n bytes at p, up to scp_padded_len(n). */
void scp_pad(uint8_t *p, size_t n);
/* Length of the data before the padding in the n bytes at p (n a positive multiple of
 * 16; the padding is 80 then up to 15 zeros), or TB_E_SCP_PADDING. */
int scp_unpad(const uint8_t *p, size_t n, size_t *m);

/* 1 when a protected command uses the extended form (and 3-byte Lc' in its MAC). */
int scp_extended(size_t lc, size_t ne);

/* Full 16-byte C-MAC over chain || hdr || data with S-MAC (chain not updated here). */
int scp_cmac(const struct scp_session *s, const uint8_t *hdr, size_t nhdr, const uint8_t *data,
	     size_t n, uint8_t tag[SCP_BLOCK]);
/* Full 16-byte R-MAC over chain || data || SW with S-RMAC. */
int scp_rmac(const struct scp_session *s, const uint8_t *data, size_t n, uint16_t sw,
	     uint8_t tag[SCP_BLOCK]);

/* Host side: the protected form of plain command a (level >= 01); on success the
 * chaining value and counter advance. TB_E_SCP_CLA, TB_E_INVAL, TB_E_NOSPACE. */
int scp_sm_wrap_command(struct scp_session *s, const struct apdu *a, struct wr *out);

/* Card side: verifies and opens protected command a (CLA already checked), writing
 * the plain command (CLA without b3). TB_E_SCP_CMAC, TB_E_SCP_PADDING, TB_E_NOSPACE
 * (out needs room for the encoded size of a). The session advances on success only. */
int scp_sm_unwrap_command(struct scp_session *s, const struct apdu *a, struct wr *out);

/* Card side: the protected response for data || sw (level has R-MAC). */
int scp_sm_wrap_response(const struct scp_session *s, const uint8_t *data, size_t n,
			 uint16_t sw, struct wr *out);

/* Host side: checks and opens a response (level has R-MAC): writes data || SW.
 * TB_E_SCP_RMAC, TB_E_SCP_PADDING, TB_E_NOSPACE. */
int scp_sm_unwrap_response(const struct scp_session *s, const uint8_t *data, size_t n,
			   uint16_t sw, struct wr *out, int *authenticated);

/* Wipes a session's keys and values. */
void scp_session_wipe(struct scp_session *s);

#endif
