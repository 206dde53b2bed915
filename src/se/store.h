/* store.h - the page store the se core writes its persistent memory through.
 * The se's "EEPROM image" is SE_PAGE_COUNT pages of SE_PAGE_SIZE bytes (32 KiB);
 * adapters implement the three calls: an in-memory store (store_mem.h) for tests and
 * fuzzing, a file-backed one in src/io. Only the commit journal (journal.h) calls them.
 *
 * The contract the journal relies on, and no more:
 *  - read(ctx, page, buf) fills buf with the page's SE_PAGE_SIZE bytes. 0 or TB_E_STORE.
 *  - write(ctx, page, buf) programs the whole page. 0 or TB_E_STORE. A write is atomic
 *    at page granularity in normal operation (like EEPROM page programming), and power
 *    may be cut between any two page writes. A cut DURING a write can leave that one
 *    page torn: any mix of old bytes, new bytes and erased bytes. The journal therefore
 *    never trusts a page it cannot check: its commit record and its staged pages carry
 *    CRC-32s, and a torn commit record reads as invalid.
 *  - sync(ctx) is a barrier: every write before it is on the medium when it returns 0.
 *    Writes between two syncs may reach the medium in any order. 0 or TB_E_STORE.
 *  - page is always < SE_PAGE_COUNT (the caller checks); buf is caller-owned.
 * A store never allocates on behalf of the core and keeps no pointer to buf. */
#ifndef TB_SE_STORE_H
#define TB_SE_STORE_H

#include <stdint.h>

#define SE_PAGE_SIZE 128
#define SE_PAGE_COUNT 256
#define SE_IMAGE_SIZE (SE_PAGE_SIZE * SE_PAGE_COUNT) /* 32768 bytes */

struct se_store {
	void *ctx; /* borrowed: the adapter's state, passed to each call */
	int (*read)(void *ctx, uint16_t page, uint8_t buf[SE_PAGE_SIZE]);
	int (*write)(void *ctx, uint16_t page, const uint8_t buf[SE_PAGE_SIZE]);
	int (*sync)(void *ctx);
};

#endif
