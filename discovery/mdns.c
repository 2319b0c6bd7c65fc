/*  discovery/mdns.c — the mDNS source (mdns.h): publishes this node as
 *  _parley._tcp through the system's Avahi daemon and browses and resolves
 *  the others, with libavahi-client over D-Bus.
 *
 *  Threads. Everything Avahi does runs in one thread: the AvahiThreadedPoll's
 *  event loop. mdns_new() only prepares state and arms a timer that fires at
 *  once in that thread; the client, the entry group, the browser and the
 *  resolvers are created and freed there, and every callback runs there.
 *  The report PUSH socket is created by mdns_new(), handed to the poll thread
 *  by avahi_threaded_poll_start() and taken back by mdns_destroy() after
 *  avahi_threaded_poll_stop() has joined that thread. ZeroMQ allows a socket
 *  to move between threads across a full memory barrier, and thread creation
 *  and join are such barriers; in between only the poll thread touches it, so
 *  no lock is needed (and none is taken on the hot path).
 *
 *  Health, as a state machine driven by the client callback and a 2 s tick:
 *
 *      (no client) --avahi_client_new fails (no D-Bus)--> DOWN, retry at tick
 *           |
 *           +--client_new ok--> CONNECTING (daemon absent)        --> DOWN
 *                            |        | daemon appears
 *                            +--------+--> RUNNING --> UP: publish, browse
 *      RUNNING --FAILURE (e.g. AVAHI_ERR_DISCONNECTED)--> DOWN, the next tick
 *           frees the client (never inside its own callback) and makes a new
 *           one, which starts over at the top.
 *
 *  STATUS is reported on each change between UP and DOWN only, so a daemon
 *  that stays away is reported once, not every 2 s. When a client is dropped,
 *  every node it had seen is reported GONE ("the source no longer lists it"),
 *  and the new client's browser reports them SEEN again.
 *
 *  Names. In open mode our instance name is "parley-" + the first 16
 *  characters of our node id, unique in practice, so we never rely on mDNS
 *  renaming (slow across hosts). If it collides anyway we report STATUS down
 *  and stay unpublished until the next client: no rename loop.
 *
 *  Blinded mode (SPEC §19.3). With network keys (mdns_config_t.keys, or
 *  mdns_set_keys at run time) we publish "v=1" "b=SEALED" under a random
 *  name drawn at start and at each key change, reseal with a fresh nonce at
 *  each publication, and report only the blinded records one of our keys
 *  opens (at most BLIND_KEYS_MAX openings per record); open records are
 *  counted and ignored, so we never dial (and hand our key to) strangers.
 *  Without keys, blinded records are counted and ignored. A collision of a
 *  random name draws another one at the next tick: it names no one, and a
 *  stranger who copies it must not keep us off the air. The keys (derived
 *  mDNS keys, never the network secrets) live in sodium_malloc memory;
 *  mdns_set_keys runs in the caller's thread and changes them under the
 *  threaded poll's lock (which the loop thread holds while it dispatches),
 *  then arms the tick at once; the tick withdraws our service, drops the
 *  browser, its resolvers and what they found (GONE), and starts over under
 *  the new name and keys, so records no key opened before are resolved and
 *  tried again.
 *
 *  What others announce is untrusted: the TXT record goes through the strict
 *  proto/txt decoder, a bad record is counted and logged once and never
 *  reported, and the map of instances to ids is bounded (S_SEEN_MAX).
 */
#include "mdns.h"

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/address.h>
#include <avahi-common/domain.h>
#include <avahi-common/error.h>
#include <avahi-common/strlst.h>
#include <avahi-common/thread-watch.h>
#include <avahi-common/timeval.h>
#include <czmq.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../proto/blind.h"
#include "../proto/identity.h"
#include "../proto/selftest.h"
#include "../proto/txt.h"
#include "source.h"

#define S_TICK_MS 2000u
#define S_SEEN_MAX 4096u   /* instances remembered; beyond, new ones are ignored */
#define S_PENDING_MAX 256u /* resolves in flight; beyond, new instances wait */
#define S_NAME_ID_CHARS 16 /* node id characters in our instance name */
#define S_REPORT_HWM 10000

typedef enum { S_HEALTH_NONE, S_HEALTH_DOWN, S_HEALTH_UP } s_health_t;

struct _mdns_t {
    AvahiThreadedPoll *poll;      /* owns the event loop thread */
    AvahiTimeout *tick;           /* retries and repairs, every S_TICK_MS */
    AvahiClient *client;          /* NULL while D-Bus is unreachable */
    bool client_dead;             /* FAILURE seen: drop it at the next tick */
    AvahiEntryGroup *group;       /* our service; child of client */
    bool collided;                /* our name is taken: do not publish again */
    AvahiServiceBrowser *browser; /* child of client */
    bool browser_dead;            /* browser FAILURE: recreate at the next tick */
    zsock_t *report;              /* PUSH to the actor; poll thread only (above) */
    zhashx_t *seen;               /* "iface/proto/name" -> node id (char *) */
    zhashx_t *pending;            /* "iface/proto/name" -> its resolver (owned by the client) */
    s_health_t health;            /* last STATUS reported */
    char node_id[PARLEY_NODE_ID_STRLEN + 1]; /* ours, lower case */
    discovery_log_fn *log;                   /* the node's logger, or NULL */
    void *log_arg;                           /* passed to log */
    char name[AVAHI_LABEL_MAX];              /* our instance name */
    uint16_t port;                           /* published port */
    txt_record_t txt;                        /* our TXT items */
    size_t n_malformed;                      /* TXT records rejected as malformed */
    size_t n_unsupported;                    /* TXT records of another version */
    size_t n_dropped;                        /* reports the PUSH socket refused */
    size_t n_overflow;                       /* instances ignored beyond S_SEEN_MAX */
    size_t n_busy;                           /* instances not resolved: S_PENDING_MAX reached */
    uint8_t ed_pk[PARLEY_KEY_LEN];           /* ours, sealed into blinded records */
    uint8_t (*keys)[BLIND_KEY_LEN];          /* sodium_malloc, BLIND_KEYS_MAX mDNS keys */
    size_t n_keys;                           /* keys in use; 0: open mode; keys[0] announces */
    bool rekey;                              /* keys changed: start over at the next tick */
    bool hushed;                             /* publish nothing, report nothing (mdns_hush) */
    size_t n_sealed;                         /* blinded records no key of ours opens */
    size_t n_open_ignored;                   /* open records ignored while we hold keys */
};

/* ------------------------------------------------------------------ helpers */

static void s_log(const mdns_t *self, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_status(mdns_t *self, s_health_t health, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  One line per event, through the node's logger. Only for what the reports
 *  do not already carry (those the node logs itself). */
static void
s_log(const mdns_t *self, const char *fmt, ...)
{
    char line[512];
    int at = snprintf(line, sizeof line, "mdns: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + at, sizeof line - (size_t)at, fmt, ap);
    va_end(ap);
    if (self->log) {
        self->log(self->log_arg, line);
    } else {
        fprintf(stderr, "%s\n", line);
    }
}

/*  Names from the network may hold any UTF-8 or control bytes: keep logs and
 *  terminals clean by replacing anything but printable ASCII. */
static void
s_clean(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (size_t i = 0; in && in[i] && o + 1 < cap; i++) {
        unsigned char c = (unsigned char)in[i];
        out[o++] = c >= 0x20 && c <= 0x7e ? (char)c : '?';
    }
    out[o] = '\0';
}

/*  Never blocks (SNDTIMEO 0): a stalled actor must not stall the Avahi loop,
 *  and mdns_destroy() must always be able to stop it. A dropped hint is
 *  logged once; heartbeats and the next announcement repair it. */
static void
s_send(mdns_t *self, const char *a, const char *b, const char *c, const char *d)
{
    int rc =
        d ? zstr_sendx(self->report, a, b, c, d, NULL) : zstr_sendx(self->report, a, b, c, NULL);
    if (rc != 0 && self->n_dropped++ == 0) {
        s_log(self, "report queue full: dropping reports");
    }
}

static void
s_status(mdns_t *self, s_health_t health, const char *fmt, ...)
{
    if (self->health == health) {
        return;
    }
    self->health = health;
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    s_send(self, "STATUS", "mdns", health == S_HEALTH_UP ? "up" : "down", detail);
}

static void
s_key(char *out, size_t cap, AvahiIfIndex iface, AvahiProtocol proto, const char *name)
{
    snprintf(out, cap, "%d/%d/%s", (int)iface, (int)proto, name);
}

/*  True if some instance other than the one under key names id. */
static bool
s_id_listed_elsewhere(mdns_t *self, const char *key, const char *id)
{
    for (const char *v = zhashx_first(self->seen); v; v = zhashx_next(self->seen)) {
        if (streq(v, id) && !streq((const char *)zhashx_cursor(self->seen), key)) {
            return true;
        }
    }
    return false;
}

/*  Forgets one instance; the node is GONE once no instance names it. */
static void
s_forget(mdns_t *self, const char *key)
{
    const char *id = zhashx_lookup(self->seen, key);
    if (!id) {
        return;
    }
    char copy[PARLEY_NODE_ID_STRLEN + 1];
    snprintf(copy, sizeof copy, "%s", id);
    bool elsewhere = s_id_listed_elsewhere(self, key, copy);
    zhashx_delete(self->seen, key);
    if (!elsewhere) {
        s_send(self, "GONE", copy, "mdns", NULL);
    }
}

static void
s_forget_all(mdns_t *self)
{
    zlistx_t *keys = zhashx_keys(self->seen);
    if (!keys) {
        /* Out of memory: drop the map silently rather than report half. */
        zhashx_purge(self->seen);
        return;
    }
    for (const char *k = zlistx_first(keys); k; k = zlistx_next(keys)) {
        s_forget(self, k);
    }
    zlistx_destroy(&keys);
}

/* ---------------------------------------------------------------- resolving */

/*  Avahi's TXT list as (pointer, length) items. One item more than the limit
 *  is kept, so that txt_decode sees the record is too long. */
static int
s_decode_txt(AvahiStringList *txt, txt_info_t *info)
{
    const uint8_t *items[TXT_ITEMS_MAX + 1];
    size_t lens[TXT_ITEMS_MAX + 1];
    size_t n = 0;
    for (AvahiStringList *l = txt; l && n < TXT_ITEMS_MAX + 1; l = avahi_string_list_get_next(l)) {
        items[n] = avahi_string_list_get_text(l);
        lens[n] = avahi_string_list_get_size(l);
        n++;
    }
    return txt_decode(items, lens, n, info);
}

static void
s_rejected(mdns_t *self, const char *name, int rc)
{
    char clean[AVAHI_LABEL_MAX];
    s_clean(clean, sizeof clean, name);
    if (rc == PARLEY_ERR_UNSUPPORTED) {
        if (self->n_unsupported++ == 0) {
            s_log(self, "ignoring '%s': TXT record of another version", clean);
        }
    } else if (self->n_malformed++ == 0) {
        s_log(self, "ignoring '%s': malformed TXT record (%s); further ones are only counted",
              clean, parley_strerror(rc));
    }
}

static void
s_found(mdns_t *self, AvahiIfIndex iface, AvahiProtocol proto, const char *name,
        const AvahiAddress *address, uint16_t port, AvahiStringList *txt)
{
    /* IPv4 only for now: the resolver was asked for A records. */
    if (!address || address->proto != AVAHI_PROTO_INET || port == 0) {
        return;
    }
    if (self->hushed) {
        return; /* joining a network: no one to dial until it tells us its secret */
    }
    txt_info_t info;
    int rc = s_decode_txt(txt, &info);
    if (rc == PARLEY_OK && info.blinded) {
        rc = txt_open(&info, (const uint8_t(*)[BLIND_KEY_LEN])self->keys, self->n_keys, NULL);
        if (rc == PARLEY_ERR_NOKEY || rc == PARLEY_ERR_AUTH) {
            /* Another network's member, or an epoch we no longer hold. */
            if (self->n_sealed++ == 0) {
                s_log(self, "ignoring blinded records no key of ours opens; further ones are "
                            "only counted");
            }
            return;
        }
    } else if (rc == PARLEY_OK && self->n_keys > 0) {
        if (self->n_open_ignored++ == 0) {
            s_log(self, "in a private network: ignoring open records; further ones are only "
                        "counted");
        }
        return;
    }
    if (rc != PARLEY_OK) {
        s_rejected(self, name, rc);
        return;
    }
    if (streq(info.id, self->node_id)) {
        return; /* ourselves, seen from another interface or client */
    }
    char key[AVAHI_LABEL_MAX + 32];
    s_key(key, sizeof key, iface, proto, name);
    const char *old = zhashx_lookup(self->seen, key);
    if (old && !streq(old, info.id)) {
        s_forget(self, key); /* the instance now names another node */
        old = NULL;
    }
    if (!old) {
        if (zhashx_size(self->seen) >= S_SEEN_MAX) {
            if (self->n_overflow++ == 0) {
                s_log(self, "more than %u instances: ignoring new ones", S_SEEN_MAX);
            }
            return;
        }
        char *id = strdup(info.id);
        if (!id || zhashx_insert(self->seen, key, id) != 0) {
            free(id);
            return; /* out of memory: this hint is lost, the next one may land */
        }
    }
    char addr[AVAHI_ADDRESS_STR_MAX];
    char endpoint[AVAHI_ADDRESS_STR_MAX + 16];
    avahi_address_snprint(addr, sizeof addr, address);
    snprintf(endpoint, sizeof endpoint, "tcp://%s:%u", addr, (unsigned)port);
    s_send(self, "SEEN", info.id, endpoint, "mdns");
}

/*  Drops r from the resolves in flight (a linear scan: at most 256). */
static void
s_pending_forget(mdns_t *self, AvahiServiceResolver *r)
{
    char key[AVAHI_LABEL_MAX + 32] = "";
    for (void *v = zhashx_first(self->pending); v; v = zhashx_next(self->pending)) {
        if (v == r) {
            snprintf(key, sizeof key, "%s", (const char *)zhashx_cursor(self->pending));
            break;
        }
    }
    if (key[0]) {
        zhashx_delete(self->pending, key);
    }
}

static void s_resolve_cb(AvahiServiceResolver *r, AvahiIfIndex iface, AvahiProtocol proto,
                         AvahiResolverEvent event, const char *name, const char *type,
                         const char *domain, const char *host_name, const AvahiAddress *address,
                         uint16_t port, AvahiStringList *txt, AvahiLookupResultFlags flags,
                         void *arg);

/*  Starts resolving a new instance, once per instance and within bounds: a
 *  flood of fake announcements must not turn into a flood of lookups. */
static void
s_resolve(mdns_t *self, AvahiServiceBrowser *b, AvahiIfIndex iface, AvahiProtocol proto,
          const char *name, const char *type, const char *domain)
{
    char key[AVAHI_LABEL_MAX + 32];
    s_key(key, sizeof key, iface, proto, name);
    if (zhashx_lookup(self->pending, key)) {
        return;
    }
    if (zhashx_size(self->pending) >= S_PENDING_MAX) {
        if (self->n_busy++ == 0) {
            s_log(self, "more than %u resolves in flight: skipping new instances", S_PENDING_MAX);
        }
        return;
    }
    /* NULL means no memory or a dying client: nothing to do but wait for
     * the next announcement. */
    AvahiServiceResolver *r =
        avahi_service_resolver_new(avahi_service_browser_get_client(b), iface, proto, name, type,
                                   domain, AVAHI_PROTO_INET, 0, s_resolve_cb, self);
    if (r && zhashx_insert(self->pending, key, r) != 0) {
        avahi_service_resolver_free(r);
    }
}

static void
s_resolve_cb(AvahiServiceResolver *r, AvahiIfIndex iface, AvahiProtocol proto,
             AvahiResolverEvent event, const char *name, const char *type, const char *domain,
             const char *host_name, const AvahiAddress *address, uint16_t port,
             AvahiStringList *txt, AvahiLookupResultFlags flags, void *arg)
{
    (void)type;
    (void)domain;
    (void)host_name;
    mdns_t *self = arg;
    s_pending_forget(self, r);
    /* A failed resolve (timeout: the host went away) is not worth a line:
     * the browser will say REMOVE, or the node finds out by its pings. */
    if (event == AVAHI_RESOLVER_FOUND && name && !(flags & AVAHI_LOOKUP_RESULT_OUR_OWN)) {
        s_found(self, iface, proto, name, address, port, txt);
    }
    avahi_service_resolver_free(r);
}

static void
s_browse_cb(AvahiServiceBrowser *b, AvahiIfIndex iface, AvahiProtocol proto,
            AvahiBrowserEvent event, const char *name, const char *type, const char *domain,
            AvahiLookupResultFlags flags, void *arg)
{
    mdns_t *self = arg;
    char key[AVAHI_LABEL_MAX + 32];
    switch (event) {
    case AVAHI_BROWSER_NEW:
        if (!name || (flags & AVAHI_LOOKUP_RESULT_OUR_OWN)) {
            break;
        }
        /* The resolver is freed in its callback, on REMOVE, or with the
         * client (avahi_client_free frees every resolver still pending). */
        s_resolve(self, b, iface, proto, name, type, domain);
        break;
    case AVAHI_BROWSER_REMOVE:
        if (name) {
            s_key(key, sizeof key, iface, proto, name);
            /* Gone before it resolved: a late answer must not say SEEN. */
            AvahiServiceResolver *r = zhashx_lookup(self->pending, key);
            if (r) {
                zhashx_delete(self->pending, key);
                avahi_service_resolver_free(r);
            }
            s_forget(self, key);
        }
        break;
    case AVAHI_BROWSER_FAILURE:
        /* Freed at the next tick, never inside its own callback. */
        self->browser_dead = true;
        break;
    case AVAHI_BROWSER_CACHE_EXHAUSTED:
    case AVAHI_BROWSER_ALL_FOR_NOW: break;
    }
}

/* --------------------------------------------------------------- publishing */

/*  Our instance name: from our id in open mode, fresh random bytes with keys. */
static void
s_name(mdns_t *self)
{
    char fresh[BLIND_NAME_LEN + 1];
    if (self->n_keys > 0 && blind_instance_name(fresh) == PARLEY_OK) {
        snprintf(self->name, sizeof self->name, "%s", fresh);
    } else {
        snprintf(self->name, sizeof self->name, "parley-%.*s", S_NAME_ID_CHARS, self->node_id);
    }
    /* The node shows it (parley doctor): in blinded mode only we know it. */
    s_send(self, "NAME", "mdns", self->name, NULL);
}

/*  A collision of our name. Blinded: another random name at the next tick.
 *  Open: stay unpublished and say why (see the top of this file). */
static void
s_collided(mdns_t *self, const char *where)
{
    if (self->n_keys > 0) {
        s_log(self, "instance name %s is taken %s; drawing another", self->name, where);
        s_name(self);
        return;
    }
    self->collided = true;
    s_status(self, S_HEALTH_DOWN, "instance name %s is taken %s; not published", self->name, where);
}

static void
s_group_cb(AvahiEntryGroup *g, AvahiEntryGroupState state, void *arg)
{
    mdns_t *self = arg;
    if (state == AVAHI_ENTRY_GROUP_COLLISION) {
        /* Open mode: someone else holds "parley-<our id prefix>": another
         * process with our identity, or an impostor. Renaming would hide
         * that and take minutes to settle across hosts. */
        s_collided(self, "on the network");
        avahi_entry_group_reset(g); /* blinded: the next tick publishes the new name */
    } else if (state == AVAHI_ENTRY_GROUP_FAILURE) {
        s_status(self, S_HEALTH_DOWN, "cannot publish: %s",
                 avahi_strerror(avahi_client_errno(avahi_entry_group_get_client(g))));
        avahi_entry_group_reset(g); /* empty again: the next tick retries */
    }
}

static void
s_publish(mdns_t *self, AvahiClient *c)
{
    if (self->collided || self->hushed) {
        return;
    }
    if (!self->group) {
        self->group = avahi_entry_group_new(c, s_group_cb, self);
        if (!self->group) {
            s_status(self, S_HEALTH_DOWN, "cannot publish: %s",
                     avahi_strerror(avahi_client_errno(c)));
            return; /* the next tick tries again */
        }
    }
    if (!avahi_entry_group_is_empty(self->group)) {
        return; /* already published */
    }
    /* Blinded: sealed afresh at each publication (a new nonce). */
    txt_record_t blinded;
    const txt_record_t *rec = &self->txt;
    if (self->n_keys > 0) {
        if (txt_encode_blind(self->keys[0], self->ed_pk, &blinded) != PARLEY_OK) {
            s_status(self, S_HEALTH_DOWN, "cannot seal our record");
            return; /* the next tick tries again */
        }
        rec = &blinded;
    }
    /* avahi_string_list_add_* prepend: add backwards to keep our order. */
    AvahiStringList *l = NULL;
    for (size_t i = rec->n; i-- > 0;) {
        AvahiStringList *next =
            avahi_string_list_add_arbitrary(l, (const uint8_t *)rec->items[i], rec->lens[i]);
        if (!next) {
            avahi_string_list_free(l);
            return; /* out of memory: the next tick tries again */
        }
        l = next;
    }
    int rc = avahi_entry_group_add_service_strlst(self->group, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
                                                  0, self->name, DISCOVERY_SERVICE, NULL, NULL,
                                                  self->port, l);
    avahi_string_list_free(l);
    if (rc == AVAHI_ERR_COLLISION) {
        /* Taken on this very host (another local client). See s_group_cb. */
        s_collided(self, "on this host");
        return;
    }
    if (rc == 0) {
        rc = avahi_entry_group_commit(self->group);
    }
    if (rc != 0) {
        s_status(self, S_HEALTH_DOWN, "cannot publish: %s", avahi_strerror(rc));
        avahi_entry_group_reset(self->group); /* empty again: the next tick retries */
    }
}

static void
s_browse(mdns_t *self, AvahiClient *c)
{
    if (self->browser) {
        return;
    }
    self->browser = avahi_service_browser_new(c, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC,
                                              DISCOVERY_SERVICE, NULL, 0, s_browse_cb, self);
    if (!self->browser) {
        s_status(self, S_HEALTH_DOWN, "cannot browse: %s", avahi_strerror(avahi_client_errno(c)));
    }
}

/* ------------------------------------------------------------------- client */

static void
s_status_up(mdns_t *self, AvahiClient *c)
{
    const char *version = avahi_client_get_version_string(c);
    const char *host = avahi_client_get_host_name_fqdn(c);
    char clean[256];
    s_clean(clean, sizeof clean, host ? host : "?");
    s_status(self, S_HEALTH_UP, "%s on %s%s", version ? version : "avahi", clean,
             self->hushed ? "; silent until the network's secret arrives" : "");
}

/*  May run inside avahi_client_new(), before self->client is set: use c. */
static void
s_client_cb(AvahiClient *c, AvahiClientState state, void *arg)
{
    mdns_t *self = arg;
    switch (state) {
    case AVAHI_CLIENT_S_RUNNING:
        /* Up first: a publish or browse failure below then says down. */
        s_status_up(self, c);
        s_publish(self, c);
        s_browse(self, c);
        break;
    case AVAHI_CLIENT_S_COLLISION:
    case AVAHI_CLIENT_S_REGISTERING:
        /* The daemon is (re)naming its host: records must be re-added
         * under the new host name once it is RUNNING again. */
        if (self->group) {
            avahi_entry_group_reset(self->group);
        }
        break;
    case AVAHI_CLIENT_CONNECTING:
        s_status(self, S_HEALTH_DOWN, "avahi-daemon is not running; waiting for it");
        break;
    case AVAHI_CLIENT_FAILURE:
        s_status(self, S_HEALTH_DOWN, "lost the avahi daemon: %s",
                 avahi_strerror(avahi_client_errno(c)));
        self->client_dead = true;
        /* Replace the client soon; after a disconnect at once, since the
         * new client simply waits (NO_FAIL) for the daemon to come back. */
        if (self->tick) {
            struct timeval tv;
            unsigned ms = avahi_client_errno(c) == AVAHI_ERR_DISCONNECTED ? 0 : S_TICK_MS;
            avahi_threaded_poll_get(self->poll)
                ->timeout_update(self->tick, avahi_elapse_time(&tv, ms, 0));
        }
        break;
    }
}

/*  Frees the client and everything it owns (group, browser, resolvers). */
static void
s_client_drop(mdns_t *self)
{
    if (self->client) {
        avahi_client_free(self->client);
    }
    self->client = NULL;
    self->client_dead = false;
    zhashx_purge(self->pending); /* the resolvers went with the client */
    self->group = NULL;
    self->browser = NULL;
    self->browser_dead = false;
    self->collided = false;
    s_forget_all(self);
}

static void
s_client_start(mdns_t *self)
{
    int err = 0;
    self->client_dead = false;
    AvahiClient *c = avahi_client_new(avahi_threaded_poll_get(self->poll), AVAHI_CLIENT_NO_FAIL,
                                      s_client_cb, self, &err);
    if (!c) {
        /* Whatever the callback made was freed with the failed client. */
        self->group = NULL;
        self->browser = NULL;
        zhashx_purge(self->pending);
        s_status(self, S_HEALTH_DOWN, "no D-Bus system bus (%s); retrying every %u s",
                 avahi_strerror(err), S_TICK_MS / 1000u);
        return;
    }
    self->client = c;
}

/*  Frees every resolve in flight (they belong to the client, not to us). */
static void
s_pending_free(mdns_t *self)
{
    for (void *r = zhashx_first(self->pending); r; r = zhashx_next(self->pending)) {
        avahi_service_resolver_free(r);
    }
    zhashx_purge(self->pending);
}

/*  The keys changed (mdns_set_keys): withdraw our service, forget what the
 *  browser found and browse again, under a new name and the new keys. */
static void
s_rekey(mdns_t *self)
{
    self->rekey = false;
    s_name(self);
    self->collided = false;
    if (self->group) {
        avahi_entry_group_reset(self->group);
    }
    if (self->browser) {
        avahi_service_browser_free(self->browser);
        self->browser = NULL;
        self->browser_dead = false;
    }
    s_pending_free(self);
    s_forget_all(self);
    if (self->hushed) {
        s_log(self, "joining a private network: silent until its secret arrives");
    } else if (self->n_keys > 0) {
        s_log(self, "private network: announcing blinded as %s (%zu keys)", self->name,
              self->n_keys);
    } else {
        s_log(self, "open mode: announcing as %s", self->name);
    }
}

/*  Level-triggered repair: whatever is missing is made again. */
static void
s_tick(AvahiTimeout *t, void *arg)
{
    mdns_t *self = arg;
    if (self->rekey) {
        s_rekey(self);
    }
    if (self->client && self->client_dead) {
        s_client_drop(self);
    }
    if (!self->client) {
        s_client_start(self);
    }
    if (self->client && !self->client_dead
        && avahi_client_get_state(self->client) == AVAHI_CLIENT_S_RUNNING) {
        if (self->browser_dead && self->browser) {
            avahi_service_browser_free(self->browser);
            self->browser = NULL;
            self->browser_dead = false;
            s_forget_all(self); /* the new browser lists them again */
        }
        s_browse(self, self->client);
        s_publish(self, self->client);
        /* Repaired after a publish or browse failure: up again. Not after a
         * collision, which stays reported until the next client. */
        if (self->browser && !self->collided
            && (self->hushed || (self->group && !avahi_entry_group_is_empty(self->group)))) {
            s_status_up(self, self->client);
        }
    }
    struct timeval tv;
    avahi_threaded_poll_get(self->poll)->timeout_update(t, avahi_elapse_time(&tv, S_TICK_MS, 0));
}

/* ------------------------------------------------------------------- public */

static void
s_destroy(mdns_t *self)
{
    if (self->poll) {
        /* Joins the loop thread (a no-op if it never started): from here on
         * this thread alone owns every Avahi object and the socket. */
        avahi_threaded_poll_stop(self->poll);
        if (self->client) {
            avahi_client_free(self->client);
        }
        if (self->tick) {
            avahi_threaded_poll_get(self->poll)->timeout_free(self->tick);
        }
        avahi_threaded_poll_free(self->poll);
    }
    zhashx_destroy(&self->seen);
    zhashx_destroy(&self->pending);
    zsock_destroy(&self->report);
    if (self->keys) {
        sodium_free(self->keys); /* wipes them */
    }
    free(self);
}

/*  The mDNS keys of n secrets into keys (BLIND_KEYS_MAX rows); 0 or a code. */
static int
s_derive(uint8_t (*keys)[BLIND_KEY_LEN], const uint8_t (*secrets)[BLIND_KEY_LEN], size_t n)
{
    if (n > BLIND_KEYS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (n > 0 && !secrets) {
        return PARLEY_ERR_STATE;
    }
    for (size_t i = 0; i < n; i++) {
        int rc = blind_key(secrets[i], keys[i]);
        if (rc != PARLEY_OK) {
            sodium_memzero(keys, BLIND_KEYS_MAX * BLIND_KEY_LEN);
            return rc;
        }
    }
    return PARLEY_OK;
}

mdns_t *
mdns_new(const mdns_config_t *cfg)
{
    /* sodium_init is idempotent and thread-safe; the id check needs it. */
    if (!cfg || !cfg->node_id || !cfg->tag || !cfg->report_endpoint || cfg->port == 0
        || sodium_init() < 0) {
        return NULL;
    }
    mdns_t *self = zmalloc(sizeof *self);
    if (!self) {
        return NULL;
    }
    if (txt_encode(cfg->node_id, cfg->tag, &self->txt) != PARLEY_OK) {
        free(self);
        return NULL;
    }
    /* The encoder wrote the id in canonical (lower) case: use that one. */
    snprintf(self->node_id, sizeof self->node_id, "%s", self->txt.items[2] + 3);
    self->log = cfg->log;
    self->log_arg = cfg->log_arg;
    self->port = cfg->port;
    self->keys = sodium_malloc(BLIND_KEYS_MAX * BLIND_KEY_LEN);
    if (!self->keys || identity_parse_node_id(self->node_id, self->ed_pk) != PARLEY_OK
        || s_derive(self->keys, cfg->keys, cfg->n_keys) != PARLEY_OK) {
        s_destroy(self);
        return NULL;
    }
    self->n_keys = cfg->n_keys;
    self->hushed = cfg->hush && cfg->n_keys == 0;
    self->seen = zhashx_new();
    self->pending = zhashx_new();
    self->report = zsock_new(ZMQ_PUSH);
    if (!self->seen || !self->pending || !self->report) {
        s_destroy(self);
        return NULL;
    }
    zhashx_set_destructor(self->seen, (zhashx_destructor_fn *)zstr_free);
    zsock_set_sndhwm(self->report, S_REPORT_HWM);
    zsock_set_sndtimeo(self->report, 0);
    zsock_set_linger(self->report, 0);
    if (zsock_connect(self->report, "%s", cfg->report_endpoint) != 0) {
        s_destroy(self);
        return NULL;
    }
    s_name(self); /* reports it: the socket is ours until the loop starts */
    if (self->hushed) {
        s_log(self, "joining a private network: silent until its secret arrives");
    } else if (self->n_keys > 0) {
        s_log(self, "private network: announcing blinded as %s (%zu keys)", self->name,
              self->n_keys);
    }
    self->poll = avahi_threaded_poll_new();
    if (!self->poll) {
        s_destroy(self);
        return NULL;
    }
    const AvahiPoll *api = avahi_threaded_poll_get(self->poll);
    struct timeval tv;
    self->tick = api->timeout_new(api, avahi_elapse_time(&tv, 0, 0), s_tick, self);
    if (!self->tick || avahi_threaded_poll_start(self->poll) < 0) {
        s_destroy(self);
        return NULL;
    }
    return self;
}

int
mdns_set_keys(mdns_t *self, const uint8_t (*secrets)[BLIND_KEY_LEN], size_t n)
{
    if (!self || !self->poll || !self->tick) {
        return PARLEY_ERR_STATE;
    }
    uint8_t keys[BLIND_KEYS_MAX][BLIND_KEY_LEN] = { { 0 } }; /* unused rows stay zero */
    int rc = s_derive(keys, secrets, n);
    if (rc != PARLEY_OK) {
        return rc;
    }
    /* The loop thread holds this lock whenever it runs our callbacks: while
     * we hold it, nothing reads the keys. */
    avahi_threaded_poll_lock(self->poll);
    memcpy(self->keys, keys, sizeof keys);
    self->n_keys = n;
    self->hushed = false;
    self->rekey = true;
    struct timeval tv;
    avahi_threaded_poll_get(self->poll)->timeout_update(self->tick, avahi_elapse_time(&tv, 0, 0));
    avahi_threaded_poll_unlock(self->poll);
    sodium_memzero(keys, sizeof keys);
    return PARLEY_OK;
}

int
mdns_hush(mdns_t *self)
{
    if (!self || !self->poll || !self->tick) {
        return PARLEY_ERR_STATE;
    }
    avahi_threaded_poll_lock(self->poll);
    sodium_memzero(self->keys, BLIND_KEYS_MAX * BLIND_KEY_LEN);
    self->n_keys = 0;
    self->hushed = true;
    self->rekey = true;
    struct timeval tv;
    avahi_threaded_poll_get(self->poll)->timeout_update(self->tick, avahi_elapse_time(&tv, 0, 0));
    avahi_threaded_poll_unlock(self->poll);
    return PARLEY_OK;
}

void
mdns_destroy(mdns_t **self_p)
{
    if (self_p && *self_p) {
        s_destroy(*self_p);
        *self_p = NULL;
    }
}

/* --------------------------------------------------------------- self-test */

/*  Receives one report into parts[]; returns the number of parts (0 on
 *  timeout). The caller frees the parts with zstr_free. */
static int
s_recv(zsock_t *pull, char *parts[4])
{
    for (int i = 0; i < 4; i++) {
        parts[i] = NULL;
    }
    zmsg_t *msg = zmsg_recv(pull);
    if (!msg) {
        return 0;
    }
    int n = 0;
    char *s;
    while ((s = zmsg_popstr(msg)) != NULL) {
        if (n < 4) {
            parts[n++] = s;
        } else {
            zstr_free(&s);
            n++;
        }
    }
    zmsg_destroy(&msg);
    return n;
}

static void
s_free_parts(char *parts[4])
{
    for (int i = 0; i < 4; i++) {
        zstr_free(&parts[i]);
    }
}

/*  A report a source without D-Bus may make: its name, or STATUS down. */
static bool
s_down_or_name(char *parts[4])
{
    return (streq(parts[0], "NAME") && streq(parts[1], "mdns") && parts[2] && !parts[3])
           || (streq(parts[0], "STATUS") && streq(parts[1], "mdns") && streq(parts[2], "down"));
}

void
mdns_test(bool verbose)
{
    if (verbose) {
        printf(" * mdns: bad configs and keys, no D-Bus: one STATUS down, quiet retries, keys "
               "changed at run time, clean stop\n");
    }
    CHECK(sodium_init() >= 0);
    identity_t *me = identity_new();
    CHECK(me);
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(me), id);
    identity_destroy(&me);

    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://mdns-test-%p", (void *)endpoint);
    zsock_t *pull = zsock_new(ZMQ_PULL);
    CHECK(pull);
    CHECK(zsock_bind(pull, "%s", endpoint) == 0);

    /* Configurations that must be refused before anything starts. */
    mdns_config_t bad[] = {
        { "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 7000, "open", endpoint },
        { "notanid", 7000, "open", endpoint },
        { id, 0, "open", endpoint },
        { id, 7000, NULL, endpoint },
        { id, 7000, "bad\ttag", endpoint },
        { id, 7000, "open", NULL },
        { id, 7000, "open", "nosuch://x" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mdns_t *m = mdns_new(&bad[i]);
        CHECK(m == NULL);
    }
    CHECK(mdns_new(NULL) == NULL);
    /* Keys: more than four, an all-zero secret, a count without keys. */
    uint8_t secrets[BLIND_KEYS_MAX + 1][32];
    randombytes_buf(secrets, sizeof secrets);
    mdns_config_t keyed = { id, 7000, "open", endpoint, NULL, NULL, secrets, BLIND_KEYS_MAX + 1 };
    CHECK(mdns_new(&keyed) == NULL);
    keyed.n_keys = 0;
    keyed.keys = NULL;
    keyed.n_keys = 2;
    CHECK(mdns_new(&keyed) == NULL);
    uint8_t zero[2][32] = { { 0 } };
    keyed.keys = (const uint8_t(*)[32])zero;
    CHECK(mdns_new(&keyed) == NULL);
    CHECK(mdns_set_keys(NULL, (const uint8_t(*)[32])secrets, 1) == PARLEY_ERR_STATE);
    CHECK(mdns_hush(NULL) == PARLEY_ERR_STATE);
    mdns_destroy(NULL);
    mdns_t *none = NULL;
    mdns_destroy(&none);

    /* No D-Bus reachable. libdbus reads DBUS_SYSTEM_BUS_ADDRESS once per
     * process, at its first use: this test must run before anything else
     * in the process talks to the system bus (the self-test runners do). */
    const char *old = getenv("DBUS_SYSTEM_BUS_ADDRESS");
    char *saved = old ? strdup(old) : NULL;
    CHECK(!old || saved);
    CHECK(setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/parley-mdns-test/bus", 1) == 0);

    mdns_config_t cfg = { id, 7000, "open", endpoint };
    /* Stopped at once, before or while its thread runs its first tick. */
    for (int i = 0; i < 3; i++) {
        mdns_t *m = mdns_new(&cfg);
        CHECK(m);
        mdns_destroy(&m);
        CHECK(m == NULL);
    }
    /* Drain what those said; they may or may not have had time to. */
    zsock_set_rcvtimeo(pull, 200);
    char *parts[4];
    while (s_recv(pull, parts) > 0) {
        CHECK(s_down_or_name(parts));
        s_free_parts(parts);
    }

    /* Open mode: the name says our id, then the source says it is down. */
    char open_name[64];
    snprintf(open_name, sizeof open_name, "parley-%.16s", id);
    mdns_t *m = mdns_new(&cfg);
    CHECK(m);
    zsock_set_rcvtimeo(pull, 5000);
    CHECK(s_recv(pull, parts) == 3);
    CHECK(streq(parts[0], "NAME") && streq(parts[1], "mdns") && streq(parts[2], open_name));
    s_free_parts(parts);
    CHECK(s_recv(pull, parts) == 4);
    if (verbose) {
        printf("   %s %s %s \"%s\"\n", parts[0], parts[1], parts[2], parts[3]);
    }
    CHECK(streq(parts[0], "STATUS") && streq(parts[1], "mdns") && streq(parts[2], "down"));
    CHECK(strlen(parts[3]) > 0);
    s_free_parts(parts);
    /* At least one retry happens in this window, and says nothing. */
    zsock_set_rcvtimeo(pull, (int)(S_TICK_MS + S_TICK_MS / 4));
    CHECK(s_recv(pull, parts) == 0);
    /* Keys at run time, from this thread while the loop runs: refused
     * inputs change nothing; good ones (and back to none) apply at once,
     * still quietly without D-Bus. */
    CHECK(mdns_set_keys(m, (const uint8_t(*)[32])secrets, BLIND_KEYS_MAX + 1) == PARLEY_ERR_LIMIT);
    CHECK(mdns_set_keys(m, (const uint8_t(*)[32])zero, 1) == PARLEY_ERR_MALFORMED);
    CHECK(mdns_set_keys(m, NULL, 1) == PARLEY_ERR_STATE);
    for (size_t n = 0; n <= BLIND_KEYS_MAX; n++) {
        CHECK(mdns_set_keys(m, (const uint8_t(*)[32])secrets, n) == PARLEY_OK);
        CHECK(mdns_set_keys(m, NULL, 0) == PARLEY_OK);
        CHECK(mdns_hush(m) == PARLEY_OK); // and out of it by the next keys
    }
    CHECK(mdns_set_keys(m, (const uint8_t(*)[32])secrets, 2) == PARLEY_OK);
    /* Only new names, the last one random (blinded); no STATUS. */
    zsock_set_rcvtimeo(pull, 500);
    size_t names = 0;
    char last[64] = "";
    while (s_recv(pull, parts) > 0) {
        CHECK(streq(parts[0], "NAME") && streq(parts[1], "mdns") && parts[2]);
        snprintf(last, sizeof last, "%s", parts[2]);
        s_free_parts(parts);
        names++;
    }
    CHECK(names >= 1 && strlen(last) == BLIND_NAME_LEN && !streq(last, open_name));
    mdns_destroy(&m);
    /* Started with keys. */
    keyed.keys = (const uint8_t(*)[32])secrets;
    keyed.n_keys = BLIND_KEYS_MAX;
    m = mdns_new(&keyed);
    CHECK(m);
    mdns_destroy(&m);
    zsock_set_rcvtimeo(pull, 200);
    while (s_recv(pull, parts) > 0) {
        CHECK(s_down_or_name(parts));
        s_free_parts(parts);
    }
    sodium_memzero(secrets, sizeof secrets);
    CHECK(m == NULL);

    if (saved) {
        CHECK(setenv("DBUS_SYSTEM_BUS_ADDRESS", saved, 1) == 0);
        free(saved);
    } else {
        CHECK(unsetenv("DBUS_SYSTEM_BUS_ADDRESS") == 0);
    }
    zsock_destroy(&pull);
}
