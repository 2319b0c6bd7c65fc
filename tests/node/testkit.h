/*  tests/node/testkit.h — what the node's class self-tests share: real nodes
 *  (parley_t) started inside the test process on 127.0.0.1, each in a home
 *  of its own under one temporary directory, driven through their API socket
 *  like any client; an injectable clock; and a raw CURVE peer that speaks
 *  frames directly, to send what an honest node never would.
 *
 *  Test code: a failed step prints where and aborts (proto/selftest.h).
 */
#ifndef PARLEY_TESTS_NODE_TESTKIT_H
#define PARLEY_TESTS_NODE_TESTKIT_H

#include "../../node/client.h"
#include "../../node/parley.h"
#include "../../proto/dm.h"
#include "../../proto/envelope.h"
#include "../../proto/frame.h"
#include "../../proto/identity.h"
#include "../../proto/selftest.h"
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/*  The class self-tests (registered in tests/node_selftest.c). */
void link_test(bool verbose);
void session_test(bool verbose);
void delivery_test(bool verbose);
void hostile_test(bool verbose);
void durability_test(bool verbose);
void replica_test(bool verbose);
void bundles_test(bool verbose);
void api_server_test(bool verbose);
void api_test(bool verbose);
void parley_test(bool verbose);
void network_test(bool verbose);
void channel_test(bool verbose);
void channel_prop_test(bool verbose);
void verifier_test(bool verbose);

/*  Wall time, ms. */
uint64_t tk_ms(void);
void tk_sleep(int ms);

/*  Waits until cond holds, polling every 20 ms; aborts after ms. */
#define TK_WAIT(ms, cond)                                                                          \
    do {                                                                                           \
        uint64_t tk_end_ = tk_ms() + (uint64_t)(ms);                                               \
        while (!(cond)) {                                                                          \
            if (tk_ms() >= tk_end_) {                                                              \
                fprintf(stderr, "%s:%d: timed out waiting for %s\n", __FILE__, __LINE__, #cond);   \
                abort();                                                                           \
            }                                                                                      \
            tk_sleep(20);                                                                          \
        }                                                                                          \
    } while (0)

/*  A clock the test moves: the wall clock plus an offset. */
typedef struct {
    _Atomic int64_t offset_ms;
} tk_clock_t;

uint64_t tk_clock_now(void *arg); /* a node_clock_fn over a tk_clock_t */
void tk_clock_advance(tk_clock_t *clock, int64_t ms);

/*  A temporary directory for one test's homes; tk_dir_remove deletes it. */
void tk_dir(char *out, size_t cap);
void tk_dir_remove(const char *dir);

typedef struct {
    tk_clock_t *clock; /* NULL: the system clock */
    const char *seed;  /* "tcp://127.0.0.1:PORT#ID" to dial, or NULL */
    bool relay;        /* --relay */
    uint64_t sync_ms;  /* reconciliation period; 0: 500 ms */
    uint64_t retry_ms; /* outbox resend period; 0: 300 ms */
    bool verbose;      /* the node's log at info level (else warnings only) */
    const char *listen;       /* "tcp://127.0.0.1:PORT" (a restart keeps its port); NULL: any */
    const char *more_seeds[3]; /* further seeds to dial, or NULL */
} tk_opts_t;

typedef struct {
    parley_t *node;
    client_t *api;   /* request/response */
    client_t *watch; /* subscribed: notifications */
    char home[4096];
    char id[PARLEY_NODE_ID_STRLEN + 1];
    uint8_t pk[32];
    char seed[400]; /* how another node dials it: ENDPOINT#ID */
} tk_node_t;

/*  Starts a node in DIR/NAME (created, or reopened when it exists). */
tk_node_t *tk_node_start(const char *dir, const char *name, const tk_opts_t *opts);
/*  Stops it (its loop commits and says BYE) and frees it; NULL-safe. */
void tk_node_stop(tk_node_t **self_p);

/*  Calls METHOD (steals params, may be NULL); aborts unless it succeeds.
 *  Returns the result (caller owns). */
json_t *tk_call(tk_node_t *n, const char *method, json_t *params);
/*  Calls METHOD expecting an error: returns its PARLEY_ERR_* code (or a
 *  JSON-RPC one) and, when msg is not NULL, its message (caller frees). */
int tk_call_err(tk_node_t *n, const char *method, json_t *params, char **msg);
/*  The same, but returns the JSON-RPC error code itself (-32007 for state). */
int tk_call_rpc(tk_node_t *n, const char *method, json_t *params, char **msg);
/*  The next notification named METHOD on the watch connection within
 *  timeout_ms (others are skipped), or NULL. Caller owns. */
json_t *tk_note(tk_node_t *n, const char *method, int timeout_ms);
/*  Drops every notification already waiting. */
void tk_notes_drain(tk_node_t *n);
/*  status.rejected.COUNTER. */
uint64_t tk_rejected(tk_node_t *n, const char *counter);
/*  status.sync.FIELD. */
uint64_t tk_sync(tk_node_t *n, const char *field);
/*  Whether n lists peer as online. */
bool tk_online(tk_node_t *n, const char *peer);
/*  How many messages with PEER are in STATE (NULL: any). */
size_t tk_count(tk_node_t *n, const char *peer, const char *state);
/*  One integer from n's database, read over a connection of the test's own
 *  (WAL: the node keeps writing meanwhile). */
int64_t tk_sql_int(const tk_node_t *n, const char *sql);
/*  Whether the bytes of needle occur in any of n's database files. */
bool tk_db_has(const tk_node_t *n, const char *needle);
/*  The first column of the first row of sql on n's database, a blob, into
 *  out (at most cap bytes); its length. Aborts when there is no row. */
size_t tk_sql_blob(const tk_node_t *n, const char *sql, uint8_t *out, size_t cap);
/*  Runs sql (statements without results) on the database in home: a
 *  stopped node's, to inject a fault. Aborts on an error. */
void tk_sql_exec(const char *home, const char *sql);
/*  Sends TEXT to PEER; returns the message object (caller owns). */
json_t *tk_send(tk_node_t *n, const char *peer, const char *text);

/*  A peer with a fresh key that speaks frames itself. */
typedef struct {
    void *ctx;
    void *sock;         /* DEALER to the node */
    identity_t *me;     /* fresh */
    uint8_t node[32];   /* the node's key */
    prekey_t spk;       /* its prekey, from the PREKEY answering our HELLO */
    uint8_t ek_pub[32]; /* our X3DH session with it */
    uint8_t root[32];
    uint32_t day;
    uint8_t scope[32]; /* our DM scope with it */
    char id[PARLEY_NODE_ID_STRLEN + 1];
    uint64_t expires_ms; /* what tk_raw_seal puts in the header (0: never) */
    uint8_t *buf;        /* PARLEY_FRAME_MAX: frames received */
    uint8_t *out; /* PARLEY_FRAME_MAX: frames built */
} tk_raw_t;

/*  Connects, says HELLO, waits for the node's PREKEY, opens an X3DH session. */
tk_raw_t *tk_raw_connect(const tk_node_t *n);
/*  The same with the key me (taken: the raw peer owns it), e.g. a stopped
 *  node's own key (tk_identity_load), to speak as that node. */
tk_raw_t *tk_raw_connect_as(const tk_node_t *n, identity_t *me);
/*  Only connects and says HELLO (queued: it leaves once CURVE and ZAP let
 *  it), with the key me (taken); no session, so tk_raw_seal is not for it.
 *  For a peer the node may refuse. */
tk_raw_t *tk_raw_open(const tk_node_t *n, identity_t *me);
/*  Only connects, with the key me (taken): no HELLO. */
tk_raw_t *tk_raw_dial(const tk_node_t *n, identity_t *me);
/*  Says HELLO on r's connection. */
void tk_raw_hello(tk_raw_t *r);
/*  The identity in HOME/identity.key (plain, not sealed); caller owns. */
identity_t *tk_identity_load(const char *home);
void tk_raw_destroy(tk_raw_t **self_p);
/*  Seals TEXT as a DM to the node: seq, ts (0: now), scope (NULL: the pair's),
 *  root (NULL: the session's). Returns its length in out (PARLEY_ENVELOPE_MAX). */
size_t tk_raw_seal(tk_raw_t *r, uint64_t seq, uint64_t ts, const char *text, const uint8_t *scope,
                   const uint8_t *root, uint8_t *out);
/*  The fields of an envelope of kind in scope by r's key, at step seq and
 *  stamped now, without a body (env zeroed first). */
void tk_raw_fields(const tk_raw_t *r, uint8_t kind, const uint8_t scope[32], uint64_t seq,
                   envelope_t *env);
/*  Seals an envelope of kind in scope, at step seq and stamped now, with
 *  body (len bytes, taken as it is: no encryption) under r's key, into out
 *  (PARLEY_ENVELOPE_MAX); its length. Aborts when it cannot be sealed. */
size_t tk_raw_env(tk_raw_t *r, uint8_t kind, const uint8_t scope[32], uint64_t seq,
                  const uint8_t *body, size_t len, uint8_t *out);
/*  Sends one raw frame / an ENVELOPES frame holding one envelope. */
void tk_raw_send(tk_raw_t *r, const uint8_t *buf, size_t len);
void tk_raw_send_env(tk_raw_t *r, const uint8_t *env, size_t len);
/*  Whether an ACK naming env (len bytes) arrives within timeout_ms. */
bool tk_raw_acked(tk_raw_t *r, const uint8_t *env, size_t len, int timeout_ms);
/*  Waits for a frame of TYPE (others are skipped) into *f (views r->buf). */
bool tk_raw_recv(tk_raw_t *r, uint8_t type, frame_t *f, int timeout_ms);

#endif
