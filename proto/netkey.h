/*  proto/netkey.h — the signature on a network secret (NETKEY frame, SPEC §19.2).
 *
 *  A private network's members share a 32-byte secret per epoch (it keys the
 *  blinded mDNS records, proto/blind.h). A member hands it to another member
 *  in a NETKEY frame over CURVE, signed by its author:
 *
 *    sig = Ed25519(author, "parley/netkey/v1\0" || network_id (32)
 *                          || u32 epoch (big-endian) || secret (32))
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

#define NETKEY_DOMAIN "parley/netkey/v1" /* signed with its NUL */
#define NETKEY_SECRET_LEN 32u
#define NETKEY_SIG_LEN 64u

/*  Signs (network_id, epoch, secret) with ed_sk (libsodium's 64-byte secret
 *  key) into sig. PARLEY_ERR_MALFORMED for an all-zero secret (refused on the
 *  wire), _CRYPTO if libsodium refuses. */
int netkey_sign(const uint8_t network_id[32], uint32_t epoch, const uint8_t secret[32],
                const uint8_t ed_sk[64], uint8_t sig[64]) PARLEY_WUR;

/*  PARLEY_OK if sig is author's signature over (network_id, epoch, secret),
 *  PARLEY_ERR_AUTH otherwise (also for an all-zero secret). */
int netkey_verify(const uint8_t network_id[32], uint32_t epoch, const uint8_t secret[32],
                  const uint8_t author[32], const uint8_t sig[64]) PARLEY_WUR;

void netkey_test(bool verbose);

#endif
