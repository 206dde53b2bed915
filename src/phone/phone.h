/* phone.h - the phone core (the patent's communication unit 20): its screen, its part of
 * the relay between the se and the server, and the user's commands. No I/O, no heap,
 * no clock of its own: an adapter (io/phone_net.c) decodes the server's frames and the
 * se's link frames, feeds them in with the calls below, and after every call performs
 * the actions the core queued (ph_next_action) and prints its screen lines
 * (ph_screen_take). docs/phone.md is the prose; docs/protocol.md the bytes.
 *
 * Ownership: struct ph is the caller's (PH_SIZE_MAX bytes at most, a test checks).
 * Every pointer handed in is borrowed for the call only, except that an action may
 * point into the input of the call that queued it: perform the actions before the
 * next ph_* call. Errors: 0 or a negative TB_E_* (TB_E_INVAL for bad arguments,
 * TB_E_NOSPACE when more actions or screen text pile up than the core holds: the
 * adapter did not drain them).
 *
 * Screen lines (without the "phone: " the adapter adds): see docs/phone.md. */
#ifndef TB_PHONE_H
#define TB_PHONE_H

#include <stddef.h>
#include <stdint.h>

#define PH_SERIAL_LEN 8u
#define PH_MENU_MAX 32u        /* server/proto.h PROTO_MENU_MAX */
#define PH_NAME_MAX 63u        /* PROTO_NAME_MAX */
#define PH_NOTICE_MAX 256u     /* PROTO_NOTICE_MAX */
#define PH_STAGE_MAX 21u       /* PROTO_STAGE_MAX */
#define PH_RELAY_MAX 1024u     /* PROTO_RELAY_MAX: a relayed payload or its answer */
#define PH_HISTORY_MAX 32u     /* PROTO_HISTORY_MAX */
#define PH_QUEUE_MAX 8u        /* se APDUs in flight */
#define PH_ACT_MAX 8u          /* actions queued by one call */
#define PH_SCREEN_MAX 8192u    /* screen text queued by one call */
#define PH_NOTICES 8u          /* notices kept for wait-notice */
#define PH_PING_MS 60000u      /* PING the server after this long without sending */
#define PH_RELAY_WAIT_MS 5000u /* default wait for RELAY_DOWN before RELAY FAIL */
#define PH_CMD_WAIT_MS 30000u  /* default wait for a server answer (SELECT, history) */
#define PH_SIZE_MAX 20000u

/* The wallet AID (se/se.h se_wallet_aid) and the local commands built from it. */
#define PH_WALLET_AID_LEN 11u
extern const uint8_t ph_wallet_aid[PH_WALLET_AID_LEN];
/* SELECT wallet without Le: what precedes every plain command of the phone's own. */
#define PH_WALLET_SELECT_LEN (5u + PH_WALLET_AID_LEN)
extern const uint8_t ph_wallet_select[PH_WALLET_SELECT_LEN];
/* First bytes of the server's last answer of a reader exchange (src/lib/rmsg.h: 83 RESULT,
 * 8F refusal); the phone does not parse relay messages beyond this and the HELLO. */
#define PH_RELAY_END_RESULT 0x83u
#define PH_RELAY_END_REFUSE 0x8Fu

/* What the core wants done. Data pointers are valid until the next ph_* call. */
enum ph_act_kind {
	PH_ACT_NONE = 0,
	PH_ACT_SRV_HELLO,       /* serial (ph->serial) */
	PH_ACT_SRV_SELECT,      /* a = service, op */
	PH_ACT_SRV_SE_RESP,     /* a = seq, data/n = the se's response */
	PH_ACT_SRV_RELAY_UP,    /* a = relay id, b = service, data/n = payload */
	PH_ACT_SRV_HISTORY_REQ, /* a = max (1..32), before = 0 */
	PH_ACT_SRV_PING,        /* token */
	PH_ACT_SRV_PONG,        /* token */
	PH_ACT_SRV_BYE,
	PH_ACT_SRV_PORTAL_REQ,  /* a one-time portal login link, please */
	PH_ACT_SE_APDU,         /* data/n = a command APDU for the host interface */
	PH_ACT_SE_POWER,        /* op = 00 off, 01 on, 02 reset */
	PH_ACT_SE_RELAY_ANSWER, /* a = relay id, data/n = answer */
	PH_ACT_SE_RELAY_FAIL,   /* a = relay id */
	PH_ACT_CLOSE,           /* end the server session (after an ERROR, BYE, a bad frame) */
};

struct ph_act {
	enum ph_act_kind kind;
	uint32_t a, b;
	uint8_t op;
	uint8_t token[8];
	const uint8_t *data;
	size_t n;
};

/* Inputs from the server, decoded by the adapter. */
struct ph_menu_item {
	uint32_t id;
	uint8_t kind;                    /* 1 personal auth, 2 e-money, 3 e-commerce, 4 ticket */
	uint8_t state;                   /* 1 offered, 2 ready, 3 blocked */
	const uint8_t *name;             /* 1..PH_NAME_MAX bytes of checked text */
	size_t name_len;
};

struct ph_hist_rec {
	uint64_t id;
	int64_t time;
	uint8_t kind;
	uint32_t service, reader;
	int64_t amount, balance;
};

/* User commands (ph_cmd_parse). */
enum ph_cmd_kind {
	PH_CMD_NONE = 0,
	PH_CMD_MENU,
	PH_CMD_SELECT,      /* use / permit / topup / select: arg = service, op */
	PH_CMD_ARM,         /* arg = service */
	PH_CMD_BALANCE,
	PH_CMD_HISTORY,     /* arg = max records */
	PH_CMD_LOCK,
	PH_CMD_WAIT_NOTICE, /* text = prefix (may be empty), ms */
	PH_CMD_SERVE,       /* ms, text = prefix that ends it early (may be empty) */
	PH_CMD_SLEEP,       /* ms */
	PH_CMD_PING,        /* arg = round trips left (PING/PONG with the server) */
	PH_CMD_PORTAL,      /* PORTAL_REQ: the portal's one-time login link */
	PH_CMD_QUIT,
};

#define PH_TEXT_MAX 128u

struct ph_cmd {
	enum ph_cmd_kind kind;
	uint32_t arg;
	uint8_t op;
	uint32_t ms;
	char text[PH_TEXT_MAX];
};

/* Where a command is. */
enum ph_cmd_state {
	PH_CMD_IDLE = 0,   /* none started */
	PH_CMD_RUNNING,
	PH_CMD_OK,
	PH_CMD_FAILED,
};

enum ph_q_kind {
	PH_Q_SRV = 1,      /* an SE_APDU of the server: its response goes back as SE_RESP */
	PH_Q_SERIAL,       /* GET DATA 00 45 at start */
	PH_Q_SELECT,       /* SELECT wallet before a local command */
	PH_Q_LOCAL,        /* the local command itself */
	PH_Q_DISARM,       /* SELECT wallet and DISARM after a reader exchange (answers ignored) */
};

struct ph_q {
	uint8_t kind;      /* enum ph_q_kind */
	uint32_t seq;
};

struct ph_config {
	int trace;                  /* relay lines ("relay up N", "relay hello from stage") */
	uint32_t relay_wait_ms;     /* 0: PH_RELAY_WAIT_MS */
	const char *until_notice;   /* serve ends early on a NOTICE with this prefix; may be NULL */
	/* Test seams (`tapbridge phone --fault`, docs/phone.md): 0 = off. N counts over the
	 * whole session (HELLOs answered from the stage are not RELAY_UPs). */
	uint32_t fault_flip_up;     /* the Nth RELAY_UP leaves with its middle byte flipped */
	uint32_t fault_flip_down;   /* the Nth RELAY_DOWN answer reaches the se so changed */
	uint32_t fault_drop_after;  /* the Nth RELAY_UP leaves; the se is never answered for it
	                               and its RELAY_DOWN, dropped, ends the server session */
};

struct ph {
	struct ph_config cfg;
	uint64_t now;               /* ms, the adapter's monotonic clock */
	uint64_t last_sent;         /* last frame to the server (PING rhythm) */
	/* session */
	uint8_t serial[PH_SERIAL_LEN];
	uint8_t have_serial, hello_sent, menu_seen, srv_open, se_open, quit_sent;
	uint32_t ping_count;
	uint64_t ping_at;           /* the ping command's PING went out (ms) */
	size_t menu_n;
	struct {
		uint32_t id;
		uint8_t kind, state;
		uint8_t name_len;
		char name[PH_NAME_MAX + 1];
	} menu[PH_MENU_MAX];
	uint8_t stage[PH_STAGE_MAX];
	size_t stage_n;
	uint8_t hello_answer[1 + PH_STAGE_MAX]; /* 81 || the stage, while its action waits */
	/* se APDUs in flight, oldest first */
	struct ph_q q[PH_QUEUE_MAX];
	size_t qn;
	/* relay */
	uint8_t relay_pending;
	uint32_t relay_id;
	uint64_t relay_since;
	uint32_t exchange_ups;      /* RELAY_UPs since the last relay HELLO */
	uint64_t stat_rtts, stat_ups, stat_local;
	/* test seams (cfg.fault_*) */
	uint64_t fault_downs;       /* RELAY_DOWN answers passed to the se */
	uint8_t fault_dropping;     /* the relay fault_drop_id is being dropped */
	uint32_t fault_drop_id;
	uint8_t fault_buf[PH_RELAY_MAX]; /* a flipped payload or answer, while its action waits */
	/* notices not yet claimed by a command (wait-notice, SELECT) */
	char notice[PH_NOTICES][PH_NOTICE_MAX + 1];
	size_t notice_n;
	/* the running command */
	struct ph_cmd cmd;
	enum ph_cmd_state cmd_state;
	uint64_t cmd_deadline;
	uint8_t local_cmd[16];      /* the local command APDU after SELECT wallet */
	size_t local_n;
	/* outputs */
	struct ph_act act[PH_ACT_MAX];
	size_t act_n, act_next;
	int act_err;                /* sticky TB_E_NOSPACE: something was lost */
	char screen[PH_SCREEN_MAX];
	size_t screen_n;
};

/* Starts the core at time now (ms): POWER reset and GET DATA (serial) to the se; HELLO
 * follows once the serial is in. */
int ph_init(struct ph *ph, const struct ph_config *cfg, uint64_t now);

/* ---- from the server (decoded by the adapter) ---- */
int ph_srv_menu(struct ph *ph, const struct ph_menu_item *items, size_t n);
int ph_srv_se_apdu(struct ph *ph, uint32_t seq, const uint8_t *apdu, size_t n);
int ph_srv_relay_down(struct ph *ph, uint32_t relay, uint8_t status, const uint8_t *p, size_t n);
int ph_srv_history(struct ph *ph, uint8_t more, const struct ph_hist_rec *recs, size_t n);
/* PORTAL_LINK: the portal's one-time login URL (shown, then forgotten). */
int ph_srv_portal_link(struct ph *ph, const uint8_t *url, size_t n);
int ph_srv_notice(struct ph *ph, const uint8_t *text, size_t n);
int ph_srv_error(struct ph *ph, uint16_t code, const uint8_t *reason, size_t n);
int ph_srv_ping(struct ph *ph, const uint8_t token[8]);
/* A PONG that came at now (ms, the adapter's clock at its arrival: it times `ping`). */
int ph_srv_pong(struct ph *ph, const uint8_t token[8], uint64_t now);
int ph_srv_bye(struct ph *ph);
int ph_srv_stage(struct ph *ph, const uint8_t *apdu, size_t n);
/* The session ended (closed, TLS failure, a frame that did not decode): why is a short
 * text for the screen. */
int ph_srv_closed(struct ph *ph, const char *why);

/* ---- from the se (link frames, decoded by the adapter) ---- */
int ph_se_response(struct ph *ph, const uint8_t *resp, size_t n);
int ph_se_relay(struct ph *ph, uint32_t id, uint32_t service, const uint8_t *p, size_t n);
int ph_se_transaction(struct ph *ph, uint8_t kind, uint32_t amount, uint32_t balance,
		      uint32_t counter);
int ph_se_disable(struct ph *ph, uint16_t bitmap);
int ph_se_locked(struct ph *ph, int locked);
int ph_se_lost(struct ph *ph, uint32_t count);
int ph_se_closed(struct ph *ph, const char *why);

/* ---- time ---- */
/* The clock moved on: PING when idle, relay and command deadlines. */
int ph_tick(struct ph *ph, uint64_t now);

/* ---- commands ---- */
/* Parses one command line ("use 2", "history 5", "wait-notice topped up 10"): 0, or
 * TB_E_INVAL with a reason for the user in why (NUL-terminated). */
int ph_cmd_parse(const char *line, struct ph_cmd *out, char *why, size_t whylen);
/* Starts c (one at a time: TB_E_INVAL while one runs). Its end shows in ph_cmd_state. */
int ph_cmd_start(struct ph *ph, const struct ph_cmd *c);
enum ph_cmd_state ph_cmd_state(const struct ph *ph);
/* 1 once the session can take commands: the se answered, HELLO went out, a MENU came
 * (or the session ended: then every server command fails). */
int ph_ready(const struct ph *ph);
/* 1 while the session with the server is up. */
int ph_srv_up(const struct ph *ph);

/* ---- outputs ---- */
/* The next queued action into *a: 1, or 0 when none is left. */
int ph_next_action(struct ph *ph, struct ph_act *a);
/* The screen text queued so far (lines ending in '\n', without the "phone: " prefix)
 * and its length; cleared by the call. */
const char *ph_screen_take(struct ph *ph, size_t *n);
/* Sticky: TB_E_NOSPACE once an action or screen text was dropped. */
int ph_error(const struct ph *ph);

#endif
