/* srv_svc_io.h - the adapter that runs the per-phone service engine (server/svc.h) on the
 * server's libevent loop: SE_APDU and NOTICE/ERROR through srv_net, sam requests through
 * sam_client, db work grouped into one batch (one commit) per loop turn, whose replies go
 * only after that commit. */
#ifndef TB_IO_SRV_SVC_IO_H
#define TB_IO_SRV_SVC_IO_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <event2/util.h>

#include "server/proto.h"
#include "server/svc.h"

struct srv;
struct srv_session;
struct db;
struct sam_client;
struct event;
struct srv_svc;     /* one phone session's services */
struct svc_call;    /* a sam request waiting for its reply */

/* What the sessions share. The caller sets srv, db, sam (NULL: no services from the phone),
 * log (NULL: quiet) and flush: an event of its loop, at the lowest priority, that runs
 * srv_svc_flush_cb(.., host). The rest belongs to this module; the figures may be read. */
struct srv_svc_host {
	struct srv *srv;
	struct db *db;
	struct sam_client *sam;
	FILE *log;
	struct event *flush;
	struct srv_svc *jobs, **jobs_tail;
	struct srv_svc *rjobs, **rjobs_tail;   /* relayed reader records */
	size_t njobs;
	struct srv_svc *all;       /* every session state not freed yet */
	struct svc_call *calls;    /* sam calls waiting for their reply */
	uint64_t batches, batched, batch_max, commit_fail; /* group-commit figures */
};

/* Empty host (every field zero, no jobs). */
void srv_svc_host_init(struct srv_svc_host *h);
/* The group commit: every db work item queued since the last run in one batch, then the
 * engine hears each outcome (arg: the host). */
void srv_svc_flush_cb(evutil_socket_t fd, short what, void *arg);
/* Frees every sam call and session state left; after sam_client_free(), at exit. */
void srv_svc_host_release(struct srv_svc_host *h);

/* The services of the session s of the se serial; NULL: no memory. Owned by the host;
 * freed once srv_svc_leave() was called and nothing refers to it any more. */
struct srv_svc *srv_svc_open(struct srv_svc_host *h, struct srv_session *s,
			     const uint8_t serial[PROTO_SERIAL_LEN]);
/* The phone's SELECT (o NULL: no such service). */
void srv_svc_select(struct srv_svc *x, const struct svc_offer *o);
/* SELECT with its op byte (enum svc_select_op). */
void srv_svc_select_op(struct srv_svc *x, const struct svc_offer *o, uint8_t op);
/* The portal's pending lock (1) or unlock (0), applied through the channel now. */
void srv_svc_lock(struct srv_svc *x, int lock);
/* A host challenge staged at the phone (after MENU). */
void srv_svc_stage(struct srv_svc *x);
/* The phone's RELAY_UP. */
void srv_svc_relay_up(struct srv_svc *x, const struct proto_relay_up *r);
/* The phone's SE_RESP. */
void srv_svc_se_resp(struct srv_svc *x, const struct proto_apdu *a);
/* The phone's session ended. x may be freed at once. */
void srv_svc_leave(struct srv_svc *x);

#endif
