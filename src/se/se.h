/* se.h - the secure element core: a GlobalPlatform-style IC with an Issuer Security
 * Domain (SCP03 card role, key sets by KVN) and the wallet application (purse, tickets,
 * personal authentication, authenticity-confirmation flag, relay, lock), written the way
 * card firmware is: no heap, no I/O, one fixed-size state struct, persistent data only
 * through the commit journal. Commands, formats and the image layout: docs/se.md.
 *
 * Driving it (the adapter owns struct se, the store and the buffers):
 *   se_init()            once per power-up: recovers the journal, loads the image;
 *   se_apdu()            one command APDU on one interface -> one response APDU
 *                        (or SE_PENDING_RELAY: the answer comes from se_relay_answer());
 *   se_next_event()      drains what the phone must be told (relay payloads, ...);
 *   se_power()           reset / field off on one interface: its session ends.
 * Two interfaces, each with its own selected application and its own SCP03 session:
 * SE_IF_CONTACTLESS (the reader) and SE_IF_HOST (the phone; the server's secured APDUs
 * arrive here through the phone).
 *
 * Conventions: 0 or a negative TB_E_* (err.h). A command that fails answers an ISO
 * 7816-4 status word (the one TB_E_* -> SW table is se_sw()) and changes no persistent
 * state. Pointers in struct se are borrowed (config, store), never owned. */
#ifndef TB_SE_H
#define TB_SE_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "image.h"
#include "journal.h"
#include "scp03.h"
#include "store.h"

#define SE_RAM_BUDGET 8192        /* bytes: sizeof(struct se) stays below (a test checks) */
#define SE_ENVELOPE_MAX 1024u     /* longest relay payload (ENVELOPE data) and relay answer */
/* Longest command APDU accepted: an ENVELOPE of SE_ENVELOPE_MAX bytes at level 33
 * (extended header 7, padding up to 16, C-MAC 16, Le 3) fits; longer -> 6700. */
#define SE_CMD_MAX 1100u
/* Room the caller's response writer must have for se_apdu() / se_relay_*() (the longest
 * response: a relay answer of SE_ENVELOPE_MAX bytes with R-ENC padding, R-MAC and SW). */
#define SE_RESP_MAX 1100u
#define SE_EVENT_QUEUE 8u         /* queued phone events besides the relay payload */
#define SE_PENDING_RELAY 1        /* se_apdu(): the answer comes later */

/* Status words of our own choosing (docs/se.md). */
#define SE_SW_KEYSET_LOCKED 0x6983u  /* INITIALIZE UPDATE / EXTERNAL AUTHENTICATE: set locked */
#define SE_SW_WALLET_LOCKED 0x6A81u  /* wallet locked: everything but SELECT, GET DATA, UNLOCK */
#define SE_SW_EXISTS 0x6A89u         /* a ticket with this id is already stored */
#define SE_SW_RELAY_FAILED 0x6F00u   /* the phone did not answer a relayed ENVELOPE */

/* The fixed AIDs. */
#define SE_ISD_AID_LEN 8u
#define SE_WALLET_AID_LEN 11u
extern const uint8_t se_isd_aid[SE_ISD_AID_LEN];       /* A000000151000000 */
extern const uint8_t se_wallet_aid[SE_WALLET_AID_LEN]; /* F0 "TAPBRIDGE" 01 */

enum se_iface {
	SE_IF_CONTACTLESS = 0,
	SE_IF_HOST = 1,
};
#define SE_IF_COUNT 2

enum se_power_event {
	SE_POWER_RESET = 0, /* warm reset / new field: session ends, ISD selected */
	SE_POWER_OFF = 1,   /* field or power gone: the same, and a pending relay fails */
};

/* Wallet transaction kinds (receipts, events, last_kind in the image). */
enum se_tx_kind {
	SE_TX_CREDIT = 1,
	SE_TX_DEBIT = 2,
};

enum se_event_kind {
	SE_EV_NONE = 0,
	SE_EV_RELAY,        /* send data/n to the server for `service`; answer with
	                       se_relay_answer() or se_relay_fail() */
	SE_EV_TRANSACTION,  /* tx_kind, amount, balance, counter */
	SE_EV_DISABLE,      /* the server asks the phone to disable functions: bitmap */
	SE_EV_LOCKED,       /* the wallet was locked */
	SE_EV_UNLOCKED,     /* ... and unlocked by the server */
};

struct se_event {
	enum se_event_kind kind;
	uint32_t lost;          /* events dropped (queue full) just before this one */
	uint32_t service;       /* RELAY */
	const uint8_t *data;    /* RELAY: the ENVELOPE payload, unchanged; borrowed from
	                           struct se, valid until the relay is answered or fails */
	size_t n;
	uint8_t tx_kind;        /* TRANSACTION: enum se_tx_kind */
	uint32_t amount;
	uint32_t balance;
	uint32_t counter;
	uint16_t bitmap;        /* DISABLE */
};

/* Test-only seam (NULL in products): one more selectable application at `aid` whose
 * plain commands (after the secure channel opened them) go to handle(), which writes
 * response data || SW1 SW2 to resp (at most SE_ENVELOPE_MAX + 2 bytes). Its SCP03
 * sessions use kdd and its AID for the pseudo-random challenge, as an applet using its
 * security domain's channel would. */
struct se_test_app {
	uint8_t aid[SCP_AID_MAX];
	size_t aid_len;
	uint8_t kdd[SCP_KDD_LEN];
	int (*handle)(void *ctx, const uint8_t *cmd, size_t n, struct wr *resp);
	void *ctx;
};

struct se_config {
	/* Fresh random bytes (the personal-auth card nonce). 0 on success. May be NULL:
	 * then PAUTH PROVE answers 6985. */
	int (*rng)(void *ctx, uint8_t *out, size_t n);
	void *rng_ctx;
	const struct se_test_app *test_app;
};

/* ------------------------------------------------------------ the state --- */

enum se_app {
	SE_APP_NONE = 0,
	SE_APP_ISD,
	SE_APP_WALLET,
	SE_APP_TEST,
};

/* One interface: selection and secure channel. */
struct se_if {
	struct scp_card card;
	uint8_t app;    /* enum se_app */
	uint8_t role;   /* enum se_role of the key set that opened the session, or NONE */
	uint8_t kvn;    /* ... and its KVN */
	uint8_t slot;   /* ... and its slot */
	uint32_t seq;   /* the sequence counter value of this session's INITIALIZE UPDATE */
};

/* The relay: armed by the server (or the phone with the server's permit), one ENVELOPE
 * in flight at a time. Arming is volatile: power-up starts disarmed. */
struct se_relay {
	uint8_t armed;
	uint8_t pending;   /* an ENVELOPE waits for the phone's answer */
	uint8_t announce;  /* its payload has not been drained as an event yet */
	uint32_t service;
	uint32_t expiry;   /* armed while now <= expiry */
	size_t n;
	uint8_t buf[SE_ENVELOPE_MAX];
};

struct se_ev_slot {
	uint8_t kind;
	uint8_t tx_kind;
	uint16_t bitmap;
	uint32_t amount;
	uint32_t balance;
	uint32_t counter;
};

struct se {
	const struct se_config *cfg; /* borrowed, may be NULL */
	struct jnl jnl;              /* borrows the store */
	struct se_image img;         /* mirror of the persistent records */
	struct se_if ifs[SE_IF_COUNT];
	struct se_relay relay;
	struct se_ev_slot ev[SE_EVENT_QUEUE];
	uint8_t ev_head;
	uint8_t ev_count;
	uint32_t ev_lost;
	int failed;                  /* the store failed and could not recover: 6581 */
	uint8_t cbuf[SE_CMD_MAX + 8];      /* the command as the application sees it */
	uint8_t rbuf[SE_ENVELOPE_MAX + 2]; /* the application's plain response */
};

/* ---------------------------------------------------------- entry points --- */

/* Binds se to store and cfg (both borrowed, outliving se), recovers the journal and
 * loads the image; both interfaces start with the ISD selected and no session.
 * TB_E_SE_IMAGE (not formatted / inconsistent), TB_E_STORE, TB_E_JOURNAL. */
int se_init(struct se *se, const struct se_config *cfg, const struct se_store *store);

/* Power event on one interface: its session ends, the ISD is selected; a relay
 * pending on the contactless interface is dropped. */
void se_power(struct se *se, enum se_iface iface, enum se_power_event ev);

/* One command APDU (n <= SE_CMD_MAX, else 6700) on iface at time `now` (seconds, the
 * adapter's clock: ticket validity, flag and permit expiry). Returns 0 with the whole
 * response APDU (data, SW1 SW2) appended to resp, or SE_PENDING_RELAY with nothing
 * written (an armed ENVELOPE on the contactless interface: an SE_EV_RELAY event is
 * queued; until se_relay_answer()/se_relay_fail() every further contactless command is
 * answered 6985). TB_E_INVAL (bad arguments) or TB_E_NOSPACE (resp has less than
 * SE_RESP_MAX bytes of room) change nothing. */
int se_apdu(struct se *se, enum se_iface iface, const uint8_t *cmd, size_t n, uint32_t now,
	    struct wr *resp);

/* The phone's answer to the pending relay: appended to resp as the ENVELOPE's response
 * (answer || 9000, through the reader's secure channel if one is open). TB_E_SE_STATE
 * when nothing is pending, TB_E_INVAL when n > SE_ENVELOPE_MAX (still pending),
 * TB_E_NOSPACE. */
int se_relay_answer(struct se *se, const uint8_t *answer, size_t n, struct wr *resp);
/* The phone could not relay (gone, timeout): the ENVELOPE is answered 6F00. */
int se_relay_fail(struct se *se, struct wr *resp);

/* Takes the next event for the phone: 1 and *ev filled, or 0 when there is none. The
 * relay payload comes first. */
int se_next_event(struct se *se, struct se_event *ev);

/* The status word for a TB_E_* at the se boundary (the one table). */
uint16_t se_sw(int err);

/* ------------------------------------------------------ personalisation --- */
/* Used by `tapbridge admin se-init / se-keys` on an image no se is running on. Each
 * runs its own journal over the store: all or nothing. */

/* A blank image: identity with serial, factory default key set KVN FF (404142..4F,
 * AES-128, role DEFAULT), lockout limit 10, maximum balance SE_DEFAULT_MAX_BALANCE. */
int se_format(const struct se_store *store, const uint8_t serial[SE_SERIAL_LEN]);

/* Writes key set kvn (01..FE) with role SERVER or READER, replacing a set of that KVN
 * (its counter and failures restart at 0). The first one ends the factory state: the
 * default set is deleted in the same transaction ("personalised"). TB_E_INVAL (kvn,
 * role), TB_E_KEYLEN, TB_E_SE_FULL (no free slot), TB_E_SE_IMAGE, store errors. */
int se_put_keyset(const struct se_store *store, uint8_t kvn, enum se_role role,
		  const struct scp_keys *keys);

/* Sets the maximum balance and the consecutive-failure limit (1..255). TB_E_INVAL for
 * a limit of 0 or a maximum below the current balance. */
int se_configure(const struct se_store *store, uint32_t max_balance, uint8_t lockout_limit);

#endif
