/*  proto/envelope.h — the envelope, Parley's unit of the log.
 *
 *  An envelope is immutable and content-addressed: id = BLAKE2b-256 of all
 *  its bytes (signature included). Integers are big-endian.
 *
 *    offset  size  field
 *    0       1     version   (PARLEY_ENVELOPE_VERSION = 1)
 *    1       1     kind      (ENVELOPE_KIND_*)
 *    2       32    author    Ed25519 public key of the authoring node
 *    34      32    scope     conversation: DM = keyed hash of the pair (dm.h)
 *    66      8     seq       per (author, scope), from 1, no reuse
 *    74      8     ts_ms     author's clock, ms since the Unix epoch
 *    82      8     expires   ms since the epoch; 0 = never
 *    90      4     body_len  <= PARLEY_BODY_MAX
 *    94      n     body      ciphertext (for kind DM: see dm.h)
 *    94+n    64    signature Ed25519 over "parley/envelope/v1\0" || bytes 0..94+n
 *
 *  The 94 bytes before the body are "the header"; they are also the AEAD
 *  associated data of the body, so a relay cannot move a body to another
 *  header. A decoded envelope is a view into the caller's buffer.
 */
#ifndef PARLEY_PROTO_ENVELOPE_H
#define PARLEY_PROTO_ENVELOPE_H

#include "errors.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    ENVELOPE_KIND_DM = 1,        /* direct message: body is a dm.h ciphertext */
    ENVELOPE_KIND_NET = 2,       /* network event: plaintext roster.h body, scope = network id */
    ENVELOPE_KIND_CHAN = 3,      /* channel control event: roster.h body, scope = channel id */
    ENVELOPE_KIND_CHAN_KEYS = 4, /* a channel epoch key for members: chan.h KEYS, scope = id */
    ENVELOPE_KIND_CHAN_MSG = 5,  /* channel message: chan.h body, scope = its msg scope */
};
#define ENVELOPE_KIND_LAST ENVELOPE_KIND_CHAN_MSG

#define ENVELOPE_SIG_DOMAIN "parley/envelope/v1"

typedef struct {
    uint8_t version;          /* PARLEY_ENVELOPE_VERSION */
    uint8_t kind;             /* ENVELOPE_KIND_* */
    uint8_t author[32];       /* Ed25519 public key */
    uint8_t scope[32];        /* conversation id */
    uint64_t seq;             /* per (author, scope), >= 1 */
    uint64_t ts_ms;           /* author's send time */
    uint64_t expires_ms;      /* 0 = never */
    const uint8_t *body;      /* view: into the decoded buffer */
    size_t body_len;          /* <= PARLEY_BODY_MAX */
    const uint8_t *signature; /* view: 64 bytes */
    const uint8_t *bytes;     /* view: whole encoded envelope */
    size_t bytes_len;         /* total length */
} envelope_t;

/*  Encodes and signs an envelope. The header fields and the body come from
 *  env (body/body_len); signature/bytes are ignored. A caller that needs the
 *  94-byte header as AEAD associated data builds it with envelope_header()
 *  first, encrypts with it, then calls envelope_seal() (the body may already
 *  sit in place at out + 94). Refuses what envelope_decode would reject and
 *  an ed_sk that is not the author's (PARLEY_ERR_STATE).
 *  Writes into out (cap >= 94 + body_len + 64), *out_len = total length. */
int envelope_seal(const envelope_t *env, const uint8_t ed_sk[64], uint8_t *out, size_t cap,
                  size_t *out_len) PARLEY_WUR;
/*  Writes the 94-byte header for env with the given body length. */
void envelope_header(const envelope_t *env, size_t body_len,
                     uint8_t out[PARLEY_ENVELOPE_HEADER_LEN]);
/*  Parses buf into env (views into buf). Checks version, kind, lengths and
 *  that nothing trails. Does NOT verify the signature. */
int envelope_decode(const uint8_t *buf, size_t len, envelope_t *env) PARLEY_WUR;
/*  Verifies the author's signature: 0 or PARLEY_ERR_AUTH. */
int envelope_verify(const envelope_t *env) PARLEY_WUR;
/*  Checks times against now_ms: PARLEY_ERR_FUTURE if ts_ms is more than
 *  PARLEY_FUTURE_SKEW_MS ahead, PARLEY_ERR_EXPIRED if expired. */
int envelope_check_time(const envelope_t *env, uint64_t now_ms) PARLEY_WUR;
/*  The author of encoded envelope bytes (a view at offset 2), or NULL when
 *  buf is too short to hold a header. Only for bytes already validated
 *  (stored or just sealed): it checks nothing else. */
const uint8_t *envelope_author(const uint8_t *buf, size_t len);
/*  Its scope, the same way (a view at offset 34). */
const uint8_t *envelope_scope(const uint8_t *buf, size_t len);
/*  Fills env's views (body, signature, bytes) for the bytes that
 *  envelope_seal (or dm_envelope_seal) just wrote from env's own fields, so
 *  a sealer need not decode what it made. PARLEY_ERR_MALFORMED when len
 *  cannot be such an envelope. */
int envelope_sealed_view(envelope_t *env, const uint8_t *buf, size_t len) PARLEY_WUR;
/*  The envelope id: BLAKE2b-256 of env->bytes. */
void envelope_id(const envelope_t *env, uint8_t id[PARLEY_ID_LEN]);
/*  Ingest check of raw bytes without the id: limits -> decode -> verify ->
 *  time. For a caller that hashed the bytes already (to dedupe first). */
int envelope_validate(const uint8_t *buf, size_t len, uint64_t now_ms, envelope_t *env) PARLEY_WUR;
/*  Full ingest check of raw bytes: limits -> decode -> verify -> time.
 *  On success env views buf and id is filled. */
int envelope_check(const uint8_t *buf, size_t len, uint64_t now_ms, envelope_t *env,
                   uint8_t id[PARLEY_ID_LEN]) PARLEY_WUR;

void envelope_test(bool verbose);

#endif
