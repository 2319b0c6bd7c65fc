/*  tests/node/api_test.c — the local API's methods (README, "The local
 *  API"), through two real nodes on loopback driven over their api.sock:
 *
 *  - id and status answer with every field the README lists;
 *  - contacts.add / list / verify / remove, with their refusals (a changed
 *    key, one's own id, a malformed id or name, an unknown name);
 *  - safety gives the same number from both sides; peers describes the
 *    other node from both sides;
 *  - history keeps the newest LIMIT, oldest first;
 *  - send refuses an unknown peer, missing or mistyped parameters, empty and
 *    oversized text; a valid id never seen waits as queued;
 *  - the errors carry the JSON-RPC codes (-32700, -32600, -32601, -32602,
 *    -32000 + a Parley code) and client.c maps them as documented;
 *  - a line that is not JSON gets a parse error and the connection keeps
 *    answering; a notification (no id) gets no answer.
 */
#include "testkit.h"

#include "../../node/api.h"
#include "../../node/api_req.h"
#include "../../node/core.h"
#include "../../proto/limits.h"
#include <errno.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char *
s_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    CHECK(s);
    return s;
}

static json_int_t
s_int(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    CHECK(json_is_integer(v));
    return json_integer_value(v);
}

//  The JSON-RPC error code of one call (0 when it succeeded), on a
//  connection of its own: the raw code, before client.c maps it.
static int
s_code(tk_node_t *n, const char *method, json_t *params, char **msg)
{
    client_t *c = NULL;
    CHECK(client_connect(n->home, &c) == PARLEY_OK);
    CHECK(client_send(c, method, params) == PARLEY_OK);
    json_t *reply = NULL;
    CHECK(client_recv(c, 10000, &reply) == PARLEY_OK && reply);
    CHECK(strcmp(s_str(reply, "jsonrpc"), "2.0") == 0 && s_int(reply, "id") == 1);
    json_t *err = json_object_get(reply, "error");
    int code = err ? (int)s_int(err, "code") : 0;
    CHECK(err ? !json_object_get(reply, "result") : json_object_get(reply, "result") != NULL);
    if (msg) {
        *msg = err ? strdup(s_str(err, "message")) : NULL;
    }
    json_decref(reply);
    client_destroy(&c);
    return code;
}

//  A bad-params call: -32602 on the wire, PARLEY_ERR_MALFORMED through
//  client.c (no data.error to name a Parley code).
static void
s_bad_params(tk_node_t *n, const char *method, json_t *params)
{
    json_incref(params);
    CHECK(s_code(n, method, params, NULL) == API_ERR_PARAMS);
    CHECK(tk_call_err(n, method, params, NULL) == PARLEY_ERR_MALFORMED);
}

//  A Parley error: -32000 + code on the wire, the code through client.c.
static void
s_parley_err(tk_node_t *n, const char *method, json_t *params, int code, const char *needle)
{
    json_incref(params);
    CHECK(s_code(n, method, params, NULL) == API_ERR_BASE + code);
    char *msg = NULL;
    CHECK(tk_call_err(n, method, params, &msg) == code);
    if (needle) {
        CHECK(msg && strstr(msg, needle));
    }
    free(msg);
}

static void
s_id(tk_node_t *n)
{
    json_t *r = tk_call(n, "id", NULL);
    CHECK(strcmp(s_str(r, "id"), n->id) == 0);
    CHECK(strlen(s_str(r, "short_id")) == PARLEY_SHORT_ID_STRLEN
          && strncmp(s_str(r, "short_id"), n->id, PARLEY_SHORT_ID_STRLEN) == 0);
    char fp[50];
    identity_fingerprint(n->pk, fp);
    CHECK(strcmp(s_str(r, "fingerprint"), fp) == 0);
    json_decref(r);
}

static void
s_status(tk_node_t *n, size_t known)
{
    json_t *r = tk_call(n, "status", NULL);
    CHECK(strcmp(s_str(r, "id"), n->id) == 0);
    CHECK(strncmp(s_str(r, "short_id"), n->id, PARLEY_SHORT_ID_STRLEN) == 0);
    json_t *eps = json_object_get(r, "endpoints");
    CHECK(json_array_size(eps) == 1);
    CHECK(strcmp(json_string_value(json_array_get(eps, 0)), parley_endpoint(n->node)) == 0);
    CHECK(strcmp(s_str(r, "home"), n->home) == 0);
    CHECK(s_int(r, "uptime_ms") >= 0 && s_int(r, "uptime_ms") < 600000);
    json_t *peers = json_object_get(r, "peers");
    CHECK(s_int(peers, "known") == (json_int_t)known
          && s_int(peers, "online") <= s_int(peers, "known"));
    static const char *const log_fields[] = { "envelopes", "messages",      "outbox",
                                              "queued",    "equivocations", "db_bytes" };
    json_t *log = json_object_get(r, "log");
    for (size_t i = 0; i < sizeof log_fields / sizeof log_fields[0]; i++) {
        CHECK(s_int(log, log_fields[i]) >= 0);
    }
    CHECK(s_int(log, "db_bytes") > 0);
    json_t *rejected = json_object_get(r, "rejected");
    CHECK(json_object_size(rejected) == C_COUNTERS);
    for (size_t i = 0; i < C_COUNTERS; i++) {
        CHECK(s_int(rejected, core_counter_names[i]) >= 0);
    }
    json_t *disc = json_object_get(r, "discovery");
    static const char *const sources[] = { "local", "mdns" };
    for (size_t i = 0; i < 2; i++) {
        json_t *d = json_object_get(disc, sources[i]);
        const char *state = s_str(d, "state");
        CHECK(strcmp(state, "up") == 0 || strcmp(state, "down") == 0 || strcmp(state, "off") == 0);
        (void)s_str(d, "detail");
    }
    static const char *const sync_fields[] = {
        "scopes",       "rounds_started", "rounds_ended", "digests_equal", "messages_in",
        "messages_out", "bytes_in",       "bytes_out",    "wants_sent",    "envelopes_streamed",
        "expired",      "ranges_queued",  "wants_queued",
    };
    json_t *sync = json_object_get(r, "sync");
    CHECK(json_is_false(json_object_get(sync, "relay")));
    for (size_t i = 0; i < sizeof sync_fields / sizeof sync_fields[0]; i++) {
        CHECK(s_int(sync, sync_fields[i]) >= 0);
    }
    json_decref(r);
}

static void
s_contacts(tk_node_t *a, tk_node_t *b)
{
    json_t *list = tk_call(a, "contacts.list", NULL);
    CHECK(json_is_array(list) && json_array_size(list) == 0);
    json_decref(list);

    uint64_t before = tk_ms();
    json_t *ct = tk_call(a, "contacts.add", json_pack("{s:s, s:s}", "id", b->id, "name", "bob"));
    CHECK(strcmp(s_str(ct, "name"), "bob") == 0 && strcmp(s_str(ct, "id"), b->id) == 0);
    CHECK(strncmp(s_str(ct, "short_id"), b->id, PARLEY_SHORT_ID_STRLEN) == 0);
    CHECK(json_is_false(json_object_get(ct, "verified")));
    CHECK((uint64_t)s_int(ct, "added_ms") >= before - 1000
          && (uint64_t)s_int(ct, "added_ms") <= tk_ms());
    json_decref(ct);

    //  Refusals: another key under the name, one's own id, a malformed id,
    //  a name with a space, the same id under a second name.
    identity_t *other = identity_new();
    char other_id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(other), other_id);
    s_parley_err(a, "contacts.add", json_pack("{s:s, s:s}", "id", other_id, "name", "bob"),
                 PARLEY_ERR_EXISTS, "KEY CHANGED");
    s_parley_err(a, "contacts.add", json_pack("{s:s, s:s}", "id", a->id, "name", "me"),
                 PARLEY_ERR_STATE, "your own id");
    s_parley_err(a, "contacts.add", json_pack("{s:s, s:s}", "id", "not-an-id", "name", "x"),
                 PARLEY_ERR_MALFORMED, "node id");
    s_parley_err(a, "contacts.add", json_pack("{s:s, s:s}", "id", other_id, "name", "two words"),
                 PARLEY_ERR_MALFORMED, "name");
    s_parley_err(a, "contacts.add", json_pack("{s:s, s:s}", "id", b->id, "name", "robert"),
                 PARLEY_ERR_EXISTS, "'bob'");
    s_bad_params(a, "contacts.add", json_pack("{s:s}", "id", b->id));
    s_bad_params(a, "contacts.add",
                 json_pack("{s:s, s:s, s:i}", "id", b->id, "name", "bob", "replace", 1));
    //  Not a contact: nothing to verify.
    s_parley_err(a, "contacts.verify", json_pack("{s:s}", "peer", other_id), PARLEY_ERR_NOTFOUND,
                 "contact");

    //  Verify by the contact's name; safety says so.
    ct = tk_call(a, "contacts.verify", json_pack("{s:s}", "peer", "bob"));
    CHECK(json_is_true(json_object_get(ct, "verified")) && strcmp(s_str(ct, "id"), b->id) == 0);
    json_decref(ct);
    json_t *s = tk_call(a, "safety", json_pack("{s:s}", "peer", "bob"));
    CHECK(json_is_true(json_object_get(s, "verified")));
    json_decref(s);
    //  Adding the same again keeps it verified; replacing the key does not.
    ct = tk_call(a, "contacts.add", json_pack("{s:s, s:s}", "id", b->id, "name", "bob"));
    CHECK(json_is_true(json_object_get(ct, "verified")));
    json_decref(ct);
    ct = tk_call(a, "contacts.add",
                 json_pack("{s:s, s:s, s:b}", "id", other_id, "name", "bob", "replace", 1));
    CHECK(json_is_false(json_object_get(ct, "verified")) && strcmp(s_str(ct, "id"), other_id) == 0);
    json_decref(ct);
    json_t *warn = tk_note(a, "warning", 5000);
    CHECK(warn && strcmp(s_str(warn, "kind"), "key_changed") == 0
          && strcmp(s_str(warn, "contact"), "bob") == 0);
    json_decref(warn);
    ct = tk_call(a, "contacts.add",
                 json_pack("{s:s, s:s, s:b}", "id", b->id, "name", "bob", "replace", 1));
    json_decref(ct);
    ct = tk_call(a, "contacts.add", json_pack("{s:s, s:s}", "id", other_id, "name", "carol"));
    json_decref(ct);

    list = tk_call(a, "contacts.list", NULL);
    CHECK(json_array_size(list) == 2);
    bool bob = false, carol = false;
    size_t i;
    json_t *c;
    json_array_foreach(list, i, c)
    {
        bob = bob || (strcmp(s_str(c, "name"), "bob") == 0 && strcmp(s_str(c, "id"), b->id) == 0);
        carol =
            carol
            || (strcmp(s_str(c, "name"), "carol") == 0 && strcmp(s_str(c, "id"), other_id) == 0);
    }
    CHECK(bob && carol);
    json_decref(list);

    //  A contact's name stands for its id; peers shows it.
    json_t *peers = tk_call(a, "peers", NULL);
    bool named = false;
    json_array_foreach(peers, i, c)
    {
        named = named
                || (strcmp(s_str(c, "id"), b->id) == 0
                    && strcmp(json_string_value(json_object_get(c, "name")), "bob") == 0);
    }
    CHECK(named);
    json_decref(peers);

    json_t *rm = tk_call(a, "contacts.remove", json_pack("{s:s}", "name", "carol"));
    CHECK(strcmp(s_str(rm, "name"), "carol") == 0 && json_is_true(json_object_get(rm, "removed")));
    json_decref(rm);
    s_parley_err(a, "contacts.remove", json_pack("{s:s}", "name", "carol"), PARLEY_ERR_NOTFOUND,
                 NULL);
    s_bad_params(a, "contacts.remove", json_pack("{s:i}", "name", 3));
    list = tk_call(a, "contacts.list", NULL);
    CHECK(json_array_size(list) == 1);
    json_decref(list);
    identity_destroy(&other);
}

static void
s_safety(tk_node_t *a, tk_node_t *b)
{
    json_t *sa = tk_call(a, "safety", json_pack("{s:s}", "peer", b->id));
    json_t *sb = tk_call(b, "safety", json_pack("{s:s}", "peer", a->id));
    CHECK(strcmp(s_str(sa, "peer"), b->id) == 0 && strcmp(s_str(sb, "peer"), a->id) == 0);
    const char *na = s_str(sa, "safety_number");
    CHECK(strlen(na) >= PARLEY_SAFETY_DIGITS);
    CHECK(strcmp(na, s_str(sb, "safety_number")) == 0);
    CHECK(json_is_false(json_object_get(sb, "verified")));
    json_decref(sa);
    json_decref(sb);
    //  By short id, the same number.
    char sid[PARLEY_SHORT_ID_STRLEN + 1];
    snprintf(sid, sizeof sid, "%.8s", b->id);
    json_t *ss = tk_call(a, "safety", json_pack("{s:s}", "peer", sid));
    sa = tk_call(a, "safety", json_pack("{s:s}", "peer", b->id));
    CHECK(strcmp(s_str(ss, "safety_number"), s_str(sa, "safety_number")) == 0);
    json_decref(ss);
    json_decref(sa);
    //  With a third key, another number.
    identity_t *other = identity_new();
    char other_id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(other), other_id);
    json_t *so = tk_call(a, "safety", json_pack("{s:s}", "peer", other_id));
    sa = tk_call(a, "safety", json_pack("{s:s}", "peer", b->id));
    CHECK(strcmp(s_str(so, "safety_number"), s_str(sa, "safety_number")) != 0);
    json_decref(so);
    json_decref(sa);
    identity_destroy(&other);
    s_parley_err(a, "safety", json_pack("{s:s}", "peer", "nobody"), PARLEY_ERR_NOTFOUND, "nobody");
    s_bad_params(a, "safety", NULL);
}

//  b dialled a (a is its seed): a sees an inbound peer, b an outbound one.
static void
s_peers(tk_node_t *a, tk_node_t *b)
{
    static const char *const fields[] = { "id",     "short_id",        "name",      "endpoint",
                                          "online", "connected_since", "last_seen", "direction",
                                          "source", "last_error" };
    json_t *pa = tk_call(a, "peers", NULL);
    json_t *pb = tk_call(b, "peers", NULL);
    CHECK(json_array_size(pa) == 1 && json_array_size(pb) == 1);
    json_t *ab = json_array_get(pa, 0), *ba = json_array_get(pb, 0);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        CHECK(json_object_get(ab, fields[i]) && json_object_get(ba, fields[i]));
    }
    CHECK(strcmp(s_str(ab, "id"), b->id) == 0 && strcmp(s_str(ba, "id"), a->id) == 0);
    CHECK(json_is_true(json_object_get(ab, "online"))
          && json_is_true(json_object_get(ba, "online")));
    CHECK(s_int(ab, "connected_since") > 0 && s_int(ba, "connected_since") > 0);
    CHECK(s_int(ab, "last_seen") > 0);
    CHECK(strcmp(s_str(ba, "source"), "seed") == 0
          && strcmp(s_str(ba, "direction"), "outbound") == 0);
    CHECK(strcmp(s_str(ba, "endpoint"), parley_endpoint(a->node)) == 0);
    CHECK(strcmp(s_str(ab, "source"), "inbound") == 0);
    CHECK(strcmp(s_str(ab, "last_error"), "") == 0 && strcmp(s_str(ba, "last_error"), "") == 0);
    json_decref(pa);
    json_decref(pb);
}

static void
s_history(tk_node_t *a, tk_node_t *b)
{
    static const char *const texts[] = { "one", "two", "three" };
    for (size_t i = 0; i < 3; i++) {
        json_t *m = tk_send(a, b->id, texts[i]);
        CHECK(strcmp(s_str(m, "text"), texts[i]) == 0
              && json_is_true(json_object_get(m, "outgoing")));
        CHECK(strcmp(s_str(m, "peer"), b->id) == 0 && strcmp(s_str(m, "from"), a->id) == 0);
        CHECK(strcmp(s_str(m, "state"), "stored") == 0 && s_int(m, "seq") >= 1);
        CHECK(strlen(s_str(m, "msg_id")) > 0 && strlen(s_str(m, "envelope_id")) > 0);
        json_decref(m);
    }
    TK_WAIT(10000, tk_count(b, a->id, "received") == 3);
    //  The newest LIMIT, oldest first; 0 and the default give all of them.
    json_t *h = tk_call(a, "history", json_pack("{s:s, s:i}", "peer", b->id, "limit", 2));
    CHECK(json_array_size(h) == 2);
    CHECK(strcmp(s_str(json_array_get(h, 0), "text"), "two") == 0);
    CHECK(strcmp(s_str(json_array_get(h, 1), "text"), "three") == 0);
    json_decref(h);
    h = tk_call(a, "history", json_pack("{s:s, s:i}", "peer", b->id, "limit", 1));
    CHECK(json_array_size(h) == 1 && strcmp(s_str(json_array_get(h, 0), "text"), "three") == 0);
    json_decref(h);
    h = tk_call(a, "history", json_pack("{s:s, s:i}", "peer", b->id, "limit", 0));
    CHECK(json_array_size(h) == 3 && strcmp(s_str(json_array_get(h, 0), "text"), "one") == 0);
    json_decref(h);
    h = tk_call(b, "history", json_pack("{s:s}", "peer", a->id));
    CHECK(json_array_size(h) == 3);
    json_t *m = json_array_get(h, 2);
    CHECK(strcmp(s_str(m, "text"), "three") == 0 && !json_is_true(json_object_get(m, "outgoing")));
    CHECK(strcmp(s_str(m, "from"), a->id) == 0 && strcmp(s_str(m, "state"), "received") == 0);
    json_decref(h);
    s_bad_params(a, "history", json_pack("{s:s, s:i}", "peer", b->id, "limit", -1));
    s_bad_params(a, "history", json_pack("{s:s, s:s}", "peer", b->id, "limit", "2"));
    s_parley_err(a, "history", json_pack("{s:s}", "peer", "nobody"), PARLEY_ERR_NOTFOUND, NULL);
}

static void
s_send_errors(tk_node_t *a, tk_node_t *b)
{
    size_t before = tk_count(a, b->id, NULL);
    //  Unknown names, a too-short id prefix, one's own id.
    s_parley_err(a, "send", json_pack("{s:s, s:s}", "peer", "nobody", "text", "hi"),
                 PARLEY_ERR_NOTFOUND, "unknown peer");
    s_parley_err(a, "send", json_pack("{s:s, s:s}", "peer", "abc", "text", "hi"),
                 PARLEY_ERR_NOTFOUND, NULL);
    s_parley_err(a, "send", json_pack("{s:s, s:s}", "peer", a->id, "text", "hi"), PARLEY_ERR_STATE,
                 "yourself");
    //  Missing or mistyped parameters.
    s_bad_params(a, "send", json_pack("{s:s}", "peer", b->id));
    s_bad_params(a, "send", json_pack("{s:s}", "text", "hi"));
    //  A missing parameter is named.
    char *msg = NULL;
    CHECK(s_code(a, "send", json_pack("{s:s}", "peer", b->id), &msg) == API_ERR_PARAMS);
    CHECK(msg && strcmp(msg, "missing parameter: text") == 0);
    free(msg);
    msg = NULL;
    CHECK(s_code(a, "send", json_pack("{s:s}", "text", "hi"), &msg) == API_ERR_PARAMS);
    CHECK(msg && strcmp(msg, "missing parameter: peer") == 0);
    free(msg);
    s_bad_params(a, "send", NULL);
    s_bad_params(a, "send", json_pack("{s:s, s:i}", "peer", b->id, "text", 5));
    s_bad_params(a, "send", json_pack("{s:i, s:s}", "peer", 5, "text", "hi"));
    s_bad_params(a, "send", json_pack("{s:s, s:[s]}", "peer", b->id, "text", "hi"));
    s_bad_params(a, "send",
                 json_pack("{s:s, s:s, s:s}", "peer", b->id, "text", "hi", "ttl_ms", "1"));
    s_bad_params(a, "send",
                 json_pack("{s:s, s:s, s:I}", "peer", b->id, "text", "hi", "ttl_ms",
                           (json_int_t)(11 * 365 * NODE_DAY_MS)));
    //  Empty text and text over the limit: a Parley limit error.
    s_parley_err(a, "send", json_pack("{s:s, s:s}", "peer", b->id, "text", ""), PARLEY_ERR_LIMIT,
                 "1 to");
    char *big = malloc(PARLEY_TEXT_MAX + 2);
    CHECK(big);
    memset(big, 'z', PARLEY_TEXT_MAX + 1);
    big[PARLEY_TEXT_MAX + 1] = '\0';
    s_parley_err(a, "send", json_pack("{s:s, s:s}", "peer", b->id, "text", big), PARLEY_ERR_LIMIT,
                 NULL);
    CHECK(tk_count(a, b->id, NULL) == before); // nothing of those was stored
    //  Exactly the limit goes.
    big[PARLEY_TEXT_MAX] = '\0';
    json_t *m = tk_send(a, b->id, big);
    CHECK(strlen(s_str(m, "text")) == PARLEY_TEXT_MAX);
    json_decref(m);
    free(big);
    TK_WAIT(10000, tk_count(b, a->id, NULL) == before + 1);

    //  A valid id never seen: accepted, waiting for its prekey as queued.
    identity_t *other = identity_new();
    char other_id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(other), other_id);
    m = tk_send(a, other_id, "anyone there?");
    CHECK(strcmp(s_str(m, "state"), "queued") == 0 && strcmp(s_str(m, "peer"), other_id) == 0);
    json_decref(m);
    CHECK(tk_count(a, other_id, "queued") == 1);
    identity_destroy(&other);
}

static void
s_methods(tk_node_t *a)
{
    char *msg = NULL;
    CHECK(s_code(a, "no.such.method", NULL, &msg) == API_ERR_METHOD);
    CHECK(msg && strstr(msg, "method not found"));
    free(msg);
    msg = NULL;
    CHECK(tk_call_err(a, "no.such.method", NULL, &msg) == PARLEY_ERR_MALFORMED);
    CHECK(msg && strstr(msg, "method not found"));
    free(msg);
    //  Parameters by name only; extra ones are ignored.
    json_t *r = tk_call(a, "id", json_pack("{s:i}", "extra", 1));
    json_decref(r);
    r = tk_call(a, "subscribe", NULL);
    CHECK(json_is_true(json_object_get(r, "subscribed")));
    json_decref(r);
}

//  A raw connection to HOME/api.sock.
static int
s_raw_connect(const tk_node_t *n)
{
    struct sockaddr_un addr;
    memset(&addr, 0, sizeof addr);
    addr.sun_family = AF_UNIX;
    int len = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/api.sock", n->home);
    CHECK(len > 0 && (size_t)len < sizeof addr.sun_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0);
    return fd;
}

static void
s_raw_put(int fd, const char *line)
{
    size_t len = strlen(line);
    CHECK(send(fd, line, len, MSG_NOSIGNAL) == (ssize_t)len);
}

//  The next line on fd within ms, parsed; NULL on timeout.
static json_t *
s_raw_get(int fd, char *buf, size_t cap, size_t *have, int ms)
{
    uint64_t end = tk_ms() + (uint64_t)ms;
    for (;;) {
        char *nl = memchr(buf, '\n', *have);
        if (nl) {
            size_t n = (size_t)(nl - buf);
            json_error_t jerr;
            json_t *obj = json_loadb(buf, n, 0, &jerr);
            CHECK(obj);
            memmove(buf, nl + 1, *have - n - 1);
            *have -= n + 1;
            return obj;
        }
        uint64_t now = tk_ms();
        if (now >= end) {
            return NULL;
        }
        struct pollfd p = { fd, POLLIN, 0 };
        if (poll(&p, 1, (int)(end - now)) > 0) {
            ssize_t r = read(fd, buf + *have, cap - *have);
            CHECK(r > 0);
            *have += (size_t)r;
        }
    }
}

static int
s_error_code(const json_t *reply)
{
    return (int)s_int(json_object_get(reply, "error"), "code");
}

static void
s_raw_lines(tk_node_t *a)
{
    int fd = s_raw_connect(a);
    char buf[65536];
    size_t have = 0;
    //  Not JSON: a parse error with a null id.
    s_raw_put(fd, "this is not json\n");
    json_t *r = s_raw_get(fd, buf, sizeof buf, &have, 5000);
    CHECK(r && s_error_code(r) == API_ERR_PARSE && json_is_null(json_object_get(r, "id")));
    json_decref(r);
    //  The connection still answers.
    s_raw_put(fd, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"id\"}\n");
    r = s_raw_get(fd, buf, sizeof buf, &have, 5000);
    CHECK(r && s_int(r, "id") == 7);
    CHECK(strcmp(s_str(json_object_get(r, "result"), "id"), a->id) == 0);
    json_decref(r);
    //  JSON, but no request: -32600 (a batch of two: two of them); params
    //  by position: -32600 too.
    s_raw_put(fd, "42\n");
    r = s_raw_get(fd, buf, sizeof buf, &have, 5000);
    CHECK(r && s_error_code(r) == API_ERR_INVALID);
    json_decref(r);
    s_raw_put(fd, "[1,2]\n");
    r = s_raw_get(fd, buf, sizeof buf, &have, 5000);
    CHECK(json_array_size(r) == 2 && s_error_code(json_array_get(r, 1)) == API_ERR_INVALID);
    json_decref(r);
    s_raw_put(fd, "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"send\",\"params\":[\"x\",\"y\"]}\n");
    r = s_raw_get(fd, buf, sizeof buf, &have, 5000);
    //  ... and its error carries the request's id, as JSON-RPC 2.0 says.
    CHECK(r && s_error_code(r) == API_ERR_INVALID && s_int(r, "id") == 8);
    json_decref(r);
    s_raw_put(fd, "{\"jsonrpc\":\"1.0\",\"id\":\"v\",\"method\":\"id\"}\n");
    r = s_raw_get(fd, buf, sizeof buf, &have, 5000);
    CHECK(r && s_error_code(r) == API_ERR_INVALID && strcmp(s_str(r, "id"), "v") == 0);
    json_decref(r);
    //  A notification (no id) is not answered; answers keep request order.
    s_raw_put(fd, "{\"jsonrpc\":\"2.0\",\"method\":\"id\"}\n"
                  "{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"status\"}\n"
                  "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"id\"}\n");
    r = s_raw_get(fd, buf, sizeof buf, &have, 5000);
    CHECK(r && strcmp(s_str(r, "id"), "s") == 0 && json_object_get(r, "result"));
    json_decref(r);
    r = s_raw_get(fd, buf, sizeof buf, &have, 5000);
    CHECK(r && s_int(r, "id") == 9);
    json_decref(r);
    CHECK(s_raw_get(fd, buf, sizeof buf, &have, 300) == NULL);
    close(fd);
}

//  A row of the database that fails its check on the way out (a sending
//  session's key cut short, as a damaged page could): send says the
//  database is damaged and what to do, never that the text is bad. Last:
//  the node is left with the damage.
static void
s_damaged_send(tk_node_t *a, tk_node_t *b)
{
    CHECK(tk_sql_int(a, "SELECT count(*) FROM send_sessions") >= 1);
    char path[4200];
    snprintf(path, sizeof path, "%s/parley.db", a->home);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    CHECK(sqlite3_busy_timeout(db, 5000) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "UPDATE send_sessions SET key = x'00'", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_close(db) == SQLITE_OK);
    char *msg = NULL;
    int code = tk_call_err(a, "send", json_pack("{s:s, s:s}", "peer", b->id, "text", "hi"), &msg);
    CHECK(code == PARLEY_ERR_CORRUPT);
    CHECK(msg && strstr(msg, "damaged") && strstr(msg, "parley recover") && !strstr(msg, "UTF-8"));
    free(msg);
}

//  Batches: one array of responses in request order; notifications in it
//  get none; an empty or oversized batch is one invalid-request error.
static void
s_raw_batches(tk_node_t *a)
{
    int fd = s_raw_connect(a);
    char buf[65536];
    size_t have = 0;
    s_raw_put(fd, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"id\"},"
                  "{\"jsonrpc\":\"2.0\",\"method\":\"id\"},"
                  "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"},"
                  "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"send\",\"params\":{}},"
                  "42]\n");
    json_t *r = s_raw_get(fd, buf, sizeof buf, &have, 5000);
    CHECK(json_is_array(r) && json_array_size(r) == 4);
    CHECK(s_int(json_array_get(r, 0), "id") == 1
          && json_object_get(json_array_get(r, 0), "result"));
    CHECK(s_int(json_array_get(r, 1), "id") == 2
          && s_error_code(json_array_get(r, 1)) == API_ERR_METHOD);
    CHECK(s_int(json_array_get(r, 2), "id") == 3
          && s_error_code(json_array_get(r, 2)) == API_ERR_PARAMS);
    CHECK(json_is_null(json_object_get(json_array_get(r, 3), "id"))
          && s_error_code(json_array_get(r, 3)) == API_ERR_INVALID);
    json_decref(r);
    s_raw_put(fd, "[]\n");
    r = s_raw_get(fd, buf, sizeof buf, &have, 5000);
    CHECK(json_is_object(r) && s_error_code(r) == API_ERR_INVALID);
    json_decref(r);
    //  Only notifications: nothing comes back.
    s_raw_put(fd, "[{\"jsonrpc\":\"2.0\",\"method\":\"id\"}]\n");
    CHECK(s_raw_get(fd, buf, sizeof buf, &have, 300) == NULL);
    //  Over API_BATCH_MAX: one error naming the bound, nothing run.
    char big[8192];
    size_t off = 0;
    big[off++] = '[';
    for (unsigned i = 0; i <= API_BATCH_MAX; i++) {
        off += (size_t)snprintf(big + off, sizeof big - off,
                                "%s{\"jsonrpc\":\"2.0\",\"id\":%u,\"method\":\"id\"}", i ? "," : "",
                                i);
    }
    snprintf(big + off, sizeof big - off, "]\n");
    s_raw_put(fd, big);
    r = s_raw_get(fd, buf, sizeof buf, &have, 5000);
    char bound[16];
    snprintf(bound, sizeof bound, "%u", API_BATCH_MAX);
    CHECK(json_is_object(r) && s_error_code(r) == API_ERR_INVALID);
    CHECK(strstr(s_str(json_object_get(r, "error"), "message"), bound));
    json_decref(r);
    close(fd);
}

//  history pages: at most API_HISTORY_MAX per call (limit 0 is that max,
//  not everything), and `before` (a msg_id) pages back to the start.
static void
s_history_pages(tk_node_t *a)
{
    identity_t *other = identity_new();
    char peer[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(other), peer);
    identity_destroy(&other);
    //  API_HISTORY_MAX + 1 messages to a node never seen (they stay queued),
    //  sent in batches.
    int fd = s_raw_connect(a);
    static char buf[1u << 20];
    size_t have = 0;
    size_t total = API_HISTORY_MAX + 1;
    for (size_t sent = 0; sent < total;) {
        char line[16384];
        size_t off = 0;
        line[off++] = '[';
        size_t k = 0;
        for (; k < API_BATCH_MAX && sent + k < total; k++) {
            off += (size_t)snprintf(line + off, sizeof line - off,
                                    "%s{\"jsonrpc\":\"2.0\",\"id\":%zu,\"method\":\"send\","
                                    "\"params\":{\"peer\":\"%s\",\"text\":\"m%zu\"}}",
                                    k ? "," : "", sent + k, peer, sent + k);
            CHECK(off < sizeof line);
        }
        snprintf(line + off, sizeof line - off, "]\n");
        s_raw_put(fd, line);
        json_t *r = s_raw_get(fd, buf, sizeof buf, &have, 10000);
        CHECK(json_array_size(r) == k);
        CHECK(json_object_get(json_array_get(r, k - 1), "result"));
        json_decref(r);
        sent += k;
    }
    close(fd);
    json_t *h = tk_call(a, "history", json_pack("{s:s, s:i}", "peer", peer, "limit", 0));
    CHECK(json_array_size(h) == API_HISTORY_MAX);
    CHECK(strcmp(s_str(json_array_get(h, 0), "text"), "m1") == 0);
    CHECK(strcmp(s_str(json_array_get(h, API_HISTORY_MAX - 1), "text"), "m1000") == 0);
    char *cursor = strdup(s_str(json_array_get(h, 0), "msg_id"));
    json_decref(h);
    h = tk_call(a, "history", json_pack("{s:s, s:i}", "peer", peer, "limit", 100000));
    CHECK(json_array_size(h) == API_HISTORY_MAX);
    json_decref(h);
    //  The page before the oldest one: the one message left, then nothing.
    h = tk_call(a, "history", json_pack("{s:s, s:s}", "peer", peer, "before", cursor));
    CHECK(json_array_size(h) == 1 && strcmp(s_str(json_array_get(h, 0), "text"), "m0") == 0);
    free(cursor);
    cursor = strdup(s_str(json_array_get(h, 0), "msg_id"));
    json_decref(h);
    h = tk_call(a, "history", json_pack("{s:s, s:s}", "peer", peer, "before", cursor));
    CHECK(json_array_size(h) == 0);
    json_decref(h);
    //  Pages of 3 back from m10: m7 m8 m9.
    h = tk_call(a, "history", json_pack("{s:s, s:i}", "peer", peer, "limit", 991));
    CHECK(strcmp(s_str(json_array_get(h, 0), "text"), "m10") == 0);
    free(cursor);
    cursor = strdup(s_str(json_array_get(h, 0), "msg_id"));
    json_decref(h);
    h = tk_call(a, "history",
                json_pack("{s:s, s:s, s:i}", "peer", peer, "before", cursor, "limit", 3));
    CHECK(json_array_size(h) == 3 && strcmp(s_str(json_array_get(h, 0), "text"), "m7") == 0);
    CHECK(strcmp(s_str(json_array_get(h, 2), "text"), "m9") == 0);
    json_decref(h);
    //  A cursor that is not a msg_id, or not one of this conversation.
    s_bad_params(a, "history", json_pack("{s:s, s:s}", "peer", peer, "before", "zz"));
    s_bad_params(a, "history", json_pack("{s:s, s:i}", "peer", peer, "before", 5));
    s_parley_err(
        a, "history",
        json_pack("{s:s, s:s}", "peer", peer, "before", "00000000000000000000000000000000"),
        PARLEY_ERR_NOTFOUND, "before");
    free(cursor);
    //  Long messages: a page stops at about API_HISTORY_BYTES of text,
    //  keeping the newest; the next page goes on from there.
    other = identity_new();
    identity_node_id(identity_ed_pk(other), peer);
    identity_destroy(&other);
    size_t big_n = API_HISTORY_BYTES / 32000 + 20;
    char *big = malloc(32001);
    CHECK(big);
    for (size_t i = 0; i < big_n; i++) {
        memset(big, (int)('a' + i % 26), 32000);
        big[32000] = '\0';
        json_decref(tk_send(a, peer, big));
    }
    free(big);
    h = tk_call(a, "history", json_pack("{s:s, s:i}", "peer", peer, "limit", 0));
    size_t first = json_array_size(h);
    CHECK(first > 0 && first < big_n);
    CHECK(s_str(json_array_get(h, first - 1), "text")[0] == (char)('a' + (big_n - 1) % 26));
    cursor = strdup(s_str(json_array_get(h, 0), "msg_id"));
    json_decref(h);
    h = tk_call(a, "history", json_pack("{s:s, s:s}", "peer", peer, "before", cursor));
    CHECK(json_array_size(h) == big_n - first);
    CHECK(s_str(json_array_get(h, 0), "text")[0] == 'a');
    json_decref(h);
    free(cursor);
}

//  Whether "id" succeeds on a connection of its own.
static bool
s_fresh_call_ok(tk_node_t *a)
{
    client_t *c = NULL;
    if (client_connect(a->home, &c) != PARLEY_OK) {
        return false;
    }
    json_t *res = NULL;
    char *msg = NULL;
    int rc = client_call(c, "id", NULL, &res, &msg);
    json_decref(res);
    free(msg);
    client_destroy(&c);
    return rc == PARLEY_OK;
}

//  Past the API's client limit a connection is told why, and client_call
//  (so the CLI) reports that message rather than a bare I/O error.
static void
s_too_many(tk_node_t *a)
{
    int fds[API_SERVER_CLIENTS_MAX + 1];
    size_t n = 0;
    char buf[4096];
    json_t *r = NULL;
    //  Each new connection asks something: an admitted one is answered, the
    //  one past the limit is told why instead (however slow the node is).
    static const char ask[] = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"id\"}\n";
    while (!r) {
        CHECK(n < API_SERVER_CLIENTS_MAX + 1);
        fds[n] = s_raw_connect(a);
        (void)!send(fds[n], ask, sizeof ask - 1, MSG_NOSIGNAL); // the refused may be closed
        size_t have = 0;
        r = s_raw_get(fds[n], buf, sizeof buf, &have, 10000);
        CHECK(r);
        n++;
        if (json_object_get(r, "result")) {
            json_decref(r);
            r = NULL;
        }
    }
    char want[64];
    snprintf(want, sizeof want, "too many API clients (%u)", API_SERVER_CLIENTS_MAX);
    CHECK(strstr(s_str(json_object_get(r, "error"), "message"), want));
    CHECK(json_is_null(json_object_get(r, "id")));
    json_decref(r);
    //  client_call reports the refusal. A place an earlier test's client
    //  left may be reaped only now: such a call succeeds, and its client
    //  keeps the place taken while the next one tries.
    client_t *kept[8];
    size_t n_kept = 0;
    for (;;) {
        client_t *c = NULL;
        CHECK(client_connect(a->home, &c) == PARLEY_OK);
        json_t *res = NULL;
        char *msg = NULL;
        int rc = client_call(c, "id", NULL, &res, &msg);
        if (rc == PARLEY_ERR_BUSY) {
            CHECK(!res && msg && strstr(msg, want));
            free(msg);
            client_destroy(&c);
            break;
        }
        if (rc != PARLEY_OK) {
            fprintf(stderr, "past the client limit: %s (%s)\n", parley_strerror(rc),
                    msg ? msg : "no message");
        }
        CHECK(rc == PARLEY_OK && n_kept < sizeof kept / sizeof kept[0]);
        json_decref(res);
        free(msg);
        kept[n_kept++] = c;
    }
    while (n_kept > 0) {
        client_destroy(&kept[--n_kept]);
    }
    while (n > 0) {
        close(fds[--n]);
    }
    //  The places free up again.
    TK_WAIT(5000, s_fresh_call_ok(a));
}

void
api_test(bool verbose)
{
    char dir[256];
    tk_dir(dir, sizeof dir);
    tk_opts_t opts = { .verbose = verbose };
    tk_node_t *a = tk_node_start(dir, "a", &opts);
    s_id(a);
    s_status(a, 0);
    opts.seed = a->seed;
    tk_node_t *b = tk_node_start(dir, "b", &opts);
    TK_WAIT(10000, tk_online(a, b->id) && tk_online(b, a->id));
    s_status(a, 1);
    s_id(b);
    s_peers(a, b);
    s_safety(a, b);
    s_contacts(a, b);
    s_history(a, b);
    s_send_errors(a, b);
    s_methods(a);
    s_raw_lines(a);
    s_raw_batches(a);
    s_history_pages(a);
    s_too_many(a);
    s_damaged_send(a, b);
    tk_node_stop(&b);
    tk_node_stop(&a);
    tk_dir_remove(dir);
}
