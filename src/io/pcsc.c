/* pcsc.c - the reader's PC/SC adapter over libpcsclite (pcsc.h). What stays true: at
 * most one card handle is open; every SCard call's failure becomes TB_E_IO, so
 * DWORD / SCARD_* never leave this file. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <winscard.h>

#include "lib/err.h"
#include "pcsc.h"

#define PCSC_NAME_MAX 256u

struct pcsc {
	SCARDCONTEXT ctx;
	SCARDHANDLE card;
	int connected;
	int fixed;                   /* a name was given */
	char name[PCSC_NAME_MAX];
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int pcsc_open(const char *name, struct pcsc **out)
{
	struct pcsc *p;

	if (out == NULL || (name != NULL && strlen(name) >= PCSC_NAME_MAX))
		return TB_E_INVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return TB_E_NOMEM;
	if (SCardEstablishContext(SCARD_SCOPE_SYSTEM, NULL, NULL, &p->ctx) != SCARD_S_SUCCESS) {
		free(p);
		return TB_E_IO;
	}
	if (name != NULL) {
		strcpy(p->name, name);
		p->fixed = 1;
	}
	*out = p;
	return 0;
}

/* The first reader pcscd lists, when no name was given. */
static int pick_reader(struct pcsc *p)
{
	char buf[4096];
	DWORD n = sizeof(buf);

	if (p->fixed)
		return 0;
	if (SCardListReaders(p->ctx, NULL, buf, &n) != SCARD_S_SUCCESS || n < 2 || buf[0] == '\0')
		return TB_E_IO;
	if (strlen(buf) >= PCSC_NAME_MAX)
		return TB_E_IO;
	strcpy(p->name, buf);
	return 0;
}

static int try_connect(struct pcsc *p)
{
	DWORD proto = 0;

	if (SCardConnect(p->ctx, p->name, SCARD_SHARE_SHARED, SCARD_PROTOCOL_T1, &p->card,
			 &proto) != SCARD_S_SUCCESS)
		return TB_E_IO;
	p->connected = 1;
	return 0;
}

int pcsc_wait_card(struct pcsc *p, int timeout_ms)
{
	SCARD_READERSTATE rs;
	long long end = now_ms() + timeout_ms;

	if (p == NULL || p->connected)
		return TB_E_INVAL;
	memset(&rs, 0, sizeof(rs));
	rs.dwCurrentState = SCARD_STATE_UNAWARE;
	for (;;) {
		long long left = end - now_ms();
		LONG rv;

		if (left <= 0)
			return TB_E_RDR_CARD;
		if (pick_reader(p) != 0) {
			struct timespec ts = { 0, 100 * 1000000L }; /* no reader yet: ask again */

			nanosleep(&ts, NULL);
			continue;
		}
		rs.szReader = p->name;
		rv = SCardGetStatusChange(p->ctx, (DWORD)(left > 500 ? 500 : left), &rs, 1);
		if (rv == SCARD_S_SUCCESS && (rs.dwEventState & SCARD_STATE_PRESENT) &&
		    !(rs.dwEventState & SCARD_STATE_MUTE) && try_connect(p) == 0)
			return 0;
		if (rv == SCARD_S_SUCCESS)
			rs.dwCurrentState = rs.dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
		else if (rv != SCARD_E_TIMEOUT) {
			struct timespec ts = { 0, 50 * 1000000L };

			rs.dwCurrentState = SCARD_STATE_UNAWARE;
			nanosleep(&ts, NULL);
		}
	}
}

int pcsc_xmit(struct pcsc *p, const uint8_t *cmd, size_t n, uint8_t *resp, size_t cap,
	      size_t *resp_n)
{
	DWORD rlen = (DWORD)cap;

	if (p == NULL || !p->connected || resp_n == NULL)
		return TB_E_INVAL;
	if (SCardTransmit(p->card, SCARD_PCI_T1, cmd, (DWORD)n, NULL, resp, &rlen) !=
	    SCARD_S_SUCCESS)
		return TB_E_IO;
	*resp_n = rlen;
	return 0;
}

int pcsc_release(struct pcsc *p, int timeout_ms)
{
	SCARD_READERSTATE rs;
	long long end = now_ms() + timeout_ms;

	if (p == NULL)
		return TB_E_INVAL;
	if (p->connected)
		SCardDisconnect(p->card, SCARD_RESET_CARD);
	p->connected = 0;
	memset(&rs, 0, sizeof(rs));
	rs.szReader = p->name;
	rs.dwCurrentState = SCARD_STATE_UNAWARE;
	for (;;) {
		long long left = end - now_ms();
		LONG rv;

		if (left <= 0)
			return TB_E_RDR_CARD;
		rv = SCardGetStatusChange(p->ctx, (DWORD)(left > 500 ? 500 : left), &rs, 1);
		if (rv == SCARD_S_SUCCESS && (rs.dwEventState & SCARD_STATE_EMPTY))
			return 0;
		if (rv == SCARD_S_SUCCESS)
			rs.dwCurrentState = rs.dwEventState & ~(DWORD)SCARD_STATE_CHANGED;
		else if (rv != SCARD_E_TIMEOUT)
			return TB_E_IO;
	}
}

const char *pcsc_reader_name(const struct pcsc *p)
{
	return p->name;
}

void pcsc_free(struct pcsc *p)
{
	if (p == NULL)
		return;
	if (p->connected)
		SCardDisconnect(p->card, SCARD_RESET_CARD);
	SCardReleaseContext(p->ctx);
	free(p);
}
