/*  proto/sync_answer.c — the answering engine of reconciliation
 *  (proto/SPEC.md §15; the message format: sync_msg.c).
 *
 *  Owns nothing across calls: sync_answer reads a received block and the
 *  set, writes into the caller's writer and reports through the sink; the
 *  only memory it takes (a sort buffer for id lists) is freed before it
 *  returns. It never changes the set.
 *
 *  Answering (sync_answer), for each range of a received block:
 *    SKIP  nothing.
 *    FP    equal count and fingerprint: done. Else, with m of our items in
 *          the range: m ≤ SYNC_LIST_MAX → our IDS; the peer holds none →
 *          push all of ours; the peer's count ≤ SYNC_LIST_MAX → REQ (send
 *          us your few ids); else split into buckets of equal counts and
 *          send each one's FP (16 buckets, or as many as make each hold
 *          ≤ SYNC_LIST_MAX items when that takes fewer).
 *    IDS   the peer's complete list: push ours that are not in it, want
 *          those of it we lack. Done.
 *    REQ   our IDS (or FP buckets if we hold too many to list).
 *  A reply that would outgrow the writer's budget covers the rest of the
 *  block with one FP range, which the next message continues.
 */
#include "sync_answer.h"

#include <stdlib.h>
#include <string.h>

#include "frame_type.h"
#include "selftest.h"

#define S_SORT_MAX 4096u /* ranges up to this many items are compared in memory */
/*  Bytes of one range at most (sync_msg.c): bound (varint 10, len 1, prefix
 *  32), mode, count varint, fingerprint. A reply to one range is a SKIP plus
 *  a split, or plus a list; one more FP range is kept in reserve to close a
 *  block. */
#define S_RANGE_MAX (44u + 1u + 10u + SYNC_FP_LEN)
#define S_BIG_SPLIT ((size_t)SYNC_LIST_MAX * SYNC_FANOUT * SYNC_FANOUT * SYNC_FANOUT)
/*  A block header and one fallback range: kept free for every block. */
#define S_BLOCK_MIN (32u + 1u + 2u + 2u * S_RANGE_MAX)

static int
s_prefix_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SYNC_PREFIX_LEN);
}

void
sync_open_block(sync_writer_t *w, sync_set_t *set, const uint8_t scope[32], const uint8_t *hints,
                size_t n_hints)
{
    sync_bound_t lower, upper;
    sync_bound_min(&lower);
    sync_bound_inf(&upper);
    sync_writer_begin(w, scope, hints, n_hints);
    size_t n = sync_set_count(set);
    if (n <= SYNC_LIST_MAX) {
        sync_writer_ids(w, &lower, &upper, set, 0, n);
    } else {
        sync_acc_t acc;
        sync_set_acc(set, 0, n, &acc);
        sync_writer_fp(w, &lower, &upper, &acc);
    }
    sync_writer_end(w);
}

//  Splits [lower, upper) — our items [lo, hi), more than SYNC_LIST_MAX —
//  into buckets of equal counts, each sent as FP. theirs is the peer's count
//  there when known (else hi − lo). In the range that runs to infinity, d
//  more items here than there are most likely our d newest (a node that
//  was away): they get a bucket of their own, so the rest can match at once.
static void
s_split(sync_writer_t *w, sync_set_t *set, const sync_bound_t *lower, const sync_bound_t *upper,
        size_t lo, size_t hi, uint64_t theirs)
{
    size_t tail = 0;
    if (sync_bound_is_inf(upper) && theirs < hi - lo && hi - lo - theirs > SYNC_LIST_MAX) {
        tail = (size_t)(hi - lo - theirs);
    }
    if (tail > 0) {
        sync_bound_t mid;
        sync_bound_between(sync_set_at(set, hi - tail - 1), sync_set_at(set, hi - tail), &mid);
        s_split(w, set, lower, &mid, lo, hi - tail, hi - tail - lo);
        sync_acc_t acc;
        sync_set_acc(set, hi - tail, hi, &acc);
        sync_writer_fp(w, &mid, upper, &acc);
        return;
    }
    size_t m = hi - lo;
    if (m <= SYNC_LIST_MAX) {
        sync_writer_ids(w, lower, upper, set, lo, hi);
        return;
    }
    size_t k = SYNC_FANOUT;
    if (m <= (size_t)SYNC_LIST_MAX * SYNC_FANOUT) {
        k = (m + SYNC_LIST_MAX - 1) / SYNC_LIST_MAX; // next step lists every bucket
    } else if (m > S_BIG_SPLIT) {
        //  A large range takes four levels at 16: 256 buckets at the top level
        //  save one round trip for some KB (1M items: 4 levels → 3).
        k = SYNC_FANOUT * SYNC_FANOUT;
    }
    sync_bound_t from = *lower;
    sync_acc_t below; // everything before the bucket: each boundary is summed once
    if (sync_set_acc_upto(set, lo, &below) != PARLEY_OK) {
        return; // out of memory: the range goes unanswered (a SKIP), the next round repairs it
    }
    for (size_t b = 0; b < k; b++) {
        size_t i1 = lo + m * (b + 1) / k;
        sync_bound_t to;
        if (b + 1 == k) {
            to = *upper;
        } else {
            sync_bound_between(sync_set_at(set, i1 - 1), sync_set_at(set, i1), &to);
        }
        sync_acc_t upto, acc;
        if (sync_set_acc_upto(set, i1, &upto) != PARLEY_OK) {
            return; // as above: the buckets not written become a SKIP
        }
        acc = upto;
        sync_acc_sub(&acc, &below);
        sync_writer_fp(w, &from, &to, &acc);
        from = to;
        below = upto;
    }
}

//  The peer listed all its ids in a range where we hold [lo, hi). *scratch
//  (S_SORT_MAX prefixes) is allocated on first need and freed by the caller.
static void
s_on_ids(sync_set_t *set, size_t lo, size_t hi, const sync_range_t *rg, const sync_sink_t *sink,
         uint8_t **scratch_p)
{
    size_t m = hi - lo;
    if (m <= S_SORT_MAX && !*scratch_p) {
        *scratch_p = malloc((size_t)S_SORT_MAX * SYNC_PREFIX_LEN);
    }
    uint8_t *scratch = *scratch_p;
    if (m > S_SORT_MAX || !scratch) {
        //  Too many of ours to sort here (or no memory to): push the range less their list, and
        //  ask the sink about each of theirs.
        sink->push(sink->arg, set, lo, hi, rg->ids, rg->n_ids);
        for (size_t k = 0; k < rg->n_ids; k++) {
            if (!sink->has(sink->arg, rg->ids + k * SYNC_PREFIX_LEN)) {
                sink->want(sink->arg, rg->ids + k * SYNC_PREFIX_LEN);
            }
        }
        return;
    }
    for (size_t i = 0; i < m; i++) {
        memcpy(scratch + i * SYNC_PREFIX_LEN, sync_set_at(set, lo + i)->id, SYNC_PREFIX_LEN);
    }
    qsort(scratch, m, SYNC_PREFIX_LEN, s_prefix_cmp);
    //  Merge two ascending lists: ours only → push, theirs only → want.
    size_t a = 0, b = 0, ours_only = 0;
    while (a < m || b < rg->n_ids) {
        int c = a == m           ? 1
                : b == rg->n_ids ? -1
                                 : memcmp(scratch + a * SYNC_PREFIX_LEN,
                                          rg->ids + b * SYNC_PREFIX_LEN, SYNC_PREFIX_LEN);
        if (c < 0) {
            ours_only++;
            a++;
        } else if (c > 0) {
            sink->want(sink->arg, rg->ids + b * SYNC_PREFIX_LEN);
            b++;
        } else {
            a++;
            b++;
        }
    }
    if (ours_only > 0) {
        sink->push(sink->arg, set, lo, hi, rg->ids, rg->n_ids);
    }
}

size_t
sync_answer(sync_writer_t *w, sync_set_t *set, const sync_block_t *blk, const sync_sink_t *sink)
{
    if (!sync_writer_room(w, S_BLOCK_MIN)) {
        return 0; // no room for this block at all: the next round answers it
    }
    uint8_t *scratch = NULL; // only for comparing id lists
    sync_writer_begin(w, blk->scope, NULL, 0);
    sync_range_reader_t rr;
    sync_ranges_open(&rr, blk);
    sync_bound_t lower;
    sync_bound_min(&lower);
    size_t lo = 0;
    sync_range_t rg;
    while (sync_ranges_next(&rr, &rg)) {
        size_t hi = sync_set_lower(set, &rg.upper);
        size_t m = hi - lo;
        size_t k = m > S_BIG_SPLIT ? SYNC_FANOUT * SYNC_FANOUT : SYNC_FANOUT;
        size_t need = (k + 3) * S_RANGE_MAX + SYNC_LIST_MAX * SYNC_PREFIX_LEN;
        if (rg.mode == SYNC_REQ && m <= SYNC_IDS_MAX) {
            need = 3 * S_RANGE_MAX + m * SYNC_PREFIX_LEN;
        }
        //  Out of bytes, or of ranges (one range can become a SKIP and a
        //  256-way split): close the block with one FP over the rest.
        if (!sync_writer_room(w, need + S_BLOCK_MIN) || w->n_ranges + k + 5 > SYNC_RANGES_MAX) {
            //  Out of room: one FP over everything left, continued next time.
            sync_bound_t inf;
            sync_bound_inf(&inf);
            sync_acc_t acc;
            sync_set_acc(set, lo, sync_set_count(set), &acc);
            sync_writer_fp(w, &lower, &inf, &acc);
            break;
        }
        switch (rg.mode) {
        case SYNC_FP: {
            sync_acc_t acc;
            uint8_t fp[SYNC_FP_LEN];
            sync_set_acc(set, lo, hi, &acc);
            sync_acc_fp(&acc, fp);
            if (acc.count == rg.count && sodium_memcmp(fp, rg.fp, SYNC_FP_LEN) == 0) {
                break;
            }
            if (m <= SYNC_LIST_MAX) {
                sync_writer_ids(w, &lower, &rg.upper, set, lo, hi);
            } else if (rg.count == 0) {
                sink->push(sink->arg, set, lo, hi, NULL, 0);
            } else if (rg.count <= SYNC_LIST_MAX) {
                sync_writer_req(w, &lower, &rg.upper);
            } else {
                s_split(w, set, &lower, &rg.upper, lo, hi, rg.count);
            }
            break;
        }
        case SYNC_IDS: s_on_ids(set, lo, hi, &rg, sink, &scratch); break;
        case SYNC_REQ:
            if (m <= SYNC_IDS_MAX) {
                sync_writer_ids(w, &lower, &rg.upper, set, lo, hi);
            } else {
                s_split(w, set, &lower, &rg.upper, lo, hi, hi - lo);
            }
            break;
        default: break; // SKIP
        }
        lower = rg.upper;
        lo = hi;
    }
    size_t open = w->n_open;
    sync_writer_end(w);
    free(scratch);
    return open;
}

/* --------------------------------------------------------------- selftest */

typedef struct {
    sync_set_t *set;    /* this side */
    sync_set_t *other;  /* the peer's set: pushes and wants land there / come from there */
    size_t pushed;      /* items copied to the peer */
    size_t wanted;      /* prefixes asked for */
    sync_item_t *queue; /* items to insert into other after the round */
    size_t n_queue, cap_queue;
    uint8_t (*wants)[SYNC_PREFIX_LEN];
    size_t n_wants, cap_wants;
} s_side_t;

static void
s_t_queue(s_side_t *s, const sync_item_t *it)
{
    if (s->n_queue == s->cap_queue) {
        s->cap_queue = s->cap_queue ? 2 * s->cap_queue : 64;
        s->queue = realloc(s->queue, s->cap_queue * sizeof *s->queue);
        CHECK(s->queue);
    }
    s->queue[s->n_queue++] = *it;
}

static void
s_t_push(void *arg, sync_set_t *set, size_t lo, size_t hi, const uint8_t *excl, size_t n_excl)
{
    s_side_t *s = arg;
    for (size_t i = lo; i < hi; i++) {
        const sync_item_t *it = sync_set_at(set, i);
        if (n_excl && bsearch(it->id, excl, n_excl, SYNC_PREFIX_LEN, s_prefix_cmp)) {
            continue;
        }
        s_t_queue(s, it);
        s->pushed++;
    }
}

static void
s_t_want(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    s_side_t *s = arg;
    if (s->n_wants == s->cap_wants) {
        s->cap_wants = s->cap_wants ? 2 * s->cap_wants : 64;
        s->wants = realloc(s->wants, s->cap_wants * sizeof *s->wants);
        CHECK(s->wants);
    }
    memcpy(s->wants[s->n_wants++], prefix, SYNC_PREFIX_LEN);
    s->wanted++;
}

static bool
s_t_has(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    s_side_t *s = arg;
    for (size_t i = 0; i < sync_set_count(s->set); i++) {
        if (memcmp(sync_set_at(s->set, i)->id, prefix, SYNC_PREFIX_LEN) == 0) {
            return true;
        }
    }
    return false;
}

//  Answers every block of msg from side s into out; returns the reply length.
static size_t
s_t_answer(s_side_t *s, const uint8_t *msg, size_t len, uint8_t *out, size_t cap)
{
    CHECK(len >= 2 && msg[1] == FRAME_RECONCILE);
    CHECK(sync_msg_check(msg + 2, len - 2) == PARLEY_OK);
    sync_msg_reader_t rd;
    sync_msg_open(&rd, msg + 2, len - 2);
    sync_writer_t w;
    sync_writer_init(&w, out, cap, 0, NULL);
    sync_sink_t sink = { s_t_push, s_t_want, s_t_has, s };
    sync_block_t blk;
    while (sync_msg_next(&rd, &blk)) {
        (void)sync_answer(&w, s->set, &blk, &sink);
    }
    size_t n = sync_writer_finish(&w);
    CHECK(n > 0);
    return n;
}

//  Runs a whole round from a to b; returns messages exchanged, adds bytes.
static size_t
s_t_round(s_side_t *a, s_side_t *b, size_t budget, size_t *bytes)
{
    static uint8_t m1[PARLEY_FRAME_MAX], m2[PARLEY_FRAME_MAX];
    const uint8_t scope[32] = { 7 };
    sync_writer_t w;
    sync_writer_init(&w, m1, budget, SYNC_F_OPEN, NULL);
    sync_open_block(&w, a->set, scope, NULL, 0);
    size_t len = sync_writer_finish(&w);
    size_t msgs = 1;
    *bytes += len;
    s_side_t *turn[2] = { b, a };
    uint8_t *bufs[2] = { m2, m1 };
    const uint8_t *cur = m1;
    for (size_t k = 0;; k++) {
        s_side_t *s = turn[k % 2];
        size_t out = s_t_answer(s, cur, len, bufs[k % 2], budget);
        *bytes += out;
        msgs++;
        cur = bufs[k % 2];
        len = out;
        if (cur[3] == 0 && cur[4] == 0) { // n_blocks = 0: done
            break;
        }
        CHECK(msgs < 2000);
    }
    //  Deliver pushes and answer wants.
    s_side_t *sides[2] = { a, b };
    for (size_t i = 0; i < 2; i++) {
        s_side_t *s = sides[i];
        for (size_t k = 0; k < s->n_queue; k++) {
            int rc = sync_set_insert(s->other, s->queue[k].ts, s->queue[k].id);
            CHECK(rc == PARLEY_OK || rc == PARLEY_ERR_DUPLICATE);
        }
        s->n_queue = 0;
    }
    for (size_t i = 0; i < 2; i++) {
        s_side_t *s = sides[i];
        for (size_t k = 0; k < s->n_wants; k++) {
            bool got = false;
            for (size_t j = 0; j < sync_set_count(s->other) && !got; j++) {
                const sync_item_t *it = sync_set_at(s->other, j);
                if (memcmp(it->id, s->wants[k], SYNC_PREFIX_LEN) == 0) {
                    sync_item_t copy = *it;
                    CHECK(sync_set_insert(s->set, copy.ts, copy.id) == PARLEY_OK);
                    got = true;
                }
            }
            CHECK(got);
        }
        s->n_wants = 0;
    }
    return msgs;
}

static bool
s_t_equal(sync_set_t *a, sync_set_t *b)
{
    if (sync_set_count(a) != sync_set_count(b)) {
        return false;
    }
    for (size_t i = 0; i < sync_set_count(a); i++) {
        if (sync_item_cmp(sync_set_at(a, i), sync_set_at(b, i)) != 0) {
            return false;
        }
    }
    return true;
}

static void
s_t_item(uint64_t ts_range, sync_item_t *it)
{
    it->ts = 1000 + (ts_range ? randombytes_uniform((uint32_t)ts_range) : 0);
    randombytes_buf(it->id, 32);
}

//  n shared items, na only in a, nb only in b; ts drawn from ts_range
//  values (small ranges force many equal timestamps).
static void
s_t_case(size_t n, size_t na, size_t nb, uint64_t ts_range, size_t budget)
{
    sync_set_t *a = sync_set_new(), *b = sync_set_new();
    CHECK(a && b);
    if (getenv("SYNC_DEBUG")) {
        fprintf(stderr, "case %zu %zu %zu %llu %zu\n", n, na, nb, (unsigned long long)ts_range,
                budget);
    }
    for (size_t i = 0; i < n + na + nb; i++) {
        sync_item_t it;
        s_t_item(ts_range, &it);
        if (i < n + na) {
            CHECK(sync_set_insert(a, it.ts, it.id) == PARLEY_OK);
        }
        if (i < n || i >= n + na) {
            CHECK(sync_set_insert(b, it.ts, it.id) == PARLEY_OK);
        }
    }
    s_side_t sa = { .set = a, .other = b }, sb = { .set = b, .other = a };
    size_t bytes = 0, rounds = 0, msgs = 0;
    do {
        msgs = s_t_round(&sa, &sb, budget, &bytes);
        CHECK(++rounds < 50);
    } while (msgs > 2 || !s_t_equal(a, b));
    CHECK(s_t_equal(a, b));
    CHECK(sa.pushed + sb.wanted >= nb || sb.pushed + sa.wanted >= na);
    if (na == 0 && nb == 0) {
        CHECK(rounds == 1 && msgs == 2); // in sync: one round trip
    }
    free(sa.queue);
    free(sb.queue);
    free(sa.wants);
    free(sb.wants);
    sync_set_destroy(&a);
    sync_set_destroy(&b);
}

void
sync_answer_test(bool verbose)
{
    if (verbose) {
        printf(" * sync_answer: reconciliation to equality\n");
    }
    const size_t big = PARLEY_FRAME_MAX;
    s_t_case(0, 0, 0, 100, big);
    s_t_case(0, 1, 0, 100, big);
    s_t_case(0, 0, 1, 100, big);
    s_t_case(10, 0, 0, 100, big);
    s_t_case(10, 5, 5, 100, big);
    s_t_case(2000, 0, 0, 1000000, big);
    s_t_case(2000, 300, 0, 1000000, big);
    s_t_case(2000, 0, 300, 1000000, big);
    s_t_case(2000, 100, 100, 3, big);   // many equal timestamps
    s_t_case(20000, 37, 41, 5000, big); // scattered both ways
    s_t_case(0, 3000, 0, 100000, big);  // one side empty
    s_t_case(0, 0, 3000, 100000, big);
    s_t_case(20000, 60, 60, 1000000, 8192); // small frames: continued over messages
}
