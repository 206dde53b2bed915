/* scp03.h - GlobalPlatform SCP03 (Card Spec Amendment D), both roles, as pure state
 * machines over APDU bytes: no I/O, no allocation, no randomness inside (the caller
 * passes every challenge in). Byte-level notes: docs/scp03.md, shared scp03-notes.
 *
 * Conventions of this module
 *  - Functions return 0 or a negative TB_E_* (err.h). Output goes through a caller-owned
 *    struct wr; when a call fails before any protocol decision (bad argument, TB_E_NOSPACE,
 *    wrong state) it changes neither the state nor the writer.
 *  - Security failures are sticky: the host closes (every later call returns
 *    TB_E_SCP_CLOSED until scp_host_begin()), the card aborts (every later command is
 *    answered 6982 until a new INITIALIZE UPDATE). Session keys are wiped at that moment.
 *  - S8 / S16: chosen from the i parameter, S16 when (i & SCP_I_S16). Challenge,
 *    cryptogram, C-MAC and R-MAC are 8 bytes in S8 and 16 bytes in S16.
 *  - Extended length rule (GlobalPlatformPro's): a protected command is sent in extended
 *    form, and its C-MAC input carries the 3-byte Lc' (00 HH LL), whenever Lc' > 255 or
 *    Ne > 256; otherwise both use the 1-byte form. The card reconstructs the MAC input
 *    with the same rule from Lc' and Ne of the command it received.
 *  - CLA rule: only the basic channel. A plain command given to the host must have CLA
 *    80, 84, 00 or 04 (84/04 are taken as 80/00); it is sent as CLA | 04. Any other CLA
 *    (a logical-channel number, the further-channel coding, ISO SM b4, command chaining)
 *    is refused with TB_E_SCP_CLA. The card accepts protected commands with CLA 84 or 04
 *    only and hands the application CLA 80 or 00.
 *  - Le is not covered by the C-MAC (as in the spec and every peer): a relay may change
 *    Ne as long as it does not cross the extended-length threshold.
 *  - Only 9000, 62XX and 63XX responses are protected (R-ENC, R-MAC). Every other SW
 *    travels bare and is NOT authenticated; see struct scp_resp.
 *  - Every MAC and cryptogram is compared with ct_eq(); C-MAC / R-MAC are verified before
 *    anything is decrypted. */
#ifndef TB_SCP03_H
#define TB_SCP03_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

#define SCP_KEY_MAX 32u        /* AES-256 */
#define SCP_BLOCK 16u          /* AES block, full CMAC, chaining value, counter block */
#define SCP_KDD_LEN 10u        /* key diversification data in INITIALIZE UPDATE */
#define SCP_AID_MIN 5u
#define SCP_AID_MAX 16u
#define SCP_S8 8u              /* challenge / cryptogram / MAC length in S8 mode */
#define SCP_S16 16u            /* ... in S16 mode */
#define SCP_COUNTER_LAST 0xFFFFFFu /* a 3-byte sequence counter at this value is exhausted */
/* INITIALIZE UPDATE response incl. SW: KDD, key info, challenge, cryptogram, counter, SW. */
#define SCP_IU_RESP_MAX (SCP_KDD_LEN + 3u + 2u * SCP_S16 + 3u + 2u)

/* The i parameter (key information, third byte). */
#define SCP_I_S16 0x01u           /* b1: S16 mode (Amendment D v1.2) */
#define SCP_I_PSEUDO_RANDOM 0x10u /* b5: card challenge from the sequence counter */
#define SCP_I_RMAC 0x20u          /* b6: R-MAC supported */
#define SCP_I_RENC 0x40u          /* b7: R-ENC supported (only together with b6) */
#define SCP_I_RFU 0x8Eu           /* bits a card of ours never sets */

/* Security level bits (EXTERNAL AUTHENTICATE P1). Valid levels: 00 01 03 11 13 33. */
#define SCP_LEVEL_CMAC 0x01u
#define SCP_LEVEL_CDEC 0x02u
#define SCP_LEVEL_RMAC 0x10u
#define SCP_LEVEL_RENC 0x20u

/* A static key set: Key-ENC, Key-MAC, Key-DEK of the same length (16, 24 or 32). */
struct scp_keys {
	uint8_t enc[SCP_KEY_MAX];
	uint8_t mac[SCP_KEY_MAX];
	uint8_t dek[SCP_KEY_MAX];
	size_t len;
};

enum scp_mode {
	SCP_MODE_AUTO = 0, /* S8 or S16 from i; the host challenge length must agree */
	SCP_MODE_S8 = 8,
	SCP_MODE_S16 = 16,
};

/* The state of an open channel, the same for both roles (152 bytes on LP64). */
struct scp_session {
	uint8_t s_enc[SCP_KEY_MAX];
	uint8_t s_mac[SCP_KEY_MAX];
	uint8_t s_rmac[SCP_KEY_MAX];
	uint8_t chain[SCP_BLOCK];   /* MAC chaining value: full CMAC of the last command */
	uint8_t counter[SCP_BLOCK]; /* encryption counter block of the last command */
	size_t keylen;              /* 16, 24, 32 */
	size_t maclen;              /* 8 (S8) or 16 (S16) */
	uint8_t level;              /* SCP_LEVEL_* bits */
};

/* 1 for the six security levels Amendment D defines. */
int scp_level_valid(uint8_t level);
/* 0 when the card's i offers what level asks for (R-MAC, R-ENC), else TB_E_SCP_LEVEL
 * (also for a level that is not one of the six). */
int scp_level_check(uint8_t level, uint8_t i);

/* ---------------------------------------------------------------- host role --- */

/* What scp_host_begin() needs. Pointers are borrowed for the call only (copied). */
struct scp_host_config {
	const struct scp_keys *keys;
	const uint8_t *host_challenge; /* 8 (S8) or 16 (S16) fresh random bytes */
	size_t host_challenge_len;
	uint8_t kvn;                   /* INITIALIZE UPDATE P1; 00 = first available */
	uint8_t level;                 /* requested security level */
	enum scp_mode mode;
	const uint8_t *aid;            /* optional (NULL): check a pseudo-random challenge */
	size_t aid_len;                /* 5..16 when aid is set */
};

enum scp_host_state {
	SCP_HOST_IDLE = 0,   /* zeroed struct; call scp_host_begin() */
	SCP_HOST_WAIT_IU,    /* INITIALIZE UPDATE sent */
	SCP_HOST_WAIT_EA,    /* EXTERNAL AUTHENTICATE sent */
	SCP_HOST_OPEN,       /* authenticated: wrap / unwrap */
	SCP_HOST_CLOSED,     /* after a failure or scp_host_close(); keys wiped */
};

/* The off-card entity. Fixed size (392 bytes on LP64, checked by a test);
 * the caller owns it. Static keys are held only until the INITIALIZE UPDATE
 * response has been processed. */
struct scp_host {
	enum scp_host_state state;
	struct scp_session s;
	struct scp_keys keys;
	uint8_t host_challenge[SCP_S16];
	uint8_t card_challenge[SCP_S16];
	uint8_t card_cryptogram[SCP_S16];
	uint8_t host_cryptogram[SCP_S16];
	size_t challenge_len;
	uint8_t aid[SCP_AID_MAX];
	size_t aid_len;
	uint8_t kdd[SCP_KDD_LEN];
	uint8_t kvn;                /* requested, then the one the card reported */
	uint8_t level;
	uint8_t i;
	enum scp_mode mode;
	uint32_t sequence_counter;  /* pseudo-random mode: the card's counter */
	int response_due;           /* a wrapped command awaits scp_host_unwrap() */
};

/* Starts a handshake (closing any session held in h) and writes INITIALIZE UPDATE:
 * 80 50 KVN 00 Lc host-challenge 00. TB_E_INVAL (challenge length not 8/16 or not
 * the one mode asks for, bad AID length), TB_E_KEYLEN, TB_E_SCP_LEVEL (not one of
 * the six levels), TB_E_NOSPACE. */
int scp_host_begin(struct scp_host *h, const struct scp_host_config *cfg, struct wr *out);

/* Takes the INITIALIZE UPDATE response (data and SW) and writes EXTERNAL AUTHENTICATE:
 * 84 82 level 00 Lc host-cryptogram C-MAC (chaining from 16 zero bytes).
 * Errors, each closing h: TB_E_SCP_SW (SW not 9000; after 6700 a caller may retry
 * with a 16-byte challenge), TB_E_SCP_RESPONSE (length does not match i, SCP id not 03,
 * KVN not the one asked for, S8/S16 not the one configured), TB_E_SCP_LEVEL (i does
 * not offer the level), TB_E_SCP_CARD_CRYPTOGRAM (wrong keys: do not retry blindly,
 * cards lock key sets), TB_E_SCP_CHALLENGE (pseudo-random challenge does not match
 * the counter and AID). TB_E_NOSPACE and TB_E_SCP_STATE leave h unchanged. */
int scp_host_init_update(struct scp_host *h, const uint8_t *resp, size_t n, struct wr *out);

/* Takes the EXTERNAL AUTHENTICATE response: 9000 opens the channel; anything else
 * closes h with TB_E_SCP_SW (TB_E_SCP_RESPONSE when data came with it). */
int scp_host_ext_auth(struct scp_host *h, const uint8_t *resp, size_t n);

/* Protects one command APDU (cases 1-4, short or extended) for the current level:
 * C-DEC first (the counter advances for every command, data-less ones included;
 * nothing is encrypted when there is no data), then the C-MAC; Le is appended
 * unchanged. At level 00 the command is passed through unchanged. cmd and out must
 * not overlap. TB_E_SCP_CLA, TB_E_APDU_* (cmd malformed), TB_E_INVAL (too long to
 * protect), TB_E_NOSPACE, TB_E_SCP_STATE (not open), TB_E_SCP_CLOSED. */
int scp_host_wrap(struct scp_host *h, const uint8_t *cmd, size_t n, struct wr *out);

/* The result of scp_host_unwrap(). `authenticated` is 1 only when an R-MAC over the
 * data and SW verified. A bare status word (any SW but 9000/62XX/63XX, or any
 * response at a level without R-MAC) is passed up with authenticated = 0: it may
 * have been made up by whoever relays the APDUs. Callers must never base a security
 * decision (money, tickets, key changes, "it worked") on an unauthenticated SW. */
struct scp_resp {
	uint16_t sw;
	size_t n;          /* plain data bytes written before SW1 SW2 */
	int authenticated;
};

/* Checks and opens the response to the last wrapped command: writes plain data then
 * SW1 SW2 to out. Under R-MAC, the R-MAC is verified (without changing the chaining
 * value) before R-ENC data is decrypted. TB_E_SCP_RMAC (R-MAC wrong or missing, or data
 * with an unprotected SW) and TB_E_SCP_PADDING close h. TB_E_APDU_RESP (under 2
 * bytes), TB_E_NOSPACE and TB_E_SCP_STATE (no wrapped command awaiting its response)
 * change nothing. A bare error SW does not close the channel. */
int scp_host_unwrap(struct scp_host *h, const uint8_t *resp, size_t n, struct scp_resp *info,
		    struct wr *out);

/* Ends the channel and wipes every key; later calls return TB_E_SCP_CLOSED. */
void scp_host_close(struct scp_host *h);

/* ---------------------------------------------------------------- card role --- */

struct scp_card_config {
	uint8_t i;                  /* the card's SCP03 i parameter (no RFU bits) */
	uint8_t kdd[SCP_KDD_LEN];
	const uint8_t *aid;         /* pseudo-random mode: the AID that enters the challenge */
	size_t aid_len;             /* 5..16; copied */
};

enum scp_card_state {
	SCP_CARD_STATE_IDLE = 0,   /* no session: plain commands pass unauthenticated */
	SCP_CARD_STATE_NEED_KEYS,  /* INITIALIZE UPDATE parsed: waiting for scp_card_supply_keys() */
	SCP_CARD_STATE_PERSIST,    /* its response is held until the counter is saved */
	SCP_CARD_STATE_HANDSHAKE,  /* INITIALIZE UPDATE answered: waiting for EXTERNAL AUTHENTICATE */
	SCP_CARD_STATE_OPEN,       /* authenticated session at s.level */
	SCP_CARD_STATE_CLOSED,     /* after a security error: 6982 until INITIALIZE UPDATE */
};

/* What the caller must do after a card call. */
enum scp_card_action {
	SCP_CARD_SEND = 1,   /* out holds a response APDU: send it */
	SCP_CARD_NEED_KEYS,  /* INITIALIZE UPDATE for res.kvn (00 = first available):
	                        call scp_card_supply_keys() or scp_card_refuse() */
	SCP_CARD_PERSIST,    /* write res.counter durably as key set res.kvn's sequence
	                        counter, then call scp_card_counter_saved() */
	SCP_CARD_DELIVER,    /* out holds the plain command for the application; give its
	                        response (data || SW) to scp_card_respond() */
};

enum scp_card_auth {
	SCP_CARD_AUTH_NONE = 0,
	SCP_CARD_AUTH_OK,     /* EXTERNAL AUTHENTICATE succeeded for key set res.kvn */
	SCP_CARD_AUTH_FAILED, /* EXTERNAL AUTHENTICATE with a wrong MAC or host cryptogram
	                         for key set res.kvn: count it, lock the key set at a limit */
};

struct scp_card_result {
	enum scp_card_action action;
	enum scp_card_auth auth;
	int err;           /* TB_E_* reason behind an error SW the card role made, else 0 */
	uint8_t kvn;
	uint32_t counter;  /* SCP_CARD_PERSIST: the new sequence counter value */
	int authenticated; /* DELIVER: 1 when the command came in an authenticated session */
	uint8_t level;     /* DELIVER: the session's level; at 01 and above the C-MAC (and
	                      C-DEC) of this very command were verified */
};

/* The card side (the IC applet's secure channel). Fixed size (320 bytes on LP64,
 * checked by a test). Static keys are never stored in it. */
struct scp_card {
	enum scp_card_state state;
	struct scp_session s;
	uint8_t i;
	uint8_t kdd[SCP_KDD_LEN];
	uint8_t aid[SCP_AID_MAX];
	size_t aid_len;
	size_t challenge_len;
	uint8_t host_challenge[SCP_S16];
	uint8_t host_cryptogram[SCP_S16];  /* the one EXTERNAL AUTHENTICATE must carry */
	uint8_t kvn;
	uint8_t held[SCP_IU_RESP_MAX];     /* INITIALIZE UPDATE response until counter saved */
	size_t held_len;
	uint32_t held_counter;
	int await_app;                     /* a command was delivered, its response is due */
	int app_protected;                 /* ... and it came under C-MAC (wrap the response) */
};

/* Sets up an idle card. TB_E_INVAL for RFU bits or R-ENC without R-MAC in i, or a
 * missing / wrong-length AID in pseudo-random mode. */
int scp_card_init(struct scp_card *c, const struct scp_card_config *cfg);

/* Takes one received command APDU. out needs room for n + 2 bytes (TB_E_NOSPACE,
 * checked first); cmd and out must not overlap. Returns 0 with the outcome in res (a
 * negative code only for misuse). A command that arrives while a NEED_KEYS or PERSIST
 * step is pending drops that INITIALIZE UPDATE. Outcomes:
 *  - CLA 80 INS 50 (INITIALIZE UPDATE): aborts any session; P2 not 00 -> 6A86, Lc not
 *    the challenge length of the card's mode -> 6700, else NEED_KEYS.
 *  - After an answered INITIALIZE UPDATE, anything but 84 82 -> 6982 (CLOSED).
 *  - EXTERNAL AUTHENTICATE after an answered INITIALIZE UPDATE: P2 or level invalid ->
 *    6A86, level not offered by i -> 6982, wrong length -> 6700, wrong C-MAC or host
 *    cryptogram -> 6300 with auth = FAILED; success -> bare 9000, auth = OK. Every
 *    failure leaves no session (CLOSED).
 *  - Open session, level 01 and up: the command must carry CLA 84/04 and a valid C-MAC
 *    (and C-DEC padding); then it is DELIVERed in plain form. Otherwise 6982 and the
 *    session is aborted (CLOSED).
 *  - CLOSED: 6982 for everything but INITIALIZE UPDATE.
 *  - No session: plain commands are DELIVERed with authenticated = 0; a command with a
 *    secure-messaging CLA gets 6982 (and the card is CLOSED). */
int scp_card_command(struct scp_card *c, const uint8_t *cmd, size_t n,
		     struct scp_card_result *res, struct wr *out);

/* Answers a pending INITIALIZE UPDATE with the key set the caller resolved (its real
 * KVN in kvn). Pseudo-random mode: counter is the stored value; 6985 when it is
 * SCP_COUNTER_LAST, else the card uses counter + 1 and returns PERSIST (challenge is
 * ignored). Random mode: challenge carries 8/16 fresh random bytes; returns SEND.
 * out needs SCP_IU_RESP_MAX bytes of room. TB_E_SCP_STATE, TB_E_KEYLEN, TB_E_INVAL
 * (challenge length) and TB_E_NOSPACE change nothing. */
int scp_card_supply_keys(struct scp_card *c, uint8_t kvn, const struct scp_keys *keys,
			 uint32_t counter, const uint8_t *challenge, size_t challenge_len,
			 struct scp_card_result *res, struct wr *out);

/* Answers a pending INITIALIZE UPDATE with a bare SW of the caller's choice (6A88 key
 * set not found, 6983 key set locked, 6581 counter could not be saved, ...). */
int scp_card_refuse(struct scp_card *c, uint16_t sw, struct scp_card_result *res,
		    struct wr *out);

/* Releases the held INITIALIZE UPDATE response once res.counter is durable (SEND).
 * If the counter cannot be written, call scp_card_refuse() instead. */
int scp_card_counter_saved(struct scp_card *c, struct scp_card_result *res, struct wr *out);

/* Protects the application's response (data || SW) to the delivered command: at a
 * level with R-MAC, 9000/62XX/63XX get R-ENC (if in the level and there is data) then
 * the R-MAC; any other SW is sent bare, without data. Otherwise the response passes
 * unchanged. out needs room for n + 32 bytes. TB_E_SCP_STATE when nothing was delivered,
 * TB_E_APDU_RESP, TB_E_NOSPACE. */
int scp_card_respond(struct scp_card *c, const uint8_t *resp, size_t n, struct wr *out);

/* Card reset, re-selection, channel close: ends the session, wipes its keys, IDLE. */
void scp_card_reset(struct scp_card *c);

/* ------------------------------------------------- introspection for tests --- */

/* A copy of a role's session values, SECRET: session keys included. For known-answer
 * tests and the replay trace tool only; never log it. */
struct scp_trace {
	uint8_t s_enc[SCP_KEY_MAX];
	uint8_t s_mac[SCP_KEY_MAX];
	uint8_t s_rmac[SCP_KEY_MAX];
	size_t keylen;
	uint8_t chain[SCP_BLOCK];
	uint8_t counter[SCP_BLOCK];
	size_t challenge_len;              /* = C-MAC / R-MAC length */
	uint8_t host_challenge[SCP_S16];
	uint8_t card_challenge[SCP_S16];   /* host role only */
	uint8_t card_cryptogram[SCP_S16];  /* host role only */
	uint8_t host_cryptogram[SCP_S16];
	uint8_t kdd[SCP_KDD_LEN];
	uint8_t kvn;
	uint8_t i;
	uint8_t level;
	uint32_t sequence_counter;         /* host role, pseudo-random mode */
};

/* Copies the session values once session keys exist (host: after its INITIALIZE
 * UPDATE response; card: after scp_card_supply_keys()). TB_E_SCP_STATE before,
 * TB_E_SCP_CLOSED after a close. The caller wipes t when done. */
int scp_host_trace(const struct scp_host *h, struct scp_trace *t);
int scp_card_trace(const struct scp_card *c, struct scp_trace *t);

#endif
