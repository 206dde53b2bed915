/* se_int.h - what the se's command handlers share: the context of one delivered
 * command, the access rule helper, persistence and events. Not a public API. */
#ifndef TB_SE_INT_H
#define TB_SE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "apdu.h"
#include "se.h"

#define SE_CLA_ISO 0x00u
#define SE_CLA_GP 0x80u

/* One command as the application sees it (after the secure channel). */
struct se_cmd {
	struct se *se;
	enum se_iface iface;
	const struct apdu *a;   /* plain command, borrowed from se->cbuf */
	int auth;               /* came in an authenticated session */
	uint8_t level;          /* that session's level */
	uint8_t role;           /* enum se_role of the session's key set, NONE without */
	uint8_t kvn;
	uint8_t slot;
	uint32_t seq;           /* the session's sequence counter (receipts name it) */
	uint32_t now;
	struct wr *out;         /* response data; the dispatcher appends the SW */
};

/* Access rules. ROLE bits name key set roles allowed; SE_ALLOW_HOST_PLAIN lets the
 * phone itself (host interface, no session) send the command. */
#define SE_ALLOW_SERVER (1u << SE_ROLE_SERVER)
#define SE_ALLOW_READER (1u << SE_ROLE_READER)
#define SE_ALLOW_DEFAULT (1u << SE_ROLE_DEFAULT)
#define SE_ALLOW_HOST_PLAIN 0x100u
/* The level every role-gated wallet command needs: C-MAC and R-MAC (the R-MAC is what
 * proves the response to the off-card entity). */
#define SE_LEVEL_WALLET (SCP_LEVEL_CMAC | SCP_LEVEL_RMAC)
/* Commands carrying a secret in clear inside the channel need C-DEC and R-ENC too. */
#define SE_LEVEL_SECRET (SCP_LEVEL_CMAC | SCP_LEVEL_CDEC | SCP_LEVEL_RMAC | SCP_LEVEL_RENC)

/* 0 when the command may run: from an allowed role in a session at `level` or better,
 * or (when allowed) as a plain command from the phone. Else TB_E_SE_SECURITY. */
int se_require(const struct se_cmd *c, unsigned allow, uint8_t level);

/* Checks P1 P2 and the exact data length (6A86, 6700). */
int se_expect(const struct se_cmd *c, uint8_t p1, uint8_t p2, size_t nc);

/* Makes next the persistent state (one journal transaction, see img_commit); on
 * success se->img = *next. On a store error the journal is recovered and the mirror
 * reloaded (old or new, whichever became durable) and the error returned. */
int se_persist(struct se *se, const struct se_image *next, const struct img_patch *patches,
	       size_t npatch);

/* Queues an event for the phone (drops the oldest when full and counts it). */
void se_event_push(struct se *se, const struct se_ev_slot *ev);

/* Random bytes from the config's rng: TB_E_SE_STATE when there is none. */
int se_random(struct se *se, uint8_t *out, size_t n);

/* Handlers, per application: 0 (data in c->out, SW 9000), SE_PENDING_RELAY, or a
 * negative TB_E_* turned into the SW by se_sw(). */
int isd_command(struct se_cmd *c);
int wallet_command(struct se_cmd *c);
int se_get_data_common(struct se_cmd *c); /* 9F7F CPLC, 0045 CIN (both applications) */

/* The wallet's command groups (dispatch table in wallet.c). */
int purse_balance(struct se_cmd *c);
int purse_credit(struct se_cmd *c);
int purse_debit(struct se_cmd *c);
int ticket_store(struct se_cmd *c);
int ticket_list(struct se_cmd *c);
int ticket_check(struct se_cmd *c);
int ticket_consume(struct se_cmd *c);
int ticket_delete(struct se_cmd *c);
int pauth_set(struct se_cmd *c);
int pauth_prove(struct se_cmd *c);
int flag_set(struct se_cmd *c);
int flag_read(struct se_cmd *c);
int flag_consume(struct se_cmd *c);
int relay_control(struct se_cmd *c);
int relay_envelope(struct se_cmd *c);
int lock_lock(struct se_cmd *c);
int lock_unlock(struct se_cmd *c);
int lock_disable(struct se_cmd *c);

/* Relay state at a power event / expiry. */
void relay_drop(struct se *se);

#endif
