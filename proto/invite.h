/*  proto/invite.h — invite secrets, their keys, and invite codes.
 *
 *  An admin invites someone into a private network by handing over one
 *  line of text, the invite code. It carries a 32-byte random secret: a
 *  bearer token, so anyone who holds the code may join until the invite is
 *  used up, expires or is revoked. From the secret (SPEC §18.1):
 *
 *    seed      = KDF(secret, 1, "parleyiv")
 *    ed pair   = crypto_sign_seed_keypair(seed)     ed_pk names the invite
 *    curve pair = the ed pair converted to X25519   the joiner dials with it
 *
 *  Record, integers big-endian (SPEC §18.2):
 *
 *    offset size field
 *    0      1    version (INVITE_VERSION = 1)
 *    1      32   network_id
 *    33     32   secret, not all zero
 *    65     8    expires_ms: ms since the Unix epoch, not 0
 *    73     32   inviter_pk: the inviter's Ed25519 key, not all zero
 *    105    1    n: 1..INVITE_ENDPOINTS_MAX
 *    106    ...  n × endpoint: flags u8 | [pk 32] | address
 *                  flags bit 0: a pk follows (the node there is not the
 *                               inviter; never equal to inviter_pk)
 *                  flags bit 1: address is IPv4 (4 bytes) | port u16, the
 *                               endpoint "tcp://A.B.C.D:PORT"; otherwise
 *                               address is len u8 | len endpoint bytes,
 *                               and never an endpoint the IPv4 form holds
 *                  other bits: zero
 *    end-4  4    check: BLAKE2b-256("parley/invite\0" || bytes before)[0..4)
 *
 *  Text: "parley-invite:" followed by the lower-case base32 (proto/b32.h)
 *  of the record. The decoder ignores whitespace anywhere (a mail client
 *  may wrap the line) and accepts upper case, so every valid code has one
 *  canonical text: lower case, no whitespace, which the encoder writes.
 */
#ifndef PARLEY_PROTO_INVITE_H
#define PARLEY_PROTO_INVITE_H

#include "errors.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define INVITE_VERSION 1u
#define INVITE_SECRET_LEN 32u
#define INVITE_KDF_CTX "parleyiv" /* 8 bytes, crypto_kdf context */
#define INVITE_KDF_ID 1u
#define INVITE_CHECK_DOMAIN "parley/invite" /* hashed with its terminating NUL */
#define INVITE_CHECK_LEN 4u
#define INVITE_PREFIX "parley-invite:"
#define INVITE_PREFIX_LEN 14u
#define INVITE_HEADER_LEN 106u /* version | network_id | secret | expires | inviter | n */
#define INVITE_EP_HAS_PK 0x01u
#define INVITE_EP_IPV4 0x02u
/*  The longest record: 4 endpoints, each with a pk and a 255-byte string. */
#define INVITE_RECORD_MAX                                                                          \
    (INVITE_HEADER_LEN + INVITE_ENDPOINTS_MAX * (1u + PARLEY_KEY_LEN + 1u + PARLEY_ENDPOINT_MAX)   \
     + INVITE_CHECK_LEN)

/*  Why a code was refused, one reason per rule, so the CLI can say which.
 *  invite_strerror() gives the sentence. */
typedef enum {
    INVITE_OK = 0,
    INVITE_ERR_PREFIX,   /* does not start with "parley-invite:" */
    INVITE_ERR_BASE32,   /* a character outside base32, or a length no record has */
    INVITE_ERR_LENGTH,   /* too short or too long to be a code */
    INVITE_ERR_DAMAGED,  /* checksum mismatch: mistyped or cut */
    INVITE_ERR_VERSION,  /* made by a newer Parley */
    INVITE_ERR_FIELD,    /* a field breaks the format (count, flags, zero key...) */
    INVITE_ERR_ENDPOINT, /* an endpoint proto/endpoint.h refuses */
    INVITE_ERR_SECRET,   /* the secret is all zero */
    INVITE_ERR_TRAILING, /* bytes after the last endpoint */
    INVITE_ERR_EXPIRED,  /* past expires_ms (invite_code_expired) */
} invite_err_t;

/*  One place the joiner may dial. */
typedef struct {
    char endpoint[PARLEY_ENDPOINT_MAX + 1]; /* "tcp://host:port", NUL-terminated */
    uint8_t pk[PARLEY_KEY_LEN];             /* Ed25519 key of the node there (CURVE pin);
                                               the inviter's when the code names none */
} invite_endpoint_t;

/*  A code's fields. Holds the secret: wipe it (sodium_memzero) after use. */
typedef struct {
    uint8_t network_id[PARLEY_ID_LEN];                 /* the network to join */
    uint8_t secret[INVITE_SECRET_LEN];                 /* bearer secret, not all zero */
    uint64_t expires_ms;                               /* the invite's end, inviter's clock */
    uint8_t inviter_pk[PARLEY_KEY_LEN];                /* the admin who made the invite */
    size_t n;                                          /* endpoints used, 1..4 */
    invite_endpoint_t endpoints[INVITE_ENDPOINTS_MAX]; /* where to reach the network */
} invite_code_t;

/*  Fills secret with 32 random bytes, never all zero. Needs sodium_init(). */
void invite_secret_new(uint8_t secret[INVITE_SECRET_LEN]);

/*  Derives the invite's key pairs from its secret (above); every output is
 *  the caller's, and ed_sk and x_sk are secrets to wipe. The seed is wiped
 *  here. An all-zero secret → PARLEY_ERR_MALFORMED; a refused conversion →
 *  _CRYPTO. Outputs are zeroed on failure. */
int invite_keys(const uint8_t secret[INVITE_SECRET_LEN], uint8_t ed_pk[32], uint8_t ed_sk[64],
                uint8_t x_pk[32], uint8_t x_sk[32]) PARLEY_WUR;

/*  Writes the canonical text of c and a NUL into out (cap bytes;
 *  INVITE_CODE_MAX always suffices) and sets *len to its length. Refuses
 *  what invite_code_decode would: n of 0, a zero secret, expiry or
 *  inviter_pk, an endpoint that is not a NUL-terminated valid endpoint →
 *  _MALFORMED; n above INVITE_ENDPOINTS_MAX or cap too small → _LIMIT. On
 *  failure *len is 0 and out holds no secret. */
int invite_code_encode(const invite_code_t *c, char *out, size_t cap, size_t *len) PARLEY_WUR;

/*  Decodes the len bytes of text (not NUL-terminated). Returns 0 and fills
 *  *out, or _MALFORMED, _LIMIT (longer than any code) or _UNSUPPORTED
 *  (version), zeroes *out, and sets *why (may be NULL) to the reason.
 *  Checks no clock: see invite_code_expired. Wipes its copies of the secret. */
int invite_code_decode(const char *text, size_t len, invite_code_t *out,
                       invite_err_t *why) PARLEY_WUR;

/*  True when the invite has ended at now_ms (expires_ms <= now_ms): the
 *  joiner says so (INVITE_ERR_EXPIRED) before it dials anything. */
bool invite_code_expired(const invite_code_t *c, uint64_t now_ms);

/*  One sentence for a reason, fit for a user. Never NULL. */
const char *invite_strerror(invite_err_t why);

void invite_test(bool verbose);

#endif
