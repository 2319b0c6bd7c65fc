/*  tests/node/replica_test.c — replica's self-test: reconciliation rounds
 *  carry a DM and its receipt through a relay between two nodes that are
 *  never online at the same time.
 *
 *  r relays (replicates every scope it hears of). b meets r once and goes;
 *  a comes, learns b's prekey from r, seals a DM that r stores ("relayed")
 *  and goes; b comes back and gets the DM from r by reconciliation; b reads
 *  it and goes; a comes back and gets the read receipt the same way. r holds
 *  the envelopes and none of the text.
 */
#include "testkit.h"

#include "../../proto/sync_msg.h"
#include <string.h>

void
replica_test(bool verbose)
{
    char dir[256];
    tk_dir(dir, sizeof dir);
    tk_opts_t opts = { .verbose = verbose, .relay = true, .sync_ms = 300 };
    tk_node_t *r = tk_node_start(dir, "r", &opts);
    opts.relay = false;
    opts.seed = r->seed;

    tk_node_t *b = tk_node_start(dir, "b", &opts);
    char b_id[sizeof b->id];
    memcpy(b_id, b->id, sizeof b_id);
    TK_WAIT(10000, tk_online(r, b_id));
    tk_sleep(300); // b's bundle is kept by r
    tk_node_stop(&b);

    tk_node_t *a = tk_node_start(dir, "a", &opts);
    char a_id[sizeof a->id];
    memcpy(a_id, a->id, sizeof a_id);
    TK_WAIT(10000, tk_online(a, r->id));
    //  a never met b: the bundle comes from r, then the DM is sealed.
    json_decref(tk_send(a, b_id, "meet me at noon"));
    TK_WAIT(10000, tk_count(a, b_id, "relayed") == 1);
    uint64_t r_rounds = tk_sync(r, "rounds_ended");
    uint64_t r_streamed = tk_sync(r, "envelopes_streamed");
    tk_node_stop(&a);

    b = tk_node_start(dir, "b", &opts);
    TK_WAIT(15000, tk_count(b, a_id, "received") == 1);
    json_t *h = tk_call(b, "history", json_pack("{s:s}", "peer", a_id));
    CHECK(
        strcmp(json_string_value(json_object_get(json_array_get(h, 0), "text")), "meet me at noon")
        == 0);
    json_decref(h);
    //  It came by a reconciliation round: b and r compared their sets of
    //  the scope and r streamed what b lacked.
    CHECK(tk_sync(b, "messages_in") >= 1);
    CHECK(tk_sync(r, "envelopes_streamed") > r_streamed);
    TK_WAIT(10000, tk_sync(r, "rounds_ended") > r_rounds);
    json_decref(tk_call(b, "read", json_pack("{s:s}", "peer", a_id)));
    TK_WAIT(10000, tk_sql_int(r, "SELECT count(*) FROM envelopes") >= 3); // DM + 2 receipts
    tk_node_stop(&b);

    a = tk_node_start(dir, "a", &opts);
    TK_WAIT(15000, tk_count(a, b_id, "read") == 1);
    json_t *st = tk_call(r, "status", NULL);
    CHECK(json_is_true(json_object_get(json_object_get(st, "sync"), "relay")));
    json_decref(st);
    tk_node_stop(&a);

    //  A third peer opens a round with r: r hints it scopes one author wrote
    //  in (a DM it could be the other party of), never one both parties
    //  wrote in, whose two authors would tell it that a and b talk.
    tk_raw_t *x = tk_raw_connect(r);
    sync_writer_t w;
    sync_writer_init(&w, x->out, PARLEY_FRAME_MAX, SYNC_F_OPEN, NULL);
    size_t len = sync_writer_finish(&w);
    CHECK(len > 0);
    tk_raw_send(x, x->out, len);
    frame_t f;
    CHECK(tk_raw_recv(x, FRAME_RECONCILE, &f, 5000));
    sync_msg_reader_t rd;
    sync_msg_open(&rd, f.sync, f.sync_len);
    sync_block_t blk;
    size_t blocks = 0;
    while (sync_msg_next(&rd, &blk)) {
        blocks++;
        CHECK(blk.n_hints <= 1);
    }
    if (verbose) {
        printf("  replica: a third peer's OPEN answered with %zu block(s), none naming two"
               " authors\n",
               blocks);
    }
    tk_raw_destroy(&x);

    //  The relay carried it and cannot read it.
    tk_node_stop(&r);
    r = NULL;
    tk_node_t peek = { 0 };
    snprintf(peek.home, sizeof peek.home, "%s/r", dir);
    CHECK(!tk_db_has(&peek, "meet me at noon"));
    tk_dir_remove(dir);
}
