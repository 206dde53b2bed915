/* admin_int.h - what the files of `tapbridge admin` share (src/cmd/admin*.c): the
 * sub-commands for the dispatch table, the argument and image helpers, and the
 * deployment directory's paths, database and private sam. Not for other commands. */
#ifndef TB_CMD_ADMIN_INT_H
#define TB_CMD_ADMIN_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cmd.h"
#include "io/db_io.h"
#include "io/sam_client.h"
#include "io/store_file.h"

/* Each sub-command: argv[0] is its own name; returns the exit status (0, 1 failed,
 * 2 usage, 3 ledger audit found a problem). */
int adm_se_init(int argc, char **argv);      /* admin_image.c */
int adm_se_keys(int argc, char **argv);
int adm_se_config(int argc, char **argv);
int adm_se_info(int argc, char **argv);
int adm_init(int argc, char **argv);         /* admin_deploy.c */
int adm_se_register(int argc, char **argv);
int adm_reader_register(int argc, char **argv);
int adm_service_add(int argc, char **argv);
int adm_rotate(int argc, char **argv);
int adm_ledger(int argc, char **argv);       /* admin_books.c */
int adm_history(int argc, char **argv);
int adm_deny_list(int argc, char **argv);
int adm_se_replace(int argc, char **argv);   /* admin_vault.c */
int adm_pauth_set(int argc, char **argv);
int adm_portal_login(int argc, char **argv); /* admin_portal.c */
int adm_portal_code(int argc, char **argv);

/* Opens and locks an existing se image: exit status 0, or 1 after saying why. */
int adm_open(const char *cmd, const char *path, struct store_file *sf);
/* Exactly want bytes of hex (want 0: 16, 24 or 32, a key) into out (cap bytes, wiped on
 * failure), *len its length. 0, or 2 after saying why. */
int adm_hex(const char *cmd, const char *what, const char *s, size_t want, uint8_t *out,
	    size_t cap, size_t *len);

/* ============================================== server-side administration === */
/* A deployment directory D holds: sam.keys (sealed) and sam.kek (development KEK file),
 * state/ (the server's certificate), srv.db (SQLite), tapbridge.conf (what `tapbridge
 * sam` and `tapbridge server` are to be started with), reader-N.keys (reader key files).
 * Commands that need the sam start their own one on a private socket inside D, with
 * only the capability they need, and stop it before they return. */

#define ADM_PATH 4096
#define ADM_KEK_ARGS 8

/* out = dir/name: 0, or TB_E_INVAL when it does not fit. */
int adm_path(char out[ADM_PATH], const char *dir, const char *name);
/* This binary's path (to start `tapbridge sam` and the like): 0, or TB_E_IO. */
int adm_self(char out[ADM_PATH]);
/* The KEK options of the deployment's sam (one per line in D/sam.kek-args, else
 * `--kek-file D/sam.kek`) into args, *n of them: 0, or TB_E_IO. */
int adm_kek_args(const char *dir, char args[ADM_KEK_ARGS][ADM_PATH], size_t *n);

struct adm_sam {
	pid_t pid;
	char sock[ADM_PATH];
	struct sam_sync c;
};

/* Starts a sam of deployment dir with flag (NULL, "--allow-perso", "--allow-rotate") and
 * connects to it. 0, or 1 after saying why (nothing left running). */
int adm_sam_start(const char *cmd, const char *dir, const char *flag, struct adm_sam *a);
/* Disconnects and stops the sam adm_sam_start started. */
void adm_sam_stop(struct adm_sam *a);
/* The deployment's database (D/srv.db) into *db (close with db_close). 0, or 1 after
 * saying why. */
int adm_db(const char *cmd, const char *dir, struct db **db);

#endif
