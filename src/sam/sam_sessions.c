/* sam_sessions.c - the fixed session table and the connections that own its slots.
 * What stays true: a slot is on exactly one list (the free list or its owner's), a
 * handle names a slot only for its owner and only until the slot is freed (the
 * generation changes), and a freed slot holds no key. */
#include <string.h>

#include "ct.h"
#include "err.h"
#include "sam_int.h"

#define HANDLE_INDEX_BITS 20u
#define HANDLE_INDEX_MASK ((1u << HANDLE_INDEX_BITS) - 1u)
#define HANDLE_GEN_MASK 0xFFFu

int sam_init(struct sam *s, const struct sam_config *cfg, const struct sam_keystore *ks,
	     struct sam_session *slots, size_t nslots)
{
	if (s == NULL || cfg == NULL || ks == NULL || slots == NULL || nslots == 0 ||
	    nslots > SAM_SESSIONS_MAX)
		return TB_E_INVAL;
	if (sam_keys_check(ks) != 0)
		return TB_E_SAM_KEYFILE;
	memset(s, 0, sizeof(*s));
	s->ks = *ks;
	s->cfg = *cfg;
	s->slots = slots;
	s->nslots = (uint32_t)nslots;
	memset(slots, 0, nslots * sizeof(*slots));
	for (uint32_t i = 0; i < s->nslots; i++) {
		slots[i].next = i + 1 < s->nslots ? i + 1 : SAM_NONE;
		slots[i].prev = SAM_NONE;
	}
	s->free_head = 0;
	s->next_conn = 1;
	return 0;
}

void sam_wipe(struct sam *s)
{
	if (s == NULL)
		return;
	if (s->slots != NULL)
		ct_wipe(s->slots, (size_t)s->nslots * sizeof(*s->slots));
	ct_wipe(s, sizeof(*s));
}

void sam_conn_open(struct sam *s, struct sam_conn *c)
{
	memset(c, 0, sizeof(*c));
	c->id = s->next_conn++;
	if (s->next_conn == 0)
		s->next_conn = 1; /* 0 marks a free slot */
	c->state = SAM_CS_NEW;
	c->head = SAM_NONE;
}

void sam_conn_close(struct sam *s, struct sam_conn *c)
{
	while (c->head != SAM_NONE)
		sam_sess_free(s, c, &s->slots[c->head]);
	c->state = SAM_CS_CLOSED;
}

int sam_sess_alloc(struct sam *s, struct sam_conn *c, uint32_t *idx)
{
	uint32_t i = s->free_head;
	struct sam_session *ss;

	if (i == SAM_NONE)
		return TB_E_SAM_BUSY;
	ss = &s->slots[i];
	s->free_head = ss->next;
	ss->owner = c->id;
	ss->prev = SAM_NONE;
	ss->next = c->head;
	if (c->head != SAM_NONE)
		s->slots[c->head].prev = i;
	c->head = i;
	c->nsessions++;
	s->used++;
	*idx = i;
	return 0;
}

uint32_t sam_sess_handle(const struct sam *s, const struct sam_session *ss)
{
	uint32_t idx = (uint32_t)(ss - s->slots);

	return ((ss->gen & HANDLE_GEN_MASK) << HANDLE_INDEX_BITS) | idx;
}

struct sam_session *sam_sess_find(struct sam *s, const struct sam_conn *c, uint32_t handle)
{
	uint32_t idx = handle & HANDLE_INDEX_MASK;
	struct sam_session *ss;

	if (idx >= s->nslots)
		return NULL;
	ss = &s->slots[idx];
	if (ss->state == SAM_SS_FREE || ss->owner != c->id ||
	    (ss->gen & HANDLE_GEN_MASK) != handle >> HANDLE_INDEX_BITS)
		return NULL;
	return ss;
}

void sam_sess_free(struct sam *s, struct sam_conn *c, struct sam_session *ss)
{
	uint32_t i = (uint32_t)(ss - s->slots);

	if (ss->prev != SAM_NONE)
		s->slots[ss->prev].next = ss->next;
	else
		c->head = ss->next;
	if (ss->next != SAM_NONE)
		s->slots[ss->next].prev = ss->prev;
	ct_wipe(&ss->h, sizeof(ss->h));
	ct_wipe(ss->serial, sizeof(ss->serial));
	ct_wipe(ss->expect, sizeof(ss->expect));
	ss->gen++;
	ss->owner = 0;
	ss->state = SAM_SS_FREE;
	ss->role = 0;
	ss->prev = SAM_NONE;
	ss->next = s->free_head;
	s->free_head = i;
	c->nsessions--;
	s->used--;
}
