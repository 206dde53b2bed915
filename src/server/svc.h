/* svc.h - the per-phone service engine of the server: e-money top-up, ticket issue, the
 * authenticity flag (with the personal-auth key's registration), the backup of the se to
 * the vault and the restore into a replacement se, as one state machine per session, with
 * no I/O and no allocation. An operation's channel to the se carries a list of secured
 * commands: the first rides with EXTERNAL AUTHENTICATE, each next one is wrapped by the
 * sam (SCP_WRAP) once the previous response is unwrapped.
 * The caller owns struct svc (fixed size) and drives it with the phone's SELECT and SE_RESP,
 * the sam's replies and the commit outcome of queued db work; the engine answers through
 * struct svc_io: the APDU for the phone, the sam request, the db work item, what the phone
 * hears. A confirmation is told only from svc_job_done() with a zero commit outcome (top-up)
 * or after a committed ticket's record was stored in the se. */
#ifndef TB_SERVER_SVC_H
#define TB_SERVER_SVC_H

#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "svc_cmd.h"

#define SVC_TICKET_DAYS 86400    /* a phone-issued ticket: valid now .. now + 1 day */
#define SVC_FLAG_SECONDS 300     /* a flag is valid this long after it is set */
#define SVC_AID_MAX 16u          /* the longest wallet aid svc_io may name */

/* What a session's channel to the se is for. */
enum svc_op { SVC_OP_TOPUP = 1, SVC_OP_TICKET = 2, SVC_OP_FLAG = 3, SVC_OP_ARM = 4,
	      SVC_OP_PERMIT = 5, SVC_OP_BACKUP = 6, SVC_OP_RESTORE = 7, SVC_OP_LOCK = 8,
	      SVC_OP_UNLOCK = 9, SVC_OP_REFUND = 10 };

/* SELECT's op byte (docs/protocol.md): the service's phone operation, use at a reader now
 * (flow 1: the server arms the relay), or a one-time relay permit (flows 2, 4, 5). */
enum svc_select_op { SVC_SEL_DEFAULT = 0, SVC_SEL_USE = 1, SVC_SEL_PERMIT = 2,
			 SVC_SEL_BACKUP = 3, SVC_SEL_RESTORE = 4 };
#define SVC_ARM_SECONDS 60        /* flow 1: the relay stays armed this long */
#define SVC_PERMIT_SECONDS 86400  /* a permit can be used this long */
#define SVC_SEALED_MAX 256u       /* a sealed backup (216) or personal-auth key (62) */
#define SVC_SLOT_BACKUP 1u        /* vault slots */
#define SVC_SLOT_PAUTH 2u
#define SVC_BLOB_ID_MAX 32u       /* "vault:<serial hex>:1", "pauth:<serial hex>" */

/* Where a session's operation is (one at a time per session). */
enum svc_state {
	SV_IDLE = 0,
	SV_ISSUE,      /* ticket: its db row queued for this loop turn's batch */
	SV_SIGN,       /* flag: the token at the sam's SIGN */
	SV_REVOKE,     /* ticket the se refused: its row's revocation queued for the batch */
	SV_SELECT,     /* SE_APDU SELECT wallet sent */
	SV_OPENING,    /* SCP_OPEN at the sam */
	SV_IU,         /* SE_APDU INITIALIZE UPDATE sent */
	SV_STEP1,      /* SCP_STEP (IU response + command) at the sam */
	SV_EA,         /* SE_APDU EXTERNAL AUTHENTICATE and wrapped command sent */
	SV_CREDIT,     /* EA response given to the sam; waiting for the command's response */
	SV_UNWRAP,     /* SCP_UNWRAP at the sam */
	SV_VERIFY,     /* RECEIPT_VERIFY at the sam */
	SV_COMMIT,     /* ledger work queued for this loop turn's batch */
	SV_WRAP,       /* SCP_WRAP of the channel's next command at the sam */
	SV_NEXT,       /* SE_APDU of a next command sent; its response comes next */
	SV_SEAL,       /* backup: SEAL_BLOB at the sam */
	SV_OPENBLOB,   /* restore: OPEN_BLOB of the lost se's backup at the sam */
	SV_JOB,        /* backup, restore, personal-auth key: db work of `phase` queued */
	/* re-keying an se the current KVN did not reach (svc_rekey.c), before the op's channel */
	SV_RK_OPEN,    /* SCP_OPEN (the KVN the se names, ISD) at the sam */
	SV_RK_SELECT,  /* SELECT ISD and INITIALIZE UPDATE sent: SELECT's answer next */
	SV_RK_IU,      /* ... INITIALIZE UPDATE's answer next */
	SV_RK_STEP1,   /* SCP_STEP(IU response, GET DATA key information) at the sam */
	SV_RK_EA,      /* EXTERNAL AUTHENTICATE and the wrapped GET DATA sent */
	SV_RK_INFO,    /* EA answer at the sam; GET DATA's answer next */
	SV_RK_UNWRAP,  /* SCP_UNWRAP of GET DATA or of a PUT KEY at the sam */
	SV_RK_PUT,     /* SCP_PUT_KEY at the sam */
	SV_RK_NEXT,    /* a PUT KEY sent: its answer next */
};

/* The db work of a backup, a restore or a personal-auth registration (svc.phase). */
enum svc_phase {
	SVC_PH_NONE = 0,
	SVC_PH_BACKUP,      /* srv_vault_put(slot 1, version, blob) */
	SVC_PH_R_FIND,      /* restore: the lost se, its backup, the move, earlier runs */
	SVC_PH_R_TICKETS,   /* restore: tickets re-issued to this se, the run marked begun */
	SVC_PH_R_DONE,      /* restore: old tickets revoked, the run and its receipt recorded */
	SVC_PH_PAUTH,       /* the personal-auth key: vault slot 2, the identifier */
	SVC_PH_RF_BEGIN,    /* refund: its credit begun at the purse counter read (CB:), or
			     * found applied (relay_refund_begin) */
};

/* The sam requests the engine issues; the tag comes back with the reply. */
enum svc_sam_kind {
	SVC_SAM_CLOSE = 0, /* SCP_CLOSE(handle): fire and forget */
	SVC_SAM_OPEN,      /* SCP_OPEN for the se serial, level 33, wallet aid */
	SVC_SAM_STEP1,     /* SCP_STEP(handle, IU response, cmd) */
	SVC_SAM_STEP2,     /* SCP_STEP(handle, EA response) */
	SVC_SAM_UNWRAP,    /* SCP_UNWRAP(handle, response) */
	SVC_SAM_VERIFY,    /* RECEIPT_VERIFY(kvn, serial, mac, data) */
	SVC_SAM_SIGN,      /* SIGN(flag domain, data) */
	SVC_SAM_WRAP,      /* SCP_WRAP(handle, cmd): the channel's next command */
	SVC_SAM_SEAL,      /* SEAL_BLOB(id, data) */
	SVC_SAM_OPENBLOB,  /* OPEN_BLOB(id, data) */
	/* re-keying (svc_rekey.c): a sam session of its own on the se's ISD */
	SVC_SAM_RK_OPEN,   /* SCP_OPEN(se-server, the KVN the se names, serial, 33, ISD aid) */
	SVC_SAM_RK_STEP1,  /* SCP_STEP(handle, IU response, GET DATA 00 E0) */
	SVC_SAM_RK_STEP2,  /* SCP_STEP(handle, EA response) */
	SVC_SAM_RK_UNWRAP, /* SCP_UNWRAP(handle, GET DATA or PUT KEY response) */
	SVC_SAM_PUT_KEY,   /* SCP_PUT_KEY(handle, family, kvn) -> new kvn || wrapped PUT KEY */
	/* the reader channel through the relay (svc_relay.c), a sam session of its own */
	SVC_SAM_R_OPEN,    /* SCP_OPEN(reader-server, serial 0000||reader, 33, staged challenge) */
	SVC_SAM_R_STEP1,   /* SCP_STEP(handle, IU response, GET REQUEST) */
	SVC_SAM_R_STEP2,   /* SCP_STEP(handle, EA response) */
	SVC_SAM_R_UNWRAP,  /* SCP_UNWRAP(handle, GET REQUEST response) */
	SVC_SAM_R_VERIFY,  /* RECEIPT_VERIFY of a record's receipt */
	SVC_SAM_R_WRAP,    /* SCP_WRAP(handle, RESULT) */
	SVC_SAM_R_CLOSE,   /* SCP_CLOSE(handle) */
	SVC_SAM_R_OPENBLOB, /* OPEN_BLOB of a record's se's personal-auth key (vault slot 2) */
	SVC_SAM_KINDS
};

/* A sam request; pointers are valid during the call only. */
struct svc_sam_req {
	uint8_t kind;           /* enum svc_sam_kind */
	uint32_t handle;        /* CLOSE, STEP*, UNWRAP */
	const uint8_t *data;    /* the se's response, the receipt body or the token */
	size_t n;
	const uint8_t *cmd;     /* STEP1: the command to wrap */
	size_t cmd_n;
	const uint8_t *serial;  /* OPEN, VERIFY */
	uint8_t kvn;            /* VERIFY; PUT_KEY: the set replaced */
	uint8_t family;         /* PUT_KEY */
	const uint8_t *mac;     /* VERIFY */
	size_t mac_n;
	const char *id;         /* SEAL, OPENBLOB: the blob id (text) */
};

/* A sam reply as the adapter decoded it for its tag; err != 0: failed or undecodable. */
struct svc_sam_reply {
	int err;
	uint32_t handle;                /* OPEN */
	const uint8_t *apdu;            /* OPEN: INITIALIZE UPDATE */
	size_t apdu_n;
	const uint8_t *ea, *wrapped;    /* STEP1 (err set unless both and EA state) */
	size_t ea_n, wrapped_n;
	uint16_t sw;                    /* UNWRAP */
	int authenticated;              /* UNWRAP */
	const uint8_t *data;            /* UNWRAP: plain response data; SIGN: raw reply */
	size_t n;
};

/* What the phone hears (and the log line that goes with it). */
enum svc_tell_kind {
	SVC_T_START = 1,       /* log only: "<op>_start" */
	SVC_T_FAILED,          /* why; the session ends: "<op> failed" */
	SVC_T_REFUSED,         /* sw: "<op> refused by the se (XXXX)" */
	SVC_T_TICKET_ISSUED,   /* confirmation: "ticket N issued" */
	SVC_T_FLAG_SET,        /* confirmation: "flag set until T" */
	SVC_T_TICKET_REFUSED,  /* sw, rc == 0: revoked; "ticket refused by the se (XXXX)" */
	SVC_T_TICKET_LOST,     /* rc: row not recorded (db); the session ends */
	SVC_T_TICKET_RULE,     /* rc: row refused by a rule: "ticket refused (...)" */
	SVC_T_TOPUP_LOST,      /* rc: credit not recorded; the session ends */
	SVC_T_TOPPED_UP,       /* confirmation: "topped up A, balance B" (replayed) */
	SVC_T_NO_SERVICE,      /* "no such service" */
	SVC_T_BUSY,            /* "busy with the service selected before" */
	SVC_T_UNAVAILABLE,     /* "service not available from the phone yet" */
	SVC_T_RESP_UNASKED,    /* SE_RESP out of seq: the session ends */
	SVC_T_RESP_UNEXPECTED, /* SE_RESP in no channel state: the session ends */
	SVC_T_ARMED,           /* "service available: tap the reader" (+ MENU ready) */
	SVC_T_PERMIT,          /* "permit stored" */
	SVC_T_LOCK_APPLIED,    /* the portal's lock / unlock is in the se now */
	SVC_T_RELAYED,         /* a reader's record booked: rec says which */
	SVC_T_RELAY_REFUSED,   /* the reader channel refused: why */
	SVC_T_BACKUP_STORED,   /* "backup stored (balance B, N tickets)" */
	SVC_T_RESTORED,        /* "restored: balance B, N tickets" */
	SVC_T_RESTORED_BEFORE, /* "restored already" */
	SVC_T_OP_RULE,         /* rc: a rule refused: "<op> refused (...)"; the session goes on */
	SVC_T_OP_LOST,         /* rc: the op's db work not recorded; the session ends */
	SVC_T_REKEY_START,     /* log only: the current KVN did not reach the se */
	SVC_T_REKEYED,         /* log only: the se's sets replaced (rk_* say which) */
	SVC_T_REFUNDED,        /* a refund credited: "refund A at reader R, balance B" */
};

struct svc_tell {
	uint8_t kind;       /* enum svc_tell_kind */
	const char *why;    /* FAILED: a static word */
	uint16_t sw;
	int rc;
	int replayed;
	const struct svc_rl_rec *rec; /* RELAYED */
};

struct svc;
struct svc_rl_rec;

/* The adapter. apdu and sam return 0 or a negative TB_E_* (the operation then fails);
 * job queues v's db work for the next group commit, answered by svc_job_done(); live
 * says whether v's phone session still exists (the engine also knows of svc_leave()). */
struct svc_io {
	const uint8_t *aid;   /* the wallet applet the channel selects */
	size_t aid_n;
	int (*apdu)(struct svc *v, uint32_t seq, const uint8_t *apdu, size_t n);
	int (*sam)(struct svc *v, const struct svc_sam_req *rq);
	void (*job)(struct svc *v);
	void (*tell)(struct svc *v, const struct svc_tell *t);
	int (*live)(const struct svc *v);
	/* the relay (svc_relay.c) */
	int (*relay_down)(struct svc *v, uint32_t relay, const uint8_t *answer, size_t n);
	int (*stage)(struct svc *v, const uint8_t *apdu, size_t n);
	int (*reader_ok)(struct svc *v, uint32_t reader);   /* 0, or TB_E_SRV_* */
	void (*rjob)(struct svc *v);                         /* the records' db work */
	/* Reads outside the batch (NULL: none). pauth_need: 1 when the se has a personal-auth
	 * record and no key in the vault yet. blob: the sealed blob of (serial, slot) as this
	 * se may read it, 0 or a TB_E_* (not found, not the owner). */
	int (*pauth_need)(struct svc *v);
	int (*blob)(struct svc *v, const uint8_t serial[SVC_SERIAL_LEN], uint32_t slot,
		    uint8_t *buf, size_t cap, size_t *n);
};

/* A service as offered (from the db's services table). */
struct svc_offer {
	uint32_t id;
	uint8_t kind;       /* enum db_svc_kind */
	uint32_t item1;     /* price item 1: top-up amount, flag's offline limit; 0 = none */
};

/* ------------------------------------------------------------ the relay --- */

#define SVC_RL_RECORDS 8u       /* records of one REQUEST */
#define SVC_RL_REQ_MAX 1024u    /* a REQUEST's plain bytes */
#define SVC_RL_INFO_MAX 64u     /* RMSG_INFO_MAX with the NUL */
#define SVC_RL_CHALLENGE 8u

enum svc_rl_state {
	RL_IDLE = 0,
	RL_OPEN,        /* SCP_OPEN at the sam */
	RL_STEP1,       /* SCP_STEP(IU response, GET REQUEST) at the sam */
	RL_WAIT_DATA,   /* answer 82 sent; the reader's DATA comes next */
	RL_STEP2,       /* SCP_STEP(EA response) + SCP_UNWRAP pipelined */
	RL_VERIFY,      /* the records' receipts at the sam */
	RL_JOB,         /* the records' db work in this loop turn's batch */
	RL_WRAP,        /* SCP_WRAP(RESULT) at the sam */
};

/* What the engine found of a PAUTH record's proof before the batch. */
enum svc_pauth_check { SVC_PA_NONE = 0, SVC_PA_OK, SVC_PA_FAILED, SVC_PA_NO_KEY };

/* One reader record of a REQUEST and what became of it. */
struct svc_rl_rec {
	uint8_t kind;            /* rmsg record kind */
	uint32_t seq;
	int64_t time;
	uint32_t service;
	uint8_t serial[SVC_SERIAL_LEN];
	uint16_t off, len;       /* its body in rl.req */
	int bad_receipt;         /* the receipt failed its MAC at the sam */
	uint8_t pauth;           /* PAUTH: enum svc_pauth_check, set before the batch */
	uint8_t status;          /* RESULT status: 0 booked, 1 booked before, 2 refused */
	uint32_t amount;         /* what it moved (PAY, ORDER, FLAG) */
	int64_t balance;
	char info[SVC_RL_INFO_MAX];
};

struct svc_relay {
	uint8_t state;           /* enum svc_rl_state */
	uint8_t staged;          /* hc is staged at the phone and unused */
	uint8_t hc[SVC_RL_CHALLENGE];
	uint32_t relay;          /* the relay id being answered */
	uint32_t service;
	uint32_t reader;
	uint32_t handle;
	int has_handle;
	unsigned verifying;      /* RECEIPT_VERIFY replies still due */
	unsigned vsent, vdone;   /* verifies sent / answered */
	uint8_t vorder[SVC_RL_RECORDS]; /* the record each verify is for, in send order */
	uint8_t req[SVC_RL_REQ_MAX];
	size_t req_n;
	struct svc_rl_rec rec[SVC_RL_RECORDS];
	size_t nrec;
	uint8_t deny[32][SVC_SERIAL_LEN];
	size_t ndeny;
	int64_t t0_us;
	uint32_t exchanges;      /* RELAY_UPs answered by the server (round trips) */
	/* a refund of this se booked but not yet in it (relay_refund_due, found in the
	 * batch): credited through the server's channel after the RESULT (svc_refund.c) */
	uint64_t due_xfer;       /* 0: none */
	uint32_t due_amount, due_service, due_reader;
};

/* One phone session's service state. The adapter may read every field; it writes only
 * user and, from its db jobs, what they find (a ticket's id, a restore's earlier runs, a
 * refund credit's step). */
struct svc {
	void *user;
	uint8_t serial[SVC_SERIAL_LEN];
	int gone;
	unsigned refs;           /* sam requests in flight + queued db work */
	uint8_t state;           /* enum svc_state */
	uint8_t op;              /* enum svc_op */
	uint8_t cmd[SVC_CMD_MAX];/* the secured command (CREDIT, TICKET STORE, FLAG SET) */
	uint8_t token[SVC_TOKEN_LEN]; /* flag: the token, waiting for its signature */
	size_t cmd_n;
	char key[DB_KEY_MAX];    /* ticket: its idempotency key */
	int64_t valid_from, valid_until;
	uint64_t ticket;         /* ticket: the id the db gave it */
	uint16_t sw;             /* ticket: the se's refusal, told after the revocation */
	uint32_t service;
	uint32_t amount;
	uint32_t seq;            /* the last SE_APDU seq sent */
	uint32_t acked;          /* the last seq answered by an SE_RESP (they come in order) */
	uint32_t handle;         /* sam session, valid while has_handle */
	int has_handle;
	int64_t t0_us;           /* SELECT arrived */
	uint32_t counter, balance; /* the receipt (restore: or the purse read) */
	/* several commands in one channel (svc.c) */
	uint8_t icmd;            /* commands of this channel answered so far */
	uint8_t next[SVC_CMD_MAX]; /* flag with registration: FLAG SET, after PAUTH SET */
	size_t next_n;
	uint8_t phase;           /* enum svc_phase: the queued db work */
	uint8_t sam_wait;        /* flag: SIGN and SEAL replies still due */
	/* backup, restore, personal-auth key */
	uint8_t blob[SVC_SEALED_MAX]; /* sealed: the backup, the lost se's backup, the key */
	size_t blob_n;
	uint64_t version;        /* the vault version written */
	struct svc_backup bk;    /* backup: what the se holds; restore: the lost se's backup,
	                          * tickets rewritten to their re-issued form */
	uint64_t new_id[SVC_TICKETS_MAX]; /* restore: re-issued id per bk ticket, 0 = none */
	uint8_t old[SVC_SERIAL_LEN]; /* restore: the lost se this one replaces */
	uint32_t moved;          /* restore: the balance the ledger moved */
	uint32_t c0;             /* restore: the se's purse counter when the run began;
	                          * refund: the counter read before the CREDIT */
	uint8_t pending;         /* restore: a run began before (history) */
	uint8_t done_before;     /* restore: a run was recorded done */
	uint8_t skip_credit;     /* restore: the purse moved since that run began */
	uint8_t rkind;           /* restore: 0 purse read, 1 CREDIT, 2 TICKET STORE in flight */
	uint8_t tnext;           /* restore: the next bk ticket to store */
	uint8_t stored;          /* restore: tickets stored in the se */
	uint8_t pauth_reg;       /* flag: a personal-auth key is being set */
	uint8_t pauth_id[SVC_PAUTH_ID_LEN];
	/* refund credit (svc_refund.c): the refund's transfer and the reader that took it */
	uint64_t rf_xfer;
	uint32_t rf_reader;
	uint8_t rf_step;         /* enum relay_credit_step, from the begin job (0: none yet) */
	/* re-keying (svc_rekey.c): once per operation, before its channel */
	uint8_t rekeyed;         /* a re-key ran for this operation (a second 6A88 is a refusal) */
	uint8_t rk_family;       /* the PUT KEY in flight (0: the key information) */
	uint8_t rk_server, rk_reader;   /* the se's se-server / se-reader KVN (key information) */
	uint8_t rk_new_server, rk_new_reader; /* what they became (0: unchanged) */
	struct svc_relay rl;
};

/* A fresh idle session for the se serial. */
void svc_init(struct svc *v, const uint8_t serial[SVC_SERIAL_LEN], void *user);
/* The phone's SELECT: sv NULL = no such service; has_sam: the server has a sam. */
void svc_select(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
		int has_sam, int64_t now_s, int64_t now_us);
/* A lock or unlock the portal asked for, applied at the se's next contact (after
 * HELLO): LOCK 80 90 / UNLOCK 80 92 through the server's channel. An se that is locked
 * already answers LOCK with 6A81: that counts as applied. */
void svc_lock_start(struct svc *v, const struct svc_io *io, int lock, int64_t now_us);
/* SELECT with its op byte (enum svc_select_op); svc_select is op 0. */
void svc_select_op(struct svc *v, const struct svc_io *io, const struct svc_offer *sv,
		   uint8_t op, int has_sam, int64_t now_s, int64_t now_us);
/* The relay (svc_relay.c): a fresh host challenge staged at the phone (after HELLO and
 * after each exchange); a RELAY_UP; the records' commit outcome. */
void svc_relay_stage(struct svc *v, const struct svc_io *io);
void svc_relay_up(struct svc *v, const struct svc_io *io, uint32_t relay, uint32_t service,
		  const uint8_t *p, size_t n, int64_t now_us);
int svc_relay_job_done(struct svc *v, const struct svc_io *io, int rc);
/* the relay's sam replies (svc_sam_done passes SVC_SAM_R_* here) */
void svc_relay_sam(struct svc *v, const struct svc_io *io, uint8_t kind,
		   const struct svc_sam_reply *r);
/* The proof of a PAUTH record (body: id(16) nonce(8) challenge(16) proof(16)) against
 * the opened personal-auth blob (id(16) key(16)) of the se serial: 0, TB_E_VAULT_PROOF
 * (another id, a proof that does not verify), TB_E_VAULT_BLOB (not 32 bytes). The key
 * copy and the computed proof are wiped. */
int svc_pauth_check(const uint8_t serial[SVC_SERIAL_LEN], const uint8_t *body, size_t n,
		    const uint8_t *plain, size_t pn);
/* Blob ids: "vault:<serial hex>:<slot>" and "pauth:<serial hex>" (out: SVC_BLOB_ID_MAX). */
int svc_blob_id(char *out, const char *what, const uint8_t serial[SVC_SERIAL_LEN], int slot);
/* A refund's credit (svc_refund.c): started after a RESULT when v->rl.due_xfer names one
 * and the session is idle: the purse read (GET BALANCE) first, the credit recorded begun
 * at its counter (db work SVC_PH_RF_BEGIN, committed before the CREDIT is sent: never
 * twice), then CREDIT of its amount in the same channel, the receipt checked as a
 * top-up's, its mark as the db work, then told; the outcome of either db work. */
void svc_refund_start(struct svc *v, const struct svc_io *io, int64_t now_us);
void svc_refund_done(struct svc *v, const struct svc_io *io, int rc);
/* Drops the reference a queued relay job held: 1 when v may be freed now. */
int svc_put_ref(struct svc *v);

/* The phone's SE_RESP (seq, response with its status word). */
void svc_se_resp(struct svc *v, const struct svc_io *io, uint32_t seq, const uint8_t *resp,
		 size_t n);
/* The sam's reply to a request of the given kind; unknown kinds and replies for a phone
 * that left are ignored (an opened channel is closed). 1: v may be freed now. */
int svc_sam_done(struct svc *v, const struct svc_io *io, uint8_t kind,
		 const struct svc_sam_reply *r);
/* The outcome of v's queued db work: 0 committed, else the error (the batch's or its own).
 * replayed: the top-up's key was applied before. 1: v may be freed now. */
int svc_job_done(struct svc *v, const struct svc_io *io, int rc, int replayed);
/* The phone left. 1: v may be freed now (else after its last reply or job). */
int svc_leave(struct svc *v, const struct svc_io *io);

#endif
