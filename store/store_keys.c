/*  store/store_keys.c — the keys we hold: our own signed prekeys (with their
 *  secrets), peers' prekeys, and the DM send/receive sessions.
 *
 *  Tables (schema conventions and versions: store.c)
 *  ------
 *  own_prekeys(spk_id INTEGER PK, owner, spk_pub, created_ms,
 *              bundle BLOB(141), secret BLOB(32), superseded_ms NULL)
 *      Our signed prekeys with their X25519 secrets. superseded_ms is NULL for
 *      the current one (exactly zero or one row, enforced by the unique
 *      partial index own_prekeys_current) and the time it was replaced for the
 *      others, which store_own_prekey_wipe() deletes after the grace window.
 *
 *  peer_prekeys(owner PK, spk_id, spk_pub, created_ms, bundle BLOB(141))
 *      The newest prekey each peer has published (by spk_id). Replication
 *      passes the bundles on (store_sync.c). created_ms is the owner's
 *      Bundles anyone signs with a fresh key are welcome (relays pass them
 *      on), so past STORE_PEER_PREKEYS_MAX rows a put deletes the oldest
 *      (rowid order) of strangers: owners with no contact, no sending
 *      session and no message; the contacts and peers we talk to stay.
 *      signed claim and is not compared here: session_on_bundle refuses a
 *      future one, and an old one only ranks last in the link-up hand-out.
 *
 *  send_sessions(peer PK, ek_pub, spk_id, day0, day, key BLOB(32))
 *  recv_sessions(peer, ek_pub, spk_id, day0, base_day, key BLOB(32),
 *                last_used_ms, PK(peer, ek_pub))
 *      DM chain keys (dm.h). key is secret and overwritten in place as it
 *      ratchets; day >= day0 and base_day >= day0. At most
 *      STORE_RECV_PER_PEER receiving sessions per peer: a put beyond it
 *      deletes the least recently used (an honest sender opens a new one
 *      only when our prekey changed, a few per grace window).
 *
 *  Secrets live in own_prekeys.secret and *_sessions.key. Deleting a row
 *  zeroes it in its page (secure_delete); the superseded page images remain
 *  in the WAL until store_checkpoint() truncates it.
 *
 *  Invariants:
 *  - at most one own prekey is current (superseded_ms NULL); adding one
 *    supersedes the previous current one in the same transaction;
 *  - a peer's stored prekey only moves to a higher spk_id;
 *  - secrets are copied straight between SQLite's row and the caller's
 *    buffer; every buffer of ours that held one is wiped before it is freed,
 *    and an error never leaves part of a secret in an output.
 */
#include "store.h"
#include "store_int.h"

/* ---- the statements this file runs, prepared once at open ---- */

enum {
    ST_OWN_SUPERSEDE,
    ST_OWN_INSERT,
    ST_OWN_CURRENT,
    ST_OWN_SECRET,
    ST_OWN_WIPE,
    ST_PEER_PK_PUT,
    ST_PEER_PK_GET,
    ST_PEER_PK_TRIM,
    ST_SEND_GET,
    ST_SEND_PUT,
    ST_RECV_GET,
    ST_RECV_PUT,
    ST_RECV_LIST,
    ST_RECV_TRIM,
    ST_RECV_DELETE,
    ST_KEYS_COUNT
};

#define S_RECV_COLS "peer, ek_pub, spk_id, day0, base_day, key, last_used_ms"

static const char *const s_sql[ST_KEYS_COUNT] = {
    [ST_OWN_SUPERSEDE] = "UPDATE own_prekeys SET superseded_ms = ?1"
                         " WHERE superseded_ms IS NULL",
    [ST_OWN_INSERT] = "INSERT INTO own_prekeys (spk_id, owner, spk_pub, created_ms, bundle,"
                      " secret) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_OWN_CURRENT] = "SELECT spk_id, owner, spk_pub, created_ms, bundle, superseded_ms"
                       " FROM own_prekeys WHERE superseded_ms IS NULL",
    [ST_OWN_SECRET] = "SELECT secret, created_ms FROM own_prekeys WHERE spk_id = ?1",
    [ST_OWN_WIPE] = "DELETE FROM own_prekeys"
                    " WHERE superseded_ms IS NOT NULL AND superseded_ms < ?1",
    [ST_PEER_PK_PUT] = "INSERT INTO peer_prekeys (owner, spk_id, spk_pub, created_ms, bundle)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)"
                       " ON CONFLICT (owner) DO UPDATE SET spk_id = excluded.spk_id,"
                       " spk_pub = excluded.spk_pub, created_ms = excluded.created_ms,"
                       " bundle = excluded.bundle"
                       " WHERE excluded.spk_id > peer_prekeys.spk_id",
    [ST_PEER_PK_TRIM] =
        "DELETE FROM peer_prekeys WHERE rowid IN (SELECT p.rowid FROM peer_prekeys p"
        " WHERE p.owner != ?2"
        " AND NOT EXISTS (SELECT 1 FROM contacts c WHERE c.pk = p.owner)"
        " AND NOT EXISTS (SELECT 1 FROM send_sessions s WHERE s.peer = p.owner)"
        " AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.peer = p.owner)"
        " ORDER BY p.rowid"
        " LIMIT max((SELECT count(*) FROM peer_prekeys) - ?1, 0))",
    [ST_PEER_PK_GET] = "SELECT owner, spk_id, spk_pub, created_ms FROM peer_prekeys"
                       " WHERE owner = ?1",
    [ST_SEND_GET] = "SELECT peer, ek_pub, spk_id, day0, day, key FROM send_sessions"
                    " WHERE peer = ?1",
    [ST_SEND_PUT] = "INSERT INTO send_sessions (peer, ek_pub, spk_id, day0, day, key)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                    " ON CONFLICT (peer) DO UPDATE SET ek_pub = excluded.ek_pub,"
                    " spk_id = excluded.spk_id, day0 = excluded.day0, day = excluded.day,"
                    " key = excluded.key",
    [ST_RECV_GET] = "SELECT " S_RECV_COLS " FROM recv_sessions WHERE peer = ?1 AND ek_pub = ?2",
    [ST_RECV_PUT] = "INSERT INTO recv_sessions (" S_RECV_COLS ")"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    " ON CONFLICT (peer, ek_pub) DO UPDATE SET spk_id = excluded.spk_id,"
                    " day0 = excluded.day0, base_day = excluded.base_day, key = excluded.key,"
                    " last_used_ms = excluded.last_used_ms",
    [ST_RECV_LIST] = "SELECT " S_RECV_COLS " FROM recv_sessions ORDER BY peer, ek_pub",
    [ST_RECV_TRIM] = "DELETE FROM recv_sessions WHERE peer = ?1 AND ek_pub NOT IN"
                     " (SELECT ek_pub FROM recv_sessions WHERE peer = ?1"
                     " ORDER BY last_used_ms DESC, ek_pub LIMIT ?2)",
    [ST_RECV_DELETE] = "DELETE FROM recv_sessions WHERE peer = ?1 AND ek_pub = ?2",
};

const store_sql_t store_keys_sql = { "store_keys.c", s_sql, ST_KEYS_COUNT };

/*  This file's statement `which`, ready to bind. */
static sqlite3_stmt *
s_st(store_t *self, int which)
{
    return self->st[STORE_PART_KEYS][which];
}

/* ---- own signed prekeys ---- */

/*  Adding a prekey whose spk_id is already stored (current, superseded or
 *  not yet wiped) is PARLEY_ERR_EXISTS and changes nothing. The previous
 *  current prekey's superseded_ms is now_ms; keep now_ms > 0, as 0 is what
 *  the struct uses for "current". */
int
store_own_prekey_add(store_t *self, const store_own_prekey_t *pk, const uint8_t secret[32],
                     uint64_t now_ms)
{
    if (pk == NULL || secret == NULL) {
        return PARLEY_ERR_MALFORMED;
    }
    if (now_ms > (uint64_t)INT64_MAX || pk->pub.created_ms > (uint64_t)INT64_MAX) {
        return PARLEY_ERR_LIMIT; /* checked before anything is written */
    }
    bool outer = false;
    int rc = store_op_begin(self, &outer);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = s_st(self, ST_OWN_SUPERSEDE);
    rc = S_BIND(st, S_U64(now_ms));
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    st = s_st(self, ST_OWN_INSERT);
    if (rc == 0) {
        rc = S_BIND(st, S_U64(pk->pub.spk_id), S_B32(pk->pub.owner), S_B32(pk->pub.spk_pub),
                    S_U64(pk->pub.created_ms), S_BLOB(pk->bundle, DM_PREKEY_BUNDLE_LEN),
                    S_B32(secret));
    }
    if (rc == 0) {
        rc = s_run(st, NULL); /* a taken spk_id: constraint → EXISTS */
    }
    return store_op_end(self, outer, rc);
}

/*  Reads spk_id, owner, spk_pub, created_ms, bundle, superseded_ms. */
static int
s_own_prekey_read(sqlite3_stmt *st, store_own_prekey_t *out)
{
    memset(out, 0, sizeof *out);
    int rc = s_col_u32(st, 0, &out->pub.spk_id);
    if (rc == 0) {
        rc = s_col_blob(st, 1, out->pub.owner, 32);
    }
    if (rc == 0) {
        rc = s_col_blob(st, 2, out->pub.spk_pub, 32);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 3, &out->pub.created_ms);
    }
    if (rc == 0) {
        rc = s_col_blob(st, 4, out->bundle, DM_PREKEY_BUNDLE_LEN);
    }
    if (rc == 0 && sqlite3_column_type(st, 5) != SQLITE_NULL) {
        rc = s_col_u64(st, 5, &out->superseded_ms);
    }
    return rc;
}

int
store_own_prekey_current(store_t *self, store_own_prekey_t *out)
{
    sqlite3_stmt *st = s_st(self, ST_OWN_CURRENT);
    bool row = false;
    int rc = s_step(st, &row);
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    if (rc == 0) {
        rc = s_own_prekey_read(st, out);
    }
    if (rc == 0) {
        /* own_prekeys_current allows one row; a second is a damaged file */
        rc = s_step(st, &row);
        if (rc == 0 && row) {
            rc = PARLEY_ERR_MALFORMED;
        }
    }
    s_reset(st);
    return rc;
}

/*  The secret of a current or superseded-but-not-yet-wiped prekey. */
int
store_own_prekey_secret(store_t *self, uint32_t spk_id, uint8_t secret[32], uint64_t *created_ms)
{
    sqlite3_stmt *st = s_st(self, ST_OWN_SECRET);
    bool row = false;
    int rc = S_BIND(st, S_U64(spk_id));
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOKEY;
    }
    if (rc == 0) {
        rc = created_ms != NULL ? s_col_u64(st, 1, created_ms) : 0;
    }
    if (rc == 0) {
        rc = s_col_blob(st, 0, secret, 32); /* copies nothing unless all 32 bytes fit */
    }
    s_reset(st);
    return rc;
}

/*  With secure_delete the rows are overwritten in their pages; their older
 *  page images leave the WAL at the next store_checkpoint(). */
int
store_own_prekey_wipe(store_t *self, uint64_t cutoff_ms, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_OWN_WIPE);
    /* "superseded before cutoff": every timestamp we store is <= INT64_MAX,
       so a larger cutoff means all of them */
    int64_t cut = cutoff_ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)cutoff_ms;
    int rc = S_BIND(st, S_I64(cut));
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    if (rc == 0) {
        *n = (size_t)sqlite3_changes(self->db);
    }
    return rc;
}

/* ---- peers' prekeys ---- */

/*  *changed is true when pk is now the stored prekey for its owner and was
 *  not before: the owner's first, or a higher spk_id than the stored one. An
 *  equal or lower spk_id (a replay, or an older bundle relayed late) is kept
 *  out. */
int
store_peer_prekey_put(store_t *self, const prekey_t *pk, const uint8_t bundle[DM_PREKEY_BUNDLE_LEN],
                      bool *changed)
{
    *changed = false;
    if (pk == NULL || bundle == NULL) {
        return PARLEY_ERR_MALFORMED;
    }
    sqlite3_stmt *st = s_st(self, ST_PEER_PK_PUT);
    int rc = S_BIND(st, S_B32(pk->owner), S_U64(pk->spk_id), S_B32(pk->spk_pub),
                    S_U64(pk->created_ms), S_BLOB(bundle, DM_PREKEY_BUNDLE_LEN));
    if (rc == 0 && s_fault(self, STORE_FAULT_PREKEY_PUT)) {
        s_reset(st);
        return PARLEY_ERR_IO; /* store_fault_set: as a full disk would */
    }
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    if (rc == 0) {
        /* the upsert's WHERE leaves a lower or equal spk_id unwritten: 0 rows */
        *changed = sqlite3_changes(self->db) == 1;
    }
    if (rc == 0 && *changed) {
        /* past the cap the oldest strangers' go; LIMIT 0 (under it) is
           checked before any row is read, the count scans the capped table */
        st = s_st(self, ST_PEER_PK_TRIM);
        rc = S_BIND(st, S_U64(STORE_PEER_PREKEYS_MAX), S_B32(pk->owner));
        rc = rc == 0 ? s_run(st, NULL) : rc;
    }
    return rc;
}

int
store_peer_prekey_get(store_t *self, const uint8_t owner[32], prekey_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = s_st(self, ST_PEER_PK_GET);
    bool row = false;
    int rc = S_BIND(st, S_B32(owner));
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    if (rc == 0) {
        rc = s_col_blob(st, 0, out->owner, 32);
    }
    if (rc == 0) {
        rc = s_col_u32(st, 1, &out->spk_id);
    }
    if (rc == 0) {
        rc = s_col_blob(st, 2, out->spk_pub, 32);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 3, &out->created_ms);
    }
    s_reset(st);
    return rc;
}

/* ---- DM sessions ---- */

/*  Reads peer, ek_pub, spk_id, day0, day, key. On error *s holds no part of
 *  the key. */
static int
s_send_read(sqlite3_stmt *st, store_send_session_t *s)
{
    sodium_memzero(s, sizeof *s);
    int rc = s_col_blob(st, 0, s->peer, 32);
    if (rc == 0) {
        rc = s_col_blob(st, 1, s->ek_pub, 32);
    }
    if (rc == 0) {
        rc = s_col_u32(st, 2, &s->spk_id);
    }
    if (rc == 0) {
        rc = s_col_u32(st, 3, &s->day0);
    }
    if (rc == 0) {
        rc = s_col_u32(st, 4, &s->day);
    }
    if (rc == 0 && s->day < s->day0) {
        rc = PARLEY_ERR_MALFORMED; /* a chain never runs backwards */
    }
    if (rc == 0) {
        rc = s_col_blob(st, 5, s->key, 32);
    }
    if (rc != 0) {
        sodium_memzero(s, sizeof *s);
    }
    return rc;
}

static int
s_send_row(sqlite3_stmt *st, void *elem)
{
    return s_send_read(st, elem);
}

int
store_send_session_get(store_t *self, const uint8_t peer[32], store_send_session_t *out)
{
    sqlite3_stmt *st = s_st(self, ST_SEND_GET);
    int rc = S_BIND(st, S_B32(peer));
    return s_fetch_one(st, rc, s_send_row, out);
}

/*  Replaces the session for s->peer; the old chain key is overwritten. */
int
store_send_session_put(store_t *self, const store_send_session_t *s)
{
    if (s == NULL || s->day < s->day0) {
        return PARLEY_ERR_MALFORMED;
    }
    sqlite3_stmt *st = s_st(self, ST_SEND_PUT);
    int rc = S_BIND(st, S_B32(s->peer), S_B32(s->ek_pub), S_U64(s->spk_id), S_U64(s->day0),
                    S_U64(s->day), S_B32(s->key));
    return rc == 0 ? s_run(st, NULL) : rc;
}

/*  Reads S_RECV_COLS. On error *s holds no part of the key. */
static int
s_recv_read(sqlite3_stmt *st, store_recv_session_t *s)
{
    sodium_memzero(s, sizeof *s);
    int rc = s_col_blob(st, 0, s->peer, 32);
    if (rc == 0) {
        rc = s_col_blob(st, 1, s->ek_pub, 32);
    }
    if (rc == 0) {
        rc = s_col_u32(st, 2, &s->spk_id);
    }
    if (rc == 0) {
        rc = s_col_u32(st, 3, &s->day0);
    }
    if (rc == 0) {
        rc = s_col_u32(st, 4, &s->base_day);
    }
    if (rc == 0 && s->base_day < s->day0) {
        rc = PARLEY_ERR_MALFORMED;
    }
    if (rc == 0) {
        rc = s_col_blob(st, 5, s->key, 32);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 6, &s->last_used_ms);
    }
    if (rc != 0) {
        sodium_memzero(s, sizeof *s);
    }
    return rc;
}

static int
s_recv_row(sqlite3_stmt *st, void *elem)
{
    return s_recv_read(st, elem);
}

int
store_recv_session_get(store_t *self, const uint8_t peer[32], const uint8_t ek_pub[32],
                       store_recv_session_t *out)
{
    sqlite3_stmt *st = s_st(self, ST_RECV_GET);
    int rc = S_BIND(st, S_B32(peer), S_B32(ek_pub));
    return s_fetch_one(st, rc, s_recv_row, out);
}

/*  Inserts or replaces the session (peer, ek_pub); the old key is overwritten. */
int
store_recv_session_put(store_t *self, const store_recv_session_t *s)
{
    if (s == NULL || s->base_day < s->day0) {
        return PARLEY_ERR_MALFORMED;
    }
    sqlite3_stmt *st = s_st(self, ST_RECV_PUT);
    int rc = S_BIND(st, S_B32(s->peer), S_B32(s->ek_pub), S_U64(s->spk_id), S_U64(s->day0),
                    S_U64(s->base_day), S_B32(s->key), S_U64(s->last_used_ms));
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    if (rc == 0) {
        /* a few rows of one peer's through the primary key: cheap each time */
        st = s_st(self, ST_RECV_TRIM);
        rc = S_BIND(st, S_B32(s->peer), S_U64(STORE_RECV_PER_PEER));
        rc = rc == 0 ? s_run(st, NULL) : rc;
    }
    return rc;
}

int
store_recv_session_delete(store_t *self, const uint8_t peer[32], const uint8_t ek_pub[32])
{
    sqlite3_stmt *st = s_st(self, ST_RECV_DELETE);
    int rc = S_BIND(st, S_B32(peer), S_B32(ek_pub));
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    if (rc == 0 && sqlite3_changes(self->db) == 0) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    return rc;
}

/*  The array holds chain keys: the caller wipes it (sodium_memzero over
 *  *n × sizeof **out) before free(). On error nothing is returned and every
 *  copy made so far has been wiped. */
int
store_recv_session_list(store_t *self, store_recv_session_t **out, size_t *n)
{
    sqlite3_stmt *st = s_st(self, ST_RECV_LIST);
    int rc = s_collect(st, sizeof **out, true, s_recv_row, NULL, (void **)out, n);
    s_reset(st);
    return rc;
}

/* ---- self-test (shared helpers: store_testkit.h) ---- */

#include "store_testkit.h"

static void
s_t_own_prekey(store_own_prekey_t *k, const uint8_t owner[32], uint32_t id, uint8_t secret[32])
{
    memset(k, 0, sizeof *k);
    memcpy(k->pub.owner, owner, 32);
    k->pub.spk_id = id;
    randombytes_buf(k->pub.spk_pub, 32);
    k->pub.created_ms = 1000u * id;
    randombytes_buf(k->bundle, sizeof k->bundle);
    randombytes_buf(secret, 32);
}

static void
s_t_prekeys(store_t *s, const char *path)
{
    uint8_t me[32];
    randombytes_buf(me, sizeof me);
    store_own_prekey_t k1;
    store_own_prekey_t k2;
    store_own_prekey_t k3;
    store_own_prekey_t got;
    uint8_t s1[32];
    uint8_t s2[32];
    uint8_t s3[32];
    uint8_t sec[32];
    uint64_t created = 0;
    s_t_own_prekey(&k1, me, 1, s1);
    s_t_own_prekey(&k2, me, 2, s2);
    s_t_own_prekey(&k3, me, 3, s3);

    CHECK(store_own_prekey_current(s, &got) == PARLEY_ERR_NOTFOUND);
    CHECK(store_own_prekey_add(s, &k1, s1, 100) == 0);
    CHECK(store_own_prekey_current(s, &got) == 0);
    CHECK(got.pub.spk_id == 1 && got.superseded_ms == 0 && got.pub.created_ms == 1000);
    CHECK(memcmp(&got.pub.spk_pub, k1.pub.spk_pub, 32) == 0);
    CHECK(memcmp(got.bundle, k1.bundle, sizeof got.bundle) == 0);
    CHECK(store_own_prekey_add(s, &k2, s2, 200) == 0);
    CHECK(store_own_prekey_current(s, &got) == 0 && got.pub.spk_id == 2);
    CHECK(s_t_int(s, "SELECT superseded_ms FROM own_prekeys WHERE spk_id = 1") == 200);

    /* a reused id changes nothing, not even the current one's status */
    CHECK(store_own_prekey_add(s, &k2, s2, 300) == PARLEY_ERR_EXISTS);
    CHECK(store_own_prekey_current(s, &got) == 0 && got.pub.spk_id == 2);
    CHECK(s_t_int(s, "SELECT superseded_ms FROM own_prekeys WHERE spk_id = 1") == 200);
    s_t_idle(s);

    /* inside the caller's transaction the add is a savepoint, undone with it */
    CHECK(store_begin(s) == 0);
    CHECK(store_own_prekey_add(s, &k3, s3, 400) == 0);
    CHECK(store_own_prekey_current(s, &got) == 0 && got.pub.spk_id == 3);
    CHECK(store_rollback(s) == 0);
    CHECK(store_own_prekey_current(s, &got) == 0 && got.pub.spk_id == 2);

    CHECK(store_own_prekey_secret(s, 1, sec, &created) == 0 && created == 1000
          && sodium_memcmp(sec, s1, 32) == 0);
    CHECK(store_own_prekey_secret(s, 2, sec, NULL) == 0 && sodium_memcmp(sec, s2, 32) == 0);
    CHECK(store_own_prekey_secret(s, 3, sec, NULL) == PARLEY_ERR_NOKEY);
    size_t n = 9;
    CHECK(store_own_prekey_wipe(s, 200, &n) == 0 && n == 0); /* superseded at 200, not before */
    CHECK(store_own_prekey_wipe(s, 201, &n) == 0 && n == 1);
    CHECK(store_own_prekey_secret(s, 1, sec, NULL) == PARLEY_ERR_NOKEY);
    CHECK(store_own_prekey_secret(s, 2, sec, NULL) == 0 && sodium_memcmp(sec, s2, 32) == 0);
    CHECK(store_own_prekey_wipe(s, UINT64_MAX, &n) == 0 && n == 0); /* current stays */

    /* after a TRUNCATE checkpoint the wiped secret is nowhere on disk */
    char wal[512];
    CHECK(snprintf(wal, sizeof wal, "%s-wal", path) > 0);
    CHECK(store_checkpoint(s) == 0);
    CHECK(!s_t_file_has(path, s1, 32));
    CHECK(!s_t_file_has(wal, s1, 32));
    CHECK(s_t_file_has(path, s2, 32)); /* the search works: the live one is there */
    s_t_idle(s);

    /* peers' prekeys: only a higher spk_id replaces */
    uint8_t owner[32];
    randombytes_buf(owner, sizeof owner);
    prekey_t pk = { .spk_id = 5, .created_ms = 50 };
    memcpy(pk.owner, owner, 32);
    randombytes_buf(pk.spk_pub, 32);
    uint8_t bundle[DM_PREKEY_BUNDLE_LEN];
    randombytes_buf(bundle, sizeof bundle);
    prekey_t pgot;
    bool changed = false;
    CHECK(store_peer_prekey_get(s, owner, &pgot) == PARLEY_ERR_NOTFOUND);
    CHECK(store_peer_prekey_put(s, &pk, bundle, &changed) == 0 && changed);
    prekey_t older = pk;
    older.spk_id = 4;
    randombytes_buf(older.spk_pub, 32);
    CHECK(store_peer_prekey_put(s, &older, bundle, &changed) == 0 && !changed);
    prekey_t same = pk;
    randombytes_buf(same.spk_pub, 32);
    CHECK(store_peer_prekey_put(s, &same, bundle, &changed) == 0 && !changed);
    CHECK(store_peer_prekey_get(s, owner, &pgot) == 0);
    CHECK(pgot.spk_id == 5 && memcmp(pgot.spk_pub, pk.spk_pub, 32) == 0);
    CHECK(memcmp(pgot.owner, owner, 32) == 0 && pgot.created_ms == 50);
    prekey_t newer = pk;
    newer.spk_id = 6;
    newer.created_ms = 60;
    CHECK(store_peer_prekey_put(s, &newer, bundle, &changed) == 0 && changed);
    CHECK(store_peer_prekey_get(s, owner, &pgot) == 0);
    CHECK(pgot.spk_id == 6 && pgot.created_ms == 60);

    /* strangers' bundles past the cap: the oldest go, a peer with a sending
       session stays however old */
    store_send_session_t ss = { .day0 = 1, .day = 1 };
    memcpy(ss.peer, owner, 32);
    CHECK(store_send_session_put(s, &ss) == 0);
    CHECK(store_begin(s) == 0);
    uint8_t first[32];
    for (uint32_t i = 0; i < STORE_PEER_PREKEYS_MAX + 8; i++) {
        prekey_t st = { .spk_id = 1, .created_ms = 70 };
        randombytes_buf(st.owner, 32);
        if (i == 0) {
            memcpy(first, st.owner, 32);
        }
        CHECK(store_peer_prekey_put(s, &st, bundle, &changed) == 0 && changed);
    }
    CHECK(store_commit(s) == 0);
    CHECK(s_t_int(s, "SELECT count(*) FROM peer_prekeys") == STORE_PEER_PREKEYS_MAX);
    CHECK(store_peer_prekey_get(s, owner, &pgot) == 0);
    CHECK(store_peer_prekey_get(s, first, &pgot) == PARLEY_ERR_NOTFOUND);

    sodium_memzero(s1, sizeof s1);
    sodium_memzero(s2, sizeof s2);
    sodium_memzero(s3, sizeof s3);
    sodium_memzero(sec, sizeof sec);
    s_t_idle(s);
}

static void
s_t_sessions(store_t *s)
{
    store_send_session_t snd;
    store_send_session_t sgot;
    memset(&snd, 0, sizeof snd);
    randombytes_buf(snd.peer, 32);
    randombytes_buf(snd.ek_pub, 32);
    randombytes_buf(snd.key, 32);
    snd.spk_id = 7;
    snd.day0 = 20000;
    snd.day = 20000;
    CHECK(store_send_session_get(s, snd.peer, &sgot) == PARLEY_ERR_NOTFOUND);
    CHECK(store_send_session_put(s, &snd) == 0);
    CHECK(store_send_session_get(s, snd.peer, &sgot) == 0);
    CHECK(memcmp(sgot.ek_pub, snd.ek_pub, 32) == 0 && sgot.spk_id == 7);
    CHECK(sgot.day0 == 20000 && sgot.day == 20000 && sodium_memcmp(sgot.key, snd.key, 32) == 0);
    snd.day = 20003;
    snd.spk_id = UINT32_MAX;
    randombytes_buf(snd.key, 32);
    CHECK(store_send_session_put(s, &snd) == 0);
    CHECK(store_send_session_get(s, snd.peer, &sgot) == 0);
    CHECK(sgot.day == 20003 && sgot.spk_id == UINT32_MAX);
    CHECK(sodium_memcmp(sgot.key, snd.key, 32) == 0);
    snd.day = 1;
    CHECK(store_send_session_put(s, &snd) == PARLEY_ERR_MALFORMED);

    store_recv_session_t r[2];
    store_recv_session_t rgot;
    memset(r, 0, sizeof r);
    for (int i = 0; i < 2; i++) {
        memcpy(r[i].peer, snd.peer, 32);
        randombytes_buf(r[i].ek_pub, 32);
        randombytes_buf(r[i].key, 32);
        r[i].spk_id = 3;
        r[i].day0 = 100;
        r[i].base_day = 100 + (uint32_t)i;
        r[i].last_used_ms = 5000 + (uint64_t)i;
        CHECK(store_recv_session_put(s, &r[i]) == 0);
    }
    CHECK(store_recv_session_get(s, r[1].peer, r[1].ek_pub, &rgot) == 0);
    CHECK(rgot.base_day == 101 && rgot.last_used_ms == 5001);
    CHECK(sodium_memcmp(rgot.key, r[1].key, 32) == 0);
    CHECK(store_recv_session_get(s, r[1].ek_pub, r[1].peer, &rgot) == PARLEY_ERR_NOTFOUND);
    r[0].base_day = 150;
    CHECK(store_recv_session_put(s, &r[0]) == 0); /* replaces, does not add */
    r[0].base_day = 99;
    CHECK(store_recv_session_put(s, &r[0]) == PARLEY_ERR_MALFORMED);

    store_recv_session_t *list = NULL;
    size_t n = 0;
    CHECK(store_recv_session_list(s, &list, &n) == 0 && n == 2);
    CHECK(memcmp(list[0].ek_pub, list[1].ek_pub, 32) < 0);
    for (size_t i = 0; i < n; i++) {
        int j = memcmp(list[i].ek_pub, r[0].ek_pub, 32) == 0 ? 0 : 1;
        CHECK(memcmp(list[i].ek_pub, r[j].ek_pub, 32) == 0);
        CHECK(list[i].base_day == (j == 0 ? 150u : 101u));
    }
    sodium_memzero(list, n * sizeof *list);
    free(list);

    /* past STORE_RECV_PER_PEER of one peer's, the least recently used go */
    store_recv_session_t more = r[1];
    for (unsigned i = 0; i < STORE_RECV_PER_PEER + 3; i++) {
        randombytes_buf(more.ek_pub, 32);
        more.last_used_ms = 6000 + i;
        CHECK(store_recv_session_put(s, &more) == 0);
    }
    CHECK(store_recv_session_list(s, &list, &n) == 0 && n == STORE_RECV_PER_PEER);
    for (size_t i = 0; i < n; i++) {
        CHECK(list[i].last_used_ms >= 6003); /* r[0], r[1] and the 3 oldest went */
    }
    sodium_memzero(list, n * sizeof *list);
    free(list);
    CHECK(store_recv_session_delete(s, more.peer, more.ek_pub) == 0);
    CHECK(store_recv_session_delete(s, more.peer, more.ek_pub) == PARLEY_ERR_NOTFOUND);
    CHECK(store_recv_session_get(s, more.peer, more.ek_pub, &rgot) == PARLEY_ERR_NOTFOUND);
    sodium_memzero(&more, sizeof more);
    sodium_memzero(&snd, sizeof snd);
    sodium_memzero(&sgot, sizeof sgot);
    sodium_memzero(r, sizeof r);
    sodium_memzero(&rgot, sizeof rgot);
    s_t_idle(s);
}

/*  STORE_FAULT_PREKEY_PUT fails one store_peer_prekey_put with
 *  PARLEY_ERR_IO and *changed false, writing nothing; own prekeys are not
 *  hit. */
static void
s_t_fault(store_t *s)
{
    prekey_t pk = { .spk_id = 9, .created_ms = 90 };
    randombytes_buf(pk.owner, 32);
    randombytes_buf(pk.spk_pub, 32);
    uint8_t bundle[DM_PREKEY_BUNDLE_LEN];
    randombytes_buf(bundle, sizeof bundle);
    prekey_t got;
    bool changed = true;

    store_fault_set(s, STORE_FAULT_PREKEY_PUT, 1);
    CHECK(store_peer_prekey_put(s, NULL, bundle, &changed) == PARLEY_ERR_MALFORMED);
    store_own_prekey_t own;
    uint8_t secret[32];
    s_t_own_prekey(&own, pk.owner, 77, secret);
    CHECK(store_own_prekey_add(s, &own, secret, 7000) == 0);
    changed = true;
    CHECK(store_peer_prekey_put(s, &pk, bundle, &changed) == PARLEY_ERR_IO && !changed);
    CHECK(store_peer_prekey_get(s, pk.owner, &got) == PARLEY_ERR_NOTFOUND);
    CHECK(store_peer_prekey_put(s, &pk, bundle, &changed) == 0 && changed);
    CHECK(store_peer_prekey_get(s, pk.owner, &got) == 0 && got.spk_id == 9);
    sodium_memzero(secret, sizeof secret);
    s_t_idle(s);
}

/*  Damages one value at a time through a raw connection and checks that the
 *  call reading it says PARLEY_ERR_MALFORMED and copies no part of a secret
 *  out. */
static void
s_t_corrupt(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "corrupt.db", path, sizeof path);
    uint8_t pk[32];
    randombytes_buf(pk, sizeof pk);
    store_own_prekey_t k;
    uint8_t secret[32];
    s_t_own_prekey(&k, pk, 1, secret);
    CHECK(store_own_prekey_add(s, &k, secret, 1) == 0);
    prekey_t ppk = k.pub;
    CHECK(store_peer_prekey_put(s, &ppk, k.bundle, &(bool){ false }) == 0);
    store_send_session_t snd = { .spk_id = 1 };
    memcpy(snd.peer, pk, 32);
    CHECK(store_send_session_put(s, &snd) == 0);
    store_recv_session_t rcv = { .spk_id = 1 };
    memcpy(rcv.peer, pk, 32);
    CHECK(store_recv_session_put(s, &rcv) == 0);

    store_own_prekey_t own;
    prekey_t pgot;
    store_send_session_t sgot;
    store_recv_session_t rgot;
    store_recv_session_t *rlist = NULL;
    size_t n = 0;
    uint8_t sec[32];

    s_t_raw(path, "UPDATE own_prekeys SET secret = x'00'");
    memset(sec, 0xAA, sizeof sec);
    CHECK(store_own_prekey_secret(s, 1, sec, NULL) == PARLEY_ERR_MALFORMED);
    CHECK(sec[0] == 0xAA && sec[31] == 0xAA); /* nothing copied */
    s_t_raw(path, "UPDATE own_prekeys SET bundle = zeroblob(140)");
    CHECK(store_own_prekey_current(s, &own) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE peer_prekeys SET spk_id = 4294967296");
    CHECK(store_peer_prekey_get(s, pk, &pgot) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE send_sessions SET key = zeroblob(31)");
    CHECK(store_send_session_get(s, pk, &sgot) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE send_sessions SET key = zeroblob(32), day0 = 5, day = 4");
    CHECK(store_send_session_get(s, pk, &sgot) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE recv_sessions SET key = 'text instead of 32 bytes of key!'");
    CHECK(store_recv_session_get(s, rcv.peer, rcv.ek_pub, &rgot) == PARLEY_ERR_MALFORMED);
    CHECK(store_recv_session_list(s, &rlist, &n) == PARLEY_ERR_MALFORMED);
    CHECK(rlist == NULL && n == 0);
    s_t_idle(s);

    /* two "current" prekeys, once the unique index is gone */
    s_t_raw(path, "DROP INDEX own_prekeys_current;"
                  "UPDATE own_prekeys SET bundle = zeroblob(141);"
                  "INSERT INTO own_prekeys SELECT 2, owner, spk_pub, created_ms, bundle,"
                  " secret, NULL FROM own_prekeys;");
    CHECK(store_own_prekey_current(s, &own) == PARLEY_ERR_MALFORMED);
    s_t_idle(s);
    store_destroy(&s);
    sodium_memzero(secret, sizeof secret);
}

void
store_keys_test(bool verbose)
{
    s_t_kit_t kit;
    s_t_begin(&kit, "store_keys", verbose);
    char path[512];
    store_t *s = s_t_open_in(&kit, "keys.db", path, sizeof path);
    s_t_idle(s);
    s_t_say(&kit, "own and peer prekeys, wipe");
    s_t_prekeys(s, path);
    s_t_say(&kit, "sessions");
    s_t_sessions(s);
    store_destroy(&s);
    s_t_say(&kit, "the current prekey persists across reopen");
    CHECK(store_open(path, &s) == 0);
    store_own_prekey_t own;
    CHECK(store_own_prekey_current(s, &own) == 0 && own.pub.spk_id == 2);
    s_t_say(&kit, "fault injection: peer prekey put");
    s_t_fault(s);
    store_destroy(&s);
    s_t_say(&kit, "damaged rows");
    s_t_corrupt(&kit);
    s_t_end(&kit);
}
