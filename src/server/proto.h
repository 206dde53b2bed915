/* proto.h - the phone session protocol (phone <-> server, inside TLS 1.3): frame types,
 * the per-type size tables of both directions, and one encoder and one decoder per
 * payload over struct rd / struct wr. No I/O, no heap. docs/protocol.md is the prose.
 *
 * Frames are those of lib/frame.h (N u32 | type u8 | payload, N = 1 + payload length).
 * Integers are big-endian; signed ones are two's complement. A payload is decoded
 * completely or not at all: every decoder wants the whole payload (extra bytes are
 * TB_E_LEFTOVER), fills *out only on success, and points into the payload (no copies:
 * the pointers live as long as the payload does). Every encoder checks the same rules
 * as its decoder, so what we send our own decoder accepts; on error w is untouched.
 *
 * Errors: TB_E_TRUNC (payload ends early), TB_E_LEFTOVER (bytes after the last field),
 * TB_E_PROTO_FIELD (a count, length, id or flag out of its range),
 * TB_E_PROTO_TEXT (text not UTF-8, or with control characters),
 * TB_E_PROTO_VERSION (HELLO of another protocol version), TB_E_FRAME_TYPE (a type this
 * protocol does not have), TB_E_NOSPACE (encoders: w too small). */
#ifndef TB_SERVER_PROTO_H
#define TB_SERVER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "bytes.h"
#include "frame.h"

#define PROTO_VERSION 1u
#define PROTO_SERIAL_LEN 8u    /* se serial (se/image.h SE_SERIAL_LEN) */
#define PROTO_APP_MAX 32u      /* phone app version: printable ASCII */
#define PROTO_APDU_MAX 1100u   /* command and response APDUs (se/se.h SE_CMD_MAX, SE_RESP_MAX) */
#define PROTO_RELAY_MAX 1024u  /* one relayed ENVELOPE payload or its answer (se link) */
#define PROTO_MENU_MAX 32u     /* services in one MENU */
#define PROTO_NAME_MAX 63u     /* service name bytes (UTF-8; db.h DB_NAME_MAX less its NUL) */
#define PROTO_HISTORY_MAX 32u  /* records in one HISTORY */
#define PROTO_NOTICE_MAX 256u  /* NOTICE text bytes (UTF-8) */
#define PROTO_REASON_MAX 128u  /* ERROR reason bytes (UTF-8) */
#define PROTO_PING_LEN 8u      /* PING / PONG token */
#define PROTO_PREHELLO_MAX 512u /* largest N the server reads before a HELLO */
#define PROTO_STAGE_MIN 5u     /* STAGE: an INITIALIZE UPDATE APDU, header and Lc at least */
#define PROTO_STAGE_MAX 21u    /* ... at most header, Lc, a 16-byte challenge and Le */

/* Frame types. 0x01-0x3F phone -> server, 0x40-0x7F either way, 0x81-0xBF server -> phone. */
enum proto_type {
	PROTO_HELLO = 0x01,
	PROTO_SELECT = 0x02,
	PROTO_SE_RESP = 0x03,
	PROTO_RELAY_UP = 0x04,
	PROTO_HISTORY_REQ = 0x05,
	PROTO_PORTAL_REQ = 0x06,
	PROTO_PING = 0x40,
	PROTO_PONG = 0x41,
	PROTO_BYE = 0x42,
	PROTO_MENU = 0x81,
	PROTO_SE_APDU = 0x82,
	PROTO_RELAY_DOWN = 0x83,
	PROTO_HISTORY = 0x84,
	PROTO_NOTICE = 0x85,
	PROTO_ERROR = 0x86,
	PROTO_STAGE = 0x87,
	PROTO_PORTAL_LINK = 0x88,
};

/* Largest N of each type (type byte + payload). */
#define PROTO_MENU_ITEM_MAX (4u + 1u + 1u + 1u + PROTO_NAME_MAX)   /* 70 */
#define PROTO_HIST_REC_LEN (8u + 8u + 1u + 4u + 4u + 8u + 8u)       /* 41 */
#define PROTO_N_HELLO (1u + 2u + PROTO_SERIAL_LEN + 1u + PROTO_APP_MAX) /* 44 */
#define PROTO_N_SELECT (1u + 4u + 1u)                              /* 6: with the op byte */
#define PROTO_N_APDU (1u + 4u + PROTO_APDU_MAX)                    /* 1105: SE_APDU, SE_RESP */
#define PROTO_N_RELAY_UP (1u + 4u + 4u + PROTO_RELAY_MAX)          /* 1033 */
#define PROTO_N_HISTORY_REQ (1u + 8u + 1u)                         /* 10 */
#define PROTO_N_PING (1u + PROTO_PING_LEN)                         /* 9: PING, PONG */
#define PROTO_N_BYE 1u
#define PROTO_N_MENU (1u + 1u + PROTO_MENU_MAX * PROTO_MENU_ITEM_MAX) /* 2242 */
#define PROTO_N_RELAY_DOWN (1u + 4u + 1u + PROTO_RELAY_MAX)        /* 1030 */
#define PROTO_N_HISTORY (1u + 1u + 1u + PROTO_HISTORY_MAX * PROTO_HIST_REC_LEN) /* 1315 */
#define PROTO_N_NOTICE (1u + PROTO_NOTICE_MAX)                     /* 257 */
#define PROTO_N_ERROR (1u + 2u + PROTO_REASON_MAX)                 /* 131 */
#define PROTO_N_STAGE (1u + PROTO_STAGE_MAX)                       /* 22 */
#define PROTO_N_PORTAL_REQ 1u
#define PROTO_N_PORTAL_LINK (1u + PROTO_NOTICE_MAX)                /* 257: a URL, as text */

/* The largest N each side reads: size its receive buffer for N - 1 payload bytes. */
#define PROTO_SRV_IN_MAX PROTO_N_APDU   /* 1105 */
#define PROTO_PHONE_IN_MAX PROTO_N_MENU /* 2242 */

/* frame_rd max_by_type tables (FRAME_TYPES entries, 0 = type refused): what the server
 * accepts from a phone, and what a phone accepts from the server. */
extern const uint32_t proto_srv_in[FRAME_TYPES];
extern const uint32_t proto_phone_in[FRAME_TYPES];

/* MENU service states. */
enum proto_svc_state {
	PROTO_SVC_OFFERED = 1, /* can be selected */
	PROTO_SVC_READY = 2,   /* granted: ready for a tap */
	PROTO_SVC_BLOCKED = 3, /* listed, but not usable now (wallet locked, ...) */
};

/* RELAY_DOWN status. */
enum proto_relay_status {
	PROTO_RELAY_ANSWER = 0, /* data is the answer for the se (0..PROTO_RELAY_MAX bytes) */
	PROTO_RELAY_FAIL = 1,   /* the server cannot answer; data is empty */
};

/* HELLO: the first frame of a session (version, then the v1 layout). */
struct proto_hello {
	uint16_t version;                /* PROTO_VERSION */
	uint8_t serial[PROTO_SERIAL_LEN];
	const uint8_t *app;              /* 1..PROTO_APP_MAX printable ASCII bytes */
	size_t app_len;
};

struct proto_menu_item {
	uint32_t id;                     /* >= 1 */
	uint8_t kind;                    /* >= 1 (db.h enum db_svc_kind); unknown: shown generically */
	uint8_t state;                   /* enum proto_svc_state */
	const uint8_t *name;             /* 1..PROTO_NAME_MAX bytes of text */
	size_t name_len;
};

struct proto_menu {
	size_t n;                        /* 0..PROTO_MENU_MAX */
	struct proto_menu_item items[PROTO_MENU_MAX];
};

/* SELECT op: what the phone asks of the service (docs/protocol.md, "SELECT"). */
enum proto_select_op {
	PROTO_OP_PHONE = 0,  /* the service's phone operation (top-up, ticket, flag) */
	PROTO_OP_USE = 1,    /* use it at a reader now: the server arms the relay (flow 1) */
	PROTO_OP_PERMIT = 2, /* store a one-time relay permit; the phone arms it later */
	PROTO_OP_BACKUP = 3, /* back the se's purse and tickets up to the server's vault */
	PROTO_OP_RESTORE = 4, /* a replacement se takes over the lost se's money and tickets */
};
#define PROTO_OP_MAX PROTO_OP_RESTORE

struct proto_select {
	uint32_t service;                /* >= 1 */
	uint8_t op;                      /* enum proto_select_op; 0 when the byte is absent */
	uint8_t has_op;                  /* 1: the op byte is on the wire (the decoder says
	                                    whether it was; the encoder writes it when
	                                    has_op or op != 0), so encodings round-trip */
};

/* STAGE: an INITIALIZE UPDATE APDU the server drew for the next relayed reader HELLO
 * (PROTO_STAGE_MIN..PROTO_STAGE_MAX bytes, opaque here). */
struct proto_stage {
	const uint8_t *apdu;
	size_t n;
};

/* SE_APDU (a command for the se, 4..PROTO_APDU_MAX bytes) and SE_RESP (the se's
 * response to the SE_APDU with the same seq, 2..PROTO_APDU_MAX bytes). Opaque here. */
struct proto_apdu {
	uint32_t seq;
	const uint8_t *data;
	size_t n;
};

/* RELAY_UP: what the se's RELAY event carried (relay id, service, 1..PROTO_RELAY_MAX). */
struct proto_relay_up {
	uint32_t relay;
	uint32_t service;
	const uint8_t *data;
	size_t n;
};

struct proto_relay_down {
	uint32_t relay;
	uint8_t status;                  /* enum proto_relay_status */
	const uint8_t *data;             /* ANSWER: 0..PROTO_RELAY_MAX bytes; FAIL: none */
	size_t n;
};

struct proto_history_req {
	uint64_t before;                 /* records with id < before; 0: from the newest */
	uint8_t max;                     /* 1..PROTO_HISTORY_MAX */
};

struct proto_hist_rec {
	uint64_t id;                     /* >= 1; newest is largest */
	int64_t time;                    /* seconds since 1970 */
	uint8_t kind;                    /* >= 1 (db.h enum db_ev_kind); unknown: "other" */
	uint32_t service;                /* 0: none */
	uint32_t reader;                 /* 0: none */
	int64_t amount;                  /* money events: the amount; others 0 */
	int64_t balance;                 /* money events: purse balance after; others 0 */
};

struct proto_history {
	uint8_t more;                    /* 1: older records exist (ask with before = last id) */
	size_t n;                        /* 0..PROTO_HISTORY_MAX, ids strictly decreasing */
	struct proto_hist_rec recs[PROTO_HISTORY_MAX];
};

/* NOTICE: text to show on the phone's screen, 1..PROTO_NOTICE_MAX bytes. */
struct proto_text {
	const uint8_t *p;
	size_t n;
};

/* ERROR: why the server ends the session; it closes right after. */
struct proto_error {
	uint16_t code;                   /* enum proto_err, >= 1 */
	const uint8_t *reason;           /* 1..PROTO_REASON_MAX bytes of text */
	size_t n;
};

struct proto_ping {
	uint8_t token[PROTO_PING_LEN];   /* PONG echoes the PING's token */
};

/* Any frame, decoded: which member is set follows from type. At most 1,600 bytes on
 * LP64 (a test checks). */
struct proto_msg {
	uint8_t type;                    /* enum proto_type */
	union {
		struct proto_hello hello;
		struct proto_menu menu;
		struct proto_select select;
		struct proto_apdu apdu;              /* SE_APDU, SE_RESP */
		struct proto_relay_up relay_up;
		struct proto_relay_down relay_down;
		struct proto_history_req history_req;
		struct proto_history history;
		struct proto_text notice;            /* NOTICE, PORTAL_LINK */
		struct proto_error error;
		struct proto_ping ping;              /* PING, PONG */
		struct proto_stage stage;
	} u;                                 /* BYE, PORTAL_REQ: none */
};
#define PROTO_MSG_SIZE_MAX 1600u

/* ERROR codes with the reason each one gives when the caller has none better. */
#define PROTO_ERRORS(X) \
	X(PROTO_ERR_MALFORMED,      1, "malformed frame") \
	X(PROTO_ERR_TOO_LARGE,      2, "frame too large") \
	X(PROTO_ERR_UNKNOWN_TYPE,   3, "unknown frame type") \
	X(PROTO_ERR_EMPTY,          4, "frame without a type byte") \
	X(PROTO_ERR_BEFORE_HELLO,   5, "frame before HELLO") \
	X(PROTO_ERR_VERSION,        6, "protocol version not supported") \
	X(PROTO_ERR_HELLO_TWICE,    7, "HELLO twice") \
	X(PROTO_ERR_HELLO_TIMEOUT,  8, "no HELLO in time") \
	X(PROTO_ERR_FRAME_TIMEOUT,  9, "frame not completed in time") \
	X(PROTO_ERR_IDLE,          10, "idle timeout") \
	X(PROTO_ERR_OUT_OF_ORDER,  11, "frame out of order") \
	X(PROTO_ERR_UNKNOWN_SE,    12, "unknown se") \
	X(PROTO_ERR_UNKNOWN_SERVICE, 13, "unknown service") \
	X(PROTO_ERR_BUSY,          14, "server busy") \
	X(PROTO_ERR_SHUTDOWN,      15, "server shutting down") \
	X(PROTO_ERR_INTERNAL,      16, "internal error")

enum proto_err {
#define PROTO_ERR_ENUM(name, val, text) name = val,
	PROTO_ERRORS(PROTO_ERR_ENUM)
#undef PROTO_ERR_ENUM
};

/* The default reason of an ERROR code; "error" for codes not in the table. */
const char *proto_err_reason(uint16_t code);
/* The ERROR code for a failure of frame_rd (TB_E_FRAME_*) or of a decoder
 * (TB_E_PROTO_VERSION -> PROTO_ERR_VERSION, the rest -> PROTO_ERR_MALFORMED). */
uint16_t proto_err_from(int tb_err);
/* "HELLO", "SE_APDU", ...; NULL for a type this protocol does not have. */
const char *proto_type_name(uint8_t type);

/* 1 when the n bytes are UTF-8 (shortest form, no surrogates, <= U+10FFFF) without
 * control characters (C0, DEL, C1): what NOTICE, ERROR and service names carry. */
int proto_text_ok(const uint8_t *p, size_t n);

/* Payload codecs, one pair per frame type. */
int proto_hello_get(struct rd *r, struct proto_hello *out);
int proto_hello_put(struct wr *w, const struct proto_hello *m);
int proto_menu_get(struct rd *r, struct proto_menu *out);
int proto_menu_put(struct wr *w, const struct proto_menu *m);
int proto_select_get(struct rd *r, struct proto_select *out);
int proto_select_put(struct wr *w, const struct proto_select *m);
int proto_se_apdu_get(struct rd *r, struct proto_apdu *out);
int proto_se_apdu_put(struct wr *w, const struct proto_apdu *m);
int proto_se_resp_get(struct rd *r, struct proto_apdu *out);
int proto_se_resp_put(struct wr *w, const struct proto_apdu *m);
int proto_relay_up_get(struct rd *r, struct proto_relay_up *out);
int proto_relay_up_put(struct wr *w, const struct proto_relay_up *m);
int proto_relay_down_get(struct rd *r, struct proto_relay_down *out);
int proto_relay_down_put(struct wr *w, const struct proto_relay_down *m);
int proto_history_req_get(struct rd *r, struct proto_history_req *out);
int proto_history_req_put(struct wr *w, const struct proto_history_req *m);
int proto_history_get(struct rd *r, struct proto_history *out);
int proto_history_put(struct wr *w, const struct proto_history *m);
int proto_notice_get(struct rd *r, struct proto_text *out);
int proto_notice_put(struct wr *w, const struct proto_text *m);
int proto_error_get(struct rd *r, struct proto_error *out);
int proto_error_put(struct wr *w, const struct proto_error *m);
int proto_ping_get(struct rd *r, struct proto_ping *out);  /* PING and PONG */
int proto_ping_put(struct wr *w, const struct proto_ping *m);
int proto_bye_get(struct rd *r);                           /* empty payload */
int proto_stage_get(struct rd *r, struct proto_stage *out);
int proto_stage_put(struct wr *w, const struct proto_stage *m);

/* Any type through one table: decodes n payload bytes of a frame of this type into *m
 * (m->type = type), or encodes m's payload (not the frame header) into w. */
int proto_decode(uint8_t type, const uint8_t *p, size_t n, struct proto_msg *m);
int proto_encode(struct wr *w, const struct proto_msg *m);

/* A whole frame (header and payload) for m into w, within the limit the receiving side
 * has for its type (proto_phone_in for server -> phone types, proto_srv_in for the
 * others). TB_E_FRAME_OVERSIZE cannot happen for a message the encoder accepts. */
int proto_frame_put(struct wr *w, const struct proto_msg *m);

#endif
