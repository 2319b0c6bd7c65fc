/*  node/replica.c — replication (see replica.h; protocol in SPEC §15–16).
 *
 *  The scope table is a sorted array of scopes this node replicates, each
 *  with the first two authors seen (a DM scope has two parties) and, once
 *  a round needs it, the reconciliation set loaded from the store. A member
 *  replicates the scopes it is a party to; a relay every scope.
 *
 *  A round, from the side with the smaller key (or whoever's timer fires):
 *
 *      OPEN ──► answer + blocks for scopes the OPEN missed ──► answer ──► ...
 *      ... ──► a message with no blocks ends it
 *
 *  Relay to relay (holding more than S_DIGEST_MIN scopes), the OPEN is a
 *  single digest over every (scope, fp): equal digests end the round in one
 *  round trip; else the answer is a full OPEN.
 *  A relay's reply to a member's OPEN adds, once per connection and then for
 *  scopes changed since, a block per other scope with its authors as hints:
 *  the member recognises its own DM scopes by them (it computes the scope
 *  with each hinted author) even when it never met that author.
 *
 *  Whatever a round finds missing on the other side becomes a queued range
 *  (or a WANT from the other side); replica_pump() streams them in ENVELOPES
 *  batches after each commit, at most S_PUMP_BATCHES per link per iteration,
 *  stopping at the first frame ZeroMQ will not take. Every queue is bounded;
 *  what does not fit is dropped, and the next round finds it again.
 */
#include "node_internal.h"

#include "../proto/b32.h"
#include "../proto/sync.h"
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define S_OWED_MAX 1024u      /* ranges queued per link */
#define S_WANTS_IN_MAX 65536u /* prefixes a peer may have outstanding */
#define S_WANTS_OUT_MAX 16384u
#define S_OFFERED_MAX 65536u
#define S_PUMP_BATCHES 16u  /* ENVELOPES frames per link per iteration */
#define S_ROUND_MSGS_MAX 96 /* messages one exchange may take before we give up on the peer */
#define S_ROUND_STALE_MS 60000u
#define S_BAD_WINDOW_MS 60000u
#define S_BAD_MAX 512u /* weight of bad input per window before a ban */
#define S_EXPIRE_BATCH 1000u
#define S_DMC_MAX 65536u
#define S_FRESH_PER_MSG 256u /* hinted authors never seen, checked per message (~12 ms) */
#define S_DIGEST_MIN 8u      /* relays holding more scopes open with a digest */

typedef struct {
    uint8_t scope[32];
    sync_set_t *set; /* NULL until a round needs it */
    uint8_t authors[2][32];
    size_t n_authors;
    bool mine;           /* we are a party to it */
    uint64_t changed_ms; /* last envelope stored */
} s_scope_t;

typedef struct {
    uint8_t author[32];
    uint8_t scope[32]; /* our DM scope with author */
    bool used;
} s_dmc_t;

struct replica {
    s_scope_t **scopes; /* sorted by scope */
    size_t n_scopes, cap_scopes;
    s_dmc_t *dmc; /* hash table (open addressing, SipHash of the author), cap_dmc a power of 2 */
    size_t n_dmc, cap_dmc;
    uint8_t dmc_key[crypto_shorthash_KEYBYTES];
    size_t fresh_left; /* X25519s one received message may still cost (hints) */
    uint8_t *buf;      /* PARLEY_FRAME_MAX: the message being written */
    uint64_t next_expire;
    /* counters for `status` */
    uint64_t rounds_started, rounds_ended, msgs_in, msgs_out, bytes_in, bytes_out;
    uint64_t wants_sent, envelopes_streamed, expired, digests_equal;
    uint64_t last_round_ms;    /* duration of the last round that ended */
    uint64_t last_round_msgs;  /* messages it took, both ways */
    uint64_t last_round_bytes; /* RECONCILE and WANT bytes, both ways */
    uint64_t round_bytes_mark; /* bytes_in + bytes_out when the current round began */
    uint64_t round_msgs_mark;  /* msgs_in + msgs_out then */
};

/* ------------------------------------------------------------ the table */

static int
s_scope_cmp(const void *key, const void *elem)
{
    return memcmp(key, (*(s_scope_t *const *)elem)->scope, 32);
}

static s_scope_t *
s_scope_find(replica_t *self, const uint8_t scope[32])
{
    if (self->n_scopes == 0) {
        return NULL; // bsearch may not be given a NULL array
    }
    s_scope_t **p = bsearch(scope, self->scopes, self->n_scopes, sizeof *self->scopes, s_scope_cmp);
    return p ? *p : NULL;
}

static s_scope_t *
s_scope_get(replica_t *self, const uint8_t scope[32])
{
    s_scope_t *s = s_scope_find(self, scope);
    if (s) {
        return s;
    }
    if (self->n_scopes == self->cap_scopes) {
        size_t cap = self->cap_scopes ? 2 * self->cap_scopes : 64;
        s_scope_t **grown = realloc(self->scopes, cap * sizeof *grown);
        if (!grown) {
            return NULL;
        }
        self->scopes = grown;
        self->cap_scopes = cap;
    }
    s = calloc(1, sizeof *s);
    if (!s) {
        return NULL;
    }
    memcpy(s->scope, scope, 32);
    size_t at = 0;
    while (at < self->n_scopes && memcmp(self->scopes[at]->scope, scope, 32) < 0) {
        at++; // linear: the table changes rarely, and lookups are bsearch
    }
    memmove(self->scopes + at + 1, self->scopes + at, (self->n_scopes - at) * sizeof *self->scopes);
    self->scopes[at] = s;
    self->n_scopes++;
    return s;
}

static void
s_scope_author(s_scope_t *s, const uint8_t author[32])
{
    for (size_t i = 0; i < s->n_authors; i++) {
        if (memcmp(s->authors[i], author, 32) == 0) {
            return;
        }
    }
    if (s->n_authors < 2) {
        memcpy(s->authors[s->n_authors++], author, 32);
    }
}

//  The set of a scope, loaded from the store the first time; NULL on error.
static sync_set_t *
s_scope_set(node_t *node, s_scope_t *s)
{
    if (s->set) {
        return s->set;
    }
    sync_set_t *set = sync_set_new();
    if (!set) {
        return NULL;
    }
    int rc = store_scope_load(node->store, s->scope, set);
    if (rc != PARLEY_OK) {
        node_log(node, 0, "cannot load a scope for sync: %s", parley_strerror(rc));
        sync_set_destroy(&set);
        return NULL;
    }
    s->set = set;
    return set;
}

//  The slot of author in the cache: its entry, or the empty slot it goes in.
static s_dmc_t *
s_dmc_slot(s_dmc_t *table, size_t cap, const uint8_t key[crypto_shorthash_KEYBYTES],
           const uint8_t author[32])
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, author, 32, key); // keyed: peers cannot pick colliding keys
    uint64_t v = 0;
    memcpy(&v, h, sizeof v);
    for (size_t i = (size_t)v & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (!table[i].used || memcmp(table[i].author, author, 32) == 0) {
            return &table[i];
        }
    }
}

static void
s_dmc_put(replica_t *self, const uint8_t author[32], const uint8_t scope[32])
{
    if (self->n_dmc >= S_DMC_MAX) {
        return; // full: computed again when asked
    }
    if (2 * (self->n_dmc + 1) > self->cap_dmc) {
        size_t cap = self->cap_dmc ? 2 * self->cap_dmc : 1024;
        s_dmc_t *t = calloc(cap, sizeof *t);
        if (!t) {
            return;
        }
        for (size_t i = 0; i < self->cap_dmc; i++) {
            if (self->dmc[i].used) {
                *s_dmc_slot(t, cap, self->dmc_key, self->dmc[i].author) = self->dmc[i];
            }
        }
        free(self->dmc);
        self->dmc = t;
        self->cap_dmc = cap;
    }
    s_dmc_t *e = s_dmc_slot(self->dmc, self->cap_dmc, self->dmc_key, author);
    if (!e->used) {
        memcpy(e->author, author, 32);
        memcpy(e->scope, scope, 32);
        e->used = true;
        self->n_dmc++;
    }
}

//  Our DM scope with author when it costs nothing: a link or the cache.
static bool
s_dm_known(node_t *node, const uint8_t author[32], uint8_t scope[32])
{
    replica_t *self = node->replica;
    link_t *link = node_link_find(node, author);
    if (link) {
        memcpy(scope, link->scope, 32);
        return true;
    }
    if (self->cap_dmc == 0) {
        return false;
    }
    const s_dmc_t *e = s_dmc_slot(self->dmc, self->cap_dmc, self->dmc_key, author);
    if (e->used) {
        memcpy(scope, e->scope, 32);
    }
    return e->used;
}

//  Our DM scope with author: from its link, the cache, or one X25519.
bool
replica_dm_scope(node_t *node, const uint8_t author[32], uint8_t scope[32])
{
    if (sodium_memcmp(author, identity_ed_pk(node->id), 32) == 0) {
        return false;
    }
    if (s_dm_known(node, author, scope)) {
        return true;
    }
    if (dm_scope(node->id, author, scope) != PARLEY_OK) {
        return false; // a key that is no valid point: no scope with it
    }
    s_dmc_put(node->replica, author, scope);
    return true;
}

//  Whether we are a party to scope, judged by one of its authors.
static bool
s_party(node_t *node, const uint8_t scope[32], const uint8_t author[32])
{
    uint8_t mine[32];
    return replica_dm_scope(node, author, mine) && sodium_memcmp(mine, scope, 32) == 0;
}

static int
s_load_fn(const uint8_t scope[32], const uint8_t author[32], void *arg)
{
    node_t *node = arg;
    s_scope_t *s = s_scope_get(node->replica, scope);
    if (!s) {
        return -1;
    }
    s_scope_author(s, author);
    if (!s->mine) {
        s->mine = sodium_memcmp(author, identity_ed_pk(node->id), 32) == 0
                  || s_party(node, scope, author);
    }
    return 0;
}

int
replica_new(node_t *node, replica_t **out)
{
    replica_t *self = calloc(1, sizeof *self);
    if (!self || !(self->buf = malloc(PARLEY_FRAME_MAX))) {
        free(self);
        return PARLEY_ERR_NOMEM;
    }
    randombytes_buf(self->dmc_key, sizeof self->dmc_key);
    node->replica = self;
    int rc = store_scope_authors(node->store, s_load_fn, node);
    if (rc != PARLEY_OK) {
        node->replica = NULL;
        replica_destroy(&self);
        return rc;
    }
    *out = self;
    return PARLEY_OK;
}

void
replica_destroy(replica_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    replica_t *self = *self_p;
    for (size_t i = 0; i < self->n_scopes; i++) {
        sync_set_destroy(&self->scopes[i]->set);
        free(self->scopes[i]);
    }
    free(self->scopes);
    free(self->dmc);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

void
replica_mine(node_t *node, const uint8_t scope[32])
{
    if (!node->replica) {
        return;
    }
    s_scope_t *s = s_scope_get(node->replica, scope);
    if (s) {
        s->mine = true;
    }
}

void
replica_rollback(node_t *node)
{
    replica_t *self = node->replica;
    for (size_t i = 0; self && i < self->n_scopes; i++) {
        sync_set_destroy(&self->scopes[i]->set); // reloaded from the store when needed
    }
}

/* -------------------------------------------------------------- policy */

bool
replica_accepts(node_t *node, const envelope_t *env)
{
    if (node_is_relay(node)) {
        return true;
    }
    s_scope_t *s = s_scope_find(node->replica, env->scope);
    if (s && s->mine) {
        return true;
    }
    //  A DM from someone we never met (through a relay): its scope tells.
    if (s_party(node, env->scope, env->author)) {
        replica_mine(node, env->scope);
        return true;
    }
    return false;
}

static int
s_raw_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static bool
s_offered_has(const link_t *link, const uint8_t scope[32])
{
    return link->n_offered && bsearch(scope, link->offered, link->n_offered, 32, s_raw_cmp);
}

static void
s_offered_add(link_t *link, const uint8_t scope[32])
{
    if (s_offered_has(link, scope) || link->n_offered >= S_OFFERED_MAX) {
        return;
    }
    uint8_t(*grown)[32] = realloc(link->offered, (link->n_offered + 1) * 32);
    if (!grown) {
        return;
    }
    link->offered = grown;
    size_t at = link->n_offered;
    while (at > 0 && memcmp(link->offered[at - 1], scope, 32) > 0) {
        at--;
    }
    memmove(link->offered + at + 1, link->offered + at, (link->n_offered - at) * 32);
    memcpy(link->offered[at], scope, 32);
    link->n_offered++;
}

//  Whether link replicates scope s as far as we know: a relay does; a member
//  does when it offered it, wrote in it, or it is our DM scope with it.
static bool
s_link_wants(const link_t *link, const s_scope_t *s)
{
    if (link->relay || s_offered_has(link, s->scope)) {
        return true;
    }
    for (size_t i = 0; i < s->n_authors; i++) {
        if (memcmp(s->authors[i], link->pk, 32) == 0) {
            return true;
        }
    }
    return memcmp(link->scope, s->scope, 32) == 0;
}

void
replica_stored(node_t *node, link_t *from, const envelope_t *env, const uint8_t id[32])
{
    replica_t *self = node->replica;
    s_scope_t *s = s_scope_get(self, env->scope);
    if (!s) {
        return; // out of memory: the next round loads it from the store
    }
    s_scope_author(s, env->author);
    s->changed_ms = node_now_ms();
    if (s->set) {
        int rc = sync_set_insert(s->set, env->ts_ms, id);
        if (rc != PARLEY_OK && rc != PARLEY_ERR_DUPLICATE) {
            sync_set_destroy(&s->set); // reloaded when next needed
        }
    }
    for (size_t i = 0; i < node->n_links; i++) {
        link_t *l = node->links[i];
        if (l == from || l->connected_since == 0 || memcmp(l->pk, env->author, 32) == 0
            || !s_link_wants(l, s)) {
            continue;
        }
        if (l->n_push < NODE_PUSH_MAX) {
            memcpy(l->push[l->n_push++], id, 32);
        }
    }
}

/* -------------------------------------------------------------- rounds */

static bool
s_initiator(node_t *node, const link_t *link)
{
    return memcmp(identity_ed_pk(node->id), link->pk, 32) < 0;
}

//  Whether we offer scope s to link in an OPEN; *hint when it goes with its
//  authors as hints (a relay telling a member about scopes it may be in).
static bool
s_offer(node_t *node, const link_t *link, const s_scope_t *s, bool *hint)
{
    *hint = false;
    if (!node_is_relay(node)) {
        return s->mine && (link->relay || s_link_wants(link, s));
    }
    if (link->relay || s_link_wants(link, s)) {
        return true;
    }
    if (s->n_authors > 0 && (link->hinted_ms == 0 || s->changed_ms > link->hinted_ms)) {
        *hint = true;
        return true;
    }
    return false;
}

//  Writes an opening block for every scope we offer link that is not in
//  listed (sorted, n_listed scopes).
static void
s_write_offers(node_t *node, link_t *link, sync_writer_t *w, const uint8_t (*listed)[32],
               size_t n_listed)
{
    replica_t *self = node->replica;
    bool hinted = false;
    for (size_t i = 0; i < self->n_scopes; i++) {
        s_scope_t *s = self->scopes[i];
        bool hint = false;
        if ((n_listed && bsearch(s->scope, listed, n_listed, 32, s_raw_cmp))
            || !s_offer(node, link, s, &hint)) {
            continue;
        }
        sync_set_t *set = s_scope_set(node, s);
        if (!set) {
            continue;
        }
        if (!sync_writer_room(w, 200 + SYNC_LIST_MAX * SYNC_PREFIX_LEN)) {
            return; // the rest goes in a later round
        }
        sync_open_block(w, set, s->scope, hint ? s->authors[0] : NULL, hint ? s->n_authors : 0);
        hinted = hinted || hint;
    }
    if (hinted || node_is_relay(node)) {
        link->hinted_ms = node_now_ms();
    }
}

//  Digest over every non-empty scope we hold, in scope order.
static bool
s_digest(node_t *node, uint8_t out[SYNC_FP_LEN])
{
    replica_t *self = node->replica;
    sync_digest_t d;
    sync_digest_init(&d);
    for (size_t i = 0; i < self->n_scopes; i++) {
        sync_set_t *set = s_scope_set(node, self->scopes[i]);
        if (!set) {
            return false;
        }
        if (sync_set_count(set) > 0) {
            uint8_t fp[SYNC_FP_LEN];
            sync_set_fp(set, fp);
            sync_digest_add(&d, self->scopes[i]->scope, fp);
        }
    }
    sync_digest_final(&d, out);
    return true;
}

static void
s_send_msg(node_t *node, link_t *link, sync_writer_t *w)
{
    replica_t *self = node->replica;
    size_t len = sync_writer_finish(w);
    if (len > 0 && node_link_send(node, link, self->buf, len)) {
        self->msgs_out++;
        self->bytes_out += len;
    }
}

static void
s_send_wants(node_t *node, link_t *link)
{
    replica_t *self = node->replica;
    for (size_t at = 0; at < link->n_wants_out; at += SYNC_WANT_MAX) {
        size_t n = link->n_wants_out - at;
        n = n > SYNC_WANT_MAX ? SYNC_WANT_MAX : n;
        size_t len = 0;
        if (frame_encode_want(link->wants_out[at], n, self->buf, PARLEY_FRAME_MAX, &len)
                == PARLEY_OK
            && node_link_send(node, link, self->buf, len)) {
            self->wants_sent += n;
            self->bytes_out += len;
        }
    }
    link->n_wants_out = 0;
}

static void
s_open_round(node_t *node, link_t *link, uint64_t now)
{
    replica_t *self = node->replica;
    sync_writer_t w;
    uint8_t digest[SYNC_FP_LEN];
    //  Relay to relay with many scopes: one digest (an in-sync pair agrees in
    //  one round trip of a few bytes); with few, the blocks themselves.
    if (node_is_relay(node) && link->relay && self->n_scopes > S_DIGEST_MIN
        && s_digest(node, digest)) {
        sync_writer_init(&w, self->buf, PARLEY_FRAME_MAX, SYNC_F_OPEN | SYNC_F_DIGEST, digest);
    } else {
        sync_writer_init(&w, self->buf, PARLEY_FRAME_MAX, SYNC_F_OPEN, NULL);
        s_write_offers(node, link, &w, NULL, 0);
    }
    self->round_bytes_mark = self->bytes_in + self->bytes_out;
    self->round_msgs_mark = self->msgs_in + self->msgs_out;
    s_send_msg(node, link, &w);
    link->round_start = now;
    link->round_msgs = 0;
    self->rounds_started++;
}

/* ---- what an answer finds ---- */

typedef struct {
    node_t *node;
    link_t *link;
    const s_scope_t *scope;
} s_sink_ctx_t;

//  The key just before (ts, id): the cursor is exclusive.
static void
s_key_before(uint64_t ts, const uint8_t id[32], uint64_t *out_ts, uint8_t out_id[32])
{
    memcpy(out_id, id, 32);
    *out_ts = ts;
    for (size_t i = 32; i-- > 0;) {
        if (out_id[i]-- != 0) {
            return; // no borrow past this byte
        }
    }
    //  id was all zeros: the largest id of the previous millisecond.
    memset(out_id, 0xff, 32);
    *out_ts = ts > 0 ? ts - 1 : 0;
}

static void
s_sink_push(void *arg, sync_set_t *set, size_t lo, size_t hi, const uint8_t *excl, size_t n_excl)
{
    s_sink_ctx_t *c = arg;
    link_t *link = c->link;
    const sync_item_t *a = sync_set_at(set, lo), *b = sync_set_at(set, hi - 1);
    if (!a || !b || link->n_owed >= S_OWED_MAX) {
        return; // full: the next round finds the rest
    }
    link_owed_t *grown = realloc(link->owed, (link->n_owed + 1) * sizeof *grown);
    if (!grown) {
        return;
    }
    link->owed = grown;
    link_owed_t *o = &link->owed[link->n_owed];
    memset(o, 0, sizeof *o);
    memcpy(o->scope, c->scope->scope, 32);
    s_key_before(a->ts, a->id, &o->after_ts, o->after_id);
    o->to_ts = b->ts;
    memcpy(o->to_id, b->id, 32);
    if (n_excl > 0) {
        o->excl = malloc(n_excl * SYNC_PREFIX_LEN);
        if (!o->excl) {
            return;
        }
        memcpy(o->excl, excl, n_excl * SYNC_PREFIX_LEN);
        o->n_excl = n_excl;
    }
    link->n_owed++;
}

static void
s_sink_want(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    s_sink_ctx_t *c = arg;
    link_t *link = c->link;
    if (link->n_wants_out >= S_WANTS_OUT_MAX) {
        return;
    }
    if (!link->wants_out && !(link->wants_out = malloc((size_t)S_WANTS_OUT_MAX * 16))) {
        return;
    }
    memcpy(link->wants_out[link->n_wants_out++], prefix, 16);
}

static bool
s_sink_has(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    s_sink_ctx_t *c = arg;
    return store_envelope_has_prefix(c->node->store, prefix);
}

static void
s_round_end(node_t *node, link_t *link)
{
    replica_t *self = node->replica;
    if (link->round_start != 0) {
        self->rounds_ended++;
        self->last_round_ms = node_now_ms() - link->round_start;
        self->last_round_msgs = self->msgs_in + self->msgs_out - self->round_msgs_mark;
        self->last_round_bytes = self->bytes_in + self->bytes_out - self->round_bytes_mark;
    }
    link->round_start = 0;
    link->round_msgs = 0;
}

void
replica_on_reconcile(node_t *node, link_t *link, const frame_t *f)
{
    replica_t *self = node->replica;
    uint64_t now = node_now_ms();
    if (link->round_start == 0) {
        link->round_start = now; // the peer began this exchange
        self->round_bytes_mark = self->bytes_in + self->bytes_out;
        self->round_msgs_mark = self->msgs_in + self->msgs_out;
    }
    self->msgs_in++;
    self->bytes_in += f->sync_len + 2;
    if (++link->round_msgs > S_ROUND_MSGS_MAX) {
        node_ban(node, link, "its reconciliation does not converge");
        return;
    }
    sync_msg_reader_t rd;
    sync_msg_open(&rd, f->sync, f->sync_len);
    bool open = (rd.flags & SYNC_F_OPEN) != 0;
    bool relay = node_is_relay(node);
    sync_writer_t w;
    if (rd.digest) {
        uint8_t mine[SYNC_FP_LEN];
        if (relay && s_digest(node, mine) && sodium_memcmp(mine, rd.digest, SYNC_FP_LEN) == 0) {
            self->digests_equal++;
            sync_writer_init(&w, self->buf, PARLEY_FRAME_MAX, 0, NULL); // in sync: done
        } else {
            sync_writer_init(&w, self->buf, PARLEY_FRAME_MAX, SYNC_F_OPEN, NULL);
            s_write_offers(node, link, &w, NULL, 0);
        }
        s_send_msg(node, link, &w);
        if (sync_writer_blocks(&w) == 0) {
            s_round_end(node, link);
        }
        return;
    }
    sync_writer_init(&w, self->buf, PARLEY_FRAME_MAX, 0, NULL);
    self->fresh_left = S_FRESH_PER_MSG;
    uint8_t(*listed)[32] = open && rd.n_blocks ? malloc(rd.n_blocks * 32) : NULL;
    size_t n_listed = 0;
    sync_block_t blk;
    while (sync_msg_next(&rd, &blk)) {
        s_scope_t *s = s_scope_find(self, blk.scope);
        if (!s || !(relay || s->mine)) {
            //  Hints count only from relays, and a message may make us do at
            //  most S_FRESH_PER_MSG key agreements for authors never seen: the
            //  rest wait for a later round (a relay hints a scope again when
            //  it changes).
            bool party = false;
            for (size_t i = 0; link->relay && i < blk.n_hints && !party; i++) {
                const uint8_t *hint = blk.hints + 32 * i;
                uint8_t known[32];
                if (s_dm_known(node, hint, known)) {
                    party = sodium_memcmp(known, blk.scope, 32) == 0;
                } else if (self->fresh_left > 0) {
                    self->fresh_left--;
                    party = s_party(node, blk.scope, hint);
                }
            }
            if (!relay && !party) {
                continue; // not a scope we replicate
            }
            s = s_scope_get(self, blk.scope);
            if (!s) {
                continue;
            }
            if (party && !relay) {
                //  Every scope a relay hints us into costs a little of its
                //  budget: an honest one has few new ones a minute for us.
                replica_strike(node, link, "it hints us into too many scopes", 1);
            }
            s->mine = s->mine || party;
        }
        if (listed) {
            memcpy(listed[n_listed++], blk.scope, 32);
        }
        s_offered_add(link, blk.scope);
        sync_set_t *set = s_scope_set(node, s);
        if (!set || !sync_writer_room(&w, 4096)) {
            continue;
        }
        s_sink_ctx_t ctx = { node, link, s };
        sync_sink_t sink = { s_sink_push, s_sink_want, s_sink_has, &ctx };
        (void)sync_answer(&w, set, &blk, &sink);
    }
    if (link->banned_until > now) {
        free(listed);
        return; // it broke the rules while we answered: it hears nothing more
    }
    if (open) {
        if (n_listed > 1) {
            qsort(listed, n_listed, 32, s_raw_cmp);
        }
        s_write_offers(node, link, &w, (const uint8_t(*)[32])listed, n_listed);
    }
    free(listed);
    if (open || rd.n_blocks > 0) {
        s_send_msg(node, link, &w);
    }
    if (sync_writer_blocks(&w) == 0) {
        s_round_end(node, link);
    }
    s_send_wants(node, link);
}

static int
s_prefix_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SYNC_PREFIX_LEN);
}

void
replica_on_want(node_t *node, link_t *link, const frame_t *f)
{
    node->replica->bytes_in += 4 + f->n_prefixes * SYNC_PREFIX_LEN;
    if (link->n_wants_in + f->n_prefixes > S_WANTS_IN_MAX) {
        replica_strike(node, link, "it floods WANT requests", S_BAD_MAX / 4);
        return;
    }
    if (!link->wants_in && !(link->wants_in = malloc((size_t)S_WANTS_IN_MAX * 16))) {
        return;
    }
    //  Sorted and each prefix once: a repeated prefix costs one envelope.
    uint8_t(*at)[16] = link->wants_in + link->n_wants_in;
    memcpy(at, f->prefixes, f->n_prefixes * SYNC_PREFIX_LEN);
    qsort(at, f->n_prefixes, SYNC_PREFIX_LEN, s_prefix_cmp);
    size_t n = 0;
    for (size_t i = 0; i < f->n_prefixes; i++) {
        if (n == 0 || memcmp(at[n - 1], at[i], SYNC_PREFIX_LEN) != 0) {
            memmove(at[n++], at[i], SYNC_PREFIX_LEN);
        }
    }
    link->n_wants_in += n;
}

/* ---------------------------------------------------------------- pump */

typedef struct {
    node_t *node;
    frame_batch_t batch;
    uint8_t authors[PARLEY_BATCH_MAX][32];
    size_t n_authors;
    const link_owed_t *owed; /* the range being read, or NULL (wants) */
    uint64_t last_ts;        /* last row consumed */
    uint8_t last_id[32];
    bool consumed;
    bool full; /* the batch took no more */
} s_pump_t;

static void
s_pump_author(s_pump_t *p, const uint8_t *env, size_t len)
{
    if (len < 34) {
        return;
    }
    const uint8_t *author = env + 2; // header: version, kind, author
    for (size_t i = 0; i < p->n_authors; i++) {
        if (memcmp(p->authors[i], author, 32) == 0) {
            return;
        }
    }
    if (p->n_authors < PARLEY_BATCH_MAX) {
        memcpy(p->authors[p->n_authors++], author, 32);
    }
}

static int
s_pump_row(uint64_t ts, const uint8_t id[32], const uint8_t *bytes, size_t len, void *arg)
{
    s_pump_t *p = arg;
    const link_owed_t *o = p->owed;
    if (!(o->n_excl && bsearch(id, o->excl, o->n_excl, SYNC_PREFIX_LEN, s_prefix_cmp))) {
        if (frame_batch_add(&p->batch, bytes, len) != PARLEY_OK) {
            p->full = true;
            return 1; // not consumed: the next batch starts here
        }
        s_pump_author(p, bytes, len);
    }
    p->last_ts = ts;
    memcpy(p->last_id, id, 32);
    p->consumed = true;
    return 0;
}

static bool
s_pump_send(node_t *node, link_t *link, s_pump_t *p)
{
    size_t count = p->batch.count;
    size_t len = frame_batch_finish(&p->batch);
    if (len == 0) {
        return true;
    }
    node_send_bundles(node, link, (const uint8_t(*)[32])p->authors, p->n_authors);
    if (!node_link_send(node, link, node->replica->buf, len)) {
        return false;
    }
    node->replica->envelopes_streamed += count;
    return true;
}

static void
s_owed_pop(link_t *link)
{
    free(link->owed[0].excl);
    memmove(link->owed, link->owed + 1, (link->n_owed - 1) * sizeof *link->owed);
    link->n_owed--;
}

//  One batch from the link's first queued range. False when the link takes
//  nothing more now (its queue is full): the cursor stays for next time.
static bool
s_pump_range(node_t *node, link_t *link)
{
    link_owed_t *o = &link->owed[0];
    s_pump_t p;
    memset(&p, 0, sizeof p);
    p.node = node;
    p.owed = o;
    frame_batch_begin(&p.batch, node->replica->buf, PARLEY_FRAME_MAX);
    size_t n = 0;
    int rc = store_envelope_range(node->store, o->scope, o->after_ts, o->after_id, o->to_ts,
                                  o->to_id, PARLEY_BATCH_MAX, s_pump_row, &p, &n);
    if (rc != PARLEY_OK) {
        node_log(node, 0, "cannot read a range to stream: %s", parley_strerror(rc));
        s_owed_pop(link); // the next round asks again
        return true;
    }
    if (!s_pump_send(node, link, &p)) {
        return false;
    }
    if (p.consumed) {
        o->after_ts = p.last_ts;
        memcpy(o->after_id, p.last_id, 32);
    }
    if (!p.full && n < PARLEY_BATCH_MAX) {
        s_owed_pop(link);
    }
    return true;
}

static bool
s_pump_wants(node_t *node, link_t *link)
{
    s_pump_t p;
    memset(&p, 0, sizeof p);
    p.node = node;
    frame_batch_begin(&p.batch, node->replica->buf, PARLEY_FRAME_MAX);
    size_t at = link->wants_in_at;
    for (; at < link->n_wants_in; at++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        if (store_envelope_by_prefix(node->store, link->wants_in[at], &bytes, &len) != PARLEY_OK) {
            continue; // gone (expired) or never held: nothing to send
        }
        bool added = frame_batch_add(&p.batch, bytes, len) == PARLEY_OK;
        if (added) {
            s_pump_author(&p, bytes, len);
        }
        free(bytes);
        if (!added) {
            break; // full: this one starts the next batch
        }
    }
    if (!s_pump_send(node, link, &p)) {
        return false;
    }
    link->wants_in_at = at;
    if (at >= link->n_wants_in) {
        link->n_wants_in = 0;
        link->wants_in_at = 0;
    }
    return true;
}

static bool
s_link_pending(const link_t *link)
{
    return link->connected_since != 0 && (link->n_owed > 0 || link->wants_in_at < link->n_wants_in);
}

void
replica_pump(node_t *node)
{
    uint64_t now = node_now_ms();
    for (size_t i = 0; i < node->n_links; i++) {
        link_t *link = node->links[i];
        if (!s_link_pending(link) || link->banned_until > now) {
            continue;
        }
        for (unsigned k = 0; k < S_PUMP_BATCHES; k++) {
            bool sent = link->wants_in_at < link->n_wants_in ? s_pump_wants(node, link)
                        : link->n_owed > 0                   ? s_pump_range(node, link)
                                                             : false;
            if (!sent) {
                break;
            }
        }
    }
}

bool
replica_backlog(node_t *node)
{
    for (size_t i = 0; i < node->n_links; i++) {
        if (s_link_pending(node->links[i])) {
            return true;
        }
    }
    return false;
}

/* --------------------------------------------------------------- timers */

static void
s_expire(node_t *node, uint64_t now)
{
    replica_t *self = node->replica;
    store_expired_t gone[64];
    size_t n = 0;
    if (node_txn(node) != PARLEY_OK
        || store_envelope_expire(node->store, now, sizeof gone / sizeof gone[0], gone, &n)
               != PARLEY_OK) {
        self->next_expire = now + 1000;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        s_scope_t *s = s_scope_find(self, gone[i].scope);
        if (s && s->set && sync_set_remove(s->set, gone[i].ts_ms, gone[i].id) != PARLEY_OK) {
            sync_set_destroy(&s->set); // out of step: reload when needed
        }
    }
    self->expired += n;
    //  A full batch: more may be due; go on next iteration.
    self->next_expire = n == sizeof gone / sizeof gone[0] ? now : now + 1000;
}

void
replica_tick(node_t *node, uint64_t now)
{
    replica_t *self = node->replica;
    if (now >= self->next_expire) {
        s_expire(node, now);
    }
    uint64_t period = node_sync_ms(node);
    for (size_t i = 0; i < node->n_links; i++) {
        link_t *link = node->links[i];
        if (link->connected_since == 0 || !link->caps_known || link->banned_until > now) {
            continue;
        }
        if (link->round_start != 0 && now > link->round_start + S_ROUND_STALE_MS) {
            link->round_start = 0; // a message was lost with a connection: start again
            link->round_msgs = 0;
        }
        if (link->round_start == 0 && now >= link->next_sync && s_initiator(node, link)) {
            s_open_round(node, link, now);
            //  Jitter (75..125 % of the period) keeps a swarm from syncing in step.
            link->next_sync =
                now + period * 3 / 4 + randombytes_uniform((uint32_t)(period / 2 + 1));
        }
    }
}

void
replica_link_up(node_t *node, link_t *link)
{
    (void)node;
    link->next_sync = 0;
    link->round_start = 0;
    link->round_msgs = 0;
}

void
replica_link_down(node_t *node, link_t *link)
{
    (void)node;
    while (link->n_owed > 0) {
        s_owed_pop(link);
    }
    link->n_wants_in = link->wants_in_at = link->n_wants_out = 0;
    free(link->offered);
    link->offered = NULL;
    link->n_offered = 0;
    link->round_start = 0;
    link->round_msgs = 0;
    link->hinted_ms = 0;
    //  caps_known stays: capabilities belong to the peer, not to a connection
    //  (a new HELLO refreshes them).
}

void
replica_link_free(link_t *link)
{
    replica_link_down(NULL, link);
    free(link->owed);
    free(link->wants_in);
    free(link->wants_out);
}

void
replica_strike(node_t *node, link_t *link, const char *why, unsigned weight)
{
    uint64_t now = node_now_ms();
    if (now > link->bad_since + S_BAD_WINDOW_MS) {
        link->bad_since = now;
        link->bad = 0;
    }
    link->bad += weight;
    if (link->bad >= S_BAD_MAX && link->banned_until <= now) {
        node_ban(node, link, why);
    }
}

bool
replica_banned(node_t *node, const uint8_t x_pk[32])
{
    uint64_t now = node_now_ms();
    for (size_t i = 0; i < node->n_links; i++) {
        if (memcmp(node->links[i]->x_pk, x_pk, 32) == 0) {
            return node->links[i]->banned_until > now;
        }
    }
    return false;
}

json_t *
replica_status(node_t *node)
{
    replica_t *self = node->replica;
    size_t loaded = 0, items = 0, mine = 0;
    for (size_t i = 0; i < self->n_scopes; i++) {
        mine += self->scopes[i]->mine;
        if (self->scopes[i]->set) {
            loaded++;
            items += sync_set_count(self->scopes[i]->set);
        }
    }
    size_t owed = 0, wants = 0;
    for (size_t i = 0; i < node->n_links; i++) {
        owed += node->links[i]->n_owed;
        wants += node->links[i]->n_wants_in - node->links[i]->wants_in_at;
    }
    json_t *last =
        json_pack("{s:I, s:I, s:I}", "ms", (json_int_t)self->last_round_ms, "messages",
                  (json_int_t)self->last_round_msgs, "bytes", (json_int_t)self->last_round_bytes);
    return json_pack(
        "{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:o}",
        "relay", node_is_relay(node), "scopes", (json_int_t)self->n_scopes, "scopes_mine",
        (json_int_t)mine, "scopes_loaded", (json_int_t)loaded, "items_loaded", (json_int_t)items,
        "rounds_started", (json_int_t)self->rounds_started, "rounds_ended",
        (json_int_t)self->rounds_ended, "digests_equal", (json_int_t)self->digests_equal,
        "messages_in", (json_int_t)self->msgs_in, "messages_out", (json_int_t)self->msgs_out,
        "bytes_in", (json_int_t)self->bytes_in, "bytes_out", (json_int_t)self->bytes_out,
        "wants_sent", (json_int_t)self->wants_sent, "envelopes_streamed",
        (json_int_t)self->envelopes_streamed, "expired", (json_int_t)self->expired, "ranges_queued",
        (json_int_t)owed, "wants_queued", (json_int_t)wants, "last_round", last);
}
