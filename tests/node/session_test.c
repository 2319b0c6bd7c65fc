/*  tests/node/session_test.c — session's self-test: prekey rotation and the
 *  wiping of old secrets, on an injected clock that jumps weeks ahead.
 *
 *  Node b rotates its signed prekey every prekey_rotate_ms (7 days) and
 *  keeps a superseded one for grace_ms (14 days) so that messages sealed to
 *  it on the way still open; after that its secret is deleted. Seen from
 *  outside: a peer that learned the old bundle can still start a session
 *  with it inside the grace, and cannot after it (undecryptable); a peer
 *  that connects after a rotation is handed the new bundle; the DM between
 *  a and b keeps working across every jump (day chains are ratcheted and
 *  old day keys wiped, the sessions never lost).
 */
#include "testkit.h"

#include <string.h>

#define DAY_MS 86400000ll

//  A raw peer that starts an X3DH session with the bundle in old (not the
//  one the node just handed it) and sends one DM through it.
static void
s_dm_to_prekey(tk_node_t *b, const prekey_t *old, const char *text)
{
    tk_raw_t *r = tk_raw_connect(b);
    r->spk = *old;
    CHECK(dm_x3dh_initiate(r->me, r->node, &r->spk, r->ek_pub, r->root) == PARLEY_OK);
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = tk_raw_seal(r, 1, 0, text, NULL, NULL, env);
    tk_raw_send_env(r, env, len);
    TK_WAIT(5000, tk_count(b, r->id, "received") == 1 || tk_rejected(b, "undecryptable") > 0);
    tk_raw_destroy(&r);
}

static int64_t
s_prekeys(const tk_node_t *n)
{
    return tk_sql_int(n, "SELECT count(*) FROM own_prekeys");
}

static void
s_dm_both_ways(tk_node_t *a, tk_node_t *b, const char *text)
{
    size_t in_b = tk_count(b, a->id, NULL), in_a = tk_count(a, b->id, NULL);
    json_decref(tk_send(a, b->id, text));
    json_decref(tk_send(b, a->id, text));
    TK_WAIT(10000, tk_count(b, a->id, NULL) == in_b + 2 && tk_count(a, b->id, NULL) == in_a + 2);
    TK_WAIT(10000, tk_count(b, a->id, "delivered") >= 1 && tk_count(a, b->id, "delivered") >= 1);
}

void
session_test(bool verbose)
{
    char dir[256];
    tk_dir(dir, sizeof dir);
    tk_clock_t clock = { 0 };
    tk_opts_t opts = { .verbose = verbose, .clock = &clock };
    tk_node_t *a = tk_node_start(dir, "a", &opts);
    opts.seed = a->seed;
    tk_node_t *b = tk_node_start(dir, "b", &opts);
    TK_WAIT(10000, tk_online(a, b->id) && tk_online(b, a->id));
    s_dm_both_ways(a, b, "day 0");

    //  b's first prekey, as a peer learns it.
    tk_raw_t *probe = tk_raw_connect(b);
    prekey_t first = probe->spk;
    tk_raw_destroy(&probe);
    CHECK(s_prekeys(b) == 1);

    //  A week on: b rotates; a newcomer is handed the new bundle.
    tk_clock_advance(&clock, 7 * DAY_MS + 3600000);
    TK_WAIT(10000, s_prekeys(b) == 2);
    probe = tk_raw_connect(b);
    CHECK(probe->spk.spk_id == first.spk_id + 1);
    tk_raw_destroy(&probe);
    //  Within the grace, a session started on the old bundle still opens.
    uint64_t undecryptable = tk_rejected(b, "undecryptable");
    s_dm_to_prekey(b, &first, "sealed to the old prekey, in time");
    CHECK(tk_rejected(b, "undecryptable") == undecryptable);
    s_dm_both_ways(a, b, "a week later");

    //  Past the grace (14 days after it was superseded): its secret is gone.
    tk_clock_advance(&clock, 15 * DAY_MS);
    TK_WAIT(10000, tk_sql_int(b, "SELECT count(*) FROM own_prekeys WHERE spk_id = 1") == 0);
    CHECK(tk_sql_int(b, "SELECT count(*) FROM own_prekeys WHERE superseded_ms IS NULL") == 1);
    s_dm_to_prekey(b, &first, "sealed to a wiped prekey");
    CHECK(tk_rejected(b, "undecryptable") == undecryptable + 1);
    //  Receive chains were moved past the wiped days; a and b still talk.
    CHECK(tk_sql_int(b, "SELECT count(*) FROM recv_sessions") >= 1);
    s_dm_both_ways(a, b, "three weeks later");

    tk_node_stop(&b);
    tk_node_stop(&a);
    tk_dir_remove(dir);
}
