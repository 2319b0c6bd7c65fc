/*  proto/b32.c — RFC 4648 base32 (lower case, no padding) and hex.
 *
 *  Owns nothing. Invariants: encoders never write past cap and always
 *  NUL-terminate on success; decoders accept exactly one string per byte
 *  sequence (exact length, no padding, no stray characters, zero trailing
 *  bits) and leave out zeroed on failure. These encode public data only, so
 *  they are not constant-time.
 */
#include "b32.h"

#include <string.h>

#include "selftest.h"

static const char s_alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

size_t
b32_encoded_len(size_t n)
{
    /* ceil(n * 8 / 5) without overflowing n * 8. */
    return n / 5 * 8 + (n % 5 * 8 + 4) / 5;
}

int
b32_encode(const uint8_t *data, size_t n, char *out, size_t cap)
{
    size_t need = b32_encoded_len(n);
    if (cap == 0 || need > cap - 1) {
        return PARLEY_ERR_LIMIT;
    }
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8 | data[i]) & 0xfffu;
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[o++] = s_alphabet[(acc >> bits) & 31u];
        }
    }
    if (bits > 0) {
        out[o++] = s_alphabet[(acc << (5 - bits)) & 31u];
    }
    out[o] = '\0';
    return PARLEY_OK;
}

/*  Value of a base32 character (either case), or -1. */
static int
s_b32_value(char c)
{
    if (c >= 'a' && c <= 'z') {
        return c - 'a';
    }
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= '2' && c <= '7') {
        return c - '2' + 26;
    }
    return -1;
}

static int
s_b32_decode(const char *str, uint8_t *out, size_t out_len)
{
    size_t want = b32_encoded_len(out_len);
    if (strnlen(str, want + 1) != want) {
        return PARLEY_ERR_MALFORMED;
    }
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < want; i++) {
        int v = s_b32_value(str[i]);
        if (v < 0) {
            return PARLEY_ERR_MALFORMED;
        }
        acc = (acc << 5 | (uint32_t)v) & 0xfffu;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits must be zero, or two strings would name one key. */
    if ((acc & ((1u << bits) - 1u)) != 0) {
        return PARLEY_ERR_MALFORMED;
    }
    return PARLEY_OK;
}

int
b32_decode(const char *str, uint8_t *out, size_t out_len)
{
    if (!str) {
        return PARLEY_ERR_MALFORMED;
    }
    int rc = s_b32_decode(str, out, out_len);
    if (rc != 0 && out_len > 0) {
        memset(out, 0, out_len);
    }
    return rc;
}

int
hex_encode(const uint8_t *data, size_t n, char *out, size_t cap)
{
    static const char digits[] = "0123456789abcdef";
    if (cap == 0 || n > (cap - 1) / 2) {
        return PARLEY_ERR_LIMIT;
    }
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15u];
    }
    out[2 * n] = '\0';
    return PARLEY_OK;
}

static int
s_hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/*  Decodes exactly out_len bytes (2 * out_len hex digits, either case). */
int
hex_decode(const char *str, uint8_t *out, size_t out_len)
{
    if (!str || out_len > SIZE_MAX / 2 - 1 || strnlen(str, 2 * out_len + 1) != 2 * out_len) {
        return PARLEY_ERR_MALFORMED;
    }
    for (size_t i = 0; i < out_len; i++) {
        int hi = s_hex_value(str[2 * i]);
        int lo = s_hex_value(str[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            memset(out, 0, out_len);
            return PARLEY_ERR_MALFORMED;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return PARLEY_OK;
}

/* ---------------------------------------------------------------- self-test */

static bool
s_all_zero(const uint8_t *b, size_t n)
{
    uint8_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        acc |= b[i];
    }
    return acc == 0;
}

/*  RFC 4648 section 10 vectors, lower-cased, padding removed. */
static void
s_test_rfc4648(void)
{
    static const char *const plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
    static const char *const coded[] = { "",        "my",       "mzxq",      "mzxw6",
                                         "mzxw6yq", "mzxw6ytb", "mzxw6ytboi" };
    for (size_t i = 0; i < 7; i++) {
        char out[32];
        size_t n = strlen(plain[i]);
        CHECK(b32_encoded_len(n) == strlen(coded[i]));
        CHECK(b32_encode((const uint8_t *)plain[i], n, out, sizeof out) == 0);
        CHECK(strcmp(out, coded[i]) == 0);
        uint8_t back[8];
        CHECK(b32_decode(coded[i], back, n) == 0);
        CHECK(memcmp(back, plain[i], n) == 0);
    }
}

/*  id is a valid 52-character node id. */
static void
s_test_b32_bad_strings(const char *id)
{
    uint8_t back[32];
    /* Every position, every byte outside the alphabet: rejected. */
    char bad[53];
    for (size_t pos = 0; pos < 52; pos++) {
        for (int c = 1; c < 256; c++) {
            if (s_b32_value((char)c) >= 0) {
                continue;
            }
            memcpy(bad, id, sizeof bad);
            bad[pos] = (char)c;
            CHECK(b32_decode(bad, back, 32) == PARLEY_ERR_MALFORMED);
        }
    }
    /* Wrong lengths, padding. */
    for (size_t len = 0; len < 52; len++) {
        memcpy(bad, id, sizeof bad);
        bad[len] = '\0';
        CHECK(b32_decode(bad, back, 32) == PARLEY_ERR_MALFORMED);
    }
    char longer[60];
    memcpy(longer, id, 52);
    memcpy(longer + 52, "a", 2);
    CHECK(b32_decode(longer, back, 32) == PARLEY_ERR_MALFORMED);
    memcpy(longer + 52, "====", 5);
    CHECK(b32_decode(longer, back, 32) == PARLEY_ERR_MALFORMED);
    CHECK(b32_decode("my======", back, 1) == PARLEY_ERR_MALFORMED);
    CHECK(b32_decode(NULL, back, 1) == PARLEY_ERR_MALFORMED);

    /* Non-canonical trailing bits: 32 bytes = 256 bits in 260, 4 spare. */
    for (int v = 1; v < 16; v++) {
        memcpy(bad, id, sizeof bad);
        int last = s_b32_value(bad[51]) ^ v;
        bad[51] = s_alphabet[last];
        CHECK(b32_decode(bad, back, 32) == PARLEY_ERR_MALFORMED);
        CHECK(s_all_zero(back, sizeof back));
    }
    CHECK(b32_decode("mz", back, 1) == PARLEY_ERR_MALFORMED); /* "f" is "my" */
}

static void
s_test_b32_negative(void)
{
    uint8_t key[32];
    for (size_t i = 0; i < sizeof key; i++) {
        key[i] = (uint8_t)(i * 37 + 11);
    }
    char id[53];
    CHECK(b32_encode(key, 32, id, sizeof id) == 0);
    CHECK(strlen(id) == 52);
    CHECK(b32_encode(key, 32, id, 52) == PARLEY_ERR_LIMIT); /* no room for NUL */
    uint8_t back[32];
    CHECK(b32_decode(id, back, 32) == 0 && memcmp(back, key, 32) == 0);

    char upper[53];
    for (size_t i = 0; i < 53; i++) {
        upper[i] = (id[i] >= 'a' && id[i] <= 'z') ? (char)(id[i] - 32) : id[i];
    }
    CHECK(b32_decode(upper, back, 32) == 0 && memcmp(back, key, 32) == 0);

    s_test_b32_bad_strings(id);
}

static void
s_test_hex(void)
{
    const uint8_t data[] = { 0x00, 0x01, 0x7f, 0x80, 0xab, 0xff };
    char out[13];
    CHECK(hex_encode(data, sizeof data, out, sizeof out) == 0);
    CHECK(strcmp(out, "00017f80abff") == 0);
    CHECK(hex_encode(data, sizeof data, out, 12) == PARLEY_ERR_LIMIT);
    CHECK(hex_encode(data, 0, out, 1) == 0 && out[0] == '\0');
    CHECK(hex_encode(data, 0, out, 0) == PARLEY_ERR_LIMIT);

    uint8_t back[6];
    CHECK(hex_decode("00017F80ABff", back, 6) == 0 && memcmp(back, data, 6) == 0);
    CHECK(hex_decode("00017f80abf", back, 6) == PARLEY_ERR_MALFORMED);
    CHECK(hex_decode("00017f80abff0", back, 6) == PARLEY_ERR_MALFORMED);
    CHECK(hex_decode("00017f80abfg", back, 6) == PARLEY_ERR_MALFORMED);
    CHECK(hex_decode(" 0017f80abff", back, 6) == PARLEY_ERR_MALFORMED);
    CHECK(hex_decode(NULL, back, 6) == PARLEY_ERR_MALFORMED);
    CHECK(hex_decode("", back, 0) == 0);
}

void
b32_test(bool verbose)
{
    if (verbose) {
        printf(" * b32: RFC 4648 vectors, bad characters, lengths, trailing bits, hex\n");
    }
    s_test_rfc4648();
    s_test_b32_negative();
    s_test_hex();
}
