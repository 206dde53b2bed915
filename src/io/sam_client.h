/* sam_client.h - clients of the sam (docs/sam.md): request encoders and reply decoders,
 * an asynchronous pipelined client on libevent for the server, and a small blocking
 * client for `tapbridge admin` and tests. Both say HELLO when they connect.
 *
 * A "body" is a request or reply payload after its 4-byte request id: the clients add
 * and check the ids. Replies come in request order; an ERROR reply is passed up as its
 * negative TB_E_* code. Decoders point into the body they were given (no copies).
 *
 * Threading: the async client's calls and callbacks on the event_base's thread. */
#ifndef TB_IO_SAM_CLIENT_H
#define TB_IO_SAM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/bytes.h"
#include "sam/sam.h"

struct event_base;

/* What HELLO told the client. */
struct sam_hello {
	uint8_t version;
	uint8_t caps;                 /* SAM_CAP_* */
	uint32_t sessions;            /* session table size */
	uint8_t sign_version;
	uint8_t pub[SAM_PUB_LEN];     /* the current flag-signing public key */
};

/* ---------------------------------------------------- request bodies --- */
/* Each writes one request body through w: 0, TB_E_NOSPACE, TB_E_INVAL (a length over
 * its limit); w is untouched on error. */

int sam_enc_scp_open(struct wr *w, uint8_t role, uint8_t kvn, const uint8_t serial[SAM_SERIAL_LEN],
		     uint8_t level, uint8_t challenge_len, const uint8_t *aid, size_t aid_len);
/* SCP_OPEN with the host challenge given by the caller (aid: as for sam_enc_scp_open, the
 * one the card's pseudo-random challenge is checked against): the server draws
 * it itself to pre-stage it at a phone before it knows the reader. */
int sam_enc_scp_open_given(struct wr *w, uint8_t role, uint8_t kvn,
			   const uint8_t serial[SAM_SERIAL_LEN], uint8_t level,
			   const uint8_t *challenge, size_t challenge_len, const uint8_t *aid,
			   size_t aid_len);
/* resp: the card's answer to the last handshake command; cmd (optional): a first plain
 * command to wrap right after EXTERNAL AUTHENTICATE. */
int sam_enc_scp_step(struct wr *w, uint32_t handle, const uint8_t *resp, size_t rn,
		     const uint8_t *cmd, size_t cn);
/* SCP_WRAP (a plain command), SCP_UNWRAP (a protected response), SCP_CLOSE (n = 0). */
int sam_enc_scp_handle(struct wr *w, uint32_t handle, const uint8_t *apdu, size_t n);
/* SCP_PUT_KEY: replace the device's set kvn of family (SE_SERVER: 0 = the session's own)
 * with the family's current version; the reply is new-kvn(1) || the wrapped PUT KEY. */
int sam_enc_scp_put_key(struct wr *w, uint32_t handle, uint8_t family, uint8_t kvn);
int sam_enc_sign(struct wr *w, uint8_t domain, const uint8_t *msg, size_t n);
/* SEAL_BLOB (data = plaintext) and OPEN_BLOB (data = sealed blob). */
int sam_enc_blob(struct wr *w, const uint8_t *id, size_t idn, const uint8_t *data, size_t n);
int sam_enc_receipt(struct wr *w, uint8_t kvn, const uint8_t serial[SAM_SERIAL_LEN],
		    const uint8_t *mac, size_t macn, const uint8_t *body, size_t n);
int sam_enc_derive(struct wr *w, uint8_t role, uint8_t kvn, const uint8_t serial[SAM_SERIAL_LEN]);

/* ------------------------------------------------------ reply bodies --- */
/* Each: 0 or TB_E_SAM_PROTO (the body is not that reply). */

struct sam_open_reply {
	uint32_t handle;
	uint8_t kvn;
	const uint8_t *apdu;          /* INITIALIZE UPDATE, to send to the card */
	size_t n;
};
int sam_dec_scp_open(const uint8_t *b, size_t n, struct sam_open_reply *r);

struct sam_step_reply {
	uint8_t state;                /* enum sam_sess_state after the step */
	const uint8_t *ea;            /* EXTERNAL AUTHENTICATE, or NULL */
	size_t ea_n;
	const uint8_t *wrapped;       /* the first command, wrapped, or NULL */
	size_t wrapped_n;
};
int sam_dec_scp_step(const uint8_t *b, size_t n, struct sam_step_reply *r);

struct sam_unwrap_reply {
	uint16_t sw;
	int authenticated;            /* 1 only when an R-MAC verified: see scp03.h */
	const uint8_t *data;
	size_t n;
};
int sam_dec_scp_unwrap(const uint8_t *b, size_t n, struct sam_unwrap_reply *r);
int sam_dec_hello(const uint8_t *b, size_t n, struct sam_hello *h);

/* -------------------------------------------------- blocking client --- */

struct sam_sync {
	int fd;                       /* -1 when closed */
	uint32_t next_id;
	uint32_t limits[FRAME_TYPES]; /* replies */
	struct sam_hello hello;
};

/* Connects to the unix socket path and says HELLO. TB_E_IO (connect failed: errno),
 * or the sam's answer. On failure s needs no close (s->fd is -1). */
int sam_sync_connect(struct sam_sync *s, const char *path);

/* One request and its reply: the reply body (after the id) is copied to reply (cap
 * bytes; TB_E_NOSPACE when larger, the connection is then unusable), *rn its length.
 * Returns 0, the negative TB_E_* of an ERROR reply, TB_E_IO when the sam closed the
 * connection (it does so on a malformed or out-of-order request), TB_E_SAM_PROTO when
 * the reply is not the one expected. */
int sam_sync_call(struct sam_sync *s, uint8_t type, const uint8_t *body, size_t n,
		  uint8_t *reply, size_t cap, size_t *rn);

/* Closes. Accepts a closed struct. */
void sam_sync_close(struct sam_sync *s);

/* ----------------------------------------------------- async client --- */

struct sam_client;

/* A reply: err 0 and the body (n bytes, borrowed until the return), or err < 0 (an
 * ERROR reply's code, or TB_E_IO when the connection ended first) with body NULL. */
typedef void (*sam_reply_fn)(void *arg, int err, const uint8_t *body, size_t n);

/* Connects to path and says HELLO (blocking, once), then runs on base. At most
 * max_inflight requests wait for replies at a time (1..1<<20). TB_E_IO, TB_E_NOMEM,
 * TB_E_INVAL, or the sam's answer to HELLO. */
int sam_client_new(struct event_base *base, const char *path, uint32_t max_inflight,
		   struct sam_client **out);

const struct sam_hello *sam_client_hello(const struct sam_client *c);

/* Queues one request; cb runs once with its reply, from the loop. TB_E_NOSPACE when
 * max_inflight requests wait, TB_E_IO once the connection ended, TB_E_INVAL (body
 * longer than SAM_REQ_MAX - 4). */
int sam_client_call(struct sam_client *c, uint8_t type, const uint8_t *body, size_t n,
		    sam_reply_fn cb, void *arg);

size_t sam_client_inflight(const struct sam_client *c);

/* Called once when the connection ends (after the pending callbacks got TB_E_IO). */
void sam_client_on_close(struct sam_client *c, void (*fn)(void *arg, int err), void *arg);

/* Closes without calling any callback. Accepts NULL. Not from inside a callback of c. */
void sam_client_free(struct sam_client *c);

#endif
