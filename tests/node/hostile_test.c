/*  tests/node/hostile_test.c — what a hostile peer that holds a key of its
 *  own and a valid X3DH session with us may still not do:
 *
 *  - forge receipts: a stranger's "read" for our message to B neither raises
 *    it nor stops its resends to B (counted forged_receipt); B's own
 *    receipts still do.
 */
#include "testkit.h"

#include "../../proto/b32.h"
#include "../../proto/content.h"
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

    tk_node_stop(&b);
    tk_node_stop(&a);
    tk_dir_remove(dir);
}
