/*  proto/invite.c — invite secrets, their derived keys, and invite codes.
 *
 *  Pure and allocation-free: a code is at most INVITE_RECORD_MAX bytes, so
 *  the record and its text are built in fixed stack buffers, and every
 *  buffer of ours that held the secret (KDF seed, record bytes, base32 text,
 *  hash state) is wiped before return on every path; the caller's output
 *  holds it by design. Owns nothing; a decoded code is a copy.
 *  Invariants: a decoded code has version 1, a non-zero secret, expiry and
 *  inviter key, 1..4 endpoints that each pass endpoint_valid, no stated pk
 *  equal to the inviter's, and exactly one text (the one the encoder writes,
 *  up to case and whitespace); invite_code_encode refuses anything
 *  invite_code_decode would. Format: invite.h and proto/SPEC.md §18.
 */
#include "invite.h"

#include <ctype.h> /* self-test only */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "b32.h"
#include "bytes.h"
#include "endpoint.h"
#include "selftest.h"

/*  The checksum domain includes its terminating NUL. */
#define S_DOMAIN_LEN (sizeof INVITE_CHECK_DOMAIN)
/*  Base32 characters of the longest record (2026), and with the prefix. */
#define S_B32_MAX ((INVITE_RECORD_MAX / 5u) * 8u + ((INVITE_RECORD_MAX % 5u) * 8u + 4u) / 5u)
#define S_TEXT_MAX (INVITE_PREFIX_LEN + S_B32_MAX)
/*  The shortest record: one IPv4 endpoint without a pk. */
#define S_RECORD_MIN (INVITE_HEADER_LEN + 1u + 6u + INVITE_CHECK_LEN)

_Static_assert(S_TEXT_MAX < INVITE_CODE_MAX, "INVITE_CODE_MAX must hold the longest code");
_Static_assert(sizeof INVITE_PREFIX - 1 == INVITE_PREFIX_LEN, "prefix length");
_Static_assert(sizeof INVITE_KDF_CTX - 1 == crypto_kdf_CONTEXTBYTES, "KDF context length");

static bool
s_all_zero(const uint8_t *b, size_t n)
{
    return sodium_is_zero(b, n) == 1;
}

void
invite_secret_new(uint8_t secret[INVITE_SECRET_LEN])
{
    //  2^-256 odds, but a zero secret is refused everywhere: never make one.
    do {
        randombytes_buf(secret, INVITE_SECRET_LEN);
    } while (s_all_zero(secret, INVITE_SECRET_LEN));
}

int
invite_keys(const uint8_t secret[INVITE_SECRET_LEN], uint8_t ed_pk[32], uint8_t ed_sk[64],
            uint8_t x_pk[32], uint8_t x_sk[32])
{
    if (!secret || !ed_pk || !ed_sk || !x_pk || !x_sk) {
        return PARLEY_ERR_STATE;
    }
    uint8_t seed[crypto_sign_SEEDBYTES];
    int rc = PARLEY_OK;
    if (s_all_zero(secret, INVITE_SECRET_LEN)) {
        rc = PARLEY_ERR_MALFORMED;
    } else if (crypto_kdf_derive_from_key(seed, sizeof seed, INVITE_KDF_ID, INVITE_KDF_CTX, secret)
                   != 0
               || crypto_sign_seed_keypair(ed_pk, ed_sk, seed) != 0
               || crypto_sign_ed25519_pk_to_curve25519(x_pk, ed_pk) != 0
               || crypto_sign_ed25519_sk_to_curve25519(x_sk, ed_sk) != 0) {
        rc = PARLEY_ERR_CRYPTO;
    }
    sodium_memzero(seed, sizeof seed);
    if (rc != 0) {
        sodium_memzero(ed_pk, 32);
        sodium_memzero(ed_sk, 64);
        sodium_memzero(x_pk, 32);
        sodium_memzero(x_sk, 32);
    }
    return rc;
}

/* ---------------------------------------------------------------- endpoints */

/*  One decimal octet without a leading zero, 0..255; advances *i. */
static bool
s_octet(const char *s, size_t len, size_t *i, uint8_t *out)
{
    size_t start = *i;
    unsigned v = 0;
    while (*i < len && s[*i] >= '0' && s[*i] <= '9' && *i - start < 3) {
        v = v * 10 + (unsigned)(s[*i] - '0');
        (*i)++;
    }
    size_t digits = *i - start;
    if (digits == 0 || v > 255 || (digits > 1 && s[start] == '0')) {
        return false;
    }
    *out = (uint8_t)v;
    return true;
}

/*  True if ep[0..len) is a valid endpoint whose host is a dotted IPv4
 *  address written the one way the IPv4 form prints it; fills ip and port.
 *  Only those take the compact form, so each endpoint has one encoding. */
static bool
s_ipv4_form(const char *ep, size_t len, uint8_t ip[4], uint16_t *port)
{
    static const char scheme[] = "tcp://";
    size_t i = sizeof scheme - 1;
    *port = endpoint_port(ep, len);
    if (*port == 0) {
        return false; // also rules out 0.0.0.0 and a missing "tcp://"
    }
    for (size_t k = 0; k < 4; k++) {
        if (!s_octet(ep, len, &i, &ip[k]) || i >= len || ep[i] != (k < 3 ? '.' : ':')) {
            return false;
        }
        i++;
    }
    //  endpoint_port read the rest as the port: nothing else follows.
    return true;
}

/*  Size of the endpoint's record, with its pk when it differs from the
 *  inviter's; 0 if the endpoint is not a NUL-terminated valid endpoint. */
static size_t
s_endpoint_size(const invite_endpoint_t *e, const uint8_t inviter_pk[32])
{
    const char *nul = memchr(e->endpoint, '\0', sizeof e->endpoint);
    if (!nul) {
        return 0;
    }
    size_t len = (size_t)(nul - e->endpoint);
    if (!endpoint_valid(e->endpoint, len)) {
        return 0;
    }
    size_t need = 1;
    if (sodium_memcmp(e->pk, inviter_pk, PARLEY_KEY_LEN) != 0) {
        if (s_all_zero(e->pk, PARLEY_KEY_LEN)) {
            return 0; // a pk left unset: the caller meant the inviter's
        }
        need += PARLEY_KEY_LEN;
    }
    uint8_t ip[4];
    uint16_t port;
    return need + (s_ipv4_form(e->endpoint, len, ip, &port) ? 6 : 1 + len);
}

static void
s_put_endpoint(bytes_writer_t *w, const invite_endpoint_t *e, const uint8_t inviter_pk[32])
{
    size_t len = strlen(e->endpoint); // s_endpoint_size checked the NUL
    uint8_t ip[4];
    uint16_t port;
    bool v4 = s_ipv4_form(e->endpoint, len, ip, &port);
    bool has_pk = sodium_memcmp(e->pk, inviter_pk, PARLEY_KEY_LEN) != 0;
    bytes_put_u8(w, (uint8_t)((has_pk ? INVITE_EP_HAS_PK : 0) | (v4 ? INVITE_EP_IPV4 : 0)));
    if (has_pk) {
        bytes_put(w, e->pk, PARLEY_KEY_LEN);
    }
    if (v4) {
        bytes_put(w, ip, 4);
        bytes_put_u16(w, port);
    } else {
        bytes_put_u8(w, (uint8_t)len); // endpoint_valid bounds it by 255
        bytes_put(w, e->endpoint, len);
    }
}

/*  Reads one endpoint record into e; INVITE_OK or the reason. */
static invite_err_t
s_get_endpoint(bytes_reader_t *r, const uint8_t inviter_pk[32], invite_endpoint_t *e)
{
    uint8_t flags = bytes_get_u8(r);
    if ((flags & ~(INVITE_EP_HAS_PK | INVITE_EP_IPV4)) != 0) {
        return INVITE_ERR_FIELD;
    }
    if (flags & INVITE_EP_HAS_PK) {
        bytes_get(r, e->pk, PARLEY_KEY_LEN);
        //  The inviter's own key is written by leaving the pk out.
        if (!bytes_reader_ok(r)) {
            return INVITE_ERR_LENGTH;
        }
        if (sodium_memcmp(e->pk, inviter_pk, PARLEY_KEY_LEN) == 0
            || s_all_zero(e->pk, PARLEY_KEY_LEN)) {
            return INVITE_ERR_FIELD;
        }
    } else {
        memcpy(e->pk, inviter_pk, PARLEY_KEY_LEN);
    }
    size_t len;
    if (flags & INVITE_EP_IPV4) {
        uint8_t ip[4];
        bytes_get(r, ip, 4);
        uint16_t port = bytes_get_u16(r);
        if (!bytes_reader_ok(r)) {
            return INVITE_ERR_LENGTH;
        }
        int n = snprintf(e->endpoint, sizeof e->endpoint, "tcp://%u.%u.%u.%u:%u", (unsigned)ip[0],
                         (unsigned)ip[1], (unsigned)ip[2], (unsigned)ip[3], (unsigned)port);
        len = n > 0 ? (size_t)n : 0; // at most 27 bytes: fits
    } else {
        len = bytes_get_u8(r);
        const uint8_t *s = bytes_view(r, len);
        if (!s) {
            return INVITE_ERR_LENGTH;
        }
        //  endpoint_valid admits no NUL, so the copy is one C string.
        if (len == 0 || !endpoint_valid((const char *)s, len)) {
            return INVITE_ERR_ENDPOINT;
        }
        memcpy(e->endpoint, s, len);
        e->endpoint[len] = '\0';
        uint8_t ip[4];
        uint16_t port;
        if (s_ipv4_form(e->endpoint, len, ip, &port)) {
            return INVITE_ERR_FIELD; // written long where the short form was due
        }
    }
    return endpoint_valid(e->endpoint, len) ? INVITE_OK : INVITE_ERR_ENDPOINT;
}

/* ---------------------------------------------------------------- record */

static void
s_check(const uint8_t *record, size_t len, uint8_t out[INVITE_CHECK_LEN])
{
    uint8_t h[crypto_generichash_BYTES];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof h);
    crypto_generichash_update(&st, (const uint8_t *)INVITE_CHECK_DOMAIN, S_DOMAIN_LEN);
    crypto_generichash_update(&st, record, len);
    crypto_generichash_final(&st, h, sizeof h);
    memcpy(out, h, INVITE_CHECK_LEN);
    //  The state absorbed the secret.
    sodium_memzero(&st, sizeof st);
}

/*  The fields checks that both sides share; INVITE_OK or the reason. */
static invite_err_t
s_check_fields(const invite_code_t *c)
{
    if (c->n == 0 || c->n > INVITE_ENDPOINTS_MAX || c->expires_ms == 0
        || s_all_zero(c->inviter_pk, PARLEY_KEY_LEN) || s_all_zero(c->network_id, PARLEY_ID_LEN)) {
        return INVITE_ERR_FIELD;
    }
    return s_all_zero(c->secret, INVITE_SECRET_LEN) ? INVITE_ERR_SECRET : INVITE_OK;
}

int
invite_code_encode(const invite_code_t *c, char *out, size_t cap, size_t *len)
{
    if (!c || !out || !len) {
        return PARLEY_ERR_STATE;
    }
    *len = 0;
    if (c->n > INVITE_ENDPOINTS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (s_check_fields(c) != INVITE_OK) {
        return PARLEY_ERR_MALFORMED;
    }
    size_t need = INVITE_HEADER_LEN + INVITE_CHECK_LEN;
    for (size_t i = 0; i < c->n; i++) {
        size_t size = s_endpoint_size(&c->endpoints[i], c->inviter_pk);
        if (size == 0) {
            return PARLEY_ERR_MALFORMED;
        }
        need += size;
    }
    size_t text_len = INVITE_PREFIX_LEN + b32_encoded_len(need);
    if (cap <= text_len) {
        return PARLEY_ERR_LIMIT;
    }
    uint8_t record[INVITE_RECORD_MAX];
    bytes_writer_t w;
    bytes_writer_init(&w, record, need - INVITE_CHECK_LEN);
    bytes_put_u8(&w, INVITE_VERSION);
    bytes_put(&w, c->network_id, PARLEY_ID_LEN);
    bytes_put(&w, c->secret, INVITE_SECRET_LEN);
    bytes_put_u64(&w, c->expires_ms);
    bytes_put(&w, c->inviter_pk, PARLEY_KEY_LEN);
    bytes_put_u8(&w, (uint8_t)c->n);
    for (size_t i = 0; i < c->n; i++) {
        s_put_endpoint(&w, &c->endpoints[i], c->inviter_pk);
    }
    int rc = PARLEY_ERR_STATE; // need was computed wrong: a bug, not input
    if (bytes_writer_ok(&w)) {
        s_check(record, need - INVITE_CHECK_LEN, record + need - INVITE_CHECK_LEN);
        memcpy(out, INVITE_PREFIX, INVITE_PREFIX_LEN);
        rc = b32_encode(record, need, out + INVITE_PREFIX_LEN, cap - INVITE_PREFIX_LEN);
    }
    sodium_memzero(record, sizeof record);
    if (rc != 0) {
        sodium_memzero(out, cap);
        return rc;
    }
    *len = text_len;
    return PARLEY_OK;
}

/*  Parses a record whose checksum matched; INVITE_OK or the reason. */
static invite_err_t
s_parse(const uint8_t *record, size_t len, invite_code_t *out)
{
    bytes_reader_t r;
    bytes_reader_init(&r, record, len - INVITE_CHECK_LEN);
    if (bytes_get_u8(&r) != INVITE_VERSION) {
        return INVITE_ERR_VERSION;
    }
    bytes_get(&r, out->network_id, PARLEY_ID_LEN);
    bytes_get(&r, out->secret, INVITE_SECRET_LEN);
    out->expires_ms = bytes_get_u64(&r);
    bytes_get(&r, out->inviter_pk, PARLEY_KEY_LEN);
    out->n = bytes_get_u8(&r);
    if (!bytes_reader_ok(&r)) {
        return INVITE_ERR_LENGTH;
    }
    invite_err_t why = s_check_fields(out);
    for (size_t i = 0; why == INVITE_OK && i < out->n; i++) {
        why = s_get_endpoint(&r, out->inviter_pk, &out->endpoints[i]);
    }
    if (why == INVITE_OK && !bytes_reader_done(&r)) {
        why = INVITE_ERR_TRAILING;
    }
    return why;
}

static bool
s_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

static bool
s_is_b32(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7');
}

static char
s_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

/*  Text → record bytes; INVITE_OK or the reason. text holds the secret:
 *  the caller wipes it and record. */
static invite_err_t
s_unwrap(const char *text, size_t len, char buf[INVITE_CODE_MAX], uint8_t *record,
         size_t *record_len, bool *too_long)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s_is_space(text[i])) {
            continue;
        }
        if (n == S_TEXT_MAX) {
            *too_long = true;
            return INVITE_ERR_LENGTH;
        }
        buf[n++] = text[i];
    }
    buf[n] = '\0';
    for (size_t i = 0; i < INVITE_PREFIX_LEN; i++) {
        if (i >= n || s_lower(buf[i]) != INVITE_PREFIX[i]) {
            return INVITE_ERR_PREFIX;
        }
    }
    const char *b32 = buf + INVITE_PREFIX_LEN;
    size_t chars = n - INVITE_PREFIX_LEN;
    for (size_t i = 0; i < chars; i++) {
        if (!s_is_b32(b32[i])) {
            return INVITE_ERR_BASE32;
        }
    }
    //  chars * 5 / 8 bytes, if chars is the length of some encoding.
    size_t bytes = chars / 8 * 5 + chars % 8 * 5 / 8;
    if (b32_encoded_len(bytes) != chars) {
        return INVITE_ERR_BASE32;
    }
    if (b32_decode(b32, record, bytes) != 0) {
        return INVITE_ERR_BASE32; // non-zero trailing bits
    }
    if (bytes < S_RECORD_MIN) {
        return INVITE_ERR_LENGTH;
    }
    *record_len = bytes;
    return INVITE_OK;
}

static int
s_code(invite_err_t why)
{
    switch (why) {
    case INVITE_OK: return PARLEY_OK;
    case INVITE_ERR_VERSION: return PARLEY_ERR_UNSUPPORTED;
    case INVITE_ERR_EXPIRED: return PARLEY_ERR_EXPIRED;
    default: return PARLEY_ERR_MALFORMED;
    }
}

int
invite_code_decode(const char *text, size_t len, invite_code_t *out, invite_err_t *why)
{
    invite_err_t dummy;
    if (!why) {
        why = &dummy;
    }
    if (!out) {
        *why = INVITE_ERR_FIELD;
        return PARLEY_ERR_STATE;
    }
    memset(out, 0, sizeof *out);
    if (!text) {
        *why = INVITE_ERR_PREFIX;
        return PARLEY_ERR_MALFORMED;
    }
    char buf[INVITE_CODE_MAX];
    uint8_t record[INVITE_RECORD_MAX];
    size_t record_len = 0;
    bool too_long = false;
    *why = s_unwrap(text, len, buf, record, &record_len, &too_long);
    if (*why == INVITE_OK) {
        uint8_t check[INVITE_CHECK_LEN];
        s_check(record, record_len - INVITE_CHECK_LEN, check);
        //  Checked before any field, so a typo anywhere reads as damage.
        if (sodium_memcmp(check, record + record_len - INVITE_CHECK_LEN, INVITE_CHECK_LEN) != 0) {
            *why = INVITE_ERR_DAMAGED;
        } else {
            *why = s_parse(record, record_len, out);
        }
    }
    sodium_memzero(buf, sizeof buf);
    sodium_memzero(record, sizeof record);
    if (*why != INVITE_OK) {
        sodium_memzero(out, sizeof *out);
        //  Longer than any code: the one size error that is a limit.
        return too_long ? PARLEY_ERR_LIMIT : s_code(*why);
    }
    return PARLEY_OK;
}

bool
invite_code_expired(const invite_code_t *c, uint64_t now_ms)
{
    return !c || c->expires_ms <= now_ms;
}

const char *
invite_strerror(invite_err_t why)
{
    switch (why) {
    case INVITE_OK: return "valid invite code";
    case INVITE_ERR_PREFIX: return "this is not an invite code (it must start with parley-invite:)";
    case INVITE_ERR_BASE32:
        return "this invite code holds characters no code has: was it mistyped?";
    case INVITE_ERR_LENGTH: return "this invite code is too short or too long: was it cut?";
    case INVITE_ERR_DAMAGED:
        return "this invite code is damaged (checksum mismatch): copy it again";
    case INVITE_ERR_VERSION:
        return "this invite code was made by a newer Parley: upgrade to use it";
    case INVITE_ERR_FIELD: return "this invite code is malformed";
    case INVITE_ERR_ENDPOINT: return "this invite code names an address that cannot be dialled";
    case INVITE_ERR_SECRET: return "this invite code has an empty secret";
    case INVITE_ERR_TRAILING: return "this invite code has unexpected bytes at its end";
    case INVITE_ERR_EXPIRED: return "this invite has expired: ask for a new one";
    default: return "this invite code is invalid";
    }
}

/* ---------------------------------------------------------------- self-test */

#define S_EXPIRES 1790000000000ull

static void
s_pattern(uint8_t *b, size_t n, uint8_t start)
{
    for (size_t i = 0; i < n; i++) {
        b[i] = (uint8_t)(start + i);
    }
}

/*  A code with n endpoints: the first IPv4 at the inviter, the second a DNS
 *  name at another node, the third an IPv4 address written with a leading
 *  zero (so it keeps the string form), the fourth IPv4 at another node. */
static invite_code_t
s_code_n(size_t n)
{
    invite_code_t c;
    memset(&c, 0, sizeof c);
    s_pattern(c.network_id, sizeof c.network_id, 0x10);
    s_pattern(c.secret, sizeof c.secret, 0xc0);
    c.expires_ms = S_EXPIRES;
    s_pattern(c.inviter_pk, sizeof c.inviter_pk, 0x40);
    c.n = n;
    static const char *const eps[] = { "tcp://192.168.10.23:40123", "tcp://relay.example.org:7400",
                                       "tcp://10.0.0.07:7400", "tcp://10.1.2.3:1" };
    for (size_t i = 0; i < n && i < INVITE_ENDPOINTS_MAX; i++) {
        snprintf(c.endpoints[i].endpoint, sizeof c.endpoints[i].endpoint, "%s", eps[i]);
        if (i % 2 == 0) {
            memcpy(c.endpoints[i].pk, c.inviter_pk, PARLEY_KEY_LEN);
        } else {
            s_pattern(c.endpoints[i].pk, PARLEY_KEY_LEN, (uint8_t)(0x80 + i));
        }
    }
    return c;
}

static bool
s_same(const invite_code_t *a, const invite_code_t *b)
{
    if (memcmp(a->network_id, b->network_id, PARLEY_ID_LEN) != 0
        || memcmp(a->secret, b->secret, INVITE_SECRET_LEN) != 0 || a->expires_ms != b->expires_ms
        || memcmp(a->inviter_pk, b->inviter_pk, PARLEY_KEY_LEN) != 0 || a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->endpoints[i].endpoint, b->endpoints[i].endpoint) != 0
            || memcmp(a->endpoints[i].pk, b->endpoints[i].pk, PARLEY_KEY_LEN) != 0) {
            return false;
        }
    }
    return true;
}

static bool
s_zeroed(const invite_code_t *c)
{
    static const invite_code_t zero;
    return memcmp(c, &zero, sizeof zero) == 0;
}

/*  Decodes text and returns the reason; checks that a refusal zeroes out. */
static invite_err_t
s_why(const char *text)
{
    invite_code_t out;
    invite_err_t why = INVITE_OK;
    int rc = invite_code_decode(text, strlen(text), &out, &why);
    CHECK((rc == 0) == (why == INVITE_OK));
    CHECK(rc == 0 || s_zeroed(&out));
    sodium_memzero(&out, sizeof out);
    return why;
}

/*  The record inside a canonical code; returns its length. */
static size_t
s_record_of(const char *text, uint8_t record[INVITE_RECORD_MAX])
{
    size_t chars = strlen(text) - INVITE_PREFIX_LEN;
    size_t bytes = chars / 8 * 5 + chars % 8 * 5 / 8;
    CHECK(b32_decode(text + INVITE_PREFIX_LEN, record, bytes) == 0);
    return bytes;
}

/*  Writes the code text of record[0..len) with a fresh checksum, as a
 *  forger (or a test that patched a field) would. */
static void
s_rewrap(uint8_t *record, size_t len, char text[INVITE_CODE_MAX])
{
    s_check(record, len - INVITE_CHECK_LEN, record + len - INVITE_CHECK_LEN);
    memcpy(text, INVITE_PREFIX, INVITE_PREFIX_LEN);
    CHECK(b32_encode(record, len, text + INVITE_PREFIX_LEN, INVITE_CODE_MAX - INVITE_PREFIX_LEN)
          == 0);
}

/*  Rewrites the code of copy (a record cut after its one-endpoint count at
 *  byte 106) with that endpoint in the string form. */
static void
s_string_endpoint(uint8_t *copy, const char *endpoint, char text[INVITE_CODE_MAX])
{
    size_t n = strlen(endpoint);
    bytes_writer_t w;
    bytes_writer_init(&w, copy + 106, 2 + n);
    bytes_put_u8(&w, 0);
    bytes_put_u8(&w, (uint8_t)n);
    bytes_put(&w, endpoint, n);
    CHECK(bytes_writer_ok(&w));
    s_rewrap(copy, 106 + 2 + n + INVITE_CHECK_LEN, text);
}

static void
s_test_keys(void)
{
    uint8_t secret[32], ed_pk[32], ed_sk[64], x_pk[32], x_sk[32];
    s_pattern(secret, sizeof secret, 0xc0);
    CHECK(invite_keys(secret, ed_pk, ed_sk, x_pk, x_sk) == 0);
    //  The same derivation written out with libsodium.
    uint8_t seed[32], pk[32], sk[64], xp[32];
    CHECK(crypto_kdf_derive_from_key(seed, 32, 1, "parleyiv", secret) == 0);
    CHECK(crypto_sign_seed_keypair(pk, sk, seed) == 0);
    CHECK(memcmp(pk, ed_pk, 32) == 0 && memcmp(sk, ed_sk, 64) == 0);
    //  The CURVE pair is a pair, and the Ed25519 pair signs as the invite.
    CHECK(crypto_scalarmult_base(xp, x_sk) == 0 && memcmp(xp, x_pk, 32) == 0);
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, secret, 4, ed_sk);
    CHECK(crypto_sign_verify_detached(sig, secret, 4, ed_pk) == 0);
    //  Another secret, other keys; a zero secret, none.
    uint8_t other[32];
    invite_secret_new(other);
    CHECK(!s_all_zero(other, 32) && memcmp(other, secret, 32) != 0);
    CHECK(invite_keys(other, pk, sk, xp, x_sk) == 0 && memcmp(pk, ed_pk, 32) != 0);
    memset(other, 0, sizeof other);
    CHECK(invite_keys(other, pk, sk, xp, x_sk) == PARLEY_ERR_MALFORMED);
    CHECK(s_all_zero(pk, 32) && s_all_zero(sk, 64) && s_all_zero(xp, 32) && s_all_zero(x_sk, 32));
    CHECK(invite_keys(NULL, pk, sk, xp, x_sk) == PARLEY_ERR_STATE);
    sodium_memzero(ed_sk, sizeof ed_sk);
    sodium_memzero(x_sk, sizeof x_sk);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(sk, sizeof sk);
}

static void
s_test_roundtrip(void)
{
    char text[INVITE_CODE_MAX];
    size_t len = 0;
    invite_code_t out;
    for (size_t n = 1; n <= INVITE_ENDPOINTS_MAX; n++) {
        invite_code_t in = s_code_n(n);
        CHECK(invite_code_encode(&in, text, sizeof text, &len) == 0);
        CHECK(len == strlen(text) && memcmp(text, INVITE_PREFIX, INVITE_PREFIX_LEN) == 0);
        CHECK(invite_code_decode(text, len, &out, NULL) == 0 && s_same(&in, &out));
        //  The byte layout: IPv4 at the inviter is flags 0x02 and 6 bytes.
        uint8_t record[INVITE_RECORD_MAX];
        size_t rlen = s_record_of(text, record);
        CHECK(record[0] == INVITE_VERSION && record[105] == n);
        CHECK(record[106] == INVITE_EP_IPV4 && record[107] == 192 && record[111] == 0x9c);
        CHECK(n > 1 || rlen == S_RECORD_MIN);
    }
    //  The lengths in SPEC §18.4: one IPv4 endpoint at the inviter, 202
    //  characters; three IPv4 endpoints, two at other nodes, 326.
    invite_code_t in = s_code_n(1);
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == 0 && len == 202);
    CHECK(invite_code_encode(&in, text, len, &len) == PARLEY_ERR_LIMIT && len == 0);
    CHECK(invite_code_encode(&in, text, 203, &len) == 0 && len == 202);
    in = s_code_n(4);
    in.n = 3;
    in.endpoints[2] = in.endpoints[3];
    memset(&in.endpoints[3], 0, sizeof in.endpoints[3]);
    snprintf(in.endpoints[1].endpoint, sizeof in.endpoints[1].endpoint, "tcp://192.168.10.5:7400");
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == 0 && len == 326);
    CHECK(invite_code_decode(text, len, &out, NULL) == 0 && s_same(&in, &out));
    in = s_code_n(3);
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == 0 && len == 336);

    //  Upper case, whitespace around and inside (a wrapped mail line).
    char mangled[3 * INVITE_CODE_MAX];
    size_t m = 0;
    mangled[m++] = ' ';
    mangled[m++] = '\t';
    for (size_t i = 0; i < len; i++) {
        if (i % 70 == 69) {
            mangled[m++] = '\r';
            mangled[m++] = '\n';
        }
        mangled[m++] = (i % 3 == 0) ? (char)toupper((unsigned char)text[i]) : text[i];
    }
    memcpy(mangled + m, " \n", 3);
    m += 2;
    invite_err_t why = INVITE_ERR_FIELD;
    CHECK(invite_code_decode(mangled, m, &out, &why) == 0 && why == INVITE_OK);
    CHECK(s_same(&in, &out));
    //  len bounds the read: a NUL or anything after it is not looked at.
    mangled[m] = 'x';
    CHECK(invite_code_decode(mangled, m, &out, &why) == 0);
    //  Whitespace does not count towards the length limit.
    static char padded[8192];
    memset(padded, ' ', sizeof padded);
    memcpy(padded + 4000, text, len);
    CHECK(invite_code_decode(padded, sizeof padded, &out, &why) == 0 && s_same(&in, &out));
    sodium_memzero(&out, sizeof out);
}

static void
s_test_longest(void)
{
    invite_code_t in = s_code_n(INVITE_ENDPOINTS_MAX);
    for (size_t i = 0; i < in.n; i++) {
        char *ep = in.endpoints[i].endpoint;
        memcpy(ep, "tcp://", 6);
        memset(ep + 6, (int)('a' + i), PARLEY_ENDPOINT_MAX - 6 - 6);
        memcpy(ep + PARLEY_ENDPOINT_MAX - 6, ":65535", 7);
        CHECK(strlen(ep) == PARLEY_ENDPOINT_MAX);
        s_pattern(in.endpoints[i].pk, PARLEY_KEY_LEN, (uint8_t)(0x90 + i));
    }
    char text[INVITE_CODE_MAX];
    size_t len = 0;
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == 0);
    CHECK(len == S_TEXT_MAX && len == 2040 && len < INVITE_CODE_MAX);
    uint8_t record[INVITE_RECORD_MAX];
    CHECK(s_record_of(text, record) == INVITE_RECORD_MAX);
    invite_code_t out;
    CHECK(invite_code_decode(text, len, &out, NULL) == 0 && s_same(&in, &out));
    //  One character more than the longest code: a limit, not a parse.
    char longer[INVITE_CODE_MAX + 1];
    memcpy(longer, text, len);
    memcpy(longer + len, "a", 2);
    invite_err_t why = INVITE_OK;
    CHECK(invite_code_decode(longer, len + 1, &out, &why) == PARLEY_ERR_LIMIT);
    CHECK(why == INVITE_ERR_LENGTH && s_zeroed(&out));
}

static void
s_test_encode_refuses(void)
{
    char text[INVITE_CODE_MAX];
    size_t len = 1;
    invite_code_t in = s_code_n(1);
    in.n = 0;
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == PARLEY_ERR_MALFORMED && len == 0);
    in.n = INVITE_ENDPOINTS_MAX + 1;
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == PARLEY_ERR_LIMIT);
    in = s_code_n(1);
    memset(in.secret, 0, sizeof in.secret);
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == PARLEY_ERR_MALFORMED);
    in = s_code_n(1);
    in.expires_ms = 0;
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == PARLEY_ERR_MALFORMED);
    in = s_code_n(1);
    memset(in.inviter_pk, 0, sizeof in.inviter_pk);
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == PARLEY_ERR_MALFORMED);
    in = s_code_n(1);
    memset(in.network_id, 0, sizeof in.network_id);
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == PARLEY_ERR_MALFORMED);
    in = s_code_n(2);
    memset(in.endpoints[1].pk, 0, PARLEY_KEY_LEN); // left unset
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == PARLEY_ERR_MALFORMED);
    static const char *bad[] = { "",
                                 "tcp://0.0.0.0:7000",
                                 "tcp://*:7000",
                                 "tcp://host:0",
                                 "udp://1.2.3.4:5",
                                 "tcp://a b:1",
                                 "tcp://1.2.3.4" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        in = s_code_n(2);
        snprintf(in.endpoints[1].endpoint, sizeof in.endpoints[1].endpoint, "%s", bad[i]);
        CHECK(invite_code_encode(&in, text, sizeof text, &len) == PARLEY_ERR_MALFORMED);
    }
    in = s_code_n(1);
    memset(in.endpoints[0].endpoint, 'a', sizeof in.endpoints[0].endpoint);
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == PARLEY_ERR_MALFORMED);
    CHECK(invite_code_encode(NULL, text, sizeof text, &len) == PARLEY_ERR_STATE);
}

/*  Text-level refusals of a valid code's neighbours. */
static void
s_test_text(void)
{
    invite_code_t in = s_code_n(3);
    char text[INVITE_CODE_MAX], bad[INVITE_CODE_MAX + 16];
    size_t len = 0;
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == 0);
    CHECK(s_why(text) == INVITE_OK);

    CHECK(s_why("") == INVITE_ERR_PREFIX);
    CHECK(s_why("parley-invite") == INVITE_ERR_PREFIX);
    CHECK(s_why("hello") == INVITE_ERR_PREFIX);
    snprintf(bad, sizeof bad, "parley-invitee:%s", text + INVITE_PREFIX_LEN);
    CHECK(s_why(bad) == INVITE_ERR_PREFIX);
    snprintf(bad, sizeof bad, "%s", text + INVITE_PREFIX_LEN);
    CHECK(s_why(bad) == INVITE_ERR_PREFIX);
    snprintf(bad, sizeof bad, "parley-invite:<%s>", text + INVITE_PREFIX_LEN);
    CHECK(s_why(bad) == INVITE_ERR_BASE32);
    CHECK(s_why("parley-invite:") == INVITE_ERR_LENGTH);
    CHECK(s_why("parley-invite:aaaaaaaa") == INVITE_ERR_LENGTH);
    CHECK(invite_code_decode(NULL, 0, &(invite_code_t){ 0 }, NULL) == PARLEY_ERR_MALFORMED);
    CHECK(invite_code_decode(text, len, NULL, NULL) == PARLEY_ERR_STATE);

    //  Characters outside the alphabet, at every place of the body.
    static const char outside[] = "0189=-_.:/+\x01\x7f\xff";
    for (size_t i = INVITE_PREFIX_LEN; i < len; i++) {
        for (size_t k = 0; k < sizeof outside - 1; k++) {
            memcpy(bad, text, len + 1);
            bad[i] = outside[k];
            CHECK(s_why(bad) == INVITE_ERR_BASE32);
        }
    }
    //  Every cut and every extra character: refused.
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(bad, text, cut);
        bad[cut] = '\0';
        CHECK(s_why(bad) != INVITE_OK);
    }
    for (char c = 'a'; c <= 'z'; c++) {
        memcpy(bad, text, len);
        bad[len] = c;
        bad[len + 1] = '\0';
        CHECK(s_why(bad) != INVITE_OK);
    }
    //  A single mistyped character anywhere in the body: damaged (or, in
    //  the last character, non-zero spare bits), never another code.
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
    for (size_t i = INVITE_PREFIX_LEN; i < len; i++) {
        for (size_t k = 0; k < 32; k++) {
            if (alphabet[k] == text[i]) {
                continue;
            }
            memcpy(bad, text, len + 1);
            bad[i] = alphabet[k];
            invite_err_t why = s_why(bad);
            CHECK(why == INVITE_ERR_DAMAGED || (i == len - 1 && why == INVITE_ERR_BASE32));
        }
    }
    //  Two adjacent characters swapped, the commonest typo.
    for (size_t i = INVITE_PREFIX_LEN; i + 1 < len; i++) {
        if (text[i] == text[i + 1]) {
            continue;
        }
        memcpy(bad, text, len + 1);
        bad[i] = text[i + 1];
        bad[i + 1] = text[i];
        CHECK(s_why(bad) != INVITE_OK);
    }
}

/*  Record-level refusals, each with a valid checksum so that its own rule
 *  and not the checksum catches it. */
static void
s_test_record(void)
{
    invite_code_t in = s_code_n(2);
    char text[INVITE_CODE_MAX], forged[INVITE_CODE_MAX];
    size_t len = 0;
    CHECK(invite_code_encode(&in, text, sizeof text, &len) == 0);
    uint8_t rec[INVITE_RECORD_MAX + 8], copy[INVITE_RECORD_MAX + 8];
    size_t rlen = s_record_of(text, rec);
    //  Endpoint 0: flags at 106, IPv4 107..112. Endpoint 1: flags at 113,
    //  pk 114..145, len at 146, string from 147.
    CHECK(rec[106] == INVITE_EP_IPV4 && rec[113] == INVITE_EP_HAS_PK);
    CHECK(rec[146] == strlen(in.endpoints[1].endpoint));
    static const struct {
        size_t at;
        uint8_t value;
        invite_err_t why;
    } patch[] = {
        { 0, 2, INVITE_ERR_VERSION },          { 0, 0, INVITE_ERR_VERSION },
        { 105, 0, INVITE_ERR_FIELD },          { 105, 5, INVITE_ERR_FIELD },
        { 105, 1, INVITE_ERR_TRAILING },       { 105, 3, INVITE_ERR_LENGTH },
        { 106, 0x04, INVITE_ERR_FIELD },       { 106, 0x80, INVITE_ERR_FIELD },
        { 106, 0x00, INVITE_ERR_LENGTH }, /* a 192-byte string: past the end */
        { 146, 0, INVITE_ERR_ENDPOINT },       { 146, 40, INVITE_ERR_LENGTH },
        { 147 + 6, ' ', INVITE_ERR_ENDPOINT }, { 147 + 6, '\0', INVITE_ERR_ENDPOINT },
        { 147 + 3, 'x', INVITE_ERR_ENDPOINT },
    };
    for (size_t i = 0; i < sizeof patch / sizeof patch[0]; i++) {
        memcpy(copy, rec, rlen);
        copy[patch[i].at] = patch[i].value;
        s_rewrap(copy, rlen, forged);
        invite_err_t why = s_why(forged);
        if (why != patch[i].why) {
            fprintf(stderr, "invite: patch %zu: reason %d, want %d\n", i, (int)why,
                    (int)patch[i].why);
        }
        CHECK(why == patch[i].why);
    }
    //  IPv4 forms endpoint_valid refuses: port 0, and 0.0.0.0.
    memcpy(copy, rec, rlen);
    memset(copy + 111, 0, 2);
    s_rewrap(copy, rlen, forged);
    CHECK(s_why(forged) == INVITE_ERR_ENDPOINT);
    memcpy(copy, rec, rlen);
    memset(copy + 107, 0, 4);
    s_rewrap(copy, rlen, forged);
    CHECK(s_why(forged) == INVITE_ERR_ENDPOINT);
    //  Zero fields.
    static const struct {
        size_t at, n;
        invite_err_t why;
    } zero[] = { { 1, 32, INVITE_ERR_FIELD },
                 { 33, 32, INVITE_ERR_SECRET },
                 { 65, 8, INVITE_ERR_FIELD },
                 { 73, 32, INVITE_ERR_FIELD },
                 { 114, 32, INVITE_ERR_FIELD } };
    for (size_t i = 0; i < sizeof zero / sizeof zero[0]; i++) {
        memcpy(copy, rec, rlen);
        memset(copy + zero[i].at, 0, zero[i].n);
        s_rewrap(copy, rlen, forged);
        CHECK(s_why(forged) == zero[i].why);
    }
    //  Endpoint 1's pk set to the inviter's: it must be left out instead.
    memcpy(copy, rec, rlen);
    memcpy(copy + 114, in.inviter_pk, 32);
    s_rewrap(copy, rlen, forged);
    CHECK(s_why(forged) == INVITE_ERR_FIELD);
    //  A byte between the last endpoint and the checksum.
    memcpy(copy, rec, rlen - INVITE_CHECK_LEN);
    copy[rlen - INVITE_CHECK_LEN] = 0;
    s_rewrap(copy, rlen + 1, forged);
    CHECK(s_why(forged) == INVITE_ERR_TRAILING);
    //  A record cut inside endpoint 1, checksum made good.
    memcpy(copy, rec, 140);
    s_rewrap(copy, 140 + INVITE_CHECK_LEN, forged);
    CHECK(s_why(forged) == INVITE_ERR_LENGTH);
    //  An IPv4 endpoint in the long form, where the short one was due.
    memcpy(copy, rec, 106);
    copy[105] = 1;
    s_string_endpoint(copy, "tcp://10.0.0.7:7400", forged);
    CHECK(s_why(forged) == INVITE_ERR_FIELD);
    //  The same with a leading zero is another host string: accepted.
    s_string_endpoint(copy, "tcp://10.0.0.07:7400", forged);
    CHECK(s_why(forged) == INVITE_OK);
    //  And the unpatched record still decodes.
    s_rewrap(rec, rlen, forged);
    CHECK(strcmp(forged, text) == 0 && s_why(forged) == INVITE_OK);
    sodium_memzero(rec, sizeof rec);
    sodium_memzero(copy, sizeof copy);
}

static void
s_test_reasons(void)
{
    invite_code_t c = s_code_n(1);
    CHECK(!invite_code_expired(&c, S_EXPIRES - 1));
    CHECK(invite_code_expired(&c, S_EXPIRES) && invite_code_expired(&c, UINT64_MAX));
    CHECK(invite_code_expired(NULL, 0));
    for (int a = INVITE_OK; a <= INVITE_ERR_EXPIRED; a++) {
        CHECK(invite_strerror((invite_err_t)a) != NULL);
        for (int b = INVITE_OK; b < a; b++) {
            CHECK(strcmp(invite_strerror((invite_err_t)a), invite_strerror((invite_err_t)b)) != 0);
        }
    }
    CHECK(invite_strerror((invite_err_t)99) != NULL);
}

void
invite_test(bool verbose)
{
    if (verbose) {
        printf(" * invite: keys, round trips, case and whitespace, longest code, refusals,\n"
               "   mistyped characters\n");
    }
    s_test_keys();
    s_test_roundtrip();
    s_test_longest();
    s_test_encode_refuses();
    s_test_text();
    s_test_record();
    s_test_reasons();
}
