/*  node/network.c — the private network this node is in (see network.h).
 *
 *  State kept beside the fold, rebuilt after every fold that changes it:
 *
 *      members   sorted Ed25519 keys of the current members (what "gone"
 *                is computed against)
 *      member_x  sorted CURVE keys of the same members (the ZAP handler
 *                looks a client key up in it: O(log n) per handshake)
 *      invite_x  CURVE key → invite key of every invite not revoked or
 *                used up (liveness against the clock is checked at ZAP time)
 *
 *  Permissive until we are a member. A joiner holds its own JOIN before it
 *  holds the events it names: until a fold shows this node as a member, it
 *  cannot tell members from strangers, so it answers as in open mode (and
 *  takes any network event that decodes, within ROSTER_EVENTS_MAX). The
 *  window lasts one reconciliation with the member that added it.
 */
#include "network.h"

#include "../proto/b32.h"
#include "../proto/endpoint.h"
#include "../proto/netkey.h"
#include "transport.h"
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zmq.h>

#define S_REPLIES_MAX 64u /* join answers queued per iteration; more wait for an ASK again */
#define S_REPLY_FRAME 600u

typedef enum { S_JOIN_NONE, S_JOIN_DIALLING, S_JOIN_PROVING, S_JOIN_FAILED } s_join_state_t;

//  The joiner's side of the exchange (network.h).
typedef struct {
    s_join_state_t state;
    invite_code_t code;               /* holds the secret: wiped when done */
    uint8_t ed_pk[32], ed_sk[64];     /* the invite's signing pair (wiped) */
    char name[ROSTER_NAME_MAX + 1];   /* our name in the JOIN */
    void *sock[NETWORK_JOIN_SOCKETS]; /* one DEALER per endpoint */
    size_t chosen;                    /* the socket whose HEADS we answered */
    uint64_t deadline, next_ask;      /* ms */
    char error[300];                  /* why it failed */
    uint8_t env[PARLEY_ENVELOPE_MAX]; /* our JOIN, sent after its commit */
    size_t env_len;
    bool env_due;
} s_join_t;

//  A member's answer to an invite connection, sent after the commit.
typedef struct {
    uint8_t rid[LINK_ROUTE_MAX];
    size_t rid_len;
    uint8_t frame[S_REPLY_FRAME];
    size_t len;
} s_reply_t;

typedef struct {
    uint8_t pk[32]; /* an author */
    uint32_t n;     /* its events in the roster */
} s_count_t;

typedef struct {
    uint8_t x[32];  /* CURVE key the joiner connects with */
    uint8_t pk[32]; /* the invite's Ed25519 key (its name in the roster) */
} s_invite_x_t;

struct network {
    core_t *core;
    links_t *links;
    replica_t *replica;
    network_changed_fn *changed;
    void *arg;
    bool active;      /* a member (founded or joined), not left */
    bool member_seen; /* a fold has shown this node as a member */
    bool replica_net; /* replica_set_network was told (once a member) */
    bool stale;       /* rolled back: read the roster again before use */
    bool dirty;       /* events added since the last fold */
    uint8_t id[32];   /* network id (active) */
    roster_t *roster; /* the fold (active) */
    uint8_t (*members)[32];
    size_t n_members;
    uint8_t (*member_x)[32];
    size_t n_member_x;
    s_invite_x_t *invite_x;
    size_t n_invite_x;
    uint8_t (*fresh)[32]; /* ids stored since the last fold: notified after it */
    s_count_t *counts;    /* events held per author, sorted by key */
    size_t n_counts, cap_counts;
    size_t n_fresh, cap_fresh;
    store_netkey_t keys[STORE_NETKEYS_MAX]; /* network secrets, newest epoch first */
    size_t n_keys;
    bool key_news;        /* keys[0] is new: every member hears of it */
    store_netkey_t ahead; /* a secret for an epoch our roster has not
                             reached: held until it does */
    bool has_ahead;
    bool quiet;                       /* network_quiet when the node was last told */
    uint8_t buf[PARLEY_ENVELOPE_MAX]; /* an event we author */
    s_join_t *join;                   /* joining, or NULL */
    void *ctx;                        /* the node's ZeroMQ context */
    void *router;                     /* the member side answers on it */
    s_reply_t *replies;               /* queued answers to invite connections */
    size_t n_replies;
};

static int
s_cmp32(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

static bool
s_has(const uint8_t (*set)[32], size_t n, const uint8_t key[32])
{
    return n > 0 && bsearch(key, set, n, 32, s_cmp32) != NULL;
}

static const char *
s_type_name(uint8_t type)
{
    static const char *const names[] = { "?",   "create", "invite", "revoke", "join",
                                         "add", "remove", "role",   "relay" };
    return type < sizeof names / sizeof names[0] ? names[type] : "?";
}

//  The slot of author pk in the per-author counts (made, zero, when add).
static s_count_t *
s_count(network_t *self, const uint8_t pk[32], bool add)
{
    size_t lo = 0;
    if (core_key_search(self->counts, self->n_counts, sizeof *self->counts, pk, &lo)) {
        return &self->counts[lo];
    }
    if (!add) {
        return NULL;
    }
    if (self->n_counts == self->cap_counts) {
        size_t cap = self->cap_counts ? self->cap_counts * 2 : 64;
        s_count_t *grown = realloc(self->counts, cap * sizeof *grown);
        if (!grown) {
            return NULL;
        }
        self->counts = grown;
        self->cap_counts = cap;
    }
    memmove(&self->counts[lo + 1], &self->counts[lo], (self->n_counts - lo) * sizeof *self->counts);
    self->n_counts++;
    memset(&self->counts[lo], 0, sizeof self->counts[lo]);
    memcpy(self->counts[lo].pk, pk, 32);
    return &self->counts[lo];
}

static bool
s_self(const network_t *self, const uint8_t pk[32])
{
    return sodium_memcmp(pk, identity_ed_pk(self->core->id), 32) == 0;
}

//  Answers as in open mode: no network, or not yet a member in any fold.
static bool
s_permissive(const network_t *self)
{
    return !self->active || !self->member_seen;
}

/* ---------------------------------------------------------- the fold */

//  The roster's scope is ours to replicate from the start; only once we
//  are a member does every member link count as a party to it (before, we
//  could not tell members from the strangers of open mode, who must not be
//  offered the roster: see the file comment).
static void
s_replicate(network_t *self)
{
    if (!self->active) {
        return;
    }
    if (!self->member_seen) {
        replica_mine(self->replica, self->id);
    } else if (!self->replica_net) {
        self->replica_net = true;
        replica_set_network(self->replica, self->id);
    }
}

//  Rebuilds members, member_x and invite_x from the roster; *gone gets the
//  keys that were members before and are not now, *added the reverse
//  (malloc'd, caller frees both).
static int
s_rebuild(network_t *self, uint8_t (**gone)[32], size_t *n_gone, uint8_t (**added)[32],
          size_t *n_added)
{
    *gone = NULL;
    *n_gone = 0;
    *added = NULL;
    *n_added = 0;
    size_t n = self->roster ? roster_member_count(self->roster) : 0;
    uint8_t(*members)[32] = n ? malloc(n * 32) : NULL;
    uint8_t(*xs)[32] = n ? malloc(n * 32) : NULL;
    size_t n_inv = self->roster ? roster_invite_count(self->roster) : 0;
    s_invite_x_t *inv = n_inv ? malloc(n_inv * sizeof *inv) : NULL;
    if ((n && (!members || !xs)) || (n_inv && !inv)) {
        free(members);
        free(xs);
        free(inv);
        return PARLEY_ERR_NOMEM;
    }
    size_t nx = 0;
    for (size_t i = 0; i < n; i++) {
        roster_member_t m;
        if (roster_member_at(self->roster, i, &m) != PARLEY_OK) {
            continue;
        }
        memcpy(members[i], m.pk, 32);
        if (identity_ed_to_x(m.pk, xs[nx]) == PARLEY_OK) {
            nx++;
        }
    }
    if (n > 0) {
        qsort(members, n, 32, s_cmp32);
        qsort(xs, nx, 32, s_cmp32);
    }
    size_t ni = 0;
    for (size_t i = 0; i < n_inv; i++) {
        roster_invite_t v;
        if (roster_invite_at(self->roster, i, &v) == PARLEY_OK
            && identity_ed_to_x(v.invite_pk, inv[ni].x) == PARLEY_OK) {
            memcpy(inv[ni].pk, v.invite_pk, 32);
            ni++;
        }
    }
    //  Who left the membership.
    if (self->n_members > 0) {
        *gone = malloc(self->n_members * 32);
        if (!*gone) {
            free(members);
            free(xs);
            free(inv);
            return PARLEY_ERR_NOMEM;
        }
        for (size_t i = 0; i < self->n_members; i++) {
            if (!s_has((const uint8_t(*)[32])members, n, self->members[i])) {
                memcpy((*gone)[(*n_gone)++], self->members[i], 32);
            }
        }
    }
    if (n > 0) {
        *added = malloc(n * 32);
        if (!*added) {
            free(*gone);
            *gone = NULL;
            free(members);
            free(xs);
            free(inv);
            return PARLEY_ERR_NOMEM;
        }
        for (size_t i = 0; i < n; i++) {
            if (!s_has((const uint8_t(*)[32])self->members, self->n_members, members[i])) {
                memcpy((*added)[(*n_added)++], members[i], 32);
            }
        }
    }
    free(self->members);
    free(self->member_x);
    free(self->invite_x);
    self->members = members;
    self->n_members = n;
    self->member_x = xs;
    self->n_member_x = nx;
    self->invite_x = inv;
    self->n_invite_x = ni;
    return PARLEY_OK;
}

static json_t *
s_key_json(const uint8_t pk[32])
{
    return pk ? core_json_id(pk) : json_null();
}

//  The name the roster gives pk, as a JSON string ("" when none). One no
//  longer a member keeps the name its newest applied JOIN or ADD gave it.
static json_t *
s_name_json(const network_t *self, const uint8_t pk[32])
{
    size_t n = self->roster ? roster_member_count(self->roster) : 0;
    for (size_t i = 0; i < n; i++) {
        roster_member_t m;
        if (roster_member_at(self->roster, i, &m) == PARLEY_OK && memcmp(m.pk, pk, 32) == 0) {
            return json_stringn((const char *)m.name, m.name_len);
        }
    }
    n = self->roster ? roster_log_count(self->roster) : 0;
    for (size_t i = n; i-- > 0;) {
        roster_log_entry_t e;
        if (roster_log_at(self->roster, i, &e) != PARLEY_OK || !e.applied
            || !((e.type == ROSTER_JOIN && memcmp(e.author, pk, 32) == 0)
                 || (e.type == ROSTER_ADD && memcmp(e.target, pk, 32) == 0))) {
            continue;
        }
        uint8_t *bytes = NULL;
        size_t len = 0;
        envelope_t env;
        roster_event_t ev;
        json_t *name = NULL;
        if (store_envelope_get(self->core->store, e.id, &bytes, &len) == PARLEY_OK
            && envelope_decode(bytes, len, &env) == PARLEY_OK
            && roster_event_decode(env.body, env.body_len, &ev) == PARLEY_OK) {
            name = json_stringn((const char *)ev.text, ev.text_len);
        }
        free(bytes);
        if (name) {
            return name;
        }
    }
    return json_string("");
}

//  A "network" notification for every event stored since the last fold.
static void
s_notify_fresh(network_t *self)
{
    if (self->n_fresh == 0) {
        return;
    }
    qsort(self->fresh, self->n_fresh, 32, s_cmp32);
    size_t n = roster_log_count(self->roster);
    for (size_t i = 0; i < n; i++) {
        roster_log_entry_t e;
        if (roster_log_at(self->roster, i, &e) != PARLEY_OK
            || !s_has((const uint8_t(*)[32])self->fresh, self->n_fresh, e.id)) {
            continue;
        }
        core_notify(self->core, "network",
                    json_pack("{s:s, s:o, s:o, s:b, s:s?}", "type", s_type_name(e.type), "author",
                              core_json_id(e.author), "target", core_json_id(e.target), "applied",
                              e.applied, "reason", e.reason));
    }
    self->n_fresh = 0;
}

/* ---------------------------------------------------------- secrets */

static void s_fresh_state(network_t *self);

//  The epoch the roster is at: removals applied (SPEC §19.2). Every
//  removal, leave included, starts a new one: the key a removed member
//  held opens nothing announced after it.
static uint32_t
s_epoch(const network_t *self)
{
    uint32_t n = 0;
    size_t count = roster_log_count(self->roster);
    for (size_t i = 0; i < count; i++) {
        roster_log_entry_t e;
        if (roster_log_at(self->roster, i, &e) == PARLEY_OK && e.applied
            && e.type == ROSTER_REMOVE) {
            n++;
        }
    }
    return n;
}

//  The binding of epoch (proto/netkey.h): our network and the first epoch
//  REMOVE events the fold applied, their ids sorted. For the current epoch,
//  every applied removal; an earlier one, the removals that led to it.
static void
s_binding(const network_t *self, uint32_t epoch, uint8_t out[32])
{
    size_t count = roster_log_count(self->roster);
    uint8_t(*ids)[32] = epoch > 0 ? calloc(epoch, 32) : NULL;
    size_t n = 0;
    for (size_t i = 0; ids && i < count && n < epoch; i++) {
        roster_log_entry_t e;
        if (roster_log_at(self->roster, i, &e) == PARLEY_OK && e.applied
            && e.type == ROSTER_REMOVE) {
            memcpy(ids[n++], e.id, 32);
        }
    }
    if (n > 1) {
        qsort(ids, n, 32, s_cmp32);
    }
    netkey_binding(self->id, ids ? &ids[0][0] : NULL, n, out);
    free(ids);
}

//  Whether k is an admin's secret for epoch k->epoch as our fold has it
//  (the same removals, not only as many).
static bool
s_key_bound(const network_t *self, const store_netkey_t *k)
{
    uint8_t binding[32];
    s_binding(self, k->epoch, binding);
    return netkey_verify(binding, k->epoch, k->secret, k->author, k->sig) == PARLEY_OK;
}

//  Whether candidate beats held for one epoch: the more senior author (a
//  lower rank), then the smaller secret — every member picks the same one
//  whatever order two concurrent rotations reach it in.
static bool
s_key_beats(const network_t *self, const store_netkey_t *candidate, const store_netkey_t *held)
{
    uint32_t rc = roster_rank(self->roster, candidate->author);
    uint32_t rh = roster_rank(self->roster, held->author);
    if (rc != rh) {
        return rc < rh;
    }
    return memcmp(candidate->secret, held->secret, 32) < 0;
}

//  Takes k into the kept keys (and the store) when it is new or wins its
//  epoch; true when the kept keys changed.
static bool
s_key_adopt(network_t *self, const store_netkey_t *k)
{
    size_t at = 0;
    while (at < self->n_keys && self->keys[at].epoch > k->epoch) {
        at++;
    }
    if (at < self->n_keys && self->keys[at].epoch == k->epoch) {
        if (sodium_memcmp(self->keys[at].secret, k->secret, 32) == 0
            || !s_key_beats(self, k, &self->keys[at])) {
            return false;
        }
    } else if (at >= STORE_NETKEYS_MAX) {
        return false; // older than every key we keep
    } else {
        size_t n = self->n_keys < STORE_NETKEYS_MAX ? self->n_keys + 1 : STORE_NETKEYS_MAX;
        memmove(&self->keys[at + 1], &self->keys[at], (n - 1 - at) * sizeof self->keys[0]);
        self->n_keys = n;
    }
    int rc = store_netkey_put(self->core->store, k);
    if (rc != PARLEY_OK) {
        core_txn_fail(self->core, rc, "cannot keep a network secret");
        return false;
    }
    self->keys[at] = *k;
    if (at == 0 && !s_permissive(self)) {
        self->key_news = true; // passed on to every member after the commit
    }
    return true;
}

//  An admin whose roster is at an epoch no key of which it holds makes one.
static bool
s_rotate_if_due(network_t *self)
{
    if (roster_role(self->roster, identity_ed_pk(self->core->id)) != ROSTER_ROLE_ADMIN) {
        return false;
    }
    uint32_t epoch = s_epoch(self);
    //  A key of this epoch bound to other removals (one side's, before a
    //  partition healed) does not count: it is replaced.
    if (self->n_keys > 0
        && (self->keys[0].epoch > epoch
            || (self->keys[0].epoch == epoch && s_key_bound(self, &self->keys[0])))) {
        return false;
    }
    store_netkey_t k;
    memset(&k, 0, sizeof k);
    k.epoch = epoch;
    do {
        randombytes_buf(k.secret, sizeof k.secret);
    } while (sodium_is_zero(k.secret, sizeof k.secret));
    memcpy(k.author, identity_ed_pk(self->core->id), 32);
    uint8_t binding[32];
    s_binding(self, epoch, binding);
    bool changed =
        netkey_sign(binding, epoch, k.secret, identity_ed_sk(self->core->id), k.sig) == PARLEY_OK
        && s_key_adopt(self, &k);
    if (changed) {
        log_write(&self->core->log, LOG_LEVEL_INFO, "new network secret for epoch %" PRIu32, epoch);
    }
    sodium_memzero(&k, sizeof k);
    return changed;
}

//  Our newest key, to link (a member).
static void
s_send_key(network_t *self, link_t *link)
{
    if (self->n_keys == 0) {
        return;
    }
    const store_netkey_t *k = &self->keys[0];
    uint8_t buf[256];
    size_t len = 0;
    if (frame_encode_netkey(self->id, k->epoch, k->secret, k->author, k->sig, buf, sizeof buf, &len)
        == PARLEY_OK) {
        (void)links_send(self->links, link, buf, len); // lost: the next connection sends it
    }
    sodium_memzero(buf, sizeof buf);
}

void
network_link_up(network_t *self, link_t *link)
{
    //  Not while we sync the roster we joined: we cannot tell members yet.
    if (network_active(self) && !s_permissive(self) && network_allows(self, link_pk(link))) {
        s_send_key(self, link);
    }
}

//  Adds event id to a farewell batch; false once the frame is full.
static bool
s_farewell_add(network_t *self, frame_batch_t *b, const uint8_t id[32])
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    if (store_envelope_get(self->core->store, id, &bytes, &len) != PARLEY_OK) {
        return true; // not ours to send (never stored): the rest may be
    }
    int rc = frame_batch_add(b, bytes, len);
    free(bytes);
    return rc == PARLEY_OK;
}

void
network_farewell(network_t *self, link_t *link)
{
    if (!network_active(self)) {
        return;
    }
    uint8_t *buf = malloc(PARLEY_FRAME_MAX);
    if (!buf) {
        return;
    }
    //  Its removal, then the newest events: those it may lack besides
    //  (concurrent acts, what followed). A roster holds an event whose
    //  parents it lacks until they come, so the order does not matter.
    frame_batch_t b;
    frame_batch_begin(&b, buf, PARLEY_FRAME_MAX);
    size_t n = roster_log_count(self->roster);
    size_t removal = n;
    roster_log_entry_t e;
    for (size_t i = n; i-- > 0 && removal == n;) {
        if (roster_log_at(self->roster, i, &e) == PARLEY_OK && e.type == ROSTER_REMOVE && e.applied
            && sodium_memcmp(e.target, link_pk(link), 32) == 0) {
            removal = i;
        }
    }
    bool room = removal == n || s_farewell_add(self, &b, e.id);
    for (size_t i = n, sent = 0; room && i-- > 0 && sent < NETWORK_FAREWELL_EVENTS; sent++) {
        if (i != removal && roster_log_at(self->roster, i, &e) == PARLEY_OK) {
            room = s_farewell_add(self, &b, e.id);
        }
    }
    size_t len = frame_batch_finish(&b);
    if (len > 0) {
        (void)links_send_last(self->links, link, buf, len); // best effort: it cannot ask again
    }
    free(buf);
}

void
network_on_netkey(network_t *self, link_t *link, const frame_t *f)
{
    s_fresh_state(self);
    if (!network_active(self) || memcmp(f->network_id, self->id, 32) != 0) {
        self->core->counters[C_NOT_OURS]++;
        return;
    }
    store_netkey_t k;
    memset(&k, 0, sizeof k);
    k.epoch = f->epoch;
    memcpy(k.secret, f->secret, 32);
    memcpy(k.author, f->author, 32);
    memcpy(k.sig, f->sig, 64);
    //  Only an admin hands out secrets, bound to the removals it answers. A
    //  secret our fold does not bind (an epoch it has not reached, or the
    //  same count of other removals: a partition's other side; or, while we
    //  still sync the roster we joined, anything) waits until we hold those
    //  removals: passed on before that, it could reach the very member that
    //  was removed, which we still take for a member. One that waits is
    //  checked when the fold binds it (a forgery then fails for good).
    uint32_t epoch = s_epoch(self);
    bool admin = roster_role(self->roster, k.author) == ROSTER_ROLE_ADMIN;
    if (!s_permissive(self) && admin && k.epoch <= epoch && s_key_bound(self, &k)) {
        if (core_txn(self->core) == PARLEY_OK && s_key_adopt(self, &k)) {
            network_change_t ch = { NULL, 0, NULL, 0, false, true };
            self->quiet = network_quiet(self); // discovery hears of the secret now
            if (self->changed) {
                self->changed(self->arg, &ch);
            }
        }
    } else if (!admin && !s_permissive(self)) {
        self->core->counters[C_BAD_SIGNATURE]++;
        links_strike(self->links, link, "it sends network secrets no admin signed", 1);
    } else if (k.epoch >= epoch && k.epoch <= epoch + NETWORK_EPOCH_AHEAD
               && (!self->has_ahead || k.epoch >= self->ahead.epoch)) {
        self->ahead = k;
        self->has_ahead = true;
    } else {
        self->core->counters[C_NOT_OURS]++; // an old epoch's, or too far ahead
    }
    sodium_memzero(&k, sizeof k);
}

//  After a fold: rebuilds the derived state and tells the node what changed.
static void
s_after_fold(network_t *self)
{
    bool was = self->member_seen
               && s_has((const uint8_t(*)[32])self->members, self->n_members,
                        identity_ed_pk(self->core->id));
    uint8_t(*gone)[32] = NULL, (*added)[32] = NULL;
    size_t n_gone = 0, n_added = 0;
    if (s_rebuild(self, &gone, &n_gone, &added, &n_added) != PARLEY_OK) {
        core_txn_fail(self->core, PARLEY_ERR_NOMEM, "cannot fold the roster");
        return;
    }
    bool is = roster_role(self->roster, identity_ed_pk(self->core->id)) != ROSTER_ROLE_NONE;
    if (is) {
        self->member_seen = true;
        s_replicate(self);
    }
    s_notify_fresh(self);
    bool keys = false;
    if (is && self->has_ahead && self->ahead.epoch <= s_epoch(self)) {
        //  The removals a secret we hold answers may have arrived: it counts
        //  if our fold binds it to them; one of an epoch behind ours goes.
        bool bound = roster_role(self->roster, self->ahead.author) == ROSTER_ROLE_ADMIN
                     && s_key_bound(self, &self->ahead);
        if (bound || self->ahead.epoch < s_epoch(self)) {
            self->has_ahead = false;
            keys = bound && s_key_adopt(self, &self->ahead);
            sodium_memzero(&self->ahead, sizeof self->ahead);
        }
    }
    keys = (is && s_rotate_if_due(self)) || keys;
    network_change_t ch = {
        (const uint8_t(*)[32])gone, n_gone, (const uint8_t(*)[32])added, n_added, was && !is, keys
    };
    if (ch.self_gone) {
        //  Removed, or we left: open mode from now on. The log keeps the
        //  events; the row says we are out.
        store_network_t row = { .state = STORE_NET_LEFT, .since_ms = core_now(self->core) };
        memcpy(row.id, self->id, 32);
        int rc = store_network_set(self->core->store, &row);
        if (rc != PARLEY_OK) {
            core_txn_fail(self->core, rc, "cannot record leaving the network");
        }
        log_write(&self->core->log, LOG_LEVEL_WARN,
                  "this node is no longer a member of the network");
        self->active = false;
        self->n_keys = 0;
        self->key_news = false;
        ch.keys_changed = true;
        sodium_memzero(self->keys, sizeof self->keys);
    }
    if (ch.keys_changed) {
        self->quiet = network_quiet(self); // discovery hears of it now
    }
    if (self->changed) {
        self->changed(self->arg, &ch);
    }
    free(gone);
    free(added);
}

static int
s_load_event(uint64_t ts, const uint8_t id[32], const uint8_t *bytes, size_t len, void *arg)
{
    (void)ts;
    network_t *self = arg;
    envelope_t env;
    if (envelope_decode(bytes, len, &env) != PARLEY_OK || env.kind != ENVELOPE_KIND_NET) {
        return 0; // held in the log but not an event: skipped
    }
    int rc = roster_add_event(self->roster, id, env.author, env.ts_ms, env.body, env.body_len);
    s_count_t *c = rc == PARLEY_OK ? s_count(self, env.author, true) : NULL;
    if (c) {
        c->n++;
    }
    return rc == PARLEY_ERR_NOMEM ? rc : 0;
}

static int
s_load_keys(network_t *self)
{
    store_netkey_t k[STORE_NETKEYS_MAX];
    size_t n = 0;
    int rc = store_netkey_list(self->core->store, k, STORE_NETKEYS_MAX, &n);
    self->n_keys = rc == PARLEY_OK ? n : 0;
    memcpy(self->keys, k, self->n_keys * sizeof k[0]);
    sodium_memzero(k, sizeof k);
    return rc;
}

//  Reads the network row and folds the roster from the log.
static int
s_load(network_t *self)
{
    roster_destroy(&self->roster);
    self->active = false;
    self->stale = false;
    self->dirty = false;
    self->n_fresh = 0;
    self->n_counts = 0;
    store_network_t row;
    int rc = store_network_get(self->core->store, &row);
    if (rc == PARLEY_ERR_NOTFOUND || (rc == PARLEY_OK && row.state != STORE_NET_MEMBER)) {
        uint8_t(*gone)[32] = NULL, (*added)[32] = NULL;
        size_t n_gone = 0, n_added = 0;
        rc = s_rebuild(self, &gone, &n_gone, &added, &n_added);
        free(gone);
        free(added);
        return rc;
    }
    if (rc != PARLEY_OK) {
        return rc;
    }
    memcpy(self->id, row.id, 32);
    self->roster = roster_new(self->id);
    if (!self->roster) {
        return PARLEY_ERR_NOMEM;
    }
    uint8_t lo[32], hi[32];
    memset(lo, 0x00, sizeof lo);
    memset(hi, 0xFF, sizeof hi);
    size_t n = 0;
    rc = store_envelope_range(self->core->store, self->id, 0, lo, INT64_MAX, hi, ROSTER_EVENTS_MAX,
                              s_load_event, self, &n);
    if (rc == PARLEY_OK) {
        rc = roster_fold(self->roster);
    }
    if (rc == PARLEY_OK) {
        rc = s_load_keys(self);
    }
    if (rc != PARLEY_OK) {
        roster_destroy(&self->roster);
        return rc;
    }
    self->active = true;
    self->member_seen = roster_role(self->roster, identity_ed_pk(self->core->id)) != 0;
    uint8_t(*gone)[32] = NULL, (*added)[32] = NULL;
    size_t n_gone = 0, n_added = 0;
    self->n_members = 0; // nobody is "gone" at start
    rc = s_rebuild(self, &gone, &n_gone, &added, &n_added);
    free(gone);
    free(added);
    self->replica_net = false;
    s_replicate(self);
    return rc;
}

//  Before any answer: a rolled-back iteration may have left events in the
//  roster that are not in the log.
static void
s_fresh_state(network_t *self)
{
    if (self->stale) {
        int rc = s_load(self);
        if (rc != PARLEY_OK) {
            log_write(&self->core->log, LOG_LEVEL_ERROR, "cannot read the roster: %s",
                      parley_strerror(rc));
        }
    }
}

static void s_join_end(network_t *self);

network_t *
network_new(core_t *core, links_t *links, replica_t *replica, network_changed_fn *fn, void *arg,
            int *err)
{
    network_t *self = calloc(1, sizeof *self);
    if (!self) {
        *err = PARLEY_ERR_NOMEM;
        return NULL;
    }
    self->core = core;
    self->links = links;
    self->replica = replica;
    self->changed = fn;
    self->arg = arg;
    *err = s_load(self);
    if (*err != PARLEY_OK) {
        network_destroy(&self);
        return NULL;
    }
    self->quiet = network_quiet(self); // discovery starts so (node.c)
    return self;
}

void
network_destroy(network_t **self_p)
{
    network_t *self = *self_p;
    if (!self) {
        return;
    }
    roster_destroy(&self->roster);
    free(self->members);
    free(self->member_x);
    free(self->invite_x);
    free(self->fresh);
    free(self->counts);
    sodium_memzero(self->keys, sizeof self->keys);
    s_join_end(self);
    free(self->replies);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------- questions */

bool
network_active(const network_t *self)
{
    return self && self->active;
}

const roster_t *
network_roster(network_t *self)
{
    if (!network_active(self)) {
        return NULL;
    }
    s_fresh_state(self);
    return self->roster;
}

const uint8_t *
network_id(const network_t *self)
{
    return network_active(self) ? self->id : NULL;
}

bool
network_allows(const network_t *self, const uint8_t pk[32])
{
    if (!self || s_permissive(self) || s_self(self, pk)) {
        return true;
    }
    return s_has((const uint8_t(*)[32])self->members, self->n_members, pk);
}

bool
network_admits_x(network_t *self, const uint8_t x_pk[32], bool *invite)
{
    *invite = false;
    if (!self || s_permissive(self)) {
        return true;
    }
    s_fresh_state(self);
    if (s_has((const uint8_t(*)[32])self->member_x, self->n_member_x, x_pk)) {
        return true;
    }
    //  Any invite the roster holds, live or not: that connection runs only
    //  the join exchange, whose answer says why a dead invite is refused
    //  (revoked, used up, expired) instead of a silent handshake failure.
    for (size_t i = 0; i < self->n_invite_x; i++) {
        if (sodium_memcmp(self->invite_x[i].x, x_pk, 32) == 0) {
            *invite = true;
            return true;
        }
    }
    return false;
}

bool
network_relay_ok(const network_t *self, const uint8_t pk[32])
{
    return !network_active(self) || roster_is_relay(self->roster, pk);
}

size_t
network_keys(const network_t *self, uint8_t out[][32], size_t cap)
{
    size_t n = network_active(self) ? self->n_keys : 0;
    n = n < cap ? n : cap;
    for (size_t i = 0; i < n; i++) {
        memcpy(out[i], self->keys[i].secret, 32);
    }
    return n;
}

bool
network_quiet(const network_t *self)
{
    bool joining = self && self->join && self->join->state != S_JOIN_FAILED;
    return joining || (network_active(self) && self->n_keys == 0);
}

/* ---------------------------------------------------------- ingest */

int
network_accepts(network_t *self, const envelope_t *env)
{
    s_fresh_state(self);
    if (env->kind != ENVELOPE_KIND_NET) {
        return network_allows(self, env->author) ? PARLEY_OK : PARLEY_ERR_AUTH;
    }
    if (!network_active(self) || sodium_memcmp(env->scope, self->id, 32) != 0) {
        return PARLEY_ERR_NOTFOUND;
    }
    roster_event_t ev;
    int rc = roster_event_decode(env->body, env->body_len, &ev);
    if (rc != PARLEY_OK) {
        return rc;
    }
    if (roster_event_count(self->roster) >= ROSTER_EVENTS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    //  Everyone shares ROSTER_EVENTS_MAX: a key that never was an admin may
    //  hold only NETWORK_EVENTS_PER_MEMBER of them, or one hostile member
    //  could fill the roster and shut the admins out. (A member's own valid
    //  events are its JOIN and its leave.) One that was an admin is not
    //  capped: its acts count, and a node that heard of its demotion first
    //  must still take them all, or the folds would differ.
    const s_count_t *held = s_count(self, env->author, false);
    if (held && held->n >= NETWORK_EVENTS_PER_MEMBER
        && !roster_was_admin(self->roster, env->author)) {
        return PARLEY_ERR_LIMIT;
    }
    if (s_permissive(self)) {
        return PARLEY_OK; // still syncing the roster we joined: see the file comment
    }
    //  Events of keys the roster knows: current members, and removed ones
    //  (an admin's actions concurrent with its removal must reach everyone
    //  for the fold to agree). A stranger's events are only a JOIN that
    //  proves an invite's secret.
    if (roster_role(self->roster, env->author) != ROSTER_ROLE_NONE
        || roster_is_removed(self->roster, env->author)) {
        return PARLEY_OK;
    }
    if (ev.type == ROSTER_JOIN
        && roster_join_proof_verify(ev.key, self->id, env->author, ev.text, ev.text_len, ev.proof)
               == PARLEY_OK) {
        return PARLEY_OK;
    }
    return PARLEY_ERR_AUTH;
}

void
network_stored(network_t *self, const envelope_t *env, const uint8_t id[32])
{
    if (!network_active(self) || env->kind != ENVELOPE_KIND_NET) {
        return;
    }
    int rc = roster_add_event(self->roster, id, env->author, env->ts_ms, env->body, env->body_len);
    s_count_t *c = rc == PARLEY_OK ? s_count(self, env->author, true) : NULL;
    if (c) {
        c->n++;
    }
    if (rc == PARLEY_ERR_NOMEM) {
        core_txn_fail(self->core, rc, "cannot hold a network event");
        return;
    }
    if (rc != PARLEY_OK) {
        return; // held already (DUPLICATE), or refused as network_accepts would have
    }
    self->dirty = true;
    if (self->n_fresh == self->cap_fresh) {
        size_t cap = self->cap_fresh ? self->cap_fresh * 2 : 64;
        uint8_t(*grown)[32] = realloc(self->fresh, cap * 32);
        if (!grown) {
            return; // its notification is lost; the event is not
        }
        self->fresh = grown;
        self->cap_fresh = cap;
    }
    memcpy(self->fresh[self->n_fresh++], id, 32);
}

void
network_settle(network_t *self)
{
    if (!network_active(self) || !self->dirty) {
        return;
    }
    self->dirty = false;
    int rc = roster_fold(self->roster);
    if (rc != PARLEY_OK) {
        core_txn_fail(self->core, rc, "cannot fold the roster");
        return;
    }
    s_after_fold(self);
}

void
network_rollback(network_t *self)
{
    if (self) {
        self->stale = true;
        self->n_replies = 0; // answers of an iteration that did not happen
        self->key_news = false;
        if (self->join && self->join->state == S_JOIN_PROVING && self->join->env_due) {
            self->join->env_due = false; // our JOIN is not stored: answer the next HEADS
            self->join->state = S_JOIN_DIALLING;
        }
    }
}

/* ---------------------------------------------------------- authoring */

//  Authors ev as our next network event (parents: the heads), stores it,
//  folds, and queues its push to every member. *id_out its id.
static int
s_author(network_t *self, const roster_event_t *ev, uint8_t id_out[32])
{
    core_t *core = self->core;
    uint8_t body[ROSTER_BODY_MAX];
    size_t body_len = 0;
    int rc = roster_event_build(self->roster, identity_ed_pk(core->id), ev, body, sizeof body,
                                &body_len);
    if (rc != PARLEY_OK) {
        return rc;
    }
    envelope_t env;
    memset(&env, 0, sizeof env);
    env.version = PARLEY_ENVELOPE_VERSION;
    env.kind = ENVELOPE_KIND_NET;
    memcpy(env.author, identity_ed_pk(core->id), 32);
    memcpy(env.scope, self->id, 32);
    rc = store_seq_next(core->store, env.author, env.scope, &env.seq);
    if (rc != PARLEY_OK) {
        return rc;
    }
    env.ts_ms = core_now(core);
    env.body = body;
    env.body_len = body_len;
    size_t len = 0;
    rc = envelope_seal(&env, identity_ed_sk(core->id), self->buf, sizeof self->buf, &len);
    if (rc == PARLEY_OK) {
        rc = envelope_sealed_view(&env, self->buf, len);
    }
    if (rc == PARLEY_OK) {
        envelope_id(&env, id_out);
        rc = store_envelope_put(core->store, &env, id_out, env.ts_ms);
    }
    if (rc != PARLEY_OK) {
        return rc;
    }
    network_stored(self, &env, id_out);
    replica_stored(self->replica, NULL, &env, id_out);
    network_settle(self);
    return core->txn_failed ? core->txn_rc : PARLEY_OK;
}

//  The log entry of event id after the last fold: applied, or why not.
static bool
s_applied(const network_t *self, const uint8_t id[32], const char **why)
{
    size_t n = roster_log_count(self->roster);
    for (size_t i = n; i-- > 0;) {
        roster_log_entry_t e;
        if (roster_log_at(self->roster, i, &e) == PARLEY_OK && memcmp(e.id, id, 32) == 0) {
            *why = e.reason;
            return e.applied;
        }
    }
    *why = "the event is not part of the roster yet (its parents are missing)";
    return false;
}

static int
s_need_admin(network_t *self, const char **why)
{
    s_fresh_state(self);
    if (!network_active(self)) {
        *why = "this node is in no network (parley network create NAME, or parley join CODE)";
        return PARLEY_ERR_STATE;
    }
    if (roster_role(self->roster, identity_ed_pk(self->core->id)) != ROSTER_ROLE_ADMIN) {
        *why = "only an admin of the network can do that";
        return PARLEY_ERR_STATE;
    }
    return PARLEY_OK;
}

static bool
s_text_ok(const char *s, size_t max)
{
    return s && strlen(s) <= max;
}

int
network_create(network_t *self, const char *name, const char *my_name, json_t **out,
               const char **why)
{
    *out = NULL;
    s_fresh_state(self);
    if (network_active(self)) {
        *why = "this node is in a network already (parley network leave first)";
        return PARLEY_ERR_STATE;
    }
    my_name = my_name ? my_name : "";
    if (!name || !name[0] || !s_text_ok(name, ROSTER_NAME_MAX)
        || !s_text_ok(my_name, ROSTER_NAME_MAX)) {
        *why = "a network name is 1 to 64 bytes, and a member name at most 64";
        return PARLEY_ERR_LIMIT;
    }
    roster_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ROSTER_CREATE;
    randombytes_buf(ev.salt, sizeof ev.salt);
    ev.text = (const uint8_t *)name;
    ev.text_len = strlen(name);
    ev.text2 = (const uint8_t *)my_name;
    ev.text2_len = strlen(my_name);
    uint8_t probe[ROSTER_BODY_MAX];
    size_t plen = 0;
    int rc = roster_event_encode(&ev, probe, sizeof probe, &plen); // names checked before any write
    if (rc != PARLEY_OK) {
        *why = "a name must be UTF-8 text without control characters";
        return rc;
    }
    uint8_t id[32];
    roster_network_id(identity_ed_pk(self->core->id), ev.salt, id);
    store_network_t row = { .state = STORE_NET_MEMBER, .since_ms = core_now(self->core) };
    memcpy(row.id, id, 32);
    rc = store_network_set(self->core->store, &row);
    if (rc != PARLEY_OK) {
        *why = "cannot record the network";
        return rc;
    }
    memcpy(self->id, id, 32);
    roster_destroy(&self->roster);
    self->roster = roster_new(id);
    if (!self->roster) {
        return PARLEY_ERR_NOMEM;
    }
    self->active = true;
    self->member_seen = false;
    self->n_members = 0;
    self->replica_net = false;
    s_replicate(self);
    uint8_t eid[32];
    rc = s_author(self, &ev, eid);
    if (rc != PARLEY_OK) {
        *why = "cannot write the network's first event";
        return rc;
    }
    *out = network_show(self);
    return PARLEY_OK;
}

int
network_leave(network_t *self, json_t **out, const char **why)
{
    *out = NULL;
    s_fresh_state(self);
    if (!network_active(self)) {
        *why = "this node is in no network";
        return PARLEY_ERR_STATE;
    }
    roster_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ROSTER_REMOVE;
    memcpy(ev.key, identity_ed_pk(self->core->id), 32);
    uint8_t id[32], nid[32];
    memcpy(nid, self->id, 32);
    int rc = s_author(self, &ev, id);
    if (rc != PARLEY_OK) {
        *why = "cannot write the leave event";
        return rc;
    }
    if (network_active(self)) {
        //  Not a member in our own fold (still syncing): we leave all the same.
        store_network_t row = { .state = STORE_NET_LEFT, .since_ms = core_now(self->core) };
        memcpy(row.id, self->id, 32);
        rc = store_network_set(self->core->store, &row);
        if (rc != PARLEY_OK) {
            *why = "cannot record leaving";
            return rc;
        }
        self->active = false;
    }
    *out = json_pack("{s:b, s:o}", "left", 1, "id", core_json_id(nid));
    return PARLEY_OK;
}

//  Checks an admin action on target (a current member; seniority as the fold has it).
static int
s_check_target(network_t *self, const uint8_t pk[32], bool self_ok, const char **why)
{
    if (roster_role(self->roster, pk) == ROSTER_ROLE_NONE) {
        *why = "that key is not a member of the network";
        return PARLEY_ERR_NOTFOUND;
    }
    if (s_self(self, pk)) {
        if (self_ok) {
            return PARLEY_OK;
        }
        *why = "not on yourself";
        return PARLEY_ERR_STATE;
    }
    uint32_t mine = roster_rank(self->roster, identity_ed_pk(self->core->id));
    uint32_t theirs = roster_rank(self->roster, pk);
    if (theirs != ROSTER_RANK_NONE && theirs <= mine) {
        *why = "an admin can act only on members and on admins junior to it";
        return PARLEY_ERR_STATE;
    }
    return PARLEY_OK;
}

static int
s_admin_act(network_t *self, roster_event_t *ev, const char **why)
{
    uint8_t id[32];
    int rc = s_author(self, ev, id);
    if (rc != PARLEY_OK) {
        *why = "cannot write the event";
        return rc;
    }
    const char *reason = NULL;
    if (!s_applied(self, id, &reason)) {
        *why = reason ? reason : "the roster did not apply it";
        return PARLEY_ERR_STATE;
    }
    return PARLEY_OK;
}

int
network_remove(network_t *self, const uint8_t pk[32], const char *reason, json_t **out,
               const char **why)
{
    *out = NULL;
    int rc = s_need_admin(self, why);
    if (rc == PARLEY_OK) {
        rc = s_check_target(self, pk, false, why);
    }
    reason = reason ? reason : "";
    if (rc == PARLEY_OK && !s_text_ok(reason, ROSTER_REASON_MAX)) {
        *why = "a reason is at most 200 bytes";
        rc = PARLEY_ERR_LIMIT;
    }
    if (rc != PARLEY_OK) {
        return rc;
    }
    roster_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ROSTER_REMOVE;
    memcpy(ev.key, pk, 32);
    ev.text = (const uint8_t *)reason;
    ev.text_len = strlen(reason);
    rc = s_admin_act(self, &ev, why);
    if (rc == PARLEY_OK) {
        *out = json_pack("{s:o, s:b}", "id", core_json_id(pk), "removed", 1);
    }
    return rc;
}

int
network_set_role(network_t *self, const uint8_t pk[32], uint8_t role, json_t **out,
                 const char **why)
{
    *out = NULL;
    int rc = s_need_admin(self, why);
    if (rc == PARLEY_OK) {
        rc = s_check_target(self, pk, false, why);
    }
    if (rc == PARLEY_OK && roster_role(self->roster, pk) == role) {
        *why = "it has that role already";
        rc = PARLEY_ERR_EXISTS;
    }
    if (rc != PARLEY_OK) {
        return rc;
    }
    roster_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ROSTER_ROLE;
    memcpy(ev.key, pk, 32);
    ev.role = role;
    rc = s_admin_act(self, &ev, why);
    if (rc == PARLEY_OK) {
        *out = json_pack("{s:o, s:s}", "id", core_json_id(pk), "role",
                         role == ROSTER_ROLE_ADMIN ? "admin" : "member");
    }
    return rc;
}

int
network_set_relay(network_t *self, const uint8_t pk[32], bool on, json_t **out, const char **why)
{
    *out = NULL;
    int rc = s_need_admin(self, why);
    if (rc == PARLEY_OK && roster_role(self->roster, pk) == ROSTER_ROLE_NONE) {
        *why = "that key is not a member of the network";
        rc = PARLEY_ERR_NOTFOUND;
    }
    if (rc == PARLEY_OK && roster_is_relay(self->roster, pk) == on) {
        *why = on ? "it is a relay already" : "it is not a relay";
        rc = PARLEY_ERR_EXISTS;
    }
    if (rc != PARLEY_OK) {
        return rc;
    }
    roster_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ROSTER_RELAY;
    memcpy(ev.key, pk, 32);
    ev.on = on ? 1 : 0;
    rc = s_admin_act(self, &ev, why);
    if (rc == PARLEY_OK) {
        *out = json_pack("{s:o, s:b}", "id", core_json_id(pk), "relay", on);
    }
    return rc;
}

/* ---------------------------------------------------------- invites */

//  Parses "tcp://a.b.c.d:port" style endpoints of ours: a wildcard host is
//  replaced by each IPv4 address of an interface that is up (loopback last,
//  and only when there is no other).
static size_t
s_our_endpoints(const network_t *self, invite_endpoint_t *out, size_t cap)
{
    const char *ep = self->core->endpoint;
    const char *colon = strrchr(ep, ':');
    if (!colon || cap == 0) {
        return 0;
    }
    size_t n = 0;
    if (strncmp(ep, "tcp://0.0.0.0:", 14) != 0) {
        if (endpoint_valid(ep, strlen(ep))) {
            snprintf(out[0].endpoint, sizeof out[0].endpoint, "%s", ep);
            memcpy(out[0].pk, identity_ed_pk(self->core->id), 32);
            n = 1;
        }
        return n;
    }
    struct ifaddrs *ifs = NULL;
    if (getifaddrs(&ifs) != 0) {
        return 0;
    }
    char lo[PARLEY_ENDPOINT_MAX + 1] = "";
    for (struct ifaddrs *i = ifs; i && n < cap; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP)) {
            continue;
        }
        char host[INET_ADDRSTRLEN];
        const struct sockaddr_in *sin = (const struct sockaddr_in *)i->ifa_addr;
        if (!inet_ntop(AF_INET, &sin->sin_addr, host, sizeof host)) {
            continue;
        }
        char buf[PARLEY_ENDPOINT_MAX + 1];
        snprintf(buf, sizeof buf, "tcp://%s%s", host, colon);
        if (!endpoint_valid(buf, strlen(buf))) {
            continue;
        }
        if (i->ifa_flags & IFF_LOOPBACK) {
            snprintf(lo, sizeof lo, "%s", buf);
            continue;
        }
        snprintf(out[n].endpoint, sizeof out[n].endpoint, "%s", buf);
        memcpy(out[n].pk, identity_ed_pk(self->core->id), 32);
        n++;
    }
    freeifaddrs(ifs);
    if (n == 0 && lo[0]) {
        snprintf(out[0].endpoint, sizeof out[0].endpoint, "%s", lo);
        memcpy(out[0].pk, identity_ed_pk(self->core->id), 32);
        n = 1;
    }
    return n;
}

int
network_invite(network_t *self, const char *label, uint8_t role, uint64_t ttl_ms, uint16_t uses,
               json_t **out, const char **why)
{
    *out = NULL;
    int rc = s_need_admin(self, why);
    if (rc != PARLEY_OK) {
        return rc;
    }
    label = label ? label : "";
    if (!s_text_ok(label, ROSTER_NAME_MAX) || uses < 1 || uses > ROSTER_INVITE_USES_MAX
        || (role != ROSTER_ROLE_MEMBER && role != ROSTER_ROLE_ADMIN) || ttl_ms == 0) {
        *why = "a label is at most 64 bytes, uses 1 to 1000, a role member or admin, and the"
               " expiry in the future";
        return PARLEY_ERR_LIMIT;
    }
    invite_code_t code;
    memset(&code, 0, sizeof code);
    memcpy(code.network_id, self->id, 32);
    invite_secret_new(code.secret);
    uint64_t now = core_now(self->core);
    code.expires_ms = ttl_ms > UINT64_MAX - now ? UINT64_MAX : now + ttl_ms;
    memcpy(code.inviter_pk, identity_ed_pk(self->core->id), 32);
    //  Where to reach the network: us (our own addresses), then up to the
    //  rest of INVITE_ENDPOINTS_MAX members online now (the endpoint we dial,
    //  or the one a member that dialled us advertised), so the inviter may be
    //  offline when the code is used.
    code.n = s_our_endpoints(self, code.endpoints, INVITE_ENDPOINTS_MAX - 1);
    for (size_t i = 0; i < links_count(self->links) && code.n < INVITE_ENDPOINTS_MAX; i++) {
        link_t *l = links_at(self->links, i);
        const char *ep = link_dealer_up(l) ? link_endpoint(l) : link_advertised(l);
        if (link_online(l) && ep && ep[0]
            && roster_role(self->roster, link_pk(l)) != ROSTER_ROLE_NONE
            && endpoint_valid(ep, strlen(ep))) {
            snprintf(code.endpoints[code.n].endpoint, sizeof code.endpoints[code.n].endpoint, "%s",
                     ep);
            memcpy(code.endpoints[code.n].pk, link_pk(l), 32);
            code.n++;
        }
    }
    if (code.n == 0) {
        sodium_memzero(&code, sizeof code);
        *why = "this node has no address a joiner could dial (listen on tcp://ADDR:PORT)";
        return PARLEY_ERR_STATE;
    }
    uint8_t ed_pk[32], ed_sk[64], x_pk[32], x_sk[32];
    rc = invite_keys(code.secret, ed_pk, ed_sk, x_pk, x_sk);
    sodium_memzero(ed_sk, sizeof ed_sk);
    sodium_memzero(x_sk, sizeof x_sk);
    char text[INVITE_CODE_MAX + 1];
    size_t tlen = 0;
    if (rc == PARLEY_OK) {
        rc = invite_code_encode(&code, text, sizeof text, &tlen);
    }
    if (rc != PARLEY_OK) {
        sodium_memzero(&code, sizeof code);
        *why = "cannot make the invite code";
        return rc;
    }
    roster_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ROSTER_INVITE;
    memcpy(ev.key, ed_pk, 32);
    ev.role = role;
    ev.expires_ms = code.expires_ms;
    ev.uses = uses;
    ev.text = (const uint8_t *)label;
    ev.text_len = strlen(label);
    rc = s_admin_act(self, &ev, why);
    if (rc == PARLEY_OK) {
        json_t *eps = json_array();
        for (size_t i = 0; i < code.n; i++) {
            json_array_append_new(eps, json_string(code.endpoints[i].endpoint));
        }
        char sid[PARLEY_SHORT_ID_STRLEN + 1];
        identity_short_id(ed_pk, sid);
        *out = json_pack("{s:s%, s:s, s:s, s:s, s:I, s:i, s:o}", "code", text, tlen, "invite_id",
                         sid, "role", role == ROSTER_ROLE_ADMIN ? "admin" : "member", "label",
                         label, "expires_ms", (json_int_t)code.expires_ms, "uses", (int)uses,
                         "endpoints", eps);
    }
    sodium_memzero(text, sizeof text);
    sodium_memzero(&code, sizeof code);
    return rc;
}

//  The fields of event id that the log shows (never message content: a
//  roster event holds none), read back from the log.
static json_t *
s_detail_json(network_t *self, const uint8_t id[32])
{
    uint8_t *bytes = NULL;
    size_t len = 0;
    envelope_t env;
    roster_event_t ev;
    json_t *d = json_object();
    if (store_envelope_get(self->core->store, id, &bytes, &len) != PARLEY_OK) {
        return d;
    }
    if (envelope_decode(bytes, len, &env) == PARLEY_OK
        && roster_event_decode(env.body, env.body_len, &ev) == PARLEY_OK) {
        const char *role = ev.role == ROSTER_ROLE_ADMIN ? "admin" : "member";
        switch (ev.type) {
        case ROSTER_CREATE:
            json_object_set_new(d, "name", json_stringn((const char *)ev.text, ev.text_len));
            break;
        case ROSTER_INVITE:
            json_object_set_new(d, "role", json_string(role));
            json_object_set_new(d, "expires_ms", json_integer((json_int_t)ev.expires_ms));
            json_object_set_new(d, "uses", json_integer(ev.uses));
            json_object_set_new(d, "label", json_stringn((const char *)ev.text, ev.text_len));
            break;
        case ROSTER_JOIN:
            json_object_set_new(d, "invite", core_json_short_id(ev.key));
            json_object_set_new(d, "name", json_stringn((const char *)ev.text, ev.text_len));
            break;
        case ROSTER_ADD:
            json_object_set_new(d, "role", json_string(role));
            json_object_set_new(d, "name", json_stringn((const char *)ev.text, ev.text_len));
            break;
        case ROSTER_REMOVE:
            json_object_set_new(d, "reason", json_stringn((const char *)ev.text, ev.text_len));
            break;
        case ROSTER_ROLE: json_object_set_new(d, "role", json_string(role)); break;
        case ROSTER_RELAY: json_object_set_new(d, "on", json_boolean(ev.on)); break;
        default: break;
        }
    }
    free(bytes);
    return d;
}

//  The label of invite pk, from its INVITE event.
static json_t *
s_invite_label(network_t *self, const uint8_t pk[32])
{
    for (size_t k = 0; k < roster_log_count(self->roster); k++) {
        roster_log_entry_t e;
        if (roster_log_at(self->roster, k, &e) == PARLEY_OK && e.type == ROSTER_INVITE && e.applied
            && memcmp(e.target, pk, 32) == 0) {
            json_t *d = s_detail_json(self, e.id);
            json_t *l = json_incref(json_object_get(d, "label"));
            json_decref(d);
            return l ? l : json_string("");
        }
    }
    return json_string("");
}

json_t *
network_invites(network_t *self)
{
    s_fresh_state(self);
    json_t *arr = json_array();
    size_t n = network_active(self) ? roster_invite_count(self->roster) : 0;
    uint64_t now = core_now(self->core);
    for (size_t i = 0; i < n; i++) {
        roster_invite_t v;
        if (roster_invite_at(self->roster, i, &v) != PARLEY_OK) {
            continue;
        }
        char sid[PARLEY_SHORT_ID_STRLEN + 1];
        identity_short_id(v.invite_pk, sid);
        json_array_append_new(
            arr,
            json_pack("{s:s, s:o, s:o, s:o, s:s, s:I, s:i, s:i, s:b, s:b}", "invite_id", sid,
                      "label", s_invite_label(self, v.invite_pk), "author", core_json_id(v.author),
                      "author_short", core_json_short_id(v.author), "role",
                      v.role == ROSTER_ROLE_ADMIN ? "admin" : "member", "expires_ms",
                      (json_int_t)v.expires_ms, "uses", (int)v.uses, "used", (int)v.used, "revoked",
                      v.revoked, "live", roster_invite_live(self->roster, v.invite_pk, now)));
    }
    return arr;
}

int
network_revoke(network_t *self, const char *arg, json_t **out, const char **why)
{
    *out = NULL;
    int rc = s_need_admin(self, why);
    if (rc != PARLEY_OK) {
        return rc;
    }
    uint8_t pk[32];
    bool found = false;
    invite_code_t code;
    invite_err_t err = INVITE_OK;
    if (strncasecmp(arg, "parley-invite:", 14) == 0) {
        rc = invite_code_decode(arg, strlen(arg), &code, &err);
        if (rc != PARLEY_OK) {
            *why = invite_strerror(err);
            return rc;
        }
        uint8_t ed_sk[64], x_pk[32], x_sk[32];
        rc = invite_keys(code.secret, pk, ed_sk, x_pk, x_sk);
        sodium_memzero(ed_sk, sizeof ed_sk);
        sodium_memzero(x_sk, sizeof x_sk);
        sodium_memzero(&code, sizeof code);
        found = rc == PARLEY_OK;
    } else {
        size_t alen = strlen(arg);
        size_t n = roster_invite_count(self->roster);
        for (size_t i = 0; i < n && alen >= 4 && alen <= PARLEY_NODE_ID_STRLEN; i++) {
            roster_invite_t v;
            char full[PARLEY_NODE_ID_STRLEN + 1];
            if (roster_invite_at(self->roster, i, &v) != PARLEY_OK) {
                continue;
            }
            identity_node_id(v.invite_pk, full);
            if (strncasecmp(full, arg, alen) == 0) {
                if (found) {
                    *why = "more than one invite starts with that: give more characters";
                    return PARLEY_ERR_AMBIGUOUS;
                }
                memcpy(pk, v.invite_pk, 32);
                found = true;
            }
        }
    }
    bool known = false;
    for (size_t i = 0; found && i < roster_invite_count(self->roster) && !known; i++) {
        roster_invite_t v;
        known = roster_invite_at(self->roster, i, &v) == PARLEY_OK
                && memcmp(v.invite_pk, pk, 32) == 0 && !v.revoked;
    }
    if (!known) {
        *why = "no such invite (or it is revoked already)";
        return PARLEY_ERR_NOTFOUND;
    }
    roster_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ROSTER_REVOKE;
    memcpy(ev.key, pk, 32);
    rc = s_admin_act(self, &ev, why);
    if (rc == PARLEY_OK) {
        char sid[PARLEY_SHORT_ID_STRLEN + 1];
        identity_short_id(pk, sid);
        *out = json_pack("{s:s, s:b}", "invite_id", sid, "revoked", 1);
    }
    return rc;
}

/* ---------------------------------------------------------- views */

static const char *
s_role_name(uint8_t role)
{
    return role == ROSTER_ROLE_ADMIN ? "admin" : role == ROSTER_ROLE_MEMBER ? "member" : "none";
}

json_t *
network_show(network_t *self)
{
    s_fresh_state(self);
    if (!network_active(self) && self->join) {
        const s_join_t *j = self->join;
        char nid[PARLEY_NODE_ID_STRLEN + 1];
        identity_node_id(j->code.network_id, nid);
        const char *state = j->state == S_JOIN_FAILED    ? "failed"
                            : j->state == S_JOIN_PROVING ? "proving"
                                                         : "dialling";
        return json_pack("{s:s, s:s, s:o, s:s, s:s}", "mode", "joining", "network_id", nid,
                         "inviter", core_json_id(j->code.inviter_pk), "state", state, "error",
                         j->error);
    }
    if (!network_active(self)) {
        return json_pack("{s:s}", "mode", "open");
    }
    const roster_t *r = self->roster;
    json_t *members = json_array(), *admins = json_array(), *relays = json_array();
    for (size_t i = 0; i < roster_member_count(r); i++) {
        roster_member_t m;
        if (roster_member_at(r, i, &m) != PARLEY_OK) {
            continue;
        }
        json_array_append_new(
            members,
            json_pack("{s:o, s:o, s:s%, s:s, s:o, s:b, s:o, s:o, s:I, s:b}", "id",
                      core_json_id(m.pk), "short_id", core_json_short_id(m.pk), "name",
                      (const char *)m.name, m.name_len, "role", s_role_name(m.role), "rank",
                      m.rank == ROSTER_RANK_NONE ? json_null() : json_integer(m.rank), "relay",
                      m.relay, "added_by", core_json_id(m.added_by), "added_by_short",
                      core_json_short_id(m.added_by), "added_ms", (json_int_t)m.added_ts,
                      "via_invite", m.via_invite));
    }
    for (size_t i = 0; i < roster_admin_count(r); i++) {
        json_array_append_new(admins, core_json_id(roster_admin_at(r, i)));
    }
    for (size_t i = 0; i < roster_relay_count(r); i++) {
        json_array_append_new(relays, core_json_id(roster_relay_at(r, i)));
    }
    size_t name_len = 0;
    const uint8_t *name = roster_name(r, &name_len);
    char nid[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(self->id, nid); // the same base32 text as a node id
    const uint8_t *founder = roster_founder(r);
    return json_pack(
        "{s:s, s:s, s:s%, s:o, s:o, s:s, s:I, s:I, s:I, s:o, s:o, s:o}", "mode", "network", "id",
        nid, "name", name ? (const char *)name : "", name_len, "founder", s_key_json(founder),
        "founder_short", founder ? core_json_short_id(founder) : json_null(), "role",
        s_role_name(roster_role(r, identity_ed_pk(self->core->id))), "epoch",
        (json_int_t)(self->n_keys ? self->keys[0].epoch : 0), "events",
        (json_int_t)roster_event_count(r), "pending", (json_int_t)roster_pending_count(r),
        "members", members, "admins", admins, "relays", relays);
}

json_t *
network_log(network_t *self, size_t limit)
{
    s_fresh_state(self);
    json_t *arr = json_array();
    if (!network_active(self)) {
        return arr;
    }
    size_t n = roster_log_count(self->roster);
    size_t from = limit && n > limit ? n - limit : 0;
    for (size_t i = from; i < n; i++) {
        roster_log_entry_t e;
        if (roster_log_at(self->roster, i, &e) != PARLEY_OK) {
            continue;
        }
        char eid[65];
        if (hex_encode(e.id, 32, eid, sizeof eid) != PARLEY_OK) {
            continue;
        }
        json_array_append_new(
            arr,
            json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:b, s:s?, s:o}", "event_id",
                      eid, "type", s_type_name(e.type), "author", core_json_id(e.author),
                      "author_short", core_json_short_id(e.author), "author_name",
                      s_name_json(self, e.author), "target", core_json_id(e.target), "target_short",
                      core_json_short_id(e.target), "target_name", s_name_json(self, e.target),
                      "ts_ms", (json_int_t)e.ts_ms, "applied", e.applied, "reason", e.reason,
                      "detail", s_detail_json(self, e.id)));
    }
    return arr;
}

/* ---------------------------------------------------------- joining */

static void
s_join_close(s_join_t *j)
{
    for (size_t i = 0; i < NETWORK_JOIN_SOCKETS; i++) {
        if (j->sock[i]) {
            zmq_close(j->sock[i]);
            j->sock[i] = NULL;
        }
    }
}

//  Frees the joiner's state and wipes its secrets.
static void
s_join_end(network_t *self)
{
    if (self->join) {
        s_join_close(self->join);
        sodium_memzero(self->join, sizeof *self->join);
        free(self->join);
        self->join = NULL;
    }
}

//  Keeps the failure to show (what, then detail), drops the sockets and the
//  secrets.
static void
s_join_fail(network_t *self, const char *what, const char *detail)
{
    s_join_t *j = self->join;
    s_join_close(j);
    snprintf(j->error, sizeof j->error, "%s%s", what, detail);
    j->state = S_JOIN_FAILED;
    sodium_memzero(j->ed_sk, sizeof j->ed_sk);
    sodium_memzero(j->code.secret, sizeof j->code.secret);
    log_write(&self->core->log, LOG_LEVEL_WARN, "join failed: %s", j->error);
}

int
network_join(network_t *self, const char *text, const char *name, json_t **out, const char **why)
{
    *out = NULL;
    s_fresh_state(self);
    if (network_active(self)) {
        *why = "this node is in a network already (parley network leave first)";
        return PARLEY_ERR_STATE;
    }
    if (self->join && self->join->state != S_JOIN_FAILED) {
        *why = "this node is joining a network already";
        return PARLEY_ERR_STATE;
    }
    if (!self->ctx) {
        *why = "the node is not listening yet";
        return PARLEY_ERR_STATE;
    }
    name = name ? name : "";
    if (!s_text_ok(name, ROSTER_NAME_MAX)
        || !roster_text_valid((const uint8_t *)name, strlen(name))) {
        *why = "a name is at most 64 bytes of UTF-8 text without control characters";
        return PARLEY_ERR_LIMIT;
    }
    s_join_end(self);
    s_join_t *j = calloc(1, sizeof *j);
    if (!j) {
        return PARLEY_ERR_NOMEM;
    }
    self->join = j;
    invite_err_t err = INVITE_OK;
    int rc = invite_code_decode(text, strlen(text), &j->code, &err);
    if (rc == PARLEY_OK && invite_code_expired(&j->code, core_now(self->core))) {
        err = INVITE_ERR_EXPIRED;
        rc = PARLEY_ERR_EXPIRED;
    }
    uint8_t x_pk[32], x_sk[32];
    if (rc == PARLEY_OK) {
        rc = invite_keys(j->code.secret, j->ed_pk, j->ed_sk, x_pk, x_sk);
    }
    if (rc != PARLEY_OK) {
        *why = err != INVITE_OK ? invite_strerror(err) : "cannot derive the invite's keys";
        s_join_end(self);
        return rc;
    }
    snprintf(j->name, sizeof j->name, "%s", name);
    transport_opts_t opts;
    transport_opts_default(&opts);
    size_t open = 0;
    for (size_t i = 0; i < j->code.n && i < NETWORK_JOIN_SOCKETS; i++) {
        uint8_t server_x[32];
        if (identity_ed_to_x(j->code.endpoints[i].pk, server_x) == PARLEY_OK
            && transport_client_new(self->ctx, &opts, x_pk, x_sk, server_x,
                                    j->code.endpoints[i].endpoint, &j->sock[i])
                   == PARLEY_OK) {
            open++;
        }
    }
    sodium_memzero(x_sk, sizeof x_sk);
    if (open == 0) {
        *why = "cannot open a connection to any endpoint of the code";
        s_join_end(self);
        return PARLEY_ERR_IO;
    }
    uint64_t now = core_now(self->core);
    j->state = S_JOIN_DIALLING;
    j->deadline = now + NETWORK_JOIN_MS;
    j->next_ask = 0;
    char nid[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(j->code.network_id, nid);
    log_write(&self->core->log, LOG_LEVEL_INFO, "joining network %.8s: asking %zu endpoint(s)", nid,
              open);
    *out = json_pack("{s:s, s:s, s:o}", "state", "joining", "network_id", nid, "inviter",
                     core_json_id(j->code.inviter_pk));
    return PARLEY_OK;
}

void *
network_join_socket(const network_t *self, size_t i)
{
    return self->join && i < NETWORK_JOIN_SOCKETS ? self->join->sock[i] : NULL;
}

//  HEADS from socket i: our JOIN names them; stored now, sent after the commit.
static void
s_join_heads(network_t *self, size_t i, const frame_t *f)
{
    s_join_t *j = self->join;
    core_t *core = self->core;
    if (core_txn(core) != PARLEY_OK) {
        return; // the next HEADS (we ASK again) tries once more
    }
    roster_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ROSTER_JOIN;
    ev.n_parents = f->n_heads;
    ev.parents = f->heads;
    memcpy(ev.key, j->ed_pk, 32);
    ev.text = (const uint8_t *)j->name;
    ev.text_len = strlen(j->name);
    int rc = roster_join_proof_sign(j->ed_sk, j->code.network_id, identity_ed_pk(core->id), ev.text,
                                    ev.text_len, ev.proof);
    uint8_t body[ROSTER_BODY_MAX];
    size_t body_len = 0;
    if (rc == PARLEY_OK) {
        rc = roster_event_encode(&ev, body, sizeof body, &body_len);
    }
    envelope_t env;
    memset(&env, 0, sizeof env);
    env.version = PARLEY_ENVELOPE_VERSION;
    env.kind = ENVELOPE_KIND_NET;
    memcpy(env.author, identity_ed_pk(core->id), 32);
    memcpy(env.scope, j->code.network_id, 32);
    if (rc == PARLEY_OK) {
        rc = store_seq_next(core->store, env.author, env.scope, &env.seq);
    }
    env.ts_ms = core_now(core);
    env.body = body;
    env.body_len = body_len;
    if (rc == PARLEY_OK) {
        rc = envelope_seal(&env, identity_ed_sk(core->id), j->env, sizeof j->env, &j->env_len);
    }
    if (rc == PARLEY_OK) {
        rc = envelope_sealed_view(&env, j->env, j->env_len);
    }
    uint8_t id[32];
    if (rc == PARLEY_OK) {
        envelope_id(&env, id);
        rc = store_envelope_put(core->store, &env, id, env.ts_ms);
    }
    if (rc != PARLEY_OK) {
        core_txn_fail(core, rc, "cannot write our JOIN");
        return;
    }
    j->chosen = i;
    j->env_due = true;
    j->state = S_JOIN_PROVING;
}

//  DONE: added (we are a member: the roster comes by reconciliation with
//  that member, whom we now dial with our own key) or refused.
static void
s_join_done(network_t *self, const frame_t *f)
{
    s_join_t *j = self->join;
    core_t *core = self->core;
    if (f->status != FRAME_JOIN_ADDED) {
        char reason[ROSTER_REASON_MAX + 1];
        snprintf(reason, sizeof reason, "%.*s", (int)f->why_len, f->why);
        s_join_fail(self, "the member refused the join: ", reason[0] ? reason : "no reason given");
        return;
    }
    store_network_t row = { .state = STORE_NET_MEMBER, .since_ms = core_now(core) };
    memcpy(row.id, j->code.network_id, 32);
    int rc = core_txn(core);
    if (rc == PARLEY_OK) {
        rc = store_network_set(core->store, &row);
    }
    if (rc == PARLEY_OK) {
        rc = s_load(self);
    }
    if (rc != PARLEY_OK) {
        core_txn_fail(core, rc, "cannot record the network we joined");
        return; // the member answers DONE again for the same JOIN: the next ASK gets it
    }
    const invite_endpoint_t *ep = &j->code.endpoints[j->chosen];
    bool created = false;
    link_t *link = links_get(self->links, ep->pk, &created);
    if (link) {
        link_set_source(link, "invite");
        link_set_kept(link, true);
        //  A connection from before (open mode) is one the member dropped
        //  when it founded or joined: a fresh one says HELLO again.
        link_undial(link);
        if (links_dial(self->links, link, ep->endpoint) != PARLEY_OK) {
            log_write(&core->log, LOG_LEVEL_WARN, "cannot dial %s", ep->endpoint);
        }
    }
    char nid[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(j->code.network_id, nid);
    log_write(&core->log, LOG_LEVEL_INFO, "joined network %.8s through %s", nid, ep->endpoint);
    s_join_end(self);
}

void
network_join_recv(network_t *self, size_t i)
{
    s_join_t *j = self->join;
    if (!j || i >= NETWORK_JOIN_SOCKETS || !j->sock[i]) {
        return;
    }
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, j->sock[i], ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return;
    }
    frame_t f;
    bool ok = !zmq_msg_more(&msg)
              && frame_decode(zmq_msg_data(&msg), zmq_msg_size(&msg), &f) == PARLEY_OK
              && f.type == FRAME_JOIN;
    if (!ok) {
        self->core->counters[C_BAD_FRAME]++;
    } else if (f.step == FRAME_JOIN_HEADS && j->state == S_JOIN_DIALLING) {
        s_join_heads(self, i, &f);
    } else if (f.step == FRAME_JOIN_DONE && j->state == S_JOIN_PROVING && i == j->chosen) {
        s_join_done(self, &f);
    } else if (f.step == FRAME_JOIN_DONE && j->state == S_JOIN_DIALLING
               && f.status == FRAME_JOIN_REFUSED) {
        s_join_done(self, &f); // refused at ASK: a dead invite, another network
    }
    zmq_msg_close(&msg);
}

static void
s_join_send(void *sock, const uint8_t *buf, size_t len)
{
    if (sock) {
        (void)zmq_send(sock, buf, len, ZMQ_DONTWAIT); // lost: the next ASK repairs it
    }
}

void
network_tick(network_t *self, uint64_t now)
{
    if (self && network_quiet(self) != self->quiet) {
        //  Joining, or a member without a secret yet, or out of either:
        //  discovery hushes or speaks again (a secret's arrival says so too).
        self->quiet = !self->quiet;
        network_change_t ch = { NULL, 0, NULL, 0, false, true };
        if (self->changed) {
            self->changed(self->arg, &ch);
        }
    }
    s_join_t *j = self ? self->join : NULL;
    if (!j || j->state == S_JOIN_FAILED) {
        return;
    }
    if (now >= j->deadline) {
        if (j->state == S_JOIN_PROVING) {
            s_join_fail(self, "a member answered but did not add us in time: ",
                        j->code.endpoints[j->chosen].endpoint);
        } else {
            s_join_fail(self,
                        "no member answered in time: none of the code's endpoints is reachable,"
                        " or no member there knows the invite (a forged code)",
                        "");
        }
        return;
    }
    core_wake_at(self->core, j->deadline);
    if (now < j->next_ask) {
        core_wake_at(self->core, j->next_ask);
        return;
    }
    j->next_ask =
        now + (j->state == S_JOIN_DIALLING ? NETWORK_JOIN_DIAL_ASK_MS : NETWORK_JOIN_ASK_MS);
    uint8_t buf[64];
    size_t len = 0;
    if (frame_encode_join_ask(j->code.network_id, buf, sizeof buf, &len) != PARLEY_OK) {
        return;
    }
    for (size_t i = 0; i < NETWORK_JOIN_SOCKETS; i++) {
        //  Proving: only the chosen member is asked again (a lost DONE: it
        //  answers our JOIN again when it holds it).
        if (j->state == S_JOIN_DIALLING || i == j->chosen) {
            s_join_send(j->sock[i], buf, len);
        }
    }
    if (j->state == S_JOIN_PROVING && !j->env_due) {
        j->env_due = true; // and our JOIN again, in case it was lost
    }
}

/* ---------------------------------------------------------- the member side */

void
network_set_router(network_t *self, void *ctx, void *router)
{
    self->ctx = ctx;
    self->router = router;
}

static void
s_reply(network_t *self, const uint8_t *rid, size_t rid_len, const uint8_t *frame, size_t len)
{
    if (!self->replies) {
        self->replies = calloc(S_REPLIES_MAX, sizeof *self->replies);
    }
    if (!self->replies || self->n_replies >= S_REPLIES_MAX || rid_len > LINK_ROUTE_MAX
        || len > S_REPLY_FRAME) {
        return; // the joiner asks again
    }
    s_reply_t *r = &self->replies[self->n_replies++];
    memcpy(r->rid, rid, rid_len);
    r->rid_len = rid_len;
    memcpy(r->frame, frame, len);
    r->len = len;
}

static void
s_reply_done(network_t *self, const uint8_t *rid, size_t rid_len, bool added, const char *why)
{
    uint8_t buf[S_REPLY_FRAME];
    size_t len = 0;
    why = added ? "" : why;
    size_t why_len = strlen(why) > ROSTER_REASON_MAX ? ROSTER_REASON_MAX : strlen(why);
    if (frame_encode_join_done(added ? FRAME_JOIN_ADDED : FRAME_JOIN_REFUSED, why, why_len, buf,
                               sizeof buf, &len)
        == PARLEY_OK) {
        s_reply(self, rid, rid_len, buf, len);
    }
}

//  The invite a live invite connection's CURVE key belongs to.
static bool
s_invite_of_x(const network_t *self, const uint8_t x_pk[32], uint8_t pk[32])
{
    for (size_t i = 0; i < self->n_invite_x; i++) {
        if (sodium_memcmp(self->invite_x[i].x, x_pk, 32) == 0) {
            memcpy(pk, self->invite_x[i].pk, 32);
            return true;
        }
    }
    return false;
}

//  A JOIN envelope on an invite connection: into the log and to every
//  member; DONE says whether the fold applied it.
static void
s_on_join_env(network_t *self, const uint8_t invite_pk[32], const uint8_t *rid, size_t rid_len,
              const uint8_t *buf, size_t len)
{
    core_t *core = self->core;
    envelope_t env;
    uint8_t id[32];
    roster_event_t ev;
    int rc = envelope_check(buf, len, core_now(core), &env, id);
    if (rc == PARLEY_OK && (env.kind != ENVELOPE_KIND_NET || env.seq == 0)) {
        rc = PARLEY_ERR_MALFORMED;
    }
    if (rc == PARLEY_OK) {
        rc = roster_event_decode(env.body, env.body_len, &ev);
    }
    if (rc == PARLEY_OK && (ev.type != ROSTER_JOIN || memcmp(ev.key, invite_pk, 32) != 0)) {
        rc = PARLEY_ERR_MALFORMED; // this connection may only join with its own invite
    }
    if (rc == PARLEY_OK) {
        rc = network_accepts(self, &env); // the proof, the scope, the roster's room
    }
    if (rc != PARLEY_OK) {
        core->counters[rc == PARLEY_ERR_AUTH ? C_BAD_SIGNATURE : C_MALFORMED]++;
        s_reply_done(self, rid, rid_len, false,
                     "the JOIN is not valid (a bad proof or a bad event)");
        return;
    }
    if (core_txn(core) != PARLEY_OK) {
        return;
    }
    if (!store_envelope_has(core->store, id)) {
        rc = store_envelope_put(core->store, &env, id, core_now(core));
        if (rc == PARLEY_ERR_EQUIVOCATION) {
            s_reply_done(self, rid, rid_len, false,
                         "that node already wrote a different event"
                         " with this sequence number");
            return;
        }
        if (rc != PARLEY_OK && rc != PARLEY_ERR_DUPLICATE) {
            core_txn_fail(core, rc, "cannot store a JOIN");
            return;
        }
        if (rc == PARLEY_OK) {
            network_stored(self, &env, id);
            replica_stored(self->replica, NULL, &env, id);
            network_settle(self);
        }
    }
    const char *why = NULL;
    bool added = s_applied(self, id, &why);
    char sid[PARLEY_SHORT_ID_STRLEN + 1];
    identity_short_id(env.author, sid);
    log_write(&core->log, LOG_LEVEL_INFO, "join of %s: %s", sid, added ? "added" : why);
    s_reply_done(self, rid, rid_len, added, why ? why : "refused");
}

//  Why invite pk admits nobody now, or NULL when it is live.
static const char *
s_invite_dead(const network_t *self, const uint8_t pk[32])
{
    for (size_t i = 0; i < roster_invite_count(self->roster); i++) {
        roster_invite_t v;
        if (roster_invite_at(self->roster, i, &v) != PARLEY_OK
            || memcmp(v.invite_pk, pk, 32) != 0) {
            continue;
        }
        if (v.revoked) {
            return "the invite was revoked by an admin";
        }
        if (v.used >= v.uses) {
            return v.uses == 1 ? "the invite has been used already" : "the invite is used up";
        }
        if (core_now(self->core) > v.expires_ms) {
            return "the invite has expired";
        }
        return NULL;
    }
    return "the invite is unknown to this member";
}

void
network_on_invite_frame(network_t *self, const uint8_t x_pk[32], const uint8_t *rid, size_t rid_len,
                        const frame_t *f)
{
    uint8_t invite_pk[32];
    s_fresh_state(self);
    if (!network_active(self) || !s_invite_of_x(self, x_pk, invite_pk)) {
        self->core->counters[C_NOT_MEMBER]++; // we left the network while it was connected
        return;
    }
    const char *dead = s_invite_dead(self, invite_pk);
    if (dead) {
        s_reply_done(self, rid, rid_len, false, dead);
        return;
    }
    if (f->type == FRAME_JOIN && f->step == FRAME_JOIN_ASK) {
        if (memcmp(f->network_id, self->id, 32) != 0) {
            s_reply_done(self, rid, rid_len, false, "this node is in another network");
            return;
        }
        uint8_t heads[ROSTER_PARENTS_MAX][32];
        size_t n = roster_heads(self->roster, heads);
        uint8_t buf[S_REPLY_FRAME];
        size_t len = 0;
        if (n > 0 && frame_encode_join_heads(&heads[0][0], n, buf, sizeof buf, &len) == PARLEY_OK) {
            s_reply(self, rid, rid_len, buf, len);
        }
    } else if (f->type == FRAME_ENVELOPES && f->n_envelopes == 1) {
        s_on_join_env(self, invite_pk, rid, rid_len, f->envelopes[0], f->envelope_lens[0]);
    } else {
        self->core->counters[C_BAD_FRAME]++; // nothing else runs on an invite's key
    }
}

void
network_after_commit(network_t *self)
{
    if (!self) {
        return;
    }
    for (size_t i = 0; i < self->n_replies && self->router; i++) {
        s_reply_t *r = &self->replies[i];
        if (zmq_send(self->router, r->rid, r->rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
            (void)zmq_send(self->router, r->frame, r->len, ZMQ_DONTWAIT); // lost: asked again
        }
    }
    self->n_replies = 0;
    if (self->key_news && network_active(self)) {
        //  A new newest secret (ours, or one that won): every member online.
        for (size_t i = 0; i < links_count(self->links); i++) {
            link_t *l = links_at(self->links, i);
            if (link_online(l) && network_allows(self, link_pk(l))) {
                s_send_key(self, l);
            }
        }
    }
    self->key_news = false;
    s_join_t *j = self->join;
    if (j && j->state == S_JOIN_PROVING && j->env_due) {
        j->env_due = false;
        uint8_t buf[PARLEY_ENVELOPE_MAX + 16];
        frame_batch_t b;
        frame_batch_begin(&b, buf, sizeof buf);
        if (frame_batch_add(&b, j->env, j->env_len) == PARLEY_OK) {
            size_t len = frame_batch_finish(&b);
            s_join_send(j->sock[j->chosen], buf, len);
        }
    }
}
