/*  proto/dm.h — forward-secret direct messages.
 *
 *  Each direction of a pair has its own sending session. The sender A opens
 *  one against B's current signed prekey (SPK) with an X3DH-style exchange:
 *
 *    DH1 = X25519(IK_A, SPK_B)   DH2 = X25519(EK_A, IK_B)   DH3 = X25519(EK_A, SPK_B)
 *    root = BLAKE2b-256("parley/x3dh/v1" || DH1 || DH2 || DH3 || ed_A || ed_B
 *                       || EK_A || spk_id(be32))
 *
 *  IK are the X25519 forms of the identity keys; EK_A is fresh per session and
 *  its secret is wiped as soon as root is computed. root is the chain key of
 *  day0; the chain then ratchets one step per period ("day"):
 *
 *    key[d+1] = crypto_kdf_derive_from_key(32, 1, "prlyday_", key[d])
 *    mk(seq)  = crypto_kdf_derive_from_key(32, seq, "prlymsg_", key[d])
 *
 *  Holders keep only the newest key they still need and overwrite older ones,
 *  so once B's SPK secret is wiped and the day key is past, neither party's
 *  identity.key nor the stored envelopes open the message (DH3 needs EK_A or
 *  SPK_B). One-time prekeys are not used: a replayed first message only
 *  re-derives the same session, and envelope ids dedupe it.
 *
 *  DM body (the envelope's body, integers big-endian):
 *
 *    offset size field
 *    0      32   ek_pub   sender's ephemeral X25519 public key (the session)
 *    32     4    spk_id   which of the recipient's prekeys was used
 *    36     4    day0     period index of root
 *    40     4    day      period index of this message's chain key (>= day0)
 *    44     24   nonce    random XChaCha20 nonce
 *    68     n+16 ciphertext of the padded content, AD = the 94-byte envelope
 *                header followed by body bytes 0..67
 *
 *  The content is padded with ISO/IEC 7816-4 (sodium_pad) to the smallest
 *  power-of-two bucket >= 64 that holds it plus one byte.
 *
 *  Signed prekey bundle (141 bytes):
 *    0 1 version (1) | 1 32 owner Ed25519 pk | 33 4 spk_id | 37 32 spk X25519 pk
 *    | 69 8 created_ms | 77 64 signature over "parley/prekey/v1\0" || bytes 0..76
 *
 *  DM scope: BLAKE2b-256 keyed with X25519(own IK, peer IK), message
 *  "parley/dm-scope/v1" || lower ed pk || higher ed pk. Both sides compute
 *  the same value; a relay cannot link it to the pair.
 */
#ifndef PARLEY_PROTO_DM_H
#define PARLEY_PROTO_DM_H

#include "envelope.h"
#include "errors.h"
#include "identity.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DM_PREKEY_BUNDLE_LEN 141u
#define DM_MAX_RATCHET_STEPS 100000u /* refuse to hash further in one call */

typedef struct {
    uint8_t owner[32];   /* Ed25519 pk of the node that published it */
    uint32_t spk_id;     /* owner-chosen id, increasing */
    uint8_t spk_pub[32]; /* X25519 public key */
    uint64_t created_ms; /* owner's clock */
} prekey_t;

typedef struct {
    uint8_t ek_pub[32]; /* the session's ephemeral public key */
    uint32_t spk_id;    /* recipient prekey used */
    uint32_t day0;      /* period of root */
    uint32_t day;       /* period of this message's chain key */
} dm_header_t;

/*  Makes a new prekey pair; secret goes to spk_secret (caller wipes it). */
int dm_prekey_generate(const uint8_t owner[32], uint32_t spk_id, uint64_t now_ms, prekey_t *pub,
                       uint8_t spk_secret[32]) PARLEY_WUR;
int dm_prekey_encode(const prekey_t *pk, const uint8_t ed_sk[64],
                     uint8_t out[DM_PREKEY_BUNDLE_LEN]) PARLEY_WUR;
/*  Decodes and verifies the owner's signature. */
int dm_prekey_decode(const uint8_t *buf, size_t len, prekey_t *out) PARLEY_WUR;

int dm_scope(const identity_t *me, const uint8_t peer_ed_pk[32], uint8_t scope[32]) PARLEY_WUR;

/*  Initiator side: generates EK, returns its public half and the root.
 *  The EK secret never leaves this function. */
int dm_x3dh_initiate(const identity_t *me, const uint8_t peer_ed_pk[32], const prekey_t *peer_spk,
                     uint8_t ek_pub[32], uint8_t root[32]) PARLEY_WUR;
/*  Responder side: the same root from our SPK secret and their EK. */
int dm_x3dh_respond(const identity_t *me, const uint8_t peer_ed_pk[32],
                    const uint8_t spk_secret[32], uint32_t spk_id, const uint8_t ek_pub[32],
                    uint8_t root[32]) PARLEY_WUR;

/*  Moves key (the chain key of from_day) forward to to_day, in place.
 *  PARLEY_ERR_STATE if to_day < from_day, PARLEY_ERR_LIMIT past
 *  DM_MAX_RATCHET_STEPS. */
int dm_chain_advance(uint8_t key[32], uint32_t from_day, uint32_t to_day) PARLEY_WUR;
void dm_message_key(const uint8_t day_key[32], uint64_t seq, uint8_t mk[32]);

/*  Padding (ISO/IEC 7816-4, sodium_pad): the smallest power-of-two bucket
 *  >= PARLEY_PAD_BLOCK_MIN that holds content_len plus the pad marker, or 0
 *  if none fits; and whether n is such a bucket. Channel bodies pad alike. */
size_t dm_bucket(size_t content_len);
bool dm_is_bucket(size_t n);

/*  Size of the body for content_len bytes of content (0 if too large). */
size_t dm_body_len(size_t content_len);

/*  Builds, encrypts and signs a whole DM envelope. env_fields supplies
 *  kind/author/scope/seq/ts/expires (version is set here, body ignored);
 *  day_key is the chain key of h->day. Writes to out (cap >= PARLEY_ENVELOPE_MAX). */
int dm_envelope_seal(const identity_t *me, const envelope_t *env_fields, const dm_header_t *h,
                     const uint8_t day_key[32], const uint8_t *content, size_t content_len,
                     uint8_t *out, size_t cap, size_t *out_len) PARLEY_WUR;
/*  Reads the clear DM header of a DM envelope's body. */
int dm_body_parse(const envelope_t *env, dm_header_t *h) PARLEY_WUR;
/*  Decrypts and unpads. day_key must be the chain key of the header's day.
 *  PARLEY_ERR_AUTH if it does not open. content cap >= PARLEY_CONTENT_MAX. */
int dm_envelope_open(const envelope_t *env, const uint8_t day_key[32], uint8_t *content, size_t cap,
                     size_t *content_len) PARLEY_WUR;

void dm_test(bool verbose);

#endif
