/*  tools/bench/sync_nodes.c — reconciliation and relay transfer between real
 *  parleyd processes on loopback (build/bench_sync).
 *
 *  1. Builds two logs of the same N envelopes in one scope (signed by
 *     other identities, as a relay holds them, S_PER_AUTHOR each at most so
 *     that no author passes a relay's quota): R has all N, B lacks the
 *     1,000 newest. Both run as relays; B dials R.
 *     - the first round: B catches up on the 1,000 recent (d = 1,000);
 *     - the next periodic round: d = 0.
 *     Figures from the nodes' own counters (`status .sync.last_round`):
 *     round time, messages both ways, bytes of RECONCILE and WANT frames;
 *     CPU of each process over the round from /proc.
 *  2. A fresh relay F dials R and pulls all N: envelopes/s, beside the
 *     single-core verify+store floors of shared/notes/limits.md.
 *  3. Two relays holding the same 1,000 scopes (10 envelopes each) meet:
 *     bytes and time of their in-sync check (one digest each way).
 *
 *  usage: bench_sync [--n N] [--keep]    (default N = 1,000,000; ~6 min)
 */
#include "../../proto/envelope.h"
#include "../../proto/identity.h"
#include "../../proto/limits.h"
#include "../../store/store.h"
#include "nodes.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define S_RECENT 1000u
#define S_SCOPES 1000u
#define S_PER_SCOPE 10u
#define S_PER_AUTHOR 100000u /* well inside DELIVERY_RELAY_PER_AUTHOR and its bytes */
#define S_BODY 164u          /* a DM body of one 64-byte padding bucket: 68 + 64 + 16 + 16 pad */
#define S_MAX_NODES 8
#define S_START_MS 60000 /* a node has this long to come up (its log may be large) */
#define S_CALL_MS 60000  /* an API call has this long to answer */

static const char *s_build = "build";
static char s_root[256];
static nodes_proc_t *s_nodes[S_MAX_NODES]; /* the nodes running, for s_stop_all */
static size_t s_n_nodes;

static void
s_stop_all(void)
{
    for (size_t i = 0; i < s_n_nodes; i++) {
        nodes_destroy(&s_nodes[i]);
    }
    s_n_nodes = 0;
}

static void
s_on_signal(int sig)
{
    nodes_kill_all();
    _exit(sig == SIGALRM ? 3 : 130);
}

static int
s_fail(const char *what)
{
    fprintf(stderr, "bench_sync: FAIL: %s (files in %s)\n", what, s_root);
    s_stop_all();
    return 1;
}

static void
s_path(char *out, size_t cap, const char *home, const char *file)
{
    snprintf(out, cap, "%s/%s%s%s", s_root, home, file ? "/" : "", file ? file : "");
}

/* ---- building logs ---- */

typedef struct {
    uint8_t pk[32];
    uint8_t sk[64];
    uint8_t scope[32];
    uint64_t seq;
} s_author_t;

//  One signed envelope with a random body, at time ts.
static int
s_make(s_author_t *a, uint64_t ts, uint8_t *out, size_t *len, uint8_t id[32])
{
    uint8_t body[S_BODY];
    randombytes_buf(body, sizeof body);
    envelope_t env;
    memset(&env, 0, sizeof env);
    env.version = PARLEY_ENVELOPE_VERSION;
    env.kind = ENVELOPE_KIND_DM;
    memcpy(env.author, a->pk, 32);
    memcpy(env.scope, a->scope, 32);
    env.seq = ++a->seq;
    env.ts_ms = ts;
    env.body = body;
    env.body_len = sizeof body;
    if (envelope_seal(&env, a->sk, out, PARLEY_ENVELOPE_MAX, len) != PARLEY_OK) {
        return -1;
    }
    envelope_t dec;
    if (envelope_decode(out, *len, &dec) != PARLEY_OK) {
        return -1;
    }
    envelope_id(&dec, id);
    return 0;
}

static int
s_put(store_t *st, const uint8_t *bytes, size_t len, const uint8_t id[32])
{
    envelope_t env;
    if (envelope_decode(bytes, len, &env) != PARLEY_OK) {
        return -1;
    }
    int rc = store_envelope_put(st, &env, id, nodes_wall_ms());
    return rc == PARLEY_OK || rc == PARLEY_ERR_DUPLICATE ? 0 : -1;
}

static store_t *
s_open_home(const char *home)
{
    char dir[512], db[512];
    s_path(dir, sizeof dir, home, NULL);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return NULL;
    }
    s_path(db, sizeof db, home, "parley.db");
    store_t *st = NULL;
    return store_open(db, &st) == PARLEY_OK ? st : NULL;
}

//  Writes n envelopes, authored in turn by a[0 .. n_a), into each of the
//  given stores; store k holds those whose index i is below upto[k].
static int
s_fill(s_author_t *a, size_t n_a, size_t n, uint64_t ts0, store_t **stores, const size_t *upto,
       size_t n_st)
{
    uint8_t *buf = malloc(PARLEY_ENVELOPE_MAX);
    if (!buf) {
        return -1;
    }
    int rc = 0;
    for (size_t k = 0; k < n_st && rc == 0; k++) {
        rc = store_begin(stores[k]);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        size_t len = 0;
        uint8_t id[32];
        rc = s_make(&a[i % n_a], ts0 + i, buf, &len, id);
        for (size_t k = 0; k < n_st && rc == 0; k++) {
            if (i < upto[k]) {
                rc = s_put(stores[k], buf, len, id);
            }
        }
        if (rc == 0 && (i + 1) % 1000 == 0) {
            for (size_t k = 0; k < n_st && rc == 0; k++) {
                rc = store_commit(stores[k]);
                if (rc == 0) {
                    rc = store_begin(stores[k]);
                }
            }
        }
    }
    for (size_t k = 0; k < n_st; k++) {
        if (store_in_txn(stores[k]) && store_commit(stores[k]) != PARLEY_OK) {
            rc = -1;
        }
    }
    free(buf);
    return rc;
}

static void
s_author(s_author_t *a)
{
    crypto_sign_keypair(a->pk, a->sk);
    randombytes_buf(a->scope, 32);
    a->seq = 0;
}

/* ---- nodes ---- */

//  A relay on loopback, home s_root/HOME, dialling SEED_FROM if given; waits
//  until its API answers. NULL (message printed) when it did not come up.
static nodes_proc_t *
s_start(const char *home, nodes_proc_t *seed_from)
{
    char bin[512], dir[512], log[512], seed[700] = "";
    snprintf(bin, sizeof bin, "%s/parleyd", s_build);
    s_path(dir, sizeof dir, home, NULL);
    s_path(log, sizeof log, home, "parleyd.log");
    if (s_n_nodes == S_MAX_NODES
        || (seed_from && nodes_seed(seed_from, S_CALL_MS, seed, sizeof seed) != 0)) {
        return NULL;
    }
    const char *args[] = {
        "--listen", "tcp://127.0.0.1:*",       "--no-mdns", "--no-local", "--relay", "--sync-ms",
        "2000",     seed[0] ? "--seed" : NULL, seed,        NULL
    };
    nodes_proc_t *n = nodes_start(home, bin, dir, log, args, S_START_MS);
    if (n) {
        s_nodes[s_n_nodes++] = n;
    }
    return n;
}

//  The node's `status`; NULL when it does not answer. Caller owns it.
static json_t *
s_status(nodes_proc_t *n)
{
    json_t *j = NULL;
    return nodes_call(n, "status", NULL, S_CALL_MS, &j) == 0 ? j : NULL;
}

static double
s_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    //  After ") ": state, then fields 4..; utime and stime are fields 14, 15.
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) {
        return 0;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

//  The node's log count, and when it was counted (status.log.age_ms: a
//  big log is not counted again at every call).
static long long
s_envelopes(nodes_proc_t *node, double *at)
{
    json_t *j = s_status(node);
    *at = nodes_now();
    long long n = nodes_json_int(j, "log", "envelopes", NULL);
    long long age = nodes_json_int(j, "log", "age_ms", NULL);
    json_decref(j);
    *at -= age > 0 ? (double)age / 1000.0 : 0;
    return n;
}

//  Waits until the node holds want envelopes; *done (if given) gets when
//  the count that showed it was made.
static int
s_wait_envelopes(nodes_proc_t *n, long long want, double limit, double *done)
{
    double t0 = nodes_now();
    while (nodes_now() - t0 < limit) {
        double at = 0;
        if (s_envelopes(n, &at) >= want) {
            if (done) {
                *done = at;
            }
            return 0;
        }
        usleep(100000);
    }
    return -1;
}

//  A node's last round, as its status tells it.
typedef struct {
    long long ended; /* rounds ended so far */
    long long ms, msgs, bytes;
} s_round_t;

static s_round_t
s_round(nodes_proc_t *n)
{
    json_t *j = s_status(n);
    s_round_t r = { nodes_json_int(j, "sync", "rounds_ended", NULL),
                    nodes_json_int(j, "sync", "last_round", "ms"),
                    nodes_json_int(j, "sync", "last_round", "messages"),
                    nodes_json_int(j, "sync", "last_round", "bytes") };
    json_decref(j);
    return r;
}

//  Polls n until a round ends after the ended-th; *out gets it.
static int
s_wait_round(nodes_proc_t *n, long long ended, double limit, s_round_t *out)
{
    double t0 = nodes_now();
    while (nodes_now() - t0 < limit) {
        *out = s_round(n);
        if (out->ended > ended) {
            return 0;
        }
        usleep(20000);
    }
    return -1;
}

//  Prints a round beside a reference.
static void
s_round_line(const char *what, const s_round_t *r, double cpu_a, double cpu_b, double ref_rt,
             double ref_bytes)
{
    long long ms = r->ms, msgs = r->msgs, bytes = r->bytes;
    double rt = (double)msgs / 2.0;
    printf("  %-34s %5.1f RT %9lld B %6lld ms  CPU %6.0f / %6.0f ms   ref %g RT %g B  "
           "(RT ratio %.2f, bytes ratio %.1f)\n",
           what, rt, bytes, ms, cpu_a * 1000, cpu_b * 1000, ref_rt, ref_bytes,
           rt > 0 ? ref_rt / rt : 0, bytes > 0 ? ref_bytes / (double)bytes : 0);
}

int
main(int argc, char **argv)
{
    size_t n = 1000000;
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--n") == 0 && i + 1 < argc) {
            n = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        } else {
            fprintf(stderr, "usage: bench_sync [--n N] [--keep]\n");
            return 2;
        }
    }
    if (n < 2 * S_RECENT || sodium_init() < 0) {
        fprintf(stderr, "bench_sync: --n must be at least %u\n", 2 * S_RECENT);
        return 2;
    }
    const char *b = getenv("BUILD");
    s_build = b && *b ? b : "build";
    snprintf(s_root, sizeof s_root, "/tmp/parley-bench-sync.XXXXXX");
    if (!mkdtemp(s_root)) {
        return 1;
    }
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    signal(SIGALRM, s_on_signal);
    alarm(3600);
    printf("bench_sync: real parleyd relays on loopback, n = %zu envelopes in one scope, by %zu "
           "author(s)\n",
           n, (n + S_PER_AUTHOR - 1) / S_PER_AUTHOR);

    /* 1. R holds n, B lacks the newest 1,000. */
    size_t n_a = (n + S_PER_AUTHOR - 1) / S_PER_AUTHOR;
    s_author_t *a = calloc(n_a, sizeof *a);
    if (!a) {
        return s_fail("out of memory");
    }
    for (size_t i = 0; i < n_a; i++) {
        s_author(&a[i]);
        memcpy(a[i].scope, a[0].scope, 32);
    }
    store_t *st[2] = { s_open_home("r"), s_open_home("b") };
    if (!st[0] || !st[1]) {
        return s_fail("cannot create the logs");
    }
    size_t upto[2] = { n, n - S_RECENT };
    uint64_t ts0 = nodes_wall_ms() - n - 60000; // one per ms, ending a minute ago
    double t0 = nodes_now();
    int filled = s_fill(a, n_a, n, ts0, st, upto, 2);
    free(a);
    if (filled != 0) {
        return s_fail("cannot fill the logs");
    }
    store_destroy(&st[0]);
    store_destroy(&st[1]);
    printf("  built both logs (sign + insert) in %.1f s\n", nodes_now() - t0);

    nodes_proc_t *r = s_start("r", NULL);
    if (!r) {
        return s_fail("r did not start");
    }
    nodes_proc_t *bn = s_start("b", r);
    if (!bn) {
        return s_fail("b did not start");
    }
    double cr = s_cpu_s(nodes_pid(r)), cb = s_cpu_s(nodes_pid(bn));
    //  Its first round is the one that brings the 1,000 recent: read as it
    //  ends, before the next replaces it in status.
    s_round_t first;
    if (s_wait_round(bn, 0, 300, &first) != 0
        || s_wait_envelopes(bn, (long long)n, 300, NULL) != 0) {
        return s_fail("b never caught up with the 1,000 recent");
    }
    usleep(500000);
    double cr1 = s_cpu_s(nodes_pid(r)), cb1 = s_cpu_s(nodes_pid(bn));
    printf("reconciliation between the two nodes (as the nodes count it):\n");
    s_round_line("d = 1,000 recent (incl. transfer)", &first, cb1 - cb, cr1 - cr, 3, 34000);
    //  The next periodic round finds nothing.
    s_round_t next = s_round(bn);
    cr = s_cpu_s(nodes_pid(r));
    cb = s_cpu_s(nodes_pid(bn));
    if (s_wait_round(bn, next.ended, 30, &next) != 0) {
        return s_fail("no second round");
    }
    cr1 = s_cpu_s(nodes_pid(r));
    cb1 = s_cpu_s(nodes_pid(bn));
    s_round_line("d = 0", &next, cb1 - cb, cr1 - cr, 1, 340);
    printf("  (CPU columns: whole processes over the wait, B / R, including status polling;\n"
           "   the engine alone is measured by build/bench_sync_engine)\n");

    /* 2. A fresh relay pulls everything from R (timed from its start). */
    store_t *fresh = s_open_home("f");
    store_destroy(&fresh);
    t0 = nodes_now();
    cr = s_cpu_s(nodes_pid(r));
    nodes_proc_t *f = s_start("f", r);
    if (!f) {
        return s_fail("f did not start");
    }
    double cf = 0, done = 0;
    if (s_wait_envelopes(f, (long long)n, 3000, &done) != 0) {
        return s_fail("f never pulled everything");
    }
    double dt = done - t0;
    double rate = (double)n / dt;
    printf("pull: a fresh relay takes all %zu from R in %.1f s = %.0f envelopes/s "
           "(CPU: F %.1f s, R %.1f s)\n",
           n, dt, rate, s_cpu_s(nodes_pid(f)) - cf, s_cpu_s(nodes_pid(r)) - cr);
    printf("  floors (shared/notes/limits.md, one core): verify+store at 1M rows 7.3k/s -> "
           "ratio %.2f; fresh log 11k/s -> ratio %.2f\n",
           rate / 7300.0, rate / 11000.0);
    s_stop_all();

    /* 3. Two relays with the same 1,000 scopes. */
    store_t *sc[2] = { s_open_home("s1"), s_open_home("s2") };
    if (!sc[0] || !sc[1]) {
        return s_fail("cannot create the scope logs");
    }
    size_t all[2] = { S_PER_SCOPE, S_PER_SCOPE };
    for (size_t i = 0; i < S_SCOPES; i++) {
        s_author_t x;
        s_author(&x);
        if (s_fill(&x, 1, S_PER_SCOPE, ts0, sc, all, 2) != 0) {
            return s_fail("cannot fill the scope logs");
        }
    }
    store_destroy(&sc[0]);
    store_destroy(&sc[1]);
    nodes_proc_t *s1 = s_start("s1", NULL);
    if (!s1) {
        return s_fail("s1 did not start");
    }
    nodes_proc_t *s2 = s_start("s2", s1);
    if (!s2) {
        return s_fail("s2 did not start");
    }
    s_round_t second;
    if (s_wait_round(s2, 1, 60, &second) != 0) {
        return s_fail("the relays never synced");
    }
    printf("relays with %u scopes in sync (the opening is one digest over all scopes):\n",
           S_SCOPES);
    s_round_line("in-sync check (digest)", &second, 0, 0, 1, 340.0 * S_SCOPES);
    printf("  (reference: Negentropy's in-sync round for one scope, ~340 B, times %u scopes)\n",
           S_SCOPES);
    s_stop_all();
    if (!keep) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_root);
        if (system(cmd) != 0) {
            fprintf(stderr, "bench_sync: could not remove %s\n", s_root);
        }
    } else {
        printf("files kept in %s\n", s_root);
    }
    return 0;
}
