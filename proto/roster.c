/*  proto/roster.c — network event codec, JOIN proofs and the roster fold.
 *
 *  The codec is allocation-free: a decoded event views its buffer. The fold
 *  owns a copy of every event body it holds (bounded by ROSTER_EVENTS_MAX,
 *  each at most ROSTER_BODY_MAX bytes), an id → event hash table, and the
 *  state of its last fold: people (every key that was ever a member, with
 *  its role, rank and removal), invites, the linearized order and the lists
 *  derived from them. Memory is O(events).
 *
 *  The fold (SPEC §17) runs from scratch each time: Kahn's algorithm over
 *  the parent DAG, the ready event with the smallest (author rank in the
 *  state so far, ts_ms, id) first, each event checked against the state so
 *  far and applied or voided. Then the "removed concurrently" rule marks
 *  the events a removed or demoted admin authored concurrently with its
 *  removal; marks only accumulate, and the fold is run again until a pass
 *  adds none (at most one pass per event). Invariants after a fold: every
 *  linearized event is applied or void with a reason; rank 0 is the founder
 *  and admins hold distinct ranks in the order they became admins; a key
 *  holds a role only while it is not removed.
 */
#include "roster.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h> /* self-test only: the fold bench line */

#include "bytes.h"
#include "chan.h"
#include "content.h"
#include "identity.h" /* self-test only */
#include "selftest.h"

#define S_NETID_DOMAIN_LEN (sizeof ROSTER_NETID_DOMAIN)
#define S_JOIN_DOMAIN_LEN (sizeof ROSTER_JOIN_DOMAIN)
#define S_JOIN_MSG_MAX (S_JOIN_DOMAIN_LEN + 32u + 32u + 1u + ROSTER_NAME_MAX)

/* ------------------------------------------------------------------ codec */

bool
roster_text_valid(const uint8_t *p, size_t len)
{
    return content_plain(p, len);
}

static bool
s_role_ok(uint8_t role)
{
    return role == ROSTER_ROLE_MEMBER || role == ROSTER_ROLE_ADMIN || role == ROSTER_ROLE_READER;
}

//  The checks an encoder and a decoder share, on the fields of ev.
static int
s_check_event(const roster_event_t *ev)
{
    if (ev->n_parents > ROSTER_PARENTS_MAX || (ev->n_parents > 0 && !ev->parents)) {
        return PARLEY_ERR_MALFORMED;
    }
    for (size_t i = 1; i < ev->n_parents; i++) {
        if (memcmp(ev->parents + (i - 1) * 32, ev->parents + i * 32, 32) >= 0) {
            return PARLEY_ERR_MALFORMED;
        }
    }
    size_t text_min = 0;
    size_t text_max = 0;
    switch (ev->type) {
    case ROSTER_CREATE:
        text_min = 1, text_max = ROSTER_NAME_MAX;
        if (ev->text2_len > ROSTER_NAME_MAX || (ev->text2_len > 0 && !ev->text2)
            || !content_plain(ev->text2, ev->text2_len)) {
            return PARLEY_ERR_MALFORMED;
        }
        break;
    case ROSTER_INVITE:
        text_max = ROSTER_NAME_MAX;
        if (!s_role_ok(ev->role) || ev->uses < 1 || ev->uses > ROSTER_INVITE_USES_MAX) {
            return PARLEY_ERR_MALFORMED;
        }
        break;
    case ROSTER_REVOKE: break;
    case ROSTER_JOIN: text_max = ROSTER_NAME_MAX; break;
    case ROSTER_ADD:
        text_max = ROSTER_NAME_MAX;
        if (!s_role_ok(ev->role)) {
            return PARLEY_ERR_MALFORMED;
        }
        break;
    case ROSTER_REMOVE: text_max = ROSTER_REASON_MAX; break;
    case ROSTER_ROLE:
        if (!s_role_ok(ev->role)) {
            return PARLEY_ERR_MALFORMED;
        }
        break;
    case ROSTER_RELAY:
        if (ev->on > 1) {
            return PARLEY_ERR_MALFORMED;
        }
        break;
    case ROSTER_CHANNEL:
        if (ev->flags & ~ROSTER_CHAN_FLAGS) {
            return PARLEY_ERR_MALFORMED;
        }
        break;
    case ROSTER_REKEY: break;
    default: return PARLEY_ERR_MALFORMED;
    }
    //  REVOKE, ROLE, RELAY, CHANNEL and REKEY carry no text: theirs is ignored.
    bool has_text = text_max > 0;
    if (has_text
        && (ev->text_len < text_min || ev->text_len > text_max || (ev->text_len > 0 && !ev->text)
            || !content_plain(ev->text, ev->text_len))) {
        return PARLEY_ERR_MALFORMED;
    }
    return PARLEY_OK;
}

//  Reads a str8 of at most max bytes as a view.
static void
s_get_str8(bytes_reader_t *r, size_t max, const uint8_t **text, size_t *len, bool *bad)
{
    size_t n = bytes_get_u8(r);
    if (n > max) {
        *bad = true;
        return;
    }
    *text = bytes_view(r, n);
    *len = *text ? n : 0;
}

int
roster_event_decode(const uint8_t *buf, size_t len, roster_event_t *ev)
{
    if (!ev) {
        return PARLEY_ERR_STATE;
    }
    memset(ev, 0, sizeof *ev);
    if (!buf && len > 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (len > ROSTER_BODY_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    bytes_reader_t r;
    bytes_reader_init(&r, buf, len);
    uint8_t version = bytes_get_u8(&r);
    if (bytes_reader_ok(&r) && version != ROSTER_VERSION) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    ev->type = bytes_get_u8(&r);
    size_t n = bytes_get_u8(&r);
    bool bad = n > ROSTER_PARENTS_MAX;
    if (!bad) {
        ev->n_parents = n;
        ev->parents = n > 0 ? bytes_view(&r, n * 32) : NULL;
    }
    switch (bad ? 0 : ev->type) {
    case ROSTER_CREATE:
        bytes_get(&r, ev->salt, sizeof ev->salt);
        s_get_str8(&r, ROSTER_NAME_MAX, &ev->text, &ev->text_len, &bad);
        if (!bad) {
            s_get_str8(&r, ROSTER_NAME_MAX, &ev->text2, &ev->text2_len, &bad);
        }
        break;
    case ROSTER_INVITE:
        bytes_get(&r, ev->key, 32);
        ev->role = bytes_get_u8(&r);
        ev->expires_ms = bytes_get_u64(&r);
        ev->uses = bytes_get_u16(&r);
        s_get_str8(&r, ROSTER_NAME_MAX, &ev->text, &ev->text_len, &bad);
        break;
    case ROSTER_REVOKE: bytes_get(&r, ev->key, 32); break;
    case ROSTER_JOIN:
        bytes_get(&r, ev->key, 32);
        s_get_str8(&r, ROSTER_NAME_MAX, &ev->text, &ev->text_len, &bad);
        bytes_get(&r, ev->proof, sizeof ev->proof);
        break;
    case ROSTER_ADD:
        bytes_get(&r, ev->key, 32);
        ev->role = bytes_get_u8(&r);
        s_get_str8(&r, ROSTER_NAME_MAX, &ev->text, &ev->text_len, &bad);
        break;
    case ROSTER_REMOVE:
        bytes_get(&r, ev->key, 32);
        s_get_str8(&r, ROSTER_REASON_MAX, &ev->text, &ev->text_len, &bad);
        break;
    case ROSTER_ROLE:
        bytes_get(&r, ev->key, 32);
        ev->role = bytes_get_u8(&r);
        break;
    case ROSTER_RELAY:
        bytes_get(&r, ev->key, 32);
        ev->on = bytes_get_u8(&r);
        break;
    case ROSTER_CHANNEL:
        bytes_get(&r, ev->salt, sizeof ev->salt);
        ev->flags = bytes_get_u8(&r);
        break;
    case ROSTER_REKEY: break;
    default: bad = true; break;
    }
    if (bad || !bytes_reader_done(&r) || s_check_event(ev) != PARLEY_OK) {
        memset(ev, 0, sizeof *ev);
        return PARLEY_ERR_MALFORMED;
    }
    return PARLEY_OK;
}

int
roster_event_encode(const roster_event_t *ev, uint8_t *out, size_t cap, size_t *len)
{
    if (!ev || !out || !len) {
        return PARLEY_ERR_STATE;
    }
    *len = 0;
    int rc = s_check_event(ev);
    if (rc != PARLEY_OK) {
        return rc;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, out, cap);
    bytes_put_u8(&w, ROSTER_VERSION);
    bytes_put_u8(&w, ev->type);
    bytes_put_u8(&w, (uint8_t)ev->n_parents);
    if (ev->n_parents > 0) {
        bytes_put(&w, ev->parents, ev->n_parents * 32);
    }
    if (ev->type == ROSTER_CREATE || ev->type == ROSTER_CHANNEL) {
        bytes_put(&w, ev->salt, sizeof ev->salt);
    } else if (ev->type != ROSTER_REKEY) {
        bytes_put(&w, ev->key, 32);
    }
    switch (ev->type) {
    case ROSTER_INVITE:
        bytes_put_u8(&w, ev->role);
        bytes_put_u64(&w, ev->expires_ms);
        bytes_put_u16(&w, ev->uses);
        break;
    case ROSTER_ADD:
    case ROSTER_ROLE: bytes_put_u8(&w, ev->role); break;
    case ROSTER_RELAY: bytes_put_u8(&w, ev->on); break;
    case ROSTER_CHANNEL: bytes_put_u8(&w, ev->flags); break;
    default: break;
    }
    if (ev->type != ROSTER_REVOKE && ev->type != ROSTER_ROLE && ev->type != ROSTER_RELAY
        && ev->type != ROSTER_CHANNEL && ev->type != ROSTER_REKEY) {
        bytes_put_u8(&w, (uint8_t)ev->text_len);
        if (ev->text_len > 0) {
            bytes_put(&w, ev->text, ev->text_len);
        }
    }
    if (ev->type == ROSTER_CREATE) {
        bytes_put_u8(&w, (uint8_t)ev->text2_len);
        if (ev->text2_len > 0) {
            bytes_put(&w, ev->text2, ev->text2_len);
        }
    }
    if (ev->type == ROSTER_JOIN) {
        bytes_put(&w, ev->proof, sizeof ev->proof);
    }
    if (!bytes_writer_ok(&w)) {
        return PARLEY_ERR_LIMIT;
    }
    *len = (size_t)(w.p - out);
    return PARLEY_OK;
}

void
roster_network_id(const uint8_t founder_pk[32], const uint8_t salt[ROSTER_SALT_LEN], uint8_t id[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, (const uint8_t *)ROSTER_NETID_DOMAIN, S_NETID_DOMAIN_LEN);
    crypto_generichash_update(&st, founder_pk, 32);
    crypto_generichash_update(&st, salt, ROSTER_SALT_LEN);
    crypto_generichash_final(&st, id, 32);
}

static size_t
s_join_message(const uint8_t network_id[32], const uint8_t joiner_pk[32], const uint8_t *name,
               size_t name_len, uint8_t msg[S_JOIN_MSG_MAX])
{
    memcpy(msg, ROSTER_JOIN_DOMAIN, S_JOIN_DOMAIN_LEN);
    memcpy(msg + S_JOIN_DOMAIN_LEN, network_id, 32);
    memcpy(msg + S_JOIN_DOMAIN_LEN + 32, joiner_pk, 32);
    msg[S_JOIN_DOMAIN_LEN + 64] = (uint8_t)name_len;
    if (name_len > 0) {
        memcpy(msg + S_JOIN_DOMAIN_LEN + 65, name, name_len);
    }
    return S_JOIN_DOMAIN_LEN + 65 + name_len;
}

int
roster_join_proof_sign(const uint8_t invite_sk[64], const uint8_t network_id[32],
                       const uint8_t joiner_pk[32], const uint8_t *name, size_t name_len,
                       uint8_t proof[ROSTER_PROOF_LEN])
{
    if (name_len > ROSTER_NAME_MAX || (name_len > 0 && !name)) {
        return PARLEY_ERR_MALFORMED;
    }
    uint8_t msg[S_JOIN_MSG_MAX];
    size_t n = s_join_message(network_id, joiner_pk, name, name_len, msg);
    int rc = crypto_sign_detached(proof, NULL, msg, n, invite_sk);
    return rc == 0 ? PARLEY_OK : PARLEY_ERR_CRYPTO;
}

int
roster_join_proof_verify(const uint8_t invite_pk[32], const uint8_t network_id[32],
                         const uint8_t joiner_pk[32], const uint8_t *name, size_t name_len,
                         const uint8_t proof[ROSTER_PROOF_LEN])
{
    if (name_len > ROSTER_NAME_MAX || (name_len > 0 && !name)) {
        return PARLEY_ERR_MALFORMED;
    }
    uint8_t msg[S_JOIN_MSG_MAX];
    size_t n = s_join_message(network_id, joiner_pk, name, name_len, msg);
    return crypto_sign_verify_detached(proof, msg, n, invite_pk) == 0 ? PARLEY_OK : PARLEY_ERR_AUTH;
}

/* ------------------------------------------------------------- hash table */

/*  Open addressing over 32-byte keys that live in an array of records
 *  (base, stride): a slot holds record index + 1, 0 is empty. Member and
 *  invite keys are whatever an admin writes, so slots come from SipHash
 *  under a random key per table: a chosen key set cannot pile into one
 *  probe run. The hash decides only where a record sits, never what a
 *  lookup finds, so the fold stays a function of the events. cap is a
 *  power of two and at least twice the number of records. */
typedef struct {
    uint32_t *slot;                         /* cap slots */
    size_t cap;                             /* power of two */
    uint8_t sip[crypto_shorthash_KEYBYTES]; /* hash key, random */
} s_map_t;

static size_t
s_hash(const s_map_t *m, const uint8_t *key)
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, key, 32, m->sip);
    uint64_t h;
    memcpy(&h, out, sizeof h);
    return (size_t)(h & (m->cap - 1));
}

#define S_KEY(base, stride, i) ((const uint8_t *)(base) + (size_t)(i) * (stride))

//  Index of key, or -1.
static long
s_map_find(const s_map_t *m, const void *base, size_t stride, const uint8_t *key)
{
    if (m->cap == 0) {
        return -1;
    }
    for (size_t h = s_hash(m, key);; h = (h + 1) & (m->cap - 1)) {
        uint32_t s = m->slot[h];
        if (s == 0) {
            return -1;
        }
        if (memcmp(S_KEY(base, stride, s - 1), key, 32) == 0) {
            return (long)(s - 1);
        }
    }
}

//  Inserts record i (its key must be absent). The caller keeps cap > 2n.
static void
s_map_put(s_map_t *m, const void *base, size_t stride, uint32_t i)
{
    size_t h = s_hash(m, S_KEY(base, stride, i));
    while (m->slot[h] != 0) {
        h = (h + 1) & (m->cap - 1);
    }
    m->slot[h] = i + 1;
}

//  A table of at least 2n + 2 slots, empty.
static int
s_map_reset(s_map_t *m, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n + 2) {
        cap *= 2;
    }
    if (cap != m->cap) {
        uint32_t *slot = calloc(cap, sizeof *slot);
        if (!slot) {
            return PARLEY_ERR_NOMEM;
        }
        free(m->slot);
        m->slot = slot;
        m->cap = cap;
        crypto_shorthash_keygen(m->sip);
    } else {
        memset(m->slot, 0, cap * sizeof *m->slot);
    }
    return PARLEY_OK;
}

/* ------------------------------------------------------------------ fold */

enum { S_UNSEEN = 0, S_APPLIED = 1, S_VOID = 2 };

typedef struct {
    uint8_t id[32];     /* envelope id: the map key, first */
    uint8_t author[32]; /* envelope author */
    uint64_t ts_ms;     /* envelope ts_ms */
    uint8_t *body;      /* owned copy */
    size_t body_len;    /* its length */
    roster_event_t ev;  /* views into body */
    bool proof_ok;      /* JOIN: proof verified once, at insertion */
    bool marked;        /* voided by the removed-concurrently rule */
    bool demoted_admin; /* applied, and its target lost admin by it */
    /* fold scratch */
    uint8_t state;      /* S_* */
    const char *reason; /* why void */
    uint32_t indeg;     /* parents not yet linearized; UINT32_MAX: one missing */
    uint32_t key_rank;  /* author's rank when last keyed in the ready heap */
} s_event_t;

typedef struct {
    uint8_t pk[32];        /* the map key, first */
    uint8_t role;          /* ROSTER_ROLE_* (NONE once removed) */
    uint32_t rank;         /* admin rank or ROSTER_RANK_NONE */
    bool relay;            /* designated relay */
    bool removed;          /* removed and not added back */
    bool via_invite;       /* joined with an invite */
    uint8_t added_by[32];  /* who made it a member (last time) */
    uint8_t invite_pk[32]; /* the invite, if via_invite */
    uint64_t added_ts;     /* when */
    uint32_t name_ev;      /* event whose text is its name */
    uint32_t since;        /* order of first membership */
    uint32_t grant;        /* admin: the event that made it one (its rank) */
    bool was_admin;        /* an admin at some point of the fold */
} s_person_t;

typedef struct {
    uint8_t pk[32];     /* invite_pk: the map key, first */
    uint8_t author[32]; /* its admin */
    uint8_t role;       /* role a joiner gets */
    uint64_t expires_ms;
    uint16_t uses; /* JOINs admitted */
    uint16_t used; /* JOINs applied */
    bool revoked;  /* REVOKE applied */
} s_invite_t;

struct _roster_t {
    uint8_t network_id[32]; /* or the channel id */
    bool channel;           /* a channel's control log (SPEC §21.4) */
    uint8_t chan_flags;     /* the applied CHANNEL's flags */
    uint32_t epoch;         /* applied REMOVE and REKEY events */
    s_event_t *ev;          /* held events, arrival order */
    size_t n_ev;
    size_t cap_ev;
    size_t n_invite_events; /* INVITE events held: bounded at insertion */
    s_map_t ev_map;         /* id -> ev index */
    /* state of the last fold */
    s_person_t *people; /* every key that became a member */
    size_t n_people;
    s_map_t people_map;
    s_invite_t *invites;
    size_t n_invites;
    s_map_t invite_map;
    uint32_t *order; /* linearized event indices */
    size_t n_order;
    uint32_t *members; /* people indices of current members, by since */
    size_t n_members;
    uint32_t *admins; /* people indices, by rank */
    size_t n_admins;
    uint32_t *relays; /* people indices, by since */
    size_t n_relays;
    long create_ev; /* the applied CREATE, or -1 */
    uint32_t next_rank;
    bool rank_changed; /* the ready heap must be rekeyed */
    /* scratch for the fold */
    uint32_t *par_idx; /* resolved parent indices, n_parents per event */
    uint32_t *par_off; /* n_ev + 1 offsets into par_idx */
    uint32_t *kid_idx; /* children, CSR */
    uint32_t *kid_off; /* n_ev + 1 */
    uint32_t *heap;    /* ready events */
    uint32_t *pos;     /* linearized position per event, UINT32_MAX if none */
    uint32_t *stack;   /* DFS */
    uint32_t *seen;    /* DFS stamps */
    uint32_t stamp;    /* current DFS stamp */
    uint8_t *mark_anc; /* per event: ancestor of the current removal */
    uint8_t **desc;    /* per grant event, lazily: bitmap of its descendants */
    size_t n_desc;     /* events desc was made for */
    size_t n_pending;
    size_t n_current; /* current members during a pass */
};

roster_t *
roster_new(const uint8_t network_id[32])
{
    roster_t *self = calloc(1, sizeof *self);
    if (!self) {
        return NULL;
    }
    memcpy(self->network_id, network_id, 32);
    self->create_ev = -1;
    if (s_map_reset(&self->ev_map, 0) != PARLEY_OK) {
        free(self);
        return NULL;
    }
    return self;
}

roster_t *
roster_new_channel(const uint8_t channel_id[32])
{
    roster_t *self = roster_new(channel_id);
    if (self) {
        self->channel = true;
    }
    return self;
}

static void
s_free_fold(roster_t *self)
{
    free(self->people);
    free(self->invites);
    free(self->order);
    free(self->members);
    free(self->admins);
    free(self->relays);
    free(self->par_idx);
    free(self->par_off);
    free(self->kid_idx);
    free(self->kid_off);
    free(self->heap);
    free(self->pos);
    free(self->stack);
    free(self->seen);
    free(self->mark_anc);
    for (size_t i = 0; self->desc && i < self->n_desc; i++) {
        free(self->desc[i]);
    }
    free(self->desc);
    self->desc = NULL;
    self->n_desc = 0;
    self->people = NULL;
    self->invites = NULL;
    self->order = self->members = self->admins = self->relays = NULL;
    self->par_idx = self->par_off = self->kid_idx = self->kid_off = NULL;
    self->heap = self->pos = self->stack = self->seen = NULL;
    self->mark_anc = NULL;
    self->n_people = self->n_invites = self->n_order = 0;
    self->n_members = self->n_admins = self->n_relays = 0;
    self->create_ev = -1;
}

void
roster_destroy(roster_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    roster_t *self = *self_p;
    for (size_t i = 0; i < self->n_ev; i++) {
        free(self->ev[i].body);
    }
    free(self->ev);
    free(self->ev_map.slot);
    free(self->people_map.slot);
    free(self->invite_map.slot);
    s_free_fold(self);
    free(self);
    *self_p = NULL;
}

int
roster_add_event(roster_t *self, const uint8_t id[32], const uint8_t author[32], uint64_t ts_ms,
                 const uint8_t *body, size_t body_len)
{
    if (!self || !id || !author) {
        return PARLEY_ERR_STATE;
    }
    roster_event_t ev;
    int rc = roster_event_decode(body, body_len, &ev);
    if (rc != PARLEY_OK) {
        return rc;
    }
    if (s_map_find(&self->ev_map, self->ev, sizeof *self->ev, id) >= 0) {
        return PARLEY_ERR_DUPLICATE;
    }
    if (self->n_ev >= ROSTER_EVENTS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (ev.type == ROSTER_INVITE && self->n_invite_events >= ROSTER_INVITES_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (self->n_ev == self->cap_ev) {
        size_t cap = self->cap_ev ? self->cap_ev * 2 : 64;
        s_event_t *grown = realloc(self->ev, cap * sizeof *grown);
        if (!grown) {
            return PARLEY_ERR_NOMEM;
        }
        self->ev = grown;
        self->cap_ev = cap;
    }
    if (2 * (self->n_ev + 1) + 2 > self->ev_map.cap) {
        // The map is rebuilt at twice the size: it keys the records in place.
        if (s_map_reset(&self->ev_map, 2 * (self->n_ev + 1)) != PARLEY_OK) {
            return PARLEY_ERR_NOMEM;
        }
        for (uint32_t i = 0; i < self->n_ev; i++) {
            s_map_put(&self->ev_map, self->ev, sizeof *self->ev, i);
        }
    }
    uint8_t *copy = malloc(body_len > 0 ? body_len : 1);
    if (!copy) {
        return PARLEY_ERR_NOMEM;
    }
    memcpy(copy, body, body_len);
    s_event_t *e = &self->ev[self->n_ev];
    memset(e, 0, sizeof *e);
    memcpy(e->id, id, 32);
    memcpy(e->author, author, 32);
    e->ts_ms = ts_ms;
    e->body = copy;
    e->body_len = body_len;
    // Decoded again over the copy, so the views are ours; it decoded above.
    if (roster_event_decode(copy, body_len, &e->ev) != PARLEY_OK) {
        free(copy);
        return PARLEY_ERR_MALFORMED;
    }
    if (e->ev.type == ROSTER_JOIN) {
        e->proof_ok = roster_join_proof_verify(e->ev.key, self->network_id, author, e->ev.text,
                                               e->ev.text_len, e->ev.proof)
                      == PARLEY_OK;
    }
    s_map_put(&self->ev_map, self->ev, sizeof *self->ev, (uint32_t)self->n_ev);
    self->n_ev++;
    if (ev.type == ROSTER_INVITE) {
        self->n_invite_events++;
    }
    return PARLEY_OK;
}

int
roster_add(roster_t *self, const envelope_t *env)
{
    if (!self || !env || !env->bytes) {
        return PARLEY_ERR_STATE;
    }
    if (env->kind != (roster_is_channel(self) ? ENVELOPE_KIND_CHAN : ENVELOPE_KIND_NET)) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    if (memcmp(env->scope, self->network_id, 32) != 0) {
        return PARLEY_ERR_STATE;
    }
    uint8_t id[PARLEY_ID_LEN];
    envelope_id(env, id);
    int rc = roster_add_event(self, id, env->author, env->ts_ms, env->body, env->body_len);
    if (rc != PARLEY_OK) {
        return rc;
    }
    return roster_fold(self);
}

/* ---- the state, during a fold */

static s_person_t *
s_person(const roster_t *self, const uint8_t pk[32])
{
    long i = s_map_find(&self->people_map, self->people, sizeof *self->people, pk);
    return i < 0 ? NULL : &self->people[i];
}

static s_invite_t *
s_invite(const roster_t *self, const uint8_t pk[32])
{
    long i = s_map_find(&self->invite_map, self->invites, sizeof *self->invites, pk);
    return i < 0 ? NULL : &self->invites[i];
}

static uint32_t
s_rank(const roster_t *self, const uint8_t pk[32])
{
    const s_person_t *p = s_person(self, pk);
    return p && p->role == ROSTER_ROLE_ADMIN ? p->rank : ROSTER_RANK_NONE;
}

static uint8_t
s_role(const roster_t *self, const uint8_t pk[32])
{
    const s_person_t *p = s_person(self, pk);
    return p ? p->role : ROSTER_ROLE_NONE;
}

static size_t
s_member_total(const roster_t *self)
{
    return self->n_current;
}

//  Makes pk a member with role (it is not a current member).
static void
s_make_member(roster_t *self, const uint8_t pk[32], uint8_t role, uint32_t name_ev,
              const s_event_t *e, const uint8_t *added_by, const uint8_t *invite_pk)
{
    s_person_t *p = s_person(self, pk);
    if (!p) {
        p = &self->people[self->n_people];
        memset(p, 0, sizeof *p);
        memcpy(p->pk, pk, 32);
        p->since = (uint32_t)self->n_people;
        s_map_put(&self->people_map, self->people, sizeof *self->people, (uint32_t)self->n_people);
        self->n_people++;
    }
    p->role = role;
    self->n_current++;
    p->rank = ROSTER_RANK_NONE;
    if (role == ROSTER_ROLE_ADMIN) {
        p->rank = self->next_rank++;
        p->grant = (uint32_t)(e - self->ev);
        p->was_admin = true;
        self->rank_changed = true;
    }
    p->removed = false;
    p->relay = false;
    p->name_ev = name_ev;
    memcpy(p->added_by, added_by, 32);
    p->added_ts = e->ts_ms;
    p->via_invite = invite_pk != NULL;
    if (invite_pk) {
        memcpy(p->invite_pk, invite_pk, 32);
    } else {
        memset(p->invite_pk, 0, 32);
    }
}

static void s_walk(roster_t *self, uint32_t idx, int dir);

//  Whether event idx descends from event g in the DAG: g's descendants are
//  found once per fold (the DAG does not change between passes) and kept
//  as a bitmap. Out of memory: false (the act is void until the next fold).
static bool
s_descends(roster_t *self, uint32_t g, uint32_t idx)
{
    if (!self->desc[g]) {
        uint8_t *bits = calloc((self->n_ev + 7) / 8, 1);
        if (!bits) {
            return false;
        }
        if (self->stamp >= UINT32_MAX - 2) {
            memset(self->seen, 0, self->n_ev * sizeof *self->seen);
            self->stamp = 0;
        }
        self->stamp++;
        s_walk(self, g, 1);
        for (size_t i = 0; i < self->n_ev; i++) {
            if (self->seen[i] == self->stamp && i != g) {
                bits[i / 8] |= (uint8_t)(1u << (i % 8));
            }
        }
        self->desc[g] = bits;
    }
    return (self->desc[g][idx / 8] >> (idx % 8)) & 1u;
}

//  Whether author may act as an admin in event idx: an admin now, whose
//  event idx was made knowing it was one (the event that made it an admin
//  is an ancestor): acts made before or concurrently with a promotion do
//  not gain its authority by where the linearization puts them (§17.5).
static bool
s_acts_as_admin(roster_t *self, const s_person_t *author, uint32_t idx)
{
    return author && author->role == ROSTER_ROLE_ADMIN && s_descends(self, author->grant, idx);
}

//  Whether author may remove or change the role of target: a strictly
//  senior admin; the founder only by itself (leave, REMOVE only).
static bool
s_senior(const roster_t *self, const s_person_t *author, const s_person_t *target)
{
    if (!author || author->role != ROSTER_ROLE_ADMIN) {
        return false;
    }
    uint32_t t = target->role == ROSTER_ROLE_ADMIN ? target->rank : ROSTER_RANK_NONE;
    (void)self;
    return author->rank < t;
}

//  Checks e against the state so far; applies it or returns why it is void.
//  *demoted is set to the person who lost admin by it (for the concurrent
//  rule), else NULL.
static const char *
s_apply(roster_t *self, uint32_t idx, s_person_t **demoted)
{
    s_event_t *e = &self->ev[idx];
    const roster_event_t *ev = &e->ev;
    *demoted = NULL;
    if (e->marked) {
        return "author removed concurrently";
    }
    uint8_t first = self->channel ? ROSTER_CHANNEL : ROSTER_CREATE;
    if (self->create_ev < 0) {
        if (ev->type != first) {
            return self->channel ? "before the channel was created"
                                 : "before the network was created";
        }
        uint8_t id[32];
        if (self->channel) {
            chan_id(e->author, ev->salt, id);
        } else {
            roster_network_id(e->author, ev->salt, id);
        }
        if (ev->n_parents != 0) {
            return "create with parents";
        }
        if (sodium_memcmp(id, self->network_id, 32) != 0) {
            return self->channel ? "not the creator of this channel"
                                 : "not the founder of this network";
        }
        self->create_ev = idx;
        self->next_rank = 0;
        self->chan_flags = ev->flags;
        s_make_member(self, e->author, ROSTER_ROLE_ADMIN, idx, e, e->author, NULL);
        return NULL;
    }
    if (ev->type == ROSTER_CREATE || ev->type == ROSTER_CHANNEL) {
        return ev->type != first ? (self->channel ? "not in a channel" : "not in a network")
               : self->channel   ? "channel already created"
                                 : "network already created";
    }
    //  A channel has no invites and no relays; a network no readers and no
    //  rekeying (its secret's epoch follows removals alone).
    bool chan_only =
        ev->type == ROSTER_REKEY
        || ((ev->type == ROSTER_ADD || ev->type == ROSTER_ROLE || ev->type == ROSTER_INVITE)
            && ev->role == ROSTER_ROLE_READER);
    bool net_only = ev->type == ROSTER_INVITE || ev->type == ROSTER_REVOKE
                    || ev->type == ROSTER_JOIN || ev->type == ROSTER_RELAY;
    if (self->channel && net_only) {
        return "not in a channel";
    }
    //  A channel's log says who and what role, never about what: names,
    //  topics and reasons travel encrypted, as messages.
    if (self->channel && ev->text_len > 0) {
        return "text in a channel's log";
    }
    if (!self->channel && chan_only) {
        return "not in a network";
    }
    //  Every other event hangs under the CREATE: one with no parents would
    //  be concurrent with the whole log.
    if (ev->n_parents == 0) {
        return "no parents";
    }
    s_person_t *author = s_person(self, e->author);
    bool admin = author && author->role == ROSTER_ROLE_ADMIN;
    const char *not_admin =
        admin ? "author was not yet an admin when it acted" : "author is not an admin";
    admin = s_acts_as_admin(self, author, idx);
    if (ev->type == ROSTER_JOIN) {
        s_invite_t *inv = s_invite(self, ev->key);
        if (!inv) {
            return "unknown invite";
        }
        if (inv->revoked) {
            return "invite revoked";
        }
        if (e->ts_ms > inv->expires_ms) {
            return "invite expired";
        }
        if (inv->used >= inv->uses) {
            return "invite used up";
        }
        if (!e->proof_ok) {
            return "bad join proof";
        }
        if (author && author->role != ROSTER_ROLE_NONE) {
            return "already a member";
        }
        if (author && author->removed) {
            return "removed: only an admin can add it back";
        }
        if (s_member_total(self) >= ROSTER_MEMBERS_MAX) {
            return "network full";
        }
        inv->used++;
        s_make_member(self, e->author, inv->role, idx, e, inv->author, ev->key);
        return NULL;
    }
    if (!author || author->role == ROSTER_ROLE_NONE) {
        return "author is not a member";
    }
    if (ev->type == ROSTER_REMOVE) {
        s_person_t *t = s_person(self, ev->key);
        if (!t || t->role == ROSTER_ROLE_NONE) {
            return "not a member";
        }
        bool leave = t == author;
        if (!leave && self->create_ev >= 0
            && memcmp(t->pk, self->ev[self->create_ev].author, 32) == 0) {
            return "only the founder can remove itself";
        }
        if (!leave && !admin) {
            return not_admin;
        }
        if (!leave && !s_senior(self, author, t)) {
            return "target is not junior to the author";
        }
        if (t->role == ROSTER_ROLE_ADMIN) {
            *demoted = t;
            self->rank_changed = true;
        }
        t->role = ROSTER_ROLE_NONE;
        t->rank = ROSTER_RANK_NONE;
        t->relay = false;
        t->removed = true;
        self->n_current--;
        self->epoch++;
        return NULL;
    }
    if (!admin) {
        return not_admin;
    }
    switch (ev->type) {
    case ROSTER_INVITE: {
        if (s_invite(self, ev->key)) {
            return "invite exists";
        }
        s_invite_t *inv = &self->invites[self->n_invites];
        memset(inv, 0, sizeof *inv);
        memcpy(inv->pk, ev->key, 32);
        memcpy(inv->author, e->author, 32);
        inv->role = ev->role;
        inv->expires_ms = ev->expires_ms;
        inv->uses = ev->uses;
        s_map_put(&self->invite_map, self->invites, sizeof *self->invites,
                  (uint32_t)self->n_invites);
        self->n_invites++;
        return NULL;
    }
    case ROSTER_REVOKE: {
        s_invite_t *inv = s_invite(self, ev->key);
        if (!inv) {
            return "unknown invite";
        }
        if (inv->revoked) {
            return "invite already revoked";
        }
        inv->revoked = true;
        return NULL;
    }
    case ROSTER_ADD: {
        if (s_role(self, ev->key) != ROSTER_ROLE_NONE) {
            return "already a member";
        }
        if (s_member_total(self) >= ROSTER_MEMBERS_MAX) {
            return self->channel ? "channel full" : "network full";
        }
        //  An announce channel: everyone an ADD does not make an admin reads.
        uint8_t role = ev->role;
        if (self->channel && (self->chan_flags & ROSTER_CHAN_ANNOUNCE)
            && role == ROSTER_ROLE_MEMBER) {
            role = ROSTER_ROLE_READER;
        }
        s_make_member(self, ev->key, role, idx, e, e->author, NULL);
        return NULL;
    }
    case ROSTER_REKEY: self->epoch++; return NULL;
    case ROSTER_ROLE: {
        s_person_t *t = s_person(self, ev->key);
        if (!t || t->role == ROSTER_ROLE_NONE) {
            return "not a member";
        }
        if (t->role == ev->role) {
            return "no change";
        }
        if (!s_senior(self, author, t)) {
            return "target is not junior to the author";
        }
        if (ev->role == ROSTER_ROLE_ADMIN) {
            t->rank = self->next_rank++;
            t->grant = idx;
            t->was_admin = true;
        } else {
            *demoted = t;
            t->rank = ROSTER_RANK_NONE;
        }
        t->role = ev->role;
        self->rank_changed = true;
        return NULL;
    }
    case ROSTER_RELAY: {
        s_person_t *t = s_person(self, ev->key);
        if (!t || t->role == ROSTER_ROLE_NONE) {
            return "not a member";
        }
        t->relay = ev->on == 1;
        return NULL;
    }
    default: return "unknown type"; // the decoder admits none
    }
}

/* ---- the ready heap: smallest (author rank, ts_ms, id) on top */

static bool
s_less(const roster_t *self, uint32_t a, uint32_t b)
{
    const s_event_t *x = &self->ev[a];
    const s_event_t *y = &self->ev[b];
    if (x->key_rank != y->key_rank) {
        return x->key_rank < y->key_rank;
    }
    if (x->ts_ms != y->ts_ms) {
        return x->ts_ms < y->ts_ms;
    }
    return memcmp(x->id, y->id, 32) < 0;
}

static void
s_sift_down(roster_t *self, size_t n, size_t i)
{
    uint32_t *h = self->heap;
    for (;;) {
        size_t l = 2 * i + 1;
        size_t m = i;
        if (l < n && s_less(self, h[l], h[m])) {
            m = l;
        }
        if (l + 1 < n && s_less(self, h[l + 1], h[m])) {
            m = l + 1;
        }
        if (m == i) {
            return;
        }
        uint32_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void
s_heap_push(roster_t *self, size_t *n, uint32_t idx)
{
    uint32_t *h = self->heap;
    self->ev[idx].key_rank = s_rank(self, self->ev[idx].author);
    size_t i = (*n)++;
    h[i] = idx;
    while (i > 0 && s_less(self, h[i], h[(i - 1) / 2])) {
        uint32_t t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

//  Ranks changed: every ready event is keyed again, then the heap rebuilt.
static void
s_heap_rekey(roster_t *self, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        s_event_t *e = &self->ev[self->heap[i]];
        e->key_rank = s_rank(self, e->author);
    }
    for (size_t i = n / 2; i-- > 0;) {
        s_sift_down(self, n, i);
    }
}

/* ---- the removed-concurrently rule */

//  Marks, with the current stamp, every ancestor (dir 0) or descendant
//  (dir 1) of idx, idx included.
static void
s_walk(roster_t *self, uint32_t idx, int dir)
{
    const uint32_t *off = dir == 0 ? self->par_off : self->kid_off;
    const uint32_t *list = dir == 0 ? self->par_idx : self->kid_idx;
    size_t top = 0;
    self->stack[top++] = idx;
    self->seen[idx] = self->stamp;
    while (top > 0) {
        uint32_t i = self->stack[--top];
        for (uint32_t k = off[i]; k < off[i + 1]; k++) {
            uint32_t j = list[k];
            if (self->seen[j] != self->stamp) {
                self->seen[j] = self->stamp;
                self->stack[top++] = j;
            }
        }
    }
}

//  Marks the events X authored that are neither ancestors nor descendants
//  of the removal r (X = the removed or demoted admin). Returns how many
//  new marks it made.
static size_t
s_mark_concurrent(roster_t *self, uint32_t r, const uint8_t x[32])
{
    //  Stamps are never reused: before they would wrap, every old one goes.
    if (self->stamp >= UINT32_MAX - 2) {
        memset(self->seen, 0, self->n_ev * sizeof *self->seen);
        self->stamp = 0;
    }
    self->stamp++;
    s_walk(self, r, 0);
    uint32_t anc = self->stamp;
    for (size_t i = 0; i < self->n_ev; i++) {
        self->mark_anc[i] = self->seen[i] == anc;
    }
    self->stamp++;
    s_walk(self, r, 1);
    size_t added = 0;
    for (size_t i = 0; i < self->n_ev; i++) {
        s_event_t *e = &self->ev[i];
        if (e->marked || e->ev.type == ROSTER_CREATE || self->mark_anc[i]
            || self->seen[i] == self->stamp || self->pos[i] == UINT32_MAX
            || memcmp(e->author, x, 32) != 0) {
            continue;
        }
        e->marked = true;
        added++;
    }
    return added;
}

/* ---- one pass */

static int
s_alloc_fold(roster_t *self)
{
    size_t n = self->n_ev;
    size_t edges = 0;
    for (size_t i = 0; i < n; i++) {
        edges += self->ev[i].ev.n_parents;
    }
    size_t m = n > 0 ? n : 1;
    self->people = calloc(m + 1, sizeof *self->people);
    self->invites = calloc(m, sizeof *self->invites);
    self->order = calloc(m, sizeof *self->order);
    self->members = calloc(m + 1, sizeof *self->members);
    self->admins = calloc(m + 1, sizeof *self->admins);
    self->relays = calloc(m + 1, sizeof *self->relays);
    self->par_idx = calloc(edges + 1, sizeof *self->par_idx);
    self->par_off = calloc(m + 1, sizeof *self->par_off);
    self->kid_idx = calloc(edges + 1, sizeof *self->kid_idx);
    self->kid_off = calloc(m + 1, sizeof *self->kid_off);
    self->heap = calloc(m, sizeof *self->heap);
    self->pos = calloc(m, sizeof *self->pos);
    self->stack = calloc(m, sizeof *self->stack);
    self->seen = calloc(m, sizeof *self->seen);
    self->mark_anc = calloc(m, 1);
    self->desc = calloc(m, sizeof *self->desc);
    self->n_desc = self->desc ? n : 0;
    if (!self->people || !self->invites || !self->order || !self->members || !self->admins
        || !self->relays || !self->par_idx || !self->par_off || !self->kid_idx || !self->kid_off
        || !self->heap || !self->pos || !self->stack || !self->seen || !self->mark_anc
        || !self->desc) {
        return PARLEY_ERR_NOMEM;
    }
    if (s_map_reset(&self->people_map, n + 1) != PARLEY_OK
        || s_map_reset(&self->invite_map, n) != PARLEY_OK) {
        return PARLEY_ERR_NOMEM;
    }
    //  Parent edges that resolve; an event with a missing parent never
    //  becomes ready (pending), nor do its descendants.
    uint32_t *kid_count = self->kid_off;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        self->par_off[i] = (uint32_t)k;
        s_event_t *e = &self->ev[i];
        e->indeg = 0;
        for (size_t p = 0; p < e->ev.n_parents; p++) {
            long j = s_map_find(&self->ev_map, self->ev, sizeof *self->ev, e->ev.parents + p * 32);
            if (j < 0) {
                e->indeg = UINT32_MAX;
                continue;
            }
            self->par_idx[k++] = (uint32_t)j;
            kid_count[j + 1]++;
        }
    }
    self->par_off[n] = (uint32_t)k;
    for (size_t i = 0; i < n; i++) {
        self->kid_off[i + 1] += self->kid_off[i];
    }
    //  Fill children: pos is free scratch here (a cursor per event).
    for (size_t i = 0; i < n; i++) {
        self->pos[i] = self->kid_off[i];
    }
    for (size_t i = 0; i < n; i++) {
        for (uint32_t q = self->par_off[i]; q < self->par_off[i + 1]; q++) {
            uint32_t j = self->par_idx[q];
            self->kid_idx[self->pos[j]++] = (uint32_t)i;
        }
    }
    return PARLEY_OK;
}

//  One linearization and application with the current marks.
static void
s_pass(roster_t *self)
{
    size_t n = self->n_ev;
    self->n_people = self->n_invites = self->n_order = 0;
    memset(self->people_map.slot, 0, self->people_map.cap * sizeof *self->people_map.slot);
    memset(self->invite_map.slot, 0, self->invite_map.cap * sizeof *self->invite_map.slot);
    self->create_ev = -1;
    self->next_rank = 0;
    self->rank_changed = false;
    self->n_current = 0;
    self->chan_flags = 0;
    self->epoch = 0;
    size_t heap_n = 0;
    for (size_t i = 0; i < n; i++) {
        s_event_t *e = &self->ev[i];
        e->state = S_UNSEEN;
        e->reason = NULL;
        self->pos[i] = UINT32_MAX;
        e->key_rank = 0;
        e->demoted_admin = false;
        if (e->indeg != UINT32_MAX) {
            e->indeg = self->par_off[i + 1] - self->par_off[i];
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (self->ev[i].indeg == 0) {
            s_heap_push(self, &heap_n, (uint32_t)i);
        }
    }
    while (heap_n > 0) {
        if (self->rank_changed) {
            s_heap_rekey(self, heap_n);
            self->rank_changed = false;
        }
        uint32_t idx = self->heap[0];
        self->heap[0] = self->heap[--heap_n];
        s_sift_down(self, heap_n, 0);
        s_event_t *e = &self->ev[idx];
        s_person_t *demoted = NULL;
        e->reason = s_apply(self, idx, &demoted);
        e->state = e->reason ? S_VOID : S_APPLIED;
        e->demoted_admin = demoted != NULL;
        self->pos[idx] = (uint32_t)self->n_order;
        self->order[self->n_order++] = idx;
        for (uint32_t k = self->kid_off[idx]; k < self->kid_off[idx + 1]; k++) {
            s_event_t *kid = &self->ev[self->kid_idx[k]];
            if (kid->indeg != UINT32_MAX && --kid->indeg == 0) {
                s_heap_push(self, &heap_n, self->kid_idx[k]);
            }
        }
    }
    self->n_pending = n - self->n_order;
}

//  The removed-concurrently rule over the last pass: new marks made.
static size_t
s_concurrent_marks(roster_t *self)
{
    size_t added = 0;
    for (size_t k = 0; k < self->n_order; k++) {
        uint32_t idx = self->order[k];
        s_event_t *e = &self->ev[idx];
        if (e->demoted_admin) {
            added += s_mark_concurrent(self, idx, e->ev.key);
        }
    }
    return added;
}

static void
s_derive_lists(roster_t *self)
{
    self->n_members = self->n_admins = self->n_relays = 0;
    for (size_t i = 0; i < self->n_people; i++) {
        const s_person_t *p = &self->people[i];
        if (p->role == ROSTER_ROLE_NONE) {
            continue;
        }
        self->members[self->n_members++] = (uint32_t)i;
        if (p->role == ROSTER_ROLE_ADMIN) {
            //  Insertion by rank: admins are few.
            size_t j = self->n_admins++;
            while (j > 0 && self->people[self->admins[j - 1]].rank > p->rank) {
                self->admins[j] = self->admins[j - 1];
                j--;
            }
            self->admins[j] = (uint32_t)i;
        }
        if (p->relay) {
            self->relays[self->n_relays++] = (uint32_t)i;
        }
    }
}

int
roster_fold(roster_t *self)
{
    if (!self) {
        return PARLEY_ERR_STATE;
    }
    s_free_fold(self);
    int rc = s_alloc_fold(self);
    if (rc != PARLEY_OK) {
        s_free_fold(self);
        return rc;
    }
    for (size_t i = 0; i < self->n_ev; i++) {
        self->ev[i].marked = false;
    }
    //  Each pass either adds a mark or is the last: at most n_ev + 1 passes.
    for (size_t round = 0; round <= self->n_ev; round++) {
        s_pass(self);
        if (s_concurrent_marks(self) == 0) {
            break;
        }
    }
    s_derive_lists(self);
    return PARLEY_OK;
}

/* ---------------------------------------------------------------- queries */

size_t
roster_event_count(const roster_t *self)
{
    return self ? self->n_ev : 0;
}

size_t
roster_pending_count(const roster_t *self)
{
    return self ? self->n_pending : 0;
}

bool
roster_created(const roster_t *self)
{
    return self && self->create_ev >= 0;
}

bool
roster_is_channel(const roster_t *self)
{
    return self && self->channel;
}

uint8_t
roster_channel_flags(const roster_t *self)
{
    return self && self->create_ev >= 0 ? self->chan_flags : 0;
}

uint32_t
roster_epoch(const roster_t *self)
{
    return self ? self->epoch : 0;
}

const uint8_t *
roster_founder(const roster_t *self)
{
    return roster_created(self) ? self->ev[self->create_ev].author : NULL;
}

const uint8_t *
roster_name(const roster_t *self, size_t *len)
{
    if (!roster_created(self)) {
        if (len) {
            *len = 0;
        }
        return NULL;
    }
    const roster_event_t *ev = &self->ev[self->create_ev].ev;
    if (len) {
        *len = ev->text_len;
    }
    return ev->text;
}

uint8_t
roster_role(const roster_t *self, const uint8_t pk[32])
{
    return self && pk && self->people ? s_role(self, pk) : ROSTER_ROLE_NONE;
}

uint32_t
roster_rank(const roster_t *self, const uint8_t pk[32])
{
    return self && pk && self->people ? s_rank(self, pk) : ROSTER_RANK_NONE;
}

bool
roster_is_removed(const roster_t *self, const uint8_t pk[32])
{
    const s_person_t *p = self && pk && self->people ? s_person(self, pk) : NULL;
    return p && p->removed;
}

bool
roster_was_admin(const roster_t *self, const uint8_t pk[32])
{
    const s_person_t *p = self && pk && self->people ? s_person(self, pk) : NULL;
    return p && p->was_admin;
}

bool
roster_is_relay(const roster_t *self, const uint8_t pk[32])
{
    const s_person_t *p = self && pk && self->people ? s_person(self, pk) : NULL;
    return p && p->role != ROSTER_ROLE_NONE && p->relay;
}

size_t
roster_member_count(const roster_t *self)
{
    return self ? self->n_members : 0;
}

int
roster_member_at(const roster_t *self, size_t i, roster_member_t *out)
{
    if (!self || !out || i >= self->n_members) {
        return PARLEY_ERR_NOTFOUND;
    }
    const s_person_t *p = &self->people[self->members[i]];
    const s_event_t *e = &self->ev[p->name_ev];
    memset(out, 0, sizeof *out);
    memcpy(out->pk, p->pk, 32);
    //  The CREATE names the founder in its second string.
    if (e->ev.type == ROSTER_CREATE) {
        out->name = e->ev.text2;
        out->name_len = e->ev.text2_len;
    } else {
        out->name = e->ev.text;
        out->name_len = e->ev.text_len;
    }
    out->role = p->role;
    out->rank = p->role == ROSTER_ROLE_ADMIN ? p->rank : ROSTER_RANK_NONE;
    out->relay = p->relay;
    memcpy(out->added_by, p->added_by, 32);
    out->added_ts = p->added_ts;
    out->via_invite = p->via_invite;
    memcpy(out->invite_pk, p->invite_pk, 32);
    return PARLEY_OK;
}

size_t
roster_admin_count(const roster_t *self)
{
    return self ? self->n_admins : 0;
}

const uint8_t *
roster_admin_at(const roster_t *self, size_t i)
{
    return self && i < self->n_admins ? self->people[self->admins[i]].pk : NULL;
}

size_t
roster_relay_count(const roster_t *self)
{
    return self ? self->n_relays : 0;
}

const uint8_t *
roster_relay_at(const roster_t *self, size_t i)
{
    return self && i < self->n_relays ? self->people[self->relays[i]].pk : NULL;
}

size_t
roster_invite_count(const roster_t *self)
{
    return self ? self->n_invites : 0;
}

int
roster_invite_at(const roster_t *self, size_t i, roster_invite_t *out)
{
    if (!self || !out || i >= self->n_invites) {
        return PARLEY_ERR_NOTFOUND;
    }
    const s_invite_t *inv = &self->invites[i];
    memset(out, 0, sizeof *out);
    memcpy(out->invite_pk, inv->pk, 32);
    memcpy(out->author, inv->author, 32);
    out->role = inv->role;
    out->expires_ms = inv->expires_ms;
    out->uses = inv->uses;
    out->used = inv->used;
    out->revoked = inv->revoked;
    return PARLEY_OK;
}

bool
roster_invite_live(const roster_t *self, const uint8_t invite_pk[32], uint64_t now_ms)
{
    const s_invite_t *inv = self && invite_pk && self->invites ? s_invite(self, invite_pk) : NULL;
    return inv && !inv->revoked && now_ms <= inv->expires_ms && inv->used < inv->uses;
}

size_t
roster_log_count(const roster_t *self)
{
    return self ? self->n_order : 0;
}

int
roster_log_at(const roster_t *self, size_t i, roster_log_entry_t *out)
{
    if (!self || !out || i >= self->n_order) {
        return PARLEY_ERR_NOTFOUND;
    }
    const s_event_t *e = &self->ev[self->order[i]];
    memset(out, 0, sizeof *out);
    memcpy(out->id, e->id, 32);
    out->type = e->ev.type;
    memcpy(out->author, e->author, 32);
    memcpy(out->target, e->ev.type == ROSTER_CREATE ? e->author : e->ev.key, 32);
    out->ts_ms = e->ts_ms;
    out->applied = e->state == S_APPLIED;
    out->reason = e->reason;
    return PARLEY_OK;
}

//  Heads are chosen applied ones first, then by id: a flood of void events
//  must not crowd the events that count out of the next event's parents.
static bool
s_head_before(const roster_t *self, uint32_t a, uint32_t b)
{
    bool va = self->ev[a].state != S_APPLIED, vb = self->ev[b].state != S_APPLIED;
    if (va != vb) {
        return vb;
    }
    return memcmp(self->ev[a].id, self->ev[b].id, 32) < 0;
}

//  The chosen heads' event indices into idx (at most ROSTER_PARENTS_MAX),
//  in the order of choice; returns how many.
static size_t
s_heads(const roster_t *self, uint32_t idx[ROSTER_PARENTS_MAX])
{
    size_t n = 0;
    for (size_t k = 0; k < self->n_order; k++) {
        uint32_t i = self->order[k];
        bool named = false;
        for (uint32_t c = self->kid_off[i]; c < self->kid_off[i + 1] && !named; c++) {
            named = self->pos[self->kid_idx[c]] != UINT32_MAX;
        }
        if (named) {
            continue;
        }
        size_t j = n < ROSTER_PARENTS_MAX ? n++ : ROSTER_PARENTS_MAX;
        if (j == ROSTER_PARENTS_MAX) {
            if (!s_head_before(self, i, idx[j - 1])) {
                continue;
            }
            j--;
        }
        while (j > 0 && s_head_before(self, i, idx[j - 1])) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return n;
}

//  The ids of events idx[0..n) into out, sorted (the encoding's order).
static void
s_ids_sorted(const roster_t *self, const uint32_t *idx, size_t n,
             uint8_t out[ROSTER_PARENTS_MAX][32])
{
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && memcmp(out[j - 1], self->ev[idx[i]].id, 32) > 0) {
            memcpy(out[j], out[j - 1], 32);
            j--;
        }
        memcpy(out[j], self->ev[idx[i]].id, 32);
    }
}

size_t
roster_heads(const roster_t *self, uint8_t out[ROSTER_PARENTS_MAX][32])
{
    if (!self || !out) {
        return 0;
    }
    uint32_t idx[ROSTER_PARENTS_MAX];
    size_t n = s_heads(self, idx);
    s_ids_sorted(self, idx, n, out);
    return n;
}

int
roster_event_build(roster_t *self, const uint8_t author[32], const roster_event_t *ev, uint8_t *out,
                   size_t cap, size_t *len)
{
    if (!self || !ev || !len) {
        return PARLEY_ERR_STATE;
    }
    uint32_t idx[ROSTER_PARENTS_MAX] = { 0 };
    size_t n = ev->type == ROSTER_CREATE ? 0 : s_heads(self, idx);
    //  An admin's act must descend from the event that made it an admin
    //  (§17.5): when no chosen head does (more heads than fit), that event
    //  is named too, in place of the last head.
    const s_person_t *p = author && self->desc ? s_person(self, author) : NULL;
    if (n > 0 && p && p->role == ROSTER_ROLE_ADMIN) {
        bool covered = false;
        for (size_t i = 0; i < n && !covered; i++) {
            covered = idx[i] == p->grant || s_descends(self, p->grant, idx[i]);
        }
        if (!covered) {
            idx[n < ROSTER_PARENTS_MAX ? n++ : n - 1] = p->grant;
        }
    }
    uint8_t heads[ROSTER_PARENTS_MAX][32];
    s_ids_sorted(self, idx, n, heads);
    roster_event_t e = *ev;
    e.n_parents = n;
    e.parents = n > 0 ? &heads[0][0] : NULL;
    return roster_event_encode(&e, out, cap, len);
}

/* -------------------------------------------------------------- self-test */

#define T0 1700000000000ull

typedef struct {
    uint8_t pk[32]; /* Ed25519 public key */
    uint8_t sk[64]; /* its secret key */
} s_tkey_t;

typedef struct {
    uint8_t id[32];
    uint8_t author[32];
    uint64_t ts;
    uint8_t body[ROSTER_BODY_MAX];
    size_t len;
} s_trec_t;

/*  A scenario: the events made so far, and a live roster over them (its
 *  heads give the parents of the next event). */
typedef struct {
    uint8_t net[32];
    uint8_t salt[ROSTER_SALT_LEN];
    s_trec_t *rec;
    size_t n;
    size_t cap;
    roster_t *live;
} s_scn_t;

static void
s_tkey(s_tkey_t *k, uint8_t tag)
{
    uint8_t seed[32];
    memset(seed, tag, sizeof seed);
    CHECK(crypto_sign_seed_keypair(k->pk, k->sk, seed) == 0);
}

static void
s_scn_init(s_scn_t *s, const s_tkey_t *founder, size_t cap)
{
    memset(s, 0, sizeof *s);
    memset(s->salt, 0x5a, sizeof s->salt);
    roster_network_id(founder->pk, s->salt, s->net);
    s->rec = calloc(cap, sizeof *s->rec);
    s->cap = cap;
    s->live = roster_new(s->net);
    CHECK(s->rec && s->live);
}

static void
s_scn_free(s_scn_t *s)
{
    roster_destroy(&s->live);
    free(s->rec);
}

//  Emits ev by author at ts: parents are the live heads unless ev has its
//  own (n_parents > 0 or keep_parents). Returns the record index.
static size_t
s_emit(s_scn_t *s, const s_tkey_t *author, uint64_t ts, roster_event_t *ev, bool keep_parents)
{
    CHECK(s->n < s->cap);
    s_trec_t *r = &s->rec[s->n];
    if (keep_parents) {
        CHECK(roster_event_encode(ev, r->body, sizeof r->body, &r->len) == 0);
    } else {
        CHECK(roster_event_build(s->live, author->pk, ev, r->body, sizeof r->body, &r->len) == 0);
    }
    memcpy(r->author, author->pk, 32);
    r->ts = ts;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    crypto_generichash_update(&st, r->author, 32);
    uint8_t t8[8];
    for (size_t i = 0; i < 8; i++) {
        t8[i] = (uint8_t)(ts >> (56 - 8 * i));
    }
    crypto_generichash_update(&st, t8, 8);
    crypto_generichash_update(&st, r->body, r->len);
    crypto_generichash_final(&st, r->id, 32);
    CHECK(roster_add_event(s->live, r->id, r->author, r->ts, r->body, r->len) == 0);
    CHECK(roster_fold(s->live) == 0);
    return s->n++;
}

static size_t
s_create(s_scn_t *s, const s_tkey_t *f, uint64_t ts)
{
    roster_event_t ev = { .type = ROSTER_CREATE };
    memcpy(ev.salt, s->salt, sizeof ev.salt);
    ev.text = (const uint8_t *)"acme";
    ev.text_len = 4;
    ev.text2 = (const uint8_t *)"founder";
    ev.text2_len = 7;
    return s_emit(s, f, ts, &ev, true);
}

static size_t
s_simple(s_scn_t *s, const s_tkey_t *author, uint64_t ts, uint8_t type, const uint8_t key[32],
         uint8_t role_or_on)
{
    roster_event_t ev = { .type = type };
    memcpy(ev.key, key, 32);
    ev.role = type == ROSTER_RELAY ? 0 : role_or_on;
    ev.on = type == ROSTER_RELAY ? role_or_on : 0;
    return s_emit(s, author, ts, &ev, false);
}

static size_t
s_invite_ev(s_scn_t *s, const s_tkey_t *author, uint64_t ts, const s_tkey_t *inv, uint8_t role,
            uint64_t expires, uint16_t uses)
{
    roster_event_t ev = {
        .type = ROSTER_INVITE, .role = role, .expires_ms = expires, .uses = uses
    };
    memcpy(ev.key, inv->pk, 32);
    ev.text = (const uint8_t *)"for bob";
    ev.text_len = 7;
    return s_emit(s, author, ts, &ev, false);
}

static size_t
s_join_ev(s_scn_t *s, const s_tkey_t *joiner, uint64_t ts, const s_tkey_t *inv, bool good_proof)
{
    roster_event_t ev = { .type = ROSTER_JOIN };
    memcpy(ev.key, inv->pk, 32);
    ev.text = (const uint8_t *)"bob";
    ev.text_len = 3;
    //  A bad proof: signed for another name.
    CHECK(roster_join_proof_sign(inv->sk, s->net, joiner->pk, ev.text, good_proof ? ev.text_len : 2,
                                 ev.proof)
          == 0);
    return s_emit(s, joiner, ts, &ev, false);
}

//  A digest of everything the queries show.
static void
s_digest(const roster_t *r, uint8_t out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    uint64_t counts[8] = { roster_member_count(r), roster_admin_count(r),  roster_relay_count(r),
                           roster_invite_count(r), roster_log_count(r),    roster_pending_count(r),
                           roster_epoch(r),        roster_channel_flags(r) };
    crypto_generichash_update(&st, (const uint8_t *)counts, sizeof counts);
    for (size_t i = 0; i < roster_member_count(r); i++) {
        roster_member_t m;
        CHECK(roster_member_at(r, i, &m) == 0);
        crypto_generichash_update(&st, m.pk, 32);
        crypto_generichash_update(&st, m.added_by, 32);
        crypto_generichash_update(&st, m.invite_pk, 32);
        uint8_t f[4] = { m.role, m.relay, m.via_invite, (uint8_t)m.rank };
        crypto_generichash_update(&st, f, sizeof f);
        crypto_generichash_update(&st, (const uint8_t *)&m.added_ts, 8);
        crypto_generichash_update(&st, m.name, m.name_len);
    }
    for (size_t i = 0; i < roster_admin_count(r); i++) {
        crypto_generichash_update(&st, roster_admin_at(r, i), 32);
    }
    for (size_t i = 0; i < roster_relay_count(r); i++) {
        crypto_generichash_update(&st, roster_relay_at(r, i), 32);
    }
    for (size_t i = 0; i < roster_invite_count(r); i++) {
        roster_invite_t v;
        CHECK(roster_invite_at(r, i, &v) == 0);
        crypto_generichash_update(&st, v.invite_pk, 32);
        uint16_t f[3] = { v.used, v.uses, v.revoked };
        crypto_generichash_update(&st, (const uint8_t *)f, sizeof f);
    }
    for (size_t i = 0; i < roster_log_count(r); i++) {
        roster_log_entry_t e;
        CHECK(roster_log_at(r, i, &e) == 0);
        crypto_generichash_update(&st, e.id, 32);
        crypto_generichash_update(&st, (const uint8_t *)(e.applied ? "+" : "-"), 1);
        if (e.reason) {
            crypto_generichash_update(&st, (const uint8_t *)e.reason, strlen(e.reason));
        }
    }
    uint8_t heads[ROSTER_PARENTS_MAX][32];
    size_t nh = roster_heads(r, heads);
    crypto_generichash_update(&st, &heads[0][0], nh * 32);
    crypto_generichash_final(&st, out, 32);
}

//  Feeds the scenario's events to fresh rosters in shuffled orders (and
//  once folding after each event) and checks every state is the live one.
static void
s_check_orders(const s_scn_t *s, size_t shuffles)
{
    uint8_t want[32];
    s_digest(s->live, want);
    uint32_t *perm = calloc(s->n, sizeof *perm);
    CHECK(perm);
    uint64_t rng = 0x9e3779b97f4a7c15ull ^ s->n;
    for (size_t round = 0; round < shuffles; round++) {
        for (size_t i = 0; i < s->n; i++) {
            perm[i] = (uint32_t)i;
        }
        if (round > 0) {
            for (size_t i = s->n; i > 1; i--) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                size_t j = (size_t)(rng % i);
                uint32_t t = perm[i - 1];
                perm[i - 1] = perm[j];
                perm[j] = t;
            }
        }
        roster_t *r = roster_is_channel(s->live) ? roster_new_channel(s->net) : roster_new(s->net);
        CHECK(r);
        for (size_t i = 0; i < s->n; i++) {
            const s_trec_t *e = &s->rec[perm[s->n - 1 - i]];
            CHECK(roster_add_event(r, e->id, e->author, e->ts, e->body, e->len) == 0);
            if (round == 1 && s->n < 64) {
                CHECK(roster_fold(r) == 0); // incremental, as a node does
            }
        }
        CHECK(roster_fold(r) == 0);
        uint8_t got[32];
        s_digest(r, got);
        CHECK(memcmp(got, want, 32) == 0);
        roster_destroy(&r);
    }
    free(perm);
}

static const char *
s_reason(const roster_t *r, const uint8_t id[32])
{
    for (size_t i = 0; i < roster_log_count(r); i++) {
        roster_log_entry_t e;
        CHECK(roster_log_at(r, i, &e) == 0);
        if (memcmp(e.id, id, 32) == 0) {
            return e.applied ? "applied" : e.reason;
        }
    }
    return "pending";
}

#define S_REASON(s, k) s_reason((s)->live, (s)->rec[k].id)

static void
s_test_codec(void)
{
    uint8_t par[3][32];
    memset(par, 0, sizeof par);
    par[0][0] = 1, par[1][0] = 2, par[2][0] = 3;
    uint8_t buf[ROSTER_BODY_MAX + 1];
    uint8_t again[ROSTER_BODY_MAX];
    for (uint8_t type = ROSTER_CREATE; type <= ROSTER_REKEY; type++) {
        roster_event_t ev = {
            .type = type, .role = 2, .on = 1, .uses = 5, .expires_ms = T0, .flags = 5
        };
        ev.n_parents = type == ROSTER_CREATE || type == ROSTER_CHANNEL ? 0 : 3;
        ev.parents = &par[0][0];
        memset(ev.key, 0x11, 32);
        memset(ev.salt, 0x22, sizeof ev.salt);
        memset(ev.proof, 0x33, sizeof ev.proof);
        ev.text = (const uint8_t *)"n\xc3\xa9";
        ev.text_len = 3;
        ev.text2 = (const uint8_t *)"f";
        ev.text2_len = 1;
        size_t len = 0;
        CHECK(roster_event_encode(&ev, buf, sizeof buf, &len) == 0);
        roster_event_t d;
        CHECK(roster_event_decode(buf, len, &d) == 0 && d.type == type);
        size_t len2 = 0;
        CHECK(roster_event_encode(&d, again, sizeof again, &len2) == 0);
        CHECK(len2 == len && memcmp(again, buf, len) == 0);
        //  Every truncation fails; a trailing byte fails.
        for (size_t k = 0; k < len; k++) {
            CHECK(roster_event_decode(buf, k, &d) != 0);
        }
        buf[len] = 0;
        CHECK(roster_event_decode(buf, len + 1, &d) == PARLEY_ERR_MALFORMED);
        //  A flipped byte fails, or decodes to an event that encodes back
        //  to exactly those bytes (one encoding per event).
        for (size_t k = 0; k < len; k++) {
            for (unsigned bit = 0; bit < 8; bit++) {
                buf[k] ^= (uint8_t)(1u << bit);
                if (roster_event_decode(buf, len, &d) == 0) {
                    CHECK(roster_event_encode(&d, again, sizeof again, &len2) == 0);
                    CHECK(len2 == len && memcmp(again, buf, len) == 0);
                }
                buf[k] ^= (uint8_t)(1u << bit);
            }
        }
        CHECK(roster_event_encode(&ev, buf, len - 1, &len2) == PARLEY_ERR_LIMIT && len2 == 0);
    }
    //  Specific refusals.
    //  Flags past ROSTER_CHAN_FLAGS are refused.
    roster_event_t ch = { .type = ROSTER_CHANNEL, .flags = 8 };
    size_t ch_len = 0;
    CHECK(roster_event_encode(&ch, buf, sizeof buf, &ch_len) == PARLEY_ERR_MALFORMED);
    ch.flags = ROSTER_CHAN_FLAGS;
    CHECK(roster_event_encode(&ch, buf, sizeof buf, &ch_len) == 0 && ch_len == 3 + 16 + 1);
    buf[ch_len - 1] = 0x08;
    roster_event_t ch_back;
    CHECK(roster_event_decode(buf, ch_len, &ch_back) == PARLEY_ERR_MALFORMED);
    roster_event_t ev = { .type = ROSTER_ROLE, .role = 4 };
    size_t len = 0;
    CHECK(roster_event_encode(&ev, buf, sizeof buf, &len) == PARLEY_ERR_MALFORMED);
    ev.role = 1;
    CHECK(roster_event_encode(&ev, buf, sizeof buf, &len) == 0);
    roster_event_t d;
    buf[0] = 2;
    CHECK(roster_event_decode(buf, len, &d) == PARLEY_ERR_UNSUPPORTED);
    buf[0] = 1;
    buf[1] = 11;
    CHECK(roster_event_decode(buf, len, &d) == PARLEY_ERR_MALFORMED);
    buf[1] = 0;
    CHECK(roster_event_decode(buf, len, &d) == PARLEY_ERR_MALFORMED);
    ev.n_parents = 2;
    memcpy(par[1], par[0], 32); // duplicate
    ev.parents = &par[0][0];
    CHECK(roster_event_encode(&ev, buf, sizeof buf, &len) == PARLEY_ERR_MALFORMED);
    par[1][0] = 0; // descending
    CHECK(roster_event_encode(&ev, buf, sizeof buf, &len) == PARLEY_ERR_MALFORMED);
    ev.n_parents = ROSTER_PARENTS_MAX + 1;
    CHECK(roster_event_encode(&ev, buf, sizeof buf, &len) == PARLEY_ERR_MALFORMED);
    roster_event_t inv = { .type = ROSTER_INVITE, .role = 1, .uses = 0 };
    CHECK(roster_event_encode(&inv, buf, sizeof buf, &len) == PARLEY_ERR_MALFORMED);
    inv.uses = ROSTER_INVITE_USES_MAX + 1;
    CHECK(roster_event_encode(&inv, buf, sizeof buf, &len) == PARLEY_ERR_MALFORMED);
    inv.uses = ROSTER_INVITE_USES_MAX;
    CHECK(roster_event_encode(&inv, buf, sizeof buf, &len) == 0);
    roster_event_t cr = { .type = ROSTER_CREATE };
    CHECK(roster_event_encode(&cr, buf, sizeof buf, &len) == PARLEY_ERR_MALFORMED); // no name
    static const char *const bad_text[] = { "a\x1b",    "\x7f",         "\xc2\x85",
                                            "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                            "\xe2\x82" };
    for (size_t i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++) {
        cr.text = (const uint8_t *)bad_text[i];
        cr.text_len = strlen(bad_text[i]);
        CHECK(roster_event_encode(&cr, buf, sizeof buf, &len) == PARLEY_ERR_MALFORMED);
    }
    cr.text = (const uint8_t *)"\xf0\x9f\x98\x80 ok";
    cr.text_len = strlen((const char *)cr.text);
    CHECK(roster_event_encode(&cr, buf, sizeof buf, &len) == 0);
    roster_event_t rm = { .type = ROSTER_REMOVE };
    char reason[ROSTER_REASON_MAX + 1];
    memset(reason, 'r', sizeof reason);
    rm.text = (const uint8_t *)reason;
    rm.text_len = ROSTER_REASON_MAX;
    CHECK(roster_event_encode(&rm, buf, sizeof buf, &len) == 0);
    rm.text_len = ROSTER_REASON_MAX + 1;
    CHECK(roster_event_encode(&rm, buf, sizeof buf, &len) == PARLEY_ERR_MALFORMED);
    CHECK(roster_event_decode(buf, ROSTER_BODY_MAX + 1, &d) == PARLEY_ERR_LIMIT);
}

static void
s_test_proof(void)
{
    s_tkey_t inv, joiner, other;
    s_tkey(&inv, 1);
    s_tkey(&joiner, 2);
    s_tkey(&other, 3);
    uint8_t net[32];
    memset(net, 7, sizeof net);
    uint8_t proof[64];
    CHECK(roster_join_proof_sign(inv.sk, net, joiner.pk, (const uint8_t *)"bob", 3, proof) == 0);
    CHECK(roster_join_proof_verify(inv.pk, net, joiner.pk, (const uint8_t *)"bob", 3, proof) == 0);
    CHECK(roster_join_proof_verify(other.pk, net, joiner.pk, (const uint8_t *)"bob", 3, proof)
          == PARLEY_ERR_AUTH);
    CHECK(roster_join_proof_verify(inv.pk, net, other.pk, (const uint8_t *)"bob", 3, proof)
          == PARLEY_ERR_AUTH);
    CHECK(roster_join_proof_verify(inv.pk, net, joiner.pk, (const uint8_t *)"bo", 2, proof)
          == PARLEY_ERR_AUTH);
    net[0] ^= 1;
    CHECK(roster_join_proof_verify(inv.pk, net, joiner.pk, (const uint8_t *)"bob", 3, proof)
          == PARLEY_ERR_AUTH);
    CHECK(roster_join_proof_sign(inv.sk, net, joiner.pk, proof, ROSTER_NAME_MAX + 1, proof)
          == PARLEY_ERR_MALFORMED);
}

//  Founder, invites and joins of every kind, adds, roles and relays.
static void
s_test_basic(void)
{
    s_tkey_t f, a, i1, i2, i3, i4, j[8];
    s_tkey(&f, 0x10);
    s_tkey(&a, 0x11);
    s_tkey(&i1, 0x21);
    s_tkey(&i2, 0x22);
    s_tkey(&i3, 0x23);
    s_tkey(&i4, 0x24);
    for (uint8_t k = 0; k < 8; k++) {
        s_tkey(&j[k], (uint8_t)(0x30 + k));
    }
    s_scn_t s;
    s_scn_init(&s, &f, 64);
    uint64_t t = T0;
    size_t c = s_create(&s, &f, t++);
    CHECK(roster_created(s.live) && memcmp(roster_founder(s.live), f.pk, 32) == 0);
    size_t name_len = 0;
    CHECK(memcmp(roster_name(s.live, &name_len), "acme", 4) == 0 && name_len == 4);
    CHECK(roster_role(s.live, f.pk) == ROSTER_ROLE_ADMIN && roster_rank(s.live, f.pk) == 0);
    s_invite_ev(&s, &f, t++, &i1, ROSTER_ROLE_MEMBER, T0 + 1000, 2);
    CHECK(roster_invite_live(s.live, i1.pk, T0 + 1000));
    CHECK(!roster_invite_live(s.live, i1.pk, T0 + 1001));
    size_t j0 = s_join_ev(&s, &j[0], t++, &i1, true);
    size_t j1 = s_join_ev(&s, &j[1], t++, &i1, true);
    size_t j2 = s_join_ev(&s, &j[2], t++, &i1, true);
    CHECK(strcmp(S_REASON(&s, j0), "applied") == 0 && strcmp(S_REASON(&s, j1), "applied") == 0);
    CHECK(strcmp(S_REASON(&s, j2), "invite used up") == 0);
    CHECK(!roster_invite_live(s.live, i1.pk, T0));
    s_invite_ev(&s, &f, t++, &i2, ROSTER_ROLE_MEMBER, T0 + 5, 5);
    size_t j3 = s_join_ev(&s, &j[3], T0 + 20, &i2, true); // joins after its expiry
    CHECK(strcmp(S_REASON(&s, j3), "invite expired") == 0);
    s_invite_ev(&s, &f, t++, &i3, ROSTER_ROLE_ADMIN, T0 + 1000, 5);
    s_simple(&s, &f, t++, ROSTER_REVOKE, i3.pk, 0);
    size_t j4 = s_join_ev(&s, &j[4], t++, &i3, true);
    CHECK(strcmp(S_REASON(&s, j4), "invite revoked") == 0);
    s_invite_ev(&s, &f, t++, &i4, ROSTER_ROLE_ADMIN, T0 + 1000, 5);
    size_t j5 = s_join_ev(&s, &j[5], t++, &i4, false);
    CHECK(strcmp(S_REASON(&s, j5), "bad join proof") == 0);
    //  A member forges an invite: void, and so is a JOIN with it.
    s_tkey_t i5;
    s_tkey(&i5, 0x25);
    size_t forged = s_invite_ev(&s, &j[0], t++, &i5, ROSTER_ROLE_ADMIN, T0 + 1000, 5);
    CHECK(strcmp(S_REASON(&s, forged), "author is not an admin") == 0);
    size_t j6 = s_join_ev(&s, &j[6], t++, &i5, true);
    CHECK(strcmp(S_REASON(&s, j6), "unknown invite") == 0);
    //  A valid admin invite.
    size_t j7 = s_join_ev(&s, &j[7], t++, &i4, true);
    CHECK(strcmp(S_REASON(&s, j7), "applied") == 0);
    CHECK(roster_role(s.live, j[7].pk) == ROSTER_ROLE_ADMIN && roster_rank(s.live, j[7].pk) == 1);
    //  A joiner that is a member already.
    size_t again = s_join_ev(&s, &j[0], t++, &i4, true);
    CHECK(strcmp(S_REASON(&s, again), "already a member") == 0);
    //  Adds, roles, relays.
    s_simple(&s, &f, t++, ROSTER_ADD, a.pk, ROSTER_ROLE_ADMIN);
    CHECK(roster_rank(s.live, a.pk) == 2);
    size_t dup = s_simple(&s, &f, t++, ROSTER_ADD, a.pk, ROSTER_ROLE_MEMBER);
    CHECK(strcmp(S_REASON(&s, dup), "already a member") == 0);
    s_simple(&s, &a, t++, ROSTER_ROLE, j[0].pk, ROSTER_ROLE_ADMIN);
    CHECK(roster_rank(s.live, j[0].pk) == 3);
    size_t up = s_simple(&s, &j[0], t++, ROSTER_ROLE, a.pk, ROSTER_ROLE_MEMBER);
    CHECK(strcmp(S_REASON(&s, up), "target is not junior to the author") == 0);
    s_simple(&s, &a, t++, ROSTER_RELAY, j[1].pk, 1);
    CHECK(roster_is_relay(s.live, j[1].pk) && roster_relay_count(s.live) == 1);
    size_t bad_relay = s_simple(&s, &j[1], t++, ROSTER_RELAY, j[1].pk, 0);
    CHECK(strcmp(S_REASON(&s, bad_relay), "author is not an admin") == 0);
    //  A second CREATE is void.
    size_t c2 = s_create(&s, &f, t++);
    CHECK(strcmp(S_REASON(&s, c), "applied") == 0);
    CHECK(strcmp(S_REASON(&s, c2), "network already created") == 0);
    CHECK(roster_member_count(s.live) == 5); // f, j0, j1, j7, a
    CHECK(roster_admin_count(s.live) == 4);
    CHECK(memcmp(roster_admin_at(s.live, 0), f.pk, 32) == 0);
    CHECK(memcmp(roster_admin_at(s.live, 1), j[7].pk, 32) == 0);
    roster_member_t m;
    CHECK(roster_member_at(s.live, 1, &m) == 0);
    CHECK(memcmp(m.pk, j[0].pk, 32) == 0 && m.via_invite && memcmp(m.invite_pk, i1.pk, 32) == 0);
    CHECK(memcmp(m.added_by, f.pk, 32) == 0 && m.name_len == 3);
    CHECK(roster_invite_count(s.live) == 4);
    CHECK(roster_pending_count(s.live) == 0);
    s_check_orders(&s, 12);
    s_scn_free(&s);
}

//  Role changes, ranks, revokes and invites refused; heads past 16.
static void
s_test_roles(void)
{
    s_tkey_t f, a, b, c, m, inv;
    s_tkey(&f, 0x80);
    s_tkey(&a, 0x81);
    s_tkey(&b, 0x82);
    s_tkey(&c, 0x83);
    s_tkey(&m, 0x84);
    s_tkey(&inv, 0x85);
    s_scn_t s;
    s_scn_init(&s, &f, 64);
    uint64_t t = T0;
    s_create(&s, &f, t++);
    s_simple(&s, &f, t++, ROSTER_ADD, a.pk, ROSTER_ROLE_ADMIN);
    s_simple(&s, &f, t++, ROSTER_ADD, b.pk, ROSTER_ROLE_MEMBER);
    s_simple(&s, &a, t++, ROSTER_ROLE, b.pk, ROSTER_ROLE_ADMIN); // a junior may promote
    CHECK(roster_rank(s.live, a.pk) == 1 && roster_rank(s.live, b.pk) == 2);
    size_t up = s_simple(&s, &b, t++, ROSTER_ROLE, a.pk, ROSTER_ROLE_MEMBER);
    CHECK(strcmp(S_REASON(&s, up), "target is not junior to the author") == 0);
    size_t self_demote = s_simple(&s, &b, t++, ROSTER_ROLE, b.pk, ROSTER_ROLE_MEMBER);
    CHECK(strcmp(S_REASON(&s, self_demote), "target is not junior to the author") == 0);
    s_simple(&s, &a, t++, ROSTER_ROLE, b.pk, ROSTER_ROLE_MEMBER); // a senior may demote
    CHECK(roster_role(s.live, b.pk) == ROSTER_ROLE_MEMBER);
    CHECK(roster_rank(s.live, b.pk) == ROSTER_RANK_NONE && roster_admin_count(s.live) == 2);
    s_simple(&s, &f, t++, ROSTER_ROLE, b.pk, ROSTER_ROLE_ADMIN); // a new rank
    CHECK(roster_rank(s.live, b.pk) == 3);
    size_t same = s_simple(&s, &f, t++, ROSTER_ROLE, b.pk, ROSTER_ROLE_ADMIN);
    CHECK(strcmp(S_REASON(&s, same), "no change") == 0);
    size_t ghost = s_simple(&s, &f, t++, ROSTER_RELAY, c.pk, 1);
    CHECK(strcmp(S_REASON(&s, ghost), "not a member") == 0);
    size_t ghost_rm = s_simple(&s, &f, t++, ROSTER_REMOVE, c.pk, 0);
    CHECK(strcmp(S_REASON(&s, ghost_rm), "not a member") == 0);
    size_t outsider = s_simple(&s, &c, t++, ROSTER_ADD, c.pk, ROSTER_ROLE_ADMIN);
    CHECK(strcmp(S_REASON(&s, outsider), "author is not a member") == 0);
    //  Invites: a duplicate, a revoke by a member, an unknown revoke.
    s_simple(&s, &f, t++, ROSTER_ADD, m.pk, ROSTER_ROLE_MEMBER);
    s_invite_ev(&s, &a, t++, &inv, ROSTER_ROLE_MEMBER, T0 + 100000, 1);
    size_t dup = s_invite_ev(&s, &f, t++, &inv, ROSTER_ROLE_ADMIN, T0 + 100000, 9);
    CHECK(strcmp(S_REASON(&s, dup), "invite exists") == 0);
    size_t mrev = s_simple(&s, &m, t++, ROSTER_REVOKE, inv.pk, 0);
    CHECK(strcmp(S_REASON(&s, mrev), "author is not an admin") == 0);
    size_t unk = s_simple(&s, &f, t++, ROSTER_REVOKE, c.pk, 0);
    CHECK(strcmp(S_REASON(&s, unk), "unknown invite") == 0);
    CHECK(roster_invite_live(s.live, inv.pk, T0));
    roster_invite_t iv;
    CHECK(roster_invite_at(s.live, 0, &iv) == 0 && memcmp(iv.author, a.pk, 32) == 0);
    CHECK(iv.uses == 1 && iv.used == 0 && !iv.revoked && iv.role == ROSTER_ROLE_MEMBER);
    s_simple(&s, &b, t++, ROSTER_REVOKE, inv.pk, 0);
    CHECK(!roster_invite_live(s.live, inv.pk, T0));
    size_t again = s_simple(&s, &b, t++, ROSTER_REVOKE, inv.pk, 0);
    CHECK(strcmp(S_REASON(&s, again), "invite already revoked") == 0);
    //  The log names type, author and target.
    roster_log_entry_t e;
    CHECK(roster_log_at(s.live, roster_log_count(s.live) - 1, &e) == 0);
    CHECK(e.type == ROSTER_REVOKE && !e.applied && memcmp(e.author, b.pk, 32) == 0);
    CHECK(memcmp(e.target, inv.pk, 32) == 0 && e.ts_ms == t - 1);
    CHECK(roster_log_at(s.live, roster_log_count(s.live), &e) == PARLEY_ERR_NOTFOUND);
    s_check_orders(&s, 8);
    //  20 concurrent events: 16 heads, the smallest ids, sorted.
    uint8_t heads[ROSTER_PARENTS_MAX][32];
    size_t nh = roster_heads(s.live, heads);
    CHECK(nh == 1);
    uint8_t base[32];
    memcpy(base, heads[0], 32);
    for (uint8_t k = 0; k < 20; k++) {
        roster_event_t ev = { .type = ROSTER_RELAY, .on = k & 1, .n_parents = 1, .parents = base };
        memcpy(ev.key, m.pk, 32);
        s_emit(&s, &f, t + k, &ev, true);
    }
    nh = roster_heads(s.live, heads);
    CHECK(nh == ROSTER_PARENTS_MAX);
    size_t smaller = 0;
    for (size_t i = s.n - 20; i < s.n; i++) {
        smaller += memcmp(s.rec[i].id, heads[ROSTER_PARENTS_MAX - 1], 32) <= 0;
    }
    CHECK(smaller == ROSTER_PARENTS_MAX);
    for (size_t i = 1; i < nh; i++) {
        CHECK(memcmp(heads[i - 1], heads[i], 32) < 0);
    }
    //  The next event merges 16 of them; 4 remain, plus itself.
    s_simple(&s, &f, t + 100, ROSTER_RELAY, m.pk, 1);
    CHECK(roster_heads(s.live, heads) == 5 && roster_is_relay(s.live, m.pk));
    s_check_orders(&s, 8);
    s_scn_free(&s);
}

//  Two admins in a partition: A removes B while B removes A and adds M.
static void
s_test_partition(void)
{
    s_tkey_t f, a, b, m, n;
    s_tkey(&f, 0x40);
    s_tkey(&a, 0x41);
    s_tkey(&b, 0x42);
    s_tkey(&m, 0x43);
    s_tkey(&n, 0x44);
    s_scn_t s;
    s_scn_init(&s, &f, 32);
    uint64_t t = T0;
    s_create(&s, &f, t++);
    s_simple(&s, &f, t++, ROSTER_ADD, a.pk, ROSTER_ROLE_ADMIN);
    s_simple(&s, &f, t++, ROSTER_ADD, b.pk, ROSTER_ROLE_ADMIN);
    //  B adds N before the split: A's REMOVE of B names it, so it stays.
    size_t add_n = s_simple(&s, &b, t++, ROSTER_ADD, n.pk, ROSTER_ROLE_MEMBER);
    uint8_t heads[ROSTER_PARENTS_MAX][32];
    size_t nh = roster_heads(s.live, heads);
    CHECK(nh == 1);
    //  Both sides of the split name the same parents. B acts later in
    //  time, so only the rule (not the clock) can decide.
    roster_event_t ev = { .type = ROSTER_REMOVE, .n_parents = nh, .parents = &heads[0][0] };
    memcpy(ev.key, b.pk, 32);
    size_t a_rm_b = s_emit(&s, &a, t + 50, &ev, true);
    memcpy(ev.key, a.pk, 32);
    size_t b_rm_a = s_emit(&s, &b, t + 1, &ev, true);
    //  B's ADD of M names B's own REMOVE (B's side of the split).
    roster_event_t add = {
        .type = ROSTER_ADD, .role = ROSTER_ROLE_MEMBER, .n_parents = 1, .parents = s.rec[b_rm_a].id
    };
    memcpy(add.key, m.pk, 32);
    size_t b_add_m = s_emit(&s, &b, t + 2, &add, true);
    //  And a later event on A's side only.
    roster_event_t relay = {
        .type = ROSTER_RELAY, .on = 1, .n_parents = 1, .parents = s.rec[a_rm_b].id
    };
    memcpy(relay.key, n.pk, 32);
    size_t a_relay = s_emit(&s, &a, t + 60, &relay, true);
    CHECK(roster_role(s.live, a.pk) == ROSTER_ROLE_ADMIN);
    CHECK(roster_role(s.live, b.pk) == ROSTER_ROLE_NONE && roster_is_removed(s.live, b.pk));
    CHECK(roster_role(s.live, m.pk) == ROSTER_ROLE_NONE);
    CHECK(roster_role(s.live, n.pk) == ROSTER_ROLE_MEMBER && roster_is_relay(s.live, n.pk));
    CHECK(strcmp(S_REASON(&s, add_n), "applied") == 0);
    CHECK(strcmp(S_REASON(&s, a_rm_b), "applied") == 0);
    CHECK(strcmp(S_REASON(&s, b_rm_a), "author removed concurrently") == 0);
    CHECK(strcmp(S_REASON(&s, b_add_m), "author removed concurrently") == 0);
    CHECK(strcmp(S_REASON(&s, a_relay), "applied") == 0);
    CHECK(roster_admin_count(s.live) == 2);
    //  Two heads now: B's ADD and A's RELAY; the next event merges them.
    nh = roster_heads(s.live, heads);
    CHECK(nh == 2 && memcmp(heads[0], heads[1], 32) < 0);
    s_check_orders(&s, 16);

    //  A junior admin cannot remove or demote the founder, nor a senior.
    size_t jr = s_simple(&s, &a, t + 70, ROSTER_REMOVE, f.pk, 0);
    CHECK(strcmp(S_REASON(&s, jr), "only the founder can remove itself") == 0);
    size_t jd = s_simple(&s, &a, t + 71, ROSTER_ROLE, f.pk, ROSTER_ROLE_MEMBER);
    CHECK(strcmp(S_REASON(&s, jd), "target is not junior to the author") == 0);
    //  A member leaves, cannot come back by invite, comes back by ADD.
    size_t leave = s_simple(&s, &n, t + 72, ROSTER_REMOVE, n.pk, 0);
    CHECK(strcmp(S_REASON(&s, leave), "applied") == 0 && roster_is_removed(s.live, n.pk));
    CHECK(!roster_is_relay(s.live, n.pk));
    s_tkey_t inv;
    s_tkey(&inv, 0x45);
    s_invite_ev(&s, &f, t + 73, &inv, ROSTER_ROLE_MEMBER, T0 + 100000, 3);
    size_t back = s_join_ev(&s, &n, t + 74, &inv, true);
    CHECK(strcmp(S_REASON(&s, back), "removed: only an admin can add it back") == 0);
    s_simple(&s, &a, t + 75, ROSTER_ADD, n.pk, ROSTER_ROLE_MEMBER);
    CHECK(roster_role(s.live, n.pk) == ROSTER_ROLE_MEMBER && !roster_is_removed(s.live, n.pk));
    //  A member (not an admin) cannot remove another.
    size_t mr = s_simple(&s, &n, t + 76, ROSTER_REMOVE, a.pk, 0);
    CHECK(strcmp(S_REASON(&s, mr), "author is not an admin") == 0);
    //  Demotion: F demotes A; A's concurrent RELAY is void, its earlier
    //  events stay.
    nh = roster_heads(s.live, heads);
    roster_event_t dem = {
        .type = ROSTER_ROLE, .role = ROSTER_ROLE_MEMBER, .n_parents = nh, .parents = &heads[0][0]
    };
    memcpy(dem.key, a.pk, 32);
    roster_event_t rel = {
        .type = ROSTER_RELAY, .on = 1, .n_parents = nh, .parents = &heads[0][0]
    };
    memcpy(rel.key, f.pk, 32);
    size_t demote = s_emit(&s, &f, t + 200, &dem, true);
    size_t a_conc = s_emit(&s, &a, t + 100, &rel, true);
    CHECK(strcmp(S_REASON(&s, demote), "applied") == 0);
    CHECK(strcmp(S_REASON(&s, a_conc), "author removed concurrently") == 0);
    CHECK(roster_role(s.live, a.pk) == ROSTER_ROLE_MEMBER && !roster_is_relay(s.live, f.pk));
    CHECK(strcmp(S_REASON(&s, a_relay), "applied") == 0);
    //  The founder leaves: allowed, and the network goes on without it.
    size_t fl = s_simple(&s, &f, t + 300, ROSTER_REMOVE, f.pk, 0);
    CHECK(strcmp(S_REASON(&s, fl), "applied") == 0 && roster_admin_count(s.live) == 0);
    s_check_orders(&s, 16);
    s_scn_free(&s);
}

//  Events with missing parents wait; events before a valid CREATE are void.
//  Acts made before or concurrently with a promotion stay void (§17.5);
//  an admin's acts count once they descend from its promotion, even when a
//  flood of void events and more concurrent heads than fit come between.
static void
s_test_promotion(void)
{
    s_tkey_t f, m, x, y, q;
    s_tkey(&f, 0x60);
    s_tkey(&m, 0x61);
    s_tkey(&x, 0x62);
    s_tkey(&y, 0x63);
    s_tkey(&q, 0x64);
    s_scn_t s;
    s_scn_init(&s, &f, 128);
    s_create(&s, &f, T0);
    s_simple(&s, &f, T0 + 1, ROSTER_ADD, m.pk, ROSTER_ROLE_MEMBER);
    size_t add_q = s_simple(&s, &f, T0 + 2, ROSTER_ADD, q.pk, ROSTER_ROLE_MEMBER);
    //  M, a member, adds X: void. F promotes M on the same parents, not
    //  having seen it: in the order, the ROLE comes first (F is senior),
    //  yet M's ADD was not made as an admin and stays void.
    size_t m_add_x = s_simple(&s, &m, T0 + 3, ROSTER_ADD, x.pk, ROSTER_ROLE_MEMBER);
    CHECK(strcmp(S_REASON(&s, m_add_x), "author is not an admin") == 0);
    roster_event_t role = {
        .type = ROSTER_ROLE, .role = ROSTER_ROLE_ADMIN, .n_parents = 1, .parents = s.rec[add_q].id
    };
    memcpy(role.key, m.pk, 32);
    size_t promote = s_emit(&s, &f, T0 + 4, &role, true);
    CHECK(strcmp(S_REASON(&s, promote), "applied") == 0);
    CHECK(roster_role(s.live, m.pk) == ROSTER_ROLE_ADMIN);
    CHECK(strcmp(S_REASON(&s, m_add_x), "author was not yet an admin when it acted") == 0);
    CHECK(roster_role(s.live, x.pk) == ROSTER_ROLE_NONE);
    //  Q floods void ADDs and F makes concurrent INVITEs: more heads than
    //  an event can name, none of them descending from the promotion.
    roster_event_t flood = {
        .type = ROSTER_ADD, .role = ROSTER_ROLE_ADMIN, .n_parents = 1, .parents = s.rec[add_q].id
    };
    for (uint8_t i = 0; i < 24; i++) {
        s_tkey_t k;
        s_tkey(&k, (uint8_t)(0x80 + i));
        memcpy(flood.key, k.pk, 32);
        size_t v = s_emit(&s, &q, T0 + 5 + i, &flood, true);
        CHECK(strcmp(S_REASON(&s, v), "author is not an admin") == 0);
    }
    for (uint8_t i = 0; i < 20; i++) {
        s_tkey_t k;
        s_tkey(&k, (uint8_t)(0xa0 + i));
        roster_event_t inv = { .type = ROSTER_INVITE,
                               .role = ROSTER_ROLE_MEMBER,
                               .expires_ms = T0 + 100000,
                               .uses = 1,
                               .n_parents = 1,
                               .parents = s.rec[add_q].id };
        memcpy(inv.key, k.pk, 32);
        size_t v = s_emit(&s, &f, T0 + 30 + i, &inv, true);
        CHECK(strcmp(S_REASON(&s, v), "applied") == 0);
    }
    //  M's next act, built on the heads, counts; so does F's.
    size_t m_add_y = s_simple(&s, &m, T0 + 60, ROSTER_ADD, y.pk, ROSTER_ROLE_MEMBER);
    CHECK(strcmp(S_REASON(&s, m_add_y), "applied") == 0);
    CHECK(roster_role(s.live, y.pk) == ROSTER_ROLE_MEMBER);
    CHECK(strcmp(S_REASON(&s, m_add_x), "author was not yet an admin when it acted") == 0);
    s_check_orders(&s, 8);
    s_scn_free(&s);
}

static void
s_test_pending(void)
{
    s_tkey_t f, x, m;
    s_tkey(&f, 0x50);
    s_tkey(&x, 0x51);
    s_tkey(&m, 0x52);
    s_scn_t s;
    s_scn_init(&s, &f, 16);
    //  A CREATE by someone who is not the founder of this id.
    size_t fake = s_create(&s, &x, T0 - 10);
    CHECK(strcmp(S_REASON(&s, fake), "not the founder of this network") == 0);
    //  An ADD with no parents, before the CREATE in time.
    roster_event_t add = { .type = ROSTER_ADD, .role = 1 };
    memcpy(add.key, m.pk, 32);
    size_t early = s_emit(&s, &f, T0 - 5, &add, true);
    CHECK(strcmp(S_REASON(&s, early), "before the network was created") == 0);
    size_t c = s_create(&s, &f, T0);
    CHECK(strcmp(S_REASON(&s, c), "applied") == 0);
    CHECK(roster_role(s.live, m.pk) == ROSTER_ROLE_NONE);
    size_t orphan = s_emit(&s, &f, T0 + 5, &add, true);
    CHECK(strcmp(S_REASON(&s, orphan), "no parents") == 0);
    CHECK(roster_role(s.live, m.pk) == ROSTER_ROLE_NONE);
    s_check_orders(&s, 8);
    s_scn_free(&s);

    //  A child that arrives before its parent waits for it.
    s_scn_init(&s, &f, 16);
    s_create(&s, &f, T0);
    s_simple(&s, &f, T0 + 1, ROSTER_ADD, m.pk, ROSTER_ROLE_MEMBER);
    s_simple(&s, &f, T0 + 2, ROSTER_RELAY, m.pk, 1);
    roster_t *r = roster_new(s.net);
    CHECK(r);
    CHECK(
        roster_add_event(r, s.rec[0].id, s.rec[0].author, s.rec[0].ts, s.rec[0].body, s.rec[0].len)
        == 0);
    CHECK(
        roster_add_event(r, s.rec[2].id, s.rec[2].author, s.rec[2].ts, s.rec[2].body, s.rec[2].len)
        == 0);
    CHECK(roster_fold(r) == 0);
    CHECK(roster_pending_count(r) == 1 && roster_log_count(r) == 1 && !roster_is_relay(r, m.pk));
    CHECK(
        roster_add_event(r, s.rec[2].id, s.rec[2].author, s.rec[2].ts, s.rec[2].body, s.rec[2].len)
        == PARLEY_ERR_DUPLICATE);
    CHECK(
        roster_add_event(r, s.rec[1].id, s.rec[1].author, s.rec[1].ts, s.rec[1].body, s.rec[1].len)
        == 0);
    CHECK(roster_fold(r) == 0);
    CHECK(roster_pending_count(r) == 0 && roster_is_relay(r, m.pk));
    roster_destroy(&r);
    s_scn_free(&s);
}

//  roster_add with real sealed envelopes; the checks on kind and scope.
static void
s_test_envelope(void)
{
    s_tkey_t f;
    s_tkey(&f, 0x60);
    uint8_t salt[ROSTER_SALT_LEN];
    memset(salt, 1, sizeof salt);
    uint8_t net[32];
    roster_network_id(f.pk, salt, net);
    roster_t *r = roster_new(net);
    CHECK(r);
    roster_event_t ev = { .type = ROSTER_CREATE, .text = (const uint8_t *)"n", .text_len = 1 };
    memcpy(ev.salt, salt, sizeof salt);
    uint8_t body[ROSTER_BODY_MAX];
    size_t body_len = 0;
    CHECK(roster_event_encode(&ev, body, sizeof body, &body_len) == 0);
    envelope_t fields = { .kind = ENVELOPE_KIND_NET, .seq = 1, .ts_ms = T0 };
    fields.version = PARLEY_ENVELOPE_VERSION;
    memcpy(fields.author, f.pk, 32);
    memcpy(fields.scope, net, 32);
    fields.body = body;
    fields.body_len = body_len;
    uint8_t buf[1024];
    size_t len = 0;
    CHECK(envelope_seal(&fields, f.sk, buf, sizeof buf, &len) == 0);
    envelope_t env;
    uint8_t id[32];
    CHECK(envelope_check(buf, len, T0, &env, id) == 0);
    CHECK(roster_add(r, &env) == 0 && roster_created(r));
    CHECK(roster_add(r, &env) == PARLEY_ERR_DUPLICATE);
    roster_log_entry_t e;
    CHECK(roster_log_at(r, 0, &e) == 0 && memcmp(e.id, id, 32) == 0 && e.applied);
    env.kind = ENVELOPE_KIND_DM;
    CHECK(roster_add(r, &env) == PARLEY_ERR_UNSUPPORTED);
    env.kind = ENVELOPE_KIND_CHAN; /* a channel's event in a network's fold */
    CHECK(roster_add(r, &env) == PARLEY_ERR_UNSUPPORTED);
    roster_t *chan = roster_new_channel(net);
    CHECK(chan && roster_add(chan, &env) == 0 && !roster_created(chan)); /* CREATE: void */
    roster_destroy(&chan);
    env.kind = ENVELOPE_KIND_NET;
    uint8_t other_net[32];
    memcpy(other_net, net, 32);
    other_net[0] ^= 1;
    roster_t *other = roster_new(other_net);
    CHECK(other && roster_add(other, &env) == PARLEY_ERR_STATE);
    roster_destroy(&other);
    roster_destroy(&r);
}

//  The bounds: events and invites refused past their limits.
static void
s_test_limits(void)
{
    uint8_t net[32] = { 0 };
    roster_t *r = roster_new(net);
    CHECK(r);
    roster_event_t ev = { .type = ROSTER_INVITE, .role = 1, .uses = 1 };
    uint8_t body[ROSTER_BODY_MAX];
    size_t len = 0;
    uint8_t id[32] = { 0 };
    uint8_t author[32] = { 0 };
    for (uint32_t i = 0; i <= ROSTER_INVITES_MAX; i++) {
        memcpy(ev.key, &i, sizeof i);
        CHECK(roster_event_encode(&ev, body, sizeof body, &len) == 0);
        memcpy(id, &i, sizeof i);
        int rc = roster_add_event(r, id, author, T0, body, len);
        CHECK(rc == (i < ROSTER_INVITES_MAX ? PARLEY_OK : PARLEY_ERR_LIMIT));
    }
    roster_event_t rv = { .type = ROSTER_REVOKE };
    CHECK(roster_event_encode(&rv, body, sizeof body, &len) == 0);
    for (uint32_t i = ROSTER_INVITES_MAX; i <= ROSTER_EVENTS_MAX; i++) {
        memcpy(id, &i, sizeof i);
        int rc = roster_add_event(r, id, author, T0, body, len);
        CHECK(rc == (i < ROSTER_EVENTS_MAX ? PARLEY_OK : PARLEY_ERR_LIMIT));
    }
    CHECK(roster_event_count(r) == ROSTER_EVENTS_MAX);
    CHECK(roster_fold(r) == 0 && roster_log_count(r) == ROSTER_EVENTS_MAX);
    CHECK(!roster_created(r) && roster_member_count(r) == 0);
    roster_destroy(&r);
}

//  A 1,000-member network: 1 CREATE, 1,000 INVITEs and JOINs, 100 RELAYs.
static void
s_test_bench(bool verbose)
{
    s_tkey_t f;
    s_tkey(&f, 0x70);
    s_scn_t s;
    s_scn_init(&s, &f, 2200);
    s_create(&s, &f, T0);
    //  Built without a fold per event: parents are each previous event.
    roster_t *live = s.live;
    uint8_t prev[32];
    memcpy(prev, s.rec[0].id, 32);
    for (uint32_t k = 0; k < 1100; k++) {
        s_tkey_t inv, j;
        uint8_t seed[32] = { 0 };
        memcpy(seed, &k, sizeof k);
        seed[31] = 1;
        CHECK(crypto_sign_seed_keypair(inv.pk, inv.sk, seed) == 0);
        seed[31] = 2;
        CHECK(crypto_sign_seed_keypair(j.pk, j.sk, seed) == 0);
        for (int step = 0; step < (k < 1000 ? 2 : 1); step++) {
            roster_event_t ev = { .n_parents = 1, .parents = prev };
            const s_tkey_t *author = &f;
            if (k >= 1000) {
                ev.type = ROSTER_RELAY;
                ev.on = 1;
                uint32_t target = (k - 1000) * 10;
                memset(seed, 0, sizeof seed);
                memcpy(seed, &target, sizeof target);
                seed[31] = 2;
                CHECK(crypto_sign_seed_keypair(j.pk, j.sk, seed) == 0);
                memcpy(ev.key, j.pk, 32);
            } else if (step == 0) {
                ev.type = ROSTER_INVITE;
                ev.role = 1;
                ev.uses = 1;
                ev.expires_ms = T0 + 1000000;
                memcpy(ev.key, inv.pk, 32);
            } else {
                ev.type = ROSTER_JOIN;
                memcpy(ev.key, inv.pk, 32);
                CHECK(roster_join_proof_sign(inv.sk, s.net, j.pk, NULL, 0, ev.proof) == 0);
                author = &j;
            }
            s_trec_t *r = &s.rec[s.n];
            CHECK(roster_event_encode(&ev, r->body, sizeof r->body, &r->len) == 0);
            memcpy(r->author, author->pk, 32);
            r->ts = T0 + s.n;
            crypto_generichash(r->id, 32, r->body, r->len, r->author, 32);
            CHECK(roster_add_event(live, r->id, r->author, r->ts, r->body, r->len) == 0);
            memcpy(prev, r->id, 32);
            s.n++;
        }
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(roster_fold(live) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(roster_member_count(live) == 1001 && roster_relay_count(live) == 100);
    CHECK(roster_log_count(live) == s.n && roster_pending_count(live) == 0);
    if (verbose) {
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        printf("   bench: fold of %zu events, %zu members: %.2f ms\n", s.n,
               roster_member_count(live), ms);
    }
    s_check_orders(&s, 2);
    s_scn_free(&s);

    //  The removed-concurrently rule at scale: 100 admins each act 10 times
    //  on their own branch while the founder removes all of them on its.
    s_scn_init(&s, &f, 1400);
    s_create(&s, &f, T0);
    s_tkey_t adm[100];
    for (uint8_t k = 0; k < 100; k++) {
        s_tkey(&adm[k], (uint8_t)(0x90 + k));
        s_simple(&s, &f, T0 + 1 + k, ROSTER_ADD, adm[k].pk, ROSTER_ROLE_ADMIN);
    }
    uint8_t split[32];
    memcpy(split, s.rec[s.n - 1].id, 32);
    for (uint8_t k = 0; k < 100; k++) {
        memcpy(prev, split, 32);
        for (int step = 0; step < 10; step++) {
            roster_event_t ev = { .type = ROSTER_RELAY, .on = 1, .n_parents = 1, .parents = prev };
            memcpy(ev.key, adm[k].pk, 32);
            memcpy(prev, s.rec[s_emit(&s, &adm[k], T0 + 1000 + step, &ev, true)].id, 32);
        }
    }
    memcpy(prev, split, 32);
    for (uint8_t k = 0; k < 100; k++) {
        roster_event_t ev = { .type = ROSTER_REMOVE, .n_parents = 1, .parents = prev };
        memcpy(ev.key, adm[k].pk, 32);
        memcpy(prev, s.rec[s_emit(&s, &f, T0 + 2000 + k, &ev, true)].id, 32);
    }
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(roster_fold(s.live) == 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(roster_member_count(s.live) == 1 && roster_admin_count(s.live) == 1);
    CHECK(roster_relay_count(s.live) == 0);
    size_t voided = 0;
    for (size_t i = 0; i < roster_log_count(s.live); i++) {
        roster_log_entry_t e;
        CHECK(roster_log_at(s.live, i, &e) == 0);
        voided += !e.applied && strcmp(e.reason, "author removed concurrently") == 0;
    }
    CHECK(voided == 1000);
    if (verbose) {
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        printf("   bench: fold of %zu events, 100 admins removed concurrently: %.2f ms\n", s.n, ms);
    }
    s_check_orders(&s, 2);
    s_scn_free(&s);
}

/*  A channel's control log (SPEC §21.4): CHANNEL, owner, readers, REKEY,
 *  and the network's events void in it (and the channel's in a network). */
static void
s_test_channel(void)
{
    s_tkey_t o, a, m, r, x;
    s_tkey(&o, 0x71);
    s_tkey(&a, 0x72);
    s_tkey(&m, 0x73);
    s_tkey(&r, 0x74);
    s_tkey(&x, 0x75);
    s_scn_t s;
    s_scn_init(&s, &o, 32);
    //  The scenario's fold becomes a channel's, with the channel id.
    roster_destroy(&s.live);
    chan_id(o.pk, s.salt, s.net);
    s.live = roster_new_channel(s.net);
    CHECK(s.live && roster_is_channel(s.live) && !roster_created(s.live));
    //  A network's CREATE does not found it; CHANNEL by another key does not either.
    size_t bad_create = s_create(&s, &o, T0);
    CHECK(strcmp(S_REASON(&s, bad_create), "before the channel was created") == 0);
    roster_event_t ev = { .type = ROSTER_CHANNEL, .flags = ROSTER_CHAN_SHARED };
    memcpy(ev.salt, s.salt, sizeof ev.salt);
    size_t wrong = s_emit(&s, &x, T0 + 1, &ev, true);
    CHECK(strcmp(S_REASON(&s, wrong), "not the creator of this channel") == 0);
    size_t created = s_emit(&s, &o, T0 + 2, &ev, true);
    CHECK(strcmp(S_REASON(&s, created), "applied") == 0 && roster_created(s.live));
    CHECK(roster_channel_flags(s.live) == ROSTER_CHAN_SHARED);
    CHECK(roster_role(s.live, o.pk) == ROSTER_ROLE_ADMIN && roster_rank(s.live, o.pk) == 0);
    CHECK(roster_epoch(s.live) == 0);

    size_t add_a = s_simple(&s, &o, T0 + 3, ROSTER_ADD, a.pk, ROSTER_ROLE_ADMIN);
    size_t add_m = s_simple(&s, &a, T0 + 4, ROSTER_ADD, m.pk, ROSTER_ROLE_MEMBER);
    size_t add_r = s_simple(&s, &a, T0 + 5, ROSTER_ADD, r.pk, ROSTER_ROLE_READER);
    CHECK(strcmp(S_REASON(&s, add_a), "applied") == 0 && strcmp(S_REASON(&s, add_m), "applied") == 0
          && strcmp(S_REASON(&s, add_r), "applied") == 0);
    CHECK(roster_role(s.live, r.pk) == ROSTER_ROLE_READER && roster_member_count(s.live) == 4);
    //  A reader, like a member, is no admin: its ADD and REKEY are void.
    size_t r_add = s_simple(&s, &r, T0 + 6, ROSTER_ADD, x.pk, ROSTER_ROLE_MEMBER);
    CHECK(strcmp(S_REASON(&s, r_add), "author is not an admin") == 0);
    roster_event_t rekey = { .type = ROSTER_REKEY };
    size_t m_rekey = s_emit(&s, &m, T0 + 7, &rekey, false);
    CHECK(strcmp(S_REASON(&s, m_rekey), "author is not an admin") == 0);
    size_t a_rekey = s_emit(&s, &a, T0 + 8, &rekey, false);
    CHECK(strcmp(S_REASON(&s, a_rekey), "applied") == 0 && roster_epoch(s.live) == 1);
    //  A network's events are void in a channel, and so is text.
    size_t relay = s_simple(&s, &o, T0 + 9, ROSTER_RELAY, m.pk, 1);
    CHECK(strcmp(S_REASON(&s, relay), "not in a channel") == 0);
    roster_event_t named = { .type = ROSTER_ADD, .role = ROSTER_ROLE_MEMBER };
    memcpy(named.key, x.pk, 32);
    named.text = (const uint8_t *)"x";
    named.text_len = 1;
    size_t add_named = s_emit(&s, &o, T0 + 10, &named, false);
    CHECK(strcmp(S_REASON(&s, add_named), "text in a channel's log") == 0);
    //  Removal and leave raise the epoch; the reader may leave.
    size_t rm_m = s_simple(&s, &a, T0 + 11, ROSTER_REMOVE, m.pk, 0);
    size_t leave_r = s_simple(&s, &r, T0 + 12, ROSTER_REMOVE, r.pk, 0);
    CHECK(strcmp(S_REASON(&s, rm_m), "applied") == 0
          && strcmp(S_REASON(&s, leave_r), "applied") == 0);
    CHECK(roster_epoch(s.live) == 3 && roster_member_count(s.live) == 2);
    s_check_orders(&s, 20); // the same state from any arrival order
    s_scn_free(&s);

    //  An announce channel: an ADD of a member makes a reader.
    s_scn_init(&s, &o, 8);
    roster_destroy(&s.live);
    chan_id(o.pk, s.salt, s.net);
    s.live = roster_new_channel(s.net);
    ev.flags = ROSTER_CHAN_ANNOUNCE;
    s_emit(&s, &o, T0, &ev, true);
    s_simple(&s, &o, T0 + 1, ROSTER_ADD, m.pk, ROSTER_ROLE_MEMBER);
    s_simple(&s, &o, T0 + 2, ROSTER_ADD, a.pk, ROSTER_ROLE_ADMIN);
    CHECK(roster_role(s.live, m.pk) == ROSTER_ROLE_READER);
    CHECK(roster_role(s.live, a.pk) == ROSTER_ROLE_ADMIN);
    s_scn_free(&s);

    //  In a network: readers and REKEY are void.
    s_scn_init(&s, &o, 8);
    s_create(&s, &o, T0);
    size_t n_reader = s_simple(&s, &o, T0 + 1, ROSTER_ADD, m.pk, ROSTER_ROLE_READER);
    size_t n_rekey = s_emit(&s, &o, T0 + 2, &rekey, false);
    CHECK(strcmp(S_REASON(&s, n_reader), "not in a network") == 0);
    CHECK(strcmp(S_REASON(&s, n_rekey), "not in a network") == 0 && roster_epoch(s.live) == 0);
    s_scn_free(&s);
}

void
roster_test(bool verbose)
{
    if (verbose) {
        printf(" * roster: codec, join proofs, fold rules, orders, pending, promotion, limits\n");
    }
    s_test_codec();
    s_test_proof();
    s_test_basic();
    s_test_roles();
    s_test_partition();
    s_test_pending();
    s_test_promotion();
    s_test_channel();
    s_test_envelope();
    s_test_limits();
    s_test_bench(verbose);
}
