/* sw_map.c - the one table from internal TB_E_* codes to the ISO 7816-4 / GlobalPlatform
 * status words the se answers (STYLE.md section 4). Every error path of every handler
 * ends here; an unlisted code answers 6F00. */
#include <stddef.h>

#include "err.h"
#include "se.h"
#include "sw.h"

struct se_sw_entry {
	int err;
	uint16_t sw;
};

static const struct se_sw_entry se_sw_table[] = {
	/* lengths */
	{ TB_E_TRUNC, SW_WRONG_LENGTH },
	{ TB_E_LEFTOVER, SW_WRONG_LENGTH },
	{ TB_E_APDU_SHORT, SW_WRONG_LENGTH },
	{ TB_E_APDU_LC, SW_WRONG_LENGTH },
	{ TB_E_APDU_LE, SW_WRONG_LENGTH },
	{ TB_E_APDU_FORM, SW_WRONG_LENGTH },
	/* data */
	{ TB_E_INVAL, SW_WRONG_DATA },
	{ TB_E_KEYLEN, SW_WRONG_DATA },
	{ TB_E_SIGNATURE, SW_WRONG_DATA },
	{ TB_E_TLV_TAG, SW_WRONG_DATA },
	{ TB_E_TLV_LEN_TRUNC, SW_WRONG_DATA },
	{ TB_E_TLV_LEN_PAST_END, SW_WRONG_DATA },
	{ TB_E_TLV_LEN_FORM, SW_WRONG_DATA },
	{ TB_E_TLV_INDEFINITE, SW_WRONG_DATA },
	{ TB_E_TLV_NOT_FOUND, SW_WRONG_DATA },
	{ TB_E_TLV_NOT_CONSTRUCTED, SW_WRONG_DATA },
	/* secure channel and access */
	{ TB_E_SE_SECURITY, SW_SECURITY_STATUS },
	{ TB_E_SCP_CMAC, SW_SECURITY_STATUS },
	{ TB_E_SCP_PADDING, SW_SECURITY_STATUS },
	{ TB_E_SCP_LEVEL, SW_SECURITY_STATUS },
	{ TB_E_SCP_CLOSED, SW_SECURITY_STATUS },
	{ TB_E_SCP_STATE, SW_SECURITY_STATUS },
	{ TB_E_SCP_KEYSET, SW_REF_DATA_NOT_FOUND },
	{ TB_E_SCP_LOCKED, SE_SW_KEYSET_LOCKED },
	{ TB_E_SCP_COUNTER, SW_CONDITIONS_NOT_SATISFIED },
	/* wallet conditions */
	{ TB_E_SE_STATE, SW_CONDITIONS_NOT_SATISFIED },
	{ TB_E_SE_FUNDS, SW_CONDITIONS_NOT_SATISFIED },
	{ TB_E_SE_LIMIT, SW_CONDITIONS_NOT_SATISFIED },
	{ TB_E_SE_EXPIRED, SW_CONDITIONS_NOT_SATISFIED },
	{ TB_E_SE_NOT_ARMED, SW_CONDITIONS_NOT_SATISFIED },
	{ TB_E_SE_LOCKED, SE_SW_WALLET_LOCKED },
	{ TB_E_SE_NOT_FOUND, SW_REF_DATA_NOT_FOUND },
	{ TB_E_SE_EXISTS, SE_SW_EXISTS },
	{ TB_E_SE_FULL, SW_NOT_ENOUGH_MEMORY },
	{ TB_E_NOSPACE, SW_NOT_ENOUGH_MEMORY },
	/* command coding */
	{ TB_E_SE_INS, SW_INS_NOT_SUPPORTED },
	{ TB_E_SE_P1P2, SW_INCORRECT_P1P2 },
	{ TB_E_SE_CLA, SW_CLA_NOT_SUPPORTED },
	{ TB_E_SE_CHANNEL, SW_LOGICAL_CHANNEL_NOT_SUPPORTED },
	/* persistent memory */
	{ TB_E_STORE, SW_MEMORY_FAILURE },
	{ TB_E_JOURNAL, SW_MEMORY_FAILURE },
	{ TB_E_JNL_STATE, SW_MEMORY_FAILURE },
	{ TB_E_SE_IMAGE, SW_MEMORY_FAILURE },
};

uint16_t se_sw(int err)
{
	if (err == 0)
		return SW_OK;
	for (size_t i = 0; i < sizeof(se_sw_table) / sizeof(se_sw_table[0]); i++)
		if (se_sw_table[i].err == err)
			return se_sw_table[i].sw;
	return SW_UNKNOWN;
}
