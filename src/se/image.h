/* image.h - the se's persistent data ("EEPROM image") as records on data pages of the
 * commit journal, and the RAM mirror of everything in it that is not secret.
 *
 * Page layout (data pages of journal.h; every page is written only through the journal):
 *   page 0      identity: "TBSE" 01, serial(8), personalised, max balance, lockout limit
 *   pages 1-4   key set slots 0..3: meta (kvn, role, key length, failures, locked,
 *               sequence counter) in bytes 0..15, Key-ENC/MAC/DEK in bytes 16..111
 *   page 5      purse: balance, transaction counter, last kind and amount
 *   page 6      wallet: locked, disabled-functions bitmap, relay permit, personal-auth
 *               identifier (bytes 0..63), personal-auth key (bytes 64..79)
 *   page 7      authenticity-confirmation flag: the server-signed token and signature
 *   pages 8-9   tickets: 4 slots of 28 bytes each per page
 * The exact bytes of each record are in image.c and docs/se.md. Every record starts with
 * a kind byte; img_load() refuses an image whose records do not decode or whose values
 * break an invariant (TB_E_SE_IMAGE), so a half-formatted image is never used.
 *
 * Secrets (static keys, the personal-auth key) are not in the mirror: they are read from
 * their page when needed into a caller's buffer, which the caller wipes. */
#ifndef TB_SE_IMAGE_H
#define TB_SE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "journal.h"
#include "scp03.h"

#define SE_SERIAL_LEN 8
#define SE_KEYSET_MAX 4
#define SE_TICKET_MAX 8
#define SE_TICKET_ID_LEN 8
#define SE_PAUTH_ID_LEN 16
#define SE_PAUTH_KEY_LEN 16
/* Flag token: version(1)=01 serial(8) service(4) expiry(4) nonce(16) offline limit(4). */
#define SE_FLAG_TOKEN_LEN 37
#define SE_FLAG_NONCE_LEN 16
#define SE_FLAG_SIG_LEN 64
#define SE_FLAG_LEN (SE_FLAG_TOKEN_LEN + SE_FLAG_SIG_LEN)

#define SE_DEFAULT_KVN 0xFFu          /* the factory key set 404142..4F */
#define SE_DEFAULT_LOCKOUT 10u
#define SE_DEFAULT_MAX_BALANCE 100000u

/* Pages (data pages of the journal). */
#define IMG_PG_IDENT 0u
#define IMG_PG_KEYSET 1u  /* + slot */
#define IMG_PG_PURSE 5u
#define IMG_PG_WALLET 6u
#define IMG_PG_FLAG 7u
#define IMG_PG_TICKET 8u  /* + slot / IMG_TICKETS_PER_PAGE */
#define IMG_PAGES 10u
#define IMG_TICKETS_PER_PAGE 4u

/* Secret regions, for img_commit() patches. */
#define IMG_KEYS_AT 16u            /* key set page: enc(32) mac(32) dek(32) */
#define IMG_KEYS_LEN (3u * SCP_KEY_MAX)
#define IMG_PAUTH_KEY_AT 64u       /* wallet page */

enum se_role {
	SE_ROLE_NONE = 0,
	SE_ROLE_SERVER = 1,
	SE_ROLE_READER = 2,
	SE_ROLE_DEFAULT = 3,
};

struct se_keyset_meta {
	uint8_t present;
	uint8_t kvn;
	uint8_t role;      /* enum se_role */
	uint8_t keylen;    /* 16, 24, 32 */
	uint8_t failures;  /* consecutive failed EXTERNAL AUTHENTICATEs */
	uint8_t locked;
	uint32_t counter;  /* pseudo-random sequence counter (last value used) */
};

struct se_ticket {
	uint8_t used;
	uint8_t id[SE_TICKET_ID_LEN];
	uint32_t service;
	uint32_t not_before;
	uint32_t not_after;
	uint8_t uses;      /* uses left; 0 = spent (the slot may be reused) */
};

/* The mirror of the persistent state (secrets excluded). */
struct se_image {
	uint8_t serial[SE_SERIAL_LEN];
	uint8_t personalised;
	uint8_t lockout_limit;
	uint32_t max_balance;
	struct se_keyset_meta ks[SE_KEYSET_MAX];
	uint32_t balance;
	uint32_t tx_counter;
	uint8_t last_kind;
	uint32_t last_amount;
	uint8_t locked;
	uint16_t disabled;
	uint8_t permit;
	uint32_t permit_service;
	uint32_t permit_expiry;
	uint8_t pauth;
	uint8_t pauth_id[SE_PAUTH_ID_LEN];
	uint8_t flag;
	uint8_t flag_token[SE_FLAG_LEN];
	struct se_ticket tickets[SE_TICKET_MAX];
};

/* Raw bytes for a secret region of one page, applied on top of the encoded record. */
struct img_patch {
	uint16_t page;
	uint16_t off;
	const uint8_t *p;
	size_t n;
};

/* Reads and checks every record. 0, TB_E_SE_IMAGE, or a journal error. */
int img_load(struct jnl *j, struct se_image *img);

/* One transaction: every page whose record in next (plus patches) differs from what is
 * on the image is staged, then committed. 0 when next is durable. On a journal error
 * the journal needs jnl_recover() and the outcome (old or new) is what it recovers.
 * TB_E_INVAL for a patch outside a page or more pages than a transaction holds. */
int img_commit(struct jnl *j, const struct se_image *next, const struct img_patch *patches,
	       size_t npatch);

/* The static keys of key set slot `slot` (SECRET: wipe k after use). */
int img_read_keys(struct jnl *j, unsigned slot, struct scp_keys *k);
/* The personal-auth key (SECRET). */
int img_read_pauth_key(struct jnl *j, uint8_t key[SE_PAUTH_KEY_LEN]);

/* The invariants every loaded image satisfies (also a test and fuzz oracle):
 * 0 or TB_E_SE_IMAGE. */
int img_check(const struct se_image *img);

/* Slot of the present key set with this KVN, or -1. */
int img_keyset_find(const struct se_image *img, uint8_t kvn);

/* Places key set kvn with role and key length into m (keys are the caller's patch):
 * the slot of a present set with that KVN, else (before personalisation) the default
 * set's slot, else the first free one; TB_E_SE_FULL when there is none. The counter and
 * failures start at 0. A SERVER or READER set ends the factory state: the default set
 * is removed and m->personalised set. *slot gets the slot used. */
int img_keyset_place(struct se_image *m, uint8_t kvn, uint8_t role, uint8_t keylen, int *slot);

/* Writes a fresh image: identity with serial, the default key set in slot 0, empty
 * records. Page 0 is invalidated first and written last, so a cut leaves an image that
 * img_load() refuses, never a mix. Uses its own journal over st. */
int img_format(const struct se_store *st, const uint8_t serial[SE_SERIAL_LEN]);

#endif
