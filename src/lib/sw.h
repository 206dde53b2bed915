/* sw.h - ISO/IEC 7816-4 and GlobalPlatform status words as named constants,
 * and their human messages. */
#ifndef TB_SW_H
#define TB_SW_H

#include <stdint.h>

#define SW_OK                      0x9000u
#define SW_BYTES_AVAILABLE         0x6100u /* 61XX: XX more bytes with GET RESPONSE */
#define SW_WARN_NO_CHANGE          0x6200u
#define SW_WARN_EOF                0x6282u
#define SW_WARN_CORRUPTED          0x6281u
#define SW_WARN_SELECTED_INVALIDATED 0x6283u
#define SW_MORE_DATA               0x6310u
#define SW_AUTH_FAILED             0x6300u /* e.g. host cryptogram wrong */
#define SW_VERIFY_FAILED           0x63C0u /* 63CX: X tries left */
#define SW_EXEC_ERROR              0x6400u
#define SW_MEMORY_FAILURE          0x6581u
#define SW_WRONG_LENGTH            0x6700u
#define SW_CLA_FUNC_NOT_SUPPORTED  0x6800u
#define SW_LOGICAL_CHANNEL_NOT_SUPPORTED 0x6881u
#define SW_SECURE_MESSAGING_NOT_SUPPORTED 0x6882u
#define SW_COMMAND_NOT_ALLOWED     0x6900u
#define SW_INCOMPATIBLE_FILE       0x6981u
#define SW_SECURITY_STATUS         0x6982u
#define SW_AUTH_METHOD_BLOCKED     0x6983u
#define SW_REF_DATA_NOT_USABLE     0x6984u
#define SW_CONDITIONS_NOT_SATISFIED 0x6985u
#define SW_COMMAND_NOT_ALLOWED_NO_EF 0x6986u
#define SW_SM_DATA_MISSING         0x6987u
#define SW_SM_DATA_INCORRECT       0x6988u
#define SW_WRONG_DATA              0x6A80u
#define SW_FUNC_NOT_SUPPORTED      0x6A81u
#define SW_FILE_NOT_FOUND          0x6A82u
#define SW_RECORD_NOT_FOUND        0x6A83u
#define SW_NOT_ENOUGH_MEMORY       0x6A84u
#define SW_INCORRECT_P1P2          0x6A86u
#define SW_LC_INCONSISTENT_P1P2    0x6A87u
#define SW_REF_DATA_NOT_FOUND      0x6A88u
#define SW_WRONG_P1P2              0x6B00u
#define SW_WRONG_LE                0x6C00u /* 6CXX: exact length XX */
#define SW_INS_NOT_SUPPORTED       0x6D00u
#define SW_CLA_NOT_SUPPORTED       0x6E00u
#define SW_UNKNOWN                 0x6F00u

/* A short English sentence for any status word, including the XX-parameter
 * families (61XX, 63CX, 6CXX); never NULL. Writes into buf (cap bytes) when
 * the message needs a number, otherwise returns a constant string. A message
 * longer than cap - 1 is cut; with buf NULL or cap 0 a family gets its sentence
 * without the number ("wrong Le"). */
const char *sw_message(uint16_t sw, char *buf, unsigned cap);

/* 1 for 9000 and the 62XX/63XX warnings: exactly the SWs SCP03 protects with an
 * R-MAC (GP Amd D 6.2.5); 0 for everything else, errors and 61XX included.
 * 61XX is not an outcome of the command but a transport-level hint (T=0): the
 * transport answers it with GET RESPONSE and only the final SW of the chain
 * is classified here. */
int sw_is_success_or_warning(uint16_t sw);

#endif
