/*  tests/fuzz/fuzz_sync.c — the RECONCILE and WANT decoders and the
 *  answering engine (proto/sync.h) on arbitrary bytes.
 *
 *  The input is a whole frame, as in fuzz_frame.c: version, type, payload.
 *  frame_decode sees it as given; sync_msg_check and sync_want_check see the
 *  payload (the bytes after the first two) whatever the type byte says, so
 *  every input reaches both sync decoders, and when the header is RECONCILE
 *  or WANT of our version the three must agree.
 *
 *  A payload that sync_msg_check accepts is then walked with the readers
 *  (every block, every range) against the properties the check promises,
 *  and each of its blocks is answered by sync_answer against two fixed sets:
 *  50 items (one chunk of the set) and 5000 (many chunks, and more than the
 *  engine compares in memory, so the sink's `has` path runs), each with the
 *  whole frame as budget and with a small one (the continuation path).
 *  Whatever the engine writes in answer to a checked message must itself
 *  pass sync_msg_check: a peer would drop it otherwise.
 *
 *  The seed corpus (tests/fuzz/corpus/sync) was written with sync_writer_*
 *  and frame_encode_want over subsets and supersets of these items.
 */
#include "fuzz_common.h"

#include "../../proto/frame.h"
#include "../../proto/limits.h"
#include "../../proto/sync.h"

#define S_SMALL 50u          /* items in the small answering set */
#define S_LARGE 5000u        /* in the large one (its first 50 are the small set) */
#define S_SMALL_BUDGET 2048u /* room for about one range's answer, then a continuation */

/*  Large enough for any frame; static so the target stays stack-light. */
static uint8_t s_out[PARLEY_FRAME_MAX];
static frame_t s_frame;
static sync_set_t *s_sets[2];

/*  Item i: four per millisecond from ts 1000, so that bounds between items
 *  of one millisecond need id prefixes; id = BLAKE2b-256("parley fuzz_sync"
 *  || i as u16 big-endian). Built once; sync_answer never changes a set. */
static void
s_sets_init(void)
{
    if (s_sets[0]) {
        return;
    }
    const size_t sizes[2] = { S_SMALL, S_LARGE };
    for (size_t k = 0; k < 2; k++) {
        s_sets[k] = sync_set_new();
        FUZZ_CHECK(s_sets[k]);
        for (size_t i = 0; i < sizes[k]; i++) {
            uint8_t in[18] = "parley fuzz_sync";
            uint8_t id[32];
            in[16] = (uint8_t)(i >> 8);
            in[17] = (uint8_t)i;
            crypto_generichash(id, sizeof id, in, sizeof in, NULL, 0);
            FUZZ_CHECK(sync_set_insert(s_sets[k], 1000 + i / 4, id) == PARLEY_OK);
        }
    }
}

static void
s_push(void *arg, sync_set_t *set, size_t lo, size_t hi, const uint8_t *excl, size_t n_excl)
{
    (void)arg;
    FUZZ_CHECK(set == s_sets[0] || set == s_sets[1]);
    FUZZ_CHECK(lo < hi && hi <= sync_set_count(set));
    FUZZ_CHECK(n_excl <= SYNC_IDS_MAX && (n_excl == 0 || excl));
}

static void
s_want(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    (void)arg;
    FUZZ_CHECK(prefix);
}

static bool
s_has(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    (void)arg;
    (void)prefix;
    return false;
}

static bool
s_inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t len)
{
    return p >= buf && n <= len && (size_t)(p - buf) <= len - n;
}

/*  Walks one checked block: what sync_msg_check promised must hold. */
static void
s_walk_block(const sync_block_t *blk, const uint8_t *buf, size_t len)
{
    FUZZ_CHECK(s_inside(blk->scope, 32, buf, len));
    FUZZ_CHECK(blk->n_hints <= SYNC_HINTS_MAX);
    FUZZ_CHECK(blk->n_hints == 0 || s_inside(blk->hints, blk->n_hints * 32, buf, len));
    FUZZ_CHECK(blk->n_ranges >= 1 && blk->n_ranges <= SYNC_RANGES_MAX);
    FUZZ_CHECK(s_inside(blk->ranges, blk->ranges_len, buf, len));
    sync_range_reader_t rr;
    sync_ranges_open(&rr, blk);
    sync_range_t rg;
    sync_bound_t prev;
    memset(&prev, 0, sizeof prev);
    size_t n = 0;
    while (sync_ranges_next(&rr, &rg)) {
        n++;
        bool last = n == blk->n_ranges;
        FUZZ_CHECK(sync_bound_is_inf(&rg.upper) == last);
        FUZZ_CHECK(last || sync_bound_cmp(&prev, &rg.upper) < 0);
        FUZZ_CHECK(rg.upper.len <= 32);
        switch (rg.mode) {
        case SYNC_SKIP:
        case SYNC_REQ: break;
        case SYNC_FP: FUZZ_CHECK(s_inside(rg.fp, SYNC_FP_LEN, buf, len)); break;
        case SYNC_IDS:
            FUZZ_CHECK(rg.n_ids <= SYNC_IDS_MAX);
            FUZZ_CHECK(rg.n_ids == 0 || s_inside(rg.ids, rg.n_ids * SYNC_PREFIX_LEN, buf, len));
            for (size_t k = 1; k < rg.n_ids; k++) {
                FUZZ_CHECK(memcmp(rg.ids + (k - 1) * SYNC_PREFIX_LEN, rg.ids + k * SYNC_PREFIX_LEN,
                                  SYNC_PREFIX_LEN)
                           < 0);
            }
            break;
        default: FUZZ_CHECK(!"sync_msg_check accepted an unknown mode");
        }
        prev = rg.upper;
    }
    FUZZ_CHECK(n == blk->n_ranges);
    FUZZ_CHECK(bytes_remaining(&rr.r) == 0); // the block's ranges end where it says
}

/*  Walks a checked RECONCILE payload; returns its block count. */
static size_t
s_walk(const uint8_t *buf, size_t len)
{
    sync_msg_reader_t rd;
    sync_msg_open(&rd, buf, len);
    FUZZ_CHECK((rd.flags & ~(SYNC_F_OPEN | SYNC_F_DIGEST)) == 0);
    FUZZ_CHECK((rd.digest != NULL) == ((rd.flags & SYNC_F_DIGEST) != 0));
    FUZZ_CHECK(!rd.digest || (rd.n_blocks == 0 && (rd.flags & SYNC_F_OPEN)));
    FUZZ_CHECK(rd.n_blocks <= SYNC_BLOCKS_MAX);
    sync_block_t blk;
    size_t n = 0;
    while (sync_msg_next(&rd, &blk)) {
        s_walk_block(&blk, buf, len);
        n++;
    }
    FUZZ_CHECK(n == rd.n_blocks);
    FUZZ_CHECK(bytes_remaining(&rd.r) == 0);
    return n;
}

/*  Answers every block of a checked payload from set, with a writer of
 *  budget bytes. With the full frame the answer must be written, and
 *  anything written must pass the check a peer applies. With a small budget
 *  the writer may run out (the caller then has nothing to send), so only
 *  the second holds. */
static void
s_answer(const uint8_t *buf, size_t len, sync_set_t *set, size_t budget)
{
    sync_msg_reader_t rd;
    sync_msg_open(&rd, buf, len);
    sync_writer_t w;
    sync_writer_init(&w, s_out, budget, 0, NULL);
    sync_sink_t sink = { s_push, s_want, s_has, NULL };
    sync_block_t blk;
    while (sync_msg_next(&rd, &blk)) {
        (void)sync_answer(&w, set, &blk, &sink);
    }
    size_t out = sync_writer_finish(&w);
    FUZZ_CHECK(budget < PARLEY_FRAME_MAX || out > 0);
    if (out == 0) {
        return;
    }
    FUZZ_CHECK(out >= 5 && out <= budget);
    FUZZ_CHECK(s_out[0] == PARLEY_PROTO_VERSION && s_out[1] == FRAME_RECONCILE);
    FUZZ_CHECK(sync_msg_check(s_out + 2, out - 2) == PARLEY_OK);
    FUZZ_CHECK(s_walk(s_out + 2, out - 2) == sync_writer_blocks(&w));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    s_sets_init();
    int rc = frame_decode(data, size, &s_frame);
    if (size < 2) {
        FUZZ_CHECK(rc < 0);
        return 0;
    }
    const uint8_t *payload = data + 2;
    size_t plen = size - 2;
    int rc_msg = sync_msg_check(payload, plen);
    size_t n_want = 0;
    int rc_want = sync_want_check(payload, plen, &n_want);
    FUZZ_CHECK(rc_msg <= 0 && rc_want <= 0);
    if (data[0] == PARLEY_PROTO_VERSION && data[1] == FRAME_RECONCILE) {
        FUZZ_CHECK(rc == rc_msg);
        FUZZ_CHECK(rc != PARLEY_OK || (s_frame.sync == payload && s_frame.sync_len == plen));
    }
    if (data[0] == PARLEY_PROTO_VERSION && data[1] == FRAME_WANT) {
        FUZZ_CHECK(rc == rc_want);
        FUZZ_CHECK(rc != PARLEY_OK
                   || (s_frame.n_prefixes == n_want && s_frame.prefixes == payload + 2));
    }
    if (rc_want == PARLEY_OK) {
        FUZZ_CHECK(n_want >= 1 && n_want <= SYNC_WANT_MAX);
        FUZZ_CHECK(plen == 2 + n_want * SYNC_PREFIX_LEN);
    }
    if (rc_msg == PARLEY_OK) {
        (void)s_walk(payload, plen);
        for (size_t k = 0; k < 2; k++) {
            s_answer(payload, plen, s_sets[k], PARLEY_FRAME_MAX);
            s_answer(payload, plen, s_sets[k], S_SMALL_BUDGET);
        }
    }
    return 0;
}
