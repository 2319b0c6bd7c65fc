/*  node/session.c — see session.h. */
#include "session.h"

#include "../proto/frame.h"
#include <inttypes.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/*  One entry of the DM-scope cache. */
typedef struct {
    uint8_t author[32];
    uint8_t scope[32]; /* our DM scope with author */
    bool used;
} s_dmc_t;

struct session {
    core_t *core;              /* borrowed */
    links_t *links;            /* borrowed */
    store_own_prekey_t prekey; /* our current signed prekey (public part), cached */
    bool has_prekey;           /* prekey is loaded */
    s_dmc_t *dmc; /* hash table (open addressing, SipHash of the author), cap_dmc a power of 2 */
    size_t n_dmc, cap_dmc;
    uint8_t dmc_key[crypto_shorthash_KEYBYTES];
};

session_t *
session_new(core_t *core, links_t *links)
{
    session_t *self = calloc(1, sizeof *self);
    if (self) {
        self->core = core;
        self->links = links;
        randombytes_buf(self->dmc_key, sizeof self->dmc_key);
    }
    return self;
}

void
session_destroy(session_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    session_t *self = *self_p;
    free(self->dmc);
    free(self);
    *self_p = NULL;
}

/* ---- our prekeys ---- */

int
session_rotate(session_t *self, uint64_t now, bool *rotated)
{
    *rotated = false;
    core_t *core = self->core;
    if (!self->has_prekey) {
        int rc = store_own_prekey_current(core->store, &self->prekey);
        if (rc != PARLEY_OK && rc != PARLEY_ERR_NOTFOUND) {
            return rc;
        }
        self->has_prekey = rc == PARLEY_OK;
    }
    if (self->has_prekey && now < self->prekey.pub.created_ms + core->cfg.prekey_rotate_ms) {
        return PARLEY_OK;
    }
    uint64_t next_id = self->has_prekey ? (uint64_t)self->prekey.pub.spk_id + 1 : 1;
    //  After a lost database (store_log.c, "Sequence numbers") our old ids
    //  are unknown, and peers keep a bundle only for a higher id: ids go on
    //  from the loss's time in seconds, above every id counted up from 1 by
    //  one rotation at a time before it.
    uint64_t floor = 0;
    int frc = store_meta_get(core->store, "seq_floor", &floor);
    if (frc != PARLEY_OK && frc != PARLEY_ERR_NOTFOUND) {
        return frc;
    }
    if (floor / 1000 > next_id && floor / 1000 <= UINT32_MAX) {
        next_id = floor / 1000;
    }
    if (next_id > UINT32_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    store_own_prekey_t fresh;
    uint8_t secret[32];
    memset(&fresh, 0, sizeof fresh);
    int rc = core_txn(core);
    if (rc == PARLEY_OK) {
        rc = dm_prekey_generate(identity_ed_pk(core->id), (uint32_t)next_id, now, &fresh.pub,
                                secret);
    }
    if (rc == PARLEY_OK) {
        rc = dm_prekey_encode(&fresh.pub, identity_ed_sk(core->id), fresh.bundle);
    }
    if (rc == PARLEY_OK) {
        rc = store_own_prekey_add(core->store, &fresh, secret, now);
    }
    sodium_memzero(secret, sizeof secret);
    if (rc != PARLEY_OK) {
        return rc;
    }
    self->prekey = fresh;
    self->has_prekey = true;
    *rotated = true;
    log_write(&core->log, LOG_LEVEL_DEBUG, "new signed prekey %" PRIu32, fresh.pub.spk_id);
    return PARLEY_OK;
}

void
session_rollback(session_t *self)
{
    self->has_prekey = false; // reloaded from the store when next needed (s_load)
}

//  Our current prekey into the cache, after a rollback dropped it.
static void
s_load(session_t *self)
{
    if (!self->has_prekey
        && store_own_prekey_current(self->core->store, &self->prekey) == PARLEY_OK) {
        self->has_prekey = true;
    }
}

bool
session_wipe(session_t *self, uint64_t now)
{
    core_t *core = self->core;
    bool wiped = false;
    size_t n = 0;
    uint64_t cutoff = now > core->cfg.grace_ms ? now - core->cfg.grace_ms : 0;
    if (core_txn(core) != PARLEY_OK) {
        return false;
    }
    if (store_own_prekey_wipe(core->store, cutoff, &n) == PARLEY_OK && n > 0) {
        wiped = true;
    }
    uint32_t floor_day = core_day(core, cutoff);
    store_recv_session_t *rs = NULL;
    size_t n_rs = 0;
    if (store_recv_session_list(core->store, &rs, &n_rs) == PARLEY_OK) {
        for (size_t i = 0; i < n_rs; i++) {
            if (rs[i].base_day < floor_day
                && dm_chain_advance(rs[i].key, rs[i].base_day, floor_day) == PARLEY_OK) {
                rs[i].base_day = floor_day;
                wiped = store_recv_session_put(core->store, &rs[i]) == PARLEY_OK || wiped;
            }
        }
        sodium_memzero(rs, n_rs * sizeof *rs);
        free(rs);
    }
    uint32_t today = core_day(core, now);
    for (size_t i = 0; i < links_count(self->links); i++) {
        store_send_session_t s;
        if (store_send_session_get(core->store, link_pk(links_at(self->links, i)), &s) == PARLEY_OK
            && s.day < today && dm_chain_advance(s.key, s.day, today) == PARLEY_OK) {
            s.day = today;
            wiped = store_send_session_put(core->store, &s) == PARLEY_OK || wiped;
        }
        sodium_memzero(&s, sizeof s);
    }
    return wiped;
}

/* ---- the DM-scope cache ---- */

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
s_dmc_put(session_t *self, const uint8_t author[32], const uint8_t scope[32])
{
    if (self->n_dmc >= SESSION_DMC_MAX) {
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

bool
session_dm_scope_cached(const session_t *self, const uint8_t author[32], uint8_t scope[32])
{
    if (self->cap_dmc == 0) {
        return false;
    }
    const s_dmc_t *e = s_dmc_slot(self->dmc, self->cap_dmc, self->dmc_key, author);
    if (e->used) {
        memcpy(scope, e->scope, 32);
    }
    return e->used;
}

bool
session_dm_scope(session_t *self, const uint8_t author[32], uint8_t scope[32])
{
    if (sodium_memcmp(author, identity_ed_pk(self->core->id), 32) == 0) {
        return false;
    }
    if (session_dm_scope_cached(self, author, scope)) {
        return true;
    }
    if (dm_scope(self->core->id, author, scope) != PARLEY_OK) {
        return false; // a key that is no valid point: no scope with it
    }
    s_dmc_put(self, author, scope);
    return true;
}

/* ---- sessions ---- */

int
session_send_key(session_t *self, const uint8_t peer[32], const prekey_t *spk, uint32_t today,
                 dm_header_t *h, uint8_t key[32])
{
    store_t *store = self->core->store;
    store_send_session_t s;
    int rc = store_send_session_get(store, peer, &s);
    if (rc == PARLEY_OK && s.spk_id == spk->spk_id && s.day <= today) {
        if (s.day < today) {
            rc = dm_chain_advance(s.key, s.day, today);
            s.day = today;
        }
    } else if (rc == PARLEY_OK || rc == PARLEY_ERR_NOTFOUND) {
        memset(&s, 0, sizeof s);
        memcpy(s.peer, peer, 32);
        s.spk_id = spk->spk_id;
        s.day0 = today;
        s.day = today;
        rc = dm_x3dh_initiate(self->core->id, peer, spk, s.ek_pub, s.key);
    }
    if (rc == PARLEY_OK) {
        rc = store_send_session_put(store, &s);
    }
    if (rc == PARLEY_OK) {
        memcpy(h->ek_pub, s.ek_pub, 32);
        h->spk_id = s.spk_id;
        h->day0 = s.day0;
        h->day = s.day;
        memcpy(key, s.key, 32);
    }
    sodium_memzero(&s, sizeof s);
    return rc;
}

int
session_recv_key(session_t *self, const uint8_t peer[32], const dm_header_t *h, uint8_t key[32],
                 bool *opened)
{
    core_t *core = self->core;
    store_recv_session_t s;
    int rc = store_recv_session_get(core->store, peer, h->ek_pub, &s);
    *opened = rc == PARLEY_ERR_NOTFOUND;
    if (rc == PARLEY_ERR_NOTFOUND) {
        uint8_t spk_secret[32];
        uint64_t created_ms = 0;
        memset(&s, 0, sizeof s);
        //  A session whose start is already past the grace window opens
        //  nothing older than the window either: a day before it is refused
        //  here, before the ratchet to the window would be spent on it.
        uint64_t now = core_now(core);
        uint32_t floor_day =
            core_day(core, now > core->cfg.grace_ms ? now - core->cfg.grace_ms : 0);
        rc = h->day < floor_day ? PARLEY_ERR_NOKEY : PARLEY_OK;
        if (rc == PARLEY_OK) {
            rc = store_own_prekey_secret(core->store, h->spk_id, spk_secret, &created_ms);
        }
        //  The work below is about day - day0 hashes. An honest sender opened
        //  the session on a day (by its clock, within the skew of ours) when
        //  this prekey already existed; an earlier day0 is a forged header
        //  asking for up to ~20,000 hashes (day0 = 0). Honest work is thus
        //  bounded by our prekey's age: rotation plus grace, ~21 days, while
        //  the node runs. Not the envelope's time less grace: a recipient
        //  away for weeks keeps its prekey, and a sender its session.
        if (rc == PARLEY_OK
            && h->day0 < core_day(core, created_ms > PARLEY_FUTURE_SKEW_MS
                                            ? created_ms - PARLEY_FUTURE_SKEW_MS
                                            : 0)) {
            rc = PARLEY_ERR_MALFORMED;
        }
        if (rc == PARLEY_OK) {
            rc = dm_x3dh_respond(core->id, peer, spk_secret, h->spk_id, h->ek_pub, s.key);
        }
        sodium_memzero(spk_secret, sizeof spk_secret);
        memcpy(s.peer, peer, 32);
        memcpy(s.ek_pub, h->ek_pub, 32);
        s.spk_id = h->spk_id;
        s.day0 = h->day0;
        s.base_day = h->day0;
        if (rc == PARLEY_OK && s.base_day < floor_day) {
            rc = dm_chain_advance(s.key, s.base_day, floor_day);
            s.base_day = floor_day;
        }
    }
    if (rc == PARLEY_OK && h->day < s.base_day) {
        rc = PARLEY_ERR_NOKEY; // that day's key was destroyed: forward secrecy at work
    }
    if (rc == PARLEY_OK) {
        memcpy(key, s.key, 32);
        rc = dm_chain_advance(key, s.base_day, h->day);
    }
    //  Only the per-peer trim reads last_used_ms, to keep the sessions used
    //  most recently: a minute's precision spares a write with every message.
    uint64_t now = core_now(core);
    if (rc == PARLEY_OK
        && (*opened || now >= s.last_used_ms + SESSION_TOUCH_MS || now < s.last_used_ms)) {
        s.last_used_ms = now;
        rc = store_recv_session_put(core->store, &s);
    }
    if (rc != PARLEY_OK) {
        sodium_memzero(key, 32);
    }
    sodium_memzero(&s, sizeof s);
    return rc;
}

int
session_recv_forget(session_t *self, const uint8_t peer[32], const uint8_t ek_pub[32])
{
    return store_recv_session_delete(self->core->store, peer, ek_pub);
}

/* ---- bundles ---- */

int
session_on_bundle(session_t *self, const uint8_t *bundle, size_t len, uint8_t owner[32],
                  bool *changed)
{
    core_t *core = self->core;
    prekey_t pk;
    *changed = false;
    //  The bundle we hold for its owner (bytes 1..32, SPEC §6.2), byte for
    //  byte: verified when it was kept, nothing to check or write again.
    //  Peers send theirs on every new connection and relays with what they
    //  forward, so this is the common case; a read costs a few µs, a
    //  signature check tens.
    uint8_t held[DM_PREKEY_BUNDLE_LEN];
    if (len == DM_PREKEY_BUNDLE_LEN
        && store_peer_prekey_bundle(core->store, bundle + 1, held) == PARLEY_OK
        && memcmp(held, bundle, DM_PREKEY_BUNDLE_LEN) == 0) {
        memcpy(owner, bundle + 1, 32);
        return PARLEY_OK;
    }
    int rc = dm_prekey_decode(bundle, len, &pk);
    if (rc != PARLEY_OK) {
        return rc;
    }
    memcpy(owner, pk.owner, 32);
    if (sodium_memcmp(pk.owner, identity_ed_pk(core->id), 32) == 0) {
        return PARLEY_ERR_EXISTS;
    }
    //  Dated ahead of our clock beyond the skew: refused, as an envelope
    //  would be. Bundles are handed out newest first at link-up, so a future
    //  date would push every real bundle out and stay on top for good (and
    //  above INT64_MAX it cannot even be stored). An old date is not refused:
    //  an offline node's current bundle is legitimately old, and the date only
    //  ranks the hand-out, where an old one goes last and harms only its
    //  signer. Which bundle is newer is the owner's spk_id (store_keys.c).
    uint64_t now = core_now(core);
    if (pk.created_ms > now && pk.created_ms - now > PARLEY_FUTURE_SKEW_MS) {
        return PARLEY_ERR_FUTURE;
    }
    //  A peer's bundle promises nothing to anyone: lost to a power cut, it
    //  comes again with the next connection (core_txn_ingest).
    rc = core_txn_ingest(core);
    if (rc == PARLEY_OK) {
        rc = store_peer_prekey_put(core->store, &pk, bundle, changed);
    }
    if (rc != PARLEY_OK) {
        //  Not a peer's fault: this iteration is retried, and the bundle
        //  comes again before the peer's next batch.
        core_txn_fail(core, rc, "cannot keep a prekey bundle");
    }
    return rc;
}

void
session_send_bundle(session_t *self, link_t *link, const uint8_t *bundle)
{
    uint8_t buf[DM_PREKEY_BUNDLE_LEN + 64];
    size_t len = 0;
    if (frame_encode_prekey(bundle, DM_PREKEY_BUNDLE_LEN, buf, sizeof buf, &len) == PARLEY_OK) {
        (void)links_send(self->links, link, buf, len); // lost: sent again before the next batch
    }
}

void
session_send_own(session_t *self, link_t *link)
{
    //  Sent before every envelope batch: from memory, not the database
    //  (but for the first time after a rollback).
    s_load(self);
    if (self->has_prekey) {
        session_send_bundle(self, link, self->prekey.bundle);
    }
}

void
session_send_bundles(session_t *self, link_t *link, const uint8_t (*authors)[32], size_t n)
{
    const uint8_t *me = identity_ed_pk(self->core->id);
    for (size_t i = 0; i < n; i++) {
        uint8_t bundle[DM_PREKEY_BUNDLE_LEN];
        if (memcmp(authors[i], link_pk(link), 32) == 0) {
            continue; // its own
        }
        if (memcmp(authors[i], me, 32) == 0) {
            session_send_own(self, link);
        } else if (store_peer_prekey_bundle(self->core->store, authors[i], bundle) == PARLEY_OK) {
            session_send_bundle(self, link, bundle);
        } // else we never had it: the receiver waits for another path
    }
}

void
session_send_held(session_t *self, link_t *link)
{
    uint8_t *bundles = malloc((size_t)SESSION_BUNDLES_PASSED * DM_PREKEY_BUNDLE_LEN);
    size_t n = 0;
    if (bundles
        && store_peer_prekey_recent(self->core->store, core_now(self->core) + PARLEY_FUTURE_SKEW_MS,
                                    SESSION_BUNDLES_PASSED, bundles, &n)
               == PARLEY_OK) {
        for (size_t i = 0; i < n; i++) {
            const uint8_t *b = bundles + i * DM_PREKEY_BUNDLE_LEN;
            if (memcmp(b + 1, link_pk(link), 32) != 0) { // owner at offset 1: not its own
                session_send_bundle(self, link, b);
            }
        }
    }
    free(bundles);
}
