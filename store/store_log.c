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
 *  seq_counters(scope PK, reserved) WITHOUT ROWID (v4)
 *      Our own sequence numbers: every seq up to reserved in scope may have
 *      been used by this node (see "Sequence numbers"). Rows only grow. The
 *      v4 migration filled it with the highest seq held per scope of the
 *      node's own envelopes (the author of its prekeys; every author's, if
 *      it had none), so an upgraded node never reuses a number it holds.
 *
 *  Sequence numbers
 *  ----------------
 *  A peer keeps the first envelope it sees for an (author, scope, seq) and
 *  rejects any other as an equivocation, so the node must never sign two
 *  envelopes with one seq in a scope, whatever it has deleted (expiry),
 *  rolled back or lost since. The log cannot say which numbers were used
 *  (expired rows are gone), so a durable counter does:
 *
 *      store_seq_next ─► next = max(cursor, last seq held + 1, floor)
 *                        ─► next within the reservation? hand it out
 *                        └► else reserve [next, next + STORE_SEQ_BLOCK - 1]
 *                           (a row of seq_counters) first
 *
 *  The cursor lives in memory (store_t.seqs); only reservations are
 *  written, once per block. After a restart the cursor starts past the
 *  reserved bound, so a number handed out before a crash, committed or not,
 *  is never handed out again: numbers may be skipped (peers accept gaps,
 *  proto/SPEC.md), never reused. A cursor never moves back: a rollback
 *  forgets the reservations of its transaction, not the numbers taken.
 *
 *  Outside a transaction a reservation commits on its own before its first
 *  number is used. Inside one (the node's iteration) it commits with the
 *  envelope that takes the number; that envelope cannot leave the node
 *  before the commit (node/core.h), so no peer sees a number whose
 *  reservation is not durable. store_seq_refill(), run by the node after
 *  each commit, reserves ahead in a transaction of its own whenever less
 *  than half a block remains, and store_seq_load() (at start) reserves a
 *  block past every stored bound, so that case is only the first envelope
 *  of a scope never written in.
 *
 *  The floor (meta seq_floor, store_seq_floor_set) is for a node that lost
 *  its database but kept its identity: the numbers it used are unknown, so
 *  every scope starts at the floor, the time of the loss in ms. Numbers
 *  before the loss began at 1 and grew by one per envelope (by a block per
 *  restart), so they stay below a floor taken in ms unless a scope used
 *  more than one number per millisecond on average since the node's first
 *  envelope (or its last loss): a clock set back by the loss's age breaks
 *  that, nothing else.
 *
 *  Invariants:
 *  - an envelope is stored at most once per id and at most once per
 *    (author, scope, seq); a second envelope for a held (author, scope, seq)
 *    goes to the equivocations table only.
 *  - store_seq_next never returns a number it returned before, on this
 *    file, across restarts and rollbacks, nor one at or below a seq of the
 *    author's held in the scope.
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
    ST_SEQ_GET,
    ST_SEQ_PUT,
    ST_SEQ_ALL,
    ST_SEQ_BUMP,
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
    [ST_SEQ_GET] = "SELECT reserved FROM seq_counters WHERE scope = ?1",
    [ST_SEQ_PUT] = "INSERT INTO seq_counters (scope, reserved) VALUES (?1, ?2)"
                   " ON CONFLICT (scope) DO UPDATE SET reserved = excluded.reserved"
                   " WHERE excluded.reserved > seq_counters.reserved",
    [ST_SEQ_ALL] = "SELECT scope, reserved FROM seq_counters",
    [ST_SEQ_BUMP] = "UPDATE seq_counters SET reserved = reserved + ?1 WHERE reserved <= ?2",
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

/*  The one row of aggregate `which` over author: two counts (the second
 *  may be a sum, which SQLite gives as a real when it is NULL-free). */
static int
s_author_pair(store_t *self, int which, const uint8_t author[32], uint64_t *a, uint64_t *b)
{
    sqlite3_stmt *st = s_st(self, which);
    bool row = false;
    *a = *b = 0;
    int rc = S_BIND(st, S_B32(author));
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_IO; /* an aggregate always returns one row */
    }
    if (rc == 0) {
        *a = (uint64_t)sqlite3_column_int64(st, 0);
        *b = (uint64_t)sqlite3_column_double(st, 1);
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
    uint64_t all = 0, mine = 0;
    int rc = s_author_pair(self, ST_EQUIV_COUNT, author, &all, &mine);
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
    return s_author_pair(self, ST_ENV_AUTHOR_USAGE, author, n, bytes);
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

/* ---- sequence numbers (see "Sequence numbers" above) ---- */

#define S_SEQ_MAX ((uint64_t)INT64_MAX - STORE_SEQ_BLOCK)

/*  The cursor of scope, or NULL (PARLEY_ERR_NOMEM in *rc). A new one starts
 *  past the stored reservation; *rc is a read error, if any. */
static store_seq_t *
s_seq_find(store_t *self, const uint8_t scope[32], bool load, int *rc)
{
    *rc = 0;
    for (size_t i = 0; i < self->n_seqs; i++) {
        if (memcmp(self->seqs[i].scope, scope, 32) == 0) {
            return &self->seqs[i];
        }
    }
    if (!load) {
        return NULL;
    }
    uint64_t reserved = 0;
    sqlite3_stmt *st = s_st(self, ST_SEQ_GET);
    bool row = false;
    *rc = S_BIND(st, S_B32(scope));
    if (*rc == 0) {
        *rc = s_step(st, &row);
    }
    if (*rc == 0 && row) {
        *rc = s_col_u64(st, 0, &reserved);
    }
    s_reset(st);
    if (*rc == 0 && reserved > S_SEQ_MAX) {
        *rc = PARLEY_ERR_LIMIT;
    }
    uint64_t floor = 0;
    if (*rc == 0) {
        *rc = store_meta_get(self, "seq_floor", &floor);
        *rc = *rc == PARLEY_ERR_NOTFOUND ? 0 : *rc;
    }
    if (*rc != 0) {
        return NULL;
    }
    if (self->n_seqs == self->cap_seqs) {
        size_t cap = self->cap_seqs ? 2 * self->cap_seqs : 16;
        store_seq_t *grown = realloc(self->seqs, cap * sizeof *grown);
        if (grown == NULL) {
            *rc = PARLEY_ERR_NOMEM;
            return NULL;
        }
        self->seqs = grown;
        self->cap_seqs = cap;
    }
    store_seq_t *e = &self->seqs[self->n_seqs++];
    memcpy(e->scope, scope, 32);
    e->next = reserved + 1;
    e->next = floor > e->next && floor <= S_SEQ_MAX ? floor : e->next;
    e->durable = reserved;
    e->pending = 0;
    return e;
}

/*  Rolls back what a failed reservation began; the caller reports its own
 *  error, and a rollback that fails too is SQLite's to finish (closing the
 *  connection rolls back). */
static void
s_seq_undo(store_t *self)
{
    if (store_in_txn(self)) {
        int undo = store_rollback(self);
        (void)undo;
    }
}

/*  Writes reserved = bound for e's scope: in the open transaction, or in
 *  one of its own that commits before this returns. */
static int
s_seq_reserve(store_t *self, store_seq_t *e, uint64_t bound)
{
    bool own = !store_in_txn(self);
    int rc = own ? store_begin(self) : 0;
    sqlite3_stmt *st = s_st(self, ST_SEQ_PUT);
    if (rc == 0) {
        rc = S_BIND(st, S_B32(e->scope), S_U64(bound));
    }
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    if (rc == 0) {
        e->pending = bound > e->pending ? bound : e->pending;
    }
    if (own && rc == 0) {
        rc = store_commit(self); /* makes pending durable (store_seq_txn_end) */
    }
    if (own && rc != 0) {
        s_seq_undo(self);
    }
    return rc;
}

void
store_seq_txn_end(store_t *self, bool committed)
{
    for (size_t i = 0; i < self->n_seqs; i++) {
        store_seq_t *e = &self->seqs[i];
        if (committed && e->pending > e->durable) {
            e->durable = e->pending;
        }
        e->pending = 0;
    }
}

int
store_seq_next(store_t *self, const uint8_t author[32], const uint8_t scope[32], uint64_t *seq)
{
    *seq = 0;
    int rc = 0;
    store_seq_t *e = s_seq_find(self, scope, true, &rc);
    if (e == NULL) {
        return rc;
    }
    uint64_t last = 0;
    rc = store_last_seq(self, author, scope, &last);
    if (rc != 0) {
        return rc;
    }
    uint64_t next = last >= e->next ? last + 1 : e->next;
    if (next > S_SEQ_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    uint64_t bound = e->pending > e->durable ? e->pending : e->durable;
    if (next > bound) {
        rc = s_seq_reserve(self, e, next + STORE_SEQ_BLOCK - 1);
        if (rc != 0) {
            return rc;
        }
    }
    e->next = next + 1;
    self->seq_fresh = self->seq_fresh || next > e->durable; // only the open transaction covers it
    *seq = next;
    return 0;
}

int
store_seq_raise(store_t *self, const uint8_t scope[32], uint64_t seq)
{
    if (seq > S_SEQ_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    int rc = 0;
    store_seq_t *e = s_seq_find(self, scope, true, &rc);
    if (e == NULL) {
        return rc;
    }
    if (seq >= e->next) {
        e->next = seq + 1;
    }
    uint64_t bound = e->pending > e->durable ? e->pending : e->durable;
    return seq > bound ? s_seq_reserve(self, e, seq) : 0;
}

bool
store_seq_fresh(const store_t *self)
{
    return self->seq_fresh;
}

int
store_seq_refill(store_t *self, size_t *n)
{
    *n = 0;
    if (store_in_txn(self)) {
        return PARLEY_ERR_STATE;
    }
    int rc = 0;
    bool begun = false;
    for (size_t i = 0; rc == 0 && i < self->n_seqs; i++) {
        store_seq_t *e = &self->seqs[i];
        if (e->durable >= e->next + STORE_SEQ_BLOCK / 2 || e->next > S_SEQ_MAX) {
            continue;
        }
        if (!begun) {
            rc = store_begin(self);
            begun = rc == 0;
        }
        if (rc == 0) {
            rc = s_seq_reserve(self, e, e->next + STORE_SEQ_BLOCK - 1);
            (*n)++;
        }
    }
    if (begun && rc == 0) {
        rc = store_commit(self);
    }
    if (rc != 0) {
        s_seq_undo(self);
    }
    return rc;
}

int
store_seq_load(store_t *self, size_t *n)
{
    *n = 0;
    if (store_in_txn(self)) {
        return PARLEY_ERR_STATE;
    }
    //  Every stored bound moves a block up in one statement, before any
    //  cursor is read: the cursors below then start past numbers that the
    //  node handed out in its last run and this one will not.
    int rc = store_begin(self);
    sqlite3_stmt *st = s_st(self, ST_SEQ_BUMP);
    if (rc == 0) {
        rc = S_BIND(st, S_U64(STORE_SEQ_BLOCK), S_U64(S_SEQ_MAX - STORE_SEQ_BLOCK));
    }
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    if (rc == 0) {
        rc = store_commit(self);
    }
    if (rc != 0) {
        s_seq_undo(self);
        return rc;
    }
    uint64_t floor = 0;
    rc = store_meta_get(self, "seq_floor", &floor);
    if (rc != 0 && rc != PARLEY_ERR_NOTFOUND) {
        return rc;
    }
    st = s_st(self, ST_SEQ_ALL);
    for (;;) {
        bool row = false;
        uint8_t scope[32];
        uint64_t reserved = 0;
        rc = s_step(st, &row);
        if (rc != 0 || !row) {
            break;
        }
        rc = s_col_blob(st, 0, scope, sizeof scope);
        if (rc == 0) {
            rc = s_col_u64(st, 1, &reserved);
        }
        if (rc == 0 && (reserved < STORE_SEQ_BLOCK || reserved > S_SEQ_MAX)) {
            rc = PARLEY_ERR_MALFORMED;
        }
        if (rc != 0) {
            break;
        }
        int frc = 0;
        store_seq_t *e = s_seq_find(self, scope, false, &frc);
        if (e != NULL) {
            continue; /* already in use: its cursor is ahead of the file */
        }
        //  Not through s_seq_find(load): the row is in hand already.
        if (self->n_seqs == self->cap_seqs) {
            size_t cap = self->cap_seqs ? 2 * self->cap_seqs : 16;
            store_seq_t *grown = realloc(self->seqs, cap * sizeof *grown);
            if (grown == NULL) {
                rc = PARLEY_ERR_NOMEM;
                break;
            }
            self->seqs = grown;
            self->cap_seqs = cap;
        }
        e = &self->seqs[self->n_seqs++];
        memcpy(e->scope, scope, 32);
        e->next = reserved - STORE_SEQ_BLOCK + 1;
        e->next = floor > e->next && floor <= S_SEQ_MAX ? floor : e->next;
        e->durable = reserved;
        e->pending = 0;
        (*n)++;
    }
    s_reset(st);
    return rc;
}

int
store_seq_floor_set(store_t *self, uint64_t floor)
{
    if (floor > S_SEQ_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    int rc = store_meta_set(self, "seq_floor", floor);
    for (size_t i = 0; rc == 0 && i < self->n_seqs; i++) {
        if (self->seqs[i].next < floor) {
            self->seqs[i].next = floor;
        }
    }
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

/*  Our sequence numbers: blocks, restarts, rollbacks, the log, raise, floor. */
static void
s_t_seq(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "seq.db", path, sizeof path);
    uint8_t me[32];
    uint8_t scope[32];
    uint8_t other[32];
    randombytes_buf(me, sizeof me);
    randombytes_buf(scope, sizeof scope);
    randombytes_buf(other, sizeof other);
    char sql[256];
    char hex[65];
    CHECK(sodium_bin2hex(hex, sizeof hex, scope, 32) != NULL);
    CHECK(snprintf(sql, sizeof sql, "SELECT reserved FROM seq_counters WHERE scope = x'%s'", hex)
          > 0);

    /* outside a transaction: the first block commits before 1 is handed out */
    uint64_t seq = 0;
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == 1);
    CHECK(!store_in_txn(s));
    CHECK(s_t_int(s, sql) == STORE_SEQ_BLOCK);
    for (uint64_t i = 2; i <= STORE_SEQ_BLOCK; i++) {
        CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == i);
    }
    CHECK(s_t_int(s, sql) == STORE_SEQ_BLOCK); /* one write per block */
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == STORE_SEQ_BLOCK + 1);
    CHECK(s_t_int(s, sql) == 2 * STORE_SEQ_BLOCK);

    /* a restart starts past the reservation: 66..128 were never used, and
       are never handed out */
    store_destroy(&s);
    CHECK(store_open(path, &s) == 0);
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == 2 * STORE_SEQ_BLOCK + 1);

    /* store_seq_load moves every bound a block up, committed, first */
    store_destroy(&s);
    CHECK(store_open(path, &s) == 0);
    size_t n = 0;
    CHECK(store_seq_load(s, &n) == 0 && n == 1);
    CHECK(s_t_int(s, sql) == 4 * STORE_SEQ_BLOCK);
    CHECK(store_begin(s) == 0);
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == 3 * STORE_SEQ_BLOCK + 1);
    CHECK(store_commit(s) == 0);

    /* a reservation inside a rolled-back transaction is forgotten, the
       numbers taken under it are not: the next one is past them and
       reserved again */
    CHECK(store_begin(s) == 0);
    for (uint64_t i = 0; i < STORE_SEQ_BLOCK; i++) {
        CHECK(store_seq_next(s, me, scope, &seq) == 0);
    }
    CHECK(seq == 4 * STORE_SEQ_BLOCK + 1); /* past the committed bound: reserved in the txn */
    CHECK(store_rollback(s) == 0);
    CHECK(s_t_int(s, sql) == 4 * STORE_SEQ_BLOCK);
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == 4 * STORE_SEQ_BLOCK + 2);
    CHECK(s_t_int(s, sql) == 5 * STORE_SEQ_BLOCK + 1);

    /* refill: less than half a block left reserves ahead, on its own */
    CHECK(store_seq_refill(s, &n) == 0 && n == 0);
    for (int i = 0; i < (int)STORE_SEQ_BLOCK / 2 + 1; i++) {
        CHECK(store_seq_next(s, me, scope, &seq) == 0);
    }
    CHECK(store_seq_refill(s, &n) == 0 && n == 1);
    CHECK(s_t_int(s, sql) == (int64_t)(seq + STORE_SEQ_BLOCK));
    CHECK(store_begin(s) == 0);
    CHECK(store_seq_refill(s, &n) == PARLEY_ERR_STATE);
    CHECK(store_rollback(s) == 0);

    /* a held envelope of ours with a higher seq (it came back from a
       peer) lifts the cursor; another author's does not */
    s_t_env_t e;
    s_t_env(&e, me, scope, 5000, 1);
    CHECK(store_envelope_put(s, &e.env, e.id, 1) == 0);
    s_t_env_t o;
    s_t_env(&o, other, scope, 9000, 2);
    CHECK(store_envelope_put(s, &o.env, o.id, 1) == 0);
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == 5001);
    CHECK(s_t_int(s, sql) == 5000 + STORE_SEQ_BLOCK);

    /* raise records a number used elsewhere, durably */
    CHECK(store_seq_raise(s, scope, 7000) == 0);
    CHECK(s_t_int(s, sql) == 7000);
    CHECK(store_seq_raise(s, scope, 10) == 0); /* lower: nothing moves */
    CHECK(s_t_int(s, sql) == 7000);
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == 7001);
    CHECK(store_seq_raise(s, scope, UINT64_MAX) == PARLEY_ERR_LIMIT);

    /* the floor: a new scope and a lower cursor start at it, and it holds
       across a restart */
    CHECK(store_seq_floor_set(s, 1000000) == 0);
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == 1000000);
    CHECK(store_seq_next(s, me, other, &seq) == 0 && seq == 1000000);
    store_destroy(&s);
    CHECK(store_open(path, &s) == 0);
    uint8_t third[32];
    randombytes_buf(third, sizeof third);
    CHECK(store_seq_next(s, me, third, &seq) == 0 && seq == 1000000);
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == 1000000 + STORE_SEQ_BLOCK);

    /* the end of the numbers */
    s_t_raw(path, "UPDATE seq_counters SET reserved = 9223372036854775807");
    store_destroy(&s);
    CHECK(store_open(path, &s) == 0);
    CHECK(store_seq_next(s, me, scope, &seq) == PARLEY_ERR_LIMIT && seq == 0);
    CHECK(store_seq_load(s, &n) == PARLEY_ERR_MALFORMED);
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
    s_t_say(&kit, "sequence numbers: blocks, restarts, rollbacks, raise, floor");
    s_t_seq(&kit);
    s_t_end(&kit);
}
