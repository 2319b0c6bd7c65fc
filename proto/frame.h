/*  proto/frame.h — the frames two nodes exchange over ZeroMQ.
 *
 *  One frame = one ZeroMQ message part. Integers big-endian.
 *
 *    0 1 protocol version (PARLEY_PROTO_VERSION)
 *    1 1 type (FRAME_*)
 *    2   payload:
 *
 *    HELLO     ed_pk 32 | caps u32 | tag_len u8 (<= 64) | tag
 *              | n u8 (<= 8) | n × (len u8 (>= 1) | endpoint bytes)
 *    PREKEY    a signed prekey bundle, DM_PREKEY_BUNDLE_LEN bytes (dm.h)
 *    ENVELOPES count u16 (1..64) | count × (len u32 (<= 65536) | envelope)
 *    ACK       count u16 (1..1024) | count × 32-byte envelope id
 *              ("stored durably", sent after commit; not a receipt)
 *    PING/PONG nonce u64
 *    BYE       reason u8
 *    PEERS     count u8 (1..16) | count × (len u16 (1..ADDR_RECORD_MAX) | signed
 *              address record, proto/addr.h — verified by the node, not here)
 *    RECONCILE flags u8 | [digest 16] | n_blocks u16 | blocks — checked whole by
 *              sync_msg_check (proto/sync.h)
 *    WANT      count u16 (1..4096) | count × 16-byte envelope id prefix
 *    JOIN      step u8, then by step (SPEC §19.1):
 *                1 ASK    network_id 32
 *                2 HEADS  n u8 (1..16) | n × 32-byte event ids, strictly ascending
 *                3 DONE   status u8 (0 added, 1 refused) | len u8 (<= 200) | reason
 *                         (UTF-8 without controls; empty when added)
 *    NETKEY    network_id 32 | epoch u32 | secret 32 (not all zero) | author 32
 *              | sig 64 — sig is checked by the node (netkey_verify), not here
 *
 *  HELLO's ed_pk must map to the CURVE key the transport authenticated;
 *  node/ checks that. Every other frame from a link before HELLO is dropped.
 *  Nothing may trail a frame's payload. A decoded frame views the buffer.
 */
#ifndef PARLEY_PROTO_FRAME_H
#define PARLEY_PROTO_FRAME_H

#include "errors.h"
#include "frame_type.h"
#include "limits.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t type; /* FRAME_* */
    /* HELLO */
    const uint8_t *ed_pk; /* 32 bytes */
    uint32_t caps;        /* capability bits */
    const char *tag;      /* not NUL-terminated */
    size_t tag_len;
    size_t n_endpoints;
    const char *endpoints[PARLEY_HELLO_ENDPOINTS_MAX]; /* not NUL-terminated */
    size_t endpoint_lens[PARLEY_HELLO_ENDPOINTS_MAX];
    /* PREKEY */
    const uint8_t *bundle; /* DM_PREKEY_BUNDLE_LEN */
    size_t bundle_len;
    /* ENVELOPES */
    size_t n_envelopes;
    const uint8_t *envelopes[PARLEY_BATCH_MAX];
    size_t envelope_lens[PARLEY_BATCH_MAX];
    /* ACK */
    const uint8_t *ids; /* n_ids × 32 */
    size_t n_ids;
    /* PING / PONG */
    uint64_t nonce;
    /* BYE */
    uint8_t reason;
    /* PEERS */
    size_t n_records;
    const uint8_t *records[PARLEY_PEERS_MAX]; /* views: signed address records */
    size_t record_lens[PARLEY_PEERS_MAX];
    /* RECONCILE: the payload after the type byte (read with sync_msg_open) */
    const uint8_t *sync;
    size_t sync_len;
    /* WANT */
    const uint8_t *prefixes; /* n_prefixes × SYNC_PREFIX_LEN */
    size_t n_prefixes;
    /* JOIN */
    uint8_t step;              /* FRAME_JOIN_ASK, _HEADS or _DONE */
    const uint8_t *network_id; /* 32 bytes: JOIN ASK and NETKEY */
    const uint8_t *heads;      /* HEADS: n_heads × 32, strictly ascending */
    size_t n_heads;
    uint8_t status;  /* DONE: FRAME_JOIN_ADDED or _REFUSED */
    const char *why; /* DONE: reason, UTF-8 without controls, not NUL-terminated */
    size_t why_len;  /* 0 when added */
    /* NETKEY (secret views the buffer: the caller wipes the buffer) */
    uint32_t epoch;
    const uint8_t *secret; /* 32 bytes, never all zero */
    const uint8_t *author; /* 32 bytes: the Ed25519 key that signed it */
    const uint8_t *sig;    /* 64 bytes: netkey_verify() checks it */
} frame_t;

/*  Decodes one frame; views into buf. */
int frame_decode(const uint8_t *buf, size_t len, frame_t *out) PARLEY_WUR;

/*  Encoders write into out (cap bytes) and set *out_len. */
int frame_encode_hello(const uint8_t ed_pk[32], uint32_t caps, const char *tag,
                       const char *const *endpoints, size_t n_endpoints, uint8_t *out, size_t cap,
                       size_t *out_len) PARLEY_WUR;
int frame_encode_prekey(const uint8_t *bundle, size_t bundle_len, uint8_t *out, size_t cap,
                        size_t *out_len) PARLEY_WUR;
/*  ENVELOPES is built incrementally: begin, add up to PARLEY_BATCH_MAX
 *  (PARLEY_ERR_LIMIT when full or out of room: send and begin again), finish. */
typedef struct {
    uint8_t *buf; /* caller's buffer */
    size_t cap;   /* its size */
    size_t len;   /* bytes written so far */
    size_t count; /* envelopes added */
} frame_batch_t;
void frame_batch_begin(frame_batch_t *b, uint8_t *buf, size_t cap);
int frame_batch_add(frame_batch_t *b, const uint8_t *env, size_t env_len) PARLEY_WUR;
/*  Patches the count; returns the frame length (0 if empty). */
size_t frame_batch_finish(frame_batch_t *b);
int frame_encode_ack(const uint8_t *ids, size_t n_ids, uint8_t *out, size_t cap,
                     size_t *out_len) PARLEY_WUR;
int frame_encode_ping(uint8_t type, uint64_t nonce, uint8_t *out, size_t cap,
                      size_t *out_len) PARLEY_WUR;
int frame_encode_peers(const uint8_t *const *records, const size_t *lens, size_t n, uint8_t *out,
                       size_t cap, size_t *out_len) PARLEY_WUR;
/*  WANT for n (1..SYNC_WANT_MAX) id prefixes of SYNC_PREFIX_LEN bytes. */
int frame_encode_want(const uint8_t *prefixes, size_t n, uint8_t *out, size_t cap,
                      size_t *out_len) PARLEY_WUR;
int frame_encode_bye(uint8_t reason, uint8_t *out, size_t cap, size_t *out_len) PARLEY_WUR;
/*  JOIN, one encoder per step. heads: n (1..ROSTER_PARENTS_MAX) ids of 32
 *  bytes, strictly ascending. DONE: status FRAME_JOIN_ADDED with no reason
 *  (why_len 0), or FRAME_JOIN_REFUSED with 0..ROSTER_REASON_MAX bytes of
 *  UTF-8 without controls. */
int frame_encode_join_ask(const uint8_t network_id[32], uint8_t *out, size_t cap,
                          size_t *out_len) PARLEY_WUR;
int frame_encode_join_heads(const uint8_t *heads, size_t n, uint8_t *out, size_t cap,
                            size_t *out_len) PARLEY_WUR;
int frame_encode_join_done(uint8_t status, const char *why, size_t why_len, uint8_t *out,
                           size_t cap, size_t *out_len) PARLEY_WUR;
/*  NETKEY: sig from netkey_sign() (proto/netkey.h). out then holds the
 *  secret: the caller wipes it once sent. */
int frame_encode_netkey(const uint8_t network_id[32], uint32_t epoch, const uint8_t secret[32],
                        const uint8_t author[32], const uint8_t sig[64], uint8_t *out, size_t cap,
                        size_t *out_len) PARLEY_WUR;

void frame_test(bool verbose);

#endif
