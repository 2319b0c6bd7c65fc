/*  tests/node/hostile_test.c — what a hostile peer that holds a key of its
 *  own and a valid X3DH session with us may still not do:
 *
 *  - forge receipts: a stranger's "read" for our message to B neither raises
 *    it nor stops its resends to B (counted forged_receipt); B's own
 *    receipts still do;
 *  - make us ratchet for it: a new session whose day0 lies before the prekey
 *    it names (day0 = 0: ~20,000 hashes) is refused before any ratchet work,
 *    counted undecryptable and leaves no session behind; an honest DM that
 *    follows still opens.
 *
 *  With -v the second part prints what such envelopes cost the node.
 */
#include "testkit.h"

#include "../../proto/b32.h"
#include "../../proto/content.h"
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

//  Seals content (clen bytes) from r with header h under day_key: the DM a
//  raw peer may build, honest or not.
static size_t
s_seal(tk_raw_t *r, uint64_t seq, const dm_header_t *h, const uint8_t day_key[32],
       const uint8_t *content, size_t clen, uint8_t *out)
{
    envelope_t f;
    memset(&f, 0, sizeof f);
    f.version = PARLEY_ENVELOPE_VERSION;
    f.kind = ENVELOPE_KIND_DM;
    memcpy(f.author, identity_ed_pk(r->me), 32);
    memcpy(f.scope, r->scope, 32);
    f.seq = seq;
    f.ts_ms = tk_ms();
    size_t len = 0;
    CHECK(dm_envelope_seal(r->me, &f, h, day_key, content, clen, out, PARLEY_ENVELOPE_MAX, &len)
          == PARLEY_OK);
    return len;
}

//  r's own session with its node, as tk_raw_seal uses it.
static dm_header_t
s_header(const tk_raw_t *r)
{
    dm_header_t h;
    memcpy(h.ek_pub, r->ek_pub, 32);
    h.spk_id = r->spk.spk_id;
    h.day0 = r->day;
    h.day = r->day;
    return h;
}

static const char *
s_state(tk_node_t *n, const char *peer)
{
    static char state[32];
    json_t *h = tk_call(n, "history", json_pack("{s:s}", "peer", peer));
    CHECK(json_array_size(h) == 1);
    snprintf(state, sizeof state, "%s",
             json_string_value(json_object_get(json_array_get(h, 0), "state")));
    json_decref(h);
    return state;
}

//  a writes to b while b is away; a stranger r claims b read it.
static void
s_forged_receipt(const char *dir, tk_node_t *a, tk_node_t **b_p, tk_opts_t *opts)
{
    tk_node_t *b = *b_p;
    char b_id[PARLEY_NODE_ID_STRLEN + 1];
    snprintf(b_id, sizeof b_id, "%s", b->id);
    tk_node_stop(b_p);
    TK_WAIT(10000, !tk_online(a, b_id));

    json_t *sent = tk_send(a, b_id, "for b's eyes");
    CHECK(strcmp(json_string_value(json_object_get(sent, "state")), "stored") == 0);
    uint8_t env_id[32];
    CHECK(hex_decode(json_string_value(json_object_get(sent, "envelope_id")), env_id, 32)
          == PARLEY_OK);
    json_decref(sent);
    CHECK(tk_sql_int(a, "SELECT count(*) FROM outbox") == 1);

    //  The stranger's receipt is validly sealed and signed: only whose it is
    //  gives it away. An id of nothing of a's rides along and is no forgery.
    tk_raw_t *r = tk_raw_connect(a);
    uint8_t ids[2 * 32], content[PARLEY_CONTENT_MAX];
    memcpy(ids, env_id, 32);
    randombytes_buf(ids + 32, 32);
    size_t clen = 0;
    CHECK(content_encode_receipt(RECEIPT_READ, ids, 2, content, sizeof content, &clen)
          == PARLEY_OK);
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    dm_header_t h = s_header(r);
    size_t len = s_seal(r, 1, &h, r->root, content, clen, env);
    uint64_t before = tk_rejected(a, "forged_receipt");
    tk_raw_send_env(r, env, len);
    CHECK(tk_raw_acked(r, env, len, 5000));
    TK_WAIT(5000, tk_rejected(a, "forged_receipt") == before + 1);
    CHECK(strcmp(s_state(a, b_id), "stored") == 0);
    CHECK(tk_sql_int(a, "SELECT count(*) FROM outbox") == 1); // still resent to b
    tk_raw_destroy(&r);

    //  b comes back: its own receipts raise the message.
    opts->seed = a->seed;
    b = tk_node_start(dir, "b", opts);
    TK_WAIT(10000, tk_count(b, a->id, "received") == 1);
    TK_WAIT(10000, tk_count(a, b_id, "delivered") == 1);
    json_t *read = tk_call(b, "read", json_pack("{s:s}", "peer", a->id));
    CHECK(json_integer_value(json_object_get(read, "marked")) == 1);
    json_decref(read);
    TK_WAIT(10000, tk_count(a, b_id, "read") == 1);
    TK_WAIT(10000, tk_sql_int(a, "SELECT count(*) FROM outbox") == 0);
    CHECK(tk_rejected(a, "forged_receipt") == before + 1);
    *b_p = b;
}

//  Three bursts of it stay under the ban: each undecryptable DM weighs
//  DELIVERY_UNDEC_STRIKE on its author's link (64 ban it).
enum { S_BURST = 16 };

//  S_BURST envelopes from r, each opening a new session (a fresh ephemeral
//  key) that starts at day0 and speaks for today; returns the ms until n
//  counted them all undecryptable (their day keys are made up).
static uint64_t
s_burst(tk_node_t *n, tk_raw_t *r, uint64_t *seq, uint32_t day0)
{
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    uint8_t content[PARLEY_CONTENT_MAX], key[32], ek_sk[32];
    size_t clen = 0;
    CHECK(content_encode_text("tick", 4, content, sizeof content, &clen) == PARLEY_OK);
    randombytes_buf(key, sizeof key);
    uint64_t before = tk_rejected(n, "undecryptable");
    uint64_t t0 = tk_ms();
    for (int i = 0; i < S_BURST; i++) {
        dm_header_t h = s_header(r);
        crypto_box_keypair(h.ek_pub, ek_sk);
        h.day0 = day0;
        size_t len = s_seal(r, ++*seq, &h, key, content, clen, env);
        tk_raw_send_env(r, env, len);
    }
    TK_WAIT(20000, tk_rejected(n, "undecryptable") == before + S_BURST);
    sodium_memzero(ek_sk, sizeof ek_sk);
    return tk_ms() - t0;
}

static void
s_old_day0(tk_node_t *n, bool verbose)
{
    tk_raw_t *r = tk_raw_connect(n);
    uint64_t seq = 0;
    char sql[256], hex[65];
    CHECK(hex_encode(identity_ed_pk(r->me), 32, hex, sizeof hex) == PARLEY_OK);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM recv_sessions WHERE peer = x'%s'", hex);

    //  Honest in shape (day0 today), only their keys are wrong: each costs
    //  an X3DH and a failed decryption, and leaves no session (its body
    //  never opened, so its header proved nothing).
    uint64_t honest_ms = s_burst(n, r, &seq, r->day);
    CHECK(tk_sql_int(n, sql) == 0);

    //  day0 = 0 and far in the past: refused before the ratchet, nothing kept.
    uint64_t zero_ms = s_burst(n, r, &seq, 0);
    uint64_t past_ms = s_burst(n, r, &seq, r->day - 400);
    CHECK(tk_sql_int(n, sql) == 0);

    //  What one such ratchet costs, here: day0 = 0 to today, against the
    //  worst an accepted header may ask (our prekey's age: rotation + grace).
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    uint64_t t0 = tk_ms();
    for (int i = 0; i < 10; i++) {
        CHECK(dm_chain_advance(key, 0, r->day) == PARLEY_OK);
    }
    double ms_zero = (double)(tk_ms() - t0) / 10.0;
    t0 = tk_ms();
    for (int i = 0; i < 10000; i++) {
        CHECK(dm_chain_advance(key, r->day - 21, r->day) == PARLEY_OK);
    }
    double ms_21 = (double)(tk_ms() - t0) / 10000.0;
    if (verbose) {
        printf("    %d new sessions: day0 today %" PRIu64 " ms, day0 0 %" PRIu64
               " ms, day0 -400 %" PRIu64 " ms\n",
               S_BURST, honest_ms, zero_ms, past_ms);
        printf("    one ratchet: 0..%u (%u steps) %.2f ms; 21 steps %.4f ms\n", r->day, r->day,
               ms_zero, ms_21);
    }

    //  The honest DM that follows still opens, on r's real session.
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = tk_raw_seal(r, ++seq, 0, "honest after all", NULL, NULL, env);
    tk_raw_send_env(r, env, len);
    TK_WAIT(5000, tk_count(n, r->id, "received") == 1);
    sodium_memzero(key, sizeof key);
    tk_raw_destroy(&r);
}

//  Every connection is read from its HELLO on: a second connection with a
//  key that said HELLO on another is not read until it says its own (a
//  frame queued before a HELLO must not reach a node before the sender's
//  capabilities reach it in return).
static void
s_hello_per_connection(tk_node_t *n)
{
    uint8_t seed[32];
    randombytes_buf(seed, sizeof seed);
    tk_raw_t *first = tk_raw_connect_as(n, identity_new_from_seed(seed));
    size_t len = 0;
    CHECK(frame_encode_ping(FRAME_PING, 1, first->out, PARLEY_FRAME_MAX, &len) == PARLEY_OK);
    tk_raw_send(first, first->out, len);
    frame_t f;
    CHECK(tk_raw_recv(first, FRAME_PONG, &f, 5000) && f.nonce == 1);

    uint64_t no_hello = tk_rejected(n, "no_hello");
    tk_raw_t *second = tk_raw_dial(n, identity_new_from_seed(seed));
    CHECK(frame_encode_ping(FRAME_PING, 2, second->out, PARLEY_FRAME_MAX, &len) == PARLEY_OK);
    tk_raw_send(second, second->out, len);
    TK_WAIT(5000, tk_rejected(n, "no_hello") > no_hello);
    CHECK(!tk_raw_recv(second, FRAME_PONG, &f, 300));
    tk_raw_hello(second);
    CHECK(frame_encode_ping(FRAME_PING, 3, second->out, PARLEY_FRAME_MAX, &len) == PARLEY_OK);
    tk_raw_send(second, second->out, len);
    CHECK(tk_raw_recv(second, FRAME_PONG, &f, 5000) && f.nonce == 3);
    tk_raw_destroy(&second);
    tk_raw_destroy(&first);
}

void
hostile_test(bool verbose)
{
    char dir[256];
    tk_dir(dir, sizeof dir);
    tk_opts_t opts = { .verbose = verbose };
    tk_node_t *a = tk_node_start(dir, "a", &opts);
    opts.seed = a->seed;
    tk_node_t *b = tk_node_start(dir, "b", &opts);
    TK_WAIT(10000, tk_online(a, b->id) && tk_online(b, a->id));

    s_forged_receipt(dir, a, &b, &opts);
    s_old_day0(a, verbose);
    s_hello_per_connection(a);

    tk_node_stop(&b);
    tk_node_stop(&a);
    tk_dir_remove(dir);
}
