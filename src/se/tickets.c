/* tickets.c - tickets the server issues into the wallet: store, list, check, consume
 * once per command, delete. Record on the wire (21 bytes): id(8) service(4)
 * not_before(4) not_after(4) uses_left(1), times in the adapter's clock (seconds).
 * What stays true: at most one stored ticket per id; a consume takes exactly one use,
 * only inside the validity window and only for the ticket's own service. */
#include <string.h>

#include "ct.h"
#include "err.h"
#include "se_int.h"

#define TICKET_WIRE_LEN 21u

enum ticket_status {
	TICKET_VALID = 0,
	TICKET_NOT_YET = 1,
	TICKET_EXPIRED = 2,
	TICKET_USED_UP = 3,
};

static int ticket_find(const struct se_image *img, const uint8_t id[SE_TICKET_ID_LEN])
{
	for (int i = 0; i < (int)SE_TICKET_MAX; i++)
		if (img->tickets[i].used && ct_eq(img->tickets[i].id, id, SE_TICKET_ID_LEN))
			return i;
	return -1;
}

static int ticket_put(struct wr *w, const struct se_ticket *t)
{
	int rc;

	if (wr_room(w) < TICKET_WIRE_LEN)
		return TB_E_NOSPACE;
	(void)wr_bytes(w, t->id, SE_TICKET_ID_LEN);
	(void)wr_u32be(w, t->service);
	(void)wr_u32be(w, t->not_before);
	(void)wr_u32be(w, t->not_after);
	rc = wr_u8(w, t->uses);
	return rc;
}

static enum ticket_status ticket_status(const struct se_ticket *t, uint32_t now)
{
	if (t->uses == 0)
		return TICKET_USED_UP;
	if (now < t->not_before)
		return TICKET_NOT_YET;
	if (now > t->not_after)
		return TICKET_EXPIRED;
	return TICKET_VALID;
}

/* Data: the 21-byte record. A spent ticket of the same id, a free slot, or a spent
 * ticket's slot (in that order) takes it. */
int ticket_store(struct se_cmd *c)
{
	struct se_image next = c->se->img;
	struct se_ticket t;
	struct rd r;
	int slot, rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER, SE_LEVEL_WALLET)) ||
	    (rc = se_expect(c, 0, 0, TICKET_WIRE_LEN)))
		return rc;
	memset(&t, 0, sizeof(t));
	r = rd_init(c->a->data, c->a->nc);
	t.used = 1;
	(void)rd_copy(&r, t.id, SE_TICKET_ID_LEN);
	(void)rd_u32be(&r, &t.service);
	(void)rd_u32be(&r, &t.not_before);
	(void)rd_u32be(&r, &t.not_after);
	(void)rd_u8(&r, &t.uses);
	if (t.uses == 0 || t.not_before > t.not_after)
		return TB_E_INVAL;
	slot = ticket_find(&next, t.id);
	if (slot >= 0 && next.tickets[slot].uses > 0)
		return TB_E_SE_EXISTS;
	for (int i = 0; slot < 0 && i < (int)SE_TICKET_MAX; i++)
		if (!next.tickets[i].used)
			slot = i;
	for (int i = 0; slot < 0 && i < (int)SE_TICKET_MAX; i++)
		if (next.tickets[i].uses == 0)
			slot = i;
	if (slot < 0)
		return TB_E_SE_FULL;
	next.tickets[slot] = t;
	return se_persist(c->se, &next, NULL, 0);
}

/* Response: every stored ticket's record, spent ones included. */
int ticket_list(struct se_cmd *c)
{
	int rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER | SE_ALLOW_READER | SE_ALLOW_HOST_PLAIN,
			     SE_LEVEL_WALLET)) ||
	    (rc = se_expect(c, 0, 0, 0)))
		return rc;
	for (unsigned i = 0; i < SE_TICKET_MAX; i++)
		if (c->se->img.tickets[i].used && (rc = ticket_put(c->out, &c->se->img.tickets[i])) != 0)
			return rc;
	return 0;
}

/* Data: id(8). Response: record || status (00 valid now, 01 not yet valid, 02 expired,
 * 03 used up). */
int ticket_check(struct se_cmd *c)
{
	const struct se_ticket *t;
	int slot, rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER | SE_ALLOW_READER, SE_LEVEL_WALLET)) ||
	    (rc = se_expect(c, 0, 0, SE_TICKET_ID_LEN)))
		return rc;
	if ((slot = ticket_find(&c->se->img, c->a->data)) < 0)
		return TB_E_SE_NOT_FOUND;
	t = &c->se->img.tickets[slot];
	if ((rc = ticket_put(c->out, t)) != 0)
		return rc;
	return wr_u8(c->out, (uint8_t)ticket_status(t, c->now));
}

/* Data: id(8) service(4). Response: the record after the use. */
int ticket_consume(struct se_cmd *c)
{
	struct se_image next = c->se->img;
	struct se_ticket *t;
	uint32_t service;
	int slot, rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER | SE_ALLOW_READER, SE_LEVEL_WALLET)) ||
	    (rc = se_expect(c, 0, 0, SE_TICKET_ID_LEN + 4)))
		return rc;
	if ((slot = ticket_find(&next, c->a->data)) < 0)
		return TB_E_SE_NOT_FOUND;
	t = &next.tickets[slot];
	service = (uint32_t)c->a->data[8] << 24 | (uint32_t)c->a->data[9] << 16 |
		  (uint32_t)c->a->data[10] << 8 | c->a->data[11];
	if (service != t->service)
		return TB_E_INVAL;
	switch (ticket_status(t, c->now)) {
	case TICKET_USED_UP:
		return TB_E_SE_STATE;
	case TICKET_NOT_YET:
	case TICKET_EXPIRED:
		return TB_E_SE_EXPIRED;
	default:
		break;
	}
	t->uses--;
	if ((rc = ticket_put(c->out, t)) != 0)
		return rc;
	return se_persist(c->se, &next, NULL, 0);
}

/* Data: id(8). */
int ticket_delete(struct se_cmd *c)
{
	struct se_image next = c->se->img;
	int slot, rc;

	if ((rc = se_require(c, SE_ALLOW_SERVER, SE_LEVEL_WALLET)) ||
	    (rc = se_expect(c, 0, 0, SE_TICKET_ID_LEN)))
		return rc;
	if ((slot = ticket_find(&next, c->a->data)) < 0)
		return TB_E_SE_NOT_FOUND;
	memset(&next.tickets[slot], 0, sizeof(next.tickets[slot]));
	return se_persist(c->se, &next, NULL, 0);
}
