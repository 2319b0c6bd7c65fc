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
 *      By author alone only store_author_usage reads them (a prefix of
 *      UNIQUE(author, scope, seq)); nothing by kind or received_ms.
 *
 *  equivocations(n INTEGER PK, id UNIQUE, author, scope, seq, held_id, bytes,
 *                received_ms, expires_ms (v3))
 *      Evidence: an envelope whose (author, scope, seq) is already held under
 *      another id (held_id). bytes is the full signed envelope, so two rows of
 *      envelopes/equivocations prove the author signed both. Never synced.
 *      expires_ms is that envelope's (0: never): the evidence is deleted
 *      when the envelope would have been (store_expire_unlogged). Kept up
 *      to STORE_EVIDENCE_PER_AUTHOR rows per author and STORE_EVIDENCE_MAX
 *      in all: one row already proves an author equivocated, and a
 *      stranger with fresh keys must not fill the disk with proofs.
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
    ST_EQUIV_COUNT,
    ST_ENV_FORGET,
    ST_ENV_AUTHOR_USAGE,
    ST_SCOPE_AUTHOR_FORGET,
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
                     " bytes, received_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_EQUIV_COUNT] = "SELECT count(*), total(author = ?1) FROM equivocations",
    [ST_ENV_FORGET] = "DELETE FROM envelopes WHERE id = ?1",
    [ST_SCOPE_AUTHOR_FORGET] = "DELETE FROM scope_authors WHERE scope = ?1 AND author = ?2"
                               " AND NOT EXISTS (SELECT 1 FROM envelopes"
                               " WHERE author = ?2 AND scope = ?1)",
    [ST_ENV_AUTHOR_USAGE] = "SELECT count(*), total(length(bytes)) FROM envelopes"
                            " WHERE author = ?1",
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

/*  Whether the evidence table has room for one more of author's: under
 *  STORE_EVIDENCE_MAX in all and STORE_EVIDENCE_PER_AUTHOR under each. A
 *  full scan, but of a table those caps keep small. */
static int
s_evidence_room(store_t *self, const uint8_t author[32], bool *room)
{
    sqlite3_stmt *st = s_st(self, ST_EQUIV_COUNT);
    bool row = false;
    uint64_t all = 0, mine = 0;
    int rc = S_BIND(st, S_B32(author));
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_IO; /* an aggregate always returns one row */
    }
    if (rc == 0) {
        all = (uint64_t)sqlite3_column_int64(st, 0);
        mine = (uint64_t)sqlite3_column_double(st, 1);
    }
    s_reset(st);
    *room = rc == 0 && all < STORE_EVIDENCE_MAX && mine < STORE_EVIDENCE_PER_AUTHOR;
    return rc;
}

static int
s_equivocation_put(store_t *self, const envelope_t *env, const uint8_t id[32],
                   const uint8_t held[32], uint64_t received_ms)
{
    bool room = false;
    int rc0 = s_evidence_room(self, env->author, &room);
    if (rc0 != 0 || !room) {
        return rc0; /* one piece proves the author equivocates; more are only counted */
    }
    sqlite3_stmt *st = s_st(self, ST_EQUIV_PUT);
    int rc =
        S_BIND(st, S_B32(id), S_B32(env->author), S_B32(env->scope), S_U64(env->seq), S_B32(held),
               S_BLOB(env->bytes, env->bytes_len), S_U64(received_ms), S_U64(env->expires_ms));
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

/*  Found through UNIQUE(author, scope, seq); length() of a blob reads its
 *  size from the record header, not the blob. */
int
store_author_usage(store_t *self, const uint8_t author[32], uint64_t *n, uint64_t *bytes)
{
    *n = 0;
    *bytes = 0;
    sqlite3_stmt *st = s_st(self, ST_ENV_AUTHOR_USAGE);
    bool row = false;
    int rc = S_BIND(st, S_B32(author));
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_IO; /* an aggregate always returns one row */
    }
    if (rc == 0) {
        *n = (uint64_t)sqlite3_column_int64(st, 0);
        *bytes = (uint64_t)sqlite3_column_double(st, 1);
    }
    s_reset(st);
    return rc;
}

/*  The (scope, author) pair goes too when it was the author's only
 *  envelope there: a stranger's refused first envelope leaves no trace. */
int
store_envelope_forget(store_t *self, const envelope_t *env, const uint8_t id[32])
{
    sqlite3_stmt *st = s_st(self, ST_ENV_FORGET);
    int rc = S_BIND(st, S_B32(id));
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    if (rc == 0 && sqlite3_changes(self->db) == 0) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    if (rc == 0) {
        st = s_st(self, ST_SCOPE_AUTHOR_FORGET);
        rc = S_BIND(st, S_B32(env->scope), S_B32(env->author));
        rc = rc == 0 ? s_run(st, NULL) : rc;
    }
    return rc;
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

/* ---- self-test (shared helpers: store_testkit.h) ---- */

#include "store_testkit.h"

static void
s_t_envelopes(store_t *s)
{
    uint8_t author[32];
    uint8_t author2[32];
    uint8_t scope[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(author2, sizeof author2);
    randombytes_buf(scope, sizeof scope);
    s_t_env_t e[3];
    for (int i = 0; i < 3; i++) {
        s_t_env(&e[i], author, scope, (uint64_t)i + 1, (uint8_t)i);
        CHECK(store_envelope_put(s, &e[i].env, e[i].id, 5000) == 0);
    }
    s_t_idle(s);

    /* the same envelope again: nothing written */
    CHECK(store_envelope_put(s, &e[0].env, e[0].id, 6000) == PARLEY_ERR_DUPLICATE);
    store_stats_t stats;
    CHECK(store_stats(s, &stats) == 0);
    CHECK(stats.envelopes == 3 && stats.equivocations == 0);
    CHECK(s_t_int(s, "SELECT received_ms FROM envelopes ORDER BY n LIMIT 1") == 5000);

    /* another envelope for (author, scope, 2): evidence, not the log */
    s_t_env_t forged;
    s_t_env(&forged, author, scope, 2, 0xEE);
    CHECK(store_envelope_put(s, &forged.env, forged.id, 7000) == PARLEY_ERR_EQUIVOCATION);
    CHECK(store_envelope_put(s, &forged.env, forged.id, 7001) == PARLEY_ERR_EQUIVOCATION);
    CHECK(store_stats(s, &stats) == 0);
    CHECK(stats.envelopes == 3 && stats.equivocations == 1);
    CHECK(s_t_int(s, "SELECT count(*) FROM equivocations WHERE seq = 2 AND received_ms = 7000")
          == 1);
    uint8_t *bytes = NULL;
    size_t len = 0;
    CHECK(store_envelope_get(s, e[1].id, &bytes, &len) == 0);
    CHECK(len == sizeof e[1].bytes && memcmp(bytes, e[1].bytes, len) == 0);
    free(bytes);
    CHECK(store_envelope_get(s, forged.id, &bytes, &len) == PARLEY_ERR_NOTFOUND);
    CHECK(bytes == NULL && len == 0);
    CHECK(store_envelope_has(s, e[2].id));
    CHECK(!store_envelope_has(s, forged.id));
    s_t_idle(s);

    /* the same seq by another author is no conflict */
    s_t_env_t other;
    s_t_env(&other, author2, scope, 2, 9);
    CHECK(store_envelope_put(s, &other.env, other.id, 5000) == 0);

    uint64_t seq = 99;
    CHECK(store_last_seq(s, author, scope, &seq) == 0 && seq == 3);
    CHECK(store_last_seq(s, author2, scope, &seq) == 0 && seq == 2);
    CHECK(store_last_seq(s, scope, author, &seq) == 0 && seq == 0);

    /* refused before anything is written */
    s_t_env_t bad;
    s_t_env(&bad, author, scope, 10, 1);
    bad.env.bytes_len = PARLEY_ENVELOPE_HEADER_LEN + PARLEY_SIG_LEN - 1;
    CHECK(store_envelope_put(s, &bad.env, bad.id, 1) == PARLEY_ERR_MALFORMED);
    bad.env.bytes_len = PARLEY_ENVELOPE_MAX + 1;
    CHECK(store_envelope_put(s, &bad.env, bad.id, 1) == PARLEY_ERR_LIMIT);
    bad.env.bytes_len = sizeof bad.bytes;
    bad.env.bytes = NULL;
    CHECK(store_envelope_put(s, &bad.env, bad.id, 1) == PARLEY_ERR_MALFORMED);
    bad.env.bytes = bad.bytes;
    bad.env.seq = UINT64_MAX;
    CHECK(store_envelope_put(s, &bad.env, bad.id, 1) == PARLEY_ERR_LIMIT);
    CHECK(store_stats(s, &stats) == 0 && stats.envelopes == 4);
    s_t_idle(s);
}

/*  store_envelope_each callback: records first bytes' salt, stops at arg limit. */
typedef struct {
    size_t n;          /* calls so far */
    size_t stop_after; /* return non-zero at this call */
    uint8_t salt[8];   /* body byte of each envelope seen */
    store_t *store;    /* to try a nested walk */
    int nested_rc;     /* what the nested walk returned */
} s_t_walk_t;

static int
s_t_walk_fn(const uint8_t *bytes, size_t len, void *arg)
{
    s_t_walk_t *w = arg;
    CHECK(len == 200);
    if (w->n < sizeof w->salt) {
        w->salt[w->n] = bytes[PARLEY_ENVELOPE_HEADER_LEN];
    }
    w->n++;
    if (w->store != NULL) {
        w->nested_rc = store_envelope_each(w->store, s_t_walk_fn, arg);
        w->store = NULL;
    }
    return w->n == w->stop_after;
}

static void
s_t_each(store_t *s)
{
    s_t_walk_t w = { .stop_after = 0 };
    CHECK(store_envelope_each(s, s_t_walk_fn, &w) == 0);
    CHECK(w.n == 4);
    CHECK(w.salt[0] == 0 && w.salt[1] == 1 && w.salt[2] == 2 && w.salt[3] == 9);
    s_t_walk_t stop = { .stop_after = 2, .store = s };
    CHECK(store_envelope_each(s, s_t_walk_fn, &stop) == 0);
    CHECK(stop.n == 2);
    CHECK(stop.nested_rc == PARLEY_ERR_STATE);
    s_t_idle(s);
}

/*  The caps: evidence per author and in all, usage per author, and forget
 *  with its (scope, author) pair. */
static void
s_t_caps(store_t *s)
{
    uint8_t author[32], scope[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(scope, sizeof scope);
    s_t_env_t e;
    s_t_env(&e, author, scope, 1, 0x11);
    CHECK(store_envelope_put(s, &e.env, e.id, 1) == 0);
    uint64_t n = 0, bytes = 0;
    CHECK(store_author_usage(s, author, &n, &bytes) == 0 && n == 1 && bytes == sizeof e.bytes);
    int64_t before = s_t_int(s, "SELECT count(*) FROM equivocations");
    CHECK(store_begin(s) == 0);
    for (unsigned i = 0; i < STORE_EVIDENCE_PER_AUTHOR + 5; i++) {
        s_t_env_t f;
        s_t_env(&f, author, scope, 1, (uint8_t)(0x20 + i)); // seq 1 again, each different
        CHECK(store_envelope_put(s, &f.env, f.id, 2) == PARLEY_ERR_EQUIVOCATION);
    }
    CHECK(store_commit(s) == 0);
    CHECK(s_t_int(s, "SELECT count(*) FROM equivocations") - before == STORE_EVIDENCE_PER_AUTHOR);
    CHECK(store_author_usage(s, author, &n, &bytes) == 0 && n == 1);

    /* forget: the envelope and, its author's only one in the scope, the pair */
    s_t_env_t g;
    s_t_env(&g, author, scope, 2, 0x12);
    CHECK(store_envelope_put(s, &g.env, g.id, 3) == 0);
    CHECK(store_envelope_forget(s, &g.env, g.id) == 0);
    CHECK(!store_envelope_has(s, g.id));
    CHECK(store_envelope_forget(s, &g.env, g.id) == PARLEY_ERR_NOTFOUND);
    CHECK(s_t_int(s, "SELECT count(*) FROM scope_authors") >= 1); // seq 1 keeps it
    uint8_t lone[32];
    randombytes_buf(lone, sizeof lone);
    s_t_env_t h;
    s_t_env(&h, lone, scope, 1, 0x13);
    int64_t pairs = s_t_int(s, "SELECT count(*) FROM scope_authors");
    CHECK(store_envelope_put(s, &h.env, h.id, 4) == 0);
    CHECK(s_t_int(s, "SELECT count(*) FROM scope_authors") == pairs + 1);
    CHECK(store_envelope_forget(s, &h.env, h.id) == 0);
    CHECK(s_t_int(s, "SELECT count(*) FROM scope_authors") == pairs);
    CHECK(store_author_usage(s, lone, &n, &bytes) == 0 && n == 0 && bytes == 0);
    s_t_idle(s);
}

/*  Damages one value at a time through a raw connection and checks that the
 *  call reading it says PARLEY_ERR_MALFORMED, leaves its outputs empty, and
 *  that the store keeps working for other rows. */
static void
s_t_corrupt(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "corrupt.db", path, sizeof path);
    uint8_t author[32];
    uint8_t scope[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(scope, sizeof scope);
    s_t_env_t e[2];
    for (int i = 0; i < 2; i++) {
        s_t_env(&e[i], author, scope, (uint64_t)i + 1, (uint8_t)i);
        CHECK(store_envelope_put(s, &e[i].env, e[i].id, 1) == 0);
    }
    uint8_t *bytes = NULL;
    size_t len = 0;
    uint64_t u = 0;

    s_t_raw(path, "UPDATE envelopes SET bytes = x'00' WHERE seq = 1");
    CHECK(store_envelope_get(s, e[0].id, &bytes, &len) == PARLEY_ERR_MALFORMED);
    CHECK(bytes == NULL && len == 0);
    s_t_walk_t w = { .stop_after = 0 };
    CHECK(store_envelope_each(s, s_t_walk_fn, &w) == PARLEY_ERR_MALFORMED && w.n == 0);
    CHECK(store_envelope_get(s, e[1].id, &bytes, &len) == 0); /* the other row is fine */
    free(bytes);
    s_t_raw(path, "UPDATE envelopes SET bytes = zeroblob(65537) WHERE seq = 1");
    CHECK(store_envelope_get(s, e[0].id, &bytes, &len) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE envelopes SET seq = -seq");
    CHECK(store_last_seq(s, author, scope, &u) == PARLEY_ERR_MALFORMED && u == 0);
    s_t_raw(path, "UPDATE envelopes SET seq = -seq;" /* back to 1, 2 */
                  "UPDATE envelopes SET id = x'0102' WHERE seq = 1");
    s_t_env_t again;
    s_t_env(&again, author, scope, 1, 0x55);
    CHECK(store_envelope_put(s, &again.env, again.id, 1) == PARLEY_ERR_MALFORMED);
    s_t_idle(s);
    store_destroy(&s);
}

void
store_log_test(bool verbose)
{
    s_t_kit_t kit;
    s_t_begin(&kit, "store_log", verbose);
    char path[512];
    store_t *s = s_t_open_in(&kit, "log.db", path, sizeof path);
    s_t_idle(s);
    s_t_say(&kit, "put, duplicate, equivocation, get, last_seq");
    s_t_envelopes(s);
    s_t_say(&kit, "each, and no nested walk");
    s_t_each(s);
    s_t_say(&kit, "caps: evidence, usage, forget");
    s_t_caps(s);
    store_destroy(&s);
    s_t_say(&kit, "damaged rows");
    s_t_corrupt(&kit);
    s_t_end(&kit);
}
