/* store_mem.h - an in-memory page store with scripted power faults, for the tests and
 * the fuzzer. The whole image is a fixed array inside the struct (about 32 KiB: give
 * it static storage, not a small stack). It starts erased (every byte 0xFF).
 *
 * Faults: se_mem_fault_after(m, k, how) lets the next k page writes complete and then
 * hits the (k+1)-th write:
 *   SE_MEM_CUT          power goes before the write: the page keeps its old bytes;
 *   SE_MEM_TEAR_OLD     power goes mid-write: the first half of the page gets the new
 *                       bytes, the second half keeps the old ones;
 *   SE_MEM_TEAR_ERASED  power goes mid-write after the erase: first half new, second
 *                       half erased (0xFF), as EEPROM erase-then-program leaves it;
 *   SE_MEM_LOSE         a bad cell: that one write reports success and changes nothing;
 *                       power stays on and later writes work.
 * After CUT and the two TEARs power is off: that write and every later write and sync
 * fail with TB_E_STORE and change nothing, until se_mem_power_on() (the restart).
 * Reads always work, so a test can inspect the image at any time. */
#ifndef TB_SE_STORE_MEM_H
#define TB_SE_STORE_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum se_mem_fault {
	SE_MEM_CUT,
	SE_MEM_TEAR_OLD,
	SE_MEM_TEAR_ERASED,
	SE_MEM_LOSE,
};

struct se_mem {
	struct se_store store; /* ready to pass to jnl_init(); its ctx points here */
	uint8_t img[SE_PAGE_COUNT][SE_PAGE_SIZE];
	size_t writes; /* page writes that changed the image (torn ones included) */
	size_t syncs;
	size_t fault_in; /* writes left before the armed fault hits */
	int armed;
	int off;         /* power is off: writes and syncs fail */
	enum se_mem_fault how;
};

/* An erased image, no fault armed, counters at zero. */
void se_mem_init(struct se_mem *m);
/* Arms one fault: k more writes complete, the next one meets `how` (see above).
 * Replaces any fault already armed. */
void se_mem_fault_after(struct se_mem *m, size_t k, enum se_mem_fault how);
/* The restart: power back on, no fault armed; the image and counters stay. */
void se_mem_power_on(struct se_mem *m);

#endif
