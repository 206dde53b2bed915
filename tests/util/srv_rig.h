/* srv_rig.h - the whole server stack as processes, for tests (header-only): a sam with a
 * development KEK file, N personalised ses behind their IC_I/F links (the server key set
 * derived by that sam from the se's serial), an SQLite database with the ses and the
 * services, and `tapbridge server` on an ephemeral port; the client context pinned to the
 * fingerprint the server printed. Each server start logs to its own file (server.N.log).
 *
 * The se also gets its SE_READER key set from the same sam (readers' checks over the
 * contactless link: rig_reader_open).
 * Services: 1 "top-up" (e-money, top-up amount item 1 = RIG_TOPUP), 2 "transit" (ticket),
 * 3 "id-check" (personal auth: the authenticity flag, offline limit item 1 = RIG_OFFLINE). */
#ifndef TB_TEST_SRV_RIG_H
#define TB_TEST_SRV_RIG_H

#include <limits.h>
#include <stdlib.h>

#include "io/db_io.h"
#include "io/sam_client.h"
#include "io/tls.h"
#include "lib/ct.h"
#include "lib/hex.h"
#include "phone_sim.h"
#include "se_proc.h"
#include "server/db.h"
#include "server/ledger.h"

#define RIG_SE_MAX 8
#define RIG_TOPUP 500u
#define RIG_SVC_TOPUP 1u
#define RIG_SVC_TICKET 2u
#define RIG_SVC_PAUTH 3u
#define RIG_OFFLINE 2000u

struct rig_se {
	char image[PATH_MAX], link[PATH_MAX], log[PATH_MAX];
	uint8_t serial[8];
	pid_t pid;
};

struct srv_rig {
	char dir[64], bin[PATH_MAX], keys[PATH_MAX], kek[PATH_MAX], sam_sock[PATH_MAX];
	char sam_log[PATH_MAX], db_path[PATH_MAX], db_url[PATH_MAX + 8], state[PATH_MAX];
	char log[PATH_MAX];       /* the current server start's log */
	pid_t sam, server;
	unsigned starts;
	uint16_t port;
	uint8_t fpr[TLS_FPR_LEN];
	struct tls_client *tc;
	int nse;
	struct rig_se se[RIG_SE_MAX];
};

static inline void rig_path(const struct srv_rig *r, char *out, const char *name)
{
	assert_true((size_t)snprintf(out, PATH_MAX, "%s/%s", r->dir, name) < PATH_MAX);
}

static inline void rig_serial(int i, uint8_t serial[8])
{
	static const uint8_t base[8] = { 0x53, 0x45, 0x52, 0x49, 0x47, 0x00, 0x00, 0x00 };

	memcpy(serial, base, 8);
	serial[7] = (uint8_t)(i + 1);
}

/* The se's key set of family fam (SE_SERVER, SE_READER) from the sam, written into its
 * image by `admin se-keys` with role ("server", "reader"). */
static inline void rig_put_keys(struct srv_rig *r, struct sam_sync *sam, int i, uint8_t fam,
				char *role)
{
	struct rig_se *e = &r->se[i];
	uint8_t body[16], reply[128];
	char kvn_hex[3], keys[3][65];
	struct wr w = wr_init(body, sizeof(body));
	size_t rn = 0, kl;

	assert_int_equal(sam_enc_derive(&w, fam, 0, e->serial), 0);
	assert_int_equal(sam_sync_call(sam, SAM_DERIVE_DEVICE_KEYS, body, w.len, reply,
				       sizeof(reply), &rn), 0);
	kl = reply[2];
	assert_int_equal(rn, 3 + 3 * kl);
	snprintf(kvn_hex, sizeof(kvn_hex), "%02X", reply[1]);
	assert_true(kl <= 32);
	/* Test keys on an argv: hex by hand (hex_encode rightly refuses secrets). */
	for (int k = 0; k < 3; k++)
		for (size_t j = 0; j < kl; j++)
			snprintf(keys[k] + 2 * j, 3, "%02X", reply[3 + (size_t)k * kl + j]);
	ct_wipe(reply, sizeof(reply));
	{
		char *put[] = { r->bin, "admin", "se-keys", "--image", e->image, "--kvn", kvn_hex,
				"--enc", keys[0], "--mac", keys[1], "--dek", keys[2], "--role",
				role, NULL };

		assert_int_equal(sp_run(put, "/dev/null"), 0);
	}
	ct_wipe(keys, sizeof(keys));
}

/* A fresh image with the server and reader key sets; its se process started. */
static inline void rig_make_se(struct srv_rig *r, struct sam_sync *sam, int i)
{
	struct rig_se *e = &r->se[i];
	char serial_hex[17], name[32];

	rig_serial(i, e->serial);
	assert_int_equal(hex_encode(e->serial, 8, HEX_PUBLIC, serial_hex, sizeof(serial_hex)), 0);
	snprintf(name, sizeof(name), "se%d.img", i);
	rig_path(r, e->image, name);
	snprintf(name, sizeof(name), "se%d.link", i);
	rig_path(r, e->link, name);
	snprintf(name, sizeof(name), "se%d.log", i);
	rig_path(r, e->log, name);
	{
		char *init[] = { r->bin, "admin", "se-init", "--image", e->image, "--serial",
				 serial_hex, NULL };

		assert_int_equal(sp_run(init, "/dev/null"), 0);
	}
	rig_put_keys(r, sam, i, SAM_FAM_SE_SERVER, "server");
	rig_put_keys(r, sam, i, SAM_FAM_SE_READER, "reader");
	{
		char cl[PATH_MAX + 8];
		char *se[] = { r->bin, "se", "--image", e->image, "--link", e->link, "--listen", cl,
			       NULL };
		int fd;

		snprintf(cl, sizeof(cl), "unix:%s.cl", e->link);

		e->pid = sp_spawn(se, e->log);
		fd = sp_unix_connect(e->link, 5000);
		assert_true(fd >= 0);
		close(fd);
	}
}

static inline void rig_db_setup(struct srv_rig *r)
{
	struct db *db = NULL;
	struct db_service sv;
	struct db_se se;

	assert_int_equal(db_open(r->db_url, &db), 0);
	for (int i = 0; i < r->nse; i++) {
		memset(&se, 0, sizeof(se));
		memcpy(se.serial, r->se[i].serial, 8);
		se.state = DB_SE_ACTIVE;
		se.created = se.changed = (int64_t)time(NULL);
		assert_int_equal(db->ops->se_add(db, &se), 0);
	}
	memset(&sv, 0, sizeof(sv));
	sv.id = RIG_SVC_TOPUP;
	sv.kind = DB_SVC_EMONEY;
	strcpy(sv.name, "top-up");
	sv.n_prices = 1;
	sv.prices[0].item = 1;
	sv.prices[0].price = RIG_TOPUP;
	assert_int_equal(db->ops->service_add(db, &sv), 0);
	memset(&sv, 0, sizeof(sv));
	sv.id = RIG_SVC_TICKET;
	sv.kind = DB_SVC_TICKET;
	strcpy(sv.name, "transit");
	assert_int_equal(db->ops->service_add(db, &sv), 0);
	memset(&sv, 0, sizeof(sv));
	sv.id = RIG_SVC_PAUTH;
	sv.kind = DB_SVC_PAUTH;
	strcpy(sv.name, "id-check");
	sv.n_prices = 1;
	sv.prices[0].item = 1;
	sv.prices[0].price = RIG_OFFLINE;
	assert_int_equal(db->ops->service_add(db, &sv), 0);
	db_close(db);
}

/* Starts the server (port 0 the first time, the same port after) and waits for its
 * "listening phones" line; reads the fingerprint. */
static inline void rig_server_start(struct srv_rig *r)
{
	char listen[32], name[32], line[512];
	int64_t end = sp_now_us() + 10 * 1000000;

	snprintf(name, sizeof(name), "server.%u.log", r->starts++);
	rig_path(r, r->log, name);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)r->port);
	{
		char *argv[] = { r->bin, "server", "--state", r->state, "--listen", listen, "--http",
				 "off", "--db", r->db_url, "--sam", r->sam_sock, NULL };

		r->server = sp_spawn(argv, r->log);
	}
	for (;;) {
		FILE *f = fopen(r->log, "r");
		int up = 0;

		while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
			unsigned port;

			if (strncmp(line, "fingerprint SHA256:", 19) == 0) {
				line[strcspn(line, "\n")] = '\0';
				assert_int_equal(tls_fpr_parse(line + 19, r->fpr), 0);
			}
			if (sscanf(line, "listening phones 127.0.0.1:%u", &port) == 1) {
				r->port = (uint16_t)port;
				up = 1;
			}
		}
		if (f != NULL)
			fclose(f);
		if (up)
			break;
		if (sp_now_us() > end || waitpid(r->server, NULL, WNOHANG) == r->server)
			fail_msg("the server did not start; see %s", r->log);
		sp_sleep_ms(10);
	}
	if (r->tc == NULL)
		assert_int_equal(tls_client_new(r->fpr, &r->tc), 0);
}

/* The stack with nse ses; sam_extra: one more flag for the sam (e.g. "--allow-rotate"),
 * or NULL for a sam with --allow-perso only. */
static inline void rig_setup_sam(struct srv_rig *r, int nse, const char *sam_extra)
{
	struct sam_sync sam;

	memset(r, 0, sizeof(*r));
	assert_true(nse >= 1 && nse <= RIG_SE_MAX);
	r->nse = nse;
	r->sam = r->server = -1;
	sp_bin(r->bin, sizeof(r->bin));
	memcpy(r->dir, "/tmp/tb_srv_XXXXXX", sizeof("/tmp/tb_srv_XXXXXX"));
	assert_non_null(mkdtemp(r->dir));
	rig_path(r, r->keys, "sam.keys");
	rig_path(r, r->kek, "sam.kek");
	rig_path(r, r->sam_sock, "sam.sock");
	rig_path(r, r->sam_log, "sam.log");
	rig_path(r, r->db_path, "srv.db");
	rig_path(r, r->state, "state");
	snprintf(r->db_url, sizeof(r->db_url), "sqlite:%s", r->db_path);
	{
		char *init[] = { r->bin, "sam", "--init", "--keys", r->keys, "--kek-file", r->kek, NULL };
		char *run[] = { r->bin, "sam", "--socket", r->sam_sock, "--keys", r->keys, "--kek-file",
				r->kek, "--allow-perso", (char *)sam_extra, NULL };
		int fd;

		assert_int_equal(sp_run(init, r->sam_log), 0);
		r->sam = sp_spawn(run, r->sam_log);
		fd = sp_unix_connect(r->sam_sock, 5000);
		assert_true(fd >= 0);
		close(fd);
	}
	assert_int_equal(sam_sync_connect(&sam, r->sam_sock), 0);
	for (int i = 0; i < nse; i++)
		rig_make_se(r, &sam, i);
	sam_sync_close(&sam);
	rig_db_setup(r);
	rig_server_start(r);
}

static inline void rig_setup(struct srv_rig *r, int nse)
{
	rig_setup_sam(r, nse, NULL);
}

static inline void rig_server_kill(struct srv_rig *r)
{
	if (r->server > 0) {
		kill(r->server, SIGKILL);
		waitpid(r->server, NULL, 0);
	}
	r->server = -1;
}

/* 1 when the current server log has the text. */
static inline int rig_log_has(const struct srv_rig *r, const char *text)
{
	static char buf[1 << 20];
	FILE *f = fopen(r->log, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strstr(buf, text) != NULL;
}

static inline void rig_teardown(struct srv_rig *r)
{
	char cmd[128];

	if (r->server > 0)
		(void)sp_stop(r->server);
	for (int i = 0; i < r->nse; i++)
		(void)sp_stop(r->se[i].pid);
	(void)sp_stop(r->sam);
	tls_client_free(r->tc);
	r->tc = NULL;
	if (getenv("TB_KEEP") == NULL && r->dir[0] != '\0' &&
	    (size_t)snprintf(cmd, sizeof(cmd), "rm -rf %s", r->dir) < sizeof(cmd))
		(void)system(cmd);
}

/* The se's own view, through the phone's link: a reset of the host interface (the
 * server's session ends), SELECT wallet, GET BALANCE plain. UINT32_MAX on failure. */
static inline uint32_t rig_se_balance(struct phone *p)
{
	static const uint8_t sel[] = { 0x00, 0xA4, 0x04, 0x00, 0x0B, 0xF0, 0x54, 0x41, 0x50, 0x42,
				       0x52, 0x49, 0x44, 0x47, 0x45, 0x01, 0x00 };
	static const uint8_t bal[] = { 0x80, 0x30, 0x00, 0x00, 0x00 };
	uint8_t reset = 0x02, resp[64];
	size_t rn = 0;

	if (phone_link(p, SE_LINK_T_POWER, &reset, 1, NULL, 0, NULL) != 0 ||
	    phone_link(p, SE_LINK_T_APDU, sel, sizeof(sel), resp, sizeof(resp), &rn) != 0 ||
	    rn < 2 || resp[rn - 2] != 0x90 ||
	    phone_link(p, SE_LINK_T_APDU, bal, sizeof(bal), resp, sizeof(resp), &rn) != 0 ||
	    rn != 14 || resp[12] != 0x90)
		return UINT32_MAX;
	return (uint32_t)resp[0] << 24 | (uint32_t)resp[1] << 16 | (uint32_t)resp[2] << 8 | resp[3];
}

#endif
