/*  tests/node/durability_test.c — nothing is promised before its commit, and
 *  no message is lost on an error path. A store fault (store_fault_set,
 *  reached through parley_fault) makes one commit, one history insert or one
 *  prekey write fail as a full disk would:
 *
 *  - a failed commit of an API send answers the client with an error (never
 *    "stored"), pushes nothing to the peer and notifies nobody; the retry
 *    goes through, once;
 *  - a failed commit of an ingest sends no ACK: the sender resends and the
 *    message is stored exactly once;
 *  - a failed history insert while opening a DM rolls the iteration back
 *    (the envelope is not kept either), so the resend opens it: not lost;
 *  - a failed prekey write is counted and retried, never ignored;
 *  - with the outbox resent in every iteration, a send whose commit fails
 *    still reaches nobody (the resend reads only committed rows), and its
 *    retry takes a new seq: the peer counts no equivocation;
 *  - a failed sync after a send's commit was written (its DM already left)
 *    answers "not known to be stored", and the store takes no more writes.
 */
#include "testkit.h"

#include "../../store/store.h"
#include <sodium.h>
#include <string.h>

//  Whether a note naming TEXT arrives on n's watch within ms.
static bool
s_note_with_text(tk_node_t *n, const char *text, int ms)
{
    uint64_t end = tk_ms() + (uint64_t)ms;
    while (tk_ms() < end) {
        json_t *m = tk_note(n, "message", (int)(end - tk_ms()));
        if (!m) {
            break;
        }
        bool hit = strcmp(json_string_value(json_object_get(m, "text")), text) == 0;
        json_decref(m);
        if (hit) {
            return true;
        }
    }
    return false;
}

static void
s_send_commit_fails(tk_node_t *a, tk_node_t *b)
{
    uint64_t rolled = tk_rejected(a, "rolled_back");
    parley_fault(a->node, STORE_FAULT_COMMIT, 1);
    char *why = NULL;
    int rc = tk_call_err(a, "send", json_pack("{s:s, s:s}", "peer", b->id, "text", "lost?"), &why);
    CHECK(rc == PARLEY_ERR_IO);
    CHECK(why && strstr(why, "nothing was stored"));
    free(why);
    CHECK(tk_rejected(a, "rolled_back") == rolled + 1);
    //  Nothing of it left a: b never hears of it, a's history has no trace.
    CHECK(!s_note_with_text(b, "lost?", 1500));
    CHECK(tk_count(a, b->id, NULL) == 0);
    CHECK(tk_count(b, a->id, NULL) == 0);
    //  The client retries; this time it is stored, pushed and opened once.
    json_t *sent = tk_send(a, b->id, "lost?");
    CHECK(strcmp(json_string_value(json_object_get(sent, "state")), "stored") == 0);
    json_decref(sent);
    CHECK(s_note_with_text(b, "lost?", 10000));
    TK_WAIT(10000, tk_count(a, b->id, "delivered") == 1);
    CHECK(tk_count(b, a->id, NULL) == 1);
}

static void
s_ingest_commit_fails(tk_node_t *b)
{
    tk_raw_t *r = tk_raw_connect(b);
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = tk_raw_seal(r, 1, 0, "ingest once", NULL, NULL, env);
    uint64_t rolled = tk_rejected(b, "rolled_back");
    parley_fault(b->node, STORE_FAULT_COMMIT, 1);
    tk_raw_send_env(r, env, len);
    //  The commit failed: no ACK, no notification, nothing in history.
    CHECK(!tk_raw_acked(r, env, len, 1500));
    CHECK(tk_rejected(b, "rolled_back") == rolled + 1);
    CHECK(tk_count(b, r->id, NULL) == 0);
    CHECK(!s_note_with_text(b, "ingest once", 200));
    //  The sender resends what was not acknowledged: stored, exactly once.
    tk_raw_send_env(r, env, len);
    CHECK(tk_raw_acked(r, env, len, 5000));
    CHECK(s_note_with_text(b, "ingest once", 5000));
    TK_WAIT(5000, tk_count(b, r->id, "received") == 1);
    tk_raw_send_env(r, env, len); // and again: a duplicate, still one message
    CHECK(tk_raw_acked(r, env, len, 5000));
    CHECK(tk_count(b, r->id, NULL) == 1);
    tk_raw_destroy(&r);
}

static void
s_history_insert_fails(tk_node_t *b)
{
    tk_raw_t *r = tk_raw_connect(b);
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = tk_raw_seal(r, 1, 0, "not lost", NULL, NULL, env);
    uint64_t errors = tk_rejected(b, "store_error");
    uint64_t rolled = tk_rejected(b, "rolled_back");
    parley_fault(b->node, STORE_FAULT_MSG_ADD, 1);
    tk_raw_send_env(r, env, len);
    CHECK(!tk_raw_acked(r, env, len, 1500));
    CHECK(tk_rejected(b, "store_error") == errors + 1);
    CHECK(tk_rejected(b, "rolled_back") == rolled + 1);
    CHECK(tk_count(b, r->id, NULL) == 0);
    //  The envelope was rolled back with the failed insert, so the resend is
    //  not a duplicate: it opens.
    tk_raw_send_env(r, env, len);
    CHECK(tk_raw_acked(r, env, len, 5000));
    TK_WAIT(5000, tk_count(b, r->id, "received") == 1);
    json_t *h = tk_call(b, "history", json_pack("{s:s}", "peer", r->id));
    CHECK(strcmp(json_string_value(json_object_get(json_array_get(h, 0), "text")), "not lost")
          == 0);
    json_decref(h);
    tk_raw_destroy(&r);
}

static void
s_prekey_write_fails(tk_node_t *b)
{
    tk_raw_t *r = tk_raw_connect(b);
    //  r's own signed prekey bundle, as a node sends it.
    prekey_t pub;
    uint8_t secret[32], bundle[DM_PREKEY_BUNDLE_LEN];
    CHECK(dm_prekey_generate(identity_ed_pk(r->me), 7, tk_ms(), &pub, secret) == PARLEY_OK);
    CHECK(dm_prekey_encode(&pub, identity_ed_sk(r->me), bundle) == PARLEY_OK);
    sodium_memzero(secret, sizeof secret);
    uint8_t frame[2 + DM_PREKEY_BUNDLE_LEN];
    size_t flen = 0;
    CHECK(frame_encode_prekey(bundle, sizeof bundle, frame, sizeof frame, &flen) == PARLEY_OK);

    uint64_t errors = tk_rejected(b, "store_error");
    parley_fault(b->node, STORE_FAULT_PREKEY_PUT, 1);
    tk_raw_send(r, frame, flen);
    TK_WAIT(5000, tk_rejected(b, "store_error") == errors + 1);
    //  Not kept: b cannot seal to r yet.
    json_t *m = tk_send(b, r->id, "to r");
    CHECK(strcmp(json_string_value(json_object_get(m, "state")), "queued") == 0);
    json_decref(m);
    //  The bundle comes again (a peer sends it on every HELLO): kept, and the
    //  queued message is sealed.
    tk_raw_send(r, frame, flen);
    TK_WAIT(5000, tk_count(b, r->id, "queued") == 0);
    CHECK(tk_count(b, r->id, NULL) == 1);
    tk_raw_destroy(&r);
}

//  c resends its outbox in every iteration (retry_ms 1): the iteration
//  that seals the send also runs a resend, which before the fix read the
//  uncommitted envelope and sent it ahead of the failing commit; the retry
//  then reused its seq and b rejected it as an equivocation.
static uint64_t
s_outbox(tk_node_t *n)
{
    json_t *st = tk_call(n, "status", NULL);
    json_int_t v = json_integer_value(json_object_get(json_object_get(st, "log"), "outbox"));
    json_decref(st);
    return v > 0 ? (uint64_t)v : 0;
}

static void
s_send_commit_fails_mid_resend(tk_node_t *c, tk_node_t *b)
{
    uint64_t equivocations = tk_rejected(b, "equivocation");
    for (int i = 0; i < 5; i++) {
        char text[32];
        snprintf(text, sizeof text, "resent-%d", i);
        //  Quiet first (nothing pending, no ACK on its way), so the fault
        //  hits the send's own commit and no other.
        TK_WAIT(10000, s_outbox(c) == 0);
        tk_sleep(300);
        parley_fault(c->node, STORE_FAULT_COMMIT, 1);
        CHECK(tk_call_err(c, "send", json_pack("{s:s, s:s}", "peer", b->id, "text", text), NULL)
              == PARLEY_ERR_IO);
        CHECK(!s_note_with_text(b, text, 700));
        json_t *sent = tk_send(c, b->id, text);
        json_decref(sent);
        CHECK(s_note_with_text(b, text, 10000));
    }
    TK_WAIT(10000, tk_count(c, b->id, "delivered") == 6); // with "hello b"
    CHECK(tk_count(b, c->id, NULL) == 6);
    CHECK(tk_rejected(b, "equivocation") == equivocations);
}

//  The disk refuses the sync of a send's commit. The DM left before the
//  sync (ours, its seq reserved durably before: SPEC §11), so b has it; a's
//  client hears that it is not known to be stored, never "stored", and a
//  takes no more writes: nothing after a failed sync could be promised.
static void
s_send_sync_fails(tk_node_t *a, tk_node_t *b)
{
    TK_WAIT(10000, s_outbox(a) == 0);
    tk_sleep(300);
    parley_fault(a->node, STORE_FAULT_SYNC, 1);
    char *why = NULL;
    CHECK(tk_call_err(a, "send", json_pack("{s:s, s:s}", "peer", b->id, "text", "on disk?"), &why)
          == PARLEY_ERR_IO);
    CHECK(why && strstr(why, "not known to be stored"));
    free(why);
    CHECK(s_note_with_text(b, "on disk?", 10000));
    why = NULL;
    CHECK(tk_call_err(a, "send", json_pack("{s:s, s:s}", "peer", b->id, "text", "later"), &why)
          == PARLEY_ERR_IO);
    CHECK(why && strstr(why, "until it is restarted"));
    free(why);
    CHECK(!s_note_with_text(b, "later", 700));
}

//  status.disk.key of n; UINT64_MAX if the call failed: the sync it made
//  happen failed (a reply waits for a sync put off, and fails with it).
static uint64_t
s_disk(tk_node_t *n, const char *key)
{
    json_t *st = NULL;
    char *why = NULL;
    if (client_call(n->api, "status", NULL, &st, &why) != PARLEY_OK) {
        free(why);
        return UINT64_MAX;
    }
    json_int_t v = json_integer_value(json_object_get(json_object_get(st, "disk"), key));
    json_decref(st);
    return v > 0 ? (uint64_t)v : 0;
}

//  The disk refuses the sync of a receiver's commit. b's client is shown
//  the DM all the same: it left between the commit's write and the sync
//  (SPEC §11, "Notify before the sync"); had the write been lost with the
//  power, c, which keeps the DM in its log, would give it back. b put the
//  sync off (only ACKs waited for it, SPEC §11 "A sync put off"), and the
//  ACK that waited is dropped with the failed sync, never sent.
static void
s_receive_sync_fails(tk_node_t *c, tk_node_t *b)
{
    TK_WAIT(10000, s_outbox(c) == 0);
    tk_sleep(300);
    uint64_t deferred = s_disk(b, "deferred");
    CHECK(s_disk(b, "acks_waiting") == 0 && s_disk(b, "acks_dropped") == 0);
    parley_fault(b->node, STORE_FAULT_SYNC, 1);
    json_t *sent = tk_send(c, b->id, "shown before the sync");
    json_decref(sent);
    CHECK(s_note_with_text(b, "shown before the sync", 10000));
    TK_WAIT(10000, s_disk(b, "acks_dropped") == 1);
    CHECK(s_disk(b, "deferred") > deferred);
    CHECK(s_disk(b, "acks_waiting") == 0);
}

//  What b stores of c's DMs waits for its sync up to S_SYNC_DEFER_MS; the
//  ACKs wait with it, and leave once it came: c's outbox empties, and
//  nothing stays waiting on b.
static void
s_receive_sync_put_off(tk_node_t *c, tk_node_t *b)
{
    TK_WAIT(10000, s_outbox(c) == 0);
    uint64_t deferred = s_disk(b, "deferred"), syncs = s_disk(b, "syncs");
    for (int i = 0; i < 20; i++) {
        char text[32];
        snprintf(text, sizeof text, "put off %d", i);
        json_t *sent = tk_send(c, b->id, text);
        json_decref(sent);
    }
    TK_WAIT(10000, tk_count(b, c->id, NULL) == 21 && s_outbox(c) == 0);
    TK_WAIT(10000, s_disk(b, "acks_waiting") == 0);
    CHECK(s_disk(b, "deferred") > deferred);
    CHECK(s_disk(b, "syncs") > syncs);
    CHECK(s_disk(b, "acks_dropped") == 0);
}

void
durability_test(bool verbose)
{
    char dir[256];
    tk_dir(dir, sizeof dir);
    //  No reconciliation rounds during the test: the only commits are the
    //  ones each step causes.
    tk_opts_t opts = { .verbose = verbose, .sync_ms = 600000 };
    tk_node_t *a = tk_node_start(dir, "a", &opts);
    opts.seed = a->seed;
    tk_node_t *b = tk_node_start(dir, "b", &opts);
    TK_WAIT(10000, tk_online(a, b->id) && tk_online(b, a->id));
    tk_sleep(300); // let the link's start-up writes commit first

    s_send_commit_fails(a, b);
    s_ingest_commit_fails(b);
    s_history_insert_fails(b);
    s_prekey_write_fails(b);

    opts.seed = b->seed;
    opts.retry_ms = 1;
    tk_node_t *c = tk_node_start(dir, "c", &opts);
    TK_WAIT(10000, tk_online(c, b->id) && tk_online(b, c->id));
    json_t *first = tk_send(c, b->id, "hello b"); // the prekeys both ways
    json_decref(first);
    TK_WAIT(10000, tk_count(c, b->id, "delivered") == 1);
    s_send_commit_fails_mid_resend(c, b);
    s_send_sync_fails(a, b); // last for a: its store takes no more writes

    //  d resends as rarely as a node does: what b does in an iteration is
    //  what d's DM caused, and b's status answers after its sync failed.
    opts.retry_ms = 3000;
    tk_node_t *d = tk_node_start(dir, "d", &opts);
    TK_WAIT(10000, tk_online(d, b->id) && tk_online(b, d->id));
    json_t *hello = tk_send(d, b->id, "hello b");
    json_decref(hello);
    TK_WAIT(10000, tk_count(d, b->id, "delivered") == 1);
    s_receive_sync_put_off(d, b);
    s_receive_sync_fails(d, b); // last for b

    tk_node_stop(&d);
    tk_node_stop(&c);
    tk_node_stop(&b);
    tk_node_stop(&a);
    tk_dir_remove(dir);
}
