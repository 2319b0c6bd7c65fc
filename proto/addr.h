/*  proto/addr.h — signed address records for peer exchange.
 *
 *  A node tells its connected peers where it can be dialled by handing them
 *  a record it signed; peers pass records on, so a node can be found by
 *  nodes it never met. A record is a hint, never trust: whoever dials an
 *  address still pins CURVE to the record's key. The signature only stops a
 *  relay from pointing a node's name at someone else's address, and the
 *  lifetime bounds how long a stale address keeps circulating.
 *
 *  Record, integers big-endian:
 *
 *    offset size field
 *    0      1    version (ADDR_VERSION = 1)
 *    1      32   ed_pk: the Ed25519 key of the node the addresses belong to
 *    33     8    issued_ms: ms since the Unix epoch, signer's clock
 *    41     8    expires_ms: > issued_ms, at most ADDR_MAX_LIFETIME_MS later
 *    49     1    n: 1..PARLEY_HELLO_ENDPOINTS_MAX
 *    50     ...  n × (len u8 | len endpoint bytes), each endpoint_valid()
 *    end-64 64   signature: Ed25519 by ed_pk over
 *                "parley/addr/v1\0" || every byte before it
 *
 *  Every byte of a record is either signed or the signature, and libsodium
 *  rejects non-canonical signatures, so one valid record has exactly one
 *  encoding. Full rules and the order of checks: proto/SPEC.md §13.
 */
#ifndef PARLEY_PROTO_ADDR_H
#define PARLEY_PROTO_ADDR_H

#include "errors.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ADDR_VERSION 1u
#define ADDR_SIG_DOMAIN "parley/addr/v1"              /* signed with its terminating NUL */
#define ADDR_MAX_LIFETIME_MS (24ull * 60 * 60 * 1000) /* expires_ms - issued_ms */
#define ADDR_HEADER_LEN 50u                           /* version | ed_pk | issued | expires | n */
/*  A record with one shortest endpoint is longer; this is only a floor. */
#define ADDR_RECORD_MIN (ADDR_HEADER_LEN + PARLEY_SIG_LEN)
#define ADDR_RECORD_MAX                                                                            \
    (ADDR_HEADER_LEN + PARLEY_HELLO_ENDPOINTS_MAX * (1u + PARLEY_ENDPOINT_MAX) + PARLEY_SIG_LEN)

/*  A record's fields. Endpoints are copied out and NUL-terminated, so a
 *  decoded record does not view the buffer it came from. */
typedef struct {
    uint8_t pk[PARLEY_KEY_LEN]; /* Ed25519 key of the node, also the signer */
    uint64_t issued_ms;         /* when the node signed it, its clock */
    uint64_t expires_ms;        /* not valid from this time on */
    size_t n;                   /* endpoints used, 1..PARLEY_HELLO_ENDPOINTS_MAX */
    char endpoints[PARLEY_HELLO_ENDPOINTS_MAX][PARLEY_ENDPOINT_MAX + 1]; /* "tcp://h:p" */
} addr_record_t;

/*  Encodes and signs r into out (cap bytes; ADDR_RECORD_MAX always
 *  suffices) and sets *len. ed_sk is the 64-byte libsodium secret key of
 *  r->pk; the caller keeps it. Refuses anything addr_decode would reject at
 *  r->issued_ms: a key that is not r->pk's → PARLEY_ERR_STATE; n of 0 or an
 *  endpoint that is not a NUL-terminated valid endpoint, or expires_ms <=
 *  issued_ms → _MALFORMED; n above the limit, a lifetime above
 *  ADDR_MAX_LIFETIME_MS or cap too small → _LIMIT. *len is 0 on failure. */
int addr_encode(const addr_record_t *r, const uint8_t ed_sk[64], uint8_t *out, size_t cap,
                size_t *len) PARLEY_WUR;

/*  Decodes and verifies one record of exactly len bytes, as received at
 *  now_ms. Returns _LIMIT (too long, n or lifetime above the limits),
 *  _MALFORMED (structure, bad endpoint, trailing bytes, expires_ms <=
 *  issued_ms), _UNSUPPORTED (version), _AUTH (signature), _FUTURE
 *  (issued_ms more than PARLEY_FUTURE_SKEW_MS after now_ms) or _EXPIRED
 *  (expires_ms <= now_ms). On success fills *out; on failure zeroes it.
 *  Needs sodium_init(). */
int addr_decode(const uint8_t *buf, size_t len, uint64_t now_ms, addr_record_t *out) PARLEY_WUR;

void addr_test(bool verbose);

#endif
