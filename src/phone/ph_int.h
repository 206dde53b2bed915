/* ph_int.h - what the phone core's files share: screen lines, the action queue, the
 * se queue, and the hooks by which session events end commands. Not for adapters. */
#ifndef TB_PHONE_INT_H
#define TB_PHONE_INT_H

#include "phone.h"

/* One screen line being built (at most 600 bytes: a NOTICE of 256 UTF-8 bytes fits). */
struct ph_line {
	char b[600];
	size_t n;
	int over;
};

int ph_act_push(struct ph *ph, const struct ph_act *a);
void ln_init(struct ph_line *l);
void ln_mem(struct ph_line *l, const char *s, size_t n);
void ln_str(struct ph_line *l, const char *s);
void ln_u64(struct ph_line *l, uint64_t v);
void ln_i64(struct ph_line *l, int64_t v);
void ln_hex(struct ph_line *l, uint64_t v, unsigned digits);
void ln_time(struct ph_line *l, int64_t t);
int ln_put(struct ph *ph, struct ph_line *l);
/* a then b (may be NULL) as one line. */
int ph_say(struct ph *ph, const char *a, const char *b);

/* An APDU to the se, remembered in the queue (kind, seq) so its response finds its way. */
int ph_se_send(struct ph *ph, uint8_t kind, uint32_t seq, const uint8_t *apdu, size_t n);
/* A frame to the server (the PING clock restarts). */
int ph_srv_send(struct ph *ph, const struct ph_act *a);

/* Command hooks (ph_cmd.c), called by the session code. */
void ph_cmd_finish(struct ph *ph, int ok);
void ph_cmd_on_notice(struct ph *ph);
void ph_cmd_on_history(struct ph *ph);
void ph_cmd_on_pong(struct ph *ph, const uint8_t token[8]);
void ph_cmd_on_local(struct ph *ph, uint8_t kind, const uint8_t *resp, size_t n);
void ph_cmd_on_session_end(struct ph *ph);
void ph_cmd_tick(struct ph *ph);
void ph_menu_show(struct ph *ph, const char *prefix);

#endif
