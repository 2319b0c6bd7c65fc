/*  proto/identity.h — a node's long-term identity and its key file.
 *
 *  The identity is an Ed25519 key pair. Its X25519 pair, derived with
 *  crypto_sign_ed25519_*_to_curve25519, serves both DM key agreement and the
 *  CURVE transport. The secret halves live in sodium_malloc'd memory and are
 *  wiped by identity_destroy().
 *
 *  Key file (identity.key), all integers big-endian:
 *
 *    offset size  field
 *    0      8     magic "PRLYKEY1"
 *    8      1     format: 0 = plain, 1 = sealed with a passphrase
 *    9      32    Ed25519 public key (in clear in both formats, so `parley id`
 *                 needs no passphrase; checked against the secret on load)
 *    plain:
 *    41     32    Ed25519 seed
 *    73           end (73 bytes)
 *    sealed:
 *    41     16    Argon2id salt (crypto_pwhash_SALTBYTES)
 *    57     8     opslimit
 *    65     8     memlimit (bytes)
 *    73     24    XChaCha20-Poly1305 nonce
 *    97     48    ciphertext of the seed + 16-byte tag; AD = bytes 0..96
 *    145          end (145 bytes)
 *
 *  opslimit/memlimit read from a file are range-checked against libsodium's
 *  bounds and a ceiling of MODERATE before use (a hostile file cannot make us
 *  allocate gigabytes).
 */
#ifndef PARLEY_PROTO_IDENTITY_H
#define PARLEY_PROTO_IDENTITY_H

#include "errors.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IDENTITY_FILE_PLAIN_LEN 73u
#define IDENTITY_FILE_SEALED_LEN 145u
#define IDENTITY_FILE_MAX IDENTITY_FILE_SEALED_LEN

typedef struct _identity_t identity_t;

/*  Generates a fresh identity. Caller owns it; NULL on failure. */
identity_t *identity_new(void);
/*  Rebuilds an identity from a 32-byte Ed25519 seed (tests, vectors). */
identity_t *identity_new_from_seed(const uint8_t seed[32]);
void identity_destroy(identity_t **self_p);

/*  Public keys (owned by the identity). */
const uint8_t *identity_ed_pk(const identity_t *self);
const uint8_t *identity_x_pk(const identity_t *self);
/*  Secret keys (sodium_malloc'd, owned by the identity): 64-byte Ed25519
 *  secret key and 32-byte X25519 secret key. */
const uint8_t *identity_ed_sk(const identity_t *self);
const uint8_t *identity_x_sk(const identity_t *self);

/*  Encodes the key file into out (cap >= IDENTITY_FILE_MAX). With a NULL
 *  passphrase the plain format is written. opslimit/memlimit choose the
 *  Argon2id cost (0, 0 for crypto_pwhash INTERACTIVE). *out_len gets the size. */
int identity_file_encode(const identity_t *self, const char *passphrase, size_t pass_len,
                         uint64_t opslimit, uint64_t memlimit, uint8_t *out, size_t cap,
                         size_t *out_len) PARLEY_WUR;
/*  Decodes a key file. Returns PARLEY_ERR_MALFORMED for a bad file,
 *  PARLEY_ERR_AUTH for a wrong passphrase (or one missing for a sealed file:
 *  PARLEY_ERR_STATE). On success *out is an owned identity. */
int identity_file_decode(const uint8_t *buf, size_t len, const char *passphrase, size_t pass_len,
                         identity_t **out) PARLEY_WUR;
/*  Reads only the public key of a key file (no passphrase needed). */
int identity_file_public(const uint8_t *buf, size_t len, uint8_t ed_pk[32]) PARLEY_WUR;
/*  True if the key file is sealed with a passphrase (false for bad input). */
bool identity_file_is_sealed(const uint8_t *buf, size_t len);

/*  Node id: base32 of the Ed25519 public key; out has >= 53 bytes. */
void identity_node_id(const uint8_t ed_pk[32], char out[PARLEY_NODE_ID_STRLEN + 1]);
/*  Parses a full node id. */
int identity_parse_node_id(const char *str, uint8_t ed_pk[32]) PARLEY_WUR;
/*  Short id: first 8 characters of the node id. */
void identity_short_id(const uint8_t ed_pk[32], char out[PARLEY_SHORT_ID_STRLEN + 1]);
/*  Fingerprint: BLAKE2b-160 of the public key in hex, in groups of 4
 *  separated by spaces ("xxxx xxxx ... xxxx", 49 chars). out >= 50 bytes. */
void identity_fingerprint(const uint8_t ed_pk[32], char out[50]);
/*  Safety number of a pair: 60 decimal digits, the same for both orders.
 *  Each side's 30 digits come from 5200 iterations of SHA-512 over
 *  version | key | previous; the two halves are concatenated in ascending
 *  order of their digits. out >= 61 bytes. */
int identity_safety_number(const uint8_t a_pk[32], const uint8_t b_pk[32],
                           char out[PARLEY_SAFETY_DIGITS + 1]) PARLEY_WUR;
/*  The X25519 public key belonging to an Ed25519 public key. */
int identity_ed_to_x(const uint8_t ed_pk[32], uint8_t x_pk[32]) PARLEY_WUR;

void identity_test(bool verbose);

#endif
