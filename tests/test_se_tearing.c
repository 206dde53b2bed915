/* test_se_tearing.c - power cuts through every persistent operation of the se. Each
 * operation is first run cleanly to learn its page writes W and its new image; then,
 * from the same starting point, it is run again with the power cut before write k
 * (k = 0 .. W-1), the write torn (old or erased second half), or the write silently
 * lost, for every k. After the restart (se_init on the same store) the data pages must
 * be exactly the old or exactly the new image, the purse's counter must have moved iff
 * its balance did, and a success status word must only ever have left with the new
 * image durable. */
#include "se_rig.h"

#include "crypto.h"
#include "se_int.h"

#define CL SE_IF_CONTACTLESS
#define HOST SE_IF_HOST

static struct rig saved;
static uint8_t img_old[SE_DATA_PAGES][SE_PAGE_SIZE];
static uint8_t img_new[SE_DATA_PAGES][SE_PAGE_SIZE];
static uint8_t ea_cmd[64];
static size_t ea_len;

struct op {
	const char *name;
	void (*setup)(void);
	uint16_t (*run)(void);  /* returns the status word of the operation's response */
	uint16_t ok;            /* the status word that says "done" */
	int admin;              /* runs on the store, not through the running se */
};

static void be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t send(enum se_iface ifc, uint8_t ins, uint8_t p1, const uint8_t *data, size_t n)
{
	uint8_t cmd[300] = { 0x80, ins, p1, 0x00 };
	size_t len = 4;

	if (n > 0) {
		cmd[len++] = (uint8_t)n;
		memcpy(cmd + len, data, n);
		len += n;
	}
	cmd[len++] = 0x00;
	return rig_cmd(ifc, cmd, len);
}

static uint16_t send_u32(enum se_iface ifc, uint8_t ins, uint32_t v)
{
	uint8_t d[4];

	be32(d, v);
	return send(ifc, ins, 0, d, 4);
}

static void ticket(uint8_t t[21], uint8_t id, uint8_t uses)
{
	memset(t, 0, 21);
	t[7] = id;
	be32(t + 8, 0x1001);
	be32(t + 12, RIG_NOW - 10);
	be32(t + 16, RIG_NOW + 1000);
	t[20] = uses;
}

static void flag(uint8_t t[SE_FLAG_LEN])
{
	memset(t, 0x5A, SE_FLAG_LEN); /* the se stores the signature, it does not check it */
	t[0] = 0x01;
	memcpy(t + 1, rig_serial, 8);
	be32(t + 13, RIG_NOW + 1000);
}

/* A personalised se with money, a ticket, a flag and a personal-auth key; the server
 * in session on the host interface, a reader on contactless. */
static void setup_wallet(void)
{
	uint8_t t[SE_FLAG_LEN], pa[32];

	rig_personalised();
	assert_int_equal(rig_select_wallet(HOST), SW_OK);
	assert_int_equal(rig_open_server(HOST, 0x33), SW_OK);
	assert_int_equal(rig_select_wallet(CL), SW_OK);
	assert_int_equal(rig_open_reader(CL, 0x33), SW_OK);
	assert_int_equal(send_u32(HOST, 0x32, 500), SW_OK);
	ticket(t, 1, 3);
	assert_int_equal(send(HOST, 0x40, 0, t, 21), SW_OK);
	flag(t);
	assert_int_equal(send(HOST, 0x64, 0, t, SE_FLAG_LEN), SW_OK);
	memset(pa, 0x77, sizeof(pa));
	assert_int_equal(send(HOST, 0x60, 0, pa, 32), SW_OK);
}

static uint16_t run_credit(void) { return send_u32(HOST, 0x32, 100); }
static uint16_t run_debit(void) { return send_u32(CL, 0x34, 120); }

static uint16_t run_ticket_store(void)
{
	uint8_t t[21];

	ticket(t, 7, 2);
	return send(HOST, 0x40, 0, t, 21);
}

static uint16_t run_ticket_consume(void)
{
	uint8_t q[12] = { 0, 0, 0, 0, 0, 0, 0, 1, 0x00, 0x00, 0x10, 0x01 };

	return send(CL, 0x46, 0, q, 12);
}

static uint16_t run_ticket_delete(void)
{
	uint8_t id[8] = { 0, 0, 0, 0, 0, 0, 0, 1 };

	return send(HOST, 0x48, 0, id, 8);
}

static uint16_t run_flag_set(void)
{
	uint8_t t[SE_FLAG_LEN];

	flag(t);
	t[20] ^= 0xFF; /* another nonce */
	return send(HOST, 0x64, 0, t, SE_FLAG_LEN);
}

static uint16_t run_flag_consume(void)
{
	uint8_t nonce[16];

	memset(nonce, 0x5A, sizeof(nonce));
	return send(CL, 0x68, 0, nonce, 16);
}

static uint16_t run_lock_server(void) { return send(HOST, 0x90, 0, NULL, 0); }
static uint16_t run_unlock(void) { return send(HOST, 0x92, 0, NULL, 0); }

static void setup_locked(void)
{
	setup_wallet();
	assert_int_equal(send(HOST, 0x90, 0, NULL, 0), SW_OK);
}

static void setup_phone(void)
{
	setup_wallet();
	assert_int_equal(rig_select_wallet(HOST), SW_OK); /* the phone itself, no session */
}

static uint16_t run_lock_phone(void) { return send(HOST, 0x90, 0, NULL, 0); }

static uint16_t run_disable(void)
{
	static const uint8_t bits[2] = { 0x00, 0x03 };

	return send(HOST, 0x94, 0, bits, 2);
}

static uint16_t run_pauth_set(void)
{
	uint8_t pa[32];

	memset(pa, 0x31, sizeof(pa));
	return send(HOST, 0x60, 0, pa, 32);
}

static uint16_t run_pauth_clear(void) { return send(HOST, 0x60, 1, NULL, 0); }

static uint16_t run_relay_grant(void)
{
	uint8_t d[8];

	be32(d, 0x3001);
	be32(d + 4, RIG_NOW + 100);
	return send(HOST, 0x6C, 1, d, 8);
}

static void setup_permit(void)
{
	setup_wallet();
	assert_int_equal(run_relay_grant(), SW_OK);
	assert_int_equal(rig_select_wallet(HOST), SW_OK);
}

static uint16_t run_relay_arm_permit(void)
{
	uint8_t d[4];

	be32(d, 0x3001);
	return send(HOST, 0x6C, 2, d, 4);
}

/* INITIALIZE UPDATE: the sequence counter. */
static uint16_t run_init_update(void)
{
	return rig_raw_hex(CL, "8050020008 1122334455667788 00");
}

/* Runs INITIALIZE UPDATE with our host and keeps its EXTERNAL AUTHENTICATE in ea_cmd,
 * one byte changed when bad. */
static void prepare_auth(int bad)
{
	uint8_t challenge[8] = { 9, 8, 7, 6, 5, 4, 3, 2 };
	struct scp_host_config hc;
	struct scp_host h;
	struct scp_keys k;
	struct wr w = wr_init(ea_cmd, sizeof(ea_cmd));

	rig_reader_keys(&k);
	memset(&hc, 0, sizeof(hc));
	memset(&h, 0, sizeof(h));
	hc.keys = &k;
	hc.host_challenge = challenge;
	hc.host_challenge_len = 8;
	hc.kvn = RIG_READER_KVN;
	hc.level = 0x33;
	hc.mode = SCP_MODE_S8;
	assert_int_equal(scp_host_begin(&h, &hc, &w), 0);
	assert_int_equal(rig_raw(CL, ea_cmd, w.len), SW_OK);
	w = wr_init(ea_cmd, sizeof(ea_cmd));
	assert_int_equal(scp_host_init_update(&h, R.resp, R.n + 2, &w), 0);
	ea_len = w.len;
	if (bad)
		ea_cmd[6] ^= 0x40;
	R.open[CL] = 0;
}

static uint16_t run_auth(void) { return rig_raw(CL, ea_cmd, ea_len); }

static void setup_auth_fail(void)
{
	setup_wallet();
	prepare_auth(1);
}

static void setup_auth_lockout(void)
{
	rig_personalised();
	assert_int_equal(se_configure(&R.mem.store, SE_DEFAULT_MAX_BALANCE, 2), 0);
	rig_start();
	prepare_auth(1);
	assert_int_equal(run_auth(), SW_AUTH_FAILED);
	prepare_auth(1);
}

static void setup_auth_clears(void)
{
	setup_wallet();
	prepare_auth(1);
	assert_int_equal(run_auth(), SW_AUTH_FAILED);
	prepare_auth(0);
}

/* PUT KEY from the server's session on the ISD: a new reader set. */
static uint8_t put_key_apdu[128];
static size_t put_key_n;

static void build_put_key(uint8_t p1, uint8_t kvn, const struct scp_keys *kek)
{
	static const uint8_t ones[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	uint8_t key[16], iv[16] = { 0 }, kcv[16];
	size_t n = 6;

	memcpy(put_key_apdu, "\x80\xD8\x00\x81\x00", 5);
	put_key_apdu[2] = p1;
	put_key_apdu[5] = kvn;
	for (int i = 0; i < 3; i++) {
		memset(key, 0x61 + i, sizeof(key));
		put_key_apdu[n++] = 0x88;
		put_key_apdu[n++] = 0x11;
		put_key_apdu[n++] = 0x10;
		assert_int_equal(crypto_aes_cbc_encrypt(kek->dek, kek->len, iv, key, 16, put_key_apdu + n), 0);
		n += 16;
		assert_int_equal(crypto_aes_ecb_encrypt(key, 16, ones, kcv), 0);
		put_key_apdu[n++] = 0x03;
		memcpy(put_key_apdu + n, kcv, 3);
		n += 3;
	}
	put_key_apdu[4] = (uint8_t)(n - 5);
	put_key_apdu[n++] = 0x00;
	put_key_n = n;
}

static void setup_put_key(void)
{
	struct scp_keys k;

	setup_wallet();
	rig_server_keys(&k);
	assert_int_equal(rig_select(HOST, se_isd_aid, SE_ISD_AID_LEN), SW_OK);
	assert_int_equal(rig_open_aid(HOST, RIG_SERVER_KVN, &k, 0x33, se_isd_aid, SE_ISD_AID_LEN), SW_OK);
	build_put_key(0x00, 0x33, &k);
}

static void setup_put_key_perso(void)
{
	struct scp_keys k;

	rig_blank();
	rig_default_keys(&k);
	assert_int_equal(rig_open_aid(HOST, SE_DEFAULT_KVN, &k, 0x33, se_isd_aid, SE_ISD_AID_LEN), SW_OK);
	build_put_key(0x00, 0x30, &k);
}

static uint16_t run_put_key(void) { return rig_cmd(HOST, put_key_apdu, put_key_n); }

/* Personalisation through its own journal (no se running). */
static uint16_t run_admin_keyset(void)
{
	struct scp_keys k;

	rig_keys(&k, 24, 0x33);
	return se_put_keyset(&R.mem.store, 0x05, SE_ROLE_READER, &k) == 0 ? SW_OK : SW_MEMORY_FAILURE;
}

static uint16_t run_admin_configure(void)
{
	return se_configure(&R.mem.store, 9999, 7) == 0 ? SW_OK : SW_MEMORY_FAILURE;
}

static const struct op ops[] = {
	{ "credit", setup_wallet, run_credit, SW_OK, 0 },
	{ "debit", setup_wallet, run_debit, SW_OK, 0 },
	{ "ticket store", setup_wallet, run_ticket_store, SW_OK, 0 },
	{ "ticket consume", setup_wallet, run_ticket_consume, SW_OK, 0 },
	{ "ticket delete", setup_wallet, run_ticket_delete, SW_OK, 0 },
	{ "flag set", setup_wallet, run_flag_set, SW_OK, 0 },
	{ "flag consume", setup_wallet, run_flag_consume, SW_OK, 0 },
	{ "lock (server)", setup_wallet, run_lock_server, SW_OK, 0 },
	{ "lock (phone)", setup_phone, run_lock_phone, SW_OK, 0 },
	{ "unlock", setup_locked, run_unlock, SW_OK, 0 },
	{ "disable functions", setup_wallet, run_disable, SW_OK, 0 },
	{ "personal-auth set", setup_wallet, run_pauth_set, SW_OK, 0 },
	{ "personal-auth clear", setup_wallet, run_pauth_clear, SW_OK, 0 },
	{ "relay permit", setup_wallet, run_relay_grant, SW_OK, 0 },
	{ "relay arm with permit", setup_permit, run_relay_arm_permit, SW_OK, 0 },
	{ "sequence counter", setup_wallet, run_init_update, SW_OK, 0 },
	{ "failed-auth counter", setup_auth_fail, run_auth, SW_AUTH_FAILED, 0 },
	{ "key set lockout", setup_auth_lockout, run_auth, SE_SW_KEYSET_LOCKED, 0 },
	{ "auth clears failures", setup_auth_clears, run_auth, SW_OK, 0 },
	{ "put key", setup_put_key, run_put_key, SW_OK, 0 },
	{ "put key (personalisation)", setup_put_key_perso, run_put_key, SW_OK, 0 },
	{ "admin key set", setup_wallet, run_admin_keyset, SW_OK, 1 },
	{ "admin configure", setup_wallet, run_admin_configure, SW_OK, 1 },
};

static const enum se_mem_fault faults[] = { SE_MEM_CUT, SE_MEM_TEAR_OLD, SE_MEM_TEAR_ERASED,
					    SE_MEM_LOSE };

static int data_is(uint8_t want[SE_DATA_PAGES][SE_PAGE_SIZE])
{
	return rig_same(&R.mem.img[0][0], &want[0][0], sizeof(img_old));
}

/* The purse's counter moved iff its balance did; key set counters never go back. */
static void check_consistent(const struct se_image *old, const struct se_image *now)
{
	assert_true(now->tx_counter == old->tx_counter || now->tx_counter == old->tx_counter + 1);
	assert_int_equal(now->tx_counter != old->tx_counter, now->balance != old->balance);
	assert_true(now->balance <= now->max_balance);
	for (unsigned s = 0; s < SE_KEYSET_MAX; s++)
		if (old->ks[s].present && now->ks[s].present && old->ks[s].kvn == now->ks[s].kvn)
			assert_true(now->ks[s].counter >= old->ks[s].counter);
	assert_int_equal(img_check(now), 0);
}

static void assert_images_equal(const struct se_image *a, const struct se_image *b)
{
	assert_int_equal(a->balance, b->balance);
	assert_int_equal(a->tx_counter, b->tx_counter);
	assert_int_equal(a->locked, b->locked);
	assert_int_equal(a->disabled, b->disabled);
	assert_int_equal(a->permit, b->permit);
	assert_int_equal(a->pauth, b->pauth);
	assert_int_equal(a->flag, b->flag);
	assert_int_equal(a->personalised, b->personalised);
	for (unsigned s = 0; s < SE_KEYSET_MAX; s++) {
		assert_int_equal(a->ks[s].present, b->ks[s].present);
		assert_int_equal(a->ks[s].kvn, b->ks[s].kvn);
		assert_int_equal(a->ks[s].counter, b->ks[s].counter);
		assert_int_equal(a->ks[s].failures, b->ks[s].failures);
		assert_int_equal(a->ks[s].locked, b->ks[s].locked);
	}
	for (unsigned i = 0; i < SE_TICKET_MAX; i++) {
		assert_int_equal(a->tickets[i].used, b->tickets[i].used);
		assert_int_equal(a->tickets[i].uses, b->tickets[i].uses);
	}
}

static void run_op(const struct op *op)
{
	size_t w0, writes, n_old = 0, n_new = 0;
	struct se_image old_img;

	op->setup();
	saved = R;
	old_img = R.se.img;
	memcpy(img_old, R.mem.img, sizeof(img_old));
	w0 = R.mem.writes;
	assert_int_equal(op->run(), op->ok);
	writes = R.mem.writes - w0;
	memcpy(img_new, R.mem.img, sizeof(img_new));
	assert_true(writes > 0);
	assert_false(data_is(img_old));

	for (size_t f = 0; f < sizeof(faults) / sizeof(faults[0]); f++) {
		for (size_t k = 0; k < writes; k++) {
			uint16_t sw;

			R = saved;
			se_mem_fault_after(&R.mem, k, faults[f]);
			sw = op->run();
			/* Without a restart the running se mirrors what is durable. */
			if (!op->admin && !R.se.failed && faults[f] == SE_MEM_LOSE) {
				struct se_image mirror = R.se.img;

				rig_start();
				assert_images_equal(&mirror, &R.se.img);
			}
			se_mem_power_on(&R.mem);
			rig_start();
			if (data_is(img_new)) {
				n_new++;
			} else {
				assert_true(data_is(img_old));
				assert_true(sw != op->ok);
				n_old++;
			}
			check_consistent(&old_img, &R.se.img);
			/* The se works on after the restart. */
			assert_int_equal(rig_select_wallet(HOST), SW_OK);
			assert_int_equal(rig_raw_hex(HOST, "80CA00C100"), SW_OK);
		}
	}
	print_message("%-26s %2zu page writes: %3zu runs ended old, %3zu new\n", op->name, writes,
		      n_old, n_new);
	/* A cut before the commit record keeps the old, one after it gives the new. */
	assert_true(n_old > 0 && n_new > 0);
}

static void test_tearing(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		run_op(&ops[i]);
}

/* Formatting over a used image, cut at every write: the se then starts on the old
 * image, on the fresh one, or refuses to start (TB_E_SE_IMAGE) -- never on a mix. */
static void test_format_tearing(void **state)
{
	static const uint8_t serial2[SE_SERIAL_LEN] = { 9, 9, 9, 9, 9, 9, 9, 9 };
	size_t w0, writes, refused = 0;
	struct se se;

	(void)state;
	setup_wallet();
	saved = R;
	memcpy(img_old, R.mem.img, sizeof(img_old));
	w0 = R.mem.writes;
	assert_int_equal(se_format(&R.mem.store, serial2), 0);
	writes = R.mem.writes - w0;
	memcpy(img_new, R.mem.img, sizeof(img_new));
	for (size_t f = 0; f < 3; f++) {
		for (size_t k = 0; k < writes; k++) {
			int rc;

			R = saved;
			se_mem_fault_after(&R.mem, k, faults[f]);
			assert_int_not_equal(se_format(&R.mem.store, serial2), 0);
			se_mem_power_on(&R.mem);
			rc = se_init(&se, NULL, &R.mem.store);
			if (rc == 0) {
				assert_true(rig_same(se.img.serial, rig_serial, 8) ? se.img.balance == 500
										 : se.img.balance == 0);
				assert_true(rig_same(R.mem.img[0], img_old[0], SE_PAGE_SIZE) ||
					    rig_same(R.mem.img[0], img_new[0], SE_PAGE_SIZE));
			} else {
				assert_int_equal(rc, TB_E_SE_IMAGE);
				refused++;
			}
		}
	}
	print_message("format: %zu page writes, %zu cut runs refused to start\n", writes, refused);
	assert_true(refused > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tearing),
		cmocka_unit_test(test_format_tearing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
