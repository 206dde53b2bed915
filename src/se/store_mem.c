/* store_mem.c - the in-memory page store with scripted cuts, tears and lost writes.
 * Once power is off nothing reaches the image until se_mem_power_on(); every change
 * to the image goes through mem_write, which counts it. */
#include <string.h>

#include "err.h"
#include "store_mem.h"

static int mem_read(void *ctx, uint16_t page, uint8_t buf[SE_PAGE_SIZE])
{
	const struct se_mem *m = ctx;

	if (page >= SE_PAGE_COUNT)
		return TB_E_STORE;
	memcpy(buf, m->img[page], SE_PAGE_SIZE);
	return 0;
}

/* The armed fault meets this write: what reaches the page, and whether power stays. */
static int mem_fault(struct se_mem *m, uint16_t page, const uint8_t buf[SE_PAGE_SIZE])
{
	m->armed = 0;
	switch (m->how) {
	case SE_MEM_LOSE:
		return 0;
	case SE_MEM_TEAR_ERASED:
		memset(m->img[page] + SE_PAGE_SIZE / 2, 0xFF, SE_PAGE_SIZE / 2);
		/* fall through */
	case SE_MEM_TEAR_OLD:
		memcpy(m->img[page], buf, SE_PAGE_SIZE / 2);
		m->writes++;
		break;
	case SE_MEM_CUT:
		break;
	}
	m->off = 1;
	return TB_E_STORE;
}

static int mem_write(void *ctx, uint16_t page, const uint8_t buf[SE_PAGE_SIZE])
{
	struct se_mem *m = ctx;

	if (m->off || page >= SE_PAGE_COUNT)
		return TB_E_STORE;
	if (m->armed) {
		if (m->fault_in == 0)
			return mem_fault(m, page, buf);
		m->fault_in--;
	}
	memcpy(m->img[page], buf, SE_PAGE_SIZE);
	m->writes++;
	return 0;
}

static int mem_sync(void *ctx)
{
	struct se_mem *m = ctx;

	if (m->off)
		return TB_E_STORE;
	m->syncs++;
	return 0;
}

void se_mem_init(struct se_mem *m)
{
	memset(m, 0, sizeof(*m));
	memset(m->img, 0xFF, sizeof(m->img));
	m->store.ctx = m;
	m->store.read = mem_read;
	m->store.write = mem_write;
	m->store.sync = mem_sync;
}

void se_mem_fault_after(struct se_mem *m, size_t k, enum se_mem_fault how)
{
	m->armed = 1;
	m->fault_in = k;
	m->how = how;
}

void se_mem_power_on(struct se_mem *m)
{
	m->armed = 0;
	m->off = 0;
}
