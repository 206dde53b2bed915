/* ct.h - constant-time comparison and secret wiping.
 * Every MAC, cryptogram and secret comparison in the project goes through
 * ct_eq(); memcmp is kept out of such code by a check in `make check`. */
#ifndef TB_CT_H
#define TB_CT_H

#include <stddef.h>

/* 1 when the n bytes at a and b are equal, 0 otherwise; time depends on n only. */
int ct_eq(const void *a, const void *b, size_t n);
/* Overwrites n bytes with zeros in a way the compiler may not remove. */
void ct_wipe(void *p, size_t n);

#endif
