/*  proto/netkey.c — sign and verify a network secret of an epoch (netkey.h,
 *  proto/SPEC.md §19.2).
 *
 *  Owns nothing. The message it signs or checks holds the secret, so it is
 *  built on the stack and wiped on every path.
 */
#include "netkey.h"

#include <sodium.h>
#include <string.h>

#include "bytes.h"
#include "selftest.h"

#define S_DOMAIN_LEN (sizeof NETKEY_DOMAIN) /* with its NUL */
#define S_MSG_LEN (S_DOMAIN_LEN + 32u + 4u + NETKEY_SECRET_LEN)

static void
s_message(const uint8_t binding[32], uint32_t epoch, const uint8_t secret[32],
          uint8_t msg[S_MSG_LEN])
{
    bytes_writer_t w;
    bytes_writer_init(&w, msg, S_MSG_LEN);
    bytes_put(&w, NETKEY_DOMAIN, S_DOMAIN_LEN);
    bytes_put(&w, binding, 32);
    bytes_put_u32(&w, epoch);
    bytes_put(&w, secret, NETKEY_SECRET_LEN);
}

void
netkey_binding(const uint8_t network_id[32], const uint8_t *removals, size_t n, uint8_t out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)NETKEY_BINDING, sizeof NETKEY_BINDING);
    crypto_generichash_update(&st, network_id, 32);
    if (n > 0) {
        crypto_generichash_update(&st, removals, n * 32);
    }
    crypto_generichash_final(&st, out, 32);
}

int
netkey_sign(const uint8_t binding[32], uint32_t epoch, const uint8_t secret[32],
            const uint8_t ed_sk[64], uint8_t sig[64])
{
    if (!binding || !secret || !ed_sk || !sig) {
        return PARLEY_ERR_STATE;
    }
    if (sodium_is_zero(secret, NETKEY_SECRET_LEN)) {
        return PARLEY_ERR_MALFORMED;
    }
    uint8_t msg[S_MSG_LEN];
    s_message(binding, epoch, secret, msg);
    int rc = crypto_sign_detached(sig, NULL, msg, sizeof msg, ed_sk);
    sodium_memzero(msg, sizeof msg);
    return rc == 0 ? PARLEY_OK : PARLEY_ERR_CRYPTO;
}

int
netkey_verify(const uint8_t binding[32], uint32_t epoch, const uint8_t secret[32],
              const uint8_t author[32], const uint8_t sig[64])
{
    if (!binding || !secret || !author || !sig) {
        return PARLEY_ERR_STATE;
    }
    if (sodium_is_zero(secret, NETKEY_SECRET_LEN)) {
        return PARLEY_ERR_AUTH;
    }
    uint8_t msg[S_MSG_LEN];
    s_message(binding, epoch, secret, msg);
    int rc = crypto_sign_verify_detached(sig, msg, sizeof msg, author);
    sodium_memzero(msg, sizeof msg);
    return rc == 0 ? PARLEY_OK : PARLEY_ERR_AUTH;
}

/* --------------------------------------------------------------- self-test */

void
netkey_test(bool verbose)
{
    if (verbose) {
        printf(" * netkey: sign, verify, every field and signature bit bound\n");
    }
    uint8_t pk[32], sk[64], other_pk[32], other_sk[64];
    crypto_sign_keypair(pk, sk);
    crypto_sign_keypair(other_pk, other_sk);
    uint8_t net[32], secret[32], sig[64];
    memset(net, 0x5a, sizeof net);
    randombytes_buf(secret, sizeof secret);
    CHECK(netkey_sign(net, 7, secret, sk, sig) == PARLEY_OK);
    CHECK(netkey_verify(net, 7, secret, pk, sig) == PARLEY_OK);
    /* Each input is bound: another network, epoch, secret, author. */
    CHECK(netkey_verify(net, 8, secret, pk, sig) == PARLEY_ERR_AUTH);
    CHECK(netkey_verify(net, 7 + (1u << 31), secret, pk, sig) == PARLEY_ERR_AUTH);
    for (size_t i = 0; i < 32; i++) {
        net[i] ^= 1;
        CHECK(netkey_verify(net, 7, secret, pk, sig) == PARLEY_ERR_AUTH);
        net[i] ^= 1;
        secret[i] ^= 0x80;
        CHECK(netkey_verify(net, 7, secret, pk, sig) == PARLEY_ERR_AUTH);
        secret[i] ^= 0x80;
    }
    CHECK(netkey_verify(net, 7, secret, other_pk, sig) == PARLEY_ERR_AUTH);
    for (size_t i = 0; i < 64; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            sig[i] ^= (uint8_t)(1u << bit);
            CHECK(netkey_verify(net, 7, secret, pk, sig) == PARLEY_ERR_AUTH);
            sig[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* A forged signature by another key over the same fields. */
    uint8_t forged[64];
    CHECK(netkey_sign(net, 7, secret, other_sk, forged) == PARLEY_OK);
    CHECK(netkey_verify(net, 7, secret, pk, forged) == PARLEY_ERR_AUTH);
    CHECK(netkey_verify(net, 7, secret, other_pk, forged) == PARLEY_OK);
    /* The binding: another removal, or another order, is another binding. */
    uint8_t ids[64], b1[32], b2[32], b0[32];
    randombytes_buf(ids, sizeof ids);
    netkey_binding(net, ids, 2, b1);
    netkey_binding(net, ids, 1, b2);
    netkey_binding(net, NULL, 0, b0);
    CHECK(sodium_memcmp(b1, b2, 32) != 0 && sodium_memcmp(b2, b0, 32) != 0);
    CHECK(netkey_sign(b1, 7, secret, sk, sig) == PARLEY_OK);
    CHECK(netkey_verify(b1, 7, secret, pk, sig) == PARLEY_OK);
    CHECK(netkey_verify(b2, 7, secret, pk, sig) == PARLEY_ERR_AUTH);
    /* An all-zero secret is never signed nor accepted. */
    uint8_t zero[32] = { 0 };
    CHECK(netkey_sign(net, 7, zero, sk, sig) == PARLEY_ERR_MALFORMED);
    CHECK(netkey_verify(net, 7, zero, pk, sig) == PARLEY_ERR_AUTH);
    CHECK(netkey_sign(NULL, 7, secret, sk, sig) == PARLEY_ERR_STATE);
    CHECK(netkey_verify(net, 7, secret, NULL, sig) == PARLEY_ERR_STATE);
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(other_sk, sizeof other_sk);
    sodium_memzero(secret, sizeof secret);
}
