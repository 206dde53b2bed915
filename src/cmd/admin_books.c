/* admin_books.c - `tapbridge admin` reading a deployment's books: ledger (audit and
 * balances), history (an se's or a reader's events), deny-list (signed by the sam for
 * offline readers). What stays true: these commands only look; no ledger rule runs here
 * and nothing in the database changes. */
#include <stdio.h>

#include "admin_int.h"
#include "server/ledger.h"
#include "lib/err.h"
#include "se/se.h"

#define ADM_DENY_MAX 48 /* serials in one signed deny list (8 x 48 + 18 <= 512) */

/* ------------------------------------------------------------ ledger, history --- */

int adm_ledger(int argc, char **argv)
{
	const char *dir = NULL, *serial_hex = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--se", &serial_hex, NULL } };
	uint8_t serial[SE_SERIAL_LEN];
	struct db_account acc;
	struct db_service sv;
	struct db_audit au;
	struct db *db = NULL;
	size_t n;
	int rc;

	if ((rc = args_parse("admin ledger", argc, argv, opts, 2)) != 0)
		return rc;
	if (dir == NULL) {
		fprintf(stderr, "usage: tapbridge admin ledger --dir DIR [--se HEX]\n");
		return 2;
	}
	if (serial_hex != NULL && (rc = adm_hex("ledger", "--se", serial_hex, SE_SERIAL_LEN, serial,
						sizeof(serial), &n)) != 0)
		return rc;
	if (adm_db("ledger", dir, &db) != 0)
		return 1;
	rc = db->ops->ledger_audit(db, &au);
	if (rc == 0) {
		printf("transfers %llu\npostings %llu\nsum %lld\nunbalanced %llu\nmismatched %llu\n"
		       "negative %llu\n", (unsigned long long)au.transfers,
		       (unsigned long long)au.postings, (long long)au.postings_sum,
		       (unsigned long long)au.unbalanced_transfers,
		       (unsigned long long)au.balance_mismatches,
		       (unsigned long long)au.negative_purses);
		if (db->ops->account_get(db, LEDGER_FLOAT, &acc) == 0)
			printf("account F float %lld\n", (long long)acc.balance);
		for (uint32_t id = 1; id <= 256; id++) {
			char vname[DB_NAME_MAX];

			if (db->ops->service_get(db, id, &sv) != 0 || ledger_name_revenue(id, vname) != 0 ||
			    db->ops->account_get(db, vname, &acc) != 0)
				continue;
			printf("account %s revenue %lld\n", vname, (long long)acc.balance);
		}
	}
	if (rc == 0 && serial_hex != NULL) {
		int64_t bal = 0;

		if ((rc = ledger_balance(db, serial, &bal)) == 0)
			printf("purse %s %lld\n", serial_hex, (long long)bal);
	}
	db_close(db);
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin ledger: %s\n", tb_strerror(rc));
		return 1;
	}
	return au.postings_sum == 0 && au.unbalanced_transfers == 0 && au.balance_mismatches == 0 ? 0 : 3;
}

int adm_history(int argc, char **argv)
{
	const char *dir = NULL, *serial_hex = NULL, *reader_s = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--se", &serial_hex, NULL },
					{ "--reader", &reader_s, NULL } };
	static struct db_event ev[32];
	uint8_t serial[SE_SERIAL_LEN];
	struct db *db = NULL;
	uint64_t before = 0;
	uint32_t reader = 0;
	size_t n = 0;
	int rc;

	if ((rc = args_parse("admin history", argc, argv, opts, 3)) != 0)
		return rc;
	if (dir == NULL || (serial_hex == NULL) == (reader_s == NULL) ||
	    (reader_s != NULL && args_u32(reader_s, 1, UINT32_MAX, &reader) != 0)) {
		fprintf(stderr, "usage: tapbridge admin history --dir DIR (--se HEX | --reader N)\n");
		return 2;
	}
	if (serial_hex != NULL && (rc = adm_hex("history", "--se", serial_hex, SE_SERIAL_LEN, serial,
						sizeof(serial), &n)) != 0)
		return rc;
	if (adm_db("history", dir, &db) != 0)
		return 1;
	do {
		rc = serial_hex != NULL ?
			     db->ops->history_by_se(db, serial, before, ev, 32, &n) :
			     db->ops->history_by_reader(db, reader, before, ev, 32, &n);
		for (size_t i = 0; rc == 0 && i < n; i++) {
			printf("%llu time %lld kind %u service %u reader %u amount %lld ref %llu\n",
			       (unsigned long long)ev[i].id, (long long)ev[i].time, (unsigned)ev[i].kind,
			       ev[i].service, ev[i].reader, (long long)ev[i].amount,
			       (unsigned long long)ev[i].ref);
			before = ev[i].id;
		}
	} while (rc == 0 && n == 32);
	db_close(db);
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin history: %s\n", tb_strerror(rc));
		return 1;
	}
	return 0;
}

/* ------------------------------------------------------------------ deny-list --- */

int adm_deny_list(int argc, char **argv)
{
	const char *dir = NULL, *reader_s = NULL;
	const struct arg_opt opts[] = { { "--dir", &dir, NULL }, { "--reader", &reader_s, NULL } };
	static uint8_t list[ADM_DENY_MAX][DB_SERIAL_LEN];
	uint8_t msg[SAM_SIGN_MSG_MAX], body[SAM_SIGN_MSG_MAX + 1], reply[128];
	struct wr w = wr_init(msg, sizeof(msg)), bw = wr_init(body, sizeof(body));
	struct db_reader r;
	struct adm_sam a;
	struct db *db = NULL;
	uint64_t version = 0;
	uint32_t reader = 0;
	size_t n = 0, rn = 0;
	int rc;

	if ((rc = args_parse("admin deny-list", argc, argv, opts, 2)) != 0)
		return rc;
	if (dir == NULL || reader_s == NULL || args_u32(reader_s, 1, UINT32_MAX, &reader) != 0) {
		fprintf(stderr, "usage: tapbridge admin deny-list --dir DIR --reader N\n");
		return 2;
	}
	if (adm_db("deny-list", dir, &db) != 0)
		return 1;
	rc = db->ops->reader_get(db, reader, &r);
	if (rc == 0)
		rc = db->ops->deny_list(db, NULL, list, ADM_DENY_MAX, &n, &version);
	db_close(db);
	/* Signed for offline readers: "DENY" reader(4) version(8) count(2) serials. */
	if (rc == 0 && (wr_bytes(&w, (const uint8_t *)"DENY", 4) != 0 || wr_u32be(&w, reader) != 0 ||
			wr_u64be(&w, version) != 0 || wr_u16be(&w, (uint16_t)n) != 0))
		rc = TB_E_NOSPACE;
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = wr_bytes(&w, list[i], DB_SERIAL_LEN);
	if (rc == 0 && adm_sam_start("deny-list", dir, NULL, &a) != 0)
		return 1;
	if (rc == 0) {
		rc = sam_enc_sign(&bw, SAM_SIGN_READER, msg, w.len);
		if (rc == 0)
			rc = sam_sync_call(&a.c, SAM_SIGN, body, bw.len, reply, sizeof(reply), &rn);
		adm_sam_stop(&a);
	}
	if (rc == 0 && rn != 1 + SAM_SIG_LEN)
		rc = TB_E_SAM_PROTO;
	if (rc != 0) {
		fprintf(stderr, "tapbridge admin deny-list: reader %u: %s\n", reader, tb_strerror(rc));
		return 1;
	}
	printf("deny-list reader %u version %llu count %zu\n", reader, (unsigned long long)version, n);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < DB_SERIAL_LEN; j++)
			printf("%02X", list[i][j]);
		putchar('\n');
	}
	printf("message ");
	for (size_t i = 0; i < w.len; i++)
		printf("%02X", msg[i]);
	printf("\nsignature %02X ", reply[0]);
	for (size_t i = 1; i < rn; i++)
		printf("%02X", reply[i]);
	putchar('\n');
	return 0;
}
