/* journal.c - the commit journal over a page store (layout and protocol in journal.h).
 * What stays true: a home page changes only while a valid commit record naming it is
 * on the medium, and a commit record is written only over slots that match its CRCs;
 * so recovery can always finish what the record names, or there is nothing to finish. */
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "journal.h"

#define JNL_CRC_AT (SE_PAGE_SIZE - 4) /* the record's own CRC-32 sits in the last 4 bytes */
#define JNL_KIND_COMMIT 0x43 /* 'C' */
#define JNL_KIND_DONE 0x44   /* 'D' */
#define JNL_MAGIC_LEN 4

static const uint8_t jnl_magic[JNL_MAGIC_LEN] = { 'T', 'B', 'J', '1' };

_Static_assert(JNL_MAGIC_LEN + 1 + 1 + 4 + 6 * JNL_MAX_PAGES <= JNL_CRC_AT,
	       "a commit record fits one page");
_Static_assert(SE_DATA_PAGES > 0 && JNL_REC_DONE < SE_PAGE_COUNT, "journal area fits");
_Static_assert(sizeof(struct jnl) <= JNL_RAM_MAX, "struct jnl within its stated size");

/* A record page, parsed. */
struct jnl_rec {
	uint8_t kind;
	uint8_t count;
	uint32_t seq;
	uint16_t home[JNL_MAX_PAGES];
	uint32_t crc[JNL_MAX_PAGES];
};

uint32_t jnl_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	for (size_t i = 0; i < n; i++) {
		crc ^= p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
	}
	return ~crc;
}

/* The CRC-32 of a slot's content, as the commit record lists it. */
static uint32_t jnl_slot_crc(const uint8_t buf[SE_PAGE_SIZE])
{
	return jnl_crc32(0, buf, SE_PAGE_SIZE);
}

/* Plain data comparison (no secrets here). */
static int jnl_same(const uint8_t *a, const uint8_t *b, size_t n)
{
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (uint8_t)(a[i] ^ b[i]);
	return d == 0;
}

static int jnl_fail(struct jnl *j, int rc)
{
	j->state = JNL_NEED_RECOVER;
	j->count = 0;
	return rc;
}

static int jnl_sync(const struct jnl *j)
{
	return j->st->sync(j->st->ctx) == 0 ? 0 : TB_E_STORE;
}

static int jnl_get(const struct jnl *j, uint16_t page, uint8_t buf[SE_PAGE_SIZE])
{
	return j->st->read(j->st->ctx, page, buf) == 0 ? 0 : TB_E_STORE;
}

/* Every page write of the journal: write, then read back. A write the medium
 * silently dropped or garbled is caught here, before anything is built on it (a
 * staged read, a commit record, a done record). */
static int jnl_put(const struct jnl *j, uint16_t page, const uint8_t buf[SE_PAGE_SIZE])
{
	uint8_t back[SE_PAGE_SIZE];

	if (j->st->write(j->st->ctx, page, buf) != 0 || jnl_get(j, page, back) != 0 ||
	    !jnl_same(buf, back, SE_PAGE_SIZE))
		return TB_E_STORE;
	return 0;
}

/* Index of page among the staged ones, or count when it is not staged. */
static uint8_t jnl_find(const struct jnl *j, uint16_t page)
{
	uint8_t i;

	for (i = 0; i < j->count; i++)
		if (j->home[i] == page)
			break;
	return i;
}

static uint16_t jnl_slot(uint8_t i)
{
	return (uint16_t)(JNL_SLOT_FIRST + i);
}

/* Encodes a record of the first `count` staged entries and writes it at `at`. */
static int jnl_rec_put(const struct jnl *j, uint16_t at, uint8_t kind, uint32_t seq, uint8_t count)
{
	uint8_t page[SE_PAGE_SIZE];
	struct wr w = wr_init(page, JNL_CRC_AT);
	struct wr t = wr_init(page + JNL_CRC_AT, 4);

	if (wr_bytes(&w, jnl_magic, JNL_MAGIC_LEN) != 0 || wr_u8(&w, kind) != 0 ||
	    wr_u8(&w, count) != 0 || wr_u32be(&w, seq) != 0)
		return TB_E_INTERNAL;
	for (uint8_t i = 0; i < count; i++)
		if (wr_u16be(&w, j->home[i]) != 0 || wr_u32be(&w, j->crc[i]) != 0)
			return TB_E_INTERNAL;
	if (wr_fill(&w, 0, wr_room(&w)) != 0 || wr_u32be(&t, jnl_crc32(0, page, JNL_CRC_AT)) != 0)
		return TB_E_INTERNAL;
	return jnl_put(j, at, page);
}

/* Parses a record page of `kind`. TB_E_JOURNAL for anything but a whole, well-formed
 * record of that kind: a torn, erased or never-written page fails its CRC or its form. */
static int jnl_rec_parse(const uint8_t page[SE_PAGE_SIZE], uint8_t kind, struct jnl_rec *out)
{
	struct rd r = rd_init(page, JNL_CRC_AT);
	struct rd t = rd_init(page + JNL_CRC_AT, 4);
	const uint8_t *magic;
	struct jnl_rec rec = { 0 };
	uint32_t crc;
	uint8_t z;

	if (rd_u32be(&t, &crc) != 0 || crc != jnl_crc32(0, page, JNL_CRC_AT))
		return TB_E_JOURNAL;
	if (rd_bytes(&r, JNL_MAGIC_LEN, &magic) != 0 || !jnl_same(magic, jnl_magic, JNL_MAGIC_LEN) ||
	    rd_u8(&r, &rec.kind) != 0 || rd_u8(&r, &rec.count) != 0 || rd_u32be(&r, &rec.seq) != 0)
		return TB_E_JOURNAL;
	if (rec.kind != kind || rec.count > JNL_MAX_PAGES ||
	    (kind == JNL_KIND_DONE && rec.count != 0))
		return TB_E_JOURNAL;
	for (uint8_t i = 0; i < rec.count; i++) {
		if (rd_u16be(&r, &rec.home[i]) != 0 || rd_u32be(&r, &rec.crc[i]) != 0 ||
		    rec.home[i] >= SE_DATA_PAGES)
			return TB_E_JOURNAL;
		for (uint8_t k = 0; k < i; k++)
			if (rec.home[k] == rec.home[i])
				return TB_E_JOURNAL;
	}
	while (rd_left(&r) > 0)
		if (rd_u8(&r, &z) != 0 || z != 0)
			return TB_E_JOURNAL;
	*out = rec;
	return 0;
}

/* Reads the record at `at`: 1 when it holds a valid record of `kind`, 0 when not. */
static int jnl_rec_load(const struct jnl *j, uint16_t at, uint8_t kind, struct jnl_rec *rec)
{
	uint8_t page[SE_PAGE_SIZE];
	int rc;

	if ((rc = jnl_get(j, at, page)) != 0)
		return rc;
	return jnl_rec_parse(page, kind, rec) == 0;
}

/* Every staged slot matches the CRC the record (or the RAM table) holds for it. */
static int jnl_check_slots(const struct jnl *j)
{
	uint8_t buf[SE_PAGE_SIZE];
	int rc;

	for (uint8_t i = 0; i < j->count; i++) {
		if ((rc = jnl_get(j, jnl_slot(i), buf)) != 0)
			return rc;
		if (jnl_slot_crc(buf) != j->crc[i])
			return TB_E_JOURNAL;
	}
	return 0;
}

/* The commit record for seq is durable and its slots were checked just before:
 * copy the slots home, then record it done. Idempotent, so a cut anywhere in here
 * is finished by running it again. */
static int jnl_apply(struct jnl *j, uint32_t seq)
{
	uint8_t buf[SE_PAGE_SIZE];
	int rc;

	for (uint8_t i = 0; i < j->count; i++) {
		if ((rc = jnl_get(j, jnl_slot(i), buf)) != 0)
			return jnl_fail(j, rc);
		if ((rc = jnl_put(j, j->home[i], buf)) != 0)
			return jnl_fail(j, rc);
	}
	if ((rc = jnl_sync(j)) != 0 || (rc = jnl_rec_put(j, JNL_REC_DONE, JNL_KIND_DONE, seq, 0)) != 0 ||
	    (rc = jnl_sync(j)) != 0)
		return jnl_fail(j, rc);
	j->seq = seq;
	j->count = 0;
	j->state = JNL_IDLE;
	return 0;
}

void jnl_init(struct jnl *j, const struct se_store *st)
{
	*j = (struct jnl){ .st = st, .state = JNL_NEED_RECOVER };
}

int jnl_recover(struct jnl *j)
{
	struct jnl_rec c, d;
	int have_c, have_d, rc;

	j->state = JNL_NEED_RECOVER;
	j->count = 0;
	if ((have_c = jnl_rec_load(j, JNL_REC_COMMIT, JNL_KIND_COMMIT, &c)) < 0)
		return have_c;
	if ((have_d = jnl_rec_load(j, JNL_REC_DONE, JNL_KIND_DONE, &d)) < 0)
		return have_d;
	if (!have_c || (have_d && d.seq == c.seq)) {
		/* Nothing durable is left unfinished; any staged slots are dead. */
		j->seq = have_c ? c.seq : have_d ? d.seq : 0;
		j->state = JNL_IDLE;
		return 0;
	}
	/* A commit record is only ever written right after the done record before it. */
	if (have_d && d.seq != c.seq - 1u)
		return TB_E_JOURNAL;
	memcpy(j->home, c.home, sizeof(j->home));
	memcpy(j->crc, c.crc, sizeof(j->crc));
	j->count = c.count;
	/* Check all before writing any, so a damaged journal is not half applied. */
	if ((rc = jnl_check_slots(j)) != 0)
		return jnl_fail(j, rc);
	return jnl_apply(j, c.seq);
}

int jnl_begin(struct jnl *j)
{
	if (j->state != JNL_IDLE)
		return TB_E_JNL_STATE;
	j->count = 0;
	j->state = JNL_OPEN;
	return 0;
}

int jnl_write(struct jnl *j, uint16_t page, const uint8_t buf[SE_PAGE_SIZE])
{
	uint8_t i;

	if (page >= SE_DATA_PAGES)
		return TB_E_INVAL;
	if (j->state != JNL_OPEN)
		return TB_E_JNL_STATE;
	i = jnl_find(j, page);
	if (i == JNL_MAX_PAGES)
		return TB_E_NOSPACE;
	if (jnl_put(j, jnl_slot(i), buf) != 0)
		return jnl_fail(j, TB_E_STORE);
	j->home[i] = page;
	j->crc[i] = jnl_slot_crc(buf);
	if (i == j->count)
		j->count++;
	return 0;
}

int jnl_read(struct jnl *j, uint16_t page, uint8_t buf[SE_PAGE_SIZE])
{
	uint8_t tmp[SE_PAGE_SIZE];
	uint8_t i;
	int rc;

	if (page >= SE_DATA_PAGES)
		return TB_E_INVAL;
	if (j->state != JNL_IDLE && j->state != JNL_OPEN)
		return TB_E_JNL_STATE;
	i = jnl_find(j, page);
	if ((rc = jnl_get(j, i < j->count ? jnl_slot(i) : page, tmp)) != 0)
		return rc;
	memcpy(buf, tmp, SE_PAGE_SIZE);
	return 0;
}

int jnl_commit(struct jnl *j)
{
	uint32_t seq = j->seq + 1u;
	int rc;

	if (j->state != JNL_OPEN)
		return TB_E_JNL_STATE;
	if (j->count == 0) {
		j->state = JNL_IDLE;
		return 0;
	}
	/* A slot that does not match is a staging write that did not take: nothing is
	 * durable yet, so this is a store failure and the old data stands. */
	if (jnl_sync(j) != 0 || jnl_check_slots(j) != 0)
		return jnl_fail(j, TB_E_STORE);
	if ((rc = jnl_rec_put(j, JNL_REC_COMMIT, JNL_KIND_COMMIT, seq, j->count)) != 0 ||
	    (rc = jnl_sync(j)) != 0)
		return jnl_fail(j, rc);
	return jnl_apply(j, seq);
}

int jnl_abort(struct jnl *j)
{
	if (j->state != JNL_OPEN)
		return TB_E_JNL_STATE;
	j->count = 0;
	j->state = JNL_IDLE;
	return 0;
}

uint32_t jnl_seq(const struct jnl *j)
{
	return j->seq;
}
