/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/desensitize.c: identity numbers (computed here with the
 * MOD 11-2 rule, and the published samples of GB 11643-1999), public test card
 * numbers, mainland and international phones in several layouts and inside Chinese
 * text; negatives such as wrong check characters, impossible birth dates, Luhn-invalid
 * cards and digits inside longer runs; the counts and their JSON; and randomized
 * inputs that must keep every invariant of the pass. */
#include <stdint.h>

#include "qun/desensitize.h"
#include "unit.h"

/* Complete a 17-digit prefix into an identity number, independently of the code
 * under test: ISO 7064 MOD 11-2 with the weights of GB 11643-1999. */
static void id_complete(const char *prefix, char out[19]) {
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    int sum = 0;
    for (int i = 0; i < 17; i++)
        sum += (prefix[i] - '0') * w[i];
    memcpy(out, prefix, 17);
    out[17] = "10X98765432"[sum % 11];
    out[18] = '\0';
}

/* Mask in and compare with want and the counts of this one call. */
static void expect_at(int line, const char *in, const char *want, size_t phones, size_t ids, size_t cards) {
    char *out = NULL;
    qun_err_t err;
    qun_mask_counts_t c = {0};
    CHECK(qun_desensitize(in, strlen(in), &out, &c, &err) == QUN_OK);
    if (!out) return;
    if (strcmp(out, want) != 0 || c.phones != phones || c.national_ids != ids || c.bank_cards != cards)
        fprintf(stderr,
                "line %d: in  \"%s\"\n  got \"%s\" (%zu phones, %zu ids, %zu cards)\n  want \"%s\" (%zu, "
                "%zu, %zu)\n",
                line, in, out, c.phones, c.national_ids, c.bank_cards, want, phones, ids, cards);
    CHECK_STR(out, want);
    CHECK(c.phones == phones);
    CHECK(c.national_ids == ids);
    CHECK(c.bank_cards == cards);
    free(out);
}
#define EXPECT(in, want, phones, ids, cards) expect_at(__LINE__, in, want, phones, ids, cards)
/* Text that must come out unchanged, with nothing counted. */
#define UNCHANGED(in) expect_at(__LINE__, in, in, 0, 0, 0)

static void test_national_ids(void) {
    /* The samples printed in GB 11643-1999 itself. */
    EXPECT("11010519491231002X", "110105********002X", 0, 1, 0);
    EXPECT("440524188001010014", "440524********0014", 0, 1, 0);
    /* A lower-case x is the same check character. */
    EXPECT("11010519491231002x", "110105********002x", 0, 1, 0);
    EXPECT("身份证号：11010519491231002X。", "身份证号：110105********002X。", 0, 1, 0);

    /* Numbers completed here from 17-digit prefixes, including 29 February of a leap year. */
    const char *prefixes[] = {"31011519900307123", "51010720000229456", "11010819850615002",
                              "44030420121231986"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        char id[19], want[19], text[64], wtext[64];
        id_complete(prefixes[i], id);
        memcpy(want, id, 19);
        memset(want + 6, '*', 8);
        snprintf(text, sizeof text, "证件 %s 已核对", id);
        snprintf(wtext, sizeof wtext, "证件 %s 已核对", want);
        expect_at(__LINE__, text, wtext, 0, 1, 0);

        /* Any other check character is wrong; none of these happens to be a card. */
        char bad[19];
        memcpy(bad, id, 19);
        bad[17] = id[17] == '0' ? '1' : '0';
        char bad_text[64];
        snprintf(bad_text, sizeof bad_text, "证件 %s 已核对", bad);
        expect_at(__LINE__, bad_text, bad_text, 0, 0, 0);
    }

    /* Wrong check character (the sample with 1 instead of X); it is not Luhn-valid either. */
    UNCHANGED("110105194912310021");
    /* Checksums right, dates impossible: 30 February, 29 February 1999, month 13. */
    UNCHANGED("110105199902301237");
    UNCHANGED("110105199902291235");
    UNCHANGED("110105199913011235");
    /* An X glued to more letters, or an 18-digit run glued to an X, is part of a word. */
    UNCHANGED("11010519491231002XY");
    UNCHANGED("911010519491231002X");
    /* Inside longer runs. */
    UNCHANGED("1440524188001010014");
    UNCHANGED("4405241880010100140");
    /* Precedence: this identity number is also Luhn-valid, and counts only as an identity number. */
    EXPECT("310115199003100554", "310115********0554", 0, 1, 0);
}

static void test_bank_cards(void) {
    EXPECT("4111111111111111", "************1111", 0, 0, 1);
    EXPECT("卡号 4111 1111 1111 1111 谢谢", "卡号 **** **** **** 1111 谢谢", 0, 0, 1);
    EXPECT("5500-0000-0000-0004", "****-****-****-0004", 0, 0, 1);
    EXPECT("卡号：5500000000000004。", "卡号：************0004。", 0, 0, 1);
    /* 19 digits, contiguous and printed 4-4-4-4-3: the last four digits span two groups. */
    EXPECT("6222020000000000000", "***************0000", 0, 0, 1);
    EXPECT("6222 0200 0000 0000 000", "**** **** **** ***0 000", 0, 0, 1);
    /* 15 digits printed 4-6-5. */
    EXPECT("3782 822463 10005", "**** ****** *0005", 0, 0, 1);

    /* Luhn-invalid. */
    UNCHANGED("4111111111111112");
    UNCHANGED("4111 1111 1111 1112");
    UNCHANGED("6222021234567890123");
    /* 18 digits are not Luhn-valid here (and not an identity number). */
    UNCHANGED("622202000000000000");
    /* 20 digits are never a card, even when Luhn-valid and starting with a valid card. */
    UNCHANGED("41111111111111110000");
    /* Mixed separators, and groups that do not look like a printed card. */
    UNCHANGED("4111 1111-1111 1111");
    UNCHANGED("41 11 11 11 11 11 11 11");
    /* Glued to letters: a reference, not a card. */
    UNCHANGED("TX4111111111111111");
    UNCHANGED("4111111111111111ab");
}

static void test_phones(void) {
    EXPECT("13812345678", "138****5678", 1, 0, 0);
    EXPECT("138 1234 5678", "138 **** 5678", 1, 0, 0);
    EXPECT("138-1234-5678", "138-****-5678", 1, 0, 0);
    EXPECT("19912345678", "199****5678", 1, 0, 0);
    EXPECT("+86 138 1234 5678", "+86 138 **** 5678", 1, 0, 0);
    EXPECT("+86-138-1234-5678", "+86-138-****-5678", 1, 0, 0);
    /* These 13 digits are Luhn-valid, but after a '+' they can only be a phone; without
     * the '+' the card rule comes first. */
    EXPECT("+8613812345678", "+86138****5678", 1, 0, 0);
    EXPECT("8613812345678", "*********5678", 0, 0, 1);
    EXPECT("86 13812345678", "86 138****5678", 1, 0, 0);
    EXPECT("电话13812345678，谢谢", "电话138****5678，谢谢", 1, 0, 0);
    EXPECT("请联系王经理（手机：139-0000-1111）。", "请联系王经理（手机：139-****-1111）。", 1, 0, 0);
    EXPECT("13812345678,13912345678", "138****5678,139****5678", 2, 0, 0);
    EXPECT("13812345678 13912345678", "138****5678 139****5678", 2, 0, 0);
    /* International numbers keep the '+', the separators and the last four digits. */
    EXPECT("+44 20 7946 0958", "+** ** **** 0958", 1, 0, 0);
    EXPECT("+1-415-555-2671", "+*-***-***-2671", 1, 0, 0);
    EXPECT("+442079460958", "+********0958", 1, 0, 0);
    EXPECT("+13812345678", "+*******5678", 1, 0, 0);
    EXPECT("Tel: +33 1 23 45 67 89.", "Tel: +** * ** ** 67 89.", 1, 0, 0);
    /* A Beijing landline after +86 is not a mobile but still an international number. */
    EXPECT("+86 10 1234 5678", "+** ** **** 5678", 1, 0, 0);

    /* Card before phone: this 13-digit run is 86 + a mobile but also Luhn-valid. */
    EXPECT("8613812345603", "*********5603", 0, 0, 1);

    /* 10 and 12 digits, a 12-prefix, and mobiles inside longer runs. */
    UNCHANGED("1381234567");
    UNCHANGED("138123456789");
    UNCHANGED("12812345678");
    UNCHANGED("213812345678");
    UNCHANGED("138 1234 567");
    UNCHANGED("138 12345 678");
    UNCHANGED("138-1234 5678");
    /* Order numbers, amounts and dates. */
    UNCHANGED("订单号 ORD13812345678");
    UNCHANGED("order_13812345678");
    UNCHANGED("订单号：202403151234567890123");
    UNCHANGED("订单 2024031512345678 已发货");
    UNCHANGED("金额 13812345678.50 元");
    UNCHANGED("v3.13812345678");
    UNCHANGED("2024-03-15 12:30");
    /* A '+' that is an operator, and too few digits for an international number. */
    UNCHANGED("1+1234567");
    UNCHANGED("+12 34");
    UNCHANGED("+1234567");
}

static void test_mixed_and_api(void) {
    EXPECT("张三 身份证11010519491231002X 手机 138-1234-5678 卡 4111 1111 1111 1111",
           "张三 身份证110105********002X 手机 138-****-5678 卡 **** **** **** 1111", 1, 1, 1);
    /* Items separated only by single spaces are still found one after another. */
    EXPECT("11010519491231002X 13812345678 4111111111111111",
           "110105********002X 138****5678 ************1111", 1, 1, 1);
    UNCHANGED("");
    UNCHANGED("没有任何号码。");

    /* Counts add up over calls, so one struct can total an export. */
    qun_mask_counts_t c = {0};
    qun_err_t err;
    char *out;
    for (int i = 0; i < 3; i++) {
        CHECK(qun_desensitize("13812345678 4111111111111111", 28, &out, &c, &err) == QUN_OK);
        free(out);
    }
    CHECK(c.phones == 3 && c.bank_cards == 3 && c.national_ids == 0);
    json_t *j = qun_mask_counts_json(&c);
    CHECK(j != NULL);
    char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    CHECK_STR(s, "{\"bank_cards\":3,\"national_ids\":0,\"phones\":3}");
    free(s);
    json_decref(j);
    CHECK(qun_mask_counts_json(NULL) == NULL);

    /* Embedded NULs are bytes like others, and a length-limited input is not read past. */
    const char nul[] = "13812345678\0"
                       "13912345678";
    CHECK(qun_desensitize(nul, sizeof nul - 1, &out, NULL, &err) == QUN_OK);
    CHECK(memcmp(out,
                 "138****5678\0"
                 "139****5678",
                 sizeof nul) == 0);
    free(out);
    CHECK(qun_desensitize("1381234567899", 11, &out, NULL, &err) == QUN_OK);
    CHECK_STR(out, "138****5678");
    free(out);

    /* NULL input is only fine when empty. */
    CHECK(qun_desensitize(NULL, 0, &out, NULL, &err) == QUN_OK);
    CHECK_STR(out, "");
    free(out);
    out = (char *)"untouched";
    CHECK(qun_desensitize(NULL, 5, &out, NULL, &err) == QUN_INTERNAL);
    CHECK(out == NULL);
    CHECK(qun_desensitize("x", 1, NULL, NULL, &err) == QUN_INTERNAL);
}

/* A small deterministic generator, so a failure reproduces. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

/* Random soup of digits, separators, plus signs, X, dots, letters, UTF-8 (some of it
 * cut short) and NULs: the output keeps the length, changes only digits into '*', and
 * the stars agree with the counts (every item masks between 4 and 15 digits). */
static void test_random(void) {
    static const char *atoms[] = {"0",        "1",  "3",    "8",  "6",  "9",  "4",   " ",   "-",
                                  "+",        "X",  "x",    ".",  "a",  "_",  "手",  "机",  "，",
                                  "\xe6\x89", "\0", "\xff", "  ", "--", "86", "138", "1234"};
    size_t natoms = sizeof atoms / sizeof *atoms;
    char in[512];
    size_t bad = 0;
    for (int iter = 0; iter < 10000; iter++) {
        size_t n = 0, want = rnd() % 400;
        while (n < want) {
            const char *a = atoms[rnd() % natoms];
            size_t al = a[0] ? strlen(a) : 1;
            if (n + al > sizeof in) break;
            memcpy(in + n, a, al);
            n += al;
        }
        char *out = NULL;
        qun_mask_counts_t c = {0};
        qun_err_t err;
        if (qun_desensitize(in, n, &out, &c, &err) != QUN_OK) {
            bad++;
            continue;
        }
        size_t stars = 0;
        for (size_t i = 0; i < n; i++) {
            if (out[i] == in[i]) continue;
            if (out[i] == '*' && in[i] >= '0' && in[i] <= '9')
                stars++;
            else
                bad++;
        }
        size_t items = c.phones + c.national_ids + c.bank_cards;
        if (out[n] != '\0' || stars < 4 * items || stars > 15 * items) bad++;

        /* The in-place form does the same. */
        char copy[512];
        memcpy(copy, in, n);
        qun_mask_counts_t c2 = {0};
        qun_desensitize_inplace(copy, n, &c2);
        if (memcmp(copy, out, n) != 0 || memcmp(&c, &c2, sizeof c) != 0) bad++;
        free(out);
    }
    CHECK(bad == 0);
}

/* Random messages built from known items and Chinese filler: the output must be the
 * same messages built from the known masked forms, with the counts summed. */
static void test_random_planted(void) {
    static const struct {
        const char *in, *out;
        int kind; /* 0 phone, 1 identity number, 2 card, 3 nothing */
    } items[] = {
        {"11010519491231002X", "110105********002X", 1},   {"440524188001010014", "440524********0014", 1},
        {"4111 1111 1111 1111", "**** **** **** 1111", 2}, {"5500-0000-0000-0004", "****-****-****-0004", 2},
        {"6222020000000000000", "***************0000", 2}, {"13812345678", "138****5678", 0},
        {"+86 139-0000-1111", "+86 139-****-1111", 0},     {"+44 20 7946 0958", "+** ** **** 0958", 0},
        {"110105194912310021", "110105194912310021", 3},   {"4111111111111112", "4111111111111112", 3},
        {"ORD13812345678", "ORD13812345678", 3},           {"2024-03-15", "2024-03-15", 3},
    };
    static const char *fill[] = {"，", "。", " 和 ", "：", "（", "）", "、", "\n", "号码"};
    size_t nitems = sizeof items / sizeof *items, nfill = sizeof fill / sizeof *fill;
    size_t bad = 0;
    for (int iter = 0; iter < 2000; iter++) {
        char in[1024], want[1024];
        size_t n = 0, counts[4] = {0};
        int parts = 1 + (int)(rnd() % 8);
        for (int k = 0; k < parts; k++) {
            const char *f = fill[rnd() % nfill];
            size_t fl = strlen(f);
            memcpy(in + n, f, fl);
            memcpy(want + n, f, fl);
            n += fl;
            size_t i = rnd() % nitems, il = strlen(items[i].in);
            memcpy(in + n, items[i].in, il);
            memcpy(want + n, items[i].out, il);
            n += il;
            counts[items[i].kind]++;
        }
        in[n] = want[n] = '\0';
        char *out = NULL;
        qun_mask_counts_t c = {0};
        qun_err_t err;
        if (qun_desensitize(in, n, &out, &c, &err) != QUN_OK) {
            bad++;
            continue;
        }
        if (strcmp(out, want) != 0 || c.phones != counts[0] || c.national_ids != counts[1] ||
            c.bank_cards != counts[2]) {
            if (bad++ < 3) fprintf(stderr, "planted: in \"%s\"\n got \"%s\"\n want \"%s\"\n", in, out, want);
        }
        free(out);
    }
    CHECK(bad == 0);
}

int main(void) {
    RUN(test_national_ids);
    RUN(test_bank_cards);
    RUN(test_phones);
    RUN(test_mixed_and_api);
    RUN(test_random);
    RUN(test_random_planted);
    return unit_done("core/desensitize");
}
