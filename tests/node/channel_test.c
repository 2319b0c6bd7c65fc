/*  tests/node/channel_test.c — channels between three nodes on loopback.
 *
 *  a creates #ops and adds b and c; each gets the control log and the
 *  epoch key (sealed to it under its DM session with a) and learns the
 *  channel's name from its first message. Messages go every way, each one
 *  envelope in the channel's msg scope; every node shows the same messages
 *  in the same order. A member that is not an admin cannot add; none of
 *  the text is in the log as plaintext.
 *
 *  Then a hostile member: a raw peer with m's own key (m stopped) floods a
 *  channel it is in with void ADDs, with messages that do not open under
 *  the key they name, and with messages naming a key nobody sent. a holds
 *  CHANNELS_EVENTS_PER_MEMBER of its events and refuses the rest, keeps
 *  none of the first messages and CHANNELS_WAITING_PER_AUTHOR of the
 *  others, bans it, and its admin still manages the channel.
 */
#include "testkit.h"

#include "../../node/channel.h"
#include "../../proto/chan.h"
#include "../../proto/content.h"
#include "../../proto/roster.h"
#include <sodium.h>
#include <string.h>

static json_t *
s_history(tk_node_t *n, const char *channel)
{
    json_t *h = tk_call(n, "channel.history", json_pack("{s:s}", "channel", channel));
    json_t *msgs = json_incref(json_object_get(h, "messages"));
    json_decref(h);
    return msgs;
}

//  The messages of channel on n, or 0 while n does not know it (yet).
static size_t
s_count(tk_node_t *n, const char *channel)
{
    json_t *result = NULL;
    char *why = NULL;
    int rc = client_call(n->api, "channel.history", json_pack("{s:s}", "channel", channel), &result,
                         &why);
    free(why);
    size_t count = rc == PARLEY_OK ? json_array_size(json_object_get(result, "messages")) : 0;
    json_decref(result);
    return count;
}

//  Whether n knows channel by that name or id.
static bool
s_knows(tk_node_t *n, const char *channel)
{
    json_t *result = NULL;
    char *why = NULL;
    int rc =
        client_call(n->api, "channel.info", json_pack("{s:s}", "channel", channel), &result, &why);
    free(why);
    json_decref(result);
    return rc == PARLEY_OK;
}

//  Sends text to channel on n once n holds the current epoch's key (right
//  after a removal the key is drawn in a later step, or on its way).
static void
s_send(tk_node_t *n, const char *channel, const char *text)
{
    uint64_t end = tk_ms() + 15000;
    for (;;) {
        json_t *result = NULL;
        char *why = NULL;
        int rc =
            client_call(n->api, "channel.send",
                        json_pack("{s:s, s:s}", "channel", channel, "text", text), &result, &why);
        json_decref(result);
        if (rc == PARLEY_OK) {
            free(why);
            return;
        }
        if (rc != PARLEY_ERR_NOKEY || tk_ms() > end) {
            fprintf(stderr, "channel.send: %s\n", why ? why : "?");
            abort();
        }
        free(why);
        tk_sleep(50);
    }
}

static int64_t
s_info_int(tk_node_t *n, const char *channel, const char *key)
{
    json_t *info = tk_call(n, "channel.info", json_pack("{s:s}", "channel", channel));
    json_t *field = json_object_get(info, key);
    int64_t v = json_is_boolean(field) ? json_is_true(field) : json_integer_value(field);
    json_decref(info);
    return v;
}

//  Field key (delivered, read, of) of n's own message text in #ops.
static int64_t
s_mark(tk_node_t *n, const char *text, const char *key)
{
    json_t *msgs = s_history(n, "ops");
    int64_t v = -1;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "text")), text) == 0) {
            v = json_integer_value(json_object_get(m, key));
        }
    }
    json_decref(msgs);
    return v;
}

//  The role n's fold gives member in channel ("" when none).
static bool
s_role_is(tk_node_t *n, const char *channel, const char *member, const char *role)
{
    json_t *info = tk_call(n, "channel.info", json_pack("{s:s}", "channel", channel));
    bool is = false;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(info, "member_list"), i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "id")), member) == 0) {
            is = strcmp(json_string_value(json_object_get(m, "role")), role) == 0;
        }
    }
    json_decref(info);
    return is;
}

static void
s_same_history(tk_node_t *a, tk_node_t *b, const char *channel)
{
    json_t *ha = s_history(a, channel), *hb = s_history(b, channel);
    CHECK(json_array_size(ha) == json_array_size(hb));
    for (size_t i = 0; i < json_array_size(ha); i++) {
        json_t *ma = json_array_get(ha, i), *mb = json_array_get(hb, i);
        CHECK(strcmp(json_string_value(json_object_get(ma, "text")),
                     json_string_value(json_object_get(mb, "text")))
              == 0);
        CHECK(json_equal(json_object_get(ma, "from"), json_object_get(mb, "from")));
    }
    json_decref(ha);
    json_decref(hb);
}

//  A message naming (epoch, key_id) at step seq, sealed under a random key:
//  no member's key opens it.
static size_t
s_junk_msg(tk_raw_t *r, const uint8_t scope[32], uint64_t seq, uint32_t epoch,
           const uint8_t key_id[CHAN_KEY_ID_LEN], uint8_t *out)
{
    static const uint8_t content[] = { CONTENT_TEXT, 'x' };
    chan_msg_header_t h = { .epoch = epoch, .counter = (uint32_t)seq };
    memcpy(h.key_id, key_id, CHAN_KEY_ID_LEN);
    envelope_t env;
    tk_raw_fields(r, ENVELOPE_KIND_CHAN_MSG, scope, seq, &env);
    uint8_t hdr[PARLEY_ENVELOPE_HEADER_LEN], mk[32];
    envelope_header(&env, chan_body_len(sizeof content), hdr);
    randombytes_buf(mk, sizeof mk);
    static uint8_t body[PARLEY_BODY_MAX];
    size_t blen = 0;
    CHECK(chan_body_seal(hdr, &h, mk, content, sizeof content, body, sizeof body, &blen)
          == PARLEY_OK);
    //  Sealed under the very header it was made for: only the key is wrong.
    env.body = body;
    env.body_len = blen;
    size_t n = 0;
    CHECK(envelope_seal(&env, identity_ed_sk(r->me), out, PARLEY_ENVELOPE_MAX, &n) == PARLEY_OK);
    return n;
}

//  How many envelopes of kind by pk a holds.
static int64_t
s_held(tk_node_t *a, const uint8_t pk[32], int kind)
{
    char hex[65], sql[256];
    sodium_bin2hex(hex, sizeof hex, pk, 32);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM envelopes WHERE author = x'%s' AND kind = %d",
             hex, kind);
    return tk_sql_int(a, sql);
}

//  A channel message committed in the iteration where an outbox resend to
//  its member comes due still goes out at once: the flush carries our DMs,
//  the push the rest. With a resend due every millisecond, nearly every
//  iteration is such a one; reconciliation is an hour away, so nothing
//  else brings the messages.
static void
s_push_on_resend(const char *dir, bool verbose)
{
    tk_opts_t opts = { .verbose = verbose, .retry_ms = 1, .sync_ms = 3600000 };
    tk_node_t *p = tk_node_start(dir, "p", &opts);
    opts.seed = p->seed;
    tk_node_t *q = tk_node_start(dir, "q", &opts);
    TK_WAIT(10000, tk_online(p, q->id) && tk_online(q, p->id));
    json_decref(tk_call(p, "channel.create", json_pack("{s:s}", "name", "due")));
    json_decref(
        tk_call(p, "channel.add", json_pack("{s:s, s:s}", "channel", "due", "peer", q->id)));
    TK_WAIT(15000, s_knows(q, "due") && s_info_int(q, "due", "keyed"));
    for (size_t i = 1; i <= 5; i++) {
        char text[32];
        snprintf(text, sizeof text, "pushed %zu", i);
        s_send(p, "due", text);
        TK_WAIT(5000, s_count(q, "due") == i);
    }
    tk_node_stop(&q);
    tk_node_stop(&p);
}

static void
s_hostile(const char *dir, const tk_opts_t *opts, tk_node_t *a)
{
    tk_node_t *m = tk_node_start(dir, "m", opts);
    TK_WAIT(10000, tk_online(a, m->id));
    json_decref(tk_call(a, "channel.create", json_pack("{s:s}", "name", "h")));
    json_decref(tk_call(a, "channel.add", json_pack("{s:s, s:s}", "channel", "h", "peer", m->id)));
    TK_WAIT(15000, s_knows(m, "h") && s_info_int(m, "h", "keyed"));
    char home[4096], mid[PARLEY_NODE_ID_STRLEN + 1];
    snprintf(home, sizeof home, "%s", m->home);
    snprintf(mid, sizeof mid, "%s", m->id);
    tk_node_stop(&m);
    TK_WAIT(10000, !tk_online(a, mid));

    uint8_t chan[32], scope[32], key_id[CHAN_KEY_ID_LEN], parent[32];
    CHECK(tk_sql_blob(a, "SELECT id FROM channels WHERE name = 'h'", chan, 32) == 32);
    chan_msg_scope(chan, scope);
    char hex[65], sql[256];
    sodium_bin2hex(hex, sizeof hex, chan, 32);
    snprintf(sql, sizeof sql, "SELECT key_id FROM chan_keys WHERE channel = x'%s'", hex);
    CHECK(tk_sql_blob(a, sql, key_id, sizeof key_id) == sizeof key_id);
    randombytes_buf(parent, sizeof parent); // never comes: the events wait, held
    tk_raw_t *raw = tk_raw_connect_as(a, tk_identity_load(home));
    const uint8_t *me = identity_ed_pk(raw->me);
    static uint8_t env[PARLEY_ENVELOPE_MAX];

    //  Void ADDs: a keeps CHANNELS_EVENTS_PER_MEMBER of m's, refuses the
    //  rest (relay_quota), and strikes m a little for each.
    uint64_t quota = tk_rejected(a, "relay_quota");
    const unsigned over = 8;
    for (unsigned k = 0; k < CHANNELS_EVENTS_PER_MEMBER + over; k++) {
        roster_event_t ev;
        memset(&ev, 0, sizeof ev);
        ev.type = ROSTER_ADD;
        ev.n_parents = 1;
        ev.parents = parent;
        randombytes_buf(ev.key, sizeof ev.key);
        ev.role = ROSTER_ROLE_ADMIN;
        uint8_t body[ROSTER_BODY_MAX];
        size_t blen = 0;
        CHECK(roster_event_encode(&ev, body, sizeof body, &blen) == PARLEY_OK);
        size_t len = tk_raw_env(raw, ENVELOPE_KIND_CHAN, chan, 1000 + k, body, blen, env);
        tk_raw_send_env(raw, env, len);
    }
    TK_WAIT(15000, tk_rejected(a, "relay_quota") >= quota + over);
    CHECK(s_held(a, me, ENVELOPE_KIND_CHAN) == CHANNELS_EVENTS_PER_MEMBER);

    //  Messages that do not open under the key they name: none kept.
    uint64_t undec = tk_rejected(a, "undecryptable");
    for (unsigned k = 0; k < 4; k++) {
        size_t len = s_junk_msg(raw, scope, 1 + k, 0, key_id, env);
        tk_raw_send_env(raw, env, len);
    }
    TK_WAIT(10000, tk_rejected(a, "undecryptable") >= undec + 4);
    CHECK(s_held(a, me, ENVELOPE_KIND_CHAN_MSG) == 0);

    //  Messages naming a key nobody sent wait for it, within m's share.
    uint8_t bogus[CHAN_KEY_ID_LEN];
    randombytes_buf(bogus, sizeof bogus);
    uint64_t dropped = tk_rejected(a, "undecryptable_dropped");
    for (unsigned k = 0; k < CHANNELS_WAITING_PER_AUTHOR + over; k++) {
        size_t len = s_junk_msg(raw, scope, 100 + k, 0, bogus, env);
        tk_raw_send_env(raw, env, len);
    }
    TK_WAIT(20000, tk_rejected(a, "undecryptable_dropped") >= dropped + over);
    CHECK(s_held(a, me, ENVELOPE_KIND_CHAN_MSG) == CHANNELS_WAITING_PER_AUTHOR);
    tk_raw_destroy(&raw);

    //  The admin still manages its channel, and m's flood made no member.
    CHECK(s_info_int(a, "h", "members") == 2);
    json_decref(tk_call(a, "channel.remove", json_pack("{s:s, s:s}", "channel", "h", "peer", mid)));
    CHECK(s_info_int(a, "h", "members") == 1);
}

//  Stops *n and starts it again on the same port, dialling seed (NULL:
//  none), after sql ran on its database.
static void
s_restart(const char *dir, const tk_opts_t *opts, tk_node_t **n, const char *name, const char *seed,
          const char *sql)
{
    char home[4096], listen[128];
    snprintf(home, sizeof home, "%s", (*n)->home);
    snprintf(listen, sizeof listen, "%.*s", (int)strcspn((*n)->seed, "#"), (*n)->seed);
    tk_node_stop(n);
    tk_sql_exec(home, sql);
    tk_opts_t o = *opts;
    o.listen = listen;
    o.seed = seed;
    *n = tk_node_start(dir, name, &o);
}

//  Keys bound to a fold that changed under them (the REMOVE or REKEY they
//  were bound to lost a concurrent conflict), faked in the databases of
//  #ops's members (epoch 0), all by a, the most senior:
//    b holds a dead key (bound, but the binding is not the epoch's) with
//    the smallest key_id: it must never seal under it; and a live one (the
//    epoch's binding) with the next key_id, which it must choose;
//    a and c hold that second key aside (a binding their folds do not
//    give: they learned the fold in the other order). They still open
//    what b sealed under it.
//  b then sends one message, which a and c must show.
static void
s_dead_keys(const char *dir, tk_opts_t *opts, tk_node_t **a, tk_node_t **b, tk_node_t **c)
{
    static const char *const fake =
        "INSERT INTO chan_keys (channel, epoch, key_id, key, author, binding, bound, added_ms)"
        " SELECT channel, epoch, x'0000000000000001', x'4242424242424242424242424242424242424242"
        "424242424242424242424242', author, %s, %d, added_ms FROM chan_keys WHERE epoch = 0"
        " LIMIT 1;";
    char aside[512], for_b[1024];
    snprintf(aside, sizeof aside, fake, "randomblob(32)", 0);
    int n = snprintf(for_b, sizeof for_b, fake, "binding", 1);
    snprintf(for_b + n, sizeof for_b - (size_t)n, "%s",
             "INSERT INTO chan_keys (channel, epoch, key_id, key, author, binding, bound,"
             " added_ms) SELECT channel, epoch, zeroblob(8), randomblob(32), author,"
             " randomblob(32), 1, added_ms FROM chan_keys WHERE epoch = 0 LIMIT 1;");
    char seed_a[400];
    snprintf(seed_a, sizeof seed_a, "%s", (*a)->seed);
    s_restart(dir, opts, b, "b", seed_a, for_b);
    s_restart(dir, opts, c, "c", seed_a, aside);
    s_restart(dir, opts, a, "a", NULL, aside);
    opts->seed = (*a)->seed; // the same endpoint and id as before
                             //  b and c dial a; c may get b's message from a (reconciliation).
    TK_WAIT(20000, tk_online(*a, (*b)->id) && tk_online(*b, (*a)->id) && tk_online(*a, (*c)->id)
                       && tk_online(*c, (*a)->id));
    s_send(*b, "ops", "b past a dead key");
}

void
channel_test(bool verbose)
{
    char dir[256];
    tk_dir(dir, sizeof dir);
    tk_opts_t opts = { .verbose = verbose, .relay = true };
    tk_node_t *r = tk_node_start(dir, "r", &opts);
    opts.relay = false;
    opts.seed = r->seed;
    tk_node_t *a = tk_node_start(dir, "a", &opts);
    opts.seed = a->seed;
    tk_node_t *b = tk_node_start(dir, "b", &opts);
    tk_node_t *c = tk_node_start(dir, "c", &opts);
    TK_WAIT(10000, tk_online(a, b->id) && tk_online(a, c->id) && tk_online(b, c->id)
                       && tk_online(r, a->id) && tk_online(r, b->id) && tk_online(r, c->id));

    json_t *made = tk_call(a, "channel.create",
                           json_pack("{s:s, s:s}", "name", "ops", "topic", "deploys and pages"));
    CHECK(strcmp(json_string_value(json_object_get(made, "name")), "ops") == 0);
    CHECK(json_integer_value(json_object_get(made, "members")) == 1);
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(made, "channel")));
    json_decref(made);
    char *msg = NULL;
    CHECK(tk_call_err(a, "channel.create", json_pack("{s:s}", "name", "ops"), &msg)
          == PARLEY_ERR_EXISTS);
    free(msg);
    CHECK(tk_call_err(a, "channel.create", json_pack("{s:s}", "name", "two words"), &msg)
          == PARLEY_ERR_MALFORMED);
    free(msg);

    json_decref(
        tk_call(a, "channel.add", json_pack("{s:s, s:s}", "channel", "#ops", "peer", b->id)));
    json_decref(
        tk_call(a, "channel.add", json_pack("{s:s, s:s}", "channel", "ops", "peer", c->id)));
    json_t *info = tk_call(a, "channel.info", json_pack("{s:s}", "channel", "ops"));
    CHECK(json_integer_value(json_object_get(info, "members")) == 3);
    CHECK(json_array_size(json_object_get(info, "member_list")) == 3);
    json_decref(info);

    //  b and c take the channel up: its name comes with the first message.
    TK_WAIT(15000, s_knows(b, "ops") && s_knows(c, "ops"));
    CHECK(s_knows(b, id) && s_count(b, id) == 0);
    json_decref(tk_call(a, "channel.send",
                        json_pack("{s:s, s:s}", "channel", "ops", "text", "release at five")));
    TK_WAIT(15000, s_count(b, "ops") == 1 && s_count(c, "ops") == 1);
    json_decref(tk_call(b, "channel.send",
                        json_pack("{s:s, s:s}", "channel", "ops", "text", "b is ready")));
    json_decref(tk_call(c, "channel.send",
                        json_pack("{s:s, s:s}", "channel", "ops", "text", "c is ready")));
    TK_WAIT(15000, s_count(a, "ops") == 3 && s_count(b, "ops") == 3 && s_count(c, "ops") == 3);
    s_same_history(a, b, "ops");
    s_same_history(a, c, "ops");

    //  Receipts: one per member for everything it holds; a's first message
    //  is delivered to both, then read by b.
    TK_WAIT(10000, s_mark(a, "release at five", "delivered") == 2);
    CHECK(s_mark(a, "release at five", "read") == 0 && s_mark(a, "release at five", "of") == 2);
    json_t *rd = tk_call(b, "channel.read", json_pack("{s:s}", "channel", "ops"));
    CHECK(json_integer_value(json_object_get(rd, "marked")) == 2); // a's and c's
    json_decref(rd);
    TK_WAIT(10000, s_mark(a, "release at five", "read") == 1);
    json_t *list = tk_call(b, "channel.list", NULL);
    CHECK(json_integer_value(
              json_object_get(json_array_get(json_object_get(list, "channels"), 0), "unread"))
          == 0);
    json_decref(list);
    //  Receipts are a few envelopes, not one per message per member.
    CHECK(tk_sql_int(a, "SELECT count(*) FROM envelopes WHERE kind = 5") <= 4 + 3 * 3);

    s_dead_keys(dir, &opts, &a, &b, &c);
    TK_WAIT(20000, s_count(a, "ops") == 4 && s_count(c, "ops") == 4);

    //  A member is not an admin: it cannot add.
    tk_node_t *d = tk_node_start(dir, "d", &opts);
    CHECK(tk_call_err(b, "channel.add", json_pack("{s:s, s:s}", "channel", "ops", "peer", d->id),
                      &msg)
          == PARLEY_ERR_STATE);
    free(msg);

    //  The relay holds every envelope of the channel and none of its text;
    //  a node outside it holds nothing of it.
    TK_WAIT(10000, tk_sql_int(r, "SELECT count(*) FROM envelopes WHERE kind = 5")
                       == tk_sql_int(a, "SELECT count(*) FROM envelopes WHERE kind = 5"));
    CHECK(tk_sql_int(a, "SELECT count(*) FROM chan_msgs") == 4);
    CHECK(tk_db_has(a, "b is ready"));
    CHECK(!tk_db_has(r, "b is ready") && !tk_db_has(r, "release at five") && !tk_db_has(r, "ops"));
    CHECK(!tk_db_has(d, "release at five"));
    CHECK(tk_sql_int(d, "SELECT count(*) FROM envelopes WHERE kind >= 3") == 0);
    //  Removal: c is out of the fold, a draws the key of epoch 1 in a later
    //  step and seals it to b alone; what is sent after never opens on c.
    json_decref(
        tk_call(a, "channel.remove", json_pack("{s:s, s:s}", "channel", "ops", "peer", c->id)));
    CHECK(s_info_int(a, "ops", "epoch") == 1 && s_info_int(a, "ops", "members") == 2);
    TK_WAIT(15000, s_info_int(b, "ops", "epoch") == 1 && s_info_int(c, id, "epoch") == 1);
    json_t *gone = tk_call(c, "channel.info", json_pack("{s:s}", "channel", id));
    CHECK(strcmp(json_string_value(json_object_get(gone, "state")), "gone") == 0);
    json_decref(gone);
    s_send(a, "ops", "after c was removed");
    s_send(b, "ops", "b after c was removed");
    TK_WAIT(15000, s_count(a, "ops") == 6 && s_count(b, "ops") == 6);
    s_same_history(a, b, "ops");
    tk_sleep(500);
    CHECK(s_count(c, id) == 4);
    CHECK(tk_sql_int(c, "SELECT count(*) FROM chan_keys WHERE epoch = 1") == 0);
    CHECK(!tk_db_has(c, "after c was removed"));
    CHECK(tk_call_err(c, "channel.send", json_pack("{s:s, s:s}", "channel", id, "text", "hi"), &msg)
          == PARLEY_ERR_STATE);
    free(msg);

    //  Roles: a reader's post is refused; a leave is a removal too.
    json_decref(
        tk_call(a, "channel.role",
                json_pack("{s:s, s:s, s:s}", "channel", "ops", "peer", b->id, "role", "reader")));
    TK_WAIT(10000, s_role_is(b, "ops", b->id, "reader"));
    CHECK(
        tk_call_err(b, "channel.send", json_pack("{s:s, s:s}", "channel", "ops", "text", "x"), &msg)
        == PARLEY_ERR_STATE);
    free(msg);
    json_decref(tk_call(b, "channel.leave", json_pack("{s:s}", "channel", "ops")));
    TK_WAIT(15000, s_info_int(a, "ops", "epoch") == 2 && s_info_int(a, "ops", "members") == 1);
    s_send(a, "ops", "alone now");
    tk_sleep(500);
    CHECK(s_count(b, id) == 6 && !tk_db_has(b, "alone now"));

    s_hostile(dir, &opts, a);
    s_push_on_resend(dir, verbose);

    tk_node_stop(&d);
    tk_node_stop(&r);
    tk_node_stop(&c);
    tk_node_stop(&b);
    tk_node_stop(&a);
    tk_dir_remove(dir);
}
