/*  store/store_log.c — the envelope log, as received: storing an envelope
 *  (deduplicated by id, equivocation kept as evidence), reading it back by
 *  id, an author's last seq in a scope, and a walk over the whole log.
 *
 *  Tables (schema conventions and versions: store.c)
 *  ------
 *  envelopes(n INTEGER PK, id UNIQUE, author, scope, seq, ts_ms, expires_ms,
 *            kind, bytes, received_ms, UNIQUE(author, scope, seq))
 *      The log, as received. n is the insertion order (an explicit rowid alias
 *      so VACUUM keeps it). bytes is the whole signed envelope (158..65536
 *      bytes); the other columns repeat its header for indexing (expires_ms 0:
 *      never). At a million rows the cost of an INSERT is dominated by B-tree
 *      pages dirtied far apart by random 32-byte keys (shared/notes/limits.md:
 *      ~60 µs and ~20 KB written per row at 1M rows), so every index is there
 *      for a query that needs it:
 *      - the table itself is keyed by n, so rows append at its right edge;
 *      - UNIQUE(id) is the one random-key index, needed to dedupe and to
 *        serve WANT requests by id and by id prefix (store_sync.c);
 *      - UNIQUE(author, scope, seq) detects equivocation and serves
 *        store_last_seq; an author's next envelope in a scope lands next to
 *        its previous one, so it stays clustered rather than random;
 *      - envelopes_scope_ts(scope, ts_ms, id) (v2) reads a scope in the
 *        (ts, id) order of reconciliation, whole or by range, without a sort
 *        (store_sync.c); a scope's new envelopes land at the end of its run;
 *      - envelopes_expires(expires_ms) WHERE expires_ms > 0 (v2) is partial:
 *        it holds only envelopes that expire, so finding the due ones costs
 *        nothing for the rest of the log (store_sync.c).
 *      Nothing reads envelopes by author alone, kind or received_ms.
 *
 *  equivocations(n INTEGER PK, id UNIQUE, author, scope, seq, held_id, bytes,
 *                received_ms)
 *      Evidence: an envelope whose (author, scope, seq) is already held under
 *      another id (held_id). bytes is the full signed envelope, so two rows of
 *      envelopes/equivocations prove the author signed both. Never synced.
 *
 *  scope_authors(scope, author, PK(scope, author)) WITHOUT ROWID (v2)
 *      Who has written in each scope, one row per pair, read by
 *      store_scope_authors (store_sync.c). store_envelope_put adds the pair
 *      right after a new envelope (two statements: atomic only inside the
 *      caller's transaction); the v2 migration filled it from the log.
 *      Expiry does not remove pairs: an author stays known to the scope.
 *
 *  Invariants:
 *  - an envelope is stored at most once per id and at most once per
 *    (author, scope, seq); a second envelope for a held (author, scope, seq)
 *    goes to the equivocations table only.
 */
#include "store.h"
#include "store_int.h"

/* ---- the statements this file runs, prepared once at open ---- */

enum {
    ST_ENV_PUT,
    ST_ENV_HAS,
    ST_ENV_GET,
    ST_ENV_SLOT,
    ST_ENV_LAST_SEQ,
    ST_ENV_EACH,
    ST_EQUIV_PUT,
    ST_SCOPE_AUTHOR_PUT,
    ST_LOG_COUNT
};

static const char *const s_sql[ST_LOG_COUNT] = {
    [ST_ENV_PUT] = "INSERT OR IGNORE INTO envelopes (id, author, scope, seq, ts_ms,"
                   " expires_ms, kind, bytes, received_ms)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_ENV_HAS] = "SELECT 1 FROM envelopes WHERE id = ?1",
    [ST_ENV_GET] = "SELECT bytes FROM envelopes WHERE id = ?1",
    [ST_ENV_SLOT] = "SELECT id FROM envelopes WHERE author = ?1 AND scope = ?2 AND seq = ?3",
    [ST_ENV_LAST_SEQ] = "SELECT max(seq) FROM envelopes WHERE author = ?1 AND scope = ?2",
    [ST_ENV_EACH] = "SELECT bytes FROM envelopes ORDER BY n",
    [ST_EQUIV_PUT] = "INSERT OR IGNORE INTO equivocations (id, author, scope, seq, held_id,"
                     " bytes, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_SCOPE_AUTHOR_PUT] = "INSERT OR IGNORE INTO scope_authors (scope, author) VALUES (?1, ?2)",
};

const store_sql_t store_log_sql = { "store_log.c", s_sql, ST_LOG_COUNT };

/*  This file's statement `which`, ready to bind. */
static sqlite3_stmt *
s_st(store_t *self, int which)
{
    return self->st[STORE_PART_LOG][which];
}

/* ---- envelopes ---- */

/*  The id held for env's (author, scope, seq): 0 and *found, or an error. */
static int
s_env_slot(store_t *self, const envelope_t *env, uint8_t held[32], bool *found)
{
    sqlite3_stmt *st = s_st(self, ST_ENV_SLOT);
    int rc = S_BIND(st, S_B32(env->author), S_B32(env->scope), S_U64(env->seq));
    if (rc == 0) {
        rc = s_step(st, found);
    }
    if (rc == 0 && *found) {
        rc = s_col_blob(st, 0, held, 32);
    }
    s_reset(st);
    return rc;
}

static int
s_equivocation_put(store_t *self, const envelope_t *env, const uint8_t id[32],
                   const uint8_t held[32], uint64_t received_ms)
{
    sqlite3_stmt *st = s_st(self, ST_EQUIV_PUT);
    int rc = S_BIND(st, S_B32(id), S_B32(env->author), S_B32(env->scope), S_U64(env->seq),
                    S_B32(held), S_BLOB(env->bytes, env->bytes_len), S_U64(received_ms));
    /* OR IGNORE: the same forgery seen twice is one piece of evidence */
    return rc == 0 ? s_run(st, NULL) : rc;
}

static int
s_env_has(store_t *self, const uint8_t id[32], bool *found)
{
    sqlite3_stmt *st = s_st(self, ST_ENV_HAS);
    int rc = S_BIND(st, S_B32(id));
    if (rc == 0) {
        rc = s_step(st, found);
    }
    s_reset(st);
    return rc;
}

/*  One INSERT OR IGNORE does the common case (a new envelope) in one
 *  statement and writes nothing for a duplicate. Only when it inserted
 *  nothing do the two lookups tell a duplicate from an equivocation. */
int
store_envelope_put(store_t *self, const envelope_t *env, const uint8_t id[32], uint64_t received_ms)
{
    if (env == NULL || id == NULL || env->bytes == NULL || env->bytes_len < S_ENV_MIN) {
        return PARLEY_ERR_MALFORMED;
    }
    if (env->bytes_len > S_ENV_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    sqlite3_stmt *st = s_st(self, ST_ENV_PUT);
    int rc = S_BIND(st, S_B32(id), S_B32(env->author), S_B32(env->scope), S_U64(env->seq),
                    S_U64(env->ts_ms), S_U64(env->expires_ms), S_U64(env->kind),
                    S_BLOB(env->bytes, env->bytes_len), S_U64(received_ms));
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    if (rc != 0) {
        return rc;
    }
    if (sqlite3_changes(self->db) == 1) {
        st = s_st(self, ST_SCOPE_AUTHOR_PUT);
        rc = S_BIND(st, S_B32(env->scope), S_B32(env->author));
        return rc == 0 ? s_run(st, NULL) : rc;
    }
    bool found = false;
    rc = s_env_has(self, id, &found);
    if (rc != 0) {
        return rc;
    }
    if (found) {
        return PARLEY_ERR_DUPLICATE;
    }
    uint8_t held[32];
    rc = s_env_slot(self, env, held, &found);
    if (rc != 0) {
        return rc;
    }
    if (!found) {
        /* OR IGNORE skipped the row, yet neither unique key is taken: the
           only other constraints are NOT NULL on values we always bind, so
           this is the database misbehaving */
        return PARLEY_ERR_IO;
    }
    rc = s_equivocation_put(self, env, id, held, received_ms);
    return rc != 0 ? rc : PARLEY_ERR_EQUIVOCATION;
}

/*  A database error reads as "not stored": callers use this as a hint
 *  before fetching or asking for it, and store_envelope_put() dedupes on its
 *  own, so the worst case is one redundant request. */
bool
store_envelope_has(store_t *self, const uint8_t id[32])
{
    bool found = false;
    return s_env_has(self, id, &found) == 0 && found;
}

int
store_envelope_get(store_t *self, const uint8_t id[32], uint8_t **bytes, size_t *len)
{
    *bytes = NULL;
    *len = 0;
    sqlite3_stmt *st = s_st(self, ST_ENV_GET);
    bool row = false;
    int rc = S_BIND(st, S_B32(id));
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

int
store_last_seq(store_t *self, const uint8_t author[32], const uint8_t scope[32], uint64_t *seq)
{
    *seq = 0;
    sqlite3_stmt *st = s_st(self, ST_ENV_LAST_SEQ);
    bool row = false;
    int rc = S_BIND(st, S_B32(author), S_B32(scope));
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_IO; /* an aggregate always returns one row */
    }
    if (rc == 0 && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        rc = s_col_u64(st, 0, seq); /* NULL: nothing stored, seq stays 0 */
    }
    s_reset(st);
    return rc;
}

/*  The bytes passed to fn are valid only during the call. fn may call other
 *  store functions but not store_envelope_each (PARLEY_ERR_STATE) nor end
 *  the transaction the iteration reads in. Returns 0 whether fn stopped the
 *  walk or it ran to the end. */
int
store_envelope_each(store_t *self, int (*fn)(const uint8_t *bytes, size_t len, void *arg),
                    void *arg)
{
    if (self->in_each) {
        return PARLEY_ERR_STATE;
    }
    self->in_each = true;
    sqlite3_stmt *st = s_st(self, ST_ENV_EACH);
    int rc = 0;
    for (;;) {
        bool row = false;
        rc = s_step(st, &row);
        if (rc != 0 || !row) {
            break;
        }
        const void *p = NULL;
        size_t n = 0;
        rc = s_env_bytes(st, 0, &p, &n);
        if (rc != 0 || fn(p, n, arg) != 0) {
            break;
        }
    }
    s_reset(st);
    self->in_each = false;
    return rc;
}
