/*  tools/bench/bench.c — how fast Parley is, next to how fast this machine
 *  could possibly be.
 *
 *  Two kinds of figures, measured in one run so they share the machine's
 *  state (CPU frequency, page cache, other load):
 *
 *  Parley: two real parleyd processes (the binary next to this one), each in
 *  its own mkdtemp home, talking CURVE over tcp loopback; B is seeded with A.
 *  Everything goes through the local API (node/client.h), as a user's program
 *  would: `send` on A, the "message" notification of a `subscribe`d
 *  connection on B. B notifies only after it has committed the message, and A
 *  answers `send` only after its own commit, so both figures are durable ones.
 *    (a) latency: one 100-byte DM at a time, send on A -> notified on B;
 *        and the round trip, send on A -> A notified that B's signed
 *        receipt came ("delivered": both sides committed);
 *    (b) throughput: N sends pipelined on A; from the first send to B's last
 *        notification, and to A's last response (A's durable sends/s).
 *
 *  Floors: the same work done by the libraries alone, with nothing of Parley
 *  in between (so this file talks to SQLite and libzmq directly, which
 *  Parley's own layers never do outside store/ and node/):
 *    (c) ingest crypto of one DM-sized envelope (Ed25519 verify +
 *        XChaCha20-Poly1305 decrypt + BLAKE2b-256 id), one core;
 *        SQLite group-commit insert (WAL, synchronous=FULL, 1000 rows/txn);
 *        SQLite one-row FULL commit latency; zmq DEALER->ROUTER tcp loopback
 *        (NULL security) one-way throughput and ping-pong round trip; the
 *        same round trip under CURVE with messages the size of the DM's
 *        envelope, the floor of the DM + receipt round trip.
 *    The floor latency is crypto + one FULL commit + half a zmq round trip;
 *    the floor throughput is the slowest of crypto, group commit and zmq.
 *
 *  Safety: only loopback traffic; the nodes are started and ended by PID in
 *  tools/bench/nodes.c (SIGTERM, then SIGKILL after a grace period), and get
 *  PR_SET_PDEATHSIG so they die with us; every wait has a deadline and an
 *  alarm() backstop ends the run if anything still hangs. Temp directories
 *  are removed at the end (kept, and named, only if the backstop fires).
 *
 *  Usage: bench [--quick] [--n N] [--lat N]
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "../../node/client.h"
#include "../../proto/dm.h"
#include "../../proto/envelope.h"
#include "../../proto/limits.h"
#include "nodes.h"

#define S_TEXT_LEN 100u  /* bytes of text per DM, as in the limits notes */
#define S_SQL_BODY 200u  /* bytes of body per floor SQLite row */
#define S_SQL_TXN 1000u  /* rows per group commit */
#define S_ZMQ_MSG 100u   /* bytes per floor zmq message */
#define S_ZMQ_BIG 4096u  /* the largest floor zmq message (the CURVE round trip's) */
#define S_WARMUP 5u      /* DMs sent before any timing */
#define S_START_MS 20000 /* a node has this long to open its API socket */
#define S_LINK_MS 30000  /* A and B have this long to see each other */
#define S_MSG_MS 15000   /* one DM has this long (node retries every 3 s) */
#define S_STALL_MS 20000 /* throughput run: longest time without progress */
#define S_CALL_MS 10000  /* an API call has this long to answer */
#define S_N_MAX 1000000u
#define S_DM_NONCE_OFF 44u /* the nonce's offset in a DM body (proto/dm.h) */

/* ---- options and results ---- */

typedef struct {
    bool quick;         /* small counts: a smoke test in well under 30 s */
    size_t n_tput;      /* DMs in the throughput run */
    size_t n_lat;       /* DMs in the latency run */
    double crypto_secs; /* how long to run the crypto floor */
    size_t sql_rows;    /* rows for the group-commit floor */
    size_t sql_commits; /* one-row commits for the commit-latency floor */
    size_t zmq_msgs;    /* messages for the zmq throughput floor */
    size_t zmq_pings;   /* round trips for the zmq latency floor */
    unsigned budget_s;  /* hard limit for the whole run */
} opts_t;

typedef nodes_lat_t lat_t;

typedef struct {
    size_t env_len;     /* bytes of the DM-sized envelope */
    double crypto_rate; /* envelopes/s: verify + decrypt + id (receiver) */
    double seal_rate;   /* envelopes/s: encrypt + sign + id (sender) */
    double sql_rate;    /* rows/s, group commit */
    lat_t sql_commit;   /* one-row FULL commit */
    double zmq_rate;    /* messages/s, one way */
    lat_t zmq_rtt;      /* ping-pong round trip */
    lat_t curve_rtt;    /* the same under CURVE, env_len bytes each way */
} floors_t;

/*  Where a node lives: its own mkdtemp home and its log, in the run's root. */
typedef struct {
    char home[PATH_MAX];
    char log[PATH_MAX];
} s_place_t;

typedef struct {
    lat_t dm;          /* send on A -> notified on B */
    lat_t rtt;         /* send on A -> A notified "delivered" (B's receipt) */
    double e2e_rate;   /* DMs/s, first send -> B's last notification */
    double a_rate;     /* durable sends/s on A, first send -> A's last answer */
    size_t duplicates; /* notifications on B for a DM already seen */
} parley_t;

/* ---- time, statistics, errors ---- */

static double *
s_samples(size_t n)
{
    double *v = calloc(n ? n : 1, sizeof *v);
    if (!v) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    return v;
}

/* ---- the hard timeout ---- */

static void
s_arm_backstop(unsigned seconds, const char *tmp_root)
{
    char msg[PATH_MAX + 128];
    snprintf(msg, sizeof msg,
             "bench: FAIL: hard timeout or interrupt; nodes killed, files left in %s\n", tmp_root);
    nodes_backstop_msg(msg);
    signal(SIGPIPE, SIG_IGN);
    nodes_backstop(seconds);
}

/* ---- floor: ingest crypto ---- */

/*  One DM envelope as Parley lays it out (proto/envelope.h, proto/dm.h) for
 *  S_TEXT_LEN bytes of text: header, DM header, padded ciphertext, signature;
 *  built with libsodium alone. signed_msg is the domain-separated message the
 *  signature covers. */
typedef struct {
    uint8_t pk[32];
    uint8_t sk[64];
    uint8_t key[32];
    uint8_t env[1024];
    size_t env_len;
    size_t body_len;
    uint8_t signed_msg[1024 + sizeof ENVELOPE_SIG_DOMAIN];
    size_t domain_len;
    uint8_t plain[512]; /* the padded content */
    size_t padded;
} crypto_case_t;

static int
s_crypto_case(crypto_case_t *c)
{
    crypto_sign_keypair(c->pk, c->sk);
    crypto_aead_xchacha20poly1305_ietf_keygen(c->key);
    size_t content_len = 1 + S_TEXT_LEN; // type byte + text (proto/content.h)
    c->body_len = dm_body_len(content_len);
    size_t bucket = c->body_len - PARLEY_DM_HEADER_LEN - PARLEY_AEAD_TAG_LEN;
    c->env_len = PARLEY_ENVELOPE_HEADER_LEN + c->body_len + PARLEY_SIG_LEN;
    if (c->body_len == 0 || c->env_len > sizeof c->env) {
        return -1;
    }
    uint8_t plain[sizeof c->plain];
    randombytes_buf(c->env, PARLEY_ENVELOPE_HEADER_LEN + PARLEY_DM_HEADER_LEN);
    randombytes_buf(plain, content_len);
    size_t padded = 0;
    if (bucket > sizeof plain || sodium_pad(&padded, plain, content_len, bucket, bucket) != 0) {
        return -1;
    }
    uint8_t *body = c->env + PARLEY_ENVELOPE_HEADER_LEN;
    const uint8_t *nonce = body + S_DM_NONCE_OFF;
    size_t ad_len = PARLEY_ENVELOPE_HEADER_LEN + PARLEY_DM_HEADER_LEN;
    crypto_aead_xchacha20poly1305_ietf_encrypt(body + PARLEY_DM_HEADER_LEN, NULL, plain, padded,
                                               c->env, ad_len, NULL, nonce, c->key);
    c->domain_len = sizeof ENVELOPE_SIG_DOMAIN; // the domain and its NUL
    memcpy(c->signed_msg, ENVELOPE_SIG_DOMAIN, c->domain_len);
    size_t signed_len = c->env_len - PARLEY_SIG_LEN;
    memcpy(c->signed_msg + c->domain_len, c->env, signed_len);
    crypto_sign_detached(c->env + signed_len, NULL, c->signed_msg, c->domain_len + signed_len,
                         c->sk);
    memcpy(c->plain, plain, padded);
    c->padded = padded;
    return 0;
}

/*  What a receiver must do per envelope at least. The copy into the signed
 *  message is part of it: Ed25519 has no streaming form, so the domain and
 *  the envelope have to be contiguous. */
static int
s_ingest_once(crypto_case_t *c, uint8_t *plain, uint8_t id[32])
{
    size_t signed_len = c->env_len - PARLEY_SIG_LEN;
    memcpy(c->signed_msg + c->domain_len, c->env, signed_len);
    if (crypto_sign_verify_detached(c->env + signed_len, c->signed_msg, c->domain_len + signed_len,
                                    c->pk)
        != 0) {
        return -1;
    }
    const uint8_t *body = c->env + PARLEY_ENVELOPE_HEADER_LEN;
    unsigned long long plain_len = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            plain, &plain_len, NULL, body + PARLEY_DM_HEADER_LEN,
            c->body_len - PARLEY_DM_HEADER_LEN, c->env,
            PARLEY_ENVELOPE_HEADER_LEN + PARLEY_DM_HEADER_LEN, body + S_DM_NONCE_OFF, c->key)
        != 0) {
        return -1;
    }
    crypto_generichash(id, 32, c->env, c->env_len, NULL, 0);
    return 0;
}

/*  What a sender must do per envelope at least: encrypt the padded content
 *  (a fresh nonce each time), sign the domain-separated bytes, hash the id. */
static int
s_seal_once(crypto_case_t *c, uint8_t *plain, uint8_t id[32])
{
    (void)plain; // the content to seal is c->plain; this is the ingest step's output buffer
    uint8_t *body = c->env + PARLEY_ENVELOPE_HEADER_LEN;
    randombytes_buf(body + S_DM_NONCE_OFF, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    crypto_aead_xchacha20poly1305_ietf_encrypt(
        body + PARLEY_DM_HEADER_LEN, NULL, c->plain, c->padded, c->env,
        PARLEY_ENVELOPE_HEADER_LEN + PARLEY_DM_HEADER_LEN, NULL, body + S_DM_NONCE_OFF, c->key);
    size_t signed_len = c->env_len - PARLEY_SIG_LEN;
    memcpy(c->signed_msg + c->domain_len, c->env, signed_len);
    crypto_sign_detached(c->env + signed_len, NULL, c->signed_msg, c->domain_len + signed_len,
                         c->sk);
    crypto_generichash(id, 32, c->env, c->env_len, NULL, 0);
    return 0;
}

/*  Runs one per-envelope step for `secs` and returns envelopes/s, or -1. */
static double
s_crypto_rate(crypto_case_t *c, int (*step)(crypto_case_t *, uint8_t *, uint8_t *), double secs)
{
    uint8_t plain[1024];
    uint8_t id[32];
    size_t n = 0;
    double t0 = nodes_now();
    double t = t0;
    while (t - t0 < secs) {
        for (size_t i = 0; i < 64; i++) { // read the clock rarely
            if (step(c, plain, id) != 0) {
                return -1;
            }
        }
        n += 64;
        t = nodes_now();
    }
    return (double)n / (t - t0);
}

static int
s_floor_crypto(const opts_t *o, floors_t *f)
{
    crypto_case_t c;
    if (s_crypto_case(&c) != 0) {
        fprintf(stderr, "bench: cannot build the crypto test envelope\n");
        return -1;
    }
    f->env_len = c.env_len;
    f->crypto_rate = s_crypto_rate(&c, s_ingest_once, o->crypto_secs);
    f->seal_rate = s_crypto_rate(&c, s_seal_once, o->crypto_secs);
    //  Ingest once more: the sealed envelopes must still verify and open.
    int rc = f->crypto_rate > 0 && s_crypto_rate(&c, s_ingest_once, 0.01) > 0 ? 0 : -1;
    sodium_memzero(c.sk, sizeof c.sk);
    if (rc != 0) {
        fprintf(stderr, "bench: the crypto floor failed to verify or decrypt\n");
    }
    return rc;
}

/* ---- floor: SQLite ---- */

static int
s_sql_exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
        fprintf(stderr, "bench: sqlite: %s: %s\n", sql, err ? err : "?");
        sqlite3_free(err);
        return -1;
    }
    return 0;
}

/*  A log table shaped like an envelope store: a random 32-byte id under a
 *  UNIQUE index (the costly part at scale) and a (scope, ts) index. */
static sqlite3 *
s_sql_open(const char *dir, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    sqlite3 *db = NULL;
    if (sqlite3_open(path, &db) != SQLITE_OK) {
        fprintf(stderr, "bench: cannot open %s\n", path);
        sqlite3_close(db);
        return NULL;
    }
    if (s_sql_exec(db, "PRAGMA journal_mode=WAL") != 0
        || s_sql_exec(db, "PRAGMA synchronous=FULL") != 0
        || s_sql_exec(db, "CREATE TABLE env (n INTEGER PRIMARY KEY, id BLOB NOT NULL UNIQUE,"
                          " scope BLOB NOT NULL, ts INTEGER NOT NULL, body BLOB NOT NULL)")
               != 0
        || s_sql_exec(db, "CREATE INDEX env_scope_ts ON env (scope, ts)") != 0) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static int
s_sql_insert(sqlite3_stmt *st, uint64_t n)
{
    uint8_t id[32];
    uint8_t scope[32];
    uint8_t body[S_SQL_BODY];
    randombytes_buf(id, sizeof id);
    memset(scope, (int)(n % 8), sizeof scope); // a few conversations
    memset(body, 'b', sizeof body);
    sqlite3_bind_blob(st, 1, id, sizeof id, SQLITE_TRANSIENT);
    sqlite3_bind_blob(st, 2, scope, sizeof scope, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)n);
    sqlite3_bind_blob(st, 4, body, sizeof body, SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static int
s_sql_group(sqlite3 *db, sqlite3_stmt *st, size_t rows, double *rate)
{
    double t0 = nodes_now();
    for (size_t done = 0; done < rows;) {
        if (s_sql_exec(db, "BEGIN") != 0) {
            return -1;
        }
        for (size_t i = 0; i < S_SQL_TXN && done < rows; i++, done++) {
            if (s_sql_insert(st, done) != 0) {
                fprintf(stderr, "bench: sqlite insert: %s\n", sqlite3_errmsg(db));
                return -1;
            }
        }
        if (s_sql_exec(db, "COMMIT") != 0) {
            return -1;
        }
    }
    *rate = (double)rows / (nodes_now() - t0);
    return 0;
}

/*  Autocommit: each insert is its own transaction, one WAL fsync each. */
static int
s_sql_commits(sqlite3 *db, sqlite3_stmt *st, size_t n, lat_t *out)
{
    double *v = s_samples(n);
    for (size_t i = 0; i < n; i++) {
        double t0 = nodes_now();
        if (s_sql_insert(st, 10000000u + i) != 0) {
            fprintf(stderr, "bench: sqlite insert: %s\n", sqlite3_errmsg(db));
            free(v);
            return -1;
        }
        v[i] = nodes_now() - t0;
    }
    *out = nodes_percentiles(v, n);
    free(v);
    return 0;
}

static int
s_floor_sqlite(const opts_t *o, const char *dir, floors_t *f)
{
    sqlite3 *db = s_sql_open(dir, "floor.db");
    if (!db) {
        return -1;
    }
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "INSERT INTO env (id, scope, ts, body) VALUES (?,?,?,?)", -1,
                                &st, NULL)
                     == SQLITE_OK
                 ? 0
                 : -1;
    if (rc == 0) {
        rc = s_sql_group(db, st, o->sql_rows, &f->sql_rate);
    }
    if (rc == 0) {
        rc = s_sql_commits(db, st, o->sql_commits, &f->sql_commit);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* ---- floor: ZeroMQ ---- */

typedef struct {
    void *ctx;
    void *sock;         /* the echo thread's ROUTER (handed over) */
    char endpoint[256]; /* the ROUTER's bound endpoint */
    size_t count;       /* messages to send (throughput) */
    int rc;             /* the thread's result */
} zmq_job_t;

/*  A CURVE pair for the round-trip floor: the ROUTER is the server. */
typedef struct {
    char server_pk[41], server_sk[41]; /* Z85 */
    char client_pk[41], client_sk[41];
} curve_keys_t;

/*  Every floor socket gives up after S_CALL_MS, in both directions and at
 *  close, so a floor that goes wrong fails instead of hanging the run. */
static void *
s_zmq_socket(void *ctx, int type)
{
    void *s = zmq_socket(ctx, type);
    int timeout = S_CALL_MS;
    if (s) {
        zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
        zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
        zmq_setsockopt(s, ZMQ_LINGER, &timeout, sizeof timeout);
    }
    return s;
}

static void *
s_zmq_bind(void *ctx, char *endpoint, size_t cap)
{
    void *router = s_zmq_socket(ctx, ZMQ_ROUTER);
    if (!router || zmq_bind(router, "tcp://127.0.0.1:*") != 0
        || zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, endpoint, &cap) != 0) {
        if (router) {
            zmq_close(router);
        }
        return NULL;
    }
    return router;
}

/*  Sender thread: says hello, waits for "go", then streams the messages. */
static void *
s_zmq_sender(void *arg)
{
    zmq_job_t *job = arg;
    job->rc = -1;
    void *dealer = s_zmq_socket(job->ctx, ZMQ_DEALER);
    uint8_t msg[S_ZMQ_MSG];
    memset(msg, 'm', sizeof msg);
    char go[8];
    if (dealer && zmq_connect(dealer, job->endpoint) == 0 && zmq_send(dealer, "hi", 2, 0) == 2
        && zmq_recv(dealer, go, sizeof go, 0) >= 0) {
        size_t sent = 0;
        while (sent < job->count && zmq_send(dealer, msg, sizeof msg, 0) == (int)sizeof msg) {
            sent++;
        }
        job->rc = sent == job->count ? 0 : -1;
    }
    if (dealer) {
        zmq_close(dealer); // with linger: whatever is still queued goes out
    }
    return NULL;
}

/*  Receives one [identity, payload] message from a ROUTER. */
static int
s_router_recv(void *router, uint8_t *ident, size_t *ident_len, uint8_t *buf, size_t cap)
{
    int n = zmq_recv(router, ident, *ident_len, 0);
    if (n < 0 || (size_t)n > *ident_len) {
        return -1;
    }
    *ident_len = (size_t)n;
    return zmq_recv(router, buf, cap, 0);
}

static int
s_floor_zmq_rate(const opts_t *o, void *ctx, floors_t *f)
{
    zmq_job_t job = { .ctx = ctx, .count = o->zmq_msgs };
    void *router = s_zmq_bind(ctx, job.endpoint, sizeof job.endpoint);
    pthread_t th;
    if (!router || pthread_create(&th, NULL, s_zmq_sender, &job) != 0) {
        fprintf(stderr, "bench: zmq throughput set-up failed\n");
        if (router) {
            zmq_close(router);
        }
        return -1;
    }
    uint8_t ident[256];
    size_t ident_len = sizeof ident;
    uint8_t buf[S_ZMQ_MSG];
    int rc = s_router_recv(router, ident, &ident_len, buf, sizeof buf) >= 0 ? 0 : -1;
    double t0 = nodes_now();
    if (rc == 0
        && (zmq_send(router, ident, ident_len, ZMQ_SNDMORE) < 0
            || zmq_send(router, "go", 2, 0) < 0)) {
        rc = -1;
    }
    for (size_t i = 0; rc == 0 && i < o->zmq_msgs; i++) {
        size_t il = sizeof ident;
        if (s_router_recv(router, ident, &il, buf, sizeof buf) != (int)S_ZMQ_MSG) {
            rc = -1;
        }
    }
    double t1 = nodes_now();
    pthread_join(th, NULL);
    zmq_close(router);
    if (rc != 0 || job.rc != 0) {
        fprintf(stderr, "bench: zmq throughput floor failed: %s\n", zmq_strerror(zmq_errno()));
        return -1;
    }
    f->zmq_rate = (double)o->zmq_msgs / (t1 - t0);
    return 0;
}

/*  Echo thread: returns every message to its sender until an empty one.
 *  The ROUTER was bound by the main thread and handed over: a zmq socket may
 *  move between threads across a full barrier, which pthread_create is. */
static void *
s_zmq_echo(void *arg)
{
    zmq_job_t *job = arg;
    job->rc = -1;
    for (;;) {
        uint8_t ident[256];
        size_t ident_len = sizeof ident;
        uint8_t buf[S_ZMQ_BIG];
        int n = s_router_recv(job->sock, ident, &ident_len, buf, sizeof buf);
        if (n <= 0) {
            job->rc = n == 0 ? 0 : -1;
            break;
        }
        if (zmq_send(job->sock, ident, ident_len, ZMQ_SNDMORE) < 0
            || zmq_send(job->sock, buf, (size_t)n, 0) < 0) {
            break;
        }
    }
    zmq_close(job->sock);
    return NULL;
}

static int
s_ping_all(void *dealer, size_t n, size_t size, double *v)
{
    uint8_t msg[S_ZMQ_BIG];
    uint8_t back[S_ZMQ_BIG];
    memset(msg, 'p', size);
    for (size_t i = 0; i < n + 10; i++) { // the first 10 warm the connection up
        double t0 = nodes_now();
        if (zmq_send(dealer, msg, size, 0) != (int)size
            || zmq_recv(dealer, back, sizeof back, 0) != (int)size) {
            return -1;
        }
        if (i >= 10) {
            v[i - 10] = nodes_now() - t0;
        }
    }
    return 0;
}

//  Makes s (before its bind or connect) a CURVE server, or a client of k's
//  server; 0 on success.
static int
s_curve(void *s, const curve_keys_t *k, bool server)
{
    int one = 1;
    if (server) {
        return zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof one) == 0
                       && zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, k->server_sk, 40) == 0
                   ? 0
                   : -1;
    }
    return zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, k->server_pk, 40) == 0
                   && zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, k->client_pk, 40) == 0
                   && zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, k->client_sk, 40) == 0
               ? 0
               : -1;
}

//  Ping-pong round trips of size bytes; under CURVE when keys is set.
static int
s_floor_zmq_rtt(const opts_t *o, void *ctx, size_t size, const curve_keys_t *keys, lat_t *out)
{
    zmq_job_t job = { .ctx = ctx };
    if (keys) {
        //  A CURVE ROUTER must be one before it binds.
        job.sock = s_zmq_socket(ctx, ZMQ_ROUTER);
        size_t cap = sizeof job.endpoint;
        if (job.sock
            && (s_curve(job.sock, keys, true) != 0 || zmq_bind(job.sock, "tcp://127.0.0.1:*") != 0
                || zmq_getsockopt(job.sock, ZMQ_LAST_ENDPOINT, job.endpoint, &cap) != 0)) {
            zmq_close(job.sock);
            job.sock = NULL;
        }
    } else {
        job.sock = s_zmq_bind(ctx, job.endpoint, sizeof job.endpoint);
    }
    pthread_t th;
    if (!job.sock || pthread_create(&th, NULL, s_zmq_echo, &job) != 0) {
        fprintf(stderr, "bench: zmq round-trip set-up failed\n");
        if (job.sock) {
            zmq_close(job.sock);
        }
        return -1;
    }
    void *dealer = s_zmq_socket(ctx, ZMQ_DEALER);
    double *v = s_samples(o->zmq_pings);
    int rc = dealer && (!keys || s_curve(dealer, keys, false) == 0)
                     && zmq_connect(dealer, job.endpoint) == 0
                 ? 0
                 : -1;
    if (rc == 0) {
        rc = s_ping_all(dealer, o->zmq_pings, size, v);
    }
    if (dealer) {
        zmq_send(dealer, "", 0, 0); // tells the echo thread to stop
        zmq_close(dealer);
    }
    pthread_join(th, NULL);
    if (rc != 0 || job.rc != 0) {
        fprintf(stderr, "bench: zmq round-trip floor failed: %s\n", zmq_strerror(zmq_errno()));
        free(v);
        return -1;
    }
    *out = nodes_percentiles(v, o->zmq_pings);
    free(v);
    return 0;
}

static int
s_floor_zmq(const opts_t *o, floors_t *f)
{
    void *ctx = zmq_ctx_new();
    if (!ctx) {
        return -1;
    }
    int rc = s_floor_zmq_rate(o, ctx, f);
    if (rc == 0) {
        rc = s_floor_zmq_rtt(o, ctx, S_ZMQ_MSG, NULL, &f->zmq_rtt);
    }
    curve_keys_t keys;
    if (rc == 0
        && (zmq_curve_keypair(keys.server_pk, keys.server_sk) != 0
            || zmq_curve_keypair(keys.client_pk, keys.client_sk) != 0)) {
        fprintf(stderr, "bench: this libzmq has no CURVE\n");
        rc = -1;
    }
    if (rc == 0) {
        size_t size = f->env_len && f->env_len <= S_ZMQ_BIG ? f->env_len : S_ZMQ_MSG;
        rc = s_floor_zmq_rtt(o, ctx, size, &keys, &f->curve_rtt);
    }
    sodium_memzero(&keys, sizeof keys);
    zmq_ctx_term(ctx);
    return rc;
}

/* ---- Parley: latency and throughput ---- */

/*  Exactly S_TEXT_LEN bytes: "bench KIND NNNNNNN " then filler. */
static void
s_text(char *out, const char *kind, size_t i)
{
    int n = snprintf(out, S_TEXT_LEN + 1, "bench %s %07zu ", kind, i);
    size_t len = n > 0 ? (size_t)n : 0;
    memset(out + len, 'x', S_TEXT_LEN - len);
    out[S_TEXT_LEN] = '\0';
}

static int
s_send(nodes_proc_t *a, const nodes_proc_t *b, const char *text)
{
    json_t *params = json_pack("{s:s, s:s}", "peer", nodes_id(b), "text", text);
    if (!params || client_send(nodes_api(a), "send", params) != PARLEY_OK) {
        fprintf(stderr, "bench: cannot send a request to A\n");
        return -1;
    }
    return 0;
}

/*  The text of a "message" notification (borrowed from note), or NULL. */
static const char *
s_note_text(json_t *note)
{
    const char *method = json_string_value(json_object_get(note, "method"));
    if (!method || strcmp(method, "message") != 0) {
        return NULL;
    }
    return json_string_value(json_object_get(json_object_get(note, "params"), "text"));
}

/*  Whether note is the "message" notification of text. */
static bool
s_is_message(json_t *note, const char *text)
{
    const char *got = s_note_text(note);
    return got && strcmp(got, text) == 0;
}

/*  Whether note says the message with text reached delivered (or read). */
static bool
s_is_delivered(json_t *note, const char *text)
{
    const char *method = json_string_value(json_object_get(note, "method"));
    json_t *params = json_object_get(note, "params");
    const char *got = json_string_value(json_object_get(params, "text"));
    const char *state = json_string_value(json_object_get(params, "state"));
    return method && strcmp(method, "delivery") == 0 && got && strcmp(got, text) == 0 && state
           && (strcmp(state, "delivered") == 0 || strcmp(state, "read") == 0);
}

/*  Waits on a subscription (of node, for the error) for a notification
 *  about text that match says is the one. */
static int
s_wait_for(client_t *sub, const char *node, bool (*match)(json_t *, const char *), const char *text,
           int timeout_ms)
{
    double end = nodes_now() + timeout_ms / 1000.0;
    for (;;) {
        json_t *note = NULL;
        int rc = client_recv(sub, nodes_ms_left(end), &note);
        if (rc != PARLEY_OK) {
            fprintf(stderr, "bench: %s never notified \"%.20s...\" (%s)\n", node, text,
                    rc == PARLEY_ERR_STATE ? "timed out" : parley_strerror(rc));
            return -1;
        }
        bool found = match(note, text);
        json_decref(note);
        if (found) {
            return 0;
        }
    }
}

/*  Waits on B's subscription for the message with this text. */
static int
s_wait_note(client_t *sub, const char *text, int timeout_ms)
{
    return s_wait_for(sub, "B", s_is_message, text, timeout_ms);
}

/*  One DM, send -> notified; *secs gets the time it took. */
static int
s_one_dm(nodes_proc_t *a, nodes_proc_t *b, client_t *sub, const char *text, double *secs)
{
    double t0 = nodes_now();
    if (s_send(a, b, text) != 0) {
        return -1;
    }
    if (s_wait_note(sub, text, S_MSG_MS) != 0) {
        //  Only to show A's error, if it had one: the run fails either way.
        int shown = nodes_response(nodes_api(a), "send on A", 0, NULL);
        (void)shown;
        return -1;
    }
    *secs = nodes_now() - t0;
    //  A's answer (after its commit) is normally already here; read it so
    //  errors show and lines do not pile up.
    return nodes_response(nodes_api(a), "send", S_CALL_MS, NULL);
}

static int
s_latency(const opts_t *o, nodes_proc_t *a, nodes_proc_t *b, client_t *sub, parley_t *p)
{
    char text[S_TEXT_LEN + 1];
    double secs = 0;
    //  The first DMs open the session (prekey, X3DH): not what we measure.
    for (size_t i = 0; i < S_WARMUP; i++) {
        s_text(text, "warm", i);
        if (s_one_dm(a, b, sub, text, &secs) != 0) {
            return -1;
        }
    }
    double *v = s_samples(o->n_lat);
    for (size_t i = 0; i < o->n_lat; i++) {
        s_text(text, "lat", i);
        if (s_one_dm(a, b, sub, text, &v[i]) != 0) {
            free(v);
            return -1;
        }
    }
    p->dm = nodes_percentiles(v, o->n_lat);
    free(v);
    return 0;
}

/*  Waits on A's subscription for the "delivery" of the message with this
 *  text reaching delivered (or read). */
static int
s_wait_delivered(client_t *sub, const char *text, int timeout_ms)
{
    return s_wait_for(sub, "A", s_is_delivered, text, timeout_ms);
}

/*  The round trip: one DM at a time, send on A -> A notified that B's
 *  receipt came (B committed the DM before it signed the receipt, A the
 *  receipt before it notified). */
static int
s_round_trips(const opts_t *o, nodes_proc_t *a, nodes_proc_t *b, client_t *sub_a, client_t *sub_b,
              parley_t *p)
{
    char text[S_TEXT_LEN + 1];
    double *v = s_samples(o->n_lat);
    for (size_t i = 0; i < o->n_lat; i++) {
        s_text(text, "rtt", i);
        double t0 = nodes_now();
        if (s_send(a, b, text) != 0 || s_wait_delivered(sub_a, text, S_MSG_MS) != 0) {
            free(v);
            return -1;
        }
        v[i] = nodes_now() - t0;
        if (nodes_response(nodes_api(a), "send", S_CALL_MS, NULL) != 0
            || s_wait_note(sub_b, text, S_MSG_MS) != 0) {
            free(v);
            return -1;
        }
    }
    p->rtt = nodes_percentiles(v, o->n_lat);
    free(v);
    return 0;
}

/*  Bookkeeping of the throughput run. */
typedef struct {
    size_t n;          /* DMs to move */
    size_t sent;       /* requests written to A */
    size_t answered;   /* A's responses */
    size_t received;   /* distinct DMs notified on B */
    uint8_t *seen;     /* per DM: notified on B */
    double t0;         /* first send */
    double t_a;        /* A's last response */
    double t_b;        /* B's last new notification */
    double progress;   /* last time anything moved */
    size_t duplicates; /* notifications for a DM already seen */
} tput_t;

/*  Takes every line A has ready; fails on an error response. */
static int
s_drain_a(client_t *api, tput_t *t)
{
    for (;;) {
        json_t *msg = NULL;
        int rc = client_recv(api, 0, &msg);
        if (rc == PARLEY_ERR_STATE) {
            return 0; // nothing more yet
        }
        if (rc != PARLEY_OK) {
            fprintf(stderr, "bench: A's API connection failed: %s\n", parley_strerror(rc));
            return -1;
        }
        json_t *err = json_object_get(msg, "error");
        if (err) {
            const char *text = json_string_value(json_object_get(err, "message"));
            fprintf(stderr, "bench: send on A failed: %s\n", text ? text : "?");
            json_decref(msg);
            return -1;
        }
        if (json_object_get(msg, "id")) {
            t->answered++;
            t->t_a = t->progress = nodes_now();
        }
        json_decref(msg);
    }
}

/*  Counts a "bench tput NNNNNNN" notification once. */
static void
s_count_note(json_t *note, tput_t *t)
{
    const char *text = s_note_text(note);
    const char *prefix = "bench tput ";
    if (!text || strncmp(text, prefix, strlen(prefix)) != 0) {
        return;
    }
    char *end = NULL;
    unsigned long long i = strtoull(text + strlen(prefix), &end, 10);
    if (end == text + strlen(prefix) || i >= t->n) {
        return;
    }
    if (t->seen[i]) {
        t->duplicates++;
        return;
    }
    t->seen[i] = 1;
    t->received++;
    t->t_b = t->progress = nodes_now();
}

/*  Takes what B has ready, waiting at most wait_ms for the first line. */
static int
s_drain_b(client_t *sub, tput_t *t, int wait_ms)
{
    for (int wait = wait_ms;; wait = 0) {
        json_t *note = NULL;
        int rc = client_recv(sub, wait, &note);
        if (rc == PARLEY_ERR_STATE) {
            return 0;
        }
        if (rc != PARLEY_OK) {
            fprintf(stderr, "bench: B's subscription failed: %s\n", parley_strerror(rc));
            return -1;
        }
        s_count_note(note, t);
        json_decref(note);
    }
}

/*  Writes up to `burst` more requests to A. */
static int
s_send_burst(nodes_proc_t *a, const nodes_proc_t *b, tput_t *t, size_t burst)
{
    char text[S_TEXT_LEN + 1];
    for (size_t k = 0; k < burst && t->sent < t->n; k++) {
        s_text(text, "tput", t->sent);
        if (s_send(a, b, text) != 0) {
            return -1;
        }
        t->sent++;
    }
    return 0;
}

/*  Sends and reads in one loop so neither side's buffers grow without bound
 *  (a subscriber that falls 64 MiB behind is dropped by the node). */
static int
s_tput_loop(nodes_proc_t *a, nodes_proc_t *b, client_t *sub, tput_t *t)
{
    t->t0 = t->progress = nodes_now();
    while (t->answered < t->n || t->received < t->n) {
        bool all_sent = t->sent == t->n;
        if (s_send_burst(a, b, t, 64) != 0 || s_drain_a(nodes_api(a), t) != 0
            || s_drain_b(sub, t, all_sent ? 5 : 0) != 0) {
            return -1;
        }
        if (nodes_now() - t->progress > S_STALL_MS / 1000.0 || !nodes_alive(a) || !nodes_alive(b)) {
            fprintf(stderr,
                    "bench: throughput run stalled: %zu sent, %zu answered by A, %zu "
                    "received by B, nothing new for %d s\n",
                    t->sent, t->answered, t->received, S_STALL_MS / 1000);
            return -1;
        }
    }
    return 0;
}

static int
s_throughput(const opts_t *o, nodes_proc_t *a, nodes_proc_t *b, client_t *sub, parley_t *p)
{
    tput_t t;
    memset(&t, 0, sizeof t);
    t.n = o->n_tput;
    t.seen = calloc(t.n, 1);
    if (!t.seen) {
        return -1;
    }
    int rc = s_tput_loop(a, b, sub, &t);
    if (rc == 0) {
        p->e2e_rate = (double)t.n / (t.t_b - t.t0);
        p->a_rate = (double)t.n / (t.t_a - t.t0);
        p->duplicates = t.duplicates;
    }
    free(t.seen);
    return rc;
}

//  A subscribed connection to n's API, or NULL.
static client_t *
s_subscribe(const nodes_proc_t *n, const char *name)
{
    client_t *sub = NULL;
    if (client_connect(nodes_home(n), &sub) != PARLEY_OK
        || client_send(sub, "subscribe", NULL) != PARLEY_OK
        || nodes_response(sub, "subscribe", S_CALL_MS, NULL) != 0) {
        fprintf(stderr, "bench: cannot subscribe to %s\n", name);
        client_destroy(&sub);
    }
    return sub;
}

/*  Starts A, then B seeded with A; subscribes on B; waits for the link. */
static int
s_bring_up(const char *parleyd, const s_place_t where[2], nodes_proc_t **a, nodes_proc_t **b,
           client_t **sub)
{
    char seed[512];
    *a = nodes_start_seeded("A", parleyd, where[0].home, where[0].log, NULL, S_START_MS);
    if (!*a || nodes_seed(*a, S_CALL_MS, seed, sizeof seed) != 0) {
        return -1;
    }
    *b = nodes_start_seeded("B", parleyd, where[1].home, where[1].log, seed, S_START_MS);
    if (!*b) {
        return -1;
    }
    *sub = s_subscribe(*b, "B");
    return *sub ? nodes_wait_link(*a, *b, S_LINK_MS) : -1;
}

static int
s_parley(const opts_t *o, const char *parleyd, const s_place_t where[2], parley_t *p)
{
    nodes_proc_t *a = NULL;
    nodes_proc_t *b = NULL;
    client_t *sub = NULL;
    client_t *sub_a = NULL;
    int rc = s_bring_up(parleyd, where, &a, &b, &sub);
    if (rc == 0) {
        rc = s_latency(o, a, b, sub, p);
    }
    if (rc == 0) {
        sub_a = s_subscribe(a, "A");
        rc = sub_a ? s_round_trips(o, a, b, sub_a, sub, p) : -1;
    }
    client_destroy(&sub_a);
    if (rc == 0) {
        rc = s_throughput(o, a, b, sub, p);
    }
    if (rc != 0) {
        if (a) {
            nodes_show_log(a);
        }
        if (b) {
            nodes_show_log(b);
        }
    }
    client_destroy(&sub);
    nodes_destroy(&b);
    nodes_destroy(&a);
    return rc;
}

/* ---- set-up, report, main ---- */

/*  One mkdtemp root for the run; each node's home is its own mkdtemp inside
 *  it, so one removal cleans everything. */
static int
s_make_dirs(char *root, size_t cap, s_place_t where[2])
{
    snprintf(root, cap, "/tmp/parley-bench.XXXXXX");
    if (!mkdtemp(root)) {
        root[0] = '\0';
        return -1;
    }
    const char *names[2] = { "A", "B" };
    for (size_t i = 0; i < 2; i++) {
        snprintf(where[i].home, sizeof where[i].home, "%s/home-%s.XXXXXX", root, names[i]);
        snprintf(where[i].log, sizeof where[i].log, "%s/%s.log", root, names[i]);
        if (!mkdtemp(where[i].home)) {
            return -1;
        }
    }
    return 0;
}

static void
s_usage(FILE *out)
{
    fprintf(out, "usage: bench [--quick] [--n N] [--lat N]\n"
                 "Starts two parleyd (A, B) on tcp loopback in temporary homes and measures\n"
                 "DM latency and durable throughput A -> B through the local API, next to the\n"
                 "machine's floors (libsodium, SQLite, libzmq alone), in one run.\n"
                 "  --quick   small counts: finishes in seconds (a smoke test)\n"
                 "  --n N     DMs in the throughput run (default 5000; quick 1000)\n"
                 "  --lat N   DMs in the latency run (default 500; quick 100)\n");
}

static int
s_count_arg(const char *opt, const char *arg, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = arg ? strtoull(arg, &end, 10) : 0;
    if (!arg || errno || !end || *end || arg[0] == '-' || v == 0 || v > S_N_MAX) {
        fprintf(stderr, "bench: %s wants a count from 1 to %u\n", opt, S_N_MAX);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

static void
s_defaults(opts_t *o, bool quick)
{
    o->quick = quick;
    o->n_tput = quick ? 1000 : 5000;
    o->n_lat = quick ? 100 : 500;
    o->crypto_secs = quick ? 0.2 : 1.0;
    o->sql_rows = quick ? 20000 : 100000;
    o->sql_commits = quick ? 100 : 500;
    o->zmq_msgs = quick ? 200000 : 1000000;
    o->zmq_pings = quick ? 1000 : 5000;
}

/*  Returns 0, 1 for help, -1 for a usage error. */
static int
s_parse(int argc, char **argv, opts_t *o)
{
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            quick = true;
        }
    }
    s_defaults(o, quick);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return 1;
        } else if (strcmp(a, "--quick") == 0) {
            continue;
        } else if (strcmp(a, "--n") == 0 || strcmp(a, "--lat") == 0) {
            size_t *dst = strcmp(a, "--n") == 0 ? &o->n_tput : &o->n_lat;
            if (s_count_arg(a, i + 1 < argc ? argv[i + 1] : NULL, dst) != 0) {
                return -1;
            }
            i++;
        } else {
            fprintf(stderr, "bench: unknown option '%s'\n", a);
            return -1;
        }
    }
    //  Normal runs take seconds; the backstop only ends a run that hangs.
    o->budget_s = (unsigned)((quick ? 60 : 90) + o->n_tput / 50 + o->n_lat / 10);
    return 0;
}

/*  The slowest of the given stages: with A and B on different cores the
 *  pipeline can go no faster than it. *name gets which one it is. */
typedef struct {
    const char *name;
    double rate;
} stage_t;

static double
s_slowest(const stage_t *stages, size_t n, const char **name)
{
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (stages[i].rate < stages[k].rate) {
            k = i;
        }
    }
    *name = stages[k].name;
    return stages[k].rate;
}

typedef struct {
    lat_t lat;       /* crypto + one FULL commit + RTT/2 */
    lat_t curve;     /* the round trip's floor: a CURVE round trip of the envelope's size */
    double e2e_rate; /* slowest stage from A's API to B's store */
    const char *e2e_by;
    double a_rate; /* slowest stage of a durable send on A */
    const char *a_by;
} floor_sum_t;

static floor_sum_t
s_floor_sum(const floors_t *f)
{
    floor_sum_t s;
    s.curve = f->curve_rtt;
    double crypto_us = 1e6 / f->crypto_rate;
    s.lat.p50_us = crypto_us + f->sql_commit.p50_us + f->zmq_rtt.p50_us / 2;
    s.lat.p99_us = crypto_us + f->sql_commit.p99_us + f->zmq_rtt.p99_us / 2;
    const stage_t e2e[] = {
        { "seal crypto", f->seal_rate },
        { "ingest crypto", f->crypto_rate },
        { "SQLite", f->sql_rate },
        { "zmq", f->zmq_rate },
    };
    s.e2e_rate = s_slowest(e2e, sizeof e2e / sizeof e2e[0], &s.e2e_by);
    //  A answers once it has sealed and committed; it does not wait for the push.
    const stage_t a[] = {
        { "seal crypto", f->seal_rate },
        { "SQLite", f->sql_rate },
    };
    s.a_rate = s_slowest(a, sizeof a / sizeof a[0], &s.a_by);
    return s;
}

static void
s_report_parley(const opts_t *o, const floor_sum_t *fs, const parley_t *p)
{
    printf("\nParley bench%s: 2 parleyd, CURVE over tcp loopback, %ld CPUs online; "
           "%u-byte DMs\n",
           o->quick ? " (quick)" : "", sysconf(_SC_NPROCESSORS_ONLN), S_TEXT_LEN);
    printf("latency ratio = floor/Parley; throughput ratio = Parley/floor (1.00 = at the "
           "floor)\n\n");
    printf("%-46s %11s %11s %6s  %s\n", "figure", "Parley", "floor", "ratio", "floor set by");
    printf("%-46s %8.0f us %8.0f us %6.3f  %s\n", "DM latency p50, send on A -> notified on B",
           p->dm.p50_us, fs->lat.p50_us, fs->lat.p50_us / p->dm.p50_us, "sum, see below");
    printf("%-46s %8.0f us %8.0f us %6.3f  %s\n", "DM latency p99", p->dm.p99_us, fs->lat.p99_us,
           fs->lat.p99_us / p->dm.p99_us, "sum, see below");
    printf("%-46s %8.0f us %8.0f us %6.3f  %s\n", "DM + receipt round trip p50, both committed",
           p->rtt.p50_us, fs->curve.p50_us, fs->curve.p50_us / p->rtt.p50_us, "CURVE round trip");
    printf("%-46s %8.0f us %8.0f us %6.3f  %s\n", "DM + receipt round trip p99", p->rtt.p99_us,
           fs->curve.p99_us, fs->curve.p99_us / p->rtt.p99_us, "CURVE round trip");
    printf("%-46s %8.0f /s %8.0f /s %6.3f  %s\n", "DM throughput A -> B, durable at B", p->e2e_rate,
           fs->e2e_rate, p->e2e_rate / fs->e2e_rate, fs->e2e_by);
    printf("%-46s %8.0f /s %8.0f /s %6.3f  %s\n", "durable sends on A (API answers)", p->a_rate,
           fs->a_rate, p->a_rate / fs->a_rate, fs->a_by);
    if (p->duplicates) {
        printf("warning: B notified %zu DMs more than once\n", p->duplicates);
    }
}

static void
s_floor_line(const char *label, const char *value)
{
    printf("  %-58s %s\n", label, value);
}

static void
s_report_floors(const floors_t *f, const floor_sum_t *fs)
{
    char label[128];
    char value[128];
    printf("\nfloors, measured in this run, each alone (libsodium, SQLite, libzmq):\n");
    snprintf(label, sizeof label, "ingest crypto, %zu B DM: Ed25519 verify + decrypt + id",
             f->env_len);
    snprintf(value, sizeof value, "%8.0f msgs/s (%.1f us each)", f->crypto_rate,
             1e6 / f->crypto_rate);
    s_floor_line(label, value);
    snprintf(label, sizeof label, "seal crypto, %zu B DM: encrypt + Ed25519 sign + id", f->env_len);
    snprintf(value, sizeof value, "%8.0f msgs/s (%.1f us each)", f->seal_rate, 1e6 / f->seal_rate);
    s_floor_line(label, value);
    snprintf(label, sizeof label, "SQLite insert, WAL, synchronous=FULL, %u rows/txn, %u B",
             S_SQL_TXN, S_SQL_BODY);
    snprintf(value, sizeof value, "%8.0f rows/s", f->sql_rate);
    s_floor_line(label, value);
    snprintf(value, sizeof value, "p50 %.0f us, p99 %.0f us", f->sql_commit.p50_us,
             f->sql_commit.p99_us);
    s_floor_line("SQLite one-row commit, WAL, synchronous=FULL", value);
    snprintf(label, sizeof label, "zmq DEALER->ROUTER tcp loopback NULL %u B, one way", S_ZMQ_MSG);
    snprintf(value, sizeof value, "%8.0f msgs/s", f->zmq_rate);
    s_floor_line(label, value);
    snprintf(label, sizeof label, "zmq ping-pong round trip, %u B", S_ZMQ_MSG);
    snprintf(value, sizeof value, "p50 %.0f us, p99 %.0f us", f->zmq_rtt.p50_us, f->zmq_rtt.p99_us);
    s_floor_line(label, value);
    snprintf(label, sizeof label, "zmq CURVE DEALER<->ROUTER round trip, %zu B (the envelope)",
             f->env_len <= S_ZMQ_BIG ? f->env_len : (size_t)S_ZMQ_MSG);
    snprintf(value, sizeof value, "p50 %.0f us, p99 %.0f us", f->curve_rtt.p50_us,
             f->curve_rtt.p99_us);
    s_floor_line(label, value);
    snprintf(value, sizeof value, "p50 %.0f us, p99 %.0f us", fs->lat.p50_us, fs->lat.p99_us);
    s_floor_line("floor latency = ingest crypto + one FULL commit + RTT/2", value);
    printf("\ncrypto: XChaCha20-Poly1305, BLAKE2b-256; crypto and SQLite on one thread, zmq\n"
           "on two. Parley's path also seals and commits on A before it pushes, runs CURVE\n"
           "and two Unix-socket API hops; the latency floor counts none of that.\n");
}

static void
s_report(const opts_t *o, const floors_t *f, const parley_t *p)
{
    floor_sum_t fs = s_floor_sum(f);
    s_report_parley(o, &fs, p);
    s_report_floors(f, &fs);
}

static int
s_floors(const opts_t *o, const char *dir, floors_t *f)
{
    printf("bench: floors: crypto, SQLite, zmq...\n");
    fflush(stdout);
    if (s_floor_crypto(o, f) != 0 || s_floor_sqlite(o, dir, f) != 0 || s_floor_zmq(o, f) != 0) {
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    opts_t o;
    int prc = s_parse(argc, argv, &o);
    if (prc != 0) {
        s_usage(prc > 0 ? stdout : stderr);
        return prc > 0 ? 0 : 2;
    }
    char parleyd[PATH_MAX];
    if (sodium_init() < 0 || nodes_find_sibling(argv[0], "parleyd", parleyd, sizeof parleyd) != 0) {
        return 1;
    }
    char root[64]; // "/tmp/parley-bench.XXXXXX": short, so every path built on it fits
    s_place_t where[2];
    if (s_make_dirs(root, sizeof root, where) != 0) {
        fprintf(stderr, "bench: cannot create temporary directories under /tmp\n");
        nodes_rm_tree(root);
        return 1;
    }
    s_arm_backstop(o.budget_s, root);
    floors_t f;
    parley_t p;
    memset(&f, 0, sizeof f);
    memset(&p, 0, sizeof p);
    //  Floors first, while no node runs, so they have the machine to themselves.
    int rc = s_floors(&o, root, &f);
    if (rc == 0) {
        printf("bench: Parley: %zu DMs one at a time, then %zu pipelined...\n", o.n_lat, o.n_tput);
        fflush(stdout);
        rc = s_parley(&o, parleyd, where, &p);
    }
    alarm(0);
    nodes_rm_tree(root);
    if (rc != 0) {
        fprintf(stderr, "bench: FAIL\n");
        return 1;
    }
    s_report(&o, &f, &p);
    return 0;
}
