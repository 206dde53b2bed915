/* se.c - the se's entry points: start-up, the two interfaces (selection, SCP03 card
 * role, key set resolution, failure counting and lockout), dispatch to the
 * applications, persistence and the phone's event queue.
 * What stays true: every persistent change goes through se_persist() (one journal
 * transaction), the RAM mirror equals the durable image after every call, and a
 * response leaves only after what it reports is durable. */
#include <string.h>

#include "ct.h"
#include "err.h"
#include "se_int.h"
#include "sw.h"
#include "tlv.h"

#define SE_INS_SELECT 0xA4u
#define SE_SCP_I 0x70u /* S8, pseudo-random challenge, R-MAC, R-ENC */

const uint8_t se_isd_aid[SE_ISD_AID_LEN] = { 0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00 };
const uint8_t se_wallet_aid[SE_WALLET_AID_LEN] = { 0xF0, 'T', 'A', 'P', 'B', 'R',
						   'I',  'D', 'G', 'E', 0x01 };

_Static_assert(sizeof(struct se) < SE_RAM_BUDGET, "struct se within its RAM budget");
_Static_assert(SE_RESP_MAX >= SE_ENVELOPE_MAX + 2 + 2 * SCP_BLOCK, "room for a relay answer");

static int se_sw_only(struct wr *resp, uint16_t sw)
{
	return wr_u16be(resp, sw);
}

/* (Re)starts an interface's channel for application app: no session, no role. */
static void se_if_select(struct se *se, struct se_if *ifc, enum se_app app)
{
	const struct se_test_app *t = se->cfg != NULL ? se->cfg->test_app : NULL;
	struct scp_card_config cc;

	memset(&cc, 0, sizeof(cc));
	cc.i = SE_SCP_I;
	/* KDD: 00 00 || serial, so a back end can diversify keys per se. */
	memcpy(cc.kdd + 2, se->img.serial, SE_SERIAL_LEN);
	if (app == SE_APP_WALLET) {
		cc.aid = se_wallet_aid;
		cc.aid_len = SE_WALLET_AID_LEN;
	} else if (app == SE_APP_TEST && t != NULL) {
		memcpy(cc.kdd, t->kdd, SCP_KDD_LEN);
		cc.aid = t->aid;
		cc.aid_len = t->aid_len;
	} else {
		app = SE_APP_ISD;
		cc.aid = se_isd_aid;
		cc.aid_len = SE_ISD_AID_LEN;
	}
	/* Cannot fail: i has no RFU bits and every AID above is 5..16 bytes (checked for
	 * the test app when it is selected). */
	(void)scp_card_init(&ifc->card, &cc);
	ifc->app = (uint8_t)app;
	ifc->role = SE_ROLE_NONE;
	ifc->kvn = 0;
	ifc->slot = 0;
	ifc->seq = 0;
}

int se_init(struct se *se, const struct se_config *cfg, const struct se_store *store)
{
	int rc;

	if (se == NULL || store == NULL)
		return TB_E_INVAL;
	ct_wipe(se, sizeof(*se));
	se->cfg = cfg;
	jnl_init(&se->jnl, store);
	if ((rc = jnl_recover(&se->jnl)) != 0 || (rc = img_load(&se->jnl, &se->img)) != 0) {
		se->failed = 1;
		return rc;
	}
	for (unsigned i = 0; i < SE_IF_COUNT; i++)
		se_if_select(se, &se->ifs[i], SE_APP_ISD);
	return 0;
}

void se_power(struct se *se, enum se_iface iface, enum se_power_event ev)
{
	(void)ev; /* reset and off end the same things on one interface */
	if (se == NULL || (unsigned)iface >= SE_IF_COUNT)
		return;
	scp_card_reset(&se->ifs[iface].card);
	se_if_select(se, &se->ifs[iface], SE_APP_ISD);
	if (iface == SE_IF_CONTACTLESS)
		relay_drop(se);
}

/* ------------------------------------------------------------ persistence --- */

int se_persist(struct se *se, const struct se_image *next, const struct img_patch *patches,
	       size_t npatch)
{
	int rc, rc2;

	if (se->failed)
		return TB_E_STORE;
	if ((rc = img_commit(&se->jnl, next, patches, npatch)) == 0) {
		se->img = *next;
		return 0;
	}
	/* Settle old or new exactly as a restart would, and mirror whichever it is. */
	if ((rc2 = jnl_recover(&se->jnl)) != 0 || (rc2 = img_load(&se->jnl, &se->img)) != 0)
		se->failed = 1;
	return rc;
}

/* ----------------------------------------------------------------- events --- */

void se_event_push(struct se *se, const struct se_ev_slot *ev)
{
	if (se->ev_count == SE_EVENT_QUEUE) {
		se->ev_head = (uint8_t)((se->ev_head + 1) % SE_EVENT_QUEUE);
		se->ev_count--;
		se->ev_lost++;
	}
	se->ev[(se->ev_head + se->ev_count) % SE_EVENT_QUEUE] = *ev;
	se->ev_count++;
}

int se_next_event(struct se *se, struct se_event *ev)
{
	const struct se_ev_slot *s;

	if (se == NULL || ev == NULL)
		return 0;
	memset(ev, 0, sizeof(*ev));
	if (se->relay.pending && se->relay.announce) {
		se->relay.announce = 0;
		ev->kind = SE_EV_RELAY;
		ev->service = se->relay.service;
		ev->data = se->relay.buf;
		ev->n = se->relay.n;
		return 1;
	}
	if (se->ev_count == 0)
		return 0;
	s = &se->ev[se->ev_head];
	se->ev_head = (uint8_t)((se->ev_head + 1) % SE_EVENT_QUEUE);
	se->ev_count--;
	ev->kind = (enum se_event_kind)s->kind;
	ev->tx_kind = s->tx_kind;
	ev->amount = s->amount;
	ev->balance = s->balance;
	ev->counter = s->counter;
	ev->bitmap = s->bitmap;
	ev->lost = se->ev_lost;
	se->ev_lost = 0;
	return 1;
}

int se_random(struct se *se, uint8_t *out, size_t n)
{
	if (se->cfg == NULL || se->cfg->rng == NULL)
		return TB_E_SE_STATE;
	return se->cfg->rng(se->cfg->rng_ctx, out, n) == 0 ? 0 : TB_E_SE_STATE;
}

/* ------------------------------------------------------------ access rules --- */

int se_require(const struct se_cmd *c, unsigned allow, uint8_t level)
{
	if (!c->auth)
		return (allow & SE_ALLOW_HOST_PLAIN) && c->iface == SE_IF_HOST ? 0 : TB_E_SE_SECURITY;
	if (c->role == SE_ROLE_NONE || !(allow & (1u << c->role)))
		return TB_E_SE_SECURITY;
	return (c->level & level) == level ? 0 : TB_E_SE_SECURITY;
}

int se_expect(const struct se_cmd *c, uint8_t p1, uint8_t p2, size_t nc)
{
	if (c->a->p1 != p1 || c->a->p2 != p2)
		return TB_E_SE_P1P2;
	if (c->a->nc != nc)
		return c->a->nc < nc ? TB_E_TRUNC : TB_E_LEFTOVER;
	return 0;
}

/* ---------------------------------------------------------------- SELECT --- */

static int aid_is(const struct apdu *a, const uint8_t *aid, size_t n)
{
	return a->nc == n && ct_eq(a->data, aid, n);
}

static int se_select_fci(struct se *se, enum se_app app, struct wr *resp)
{
	const struct se_test_app *t = se->cfg != NULL ? se->cfg->test_app : NULL;
	const uint8_t *aid = se_isd_aid;
	size_t n = SE_ISD_AID_LEN;
	struct tlv_mark fci, prop;
	int rc;

	if (app == SE_APP_WALLET) {
		aid = se_wallet_aid;
		n = SE_WALLET_AID_LEN;
	} else if (app == SE_APP_TEST) {
		aid = t->aid;
		n = t->aid_len;
	}
	if ((rc = tlv_open(resp, 0x6F, &fci)) || (rc = tlv_put(resp, 0x84, aid, n)) ||
	    (rc = tlv_open(resp, 0xA5, &prop)))
		return rc;
	if (app == SE_APP_ISD) {
		static const uint8_t max_block[1] = { 0xFF };

		rc = tlv_put(resp, 0x9F65, max_block, sizeof(max_block));
	} else if (app == SE_APP_WALLET) {
		static const uint8_t version[2] = { 0x01, 0x00 };

		rc = tlv_put(resp, 0x9F08, version, sizeof(version));
	}
	if (rc || (rc = tlv_close(resp, &prop)) || (rc = tlv_close(resp, &fci)))
		return rc;
	return wr_u16be(resp, SW_OK);
}

/* 00 A4 04 00|0C Lc AID [Le]. Selecting ends the interface's session; a failed SELECT
 * changes nothing. An empty AID selects the ISD. */
static int se_select(struct se *se, struct se_if *ifc, const uint8_t *cmd, size_t n,
		     struct wr *resp)
{
	const struct se_test_app *t = se->cfg != NULL ? se->cfg->test_app : NULL;
	enum se_app app = SE_APP_NONE;
	struct apdu a;

	if (apdu_parse(cmd, n, &a) != 0)
		return se_sw_only(resp, SW_WRONG_LENGTH);
	if (a.p1 != 0x04 || (a.p2 != 0x00 && a.p2 != 0x0C))
		return se_sw_only(resp, SW_INCORRECT_P1P2);
	if (a.nc == 0 || aid_is(&a, se_isd_aid, SE_ISD_AID_LEN))
		app = SE_APP_ISD;
	else if (aid_is(&a, se_wallet_aid, SE_WALLET_AID_LEN))
		app = SE_APP_WALLET;
	else if (t != NULL && t->aid_len >= SCP_AID_MIN && t->aid_len <= SCP_AID_MAX &&
		 aid_is(&a, t->aid, t->aid_len))
		app = SE_APP_TEST;
	if (app == SE_APP_NONE)
		return se_sw_only(resp, SW_FILE_NOT_FOUND);
	scp_card_reset(&ifc->card);
	se_if_select(se, ifc, app);
	if (a.p2 == 0x0C)
		return se_sw_only(resp, SW_OK);
	return se_select_fci(se, app, resp);
}

/* ----------------------------------------------------- the secure channel --- */

/* KVN 00: the first present key set (slot order) that is not locked. */
static int se_keyset_resolve(const struct se_image *img, uint8_t kvn, int *slot)
{
	int locked = 0;

	if (kvn != 0x00) {
		*slot = img_keyset_find(img, kvn);
		if (*slot < 0)
			return TB_E_SCP_KEYSET;
		return img->ks[*slot].locked ? TB_E_SCP_LOCKED : 0;
	}
	for (int s = 0; s < (int)SE_KEYSET_MAX; s++) {
		if (!img->ks[s].present)
			continue;
		if (!img->ks[s].locked) {
			*slot = s;
			return 0;
		}
		locked = 1;
	}
	return locked ? TB_E_SCP_LOCKED : TB_E_SCP_KEYSET;
}

static int se_refuse(struct se_if *ifc, uint16_t sw, struct wr *resp)
{
	struct scp_card_result res;

	if (scp_card_refuse(&ifc->card, sw, &res, resp) != 0) {
		scp_card_reset(&ifc->card);
		return se_sw_only(resp, sw);
	}
	return 0;
}

/* INITIALIZE UPDATE parsed: resolve the key set, answer, and make the new sequence
 * counter durable before the response (with its challenge) leaves. */
static int se_init_update(struct se *se, struct se_if *ifc, uint8_t kvn, struct wr *resp)
{
	struct scp_card_result res;
	struct se_image next;
	struct scp_keys keys;
	int slot = -1, rc;

	ifc->role = SE_ROLE_NONE;
	if ((rc = se_keyset_resolve(&se->img, kvn, &slot)) != 0)
		return se_refuse(ifc, se_sw(rc), resp);
	if ((rc = img_read_keys(&se->jnl, (unsigned)slot, &keys)) == 0)
		rc = scp_card_supply_keys(&ifc->card, se->img.ks[slot].kvn, &keys,
					  se->img.ks[slot].counter, NULL, 0, &res, resp);
	ct_wipe(&keys, sizeof(keys));
	if (rc != 0)
		return se_refuse(ifc, se_sw(rc), resp);
	if (res.action != SCP_CARD_PERSIST)
		return 0; /* answered already (6985: counter exhausted) */
	next = se->img;
	next.ks[slot].counter = res.counter;
	if (se_persist(se, &next, NULL, 0) != 0)
		return se_refuse(ifc, SW_MEMORY_FAILURE, resp);
	ifc->seq = res.counter;
	return scp_card_counter_saved(&ifc->card, &res, resp);
}

/* EXTERNAL AUTHENTICATE answered by the card role: count a failure (locking the set at
 * the limit) or clear the count; the response goes out only once that is durable. */
static int se_auth_result(struct se *se, struct se_if *ifc, const struct scp_card_result *res,
			  struct wr *resp, int *replaced)
{
	int slot = img_keyset_find(&se->img, res->kvn);
	struct se_keyset_meta *k;
	struct se_image next;

	*replaced = 0;
	if (slot < 0) {
		scp_card_reset(&ifc->card);
		*replaced = 1;
		return se_sw_only(resp, SW_SECURITY_STATUS);
	}
	next = se->img;
	k = &next.ks[slot];
	if (res->auth == SCP_CARD_AUTH_OK) {
		if (k->locked) { /* locked from the other interface during the handshake */
			scp_card_reset(&ifc->card);
			*replaced = 1;
			return se_sw_only(resp, SE_SW_KEYSET_LOCKED);
		}
		ifc->role = k->role;
		ifc->kvn = k->kvn;
		ifc->slot = (uint8_t)slot;
		if (k->failures == 0)
			return 0;
		k->failures = 0;
	} else {
		if (k->failures < 0xFF)
			k->failures++;
		if (k->failures >= next.lockout_limit)
			k->locked = 1;
	}
	if (se_persist(se, &next, NULL, 0) != 0) {
		scp_card_reset(&ifc->card);
		ifc->role = SE_ROLE_NONE;
		*replaced = 1;
		return se_sw_only(resp, SW_MEMORY_FAILURE);
	}
	if (res->auth != SCP_CARD_AUTH_OK && k->locked) {
		*replaced = 1;
		return se_sw_only(resp, SE_SW_KEYSET_LOCKED);
	}
	return 0;
}

/* --------------------------------------------------------------- dispatch --- */

static int se_app_dispatch(struct se_cmd *c, struct se_if *ifc)
{
	uint8_t cla = c->a->cla;

	if (cla & 0x03u)
		return TB_E_SE_CHANNEL;
	if (cla != SE_CLA_ISO && cla != SE_CLA_GP)
		return TB_E_SE_CLA;
	return ifc->app == SE_APP_WALLET ? wallet_command(c) : isd_command(c);
}

/* A plain command delivered by the card role: run it, protect the response. */
static int se_deliver(struct se *se, struct se_if *ifc, enum se_iface iface,
		      const struct scp_card_result *res, size_t len, uint32_t now, struct wr *resp)
{
	struct wr out = wr_init(se->rbuf, sizeof(se->rbuf) - 2);
	struct se_cmd c;
	struct apdu a;
	uint16_t sw = SW_OK;
	int rc;

	memset(&c, 0, sizeof(c));
	if (apdu_parse(se->cbuf, len, &a) != 0) {
		rc = TB_E_APDU_FORM;
	} else {
		c.se = se;
		c.iface = iface;
		c.a = &a;
		c.auth = res->authenticated && ifc->role != SE_ROLE_NONE;
		c.level = res->level;
		c.role = c.auth ? ifc->role : SE_ROLE_NONE;
		c.kvn = ifc->kvn;
		c.slot = ifc->slot;
		c.seq = ifc->seq;
		c.now = now;
		c.out = &out;
		if (ifc->app == SE_APP_TEST) {
			const struct se_test_app *t = se->cfg->test_app;

			/* The test application writes data || SW itself. */
			out.cap = sizeof(se->rbuf);
			rc = t->handle(t->ctx, se->cbuf, len, &out);
			if (rc == 0 && out.len >= 2)
				goto respond;
			rc = TB_E_INTERNAL;
		} else {
			rc = se_app_dispatch(&c, ifc);
		}
	}
	if (rc == SE_PENDING_RELAY) {
		ct_wipe(se->cbuf, len); /* the payload was copied to the relay buffer */
		return SE_PENDING_RELAY;
	}
	out.cap = sizeof(se->rbuf);
	if (rc != 0) {
		out.len = 0;
		sw = se_sw(rc);
	}
	(void)wr_u16be(&out, sw);
respond:
	rc = scp_card_respond(&ifc->card, se->rbuf, out.len, resp);
	/* Plain commands and responses may carry secrets (PUT KEY, personal-auth key). */
	ct_wipe(se->cbuf, len);
	ct_wipe(se->rbuf, sizeof(se->rbuf));
	if (rc != 0)
		return se_sw_only(resp, se_sw(rc));
	return 0;
}

int se_apdu(struct se *se, enum se_iface iface, const uint8_t *cmd, size_t n, uint32_t now,
	    struct wr *resp)
{
	struct wr cw;
	struct scp_card_result res;
	struct se_if *ifc;
	int rc, replaced;

	if (se == NULL || (unsigned)iface >= SE_IF_COUNT || (cmd == NULL && n > 0) || resp == NULL)
		return TB_E_INVAL;
	if (wr_room(resp) < SE_RESP_MAX)
		return TB_E_NOSPACE;
	ifc = &se->ifs[iface];
	if (se->failed)
		return se_sw_only(resp, SW_MEMORY_FAILURE);
	if (iface == SE_IF_CONTACTLESS && se->relay.pending)
		return se_sw_only(resp, SW_CONDITIONS_NOT_SATISFIED);
	if (n > SE_CMD_MAX)
		return se_sw_only(resp, SW_WRONG_LENGTH);
	if (n >= 4 && cmd[0] == SE_CLA_ISO && cmd[1] == SE_INS_SELECT)
		return se_select(se, ifc, cmd, n, resp);
	cw = wr_init(se->cbuf, sizeof(se->cbuf));
	if ((rc = scp_card_command(&ifc->card, cmd, n, &res, &cw)) != 0) {
		ct_wipe(se->cbuf, sizeof(se->cbuf));
		return se_sw_only(resp, se_sw(rc));
	}
	switch (res.action) {
	case SCP_CARD_NEED_KEYS:
		return se_init_update(se, ifc, res.kvn, resp);
	case SCP_CARD_DELIVER:
		return se_deliver(se, ifc, iface, &res, cw.len, now, resp);
	case SCP_CARD_SEND:
		if (res.auth != SCP_CARD_AUTH_NONE) {
			rc = se_auth_result(se, ifc, &res, resp, &replaced);
			if (replaced || rc != 0)
				return rc;
		}
		return wr_bytes(resp, se->cbuf, cw.len);
	default:
		return se_sw_only(resp, SW_UNKNOWN);
	}
}
