/*  store/store_log.c — the envelope log, the decrypted message history and
 *  the outbox (tables envelopes, equivocations, messages, outbox; schema in
 *  store.c).
 *
 *  Invariants:
 *  - an envelope is stored at most once per id and at most once per
 *    (author, scope, seq); a second envelope for a held (author, scope, seq)
 *    goes to the equivocations table only;
 *  - a message's env_id is NULL exactly while it is QUEUED, and an outgoing
 *    message's state only ever rises;
 *  - an outbox row names an envelope in the log (foreign key).
 */
#include "store_int.h"

/* ---- envelopes ---- */

static int
s_env_bind(sqlite3_stmt *st, const envelope_t *env, const uint8_t id[32], uint64_t received_ms)
{
    int rc = s_bind_blob(st, 1, id, 32);
    if (rc == 0) {
        rc = s_bind_blob(st, 2, env->author, 32);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 3, env->scope, 32);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 4, env->seq);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 5, env->ts_ms);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 6, env->expires_ms);
    }
    if (rc == 0) {
        rc = s_bind_i64(st, 7, env->kind);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 8, env->bytes, env->bytes_len);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 9, received_ms);
    }
    return rc;
}

/*  The id held for env's (author, scope, seq): 0 and *found, or an error. */
static int
s_env_slot(store_t *self, const envelope_t *env, uint8_t held[32], bool *found)
{
    sqlite3_stmt *st = self->st[ST_ENV_SLOT];
    int rc = s_bind_blob(st, 1, env->author, 32);
    if (rc == 0) {
        rc = s_bind_blob(st, 2, env->scope, 32);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 3, env->seq);
    }
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
    sqlite3_stmt *st = self->st[ST_EQUIV_PUT];
    int rc = s_bind_blob(st, 1, id, 32);
    if (rc == 0) {
        rc = s_bind_blob(st, 2, env->author, 32);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 3, env->scope, 32);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 4, env->seq);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 5, held, 32);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 6, env->bytes, env->bytes_len);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 7, received_ms);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    /* OR IGNORE: the same forgery seen twice is one piece of evidence */
    return s_run(st, NULL);
}

static int
s_env_has(store_t *self, const uint8_t id[32], bool *found)
{
    sqlite3_stmt *st = self->st[ST_ENV_HAS];
    int rc = s_bind_blob(st, 1, id, 32);
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
    sqlite3_stmt *st = self->st[ST_ENV_PUT];
    int rc = s_env_bind(st, env, id, received_ms);
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    rc = s_run(st, NULL);
    if (rc != 0) {
        return rc;
    }
    if (sqlite3_changes(self->db) == 1) {
        st = self->st[ST_SCOPE_AUTHOR_PUT];
        rc = s_bind_blob(st, 1, env->scope, 32);
        if (rc == 0) {
            rc = s_bind_blob(st, 2, env->author, 32);
        }
        if (rc != 0) {
            s_reset(st);
            return rc;
        }
        return s_run(st, NULL);
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
    sqlite3_stmt *st = self->st[ST_ENV_GET];
    bool row = false;
    int rc = s_bind_blob(st, 1, id, 32);
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
    sqlite3_stmt *st = self->st[ST_ENV_LAST_SEQ];
    bool row = false;
    int rc = s_bind_blob(st, 1, author, 32);
    if (rc == 0) {
        rc = s_bind_blob(st, 2, scope, 32);
    }
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
    sqlite3_stmt *st = self->st[ST_ENV_EACH];
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

/*  Reads the S_MSG_COLS of the current row into *m; m->text is malloc'd. */
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

int
store_msg_add(store_t *self, const store_msg_t *msg)
{
    if (msg == NULL || msg->text == NULL
        || !s_msg_consistent(msg->state, msg->outgoing, msg->has_env)) {
        return PARLEY_ERR_MALFORMED;
    }
    if (s_fault(self, STORE_FAULT_MSG_ADD)) {
        return PARLEY_ERR_IO;
    }
    size_t len = strnlen(msg->text, (size_t)PARLEY_TEXT_MAX + 1);
    if (len > PARLEY_TEXT_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    sqlite3_stmt *st = self->st[ST_MSG_ADD];
    int rc = s_bind_blob(st, 1, msg->msg_id, STORE_MSG_ID_LEN);
    if (rc == 0) {
        rc = msg->has_env ? s_bind_blob(st, 2, msg->env_id, 32) : s_bind_null(st, 2);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 3, msg->peer, 32);
    }
    if (rc == 0) {
        rc = s_bind_i64(st, 4, msg->outgoing ? 1 : 0);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 5, msg->seq);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 6, msg->ts_ms);
    }
    if (rc == 0) {
        rc = s_bind_i64(st, 7, msg->state);
    }
    if (rc == 0) {
        rc = s_bind_text(st, 8, msg->text, len);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    /* a constraint here is a msg_id or env_id already in use: EXISTS */
    return s_run(st, NULL);
}

int
store_msg_attach(store_t *self, const uint8_t msg_id[STORE_MSG_ID_LEN], const uint8_t env_id[32],
                 uint64_t seq, uint64_t ts_ms)
{
    sqlite3_stmt *st = self->st[ST_MSG_ATTACH];
    int rc = s_bind_blob(st, 1, msg_id, STORE_MSG_ID_LEN);
    if (rc == 0) {
        rc = s_bind_blob(st, 2, env_id, 32);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 3, seq);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 4, ts_ms);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    rc = s_run(st, NULL); /* EXISTS if env_id belongs to another message */
    if (rc != 0 || sqlite3_changes(self->db) == 1) {
        return rc;
    }
    /* nothing updated: either no such message or it is no longer QUEUED */
    st = self->st[ST_MSG_STATE];
    bool row = false;
    rc = s_bind_blob(st, 1, msg_id, STORE_MSG_ID_LEN);
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
    sqlite3_stmt *st = self->st[ST_MSG_RAISE];
    int rc = s_bind_blob(st, 1, env_id, 32);
    if (rc == 0) {
        rc = s_bind_i64(st, 2, state);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    rc = s_run(st, NULL);
    if (rc != 0) {
        return rc;
    }
    *changed = sqlite3_changes(self->db) == 1;

    st = self->st[ST_MSG_BY_ENV];
    bool row = false;
    rc = s_bind_blob(st, 1, env_id, 32);
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
store_msg_queued(store_t *self, const uint8_t peer[32], store_msg_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = self->st[ST_MSG_QUEUED];
    int rc = s_bind_blob(st, 1, peer, 32);
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
    sqlite3_stmt *st = self->st[ST_MSG_QUEUED_PEERS];
    int rc = s_collect(st, 32, false, s_key_row, NULL, (void **)peers, n);
    s_reset(st);
    return rc;
}

int
store_history(store_t *self, const uint8_t peer[32], size_t limit, store_msg_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = self->st[ST_MSG_HISTORY];
    /* LIMIT -1 is SQLite's "no limit"; a limit beyond INT64_MAX is no limit too */
    int64_t lim = (limit == 0 || (uint64_t)limit > (uint64_t)INT64_MAX) ? -1 : (int64_t)limit;
    int rc = s_bind_blob(st, 1, peer, 32);
    if (rc == 0) {
        rc = s_bind_i64(st, 2, lim);
    }
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
    sqlite3_stmt *st = self->st[ST_OUTBOX_ADD];
    int rc = s_bind_blob(st, 1, peer, 32);
    if (rc == 0) {
        rc = s_bind_blob(st, 2, env_id, 32);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 3, now_ms);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    int src = SQLITE_OK;
    rc = s_run(st, &src);
    if (src == SQLITE_CONSTRAINT_FOREIGNKEY) {
        return PARLEY_ERR_NOTFOUND; /* OR IGNORE does not cover foreign keys */
    }
    return rc;
}

int
store_outbox_list(store_t *self, const uint8_t peer[32], size_t max, uint8_t *ids, size_t *n)
{
    *n = 0;
    if (max == 0) {
        return 0;
    }
    sqlite3_stmt *st = self->st[ST_OUTBOX_LIST];
    int64_t lim = (uint64_t)max > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)max;
    int rc = s_bind_blob(st, 1, peer, 32);
    if (rc == 0) {
        rc = s_bind_i64(st, 2, lim);
    }
    size_t count = 0;
    while (rc == 0 && count < max) {
        bool row = false;
        rc = s_step(st, &row);
        if (rc != 0 || !row) {
            break;
        }
        rc = s_col_blob(st, 0, ids + count * 32, 32);
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
store_outbox_ack(store_t *self, const uint8_t env_id[32], const uint8_t peer[32])
{
    sqlite3_stmt *st = self->st[ST_OUTBOX_ACK];
    int rc = s_bind_blob(st, 1, peer, 32);
    if (rc == 0) {
        rc = s_bind_blob(st, 2, env_id, 32);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    rc = s_run(st, NULL);
    if (rc == 0 && sqlite3_changes(self->db) == 0) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    return rc;
}
