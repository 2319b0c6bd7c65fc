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
 *    messages       deleted with their envelope; incoming ones marked read,
 *                   both by env_id (UNIQUE) (store_msgs.c)
 *    outbox         rows dropped by env_id: no index leads with it, so that
 *                   delete scans the outbox (store_msgs.c)
 *    peer_prekeys   one bundle by owner, or the newest ones by created_ms
 *                   (no index: a scan and sort of one row per peer)
 *                   (store_keys.c)
 *
 *  Invariants: an expired envelope leaves the log with its message and its
 *  outbox rows in one operation (secure_delete overwrites the pages); the
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
    ST_MSG_DELETE_ENV,
    ST_OUTBOX_DROP,
    ST_MSG_MARK_READ,
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
    [ST_MSG_DELETE_ENV] = "DELETE FROM messages WHERE env_id = ?1",
    [ST_OUTBOX_DROP] = "DELETE FROM outbox WHERE env_id = ?1",
    [ST_MSG_MARK_READ] = "UPDATE messages SET state = 11 WHERE env_id = ?1 AND state = 10",
    [ST_PEER_PK_BUNDLE] = "SELECT bundle FROM peer_prekeys WHERE owner = ?1",
    [ST_PEER_PK_RECENT] = "SELECT bundle FROM peer_prekeys ORDER BY created_ms DESC LIMIT ?1",
};

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
    //  Outbox rows go with the envelope (foreign key ON DELETE CASCADE).
    for (size_t i = 0; rc == 0 && i < *n; i++) {
        rc = s_by_env(self, ST_MSG_DELETE_ENV, out[i].id);
        if (rc == 0) {
            rc = s_by_env(self, ST_ENV_DELETE, out[i].id);
        }
    }
    rc = store_op_end(self, outer, rc);
    if (rc != 0) {
        *n = 0;
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
store_peer_prekey_recent(store_t *self, size_t max, uint8_t *out, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_PEER_PK_RECENT);
    int64_t lim = max > INT64_MAX ? INT64_MAX : (int64_t)max;
    int rc = S_BIND(st, S_I64(lim));
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
