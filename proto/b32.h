/*  proto/b32.h — RFC 4648 base32, lower case, no padding; and hex.
 *
 *  Node ids are the base32 form of the Ed25519 public key (52 characters).
 *  The decoder accepts upper or lower case, rejects padding, any character
 *  outside the alphabet, and non-zero trailing bits (one string per key).
 */
#ifndef PARLEY_PROTO_B32_H
#define PARLEY_PROTO_B32_H

#include "errors.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Length of the encoding of n bytes, without the terminating NUL. */
size_t b32_encoded_len(size_t n);
/*  Writes the encoding and a NUL into out (cap >= b32_encoded_len(n) + 1). */
int b32_encode(const uint8_t *data, size_t n, char *out, size_t cap) PARLEY_WUR;
/*  Decodes exactly out_len bytes from str; PARLEY_ERR_MALFORMED otherwise. */
int b32_decode(const char *str, uint8_t *out, size_t out_len) PARLEY_WUR;

/*  Lower-case hex, NUL-terminated; cap >= 2n + 1. */
int hex_encode(const uint8_t *data, size_t n, char *out, size_t cap) PARLEY_WUR;
int hex_decode(const char *str, uint8_t *out, size_t out_len) PARLEY_WUR;

void b32_test(bool verbose);

#endif
