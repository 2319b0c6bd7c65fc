/*  store/store_chan.c — what a member derives from its channels and keeps
 *  (see store.h, proto/SPEC.md §21).
 *
 *  channels     one row per channel this node is or was in: state, the
 *               settings message applied (name, topic, its place) and our
 *               read marker
 *  chan_keys    the epoch keys taken or held aside (secret)
 *  chan_chains  each sender's chain state in each epoch key (secret)
 *  chan_msgs    the messages opened, ordered by (ts raised, author, seq)
 *  chan_marks   aggregated receipts: member holds / read author up to seq
 *  chan_queue   our messages waiting for the current epoch's key
 *
 *  The order of a channel: a message's ts is raised to the greatest ts of
 *  its author's earlier messages (by seq), and a late earlier message
 *  raises the later ones it passes. Once a node holds the same messages as
 *  another, both have the same ts for each, whatever order they came in.
 *  So an author's ts never falls as its seq grows: the greatest ts before a
 *  seq is that of the message just before it, one index seek
 *  (chan_msgs_author), and raising touches only the author's later ones.
 */
#include "store.h"
#include "store_int.h"
#include <sodium.h>

enum {
    ST_CH_PUT,
    ST_CH_GET,
    ST_CH_LIST,
    ST_KEY_PUT,
    ST_KEY_LIST,
    ST_KEY_DROP,
    ST_CHAIN_DROP,
    ST_CHAIN_GET,
    ST_CHAIN_PUT,
    ST_MSG_PREV,
    ST_MSG_ADD,
    ST_MSG_RAISE,
    ST_MSG_HIST,
    ST_MSG_AFTER,
    ST_MARK_GET,
    ST_MARK_PUT,
    ST_MARK_COUNT,
    ST_MSG_TOPS,
    ST_Q_ADD,
    ST_Q_LIST,
    ST_Q_COUNT,
    ST_Q_DROP,
    ST_Q_DROP_ALL,
    ST_CONTROL_SCOPES,
    ST_CHAN_COUNT
};

#define S_CH_COLS                                                                                  \
    "id, state, since_ms, name, topic, meta_ts, meta_author, meta_seq, read_ts,"                   \
    " read_author, read_seq"
#define S_MSG_COLS "channel, env_id, ts_ms, author, seq, sent_ms, expires_ms, text"

static const char *const s_sql[ST_CHAN_COUNT] = {
    [ST_CH_PUT] = "INSERT INTO channels (" S_CH_COLS ")"
                  " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
                  " ON CONFLICT (id) DO UPDATE SET state = excluded.state,"
                  " since_ms = excluded.since_ms, name = excluded.name, topic = excluded.topic,"
                  " meta_ts = excluded.meta_ts, meta_author = excluded.meta_author,"
                  " meta_seq = excluded.meta_seq, read_ts = excluded.read_ts,"
                  " read_author = excluded.read_author, read_seq = excluded.read_seq",
    [ST_CH_GET] = "SELECT " S_CH_COLS " FROM channels WHERE id = ?1",
    [ST_CH_LIST] = "SELECT " S_CH_COLS " FROM channels ORDER BY id",
    [ST_KEY_PUT] = "INSERT INTO chan_keys (channel, epoch, key_id, key, author, binding, bound,"
                   " added_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                   " ON CONFLICT (channel, epoch, key_id) DO UPDATE SET bound = excluded.bound",
    [ST_KEY_LIST] = "SELECT channel, epoch, key_id, key, author, binding, bound, added_ms"
                    " FROM chan_keys WHERE channel = ?1 ORDER BY epoch, key_id",
    [ST_KEY_DROP] = "DELETE FROM chan_keys WHERE channel = ?1 AND epoch < ?2",
    [ST_CHAIN_DROP] = "DELETE FROM chan_chains WHERE channel = ?1 AND epoch < ?2",
    [ST_CHAIN_GET] = "SELECT state FROM chan_chains"
                     " WHERE channel = ?1 AND epoch = ?2 AND key_id = ?3 AND sender = ?4",
    [ST_CHAIN_PUT] = "INSERT INTO chan_chains (channel, epoch, key_id, sender, state)"
                     " VALUES (?1, ?2, ?3, ?4, ?5)"
                     " ON CONFLICT (channel, epoch, key_id, sender) DO UPDATE SET"
                     " state = excluded.state",
    [ST_MSG_PREV] = "SELECT ts_ms FROM chan_msgs"
                    " WHERE channel = ?1 AND author = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT 1",
    [ST_MSG_ADD] = "INSERT INTO chan_msgs (" S_MSG_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_MSG_RAISE] = "UPDATE chan_msgs SET ts_ms = ?4"
                     " WHERE channel = ?1 AND author = ?2 AND seq > ?3 AND ts_ms < ?4",
    [ST_MSG_HIST] = "SELECT " S_MSG_COLS " FROM chan_msgs"
                    " WHERE channel = ?1 AND (ts_ms, author, seq) < (?2, ?3, ?4)"
                    " ORDER BY ts_ms DESC, author DESC, seq DESC LIMIT ?5",
    [ST_MSG_AFTER] = "SELECT count(*) FROM chan_msgs"
                     " WHERE channel = ?1 AND (ts_ms, author, seq) > (?2, ?3, ?4) AND author != ?5",
    [ST_MARK_GET] = "SELECT seq FROM chan_marks"
                    " WHERE channel = ?1 AND author = ?2 AND status = ?3 AND member = ?4",
    [ST_MARK_PUT] =
        "INSERT INTO chan_marks (channel, author, status, member, seq)"
        " VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (channel, author, status, member) DO UPDATE SET seq = excluded.seq",
    [ST_MARK_COUNT] = "SELECT count(*) FROM chan_marks"
                      " WHERE channel = ?1 AND author = ?2 AND status = ?3 AND seq >= ?4"
                      " AND member != ?2",
    [ST_MSG_TOPS] = "SELECT author, max(seq) FROM chan_msgs WHERE channel = ?1 AND author != ?2"
                    " GROUP BY author ORDER BY author LIMIT ?3",
    [ST_Q_ADD] = "INSERT INTO chan_queue (channel, ts_ms, text) VALUES (?1, ?2, ?3)",
    [ST_Q_LIST] = "SELECT n, channel, ts_ms, text FROM chan_queue WHERE channel = ?1"
                  " ORDER BY n LIMIT ?2",
    [ST_Q_COUNT] = "SELECT count(*) FROM chan_queue WHERE channel = ?1",
    [ST_Q_DROP] = "DELETE FROM chan_queue WHERE n = ?1 AND channel = ?2",
    [ST_Q_DROP_ALL] = "DELETE FROM chan_queue WHERE channel = ?1",
    [ST_CONTROL_SCOPES] = "SELECT DISTINCT scope FROM envelopes WHERE kind = 3 ORDER BY scope"
                          " LIMIT ?1",
};

const store_sql_t store_chan_sql = { "store_chan.c", s_sql, ST_CHAN_COUNT };

static sqlite3_stmt *
s_st(store_t *self, int which)
{
    return self->st[STORE_PART_CHAN][which];
}

/* ---- channels ---- */

int
store_chan_put(store_t *self, const store_chan_t *c)
{
    size_t name_len = strnlen(c->name, sizeof c->name);
    size_t topic_len = strnlen(c->topic, sizeof c->topic);
    if ((c->state != STORE_CHAN_MEMBER && c->state != STORE_CHAN_GONE) || name_len == sizeof c->name
        || topic_len == sizeof c->topic) {
        return PARLEY_ERR_MALFORMED;
    }
    sqlite3_stmt *st = s_st(self, ST_CH_PUT);
    int rc = S_BIND(st, S_B32(c->id), S_I64((int64_t)c->state), S_U64(c->since_ms),
                    S_TEXT(c->name, name_len), S_TEXT(c->topic, topic_len), S_U64(c->meta.ts_ms),
                    S_B32(c->meta.author), S_U64(c->meta.seq), S_U64(c->read.ts_ms),
                    S_B32(c->read.author), S_U64(c->read.seq));
    return rc == 0 ? s_run(st, NULL) : rc;
}

static int
s_read_chan(sqlite3_stmt *st, store_chan_t *c)
{
    memset(c, 0, sizeof *c);
    int64_t state = 0;
    int rc = s_col_blob(st, 0, c->id, 32);
    if (rc == 0) {
        rc = s_col_range(st, 1, STORE_CHAN_MEMBER, STORE_CHAN_GONE, &state);
    }
    if (rc == 0) {
        c->state = (int)state;
        rc = s_col_u64(st, 2, &c->since_ms);
    }
    if (rc == 0) {
        rc = s_col_text_into(st, 3, c->name, sizeof c->name);
    }
    if (rc == 0) {
        rc = s_col_text_into(st, 4, c->topic, sizeof c->topic);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 5, &c->meta.ts_ms);
    }
    if (rc == 0) {
        rc = s_col_blob(st, 6, c->meta.author, 32);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 7, &c->meta.seq);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 8, &c->read.ts_ms);
    }
    if (rc == 0) {
        rc = s_col_blob(st, 9, c->read.author, 32);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 10, &c->read.seq);
    }
    return rc;
}

int
store_chan_get(store_t *self, const uint8_t id[32], store_chan_t *out)
{
    sqlite3_stmt *st = s_st(self, ST_CH_GET);
    bool row = false;
    int rc = S_BIND(st, S_B32(id));
    rc = rc == 0 ? s_step(st, &row) : rc;
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    if (rc == 0) {
        rc = s_read_chan(st, out);
    }
    s_reset(st);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int
store_chan_list(store_t *self, store_chan_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    sqlite3_stmt *st = s_st(self, ST_CH_LIST);
    bool row = true;
    int rc = 0;
    while (rc == 0 && (rc = s_step(st, &row)) == 0 && row) {
        rc = s_grow((void **)out, &cap, *n + 1, sizeof **out, false);
        if (rc == 0) {
            rc = s_read_chan(st, &(*out)[*n]);
        }
        if (rc == 0) {
            (*n)++;
        }
    }
    s_reset(st);
    if (rc != 0) {
        free(*out);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- keys and chains ---- */

int
store_chan_key_put(store_t *self, const store_chan_key_t *k)
{
    sqlite3_stmt *st = s_st(self, ST_KEY_PUT);
    int rc =
        S_BIND(st, S_B32(k->channel), S_I64((int64_t)k->epoch), S_BLOB(k->key_id, 8), S_B32(k->key),
               S_B32(k->author), S_B32(k->binding), S_BOOL(k->bound), S_U64(k->added_ms));
    return rc == 0 ? s_run(st, NULL) : rc;
}

int
store_chan_key_list(store_t *self, const uint8_t channel[32], store_chan_key_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    sqlite3_stmt *st = s_st(self, ST_KEY_LIST);
    bool row = true;
    int rc = S_BIND(st, S_B32(channel));
    while (rc == 0 && (rc = s_step(st, &row)) == 0 && row) {
        rc = s_grow((void **)out, &cap, *n + 1, sizeof **out, true);
        store_chan_key_t *k = rc == 0 ? &(*out)[*n] : NULL;
        if (k) {
            memset(k, 0, sizeof *k);
            rc = s_col_blob(st, 0, k->channel, 32);
        }
        if (rc == 0) {
            rc = s_col_u32(st, 1, &k->epoch);
        }
        if (rc == 0) {
            rc = s_col_blob(st, 2, k->key_id, 8);
        }
        if (rc == 0) {
            rc = s_col_blob(st, 3, k->key, 32);
        }
        if (rc == 0) {
            rc = s_col_blob(st, 4, k->author, 32);
        }
        if (rc == 0) {
            rc = s_col_blob(st, 5, k->binding, 32);
        }
        if (rc == 0) {
            rc = s_col_bool(st, 6, &k->bound);
        }
        if (rc == 0) {
            rc = s_col_u64(st, 7, &k->added_ms);
        }
        if (rc == 0) {
            (*n)++;
        }
    }
    s_reset(st);
    if (rc != 0) {
        store_chan_keys_free(*out, cap);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void
store_chan_keys_free(store_chan_key_t *keys, size_t n)
{
    if (keys) {
        sodium_memzero(keys, n * sizeof *keys);
        free(keys);
    }
}

int
store_chan_key_drop(store_t *self, const uint8_t channel[32], uint32_t below, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_KEY_DROP);
    int rc = S_BIND(st, S_B32(channel), S_I64((int64_t)below));
    rc = rc == 0 ? s_run(st, NULL) : rc;
    if (rc == 0) {
        *n = (size_t)sqlite3_changes(self->db);
        st = s_st(self, ST_CHAIN_DROP);
        rc = S_BIND(st, S_B32(channel), S_I64((int64_t)below));
        rc = rc == 0 ? s_run(st, NULL) : rc;
    }
    return rc;
}

int
store_chan_chain_get(store_t *self, const uint8_t channel[32], uint32_t epoch,
                     const uint8_t key_id[8], const uint8_t sender[32], uint8_t *buf, size_t cap,
                     size_t *len)
{
    *len = 0;
    sqlite3_stmt *st = s_st(self, ST_CHAIN_GET);
    bool row = false;
    int rc = S_BIND(st, S_B32(channel), S_I64((int64_t)epoch), S_BLOB(key_id, 8), S_B32(sender));
    rc = rc == 0 ? s_step(st, &row) : rc;
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    if (rc == 0) {
        int n = sqlite3_column_bytes(st, 0);
        const void *p = sqlite3_column_blob(st, 0);
        if (sqlite3_column_type(st, 0) != SQLITE_BLOB || n <= 0 || (size_t)n > cap || !p) {
            rc = PARLEY_ERR_MALFORMED;
        } else {
            memcpy(buf, p, (size_t)n);
            *len = (size_t)n;
        }
    }
    s_reset(st);
    return rc;
}

int
store_chan_chain_put(store_t *self, const uint8_t channel[32], uint32_t epoch,
                     const uint8_t key_id[8], const uint8_t sender[32], const uint8_t *buf,
                     size_t len)
{
    if (len == 0 || len > STORE_CHAN_CHAIN_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    sqlite3_stmt *st = s_st(self, ST_CHAIN_PUT);
    int rc = S_BIND(st, S_B32(channel), S_I64((int64_t)epoch), S_BLOB(key_id, 8), S_B32(sender),
                    S_BLOB(buf, len));
    return rc == 0 ? s_run(st, NULL) : rc;
}

/* ---- messages ---- */

int
store_chan_msg_add(store_t *self, const store_chan_msg_t *m)
{
    size_t text_len = m->text ? strlen(m->text) : 0;
    if (!m->text || m->pos.seq == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    //  Raised to the author's earlier messages...
    sqlite3_stmt *st = s_st(self, ST_MSG_PREV);
    bool row = false;
    uint64_t prev = 0;
    int rc = S_BIND(st, S_B32(m->channel), S_B32(m->pos.author), S_U64(m->pos.seq));
    rc = rc == 0 ? s_step(st, &row) : rc;
    if (rc == 0 && row) {
        rc = s_col_u64(st, 0, &prev);
    }
    s_reset(st);
    uint64_t ts = m->pos.ts_ms > prev ? m->pos.ts_ms : prev;
    if (rc == 0) {
        int raw = 0;
        st = s_st(self, ST_MSG_ADD);
        rc = S_BIND(st, S_B32(m->channel), S_B32(m->env_id), S_U64(ts), S_B32(m->pos.author),
                    S_U64(m->pos.seq), S_U64(m->sent_ms), S_U64(m->expires_ms),
                    S_TEXT(m->text, text_len));
        rc = rc == 0 ? s_run(st, &raw) : rc;
    }
    //  ... and the later ones it passes raised to it.
    if (rc == 0) {
        st = s_st(self, ST_MSG_RAISE);
        rc = S_BIND(st, S_B32(m->channel), S_B32(m->pos.author), S_U64(m->pos.seq), S_U64(ts));
        rc = rc == 0 ? s_run(st, NULL) : rc;
    }
    return rc;
}

static int
s_read_msg(sqlite3_stmt *st, store_chan_msg_t *m)
{
    memset(m, 0, sizeof *m);
    int rc = s_col_blob(st, 0, m->channel, 32);
    if (rc == 0) {
        rc = s_col_blob(st, 1, m->env_id, 32);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 2, &m->pos.ts_ms);
    }
    if (rc == 0) {
        rc = s_col_blob(st, 3, m->pos.author, 32);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 4, &m->pos.seq);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 5, &m->sent_ms);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 6, &m->expires_ms);
    }
    const char *text = NULL;
    size_t len = 0;
    if (rc == 0) {
        rc = s_col_text(st, 7, PARLEY_TEXT_MAX, &text, &len);
    }
    if (rc == 0) {
        m->text = malloc(len + 1);
        rc = m->text ? 0 : PARLEY_ERR_NOMEM;
    }
    if (rc == 0) {
        memcpy(m->text, text, len);
        m->text[len] = '\0';
    }
    return rc;
}

int
store_chan_history(store_t *self, const uint8_t channel[32], const store_chan_pos_t *before,
                   size_t limit, store_chan_msg_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    static const uint8_t s_top[32] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
    uint64_t ts = before ? before->ts_ms : (uint64_t)INT64_MAX;
    uint64_t seq = before ? before->seq : (uint64_t)INT64_MAX;
    int64_t lim = limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit;
    sqlite3_stmt *st = s_st(self, ST_MSG_HIST);
    bool row = true;
    int rc = S_BIND(st, S_B32(channel), S_U64(ts), S_B32(before ? before->author : s_top),
                    S_U64(seq), S_I64(lim));
    while (rc == 0 && (rc = s_step(st, &row)) == 0 && row) {
        rc = s_grow((void **)out, &cap, *n + 1, sizeof **out, false);
        if (rc == 0) {
            rc = s_read_msg(st, &(*out)[*n]);
            if (rc != 0) {
                free((*out)[*n].text);
            }
        }
        if (rc == 0) {
            (*n)++;
        }
    }
    s_reset(st);
    if (rc != 0) {
        store_chan_msgs_free(*out, *n);
        *out = NULL;
        *n = 0;
        return rc;
    }
    for (size_t i = 0; i < *n / 2; i++) { // newest first from the query: oldest first out
        store_chan_msg_t t = (*out)[i];
        (*out)[i] = (*out)[*n - 1 - i];
        (*out)[*n - 1 - i] = t;
    }
    return 0;
}

int
store_chan_count_after(store_t *self, const uint8_t channel[32], const store_chan_pos_t *pos,
                       const uint8_t self_pk[32], uint64_t *n)
{
    static const uint8_t s_zero[32] = { 0 };
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_MSG_AFTER);
    bool row = false;
    int rc = S_BIND(st, S_B32(channel), S_U64(pos ? pos->ts_ms : 0),
                    S_B32(pos ? pos->author : s_zero), S_U64(pos ? pos->seq : 0), S_B32(self_pk));
    rc = rc == 0 ? s_step(st, &row) : rc;
    if (rc == 0 && row) {
        rc = s_col_u64(st, 0, n);
    }
    s_reset(st);
    return rc;
}

int
store_chan_tops(store_t *self, const uint8_t channel[32], const uint8_t except[32],
                store_chan_pos_t *out, size_t cap, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_MSG_TOPS);
    bool row = true;
    int rc = S_BIND(st, S_B32(channel), S_B32(except), S_I64(cap > INT64_MAX ? -1 : (int64_t)cap));
    while (rc == 0 && *n < cap && (rc = s_step(st, &row)) == 0 && row) {
        memset(&out[*n], 0, sizeof out[*n]);
        rc = s_col_blob(st, 0, out[*n].author, 32);
        if (rc == 0) {
            rc = s_col_u64(st, 1, &out[*n].seq);
        }
        if (rc == 0) {
            (*n)++;
        }
    }
    s_reset(st);
    if (rc != 0) {
        *n = 0;
    }
    return rc;
}

void
store_chan_msgs_free(store_chan_msg_t *msgs, size_t n)
{
    for (size_t i = 0; msgs && i < n; i++) {
        free(msgs[i].text);
    }
    free(msgs);
}

/* ---- receipt marks ---- */

int
store_chan_mark_raise(store_t *self, const uint8_t channel[32], const uint8_t member[32],
                      const uint8_t author[32], uint8_t status, uint64_t seq, bool *changed)
{
    *changed = false;
    sqlite3_stmt *st = s_st(self, ST_MARK_GET);
    bool row = false;
    uint64_t held = 0;
    int rc = S_BIND(st, S_B32(channel), S_B32(author), S_I64((int64_t)status), S_B32(member));
    rc = rc == 0 ? s_step(st, &row) : rc;
    if (rc == 0 && row) {
        rc = s_col_u64(st, 0, &held);
    }
    s_reset(st);
    if (rc != 0 || seq <= held) {
        return rc;
    }
    st = s_st(self, ST_MARK_PUT);
    rc = S_BIND(st, S_B32(channel), S_B32(author), S_I64((int64_t)status), S_B32(member),
                S_U64(seq));
    rc = rc == 0 ? s_run(st, NULL) : rc;
    *changed = rc == 0;
    return rc;
}

int
store_chan_mark_count(store_t *self, const uint8_t channel[32], const uint8_t author[32],
                      uint8_t status, uint64_t seq, uint64_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_MARK_COUNT);
    bool row = false;
    int rc = S_BIND(st, S_B32(channel), S_B32(author), S_I64((int64_t)status), S_U64(seq));
    rc = rc == 0 ? s_step(st, &row) : rc;
    if (rc == 0 && row) {
        rc = s_col_u64(st, 0, n);
    }
    s_reset(st);
    return rc;
}

int
store_chan_control_scopes(store_t *self, uint8_t (*out)[32], size_t cap, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_CONTROL_SCOPES);
    bool row = true;
    int rc = S_BIND(st, S_I64(cap > INT64_MAX ? INT64_MAX : (int64_t)cap));
    while (rc == 0 && *n < cap && (rc = s_step(st, &row)) == 0 && row) {
        if (sqlite3_column_bytes(st, 0) != 32) {
            rc = PARLEY_ERR_CORRUPT;
        } else {
            memcpy(out[(*n)++], sqlite3_column_blob(st, 0), 32);
        }
    }
    s_reset(st);
    return rc;
}

/* ---- the queue ---- */

int
store_chan_queue_add(store_t *self, const uint8_t channel[32], uint64_t ts_ms, const char *text,
                     int64_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_Q_ADD);
    int rc = S_BIND(st, S_B32(channel), S_U64(ts_ms), S_TEXT(text, strlen(text)));
    rc = rc == 0 ? s_run(st, NULL) : rc;
    if (rc == 0) {
        *n = (int64_t)sqlite3_last_insert_rowid(self->db);
    }
    return rc;
}

void
store_chan_queued_free(store_chan_queued_t *q, size_t n)
{
    for (size_t i = 0; q && i < n; i++) {
        if (q[i].text) {
            sodium_memzero(q[i].text, strlen(q[i].text));
            free(q[i].text);
        }
    }
    free(q);
}

int
store_chan_queue_list(store_t *self, const uint8_t channel[32], size_t limit,
                      store_chan_queued_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    size_t cap = 0;
    int64_t lim = limit == 0 || limit > INT64_MAX ? -1 : (int64_t)limit;
    sqlite3_stmt *st = s_st(self, ST_Q_LIST);
    bool row = true;
    int rc = S_BIND(st, S_B32(channel), S_I64(lim));
    while (rc == 0 && (rc = s_step(st, &row)) == 0 && row) {
        rc = s_grow((void **)out, &cap, *n + 1, sizeof **out, false);
        store_chan_queued_t *q = rc == 0 ? &(*out)[*n] : NULL;
        if (q && (sqlite3_column_bytes(st, 1) != 32 || sqlite3_column_int64(st, 2) < 0)) {
            rc = PARLEY_ERR_CORRUPT;
        }
        if (q && rc == 0) {
            q->n = sqlite3_column_int64(st, 0);
            memcpy(q->channel, sqlite3_column_blob(st, 1), 32);
            q->ts_ms = (uint64_t)sqlite3_column_int64(st, 2);
            const char *text = (const char *)sqlite3_column_text(st, 3);
            q->text = text ? strdup(text) : NULL;
            rc = q->text ? 0 : PARLEY_ERR_NOMEM;
        }
        if (rc == 0) {
            (*n)++;
        }
    }
    s_reset(st);
    if (rc != 0) {
        store_chan_queued_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

int
store_chan_queue_count(store_t *self, const uint8_t channel[32], uint64_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_Q_COUNT);
    bool row = false;
    int rc = S_BIND(st, S_B32(channel));
    rc = rc == 0 ? s_step(st, &row) : rc;
    if (rc == 0 && row) {
        *n = (uint64_t)sqlite3_column_int64(st, 0);
    }
    s_reset(st);
    return rc;
}

int
store_chan_queue_drop(store_t *self, const uint8_t channel[32], int64_t n)
{
    sqlite3_stmt *st = s_st(self, n < 0 ? ST_Q_DROP_ALL : ST_Q_DROP);
    int rc = n < 0 ? S_BIND(st, S_B32(channel)) : S_BIND(st, S_I64(n), S_B32(channel));
    return rc == 0 ? s_run(st, NULL) : rc;
}

/* ---- self-test ---- */

#include "store_testkit.h"

static void
s_t_msg(store_t *s, const uint8_t chan[32], uint8_t author, uint64_t seq, uint64_t ts,
        const char *text)
{
    store_chan_msg_t m;
    memset(&m, 0, sizeof m);
    memcpy(m.channel, chan, 32);
    memset(m.env_id, 0, 32);
    m.env_id[0] = author;
    m.env_id[1] = (uint8_t)seq;
    memset(m.pos.author, author, 32);
    m.pos.seq = seq;
    m.pos.ts_ms = ts;
    m.sent_ms = ts;
    m.text = (char *)text;
    CHECK(store_chan_msg_add(s, &m) == 0);
}

static void
s_t_messages(s_t_kit_t *kit, store_t *s, const uint8_t chan[32])
{
    s_t_say(kit, "messages: ordered by (ts raised to the author's earlier ones, author, seq)");
    s_t_msg(s, chan, 0xA0, 1, 1000, "a1");
    s_t_msg(s, chan, 0xB0, 1, 1500, "b1");
    s_t_msg(s, chan, 0xA0, 3, 1200, "a3"); /* a's seq 2 not here yet */
    s_t_msg(s, chan, 0xA0, 2, 2000, "a2"); /* late, and its clock ran ahead: a3 follows it */
    s_t_msg(s, chan, 0xB0, 2, 1400, "b2"); /* raised to b1's 1500 */
    store_chan_msg_t *m = NULL;
    size_t n = 0;
    CHECK(store_chan_history(s, chan, NULL, 0, &m, &n) == 0 && n == 5);
    static const char *const want[] = { "a1", "b1", "b2", "a2", "a3" };
    for (size_t i = 0; i < n; i++) {
        CHECK(strcmp(m[i].text, want[i]) == 0);
    }
    CHECK(m[2].pos.ts_ms == 1500 && m[2].sent_ms == 1400 && m[4].pos.ts_ms == 2000);
    store_chan_pos_t before = m[3].pos;
    store_chan_msgs_free(m, n);
    CHECK(store_chan_history(s, chan, &before, 2, &m, &n) == 0 && n == 2);
    CHECK(strcmp(m[0].text, "b1") == 0 && strcmp(m[1].text, "b2") == 0);
    store_chan_msgs_free(m, n);
    CHECK(store_chan_history(s, chan, NULL, 1, &m, &n) == 0 && n == 1
          && strcmp(m[0].text, "a3") == 0);
    store_chan_msgs_free(m, n);
    uint8_t me[32];
    memset(me, 0xA0, 32);
    uint64_t unread = 0;
    CHECK(store_chan_count_after(s, chan, NULL, me, &unread) == 0 && unread == 2);
    CHECK(store_chan_count_after(s, chan, &before, me, &unread) == 0 && unread == 0);
    before.ts_ms = 1500;
    before.seq = 1;
    memset(before.author, 0xB0, 32);
    CHECK(store_chan_count_after(s, chan, &before, me, &unread) == 0 && unread == 1);
    store_chan_pos_t tops[4];
    size_t n_tops = 0;
    CHECK(store_chan_tops(s, chan, me, tops, 4, &n_tops) == 0 && n_tops == 1);
    CHECK(tops[0].author[0] == 0xB0 && tops[0].seq == 2);
    memset(me, 0x01, 32);
    CHECK(store_chan_tops(s, chan, me, tops, 1, &n_tops) == 0 && n_tops == 1);
    CHECK(tops[0].author[0] == 0xA0 && tops[0].seq == 3);
    store_chan_msg_t dup;
    memset(&dup, 0, sizeof dup);
    memcpy(dup.channel, chan, 32);
    dup.env_id[0] = 0xA0;
    dup.env_id[1] = 1;
    memset(dup.pos.author, 0xA0, 32);
    dup.pos.seq = 9;
    dup.text = (char *)"again";
    CHECK(store_chan_msg_add(s, &dup) == PARLEY_ERR_EXISTS);
    dup.text = NULL;
    CHECK(store_chan_msg_add(s, &dup) == PARLEY_ERR_MALFORMED);
}

void
store_chan_test(bool verbose)
{
    s_t_kit_t kit;
    s_t_begin(&kit, "store_chan", verbose);
    char path[512];
    store_t *s = s_t_open_in(&kit, "chan.db", path, sizeof path);
    uint8_t chan[32];
    memset(chan, 0xC1, 32);

    s_t_say(&kit, "channels: put, get, list; a bad state or an unterminated name is refused");
    store_chan_t c, got;
    CHECK(store_chan_get(s, chan, &got) == PARLEY_ERR_NOTFOUND);
    memset(&c, 0, sizeof c);
    memcpy(c.id, chan, 32);
    c.state = STORE_CHAN_MEMBER;
    c.since_ms = 77;
    snprintf(c.name, sizeof c.name, "%s", "ops");
    snprintf(c.topic, sizeof c.topic, "%s", "the \xe2\x80\x9cops\xe2\x80\x9d room");
    c.meta.ts_ms = 5;
    c.meta.seq = 2;
    CHECK(store_chan_put(s, &c) == 0);
    c.id[0] = 0x01;
    CHECK(store_chan_put(s, &c) == 0);
    CHECK(store_chan_get(s, chan, &got) == 0 && got.state == STORE_CHAN_MEMBER && got.since_ms == 77
          && strcmp(got.name, "ops") == 0 && strcmp(got.topic, c.topic) == 0 && got.meta.ts_ms == 5
          && got.meta.seq == 2);
    store_chan_t *list = NULL;
    size_t n = 0;
    CHECK(store_chan_list(s, &list, &n) == 0 && n == 2 && list[0].id[0] == 0x01);
    free(list);
    c.state = 9;
    CHECK(store_chan_put(s, &c) == PARLEY_ERR_MALFORMED);
    c.state = STORE_CHAN_GONE;
    memset(c.name, 'x', sizeof c.name);
    CHECK(store_chan_put(s, &c) == PARLEY_ERR_MALFORMED);

    s_t_say(&kit, "keys: held aside, then bound; listed by epoch; dropped below an epoch");
    store_chan_key_t k;
    memset(&k, 0, sizeof k);
    memcpy(k.channel, chan, 32);
    for (uint32_t e = 0; e < 3; e++) {
        k.epoch = e;
        memset(k.key_id, (int)e, 8);
        memset(k.key, (int)(0x40 + e), 32);
        k.bound = e != 2;
        CHECK(store_chan_key_put(s, &k) == 0);
    }
    k.bound = true;
    memset(k.key, 0x99, 32); /* the same key id: only bound moves */
    CHECK(store_chan_key_put(s, &k) == 0);
    store_chan_key_t *keys = NULL;
    CHECK(store_chan_key_list(s, chan, &keys, &n) == 0 && n == 3);
    CHECK(keys[2].epoch == 2 && keys[2].bound && keys[2].key[0] == 0x42 && keys[0].key[0] == 0x40);
    store_chan_keys_free(keys, n);
    uint8_t buf[64], sender[32];
    size_t len = 0;
    memset(sender, 0x5E, 32);
    CHECK(store_chan_chain_get(s, chan, 0, k.key_id, sender, buf, sizeof buf, &len)
          == PARLEY_ERR_NOTFOUND);
    memset(buf, 0x33, 40);
    CHECK(store_chan_chain_put(s, chan, 0, (const uint8_t *)"\0\0\0\0\0\0\0", sender, buf, 40)
          == 0);
    CHECK(store_chan_chain_put(s, chan, 2, k.key_id, sender, buf, 36) == 0);
    CHECK(store_chan_chain_get(s, chan, 2, k.key_id, sender, buf, sizeof buf, &len) == 0
          && len == 36);
    CHECK(store_chan_chain_get(s, chan, 2, k.key_id, sender, buf, 35, &len)
          == PARLEY_ERR_MALFORMED);
    CHECK(store_chan_chain_put(s, chan, 2, k.key_id, sender, buf, 0) == PARLEY_ERR_LIMIT);
    CHECK(store_chan_key_drop(s, chan, 2, &n) == 0 && n == 2);
    CHECK(store_chan_key_list(s, chan, &keys, &n) == 0 && n == 1 && keys[0].epoch == 2);
    store_chan_keys_free(keys, n);
    CHECK(store_chan_chain_get(s, chan, 0, (const uint8_t *)"\0\0\0\0\0\0\0", sender, buf,
                               sizeof buf, &len)
          == PARLEY_ERR_NOTFOUND);

    s_t_messages(&kit, s, chan);

    s_t_say(&kit, "marks: only raised; counted per author and status, the author not counted");
    uint8_t author[32], m1[32], m2[32];
    memset(author, 0xA0, 32);
    memset(m1, 0x01, 32);
    memset(m2, 0x02, 32);
    bool changed = false;
    CHECK(store_chan_mark_raise(s, chan, m1, author, 1, 5, &changed) == 0 && changed);
    CHECK(store_chan_mark_raise(s, chan, m1, author, 1, 4, &changed) == 0 && !changed);
    CHECK(store_chan_mark_raise(s, chan, m2, author, 1, 3, &changed) == 0 && changed);
    CHECK(store_chan_mark_raise(s, chan, author, author, 1, 9, &changed) == 0 && changed);
    CHECK(store_chan_mark_raise(s, chan, m2, author, 2, 3, &changed) == 0 && changed);
    uint64_t count = 0;
    CHECK(store_chan_mark_count(s, chan, author, 1, 3, &count) == 0 && count == 2);
    CHECK(store_chan_mark_count(s, chan, author, 1, 4, &count) == 0 && count == 1);
    CHECK(store_chan_mark_count(s, chan, author, 2, 3, &count) == 0 && count == 1);
    CHECK(store_chan_mark_count(s, chan, m1, 1, 1, &count) == 0 && count == 0);

    s_t_say(&kit, "queue: in order, per channel; one dropped, then all");
    uint8_t other[32];
    memset(other, 0xC2, 32);
    int64_t q1 = 0, q2 = 0, q3 = 0;
    CHECK(store_chan_queue_add(s, chan, 10, "first", &q1) == 0);
    CHECK(store_chan_queue_add(s, other, 11, "elsewhere", &q2) == 0);
    CHECK(store_chan_queue_add(s, chan, 12, "second", &q3) == 0 && q1 < q3);
    store_chan_queued_t *q = NULL;
    CHECK(store_chan_queue_list(s, chan, 0, &q, &n) == 0 && n == 2);
    CHECK(q[0].n == q1 && q[0].ts_ms == 10 && strcmp(q[0].text, "first") == 0);
    CHECK(strcmp(q[1].text, "second") == 0 && memcmp(q[1].channel, chan, 32) == 0);
    store_chan_queued_free(q, n);
    CHECK(store_chan_queue_list(s, chan, 1, &q, &n) == 0 && n == 1 && q[0].n == q1);
    store_chan_queued_free(q, n);
    CHECK(store_chan_queue_drop(s, other, q1) == 0); /* not other's: nothing goes */
    CHECK(store_chan_queue_count(s, chan, &count) == 0 && count == 2);
    CHECK(store_chan_queue_drop(s, chan, q1) == 0);
    CHECK(store_chan_queue_count(s, chan, &count) == 0 && count == 1);
    CHECK(store_chan_queue_drop(s, chan, -1) == 0);
    CHECK(store_chan_queue_count(s, chan, &count) == 0 && count == 0);
    CHECK(store_chan_queue_count(s, other, &count) == 0 && count == 1);
    store_destroy(&s);

    s_t_say(&kit, "persists across reopen");
    CHECK(store_open(path, &s) == 0);
    CHECK(store_chan_get(s, chan, &got) == 0 && strcmp(got.name, "ops") == 0);
    store_destroy(&s);
    s_t_end(&kit);
}
