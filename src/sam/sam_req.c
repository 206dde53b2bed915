/* sam_req.c - the sam's request table and dispatcher (the privilege-separation monitor):
 * per type a payload size range, the connection states that allow it, the capability it
 * needs and its handler; HELLO, STATUS and GET_PUBLIC_KEY live here too.
 * What stays true: a request outside its size range or state, or one its handler finds
 * malformed, leaves no reply and closes the connection with its sessions; a request that
 * fails after it was understood gets exactly one ERROR frame; every reply echoes the id. */
#include <string.h>

#include "ct.h"
#include "err.h"
#include "sam_int.h"

#define ID SAM_ID_LEN
#define APDU_REQ_MAX (ID + 4u + SAM_APDU_MAX)
#define STATUS_FAMILY_LEN (3u + SAM_VERSIONS)

typedef int (*sam_handler)(struct sam_call *k);

struct sam_req_def {
	uint8_t type;
	const char *name;
	uint32_t min, max;     /* payload bytes, id included */
	uint32_t reply_max;    /* reply payload bytes, id included */
	uint8_t states;        /* enum sam_conn_state bits */
	uint8_t cap;           /* SAM_CAP_* needed, 0 = none */
	sam_handler fn;
};

static int sam_h_hello(struct sam_call *k);
static int sam_h_status(struct sam_call *k);
static int sam_h_public_key(struct sam_call *k);

#define READY SAM_CS_READY
static const struct sam_req_def sam_reqs[] = {
	{ SAM_HELLO, "HELLO", ID + 1, ID + 1, ID + 7 + SAM_PUB_LEN, SAM_CS_NEW, 0, sam_h_hello },
	{ SAM_STATUS, "STATUS", ID, ID, ID + 9 + SAM_FAMILIES * STATUS_FAMILY_LEN, READY, 0,
	  sam_h_status },
	{ SAM_GET_PUBLIC_KEY, "GET_PUBLIC_KEY", ID + 1, ID + 1, ID + 1 + SAM_PUB_LEN, READY, 0,
	  sam_h_public_key },
	{ SAM_DERIVE_DEVICE_KEYS, "DERIVE_DEVICE_KEYS", ID + 10, ID + 10, ID + 3 + 3 * SCP_KEY_MAX,
	  READY, SAM_CAP_PERSO, sam_h_derive },
	{ SAM_TERMINAL_KEY, "TERMINAL_KEY", ID + 1, ID + 1, ID + 2 + SAM_KEY_LEN, READY,
	  SAM_CAP_PERSO, sam_h_terminal_key },
	{ SAM_SCP_OPEN, "SCP_OPEN", ID + 13, ID + 13 + SCP_AID_MAX + SCP_S16, ID + 5 + 6 + SCP_S16, READY, 0,
	  sam_h_scp_open },
	{ SAM_SCP_STEP, "SCP_STEP", ID + 6, ID + 6 + 2 * SAM_APDU_MAX,
	  ID + 3 + 5 + 2 * SCP_S16 + SAM_APDU_MAX + SAM_WRAP_OVERHEAD, READY, 0, sam_h_scp_step },
	{ SAM_SCP_WRAP, "SCP_WRAP", ID + 4, APDU_REQ_MAX, ID + SAM_APDU_MAX + SAM_WRAP_OVERHEAD,
	  READY, 0, sam_h_scp_wrap },
	{ SAM_SCP_UNWRAP, "SCP_UNWRAP", ID + 4, APDU_REQ_MAX, ID + 3 + SAM_APDU_MAX, READY, 0,
	  sam_h_scp_unwrap },
	{ SAM_SCP_CLOSE, "SCP_CLOSE", ID + 4, ID + 4, ID, READY, 0, sam_h_scp_close },
	{ SAM_SCP_PUT_KEY, "SCP_PUT_KEY", ID + 6, ID + 6,
	  ID + 1 + SAM_PUT_KEY_CMD_MAX + SAM_WRAP_OVERHEAD, READY, 0, sam_h_scp_put_key },
	{ SAM_SIGN, "SIGN", ID + 1, ID + 1 + SAM_SIGN_MSG_MAX, ID + 1 + SAM_SIG_LEN, READY, 0,
	  sam_h_sign },
	{ SAM_SEAL_BLOB, "SEAL_BLOB", ID + 2, ID + 1 + SAM_BLOB_ID_MAX + SAM_BLOB_MAX,
	  ID + SAM_BLOB_MAX + SAM_BLOB_OVERHEAD, READY, 0, sam_h_seal_blob },
	{ SAM_OPEN_BLOB, "OPEN_BLOB", ID + 2, SAM_REQ_MAX, ID + SAM_BLOB_MAX, READY, 0,
	  sam_h_open_blob },
	{ SAM_RECEIPT_VERIFY, "RECEIPT_VERIFY", ID + 15, ID + 10 + 16 + SAM_RECEIPT_BODY_MAX, ID,
	  READY, 0, sam_h_receipt_verify },
	{ SAM_ROTATE, "ROTATE", ID + 1, ID + 1, ID + 2, READY, SAM_CAP_KEYS, sam_h_rotate },
	{ SAM_RETIRE, "RETIRE", ID + 2, ID + 2, ID, READY, SAM_CAP_KEYS, sam_h_retire },
};
#define SAM_NREQS (sizeof(sam_reqs) / sizeof(sam_reqs[0]))
#define ERROR_LEN (ID + 4u)

static const struct sam_req_def *req_def(uint8_t type)
{
	for (size_t i = 0; i < SAM_NREQS; i++)
		if (sam_reqs[i].type == type)
			return &sam_reqs[i];
	return NULL;
}

const char *sam_request_name(uint8_t type)
{
	const struct sam_req_def *d = req_def(type);

	return d != NULL ? d->name : NULL;
}

void sam_request_limits(uint32_t table[FRAME_TYPES])
{
	memset(table, 0, FRAME_TYPES * sizeof(table[0]));
	for (size_t i = 0; i < SAM_NREQS; i++)
		table[sam_reqs[i].type] = 1u + sam_reqs[i].max;
}

void sam_reply_limits(uint32_t table[FRAME_TYPES])
{
	memset(table, 0, FRAME_TYPES * sizeof(table[0]));
	for (size_t i = 0; i < SAM_NREQS; i++)
		table[SAM_REPLY(sam_reqs[i].type)] = 1u + sam_reqs[i].reply_max;
	table[SAM_ERROR] = 1u + ERROR_LEN;
}

/* Drops what a failed handler wrote (it may have been key material). */
static void out_rewind(struct wr *out, size_t start)
{
	ct_wipe(out->p + start, out->len - start);
	out->len = start;
}

static int proto_close(struct sam *s, struct sam_conn *c)
{
	sam_conn_close(s, c);
	return TB_E_SAM_PROTO;
}

int sam_request(struct sam *s, struct sam_conn *c, uint8_t type, const uint8_t *payload,
		size_t n, struct wr *out)
{
	const struct sam_req_def *d = req_def(type);
	struct sam_call k;
	size_t start = out->len;
	uint32_t id;
	uint8_t *hdr;
	int rc;

	if (wr_room(out) < SAM_REPLY_FRAME_MAX)
		return TB_E_NOSPACE;
	if (c->state == SAM_CS_CLOSED)
		return TB_E_SAM_PROTO;
	if (d == NULL || n < d->min || n > d->max || (n > 0 && payload == NULL) ||
	    !(d->states & c->state))
		return proto_close(s, c);
	k.s = s;
	k.c = c;
	k.req = rd_init(payload, n);
	k.out = out;
	(void)rd_u32be(&k.req, &id);
	(void)wr_reserve(out, FRAME_HDR_LEN, &hdr);
	(void)wr_u32be(out, id);
	if (d->cap != 0 && !(s->cfg.caps & d->cap))
		rc = TB_E_SAM_DENIED;
	else
		rc = d->fn(&k);
	if (rc == TB_E_SAM_PROTO) {
		out_rewind(out, start);
		return proto_close(s, c);
	}
	if (rc != 0) {
		out_rewind(out, start);
		(void)wr_reserve(out, FRAME_HDR_LEN, &hdr);
		(void)wr_u32be(out, id);
		(void)wr_u32be(out, (uint32_t)rc);
		type = SAM_ERROR;
	} else {
		type = SAM_REPLY(type);
	}
	{
		size_t len = out->len - start - 4u; /* N counts the type byte and the payload */

		hdr[0] = (uint8_t)(len >> 24);
		hdr[1] = (uint8_t)(len >> 16);
		hdr[2] = (uint8_t)(len >> 8);
		hdr[3] = (uint8_t)len;
		hdr[4] = type;
	}
	return 0;
}

/* ------------------------------------------------------------ handlers --- */

/* version(1) -> version caps sessions(4) sign-key-version(1) public key(65) */
static int sam_h_hello(struct sam_call *k)
{
	const struct sam_key *sk = sam_keys_find(&k->s->ks, SAM_FAM_SIGN, 0);
	uint8_t version;

	if (rd_u8(&k->req, &version) || rd_end(&k->req))
		return TB_E_SAM_PROTO;
	if (version != SAM_PROTO_VERSION)
		return TB_E_UNSUPPORTED; /* the connection stays NEW: it may say HELLO again */
	if (sk == NULL)
		return TB_E_SAM_KEY;
	k->c->state = SAM_CS_READY;
	(void)wr_u8(k->out, SAM_PROTO_VERSION);
	(void)wr_u8(k->out, (uint8_t)k->s->cfg.caps);
	(void)wr_u32be(k->out, k->s->nslots);
	(void)wr_u8(k->out, sk->version);
	return wr_bytes(k->out, sk->pub, SAM_PUB_LEN);
}

/* -> caps sessions(4) in-use(4), per family: family current count versions[4] */
static int sam_h_status(struct sam_call *k)
{
	const struct sam_keystore *ks = &k->s->ks;

	if (rd_end(&k->req))
		return TB_E_SAM_PROTO;
	(void)wr_u8(k->out, (uint8_t)k->s->cfg.caps);
	(void)wr_u32be(k->out, k->s->nslots);
	(void)wr_u32be(k->out, k->s->used);
	for (uint8_t f = 1; f <= SAM_FAMILIES; f++) {
		uint8_t count = 0, v[SAM_VERSIONS];

		memset(v, 0, sizeof(v));
		for (size_t i = 0; i < SAM_VERSIONS; i++)
			if (ks->k[f - 1][i].present)
				v[count++] = ks->k[f - 1][i].version;
		(void)wr_u8(k->out, f);
		(void)wr_u8(k->out, ks->current[f - 1]);
		(void)wr_u8(k->out, count);
		(void)wr_bytes(k->out, v, sizeof(v));
	}
	return 0;
}

/* version(1, 0 = current) -> version public key(65) */
static int sam_h_public_key(struct sam_call *k)
{
	const struct sam_key *sk;
	uint8_t version;

	if (rd_u8(&k->req, &version) || rd_end(&k->req))
		return TB_E_SAM_PROTO;
	if ((sk = sam_keys_find(&k->s->ks, SAM_FAM_SIGN, version)) == NULL)
		return TB_E_SAM_KEY;
	(void)wr_u8(k->out, sk->version);
	return wr_bytes(k->out, sk->pub, SAM_PUB_LEN);
}
