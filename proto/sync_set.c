/*  proto/sync_set.c — items, bounds, accumulators and fingerprints, and
 *  the order-statistics set behind reconciliation (proto/SPEC.md §15).
 *
 *  Owns the set's chunks and its two index arrays; nothing else. The set
 *  is a list of sorted chunks of at most S_CHUNK_MAX items, each chunk with
 *  its own accumulator. Index lookups and range accumulators use two arrays
 *  rebuilt lazily after a change: the index of each chunk's first item and
 *  the accumulator of everything before each chunk. A range's accumulator
 *  is then prefix[c_hi] − prefix[c_lo + 1] plus two partial chunks.
 *  Loading a log in order appends to the last chunk (no shifting).
 *
 *  Invariants: chunks are non-empty and in ascending item order, items are
 *  unique, no item has ts SYNC_BOUND_INF; each chunk's accumulator sums its
 *  items; when not dirty, first[] and pre[] describe the chunks as they are.
 */
#include "sync_set.h"

#include <stdlib.h>
#include <string.h>

#include "selftest.h"

#define S_CHUNK_MAX 256u

typedef struct {
    size_t n;                       /* items held, 1..S_CHUNK_MAX */
    sync_acc_t acc;                 /* their accumulator */
    sync_item_t items[S_CHUNK_MAX]; /* ascending */
} s_chunk_t;

struct _sync_set_t {
    s_chunk_t **chunks;      /* ascending; each owned */
    size_t n_chunks;         /* chunks in use */
    size_t cap_chunks;       /* capacity of chunks[] */
    size_t count;            /* items in all chunks */
    bool dirty;              /* first[] and pre[] need rebuilding */
    size_t *first;           /* n_chunks + 1: index of each chunk's first item */
    sync_acc_t *pre;         /* n_chunks + 1: accumulator before each chunk */
    size_t cap_index;        /* capacity of first[] and pre[] */
    size_t hint;             /* chunk of the last index lookup: walks in order are O(1) */
    bool fp_valid;           /* fp holds the whole set's fingerprint */
    uint8_t fp[SYNC_FP_LEN]; /* cached fingerprint of the whole set */
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

void
sync_acc_sub(sync_acc_t *acc, const sync_acc_t *b)
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
    sync_acc_sub(acc, &one);
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

void
sync_bound_min(sync_bound_t *b)
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

void
sync_bound_between(const sync_item_t *prev, const sync_item_t *next, sync_bound_t *out)
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
        sync_acc_sub(out, &tail);
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
    sync_acc_sub(out, &below);
}

int
sync_set_acc_upto(sync_set_t *self, size_t i, sync_acc_t *out)
{
    memset(out, 0, sizeof *out);
    if (!s_index(self)) {
        return PARLEY_ERR_NOMEM;
    }
    s_prefix(self, i, out);
    return PARLEY_OK;
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

static void
s_t_random(void)
{
    //  Random inserts and removes against a sorted reference array.
    sync_set_t *s = sync_set_new();
    CHECK(s);
    size_t n = 5000;
    sync_item_t *ref = calloc(n, sizeof *ref);
    CHECK(ref);
    for (size_t i = 0; i < n; i++) {
        ref[i].ts = 1000 + randombytes_uniform(300);
        randombytes_buf(ref[i].id, 32);
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
            sync_bound_between(&ref[lo - 1], &ref[lo], &b);
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

//  Bounds at their edges: the minimum, infinity, and the shortest bound
//  between two neighbours with different and with equal timestamps.
static void
s_t_bounds(void)
{
    sync_bound_t min, inf, b;
    sync_bound_min(&min);
    sync_bound_inf(&inf);
    CHECK(!sync_bound_is_inf(&min) && sync_bound_is_inf(&inf));
    CHECK(sync_bound_cmp(&min, &inf) < 0 && sync_bound_cmp(&inf, &min) > 0);
    sync_item_t a = { .ts = 5, .id = { 0x12, 0x34, 0x56 } };
    sync_item_t c = { .ts = 5, .id = { 0x12, 0x35 } };
    sync_item_t later = { .ts = 9, .id = { 0 } };
    CHECK(!sync_item_below(&a, &min) && sync_item_below(&a, &inf));
    sync_bound_between(&a, &later, &b);
    CHECK(b.ts == 9 && b.len == 0); // ts alone separates them
    CHECK(sync_item_below(&a, &b) && !sync_item_below(&later, &b));
    sync_bound_between(&a, &c, &b);
    CHECK(b.ts == 5 && b.len == 2 && b.prefix[0] == 0x12 && b.prefix[1] == 0x35);
    CHECK(sync_item_below(&a, &b) && !sync_item_below(&c, &b));
    //  Zero padding: a prefix with trailing zeros is the same bound.
    sync_bound_t padded = b;
    padded.len = 3;
    CHECK(sync_bound_cmp(&b, &padded) == 0);
}

//  Prefix accumulators, the cached fingerprint, the reserved ts, and the
//  digest over scopes.
static void
s_t_fingerprints(void)
{
    sync_set_t *s = sync_set_new();
    CHECK(s);
    uint8_t fp[SYNC_FP_LEN], fp0[SYNC_FP_LEN], want[SYNC_FP_LEN];
    sync_acc_t acc;
    memset(&acc, 0, sizeof acc);
    sync_acc_fp(&acc, want);
    sync_set_fp(s, fp0);
    CHECK(memcmp(fp0, want, SYNC_FP_LEN) == 0); // empty set: the zero accumulator
    uint8_t id[32] = { 1 };
    CHECK(sync_set_insert(s, SYNC_BOUND_INF, id) == PARLEY_ERR_LIMIT);
    for (size_t i = 0; i < 700; i++) {
        randombytes_buf(id, sizeof id);
        CHECK(sync_set_insert(s, 1000 + i / 3, id) == PARLEY_OK);
    }
    for (size_t i = 0; i <= 700; i += 7) {
        sync_acc_t upto, range;
        CHECK(sync_set_acc_upto(s, i, &upto) == PARLEY_OK);
        sync_set_acc(s, 0, i, &range);
        CHECK(memcmp(&upto, &range, sizeof upto) == 0 && upto.count == i);
    }
    sync_set_acc(s, 0, 700, &acc);
    sync_acc_fp(&acc, want);
    sync_set_fp(s, fp);
    CHECK(memcmp(fp, want, SYNC_FP_LEN) == 0);
    CHECK(sync_set_remove(s, sync_set_at(s, 0)->ts, sync_set_at(s, 0)->id) == PARLEY_OK);
    sync_set_fp(s, fp);
    CHECK(memcmp(fp, want, SYNC_FP_LEN) != 0); // the cache follows a change
    sync_set_destroy(&s);

    //  digest = BLAKE2b-128(scope1 || fp1 || scope2 || fp2).
    uint8_t in[2 * (32 + SYNC_FP_LEN)];
    memset(in, 0xa1, 32);
    memcpy(in + 32, fp0, SYNC_FP_LEN);
    memset(in + 48, 0xb2, 32);
    memcpy(in + 80, want, SYNC_FP_LEN);
    crypto_generichash(want, SYNC_FP_LEN, in, sizeof in, NULL, 0);
    sync_digest_t d;
    sync_digest_init(&d);
    sync_digest_add(&d, in, in + 32);
    sync_digest_add(&d, in + 48, in + 80);
    sync_digest_final(&d, fp);
    CHECK(memcmp(fp, want, SYNC_FP_LEN) == 0);
}

void
sync_set_test(bool verbose)
{
    if (verbose) {
        printf(" * sync_set: order, bounds, accumulators, fingerprints, digest\n");
    }
    s_t_bounds();
    s_t_random();
    s_t_fingerprints();
}
