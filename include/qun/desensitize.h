/* SPDX-License-Identifier: MIT */
/* Desensitization of free text for finance groups (docs/design.md section 4): before a
 * retained copy or an export, personal data in message text is masked with '*' and
 * counted per type.  Three kinds are recognised: PRC resident identity numbers
 * (GB 11643-1999, checksum and birth date validated), bank card numbers (13 to 19
 * digits, Luhn-valid) and phone numbers (mainland mobiles, and '+' international
 * numbers).  The exact rules, precedence and mask formats are in
 * docs/desensitization.md; every mask replaces an ASCII digit by one '*', so the
 * output always has exactly the length of the input and every other byte, UTF-8
 * included, passes through unchanged. */
#ifndef QUN_DESENSITIZE_H
#define QUN_DESENSITIZE_H

#include <jansson.h>
#include <stddef.h>

#include "qun/errors.h"

/* How many items of each kind a pass masked.  The functions below add to these
 * fields rather than overwrite them, so one struct can total a whole export; start
 * from a zeroed struct ({0}). */
typedef struct {
    size_t phones;       /* mainland mobile and '+' international numbers */
    size_t national_ids; /* 18-character resident identity numbers */
    size_t bank_cards;   /* Luhn-valid card numbers */
} qun_mask_counts_t;

/* Mask the n bytes of in into a new buffer.
 *
 * in may hold any bytes (it need not be NUL-terminated, and embedded NULs are
 * copied like other bytes); in may be NULL only when n is 0.  On QUN_OK, *out is a
 * newly allocated buffer of n + 1 bytes, the masked copy followed by a NUL, which the
 * caller frees with free(); counts (may be NULL) has the number of masked items of
 * each kind added to it.  On failure *out is NULL, counts is untouched and err (may be
 * NULL) says why: QUN_NOMEM if the copy cannot be allocated, QUN_INTERNAL for a NULL
 * in with n > 0 or a NULL out.  Time is linear in n and the only allocation is the
 * output buffer. */
qun_rc qun_desensitize(const char *in, size_t n, char **out, qun_mask_counts_t *counts, qun_err_t *err);

/* Mask the n bytes of buf where they lie; the same rules as qun_desensitize, which
 * cannot fail here because nothing is allocated.  buf may be NULL only when n is 0;
 * counts may be NULL. */
void qun_desensitize_inplace(char *buf, size_t n, qun_mask_counts_t *counts);

/* The counts as a new JSON object {"phones": n, "national_ids": n, "bank_cards": n}
 * for a ledger entry; the caller owns the reference.  NULL if counts is NULL or
 * memory runs out. */
json_t *qun_mask_counts_json(const qun_mask_counts_t *counts);

#endif
