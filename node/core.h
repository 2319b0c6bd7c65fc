/*  node/core.h — what every class of the engine shares: configuration,
 *  clock, logger, identity and store, reject counters, the iteration's
 *  transaction and the after-commit queue.
 *
 *  Durability rule. Within one loop iteration every store write happens in
 *  one transaction (group commit). Nothing that promises durability — an API
 *  reply, an ACK, a notification, a pushed envelope — leaves the node before
 *  that commit is synced: classes only queue it here, and the node flushes
 *  the queue after the sync. The exceptions: pushes of our own DMs (a
 *  receipt is one) leave between the commit's write and its sync, when the
 *  transaction took no seq of a reservation of its own (node.c s_commit,
 *  SPEC §11 "Push before the sync"), and so do notifications of what a peer
 *  sent us. A commit that only stored what peers sent (core_txn_ingest)
 *  may put its sync off: its ACKs wait for it (SPEC §11 "A sync put off").
 *  A rollback discards the whole
 *  queue and turns every pending API reply into an error, so no client is
 *  told "stored" of something that is not.
 *
 *  A class that hits a transient failure (out of memory, an I/O error) after
 *  it wrote part of its work calls core_txn_fail(): the iteration then rolls
 *  back instead of committing, and everything in it is retried (peers resend
 *  what was not acknowledged, clients get an error and retry). Permanent
 *  failures (a forged envelope) are counted and dropped instead.
 *
 *  Threading: owned by the node's thread. Not installed.
 */
#ifndef PARLEY_NODE_CORE_H
#define PARLEY_NODE_CORE_H

#include "../proto/identity.h"
#include "../store/store.h"
#include "config.h"
#include "log.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/*  Invariants: programmer errors, checked in every build (NDEBUG or not). */
#define CORE_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/*  Reject and event counters, shown by `status`. */
typedef enum {
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
    C_FORGED_RECEIPT,        /* receipt ids naming a message of ours sent to someone else */
    C_ROLLED_BACK,           /* iterations rolled back (commit failed, or a class failed) */
    C_STORE_ERROR,           /* store writes that failed (their iteration rolled back) */
    C_UNDECRYPTABLE_DROPPED, /* undecryptable DMs past their quota: not kept */
    C_RELAY_QUOTA,           /* relayed envelopes refused: their author's quota is full */
    C_SCOPE_CAP,             /* envelopes refused: their new scope is past the caps */
    C_PEER_EVICTED,          /* links evicted to make room for a new one (link.h) */
    C_PEER_REFUSED,          /* new links refused: nothing could be evicted */
    C_RECORD_DROPPED,        /* gossiped or discovered records past their source's budget */
    C_DIAL_DROPPED,          /* unverified links dropped after LINK_DIAL_TRIES failed dials */
    C_NOT_MEMBER,            /* in a network: frames, envelopes, records and links of keys
                                that are not members, refused */
    C_COUNTERS
} core_counter_t;

extern const char *const core_counter_names[C_COUNTERS];

#define CORE_OUT_MAX 262144u        /* ACK and push entries per iteration */
#define CORE_ARENA_MAX (32u << 20)  /* envelope bytes staged for push per iteration */
#define CORE_STAGED_NONE UINT32_MAX /* core_stage found no room */

typedef struct link link_t;

/*  One queued output to a link, sent after the commit. */
typedef struct {
    link_t *link;    /* borrowed: links outlive an iteration */
    uint32_t seq;    /* queue order, for a stable sort by link */
    uint32_t staged; /* CORE_OUT_ACK: unused; push: arena offset of the envelope */
    uint32_t len;    /* push: envelope length */
    uint8_t id[32];  /* ACK: the envelope id */
    bool ack;        /* an ACK (else a push) */
    bool sent;       /* push: sent already, between the commit and its sync */
} core_out_t;

/*  One queued API reply: to which client, and the whole response. */
typedef struct {
    uint64_t client; /* api_server client id */
    json_t *reply;   /* owned */
} core_reply_t;

typedef struct core {
    node_config_t cfg;        /* copied; string pointers are not kept past node_new */
    char home[4096];          /* the home directory */
    char endpoint[256];       /* the ROUTER's bound endpoint */
    uint64_t started_ms;      /* when the node started */
    uint64_t wake_at;         /* core ms: the earliest deadline this iteration's ticks
                                 reported (core_wake_at); the loop sleeps until then */
    char disc_state[2][8];    /* per discovery source (0 local, 1 mdns): up, down, off */
    char disc_detail[2][128]; /* why, in a few words */
    char mdns_instance[64];   /* the instance name mDNS publishes under ("" before it says) */
    log_t log;                /* this node's logger */
    identity_t *id;           /* borrowed from the node */
    store_t *store;           /* borrowed from the node */
    char node_id[PARLEY_NODE_ID_STRLEN + 1];
    uint64_t counters[C_COUNTERS];
    node_clock_fn clock; /* injectable; NULL: CLOCK_REALTIME */
    void *clock_arg;
    /* the iteration */
    bool txn_failed;         /* a class asked for a rollback */
    bool checkpoint;         /* it deleted content (expiry): checkpoint after the commit so the old
                                page images leave the WAL; kept set while a reader defers it */
    int txn_rc;              /* why: the status of the first failed step (PARLEY_ERR_CORRUPT:
                                the file is damaged, and a retry cannot help) */
    bool damage_told;        /* the log has said once that the database is damaged */
    bool sync_failed;        /* the disk failed to sync a commit: the store takes no more writes */
    bool sync_wanted;        /* a step wrote through core_txn: this commit's sync is not put off */
    uint64_t unsynced_since; /* monotonic ms: a commit's sync put off since then (0: none) */
    uint64_t syncs;          /* syncs of commits that had left them to the node */
    uint64_t deferred;       /* commits whose sync was put off (node.c s_commit) */
    /* a database lost with the identity kept (node.c, "A lost database") */
    uint64_t lost_ms;       /* when the loss was found, 0 if never: the sequence floor */
    bool recovering;        /* no DM of ours is sealed yet: messages wait, QUEUED */
    uint64_t recovered;     /* envelopes of ours that came back from peers since the loss */
    uint64_t recover_quiet; /* ms: recovery ends then (set once a round ended; 0: not yet) */
    /* the after-commit queue */
    json_t *notes;    /* notifications (array) */
    json_t *received; /* notifications of what a peer sent us: these may leave
                         between the commit's write and its sync (array) */
    core_reply_t *replies;
    size_t n_replies, cap_replies;
    core_out_t *out;
    size_t n_out, cap_out;
    uint8_t *arena; /* envelopes staged for push */
    size_t arena_len, arena_cap;
    /* the node's ban: stops talking to a link that broke the rules */
    void (*ban)(void *arg, link_t *link, const char *why);
    void *ban_arg;
} core_t;

int core_init(core_t *self, const node_config_t *cfg) PARLEY_WUR;
void core_fini(core_t *self);

/*  The node's clock (ms since the Unix epoch). */
uint64_t core_now(const core_t *self);
/*  A new local message id (store_msg_t.msg_id): the time in ms, big-endian,
 *  then random bytes. Ids made later sort later, so their index grows at its
 *  end instead of rewriting a random page for every message. */
void core_msg_id(const core_t *self, uint8_t id[STORE_MSG_ID_LEN]);
/*  The DM chain day of ms. */
uint32_t core_day(const core_t *self, uint64_t ms);

/*  A step's next deadline (core ms): the loop waits for input no longer
 *  than until the earliest one reported by the iteration's ticks (and no
 *  longer than a second). Every tick reports each timer it keeps. */
void core_wake_at(core_t *self, uint64_t at_ms);

/*  Begins the iteration's transaction if none is open. What is written
 *  through it is synced before the iteration's output leaves. */
int core_txn(core_t *self) PARLEY_WUR;
/*  core_txn for storing a DM a peer sent us, and the lookups before: the
 *  commit's sync may be put off (node.c s_commit) if no other step asked
 *  for core_txn, since what it wrote promises nothing but its ACKs, and
 *  those wait for the sync (delivery.c). */
int core_txn_ingest(core_t *self) PARLEY_WUR;
/*  core_txn for bookkeeping that promises nothing: if none is open, the
 *  transaction is relaxed (store_begin_relaxed). Only right before the
 *  commit, when no step of the iteration can still need a durable one. */
int core_txn_relaxed(core_t *self) PARLEY_WUR;
/*  A transient failure inside the transaction: roll the iteration back. */
void core_txn_fail(core_t *self, int rc, const char *what);

/*  Queues a notification for subscribers (steals params). */
void core_notify(core_t *self, const char *method, json_t *params);
/*  The same, for a notification that only tells what a peer sent us (a DM,
 *  a receipt, a channel message or mark): it may leave between the commit's
 *  write and its sync. A power loss can undo it, not lose it: the author
 *  keeps the envelope and gives it back, by its resends (our ACK waits for
 *  the sync) or by reconciliation (SPEC §11, "Notify before the sync"). */
void core_notify_received(core_t *self, const char *method, json_t *params);
/*  A peer's id and short id as JSON strings, as every reply shows them. */
/*  In arr, n elements of elem bytes each, sorted by the 32-byte key each
 *  begins with: whether pk is there; *at is its index, or where it goes. */
bool core_key_search(const void *arr, size_t n, size_t elem, const uint8_t pk[32], size_t *at);
/*  qsort order of entries that start with a 32-byte key. */
int core_key_cmp(const void *a, const void *b);
/*  The ring of a sorted array of n entries of elem bytes, each starting with
 *  a 32-byte key (me not among them): into out (2 × side entries) the
 *  indexes of the side keys that follow me and the side keys that precede
 *  me, wrapping around; every index when n <= 2 × side. Returns how many.
 *  Every node computes the same ring from the same keys, so neighbourhood
 *  is mutual (SPEC §11.1). */
size_t core_ring(const uint8_t *keys, size_t n, size_t elem, const uint8_t me[32], size_t side,
                 size_t *out);
json_t *core_json_id(const uint8_t pk[32]);
json_t *core_json_short_id(const uint8_t pk[32]);
/*  Queues an API response (steals reply). */
void core_reply(core_t *self, uint64_t client, json_t *reply);
/*  Queues an ACK of id to link. */
void core_ack(core_t *self, link_t *link, const uint8_t id[32]);
/*  Copies an envelope into the staging arena: its handle for core_push, or
 *  CORE_STAGED_NONE when the arena is full (the push is then left to sync). */
uint32_t core_stage(core_t *self, const uint8_t *env, size_t len);
/*  Queues a push of a staged envelope to link. */
void core_push(core_t *self, link_t *link, uint32_t staged, size_t len);
/*  The bytes of a staged envelope. */
const uint8_t *core_staged(const core_t *self, uint32_t staged);

/*  Sorts the link outputs by link (stable), for the flush. */
void core_out_sort(core_t *self);
/*  After a flush: empties the queue. */
void core_clear(core_t *self);
/*  After a rollback: drops every output and turns each pending reply into
 *  an error telling the client nothing was stored. */
void core_discard(core_t *self);

/*  What a user is told when the database turns out to be damaged. */
#define CORE_DAMAGED_HINT                                                                          \
    "the database parley.db is damaged: stop parleyd, keep a copy of parley.db, then run "         \
    "`parley recover`"
/*  ... and after the disk failed to sync a commit. */
#define CORE_UNSYNCED_HINT                                                                         \
    "the disk failed to sync parley.db; the node takes no more writes until it is restarted"

#endif
