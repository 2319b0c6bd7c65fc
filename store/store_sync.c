/*  store/store_sync.c — what replication reads from and does to the log:
 *  a scope's keys in (ts, id) order for the reconciliation set, ranges of a
 *  scope streamed in that order, lookups by id prefix (WANT frames), the
 *  authors seen per scope, the deletion of expired envelopes, read marks and
 *  outbox drops, and the prekey bundles passed on to others.
 *
 *  Tables: none of its own. It reads and deletes from tables documented
 *  where they are written (schema conventions and versions: store.c):
 *    envelopes      a scope by envelopes_scope_ts (scope, ts_ms, id), ids
 *                   by prefix through UNIQUE(id), due envelopes through the
 *                   partial index envelopes_expires (store_log.c)
 *    scope_authors  every (scope, author) pair, in key order (store_log.c)
 *    messages       deleted with their envelope (the foreign key's cascade,
 *                   through UNIQUE(env_n)); incoming ones marked read by
 *                   env_n, the row of their envelope's id; QUEUED ones past expires_ms
 *                   deleted through messages_queued (store_msgs.c)
 *    equivocations  rows past expires_ms deleted (a scan: the evidence is
 *                   small) (store_log.c)
 *    outbox         rows dropped by envelope, through outbox_env (store_msgs.c)
 *    peer_prekeys   one bundle by owner, or the newest ones by created_ms
 *                   (none dated after the caller's bound: a future-dated row
 *                   kept before that was refused must not rank first)
 *                   (no index: a scan and sort of one row per peer)
 *                   (store_keys.c)
 *
 *  Invariants: an expired envelope leaves the log with its message and its
 *  outbox rows in one operation (secure_delete overwrites the pages); a
 *  QUEUED message or an equivocation past its expiry is deleted the same
 *  way, with no envelope in the log to carry it; the
 *  scope_authors row of an envelope is written with it (store_log.c).
 */
#include "store.h"
#include "store_int.h"

/* ---- the statements this file runs, prepared once at open ---- */

enum {
    ST_SCOPE_AUTHORS,
    ST_ENV_SCOPE_KEYS,
    ST_ENV_RANGE,
    ST_ENV_BY_PREFIX,
    ST_ENV_EXPIRED,
    ST_ENV_DELETE,
    ST_OUTBOX_DROP,
    ST_MSG_MARK_READ,
    ST_MSG_EXPIRE_QUEUED,
    ST_EQUIV_EXPIRE,
    ST_PEER_PK_BUNDLE,
    ST_PEER_PK_RECENT,
    ST_SYNC_COUNT
};

static const char *const s_sql[ST_SYNC_COUNT] = {
    [ST_SCOPE_AUTHORS] = "SELECT scope, author FROM scope_authors ORDER BY scope, author",
    [ST_ENV_SCOPE_KEYS] = "SELECT ts_ms, id FROM envelopes WHERE scope = ?1 ORDER BY ts_ms, id",
    [ST_ENV_RANGE] = "SELECT ts_ms, id, bytes FROM envelopes WHERE scope = ?1"
                     " AND (ts_ms, id) > (?2, ?3) AND (ts_ms, id) <= (?4, ?5)"
                     " ORDER BY ts_ms, id LIMIT ?6",
    [ST_ENV_BY_PREFIX] = "SELECT bytes FROM envelopes WHERE id >= ?1 AND id <= ?2 LIMIT 1",
    [ST_ENV_EXPIRED] = "SELECT id, scope, ts_ms FROM envelopes"
                       " WHERE expires_ms > 0 AND expires_ms <= ?1 LIMIT ?2",
    [ST_ENV_DELETE] = "DELETE FROM envelopes WHERE id = ?1",
    [ST_OUTBOX_DROP] = "DELETE FROM outbox WHERE env_n = (SELECT n FROM envelopes WHERE id = ?1)",
    [ST_MSG_MARK_READ] = "UPDATE messages SET state = 11"
                         " WHERE env_n = (SELECT n FROM envelopes WHERE id = ?1) AND state = 10",
    [ST_MSG_EXPIRE_QUEUED] = "DELETE FROM messages"
                             " WHERE state = 0 AND expires_ms > 0 AND expires_ms <= ?1",
    [ST_EQUIV_EXPIRE] = "DELETE FROM equivocations WHERE expires_ms > 0 AND expires_ms <= ?1",
    [ST_PEER_PK_BUNDLE] = "SELECT bundle FROM peer_prekeys WHERE owner = ?1",
    [ST_PEER_PK_RECENT] = "SELECT bundle FROM peer_prekeys WHERE created_ms <= ?2"
                          " ORDER BY created_ms DESC LIMIT ?1",
};

_Static_assert(MSG_STATE_QUEUED == 0, "ST_MSG_EXPIRE_QUEUED spells QUEUED as 0");
_Static_assert(MSG_STATE_RECEIVED == 10 && MSG_STATE_OPENED == 11,
               "ST_MSG_MARK_READ spells these states as numbers");

const store_sql_t store_sync_sql = { "store_sync.c", s_sql, ST_SYNC_COUNT };

/*  This file's statement `which`, ready to bind. */
static sqlite3_stmt *
s_st(store_t *self, int which)
{
    return self->st[STORE_PART_SYNC][which];
}

//  Steps st and reads the row's (ts_ms, id) from columns 0 and 1: 0 with
//  *row, 0 without (done), or an error.
static int
s_key_step(sqlite3_stmt *st, bool *row, uint64_t *ts, uint8_t id[32])
{
    int rc = s_step(st, row);
    if (rc == 0 && *row) {
        rc = s_col_u64(st, 0, ts);
    }
    if (rc == 0 && *row) {
        rc = s_col_blob(st, 1, id, 32);
    }
    return rc;
}

int
store_scope_load(store_t *self, const uint8_t scope[32], sync_set_t *set)
{
    sqlite3_stmt *st = s_st(self, ST_ENV_SCOPE_KEYS);
    int rc = S_BIND(st, S_B32(scope));
    while (rc == 0) {
        bool row = false;
        uint64_t ts = 0;
        uint8_t id[32];
        rc = s_key_step(st, &row, &ts, id);
        if (rc != 0 || !row) {
            break;
        }
        if (rc == 0) {
            rc = sync_set_insert(set, ts, id);
            rc = rc == PARLEY_ERR_DUPLICATE ? 0 : rc; // ids are unique: cannot happen
        }
    }
    s_reset(st);
    return rc;
}

int
store_scope_authors(store_t *self,
                    int (*fn)(const uint8_t scope[32], const uint8_t author[32], void *arg),
                    void *arg)
{
    sqlite3_stmt *st = s_st(self, ST_SCOPE_AUTHORS);
    int rc = 0;
    for (;;) {
        bool row = false;
        rc = s_step(st, &row);
        if (rc != 0 || !row) {
            break;
        }
        uint8_t scope[32], author[32];
        rc = s_col_blob(st, 0, scope, 32);
        if (rc == 0) {
            rc = s_col_blob(st, 1, author, 32);
        }
        if (rc != 0 || fn(scope, author, arg) != 0) {
            break;
        }
    }
    s_reset(st);
    return rc;
}

int
store_envelope_range(store_t *self, const uint8_t scope[32], uint64_t after_ts,
                     const uint8_t after_id[32], uint64_t to_ts, const uint8_t to_id[32],
                     size_t limit,
                     int (*fn)(uint64_t ts, const uint8_t id[32], const uint8_t *bytes, size_t len,
                               void *arg),
                     void *arg, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_ENV_RANGE);
    int64_t lim = limit > INT64_MAX ? INT64_MAX : (int64_t)limit;
    int rc = S_BIND(st, S_B32(scope), S_U64(after_ts), S_B32(after_id), S_U64(to_ts), S_B32(to_id),
                    S_I64(lim));
    while (rc == 0) {
        bool row = false;
        uint64_t ts = 0;
        uint8_t id[32];
        rc = s_key_step(st, &row, &ts, id);
        if (rc != 0 || !row) {
            break;
        }
        const void *p = NULL;
        size_t len = 0;
        rc = s_env_bytes(st, 2, &p, &len);
        if (rc != 0) {
            break;
        }
        (*n)++;
        if (fn(ts, id, p, len, arg) != 0) {
            break;
        }
    }
    s_reset(st);
    return rc;
}

static int
s_bind_prefix(sqlite3_stmt *st, const uint8_t prefix[SYNC_PREFIX_LEN], uint8_t lo[32],
              uint8_t hi[32])
{
    memcpy(lo, prefix, SYNC_PREFIX_LEN);
    memset(lo + SYNC_PREFIX_LEN, 0x00, 32 - SYNC_PREFIX_LEN);
    memcpy(hi, prefix, SYNC_PREFIX_LEN);
    memset(hi + SYNC_PREFIX_LEN, 0xff, 32 - SYNC_PREFIX_LEN);
    return S_BIND(st, S_B32(lo), S_B32(hi));
}

int
store_envelope_by_prefix(store_t *self, const uint8_t prefix[SYNC_PREFIX_LEN], uint8_t **bytes,
                         size_t *len)
{
    *bytes = NULL;
    *len = 0;
    sqlite3_stmt *st = s_st(self, ST_ENV_BY_PREFIX);
    uint8_t lo[32], hi[32];
    bool row = false;
    int rc = s_bind_prefix(st, prefix, lo, hi);
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    if (rc == 0) {
        rc = s_env_copy(st, 0, bytes, len);
    }
    s_reset(st);
    return rc;
}

//  A database error reads as "not held": the peer then sends it again and
//  ingest dedupes.
bool
store_envelope_has_prefix(store_t *self, const uint8_t prefix[SYNC_PREFIX_LEN])
{
    sqlite3_stmt *st = s_st(self, ST_ENV_BY_PREFIX);
    uint8_t lo[32], hi[32];
    bool row = false;
    int rc = s_bind_prefix(st, prefix, lo, hi);
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    s_reset(st);
    return rc == 0 && row;
}

static int
s_by_env(store_t *self, int which, const uint8_t env_id[32])
{
    sqlite3_stmt *st = s_st(self, which);
    int rc = S_BIND(st, S_B32(env_id));
    return rc == 0 ? s_run(st, NULL) : rc;
}

int
store_envelope_expire(store_t *self, uint64_t now_ms, size_t max, store_expired_t *out, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_ENV_EXPIRED);
    int64_t lim = max > INT64_MAX ? INT64_MAX : (int64_t)max;
    int rc = S_BIND(st, S_U64(now_ms), S_I64(lim));
    while (rc == 0 && *n < max) {
        bool row = false;
        rc = s_step(st, &row);
        if (rc != 0 || !row) {
            break;
        }
        store_expired_t *e = &out[*n];
        rc = s_col_blob(st, 0, e->id, 32);
        if (rc == 0) {
            rc = s_col_blob(st, 1, e->scope, 32);
        }
        if (rc == 0) {
            rc = s_col_u64(st, 2, &e->ts_ms);
        }
        if (rc == 0) {
            (*n)++;
        }
    }
    s_reset(st);
    if (rc != 0 || *n == 0) {
        *n = rc != 0 ? 0 : *n;
        return rc;
    }
    bool outer = false;
    rc = store_op_begin(self, &outer);
    if (rc != 0) {
        *n = 0;
        return rc;
    }
    //  Its message and outbox rows go with the envelope (foreign keys
    //  ON DELETE CASCADE).
    for (size_t i = 0; rc == 0 && i < *n; i++) {
        rc = s_by_env(self, ST_ENV_DELETE, out[i].id);
    }
    rc = store_op_end(self, outer, rc);
    if (rc != 0) {
        *n = 0;
    }
    return rc;
}

int
store_expire_unlogged(store_t *self, uint64_t now_ms, size_t *n)
{
    *n = 0;
    bool outer = false;
    int rc = store_op_begin(self, &outer);
    if (rc != 0) {
        return rc;
    }
    size_t count = 0;
    static const int which[2] = { ST_MSG_EXPIRE_QUEUED, ST_EQUIV_EXPIRE };
    for (size_t i = 0; rc == 0 && i < 2; i++) {
        sqlite3_stmt *st = s_st(self, which[i]);
        rc = S_BIND(st, S_U64(now_ms));
        if (rc == 0) {
            rc = s_run(st, NULL);
        }
        if (rc == 0) {
            count += (size_t)sqlite3_changes(self->db);
        }
    }
    rc = store_op_end(self, outer, rc);
    if (rc == 0) {
        *n = count;
    }
    return rc;
}

int
store_outbox_drop(store_t *self, const uint8_t env_id[32])
{
    return s_by_env(self, ST_OUTBOX_DROP, env_id);
}

int
store_msg_mark_read(store_t *self, const uint8_t env_id[32], bool *changed)
{
    *changed = false;
    int rc = s_by_env(self, ST_MSG_MARK_READ, env_id);
    if (rc == 0) {
        *changed = sqlite3_changes(self->db) > 0;
    }
    return rc;
}

static int
s_bundle_read(sqlite3_stmt *st, void *out)
{
    return s_col_blob(st, 0, out, DM_PREKEY_BUNDLE_LEN);
}

int
store_peer_prekey_bundle(store_t *self, const uint8_t owner[32],
                         uint8_t bundle[DM_PREKEY_BUNDLE_LEN])
{
    sqlite3_stmt *st = s_st(self, ST_PEER_PK_BUNDLE);
    return s_fetch_one(st, S_BIND(st, S_B32(owner)), s_bundle_read, bundle);
}

int
store_peer_prekey_recent(store_t *self, uint64_t newest_ms, size_t max, uint8_t *out, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_PEER_PK_RECENT);
    int64_t lim = max > INT64_MAX ? INT64_MAX : (int64_t)max;
    int64_t bound = newest_ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)newest_ms;
    int rc = S_BIND(st, S_I64(lim), S_I64(bound));
    while (rc == 0 && *n < max) {
        bool row = false;
        rc = s_step(st, &row);
        if (rc != 0 || !row) {
            break;
        }
        rc = s_col_blob(st, 0, out + *n * DM_PREKEY_BUNDLE_LEN, DM_PREKEY_BUNDLE_LEN);
        if (rc == 0) {
            (*n)++;
        }
    }
    s_reset(st);
    return rc;
}

/* ---- self-test (shared helpers: store_testkit.h) ---- */

#include "store_testkit.h"

static int
s_t_range_fn(uint64_t ts, const uint8_t id[32], const uint8_t *bytes, size_t len, void *arg)
{
    (void)id;
    (void)bytes;
    CHECK(len > 0);
    uint64_t *last = arg;
    CHECK(ts > *last);
    *last = ts;
    return 0;
}

static int
s_t_authors_fn(const uint8_t scope[32], const uint8_t author[32], void *arg)
{
    (void)scope;
    (void)author;
    (*(size_t *)arg)++;
    return 0;
}

static void
s_t_replication(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "replication.db", path, sizeof path);
    uint8_t author[32], other[32], scope[32];
    randombytes_buf(author, 32);
    randombytes_buf(other, 32);
    randombytes_buf(scope, 32);
    s_t_env_t e[6];
    for (uint64_t i = 0; i < 6; i++) {
        s_t_env(&e[i], i % 2 ? other : author, scope, i + 1, (uint8_t)(0xa0 + i));
        e[i].env.expires_ms = i == 5 ? 5000 : 0;
        CHECK(store_envelope_put(s, &e[i].env, e[i].id, 1) == 0);
    }
    size_t n_authors = 0;
    CHECK(store_scope_authors(s, s_t_authors_fn, &n_authors) == 0 && n_authors == 2);
    sync_set_t *set = sync_set_new();
    CHECK(set && store_scope_load(s, scope, set) == 0 && sync_set_count(set) == 6);
    //  Ranges: after the first item up to the fourth, in order.
    const sync_item_t *first = sync_set_at(set, 0);
    uint8_t fid[32], tid[32];
    uint64_t fts = first->ts, tts = sync_set_at(set, 3)->ts;
    memcpy(fid, first->id, 32);
    memcpy(tid, sync_set_at(set, 3)->id, 32);
    uint64_t last = 0;
    size_t n = 0;
    CHECK(store_envelope_range(s, scope, fts, fid, tts, tid, 100, s_t_range_fn, &last, &n) == 0);
    CHECK(n == 3 && last == tts);
    CHECK(store_envelope_range(s, scope, fts, fid, tts, tid, 2, s_t_range_fn, &(uint64_t){ 0 }, &n)
          == 0);
    CHECK(n == 2);
    //  Prefix lookups.
    uint8_t *bytes = NULL;
    size_t len = 0;
    CHECK(store_envelope_by_prefix(s, e[2].id, &bytes, &len) == 0 && len == sizeof e[2].bytes);
    CHECK(memcmp(bytes, e[2].bytes, len) == 0);
    free(bytes);
    CHECK(store_envelope_has_prefix(s, e[4].id));
    uint8_t none[SYNC_PREFIX_LEN] = { 0 };
    CHECK(!store_envelope_has_prefix(s, none));
    CHECK(store_envelope_by_prefix(s, none, &bytes, &len) == PARLEY_ERR_NOTFOUND);
    //  Expiry: only the due one goes, with its outbox row and its message.
    uint8_t peer[32] = { 9 };
    CHECK(store_outbox_add(s, e[5].id, peer, 1) == 0);
    store_msg_t m = { .msg_id = { 5 }, .has_env = true, .seq = 6, .ts_ms = e[5].env.ts_ms };
    m.state = MSG_STATE_RECEIVED;
    m.text = (char *)"expiring";
    memcpy(m.env_id, e[5].id, 32);
    memcpy(m.peer, peer, 32);
    CHECK(store_msg_add(s, &m) == 0);
    store_expired_t gone[4];
    CHECK(store_envelope_expire(s, 4999, 4, gone, &n) == 0 && n == 0);
    CHECK(store_envelope_expire(s, 5000, 4, gone, &n) == 0 && n == 1);
    CHECK(memcmp(gone[0].id, e[5].id, 32) == 0 && gone[0].ts_ms == e[5].env.ts_ms);
    CHECK(!store_envelope_has(s, e[5].id));
    uint8_t ids[32 * 4];
    CHECK(store_outbox_list(s, peer, 4, ids, &n) == 0 && n == 0);
    store_msg_t *msgs = NULL;
    CHECK(store_history(s, peer, 0, &msgs, &n) == 0 && n == 0);
    CHECK(store_envelope_expire(s, INT64_MAX, 4, gone, &n) == 0 && n == 0);
    CHECK(store_envelope_expire(s, UINT64_MAX, 4, gone, &n) == PARLEY_ERR_LIMIT && n == 0);
    //  What expires with no envelope in the log: a QUEUED message and an
    //  equivocation past their expiry go; a lasting or later one stays.
    store_msg_t q = { .msg_id = { 6 }, .ts_ms = 10, .state = MSG_STATE_QUEUED, .outgoing = true };
    q.text = (char *)"queued, expiring";
    q.expires_ms = 7000;
    memcpy(q.peer, peer, 32);
    CHECK(store_msg_add(s, &q) == 0);
    q.msg_id[0] = 7;
    q.expires_ms = 9000;
    CHECK(store_msg_add(s, &q) == 0);
    q.msg_id[0] = 8;
    q.expires_ms = 0;
    CHECK(store_msg_add(s, &q) == 0);
    s_t_env_t forged;
    s_t_env(&forged, author, scope, 1, 0xee); // author's seq 1 is held: evidence
    forged.env.expires_ms = 7000;
    CHECK(store_envelope_put(s, &forged.env, forged.id, 2) == PARLEY_ERR_EQUIVOCATION);
    s_t_env(&forged, author, scope, 3, 0xef);
    CHECK(store_envelope_put(s, &forged.env, forged.id, 2) == PARLEY_ERR_EQUIVOCATION);
    CHECK(store_expire_unlogged(s, 6999, &n) == 0 && n == 0);
    CHECK(store_expire_unlogged(s, 7000, &n) == 0 && n == 2);
    CHECK(store_msg_queued(s, peer, &msgs, &n) == 0 && n == 2);
    CHECK(msgs[0].msg_id[0] == 7 && msgs[0].expires_ms == 9000 && msgs[1].msg_id[0] == 8);
    store_msgs_free(msgs, n);
    CHECK(s_t_int(s, "SELECT count(*) FROM equivocations") == 1);
    CHECK(store_expire_unlogged(s, INT64_MAX, &n) == 0 && n == 1);
    CHECK(store_msg_queued(s, peer, &msgs, &n) == 0 && n == 1 && msgs[0].expires_ms == 0);
    store_msgs_free(msgs, n);
    CHECK(s_t_int(s, "SELECT count(*) FROM equivocations") == 1); // it never expires
    CHECK(store_expire_unlogged(s, UINT64_MAX, &n) == PARLEY_ERR_LIMIT && n == 0);
    //  Authors are not forgotten with their envelopes.
    n_authors = 0;
    CHECK(store_scope_authors(s, s_t_authors_fn, &n_authors) == 0 && n_authors == 2);
    s_t_idle(s);
    sync_set_destroy(&set);
    store_destroy(&s);
}

/*  Read marks, outbox drops, and the prekey bundles passed on to others. */
static void
s_t_marks_and_bundles(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "marks.db", path, sizeof path);
    uint8_t author[32];
    uint8_t scope[32];
    uint8_t peer[32];
    uint8_t other[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(scope, sizeof scope);
    randombytes_buf(peer, sizeof peer);
    randombytes_buf(other, sizeof other);
    s_t_env_t e[2];
    for (int i = 0; i < 2; i++) {
        s_t_env(&e[i], author, scope, (uint64_t)i + 1, (uint8_t)i);
        CHECK(store_envelope_put(s, &e[i].env, e[i].id, 1) == 0);
    }

    /* only an incoming RECEIVED message becomes OPENED, once */
    store_msg_t in = { .msg_id = { 1 }, .has_env = true, .seq = 1, .ts_ms = 1001 };
    in.state = MSG_STATE_RECEIVED;
    in.text = (char *)"hi";
    memcpy(in.peer, author, 32);
    memcpy(in.env_id, e[0].id, 32);
    CHECK(store_msg_add(s, &in) == 0);
    bool changed = false;
    CHECK(store_msg_mark_read(s, e[0].id, &changed) == 0 && changed);
    CHECK(store_msg_mark_read(s, e[0].id, &changed) == 0 && !changed);
    CHECK(store_msg_mark_read(s, e[1].id, &changed) == 0 && !changed); /* no message */
    store_msg_t *msgs = NULL;
    size_t n = 0;
    CHECK(store_history(s, author, 0, &msgs, &n) == 0 && n == 1);
    CHECK(msgs[0].state == MSG_STATE_OPENED);
    store_msgs_free(msgs, n);

    /* a drop forgets the envelope in every peer's outbox, and only it */
    CHECK(store_outbox_add(s, e[0].id, peer, 1) == 0);
    CHECK(store_outbox_add(s, e[0].id, other, 1) == 0);
    CHECK(store_outbox_add(s, e[1].id, peer, 1) == 0);
    CHECK(store_outbox_drop(s, e[0].id) == 0);
    CHECK(store_outbox_drop(s, e[0].id) == 0); /* nothing left to drop is no error */
    uint8_t ids[4 * 32];
    CHECK(store_outbox_list(s, peer, 4, ids, &n) == 0 && n == 1);
    CHECK(memcmp(ids, e[1].id, 32) == 0);
    CHECK(store_outbox_list(s, other, 4, ids, &n) == 0 && n == 0);
    s_t_idle(s);

    /* bundles held for others: by owner, and the newest first */
    prekey_t pk[2];
    uint8_t bundle[2][DM_PREKEY_BUNDLE_LEN];
    memset(pk, 0, sizeof pk);
    for (int i = 0; i < 2; i++) {
        randombytes_buf(pk[i].owner, 32);
        randombytes_buf(pk[i].spk_pub, 32);
        randombytes_buf(bundle[i], sizeof bundle[i]);
        pk[i].spk_id = 1;
        pk[i].created_ms = 100 + (uint64_t)i;
        CHECK(store_peer_prekey_put(s, &pk[i], bundle[i], &changed) == 0 && changed);
    }
    uint8_t got[3 * DM_PREKEY_BUNDLE_LEN];
    CHECK(store_peer_prekey_bundle(s, pk[0].owner, got) == 0);
    CHECK(memcmp(got, bundle[0], DM_PREKEY_BUNDLE_LEN) == 0);
    CHECK(store_peer_prekey_bundle(s, author, got) == PARLEY_ERR_NOTFOUND);
    CHECK(store_peer_prekey_recent(s, UINT64_MAX, 3, got, &n) == 0 && n == 2);
    CHECK(memcmp(got, bundle[1], DM_PREKEY_BUNDLE_LEN) == 0);
    CHECK(memcmp(got + DM_PREKEY_BUNDLE_LEN, bundle[0], DM_PREKEY_BUNDLE_LEN) == 0);
    CHECK(store_peer_prekey_recent(s, UINT64_MAX, 1, got, &n) == 0 && n == 1);
    CHECK(memcmp(got, bundle[1], DM_PREKEY_BUNDLE_LEN) == 0);
    CHECK(store_peer_prekey_recent(s, UINT64_MAX, 0, got, &n) == 0 && n == 0);
    /* one dated after the bound is left out, not ranked first */
    CHECK(store_peer_prekey_recent(s, 100, 3, got, &n) == 0 && n == 1);
    CHECK(memcmp(got, bundle[0], DM_PREKEY_BUNDLE_LEN) == 0);
    CHECK(store_peer_prekey_recent(s, 99, 3, got, &n) == 0 && n == 0);
    s_t_idle(s);
    store_destroy(&s);
}

void
store_sync_test(bool verbose)
{
    s_t_kit_t kit;
    s_t_begin(&kit, "store_sync", verbose);
    s_t_say(&kit, "scope keys, ranges, prefixes, authors, expiry");
    s_t_replication(&kit);
    s_t_say(&kit, "read marks, outbox drops, prekey bundles for others");
    s_t_marks_and_bundles(&kit);
    s_t_end(&kit);
}
