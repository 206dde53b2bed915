/* proto.c - the phone session protocol's payload codecs and size tables (see proto.h).
 * Each type has one rule function that both its decoder and its encoder apply, so the
 * two cannot drift apart; decoders work on a copy of the reader and store only on
 * success, encoders check the room before the first byte is written. */
#include "err.h"
#include "proto.h"

#define TRY(x)                         \
	do {                           \
		int try_rc_ = (x);     \
		if (try_rc_ != 0)      \
			return try_rc_; \
	} while (0)

const uint32_t proto_srv_in[FRAME_TYPES] = {
	[PROTO_HELLO] = PROTO_N_HELLO,
	[PROTO_SELECT] = PROTO_N_SELECT,
	[PROTO_SE_RESP] = PROTO_N_APDU,
	[PROTO_RELAY_UP] = PROTO_N_RELAY_UP,
	[PROTO_HISTORY_REQ] = PROTO_N_HISTORY_REQ,
	[PROTO_PING] = PROTO_N_PING,
	[PROTO_PONG] = PROTO_N_PING,
	[PROTO_BYE] = PROTO_N_BYE,
	[PROTO_PORTAL_REQ] = PROTO_N_PORTAL_REQ,
};

const uint32_t proto_phone_in[FRAME_TYPES] = {
	[PROTO_PING] = PROTO_N_PING,
	[PROTO_PONG] = PROTO_N_PING,
	[PROTO_BYE] = PROTO_N_BYE,
	[PROTO_MENU] = PROTO_N_MENU,
	[PROTO_SE_APDU] = PROTO_N_APDU,
	[PROTO_RELAY_DOWN] = PROTO_N_RELAY_DOWN,
	[PROTO_HISTORY] = PROTO_N_HISTORY,
	[PROTO_NOTICE] = PROTO_N_NOTICE,
	[PROTO_ERROR] = PROTO_N_ERROR,
	[PROTO_STAGE] = PROTO_N_STAGE,
	[PROTO_PORTAL_LINK] = PROTO_N_PORTAL_LINK,
};

struct proto_err_entry {
	uint16_t code;
	const char *text;
};

static const struct proto_err_entry proto_err_table[] = {
#define PROTO_ERR_ROW(name, val, text) { val, text },
	PROTO_ERRORS(PROTO_ERR_ROW)
#undef PROTO_ERR_ROW
};

const char *proto_err_reason(uint16_t code)
{
	for (size_t i = 0; i < sizeof(proto_err_table) / sizeof(proto_err_table[0]); i++)
		if (proto_err_table[i].code == code)
			return proto_err_table[i].text;
	return "error";
}

uint16_t proto_err_from(int tb_err)
{
	switch (tb_err) {
	case TB_E_FRAME_OVERSIZE:
		return PROTO_ERR_TOO_LARGE;
	case TB_E_FRAME_TYPE:
		return PROTO_ERR_UNKNOWN_TYPE;
	case TB_E_FRAME_EMPTY:
		return PROTO_ERR_EMPTY;
	case TB_E_PROTO_VERSION:
		return PROTO_ERR_VERSION;
	default:
		return PROTO_ERR_MALFORMED;
	}
}

/* ---- text ---- */

/* Length of the UTF-8 sequence led by c (0: c cannot lead one), and its payload bits. */
static size_t utf8_lead(uint8_t c, uint32_t *cp)
{
	if (c >= 0xC2 && c <= 0xDF) {
		*cp = c & 0x1Fu;
		return 2;
	}
	if (c >= 0xE0 && c <= 0xEF) {
		*cp = c & 0x0Fu;
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		*cp = c & 0x07u;
		return 4;
	}
	return 0;
}

/* One non-ASCII character at p (n bytes left): its length, or 0 when it is not valid,
 * not in shortest form, a surrogate, above U+10FFFF or a C1 control. */
static size_t utf8_char(const uint8_t *p, size_t n)
{
	static const uint32_t min_cp[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	uint32_t cp = 0;
	size_t len = utf8_lead(p[0], &cp);

	if (len == 0 || len > n)
		return 0;
	for (size_t k = 1; k < len; k++) {
		if ((p[k] & 0xC0u) != 0x80u)
			return 0;
		cp = cp << 6 | (p[k] & 0x3Fu);
	}
	if (cp < min_cp[len] || cp > 0x10FFFFu || (cp >= 0xD800u && cp <= 0xDFFFu) ||
	    (cp >= 0x80u && cp <= 0x9Fu))
		return 0;
	return len;
}

int proto_text_ok(const uint8_t *p, size_t n)
{
	size_t i = 0;

	if (p == NULL && n > 0)
		return 0;
	while (i < n) {
		if (p[i] < 0x80) {
			if (p[i] < 0x20 || p[i] == 0x7F)
				return 0;
			i++;
			continue;
		}
		size_t len = utf8_char(p + i, n - i);
		if (len == 0)
			return 0;
		i += len;
	}
	return 1;
}

static int text_in(const uint8_t *p, size_t n, size_t min, size_t max)
{
	if (n < min || n > max)
		return TB_E_PROTO_FIELD;
	return proto_text_ok(p, n) ? 0 : TB_E_PROTO_TEXT;
}

static int bytes_in(const uint8_t *p, size_t n, size_t min, size_t max)
{
	if (n < min || n > max || (p == NULL && n > 0))
		return TB_E_PROTO_FIELD;
	return 0;
}

static int room(const struct wr *w, size_t n)
{
	return wr_room(w) >= n ? 0 : TB_E_NOSPACE;
}

/* ---- HELLO ---- */

static int hello_rules(const struct proto_hello *m)
{
	if (m->version != PROTO_VERSION)
		return TB_E_PROTO_VERSION;
	TRY(bytes_in(m->app, m->app_len, 1, PROTO_APP_MAX));
	for (size_t i = 0; i < m->app_len; i++)
		if (m->app[i] < 0x20 || m->app[i] > 0x7E)
			return TB_E_PROTO_TEXT;
	return 0;
}

int proto_hello_get(struct rd *r, struct proto_hello *out)
{
	struct rd c = *r;
	struct proto_hello m;
	uint8_t alen;

	TRY(rd_u16be(&c, &m.version));
	if (m.version != PROTO_VERSION)
		return TB_E_PROTO_VERSION; /* the rest is another version's layout */
	TRY(rd_copy(&c, m.serial, PROTO_SERIAL_LEN));
	TRY(rd_u8(&c, &alen));
	TRY(rd_bytes(&c, alen, &m.app));
	TRY(rd_end(&c));
	m.app_len = alen;
	TRY(hello_rules(&m));
	*out = m;
	*r = c;
	return 0;
}

int proto_hello_put(struct wr *w, const struct proto_hello *m)
{
	TRY(hello_rules(m));
	TRY(room(w, 2 + PROTO_SERIAL_LEN + 1 + m->app_len));
	(void)wr_u16be(w, m->version);
	(void)wr_bytes(w, m->serial, PROTO_SERIAL_LEN);
	(void)wr_u8(w, (uint8_t)m->app_len);
	(void)wr_bytes(w, m->app, m->app_len);
	return 0;
}

/* ---- MENU ---- */

static int menu_item_rules(const struct proto_menu_item *it)
{
	if (it->id == 0 || it->kind == 0 || it->state < PROTO_SVC_OFFERED ||
	    it->state > PROTO_SVC_BLOCKED)
		return TB_E_PROTO_FIELD;
	return text_in(it->name, it->name_len, 1, PROTO_NAME_MAX);
}

/* Checks every item, ids unique; *size gets the payload length. */
static int menu_rules(const struct proto_menu *m, size_t *size)
{
	size_t total = 1;

	if (m->n > PROTO_MENU_MAX)
		return TB_E_PROTO_FIELD;
	for (size_t i = 0; i < m->n; i++) {
		TRY(menu_item_rules(&m->items[i]));
		for (size_t j = 0; j < i; j++)
			if (m->items[j].id == m->items[i].id)
				return TB_E_PROTO_FIELD;
		total += 7 + m->items[i].name_len;
	}
	*size = total;
	return 0;
}

static int menu_item_get(struct rd *r, struct proto_menu_item *it)
{
	uint8_t nlen;

	TRY(rd_u32be(r, &it->id));
	TRY(rd_u8(r, &it->kind));
	TRY(rd_u8(r, &it->state));
	TRY(rd_u8(r, &nlen));
	TRY(rd_bytes(r, nlen, &it->name));
	it->name_len = nlen;
	return 0;
}

int proto_menu_get(struct rd *r, struct proto_menu *out)
{
	struct rd c = *r;
	struct proto_menu m;
	uint8_t count;
	size_t size;

	TRY(rd_u8(&c, &count));
	if (count > PROTO_MENU_MAX)
		return TB_E_PROTO_FIELD;
	m.n = count;
	for (size_t i = 0; i < m.n; i++)
		TRY(menu_item_get(&c, &m.items[i]));
	TRY(rd_end(&c));
	TRY(menu_rules(&m, &size));
	*out = m;
	*r = c;
	return 0;
}

int proto_menu_put(struct wr *w, const struct proto_menu *m)
{
	size_t size;

	TRY(menu_rules(m, &size));
	TRY(room(w, size));
	(void)wr_u8(w, (uint8_t)m->n);
	for (size_t i = 0; i < m->n; i++) {
		const struct proto_menu_item *it = &m->items[i];

		(void)wr_u32be(w, it->id);
		(void)wr_u8(w, it->kind);
		(void)wr_u8(w, it->state);
		(void)wr_u8(w, (uint8_t)it->name_len);
		(void)wr_bytes(w, it->name, it->name_len);
	}
	return 0;
}

/* ---- SELECT ---- */

int proto_select_get(struct rd *r, struct proto_select *out)
{
	struct rd c = *r;
	struct proto_select m = { 0 };

	TRY(rd_u32be(&c, &m.service));
	if (rd_left(&c) > 0) {
		TRY(rd_u8(&c, &m.op));
		m.has_op = 1;
	}
	TRY(rd_end(&c));
	if (m.service == 0 || m.op > PROTO_OP_MAX)
		return TB_E_PROTO_FIELD;
	*out = m;
	*r = c;
	return 0;
}

int proto_select_put(struct wr *w, const struct proto_select *m)
{
	int with_op = m->has_op || m->op != 0;

	if (m->service == 0 || m->op > PROTO_OP_MAX || m->has_op > 1)
		return TB_E_PROTO_FIELD;
	TRY(room(w, 4u + (with_op ? 1u : 0u)));
	(void)wr_u32be(w, m->service);
	if (with_op)
		(void)wr_u8(w, m->op);
	return 0;
}

/* ---- STAGE: one INITIALIZE UPDATE APDU, opaque ---- */

int proto_stage_get(struct rd *r, struct proto_stage *out)
{
	struct rd c = *r;
	struct proto_stage m;

	m.n = rd_left(&c);
	TRY(rd_bytes(&c, m.n, &m.apdu));
	TRY(bytes_in(m.apdu, m.n, PROTO_STAGE_MIN, PROTO_STAGE_MAX));
	*out = m;
	*r = c;
	return 0;
}

int proto_stage_put(struct wr *w, const struct proto_stage *m)
{
	TRY(bytes_in(m->apdu, m->n, PROTO_STAGE_MIN, PROTO_STAGE_MAX));
	return wr_bytes(w, m->apdu, m->n);
}

/* ---- SE_APDU, SE_RESP: seq || opaque bytes ---- */

static int apdu_get(struct rd *r, struct proto_apdu *out, size_t min)
{
	struct rd c = *r;
	struct proto_apdu m;

	TRY(rd_u32be(&c, &m.seq));
	m.n = rd_left(&c);
	TRY(rd_bytes(&c, m.n, &m.data));
	TRY(bytes_in(m.data, m.n, min, PROTO_APDU_MAX));
	*out = m;
	*r = c;
	return 0;
}

static int apdu_put(struct wr *w, const struct proto_apdu *m, size_t min)
{
	TRY(bytes_in(m->data, m->n, min, PROTO_APDU_MAX));
	TRY(room(w, 4 + m->n));
	(void)wr_u32be(w, m->seq);
	(void)wr_bytes(w, m->data, m->n);
	return 0;
}

/* A command APDU has at least its 4-byte header, a response at least SW1 SW2. */
int proto_se_apdu_get(struct rd *r, struct proto_apdu *out) { return apdu_get(r, out, 4); }
int proto_se_apdu_put(struct wr *w, const struct proto_apdu *m) { return apdu_put(w, m, 4); }
int proto_se_resp_get(struct rd *r, struct proto_apdu *out) { return apdu_get(r, out, 2); }
int proto_se_resp_put(struct wr *w, const struct proto_apdu *m) { return apdu_put(w, m, 2); }

/* ---- RELAY_UP, RELAY_DOWN ---- */

int proto_relay_up_get(struct rd *r, struct proto_relay_up *out)
{
	struct rd c = *r;
	struct proto_relay_up m;

	TRY(rd_u32be(&c, &m.relay));
	TRY(rd_u32be(&c, &m.service));
	m.n = rd_left(&c);
	TRY(rd_bytes(&c, m.n, &m.data));
	TRY(bytes_in(m.data, m.n, 1, PROTO_RELAY_MAX));
	*out = m;
	*r = c;
	return 0;
}

int proto_relay_up_put(struct wr *w, const struct proto_relay_up *m)
{
	TRY(bytes_in(m->data, m->n, 1, PROTO_RELAY_MAX));
	TRY(room(w, 8 + m->n));
	(void)wr_u32be(w, m->relay);
	(void)wr_u32be(w, m->service);
	(void)wr_bytes(w, m->data, m->n);
	return 0;
}

static int relay_down_rules(const struct proto_relay_down *m)
{
	if (m->status == PROTO_RELAY_ANSWER)
		return bytes_in(m->data, m->n, 0, PROTO_RELAY_MAX);
	if (m->status == PROTO_RELAY_FAIL)
		return m->n == 0 ? 0 : TB_E_PROTO_FIELD;
	return TB_E_PROTO_FIELD;
}

int proto_relay_down_get(struct rd *r, struct proto_relay_down *out)
{
	struct rd c = *r;
	struct proto_relay_down m;

	TRY(rd_u32be(&c, &m.relay));
	TRY(rd_u8(&c, &m.status));
	m.n = rd_left(&c);
	TRY(rd_bytes(&c, m.n, &m.data));
	if (m.n == 0)
		m.data = NULL; /* an empty answer points nowhere, as the encoder expects */
	TRY(relay_down_rules(&m));
	*out = m;
	*r = c;
	return 0;
}

int proto_relay_down_put(struct wr *w, const struct proto_relay_down *m)
{
	TRY(relay_down_rules(m));
	TRY(room(w, 5 + m->n));
	(void)wr_u32be(w, m->relay);
	(void)wr_u8(w, m->status);
	(void)wr_bytes(w, m->data, m->n);
	return 0;
}

/* ---- HISTORY_REQ, HISTORY ---- */

int proto_history_req_get(struct rd *r, struct proto_history_req *out)
{
	struct rd c = *r;
	struct proto_history_req m;

	TRY(rd_u64be(&c, &m.before));
	TRY(rd_u8(&c, &m.max));
	TRY(rd_end(&c));
	if (m.max == 0 || m.max > PROTO_HISTORY_MAX)
		return TB_E_PROTO_FIELD;
	*out = m;
	*r = c;
	return 0;
}

int proto_history_req_put(struct wr *w, const struct proto_history_req *m)
{
	if (m->max == 0 || m->max > PROTO_HISTORY_MAX)
		return TB_E_PROTO_FIELD;
	TRY(room(w, 9));
	(void)wr_u64be(w, m->before);
	(void)wr_u8(w, m->max);
	return 0;
}

/* Newest first with unique ids, so `before = last id` pages without gaps or repeats;
 * `more` needs a last id to page from. */
static int history_rules(const struct proto_history *m)
{
	if (m->more > 1 || m->n > PROTO_HISTORY_MAX || (m->more && m->n == 0))
		return TB_E_PROTO_FIELD;
	for (size_t i = 0; i < m->n; i++) {
		const struct proto_hist_rec *h = &m->recs[i];

		if (h->id == 0 || h->kind == 0 || (i > 0 && h->id >= m->recs[i - 1].id))
			return TB_E_PROTO_FIELD;
	}
	return 0;
}

static int hist_rec_get(struct rd *r, struct proto_hist_rec *h)
{
	uint64_t t, amount, balance;

	TRY(rd_u64be(r, &h->id));
	TRY(rd_u64be(r, &t));
	TRY(rd_u8(r, &h->kind));
	TRY(rd_u32be(r, &h->service));
	TRY(rd_u32be(r, &h->reader));
	TRY(rd_u64be(r, &amount));
	TRY(rd_u64be(r, &balance));
	h->time = (int64_t)t;
	h->amount = (int64_t)amount;
	h->balance = (int64_t)balance;
	return 0;
}

int proto_history_get(struct rd *r, struct proto_history *out)
{
	struct rd c = *r;
	struct proto_history m;
	uint8_t count;

	TRY(rd_u8(&c, &m.more));
	TRY(rd_u8(&c, &count));
	if (count > PROTO_HISTORY_MAX)
		return TB_E_PROTO_FIELD;
	m.n = count;
	for (size_t i = 0; i < m.n; i++)
		TRY(hist_rec_get(&c, &m.recs[i]));
	TRY(rd_end(&c));
	TRY(history_rules(&m));
	*out = m;
	*r = c;
	return 0;
}

int proto_history_put(struct wr *w, const struct proto_history *m)
{
	TRY(history_rules(m));
	TRY(room(w, 2 + m->n * PROTO_HIST_REC_LEN));
	(void)wr_u8(w, m->more);
	(void)wr_u8(w, (uint8_t)m->n);
	for (size_t i = 0; i < m->n; i++) {
		const struct proto_hist_rec *h = &m->recs[i];

		(void)wr_u64be(w, h->id);
		(void)wr_u64be(w, (uint64_t)h->time);
		(void)wr_u8(w, h->kind);
		(void)wr_u32be(w, h->service);
		(void)wr_u32be(w, h->reader);
		(void)wr_u64be(w, (uint64_t)h->amount);
		(void)wr_u64be(w, (uint64_t)h->balance);
	}
	return 0;
}

/* ---- NOTICE, ERROR ---- */

int proto_notice_get(struct rd *r, struct proto_text *out)
{
	struct rd c = *r;
	struct proto_text m;

	m.n = rd_left(&c);
	TRY(rd_bytes(&c, m.n, &m.p));
	TRY(text_in(m.p, m.n, 1, PROTO_NOTICE_MAX));
	*out = m;
	*r = c;
	return 0;
}

int proto_notice_put(struct wr *w, const struct proto_text *m)
{
	TRY(text_in(m->p, m->n, 1, PROTO_NOTICE_MAX));
	return wr_bytes(w, m->p, m->n);
}

int proto_error_get(struct rd *r, struct proto_error *out)
{
	struct rd c = *r;
	struct proto_error m;

	TRY(rd_u16be(&c, &m.code));
	m.n = rd_left(&c);
	TRY(rd_bytes(&c, m.n, &m.reason));
	if (m.code == 0)
		return TB_E_PROTO_FIELD;
	TRY(text_in(m.reason, m.n, 1, PROTO_REASON_MAX));
	*out = m;
	*r = c;
	return 0;
}

int proto_error_put(struct wr *w, const struct proto_error *m)
{
	if (m->code == 0)
		return TB_E_PROTO_FIELD;
	TRY(text_in(m->reason, m->n, 1, PROTO_REASON_MAX));
	TRY(room(w, 2 + m->n));
	(void)wr_u16be(w, m->code);
	(void)wr_bytes(w, m->reason, m->n);
	return 0;
}

/* ---- PING, PONG, BYE ---- */

int proto_ping_get(struct rd *r, struct proto_ping *out)
{
	struct rd c = *r;
	struct proto_ping m;

	TRY(rd_copy(&c, m.token, PROTO_PING_LEN));
	TRY(rd_end(&c));
	*out = m;
	*r = c;
	return 0;
}

int proto_ping_put(struct wr *w, const struct proto_ping *m)
{
	return wr_bytes(w, m->token, PROTO_PING_LEN);
}

int proto_bye_get(struct rd *r)
{
	return rd_end(r);
}

/* ---- one table for all types ---- */

#define PROTO_WRAP(fn, member)                                                  \
	static int fn##_msg_get(struct rd *r, struct proto_msg *m)               \
	{                                                                        \
		return proto_##fn##_get(r, &m->u.member);                        \
	}                                                                        \
	static int fn##_msg_put(struct wr *w, const struct proto_msg *m)         \
	{                                                                        \
		return proto_##fn##_put(w, &m->u.member);                        \
	}

PROTO_WRAP(hello, hello)
PROTO_WRAP(menu, menu)
PROTO_WRAP(select, select)
PROTO_WRAP(se_apdu, apdu)
PROTO_WRAP(se_resp, apdu)
PROTO_WRAP(relay_up, relay_up)
PROTO_WRAP(relay_down, relay_down)
PROTO_WRAP(history_req, history_req)
PROTO_WRAP(history, history)
PROTO_WRAP(notice, notice)
PROTO_WRAP(error, error)
PROTO_WRAP(ping, ping)
PROTO_WRAP(stage, stage)

static int bye_msg_get(struct rd *r, struct proto_msg *m)
{
	(void)m;
	return proto_bye_get(r);
}

static int bye_msg_put(struct wr *w, const struct proto_msg *m)
{
	(void)w;
	(void)m;
	return 0;
}

struct proto_codec {
	uint8_t type;
	const char *name;
	int (*get)(struct rd *r, struct proto_msg *m);
	int (*put)(struct wr *w, const struct proto_msg *m);
};

static const struct proto_codec proto_codecs[] = {
	{ PROTO_HELLO, "HELLO", hello_msg_get, hello_msg_put },
	{ PROTO_SELECT, "SELECT", select_msg_get, select_msg_put },
	{ PROTO_SE_RESP, "SE_RESP", se_resp_msg_get, se_resp_msg_put },
	{ PROTO_RELAY_UP, "RELAY_UP", relay_up_msg_get, relay_up_msg_put },
	{ PROTO_HISTORY_REQ, "HISTORY_REQ", history_req_msg_get, history_req_msg_put },
	{ PROTO_PING, "PING", ping_msg_get, ping_msg_put },
	{ PROTO_PONG, "PONG", ping_msg_get, ping_msg_put },
	{ PROTO_BYE, "BYE", bye_msg_get, bye_msg_put },
	{ PROTO_MENU, "MENU", menu_msg_get, menu_msg_put },
	{ PROTO_SE_APDU, "SE_APDU", se_apdu_msg_get, se_apdu_msg_put },
	{ PROTO_RELAY_DOWN, "RELAY_DOWN", relay_down_msg_get, relay_down_msg_put },
	{ PROTO_HISTORY, "HISTORY", history_msg_get, history_msg_put },
	{ PROTO_NOTICE, "NOTICE", notice_msg_get, notice_msg_put },
	{ PROTO_ERROR, "ERROR", error_msg_get, error_msg_put },
	{ PROTO_STAGE, "STAGE", stage_msg_get, stage_msg_put },
	{ PROTO_PORTAL_REQ, "PORTAL_REQ", bye_msg_get, bye_msg_put },     /* empty, as BYE */
	{ PROTO_PORTAL_LINK, "PORTAL_LINK", notice_msg_get, notice_msg_put }, /* text */
};

static const struct proto_codec *proto_codec_of(uint8_t type)
{
	for (size_t i = 0; i < sizeof(proto_codecs) / sizeof(proto_codecs[0]); i++)
		if (proto_codecs[i].type == type)
			return &proto_codecs[i];
	return NULL;
}

const char *proto_type_name(uint8_t type)
{
	const struct proto_codec *c = proto_codec_of(type);

	return c != NULL ? c->name : NULL;
}

int proto_decode(uint8_t type, const uint8_t *p, size_t n, struct proto_msg *m)
{
	const struct proto_codec *c = proto_codec_of(type);
	struct rd r = rd_init(p, n);
	struct proto_msg tmp;

	if (c == NULL)
		return TB_E_FRAME_TYPE;
	if (p == NULL && n > 0)
		return TB_E_INVAL;
	tmp.type = type;
	TRY(c->get(&r, &tmp));
	*m = tmp;
	return 0;
}

int proto_encode(struct wr *w, const struct proto_msg *m)
{
	const struct proto_codec *c = proto_codec_of(m->type);

	if (c == NULL)
		return TB_E_FRAME_TYPE;
	return c->put(w, m);
}

int proto_frame_put(struct wr *w, const struct proto_msg *m)
{
	const uint32_t *table = (m->type & 0x80u) ? proto_phone_in : proto_srv_in;
	struct wr body;
	uint8_t *hdr = NULL;

	if (wr_room(w) < FRAME_HDR_LEN)
		return TB_E_NOSPACE;
	body = wr_init(w->p + w->len + FRAME_HDR_LEN, wr_room(w) - FRAME_HDR_LEN);
	TRY(proto_encode(&body, m));
	if (body.len + 1 > table[m->type])
		return TB_E_FRAME_OVERSIZE;
	(void)wr_reserve(w, FRAME_HDR_LEN + body.len, &hdr);
	hdr[0] = (uint8_t)((body.len + 1) >> 24);
	hdr[1] = (uint8_t)((body.len + 1) >> 16);
	hdr[2] = (uint8_t)((body.len + 1) >> 8);
	hdr[3] = (uint8_t)(body.len + 1);
	hdr[4] = m->type;
	return 0;
}
