/* svc_cmd.h - what the server's services put in their one secured se command (CREDIT,
 * TICKET STORE, FLAG SET; docs/se.md) and the credit receipt the se answers with. Pure
 * codecs over struct rd / struct wr: no I/O, no allocation; a failed call leaves its
 * output untouched. The channel (SCP03, the sam) wraps these bytes; nothing here is
 * secret. */
#ifndef TB_SERVER_SVC_CMD_H
#define TB_SERVER_SVC_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"

#define SVC_SERIAL_LEN 8u
#define SVC_RECEIPT_LEN 33u      /* serial counter kind amount balance kvn seq(3) mac(8) */
#define SVC_RECEIPT_BODY 25u     /* the bytes the receipt MAC covers */
#define SVC_RECEIPT_MAC_LEN 8u
#define SVC_TICKET_LEN 21u       /* id(8) service(4) not_before(4) not_after(4) uses(1) */
#define SVC_TOKEN_LEN 37u        /* 01 serial(8) service(4) expiry(4) nonce(16) limit(4) */
#define SVC_NONCE_LEN 16u
#define SVC_SIG_LEN 64u          /* ECDSA P-256 r || s */
#define SVC_TOKEN_VERSION 0x01u
#define SVC_TX_CREDIT 0x01u      /* receipt kind (se.h SE_TX_CREDIT) */
#define SVC_TX_DEBIT 0x02u       /* receipt kind (se.h SE_TX_DEBIT) */
#define SVC_CMD_MAX (5u + SVC_TOKEN_LEN + SVC_SIG_LEN) /* the longest command: FLAG SET */
#define SVC_PURSE_LEN 12u        /* GET BALANCE: balance(4) counter(4) maximum(4) */
#define SVC_TICKETS_MAX 8u       /* the se's ticket slots */
#define SVC_PAUTH_ID_LEN 16u
#define SVC_PAUTH_KEY_LEN 16u
#define SVC_BACKUP_VERSION 0x01u
#define SVC_BACKUP_HDR 18u       /* version serial(8) balance(4) counter(4) n(1) */
#define SVC_BACKUP_MAX (SVC_BACKUP_HDR + SVC_TICKETS_MAX * SVC_TICKET_LEN) /* 186 */

struct svc_receipt {
	uint8_t serial[SVC_SERIAL_LEN];
	uint32_t counter;
	uint8_t kind;
	uint32_t amount;
	uint32_t balance;
	uint8_t kvn;
	uint32_t seq;                        /* 24 bits */
	uint8_t mac[SVC_RECEIPT_MAC_LEN];
};

struct svc_ticket {
	uint64_t id;
	uint32_t service;
	uint32_t not_before;                 /* valid while not_before <= now <= not_after */
	uint32_t not_after;
	uint8_t uses;
};

struct svc_token {
	uint8_t serial[SVC_SERIAL_LEN];
	uint32_t service;
	uint32_t expiry;
	uint8_t nonce[SVC_NONCE_LEN];
	uint32_t limit;                      /* offline limit */
};

/* The commands, case 3 (no Le): 80 32 00 00 04 amount; 80 40 00 00 15 record; 80 64 00
 * 00 65 token signature. 0, TB_E_INVAL (amount 0; a ticket with uses 0 or not_before >
 * not_after, which the se would refuse anyway), TB_E_NOSPACE. */
int svc_cmd_credit(struct wr *w, uint32_t amount);
int svc_cmd_ticket_store(struct wr *w, const struct svc_ticket *t);
int svc_cmd_flag_set(struct wr *w, const uint8_t token[SVC_TOKEN_LEN],
		     const uint8_t sig[SVC_SIG_LEN]);

/* The ticket record and the flag token alone (for the sam's SIGN: the token bytes). */
int svc_ticket_put(struct wr *w, const struct svc_ticket *t);
int svc_ticket_get(struct rd *r, struct svc_ticket *out);
int svc_token_put(struct wr *w, const struct svc_token *t);
/* TB_E_INVAL for a version other than 01. */
int svc_token_get(struct rd *r, struct svc_token *out);

/* The se's purse and tickets as the server backs them up (sealed by the sam into the
 * vault, slot 1; docs/services.md "Backup"): version 01 || serial || balance || counter ||
 * n(0..8) || n ticket records as the se listed them (spent ones too). */
struct svc_backup {
	uint8_t serial[SVC_SERIAL_LEN];
	uint32_t balance;
	uint32_t counter;
	size_t n;
	struct svc_ticket t[SVC_TICKETS_MAX];
};

/* Case 2 reads of the wallet (80 ins 00 00 00): GET BALANCE 30, TICKET LIST 42. */
int svc_cmd_read(struct wr *w, uint8_t ins);
/* PAUTH SET 80 60 00 00 20 id key (level 33: the key travels under C-DEC). The caller
 * wipes w's bytes after use. */
int svc_cmd_pauth_set(struct wr *w, const uint8_t id[SVC_PAUTH_ID_LEN],
		      const uint8_t key[SVC_PAUTH_KEY_LEN]);
/* GET BALANCE's data: exactly 12 bytes (TB_E_TRUNC, TB_E_LEFTOVER). */
int svc_purse_parse(const uint8_t *b, size_t n, uint32_t *balance, uint32_t *counter);
/* TICKET LIST's data: whole 21-byte records, at most 8 (TB_E_TRUNC: a partial record,
 * TB_E_LEFTOVER: more than 8). Records are taken as the se wrote them (uses 0 too). */
int svc_tickets_parse(const uint8_t *b, size_t n, struct svc_backup *out);
/* The backup's plaintext. put: TB_E_INVAL for n > 8, TB_E_NOSPACE. get: exactly one
 * backup, version 01 (TB_E_INVAL), n <= 8 (TB_E_INVAL), TB_E_TRUNC, TB_E_LEFTOVER. */
int svc_backup_put(struct wr *w, const struct svc_backup *b);
int svc_backup_get(const uint8_t *p, size_t n, struct svc_backup *out);

/* Exactly SVC_RECEIPT_LEN bytes: TB_E_TRUNC when shorter, TB_E_LEFTOVER when longer. */
int svc_receipt_parse(const uint8_t *b, size_t n, struct svc_receipt *out);

#endif
