/*  node/node.c — the engine: event loop, links, frames, DM sessions, delivery.
 *
 *  One thread owns everything. Each loop iteration:
 *
 *      poll ──► read ready sockets ──► handlers write to the store inside one
 *                                     transaction and only queue output
 *           ──► commit ──► flush queued output: ACKs, pushes, prekeys, API
 *               replies, notifications
 *
 *  so no peer or client ever hears of something that is not durable yet.
 *
 *  Links. A peer is reachable over our DEALER to its ROUTER (when we dial it:
 *  seeds) and/or over its DEALER to our ROUTER (when it dialled us). Frames go
 *  over the DEALER when its handshake is up, else to the peer's last routing
 *  id on our ROUTER. A DEALER learns of a (re)connection from its socket
 *  monitor (HANDSHAKE_SUCCEEDED) and then sends HELLO, our PREKEY and the
 *  outbox; a ROUTER learns who a connection is from the ZAP User-Id (the
 *  CURVE key) and from HELLO, whose Ed25519 key must map to that CURVE key.
 *
 *  Delivery. The log is the truth; the wire is a hint. Every envelope we
 *  write for a peer sits in the outbox until the peer ACKs it (it ACKs after
 *  its commit), pushed at once when the link is up and resent every retry_ms
 *  otherwise; a receipt envelope (signed, encrypted) from the recipient raises
 *  the message to "delivered". Ingest dedupes by id, so resends are harmless.
 *  Replication (replica.c) carries envelopes to peers that were offline and
 *  through relays, and repairs whatever the pushes lost.
 *
 *  Link state machine (per peer):
 *
 *      offline ──(DEALER handshake | HELLO on ROUTER)──► online
 *      online  ──(no frame for 3 × ping_ms | DEALER disconnected and no route)──► offline
 */
#include "node_internal.h"

#include "../proto/b32.h"
#include "../proto/content.h"
#include "../proto/endpoint.h"
#include "../proto/envelope.h"
#include "../proto/frame.h"
#include "../proto/selftest.h"
#include "api_req.h"
#include "config.h"
#include "home.h"
#include "transport.h"
#include <arpa/inet.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

const char *const node_counter_names[C_COUNTERS] = {
    "oversize",     "malformed",  "bad_signature", "future",      "expired",  "unsupported",
    "equivocation", "not_ours",   "undecryptable", "bad_frame",   "no_hello", "bad_hello",
    "zap_denied",   "bad_prekey", "duplicate",     "bad_address", "banned",
};

#define S_CAP_RELAY 0x1u /* HELLO caps: replicates every scope */
#define S_TAG "open"
#define S_BAN_MS 60000u

/* ---- small utilities ---- */

uint64_t
node_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
node_log(node_t *self, int level, const char *fmt, ...)
{
    if (level > self->cfg.verbose) {
        return;
    }
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    time_t t = time(NULL);
    struct tm tm;
    char stamp[32];
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    fprintf(stderr, "%s parleyd[%.8s] %s\n", stamp, self->node_id, line);
}

static void
s_short(const uint8_t pk[32], char out[PARLEY_SHORT_ID_STRLEN + 1])
{
    identity_short_id(pk, out);
}

int
node_txn(node_t *self)
{
    if (store_in_txn(self->store)) {
        return PARLEY_OK;
    }
    return store_begin(self->store);
}

void
node_notify(node_t *self, const char *method, json_t *params)
{
    json_t *note = api_notification(method, params);
    if (note) {
        json_array_append_new(self->notes, note);
    }
}

static uint32_t
s_day(const node_t *self, uint64_t ms)
{
    uint64_t d = ms / self->cfg.ratchet_ms;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

/* ---- links ---- */

link_t *
node_link_find(node_t *self, const uint8_t pk[32])
{
    for (size_t i = 0; i < self->n_links; i++) {
        if (sodium_memcmp(self->links[i]->pk, pk, 32) == 0) {
            return self->links[i];
        }
    }
    return NULL;
}

int
node_dm_scope(node_t *self, const uint8_t peer[32], uint8_t scope[32])
{
    link_t *link = node_link_find(self, peer);
    if (link) {
        memcpy(scope, link->scope, 32);
        return PARLEY_OK;
    }
    return dm_scope(self->id, peer, scope);
}

static link_t *
s_link_find_x(node_t *self, const uint8_t x_pk[32])
{
    for (size_t i = 0; i < self->n_links; i++) {
        if (sodium_memcmp(self->links[i]->x_pk, x_pk, 32) == 0) {
            return self->links[i];
        }
    }
    return NULL;
}

static link_t *
s_link_get(node_t *self, const uint8_t pk[32])
{
    link_t *link = node_link_find(self, pk);
    if (link) {
        return link;
    }
    if (self->n_links >= NODE_LINKS_MAX) {
        return NULL;
    }
    link = calloc(1, sizeof *link);
    if (!link) {
        return NULL;
    }
    memcpy(link->pk, pk, 32);
    link->push = calloc(NODE_PUSH_MAX, 32);
    link->acks = calloc(PARLEY_ACK_MAX, 32);
    if (!link->push || !link->acks || identity_ed_to_x(pk, link->x_pk) != PARLEY_OK
        || dm_scope(self->id, pk, link->scope) != PARLEY_OK) {
        free(link->push);
        free(link->acks);
        free(link);
        return NULL;
    }
    link_t **grown = realloc(self->links, (self->n_links + 1) * sizeof *grown);
    if (!grown) {
        free(link->push);
        free(link->acks);
        free(link);
        return NULL;
    }
    self->links = grown;
    self->links[self->n_links++] = link;
    replica_mine(self, link->scope);
    return link;
}

//  Closes our DEALER to the peer (and its monitor); the link stays.
static void
s_link_undial(link_t *link)
{
    if (link->dealer) {
        zmq_close(link->dealer);
        link->dealer = NULL;
    }
    if (link->monitor) {
        zmq_close(link->monitor);
        link->monitor = NULL;
    }
    link->dealer_up = false;
}

static void
s_link_free(link_t *link)
{
    s_link_undial(link);
    replica_link_free(link);
    free(link->addr);
    free(link->push);
    free(link->acks);
    free(link);
}

bool
node_link_online(const node_t *self, const link_t *link)
{
    (void)self;
    return link->connected_since != 0;
}

static void
s_link_set_online(node_t *self, link_t *link, bool online, const char *why)
{
    bool was = link->connected_since != 0;
    if (online == was) {
        return;
    }
    char sid[PARLEY_SHORT_ID_STRLEN + 1];
    char id[PARLEY_NODE_ID_STRLEN + 1];
    s_short(link->pk, sid);
    identity_node_id(link->pk, id);
    link->connected_since = online ? node_now_ms() : 0;
    if (online) {
        link->last_error[0] = '\0';
        link->next_flush = 0;
        link->send_peers = !self->cfg.no_pex;
        link->send_bundles = true;
        replica_link_up(self, link);
    } else {
        snprintf(link->last_error, sizeof link->last_error, "%s", why);
        link->route_len = 0;
        //  hello stays: a frame on the ROUTER is proven by its CURVE key, and
        //  a connection that outlived a ping timeout must be able to recover.
        replica_link_down(self, link);
    }
    node_log(self, 0, "peer %s %s%s%s", sid, online ? "online" : "offline", online ? "" : ": ",
             online ? "" : why);
    node_notify(self, "peer",
                json_pack("{s:s, s:s, s:s, s:s}", "id", id, "short_id", sid, "state",
                          online ? "online" : "offline", "reason", online ? "" : why));
}

//  Sends one frame to a peer: DEALER when up, else its route on our ROUTER.
//  A frame that cannot go out is dropped: the outbox and the retry timer
//  repair it (see the file comment).
bool
node_link_send(node_t *self, link_t *link, const uint8_t *buf, size_t len)
{
    bool sent = false;
    if (link->dealer && link->dealer_up) {
        sent = zmq_send(link->dealer, buf, len, ZMQ_DONTWAIT) >= 0;
    }
    if (!sent && link->route_len > 0) {
        if (zmq_send(self->router, link->route, link->route_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0) {
            sent = zmq_send(self->router, buf, len, ZMQ_DONTWAIT) >= 0;
        }
        if (!sent && errno == EHOSTUNREACH) {
            link->route_len = 0; // that connection is gone; wait for it to come back
        }
    }
    if (sent) {
        link->last_sent = node_now_ms();
    }
    return sent;
}

static int
s_link_dial(node_t *self, link_t *link, const char *endpoint)
{
    if (link->dealer) {
        return PARLEY_OK;
    }
    transport_opts_t opts;
    transport_opts_default(&opts);
    int rc = transport_client_new(self->ctx, &opts, identity_x_pk(self->id),
                                  identity_x_sk(self->id), link->x_pk, endpoint, &link->dealer);
    if (rc != PARLEY_OK) {
        return rc;
    }
    char mon[64];
    snprintf(mon, sizeof mon, "inproc://parley-mon-%" PRIu64, ++self->monitor_seq);
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED
                 | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                 | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_CONNECT_RETRIED;
    if (zmq_socket_monitor(link->dealer, mon, events) != 0) {
        zmq_close(link->dealer);
        link->dealer = NULL;
        return PARLEY_ERR_IO;
    }
    link->monitor = zmq_socket(self->ctx, ZMQ_PAIR);
    if (!link->monitor || zmq_connect(link->monitor, mon) != 0) {
        zmq_close(link->dealer);
        link->dealer = NULL;
        if (link->monitor) {
            zmq_close(link->monitor);
            link->monitor = NULL;
        }
        return PARLEY_ERR_IO;
    }
    snprintf(link->endpoint, sizeof link->endpoint, "%s", endpoint);
    snprintf(link->last_error, sizeof link->last_error, "connecting");
    return PARLEY_OK;
}

/* ---- frames out ---- */

//  HELLO over our DEALER, or (route_only) back over the connection the peer
//  opened to our ROUTER: the answer that tells a dialler our capabilities.
static void
s_send_hello(node_t *self, link_t *link, bool route_only)
{
    const char *eps[1] = { self->endpoint };
    size_t len = 0;
    uint32_t caps = self->cfg.relay ? S_CAP_RELAY : 0;
    if (frame_encode_hello(identity_ed_pk(self->id), caps, S_TAG, eps, 1, self->buf,
                           PARLEY_FRAME_MAX, &len)
        != PARLEY_OK) {
        return;
    }
    if (!route_only) {
        node_link_send(self, link, self->buf, len);
    } else if (link->route_len > 0
               && zmq_send(self->router, link->route, link->route_len, ZMQ_SNDMORE | ZMQ_DONTWAIT)
                      >= 0) {
        (void)zmq_send(self->router, self->buf, len, ZMQ_DONTWAIT); // lost: caps wait a reconnect
    }
}

//  One PREKEY frame carrying a signed bundle (ours or another node's).
static void
s_send_bundle(node_t *self, link_t *link, const uint8_t bundle[DM_PREKEY_BUNDLE_LEN])
{
    size_t len = 0;
    if (frame_encode_prekey(bundle, DM_PREKEY_BUNDLE_LEN, self->buf, PARLEY_FRAME_MAX, &len)
        == PARLEY_OK) {
        node_link_send(self, link, self->buf, len);
    }
}

void
node_send_bundles(node_t *self, link_t *link, const uint8_t (*authors)[32], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t bundle[DM_PREKEY_BUNDLE_LEN];
        if (memcmp(authors[i], link->pk, 32) == 0) {
            continue; // its own
        }
        if (memcmp(authors[i], identity_ed_pk(self->id), 32) == 0) {
            if (self->has_prekey) {
                s_send_bundle(self, link, self->prekey.bundle);
            }
        } else if (store_peer_prekey_bundle(self->store, authors[i], bundle) == PARLEY_OK) {
            s_send_bundle(self, link, bundle);
        } // else we never had it: the receiver waits for another path
    }
}

#define S_BUNDLES_PASSED 256u

//  On link-up: the newest bundles we hold for others, so a peer can write
//  to someone it never met (their envelopes then travel through relays).
static void
s_send_held_bundles(node_t *self, link_t *link)
{
    uint8_t *bundles = malloc((size_t)S_BUNDLES_PASSED * DM_PREKEY_BUNDLE_LEN);
    size_t n = 0;
    if (bundles
        && store_peer_prekey_recent(self->store, S_BUNDLES_PASSED, bundles, &n) == PARLEY_OK) {
        for (size_t i = 0; i < n; i++) {
            const uint8_t *b = bundles + i * DM_PREKEY_BUNDLE_LEN;
            if (memcmp(b + 1, link->pk, 32) != 0) { // owner at offset 1: not its own
                s_send_bundle(self, link, b);
            }
        }
    }
    free(bundles);
}

bool
node_is_relay(const node_t *self)
{
    return self->cfg.relay;
}

uint64_t
node_sync_ms(const node_t *self)
{
    return self->cfg.sync_ms;
}

//  Stops talking to a peer that broke the rules: BYE, our DEALER closed,
//  its frames dropped and its connections refused (ZAP) for S_BAN_MS.
void
node_ban(node_t *self, link_t *link, const char *why)
{
    char sid[PARLEY_SHORT_ID_STRLEN + 1];
    s_short(link->pk, sid);
    node_log(self, 0, "disconnecting %s for %u s: %s", sid, S_BAN_MS / 1000, why);
    self->counters[C_BANNED]++;
    size_t len = 0;
    if (frame_encode_bye(1, self->buf, PARLEY_FRAME_MAX, &len) == PARLEY_OK) {
        node_link_send(self, link, self->buf, len);
    }
    link->banned_until = node_now_ms() + S_BAN_MS;
    s_link_undial(link);
    s_link_set_online(self, link, false, why);
    snprintf(link->last_error, sizeof link->last_error, "banned: %s", why);
}

static void
s_send_prekey(node_t *self, link_t *link)
{
    //  Sent before every envelope batch: from memory, not the database.
    if (self->has_prekey) {
        s_send_bundle(self, link, self->prekey.bundle);
    }
}

static void
s_send_simple(node_t *self, link_t *link, uint8_t type, uint64_t nonce)
{
    size_t len = 0;
    if (frame_encode_ping(type, nonce, self->buf, PARLEY_FRAME_MAX, &len) == PARLEY_OK) {
        node_link_send(self, link, self->buf, len);
    }
}

//  Sends one ENVELOPES frame, preceded by the prekey bundles of its authors
//  (ours from memory, others' from the store): the receiver can then answer
//  every DM in it, even from a node it never met.
static bool
s_send_batch(node_t *self, link_t *link, frame_batch_t *batch, uint8_t (*authors)[32],
             size_t n_authors)
{
    size_t flen = frame_batch_finish(batch);
    if (flen == 0) {
        return true;
    }
    //  The bundles are written into a scratch of their own: buf holds the batch.
    node_send_bundles(self, link, (const uint8_t(*)[32])authors, n_authors);
    return node_link_send(self, link, self->batchbuf, flen);
}

//  Sends the envelopes whose ids are given, batched into ENVELOPES frames.
//  Ids that are no longer in the log (expired, erased) are skipped.
static void
s_send_envelopes(node_t *self, link_t *link, const uint8_t (*ids)[32], size_t n)
{
    //  Our prekey goes first, on the same connection as the envelopes (frames
    //  on one connection keep their order): the receiver then always holds
    //  it when it seals the receipt, whichever link a HELLO reply took.
    s_send_prekey(self, link);
    uint8_t authors[PARLEY_BATCH_MAX][32];
    size_t n_authors = 0;
    frame_batch_t batch;
    frame_batch_begin(&batch, self->batchbuf, PARLEY_FRAME_MAX);
    for (size_t i = 0; i < n; i++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        if (store_envelope_get(self->store, ids[i], &bytes, &len) != PARLEY_OK) {
            continue;
        }
        if (frame_batch_add(&batch, bytes, len) != PARLEY_OK) {
            if (!s_send_batch(self, link, &batch, authors, n_authors)) {
                free(bytes);
                return; // link not writable: the retry round or sync resends
            }
            n_authors = 0;
            frame_batch_begin(&batch, self->batchbuf, PARLEY_FRAME_MAX);
            if (frame_batch_add(&batch, bytes, len) != PARLEY_OK) {
                free(bytes);
                continue; // cannot happen for a stored (size-checked) envelope
            }
        }
        //  Author: bytes 2..33 of the header (a stored envelope is well formed).
        bool seen = memcmp(bytes + 2, identity_ed_pk(self->id), 32) == 0;
        for (size_t k = 0; k < n_authors && !seen; k++) {
            seen = memcmp(authors[k], bytes + 2, 32) == 0;
        }
        if (!seen && n_authors < PARLEY_BATCH_MAX) {
            memcpy(authors[n_authors++], bytes + 2, 32);
        }
        free(bytes);
    }
    (void)s_send_batch(self, link, &batch, authors, n_authors);
}

//  Resends everything the peer has not acknowledged, up to NODE_FLUSH_MAX.
static void
s_flush_outbox(node_t *self, link_t *link)
{
    uint8_t(*ids)[32] = malloc((size_t)NODE_FLUSH_MAX * 32);
    size_t n = 0;
    if (ids
        && store_outbox_list(self->store, link->pk, NODE_FLUSH_MAX, (uint8_t *)ids, &n) == PARLEY_OK
        && n > 0) {
        s_send_envelopes(self, link, (const uint8_t(*)[32])ids, n);
    }
    link->flush_more = n == NODE_FLUSH_MAX;
    free(ids);
    link->next_flush = node_now_ms() + self->cfg.retry_ms;
}

/* ---- DM sessions and sealing ---- */

//  The sending session to peer for today, (re)opened when the peer's current
//  prekey differs from the one the session was opened against.
static int
s_send_session(node_t *self, const uint8_t peer[32], const prekey_t *spk, uint32_t today,
               store_send_session_t *s)
{
    int rc = store_send_session_get(self->store, peer, s);
    if (rc == PARLEY_OK && s->spk_id == spk->spk_id && s->day <= today) {
        if (s->day < today) {
            rc = dm_chain_advance(s->key, s->day, today);
            s->day = today;
        }
        return rc;
    }
    if (rc != PARLEY_OK && rc != PARLEY_ERR_NOTFOUND) {
        return rc;
    }
    memcpy(s->peer, peer, 32);
    s->spk_id = spk->spk_id;
    s->day0 = today;
    s->day = today;
    return dm_x3dh_initiate(self->id, peer, spk, s->ek_pub, s->key);
}

//  Seals content to peer as the next envelope of our side of the DM scope,
//  stores it, puts it in the outbox and queues an eager push.
static int
s_seal(node_t *self, const uint8_t peer[32], const prekey_t *spk, const uint8_t *content,
       size_t content_len, uint64_t ttl_ms, uint8_t env_id[32], uint64_t *seq_out, uint64_t *ts_out)
{
    envelope_t env;
    memset(&env, 0, sizeof env);
    env.version = PARLEY_ENVELOPE_VERSION;
    env.kind = ENVELOPE_KIND_DM;
    memcpy(env.author, identity_ed_pk(self->id), 32);
    int rc = node_dm_scope(self, peer, env.scope);
    uint64_t last = 0;
    if (rc == PARLEY_OK) {
        rc = store_last_seq(self->store, env.author, env.scope, &last);
    }
    if (rc != PARLEY_OK) {
        return rc;
    }
    env.seq = last + 1;
    env.ts_ms = node_now_ms();
    env.expires_ms = ttl_ms ? env.ts_ms + ttl_ms : 0;
    uint32_t today = s_day(self, env.ts_ms);
    store_send_session_t s;
    rc = s_send_session(self, peer, spk, today, &s);
    dm_header_t h;
    memcpy(h.ek_pub, s.ek_pub, 32);
    h.spk_id = s.spk_id;
    h.day0 = s.day0;
    h.day = s.day;
    size_t len = 0;
    if (rc == PARLEY_OK) {
        rc = dm_envelope_seal(self->id, &env, &h, s.key, content, content_len, self->envbuf,
                              PARLEY_ENVELOPE_MAX, &len);
    }
    envelope_t sealed;
    if (rc == PARLEY_OK) {
        rc = envelope_decode(self->envbuf, len, &sealed);
    }
    if (rc == PARLEY_OK) {
        envelope_id(&sealed, env_id);
        rc = store_envelope_put(self->store, &sealed, env_id, env.ts_ms);
    }
    if (rc == PARLEY_OK) {
        rc = store_send_session_put(self->store, &s);
    }
    sodium_memzero(&s, sizeof s);
    if (rc == PARLEY_OK) {
        rc = store_outbox_add(self->store, env_id, peer, env.ts_ms);
    }
    if (rc != PARLEY_OK) {
        return rc;
    }
    replica_stored(self, NULL, &sealed, env_id); // eager push: the peer and relays
    *seq_out = env.seq;
    *ts_out = env.ts_ms;
    return PARLEY_OK;
}

static int
s_seal_text(node_t *self, const prekey_t *spk, store_msg_t *msg, uint64_t ttl_ms)
{
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t clen = 0;
    int rc = content_encode_text(msg->text, strlen(msg->text), content, sizeof content, &clen);
    if (rc == PARLEY_OK) {
        rc = s_seal(self, msg->peer, spk, content, clen, ttl_ms, msg->env_id, &msg->seq,
                    &msg->ts_ms);
    }
    if (rc == PARLEY_OK) {
        msg->has_env = true;
        msg->state = MSG_STATE_STORED;
    }
    return rc;
}

int
node_send_text(node_t *self, const uint8_t peer[32], const char *text, size_t len, uint64_t ttl_ms,
               store_msg_t *msg)
{
    memset(msg, 0, sizeof *msg);
    if (sodium_memcmp(peer, identity_ed_pk(self->id), 32) == 0) {
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
    randombytes_buf(msg->msg_id, sizeof msg->msg_id);
    memcpy(msg->peer, peer, 32);
    msg->outgoing = true;
    msg->ts_ms = node_now_ms();
    msg->state = MSG_STATE_QUEUED;
    int rc = node_txn(self);
    if (rc != PARLEY_OK) {
        return rc;
    }
    //  Messages already waiting for this peer's prekey go first: order is kept.
    prekey_t spk;
    store_msg_t *queued = NULL;
    size_t n_queued = 0;
    rc = store_peer_prekey_get(self->store, peer, &spk);
    if (rc == PARLEY_OK) {
        rc = store_msg_queued(self->store, peer, &queued, &n_queued);
        store_msgs_free(queued, n_queued);
        if (rc == PARLEY_OK && n_queued == 0) {
            rc = s_seal_text(self, &spk, msg, ttl_ms);
        }
    } else if (rc == PARLEY_ERR_NOTFOUND) {
        rc = PARLEY_OK; // no prekey yet: the message waits, QUEUED, in history
    }
    if (rc == PARLEY_OK) {
        rc = store_msg_add(self->store, msg);
    }
    return rc;
}

//  Seals every QUEUED message to peer now that its prekey is known.
static void
s_seal_queued(node_t *self, const uint8_t peer[32])
{
    prekey_t spk;
    store_msg_t *msgs = NULL;
    size_t n = 0;
    if (node_txn(self) != PARLEY_OK || store_peer_prekey_get(self->store, peer, &spk) != PARLEY_OK
        || store_msg_queued(self->store, peer, &msgs, &n) != PARLEY_OK) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (s_seal_text(self, &spk, &msgs[i], 0) != PARLEY_OK
            || store_msg_attach(self->store, msgs[i].msg_id, msgs[i].env_id, msgs[i].seq,
                                msgs[i].ts_ms)
                   != PARLEY_OK) {
            node_log(self, 0, "could not seal a queued message; it stays queued");
            break;
        }
        node_notify(self, "delivery", node_msg_json(self, &msgs[i]));
    }
    store_msgs_free(msgs, n);
}

/* ---- ingest ---- */

static int
s_count_reject(node_t *self, int rc)
{
    switch (rc) {
    case PARLEY_ERR_LIMIT: self->counters[C_OVERSIZE]++; break;
    case PARLEY_ERR_AUTH: self->counters[C_BAD_SIGNATURE]++; break;
    case PARLEY_ERR_FUTURE: self->counters[C_FUTURE]++; break;
    case PARLEY_ERR_EXPIRED: self->counters[C_EXPIRED]++; break;
    case PARLEY_ERR_UNSUPPORTED: self->counters[C_UNSUPPORTED]++; break;
    default: self->counters[C_MALFORMED]++; break;
    }
    return rc;
}

//  Finds or opens the receiving session and derives the chain key of h->day.
static int
s_recv_day_key(node_t *self, const uint8_t peer[32], const dm_header_t *h, uint8_t key[32])
{
    store_recv_session_t s;
    int rc = store_recv_session_get(self->store, peer, h->ek_pub, &s);
    if (rc == PARLEY_ERR_NOTFOUND) {
        uint8_t spk_secret[32];
        rc = store_own_prekey_secret(self->store, h->spk_id, spk_secret);
        if (rc == PARLEY_OK) {
            rc = dm_x3dh_respond(self->id, peer, spk_secret, h->spk_id, h->ek_pub, s.key);
        }
        sodium_memzero(spk_secret, sizeof spk_secret);
        memcpy(s.peer, peer, 32);
        memcpy(s.ek_pub, h->ek_pub, 32);
        s.spk_id = h->spk_id;
        s.day0 = h->day0;
        s.base_day = h->day0;
        //  A session whose start is already past the grace window opens
        //  nothing older than the window either.
        uint32_t floor_day = s_day(self, node_now_ms() - self->cfg.grace_ms);
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
    if (rc == PARLEY_OK) {
        s.last_used_ms = node_now_ms();
        rc = store_recv_session_put(self->store, &s);
    }
    sodium_memzero(&s, sizeof s);
    return rc;
}

static void
s_on_receipt(node_t *self, const content_t *c)
{
    int state = c->status == RECEIPT_READ ? MSG_STATE_READ : MSG_STATE_DELIVERED;
    for (size_t i = 0; i < c->n_ids; i++) {
        bool changed = false;
        store_msg_t msg;
        memset(&msg, 0, sizeof msg);
        if (store_msg_raise(self->store, c->ids + 32 * i, state, &changed, &msg) == PARLEY_OK) {
            if (changed) {
                node_notify(self, "delivery", node_msg_json(self, &msg));
            }
            free(msg.text);
        }
        //  The recipient has it, by whatever path: no more resends to it.
        if (store_outbox_drop(self->store, c->ids + 32 * i) != PARLEY_OK) {
            node_log(self, 1, "could not clear a delivered envelope from the outbox");
        }
    }
}

//  Receipts to send after a batch: ids grouped by the author they go to.
typedef struct {
    uint8_t author[32];
    uint8_t (*ids)[32];
    size_t n;
} s_receipts_t;

static void
s_receipt_add(s_receipts_t *r, size_t *n_r, const uint8_t author[32], const uint8_t id[32])
{
    size_t i = 0;
    while (i < *n_r && memcmp(r[i].author, author, 32) != 0) {
        i++;
    }
    if (i == *n_r) {
        if (*n_r == PARLEY_BATCH_MAX) {
            return;
        }
        memcpy(r[i].author, author, 32);
        r[i].n = 0;
        (*n_r)++;
    }
    if (r[i].n < PARLEY_BATCH_MAX) {
        memcpy(r[i].ids[r[i].n++], id, 32);
    }
}

//  Decrypts a stored DM from peer and files its content. Failures are
//  counted; the envelope stays in the log either way.
static void
s_open_dm(node_t *self, const uint8_t peer[32], const envelope_t *env, const uint8_t id[32],
          s_receipts_t *receipts, size_t *n_receipts)
{
    dm_header_t h;
    uint8_t key[32];
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t clen = 0;
    int rc = dm_body_parse(env, &h);
    //  A day past the envelope's own (bounded) time would only make us hash
    //  forward for nothing: such a body is refused before any ratchet work.
    if (rc == PARLEY_OK
        && (h.day < h.day0 || h.day > s_day(self, env->ts_ms + PARLEY_FUTURE_SKEW_MS))) {
        rc = PARLEY_ERR_MALFORMED;
    }
    if (rc == PARLEY_OK) {
        rc = s_recv_day_key(self, peer, &h, key);
    }
    if (rc == PARLEY_OK) {
        rc = dm_envelope_open(env, key, content, sizeof content, &clen);
    }
    sodium_memzero(key, sizeof key);
    content_t c;
    if (rc == PARLEY_OK) {
        rc = content_decode(content, clen, &c);
    }
    if (rc != PARLEY_OK) {
        self->counters[C_UNDECRYPTABLE]++;
        char sid[PARLEY_SHORT_ID_STRLEN + 1];
        s_short(peer, sid);
        node_log(self, 0, "cannot open a DM from %s: %s", sid, parley_strerror(rc));
        return;
    }
    if (c.type == CONTENT_RECEIPT) {
        s_on_receipt(self, &c);
        return;
    }
    store_msg_t msg;
    memset(&msg, 0, sizeof msg);
    randombytes_buf(msg.msg_id, sizeof msg.msg_id);
    msg.has_env = true;
    memcpy(msg.env_id, id, 32);
    memcpy(msg.peer, peer, 32);
    msg.seq = env->seq;
    msg.ts_ms = env->ts_ms;
    msg.state = MSG_STATE_RECEIVED;
    msg.text = malloc(c.text_len + 1);
    if (!msg.text) {
        return;
    }
    memcpy(msg.text, c.text, c.text_len);
    msg.text[c.text_len] = '\0';
    if (store_msg_add(self->store, &msg) == PARLEY_OK) {
        node_notify(self, "message", node_msg_json(self, &msg));
        s_receipt_add(receipts, n_receipts, peer, id);
    }
    sodium_memzero(content, sizeof content);
    free(msg.text);
}

static void
s_queue_ack(link_t *link, const uint8_t id[32])
{
    if (link->n_acks < PARLEY_ACK_MAX) {
        memcpy(link->acks[link->n_acks++], id, 32);
    }
}

//  An ACK tells an author its envelope is durable here: sent for envelopes
//  the peer on the link wrote (bytes 2..33 of the header), not for what it
//  forwards from others, which nobody waits on.
static void
s_queue_ack_own(link_t *link, const uint8_t *buf, size_t len, const uint8_t id[32])
{
    if (len >= 34 && memcmp(buf + 2, link->pk, 32) == 0) {
        s_queue_ack(link, id);
    }
}

//  Ingest of one envelope from link: limits → decode → verify → time →
//  dedupe → scope → (author, scope, seq) → store → open. Dedupe by id comes
//  first in practice: an id we hold names bytes we already verified.
static void
s_ingest(node_t *self, link_t *link, const uint8_t *buf, size_t len, s_receipts_t *receipts,
         size_t *n_receipts)
{
    if (len > PARLEY_ENVELOPE_MAX) {
        self->counters[C_OVERSIZE]++;
        replica_strike(self, link, "it sends invalid envelopes", 1);
        return;
    }
    uint8_t id[32];
    crypto_generichash(id, sizeof id, buf, len, NULL, 0);
    if (store_envelope_has(self->store, id)) {
        self->counters[C_DUPLICATE]++;
        s_queue_ack_own(link, buf, len, id);
        return;
    }
    envelope_t env;
    int rc = envelope_validate(buf, len, node_now_ms(), &env); // id: hashed above
    if (rc != PARLEY_OK) {
        s_count_reject(self, rc);
        //  Expired ones are honest (clocks, a slow path); the rest are not.
        replica_strike(self, link, "it sends invalid envelopes", rc == PARLEY_ERR_EXPIRED ? 0 : 1);
        return;
    }
    //  A member replicates the DM scopes it is a party to; a relay all.
    if (!replica_accepts(self, &env)) {
        self->counters[C_NOT_OURS]++;
        replica_strike(self, link, "it sends envelopes of scopes we do not hold", 1);
        return;
    }
    if (node_txn(self) != PARLEY_OK) {
        return; // not acknowledged: the peer resends
    }
    rc = store_envelope_put(self->store, &env, id, node_now_ms());
    if (rc == PARLEY_ERR_EQUIVOCATION) {
        self->counters[C_EQUIVOCATION]++;
        char sid[PARLEY_SHORT_ID_STRLEN + 1];
        s_short(env.author, sid);
        node_log(self, 0, "equivocation by %s at seq %" PRIu64 ": kept as evidence, rejected", sid,
                 env.seq);
        s_queue_ack_own(link, buf, len, id); // kept as evidence: the sender need not resend
        return;
    }
    if (rc == PARLEY_ERR_DUPLICATE) {
        s_queue_ack_own(link, buf, len, id);
        return;
    }
    if (rc != PARLEY_OK) {
        node_log(self, 0, "store error on ingest: %s", parley_strerror(rc));
        return;
    }
    s_queue_ack_own(link, buf, len, id);
    replica_stored(self, link, &env, id);
    //  Open what is addressed to us: a DM from its author in our scope with
    //  it. A relay only holds the rest; our own come back only as copies.
    uint8_t ours[32];
    if (replica_dm_scope(self, env.author, ours) && sodium_memcmp(ours, env.scope, 32) == 0) {
        s_open_dm(self, env.author, &env, id, receipts, n_receipts);
    }
}

static void
s_send_receipt(node_t *self, const uint8_t peer[32], int status, const uint8_t (*ids)[32], size_t n)
{
    prekey_t spk;
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t clen = 0;
    uint8_t env_id[32];
    uint64_t seq, ts;
    if (store_peer_prekey_get(self->store, peer, &spk) != PARLEY_OK) {
        node_log(self, 1, "no prekey for a receipt yet; the sender will see 'stored'");
        return;
    }
    if (content_encode_receipt((uint8_t)status, (const uint8_t *)ids, n, content, sizeof content,
                               &clen)
            != PARLEY_OK
        || s_seal(self, peer, &spk, content, clen, 0, env_id, &seq, &ts) != PARLEY_OK) {
        node_log(self, 0, "could not seal a receipt");
    }
}

int
node_mark_read(node_t *self, const uint8_t peer[32], size_t *n)
{
    *n = 0;
    store_msg_t *msgs = NULL;
    size_t n_msgs = 0;
    int rc = node_txn(self);
    if (rc == PARLEY_OK) {
        rc = store_history(self->store, peer, 0, &msgs, &n_msgs);
    }
    uint8_t(*ids)[32] = rc == PARLEY_OK ? malloc((size_t)PARLEY_RECEIPT_MAX_IDS * 32) : NULL;
    size_t k = 0;
    for (size_t i = 0; rc == PARLEY_OK && ids && i < n_msgs; i++) {
        bool changed = false;
        if (msgs[i].state != MSG_STATE_RECEIVED) {
            continue;
        }
        rc = store_msg_mark_read(self->store, msgs[i].env_id, &changed);
        if (rc == PARLEY_OK && changed) {
            (*n)++;
            memcpy(ids[k++], msgs[i].env_id, 32);
        }
        if (k == PARLEY_RECEIPT_MAX_IDS || (k > 0 && i + 1 == n_msgs)) {
            if (!self->cfg.no_read_receipts) {
                s_send_receipt(self, peer, RECEIPT_READ, (const uint8_t(*)[32])ids, k);
            }
            k = 0;
        }
    }
    if (k > 0 && !self->cfg.no_read_receipts) {
        s_send_receipt(self, peer, RECEIPT_READ, (const uint8_t(*)[32])ids, k);
    }
    free(ids);
    store_msgs_free(msgs, n_msgs);
    return rc;
}

/* ---- peer exchange ---- */

size_t
node_interfaces(node_iface_t *out, size_t max)
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

#define S_ADDR_LIFETIME_MS (60u * 60u * 1000u)

//  Our dialable endpoints: the bound one when it names an address; for a
//  wildcard bind, every up, non-loopback IPv4 interface with our port, and
//  loopback only when there is nothing else (one host, no network).
static size_t
s_own_endpoints(node_t *self, char (*eps)[PARLEY_ENDPOINT_MAX + 1], size_t max)
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
    node_iface_t ifs[PARLEY_HELLO_ENDPOINTS_MAX];
    size_t n_ifs =
        node_interfaces(ifs, max < PARLEY_HELLO_ENDPOINTS_MAX ? max : PARLEY_HELLO_ENDPOINTS_MAX);
    size_t n = 0;
    for (size_t i = 0; i < n_ifs; i++) {
        snprintf(eps[n++], PARLEY_ENDPOINT_MAX + 1, "tcp://%s:%u", ifs[i].addr, port);
    }
    if (n == 0) {
        snprintf(eps[n++], PARLEY_ENDPOINT_MAX + 1, "tcp://127.0.0.1:%u", port);
    }
    return n;
}

//  Signs a fresh record of our endpoints when the last one is half-way to
//  expiry, and offers it to every connected peer.
static void
s_addr_renew(node_t *self, uint64_t now)
{
    if (self->cfg.no_pex || (self->addr_len > 0 && now < self->addr_renew)) {
        return;
    }
    addr_record_t r;
    memset(&r, 0, sizeof r);
    memcpy(r.pk, identity_ed_pk(self->id), 32);
    r.issued_ms = now;
    r.expires_ms = now + S_ADDR_LIFETIME_MS;
    r.n = s_own_endpoints(self, r.endpoints, PARLEY_HELLO_ENDPOINTS_MAX);
    self->addr_len = 0;
    if (r.n == 0
        || addr_encode(&r, identity_ed_sk(self->id), self->addr, sizeof self->addr, &self->addr_len)
               != PARLEY_OK) {
        node_log(self, 0, "cannot make our address record: peers learn us only by discovery");
        self->addr_len = 0;
    }
    self->addr_renew = now + S_ADDR_LIFETIME_MS / 2;
    for (size_t i = 0; i < self->n_links; i++) {
        self->links[i]->send_peers = self->addr_len > 0;
    }
}

//  PEERS to one peer: our record, then the records of the other connected
//  peers (at most PARLEY_PEERS_MAX in all).
static void
s_send_peers(node_t *self, link_t *link)
{
    const uint8_t *recs[PARLEY_PEERS_MAX];
    size_t lens[PARLEY_PEERS_MAX];
    size_t n = 0;
    uint64_t now = node_now_ms();
    if (self->addr_len > 0) {
        recs[n] = self->addr;
        lens[n++] = self->addr_len;
    }
    for (size_t i = 0; i < self->n_links && n < PARLEY_PEERS_MAX; i++) {
        link_t *l = self->links[i];
        if (l != link && l->addr && l->connected_since != 0 && l->addr_expires > now) {
            recs[n] = l->addr;
            lens[n++] = l->addr_len;
        }
    }
    size_t len = 0;
    if (n > 0
        && frame_encode_peers(recs, lens, n, self->buf, PARLEY_FRAME_MAX, &len) == PARLEY_OK) {
        node_link_send(self, link, self->buf, len);
    }
}

//  Keeps each verified record that is newer than what we hold, dials nodes
//  we cannot reach yet, and passes new records on to the other peers. A
//  record only says where a key might be: the dial is pinned to that key.
static void
s_on_peers(node_t *self, link_t *from, const frame_t *f)
{
    if (self->cfg.no_pex) {
        return;
    }
    uint64_t now = node_now_ms();
    bool learnt = false;
    for (size_t i = 0; i < f->n_records; i++) {
        addr_record_t r;
        if (addr_decode(f->records[i], f->record_lens[i], now, &r) != PARLEY_OK) {
            self->counters[C_BAD_ADDRESS]++;
            continue;
        }
        if (sodium_memcmp(r.pk, identity_ed_pk(self->id), 32) == 0) {
            continue;
        }
        link_t *l = s_link_get(self, r.pk);
        if (!l || (l->addr && r.issued_ms <= l->addr_issued)) {
            continue; // table full, or nothing newer than what we hold
        }
        uint8_t *copy = malloc(f->record_lens[i]);
        if (!copy) {
            continue;
        }
        memcpy(copy, f->records[i], f->record_lens[i]);
        free(l->addr);
        l->addr = copy;
        l->addr_len = f->record_lens[i];
        l->addr_issued = r.issued_ms;
        l->addr_expires = r.expires_ms;
        learnt = learnt || l != from;
        if (!l->source[0]) {
            snprintf(l->source, sizeof l->source, "pex");
        }
        if (!l->dealer && l->connected_since == 0
            && s_link_dial(self, l, r.endpoints[0]) == PARLEY_OK) {
            char sid[PARLEY_SHORT_ID_STRLEN + 1];
            s_short(l->pk, sid);
            node_log(self, 1, "dialling %s at %s (peer exchange)", sid, r.endpoints[0]);
        }
    }
    for (size_t i = 0; learnt && i < self->n_links; i++) {
        link_t *l = self->links[i];
        l->send_peers = l->send_peers || (l != from && l->connected_since != 0);
    }
}

/* ---- frames in ---- */

static void
s_on_envelopes(node_t *self, link_t *link, const frame_t *f)
{
    s_receipts_t *r = calloc(PARLEY_BATCH_MAX, sizeof *r);
    uint8_t(*ids)[32] = malloc((size_t)PARLEY_BATCH_MAX * PARLEY_BATCH_MAX * 32);
    size_t n_r = 0;
    if (!r || !ids) {
        free(r);
        free(ids);
        return; // not acknowledged: the peer resends
    }
    for (size_t i = 0; i < PARLEY_BATCH_MAX; i++) {
        r[i].ids = ids + i * PARLEY_BATCH_MAX;
    }
    for (size_t i = 0; i < f->n_envelopes; i++) {
        s_ingest(self, link, f->envelopes[i], f->envelope_lens[i], r, &n_r);
    }
    for (size_t i = 0; i < n_r; i++) {
        s_send_receipt(self, r[i].author, RECEIPT_DELIVERED, (const uint8_t(*)[32])r[i].ids,
                       r[i].n);
    }
    free(ids);
    free(r);
}

static void
s_on_prekey(node_t *self, link_t *link, const frame_t *f)
{
    prekey_t pk;
    bool changed = false;
    //  Any owner's signed bundle is welcome (relays carry them for authors
    //  whose envelopes they forward); the signature says whose it is.
    if (dm_prekey_decode(f->bundle, f->bundle_len, &pk) != PARLEY_OK) {
        self->counters[C_BAD_PREKEY]++;
        replica_strike(self, link, "it sends forged prekeys", 1);
        return;
    }
    if (sodium_memcmp(pk.owner, identity_ed_pk(self->id), 32) == 0) {
        return;
    }
    if (node_txn(self) != PARLEY_OK
        || store_peer_prekey_put(self->store, &pk, f->bundle, &changed) != PARLEY_OK) {
        return;
    }
    if (changed || sodium_memcmp(pk.owner, link->pk, 32) == 0) {
        s_seal_queued(self, pk.owner);
    }
    if (changed) {
        //  A newer bundle travels on to every other peer (once: an older or
        //  equal one changes nothing), so nodes that never meet can still
        //  write to each other through relays.
        for (size_t i = 0; i < self->n_links; i++) {
            link_t *l = self->links[i];
            if (l != link && l->connected_since != 0 && memcmp(l->pk, pk.owner, 32) != 0) {
                s_send_bundle(self, l, f->bundle); // decoded above: DM_PREKEY_BUNDLE_LEN bytes
            }
        }
    }
}

static void
s_on_ack(node_t *self, link_t *link, const frame_t *f)
{
    if (node_txn(self) != PARLEY_OK) {
        return;
    }
    for (size_t i = 0; i < f->n_ids; i++) {
        //  NOTFOUND: a second ACK for the same envelope; nothing to do.
        int rc = store_outbox_ack(self->store, f->ids + 32 * i, link->pk);
        if (rc != PARLEY_OK && rc != PARLEY_ERR_NOTFOUND) {
            node_log(self, 0, "outbox ack: %s", parley_strerror(rc));
        }
        //  Another node holds it durably: at least "relayed".
        bool changed = false;
        store_msg_t msg;
        memset(&msg, 0, sizeof msg);
        if (store_msg_raise(self->store, f->ids + 32 * i, MSG_STATE_RELAYED, &changed, &msg)
                == PARLEY_OK
            && changed) {
            node_notify(self, "delivery", node_msg_json(self, &msg));
        }
        free(msg.text);
    }
    if (link->flush_more) {
        //  A long backlog: send the next window now. Once per window, so a
        //  window ACKed in several frames does not trigger several resends.
        link->flush_more = false;
        link->next_flush = 0;
    }
}

//  A frame from a known peer (HELLO already handled).
static void
s_on_frame(node_t *self, link_t *link, const frame_t *f)
{
    link->last_seen = node_now_ms();
    if (link->connected_since == 0 && f->type != FRAME_BYE) {
        //  Silent for a while (a stall, heavy loss), and talking again on a
        //  connection that survived: it is back.
        s_link_set_online(self, link, true, "");
    }
    switch (f->type) {
    case FRAME_PREKEY: s_on_prekey(self, link, f); break;
    case FRAME_ENVELOPES: s_on_envelopes(self, link, f); break;
    case FRAME_ACK: s_on_ack(self, link, f); break;
    case FRAME_PING: s_send_simple(self, link, FRAME_PONG, f->nonce); break;
    case FRAME_PONG: break;
    case FRAME_BYE: s_link_set_online(self, link, false, "said goodbye"); break;
    case FRAME_PEERS: s_on_peers(self, link, f); break;
    case FRAME_RECONCILE: replica_on_reconcile(self, link, f); break;
    case FRAME_WANT: replica_on_want(self, link, f); break;
    default: break;
    }
}

static void
s_on_hello(node_t *self, link_t *link, const frame_t *f)
{
    link->hello = true;
    link->relay = (f->caps & S_CAP_RELAY) != 0;
    link->caps_known = true;
    link->last_seen = node_now_ms();
    char ep[PARLEY_ENDPOINT_MAX + 1] = "";
    if (f->n_endpoints > 0) {
        memcpy(ep, f->endpoints[0], f->endpoint_lens[0]);
        ep[f->endpoint_lens[0]] = '\0';
    }
    if (node_txn(self) == PARLEY_OK
        && store_peer_seen(self->store, link->pk, ep[0] ? ep : NULL, link->last_seen)
               != PARLEY_OK) {
        node_log(self, 0, "could not record a peer sighting");
    }
    s_link_set_online(self, link, true, "");
    //  A HELLO means a new connection (a restarted peer, or a reconnect that
    //  may have lost frames in flight): answer on it with our prekey and push
    //  everything it has not acknowledged. It dialled us: no HELLO back needed.
    link->send_prekey = true;
    link->next_flush = 0;
    //  Tell the dialler ours, on its own connection (never over our DEALER,
    //  where it would be answered again).
    s_send_hello(self, link, true);
}

//  Handles one [routing id, frame] from the ROUTER. user is the ZAP User-Id.
static void
s_router_dispatch(node_t *self, const zmq_msg_t *rid, zmq_msg_t *body, const char *user)
{
    uint8_t x_pk[32];
    frame_t f;
    if (!user || hex_decode(user, x_pk, 32) != PARLEY_OK || zmq_msg_size(rid) > NODE_ROUTE_MAX
        || frame_decode(zmq_msg_data(body), zmq_msg_size(body), &f) != PARLEY_OK) {
        self->counters[C_BAD_FRAME]++;
        return;
    }
    link_t *link = s_link_find_x(self, x_pk);
    if (f.type == FRAME_HELLO) {
        uint8_t want_x[32];
        if (identity_ed_to_x(f.ed_pk, want_x) != PARLEY_OK || sodium_memcmp(want_x, x_pk, 32) != 0
            || sodium_memcmp(f.ed_pk, identity_ed_pk(self->id), 32) == 0) {
            self->counters[C_BAD_HELLO]++; // claims a key its CURVE key does not prove
            return;
        }
        link = s_link_get(self, f.ed_pk);
        if (!link) {
            return; // link table full: the peer retries its HELLO on reconnect
        }
        if (!link->source[0]) {
            snprintf(link->source, sizeof link->source, "inbound");
        }
    } else if (!link || !link->hello) {
        self->counters[C_NO_HELLO]++;
        return;
    }
    if (link->banned_until > node_now_ms()) {
        return; // banned: its frames are not read
    }
    memcpy(link->route, zmq_msg_data((zmq_msg_t *)rid), zmq_msg_size(rid));
    link->route_len = zmq_msg_size(rid);
    if (f.type == FRAME_HELLO) {
        s_on_hello(self, link, &f);
    } else {
        s_on_frame(self, link, &f);
    }
}

static void
s_router_recv(node_t *self)
{
    zmq_msg_t rid, body;
    zmq_msg_init(&rid);
    zmq_msg_init(&body);
    bool ok = zmq_msg_recv(&rid, self->router, ZMQ_DONTWAIT) >= 0 && zmq_msg_more(&rid)
              && zmq_msg_recv(&body, self->router, ZMQ_DONTWAIT) >= 0;
    //  Drain anything beyond two parts: a peer that sends multipart gets it dropped.
    bool extra = false;
    while (ok && zmq_msg_more(&body)) {
        zmq_msg_t junk;
        zmq_msg_init(&junk);
        extra = true;
        int r = zmq_msg_recv(&junk, self->router, ZMQ_DONTWAIT);
        int more = r >= 0 && zmq_msg_more(&junk);
        zmq_msg_close(&junk);
        if (!more) {
            break;
        }
    }
    if (ok && extra) {
        self->counters[C_BAD_FRAME]++;
    } else if (ok) {
        s_router_dispatch(self, &rid, &body, zmq_msg_gets(&body, "User-Id"));
    }
    zmq_msg_close(&rid);
    zmq_msg_close(&body);
}

static void
s_dealer_recv(node_t *self, link_t *link)
{
    zmq_msg_t body;
    zmq_msg_init(&body);
    if (zmq_msg_recv(&body, link->dealer, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&body);
        return;
    }
    frame_t f;
    if (zmq_msg_more(&body)
        || frame_decode(zmq_msg_data(&body), zmq_msg_size(&body), &f) != PARLEY_OK) {
        self->counters[C_BAD_FRAME]++;
        //  Drain the rest of a multipart message so the next read is aligned.
        while (zmq_msg_more(&body)) {
            zmq_msg_close(&body);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&body, link->dealer, ZMQ_DONTWAIT) < 0) {
                break;
            }
        }
    } else if (link->banned_until > node_now_ms()) {
        // banned: its frames are not read
    } else if (f.type != FRAME_HELLO) {
        //  The pinned CURVE key proves who is on the other end of a DEALER;
        //  a frame on it means its connection is up.
        link->dealer_up = true;
        s_on_frame(self, link, &f);
    } else if (sodium_memcmp(f.ed_pk, link->pk, 32) == 0) {
        //  The answer to our HELLO: its capabilities.
        link->relay = (f.caps & S_CAP_RELAY) != 0;
        link->caps_known = true;
        link->last_seen = node_now_ms();
    }
    zmq_msg_close(&body);
}

static void
s_monitor_recv(node_t *self, link_t *link)
{
    zmq_msg_t ev, addr;
    zmq_msg_init(&ev);
    zmq_msg_init(&addr);
    if (zmq_msg_recv(&ev, link->monitor, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&ev);
        zmq_msg_close(&addr);
        return;
    }
    if (zmq_msg_more(&ev)) {
        (void)zmq_msg_recv(&addr, link->monitor, ZMQ_DONTWAIT); // endpoint: unused
    }
    uint16_t event = 0;
    if (zmq_msg_size(&ev) >= 2) {
        memcpy(&event, zmq_msg_data(&ev), 2); // host order, by libzmq's definition
    }
    zmq_msg_close(&ev);
    zmq_msg_close(&addr);
    switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        link->dealer_up = true;
        s_send_hello(self, link, false);
        if (node_txn(self) == PARLEY_OK
            && store_peer_seen(self->store, link->pk, link->endpoint, node_now_ms()) != PARLEY_OK) {
            node_log(self, 0, "could not record a peer sighting");
        }
        s_link_set_online(self, link, true, "");
        link->last_seen = node_now_ms();
        link->send_prekey = true;
        link->next_flush = 0;
        break;
    case ZMQ_EVENT_DISCONNECTED:
        //  A drop before the handshake completed is how a server that does not
        //  hold the pinned key (or refuses us) looks from the client side.
        snprintf(link->last_error, sizeof link->last_error, "%s",
                 link->dealer_up ? "disconnected"
                                 : "handshake refused: the node there does not hold the pinned "
                                   "key, or refused us");
        link->dealer_up = false;
        if (link->route_len == 0) {
            s_link_set_online(self, link, false, "disconnected");
        }
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        link->dealer_up = false;
        snprintf(link->last_error, sizeof link->last_error,
                 "handshake failed: the peer does not hold the pinned key, or refused us");
        node_log(self, 1, "handshake with %s failed", link->endpoint);
        break;
    case ZMQ_EVENT_CONNECT_RETRIED:
        if (!link->dealer_up && link->last_error[0] == 'c') {
            snprintf(link->last_error, sizeof link->last_error, "unreachable endpoint");
        }
        break;
    default: break;
    }
}

//  Open mode admits every key but those banned for now.
static bool
s_zap_admit(const uint8_t client_x_pk[32], void *arg)
{
    return !replica_banned(arg, client_x_pk);
}

static void
s_zap_recv(node_t *self)
{
    bool admitted = false;
    if (transport_zap_handle(self->zap, s_zap_admit, self, &admitted) == PARLEY_OK && !admitted) {
        self->counters[C_ZAP_DENIED]++;
    }
}

/* ---- timers ---- */

static void
s_rotate_prekey(node_t *self, uint64_t now)
{
    int rc = PARLEY_OK;
    if (!self->has_prekey) {
        rc = store_own_prekey_current(self->store, &self->prekey);
        self->has_prekey = rc == PARLEY_OK;
    }
    const store_own_prekey_t *cur = &self->prekey;
    if (self->has_prekey && now < cur->pub.created_ms + self->cfg.prekey_rotate_ms) {
        return;
    }
    uint64_t next_id = 1;
    if (self->has_prekey) {
        next_id = (uint64_t)cur->pub.spk_id + 1;
    }
    store_own_prekey_t fresh;
    uint8_t secret[32];
    memset(&fresh, 0, sizeof fresh);
    rc = node_txn(self);
    if (rc == PARLEY_OK) {
        rc = dm_prekey_generate(identity_ed_pk(self->id), (uint32_t)next_id, now, &fresh.pub,
                                secret);
    }
    if (rc == PARLEY_OK) {
        rc = dm_prekey_encode(&fresh.pub, identity_ed_sk(self->id), fresh.bundle);
    }
    if (rc == PARLEY_OK) {
        rc = store_own_prekey_add(self->store, &fresh, secret, now);
    }
    sodium_memzero(secret, sizeof secret);
    if (rc != PARLEY_OK) {
        node_log(self, 0, "prekey rotation failed: %s", parley_strerror(rc));
        return;
    }
    self->prekey = fresh;
    self->has_prekey = true;
    node_log(self, 1, "new signed prekey %" PRIu32, fresh.pub.spk_id);
    for (size_t i = 0; i < self->n_links; i++) {
        self->links[i]->send_prekey = true;
    }
}

//  Destroys what forward secrecy says must go: prekeys superseded longer than
//  the grace window ago, receiving day keys older than the window, and the
//  sending chain's past days. True if anything was overwritten.
static bool
s_wipe_old_keys(node_t *self, uint64_t now)
{
    bool wiped = false;
    size_t n = 0;
    uint64_t cutoff = now > self->cfg.grace_ms ? now - self->cfg.grace_ms : 0;
    if (node_txn(self) != PARLEY_OK) {
        return false;
    }
    if (store_own_prekey_wipe(self->store, cutoff, &n) == PARLEY_OK && n > 0) {
        wiped = true;
    }
    uint32_t floor_day = s_day(self, cutoff);
    store_recv_session_t *rs = NULL;
    size_t n_rs = 0;
    if (store_recv_session_list(self->store, &rs, &n_rs) == PARLEY_OK) {
        for (size_t i = 0; i < n_rs; i++) {
            if (rs[i].base_day < floor_day
                && dm_chain_advance(rs[i].key, rs[i].base_day, floor_day) == PARLEY_OK) {
                rs[i].base_day = floor_day;
                wiped = store_recv_session_put(self->store, &rs[i]) == PARLEY_OK || wiped;
            }
        }
        sodium_memzero(rs, n_rs * sizeof *rs);
        free(rs);
    }
    uint32_t today = s_day(self, now);
    for (size_t i = 0; i < self->n_links; i++) {
        store_send_session_t s;
        if (store_send_session_get(self->store, self->links[i]->pk, &s) == PARLEY_OK
            && s.day < today && dm_chain_advance(s.key, s.day, today) == PARLEY_OK) {
            s.day = today;
            wiped = store_send_session_put(self->store, &s) == PARLEY_OK || wiped;
        }
        sodium_memzero(&s, sizeof s);
    }
    return wiped;
}

static void
s_liveness(node_t *self, uint64_t now)
{
    for (size_t i = 0; i < self->n_links; i++) {
        link_t *link = self->links[i];
        if (link->connected_since == 0) {
            //  Offline, but our DEALER may still hold a live connection (ZeroMQ
            //  heartbeats kept it through a stall): keep pinging on it; any
            //  frame back brings the link online again.
            if (link->dealer && link->banned_until <= now
                && now >= link->last_sent + self->cfg.ping_ms) {
                size_t len = 0;
                if (frame_encode_ping(FRAME_PING, now, self->buf, PARLEY_FRAME_MAX, &len)
                        == PARLEY_OK
                    && zmq_send(link->dealer, self->buf, len, ZMQ_DONTWAIT) >= 0) {
                    link->last_sent = now;
                }
            }
            continue;
        }
        if (now > link->last_seen + 3 * self->cfg.ping_ms) {
            link->dealer_up = false;
            s_link_set_online(self, link, false, "no answer to pings (heartbeat timeout)");
            continue;
        }
        if (now >= link->last_sent + self->cfg.ping_ms) {
            s_send_simple(self, link, FRAME_PING, now);
        }
        if (now >= link->next_flush) {
            s_flush_outbox(self, link);
        }
    }
}

/* ---- after commit ---- */

static void
s_after_commit(node_t *self)
{
    for (size_t i = 0; i < self->n_links; i++) {
        link_t *link = self->links[i];
        if (link->n_acks > 0) {
            size_t len = 0;
            if (frame_encode_ack((const uint8_t *)link->acks, link->n_acks, self->buf,
                                 PARLEY_FRAME_MAX, &len)
                == PARLEY_OK) {
                node_link_send(self, link, self->buf, len);
            }
            link->n_acks = 0;
        }
        if (link->send_peers && link->connected_since != 0) {
            link->send_peers = false;
            s_send_peers(self, link);
        }
        if (link->send_prekey && link->connected_since != 0) {
            link->send_prekey = false;
            s_send_prekey(self, link);
        }
        if (link->send_bundles && link->connected_since != 0) {
            link->send_bundles = false;
            s_send_held_bundles(self, link);
        }
        if (link->connected_since != 0 && link->next_flush == 0) {
            s_flush_outbox(self, link); // newly up: everything pending, pushes included
            link->n_push = 0;
        } else if (link->n_push > 0 && link->connected_since != 0) {
            s_send_envelopes(self, link, (const uint8_t(*)[32])link->push, link->n_push);
        }
        link->n_push = 0;
    }
    size_t n = json_array_size(self->notes);
    for (size_t i = 0; i < n; i++) {
        api_broadcast(self, json_array_get(self->notes, i));
    }
    json_array_clear(self->notes);
    api_flush(self);
}

static int
s_commit(node_t *self)
{
    if (!store_in_txn(self->store)) {
        return PARLEY_OK;
    }
    int rc = store_commit(self->store);
    if (rc != PARLEY_OK) {
        //  Nothing of this iteration may be promised: drop queued output.
        node_log(self, 0, "commit failed: %s; rolling back", parley_strerror(rc));
        if (store_rollback(self->store) != PARLEY_OK) {
            node_log(self, 0, "rollback failed too");
        }
        for (size_t i = 0; i < self->n_links; i++) {
            self->links[i]->n_acks = 0;
            self->links[i]->n_push = 0;
        }
        //  A prekey rotated in the lost transaction is gone: reload from disk.
        self->has_prekey = false;
        replica_rollback(self);
        json_array_clear(self->notes);
    }
    return rc;
}

/* ---- set-up ---- */

void
node_config_default(node_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->listen = "tcp://0.0.0.0:*";
    cfg->ratchet_ms = NODE_DAY_MS;
    cfg->grace_ms = 14 * NODE_DAY_MS;
    cfg->prekey_rotate_ms = 7 * NODE_DAY_MS;
    cfg->ping_ms = 2000;
    cfg->retry_ms = 3000;
    cfg->sync_ms = 30000;
}

static int s_fail(int rc, int *err, char *errmsg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int
s_fail(int rc, int *err, char *errmsg, size_t cap, const char *fmt, ...)
{
    *err = rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, cap, fmt, ap);
    va_end(ap);
    return rc;
}

static int
s_open_identity(node_t *self, int *err, char *errmsg, size_t cap)
{
    int rc = home_identity_load(self->home, self->cfg.passphrase, self->cfg.pass_len, &self->id);
    if (rc == PARLEY_ERR_NOTFOUND) {
        self->id = identity_new();
        if (!self->id) {
            return s_fail(PARLEY_ERR_NOMEM, err, errmsg, cap, "%s", "out of memory");
        }
        rc = home_identity_create(self->home, self->id, NULL, 0);
        if (rc != PARLEY_OK) {
            return s_fail(rc, err, errmsg, cap, "cannot create %s/identity.key", self->home);
        }
        fprintf(stderr, "parleyd: created a new identity in %s/identity.key\n", self->home);
        return PARLEY_OK;
    }
    if (rc == PARLEY_ERR_STATE) {
        return s_fail(rc, err, errmsg, cap,
                      "%s/identity.key is sealed with a passphrase: "
                      "start with --passphrase-file FILE",
                      self->home);
    }
    if (rc == PARLEY_ERR_AUTH) {
        return s_fail(rc, err, errmsg, cap, "%s", "bad passphrase for identity.key");
    }
    if (rc != PARLEY_OK) {
        return s_fail(rc, err, errmsg, cap, "cannot read %s/identity.key (damaged?)", self->home);
    }
    return PARLEY_OK;
}

static int
s_open_store(node_t *self, int *err, char *errmsg, size_t cap)
{
    char path[HOME_PATH_MAX];
    int rc = home_path(self->home, "parley.db", path, sizeof path);
    if (rc == PARLEY_OK) {
        rc = store_open(path, &self->store);
    }
    if (rc == PARLEY_ERR_UNSUPPORTED) {
        return s_fail(rc, err, errmsg, cap,
                      "%s/parley.db comes from a newer Parley; upgrade parleyd", self->home);
    }
    if (rc != PARLEY_OK) {
        return s_fail(rc, err, errmsg, cap, "cannot open the database %s/parley.db", self->home);
    }
    rc = replica_new(self, &self->replica);
    if (rc != PARLEY_OK) {
        return s_fail(rc, err, errmsg, cap, "cannot read the scopes in %s/parley.db", self->home);
    }
    return PARLEY_OK;
}

static int
s_dial_seed(node_t *self, const char *seed)
{
    char endpoint[PARLEY_ENDPOINT_MAX + 1];
    uint8_t pk[32];
    int rc = config_seed_parse(seed, endpoint, sizeof endpoint, pk);
    if (rc != PARLEY_OK || sodium_memcmp(pk, identity_ed_pk(self->id), 32) == 0) {
        return rc; // a seed naming ourselves is harmless: skipped
    }
    link_t *link = s_link_get(self, pk);
    if (!link) {
        return PARLEY_ERR_NOMEM;
    }
    snprintf(link->source, sizeof link->source, "seed");
    return s_link_dial(self, link, endpoint);
}

static int
s_open_network(node_t *self, int *err, char *errmsg, size_t cap)
{
    self->ctx = zmq_ctx_new();
    if (!self->ctx) {
        return s_fail(PARLEY_ERR_IO, err, errmsg, cap, "%s", "cannot create a ZeroMQ context");
    }
    int rc = transport_zap_new(self->ctx, &self->zap);
    if (rc != PARLEY_OK) {
        return s_fail(rc, err, errmsg, cap, "%s", "cannot start the ZAP handler");
    }
    transport_opts_t opts;
    transport_opts_default(&opts);
    rc = transport_server_new(self->ctx, &opts, identity_x_sk(self->id), self->listen,
                              &self->router, self->endpoint, sizeof self->endpoint);
    if (rc != PARLEY_OK) {
        return s_fail(rc, err, errmsg, cap, "cannot listen on %s (in use, or not tcp://ADDR:PORT)",
                      self->listen);
    }
    //  Seeds from the command line, then from HOME/config.json.
    config_t *conf = calloc(1, sizeof *conf);
    char why[300] = "";
    if (!conf) {
        return s_fail(PARLEY_ERR_NOMEM, err, errmsg, cap, "%s", "out of memory");
    }
    rc = config_load(self->home, conf, why, sizeof why);
    if (rc != PARLEY_OK) {
        free(conf);
        return s_fail(rc, err, errmsg, cap, "bad config file %s", why);
    }
    size_t total = self->cfg.n_seeds + conf->n_seeds;
    for (size_t i = 0; rc == PARLEY_OK && i < total; i++) {
        const char *seed =
            i < self->cfg.n_seeds ? self->cfg.seeds[i] : conf->seeds[i - self->cfg.n_seeds];
        rc = s_dial_seed(self, seed);
        if (rc != PARLEY_OK) {
            s_fail(rc, err, errmsg, cap, "bad seed '%s': want tcp://HOST:PORT#NODEID", seed);
        }
    }
    free(conf);
    return rc;
}

//  Peers we know from earlier runs get a link, so their frames are accepted
//  and a restarted node redials the ones it had an endpoint for.
static void
s_load_peers(node_t *self)
{
    store_peer_t *peers = NULL;
    size_t n = 0;
    if (store_peer_list(self->store, &peers, &n) != PARLEY_OK) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        link_t *link = s_link_get(self, peers[i].pk);
        if (!link) {
            continue;
        }
        if (!link->source[0]) {
            snprintf(link->source, sizeof link->source, "stored");
        }
        //  An endpoint we once reached is worth a dial at once; a wildcard
        //  one (a peer listening on all interfaces told us so) is not.
        const char *ep = peers[i].endpoint;
        if (endpoint_valid(ep, strlen(ep)) && s_link_dial(self, link, ep) != PARLEY_OK) {
            node_log(self, 1, "cannot redial a stored endpoint %s", ep);
        }
    }
    free(peers);
}

//  One report from the discovery actor (discovery.h).
static void
s_disc_recv(node_t *self)
{
    zmsg_t *msg = zmsg_recv(discovery_pipe(self->disc));
    char *kind = msg ? zmsg_popstr(msg) : NULL;
    char *a = msg ? zmsg_popstr(msg) : NULL;
    char *b = msg ? zmsg_popstr(msg) : NULL;
    char *c = msg ? zmsg_popstr(msg) : NULL;
    uint8_t pk[32];
    if (kind && streq(kind, "STATUS") && a && b && c) {
        int i = streq(a, "mdns") ? 1 : 0;
        if (!streq(self->disc_state[i], b) || !streq(self->disc_detail[i], c)) {
            node_log(self, 0, "discovery %s %s: %s", a, b, c);
        }
        snprintf(self->disc_state[i], sizeof self->disc_state[i], "%s", b);
        snprintf(self->disc_detail[i], sizeof self->disc_detail[i], "%s", c);
    } else if (kind && streq(kind, "SEEN") && a && b && c
               && identity_parse_node_id(a, pk) == PARLEY_OK && endpoint_valid(b, strlen(b))
               && sodium_memcmp(pk, identity_ed_pk(self->id), 32) != 0) {
        link_t *link = s_link_get(self, pk);
        if (link && !link->source[0]) {
            snprintf(link->source, sizeof link->source, "%s", c);
        }
        //  A node that moved (new port after a restart) gets a fresh DEALER;
        //  a connected one is left alone.
        if (link && link->dealer && !link->dealer_up && !streq(link->endpoint, b)) {
            s_link_undial(link);
        }
        if (link && !link->dealer && s_link_dial(self, link, b) == PARLEY_OK) {
            node_log(self, 1, "dialling %.8s at %s (%s)", a, b, c);
        }
    }
    zstr_free(&kind);
    zstr_free(&a);
    zstr_free(&b);
    zstr_free(&c);
    zmsg_destroy(&msg);
}

static int
s_open_discovery(node_t *self, int *err, char *errmsg, size_t cap)
{
    if (self->cfg.no_mdns && self->cfg.no_local) {
        return PARLEY_OK;
    }
    zsys_handler_set(NULL); // parleyd owns SIGINT/SIGTERM, not CZMQ
    discovery_config_t dc = { self->node_id,
                              endpoint_port(self->endpoint, strlen(self->endpoint)),
                              "open",
                              !self->cfg.no_mdns,
                              !self->cfg.no_local,
                              self->cfg.runtime_dir };
    if (dc.port == 0) {
        //  Bound to a wildcard: the port is still in the endpoint, after the colon.
        const char *colon = strrchr(self->endpoint, ':');
        dc.port = colon ? (uint16_t)strtoul(colon + 1, NULL, 10) : 0;
    }
    self->disc = discovery_new(&dc);
    if (!self->disc) {
        return s_fail(PARLEY_ERR_IO, err, errmsg, cap, "%s", "cannot start discovery");
    }
    return PARLEY_OK;
}

node_t *
node_new(const node_config_t *cfg, int *err, char *errmsg, size_t cap)
{
    *err = PARLEY_OK;
    errmsg[0] = '\0';
    node_t *self = calloc(1, sizeof *self);
    if (!self) {
        *err = PARLEY_ERR_NOMEM;
        snprintf(errmsg, cap, "out of memory");
        return NULL;
    }
    self->cfg = *cfg;
    self->lock_fd = -1;
    self->api_fd = -1;
    self->wake[0] = self->wake[1] = -1;
    snprintf(self->home, sizeof self->home, "%s", cfg->home);
    snprintf(self->listen, sizeof self->listen, "%s",
             cfg->listen ? cfg->listen : "tcp://0.0.0.0:*");
    self->notes = json_array();
    self->buf = malloc(PARLEY_FRAME_MAX);
    self->batchbuf = malloc(PARLEY_FRAME_MAX);
    self->envbuf = malloc(PARLEY_ENVELOPE_MAX);
    if (!self->notes || !self->buf || !self->batchbuf || !self->envbuf
        || pipe2(self->wake, O_CLOEXEC | O_NONBLOCK)) {
        s_fail(PARLEY_ERR_NOMEM, err, errmsg, cap, "%s", "out of resources");
        node_destroy(&self);
        return NULL;
    }
    long pid = 0;
    int rc = home_ensure(self->home);
    if (rc != PARLEY_OK) {
        s_fail(rc, err, errmsg, cap, "cannot create the home directory %s", self->home);
        node_destroy(&self);
        return NULL;
    }
    rc = home_lock(self->home, &self->lock_fd, &pid);
    if (rc == PARLEY_ERR_BUSY) {
        *err = rc;
        snprintf(errmsg, cap, "another parleyd (pid %ld) is already running on %s", pid,
                 self->home);
        node_destroy(&self);
        return NULL;
    }
    if (rc != PARLEY_OK) {
        s_fail(rc, err, errmsg, cap, "cannot lock %s/parleyd.lock", self->home);
        node_destroy(&self);
        return NULL;
    }
    if (s_open_identity(self, err, errmsg, cap) != PARLEY_OK
        || s_open_store(self, err, errmsg, cap) != PARLEY_OK) {
        node_destroy(&self);
        return NULL;
    }
    identity_node_id(identity_ed_pk(self->id), self->node_id);
    if (s_open_network(self, err, errmsg, cap) != PARLEY_OK
        || s_open_discovery(self, err, errmsg, cap) != PARLEY_OK) {
        node_destroy(&self);
        return NULL;
    }
    s_load_peers(self);
    rc = api_listen(self);
    if (rc != PARLEY_OK) {
        s_fail(rc, err, errmsg, cap, "cannot create the API socket %s", self->api_path);
        node_destroy(&self);
        return NULL;
    }
    self->started_ms = node_now_ms();
    if (node_txn(self) == PARLEY_OK) {
        s_rotate_prekey(self, self->started_ms); // makes the first one
    }
    if (s_commit(self) != PARLEY_OK) {
        s_fail(PARLEY_ERR_IO, err, errmsg, cap, "%s", "cannot write the database");
        node_destroy(&self);
        return NULL;
    }
    return self;
}

const char *
node_endpoint(const node_t *self)
{
    return self->endpoint;
}

void
node_stop(node_t *self)
{
    self->stopping = 1;
    if (self->wake[1] >= 0) {
        ssize_t r = write(self->wake[1], "x", 1);
        (void)r; // a full pipe already wakes the loop
    }
}

static void
s_say_bye(node_t *self)
{
    size_t len = 0;
    if (frame_encode_bye(0, self->buf, PARLEY_FRAME_MAX, &len) != PARLEY_OK) {
        return;
    }
    for (size_t i = 0; i < self->n_links; i++) {
        if (self->links[i]->connected_since != 0) {
            node_link_send(self, self->links[i], self->buf, len);
        }
    }
}

void
node_destroy(node_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    node_t *self = *self_p;
    api_close(self);
    discovery_destroy(&self->disc);
    for (size_t i = 0; i < self->n_links; i++) {
        s_link_free(self->links[i]);
    }
    free(self->links);
    replica_destroy(&self->replica);
    if (self->router) {
        zmq_close(self->router);
    }
    if (self->zap) {
        zmq_close(self->zap);
    }
    if (self->ctx) {
        zmq_ctx_term(self->ctx);
    }
    if (self->store && store_in_txn(self->store) && store_rollback(self->store) != PARLEY_OK) {
        fprintf(stderr, "parleyd: rollback at shutdown failed\n");
    }
    store_destroy(&self->store);
    identity_destroy(&self->id);
    home_unlock(&self->lock_fd);
    if (self->wake[0] >= 0) {
        close(self->wake[0]);
        close(self->wake[1]);
    }
    json_decref(self->notes);
    free(self->buf);
    free(self->batchbuf);
    free(self->envbuf);
    free(self);
    *self_p = NULL;
}

/* ---- the loop ---- */

#define S_ITEMS_FIXED 4
#define S_BATCH_READS 256

int
node_run(node_t *self)
{
    int status = PARLEY_OK;
    zmq_pollitem_t *items = NULL;
    size_t cap = 0;
    while (!self->stopping) {
        size_t n_api = api_poll_count(self);
        size_t n = S_ITEMS_FIXED + 2 * self->n_links + n_api;
        if (n > cap) {
            zmq_pollitem_t *grown = realloc(items, n * sizeof *items);
            if (!grown) {
                status = PARLEY_ERR_NOMEM;
                break;
            }
            items = grown;
            cap = n;
        }
        memset(items, 0, n * sizeof *items);
        items[0] = (zmq_pollitem_t){ self->router, 0, ZMQ_POLLIN, 0 };
        items[1] = (zmq_pollitem_t){ self->zap, 0, ZMQ_POLLIN, 0 };
        items[2] = (zmq_pollitem_t){ NULL, self->wake[0], ZMQ_POLLIN, 0 };
        items[3] = (zmq_pollitem_t){ self->disc ? discovery_socket(self->disc) : NULL, -1,
                                     self->disc ? ZMQ_POLLIN : 0, 0 };
        for (size_t i = 0; i < self->n_links; i++) {
            link_t *link = self->links[i];
            //  A link without a DEALER polls a harmless never-ready fd slot.
            items[S_ITEMS_FIXED + 2 * i] =
                (zmq_pollitem_t){ link->dealer, -1, link->dealer ? ZMQ_POLLIN : 0, 0 };
            items[S_ITEMS_FIXED + 2 * i + 1] =
                (zmq_pollitem_t){ link->monitor, -1, link->monitor ? ZMQ_POLLIN : 0, 0 };
        }
        size_t n_links_polled = self->n_links;
        api_poll_fill(self, items + S_ITEMS_FIXED + 2 * n_links_polled);
        long timeout = replica_backlog(self) ? 2 : 100;
        if (zmq_poll(items, (int)n, timeout) < 0 && zmq_errno() != EINTR) {
            status = PARLEY_ERR_IO;
            break;
        }
        if (items[2].revents & ZMQ_POLLIN) {
            char drain[64];
            while (read(self->wake[0], drain, sizeof drain) > 0) {
            }
        }
        for (int k = 0; k < S_BATCH_READS && (items[1].revents & ZMQ_POLLIN); k++) {
            int events = 0;
            size_t elen = sizeof events;
            zmq_getsockopt(self->zap, ZMQ_EVENTS, &events, &elen);
            if (!(events & ZMQ_POLLIN)) {
                break;
            }
            s_zap_recv(self);
        }
        if (items[0].revents & ZMQ_POLLIN) {
            for (int k = 0; k < S_BATCH_READS; k++) {
                int events = 0;
                size_t elen = sizeof events;
                if (zmq_getsockopt(self->router, ZMQ_EVENTS, &events, &elen) != 0
                    || !(events & ZMQ_POLLIN)) {
                    break;
                }
                s_router_recv(self);
            }
        }
        for (size_t i = 0; i < n_links_polled; i++) {
            link_t *link = self->links[i];
            if (items[S_ITEMS_FIXED + 2 * i + 1].revents & ZMQ_POLLIN) {
                for (int k = 0; k < 16; k++) {
                    int events = 0;
                    size_t elen = sizeof events;
                    if (zmq_getsockopt(link->monitor, ZMQ_EVENTS, &events, &elen) != 0
                        || !(events & ZMQ_POLLIN)) {
                        break;
                    }
                    s_monitor_recv(self, link);
                }
            }
            if (items[S_ITEMS_FIXED + 2 * i].revents & ZMQ_POLLIN) {
                for (int k = 0; k < S_BATCH_READS; k++) {
                    int events = 0;
                    size_t elen = sizeof events;
                    if (zmq_getsockopt(link->dealer, ZMQ_EVENTS, &events, &elen) != 0
                        || !(events & ZMQ_POLLIN)) {
                        break;
                    }
                    s_dealer_recv(self, link);
                }
            }
        }
        api_poll_handle(self, items + S_ITEMS_FIXED + 2 * n_links_polled);
        //  After the links: a report may close or add DEALERs polled above.
        for (int k = 0; k < S_BATCH_READS && (items[3].revents & ZMQ_POLLIN); k++) {
            int events = 0;
            size_t elen = sizeof events;
            if (zmq_getsockopt(discovery_socket(self->disc), ZMQ_EVENTS, &events, &elen) != 0
                || !(events & ZMQ_POLLIN)) {
                break;
            }
            s_disc_recv(self);
        }
        uint64_t now = node_now_ms();
        if (now >= self->next_maint) {
            s_rotate_prekey(self, now);
            s_addr_renew(self, now);
            //  Wiped secrets must not linger in old WAL frames: checkpoint.
            bool checkpoint = s_wipe_old_keys(self, now);
            uint64_t step = self->cfg.ratchet_ms / 4;
            step = step < 250 ? 250 : step > 60000 ? 60000 : step;
            self->next_maint = now + step;
            if (checkpoint) {
                if (s_commit(self) == PARLEY_OK && store_checkpoint(self->store) != PARLEY_OK) {
                    node_log(self, 1, "checkpoint deferred (readers active)");
                }
            }
        }
        s_liveness(self, now);
        replica_tick(self, now);
        if (s_commit(self) != PARLEY_OK) {
            continue; // queued output was dropped; peers and clients retry
        }
        s_after_commit(self);
        replica_pump(self);
    }
    free(items);
    s_say_bye(self);
    if (s_commit(self) != PARLEY_OK) {
        status = PARLEY_ERR_IO;
    }
    api_flush(self);
    return status;
}

void
node_test(bool verbose)
{
    (void)verbose;
    node_config_t cfg;
    node_config_default(&cfg);
    CHECK(cfg.ratchet_ms == NODE_DAY_MS);
    char endpoint[256];
    uint8_t pk[32];
    CHECK(config_seed_parse("tcp://127.0.0.1:5#x", endpoint, sizeof endpoint, pk) != PARLEY_OK);
    CHECK(config_seed_parse("udp://h:1#aaaa", endpoint, sizeof endpoint, pk) != PARLEY_OK);
    CHECK(config_seed_parse("#aaaa", endpoint, sizeof endpoint, pk) != PARLEY_OK);
    identity_t *id = identity_new();
    CHECK(id);
    char nid[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(id), nid);
    char seed[400];
    snprintf(seed, sizeof seed, "tcp://127.0.0.1:4000#%s", nid);
    CHECK(config_seed_parse(seed, endpoint, sizeof endpoint, pk) == PARLEY_OK);
    CHECK(strcmp(endpoint, "tcp://127.0.0.1:4000") == 0);
    CHECK(memcmp(pk, identity_ed_pk(id), 32) == 0);
    identity_destroy(&id);
}
