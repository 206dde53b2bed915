/* svc_rekey.c - re-keying an se personalised before a rotation, inside the operation that
 * found it: INITIALIZE UPDATE for the current se-server KVN answered 6A88, so a channel of
 * its own opens on the ISD (PUT KEY is an ISD command) with the KVN the se names
 * (P1 00, the sam resolves the keys), reads the key information under the R-MAC, has the
 * sam replace the se-reader set and then the se-server set with their current versions
 * (PUT KEY, checked by the sam), and starts the operation's channel again.
 * What stays true: one re-key per operation (a second 6A88 is the se's refusal); no key
 * passes through here (the sam returns the command wrapped, and only a verdict); the
 * operation's command in v->cmd waits untouched. */
#include <string.h>

#include "err.h"
#include "svc_int.h"
#include "tlv.h"

/* The GlobalPlatform issuer security domain, whose channel takes PUT KEY. */
static const uint8_t svc_isd_aid[8] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
static const uint8_t svc_get_key_info[5] = { 0x80, 0xCA, 0x00, 0xE0, 0x00 };

#define RK_FAM_SE_SERVER 1u     /* sam families (sam.h): the se's two key sets */
#define RK_FAM_SE_READER 2u
#define RK_KVN_SERVER 0x10u     /* their KVN ranges: 0xR1..0xRF */
#define RK_KVN_READER 0x20u

static void rk_fail(struct svc *v, const struct svc_io *io, const char *why)
{
	v->rk_family = 0;
	svc_fail(v, io, why);
}

void svc_rekey_start(struct svc *v, const struct svc_io *io)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_RK_OPEN, .serial = v->serial,
				  .data = svc_isd_aid, .n = sizeof(svc_isd_aid) };

	svc_close_handle(v, io); /* the session for the current KVN */
	v->rekeyed = 1;
	v->rk_family = 0;
	v->rk_server = v->rk_reader = v->rk_new_server = v->rk_new_reader = 0;
	svc_tell_kind(v, io, SVC_T_REKEY_START);
	if (svc_sam_call(v, io, &rq) != 0) {
		rk_fail(v, io, "rekey sam");
		return;
	}
	v->state = SV_RK_OPEN;
}

/* SELECT ISD and INITIALIZE UPDATE (P1 00) go together: one phone round trip. */
void svc_rk_on_open(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	uint8_t sel[6 + sizeof(svc_isd_aid)] = { 0x00, 0xA4, 0x04, 0x00, sizeof(svc_isd_aid) };

	if (v->state != SV_RK_OPEN)
		return;
	if (r->err != 0) {
		rk_fail(v, io, "rekey open");
		return;
	}
	v->handle = r->handle;
	v->has_handle = 1;
	memcpy(sel + 5, svc_isd_aid, sizeof(svc_isd_aid));
	if (svc_send_apdu(v, io, sel, sizeof(sel)) != 0 ||
	    svc_send_apdu(v, io, r->apdu, r->apdu_n) != 0) {
		rk_fail(v, io, "send");
		return;
	}
	v->state = SV_RK_SELECT;
}

void svc_rk_on_step1(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (v->state != SV_RK_STEP1)
		return;
	if (r->err != 0 || r->ea == NULL || r->wrapped == NULL) {
		rk_fail(v, io, "rekey initialize update");
		return;
	}
	if (svc_send_apdu(v, io, r->ea, r->ea_n) != 0 ||
	    svc_send_apdu(v, io, r->wrapped, r->wrapped_n) != 0) {
		rk_fail(v, io, "send");
		return;
	}
	v->state = SV_RK_EA;
}

void svc_rk_on_step2(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (r->err != 0 && v->state >= SV_RK_OPEN)
		rk_fail(v, io, "rekey external authenticate");
}

/* The sam's PUT KEY for family's set kvn (se-server: 0, the session's own). */
static void rk_put(struct svc *v, const struct svc_io *io, uint8_t family, uint8_t kvn)
{
	struct svc_sam_req rq = { .kind = SVC_SAM_PUT_KEY, .handle = v->handle, .family = family,
				  .kvn = kvn };

	v->rk_family = family;
	if (svc_sam_call(v, io, &rq) != 0) {
		rk_fail(v, io, "rekey sam");
		return;
	}
	v->state = SV_RK_PUT;
}

/* Both sets are current: the operation's channel starts again, for the current KVN. */
static void rk_done(struct svc *v, const struct svc_io *io)
{
	svc_close_handle(v, io);
	v->rk_family = 0;
	svc_tell_kind(v, io, SVC_T_REKEYED);
	svc_channel_start(v, io);
}

/* The se's key information (E0 { C0 04 id kvn 88 len } ...): its se-server and se-reader
 * KVNs. An se holds one set of each; 0 when none. */
static int rk_key_info(struct svc *v, const uint8_t *p, size_t n)
{
	struct rd r = rd_init(p, n), in;
	struct tlv t;

	if (tlv_enter(&r, TLV_BER, 0xE0, &in) != 0 || rd_end(&r) != 0)
		return TB_E_INVAL;
	while (rd_left(&in) > 0) {
		uint8_t kvn;

		if (tlv_expect(&in, TLV_BER, 0xC0, &t) != 0 || t.val.n != 4)
			return TB_E_INVAL;
		kvn = t.val.p[1];
		if (kvn > RK_KVN_SERVER && kvn <= RK_KVN_SERVER + 0x0F)
			v->rk_server = kvn;
		else if (kvn > RK_KVN_READER && kvn <= RK_KVN_READER + 0x0F)
			v->rk_reader = kvn;
	}
	return v->rk_server != 0 ? 0 : TB_E_INVAL;
}

/* GET DATA's answer (the key information), or a PUT KEY's verdict from the sam. */
void svc_rk_on_unwrap(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (v->state != SV_RK_UNWRAP)
		return;
	if (r->err != 0) {
		rk_fail(v, io, r->err == TB_E_SAM_KCV ? "rekey key check" : "rekey unwrap");
		return;
	}
	if (r->sw != 0x9000) {
		v->rk_family = 0;
		svc_refused(v, io, r->sw);
		return;
	}
	if (!r->authenticated) {
		rk_fail(v, io, "rekey unwrap");
		return;
	}
	if (v->rk_family == 0) {
		if (rk_key_info(v, r->data, r->n) != 0) {
			rk_fail(v, io, "rekey key information");
			return;
		}
		/* The reader set first: after its own set is replaced, the session may
		 * replace no more sets (the se checks the session's set is still there). */
		if (v->rk_reader != 0)
			rk_put(v, io, RK_FAM_SE_READER, v->rk_reader);
		else
			rk_put(v, io, RK_FAM_SE_SERVER, 0);
		return;
	}
	if (v->rk_family == RK_FAM_SE_READER) {
		rk_put(v, io, RK_FAM_SE_SERVER, 0);
		return;
	}
	rk_done(v, io);
}

/* new-kvn(1) || the wrapped PUT KEY; TB_E_SAM_CURRENT: that set needs nothing. */
void svc_rk_on_put_key(struct svc *v, const struct svc_io *io, const struct svc_sam_reply *r)
{
	if (v->state != SV_RK_PUT)
		return;
	if (r->err == TB_E_SAM_CURRENT) {
		if (v->rk_family == RK_FAM_SE_READER)
			rk_put(v, io, RK_FAM_SE_SERVER, 0);
		else
			rk_done(v, io);
		return;
	}
	if (r->err != 0 || r->data == NULL || r->n < 2) {
		rk_fail(v, io, "rekey put key");
		return;
	}
	if (v->rk_family == RK_FAM_SE_READER)
		v->rk_new_reader = r->data[0];
	else
		v->rk_new_server = r->data[0];
	if (svc_send_apdu(v, io, r->data + 1, r->n - 1) != 0) {
		rk_fail(v, io, "send");
		return;
	}
	v->state = SV_RK_NEXT;
}

void svc_rekey_resp(struct svc *v, const struct svc_io *io, const uint8_t *resp, size_t n,
		    uint16_t sw)
{
	struct svc_sam_req rq = { .handle = v->handle, .data = resp, .n = n };
	uint8_t next;

	switch (v->state) {
	case SV_RK_SELECT:
	case SV_RK_IU:
		if (sw != 0x9000) {
			svc_refused(v, io, sw);
			return;
		}
		if (v->state == SV_RK_SELECT) {
			v->state = SV_RK_IU;
			return;
		}
		rq.kind = SVC_SAM_RK_STEP1;
		rq.cmd = svc_get_key_info;
		rq.cmd_n = sizeof(svc_get_key_info);
		next = SV_RK_STEP1;
		break;
	case SV_RK_EA:
		rq.kind = SVC_SAM_RK_STEP2;
		next = SV_RK_INFO;
		break;
	case SV_RK_INFO:
	case SV_RK_NEXT:
		rq.kind = SVC_SAM_RK_UNWRAP;
		next = SV_RK_UNWRAP;
		break;
	default:
		svc_tell_kind(v, io, SVC_T_RESP_UNEXPECTED);
		return;
	}
	v->state = next;
	if (svc_sam_call(v, io, &rq) != 0)
		rk_fail(v, io, "sam");
}
