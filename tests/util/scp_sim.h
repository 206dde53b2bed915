/* scp_sim.h - a simulated card for sam tests: the SCP03 card role (scp_card_*) with a
 * given static key set, its sequence counter kept in memory, and an echo application
 * (answers a command's data || 9000). Header-only; each test includes it once. */
#ifndef TB_TEST_SCP_SIM_H
#define TB_TEST_SCP_SIM_H

#include <string.h>

#include "apdu.h"
#include "crypto.h"
#include "err.h"
#include "scp03.h"

struct scp_sim {
	struct scp_card c;
	struct scp_keys keys;
	uint8_t kvn;
	uint32_t counter;
	int auth_ok;        /* EXTERNAL AUTHENTICATE succeeded */
	int auth_failed;
	int delivered;      /* commands handed to the application */
	int authenticated;  /* ... the last one came under an authenticated session */
};

/* i: the card's SCP03 parameter; serial goes into the KDD as 00 00 || serial. */
static inline int scp_sim_init(struct scp_sim *m, uint8_t i, const uint8_t serial[8],
			       const uint8_t *aid, size_t aid_len, const struct scp_keys *k,
			       uint8_t kvn)
{
	struct scp_card_config cc;

	memset(m, 0, sizeof(*m));
	memset(&cc, 0, sizeof(cc));
	cc.i = i;
	memcpy(cc.kdd + 2, serial, 8);
	cc.aid = aid;
	cc.aid_len = aid_len;
	m->keys = *k;
	m->kvn = kvn;
	m->counter = 5;
	return scp_card_init(&m->c, &cc);
}

/* One command APDU in, one response APDU out (*rn bytes, cap >= n + 64). 0 or TB_E_*. */
static inline int scp_sim_apdu(struct scp_sim *m, const uint8_t *cmd, size_t n, uint8_t *resp,
			       size_t cap, size_t *rn)
{
	uint8_t plain[4096], app[4096];
	struct scp_card_result res;
	struct wr w = wr_init(resp, cap);
	int rc;

	if ((rc = scp_card_command(&m->c, cmd, n, &res, &w)) != 0)
		return rc;
	if (res.action == SCP_CARD_NEED_KEYS) {
		uint8_t challenge[SCP_S16];

		w = wr_init(resp, cap);
		if (res.kvn != 0 && res.kvn != m->kvn)
			rc = scp_card_refuse(&m->c, 0x6A88, &res, &w);
		else if ((rc = crypto_random(challenge, sizeof(challenge))) == 0)
			rc = scp_card_supply_keys(&m->c, m->kvn, &m->keys, m->counter, challenge,
						  m->c.challenge_len, &res, &w);
		if (rc != 0)
			return rc;
	}
	if (res.action == SCP_CARD_PERSIST) {
		m->counter = res.counter;
		w = wr_init(resp, cap);
		if ((rc = scp_card_counter_saved(&m->c, &res, &w)) != 0)
			return rc;
	}
	if (res.action == SCP_CARD_DELIVER) {
		struct apdu a;
		struct wr aw = wr_init(app, sizeof(app));

		if (w.len > sizeof(plain))
			return TB_E_NOSPACE;
		memcpy(plain, w.p, w.len);
		if ((rc = apdu_parse(plain, w.len, &a)) != 0 ||
		    (rc = apdu_resp_encode(a.data, a.nc, 0x9000, &aw)) != 0)
			return rc;
		m->delivered++;
		m->authenticated = res.authenticated;
		w = wr_init(resp, cap);
		if ((rc = scp_card_respond(&m->c, app, aw.len, &w)) != 0)
			return rc;
	}
	if (res.auth == SCP_CARD_AUTH_OK)
		m->auth_ok++;
	if (res.auth == SCP_CARD_AUTH_FAILED)
		m->auth_failed++;
	*rn = w.len;
	return 0;
}

#endif
