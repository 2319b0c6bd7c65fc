/*  tools/bench/network.c — private networks between real parleyd processes
 *  on loopback (build/bench_network): the figures issue 10 asks for.
 *
 *  1. Join: a founder F creates a network; 9 nodes join one after another,
 *     each with an invite F makes (invite.create, then join). Per joiner:
 *     the time from the join call until its network.show says mode
 *     "network", role member, all members so far, and its peers show every
 *     other member online (and, apart, until it is a member at all).
 *  2. Removal, all 10 online: F removes R; the time until every other node's
 *     network.show no longer lists R and R's link is offline there. Then
 *     what R itself shows (nobody tells it: its links are cut first).
 *  3. Removal with a member offline: M stops, F removes R2, M restarts; the
 *     time from M's restart until M no longer lists R2.
 *  4. Roster sync for 1,000 members: a founder whose log already holds a
 *     roster of 1,000 members (CREATE and 999 ADD events, written into its
 *     store before it starts), one invite, one fresh joiner: RECONCILE/WANT
 *     bytes both ways, the ENVELOPES payload, rounds and the time until the
 *     joiner lists 1,001 members; then one more periodic round (in sync).
 *
 *  Floors measured in the same run: a bare `status` call's round trip, and
 *  the reconciliation round time the nodes report (status.sync.last_round).
 *  Times come from polling the API every S_POLL_MS, so each carries up to
 *  that much of slack.
 *
 *  Discovery stays among the bench's nodes: --no-mdns, and host-local
 *  discovery in a runtime directory of the bench's own (default), or with
 *  --no-local none at all (joiners reach the network through the invite's
 *  endpoints and the rest through peer exchange).
 *
 *  usage: bench_network [--no-local] [--keep]    (~2 min)
 */
#include "../../node/home.h"
#include "../../proto/b32.h"
#include "../../proto/envelope.h"
#include "../../proto/identity.h"
#include "../../proto/limits.h"
#include "../../proto/roster.h"
#include "../../store/store.h"
#include "nodes.h"

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

#define S_NET 10u            /* nodes of the network of figures 1-3 */
#define S_BIG 1000u          /* members of the roster of figure 4 */
#define S_POLL_MS 20         /* polling period of the small network */
#define S_POLL_BIG_MS 50     /* polling period with 1,001 members (a 300 KB answer) */
#define S_START_MS 30000     /* a node has this long to come up */
#define S_CALL_MS 30000      /* an API call has this long to answer */
#define S_WAIT_MS 60000      /* a figure has this long to settle */
#define S_RT_SAMPLES 50      /* status round trips for the floor */
#define S_BIG_SYNC_MS "5000" /* figure 4's round period: a second round comes soon */

static const char *s_prog = "bench_network";
static char s_root[256];
static char s_parleyd[512];
static bool s_local = true;
static nodes_group_t s_nodes; /* every node running, stopped by s_fail */

static void
s_on_signal(int sig)
{
    nodes_kill_all();
    _exit(sig == SIGALRM ? 3 : 130);
}

static int
s_fail(const char *what)
{
    fprintf(stderr, "%s: FAIL: %s (files in %s)\n", s_prog, what, s_root);
    nodes_group_stop_all(&s_nodes);
    return 1;
}

/* ---- nodes ---- */

//  Starts node NAME on home s_root/NAME (made if missing), listening on
//  loopback; sync_ms ("" for the default) sets its round period. Tracked
//  in s_nodes. NULL (message printed) when it did not come up.
static nodes_proc_t *
s_start(const char *name, const char *sync_ms)
{
    const char *args[8] = { "--listen", "tcp://127.0.0.1:*", "--no-mdns" };
    size_t n = 3;
    if (!s_local) {
        args[n++] = "--no-local";
    }
    if (sync_ms[0]) {
        args[n++] = "--sync-ms";
        args[n++] = sync_ms;
    }
    args[n] = NULL;
    return nodes_group_start(&s_nodes, s_root, name, s_parleyd, args, S_START_MS);
}

//  A call's result (owned), or NULL (message printed).
static json_t *
s_call(nodes_proc_t *n, const char *method, json_t *params)
{
    return nodes_ask(n, method, params, S_CALL_MS);
}

//  Whether a network.show answer lists id among its members.
static bool
s_lists(const json_t *show, const char *id)
{
    const json_t *members = json_object_get(show, "members");
    for (size_t i = 0; i < json_array_size(members); i++) {
        const char *m = json_string_value(json_object_get(json_array_get(members, i), "id"));
        if (m && strcmp(m, id) == 0) {
            return true;
        }
    }
    return false;
}

static bool
s_is(const json_t *j, const char *key, const char *value)
{
    const char *v = json_string_value(json_object_get(j, key));
    return v && strcmp(v, value) == 0;
}

//  Whether a peers answer shows id online.
static bool
s_online_in(const json_t *peers, const char *id)
{
    for (size_t i = 0; i < json_array_size(peers); i++) {
        const json_t *p = json_array_get(peers, i);
        const char *pid = json_string_value(json_object_get(p, "id"));
        if (pid && strcmp(pid, id) == 0 && json_is_true(json_object_get(p, "online"))) {
            return true;
        }
    }
    return false;
}

//  How many of the n nodes others[] (skipping self and NULL: stopped) self's
//  peers show online; -1 when the call fails.
static int
s_count_online(nodes_proc_t *self, nodes_proc_t *const *others, size_t n)
{
    json_t *peers = s_call(self, "peers", NULL);
    if (!peers) {
        return -1;
    }
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (others[i] && others[i] != self && s_online_in(peers, nodes_id(others[i]))) {
            count++;
        }
    }
    json_decref(peers);
    return count;
}

//  Sorts v and prints "min / median / max" in ms.
static void
s_print_spread(const char *what, double *v, size_t n, const char *beside)
{
    double median = nodes_median(v, n); // sorts v: v[0] is the least, v[n - 1] the greatest
    printf("  %-44s min %7.0f  median %7.0f  max %7.0f ms%s%s\n", what, v[0] * 1e3, median * 1e3,
           v[n - 1] * 1e3, beside[0] ? "   " : "", beside);
}

//  The node's status.sync.last_round.ms, -1 when unknown.
static long long
s_last_round_ms(nodes_proc_t *n)
{
    json_t *st = s_call(n, "status", NULL);
    long long ms = nodes_json_int(st, "sync", "last_round", "ms");
    json_decref(st);
    return ms;
}

//  F makes a one-use invite labelled label; the code into out.
static int
s_invite(nodes_proc_t *f, const char *label, char *out, size_t cap)
{
    json_t *r = s_call(f, "invite.create", json_pack("{s:s}", "label", label));
    const char *code = json_string_value(json_object_get(r, "code"));
    int len = code ? snprintf(out, cap, "%s", code) : -1;
    json_decref(r);
    return len > 0 && (size_t)len < cap ? 0 : -1;
}

/* ---- figure 1: nine joins ---- */

//  J joins with code; waits until J is a member listing the k members of
//  net[] and sees every one of them online. *t_member, *t_all: seconds
//  from the join call.
static int
s_join_one(nodes_proc_t *j, const char *code, const char *name, nodes_proc_t *const *net, size_t k,
           double *t_member, double *t_all)
{
    double t0 = nodes_now();
    json_t *r = s_call(j, "join", json_pack("{s:s, s:s}", "code", code, "name", name));
    if (!r) {
        return -1;
    }
    json_decref(r);
    *t_member = -1;
    for (;;) {
        double now = nodes_now();
        if (now - t0 > S_WAIT_MS / 1000.0 || !nodes_alive(j)) {
            return -1;
        }
        json_t *show = s_call(j, "network.show", NULL);
        bool member = s_is(show, "mode", "network") && s_is(show, "role", "member");
        bool all = member && json_array_size(json_object_get(show, "members")) == k + 1;
        for (size_t i = 0; all && i < k; i++) {
            all = s_lists(show, nodes_id(net[i]));
        }
        json_decref(show);
        if (member && *t_member < 0) {
            *t_member = now - t0;
        }
        if (all && s_count_online(j, net, k) == (int)k) {
            *t_all = nodes_now() - t0;
            return 0;
        }
        nodes_sleep_ms(S_POLL_MS);
    }
}

/* ---- figure 2 and 3: removals ---- */

//  Waits until each node of on[] (n of them) no longer lists gone and has
//  no online link to it; per node the seconds from t0 into t[]. Returns the
//  number that got there within S_WAIT_MS.
static size_t
s_wait_gone(nodes_proc_t *const *on, size_t n, const char *gone, double t0, double *t)
{
    bool done[S_NET] = { false };
    size_t n_done = 0;
    while (n_done < n && nodes_now() - t0 < S_WAIT_MS / 1000.0) {
        for (size_t i = 0; i < n; i++) {
            if (done[i]) {
                continue;
            }
            json_t *show = s_call(on[i], "network.show", NULL);
            json_t *peers = show ? s_call(on[i], "peers", NULL) : NULL;
            if (show && peers && !s_lists(show, gone) && !s_online_in(peers, gone)) {
                done[i] = true;
                t[i] = nodes_now() - t0;
                n_done++;
            }
            json_decref(show);
            json_decref(peers);
        }
        nodes_sleep_ms(S_POLL_MS);
    }
    return n_done;
}

//  What node shows of itself and the network, one line.
static void
s_print_view(const char *label, nodes_proc_t *node, nodes_proc_t *const *net, size_t n)
{
    json_t *show = s_call(node, "network.show", NULL);
    int online = s_count_online(node, net, n);
    size_t running = 0;
    for (size_t i = 0; i < n; i++) {
        running += net[i] && net[i] != node;
    }
    const char *mode = json_string_value(json_object_get(show, "mode"));
    const char *role = json_string_value(json_object_get(show, "role"));
    printf("  %s: mode %s, role %s, %zu members listed, epoch %lld, %d of the %zu other running"
           " nodes online\n",
           label, mode ? mode : "?", role ? role : "-",
           json_array_size(json_object_get(show, "members")),
           nodes_json_int(show, "epoch", NULL, NULL), online, running);
    json_decref(show);
}

/* ---- figure 4: a founder with 1,000 members in its log ---- */

//  One network event by (pk, sk) with parents, stored; its id into id_out
//  and its size added to *bytes.
static int
s_put_event(store_t *st, const uint8_t pk[32], const uint8_t sk[64], const uint8_t netid[32],
            uint64_t seq, uint64_t ts, const roster_event_t *ev, uint8_t id_out[32], size_t *bytes)
{
    uint8_t body[ROSTER_BODY_MAX];
    size_t body_len = 0;
    if (roster_event_encode(ev, body, sizeof body, &body_len) != PARLEY_OK) {
        return -1;
    }
    envelope_t env;
    memset(&env, 0, sizeof env);
    env.version = PARLEY_ENVELOPE_VERSION;
    env.kind = ENVELOPE_KIND_NET;
    memcpy(env.author, pk, 32);
    memcpy(env.scope, netid, 32);
    env.seq = seq;
    env.ts_ms = ts;
    env.body = body;
    env.body_len = body_len;
    uint8_t buf[PARLEY_ENVELOPE_MAX];
    size_t len = 0;
    envelope_t dec;
    if (envelope_seal(&env, sk, buf, sizeof buf, &len) != PARLEY_OK
        || envelope_decode(buf, len, &dec) != PARLEY_OK) {
        return -1;
    }
    envelope_id(&dec, id_out);
    *bytes += len;
    return store_envelope_put(st, &dec, id_out, nodes_wall_ms()) == PARLEY_OK ? 0 : -1;
}

//  Makes home NAME: a founder's identity, and a log holding the CREATE of a
//  network and S_BIG - 1 ADDs (a chain: each names the one before, as one
//  admin adding members one after another writes them), the network row.
//  *bytes: the envelopes' total size.
static int
s_build_big(const char *name, size_t *bytes)
{
    char dir[512], db[512];
    if (nodes_path(dir, sizeof dir, s_root, name, NULL) != 0
        || nodes_path(db, sizeof db, s_root, name, "parley.db") != 0) {
        return -1;
    }
    if (mkdir(dir, 0700) != 0) {
        return -1;
    }
    identity_t *id = identity_new();
    store_t *st = NULL;
    if (!id || home_identity_create(dir, id, NULL, 0) != PARLEY_OK
        || store_open(db, &st) != PARLEY_OK) {
        identity_destroy(&id);
        return -1;
    }
    const uint8_t *pk = identity_ed_pk(id);
    const uint8_t *sk = identity_ed_sk(id);
    roster_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ROSTER_CREATE;
    randombytes_buf(ev.salt, sizeof ev.salt);
    ev.text = (const uint8_t *)"bench";
    ev.text_len = 5;
    ev.text2 = (const uint8_t *)"founder";
    ev.text2_len = 7;
    uint8_t netid[32], prev[32];
    roster_network_id(pk, ev.salt, netid);
    uint64_t ts0 = nodes_wall_ms() - 60000; // a minute ago, one event per ms
    *bytes = 0;
    int rc = store_begin(st) == PARLEY_OK ? 0 : -1;
    if (rc == 0) {
        rc = s_put_event(st, pk, sk, netid, 1, ts0, &ev, prev, bytes);
    }
    for (uint64_t i = 1; i < S_BIG && rc == 0; i++) {
        char mname[16];
        uint8_t mpk[32], msk[64];
        crypto_sign_keypair(mpk, msk); // only the key is needed: no node runs it
        sodium_memzero(msk, sizeof msk);
        int len = snprintf(mname, sizeof mname, "m%04" PRIu64, i);
        memset(&ev, 0, sizeof ev);
        ev.type = ROSTER_ADD;
        ev.n_parents = 1;
        ev.parents = prev;
        memcpy(ev.key, mpk, 32);
        ev.role = ROSTER_ROLE_MEMBER;
        ev.text = (const uint8_t *)mname;
        ev.text_len = (size_t)len;
        uint8_t eid[32];
        rc = s_put_event(st, pk, sk, netid, i + 1, ts0 + i, &ev, eid, bytes);
        memcpy(prev, eid, 32);
    }
    store_network_t row = { .state = STORE_NET_MEMBER, .since_ms = ts0 };
    memcpy(row.id, netid, 32);
    if (rc == 0 && store_network_set(st, &row) != PARLEY_OK) {
        rc = -1;
    }
    if (store_in_txn(st) && (rc != 0 || store_commit(st) != PARLEY_OK)) {
        rc = -1;
    }
    store_destroy(&st);
    identity_destroy(&id);
    return rc;
}

typedef struct {
    const uint8_t *skip; /* author whose envelopes are not counted (the joiner) */
    size_t n;            /* envelopes counted */
    size_t bytes;        /* their total size */
} s_sum_t;

static int
s_sum_one(uint64_t ts, const uint8_t id[32], const uint8_t *bytes, size_t len, void *arg)
{
    (void)ts;
    (void)id;
    s_sum_t *sum = arg;
    envelope_t env;
    if (envelope_decode(bytes, len, &env) == PARLEY_OK && memcmp(env.author, sum->skip, 32) != 0) {
        sum->n++;
        sum->bytes += len;
    }
    return 0;
}

//  The envelopes of scope netid in home NAME's log (its node stopped) not
//  authored by skip: how many and their bytes.
static int
s_sum_scope(const char *name, const uint8_t netid[32], const uint8_t skip[32], s_sum_t *sum)
{
    char db[512];
    if (nodes_path(db, sizeof db, s_root, name, "parley.db") != 0) {
        return -1;
    }
    store_t *st = NULL;
    if (store_open(db, &st) != PARLEY_OK) {
        return -1;
    }
    uint8_t lo[32], hi[32];
    memset(lo, 0x00, sizeof lo);
    memset(hi, 0xFF, sizeof hi);
    memset(sum, 0, sizeof *sum);
    sum->skip = skip;
    size_t n = 0;
    int rc = store_envelope_range(st, netid, 0, lo, INT64_MAX, hi, ROSTER_EVENTS_MAX, s_sum_one,
                                  sum, &n);
    store_destroy(&st);
    return rc == PARLEY_OK ? 0 : -1;
}

//  The joiner's sync counters.
typedef struct {
    long long bytes_in, bytes_out, msgs_in, msgs_out, rounds_ended, rounds_started;
} s_sync_t;

static int
s_sync(nodes_proc_t *n, s_sync_t *out)
{
    json_t *st = s_call(n, "status", NULL);
    if (!st) {
        return -1;
    }
    out->bytes_in = nodes_json_int(st, "sync", "bytes_in", NULL);
    out->bytes_out = nodes_json_int(st, "sync", "bytes_out", NULL);
    out->msgs_in = nodes_json_int(st, "sync", "messages_in", NULL);
    out->msgs_out = nodes_json_int(st, "sync", "messages_out", NULL);
    out->rounds_ended = nodes_json_int(st, "sync", "rounds_ended", NULL);
    out->rounds_started = nodes_json_int(st, "sync", "rounds_started", NULL);
    json_decref(st);
    return 0;
}

static int
s_figure4(void)
{
    printf("4. roster sync: a founder with %u members in its log, one fresh joiner\n", S_BIG);
    size_t built = 0;
    double t0 = nodes_now();
    if (s_build_big("big", &built) != 0) {
        return s_fail("cannot build the founder's roster");
    }
    printf("  built the founder's log: CREATE + %u ADD = %u events, %zu B of envelopes "
           "(%.1f s)\n",
           S_BIG - 1, S_BIG, built, nodes_now() - t0);
    nodes_proc_t *big = s_start("big", S_BIG_SYNC_MS);
    nodes_proc_t *x = big ? s_start("x", S_BIG_SYNC_MS) : NULL;
    if (!big || !x) {
        return s_fail("figure 4: a node did not start");
    }
    json_t *show = s_call(big, "network.show", NULL);
    size_t n0 = json_array_size(json_object_get(show, "members"));
    char netid_s[PARLEY_NODE_ID_STRLEN + 1] = "";
    const char *nid = json_string_value(json_object_get(show, "id"));
    snprintf(netid_s, sizeof netid_s, "%s", nid ? nid : "");
    json_decref(show);
    if (n0 != S_BIG) {
        fprintf(stderr, "%s: the founder lists %zu members, not %u\n", s_prog, n0, S_BIG);
        return s_fail("figure 4: the founder did not fold the roster it was given");
    }
    char code[1024];
    s_sync_t a, b, c;
    if (s_invite(big, "x", code, sizeof code) != 0 || s_sync(x, &a) != 0) {
        return s_fail("figure 4: no invite");
    }
    t0 = nodes_now();
    json_t *r = s_call(x, "join", json_pack("{s:s, s:s}", "code", code, "name", "x"));
    if (!r) {
        return s_fail("figure 4: join refused");
    }
    json_decref(r);
    double t_all = -1;
    while (nodes_now() - t0 < S_WAIT_MS / 1000.0 && nodes_alive(x)) {
        show = s_call(x, "network.show", NULL);
        size_t n = json_array_size(json_object_get(show, "members"));
        json_decref(show);
        if (n == S_BIG + 1) {
            t_all = nodes_now() - t0;
            break;
        }
        nodes_sleep_ms(S_POLL_BIG_MS);
    }
    if (t_all < 0) {
        nodes_show_log(x);
        return s_fail("figure 4: the joiner never listed every member");
    }
    //  The round may still be closing (its last answer after the envelopes):
    //  let it end before reading the counters.
    nodes_sleep_ms(500);
    long long round_ms = s_last_round_ms(x);
    if (s_sync(x, &b) != 0) {
        return s_fail("figure 4: no status");
    }
    printf("  joined and listing all %u members after %.0f ms (the joiner's last round: %lld ms;"
           " polled every %d ms)\n",
           S_BIG + 1, t_all * 1e3, round_ms, S_POLL_BIG_MS);
    printf("  RECONCILE/WANT: %lld B in, %lld B out (%lld B both ways), %lld messages, "
           "%lld rounds ended (%lld opened by the joiner)\n",
           b.bytes_in - a.bytes_in, b.bytes_out - a.bytes_out,
           b.bytes_in - a.bytes_in + b.bytes_out - a.bytes_out,
           b.msgs_in - a.msgs_in + b.msgs_out - a.msgs_out, b.rounds_ended - a.rounds_ended,
           b.rounds_started - a.rounds_started);
    //  The next periodic round finds nothing to do.
    double tw = nodes_now();
    for (;;) {
        if (s_sync(x, &c) != 0 || nodes_now() - tw > 30) {
            return s_fail("figure 4: no periodic round");
        }
        if (c.rounds_ended > b.rounds_ended) {
            break;
        }
        nodes_sleep_ms(S_POLL_BIG_MS);
    }
    json_t *st = s_call(x, "status", NULL);
    printf("  in sync, the next periodic round: %lld B both ways, %lld messages, %lld ms "
           "(status.sync.last_round)\n",
           nodes_json_int(st, "sync", "last_round", "bytes"),
           nodes_json_int(st, "sync", "last_round", "messages"),
           nodes_json_int(st, "sync", "last_round", "ms"));
    json_decref(st);
    st = s_call(big, "status", NULL);
    long long streamed = nodes_json_int(st, "sync", "envelopes_streamed", NULL);
    json_decref(st);
    uint8_t netid[32], xpk[32];
    //  A network id is a hash, not a key: plain base32, not a node id.
    if (b32_decode(netid_s, netid, sizeof netid) != PARLEY_OK
        || identity_parse_node_id(nodes_id(x), xpk) != PARLEY_OK) {
        return s_fail("figure 4: bad ids");
    }
    nodes_group_stop(&s_nodes, &x);
    nodes_group_stop(&s_nodes, &big);
    s_sum_t sum;
    if (s_sum_scope("x", netid, xpk, &sum) != 0) {
        return s_fail("figure 4: cannot read the joiner's log");
    }
    printf("  ENVELOPES payload: %zu events from the network, %zu B (the envelopes' sizes; "
           "the founder streamed %lld envelopes in all)\n",
           sum.n, sum.bytes, streamed);
    return 0;
}

/* ---- main ---- */

int
main(int argc, char **argv)
{
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        } else if (strcmp(argv[i], "--no-local") == 0) {
            s_local = false;
        } else {
            fprintf(stderr, "usage: bench_network [--no-local] [--keep]\n");
            return 2;
        }
    }
    if (sodium_init() < 0
        || nodes_find_sibling(argv[0], "parleyd", s_parleyd, sizeof s_parleyd) != 0) {
        return 1;
    }
    snprintf(s_root, sizeof s_root, "/tmp/parley-bench-network.XXXXXX");
    if (!mkdtemp(s_root)) {
        return 1;
    }
    char run[300];
    snprintf(run, sizeof run, "%s/run", s_root);
    //  Host-local discovery among the bench's nodes only (the nodes inherit it).
    if (setenv("PARLEY_RUNTIME_DIR", run, 1) != 0) {
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); // each figure shows as it comes
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    signal(SIGALRM, s_on_signal);
    alarm(900);
    printf("bench_network: real parleyd processes on loopback, discovery: %s\n",
           s_local ? "host-local in the bench's own directory (no mDNS)"
                   : "none (invite endpoints, then peer exchange)");

    /* 1. Nine joins. */
    nodes_proc_t *net[S_NET] = { NULL };
    net[0] = s_start("n0", "");
    if (!net[0]) {
        return s_fail("the founder did not start");
    }
    json_t *r =
        s_call(net[0], "network.create", json_pack("{s:s, s:s}", "name", "bench", "my_name", "n0"));
    if (!r) {
        return s_fail("network.create");
    }
    json_decref(r);
    double rt = nodes_status_rt(net[0], S_RT_SAMPLES, S_CALL_MS);
    printf("1. join: %u nodes join the founder's network one after another\n", S_NET - 1);
    double t_member[S_NET - 1], t_all[S_NET - 1], rounds[S_NET - 1];
    for (size_t k = 1; k < S_NET; k++) {
        char name[8], code[1024];
        snprintf(name, sizeof name, "n%zu", k);
        net[k] = s_start(name, "");
        if (!net[k] || s_invite(net[0], name, code, sizeof code) != 0) {
            return s_fail("a joiner did not start, or no invite");
        }
        if (s_join_one(net[k], code, name, net, k, &t_member[k - 1], &t_all[k - 1]) != 0) {
            nodes_show_log(net[k]);
            return s_fail("a join did not complete");
        }
        rounds[k - 1] = (double)s_last_round_ms(net[k]) / 1e3;
        printf("  join %zu: member after %6.0f ms, connected to all %zu others after %6.0f ms\n", k,
               t_member[k - 1] * 1e3, k, t_all[k - 1] * 1e3);
    }
    char beside[160];
    snprintf(beside, sizeof beside, "floor: status call RT %.2f ms", rt * 1e3);
    s_print_spread("from join to member", t_member, S_NET - 1, beside);
    s_print_spread("from join to member and connected to all", t_all, S_NET - 1, "");
    s_print_spread("(the joiners' last sync round, status.sync)", rounds, S_NET - 1, "");

    /* 2. Removal, all online. */
    size_t ri = 5;
    nodes_proc_t *rem = net[ri];
    char rid[PARLEY_NODE_ID_STRLEN + 1];
    snprintf(rid, sizeof rid, "%s", nodes_id(rem));
    nodes_proc_t *others[S_NET];
    size_t n_others = 0;
    for (size_t i = 0; i < S_NET; i++) {
        if (i != ri) {
            others[n_others++] = net[i];
        }
    }
    printf("2. removal, all %u online: the founder removes %s\n", S_NET, nodes_name(rem));
    double t0 = nodes_now();
    r = s_call(net[0], "member.remove", json_pack("{s:s, s:s}", "peer", rid, "reason", "bench"));
    double t_call = nodes_now() - t0;
    if (!r) {
        return s_fail("member.remove");
    }
    json_decref(r);
    double t_gone[S_NET];
    if (s_wait_gone(others, n_others, rid, t0, t_gone) != n_others) {
        return s_fail("a node still lists the removed member");
    }
    snprintf(beside, sizeof beside, "(the member.remove call: %.1f ms)", t_call * 1e3);
    s_print_spread("until each other node drops it (max: all 9)", t_gone, n_others, beside);
    nodes_sleep_ms(1000);
    s_print_view("the removed node's own view 1 s later", rem, net, S_NET);
    nodes_group_stop(&s_nodes, &rem);
    net[ri] = NULL;

    /* 3. Removal with a member offline. */
    size_t mi = 3, r2i = 7;
    nodes_proc_t *r2 = net[r2i];
    char r2id[PARLEY_NODE_ID_STRLEN + 1];
    snprintf(r2id, sizeof r2id, "%s", nodes_id(r2));
    printf("3. removal with one member offline: %s stops, the founder removes %s, %s restarts\n",
           nodes_name(net[mi]), nodes_name(r2), nodes_name(net[mi]));
    nodes_group_stop(&s_nodes, &net[mi]);
    n_others = 0;
    for (size_t i = 0; i < S_NET; i++) {
        if (net[i] && i != r2i) {
            others[n_others++] = net[i];
        }
    }
    t0 = nodes_now();
    r = s_call(net[0], "member.remove", json_pack("{s:s}", "peer", r2id));
    if (!r) {
        return s_fail("member.remove");
    }
    json_decref(r);
    if (s_wait_gone(others, n_others, r2id, t0, t_gone) != n_others) {
        return s_fail("an online node still lists the removed member");
    }
    s_print_spread("until an online node drops it", t_gone, n_others, "");
    char mname[8];
    snprintf(mname, sizeof mname, "n%zu", mi);
    t0 = nodes_now();
    net[mi] = s_start(mname, "");
    if (!net[mi]) {
        return s_fail("the offline member did not restart");
    }
    double t_api = nodes_now() - t0;
    bool saw_r2 = false;
    double t_m = -1;
    while (nodes_now() - t0 < S_WAIT_MS / 1000.0) {
        json_t *show = s_call(net[mi], "network.show", NULL);
        json_t *peers = s_call(net[mi], "peers", NULL);
        saw_r2 = saw_r2 || s_online_in(peers, r2id);
        bool gone = show && peers && !s_lists(show, r2id);
        json_decref(show);
        json_decref(peers);
        if (gone) {
            t_m = nodes_now() - t0;
            break;
        }
        nodes_sleep_ms(S_POLL_MS);
    }
    if (t_m < 0) {
        return s_fail("the restarted member still lists the removed one");
    }
    printf("  %s no longer lists %s %.0f ms after its restart (its API answered after %.0f ms;"
           " last sync round %lld ms)%s\n",
           mname, nodes_name(r2), t_m * 1e3, t_api * 1e3, s_last_round_ms(net[mi]),
           saw_r2 ? "; it had a link to the removed node meanwhile" : "");
    s_print_view("the removed node's own view", r2, net, S_NET);
    nodes_group_stop_all(&s_nodes);

    /* 4. Roster sync bytes. */
    if (s_figure4() != 0) {
        return 1;
    }
    nodes_group_stop_all(&s_nodes);
    if (!keep) {
        nodes_rm_tree(s_root);
    } else {
        printf("files kept in %s\n", s_root);
    }
    return 0;
}
