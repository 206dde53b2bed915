/* rdr_line.c - display lines without stdio, and the two ways the reader talks to the
 * se: plain, and through its level-33 channel. What stays true: a line is always
 * NUL-terminated and cut, never overrun; a 9000 from the channel counts only when its
 * R-MAC verified, so no money or ticket decision rests on a relayed, forgeable SW. */
#include <string.h>

#include "err.h"
#include "rdr_int.h"

void line_start(struct rdr_line *l, const char *text)
{
	l->n = 0;
	l->s[0] = '\0';
	line_str(l, text);
}

static void line_ch(struct rdr_line *l, char c)
{
	if (l->n + 1 < RDR_LINE_MAX) {
		l->s[l->n++] = c;
		l->s[l->n] = '\0';
	}
}

void line_str(struct rdr_line *l, const char *text)
{
	while (*text != '\0')
		line_ch(l, *text++);
}

void line_text(struct rdr_line *l, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		line_ch(l, (p[i] >= 0x20 && p[i] <= 0x7E) ? p[i] : '?');
}

void line_u32(struct rdr_line *l, uint32_t v)
{
	char d[10];
	size_t k = 0;

	do {
		d[k++] = (char)('0' + v % 10u);
		v /= 10u;
	} while (v != 0);
	while (k > 0)
		line_ch(l, d[--k]);
}

void line_hex(struct rdr_line *l, const uint8_t *p, size_t n)
{
	static const char hx[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++) {
		line_ch(l, hx[p[i] >> 4]);
		line_ch(l, hx[p[i] & 15u]);
	}
}

void line_sw(struct rdr_line *l, uint16_t sw)
{
	uint8_t b[2] = { (uint8_t)(sw >> 8), (uint8_t)sw };

	line_hex(l, b, 2);
}

void rdr_say(struct rdr *r, const char *text)
{
	r->io->say(r->io->ctx, text);
}

void rdr_say_line(struct rdr *r, struct rdr_line *l)
{
	r->io->say(r->io->ctx, l->s);
}

static int xmit(struct rdr *r, const uint8_t *cmd, size_t n, size_t *got)
{
	int rc = r->io->xmit(r->io->ctx, cmd, n, r->resp, sizeof(r->resp), got);

	if (rc != 0 || *got < 2 || *got > sizeof(r->resp)) {
		rdr_say(r, "reader: card lost");
		return TB_E_RDR_CARD;
	}
	return 0;
}

int rdr_raw(struct rdr *r, const uint8_t *cmd, size_t n)
{
	size_t got = 0;
	int rc;

	if ((rc = xmit(r, cmd, n, &got)))
		return rc;
	r->plain_n = got - 2;
	memcpy(r->plain, r->resp, r->plain_n);
	r->sw = (uint16_t)(r->resp[got - 2] << 8 | r->resp[got - 1]);
	return 0;
}

int rdr_cmd(struct rdr *r, const uint8_t *cmd, size_t n)
{
	struct wr w = wr_init(r->wire, sizeof(r->wire));
	struct wr pw = wr_init(r->plain, sizeof(r->plain));
	struct scp_resp info;
	size_t got = 0;
	int rc;

	if ((rc = scp_host_wrap(&r->se, cmd, n, &w)))
		return rc;
	if ((rc = xmit(r, r->wire, w.len, &got)))
		return rc;
	rc = scp_host_unwrap(&r->se, r->resp, got, &info, &pw);
	if (rc == 0 && info.sw == 0x9000u && !info.authenticated)
		rc = TB_E_SCP_RMAC;
	if (rc != 0) {
		rdr_say(r, "reader: se not authenticated (response MAC)");
		return rc;
	}
	r->plain_n = info.n;
	r->sw = info.sw;
	return 0;
}
