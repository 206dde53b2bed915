/* wallet.c - the wallet application's command table, its lock (lost phone: the phone
 * or the server locks, only the server unlocks), the server's disable-functions request
 * to the phone, and the wallet's GET DATA.
 * What stays true: while locked, every command but GET DATA and UNLOCK is answered
 * 6A81 before its handler runs (SELECT and the secure channel never reach this table). */
#include <string.h>

#include "err.h"
#include "se_int.h"
#include "tlv.h"

#define WALLET_INS_GET_DATA 0xCAu
#define WALLET_INS_ENVELOPE 0xC2u
#define WALLET_INS_UNLOCK 0x92u

struct wallet_ins {
	uint8_t ins;
	uint8_t while_locked; /* runs while the wallet is locked */
	uint8_t iso_cla;      /* CLA 00 accepted besides 80 */
	int (*fn)(struct se_cmd *c);
};

static int wallet_get_data(struct se_cmd *c);

static const struct wallet_ins wallet_table[] = {
	{ 0x30, 0, 0, purse_balance },
	{ 0x32, 0, 0, purse_credit },
	{ 0x34, 0, 0, purse_debit },
	{ 0x40, 0, 0, ticket_store },
	{ 0x42, 0, 0, ticket_list },
	{ 0x44, 0, 0, ticket_check },
	{ 0x46, 0, 0, ticket_consume },
	{ 0x48, 0, 0, ticket_delete },
	{ 0x60, 0, 0, pauth_set },
	{ 0x62, 0, 0, pauth_prove },
	{ 0x64, 0, 0, flag_set },
	{ 0x66, 0, 0, flag_read },
	{ 0x68, 0, 0, flag_consume },
	{ 0x6C, 0, 0, relay_control },
	{ 0x90, 0, 0, lock_lock },
	{ WALLET_INS_UNLOCK, 1, 0, lock_unlock },
	{ 0x94, 0, 0, lock_disable },
	{ WALLET_INS_ENVELOPE, 0, 1, relay_envelope },
	{ WALLET_INS_GET_DATA, 1, 1, wallet_get_data },
};

int wallet_command(struct se_cmd *c)
{
	const struct wallet_ins *e = NULL;

	for (size_t i = 0; i < sizeof(wallet_table) / sizeof(wallet_table[0]); i++)
		if (wallet_table[i].ins == c->a->ins)
			e = &wallet_table[i];
	if (c->se->img.locked && (e == NULL || !e->while_locked))
		return TB_E_SE_LOCKED;
	if (e == NULL)
		return TB_E_SE_INS;
	if (c->a->cla != SE_CLA_GP && !(e->iso_cla && c->a->cla == SE_CLA_ISO))
		return TB_E_SE_CLA;
	return e->fn(c);
}

/* 00C1: locked(1) disabled-functions bitmap(2) relay armed(1) relay service(4). */
static int wallet_get_data(struct se_cmd *c)
{
	const struct se *se = c->se;
	uint8_t v[8];
	int armed = se->relay.armed && c->now <= se->relay.expiry;
	struct wr w = wr_init(v, sizeof(v));

	if (c->a->p1 != 0x00 || c->a->p2 != 0xC1)
		return se_get_data_common(c);
	if (c->a->nc != 0)
		return TB_E_LEFTOVER;
	(void)wr_u8(&w, se->img.locked);
	(void)wr_u16be(&w, se->img.disabled);
	(void)wr_u8(&w, (uint8_t)armed);
	(void)wr_u32be(&w, armed ? se->relay.service : 0);
	return tlv_put(c->out, 0xC1, v, sizeof(v));
}

/* ------------------------------------------------------------------ lock --- */

int lock_lock(struct se_cmd *c)
{
	struct se_ev_slot ev = { .kind = SE_EV_LOCKED };
	struct se_image next;
	int rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER | SE_ALLOW_HOST_PLAIN, SE_LEVEL_WALLET)) ||
	    (rc = se_expect(c, 0, 0, 0)))
		return rc;
	next = c->se->img;
	next.locked = 1;
	if ((rc = se_persist(c->se, &next, NULL, 0)) != 0)
		return rc;
	se_event_push(c->se, &ev);
	return 0;
}

int lock_unlock(struct se_cmd *c)
{
	struct se_ev_slot ev = { .kind = SE_EV_UNLOCKED };
	struct se_image next;
	int rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER, SE_LEVEL_WALLET)) || (rc = se_expect(c, 0, 0, 0)))
		return rc;
	if (!c->se->img.locked)
		return 0;
	next = c->se->img;
	next.locked = 0;
	if ((rc = se_persist(c->se, &next, NULL, 0)) != 0)
		return rc;
	se_event_push(c->se, &ev);
	return 0;
}

/* Data: bitmap(2) of phone functions to disable (0 enables all again). */
int lock_disable(struct se_cmd *c)
{
	struct se_ev_slot ev = { .kind = SE_EV_DISABLE };
	struct se_image next;
	int rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER, SE_LEVEL_WALLET)) || (rc = se_expect(c, 0, 0, 2)))
		return rc;
	next = c->se->img;
	next.disabled = (uint16_t)(c->a->data[0] << 8 | c->a->data[1]);
	if ((rc = se_persist(c->se, &next, NULL, 0)) != 0)
		return rc;
	ev.bitmap = next.disabled;
	se_event_push(c->se, &ev);
	return 0;
}
