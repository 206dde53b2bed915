/* test_store_file.c - the file-backed page store: create/open rules, page I/O,
 * and the commit journal running over it across a close and reopen. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err.h"
#include "io/store_file.h"
#include "journal.h"
#include "vec.h"

static char dir[64];
static char path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/tb_store_XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/se.img", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

static void test_create_open(void **state)
{
	struct store_file sf;
	uint8_t page[SE_PAGE_SIZE], back[SE_PAGE_SIZE];
	struct stat st;
	(void)state;

	assert_int_equal(store_file_open(&sf, path), TB_E_IO); /* missing */
	assert_int_equal(store_file_create(&sf, path), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, SE_IMAGE_SIZE);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(sf.store.read(sf.store.ctx, 7, back), 0);
	for (size_t i = 0; i < sizeof(back); i++)
		assert_int_equal(back[i], 0xFF); /* erased */
	for (size_t i = 0; i < sizeof(page); i++)
		page[i] = (uint8_t)i;
	assert_int_equal(sf.store.write(sf.store.ctx, SE_PAGE_COUNT - 1, page), 0);
	assert_int_equal(sf.store.sync(sf.store.ctx), 0);
	assert_int_equal(sf.store.write(sf.store.ctx, SE_PAGE_COUNT, page), TB_E_STORE);
	store_file_close(&sf);

	struct store_file again;
	assert_int_equal(store_file_create(&again, path), TB_E_IO); /* never overwrites */
	assert_int_equal(store_file_open(&again, path), 0);
	assert_int_equal(again.store.read(again.store.ctx, SE_PAGE_COUNT - 1, back), 0);
	assert_memory_equal(page, back, sizeof(page));
	store_file_close(&again);

	/* A file of the wrong size is not an image. */
	assert_int_equal(truncate(path, SE_IMAGE_SIZE - 1), 0);
	assert_int_equal(store_file_open(&again, path), TB_E_IO);
}

static void test_journal_over_file(void **state)
{
	struct store_file sf;
	struct jnl j;
	uint8_t page[SE_PAGE_SIZE], back[SE_PAGE_SIZE];
	(void)state;

	unlink(path);
	assert_int_equal(store_file_create(&sf, path), 0);
	jnl_init(&j, &sf.store);
	assert_int_equal(jnl_recover(&j), 0);
	memset(page, 0x5A, sizeof(page));
	assert_int_equal(jnl_begin(&j), 0);
	assert_int_equal(jnl_write(&j, 3, page), 0);
	assert_int_equal(jnl_commit(&j), 0);
	store_file_close(&sf);

	assert_int_equal(store_file_open(&sf, path), 0);
	jnl_init(&j, &sf.store);
	assert_int_equal(jnl_recover(&j), 0);
	assert_int_equal(jnl_seq(&j), 1);
	assert_int_equal(jnl_read(&j, 3, back), 0);
	assert_memory_equal(page, back, sizeof(page));
	store_file_close(&sf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_open),
		cmocka_unit_test(test_journal_over_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
