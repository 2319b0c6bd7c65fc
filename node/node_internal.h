/*  node/node_internal.h — the node's state, shared by node.c (engine, links,
 *  DM crypto) and api.c (local API server and its methods). Not installed.
 *
 *  Threading: everything here is owned by the thread in node_run().
 *  Durability rule: within one loop iteration every store write happens in one
 *  transaction (group commit); nothing that promises durability — an ACK to a
 *  peer, an API reply, a notification — leaves the node before that commit.
 *  Handlers therefore only queue output; node.c flushes it after committing.
 */
#ifndef PARLEY_NODE_INTERNAL_H
#define PARLEY_NODE_INTERNAL_H

#include "../discovery/discovery.h"
#include "../proto/addr.h"
#include "../proto/dm.h"
#include "../proto/identity.h"
#include "../store/store.h"
#include "node.h"
#include "replica.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define NODE_ROUTE_MAX 256u
#define NODE_LINKS_MAX 1024u
#define NODE_PUSH_MAX 4096u /* envelopes queued for eager push per link */
#define NODE_FLUSH_MAX 512u /* envelopes resent per link per retry round */

enum {
    C_OVERSIZE,
    C_MALFORMED,
    C_BAD_SIGNATURE,
    C_FUTURE,
    C_EXPIRED,
    C_UNSUPPORTED,
    C_EQUIVOCATION,
    C_NOT_OURS,
    C_UNDECRYPTABLE,
    C_BAD_FRAME,
    C_NO_HELLO,
    C_BAD_HELLO,
    C_ZAP_DENIED,
    C_BAD_PREKEY,
    C_DUPLICATE,
    C_BAD_ADDRESS,
    C_BANNED,
    C_COUNTERS
};

/*  One entry of a link's queue of ranges to stream (replica.c). */
typedef struct {
    uint8_t scope[32];
    uint64_t after_ts; /* cursor: items after (after_ts, after_id) ... */
    uint8_t after_id[32];
    uint64_t to_ts; /* ... up to (to_ts, to_id) inclusive */
    uint8_t to_id[32];
    uint8_t *excl; /* sorted id prefixes the peer holds (malloc'd), or NULL */
    size_t n_excl;
} link_owed_t;

typedef struct link {
    uint8_t pk[32];                /* peer's Ed25519 key (node id) */
    uint8_t x_pk[32];              /* its X25519 / CURVE key */
    uint8_t scope[32];             /* our DM scope with it (costs an X25519 to derive) */
    char endpoint[256];            /* where we dial it, "" if we don't */
    void *dealer;                  /* our DEALER to it, or NULL */
    void *monitor;                 /* PAIR receiving the DEALER's socket events */
    bool dealer_up;                /* DEALER handshake succeeded and not disconnected */
    uint8_t route[NODE_ROUTE_MAX]; /* routing id of its connection to our ROUTER */
    size_t route_len;              /* 0 when none */
    bool hello;                    /* it sent a HELLO we accepted */
    uint64_t connected_since;      /* ms; 0 while offline */
    uint64_t last_seen;            /* ms of the last frame received */
    uint64_t last_sent;            /* ms of the last frame sent */
    uint64_t next_flush;           /* ms: resend the outbox no earlier than this */
    char source[16];               /* how we learnt of it: seed, local, mdns, stored, inbound */
    char last_error[96];           /* why it is not connected, for `peers` */
    uint8_t (*push)[32];           /* envelope ids to push after commit */
    size_t n_push;
    uint8_t (*acks)[32]; /* ids to acknowledge after commit */
    size_t n_acks;
    bool send_prekey;  /* publish our prekey after commit */
    bool flush_more;   /* the last resend was capped: continue on its ACKs */
    bool send_peers;   /* send a PEERS frame after commit */
    bool send_bundles; /* newly up: pass on the prekey bundles we hold for others */
    uint8_t *addr;     /* its latest verified signed address record, or NULL */
    size_t addr_len;
    uint64_t addr_issued;  /* issued_ms of that record (newer ones replace it) */
    uint64_t addr_expires; /* expires_ms of that record: never passed on after it */
    /* replication (replica.c); everything here is per connection */
    bool caps_known;      /* its HELLO (either direction) told us its capabilities */
    bool relay;           /* it replicates every scope */
    uint64_t next_sync;   /* ms: we start the next round (if we initiate) */
    uint64_t round_start; /* ms the current exchange began, 0 if none */
    size_t round_msgs;    /* RECONCILE messages received in it */
    uint64_t hinted_ms;   /* we hinted it every scope changed up to this time */
    link_owed_t *owed;    /* ranges it lacks, streamed after commits */
    size_t n_owed;
    uint8_t (*wants_in)[16]; /* prefixes it asked for */
    size_t n_wants_in;
    size_t wants_in_at;       /* next one to serve */
    uint8_t (*wants_out)[16]; /* prefixes we ask it for, sent after our answer */
    size_t n_wants_out;
    uint8_t (*offered)[32]; /* scopes it told us it replicates, sorted */
    size_t n_offered;
    uint64_t bad_since;    /* ms: start of the window counting its bad input */
    unsigned bad;          /* weight of bad input in that window */
    uint64_t banned_until; /* ms: frames dropped and connections refused until then */
} link_t;

typedef struct api_client api_client_t;

struct _node_t {
    node_config_t cfg; /* copied; strings below are owned copies */
    char home[4096];
    char listen[256];
    char endpoint[256]; /* bound ROUTER endpoint */
    int lock_fd;        /* flock on parleyd.lock */
    identity_t *id;
    char node_id[PARLEY_NODE_ID_STRLEN + 1];
    store_t *store;
    void *ctx; /* our own zmq context (own ZAP endpoint) */
    void *router;
    void *zap;
    link_t **links;
    size_t n_links;
    int api_fd; /* listening Unix socket */
    char api_path[4200];
    api_client_t **clients;
    size_t n_clients;
    int wake[2]; /* self-pipe for node_stop */
    volatile int stopping;
    uint64_t counters[C_COUNTERS];
    uint64_t started_ms;
    uint64_t next_maint;
    json_t *notes;                 /* notifications to broadcast after commit */
    uint8_t *buf;                  /* PARLEY_FRAME_MAX scratch for frames */
    uint8_t *batchbuf;             /* PARLEY_FRAME_MAX: an ENVELOPES batch being built */
    uint8_t *envbuf;               /* PARLEY_ENVELOPE_MAX scratch */
    discovery_t *disc;             /* the discovery actor, or NULL */
    char disc_state[2][8];         /* per source (0 local, 1 mdns): up, down, off */
    char disc_detail[2][128];      /* why, in a few words */
    uint64_t monitor_seq;          /* names inproc monitor endpoints */
    store_own_prekey_t prekey;     /* our current signed prekey (public part), cached */
    bool has_prekey;               /* prekey is loaded */
    uint8_t addr[ADDR_RECORD_MAX]; /* our own signed address record */
    size_t addr_len;               /* 0 until made */
    uint64_t addr_renew;           /* ms: re-sign after this */
    struct replica *replica;       /* replication state (replica.c) */
};

extern const char *const node_counter_names[C_COUNTERS];

uint64_t node_now_ms(void);
void node_log(node_t *self, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/*  Begins the iteration's transaction if none is open. */
int node_txn(node_t *self) PARLEY_WUR;
/*  Queues a notification for subscribers (steals params). */
void node_notify(node_t *self, const char *method, json_t *params);

/*  Resolves a user's PEER argument: full id, contact name, or unique
 *  short-id prefix (>= 4 chars) of a known peer or contact. */
int node_resolve_peer(node_t *self, const char *arg, uint8_t pk[32], const char **why) PARLEY_WUR;
link_t *node_link_find(node_t *self, const uint8_t pk[32]);

typedef struct {
    char name[32];  /* interface name */
    char addr[16];  /* dotted IPv4 address */
    bool multicast; /* mDNS can run on it */
} node_iface_t;

/*  Up, non-loopback IPv4 interfaces, at most max, into out. */
size_t node_interfaces(node_iface_t *out, size_t max);
/*  The DM scope with peer, from its link's cache when there is one. */
int node_dm_scope(node_t *self, const uint8_t peer[32], uint8_t scope[32]) PARLEY_WUR;
bool node_link_online(const node_t *self, const link_t *link);

/*  Sends one frame to a peer (DEALER when up, else its route); false when it
 *  cannot go out now (full queue, no connection). */
bool node_link_send(node_t *self, link_t *link, const uint8_t *buf, size_t len);
/*  Sends the bundles of the given authors we hold (ours from memory), so a
 *  receiver can answer envelopes it gets from a third node. */
void node_send_bundles(node_t *self, link_t *link, const uint8_t (*authors)[32], size_t n);
bool node_is_relay(const node_t *self);
uint64_t node_sync_ms(const node_t *self);
void node_ban(node_t *self, link_t *link, const char *why);

/*  Sends a text DM; fills msg (caller frees msg->text) — QUEUED when the
 *  peer's prekey is unknown. Inside the iteration's transaction. */
int node_send_text(node_t *self, const uint8_t peer[32], const char *text, size_t len,
                   uint64_t ttl_ms, store_msg_t *msg) PARLEY_WUR;
/*  Marks every unread message from peer read and, unless read receipts are
 *  off, tells the peer; *n how many. Inside the iteration's transaction. */
int node_mark_read(node_t *self, const uint8_t peer[32], size_t *n) PARLEY_WUR;

/* JSON views shared by api.c and notifications. */
json_t *node_msg_json(node_t *self, const store_msg_t *msg);
const char *node_state_name(int state);

/* api.c */
int api_listen(node_t *self) PARLEY_WUR;
void api_close(node_t *self);
/*  zmq_pollitem_t entries for the API (listening socket and clients). */
size_t api_poll_count(const node_t *self);
void api_poll_fill(node_t *self, void *items);
/*  Handles readiness reported in items (same order as api_poll_fill). */
void api_poll_handle(node_t *self, const void *items);
/*  Writes queued output to clients (after commit). */
void api_flush(node_t *self);
/*  Queues a line to every subscribed client. */
void api_broadcast(node_t *self, const json_t *note);

#endif
