/* sam.h - the sam core: the only holder of master keys. A narrow request table in the
 * shape of OpenSSH's privilege-separation monitor: each request type has a fixed
 * maximum size and the connection states that allow it; anything malformed or out of
 * order ends that connection. No heap, no I/O: the adapter (src/io/sam_srv.c) owns
 * every buffer, the session table included, and pumps frames (lib/frame.h) through
 * sam_request(). Wire protocol, key file format and diversification: docs/sam.md.
 *
 * Conventions: 0 or a negative TB_E_* (err.h). Key material lives only in struct
 * sam_keystore and in the sessions' struct scp_host, is wiped on every path that drops
 * it, and leaves the core only through DERIVE_DEVICE_KEYS (device keys, never a master,
 * and only with SAM_CAP_PERSO), SCP_PUT_KEY (device keys encrypted under the device's own
 * Key-DEK, inside a wrapped command) and sam_keyfile_seal() (encrypted). */
#ifndef TB_SAM_H
#define TB_SAM_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "crypto.h"
#include "frame.h"
#include "scp03.h"

#define SAM_PROTO_VERSION 1u

/* ------------------------------------------------------------- wire --- */

/* Request frame types. A reply has the request's type | 0x80 (SAM_REPLY()), or is an
 * ERROR frame: request id(4) || code(4, a TB_E_* as a big-endian two's complement). */
enum sam_req_type {
	SAM_HELLO = 0x01,
	SAM_STATUS = 0x02,
	SAM_GET_PUBLIC_KEY = 0x03,
	SAM_DERIVE_DEVICE_KEYS = 0x04,
	SAM_TERMINAL_KEY = 0x05,
	SAM_SCP_OPEN = 0x10,
	SAM_SCP_STEP = 0x11,
	SAM_SCP_WRAP = 0x12,
	SAM_SCP_UNWRAP = 0x13,
	SAM_SCP_CLOSE = 0x14,
	SAM_SCP_PUT_KEY = 0x15,
	SAM_SIGN = 0x20,
	SAM_SEAL_BLOB = 0x21,
	SAM_OPEN_BLOB = 0x22,
	SAM_RECEIPT_VERIFY = 0x23,
	SAM_ROTATE = 0x30,
	SAM_RETIRE = 0x31,
};
#define SAM_REPLY(t) ((uint8_t)((t) | 0x80u))
#define SAM_ERROR 0xFFu

#define SAM_ID_LEN 4u            /* every payload starts with the request id, echoed */
#define SAM_SERIAL_LEN 8u        /* device serial: the diversification input */
#define SAM_APDU_MAX 2048u       /* a plain command or a card response given to the sam */
#define SAM_WRAP_OVERHEAD 64u    /* extended header, padding, C-MAC: wrapped <= n + this */
#define SAM_SIGN_MSG_MAX 512u
#define SAM_BLOB_ID_MAX 64u
#define SAM_BLOB_MAX 65536u      /* plaintext of one sealed blob */
/* Sealed blob: format(1) key version(1) nonce(12) ciphertext tag(16). */
#define SAM_BLOB_FORMAT 0x01u
#define SAM_BLOB_OVERHEAD (2u + CRYPTO_GCM_IV_LEN + CRYPTO_GCM_TAG_LEN)
#define SAM_RECEIPT_BODY_MAX 64u
/* SCP_OPEN kvn: INITIALIZE UPDATE with P1 00, the key set resolved from the KVN the card
 * names in its answer (a version of the role the sam holds). */
#define SAM_KVN_CARD 0xFFu
/* SCP_PUT_KEY: the plain PUT KEY command (80 D8 P1 81 Lc new-KVN 3 x AES key field 00) at
 * its longest (32-byte keys), and the card's answer the sam checks (new KVN || 3 KCVs). */
#define SAM_PUT_KEY_CMD_MAX (5u + 1u + 3u * (3u + 32u + 4u) + 1u)
#define SAM_PUT_KEY_ANSWER (1u + 3u * 3u)
#define SAM_PUB_LEN CRYPTO_P256_PUB_LEN
#define SAM_SIG_LEN CRYPTO_P256_SIG_LEN

/* Signature domains: the signed bytes are "TBSG" || domain || message, so a signature
 * made for one purpose never verifies as another. */
enum sam_sign_domain {
	SAM_SIGN_FLAG = 1,      /* the authenticity-confirmation flag token (flow 3) */
	SAM_SIGN_READER = 2,    /* data for offline readers: deny lists, notices */
};
#define SAM_SIGN_PREFIX_LEN 5u

/* The largest request payload and reply frame (header included) of any type. */
#define SAM_REQ_MAX (SAM_ID_LEN + 1u + SAM_BLOB_ID_MAX + SAM_BLOB_MAX + SAM_BLOB_OVERHEAD)
#define SAM_REPLY_MAX (SAM_ID_LEN + SAM_BLOB_MAX + SAM_BLOB_OVERHEAD)
#define SAM_REPLY_FRAME_MAX (FRAME_HDR_LEN + SAM_REPLY_MAX)

/* ----------------------------------------------------------- keys --- */

/* Key families. 1..3 are SCP03 masters ("roles", one per pair of parties), from which
 * each device's static key set is diversified; 4 signs, 5 seals blobs. */
enum sam_family {
	SAM_FAM_SE_SERVER = 1,
	SAM_FAM_SE_READER = 2,
	SAM_FAM_READER_SERVER = 3,
	SAM_FAM_SIGN = 4,
	SAM_FAM_BLOB = 5,
};
#define SAM_FAMILIES 5u
#define SAM_ROLES 3u
#define SAM_VERSIONS 4u          /* versions held per family: current + old until retired */
#define SAM_KEY_LEN 32u          /* every master, the signing scalar, the blob master */
/* Role r's KVNs are 0xR1..0xRF, so one device can hold a set of every role. */
#define SAM_KVN_BASE(role) ((uint8_t)(0x10u * (role)))

struct sam_key {
	uint8_t present;
	uint8_t version;             /* KVN for roles, 1..255 otherwise */
	uint8_t dev_keylen;          /* roles: device key length 16/24/32; else 0 */
	uint8_t key[SAM_KEY_LEN];    /* SECRET */
	uint8_t pub[SAM_PUB_LEN];    /* SAM_FAM_SIGN: the public point */
};

/* Every key the sam holds (about 2 KiB). Index [family - 1][slot]. */
struct sam_keystore {
	struct sam_key k[SAM_FAMILIES][SAM_VERSIONS];
	uint8_t current[SAM_FAMILIES];   /* version of the current key, 0 = none */
};

/* Fresh keys for every family: role masters at KVN 0xR1 whose device keys are
 * dev_keylen bytes (16, 24, 32), signing and blob keys at version 1. */
int sam_keys_generate(struct sam_keystore *ks, size_t dev_keylen);
/* The key of family at version (0 = current), or NULL. */
const struct sam_key *sam_keys_find(const struct sam_keystore *ks, uint8_t family,
				    uint8_t version);
/* Adds a fresh current version to family (the old one stays). TB_E_SAM_FULL when no
 * slot or version number is free; ks unchanged on error. *version gets the new one. */
int sam_keys_rotate(struct sam_keystore *ks, uint8_t family, uint8_t *version);
/* Wipes an old version. TB_E_SAM_KEY (not held), TB_E_INVAL (the current one). */
int sam_keys_retire(struct sam_keystore *ks, uint8_t family, uint8_t version);
/* 0 when every family has exactly one current key and every record is sound. */
int sam_keys_check(const struct sam_keystore *ks);

/* The sealed key file (docs/sam.md): a header naming the key-encryption key (KEK),
 * a fresh data-encryption key (DEK) wrapped under the KEK, then the records under the
 * DEK with AES-256-GCM. Whoever supplies the KEK implements wrap/unwrap: a PKCS#11
 * token (the KEK never leaves it) or, for development, a key from a file. */
#define SAM_KEK_ID_LEN 16u
#define SAM_DEK_LEN 32u
#define SAM_WRAPPED_DEK_LEN (SAM_DEK_LEN + CRYPTO_GCM_TAG_LEN)
#define SAM_KEYFILE_HDR_LEN 102u
#define SAM_KEYFILE_BODY_MAX (1u + SAM_FAMILIES * SAM_VERSIONS * (4u + SAM_KEY_LEN))
#define SAM_KEYFILE_MAX (SAM_KEYFILE_HDR_LEN + SAM_KEYFILE_BODY_MAX + CRYPTO_GCM_TAG_LEN)

enum sam_kek_kind {
	SAM_KEK_PKCS11 = 1,
	SAM_KEK_FILE = 2,    /* development only */
};

struct sam_kek {
	uint8_t kind;                  /* enum sam_kek_kind */
	uint8_t id[SAM_KEK_ID_LEN];
	/* AES-GCM under the KEK, 96-bit nonce, the tag after the 32 bytes. 0 or TB_E_*;
	 * unwrap returns TB_E_AEAD (or TB_E_PKCS11) when the tag does not verify. */
	int (*wrap)(void *ctx, const uint8_t nonce[CRYPTO_GCM_IV_LEN], const uint8_t *aad,
		    size_t naad, const uint8_t dek[SAM_DEK_LEN], uint8_t out[SAM_WRAPPED_DEK_LEN]);
	int (*unwrap)(void *ctx, const uint8_t nonce[CRYPTO_GCM_IV_LEN], const uint8_t *aad,
		      size_t naad, const uint8_t in[SAM_WRAPPED_DEK_LEN], uint8_t dek[SAM_DEK_LEN]);
	void *ctx;
};

/* A development KEK held in memory (from a file). sam_kek_soft() points kek at it
 * and sets its id (CMAC(KEK, "TB-KEK-ID"), first 16 bytes). */
struct sam_soft_kek {
	uint8_t key[SAM_KEY_LEN];     /* SECRET */
};
int sam_kek_soft(struct sam_kek *kek, struct sam_soft_kek *sk);

/* Writes the sealed file for ks (at most SAM_KEYFILE_MAX bytes). */
int sam_keyfile_seal(const struct sam_keystore *ks, const struct sam_kek *kek, struct wr *out);
/* Which KEK a file was sealed under. TB_E_SAM_KEYFILE when it is not a key file. */
int sam_keyfile_kek(const uint8_t *file, size_t n, uint8_t *kind, uint8_t id[SAM_KEK_ID_LEN]);
/* Opens a sealed file into ks (written only on success). TB_E_SAM_KEYFILE when it is
 * malformed, names another KEK, or does not authenticate under this one. */
int sam_keyfile_open(const uint8_t *file, size_t n, const struct sam_kek *kek,
		     struct sam_keystore *ks);

/* ---------------------------------------------------- diversification --- */

/* A device's static SCP03 key set for role (1..3) from master m (docs/sam.md):
 * each key = SP 800-108 KDF(CMAC, m, "TB-DIV" || role || kvn || t || 00 || L, serial)
 * with t = 1 ENC, 2 MAC, 3 DEK. */
int sam_div_device_keys(const struct sam_key *m, uint8_t role,
			const uint8_t serial[SAM_SERIAL_LEN], struct scp_keys *out);
/* The se-reader family's terminal key (div_terminal_key) of the master m. */
int sam_div_terminal_key(const struct sam_key *m, uint8_t out[SAM_KEY_LEN]);
/* The per-blob AES-256 key: KDF(blob master, "TB-BLOB" || 00 || 0100, blob id). */
int sam_div_blob_key(const struct sam_key *m, const uint8_t *blob_id, size_t n,
		     uint8_t out[SAM_KEY_LEN]);
/* The se's receipt key (src/se/purse.c): KDF(device Key-MAC, "tapbridge receipt" ||
 * 00 || 0080, serial), 16 bytes. */
int sam_div_receipt_key(const struct scp_keys *dev, const uint8_t serial[SAM_SERIAL_LEN],
			uint8_t out[16]);

/* ------------------------------------------------------------ sessions --- */

#define SAM_SESSIONS_MAX (1u << 20)    /* handle = generation(12 bits) || index(20 bits) */
#define SAM_SESSIONS_DEFAULT 16384u

enum sam_sess_state {
	SAM_SS_FREE = 0,
	SAM_SS_WAIT_IU,      /* INITIALIZE UPDATE issued: SCP_STEP with its response */
	SAM_SS_WAIT_EA,      /* EXTERNAL AUTHENTICATE issued: SCP_STEP with its response */
	SAM_SS_EA_SPEC,      /* ... and a first command wrapped with it: SCP_STEP with the
	                        EXTERNAL AUTHENTICATE response, then SCP_UNWRAP */
	SAM_SS_OPEN,         /* authenticated: SCP_WRAP */
	SAM_SS_DUE,          /* a wrapped command awaits SCP_UNWRAP */
	SAM_SS_CLOSED,       /* a security failure: TB_E_SCP_CLOSED until SCP_CLOSE */
	SAM_SS_KEY_DUE,      /* a wrapped PUT KEY awaits SCP_UNWRAP (its answer is checked) */
};

/* One slot of the session table (sizeof checked by a test: 432 bytes on LP64). */
struct sam_session {
	struct scp_host h;
	uint8_t serial[SAM_SERIAL_LEN];   /* the device's: keys resolved after SCP_OPEN */
	uint8_t expect[SAM_PUT_KEY_ANSWER]; /* KEY_DUE: what the card must answer */
	uint32_t owner;      /* the owning connection's id; 0 = free */
	uint32_t gen;        /* bumped on every free: stale handles do not match */
	uint32_t next;       /* owner's list, or the free list */
	uint32_t prev;
	uint8_t state;       /* enum sam_sess_state */
	uint8_t role;
};

/* ------------------------------------------------------------- the core --- */

#define SAM_CHALLENGE_GIVEN 0x80u /* SCP_OPEN challenge-len bit: the host challenge follows */
#define SAM_CAP_PERSO 0x01u   /* DERIVE_DEVICE_KEYS: factory personalisation (admin) */
#define SAM_CAP_KEYS 0x02u    /* ROTATE, RETIRE */

struct sam_config {
	unsigned caps;        /* SAM_CAP_* for every connection */
	/* Called after ROTATE / RETIRE changed the keys and before the reply: make the new
	 * key file durable. On failure the change is undone and the request fails. NULL:
	 * nothing persists (tests). */
	int (*persist)(void *ctx, const struct sam_keystore *ks);
	void *ctx;
};

struct sam {
	struct sam_keystore ks;
	struct sam_config cfg;
	struct sam_session *slots;   /* borrowed: nslots entries */
	uint32_t nslots;
	uint32_t used;
	uint32_t free_head;
	uint32_t next_conn;
};

enum sam_conn_state {
	SAM_CS_NEW = 0x01,     /* HELLO only */
	SAM_CS_READY = 0x02,   /* after HELLO: everything the capabilities allow */
	SAM_CS_CLOSED = 0x04,  /* a request ended it: nothing more */
};

/* One client connection; the adapter owns it, the core keeps its sessions. */
struct sam_conn {
	uint32_t id;
	uint8_t state;         /* enum sam_conn_state */
	uint32_t head;         /* its first session, SAM_NONE if none */
	uint32_t nsessions;
};
#define SAM_NONE 0xFFFFFFFFu

/* Takes a copy of ks (checked) and the session table (nslots 1..SAM_SESSIONS_MAX,
 * borrowed, contents overwritten). TB_E_INVAL, TB_E_SAM_KEYFILE (ks unsound). */
int sam_init(struct sam *s, const struct sam_config *cfg, const struct sam_keystore *ks,
	     struct sam_session *slots, size_t nslots);
/* Wipes every key and every session. */
void sam_wipe(struct sam *s);

void sam_conn_open(struct sam *s, struct sam_conn *c);
/* Ends every session of c (keys wiped, slots freed). */
void sam_conn_close(struct sam *s, struct sam_conn *c);

/* Handles one whole request frame and writes one whole reply frame (header included)
 * to out, which needs SAM_REPLY_FRAME_MAX bytes of room (TB_E_NOSPACE, nothing
 * done). 0: a reply (maybe an ERROR frame) is in out. Negative: the request was
 * malformed, out of order or not in the table; out is unchanged, c is CLOSED and its
 * sessions are gone: close the connection. */
int sam_request(struct sam *s, struct sam_conn *c, uint8_t type, const uint8_t *payload,
		size_t n, struct wr *out);

/* Per-type limits on N (lib/frame.h) for the requests a sam decodes, and for the
 * replies a client decodes. */
void sam_request_limits(uint32_t table[FRAME_TYPES]);
void sam_reply_limits(uint32_t table[FRAME_TYPES]);
/* The request's name for logs ("SCP_OPEN"), or NULL when not in the table. */
const char *sam_request_name(uint8_t type);

#endif
