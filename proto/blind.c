/*  proto/blind.c — keys, seals and names of blinded mDNS records (blind.h,
 *  proto/SPEC.md §19.3).
 *
 *  Owns nothing. Invariants: a plaintext leaves blind_open only once its tag
 *  verified and it is a usable Ed25519 key; every stack copy of a key or a
 *  plaintext is wiped on every path; the work per record is bounded by
 *  BLIND_KEYS_MAX openings.
 */
#include "blind.h"

#include <sodium.h>
#include <string.h>

#include "b32.h"
#include "selftest.h"

#define S_PK_LEN 32u
#define S_AD_LEN (sizeof BLIND_AD) /* with its NUL */
#define S_NAME_PREFIX "parley-"

int
blind_key(const uint8_t secret[BLIND_KEY_LEN], uint8_t key[BLIND_KEY_LEN])
{
    if (!secret || !key) {
        return PARLEY_ERR_STATE;
    }
    if (sodium_is_zero(secret, BLIND_KEY_LEN)) {
        return PARLEY_ERR_MALFORMED;
    }
    if (crypto_kdf_derive_from_key(key, BLIND_KEY_LEN, BLIND_KDF_ID, BLIND_KDF_CTX, secret) != 0) {
        sodium_memzero(key, BLIND_KEY_LEN);
        return PARLEY_ERR_CRYPTO;
    }
    return PARLEY_OK;
}

int
blind_seal(const uint8_t key[BLIND_KEY_LEN], const uint8_t ed_pk[32],
           uint8_t sealed[BLIND_SEALED_LEN])
{
    if (!key || !ed_pk || !sealed) {
        return PARLEY_ERR_STATE;
    }
    /* A random nonce per publication: two records of one node share nothing. */
    randombytes_buf(sealed, BLIND_NONCE_LEN);
    unsigned long long ct_len = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + BLIND_NONCE_LEN, &ct_len, ed_pk,
                                                        S_PK_LEN, (const uint8_t *)BLIND_AD,
                                                        S_AD_LEN, NULL, sealed, key);
    if (rc != 0 || ct_len != BLIND_SEALED_LEN - BLIND_NONCE_LEN) {
        sodium_memzero(sealed, BLIND_SEALED_LEN);
        return PARLEY_ERR_CRYPTO;
    }
    return PARLEY_OK;
}

int
blind_open(const uint8_t (*keys)[BLIND_KEY_LEN], size_t n_keys,
           const uint8_t sealed[BLIND_SEALED_LEN], uint8_t ed_pk[32], size_t *which)
{
    if (!ed_pk || !sealed || (n_keys > 0 && !keys)) {
        return PARLEY_ERR_STATE;
    }
    memset(ed_pk, 0, S_PK_LEN);
    if (n_keys == 0) {
        return PARLEY_ERR_NOKEY;
    }
    if (n_keys > BLIND_KEYS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    uint8_t pt[S_PK_LEN];
    for (size_t i = 0; i < n_keys; i++) {
        unsigned long long pt_len = 0;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(
                pt, &pt_len, NULL, sealed + BLIND_NONCE_LEN, BLIND_SEALED_LEN - BLIND_NONCE_LEN,
                (const uint8_t *)BLIND_AD, S_AD_LEN, sealed, keys[i])
                != 0
            || pt_len != S_PK_LEN) {
            continue;
        }
        /* A member could seal anything: what it names must be a usable key,
         * as an id in clear must be (identity_parse_node_id). */
        uint8_t x_pk[32];
        bool usable = crypto_sign_ed25519_pk_to_curve25519(x_pk, pt) == 0;
        if (usable) {
            memcpy(ed_pk, pt, S_PK_LEN);
            if (which) {
                *which = i;
            }
        }
        sodium_memzero(pt, sizeof pt);
        return usable ? PARLEY_OK : PARLEY_ERR_MALFORMED;
    }
    sodium_memzero(pt, sizeof pt);
    return PARLEY_ERR_AUTH;
}

int
blind_instance_name(char out[BLIND_NAME_LEN + 1])
{
    if (!out) {
        return PARLEY_ERR_STATE;
    }
    uint8_t r[BLIND_NAME_RANDOM];
    randombytes_buf(r, sizeof r);
    memcpy(out, S_NAME_PREFIX, sizeof S_NAME_PREFIX - 1);
    /* 10 bytes are exactly 16 base32 characters: no spare bits. */
    int rc = b32_encode(r, sizeof r, out + sizeof S_NAME_PREFIX - 1,
                        BLIND_NAME_LEN + 1 - (sizeof S_NAME_PREFIX - 1));
    if (rc != PARLEY_OK) {
        out[0] = '\0';
    }
    return rc;
}

/* --------------------------------------------------------------- self-test */

void
blind_test(bool verbose)
{
    if (verbose) {
        printf(" * blind: key, seal/open with 1..4 keys, tamper, limits, names\n");
    }
    uint8_t secrets[BLIND_KEYS_MAX + 1][BLIND_KEY_LEN], keys[BLIND_KEYS_MAX + 1][BLIND_KEY_LEN];
    for (size_t i = 0; i < BLIND_KEYS_MAX + 1; i++) {
        randombytes_buf(secrets[i], BLIND_KEY_LEN);
        CHECK(blind_key(secrets[i], keys[i]) == PARLEY_OK);
        CHECK(memcmp(keys[i], secrets[i], BLIND_KEY_LEN) != 0);
    }
    uint8_t zero[BLIND_KEY_LEN] = { 0 }, k[BLIND_KEY_LEN];
    CHECK(blind_key(zero, k) == PARLEY_ERR_MALFORMED);
    CHECK(blind_key(secrets[0], NULL) == PARLEY_ERR_STATE);

    uint8_t pk[32], sk[64], back[32];
    crypto_sign_keypair(pk, sk);
    uint8_t s1[BLIND_SEALED_LEN], s2[BLIND_SEALED_LEN];
    CHECK(blind_seal(keys[2], pk, s1) == PARLEY_OK);
    CHECK(blind_seal(keys[2], pk, s2) == PARLEY_OK);
    /* Fresh nonces: the same node's two records share nothing visible. */
    CHECK(memcmp(s1, s2, BLIND_NONCE_LEN) != 0);
    CHECK(memcmp(s1 + BLIND_NONCE_LEN, s2 + BLIND_NONCE_LEN, 32) != 0);
    size_t which = 99;
    CHECK(blind_open((const uint8_t(*)[32])keys, 4, s1, back, &which) == PARLEY_OK);
    CHECK(which == 2 && memcmp(back, pk, 32) == 0);
    CHECK(blind_open((const uint8_t(*)[32])keys + 2, 1, s2, back, NULL) == PARLEY_OK);
    /* No key, the wrong keys, too many keys. */
    CHECK(blind_open(NULL, 0, s1, back, &which) == PARLEY_ERR_NOKEY && sodium_is_zero(back, 32));
    CHECK(blind_open((const uint8_t(*)[32])keys, 2, s1, back, NULL) == PARLEY_ERR_AUTH);
    CHECK(sodium_is_zero(back, 32));
    CHECK(blind_open((const uint8_t(*)[32])keys + 3, 2, s1, back, NULL) == PARLEY_ERR_AUTH);
    CHECK(blind_open((const uint8_t(*)[32])keys, BLIND_KEYS_MAX + 1, s1, back, NULL)
          == PARLEY_ERR_LIMIT);
    /* The network secret itself is not the key. */
    CHECK(blind_open((const uint8_t(*)[32])secrets + 2, 1, s1, back, NULL) == PARLEY_ERR_AUTH);
    /* Every bit of the record is bound (nonce, ciphertext, tag). */
    for (size_t i = 0; i < BLIND_SEALED_LEN; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            s1[i] ^= (uint8_t)(1u << bit);
            CHECK(blind_open((const uint8_t(*)[32])keys, 4, s1, back, NULL) == PARLEY_ERR_AUTH);
            s1[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* A member sealing a key that is not usable (all zero): refused. */
    CHECK(blind_seal(keys[0], zero, s1) == PARLEY_OK);
    CHECK(blind_open((const uint8_t(*)[32])keys, 1, s1, back, NULL) == PARLEY_ERR_MALFORMED);
    CHECK(sodium_is_zero(back, 32));

    char a[BLIND_NAME_LEN + 1], b[BLIND_NAME_LEN + 1];
    CHECK(blind_instance_name(a) == PARLEY_OK && blind_instance_name(b) == PARLEY_OK);
    CHECK(strlen(a) == BLIND_NAME_LEN && strncmp(a, "parley-", 7) == 0 && strcmp(a, b) != 0);
    for (size_t i = 7; i < BLIND_NAME_LEN; i++) {
        CHECK((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= '2' && a[i] <= '7'));
    }
    sodium_memzero(secrets, sizeof secrets);
    sodium_memzero(keys, sizeof keys);
    sodium_memzero(sk, sizeof sk);
}
