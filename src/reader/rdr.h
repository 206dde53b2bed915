/* rdr.h - the reader core (the patent's IC_R/W 15): a shop terminal's applications
 * (pay, gate, id, checkout), its offline outbox and the relay to the server through
 * the se, with no I/O and no heap. The adapter (src/cmd/reader.c) owns every struct,
 * supplies a blocking card transceive, a durable save and a display, and calls
 * rdr_tap() once per card in the field. docs/reader.md has the flows and lines.
 *
 * Keys: the se-reader terminal key (the reader derives each se's READER key set from
 * it and the se's serial, lib/div.h) and the reader's own reader <-> server key set
 * (the reader is the SCP03 CARD of that channel, the server the host).
 *
 * What stays true: a record leaves the outbox only after a RESULT that came through a
 * verified reader <-> server channel names its seq; every change of the store (new
 * records, the card-role sequence counter, removals, the deny list) is saved through
 * io->save before anything depends on it, and a failed save leaves *store as it was. */
#ifndef TB_READER_RDR_H
#define TB_READER_RDR_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "rmsg.h"
#include "scp03.h"

#define RDR_OUTBOX_MAX 64u        /* records kept until the server acknowledges them */
#define RDR_DENY_MAX RMSG_DENY_MAX
#define RDR_LINE_MAX 160u         /* one display line, NUL included */
#define RDR_APDU_MAX 1200u        /* command / response buffers (se: 1100) */
#define RDR_TERMINAL_KEY_LEN 32u
#define RDR_FLAG_PUB_LEN 65u
#define RDR_SE_LEVEL 0x33u
#define RDR_ROLE_SE_READER 2u     /* div_device_keys role of the se's READER key set */

/* The key store (from the reader key file). SECRET: wipe when done. */
struct rdr_keys {
	uint32_t id;                  /* reader id */
	uint8_t kvn;                  /* KVN of its reader <-> server key set */
	struct scp_keys rs;           /* reader <-> server: the reader's card role */
	uint8_t terminal[RDR_TERMINAL_KEY_LEN];
	uint8_t terminal_kvn;         /* KVN of the se's READER set = div version */
	size_t terminal_keylen;       /* 16, 24, 32 */
	uint8_t flag_pub[RDR_FLAG_PUB_LEN];
	int has_flag_pub;
};

/* One outbox record, owning its body. */
struct rdr_rec {
	uint8_t kind;                 /* enum rmsg_kind */
	uint32_t seq;
	int64_t time;
	uint32_t service;
	uint8_t serial[RMSG_SERIAL_LEN];
	uint8_t body[RMSG_BODY_MAX];
	size_t body_n;
};

/* Everything the reader keeps between taps (the state file). */
struct rdr_store {
	uint32_t next_seq;            /* the next record's seq, >= 1 */
	uint32_t card_counter;        /* the card role's SCP03 sequence counter (24 bits) */
	size_t deny_n;
	uint8_t deny[RDR_DENY_MAX][RMSG_SERIAL_LEN];
	size_t n;
	struct rdr_rec rec[RDR_OUTBOX_MAX];
};

/* The state file: "TBRS" || version 01 || next_seq(4) || card_counter(4) ||
 * deny_n(1) || deny_n x serial(8) || count(2) || count x record (rmsg_record). */
#define RDR_STORE_ENC_MAX (16u + RDR_DENY_MAX * 8u + RDR_OUTBOX_MAX * (RMSG_RECORD_HDR + RMSG_BODY_MAX))
void rdr_store_init(struct rdr_store *s);
int rdr_store_enc(struct wr *w, const struct rdr_store *s);
/* TB_E_RDR_STATE for a bad magic, version, count, duplicate or too-new seq; the record
 * codec's errors otherwise. *out is written on success only. */
int rdr_store_dec(const uint8_t *b, size_t n, struct rdr_store *out);

enum rdr_app {
	RDR_APP_PAY = 1,              /* DEBIT amount */
	RDR_APP_GATE,                 /* consume a valid ticket of the ticket service */
	RDR_APP_ID,                   /* personal-auth proof (online) or the flag (offline) */
	RDR_APP_CHECKOUT,             /* DEBIT the items' total, an ORDER record */
	RDR_APP_REFUND,               /* a REFUND record (online only): the server credits */
};

enum rdr_order {
	RDR_OFFLINE_FIRST = 0,        /* the local step, then HELLO/AUTH/DATA (flows 2, 4, 5) */
	RDR_ONLINE_FIRST = 1,         /* HELLO/AUTH, the local step, DATA (flow 1) */
};

struct rdr_item {
	uint32_t id;
	uint16_t qty;
	uint32_t price;
};

struct rdr_cfg {
	enum rdr_app app;
	uint32_t amount;              /* pay */
	struct rdr_item items[RMSG_ITEMS_MAX];  /* checkout */
	size_t n_items;
	uint32_t ticket_service;      /* gate; 0 = the armed service */
	uint32_t service;             /* records when the relay names none */
	enum rdr_order order;
	char refund_key[RMSG_REFUND_KEY_MAX + 1]; /* refund: the payment's key, NUL-terminated */
};

struct rdr_io {
	/* One command APDU to the card; the response (data || SW) into resp (cap bytes),
	 * its length in *n. 0, or a negative TB_E_* (card gone). */
	int (*xmit)(void *ctx, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap,
		    size_t *resp_n);
	/* Writes s durably (returns only when it is on disk). 0 or TB_E_*. */
	int (*save)(void *ctx, const struct rdr_store *s);
	/* One display line ("reader: ..."), NUL-terminated, no newline. */
	void (*say)(void *ctx, const char *line);
	void *ctx;
};

/* The tap's working state (about 14 KiB: give it static storage). Caller-owned. */
struct rdr {
	const struct rdr_keys *keys;
	const struct rdr_cfg *cfg;
	const struct rdr_io *io;
	struct rdr_store *st;
	struct rdr_store scratch;     /* the next store, saved before it replaces *st */
	int64_t now;
	uint32_t envelopes;           /* ENVELOPEs sent in this tap */
	/* per tap */
	struct scp_host se;           /* reader = host, se = card */
	struct scp_card card;         /* reader = card, server = host */
	uint8_t serial[RMSG_SERIAL_LEN];
	uint8_t armed;
	uint32_t armed_service;
	int relay_open;               /* HELLO/AUTH done, the GET REQUEST kept */
	uint16_t ea_sw;
	uint8_t get_req[RMSG_MAX];
	size_t get_req_n;
	uint32_t tap_seq[2];          /* this tap's records, sent first */
	size_t tap_n;
	struct { uint32_t seq; uint8_t kind; uint32_t amount; } sent[RMSG_RECORDS_MAX];
	size_t sent_n;
	uint8_t cmd[RDR_APDU_MAX];
	uint8_t wire[RDR_APDU_MAX];
	uint8_t resp[RDR_APDU_MAX];
	uint8_t plain[RDR_APDU_MAX];
	size_t plain_n;               /* plain response data of the last se_cmd */
	uint16_t sw;
};

/* One tap on the card now in the field: SELECT, serial, deny list, level-33 channel,
 * relay status, the application, the relay when armed. Says every outcome through
 * io->say ("reader: ..."). 0 when the tap completed ("reader: done"); a negative
 * TB_E_* otherwise (the line that says why was shown): TB_E_RDR_DENIED,
 * TB_E_RDR_REFUSED, TB_E_RDR_SERVER, TB_E_RDR_CARD, TB_E_RDR_FULL, TB_E_SCP_*, save
 * errors. now: Unix seconds. */
int rdr_tap(struct rdr *r, const struct rdr_keys *keys, const struct rdr_cfg *cfg,
	    const struct rdr_io *io, struct rdr_store *st, int64_t now);

/* 1 when serial is on the store's deny list. */
int rdr_denied(const struct rdr_store *s, const uint8_t serial[RMSG_SERIAL_LEN]);

#endif
