/* fuzz_journal.c - drives the commit journal over the in-memory store with an input
 * script (begin, write, commit, abort, read, arm a fault, restart) and checks every
 * return code and, after each successful recovery, every data page against a shadow
 * model: the last committed state, or the new state of a failed commit when the
 * recovered seq says it became durable. Any mismatch calls abort(). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "journal.h"
#include "store_mem.h"

static struct se_mem mem;
static uint8_t shadow[SE_DATA_PAGES][SE_PAGE_SIZE];  /* the last committed data */
static uint8_t pending[SE_DATA_PAGES][SE_PAGE_SIZE]; /* the open or in-doubt transaction */

struct model {
	uint32_t seq;
	int open, broken, doubt, faulty;
	size_t nstaged;
	uint16_t staged[JNL_MAX_PAGES];
};

static void check(int ok)
{
	if (!ok)
		abort();
}

static int same(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t d = 0;

	for (size_t k = 0; k < n; k++)
		d |= (uint8_t)(a[k] ^ b[k]);
	return d == 0;
}

static int data_is(uint8_t img[SE_DATA_PAGES][SE_PAGE_SIZE])
{
	return same(&mem.img[0][0], &img[0][0], (size_t)SE_DATA_PAGES * SE_PAGE_SIZE);
}

static int staged(const struct model *m, uint16_t page)
{
	for (size_t i = 0; i < m->nstaged; i++)
		if (m->staged[i] == page)
			return 1;
	return 0;
}

/* A store error: only recovery is accepted now, and an open transaction is in doubt. */
static void failed(struct model *m, int rc)
{
	check(rc == TB_E_STORE && m->faulty);
	m->broken = 1;
	m->doubt = m->doubt || m->open;
	m->open = 0;
}

static void op_write(struct jnl *j, struct model *m, uint16_t page, uint8_t seed)
{
	uint8_t buf[SE_PAGE_SIZE];
	int rc;

	for (size_t k = 0; k < SE_PAGE_SIZE; k++)
		buf[k] = (uint8_t)(seed + k * 13u + page);
	rc = jnl_write(j, page, buf);
	if (page >= SE_DATA_PAGES)
		check(rc == TB_E_INVAL);
	else if (m->broken || !m->open)
		check(rc == TB_E_JNL_STATE);
	else if (m->nstaged == JNL_MAX_PAGES && !staged(m, page))
		check(rc == TB_E_NOSPACE);
	else if (rc != 0)
		failed(m, rc);
	else {
		if (!staged(m, page))
			m->staged[m->nstaged++] = page;
		memcpy(pending[page], buf, SE_PAGE_SIZE);
	}
}

static void op_commit(struct jnl *j, struct model *m)
{
	int rc = jnl_commit(j);

	if (m->broken || !m->open) {
		check(rc == TB_E_JNL_STATE);
	} else if (rc != 0) {
		failed(m, rc);
	} else {
		memcpy(shadow, pending, sizeof(shadow));
		m->seq += m->nstaged > 0;
		m->open = 0;
		check(jnl_seq(j) == m->seq && data_is(shadow));
	}
}

static void op_read(struct jnl *j, const struct model *m, uint16_t page)
{
	uint8_t buf[SE_PAGE_SIZE];
	int rc = jnl_read(j, page, buf);

	if (page >= SE_DATA_PAGES)
		check(rc == TB_E_INVAL);
	else if (m->broken)
		check(rc == TB_E_JNL_STATE);
	else
		check(rc == 0 && same(buf, m->open ? pending[page] : shadow[page], SE_PAGE_SIZE));
}

/* Power off and on (with a fault armed during the recovery when `a` says so). */
static void op_restart(struct jnl *j, struct model *m, uint8_t a, uint8_t b)
{
	int rc;

	se_mem_power_on(&mem);
	m->faulty = 0;
	if (a & 0x80) {
		se_mem_fault_after(&mem, a & 15u, (enum se_mem_fault)(b % 4));
		m->faulty = 1;
	}
	m->open = 0;
	jnl_init(j, &mem.store);
	rc = jnl_recover(j);
	if (rc != 0) {
		failed(m, rc);
		return;
	}
	if (m->doubt && jnl_seq(j) == m->seq + 1) {
		memcpy(shadow, pending, sizeof(shadow));
		m->seq++;
	}
	check(jnl_seq(j) == m->seq && data_is(shadow));
	m->broken = m->doubt = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct model m = { 0 };
	struct jnl j;

	se_mem_init(&mem);
	memset(shadow, 0xFF, sizeof(shadow));
	jnl_init(&j, &mem.store);
	check(jnl_recover(&j) == 0);
	for (size_t i = 0; i < size;) {
		uint8_t op = data[i++];
		uint8_t a = i < size ? data[i] : 0, b = i + 1 < size ? data[i + 1] : 0;
		/* Mostly a dozen pages, so transactions overlap and fill up; sometimes the
		 * top of the data area and past it. */
		uint16_t page = (uint16_t)(a < 0xF0 ? a % 12 : a);

		switch (op % 7) {
		case 0:
			check(jnl_begin(&j) == (m.broken || m.open ? TB_E_JNL_STATE : 0));
			if (!m.broken && !m.open) {
				m.open = 1;
				m.nstaged = 0;
				memcpy(pending, shadow, sizeof(pending));
			}
			break;
		case 1: op_write(&j, &m, page, b); i += 2; break;
		case 2: op_commit(&j, &m); break;
		case 3:
			check(jnl_abort(&j) == (m.broken || !m.open ? TB_E_JNL_STATE : 0));
			m.open = 0;
			break;
		case 4: op_read(&j, &m, page); i += 1; break;
		case 5:
			se_mem_fault_after(&mem, a % 24u, (enum se_mem_fault)(b % 4));
			m.faulty = 1;
			i += 2;
			break;
		default: op_restart(&j, &m, a, b); i += 2; break;
		}
	}
	return 0;
}
