/*  proto/blind.h — blinded mDNS announcements of a private network's members
 *  (SPEC §19.3): who a record names is visible only to holders of the
 *  network secret.
 *
 *    K        = KDF(network secret, 1, "parleymd")
 *    sealed   = nonce (24, fresh) || AEAD(K, nonce, node Ed25519 pk, ad = "parley/mdns/v1\0")
 *    instance = "parley-" || base32(10 fresh random bytes)
 *
 *  txt.c carries `sealed` in the TXT record as "b=" + base32 (116 characters);
 *  this file is the crypto and the names. A receiver holds the keys of up to
 *  BLIND_KEYS_MAX secrets (the current epoch and recent ones) and tries each:
 *  at most BLIND_KEYS_MAX AEAD openings per record, whatever it is sent.
 *  Pure: libsodium only; keys are the caller's (wipe them).
 */
#ifndef PARLEY_PROTO_BLIND_H
#define PARLEY_PROTO_BLIND_H

#include "errors.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BLIND_KEYS_MAX 4u    /* keys one receiver tries per record */
#define BLIND_KEY_LEN 32u    /* an mDNS key (and a network secret) */
#define BLIND_NONCE_LEN 24u  /* XChaCha20-Poly1305-IETF nonce */
#define BLIND_SEALED_LEN 72u /* nonce 24 | node pk 32 | tag 16 */
#define BLIND_TEXT_LEN 116u  /* base32 of the sealed bytes */
#define BLIND_NAME_RANDOM 10u
#define BLIND_NAME_LEN 23u /* "parley-" + 16 base32 characters */
#define BLIND_KDF_ID 1u
#define BLIND_KDF_CTX "parleymd"
#define BLIND_AD "parley/mdns/v1" /* with its NUL */

/*  The mDNS key of a network secret. PARLEY_ERR_MALFORMED for an all-zero
 *  secret (refused everywhere), _CRYPTO if libsodium refuses. */
int blind_key(const uint8_t secret[BLIND_KEY_LEN], uint8_t key[BLIND_KEY_LEN]) PARLEY_WUR;

/*  Seals ed_pk under key with a fresh random nonce into sealed. */
int blind_seal(const uint8_t key[BLIND_KEY_LEN], const uint8_t ed_pk[32],
               uint8_t sealed[BLIND_SEALED_LEN]) PARLEY_WUR;

/*  Opens sealed with keys[0..n_keys) in order, stopping at the first that
 *  opens it: the node key into ed_pk and the key's index into *which (may be
 *  NULL). PARLEY_ERR_NOKEY when n_keys is 0, _LIMIT above BLIND_KEYS_MAX,
 *  _AUTH when no key opens it, _MALFORMED when what it holds is not a usable
 *  Ed25519 key (SPEC §3). ed_pk is zeroed on failure. */
int blind_open(const uint8_t (*keys)[BLIND_KEY_LEN], size_t n_keys,
               const uint8_t sealed[BLIND_SEALED_LEN], uint8_t ed_pk[32], size_t *which) PARLEY_WUR;

/*  A fresh random instance name, "parley-" + 16 lower-case base32 chars. */
int blind_instance_name(char out[BLIND_NAME_LEN + 1]) PARLEY_WUR;

void blind_test(bool verbose);

#endif
