/* err.h - the one table of tapbridge error codes.
 * Every function returns 0 or a negative TB_E_*; tb_strerror() gives the human text.
 * Codes are stable: tools print them and tests assert on them. */
#ifndef TB_ERR_H
#define TB_ERR_H

#define TB_ERRORS(X) \
	X(TB_E_TRUNC,            -1,  "input ends before the item does") \
	X(TB_E_NOSPACE,          -2,  "output buffer too small") \
	X(TB_E_INVAL,            -3,  "invalid argument") \
	X(TB_E_LEFTOVER,         -4,  "unexpected bytes after the end of an item") \
	X(TB_E_HEX,              -5,  "not a valid hex string") \
	X(TB_E_UNSUPPORTED,      -6,  "not supported") \
	X(TB_E_INTERNAL,         -7,  "internal error") \
	X(TB_E_NOMEM,            -8,  "out of memory") \
	X(TB_E_IO,               -9,  "input/output error") \
	X(TB_E_SECRET,           -10, "refused to print a buffer marked secret") \
	X(TB_E_TLV_TAG,          -20, "TLV tag longer than 3 bytes or malformed") \
	X(TB_E_TLV_LEN_TRUNC,    -21, "TLV length field truncated") \
	X(TB_E_TLV_LEN_PAST_END, -22, "TLV length runs past the end of the data") \
	X(TB_E_TLV_DEPTH,        -23, "TLV nesting too deep") \
	X(TB_E_TLV_INDEFINITE,   -24, "TLV indefinite length not allowed") \
	X(TB_E_TLV_LEN_FORM,     -25, "TLV length longer than 3 bytes or not minimal") \
	X(TB_E_TLV_NOT_CONSTRUCTED, -26, "TLV element is not constructed") \
	X(TB_E_TLV_NOT_FOUND,    -27, "TLV tag not found") \
	X(TB_E_APDU_SHORT,       -30, "APDU shorter than its 4-byte header") \
	X(TB_E_APDU_LC,          -31, "APDU Lc does not match the data") \
	X(TB_E_APDU_LE,          -32, "APDU Le field malformed") \
	X(TB_E_APDU_FORM,        -33, "APDU length fields malformed") \
	X(TB_E_APDU_RESP,        -34, "response APDU shorter than SW1 SW2") \
	X(TB_E_FRAME_OVERSIZE,   -40, "frame larger than the link allows") \
	X(TB_E_FRAME_TYPE,       -41, "unknown frame type") \
	X(TB_E_FRAME_EMPTY,      -42, "frame without a type byte") \
	X(TB_E_CRYPTO,           -50, "cryptographic library failure") \
	X(TB_E_KEYLEN,           -51, "key length not 16, 24 or 32 bytes") \
	X(TB_E_SIGNATURE,        -52, "signature does not verify") \
	X(TB_E_AEAD,             -53, "authenticated decryption failed: tag does not verify") \
	X(TB_E_SCP_STATE,        -60, "secure channel command out of order") \
	X(TB_E_SCP_CARD_CRYPTOGRAM, -61, "card cryptogram does not verify") \
	X(TB_E_SCP_HOST_CRYPTOGRAM, -62, "host cryptogram does not verify") \
	X(TB_E_SCP_CMAC,         -63, "C-MAC does not verify") \
	X(TB_E_SCP_RMAC,         -64, "R-MAC does not verify") \
	X(TB_E_SCP_PADDING,      -65, "secure messaging padding is wrong") \
	X(TB_E_SCP_LEVEL,        -66, "security level not allowed") \
	X(TB_E_SCP_CLOSED,       -67, "secure channel closed after a security error") \
	X(TB_E_SCP_RESPONSE,     -68, "INITIALIZE UPDATE response malformed") \
	X(TB_E_SCP_CHALLENGE,    -69, "pseudo-random card challenge does not verify") \
	X(TB_E_SCP_SW,           -70, "card answered an error status word") \
	X(TB_E_SCP_COUNTER,      -71, "sequence counter exhausted") \
	X(TB_E_SCP_KEYSET,       -72, "key set not found") \
	X(TB_E_SCP_LOCKED,       -73, "key set locked after failed authentications") \
	X(TB_E_SCP_CLA,          -74, "class byte not allowed for secure messaging") \
	X(TB_E_DB,              -200, "database error") \
	X(TB_E_DB_NOT_FOUND,    -201, "no such row in the database") \
	X(TB_E_DB_EXISTS,       -202, "row already exists in the database") \
	X(TB_E_DB_CONFLICT,     -203, "idempotency key or id already used for different content") \
	X(TB_E_DB_CONSTRAINT,   -204, "a database constraint refused the change") \
	X(TB_E_DB_STATE,        -205, "database batch or request call out of order") \
	X(TB_E_DB_SCHEMA,       -206, "database schema migration failed or schema newer than this program") \
	X(TB_E_DB_URL,          -207, "database URL not understood") \
	X(TB_E_DB_STALE,        -208, "blob version not newer than the stored one") \
	X(TB_E_SRV_AMOUNT,      -210, "amount zero or above the limit") \
	X(TB_E_SRV_FUNDS,       -211, "purse balance too low") \
	X(TB_E_SRV_LIMIT,       -212, "purse balance would exceed the limit") \
	X(TB_E_SRV_UNKNOWN_SE,  -213, "unknown se") \
	X(TB_E_SRV_UNKNOWN_READER, -214, "unknown reader") \
	X(TB_E_SRV_UNKNOWN_SERVICE, -215, "unknown service") \
	X(TB_E_SRV_LOCKED,      -216, "wallet locked") \
	X(TB_E_SRV_LOST,        -217, "se reported lost") \
	X(TB_E_SRV_READER_REVOKED, -218, "reader revoked") \
	X(TB_E_SRV_KIND,        -219, "service kind does not allow this operation") \
	X(TB_E_SRV_EXPIRED,     -220, "ticket outside its validity") \
	X(TB_E_SRV_USED,        -221, "ticket used up or revoked") \
	X(TB_E_SRV_ITEM,        -222, "item not in the service's price table") \
	X(TB_E_SRV_STATE,       -223, "order or se in the wrong state for this operation") \
	X(TB_E_SRV_NOT_OWNER,   -224, "blob belongs to another se that this one does not replace") \
	X(TB_E_SRV_KEY_VERSION, -225, "reader key version older than the stored one") \
	X(TB_E_SRV_REFUND,      -226, "refund does not match a payment or exceeds it") \
	X(TB_E_REFUND_NOT_PAID, -300, "not a payment of this se") \
	X(TB_E_REFUND_OVER,     -301, "more than was paid") \
	X(TB_E_SRV_UNKNOWN_TICKET, -227, "unknown ticket") \
	X(TB_E_SRV_UNKNOWN_ORDER, -228, "unknown order") \
	X(TB_E_SRV_RECEIPT,     -229, "receipt not a debit of this se or its MAC failed") \
	X(TB_E_SRV_FLAG_REUSED, -230, "flag used before (a copy or a rolled-back se)") \
	X(TB_E_PROTO_FIELD,     -240, "phone session frame field out of range") \
	X(TB_E_PROTO_TEXT,      -241, "phone session text not UTF-8 or with control characters") \
	X(TB_E_PROTO_VERSION,   -242, "phone session protocol version not supported") \
	X(TB_E_PROTO_STATE,     -243, "phone session not open: before HELLO or ending") \
	X(TB_E_RMSG_TYPE,       -250, "relay message type unknown or not expected here") \
	X(TB_E_RMSG_FIELD,      -251, "relay message field out of range") \
	X(TB_E_RMSG_TEXT,       -252, "relay message text not printable ASCII") \
	X(TB_E_RDR_DENIED,      -260, "se on the reader's deny list") \
	X(TB_E_RDR_SERVER,      -261, "server not authenticated") \
	X(TB_E_RDR_REFUSED,     -262, "refused by the se, the server or the reader's rules") \
	X(TB_E_RDR_FULL,        -263, "reader outbox full") \
	X(TB_E_RDR_STATE,       -264, "reader state file malformed") \
	X(TB_E_RDR_KEYFILE,     -265, "reader key file malformed") \
	X(TB_E_RDR_CARD,        -266, "card gone or did not answer") \
	X(TB_E_VAULT_PROOF,     -280, "proof failed") \
	X(TB_E_VAULT_NO_PAUTH,  -281, "personal data deleted") \
	X(TB_E_VAULT_NO_LOST,   -282, "this se replaces no lost se") \
	X(TB_E_VAULT_NO_BACKUP, -283, "no backup of the lost se") \
	X(TB_E_VAULT_BLOB,      -284, "backup blob malformed or of another se") \
	X(TB_E_SAM_CURRENT,     -290, "the device's key set is at its family's current version already") \
	X(TB_E_SAM_KCV,         -291, "the card's PUT KEY answer (new KVN, key check values) does not match") \
	X(TB_E_PORTAL_LINK,     -270, "portal login link malformed, expired, used or from before a restart") \
	X(TB_E_PORTAL_SESSION,  -271, "portal session unknown, logged out or timed out") \
	X(TB_E_PORTAL_CSRF,     -272, "portal form without the session's CSRF token") \
	X(TB_E_PORTAL_CODE,     -273, "unlock code wrong, expired or not set") \
	X(TB_E_PORTAL_TRIES,    -274, "too many wrong unlock codes: ask the operator for a new one") \
	X(TB_E_PORTAL_FULL,     -275, "portal session or used-link table full") \
	X(TB_E_PORTAL_REQUEST,  -276, "portal request malformed") \
	X(TB_E_SAM_PROTO,       -150, "sam request malformed or out of order") \
	X(TB_E_SAM_DENIED,      -151, "sam request needs a capability this sam was not started with") \
	X(TB_E_SAM_KEY,         -152, "sam key (role, version) not loaded") \
	X(TB_E_SAM_BUSY,        -153, "sam session table full") \
	X(TB_E_SAM_FULL,        -154, "no free key version: retire one first") \
	X(TB_E_SAM_KEYFILE,     -155, "sam key file malformed or not sealed under this key-encryption key") \
	X(TB_E_SAM_RECEIPT,     -156, "receipt MAC does not verify") \
	X(TB_E_SAM_BLOB,        -157, "sealed blob malformed") \
	X(TB_E_PKCS11,          -158, "PKCS#11 module, token or key failure") \
	X(TB_E_STORE,           -90, "page store read, write or sync failed") \
	X(TB_E_JOURNAL,         -91, "journal corrupt: committed data cannot be recovered") \
	X(TB_E_JNL_STATE,       -92, "journal call out of order or recovery needed") \
	X(TB_E_SE_IMAGE,        -100, "se image not formatted or inconsistent") \
	X(TB_E_SE_SECURITY,     -101, "secure channel, key set role or level does not allow the command") \
	X(TB_E_SE_STATE,        -102, "conditions of use not satisfied") \
	X(TB_E_SE_LOCKED,       -103, "wallet locked") \
	X(TB_E_SE_FUNDS,        -104, "balance too low for the debit") \
	X(TB_E_SE_LIMIT,        -105, "credit would exceed the maximum balance") \
	X(TB_E_SE_NOT_FOUND,    -106, "record or application not found") \
	X(TB_E_SE_EXISTS,       -107, "record already exists") \
	X(TB_E_SE_FULL,         -108, "no free record slot") \
	X(TB_E_SE_INS,          -109, "instruction not supported") \
	X(TB_E_SE_P1P2,         -110, "incorrect P1 or P2") \
	X(TB_E_SE_CLA,          -111, "class byte not supported") \
	X(TB_E_SE_EXPIRED,      -112, "token, ticket or permit out of its validity") \
	X(TB_E_SE_NOT_ARMED,    -113, "relay not armed") \
	X(TB_E_SE_CHANNEL,      -114, "logical channels not supported")

enum tb_err {
	TB_OK = 0,
#define TB_ERR_ENUM(name, val, msg) name = val,
	TB_ERRORS(TB_ERR_ENUM)
#undef TB_ERR_ENUM
};

/* Human text for a code; never NULL, also for unknown codes. */
const char *tb_strerror(int err);
/* The symbolic name ("TB_E_TRUNC"), for tools and test output. */
const char *tb_errname(int err);

#endif
