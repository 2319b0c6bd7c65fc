/*  proto/txt.c — encode and decode the mDNS TXT record (format: txt.h,
 *  proto/SPEC.md §12).
 *
 *  Owns nothing. Invariants: the decoder reads each item only within its
 *  given length and never assumes a NUL; every check on the structure of
 *  every item (length, '=', key, printable bytes, duplicates) runs before any
 *  value is interpreted, so a record that is malformed anywhere is rejected
 *  as a whole; what it returns is copied out, NUL-terminated and validated.
 *  The encoder refuses anything the decoder would reject.
 */
#include "txt.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b32.h"
#include "identity.h"
#include "selftest.h"

/*  One item split at its first '='. Views into the caller's item. */
typedef struct {
    const uint8_t *key; /* 1..TXT_ITEM_MAX-1 bytes */
    size_t key_len;
    const uint8_t *val; /* may be empty */
    size_t val_len;
} s_item_t;

/*  RFC 6763 §6.4 allows any printable ASCII but '=' in a key and any byte
 *  in a value; we are stricter and allow only printable ASCII anywhere, so
 *  that no control byte or NUL from a stranger on the LAN reaches a C
 *  string, a log line or a terminal. */
static bool
s_printable(const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

static uint8_t
s_lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + ('a' - 'A')) : c;
}

/*  Keys compare case-insensitively (RFC 6763 §6.4), in ASCII only: no
 *  locale may change what a record means. */
static bool
s_key_equal(const uint8_t *a, size_t a_len, const uint8_t *b, size_t b_len)
{
    if (a_len != b_len) {
        return false;
    }
    for (size_t i = 0; i < a_len; i++) {
        if (s_lower(a[i]) != s_lower(b[i])) {
            return false;
        }
    }
    return true;
}

static bool
s_key_is(const s_item_t *it, const char *key)
{
    return s_key_equal(it->key, it->key_len, (const uint8_t *)key, strlen(key));
}

static int
s_split(const uint8_t *item, size_t len, s_item_t *out)
{
    if (len > TXT_ITEM_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (len == 0 || !item) {
        return PARLEY_ERR_MALFORMED;
    }
    if (!s_printable(item, len)) {
        return PARLEY_ERR_MALFORMED;
    }
    const uint8_t *eq = memchr(item, '=', len);
    /* A key without '=' is a boolean attribute in RFC 6763; we have none. */
    if (!eq || eq == item) {
        return PARLEY_ERR_MALFORMED;
    }
    out->key = item;
    out->key_len = (size_t)(eq - item);
    out->val = eq + 1;
    out->val_len = len - out->key_len - 1;
    return PARLEY_OK;
}

/*  Decimal without sign or leading zeros, at most 9 digits (no overflow). */
static int
s_parse_version(const s_item_t *it, unsigned *out)
{
    if (it->val_len == 0 || it->val_len > 9 || (it->val[0] == '0' && it->val_len > 1)) {
        return PARLEY_ERR_MALFORMED;
    }
    unsigned v = 0;
    for (size_t i = 0; i < it->val_len; i++) {
        if (it->val[i] < '0' || it->val[i] > '9') {
            return PARLEY_ERR_MALFORMED;
        }
        v = v * 10u + (unsigned)(it->val[i] - '0');
    }
    *out = v;
    return PARLEY_OK;
}

/*  The id must be the canonical spelling (lower case) of a usable key, so
 *  that one node has one record and ids compare as strings downstream. */
static int
s_parse_id(const s_item_t *it, txt_info_t *out)
{
    if (it->val_len != PARLEY_NODE_ID_STRLEN) {
        return PARLEY_ERR_MALFORMED;
    }
    for (size_t i = 0; i < it->val_len; i++) {
        if (it->val[i] >= 'A' && it->val[i] <= 'Z') {
            return PARLEY_ERR_MALFORMED;
        }
    }
    memcpy(out->id, it->val, it->val_len);
    out->id[it->val_len] = '\0';
    if (identity_parse_node_id(out->id, out->ed_pk) != PARLEY_OK) {
        return PARLEY_ERR_MALFORMED;
    }
    return PARLEY_OK;
}

/*  The b= value: exactly the canonical (lower-case) base32 of 72 bytes. */
static int
s_parse_sealed(const s_item_t *it, txt_info_t *out)
{
    if (it->val_len != BLIND_TEXT_LEN) {
        return PARLEY_ERR_MALFORMED;
    }
    char text[BLIND_TEXT_LEN + 1];
    for (size_t i = 0; i < it->val_len; i++) {
        if (it->val[i] >= 'A' && it->val[i] <= 'Z') {
            return PARLEY_ERR_MALFORMED;
        }
        text[i] = (char)it->val[i];
    }
    text[BLIND_TEXT_LEN] = '\0';
    if (b32_decode(text, out->sealed, sizeof out->sealed) != PARLEY_OK) {
        memset(out->sealed, 0, sizeof out->sealed);
        return PARLEY_ERR_MALFORMED;
    }
    out->blinded = true;
    return PARLEY_OK;
}

/*  Interprets the items split by txt_decode; the structure is already valid. */
static int
s_interpret(const s_item_t *parsed, size_t n, txt_info_t *info)
{
    const s_item_t *v = NULL, *net = NULL, *id = NULL, *b = NULL;
    for (size_t i = 0; i < n; i++) {
        if (s_key_is(&parsed[i], "v")) {
            v = &parsed[i];
        } else if (s_key_is(&parsed[i], "net")) {
            net = &parsed[i];
        } else if (s_key_is(&parsed[i], "id")) {
            id = &parsed[i];
        } else if (s_key_is(&parsed[i], "b")) {
            b = &parsed[i];
        }
        /* Other keys are ignored: a later version may add items. */
    }
    if (!v) {
        return PARLEY_ERR_MALFORMED;
    }
    int rc = s_parse_version(v, &info->version);
    if (rc != PARLEY_OK) {
        return rc;
    }
    /* The version decides what the other items mean: check it first, so a
     * v=2 record that drops or changes them is UNSUPPORTED, not MALFORMED. */
    if (info->version != TXT_VERSION) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    if (b) {
        /* Blinded: naming a network or a node beside it would defeat it,
         * and a record that is both could mean two things. */
        if (net || id) {
            return PARLEY_ERR_MALFORMED;
        }
        return s_parse_sealed(b, info);
    }
    if (!net || !id) {
        return PARLEY_ERR_MALFORMED;
    }
    if (net->val_len > PARLEY_NETTAG_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    memcpy(info->net, net->val, net->val_len);
    info->net[net->val_len] = '\0';
    return s_parse_id(id, info);
}

int
txt_decode(const uint8_t *const *items, const size_t *lens, size_t n, txt_info_t *out)
{
    if (!out) {
        return PARLEY_ERR_MALFORMED;
    }
    memset(out, 0, sizeof *out);
    if (n > TXT_ITEMS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (n == 0 || !items || !lens) {
        return PARLEY_ERR_MALFORMED;
    }
    s_item_t parsed[TXT_ITEMS_MAX];
    for (size_t i = 0; i < n; i++) {
        int rc = s_split(items[i], lens[i], &parsed[i]);
        if (rc != PARLEY_OK) {
            return rc;
        }
        /* RFC 6763 says to take the first of repeated keys; a record that
         * repeats one is not ours, and accepting it would let two parsers
         * disagree on what it says. */
        for (size_t j = 0; j < i; j++) {
            if (s_key_equal(parsed[i].key, parsed[i].key_len, parsed[j].key, parsed[j].key_len)) {
                return PARLEY_ERR_MALFORMED;
            }
        }
    }
    txt_info_t info;
    memset(&info, 0, sizeof info);
    int rc = s_interpret(parsed, n, &info);
    if (rc != PARLEY_OK) {
        return rc;
    }
    *out = info;
    return PARLEY_OK;
}

int
txt_encode(const char *node_id, const char *tag, txt_record_t *out)
{
    if (!out) {
        return PARLEY_ERR_MALFORMED;
    }
    memset(out, 0, sizeof *out);
    if (!node_id || !tag) {
        return PARLEY_ERR_MALFORMED;
    }
    if (strnlen(node_id, PARLEY_NODE_ID_STRLEN + 1) != PARLEY_NODE_ID_STRLEN) {
        return PARLEY_ERR_MALFORMED;
    }
    char id[PARLEY_NODE_ID_STRLEN + 1];
    for (size_t i = 0; i < PARLEY_NODE_ID_STRLEN; i++) {
        id[i] = (char)s_lower((uint8_t)node_id[i]);
    }
    id[PARLEY_NODE_ID_STRLEN] = '\0';
    uint8_t ed_pk[PARLEY_KEY_LEN];
    if (identity_parse_node_id(id, ed_pk) != PARLEY_OK) {
        return PARLEY_ERR_MALFORMED;
    }
    size_t tag_len = strnlen(tag, PARLEY_NETTAG_MAX + 1);
    if (tag_len > PARLEY_NETTAG_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (!s_printable((const uint8_t *)tag, tag_len)) {
        return PARLEY_ERR_MALFORMED;
    }
    /* Every item fits: "net=" + 64 and "id=" + 52 are far below 255. */
    int lens[TXT_RECORD_ITEMS];
    lens[0] = snprintf(out->items[0], sizeof out->items[0], "v=%d", TXT_VERSION);
    lens[1] = snprintf(out->items[1], sizeof out->items[1], "net=%s", tag);
    lens[2] = snprintf(out->items[2], sizeof out->items[2], "id=%s", id);
    for (size_t i = 0; i < TXT_RECORD_ITEMS; i++) {
        if (lens[i] < 0 || (size_t)lens[i] > TXT_ITEM_MAX) {
            memset(out, 0, sizeof *out);
            return PARLEY_ERR_LIMIT;
        }
        out->lens[i] = (size_t)lens[i];
    }
    out->n = TXT_RECORD_ITEMS;
    return PARLEY_OK;
}

int
txt_encode_blind(const uint8_t key[BLIND_KEY_LEN], const uint8_t ed_pk[PARLEY_KEY_LEN],
                 txt_record_t *out)
{
    if (!out) {
        return PARLEY_ERR_MALFORMED;
    }
    memset(out, 0, sizeof *out);
    if (!key || !ed_pk) {
        return PARLEY_ERR_MALFORMED;
    }
    /* Refuse what txt_open would: a key that is not usable names nobody. */
    uint8_t x_pk[32];
    if (crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) != 0) {
        return PARLEY_ERR_MALFORMED;
    }
    uint8_t sealed[BLIND_SEALED_LEN];
    int rc = blind_seal(key, ed_pk, sealed);
    if (rc != PARLEY_OK) {
        return rc;
    }
    int n0 = snprintf(out->items[0], sizeof out->items[0], "v=%d", TXT_VERSION);
    memcpy(out->items[1], "b=", 2);
    rc = b32_encode(sealed, sizeof sealed, out->items[1] + 2, sizeof out->items[1] - 2);
    if (rc != PARLEY_OK || n0 < 0) {
        memset(out, 0, sizeof *out);
        return rc != PARLEY_OK ? rc : PARLEY_ERR_LIMIT;
    }
    out->lens[0] = (size_t)n0;
    out->lens[1] = 2 + BLIND_TEXT_LEN;
    out->n = TXT_BLIND_ITEMS;
    return PARLEY_OK;
}

int
txt_open(txt_info_t *info, const uint8_t (*keys)[BLIND_KEY_LEN], size_t n_keys, size_t *which)
{
    if (!info || !info->blinded) {
        return PARLEY_ERR_STATE;
    }
    int rc = blind_open(keys, n_keys, info->sealed, info->ed_pk, which);
    if (rc != PARLEY_OK) {
        memset(info->ed_pk, 0, sizeof info->ed_pk);
        info->id[0] = '\0';
        return rc;
    }
    identity_node_id(info->ed_pk, info->id);
    return PARLEY_OK;
}

/* --------------------------------------------------------------- self-test */

/*  Items copied into heap blocks of exactly their length, so that ASan
 *  catches any read past an item's end. */
typedef struct {
    size_t n;
    uint8_t *items[TXT_ITEMS_MAX + 2];
    size_t lens[TXT_ITEMS_MAX + 2];
} s_rec_t;

static void
s_rec_add(s_rec_t *r, const void *item, size_t len)
{
    CHECK(r->n < TXT_ITEMS_MAX + 2);
    r->items[r->n] = malloc(len ? len : 1);
    CHECK(r->items[r->n]);
    if (len > 0) {
        memcpy(r->items[r->n], item, len);
    }
    r->lens[r->n] = len;
    r->n++;
}

static void
s_rec_adds(s_rec_t *r, const char *item)
{
    s_rec_add(r, item, strlen(item));
}

static void
s_rec_free(s_rec_t *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i]);
    }
    r->n = 0;
}

static int
s_rec_decode(const s_rec_t *r, txt_info_t *info)
{
    return txt_decode((const uint8_t *const *)r->items, r->lens, r->n, info);
}

static bool
s_info_is_zero(const txt_info_t *info)
{
    txt_info_t zero;
    memset(&zero, 0, sizeof zero);
    return memcmp(info, &zero, sizeof zero) == 0;
}

/*  Decodes r, checks rc, and that a failure leaves *info zeroed. */
static void
s_expect(const s_rec_t *r, int want)
{
    txt_info_t info;
    int rc = s_rec_decode(r, &info);
    if (rc != want) {
        fprintf(stderr, "txt: expected %d, got %d\n", want, rc);
    }
    CHECK(rc == want);
    CHECK(rc == PARLEY_OK || s_info_is_zero(&info));
}

/*  A record: "v=1", "net=open", "id=ID", then each of extra. */
static void
s_rec_ours(s_rec_t *r, const char *id, const char *const *extra, size_t n_extra)
{
    char idi[80];
    snprintf(idi, sizeof idi, "id=%s", id);
    s_rec_adds(r, "v=1");
    s_rec_adds(r, "net=open");
    s_rec_adds(r, idi);
    for (size_t i = 0; i < n_extra; i++) {
        s_rec_adds(r, extra[i]);
    }
}

/*  Whatever a decode returns, what it filled in is bounded and valid. */
static void
s_check_sane(int rc, const txt_info_t *info)
{
    CHECK(rc <= 0);
    if (rc == PARLEY_OK && info->blinded) {
        CHECK(info->version == TXT_VERSION && info->id[0] == '\0' && info->net[0] == '\0');
        CHECK(sodium_is_zero(info->ed_pk, sizeof info->ed_pk));
    } else if (rc == PARLEY_OK) {
        CHECK(info->version == TXT_VERSION);
        CHECK(strlen(info->id) == PARLEY_NODE_ID_STRLEN);
        CHECK(strlen(info->net) <= PARLEY_NETTAG_MAX);
        uint8_t pk[PARLEY_KEY_LEN];
        CHECK(identity_parse_node_id(info->id, pk) == PARLEY_OK);
        CHECK(memcmp(pk, info->ed_pk, sizeof pk) == 0);
    } else {
        CHECK(s_info_is_zero(info));
    }
}

static void
s_test_roundtrip(const char *id)
{
    txt_record_t rec;
    CHECK(txt_encode(id, "open", &rec) == PARLEY_OK);
    CHECK(rec.n == TXT_RECORD_ITEMS);
    CHECK(strcmp(rec.items[0], "v=1") == 0 && rec.lens[0] == 3);
    CHECK(strcmp(rec.items[1], "net=open") == 0 && rec.lens[1] == 8);
    CHECK(strncmp(rec.items[2], "id=", 3) == 0 && strcmp(rec.items[2] + 3, id) == 0);
    CHECK(rec.lens[2] == 3 + PARLEY_NODE_ID_STRLEN);

    s_rec_t r = { 0 };
    for (size_t i = 0; i < rec.n; i++) {
        s_rec_add(&r, rec.items[i], rec.lens[i]);
    }
    txt_info_t info;
    CHECK(s_rec_decode(&r, &info) == PARLEY_OK);
    CHECK(info.version == 1 && strcmp(info.net, "open") == 0 && strcmp(info.id, id) == 0);
    s_rec_free(&r);

    /* Any order; unknown keys are ignored, with or without a value. */
    char idi[80];
    snprintf(idi, sizeof idi, "id=%s", id);
    const char *shuffled[] = { "zz=later", idi, "x=", "net=", "V=1", "blob=a=b=c" };
    for (size_t i = 0; i < sizeof shuffled / sizeof shuffled[0]; i++) {
        s_rec_adds(&r, shuffled[i]);
    }
    CHECK(s_rec_decode(&r, &info) == PARLEY_OK);
    CHECK(strcmp(info.net, "") == 0 && strcmp(info.id, id) == 0);
    s_rec_free(&r);

    /* The encoder writes ids lower case and takes the limits exactly. */
    char upper[PARLEY_NODE_ID_STRLEN + 1];
    for (size_t i = 0; i <= PARLEY_NODE_ID_STRLEN; i++) {
        upper[i] = (char)(id[i] >= 'a' && id[i] <= 'z' ? id[i] - 'a' + 'A' : id[i]);
    }
    char tag64[PARLEY_NETTAG_MAX + 2];
    memset(tag64, 'T', PARLEY_NETTAG_MAX);
    tag64[PARLEY_NETTAG_MAX] = '\0';
    CHECK(txt_encode(upper, tag64, &rec) == PARLEY_OK);
    CHECK(strcmp(rec.items[2] + 3, id) == 0);
    CHECK(txt_encode(id, "", &rec) == PARLEY_OK && strcmp(rec.items[1], "net=") == 0);
    CHECK(txt_encode(id, "office 2", &rec) == PARLEY_OK);
    tag64[PARLEY_NETTAG_MAX] = 'T';
    tag64[PARLEY_NETTAG_MAX + 1] = '\0';
    CHECK(txt_encode(id, tag64, &rec) == PARLEY_ERR_LIMIT && rec.n == 0);
    CHECK(txt_encode(id, "tab\there", &rec) == PARLEY_ERR_MALFORMED);
    CHECK(txt_encode(id, "\xc3\xa9", &rec) == PARLEY_ERR_MALFORMED);
    CHECK(txt_encode(id, NULL, &rec) == PARLEY_ERR_MALFORMED);
    CHECK(txt_encode(NULL, "open", &rec) == PARLEY_ERR_MALFORMED);
    CHECK(txt_encode("abc", "open", &rec) == PARLEY_ERR_MALFORMED);
    CHECK(txt_encode(id, "open", NULL) == PARLEY_ERR_MALFORMED);
    char longer[PARLEY_NODE_ID_STRLEN + 2];
    snprintf(longer, sizeof longer, "%sa", id);
    CHECK(txt_encode(longer, "open", &rec) == PARLEY_ERR_MALFORMED);
    /* Canonical base32 of the all-zero key: not a usable point. */
    CHECK(txt_encode("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "open", &rec)
          == PARLEY_ERR_MALFORMED);
}

static void
s_test_rejects(const char *id)
{
    s_rec_t r = { 0 };
    char buf[TXT_ITEM_MAX + 2];
    const char *one[1];

    /* Structure. */
    CHECK(txt_decode(NULL, NULL, 0, NULL) == PARLEY_ERR_MALFORMED);
    s_expect(&r, PARLEY_ERR_MALFORMED); /* no items */
    const char *bad_items[] = { "", "=x", "=", "flag", "net\x01=x", "k=v\x7f", "k=\xff" };
    for (size_t i = 0; i < sizeof bad_items / sizeof bad_items[0]; i++) {
        one[0] = bad_items[i];
        s_rec_ours(&r, id, one, 1);
        s_expect(&r, PARLEY_ERR_MALFORMED);
        s_rec_free(&r);
    }
    s_rec_ours(&r, id, NULL, 0);
    s_rec_add(&r, "k=\0v", 4); /* a NUL inside a value */
    s_expect(&r, PARLEY_ERR_MALFORMED);
    s_rec_free(&r);

    /* Duplicates, in any case, known or not. */
    const char *dups[] = { "v=1", "NET=open", "Id=x", "x=1" };
    for (size_t i = 0; i < sizeof dups / sizeof dups[0]; i++) {
        const char *two[2] = { "x=0", dups[i] };
        s_rec_ours(&r, id, two, 2);
        s_expect(&r, PARLEY_ERR_MALFORMED);
        s_rec_free(&r);
    }

    /* Sizes: the longest item and the most items pass, one more fails. */
    memset(buf, 'a', sizeof buf);
    buf[1] = '=';
    s_rec_ours(&r, id, NULL, 0);
    s_rec_add(&r, buf, TXT_ITEM_MAX);
    s_expect(&r, PARLEY_OK);
    s_rec_free(&r);
    s_rec_ours(&r, id, NULL, 0);
    s_rec_add(&r, buf, TXT_ITEM_MAX + 1);
    s_expect(&r, PARLEY_ERR_LIMIT);
    s_rec_free(&r);
    s_rec_ours(&r, id, NULL, 0);
    for (size_t i = r.n; i < TXT_ITEMS_MAX; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%zu=", i);
        s_rec_adds(&r, k);
    }
    s_expect(&r, PARLEY_OK);
    s_rec_adds(&r, "k99=");
    s_expect(&r, PARLEY_ERR_LIMIT);
    s_rec_free(&r);

    /* Version: anything but "1" is unsupported (if a number) or malformed. */
    const char *versions[][2] = { { "v=2", "u" },  { "v=0", "u" }, { "v=999999999", "u" },
                                  { "v=01", "m" }, { "v=", "m" },  { "v=1 ", "m" },
                                  { "v=+1", "m" }, { "v=x", "m" }, { "v=1234567890", "m" } };
    for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
        char idi[80];
        snprintf(idi, sizeof idi, "id=%s", id);
        s_rec_adds(&r, versions[i][0]);
        s_rec_adds(&r, "net=open");
        s_rec_adds(&r, idi);
        s_expect(&r, versions[i][1][0] == 'u' ? PARLEY_ERR_UNSUPPORTED : PARLEY_ERR_MALFORMED);
        s_rec_free(&r);
    }
    /* A future version may drop our items: still UNSUPPORTED, not MALFORMED. */
    s_rec_adds(&r, "v=2");
    s_expect(&r, PARLEY_ERR_UNSUPPORTED);
    s_rec_free(&r);

    /* A missing item. */
    for (size_t skip = 0; skip < 3; skip++) {
        s_rec_t full = { 0 };
        s_rec_ours(&full, id, NULL, 0);
        for (size_t i = 0; i < full.n; i++) {
            if (i != skip) {
                s_rec_add(&r, full.items[i], full.lens[i]);
            }
        }
        s_expect(&r, PARLEY_ERR_MALFORMED);
        s_rec_free(&r);
        s_rec_free(&full);
    }

    /* The tag's limit. */
    char net[80];
    snprintf(net, sizeof net, "net=%065d", 0);
    s_rec_adds(&r, "v=1");
    s_rec_adds(&r, net);
    snprintf(buf, sizeof buf, "id=%s", id);
    s_rec_adds(&r, buf);
    s_expect(&r, PARLEY_ERR_LIMIT);
    s_rec_free(&r);

    /* The id: case, length, alphabet, usable key. */
    char bad_id[PARLEY_NODE_ID_STRLEN + 8];
    snprintf(bad_id, sizeof bad_id, "%s", id);
    bad_id[0] = (char)(bad_id[0] - 'a' + 'A');
    const char *ids[] = { bad_id, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "",
                          "abc" };
    if (id[0] < 'a' || id[0] > 'z') {
        ids[0] = "";
    }
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        s_rec_ours(&r, ids[i], NULL, 0);
        s_expect(&r, PARLEY_ERR_MALFORMED);
        s_rec_free(&r);
    }
    snprintf(bad_id, sizeof bad_id, "%s", id);
    bad_id[10] = '1'; /* not in the alphabet */
    s_rec_ours(&r, bad_id, NULL, 0);
    s_expect(&r, PARLEY_ERR_MALFORMED);
    s_rec_free(&r);
    snprintf(bad_id, sizeof bad_id, "%sa", id);
    s_rec_ours(&r, bad_id, NULL, 0);
    s_expect(&r, PARLEY_ERR_MALFORMED);
    s_rec_free(&r);

    /* A NULL item pointer with a length is refused, not read. */
    s_rec_ours(&r, id, NULL, 0);
    const uint8_t *ptrs[3] = { r.items[0], NULL, r.items[2] };
    txt_info_t info;
    CHECK(txt_decode(ptrs, r.lens, 3, &info) == PARLEY_ERR_MALFORMED && s_info_is_zero(&info));
    s_rec_free(&r);
}

/*  Truncate every item at every length, drop trailing items, and flip every
 *  bit of every byte: decoding must never crash, read out of bounds, or
 *  return anything invalid. */
static void
s_test_mutations(const char *id)
{
    s_rec_t r = { 0 };
    const char *extra[] = { "x=1" };
    s_rec_ours(&r, id, extra, 1);
    txt_info_t info;
    size_t accepted = 0, total = 0;

    /* Fewer items than our three (the fourth is optional). */
    for (size_t n = 0; n < TXT_RECORD_ITEMS; n++) {
        CHECK(txt_decode((const uint8_t *const *)r.items, r.lens, n, &info)
              == PARLEY_ERR_MALFORMED);
    }
    for (size_t i = 0; i < r.n; i++) {
        size_t full = r.lens[i];
        for (size_t len = 0; len < full; len++) {
            r.lens[i] = len;
            int rc = s_rec_decode(&r, &info);
            s_check_sane(rc, &info);
            /* Only the tag and the unknown item may shrink and still parse. */
            if (rc == PARLEY_OK) {
                CHECK(i == 1 || i == 3);
                accepted++;
            }
            total++;
        }
        r.lens[i] = full;
    }
    for (size_t i = 0; i < r.n; i++) {
        for (size_t b = 0; b < r.lens[i]; b++) {
            for (int bit = 0; bit < 8; bit++) {
                r.items[i][b] ^= (uint8_t)(1u << bit);
                int rc = s_rec_decode(&r, &info);
                s_check_sane(rc, &info);
                if (rc == PARLEY_OK) {
                    accepted++;
                }
                total++;
                r.items[i][b] ^= (uint8_t)(1u << bit);
            }
        }
    }
    CHECK(accepted < total);
    CHECK(s_rec_decode(&r, &info) == PARLEY_OK && strcmp(info.id, id) == 0);
    s_rec_free(&r);
}

/*  Blinded records (SPEC §19.3): round trip through keys, what a record may
 *  not hold beside b=, the b= value's spelling, and mutations. */
static void
s_test_blinded(const identity_t *me)
{
    uint8_t secrets[3][BLIND_KEY_LEN], keys[3][BLIND_KEY_LEN];
    for (size_t i = 0; i < 3; i++) {
        randombytes_buf(secrets[i], BLIND_KEY_LEN);
        CHECK(blind_key(secrets[i], keys[i]) == PARLEY_OK);
    }
    const uint8_t(*kp)[BLIND_KEY_LEN] = (const uint8_t(*)[BLIND_KEY_LEN])keys;
    txt_record_t rec;
    CHECK(txt_encode_blind(keys[1], identity_ed_pk(me), &rec) == PARLEY_OK);
    CHECK(rec.n == TXT_BLIND_ITEMS && strcmp(rec.items[0], "v=1") == 0);
    CHECK(rec.lens[1] == 2 + BLIND_TEXT_LEN && strncmp(rec.items[1], "b=", 2) == 0);
    char id[PARLEY_NODE_ID_STRLEN + 1], short_id[PARLEY_SHORT_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(me), id);
    identity_short_id(identity_ed_pk(me), short_id);
    CHECK(!strstr(rec.items[1], short_id)); /* nothing in clear */

    s_rec_t r = { 0 };
    for (size_t i = 0; i < rec.n; i++) {
        s_rec_add(&r, rec.items[i], rec.lens[i]);
    }
    txt_info_t info;
    CHECK(s_rec_decode(&r, &info) == PARLEY_OK && info.blinded && info.id[0] == '\0');
    txt_info_t copy = info;
    size_t which = 9;
    CHECK(txt_open(&info, kp, 3, &which) == PARLEY_OK && which == 1);
    CHECK(strcmp(info.id, id) == 0 && memcmp(info.ed_pk, identity_ed_pk(me), 32) == 0);
    info = copy;
    CHECK(txt_open(&info, kp + 2, 1, NULL) == PARLEY_ERR_AUTH && info.id[0] == '\0');
    CHECK(txt_open(&info, kp, 0, NULL) == PARLEY_ERR_NOKEY);
    CHECK(txt_open(&info, (const uint8_t(*)[BLIND_KEY_LEN])secrets, 3, NULL) == PARLEY_ERR_AUTH);
    CHECK(txt_open(&info, kp, BLIND_KEYS_MAX + 1, NULL) == PARLEY_ERR_LIMIT);
    txt_info_t open_rec;
    memset(&open_rec, 0, sizeof open_rec);
    CHECK(txt_open(&open_rec, kp, 3, NULL) == PARLEY_ERR_STATE);
    CHECK(txt_open(NULL, kp, 3, NULL) == PARLEY_ERR_STATE);
    /* Any order, unknown keys ignored: as for open records. */
    s_rec_adds(&r, "zz=later");
    CHECK(s_rec_decode(&r, &info) == PARLEY_OK && info.blinded);
    s_rec_free(&r);

    /* b= beside id= or net=: refused. */
    char idi[80];
    snprintf(idi, sizeof idi, "id=%s", id);
    const char *beside[] = { idi, "net=open", "net=" };
    for (size_t i = 0; i < sizeof beside / sizeof beside[0]; i++) {
        s_rec_add(&r, rec.items[0], rec.lens[0]);
        s_rec_add(&r, rec.items[1], rec.lens[1]);
        s_rec_adds(&r, beside[i]);
        s_expect(&r, PARLEY_ERR_MALFORMED);
        s_rec_free(&r);
    }
    /* The b= value: length, case, alphabet, spare bits; B= is the same key. */
    char b[TXT_ITEM_MAX + 1];
    const size_t cuts[] = { 2, 3, 2 + BLIND_TEXT_LEN - 1, 2 + BLIND_TEXT_LEN + 1 };
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        snprintf(b, sizeof b, "%s", rec.items[1]);
        b[2 + BLIND_TEXT_LEN] = 'a';
        s_rec_adds(&r, "v=1");
        s_rec_add(&r, b, cuts[i]);
        s_expect(&r, PARLEY_ERR_MALFORMED);
        s_rec_free(&r);
    }
    const struct {
        size_t at;
        char c;
    } edits[] = { { 2, 'A' }, { 10, '1' }, { 11, '=' }, { 2 + BLIND_TEXT_LEN - 1, 'b' } };
    for (size_t i = 0; i < sizeof edits / sizeof edits[0]; i++) {
        snprintf(b, sizeof b, "%s", rec.items[1]);
        if (b[edits[i].at] == edits[i].c) {
            continue; /* the edit would change nothing */
        }
        b[edits[i].at] = edits[i].c;
        s_rec_adds(&r, "v=1");
        s_rec_adds(&r, b);
        /* The last character carries 4 spare bits: 'b' sets one of them. */
        s_expect(&r, PARLEY_ERR_MALFORMED);
        s_rec_free(&r);
    }
    snprintf(b, sizeof b, "%s", rec.items[1]);
    b[0] = 'B';
    s_rec_adds(&r, "v=1");
    s_rec_adds(&r, b);
    s_expect(&r, PARLEY_OK);
    s_rec_free(&r);

    /* Every bit of the b= value flipped: decodes or not, never opens. */
    for (size_t i = 0; i < rec.n; i++) {
        s_rec_add(&r, rec.items[i], rec.lens[i]);
    }
    for (size_t at = 2; at < r.lens[1]; at++) {
        for (int bit = 0; bit < 8; bit++) {
            r.items[1][at] ^= (uint8_t)(1u << bit);
            int rc = s_rec_decode(&r, &info);
            s_check_sane(rc, &info);
            if (rc == PARLEY_OK) {
                CHECK(txt_open(&info, kp, 3, NULL) == PARLEY_ERR_AUTH);
            }
            r.items[1][at] ^= (uint8_t)(1u << bit);
        }
    }
    s_rec_free(&r);

    CHECK(txt_encode_blind(keys[0],
                           (const uint8_t *)"\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"
                                            "\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                           &rec)
          == PARLEY_ERR_MALFORMED);
    CHECK(txt_encode_blind(NULL, identity_ed_pk(me), &rec) == PARLEY_ERR_MALFORMED && rec.n == 0);
    sodium_memzero(secrets, sizeof secrets);
    sodium_memzero(keys, sizeof keys);
}

void
txt_test(bool verbose)
{
    if (verbose) {
        printf(" * txt: round trip, limits, rejects, truncation, bit flips, blinded records\n");
    }
    identity_t *a = identity_new();
    CHECK(a);
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(a), id);
    s_test_roundtrip(id);
    s_test_rejects(id);
    s_test_mutations(id);
    s_test_blinded(a);
    identity_destroy(&a);
}
