/*  proto/netkey.h — the signature on a network secret (NETKEY frame, SPEC §19.2).
 *
 *  A private network's members share a 32-byte secret per epoch (it keys the
 *  blinded mDNS records, proto/blind.h). A member hands it to another member
 *  in a NETKEY frame over CURVE, signed by its author:
 *
 *    sig = Ed25519(author, "parley/netkey/v2\0" || binding (32)
 *                          || u32 epoch (big-endian) || secret (32))
 *    binding = BLAKE2b-256("parley/epoch/v1\0" || network_id
 *                          || the ids of the REMOVE events the fold applied,
 *                             ascending)
 *
 *  The binding ties a secret to the removals it answers, not only to their
 *  count: two partitions that each removed someone reach the same epoch
 *  number with different removals, and a member must not take (and pass
 *  on) the other side's secret before it holds the removal it answers.
 *
 *  The frame decoder (frame.c) only checks the layout; the node verifies the
 *  signature with netkey_verify() and decides whether the author may hand out
 *  secrets of that network (the roster's business). The signed message holds
 *  the secret: both functions wipe their copy.
 */
#ifndef PARLEY_PROTO_NETKEY_H
#define PARLEY_PROTO_NETKEY_H

#include "errors.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NETKEY_DOMAIN "parley/netkey/v2" /* signed with its NUL */
#define NETKEY_BINDING "parley/epoch/v1" /* hashed with its NUL */
#define NETKEY_SECRET_LEN 32u
#define NETKEY_SIG_LEN 64u

/*  The binding of an epoch: removals holds n REMOVE event ids, ascending
 *  (the caller sorts: only the sorted order gives the binding others
 *  compute). */
void netkey_binding(const uint8_t network_id[32], const uint8_t *removals, size_t n,
                    uint8_t out[32]);

/*  Signs (binding, epoch, secret) with ed_sk (libsodium's 64-byte secret
 *  key) into sig. PARLEY_ERR_MALFORMED for an all-zero secret (refused on the
 *  wire), _CRYPTO if libsodium refuses. */
int netkey_sign(const uint8_t binding[32], uint32_t epoch, const uint8_t secret[32],
                const uint8_t ed_sk[64], uint8_t sig[64]) PARLEY_WUR;

/*  PARLEY_OK if sig is author's signature over (binding, epoch, secret),
 *  PARLEY_ERR_AUTH otherwise (also for an all-zero secret): another author,
 *  or another binding (removals this node does not hold, or holds others
 *  of). */
int netkey_verify(const uint8_t binding[32], uint32_t epoch, const uint8_t secret[32],
                  const uint8_t author[32], const uint8_t sig[64]) PARLEY_WUR;

void netkey_test(bool verbose);

#endif
