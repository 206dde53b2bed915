/* perso.c - personalisation on an image no se is running on (the admin tool's se-init
 * and se-keys): format, key sets, configuration. Each call is one journal transaction
 * over its own journal, so a cut leaves the image as it was or as asked. */
#include <string.h>

#include "ct.h"
#include "err.h"
#include "se.h"

/* Recovers a journal over store and loads the image into *img. */
static int perso_open(struct jnl *j, const struct se_store *store, struct se_image *img)
{
	int rc;

	if (store == NULL)
		return TB_E_INVAL;
	jnl_init(j, store);
	if ((rc = jnl_recover(j)) != 0)
		return rc;
	return img_load(j, img);
}

int se_format(const struct se_store *store, const uint8_t serial[SE_SERIAL_LEN])
{
	if (store == NULL || serial == NULL)
		return TB_E_INVAL;
	return img_format(store, serial);
}

int se_put_keyset(const struct se_store *store, uint8_t kvn, enum se_role role,
		  const struct scp_keys *keys)
{
	uint8_t page_keys[IMG_KEYS_LEN];
	struct se_image img;
	struct img_patch patch;
	struct jnl j;
	int slot, rc;

	if (keys == NULL || kvn == 0x00 || kvn == SE_DEFAULT_KVN ||
	    (role != SE_ROLE_SERVER && role != SE_ROLE_READER))
		return TB_E_INVAL;
	if (keys->len != 16 && keys->len != 24 && keys->len != 32)
		return TB_E_KEYLEN;
	if ((rc = perso_open(&j, store, &img)) != 0)
		return rc;
	if ((rc = img_keyset_place(&img, kvn, (uint8_t)role, (uint8_t)keys->len, &slot)) != 0)
		return rc;
	memset(page_keys, 0, sizeof(page_keys));
	memcpy(page_keys, keys->enc, keys->len);
	memcpy(page_keys + SCP_KEY_MAX, keys->mac, keys->len);
	memcpy(page_keys + 2 * SCP_KEY_MAX, keys->dek, keys->len);
	patch = (struct img_patch){ (uint16_t)(IMG_PG_KEYSET + (unsigned)slot), IMG_KEYS_AT,
				    page_keys, IMG_KEYS_LEN };
	rc = img_commit(&j, &img, &patch, 1);
	ct_wipe(page_keys, sizeof(page_keys));
	return rc;
}

int se_configure(const struct se_store *store, uint32_t max_balance, uint8_t lockout_limit)
{
	struct se_image img;
	struct jnl j;
	int rc;

	if (lockout_limit == 0)
		return TB_E_INVAL;
	if ((rc = perso_open(&j, store, &img)) != 0)
		return rc;
	if (max_balance < img.balance)
		return TB_E_INVAL;
	img.max_balance = max_balance;
	img.lockout_limit = lockout_limit;
	return img_commit(&j, &img, NULL, 0);
}
