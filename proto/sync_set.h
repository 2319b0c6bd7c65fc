/*  proto/sync_set.h — the ordered item set behind reconciliation, and the
 *  fingerprints and digests computed from it (proto/SPEC.md §15).
 *
 *  An item is an envelope's (ts_ms, id), ordered by ts then id bytes. A
 *  bound splits that order; a range is [lower bound, upper bound). The
 *  fingerprint of a range comes from an additive accumulator (count and the
 *  ids summed modulo 2^256), so the value of any range is the difference of
 *  two prefix values.
 *
 *  sync_set_t is an order-statistics structure over items: a sorted
 *  sequence of chunks, each with the count and 256-bit sum of its ids, and
 *  lazily rebuilt prefix sums over the chunks, so the accumulator of any
 *  index range costs O(chunk) plus a subtraction.
 *
 *  Pure: libc and libsodium only.
 */
#ifndef PARLEY_PROTO_SYNC_SET_H
#define PARLEY_PROTO_SYNC_SET_H

#include "errors.h"
#include "limits.h"
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  The ts of the infinite bound; no item may have it. */
#define SYNC_BOUND_INF UINT64_MAX

typedef struct {
    uint64_t ts;    /* ms */
    uint8_t id[32]; /* envelope id */
} sync_item_t;

/*  An upper bound: items below it are those with a smaller ts, or the same
 *  ts and an id below prefix (zero-padded). ts SYNC_BOUND_INF = infinity. */
typedef struct {
    uint64_t ts;        /* ms, or SYNC_BOUND_INF */
    uint8_t len;        /* prefix bytes, 0..32 */
    uint8_t prefix[32]; /* id prefix; bytes from len on are zero */
} sync_bound_t;

/*  Additive accumulator: count and the ids summed as 256-bit little-endian
 *  integers modulo 2^256 — order-independent, and a range's value is the
 *  difference of two prefix values. */
typedef struct {
    uint64_t sum[4]; /* the sum, least significant word first */
    uint64_t count;  /* items added */
} sync_acc_t;

void sync_acc_add(sync_acc_t *acc, const uint8_t id[32]);
/*  acc −= b: what remains of acc without the items b summed. */
void sync_acc_sub(sync_acc_t *acc, const sync_acc_t *b);
/*  fp = BLAKE2b-128(sum as 32 bytes little-endian || count u64 big-endian). */
void sync_acc_fp(const sync_acc_t *acc, uint8_t fp[SYNC_FP_LEN]);

int sync_item_cmp(const sync_item_t *a, const sync_item_t *b);
/*  True when item is below bound. */
bool sync_item_below(const sync_item_t *item, const sync_bound_t *bound);
/*  The lowest bound (ts 0, empty prefix): where every block's first range starts. */
void sync_bound_min(sync_bound_t *b);
void sync_bound_inf(sync_bound_t *b);
bool sync_bound_is_inf(const sync_bound_t *b);
/*  Orders bounds as (ts, prefix zero-padded to 32 bytes). */
int sync_bound_cmp(const sync_bound_t *a, const sync_bound_t *b);
/*  The shortest bound above prev and not above next (prev < next): an
 *  empty prefix when their ts differ, else next's id up to the first byte
 *  in which they differ. */
void sync_bound_between(const sync_item_t *prev, const sync_item_t *next, sync_bound_t *out);

/* ---- the set ---- */

typedef struct _sync_set_t sync_set_t;

/*  An empty set owned by the caller, or NULL when out of memory. */
sync_set_t *sync_set_new(void);
void sync_set_destroy(sync_set_t **self_p);
/*  Inserts; PARLEY_ERR_DUPLICATE if (ts, id) is present; PARLEY_ERR_LIMIT
 *  for ts SYNC_BOUND_INF; NOMEM. Appending in order (a load from the store)
 *  is the fast path. */
int sync_set_insert(sync_set_t *self, uint64_t ts, const uint8_t id[32]) PARLEY_WUR;
/*  Removes; PARLEY_ERR_NOTFOUND if absent. */
int sync_set_remove(sync_set_t *self, uint64_t ts, const uint8_t id[32]) PARLEY_WUR;
size_t sync_set_count(const sync_set_t *self);
/*  Index of the first item not below bound (count if none). */
size_t sync_set_lower(sync_set_t *self, const sync_bound_t *bound);
/*  The item at index i < count, owned by the set (valid until the next
 *  insert or remove); NULL past the end or when out of memory. */
const sync_item_t *sync_set_at(sync_set_t *self, size_t i);
/*  Accumulator of the items with index in [lo, hi) (empty when out of memory). */
void sync_set_acc(sync_set_t *self, size_t lo, size_t hi, sync_acc_t *out);
/*  Accumulator of the items with index in [0, i): one prefix lookup, for
 *  callers that walk consecutive ranges. NOMEM when the index cannot be built. */
int sync_set_acc_upto(sync_set_t *self, size_t i, sync_acc_t *out) PARLEY_WUR;
/*  Fingerprint of the whole set (cached until the next change). */
void sync_set_fp(sync_set_t *self, uint8_t fp[SYNC_FP_LEN]);

/* ---- digest over many scopes ---- */

/*  BLAKE2b-128 of (scope || fp) in ascending scope order, as fed by the
 *  caller: one value for every scope a relay holds. */
typedef struct {
    crypto_generichash_state h; /* running hash */
} sync_digest_t;
void sync_digest_init(sync_digest_t *d);
void sync_digest_add(sync_digest_t *d, const uint8_t scope[32], const uint8_t fp[SYNC_FP_LEN]);
void sync_digest_final(sync_digest_t *d, uint8_t out[SYNC_FP_LEN]);

void sync_set_test(bool verbose);

#endif
