/*  node/replica.c — replication (see replica.h; protocol in SPEC §15–16).
 *
 *  The scope table holds the scopes this node replicates, each with the
 *  first two authors seen (a DM scope has two parties) and, once a round
 *  needs it, the reconciliation set loaded from the store. A member
 *  replicates the scopes it is a party to; a relay every scope that some
 *  envelope in its store is in. The table is an array (sorted lazily, when
 *  an OPEN or a digest walks it in scope order) behind a keyed hash index,
 *  so adding a scope is amortised O(1) however many there are.
 *
 *  A scope a peer names that nobody holds is never added: a relay answers
 *  its block against one shared empty set and forgets it (it is added when
 *  an envelope of it is stored). Stored envelopes add scopes within caps
 *  (replica_admits): per link REPLICA_NEW_SCOPES_PER_MIN new ones a
 *  minute, and REPLICA_SCOPES_MAX in all; our own are always added. Blocks there that claim no
 * items are noise, and past a small allowance a minute each strikes the peer.
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
 *  scopes changed since, a block per other scope that one author alone has
 *  written in, with that author as a hint: the member recognises its own DM
 *  scopes by them (it computes the scope with the hinted author) even when
 *  it never met that author. A scope both parties wrote in is never hinted:
 *  both hold it, and its two authors would name a pair to every member.
 *  A member or a relay offers a member that has not offered it the control
 *  scope of a channel whose log names that member, with the member's own
 *  key as the one hint (replica_party_fn's REPLICA_NAMED): a member that
 *  missed the push of its ADD takes the log up from it (s_named_ok).
 *
 *  Whatever a round finds missing on the other side becomes a queued range
 *  (or a WANT from the other side); replica_pump() streams them in ENVELOPES
 *  batches after each commit, at most S_PUMP_BATCHES per link per iteration,
 *  stopping at the first frame ZeroMQ will not take. Every queue is bounded;
 *  what does not fit is dropped, and the next round finds it again.
 */
#include "replica.h"

#include "../proto/b32.h"
#include "../proto/sync.h"
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define S_OWED_MAX 1024u      /* ranges queued per link */
#define S_WANTS_IN_MAX 65536u /* prefixes a peer may have outstanding */
#define S_WANTS_OUT_MAX 16384u
#define S_OFFERED_MAX 65536u
#define S_PUMP_BATCHES 16u /* ENVELOPES frames per link per iteration */
/*  Serving WANTs costs a store lookup per prefix, found or not: one batch
 *  looks up at most S_PUMP_LOOKUPS, and the whole pump of an iteration
 *  stops after S_PUMP_BUDGET_MS (each pending link still gets one batch,
 *  starting after the link that went first last time), so a peer that asks
 *  for thousands of prefixes cannot hold the loop. Prefixes we do not hold
 *  cost the asker: every S_WANT_MISSES of them strike it 1 (a peer asks
 *  only for what we offered, so an honest one misses only what expired). */
#define S_PUMP_LOOKUPS 512u
#define S_PUMP_BUDGET_MS 10u
#define S_WANT_MISSES 64u
#define S_ROUND_MSGS_MAX 96 /* messages one exchange may take before we give up on the peer */
#define S_ROUND_STALE_MS 60000u
#define S_WANT_FLOOD 128u    /* strike weight of a WANT flood (a quarter of the ban budget) */
#define S_FRESH_PER_MSG 256u /* hinted authors never seen, checked per message (~12 ms) */
#define S_DIGEST_MIN 8u      /* relays holding more scopes open with a digest */
/*  Scopes nobody holds, named by a peer: a relay answers them against an
 *  empty set and keeps nothing. Per peer and minute, S_UNKNOWN_FREE blocks
 *  claiming no items there cost nothing, and each one past it strikes 1 (so
 *  S_UNKNOWN_FREE + 512 such blocks a minute ban); blocks that do claim
 *  items (a peer offering what we lack) are answered up to
 *  S_UNKNOWN_PER_MIN a minute, the rest wait for a later round. */
#define S_UNKNOWN_FREE 64u
#define S_UNKNOWN_PER_MIN 16384u
#define S_UNKNOWN_WINDOW_MS 60000u
#define S_NAMED_PER_MIN 64u /* a member's blocks naming us in a scope we lack */
/*  A round asked for waits until the peer's envelopes have paused this
 *  long: one opened while it still streams asks again for what is on its way. */
#define S_SOON_QUIET_MS 300u

typedef struct {
    uint8_t scope[32];
    sync_set_t *set; /* NULL until a round needs it */
    uint8_t authors[2][32];
    size_t n_authors;
    bool mine;           /* we are a party to it */
    uint64_t changed_ms; /* last envelope stored */
} s_scope_t;

/*  One entry of a link's queue of ranges to stream. */
typedef struct {
    uint8_t scope[32];
    uint64_t after_ts; /* cursor: items after (after_ts, after_id) ... */
    uint8_t after_id[32];
    uint64_t to_ts; /* ... up to (to_ts, to_id) inclusive */
    uint8_t to_id[32];
    uint8_t *excl; /* sorted id prefixes the peer holds (malloc'd), or NULL */
    size_t n_excl;
} s_owed_t;

/*  Per link (LINK_SLOT_REPLICA); everything here is per connection. */
typedef struct {
    uint64_t next_sync;   /* ms: we start the next round (if we initiate) */
    bool soon;            /* a round is wanted now, whichever side initiates */
    uint64_t last_in_ms;  /* ms: it last gave us an envelope we stored */
    uint64_t round_start; /* ms the current exchange began, 0 if none */
    size_t round_msgs;    /* RECONCILE messages received in it */
    uint64_t hinted_ms;   /* we hinted it every scope changed up to this time */
    s_owed_t *owed;       /* ranges it lacks, streamed after commits */
    size_t n_owed;
    uint8_t (*wants_in)[16]; /* prefixes it asked for */
    size_t n_wants_in;
    size_t wants_in_at;       /* next one to serve */
    uint8_t (*wants_out)[16]; /* prefixes we ask it for, sent after our answer */
    size_t n_wants_out;
    uint8_t (*offered)[32]; /* scopes it told us it replicates, sorted */
    size_t n_offered;
    uint64_t unknown_since; /* ms: the window of the two counts below began */
    size_t n_noise;         /* blocks of scopes nobody holds that claim no items */
    size_t n_unknown;       /* blocks of scopes nobody holds that claim items */
    size_t want_misses;     /* prefixes it asked for that we do not hold */
    uint64_t new_since;     /* ms: the window of n_new began */
    size_t n_new;           /* scopes its envelopes made us take up in that window */
} s_peer_t;

struct replica {
    core_t *core;       /* borrowed */
    links_t *links;     /* borrowed */
    session_t *session; /* borrowed: DM scopes and prekey bundles */
    s_scope_t **scopes; /* every scope we hold; the first n_sorted in scope order */
    size_t n_scopes, cap_scopes, n_sorted;
    s_scope_t **index; /* open addressing over scopes, at most half full */
    size_t cap_index;  /* a power of two, or 0 */
    uint8_t index_key[crypto_shorthash_KEYBYTES]; /* secret: peers pick scopes */
    sync_set_t *empty; /* answers blocks of scopes nobody holds; never filled */
    size_t fresh_left; /* X25519s one received message may still cost (hints) */
    uint8_t *buf;      /* PARLEY_FRAME_MAX: the message being written */
    uint64_t next_expire;
    size_t pump_first; /* the link the next pump starts with */
    /* counters for `status` */
    uint64_t rounds_started, rounds_ended, msgs_in, msgs_out, bytes_in, bytes_out;
    uint64_t wants_sent, envelopes_streamed, expired, digests_equal;
    uint64_t last_round_ms;    /* duration of the last round that ended */
    uint64_t last_round_msgs;  /* messages it took, both ways */
    uint64_t last_round_bytes; /* RECONCILE and WANT bytes, both ways */
    uint64_t round_bytes_mark; /* bytes_in + bytes_out when the current round began */
    uint64_t round_msgs_mark;  /* msgs_in + msgs_out then */
    replica_party_fn *party;   /* others' parties to a scope (channels), or NULL */
    const void *party_arg;
    bool has_net;    /* in a private network (replica_set_network) */
    uint8_t net[32]; /* its id: the roster's scope, which every member replicates */
};

/* ------------------------------------------------------------ the table */

static int
s_scope_cmp(const void *a, const void *b)
{
    return memcmp((*(s_scope_t *const *)a)->scope, (*(s_scope_t *const *)b)->scope, 32);
}

//  The index slot of scope: its entry, or the empty slot it goes in. Keyed
//  with a secret: a peer that picks scopes cannot make them collide.
static s_scope_t **
s_index_slot(s_scope_t **index, size_t cap, const uint8_t key[crypto_shorthash_KEYBYTES],
             const uint8_t scope[32])
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, scope, 32, key);
    uint64_t v = 0;
    memcpy(&v, h, sizeof v);
    for (size_t i = (size_t)v & (cap - 1);; i = (i + 1) & (cap - 1)) {
        if (!index[i] || memcmp(index[i]->scope, scope, 32) == 0) {
            return &index[i];
        }
    }
}

static s_scope_t *
s_scope_find(const replica_t *self, const uint8_t scope[32])
{
    if (self->cap_index == 0) {
        return NULL;
    }
    return *s_index_slot(self->index, self->cap_index, self->index_key, scope);
}

//  The table in scope order (OPEN offers and the digest go in that order).
//  Scopes added since the last time are sorted alone and merged in: O(n)
//  plus the new ones, as much as the walk that follows.
static void
s_scope_sort(replica_t *self)
{
    size_t n = self->n_scopes, k = self->n_sorted;
    if (k == n) {
        return;
    }
    s_scope_t **t = self->scopes;
    qsort(t + k, n - k, sizeof *t, s_scope_cmp);
    s_scope_t **merged = k > 0 && s_scope_cmp(&t[k - 1], &t[k]) > 0 ? malloc(n * sizeof *t) : NULL;
    if (merged) {
        size_t i = 0, j = k, o = 0;
        while (i < k || j < n) {
            merged[o++] = j == n || (i < k && s_scope_cmp(&t[i], &t[j]) < 0) ? t[i++] : t[j++];
        }
        memcpy(t, merged, n * sizeof *t);
        free(merged);
    } else if (k > 0 && s_scope_cmp(&t[k - 1], &t[k]) > 0) {
        qsort(t, n, sizeof *t, s_scope_cmp); // no memory for the merge: the slow way
    }
    self->n_sorted = n;
}

//  The index at twice the size, or false (the old one stays).
static bool
s_index_grow(replica_t *self)
{
    size_t cap = self->cap_index ? 2 * self->cap_index : 128;
    s_scope_t **index = calloc(cap, sizeof *index);
    if (!index) {
        return false;
    }
    for (size_t i = 0; i < self->n_scopes; i++) {
        *s_index_slot(index, cap, self->index_key, self->scopes[i]->scope) = self->scopes[i];
    }
    free(self->index);
    self->index = index;
    self->cap_index = cap;
    return true;
}

//  The entry of scope, added when absent; NULL when memory is short.
//  Amortised O(1): appended to the table, put in the hash index.
static s_scope_t *
s_scope_get(replica_t *self, const uint8_t scope[32])
{
    s_scope_t *s = s_scope_find(self, scope);
    if (s) {
        return s;
    }
    //  The index stays at most half full, so probes stay short.
    if (2 * (self->n_scopes + 1) > self->cap_index && !s_index_grow(self)) {
        return NULL;
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
    *s_index_slot(self->index, self->cap_index, self->index_key, scope) = s;
    self->scopes[self->n_scopes++] = s;
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
s_scope_set(replica_t *self, s_scope_t *s)
{
    if (s->set) {
        return s->set;
    }
    sync_set_t *set = sync_set_new();
    if (!set) {
        return NULL;
    }
    int rc = store_scope_load(self->core->store, s->scope, set);
    if (rc != PARLEY_OK) {
        log_write(&self->core->log, LOG_LEVEL_WARN, "cannot load a scope for sync: %s",
                  parley_strerror(rc));
        sync_set_destroy(&set);
        return NULL;
    }
    s->set = set;
    return set;
}

//  Whether we are a party to scope, judged by one of its authors.
static bool
s_party(replica_t *self, const uint8_t scope[32], const uint8_t author[32])
{
    uint8_t mine[32];
    return session_dm_scope(self->session, author, mine) && sodium_memcmp(mine, scope, 32) == 0;
}

static int
s_load_fn(const uint8_t scope[32], const uint8_t author[32], void *arg)
{
    replica_t *self = arg;
    s_scope_t *s = s_scope_get(self, scope);
    if (!s) {
        return -1;
    }
    s_scope_author(s, author);
    if (!s->mine) {
        s->mine = sodium_memcmp(author, identity_ed_pk(self->core->id), 32) == 0
                  || s_party(self, scope, author);
    }
    return 0;
}

replica_t *
replica_new(core_t *core, links_t *links, session_t *session, int *err)
{
    replica_t *self = calloc(1, sizeof *self);
    if (!self || !(self->buf = malloc(PARLEY_FRAME_MAX))) {
        free(self);
        *err = PARLEY_ERR_NOMEM;
        return NULL;
    }
    self->core = core;
    self->links = links;
    self->session = session;
    crypto_shorthash_keygen(self->index_key);
    if (!(self->empty = sync_set_new())) {
        *err = PARLEY_ERR_NOMEM;
        replica_destroy(&self);
        return NULL;
    }
    *err = store_scope_authors(core->store, s_load_fn, self);
    if (*err != PARLEY_OK) {
        replica_destroy(&self);
    }
    return self;
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
    free(self->index);
    sync_set_destroy(&self->empty);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

void
replica_mine(replica_t *self, const uint8_t scope[32])
{
    s_scope_t *s = s_scope_get(self, scope);
    if (s) {
        s->mine = true;
    }
}

void
replica_rollback(replica_t *self)
{
    for (size_t i = 0; i < self->n_scopes; i++) {
        sync_set_destroy(&self->scopes[i]->set); // reloaded from the store when needed
    }
}

static s_peer_t *
s_peer(link_t *link)
{
    s_peer_t *p = link_slot(link, LINK_SLOT_REPLICA);
    if (!p && (p = calloc(1, sizeof *p))) {
        link_set_slot(link, LINK_SLOT_REPLICA, p);
    }
    return p;
}

/* -------------------------------------------------------------- policy */

bool
replica_accepts(replica_t *self, const envelope_t *env)
{
    if (self->core->cfg.relay) {
        return true;
    }
    s_scope_t *s = s_scope_find(self, env->scope);
    if (s && s->mine) {
        return true;
    }
    //  A DM from someone we never met (through a relay): its scope tells.
    if (s_party(self, env->scope, env->author)) {
        replica_mine(self, env->scope);
        return true;
    }
    return false;
}

bool
replica_admits(replica_t *self, link_t *link, const envelope_t *env)
{
    if (s_scope_find(self, env->scope)) {
        return true;
    }
    s_peer_t *pr = s_peer(link);
    if (!pr) {
        return false; // out of memory: refused, offered again later
    }
    uint64_t now = core_now(self->core);
    if (now > pr->new_since + REPLICA_NEW_WINDOW_MS) {
        pr->new_since = now;
        pr->n_new = 0;
    }
    if (pr->n_new < REPLICA_NEW_SCOPES_PER_MIN && self->n_scopes < REPLICA_SCOPES_MAX) {
        pr->n_new++;
        return true;
    }
    self->core->counters[C_SCOPE_CAP]++;
    //  A relay may have many scopes new to us (we start, or we were away):
    //  it is only refused, and its next rounds offer them again. A member
    //  forwards nobody's scopes but its own and its peers'.
    if (!link_relay(link)) {
        links_strike(self->links, link, "it makes us take up too many scopes",
                     REPLICA_NEW_SCOPE_STRIKE);
    }
    return false;
}

bool
replica_ours(replica_t *self, const envelope_t *env)
{
    uint8_t ours[32];
    return session_dm_scope(self->session, env->author, ours)
           && sodium_memcmp(ours, env->scope, 32) == 0;
}

static int
s_raw_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static bool
s_offered_has(const s_peer_t *pr, const uint8_t scope[32])
{
    return pr && pr->n_offered && bsearch(scope, pr->offered, pr->n_offered, 32, s_raw_cmp);
}

static void
s_offered_add(s_peer_t *pr, const uint8_t scope[32])
{
    if (s_offered_has(pr, scope) || pr->n_offered >= S_OFFERED_MAX) {
        return;
    }
    uint8_t(*grown)[32] = realloc(pr->offered, (pr->n_offered + 1) * 32);
    if (!grown) {
        return;
    }
    pr->offered = grown;
    size_t at = pr->n_offered;
    while (at > 0 && memcmp(pr->offered[at - 1], scope, 32) > 0) {
        at--;
    }
    memmove(pr->offered + at + 1, pr->offered + at, (pr->n_offered - at) * 32);
    memcpy(pr->offered[at], scope, 32);
    pr->n_offered++;
}

//  Whether link is a party to scope s: a relay is to every scope, every
//  member to the network's roster; else it wrote in it, it is a member of
//  the channel s belongs to, or s is our DM scope with it.
static bool
s_link_party(replica_t *self, link_t *link, const s_scope_t *s)
{
    if (link_relay(link) || (self->has_net && memcmp(s->scope, self->net, 32) == 0)) {
        return true;
    }
    for (size_t i = 0; i < s->n_authors; i++) {
        if (memcmp(s->authors[i], link_pk(link), 32) == 0) {
            return true;
        }
    }
    if (self->party && (self->party(self->party_arg, s->scope, link_pk(link)) & REPLICA_PARTY)) {
        return true;
    }
    uint8_t dm[32];
    return session_dm_scope(self->session, link_pk(link), dm) && memcmp(dm, s->scope, 32) == 0;
}

void
replica_set_party(replica_t *self, replica_party_fn *fn, const void *arg)
{
    self->party = fn;
    self->party_arg = arg;
}

//  Whether link replicates scope s as far as we know: a party does, and so
//  does a peer that offered it.
static bool
s_link_wants(replica_t *self, link_t *link, const s_scope_t *s)
{
    return s_offered_has(link_slot(link, LINK_SLOT_REPLICA), s->scope)
           || s_link_party(self, link, s);
}

void
replica_set_network(replica_t *self, const uint8_t id[32])
{
    self->has_net = id != NULL;
    if (id) {
        memcpy(self->net, id, 32);
        replica_mine(self, id);
        for (size_t i = 0; i < links_count(self->links); i++) {
            replica_sync_soon(self, links_at(self->links, i)); // a new scope for all of them
        }
    }
}

void
replica_stored(replica_t *self, link_t *from, const envelope_t *env, const uint8_t id[32])
{
    s_scope_t *s = s_scope_get(self, env->scope);
    if (!s) {
        return; // out of memory: the next round loads it from the store
    }
    s_scope_author(s, env->author);
    if (sodium_memcmp(env->author, identity_ed_pk(self->core->id), 32) == 0) {
        s->mine = true;
    }
    s->changed_ms = core_now(self->core);
    s_peer_t *in = from ? link_slot(from, LINK_SLOT_REPLICA) : NULL;
    if (in) {
        in->last_in_ms = s->changed_ms;
    }
    if (s->set) {
        int rc = sync_set_insert(s->set, env->ts_ms, id);
        if (rc != PARLEY_OK && rc != PARLEY_ERR_DUPLICATE) {
            sync_set_destroy(&s->set); // reloaded when next needed
        }
    }
    //  The eager push: staged once, sent after the commit to every other
    //  online peer that replicates the scope.
    uint32_t staged = CORE_STAGED_NONE;
    for (size_t i = 0; i < links_count(self->links); i++) {
        link_t *l = links_at(self->links, i);
        if (l == from || !link_online(l) || memcmp(link_pk(l), env->author, 32) == 0
            || !s_link_wants(self, l, s)) {
            continue;
        }
        if (staged == CORE_STAGED_NONE) {
            staged = core_stage(self->core, env->bytes, env->bytes_len);
            if (staged == CORE_STAGED_NONE) {
                return; // no room this iteration: the next round carries it
            }
        }
        core_push(self->core, l, staged, env->bytes_len);
    }
}

/* -------------------------------------------------------------- rounds */

static bool
s_initiator(const replica_t *self, const link_t *link)
{
    return memcmp(identity_ed_pk(self->core->id), link_pk(link), 32) < 0;
}

//  Whether we offer scope s to link in an OPEN; *hints (n_hints keys) go
//  with it: a relay telling a member about scopes it may be in by their
//  authors, or a member telling another that the scope's log names it.
static bool
s_offer(replica_t *self, link_t *link, const s_peer_t *pr, const s_scope_t *s,
        const uint8_t **hints, size_t *n_hints)
{
    *hints = NULL;
    *n_hints = 0;
    //  A channel's control log that names the peer, which has not offered
    //  it: it may have missed the ADD pushed to it (offline, or behind a
    //  relay), and takes the log up on this hint (its own key).
    bool named = !link_relay(link) && self->party && !s_offered_has(pr, s->scope)
                 && (self->party(self->party_arg, s->scope, link_pk(link)) & REPLICA_NAMED);
    if (named) {
        *hints = link_pk(link);
        *n_hints = 1;
    }
    if (!self->core->cfg.relay) {
        return s->mine && (link_relay(link) || s_link_wants(self, link, s));
    }
    if (link_relay(link) || s_link_wants(self, link, s)) {
        return true;
    }
    //  Only a scope one author has written in is hinted, with that author:
    //  it is how a member finds a DM from someone it never met. Once both
    //  parties have written, both hold it; hinting it then would tell every
    //  member which two keys talk to each other.
    if (s->n_authors == 1 && (pr->hinted_ms == 0 || s->changed_ms > pr->hinted_ms)) {
        *hints = s->authors[0];
        *n_hints = s->n_authors;
        return true;
    }
    return false;
}

//  Writes an opening block for every scope we offer link that is not in
//  listed (sorted, n_listed scopes).
static void
s_write_offers(replica_t *self, link_t *link, s_peer_t *pr, sync_writer_t *w,
               const uint8_t (*listed)[32], size_t n_listed)
{
    bool hinted = false;
    s_scope_sort(self);
    for (size_t i = 0; i < self->n_scopes; i++) {
        s_scope_t *s = self->scopes[i];
        const uint8_t *hints = NULL;
        size_t n_hints = 0;
        if ((n_listed && bsearch(s->scope, listed, n_listed, 32, s_raw_cmp))
            || !s_offer(self, link, pr, s, &hints, &n_hints)) {
            continue;
        }
        sync_set_t *set = s_scope_set(self, s);
        if (!set) {
            continue;
        }
        if (!sync_writer_room(w, 200 + SYNC_LIST_MAX * SYNC_PREFIX_LEN)) {
            return; // the rest goes in a later round
        }
        sync_open_block(w, set, s->scope, hints, n_hints);
        hinted = hinted || (n_hints > 0 && self->core->cfg.relay);
    }
    if (hinted || self->core->cfg.relay) {
        pr->hinted_ms = core_now(self->core);
    }
}

//  Digest over every non-empty scope we hold, in scope order.
static bool
s_digest(replica_t *self, uint8_t out[SYNC_FP_LEN])
{
    sync_digest_t d;
    sync_digest_init(&d);
    s_scope_sort(self);
    for (size_t i = 0; i < self->n_scopes; i++) {
        sync_set_t *set = s_scope_set(self, self->scopes[i]);
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
s_send_msg(replica_t *self, link_t *link, sync_writer_t *w)
{
    size_t len = sync_writer_finish(w);
    if (len > 0 && links_send(self->links, link, self->buf, len)) {
        self->msgs_out++;
        self->bytes_out += len;
    }
}

static void
s_send_wants(replica_t *self, link_t *link, s_peer_t *pr)
{
    for (size_t at = 0; at < pr->n_wants_out; at += SYNC_WANT_MAX) {
        size_t n = pr->n_wants_out - at;
        n = n > SYNC_WANT_MAX ? SYNC_WANT_MAX : n;
        size_t len = 0;
        if (frame_encode_want(pr->wants_out[at], n, self->buf, PARLEY_FRAME_MAX, &len) == PARLEY_OK
            && links_send(self->links, link, self->buf, len)) {
            self->wants_sent += n;
            self->bytes_out += len;
        }
    }
    pr->n_wants_out = 0;
}

static void
s_open_round(replica_t *self, link_t *link, s_peer_t *pr, uint64_t now)
{
    sync_writer_t w;
    uint8_t digest[SYNC_FP_LEN];
    //  Relay to relay with many scopes: one digest (an in-sync pair agrees in
    //  one round trip of a few bytes); with few, the blocks themselves.
    if (self->core->cfg.relay && link_relay(link) && self->n_scopes > S_DIGEST_MIN
        && s_digest(self, digest)) {
        sync_writer_init(&w, self->buf, PARLEY_FRAME_MAX, SYNC_F_OPEN | SYNC_F_DIGEST, digest);
    } else {
        sync_writer_init(&w, self->buf, PARLEY_FRAME_MAX, SYNC_F_OPEN, NULL);
        s_write_offers(self, link, pr, &w, NULL, 0);
    }
    self->round_bytes_mark = self->bytes_in + self->bytes_out;
    self->round_msgs_mark = self->msgs_in + self->msgs_out;
    s_send_msg(self, link, &w);
    pr->round_start = now;
    pr->round_msgs = 0;
    self->rounds_started++;
}

/* ---- what an answer finds ---- */

typedef struct {
    replica_t *self;
    s_peer_t *pr;
    const uint8_t *scope; /* 32 bytes: the block's */
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
    s_peer_t *pr = c->pr;
    const sync_item_t *a = sync_set_at(set, lo), *b = sync_set_at(set, hi - 1);
    if (!a || !b || pr->n_owed >= S_OWED_MAX) {
        return; // full: the next round finds the rest
    }
    s_owed_t *grown = realloc(pr->owed, (pr->n_owed + 1) * sizeof *grown);
    if (!grown) {
        return;
    }
    pr->owed = grown;
    s_owed_t *o = &pr->owed[pr->n_owed];
    memset(o, 0, sizeof *o);
    memcpy(o->scope, c->scope, 32);
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
    pr->n_owed++;
}

static void
s_sink_want(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    s_sink_ctx_t *c = arg;
    s_peer_t *pr = c->pr;
    if (pr->n_wants_out >= S_WANTS_OUT_MAX) {
        return;
    }
    if (!pr->wants_out && !(pr->wants_out = malloc((size_t)S_WANTS_OUT_MAX * 16))) {
        return;
    }
    memcpy(pr->wants_out[pr->n_wants_out++], prefix, 16);
}

static bool
s_sink_has(void *arg, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    s_sink_ctx_t *c = arg;
    return store_envelope_has_prefix(c->self->core->store, prefix);
}

static void
s_round_end(replica_t *self, s_peer_t *pr)
{
    if (pr->round_start != 0) {
        self->rounds_ended++;
        self->last_round_ms = core_now(self->core) - pr->round_start;
        self->last_round_msgs = self->msgs_in + self->msgs_out - self->round_msgs_mark;
        self->last_round_bytes = self->bytes_in + self->bytes_out - self->round_bytes_mark;
    }
    pr->round_start = 0;
    pr->round_msgs = 0;
}

//  A block for a scope we do not hold yet: whether we take it up. Hints
//  count only from relays, and a message may make us do at most
//  S_FRESH_PER_MSG key agreements for authors never seen: the rest wait for
//  a later round (a relay hints a scope again when it changes).
static s_scope_t *
s_scope_hinted(replica_t *self, link_t *link, const sync_block_t *blk)
{
    bool relay = self->core->cfg.relay;
    bool party = false;
    for (size_t i = 0; link_relay(link) && i < blk->n_hints && !party; i++) {
        const uint8_t *hint = blk->hints + 32 * i;
        uint8_t known[32];
        if (sodium_memcmp(hint, identity_ed_pk(self->core->id), 32) == 0) {
            continue; // a channel's log naming us (s_named_ok), not a DM
        }
        if (session_dm_scope_cached(self->session, hint, known)) {
            party = sodium_memcmp(known, blk->scope, 32) == 0;
        } else if (self->fresh_left > 0) {
            self->fresh_left--;
            party = s_party(self, blk->scope, hint);
        }
    }
    if (!party) {
        //  Not one we replicate, or (relay) nobody holds it yet: a relay
        //  takes it up when an envelope of it is stored.
        return NULL;
    }
    s_scope_t *s = s_scope_get(self, blk->scope);
    if (!s) {
        return NULL;
    }
    if (party && !relay) {
        //  Every scope a relay hints us into costs a little of its budget:
        //  an honest one has few new ones a minute for us.
        links_strike(self->links, link, "it hints us into too many scopes", 1);
    }
    s->mine = s->mine || party;
    return s;
}

//  Whether a block claims items: a count or an id in any range.
static bool
s_block_claims(const sync_block_t *blk)
{
    sync_range_reader_t rd;
    sync_ranges_open(&rd, blk);
    sync_range_t r;
    while (sync_ranges_next(&rd, &r)) {
        if ((r.mode == SYNC_FP && r.count > 0) || (r.mode == SYNC_IDS && r.n_ids > 0)) {
            return true;
        }
    }
    return false;
}

//  A relay's block for a scope nobody holds: whether to answer it (against
//  an empty set, keeping nothing). A block that claims no items is noise:
//  past a small allowance each strikes the peer. One that claims items is an
//  offer of envelopes we lack; past the cap a minute it waits.
static bool
s_unknown_ok(replica_t *self, link_t *link, s_peer_t *pr, const sync_block_t *blk, uint64_t now)
{
    if (pr->unknown_since == 0 || now >= pr->unknown_since + S_UNKNOWN_WINDOW_MS) {
        pr->unknown_since = now;
        pr->n_noise = pr->n_unknown = 0;
    }
    if (!s_block_claims(blk)) {
        if (++pr->n_noise > S_UNKNOWN_FREE) {
            links_strike(self->links, link, "it names scopes nobody holds", 1);
        }
        return !link_banned(link, now);
    }
    return ++pr->n_unknown <= S_UNKNOWN_PER_MIN;
}

//  A block naming us (its one hint our key) for a scope we do not hold: a
//  channel's log that adds us, whose ADD push we missed. It is
//  answered against the empty set, so the peer sends the log; what it sends
//  must be control events we may take (else it is struck, as for any push
//  we do not take). At most S_NAMED_PER_MIN such blocks a peer a minute.
static bool
s_named_ok(replica_t *self, s_peer_t *pr, const sync_block_t *blk, uint64_t now)
{
    if (blk->n_hints != 1 || sodium_memcmp(blk->hints, identity_ed_pk(self->core->id), 32) != 0
        || !s_block_claims(blk)) {
        return false;
    }
    if (pr->unknown_since == 0 || now >= pr->unknown_since + S_UNKNOWN_WINDOW_MS) {
        pr->unknown_since = now;
        pr->n_noise = pr->n_unknown = 0;
    }
    return ++pr->n_unknown <= S_NAMED_PER_MIN;
}

void
replica_on_reconcile(replica_t *self, link_t *link, const frame_t *f)
{
    s_peer_t *pr = s_peer(link);
    if (!pr) {
        return; // out of memory: the peer's round goes stale and starts again
    }
    uint64_t now = core_now(self->core);
    if (pr->round_start == 0) {
        pr->round_start = now; // the peer began this exchange
        self->round_bytes_mark = self->bytes_in + self->bytes_out;
        self->round_msgs_mark = self->msgs_in + self->msgs_out;
    }
    self->msgs_in++;
    self->bytes_in += f->sync_len + 2;
    if (++pr->round_msgs > S_ROUND_MSGS_MAX) {
        self->core->ban(self->core->ban_arg, link, "its reconciliation does not converge");
        return;
    }
    sync_msg_reader_t rd;
    sync_msg_open(&rd, f->sync, f->sync_len);
    bool open = (rd.flags & SYNC_F_OPEN) != 0;
    bool relay = self->core->cfg.relay;
    sync_writer_t w;
    if (rd.digest) {
        uint8_t mine[SYNC_FP_LEN];
        if (relay && s_digest(self, mine) && sodium_memcmp(mine, rd.digest, SYNC_FP_LEN) == 0) {
            self->digests_equal++;
            sync_writer_init(&w, self->buf, PARLEY_FRAME_MAX, 0, NULL); // in sync: done
        } else {
            sync_writer_init(&w, self->buf, PARLEY_FRAME_MAX, SYNC_F_OPEN, NULL);
            s_write_offers(self, link, pr, &w, NULL, 0);
        }
        s_send_msg(self, link, &w);
        if (sync_writer_blocks(&w) == 0) {
            s_round_end(self, pr);
        }
        return;
    }
    sync_writer_init(&w, self->buf, PARLEY_FRAME_MAX, 0, NULL);
    self->fresh_left = S_FRESH_PER_MSG;
    uint8_t(*listed)[32] = open && rd.n_blocks ? malloc(rd.n_blocks * 32) : NULL;
    size_t n_listed = 0;
    sync_block_t blk;
    while (sync_msg_next(&rd, &blk) && !link_banned(link, now)) {
        s_scope_t *s = s_scope_find(self, blk.scope);
        //  In a network, a member answers for a scope only a party to it:
        //  only designated relays (link_relay) hold other people's envelopes.
        if (s && self->has_net && !relay && !s_link_party(self, link, s)) {
            continue;
        }
        if (!s || !(relay || s->mine)) {
            s = s_scope_hinted(self, link, &blk);
            if (!s
                && (relay ? !s_unknown_ok(self, link, pr, &blk, now)
                          : !s_named_ok(self, pr, &blk, now))) {
                continue;
            }
        }
        if (listed) {
            memcpy(listed[n_listed++], blk.scope, 32);
        }
        s_offered_add(pr, blk.scope);
        sync_set_t *set = s ? s_scope_set(self, s) : self->empty;
        if (!set || !sync_writer_room(&w, 4096)) {
            continue;
        }
        s_sink_ctx_t ctx = { self, pr, blk.scope };
        sync_sink_t sink = { s_sink_push, s_sink_want, s_sink_has, &ctx };
        (void)sync_answer(&w, set, &blk, &sink);
    }
    if (link_banned(link, now)) {
        free(listed);
        return; // it broke the rules while we answered: it hears nothing more
    }
    if (open) {
        if (n_listed > 1) {
            qsort(listed, n_listed, 32, s_raw_cmp);
        }
        s_write_offers(self, link, pr, &w, (const uint8_t(*)[32])listed, n_listed);
    }
    free(listed);
    if (open || rd.n_blocks > 0) {
        s_send_msg(self, link, &w);
    }
    if (sync_writer_blocks(&w) == 0) {
        s_round_end(self, pr);
    }
    s_send_wants(self, link, pr);
}

static int
s_prefix_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SYNC_PREFIX_LEN);
}

void
replica_on_want(replica_t *self, link_t *link, const frame_t *f)
{
    self->bytes_in += 4 + f->n_prefixes * SYNC_PREFIX_LEN;
    s_peer_t *pr = s_peer(link);
    if (!pr) {
        return;
    }
    if (pr->n_wants_in + f->n_prefixes > S_WANTS_IN_MAX) {
        links_strike(self->links, link, "it floods WANT requests", S_WANT_FLOOD);
        return;
    }
    if (!pr->wants_in && !(pr->wants_in = malloc((size_t)S_WANTS_IN_MAX * 16))) {
        return;
    }
    //  Sorted and each prefix once: a repeated prefix costs one envelope.
    uint8_t(*at)[16] = pr->wants_in + pr->n_wants_in;
    memcpy(at, f->prefixes, f->n_prefixes * SYNC_PREFIX_LEN);
    qsort(at, f->n_prefixes, SYNC_PREFIX_LEN, s_prefix_cmp);
    size_t n = 0;
    for (size_t i = 0; i < f->n_prefixes; i++) {
        if (n == 0 || memcmp(at[n - 1], at[i], SYNC_PREFIX_LEN) != 0) {
            memmove(at[n++], at[i], SYNC_PREFIX_LEN);
        }
    }
    pr->n_wants_in += n;
}

/* ---------------------------------------------------------------- pump */

typedef struct {
    frame_batch_t batch;
    uint8_t authors[PARLEY_BATCH_MAX][32];
    size_t n_authors;
    const s_owed_t *owed; /* the range being read, or NULL (wants) */
    uint64_t last_ts;     /* last row consumed */
    uint8_t last_id[32];
    bool consumed;
    bool full; /* the batch took no more */
} s_pump_t;

static void
s_pump_author(s_pump_t *p, const uint8_t *env, size_t len)
{
    const uint8_t *author = envelope_author(env, len);
    if (!author) {
        return;
    }
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
    const s_owed_t *o = p->owed;
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
s_pump_send(replica_t *self, link_t *link, s_pump_t *p)
{
    size_t count = p->batch.count;
    size_t len = frame_batch_finish(&p->batch);
    if (len == 0) {
        return true;
    }
    session_send_bundles(self->session, link, (const uint8_t(*)[32])p->authors, p->n_authors);
    if (!links_send(self->links, link, self->buf, len)) {
        return false;
    }
    self->envelopes_streamed += count;
    return true;
}

static void
s_owed_pop(s_peer_t *pr)
{
    free(pr->owed[0].excl);
    memmove(pr->owed, pr->owed + 1, (pr->n_owed - 1) * sizeof *pr->owed);
    pr->n_owed--;
}

//  One batch from the link's first queued range. False when the link takes
//  nothing more now (its queue is full): the cursor stays for next time.
static bool
s_pump_range(replica_t *self, link_t *link, s_peer_t *pr)
{
    s_owed_t *o = &pr->owed[0];
    s_pump_t p;
    memset(&p, 0, sizeof p);
    p.owed = o;
    frame_batch_begin(&p.batch, self->buf, PARLEY_FRAME_MAX);
    size_t n = 0;
    int rc = store_envelope_range(self->core->store, o->scope, o->after_ts, o->after_id, o->to_ts,
                                  o->to_id, PARLEY_BATCH_MAX, s_pump_row, &p, &n);
    if (rc != PARLEY_OK) {
        log_write(&self->core->log, LOG_LEVEL_WARN, "cannot read a range to stream: %s",
                  parley_strerror(rc));
        s_owed_pop(pr); // the next round asks again
        return true;
    }
    if (!s_pump_send(self, link, &p)) {
        return false;
    }
    if (p.consumed) {
        o->after_ts = p.last_ts;
        memcpy(o->after_id, p.last_id, 32);
    }
    if (!p.full && n < PARLEY_BATCH_MAX) {
        s_owed_pop(pr);
    }
    return true;
}

static bool
s_pump_wants(replica_t *self, link_t *link, s_peer_t *pr)
{
    s_pump_t p;
    memset(&p, 0, sizeof p);
    frame_batch_begin(&p.batch, self->buf, PARLEY_FRAME_MAX);
    size_t at = pr->wants_in_at;
    size_t end = pr->n_wants_in - at > S_PUMP_LOOKUPS ? at + S_PUMP_LOOKUPS : pr->n_wants_in;
    for (; at < end; at++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        if (store_envelope_by_prefix(self->core->store, pr->wants_in[at], &bytes, &len)
            != PARLEY_OK) {
            //  Gone (expired) or never held: nothing to send.
            if (++pr->want_misses % S_WANT_MISSES == 0) {
                links_strike(self->links, link, "it wants envelopes we never offered", 1);
            }
            continue;
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
    if (!s_pump_send(self, link, &p)) {
        return false;
    }
    pr->wants_in_at = at;
    if (at >= pr->n_wants_in) {
        pr->n_wants_in = 0;
        pr->wants_in_at = 0;
    }
    return true;
}

static bool
s_link_pending(const link_t *link)
{
    const s_peer_t *pr = link_slot(link, LINK_SLOT_REPLICA);
    return pr && link_online(link) && (pr->n_owed > 0 || pr->wants_in_at < pr->n_wants_in);
}

static uint64_t
s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
replica_pump(replica_t *self)
{
    uint64_t now = core_now(self->core);
    uint64_t end = s_mono_ms() + S_PUMP_BUDGET_MS;
    size_t n = links_count(self->links);
    size_t first = n > 0 ? self->pump_first % n : 0;
    self->pump_first = first + 1;
    for (size_t j = 0; j < n; j++) {
        link_t *link = links_at(self->links, (first + j) % n);
        if (!s_link_pending(link) || link_banned(link, now)) {
            continue;
        }
        s_peer_t *pr = link_slot(link, LINK_SLOT_REPLICA);
        for (unsigned k = 0; k < S_PUMP_BATCHES && (k == 0 || s_mono_ms() < end); k++) {
            bool sent = pr->wants_in_at < pr->n_wants_in ? s_pump_wants(self, link, pr)
                        : pr->n_owed > 0                 ? s_pump_range(self, link, pr)
                                                         : false;
            if (!sent) {
                break;
            }
        }
    }
}

bool
replica_backlog(const replica_t *self)
{
    for (size_t i = 0; i < links_count(self->links); i++) {
        if (s_link_pending(links_at(self->links, i))) {
            return true;
        }
    }
    return false;
}

/* --------------------------------------------------------------- timers */

static void
s_expire(replica_t *self, uint64_t now)
{
    store_expired_t gone[64];
    size_t n = 0;
    if (core_txn(self->core) != PARLEY_OK
        || store_envelope_expire(self->core->store, now, sizeof gone / sizeof gone[0], gone, &n)
               != PARLEY_OK) {
        self->next_expire = now + 1000;
        return;
    }
    //  QUEUED messages and evidence that expire have no envelope in the log.
    //  A failure undoes only this step: the next pass tries again.
    size_t n_unlogged = 0;
    if (store_expire_unlogged(self->core->store, now, &n_unlogged) != PARLEY_OK) {
        n_unlogged = 0;
    }
    if (n > 0 || n_unlogged > 0) {
        self->core->checkpoint = true; // disappearing means gone from the WAL too
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
replica_tick(replica_t *self, uint64_t now)
{
    if (now >= self->next_expire) {
        s_expire(self, now);
    }
    core_wake_at(self->core, self->next_expire);
    uint64_t period = self->core->cfg.sync_ms;
    for (size_t i = 0; i < links_count(self->links); i++) {
        link_t *link = links_at(self->links, i);
        //  Rounds only with peers we have really talked to (link.h): a round
        //  costs O(scopes), and a flood of HELLOs from fresh keys must not buy one each.
        if (!link_online(link) || !link_caps_known(link) || link_banned(link, now)
            || !link_verified(link)) {
            continue;
        }
        s_peer_t *pr = s_peer(link);
        if (!pr) {
            continue;
        }
        if (pr->round_start != 0 && now > pr->round_start + S_ROUND_STALE_MS) {
            pr->round_start = 0; // a message was lost with a connection: start again
            pr->round_msgs = 0;
        }
        //  A round asked for (replica_sync_soon: something new to offer,
        //  a scope new to us) opens from our side too, without waiting for
        //  the side that initiates.
        if (pr->round_start == 0
            && ((pr->soon && now >= pr->last_in_ms + S_SOON_QUIET_MS)
                || (now >= pr->next_sync && s_initiator(self, link)))) {
            pr->soon = false;
            s_open_round(self, link, pr, now);
            //  Jitter (75..125 % of the period) keeps a swarm from syncing in step.
            pr->next_sync = now + period * 3 / 4 + randombytes_uniform((uint32_t)(period / 2 + 1));
        }
        if (pr->round_start != 0) {
            core_wake_at(self->core, pr->round_start + S_ROUND_STALE_MS + 1);
        } else if (pr->soon) {
            core_wake_at(self->core, pr->last_in_ms + S_SOON_QUIET_MS);
        } else if (s_initiator(self, link)) {
            core_wake_at(self->core, pr->next_sync);
        }
    }
}

void
replica_link_up(replica_t *self, link_t *link)
{
    (void)self;
    s_peer_t *pr = link_slot(link, LINK_SLOT_REPLICA);
    if (pr) {
        pr->next_sync = 0;
        pr->round_start = 0;
        pr->round_msgs = 0;
    }
}

void
replica_sync_soon(replica_t *self, link_t *link)
{
    (void)self;
    s_peer_t *pr = link_slot(link, LINK_SLOT_REPLICA);
    if (pr) {
        pr->next_sync = 0;
        pr->soon = true; // the next tick opens a round, or the one after the round running
    }
}

void
replica_link_down(replica_t *self, link_t *link)
{
    (void)self;
    s_peer_t *pr = link_slot(link, LINK_SLOT_REPLICA);
    if (!pr) {
        return;
    }
    while (pr->n_owed > 0) {
        s_owed_pop(pr);
    }
    pr->n_wants_in = pr->wants_in_at = pr->n_wants_out = 0;
    free(pr->offered);
    pr->offered = NULL;
    pr->n_offered = 0;
    pr->round_start = 0;
    pr->round_msgs = 0;
    pr->hinted_ms = 0;
    pr->next_sync = 0;
}

void
replica_link_free(replica_t *self, link_t *link)
{
    replica_link_down(self, link);
    s_peer_t *pr = link_slot(link, LINK_SLOT_REPLICA);
    if (pr) {
        free(pr->owed);
        free(pr->wants_in);
        free(pr->wants_out);
        free(pr);
        link_set_slot(link, LINK_SLOT_REPLICA, NULL);
    }
}

uint64_t
replica_rounds_ended(const replica_t *self)
{
    return self->rounds_ended;
}

json_t *
replica_status(const replica_t *self)
{
    size_t loaded = 0, items = 0, mine = 0;
    for (size_t i = 0; i < self->n_scopes; i++) {
        mine += self->scopes[i]->mine;
        if (self->scopes[i]->set) {
            loaded++;
            items += sync_set_count(self->scopes[i]->set);
        }
    }
    size_t owed = 0, wants = 0;
    for (size_t i = 0; i < links_count(self->links); i++) {
        const s_peer_t *pr = link_slot(links_at(self->links, i), LINK_SLOT_REPLICA);
        if (pr) {
            owed += pr->n_owed;
            wants += pr->n_wants_in - pr->wants_in_at;
        }
    }
    json_t *last =
        json_pack("{s:I, s:I, s:I}", "ms", (json_int_t)self->last_round_ms, "messages",
                  (json_int_t)self->last_round_msgs, "bytes", (json_int_t)self->last_round_bytes);
    return json_pack(
        "{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I, s:o}",
        "relay", self->core->cfg.relay, "scopes", (json_int_t)self->n_scopes, "scopes_mine",
        (json_int_t)mine, "scopes_loaded", (json_int_t)loaded, "items_loaded", (json_int_t)items,
        "rounds_started", (json_int_t)self->rounds_started, "rounds_ended",
        (json_int_t)self->rounds_ended, "digests_equal", (json_int_t)self->digests_equal,
        "messages_in", (json_int_t)self->msgs_in, "messages_out", (json_int_t)self->msgs_out,
        "bytes_in", (json_int_t)self->bytes_in, "bytes_out", (json_int_t)self->bytes_out,
        "wants_sent", (json_int_t)self->wants_sent, "envelopes_streamed",
        (json_int_t)self->envelopes_streamed, "expired", (json_int_t)self->expired, "ranges_queued",
        (json_int_t)owed, "wants_queued", (json_int_t)wants, "last_round", last);
}
