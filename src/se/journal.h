/* journal.h - the commit journal: every update of the se's persistent data goes
 * through it, so that a power cut after any page write (or during one: a torn page)
 * leaves, after jnl_recover(), either the complete old or the complete new data.
 *
 * Image layout (SE_PAGE_COUNT = 256 pages of SE_PAGE_SIZE = 128 bytes):
 *   pages   0 .. 245   data pages (SE_DATA_PAGES = 246), the only ones callers name
 *   pages 246 .. 253   staging slots, one per page of the open transaction
 *   page  254          commit record  (JNL_REC_COMMIT)
 *   page  255          done record    (JNL_REC_DONE)
 * A record page: "TBJ1", kind ('C' commit / 'D' done), count, seq u32, then count
 * entries {home page u16, CRC-32 of the slot u32} (big-endian), zeros, and at bytes
 * 124..127 the CRC-32 of bytes 0..123. A slot holds the page's new content as is;
 * its CRC-32 in the commit record tells a whole slot from a torn or decayed one.
 *
 * Commit protocol (seq = number of durable commits so far):
 *   jnl_write  stages each page into its slot (1 page write per call);
 *   jnl_commit sync; checks every slot against its CRC; writes the commit record for
 *              seq+1 and sync -- the transaction is durable from here; copies the slots
 *              home and sync; writes the done record for seq+1 and sync.
 *   Every page write is read back and compared before going on.
 * A commit of N distinct pages staged with S jnl_write calls (S = N unless a page is
 * rewritten) costs S + N + 2 page writes: S slots, 1 commit record, N home pages,
 * 1 done record; the commit record is write number S (counting from 0).
 * Recovery re-applies the commit record when it is valid and newer than the done
 * record (N + 1 writes, idempotent), and otherwise writes nothing: stale slots are
 * dead without a valid commit record naming them.
 *
 * States: after jnl_init() only jnl_recover() is accepted. After a store error
 * (TB_E_STORE) or a corrupt journal (TB_E_JOURNAL) from any call but jnl_read, the
 * journal again accepts only jnl_recover(), which settles old or new exactly as a
 * restart would; jnl_seq() afterwards tells which. Calls out of order return
 * TB_E_JNL_STATE and change nothing.
 *
 * RAM: struct jnl is at most JNL_RAM_MAX bytes (checked by a test); no page copies in
 * it. A call uses at most two page buffers (256 bytes) and about 120 more bytes of
 * stack. No heap, no I/O. */
#ifndef TB_SE_JOURNAL_H
#define TB_SE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define JNL_MAX_PAGES 8 /* distinct data pages per transaction */
#define JNL_AREA_PAGES (JNL_MAX_PAGES + 2)
#define SE_DATA_PAGES (SE_PAGE_COUNT - JNL_AREA_PAGES) /* 246 */
#define JNL_SLOT_FIRST SE_DATA_PAGES
#define JNL_REC_COMMIT (SE_PAGE_COUNT - 2)
#define JNL_REC_DONE (SE_PAGE_COUNT - 1)
#define JNL_RAM_MAX 80 /* bytes, upper bound of sizeof(struct jnl) */

enum jnl_state {
	JNL_NEED_RECOVER = 0, /* after jnl_init and after a store error */
	JNL_IDLE,
	JNL_OPEN,
};

struct jnl {
	const struct se_store *st; /* borrowed; outlives the jnl */
	uint32_t seq;              /* durable commits so far (as recovered) */
	uint8_t state;             /* enum jnl_state */
	uint8_t count;             /* pages staged in the open transaction */
	uint16_t home[JNL_MAX_PAGES]; /* staged page i sits in slot JNL_SLOT_FIRST + i */
	uint32_t crc[JNL_MAX_PAGES];
};

/* Binds j to a store; touches no page. Next call: jnl_recover(). */
void jnl_init(struct jnl *j, const struct se_store *st);
/* Start-up (or after an error): finishes a durable commit that a cut interrupted,
 * or forgets a transaction that never became durable. Accepted in every state; an
 * open transaction is dropped. 0, TB_E_STORE, or TB_E_JOURNAL when a valid commit
 * record names a slot that fails its CRC (then no home page has been written by this
 * call, and the journal stays unusable: the committed data is lost). */
int jnl_recover(struct jnl *j);
/* Opens a transaction. 0 or TB_E_JNL_STATE (not idle). */
int jnl_begin(struct jnl *j);
/* Stages data page `page` (< SE_DATA_PAGES) into the open transaction; staging the
 * same page again replaces its content. TB_E_INVAL (page), TB_E_JNL_STATE (no open
 * transaction), TB_E_NOSPACE (a (JNL_MAX_PAGES+1)-th distinct page: nothing staged,
 * the transaction stays open as it was), TB_E_STORE. Nothing goes home before commit. */
int jnl_write(struct jnl *j, uint16_t page, const uint8_t buf[SE_PAGE_SIZE]);
/* Reads data page `page`: its staged content when the open transaction staged it,
 * else the home page. Accepted when idle or open. TB_E_INVAL, TB_E_JNL_STATE,
 * TB_E_STORE (not sticky: a failed read changes no state). */
int jnl_read(struct jnl *j, uint16_t page, uint8_t buf[SE_PAGE_SIZE]);
/* Makes the staged pages the new data, all or nothing (an empty transaction writes
 * nothing and keeps seq). 0 when the new data is home and recorded done, then seq
 * has grown by one. TB_E_JNL_STATE, TB_E_STORE, TB_E_JOURNAL: outcome settled by
 * jnl_recover(). */
int jnl_commit(struct jnl *j);
/* Drops the open transaction; writes nothing. 0 or TB_E_JNL_STATE. */
int jnl_abort(struct jnl *j);
/* Durable commits so far, as of the last jnl_recover() or jnl_commit(). */
uint32_t jnl_seq(const struct jnl *j);

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32()): pass 0 to start, the result
 * of the previous call to continue. Exposed for its known-answer test. */
uint32_t jnl_crc32(uint32_t crc, const uint8_t *p, size_t n);

#endif
