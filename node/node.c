/*  node/node.c — the engine's actor: set-up, the loop, dispatch of what the
 *  sockets bring to the classes, the commit and the after-commit flush.
 *
 *  The classes, each in its own file and each including only what lies
 *  below it (make test checks the include graph):
 *
 *      node ─► api ─► api_server            the local API (methods, transport)
 *        │      └───► delivery ─► network ─► replica ─► session ─► link ─► core ─► log
 *        └──► pex ──────────────────────────────────────────────────┘
 *
 *    core      shared services: config, clock, logger, counters, the
 *              iteration's transaction and the after-commit queue
 *    link      one peer connection (DEALER, route, online state, ban)
 *    session   prekeys, X3DH sessions, day chains, wiping, DM scopes
 *    pex       signed address records and their gossip
 *    network   the private network: roster, admission, invites, the join
 *              exchange, the network secret (open mode: every answer yes)
 *    replica   reconciliation and relaying (per-link state of its own)
 *    delivery  send, seal, ingest, open, ACKs, receipts, outbox
 *    api       the JSON-RPC methods; api_server the Unix-socket lines
 *
 *  One thread owns everything. Each loop iteration:
 *
 *      poll ──► read ready sockets ──► handlers write to the store inside one
 *                                      transaction and only queue output
 *           ──► commit ──► reserve sequence numbers ahead (own transaction)
 *               ──► flush the after-commit queue: API replies,
 *               notifications, ACKs, pushes, outbox resends (and stream
 *               what sync found)
 *           └─► rollback ──► drop the queue; every API call in it gets an error
 *
 *  so no peer or client ever hears of something that is not durable yet.
 *
 *  One DM, from `parley send` on A to the notification on B and back:
 *
 *    A api: "send" ─► delivery_send_text: seal (session_send_key), store the
 *       envelope, outbox row, history row; replica_stored queues its push
 *       ─► commit ─► reply "stored" to the client; push ENVELOPES (after our
 *       PREKEY) to B
 *    B router ─► delivery_on_envelopes: verify, store, open
 *       (session_recv_key), history row, "message" notification; ACK and a
 *       sealed receipt queued ─► commit ─► notify subscribers; ACK and
 *       receipt pushed to A
 *    A ─► delivery_on_ack: "relayed"; delivery_on_envelopes(receipt):
 *       "delivered", outbox row dropped ─► commit ─► "delivery" notification
 */
#include "node.h"

#include "../discovery/discovery.h"
#include "../proto/b32.h"
#include "../proto/endpoint.h"
#include "../proto/frame.h"
#include "../proto/selftest.h"
#include "api.h"
#include "api_server.h"
#include "config.h"
#include "core.h"
#include "delivery.h"
#include "home.h"
#include "link.h"
#include "network.h"
#include "pex.h"
#include "replica.h"
#include "session.h"
#include "transport.h"
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define S_CAP_RELAY 0x1u /* HELLO caps: replicates every scope */
#define S_TAG "open"
#define S_ITEMS_FIXED 5
#define S_ITEMS_JOIN S_ITEMS_FIXED /* then NETWORK_JOIN_SOCKETS: a joiner's DEALERs */
#define S_ITEMS_LINKS (S_ITEMS_FIXED + NETWORK_JOIN_SOCKETS)
#define S_BATCH_READS 256
/*  Reading stops after this much of an iteration (each ready socket still
 *  gets one message): what was read is committed and answered, and the
 *  rest waits for the next iteration, so a peer whose frames are costly
 *  delays everyone else's replies by about this much, not by 256 frames. */
#define S_READ_BUDGET_MS 10u
#define S_WAKE_MAX_MS 1000  /* the longest wait for input: a timer no tick reports is that late */
#define S_SLACK_MAX_MS 1000 /* the coarsest grid timers are rounded up to */
#define S_SELECT_MS 1000u   /* the link policy runs this often, and when the table changes */
#define S_PENDING_MAX 4096u /* peers with pending envelopes the policy keeps linked */
#define S_LINK_GRACE_MS 30000u /* an unwanted DEALER lives at least this long (or link_idle_ms) */
#define S_STORED_MAX 256u      /* stored peers given a link at start, most recent first */
#define S_DISC_NEW_MAX 128u    /* new links mDNS (strangers' records) may make per window */
/*  ... and host-local discovery, whose records only our own user can write
 *  (a 0700 runtime directory): as many as the table holds unverified, so a
 *  swarm of a few hundred nodes on one host is known within a window. */
#define S_DISC_LOCAL_NEW_MAX LINK_UNVERIFIED_MAX
#define S_DISC_WINDOW_MS 60000u
#define S_EVICT_GRACE_MS 500u /* between a removed member's last words and its cut */
#define S_SYNC_DEFER_MS 10u   /* the longest a commit of what peers sent waits for its sync */

struct _node_t {
    core_t core;            /* shared services; the after-commit queue */
    int lock_fd;            /* flock on parleyd.lock */
    identity_t *id;         /* our keys */
    store_t *store;         /* our log */
    void *ctx;              /* our own zmq context (own ZAP endpoint) */
    void *router;           /* CURVE server */
    void *zap;              /* ZAP handler */
    links_t *links;         /* peers */
    session_t *session;     /* DM key material */
    pex_t *pex;             /* address records */
    replica_t *replica;     /* replication */
    network_t *network;     /* the private network, if any */
    channels_t *channels;   /* the channels this node is in */
    delivery_t *delivery;   /* DMs */
    api_server_t *server;   /* api.sock */
    api_t *api;             /* its methods */
    char api_path[4200];    /* api.sock's path */
    discovery_t *disc;      /* the discovery actor, or NULL */
    void *pipe;             /* an embedding actor's pipe (zsock_t), or NULL */
    int wake[2];            /* self-pipe for node_stop */
    volatile int stopping;  /* set by node_stop */
    bool term;              /* "$TERM" came on the pipe */
    uint64_t next_maint;    /* ms: prekey rotation, address renewal, wiping */
    uint64_t next_select;   /* ms: the link policy runs again (s_select) */
    size_t select_n;        /* links in the table when it last ran */
    uint8_t *pending;       /* S_PENDING_MAX keys: peers with envelopes pending (s_select) */
    uint8_t *buf;           /* PARLEY_FRAME_MAX scratch for HELLO, PING, BYE */
    uint64_t disc_since[2]; /* per discovery source (0 local, 1 mdns): window start */
    unsigned disc_new[2];   /* new links it made in that window */
    bool evict_due;         /* after commit: non-members are told why (s_evict) */
    bool evict_wait;        /* then, at evict_at, their links go */
    uint64_t evict_at;      /* ms */
    bool drop_all;          /* after commit: we are out of the network, every link goes */
};

/* ---- links: transitions every class hears of ---- */

//  Our DM scope with link's peer is ours to replicate. Only for peers we
//  keep or have talked to: a flood of fresh keys must not add a scope each
//  (a DM that does arrive from a stranger adopts its scope: replica_accepts).
static void
s_adopt(node_t *self, link_t *link)
{
    uint8_t scope[32];
    if (self->replica && session_dm_scope(self->session, link_pk(link), scope)) {
        replica_mine(self->replica, scope);
    }
}

//  replica's question of who else is a party to a scope: a channel's members.
static unsigned
s_channel_party(const void *arg, const uint8_t scope[32], const uint8_t pk[32])
{
    return channels_party(arg, scope, pk);
}

static bool
s_link_allowed(void *arg, const uint8_t pk[32])
{
    node_t *self = arg;
    return network_allows(self->network, pk);
}

//  The network secrets changed: discovery announces and recognises with
//  the new ones (no secret at all: open mode again).
static void
s_disc_keys(node_t *self)
{
    if (!self->disc) {
        return;
    }
    uint8_t keys[STORE_NETKEYS_MAX][32];
    size_t n = network_keys(self->network, keys, STORE_NETKEYS_MAX);
    zmsg_t *msg = zmsg_new();
    if (n == 0 && network_quiet(self->network)) {
        if (msg && zmsg_addstr(msg, "HUSH") == 0
            && zmsg_send(&msg, discovery_pipe(self->disc)) == 0) {
            log_write(&self->core.log, LOG_LEVEL_DEBUG,
                      "discovery is silent: no network secret yet");
        }
    } else if (msg && zmsg_addstr(msg, "KEYS") == 0 && zmsg_addmem(msg, keys, n * 32) == 0
               && zmsg_send(&msg, discovery_pipe(self->disc)) == 0) {
        log_write(&self->core.log, LOG_LEVEL_DEBUG, "discovery has %zu network secret(s)", n);
    }
    zmsg_destroy(&msg);
    sodium_memzero(keys, sizeof keys);
}

//  The roster changed: keys that stopped being members lose their links
//  (their frames are refused at once, ZAP refuses them, and s_evict drops
//  them after the commit), and only designated relays stay relays.
static void
s_network_changed(void *arg, const network_change_t *ch)
{
    node_t *self = arg;
    if (ch->self_gone) {
        replica_set_network(self->replica, NULL);
        self->drop_all = true;  // its members are strangers to us now
        self->evict_due = true; // after the grace: what we pushed goes out first
    }
    if (ch->keys_changed) {
        s_disc_keys(self);
    }
    //  Every link of a key that is not a member goes (removed members, and
    //  the open-mode peers of a node that has just founded or joined one)
    //  once this is committed and pushed to the members (s_evict). Their
    //  frames are refused from now on.
    for (size_t i = 0; i < links_count(self->links); i++) {
        link_t *link = links_at(self->links, i);
        if (!network_allows(self->network, link_pk(link))) {
            self->evict_due = true;
        } else {
            link_set_relay_ok(link, network_relay_ok(self->network, link_pk(link)));
        }
    }
    //  Members that are new to us get a round now: they lack the roster's
    //  past. Those we could not link to yet are dialled now.
    for (size_t i = 0; i < ch->n_added; i++) {
        link_t *link = links_find(self->links, ch->added[i]);
        if (link) {
            replica_sync_soon(self->replica, link);
        }
    }
    if (ch->n_added > 0) {
        pex_retry(self->pex);
    }
}

//  After the commit that removed them, and after the members had the
//  removal pushed: each non-member still linked is told why (the roster's
//  newest events) and goodbye; S_EVICT_GRACE_MS later (our sockets do not
//  linger: closed at once, they would drop those words) its link goes,
//  and with it our DEALER to it. Meanwhile nothing is read from or sent to
//  it. What it opened to our ROUTER stays open but unread: libzmq cannot
//  close one peer's inbound connection, and unbinding the ROUTER to close
//  them all (then binding again) was tried and dropped: with members
//  reconnecting at the same moment it left some of their connections
//  attached to nothing, cutting the node off without either side seeing a
//  disconnect. A removed node that learns why drops every link (drop_all),
//  and its dials are refused at ZAP.
static void
s_evict(node_t *self)
{
    core_t *core = &self->core;
    uint64_t now = core_now(core);
    if (self->evict_due) {
        self->evict_due = false;
        for (size_t i = 0; i < links_count(self->links); i++) {
            link_t *link = links_at(self->links, i);
            if (network_allows(self->network, link_pk(link)) || !link_online(link)) {
                continue;
            }
            network_farewell(self->network, link);
            size_t len = 0;
            if (frame_encode_bye(1, self->buf, PARLEY_FRAME_MAX, &len) == PARLEY_OK) {
                (void)links_send_last(self->links, link, self->buf, len); // best effort
            }
        }
        //  The grace starts once: later folds must not keep postponing it.
        if (!self->evict_wait) {
            self->evict_wait = true;
            self->evict_at = now + S_EVICT_GRACE_MS;
        }
    }
    if (self->evict_wait) {
        core_wake_at(core, self->evict_at);
    }
    if (!self->evict_wait || now < self->evict_at) {
        return;
    }
    self->evict_wait = false;
    for (size_t i = links_count(self->links); self->drop_all && i-- > 0;) {
        links_remove(self->links, links_at(self->links, i), "this node left the network");
    }
    self->drop_all = false;
    for (size_t i = links_count(self->links); i-- > 0;) {
        link_t *link = links_at(self->links, i);
        if (network_allows(self->network, link_pk(link))) {
            continue;
        }
        char sid[PARLEY_SHORT_ID_STRLEN + 1];
        identity_short_id(link_pk(link), sid);
        log_write(&core->log, LOG_LEVEL_INFO, "%s is not a member: disconnected", sid);
        links_remove(self->links, link, "not a member of the network");
    }
}

//  A new link, whoever made it: a contact's is kept (never evicted).
static void
s_link_made(void *arg, link_t *link)
{
    node_t *self = arg;
    link_set_relay_ok(link, network_relay_ok(self->network, link_pk(link)));
    store_contact_t c;
    if (store_contact_by_pk(self->store, link_pk(link), &c) == PARLEY_OK) {
        link_set_kept(link, true);
        s_adopt(self, link);
    }
}

static void s_set_online(node_t *self, link_t *link, bool online, const char *why);
static void s_link_free(node_t *self, link_t *link);

//  A link leaves the table (evicted, dropped, forgotten): offline for
//  every class, then its slots freed (again when it is reaped).
static void
s_link_gone(void *arg, link_t *link, const char *why)
{
    node_t *self = arg;
    if (why) {
        s_set_online(self, link, false, why);
    }
    s_link_free(self, link);
}

static void
s_set_online(node_t *self, link_t *link, bool online, const char *why)
{
    core_t *core = &self->core;
    if (!link_set_online(link, online, why, core_now(core))) {
        return;
    }
    char sid[PARLEY_SHORT_ID_STRLEN + 1];
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_short_id(link_pk(link), sid);
    identity_node_id(link_pk(link), id);
    if (online) {
        delivery_link_up(self->delivery, link);
        pex_link_up(self->pex, link);
        replica_link_up(self->replica, link);
    } else {
        replica_link_down(self->replica, link);
    }
    log_write(&core->log, LOG_LEVEL_INFO, "peer %s %s%s%s", sid, online ? "online" : "offline",
              online ? "" : ": ", online ? "" : why);
    core_notify(core, "peer",
                json_pack("{s:s, s:s, s:s, s:s}", "id", id, "short_id", sid, "state",
                          online ? "online" : "offline", "reason", online ? "" : why));
}

//  Stops talking to a peer that broke the rules: BYE, our DEALER closed,
//  its frames dropped and its connections refused (ZAP) for LINK_BAN_MS.
static void
s_ban(void *arg, link_t *link, const char *why)
{
    node_t *self = arg;
    core_t *core = &self->core;
    char sid[PARLEY_SHORT_ID_STRLEN + 1];
    identity_short_id(link_pk(link), sid);
    log_write(&core->log, LOG_LEVEL_WARN, "disconnecting %s for %u s: %s", sid, LINK_BAN_MS / 1000,
              why);
    core->counters[C_BANNED]++;
    size_t len = 0;
    if (frame_encode_bye(1, self->buf, PARLEY_FRAME_MAX, &len) == PARLEY_OK) {
        (void)links_send(self->links, link, self->buf, len); // best effort: it is cut off anyway
    }
    s_set_online(self, link, false, why);
    link_ban(link, why, core_now(core));
}

static void
s_link_free(node_t *self, link_t *link)
{
    delivery_link_free(self->delivery, link);
    pex_link_free(self->pex, link);
    replica_link_free(self->replica, link);
}

/* ---- frames ---- */

//  HELLO over our DEALER, or (route_only) back over the connection the peer
//  opened to our ROUTER: the answer that tells a dialler our capabilities.
static void
s_send_hello(node_t *self, link_t *link, bool route_only)
{
    const char *eps[1] = { self->core.endpoint };
    size_t len = 0;
    uint32_t caps = self->core.cfg.relay ? S_CAP_RELAY : 0;
    if (frame_encode_hello(identity_ed_pk(self->id), caps, S_TAG, eps, 1, self->buf,
                           PARLEY_FRAME_MAX, &len)
        != PARLEY_OK) {
        return;
    }
    if (!route_only) {
        (void)links_send(self->links, link, self->buf, len); // lost: a reconnect says it again
    } else {
        (void)links_send_route(self->links, link, self->buf, len); // lost: caps wait a reconnect
    }
}

static void
s_send_simple(node_t *self, link_t *link, uint8_t type, uint64_t nonce)
{
    size_t len = 0;
    if (frame_encode_ping(type, nonce, self->buf, PARLEY_FRAME_MAX, &len) == PARLEY_OK) {
        (void)links_send(self->links, link, self->buf, len); // liveness repairs a lost one
    }
}

//  Only a verified peer is saved: what a flood of fresh keys sends is never
//  written down, nor redialled at the next start.
static void
s_peer_seen(node_t *self, link_t *link, const char *endpoint)
{
    if (!link_verified(link)) {
        return;
    }
    if (endpoint && !endpoint_valid(endpoint, strlen(endpoint))) {
        endpoint = NULL; // a wildcard is no place to redial
    }
    core_t *core = &self->core;
    int rc = core_txn(core);
    if (rc == PARLEY_OK) {
        rc = store_peer_seen(self->store, link_pk(link), endpoint, core_now(core));
    }
    if (rc != PARLEY_OK) {
        log_write(&core->log, LOG_LEVEL_WARN, "could not record a peer sighting: %s",
                  parley_strerror(rc));
    }
}

//  We have really talked to it: from now on it is saved and kept over
//  peers we have only heard of.
static void
s_verify(node_t *self, link_t *link)
{
    if (link_verified(link)) {
        return;
    }
    link_set_verified(link);
    s_adopt(self, link);
    const char *ep = link_dealer_up(link) ? link_endpoint(link) : link_advertised(link);
    s_peer_seen(self, link, ep[0] ? ep : NULL);
}

//  A frame from a known peer (HELLO already handled).
static void
s_on_frame(node_t *self, link_t *link, const frame_t *f)
{
    link_seen(link, core_now(&self->core));
    s_verify(self, link);
    if (!link_online(link) && f->type != FRAME_BYE) {
        //  Silent for a while (a stall, heavy loss), and talking again on a
        //  connection that survived: it is back.
        s_set_online(self, link, true, "");
    }
    switch (f->type) {
    case FRAME_PREKEY: delivery_on_prekey(self->delivery, link, f); break;
    case FRAME_ENVELOPES: delivery_on_envelopes(self->delivery, link, f); break;
    case FRAME_ACK: delivery_on_ack(self->delivery, link, f); break;
    case FRAME_PING: s_send_simple(self, link, FRAME_PONG, f->nonce); break;
    case FRAME_PONG: break;
    case FRAME_BYE: s_set_online(self, link, false, "said goodbye"); break;
    case FRAME_PEERS: pex_on_peers(self->pex, link, f); break;
    case FRAME_RECONCILE: replica_on_reconcile(self->replica, link, f); break;
    case FRAME_WANT: replica_on_want(self->replica, link, f); break;
    case FRAME_NETKEY: network_on_netkey(self->network, link, f); break;
    default: break;
    }
}

//  A peer bound to a wildcard advertises "tcp://0.0.0.0:PORT": the address
//  its connection came from, with that port, is where it can be dialled.
//  Anything that still is not a dialable endpoint becomes "".
static void
s_dialable(char *ep, size_t cap, const char *peer_addr)
{
    if (endpoint_valid(ep, strlen(ep))) {
        return;
    }
    const char *colon = strrchr(ep, ':');
    char buf[PARLEY_ENDPOINT_MAX + 1] = "";
    if (peer_addr && colon && strncmp(ep, "tcp://0.0.0.0:", 14) == 0) {
        snprintf(buf, sizeof buf, "tcp://%s%s", peer_addr, colon);
    }
    snprintf(ep, cap, "%s", endpoint_valid(buf, strlen(buf)) ? buf : "");
}

static void
s_on_hello(node_t *self, link_t *link, const frame_t *f, const char *peer_addr)
{
    link_set_caps(link, (f->caps & S_CAP_RELAY) != 0);
    link_seen(link, core_now(&self->core));
    //  Tell the dialler ours first, on its own connection (never over our
    //  DEALER, where it would be answered again): nothing we send it on this
    //  connection may reach it before our capabilities.
    s_send_hello(self, link, true);
    char ep[PARLEY_ENDPOINT_MAX + 1] = "";
    if (f->n_endpoints > 0) {
        memcpy(ep, f->endpoints[0], f->endpoint_lens[0]);
        ep[f->endpoint_lens[0]] = '\0';
        s_dialable(ep, sizeof ep, peer_addr);
        link_set_advertised(link, ep);
    }
    s_peer_seen(self, link, ep[0] ? ep : NULL); // verified ones only
    s_set_online(self, link, true, "");
    //  A HELLO means a new connection (a restarted peer, or a reconnect that
    //  may have lost frames in flight): answer on it with our prekey and push
    //  everything it has not acknowledged. It dialled us: no HELLO back needed.
    delivery_reconnected(self->delivery, link);
    replica_link_up(self->replica, link); // as may replicated pushes and a round
    network_link_up(self->network, link);
}

//  Handles one [routing id, frame] from the ROUTER. user is the ZAP User-Id.
static void
s_router_dispatch(node_t *self, const zmq_msg_t *rid, zmq_msg_t *body, const char *user,
                  const char *peer_addr)
{
    core_t *core = &self->core;
    uint8_t x_pk[32];
    frame_t f;
    size_t rid_len = zmq_msg_size(rid);
    const uint8_t *rid_data = zmq_msg_data((zmq_msg_t *)rid);
    if (!user || hex_decode(user, x_pk, 32) != PARLEY_OK || rid_len == 0 || rid_len > LINK_ROUTE_MAX
        || frame_decode(zmq_msg_data(body), zmq_msg_size(body), &f) != PARLEY_OK) {
        core->counters[C_BAD_FRAME]++;
        return;
    }
    link_t *link = links_find_x(self->links, x_pk);
    bool invite = false;
    if (!link && network_admits_x(self->network, x_pk, &invite) && invite) {
        //  A joiner on an invite's key: only the join exchange (network.h).
        network_on_invite_frame(self->network, x_pk, zmq_msg_data((zmq_msg_t *)rid),
                                zmq_msg_size(rid), &f);
        return;
    }
    if (f.type == FRAME_HELLO) {
        uint8_t want_x[32];
        if (identity_ed_to_x(f.ed_pk, want_x) != PARLEY_OK || sodium_memcmp(want_x, x_pk, 32) != 0
            || sodium_memcmp(f.ed_pk, identity_ed_pk(self->id), 32) == 0) {
            core->counters[C_BAD_HELLO]++; // claims a key its CURVE key does not prove
            return;
        }
        bool created = false;
        link = links_get(self->links, f.ed_pk, &created);
        if (!link) {
            return; // link table full: the peer retries its HELLO on reconnect
        }
        link_set_source(link, "inbound");
    } else if (!link || !link_hello(link, rid_data, rid_len)) {
        core->counters[C_NO_HELLO]++; // a connection is read from its HELLO on
        return;
    }
    if (link_banned(link, core_now(core))) {
        return; // banned: its frames are not read
    }
    if (!network_allows(self->network, link_pk(link))) {
        core->counters[C_NOT_MEMBER]++; // removed while its connection lived
        return;
    }
    link_set_route(link, rid_data, rid_len);
    if (f.type == FRAME_HELLO) {
        link_set_hello(link, rid_data, rid_len);
        s_on_hello(self, link, &f, peer_addr);
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
        self->core.counters[C_BAD_FRAME]++;
    } else if (ok) {
        s_router_dispatch(self, &rid, &body, zmq_msg_gets(&body, "User-Id"),
                          zmq_msg_gets(&body, "Peer-Address"));
    }
    zmq_msg_close(&rid);
    zmq_msg_close(&body);
}

static void
s_dealer_recv(node_t *self, link_t *link)
{
    zmq_msg_t body;
    zmq_msg_init(&body);
    if (zmq_msg_recv(&body, link_dealer(link), ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&body);
        return;
    }
    frame_t f;
    if (zmq_msg_more(&body)
        || frame_decode(zmq_msg_data(&body), zmq_msg_size(&body), &f) != PARLEY_OK) {
        self->core.counters[C_BAD_FRAME]++;
        //  Drain the rest of a multipart message so the next read is aligned.
        while (zmq_msg_more(&body)) {
            zmq_msg_close(&body);
            zmq_msg_init(&body);
            if (zmq_msg_recv(&body, link_dealer(link), ZMQ_DONTWAIT) < 0) {
                break;
            }
        }
    } else if (link_banned(link, core_now(&self->core))) {
        // banned: its frames are not read
    } else if (!network_allows(self->network, link_pk(link))) {
        self->core.counters[C_NOT_MEMBER]++;
    } else if (f.type != FRAME_HELLO) {
        //  The pinned CURVE key proves who is on the other end of a DEALER;
        //  a frame on it means its connection is up.
        link_set_dealer_up(link, true);
        s_on_frame(self, link, &f);
    } else if (sodium_memcmp(f.ed_pk, link_pk(link), 32) == 0) {
        //  The answer to our HELLO: its capabilities.
        link_set_caps(link, (f.caps & S_CAP_RELAY) != 0);
        link_seen(link, core_now(&self->core));
        s_verify(self, link);
    }
    zmq_msg_close(&body);
}

static void
s_monitor_recv(node_t *self, link_t *link)
{
    core_t *core = &self->core;
    switch (link_monitor_recv(link)) {
    case LINK_EV_UP:
        s_send_hello(self, link, false);
        s_peer_seen(self, link, link_endpoint(link)); // verified ones: the answer verifies
        s_set_online(self, link, true, "");
        link_seen(link, core_now(core));
        delivery_reconnected(self->delivery, link);
        replica_link_up(self->replica, link); // pushes and a round in flight may be lost
        network_link_up(self->network, link);
        break;
    case LINK_EV_DOWN:
        if (!link_has_route(link)) {
            s_set_online(self, link, false, "disconnected");
        }
        break;
    case LINK_EV_FAILED:
        log_write(&core->log, LOG_LEVEL_DEBUG, "handshake with %s failed", link_endpoint(link));
        break;
    default: break;
    }
}

//  Open mode admits every key but those banned for now; a network only its
//  members (and, for the join exchange, the keys of live invites).
static bool
s_zap_admit(const uint8_t client_x_pk[32], void *arg)
{
    node_t *self = arg;
    bool invite = false;
    if (!network_admits_x(self->network, client_x_pk, &invite)) {
        return false;
    }
    link_t *link = links_find_x(self->links, client_x_pk);
    return !link || !link_banned(link, core_now(&self->core));
}

static void
s_zap_recv(node_t *self)
{
    bool admitted = false;
    if (transport_zap_handle(self->zap, s_zap_admit, self, &admitted) == PARLEY_OK && !admitted) {
        self->core.counters[C_ZAP_DENIED]++;
    }
}

//  One report from the discovery actor (discovery.h).
static void
s_disc_recv(node_t *self)
{
    core_t *core = &self->core;
    zmsg_t *msg = zmsg_recv(discovery_pipe(self->disc));
    char *kind = msg ? zmsg_popstr(msg) : NULL;
    char *a = msg ? zmsg_popstr(msg) : NULL;
    char *b = msg ? zmsg_popstr(msg) : NULL;
    char *c = msg ? zmsg_popstr(msg) : NULL;
    uint8_t pk[32];
    if (kind && streq(kind, "STATUS") && a && b && c) {
        int i = streq(a, "mdns") ? 1 : 0;
        if (!streq(core->disc_state[i], b) || !streq(core->disc_detail[i], c)) {
            log_write(&core->log, LOG_LEVEL_INFO, "discovery %s %s: %s", a, b, c);
        }
        snprintf(core->disc_state[i], sizeof core->disc_state[i], "%s", b);
        snprintf(core->disc_detail[i], sizeof core->disc_detail[i], "%s", c);
    } else if (kind && streq(kind, "NAME") && a && streq(a, "mdns") && b) {
        //  Random in a network (blinded): doctor shows the one in use.
        snprintf(core->mdns_instance, sizeof core->mdns_instance, "%s", b);
    } else if (kind && streq(kind, "SEEN") && a && b && c
               && identity_parse_node_id(a, pk) == PARLEY_OK && endpoint_valid(b, strlen(b))
               && sodium_memcmp(pk, identity_ed_pk(self->id), 32) != 0) {
        bool created = false;
        int src = streq(c, "mdns") ? 1 : 0;
        uint64_t now = core_now(core);
        if (now >= self->disc_since[src] + S_DISC_WINDOW_MS) {
            self->disc_since[src] = now;
            self->disc_new[src] = 0;
        }
        link_t *link = links_find(self->links, pk);
        if (!link && self->disc_new[src] >= (src == 0 ? S_DISC_LOCAL_NEW_MAX : S_DISC_NEW_MAX)) {
            core->counters[C_RECORD_DROPPED]++; // a flood of records: the rest waits a window
        } else if (!link) {
            link = links_get(self->links, pk, &created);
            self->disc_new[src] += created;
        }
        if (link) {
            link_set_source(link, c);
            //  A node that moved (new port after a restart) gets a fresh
            //  DEALER; a connected one is left alone.
            if (link_dealer(link) && !link_dealer_up(link) && !streq(link_endpoint(link), b)) {
                link_undial(link);
            }
            if (!link_dealer(link) && links_dial(self->links, link, b) == PARLEY_OK
                && link_dealer(link)) {
                log_write(&core->log, LOG_LEVEL_DEBUG, "dialling %.8s at %s (%s)", a, b, c);
            }
        }
    }
    zstr_free(&kind);
    zstr_free(&a);
    zstr_free(&b);
    zstr_free(&c);
    zmsg_destroy(&msg);
}

//  One command from an embedding actor's pipe (parley.h).
static void
s_pipe_recv(node_t *self)
{
    char *cmd = zstr_recv(self->pipe);
    if (!cmd || streq(cmd, "$TERM")) {
        self->stopping = 1;
        self->term = true;
    } else if (streq(cmd, "ENDPOINT")) {
        zstr_send(self->pipe, self->core.endpoint);
    } else if (streq(cmd, "ID")) {
        zstr_send(self->pipe, self->core.node_id);
    } else if (streq(cmd, "API")) {
        zstr_send(self->pipe, self->api_path);
    } else if (streq(cmd, "FAULT")) {
        char *where = zstr_recv(self->pipe);
        char *count = zstr_recv(self->pipe);
        char *end_w = NULL, *end_c = NULL;
        long w = where ? strtol(where, &end_w, 10) : 0;
        long c = count ? strtol(count, &end_c, 10) : 0;
        if (end_w && end_c && *end_w == '\0' && *end_c == '\0' && w >= 0 && w <= INT_MAX && c >= 0
            && c <= INT_MAX) {
            node_fault(self, (int)w, (int)c);
        }
        zstr_free(&where);
        zstr_free(&count);
        zstr_send(self->pipe, "OK");
    } else {
        zstr_send(self->pipe, ""); // unknown: an empty answer keeps the caller in step
    }
    zstr_free(&cmd);
}

void
node_fault(node_t *self, int where, int count)
{
    store_fault_set(self->store, (store_fault_t)where, count);
}

/* ---- timers ---- */

static void
s_maintain(node_t *self, uint64_t now)
{
    core_t *core = &self->core;
    bool rotated = false;
    int rc = session_rotate(self->session, now, &rotated);
    if (rc != PARLEY_OK) {
        core_txn_fail(core, rc, "prekey rotation failed");
    } else if (rotated) {
        delivery_prekey_changed(self->delivery);
    }
    pex_renew(self->pex, now);
    //  Wiped secrets must not linger in old WAL frames: checkpoint after the commit.
    bool checkpoint = session_wipe(self->session, now);
    uint64_t step = core->cfg.ratchet_ms / 4;
    step = step < 250 ? 250 : step > 60000 ? 60000 : step;
    self->next_maint = now + step;
    if (checkpoint && store_in_txn(self->store) && !core->txn_failed) {
        //  Committed early; its queued output leaves with this iteration's.
        rc = store_commit(self->store);
        if (rc != PARLEY_OK) {
            core_txn_fail(core, rc, "cannot commit wiped keys");
        } else if (store_checkpoint(self->store) != PARLEY_OK) {
            log_write(&core->log, LOG_LEVEL_DEBUG, "checkpoint deferred (readers active)");
        }
    }
}

//  The grid deadlines are rounded up to: a quarter of the ping period (so a
//  ping is at most that late and liveness keeps its margin), no coarser than
//  the resend period nor S_SLACK_MAX_MS, at least 1 ms.
static uint64_t
s_slack_ms(const node_config_t *cfg)
{
    uint64_t grid = cfg->ping_ms / 4;
    grid = cfg->retry_ms < grid ? cfg->retry_ms : grid;
    grid = grid > S_SLACK_MAX_MS ? S_SLACK_MAX_MS : grid;
    return grid > 0 ? grid : 1;
}

static void
s_liveness(node_t *self, uint64_t now)
{
    core_t *core = &self->core;
    uint64_t ping = core->cfg.ping_ms, lag = s_slack_ms(&core->cfg);
    for (size_t i = 0; i < links_count(self->links); i++) {
        link_t *link = links_at(self->links, i);
        link_check(link);
        if (!link_online(link)) {
            //  Offline, but our DEALER may still hold a live connection (TCP
            //  kept it through a stall): keep pinging on it; any
            //  frame back brings the link online again.
            size_t len = 0;
            if (!link_dealer(link) || link_banned(link, now)) {
                continue;
            }
            uint64_t next = link_last_sent(link) + ping;
            if (now >= next) {
                if (frame_encode_ping(FRAME_PING, now, self->buf, PARLEY_FRAME_MAX, &len)
                    == PARLEY_OK) {
                    (void)link_send_dealer(link, self->buf, len, now); // not greeted yet: later
                }
                next = now + ping;
            }
            core_wake_at(core, next);
            continue;
        }
        if (now > link_last_seen(link) + 3 * ping) {
            link_set_dealer_up(link, false);
            s_set_online(self, link, false, "no answer to pings");
            continue;
        }
        //  Only a quiet link is pinged, and only by the side whose timer
        //  runs out first: the other hears the ping before its own is due,
        //  so a quiet pair exchanges one ping and one pong per period. The
        //  side with the higher key waits one step of the timer grid more:
        //  on a grid shared by both, the two timers would otherwise run out
        //  in one step, and the pings cross (two pings, two pongs).
        uint64_t due = link_last_seen(link) > link_last_sent(link) ? link_last_seen(link)
                                                                   : link_last_sent(link);
        uint64_t wait = ping + (memcmp(identity_ed_pk(self->id), link_pk(link), 32) > 0 ? lag : 0);
        if (now >= due + wait) {
            s_send_simple(self, link, FRAME_PING, now);
            due = now;
        }
        core_wake_at(core, due + wait);
        core_wake_at(core, link_last_seen(link) + 3 * ping + 1);
    }
    delivery_tick(self->delivery, now);
}

/* ---- the link policy (SPEC §11.1) ----
 *
 *  A node keeps a DEALER to: its neighbours on the ring of the keys it
 *  knows an endpoint for (cfg.neighbours of them, half each way), its
 *  neighbours on each channel's ring of members, its contacts and seeds,
 *  relays, the peers it has envelopes pending for, and the peers it
 *  exchanged envelopes with in the last link_idle_ms. Another DEALER closes
 *  once it has been idle that long; the peer's own connection to us, if it
 *  keeps one, stays. So a node's links, descriptors and pings do not grow
 *  with its LAN, and each message still reaches its recipients: DMs over a
 *  link dialled on demand, channel messages along the members' rings. */

typedef struct {
    uint8_t pk[32];
    link_t *link;
} s_ring_t;

static bool
s_in(const uint8_t *keys, size_t n, const uint8_t pk[32])
{
    size_t at = 0;
    return core_key_search(keys, n, 32, pk, &at);
}

static void
s_select(node_t *self, uint64_t now)
{
    core_t *core = &self->core;
    size_t n = links_count(self->links);
    if (core->cfg.neighbours == 0) {
        return; // every link is wanted (links_get)
    }
    if (n == self->select_n && now < self->next_select) {
        core_wake_at(core, self->next_select);
        return;
    }
    self->select_n = n;
    self->next_select = now + S_SELECT_MS;
    core_wake_at(core, self->next_select);
    if (!self->pending) {
        self->pending = malloc((size_t)S_PENDING_MAX * 32);
    }
    s_ring_t *ring = malloc((n + 1) * sizeof *ring);
    size_t *picks = malloc((size_t)(core->cfg.neighbours + 1) * sizeof *picks);
    size_t n_chan = 0;
    uint8_t *chan = channels_neighbours(self->channels, &n_chan);
    uint8_t *pending = self->pending;
    if (!ring || !picks || !pending || !chan) {
        free(ring);
        free(picks);
        free(chan);
        return; // the links stay as they are until the next run
    }
    //  The LAN ring: every key we could dial.
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        link_t *link = links_at(self->links, i);
        if (link_dial_endpoint(link)[0] != '\0' && !link_banned(link, now)) {
            memcpy(ring[m].pk, link_pk(link), 32);
            ring[m++].link = link;
        }
    }
    qsort(ring, m, sizeof *ring, core_key_cmp);
    size_t side = (size_t)(core->cfg.neighbours + 1) / 2;
    size_t n_picks =
        core_ring((const uint8_t *)ring, m, sizeof *ring, identity_ed_pk(self->id), side, picks);
    size_t n_pending = 0;
    if (store_outbox_peers(self->store, S_PENDING_MAX, pending, &n_pending) != PARLEY_OK) {
        n_pending = 0;
    }
    qsort(chan, n_chan, 32, core_key_cmp);
    for (size_t i = 0; i < n; i++) {
        link_t *link = links_at(self->links, i);
        const uint8_t *pk = link_pk(link);
        bool want = link_kept(link) || link_relay(link)
                    || now < link_used_ms(link) + core->cfg.link_idle_ms
                    || s_in(pending, n_pending, pk) || s_in(chan, n_chan, pk);
        link_set_wanted(link, want);
    }
    for (size_t i = 0; i < n_picks; i++) {
        link_set_wanted(ring[picks[i]].link, true);
    }
    //  One connection per pair: a peer with the lower key whose own DEALER to
    //  us is up carries both directions (we answer over our ROUTER), so we
    //  keep none to it; ours goes once its grace is over.
    for (size_t i = 0; i < n; i++) {
        link_t *link = links_at(self->links, i);
        if (link_wanted(link) && links_served(self->links, link)) {
            link_set_wanted(link, false);
        }
    }
    //  Closing what nothing wants (so idle for link_idle_ms): a link dialled a
    //  moment ago gets S_LINK_GRACE_MS, so that the ring a starting swarm
    //  shifts as it learns of more peers does not make links flap.
    uint64_t grace =
        core->cfg.link_idle_ms < S_LINK_GRACE_MS ? core->cfg.link_idle_ms : S_LINK_GRACE_MS;
    for (size_t i = 0; i < n; i++) {
        link_t *link = links_at(self->links, i);
        if (link_wanted(link) || !link_dealer(link) || now < link_opened_ms(link) + grace) {
            continue;
        }
        //  If ours was its only connection, it hears why, and so do we.
        bool only = link_online(link) && !link_has_route(link);
        size_t len = 0;
        if (only && frame_encode_bye(0, self->buf, PARLEY_FRAME_MAX, &len) == PARLEY_OK) {
            (void)links_send_last(self->links, link, self->buf, len);
        }
        link_close(link);
        if (only) {
            s_set_online(self, link, false, "link closed: idle, and not a neighbour");
        }
    }
    free(ring);
    free(picks);
    free(chan);
}

/* ---- a lost database ----
 *
 *  A node whose parley.db is gone but whose identity.key is not (s_open_store
 *  tells) does not know which sequence numbers it used: its first envelopes
 *  would repeat old numbers and every peer would reject them as
 *  equivocations. So, from the start that finds the loss:
 *
 *    found ─► meta lost_ms = now, seq floor = now (ms): every number from
 *       │     here on is above any used before (store_log.c gives the
 *       │     reasoning); a new prekey id above the old ones (session.c)
 *       ▼
 *    recovering ─► peers and relays send back the envelopes of ours they
 *       │          hold (reconciliation of our DM scopes); each is stored,
 *       │          raises its scope's counter and counts as recovered.
 *       │          Messages the user sends wait, QUEUED.
 *       ▼          once a round ended and retry_ms passed with nothing more
 *    recovered ─► meta recovered_ms; the waiting messages are sealed
 *                 (delivery_resume). Without any peer, after 2 × sync_ms.
 *
 *  The floor alone already keeps numbers unique; waiting lets the history
 *  that peers hold come back first and the user see what happened. The
 *  state survives a restart (meta lost_ms without recovered_ms). */

#define S_RECOVER_ROUNDS_WAIT 2u /* sync periods to wait for a round before giving up */

static int
s_recover_begin(node_t *self, bool lost)
{
    core_t *core = &self->core;
    uint64_t lost_ms = 0;
    uint64_t done_ms = 0;
    uint64_t recovered = 0;
    size_t n = 0;
    int rc = store_seq_load(self->store, &n); // outside the transaction: commits on its own
    if (rc == PARLEY_OK && lost) {
        lost_ms = core->started_ms;
        rc = core_txn(core);
        if (rc == PARLEY_OK) {
            rc = store_meta_set(self->store, "lost_ms", lost_ms);
        }
        if (rc == PARLEY_OK) {
            rc = store_meta_set(self->store, "recovered", 0);
        }
        if (rc == PARLEY_OK) {
            rc = store_seq_floor_set(self->store, lost_ms);
        }
        if (rc == PARLEY_OK) {
            log_write(&core->log, LOG_LEVEL_WARN,
                      "the message database was lost (parley.db is new, identity.key is not): "
                      "recovering our sequence numbers and history from peers before sending; "
                      "new numbers start at %" PRIu64,
                      lost_ms);
        }
    } else if (rc == PARLEY_OK) {
        //  Each key is absent until written: lost_ms (never lost),
        //  recovered (none yet), recovered_ms (still recovering).
        const char *keys[3] = { "lost_ms", "recovered", "recovered_ms" };
        uint64_t *vals[3] = { &lost_ms, &recovered, &done_ms };
        for (size_t i = 0; rc == PARLEY_OK && i < 3; i++) {
            rc = store_meta_get(self->store, keys[i], vals[i]);
            if (rc == PARLEY_ERR_NOTFOUND) {
                *vals[i] = 0;
                rc = PARLEY_OK;
            }
        }
        if (rc == PARLEY_OK && lost_ms != 0 && done_ms == 0) {
            log_write(&core->log, LOG_LEVEL_WARN,
                      "still recovering the lost message database: %" PRIu64
                      " envelopes of ours recovered so far",
                      recovered);
        }
    }
    core->lost_ms = lost_ms;
    core->recovered = recovered;
    core->recovering = rc == PARLEY_OK && lost_ms != 0 && done_ms == 0;
    core->recover_quiet = 0;
    return rc;
}

//  Ends recovery once a reconciliation round ended and nothing of ours came
//  back for retry_ms (delivery.c moves recover_quiet on), or when no round
//  could run at all for S_RECOVER_ROUNDS_WAIT sync periods.
static void
s_recover_step(node_t *self, uint64_t now)
{
    core_t *core = &self->core;
    if (!core->recovering) {
        return;
    }
    core_wake_at(core, now + 100); // rounds and their quiet end are watched closely
    bool ended = replica_rounds_ended(self->replica) > 0;
    if (ended && core->recover_quiet == 0) {
        core->recover_quiet = now + core->cfg.retry_ms;
    }
    bool quiet = core->recover_quiet != 0 && now >= core->recover_quiet;
    bool alone = !ended && now >= core->started_ms + S_RECOVER_ROUNDS_WAIT * core->cfg.sync_ms;
    if (!quiet && !alone) {
        return;
    }
    int rc = core_txn(core);
    if (rc == PARLEY_OK) {
        rc = store_meta_set(self->store, "recovered_ms", now);
    }
    if (rc != PARLEY_OK) {
        core_txn_fail(core, rc, "cannot record the end of recovery");
        return;
    }
    core->recovering = false;
    if (alone) {
        log_write(&core->log, LOG_LEVEL_WARN,
                  "recovery of the lost database ends without a peer: nothing came back; "
                  "sending resumes with sequence numbers above %" PRIu64,
                  core->lost_ms);
    } else {
        log_write(&core->log, LOG_LEVEL_WARN,
                  "recovery of the lost database done: %" PRIu64
                  " envelopes of ours came back from peers; sending resumes with sequence "
                  "numbers above %" PRIu64 " (messages sealed to prekeys lost with the "
                  "database cannot be opened)",
                  core->recovered, core->lost_ms);
    }
    delivery_resume(self->delivery);
}

/* ---- commit ---- */

//  Real elapsed time, not core's (which a test may move by days, and the
//  wall clock may jump): for a client's idleness, and a sync put off.
static uint64_t
s_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

//  Hands the notifications in notes to the subscribers, and empties it.
static void
s_broadcast(node_t *self, json_t *notes)
{
    for (size_t i = 0; i < json_array_size(notes); i++) {
        api_server_broadcast(self->server, json_array_get(notes, i));
    }
    json_array_clear(notes);
}

//  Whether what the commits wrote may wait for its sync (SPEC §11, "A sync
//  put off"): when the iteration promises nothing but ACKs, which wait for
//  it — no step wrote through core_txn, no reply or notification of ours
//  is queued — for S_SYNC_DEFER_MS at most, and while the ACKs fit.
static bool
s_sync_later(node_t *self, uint64_t now)
{
    core_t *core = &self->core;
    //  A transaction that reserved sequence numbers of its own (receipts to
    //  a new peer, sealed in a relaxed one) is synced before they leave.
    if (core->sync_wanted || core->checkpoint || core->n_replies > 0
        || json_array_size(core->notes) > 0 || store_seq_fresh(self->store)
        || !delivery_may_hold(self->delivery)) {
        return false;
    }
    if (core->unsynced_since == 0) {
        core->unsynced_since = now > 0 ? now : 1;
    }
    return now < core->unsynced_since + S_SYNC_DEFER_MS;
}

//  Syncs what the commits wrote. PARLEY_OK when it is durable.
static int
s_sync(node_t *self)
{
    core_t *core = &self->core;
    core->syncs++;
    core->unsynced_since = 0;
    int rc = store_sync(self->store);
    if (rc != PARLEY_OK) {
        //  Nothing is promised: no reply says stored, no ACK leaves.
        log_write(&core->log, LOG_LEVEL_ERROR,
                  "the disk failed to sync a commit; the database takes no more "
                  "writes: restart the node once the disk is sound");
        core->sync_failed = true;
    }
    return rc;
}

//  Commits the iteration, or rolls it back when a class asked for it or the
//  commit fails; then flushes what the queue still holds (after a rollback:
//  only the error replies). PARLEY_OK when the iteration is durable, or
//  its sync is put off and only ACKs wait for it.
static int
s_commit(node_t *self)
{
    core_t *core = &self->core;
    int rc = PARLEY_OK;
    uint64_t now = s_mono_ms();
    bool txn = store_in_txn(self->store);
    if (txn) {
        //  Our own DMs may leave between the commit's write and its sync
        //  (SPEC §11, "Push before the sync") when their seqs were reserved
        //  durably before this transaction.
        bool early = store_txn_split(self->store) && !store_seq_fresh(self->store);
        rc = core->txn_failed ? PARLEY_ERR_IO
             : early          ? store_commit_early(self->store)
                              : store_commit(self->store);
        if (rc == PARLEY_OK && early && store_unsynced(self->store)) {
            delivery_push_early(self->delivery);
            //  What peers sent us is shown now: a power loss can undo it, not
            //  lose it; its author gives it back (SPEC §11, "Notify before
            //  the sync").
            s_broadcast(self, core->received);
            api_server_flush(self->server);
        }
        if (rc == PARLEY_ERR_CORRUPT && !core->txn_failed) {
            core->txn_rc = rc; // core_discard tells the callers
        }
        if (rc != PARLEY_OK) {
            log_write(&core->log, LOG_LEVEL_WARN, "%s; rolling back: nothing of it is promised",
                      core->txn_failed ? "a step failed" : "commit failed");
            //  A failed COMMIT may have rolled back already (SQLite does
            //  after an I/O error or a full disk).
            if (store_in_txn(self->store) && store_rollback(self->store) != PARLEY_OK) {
                log_write(&core->log, LOG_LEVEL_ERROR, "rollback failed too");
            }
            core->counters[C_ROLLED_BACK]++;
        }
    } else if (core->txn_failed) {
        rc = PARLEY_ERR_IO; // failed before it wrote: nothing to undo, nothing to promise
        core->counters[C_ROLLED_BACK]++;
    }
    if (rc == PARLEY_OK && store_unsynced(self->store)) {
        if (s_sync_later(self, now)) {
            core->deferred += txn; // the loop wakes for it (s_loop)
        } else if ((rc = s_sync(self)) != PARLEY_OK) {
            core->counters[C_ROLLED_BACK]++;
        }
    }
    if (!store_unsynced(self->store)) {
        core->unsynced_since = 0; // synced, or a fully synchronous commit synced it
    }
    if (rc != PARLEY_OK && core->txn_rc == PARLEY_ERR_CORRUPT && !core->damage_told) {
        //  Once: every later iteration that touches the damage fails the same way.
        log_write(&core->log, LOG_LEVEL_ERROR, "%s", CORE_DAMAGED_HINT);
        core->damage_told = true;
    }
    if (rc != PARLEY_OK) {
        core->checkpoint = false; // nothing was deleted after all
        core_discard(core);
        session_rollback(self->session); // a prekey made in it is gone: reload
        replica_rollback(self->replica);
        delivery_rollback(self->delivery);
        network_rollback(self->network);
        channels_rollback(self->channels);
    } else {
        //  Expired content is zeroed in its pages (secure_delete), but older
        //  images of those pages stay in the WAL until a checkpoint.
        if (core->checkpoint) {
            int crc = store_checkpoint(self->store);
            if (crc == PARLEY_ERR_BUSY) {
                log_write(&core->log, LOG_LEVEL_DEBUG, "checkpoint deferred (readers active)");
            } else {
                core->checkpoint = false;
                if (crc != PARLEY_OK) {
                    log_write(&core->log, LOG_LEVEL_WARN, "checkpoint failed: %s",
                              parley_strerror(crc));
                }
            }
        }
        //  Outside the transaction: the next blocks of sequence numbers,
        //  committed before any number of them is used.
        size_t refilled = 0;
        int src = store_seq_refill(self->store, &refilled);
        if (src != PARLEY_OK) {
            log_write(&core->log, LOG_LEVEL_WARN, "cannot reserve sequence numbers ahead: %s",
                      parley_strerror(src));
        }
        delivery_after_commit(self->delivery);
        pex_flush(self->pex);
        s_broadcast(self, core->received);
        s_broadcast(self, core->notes);
    }
    for (size_t i = 0; i < core->n_replies; i++) {
        api_server_send(self->server, core->replies[i].client, core->replies[i].reply);
    }
    core_clear(core);
    api_server_flush(self->server);
    return rc;
}

/* ---- set-up ---- */

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

//  *created tells whether this start made the identity (a new node).
static int
s_open_identity(node_t *self, const node_config_t *cfg, bool *created, int *err, char *errmsg,
                size_t cap)
{
    *created = false;
    const char *home = self->core.home;
    int rc = home_identity_load(home, cfg->passphrase, cfg->pass_len, &self->id);
    if (rc == PARLEY_ERR_NOTFOUND) {
        self->id = identity_new();
        if (!self->id) {
            return s_fail(PARLEY_ERR_NOMEM, err, errmsg, cap, "%s", "out of memory");
        }
        rc = home_identity_create(home, self->id, NULL, 0);
        if (rc != PARLEY_OK) {
            return s_fail(rc, err, errmsg, cap, "cannot create %s/identity.key", home);
        }
        fprintf(stderr, "parleyd: created a new identity in %s/identity.key\n", home);
        *created = true;
        return PARLEY_OK;
    }
    if (rc == PARLEY_ERR_STATE) {
        return s_fail(rc, err, errmsg, cap,
                      "%s/identity.key is sealed with a passphrase: "
                      "start with --passphrase-file FILE",
                      home);
    }
    if (rc == PARLEY_ERR_AUTH) {
        return s_fail(rc, err, errmsg, cap, "%s", "bad passphrase for identity.key");
    }
    if (rc != PARLEY_OK) {
        return s_fail(rc, err, errmsg, cap, "cannot read %s/identity.key (damaged?)", home);
    }
    return PARLEY_OK;
}

//  Whether the database at path holds nothing: a zero-length file with no
//  WAL beside it that holds frames (a node killed before its first
//  checkpoint has an empty parley.db and everything in parley.db-wal).
//  A missing file is not "empty" here: `parley init` makes identity.key
//  alone, and the first start creates the database.
static bool
s_db_is_empty(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size != 0) {
        return false;
    }
    char wal[HOME_PATH_MAX + 8];
    int n = snprintf(wal, sizeof wal, "%s-wal", path);
    if (n < 0 || (size_t)n >= sizeof wal) {
        return false; // cannot look: store_open decides
    }
    return lstat(wal, &sb) != 0 || sb.st_size == 0;
}

//  Opens parley.db. Refused, with what to do: a damaged file (quick_check,
//  store/store.c "Damage"), and an empty one when the identity was not
//  made by this start, for then this node had a database and lost it (a
//  truncation, a bad copy): starting would silently forget every message,
//  contact and session. cfg->new_db (parleyd --new-db) says to start anyway
//  (and then recover from peers, as for a missing file).
//  *lost: the identity was not made by this start, yet the database is
//  new (missing, or empty and --new-db): the node's log is gone (see "A
//  lost database" above s_recover_begin). `parley init` makes both files,
//  so a first start after it finds its database.
static int
s_open_store(node_t *self, const node_config_t *cfg, bool id_created, bool *lost, int *err,
             char *errmsg, size_t cap)
{
    const char *home = self->core.home;
    char path[HOME_PATH_MAX];
    char why[256];
    struct stat sb;
    int rc = home_path(home, "parley.db", path, sizeof path);
    *lost = rc == PARLEY_OK && !id_created
            && ((lstat(path, &sb) != 0 && errno == ENOENT) || s_db_is_empty(path));
    if (rc == PARLEY_OK && !id_created && !cfg->new_db && s_db_is_empty(path)) {
        return s_fail(PARLEY_ERR_CORRUPT, err, errmsg, cap,
                      "%s/parley.db is empty, but %s/identity.key exists: this node's database "
                      "(history, contacts, sessions) is lost. Put back a copy if you have one; "
                      "to start with an empty database, run parleyd --new-db",
                      home, home);
    }
    if (rc == PARLEY_OK) {
        rc = store_open_why(path, &self->store, why, sizeof why);
    }
    if (rc == PARLEY_ERR_CORRUPT) {
        return s_fail(rc, err, errmsg, cap,
                      "%s/parley.db is damaged (%s): stop, keep a copy of it, "
                      "then run `parley --home %s recover`",
                      home, why[0] ? why : "database disk image is malformed", home);
    }
    if (rc == PARLEY_ERR_UNSUPPORTED) {
        return s_fail(rc, err, errmsg, cap,
                      "%s/parley.db comes from a newer Parley; upgrade parleyd", home);
    }
    if (rc != PARLEY_OK) {
        return s_fail(rc, err, errmsg, cap, "cannot open the database %s/parley.db: %s", home,
                      parley_strerror(rc));
    }
    return PARLEY_OK;
}

//  The classes, bottom up; each gets what lies below it.
static int
s_open_classes(node_t *self, int *err, char *errmsg, size_t cap)
{
    core_t *core = &self->core;
    core->id = self->id;
    core->store = self->store;
    core->ban = s_ban;
    core->ban_arg = self;
    int crc = store_checkpointer_start(self->store);
    if (crc != PARLEY_OK) {
        log_write(&core->log, LOG_LEVEL_WARN, "no background checkpoints (%s): commits make them",
                  parley_strerror(crc));
    }
    self->ctx = zmq_ctx_new();
    self->links = self->ctx ? links_new(core, self->ctx, s_link_made, s_link_gone, self) : NULL;
    self->session = self->links ? session_new(core, self->links) : NULL;
    if (!self->session) {
        return s_fail(PARLEY_ERR_NOMEM, err, errmsg, cap, "%s", "out of resources");
    }
    int rc = PARLEY_OK;
    self->replica = replica_new(core, self->links, self->session, &rc);
    if (!self->replica) {
        return s_fail(rc, err, errmsg, cap, "cannot read the scopes in %s/parley.db", core->home);
    }
    self->network = network_new(core, self->links, self->replica, s_network_changed, self, &rc);
    if (!self->network) {
        return s_fail(rc, err, errmsg, cap, "cannot read the network in %s/parley.db", core->home);
    }
    self->channels =
        channels_new(core, self->links, self->replica, self->session, self->network, &rc);
    if (!self->channels) {
        return s_fail(rc, err, errmsg, cap, "cannot read the channels in %s/parley.db", core->home);
    }
    replica_set_party(self->replica, s_channel_party, self->channels);
    links_set_allow(self->links, s_link_allowed);
    self->delivery = delivery_new(core, self->links, self->session, self->replica, self->network,
                                  self->channels);
    if (!self->delivery) {
        return s_fail(PARLEY_ERR_NOMEM, err, errmsg, cap, "%s", "out of memory");
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
    bool created = false;
    link_t *link = links_get(self->links, pk, &created);
    if (!link) {
        return PARLEY_ERR_NOMEM;
    }
    link_set_source(link, "seed");
    link_set_kept(link, true);
    s_adopt(self, link);
    return links_dial(self->links, link, endpoint);
}

static int
s_open_network(node_t *self, const node_config_t *cfg, int *err, char *errmsg, size_t cap)
{
    core_t *core = &self->core;
    int rc = transport_zap_new(self->ctx, &self->zap);
    if (rc != PARLEY_OK) {
        return s_fail(rc, err, errmsg, cap, "%s", "cannot start the ZAP handler");
    }
    const char *listen = cfg->listen ? cfg->listen : "tcp://0.0.0.0:*";
    transport_opts_t opts;
    transport_opts_default(&opts);
    rc = transport_server_new(self->ctx, &opts, identity_x_sk(self->id), listen, &self->router,
                              core->endpoint, sizeof core->endpoint);
    if (rc != PARLEY_OK) {
        return s_fail(rc, err, errmsg, cap, "cannot listen on %s (in use, or not tcp://ADDR:PORT)",
                      listen);
    }
    links_set_router(self->links, self->router);
    network_set_router(self->network, self->ctx, self->router);
    self->pex = pex_new(core, self->links, core->endpoint);
    if (!self->pex) {
        return s_fail(PARLEY_ERR_NOMEM, err, errmsg, cap, "%s", "out of memory");
    }
    //  Seeds from the command line, then from HOME/config.json.
    config_t *conf = calloc(1, sizeof *conf);
    char why[300] = "";
    if (!conf) {
        return s_fail(PARLEY_ERR_NOMEM, err, errmsg, cap, "%s", "out of memory");
    }
    rc = config_load(core->home, conf, why, sizeof why);
    if (rc != PARLEY_OK) {
        free(conf);
        return s_fail(rc, err, errmsg, cap, "bad config file %s", why);
    }
    size_t total = cfg->n_seeds + conf->n_seeds;
    for (size_t i = 0; rc == PARLEY_OK && i < total; i++) {
        const char *seed = i < cfg->n_seeds ? cfg->seeds[i] : conf->seeds[i - cfg->n_seeds];
        rc = s_dial_seed(self, seed);
        if (rc != PARLEY_OK) {
            s_fail(rc, err, errmsg, cap, "bad seed '%s': want tcp://HOST:PORT#NODEID", seed);
        }
    }
    free(conf);
    return rc;
}

//  Peers we know from earlier runs (verified ones: only those are saved)
//  get a link, the S_STORED_MAX seen last, and a restarted node redials the
//  ones it had an endpoint for: LINK_DIAL_MAX at a time, the rest queued.
static void
s_load_peers(node_t *self)
{
    store_peer_t *peers = NULL;
    size_t n = 0;
    if (store_peer_recent(self->store, S_STORED_MAX, &peers, &n) != PARLEY_OK) {
        log_write(&self->core.log, LOG_LEVEL_WARN,
                  "cannot read the known peers; discovery finds them");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        bool created = false;
        link_t *link = links_get(self->links, peers[i].pk, &created);
        if (!link) {
            continue;
        }
        link_set_source(link, "stored");
        link_set_verified(link);
        s_adopt(self, link);
        //  An endpoint we once reached is worth a dial at once; a wildcard
        //  one (a peer listening on all interfaces told us so) is not.
        const char *ep = peers[i].endpoint;
        if (endpoint_valid(ep, strlen(ep)) && links_dial(self->links, link, ep) != PARLEY_OK) {
            log_write(&self->core.log, LOG_LEVEL_DEBUG, "cannot redial a stored endpoint %s", ep);
        }
    }
    free(peers);
}

static void
s_disc_log(void *arg, const char *line)
{
    node_t *self = arg;
    log_write(&self->core.log, LOG_LEVEL_INFO, "%s", line);
}

static int
s_open_discovery(node_t *self, const node_config_t *cfg, int *err, char *errmsg, size_t cap)
{
    core_t *core = &self->core;
    if (cfg->no_mdns && cfg->no_local) {
        return PARLEY_OK;
    }
    zsys_handler_set(NULL); // the embedder owns SIGINT/SIGTERM, not CZMQ
    discovery_config_t dc = { core->node_id,  endpoint_port(core->endpoint, strlen(core->endpoint)),
                              S_TAG,          !cfg->no_mdns,
                              !cfg->no_local, cfg->runtime_dir,
                              s_disc_log,     self };
    if (dc.port == 0) {
        //  Bound to a wildcard: the port is still in the endpoint, after the colon.
        const char *colon = strrchr(core->endpoint, ':');
        dc.port = colon ? (uint16_t)strtoul(colon + 1, NULL, 10) : 0;
    }
    //  In a network, mDNS announces only what members can tell apart.
    uint8_t keys[STORE_NETKEYS_MAX][32];
    dc.n_keys = network_keys(self->network, keys, STORE_NETKEYS_MAX);
    dc.keys = (const uint8_t(*)[32])keys;
    dc.hush = dc.n_keys == 0 && network_quiet(self->network);
    self->disc = discovery_new(&dc);
    sodium_memzero(keys, sizeof keys);
    if (!self->disc) {
        return s_fail(PARLEY_ERR_IO, err, errmsg, cap, "%s", "cannot start discovery");
    }
    return PARLEY_OK;
}

static void
s_on_api_line(void *arg, uint64_t client, const char *line, size_t len)
{
    node_t *self = arg;
    api_handle(self->api, client, line, len);
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
    self->lock_fd = -1;
    self->wake[0] = self->wake[1] = -1;
    int rc = core_init(&self->core, cfg);
    self->buf = malloc(PARLEY_FRAME_MAX);
    if (rc != PARLEY_OK || !self->buf || pipe2(self->wake, O_CLOEXEC | O_NONBLOCK)) {
        s_fail(PARLEY_ERR_NOMEM, err, errmsg, cap, "%s", "out of resources");
        node_destroy(&self);
        return NULL;
    }
    core_t *core = &self->core;
    if (cfg->quiet) {
        core->log.level = LOG_LEVEL_WARN;
    }
    long pid = 0;
    rc = home_ensure(core->home);
    if (rc != PARLEY_OK) {
        s_fail(rc, err, errmsg, cap, "cannot create the home directory %s", core->home);
        node_destroy(&self);
        return NULL;
    }
    //  Strict modes before anything in the home is read or trusted: a home
    //  or key others can change is refused, never used (node/home.h).
    char why[3 * HOME_PATH_MAX];
    rc = home_check(core->home, why, sizeof why);
    if (rc != PARLEY_OK) {
        s_fail(rc, err, errmsg, cap, "%s", why);
        node_destroy(&self);
        return NULL;
    }
    rc = home_lock(core->home, &self->lock_fd, &pid);
    if (rc == PARLEY_ERR_BUSY) {
        *err = rc;
        snprintf(errmsg, cap, "another parleyd (pid %ld) is already running on %s", pid,
                 core->home);
        node_destroy(&self);
        return NULL;
    }
    if (rc != PARLEY_OK) {
        s_fail(rc, err, errmsg, cap, "cannot lock %s/parleyd.lock", core->home);
        node_destroy(&self);
        return NULL;
    }
    bool id_created = false;
    bool lost = false;
    if (s_open_identity(self, cfg, &id_created, err, errmsg, cap) != PARLEY_OK
        || s_open_store(self, cfg, id_created, &lost, err, errmsg, cap) != PARLEY_OK) {
        node_destroy(&self);
        return NULL;
    }
    identity_node_id(identity_ed_pk(self->id), core->node_id);
    log_init(&core->log, core->log.level, core->node_id);
    if (s_open_classes(self, err, errmsg, cap) != PARLEY_OK
        || s_open_network(self, cfg, err, errmsg, cap) != PARLEY_OK
        || s_open_discovery(self, cfg, err, errmsg, cap) != PARLEY_OK) {
        node_destroy(&self);
        return NULL;
    }
    s_load_peers(self);
    rc = home_path(core->home, "api.sock", self->api_path, sizeof self->api_path);
    if (rc == PARLEY_OK) {
        rc = api_server_new(self->api_path, s_on_api_line, self, &self->server);
    }
    self->api = rc == PARLEY_OK ? api_new(core, self->links, self->delivery, self->replica,
                                          self->network, self->channels, self->server)
                                : NULL;
    if (!self->api) {
        s_fail(rc ? rc : PARLEY_ERR_NOMEM, err, errmsg, cap, "cannot create the API socket %s",
               self->api_path);
        node_destroy(&self);
        return NULL;
    }
    core->started_ms = core_now(core);
    bool rotated = false;
    rc = s_recover_begin(self, lost);
    if (rc == PARLEY_OK) {
        rc = core_txn(core);
    }
    if (rc == PARLEY_OK) {
        rc = session_rotate(self->session, core->started_ms, &rotated); // makes the first one
    }
    if (rc != PARLEY_OK || s_commit(self) != PARLEY_OK) {
        s_fail(PARLEY_ERR_IO, err, errmsg, cap, "%s", "cannot write the database");
        node_destroy(&self);
        return NULL;
    }
    return self;
}

const char *
node_endpoint(const node_t *self)
{
    return self->core.endpoint;
}

const char *
node_id(const node_t *self)
{
    return self->core.node_id;
}

const char *
node_api_path(const node_t *self)
{
    return self->api_path;
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
    for (size_t i = 0; i < links_count(self->links); i++) {
        link_t *link = links_at(self->links, i);
        if (link_online(link)) {
            (void)links_send_last(self->links, link, self->buf, len); // best effort: we are leaving
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
    api_destroy(&self->api);
    api_server_destroy(&self->server);
    discovery_destroy(&self->disc);
    if (self->links) {
        links_reap(self->links); // while the classes can still free their slots
    }
    for (size_t i = 0; self->links && i < links_count(self->links); i++) {
        s_link_free(self, links_at(self->links, i));
    }
    delivery_destroy(&self->delivery);
    channels_destroy(&self->channels);
    network_destroy(&self->network);
    replica_destroy(&self->replica);
    pex_destroy(&self->pex);
    session_destroy(&self->session);
    links_destroy(&self->links);
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
    core_fini(&self->core);
    free(self->buf);
    free(self->pending);
    free(self);
    *self_p = NULL;
}

/* ---- the loop ---- */

//  A poll item on a ZeroMQ socket's ZMQ_FD, not on the socket: zmq_poll
//  on a socket asks it for its events before and after polling, two
//  system calls per socket per wake; on the descriptor, one poll() serves
//  every socket. The descriptor signals a change in the socket's commands
//  only, so the loop reads a socket whose descriptor fired or that is
//  stirred (link.h), for as long as it is readable. NULL: a never-ready slot.
static zmq_pollitem_t
s_item(void *sock)
{
    zmq_pollitem_t it = { NULL, -1, 0, 0 };
    int fd = -1;
    size_t len = sizeof fd;
    if (sock && zmq_getsockopt(sock, ZMQ_FD, &fd, &len) == 0) {
        it.fd = fd;
        it.events = ZMQ_POLLIN;
    }
    return it;
}

//  Reads up to max messages from a socket while it has input.
static bool
s_readable(void *sock)
{
    int events = 0;
    size_t elen = sizeof events;
    return zmq_getsockopt(sock, ZMQ_EVENTS, &events, &elen) == 0 && (events & ZMQ_POLLIN);
}

static int
s_loop(node_t *self)
{
    int status = PARLEY_OK;
    zmq_pollitem_t *items = NULL;
    link_t **polled = NULL;   // the links as polled: one removed meanwhile stays valid until reaped
    unsigned *stirred = NULL; // LINK_STIR_* of each polled link
    size_t cap = 0, polled_cap = 0;
    while (!self->stopping) {
        size_t n_links = links_count(self->links);
        size_t n_api = api_server_poll_count(self->server);
        size_t n = S_ITEMS_LINKS + 2 * n_links + n_api;
        if (n > cap) {
            zmq_pollitem_t *grown = realloc(items, n * sizeof *items);
            if (!grown) {
                status = PARLEY_ERR_NOMEM;
                break;
            }
            items = grown;
            cap = n;
        }
        if (n_links > polled_cap) {
            link_t **grown = realloc(polled, n_links * sizeof *grown);
            unsigned *grown_s = grown ? realloc(stirred, n_links * sizeof *grown_s) : NULL;
            if (grown) {
                polled = grown;
            }
            if (!grown_s) {
                status = PARLEY_ERR_NOMEM;
                break;
            }
            stirred = grown_s;
            polled_cap = n_links;
        }
        //  Until the earliest deadline the last iteration's ticks reported,
        //  rounded up to the slack grid: the timers of many links (pings,
        //  rounds, dials) then come due together, one wake per grid step at
        //  most, not one each.
        uint64_t t0 = core_now(&self->core);
        uint64_t at = self->core.wake_at;
        uint64_t grid = s_slack_ms(&self->core.cfg);
        at = at > t0 && at < UINT64_MAX - grid ? (at + grid - 1) / grid * grid : at;
        long timeout = at <= t0 ? 0 : at - t0 >= S_WAKE_MAX_MS ? S_WAKE_MAX_MS : (long)(at - t0);
        if (self->core.unsynced_since != 0) {
            //  A sync put off is not rounded to the grid: ACKs wait for it.
            uint64_t due = self->core.unsynced_since + S_SYNC_DEFER_MS, mono = s_mono_ms();
            long left = due <= mono ? 0 : (long)(due - mono);
            timeout = left < timeout ? left : timeout;
        }
        if (delivery_busy(self->delivery)) {
            timeout = 0;
        } else if (replica_backlog(self->replica) && timeout > 2) {
            timeout = 2;
        }
        memset(items, 0, n * sizeof *items);
        //  The node's own sockets are few, and sent on in most iterations:
        //  always looked at (their revents are set below). Slot 2 is the
        //  wake pipe, a plain descriptor. Before sleeping, a socket whose
        //  signal may have been consumed (sent on, or read with input left)
        //  is asked for its input: if it has some, the poll does not wait,
        //  and it is read below.
        void *own[S_ITEMS_LINKS] = { self->router, self->zap, NULL,
                                     self->disc ? discovery_socket(self->disc) : NULL,
                                     self->pipe ? zsock_resolve(self->pipe) : NULL };
        for (size_t i = 0; i < NETWORK_JOIN_SOCKETS; i++) {
            own[S_ITEMS_JOIN + i] = network_join_socket(self->network, i);
        }
        bool own_input = false;
        for (size_t i = 0; i < S_ITEMS_LINKS; i++) {
            items[i] = s_item(own[i]);
            own_input = own_input || (own[i] && s_readable(own[i]));
        }
        items[2] = (zmq_pollitem_t){ NULL, self->wake[0], ZMQ_POLLIN, 0 };
        for (size_t i = 0; i < n_links; i++) {
            link_t *link = links_at(self->links, i);
            polled[i] = link;
            stirred[i] = link_stirred(link);
            if ((stirred[i] & LINK_STIR_DEALER)
                && !(link_dealer(link) && s_readable(link_dealer(link)))) {
                stirred[i] &= ~LINK_STIR_DEALER;
            }
            if ((stirred[i] & LINK_STIR_MONITOR)
                && !(link_monitor(link) && s_readable(link_monitor(link)))) {
                stirred[i] &= ~LINK_STIR_MONITOR;
            }
            items[S_ITEMS_LINKS + 2 * i] = s_item(link_dealer(link));
            items[S_ITEMS_LINKS + 2 * i + 1] = s_item(link_monitor(link));
        }
        for (size_t i = 0; i < n_links && !own_input; i++) {
            own_input = stirred[i] != 0;
        }
        if (own_input) {
            timeout = 0;
        }
        zmq_pollitem_t *api_items = items + S_ITEMS_LINKS + 2 * n_links;
        api_server_poll_fill(self->server, api_items);
        if (zmq_poll(items, (int)n, timeout) < 0 && zmq_errno() != EINTR) {
            status = PARLEY_ERR_IO;
            break;
        }
        for (size_t i = 0; i < S_ITEMS_LINKS; i++) {
            if (i != 2 && items[i].fd >= 0) {
                items[i].revents |= ZMQ_POLLIN; // the node's own sockets: always looked at
            }
        }
        for (size_t i = 0; i < n_links; i++) {
            if (stirred[i] & LINK_STIR_DEALER) {
                items[S_ITEMS_LINKS + 2 * i].revents |= ZMQ_POLLIN;
            }
            if (stirred[i] & LINK_STIR_MONITOR) {
                items[S_ITEMS_LINKS + 2 * i + 1].revents |= ZMQ_POLLIN;
            }
        }
        if (items[2].revents & ZMQ_POLLIN) {
            char drain[64];
            while (read(self->wake[0], drain, sizeof drain) > 0) {
            }
        }
        if ((items[4].revents & ZMQ_POLLIN) && s_readable(zsock_resolve(self->pipe))) {
            s_pipe_recv(self);
        }
        uint64_t read_end = s_mono_ms() + S_READ_BUDGET_MS;
        for (int k = 0; k < S_BATCH_READS && (items[1].revents & ZMQ_POLLIN); k++) {
            if (!s_readable(self->zap)) {
                break;
            }
            s_zap_recv(self);
        }
        for (int k = 0; k < S_BATCH_READS && (items[0].revents & ZMQ_POLLIN)
                        && (k == 0 || s_mono_ms() < read_end);
             k++) {
            if (!s_readable(self->router)) {
                break;
            }
            s_router_recv(self);
        }
        for (size_t i = 0; i < n_links; i++) {
            link_t *link = polled[i];
            if (items[S_ITEMS_LINKS + 2 * i + 1].revents & ZMQ_POLLIN) {
                int k = 0;
                while (k < 16 && link_monitor(link) && s_readable(link_monitor(link))) {
                    s_monitor_recv(self, link);
                    k++;
                }
                if (k == 16) {
                    link_stir(link, LINK_STIR_MONITOR); // more next time
                }
            }
            if (items[S_ITEMS_LINKS + 2 * i].revents & ZMQ_POLLIN) {
                int k = 0;
                while (k < S_BATCH_READS && (k == 0 || s_mono_ms() < read_end) && link_dealer(link)
                       && s_readable(link_dealer(link))) {
                    s_dealer_recv(self, link);
                    k++;
                }
                if (k > 0 && link_dealer(link) && (k == S_BATCH_READS || s_mono_ms() >= read_end)) {
                    link_stir(link, LINK_STIR_DEALER); // the budget ran out first
                }
            }
        }
        for (size_t i = 0; i < NETWORK_JOIN_SOCKETS; i++) {
            for (int k = 0; k < 16 && (items[S_ITEMS_JOIN + i].revents & ZMQ_POLLIN); k++) {
                void *js = network_join_socket(self->network, i); // closed by a frame read
                if (!js || !s_readable(js)) {
                    break;
                }
                network_join_recv(self->network, i);
            }
        }
        api_server_poll_handle(self->server, api_items);
        //  After the links: a report may close or add DEALERs polled above.
        for (int k = 0; k < S_BATCH_READS && (items[3].revents & ZMQ_POLLIN); k++) {
            if (!s_readable(discovery_socket(self->disc))) {
                break;
            }
            s_disc_recv(self);
        }
        api_server_tick(self->server, s_mono_ms());
        uint64_t now = core_now(&self->core);
        self->core.wake_at = UINT64_MAX; // the ticks below report their deadlines
        if (now >= self->next_maint) {
            s_maintain(self, now);
        }
        core_wake_at(&self->core, self->next_maint);
        s_liveness(self, now);
        s_recover_step(self, now);
        s_select(self, now);
        links_tick(self->links, now);
        replica_tick(self->replica, now);
        network_tick(self->network, now);
        channels_tick(self->channels, now);
        delivery_before_commit(self->delivery); // last: it may begin a relaxed transaction
        int crc = s_commit(self);
        links_reap(self->links); // nothing queued names a removed link any more
        if (crc != PARLEY_OK) {
            continue; // queued output was dropped; peers and clients retry
        }
        replica_pump(self->replica);
        network_after_commit(self->network);
        channels_after_commit(self->channels);
        s_evict(self);
    }
    free(items);
    free(polled);
    free(stirred);
    s_say_bye(self);
    self->core.sync_wanted = true; // nothing waits past the end
    if (s_commit(self) != PARLEY_OK) {
        status = PARLEY_ERR_IO;
    }
    return status;
}

int
node_run(node_t *self)
{
    return s_loop(self);
}

int
node_run_pipe(node_t *self, void *pipe, bool *term)
{
    self->pipe = pipe;
    self->term = false;
    int rc = s_loop(self);
    self->pipe = NULL;
    *term = self->term;
    return rc;
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
