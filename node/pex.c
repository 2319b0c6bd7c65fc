/*  node/pex.c — see pex.h. */
#include "pex.h"

#include "../proto/addr.h"
#include "../proto/endpoint.h"
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Per link (LINK_SLOT_PEX). */
typedef struct {
    uint8_t *addr; /* its latest verified signed address record, or NULL */
    size_t addr_len;
    uint64_t addr_issued;  /* issued_ms of that record (newer ones replace it) */
    uint64_t addr_expires; /* expires_ms of that record: never passed on after it */
    bool owed;             /* send it a PEERS frame */
    uint64_t new_since;    /* ms: start of the window counting the links it introduced */
    unsigned new_count;    /* links its records made in that window (PEX_NEW_MAX) */
} s_peer_t;

struct pex {
    core_t *core;
    links_t *links;
    char endpoint[256];            /* bound ROUTER endpoint */
    uint8_t addr[ADDR_RECORD_MAX]; /* our own signed address record */
    size_t addr_len;               /* 0 until made */
    uint64_t addr_renew;           /* ms: re-sign after this */
    uint8_t *buf;                  /* PARLEY_FRAME_MAX: a PEERS frame */
    //  Verified records of keys that could not have a link when they came
    //  (not yet members by our roster, or the table full): tried again by
    //  pex_retry, oldest overwritten first.
    uint8_t held[PEX_HELD_MAX][ADDR_RECORD_MAX];
    size_t held_len[PEX_HELD_MAX];
    size_t held_next;
};

pex_t *
pex_new(core_t *core, links_t *links, const char *endpoint)
{
    pex_t *self = calloc(1, sizeof *self);
    if (!self || !(self->buf = malloc(PARLEY_FRAME_MAX))) {
        free(self);
        return NULL;
    }
    self->core = core;
    self->links = links;
    snprintf(self->endpoint, sizeof self->endpoint, "%s", endpoint);
    return self;
}

void
pex_destroy(pex_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    free((*self_p)->buf);
    free(*self_p);
    *self_p = NULL;
}

static s_peer_t *
s_peer(link_t *link)
{
    s_peer_t *p = link_slot(link, LINK_SLOT_PEX);
    if (!p && (p = calloc(1, sizeof *p))) {
        link_set_slot(link, LINK_SLOT_PEX, p);
    }
    return p;
}

void
pex_link_free(pex_t *self, link_t *link)
{
    (void)self;
    s_peer_t *p = link_slot(link, LINK_SLOT_PEX);
    if (p) {
        free(p->addr);
        free(p);
        link_set_slot(link, LINK_SLOT_PEX, NULL);
    }
}

void
pex_link_up(pex_t *self, link_t *link)
{
    s_peer_t *p = self->core->cfg.no_pex ? NULL : s_peer(link);
    if (p) {
        p->owed = true;
    }
}

size_t
pex_interfaces(pex_iface_t *out, size_t max)
{
    struct ifaddrs *ifs = NULL;
    size_t n = 0;
    if (getifaddrs(&ifs) != 0) {
        return 0;
    }
    for (struct ifaddrs *i = ifs; i && n < max; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !(i->ifa_flags & IFF_UP)
            || (i->ifa_flags & IFF_LOOPBACK)) {
            continue;
        }
        snprintf(out[n].name, sizeof out[n].name, "%s", i->ifa_name);
        inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr, out[n].addr,
                  sizeof out[n].addr);
        out[n].multicast = (i->ifa_flags & IFF_MULTICAST) != 0;
        n++;
    }
    freeifaddrs(ifs);
    return n;
}

//  Our dialable endpoints: the bound one when it names an address; for a
//  wildcard bind, every up, non-loopback IPv4 interface with our port, and
//  loopback only when there is nothing else (one host, no network).
static size_t
s_own_endpoints(pex_t *self, char (*eps)[PARLEY_ENDPOINT_MAX + 1], size_t max)
{
    if (endpoint_valid(self->endpoint, strlen(self->endpoint))) {
        snprintf(eps[0], PARLEY_ENDPOINT_MAX + 1, "%s", self->endpoint);
        return 1;
    }
    const char *colon = strrchr(self->endpoint, ':');
    unsigned port = colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 0;
    if (port == 0 || port > 65535) {
        return 0;
    }
    pex_iface_t ifs[PARLEY_HELLO_ENDPOINTS_MAX];
    size_t n_ifs =
        pex_interfaces(ifs, max < PARLEY_HELLO_ENDPOINTS_MAX ? max : PARLEY_HELLO_ENDPOINTS_MAX);
    size_t n = 0;
    for (size_t i = 0; i < n_ifs; i++) {
        snprintf(eps[n++], PARLEY_ENDPOINT_MAX + 1, "tcp://%s:%u", ifs[i].addr, port);
    }
    if (n == 0) {
        snprintf(eps[n++], PARLEY_ENDPOINT_MAX + 1, "tcp://127.0.0.1:%u", port);
    }
    return n;
}

void
pex_renew(pex_t *self, uint64_t now)
{
    core_t *core = self->core;
    if (core->cfg.no_pex || (self->addr_len > 0 && now < self->addr_renew)) {
        return;
    }
    addr_record_t r;
    memset(&r, 0, sizeof r);
    memcpy(r.pk, identity_ed_pk(core->id), 32);
    r.issued_ms = now;
    r.expires_ms = now + PEX_LIFETIME_MS;
    r.n = s_own_endpoints(self, r.endpoints, PARLEY_HELLO_ENDPOINTS_MAX);
    self->addr_len = 0;
    if (r.n == 0
        || addr_encode(&r, identity_ed_sk(core->id), self->addr, sizeof self->addr, &self->addr_len)
               != PARLEY_OK) {
        log_write(&core->log, LOG_LEVEL_WARN,
                  "cannot make our address record: peers learn us only by discovery");
        self->addr_len = 0;
    }
    self->addr_renew = now + PEX_LIFETIME_MS / 2;
    for (size_t i = 0; self->addr_len > 0 && i < links_count(self->links); i++) {
        link_t *l = links_at(self->links, i);
        if (link_online(l)) {
            pex_link_up(self, l);
        }
    }
}

//  PEERS to one peer: our record, then the records of the other connected
//  peers (at most PARLEY_PEERS_MAX in all).
static void
s_send_peers(pex_t *self, link_t *link)
{
    const uint8_t *recs[PARLEY_PEERS_MAX];
    size_t lens[PARLEY_PEERS_MAX];
    size_t n = 0;
    uint64_t now = core_now(self->core);
    if (self->addr_len > 0) {
        recs[n] = self->addr;
        lens[n++] = self->addr_len;
    }
    for (size_t i = 0; i < links_count(self->links) && n < PARLEY_PEERS_MAX; i++) {
        link_t *l = links_at(self->links, i);
        const s_peer_t *p = link_slot(l, LINK_SLOT_PEX);
        if (l != link && p && p->addr && link_online(l) && p->addr_expires > now) {
            recs[n] = p->addr;
            lens[n++] = p->addr_len;
        }
    }
    size_t len = 0;
    if (n > 0
        && frame_encode_peers(recs, lens, n, self->buf, PARLEY_FRAME_MAX, &len) == PARLEY_OK) {
        (void)links_send(self->links, link, self->buf, len); // lost: gossip comes again
    }
}

void
pex_flush(pex_t *self)
{
    for (size_t i = 0; i < links_count(self->links); i++) {
        link_t *l = links_at(self->links, i);
        s_peer_t *p = link_slot(l, LINK_SLOT_PEX);
        if (p && p->owed && link_online(l)) {
            p->owed = false;
            s_send_peers(self, l);
        }
    }
}

//  What one verified record did.
typedef enum { S_TAKEN, S_KNOWN, S_NO_LINK } s_took_t;

//  Keeps rec (already decoded into r) as the newest record of its key, and
//  dials it if nothing connects us yet.
static s_took_t
s_take(pex_t *self, link_t *l, const addr_record_t *r, const uint8_t *rec, size_t len)
{
    s_peer_t *p = l ? s_peer(l) : NULL;
    if (!p) {
        return S_NO_LINK;
    }
    if (p->addr && r->issued_ms <= p->addr_issued) {
        return S_KNOWN; // nothing newer than what we hold
    }
    uint8_t *copy = malloc(len);
    if (!copy) {
        return S_KNOWN;
    }
    memcpy(copy, rec, len);
    free(p->addr);
    p->addr = copy;
    p->addr_len = len;
    p->addr_issued = r->issued_ms;
    p->addr_expires = r->expires_ms;
    link_set_source(l, "pex");
    if (!link_dealer(l) && !link_online(l)
        && links_dial(self->links, l, r->endpoints[0]) == PARLEY_OK && link_dealer(l)) {
        char sid[PARLEY_SHORT_ID_STRLEN + 1];
        identity_short_id(link_pk(l), sid);
        log_write(&self->core->log, LOG_LEVEL_DEBUG, "dialling %s at %s (peer exchange)", sid,
                  r->endpoints[0]);
    }
    return S_TAKEN;
}

static void
s_hold(pex_t *self, const uint8_t *rec, size_t len)
{
    size_t i = self->held_next++ % PEX_HELD_MAX;
    memcpy(self->held[i], rec, len);
    self->held_len[i] = len;
}

//  Every online peer but skip is owed our records (we learnt some).
static void
s_owe_all(pex_t *self, const link_t *skip)
{
    for (size_t i = 0; i < links_count(self->links); i++) {
        link_t *l = links_at(self->links, i);
        if (l != skip && link_online(l)) {
            pex_link_up(self, l);
        }
    }
}

void
pex_on_peers(pex_t *self, link_t *from, const frame_t *f)
{
    core_t *core = self->core;
    if (core->cfg.no_pex) {
        return;
    }
    uint64_t now = core_now(core);
    bool learnt = false;
    unsigned dropped = 0;
    s_peer_t *src = s_peer(from);
    if (src && now >= src->new_since + PEX_NEW_WINDOW_MS) {
        src->new_since = now;
        src->new_count = 0;
    }
    for (size_t i = 0; i < f->n_records; i++) {
        addr_record_t r;
        if (f->record_lens[i] > ADDR_RECORD_MAX
            || addr_decode(f->records[i], f->record_lens[i], now, &r) != PARLEY_OK) {
            core->counters[C_BAD_ADDRESS]++;
            continue;
        }
        if (sodium_memcmp(r.pk, identity_ed_pk(core->id), 32) == 0) {
            continue;
        }
        bool created = false;
        link_t *l = links_find(self->links, r.pk);
        if (!l && (!src || src->new_count >= PEX_NEW_MAX)) {
            dropped++; // past its budget of introductions: not a link, not a dial
            continue;
        }
        if (!l) {
            l = links_get(self->links, r.pk, &created);
            src->new_count += created;
        }
        s_took_t took = s_take(self, l, &r, f->records[i], f->record_lens[i]);
        if (took == S_NO_LINK) {
            s_hold(self, f->records[i], f->record_lens[i]);
        }
        learnt = learnt || (took == S_TAKEN && l != from);
    }
    if (dropped > 0) {
        //  Honest gossip names the peers its sender is connected to, a few
        //  at a time; hundreds of new keys a minute is a flood.
        core->counters[C_RECORD_DROPPED] += dropped;
        links_strike(self->links, from, "too many new peers in its PEERS frames", dropped);
    }
    if (learnt) {
        s_owe_all(self, from);
    }
}

void
pex_retry(pex_t *self)
{
    core_t *core = self->core;
    uint64_t now = core_now(core);
    bool learnt = false;
    for (size_t i = 0; i < PEX_HELD_MAX; i++) {
        addr_record_t r;
        if (self->held_len[i] == 0
            || addr_decode(self->held[i], self->held_len[i], now, &r) != PARLEY_OK) {
            self->held_len[i] = 0; // expired since
            continue;
        }
        bool created = false;
        link_t *l = links_find(self->links, r.pk);
        if (!l) {
            l = links_get(self->links, r.pk, &created);
        }
        s_took_t took = s_take(self, l, &r, self->held[i], self->held_len[i]);
        if (took != S_NO_LINK) {
            self->held_len[i] = 0;
            learnt = learnt || took == S_TAKEN;
        }
    }
    if (learnt) {
        s_owe_all(self, NULL);
    }
}
