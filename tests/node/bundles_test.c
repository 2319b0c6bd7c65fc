/*  tests/node/bundles_test.c — hostile prekey bundles at a relay.
 *
 *  A relay hands the newest bundles it holds (by created_ms) to every peer at
 *  link-up and passes a changed one on to every online peer. Raw peers with
 *  fresh keys send r validly signed bundles dated far in the future: each is
 *  refused and counted (bad_prekey), none is kept or passed on, and a flood of
 *  more of them than r hands out cannot push a real bundle out: first contact
 *  through r still works as in replica_test. A bundle no newer than the one
 *  held (lower or equal spk_id, older date) replaces nothing and travels
 *  nowhere; a newer one does.
 */
#include "testkit.h"

#include <sodium.h>
#include <string.h>

#define S_HOSTILE 50 /* raw peers, each with a future bundle of its own */
#define S_FLOOD 260u /* foreign future bundles from one peer: more than r hands out (256) */
#define S_DAY_MS 86400000ull

//  A PREKEY frame holding owner's bundle (spk_id, created_ms) into frame.
static size_t
s_bundle_frame(const identity_t *owner, uint32_t spk_id, uint64_t created_ms,
               uint8_t frame[2 + DM_PREKEY_BUNDLE_LEN])
{
    prekey_t pub;
    uint8_t secret[32], bundle[DM_PREKEY_BUNDLE_LEN];
    CHECK(dm_prekey_generate(identity_ed_pk(owner), spk_id, created_ms, &pub, secret) == PARLEY_OK);
    sodium_memzero(secret, sizeof secret);
    CHECK(dm_prekey_encode(&pub, identity_ed_sk(owner), bundle) == PARLEY_OK);
    size_t flen = 0;
    CHECK(frame_encode_prekey(bundle, sizeof bundle, frame, 2 + DM_PREKEY_BUNDLE_LEN, &flen)
          == PARLEY_OK);
    return flen;
}

//  spk_id r holds for owner, or -1.
static int64_t
s_held(const tk_node_t *r, const uint8_t owner[32])
{
    char hex[65], sql[160];
    sodium_bin2hex(hex, sizeof hex, owner, 32);
    snprintf(sql, sizeof sql,
             "SELECT coalesce((SELECT spk_id FROM peer_prekeys WHERE owner = x'%s'), -1)", hex);
    return tk_sql_int(r, sql);
}

//  The next bundle w is sent whose owner is owner; fails on any bundle dated
//  beyond the skew on the way. false when none comes within timeout_ms.
static bool
s_next_of(tk_raw_t *w, const uint8_t owner[32], prekey_t *out, int timeout_ms)
{
    uint64_t end = tk_ms() + (uint64_t)timeout_ms;
    for (uint64_t now = tk_ms(); now < end; now = tk_ms()) {
        frame_t f;
        if (!tk_raw_recv(w, FRAME_PREKEY, &f, (int)(end - now))) {
            return false;
        }
        CHECK(dm_prekey_decode(f.bundle, f.bundle_len, out) == PARLEY_OK);
        CHECK(out->created_ms <= tk_ms() + PARLEY_FUTURE_SKEW_MS);
        if (memcmp(out->owner, owner, 32) == 0) {
            return true;
        }
    }
    return false;
}

//  Fifty fresh peers, each with its own future bundle: all refused, none kept.
static void
s_future_own(tk_node_t *r)
{
    uint64_t held = (uint64_t)tk_sql_int(r, "SELECT count(*) FROM peer_prekeys");
    for (int i = 0; i < S_HOSTILE; i++) {
        tk_raw_t *h = tk_raw_connect(r);
        uint64_t when = (uint64_t)INT64_MAX - (uint64_t)i;
        if (i % 5 == 1) {
            when = UINT64_MAX - (uint64_t)i; // cannot even be stored as SQL
        } else if (i % 5 == 2) {
            when = tk_ms() + 365 * S_DAY_MS;
        } else if (i % 5 == 3) {
            when = tk_ms() + PARLEY_FUTURE_SKEW_MS + 60000; // just past the skew
        }
        uint8_t frame[2 + DM_PREKEY_BUNDLE_LEN];
        size_t flen = s_bundle_frame(h->me, 1, when, frame);
        uint64_t bad = tk_rejected(r, "bad_prekey");
        tk_raw_send(h, frame, flen);
        TK_WAIT(5000, tk_rejected(r, "bad_prekey") == bad + 1);
        CHECK(s_held(r, identity_ed_pk(h->me)) == -1);
        tk_raw_destroy(&h);
    }
    CHECK((uint64_t)tk_sql_int(r, "SELECT count(*) FROM peer_prekeys") == held);
}

//  One peer passes on more future bundles of fresh owners than r hands out
//  at link-up, while w listens: each refused, none passed on to w.
static void
s_future_flood(tk_node_t *r)
{
    tk_raw_t *w = tk_raw_connect(r);
    tk_raw_t *h = tk_raw_connect(r);
    uint64_t bad = tk_rejected(r, "bad_prekey");
    for (unsigned i = 0; i < S_FLOOD; i++) {
        identity_t *owner = identity_new();
        CHECK(owner);
        uint8_t frame[2 + DM_PREKEY_BUNDLE_LEN];
        size_t flen = s_bundle_frame(owner, 1, (uint64_t)INT64_MAX - i, frame);
        tk_raw_send(h, frame, flen);
        identity_destroy(&owner);
    }
    TK_WAIT(15000, tk_rejected(r, "bad_prekey") == bad + S_FLOOD);
    char sql[120];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM peer_prekeys WHERE created_ms > %llu",
             (unsigned long long)(tk_ms() + PARLEY_FUTURE_SKEW_MS));
    CHECK(tk_sql_int(r, sql) == 0);

    //  Just inside the skew is kept, and passed on: w sees it, and no future
    //  bundle before it.
    uint8_t frame[2 + DM_PREKEY_BUNDLE_LEN];
    size_t flen = s_bundle_frame(h->me, 1, tk_ms() + PARLEY_FUTURE_SKEW_MS / 2, frame);
    bad = tk_rejected(r, "bad_prekey");
    tk_raw_send(h, frame, flen);
    TK_WAIT(5000, s_held(r, identity_ed_pk(h->me)) == 1);
    CHECK(tk_rejected(r, "bad_prekey") == bad);
    prekey_t got;
    CHECK(s_next_of(w, identity_ed_pk(h->me), &got, 5000) && got.spk_id == 1);
    tk_raw_destroy(&h);
    tk_raw_destroy(&w);
}

//  x's bundles: a newer one replaces and travels on; an older or equal one
//  (lower spk_id and date, or a replay) replaces nothing and travels nowhere.
static void
s_older_kept_out(tk_node_t *r)
{
    tk_raw_t *w = tk_raw_connect(r);
    tk_raw_t *x = tk_raw_connect(r);
    const uint8_t *xk = identity_ed_pk(x->me);
    uint64_t now = tk_ms();
    uint8_t f7[2 + DM_PREKEY_BUNDLE_LEN], f6[2 + DM_PREKEY_BUNDLE_LEN],
        f8[2 + DM_PREKEY_BUNDLE_LEN];
    size_t l7 = s_bundle_frame(x->me, 7, now, f7);
    size_t l6 = s_bundle_frame(x->me, 6, now - S_DAY_MS, f6);
    size_t l8 = s_bundle_frame(x->me, 8, now + 1000, f8);
    prekey_t got;

    tk_raw_send(x, f7, l7);
    TK_WAIT(5000, s_held(r, xk) == 7);
    CHECK(s_next_of(w, xk, &got, 5000) && got.spk_id == 7);

    uint64_t bad = tk_rejected(r, "bad_prekey");
    tk_raw_send(x, f6, l6); // older
    tk_raw_send(x, f7, l7); // the same again
    tk_raw_send(x, f8, l8); // newer: the next w sees of x
    TK_WAIT(5000, s_held(r, xk) == 8);
    CHECK(s_next_of(w, xk, &got, 5000) && got.spk_id == 8);
    //  Now the older one again, after the newer: still kept out, not passed on.
    tk_raw_send(x, f6, l6);
    tk_raw_send(x, f7, l7);
    CHECK(!s_next_of(w, xk, &got, 1000));
    CHECK(s_held(r, xk) == 8);
    CHECK(tk_rejected(r, "bad_prekey") == bad); // old is not hostile
    tk_raw_destroy(&x);
    tk_raw_destroy(&w);
}

void
bundles_test(bool verbose)
{
    char dir[256];
    tk_dir(dir, sizeof dir);
    tk_opts_t opts = { .verbose = verbose, .relay = true, .sync_ms = 300 };
    tk_node_t *r = tk_node_start(dir, "r", &opts);
    opts.relay = false;
    opts.seed = r->seed;

    //  b meets r (which keeps b's bundle) and goes.
    tk_node_t *b = tk_node_start(dir, "b", &opts);
    char b_id[sizeof b->id];
    uint8_t b_pk[32];
    memcpy(b_id, b->id, sizeof b_id);
    memcpy(b_pk, b->pk, sizeof b_pk);
    TK_WAIT(10000, tk_online(r, b_id));
    TK_WAIT(5000, s_held(r, b_pk) >= 1);
    tk_node_stop(&b);

    s_future_own(r);
    s_future_flood(r);
    s_older_kept_out(r);

    //  First contact through r, as in replica_test: a never met b, learns
    //  b's bundle from r at link-up, seals; r relays; b gets it.
    tk_node_t *a = tk_node_start(dir, "a", &opts);
    char a_id[sizeof a->id];
    memcpy(a_id, a->id, sizeof a_id);
    TK_WAIT(10000, tk_online(a, r->id));
    json_decref(tk_send(a, b_id, "meet me at noon"));
    TK_WAIT(10000, tk_count(a, b_id, "relayed") == 1);
    tk_node_stop(&a);

    b = tk_node_start(dir, "b", &opts);
    TK_WAIT(15000, tk_count(b, a_id, "received") == 1);
    json_t *h = tk_call(b, "history", json_pack("{s:s}", "peer", a_id));
    CHECK(
        strcmp(json_string_value(json_object_get(json_array_get(h, 0), "text")), "meet me at noon")
        == 0);
    json_decref(h);
    tk_node_stop(&b);
    tk_node_stop(&r);
    tk_dir_remove(dir);
}
