/*  proto/sync_answer.h — the answering engine of reconciliation: what a
 *  side writes back for each range of a received block (proto/SPEC.md §15).
 *
 *  The engine is stateless: a message holds every range still open, so a
 *  side needs no memory between messages. It compares each received range
 *  with its own set, writes the ranges still to be settled into a
 *  sync_writer_t, and reports what the peer lacks (push) and what we lack
 *  (want) through a sink. It never changes the set.
 *
 *  Pure: libc and libsodium only.
 */
#ifndef PARLEY_PROTO_SYNC_ANSWER_H
#define PARLEY_PROTO_SYNC_ANSWER_H

#include "limits.h"
#include "sync_msg.h"
#include "sync_set.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Both sides follow these: a peer that sends REQ for a range of at most
 *  SYNC_LIST_MAX items expects a list back. */
#define SYNC_LIST_MAX 32u /* a side with at most this many items lists them */
#define SYNC_FANOUT 16u   /* buckets a mismatched range splits into */

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
    void *arg; /* passed to each of the three */
} sync_sink_t;

/*  The opening block for one scope: our items' fingerprint over the whole
 *  key space, or their ids when few. */
void sync_open_block(sync_writer_t *w, sync_set_t *set, const uint8_t scope[32],
                     const uint8_t *hints, size_t n_hints);
/*  Answers one received block against set into w (a block is begun for the
 *  same scope, and ended). Returns the number of ranges left open. */
size_t sync_answer(sync_writer_t *w, sync_set_t *set, const sync_block_t *blk,
                   const sync_sink_t *sink);

void sync_answer_test(bool verbose);

#endif
