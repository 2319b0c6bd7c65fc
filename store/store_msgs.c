/*  store/store_msgs.c — the decrypted direct-message history (queued,
 *  attached to its envelope, state raised by receipts) and the outbox of
 *  envelopes a peer has not acknowledged.
 *
 *  Tables (schema conventions and versions: store.c)
 *  ------
 *  messages(n INTEGER PK, msg_id BLOB(16) UNIQUE,
 *           env_n → envelopes(n) UNIQUE NULL ON DELETE CASCADE (v10), peer,
 *           outgoing 0|1, seq, ts_ms, state, text TEXT, expires_ms (v3))
 *      Decrypted direct-message history. env_n names the message's envelope
 *      by its row, as the outbox does (a hash would write a random page of
 *      the index per message); it is NULL exactly while state is
 *      MSG_STATE_QUEUED (outgoing, not yet sealed). Rows are read joined
 *      to their envelope, whose id callers know them by. seq/ts_ms are the
 *      envelope's (ts_ms is the queue time while QUEUED). text is at most
 *      PARLEY_TEXT_MAX bytes, no NUL. expires_ms (0: never) is the envelope's
 *      expiry; while QUEUED it is the expiry the message will be sealed with,
 *      fixed at send time, and store_expire_unlogged (store_sync.c) deletes
 *      the row unsent once it has passed.
 *      Indexes: msg_id and env_n (the lookups store_msg_attach/raise need,
 *      after the envelope's id index gives its row);
 *      messages_history(peer, ts_ms, outgoing, seq) serves "last N with peer"
 *      in exactly the store_history order, reading N entries with no sort;
 *      messages_queued(peer, ts_ms) WHERE state = 0 is a partial index that
 *      holds only queued rows, so finding them costs nothing as history grows.
 *      An envelope must be stored before its message names it; the one
 *      place a DM's envelope leaves the log, expiry (store_sync.c), takes
 *      the message with it through the foreign key.
 *
 *  outbox(n INTEGER PK, peer, env_n → envelopes(n) ON DELETE CASCADE,
 *         added_ms, UNIQUE(peer, env_n))  (schema 9)
 *      Envelopes a peer has not acknowledged, named by their row in the log
 *      (envelopes.n), which only grows: queueing and acknowledging write at
 *      the end of the indexes, where an id (a hash) would rewrite a random
 *      page of each per envelope. The UNIQUE (peer, env_n) index lists a
 *      peer's pending envelopes in log order (oldest first) without sorting.
 *      An envelope must be stored before it is queued (the foreign key);
 *      deleting it from the log drops it from the outbox. outbox_env(env_n)
 *      finds an envelope's rows for that cascade and store_outbox_drop
 *      (store_sync.c) without a scan.
 *
 *  Invariants:
 *  - a message's env_n is NULL exactly while it is QUEUED, and an outgoing
 *    message's state only ever rises;
 *  - a message's env_n names an envelope in the log (foreign key);
 *  - an outbox row names an envelope in the log (foreign key).
 */
#include "store.h"
#include "store_int.h"

/* ---- the statements this file runs, prepared once at open ---- */

enum {
    ST_ENV_N,
    ST_MSG_ADD,
    ST_MSG_ATTACH,
    ST_MSG_STATE,
    ST_MSG_RAISE,
    ST_MSG_BY_ENV,
    ST_MSG_QUEUED,
    ST_MSG_QUEUED_PEERS,
    ST_MSG_HISTORY,
    ST_MSG_HISTORY_BEFORE,
    ST_MSG_IN_CONV,
    ST_MSG_CONVS,
    ST_OUTBOX_ADD,
    ST_OUTBOX_LIST,
    ST_OUTBOX_ACK,
    ST_OUTBOX_PEERS,
    ST_MSGS_COUNT
};

/* a message row and its envelope's id (NULL while QUEUED), as s_msg_read
   reads them */
#define S_MSG_SELECT                                                                               \
    "SELECT m.msg_id, e.id, m.peer, m.outgoing, m.seq, m.ts_ms, m.state, m.text,"                  \
    " m.expires_ms FROM messages m LEFT JOIN envelopes e ON e.n = m.env_n"
#define S_ENV_N "(SELECT n FROM envelopes WHERE id = ?1)"

static const char *const s_sql[ST_MSGS_COUNT] = {
    [ST_ENV_N] = "SELECT n FROM envelopes WHERE id = ?1",
    [ST_MSG_ADD] = "INSERT INTO messages (msg_id, env_n, peer, outgoing, seq, ts_ms, state,"
                   " text, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_MSG_ATTACH] = "UPDATE messages SET env_n = ?2, seq = ?3, ts_ms = ?4, state = 1"
                      " WHERE msg_id = ?1 AND state = 0",
    [ST_MSG_STATE] = "SELECT state FROM messages WHERE msg_id = ?1",
    [ST_MSG_RAISE] = "UPDATE messages SET state = ?2"
                     " WHERE env_n = " S_ENV_N " AND outgoing = 1 AND state < ?2",
    [ST_MSG_BY_ENV] = S_MSG_SELECT " WHERE m.env_n = " S_ENV_N " AND m.outgoing = 1",
    [ST_MSG_QUEUED] = S_MSG_SELECT " WHERE m.peer = ?1 AND m.state = 0 ORDER BY m.ts_ms, m.n",
    [ST_MSG_QUEUED_PEERS] = "SELECT DISTINCT peer FROM messages WHERE state = 0 ORDER BY peer",
    /* newest first so LIMIT keeps the last ones; store_history reverses them */
    [ST_MSG_HISTORY] = S_MSG_SELECT " WHERE m.peer = ?1 ORDER BY m.ts_ms DESC,"
                                    " m.outgoing DESC, m.seq DESC, m.n DESC LIMIT ?2",
    /* the same order, strictly before message ?3 in it (a page further back) */
    [ST_MSG_HISTORY_BEFORE] = S_MSG_SELECT " WHERE m.peer = ?1"
                                           " AND (m.ts_ms, m.outgoing, m.seq, m.n) < (SELECT"
                                           " ts_ms, outgoing, seq, n FROM messages"
                                           " WHERE msg_id = ?3) ORDER BY m.ts_ms DESC,"
                                           " m.outgoing DESC, m.seq DESC, m.n DESC LIMIT ?2",
    [ST_MSG_IN_CONV] = "SELECT 1 FROM messages WHERE msg_id = ?1 AND peer = ?2",
    /* one row per conversation, the most recently active first; one pass
       over the messages (a client asks when it starts, then follows the
       notifications) */
    [ST_MSG_CONVS] = "SELECT peer, SUM(state = 10), MAX(ts_ms) FROM messages"
                     " GROUP BY peer ORDER BY MAX(ts_ms) DESC, peer LIMIT ?1",
    /* an id not in the log becomes env_n -1, which the foreign key refuses
   (OR IGNORE would swallow the NOT NULL of a plain NULL) */
    [ST_OUTBOX_ADD] = "INSERT OR IGNORE INTO outbox (peer, env_n, added_ms)"
                      " VALUES (?1, coalesce((SELECT n FROM envelopes WHERE id = ?2), -1), ?3)",
    [ST_OUTBOX_LIST] = "SELECT e.id FROM outbox o JOIN envelopes e ON e.n = o.env_n"
                       " WHERE o.peer = ?1 ORDER BY o.env_n LIMIT ?2",
    [ST_OUTBOX_ACK] = "DELETE FROM outbox WHERE peer = ?1"
                      " AND env_n = (SELECT n FROM envelopes WHERE id = ?2)",
    /* the peers with something pending, in key order: one seek of
   the (peer, env_n) index per peer (a skip-scan), whatever the backlog */
    [ST_OUTBOX_PEERS] = "WITH RECURSIVE p(peer) AS (SELECT (SELECT min(peer) FROM outbox)"
                        " UNION ALL SELECT (SELECT min(peer) FROM outbox WHERE peer > p.peer)"
                        " FROM p WHERE p.peer IS NOT NULL)"
                        " SELECT peer FROM p WHERE peer IS NOT NULL LIMIT ?1",
};

_Static_assert(MSG_STATE_QUEUED == 0 && MSG_STATE_STORED == 1,
               "the SQL above spells these states as numbers");

const store_sql_t store_msgs_sql = { "store_msgs.c", s_sql, ST_MSGS_COUNT };

/*  This file's statement `which`, ready to bind. */
static sqlite3_stmt *
s_st(store_t *self, int which)
{
    return self->st[STORE_PART_MSGS][which];
}

/* ---- messages ---- */

static bool
s_state_valid(int64_t state)
{
    return (state >= MSG_STATE_QUEUED && state <= MSG_STATE_READ) || state == MSG_STATE_RECEIVED
           || state == MSG_STATE_OPENED;
}

/*  The rules that tie state, direction and envelope together; the same on
 *  the way in (PARLEY_ERR_MALFORMED from the caller) and out (a damaged
 *  row). */
static bool
s_msg_consistent(int64_t state, bool outgoing, bool has_env)
{
    if (!s_state_valid(state)) {
        return false;
    }
    if (has_env != (state != MSG_STATE_QUEUED)) {
        return false; /* env_id is NULL exactly while QUEUED */
    }
    return outgoing != (state == MSG_STATE_RECEIVED || state == MSG_STATE_OPENED);
}

/*  Reads the S_MSG_SELECT columns of the current row into *m; m->text is
 *  malloc'd. */
static int
s_msg_read(sqlite3_stmt *st, store_msg_t *m)
{
    memset(m, 0, sizeof *m);
    int rc = s_col_blob(st, 0, m->msg_id, STORE_MSG_ID_LEN);
    if (rc == 0) {
        m->has_env = sqlite3_column_type(st, 1) != SQLITE_NULL;
        if (m->has_env) {
            rc = s_col_blob(st, 1, m->env_id, 32);
        }
    }
    if (rc == 0) {
        rc = s_col_blob(st, 2, m->peer, 32);
    }
    if (rc == 0) {
        rc = s_col_bool(st, 3, &m->outgoing);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 4, &m->seq);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 5, &m->ts_ms);
    }
    int64_t state = 0;
    if (rc == 0) {
        rc = s_col_range(st, 6, INT32_MIN, INT32_MAX, &state);
    }
    if (rc == 0 && !s_msg_consistent(state, m->outgoing, m->has_env)) {
        rc = PARLEY_ERR_MALFORMED;
    }
    const char *text = NULL;
    size_t len = 0;
    if (rc == 0) {
        m->state = (int)state;
        rc = s_col_text(st, 7, PARLEY_TEXT_MAX, &text, &len);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 8, &m->expires_ms);
    }
    if (rc == 0) {
        m->text = malloc(len + 1);
        if (m->text == NULL) {
            rc = PARLEY_ERR_NOMEM;
        } else {
            memcpy(m->text, text, len);
            m->text[len] = '\0';
        }
    }
    return rc;
}

static int
s_msg_row(sqlite3_stmt *st, void *elem)
{
    return s_msg_read(st, elem);
}

static void
s_msg_release(void *arr, size_t count)
{
    store_msgs_free(arr, count);
}

/*  Steps st to the end, appending every row to a growing array. */
static int
s_msg_read_all(sqlite3_stmt *st, store_msg_t **out, size_t *n)
{
    return s_collect(st, sizeof **out, false, s_msg_row, s_msg_release, (void **)out, n);
}

static int
s_env_n_row(sqlite3_stmt *st, void *n)
{
    return s_col_range(st, 0, 1, INT64_MAX, n);
}

/*  The row of envelope id in the log (envelopes.n) into *n:
 *  PARLEY_ERR_NOTFOUND if it is not there. */
static int
s_env_n(store_t *self, const uint8_t id[32], int64_t *n)
{
    sqlite3_stmt *st = s_st(self, ST_ENV_N);
    return s_fetch_one(st, S_BIND(st, S_B32(id)), s_env_n_row, n);
}

int
store_msg_add(store_t *self, const store_msg_t *msg)
{
    if (msg == NULL || msg->text == NULL
        || !s_msg_consistent(msg->state, msg->outgoing, msg->has_env)) {
        return PARLEY_ERR_MALFORMED;
    }
    size_t len = strnlen(msg->text, (size_t)PARLEY_TEXT_MAX + 1);
    if (len > PARLEY_TEXT_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    int64_t env_n = 0;
    int rc = msg->has_env ? s_env_n(self, msg->env_id, &env_n) : 0;
    if (rc != 0) {
        return rc; /* the envelope is stored first */
    }
    sqlite3_stmt *st = s_st(self, ST_MSG_ADD);
    rc = S_BIND(st, S_BLOB(msg->msg_id, STORE_MSG_ID_LEN), msg->has_env ? S_I64(env_n) : S_NULL,
                S_B32(msg->peer), S_BOOL(msg->outgoing), S_U64(msg->seq), S_U64(msg->ts_ms),
                S_I64(msg->state), S_TEXT(msg->text, len), S_U64(msg->expires_ms));
    if (rc == 0 && s_fault(self, STORE_FAULT_MSG_ADD)) {
        s_reset(st);
        return PARLEY_ERR_IO; /* store_fault_set: as a full disk would */
    }
    /* a constraint here is a msg_id or env_id already in use: EXISTS */
    return rc == 0 ? s_run(st, NULL) : rc;
}

int
store_msg_attach(store_t *self, const uint8_t msg_id[STORE_MSG_ID_LEN], const uint8_t env_id[32],
                 uint64_t seq, uint64_t ts_ms)
{
    int64_t env_n = 0;
    int rc = s_env_n(self, env_id, &env_n);
    if (rc != 0) {
        return rc; /* the envelope is stored first */
    }
    sqlite3_stmt *st = s_st(self, ST_MSG_ATTACH);
    rc = S_BIND(st, S_BLOB(msg_id, STORE_MSG_ID_LEN), S_I64(env_n), S_U64(seq), S_U64(ts_ms));
    if (rc == 0) {
        rc = s_run(st, NULL); /* EXISTS if env_id belongs to another message */
    }
    if (rc != 0 || sqlite3_changes(self->db) == 1) {
        return rc;
    }
    /* nothing updated: either no such message or it is no longer QUEUED */
    st = s_st(self, ST_MSG_STATE);
    bool row = false;
    rc = S_BIND(st, S_BLOB(msg_id, STORE_MSG_ID_LEN));
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    s_reset(st);
    if (rc != 0) {
        return rc;
    }
    return row ? PARLEY_ERR_STATE : PARLEY_ERR_NOTFOUND;
}

/*  The UPDATE raises atomically (state < new in its WHERE); the SELECT that
 *  follows only reports the row and tells "not found" from "not lower". */
int
store_msg_raise(store_t *self, const uint8_t env_id[32], int state, bool *changed, store_msg_t *out)
{
    *changed = false;
    if (out != NULL) {
        memset(out, 0, sizeof *out);
    }
    if (state < MSG_STATE_STORED || state > MSG_STATE_READ) {
        return PARLEY_ERR_MALFORMED; /* not a state an outgoing message can reach */
    }
    sqlite3_stmt *st = s_st(self, ST_MSG_RAISE);
    int rc = S_BIND(st, S_B32(env_id), S_I64(state));
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    if (rc != 0) {
        return rc;
    }
    *changed = sqlite3_changes(self->db) == 1;

    st = s_st(self, ST_MSG_BY_ENV);
    bool row = false;
    rc = S_BIND(st, S_B32(env_id));
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    if (rc == 0 && out != NULL) {
        rc = s_msg_read(st, out); /* on failure out->text stays NULL */
    }
    s_reset(st);
    return rc;
}

int
store_msg_recipient(store_t *self, const uint8_t env_id[32], uint8_t peer[32])
{
    sqlite3_stmt *st = s_st(self, ST_MSG_BY_ENV);
    bool row = false;
    int rc = S_BIND(st, S_B32(env_id));
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    store_msg_t m;
    if (rc == 0) {
        rc = s_msg_read(st, &m);
    }
    if (rc == 0) {
        memcpy(peer, m.peer, 32);
        free(m.text);
    }
    s_reset(st);
    return rc;
}

int
store_msg_queued(store_t *self, const uint8_t peer[32], store_msg_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_MSG_QUEUED);
    int rc = S_BIND(st, S_B32(peer));
    if (rc == 0) {
        rc = s_msg_read_all(st, out, n);
    }
    s_reset(st);
    return rc;
}

static int
s_key_row(sqlite3_stmt *st, void *elem)
{
    return s_col_blob(st, 0, elem, 32);
}

int
store_msg_queued_peers(store_t *self, uint8_t (**peers)[32], size_t *n)
{
    sqlite3_stmt *st = s_st(self, ST_MSG_QUEUED_PEERS);
    int rc = s_collect(st, 32, false, s_key_row, NULL, (void **)peers, n);
    s_reset(st);
    return rc;
}

static int
s_conv_row(sqlite3_stmt *st, void *elem)
{
    store_conv_t *c = elem;
    int rc = s_col_blob(st, 0, c->peer, sizeof c->peer);
    if (rc == 0) {
        rc = s_col_u64(st, 1, &c->unread);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 2, &c->last_ms);
    }
    return rc;
}

int
store_conversations(store_t *self, size_t cap, store_conv_t **out, size_t *n)
{
    sqlite3_stmt *st = s_st(self, ST_MSG_CONVS);
    int64_t lim = cap == 0 || (uint64_t)cap > (uint64_t)INT64_MAX ? -1 : (int64_t)cap;
    int rc = S_BIND(st, S_I64(lim));
    if (rc == 0) {
        rc = s_collect(st, sizeof **out, false, s_conv_row, NULL, (void **)out, n);
    }
    s_reset(st);
    return rc;
}

int
store_history(store_t *self, const uint8_t peer[32], size_t limit, store_msg_t **out, size_t *n)
{
    return store_history_before(self, peer, NULL, limit, out, n);
}

int
store_history_before(store_t *self, const uint8_t peer[32], const uint8_t before[STORE_MSG_ID_LEN],
                     size_t limit, store_msg_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    int rc = 0;
    if (before != NULL) {
        /* a cursor must be a message of this conversation: a page of
           another, or a made-up id, is an error, not an empty page */
        sqlite3_stmt *chk = s_st(self, ST_MSG_IN_CONV);
        bool row = false;
        rc = S_BIND(chk, S_BLOB(before, STORE_MSG_ID_LEN), S_B32(peer));
        if (rc == 0) {
            rc = s_step(chk, &row);
        }
        s_reset(chk);
        if (rc == 0 && !row) {
            rc = PARLEY_ERR_NOTFOUND;
        }
        if (rc != 0) {
            return rc;
        }
    }
    sqlite3_stmt *st = s_st(self, before ? ST_MSG_HISTORY_BEFORE : ST_MSG_HISTORY);
    /* LIMIT -1 is SQLite's "no limit"; a limit beyond INT64_MAX is no limit too */
    int64_t lim = (limit == 0 || (uint64_t)limit > (uint64_t)INT64_MAX) ? -1 : (int64_t)limit;
    rc = before ? S_BIND(st, S_B32(peer), S_I64(lim), S_BLOB(before, STORE_MSG_ID_LEN))
                : S_BIND(st, S_B32(peer), S_I64(lim));
    if (rc == 0) {
        rc = s_msg_read_all(st, out, n);
    }
    s_reset(st);
    if (rc != 0) {
        return rc;
    }
    /* the query reads newest first so that LIMIT keeps the newest: reverse */
    for (size_t i = 0, j = *n; j > i + 1; i++, j--) {
        store_msg_t tmp = (*out)[i];
        (*out)[i] = (*out)[j - 1];
        (*out)[j - 1] = tmp;
    }
    return 0;
}

void
store_msgs_free(store_msg_t *msgs, size_t n)
{
    if (msgs == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        free(msgs[i].text);
    }
    free(msgs);
}

/* ---- outbox ---- */

/*  Adding a pair that is already pending keeps its place in the queue and
 *  returns 0. PARLEY_ERR_NOTFOUND if env_id is not in the log. */
int
store_outbox_add(store_t *self, const uint8_t env_id[32], const uint8_t peer[32], uint64_t now_ms)
{
    sqlite3_stmt *st = s_st(self, ST_OUTBOX_ADD);
    int rc = S_BIND(st, S_B32(peer), S_B32(env_id), S_U64(now_ms));
    if (rc != 0) {
        return rc;
    }
    int src = SQLITE_OK;
    rc = s_run(st, &src);
    if (src == SQLITE_CONSTRAINT_FOREIGNKEY) {
        return PARLEY_ERR_NOTFOUND; /* OR IGNORE does not cover foreign keys */
    }
    return rc;
}

//  Steps st (bound with result rc) for up to max rows whose first column is
//  a 32-byte key, into out (max × 32 bytes); *n how many. Resets st.
static int
s_read_keys(sqlite3_stmt *st, int rc, size_t max, uint8_t *out, size_t *n)
{
    size_t count = 0;
    while (rc == 0 && count < max) {
        bool row = false;
        rc = s_step(st, &row);
        if (rc != 0 || !row) {
            break;
        }
        rc = s_col_blob(st, 0, out + count * 32, 32);
        if (rc == 0) {
            count++;
        }
    }
    s_reset(st);
    if (rc == 0) {
        *n = count;
    }
    return rc;
}

int
store_outbox_peers(store_t *self, size_t max, uint8_t *peers, size_t *n)
{
    *n = 0;
    if (max == 0) {
        return 0;
    }
    sqlite3_stmt *st = s_st(self, ST_OUTBOX_PEERS);
    int64_t lim = (uint64_t)max > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)max;
    return s_read_keys(st, S_BIND(st, S_I64(lim)), max, peers, n);
}

int
store_outbox_list(store_t *self, const uint8_t peer[32], size_t max, uint8_t *ids, size_t *n)
{
    *n = 0;
    if (max == 0) {
        return 0;
    }
    sqlite3_stmt *st = s_st(self, ST_OUTBOX_LIST);
    int64_t lim = (uint64_t)max > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)max;
    return s_read_keys(st, S_BIND(st, S_B32(peer), S_I64(lim)), max, ids, n);
}

int
store_outbox_ack(store_t *self, const uint8_t env_id[32], const uint8_t peer[32])
{
    sqlite3_stmt *st = s_st(self, ST_OUTBOX_ACK);
    int rc = S_BIND(st, S_B32(peer), S_B32(env_id));
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    if (rc == 0 && sqlite3_changes(self->db) == 0) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    return rc;
}

/* ---- self-test (shared helpers: store_testkit.h) ---- */

#include "store_testkit.h"

static store_msg_t
s_t_msg(store_t *s, uint8_t tag, const uint8_t peer[32], bool outgoing, int state, uint64_t seq,
        uint64_t ts, const char *text)
{
    store_msg_t m;
    memset(&m, 0, sizeof m);
    memset(m.msg_id, tag, sizeof m.msg_id);
    memcpy(m.peer, peer, 32);
    m.has_env = state != MSG_STATE_QUEUED;
    memset(m.env_id, tag, sizeof m.env_id);
    if (m.has_env) {
        s_t_log_id(s, m.env_id);
    }
    m.outgoing = outgoing;
    m.state = state;
    m.seq = seq;
    m.ts_ms = ts;
    m.text = (char *)text;
    return m;
}

static void
s_t_messages(store_t *s)
{
    uint8_t p1[32];
    uint8_t p2[32];
    randombytes_buf(p1, sizeof p1);
    randombytes_buf(p2, sizeof p2);

    store_msg_t q1 = s_t_msg(s, 1, p1, true, MSG_STATE_QUEUED, 0, 100, "hello");
    store_msg_t q2 = s_t_msg(s, 2, p1, true, MSG_STATE_QUEUED, 0, 101, "world");
    q2.expires_ms = 5101;
    CHECK(store_msg_add(s, &q2) == 0);
    CHECK(store_msg_add(s, &q1) == 0);
    CHECK(store_msg_add(s, &q1) == PARLEY_ERR_EXISTS);

    /* inconsistent or oversized messages are refused */
    store_msg_t bad = q1;
    memset(bad.msg_id, 0x77, sizeof bad.msg_id);
    bad.has_env = true;
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_MALFORMED); /* QUEUED with an envelope */
    bad = s_t_msg(s, 0x78, p1, true, MSG_STATE_RECEIVED, 1, 1, "x");
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_MALFORMED); /* outgoing RECEIVED */
    bad = s_t_msg(s, 0x79, p1, false, MSG_STATE_DELIVERED, 1, 1, "x");
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_MALFORMED); /* incoming DELIVERED */
    bad = s_t_msg(s, 0x7a, p1, true, 7, 1, 1, "x");
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_MALFORMED);
    bad = s_t_msg(s, 0x7b, p1, true, MSG_STATE_STORED, 1, 1, NULL);
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_MALFORMED);
    char *huge = malloc(PARLEY_TEXT_MAX + 2);
    CHECK(huge != NULL);
    memset(huge, 'a', PARLEY_TEXT_MAX + 1);
    huge[PARLEY_TEXT_MAX + 1] = '\0';
    bad = s_t_msg(s, 0x7c, p1, true, MSG_STATE_STORED, 1, 1, huge);
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_LIMIT);
    huge[PARLEY_TEXT_MAX] = '\0'; /* exactly the limit is fine */
    CHECK(store_msg_add(s, &bad) == 0);
    free(huge);
    s_t_idle(s);

    store_msg_t *msgs = NULL;
    size_t n = 0;
    CHECK(store_msg_queued(s, p1, &msgs, &n) == 0 && n == 2);
    CHECK(msgs[0].msg_id[0] == 1 && strcmp(msgs[0].text, "hello") == 0);
    CHECK(msgs[1].msg_id[0] == 2 && !msgs[1].has_env && msgs[1].ts_ms == 101);
    CHECK(msgs[0].expires_ms == 0 && msgs[1].expires_ms == 5101); /* the TTL it waits with */
    store_msgs_free(msgs, n);
    CHECK(store_msg_queued(s, p2, &msgs, &n) == 0 && n == 0 && msgs == NULL);
    uint8_t(*peers)[32] = NULL;
    CHECK(store_msg_queued_peers(s, &peers, &n) == 0 && n == 1);
    CHECK(memcmp(peers[0], p1, 32) == 0);
    free(peers);

    /* attach: QUEUED → STORED, once */
    uint8_t e1[32];
    uint8_t e2[32];
    randombytes_buf(e1, sizeof e1);
    randombytes_buf(e2, sizeof e2);
    CHECK(store_msg_attach(s, q1.msg_id, e1, 1, 200) == PARLEY_ERR_NOTFOUND); /* not logged */
    s_t_log_id(s, e1);
    s_t_log_id(s, e2);
    CHECK(store_msg_attach(s, q1.msg_id, e1, 1, 200) == 0);
    CHECK(store_msg_attach(s, q1.msg_id, e2, 2, 201) == PARLEY_ERR_STATE);
    uint8_t nobody[STORE_MSG_ID_LEN] = { 0xAB };
    CHECK(store_msg_attach(s, nobody, e2, 2, 201) == PARLEY_ERR_NOTFOUND);
    CHECK(store_msg_attach(s, q2.msg_id, e1, 2, 201) == PARLEY_ERR_EXISTS);
    store_stats_t stats;
    CHECK(store_stats(s, &stats) == 0 && stats.queued == 1 && stats.messages == 3);
    s_t_idle(s);

    /* raise only raises */
    bool changed = false;
    store_msg_t out;
    CHECK(store_msg_raise(s, e1, MSG_STATE_DELIVERED, &changed, &out) == 0);
    CHECK(changed && out.state == MSG_STATE_DELIVERED && out.has_env);
    CHECK(memcmp(out.env_id, e1, 32) == 0 && out.seq == 1 && out.ts_ms == 200);
    CHECK(out.expires_ms == 0);
    CHECK(strcmp(out.text, "hello") == 0);
    free(out.text);
    CHECK(store_msg_raise(s, e1, MSG_STATE_RELAYED, &changed, &out) == 0);
    CHECK(!changed && out.state == MSG_STATE_DELIVERED);
    free(out.text);
    CHECK(store_msg_raise(s, e1, MSG_STATE_DELIVERED, &changed, NULL) == 0 && !changed);
    CHECK(store_msg_raise(s, e1, MSG_STATE_READ, &changed, NULL) == 0 && changed);
    uint8_t to[32];
    CHECK(store_msg_recipient(s, e1, to) == 0 && memcmp(to, p1, 32) == 0);
    CHECK(store_msg_recipient(s, e2, to) == PARLEY_ERR_NOTFOUND);
    CHECK(store_msg_raise(s, e2, MSG_STATE_READ, &changed, &out) == PARLEY_ERR_NOTFOUND);
    CHECK(!changed && out.text == NULL);
    CHECK(store_msg_raise(s, e1, MSG_STATE_RECEIVED, &changed, NULL) == PARLEY_ERR_MALFORMED);
    CHECK(store_msg_raise(s, e1, MSG_STATE_QUEUED, &changed, NULL) == PARLEY_ERR_MALFORMED);
    store_msg_t in = s_t_msg(s, 9, p2, false, MSG_STATE_RECEIVED, 4, 300, "incoming");
    CHECK(store_msg_add(s, &in) == 0);
    CHECK(store_msg_raise(s, in.env_id, MSG_STATE_READ, &changed, NULL) == PARLEY_ERR_NOTFOUND);
    CHECK(store_msg_recipient(s, in.env_id, to) == PARLEY_ERR_NOTFOUND); /* incoming: none */
    s_t_idle(s);

    /* history: the last `limit`, oldest first, ties by (outgoing, seq) */
    uint8_t p3[32];
    randombytes_buf(p3, sizeof p3);
    static const uint64_t ts[10] = { 1005, 1002, 1009, 1000, 1007, 1001, 1008, 1003, 1006, 1004 };
    for (int i = 0; i < 10; i++) {
        store_msg_t m = s_t_msg(s, (uint8_t)(0x40 + i), p3, false, MSG_STATE_RECEIVED,
                                (uint64_t)i + 1, ts[i], "h");
        CHECK(store_msg_add(s, &m) == 0);
    }
    store_msg_t mine = s_t_msg(s, 0x60, p3, true, MSG_STATE_STORED, 1, 2000, "mine");
    store_msg_t theirs = s_t_msg(s, 0x61, p3, false, MSG_STATE_RECEIVED, 50, 2000, "theirs");
    CHECK(store_msg_add(s, &mine) == 0);
    CHECK(store_msg_add(s, &theirs) == 0);
    CHECK(store_history(s, p3, 3, &msgs, &n) == 0 && n == 3);
    CHECK(msgs[0].ts_ms == 1009);
    CHECK(msgs[1].ts_ms == 2000 && !msgs[1].outgoing && strcmp(msgs[1].text, "theirs") == 0);
    CHECK(msgs[2].ts_ms == 2000 && msgs[2].outgoing && strcmp(msgs[2].text, "mine") == 0);
    store_msgs_free(msgs, n);
    CHECK(store_history(s, p3, 0, &msgs, &n) == 0 && n == 12);
    for (size_t i = 0; i < 10; i++) {
        CHECK(msgs[i].ts_ms == 1000 + i);
    }
    store_msgs_free(msgs, n);
    CHECK(store_history(s, p3, 100, &msgs, &n) == 0 && n == 12);
    store_msgs_free(msgs, n);
    CHECK(store_history(s, p3, 1, &msgs, &n) == 0 && n == 1 && msgs[0].outgoing);
    store_msgs_free(msgs, n);
    /* pages back: strictly before a message, in the same order, to the start */
    CHECK(store_history_before(s, p3, mine.msg_id, 2, &msgs, &n) == 0 && n == 2);
    CHECK(msgs[0].ts_ms == 1009 && strcmp(msgs[1].text, "theirs") == 0);
    store_msgs_free(msgs, n);
    CHECK(store_history_before(s, p3, theirs.msg_id, 0, &msgs, &n) == 0 && n == 10);
    CHECK(msgs[0].ts_ms == 1000 && msgs[9].ts_ms == 1009);
    uint8_t oldest[STORE_MSG_ID_LEN];
    memcpy(oldest, msgs[0].msg_id, sizeof oldest);
    uint8_t third[STORE_MSG_ID_LEN];
    memcpy(third, msgs[3].msg_id, sizeof third);
    store_msgs_free(msgs, n);
    CHECK(store_history_before(s, p3, third, 2, &msgs, &n) == 0 && n == 2);
    CHECK(msgs[0].ts_ms == 1001 && msgs[1].ts_ms == 1002);
    store_msgs_free(msgs, n);
    CHECK(store_history_before(s, p3, oldest, 5, &msgs, &n) == 0 && n == 0);
    store_msgs_free(msgs, n);
    /* a cursor from another conversation, or none at all, is not found */
    CHECK(store_history_before(s, p2, oldest, 5, &msgs, &n) == PARLEY_ERR_NOTFOUND && n == 0);
    uint8_t nowhere[STORE_MSG_ID_LEN] = { 0 };
    CHECK(store_history_before(s, p3, nowhere, 5, &msgs, &n) == PARLEY_ERR_NOTFOUND);
    uint8_t stranger[32];
    randombytes_buf(stranger, sizeof stranger);
    CHECK(store_history(s, stranger, 5, &msgs, &n) == 0 && n == 0);
    store_msgs_free(msgs, n);
    store_msgs_free(NULL, 0);

    /* conversations: the most recent first, with what is unread in each */
    store_conv_t *convs = NULL;
    CHECK(store_conversations(s, 0, &convs, &n) == 0 && n == 3);
    CHECK(memcmp(convs[0].peer, p3, 32) == 0 && convs[0].unread == 11 && convs[0].last_ms == 2000);
    bool seen_p2 = false;
    for (size_t i = 1; i < n; i++) {
        if (memcmp(convs[i].peer, p2, 32) == 0) {
            seen_p2 = convs[i].unread == 1 && convs[i].last_ms == 300;
        }
    }
    CHECK(seen_p2);
    free(convs);
    CHECK(store_conversations(s, 1, &convs, &n) == 0 && n == 1);
    CHECK(memcmp(convs[0].peer, p3, 32) == 0);
    free(convs);
    s_t_idle(s);
}

static void
s_t_outbox(store_t *s)
{
    /* four envelopes in the log: an outbox row must name one */
    uint8_t author[32];
    uint8_t scope[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(scope, sizeof scope);
    uint8_t ids[4][32];
    for (int i = 0; i < 4; i++) {
        s_t_env_t e;
        s_t_env(&e, author, scope, (uint64_t)i + 1, (uint8_t)i);
        CHECK(store_envelope_put(s, &e.env, e.id, 1) == 0);
        memcpy(ids[i], e.id, 32);
    }

    uint8_t peer[32];
    uint8_t other[32];
    randombytes_buf(peer, sizeof peer);
    randombytes_buf(other, sizeof other);
    CHECK(store_outbox_add(s, ids[3], peer, 10) == 0);
    CHECK(store_outbox_add(s, ids[0], peer, 11) == 0);
    CHECK(store_outbox_add(s, ids[2], peer, 12) == 0);
    CHECK(store_outbox_add(s, ids[3], peer, 13) == 0); /* already pending: keeps its place */
    CHECK(store_outbox_add(s, ids[1], other, 14) == 0);
    uint8_t unknown[32];
    randombytes_buf(unknown, sizeof unknown);
    CHECK(store_outbox_add(s, unknown, peer, 15) == PARLEY_ERR_NOTFOUND);
    s_t_idle(s);

    uint8_t got[8 * 32];
    size_t n = 99;
    CHECK(store_outbox_list(s, peer, 8, got, &n) == 0 && n == 3);
    CHECK(memcmp(got, ids[0], 32) == 0); /* log order, not id or queueing order */
    CHECK(memcmp(got + 32, ids[2], 32) == 0);
    CHECK(memcmp(got + 64, ids[3], 32) == 0);
    CHECK(store_outbox_list(s, peer, 2, got, &n) == 0 && n == 2);
    CHECK(store_outbox_list(s, peer, 0, got, &n) == 0 && n == 0);
    uint8_t who[3 * 32];
    size_t n_who = 0;
    CHECK(store_outbox_peers(s, 3, who, &n_who) == 0 && n_who == 2);
    CHECK(memcmp(who, who + 32, 32) < 0);
    CHECK((memcmp(who, peer, 32) == 0 && memcmp(who + 32, other, 32) == 0)
          || (memcmp(who, other, 32) == 0 && memcmp(who + 32, peer, 32) == 0));
    CHECK(store_outbox_peers(s, 1, who, &n_who) == 0 && n_who == 1);
    CHECK(store_outbox_ack(s, ids[0], peer) == 0);
    CHECK(store_outbox_ack(s, ids[0], peer) == PARLEY_ERR_NOTFOUND);
    CHECK(store_outbox_ack(s, ids[1], peer) == PARLEY_ERR_NOTFOUND); /* it is other's */
    CHECK(store_outbox_list(s, peer, 8, got, &n) == 0 && n == 2);
    CHECK(memcmp(got, ids[2], 32) == 0 && memcmp(got + 32, ids[3], 32) == 0);
    store_stats_t stats;
    CHECK(store_stats(s, &stats) == 0 && stats.outbox == 3);
    s_t_idle(s);
}

/*  STORE_FAULT_MSG_ADD fails one insert with PARLEY_ERR_IO, writes nothing,
 *  and leaves the caller's transaction open; a refused message does not use
 *  the fault up. */
static void
s_t_fault(store_t *s)
{
    uint8_t peer[32];
    randombytes_buf(peer, sizeof peer);
    store_msg_t m = s_t_msg(s, 0x90, peer, true, MSG_STATE_QUEUED, 0, 1, "once");
    store_msg_t bad = s_t_msg(s, 0x91, peer, true, MSG_STATE_QUEUED, 0, 1, NULL);
    store_msg_t *msgs = NULL;
    size_t n = 0;

    store_fault_set(s, STORE_FAULT_MSG_ADD, 1);
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_MALFORMED);
    CHECK(store_msg_add(s, &m) == PARLEY_ERR_IO);
    CHECK(store_msg_queued(s, peer, &msgs, &n) == 0 && n == 0);
    CHECK(store_msg_add(s, &m) == 0);
    CHECK(store_msg_queued(s, peer, &msgs, &n) == 0 && n == 1);
    store_msgs_free(msgs, n);

    store_msg_t m2 = s_t_msg(s, 0x92, peer, true, MSG_STATE_QUEUED, 0, 2, "lost");
    store_msg_t m3 = s_t_msg(s, 0x93, peer, true, MSG_STATE_QUEUED, 0, 3, "kept");
    CHECK(store_begin(s) == 0);
    store_fault_set(s, STORE_FAULT_MSG_ADD, 1);
    CHECK(store_msg_add(s, &m2) == PARLEY_ERR_IO);
    CHECK(store_in_txn(s));
    CHECK(store_msg_add(s, &m3) == 0);
    CHECK(store_commit(s) == 0);
    CHECK(store_msg_queued(s, peer, &msgs, &n) == 0 && n == 2);
    CHECK(msgs[0].msg_id[0] == 0x90 && msgs[1].msg_id[0] == 0x93);
    store_msgs_free(msgs, n);
    s_t_idle(s);
}

/*  Damages one value at a time through a raw connection and checks that the
 *  call reading it says PARLEY_ERR_MALFORMED, leaves its outputs empty, and
 *  that a repaired row reads again. */
static void
s_t_corrupt(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "corrupt.db", path, sizeof path);
    uint8_t pk[32];
    randombytes_buf(pk, sizeof pk);
    store_msg_t m = s_t_msg(s, 1, pk, true, MSG_STATE_STORED, 1, 10, "text");
    CHECK(store_msg_add(s, &m) == 0);
    store_msg_t *msgs = NULL;
    size_t n = 0;
    bool changed = false;

    s_t_raw(path, "UPDATE messages SET text = x'6869'"); /* a blob, not text */
    CHECK(store_history(s, pk, 0, &msgs, &n) == PARLEY_ERR_MALFORMED);
    CHECK(msgs == NULL && n == 0);
    s_t_raw(path, "UPDATE messages SET text = CAST(x'41004142' AS TEXT)");
    CHECK(store_history(s, pk, 0, &msgs, &n) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE messages SET text = 'ok', msg_id = x'01'");
    CHECK(store_history(s, pk, 0, &msgs, &n) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE messages SET msg_id = zeroblob(16), state = 7");
    store_msg_t mout;
    CHECK(store_msg_raise(s, m.env_id, MSG_STATE_READ, &changed, &mout) == PARLEY_ERR_MALFORMED);
    CHECK(mout.text == NULL);
    s_t_raw(path, "UPDATE messages SET state = 0"); /* QUEUED yet with an envelope */
    CHECK(store_history(s, pk, 0, &msgs, &n) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE messages SET state = 1, outgoing = 2");
    CHECK(store_history(s, pk, 0, &msgs, &n) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE messages SET outgoing = 1, ts_ms = -1");
    CHECK(store_history(s, pk, 0, &msgs, &n) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE messages SET ts_ms = 10, expires_ms = -1");
    CHECK(store_history(s, pk, 0, &msgs, &n) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE messages SET expires_ms = 0");
    CHECK(store_history(s, pk, 0, &msgs, &n) == 0 && n == 1); /* repaired: readable again */
    store_msgs_free(msgs, n);
    s_t_idle(s);
    store_destroy(&s);
}

void
store_msgs_test(bool verbose)
{
    s_t_kit_t kit;
    s_t_begin(&kit, "store_msgs", verbose);
    char path[512];
    store_t *s = s_t_open_in(&kit, "msgs.db", path, sizeof path);
    s_t_idle(s);
    s_t_say(&kit, "messages: queue, attach, raise, history");
    s_t_messages(s);
    s_t_say(&kit, "outbox");
    s_t_outbox(s);
    s_t_say(&kit, "fault injection: message add");
    s_t_fault(s);
    store_destroy(&s);
    s_t_say(&kit, "damaged rows");
    s_t_corrupt(&kit);
    s_t_end(&kit);
}
