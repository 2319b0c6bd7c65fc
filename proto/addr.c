/*  proto/addr.c — encode, sign, decode and verify address records.
 *
 *  Pure and allocation-free: the signed message (domain || record) is built
 *  in a stack buffer of fixed size, since Ed25519 has no streaming interface
 *  and a record is at most ADDR_RECORD_MAX bytes. Owns nothing; a decoded
 *  record is a copy. Invariants: a decoded record has version 1, 1..8
 *  endpoints that each pass endpoint_valid (so hold no NUL, space or
 *  control byte), issued_ms < expires_ms <= issued_ms + ADDR_MAX_LIFETIME_MS,
 *  a valid signature by its own key, and was current at now_ms; addr_encode
 *  refuses to sign anything addr_decode would reject. Format: addr.h and
 *  proto/SPEC.md §13.
 */
#include "addr.h"

#include <sodium.h>
#include <string.h>

#include "bytes.h"
#include "endpoint.h"
#include "identity.h" /* self-test only */
#include "selftest.h"

/*  The signature domain includes its terminating NUL. */
#define S_DOMAIN_LEN (sizeof ADDR_SIG_DOMAIN)
#define S_MSG_MAX (S_DOMAIN_LEN + ADDR_RECORD_MAX - PARLEY_SIG_LEN)

/*  The checks on the two times that need no clock: shared by both sides. */
static int
s_check_lifetime(uint64_t issued_ms, uint64_t expires_ms)
{
    if (expires_ms <= issued_ms) {
        return PARLEY_ERR_MALFORMED;
    }
    if (expires_ms - issued_ms > ADDR_MAX_LIFETIME_MS) {
        return PARLEY_ERR_LIMIT;
    }
    return PARLEY_OK;
}

static int
s_check_count(size_t n)
{
    if (n == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    return n > PARLEY_HELLO_ENDPOINTS_MAX ? PARLEY_ERR_LIMIT : PARLEY_OK;
}

/*  Builds "parley/addr/v1\0" || signed bytes into msg (S_MSG_MAX bytes);
 *  signed_len <= ADDR_RECORD_MAX - PARLEY_SIG_LEN is the caller's check. */
static size_t
s_message(const uint8_t *signed_bytes, size_t signed_len, uint8_t msg[S_MSG_MAX])
{
    memcpy(msg, ADDR_SIG_DOMAIN, S_DOMAIN_LEN);
    memcpy(msg + S_DOMAIN_LEN, signed_bytes, signed_len);
    return S_DOMAIN_LEN + signed_len;
}

int
addr_encode(const addr_record_t *r, const uint8_t ed_sk[64], uint8_t *out, size_t cap, size_t *len)
{
    if (!r || !ed_sk || !out || !len) {
        return PARLEY_ERR_STATE;
    }
    *len = 0;
    /* libsodium's secret key ends with its public key: sign only as r->pk. */
    if (sodium_memcmp(ed_sk + 32, r->pk, 32) != 0) {
        return PARLEY_ERR_STATE;
    }
    int rc = s_check_count(r->n);
    if (rc != 0) {
        return rc;
    }
    size_t ep_lens[PARLEY_HELLO_ENDPOINTS_MAX];
    size_t need = ADDR_HEADER_LEN + PARLEY_SIG_LEN;
    for (size_t i = 0; i < r->n; i++) {
        /* memchr, not strlen: a caller's unterminated array must not be read past. */
        const char *nul = memchr(r->endpoints[i], '\0', sizeof r->endpoints[i]);
        if (!nul) {
            return PARLEY_ERR_MALFORMED;
        }
        ep_lens[i] = (size_t)(nul - r->endpoints[i]);
        if (!endpoint_valid(r->endpoints[i], ep_lens[i])) {
            return PARLEY_ERR_MALFORMED;
        }
        need += 1 + ep_lens[i];
    }
    rc = s_check_lifetime(r->issued_ms, r->expires_ms);
    if (rc != 0) {
        return rc;
    }
    if (cap < need) {
        return PARLEY_ERR_LIMIT;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, out, need - PARLEY_SIG_LEN);
    bytes_put_u8(&w, ADDR_VERSION);
    bytes_put(&w, r->pk, PARLEY_KEY_LEN);
    bytes_put_u64(&w, r->issued_ms);
    bytes_put_u64(&w, r->expires_ms);
    bytes_put_u8(&w, (uint8_t)r->n);
    for (size_t i = 0; i < r->n; i++) {
        bytes_put_u8(&w, (uint8_t)ep_lens[i]); /* endpoint_valid bounds it by 255 */
        bytes_put(&w, r->endpoints[i], ep_lens[i]);
    }
    if (!bytes_writer_ok(&w)) {
        return PARLEY_ERR_STATE; /* need was computed wrong: a bug, not input */
    }
    uint8_t msg[S_MSG_MAX];
    size_t msg_len = s_message(out, need - PARLEY_SIG_LEN, msg);
    crypto_sign_detached(out + need - PARLEY_SIG_LEN, NULL, msg, msg_len, ed_sk);
    *len = need;
    return PARLEY_OK;
}

static int
s_decode(const uint8_t *buf, size_t len, uint64_t now_ms, addr_record_t *out)
{
    if (len > ADDR_RECORD_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (!buf || len < ADDR_RECORD_MIN) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_reader_t r;
    bytes_reader_init(&r, buf, len);
    if (bytes_get_u8(&r) != ADDR_VERSION) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    bytes_get(&r, out->pk, PARLEY_KEY_LEN);
    out->issued_ms = bytes_get_u64(&r);
    out->expires_ms = bytes_get_u64(&r);
    out->n = bytes_get_u8(&r);
    int rc = s_check_count(out->n);
    if (rc != 0) {
        return rc;
    }
    for (size_t i = 0; i < out->n; i++) {
        size_t ep_len = bytes_get_u8(&r);
        const uint8_t *ep = bytes_view(&r, ep_len);
        /* endpoint_valid admits only host characters, digits and "tcp://:",
         * so the NUL-terminated copy cannot be cut short by an inner NUL. */
        if (ep_len == 0 || !ep || !endpoint_valid((const char *)ep, ep_len)) {
            return PARLEY_ERR_MALFORMED;
        }
        memcpy(out->endpoints[i], ep, ep_len);
        out->endpoints[i][ep_len] = '\0';
    }
    /* Exactly one signature must remain: nothing may trail. */
    size_t signed_len = len - bytes_remaining(&r);
    const uint8_t *sig = bytes_view(&r, PARLEY_SIG_LEN);
    if (!sig || !bytes_reader_done(&r)) {
        return PARLEY_ERR_MALFORMED;
    }
    rc = s_check_lifetime(out->issued_ms, out->expires_ms);
    if (rc != 0) {
        return rc;
    }
    uint8_t msg[S_MSG_MAX];
    size_t msg_len = s_message(buf, signed_len, msg);
    if (crypto_sign_verify_detached(sig, msg, msg_len, out->pk) != 0) {
        return PARLEY_ERR_AUTH;
    }
    /* Written as a difference so now_ms + skew cannot overflow. */
    if (out->issued_ms > now_ms && out->issued_ms - now_ms > PARLEY_FUTURE_SKEW_MS) {
        return PARLEY_ERR_FUTURE;
    }
    if (out->expires_ms <= now_ms) {
        return PARLEY_ERR_EXPIRED;
    }
    return PARLEY_OK;
}

int
addr_decode(const uint8_t *buf, size_t len, uint64_t now_ms, addr_record_t *out)
{
    if (!out) {
        return PARLEY_ERR_STATE;
    }
    memset(out, 0, sizeof *out);
    int rc = s_decode(buf, len, now_ms, out);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ---------------------------------------------------------------- self-test */

#define S_NOW 1700000000000ull
#define S_HOUR (60ull * 60 * 1000)

static addr_record_t
s_record(const identity_t *id, size_t n)
{
    addr_record_t r;
    memset(&r, 0, sizeof r);
    memcpy(r.pk, identity_ed_pk(id), PARLEY_KEY_LEN);
    r.issued_ms = S_NOW;
    r.expires_ms = S_NOW + S_HOUR;
    r.n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(r.endpoints[i], sizeof r.endpoints[i], "tcp://10.0.0.%zu:%zu", i + 1, 7000 + i);
    }
    return r;
}

static bool
s_same(const addr_record_t *a, const addr_record_t *b)
{
    if (memcmp(a->pk, b->pk, PARLEY_KEY_LEN) != 0 || a->issued_ms != b->issued_ms
        || a->expires_ms != b->expires_ms || a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->endpoints[i], b->endpoints[i]) != 0) {
            return false;
        }
    }
    return true;
}

static bool
s_zeroed(const addr_record_t *r)
{
    static const addr_record_t zero;
    return memcmp(r, &zero, sizeof zero) == 0;
}

/*  Signs domain || bytes of a len-byte record in place with sk, as a
 *  forger (or a test that patched a field) would. */
static void
s_resign(uint8_t *buf, size_t len, const uint8_t *sk, bool with_domain)
{
    size_t signed_len = len - PARLEY_SIG_LEN;
    uint8_t msg[S_MSG_MAX];
    size_t msg_len = s_message(buf, signed_len, msg);
    if (with_domain) {
        crypto_sign_detached(buf + signed_len, NULL, msg, msg_len, sk);
    } else {
        crypto_sign_detached(buf + signed_len, NULL, buf, signed_len, sk);
    }
}

static void
s_test_roundtrip(const identity_t *a, uint8_t *buf)
{
    addr_record_t in = s_record(a, 2);
    size_t len = 0;
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == 0);
    CHECK(len == ADDR_HEADER_LEN + 2 * (1 + strlen("tcp://10.0.0.1:7000")) + PARLEY_SIG_LEN);
    CHECK(buf[0] == ADDR_VERSION && memcmp(buf + 1, identity_ed_pk(a), 32) == 0);
    CHECK(buf[49] == 2 && buf[50] == strlen(in.endpoints[0]));
    addr_record_t out;
    CHECK(addr_decode(buf, len, S_NOW, &out) == 0);
    CHECK(s_same(&in, &out));

    /* Ed25519 is deterministic: encoding again gives the same bytes. */
    uint8_t again[ADDR_RECORD_MAX];
    size_t again_len = 0;
    CHECK(addr_encode(&out, identity_ed_sk(a), again, sizeof again, &again_len) == 0);
    CHECK(again_len == len && memcmp(again, buf, len) == 0);
    CHECK(addr_encode(&in, identity_ed_sk(a), again, len - 1, &again_len) == PARLEY_ERR_LIMIT);
    CHECK(again_len == 0);
    CHECK(addr_encode(&in, identity_ed_sk(a), again, len, &again_len) == 0);

    /* The largest record: 8 endpoints of 255 bytes fill ADDR_RECORD_MAX. */
    in = s_record(a, PARLEY_HELLO_ENDPOINTS_MAX);
    for (size_t i = 0; i < in.n; i++) {
        char *ep = in.endpoints[i];
        memcpy(ep, "tcp://", 6);
        memset(ep + 6, (int)('a' + i), PARLEY_ENDPOINT_MAX - 6 - 6);
        memcpy(ep + PARLEY_ENDPOINT_MAX - 6, ":65535", 7);
        CHECK(strlen(ep) == PARLEY_ENDPOINT_MAX);
    }
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == 0);
    CHECK(len == ADDR_RECORD_MAX);
    CHECK(addr_decode(buf, len, S_NOW, &out) == 0);
    CHECK(s_same(&in, &out));
    CHECK(addr_decode(buf, len + 1, S_NOW, &out) == PARLEY_ERR_LIMIT);
    CHECK(addr_decode(buf, SIZE_MAX, S_NOW, &out) == PARLEY_ERR_LIMIT);
    CHECK(addr_decode(NULL, 0, S_NOW, &out) == PARLEY_ERR_MALFORMED);
    CHECK(addr_decode(buf, len, S_NOW, NULL) == PARLEY_ERR_STATE);
}

static void
s_test_encode_refuses(const identity_t *a, const identity_t *b, uint8_t *buf)
{
    size_t len = 1;
    addr_record_t in = s_record(a, 1);
    CHECK(addr_encode(&in, identity_ed_sk(b), buf, ADDR_RECORD_MAX, &len) == PARLEY_ERR_STATE);
    CHECK(len == 0);
    CHECK(addr_encode(NULL, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == PARLEY_ERR_STATE);
    in.n = 0;
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == PARLEY_ERR_MALFORMED);
    in.n = PARLEY_HELLO_ENDPOINTS_MAX + 1;
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == PARLEY_ERR_LIMIT);

    static const char *bad[] = { "",
                                 "tcp://0.0.0.0:7000",
                                 "tcp://*:7000",
                                 "garbage",
                                 "tcp://host:0",
                                 "tcp://host:65536",
                                 "udp://1.2.3.4:5",
                                 "tcp://a b:1",
                                 "tcp://host" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        in = s_record(a, 3);
        snprintf(in.endpoints[2], sizeof in.endpoints[2], "%s", bad[i]);
        CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len)
              == PARLEY_ERR_MALFORMED);
    }
    /* No NUL in the array: refused, not read past. */
    in = s_record(a, 1);
    memset(in.endpoints[0], 'a', sizeof in.endpoints[0]);
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == PARLEY_ERR_MALFORMED);

    in = s_record(a, 1);
    in.expires_ms = in.issued_ms;
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == PARLEY_ERR_MALFORMED);
    in.expires_ms = in.issued_ms - 1;
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == PARLEY_ERR_MALFORMED);
    in.expires_ms = in.issued_ms + ADDR_MAX_LIFETIME_MS + 1;
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == PARLEY_ERR_LIMIT);
    in.expires_ms = in.issued_ms + ADDR_MAX_LIFETIME_MS;
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == 0);
    addr_record_t out;
    CHECK(addr_decode(buf, len, S_NOW, &out) == 0 && s_same(&in, &out));
}

static void
s_test_truncate_flip(const identity_t *a, uint8_t *buf)
{
    addr_record_t in = s_record(a, 3);
    size_t len = 0;
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == 0);
    addr_record_t out;
    for (size_t cut = 0; cut < len; cut++) {
        CHECK(addr_decode(buf, cut, S_NOW, &out) != 0);
        CHECK(s_zeroed(&out));
    }
    buf[len] = 0;
    CHECK(addr_decode(buf, len + 1, S_NOW, &out) == PARLEY_ERR_MALFORMED);
    CHECK(s_zeroed(&out));
    /* Every byte is signed or the signature: any change must be refused. */
    static const uint8_t flips[] = { 0x01, 0x80, 0xff };
    for (size_t i = 0; i < len; i++) {
        for (size_t f = 0; f < sizeof flips; f++) {
            buf[i] ^= flips[f];
            CHECK(addr_decode(buf, len, S_NOW, &out) != 0);
            CHECK(s_zeroed(&out));
            buf[i] ^= flips[f];
        }
    }
    CHECK(addr_decode(buf, len, S_NOW, &out) == 0 && s_same(&in, &out));
}

static void
s_test_forgery(const identity_t *a, const identity_t *b, uint8_t *buf)
{
    addr_record_t in = s_record(a, 1);
    size_t len = 0;
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == 0);
    addr_record_t out;

    /* B points A's name at an address and signs with its own key. */
    s_resign(buf, len, identity_ed_sk(b), true);
    CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_AUTH);
    /* A's own key without the domain: a signature made for another purpose
     * must not pass as an address record. */
    s_resign(buf, len, identity_ed_sk(a), false);
    CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_AUTH);
    s_resign(buf, len, identity_ed_sk(a), true);
    CHECK(addr_decode(buf, len, S_NOW, &out) == 0);
    /* B claims A's record as its own. */
    memcpy(buf + 1, identity_ed_pk(b), 32);
    CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_AUTH);
    /* An all-zero (small-order) key with any signature. */
    memset(buf + 1, 0, 32);
    CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_AUTH);
    /* B's own record, for contrast, is fine. */
    in = s_record(b, 1);
    CHECK(addr_encode(&in, identity_ed_sk(b), buf, ADDR_RECORD_MAX, &len) == 0);
    CHECK(addr_decode(buf, len, S_NOW, &out) == 0);
    CHECK(memcmp(out.pk, identity_ed_pk(b), 32) == 0);
}

static void
s_test_time(const identity_t *a, uint8_t *buf)
{
    addr_record_t in = s_record(a, 1);
    size_t len = 0;
    CHECK(addr_encode(&in, identity_ed_sk(a), buf, ADDR_RECORD_MAX, &len) == 0);
    addr_record_t out;
    CHECK(addr_decode(buf, len, S_NOW - PARLEY_FUTURE_SKEW_MS, &out) == 0);
    CHECK(addr_decode(buf, len, S_NOW - PARLEY_FUTURE_SKEW_MS - 1, &out) == PARLEY_ERR_FUTURE);
    CHECK(addr_decode(buf, len, 0, &out) == PARLEY_ERR_FUTURE);
    CHECK(s_zeroed(&out));
    CHECK(addr_decode(buf, len, in.expires_ms - 1, &out) == 0);
    CHECK(addr_decode(buf, len, in.expires_ms, &out) == PARLEY_ERR_EXPIRED);
    CHECK(addr_decode(buf, len, UINT64_MAX, &out) == PARLEY_ERR_EXPIRED);

    /* A hostile signer's own record breaking the lifetime rules: refused
     * even with a valid signature. */
    const uint8_t *sk = identity_ed_sk(a);
    uint8_t saved[8];
    memcpy(saved, buf + 41, 8);
    bytes_writer_t w;
    bytes_writer_init(&w, buf + 41, 8);
    bytes_put_u64(&w, S_NOW + ADDR_MAX_LIFETIME_MS + 1);
    s_resign(buf, len, sk, true);
    CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_LIMIT);
    bytes_writer_init(&w, buf + 41, 8);
    bytes_put_u64(&w, S_NOW);
    s_resign(buf, len, sk, true);
    CHECK(addr_decode(buf, len, S_NOW - 1, &out) == PARLEY_ERR_MALFORMED);
    bytes_writer_init(&w, buf + 41, 8);
    bytes_put_u64(&w, 0);
    s_resign(buf, len, sk, true);
    CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_MALFORMED);
    memcpy(buf + 41, saved, 8);
    s_resign(buf, len, sk, true);
    CHECK(addr_decode(buf, len, S_NOW, &out) == 0);
}

/*  Structure errors in records that carry a valid signature, so each is
 *  caught by its own rule and not by the signature check. */
static void
s_test_structure(const identity_t *a, uint8_t *buf)
{
    const uint8_t *sk = identity_ed_sk(a);
    addr_record_t in = s_record(a, 1);
    snprintf(in.endpoints[0], sizeof in.endpoints[0], "tcp://1.0.0.0:7000");
    size_t len = 0;
    CHECK(addr_encode(&in, sk, buf, ADDR_RECORD_MAX, &len) == 0);
    addr_record_t out;

    buf[0] = 2;
    s_resign(buf, len, sk, true);
    CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_UNSUPPORTED);
    buf[0] = ADDR_VERSION;
    /* A wildcard address, and bytes endpoint_valid refuses (a NUL would
     * cut the NUL-terminated copy short; a space or a control byte would
     * reach a log line). */
    static const struct {
        size_t at;
        char c;
    } patch[] = { { 6, '0' }, { 7, '\0' }, { 7, ' ' }, { 7, '\n' }, { 7, ':' }, { 2, 'x' } };
    size_t ep = ADDR_HEADER_LEN + 1;
    for (size_t i = 0; i < sizeof patch / sizeof patch[0]; i++) {
        char old = (char)buf[ep + patch[i].at];
        buf[ep + patch[i].at] = (uint8_t)patch[i].c;
        s_resign(buf, len, sk, true);
        CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_MALFORMED);
        buf[ep + patch[i].at] = (uint8_t)old;
    }
    s_resign(buf, len, sk, true);
    CHECK(addr_decode(buf, len, S_NOW, &out) == 0);

    /* Counts: n = 0 and n = 9 (with enough bytes after it to be read). */
    buf[49] = 0;
    s_resign(buf, len, sk, true);
    CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_MALFORMED);
    buf[49] = PARLEY_HELLO_ENDPOINTS_MAX + 1;
    s_resign(buf, len, sk, true);
    CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_LIMIT);
    buf[49] = 2; /* claims a second endpoint the signature is read as */
    s_resign(buf, len, sk, true);
    CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_MALFORMED);
    buf[49] = 1;
    /* Endpoint lengths: zero, one short, past the end. */
    uint8_t ep_len = buf[ADDR_HEADER_LEN];
    static const uint8_t lens[] = { 0, 1, 17, 255 };
    for (size_t i = 0; i < sizeof lens; i++) {
        buf[ADDR_HEADER_LEN] = lens[i];
        s_resign(buf, len, sk, true);
        CHECK(addr_decode(buf, len, S_NOW, &out) == PARLEY_ERR_MALFORMED);
    }
    buf[ADDR_HEADER_LEN] = ep_len;
    s_resign(buf, len, sk, true);
    CHECK(addr_decode(buf, len, S_NOW, &out) == 0);
}

void
addr_test(bool verbose)
{
    if (verbose) {
        printf(" * addr: encode/decode, refusals, truncation, flips, forgery, time\n");
    }
    uint8_t buf[ADDR_RECORD_MAX + 1];
    identity_t *a = identity_new();
    identity_t *b = identity_new();
    CHECK(a && b);
    s_test_roundtrip(a, buf);
    s_test_encode_refuses(a, b, buf);
    s_test_truncate_flip(a, buf);
    s_test_forgery(a, b, buf);
    s_test_time(a, buf);
    s_test_structure(a, buf);
    identity_destroy(&a);
    identity_destroy(&b);
}
