/*  tools/bench/sync_engine.c — the range-based reconciliation engine
 *  (proto/sync.h) in one process, at the size of a real log, next to
 *  reference figures for the design it follows (Negentropy).
 *
 *  Two sides, A (the initiator: a node catching up or checking in) and B
 *  (the responder), each with its own sync_set_t per scope, exchange
 *  RECONCILE frames through two buffers of PARLEY_FRAME_MAX bytes: A writes
 *  the OPEN message (sync_open_block per scope, flag SYNC_F_OPEN), then the
 *  sides take turns decoding the other's frame (frame_decode, which checks it
 *  whole) and answering every block of it (sync_answer) until one sends a
 *  message with no blocks. Nothing is transported: the figures are the
 *  engine's and the format's, not the network's.
 *
 *  Measured per scenario:
 *    RT      round trips; one is a message each way, and the final empty
 *            message ends the last one (messages / 2, rounded up).
 *    bytes   every RECONCILE frame both ways, frame header included.
 *    WANT    the WANT frames that would follow: 16 bytes per wanted id prefix
 *            plus a 4-byte header per frame of up to SYNC_WANT_MAX prefixes.
 *            The reference figures count every byte of a session, so the
 *            ratio is taken over RECONCILE + WANT.
 *    CPU     CLOCK_THREAD_CPUTIME_ID around each side's own work: writing the
 *            OPEN, decoding, answering, and the sinks (which only record).
 *            Building the sets and applying the result are not counted.
 *    equal   after the round, each side's pushes are inserted into the
 *            other's sets and each side's wants are fetched from the other's
 *            world copy; the two sets must then hold exactly the same items,
 *            as many as the union of the starting sets. Checked item by item.
 *
 *  Items: ts starts at 1.7e12 ms and grows by 1..50 ms per item, like a real
 *  log; ids are 32 pseudo-random bytes. The data is a pure function of a
 *  fixed seed, so a run reproduces. Memory: about 160 bytes per item at the
 *  peak (the world, two sets and a hash of ids).
 *
 *  Usage: bench_sync_engine [--n N] [--d D]
 */
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../proto/errors.h"
#include "../../proto/frame.h"
#include "../../proto/limits.h"
#include "../../proto/sync.h"

#define S_N_DEFAULT 1000000u
#define S_N_MIN 10000u
#define S_N_MAX 4000000u
#define S_D_DEFAULT 1000u /* items in the difference (scenarios b, c) */
#define S_SCOPES 1000u    /* scopes in scenario d */
#define S_TS_START 1700000000000ull
#define S_TS_STEP_MAX 50u /* ms between two items, at most */
#define S_MSGS_MAX 1000u  /* a round longer than this has gone wrong */
/*  Room asked for before each OPEN block: scope, hints count, ranges count,
 *  and one FP range to infinity (or the largest id list, SYNC_LIST_MAX). */
#define S_OPEN_NEED (32u + 1u + 2u + 4u + SYNC_LIST_MAX * SYNC_PREFIX_LEN)

/*  Reference figures at n = 1,000,000, d = 1,000 (one scope), given with
 *  the design: a Negentropy-style session, all bytes both ways. */
#define S_REF_A_BYTES 340.0
#define S_REF_B_BYTES 34000.0
#define S_REF_C_BYTES 1340000.0

/* ---- the world: every item any side may hold ---- */

typedef struct {
    sync_item_t *items; /* n items, ascending within each scope */
    size_t n;
    size_t n_scopes;  /* item i is in scope i / per_scope */
    size_t per_scope; /* items per scope */
    uint32_t *slots;  /* open addressing on the id: index + 1, 0 = empty */
    size_t mask;      /* slots - 1 (a power of two minus one) */
} s_world_t;

/*  A small deterministic generator for the ts steps and the picks. */
static uint64_t s_rng = 0x9e3779b97f4a7c15ull;

static uint64_t
s_rand(void)
{
    s_rng ^= s_rng << 13;
    s_rng ^= s_rng >> 7;
    s_rng ^= s_rng << 17;
    return s_rng;
}

static size_t
s_slot_of(const s_world_t *w, const uint8_t *id)
{
    uint64_t k;
    memcpy(&k, id, sizeof k);
    return (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & w->mask;
}

/*  The world index of the item whose id starts with prefix, or SIZE_MAX. */
static size_t
s_world_find(const s_world_t *w, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    for (size_t s = s_slot_of(w, prefix);; s = (s + 1) & w->mask) {
        uint32_t v = w->slots[s];
        if (v == 0) {
            return SIZE_MAX;
        }
        if (memcmp(w->items[v - 1].id, prefix, SYNC_PREFIX_LEN) == 0) {
            return v - 1;
        }
    }
}

static void
s_world_free(s_world_t *w)
{
    free(w->items);
    free(w->slots);
    memset(w, 0, sizeof *w);
}

/*  n_scopes × per_scope items; each scope its own log from S_TS_START. */
static bool
s_world_make(s_world_t *w, size_t n_scopes, size_t per_scope)
{
    memset(w, 0, sizeof *w);
    w->n_scopes = n_scopes;
    w->per_scope = per_scope;
    w->n = n_scopes * per_scope;
    size_t cap = 1;
    while (cap < 2 * w->n) {
        cap *= 2;
    }
    w->mask = cap - 1;
    w->items = malloc(w->n * sizeof *w->items);
    w->slots = calloc(cap, sizeof *w->slots);
    uint8_t *ids = malloc(w->n * 32);
    if (!w->items || !w->slots || !ids) {
        free(ids);
        s_world_free(w);
        return false;
    }
    static const uint8_t seed[randombytes_SEEDBYTES] = { 'p', 'a', 'r', 'l', 'e', 'y' };
    randombytes_buf_deterministic(ids, w->n * 32, seed);
    for (size_t s = 0; s < n_scopes; s++) {
        uint64_t ts = S_TS_START;
        for (size_t k = 0; k < per_scope; k++) {
            size_t i = s * per_scope + k;
            ts += 1 + s_rand() % S_TS_STEP_MAX;
            w->items[i].ts = ts;
            memcpy(w->items[i].id, ids + 32 * i, 32);
            size_t slot = s_slot_of(w, w->items[i].id);
            while (w->slots[slot] != 0) {
                slot = (slot + 1) & w->mask;
            }
            w->slots[slot] = (uint32_t)(i + 1);
        }
    }
    free(ids);
    return true;
}

static void
s_scope_id(size_t s, uint8_t scope[32])
{
    memset(scope, 0xa5, 32);
    scope[0] = (uint8_t)(s >> 24);
    scope[1] = (uint8_t)(s >> 16);
    scope[2] = (uint8_t)(s >> 8);
    scope[3] = (uint8_t)s;
}

/*  The scope index of a scope id, or SIZE_MAX if it is not one of ours. */
static size_t
s_scope_index(const s_world_t *w, const uint8_t scope[32])
{
    for (size_t i = 4; i < 32; i++) {
        if (scope[i] != 0xa5) {
            return SIZE_MAX;
        }
    }
    size_t s = (size_t)scope[0] << 24 | (size_t)scope[1] << 16 | (size_t)scope[2] << 8 | scope[3];
    return s < w->n_scopes ? s : SIZE_MAX;
}

/* ---- a side ---- */

typedef struct {
    uint32_t scope; /* scope index */
    uint32_t at;    /* index in that scope's set (valid until the sets change) */
} s_ref_t;

typedef struct {
    uint32_t scope;
    uint8_t prefix[SYNC_PREFIX_LEN];
} s_want_t;

typedef struct {
    const s_world_t *world;
    uint8_t *in;       /* in[i]: this side holds world item i */
    sync_set_t **sets; /* one per scope */
    size_t scope;      /* the scope being answered (for the sinks) */
    s_ref_t *pushes;   /* items of ours the peer lacks */
    size_t n_pushes, cap_pushes;
    s_want_t *wants; /* prefixes of items we lack */
    size_t n_wants, cap_wants;
    bool oom;          /* a sink could not record */
    size_t max_ranges; /* the most ranges in one block received */
    double cpu_ms;     /* this side's work in the round */
} s_side_t;

static void
s_side_free(s_side_t *s)
{
    if (s->sets) {
        for (size_t i = 0; i < s->world->n_scopes; i++) {
            sync_set_destroy(&s->sets[i]);
        }
    }
    free(s->sets);
    free(s->in);
    free(s->pushes);
    free(s->wants);
    memset(s, 0, sizeof *s);
}

/*  A side holding the world items marked in `in` (taken over). */
static bool
s_side_make(s_side_t *s, const s_world_t *w, uint8_t **in_p)
{
    memset(s, 0, sizeof *s);
    s->world = w;
    s->in = *in_p;
    *in_p = NULL;
    s->sets = calloc(w->n_scopes, sizeof *s->sets);
    s->cap_pushes = 4096;
    s->cap_wants = 4096;
    s->pushes = malloc(s->cap_pushes * sizeof *s->pushes);
    s->wants = malloc(s->cap_wants * sizeof *s->wants);
    if (!s->in || !s->sets || !s->pushes || !s->wants) {
        return false;
    }
    for (size_t sc = 0; sc < w->n_scopes; sc++) {
        s->sets[sc] = sync_set_new();
        if (!s->sets[sc]) {
            return false;
        }
        //  The world is in order within a scope: every insert appends.
        for (size_t k = 0; k < w->per_scope; k++) {
            size_t i = sc * w->per_scope + k;
            if (s->in[i]
                && sync_set_insert(s->sets[sc], w->items[i].ts, w->items[i].id) != PARLEY_OK) {
                return false;
            }
        }
    }
    return true;
}

static double
s_cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- the sinks: record only; the round is applied after it ends ---- */

static int
s_prefix_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SYNC_PREFIX_LEN);
}

static void
s_sink_push(void *arg, sync_set_t *set, size_t lo, size_t hi, const uint8_t *excl, size_t n_excl)
{
    s_side_t *s = arg;
    for (size_t i = lo; i < hi; i++) {
        const sync_item_t *it = sync_set_at(set, i);
        if (!it) {
            s->oom = true;
            return;
        }
        if (n_excl && bsearch(it->id, excl, n_excl, SYNC_PREFIX_LEN, s_prefix_cmp)) {
            continue;
        }
        if (s->n_pushes == s->cap_pushes) {
            s_ref_t *grown = realloc(s->pushes, 2 * s->cap_pushes * sizeof *grown);
            if (!grown) {
                s->oom = true;
                return;
            }
            s->pushes = grown;
            s->cap_pushes *= 2;
        }
        s->pushes[s->n_pushes++] = (s_ref_t){ (uint32_t)s->scope, (uint32_t)i };
    }
}

static void
s_sink_want(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    s_side_t *s = arg;
    if (s->n_wants == s->cap_wants) {
        s_want_t *grown = realloc(s->wants, 2 * s->cap_wants * sizeof *grown);
        if (!grown) {
            s->oom = true;
            return;
        }
        s->wants = grown;
        s->cap_wants *= 2;
    }
    s->wants[s->n_wants].scope = (uint32_t)s->scope;
    memcpy(s->wants[s->n_wants].prefix, prefix, SYNC_PREFIX_LEN);
    s->n_wants++;
}

static bool
s_sink_has(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    const s_side_t *s = arg;
    size_t i = s_world_find(s->world, prefix);
    return i != SIZE_MAX && s->in[i] && i / s->world->per_scope == s->scope;
}

/* ---- one round ---- */

static void
s_digest(s_side_t *s, uint8_t out[SYNC_FP_LEN])
{
    sync_digest_t d;
    sync_digest_init(&d);
    for (size_t sc = 0; sc < s->world->n_scopes; sc++) {
        uint8_t scope[32], fp[SYNC_FP_LEN];
        s_scope_id(sc, scope);
        sync_set_fp(s->sets[sc], fp);
        sync_digest_add(&d, scope, fp);
    }
    sync_digest_final(&d, out);
}

/*  Our OPEN blocks for every scope into w; false if they do not fit. */
static bool
s_open_blocks(s_side_t *s, sync_writer_t *w)
{
    for (size_t sc = 0; sc < s->world->n_scopes; sc++) {
        uint8_t scope[32];
        s_scope_id(sc, scope);
        if (!sync_writer_room(w, S_OPEN_NEED)) {
            return false;
        }
        sync_open_block(w, s->sets[sc], scope, NULL, 0);
    }
    return true;
}

/*  The initiator's first message; its length, or 0. */
static size_t
s_open(s_side_t *s, bool digest, uint8_t *out)
{
    double t0 = s_cpu_ms();
    sync_writer_t w;
    size_t len = 0;
    if (digest) {
        uint8_t d[SYNC_FP_LEN];
        s_digest(s, d);
        sync_writer_init(&w, out, PARLEY_FRAME_MAX, SYNC_F_OPEN | SYNC_F_DIGEST, d);
        len = sync_writer_finish(&w);
    } else {
        sync_writer_init(&w, out, PARLEY_FRAME_MAX, SYNC_F_OPEN, NULL);
        len = s_open_blocks(s, &w) ? sync_writer_finish(&w) : 0;
    }
    s->cpu_ms += s_cpu_ms() - t0;
    return len;
}

/*  A frame the peer would refuse: how many ranges its blocks hold, read
 *  with the bounds-checked readers as far as they get. */
static void
s_diagnose(s_side_t *s, const uint8_t *msg, size_t len)
{
    if (len < 2) {
        return;
    }
    sync_msg_reader_t rd;
    sync_msg_open(&rd, msg + 2, len - 2);
    sync_block_t blk;
    while (sync_msg_next(&rd, &blk)) {
        s->max_ranges = blk.n_ranges > s->max_ranges ? blk.n_ranges : s->max_ranges;
    }
}

/*  Decodes msg and answers every block of it into out. Sets *out_len and
 *  *n_blocks (0: the round is over). A status code. */
static int
s_answer(s_side_t *s, const uint8_t *msg, size_t len, uint8_t *out, size_t *out_len,
         size_t *n_blocks)
{
    static frame_t f; // large (views of every frame kind): not on the stack
    double t0 = s_cpu_ms();
    int rc = frame_decode(msg, len, &f);
    if (rc == PARLEY_OK && f.type != FRAME_RECONCILE) {
        rc = PARLEY_ERR_MALFORMED;
    }
    if (rc != PARLEY_OK) {
        s_diagnose(s, msg, len);
        return rc;
    }
    sync_msg_reader_t rd;
    sync_msg_open(&rd, f.sync, f.sync_len);
    sync_writer_t w;
    bool fits = true;
    if (rd.digest) {
        //  Equal digests: every scope is in sync, an empty answer ends the
        //  round. Else open every scope ourselves, as a plain OPEN would.
        uint8_t d[SYNC_FP_LEN];
        s_digest(s, d);
        bool same = sodium_memcmp(d, rd.digest, SYNC_FP_LEN) == 0;
        sync_writer_init(&w, out, PARLEY_FRAME_MAX, same ? 0 : SYNC_F_OPEN, NULL);
        if (!same) {
            fits = s_open_blocks(s, &w);
        }
    } else {
        sync_writer_init(&w, out, PARLEY_FRAME_MAX, 0, NULL);
        sync_sink_t sink = { s_sink_push, s_sink_want, s_sink_has, s };
        sync_block_t blk;
        while (sync_msg_next(&rd, &blk)) {
            s->max_ranges = blk.n_ranges > s->max_ranges ? blk.n_ranges : s->max_ranges;
            s->scope = s_scope_index(s->world, blk.scope);
            if (s->scope == SIZE_MAX) {
                continue; // not a scope we replicate: nothing to answer
            }
            (void)sync_answer(&w, s->sets[s->scope], &blk, &sink);
        }
    }
    *out_len = fits ? sync_writer_finish(&w) : 0;
    *n_blocks = sync_writer_blocks(&w);
    s->cpu_ms += s_cpu_ms() - t0;
    if (*out_len == 0) {
        return PARLEY_ERR_LIMIT; // the answer outgrew PARLEY_FRAME_MAX
    }
    return s->oom ? PARLEY_ERR_NOMEM : PARLEY_OK;
}

typedef struct {
    size_t msgs;       /* RECONCILE frames, both ways */
    size_t bytes;      /* their bytes */
    size_t max_msg;    /* the largest */
    size_t max_ranges; /* the most ranges in one block */
    size_t want_bytes; /* WANT frames that would follow */
    size_t pushed;     /* items pushed, both ways */
    size_t wanted;     /* prefixes wanted, both ways */
    size_t waste;      /* pushed or wanted items the receiver already held */
    size_t bad;        /* wants of something the peer does not hold */
    bool equal;        /* the sets match after applying */
    int rc;            /* a failure of the round itself, else PARLEY_OK */
} s_result_t;

static size_t
s_want_frame_bytes(size_t n)
{
    return n * SYNC_PREFIX_LEN + 4 * ((n + SYNC_WANT_MAX - 1) / SYNC_WANT_MAX);
}

/*  Runs A's OPEN and the answers to the end. */
static void
s_exchange(s_side_t *a, s_side_t *b, bool digest, uint8_t *bufs[2], s_result_t *r)
{
    size_t len = s_open(a, digest, bufs[0]);
    if (len == 0) {
        r->rc = PARLEY_ERR_LIMIT;
        return;
    }
    r->msgs = 1;
    r->bytes = len;
    r->max_msg = len;
    s_side_t *turn[2] = { b, a };
    for (size_t k = 0;; k++) {
        size_t out_len = 0, n_blocks = 0;
        //  The message just written is in bufs[k % 2]; the answer goes to the other.
        r->rc = s_answer(turn[k % 2], bufs[k % 2], len, bufs[(k + 1) % 2], &out_len, &n_blocks);
        if (r->rc != PARLEY_OK) {
            return;
        }
        r->msgs++;
        r->bytes += out_len;
        r->max_msg = out_len > r->max_msg ? out_len : r->max_msg;
        len = out_len;
        if (n_blocks == 0) {
            return;
        }
        if (r->msgs >= S_MSGS_MAX) {
            r->rc = PARLEY_ERR_LIMIT;
            return;
        }
    }
}

/*  World index i arrives at side s. */
static bool
s_receive(s_side_t *s, size_t i)
{
    const sync_item_t *it = &s->world->items[i];
    s->in[i] = 1;
    return sync_set_insert(s->sets[i / s->world->per_scope], it->ts, it->id) == PARLEY_OK;
}

/*  Turns s's recorded pushes and wants into world indexes, against the sets
 *  as they were during the round. into_peer gets the pushes, into_self the
 *  wants (each an array of world indexes; counts returned). */
static void
s_resolve(s_side_t *s, const s_side_t *peer, size_t *into_peer, size_t *n_peer, size_t *into_self,
          size_t *n_self, s_result_t *r)
{
    for (size_t k = 0; k < s->n_pushes; k++) {
        const sync_item_t *it = sync_set_at(s->sets[s->pushes[k].scope], s->pushes[k].at);
        size_t i = it ? s_world_find(s->world, it->id) : SIZE_MAX;
        if (i == SIZE_MAX) {
            r->bad++;
        } else if (peer->in[i]) {
            r->waste++;
        } else {
            into_peer[(*n_peer)++] = i;
        }
    }
    for (size_t k = 0; k < s->n_wants; k++) {
        size_t i = s_world_find(s->world, s->wants[k].prefix);
        if (i == SIZE_MAX || !peer->in[i] || i / s->world->per_scope != s->wants[k].scope) {
            r->bad++;
        } else if (s->in[i]) {
            r->waste++;
        } else {
            into_self[(*n_self)++] = i;
        }
    }
}

/*  Whether the two sides' sets are equal, item by item, and hold `expect`
 *  items in all. */
static bool
s_equal(s_side_t *a, s_side_t *b, size_t expect)
{
    size_t total = 0;
    for (size_t sc = 0; sc < a->world->n_scopes; sc++) {
        sync_set_t *x = a->sets[sc], *y = b->sets[sc];
        size_t n = sync_set_count(x);
        if (n != sync_set_count(y)) {
            return false;
        }
        for (size_t i = 0; i < n; i++) {
            const sync_item_t *p = sync_set_at(x, i), *q = sync_set_at(y, i);
            if (!p || !q || sync_item_cmp(p, q) != 0) {
                return false;
            }
        }
        total += n;
    }
    return total == expect;
}

/*  One round between a and b, then the result applied and checked. */
static void
s_round(s_side_t *a, s_side_t *b, bool digest, uint8_t *bufs[2], s_result_t *r)
{
    memset(r, 0, sizeof *r);
    a->cpu_ms = b->cpu_ms = 0;
    a->max_ranges = b->max_ranges = 0;
    a->oom = b->oom = false;
    a->n_pushes = b->n_pushes = a->n_wants = b->n_wants = 0;
    size_t n = a->world->n, expect = 0;
    for (size_t i = 0; i < n; i++) {
        expect += a->in[i] | b->in[i];
    }
    s_exchange(a, b, digest, bufs, r);
    r->max_ranges = a->max_ranges > b->max_ranges ? a->max_ranges : b->max_ranges;
    if (r->rc != PARLEY_OK) {
        return;
    }
    r->pushed = a->n_pushes + b->n_pushes;
    r->wanted = a->n_wants + b->n_wants;
    r->want_bytes = s_want_frame_bytes(a->n_wants) + s_want_frame_bytes(b->n_wants);
    size_t cap = a->n_pushes + b->n_pushes + a->n_wants + b->n_wants;
    size_t *to_a = malloc((cap + 1) * sizeof *to_a), *to_b = malloc((cap + 1) * sizeof *to_b);
    if (!to_a || !to_b) {
        free(to_a);
        free(to_b);
        r->rc = PARLEY_ERR_NOMEM;
        return;
    }
    size_t n_a = 0, n_b = 0;
    s_resolve(a, b, to_b, &n_b, to_a, &n_a, r);
    s_resolve(b, a, to_a, &n_a, to_b, &n_b, r);
    //  Only now change the sets: the recorded indexes were theirs before.
    bool ok = true;
    for (size_t k = 0; k < n_a; k++) {
        if (!a->in[to_a[k]]) {
            ok = s_receive(a, to_a[k]) && ok;
        } else {
            r->waste++; // pushed by B and wanted by A: it came twice
        }
    }
    for (size_t k = 0; k < n_b; k++) {
        if (!b->in[to_b[k]]) {
            ok = s_receive(b, to_b[k]) && ok;
        } else {
            r->waste++;
        }
    }
    free(to_a);
    free(to_b);
    r->equal = ok && s_equal(a, b, expect);
}

/* ---- scenarios and output ---- */

typedef struct {
    double rt;    /* reference round trips, 0 = none */
    double bytes; /* reference bytes, 0 = none */
} s_fig_t;

static void
s_fmt_bytes(char *out, size_t cap, double v)
{
    if (v >= 1e6) {
        snprintf(out, cap, "%.2f MB", v / 1e6);
    } else if (v >= 1e4) {
        snprintf(out, cap, "%.1f KB", v / 1e3);
    } else {
        snprintf(out, cap, "%.0f B", v);
    }
}

static void
s_fmt_ratio(char *out, size_t cap, double ref, double ours)
{
    if (ref <= 0 || ours <= 0) {
        snprintf(out, cap, "%s", "-");
    } else {
        snprintf(out, cap, "%.2fx", ref / ours);
    }
}

static void
s_header(size_t n, size_t d)
{
    printf("\nParley sync engine bench: two in-process sides; one scope of n = %zu items,\n"
           "d = %zu of them differing; then %u scopes of n / %u items each.\n",
           n, d, S_SCOPES, S_SCOPES);
    printf("A opens (SYNC_F_OPEN), B answers, they alternate until a message has no blocks;\n"
           "frame budget PARLEY_FRAME_MAX = %u B.\n"
           "  RT      round trips: messages / 2 rounded up (the final empty message ends\n"
           "          the last one)\n"
           "  bytes   every RECONCILE frame both ways; +WANT: the WANT frames that would\n"
           "          follow (16 B per prefix + 4 B per frame of up to %u)\n"
           "  CPU     thread CPU time of each side's own work: OPEN, decoding, answers,\n"
           "          sinks (recording only); not building the sets\n"
           "  equal   after inserting pushes and fetched wants, A and B hold the same\n"
           "          items, checked one by one, as many as their union\n"
           "  ratio   reference / ours, on RT and on RECONCILE+WANT bytes (> 1: we use\n"
           "          less). References: Negentropy-style figures at n = 1,000,000,\n"
           "          d = 1,000 (other n or d: indicative only). Pushed items cost no\n"
           "          RECONCILE bytes: their envelopes follow in ENVELOPES frames, which\n"
           "          no figure here counts.\n"
           "  msgs / largest / ranges: frames, the largest one, the most ranges in one\n"
           "          block (limit %u); pushed / wanted: items found missing each way\n",
           (unsigned)PARLEY_FRAME_MAX, SYNC_WANT_MAX, SYNC_RANGES_MAX);
    printf("\n%-32s %3s %3s %5s %9s %8s %8s %6s %9s %9s %5s %4s %8s %6s %6s %6s\n", "scenario",
           "RT", "ref", "ratio", "bytes", "+WANT", "ref", "ratio", "CPU A ms", "CPU B ms", "equal",
           "msgs", "largest", "ranges", "pushed", "wanted");
}

static void
s_line(const char *label, const s_result_t *r, const s_side_t *a, const s_side_t *b, s_fig_t ref)
{
    if (r->rc != PARLEY_OK) {
        printf("%-32s FAILED: %s after %zu messages (most ranges in a block: %zu)\n", label,
               parley_strerror(r->rc), r->msgs, r->max_ranges);
        return;
    }
    size_t rt = (r->msgs + 1) / 2;
    char bytes[32], want[32], refb[32], rt_ratio[16], b_ratio[16], refrt[16], largest[32];
    s_fmt_bytes(bytes, sizeof bytes, (double)r->bytes);
    s_fmt_bytes(want, sizeof want, (double)r->want_bytes);
    s_fmt_bytes(largest, sizeof largest, (double)r->max_msg);
    if (ref.bytes > 0) {
        s_fmt_bytes(refb, sizeof refb, ref.bytes);
    } else {
        snprintf(refb, sizeof refb, "%s", "-");
    }
    if (ref.rt > 0) {
        snprintf(refrt, sizeof refrt, "%.0f", ref.rt);
    } else {
        snprintf(refrt, sizeof refrt, "%s", "-");
    }
    s_fmt_ratio(rt_ratio, sizeof rt_ratio, ref.rt, (double)rt);
    s_fmt_ratio(b_ratio, sizeof b_ratio, ref.bytes, (double)(r->bytes + r->want_bytes));
    printf("%-32s %3zu %3s %5s %9s %8s %8s %6s %9.3f %9.3f %5s %4zu %8s %6zu %6zu %6zu\n", label,
           rt, refrt, rt_ratio, bytes, want, refb, b_ratio, a->cpu_ms, b->cpu_ms,
           r->equal ? "yes" : "NO", r->msgs, largest, r->max_ranges, r->pushed, r->wanted);
    if (r->waste || r->bad) {
        printf("%-32s note: %zu items sent twice or already held, %zu unresolvable\n", "", r->waste,
               r->bad);
    }
}

typedef enum { S_SAME, S_B_NEWEST, S_A_NEWEST, S_B_SCATTERED } s_shape_t;

/*  Marks which world items A and B hold for a shape (d items differ). */
static void
s_shape(const s_world_t *w, s_shape_t shape, size_t d, uint8_t *in_a, uint8_t *in_b)
{
    memset(in_a, 1, w->n);
    memset(in_b, 1, w->n);
    switch (shape) {
    case S_SAME: break;
    case S_B_NEWEST: memset(in_a + w->n - d, 0, d); break;
    case S_A_NEWEST: memset(in_b + w->n - d, 0, d); break;
    case S_B_SCATTERED:
        for (size_t k = 0; k < d;) {
            size_t i = (size_t)(s_rand() % w->n);
            if (in_a[i]) {
                in_a[i] = 0;
                k++;
            }
        }
        break;
    }
}

/*  Builds A and B for shape, runs one round, prints it. False on failure. */
static bool
s_scenario(const char *label, const s_world_t *w, s_shape_t shape, size_t d, s_fig_t ref,
           uint8_t *bufs[2])
{
    uint8_t *in_a = malloc(w->n), *in_b = malloc(w->n);
    s_side_t a, b;
    bool built = false;
    if (in_a && in_b) {
        s_shape(w, shape, d, in_a, in_b);
        built = s_side_make(&a, w, &in_a) & s_side_make(&b, w, &in_b);
    } else {
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
    }
    free(in_a);
    free(in_b);
    bool ok = false;
    if (!built) {
        printf("%-32s FAILED: out of memory building the sets\n", label);
    } else {
        s_result_t r;
        s_round(&a, &b, false, bufs, &r);
        s_line(label, &r, &a, &b, ref);
        ok = r.rc == PARLEY_OK && r.equal;
    }
    s_side_free(&a);
    s_side_free(&b);
    return ok;
}

/*  1000 scopes in sync: a plain OPEN with one block per scope, then the
 *  digest OPEN. */
static bool
s_scopes(size_t per_scope, uint8_t *bufs[2])
{
    s_world_t w;
    if (!s_world_make(&w, S_SCOPES, per_scope)) {
        printf("d) FAILED: out of memory building the world\n");
        return false;
    }
    uint8_t *in_a = malloc(w.n), *in_b = malloc(w.n);
    s_side_t a, b;
    bool built = false;
    if (in_a && in_b) {
        memset(in_a, 1, w.n);
        memset(in_b, 1, w.n);
        built = s_side_make(&a, &w, &in_a) & s_side_make(&b, &w, &in_b);
    } else {
        memset(&a, 0, sizeof a);
        memset(&b, 0, sizeof b);
    }
    free(in_a);
    free(in_b);
    bool ok = false;
    if (!built) {
        printf("d) FAILED: out of memory building the sets\n");
    } else {
        char label[64];
        s_result_t r;
        //  No reference: d = 0 in one scope (a) times the scopes would be
        //  1000 sessions; the figures stand alone.
        s_fig_t none = { 0, 0 };
        snprintf(label, sizeof label, "d) %u scopes x %zu, in sync", S_SCOPES, per_scope);
        s_round(&a, &b, false, bufs, &r);
        s_line(label, &r, &a, &b, none);
        ok = r.rc == PARLEY_OK && r.equal;
        snprintf(label, sizeof label, "d) same, DIGEST, fps cold");
        s_round(&a, &b, true, bufs, &r);
        s_line(label, &r, &a, &b, none);
        ok = ok && r.rc == PARLEY_OK && r.equal;
        //  The set fingerprints are cached now, as in a node between changes.
        snprintf(label, sizeof label, "d) same, DIGEST, fps cached");
        s_round(&a, &b, true, bufs, &r);
        s_line(label, &r, &a, &b, none);
        ok = ok && r.rc == PARLEY_OK && r.equal;
    }
    s_side_free(&a);
    s_side_free(&b);
    s_world_free(&w);
    return ok;
}

static void
s_usage(FILE *out)
{
    fprintf(out,
            "usage: bench_sync_engine [--n N] [--d D]\n"
            "Measures proto/sync's reconciliation in one process: two sides, one scope\n"
            "of N items with 0 or D of them differing, then %u scopes of N / %u items\n"
            "in sync. Exits 1 if a scenario does not end with equal sets.\n"
            "  --n N   items in the large scope, %u..%u (default %u;\n"
            "          100000 for a quick run)\n"
            "  --d D   items that differ, 1..N/2 (default %u)\n",
            S_SCOPES, S_SCOPES, S_N_MIN, S_N_MAX, S_N_DEFAULT, S_D_DEFAULT);
}

/*  The count after opt, from lo to hi, or 0 (with a message). */
static size_t
s_count_arg(const char *opt, const char *v, size_t lo, size_t hi)
{
    char *end = NULL;
    errno = 0;
    unsigned long long x = v ? strtoull(v, &end, 10) : 0;
    if (!v || errno || !end || *end || v[0] == '-' || x < lo || x > hi) {
        fprintf(stderr, "bench_sync_engine: %s wants a count from %zu to %zu\n", opt, lo, hi);
        return 0;
    }
    return (size_t)x;
}

/*  Returns 0, 1 for help, -1 for a usage error. */
static int
s_parse(int argc, char **argv, size_t *n, size_t *d)
{
    *n = S_N_DEFAULT;
    *d = S_D_DEFAULT;
    const char *d_arg = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return 1;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--n") == 0) {
            *n = s_count_arg(a, v, S_N_MIN, S_N_MAX);
            if (*n == 0) {
                return -1;
            }
            i++;
        } else if (strcmp(a, "--d") == 0) {
            d_arg = v ? v : "";
            i++;
        } else {
            fprintf(stderr, "bench_sync_engine: unknown option '%s'\n", a);
            return -1;
        }
    }
    //  D is checked against the final N, whichever came first.
    if (d_arg) {
        *d = s_count_arg("--d", d_arg, 1, *n / 2);
        if (*d == 0) {
            return -1;
        }
    } else if (*d > *n / 2) {
        *d = *n / 2;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    size_t n = 0, d = 0;
    int p = s_parse(argc, argv, &n, &d);
    if (p != 0) {
        s_usage(p > 0 ? stdout : stderr);
        return p > 0 ? 0 : 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "bench_sync_engine: sodium_init failed\n");
        return 1;
    }
    uint8_t *bufs[2] = { malloc(PARLEY_FRAME_MAX), malloc(PARLEY_FRAME_MAX) };
    s_world_t w;
    if (!bufs[0] || !bufs[1] || !s_world_make(&w, 1, n)) {
        fprintf(stderr, "bench_sync_engine: out of memory\n");
        free(bufs[0]);
        free(bufs[1]);
        return 1;
    }
    s_header(n, d);
    bool ok = true;
    s_fig_t ref_a = { 1, S_REF_A_BYTES }, ref_b = { 3, S_REF_B_BYTES },
            ref_c = { 3, S_REF_C_BYTES };
    char label[64];
    ok = s_scenario("a) d=0, identical", &w, S_SAME, 0, ref_a, bufs) && ok;
    snprintf(label, sizeof label, "b) %zu newest only in B", d);
    ok = s_scenario(label, &w, S_B_NEWEST, d, ref_b, bufs) && ok;
    snprintf(label, sizeof label, "b') %zu newest only in A", d);
    ok = s_scenario(label, &w, S_A_NEWEST, d, ref_b, bufs) && ok;
    snprintf(label, sizeof label, "c) %zu scattered, only in B", d);
    ok = s_scenario(label, &w, S_B_SCATTERED, d, ref_c, bufs) && ok;
    s_world_free(&w);
    ok = s_scopes(n / S_SCOPES, bufs) && ok;
    free(bufs[0]);
    free(bufs[1]);
    printf("\n%s\n", ok ? "bench_sync_engine: every scenario converged to equal sets"
                        : "bench_sync_engine: FAIL: a scenario did not converge");
    return ok ? 0 : 1;
}
