/*  proto/sync.h — range-based set reconciliation of envelope logs.
 *
 *  Two nodes that replicate a scope hold sets of envelopes, each item keyed
 *  by (ts_ms, id) and ordered by ts then id bytes. They find the difference
 *  by exchanging RECONCILE frames that split the key space into ranges; for
 *  each range a side sends a fingerprint of its items there, or the list of
 *  its ids there when they are few. Equal fingerprints end a range; unequal
 *  ones are split again. Cost grows with the difference, not the log (the
 *  Negentropy idea; format and rules: proto/SPEC.md §15).
 *
 *  sync_set_t is the order-statistics structure behind the fingerprints: a
 *  sorted sequence of chunks, each with the count and 256-bit sum of its
 *  ids, and lazily rebuilt prefix sums over the chunks, so the fingerprint
 *  of any index range costs O(chunk) plus a subtraction.
 *
 *  The answering engine (sync_answer) is stateless: a message holds every
 *  range still open, so a side needs no memory between messages. It reports
 *  what the peer lacks (push) and what we lack (want) through a sink.
 *
 *  Pure: libc and libsodium only; decoders are strict and fuzzed.
 */
#ifndef PARLEY_PROTO_SYNC_H
#define PARLEY_PROTO_SYNC_H

#include "bytes.h"
#include "errors.h"
#include "limits.h"
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Wire limits (SYNC_*_MAX, SYNC_FP_LEN, SYNC_PREFIX_LEN): limits.h. */
#define SYNC_LIST_MAX 32u /* a side with at most this many items lists them */
#define SYNC_FANOUT 16u   /* buckets a mismatched range splits into */
#define SYNC_BOUND_INF UINT64_MAX

/*  Flags of a RECONCILE message. */
#define SYNC_F_OPEN 0x01u   /* first message of a round: lists every scope the sender offers */
#define SYNC_F_DIGEST 0x02u /* OPEN with no blocks, one digest over all scopes (relay to relay) */

enum { SYNC_SKIP = 0, SYNC_FP = 1, SYNC_IDS = 2, SYNC_REQ = 3 };

typedef struct {
    uint64_t ts;    /* ms */
    uint8_t id[32]; /* envelope id */
} sync_item_t;

/*  An upper bound: items below it are those with a smaller ts, or the same
 *  ts and an id below prefix (zero-padded). ts SYNC_BOUND_INF = infinity. */
typedef struct {
    uint64_t ts;
    uint8_t len; /* prefix bytes, 0..32 */
    uint8_t prefix[32];
} sync_bound_t;

/*  Additive accumulator: count and the ids summed as 256-bit little-endian
 *  integers modulo 2^256 — order-independent, and a range's value is the
 *  difference of two prefix values. */
typedef struct {
    uint64_t sum[4];
    uint64_t count;
} sync_acc_t;

void sync_acc_add(sync_acc_t *acc, const uint8_t id[32]);
/*  fp = BLAKE2b-128(sum as 32 bytes little-endian || count u64 big-endian). */
void sync_acc_fp(const sync_acc_t *acc, uint8_t fp[SYNC_FP_LEN]);

int sync_item_cmp(const sync_item_t *a, const sync_item_t *b);
/*  True when item is below bound. */
bool sync_item_below(const sync_item_t *item, const sync_bound_t *bound);
void sync_bound_inf(sync_bound_t *b);
bool sync_bound_is_inf(const sync_bound_t *b);
/*  Orders bounds as (ts, prefix zero-padded to 32 bytes). */
int sync_bound_cmp(const sync_bound_t *a, const sync_bound_t *b);

/* ---- the set ---- */

typedef struct _sync_set_t sync_set_t;

/*  An empty set, or NULL when out of memory. */
sync_set_t *sync_set_new(void);
void sync_set_destroy(sync_set_t **self_p);
/*  Inserts; PARLEY_ERR_DUPLICATE if (ts, id) is present; NOMEM. Appending
 *  in order (a load from the store) is the fast path. */
int sync_set_insert(sync_set_t *self, uint64_t ts, const uint8_t id[32]) PARLEY_WUR;
/*  Removes; PARLEY_ERR_NOTFOUND if absent. */
int sync_set_remove(sync_set_t *self, uint64_t ts, const uint8_t id[32]) PARLEY_WUR;
size_t sync_set_count(const sync_set_t *self);
/*  Index of the first item not below bound (count if none). */
size_t sync_set_lower(sync_set_t *self, const sync_bound_t *bound);
/*  The item at index i < count (valid until the next insert or remove). */
const sync_item_t *sync_set_at(sync_set_t *self, size_t i);
/*  Accumulator of the items with index in [lo, hi). */
void sync_set_acc(sync_set_t *self, size_t lo, size_t hi, sync_acc_t *out);
/*  Fingerprint of the whole set (cached until the next change). */
void sync_set_fp(sync_set_t *self, uint8_t fp[SYNC_FP_LEN]);

/* ---- messages ---- */

typedef struct {
    sync_bound_t upper; /* the range is [previous upper, upper) */
    int mode;           /* SYNC_* */
    uint64_t count;     /* FP: the sender's item count in the range */
    const uint8_t *fp;  /* FP: SYNC_FP_LEN bytes */
    const uint8_t *ids; /* IDS: n_ids × SYNC_PREFIX_LEN bytes, strictly ascending */
    size_t n_ids;
} sync_range_t;

typedef struct {
    const uint8_t *scope; /* 32 bytes */
    size_t n_hints;
    const uint8_t *hints; /* n_hints × 32: authors seen in the scope */
    size_t n_ranges;
    const uint8_t *ranges; /* encoded ranges (checked) */
    size_t ranges_len;
} sync_block_t;

/*  Checks a whole RECONCILE payload (after the frame's version and type):
 *  flags u8 | [digest 16 when DIGEST] | n_blocks u16 | blocks. Every count
 *  within the limits, bounds strictly increasing and ending at infinity,
 *  id lists ascending, nothing trailing. */
int sync_msg_check(const uint8_t *buf, size_t len) PARLEY_WUR;

typedef struct {
    bytes_reader_t r;
    uint8_t flags;
    const uint8_t *digest; /* DIGEST: SYNC_FP_LEN bytes, else NULL */
    size_t n_blocks;
    size_t next;
} sync_msg_reader_t;

/*  Opens a payload that sync_msg_check accepted. */
void sync_msg_open(sync_msg_reader_t *rd, const uint8_t *buf, size_t len);
bool sync_msg_next(sync_msg_reader_t *rd, sync_block_t *out);

typedef struct {
    bytes_reader_t r;
    size_t left;
    uint64_t prev_ts;
} sync_range_reader_t;

void sync_ranges_open(sync_range_reader_t *rd, const sync_block_t *blk);
bool sync_ranges_next(sync_range_reader_t *rd, sync_range_t *out);

/*  Builds a RECONCILE frame (frame header included) into a caller buffer.
 *  A block is begun, ranges are added in ascending order, and ended; a
 *  block with nothing but SKIP is taken back out. */
typedef struct {
    bytes_writer_t w;
    uint8_t *start; /* the buffer */
    uint8_t *n_at;  /* where n_blocks goes */
    size_t n_blocks;
    uint8_t *blk_at; /* start of the open block, or NULL */
    uint8_t *nr_at;  /* where its n_ranges goes */
    size_t n_ranges;
    size_t n_open;     /* ranges other than SKIP in the open block */
    uint64_t prev_ts;  /* previous bound's ts in the block */
    sync_bound_t last; /* previous bound in the block (lower of the next range) */
    size_t budget;     /* soft cap of the frame, bytes */
} sync_writer_t;

void sync_writer_init(sync_writer_t *w, uint8_t *buf, size_t cap, uint8_t flags,
                      const uint8_t *digest);
/*  False when the budget is spent (the caller stops adding blocks). */
bool sync_writer_room(const sync_writer_t *w, size_t need);
void sync_writer_begin(sync_writer_t *w, const uint8_t scope[32], const uint8_t *hints,
                       size_t n_hints);
/*  The next range ends at upper. Any gap since the last range becomes SKIP. */
void sync_writer_fp(sync_writer_t *w, const sync_bound_t *lower, const sync_bound_t *upper,
                    const sync_acc_t *acc);
void sync_writer_ids(sync_writer_t *w, const sync_bound_t *lower, const sync_bound_t *upper,
                     sync_set_t *set, size_t lo, size_t hi);
void sync_writer_req(sync_writer_t *w, const sync_bound_t *lower, const sync_bound_t *upper);
void sync_writer_end(sync_writer_t *w);
/*  Blocks written so far (after end). */
size_t sync_writer_blocks(const sync_writer_t *w);
/*  Frame length, or 0 when the writer overflowed its buffer. */
size_t sync_writer_finish(sync_writer_t *w);

/* ---- the engine ---- */

/*  What an answer found. push: the peer lacks our items with index in
 *  [lo, hi) except those whose id prefix is in excl (n_excl sorted
 *  prefixes; views into the message). want: we lack the id with prefix. */
typedef struct {
    void (*push)(void *arg, sync_set_t *set, size_t lo, size_t hi, const uint8_t *excl,
                 size_t n_excl);
    void (*want)(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN]);
    /*  Whether we hold an id with this prefix anywhere (asked only for
     *  ranges too large to compare in memory). */
    bool (*has)(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN]);
    void *arg;
} sync_sink_t;

/*  The opening block for one scope: our items' fingerprint over the whole
 *  key space, or their ids when few. */
void sync_open_block(sync_writer_t *w, sync_set_t *set, const uint8_t scope[32],
                     const uint8_t *hints, size_t n_hints);
/*  Answers one received block against set into w (a block is begun for the
 *  same scope, and ended). Returns the number of ranges left open. */
size_t sync_answer(sync_writer_t *w, sync_set_t *set, const sync_block_t *blk,
                   const sync_sink_t *sink);

/*  Digest over many scopes: BLAKE2b-128 of (scope || fp) in ascending
 *  scope order, as fed by the caller. */
typedef struct {
    crypto_generichash_state h;
} sync_digest_t;
void sync_digest_init(sync_digest_t *d);
void sync_digest_add(sync_digest_t *d, const uint8_t scope[32], const uint8_t fp[SYNC_FP_LEN]);
void sync_digest_final(sync_digest_t *d, uint8_t out[SYNC_FP_LEN]);

/* ---- WANT frames: n u16 (1..SYNC_WANT_MAX) | n × prefix ---- */
int sync_want_check(const uint8_t *buf, size_t len, size_t *n) PARLEY_WUR;

void sync_test(bool verbose);

#endif
