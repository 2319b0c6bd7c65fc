/*  node/core.c — see core.h. */
#include "core.h"

#include "api_req.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *const core_counter_names[C_COUNTERS] = {
    "oversize",     "malformed",      "bad_signature",
    "future",       "expired",        "unsupported",
    "equivocation", "not_ours",       "undecryptable",
    "bad_frame",    "no_hello",       "bad_hello",
    "zap_denied",   "bad_prekey",     "duplicate",
    "bad_address",  "banned",         "forged_receipt",
    "rolled_back",  "store_error",    "undecryptable_dropped",
    "relay_quota",  "scope_cap",      "peer_evicted",
    "peer_refused", "record_dropped", "dial_dropped",
    "not_member",
};

int
core_init(core_t *self, const node_config_t *cfg)
{
    memset(self, 0, sizeof *self);
    self->cfg = *cfg;
    snprintf(self->home, sizeof self->home, "%s", cfg->home ? cfg->home : "");
    self->cfg.home = NULL;
    self->cfg.listen = NULL;
    self->cfg.runtime_dir = NULL;
    self->cfg.n_seeds = 0;       // seeds and these strings are read once, in node_new
    self->cfg.passphrase = NULL; // the caller's buffer: used once at open, never kept
    self->cfg.pass_len = 0;
    self->clock = cfg->clock;
    self->clock_arg = cfg->clock_arg;
    log_init(&self->log, cfg->verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "");
    self->notes = json_array();
    self->received = json_array();
    return self->notes && self->received ? PARLEY_OK : PARLEY_ERR_NOMEM;
}

void
core_fini(core_t *self)
{
    core_discard(self);
    for (size_t i = 0; i < self->n_replies; i++) {
        json_decref(self->replies[i].reply);
    }
    free(self->replies);
    free(self->out);
    free(self->arena);
    json_decref(self->notes);
    json_decref(self->received);
    memset(self, 0, sizeof *self);
}

void
core_msg_id(const core_t *self, uint8_t id[STORE_MSG_ID_LEN])
{
    _Static_assert(STORE_MSG_ID_LEN >= 14, "6 bytes of time and 8 random");
    uint64_t now = core_now(self);
    for (int i = 0; i < 6; i++) {
        id[i] = (uint8_t)(now >> (8 * (5 - i)));
    }
    randombytes_buf(id + 6, STORE_MSG_ID_LEN - 6);
}

uint64_t
core_now(const core_t *self)
{
    if (self->clock) {
        return self->clock(self->clock_arg);
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint32_t
core_day(const core_t *self, uint64_t ms)
{
    uint64_t d = ms / self->cfg.ratchet_ms;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

void
core_wake_at(core_t *self, uint64_t at_ms)
{
    if (at_ms < self->wake_at) {
        self->wake_at = at_ms;
    }
}

int
core_txn(core_t *self)
{
    self->sync_wanted = true;
    return core_txn_ingest(self);
}

int
core_txn_ingest(core_t *self)
{
    if (store_in_txn(self->store)) {
        return PARLEY_OK;
    }
    return store_begin_split(self->store);
}

int
core_txn_relaxed(core_t *self)
{
    if (store_in_txn(self->store)) {
        return PARLEY_OK;
    }
    return store_begin_relaxed(self->store);
}

void
core_txn_fail(core_t *self, int rc, const char *what)
{
    if (!self->txn_failed) {
        log_write(&self->log, LOG_LEVEL_WARN, "%s: %s; this iteration is rolled back and retried",
                  what, parley_strerror(rc));
        self->txn_rc = rc;
    }
    self->counters[C_STORE_ERROR]++;
    self->txn_failed = true;
}

bool
core_key_search(const void *arr, size_t n, size_t elem, const uint8_t pk[32], size_t *at)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp((const uint8_t *)arr + mid * elem, pk, 32);
        if (c == 0) {
            *at = mid;
            return true;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *at = lo;
    return false;
}

int
core_key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

size_t
core_ring(const uint8_t *keys, size_t n, size_t elem, const uint8_t me[32], size_t side,
          size_t *out)
{
    size_t at = 0;
    (void)core_key_search(keys, n, elem, me, &at); // me is not among them: where it would go
    if (n <= 2 * side) {
        for (size_t i = 0; i < n; i++) {
            out[i] = i;
        }
        return n;
    }
    size_t k = 0;
    for (size_t j = 0; j < side; j++) {
        out[k++] = (at + j) % n;         // the next ones
        out[k++] = (at + n - 1 - j) % n; // the previous ones
    }
    return k;
}

json_t *
core_json_id(const uint8_t pk[32])
{
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(pk, id);
    return json_string(id);
}

json_t *
core_json_short_id(const uint8_t pk[32])
{
    char sid[PARLEY_SHORT_ID_STRLEN + 1];
    identity_short_id(pk, sid);
    return json_string(sid);
}

void
core_notify(core_t *self, const char *method, json_t *params)
{
    json_t *note = api_notification(method, params);
    if (note) {
        json_array_append_new(self->notes, note);
    }
}

void
core_notify_received(core_t *self, const char *method, json_t *params)
{
    json_t *note = api_notification(method, params);
    if (note) {
        json_array_append_new(self->received, note);
    }
}

void
core_reply(core_t *self, uint64_t client, json_t *reply)
{
    if (!reply) {
        return;
    }
    if (self->n_replies == self->cap_replies) {
        size_t cap = self->cap_replies ? 2 * self->cap_replies : 64;
        core_reply_t *grown = realloc(self->replies, cap * sizeof *grown);
        if (!grown) {
            json_decref(reply); // the client sees its connection stall, never a false reply
            return;
        }
        self->replies = grown;
        self->cap_replies = cap;
    }
    self->replies[self->n_replies].client = client;
    self->replies[self->n_replies].reply = reply;
    self->n_replies++;
}

static core_out_t *
s_out_add(core_t *self, link_t *link)
{
    if (self->n_out >= CORE_OUT_MAX) {
        return NULL; // an ACK the peer resends for; a push sync repairs
    }
    if (self->n_out == self->cap_out) {
        size_t cap = self->cap_out ? 2 * self->cap_out : 256;
        core_out_t *grown = realloc(self->out, cap * sizeof *grown);
        if (!grown) {
            return NULL;
        }
        self->out = grown;
        self->cap_out = cap;
    }
    core_out_t *o = &self->out[self->n_out];
    memset(o, 0, sizeof *o);
    o->link = link;
    o->seq = (uint32_t)self->n_out++;
    return o;
}

void
core_ack(core_t *self, link_t *link, const uint8_t id[32])
{
    core_out_t *o = s_out_add(self, link);
    if (o) {
        o->ack = true;
        memcpy(o->id, id, 32);
    }
}

uint32_t
core_stage(core_t *self, const uint8_t *env, size_t len)
{
    if (len > CORE_ARENA_MAX - self->arena_len) {
        return CORE_STAGED_NONE;
    }
    if (self->arena_len + len > self->arena_cap) {
        size_t cap = self->arena_cap ? self->arena_cap : 256u * 1024u;
        while (cap < self->arena_len + len) {
            cap *= 2;
        }
        uint8_t *grown = realloc(self->arena, cap);
        if (!grown) {
            return CORE_STAGED_NONE;
        }
        self->arena = grown;
        self->arena_cap = cap;
    }
    uint32_t at = (uint32_t)self->arena_len;
    memcpy(self->arena + at, env, len);
    self->arena_len += len;
    return at;
}

void
core_push(core_t *self, link_t *link, uint32_t staged, size_t len)
{
    if (staged == CORE_STAGED_NONE) {
        return;
    }
    core_out_t *o = s_out_add(self, link);
    if (o) {
        o->staged = staged;
        o->len = (uint32_t)len;
    }
}

const uint8_t *
core_staged(const core_t *self, uint32_t staged)
{
    return self->arena + staged;
}

static int
s_out_cmp(const void *a, const void *b)
{
    const core_out_t *x = a, *y = b;
    if (x->link != y->link) {
        return (uintptr_t)x->link < (uintptr_t)y->link ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void
core_out_sort(core_t *self)
{
    if (self->n_out > 1) {
        qsort(self->out, self->n_out, sizeof *self->out, s_out_cmp);
    }
}

void
core_clear(core_t *self)
{
    json_array_clear(self->notes);
    json_array_clear(self->received);
    for (size_t i = 0; i < self->n_replies; i++) {
        json_decref(self->replies[i].reply);
    }
    self->n_replies = 0;
    self->n_out = 0;
    self->arena_len = 0;
    self->txn_failed = false;
    self->txn_rc = PARLEY_OK;
    self->sync_wanted = false;
}

//  The error that replaces a response of a rolled-back iteration. A
//  damaged file fails the same way on every retry: then it says so, and
//  what to do, rather than "retry".
static json_t *
s_discarded(const json_t *old, bool damaged, bool unsynced)
{
    if (unsynced) {
        //  Written, not known to be on the disk: neither "stored" nor "not".
        return api_error_parley(json_object_get(old, "id"), PARLEY_ERR_IO,
                                "not known to be stored: " CORE_UNSYNCED_HINT);
    }
    if (damaged) {
        return api_error_parley(json_object_get(old, "id"), PARLEY_ERR_CORRUPT,
                                "nothing was stored: " CORE_DAMAGED_HINT);
    }
    return api_error_parley(json_object_get(old, "id"), PARLEY_ERR_IO,
                            "nothing was stored: the database refused this transaction; retry");
}

void
core_discard(core_t *self)
{
    bool damaged = self->txn_rc == PARLEY_ERR_CORRUPT;
    bool unsynced = self->sync_failed;
    json_array_clear(self->notes);
    json_array_clear(self->received);
    self->n_out = 0;
    self->arena_len = 0;
    self->txn_failed = false;
    self->txn_rc = PARLEY_OK;
    for (size_t i = 0; i < self->n_replies; i++) {
        json_t *old = self->replies[i].reply;
        if (json_is_array(old)) {
            //  A batch's answer: each response in it becomes the error.
            for (size_t k = 0; k < json_array_size(old); k++) {
                json_array_set_new(old, k, s_discarded(json_array_get(old, k), damaged, unsynced));
            }
            continue;
        }
        self->replies[i].reply = s_discarded(old, damaged, unsynced);
        json_decref(old);
    }
}
