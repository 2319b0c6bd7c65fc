/*  proto/sync.c — range-based set reconciliation (format: proto/SPEC.md §15).
 *
 *  The set is a list of sorted chunks of at most S_CHUNK_MAX items, each
 *  chunk with its own accumulator. Index lookups and range accumulators use
 *  two arrays rebuilt lazily after a change: the index of each chunk's first
 *  item and the accumulator of everything before each chunk. A range's
 *  accumulator is then prefix[c_hi] − prefix[c_lo + 1] plus two partial
 *  chunks. Loading a log in order appends to the last chunk (no shifting).
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
#include "sync.h"

#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "limits.h"
#include "selftest.h"

#define S_CHUNK_MAX 256u
#define S_SORT_MAX 4096u /* ranges up to this many items are compared in memory */
/*  Bytes of one range at most: bound (varint 10, len 1, prefix 32), mode,
 *  count varint, fingerprint. A reply to one range is a SKIP plus a split,
 *  or plus a list; one more FP range is kept in reserve to close a block. */
#define S_RANGE_MAX (44u + 1u + 10u + SYNC_FP_LEN)
#define S_BIG_SPLIT ((size_t)SYNC_LIST_MAX * SYNC_FANOUT * SYNC_FANOUT * SYNC_FANOUT)
/*  A block header and one fallback range: kept free for every block. */
#define S_BLOCK_MIN (32u + 1u + 2u + 2u * S_RANGE_MAX)

typedef struct {
    size_t n;
    sync_acc_t acc;
    sync_item_t items[S_CHUNK_MAX];
} s_chunk_t;

struct _sync_set_t {
    s_chunk_t **chunks;
    size_t n_chunks;
    size_t cap_chunks;
    size_t count;
    bool dirty;       /* first[] and pre[] need rebuilding */
    size_t *first;    /* n_chunks + 1: index of each chunk's first item */
    sync_acc_t *pre;  /* n_chunks + 1: accumulator before each chunk */
    size_t cap_index; /* capacity of first[] and pre[] */
    size_t hint;      /* chunk of the last index lookup: walks in order are O(1) */
    bool fp_valid;    /* fp holds the whole set's fingerprint */
    uint8_t fp[SYNC_FP_LEN];
};

/* ------------------------------------------------------------ accumulator */

static uint64_t
s_le64(const uint8_t *b)
{
    uint64_t v = 0;
    for (size_t i = 0; i < 8; i++) {
        v |= (uint64_t)b[i] << (8 * i);
    }
    return v;
}

static void
s_acc_add_words(sync_acc_t *acc, const uint64_t w[4], uint64_t count)
{
    uint64_t carry = 0;
    for (size_t i = 0; i < 4; i++) {
        uint64_t a = acc->sum[i];
        uint64_t s = a + w[i];
        uint64_t c1 = s < a;
        uint64_t t = s + carry;
        uint64_t c2 = t < s;
        acc->sum[i] = t;
        carry = c1 | c2;
    }
    acc->count += count;
}

static void
s_acc_sub(sync_acc_t *acc, const sync_acc_t *b)
{
    uint64_t borrow = 0;
    for (size_t i = 0; i < 4; i++) {
        uint64_t a = acc->sum[i];
        uint64_t d = a - b->sum[i];
        uint64_t b1 = a < b->sum[i];
        uint64_t t = d - borrow;
        uint64_t b2 = d < borrow;
        acc->sum[i] = t;
        borrow = b1 | b2;
    }
    acc->count -= b->count;
}

void
sync_acc_add(sync_acc_t *acc, const uint8_t id[32])
{
    uint64_t w[4] = { s_le64(id), s_le64(id + 8), s_le64(id + 16), s_le64(id + 24) };
    s_acc_add_words(acc, w, 1);
}

static void
s_acc_merge(sync_acc_t *acc, const sync_acc_t *b)
{
    s_acc_add_words(acc, b->sum, b->count);
}

static void
s_acc_sub_id(sync_acc_t *acc, const uint8_t id[32])
{
    sync_acc_t one;
    memset(&one, 0, sizeof one);
    sync_acc_add(&one, id);
    s_acc_sub(acc, &one);
}

void
sync_acc_fp(const sync_acc_t *acc, uint8_t fp[SYNC_FP_LEN])
{
    uint8_t in[40];
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 8; j++) {
            in[8 * i + j] = (uint8_t)(acc->sum[i] >> (8 * j));
        }
    }
    for (size_t j = 0; j < 8; j++) {
        in[32 + j] = (uint8_t)(acc->count >> (8 * (7 - j)));
    }
    crypto_generichash(fp, SYNC_FP_LEN, in, sizeof in, NULL, 0);
}

/* ------------------------------------------------------------------ order */

int
sync_item_cmp(const sync_item_t *a, const sync_item_t *b)
{
    if (a->ts != b->ts) {
        return a->ts < b->ts ? -1 : 1;
    }
    return memcmp(a->id, b->id, 32);
}

bool
sync_item_below(const sync_item_t *item, const sync_bound_t *bound)
{
    if (bound->ts == SYNC_BOUND_INF) {
        return true;
    }
    if (item->ts != bound->ts) {
        return item->ts < bound->ts;
    }
    //  Equal to the prefix means not below: the bound's padding is zeros.
    return memcmp(item->id, bound->prefix, bound->len) < 0;
}

void
sync_bound_inf(sync_bound_t *b)
{
    memset(b, 0, sizeof *b);
    b->ts = SYNC_BOUND_INF;
}

bool
sync_bound_is_inf(const sync_bound_t *b)
{
    return b->ts == SYNC_BOUND_INF;
}

static void
s_bound_min(sync_bound_t *b)
{
    memset(b, 0, sizeof *b);
}

int
sync_bound_cmp(const sync_bound_t *a, const sync_bound_t *b)
{
    if (a->ts != b->ts) {
        return a->ts < b->ts ? -1 : 1;
    }
    uint8_t pa[32] = { 0 }, pb[32] = { 0 };
    memcpy(pa, a->prefix, a->len);
    memcpy(pb, b->prefix, b->len);
    return memcmp(pa, pb, 32);
}

//  The shortest bound above prev and not above next (prev < next).
static void
s_bound_between(const sync_item_t *prev, const sync_item_t *next, sync_bound_t *out)
{
    memset(out, 0, sizeof *out);
    out->ts = next->ts;
    if (prev->ts < next->ts) {
        return;
    }
    size_t k = 0;
    while (k < 32 && prev->id[k] == next->id[k]) {
        k++;
    }
    out->len = (uint8_t)(k + 1);
    memcpy(out->prefix, next->id, out->len);
}

/* -------------------------------------------------------------------- set */

sync_set_t *
sync_set_new(void)
{
    sync_set_t *self = calloc(1, sizeof *self);
    if (self) {
        self->dirty = true;
    }
    return self;
}

void
sync_set_destroy(sync_set_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    sync_set_t *self = *self_p;
    for (size_t i = 0; i < self->n_chunks; i++) {
        free(self->chunks[i]);
    }
    free(self->chunks);
    free(self->first);
    free(self->pre);
    free(self);
    *self_p = NULL;
}

size_t
sync_set_count(const sync_set_t *self)
{
    return self->count;
}

static void
s_changed(sync_set_t *self)
{
    self->dirty = true;
    self->fp_valid = false;
}

static int
s_chunk_insert_at(sync_set_t *self, size_t at, s_chunk_t *c)
{
    if (self->n_chunks == self->cap_chunks) {
        size_t cap = self->cap_chunks ? 2 * self->cap_chunks : 16;
        s_chunk_t **grown = realloc(self->chunks, cap * sizeof *grown);
        if (!grown) {
            return PARLEY_ERR_NOMEM;
        }
        self->chunks = grown;
        self->cap_chunks = cap;
    }
    memmove(self->chunks + at + 1, self->chunks + at, (self->n_chunks - at) * sizeof *self->chunks);
    self->chunks[at] = c;
    self->n_chunks++;
    return PARLEY_OK;
}

static void
s_chunk_reacc(s_chunk_t *c)
{
    memset(&c->acc, 0, sizeof c->acc);
    for (size_t i = 0; i < c->n; i++) {
        sync_acc_add(&c->acc, c->items[i].id);
    }
}

//  The chunk that holds key or would: the last whose first item ≤ key.
static size_t
s_find_chunk(const sync_set_t *self, const sync_item_t *key)
{
    size_t lo = 0, hi = self->n_chunks;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (sync_item_cmp(&self->chunks[mid]->items[0], key) <= 0) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    return lo;
}

//  Position of the first item ≥ key in chunk c; *found if equal.
static size_t
s_chunk_pos(const s_chunk_t *c, const sync_item_t *key, bool *found)
{
    size_t lo = 0, hi = c->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sync_item_cmp(&c->items[mid], key) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = lo < c->n && sync_item_cmp(&c->items[lo], key) == 0;
    return lo;
}

int
sync_set_insert(sync_set_t *self, uint64_t ts, const uint8_t id[32])
{
    if (ts == SYNC_BOUND_INF) {
        return PARLEY_ERR_LIMIT; // reserved: a bound at it would read as infinity
    }
    sync_item_t key;
    key.ts = ts;
    memcpy(key.id, id, 32);
    s_chunk_t *last = self->n_chunks ? self->chunks[self->n_chunks - 1] : NULL;
    if (!last || sync_item_cmp(&last->items[last->n - 1], &key) < 0) {
        //  Appending in order: fill the last chunk, then start another.
        if (!last || last->n == S_CHUNK_MAX) {
            s_chunk_t *c = calloc(1, sizeof *c);
            if (!c || s_chunk_insert_at(self, self->n_chunks, c) != PARLEY_OK) {
                free(c);
                return PARLEY_ERR_NOMEM;
            }
            last = c;
        }
        last->items[last->n++] = key;
        sync_acc_add(&last->acc, id);
        self->count++;
        s_changed(self);
        return PARLEY_OK;
    }
    size_t ci = s_find_chunk(self, &key);
    s_chunk_t *c = self->chunks[ci];
    bool found = false;
    size_t pos = s_chunk_pos(c, &key, &found);
    if (found) {
        return PARLEY_ERR_DUPLICATE;
    }
    if (c->n == S_CHUNK_MAX) {
        //  Split in halves; the key goes into the half that covers it.
        s_chunk_t *right = calloc(1, sizeof *right);
        if (!right || s_chunk_insert_at(self, ci + 1, right) != PARLEY_OK) {
            free(right);
            return PARLEY_ERR_NOMEM;
        }
        size_t half = S_CHUNK_MAX / 2;
        memcpy(right->items, c->items + half, (S_CHUNK_MAX - half) * sizeof *c->items);
        right->n = S_CHUNK_MAX - half;
        c->n = half;
        s_chunk_reacc(c);
        s_chunk_reacc(right);
        if (pos > half) {
            c = right;
            pos -= half;
        }
    }
    memmove(c->items + pos + 1, c->items + pos, (c->n - pos) * sizeof *c->items);
    c->items[pos] = key;
    c->n++;
    sync_acc_add(&c->acc, id);
    self->count++;
    s_changed(self);
    return PARLEY_OK;
}

int
sync_set_remove(sync_set_t *self, uint64_t ts, const uint8_t id[32])
{
    if (self->n_chunks == 0) {
        return PARLEY_ERR_NOTFOUND;
    }
    sync_item_t key;
    key.ts = ts;
    memcpy(key.id, id, 32);
    size_t ci = s_find_chunk(self, &key);
    s_chunk_t *c = self->chunks[ci];
    bool found = false;
    size_t pos = s_chunk_pos(c, &key, &found);
    if (!found) {
        return PARLEY_ERR_NOTFOUND;
    }
    memmove(c->items + pos, c->items + pos + 1, (c->n - pos - 1) * sizeof *c->items);
    c->n--;
    s_acc_sub_id(&c->acc, id);
    if (c->n == 0) {
        free(c);
        memmove(self->chunks + ci, self->chunks + ci + 1,
                (self->n_chunks - ci - 1) * sizeof *self->chunks);
        self->n_chunks--;
    }
    self->count--;
    s_changed(self);
    return PARLEY_OK;
}

//  Rebuilds first[] and pre[]; false when out of memory (callers then
//  fall back to nothing: an empty answer, repaired by the next round).
static bool
s_index(sync_set_t *self)
{
    if (!self->dirty) {
        return true;
    }
    if (self->cap_index < self->n_chunks + 1) {
        size_t cap = 2 * (self->n_chunks + 1);
        size_t *first = realloc(self->first, cap * sizeof *first);
        if (first) {
            self->first = first;
        }
        sync_acc_t *pre = realloc(self->pre, cap * sizeof *pre);
        if (pre) {
            self->pre = pre;
        }
        if (!first || !pre) {
            return false;
        }
        self->cap_index = cap;
    }
    size_t at = 0;
    sync_acc_t acc;
    memset(&acc, 0, sizeof acc);
    for (size_t i = 0; i < self->n_chunks; i++) {
        self->first[i] = at;
        self->pre[i] = acc;
        at += self->chunks[i]->n;
        s_acc_merge(&acc, &self->chunks[i]->acc);
    }
    self->first[self->n_chunks] = at;
    self->pre[self->n_chunks] = acc;
    self->dirty = false;
    return true;
}

//  The chunk holding index i < count (index built).
static size_t
s_chunk_of(sync_set_t *self, size_t i)
{
    size_t h = self->hint;
    if (h < self->n_chunks && self->first[h] <= i) {
        if (i < self->first[h + 1]) {
            return h;
        }
        if (h + 1 < self->n_chunks && i < self->first[h + 2]) {
            return self->hint = h + 1;
        }
    }
    size_t lo = 0, hi = self->n_chunks;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->first[mid] <= i) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    self->hint = lo;
    return lo;
}

const sync_item_t *
sync_set_at(sync_set_t *self, size_t i)
{
    if (i >= self->count || !s_index(self)) {
        return NULL;
    }
    size_t c = s_chunk_of(self, i);
    return &self->chunks[c]->items[i - self->first[c]];
}

size_t
sync_set_lower(sync_set_t *self, const sync_bound_t *bound)
{
    if (!s_index(self)) {
        return self->count;
    }
    //  First chunk whose last item is not below the bound.
    size_t lo = 0, hi = self->n_chunks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const s_chunk_t *c = self->chunks[mid];
        if (sync_item_below(&c->items[c->n - 1], bound)) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == self->n_chunks) {
        return self->count;
    }
    const s_chunk_t *c = self->chunks[lo];
    size_t a = 0, b = c->n;
    while (a < b) {
        size_t mid = a + (b - a) / 2;
        if (sync_item_below(&c->items[mid], bound)) {
            a = mid + 1;
        } else {
            b = mid;
        }
    }
    return self->first[lo] + a;
}

//  Accumulator of the items [0, i) (index built): the chunk's prefix plus
//  its head, or the next chunk's prefix less its tail — the shorter walk.
static void
s_prefix(sync_set_t *self, size_t i, sync_acc_t *out)
{
    if (i >= self->count) {
        *out = self->pre[self->n_chunks];
        return;
    }
    size_t c = s_chunk_of(self, i);
    const s_chunk_t *ch = self->chunks[c];
    size_t off = i - self->first[c];
    if (off <= ch->n / 2) {
        *out = self->pre[c];
        for (size_t k = 0; k < off; k++) {
            sync_acc_add(out, ch->items[k].id);
        }
    } else {
        sync_acc_t tail;
        memset(&tail, 0, sizeof tail);
        for (size_t k = off; k < ch->n; k++) {
            sync_acc_add(&tail, ch->items[k].id);
        }
        *out = self->pre[c + 1];
        s_acc_sub(out, &tail);
    }
}

void
sync_set_acc(sync_set_t *self, size_t lo, size_t hi, sync_acc_t *out)
{
    memset(out, 0, sizeof *out);
    if (hi > self->count) {
        hi = self->count;
    }
    if (lo >= hi || !s_index(self)) {
        return;
    }
    sync_acc_t below;
    s_prefix(self, hi, out);
    s_prefix(self, lo, &below);
    s_acc_sub(out, &below);
}

void
sync_set_fp(sync_set_t *self, uint8_t fp[SYNC_FP_LEN])
{
    if (!self->fp_valid) {
        sync_acc_t acc;
        sync_set_acc(self, 0, self->count, &acc);
        sync_acc_fp(&acc, self->fp);
        self->fp_valid = true;
    }
    memcpy(fp, self->fp, SYNC_FP_LEN);
}

/* --------------------------------------------------------------- decoding */

//  Reads a bound; prev_ts is the previous bound's ts in the block.
static bool
s_get_bound(bytes_reader_t *r, uint64_t *prev_ts, sync_bound_t *b)
{
    uint64_t delta = bytes_get_varint(r);
    if (!bytes_reader_ok(r)) {
        return false;
    }
    if (delta == 0) {
        sync_bound_inf(b);
        return true;
    }
    //  ts = prev + delta − 1, below the infinity value.
    if (delta - 1 >= SYNC_BOUND_INF - *prev_ts) {
        return false;
    }
    memset(b, 0, sizeof *b);
    b->ts = *prev_ts + (delta - 1);
    b->len = bytes_get_u8(r);
    if (b->len > 32) {
        return false;
    }
    bytes_get(r, b->prefix, b->len);
    *prev_ts = b->ts;
    return bytes_reader_ok(r);
}

static bool
s_get_range(bytes_reader_t *r, uint64_t *prev_ts, sync_range_t *out)
{
    memset(out, 0, sizeof *out);
    if (!s_get_bound(r, prev_ts, &out->upper)) {
        return false;
    }
    out->mode = bytes_get_u8(r);
    switch (out->mode) {
    case SYNC_SKIP:
    case SYNC_REQ: break;
    case SYNC_FP:
        out->count = bytes_get_varint(r);
        out->fp = bytes_view(r, SYNC_FP_LEN);
        break;
    case SYNC_IDS: {
        uint64_t n = bytes_get_varint(r);
        if (n > SYNC_IDS_MAX) {
            return false;
        }
        out->n_ids = (size_t)n;
        out->ids = out->n_ids ? bytes_view(r, out->n_ids * SYNC_PREFIX_LEN) : NULL;
        break;
    }
    default: return false;
    }
    return bytes_reader_ok(r);
}

static int
s_check_block(bytes_reader_t *r)
{
    (void)bytes_view(r, 32);
    uint8_t n_hints = bytes_get_u8(r);
    if (n_hints > SYNC_HINTS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    (void)bytes_view(r, (size_t)n_hints * 32);
    uint16_t n_ranges = bytes_get_u16(r);
    if (!bytes_reader_ok(r)) {
        return PARLEY_ERR_MALFORMED;
    }
    if (n_ranges == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (n_ranges > SYNC_RANGES_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    uint64_t prev_ts = 0;
    sync_bound_t prev;
    s_bound_min(&prev);
    for (size_t i = 0; i < n_ranges; i++) {
        sync_range_t rg;
        if (!s_get_range(r, &prev_ts, &rg)) {
            return PARLEY_ERR_MALFORMED;
        }
        //  Bounds strictly increase; only the last is infinity.
        bool last = i + 1 == n_ranges;
        if (sync_bound_is_inf(&rg.upper) != last
            || (!last && sync_bound_cmp(&prev, &rg.upper) >= 0)) {
            return PARLEY_ERR_MALFORMED;
        }
        for (size_t k = 1; k < rg.n_ids; k++) {
            if (memcmp(rg.ids + (k - 1) * SYNC_PREFIX_LEN, rg.ids + k * SYNC_PREFIX_LEN,
                       SYNC_PREFIX_LEN)
                >= 0) {
                return PARLEY_ERR_MALFORMED;
            }
        }
        prev = rg.upper;
    }
    return PARLEY_OK;
}

int
sync_msg_check(const uint8_t *buf, size_t len)
{
    if (len > PARLEY_FRAME_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    bytes_reader_t r;
    bytes_reader_init(&r, buf, len);
    uint8_t flags = bytes_get_u8(&r);
    if (flags & ~(SYNC_F_OPEN | SYNC_F_DIGEST)) {
        return PARLEY_ERR_MALFORMED;
    }
    if (flags & SYNC_F_DIGEST) {
        (void)bytes_view(&r, SYNC_FP_LEN);
    }
    uint16_t n = bytes_get_u16(&r);
    if (!bytes_reader_ok(&r)) {
        return PARLEY_ERR_MALFORMED;
    }
    if (n > SYNC_BLOCKS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if ((flags & SYNC_F_DIGEST) && (n != 0 || !(flags & SYNC_F_OPEN))) {
        return PARLEY_ERR_MALFORMED;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = s_check_block(&r);
        if (rc != PARLEY_OK) {
            return rc;
        }
    }
    return bytes_reader_done(&r) ? PARLEY_OK : PARLEY_ERR_MALFORMED;
}

void
sync_msg_open(sync_msg_reader_t *rd, const uint8_t *buf, size_t len)
{
    memset(rd, 0, sizeof *rd);
    bytes_reader_init(&rd->r, buf, len);
    rd->flags = bytes_get_u8(&rd->r);
    if (rd->flags & SYNC_F_DIGEST) {
        rd->digest = bytes_view(&rd->r, SYNC_FP_LEN);
    }
    rd->n_blocks = bytes_get_u16(&rd->r);
}

bool
sync_msg_next(sync_msg_reader_t *rd, sync_block_t *out)
{
    if (rd->next >= rd->n_blocks || !bytes_reader_ok(&rd->r)) {
        return false;
    }
    memset(out, 0, sizeof *out);
    out->scope = bytes_view(&rd->r, 32);
    out->n_hints = bytes_get_u8(&rd->r);
    out->hints = out->n_hints ? bytes_view(&rd->r, out->n_hints * 32) : NULL;
    out->n_ranges = bytes_get_u16(&rd->r);
    out->ranges = rd->r.p;
    //  Walk the ranges to find the block's end (the message was checked).
    uint64_t prev_ts = 0;
    for (size_t i = 0; i < out->n_ranges; i++) {
        sync_range_t rg;
        if (!s_get_range(&rd->r, &prev_ts, &rg)) {
            return false;
        }
    }
    out->ranges_len = (size_t)(rd->r.p - out->ranges);
    rd->next++;
    return bytes_reader_ok(&rd->r);
}

void
sync_ranges_open(sync_range_reader_t *rd, const sync_block_t *blk)
{
    bytes_reader_init(&rd->r, blk->ranges, blk->ranges_len);
    rd->left = blk->n_ranges;
    rd->prev_ts = 0;
}

bool
sync_ranges_next(sync_range_reader_t *rd, sync_range_t *out)
{
    if (rd->left == 0) {
        return false;
    }
    rd->left--;
    return s_get_range(&rd->r, &rd->prev_ts, out);
}

int
sync_want_check(const uint8_t *buf, size_t len, size_t *n)
{
    bytes_reader_t r;
    bytes_reader_init(&r, buf, len);
    uint16_t count = bytes_get_u16(&r);
    if (!bytes_reader_ok(&r) || count == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (count > SYNC_WANT_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    (void)bytes_view(&r, (size_t)count * SYNC_PREFIX_LEN);
    if (!bytes_reader_done(&r)) {
        return PARLEY_ERR_MALFORMED;
    }
    *n = count;
    return PARLEY_OK;
}

/* ---------------------------------------------------------------- writing */

void
sync_writer_init(sync_writer_t *w, uint8_t *buf, size_t cap, uint8_t flags, const uint8_t *digest)
{
    memset(w, 0, sizeof *w);
    bytes_writer_init(&w->w, buf, cap);
    w->start = buf;
    w->budget = cap;
    bytes_put_u8(&w->w, PARLEY_PROTO_VERSION);
    bytes_put_u8(&w->w, FRAME_RECONCILE);
    bytes_put_u8(&w->w, flags);
    if (flags & SYNC_F_DIGEST) {
        bytes_put(&w->w, digest, SYNC_FP_LEN);
    }
    w->n_at = w->w.p;
    bytes_put_u16(&w->w, 0);
}

static size_t
s_used(const sync_writer_t *w)
{
    return (size_t)(w->w.p - w->start);
}

bool
sync_writer_room(const sync_writer_t *w, size_t need)
{
    return bytes_writer_ok(&w->w) && s_used(w) + need <= w->budget && w->n_blocks < SYNC_BLOCKS_MAX;
}

void
sync_writer_begin(sync_writer_t *w, const uint8_t scope[32], const uint8_t *hints, size_t n_hints)
{
    w->blk_at = w->w.p;
    bytes_put(&w->w, scope, 32);
    bytes_put_u8(&w->w, (uint8_t)n_hints);
    if (n_hints) {
        bytes_put(&w->w, hints, n_hints * 32);
    }
    w->nr_at = w->w.p;
    bytes_put_u16(&w->w, 0);
    w->n_ranges = 0;
    w->n_open = 0;
    w->prev_ts = 0;
    s_bound_min(&w->last);
}

static void
s_put_bound(sync_writer_t *w, const sync_bound_t *b)
{
    if (sync_bound_is_inf(b)) {
        bytes_put_varint(&w->w, 0);
    } else {
        bytes_put_varint(&w->w, b->ts - w->prev_ts + 1);
        bytes_put_u8(&w->w, b->len);
        bytes_put(&w->w, b->prefix, b->len);
        w->prev_ts = b->ts;
    }
    w->last = *b;
    w->n_ranges++;
}

//  Starts a range [lower, upper) of mode: a SKIP first covers any gap.
static void
s_range(sync_writer_t *w, const sync_bound_t *lower, const sync_bound_t *upper, int mode)
{
    if (sync_bound_cmp(&w->last, lower) != 0) {
        s_put_bound(w, lower);
        bytes_put_u8(&w->w, SYNC_SKIP);
    }
    s_put_bound(w, upper);
    bytes_put_u8(&w->w, (uint8_t)mode);
    if (mode != SYNC_SKIP) {
        w->n_open++;
    }
}

void
sync_writer_fp(sync_writer_t *w, const sync_bound_t *lower, const sync_bound_t *upper,
               const sync_acc_t *acc)
{
    uint8_t fp[SYNC_FP_LEN];
    sync_acc_fp(acc, fp);
    s_range(w, lower, upper, SYNC_FP);
    bytes_put_varint(&w->w, acc->count);
    bytes_put(&w->w, fp, sizeof fp);
}

static int
s_prefix_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SYNC_PREFIX_LEN);
}

void
sync_writer_ids(sync_writer_t *w, const sync_bound_t *lower, const sync_bound_t *upper,
                sync_set_t *set, size_t lo, size_t hi)
{
    size_t n = hi - lo;
    s_range(w, lower, upper, SYNC_IDS);
    bytes_put_varint(&w->w, n);
    //  Ascending prefixes: written in place, then sorted there.
    uint8_t *at = w->w.p;
    for (size_t i = lo; i < hi; i++) {
        const sync_item_t *it = sync_set_at(set, i);
        bytes_put(&w->w, it ? it->id : (const uint8_t[SYNC_PREFIX_LEN]){ 0 }, SYNC_PREFIX_LEN);
    }
    if (bytes_writer_ok(&w->w) && n > 1) {
        qsort(at, n, SYNC_PREFIX_LEN, s_prefix_cmp);
    }
}

void
sync_writer_req(sync_writer_t *w, const sync_bound_t *lower, const sync_bound_t *upper)
{
    s_range(w, lower, upper, SYNC_REQ);
}

void
sync_writer_end(sync_writer_t *w)
{
    if (!w->blk_at) {
        return;
    }
    if (w->n_open == 0) {
        w->w.p = w->blk_at; // nothing open: the block is not sent
        w->blk_at = NULL;
        return;
    }
    if (!sync_bound_is_inf(&w->last)) {
        sync_bound_t inf;
        sync_bound_inf(&inf);
        s_put_bound(w, &inf);
        bytes_put_u8(&w->w, SYNC_SKIP);
    }
    if (bytes_writer_ok(&w->w)) {
        w->nr_at[0] = (uint8_t)(w->n_ranges >> 8);
        w->nr_at[1] = (uint8_t)w->n_ranges;
    }
    w->n_blocks++;
    w->blk_at = NULL;
}

size_t
sync_writer_blocks(const sync_writer_t *w)
{
    return w->n_blocks;
}

size_t
sync_writer_finish(sync_writer_t *w)
{
    if (!bytes_writer_ok(&w->w)) {
        return 0;
    }
    w->n_at[0] = (uint8_t)(w->n_blocks >> 8);
    w->n_at[1] = (uint8_t)w->n_blocks;
    return s_used(w);
}

/* ----------------------------------------------------------------- engine */

void
sync_open_block(sync_writer_t *w, sync_set_t *set, const uint8_t scope[32], const uint8_t *hints,
                size_t n_hints)
{
    sync_bound_t lower, upper;
    s_bound_min(&lower);
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
        s_bound_between(sync_set_at(set, hi - tail - 1), sync_set_at(set, hi - tail), &mid);
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
    if (!s_index(set)) {
        return;
    }
    s_prefix(set, lo, &below);
    for (size_t b = 0; b < k; b++) {
        size_t i1 = lo + m * (b + 1) / k;
        sync_bound_t to;
        if (b + 1 == k) {
            to = *upper;
        } else {
            s_bound_between(sync_set_at(set, i1 - 1), sync_set_at(set, i1), &to);
        }
        sync_acc_t upto, acc;
        s_prefix(set, i1, &upto);
        acc = upto;
        s_acc_sub(&acc, &below);
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
    s_bound_min(&lower);
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

/* ----------------------------------------------------------------- digest */

void
sync_digest_init(sync_digest_t *d)
{
    crypto_generichash_init(&d->h, NULL, 0, SYNC_FP_LEN);
}

void
sync_digest_add(sync_digest_t *d, const uint8_t scope[32], const uint8_t fp[SYNC_FP_LEN])
{
    crypto_generichash_update(&d->h, scope, 32);
    crypto_generichash_update(&d->h, fp, SYNC_FP_LEN);
}

void
sync_digest_final(sync_digest_t *d, uint8_t out[SYNC_FP_LEN])
{
    crypto_generichash_final(&d->h, out, SYNC_FP_LEN);
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

static void
s_t_set(void)
{
    //  Random inserts and removes against a sorted reference array.
    sync_set_t *s = sync_set_new();
    CHECK(s);
    size_t n = 5000;
    sync_item_t *ref = calloc(n, sizeof *ref);
    CHECK(ref);
    for (size_t i = 0; i < n; i++) {
        s_t_item(300, &ref[i]);
        CHECK(sync_set_insert(s, ref[i].ts, ref[i].id) == PARLEY_OK);
    }
    CHECK(sync_set_insert(s, ref[9].ts, ref[9].id) == PARLEY_ERR_DUPLICATE);
    qsort(ref, n, sizeof *ref, (int (*)(const void *, const void *))sync_item_cmp);
    CHECK(sync_set_count(s) == n);
    sync_acc_t whole, manual, left, right;
    memset(&manual, 0, sizeof manual);
    for (size_t i = 0; i < n; i++) {
        CHECK(sync_item_cmp(sync_set_at(s, i), &ref[i]) == 0);
        sync_acc_add(&manual, ref[i].id);
    }
    sync_set_acc(s, 0, n, &whole);
    CHECK(memcmp(&whole, &manual, sizeof whole) == 0);
    for (size_t t = 0; t < 200; t++) {
        size_t lo = randombytes_uniform((uint32_t)n), hi = randombytes_uniform((uint32_t)n + 1);
        if (lo > hi) {
            size_t x = lo;
            lo = hi;
            hi = x;
        }
        sync_acc_t r, m;
        memset(&m, 0, sizeof m);
        for (size_t i = lo; i < hi; i++) {
            sync_acc_add(&m, ref[i].id);
        }
        sync_set_acc(s, lo, hi, &r);
        CHECK(memcmp(&r, &m, sizeof r) == 0);
        //  The bound between two neighbours separates them.
        if (lo > 0 && lo < n) {
            sync_bound_t b;
            s_bound_between(&ref[lo - 1], &ref[lo], &b);
            CHECK(sync_set_lower(s, &b) == lo);
        }
    }
    //  Additivity: left + right = whole.
    sync_set_acc(s, 0, n / 3, &left);
    sync_set_acc(s, n / 3, n, &right);
    s_acc_merge(&left, &right);
    CHECK(memcmp(&left, &whole, sizeof left) == 0);
    for (size_t i = 0; i < n; i += 2) {
        CHECK(sync_set_remove(s, ref[i].ts, ref[i].id) == PARLEY_OK);
    }
    CHECK(sync_set_remove(s, ref[0].ts, ref[0].id) == PARLEY_ERR_NOTFOUND);
    CHECK(sync_set_count(s) == n / 2);
    for (size_t i = 1; i < n; i += 2) {
        CHECK(sync_item_cmp(sync_set_at(s, i / 2), &ref[i]) == 0);
    }
    free(ref);
    sync_set_destroy(&s);
    sync_set_destroy(&s);
}

static void
s_t_decoder(void)
{
    //  A valid message with every mode, then each truncation and each
    //  corruption of structure is refused.
    static uint8_t buf[4096];
    sync_set_t *s = sync_set_new();
    CHECK(s);
    for (size_t i = 0; i < 100; i++) {
        sync_item_t it;
        s_t_item(50, &it);
        CHECK(sync_set_insert(s, it.ts, it.id) == PARLEY_OK);
    }
    sync_writer_t w;
    sync_writer_init(&w, buf, sizeof buf, SYNC_F_OPEN, NULL);
    const uint8_t scope[32] = { 1 }, hints[64] = { 2 };
    sync_writer_begin(&w, scope, hints, 2);
    sync_bound_t b0, b1, b2, b3;
    s_bound_min(&b0);
    s_bound_between(sync_set_at(s, 9), sync_set_at(s, 10), &b1);
    s_bound_between(sync_set_at(s, 49), sync_set_at(s, 50), &b2);
    s_bound_between(sync_set_at(s, 79), sync_set_at(s, 80), &b3);
    sync_acc_t acc;
    sync_set_acc(s, 0, 10, &acc);
    sync_writer_fp(&w, &b0, &b1, &acc);
    sync_writer_ids(&w, &b1, &b2, s, 10, 50);
    sync_writer_req(&w, &b2, &b3);
    sync_writer_end(&w);
    size_t len = sync_writer_finish(&w);
    CHECK(len > 0 && buf[1] == FRAME_RECONCILE);
    CHECK(sync_msg_check(buf + 2, len - 2) == PARLEY_OK);
    sync_msg_reader_t rd;
    sync_msg_open(&rd, buf + 2, len - 2);
    sync_block_t blk;
    CHECK(sync_msg_next(&rd, &blk) && blk.n_hints == 2 && blk.n_ranges == 4);
    CHECK(!sync_msg_next(&rd, &blk));
    sync_range_reader_t rr;
    sync_ranges_open(&rr, &blk);
    sync_range_t rg;
    CHECK(sync_ranges_next(&rr, &rg) && rg.mode == SYNC_FP && rg.count == 10);
    CHECK(sync_bound_cmp(&rg.upper, &b1) == 0);
    CHECK(sync_ranges_next(&rr, &rg) && rg.mode == SYNC_IDS && rg.n_ids == 40);
    CHECK(sync_ranges_next(&rr, &rg) && rg.mode == SYNC_REQ);
    CHECK(sync_ranges_next(&rr, &rg) && rg.mode == SYNC_SKIP && sync_bound_is_inf(&rg.upper));
    CHECK(!sync_ranges_next(&rr, &rg));
    for (size_t n = 0; n < len - 2; n++) {
        CHECK(sync_msg_check(buf + 2, n) != PARLEY_OK);
    }
    uint8_t bad[4096];
    memcpy(bad, buf, len);
    bad[2] = 0x80; // unknown flag
    CHECK(sync_msg_check(bad + 2, len - 2) == PARLEY_ERR_MALFORMED);
    memcpy(bad, buf, len);
    bad[2 + 3 + 32] = 3; // three hints
    CHECK(sync_msg_check(bad + 2, len - 2) != PARLEY_OK);
    //  Swapped id order inside the IDS list.
    memcpy(bad, buf, len);
    const uint8_t *ids = rr.r.p; // past the end: find the list by re-reading
    (void)ids;
    sync_ranges_open(&rr, &blk);
    CHECK(sync_ranges_next(&rr, &rg) && sync_ranges_next(&rr, &rg));
    size_t off = (size_t)(rg.ids - buf);
    memcpy(bad + off, rg.ids + SYNC_PREFIX_LEN, SYNC_PREFIX_LEN);
    memcpy(bad + off + SYNC_PREFIX_LEN, rg.ids, SYNC_PREFIX_LEN);
    CHECK(sync_msg_check(bad + 2, len - 2) == PARLEY_ERR_MALFORMED);
    //  A block whose bounds go backwards, and one without an infinite end.
    uint8_t m[64];
    bytes_writer_t bw;
    bytes_writer_init(&bw, m, sizeof m);
    bytes_put_u8(&bw, 0);
    bytes_put_u16(&bw, 1);
    bytes_put(&bw, scope, 32);
    bytes_put_u8(&bw, 0);
    bytes_put_u16(&bw, 2);
    bytes_put_varint(&bw, 5); // ts 4
    bytes_put_u8(&bw, 0);
    bytes_put_u8(&bw, SYNC_SKIP);
    bytes_put_varint(&bw, 1); // ts 4 again, same bound
    bytes_put_u8(&bw, 0);
    bytes_put_u8(&bw, SYNC_SKIP);
    CHECK(bytes_writer_ok(&bw));
    CHECK(sync_msg_check(m, (size_t)(bw.p - m)) == PARLEY_ERR_MALFORMED);
    //  WANT frames.
    size_t n = 0;
    uint8_t want[2 + 2 * SYNC_PREFIX_LEN] = { 0, 2 };
    CHECK(sync_want_check(want, sizeof want, &n) == PARLEY_OK && n == 2);
    CHECK(sync_want_check(want, sizeof want - 1, &n) == PARLEY_ERR_MALFORMED);
    want[1] = 0;
    CHECK(sync_want_check(want, 2, &n) == PARLEY_ERR_MALFORMED);
    sync_set_destroy(&s);
}

void
sync_test(bool verbose)
{
    if (verbose) {
        printf(" * sync: set, fingerprints, codec, reconciliation to equality\n");
    }
    s_t_set();
    s_t_decoder();
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
