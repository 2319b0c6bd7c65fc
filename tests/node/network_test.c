/*  tests/node/network_test.c — private networks (proto/SPEC.md §17–19,
 *  node/network.h) with real nodes in this process on 127.0.0.1:
 *
 *    create    F founds "acme": network.show and network.log
 *    join      A joins with F's code; B joins through A while F is stopped;
 *              all three list each other and DMs flow
 *    stranger  X (fresh key, open mode, seeded with every member) is
 *              refused at ZAP by each, never online, nothing of it stored
 *    refusals  expired (at the joiner and at the member), damaged, a code
 *              of another network, revoked, used up: each refused
 *    admin     a plain member gets -32007 for admin methods; relay.set and
 *              member.role work and show in the log
 *    hostile   a raw peer with B's key sends an ADD (B is no admin), an
 *              event of another network and a malformed one: void or
 *              refused, counted, roster unchanged; then a flood of ADDs:
 *              F holds NETWORK_EVENTS_PER_MEMBER of B's, refuses the rest
 *    removal   F removes C: C's links go, its reconnects are refused, its
 *              DMs are never delivered; B, stopped meanwhile, learns it;
 *              the epoch rises on members and not on C
 *    conflict  A (rank 1) removes B (rank 2) while B, partitioned away,
 *              invites and un-relays A: B's acts are void everywhere
 *    leave     A leaves; F's roster and log show it
 *
 *  A node restarted keeps its port (tk_opts_t.listen), as a real node with
 *  a configured --listen would, so the others redial it.
 */
#include "testkit.h"

#include "../../node/network.h"
#include "../../proto/b32.h"
#include "../../proto/invite.h"
#include "../../proto/roster.h"
#include <inttypes.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool s_verbose;

static void s_say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
s_say(const char *fmt, ...)
{
    if (!s_verbose) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    printf("  network: ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}

/* ---- nodes that stop and come back on the same port ---- */

typedef struct {
    const char *name;
    tk_node_t *n;                       /* NULL while stopped */
    char id[PARLEY_NODE_ID_STRLEN + 1]; /* kept while stopped */
    uint8_t pk[32];
    char listen[128]; /* its endpoint, once started */
    char seed[400];   /* ENDPOINT#ID */
    char home[4096];
    tk_clock_t *clock; /* NULL: the system clock */
} s_node_t;

static const char *s_dir;
static tk_clock_t s_x_clock;

static void
s_up(s_node_t *p, const char *seed, const char *seed2, const char *seed3)
{
    tk_opts_t opts = { .verbose = s_verbose, .sync_ms = 300, .retry_ms = 200 };
    opts.clock = p->clock;
    opts.listen = p->listen[0] ? p->listen : NULL;
    opts.seed = seed;
    opts.more_seeds[0] = seed2;
    opts.more_seeds[1] = seed3;
    p->n = tk_node_start(s_dir, p->name, &opts);
    snprintf(p->id, sizeof p->id, "%s", p->n->id);
    memcpy(p->pk, p->n->pk, 32);
    snprintf(p->listen, sizeof p->listen, "%s", parley_endpoint(p->n->node));
    snprintf(p->seed, sizeof p->seed, "%s", p->n->seed);
    snprintf(p->home, sizeof p->home, "%s", p->n->home);
}

static void
s_down(s_node_t *p)
{
    tk_node_stop(&p->n);
}

/* ---- what a node shows ---- */

static json_t *
s_show(s_node_t *p)
{
    return tk_call(p->n, "network.show", NULL);
}

//  How many network events p holds (applied, void and pending).
static json_int_t
s_events(s_node_t *p)
{
    json_t *show = s_show(p);
    json_int_t n = json_integer_value(json_object_get(show, "events"));
    json_decref(show);
    return n;
}

static const char *
s_str(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static bool
s_streq(json_t *obj, const char *key, const char *want)
{
    return strcmp(s_str(obj, key), want) == 0;
}

//  The role show gives member id ("" when not listed).
static const char *
s_role_in(json_t *show, const char *id)
{
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(show, "members"), i, m)
    {
        if (s_streq(m, "id", id)) {
            return s_str(m, "role");
        }
    }
    return "";
}

static bool
s_in_array(json_t *arr, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (strcmp(json_string_value(v) ? json_string_value(v) : "", id) == 0) {
            return true;
        }
    }
    return false;
}

//  Whether p's network.show lists member id with role (NULL: any role),
//  and has n_members members (0: any count).
static bool
s_lists(s_node_t *p, const char *id, const char *role, size_t n_members)
{
    json_t *show = s_show(p);
    const char *r = s_role_in(show, id);
    bool ok = r[0] && (!role || strcmp(r, role) == 0)
              && (n_members == 0 || json_array_size(json_object_get(show, "members")) == n_members);
    json_decref(show);
    return ok;
}

static bool
s_not_listed(s_node_t *p, const char *id)
{
    json_t *show = s_show(p);
    bool gone = s_role_in(show, id)[0] == 0;
    json_decref(show);
    return gone;
}

static int64_t
s_int(s_node_t *p, const char *key)
{
    json_t *show = s_show(p);
    int64_t v = json_integer_value(json_object_get(show, key));
    json_decref(show);
    return v;
}

static bool
s_mode(s_node_t *p, const char *mode)
{
    json_t *show = s_show(p);
    bool ok = s_streq(show, "mode", mode);
    json_decref(show);
    return ok;
}

//  The last log entry of TYPE by author (NULL: anyone) on target (NULL:
//  any); a new reference, or NULL.
static json_t *
s_log_find(s_node_t *p, const char *type, const char *author, const char *target)
{
    json_t *log = tk_call(p->n, "network.log", json_pack("{s:i}", "limit", 0));
    json_t *found = NULL;
    size_t i;
    json_t *e;
    json_array_foreach(log, i, e)
    {
        if (s_streq(e, "type", type) && (!author || s_streq(e, "author", author))
            && (!target || s_streq(e, "target", target))) {
            json_decref(found);
            found = json_incref(e);
        }
    }
    json_decref(log);
    return found;
}

static bool
s_logged(s_node_t *p, const char *type, const char *author, const char *target)
{
    json_t *e = s_log_find(p, type, author, target);
    json_decref(e);
    return e != NULL;
}

/* ---- invites and joining ---- */

//  An invite of p's: its code (caller frees), *n_eps its endpoints.
static char *
s_invite(s_node_t *p, json_t *params, size_t *n_eps)
{
    json_t *inv = tk_call(p->n, "invite.create", params);
    char *code = strdup(s_str(inv, "code"));
    CHECK(code && strncmp(code, "parley-invite:", 14) == 0);
    if (n_eps) {
        *n_eps = json_array_size(json_object_get(inv, "endpoints"));
    }
    json_decref(inv);
    return code;
}

static void
s_join(s_node_t *p, const char *code, const char *name)
{
    json_t *r = tk_call(p->n, "join", json_pack("{s:s, s:s}", "code", code, "name", name));
    CHECK(s_streq(r, "state", "joining"));
    json_decref(r);
}

static bool
s_join_state(s_node_t *p, const char *state)
{
    json_t *show = s_show(p);
    bool ok = s_streq(show, "mode", "joining") && s_streq(show, "state", state);
    json_decref(show);
    return ok;
}

//  A join that must fail at p: members answer DONE with their reason (ZAP
//  admits a dead invite's key for that); were none to answer, p's clock is
//  advanced past the exchange's deadline. The error (caller frees).
static char *
s_join_fails(s_node_t *p, const char *code)
{
    s_join(p, code, "intruder");
    uint64_t end = tk_ms() + 3000; // a few ASKs
    while (!s_join_state(p, "failed") && tk_ms() < end) {
        tk_sleep(50);
    }
    CHECK(!s_mode(p, "network"));
    if (!s_join_state(p, "failed")) {
        //  Past the joiner's deadline: no answer it can use came.
        tk_clock_advance(p->clock, (int64_t)NETWORK_JOIN_MS + 1000);
        TK_WAIT(5000, s_join_state(p, "failed"));
    }
    json_t *show = s_show(p);
    CHECK(s_streq(show, "mode", "joining"));
    char *err = strdup(s_str(show, "error"));
    json_decref(show);
    CHECK(err && err[0]);
    s_say("  refused: %s", err);
    return err;
}

//  The code with its endpoints replaced by one: ep at pk (proto/invite.h).
static char *
s_recode(const char *code, const char *ep, const uint8_t pk[32], const uint8_t *network_id)
{
    invite_code_t c;
    invite_err_t err = INVITE_OK;
    CHECK(invite_code_decode(code, strlen(code), &c, &err) == PARLEY_OK);
    if (ep) {
        memset(c.endpoints, 0, sizeof c.endpoints);
        c.n = 1;
        snprintf(c.endpoints[0].endpoint, sizeof c.endpoints[0].endpoint, "%s", ep);
        memcpy(c.endpoints[0].pk, pk, 32);
    }
    if (network_id) {
        memcpy(c.network_id, network_id, 32);
    }
    char *out = malloc(INVITE_CODE_MAX + 1);
    size_t len = 0;
    CHECK(out && invite_code_encode(&c, out, INVITE_CODE_MAX + 1, &len) == PARLEY_OK);
    sodium_memzero(&c, sizeof c);
    return out;
}

static bool
s_joined(s_node_t *p, size_t n_members)
{
    json_t *show = s_show(p);
    bool ok = s_streq(show, "mode", "network") && s_streq(show, "role", "member")
              && json_array_size(json_object_get(show, "members")) == n_members;
    json_decref(show);
    return ok;
}

//  Waits 15 s for p to be a member among n; else shows what p and the
//  member it joins through say, and fails.
static void
s_wait_joined(s_node_t *p, size_t n_members, s_node_t *via)
{
    uint64_t end = tk_ms() + 15000;
    while (!s_joined(p, n_members) && tk_ms() < end) {
        tk_sleep(50);
    }
    if (!s_joined(p, n_members)) {
        s_node_t *both[2] = { p, via };
        for (size_t i = 0; i < 2; i++) {
            json_t *show = s_show(both[i]);
            char *text = json_dumps(show, JSON_COMPACT);
            fprintf(stderr, "network.show on %s: %s\n", both[i]->name, text ? text : "?");
            free(text);
            json_decref(show);
        }
    }
    CHECK(s_joined(p, n_members));
}

static bool
s_delivered(s_node_t *from, s_node_t *to, const char *text)
{
    json_t *sent = tk_send(from->n, to->id, text);
    json_decref(sent);
    uint64_t end = tk_ms() + 15000;
    while (tk_ms() < end) {
        json_t *h =
            tk_call(from->n, "history", json_pack("{s:s, s:i}", "peer", to->id, "limit", 0));
        size_t i;
        json_t *m;
        bool ok = false;
        json_array_foreach(h, i, m)
        {
            ok = ok
                 || (s_streq(m, "text", text)
                     && (s_streq(m, "state", "delivered") || s_streq(m, "state", "read")));
        }
        json_decref(h);
        if (ok) {
            return true;
        }
        tk_sleep(50);
    }
    return false;
}

static char *
s_rpc_err(s_node_t *p, const char *method, json_t *params, int want)
{
    char *msg = NULL;
    int code = tk_call_rpc(p->n, method, params, &msg);
    if (code != want) {
        fprintf(stderr, "%s: code %d (%s), want %d\n", method, code, msg ? msg : "", want);
    }
    CHECK(code == want);
    return msg;
}

//  With -v: p's peers, one line each (what a failed wait needs to show).
static void
s_peers(s_node_t *p)
{
    if (!s_verbose) {
        return;
    }
    json_t *peers = tk_call(p->n, "peers", NULL);
    size_t i;
    json_t *v;
    json_array_foreach(peers, i, v)
    {
        printf("    %s peer %.8s online=%d dir=%s source=%s endpoint=%s error=%s\n", p->name,
               s_str(v, "id"), json_is_true(json_object_get(v, "online")), s_str(v, "direction"),
               s_str(v, "source"), s_str(v, "endpoint"), s_str(v, "last_error"));
    }
    json_decref(peers);
    fflush(stdout);
}

static int64_t
s_authored(s_node_t *holder, const uint8_t author[32])
{
    char hex[65], sql[200];
    CHECK(hex_encode(author, 32, hex, sizeof hex) == PARLEY_OK);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM envelopes WHERE author = x'%s'", hex);
    return tk_sql_int(holder->n, sql);
}

//  The id of the newest event p's log shows: a parent p holds.
static void
s_last_event(s_node_t *p, uint8_t id[32])
{
    json_t *log = tk_call(p->n, "network.log", NULL);
    CHECK(json_array_size(log) > 0);
    CHECK(hex_decode(s_str(json_array_get(log, json_array_size(log) - 1), "event_id"), id, 32)
          == PARLEY_OK);
    json_decref(log);
}

//  An ADD of a fresh key (named name, role) after parent, as a body.
static size_t
s_add_body(const uint8_t parent[32], uint8_t key[32], const char *name, uint8_t *body)
{
    randombytes_buf(key, 32);
    roster_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = ROSTER_ADD;
    ev.n_parents = 1;
    ev.parents = parent;
    memcpy(ev.key, key, 32);
    ev.role = ROSTER_ROLE_ADMIN;
    ev.text = (const uint8_t *)name;
    ev.text_len = strlen(name);
    size_t blen = 0;
    CHECK(roster_event_encode(&ev, body, ROSTER_BODY_MAX, &blen) == PARLEY_OK);
    return blen;
}

/* ---- the steps ---- */

static s_node_t F = { .name = "f" }, A = { .name = "a" }, B = { .name = "b" }, C = { .name = "c" },
                X = { .name = "x", .clock = &s_x_clock };
static uint8_t s_net_id[32];
static char s_net_text[PARLEY_NODE_ID_STRLEN + 1];

//  1. F founds the network: it is its only member, admin, and the log
//  holds the CREATE.
static void
s_step_create(void)
{
    s_say("create: F founds acme");
    s_up(&F, NULL, NULL, NULL);
    CHECK(s_mode(&F, "open"));
    json_t *r = tk_call(F.n, "network.create",
                        json_pack("{s:s, s:s}", "name", "acme", "my_name", "founder"));
    CHECK(s_streq(r, "mode", "network"));
    json_decref(r);
    json_t *show = s_show(&F);
    CHECK(s_streq(show, "name", "acme"));
    CHECK(s_streq(show, "founder", F.id));
    CHECK(s_streq(show, "role", "admin"));
    CHECK(json_array_size(json_object_get(show, "members")) == 1);
    CHECK(strcmp(s_role_in(show, F.id), "admin") == 0);
    CHECK(s_in_array(json_object_get(show, "admins"), F.id));
    snprintf(s_net_text, sizeof s_net_text, "%s", s_str(show, "id"));
    CHECK(b32_decode(s_net_text, s_net_id, sizeof s_net_id) == PARLEY_OK);
    json_decref(show);
    json_t *log = tk_call(F.n, "network.log", NULL);
    CHECK(json_array_size(log) == 1);
    json_t *e = json_array_get(log, 0);
    CHECK(s_streq(e, "type", "create") && s_streq(e, "author", F.id));
    CHECK(json_is_true(json_object_get(e, "applied")));
    json_decref(log);
    //  A second network on the same node is refused.
    free(s_rpc_err(&F, "network.create", json_pack("{s:s}", "name", "other"), -32007));
}

//  2. A joins with F's code; F's next code names A too, so B joins
//  through A while F is stopped. Everyone ends up listing everyone.
static void
s_step_join(void)
{
    s_say("join: A joins through F");
    size_t n_eps = 0;
    char *code = s_invite(&F, json_pack("{s:s}", "label", "for alice"), &n_eps);
    CHECK(n_eps == 1); // F is connected to no member yet
    s_up(&A, NULL, NULL, NULL);
    s_join(&A, code, "alice");
    TK_WAIT(15000, s_joined(&A, 2));
    TK_WAIT(10000, s_lists(&F, A.id, "member", 2));
    CHECK(s_lists(&A, F.id, "admin", 2));
    json_t *e = s_log_find(&F, "join", A.id, NULL);
    CHECK(e && json_is_true(json_object_get(e, "applied")));
    json_decref(e);
    //  The used invite is no longer live.
    json_t *invites = tk_call(F.n, "invite.list", NULL);
    CHECK(json_array_size(invites) == 1);
    CHECK(!json_is_true(json_object_get(json_array_get(invites, 0), "live")));
    CHECK(json_integer_value(json_object_get(json_array_get(invites, 0), "used")) == 1);
    json_decref(invites);
    free(code);

    s_say("join: B joins through A while F is stopped");
    TK_WAIT(10000, tk_online(F.n, A.id) && tk_online(A.n, F.id));
    tk_sleep(300); // F's DEALER to A says its first frame
    s_peers(&F);
    code = s_invite(&F, json_pack("{s:s}", "label", "for bob"), &n_eps);
    //  invite.create names the members F is connected to, whichever side
    //  dialled: the join below goes through A alone. A must hold the
    //  invite first: F's push of it may still be on its way when F stops
    //  (a node that stops does not wait for the frames of its last moment).
    CHECK(n_eps >= 2);
    TK_WAIT(10000, s_events(&A) == s_events(&F));
    s_down(&F);
    s_up(&B, NULL, NULL, NULL);
    s_join(&B, code, "bob");
    s_wait_joined(&B, 3, &A);
    CHECK(s_lists(&B, F.id, "admin", 3) && s_lists(&B, A.id, "member", 3));
    TK_WAIT(10000, s_lists(&A, B.id, "member", 3));
    free(code);
    s_up(&F, NULL, NULL, NULL);
    TK_WAIT(15000, s_lists(&F, B.id, "member", 3));
    e = s_log_find(&F, "join", B.id, NULL);
    CHECK(e && json_is_true(json_object_get(e, "applied")));
    json_decref(e);

    //  B joined while F was away and F came back after: they were never
    //  online together, and the mesh closes by itself (A's PEERS name B to
    //  F; F holds B's record until its roster names B, then dials).
    TK_WAIT(10000, tk_online(B.n, F.id) && tk_online(F.n, B.id));

    s_say("join: DMs between members");
    CHECK(s_delivered(&A, &B, "a to b"));
    CHECK(s_delivered(&B, &A, "b to a"));
    CHECK(s_delivered(&B, &F, "b to f"));
    CHECK(s_delivered(&F, &A, "f to a"));
}

//  3. A stranger with a fresh key, seeded with every member: refused by
//  each at ZAP, never online with them, nothing of it stored.
static void
s_step_stranger(void)
{
    s_say("stranger: X dials every member and is refused");
    s_node_t *m[3] = { &F, &A, &B };
    uint64_t zap[3];
    for (size_t i = 0; i < 3; i++) {
        zap[i] = tk_rejected(m[i]->n, "zap_denied");
    }
    s_up(&X, F.seed, A.seed, B.seed);
    for (size_t i = 0; i < 3; i++) {
        TK_WAIT(10000, tk_rejected(m[i]->n, "zap_denied") > zap[i]);
    }
    json_t *sent = tk_send(X.n, A.id, "let me in");
    json_decref(sent);
    //  And a raw stranger that sends a network event (an ADD of itself)
    //  to each member, whatever the handshake says.
    uint8_t parent[32], key[32], body[ROSTER_BODY_MAX];
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    s_last_event(&F, parent);
    uint8_t raw_pk[3][32];
    for (size_t i = 0; i < 3; i++) {
        uint64_t before = tk_rejected(m[i]->n, "zap_denied");
        tk_raw_t *raw = tk_raw_open(m[i]->n, identity_new());
        memcpy(raw_pk[i], identity_ed_pk(raw->me), 32);
        size_t blen = s_add_body(parent, key, "stranger", body);
        size_t len = tk_raw_env(raw, ENVELOPE_KIND_NET, s_net_id, 1, body, blen, env);
        tk_raw_send_env(raw, env, len);
        TK_WAIT(5000, tk_rejected(m[i]->n, "zap_denied") > before);
        CHECK(!tk_raw_acked(raw, env, len, 500));
        tk_raw_destroy(&raw);
    }
    tk_sleep(1000);
    for (size_t i = 0; i < 3; i++) {
        CHECK(!tk_online(X.n, m[i]->id));
        CHECK(!tk_online(m[i]->n, X.id));
        CHECK(s_not_listed(m[i], X.id));
        char hex[65], sql[200];
        CHECK(hex_encode(X.pk, 32, hex, sizeof hex) == PARLEY_OK);
        snprintf(sql, sizeof sql, "SELECT count(*) FROM peer_prekeys WHERE owner = x'%s'", hex);
        CHECK(tk_sql_int(m[i]->n, sql) == 0); // not even its bundle
        for (size_t k = 0; k < 3; k++) {
            CHECK(s_authored(m[i], raw_pk[k]) == 0);
        }
        CHECK(s_authored(m[i], X.pk) == 0);
    }
    CHECK(tk_count(X.n, A.id, "delivered") == 0);
}

//  4. Invites that must not let anyone in, each with its reason.
static void
s_step_refusals(void)
{
    size_t n_eps = 0;

    s_say("refusals: expired at the member (the joiner's clock is behind)");
    char *code = s_invite(&F, json_pack("{s:i}", "expires_ms", 1500), &n_eps);
    tk_sleep(1600);
    tk_clock_advance(X.clock, -10000); // X still takes the code for live
    char *err = s_join_fails(&X, code);
    CHECK(strstr(err, "refused") && strstr(err, "expired"));
    free(err);
    free(code);
    atomic_store(&X.clock->offset_ms, 0); // X's clock right again

    s_say("refusals: expired at the joiner");
    code = s_invite(&F, json_pack("{s:i}", "expires_ms", 1), &n_eps);
    tk_sleep(5);
    char *msg = NULL;
    CHECK(tk_call_err(X.n, "join", json_pack("{s:s}", "code", code), &msg) == PARLEY_ERR_EXPIRED);
    CHECK(strstr(msg, "expired"));
    s_say("  refused: %s", msg);
    free(msg);
    free(code);

    s_say("refusals: a damaged code, and text that is no code");
    code = s_invite(&F, json_pack("{s:s}", "label", "to damage"), &n_eps);
    size_t mid = strlen(code) / 2;
    code[mid] = code[mid] == 'a' ? 'b' : 'a';
    CHECK(tk_call_err(X.n, "join", json_pack("{s:s}", "code", code), &msg) == PARLEY_ERR_MALFORMED);
    CHECK(strstr(msg, "damaged"));
    s_say("  refused: %s", msg);
    free(msg);
    CHECK(tk_call_err(X.n, "join", json_pack("{s:s}", "code", code + 14), &msg)
          == PARLEY_ERR_MALFORMED);
    CHECK(strstr(msg, "not an invite code"));
    free(msg);
    free(code);

    s_say("refusals: a well-formed code of another network (a live secret of ours)");
    code = s_invite(&F, json_pack("{s:s}", "label", "to revoke"), &n_eps);
    uint8_t other[32];
    randombytes_buf(other, sizeof other);
    char *forged = s_recode(code, NULL, NULL, other);
    err = s_join_fails(&X, forged);
    //  The live secret passes ZAP; F refuses the ASK for another network.
    CHECK(strstr(err, "refused") && strstr(err, "another network"));
    free(err);
    free(forged);

    s_say("refusals: revoked");
    json_t *inv = tk_call(F.n, "invite.list", NULL);
    size_t n_before = json_array_size(inv);
    json_decref(inv);
    json_t *r = tk_call(F.n, "invite.revoke", json_pack("{s:s}", "invite", code));
    CHECK(json_is_true(json_object_get(r, "revoked")));
    json_decref(r);
    CHECK(s_logged(&F, "revoke", F.id, NULL));
    free(s_rpc_err(&F, "invite.revoke", json_pack("{s:s}", "invite", code), -32006));
    err = s_join_fails(&X, code);
    CHECK(strstr(err, "refused") && strstr(err, "revoked"));
    free(err);
    free(code);
    inv = tk_call(F.n, "invite.list", NULL);
    CHECK(json_array_size(inv) == n_before);
    json_decref(inv);

    s_say("refusals: used up (C takes the only use)");
    code = s_invite(&F, json_pack("{s:i, s:s}", "uses", 1, "label", "for carol"), &n_eps);
    s_up(&C, NULL, NULL, NULL);
    s_join(&C, code, "carol");
    TK_WAIT(15000, s_joined(&C, 4));
    err = s_join_fails(&X, code);
    CHECK(strstr(err, "refused") && strstr(err, "used already"));
    free(err);
    free(code);

    //  Through all that, X never became a member anywhere.
    s_node_t *m[4] = { &F, &A, &B, &C };
    for (size_t i = 0; i < 4; i++) {
        TK_WAIT(10000, s_lists(m[i], C.id, "member", 4));
        CHECK(s_not_listed(m[i], X.id));
        CHECK(s_authored(m[i], X.pk) == 0);
    }
    s_down(&X);
}

//  7a. Admin methods: a plain member is told it is none; relay.set and
//  member.role work and are logged.
static void
s_step_admin(void)
{
    s_say("admin: B (a member) calls admin methods");
    char *msg = s_rpc_err(&B, "member.remove", json_pack("{s:s}", "peer", C.id), -32007);
    CHECK(strstr(msg, "only an admin"));
    s_say("  refused: %s", msg);
    free(msg);
    msg = s_rpc_err(&B, "invite.create", NULL, -32007);
    CHECK(strstr(msg, "only an admin"));
    free(msg);
    msg = s_rpc_err(&B, "relay.set", json_pack("{s:s}", "peer", B.id), -32007);
    CHECK(strstr(msg, "only an admin"));
    free(msg);
    msg = s_rpc_err(&B, "member.role", json_pack("{s:s, s:s}", "peer", B.id, "role", "admin"),
                    -32007);
    free(msg);
    CHECK(s_lists(&F, B.id, "member", 4));

    s_say("admin: F makes A a relay and an admin");
    json_t *r = tk_call(F.n, "relay.set", json_pack("{s:s}", "peer", A.id));
    CHECK(json_is_true(json_object_get(r, "relay")));
    json_decref(r);
    r = tk_call(F.n, "member.role", json_pack("{s:s, s:s}", "peer", A.id, "role", "admin"));
    CHECK(s_streq(r, "role", "admin"));
    json_decref(r);
    json_t *e = s_log_find(&F, "relay", F.id, A.id);
    CHECK(e && json_is_true(json_object_get(e, "applied")));
    json_decref(e);
    e = s_log_find(&F, "role", F.id, A.id);
    CHECK(e && json_is_true(json_object_get(e, "applied")));
    json_decref(e);
    //  Seniority: F (rank 0) cannot be acted on by A (rank 1).
    TK_WAIT(10000, s_lists(&A, A.id, "admin", 4));
    msg = s_rpc_err(&A, "member.role", json_pack("{s:s, s:s}", "peer", F.id, "role", "member"),
                    -32007);
    free(msg);
    s_node_t *m[4] = { &F, &A, &B, &C };
    for (size_t i = 0; i < 4; i++) {
        TK_WAIT(10000, s_lists(m[i], A.id, "admin", 4));
        json_t *show = s_show(m[i]);
        CHECK(s_in_array(json_object_get(show, "relays"), A.id));
        json_decref(show);
    }
    //  Nothing changes twice.
    free(s_rpc_err(&F, "relay.set", json_pack("{s:s}", "peer", A.id), -32008));
}

//  8. A hostile member: a raw peer with B's own key (B is stopped) sends F
//  network events B may not make.
static void
s_step_hostile(void)
{
    s_say("hostile: a raw peer speaking as B (a member, no admin)");
    s_down(&B);
    TK_WAIT(10000, !tk_online(F.n, B.id));
    json_t *show = s_show(&F);
    int64_t events = json_integer_value(json_object_get(show, "events"));
    size_t members = json_array_size(json_object_get(show, "members"));
    json_decref(show);
    //  A parent F holds, so the events are judged, not left pending.
    uint8_t parent[32];
    s_last_event(&F, parent);

    tk_raw_t *raw = tk_raw_connect_as(F.n, tk_identity_load(B.home));
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    uint8_t body[ROSTER_BODY_MAX], mallory[32];
    size_t blen = s_add_body(parent, mallory, "mallory", body);

    //  ADD by a non-admin: stored (it is B's, and B is a member), void.
    size_t len = tk_raw_env(raw, ENVELOPE_KIND_NET, s_net_id, 100000, body, blen, env);
    tk_raw_send_env(raw, env, len);
    CHECK(tk_raw_acked(raw, env, len, 5000));
    char mallory_id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(mallory, mallory_id);
    TK_WAIT(5000, s_logged(&F, "add", B.id, mallory_id));
    json_t *e = s_log_find(&F, "add", B.id, mallory_id);
    CHECK(!json_is_true(json_object_get(e, "applied")));
    CHECK(s_streq(e, "reason", "author is not an admin"));
    s_say("  ADD by B: void, %s", s_str(e, "reason"));
    json_decref(e);

    //  The same event in another network's scope: not ours, not stored.
    uint8_t other[32];
    randombytes_buf(other, sizeof other);
    uint64_t before = tk_rejected(F.n, "not_ours");
    len = tk_raw_env(raw, ENVELOPE_KIND_NET, other, 100001, body, blen, env);
    tk_raw_send_env(raw, env, len);
    TK_WAIT(5000, tk_rejected(F.n, "not_ours") > before);
    CHECK(!tk_raw_acked(raw, env, len, 300));

    //  A body that is no event, in our scope: malformed, not stored.
    const uint8_t junk[] = { 1, 99, 0, 'x' };
    before = tk_rejected(F.n, "malformed");
    len = tk_raw_env(raw, ENVELOPE_KIND_NET, s_net_id, 100002, junk, sizeof junk, env);
    tk_raw_send_env(raw, env, len);
    TK_WAIT(5000, tk_rejected(F.n, "malformed") > before);
    CHECK(!tk_raw_acked(raw, env, len, 300));
    tk_raw_destroy(&raw);

    //  The roster is as it was, but for the void ADD in its log.
    show = s_show(&F);
    CHECK(json_integer_value(json_object_get(show, "events")) == events + 1);
    CHECK(json_array_size(json_object_get(show, "members")) == members);
    CHECK(s_role_in(show, mallory_id)[0] == 0);
    CHECK(s_streq(show, "role", "admin"));
    json_decref(show);
    CHECK(s_lists(&F, B.id, "member", members));

    //  A flood: B may hold NETWORK_EVENTS_PER_MEMBER events in the roster
    //  (its JOIN and the void ADD among them); past that each is refused,
    //  counted (relay_quota) and strikes B (a few: not yet a ban).
    raw = tk_raw_connect_as(F.n, tk_identity_load(B.home));
    uint64_t quota = tk_rejected(F.n, "relay_quota");
    const unsigned over = 8;
    for (unsigned k = 0; k < NETWORK_EVENTS_PER_MEMBER + over; k++) {
        blen = s_add_body(parent, mallory, "mallory", body);
        len = tk_raw_env(raw, ENVELOPE_KIND_NET, s_net_id, 100100 + k, body, blen, env);
        tk_raw_send_env(raw, env, len);
    }
    TK_WAIT(15000, tk_rejected(F.n, "relay_quota") >= quota + over);
    tk_raw_destroy(&raw);
    json_t *log = tk_call(F.n, "network.log", json_pack("{s:i}", "limit", 0));
    size_t by_b = 0, i;
    json_array_foreach(log, i, e)
    {
        by_b += s_streq(e, "author", B.id);
    }
    json_decref(log);
    s_say("  a flood of %u void ADDs by B: F holds %zu events of B's, refused %" PRIu64,
          NETWORK_EVENTS_PER_MEMBER + over, by_b, tk_rejected(F.n, "relay_quota") - quota);
    CHECK(by_b == NETWORK_EVENTS_PER_MEMBER);
    CHECK(s_lists(&F, B.id, "member", members));
    s_up(&B, NULL, NULL, NULL);
    TK_WAIT(10000, tk_online(F.n, B.id));
}

//  5. F removes C while B is stopped.
static void
s_step_removal(void)
{
    s_say("removal: C writes to A, then F removes C (B stopped)");
    TK_WAIT(15000, tk_online(C.n, A.id) && tk_online(C.n, F.id));
    CHECK(s_delivered(&C, &A, "c to a, before"));
    //  Every member holds the secret of epoch 0 (C too: "epoch" alone
    //  would read 0 on a node that holds none).
    CHECK(s_int(&F, "epoch") == 0 && s_int(&A, "epoch") == 0);
    TK_WAIT(10000, tk_sql_int(C.n, "SELECT count(*) FROM network_keys WHERE epoch = 0") == 1);
    s_down(&B);
    uint64_t zap_f = tk_rejected(F.n, "zap_denied"), zap_a = tk_rejected(A.n, "zap_denied");
    json_t *r = tk_call(F.n, "member.remove",
                        json_pack("{s:s, s:s}", "peer", C.id, "reason", "left the company"));
    CHECK(json_is_true(json_object_get(r, "removed")));
    json_decref(r);
    uint64_t t0 = tk_ms();
    TK_WAIT(5000, !tk_online(C.n, F.id) && !tk_online(C.n, A.id) && !tk_online(F.n, C.id)
                      && !tk_online(A.n, C.id));
    s_say("  C offline with every member after %d ms", (int)(tk_ms() - t0));
    CHECK(s_not_listed(&F, C.id));
    TK_WAIT(5000, s_not_listed(&A, C.id));
    json_t *e = s_log_find(&F, "remove", F.id, C.id);
    CHECK(e && json_is_true(json_object_get(e, "applied")));
    CHECK(s_streq(e, "target_name", "carol")); // the name it joined with, kept
    json_decref(e);
    //  C, told why, dropped its links; restarted, it dials its saved
    //  peers, and is refused at ZAP.
    s_down(&C);
    s_up(&C, NULL, NULL, NULL);
    TK_WAIT(15000,
            tk_rejected(F.n, "zap_denied") > zap_f && tk_rejected(A.n, "zap_denied") > zap_a);
    //  A new secret on the members, not on C.
    TK_WAIT(10000, s_int(&F, "epoch") == 1 && s_int(&A, "epoch") == 1);

    json_t *sent = tk_send(C.n, A.id, "c to a, after");
    json_decref(sent);
    int64_t held = s_authored(&A, C.pk);
    tk_sleep(2500);
    CHECK(tk_count(C.n, A.id, "delivered") == 1); // only the one from before
    CHECK(s_authored(&A, C.pk) == held);
    CHECK(tk_count(A.n, C.id, "received") == 1);
    CHECK(!tk_online(C.n, F.id) && !tk_online(C.n, A.id));
    CHECK(s_int(&C, "epoch") == 0);
    //  C never held epoch 1's secret, and forgot the others when it learnt
    //  it was out.
    CHECK(tk_sql_int(C.n, "SELECT count(*) FROM network_keys") == 0);
    CHECK(tk_sql_int(A.n, "SELECT count(*) FROM network_keys WHERE epoch = 1") == 1);
    json_t *cs = s_show(&C);
    s_say("  C's own view: mode %s, role %s", s_str(cs, "mode"), s_str(cs, "role"));
    //  Its links were cut after the members told it why.
    CHECK(!s_streq(cs, "role", "member"));
    json_decref(cs);

    s_say("removal: B comes back and learns it");
    s_up(&B, NULL, NULL, NULL);
    TK_WAIT(15000, s_not_listed(&B, C.id));
    CHECK(s_lists(&B, F.id, "admin", 3));
    TK_WAIT(10000, s_int(&B, "epoch") == 1);
    CHECK(s_int(&C, "epoch") == 0);
    CHECK(tk_sql_int(C.n, "SELECT count(*) FROM network_keys WHERE epoch > 0") == 0);
    //  C (open mode now) may have reached B before B heard: B drops it.
    TK_WAIT(5000, !tk_online(B.n, C.id));
    s_down(&C);
}

//  6. A (rank 1) and B (rank 2) act in a partition: A removes B; B, on
//  F's side, invites and takes A's relay flag. A's REMOVE wins, B's acts
//  are void everywhere (SPEC §17.5).
static void
s_step_conflict(void)
{
    s_say("conflict: F makes B an admin (rank 2)");
    json_t *r = tk_call(F.n, "member.role", json_pack("{s:s, s:s}", "peer", B.id, "role", "admin"));
    json_decref(r);
    //  Still 3 members: B's flood of void ADDs (hostile step) does not count
    //  now that B is an admin (SPEC §17.5, promotions).
    TK_WAIT(10000, s_lists(&A, B.id, "admin", 3) && s_lists(&B, B.id, "admin", 3));
    json_t *show = s_show(&F);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(show, "members"), i, m)
    {
        if (s_streq(m, "id", A.id)) {
            CHECK(json_integer_value(json_object_get(m, "rank")) == 1);
        }
        if (s_streq(m, "id", B.id)) {
            CHECK(json_integer_value(json_object_get(m, "rank")) == 2);
        }
    }
    json_decref(show);

    s_say("conflict: A alone removes B");
    s_down(&F);
    s_down(&B);
    r = tk_call(A.n, "member.remove", json_pack("{s:s}", "peer", B.id));
    json_decref(r);
    CHECK(s_not_listed(&A, B.id));
    s_down(&A);

    s_say("conflict: B with F, not knowing, acts");
    s_up(&F, NULL, NULL, NULL);
    s_up(&B, NULL, NULL, NULL);
    TK_WAIT(15000, tk_online(B.n, F.id) && tk_online(F.n, B.id));
    char *msg = s_rpc_err(&B, "member.remove", json_pack("{s:s}", "peer", A.id), -32007);
    CHECK(strstr(msg, "junior"));
    free(msg);
    char *code = s_invite(&B, json_pack("{s:s}", "label", "by b"), NULL);
    r = tk_call(B.n, "relay.set", json_pack("{s:s, s:b}", "peer", A.id, "on", 0));
    json_decref(r);
    TK_WAIT(10000, s_logged(&F, "invite", B.id, NULL) && s_logged(&F, "relay", B.id, A.id));
    show = s_show(&F);
    CHECK(!s_in_array(json_object_get(show, "relays"), A.id)); // so far
    json_decref(show);

    s_say("conflict: A comes back; both sides merge");
    s_up(&A, NULL, NULL, NULL);
    s_node_t *n[2] = { &F, &A };
    for (size_t k = 0; k < 2; k++) {
        TK_WAIT(15000, s_not_listed(n[k], B.id) && s_logged(n[k], "relay", B.id, A.id));
        show = s_show(n[k]);
        CHECK(json_array_size(json_object_get(show, "members")) == 2);
        CHECK(strcmp(s_role_in(show, A.id), "admin") == 0);
        CHECK(strcmp(s_role_in(show, F.id), "admin") == 0);
        CHECK(s_in_array(json_object_get(show, "relays"), A.id));
        CHECK(!s_in_array(json_object_get(show, "admins"), B.id));
        json_decref(show);
        json_t *e = s_log_find(n[k], "remove", A.id, B.id);
        CHECK(e && json_is_true(json_object_get(e, "applied")));
        json_decref(e);
        const char *types[2] = { "invite", "relay" };
        for (size_t t = 0; t < 2; t++) {
            e = s_log_find(n[k], types[t], B.id, NULL);
            CHECK(e && !json_is_true(json_object_get(e, "applied")));
            CHECK(s_streq(e, "reason", "author removed concurrently"));
            json_decref(e);
        }
    }
    //  One secret for the new epoch on both (A made one alone, F one on
    //  the merge: the senior's wins).
    TK_WAIT(10000, s_int(&F, "epoch") == 2 && s_int(&A, "epoch") == 2);
    //  F drops B; B's invite lets nobody in.
    TK_WAIT(10000, !tk_online(F.n, B.id));
    CHECK(s_int(&B, "epoch") != 2);
    json_t *bs = s_show(&B);
    CHECK(!s_streq(bs, "role", "admin"));
    json_decref(bs);
    json_t *invites = tk_call(F.n, "invite.list", NULL);
    json_array_foreach(invites, i, m)
    {
        CHECK(!s_streq(m, "author", B.id) || !json_is_true(json_object_get(m, "live")));
    }
    json_decref(invites);
    free(code);
    s_down(&B);
}

//  7b. A leaves.
static void
s_step_leave(void)
{
    s_say("leave: A leaves the network");
    json_t *r = tk_call(A.n, "network.leave", NULL);
    CHECK(json_is_true(json_object_get(r, "left")));
    json_decref(r);
    CHECK(s_mode(&A, "open"));
    TK_WAIT(10000, s_not_listed(&F, A.id));
    json_t *e = s_log_find(&F, "remove", A.id, A.id);
    CHECK(e && json_is_true(json_object_get(e, "applied")));
    json_decref(e);
    json_t *show = s_show(&F);
    CHECK(json_array_size(json_object_get(show, "members")) == 1);
    json_decref(show);
    TK_WAIT(10000, !tk_online(F.n, A.id));
}

void
network_test(bool verbose)
{
    s_verbose = verbose;
    char dir[256];
    tk_dir(dir, sizeof dir);
    s_dir = dir;
    uint64_t t0 = tk_ms();
    s_step_create();
    s_step_join();
    s_step_stranger();
    s_step_refusals();
    s_step_admin();
    s_step_hostile();
    s_step_removal();
    s_step_conflict();
    s_step_leave();
    s_down(&A);
    s_down(&F);
    s_say("done in %d ms", (int)(tk_ms() - t0));
    tk_dir_remove(dir);
}
