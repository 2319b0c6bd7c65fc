/*  node/channel.c — the channels this node is in (see channel.h; protocol
 *  in proto/SPEC.md §21).
 *
 *  Each channel is a fold of its control log (proto/roster.h under the
 *  channel profile) plus its row in the store. Keys, chains and messages
 *  are read from the store when a message needs them: a node in many
 *  channels keeps only their folds in memory.
 *
 *  Epochs and bindings. The epoch is the count of applied REMOVE (leave
 *  included) and REKEY events, in the fold's order; the binding of epoch e
 *  hashes the ids of the first e of them, sorted (chan_binding). A key is
 *  usable (bound) only when it names the binding our own fold gives its
 *  epoch: a key drawn by a member that had not seen a removal is bound to
 *  fewer removals and is never used by a member that has.
 *
 *  Rotation is its own step: the fold that reaches an epoch without a bound
 *  key arms a rotation (rank × CHANNELS_ROTATE_STEP_MS later for an admin of
 *  that rank), and only a later iteration, after the commit that applied the
 *  removal, draws the key and seals it to the members of the fold then.
 */
#include "channel.h"

#include "../proto/b32.h"
#include "../proto/chan.h"
#include "../proto/content.h"
#include "../proto/roster.h"
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

//  What one key has in a channel: its control events (a key that never was
//  an admin may hold CHANNELS_EVENTS_PER_MEMBER), and its messages that
//  wait for a key (at most CHANNELS_WAITING_PER_AUTHOR).
//  A message kept though it is more than CHAN_SKIP_MAX steps ahead of its
//  sender's chain here: it opens once the steps before it did.
typedef struct {
    uint8_t id[32];
    uint32_t epoch;
    uint8_t key_id[CHAN_KEY_ID_LEN];
    uint32_t counter;
} s_ahead_t;

typedef struct {
    uint8_t pk[32];
    uint32_t events;
    uint32_t waiting; /* its messages kept unopened: no key yet, or ahead */
    s_ahead_t *ahead; /* the ahead ones, by (epoch, key_id, counter) */
    size_t n_ahead, cap_ahead;
} s_author_t;

typedef struct {
    uint8_t id[32];      /* channel id: the control scope */
    uint8_t scope[32];   /* its msg scope */
    roster_t *fold;      /* its control log */
    bool ours;           /* it has a row: we are, or were, in it */
    bool member;         /* the last fold names us */
    bool dirty;          /* events added since the last fold */
    bool reopen;         /* a key was bound: open the messages that waited for one */
    bool armed;          /* rotate_at was set before this iteration */
    uint64_t rotate_at;  /* we draw the current epoch's key then (0: nothing due) */
    uint64_t seen_ms;    /* a pending channel: when its last event came */
    uint64_t receipt_at; /* a delivered receipt goes then (0: none due) */
    uint64_t keyed_ms;   /* the current epoch's key came then (0: no key yet) */
    uint64_t rekeyed_ms; /* we wrote a REKEY then: the next waits for its key */
    bool old_keys;       /* keys of epochs before the current one are held */
    uint64_t net_since;  /* network-wide: its members and the network's differ since */
    bool owed;           /* admins: look for members without the keys they should hold */
    size_t owed_members; /* the member count and epoch of the last look */
    uint32_t owed_epoch;
    uint8_t (*unpaid)[32]; /* members found without them and without a prekey, sorted */
    size_t n_unpaid;
    uint64_t unpaid_at;  /* when to see whether their prekeys came */
    size_t n_queued;     /* our messages waiting for the current epoch's key */
    s_author_t *authors; /* sorted by key */
    size_t n_authors, cap_authors;
    uint64_t net_next; /* network-wide: when to compare them again */
    store_chan_t row;  /* its row (when ours) */
} s_chan_t;

struct channels {
    core_t *core;       /* borrowed */
    links_t *links;     /* borrowed */
    replica_t *replica; /* borrowed */
    session_t *session; /* borrowed */
    network_t *network; /* borrowed */
    s_chan_t **chans;   /* ours and pending, in no order: found by either scope */
    size_t n, cap;
    uint8_t *buf; /* PARLEY_ENVELOPE_MAX: an envelope being sealed */
};

/* ------------------------------------------------------------ the table */

static s_chan_t *
s_find(const channels_t *self, const uint8_t scope[32], bool *msgs)
{
    for (size_t i = 0; i < self->n; i++) {
        s_chan_t *c = self->chans[i];
        if (memcmp(c->id, scope, 32) == 0) {
            if (msgs) {
                *msgs = false;
            }
            return c;
        }
        if (memcmp(c->scope, scope, 32) == 0) {
            if (msgs) {
                *msgs = true;
            }
            return c;
        }
    }
    return NULL;
}

//  How many channels not ours, and their events in all, we hold folded: a
//  member those it may be added to, a relay every channel it carries (it
//  tells members they are in one, SPEC §16).
static void
s_pending_caps(const channels_t *self, size_t *chans, size_t *events)
{
    bool relay = self->core->cfg.relay;
    *chans = relay ? CHANNELS_RELAY_PENDING_MAX : CHANNELS_PENDING_MAX;
    *events = relay ? CHANNELS_RELAY_PENDING_EVENTS : CHANNELS_PENDING_EVENTS;
}

//  Whether the channels not ours are at their caps: for one more event, and
//  (new_chan) one more channel.
static bool
s_pending_full(const channels_t *self, bool new_chan)
{
    size_t pending = 0, events = 0, max_chans = 0, max_events = 0;
    s_pending_caps(self, &max_chans, &max_events);
    for (size_t i = 0; i < self->n; i++) {
        pending += !self->chans[i]->ours;
        events += self->chans[i]->ours ? 0 : roster_event_count(self->chans[i]->fold);
    }
    return (new_chan && pending >= max_chans) || events >= max_events;
}

static void
s_chan_free(s_chan_t *c)
{
    if (c) {
        roster_destroy(&c->fold);
        free(c->unpaid);
        for (size_t i = 0; i < c->n_authors; i++) {
            free(c->authors[i].ahead);
        }
        free(c->authors);
        free(c);
    }
}

//  arr (n held, *cap allocated, elem bytes each) with room for one more:
//  arr itself, or grown (doubling from first, *cap updated), or NULL when
//  out of memory (arr untouched, still the caller's).
static void *
s_room(void *arr, size_t n, size_t *cap, size_t elem, size_t first)
{
    if (n < *cap) {
        return arr;
    }
    size_t want = *cap ? *cap * 2 : first;
    void *grown = realloc(arr, want * elem);
    if (grown) {
        *cap = want;
    }
    return grown;
}

//  c's entry for pk, added (zeroed) when add; NULL if absent, or out of
//  memory.
static s_author_t *
s_author(s_chan_t *c, const uint8_t pk[32], bool add)
{
    size_t lo = 0;
    if (core_key_search(c->authors, c->n_authors, sizeof *c->authors, pk, &lo)) {
        return &c->authors[lo];
    }
    if (!add) {
        return NULL;
    }
    s_author_t *room = s_room(c->authors, c->n_authors, &c->cap_authors, sizeof *room, 8);
    if (!room) {
        return NULL;
    }
    c->authors = room;
    memmove(c->authors + lo + 1, c->authors + lo, (c->n_authors - lo) * sizeof *c->authors);
    memset(&c->authors[lo], 0, sizeof c->authors[lo]);
    memcpy(c->authors[lo].pk, pk, 32);
    c->n_authors++;
    return &c->authors[lo];
}

//  Adds a control event to c's fold (not folded yet), counted for its
//  author.
static int
s_fold_add(s_chan_t *c, const uint8_t id[32], const uint8_t author[32], uint64_t ts_ms,
           const uint8_t *body, size_t body_len)
{
    int rc = roster_add_event(c->fold, id, author, ts_ms, body, body_len);
    if (rc == PARLEY_OK) {
        s_author_t *a = s_author(c, author, true);
        if (!a) {
            return PARLEY_ERR_NOMEM;
        }
        a->events++;
    }
    return rc;
}

#define S_LOAD_PAGE 1024u

typedef struct {
    s_chan_t *c;
    uint64_t ts; /* the last row read: the next page starts after it */
    uint8_t id[32];
} s_load_t;

static int
s_load_event(uint64_t ts, const uint8_t id[32], const uint8_t *bytes, size_t len, void *arg)
{
    s_load_t *l = arg;
    l->ts = ts;
    memcpy(l->id, id, 32);
    envelope_t env;
    if (envelope_decode(bytes, len, &env) != PARLEY_OK || env.kind != ENVELOPE_KIND_CHAN) {
        return 0; // a KEYS body in the same scope
    }
    int rc = s_fold_add(l->c, id, env.author, env.ts_ms, env.body, env.body_len);
    return rc == PARLEY_ERR_NOMEM ? rc : 0;
}

//  A channel of scope id, its control log read from the store.
static int
s_chan_new(channels_t *self, const uint8_t id[32], s_chan_t **out)
{
    *out = NULL;
    s_chan_t **room = s_room(self->chans, self->n, &self->cap, sizeof *room, 16);
    if (!room) {
        return PARLEY_ERR_NOMEM;
    }
    self->chans = room;
    s_chan_t *c = calloc(1, sizeof *c);
    if (!c) {
        return PARLEY_ERR_NOMEM;
    }
    memcpy(c->id, id, 32);
    chan_msg_scope(id, c->scope);
    c->fold = roster_new_channel(id);
    if (!c->fold) {
        free(c);
        return PARLEY_ERR_NOMEM;
    }
    //  The control scope holds KEYS bodies too: read a page at a time.
    s_load_t l = { .c = c };
    uint8_t hi[32];
    memset(hi, 0xFF, sizeof hi);
    size_t n = 0;
    int rc = PARLEY_OK;
    do {
        rc = store_envelope_range(self->core->store, id, l.ts, l.id, INT64_MAX, hi, S_LOAD_PAGE,
                                  s_load_event, &l, &n);
    } while (rc == PARLEY_OK && n == S_LOAD_PAGE);
    if (rc == PARLEY_OK) {
        rc = roster_fold(c->fold);
    }
    if (rc != PARLEY_OK) {
        s_chan_free(c);
        return rc;
    }
    c->member = roster_role(c->fold, identity_ed_pk(self->core->id)) != 0;
    self->chans[self->n++] = c;
    *out = c;
    return PARLEY_OK;
}

static void
s_clear(channels_t *self)
{
    for (size_t i = 0; i < self->n; i++) {
        s_chan_free(self->chans[i]);
    }
    self->n = 0;
}

static int
s_load(channels_t *self)
{
    s_clear(self);
    store_chan_t *rows = NULL;
    size_t n = 0;
    int rc = store_chan_list(self->core->store, &rows, &n);
    for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
        s_chan_t *c = NULL;
        rc = s_chan_new(self, rows[i].id, &c);
        if (rc == PARLEY_OK) {
            c->ours = true;
            c->row = rows[i];
            c->dirty = true; // settled in the first iteration: keys, a rotation due
            c->owed = true;  // and members that may lack keys
            uint64_t queued = 0;
            rc = store_chan_queue_count(self->core->store, c->id, &queued);
            c->n_queued = (size_t)queued;
            if (c->member) {
                replica_mine(self->replica, c->id);
                replica_mine(self->replica, c->scope);
            }
        }
    }
    free(rows);
    //  A relay folds every channel it carries, within its caps.
    size_t max_chans = 0, max_events = 0, n_scopes = 0, pending = 0, events = 0;
    s_pending_caps(self, &max_chans, &max_events);
    uint8_t(*scopes)[32] = self->core->cfg.relay && rc == PARLEY_OK
                               ? malloc((size_t)(CHANNELS_MAX + max_chans) * 32)
                               : NULL;
    if (self->core->cfg.relay && rc == PARLEY_OK) {
        rc = scopes ? store_chan_control_scopes(self->core->store, scopes, CHANNELS_MAX + max_chans,
                                                &n_scopes)
                    : PARLEY_ERR_NOMEM;
    }
    for (size_t i = 0; rc == PARLEY_OK && i < n_scopes && pending < max_chans; i++) {
        s_chan_t *c = s_find(self, scopes[i], NULL);
        if (c || events >= max_events) {
            continue;
        }
        rc = s_chan_new(self, scopes[i], &c);
        if (rc == PARLEY_OK) {
            c->seen_ms = core_now(self->core);
            events += roster_event_count(c->fold);
            pending++;
        }
    }
    free(scopes);
    return rc;
}

channels_t *
channels_new(core_t *core, links_t *links, replica_t *replica, session_t *session,
             network_t *network, int *err)
{
    channels_t *self = calloc(1, sizeof *self);
    if (!self) {
        *err = PARLEY_ERR_NOMEM;
        return NULL;
    }
    self->core = core;
    self->links = links;
    self->replica = replica;
    self->session = session;
    self->network = network;
    self->buf = malloc(PARLEY_ENVELOPE_MAX);
    *err = self->buf ? s_load(self) : PARLEY_ERR_NOMEM;
    if (*err != PARLEY_OK) {
        channels_destroy(&self);
    }
    return self;
}

void
channels_destroy(channels_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    channels_t *self = *self_p;
    s_clear(self);
    free(self->chans);
    free(self->buf);
    free(self);
    *self_p = NULL;
}

void
channels_rollback(channels_t *self)
{
    if (s_load(self) != PARLEY_OK) {
        s_clear(self); // read again from the store at the next envelope
    }
}

/* ------------------------------------------------------------ epochs */

static int
s_id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

//  The binding of epoch e by c's fold: the first e applied REMOVE and
//  REKEY events, sorted. PARLEY_ERR_STATE if the fold has fewer.
static int
s_binding(const s_chan_t *c, uint32_t e, uint8_t out[32])
{
    uint8_t(*ids)[32] = e ? malloc((size_t)e * 32) : NULL;
    if (e && !ids) {
        return PARLEY_ERR_NOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; n < e && i < roster_log_count(c->fold); i++) {
        roster_log_entry_t le;
        if (roster_log_at(c->fold, i, &le) == PARLEY_OK && le.applied
            && (le.type == ROSTER_REMOVE || le.type == ROSTER_REKEY)) {
            memcpy(ids[n++], le.id, 32);
        }
    }
    if (n < e) {
        free(ids);
        return PARLEY_ERR_STATE;
    }
    if (n > 1) {
        qsort(ids, n, 32, s_id_cmp);
    }
    chan_binding(c->id, (const uint8_t *)ids, n, out);
    free(ids);
    return PARLEY_OK;
}

static bool
s_is_admin(const s_chan_t *c, const uint8_t pk[32])
{
    return roster_role(c->fold, pk) == ROSTER_ROLE_ADMIN;
}

//  The binding c's fold gives its current epoch now (*ok false if it
//  cannot be computed: no key of this epoch is live then).
static void
s_current_binding(const s_chan_t *c, uint8_t out[32], bool *ok)
{
    *ok = s_binding(c, roster_epoch(c->fold), out) == PARLEY_OK;
}

//  Whether k is a live key of c's current epoch: bound, and named by the
//  binding the fold gives that epoch today. A key bound earlier to a fold
//  that has since changed under it (the REMOVE or REKEY it was bound to
//  lost a concurrent conflict, or one that sorts before it came later)
//  still opens what was sealed under it, but nothing new is sealed under
//  it, handed on, or counted as the epoch's key: members that learned the
//  fold in the other order never bind it.
static bool
s_key_live(const s_chan_t *c, const store_chan_key_t *k, const uint8_t binding[32], bool ok)
{
    return ok && k->bound && k->epoch == roster_epoch(c->fold)
           && sodium_memcmp(k->binding, binding, 32) == 0;
}

//  The key a sender uses now: the current epoch's live key whose author is
//  the most senior, then the smaller key_id. PARLEY_ERR_NOKEY if none.
static int
s_send_key(channels_t *self, const s_chan_t *c, store_chan_key_t *out)
{
    store_chan_key_t *keys = NULL;
    size_t n = 0;
    int rc = store_chan_key_list(self->core->store, c->id, &keys, &n);
    if (rc != PARLEY_OK) {
        return rc;
    }
    uint8_t binding[32];
    bool ok = false;
    s_current_binding(c, binding, &ok);
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        if (!s_key_live(c, &keys[i], binding, ok)) {
            continue;
        }
        if (best < 0) {
            best = (long)i;
            continue;
        }
        uint32_t r = roster_rank(c->fold, keys[i].author);
        uint32_t rb = roster_rank(c->fold, keys[best].author);
        if (r < rb || (r == rb && memcmp(keys[i].key_id, keys[best].key_id, 8) < 0)) {
            best = (long)i;
        }
    }
    if (best >= 0) {
        *out = keys[best];
    }
    store_chan_keys_free(keys, n);
    return best >= 0 ? PARLEY_OK : PARLEY_ERR_NOKEY;
}

/* ------------------------------------------------------------ authoring */

//  Seals body under an envelope of kind in scope and stores it; the push
//  goes to every member online after the commit.
static int
s_put_envelope(channels_t *self, envelope_t *env, uint8_t id[32])
{
    core_t *core = self->core;
    int rc = envelope_sealed_view(env, self->buf, env->bytes_len);
    if (rc == PARLEY_OK) {
        envelope_id(env, id);
        rc = store_envelope_put(core->store, env, id, env->ts_ms);
    }
    if (rc == PARLEY_OK) {
        replica_stored(self->replica, NULL, env, id);
    }
    return rc;
}

static void
s_env_fields(channels_t *self, envelope_t *env, uint8_t kind, const uint8_t scope[32])
{
    memset(env, 0, sizeof *env);
    env->version = PARLEY_ENVELOPE_VERSION;
    env->kind = kind;
    memcpy(env->author, identity_ed_pk(self->core->id), 32);
    memcpy(env->scope, scope, 32);
    env->ts_ms = core_now(self->core);
}

static const char *
s_role_name(uint8_t role, uint32_t rank)
{
    return role == ROSTER_ROLE_ADMIN    ? (rank == 0 ? "owner" : "admin")
           : role == ROSTER_ROLE_READER ? "reader"
                                        : "member";
}

//  A member and its role, to tell what a fold changed.
typedef struct {
    uint8_t pk[32];
    uint8_t role;
    uint32_t rank;
} s_seat_t;

static int
s_seat_cmp(const void *a, const void *b)
{
    return memcmp(((const s_seat_t *)a)->pk, ((const s_seat_t *)b)->pk, 32);
}

//  c's members and roles, sorted by key (*out the caller's to free).
static int
s_seats(const s_chan_t *c, s_seat_t **out, size_t *n)
{
    *n = 0;
    size_t count = roster_member_count(c->fold);
    *out = count ? malloc(count * sizeof **out) : NULL;
    if (count && !*out) {
        return PARLEY_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        roster_member_t m;
        if (roster_member_at(c->fold, i, &m) == PARLEY_OK) {
            memcpy((*out)[*n].pk, m.pk, 32);
            (*out)[*n].role = roster_role(c->fold, m.pk);
            (*out)[*n].rank = roster_rank(c->fold, m.pk);
            (*n)++;
        }
    }
    if (*n > 1) {
        qsort(*out, *n, sizeof **out, s_seat_cmp);
    }
    return PARLEY_OK;
}

static void
s_tell_member(channels_t *self, const s_chan_t *c, const uint8_t pk[32], const char *role)
{
    core_notify(self->core, "channel.member",
                json_pack("{s:o, s:s, s:o, s:o, s:s}", "channel", core_json_id(c->id), "name",
                          c->row.name, "member", core_json_id(pk), "member_short",
                          core_json_short_id(pk), "role", role));
}

//  A "channel.member" notification for every member that came, went or
//  took another role between before (sorted) and c's fold now.
static void
s_tell_changes(channels_t *self, const s_chan_t *c, const s_seat_t *before, size_t n_before)
{
    s_seat_t *after = NULL;
    size_t n_after = 0;
    if (s_seats(c, &after, &n_after) != PARLEY_OK) {
        return; // out of memory: the notifications are lost, the state is not
    }
    size_t i = 0, j = 0;
    while (i < n_before || j < n_after) {
        int cmp = i == n_before ? 1 : j == n_after ? -1 : memcmp(before[i].pk, after[j].pk, 32);
        if (cmp < 0) {
            s_tell_member(self, c, before[i++].pk, "gone");
        } else if (cmp > 0) {
            s_tell_member(self, c, after[j].pk, s_role_name(after[j].role, after[j].rank));
            j++;
        } else {
            if (before[i].role != after[j].role || (before[i].rank == 0) != (after[j].rank == 0)) {
                s_tell_member(self, c, after[j].pk, s_role_name(after[j].role, after[j].rank));
            }
            i++;
            j++;
        }
    }
    free(after);
}

//  Folds c's log; while we are in c, every change of its members is told.
static int
s_fold_told(channels_t *self, s_chan_t *c)
{
    s_seat_t *before = NULL;
    size_t n_before = 0;
    bool tell = c->ours && c->member && s_seats(c, &before, &n_before) == PARLEY_OK;
    int rc = roster_fold(c->fold);
    if (rc == PARLEY_OK && tell) {
        s_tell_changes(self, c, before, n_before);
    }
    free(before);
    return rc;
}

//  Authors a control event in c (parents: the heads) and folds it.
static int
s_author_event(channels_t *self, s_chan_t *c, const roster_event_t *ev, uint8_t id[32])
{
    core_t *core = self->core;
    uint8_t body[ROSTER_BODY_MAX];
    size_t body_len = 0;
    int rc =
        roster_event_build(c->fold, identity_ed_pk(core->id), ev, body, sizeof body, &body_len);
    envelope_t env;
    s_env_fields(self, &env, ENVELOPE_KIND_CHAN, c->id);
    if (rc == PARLEY_OK) {
        rc = store_seq_next(core->store, env.author, env.scope, &env.seq);
    }
    env.body = body;
    env.body_len = body_len;
    size_t len = 0;
    if (rc == PARLEY_OK) {
        rc = envelope_seal(&env, identity_ed_sk(core->id), self->buf, PARLEY_ENVELOPE_MAX, &len);
    }
    env.bytes_len = len;
    if (rc == PARLEY_OK) {
        rc = envelope_sealed_view(&env, self->buf, len);
    }
    //  Folded before the push leaves: a member it adds is among those it
    //  goes to.
    if (rc == PARLEY_OK) {
        envelope_id(&env, id);
        rc = store_envelope_put(core->store, &env, id, env.ts_ms);
    }
    if (rc == PARLEY_OK) {
        rc = s_fold_add(c, id, env.author, env.ts_ms, body, body_len);
    }
    if (rc == PARLEY_OK) {
        rc = s_fold_told(self, c);
        c->dirty = true; // settled (membership, keys) by the caller
    }
    if (rc == PARLEY_OK) {
        replica_stored(self->replica, NULL, &env, id);
    }
    return rc;
}

//  Seals content as our next message in c under key k.
static int
s_author_message(channels_t *self, s_chan_t *c, const store_chan_key_t *k, const uint8_t *content,
                 size_t content_len, envelope_t *env, uint8_t id[32])
{
    core_t *core = self->core;
    const uint8_t *me = identity_ed_pk(core->id);
    uint8_t *saved = malloc(CHAN_RX_SAVED_MAX);
    if (!saved) {
        return PARLEY_ERR_NOMEM;
    }
    //  Our sending chain is a receiver's chain that never skips.
    size_t saved_len = 0;
    chan_rx_t *tx = NULL;
    int rc = store_chan_chain_get(core->store, c->id, k->epoch, k->key_id, me, saved,
                                  CHAN_RX_SAVED_MAX, &saved_len);
    if (rc == PARLEY_OK) {
        tx = chan_rx_load(saved, saved_len, &rc);
    } else if (rc == PARLEY_ERR_NOTFOUND) {
        uint8_t ck[32];
        chan_chain_start(k->key, c->id, k->epoch, me, ck);
        tx = chan_rx_new(ck, 0);
        sodium_memzero(ck, sizeof ck);
        rc = tx ? PARLEY_OK : PARLEY_ERR_NOMEM;
    }
    chan_msg_header_t h = { .epoch = k->epoch, .counter = chan_rx_next(tx) };
    memcpy(h.key_id, k->key_id, sizeof h.key_id);
    uint8_t mk[32];
    if (rc == PARLEY_OK) {
        rc = chan_rx_key(tx, h.counter, mk);
    }
    if (rc == PARLEY_OK) {
        rc = chan_rx_used(tx, h.counter);
    }
    if (rc == PARLEY_OK) {
        rc = chan_rx_save(tx, saved, CHAN_RX_SAVED_MAX, &saved_len);
    }
    if (rc == PARLEY_OK) {
        rc = store_chan_chain_put(core->store, c->id, k->epoch, k->key_id, me, saved, saved_len);
    }
    chan_rx_destroy(&tx);
    sodium_memzero(saved, CHAN_RX_SAVED_MAX);
    free(saved);
    s_env_fields(self, env, ENVELOPE_KIND_CHAN_MSG, c->scope);
    if (rc == PARLEY_OK) {
        rc = store_seq_next(core->store, env->author, env->scope, &env->seq);
    }
    size_t body_len = chan_body_len(content_len);
    if (rc == PARLEY_OK && body_len == 0) {
        rc = PARLEY_ERR_LIMIT;
    }
    uint8_t hdr[PARLEY_ENVELOPE_HEADER_LEN];
    size_t len = 0;
    if (rc == PARLEY_OK) {
        envelope_header(env, body_len, hdr);
        rc = chan_body_seal(hdr, &h, mk, content, content_len,
                            self->buf + PARLEY_ENVELOPE_HEADER_LEN,
                            PARLEY_ENVELOPE_MAX - PARLEY_ENVELOPE_HEADER_LEN, &len);
    }
    sodium_memzero(mk, sizeof mk);
    env->body = self->buf + PARLEY_ENVELOPE_HEADER_LEN;
    env->body_len = len;
    if (rc == PARLEY_OK) {
        rc = envelope_seal(env, identity_ed_sk(core->id), self->buf, PARLEY_ENVELOPE_MAX, &len);
    }
    env->bytes_len = len;
    if (rc == PARLEY_OK) {
        rc = s_put_envelope(self, env, id);
    }
    return rc;
}

//  Sends content in c: one envelope, whatever the member count.
static int
s_send_content(channels_t *self, s_chan_t *c, const uint8_t *content, size_t len, envelope_t *env,
               uint8_t id[32], const char **why)
{
    store_chan_key_t k;
    int rc = s_send_key(self, c, &k);
    if (rc == PARLEY_ERR_NOKEY) {
        *why = "this channel's key for the current epoch has not come yet: try again shortly";
        return rc;
    }
    if (rc == PARLEY_OK) {
        rc = s_author_message(self, c, &k, content, len, env, id);
    }
    sodium_memzero(&k, sizeof k);
    return rc;
}

/* ------------------------------------------------------------ keys out */

//  Seals key k to the members recipients (sorted, not us) in as few KEYS
//  bodies as fit. A member whose prekey we lack is skipped (*skipped).
static int
s_send_keys(channels_t *self, s_chan_t *c, const store_chan_key_t *k, const uint8_t (*rcpt)[32],
            size_t n, size_t *skipped)
{
    core_t *core = self->core;
    *skipped = 0;
    //  Those whose prekey we hold, with it (read once).
    prekey_t *ready = n ? malloc(n * sizeof *ready) : NULL;
    size_t n_ready = 0;
    if (n && !ready) {
        return PARLEY_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (store_peer_prekey_get(core->store, rcpt[i], &ready[n_ready]) == PARLEY_OK
            && memcmp(ready[n_ready].owner, rcpt[i], 32) == 0) {
            n_ready++;
        } else {
            (*skipped)++;
            c->owed = true; // sealed to it once its prekey comes
        }
    }
    size_t parts = (n_ready + CHAN_KEYS_MAX - 1) / CHAN_KEYS_MAX;
    int rc = parts > 255 ? PARLEY_ERR_LIMIT : PARLEY_OK;
    uint32_t today = core_day(core, core_now(core));
    for (size_t p = 0; rc == PARLEY_OK && p < parts; p++) {
        size_t first = p * CHAN_KEYS_MAX;
        size_t count = n_ready - first < CHAN_KEYS_MAX ? n_ready - first : CHAN_KEYS_MAX;
        chan_keys_t kb = {
            .epoch = k->epoch, .part = (uint8_t)p, .parts = (uint8_t)parts, .n = count
        };
        memcpy(kb.key_id, k->key_id, sizeof kb.key_id);
        memcpy(kb.binding, k->binding, 32);
        randombytes_buf(kb.nonce, sizeof kb.nonce);
        envelope_t env;
        s_env_fields(self, &env, ENVELOPE_KIND_CHAN_KEYS, c->id);
        uint8_t *body = self->buf + PARLEY_ENVELOPE_HEADER_LEN;
        size_t body_len = 0;
        rc = chan_keys_begin(&kb, body, PARLEY_BODY_MAX, &body_len);
        for (size_t i = 0; rc == PARLEY_OK && i < count; i++) {
            const prekey_t *spk = &ready[first + i];
            dm_header_t h;
            uint8_t day_key[32];
            rc = session_send_key(self->session, spk->owner, spk, today, &h, day_key);
            chan_keys_entry_t e = { spk->owner, h.ek_pub, h.spk_id, h.day0, h.day, NULL };
            if (rc == PARLEY_OK) {
                rc = chan_keys_entry_seal(c->id, &kb, &e, day_key, k->key,
                                          body + CHAN_KEYS_FIXED + i * CHAN_KEYS_ENTRY_LEN);
            }
            sodium_memzero(day_key, sizeof day_key);
        }
        env.body = body;
        env.body_len = body_len;
        if (rc == PARLEY_OK) {
            rc = store_seq_next(core->store, env.author, env.scope, &env.seq);
        }
        size_t len = 0;
        if (rc == PARLEY_OK) {
            rc =
                envelope_seal(&env, identity_ed_sk(core->id), self->buf, PARLEY_ENVELOPE_MAX, &len);
        }
        env.bytes_len = len;
        uint8_t id[32];
        if (rc == PARLEY_OK) {
            rc = s_put_envelope(self, &env, id);
        }
    }
    free(ready);
    return rc;
}

//  Every member of c's fold but us (and, in a network, only its members),
//  sorted: who gets its keys. *out is the caller's to free.
static int
s_members(channels_t *self, const s_chan_t *c, uint8_t (**out)[32], size_t *n)
{
    size_t count = roster_member_count(c->fold);
    *out = count ? malloc(count * 32) : NULL;
    *n = 0;
    if (count && !*out) {
        return PARLEY_ERR_NOMEM;
    }
    for (size_t i = 0; i < count; i++) {
        roster_member_t m;
        //  In a network, a key its roster no longer has gets nothing (a
        //  network-wide channel's REMOVE of it may still be on its way).
        if (roster_member_at(c->fold, i, &m) == PARLEY_OK
            && memcmp(m.pk, identity_ed_pk(self->core->id), 32) != 0
            && network_allows(self->network, m.pk)) {
            memcpy((*out)[(*n)++], m.pk, 32);
        }
    }
    if (*n > 1) {
        qsort(*out, *n, 32, s_id_cmp);
    }
    return PARLEY_OK;
}

//  The channel's settings again, under the new epoch's key: a member who
//  joins a from-join channel later cannot read the message that made them.
static int
s_settings_again(channels_t *self, s_chan_t *c)
{
    uint8_t content[CONTENT_AGAIN_FIXED + 1 + CONTENT_NAME_MAX + CONTENT_TOPIC_MAX];
    size_t len = 0;
    const store_chan_pos_t *at = &c->row.meta;
    int rc = content_encode_chan_meta_again(at->ts_ms, at->author, at->seq, c->row.name,
                                            strlen(c->row.name), c->row.topic, strlen(c->row.topic),
                                            content, sizeof content, &len);
    envelope_t env;
    uint8_t id[32];
    const char *why = NULL;
    return rc == PARLEY_OK ? s_send_content(self, c, content, len, &env, id, &why) : rc;
}

//  Draws the key of c's current epoch, takes it, and seals it to every
//  other member.
static int
s_rotate(channels_t *self, s_chan_t *c)
{
    core_t *core = self->core;
    store_chan_key_t k;
    memset(&k, 0, sizeof k);
    memcpy(k.channel, c->id, 32);
    k.epoch = roster_epoch(c->fold);
    int rc = s_binding(c, k.epoch, k.binding);
    randombytes_buf(k.key, sizeof k.key);
    chan_key_id(c->id, k.epoch, k.key, k.key_id);
    memcpy(k.author, identity_ed_pk(core->id), 32);
    k.bound = true;
    k.added_ms = core_now(core);
    if (rc == PARLEY_OK) {
        rc = store_chan_key_put(core->store, &k);
    }
    uint8_t(*rcpt)[32] = NULL;
    size_t n = 0, skipped = 0;
    if (rc == PARLEY_OK) {
        rc = s_members(self, c, &rcpt, &n);
    }
    if (rc == PARLEY_OK) {
        rc = s_send_keys(self, c, &k, (const uint8_t(*)[32])rcpt, n, &skipped);
    }
    free(rcpt);
    sodium_memzero(&k, sizeof k);
    if (rc == PARLEY_OK && c->row.meta.ts_ms != 0) {
        rc = s_settings_again(self, c);
    }
    if (rc == PARLEY_OK) {
        c->rotate_at = 0;
        c->armed = false;
        c->dirty = true; // settled again: the key's time starts the rotation period
        log_write(&core->log, LOG_LEVEL_INFO,
                  "channel epoch %" PRIu32 ": a new key for %zu members (%zu without a prekey yet)",
                  roster_epoch(c->fold), n - skipped, skipped);
    }
    return rc;
}

/* ------------------------------------------------------------ ingest */

int
channels_accepts(channels_t *self, const envelope_t *env)
{
    bool msgs = false;
    s_chan_t *c = s_find(self, env->scope, &msgs);
    if (env->kind == ENVELOPE_KIND_CHAN) {
        roster_event_t ev;
        int rc = roster_event_decode(env->body, env->body_len, &ev);
        if (rc != PARLEY_OK) {
            return rc;
        }
        if (c && msgs) {
            return PARLEY_ERR_NOTFOUND; // a control event in a message scope
        }
        if (!c || !c->ours) {
            //  A channel we may be added to: held in memory, within bounds
            //  (CHANNELS_PENDING_MAX of them, CHANNELS_PENDING_EVENTS in all).
            return s_pending_full(self, !c) ? PARLEY_ERR_LIMIT : PARLEY_OK;
        }
        //  Everyone shares ROSTER_EVENTS_MAX: a key that never was an admin
        //  holds at most CHANNELS_EVENTS_PER_MEMBER (its own valid events
        //  are its leaves), or one hostile member could fill the log and
        //  shut the admins out. One that was an admin is not capped: its
        //  acts count, and every node must take them all for the folds to
        //  agree.
        const s_author_t *a = s_author(c, env->author, false);
        if (a && a->events >= CHANNELS_EVENTS_PER_MEMBER
            && !roster_was_admin(c->fold, env->author)) {
            return PARLEY_ERR_LIMIT;
        }
        return roster_event_count(c->fold) >= ROSTER_EVENTS_MAX ? PARLEY_ERR_LIMIT : PARLEY_OK;
    }
    if (!c || msgs != (env->kind == ENVELOPE_KIND_CHAN_MSG)) {
        return PARLEY_ERR_NOTFOUND;
    }
    //  A key or a message from a key the fold knows (a removed member's
    //  last messages may still arrive). A channel not ours yet holds them
    //  for when its fold names us (pushed with the ADD, they may come
    //  before the events it descends from), under the relay quota.
    if (c->ours && roster_role(c->fold, env->author) == 0
        && !roster_is_removed(c->fold, env->author)) {
        return PARLEY_ERR_AUTH;
    }
    if (env->kind == ENVELOPE_KIND_CHAN_KEYS) {
        chan_keys_t k;
        return chan_keys_decode(env->body, env->body_len, &k);
    }
    chan_msg_header_t h;
    return chan_body_parse(env->body, env->body_len, &h);
}

bool
channels_ours(const channels_t *self, const envelope_t *env)
{
    const s_chan_t *c = s_find(self, env->scope, NULL);
    return c && c->ours;
}

unsigned
channels_party(const channels_t *self, const uint8_t scope[32], const uint8_t pk[32])
{
    bool msgs = false;
    const s_chan_t *c = s_find(self, scope, &msgs);
    //  A relay answers for the channels it carries, from their folds.
    if (!c || (!c->ours && !self->core->cfg.relay) || roster_role(c->fold, pk) == 0) {
        return 0;
    }
    return msgs ? REPLICA_PARTY : REPLICA_PARTY | REPLICA_NAMED;
}

static void
s_take_keys(channels_t *self, s_chan_t *c, const envelope_t *env)
{
    core_t *core = self->core;
    const uint8_t *me = identity_ed_pk(core->id);
    chan_keys_t k;
    if (memcmp(env->author, me, 32) == 0
        || chan_keys_decode(env->body, env->body_len, &k) != PARLEY_OK) {
        return;
    }
    chan_keys_entry_t e;
    bool found = false;
    for (size_t i = 0; i < k.n && !found; i++) {
        chan_keys_entry_at(&k, i, &e);
        found = memcmp(e.recipient, me, 32) == 0;
    }
    if (!found) {
        return;
    }
    dm_header_t h;
    memcpy(h.ek_pub, e.ek_pub, 32);
    h.spk_id = e.spk_id;
    h.day0 = e.day0;
    h.day = e.day;
    uint8_t day_key[32];
    bool opened = false;
    store_chan_key_t key;
    memset(&key, 0, sizeof key);
    int rc = session_recv_key(self->session, env->author, &h, day_key, &opened);
    if (rc == PARLEY_OK) {
        rc = chan_keys_entry_open(c->id, &k, &e, day_key, key.key);
    }
    sodium_memzero(day_key, sizeof day_key);
    if (rc != PARLEY_OK) {
        if (opened && session_recv_forget(self->session, env->author, h.ek_pub) != PARLEY_OK) {
            core_txn_fail(core, PARLEY_ERR_IO, "cannot forget a session");
        }
        if (rc == PARLEY_ERR_NOMEM || rc == PARLEY_ERR_IO || rc == PARLEY_ERR_BUSY) {
            core_txn_fail(core, rc, "cannot take a channel key");
        }
        return; // counted with the undecryptable: a key we cannot open is no key
    }
    memcpy(key.channel, c->id, 32);
    key.epoch = k.epoch;
    memcpy(key.key_id, k.key_id, sizeof key.key_id);
    memcpy(key.author, env->author, 32);
    memcpy(key.binding, k.binding, 32);
    key.added_ms = core_now(core);
    key.bound = false; // bound at the next settle, if our fold gives its binding
    rc = store_chan_key_put(core->store, &key);
    sodium_memzero(&key, sizeof key);
    if (rc != PARLEY_OK) {
        core_txn_fail(core, rc, "cannot store a channel key");
    }
    c->dirty = true; // the settle binds it
    //  Bound or not, it may open messages that waited for it (s_open).
    for (size_t i = 0; i < c->n_authors && !c->reopen; i++) {
        c->reopen = c->authors[i].waiting > 0;
    }
}

static json_t *
s_msg_json(const channels_t *self, const s_chan_t *c, const store_chan_msg_t *m)
{
    //  Its place, for channel.history's before: ts, author, seq in hex.
    uint8_t pos[8 + 32 + 8];
    char cursor[2 * sizeof pos + 1];
    for (int i = 0; i < 8; i++) {
        pos[i] = (uint8_t)(m->pos.ts_ms >> (56 - 8 * i));
        pos[40 + i] = (uint8_t)(m->pos.seq >> (56 - 8 * i));
    }
    memcpy(pos + 8, m->pos.author, 32);
    sodium_bin2hex(cursor, sizeof cursor, pos, sizeof pos);
    return json_pack("{s:o, s:s, s:o, s:o, s:b, s:I, s:I, s:s, s:s}", "channel",
                     core_json_id(c->id), "name", c->row.name, "from", core_json_id(m->pos.author),
                     "from_short", core_json_short_id(m->pos.author), "outgoing",
                     memcmp(m->pos.author, identity_ed_pk(self->core->id), 32) == 0, "ts_ms",
                     (json_int_t)m->sent_ms, "seq", (json_int_t)m->pos.seq, "text",
                     m->text ? m->text : "", "cursor", cursor);
}

//  A cursor of s_msg_json read back; PARLEY_ERR_MALFORMED if it is not one.
static int
s_cursor_parse(const char *hex, store_chan_pos_t *out)
{
    uint8_t pos[8 + 32 + 8];
    size_t len = 0;
    if (strlen(hex) != 2 * sizeof pos
        || sodium_hex2bin(pos, sizeof pos, hex, strlen(hex), NULL, &len, NULL) != 0
        || len != sizeof pos) {
        return PARLEY_ERR_MALFORMED;
    }
    out->ts_ms = 0;
    out->seq = 0;
    for (int i = 0; i < 8; i++) {
        out->ts_ms = out->ts_ms << 8 | pos[i];
        out->seq = out->seq << 8 | pos[40 + i];
    }
    memcpy(out->author, pos + 8, 32);
    return out->ts_ms > INT64_MAX || out->seq > INT64_MAX ? PARLEY_ERR_MALFORMED : PARLEY_OK;
}

//  Files the content of a message opened in c.
static int
s_file(channels_t *self, s_chan_t *c, const envelope_t *env, const uint8_t id[32],
       const content_t *ct)
{
    core_t *core = self->core;
    uint8_t role = roster_role(c->fold, env->author);
    if (ct->type == CONTENT_TEXT) {
        if (role == ROSTER_ROLE_READER) {
            return PARLEY_OK; // readers read; their posts are refused everywhere
        }
        store_chan_msg_t m;
        memset(&m, 0, sizeof m);
        memcpy(m.channel, c->id, 32);
        memcpy(m.env_id, id, 32);
        m.pos.ts_ms = env->ts_ms;
        memcpy(m.pos.author, env->author, 32);
        m.pos.seq = env->seq;
        m.sent_ms = env->ts_ms;
        m.expires_ms = env->expires_ms;
        m.text = malloc(ct->text_len + 1);
        if (!m.text) {
            return PARLEY_ERR_NOMEM;
        }
        memcpy(m.text, ct->text, ct->text_len);
        m.text[ct->text_len] = '\0';
        int rc = store_chan_msg_add(core->store, &m);
        if (rc == PARLEY_ERR_EXISTS) {
            rc = PARLEY_OK;
        } else if (rc == PARLEY_OK) {
            core_notify_received(core, "channel.message", s_msg_json(self, c, &m));
            if (c->receipt_at == 0) {
                c->receipt_at =
                    core_now(core) + CHANNELS_RECEIPT_MS; // one for what comes meanwhile
            }
        }
        free(m.text);
        return rc;
    }
    if (ct->type == CONTENT_CHAN_READ) {
        //  A member's marks: it holds (or read) every message of each author
        //  up to seq. Read implies held.
        for (size_t i = 0; i < ct->n_marks; i++) {
            content_mark_t mk;
            content_mark_at(ct, i, &mk);
            bool changed = false, held = false;
            int rc = store_chan_mark_raise(core->store, c->id, env->author, mk.author, ct->status,
                                           mk.seq, &changed);
            if (rc == PARLEY_OK && ct->status == RECEIPT_READ) {
                rc = store_chan_mark_raise(core->store, c->id, env->author, mk.author,
                                           RECEIPT_DELIVERED, mk.seq, &held);
            }
            if (rc != PARLEY_OK) {
                return rc;
            }
            if ((changed || held) && memcmp(mk.author, identity_ed_pk(core->id), 32) == 0) {
                core_notify_received(core, "channel.receipt",
                                     json_pack("{s:o, s:s, s:o, s:s, s:I}", "channel",
                                               core_json_id(c->id), "name", c->row.name, "member",
                                               core_json_id(env->author), "status",
                                               ct->status == RECEIPT_READ ? "read" : "delivered",
                                               "up_to_seq", (json_int_t)mk.seq));
            }
        }
        return PARLEY_OK;
    }
    if (ct->type == CONTENT_CHAN_META || ct->type == CONTENT_CHAN_META_AGAIN) {
        if (role != ROSTER_ROLE_ADMIN) {
            return PARLEY_OK; // only owners and admins name a channel
        }
        //  Settings repeated in a later epoch (for members who cannot read
        //  the one that made them) take the place of that one: a repeat of
        //  an older topic never wins over a newer one.
        bool again = ct->type == CONTENT_CHAN_META_AGAIN;
        store_chan_pos_t pos = { .ts_ms = again ? ct->of_ts_ms : env->ts_ms,
                                 .seq = again ? ct->of_seq : env->seq };
        memcpy(pos.author, again ? ct->of_author : env->author, 32);
        store_chan_pos_t *cur = &c->row.meta;
        int cmp = pos.ts_ms != cur->ts_ms ? (pos.ts_ms > cur->ts_ms ? 1 : -1)
                                          : memcmp(pos.author, cur->author, 32);
        if (cmp == 0) {
            cmp = pos.seq > cur->seq ? 1 : pos.seq < cur->seq ? -1 : 0;
        }
        if (cmp <= 0) {
            return PARLEY_OK; // an older setting
        }
        c->row.meta = pos;
        memcpy(c->row.name, ct->name, ct->name_len);
        c->row.name[ct->name_len] = '\0';
        memcpy(c->row.topic, ct->text ? ct->text : "", ct->text_len);
        c->row.topic[ct->text_len] = '\0';
        int rc = store_chan_put(core->store, &c->row);
        if (rc == PARLEY_OK) {
            core_notify(core, "channel.update",
                        json_pack("{s:o, s:s, s:s}", "channel", core_json_id(c->id), "name",
                                  c->row.name, "topic", c->row.topic));
        }
        return rc;
    }
    return PARLEY_OK; // receipts and types of newer peers: kept in the log
}

//  Opens a message of c with the key it names: bound, or held aside and
//  drawn by an admin of our fold while we are a member. A key whose binding
//  our fold no longer gives is dead (s_key_live): nothing new is sealed
//  under it, but what its holders sealed before they learned that still
//  opens here, whatever order we learned the fold in. PARLEY_ERR_NOKEY
//  when that key is not (yet) ours; _DUPLICATE for a step read already.
static int
s_open(channels_t *self, s_chan_t *c, const envelope_t *env, const uint8_t id[32])
{
    core_t *core = self->core;
    chan_msg_header_t h;
    int rc = chan_body_parse(env->body, env->body_len, &h);
    if (rc != PARLEY_OK) {
        return rc;
    }
    store_chan_key_t *keys = NULL;
    size_t n = 0;
    rc = store_chan_key_list(core->store, c->id, &keys, &n);
    if (rc != PARLEY_OK) {
        return rc;
    }
    const store_chan_key_t *k = NULL;
    for (size_t i = 0; i < n && !k; i++) {
        if (keys[i].epoch == h.epoch && memcmp(keys[i].key_id, h.key_id, sizeof h.key_id) == 0
            && (keys[i].bound || (c->member && s_is_admin(c, keys[i].author)))) {
            k = &keys[i];
        }
    }
    uint8_t *saved = k ? malloc(CHAN_RX_SAVED_MAX) : NULL;
    if (!k || !saved) {
        store_chan_keys_free(keys, n);
        return k ? PARLEY_ERR_NOMEM : PARLEY_ERR_NOKEY;
    }
    size_t saved_len = 0;
    chan_rx_t *rx = NULL;
    rc = store_chan_chain_get(core->store, c->id, k->epoch, k->key_id, env->author, saved,
                              CHAN_RX_SAVED_MAX, &saved_len);
    if (rc == PARLEY_OK) {
        rx = chan_rx_load(saved, saved_len, &rc);
    } else if (rc == PARLEY_ERR_NOTFOUND) {
        uint8_t ck[32];
        chan_chain_start(k->key, c->id, k->epoch, env->author, ck);
        rx = chan_rx_new(ck, 0);
        sodium_memzero(ck, sizeof ck);
        rc = rx ? PARLEY_OK : PARLEY_ERR_NOMEM;
    }
    uint8_t mk[32];
    uint8_t *content = rc == PARLEY_OK ? malloc(PARLEY_CONTENT_MAX) : NULL;
    size_t clen = 0;
    if (rc == PARLEY_OK) {
        rc = content ? chan_rx_key(rx, h.counter, mk) : PARLEY_ERR_NOMEM;
    }
    if (rc == PARLEY_OK) {
        uint8_t hdr[PARLEY_ENVELOPE_HEADER_LEN];
        envelope_header(env, env->body_len, hdr);
        rc = chan_body_open(hdr, env->body, env->body_len, mk, content, PARLEY_CONTENT_MAX, &clen);
    }
    sodium_memzero(mk, sizeof mk);
    content_t ct;
    if (rc == PARLEY_OK) {
        rc = chan_rx_used(rx, h.counter);
    }
    if (rc == PARLEY_OK) {
        rc = chan_rx_save(rx, saved, CHAN_RX_SAVED_MAX, &saved_len);
    }
    if (rc == PARLEY_OK) {
        rc = store_chan_chain_put(core->store, c->id, k->epoch, k->key_id, env->author, saved,
                                  saved_len);
    }
    if (rc == PARLEY_OK && content_decode(content, clen, &ct) == PARLEY_OK) {
        rc = s_file(self, c, env, id, &ct);
    }
    if (content) {
        sodium_memzero(content, PARLEY_CONTENT_MAX);
        free(content);
    }
    chan_rx_destroy(&rx);
    sodium_memzero(saved, CHAN_RX_SAVED_MAX);
    free(saved);
    store_chan_keys_free(keys, n);
    return rc;
}

static bool
s_transient(int rc)
{
    return rc == PARLEY_ERR_NOMEM || rc == PARLEY_ERR_IO || rc == PARLEY_ERR_BUSY;
}

//  Keeps id (header h) among a's messages ahead of their chain, in
//  (epoch, key_id, counter) order.
static int
s_ahead_add(s_author_t *a, const uint8_t id[32], const chan_msg_header_t *h)
{
    s_ahead_t *room = s_room(a->ahead, a->n_ahead, &a->cap_ahead, sizeof *room, 16);
    if (!room) {
        return PARLEY_ERR_NOMEM;
    }
    a->ahead = room;
    s_ahead_t e = { .epoch = h->epoch, .counter = h->counter };
    memcpy(e.id, id, 32);
    memcpy(e.key_id, h->key_id, sizeof e.key_id);
    size_t at = a->n_ahead;
    while (at > 0) {
        const s_ahead_t *p = &a->ahead[at - 1];
        int cmp = p->epoch != e.epoch ? (p->epoch < e.epoch ? -1 : 1)
                                      : memcmp(p->key_id, e.key_id, sizeof e.key_id);
        if (cmp < 0 || (cmp == 0 && p->counter <= e.counter)) {
            break;
        }
        at--;
    }
    memmove(a->ahead + at + 1, a->ahead + at, (a->n_ahead - at) * sizeof *a->ahead);
    a->ahead[at] = e;
    a->n_ahead++;
    return PARLEY_OK;
}

//  env (of c's msg scope) just opened: its author's messages kept ahead of
//  the same chain that are within CHAN_SKIP_MAX steps of it now are opened,
//  in order, until one is still too far ahead.
static void
s_ahead_retry(channels_t *self, s_chan_t *c, const envelope_t *env)
{
    chan_msg_header_t h;
    s_author_t *a = s_author(c, env->author, false);
    if (!a || a->n_ahead == 0 || chan_body_parse(env->body, env->body_len, &h) != PARLEY_OK) {
        return;
    }
    size_t i = 0;
    while (i < a->n_ahead) {
        s_ahead_t *e = &a->ahead[i];
        if (e->epoch != h.epoch || memcmp(e->key_id, h.key_id, sizeof h.key_id) != 0) {
            i++;
            continue;
        }
        if ((uint64_t)e->counter > (uint64_t)h.counter + CHAN_SKIP_MAX) {
            return; // still too far: the rest of this chain's are further
        }
        uint8_t *bytes = NULL;
        size_t len = 0;
        envelope_t kept;
        uint8_t id[32];
        memcpy(id, e->id, 32);
        uint32_t counter = e->counter;
        int rc = store_envelope_get(self->core->store, id, &bytes, &len);
        rc = rc == PARLEY_OK ? envelope_decode(bytes, len, &kept) : rc;
        rc = rc == PARLEY_OK ? s_open(self, c, &kept, id) : rc;
        free(bytes);
        if (rc == PARLEY_ERR_LIMIT) {
            return;
        }
        if (s_transient(rc)) {
            core_txn_fail(self->core, rc, "cannot open a channel message");
            return;
        }
        //  Opened (or it never will, or it went): off the list. The chain
        //  stands past it now.
        memmove(a->ahead + i, a->ahead + i + 1, (a->n_ahead - i - 1) * sizeof *a->ahead);
        a->n_ahead--;
        a->waiting -= a->waiting > 0 ? 1 : 0;
        h.counter = rc == PARLEY_OK && counter > h.counter ? counter : h.counter;
    }
}

bool
channels_stored(channels_t *self, link_t *link, const envelope_t *env, const uint8_t id[32])
{
    core_t *core = self->core;
    bool msgs = false;
    s_chan_t *c = s_find(self, env->scope, &msgs);
    if (env->kind == ENVELOPE_KIND_CHAN) {
        if (!c) {
            //  A pending channel: its whole log is read from the store, this
            //  event included (a relay takes what it cannot hold here).
            if (s_pending_full(self, true)) {
                return true;
            }
            int rc = s_chan_new(self, env->scope, &c);
            if (rc != PARLEY_OK) {
                core_txn_fail(core, rc, "cannot hold a channel's log");
                return true;
            }
            c->dirty = true;
            //  Its log is reconciled with whoever offers it: the member that
            //  added us pushed its ADD, and the events before it follow in
            //  a round with that member now.
            replica_mine(self->replica, c->id);
            if (link) {
                replica_sync_soon(self->replica, link);
            }
        } else {
            int rc = s_fold_add(c, id, env->author, env->ts_ms, env->body, env->body_len);
            if (rc == PARLEY_ERR_NOMEM) {
                core_txn_fail(core, rc, "cannot fold a channel's log");
                return true;
            }
            c->dirty = c->dirty || rc == PARLEY_OK;
        }
        c->seen_ms = core_now(core);
        return true;
    }
    if (!c || !c->ours) {
        return true;
    }
    if (env->kind == ENVELOPE_KIND_CHAN_KEYS) {
        s_take_keys(self, c, env);
        return true;
    }
    if (memcmp(env->author, identity_ed_pk(core->id), 32) == 0) {
        return true; // ours, come back: filed when we sent it
    }
    int rc = s_open(self, c, env, id);
    if (s_transient(rc)) {
        core_txn_fail(core, rc, "cannot open a channel message");
        return true;
    }
    bool from_author = link && memcmp(link_pk(link), env->author, 32) == 0;
    if (rc == PARLEY_ERR_NOKEY) {
        //  It waits for its key, within the author's share.
        s_author_t *a = s_author(c, env->author, true);
        if (!a) {
            core_txn_fail(core, PARLEY_ERR_NOMEM, "cannot count a channel message");
            return true;
        }
        if (a->waiting < CHANNELS_WAITING_PER_AUTHOR) {
            a->waiting++;
            return true;
        }
        core->counters[C_UNDECRYPTABLE_DROPPED]++;
        if (from_author) {
            links_strike(self->links, link, "its channel messages name keys nobody sent", 1);
        }
        return false;
    }
    if (rc == PARLEY_ERR_LIMIT) {
        //  More than CHAN_SKIP_MAX steps ahead of its sender's chain here:
        //  an honest sender's live message, or the newest of a catch-up
        //  that came first. Kept within the author's share, and opened
        //  when the steps before it have (s_ahead_retry).
        s_author_t *a = s_author(c, env->author, true);
        chan_msg_header_t h;
        if (!a) {
            core_txn_fail(core, PARLEY_ERR_NOMEM, "cannot keep a channel message");
            return true;
        }
        if (a->waiting >= CHANNELS_WAITING_PER_AUTHOR
            || chan_body_parse(env->body, env->body_len, &h) != PARLEY_OK) {
            core->counters[C_UNDECRYPTABLE_DROPPED]++;
            return false; // a later round brings it again
        }
        if (s_ahead_add(a, id, &h) != PARLEY_OK) {
            core_txn_fail(core, PARLEY_ERR_NOMEM, "cannot keep a channel message");
            return true;
        }
        a->waiting++;
        return true;
    }
    if (rc == PARLEY_ERR_DUPLICATE) {
        //  A step read already by another envelope (one that reuses a
        //  step, or whose skipped key was forgotten): not kept.
        core->counters[C_UNDECRYPTABLE_DROPPED]++;
        return false;
    }
    if (rc != PARLEY_OK) {
        //  The key it names is bound here and it does not open: no honest
        //  author sends that. It is not kept; the next round may offer it
        //  again, and its author pays for each.
        core->counters[C_UNDECRYPTABLE]++;
        core->counters[C_UNDECRYPTABLE_DROPPED]++;
        if (from_author) {
            links_strike(self->links, link, "it sends channel messages that do not open",
                         CHANNELS_UNDEC_STRIKE);
        }
        return false;
    }
    s_ahead_retry(self, c, env);
    return true;
}

/* ------------------------------------------------------------ settling */

//  Store walks: the KEYS bodies of a channel's control scope, the messages
//  of its msg scope (those that came before we could read them). The store
//  is read a page at a time, each page copied out first (a range's
//  callback may not call the store), then handled.
#define S_WALK_PAGE 128u

typedef struct {
    uint8_t *bytes[S_WALK_PAGE];
    size_t lens[S_WALK_PAGE];
    uint8_t ids[S_WALK_PAGE][32];
    uint64_t ts[S_WALK_PAGE];
    size_t n;
    uint8_t kind;
} s_page_t;

static int
s_page_row(uint64_t ts, const uint8_t id[32], const uint8_t *bytes, size_t len, void *arg)
{
    s_page_t *p = arg;
    p->ts[p->n] = ts;
    memcpy(p->ids[p->n], id, 32);
    p->lens[p->n] = 0;
    p->bytes[p->n] = NULL;
    if (len > 1 && bytes[1] == p->kind) { // the kind byte (envelope.h)
        p->bytes[p->n] = malloc(len);
        if (!p->bytes[p->n]) {
            return PARLEY_ERR_NOMEM;
        }
        memcpy(p->bytes[p->n], bytes, len);
        p->lens[p->n] = len;
    }
    p->n++;
    return 0;
}

//  What a walk does with each envelope of its kind: PARLEY_OK to go on, a
//  transient error to stop.
typedef int(s_walk_fn)(channels_t *self, s_chan_t *c, const envelope_t *env, const uint8_t id[32],
                       void *arg);

static int
s_walk_keys(channels_t *self, s_chan_t *c, const envelope_t *env, const uint8_t id[32], void *arg)
{
    (void)id;
    (void)arg;
    s_take_keys(self, c, env);
    return PARLEY_OK;
}

static int
s_walk_msgs(channels_t *self, s_chan_t *c, const envelope_t *env, const uint8_t id[32], void *arg)
{
    (void)arg;
    if (memcmp(env->author, identity_ed_pk(self->core->id), 32) == 0) {
        return PARLEY_OK;
    }
    int rc = s_open(self, c, env, id);
    s_author_t *a = rc == PARLEY_OK ? s_author(c, env->author, false) : NULL;
    if (a && a->waiting > 0) {
        a->waiting--; // it waited for its key, which came
    }
    return s_transient(rc) ? rc : PARLEY_OK;
}

//  Calls fn for every envelope of kind in scope, in log order.
static int
s_walk(channels_t *self, s_chan_t *c, const uint8_t scope[32], uint8_t kind, s_walk_fn *fn,
       void *arg)
{
    s_page_t *p = calloc(1, sizeof *p);
    if (!p) {
        return PARLEY_ERR_NOMEM;
    }
    p->kind = kind;
    uint64_t after_ts = 0;
    uint8_t after_id[32], hi[32];
    memset(after_id, 0x00, sizeof after_id);
    memset(hi, 0xFF, sizeof hi);
    int rc = PARLEY_OK;
    for (;;) {
        size_t n = 0;
        p->n = 0;
        rc = store_envelope_range(self->core->store, scope, after_ts, after_id, INT64_MAX, hi,
                                  S_WALK_PAGE, s_page_row, p, &n);
        for (size_t i = 0; i < p->n; i++) {
            envelope_t env;
            if (rc == PARLEY_OK && p->bytes[i]
                && envelope_decode(p->bytes[i], p->lens[i], &env) == PARLEY_OK) {
                rc = fn(self, c, &env, p->ids[i], arg);
            }
            free(p->bytes[i]);
            p->bytes[i] = NULL;
        }
        if (rc != PARLEY_OK || self->core->txn_failed || p->n < S_WALK_PAGE) {
            break;
        }
        after_ts = p->ts[p->n - 1];
        memcpy(after_id, p->ids[p->n - 1], 32);
    }
    free(p);
    return rc != PARLEY_OK ? rc : self->core->txn_failed ? self->core->txn_rc : PARLEY_OK;
}

/* ------------------------------------------------------------ keys owed */

//  A member added while we lacked its prekey, or while the admin that drew
//  a key was away, holds no entry of the keys it should have: the current
//  epoch's, and in a shared channel every earlier one. The admin that drew
//  such a key (or any admin holding it, once its author is no admin any
//  more) finds those members by the KEYS bodies in the log and seals it to
//  them once their prekeys are here (SPEC §21.5).
typedef struct {
    store_chan_key_t *keys; /* the keys members should hold, that we hold */
    size_t n_keys;
    uint8_t (*members)[32]; /* sorted */
    size_t n_members;
    bool *got; /* n_keys × n_members */
} s_owed_t;

static int
s_owed_row(channels_t *self, s_chan_t *c, const envelope_t *env, const uint8_t id[32], void *arg)
{
    (void)self;
    (void)c;
    (void)id;
    s_owed_t *o = arg;
    chan_keys_t k;
    if (chan_keys_decode(env->body, env->body_len, &k) != PARLEY_OK) {
        return PARLEY_OK;
    }
    for (size_t j = 0; j < o->n_keys; j++) {
        if (o->keys[j].epoch != k.epoch || memcmp(o->keys[j].key_id, k.key_id, 8) != 0) {
            continue;
        }
        for (size_t i = 0; i < k.n; i++) {
            chan_keys_entry_t e;
            chan_keys_entry_at(&k, i, &e);
            uint8_t(*m)[32] = bsearch(e.recipient, o->members, o->n_members, 32, s_id_cmp);
            if (m) {
                o->got[j * o->n_members + (size_t)(m - o->members)] = true;
            }
        }
    }
    return PARLEY_OK;
}

static int
s_pay_owed(channels_t *self, s_chan_t *c)
{
    core_t *core = self->core;
    s_owed_t o;
    memset(&o, 0, sizeof o);
    bool shared = (roster_channel_flags(c->fold) & ROSTER_CHAN_SHARED) != 0;
    uint32_t epoch = roster_epoch(c->fold);
    size_t n_all = 0;
    int rc = store_chan_key_list(core->store, c->id, &o.keys, &n_all);
    const uint8_t *me = identity_ed_pk(core->id);
    uint8_t binding[32];
    bool ok = false;
    s_current_binding(c, binding, &ok);
    for (size_t i = 0; rc == PARLEY_OK && i < n_all; i++) {
        const store_chan_key_t *k = &o.keys[i];
        if ((s_key_live(c, k, binding, ok) || (shared && k->bound && k->epoch < epoch))
            && (memcmp(k->author, me, 32) == 0 || !s_is_admin(c, k->author))) {
            o.keys[o.n_keys++] = *k;
        }
    }
    if (rc == PARLEY_OK && o.n_keys > 0) {
        rc = s_members(self, c, &o.members, &o.n_members);
    }
    if (rc == PARLEY_OK && o.n_keys > 0 && o.n_members > 0) {
        o.got = calloc(o.n_keys * o.n_members, sizeof *o.got);
        rc = o.got ? s_walk(self, c, c->id, ENVELOPE_KIND_CHAN_KEYS, s_owed_row, &o)
                   : PARLEY_ERR_NOMEM;
    }
    uint8_t(*owed)[32] = o.got ? malloc(o.n_members * 32) : NULL;
    rc = rc == PARLEY_OK && o.got && !owed ? PARLEY_ERR_NOMEM : rc;
    free(c->unpaid);
    c->unpaid = NULL;
    c->n_unpaid = 0;
    size_t paid = 0;
    for (size_t j = 0; rc == PARLEY_OK && o.got && j < o.n_keys; j++) {
        size_t n = 0, skipped = 0;
        for (size_t i = 0; i < o.n_members; i++) {
            if (!o.got[j * o.n_members + i]) {
                memcpy(owed[n++], o.members[i], 32);
            }
        }
        rc = n ? s_send_keys(self, c, &o.keys[j], (const uint8_t(*)[32])owed, n, &skipped) : rc;
        paid += n - skipped;
    }
    //  Those still without a prekey: seen to when one comes.
    for (size_t i = 0; rc == PARLEY_OK && o.got && i < o.n_members; i++) {
        bool lacks = false;
        for (size_t j = 0; j < o.n_keys && !lacks; j++) {
            lacks = !o.got[j * o.n_members + i];
        }
        prekey_t spk;
        if (lacks && store_peer_prekey_get(core->store, o.members[i], &spk) != PARLEY_OK) {
            memcpy(owed[c->n_unpaid++], o.members[i], 32);
        }
    }
    if (rc == PARLEY_OK && c->n_unpaid > 0) {
        c->unpaid = owed;
        owed = NULL;
    } else {
        c->n_unpaid = 0;
    }
    if (rc == PARLEY_OK && paid > 0) {
        log_write(&core->log, LOG_LEVEL_INFO,
                  "channel %s: keys sealed to %zu members that lacked them (%zu still without a"
                  " prekey)",
                  c->row.name, paid, c->n_unpaid);
    }
    free(owed);
    free(o.got);
    free(o.members);
    store_chan_keys_free(o.keys, n_all);
    c->owed = false;
    c->owed_members = roster_member_count(c->fold);
    c->owed_epoch = epoch;
    return rc;
}

//  Whether a member found without its keys has a prekey now.
static bool
s_unpaid_ready(channels_t *self, const s_chan_t *c)
{
    for (size_t i = 0; i < c->n_unpaid; i++) {
        prekey_t spk;
        if (store_peer_prekey_get(self->core->store, c->unpaid[i], &spk) == PARLEY_OK) {
            return true;
        }
    }
    return false;
}

//  Binds the keys of c whose binding our fold now gives.
static int
s_bind_keys(channels_t *self, s_chan_t *c, bool *have_current)
{
    *have_current = false;
    store_chan_key_t *keys = NULL;
    size_t n = 0;
    uint32_t epoch = roster_epoch(c->fold);
    int rc = store_chan_key_list(self->core->store, c->id, &keys, &n);
    uint8_t current[32];
    bool ok = false;
    s_current_binding(c, current, &ok);
    c->keyed_ms = 0;
    c->old_keys = false;
    for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
        uint8_t binding[32];
        if (!keys[i].bound && s_is_admin(c, keys[i].author)
            && s_binding(c, keys[i].epoch, binding) == PARLEY_OK
            && sodium_memcmp(binding, keys[i].binding, 32) == 0) {
            keys[i].bound = true;
            c->owed = true; // a key we can hand on now
            rc = store_chan_key_put(self->core->store, &keys[i]);
            c->reopen = true;
        }
        if (s_key_live(c, &keys[i], current, ok)) {
            *have_current = true;
            uint64_t at = keys[i].added_ms ? keys[i].added_ms : 1;
            c->keyed_ms = c->keyed_ms == 0 || at < c->keyed_ms ? at : c->keyed_ms;
        }
        c->old_keys = c->old_keys || keys[i].epoch < epoch || !c->member;
    }
    store_chan_keys_free(keys, n);
    return rc;
}

static int
s_settle_one(channels_t *self, s_chan_t *c)
{
    core_t *core = self->core;
    const uint8_t *me = identity_ed_pk(core->id);
    int rc = s_fold_told(self, c);
    if (rc != PARLEY_OK) {
        return rc;
    }
    c->dirty = false;
    bool was = c->member;
    c->member = roster_role(c->fold, me) != 0;
    if (c->member && !c->ours) {
        //  Added: the channel is ours from now on, and the KEYS bodies and
        //  messages that came before the fold named us are read now.
        memset(&c->row, 0, sizeof c->row);
        memcpy(c->row.id, c->id, 32);
        c->row.state = STORE_CHAN_MEMBER;
        c->row.since_ms = core_now(core);
        rc = store_chan_put(core->store, &c->row);
        if (rc != PARLEY_OK) {
            return rc;
        }
        c->ours = true;
        replica_mine(self->replica, c->id);
        replica_mine(self->replica, c->scope);
        for (size_t i = 0; i < links_count(self->links); i++) {
            replica_sync_soon(self->replica, links_at(self->links, i));
        }
        rc = s_walk(self, c, c->id, ENVELOPE_KIND_CHAN_KEYS, s_walk_keys, NULL);
        c->reopen = true;
        core_notify(core, "channel.update",
                    json_pack("{s:o, s:s, s:s}", "channel", core_json_id(c->id), "state", "joined",
                              "name", c->row.name));
    } else if (c->ours && was != c->member) {
        if (!c->member && c->n_queued > 0) {
            //  Out of it: what waited for its key will never go.
            log_write(&core->log, LOG_LEVEL_WARN,
                      "channel %s: you are out of it; %zu messages that waited for its key"
                      " are not sent",
                      c->row.name, c->n_queued);
            rc = store_chan_queue_drop(core->store, c->id, -1);
            c->n_queued = 0;
        }
        c->row.state = c->member ? STORE_CHAN_MEMBER : STORE_CHAN_GONE;
        c->row.since_ms = core_now(core);
        rc = store_chan_put(core->store, &c->row);
        core_notify(core, "channel.update",
                    json_pack("{s:o, s:s, s:s}", "channel", core_json_id(c->id), "state",
                              c->member ? "joined" : "gone", "name", c->row.name));
    }
    if (rc != PARLEY_OK || !c->ours) {
        return rc;
    }
    bool have = false;
    rc = s_bind_keys(self, c, &have);
    if (rc == PARLEY_OK && c->reopen) {
        c->reopen = false;
        rc = s_walk(self, c, c->scope, ENVELOPE_KIND_CHAN_MSG, s_walk_msgs, NULL);
    }
    //  An epoch without a key: its rotator is the most senior admin online,
    //  in a later iteration than the one that applied the removal.
    if (have || !c->member || !s_is_admin(c, me)) {
        c->rotate_at = 0;
    } else if (c->rotate_at == 0) {
        c->rotate_at =
            core_now(core) + (uint64_t)roster_rank(c->fold, me) * CHANNELS_ROTATE_STEP_MS;
        c->armed = false;
    }
    return rc;
}

void
channels_settle(channels_t *self)
{
    for (size_t i = 0; i < self->n; i++) {
        s_chan_t *c = self->chans[i];
        if (!c->dirty && !c->reopen) {
            continue;
        }
        int rc = s_settle_one(self, c);
        if (rc != PARLEY_OK) {
            core_txn_fail(self->core, rc, "cannot settle a channel");
            return;
        }
    }
}

//  One receipt of status for everything of every author we hold in c: the
//  highest seq of each (SPEC §21.5). Nothing to say, or no key yet: nothing
//  sent (the next message schedules another).
static int
s_send_receipt(channels_t *self, s_chan_t *c, uint8_t status)
{
    core_t *core = self->core;
    store_chan_pos_t *tops = malloc(CONTENT_MARKS_MAX * sizeof *tops);
    content_mark_t *marks = malloc(CONTENT_MARKS_MAX * sizeof *marks);
    uint8_t *content = malloc(4 + CONTENT_MARKS_MAX * CONTENT_MARK_LEN);
    size_t n = 0, len = 0;
    int rc = tops && marks && content ? PARLEY_OK : PARLEY_ERR_NOMEM;
    if (rc == PARLEY_OK) {
        rc = store_chan_tops(core->store, c->id, identity_ed_pk(core->id), tops, CONTENT_MARKS_MAX,
                             &n);
    }
    for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
        memcpy(marks[i].author, tops[i].author, 32);
        marks[i].seq = tops[i].seq;
    }
    if (rc == PARLEY_OK && n > 0) {
        rc = content_encode_chan_read(status, marks, n, content,
                                      4 + CONTENT_MARKS_MAX * CONTENT_MARK_LEN, &len);
    }
    if (rc == PARLEY_OK && n > 0) {
        envelope_t env;
        uint8_t id[32];
        const char *why = NULL;
        rc = s_send_content(self, c, content, len, &env, id, &why);
        rc = rc == PARLEY_ERR_NOKEY ? PARLEY_OK : rc;
    }
    free(tops);
    free(marks);
    free(content);
    return rc;
}

void
channels_after_commit(channels_t *self)
{
    for (size_t i = 0; i < self->n; i++) {
        self->chans[i]->armed = self->chans[i]->rotate_at != 0;
    }
}

//  Seals text as our next message in c and files it in our history: one
//  envelope, pushed after the commit. *out the message object.
//  PARLEY_ERR_NOKEY (and *why) while the current epoch's key has not come.
static int
s_post(channels_t *self, s_chan_t *c, const char *text, json_t **out, const char **why)
{
    core_t *core = self->core;
    uint8_t *content = malloc(PARLEY_CONTENT_MAX);
    size_t len = 0;
    if (!content) {
        return PARLEY_ERR_NOMEM;
    }
    int rc = content_encode_text(text, strlen(text), content, PARLEY_CONTENT_MAX, &len);
    if (rc != PARLEY_OK) {
        free(content);
        *why = "text must be 1 to 32766 bytes of UTF-8 without NUL";
        return rc;
    }
    envelope_t env;
    uint8_t id[32];
    rc = s_send_content(self, c, content, len, &env, id, why);
    sodium_memzero(content, PARLEY_CONTENT_MAX);
    free(content);
    store_chan_msg_t m;
    memset(&m, 0, sizeof m);
    if (rc == PARLEY_OK) {
        memcpy(m.channel, c->id, 32);
        memcpy(m.env_id, id, 32);
        m.pos.ts_ms = env.ts_ms;
        memcpy(m.pos.author, env.author, 32);
        m.pos.seq = env.seq;
        m.sent_ms = env.ts_ms;
        m.text = (char *)text;
        rc = store_chan_msg_add(core->store, &m);
    }
    if (rc != PARLEY_OK) {
        return rc;
    }
    *out = s_msg_json(self, c, &m);
    char hex[65];
    if (hex_encode(id, 32, hex, sizeof hex) == PARLEY_OK) {
        json_object_set_new(*out, "envelope_id", json_string(hex));
    }
    json_object_set_new(*out, "state", json_string("stored"));
    return PARLEY_OK;
}

//  A message of ours waiting for the key, as history shows it.
static json_t *
s_queued_json(const channels_t *self, const s_chan_t *c, const store_chan_queued_t *q)
{
    const uint8_t *me = identity_ed_pk(self->core->id);
    return json_pack("{s:o, s:s, s:o, s:o, s:b, s:I, s:I, s:s, s:s, s:s}", "channel",
                     core_json_id(c->id), "name", c->row.name, "from", core_json_id(me),
                     "from_short", core_json_short_id(me), "outgoing", true, "ts_ms",
                     (json_int_t)q->ts_ms, "seq", (json_int_t)0, "text", q->text ? q->text : "",
                     "envelope_id", "", "state", "queued");
}

//  Our messages that waited for the key, sealed and sent in order once it
//  is here (at most CHANNELS_FLUSH_BATCH a step); each becomes a
//  channel.message notification with its envelope id.
static int
s_flush(channels_t *self, s_chan_t *c)
{
    core_t *core = self->core;
    store_chan_queued_t *q = NULL;
    size_t n = 0;
    int rc = store_chan_queue_list(core->store, c->id, CHANNELS_FLUSH_BATCH, &q, &n);
    for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
        json_t *msg = NULL;
        const char *why = NULL;
        rc = s_post(self, c, q[i].text, &msg, &why);
        if (rc == PARLEY_ERR_NOKEY) {
            rc = PARLEY_OK; // not yet after all
            break;
        }
        if (rc == PARLEY_ERR_MALFORMED) {
            rc = PARLEY_OK; // cannot be: checked when queued; it goes
            log_write(&core->log, LOG_LEVEL_WARN, "channel %s: a queued message was not text",
                      c->row.name);
        } else if (rc == PARLEY_OK) {
            core_notify(core, "channel.message", msg);
        }
        rc = rc == PARLEY_OK ? store_chan_queue_drop(core->store, c->id, q[i].n) : rc;
        c->n_queued -= rc == PARLEY_OK && c->n_queued > 0 ? 1 : 0;
    }
    store_chan_queued_free(q, n);
    return rc;
}

//  Whether c is network-wide: its members are the network's.
static bool
s_net_wide(const s_chan_t *c)
{
    return (roster_channel_flags(c->fold) & ROSTER_CHAN_NETWORK) != 0;
}

//  Whether the event id of ours ended applied in c's fold.
static bool
s_applied(const s_chan_t *c, const uint8_t id[32])
{
    for (size_t i = roster_log_count(c->fold); i-- > 0;) {
        roster_log_entry_t le;
        if (roster_log_at(c->fold, i, &le) == PARLEY_OK && memcmp(le.id, id, 32) == 0) {
            return le.applied;
        }
    }
    return false;
}

//  A network-wide channel follows the network's roster (SPEC §21.5): its
//  admins ADD every network member it lacks (network admins as admins,
//  and promote those who became one), and REMOVE every member the network
//  no longer has, at most CHANNELS_NET_BATCH events a step. The most
//  senior admin online goes first: each waits rank × the rotation step
//  from when it saw the difference.
static int
s_net_follow(channels_t *self, s_chan_t *c, uint64_t now)
{
    const roster_t *net = network_roster(self->network);
    if (!net) {
        return PARLEY_OK;
    }
    core_t *core = self->core;
    const uint8_t *me = identity_ed_pk(core->id);
    roster_event_t todo[CHANNELS_NET_BATCH];
    size_t n = 0;
    for (size_t i = 0; i < roster_member_count(net) && n < CHANNELS_NET_BATCH; i++) {
        roster_member_t m;
        if (roster_member_at(net, i, &m) != PARLEY_OK) {
            continue;
        }
        uint8_t role = roster_role(c->fold, m.pk);
        if (role == 0 || (m.role == ROSTER_ROLE_ADMIN && role != ROSTER_ROLE_ADMIN)) {
            todo[n] = (roster_event_t){ .type = role == 0 ? ROSTER_ADD : ROSTER_ROLE,
                                        .role = m.role == ROSTER_ROLE_ADMIN ? ROSTER_ROLE_ADMIN
                                                                            : ROSTER_ROLE_MEMBER };
            memcpy(todo[n++].key, m.pk, 32);
        }
    }
    for (size_t i = 0; i < roster_member_count(c->fold) && n < CHANNELS_NET_BATCH; i++) {
        roster_member_t m;
        if (roster_member_at(c->fold, i, &m) == PARLEY_OK && roster_role(net, m.pk) == 0) {
            todo[n] = (roster_event_t){ .type = ROSTER_REMOVE };
            memcpy(todo[n++].key, m.pk, 32);
        }
    }
    if (n == 0) {
        c->net_since = 0;
        return PARLEY_OK;
    }
    if (c->net_since == 0) {
        c->net_since = now;
    }
    if (now < c->net_since + (uint64_t)roster_rank(c->fold, me) * CHANNELS_ROTATE_STEP_MS) {
        return PARLEY_OK;
    }
    c->net_since = 0;
    int rc = core_txn(core);
    size_t added = 0, removed = 0, void_ = 0;
    for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
        uint8_t id[32];
        rc = s_author_event(self, c, &todo[i], id);
        if (rc == PARLEY_OK && !s_applied(c, id)) {
            void_++; // another admin's did it first: it stays in the log, void
        } else if (rc == PARLEY_OK) {
            added += todo[i].type != ROSTER_REMOVE;
            removed += todo[i].type == ROSTER_REMOVE;
            link_t *l = todo[i].type == ROSTER_ADD ? links_find(self->links, todo[i].key) : NULL;
            if (l) {
                replica_sync_soon(self->replica, l); // it learns the log it is in now
            }
        }
    }
    rc = rc == PARLEY_OK ? s_settle_one(self, c) : rc;
    if (rc == PARLEY_OK) {
        log_write(&core->log, LOG_LEVEL_INFO,
                  "channel %s follows the network: %zu added or promoted, %zu removed%s",
                  c->row.name, added, removed, void_ ? " (some were done already)" : "");
        if (void_) {
            c->net_next = now + CHANNELS_NET_BACKOFF_MS;
        }
    }
    return rc;
}

//  The timed duties of one channel of ours (SPEC §21.6): a settle still
//  due (after a start or a rollback); the weekly REKEY, by its admins, the
//  most senior first; and forward secrecy: grace_ms after the current
//  epoch's key came, a from-join channel's earlier keys and chains are
//  wiped, and all of them grace_ms after we left it.
//  The deadlines of s_duties' timers, for the loop's wait (core_wake_at).
static void
s_duties_due(channels_t *self, s_chan_t *c)
{
    core_t *core = self->core;
    const node_config_t *cfg = &core->cfg;
    const uint8_t *me = identity_ed_pk(core->id);
    bool admin = c->member && s_is_admin(c, me);
    if (admin && s_net_wide(c)) {
        core_wake_at(core, c->net_next);
    }
    if (admin && c->n_unpaid > 0) {
        core_wake_at(core, c->unpaid_at);
    }
    if (admin && c->keyed_ms != 0) {
        uint64_t at = c->keyed_ms + cfg->chan_rotate_ms
                      + (uint64_t)roster_rank(c->fold, me) * CHANNELS_ROTATE_STEP_MS;
        if (c->rekeyed_ms != 0 && c->rekeyed_ms + cfg->chan_rotate_ms > at) {
            at = c->rekeyed_ms + cfg->chan_rotate_ms;
        }
        core_wake_at(core, at);
    }
    bool shared = (roster_channel_flags(c->fold) & ROSTER_CHAN_SHARED) != 0;
    uint64_t from = c->member ? (shared ? 0 : c->keyed_ms) : c->row.since_ms;
    if (c->old_keys && from != 0) {
        core_wake_at(core, from + cfg->grace_ms);
    }
}

static int
s_duties(channels_t *self, s_chan_t *c, uint64_t now)
{
    core_t *core = self->core;
    const node_config_t *cfg = &core->cfg;
    const uint8_t *me = identity_ed_pk(core->id);
    int rc = PARLEY_OK;
    if (c->dirty) {
        rc = core_txn(core);
        rc = rc == PARLEY_OK ? s_settle_one(self, c) : rc;
    }
    if (rc == PARLEY_OK && c->member && s_net_wide(c) && s_is_admin(c, me) && now >= c->net_next) {
        c->net_next = now + CHANNELS_NET_CHECK_MS;
        rc = s_net_follow(self, c, now);
    }
    //  Keys owed to members that lack them (the members or the epoch
    //  changed, a key came, or a prekey we waited for).
    bool admin = c->member && s_is_admin(c, me);
    if (admin && c->n_unpaid > 0 && now >= c->unpaid_at) {
        c->unpaid_at = now + CHANNELS_NET_CHECK_MS;
        c->owed = c->owed || s_unpaid_ready(self, c);
    }
    //  Our messages that waited for the key.
    if (rc == PARLEY_OK && c->n_queued > 0 && c->member && c->keyed_ms != 0) {
        rc = core_txn(core);
        rc = rc == PARLEY_OK ? s_flush(self, c) : rc;
    }
    c->owed = c->owed || roster_member_count(c->fold) != c->owed_members
              || roster_epoch(c->fold) != c->owed_epoch;
    if (rc == PARLEY_OK && admin && c->owed) {
        rc = core_txn(core);
        rc = rc == PARLEY_OK ? s_pay_owed(self, c) : rc;
    }
    if (rc == PARLEY_OK && c->member && c->keyed_ms != 0 && s_is_admin(c, me)
        && (c->rekeyed_ms == 0 || now >= c->rekeyed_ms + cfg->chan_rotate_ms)
        && now >= c->keyed_ms + cfg->chan_rotate_ms
                      + (uint64_t)roster_rank(c->fold, me) * CHANNELS_ROTATE_STEP_MS) {
        roster_event_t ev = { .type = ROSTER_REKEY };
        uint8_t id[32];
        c->rekeyed_ms = now;
        rc = core_txn(core);
        rc = rc == PARLEY_OK ? s_author_event(self, c, &ev, id) : rc;
        rc = rc == PARLEY_OK ? s_settle_one(self, c) : rc;
        if (rc == PARLEY_OK) {
            log_write(&core->log, LOG_LEVEL_INFO,
                      "channel %s: its key is past the rotation period: rekeyed to epoch %" PRIu32,
                      c->row.name, roster_epoch(c->fold));
        }
    }
    bool shared = (roster_channel_flags(c->fold) & ROSTER_CHAN_SHARED) != 0;
    uint64_t from = c->member ? (shared ? 0 : c->keyed_ms) : c->row.since_ms;
    if (rc == PARLEY_OK && c->old_keys && from != 0 && now >= from + cfg->grace_ms) {
        size_t n = 0;
        rc = core_txn(core);
        rc = rc == PARLEY_OK ? store_chan_key_drop(
                 core->store, c->id, c->member ? roster_epoch(c->fold) : UINT32_MAX, &n)
                             : rc;
        if (rc == PARLEY_OK) {
            c->old_keys = false;
            core->checkpoint = true; // the keys' old pages must leave the WAL too
            log_write(&core->log, LOG_LEVEL_INFO,
                      "channel %s: %zu keys of past epochs wiped (forward secrecy)", c->row.name,
                      n);
        }
    }
    return rc;
}

void
channels_tick(channels_t *self, uint64_t now)
{
    for (size_t i = 0; i < self->n; i++) {
        s_chan_t *c = self->chans[i];
        int drc = c->ours ? s_duties(self, c, now) : PARLEY_OK;
        if (drc != PARLEY_OK) {
            core_txn_fail(self->core, drc, "cannot keep a channel's keys");
            return;
        }
        if (c->receipt_at != 0 && now >= c->receipt_at) {
            c->receipt_at = 0;
            int rc = c->member ? core_txn(self->core) : PARLEY_OK;
            if (rc == PARLEY_OK && c->member) {
                rc = s_send_receipt(self, c, RECEIPT_DELIVERED);
            }
            if (rc != PARLEY_OK) {
                core_txn_fail(self->core, rc, "cannot send a channel receipt");
                return;
            }
        }
        if (c->ours) {
            s_duties_due(self, c);
        }
        if (c->receipt_at != 0) {
            core_wake_at(self->core, c->receipt_at);
        }
        if (c->rotate_at == 0 || !c->armed || now < c->rotate_at) {
            if (c->rotate_at != 0 && c->armed) {
                core_wake_at(self->core, c->rotate_at);
            }
            continue;
        }
        int rc = core_txn(self->core);
        if (rc == PARLEY_OK) {
            rc = s_rotate(self, c);
        }
        if (rc != PARLEY_OK) {
            core_txn_fail(self->core, rc, "cannot rotate a channel key");
            return;
        }
    }
    //  Pending channels that never named us are forgotten after a while
    //  (their events stay in the log, within its quotas).
    for (size_t i = 0; i < self->n;) {
        s_chan_t *c = self->chans[i];
        if (!c->ours && !self->core->cfg.relay && now > c->seen_ms + 3600000u) {
            s_chan_free(c);
            self->chans[i] = self->chans[--self->n];
        } else {
            i++;
        }
    }
}

/* ------------------------------------------------------------ links */

uint8_t *
channels_neighbours(channels_t *self, size_t *n_out)
{
    const uint8_t *me = identity_ed_pk(self->core->id);
    size_t k = 0;
    *n_out = 0;
    uint8_t(*out)[32] = malloc((self->n ? self->n : 1) * 2 * CHANNELS_RING_SIDE * 32);
    for (size_t i = 0; out && i < self->n; i++) {
        s_chan_t *c = self->chans[i];
        size_t m = c->member ? roster_member_count(c->fold) : 0;
        uint8_t(*pks)[32] = m > 1 ? malloc(m * 32) : NULL;
        size_t n = 0;
        for (size_t j = 0; pks && j < m; j++) {
            roster_member_t mb;
            if (roster_member_at(c->fold, j, &mb) == PARLEY_OK && memcmp(mb.pk, me, 32) != 0) {
                memcpy(pks[n++], mb.pk, 32);
            }
        }
        if (n > 0) {
            qsort(pks, n, 32, core_key_cmp);
            size_t at[2 * CHANNELS_RING_SIDE];
            size_t got = core_ring((const uint8_t *)pks, n, 32, me, CHANNELS_RING_SIDE, at);
            for (size_t j = 0; j < got; j++) {
                memcpy(out[k++], pks[at[j]], 32);
            }
        }
        free(pks);
    }
    *n_out = k;
    return (uint8_t *)out;
}

/* ------------------------------------------------------------ the API */

static s_chan_t *
s_by_name(channels_t *self, const char *name, const char **why)
{
    if (name[0] == '#') {
        name++;
    }
    size_t len = strlen(name);
    s_chan_t *found = NULL;
    size_t matches = 0;
    for (size_t i = 0; i < self->n; i++) {
        s_chan_t *c = self->chans[i];
        if (!c->ours) {
            continue;
        }
        char id[PARLEY_NODE_ID_STRLEN + 1];
        identity_node_id(c->id, id);
        if (strcmp(c->row.name, name) == 0
            || (len >= 4 && len <= PARLEY_NODE_ID_STRLEN && strncasecmp(id, name, len) == 0)) {
            found = c;
            matches++;
        }
    }
    if (matches != 1) {
        *why = matches ? "more than one channel has that name: give a prefix of its id"
                       : "no channel of that name or id";
        return NULL;
    }
    return found;
}

//  The channel named name, when we are in it as an owner or admin; else
//  NULL and *why (denied saying what only they may do).
static s_chan_t *
s_admin_chan(channels_t *self, const char *name, const char *denied, int *rc, const char **why)
{
    s_chan_t *c = s_by_name(self, name, why);
    if (!c) {
        *rc = PARLEY_ERR_NOTFOUND;
        return NULL;
    }
    if (!c->member || !s_is_admin(c, identity_ed_pk(self->core->id))) {
        *why = denied;
        *rc = PARLEY_ERR_STATE;
        return NULL;
    }
    return c;
}

static json_t *
s_chan_json(channels_t *self, s_chan_t *c)
{
    core_t *core = self->core;
    uint64_t unread = 0;
    if (store_chan_count_after(core->store, c->id, c->row.read.ts_ms ? &c->row.read : NULL,
                               identity_ed_pk(core->id), &unread)
        != PARLEY_OK) {
        unread = 0;
    }
    uint64_t total = 0;
    static const uint8_t s_none[32];
    if (store_chan_count_after(core->store, c->id, NULL, s_none, &total) != PARLEY_OK) {
        total = 0;
    }
    uint8_t flags = roster_channel_flags(c->fold);
    store_chan_key_t k;
    bool keyed = c->member && s_send_key(self, c, &k) == PARLEY_OK;
    sodium_memzero(&k, sizeof k);
    store_chan_msg_t *last = NULL;
    size_t n_last = 0;
    json_t *last_json = json_null();
    if (store_chan_history(core->store, c->id, NULL, 1, &last, &n_last) == PARLEY_OK && n_last) {
        json_decref(last_json);
        last_json = json_pack("{s:o, s:o, s:b, s:I, s:s}", "from", core_json_id(last->pos.author),
                              "from_short", core_json_short_id(last->pos.author), "outgoing",
                              memcmp(last->pos.author, identity_ed_pk(core->id), 32) == 0, "ts_ms",
                              (json_int_t)last->sent_ms, "text", last->text ? last->text : "");
    }
    store_chan_msgs_free(last, n_last);
    const uint8_t *me = identity_ed_pk(core->id);
    const char *role =
        c->member ? s_role_name(roster_role(c->fold, me), roster_rank(c->fold, me)) : "none";
    return json_pack("{s:o, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:b, s:s, s:b, s:b, s:o}",
                     "channel", core_json_id(c->id), "name", c->row.name, "topic", c->row.topic,
                     "role", role, "state", c->row.state == STORE_CHAN_MEMBER ? "member" : "gone",
                     "members", (json_int_t)roster_member_count(c->fold), "messages",
                     (json_int_t)total, "unread", (json_int_t)unread, "epoch",
                     (json_int_t)roster_epoch(c->fold), "keyed", keyed, "history",
                     (flags & ROSTER_CHAN_SHARED) ? "shared" : "from-join", "announce",
                     (flags & ROSTER_CHAN_ANNOUNCE) != 0, "network",
                     (flags & ROSTER_CHAN_NETWORK) != 0, "last", last_json);
}

json_t *
channels_list(channels_t *self)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < self->n; i++) {
        if (self->chans[i]->ours) {
            json_array_append_new(list, s_chan_json(self, self->chans[i]));
        }
    }
    return json_pack("{s:o}", "channels", list);
}

int
channels_info(channels_t *self, const char *name, json_t **out, const char **why)
{
    s_chan_t *c = s_by_name(self, name, why);
    if (!c) {
        return PARLEY_ERR_NOTFOUND;
    }
    json_t *info = s_chan_json(self, c);
    json_t *members = json_array();
    for (size_t i = 0; i < roster_member_count(c->fold); i++) {
        roster_member_t m;
        if (roster_member_at(c->fold, i, &m) == PARLEY_OK) {
            json_array_append_new(members, json_pack("{s:o, s:o, s:s}", "id", core_json_id(m.pk),
                                                     "short_id", core_json_short_id(m.pk), "role",
                                                     s_role_name(m.role, m.rank)));
        }
    }
    json_object_set_new(info, "member_list", members);
    *out = info;
    return PARLEY_OK;
}

int
channels_create(channels_t *self, const char *name, const char *topic, bool shared, bool announce,
                bool network_wide, json_t **out, const char **why)
{
    core_t *core = self->core;
    if (name[0] == '#') {
        name++;
    }
    if (network_wide) {
        const roster_t *net = network_roster(self->network);
        if (!net) {
            *why = "a network-wide channel needs a private network (parley network create)";
            return PARLEY_ERR_STATE;
        }
        if (roster_role(net, identity_ed_pk(core->id)) != ROSTER_ROLE_ADMIN) {
            *why = "only the network's admins create network-wide channels";
            return PARLEY_ERR_STATE;
        }
    }
    topic = topic ? topic : "";
    uint8_t meta[2 + CONTENT_NAME_MAX + CONTENT_TOPIC_MAX];
    size_t meta_len = 0;
    if (content_encode_chan_meta(name, strlen(name), topic, strlen(topic), meta, sizeof meta,
                                 &meta_len)
        != PARLEY_OK) {
        *why = "a channel name is 1 to 64 bytes of text without space, '#' or ','; a topic"
               " at most 512 bytes on one line";
        return PARLEY_ERR_MALFORMED;
    }
    size_t ours = 0;
    for (size_t i = 0; i < self->n; i++) {
        ours += self->chans[i]->ours;
        if (self->chans[i]->ours && self->chans[i]->row.state == STORE_CHAN_MEMBER
            && strcmp(self->chans[i]->row.name, name) == 0) {
            *why = "you are in a channel of that name already";
            return PARLEY_ERR_EXISTS;
        }
    }
    if (ours >= CHANNELS_MAX) {
        *why = "this node is in as many channels as it holds";
        return PARLEY_ERR_LIMIT;
    }
    roster_event_t ev = { .type = ROSTER_CHANNEL };
    randombytes_buf(ev.salt, sizeof ev.salt);
    ev.flags = (uint8_t)((shared ? ROSTER_CHAN_SHARED : 0) | (announce ? ROSTER_CHAN_ANNOUNCE : 0)
                         | (network_wide ? ROSTER_CHAN_NETWORK : 0));
    uint8_t id[32], ev_id[32];
    chan_id(identity_ed_pk(core->id), ev.salt, id);
    s_chan_t *c = NULL;
    int rc = s_chan_new(self, id, &c);
    if (rc == PARLEY_OK) {
        rc = s_author_event(self, c, &ev, ev_id);
    }
    if (rc == PARLEY_OK) {
        rc = s_settle_one(self, c); // ours now: the row, the scopes
    }
    if (rc == PARLEY_OK) {
        rc = s_rotate(self, c); // epoch 0: nothing to wait for
    }
    envelope_t env;
    uint8_t msg_id[32];
    if (rc == PARLEY_OK) {
        rc = s_send_content(self, c, meta, meta_len, &env, msg_id, why);
    }
    if (rc == PARLEY_OK) {
        snprintf(c->row.name, sizeof c->row.name, "%s", name);
        snprintf(c->row.topic, sizeof c->row.topic, "%s", topic);
        c->row.meta.ts_ms = env.ts_ms;
        memcpy(c->row.meta.author, env.author, 32);
        c->row.meta.seq = env.seq;
        rc = store_chan_put(core->store, &c->row);
    }
    if (rc != PARLEY_OK) {
        core_txn_fail(core, rc, "cannot create a channel");
        return rc;
    }
    *out = s_chan_json(self, c);
    return PARLEY_OK;
}

int
channels_add(channels_t *self, const char *name, const uint8_t pk[32], json_t **out,
             const char **why)
{
    core_t *core = self->core;
    int rc = PARLEY_OK;
    s_chan_t *c =
        s_admin_chan(self, name, "only the channel's owners and admins add members", &rc, why);
    if (!c) {
        return rc;
    }
    if (s_net_wide(c)) {
        *why = "the members of a network-wide channel are the network's: invite them to the"
               " network, and they are in it";
        return PARLEY_ERR_STATE;
    }
    if (roster_role(c->fold, pk) != 0) {
        *why = "already a member";
        return PARLEY_ERR_EXISTS;
    }
    uint8_t flags = roster_channel_flags(c->fold);
    roster_event_t ev = { .type = ROSTER_ADD };
    memcpy(ev.key, pk, 32);
    ev.role = (flags & ROSTER_CHAN_ANNOUNCE) ? ROSTER_ROLE_READER : ROSTER_ROLE_MEMBER;
    uint8_t ev_id[32];
    rc = s_author_event(self, c, &ev, ev_id);
    if (rc == PARLEY_OK) {
        rc = roster_fold(c->fold);
        c->dirty = false;
    }
    if (rc == PARLEY_OK && roster_role(c->fold, pk) == 0) {
        *why = "the channel's log did not take the addition";
        rc = PARLEY_ERR_STATE;
    }
    //  The new member gets the current key (and, with shared history, every
    //  earlier one we hold) sealed to it alone.
    store_chan_key_t *keys = NULL;
    size_t n = 0, skipped = 0;
    if (rc == PARLEY_OK) {
        rc = store_chan_key_list(core->store, c->id, &keys, &n);
    }
    uint32_t epoch = roster_epoch(c->fold);
    uint8_t binding[32];
    bool ok = false;
    s_current_binding(c, binding, &ok);
    for (size_t i = 0; rc == PARLEY_OK && i < n; i++) {
        if (s_key_live(c, &keys[i], binding, ok)
            || ((flags & ROSTER_CHAN_SHARED) && keys[i].bound && keys[i].epoch < epoch)) {
            size_t s = 0;
            rc = s_send_keys(self, c, &keys[i], (const uint8_t(*)[32])pk, 1, &s);
            skipped += s;
        }
    }
    store_chan_keys_free(keys, n);
    if (rc == PARLEY_OK && skipped) {
        log_write(&core->log, LOG_LEVEL_WARN,
                  "channel add: no prekey of the new member yet; its key goes when one comes");
    }
    for (size_t i = 0; rc == PARLEY_OK && i < links_count(self->links); i++) {
        link_t *l = links_at(self->links, i);
        if (memcmp(link_pk(l), pk, 32) == 0) {
            replica_sync_soon(self->replica, l); // it learns the rest of the log
        }
    }
    if (rc != PARLEY_OK) {
        if (!*why) {
            core_txn_fail(core, rc, "cannot add a channel member");
        }
        return rc;
    }
    return channels_info(self, name, out, why);
}

//  Authors ev in the channel named name (an owner's or admin's act, unless
//  self_act: a leave) and settles it: a REMOVE or REKEY arms the rotation,
//  which a later iteration carries out (channel.h).
static int
s_act(channels_t *self, const char *name, const roster_event_t *ev, bool self_act, json_t **out,
      const char **why)
{
    core_t *core = self->core;
    s_chan_t *c = s_by_name(self, name, why);
    if (!c) {
        return PARLEY_ERR_NOTFOUND;
    }
    if (!c->member) {
        *why = "you are not in this channel";
        return PARLEY_ERR_STATE;
    }
    if (ev->type == ROSTER_REMOVE && s_net_wide(c)) {
        *why = self_act ? "a network-wide channel has every member of the network: you leave it"
                          " by leaving the network"
                        : "the members of a network-wide channel are the network's: remove them"
                          " from the network (parley member remove), and they leave it";
        return PARLEY_ERR_STATE;
    }
    if (!self_act && !s_is_admin(c, identity_ed_pk(core->id))) {
        *why = "only the channel's owners and admins can do that";
        return PARLEY_ERR_STATE;
    }
    uint8_t id[32];
    int rc = s_author_event(self, c, ev, id);
    bool found = false;
    for (size_t i = roster_log_count(c->fold); rc == PARLEY_OK && i-- > 0 && !found;) {
        roster_log_entry_t le;
        if (roster_log_at(c->fold, i, &le) == PARLEY_OK && memcmp(le.id, id, 32) == 0) {
            found = true;
            if (!le.applied) {
                *why = le.reason; // the fold's own sentence ("target is not junior to the author")
                rc = PARLEY_ERR_STATE;
            }
        }
    }
    if (rc == PARLEY_OK) {
        rc = s_settle_one(self, c);
    }
    if (rc != PARLEY_OK) {
        //  A void event is not kept either: the iteration rolls back.
        core_txn_fail(core, rc, *why ? *why : "cannot write a channel event");
        return rc;
    }
    *out = s_chan_json(self, c);
    return PARLEY_OK;
}

int
channels_remove(channels_t *self, const char *name, const uint8_t pk[32], json_t **out,
                const char **why)
{
    if (memcmp(pk, identity_ed_pk(self->core->id), 32) == 0) {
        *why = "to leave a channel: parley channel leave NAME";
        return PARLEY_ERR_STATE;
    }
    roster_event_t ev = { .type = ROSTER_REMOVE };
    memcpy(ev.key, pk, 32);
    return s_act(self, name, &ev, false, out, why);
}

int
channels_leave(channels_t *self, const char *name, json_t **out, const char **why)
{
    roster_event_t ev = { .type = ROSTER_REMOVE };
    memcpy(ev.key, identity_ed_pk(self->core->id), 32);
    return s_act(self, name, &ev, true, out, why);
}

int
channels_rekey(channels_t *self, const char *name, json_t **out, const char **why)
{
    roster_event_t ev = { .type = ROSTER_REKEY };
    return s_act(self, name, &ev, false, out, why);
}

int
channels_set_role(channels_t *self, const char *name, const uint8_t pk[32], uint8_t role,
                  json_t **out, const char **why)
{
    roster_event_t ev = { .type = ROSTER_ROLE, .role = role };
    memcpy(ev.key, pk, 32);
    return s_act(self, name, &ev, false, out, why);
}

int
channels_topic(channels_t *self, const char *name, const char *topic, json_t **out,
               const char **why)
{
    core_t *core = self->core;
    int rc = PARLEY_OK;
    s_chan_t *c =
        s_admin_chan(self, name, "only the channel's owners and admins set its topic", &rc, why);
    if (!c) {
        return rc;
    }
    uint8_t meta[2 + CONTENT_NAME_MAX + CONTENT_TOPIC_MAX];
    size_t meta_len = 0;
    if (content_encode_chan_meta(c->row.name, strlen(c->row.name), topic, strlen(topic), meta,
                                 sizeof meta, &meta_len)
        != PARLEY_OK) {
        *why = "a topic is at most 512 bytes of text on one line";
        return PARLEY_ERR_MALFORMED;
    }
    envelope_t env;
    uint8_t id[32];
    *why = NULL;
    rc = s_send_content(self, c, meta, meta_len, &env, id, why);
    if (rc == PARLEY_OK) {
        snprintf(c->row.topic, sizeof c->row.topic, "%s", topic);
        c->row.meta.ts_ms = env.ts_ms;
        memcpy(c->row.meta.author, env.author, 32);
        c->row.meta.seq = env.seq;
        rc = store_chan_put(core->store, &c->row);
    }
    if (rc != PARLEY_OK) {
        if (!*why) {
            core_txn_fail(core, rc, "cannot set a channel's topic");
        }
        return rc;
    }
    *out = s_chan_json(self, c);
    return PARLEY_OK;
}

int
channels_send(channels_t *self, const char *name, const char *text, json_t **out, const char **why)
{
    core_t *core = self->core;
    s_chan_t *c = s_by_name(self, name, why);
    if (!c) {
        return PARLEY_ERR_NOTFOUND;
    }
    uint8_t role = roster_role(c->fold, identity_ed_pk(core->id));
    if (role == 0 || role == ROSTER_ROLE_READER) {
        *why = role ? "readers read this channel; they do not post" : "you are not in this channel";
        return PARLEY_ERR_STATE;
    }
    //  Behind messages that wait for the key, this one waits too: the
    //  order of ours is the order they were sent in.
    *why = NULL;
    int rc = c->n_queued > 0 ? PARLEY_ERR_NOKEY : s_post(self, c, text, out, why);
    if (rc == PARLEY_ERR_NOKEY) {
        //  The current epoch's key has not come (a removal is being
        //  rotated): the message waits, durable, and goes when it comes.
        if (c->n_queued >= CHANNELS_QUEUE_MAX) {
            *why = "too many messages wait for this channel's key: try again later";
            return PARLEY_ERR_LIMIT;
        }
        if (!content_utf8_valid(text, strlen(text)) || strlen(text) == 0
            || strlen(text) > PARLEY_TEXT_MAX) {
            *why = "text must be 1 to 32766 bytes of UTF-8 without NUL";
            return PARLEY_ERR_MALFORMED;
        }
        store_chan_queued_t q = { .ts_ms = core_now(core), .text = (char *)text };
        memcpy(q.channel, c->id, 32);
        *why = NULL;
        rc = store_chan_queue_add(core->store, c->id, q.ts_ms, text, &q.n);
        if (rc == PARLEY_OK) {
            c->n_queued++;
            *out = s_queued_json(self, c, &q);
        }
    }
    if (rc != PARLEY_OK && !*why) {
        core_txn_fail(core, rc, "cannot send to a channel");
    }
    return rc;
}

int
channels_read(channels_t *self, const char *name, json_t **out, const char **why)
{
    core_t *core = self->core;
    s_chan_t *c = s_by_name(self, name, why);
    if (!c) {
        return PARLEY_ERR_NOTFOUND;
    }
    uint64_t unread = 0;
    store_chan_msg_t *last = NULL;
    size_t n = 0;
    int rc = store_chan_count_after(core->store, c->id, c->row.read.ts_ms ? &c->row.read : NULL,
                                    identity_ed_pk(core->id), &unread);
    if (rc == PARLEY_OK) {
        rc = store_chan_history(core->store, c->id, NULL, 1, &last, &n);
    }
    if (rc == PARLEY_OK && n == 1) {
        c->row.read = last[0].pos;
        rc = store_chan_put(core->store, &c->row);
    }
    store_chan_msgs_free(last, n);
    bool tell = !core->cfg.no_read_receipts && c->member && unread > 0;
    if (rc == PARLEY_OK && tell) {
        rc = s_send_receipt(self, c, RECEIPT_READ);
    }
    if (rc != PARLEY_OK) {
        core_txn_fail(core, rc, "cannot mark a channel read");
        return rc;
    }
    *out = json_pack("{s:o, s:s, s:I, s:b}", "channel", core_json_id(c->id), "name", c->row.name,
                     "marked", (json_int_t)unread, "receipts", !core->cfg.no_read_receipts);
    return PARLEY_OK;
}

int
channels_history(channels_t *self, const char *name, const char *before, size_t limit, json_t **out,
                 const char **why)
{
    s_chan_t *c = s_by_name(self, name, why);
    if (!c) {
        return PARLEY_ERR_NOTFOUND;
    }
    store_chan_pos_t at;
    if (before && s_cursor_parse(before, &at) != PARLEY_OK) {
        *why = "before must be the cursor of one of the channel's messages";
        return PARLEY_ERR_MALFORMED;
    }
    store_chan_msg_t *msgs = NULL;
    size_t n = 0;
    int rc = store_chan_history(self->core->store, c->id, before ? &at : NULL, limit, &msgs, &n);
    if (rc != PARLEY_OK) {
        return rc;
    }
    json_t *list = json_array();
    const uint8_t *me = identity_ed_pk(self->core->id);
    size_t others = roster_member_count(c->fold) - (c->member ? 1 : 0);
    for (size_t i = 0; i < n; i++) {
        json_t *m = s_msg_json(self, c, &msgs[i]);
        uint64_t held = 0, read = 0;
        if (memcmp(msgs[i].pos.author, me, 32) == 0
            && store_chan_mark_count(self->core->store, c->id, me, RECEIPT_DELIVERED,
                                     msgs[i].pos.seq, &held)
                   == PARLEY_OK
            && store_chan_mark_count(self->core->store, c->id, me, RECEIPT_READ, msgs[i].pos.seq,
                                     &read)
                   == PARLEY_OK) {
            json_object_set_new(m, "delivered", json_integer((json_int_t)held));
            json_object_set_new(m, "read", json_integer((json_int_t)read));
            json_object_set_new(m, "of", json_integer((json_int_t)others));
        }
        json_array_append_new(list, m);
    }
    store_chan_msgs_free(msgs, n);
    //  Ours that wait for the key come last, in the order sent (on the
    //  newest page).
    store_chan_queued_t *q = NULL;
    size_t n_q = 0;
    if (c->n_queued > 0 && !before
        && store_chan_queue_list(self->core->store, c->id, 0, &q, &n_q) == PARLEY_OK) {
        for (size_t i = 0; i < n_q; i++) {
            json_array_append_new(list, s_queued_json(self, c, &q[i]));
        }
    }
    store_chan_queued_free(q, n_q);
    *out = json_pack("{s:o, s:s, s:o}", "channel", core_json_id(c->id), "name", c->row.name,
                     "messages", list);
    return PARLEY_OK;
}
