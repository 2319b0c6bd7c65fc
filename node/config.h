/*  node/config.h — a node's configuration: node_config_t with its defaults,
 *  as a program or a test fills it before node_new/parley_new, and the home's
 *  config file, HOME/config.json, that adds seeds to it:
 *
 *      { "seeds": ["tcp://HOST:PORT#NODEID", ...] }
 *
 *  Optional. Unknown keys are refused (a typo should not be silently
 *  ignored), every seed is checked (endpoint and node id), at most
 *  NODE_SEEDS_MAX of them. Parsing is pure (no I/O) so it has a fuzz target.
 */
#ifndef PARLEY_NODE_CONFIG_H
#define PARLEY_NODE_CONFIG_H

#include "../proto/errors.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NODE_SEEDS_MAX 64u
#define NODE_DAY_MS 86400000ull

/*  An injectable clock: ms since the Unix epoch. */
typedef uint64_t (*node_clock_fn)(void *arg);

#define NODE_NEIGHBOURS_MAX 64u    /* --neighbours at most */
#define NODE_VERIFY_THREADS_MAX 8u /* --verify-threads at most */

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
    uint64_t chan_rotate_ms;   /* a channel's admins draw a new key this often; 7 days */
    uint64_t ping_ms;          /* liveness ping interval; default 5 s */
    uint64_t retry_ms;         /* resend unacknowledged envelopes after; default 3 s */
    int verbose;               /* 0 info, 1 debug */
    bool no_mdns;              /* do not run the Avahi source */
    bool no_local;             /* do not run the host-local source */
    bool no_pex;               /* neither gossip nor use signed address records */
    bool relay;                /* replicate every scope heard of, not only our own */
    bool no_read_receipts;     /* never tell senders we read their messages */
    uint64_t sync_ms;          /* reconciliation round period; default 30 s (jittered) */
    uint64_t neighbours;       /* ring neighbours a node links to (SPEC §11.1); default
                                  8; 0: every peer it knows, as before links were bounded */
    uint64_t link_idle_ms;     /* a link kept for nothing else closes after this idle
                                  time; default 5 min */
    uint64_t verify_threads;   /* threads that check received envelopes' signatures
                                  beside the loop's (node/verifier.h); default one per
                                  online core beyond the first, at most
                                  NODE_VERIFY_THREADS_MAX; 0: the loop's thread alone */
    const char *runtime_dir;   /* host-local directory; NULL: the default */
    node_clock_fn clock;       /* NULL: the system clock (tests inject their own) */
    void *clock_arg;           /* passed to clock */
    bool quiet;                /* log warnings and errors only (embedded swarms) */
    bool new_db;               /* start even when parley.db is empty while identity.key
                                  exists (parleyd --new-db): the history is gone */
} node_config_t;

/*  Fills cfg with the defaults (every field a caller may leave alone). */
void node_config_default(node_config_t *cfg);

#define CONFIG_FILE_MAX (64u * 1024u)
#define CONFIG_SEED_MAX 320u /* endpoint + '#' + node id */

typedef struct {
    char seeds[NODE_SEEDS_MAX][CONFIG_SEED_MAX]; /* NUL-terminated, checked */
    size_t n_seeds;
} config_t;

/*  Parses text; on failure returns PARLEY_ERR_MALFORMED or _LIMIT and writes
 *  one line saying what is wrong into why. */
int config_parse(const char *text, size_t len, config_t *out, char *why, size_t cap) PARLEY_WUR;
/*  Checks "tcp://HOST:PORT#NODEID"; fills endpoint (cap bytes) and pk. */
int config_seed_parse(const char *seed, char *endpoint, size_t cap, uint8_t pk[32]) PARLEY_WUR;
/*  Reads HOME/config.json: PARLEY_OK with an empty config when absent. */
int config_load(const char *home, config_t *out, char *why, size_t cap) PARLEY_WUR;

void config_test(bool verbose);

#endif
