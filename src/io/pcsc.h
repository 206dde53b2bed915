/* pcsc.h - a PC/SC reader for the reader party: one context, one reader (named, or the
 * first one pcscd lists), wait for a card, connect T=1, transmit, wait for removal.
 * Blocking calls; PC/SC types stay inside pcsc.c. */
#ifndef TB_IO_PCSC_H
#define TB_IO_PCSC_H

#include <stddef.h>
#include <stdint.h>

struct pcsc;

/* Establishes the context. name: a reader name, or NULL for the first reader present
 * when a card is waited for. TB_E_IO (pcscd not running), TB_E_NOMEM. */
int pcsc_open(const char *name, struct pcsc **out);

/* Waits up to timeout_ms for a card and connects to it (shared, T=1). 0, or
 * TB_E_RDR_CARD on timeout, TB_E_IO on a PC/SC failure. */
int pcsc_wait_card(struct pcsc *p, int timeout_ms);

/* One APDU; the response (data || SW) into resp (cap bytes), length in *n.
 * TB_E_IO (card gone, PC/SC failure), TB_E_INVAL (no card connected). */
int pcsc_xmit(struct pcsc *p, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap,
	      size_t *resp_n);

/* Disconnects (resetting the card: its session ends) and waits up to timeout_ms for
 * the card to leave the field. 0 when it left, TB_E_RDR_CARD when it is still there. */
int pcsc_release(struct pcsc *p, int timeout_ms);

/* The reader in use ("" before the first card). */
const char *pcsc_reader_name(const struct pcsc *p);

/* Disconnects and releases the context. Accepts NULL. */
void pcsc_free(struct pcsc *p);

#endif
