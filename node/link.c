/*  node/link.c — see link.h. */
#include "link.h"

#include "transport.h"
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_BAD_WINDOW_MS 60000u
#define S_BAD_MAX 512u /* weight of bad input per window before a ban */

static void s_close(link_t *self);

struct link {
    uint8_t pk[32];                /* peer's Ed25519 key (node id) */
    uint8_t x_pk[32];              /* its X25519 / CURVE key */
    char endpoint[256];            /* where we dial it, "" if we don't */
    void *dealer;                  /* our DEALER to it, or NULL */
    void *monitor;                 /* PAIR receiving the DEALER's socket events */
    bool dealer_up;                /* DEALER handshake succeeded and not disconnected */
    unsigned stir;                 /* LINK_STIR_*: sockets whose input the loop must look
                                      for although their ZMQ_FD did not signal */
    bool dealer_greeted;           /* our HELLO went out on its connection */
    uint8_t route[LINK_ROUTE_MAX]; /* routing id of its connection to our ROUTER */
    size_t route_len;              /* 0 when none */
    uint8_t hello[LINK_ROUTE_MAX]; /* routing id of the connection whose HELLO we accepted */
    size_t hello_len;              /* 0 when none */
    bool caps_known;               /* a HELLO (either direction) told us its capabilities */
    bool relay;                    /* its HELLO says it replicates every scope */
    bool relay_barred;             /* in a network, and not a designated relay */
    uint64_t connected_since;      /* ms; 0 while offline */
    uint64_t last_seen;            /* ms of the last frame received */
    uint64_t last_sent;            /* ms of the last frame sent */
    char source[16];         /* how we learnt of it: seed, local, mdns, stored, inbound, pex */
    char last_error[96];     /* why it is not connected, for `peers` */
    uint64_t bad_since;      /* ms: start of the window counting its bad input */
    unsigned bad;            /* weight of bad input in that window */
    uint64_t banned_until;   /* ms: frames dropped and connections refused until then */
    void *slots[LINK_SLOTS]; /* per-class state, owned by each class */
    bool verified;           /* we have really talked to it (link.h) */
    bool kept;               /* a contact or a seed: never evicted */
    char advertised[256];    /* the endpoint its HELLO gave, "" if none */
    uint64_t made_at;        /* ms: when the table made it */
    bool dial_wanted;        /* dial endpoint: now, or when there is room */
    uint64_t dial_at;        /* ms: not before then (back-off) */
    uint64_t dial_started;   /* ms: this DEALER started connecting; 0: at the next tick */
    unsigned dial_fails;     /* dials in a row that did not come up */
    bool dial_failed;        /* the monitor says this attempt failed (refused, bad key) */
    bool wanted;             /* the node's link policy keeps a DEALER to it (link.h) */
    uint64_t used_ms;        /* ms: envelopes last went either way, or a send was asked */
    uint64_t opened_ms;      /* ms: our DEALER to it was opened */
    link_t *next_gone;       /* removed, waiting for links_reap */
};

struct links {
    core_t *core;   /* borrowed */
    void *ctx;      /* the node's ZeroMQ context */
    void *router;   /* the node's ROUTER */
    link_t **links; /* in creation order */
    size_t n, cap;
    uint64_t monitor_seq;  /* names inproc monitor endpoints */
    links_made_fn *made;   /* told of every new link */
    links_gone_fn *gone;   /* told of every link that leaves */
    links_allow_fn *allow; /* whether a key may have a link at all (NULL: any) */
    void *made_arg;        /* for all three */
    link_t *gone_list;     /* removed links, freed by links_reap */
};

/* ---- the table ---- */

links_t *
links_new(core_t *core, void *ctx, links_made_fn *made, links_gone_fn *gone, void *arg)
{
    links_t *self = calloc(1, sizeof *self);
    if (self) {
        self->core = core;
        self->ctx = ctx;
        self->made = made;
        self->gone = gone;
        self->made_arg = arg;
    }
    return self;
}

static void
s_link_free(link_t *link)
{
    for (size_t i = 0; i < LINK_SLOTS; i++) {
        CORE_ASSERT(link->slots[i] == NULL); // its class frees it first
    }
    link_undial(link);
    free(link);
}

void
links_destroy(links_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    links_t *self = *self_p;
    links_reap(self);
    for (size_t i = 0; i < self->n; i++) {
        s_link_free(self->links[i]);
    }
    free(self->links);
    free(self);
    *self_p = NULL;
}

void
links_set_allow(links_t *self, links_allow_fn *allow)
{
    self->allow = allow;
}

void
links_set_router(links_t *self, void *router)
{
    self->router = router;
}

size_t
links_count(const links_t *self)
{
    return self->n;
}

link_t *
links_at(const links_t *self, size_t i)
{
    CORE_ASSERT(i < self->n);
    return self->links[i];
}

link_t *
links_find(const links_t *self, const uint8_t pk[32])
{
    for (size_t i = 0; i < self->n; i++) {
        if (sodium_memcmp(self->links[i]->pk, pk, 32) == 0) {
            return self->links[i];
        }
    }
    return NULL;
}

link_t *
links_find_x(const links_t *self, const uint8_t x_pk[32])
{
    for (size_t i = 0; i < self->n; i++) {
        if (sodium_memcmp(self->links[i]->x_pk, x_pk, 32) == 0) {
            return self->links[i];
        }
    }
    return NULL;
}

//  When it was last of use: its last frame, or its making.
static uint64_t
s_active(const link_t *link)
{
    return link->last_seen > link->made_at ? link->last_seen : link->made_at;
}

//  The link to evict for a new one, or NULL: never a kept one, nor a
//  verified one when only unverified ones may go or when it is online.
//  Unverified before verified, then idle longest. Online or not counts for
//  nothing among unverified ones: a flood that keeps its sockets open must
//  not make every record heard of (a dial in flight) evict the one before.
static link_t *
s_victim(const links_t *self, bool unverified_only)
{
    link_t *best = NULL;
    unsigned best_rank = 0;
    for (size_t i = 0; i < self->n; i++) {
        link_t *l = self->links[i];
        bool online = link_online(l);
        if (l->kept || (l->verified && (unverified_only || online))) {
            continue;
        }
        unsigned rank = l->verified ? 1u : 0u;
        if (!best || rank < best_rank || (rank == best_rank && s_active(l) < s_active(best))) {
            best = l;
            best_rank = rank;
        }
    }
    return best;
}

//  Room for one more (unverified) link, evicting one if need be.
static bool
s_make_room(links_t *self)
{
    bool unverified_full = links_unverified(self) >= LINK_UNVERIFIED_MAX;
    if (!unverified_full && self->n < LINK_TABLE_MAX) {
        return true;
    }
    link_t *victim = s_victim(self, unverified_full);
    if (!victim) {
        return false;
    }
    self->core->counters[C_PEER_EVICTED]++;
    char sid[PARLEY_SHORT_ID_STRLEN + 1];
    identity_short_id(victim->pk, sid);
    log_write(&self->core->log, LOG_LEVEL_DEBUG, "evicting %s (%s): the peer table is full", sid,
              victim->verified ? "verified, offline" : "unverified");
    links_remove(self, victim, "evicted: the peer table is full");
    return true;
}

size_t
links_unverified(const links_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n; i++) {
        n += !self->links[i]->verified;
    }
    return n;
}

size_t
links_dealers(const links_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n; i++) {
        n += self->links[i]->dealer != NULL;
    }
    return n;
}

size_t
links_dialling(const links_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->n; i++) {
        n += self->links[i]->dealer != NULL && !self->links[i]->dealer_up;
    }
    return n;
}

void
links_remove(links_t *self, link_t *link, const char *why)
{
    size_t i = 0;
    while (i < self->n && self->links[i] != link) {
        i++;
    }
    if (i == self->n) {
        return; // not in the table (removed already)
    }
    if (self->gone) {
        self->gone(self->made_arg, link, why);
    }
    link_undial(link);
    link->route_len = 0; // frames queued for it this iteration go nowhere
    link->dial_wanted = false;
    memmove(&self->links[i], &self->links[i + 1], (self->n - i - 1) * sizeof *self->links);
    self->n--;
    link->next_gone = self->gone_list;
    self->gone_list = link;
}

void
links_reap(links_t *self)
{
    while (self->gone_list) {
        link_t *link = self->gone_list;
        self->gone_list = link->next_gone;
        if (self->gone) {
            self->gone(self->made_arg, link, NULL);
        }
        s_link_free(link);
    }
}

link_t *
links_get(links_t *self, const uint8_t pk[32], bool *created)
{
    *created = false;
    link_t *link = links_find(self, pk);
    if (link) {
        return link;
    }
    if (self->allow && !self->allow(self->made_arg, pk)) {
        self->core->counters[C_NOT_MEMBER]++;
        return NULL;
    }
    if (!s_make_room(self)) {
        self->core->counters[C_PEER_REFUSED]++;
        return NULL;
    }
    if (self->n == self->cap) {
        size_t cap = self->cap ? 2 * self->cap : 16;
        link_t **grown = realloc(self->links, cap * sizeof *grown);
        if (!grown) {
            return NULL;
        }
        self->links = grown;
        self->cap = cap;
    }
    link = calloc(1, sizeof *link);
    if (!link) {
        return NULL;
    }
    memcpy(link->pk, pk, 32);
    if (identity_ed_to_x(pk, link->x_pk) != PARLEY_OK) {
        free(link);
        return NULL;
    }
    link->made_at = core_now(self->core);
    link->wanted = self->core->cfg.neighbours == 0; // else the node's policy decides
    self->links[self->n++] = link;
    *created = true;
    if (self->made) {
        self->made(self->made_arg, link);
    }
    return link;
}

/*  One frame on a DEALER, never blocking. zmq_send reads the socket's
 *  command mailbox at most once a millisecond or so (libzmq throttles it),
 *  so just after the monitor said a handshake succeeded the new pipe may
 *  not be attached yet and a DEALER with ZMQ_IMMEDIATE refuses with EAGAIN:
 *  a HELLO lost that way left the peer blind to us until a reconnect.
 *  Reading ZMQ_EVENTS processes the pending commands; then one retry. */
static bool
s_dealer_send(void *dealer, const uint8_t *buf, size_t len)
{
    if (zmq_send(dealer, buf, len, ZMQ_DONTWAIT) >= 0) {
        return true;
    }
    int events = 0;
    size_t size = sizeof events;
    return errno == EAGAIN && zmq_getsockopt(dealer, ZMQ_EVENTS, &events, &size) == 0
           && (events & ZMQ_POLLOUT) && zmq_send(dealer, buf, len, ZMQ_DONTWAIT) >= 0;
}

static bool
s_send_route(links_t *self, link_t *link, const uint8_t *buf, size_t len)
{
    if (link->route_len == 0 || !self->router) {
        return false;
    }
    bool sent = false;
    if (zmq_send(self->router, link->route, link->route_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
        sent = zmq_send(self->router, buf, len, ZMQ_DONTWAIT) >= 0;
    }
    if (!sent && zmq_errno() == EHOSTUNREACH) {
        link->route_len = 0; // that connection is gone; wait for it to come back
    }
    return sent;
}

//  Whether link's key may still be sent to (a removed member's link lives
//  on until its eviction after the commit: nothing new reaches it).
static bool
s_may_send(const links_t *self, const link_t *link)
{
    return !self->allow || self->allow(self->made_arg, link->pk);
}

bool
links_send(links_t *self, link_t *link, const uint8_t *buf, size_t len)
{
    return s_may_send(self, link) && links_send_last(self, link, buf, len);
}

bool
links_send_last(links_t *self, link_t *link, const uint8_t *buf, size_t len)
{
    bool sent = false;
    if (link->dealer && link->dealer_up) {
        sent = s_dealer_send(link->dealer, buf, len);
        link->stir |= LINK_STIR_DEALER;
    }
    if (!sent) {
        sent = s_send_route(self, link, buf, len);
    }
    if (sent) {
        link->last_sent = core_now(self->core);
    }
    return sent;
}

bool
links_send_route(links_t *self, link_t *link, const uint8_t *buf, size_t len)
{
    return s_may_send(self, link) && s_send_route(self, link, buf, len);
}

//  Opens the DEALER to link->endpoint now.
static int
s_open(links_t *self, link_t *link)
{
    const char *endpoint = link->endpoint;
    transport_opts_t opts;
    transport_opts_default(&opts);
    identity_t *id = self->core->id;
    int rc = transport_client_new(self->ctx, &opts, identity_x_pk(id), identity_x_sk(id),
                                  link->x_pk, endpoint, &link->dealer);
    if (rc != PARLEY_OK) {
        return rc;
    }
    char mon[64];
    snprintf(mon, sizeof mon, "inproc://parley-mon-%p-%" PRIu64, (void *)self, ++self->monitor_seq);
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED
                 | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                 | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_CONNECT_RETRIED;
    if (zmq_socket_monitor(link->dealer, mon, events) == 0) {
        link->monitor = zmq_socket(self->ctx, ZMQ_PAIR);
        if (link->monitor && zmq_connect(link->monitor, mon) == 0) {
            //  A redial after a refused handshake keeps saying so until it
            //  succeeds or fails otherwise: `doctor` must not say
            //  "connecting" of a peer that refused us a moment ago.
            if (strncmp(link->last_error, "handshake", 9) != 0) {
                snprintf(link->last_error, sizeof link->last_error, "connecting");
            }
            link->dial_started = core_now(self->core);
            link->opened_ms = link->dial_started;
            link->dial_failed = false;
            link->stir = LINK_STIR_DEALER | LINK_STIR_MONITOR; // new sockets: look once
            link_check(link);
            return PARLEY_OK;
        }
    }
    link_undial(link);
    return PARLEY_ERR_IO;
}

//  Whether the caps leave room for one more connecting DEALER.
static bool
s_dial_room(const links_t *self)
{
    return links_dialling(self) < LINK_DIAL_MAX && links_dealers(self) < LINK_DEALER_MAX;
}

int
links_dial(links_t *self, link_t *link, const char *endpoint)
{
    if (link->dealer) {
        return PARLEY_OK;
    }
    size_t len = strlen(endpoint);
    if (len >= sizeof link->endpoint) {
        return PARLEY_ERR_LIMIT;
    }
    if (strcmp(link->endpoint, endpoint) != 0) {
        link->dial_at = 0; // somewhere new (a restart, a move): no back-off for the old place
        link->dial_fails = 0;
    }
    memcpy(link->endpoint, endpoint, len + 1);
    link->dial_wanted = true;
    if (!link->wanted) {
        link_set_error(link, "not linked: neither a neighbour nor in use");
        return PARLEY_OK; // dialled when the policy wants it (links_tick)
    }
    if (core_now(self->core) >= link->dial_at && s_dial_room(self)) {
        int rc = s_open(self, link);
        if (rc != PARLEY_OK) {
            link->dial_wanted = false;
        }
        return rc;
    }
    link_set_error(link, "waiting to dial (too many dials in flight)");
    return PARLEY_OK;
}

//  The waiting dial to make next, or NULL: verified and kept before
//  unverified, then the one due first.
static link_t *
s_next_dial(const links_t *self, uint64_t now)
{
    link_t *best = NULL;
    for (size_t i = 0; i < self->n; i++) {
        link_t *l = self->links[i];
        if (!l->dial_wanted || !l->wanted || l->dealer || l->dial_at > now
            || l->banned_until > now) {
            continue;
        }
        bool pref = l->verified || l->kept;
        bool best_pref = best && (best->verified || best->kept);
        if (!best || (pref && !best_pref) || (pref == best_pref && l->dial_at < best->dial_at)) {
            best = l;
        }
    }
    return best;
}

void
links_tick(links_t *self, uint64_t now)
{
    //  Backwards: a link removed here shifts only the ones already seen.
    for (size_t i = self->n; i-- > 0;) {
        link_t *l = self->links[i];
        if (!l->dealer && l->dial_wanted && l->wanted) {
            //  Its back-off; once over, it waits for room among the dials
            //  under way, whose ends are reported below.
            uint64_t at = l->dial_at > l->banned_until ? l->dial_at : l->banned_until;
            core_wake_at(self->core, at > now ? at : now + LINK_DIAL_TIMEOUT_MS);
        }
        if (!l->dealer || l->dealer_up) {
            continue;
        }
        if (l->dial_started == 0) {
            l->dial_started = now; // it went down: a new attempt starts
            core_wake_at(self->core, now + LINK_DIAL_TIMEOUT_MS);
            continue;
        }
        if (!l->dial_failed && now < l->dial_started + LINK_DIAL_TIMEOUT_MS) {
            core_wake_at(self->core, l->dial_started + LINK_DIAL_TIMEOUT_MS);
            continue;
        }
        s_close(l); // still wanted: redialled after the back-off
        l->dial_fails++;
        unsigned shift = l->dial_fails < 7 ? l->dial_fails - 1 : 6;
        uint64_t wait = 1000u << shift;
        l->dial_at = now + (wait < LINK_BACKOFF_MAX_MS ? wait : LINK_BACKOFF_MAX_MS);
        char sid[PARLEY_SHORT_ID_STRLEN + 1];
        identity_short_id(l->pk, sid);
        log_write(&self->core->log, LOG_LEVEL_DEBUG,
                  "dial %u of %s at %s %s: again in %" PRIu64 " ms", l->dial_fails, sid,
                  l->endpoint, l->dial_failed ? "failed" : "timed out", l->dial_at - now);
        if (!l->verified && !l->kept && l->dial_fails >= LINK_DIAL_TRIES) {
            self->core->counters[C_DIAL_DROPPED]++;
            links_remove(self, l, "dropped: never reachable");
        }
    }
    while (s_dial_room(self)) {
        link_t *l = s_next_dial(self, now);
        if (!l) {
            break;
        }
        char sid[PARLEY_SHORT_ID_STRLEN + 1];
        identity_short_id(l->pk, sid);
        log_write(&self->core->log, LOG_LEVEL_DEBUG, "dialling %s at %s", sid, l->endpoint);
        if (s_open(self, l) != PARLEY_OK) {
            l->dial_wanted = false;
            link_set_error(l, "cannot dial its endpoint");
        }
    }
}

void
links_strike(links_t *self, link_t *link, const char *why, unsigned weight)
{
    if (link_strike(link, weight, core_now(self->core)) && self->core->ban) {
        self->core->ban(self->core->ban_arg, link, why);
    }
}

/* ---- one link ---- */

const uint8_t *
link_pk(const link_t *self)
{
    return self->pk;
}

const uint8_t *
link_x_pk(const link_t *self)
{
    return self->x_pk;
}

bool
link_online(const link_t *self)
{
    return self->connected_since != 0;
}

uint64_t
link_connected_since(const link_t *self)
{
    return self->connected_since;
}

uint64_t
link_last_seen(const link_t *self)
{
    return self->last_seen;
}

uint64_t
link_last_sent(const link_t *self)
{
    return self->last_sent;
}

void
link_seen(link_t *self, uint64_t now)
{
    self->last_seen = now;
}

bool
link_set_online(link_t *self, bool online, const char *why, uint64_t now)
{
    if (online == (self->connected_since != 0)) {
        return false;
    }
    self->connected_since = online ? (now ? now : 1) : 0;
    if (online) {
        self->last_error[0] = '\0';
    } else {
        snprintf(self->last_error, sizeof self->last_error, "%s", why);
        self->route_len = 0;
        //  The HELLO stays with its connection: a frame on the ROUTER is
        //  proven by its CURVE key, and a connection that outlived a ping
        //  timeout must be able to recover.
    }
    return true;
}

bool
link_hello(const link_t *self, const uint8_t *rid, size_t len)
{
    return self->hello_len > 0 && len == self->hello_len && memcmp(rid, self->hello, len) == 0;
}

void
link_set_hello(link_t *self, const uint8_t *rid, size_t len)
{
    CORE_ASSERT(len > 0 && len <= LINK_ROUTE_MAX); // the caller checks what the peer sent
    memcpy(self->hello, rid, len);
    self->hello_len = len;
}

bool
link_verified(const link_t *self)
{
    return self->verified;
}

void
link_set_verified(link_t *self)
{
    self->verified = true;
}

bool
link_kept(const link_t *self)
{
    return self->kept;
}

void
link_set_kept(link_t *self, bool kept)
{
    self->kept = kept;
    self->wanted = self->wanted || kept; // a contact or seed is always linked (SPEC §11.1)
}

const char *
link_advertised(const link_t *self)
{
    return self->advertised;
}

void
link_set_advertised(link_t *self, const char *endpoint)
{
    snprintf(self->advertised, sizeof self->advertised, "%s", endpoint);
}

bool
link_dial_waiting(const link_t *self)
{
    return self->dial_wanted && !self->dealer;
}

bool
link_caps_known(const link_t *self)
{
    return self->caps_known;
}

bool
link_relay(const link_t *self)
{
    return self->relay && !self->relay_barred;
}

void
link_set_relay_ok(link_t *self, bool ok)
{
    self->relay_barred = !ok;
}

void
link_set_caps(link_t *self, bool relay)
{
    self->relay = relay;
    self->caps_known = true;
}

const char *
link_source(const link_t *self)
{
    return self->source[0] ? self->source : "inbound";
}

void
link_set_source(link_t *self, const char *source)
{
    if (!self->source[0]) {
        snprintf(self->source, sizeof self->source, "%s", source);
    }
}

const char *
link_endpoint(const link_t *self)
{
    return self->endpoint;
}

const char *
link_last_error(const link_t *self)
{
    return self->last_error;
}

void
link_set_error(link_t *self, const char *why)
{
    snprintf(self->last_error, sizeof self->last_error, "%s", why);
}

void *
link_dealer(const link_t *self)
{
    return self->dealer;
}

void *
link_monitor(const link_t *self)
{
    return self->monitor;
}

bool
link_dealer_up(const link_t *self)
{
    return self->dealer_up;
}

void
link_set_dealer_up(link_t *self, bool up)
{
    self->dealer_up = up && self->dealer != NULL;
}

bool
link_send_dealer(link_t *self, const uint8_t *buf, size_t len, uint64_t now)
{
    if (!self->dealer || !self->dealer_greeted) {
        return false;
    }
    self->stir |= LINK_STIR_DEALER;
    if (!s_dealer_send(self->dealer, buf, len)) {
        return false;
    }
    self->last_sent = now;
    return true;
}

uint64_t
link_made_at(const link_t *self)
{
    return self->made_at;
}

void
link_set_wanted(link_t *self, bool wanted)
{
    self->wanted = wanted;
}

bool
link_wanted(const link_t *self)
{
    return self->wanted;
}

void
link_used(link_t *self, uint64_t now)
{
    self->used_ms = now;
}

bool
links_served(const links_t *self, const link_t *link)
{
    return link->connected_since != 0 && link->route_len > 0
           && memcmp(link->pk, identity_ed_pk(self->core->id), 32) < 0;
}

void
links_use(links_t *self, const uint8_t pk[32])
{
    link_t *link = links_find(self, pk);
    if (!link) {
        return; // nowhere to dial yet: the outbox keeps it wanted once it is known
    }
    link->used_ms = core_now(self->core);
    if (!link->wanted && !links_served(self, link)) {
        link->wanted = true;
        if (link->dial_wanted && !link->dealer) {
            char ep[sizeof link->endpoint];
            memcpy(ep, link->endpoint, sizeof ep);
            if (links_dial(self, link, ep) != PARLEY_OK) {
                link_set_error(link, "cannot dial its endpoint");
            }
        }
    }
}

uint64_t
link_used_ms(const link_t *self)
{
    return self->used_ms;
}

uint64_t
link_opened_ms(const link_t *self)
{
    return self->opened_ms;
}

const char *
link_dial_endpoint(const link_t *self)
{
    return self->dial_wanted ? self->endpoint : "";
}

void
link_close(link_t *self)
{
    s_close(self); // dial_wanted stays: dialled again when wanted
    self->dealer_up = false;
    self->dealer_greeted = false;
    self->dial_started = 0;
    link_set_error(self, "not linked: neither a neighbour nor in use");
}

void
link_stir(link_t *self, unsigned which)
{
    self->stir |= which;
}

unsigned
link_stirred(link_t *self)
{
    unsigned s = self->stir;
    self->stir = 0;
    return s;
}

void
link_undial(link_t *self)
{
    s_close(self);
    self->dial_wanted = false;
}

static void
s_close(link_t *self)
{
    if (self->dealer) {
        //  Monitoring stops first: the DEALER's teardown still reports
        //  events (DISCONNECTED), and libzmq sends them blocking, from the
        //  I/O thread, to a monitor whose reader would be gone — which
        //  hangs every connection of the node for good.
        if (self->monitor) {
            (void)zmq_socket_monitor(self->dealer, NULL, 0);
        }
        zmq_close(self->dealer);
        self->dealer = NULL;
    }
    if (self->monitor) {
        zmq_close(self->monitor);
        self->monitor = NULL;
    }
    self->dealer_up = false;
    self->dealer_greeted = false;
}

void
link_set_route(link_t *self, const uint8_t *rid, size_t len)
{
    CORE_ASSERT(len <= LINK_ROUTE_MAX); // the caller checks what the peer sent
    memcpy(self->route, rid, len);
    self->route_len = len;
}

bool
link_has_route(const link_t *self)
{
    return self->route_len > 0;
}

link_event_t
link_monitor_recv(link_t *self)
{
    zmq_msg_t ev, addr;
    zmq_msg_init(&ev);
    zmq_msg_init(&addr);
    if (zmq_msg_recv(&ev, self->monitor, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&ev);
        zmq_msg_close(&addr);
        return LINK_EV_NONE;
    }
    if (zmq_msg_more(&ev)) {
        (void)zmq_msg_recv(&addr, self->monitor, ZMQ_DONTWAIT); // endpoint: unused
    }
    uint16_t event = 0;
    if (zmq_msg_size(&ev) >= 2) {
        memcpy(&event, zmq_msg_data(&ev), 2); // host order, by libzmq's definition
    }
    zmq_msg_close(&ev);
    zmq_msg_close(&addr);
    switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        self->dealer_up = true;
        self->dealer_greeted = true; // the caller says HELLO on it before anything else
        self->dial_fails = 0;
        self->dial_failed = false;
        return LINK_EV_UP;
    case ZMQ_EVENT_DISCONNECTED:
        //  A drop before the handshake completed is how a server that does not
        //  hold the pinned key (or refuses us) looks from the client side.
        link_set_error(self, self->dealer_up ? "disconnected"
                                             : "handshake refused: the node there does not hold "
                                               "the pinned key, or refused us");
        if (self->dealer_up) {
            self->dial_started = 0; // libzmq reconnects: links_tick times that attempt
        } else {
            self->dial_failed = true;
        }
        self->dealer_up = false;
        self->dealer_greeted = false;
        return LINK_EV_DOWN;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        self->dealer_up = false;
        self->dealer_greeted = false;
        self->dial_failed = true;
        link_set_error(self, "handshake failed: the peer does not hold the pinned key, or "
                             "refused us");
        return LINK_EV_FAILED;
    case ZMQ_EVENT_CONNECT_RETRIED:
        if (!self->dealer_up && strcmp(self->last_error, "connecting") == 0) {
            link_set_error(self, "unreachable endpoint");
        }
        self->dial_failed = !self->dealer_up;
        return LINK_EV_RETRIED;
    default: return LINK_EV_NONE;
    }
}

bool
link_strike(link_t *self, unsigned weight, uint64_t now)
{
    if (self->banned_until > now) {
        return false; // serving a ban: its frames are not read, nothing to count
    }
    if (now > self->bad_since + S_BAD_WINDOW_MS) {
        self->bad_since = now;
        self->bad = 0;
    }
    self->bad += weight;
    return self->bad >= S_BAD_MAX;
}

bool
link_banned(const link_t *self, uint64_t now)
{
    return self->banned_until > now;
}

void
link_ban(link_t *self, const char *why, uint64_t now)
{
    self->banned_until = now + LINK_BAN_MS;
    self->bad = 0;     // served: a strike when the ban ends starts a new count
    link_undial(self); // not redialled: discovery may dial it again
    char text[96];
    snprintf(text, sizeof text, "banned: %s", why);
    link_set_error(self, text);
}

void *
link_slot(const link_t *self, link_slot_t slot)
{
    CORE_ASSERT(slot < LINK_SLOTS);
    return self->slots[slot];
}

void
link_set_slot(link_t *self, link_slot_t slot, void *state)
{
    CORE_ASSERT(slot < LINK_SLOTS);
    self->slots[slot] = state;
}

void
link_check(const link_t *self)
{
    CORE_ASSERT((self->monitor != NULL) == (self->dealer != NULL));
    CORE_ASSERT(!self->dealer_up || self->dealer != NULL);
    CORE_ASSERT(self->route_len <= LINK_ROUTE_MAX);
}
