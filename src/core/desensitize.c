/* SPDX-License-Identifier: MIT */
/* Finance-group desensitization: one left-to-right pass over the bytes of a message
 * that finds resident identity numbers, bank card numbers and phone numbers and
 * replaces their middle digits by '*'.  docs/desensitization.md is the reference for
 * the rules; the comments here say how the code keeps to them.
 *
 * The pass looks at "groups", maximal runs of ASCII digits.  An item always begins at
 * the first digit of a group and ends at the last digit of a group (or at the X of an
 * identity number), so digits inside a longer run are never matched partially.  An
 * item may span several groups joined by one space or one dash ("138 1234 5678").
 * At each group the candidates are tried in the order identity number, card, phone,
 * and the first that fits wins; the pass then continues after it.  No item has more
 * than 19 digits, so looking ahead from a group never reads more than a few dozen
 * bytes, which keeps the pass linear in the input.  Masking only ever turns an ASCII
 * digit into '*', so the output has the input's length and UTF-8 around the numbers
 * is untouched. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qun/desensitize.h"

#define ID_LEN 18
#define CARD_MIN 13
#define CARD_MAX 19
#define CN_MOBILE_LEN 11
#define E164_MIN 8
#define E164_MAX 15
/* The longest item (a 19-digit card) bounds both the digits and the groups that one
 * look-ahead collects. */
#define MAX_DIGITS CARD_MAX
#define MAX_GROUPS MAX_DIGITS

typedef struct {
    size_t s;   /* offset of the group's first digit */
    size_t e;   /* offset one past its last digit */
    size_t len; /* e - s */
    char sep;   /* the separator before this group; 0 for the first */
} group_t;

typedef struct {
    group_t g[MAX_GROUPS];
    size_t ng;
} span_t;

static bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}

static bool is_alpha(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A byte that glues a digit run into a larger token: "ORD13812345678" is an order
 * number, not a phone.  Bytes of multi-byte UTF-8 are not glue, because Chinese text
 * is written right against numbers ("手机13812345678"). */
static bool is_glue(unsigned char c) {
    return is_digit(c) || is_alpha(c) || c == '_';
}

/* May an item begin at the group starting at s?  Not when the group continues a word
 * or is the fraction of a decimal number ("3.13812345678"). */
static bool left_ok(const unsigned char *b, size_t s) {
    if (s == 0) return true;
    unsigned char c = b[s - 1];
    if (is_glue(c)) return false;
    if (c == '.' && s >= 2 && is_digit(b[s - 2])) return false;
    return true;
}

/* May an item end just before offset e?  Not when a word, more digits or a decimal
 * fraction follow. */
static bool right_ok(const unsigned char *b, size_t n, size_t e) {
    if (e >= n) return true;
    unsigned char c = b[e];
    if (is_glue(c)) return false;
    if (c == '.' && e + 1 < n && is_digit(b[e + 1])) return false;
    return true;
}

/* Is the group at s preceded by a '+' that opens an international number?  A '+'
 * stuck to a word or another '+' ("C++11", "1+1") is an operator, not a phone prefix. */
static bool plus_before(const unsigned char *b, size_t s) {
    if (s == 0 || b[s - 1] != '+') return false;
    return s == 1 || !(is_glue(b[s - 2]) || b[s - 2] == '+');
}

/* Collect the groups that follow s, joined by single spaces or dashes, while their
 * digits total at most MAX_DIGITS.  A group too long to be in any item ends the span
 * without being included; when it is the first group, the span is empty. */
static void collect(span_t *sp, const unsigned char *b, size_t n, size_t s) {
    size_t total = 0, pos = s;
    char sep = 0;
    sp->ng = 0;
    while (sp->ng < MAX_GROUPS) {
        size_t e = pos;
        /* Stop counting one digit past the longest item: that is enough to know the
         * group is too long, and it bounds the work per group start. */
        while (e < n && is_digit(b[e]) && e - pos <= MAX_DIGITS)
            e++;
        size_t len = e - pos;
        if (len > MAX_DIGITS || total + len > MAX_DIGITS) break;
        sp->g[sp->ng++] = (group_t){pos, e, len, sep};
        total += len;
        if (e + 1 < n && (b[e] == ' ' || b[e] == '-') && is_digit(b[e + 1])) {
            sep = (char)b[e];
            pos = e + 1;
        } else {
            break;
        }
    }
}

/* Copy the digits of groups i..j (at most MAX_DIGITS of them) into d; answer how many. */
static size_t gather(const span_t *sp, const unsigned char *b, size_t i, size_t j, char *d) {
    size_t k = 0;
    for (size_t g = i; g <= j; g++)
        for (size_t p = sp->g[g].s; p < sp->g[g].e; p++)
            d[k++] = (char)b[p];
    return k;
}

/* Replace by '*' every digit in [from, to) except the first keep_first and the last
 * keep_last digits; separators stay.  Callers always keep the last digit, so the
 * bytes the pass later looks back at (see left_ok and plus_before) are never changed. */
static void mask(unsigned char *b, size_t from, size_t to, size_t keep_first, size_t keep_last) {
    size_t digits = 0, k = 0;
    for (size_t p = from; p < to; p++)
        digits += is_digit(b[p]);
    for (size_t p = from; p < to; p++) {
        if (!is_digit(b[p])) continue;
        if (k >= keep_first && k + keep_last < digits) b[p] = '*';
        k++;
    }
}

static unsigned num(const unsigned char *p, size_t len) {
    unsigned v = 0;
    for (size_t i = 0; i < len; i++)
        v = v * 10 + (unsigned)(p[i] - '0');
    return v;
}

/* Is YYYYMMDD at p a real calendar date?  Years outside 1800-2099 are rejected: no
 * living resident was born earlier, and the 18-digit number dates from 1999. */
static bool date_valid(const unsigned char *p) {
    static const unsigned mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    unsigned y = num(p, 4), m = num(p + 4, 2), d = num(p + 6, 2);
    if (y < 1800 || y > 2099 || m < 1 || m > 12 || d < 1) return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    unsigned max = mdays[m - 1] + (m == 2 && leap);
    return d <= max;
}

/* Check the 18 characters at p as a GB 11643-1999 resident identity number: the
 * ISO 7064 MOD 11-2 check character and the birth date in characters 7 to 14.  The
 * first 17 are digits (the caller knows); the last is a digit, X or x. */
static bool id_valid(const unsigned char *p) {
    static const unsigned w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[11] = {'1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'};
    unsigned sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (unsigned)(p[i] - '0') * w[i];
    unsigned char got = p[17] == 'x' ? 'X' : p[17];
    return got == (unsigned char)check[sum % 11] && date_valid(p + 6);
}

static bool luhn(const char *d, size_t len) {
    unsigned sum = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned v = (unsigned)(d[len - 1 - i] - '0');
        if (i & 1) {
            v *= 2;
            if (v > 9) v -= 9;
        }
        sum += v;
    }
    return sum % 10 == 0;
}

/* Identity number at the first group: 18 digits in one run, or 17 digits and an X.
 * Answers the end offset of the number, or 0. */
static size_t match_id(const span_t *sp, const unsigned char *b, size_t n) {
    const group_t *g = &sp->g[0];
    size_t end = 0;
    if (g->len == ID_LEN && right_ok(b, n, g->e))
        end = g->e;
    else if (g->len == ID_LEN - 1 && g->e < n && (b[g->e] == 'X' || b[g->e] == 'x') &&
             right_ok(b, n, g->e + 1))
        end = g->e + 1;
    return end && id_valid(b + g->s) ? end : 0;
}

/* Card at the first group: 13 to 19 digits in one run, or printed in groups (the
 * first of 4 digits, the rest of 3 to 6, all joined by the same separator), Luhn
 * valid.  Of several valid lengths the longest wins, so a 19-digit card printed
 * 4-4-4-4-3 is not cut at 16.  Digits right after a '+' are left to the phone rule:
 * nobody writes a card number that way, while a tenth of all phone numbers are
 * Luhn-valid by chance.  Answers the index of the last group, or -1. */
static long match_card(const span_t *sp, const unsigned char *b, size_t n, size_t s) {
    char d[MAX_DIGITS];
    const group_t *g = sp->g;
    if (plus_before(b, s)) return -1;
    if (g[0].len >= CARD_MIN) {
        size_t k = gather(sp, b, 0, 0, d);
        return right_ok(b, n, g[0].e) && luhn(d, k) ? 0 : -1;
    }
    if (g[0].len != 4) return -1;
    long best = -1;
    size_t total = g[0].len;
    for (size_t j = 1; j < sp->ng; j++) {
        if (g[j].len < 3 || g[j].len > 6 || g[j].sep != g[1].sep) break;
        total += g[j].len;
        if (total >= CARD_MIN && right_ok(b, n, g[j].e)) {
            size_t k = gather(sp, b, 0, j, d);
            if (luhn(d, k)) best = (long)j;
        }
    }
    return best;
}

static bool mobile_head(const unsigned char *p) {
    return p[0] == '1' && p[1] >= '3' && p[1] <= '9';
}

/* Mainland mobile starting at group k: 11 digits in one run, or 3-4-4 with one kind
 * of separator.  Answers the index of the last group, or -1. */
static long match_cn_number(const span_t *sp, const unsigned char *b, size_t n, size_t k) {
    const group_t *g = sp->g;
    if (k < sp->ng && g[k].len == CN_MOBILE_LEN && mobile_head(b + g[k].s) && right_ok(b, n, g[k].e))
        return (long)k;
    if (k + 2 < sp->ng && g[k].len == 3 && g[k + 1].len == 4 && g[k + 2].len == 4 &&
        g[k + 2].sep == g[k + 1].sep && mobile_head(b + g[k].s) && right_ok(b, n, g[k + 2].e))
        return (long)(k + 2);
    return -1;
}

/* Phone at the first group.  Mainland mobiles come first, with or without an 86
 * prefix (itself with or without '+'), keeping the prefix, the first 3 and the last 4
 * digits; otherwise, after a '+', an international number of 8 to 15 digits, keeping
 * the last 4.  Answers the end offset of the number (after masking it), or 0. */
static size_t match_phone(const span_t *sp, unsigned char *b, size_t n, size_t s) {
    const group_t *g = sp->g;
    bool plus = plus_before(b, s);
    long last;

    /* "86 138 1234 5678", "+86-13812345678" and the like. */
    if (g[0].len == 2 && b[g[0].s] == '8' && b[g[0].s + 1] == '6' &&
        (last = match_cn_number(sp, b, n, 1)) >= 0) {
        mask(b, g[1].s, g[last].e, 3, 4);
        return g[last].e;
    }
    /* "+8613812345678" and "8613812345678". */
    if (g[0].len == 2 + CN_MOBILE_LEN && b[g[0].s] == '8' && b[g[0].s + 1] == '6' &&
        mobile_head(b + g[0].s + 2) && right_ok(b, n, g[0].e)) {
        mask(b, g[0].s + 2, g[0].e, 3, 4);
        return g[0].e;
    }
    /* A bare mobile; after a '+' the digits are a country code and more, so this does
     * not apply there. */
    if (!plus && (last = match_cn_number(sp, b, n, 0)) >= 0) {
        mask(b, g[0].s, g[last].e, 3, 4);
        return g[last].e;
    }
    if (plus) {
        size_t total = 0;
        last = -1;
        for (size_t j = 0; j < sp->ng; j++) {
            total += g[j].len;
            if (total > E164_MAX) break;
            if (total >= E164_MIN && right_ok(b, n, g[j].e)) last = (long)j;
        }
        if (last >= 0) {
            mask(b, g[0].s, g[last].e, 0, 4);
            return g[last].e;
        }
    }
    return 0;
}

/* Try every kind at the group starting at s, in precedence order; mask and count the
 * first that fits.  Answers the offset just past it, or 0 when nothing fits. */
static size_t match_at(unsigned char *b, size_t n, size_t s, qun_mask_counts_t *c) {
    span_t sp;
    if (!left_ok(b, s)) return 0;
    collect(&sp, b, n, s);
    if (sp.ng == 0) return 0;

    size_t end = match_id(&sp, b, n);
    if (end) {
        /* Keep the region code (6) and the sequence and check characters (4); the
         * birth date goes. */
        memset(b + s + 6, '*', 8);
        c->national_ids++;
        return end;
    }
    long last = match_card(&sp, b, n, s);
    if (last >= 0) {
        mask(b, s, sp.g[last].e, 0, 4);
        c->bank_cards++;
        return sp.g[last].e;
    }
    end = match_phone(&sp, b, n, s);
    if (end) c->phones++;
    return end;
}

void qun_desensitize_inplace(char *buf, size_t n, qun_mask_counts_t *counts) {
    unsigned char *b = (unsigned char *)buf;
    qun_mask_counts_t c = {0};
    size_t p = 0;
    while (p < n) {
        if (!is_digit(b[p])) {
            p++;
            continue;
        }
        /* p is the first digit of a group: the loop only ever stops at a non-digit
         * or just past a whole group or item. */
        size_t end = match_at(b, n, p, &c);
        if (end) {
            p = end;
            continue;
        }
        while (p < n && is_digit(b[p]))
            p++;
    }
    if (counts) {
        counts->phones += c.phones;
        counts->national_ids += c.national_ids;
        counts->bank_cards += c.bank_cards;
    }
}

qun_rc qun_desensitize(const char *in, size_t n, char **out, qun_mask_counts_t *counts, qun_err_t *err) {
    if (!out) return qun_fail(err, QUN_INTERNAL, "desensitize: no place for the output");
    *out = NULL;
    if (!in && n) return qun_fail(err, QUN_INTERNAL, "desensitize: NULL input of %zu bytes", n);
    if (n == SIZE_MAX) return qun_fail(err, QUN_NOMEM, "desensitize: input too large");
    char *o = malloc(n + 1);
    if (!o) return qun_fail(err, QUN_NOMEM, "desensitize: cannot allocate %zu bytes", n + 1);
    if (n) memcpy(o, in, n);
    o[n] = '\0';
    qun_desensitize_inplace(o, n, counts);
    *out = o;
    return QUN_OK;
}

json_t *qun_mask_counts_json(const qun_mask_counts_t *counts) {
    if (!counts) return NULL;
    return json_pack("{s:I, s:I, s:I}", "phones", (json_int_t)counts->phones, "national_ids",
                     (json_int_t)counts->national_ids, "bank_cards", (json_int_t)counts->bank_cards);
}
