/* rmsg.h - the relay messages between a reader and the server (docs/reader.md, the flows
 * contract): carried as ENVELOPE payloads through the se and the phone, and the two
 * plain commands (GET REQUEST, RESULT) of the reader <-> server SCP03 channel with
 * their REQUEST and RESULT data. Pure codecs over struct rd / struct wr: no I/O, no
 * allocation, nothing secret. Integers big-endian.
 *
 * Decoders consume the whole input (trailing bytes: TB_E_LEFTOVER, short: TB_E_TRUNC),
 * return pointers into the caller's buffer, and write their outputs only on success.
 * Encoders check every field first and leave the writer untouched on any error.
 *
 * reader -> server
 *   01 HELLO  01 || version(1) = 01 || reader id(4)                          6 bytes
 *   02 AUTH   02 || reader id(4) || len(1) || INITIALIZE UPDATE response (data || SW,
 *             len 31..34)
 *   03 DATA   03 || ea_sw(2) || wrapped response of GET REQUEST (data || R-MAC || SW,
 *             2.. bytes)
 * server -> reader (the answers)
 *   81        81 || INITIALIZE UPDATE APDU (5..22 bytes)
 *   82        82 || ea_len(1) || EXTERNAL AUTHENTICATE APDU (ea_len 5..37) ||
 *             wrapped GET REQUEST APDU (4.. bytes, the rest)
 *   83        83 || wrapped RESULT command APDU (4.. bytes)
 *   8F        8F || code(1, 1..5) || reason (1..64 bytes printable ASCII)
 * Every message, whole, is at most RMSG_MAX (the se's ENVELOPE limit). */
#ifndef TB_RMSG_H
#define TB_RMSG_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

#define RMSG_MAX 1024u            /* SE_ENVELOPE_MAX: payload and answer */
#define RMSG_VERSION 0x01u

/* Message types (first byte). */
#define RMSG_HELLO 0x01u
#define RMSG_AUTH 0x02u
#define RMSG_DATA 0x03u
#define RMSG_ANS_HELLO 0x81u
#define RMSG_ANS_AUTH 0x82u
#define RMSG_ANS_DATA 0x83u
#define RMSG_ANS_REFUSE 0x8Fu

#define RMSG_IU_RESP_MIN 31u      /* INITIALIZE UPDATE response incl. SW, S8 random */
#define RMSG_IU_RESP_MAX 34u      /* ... S8 pseudo-random (counter) */
#define RMSG_IU_CMD_MIN 5u
#define RMSG_IU_CMD_MAX 22u       /* 80 50 kvn 00 Lc challenge(8|16) Le */
#define RMSG_EA_MIN 5u
#define RMSG_EA_MAX 37u           /* 84 82 level 00 Lc cryptogram(16) C-MAC(16) */
#define RMSG_APDU_MIN 4u          /* a wrapped command: at least its header */
#define RMSG_REASON_MAX 64u

/* Refusal codes of an 8F answer. */
#define RMSG_REFUSE_UNKNOWN_READER 1u
#define RMSG_REFUSE_AUTH 2u
#define RMSG_REFUSE_NO_STAGE 3u
#define RMSG_REFUSE_MALFORMED 4u
#define RMSG_REFUSE_INTERNAL 5u

/* The reader's own channel (reader = SCP03 card role, i = 70, S8, level 33): its key
 * diversification data and the AID that enters its pseudo-random card challenge. The
 * host (the server's sam) uses the same two. KDD = 00 00 || 00 00 00 00 || id(4), i.e.
 * 00 00 || the reader's diversification serial (docs/admin.md: 00000000 || id). */
#define RMSG_READER_AID_LEN 11u
extern const uint8_t rmsg_reader_aid[RMSG_READER_AID_LEN]; /* F0 "TAPBRIDGE" 02 */
#define RMSG_READER_I 0x70u
void rmsg_reader_serial(uint32_t reader_id, uint8_t serial[8]);
void rmsg_reader_kdd(uint32_t reader_id, uint8_t kdd[10]);

/* ------------------------------------------------------ ENVELOPE payloads --- */

/* One decoded message of either direction; which fields are set depends on type. */
struct rmsg {
	uint8_t type;             /* RMSG_HELLO ... RMSG_ANS_REFUSE */
	uint32_t reader_id;       /* HELLO, AUTH */
	const uint8_t *a;         /* AUTH: IU response; DATA: wrapped response; 81: IU
	                             APDU; 82: EA APDU; 83: wrapped RESULT; 8F: reason */
	size_t a_n;
	const uint8_t *b;         /* 82: wrapped GET REQUEST APDU */
	size_t b_n;
	uint16_t ea_sw;           /* DATA */
	uint8_t code;             /* 8F */
};

int rmsg_hello_enc(struct wr *w, uint32_t reader_id);
int rmsg_auth_enc(struct wr *w, uint32_t reader_id, const uint8_t *iu_resp, size_t n);
int rmsg_data_enc(struct wr *w, uint16_t ea_sw, const uint8_t *resp, size_t n);
int rmsg_ans_hello_enc(struct wr *w, const uint8_t *iu_cmd, size_t n);
int rmsg_ans_auth_enc(struct wr *w, const uint8_t *ea, size_t ea_n, const uint8_t *get_req,
		      size_t get_req_n);
int rmsg_ans_data_enc(struct wr *w, const uint8_t *result_cmd, size_t n);
/* reason: n bytes (1..64) of printable ASCII (20..7E), no NUL needed. */
int rmsg_refuse_enc(struct wr *w, uint8_t code, const char *reason, size_t n);

/* A reader -> server message (01 02 03): TB_E_RMSG_TYPE for any other first byte. */
int rmsg_up_dec(const uint8_t *b, size_t n, struct rmsg *out);
/* A server -> reader answer (81 82 83 8F): TB_E_RMSG_TYPE for any other first byte.
 * Field limits: TB_E_RMSG_FIELD (lengths, version, code), TB_E_RMSG_TEXT (reason). */
int rmsg_down_dec(const uint8_t *b, size_t n, struct rmsg *out);

/* ------------------------------------------------- plain channel commands --- */

#define RMSG_CLA 0x80u
#define RMSG_INS_GET_REQUEST 0xE2u
#define RMSG_INS_RESULT 0xE4u

/* -------------------------------------------------------- REQUEST, RESULT --- */

#define RMSG_RECORDS_MAX 8u       /* records in one REQUEST, items in one RESULT */
#define RMSG_DENY_MAX 32u
#define RMSG_INFO_MAX 64u
#define RMSG_SERIAL_LEN 8u
#define RMSG_RECORD_HDR 27u       /* kind seq time service serial len */

/* Record kinds and their bodies. */
enum rmsg_kind {
	RMSG_K_PAY = 1,           /* receipt(33) */
	RMSG_K_ORDER = 2,         /* receipt(33) || n(1..16) || n x (item u32 || qty u16) */
	RMSG_K_TICKET = 3,        /* ticket record after the use (21) */
	RMSG_K_PAUTH = 4,         /* id(16) || card nonce(8) || challenge(16) || proof(16) */
	RMSG_K_FLAG = 5,          /* nonce(16) || amount(4) || receipt (0 or 33) */
	RMSG_K_REFUND = 6,        /* the payment's idempotency key (1..47 bytes, 21..7E) ||
	                           * amount(4, >= 1); online only */
};
#define RMSG_RECEIPT_LEN 33u
#define RMSG_TICKET_LEN 21u
#define RMSG_PAUTH_LEN 56u
#define RMSG_ITEMS_MAX 16u
#define RMSG_ITEM_LEN 6u
#define RMSG_BODY_MAX (RMSG_RECEIPT_LEN + 1u + RMSG_ITEMS_MAX * RMSG_ITEM_LEN) /* 130 */
#define RMSG_FLAG_LEN_NO_RECEIPT 20u
#define RMSG_REFUND_KEY_MAX 47u   /* DB_KEY_MAX less its NUL */
#define RMSG_REFUND_LEN_MIN 5u
#define RMSG_REFUND_LEN_MAX (RMSG_REFUND_KEY_MAX + 4u) /* 51 */

/* A REFUND body: key (key_n bytes, not NUL-terminated) || amount. refund_dec points key
 * into body; both check the rules above (TB_E_RMSG_FIELD, TB_E_RMSG_TEXT for the key's
 * bytes) and write nothing on failure. */
int rmsg_refund_enc(struct wr *w, const char *key, size_t key_n, uint32_t amount);
int rmsg_refund_dec(const uint8_t *body, size_t n, const char **key, size_t *key_n,
		    uint32_t *amount);

struct rmsg_record {
	uint8_t kind;             /* enum rmsg_kind */
	uint32_t seq;             /* the reader's own sequence, >= 1 */
	int64_t time;             /* seconds */
	uint32_t service;
	uint8_t serial[RMSG_SERIAL_LEN];
	const uint8_t *body;      /* borrowed */
	size_t body_n;            /* must fit the kind (above): TB_E_RMSG_FIELD */
};

/* One record (also the outbox file's record format). The decoder checks kind, seq and
 * the body length for the kind. */
int rmsg_record_enc(struct wr *w, const struct rmsg_record *r);
int rmsg_record_dec(struct rd *r, struct rmsg_record *out);

/* REQUEST: count(1, 0..8) || records. rmsg_request_dec fills out[0..count) (max entries
 * of room; a count above max or 8 is TB_E_RMSG_FIELD). */
int rmsg_request_enc(struct wr *w, const struct rmsg_record *r, size_t n);
int rmsg_request_dec(const uint8_t *b, size_t n, struct rmsg_record *out, size_t max,
		     size_t *count);

/* RESULT status per record. Every status is final for the reader. */
#define RMSG_ST_BOOKED 0u
#define RMSG_ST_REPLAY 1u
#define RMSG_ST_REFUSED 2u

struct rmsg_result_item {
	uint32_t seq;
	uint8_t status;           /* 0..2 */
	const char *info;         /* info_n bytes of printable ASCII, not NUL-terminated */
	size_t info_n;            /* 0..64 */
};

/* RESULT: count(1, 0..8) || count x (seq(4) status(1) info_len(1) info) ||
 * deny_count(1, 0..32) || deny_count x serial(8). *deny points into b. */
int rmsg_result_enc(struct wr *w, const struct rmsg_result_item *it, size_t n,
		    const uint8_t (*deny)[RMSG_SERIAL_LEN], size_t deny_n);
int rmsg_result_dec(const uint8_t *b, size_t n, struct rmsg_result_item *out, size_t max,
		    size_t *count, const uint8_t **deny, size_t *deny_n);

/* The largest REQUEST that still fits one DATA message once wrapped at level 33
 * (3 + padded data + R-MAC 8 + SW 2 <= RMSG_MAX). */
#define RMSG_REQUEST_MAX 1007u

#endif
