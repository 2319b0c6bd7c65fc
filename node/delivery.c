/*  node/delivery.c — see delivery.h. */
#include "delivery.h"

#include "../proto/b32.h"
#include "../proto/content.h"
#include "../proto/dm.h"
#include "../proto/envelope.h"
#include "verifier.h"
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  One envelope of the frame being read: what was learned of it before its
 *  turn (delivery_on_envelopes). */
typedef enum {
    S_PRE_CHECKED,  /* checked by the verifier: jobs[job] */
    S_PRE_OVERSIZE, /* past PARLEY_ENVELOPE_MAX */
    S_PRE_HELD,     /* in the log already */
    S_PRE_AGAIN,    /* an earlier one of the frame has its id: decided in turn */
} s_pre_state_t;

typedef struct {
    uint8_t id[32];
    s_pre_state_t state;
    size_t job; /* S_PRE_CHECKED: its index in jobs */
} s_pre_t;

/*  Per link (LINK_SLOT_DELIVERY). */
typedef struct {
    uint64_t next_flush; /* ms: resend the outbox no earlier than this (0: at the next flush) */
    bool flush_more;     /* the last resend was capped: continue on its ACKs */
    bool send_prekey;    /* publish our prekey after commit */
    bool send_bundles;   /* newly up: pass on the prekey bundles we hold for others */
} s_peer_t;

/*  Undecryptable envelopes kept from one author in this run. */
typedef struct {
    uint8_t author[32];
    uint32_t n;     /* envelopes kept */
    uint64_t bytes; /* their size */
} s_undec_t;

/*  What the log holds of one author (relayed scopes' quota). */
typedef struct {
    uint8_t author[32];
    uint64_t n;     /* envelopes */
    uint64_t bytes; /* their size */
} s_usage_t;

/*  An ACK received, recorded before the iteration's commit
 *  (delivery_before_commit): the peer's key, not its link, which may go. */
typedef struct {
    uint8_t peer[32];
    uint8_t id[32];
} s_acked_t;

/*  A message opened and committed whose "delivered" receipt is still to be
 *  sealed (delivery_before_commit of a later iteration). */
typedef struct {
    uint8_t author[32];
    uint8_t id[32];
    uint64_t expires_ms; /* the message's (0: never) */
} s_due_t;

struct delivery {
    core_t *core;                            /* borrowed */
    links_t *links;                          /* borrowed */
    session_t *session;                      /* borrowed */
    replica_t *replica;                      /* borrowed */
    network_t *network;                      /* borrowed: who may post */
    channels_t *channels;                    /* borrowed: channel envelopes */
    uint8_t *buf;                            /* PARLEY_FRAME_MAX: ACK frames */
    uint8_t *batchbuf;                       /* PARLEY_FRAME_MAX: an ENVELOPES batch being built */
    uint8_t *envbuf;                         /* PARLEY_ENVELOPE_MAX: an envelope being sealed */
    s_undec_t undec[DELIVERY_UNDEC_AUTHORS]; /* undecryptable kept, per author (this run) */
    size_t n_undec;                          /* entries in undec */
    uint64_t undec_bytes;                    /* undecryptable bytes kept in all (this run) */
    s_usage_t *usage;                        /* DELIVERY_QUOTA_AUTHORS: relayed authors */
    size_t n_usage;                          /* entries in usage */
    s_acked_t *acked;                        /* DELIVERY_ACKED_MAX: ACKs not yet recorded */
    size_t n_acked;                          /* entries in acked */
    s_acked_t *held;                         /* DELIVERY_HELD_MAX: ACKs we owe after a sync */
    size_t n_held;                           /* entries in held */
    uint64_t held_dropped;                   /* held ACKs a failed sync dropped */
    s_due_t *due;                            /* DELIVERY_DUE_MAX: receipts to seal */
    struct s_receipts *receipts;             /* PARLEY_BATCH_MAX, made on first use */
    uint8_t (*receipt_ids)[32];              /* PARLEY_BATCH_MAX² ids behind them */
    size_t n_ready;                          /* due[0, n_ready): their messages are committed */
    size_t n_due;                            /* due[n_ready, n_due): opened in this iteration */
    verifier_t *verifier;                    /* checks a frame's envelopes on every core */
    s_pre_t pre[PARLEY_BATCH_MAX];           /* the frame being read, envelope by envelope */
    verifier_job_t jobs[PARLEY_BATCH_MAX];   /* its envelopes that the verifier checks */
};

/*  Receipts to send after a batch: ids grouped by the author they go to and
 *  by whether the messages they name expire (a receipt expires with the
 *  messages it names, so one for a lasting message never carries an
 *  expiring one's id past its expiry, nor is cut short by it). */
typedef struct s_receipts {
    uint8_t author[32];
    bool expiring;       /* the ids name envelopes that expire */
    uint64_t expires_ms; /* the latest of their expiries (0 when !expiring) */
    uint8_t (*ids)[32];
    size_t n;
} s_receipts_t;

/*  An ENVELOPES frame being built, with the authors whose bundles go first. */
typedef struct {
    frame_batch_t batch;
    uint8_t authors[PARLEY_BATCH_MAX][32];
    size_t n_authors;
} s_batch_t;

delivery_t *
delivery_new(core_t *core, links_t *links, session_t *session, replica_t *replica,
             network_t *network, channels_t *channels)
{
    delivery_t *self = calloc(1, sizeof *self);
    if (!self) {
        return NULL;
    }
    self->core = core;
    self->links = links;
    self->session = session;
    self->replica = replica;
    self->network = network;
    self->channels = channels;
    self->buf = malloc(PARLEY_FRAME_MAX);
    self->batchbuf = malloc(PARLEY_FRAME_MAX);
    self->envbuf = malloc(PARLEY_ENVELOPE_MAX);
    self->usage = calloc(DELIVERY_QUOTA_AUTHORS, sizeof *self->usage);
    self->acked = malloc(DELIVERY_ACKED_MAX * sizeof *self->acked);
    self->held = malloc(DELIVERY_HELD_MAX * sizeof *self->held);
    self->due = malloc(DELIVERY_DUE_MAX * sizeof *self->due);
    self->verifier = verifier_new(core->cfg.verify_threads);
    if (!self->buf || !self->batchbuf || !self->envbuf || !self->usage || !self->acked
        || !self->held || !self->due || !self->verifier) {
        delivery_destroy(&self);
    }
    return self;
}

void
delivery_destroy(delivery_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    delivery_t *self = *self_p;
    free(self->buf);
    free(self->batchbuf);
    free(self->envbuf);
    free(self->usage);
    free(self->acked);
    free(self->held);
    free(self->due);
    free(self->receipts);
    free(self->receipt_ids);
    verifier_destroy(&self->verifier);
    free(self);
    *self_p = NULL;
}

static s_peer_t *
s_peer(link_t *link)
{
    s_peer_t *p = link_slot(link, LINK_SLOT_DELIVERY);
    if (!p && (p = calloc(1, sizeof *p))) {
        link_set_slot(link, LINK_SLOT_DELIVERY, p);
    }
    return p;
}

void
delivery_link_free(delivery_t *self, link_t *link)
{
    (void)self;
    free(link_slot(link, LINK_SLOT_DELIVERY));
    link_set_slot(link, LINK_SLOT_DELIVERY, NULL);
}

/* ---- JSON views ---- */

const char *
delivery_state_name(int state)
{
    switch (state) {
    case MSG_STATE_QUEUED: return "queued";
    case MSG_STATE_STORED: return "stored";
    case MSG_STATE_RELAYED: return "relayed";
    case MSG_STATE_DELIVERED: return "delivered";
    case MSG_STATE_READ: return "read";
    case MSG_STATE_RECEIVED: return "received";
    case MSG_STATE_OPENED: return "opened";
    default: return "unknown";
    }
}

static json_t *
s_hex(const uint8_t *data, size_t n)
{
    char text[129];
    if (n > 64 || hex_encode(data, n, text, sizeof text) != PARLEY_OK) {
        return json_null();
    }
    return json_string(text);
}

json_t *
delivery_msg_json(delivery_t *self, const store_msg_t *msg)
{
    const uint8_t *from = msg->outgoing ? identity_ed_pk(self->core->id) : msg->peer;
    store_contact_t contact;
    json_t *name = store_contact_by_pk(self->core->store, msg->peer, &contact) == PARLEY_OK
                       ? json_string(contact.name)
                       : json_null();
    return json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:b, s:I, s:I, s:s, s:s}", "msg_id",
                     s_hex(msg->msg_id, sizeof msg->msg_id), "envelope_id",
                     msg->has_env ? s_hex(msg->env_id, 32) : json_null(), "peer",
                     core_json_id(msg->peer), "peer_short", core_json_short_id(msg->peer),
                     "peer_name", name, "from", core_json_id(from), "outgoing", msg->outgoing,
                     "ts_ms", (json_int_t)msg->ts_ms, "seq", (json_int_t)msg->seq, "state",
                     delivery_state_name(msg->state), "text", msg->text ? msg->text : "");
}

/* ---- frames out ---- */

static void
s_batch_begin(delivery_t *self, s_batch_t *b)
{
    frame_batch_begin(&b->batch, self->batchbuf, PARLEY_FRAME_MAX);
    b->n_authors = 0;
}

//  Sends one ENVELOPES frame, preceded by the prekey bundles of its authors
//  (ours from memory, others' from the store): the receiver can then answer
//  every DM in it, even from a node it never met.
static bool
s_batch_send(delivery_t *self, link_t *link, s_batch_t *b)
{
    size_t flen = frame_batch_finish(&b->batch);
    if (flen == 0) {
        return true;
    }
    session_send_bundles(self->session, link, (const uint8_t(*)[32])b->authors, b->n_authors);
    return links_send(self->links, link, self->batchbuf, flen);
}

//  Adds one envelope, sending the batch first when it is full. False when
//  the link takes nothing more now (the outbox or sync resends).
static bool
s_batch_add(delivery_t *self, link_t *link, s_batch_t *b, const uint8_t *bytes, size_t len)
{
    if (frame_batch_add(&b->batch, bytes, len) != PARLEY_OK) {
        if (!s_batch_send(self, link, b)) {
            return false;
        }
        s_batch_begin(self, b);
        if (frame_batch_add(&b->batch, bytes, len) != PARLEY_OK) {
            return true; // cannot happen for a size-checked envelope: skipped
        }
    }
    const uint8_t *author = envelope_author(bytes, len);
    bool seen = !author || memcmp(author, identity_ed_pk(self->core->id), 32) == 0;
    for (size_t k = 0; k < b->n_authors && !seen; k++) {
        seen = memcmp(b->authors[k], author, 32) == 0;
    }
    if (!seen && b->n_authors < PARLEY_BATCH_MAX) {
        memcpy(b->authors[b->n_authors++], author, 32);
    }
    return true;
}

//  Resends everything the peer has not acknowledged, up to DELIVERY_FLUSH_MAX,
//  read from the store.
static void
s_flush_outbox(delivery_t *self, link_t *link, s_peer_t *p)
{
    uint8_t(*ids)[32] = malloc((size_t)DELIVERY_FLUSH_MAX * 32);
    size_t n = 0;
    if (ids
        && store_outbox_list(self->core->store, link_pk(link), DELIVERY_FLUSH_MAX, (uint8_t *)ids,
                             &n)
               == PARLEY_OK
        && n > 0) {
        link_used(link, core_now(self->core));
        //  Our prekey goes first, on the same connection as the envelopes
        //  (frames on one connection keep their order): the receiver then
        //  always holds it when it seals the receipt.
        session_send_own(self->session, link);
        s_batch_t b;
        s_batch_begin(self, &b);
        bool ok = true;
        for (size_t i = 0; ok && i < n; i++) {
            uint8_t *bytes = NULL;
            size_t len = 0;
            if (store_envelope_get(self->core->store, ids[i], &bytes, &len) != PARLEY_OK) {
                continue; // expired or erased since
            }
            ok = s_batch_add(self, link, &b, bytes, len);
            free(bytes);
        }
        if (ok) {
            (void)s_batch_send(self, link, &b); // lost: the next retry resends
        }
    }
    p->flush_more = n == DELIVERY_FLUSH_MAX;
    free(ids);
    p->next_flush = core_now(self->core) + self->core->cfg.retry_ms;
}

//  Whether a queued output may leave between the commit and its sync: a push
//  of a DM of ours. Its seq was reserved durably before (node.c checks) and
//  its key is derived from that seq (SPEC §6.4), so a power loss that undoes
//  the commit can make the node skip the number, never use it again.
static bool
s_early(const delivery_t *self, const core_out_t *o)
{
    const uint8_t *env = core_staged(self->core, o->staged);
    const uint8_t *author = envelope_author(env, o->len);
    return !o->ack && author && env[1] == ENVELOPE_KIND_DM
           && memcmp(author, identity_ed_pk(self->core->id), 32) == 0;
}

//  Which of a link's queued pushes go now.
typedef enum {
    S_PUSH_ALL,       /* every one */
    S_PUSH_EARLY,     /* those that may go before the sync (s_early) */
    S_PUSH_UNFLUSHED, /* those an outbox flush to the link just now did not carry */
} s_push_t;

//  Whether a queued push is one the outbox flush to link carries: a DM of
//  ours in our scope with its peer (its outbox row is committed with it).
//  Anything else — a channel's envelopes, a network event, what we forward
//  for others, our DMs to a relay — is in no outbox of the link.
static bool
s_flushed(delivery_t *self, const link_t *link, const core_out_t *o)
{
    const uint8_t *env = core_staged(self->core, o->staged);
    uint8_t dm[32];
    return s_early(self, o) && session_dm_scope(self->session, link_pk(link), dm)
           && memcmp(envelope_scope(env, o->len), dm, 32) == 0;
}

//  Whether a queued output is a push still to send in that mode.
static bool
s_due(delivery_t *self, const link_t *link, const core_out_t *o, s_push_t mode)
{
    if (o->ack || o->sent) {
        return false;
    }
    switch (mode) {
    case S_PUSH_EARLY: return s_early(self, o);
    case S_PUSH_UNFLUSHED: return !s_flushed(self, link, o);
    default: return true;
    }
}

//  The queued pushes of one link, from the after-commit queue; own: our
//  prekey bundle goes first (a link without delivery state, which never had
//  it at connection time).
static void
s_send_pushes(delivery_t *self, link_t *link, core_out_t *out, size_t n, bool own, s_push_t mode)
{
    bool any = false;
    for (size_t i = 0; i < n && !any; i++) {
        any = s_due(self, link, &out[i], mode);
    }
    if (!any) {
        return;
    }
    link_used(link, core_now(self->core));
    if (own) {
        session_send_own(self->session, link);
    }
    s_batch_t b;
    s_batch_begin(self, &b);
    for (size_t i = 0; i < n; i++) {
        if (!s_due(self, link, &out[i], mode)) {
            continue;
        }
        out[i].sent = true;
        if (!s_batch_add(self, link, &b, core_staged(self->core, out[i].staged), out[i].len)) {
            return; // not writable: the outbox and sync resend
        }
    }
    (void)s_batch_send(self, link, &b);
}

//  ACK frames to link: ids[0, k) are gathered in batchbuf (free until
//  pushes are built), sent whenever a frame is full and when done.
static void
s_ack_frame(delivery_t *self, link_t *link, size_t k)
{
    size_t len = 0;
    if (k > 0
        && frame_encode_ack(self->batchbuf, k, self->buf, PARLEY_FRAME_MAX, &len) == PARLEY_OK) {
        (void)links_send(self->links, link, self->buf, len); // lost: the peer resends
    }
}

static void
s_send_acks(delivery_t *self, link_t *link, const core_out_t *out, size_t n)
{
    uint8_t(*ids)[32] = (uint8_t(*)[32])(self->batchbuf);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!out[i].ack) {
            continue;
        }
        memcpy(ids[k++], out[i].id, 32);
        if (k == PARLEY_ACK_MAX) {
            s_ack_frame(self, link, k);
            k = 0;
        }
    }
    s_ack_frame(self, link, k);
}

//  This iteration's ACKs to link wait for the sync the node put off; after
//  a failed sync none is owed: what they name may not be on the disk.
static void
s_hold_acks(delivery_t *self, link_t *link, const core_out_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!out[i].ack) {
            continue;
        }
        if (self->core->sync_failed || self->n_held == DELIVERY_HELD_MAX) {
            self->held_dropped++; // full only if the node synced too late: the peer resends
            continue;
        }
        s_acked_t *h = &self->held[self->n_held++];
        memcpy(h->peer, link_pk(link), 32);
        memcpy(h->id, out[i].id, 32);
    }
}

static int
s_held_cmp(const void *a, const void *b)
{
    return memcmp(((const s_acked_t *)a)->peer, ((const s_acked_t *)b)->peer, 32);
}

//  The sync came: the held ACKs leave, to the links still online (a peer
//  that went meanwhile resends, and is ACKed then).
static void
s_release_held(delivery_t *self)
{
    qsort(self->held, self->n_held, sizeof *self->held, s_held_cmp);
    uint8_t(*ids)[32] = (uint8_t(*)[32])(self->batchbuf);
    size_t at = 0;
    while (at < self->n_held) {
        const uint8_t *peer = self->held[at].peer;
        link_t *link = links_find(self->links, peer);
        bool online = link && link_online(link);
        size_t k = 0;
        for (; at < self->n_held && memcmp(self->held[at].peer, peer, 32) == 0; at++) {
            if (!online) {
                continue;
            }
            memcpy(ids[k++], self->held[at].id, 32);
            if (k == PARLEY_ACK_MAX) {
                s_ack_frame(self, link, k);
                k = 0;
            }
        }
        if (online) {
            s_ack_frame(self, link, k);
        }
    }
    self->n_held = 0;
}

bool
delivery_may_hold(const delivery_t *self)
{
    const core_t *core = self->core;
    size_t acks = 0;
    for (size_t i = 0; i < core->n_out; i++) {
        acks += core->out[i].ack;
    }
    return acks <= DELIVERY_HELD_MAX - self->n_held;
}

void
delivery_push_early(delivery_t *self)
{
    core_t *core = self->core;
    core_out_sort(core);
    size_t at = 0;
    while (at < core->n_out) {
        link_t *link = core->out[at].link;
        size_t lo = at;
        while (at < core->n_out && core->out[at].link == link) {
            at++;
        }
        //  A link that is owed our prekey, bundles or a whole flush gets
        //  them first, in order, after the sync.
        s_peer_t *p = link_online(link) ? link_slot(link, LINK_SLOT_DELIVERY) : NULL;
        if (p && p->next_flush != 0 && !p->send_prekey && !p->send_bundles) {
            s_send_pushes(self, link, core->out + lo, at - lo, false, S_PUSH_EARLY);
        }
    }
}

void
delivery_after_commit(delivery_t *self)
{
    core_t *core = self->core;
    self->n_ready = self->n_due; // their messages are kept now
    //  What the ACKs name is durable unless its sync was put off (node.c).
    bool synced = !store_unsynced(core->store) && !core->sync_failed;
    if (core->sync_failed && self->n_held > 0) {
        self->held_dropped += self->n_held;
        self->n_held = 0;
    }
    if (synced && self->n_held > 0) {
        s_release_held(self);
    }
    core_out_sort(core);
    for (size_t i = 0; i < links_count(self->links); i++) {
        link_t *link = links_at(self->links, i);
        //  The queue is sorted by link: this link's entries are [lo, at).
        size_t lo = 0, hi = core->n_out;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if ((uintptr_t)core->out[mid].link < (uintptr_t)link) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        size_t at = lo;
        while (at < core->n_out && core->out[at].link == link) {
            at++;
        }
        if (!link_online(link)) {
            continue; // what it missed waits in the outbox and the log
        }
        if (synced) {
            s_send_acks(self, link, core->out + lo, at - lo);
        } else {
            s_hold_acks(self, link, core->out + lo, at - lo);
        }
        s_peer_t *p = link_slot(link, LINK_SLOT_DELIVERY);
        if (!p) {
            s_send_pushes(self, link, core->out + lo, at - lo, true, S_PUSH_ALL);
            continue;
        }
        if (p->send_prekey) {
            p->send_prekey = false;
            session_send_own(self->session, link);
        }
        if (p->send_bundles) {
            p->send_bundles = false;
            session_send_held(self->session, link);
        }
        //  Our bundle went with the connection (send_prekey) or with the
        //  last change: not again with every push.
        if (p->next_flush == 0) {
            //  Newly up, or a resend is due: the outbox goes whole, our DMs
            //  to the peer among it; the rest of this commit's pushes after.
            s_flush_outbox(self, link, p);
            s_send_pushes(self, link, core->out + lo, at - lo, false, S_PUSH_UNFLUSHED);
        } else {
            s_send_pushes(self, link, core->out + lo, at - lo, false, S_PUSH_ALL);
        }
    }
}

void
delivery_link_up(delivery_t *self, link_t *link)
{
    (void)self;
    s_peer_t *p = s_peer(link);
    if (p) {
        p->next_flush = 0;
        p->send_prekey = true;
        p->send_bundles = true;
    }
}

void
delivery_reconnected(delivery_t *self, link_t *link)
{
    (void)self;
    s_peer_t *p = s_peer(link);
    if (p) {
        p->send_prekey = true;
        p->next_flush = 0;
    }
}

void
delivery_prekey_changed(delivery_t *self)
{
    for (size_t i = 0; i < links_count(self->links); i++) {
        s_peer_t *p = s_peer(links_at(self->links, i));
        if (p) {
            p->send_prekey = true;
        }
    }
}

//  A due resend is only marked here: the tick runs inside the iteration's
//  transaction, where the outbox shows rows not yet committed (an envelope
//  sealed in this iteration). Sent before its commit, a kill -9 in between
//  would erase locally an envelope the peer holds. delivery_after_commit
//  sends it, from the committed outbox.
void
delivery_tick(delivery_t *self, uint64_t now)
{
    for (size_t i = 0; i < links_count(self->links); i++) {
        link_t *link = links_at(self->links, i);
        s_peer_t *p = link_online(link) ? s_peer(link) : NULL;
        if (p && p->next_flush != 0 && now >= p->next_flush) {
            p->next_flush = 0;
        } else if (p && p->next_flush != 0) {
            core_wake_at(self->core, p->next_flush);
        }
    }
}

/* ---- sealing ---- */

//  Seals content to peer as the next envelope of our side of the DM scope,
//  stores it, puts it in the outbox and queues its eager push. expires_ms is
//  absolute (0: never); PARLEY_ERR_EXPIRED, nothing written, if it has passed.
static int
s_seal(delivery_t *self, const uint8_t peer[32], const prekey_t *spk, const uint8_t *content,
       size_t content_len, uint64_t expires_ms, uint8_t env_id[32], uint64_t *seq_out,
       uint64_t *ts_out)
{
    core_t *core = self->core;
    envelope_t env;
    memset(&env, 0, sizeof env);
    env.version = PARLEY_ENVELOPE_VERSION;
    env.kind = ENVELOPE_KIND_DM;
    memcpy(env.author, identity_ed_pk(core->id), 32);
    if (!session_dm_scope(self->session, peer, env.scope)) {
        return PARLEY_ERR_CRYPTO;
    }
    //  Never a number used before, even one whose envelopes expired or was
    //  lost with a database (store_log.c, "Sequence numbers").
    int rc = store_seq_next(core->store, env.author, env.scope, &env.seq);
    if (rc != PARLEY_OK) {
        return rc;
    }
    env.ts_ms = core_now(core);
    if (expires_ms != 0 && expires_ms <= env.ts_ms) {
        return PARLEY_ERR_EXPIRED;
    }
    env.expires_ms = expires_ms;
    dm_header_t h;
    uint8_t key[32];
    size_t len = 0;
    rc = session_send_key(self->session, peer, spk, core_day(core, env.ts_ms), &h, key);
    if (rc == PARLEY_OK) {
        rc = dm_envelope_seal(core->id, &env, &h, key, content, content_len, self->envbuf,
                              PARLEY_ENVELOPE_MAX, &len);
    }
    sodium_memzero(key, sizeof key);
    if (rc == PARLEY_OK) {
        rc = envelope_sealed_view(&env, self->envbuf, len); // what we made: no decode
    }
    if (rc == PARLEY_OK) {
        envelope_id(&env, env_id);
        rc = store_envelope_put(core->store, &env, env_id, env.ts_ms);
    }
    if (rc == PARLEY_OK) {
        rc = store_outbox_add(core->store, env_id, peer, env.ts_ms);
    }
    if (rc != PARLEY_OK) {
        return rc;
    }
    replica_stored(self->replica, NULL, &env, env_id); // eager push: the peer and relays
    *seq_out = env.seq;
    *ts_out = env.ts_ms;
    return PARLEY_OK;
}

//  Seals msg with the expiry it was sent with (msg->expires_ms).
static int
s_seal_text(delivery_t *self, const prekey_t *spk, store_msg_t *msg)
{
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t clen = 0;
    int rc = content_encode_text(msg->text, strlen(msg->text), content, sizeof content, &clen);
    if (rc == PARLEY_OK) {
        rc = s_seal(self, msg->peer, spk, content, clen, msg->expires_ms, msg->env_id, &msg->seq,
                    &msg->ts_ms);
    }
    sodium_memzero(content, sizeof content);
    if (rc == PARLEY_OK) {
        msg->has_env = true;
        msg->state = MSG_STATE_STORED;
    }
    return rc;
}

int
delivery_send_text(delivery_t *self, const uint8_t peer[32], const char *text, size_t len,
                   uint64_t ttl_ms, store_msg_t *msg)
{
    core_t *core = self->core;
    memset(msg, 0, sizeof *msg);
    if (sodium_memcmp(peer, identity_ed_pk(core->id), 32) == 0) {
        return PARLEY_ERR_STATE;
    }
    if (len == 0 || len > PARLEY_TEXT_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (!content_utf8_valid(text, len)) {
        return PARLEY_ERR_MALFORMED;
    }
    msg->text = malloc(len + 1);
    if (!msg->text) {
        return PARLEY_ERR_NOMEM;
    }
    memcpy(msg->text, text, len);
    msg->text[len] = '\0';
    core_msg_id(core, msg->msg_id);
    memcpy(msg->peer, peer, 32);
    msg->outgoing = true;
    msg->ts_ms = core_now(core);
    //  Fixed now: a message that waits for a prekey keeps it, QUEUED, and is
    //  sealed with what remains of it or deleted unsent (s_seal_queued).
    msg->expires_ms = ttl_ms ? msg->ts_ms + ttl_ms : 0;
    msg->state = MSG_STATE_QUEUED;
    int rc = core_txn(core);
    if (rc != PARLEY_OK) {
        return rc;
    }
    //  Messages already waiting for this peer's prekey go first: order is kept.
    prekey_t spk;
    store_msg_t *queued = NULL;
    size_t n_queued = 0;
    //  A node recovering a lost database seals nothing yet: the message
    //  waits, QUEUED, as for a prekey not yet known (delivery_resume).
    rc = core->recovering ? PARLEY_ERR_NOTFOUND : store_peer_prekey_get(core->store, peer, &spk);
    size_t gone = 0;
    if (rc == PARLEY_OK) {
        rc = store_msg_queued(core->store, peer, &queued, &n_queued);
        store_msgs_free(queued, n_queued);
        queued = NULL;
    }
    if (rc == PARLEY_OK && n_queued > 0) {
        //  Expired ones no longer wait (the expiry pass may not have run
        //  yet): looked for only when some wait, not with every send.
        rc = store_expire_unlogged(core->store, msg->ts_ms, &gone);
        core->checkpoint = core->checkpoint || gone > 0;
        if (rc == PARLEY_OK && gone > 0) {
            rc = store_msg_queued(core->store, peer, &queued, &n_queued);
            store_msgs_free(queued, n_queued);
        }
    }
    if (rc == PARLEY_OK) {
        if (n_queued == 0) {
            rc = s_seal_text(self, &spk, msg);
        }
    } else if (rc == PARLEY_ERR_NOTFOUND) {
        rc = PARLEY_OK; // no prekey yet: the message waits, QUEUED, in history
    }
    if (rc == PARLEY_OK) {
        rc = store_msg_add(core->store, msg);
    }
    if (rc == PARLEY_ERR_MALFORMED) {
        //  The text passed its checks above: what failed one is a row read
        //  back from the database (a session, a prekey), i.e. damage.
        rc = PARLEY_ERR_CORRUPT;
    }
    if (rc != PARLEY_OK) {
        //  Part of the message may be written (session, envelope): none of
        //  it may commit. The caller's error reply says so.
        core_txn_fail(core, rc, "cannot store a message being sent");
    } else {
        links_use(self->links, peer); // beyond our ring: dialled now (SPEC §11.1)
    }
    return rc;
}

//  Seals every QUEUED message to peer now that its prekey is known, each
//  with the expiry it was sent with; those past it are deleted unsent first.
static void
s_seal_queued(delivery_t *self, const uint8_t peer[32])
{
    core_t *core = self->core;
    prekey_t spk;
    store_msg_t *msgs = NULL;
    size_t n = 0;
    size_t gone = 0;
    if (core->recovering) {
        return; // delivery_resume seals them when recovery ends
    }
    //  Looked at with every bundle its owner sends: only sealing is a write
    //  that promises (core_txn then); expiry's deletes checkpoint, synced.
    if (core_txn_ingest(core) != PARLEY_OK
        || store_peer_prekey_get(core->store, peer, &spk) != PARLEY_OK
        || store_expire_unlogged(core->store, core_now(core), &gone) != PARLEY_OK
        || store_msg_queued(core->store, peer, &msgs, &n) != PARLEY_OK
        || (n > 0 && core_txn(core) != PARLEY_OK)) {
        store_msgs_free(msgs, n);
        return; // tried again with the next bundle from that peer
    }
    if (gone > 0) {
        core->checkpoint = true; // their text must leave the WAL too
    }
    for (size_t i = 0; i < n; i++) {
        int rc = s_seal_text(self, &spk, &msgs[i]);
        if (rc == PARLEY_OK) {
            rc = store_msg_attach(core->store, msgs[i].msg_id, msgs[i].env_id, msgs[i].seq,
                                  msgs[i].ts_ms);
        }
        if (rc != PARLEY_OK) {
            core_txn_fail(core, rc, "cannot seal a queued message");
            break;
        }
        core_notify(core, "delivery", delivery_msg_json(self, &msgs[i]));
    }
    store_msgs_free(msgs, n);
}

void
delivery_resume(delivery_t *self)
{
    for (size_t i = 0; i < links_count(self->links); i++) {
        s_seal_queued(self, link_pk(links_at(self->links, i)));
    }
}

//  A receipt for ids, expiring at expires_ms (0: never) as the messages it
//  names do; none once that has passed (the messages are gone).
static void
s_send_receipt(delivery_t *self, const uint8_t peer[32], int status, const uint8_t (*ids)[32],
               size_t n, uint64_t expires_ms)
{
    core_t *core = self->core;
    prekey_t spk;
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t clen = 0;
    uint8_t env_id[32];
    uint64_t seq, ts;
    if (store_peer_prekey_get(core->store, peer, &spk) != PARLEY_OK) {
        log_write(&core->log, LOG_LEVEL_DEBUG,
                  "no prekey for a receipt yet; the sender sees 'stored'");
        return;
    }
    if (expires_ms != 0 && expires_ms <= core_now(core)) {
        return; // what it names has expired: nobody can read it
    }
    int rc = content_encode_receipt((uint8_t)status, (const uint8_t *)ids, n, content,
                                    sizeof content, &clen);
    if (rc == PARLEY_OK) {
        rc = s_seal(self, peer, &spk, content, clen, expires_ms, env_id, &seq, &ts);
    }
    sodium_memzero(content, sizeof content);
    if (rc != PARLEY_OK) {
        core_txn_fail(core, rc, "cannot seal a receipt");
    }
}

int
delivery_mark_read(delivery_t *self, const uint8_t peer[32], size_t *n)
{
    core_t *core = self->core;
    *n = 0;
    store_msg_t *msgs = NULL;
    size_t n_msgs = 0;
    int rc = core_txn(core);
    if (rc == PARLEY_OK) {
        rc = store_history(core->store, peer, 0, &msgs, &n_msgs);
    }
    uint8_t(*ids)[32] = rc == PARLEY_OK ? malloc((size_t)PARLEY_RECEIPT_MAX_IDS * 32) : NULL;
    if (rc == PARLEY_OK && !ids) {
        rc = PARLEY_ERR_NOMEM;
    }
    bool tell = !core->cfg.no_read_receipts;
    size_t k = 0;
    //  A receipt names either only expiring messages, expiring with the last
    //  of them, or only lasting ones (see s_receipts_t).
    bool expiring = false;
    uint64_t expires_ms = 0;
    for (size_t i = 0; rc == PARLEY_OK && i < n_msgs; i++) {
        bool changed = false;
        if (msgs[i].state != MSG_STATE_RECEIVED) {
            continue;
        }
        rc = store_msg_mark_read(core->store, msgs[i].env_id, &changed);
        if (rc != PARLEY_OK || !changed) {
            continue;
        }
        (*n)++;
        bool exp = msgs[i].expires_ms != 0;
        if (k > 0 && (k == PARLEY_RECEIPT_MAX_IDS || exp != expiring)) {
            if (tell) {
                s_send_receipt(self, peer, RECEIPT_READ, (const uint8_t(*)[32])ids, k, expires_ms);
            }
            k = 0;
        }
        if (k == 0) {
            expiring = exp;
            expires_ms = 0;
        }
        expires_ms = msgs[i].expires_ms > expires_ms ? msgs[i].expires_ms : expires_ms;
        memcpy(ids[k++], msgs[i].env_id, 32);
    }
    if (rc == PARLEY_OK && k > 0 && tell) {
        s_send_receipt(self, peer, RECEIPT_READ, (const uint8_t(*)[32])ids, k, expires_ms);
    }
    if (rc != PARLEY_OK) {
        core_txn_fail(core, rc, "cannot mark messages read");
    }
    free(ids);
    store_msgs_free(msgs, n_msgs);
    return rc;
}

/* ---- ingest ---- */

static void
s_count_reject(core_t *core, int rc)
{
    switch (rc) {
    case PARLEY_ERR_LIMIT: core->counters[C_OVERSIZE]++; break;
    case PARLEY_ERR_AUTH: core->counters[C_BAD_SIGNATURE]++; break;
    case PARLEY_ERR_FUTURE: core->counters[C_FUTURE]++; break;
    case PARLEY_ERR_EXPIRED: core->counters[C_EXPIRED]++; break;
    case PARLEY_ERR_UNSUPPORTED: core->counters[C_UNSUPPORTED]++; break;
    default: core->counters[C_MALFORMED]++; break;
    }
}

//  Failures that say nothing about the envelope: the iteration is retried.
static bool
s_transient(int rc)
{
    return rc == PARLEY_ERR_NOMEM || rc == PARLEY_ERR_IO || rc == PARLEY_ERR_BUSY;
}

//  Strikes link for bad input from author, when the link is author's own:
//  a node that forwards another's envelope cannot read it and is not to blame.
static void
s_strike_author(delivery_t *self, link_t *link, const uint8_t author[32], const char *why,
                unsigned weight)
{
    if (memcmp(link_pk(link), author, 32) == 0) {
        links_strike(self->links, link, why, weight);
    }
}

//  A receipt from peer (the DM's authenticated author). It speaks only for
//  messages we sent to peer: anyone else's word that our message to B
//  arrived would let a stranger fake "read" and stop our resends to B.
static void
s_on_receipt(delivery_t *self, link_t *link, const uint8_t peer[32], const content_t *c)
{
    core_t *core = self->core;
    int state = c->status == RECEIPT_READ ? MSG_STATE_READ : MSG_STATE_DELIVERED;
    size_t forged = 0;
    for (size_t i = 0; i < c->n_ids; i++) {
        const uint8_t *id = c->ids + 32 * i;
        uint8_t to[32];
        int rc = store_msg_recipient(core->store, id, to);
        if (rc == PARLEY_OK && sodium_memcmp(to, peer, 32) != 0) {
            forged++;
            continue;
        }
        if (rc == PARLEY_OK) {
            bool changed = false;
            store_msg_t msg;
            memset(&msg, 0, sizeof msg);
            rc = store_msg_raise(core->store, id, state, &changed, &msg);
            if (rc == PARLEY_OK && changed) {
                core_notify_received(core, "delivery", delivery_msg_json(self, &msg));
            }
            free(msg.text);
        }
        //  The recipient has it, by whatever path: no more resends to it.
        //  Only its own outbox row: NOTFOUND (no message of ours, e.g. one
        //  that expired) may name an envelope pending for someone else.
        if (rc == PARLEY_OK || rc == PARLEY_ERR_NOTFOUND) {
            rc = store_outbox_ack(core->store, id, peer);
        }
        if (rc != PARLEY_OK && rc != PARLEY_ERR_NOTFOUND) {
            core_txn_fail(core, rc, "cannot record a receipt");
            return;
        }
    }
    if (forged > 0) {
        core->counters[C_FORGED_RECEIPT] += forged;
        char sid[PARLEY_SHORT_ID_STRLEN + 1];
        identity_short_id(peer, sid);
        log_write(&core->log, LOG_LEVEL_WARN, "%zu forged receipt id(s) from %s: ignored", forged,
                  sid);
        s_strike_author(self, link, peer, "it sends receipts for others' messages", 1);
    }
}

static void
s_receipt_add(s_receipts_t *r, size_t *n_r, const uint8_t author[32], const uint8_t id[32],
              uint64_t expires_ms)
{
    bool expiring = expires_ms != 0;
    size_t i = 0;
    while (i < *n_r && (memcmp(r[i].author, author, 32) != 0 || r[i].expiring != expiring)) {
        i++;
    }
    if (i == *n_r) {
        if (*n_r == PARLEY_BATCH_MAX) {
            return;
        }
        memcpy(r[i].author, author, 32);
        r[i].expiring = expiring;
        r[i].expires_ms = 0;
        r[i].n = 0;
        (*n_r)++;
    }
    if (r[i].n < PARLEY_BATCH_MAX) {
        memcpy(r[i].ids[r[i].n++], id, 32);
        r[i].expires_ms = expires_ms > r[i].expires_ms ? expires_ms : r[i].expires_ms;
    }
}

//  Seals the receipts of due[0, n) (at most PARLEY_BATCH_MAX), grouped by
//  author and expiry.
static void
s_seal_due(delivery_t *self, const s_due_t *due, size_t n)
{
    //  Kept from call to call: 128 KiB of ids, past malloc's mmap threshold,
    //  would be mapped and unmapped for every batch.
    if (!self->receipts) {
        self->receipts = malloc(PARLEY_BATCH_MAX * sizeof *self->receipts);
        self->receipt_ids = malloc((size_t)PARLEY_BATCH_MAX * PARLEY_BATCH_MAX * 32);
        if (!self->receipts || !self->receipt_ids) {
            free(self->receipts);
            free(self->receipt_ids);
            self->receipts = NULL;
            self->receipt_ids = NULL;
            core_txn_fail(self->core, PARLEY_ERR_NOMEM, "cannot seal receipts");
            return;
        }
        for (size_t i = 0; i < PARLEY_BATCH_MAX; i++) {
            self->receipts[i].ids = self->receipt_ids + i * PARLEY_BATCH_MAX;
        }
    }
    s_receipts_t *r = self->receipts; // s_receipt_add sets up each group it starts
    size_t n_r = 0;
    for (size_t i = 0; i < n; i++) {
        s_receipt_add(r, &n_r, due[i].author, due[i].id, due[i].expires_ms);
    }
    for (size_t i = 0; i < n_r; i++) {
        s_send_receipt(self, r[i].author, RECEIPT_DELIVERED, (const uint8_t(*)[32])r[i].ids, r[i].n,
                       r[i].expires_ms);
    }
}

//  A receipt owed for a message opened in this iteration: sealed once the
//  message is committed, in a later iteration (delivery_before_commit), so
//  that neither its sealing nor its pages delay the message's commit and
//  notification. When the list is full, the oldest ready ones are sealed now.
static void
s_due_add(delivery_t *self, const uint8_t author[32], const uint8_t id[32], uint64_t expires_ms)
{
    if (self->n_due == DELIVERY_DUE_MAX) {
        size_t n = self->n_ready < PARLEY_BATCH_MAX ? self->n_ready : PARLEY_BATCH_MAX;
        if (n == 0) {
            return; // all of this iteration's: the sender sees "relayed", as without a prekey
        }
        s_seal_due(self, self->due, n);
        memmove(self->due, self->due + n, (self->n_due - n) * sizeof *self->due);
        self->n_ready -= n;
        self->n_due -= n;
    }
    s_due_t *d = &self->due[self->n_due++];
    memcpy(d->author, author, 32);
    memcpy(d->id, id, 32);
    d->expires_ms = expires_ms;
}

//  Whether an undecryptable envelope of len bytes from author may stay in
//  the log, and if so it is counted against the quotas: per author
//  DELIVERY_UNDEC_PER_AUTHOR envelopes and DELIVERY_UNDEC_AUTHOR_BYTES, in
//  all DELIVERY_UNDEC_BYTES, for DELIVERY_UNDEC_AUTHORS authors (this run).
//  Within them it is kept as before: the log stays whole, so sync and
//  resends find it held and do not bring it again; beyond them it is not
//  kept (and counted): nothing can read it, and signing is free.
static bool
s_undec_keep(delivery_t *self, const uint8_t author[32], size_t len)
{
    size_t i = 0;
    while (i < self->n_undec && memcmp(self->undec[i].author, author, 32) != 0) {
        i++;
    }
    if (i == self->n_undec) {
        if (self->n_undec == DELIVERY_UNDEC_AUTHORS) {
            return false;
        }
        memset(&self->undec[i], 0, sizeof self->undec[i]);
        memcpy(self->undec[i].author, author, 32);
        self->n_undec++;
    }
    s_undec_t *u = &self->undec[i];
    if (u->n >= DELIVERY_UNDEC_PER_AUTHOR || u->bytes + len > DELIVERY_UNDEC_AUTHOR_BYTES
        || self->undec_bytes + len > DELIVERY_UNDEC_BYTES) {
        return false;
    }
    u->n++;
    u->bytes += len;
    self->undec_bytes += len;
    return true;
}

//  Whether a relayed envelope of len bytes from author fits its quota
//  (DELIVERY_RELAY_*); if so it is counted as stored. The counts come from
//  the log on an author's first sight and are kept in memory after; when
//  the table is full it starts over (the log has the truth). Expiry makes
//  them high until then, never low. A rolled-back iteration leaves them
//  high too: both only ever refuse early, never let more in.
static int
s_relay_fits(delivery_t *self, const uint8_t author[32], size_t len, bool *fits)
{
    size_t i = 0;
    while (i < self->n_usage && memcmp(self->usage[i].author, author, 32) != 0) {
        i++;
    }
    if (i == self->n_usage) {
        if (self->n_usage == DELIVERY_QUOTA_AUTHORS) {
            self->n_usage = i = 0;
        }
        s_usage_t *u = &self->usage[i];
        int rc = store_author_usage(self->core->store, author, &u->n, &u->bytes);
        if (rc != PARLEY_OK) {
            return rc;
        }
        memcpy(u->author, author, 32);
        self->n_usage++;
    }
    s_usage_t *u = &self->usage[i];
    *fits = u->n < DELIVERY_RELAY_PER_AUTHOR && u->bytes + len <= DELIVERY_RELAY_AUTHOR_BYTES;
    if (*fits) {
        u->n++;
        u->bytes += len;
    }
    return PARLEY_OK;
}

//  Decrypts a DM from peer stored in this transaction and files its content.
//  Undecryptable ones are counted and stay in the log only, within the
//  quotas of s_undec_keep (false: the caller forgets the envelope); their
//  author's own link is struck (DELIVERY_UNDEC_STRIKE). A passing failure
//  (memory, disk) rolls the iteration back so that the envelope is not kept
//  without its message: the sender's resend tries again.
static bool
s_open_dm(delivery_t *self, link_t *link, const uint8_t peer[32], const envelope_t *env,
          const uint8_t id[32])
{
    core_t *core = self->core;
    dm_header_t h;
    uint8_t key[32];
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t clen = 0;
    content_t c;
    bool keep = true, opened = false;
    int rc = dm_body_parse(env, &h);
    //  A day past the envelope's own (bounded) time would only make us hash
    //  forward for nothing: such a body is refused before any ratchet work.
    if (rc == PARLEY_OK
        && (h.day < h.day0 || h.day > core_day(core, env->ts_ms + PARLEY_FUTURE_SKEW_MS))) {
        rc = PARLEY_ERR_MALFORMED;
    }
    if (rc == PARLEY_OK) {
        rc = session_recv_key(self->session, peer, &h, key, &opened);
    }
    bool impossible = rc == PARLEY_ERR_MALFORMED; // a header no honest author makes
    if (rc == PARLEY_OK) {
        rc = dm_envelope_open(env, key, content, sizeof content, &clen);
    }
    sodium_memzero(key, sizeof key);
    bool proven = rc == PARLEY_OK; // the body's MAC proved the session
    if (rc == PARLEY_OK) {
        rc = content_decode(content, clen, &c);
    }
    if (rc != PARLEY_OK && !s_transient(rc) && opened && !proven) {
        //  The body's MAC failed, so the header that opened the session was
        //  never proven: the session goes with it.
        //  (A session that failed before it was stored leaves nothing to
        //  forget: the first error is the one to tell.)
        int frc = session_recv_forget(self->session, peer, h.ek_pub);
        rc = frc == PARLEY_OK || frc == PARLEY_ERR_NOTFOUND ? rc : frc;
    }
    if (s_transient(rc)) {
        core_txn_fail(core, rc, "cannot open a DM");
    } else if (rc != PARLEY_OK) {
        core->counters[C_UNDECRYPTABLE]++;
        keep = s_undec_keep(self, peer, env->bytes_len);
        if (!keep) {
            core->counters[C_UNDECRYPTABLE_DROPPED]++;
        }
        //  An honest sender's DM fails to open only by accident (our day key
        //  destroyed, a lost prekey): the weight lets a few a minute pass
        //  and bans a flood of them.
        //  A relay forwards others' DMs and is not to blame; a member has
        //  no one else's DMs to us to forward.
        if (memcmp(link_pk(link), peer, 32) == 0 || !link_relay(link)) {
            links_strike(self->links, link,
                         impossible ? "it sends DMs with impossible headers"
                                    : "it sends DMs that cannot be opened",
                         DELIVERY_UNDEC_STRIKE);
        }
        //  Logged while kept: the quota bounds the log lines too.
        if (keep) {
            char sid[PARLEY_SHORT_ID_STRLEN + 1];
            identity_short_id(peer, sid);
            log_write(&core->log, LOG_LEVEL_WARN, "cannot open a DM from %s: %s", sid,
                      parley_strerror(rc));
        }
    } else if (c.type == CONTENT_RECEIPT) {
        s_on_receipt(self, link, peer, &c);
    } else {
        store_msg_t msg;
        memset(&msg, 0, sizeof msg);
        core_msg_id(core, msg.msg_id);
        msg.has_env = true;
        memcpy(msg.env_id, id, 32);
        memcpy(msg.peer, peer, 32);
        msg.seq = env->seq;
        msg.ts_ms = env->ts_ms;
        msg.expires_ms = env->expires_ms;
        msg.state = MSG_STATE_RECEIVED;
        msg.text = malloc(c.text_len + 1);
        rc = msg.text ? PARLEY_OK : PARLEY_ERR_NOMEM;
        if (rc == PARLEY_OK) {
            memcpy(msg.text, c.text, c.text_len);
            msg.text[c.text_len] = '\0';
            rc = store_msg_add(core->store, &msg);
        }
        if (rc == PARLEY_OK) {
            core_notify_received(core, "message", delivery_msg_json(self, &msg));
            s_due_add(self, peer, id, env->expires_ms);
        } else {
            core_txn_fail(core, rc, "cannot file a received message");
        }
        if (msg.text) {
            sodium_memzero(msg.text, c.text_len);
            free(msg.text);
        }
    }
    sodium_memzero(content, sizeof content);
    sodium_memzero(&c, sizeof c);
    return keep;
}

//  An ACK tells an author its envelope is durable here: sent for envelopes
//  the peer on the link wrote, not for what it forwards from others, which
//  nobody waits on.
static void
s_ack_own(core_t *core, link_t *link, const uint8_t *buf, size_t len, const uint8_t id[32])
{
    const uint8_t *author = envelope_author(buf, len);
    if (author && memcmp(author, link_pk(link), 32) == 0) {
        core_ack(core, link, id);
    }
}

//  Ingest of one envelope from link (see the file comment), past the
//  dedupe: id is its hash, and rc and env what envelope_validate said of it.
static void
s_ingest(delivery_t *self, link_t *link, const uint8_t *buf, size_t len, const uint8_t id[32],
         int rc, const envelope_t *checked)
{
    core_t *core = self->core;
    envelope_t env = *checked;
    //  In a network: DMs only from members; network events only of our own
    //  network, decodable, from keys its roster knows (network.h). Channel
    //  envelopes: of a channel we hold or may be added to (channel.h).
    bool net_event = rc == PARLEY_OK && env.kind == ENVELOPE_KIND_NET;
    bool chan_env = rc == PARLEY_OK && env.kind >= ENVELOPE_KIND_CHAN;
    if (rc == PARLEY_OK) {
        rc = network_accepts(self->network, &env);
        if (rc == PARLEY_OK && chan_env) {
            rc = channels_accepts(self->channels, &env);
            if ((rc == PARLEY_ERR_NOTFOUND || rc == PARLEY_ERR_LIMIT) && self->core->cfg.relay) {
                rc = PARLEY_OK; // a relay holds every scope's envelopes, within its quotas
            }
        }
        if (rc == PARLEY_ERR_NOTFOUND || rc == PARLEY_ERR_AUTH) {
            core->counters[rc == PARLEY_ERR_AUTH ? C_NOT_MEMBER : C_NOT_OURS]++;
            links_strike(self->links, link, "it sends envelopes the network does not take", 1);
            return;
        }
        if (rc == PARLEY_ERR_LIMIT) {
            //  The roster is full, or this author (not an admin) has its
            //  share of it: not ACKed, and the author is struck.
            core->counters[C_RELAY_QUOTA]++;
            s_strike_author(self, link, env.author, "it writes past its quota",
                            DELIVERY_UNDEC_STRIKE);
            return;
        }
    }
    if (rc != PARLEY_OK) {
        s_count_reject(core, rc);
        //  Expired ones are honest (clocks, a slow path); the rest are not.
        links_strike(self->links, link, "it sends invalid envelopes",
                     rc == PARLEY_ERR_EXPIRED ? 0 : 1);
        return;
    }
    //  A member replicates the DM scopes it is a party to; a relay all.
    if (!net_event && !chan_env && !replica_accepts(self->replica, &env)) {
        core->counters[C_NOT_OURS]++;
        links_strike(self->links, link, "it sends envelopes of scopes we do not hold", 1);
        return;
    }
    //  A DM's commit may have its sync put off (its ACK waits for it);
    //  network and channel events change who may do what: synced first.
    rc = env.kind == ENVELOPE_KIND_DM ? core_txn_ingest(core) : core_txn(core);
    bool ours =
        net_event
        || (chan_env ? channels_ours(self->channels, &env) : replica_ours(self->replica, &env));
    //  Held for others: neither addressed to us nor our own (copies of ours
    //  come back after a restore, and are never capped).
    bool held = !ours && memcmp(env.author, identity_ed_pk(core->id), 32) != 0;
    if (rc == PARLEY_OK && held && !replica_admits(self->replica, link, &env)) {
        return; // a new scope past the caps (counted, struck): not ACKed
    }
    if (rc == PARLEY_OK && held) {
        //  A relay holds what it cannot read for anyone who signs: a quota
        //  per author keeps one key from filling its disk.
        bool fits = false;
        rc = s_relay_fits(self, env.author, len, &fits);
        if (rc == PARLEY_OK && !fits) {
            //  Its author is struck; a node that forwards it is not to
            //  blame (another relay may hold more of that author's).
            core->counters[C_RELAY_QUOTA]++;
            s_strike_author(self, link, env.author, "it writes past its quota",
                            DELIVERY_UNDEC_STRIKE);
            return; // not ACKed: refused
        }
    }
    if (rc == PARLEY_OK) {
        rc = store_envelope_put(core->store, &env, id, core_now(core));
    }
    if (rc == PARLEY_ERR_EQUIVOCATION) {
        uint64_t n = ++core->counters[C_EQUIVOCATION];
        //  Logged the 1st, 2nd, 4th, 8th... time: a flood of them must not
        //  fill the disk through the log file (the counter says how many).
        if ((n & (n - 1)) == 0) {
            char sid[PARLEY_SHORT_ID_STRLEN + 1];
            identity_short_id(env.author, sid);
            log_write(&core->log, LOG_LEVEL_WARN,
                      "equivocation by %s at seq %" PRIu64 ": kept as evidence, rejected"
                      " (%" PRIu64 " so far)",
                      sid, env.seq, n);
        }
        //  Only a broken or hostile author signs two envelopes for one seq.
        s_strike_author(self, link, env.author, "it equivocates", DELIVERY_EQUIV_STRIKE);
        s_ack_own(core, link, buf, len, id); // kept as evidence: the sender need not resend
        return;
    }
    if (rc == PARLEY_ERR_DUPLICATE) {
        s_ack_own(core, link, buf, len, id);
        return;
    }
    if (rc != PARLEY_OK) {
        core_txn_fail(core, rc, "cannot store an envelope"); // not acknowledged: resent
        return;
    }
    if (sodium_memcmp(env.author, identity_ed_pk(core->id), 32) == 0) {
        //  Ours, come back from a peer or relay (after a lost database: the
        //  only way this node learns it): our next numbers go above it.
        rc = store_seq_raise(core->store, env.scope, env.seq);
        if (rc == PARLEY_OK && core->lost_ms != 0) {
            core->recovered++;
            rc = store_meta_set(core->store, "recovered", core->recovered);
        }
        if (rc != PARLEY_OK) {
            core_txn_fail(core, rc, "cannot record an envelope of ours");
            return;
        }
        if (core->recovering && core->recover_quiet != 0) {
            core->recover_quiet = core_now(core) + core->cfg.retry_ms; // more may follow
        }
    }
    s_ack_own(core, link, buf, len, id);
    //  Open what is addressed to us: a DM from its author in our scope with
    //  it. A relay only holds the rest; our own come back only as copies.
    //  Opened before it is indexed for sync: one past the undecryptable
    //  quota leaves the log again (ACKed all the same: a resend would fare
    //  no better).
    if (net_event) {
        network_stored(self->network, &env, id); // folded once the frame is read
    } else if (chan_env) {
        //  Control events are folded once the frame is read.
        if (!channels_stored(self->channels, link, &env, id)) {
            rc = store_envelope_forget(core->store, &env, id);
            if (rc != PARLEY_OK) {
                core_txn_fail(core, rc, "cannot drop a channel message");
            }
            return;
        }
    } else if (ours && !s_open_dm(self, link, env.author, &env, id)) {
        rc = store_envelope_forget(core->store, &env, id);
        if (rc != PARLEY_OK) {
            core_txn_fail(core, rc, "cannot drop an undecryptable envelope");
        }
        return;
    }
    replica_stored(self->replica, link, &env, id);
}

//  Learns what it can of each envelope of f before its turn: its id, whether
//  we hold it, and, for the rest, envelope_validate's word, from the
//  verifier on every core it has. Dedupe comes first: an id we hold names
//  bytes we already verified.
static void
s_precheck(delivery_t *self, const frame_t *f)
{
    core_t *core = self->core;
    size_t n_jobs = 0;
    //  The lookups run inside the iteration's transaction, not each in a
    //  read transaction of its own. If it cannot begin, nothing is looked up:
    //  the first envelope's ingest fails on it and says why.
    bool txn = f->n_envelopes > 0 && core_txn_ingest(core) == PARLEY_OK;
    for (size_t i = 0; i < f->n_envelopes; i++) {
        s_pre_t *pre = &self->pre[i];
        const uint8_t *buf = f->envelopes[i];
        size_t len = f->envelope_lens[i];
        if (len > PARLEY_ENVELOPE_MAX) {
            pre->state = S_PRE_OVERSIZE;
            continue;
        }
        crypto_generichash(pre->id, sizeof pre->id, buf, len, NULL, 0);
        pre->state = txn && store_envelope_has(core->store, pre->id) ? S_PRE_HELD : S_PRE_CHECKED;
        for (size_t k = 0; k < i && pre->state == S_PRE_CHECKED; k++) {
            if (self->pre[k].state != S_PRE_OVERSIZE && memcmp(self->pre[k].id, pre->id, 32) == 0) {
                pre->state = S_PRE_AGAIN; // the first copy decides what this one is
            }
        }
        if (pre->state == S_PRE_CHECKED) {
            pre->job = n_jobs;
            self->jobs[n_jobs++] = (verifier_job_t){ .buf = buf, .len = len };
        }
    }
    verifier_run(self->verifier, self->jobs, n_jobs, core_now(core));
}

void
delivery_on_envelopes(delivery_t *self, link_t *link, const frame_t *f)
{
    core_t *core = self->core;
    link_used(link, core_now(core));
    s_precheck(self, f);
    for (size_t i = 0; i < f->n_envelopes; i++) {
        const s_pre_t *pre = &self->pre[i];
        const uint8_t *buf = f->envelopes[i];
        size_t len = f->envelope_lens[i];
        if (pre->state == S_PRE_OVERSIZE) {
            core->counters[C_OVERSIZE]++;
            links_strike(self->links, link, "it sends invalid envelopes", 1);
        } else if (pre->state == S_PRE_HELD
                   || (pre->state == S_PRE_AGAIN && store_envelope_has(core->store, pre->id))) {
            core->counters[C_DUPLICATE]++;
            s_ack_own(core, link, buf, len, pre->id);
        } else if (pre->state == S_PRE_AGAIN) {
            envelope_t env;
            int rc = envelope_validate(buf, len, core_now(core), &env);
            s_ingest(self, link, buf, len, pre->id, rc, &env);
        } else {
            const verifier_job_t *job = &self->jobs[pre->job];
            s_ingest(self, link, buf, len, pre->id, job->rc, &job->env);
        }
    }
    network_settle(self->network);
    channels_settle(self->channels);
}

json_t *
delivery_disk_status(delivery_t *self)
{
    const core_t *core = self->core;
    return json_pack("{s:I, s:I, s:I, s:I}", "syncs", (json_int_t)core->syncs, "deferred",
                     (json_int_t)core->deferred, "acks_waiting", (json_int_t)self->n_held,
                     "acks_dropped", (json_int_t)self->held_dropped);
}

json_t *
delivery_verify_status(delivery_t *self)
{
    return json_pack("{s:I, s:I, s:I}", "threads", (json_int_t)self->core->cfg.verify_threads,
                     "running", (json_int_t)verifier_running(self->verifier), "helped",
                     (json_int_t)verifier_helped(self->verifier));
}

void
delivery_on_prekey(delivery_t *self, link_t *link, const frame_t *f)
{
    //  Any owner's signed bundle is welcome (relays carry them for authors
    //  whose envelopes they forward); the signature says whose it is.
    //  In a network, only members' bundles (the owner is bytes 1..32, SPEC
    //  §6.2; the signature is checked below, a forged one is refused there).
    if (f->bundle_len == DM_PREKEY_BUNDLE_LEN && !network_allows(self->network, f->bundle + 1)) {
        self->core->counters[C_NOT_MEMBER]++;
        return;
    }
    uint8_t owner[32];
    bool changed = false;
    int rc = session_on_bundle(self->session, f->bundle, f->bundle_len, owner, &changed);
    if (rc == PARLEY_ERR_EXISTS || s_transient(rc)) {
        return; // ours, or a store failure (the iteration rolls back)
    }
    if (rc != PARLEY_OK) {
        //  Forged, malformed, of an unknown version, a bad point, or dated
        //  in the future (session_on_bundle).
        self->core->counters[C_BAD_PREKEY]++;
        links_strike(self->links, link, "it sends forged prekeys", 1);
        return;
    }
    if (changed || sodium_memcmp(owner, link_pk(link), 32) == 0) {
        s_seal_queued(self, owner);
    }
    if (changed) {
        //  A newer bundle travels on to every other peer (once: an older or
        //  equal one changes nothing), so nodes that never meet can still
        //  write to each other through relays.
        for (size_t i = 0; i < links_count(self->links); i++) {
            link_t *l = links_at(self->links, i);
            if (l != link && link_online(l) && memcmp(link_pk(l), owner, 32) != 0) {
                session_send_bundle(self->session, l, f->bundle); // DM_PREKEY_BUNDLE_LEN bytes
            }
        }
    }
}

//  Records the ACKs gathered in this iteration: an ACKed envelope leaves the
//  peer's outbox and its message is at least "relayed".
static void
s_record_acks(delivery_t *self)
{
    core_t *core = self->core;
    for (size_t i = 0; i < self->n_acked; i++) {
        const s_acked_t *a = &self->acked[i];
        //  NOTFOUND: a second ACK for the same envelope; nothing to do.
        int rc = store_outbox_ack(core->store, a->id, a->peer);
        if (rc != PARLEY_OK && rc != PARLEY_ERR_NOTFOUND) {
            core_txn_fail(core, rc, "cannot record an ACK");
            break;
        }
        bool changed = false;
        store_msg_t msg;
        memset(&msg, 0, sizeof msg);
        rc = store_msg_raise(core->store, a->id, MSG_STATE_RELAYED, &changed, &msg);
        if (rc == PARLEY_OK && changed) {
            core_notify(core, "delivery", delivery_msg_json(self, &msg));
        }
        free(msg.text);
    }
    self->n_acked = 0;
}

void
delivery_on_ack(delivery_t *self, link_t *link, const frame_t *f)
{
    for (size_t i = 0; i < f->n_ids; i++) {
        if (self->n_acked == DELIVERY_ACKED_MAX) {
            //  Full: recorded now, in the iteration's (durable) transaction.
            if (core_txn(self->core) != PARLEY_OK) {
                self->n_acked = 0;
                return; // the rows stay: the next resend is ACKed again
            }
            s_record_acks(self);
        }
        s_acked_t *a = &self->acked[self->n_acked++];
        memcpy(a->peer, link_pk(link), 32);
        memcpy(a->id, f->ids + 32 * i, 32);
    }
    s_peer_t *p = s_peer(link);
    if (p && p->flush_more) {
        //  A long backlog: send the next window now. Once per window, so a
        //  window ACKed in several frames does not trigger several resends.
        p->flush_more = false;
        p->next_flush = 0;
    }
}

//  The ready receipts are sealed (or given up): only this iteration's stay.
static void
s_due_forget_ready(delivery_t *self)
{
    memmove(self->due, self->due + self->n_ready,
            (self->n_due - self->n_ready) * sizeof *self->due);
    self->n_due -= self->n_ready;
    self->n_ready = 0;
}

void
delivery_before_commit(delivery_t *self)
{
    if (self->n_acked == 0 && self->n_ready == 0) {
        return;
    }
    //  Dropping outbox rows promises nothing to anyone: lost to a power cut,
    //  they only cost a resend the peer ACKs again. Alone in an iteration,
    //  they are committed without an fsync of their own; beside work that
    //  promises, they share its commit.
    //  So are receipts for messages committed before: what they say ("it is
    //  kept here") is durable already; lost to a power cut, the sender only
    //  goes on seeing "relayed". Our sequence numbers come from blocks
    //  reserved durably, so a lost receipt's number is never used again.
    if (core_txn_relaxed(self->core) != PARLEY_OK) {
        //  The store refuses a transaction: the ACKs come again with the
        //  next resend; the receipts are given up (the senders see
        //  "relayed"), so that the loop does not spin on them.
        self->n_acked = 0;
        s_due_forget_ready(self);
        return;
    }
    s_record_acks(self);
    for (size_t at = 0; at < self->n_ready; at += PARLEY_BATCH_MAX) {
        size_t n = self->n_ready - at < PARLEY_BATCH_MAX ? self->n_ready - at : PARLEY_BATCH_MAX;
        s_seal_due(self, self->due + at, n);
    }
    s_due_forget_ready(self);
}

void
delivery_rollback(delivery_t *self)
{
    //  This iteration's messages are not kept: the sender resends them, and
    //  they are opened (and owed a receipt) again. Receipts sealed in it are
    //  lost with it: a resend of their message is ACKed, not opened again,
    //  so they are not owed twice, and the sender sees "relayed".
    self->n_due = self->n_ready;
}

bool
delivery_busy(const delivery_t *self)
{
    return self->n_ready > 0;
}
