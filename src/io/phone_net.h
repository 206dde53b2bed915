/* phone_net.h - the phone's adapter: one libevent loop carrying the phone core
 * (phone/phone.h) between the se's IC_I/F link (a unix socket the se listens on, frames
 * of docs/protocol.md "IC_I/F link") and the server (TCP, TLS 1.3 with a pinned
 * certificate fingerprint, the phone session frames of server/proto.h).
 *
 * Both links are read whenever the loop runs, so the server's frames are handled while
 * a command waits for the se and the se's events while it waits for the server. Screen
 * lines of the core go to `out`, each prefixed "phone: ", flushed at once.
 *
 * Threading: one thread; no call from inside another. */
#ifndef TB_IO_PHONE_NET_H
#define TB_IO_PHONE_NET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "io/tls.h"
#include "phone/phone.h"

struct phone_net;

#define PHONE_NET_CONNECT_MS 10000u /* TCP connect, TLS handshake, HELLO -> MENU */

struct phone_net_config {
	const char *server;              /* "HOST:PORT" (IPv4, name or [IPv6]) */
	uint8_t pin[TLS_FPR_LEN];        /* SHA-256 of the server's certificate */
	const char *link;                /* the se's IC_I/F unix socket */
	struct ph_config ph;             /* trace, relay wait, until-notice (borrowed) */
	FILE *out;                       /* screen lines */
};

/* Connects the se link, then the server (TLS with the pin), and runs until the session
 * is ready for commands (the se gave its serial, HELLO went out, MENU came), within
 * PHONE_NET_CONNECT_MS. On failure the reason is on `out` as an "error: ..." line and
 * *out_net is NULL: TB_E_INVAL (an address), TB_E_IO (a connection or the session
 * failed), TB_E_CRYPTO (TLS: wrong pin or no TLS 1.3), TB_E_NOMEM. */
int phone_net_open(const struct phone_net_config *cfg, struct phone_net **out_net);

/* Runs one command to its end, pumping both links meanwhile: 0 when it succeeded,
 * TB_E_IO when it failed (its "error: ..." line is out). */
int phone_net_run(struct phone_net *n, const struct ph_cmd *c);

/* Pumps both links until fd is readable (interactive input): 0, or TB_E_IO when the
 * se link and the server session are both gone. */
int phone_net_wait_fd(struct phone_net *n, int fd);

/* Relays whose RELAY_UP got a RELAY_DOWN (network round trips spent on relays). */
uint64_t phone_net_relay_rtts(const struct phone_net *n);

/* Says BYE when the session is still up (waits up to 2 s for the server's), closes
 * everything. Accepts NULL. */
void phone_net_free(struct phone_net *n);

#endif
