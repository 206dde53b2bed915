/* rdr_relay.c - the reader's end of the relay: ENVELOPEs through its se channel carry
 * HELLO / AUTH / DATA; the answers drive the reader's SCP03 CARD role with the server
 * as host (docs/reader.md). What stays true: the card-role counter is saved before the
 * INITIALIZE UPDATE response leaves; nothing the server says counts unless it came as
 * a command whose C-MAC verified at level 33; only such a RESULT removes records. */
#include <string.h>

#include "apdu.h"
#include "ct.h"
#include "err.h"
#include "rdr_int.h"

#define ENV_HDR 7u   /* 80 C2 00 00 00 Lc(2) in extended form */

static int server_unauth(struct rdr *r)
{
	rdr_say(r, "reader: server not authenticated");
	return TB_E_RDR_SERVER;
}

static int relay_failed(struct rdr *r, const char *why)
{
	struct rdr_line l;

	line_start(&l, "reader: relay failed: ");
	line_str(&l, why);
	rdr_say_line(r, &l);
	return TB_E_RDR_REFUSED;
}

/* Sends payload in an ENVELOPE through the se channel, decodes the answer (of type
 * want) into *m, borrowing r->plain. Extended length when the payload or a long answer
 * (the RESULT) needs it. */
static int envelope(struct rdr *r, const uint8_t *payload, size_t n, uint8_t want, struct rmsg *m)
{
	struct apdu a;
	struct wr w = wr_init(r->cmd, sizeof(r->cmd));
	struct rdr_line l;
	int rc;

	memset(&a, 0, sizeof(a));
	a.cla = 0x80;
	a.ins = 0xC2;
	a.data = payload;
	a.nc = n;
	a.ne = want == RMSG_ANS_DATA ? APDU_MAX_NE_EXT : APDU_MAX_NE_SHORT;
	a.extended = want == RMSG_ANS_DATA || n > APDU_MAX_NC_SHORT;
	if ((rc = apdu_encode(&a, &w)))
		return rc;
	r->envelopes++;
	if ((rc = rdr_cmd(r, r->cmd, w.len)))
		return rc;
	if (r->sw == 0x6F00u)
		return relay_failed(r, "the phone did not answer");
	if (r->sw == 0x6985u)
		return relay_failed(r, "relay not armed any more");
	if (r->sw != 0x9000u) {
		line_start(&l, "the se answered ");
		line_sw(&l, r->sw);
		return relay_failed(r, l.s);
	}
	if ((rc = rmsg_down_dec(r->plain, r->plain_n, m)))
		return relay_failed(r, "malformed answer");
	if (m->type == RMSG_ANS_REFUSE) {
		line_start(&l, "reader: server refused: ");
		line_text(&l, (const char *)m->a, m->a_n);
		rdr_say_line(r, &l);
		return TB_E_RDR_REFUSED;
	}
	if (m->type != want)
		return relay_failed(r, "unexpected answer");
	return 0;
}

/* The INITIALIZE UPDATE from the server: our response, counter saved first. */
static int card_iu(struct rdr *r, const uint8_t *iu, size_t n, struct wr *out)
{
	struct scp_card_config cc;
	struct scp_card_result res;
	uint8_t kvn;
	int rc;

	memset(&cc, 0, sizeof(cc));
	cc.i = RMSG_READER_I;
	rmsg_reader_kdd(r->keys->id, cc.kdd);
	cc.aid = rmsg_reader_aid;
	cc.aid_len = RMSG_READER_AID_LEN;
	if ((rc = scp_card_init(&r->card, &cc)) || (rc = scp_card_command(&r->card, iu, n, &res, out)))
		return rc;
	if (res.action != SCP_CARD_NEED_KEYS)
		return relay_failed(r, "the server's INITIALIZE UPDATE is malformed");
	kvn = res.kvn;
	if (kvn != 0 && kvn != r->keys->kvn)
		return relay_failed(r, "the server asks for a key set this reader does not have");
	out->len = 0;
	rc = scp_card_supply_keys(&r->card, r->keys->kvn, &r->keys->rs, r->st->card_counter, NULL, 0,
				  &res, out);
	if (rc != 0)
		return rc;
	if (res.action != SCP_CARD_PERSIST)
		return relay_failed(r, "the reader's channel counter is exhausted");
	r->scratch = *r->st;
	r->scratch.card_counter = res.counter;
	if ((rc = rdr_commit(r)))
		return rc;
	out->len = 0;
	return scp_card_counter_saved(&r->card, &res, out);
}

int rdr_relay_open(struct rdr *r)
{
	uint8_t msg[64], iu_resp[SCP_IU_RESP_MAX + 8];
	struct wr w = wr_init(msg, sizeof(msg));
	struct wr iw = wr_init(iu_resp, sizeof(iu_resp));
	struct scp_card_result res;
	struct rmsg m;
	uint8_t ea_out[RMSG_EA_MAX + 2];
	struct wr ew = wr_init(ea_out, sizeof(ea_out));
	uint8_t iu[RMSG_IU_CMD_MAX];
	size_t iu_n;
	int rc;

	if ((rc = rmsg_hello_enc(&w, r->keys->id)) ||
	    (rc = envelope(r, msg, w.len, RMSG_ANS_HELLO, &m)))
		return rc;
	iu_n = m.a_n;
	memcpy(iu, m.a, iu_n);
	if ((rc = card_iu(r, iu, iu_n, &iw)))
		return rc;
	w = wr_init(msg, sizeof(msg));
	if ((rc = rmsg_auth_enc(&w, r->keys->id, iu_resp, iw.len)))
		return relay_failed(r, "the reader's INITIALIZE UPDATE response is malformed");
	if ((rc = envelope(r, msg, w.len, RMSG_ANS_AUTH, &m)))
		return rc;
	if (m.b_n > sizeof(r->get_req))
		return relay_failed(r, "malformed answer");
	memcpy(r->get_req, m.b, m.b_n);
	r->get_req_n = m.b_n;
	if ((rc = scp_card_command(&r->card, m.a, m.a_n, &res, &ew)))
		return rc;
	if (res.auth != SCP_CARD_AUTH_OK || ew.len != 2)
		return server_unauth(r);
	r->ea_sw = (uint16_t)(ea_out[0] << 8 | ea_out[1]);
	r->relay_open = 1;
	return 0;
}

static int tap_rec(const struct rdr *r, uint32_t seq)
{
	for (size_t i = 0; i < r->tap_n; i++)
		if (r->tap_seq[i] == seq)
			return 1;
	return 0;
}

/* The REQUEST: this tap's records first, then the oldest others, while they fit. */
static int build_request(struct rdr *r, struct wr *w)
{
	struct rmsg_record v[RMSG_RECORDS_MAX];
	size_t n = 0, len = 1;

	r->sent_n = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < r->st->n && n < RMSG_RECORDS_MAX; i++) {
			const struct rdr_rec *s = &r->st->rec[i];
			size_t k = RMSG_RECORD_HDR + s->body_n;

			if (tap_rec(r, s->seq) != (pass == 0) || len + k > RMSG_REQUEST_MAX)
				continue;
			v[n].kind = s->kind;
			v[n].seq = s->seq;
			v[n].time = s->time;
			v[n].service = s->service;
			memcpy(v[n].serial, s->serial, RMSG_SERIAL_LEN);
			v[n].body = s->body;
			v[n].body_n = s->body_n;
			r->sent[n].seq = s->seq;
			r->sent[n].kind = s->kind;
			r->sent[n].amount = 0;
			if (s->kind == RMSG_K_PAY || s->kind == RMSG_K_ORDER)
				r->sent[n].amount = (uint32_t)s->body[13] << 24 | (uint32_t)s->body[14] << 16 |
						    (uint32_t)s->body[15] << 8 | s->body[16];
			len += k;
			n++;
		}
	}
	r->sent_n = n;
	return rmsg_request_enc(w, v, n);
}

/* The server's GET REQUEST (kept from AUTH): answered with the REQUEST, wrapped. */
static int answer_get_request(struct rdr *r, struct wr *out)
{
	struct scp_card_result res;
	struct wr pw = wr_init(r->plain, sizeof(r->plain));
	struct apdu a;
	int rc;

	if ((rc = scp_card_command(&r->card, r->get_req, r->get_req_n, &res, &pw)))
		return rc;
	if (res.action != SCP_CARD_DELIVER || !res.authenticated || res.level != RDR_SE_LEVEL)
		return server_unauth(r);
	if (apdu_parse(r->plain, pw.len, &a) != 0 || a.cla != RMSG_CLA ||
	    a.ins != RMSG_INS_GET_REQUEST || a.p1 != 0 || a.p2 != 0 || a.nc != 0)
		return relay_failed(r, "the server sent no GET REQUEST");
	pw = wr_init(r->plain, sizeof(r->plain));
	if ((rc = build_request(r, &pw)) || (rc = wr_u16be(&pw, 0x9000u)))
		return rc;
	return scp_card_respond(&r->card, r->plain, pw.len, out);
}

static const char *sent_kind(const struct rdr *r, uint32_t seq, uint8_t *kind, uint32_t *amount)
{
	for (size_t i = 0; i < r->sent_n; i++) {
		if (r->sent[i].seq == seq) {
			*kind = r->sent[i].kind;
			*amount = r->sent[i].amount;
			return "";
		}
	}
	return NULL;
}

static void show_item(struct rdr *r, const struct rmsg_result_item *it)
{
	struct rdr_line l;
	uint8_t kind = 0;
	uint32_t amount = 0;

	if (sent_kind(r, it->seq, &kind, &amount) == NULL)
		return;
	if (it->status == RMSG_ST_REFUSED) {
		line_start(&l, "reader: refused: ");
		line_text(&l, it->info, it->info_n);
		rdr_say_line(r, &l);
		return;
	}
	switch (kind) {
	case RMSG_K_PAY:
		line_start(&l, "reader: paid ");
		line_u32(&l, amount);
		break;
	case RMSG_K_ORDER:
		line_start(&l, "reader: order ");
		line_u32(&l, it->seq);
		line_str(&l, " paid ");
		line_u32(&l, amount);
		break;
	case RMSG_K_TICKET:
		line_start(&l, "reader: ticket ok");
		break;
	case RMSG_K_PAUTH:
		line_start(&l, "reader: identity confirmed: ");
		line_text(&l, it->info, it->info_n);
		break;
	case RMSG_K_REFUND: /* the server's "refund N, credit pending" */
		line_start(&l, "reader: ");
		line_text(&l, it->info, it->info_n);
		break;
	default:
		line_start(&l, "reader: offline record ");
		line_u32(&l, it->seq);
		line_str(&l, " reported");
	}
	if (it->status == RMSG_ST_REPLAY && kind != RMSG_K_PAUTH)
		line_str(&l, " (booked before)");
	rdr_say_line(r, &l);
}

/* Removes every named record, stores the deny list: one save. */
static int apply_result(struct rdr *r, const struct rmsg_result_item *it, size_t n,
			const uint8_t *deny, size_t deny_n)
{
	struct rdr_store *s = &r->scratch;
	size_t k = 0;
	int rc;

	*s = *r->st;
	for (size_t i = 0; i < s->n; i++) {
		int named = 0;

		for (size_t j = 0; j < n; j++)
			named |= it[j].seq == s->rec[i].seq;
		if (!named)
			s->rec[k++] = s->rec[i];
	}
	s->n = k;
	s->deny_n = deny_n;
	if (deny_n > 0)
		memcpy(s->deny, deny, deny_n * RMSG_SERIAL_LEN);
	if ((rc = rdr_commit(r)))
		return rc;
	for (size_t j = 0; j < n; j++)
		show_item(r, &it[j]);
	return 0;
}

int rdr_relay_finish(struct rdr *r)
{
	struct rmsg_result_item it[RMSG_RECORDS_MAX];
	struct scp_card_result res;
	uint8_t msg[RMSG_MAX];
	struct wr w = wr_init(msg, sizeof(msg));
	struct wr rw;
	const uint8_t *deny = NULL;
	size_t n = 0, deny_n = 0;
	struct apdu a;
	struct rmsg m;
	int rc;

	rw = wr_init(r->wire, sizeof(r->wire));
	if ((rc = answer_get_request(r, &rw)))
		return rc;
	if ((rc = rmsg_data_enc(&w, r->ea_sw, r->wire, rw.len)))
		return relay_failed(r, "the REQUEST does not fit an ENVELOPE");
	if ((rc = envelope(r, msg, w.len, RMSG_ANS_DATA, &m)))
		return rc;
	/* The RESULT command, unwrapped by the card role into r->wire. */
	rw = wr_init(r->wire, sizeof(r->wire));
	if ((rc = scp_card_command(&r->card, m.a, m.a_n, &res, &rw)))
		return rc;
	if (res.action != SCP_CARD_DELIVER || !res.authenticated || res.level != RDR_SE_LEVEL)
		return server_unauth(r);
	if (apdu_parse(r->wire, rw.len, &a) != 0 || a.cla != RMSG_CLA || a.ins != RMSG_INS_RESULT ||
	    a.p1 != 0 || a.p2 != 0 ||
	    rmsg_result_dec(a.data, a.nc, it, RMSG_RECORDS_MAX, &n, &deny, &deny_n) != 0)
		return relay_failed(r, "malformed RESULT");
	if ((rc = apply_result(r, it, n, deny, deny_n)))
		return rc;
	rw = wr_init(r->plain, sizeof(r->plain));
	(void)scp_card_respond(&r->card, (const uint8_t *)"\x90\x00", 2, &rw);
	rdr_say(r, "reader: done");
	return 0;
}
