/*  proto/envelope.c — encode, sign, decode, verify and identify envelopes.
 *
 *  Owns nothing: a decoded envelope_t views the caller's buffer, and the
 *  only allocation is a short-lived buffer for the signed message (Ed25519
 *  has no streaming interface for domain || bytes). Invariants: a decoded
 *  envelope has version 1, a known kind, seq >= 1, body_len <= PARLEY_BODY_MAX
 *  and exactly 94 + body_len + 64 bytes; envelope_seal refuses to produce
 *  anything envelope_decode would reject. The format is in envelope.h and
 *  proto/SPEC.md.
 */
#include "envelope.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "identity.h" /* self-test only */
#include "selftest.h"

/*  The signature domain includes its terminating NUL. */
#define S_DOMAIN_LEN (sizeof ENVELOPE_SIG_DOMAIN)
#define S_MIN_LEN (PARLEY_ENVELOPE_HEADER_LEN + PARLEY_SIG_LEN)

void
envelope_header(const envelope_t *env, size_t body_len, uint8_t out[PARLEY_ENVELOPE_HEADER_LEN])
{
    bytes_writer_t w;
    bytes_writer_init(&w, out, PARLEY_ENVELOPE_HEADER_LEN);
    bytes_put_u8(&w, env->version);
    bytes_put_u8(&w, env->kind);
    bytes_put(&w, env->author, 32);
    bytes_put(&w, env->scope, 32);
    bytes_put_u64(&w, env->seq);
    bytes_put_u64(&w, env->ts_ms);
    bytes_put_u64(&w, env->expires_ms);
    /* Callers keep body_len <= PARLEY_BODY_MAX; clamp so it never wraps. */
    bytes_put_u32(&w, body_len > UINT32_MAX ? UINT32_MAX : (uint32_t)body_len);
}

/*  The fields an encoder and a decoder must agree on. */
static int
s_check_fields(uint8_t version, uint8_t kind, uint64_t seq, size_t body_len)
{
    if (version != PARLEY_ENVELOPE_VERSION || kind < ENVELOPE_KIND_DM
        || kind > ENVELOPE_KIND_LAST) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    if (seq == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (body_len > PARLEY_BODY_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    return PARLEY_OK;
}

/*  What is signed, built on the stack up to this size (every DM and
 *  receipt; a verifier thread then never allocates), else on the heap. */
#define S_SIGNED_STACK 2048u

/*  Builds "parley/envelope/v1\0" || signed bytes in stack (S_SIGNED_STACK
 *  bytes) when it fits, else in a fresh buffer; NULL when out of memory.
 *  The caller frees what is not stack. */
static uint8_t *
s_signed_message(const uint8_t *bytes, size_t len, uint8_t *stack, size_t *msg_len)
{
    uint8_t *msg = S_DOMAIN_LEN + len <= S_SIGNED_STACK ? stack : malloc(S_DOMAIN_LEN + len);
    if (!msg) {
        return NULL;
    }
    memcpy(msg, ENVELOPE_SIG_DOMAIN, S_DOMAIN_LEN);
    memcpy(msg + S_DOMAIN_LEN, bytes, len);
    *msg_len = S_DOMAIN_LEN + len;
    return msg;
}

int
envelope_seal(const envelope_t *env, const uint8_t ed_sk[64], uint8_t *out, size_t cap,
              size_t *out_len)
{
    if (!env || !ed_sk || !out || !out_len || (!env->body && env->body_len > 0)) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    int rc = s_check_fields(env->version, env->kind, env->seq, env->body_len);
    if (rc != 0) {
        return rc;
    }
    /* libsodium's secret key ends with its public key: sign only as author. */
    if (sodium_memcmp(ed_sk + 32, env->author, 32) != 0) {
        return PARLEY_ERR_STATE;
    }
    size_t signed_len = PARLEY_ENVELOPE_HEADER_LEN + env->body_len;
    if (cap < signed_len + PARLEY_SIG_LEN) {
        return PARLEY_ERR_LIMIT;
    }
    envelope_header(env, env->body_len, out);
    if (env->body_len > 0) {
        /* memmove: the body may already sit in place (dm_envelope_seal). */
        memmove(out + PARLEY_ENVELOPE_HEADER_LEN, env->body, env->body_len);
    }
    uint8_t stack[S_SIGNED_STACK];
    size_t msg_len = 0;
    uint8_t *msg = s_signed_message(out, signed_len, stack, &msg_len);
    if (!msg) {
        return PARLEY_ERR_NOMEM;
    }
    crypto_sign_detached(out + signed_len, NULL, msg, msg_len, ed_sk);
    if (msg != stack) {
        free(msg);
    }
    *out_len = signed_len + PARLEY_SIG_LEN;
    return PARLEY_OK;
}

static int
s_decode(const uint8_t *buf, size_t len, envelope_t *env)
{
    if (len > PARLEY_ENVELOPE_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (!buf || len < S_MIN_LEN) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_reader_t r;
    bytes_reader_init(&r, buf, len);
    env->version = bytes_get_u8(&r);
    env->kind = bytes_get_u8(&r);
    bytes_get(&r, env->author, 32);
    bytes_get(&r, env->scope, 32);
    env->seq = bytes_get_u64(&r);
    env->ts_ms = bytes_get_u64(&r);
    env->expires_ms = bytes_get_u64(&r);
    env->body_len = bytes_get_u32(&r);
    int rc = s_check_fields(env->version, env->kind, env->seq, env->body_len);
    if (rc != 0) {
        return rc;
    }
    env->body = bytes_view(&r, env->body_len);
    env->signature = bytes_view(&r, PARLEY_SIG_LEN);
    /* Exactly one body and one signature: nothing may trail. */
    if (!bytes_reader_done(&r)) {
        return PARLEY_ERR_MALFORMED;
    }
    env->bytes = buf;
    env->bytes_len = len;
    return PARLEY_OK;
}

int
envelope_decode(const uint8_t *buf, size_t len, envelope_t *env)
{
    if (!env) {
        return PARLEY_ERR_STATE;
    }
    int rc = s_decode(buf, len, env);
    if (rc != 0) {
        memset(env, 0, sizeof *env);
    }
    return rc;
}

int
envelope_verify(const envelope_t *env)
{
    if (!env || !env->bytes || env->bytes_len < S_MIN_LEN || env->bytes_len > PARLEY_ENVELOPE_MAX) {
        return PARLEY_ERR_STATE;
    }
    size_t signed_len = env->bytes_len - PARLEY_SIG_LEN;
    uint8_t stack[S_SIGNED_STACK];
    size_t msg_len = 0;
    uint8_t *msg = s_signed_message(env->bytes, signed_len, stack, &msg_len);
    if (!msg) {
        return PARLEY_ERR_NOMEM;
    }
    /* Check the signature stored in the bytes, not whatever env->signature
     * points at, so a hand-built envelope_t cannot split the two. */
    int ok = crypto_sign_verify_detached(env->bytes + signed_len, msg, msg_len, env->author);
    if (msg != stack) {
        free(msg);
    }
    return ok == 0 ? PARLEY_OK : PARLEY_ERR_AUTH;
}

int
envelope_check_time(const envelope_t *env, uint64_t now_ms)
{
    /* Written as a difference so now_ms + skew cannot overflow. */
    if (env->ts_ms > now_ms && env->ts_ms - now_ms > PARLEY_FUTURE_SKEW_MS) {
        return PARLEY_ERR_FUTURE;
    }
    if (env->expires_ms != 0 && env->expires_ms <= now_ms) {
        return PARLEY_ERR_EXPIRED;
    }
    return PARLEY_OK;
}

const uint8_t *
envelope_author(const uint8_t *buf, size_t len)
{
    return len >= PARLEY_ENVELOPE_HEADER_LEN ? buf + 2 : NULL;
}

const uint8_t *
envelope_scope(const uint8_t *buf, size_t len)
{
    return len >= PARLEY_ENVELOPE_HEADER_LEN ? buf + 2 + 32 : NULL;
}

int
envelope_sealed_view(envelope_t *env, const uint8_t *buf, size_t len)
{
    if (len < PARLEY_ENVELOPE_HEADER_LEN + PARLEY_SIG_LEN || len > PARLEY_ENVELOPE_MAX) {
        return PARLEY_ERR_MALFORMED;
    }
    env->body = buf + PARLEY_ENVELOPE_HEADER_LEN;
    env->body_len = len - PARLEY_ENVELOPE_HEADER_LEN - PARLEY_SIG_LEN;
    env->signature = buf + len - PARLEY_SIG_LEN;
    env->bytes = buf;
    env->bytes_len = len;
    return PARLEY_OK;
}

void
envelope_id(const envelope_t *env, uint8_t id[PARLEY_ID_LEN])
{
    crypto_generichash(id, PARLEY_ID_LEN, env->bytes, env->bytes_len, NULL, 0);
}

int
envelope_validate(const uint8_t *buf, size_t len, uint64_t now_ms, envelope_t *env)
{
    if (!env) {
        return PARLEY_ERR_STATE;
    }
    if (len > PARLEY_ENVELOPE_MAX) {
        memset(env, 0, sizeof *env);
        return PARLEY_ERR_LIMIT;
    }
    int rc = envelope_decode(buf, len, env);
    if (rc == 0) {
        rc = envelope_verify(env);
    }
    if (rc == 0) {
        rc = envelope_check_time(env, now_ms);
    }
    if (rc != 0) {
        memset(env, 0, sizeof *env);
    }
    return rc;
}

int
envelope_check(const uint8_t *buf, size_t len, uint64_t now_ms, envelope_t *env,
               uint8_t id[PARLEY_ID_LEN])
{
    if (!id) {
        return PARLEY_ERR_STATE;
    }
    int rc = envelope_validate(buf, len, now_ms, env);
    if (rc == PARLEY_OK) {
        envelope_id(env, id);
    }
    return rc;
}

/* ---------------------------------------------------------------- self-test */

#define S_NOW 1700000000000ull

static envelope_t
s_fields(const identity_t *id, const uint8_t *body, size_t body_len)
{
    envelope_t env;
    memset(&env, 0, sizeof env);
    env.version = PARLEY_ENVELOPE_VERSION;
    env.kind = ENVELOPE_KIND_DM;
    memcpy(env.author, identity_ed_pk(id), 32);
    memset(env.scope, 0x5c, 32);
    env.seq = 1;
    env.ts_ms = S_NOW;
    env.expires_ms = 0;
    env.body = body;
    env.body_len = body_len;
    return env;
}

static void
s_test_roundtrip(const identity_t *a, uint8_t *buf)
{
    uint8_t body[100];
    for (size_t i = 0; i < sizeof body; i++) {
        body[i] = (uint8_t)(i ^ 0xa5);
    }
    envelope_t in = s_fields(a, body, sizeof body);
    size_t len = 0;
    CHECK(envelope_seal(&in, identity_ed_sk(a), buf, PARLEY_ENVELOPE_MAX, &len) == 0);
    CHECK(len == PARLEY_ENVELOPE_HEADER_LEN + sizeof body + PARLEY_SIG_LEN);

    uint8_t header[PARLEY_ENVELOPE_HEADER_LEN];
    envelope_header(&in, sizeof body, header);
    CHECK(memcmp(header, buf, sizeof header) == 0);

    envelope_t env;
    uint8_t id[PARLEY_ID_LEN];
    uint8_t id2[PARLEY_ID_LEN];
    CHECK(envelope_check(buf, len, S_NOW, &env, id) == 0);
    CHECK(env.seq == 1 && env.ts_ms == S_NOW && env.body_len == sizeof body);
    CHECK(memcmp(env.body, body, sizeof body) == 0);
    CHECK(env.bytes == buf && env.bytes_len == len && env.signature == buf + len - 64);
    CHECK(memcmp(env.author, identity_ed_pk(a), 32) == 0);
    /* The same bytes always name the same envelope (the node dedupes). */
    CHECK(envelope_check(buf, len, S_NOW + 5, &env, id2) == 0);
    CHECK(memcmp(id, id2, sizeof id) == 0);

    /* Ed25519 is deterministic: sealing again gives the same bytes. */
    uint8_t again[512];
    size_t again_len = 0;
    CHECK(envelope_seal(&in, identity_ed_sk(a), again, sizeof again, &again_len) == 0);
    CHECK(again_len == len && memcmp(again, buf, len) == 0);
    CHECK(envelope_seal(&in, identity_ed_sk(a), again, len - 1, &again_len) == PARLEY_ERR_LIMIT);

    /* A sealer's view of what it sealed equals the decoded one, and the
     * author accessor reads the header. */
    envelope_t view = in;
    CHECK(envelope_sealed_view(&view, buf, len) == 0);
    CHECK(view.bytes == env.bytes && view.bytes_len == env.bytes_len);
    CHECK(view.body == env.body && view.body_len == env.body_len);
    CHECK(view.signature == env.signature);
    CHECK(envelope_sealed_view(&view, buf, PARLEY_ENVELOPE_HEADER_LEN) == PARLEY_ERR_MALFORMED);
    CHECK(envelope_author(buf, len) == buf + 2);
    CHECK(memcmp(envelope_author(buf, len), identity_ed_pk(a), 32) == 0);
    CHECK(envelope_author(buf, PARLEY_ENVELOPE_HEADER_LEN - 1) == NULL);
}

static void
s_test_seal_refuses(const identity_t *a, const identity_t *b, uint8_t *buf)
{
    uint8_t body[8] = { 0 };
    size_t len = 0;
    envelope_t in = s_fields(a, body, sizeof body);
    in.version = 2;
    CHECK(envelope_seal(&in, identity_ed_sk(a), buf, 512, &len) == PARLEY_ERR_UNSUPPORTED);
    in = s_fields(a, body, sizeof body);
    in.kind = ENVELOPE_KIND_LAST + 1;
    CHECK(envelope_seal(&in, identity_ed_sk(a), buf, 512, &len) == PARLEY_ERR_UNSUPPORTED);
    in = s_fields(a, body, sizeof body);
    in.seq = 0;
    CHECK(envelope_seal(&in, identity_ed_sk(a), buf, 512, &len) == PARLEY_ERR_MALFORMED);
    in = s_fields(a, body, PARLEY_BODY_MAX + 1);
    CHECK(envelope_seal(&in, identity_ed_sk(a), buf, 512, &len) == PARLEY_ERR_LIMIT);
    in = s_fields(a, body, sizeof body);
    CHECK(envelope_seal(&in, identity_ed_sk(b), buf, 512, &len) == PARLEY_ERR_STATE);
    CHECK(len == 0);
}

static void
s_test_truncate_flip(const identity_t *a, uint8_t *buf)
{
    uint8_t body[40];
    memset(body, 0x42, sizeof body);
    envelope_t in = s_fields(a, body, sizeof body);
    in.seq = 7;
    in.expires_ms = S_NOW + 1000;
    size_t len = 0;
    CHECK(envelope_seal(&in, identity_ed_sk(a), buf, PARLEY_ENVELOPE_MAX, &len) == 0);

    envelope_t env;
    uint8_t id[PARLEY_ID_LEN];
    CHECK(envelope_check(buf, len, S_NOW, &env, id) == 0);
    for (size_t cut = 0; cut < len; cut++) {
        CHECK(envelope_check(buf, cut, S_NOW, &env, id) != 0);
        CHECK(envelope_decode(buf, cut, &env) != 0);
        CHECK(env.bytes == NULL);
    }
    buf[len] = 0;
    CHECK(envelope_decode(buf, len + 1, &env) == PARLEY_ERR_MALFORMED);
    for (size_t i = 0; i < len; i++) {
        for (unsigned bit = 0; bit < 8; bit += 7) {
            buf[i] ^= (uint8_t)(1u << bit);
            CHECK(envelope_check(buf, len, S_NOW, &env, id) != 0);
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    CHECK(envelope_check(buf, len, S_NOW, &env, id) == 0);
    buf[0] = 2;
    CHECK(envelope_decode(buf, len, &env) == PARLEY_ERR_UNSUPPORTED);
    buf[0] = 1;
    buf[1] = 9;
    CHECK(envelope_decode(buf, len, &env) == PARLEY_ERR_UNSUPPORTED);
    buf[1] = ENVELOPE_KIND_LAST + 1;
    CHECK(envelope_decode(buf, len, &env) == PARLEY_ERR_UNSUPPORTED);
    buf[1] = 0;
    CHECK(envelope_decode(buf, len, &env) == PARLEY_ERR_UNSUPPORTED);
    for (uint8_t k = ENVELOPE_KIND_CHAN; k <= ENVELOPE_KIND_LAST; k++) {
        buf[1] = k; /* the channel kinds decode (SPEC §21) */
        CHECK(envelope_decode(buf, len, &env) == PARLEY_OK && env.kind == k);
    }
    buf[1] = ENVELOPE_KIND_NET; /* decodes; the signature no longer matches */
    CHECK(envelope_decode(buf, len, &env) == PARLEY_OK && env.kind == ENVELOPE_KIND_NET);
    CHECK(envelope_verify(&env) == PARLEY_ERR_AUTH);
    buf[1] = ENVELOPE_KIND_DM;
    memset(buf + 66, 0, 8);
    CHECK(envelope_decode(buf, len, &env) == PARLEY_ERR_MALFORMED); /* seq 0 */
}

/*  Signs domain || bytes[0..len) of buf with sk, as a forger would. */
static void
s_resign(uint8_t *buf, size_t len, const uint8_t *sk, bool with_domain)
{
    size_t signed_len = len - PARLEY_SIG_LEN;
    uint8_t stack[S_SIGNED_STACK];
    size_t msg_len = 0;
    uint8_t *msg = s_signed_message(buf, signed_len, stack, &msg_len);
    CHECK(msg);
    if (with_domain) {
        crypto_sign_detached(buf + signed_len, NULL, msg, msg_len, sk);
    } else {
        crypto_sign_detached(buf + signed_len, NULL, buf, signed_len, sk);
    }
    if (msg != stack) {
        free(msg);
    }
}

static void
s_test_forgery(const identity_t *a, const identity_t *b, uint8_t *buf)
{
    uint8_t body[16] = { 1, 2, 3 };
    envelope_t in = s_fields(a, body, sizeof body);
    size_t len = 0;
    CHECK(envelope_seal(&in, identity_ed_sk(a), buf, PARLEY_ENVELOPE_MAX, &len) == 0);
    envelope_t env;
    uint8_t id[PARLEY_ID_LEN];

    /* B claims A's authorship and signs with its own key. */
    s_resign(buf, len, identity_ed_sk(b), true);
    CHECK(envelope_check(buf, len, S_NOW, &env, id) == PARLEY_ERR_AUTH);
    /* A's own key without the domain prefix: a signature from another
     * context must not pass as an envelope signature. */
    s_resign(buf, len, identity_ed_sk(a), false);
    CHECK(envelope_check(buf, len, S_NOW, &env, id) == PARLEY_ERR_AUTH);
    s_resign(buf, len, identity_ed_sk(a), true);
    CHECK(envelope_check(buf, len, S_NOW, &env, id) == 0);
    /* B swaps in its key as author but keeps A's signature. */
    memcpy(buf + 2, identity_ed_pk(b), 32);
    CHECK(envelope_check(buf, len, S_NOW, &env, id) == PARLEY_ERR_AUTH);
}

static void
s_test_time(const identity_t *a, uint8_t *buf)
{
    uint8_t body[1] = { 0 };
    envelope_t in = s_fields(a, body, sizeof body);
    in.ts_ms = S_NOW + PARLEY_FUTURE_SKEW_MS;
    in.expires_ms = S_NOW + PARLEY_FUTURE_SKEW_MS + 1;
    size_t len = 0;
    CHECK(envelope_seal(&in, identity_ed_sk(a), buf, PARLEY_ENVELOPE_MAX, &len) == 0);
    envelope_t env;
    uint8_t id[PARLEY_ID_LEN];
    CHECK(envelope_check(buf, len, S_NOW, &env, id) == 0);
    CHECK(envelope_check(buf, len, S_NOW - 1, &env, id) == PARLEY_ERR_FUTURE);
    CHECK(envelope_check(buf, len, in.expires_ms, &env, id) == PARLEY_ERR_EXPIRED);
    CHECK(envelope_decode(buf, len, &env) == 0);
    CHECK(envelope_check_time(&env, 0) == PARLEY_ERR_FUTURE);
    CHECK(envelope_check_time(&env, UINT64_MAX) == PARLEY_ERR_EXPIRED);
    env.expires_ms = 0;
    CHECK(envelope_check_time(&env, UINT64_MAX) == 0);
}

static void
s_test_limits(const identity_t *a, uint8_t *buf)
{
    /* The largest body fits exactly in PARLEY_ENVELOPE_MAX. */
    uint8_t *body = calloc(1, PARLEY_BODY_MAX);
    CHECK(body);
    envelope_t in = s_fields(a, body, PARLEY_BODY_MAX);
    size_t len = 0;
    CHECK(envelope_seal(&in, identity_ed_sk(a), buf, PARLEY_ENVELOPE_MAX, &len) == 0);
    CHECK(len == PARLEY_ENVELOPE_MAX);
    envelope_t env;
    uint8_t id[PARLEY_ID_LEN];
    CHECK(envelope_check(buf, len, S_NOW, &env, id) == 0);
    CHECK(envelope_check(buf, len + 1, S_NOW, &env, id) == PARLEY_ERR_LIMIT);
    CHECK(envelope_decode(buf, SIZE_MAX, &env) == PARLEY_ERR_LIMIT);
    CHECK(envelope_decode(NULL, 0, &env) == PARLEY_ERR_MALFORMED);
    /* A body_len that claims more than the buffer holds. */
    buf[90] = 0xff;
    CHECK(envelope_decode(buf, len, &env) == PARLEY_ERR_LIMIT);
    free(body);
}

void
envelope_test(bool verbose)
{
    if (verbose) {
        printf(" * envelope: seal/decode/verify, truncation, bit flips, forgery, time\n");
    }
    uint8_t *buf = malloc(PARLEY_ENVELOPE_MAX + 1);
    identity_t *a = identity_new();
    identity_t *b = identity_new();
    CHECK(buf && a && b);
    s_test_roundtrip(a, buf);
    s_test_seal_refuses(a, b, buf);
    s_test_truncate_flip(a, buf);
    s_test_forgery(a, b, buf);
    s_test_time(a, buf);
    s_test_limits(a, buf);
    identity_destroy(&a);
    identity_destroy(&b);
    free(buf);
}
