/*  proto/dm.c — forward-secret direct messages: signed prekeys, the
 *  X3DH-style session start, the daily chain ratchet, and DM envelopes.
 *
 *  Owns no state: sessions, prekey secrets and day keys belong to the
 *  caller (node/ and store/), which keeps only the newest key it needs.
 *  Invariants: every X25519 output is checked non-zero (a low-order point
 *  from a peer is PARLEY_ERR_CRYPTO, never a predictable key); ephemeral
 *  secrets, DH outputs and message keys live on the stack and are wiped on
 *  every path — public functions own those buffers and call helpers that
 *  may return early; a DM body is 68 clear bytes + a padded ciphertext whose
 *  bucket is a power of two in [PARLEY_PAD_BLOCK_MIN, PARLEY_CONTENT_MAX].
 *  Formats and derivations: dm.h and proto/SPEC.md.
 */
#include "dm.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "selftest.h"

#define S_PREKEY_VERSION 1u
#define S_PREKEY_DOMAIN "parley/prekey/v1" /* signed with its NUL */
#define S_PREKEY_SIGNED_LEN 77u
#define S_X3DH_DOMAIN "parley/x3dh/v1"      /* hashed without a NUL */
#define S_SCOPE_DOMAIN "parley/dm-scope/v1" /* hashed without a NUL */
#define S_DAY_CTX "prlyday_"
#define S_MSG_CTX "prlymsg_"
#define S_NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define S_OFF_NONCE 44u
#define S_AD_LEN (PARLEY_ENVELOPE_HEADER_LEN + PARLEY_DM_HEADER_LEN)
#define S_BODY_OVERHEAD (PARLEY_DM_HEADER_LEN + PARLEY_AEAD_TAG_LEN)

/* ------------------------------------------------------------------ prekeys */

int
dm_prekey_generate(const uint8_t owner[32], uint32_t spk_id, uint64_t now_ms, prekey_t *pub,
                   uint8_t spk_secret[32])
{
    if (!owner || !pub || !spk_secret) {
        return PARLEY_ERR_STATE;
    }
    memset(pub, 0, sizeof *pub);
    randombytes_buf(spk_secret, 32);
    if (crypto_scalarmult_base(pub->spk_pub, spk_secret) != 0) {
        sodium_memzero(spk_secret, 32);
        return PARLEY_ERR_CRYPTO;
    }
    memcpy(pub->owner, owner, 32);
    pub->spk_id = spk_id;
    pub->created_ms = now_ms;
    return PARLEY_OK;
}

/*  "parley/prekey/v1\0" || the 77 signed bytes of a bundle. */
static void
s_prekey_message(const uint8_t *bundle, uint8_t msg[sizeof S_PREKEY_DOMAIN + S_PREKEY_SIGNED_LEN])
{
    memcpy(msg, S_PREKEY_DOMAIN, sizeof S_PREKEY_DOMAIN);
    memcpy(msg + sizeof S_PREKEY_DOMAIN, bundle, S_PREKEY_SIGNED_LEN);
}

int
dm_prekey_encode(const prekey_t *pk, const uint8_t ed_sk[64], uint8_t out[DM_PREKEY_BUNDLE_LEN])
{
    if (!pk || !ed_sk || !out) {
        return PARLEY_ERR_STATE;
    }
    /* Only the owner may sign its prekey (libsodium sk = seed || pk). */
    if (sodium_memcmp(ed_sk + 32, pk->owner, 32) != 0) {
        return PARLEY_ERR_STATE;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, out, S_PREKEY_SIGNED_LEN);
    bytes_put_u8(&w, S_PREKEY_VERSION);
    bytes_put(&w, pk->owner, 32);
    bytes_put_u32(&w, pk->spk_id);
    bytes_put(&w, pk->spk_pub, 32);
    bytes_put_u64(&w, pk->created_ms);
    uint8_t msg[sizeof S_PREKEY_DOMAIN + S_PREKEY_SIGNED_LEN];
    s_prekey_message(out, msg);
    crypto_sign_detached(out + S_PREKEY_SIGNED_LEN, NULL, msg, sizeof msg, ed_sk);
    return PARLEY_OK;
}

static int
s_prekey_decode(const uint8_t *buf, size_t len, prekey_t *out)
{
    if (!buf || len != DM_PREKEY_BUNDLE_LEN) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_reader_t r;
    bytes_reader_init(&r, buf, len);
    if (bytes_get_u8(&r) != S_PREKEY_VERSION) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    bytes_get(&r, out->owner, 32);
    out->spk_id = bytes_get_u32(&r);
    bytes_get(&r, out->spk_pub, 32);
    out->created_ms = bytes_get_u64(&r);
    const uint8_t *sig = bytes_view(&r, PARLEY_SIG_LEN);
    if (!bytes_reader_done(&r)) {
        return PARLEY_ERR_MALFORMED;
    }
    uint8_t msg[sizeof S_PREKEY_DOMAIN + S_PREKEY_SIGNED_LEN];
    s_prekey_message(buf, msg);
    if (crypto_sign_verify_detached(sig, msg, sizeof msg, out->owner) != 0) {
        return PARLEY_ERR_AUTH;
    }
    return PARLEY_OK;
}

int
dm_prekey_decode(const uint8_t *buf, size_t len, prekey_t *out)
{
    if (!out) {
        return PARLEY_ERR_STATE;
    }
    int rc = s_prekey_decode(buf, len, out);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ------------------------------------------------------------ key agreement */

/*  X25519 that refuses an all-zero result (a low-order peer point). */
static int
s_dh(uint8_t out[32], const uint8_t sk[32], const uint8_t pk[32])
{
    if (crypto_scalarmult(out, sk, pk) != 0 || sodium_is_zero(out, 32)) {
        sodium_memzero(out, 32);
        return PARLEY_ERR_CRYPTO;
    }
    return PARLEY_OK;
}

/*  shared is owned (and wiped) by the caller. */
static int
s_scope(const identity_t *me, const uint8_t peer_ed_pk[32], uint8_t shared[32], uint8_t scope[32])
{
    uint8_t peer_x[32];
    int rc = identity_ed_to_x(peer_ed_pk, peer_x);
    if (rc == 0) {
        rc = s_dh(shared, identity_x_sk(me), peer_x);
    }
    if (rc != 0) {
        return rc;
    }
    const uint8_t *mine = identity_ed_pk(me);
    bool mine_first = memcmp(mine, peer_ed_pk, 32) <= 0;
    crypto_generichash_state st;
    crypto_generichash_init(&st, shared, 32, 32);
    crypto_generichash_update(&st, (const uint8_t *)S_SCOPE_DOMAIN, strlen(S_SCOPE_DOMAIN));
    crypto_generichash_update(&st, mine_first ? mine : peer_ed_pk, 32);
    crypto_generichash_update(&st, mine_first ? peer_ed_pk : mine, 32);
    crypto_generichash_final(&st, scope, 32);
    sodium_memzero(&st, sizeof st);
    return PARLEY_OK;
}

int
dm_scope(const identity_t *me, const uint8_t peer_ed_pk[32], uint8_t scope[32])
{
    if (!me || !peer_ed_pk || !scope) {
        return PARLEY_ERR_STATE;
    }
    uint8_t shared[32];
    int rc = s_scope(me, peer_ed_pk, shared, scope);
    sodium_memzero(shared, sizeof shared);
    if (rc != 0) {
        memset(scope, 0, 32);
    }
    return rc;
}

/*  root = BLAKE2b-256(domain || DH1 || DH2 || DH3 || ed_A || ed_B || EK_A
 *  || spk_id), A the initiator, B the responder. */
static void
s_root(uint8_t root[32], const uint8_t dh[96], const uint8_t ed_a[32], const uint8_t ed_b[32],
       const uint8_t ek_pub[32], uint32_t spk_id)
{
    uint8_t id_be[4] = { (uint8_t)(spk_id >> 24), (uint8_t)(spk_id >> 16), (uint8_t)(spk_id >> 8),
                         (uint8_t)spk_id };
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)S_X3DH_DOMAIN, strlen(S_X3DH_DOMAIN));
    crypto_generichash_update(&st, dh, 96);
    crypto_generichash_update(&st, ed_a, 32);
    crypto_generichash_update(&st, ed_b, 32);
    crypto_generichash_update(&st, ek_pub, 32);
    crypto_generichash_update(&st, id_be, sizeof id_be);
    crypto_generichash_final(&st, root, 32);
    sodium_memzero(&st, sizeof st);
}

/*  ek_sk and dh are owned (and wiped) by the caller. */
static int
s_initiate(const identity_t *me, const uint8_t peer_ed_pk[32], const prekey_t *spk,
           const uint8_t ek_sk[32], uint8_t dh[96], uint8_t ek_pub[32], uint8_t root[32])
{
    uint8_t peer_x[32];
    int rc = identity_ed_to_x(peer_ed_pk, peer_x);
    if (rc != 0) {
        return rc;
    }
    if (crypto_scalarmult_base(ek_pub, ek_sk) != 0) {
        return PARLEY_ERR_CRYPTO;
    }
    rc = s_dh(dh, identity_x_sk(me), spk->spk_pub);
    if (rc == 0) {
        rc = s_dh(dh + 32, ek_sk, peer_x);
    }
    if (rc == 0) {
        rc = s_dh(dh + 64, ek_sk, spk->spk_pub);
    }
    if (rc != 0) {
        return rc;
    }
    s_root(root, dh, identity_ed_pk(me), peer_ed_pk, ek_pub, spk->spk_id);
    return PARLEY_OK;
}

int
dm_x3dh_initiate(const identity_t *me, const uint8_t peer_ed_pk[32], const prekey_t *peer_spk,
                 uint8_t ek_pub[32], uint8_t root[32])
{
    if (!me || !peer_ed_pk || !peer_spk || !ek_pub || !root) {
        return PARLEY_ERR_STATE;
    }
    /* A prekey of someone else must never start a session with this peer. */
    if (sodium_memcmp(peer_spk->owner, peer_ed_pk, 32) != 0) {
        return PARLEY_ERR_AUTH;
    }
    uint8_t ek_sk[32];
    uint8_t dh[96];
    randombytes_buf(ek_sk, sizeof ek_sk);
    int rc = s_initiate(me, peer_ed_pk, peer_spk, ek_sk, dh, ek_pub, root);
    sodium_memzero(ek_sk, sizeof ek_sk);
    sodium_memzero(dh, sizeof dh);
    if (rc != 0) {
        sodium_memzero(root, 32);
    }
    return rc;
}

/*  dh is owned (and wiped) by the caller. */
static int
s_respond(const identity_t *me, const uint8_t peer_ed_pk[32], const uint8_t spk_secret[32],
          uint32_t spk_id, const uint8_t ek_pub[32], uint8_t dh[96], uint8_t root[32])
{
    uint8_t peer_x[32];
    int rc = identity_ed_to_x(peer_ed_pk, peer_x);
    if (rc == 0) {
        rc = s_dh(dh, spk_secret, peer_x);
    }
    if (rc == 0) {
        rc = s_dh(dh + 32, identity_x_sk(me), ek_pub);
    }
    if (rc == 0) {
        rc = s_dh(dh + 64, spk_secret, ek_pub);
    }
    if (rc != 0) {
        return rc;
    }
    s_root(root, dh, peer_ed_pk, identity_ed_pk(me), ek_pub, spk_id);
    return PARLEY_OK;
}

int
dm_x3dh_respond(const identity_t *me, const uint8_t peer_ed_pk[32], const uint8_t spk_secret[32],
                uint32_t spk_id, const uint8_t ek_pub[32], uint8_t root[32])
{
    if (!me || !peer_ed_pk || !spk_secret || !ek_pub || !root) {
        return PARLEY_ERR_STATE;
    }
    uint8_t dh[96];
    int rc = s_respond(me, peer_ed_pk, spk_secret, spk_id, ek_pub, dh, root);
    sodium_memzero(dh, sizeof dh);
    if (rc != 0) {
        sodium_memzero(root, 32);
    }
    return rc;
}

/* ------------------------------------------------------------------ ratchet */

int
dm_chain_advance(uint8_t key[32], uint32_t from_day, uint32_t to_day)
{
    if (!key || to_day < from_day) {
        return PARLEY_ERR_STATE;
    }
    if (to_day - from_day > DM_MAX_RATCHET_STEPS) {
        return PARLEY_ERR_LIMIT;
    }
    uint8_t next[32];
    for (uint32_t d = from_day; d < to_day; d++) {
        /* Cannot fail: lengths are within crypto_kdf's bounds. */
        (void)crypto_kdf_derive_from_key(next, sizeof next, 1, S_DAY_CTX, key);
        memcpy(key, next, sizeof next);
    }
    sodium_memzero(next, sizeof next);
    return PARLEY_OK;
}

void
dm_message_key(const uint8_t day_key[32], uint64_t seq, uint8_t mk[32])
{
    /* Cannot fail: lengths are within crypto_kdf's bounds. */
    (void)crypto_kdf_derive_from_key(mk, 32, seq, S_MSG_CTX, day_key);
}

/* ------------------------------------------------------------------ padding */

size_t
dm_bucket(size_t content_len)
{
    if (content_len >= PARLEY_CONTENT_MAX) {
        return 0;
    }
    size_t bucket = PARLEY_PAD_BLOCK_MIN;
    while (bucket < content_len + 1) {
        bucket *= 2;
    }
    return bucket;
}

bool
dm_is_bucket(size_t n)
{
    return n >= PARLEY_PAD_BLOCK_MIN && n <= PARLEY_CONTENT_MAX && (n & (n - 1)) == 0;
}

size_t
dm_body_len(size_t content_len)
{
    size_t bucket = dm_bucket(content_len);
    return bucket ? S_BODY_OVERHEAD + bucket : 0;
}

/* -------------------------------------------------------------- DM envelope */

/*  The fields dm_envelope_seal takes from the caller, checked. */
static int
s_seal_fields(const identity_t *me, const envelope_t *fields, const dm_header_t *h, envelope_t *env)
{
    *env = *fields;
    env->version = PARLEY_ENVELOPE_VERSION;
    env->body = NULL;
    env->body_len = 0;
    if (env->kind != ENVELOPE_KIND_DM) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    if (env->seq == 0 || h->day < h->day0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (sodium_memcmp(env->author, identity_ed_pk(me), 32) != 0) {
        return PARLEY_ERR_STATE;
    }
    return PARLEY_OK;
}

/*  Writes header and body into out and encrypts the body in place.
 *  mk is owned (and wiped) by the caller. */
static int
s_seal_body(const envelope_t *env, const dm_header_t *h, const uint8_t day_key[32],
            const uint8_t *content, size_t content_len, size_t bucket, uint8_t mk[32], uint8_t *out)
{
    size_t body_len = S_BODY_OVERHEAD + bucket;
    uint8_t *body = out + PARLEY_ENVELOPE_HEADER_LEN;
    uint8_t nonce[S_NONCE_LEN];
    randombytes_buf(nonce, sizeof nonce);

    envelope_header(env, body_len, out);
    bytes_writer_t w;
    bytes_writer_init(&w, body, PARLEY_DM_HEADER_LEN);
    bytes_put(&w, h->ek_pub, 32);
    bytes_put_u32(&w, h->spk_id);
    bytes_put_u32(&w, h->day0);
    bytes_put_u32(&w, h->day);
    bytes_put(&w, nonce, sizeof nonce);

    uint8_t *pt = body + PARLEY_DM_HEADER_LEN;
    if (content_len > 0) {
        memcpy(pt, content, content_len);
    }
    size_t padded = 0;
    if (sodium_pad(&padded, pt, content_len, bucket, bucket) != 0 || padded != bucket) {
        return PARLEY_ERR_LIMIT;
    }
    dm_message_key(day_key, env->seq, mk);
    /* In place; AD = the 94-byte header and the 68 clear body bytes. */
    crypto_aead_xchacha20poly1305_ietf_encrypt(pt, NULL, pt, bucket, out, S_AD_LEN, NULL, nonce,
                                               mk);
    return PARLEY_OK;
}

int
dm_envelope_seal(const identity_t *me, const envelope_t *env_fields, const dm_header_t *h,
                 const uint8_t day_key[32], const uint8_t *content, size_t content_len,
                 uint8_t *out, size_t cap, size_t *out_len)
{
    if (!me || !env_fields || !h || !day_key || !out || !out_len || (!content && content_len)) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    envelope_t env;
    int rc = s_seal_fields(me, env_fields, h, &env);
    if (rc != 0) {
        return rc;
    }
    size_t bucket = dm_bucket(content_len);
    if (bucket == 0) {
        return PARLEY_ERR_LIMIT;
    }
    size_t body_len = S_BODY_OVERHEAD + bucket;
    if (cap < PARLEY_ENVELOPE_HEADER_LEN + body_len + PARLEY_SIG_LEN) {
        return PARLEY_ERR_LIMIT;
    }
    uint8_t mk[32];
    rc = s_seal_body(&env, h, day_key, content, content_len, bucket, mk, out);
    sodium_memzero(mk, sizeof mk);
    if (rc == 0) {
        env.body = out + PARLEY_ENVELOPE_HEADER_LEN;
        env.body_len = body_len;
        rc = envelope_seal(&env, identity_ed_sk(me), out, cap, out_len);
    }
    if (rc != 0) {
        /* Never leave plaintext behind in the caller's buffer. */
        sodium_memzero(out, PARLEY_ENVELOPE_HEADER_LEN + body_len);
    }
    return rc;
}

int
dm_body_parse(const envelope_t *env, dm_header_t *h)
{
    if (!env || !h) {
        return PARLEY_ERR_STATE;
    }
    memset(h, 0, sizeof *h);
    if (env->kind != ENVELOPE_KIND_DM) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    if (!env->body || env->body_len < S_BODY_OVERHEAD
        || !dm_is_bucket(env->body_len - S_BODY_OVERHEAD)) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_reader_t r;
    bytes_reader_init(&r, env->body, PARLEY_DM_HEADER_LEN);
    bytes_get(&r, h->ek_pub, 32);
    h->spk_id = bytes_get_u32(&r);
    h->day0 = bytes_get_u32(&r);
    h->day = bytes_get_u32(&r);
    if (h->day < h->day0) {
        memset(h, 0, sizeof *h);
        return PARLEY_ERR_MALFORMED;
    }
    return PARLEY_OK;
}

/*  mk is owned (and wiped) by the caller. */
static int
s_open(const envelope_t *env, const uint8_t day_key[32], uint8_t mk[32], uint8_t *content,
       size_t bucket, size_t *content_len)
{
    uint8_t ad[S_AD_LEN];
    envelope_header(env, env->body_len, ad);
    memcpy(ad + PARLEY_ENVELOPE_HEADER_LEN, env->body, PARLEY_DM_HEADER_LEN);
    dm_message_key(day_key, env->seq, mk);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            content, NULL, NULL, env->body + PARLEY_DM_HEADER_LEN, bucket + PARLEY_AEAD_TAG_LEN, ad,
            sizeof ad, env->body + S_OFF_NONCE, mk)
        != 0) {
        return PARLEY_ERR_AUTH;
    }
    if (sodium_unpad(content_len, content, bucket, bucket) != 0) {
        return PARLEY_ERR_MALFORMED;
    }
    return PARLEY_OK;
}

int
dm_envelope_open(const envelope_t *env, const uint8_t day_key[32], uint8_t *content, size_t cap,
                 size_t *content_len)
{
    if (!env || !day_key || !content || !content_len) {
        return PARLEY_ERR_STATE;
    }
    *content_len = 0;
    dm_header_t h;
    int rc = dm_body_parse(env, &h);
    if (rc != 0) {
        return rc;
    }
    size_t bucket = env->body_len - S_BODY_OVERHEAD;
    if (cap < bucket) {
        return PARLEY_ERR_LIMIT;
    }
    uint8_t mk[32];
    rc = s_open(env, day_key, mk, content, bucket, content_len);
    sodium_memzero(mk, sizeof mk);
    if (rc != 0) {
        sodium_memzero(content, bucket);
        *content_len = 0;
    }
    return rc;
}

/* ---------------------------------------------------------------- self-test */

#define S_NOW 1700000000000ull

/*  A and B, B's prekey, and the session A starts against it. */
typedef struct {
    identity_t *a;
    identity_t *b;
    prekey_t spk;
    uint8_t spk_secret[32];
    uint8_t bundle[DM_PREKEY_BUNDLE_LEN];
    uint8_t scope[32];
    dm_header_t h;
    uint8_t root[32];
} s_pair_t;

static void
s_pair_open(s_pair_t *p)
{
    memset(p, 0, sizeof *p);
    p->a = identity_new();
    p->b = identity_new();
    CHECK(p->a && p->b);
    CHECK(dm_prekey_generate(identity_ed_pk(p->b), 7, S_NOW, &p->spk, p->spk_secret) == 0);
    CHECK(dm_prekey_encode(&p->spk, identity_ed_sk(p->b), p->bundle) == 0);
    CHECK(dm_scope(p->a, identity_ed_pk(p->b), p->scope) == 0);
    CHECK(dm_x3dh_initiate(p->a, identity_ed_pk(p->b), &p->spk, p->h.ek_pub, p->root) == 0);
    p->h.spk_id = p->spk.spk_id;
    p->h.day0 = 19000;
    p->h.day = 19002;
}

static void
s_pair_close(s_pair_t *p)
{
    identity_destroy(&p->a);
    identity_destroy(&p->b);
    sodium_memzero(p, sizeof *p);
}

static envelope_t
s_dm_fields(const s_pair_t *p, uint64_t seq)
{
    envelope_t env;
    memset(&env, 0, sizeof env);
    env.kind = ENVELOPE_KIND_DM;
    memcpy(env.author, identity_ed_pk(p->a), 32);
    memcpy(env.scope, p->scope, 32);
    env.seq = seq;
    env.ts_ms = S_NOW;
    return env;
}

static void
s_test_prekey(const s_pair_t *p)
{
    prekey_t back;
    CHECK(dm_prekey_decode(p->bundle, sizeof p->bundle, &back) == 0);
    CHECK(memcmp(&back.owner, p->spk.owner, 32) == 0 && back.spk_id == 7);
    CHECK(memcmp(back.spk_pub, p->spk.spk_pub, 32) == 0 && back.created_ms == S_NOW);
    uint8_t check[32];
    CHECK(crypto_scalarmult_base(check, p->spk_secret) == 0);
    CHECK(memcmp(check, p->spk.spk_pub, 32) == 0);

    uint8_t buf[DM_PREKEY_BUNDLE_LEN + 1];
    memcpy(buf, p->bundle, sizeof p->bundle);
    for (size_t cut = 0; cut < sizeof p->bundle; cut++) {
        CHECK(dm_prekey_decode(buf, cut, &back) == PARLEY_ERR_MALFORMED);
    }
    buf[DM_PREKEY_BUNDLE_LEN] = 0;
    CHECK(dm_prekey_decode(buf, sizeof buf, &back) == PARLEY_ERR_MALFORMED);
    for (size_t i = 0; i < sizeof p->bundle; i++) {
        buf[i] ^= 0x80;
        CHECK(dm_prekey_decode(buf, sizeof p->bundle, &back) != 0);
        CHECK(back.spk_id == 0);
        buf[i] ^= 0x80;
    }
    /* Forgery: A signs a prekey that claims B as owner. */
    CHECK(dm_prekey_encode(&p->spk, identity_ed_sk(p->a), buf) == PARLEY_ERR_STATE);
    prekey_t forged = p->spk;
    memcpy(forged.owner, identity_ed_pk(p->a), 32);
    CHECK(dm_prekey_encode(&forged, identity_ed_sk(p->a), buf) == 0);
    CHECK(dm_prekey_decode(buf, sizeof p->bundle, &back) == 0);
    memcpy(buf + 1, identity_ed_pk(p->b), 32);
    CHECK(dm_prekey_decode(buf, sizeof p->bundle, &back) == PARLEY_ERR_AUTH);
}

static void
s_test_agreement(const s_pair_t *p)
{
    uint8_t scope_b[32];
    CHECK(dm_scope(p->b, identity_ed_pk(p->a), scope_b) == 0);
    CHECK(memcmp(scope_b, p->scope, 32) == 0);
    identity_t *c = identity_new();
    CHECK(c);
    uint8_t scope_c[32];
    CHECK(dm_scope(c, identity_ed_pk(p->a), scope_c) == 0);
    CHECK(memcmp(scope_c, p->scope, 32) != 0);
    uint8_t zero[32] = { 0 };
    CHECK(dm_scope(c, zero, scope_c) == PARLEY_ERR_CRYPTO);

    uint8_t root_b[32];
    CHECK(dm_x3dh_respond(p->b, identity_ed_pk(p->a), p->spk_secret, p->spk.spk_id, p->h.ek_pub,
                          root_b)
          == 0);
    CHECK(sodium_memcmp(root_b, p->root, 32) == 0);
    /* A different spk_id in the header gives a different root. */
    CHECK(dm_x3dh_respond(p->b, identity_ed_pk(p->a), p->spk_secret, p->spk.spk_id + 1, p->h.ek_pub,
                          root_b)
          == 0);
    CHECK(sodium_memcmp(root_b, p->root, 32) != 0);
    /* Low-order points from a peer: refused, not a predictable key. */
    CHECK(dm_x3dh_respond(p->b, identity_ed_pk(p->a), p->spk_secret, 7, zero, root_b)
          == PARLEY_ERR_CRYPTO);
    CHECK(sodium_is_zero(root_b, 32));
    prekey_t bad = p->spk;
    memset(bad.spk_pub, 0, 32);
    uint8_t ek[32];
    CHECK(dm_x3dh_initiate(p->a, identity_ed_pk(p->b), &bad, ek, root_b) == PARLEY_ERR_CRYPTO);
    /* A prekey owned by C cannot start a session with B. */
    bad = p->spk;
    memcpy(bad.owner, identity_ed_pk(c), 32);
    CHECK(dm_x3dh_initiate(p->a, identity_ed_pk(p->b), &bad, ek, root_b) == PARLEY_ERR_AUTH);
    /* Two sessions never share an ephemeral key or a root. */
    CHECK(dm_x3dh_initiate(p->a, identity_ed_pk(p->b), &p->spk, ek, root_b) == 0);
    CHECK(memcmp(ek, p->h.ek_pub, 32) != 0 && memcmp(root_b, p->root, 32) != 0);
    identity_destroy(&c);
}

static void
s_test_chain(const s_pair_t *p)
{
    uint8_t one[32];
    uint8_t three[32];
    memcpy(one, p->root, 32);
    memcpy(three, p->root, 32);
    CHECK(dm_chain_advance(three, 10, 13) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(dm_chain_advance(one, 10, 11) == 0);
    }
    CHECK(memcmp(one, three, 32) == 0 && memcmp(one, p->root, 32) != 0);
    CHECK(dm_chain_advance(one, 5, 5) == 0 && memcmp(one, three, 32) == 0);
    CHECK(dm_chain_advance(one, 5, 4) == PARLEY_ERR_STATE);
    CHECK(dm_chain_advance(one, 0, DM_MAX_RATCHET_STEPS + 1) == PARLEY_ERR_LIMIT);
    CHECK(dm_chain_advance(one, 1, UINT32_MAX) == PARLEY_ERR_LIMIT);
    uint8_t mk1[32];
    uint8_t mk2[32];
    dm_message_key(one, 1, mk1);
    dm_message_key(one, 2, mk2);
    CHECK(memcmp(mk1, mk2, 32) != 0);
    dm_message_key(one, 1, mk2);
    CHECK(memcmp(mk1, mk2, 32) == 0);

    CHECK(dm_body_len(0) == 68 + 64 + 16);
    CHECK(dm_body_len(63) == 68 + 64 + 16);
    CHECK(dm_body_len(64) == 68 + 128 + 16);
    CHECK(dm_body_len(PARLEY_CONTENT_MAX - 1) == 68 + PARLEY_CONTENT_MAX + 16);
    CHECK(dm_body_len(PARLEY_CONTENT_MAX) == 0);
    CHECK(dm_body_len(SIZE_MAX) == 0);
}

/*  Seals content from A with the session's day key; returns the length. */
static size_t
s_seal(const s_pair_t *p, uint64_t seq, const uint8_t *content, size_t len, uint8_t *out)
{
    uint8_t day_key[32];
    memcpy(day_key, p->root, 32);
    CHECK(dm_chain_advance(day_key, p->h.day0, p->h.day) == 0);
    envelope_t fields = s_dm_fields(p, seq);
    size_t out_len = 0;
    CHECK(dm_envelope_seal(p->a, &fields, &p->h, day_key, content, len, out, PARLEY_ENVELOPE_MAX,
                           &out_len)
          == 0);
    return out_len;
}

/*  B's side: decode, verify, rederive the day key, open. */
static int
s_receive(const s_pair_t *p, const uint8_t *buf, size_t len, uint8_t *content, size_t *content_len)
{
    envelope_t env;
    uint8_t id[PARLEY_ID_LEN];
    int rc = envelope_check(buf, len, S_NOW, &env, id);
    if (rc != 0) {
        return rc;
    }
    dm_header_t h;
    rc = dm_body_parse(&env, &h);
    CHECK(rc == 0 && memcmp(h.ek_pub, p->h.ek_pub, 32) == 0 && h.day == p->h.day);
    uint8_t key[32];
    CHECK(dm_x3dh_respond(p->b, env.author, p->spk_secret, h.spk_id, h.ek_pub, key) == 0);
    CHECK(dm_chain_advance(key, h.day0, h.day) == 0);
    rc = dm_envelope_open(&env, key, content, PARLEY_CONTENT_MAX, content_len);
    sodium_memzero(key, sizeof key);
    return rc;
}

static void
s_test_seal_open(const s_pair_t *p, uint8_t *buf, uint8_t *content)
{
    static const size_t sizes[] = { 0, 1, 63, 64, 65, 1000, PARLEY_CONTENT_MAX - 1 };
    uint8_t *msg = malloc(PARLEY_CONTENT_MAX);
    CHECK(msg);
    randombytes_buf(msg, PARLEY_CONTENT_MAX);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t len = s_seal(p, i + 1, msg, sizes[i], buf);
        CHECK(len == PARLEY_ENVELOPE_HEADER_LEN + dm_body_len(sizes[i]) + PARLEY_SIG_LEN);
        size_t got = 0;
        CHECK(s_receive(p, buf, len, content, &got) == 0);
        CHECK(got == sizes[i] && memcmp(content, msg, got) == 0);
    }
    uint8_t day_key[32] = { 0 };
    envelope_t fields = s_dm_fields(p, 1);
    size_t out_len = 0;
    CHECK(dm_envelope_seal(p->a, &fields, &p->h, day_key, msg, PARLEY_CONTENT_MAX, buf,
                           PARLEY_ENVELOPE_MAX, &out_len)
          == PARLEY_ERR_LIMIT);
    CHECK(dm_envelope_seal(p->a, &fields, &p->h, day_key, msg, 10, buf, 94 + 148 + 63, &out_len)
          == PARLEY_ERR_LIMIT);
    fields.kind = 0;
    CHECK(
        dm_envelope_seal(p->a, &fields, &p->h, day_key, msg, 10, buf, PARLEY_ENVELOPE_MAX, &out_len)
        == PARLEY_ERR_UNSUPPORTED);
    fields = s_dm_fields(p, 0);
    CHECK(
        dm_envelope_seal(p->a, &fields, &p->h, day_key, msg, 10, buf, PARLEY_ENVELOPE_MAX, &out_len)
        == PARLEY_ERR_MALFORMED);
    fields = s_dm_fields(p, 1);
    memcpy(fields.author, identity_ed_pk(p->b), 32);
    CHECK(
        dm_envelope_seal(p->a, &fields, &p->h, day_key, msg, 10, buf, PARLEY_ENVELOPE_MAX, &out_len)
        == PARLEY_ERR_STATE);
    dm_header_t back = p->h;
    back.day = back.day0 - 1;
    fields = s_dm_fields(p, 1);
    CHECK(
        dm_envelope_seal(p->a, &fields, &back, day_key, msg, 10, buf, PARLEY_ENVELOPE_MAX, &out_len)
        == PARLEY_ERR_MALFORMED);
    CHECK(out_len == 0);
    free(msg);
}

static void
s_test_wrong_keys(const s_pair_t *p, uint8_t *buf, uint8_t *content)
{
    const uint8_t text[] = "\x01meet at noon";
    size_t len = s_seal(p, 5, text, sizeof text - 1, buf);
    envelope_t env;
    CHECK(envelope_decode(buf, len, &env) == 0);
    uint8_t key[32];
    size_t got = 0;
    memcpy(key, p->root, 32);
    CHECK(dm_envelope_open(&env, key, content, PARLEY_CONTENT_MAX, &got) == PARLEY_ERR_AUTH);
    CHECK(dm_chain_advance(key, p->h.day0, p->h.day + 1) == 0); /* one day too far */
    CHECK(dm_envelope_open(&env, key, content, PARLEY_CONTENT_MAX, &got) == PARLEY_ERR_AUTH);
    memcpy(key, p->root, 32);
    CHECK(dm_chain_advance(key, p->h.day0, p->h.day) == 0);
    CHECK(dm_envelope_open(&env, key, content, 63, &got) == PARLEY_ERR_LIMIT);
    CHECK(dm_envelope_open(&env, key, content, PARLEY_CONTENT_MAX, &got) == 0);
    CHECK(got == sizeof text - 1 && memcmp(content, text, got) == 0);

    /* The author re-sends the same body under another seq: the message key
     * (and the AD) differ, so it does not open. */
    envelope_t moved = s_dm_fields(p, 6);
    moved.version = PARLEY_ENVELOPE_VERSION;
    moved.body = env.body;
    moved.body_len = env.body_len;
    uint8_t *other = malloc(PARLEY_ENVELOPE_MAX);
    size_t other_len = 0;
    CHECK(other);
    CHECK(envelope_seal(&moved, identity_ed_sk(p->a), other, PARLEY_ENVELOPE_MAX, &other_len) == 0);
    CHECK(envelope_decode(other, other_len, &moved) == 0);
    CHECK(dm_envelope_open(&moved, key, content, PARLEY_CONTENT_MAX, &got) == PARLEY_ERR_AUTH);
    CHECK(got == 0);
    env.kind = 2;
    CHECK(dm_envelope_open(&env, key, content, PARLEY_CONTENT_MAX, &got) == PARLEY_ERR_UNSUPPORTED);
    free(other);
}

/*  Re-signs a modified body as A (a relay cannot, but A's own bug or a
 *  compromised A could): the AEAD must still refuse it. */
static int
s_open_modified(const s_pair_t *p, const uint8_t *body, size_t body_len, uint8_t *scratch,
                uint8_t *content)
{
    envelope_t env = s_dm_fields(p, 9);
    env.version = PARLEY_ENVELOPE_VERSION;
    env.body = body;
    env.body_len = body_len;
    size_t len = 0;
    CHECK(envelope_seal(&env, identity_ed_sk(p->a), scratch, PARLEY_ENVELOPE_MAX, &len) == 0);
    CHECK(envelope_decode(scratch, len, &env) == 0);
    uint8_t key[32];
    memcpy(key, p->root, 32);
    CHECK(dm_chain_advance(key, p->h.day0, p->h.day) == 0);
    size_t got = 0;
    int rc = dm_envelope_open(&env, key, content, PARLEY_CONTENT_MAX, &got);
    CHECK(rc != 0 || got <= PARLEY_CONTENT_MAX);
    return rc;
}

static void
s_test_body_negative(const s_pair_t *p, uint8_t *buf, uint8_t *content)
{
    const uint8_t text[] = "\x01hello";
    size_t len = s_seal(p, 9, text, sizeof text - 1, buf);
    size_t body_len = len - PARLEY_ENVELOPE_HEADER_LEN - PARLEY_SIG_LEN;
    uint8_t body[256];
    CHECK(body_len <= sizeof body);
    memcpy(body, buf + PARLEY_ENVELOPE_HEADER_LEN, body_len);
    uint8_t *scratch = malloc(PARLEY_ENVELOPE_MAX);
    CHECK(scratch);
    CHECK(s_open_modified(p, body, body_len, scratch, content) == 0);
    for (size_t cut = 0; cut < body_len; cut++) {
        CHECK(s_open_modified(p, body, cut, scratch, content) != 0);
    }
    for (size_t i = 0; i < body_len; i++) {
        body[i] ^= 0x01;
        CHECK(s_open_modified(p, body, body_len, scratch, content) != 0);
        body[i] ^= 0x01;
    }
    /* day before day0 is refused by the parser, before any key is used. */
    bytes_writer_t w;
    bytes_writer_init(&w, body + 40, 4);
    bytes_put_u32(&w, p->h.day0 - 1);
    CHECK(s_open_modified(p, body, body_len, scratch, content) == PARLEY_ERR_MALFORMED);
    free(scratch);
}

/*  Forward secrecy at the crypto level: once B's SPK secret is wiped, B's
 *  and A's identity keys (all an attacker with both identity.key files
 *  has) cannot rederive the root of a recorded session. */
static void
s_test_forward_secrecy(s_pair_t *p, uint8_t *buf, uint8_t *content)
{
    const uint8_t text[] = "\x01secret plans";
    size_t len = s_seal(p, 11, text, sizeof text - 1, buf);
    size_t got = 0;
    CHECK(s_receive(p, buf, len, content, &got) == 0);

    uint8_t newer[32];
    memcpy(newer, p->root, 32);
    CHECK(dm_chain_advance(newer, p->h.day0, p->h.day + 1) == 0);
    sodium_memzero(p->spk_secret, sizeof p->spk_secret); /* B rotates its prekey */

    envelope_t env;
    CHECK(envelope_decode(buf, len, &env) == 0);
    /* The day key B still holds is past the message's day. */
    CHECK(dm_envelope_open(&env, newer, content, PARLEY_CONTENT_MAX, &got) == PARLEY_ERR_AUTH);
    /* Identity keys plus a zero or a guessed SPK secret: another root. */
    uint8_t guess[32] = { 0 };
    for (int attempt = 0; attempt < 2; attempt++) {
        uint8_t root[32];
        CHECK(dm_x3dh_respond(p->b, identity_ed_pk(p->a), guess, p->h.spk_id, p->h.ek_pub, root)
              == 0);
        CHECK(sodium_memcmp(root, p->root, 32) != 0);
        CHECK(dm_chain_advance(root, p->h.day0, p->h.day) == 0);
        CHECK(dm_envelope_open(&env, root, content, PARLEY_CONTENT_MAX, &got) == PARLEY_ERR_AUTH);
        randombytes_buf(guess, sizeof guess);
    }
}

void
dm_test(bool verbose)
{
    if (verbose) {
        printf(" * dm: prekeys, scope, X3DH, chain, seal/open, negatives, forward secrecy\n");
    }
    uint8_t *buf = malloc(PARLEY_ENVELOPE_MAX);
    uint8_t *content = malloc(PARLEY_CONTENT_MAX);
    CHECK(buf && content);
    s_pair_t p;
    s_pair_open(&p);
    s_test_prekey(&p);
    s_test_agreement(&p);
    s_test_chain(&p);
    s_test_seal_open(&p, buf, content);
    s_test_wrong_keys(&p, buf, content);
    s_test_body_negative(&p, buf, content);
    s_test_forward_secrecy(&p, buf, content);
    s_pair_close(&p);
    free(buf);
    free(content);
}
