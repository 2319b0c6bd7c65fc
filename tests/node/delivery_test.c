/*  tests/node/delivery_test.c — delivery's self-test: two nodes in this
 *  process exchange a DM and its receipts (delivered, then read) over
 *  loopback; then a raw peer sends each kind of bad input at ingest, and
 *  each is counted under its own name, never stored, while the genuine
 *  message that follows is stored and acknowledged.
 */
#include "testkit.h"

#include <sodium.h>
#include <string.h>
#include <zmq.h>

//  A DM from a to b, then b reads it: a sees delivered, then read.
static void
s_dm_with_receipts(tk_node_t *a, tk_node_t *b)
{
    json_t *sent = tk_send(a, b->id, "lunch at noon?");
    CHECK(strcmp(json_string_value(json_object_get(sent, "state")), "stored") == 0);
    const char *msg_id = json_string_value(json_object_get(sent, "msg_id"));
    CHECK(msg_id);

    json_t *got = tk_note(b, "message", 10000);
    CHECK(got);
    CHECK(strcmp(json_string_value(json_object_get(got, "text")), "lunch at noon?") == 0);
    CHECK(strcmp(json_string_value(json_object_get(got, "from")), a->id) == 0);
    CHECK(!json_is_true(json_object_get(got, "outgoing")));
    json_decref(got);

    //  The receipt comes back by itself: a's message rises to delivered.
    bool delivered = false;
    while (!delivered) {
        json_t *d = tk_note(a, "delivery", 10000);
        CHECK(d);
        delivered = strcmp(json_string_value(json_object_get(d, "msg_id")), msg_id) == 0
                    && strcmp(json_string_value(json_object_get(d, "state")), "delivered") == 0;
        json_decref(d);
    }
    //  Reading it sends a read receipt.
    json_t *read = tk_call(b, "read", json_pack("{s:s}", "peer", a->id));
    CHECK(json_integer_value(json_object_get(read, "marked")) == 1);
    json_decref(read);
    TK_WAIT(10000, tk_count(a, b->id, "read") == 1);
    CHECK(tk_count(b, a->id, "opened") == 1);
    json_decref(sent);
}

//  Sends env and waits until COUNTER rose by one.
static void
s_rejected(tk_node_t *n, tk_raw_t *r, const uint8_t *env, size_t len, const char *counter)
{
    uint64_t before = tk_rejected(n, counter);
    tk_raw_send_env(r, env, len);
    TK_WAIT(5000, tk_rejected(n, counter) == before + 1);
}

//  Sends a raw frame and waits until COUNTER rose by one.
static void
s_rejected_frame(tk_node_t *n, tk_raw_t *r, const uint8_t *buf, size_t len, const char *counter)
{
    uint64_t before = tk_rejected(n, counter);
    tk_raw_send(r, buf, len);

    TK_WAIT(5000, tk_rejected(n, counter) == before + 1);
}

static void
s_bad_inputs(tk_node_t *n)
{
    tk_raw_t *r = tk_raw_connect(n);
    static uint8_t env[PARLEY_ENVELOPE_MAX], bad[PARLEY_ENVELOPE_MAX];
    uint64_t now = tk_ms();

    size_t len = tk_raw_seal(r, 1, now, "valid 1", NULL, NULL, env);
    tk_raw_send_env(r, env, len);
    CHECK(tk_raw_acked(r, env, len, 5000));
    TK_WAIT(5000, tk_count(n, r->id, "received") == 1);

    s_rejected(n, r, env, len, "duplicate");                               // a replay
    size_t blen = tk_raw_seal(r, 1, now, "equivocating", NULL, NULL, bad); // same seq
    s_rejected(n, r, bad, blen, "equivocation");

    size_t len2 = tk_raw_seal(r, 2, now + 1, "valid 2", NULL, NULL, env);
    memcpy(bad, env, len2);
    bad[len2 - 1] ^= 0x01; // a forged signature
    s_rejected(n, r, bad, len2, "bad_signature");
    memcpy(bad, env, len2);
    bad[PARLEY_ENVELOPE_HEADER_LEN + 80] ^= 0x01; // a tampered body
    s_rejected(n, r, bad, len2, "bad_signature");

    blen = tk_raw_seal(r, 3, now + 3600000u, "from the future", NULL, NULL, bad);
    s_rejected(n, r, bad, blen, "future");

    uint8_t scope[32];
    randombytes_buf(scope, sizeof scope);
    blen = tk_raw_seal(r, 1, now, "elsewhere", scope, NULL, bad);
    s_rejected(n, r, bad, blen, "not_ours");

    //  Validly signed, in the pair's scope, but under a key the node cannot
    //  derive: stored nowhere in history, counted.
    uint8_t wrong_root[32];
    randombytes_buf(wrong_root, sizeof wrong_root);
    blen = tk_raw_seal(r, 4, now, "sealed under nonsense", NULL, wrong_root, bad);
    s_rejected(n, r, bad, blen, "undecryptable");

    //  Cut short; a version from the future; past its expiry.
    s_rejected(n, r, env, 100, "malformed");
    memcpy(bad, env, len2);
    bad[0] = 0x7F;
    s_rejected(n, r, bad, len2, "unsupported");
    //  A validly signed network event (kind 2) in the pair's scope: this node
    //  is in no network, so it is refused as not ours, not stored for anyone.
    envelope_t net;
    memset(&net, 0, sizeof net);
    net.version = PARLEY_ENVELOPE_VERSION;
    net.kind = ENVELOPE_KIND_NET;
    memcpy(net.author, identity_ed_pk(r->me), 32);
    memcpy(net.scope, r->scope, 32);
    net.seq = 9;
    net.ts_ms = now;
    const uint8_t net_body[] = { 1, 3, 0 }; // not even a valid event: never opened
    net.body = net_body;
    net.body_len = sizeof net_body;
    CHECK(envelope_seal(&net, identity_ed_sk(r->me), bad, PARLEY_ENVELOPE_MAX, &blen) == PARLEY_OK);
    s_rejected(n, r, bad, blen, "not_ours");
    r->expires_ms = now - 1000;
    blen = tk_raw_seal(r, 5, now - 2000, "gone already", NULL, NULL, bad);
    r->expires_ms = 0;
    s_rejected(n, r, bad, blen, "expired");

    //  Frames: one announcing a 70,000-byte envelope (refused before any
    //  copy), an unknown type, a PREKEY that is not a bundle.
    const uint8_t big[16] = { PARLEY_PROTO_VERSION, FRAME_ENVELOPES, 0, 1, 0, 1, 0x11, 0x70 };
    s_rejected_frame(n, r, big, sizeof big, "bad_frame");
    const uint8_t garbage[] = { PARLEY_PROTO_VERSION, 0x63, 'g', 'a', 'r', 'b' };
    s_rejected_frame(n, r, garbage, sizeof garbage, "bad_frame");
    //  PREKEY frames: random bytes, then a genuine bundle with one bit of
    //  its signature flipped.
    uint8_t prekey[2 + DM_PREKEY_BUNDLE_LEN] = { PARLEY_PROTO_VERSION, FRAME_PREKEY };
    randombytes_buf(prekey + 2, DM_PREKEY_BUNDLE_LEN);
    s_rejected_frame(n, r, prekey, sizeof prekey, "bad_prekey");
    prekey_t pub;
    uint8_t secret[32];
    CHECK(dm_prekey_generate(identity_ed_pk(r->me), 9, now, &pub, secret) == PARLEY_OK);
    CHECK(dm_prekey_encode(&pub, identity_ed_sk(r->me), prekey + 2) == PARLEY_OK);
    sodium_memzero(secret, sizeof secret);
    prekey[sizeof prekey - 1] ^= 0x01;
    s_rejected_frame(n, r, prekey, sizeof prekey, "bad_prekey");

    //  Still served: the genuine second message is stored and acknowledged.
    tk_raw_send_env(r, env, len2);
    CHECK(tk_raw_acked(r, env, len2, 5000));
    TK_WAIT(5000, tk_count(n, r->id, "received") == 2);
    json_t *h = tk_call(n, "history", json_pack("{s:s, s:i}", "peer", r->id, "limit", 0));
    CHECK(json_array_size(h) == 2);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(h, 0), "text")), "valid 1") == 0);
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(h, 1), "text")), "valid 2") == 0);
    json_decref(h);
    json_t *st = tk_call(n, "status", NULL);
    CHECK(json_integer_value(json_object_get(json_object_get(st, "log"), "equivocations")) == 1);
    json_decref(st);
    tk_raw_destroy(&r);
}

void
delivery_test(bool verbose)
{
    char dir[256];
    tk_dir(dir, sizeof dir);
    tk_opts_t opts = { .verbose = verbose };
    tk_node_t *a = tk_node_start(dir, "a", &opts);
    opts.seed = a->seed;
    tk_node_t *b = tk_node_start(dir, "b", &opts);
    TK_WAIT(10000, tk_online(a, b->id) && tk_online(b, a->id));

    s_dm_with_receipts(a, b);
    s_bad_inputs(b);

    //  After all that, a and b still talk.
    tk_notes_drain(a);
    json_t *sent = tk_send(b, a->id, "still here");
    json_decref(sent);
    TK_WAIT(10000, tk_count(a, b->id, "received") == 1);
    tk_node_stop(&b);
    tk_node_stop(&a);
    tk_dir_remove(dir);
}
