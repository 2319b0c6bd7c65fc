/*  node/node.h — the Parley node: one identity, its log, its links, its API.
 *
 *  node_new() opens the home (lock, identity, store), binds the CURVE ROUTER
 *  and the local API socket, and dials every seed; node_run() is the event
 *  loop (one thread owns everything: ZeroMQ sockets, SQLite, API clients);
 *  node_stop() may be called from a signal handler and makes node_run()
 *  return after the current iteration has committed. node_destroy() closes
 *  the database cleanly. Embedders use parley.h, which runs this loop in a
 *  thread of its own.
 */
#ifndef PARLEY_NODE_NODE_H
#define PARLEY_NODE_NODE_H

#include "../proto/errors.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_SEEDS_MAX 64u
#define NODE_DAY_MS 86400000ull

/*  An injectable clock: ms since the Unix epoch. */
typedef uint64_t (*node_clock_fn)(void *arg);

typedef struct {
    const char *home;                  /* resolved home directory (required) */
    const char *listen;                /* ROUTER endpoint, default tcp://0.0.0.0:* */
    const char *seeds[NODE_SEEDS_MAX]; /* "tcp://HOST:PORT#NODEID" */
    size_t n_seeds;
    const char *passphrase; /* for a sealed identity.key, or NULL */
    size_t pass_len;
    uint64_t ratchet_ms;       /* DM chain period; default one day */
    uint64_t grace_ms;         /* keep old day keys / prekeys this long; default 14 days */
    uint64_t prekey_rotate_ms; /* new signed prekey this often; default 7 days */
    uint64_t ping_ms;          /* liveness ping interval; default 2 s */
    uint64_t retry_ms;         /* resend unacknowledged envelopes after; default 3 s */
    int verbose;               /* 0 info, 1 debug */
    bool no_mdns;              /* do not run the Avahi source */
    bool no_local;             /* do not run the host-local source */
    bool no_pex;               /* neither gossip nor use signed address records */
    bool relay;                /* replicate every scope heard of, not only our own */
    bool no_read_receipts;     /* never tell senders we read their messages */
    uint64_t sync_ms;          /* reconciliation round period; default 30 s (jittered) */
    const char *runtime_dir;   /* host-local directory; NULL: the default */
    node_clock_fn clock;       /* NULL: the system clock (tests inject their own) */
    void *clock_arg;           /* passed to clock */
    bool quiet;                /* log warnings and errors only (embedded swarms) */
} node_config_t;

typedef struct _node_t node_t;

void node_config_default(node_config_t *cfg);
/*  Creates a node. On failure returns NULL, *err gets a PARLEY_ERR_* code and
 *  errmsg one line for the user. */
node_t *node_new(const node_config_t *cfg, int *err, char *errmsg, size_t cap);
/*  Runs until node_stop(). Returns 0, or an error that stopped the node. */
int node_run(node_t *self);
/*  Runs until node_stop() or "$TERM" on pipe (a CZMQ actor pipe, zsock_t),
 *  which also answers "ENDPOINT", "ID" and "API" with one string each. */
int node_run_pipe(node_t *self, void *pipe);
/*  Async-signal-safe. */
void node_stop(node_t *self);
void node_destroy(node_t **self_p);
/*  The endpoint the ROUTER is bound to (valid while the node lives). */
const char *node_endpoint(const node_t *self);
/*  The node's id, base32 (valid while the node lives). */
const char *node_id(const node_t *self);
/*  The path of its API socket (valid while the node lives). */
const char *node_api_path(const node_t *self);

void node_test(bool verbose);

#endif
