/* test_journal.c - the se's commit journal over the in-memory page store: commit,
 * staged reads, abort, clean restart, call order, and the tearing tests: a power cut
 * or a torn page at every page write of a transaction, and again at every page write
 * of the recovery that follows, ends in exactly the old or exactly the new data. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "err.h"
#include "journal.h"
#include "store_mem.h"

/* Images are 32 KiB: static, one set for the whole program. */
static struct se_mem mem;
static struct se_mem snap;
static uint8_t want_old[SE_DATA_PAGES][SE_PAGE_SIZE];
static uint8_t want_new[SE_DATA_PAGES][SE_PAGE_SIZE];

static const enum se_mem_fault power_faults[] = { SE_MEM_CUT, SE_MEM_TEAR_OLD, SE_MEM_TEAR_ERASED };
#define N_POWER_FAULTS (sizeof(power_faults) / sizeof(power_faults[0]))

/* A transaction: the data pages it writes, in order (a page may come back). */
struct script {
	const char *name;
	size_t n;
	uint16_t page[10];
};

static const struct script scripts[] = {
	{ "three pages", 3, { 3, 100, SE_DATA_PAGES - 1 } },
	{ "eight pages", 8, { 0, 1, 2, 50, 51, 120, 200, SE_DATA_PAGES - 1 } },
	{ "a page twice", 3, { 7, 9, 7 } },
	{ "two pages rewritten", 5, { 7, 9, 7, 9, 7 } },
};
#define N_SCRIPTS (sizeof(scripts) / sizeof(scripts[0]))

static void fill(uint8_t buf[SE_PAGE_SIZE], unsigned tag, uint16_t page)
{
	for (size_t i = 0; i < SE_PAGE_SIZE; i++)
		buf[i] = (uint8_t)(tag * 31u + page * 7u + i);
}

static int data_is(uint8_t want[SE_DATA_PAGES][SE_PAGE_SIZE])
{
	for (size_t p = 0; p < SE_DATA_PAGES; p++)
		for (size_t i = 0; i < SE_PAGE_SIZE; i++)
			if (mem.img[p][i] != want[p][i])
				return 0;
	return 1;
}

static void snapshot_data(uint8_t out[SE_DATA_PAGES][SE_PAGE_SIZE])
{
	memcpy(out, mem.img, (size_t)SE_DATA_PAGES * SE_PAGE_SIZE);
}

/* Power back on, a new jnl over the same store, recovery. */
static int restart(struct jnl *j)
{
	se_mem_power_on(&mem);
	jnl_init(j, &mem.store);
	return jnl_recover(j);
}

/* Runs script s with content tag; 0 when every call succeeded, else the first error. */
static int run(struct jnl *j, const struct script *s, unsigned tag)
{
	uint8_t buf[SE_PAGE_SIZE];
	int rc = jnl_begin(j);

	for (size_t i = 0; rc == 0 && i < s->n; i++) {
		fill(buf, tag + (unsigned)i, s->page[i]);
		rc = jnl_write(j, s->page[i], buf);
	}
	return rc != 0 ? rc : jnl_commit(j);
}

/* What script s with tag does to the data pages in `img`. */
static void apply_model(uint8_t img[SE_DATA_PAGES][SE_PAGE_SIZE], const struct script *s, unsigned tag)
{
	for (size_t i = 0; i < s->n; i++)
		fill(img[s->page[i]], tag + (unsigned)i, s->page[i]);
}

static size_t distinct_pages(const struct script *s)
{
	size_t d = 0;

	for (size_t i = 0; i < s->n; i++) {
		size_t k = 0;
		while (k < i && s->page[k] != s->page[i])
			k++;
		d += k == i;
	}
	return d;
}

/* A fresh image, recovered; with base != 0 a first transaction already committed over
 * the script's pages and a few others, so "old" is not just the erased image.
 * Fills want_old and want_new (script s with tag 0x40 on top). */
static void setup(struct jnl *j, const struct script *s, int base)
{
	static const struct script other = { "base", 4, { 4, 8, 99, 130 } };

	se_mem_init(&mem);
	assert_int_equal(restart(j), 0);
	if (base) {
		assert_int_equal(run(j, s, 0x10), 0);
		assert_int_equal(run(j, &other, 0x20), 0);
		assert_int_equal(jnl_seq(j), 2);
	}
	snapshot_data(want_old);
	memcpy(want_new, want_old, sizeof(want_new));
	apply_model(want_new, s, 0x40);
}

/* After any recovery the journal must take a new transaction. */
static void assert_usable(struct jnl *j)
{
	static const struct script one = { "one", 1, { 42 } };
	uint32_t seq = jnl_seq(j);
	uint8_t buf[SE_PAGE_SIZE], got[SE_PAGE_SIZE];

	assert_int_equal(run(j, &one, 0x70), 0);
	assert_int_equal(jnl_seq(j), seq + 1);
	fill(buf, 0x70, 42);
	assert_int_equal(jnl_read(j, 42, got), 0);
	assert_memory_equal(got, buf, SE_PAGE_SIZE);
}

/* After a store error the journal takes nothing but recovery. */
static void assert_needs_recovery(struct jnl *j)
{
	uint8_t buf[SE_PAGE_SIZE] = { 0 };

	assert_int_equal(jnl_begin(j), TB_E_JNL_STATE);
	assert_int_equal(jnl_write(j, 0, buf), TB_E_JNL_STATE);
	assert_int_equal(jnl_read(j, 0, buf), TB_E_JNL_STATE);
	assert_int_equal(jnl_commit(j), TB_E_JNL_STATE);
	assert_int_equal(jnl_abort(j), TB_E_JNL_STATE);
}

static void test_sizes(void **state)
{
	(void)state;
	assert_true(sizeof(struct jnl) <= JNL_RAM_MAX);
	assert_int_equal(SE_DATA_PAGES + JNL_AREA_PAGES, SE_PAGE_COUNT);
	assert_int_equal(SE_DATA_PAGES, 246);
	assert_int_equal(SE_IMAGE_SIZE, 32768);
	assert_int_equal(JNL_REC_DONE, SE_PAGE_COUNT - 1);
	assert_int_equal(JNL_SLOT_FIRST + JNL_MAX_PAGES, JNL_REC_COMMIT);
}

static void test_crc32_known(void **state)
{
	const uint8_t check[] = "123456789";
	uint32_t part;

	(void)state;
	/* The CRC-32 check value (IEEE 802.3, as zlib). */
	assert_int_equal(jnl_crc32(0, check, 9), 0xCBF43926u);
	assert_int_equal(jnl_crc32(0, check, 0), 0);
	for (size_t cut = 0; cut <= 9; cut++) {
		part = jnl_crc32(0, check, cut);
		assert_int_equal(jnl_crc32(part, check + cut, 9 - cut), 0xCBF43926u);
	}
}

static void test_mem_store_faults(void **state)
{
	uint8_t a[SE_PAGE_SIZE], b[SE_PAGE_SIZE], got[SE_PAGE_SIZE];
	const struct se_store *st = &mem.store;

	(void)state;
	memset(a, 0xA5, sizeof(a));
	memset(b, 0x5A, sizeof(b));
	se_mem_init(&mem);
	assert_int_equal(st->read(st->ctx, 0, got), 0);
	assert_int_equal(got[0], 0xFF);
	assert_int_equal(st->read(st->ctx, SE_PAGE_COUNT, got), TB_E_STORE);
	assert_int_equal(st->write(st->ctx, SE_PAGE_COUNT, a), TB_E_STORE);

	/* Cut after one write: the second write and all after it change nothing. */
	se_mem_fault_after(&mem, 1, SE_MEM_CUT);
	assert_int_equal(st->write(st->ctx, 1, a), 0);
	assert_int_equal(st->write(st->ctx, 2, a), TB_E_STORE);
	assert_int_equal(st->write(st->ctx, 3, a), TB_E_STORE);
	assert_int_equal(st->sync(st->ctx), TB_E_STORE);
	assert_int_equal(mem.img[1][0], 0xA5);
	assert_int_equal(mem.img[2][0], 0xFF);
	assert_int_equal(mem.img[3][0], 0xFF);
	assert_int_equal(mem.writes, 1);
	se_mem_power_on(&mem);
	assert_int_equal(st->write(st->ctx, 3, a), 0);
	assert_int_equal(st->sync(st->ctx), 0);

	/* Torn: first half new, second half old or erased. */
	se_mem_fault_after(&mem, 0, SE_MEM_TEAR_OLD);
	assert_int_equal(st->write(st->ctx, 1, b), TB_E_STORE);
	assert_int_equal(mem.img[1][0], 0x5A);
	assert_int_equal(mem.img[1][SE_PAGE_SIZE / 2 - 1], 0x5A);
	assert_int_equal(mem.img[1][SE_PAGE_SIZE / 2], 0xA5);
	assert_int_equal(st->write(st->ctx, 4, b), TB_E_STORE);
	se_mem_power_on(&mem);
	se_mem_fault_after(&mem, 0, SE_MEM_TEAR_ERASED);
	assert_int_equal(st->write(st->ctx, 3, b), TB_E_STORE);
	assert_int_equal(mem.img[3][0], 0x5A);
	assert_int_equal(mem.img[3][SE_PAGE_SIZE - 1], 0xFF);

	/* Lost: reports success, changes nothing, power stays on. */
	se_mem_power_on(&mem);
	se_mem_fault_after(&mem, 0, SE_MEM_LOSE);
	assert_int_equal(st->write(st->ctx, 5, b), 0);
	assert_int_equal(mem.img[5][0], 0xFF);
	assert_int_equal(st->write(st->ctx, 5, b), 0);
	assert_int_equal(mem.img[5][0], 0x5A);
}

static void test_commit_and_read(void **state)
{
	const struct script *s = &scripts[0];
	uint8_t buf[SE_PAGE_SIZE], got[SE_PAGE_SIZE];
	struct jnl j;
	size_t w0, s0;

	(void)state;
	se_mem_init(&mem);
	assert_int_equal(restart(&j), 0);
	assert_int_equal(jnl_seq(&j), 0);
	w0 = mem.writes;
	s0 = mem.syncs;
	assert_int_equal(run(&j, s, 0x40), 0);
	/* S slots + commit record + N home pages + done record. */
	assert_int_equal(mem.writes - w0, s->n + 1 + distinct_pages(s) + 1);
	assert_int_equal(mem.syncs - s0, 4);
	assert_int_equal(jnl_seq(&j), 1);
	for (size_t i = 0; i < s->n; i++) {
		fill(buf, 0x40 + (unsigned)i, s->page[i]);
		assert_int_equal(jnl_read(&j, s->page[i], got), 0);
		assert_memory_equal(got, buf, SE_PAGE_SIZE);
		assert_memory_equal(mem.img[s->page[i]], buf, SE_PAGE_SIZE);
	}
	/* Untouched pages are still erased. */
	assert_int_equal(jnl_read(&j, 4, got), 0);
	memset(buf, 0xFF, sizeof(buf));
	assert_memory_equal(got, buf, SE_PAGE_SIZE);
	/* An empty transaction writes nothing and keeps seq. */
	w0 = mem.writes;
	assert_int_equal(jnl_begin(&j), 0);
	assert_int_equal(jnl_commit(&j), 0);
	assert_int_equal(mem.writes, w0);
	assert_int_equal(jnl_seq(&j), 1);
	assert_usable(&j);
}

static void test_staged_reads(void **state)
{
	uint8_t a[SE_PAGE_SIZE], b[SE_PAGE_SIZE], old[SE_PAGE_SIZE], got[SE_PAGE_SIZE];
	struct jnl j;

	(void)state;
	se_mem_init(&mem);
	assert_int_equal(restart(&j), 0);
	fill(a, 1, 5);
	fill(b, 2, 5);
	memcpy(old, mem.img[5], SE_PAGE_SIZE);
	assert_int_equal(jnl_begin(&j), 0);
	assert_int_equal(jnl_write(&j, 5, a), 0);
	assert_int_equal(jnl_read(&j, 5, got), 0);
	assert_memory_equal(got, a, SE_PAGE_SIZE);
	assert_memory_equal(mem.img[5], old, SE_PAGE_SIZE); /* home untouched */
	assert_int_equal(jnl_write(&j, 5, b), 0);
	assert_int_equal(jnl_read(&j, 5, got), 0);
	assert_memory_equal(got, b, SE_PAGE_SIZE);
	/* A page not staged reads from home. */
	assert_int_equal(jnl_write(&j, 6, a), 0);
	assert_int_equal(jnl_read(&j, 7, got), 0);
	assert_memory_equal(got, old, SE_PAGE_SIZE);
	assert_int_equal(jnl_commit(&j), 0);
	assert_int_equal(jnl_read(&j, 5, got), 0);
	assert_memory_equal(got, b, SE_PAGE_SIZE);
	assert_memory_equal(mem.img[5], b, SE_PAGE_SIZE);
	assert_memory_equal(mem.img[6], a, SE_PAGE_SIZE);
}

static void test_abort(void **state)
{
	const struct script *s = &scripts[1];
	uint8_t buf[SE_PAGE_SIZE], got[SE_PAGE_SIZE];
	struct jnl j;

	(void)state;
	setup(&j, s, 1);
	assert_int_equal(jnl_begin(&j), 0);
	for (size_t i = 0; i < s->n; i++) {
		fill(buf, 0x55, s->page[i]);
		assert_int_equal(jnl_write(&j, s->page[i], buf), 0);
	}
	assert_int_equal(jnl_abort(&j), 0);
	assert_true(data_is(want_old));
	assert_int_equal(jnl_seq(&j), 2);
	for (size_t i = 0; i < s->n; i++) {
		assert_int_equal(jnl_read(&j, s->page[i], got), 0);
		assert_memory_equal(got, want_old[s->page[i]], SE_PAGE_SIZE);
	}
	assert_int_equal(jnl_abort(&j), TB_E_JNL_STATE);
	/* The dead slots stay dead across a restart. */
	assert_int_equal(restart(&j), 0);
	assert_true(data_is(want_old));
	assert_int_equal(jnl_seq(&j), 2);
	assert_usable(&j);
}

static void test_clean_restart(void **state)
{
	struct jnl j;
	size_t w0;

	(void)state;
	for (size_t si = 0; si < N_SCRIPTS; si++) {
		setup(&j, &scripts[si], 1);
		assert_int_equal(run(&j, &scripts[si], 0x40), 0);
		assert_true(data_is(want_new));
		w0 = mem.writes;
		assert_int_equal(restart(&j), 0);
		assert_int_equal(mem.writes, w0); /* nothing to finish, nothing written */
		assert_int_equal(jnl_seq(&j), 3);
		assert_true(data_is(want_new));
		assert_int_equal(restart(&j), 0);
		assert_int_equal(mem.writes, w0);
		assert_usable(&j);
	}
}

static void test_call_order(void **state)
{
	uint8_t buf[SE_PAGE_SIZE] = { 0 };
	struct jnl j;

	(void)state;
	se_mem_init(&mem);
	jnl_init(&j, &mem.store);
	/* Before recovery nothing but recovery. */
	assert_int_equal(jnl_begin(&j), TB_E_JNL_STATE);
	assert_int_equal(jnl_read(&j, 0, buf), TB_E_JNL_STATE);
	assert_int_equal(jnl_write(&j, 0, buf), TB_E_JNL_STATE);
	assert_int_equal(jnl_commit(&j), TB_E_JNL_STATE);
	assert_int_equal(jnl_abort(&j), TB_E_JNL_STATE);
	assert_int_equal(jnl_recover(&j), 0);
	/* Idle: no write, commit or abort. */
	assert_int_equal(jnl_write(&j, 0, buf), TB_E_JNL_STATE);
	assert_int_equal(jnl_commit(&j), TB_E_JNL_STATE);
	assert_int_equal(jnl_abort(&j), TB_E_JNL_STATE);
	assert_int_equal(jnl_read(&j, 0, buf), 0);
	/* Open: no second begin; pages outside the data area refused. */
	assert_int_equal(jnl_begin(&j), 0);
	assert_int_equal(jnl_begin(&j), TB_E_JNL_STATE);
	assert_int_equal(jnl_write(&j, SE_DATA_PAGES, buf), TB_E_INVAL);
	assert_int_equal(jnl_write(&j, JNL_REC_COMMIT, buf), TB_E_INVAL);
	assert_int_equal(jnl_write(&j, UINT16_MAX, buf), TB_E_INVAL);
	assert_int_equal(jnl_read(&j, SE_DATA_PAGES, buf), TB_E_INVAL);
	assert_int_equal(jnl_read(&j, JNL_SLOT_FIRST, buf), TB_E_INVAL);
	/* Recovery drops an open transaction. */
	assert_int_equal(jnl_write(&j, 1, buf), 0);
	assert_int_equal(jnl_recover(&j), 0);
	assert_int_equal(jnl_commit(&j), TB_E_JNL_STATE);
	assert_int_equal(mem.img[1][0], 0xFF);
}

static void test_nospace(void **state)
{
	uint8_t buf[SE_PAGE_SIZE], got[SE_PAGE_SIZE];
	struct jnl j;
	size_t w0;

	(void)state;
	setup(&j, &scripts[1], 1);
	assert_int_equal(jnl_begin(&j), 0);
	for (uint16_t p = 0; p < JNL_MAX_PAGES; p++) {
		fill(buf, 0x60, (uint16_t)(10 + p));
		assert_int_equal(jnl_write(&j, (uint16_t)(10 + p), buf), 0);
	}
	w0 = mem.writes;
	fill(buf, 0x61, 30);
	assert_int_equal(jnl_write(&j, 30, buf), TB_E_NOSPACE);
	assert_int_equal(mem.writes, w0);
	assert_true(data_is(want_old));
	/* The transaction is as it was: a staged page can still be replaced, and 30
	 * was not staged. */
	fill(buf, 0x62, 10);
	assert_int_equal(jnl_write(&j, 10, buf), 0);
	assert_int_equal(jnl_read(&j, 30, got), 0);
	assert_memory_equal(got, want_old[30], SE_PAGE_SIZE);
	assert_int_equal(jnl_abort(&j), 0);
	assert_true(data_is(want_old));
	/* And with exactly the maximum a commit goes through. */
	assert_int_equal(run(&j, &scripts[1], 0x40), 0);
	assert_true(data_is(want_new));
}

/* Power faults at every page write of a transaction, on a blank image and over
 * earlier data: afterwards exactly old or new, new exactly when the commit record
 * (write number S) was complete. A torn commit record must read as invalid. */
static void test_tearing_transaction(void **state)
{
	struct jnl j;

	(void)state;
	for (size_t si = 0; si < N_SCRIPTS; si++) {
		const struct script *s = &scripts[si];
		size_t total = s->n + distinct_pages(s) + 2;

		for (int base = 0; base <= 1; base++) {
			uint32_t seq0 = base ? 2 : 0;

			for (size_t f = 0; f < N_POWER_FAULTS; f++) {
				for (size_t k = 0; k <= total; k++) {
					int rc;

					setup(&j, s, base);
					se_mem_fault_after(&mem, k, power_faults[f]);
					rc = run(&j, s, 0x40);
					if (k < total) {
						assert_int_equal(rc, TB_E_STORE);
						assert_needs_recovery(&j);
					} else
						assert_int_equal(rc, 0);
					assert_int_equal(restart(&j), 0);
					if (k > s->n) {
						assert_true(data_is(want_new));
						assert_int_equal(jnl_seq(&j), seq0 + 1);
					} else {
						assert_true(data_is(want_old));
						assert_int_equal(jnl_seq(&j), seq0);
					}
					assert_usable(&j);
				}
			}
		}
	}
}

/* A write the medium drops while reporting success: every one is caught by its
 * read-back, and the outcome is still old or new (new when the commit record was
 * already written). */
static void test_lost_writes(void **state)
{
	struct jnl j;

	(void)state;
	for (size_t si = 0; si < N_SCRIPTS; si++) {
		const struct script *s = &scripts[si];
		size_t total = s->n + distinct_pages(s) + 2;

		for (size_t k = 0; k <= total; k++) {
			int harmless = k >= total;
			int rc;

			setup(&j, s, 1);
			se_mem_fault_after(&mem, k, SE_MEM_LOSE);
			rc = run(&j, s, 0x40);
			if (harmless) {
				assert_int_equal(rc, 0);
				assert_true(data_is(want_new));
			} else {
				assert_int_equal(rc, TB_E_STORE);
				assert_needs_recovery(&j);
			}
			assert_int_equal(restart(&j), 0);
			assert_true(data_is(harmless || k > s->n ? want_new : want_old));
			assert_usable(&j);
		}
	}
}

/* Recovery cut or torn at each of its page writes, up to `depth` times in a row,
 * then a clean recovery: the transaction the commit record names is finished. */
static void recover_with_cuts(const struct script *s, int depth)
{
	struct se_mem saved;
	struct jnl j;
	size_t n_rec = distinct_pages(s) + 1;

	memcpy(&saved, &mem, sizeof(saved));
	for (size_t f = 0; f < N_POWER_FAULTS; f++) {
		for (size_t k = 0; k <= n_rec; k++) {
			int rc;

			memcpy(&mem, &saved, sizeof(mem));
			se_mem_power_on(&mem);
			se_mem_fault_after(&mem, k, power_faults[f]);
			jnl_init(&j, &mem.store);
			rc = jnl_recover(&j);
			assert_int_equal(rc, k < n_rec ? TB_E_STORE : 0);
			if (rc != 0)
				assert_needs_recovery(&j);
			if (depth > 1 && rc != 0) {
				recover_with_cuts(s, depth - 1);
				memcpy(&mem, &saved, sizeof(mem));
				continue;
			}
			assert_int_equal(restart(&j), 0);
			assert_true(data_is(want_new));
			assert_usable(&j);
		}
	}
	memcpy(&mem, &saved, sizeof(mem));
}

static void test_tearing_recovery(void **state)
{
	struct jnl j;

	(void)state;
	for (size_t si = 0; si < N_SCRIPTS; si++) {
		const struct script *s = &scripts[si];
		size_t total = s->n + distinct_pages(s) + 2;

		/* Cuts after the commit record is durable and before the done record is. */
		for (size_t k = s->n + 1; k < total; k++) {
			for (size_t f = 0; f < N_POWER_FAULTS; f++) {
				setup(&j, s, 1);
				se_mem_fault_after(&mem, k, power_faults[f]);
				assert_int_not_equal(run(&j, s, 0x40), 0);
				/* A clean recovery costs N home writes and the done record. */
				memcpy(&snap, &mem, sizeof(snap));
				assert_int_equal(restart(&j), 0);
				assert_int_equal(mem.writes - snap.writes, distinct_pages(s) + 1);
				memcpy(&mem, &snap, sizeof(mem));
				recover_with_cuts(s, si == 0 ? 2 : 1);
			}
		}
	}
}

/* Every single-byte change of a durable, unfinished commit record makes it invalid:
 * recovery then keeps the old data. A damaged done record only makes recovery
 * finish the (already finished) commit again. */
static void test_damaged_records(void **state)
{
	const struct script *s = &scripts[0];
	struct jnl j;

	(void)state;
	setup(&j, s, 1);
	se_mem_fault_after(&mem, s->n + 1, SE_MEM_CUT);
	assert_int_not_equal(run(&j, s, 0x40), 0);
	memcpy(&snap, &mem, sizeof(snap));
	for (size_t i = 0; i < SE_PAGE_SIZE; i++) {
		memcpy(&mem, &snap, sizeof(mem));
		mem.img[JNL_REC_COMMIT][i] ^= 0x01;
		assert_int_equal(restart(&j), 0);
		assert_true(data_is(want_old));
		assert_int_equal(jnl_seq(&j), 2);
	}
	setup(&j, s, 1);
	assert_int_equal(run(&j, s, 0x40), 0);
	memcpy(&snap, &mem, sizeof(snap));
	for (size_t i = 0; i < SE_PAGE_SIZE; i++) {
		memcpy(&mem, &snap, sizeof(mem));
		mem.img[JNL_REC_DONE][i] ^= 0x80;
		assert_int_equal(restart(&j), 0);
		assert_true(data_is(want_new));
		assert_int_equal(jnl_seq(&j), 3);
		assert_memory_equal(mem.img[JNL_REC_DONE], snap.img[JNL_REC_DONE], SE_PAGE_SIZE);
	}
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Seals a hand-made record page as journal.h lays it out: CRC-32 of bytes 0..123,
 * big-endian, in bytes 124..127. */
static void reseal(uint8_t page[SE_PAGE_SIZE])
{
	uint32_t c = jnl_crc32(0, page, SE_PAGE_SIZE - 4);

	for (int i = 0; i < 4; i++)
		page[SE_PAGE_SIZE - 4 + i] = (uint8_t)(c >> (24 - 8 * i));
}

/* The records are laid out as journal.h says, and a record with a valid CRC but a
 * malformed body is no record. */
static void test_record_layout(void **state)
{
	static const struct { size_t at; uint8_t val; } bad[] = {
		{ 0, 'X' },              /* magic */
		{ 4, 'X' },              /* kind */
		{ 4, 'D' },              /* a done record in the commit record's page */
		{ 5, JNL_MAX_PAGES + 1 },
		{ 10, 0x01 },            /* entry 0 home 0x0103: past the data pages */
		{ 11, SE_DATA_PAGES },   /* entry 0 home 246: the first slot */
		{ 17, 3 },               /* entry 1 home 3: the same page as entry 0 */
		{ 28, 0x01 },            /* padding after the entries */
		{ SE_PAGE_SIZE - 5, 0x80 },
	};
	const struct script *s = &scripts[0];
	uint8_t *rec = mem.img[JNL_REC_COMMIT], *done = mem.img[JNL_REC_DONE];
	struct jnl j;

	(void)state;
	setup(&j, s, 1);
	assert_memory_equal(done, "TBJ1D\0\0\0\0\2", 10);
	se_mem_fault_after(&mem, s->n + 1, SE_MEM_CUT);
	assert_int_equal(run(&j, s, 0x40), TB_E_STORE);
	assert_memory_equal(rec, "TBJ1C\3\0\0\0\3", 10);
	for (size_t i = 0; i < s->n; i++) {
		const uint8_t *e = rec + 10 + 6 * i;

		assert_int_equal(e[0] << 8 | e[1], s->page[i]);
		assert_memory_equal(mem.img[JNL_SLOT_FIRST + i], want_new[s->page[i]], SE_PAGE_SIZE);
		assert_int_equal(be32(e + 2), jnl_crc32(0, want_new[s->page[i]], SE_PAGE_SIZE));
	}
	for (size_t i = 10 + 6 * s->n; i < SE_PAGE_SIZE - 4; i++)
		assert_int_equal(rec[i], 0);
	assert_int_equal(be32(rec + SE_PAGE_SIZE - 4), jnl_crc32(0, rec, SE_PAGE_SIZE - 4));
	memcpy(&snap, &mem, sizeof(snap));

	for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
		memcpy(&mem, &snap, sizeof(mem));
		rec[bad[b].at] = bad[b].val;
		reseal(rec);
		assert_int_equal(restart(&j), 0);
		assert_true(data_is(want_old));
		assert_int_equal(jnl_seq(&j), 2);
	}
	/* More entries than a transaction may have, each one well-formed. */
	memcpy(&mem, &snap, sizeof(mem));
	rec[5] = JNL_MAX_PAGES + 1;
	for (size_t i = s->n; i < JNL_MAX_PAGES + 1; i++)
		rec[10 + 6 * i + 1] = (uint8_t)(20 + i);
	reseal(rec);
	assert_int_equal(restart(&j), 0);
	assert_true(data_is(want_old));
	/* A hand-made done record for seq 3 is taken as one (the commit is then
	 * considered finished, its slots ignored) ... */
	memcpy(&mem, &snap, sizeof(mem));
	done[9] = 3;
	reseal(done);
	assert_int_equal(restart(&j), 0);
	assert_true(data_is(want_old));
	assert_int_equal(jnl_seq(&j), 3);
	/* ... but not when it claims entries. */
	memcpy(&mem, &snap, sizeof(mem));
	done[5] = 1;
	done[9] = 3;
	reseal(done);
	assert_int_equal(restart(&j), 0);
	assert_true(data_is(want_new));
	assert_int_equal(jnl_seq(&j), 3);
}

/* A durable commit record over a slot that no longer matches cannot be finished:
 * recovery says so, writes no home page, and the journal stays closed. */
static void test_corrupt_slot(void **state)
{
	const struct script *s = &scripts[1];
	struct jnl j;

	(void)state;
	setup(&j, s, 1);
	se_mem_fault_after(&mem, s->n + 1, SE_MEM_CUT);
	assert_int_not_equal(run(&j, s, 0x40), 0);
	mem.img[JNL_SLOT_FIRST + 5][17] ^= 0x04;
	assert_int_equal(restart(&j), TB_E_JOURNAL);
	assert_true(data_is(want_old));
	assert_needs_recovery(&j);
	assert_int_equal(jnl_recover(&j), TB_E_JOURNAL);
}

/* A done record that is neither the commit record's nor the one before it (a page
 * restored from an old copy of the image) is a journal that cannot be trusted. */
static void test_records_out_of_step(void **state)
{
	const struct script *s = &scripts[0];
	uint8_t done1[SE_PAGE_SIZE];
	struct jnl j;

	(void)state;
	setup(&j, s, 0);
	assert_int_equal(run(&j, s, 0x40), 0);
	assert_int_equal(jnl_seq(&j), 1);
	memcpy(done1, mem.img[JNL_REC_DONE], SE_PAGE_SIZE);
	setup(&j, s, 1);
	se_mem_fault_after(&mem, s->n + 1, SE_MEM_CUT);
	assert_int_equal(run(&j, s, 0x40), TB_E_STORE);
	memcpy(mem.img[JNL_REC_DONE], done1, SE_PAGE_SIZE);
	assert_int_equal(restart(&j), TB_E_JOURNAL);
	assert_true(data_is(want_old));
	assert_needs_recovery(&j);
}

/* A slot that changes between staging and commit: the commit refuses before its
 * record, so the old data stands. */
static void test_slot_checked_before_commit(void **state)
{
	const struct script *s = &scripts[0];
	uint8_t buf[SE_PAGE_SIZE];
	struct jnl j;

	(void)state;
	setup(&j, s, 1);
	assert_int_equal(jnl_begin(&j), 0);
	for (size_t i = 0; i < s->n; i++) {
		fill(buf, 0x40 + (unsigned)i, s->page[i]);
		assert_int_equal(jnl_write(&j, s->page[i], buf), 0);
	}
	mem.img[JNL_SLOT_FIRST + 1][0] ^= 0x01;
	assert_int_equal(jnl_commit(&j), TB_E_STORE);
	assert_true(data_is(want_old));
	assert_needs_recovery(&j);
	assert_int_equal(jnl_recover(&j), 0);
	assert_true(data_is(want_old));
	assert_int_equal(jnl_seq(&j), 2);
	assert_usable(&j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_crc32_known),
		cmocka_unit_test(test_mem_store_faults),
		cmocka_unit_test(test_commit_and_read),
		cmocka_unit_test(test_staged_reads),
		cmocka_unit_test(test_abort),
		cmocka_unit_test(test_clean_restart),
		cmocka_unit_test(test_call_order),
		cmocka_unit_test(test_nospace),
		cmocka_unit_test(test_tearing_transaction),
		cmocka_unit_test(test_lost_writes),
		cmocka_unit_test(test_tearing_recovery),
		cmocka_unit_test(test_damaged_records),
		cmocka_unit_test(test_record_layout),
		cmocka_unit_test(test_corrupt_slot),
		cmocka_unit_test(test_records_out_of_step),
		cmocka_unit_test(test_slot_checked_before_commit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
