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
 *  This header gathers the three parts:
 *    sync_set.h     items, bounds, accumulators and fingerprints, the
 *                   order-statistics set (sync_set_t), digests
 *    sync_msg.h     the RECONCILE and WANT codec: checker, readers, writer
 *    sync_answer.h  the answering engine (sync_answer) and its sink
 *  The wire limits (SYNC_*_MAX, SYNC_FP_LEN, SYNC_PREFIX_LEN) are in limits.h.
 */
#ifndef PARLEY_PROTO_SYNC_H
#define PARLEY_PROTO_SYNC_H

#include "limits.h"
#include "sync_answer.h"
#include "sync_msg.h"
#include "sync_set.h"

#endif
