/* srv_svc_int.h - internal to src/io/srv_svc*.c (the API is srv_svc_io.h): the state kept
 * beside each engine, and the calls the adapter's parts share: srv_svc_io.c (the engine's io,
 * group commit), srv_svc_text.c (the texts), srv_svc_vault.c (the vault's db work),
 * srv_svc_relay.c (the relay). */
#ifndef TB_IO_SRV_SVC_INT_H
#define TB_IO_SRV_SVC_INT_H

#include <stddef.h>
#include <stdint.h>

#include "io/srv_net.h"
#include "io/srv_svc_io.h"
#include "server/ledger.h"
#include "server/svc.h"

/* One phone session's service state: the engine's (server/svc.h) and what the adapter
 * keeps beside it. Freed when the engine says nothing refers to it any more (sam request,
 * queued db work), or at exit. */
struct srv_svc {
	struct svc core;
	struct srv_svc_host *h;
	struct srv_ref ref;
	struct srv_svc *next_job;
	struct srv_svc *next_rjob;
	struct srv_svc *all_prev, *all_next; /* every one not freed yet (freed at exit) */
	int job_rc;
	struct ledger_reply job_out;
};

/* srv_svc_io.c: the monotonic clock (microseconds); the adapter state of v; v's live
 * session, or NULL once it has ended. */
int64_t svc_now_us(void);
struct srv_svc *svc_of(const struct svc *v);
struct srv_session *svc_sess(const struct svc *v);

/* srv_svc_text.c: the struct svc_io call that tells the phone an outcome (a NOTICE, or an
 * ERROR that ends the session) and logs it; nothing once v's session has ended. */
void svc_io_tell(struct svc *v, const struct svc_tell *t);

/* srv_svc_relay.c: the relay's calls of struct svc_io (RELAY_DOWN, STAGE, the reader
 * check, a relay job queued for the batch). */
int svc_io_relay_down(struct svc *v, uint32_t relay, const uint8_t *answer, size_t n);
int svc_io_stage(struct svc *v, const uint8_t *apdu, size_t n);
int svc_io_reader_ok(struct svc *v, uint32_t reader);
void svc_io_rjob(struct svc *v);
/* A booked reader record as the phone shows it (into text, cap bytes), and its log line. */
void svc_relayed_text(const struct svc *v, struct srv_session *s, const struct svc_rl_rec *x,
		      char *text, size_t cap);
/* A relayed REQUEST's records in the batch, and the reader's deny list: 0, or a db failure
 * that spoils the batch. */
int svc_relay_book(struct srv_svc_host *d, struct svc *v, int64_t now);

/* srv_svc_vault.c: the vault's calls of struct svc_io (a personal-auth key still due; a
 * sealed blob read), and the db work of v->phase inside its own request of the batch. */
int svc_io_pauth_need(struct svc *v);
int svc_io_blob(struct svc *v, const uint8_t serial[SVC_SERIAL_LEN], uint32_t slot,
		uint8_t *buf, size_t cap, size_t *n);
int svc_phase_job(struct srv_svc_host *d, struct svc *v, int64_t now);

#endif
