/*  tools/bench/channel.c — channels between real parleyd processes on
 *  loopback (build/bench_channel): what a 1,000-member channel costs its
 *  admin, what one message costs its sender, and how fast a member that
 *  was away catches up.
 *
 *  1. Removal plus rotation in a 1,000-member channel. Admin A is a real
 *     parleyd; the 999 other members are simulated: their keys and signed
 *     prekey bundles exist only as data written into A's store before A
 *     starts, as A would hold them had it made the channel and added them
 *     one by one (channels_create, then channels_add per member): the
 *     control log (CHANNEL, then per member an ADD and the KEYS body that
 *     hands it the epoch-0 key, sealed under a DM sending session A opened
 *     to it, the session kept), the settings message, the channel's row,
 *     the epoch-0 key and A's sending chain. Each member's prekey in A's
 *     table is a newer one (spk 2) than the one its session was opened
 *     against (spk 1), as after a weekly prekey rotation: the rotation then
 *     opens a new session (X3DH) per member, which is what the floor
 *     counts. A must show 1,000 members, keyed, and write no KEYS of its
 *     own at start (nothing owed), or the run fails. Then channel.remove
 *     of one member over A's API: the time until A holds the epoch-1 key
 *     (channel.list: epoch 1, keyed; the rotation is drawn in the
 *     iteration after the removal's commit), and what A wrote for it, read
 *     from A's database (read-only SQL on the envelopes table): the REMOVE,
 *     the KEYS envelopes of epoch 1 (2 for 998 members: CHAN_KEYS_MAX =
 *     526 entries a body) and the settings repeated under the new key.
 *     Floor, in this process: the crypto of the same rotation (per member
 *     an X3DH initiate and the entry seal; three envelope signatures).
 *     Then a second removal, the sessions now open (no X3DH): its time,
 *     against the floor without X3DH.
 *  2. Cost to the sender of one message in that channel: the median
 *     channel.send call, and its bytes (the kind-5 envelopes of the
 *     channel's msg scope must rise by exactly one per send), beside the
 *     median `send` (DM) call to a real peer B and a bare `status` call
 *     (the API floor).
 *  3. Catch-up after 10,000 channel messages: A makes #catch and adds B
 *     (a second real parleyd) through the API; B stops; A sends 10,000
 *     messages (pipelined, S_WINDOW calls in flight: the rate A sent them
 *     at); B starts again on its home and port, seeded with A; the time
 *     from B's API answering until B's channel.list counts all of them
 *     (and until it held the first, half, 90 % and 99 %), with B's sync
 *     counters and the rejections it counted meanwhile. B is asked by the
 *     channel's id: the name comes in the settings message, in the msg
 *     scope, which a new member may get only in a later sync round.
 *     Floor, in this process: a channel message's ingest CPU on one core
 *     (Ed25519 verify, BLAKE2b id, the chain step, chan_body_open of a
 *     100-byte text) over S_FLOOR_MSGS pre-built envelopes, and the figure
 *     the notes give (../shared/notes/limits.md) as a reference.
 *
 *  Floors are the best of S_FLOOR_RUNS runs (CPU speed drifts). Times from
 *  polling the API carry up to S_POLL_MS of slack. Discovery stays among
 *  the bench's nodes: --no-mdns, and host-local discovery in a runtime
 *  directory of the bench's own. Everything on 127.0.0.1; the homes are in
 *  a temporary directory, removed at the end unless --keep.
 *
 *  usage: bench_channel [--keep]    (~1 min)
 */
#include "../../node/config.h"
#include "../../node/home.h"
#include "../../proto/b32.h"
#include "../../proto/chan.h"
#include "../../proto/content.h"
#include "../../proto/dm.h"
#include "../../proto/envelope.h"
#include "../../proto/identity.h"
#include "../../proto/limits.h"
#include "../../proto/roster.h"
#include "../../store/store.h"
#include "nodes.h"

#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define S_BIG 1000u           /* members of the channel of figures 1 and 2, A included */
#define S_SIM (S_BIG - 1u)    /* simulated members */
#define S_CATCH 10000u        /* messages B catches up on (figure 3) */
#define S_SENDS 200u          /* channel.send and send calls timed (figure 2) */
#define S_WARM 10u            /* DMs before the timed ones: the session opens */
#define S_RT_SAMPLES 50u      /* status round trips */
#define S_WINDOW 32u          /* channel.send calls in flight in figure 3 */
#define S_TEXT_LEN 100u       /* every text sent, bytes */
#define S_FLOOR_MSGS 20000u   /* envelopes of the ingest floor */
#define S_FLOOR_RUNS 3u       /* floors: the best of this many runs */
#define S_POLL_MS 10          /* polling period */
#define S_START_MS 30000      /* a node has this long to come up */
#define S_CALL_MS 30000       /* an API call has this long to answer */
#define S_WAIT_MS 60000       /* a figure has this long to settle */
#define S_NOTES_INGEST 13.0e3 /* limits.md: ingest verify+decrypt+id, 100 B, msgs/s per core */

static const char *s_prog = "bench_channel";
static char s_root[256];
static char s_parleyd[512];
static nodes_group_t s_nodes; /* every node running, stopped by s_fail */

static void
s_on_signal(int sig)
{
    nodes_kill_all();
    _exit(sig == SIGALRM ? 3 : 130);
}

static int
s_fail(const char *what)
{
    fprintf(stderr, "%s: FAIL: %s (files in %s)\n", s_prog, what, s_root);
    nodes_group_stop_all(&s_nodes);
    return 1;
}

static int
s_id_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

//  Exactly S_TEXT_LEN bytes: "bench KIND NNNNNNN " then filler.
static void
s_text(char *out, const char *kind, size_t i)
{
    int n = snprintf(out, S_TEXT_LEN + 1, "bench %s %07zu ", kind, i);
    size_t len = n > 0 ? (size_t)n : 0;
    memset(out + len, 'x', S_TEXT_LEN - len);
    out[S_TEXT_LEN] = '\0';
}

/* ---- nodes ---- */

//  Starts node NAME on home s_root/NAME (made if missing), listening on
//  listen, dialling seed (NULL: none). Tracked in s_nodes. NULL (message
//  printed) when it did not come up.
static nodes_proc_t *
s_start(const char *name, const char *listen, const char *seed)
{
    const char *args[8] = { "--listen", listen, "--no-mdns" };
    size_t n = 3;
    if (seed) {
        args[n++] = "--seed";
        args[n++] = seed;
    }
    args[n] = NULL;
    return nodes_group_start(&s_nodes, s_root, name, s_parleyd, args, S_START_MS);
}

//  A call's result (owned), or NULL (message printed).
static json_t *
s_call(nodes_proc_t *n, const char *method, json_t *params)
{
    return nodes_ask(n, method, params, S_CALL_MS);
}

//  What channel.list says of channel name on n.
typedef struct {
    bool found;
    long long epoch, members, messages;
    bool keyed;
    bool named; /* its name is known */
} s_chan_t;

//  name: the channel's name or its id (a member that has not read the
//  settings message yet lists the channel without a name).
static int
s_chan(nodes_proc_t *n, const char *name, s_chan_t *out)
{
    memset(out, 0, sizeof *out);
    json_t *r = s_call(n, "channel.list", NULL);
    if (!r) {
        return -1;
    }
    const json_t *list = json_object_get(r, "channels");
    for (size_t i = 0; i < json_array_size(list); i++) {
        const json_t *c = json_array_get(list, i);
        const char *cn = json_string_value(json_object_get(c, "name"));
        const char *cid = json_string_value(json_object_get(c, "channel"));
        if ((cn && strcmp(cn, name) == 0) || (cid && strcmp(cid, name) == 0)) {
            out->found = true;
            out->epoch = nodes_json_int(c, "epoch", NULL, NULL);
            out->members = nodes_json_int(c, "members", NULL, NULL);
            out->messages = nodes_json_int(c, "messages", NULL, NULL);
            out->keyed = json_is_true(json_object_get(c, "keyed"));
            out->named = cn && cn[0];
        }
    }
    json_decref(r);
    return 0;
}

/* ---- a node's log, read-only ---- */

//  What a scope of a node's log holds past row n `after`: count and bytes
//  per kind; of the KEYS bodies, those of epoch `epoch` apart, with their
//  entries.
typedef struct {
    size_t n[ENVELOPE_KIND_LAST + 1];
    size_t bytes[ENVELOPE_KIND_LAST + 1];
    size_t keys_n, keys_bytes, keys_entries; /* KEYS of the epoch asked for */
    long long last;                          /* the highest row n of the scope (0: none) */
} s_tally_t;

//  Reads home NAME's parley.db (read-only, while its node runs: WAL lets a
//  reader in beside the writer) for scope.
static int
s_tally(const char *name, const uint8_t scope[32], long long after, uint32_t epoch, s_tally_t *t)
{
    memset(t, 0, sizeof *t);
    char db_path[512];
    if (nodes_path(db_path, sizeof db_path, s_root, name, "parley.db") != 0) {
        return -1;
    }
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(db, 5000);
        rc = sqlite3_prepare_v2(db,
                                "SELECT n, kind, bytes FROM envelopes WHERE scope = ?1 AND n > ?2"
                                " ORDER BY n",
                                -1, &st, NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_blob(st, 1, scope, 32, SQLITE_STATIC);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_bind_int64(st, 2, after);
    }
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rc = SQLITE_OK;
        long long n = sqlite3_column_int64(st, 0);
        int kind = sqlite3_column_int(st, 1);
        const uint8_t *bytes = sqlite3_column_blob(st, 2);
        size_t len = (size_t)sqlite3_column_bytes(st, 2);
        t->last = n > t->last ? n : t->last;
        if (kind < 1 || kind > ENVELOPE_KIND_LAST) {
            continue;
        }
        t->n[kind]++;
        t->bytes[kind] += len;
        envelope_t env;
        chan_keys_t k;
        if (kind == ENVELOPE_KIND_CHAN_KEYS && envelope_decode(bytes, len, &env) == PARLEY_OK
            && chan_keys_decode(env.body, env.body_len, &k) == PARLEY_OK && k.epoch == epoch) {
            t->keys_n++;
            t->keys_bytes += len;
            t->keys_entries += k.n;
        }
    }
    if (rc != SQLITE_DONE) {
        fprintf(stderr, "%s: reading %s: %s\n", s_prog, db_path, db ? sqlite3_errmsg(db) : "");
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc == SQLITE_DONE ? 0 : -1;
}

/* ---- figure 1: the admin's store, written before it starts ---- */

//  The admin's store being written: its identity, the channel's fold (for
//  the parents of each event), the next seq of the control scope and the
//  clock of the envelopes (one ms apart, in the past).
typedef struct {
    store_t *st;
    const identity_t *id;
    roster_t *fold;
    uint8_t chid[32], scope[32];
    uint8_t key[32], key_id[CHAN_KEY_ID_LEN], binding[32]; /* epoch 0 */
    uint64_t seq, ts;
    size_t bytes; /* the envelopes' total size */
} s_big_t;

//  Seals env (fields and body set) with the admin's key and stores it; its
//  id into id.
static int
s_put(s_big_t *b, envelope_t *env, uint8_t id[32])
{
    uint8_t *buf = malloc(PARLEY_ENVELOPE_MAX);
    size_t len = 0;
    envelope_t dec;
    int rc = buf ? envelope_seal(env, identity_ed_sk(b->id), buf, PARLEY_ENVELOPE_MAX, &len)
                 : PARLEY_ERR_NOMEM;
    if (rc == PARLEY_OK) {
        rc = envelope_decode(buf, len, &dec);
    }
    if (rc == PARLEY_OK) {
        envelope_id(&dec, id);
        b->bytes += len;
        rc = store_envelope_put(b->st, &dec, id, dec.ts_ms);
    }
    free(buf);
    return rc;
}

static void
s_fields(s_big_t *b, envelope_t *env, uint8_t kind, const uint8_t scope[32], uint64_t seq)
{
    memset(env, 0, sizeof *env);
    env->version = PARLEY_ENVELOPE_VERSION;
    env->kind = kind;
    memcpy(env->author, identity_ed_pk(b->id), 32);
    memcpy(env->scope, scope, 32);
    env->seq = seq;
    env->ts_ms = b->ts++;
}

//  A control event by the admin, its parents the fold's heads (as
//  s_author_event builds it), stored and folded.
static int
s_put_event(s_big_t *b, const roster_event_t *ev)
{
    uint8_t body[ROSTER_BODY_MAX], id[32];
    size_t body_len = 0;
    const uint8_t *me = identity_ed_pk(b->id);
    int rc = roster_event_build(b->fold, me, ev, body, sizeof body, &body_len);
    envelope_t env;
    s_fields(b, &env, ENVELOPE_KIND_CHAN, b->chid, b->seq++);
    env.body = body;
    env.body_len = body_len;
    if (rc == PARLEY_OK) {
        rc = s_put(b, &env, id);
    }
    if (rc == PARLEY_OK) {
        rc = roster_add_event(b->fold, id, me, env.ts_ms, body, body_len);
    }
    return rc == PARLEY_OK ? roster_fold(b->fold) : rc;
}

//  The settings message channels_create sends under the epoch-0 key (seq
//  1 of the msg scope, step 0 of the admin's chain), and the chain saved
//  at step 1. *meta: its place.
static int
s_put_settings(s_big_t *b, const char *name, store_chan_pos_t *meta)
{
    const uint8_t *me = identity_ed_pk(b->id);
    uint8_t content[2 + CONTENT_NAME_MAX + CONTENT_TOPIC_MAX], ck[32], mk[32], id[32];
    size_t clen = 0, saved_len = 0, blen = 0;
    int rc = content_encode_chan_meta(name, strlen(name), "", 0, content, sizeof content, &clen);
    chan_chain_start(b->key, b->chid, 0, me, ck);
    chan_rx_t *tx = chan_rx_new(ck, 0);
    sodium_memzero(ck, sizeof ck);
    rc = rc == PARLEY_OK && !tx ? PARLEY_ERR_NOMEM : rc;
    if (rc == PARLEY_OK) {
        rc = chan_rx_key(tx, 0, mk);
    }
    if (rc == PARLEY_OK) {
        rc = chan_rx_used(tx, 0);
    }
    uint8_t *saved = malloc(CHAN_RX_SAVED_MAX);
    uint8_t *body = malloc(PARLEY_BODY_MAX);
    rc = rc == PARLEY_OK && (!saved || !body) ? PARLEY_ERR_NOMEM : rc;
    if (rc == PARLEY_OK) {
        rc = chan_rx_save(tx, saved, CHAN_RX_SAVED_MAX, &saved_len);
    }
    if (rc == PARLEY_OK) {
        rc = store_chan_chain_put(b->st, b->chid, 0, b->key_id, me, saved, saved_len);
    }
    envelope_t env;
    s_fields(b, &env, ENVELOPE_KIND_CHAN_MSG, b->scope, 1);
    chan_msg_header_t h = { .epoch = 0, .counter = 0 };
    memcpy(h.key_id, b->key_id, sizeof h.key_id);
    if (rc == PARLEY_OK) {
        uint8_t hdr[PARLEY_ENVELOPE_HEADER_LEN];
        envelope_header(&env, chan_body_len(clen), hdr);
        rc = chan_body_seal(hdr, &h, mk, content, clen, body, PARLEY_BODY_MAX, &blen);
    }
    env.body = body;
    env.body_len = blen;
    if (rc == PARLEY_OK) {
        rc = s_put(b, &env, id);
    }
    *meta = (store_chan_pos_t){ .ts_ms = env.ts_ms, .seq = env.seq };
    memcpy(meta->author, me, 32);
    sodium_memzero(mk, sizeof mk);
    chan_rx_destroy(&tx);
    if (saved) {
        sodium_memzero(saved, CHAN_RX_SAVED_MAX);
    }
    free(saved);
    free(body);
    return rc;
}

//  Member pk, simulated: the ADD, the session the admin opens to it (on
//  its prekey spk 1), the KEYS body of one entry handing it the epoch-0
//  key (as channels_add seals it), then its newer prekey (spk 2) in the
//  admin's table.
static int
s_put_member(s_big_t *b, const uint8_t pk[32], const uint8_t sk[64])
{
    roster_event_t ev = { .type = ROSTER_ADD, .role = ROSTER_ROLE_MEMBER };
    memcpy(ev.key, pk, 32);
    int rc = s_put_event(b, &ev);
    prekey_t spk1, spk2;
    uint8_t secret[32], bundle[DM_PREKEY_BUNDLE_LEN], id[32];
    uint64_t made = b->ts - 86400000u; // its first prekey: a day older
    if (rc == PARLEY_OK) {
        rc = dm_prekey_generate(pk, 1, made, &spk1, secret);
    }
    store_send_session_t s;
    memset(&s, 0, sizeof s);
    memcpy(s.peer, pk, 32);
    s.spk_id = 1;
    s.day0 = s.day = (uint32_t)(b->ts / NODE_DAY_MS);
    if (rc == PARLEY_OK) {
        rc = dm_x3dh_initiate(b->id, pk, &spk1, s.ek_pub, s.key);
    }
    if (rc == PARLEY_OK) {
        rc = store_send_session_put(b->st, &s);
    }
    chan_keys_t kb = { .epoch = 0, .part = 0, .parts = 1, .n = 1 };
    memcpy(kb.key_id, b->key_id, sizeof kb.key_id);
    memcpy(kb.binding, b->binding, 32);
    randombytes_buf(kb.nonce, sizeof kb.nonce);
    uint8_t body[CHAN_KEYS_FIXED + CHAN_KEYS_ENTRY_LEN];
    size_t body_len = 0;
    if (rc == PARLEY_OK) {
        rc = chan_keys_begin(&kb, body, sizeof body, &body_len);
    }
    chan_keys_entry_t e = { pk, s.ek_pub, s.spk_id, s.day0, s.day, NULL };
    if (rc == PARLEY_OK) {
        rc = chan_keys_entry_seal(b->chid, &kb, &e, s.key, b->key, body + CHAN_KEYS_FIXED);
    }
    envelope_t env;
    s_fields(b, &env, ENVELOPE_KIND_CHAN_KEYS, b->chid, b->seq++);
    env.body = body;
    env.body_len = body_len;
    if (rc == PARLEY_OK) {
        rc = s_put(b, &env, id);
    }
    bool changed = false;
    if (rc == PARLEY_OK) {
        rc = dm_prekey_generate(pk, 2, b->ts, &spk2, secret);
    }
    if (rc == PARLEY_OK) {
        rc = dm_prekey_encode(&spk2, sk, bundle);
    }
    if (rc == PARLEY_OK) {
        rc = store_peer_prekey_put(b->st, &spk2, bundle, &changed);
    }
    sodium_memzero(secret, sizeof secret);
    sodium_memzero(&s, sizeof s);
    return rc;
}

//  Makes home NAME: the admin's identity and store as described at the
//  top, for a channel named chan_name; the channel id into chid and the
//  simulated members' keys into members (S_SIM × 32). *bytes: the
//  envelopes written.
static int
s_build_big(const char *name, const char *chan_name, uint8_t chid[32], uint8_t (*members)[32],
            size_t *bytes)
{
    char dir[512], db[512];
    if (nodes_path(dir, sizeof dir, s_root, name, NULL) != 0
        || nodes_path(db, sizeof db, s_root, name, "parley.db") != 0) {
        return -1;
    }
    if (mkdir(dir, 0700) != 0) {
        return -1;
    }
    identity_t *id = identity_new();
    s_big_t b;
    memset(&b, 0, sizeof b);
    if (!id || home_identity_create(dir, id, NULL, 0) != PARLEY_OK
        || store_open(db, &b.st) != PARLEY_OK) {
        identity_destroy(&id);
        return -1;
    }
    const uint8_t *me = identity_ed_pk(id);
    b.id = id;
    b.seq = 1;
    b.ts = nodes_wall_ms() - 120000; // two minutes ago, one envelope per ms
    roster_event_t ev = { .type = ROSTER_CHANNEL };
    randombytes_buf(ev.salt, sizeof ev.salt);
    chan_id(me, ev.salt, b.chid);
    chan_msg_scope(b.chid, b.scope);
    b.fold = roster_new_channel(b.chid);
    int rc = b.fold ? store_begin(b.st) : PARLEY_ERR_NOMEM;
    if (rc == PARLEY_OK) {
        rc = s_put_event(&b, &ev);
    }
    //  The epoch-0 key, as s_rotate draws it (no removal: the binding of
    //  no event).
    store_chan_key_t k;
    memset(&k, 0, sizeof k);
    memcpy(k.channel, b.chid, 32);
    randombytes_buf(b.key, sizeof b.key);
    chan_key_id(b.chid, 0, b.key, b.key_id);
    chan_binding(b.chid, NULL, 0, b.binding);
    memcpy(k.key, b.key, 32);
    memcpy(k.key_id, b.key_id, sizeof k.key_id);
    memcpy(k.binding, b.binding, 32);
    memcpy(k.author, me, 32);
    k.bound = true;
    k.added_ms = b.ts;
    if (rc == PARLEY_OK) {
        rc = store_chan_key_put(b.st, &k);
    }
    sodium_memzero(&k, sizeof k);
    store_chan_t row;
    memset(&row, 0, sizeof row);
    memcpy(row.id, b.chid, 32);
    row.state = STORE_CHAN_MEMBER;
    row.since_ms = b.ts;
    snprintf(row.name, sizeof row.name, "%s", chan_name);
    if (rc == PARLEY_OK) {
        rc = s_put_settings(&b, chan_name, &row.meta);
    }
    for (size_t i = 0; rc == PARLEY_OK && i < S_SIM; i++) {
        uint8_t sk[64];
        crypto_sign_keypair(members[i], sk);
        rc = s_put_member(&b, members[i], sk);
        sodium_memzero(sk, sizeof sk);
    }
    if (rc == PARLEY_OK) {
        rc = store_chan_put(b.st, &row);
    }
    if (rc == PARLEY_OK && roster_member_count(b.fold) != S_BIG) {
        rc = PARLEY_ERR_STATE;
    }
    if (store_in_txn(b.st) && (rc != PARLEY_OK || store_commit(b.st) != PARLEY_OK)) {
        rc = rc == PARLEY_OK ? PARLEY_ERR_IO : rc;
        if (store_rollback(b.st) != PARLEY_OK) {
            rc = PARLEY_ERR_IO; // the home is removed anyway
        }
    }
    if (rc != PARLEY_OK) {
        fprintf(stderr, "%s: writing the admin's store: %s\n", s_prog, parley_strerror(rc));
    }
    memcpy(chid, b.chid, 32);
    *bytes = b.bytes;
    sodium_memzero(b.key, sizeof b.key);
    roster_destroy(&b.fold);
    store_destroy(&b.st);
    identity_destroy(&id);
    return rc == PARLEY_OK ? 0 : -1;
}

/* ---- figure 1: floors ---- */

//  n members (sorted by key) with their current prekey, and a day key of
//  an open session to each: what the rotation's crypto needs.
typedef struct {
    uint8_t (*pk)[32];
    prekey_t *spk;
    uint8_t (*day_key)[32];
    size_t n;
} s_crowd_t;

static void
s_crowd_free(s_crowd_t *c)
{
    if (c->day_key) {
        sodium_memzero(c->day_key, c->n * 32);
    }
    free(c->pk);
    free(c->spk);
    free(c->day_key);
    memset(c, 0, sizeof *c);
}

static int
s_crowd_new(s_crowd_t *c, size_t n)
{
    memset(c, 0, sizeof *c);
    c->pk = malloc(n * 32);
    c->spk = malloc(n * sizeof *c->spk);
    c->day_key = malloc(n * 32);
    c->n = n;
    if (!c->pk || !c->spk || !c->day_key) {
        s_crowd_free(c);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t sk[64];
        crypto_sign_keypair(c->pk[i], sk);
        sodium_memzero(sk, sizeof sk);
    }
    qsort(c->pk, n, 32, s_id_cmp);
    for (size_t i = 0; i < n; i++) {
        uint8_t secret[32];
        int rc = dm_prekey_generate(c->pk[i], 2, nodes_wall_ms(), &c->spk[i], secret);
        sodium_memzero(secret, sizeof secret);
        randombytes_buf(c->day_key[i], 32);
        if (rc != PARLEY_OK) {
            s_crowd_free(c);
            return -1;
        }
    }
    return 0;
}

//  The crypto of one rotation by me to the crowd: the REMOVE signed, the
//  new key sealed to each member in KEYS bodies of CHAN_KEYS_MAX entries
//  (with x3dh, under a new session per member; else under the day key of
//  the open one), each body signed. *secs: the time it took.
static int
s_floor_rotate(const identity_t *me, const s_crowd_t *c, bool x3dh, double *secs)
{
    uint8_t chid[32], key[32], parent[32], ev_id[32];
    randombytes_buf(chid, sizeof chid);
    randombytes_buf(key, sizeof key);
    randombytes_buf(parent, sizeof parent);
    randombytes_buf(ev_id, sizeof ev_id);
    uint8_t *buf = malloc(PARLEY_ENVELOPE_MAX);
    if (!buf) {
        return -1;
    }
    envelope_t env;
    memset(&env, 0, sizeof env);
    env.version = PARLEY_ENVELOPE_VERSION;
    memcpy(env.author, identity_ed_pk(me), 32);
    memcpy(env.scope, chid, 32);
    env.ts_ms = nodes_wall_ms();
    size_t len = 0, fails = 0;
    double t0 = nodes_now();
    roster_event_t ev = { .type = ROSTER_REMOVE, .n_parents = 1, .parents = parent };
    memcpy(ev.key, c->pk[0], 32);
    uint8_t rbody[ROSTER_BODY_MAX];
    size_t rlen = 0;
    fails += roster_event_encode(&ev, rbody, sizeof rbody, &rlen) != PARLEY_OK;
    env.kind = ENVELOPE_KIND_CHAN;
    env.seq = 1;
    env.body = rbody;
    env.body_len = rlen;
    fails += envelope_seal(&env, identity_ed_sk(me), buf, PARLEY_ENVELOPE_MAX, &len) != PARLEY_OK;
    chan_keys_t kb = { .epoch = 1 };
    chan_key_id(chid, 1, key, kb.key_id);
    chan_binding(chid, ev_id, 1, kb.binding);
    size_t parts = (c->n + CHAN_KEYS_MAX - 1) / CHAN_KEYS_MAX;
    uint8_t *body = buf + PARLEY_ENVELOPE_HEADER_LEN;
    for (size_t p = 0; p < parts; p++) {
        size_t first = p * CHAN_KEYS_MAX;
        kb.part = (uint8_t)p;
        kb.parts = (uint8_t)parts;
        kb.n = c->n - first < CHAN_KEYS_MAX ? c->n - first : CHAN_KEYS_MAX;
        randombytes_buf(kb.nonce, sizeof kb.nonce);
        size_t body_len = 0;
        fails += chan_keys_begin(&kb, body, PARLEY_BODY_MAX, &body_len) != PARLEY_OK;
        for (size_t i = 0; i < kb.n; i++) {
            size_t m = first + i;
            uint8_t ek_pub[32], day_key[32];
            if (x3dh) {
                fails += dm_x3dh_initiate(me, c->pk[m], &c->spk[m], ek_pub, day_key) != PARLEY_OK;
            } else {
                memcpy(ek_pub, c->pk[m], 32); // any value: the session's is only copied
                memcpy(day_key, c->day_key[m], 32);
            }
            uint32_t day = (uint32_t)(env.ts_ms / NODE_DAY_MS);
            chan_keys_entry_t e = { c->pk[m], ek_pub, 2, day, day, NULL };
            fails += chan_keys_entry_seal(chid, &kb, &e, day_key, key,
                                          body + CHAN_KEYS_FIXED + i * CHAN_KEYS_ENTRY_LEN)
                     != PARLEY_OK;
            sodium_memzero(day_key, sizeof day_key);
        }
        env.kind = ENVELOPE_KIND_CHAN_KEYS;
        env.seq = 2 + p;
        env.body = body;
        env.body_len = body_len;
        fails +=
            envelope_seal(&env, identity_ed_sk(me), buf, PARLEY_ENVELOPE_MAX, &len) != PARLEY_OK;
    }
    *secs = nodes_now() - t0;
    sodium_memzero(key, sizeof key);
    free(buf);
    return fails ? -1 : 0;
}

//  The best of S_FLOOR_RUNS s_floor_rotate runs.
static int
s_floor_rotate_best(const identity_t *me, const s_crowd_t *c, bool x3dh, double *best)
{
    *best = -1;
    for (size_t r = 0; r < S_FLOOR_RUNS; r++) {
        double secs = 0;
        if (s_floor_rotate(me, c, x3dh, &secs) != 0) {
            return -1;
        }
        *best = *best < 0 || secs < *best ? secs : *best;
    }
    return 0;
}

/* ---- figure 1 ---- */

//  Removes member pk from channel chan on a (over the API), then waits
//  until a shows epoch `epoch` keyed. *t_call, *t_keyed: seconds from the
//  call.
static int
s_remove(nodes_proc_t *a, const char *chan, const uint8_t pk[32], long long epoch, double *t_call,
         double *t_keyed)
{
    char rid[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(pk, rid);
    double t0 = nodes_now();
    json_t *r = s_call(a, "channel.remove", json_pack("{s:s, s:s}", "channel", chan, "peer", rid));
    *t_call = nodes_now() - t0;
    if (!r) {
        return -1;
    }
    json_decref(r);
    while (nodes_now() - t0 < S_WAIT_MS / 1000.0 && nodes_alive(a)) {
        s_chan_t c;
        if (s_chan(a, chan, &c) == 0 && c.epoch == epoch && c.keyed) {
            *t_keyed = nodes_now() - t0;
            return 0;
        }
        nodes_sleep_ms(S_POLL_MS);
    }
    return -1;
}

typedef struct {
    uint8_t chid[32], scope[32]; /* #big: control and msg scopes */
} s_big_ids_t;

static int
s_figure1(nodes_proc_t **a_out, s_big_ids_t *ids)
{
    printf("1. removal plus rotation in a %u-member channel (A real, %u members simulated)\n",
           S_BIG, S_SIM);
    uint8_t(*members)[32] = malloc(S_SIM * 32);
    if (!members) {
        return s_fail("out of memory");
    }
    size_t built = 0;
    double t0 = nodes_now();
    if (s_build_big("a", "big", ids->chid, members, &built) != 0) {
        free(members);
        return s_fail("cannot build the admin's store");
    }
    chan_msg_scope(ids->chid, ids->scope);
    printf("  A's store written before it starts: CHANNEL + %u ADD + %u KEYS (one entry each)"
           " + settings = %u envelopes, %zu B (%.1f s)\n",
           S_SIM, S_SIM, 2 * S_SIM + 2, built, nodes_now() - t0);
    nodes_proc_t *a = s_start("a", "tcp://127.0.0.1:*", NULL);
    *a_out = a;
    if (!a) {
        free(members);
        return s_fail("A did not start");
    }
    //  The first iterations settle the channel and look for keys owed: let
    //  them run, then see that A took the store as it is.
    nodes_sleep_ms(1000);
    json_t *info = s_call(a, "channel.info", json_pack("{s:s}", "channel", "big"));
    long long n_members = nodes_json_int(info, "members", NULL, NULL);
    long long epoch = nodes_json_int(info, "epoch", NULL, NULL);
    bool keyed = json_is_true(json_object_get(info, "keyed"));
    size_t listed = json_array_size(json_object_get(info, "member_list"));
    json_decref(info);
    s_tally_t t0_ctl, t0_msg;
    if (s_tally("a", ids->chid, 0, 0, &t0_ctl) != 0
        || s_tally("a", ids->scope, 0, 0, &t0_msg) != 0) {
        free(members);
        return s_fail("cannot read A's log");
    }
    printf("  A at start: %lld members (%zu listed), epoch %lld, keyed %s; its log holds %zu KEYS"
           " of epoch 0 with %zu entries\n",
           n_members, listed, epoch, keyed ? "true" : "false", t0_ctl.keys_n, t0_ctl.keys_entries);
    if (n_members != S_BIG || listed != S_BIG || epoch != 0 || !keyed) {
        free(members);
        nodes_show_log(a);
        return s_fail("A did not take the channel it was given");
    }
    if (t0_ctl.keys_n != S_SIM || t0_ctl.keys_entries != S_SIM) {
        free(members);
        nodes_show_log(a);
        return s_fail("A sealed epoch-0 keys again at start: it found keys owed");
    }

    /* The removal that opens new sessions. */
    double t_call = 0, t_keyed = 0;
    if (s_remove(a, "big", members[S_SIM / 2], 1, &t_call, &t_keyed) != 0) {
        free(members);
        nodes_show_log(a);
        return s_fail("A never held the epoch-1 key");
    }
    //  What it wrote: past the rows it had. Keys owed are looked for again
    //  after the rotation (the epoch changed): give that a moment too.
    nodes_sleep_ms(300);
    s_tally_t ctl, msg;
    if (s_tally("a", ids->chid, t0_ctl.last, 1, &ctl) != 0
        || s_tally("a", ids->scope, t0_msg.last, 1, &msg) != 0) {
        free(members);
        return s_fail("cannot read A's log");
    }
    printf("  channel.remove call: %.1f ms; A holds the epoch-1 key %.0f ms after the call"
           " (polled every %d ms)\n",
           t_call * 1e3, t_keyed * 1e3, S_POLL_MS);
    printf("  bytes A wrote: REMOVE %zu B (%zu envelope) + KEYS of epoch 1 %zu B (%zu envelopes,"
           " %zu entries) = %zu B\n",
           ctl.bytes[ENVELOPE_KIND_CHAN], ctl.n[ENVELOPE_KIND_CHAN], ctl.keys_bytes, ctl.keys_n,
           ctl.keys_entries, ctl.bytes[ENVELOPE_KIND_CHAN] + ctl.keys_bytes);
    printf("  besides: the settings repeated under the new key, %zu envelope of kind 5, %zu B;"
           " other KEYS: %zu\n",
           msg.n[ENVELOPE_KIND_CHAN_MSG], msg.bytes[ENVELOPE_KIND_CHAN_MSG],
           ctl.n[ENVELOPE_KIND_CHAN_KEYS] - ctl.keys_n);
    if (ctl.keys_entries != S_SIM - 1 || ctl.n[ENVELOPE_KIND_CHAN] != 1) {
        free(members);
        return s_fail("the rotation did not write one REMOVE and a key for each other member");
    }

    /* The floors, in this process. */
    identity_t *me = identity_new();
    s_crowd_t crowd;
    double f_x3dh = 0, f_open = 0;
    if (!me || s_crowd_new(&crowd, S_SIM - 1) != 0) {
        identity_destroy(&me);
        free(members);
        return s_fail("out of memory");
    }
    int frc = s_floor_rotate_best(me, &crowd, true, &f_x3dh);
    frc = frc == 0 ? s_floor_rotate_best(me, &crowd, false, &f_open) : frc;
    s_crowd_free(&crowd);
    identity_destroy(&me);
    if (frc != 0) {
        free(members);
        return s_fail("the rotation floor failed");
    }
    printf("  floor: the crypto of it (%u X3DH initiates + entry seals, 3 signatures): %.1f ms;"
           " node/floor %.1fx\n",
           S_SIM - 1, f_x3dh * 1e3, t_keyed / f_x3dh);

    /* Again, the sessions open now. */
    if (s_remove(a, "big", members[S_SIM / 2 + 1], 2, &t_call, &t_keyed) != 0) {
        free(members);
        nodes_show_log(a);
        return s_fail("A never held the epoch-2 key");
    }
    free(members);
    nodes_sleep_ms(300);
    s_tally_t ctl2;
    if (s_tally("a", ids->chid, ctl.last, 2, &ctl2) != 0) {
        return s_fail("cannot read A's log");
    }
    printf("  a second removal, the sessions open (no X3DH): epoch-2 key %.0f ms after the call,"
           " %zu KEYS, %zu entries, %zu B\n",
           t_keyed * 1e3, ctl2.keys_n, ctl2.keys_entries, ctl2.keys_bytes);
    printf("  floor without X3DH (%u entry seals, 3 signatures): %.2f ms; node/floor %.0fx\n",
           S_SIM - 2, f_open * 1e3, t_keyed / f_open);
    return 0;
}

/* ---- figure 2 ---- */

//  Median of S_SENDS calls of method with params made by mk(i).
static int
s_time_calls(nodes_proc_t *n, const char *method, json_t *(*mk)(size_t i, const char *arg),
             const char *arg, double *median)
{
    double *t = malloc(S_SENDS * sizeof *t);
    if (!t) {
        return -1;
    }
    for (size_t i = 0; i < S_SENDS; i++) {
        double t0 = nodes_now();
        json_t *r = s_call(n, method, mk(i, arg));
        t[i] = nodes_now() - t0;
        if (!r) {
            free(t);
            return -1;
        }
        json_decref(r);
    }
    *median = nodes_median(t, S_SENDS);
    free(t);
    return 0;
}

static json_t *
s_chan_send_params(size_t i, const char *chan)
{
    char text[S_TEXT_LEN + 1];
    s_text(text, "chan", i);
    return json_pack("{s:s, s:s}", "channel", chan, "text", text);
}

static json_t *
s_dm_params(size_t i, const char *peer)
{
    char text[S_TEXT_LEN + 1];
    s_text(text, "dm", i);
    return json_pack("{s:s, s:s}", "peer", peer, "text", text);
}

//  DMs from a to b until one is sealed at once ("stored"): a holds b's
//  prekey and a session is open.
static int
s_dm_ready(nodes_proc_t *a, nodes_proc_t *b)
{
    double t0 = nodes_now();
    size_t stored = 0;
    for (size_t i = 0; stored < S_WARM; i++) {
        json_t *r = s_call(a, "send", s_dm_params(i, nodes_id(b)));
        const char *state = json_string_value(json_object_get(r, "state"));
        stored += state && strcmp(state, "queued") != 0;
        json_decref(r);
        if (!r || nodes_now() - t0 > S_WAIT_MS / 1000.0) {
            return -1;
        }
        if (stored == 0) {
            nodes_sleep_ms(50);
        }
    }
    return 0;
}

static int
s_figure2(nodes_proc_t *a, nodes_proc_t *b, const s_big_ids_t *ids)
{
    printf("2. cost to the sender of one message in the %u-member channel (%u-byte texts)\n",
           S_BIG - 2, S_TEXT_LEN);
    s_tally_t before, after;
    double chan_ms = 0, dm_ms = 0;
    if (s_tally("a", ids->scope, 0, 0, &before) != 0) {
        return s_fail("cannot read A's log");
    }
    if (s_time_calls(a, "channel.send", s_chan_send_params, "big", &chan_ms) != 0) {
        return s_fail("channel.send");
    }
    if (s_tally("a", ids->scope, before.last, 0, &after) != 0) {
        return s_fail("cannot read A's log");
    }
    size_t n5 = after.n[ENVELOPE_KIND_CHAN_MSG], others = 0;
    for (size_t k = 0; k <= ENVELOPE_KIND_LAST; k++) {
        others += k == ENVELOPE_KIND_CHAN_MSG ? 0 : after.n[k];
    }
    printf("  channel.send call: median %.2f ms over %u; envelopes of kind 5 written: %zu (%s),"
           " %.0f B each; of other kinds: %zu\n",
           chan_ms * 1e3, S_SENDS, n5, n5 == S_SENDS ? "one per send" : "NOT one per send",
           n5 ? (double)after.bytes[ENVELOPE_KIND_CHAN_MSG] / (double)n5 : 0.0, others);
    if (n5 != S_SENDS) {
        return s_fail("a channel message did not cost exactly one envelope");
    }
    if (nodes_wait_link(a, b, S_WAIT_MS) != 0 || s_dm_ready(a, b) != 0) {
        return s_fail("A cannot send DMs to B");
    }
    if (s_time_calls(a, "send", s_dm_params, nodes_id(b), &dm_ms) != 0) {
        return s_fail("send");
    }
    double rt = nodes_status_rt(a, S_RT_SAMPLES, S_CALL_MS);
    printf("  send (DM to B, a real peer): median %.2f ms over %u; status call RT (API floor):"
           " median %.2f ms\n",
           dm_ms * 1e3, S_SENDS, rt * 1e3);
    return 0;
}

/* ---- figure 3: the ingest floor ---- */

//  Ingest CPU of a channel message: S_FLOOR_MSGS envelopes of one sender
//  are built, then each is decoded, verified, hashed (its id), its chain
//  step taken and its body opened. *rate: msgs/s, the best of
//  S_FLOOR_RUNS passes (each with a fresh chain).
static int
s_floor_ingest(double *rate)
{
    identity_t *me = identity_new();
    uint8_t **env_bytes = calloc(S_FLOOR_MSGS, sizeof *env_bytes);
    size_t *env_len = calloc(S_FLOOR_MSGS, sizeof *env_len);
    uint8_t *content = malloc(PARLEY_CONTENT_MAX);
    int rc = me && env_bytes && env_len && content ? PARLEY_OK : PARLEY_ERR_NOMEM;
    uint8_t chid[32], scope[32], key[32], key_id[CHAN_KEY_ID_LEN], ck[32], mk[32];
    randombytes_buf(chid, sizeof chid);
    randombytes_buf(key, sizeof key);
    chan_msg_scope(chid, scope);
    chan_key_id(chid, 0, key, key_id);
    uint8_t *buf = malloc(PARLEY_ENVELOPE_MAX);
    rc = rc == PARLEY_OK && !buf ? PARLEY_ERR_NOMEM : rc;
    if (rc == PARLEY_OK) {
        chan_chain_start(key, chid, 0, identity_ed_pk(me), ck);
    }
    for (size_t i = 0; rc == PARLEY_OK && i < S_FLOOR_MSGS; i++) {
        char text[S_TEXT_LEN + 1];
        s_text(text, "floor", i);
        size_t clen = 0, blen = 0, len = 0;
        rc = content_encode_text(text, S_TEXT_LEN, content, PARLEY_CONTENT_MAX, &clen);
        envelope_t env;
        memset(&env, 0, sizeof env);
        env.version = PARLEY_ENVELOPE_VERSION;
        env.kind = ENVELOPE_KIND_CHAN_MSG;
        memcpy(env.author, identity_ed_pk(me), 32);
        memcpy(env.scope, scope, 32);
        env.seq = i + 1;
        env.ts_ms = nodes_wall_ms();
        chan_msg_header_t h = { .epoch = 0, .counter = (uint32_t)i };
        memcpy(h.key_id, key_id, sizeof h.key_id);
        chan_chain_step(ck, mk);
        uint8_t hdr[PARLEY_ENVELOPE_HEADER_LEN];
        envelope_header(&env, chan_body_len(clen), hdr);
        if (rc == PARLEY_OK) {
            rc = chan_body_seal(hdr, &h, mk, content, clen, buf + PARLEY_ENVELOPE_HEADER_LEN,
                                PARLEY_BODY_MAX, &blen);
        }
        env.body = buf + PARLEY_ENVELOPE_HEADER_LEN;
        env.body_len = blen;
        if (rc == PARLEY_OK) {
            rc = envelope_seal(&env, identity_ed_sk(me), buf, PARLEY_ENVELOPE_MAX, &len);
        }
        env_bytes[i] = rc == PARLEY_OK ? malloc(len) : NULL;
        rc = rc == PARLEY_OK && !env_bytes[i] ? PARLEY_ERR_NOMEM : rc;
        if (rc == PARLEY_OK) {
            memcpy(env_bytes[i], buf, len);
            env_len[i] = len;
        }
    }
    *rate = 0;
    for (size_t r = 0; rc == PARLEY_OK && r < S_FLOOR_RUNS; r++) {
        chan_chain_start(key, chid, 0, identity_ed_pk(me), ck);
        size_t bad = 0;
        double t0 = nodes_now();
        for (size_t i = 0; i < S_FLOOR_MSGS; i++) {
            envelope_t env;
            chan_msg_header_t h;
            uint8_t id[32], hdr[PARLEY_ENVELOPE_HEADER_LEN];
            size_t clen = 0;
            if (envelope_decode(env_bytes[i], env_len[i], &env) != PARLEY_OK
                || envelope_verify(&env) != PARLEY_OK
                || chan_body_parse(env.body, env.body_len, &h) != PARLEY_OK) {
                bad++;
                continue;
            }
            envelope_id(&env, id);
            chan_chain_step(ck, mk);
            envelope_header(&env, env.body_len, hdr);
            bad +=
                chan_body_open(hdr, env.body, env.body_len, mk, content, PARLEY_CONTENT_MAX, &clen)
                != PARLEY_OK;
        }
        double secs = nodes_now() - t0;
        rc = bad ? PARLEY_ERR_AUTH : rc;
        double r_now = (double)S_FLOOR_MSGS / secs;
        *rate = r_now > *rate ? r_now : *rate;
    }
    sodium_memzero(key, sizeof key);
    sodium_memzero(ck, sizeof ck);
    sodium_memzero(mk, sizeof mk);
    for (size_t i = 0; env_bytes && i < S_FLOOR_MSGS; i++) {
        free(env_bytes[i]);
    }
    if (content) {
        sodium_memzero(content, PARLEY_CONTENT_MAX);
    }
    free(content);
    free(env_bytes);
    free(env_len);
    free(buf);
    identity_destroy(&me);
    return rc == PARLEY_OK ? 0 : -1;
}

/* ---- figure 3 ---- */

//  a sends S_CATCH messages to chan, S_WINDOW calls in flight. *secs: the
//  time from the first request to the last answer.
static int
s_send_many(nodes_proc_t *a, const char *chan, double *secs)
{
    client_t *api = nodes_api(a);
    size_t sent = 0, answered = 0;
    double t0 = nodes_now();
    while (answered < S_CATCH) {
        while (sent < S_CATCH && sent - answered < S_WINDOW) {
            char text[S_TEXT_LEN + 1];
            s_text(text, "catch", sent);
            json_t *p = json_pack("{s:s, s:s}", "channel", chan, "text", text);
            if (!p || client_send(api, "channel.send", p) != PARLEY_OK) {
                fprintf(stderr, "%s: cannot send a request to A\n", s_prog);
                return -1;
            }
            sent++;
        }
        if (nodes_response(api, "channel.send", S_CALL_MS, NULL) != 0) {
            return -1;
        }
        answered++;
    }
    *secs = nodes_now() - t0;
    return 0;
}

//  The "ENDPOINT" a's status gives first, into out.
static int
s_endpoint(nodes_proc_t *n, char *out, size_t cap)
{
    json_t *r = s_call(n, "status", NULL);
    const char *ep = json_string_value(json_array_get(json_object_get(r, "endpoints"), 0));
    int len = ep ? snprintf(out, cap, "%s", ep) : -1;
    json_decref(r);
    return len > 0 && (size_t)len < cap ? 0 : -1;
}

static int
s_figure3(nodes_proc_t *a, nodes_proc_t **b_p)
{
    nodes_proc_t *b = *b_p;
    printf("3. catch-up after %u channel messages: B away while A sends them to #catch\n", S_CATCH);
    //  B is asked by the channel's id: its name comes in a message of the
    //  msg scope, which B may get only in a later sync round.
    char cid[PARLEY_NODE_ID_STRLEN + 1] = "";
    json_t *r = s_call(a, "channel.create", json_pack("{s:s}", "name", "catch"));
    const char *id = json_string_value(json_object_get(r, "channel"));
    snprintf(cid, sizeof cid, "%s", id ? id : "");
    json_decref(r);
    r = r && cid[0] ? s_call(a, "channel.add",
                             json_pack("{s:s, s:s}", "channel", "catch", "peer", nodes_id(b)))
                    : NULL;
    json_decref(r);
    if (!r) {
        return s_fail("A cannot make #catch with B");
    }
    double t0 = nodes_now();
    s_chan_t cb;
    for (;;) {
        if (s_chan(b, cid, &cb) == 0 && cb.found && cb.keyed) {
            break;
        }
        if (nodes_now() - t0 > S_WAIT_MS / 1000.0) {
            nodes_show_log(b);
            return s_fail("B never held #catch's key");
        }
        nodes_sleep_ms(S_POLL_MS);
    }
    printf("  B in #catch and keyed %.0f ms after channel.add (its name %s)\n",
           (nodes_now() - t0) * 1e3, cb.named ? "known" : "not known yet");
    char listen[300], seed[400];
    if (s_endpoint(b, listen, sizeof listen) != 0
        || nodes_seed(a, S_CALL_MS, seed, sizeof seed) != 0) {
        return s_fail("no endpoints");
    }
    long long base = cb.messages;
    nodes_group_stop(&s_nodes, b_p);
    b = NULL;
    double secs = 0;
    if (s_send_many(a, "catch", &secs) != 0) {
        return s_fail("A's sends to #catch");
    }
    printf("  A sent %u messages in %.2f s: %.0f msgs/s (channel.send, %u calls in flight)\n",
           S_CATCH, secs, S_CATCH / secs, S_WINDOW);
    t0 = nodes_now();
    b = s_start("b", listen, seed);
    *b_p = b;
    if (!b) {
        return s_fail("B did not restart");
    }
    double t_api = nodes_now() - t0;
    t0 = nodes_now();
    //  When B held the first message, half, 90 %, 99 % and all of them.
    static const double marks[] = { 1.0 / S_CATCH, 0.5, 0.9, 0.99, 1.0 };
    double t_mark[5] = { -1, -1, -1, -1, -1 };
    double t_all = -1;
    while (nodes_now() - t0 < 120.0 && nodes_alive(b)) {
        if (s_chan(b, cid, &cb) != 0) {
            break;
        }
        for (size_t i = 0; i < 5; i++) {
            if (t_mark[i] < 0 && (double)(cb.messages - base) >= marks[i] * S_CATCH - 0.5) {
                t_mark[i] = nodes_now() - t0;
            }
        }
        if (cb.messages >= base + S_CATCH) {
            t_all = t_mark[4];
            break;
        }
        nodes_sleep_ms(S_POLL_MS);
    }
    if (t_all < 0) {
        fprintf(stderr, "%s: B holds %lld of the %u messages\n", s_prog, cb.messages - base,
                S_CATCH);
        nodes_show_log(b);
        return s_fail("B did not catch up");
    }
    json_t *h = s_call(b, "channel.history", json_pack("{s:s, s:i}", "channel", cid, "limit", 1));
    const char *last = json_string_value(
        json_object_get(json_array_get(json_object_get(h, "messages"), 0), "text"));
    char want[S_TEXT_LEN + 1];
    s_text(want, "catch", S_CATCH - 1);
    bool last_ok = last && strcmp(last, want) == 0;
    json_decref(h);
    json_t *st = s_call(b, "status", NULL);
    char rejected[256] = "";
    const char *key;
    json_t *v;
    size_t at = 0;
    json_object_foreach(json_object_get(st, "rejected"), key, v)
    {
        int len = json_integer_value(v) > 0 && at < sizeof rejected
                      ? snprintf(rejected + at, sizeof rejected - at, " %s=%lld", key,
                                 (long long)json_integer_value(v))
                      : 0;
        at += len > 0 ? (size_t)len : 0;
    }
    double rate = S_CATCH / t_all;
    printf("  B restarted (same home and port, seeded with A); its API answered after %.0f ms\n",
           t_api * 1e3);
    printf("  from B's API up: first message after %.0f ms, 50 %% %.0f ms, 90 %% %.0f ms, 99 %%"
           " %.0f ms, all %u after %.0f ms: %.0f msgs/s (newest in history: %s)\n",
           t_mark[0] * 1e3, t_mark[1] * 1e3, t_mark[2] * 1e3, t_mark[3] * 1e3, S_CATCH, t_all * 1e3,
           rate, last_ok ? "yes" : "NO");
    printf("  B's sync meanwhile: %lld rounds started, %lld ended (last %lld ms), %lld messages"
           " in, %lld B in; rejected:%s\n",
           nodes_json_int(st, "sync", "rounds_started", NULL),
           nodes_json_int(st, "sync", "rounds_ended", NULL),
           nodes_json_int(st, "sync", "last_round", "ms"),
           nodes_json_int(st, "sync", "messages_in", NULL),
           nodes_json_int(st, "sync", "bytes_in", NULL), rejected[0] ? rejected : " none");
    json_decref(st);
    double floor = 0;
    if (s_floor_ingest(&floor) != 0) {
        return s_fail("the ingest floor failed");
    }
    printf("  floor: ingest CPU of a channel message (verify + id + chain step + open, %u B),"
           " 1 core: %.1f k msgs/s (%.1f us each); catch-up/floor %.2f\n",
           S_TEXT_LEN, floor / 1e3, 1e6 / floor, rate / floor);
    printf("  reference (../shared/notes/limits.md, not measured here): ingest verify+decrypt+id,"
           " 100 B: %.1f k msgs/s per core\n",
           S_NOTES_INGEST / 1e3);
    return last_ok ? 0 : s_fail("B's newest #catch message is not A's last");
}

/* ---- main ---- */

int
main(int argc, char **argv)
{
    bool keep = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--keep") == 0) {
            keep = true;
        } else {
            fprintf(stderr, "usage: bench_channel [--keep]\n");
            return 2;
        }
    }
    if (sodium_init() < 0
        || nodes_find_sibling(argv[0], "parleyd", s_parleyd, sizeof s_parleyd) != 0) {
        return 1;
    }
    snprintf(s_root, sizeof s_root, "/tmp/parley-bench-channel.XXXXXX");
    if (!mkdtemp(s_root)) {
        return 1;
    }
    char run[300];
    snprintf(run, sizeof run, "%s/run", s_root);
    //  Host-local discovery among the bench's nodes only (the nodes inherit it).
    if (setenv("PARLEY_RUNTIME_DIR", run, 1) != 0) {
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); // each figure shows as it comes
    signal(SIGINT, s_on_signal);
    signal(SIGTERM, s_on_signal);
    signal(SIGALRM, s_on_signal);
    alarm(600);
    printf("bench_channel: real parleyd processes on loopback (no mDNS; host-local discovery in"
           " the bench's own directory)\n");
    nodes_proc_t *a = NULL;
    s_big_ids_t ids;
    if (s_figure1(&a, &ids) != 0) {
        return 1;
    }
    nodes_proc_t *b = s_start("b", "tcp://127.0.0.1:*", NULL);
    if (!b) {
        return s_fail("B did not start");
    }
    if (s_figure2(a, b, &ids) != 0 || s_figure3(a, &b) != 0) {
        return 1;
    }
    nodes_group_stop_all(&s_nodes);
    if (!keep) {
        nodes_rm_tree(s_root);
    } else {
        printf("files kept in %s\n", s_root);
    }
    return 0;
}
