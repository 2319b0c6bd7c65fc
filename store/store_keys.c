/*  store/store_keys.c — who we know and the keys we hold for them: contacts,
 *  peers, our own signed prekeys (with their secrets), peers' prekeys, and
 *  the DM send/receive sessions (tables contacts, peers, own_prekeys,
 *  peer_prekeys, send_sessions, recv_sessions; schema in store.c).
 *
 *  Invariants:
 *  - at most one own prekey is current (superseded_ms NULL); adding one
 *    supersedes the previous current one in the same transaction;
 *  - a peer's stored prekey only moves to a higher spk_id;
 *  - secrets are copied straight between SQLite's row and the caller's
 *    buffer; every buffer of ours that held one is wiped before it is freed,
 *    and an error never leaves part of a secret in an output.
 */
#include "store_int.h"

/* ---- contacts ---- */

static int
s_name_check(const char *name, size_t *len)
{
    if (name == NULL) {
        return PARLEY_ERR_MALFORMED;
    }
    *len = strnlen(name, (size_t)STORE_NAME_MAX + 1);
    if (*len == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    return *len > STORE_NAME_MAX ? PARLEY_ERR_LIMIT : 0;
}

/*  Reads S_CONTACT_COLS. */
static int
s_contact_read(sqlite3_stmt *st, store_contact_t *c)
{
    memset(c, 0, sizeof *c);
    int rc = s_col_text_into(st, 0, c->name, sizeof c->name);
    if (rc == 0 && c->name[0] == '\0') {
        rc = PARLEY_ERR_MALFORMED;
    }
    if (rc == 0) {
        rc = s_col_blob(st, 1, c->pk, 32);
    }
    if (rc == 0) {
        rc = s_col_bool(st, 2, &c->verified);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 3, &c->added_ms);
    }
    return rc;
}

int
store_contact_put(store_t *self, const char *name, const uint8_t pk[32], bool verified,
                  uint64_t now_ms)
{
    size_t len = 0;
    int rc = s_name_check(name, &len);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = self->st[ST_CONTACT_PUT];
    rc = s_bind_text(st, 1, name, len);
    if (rc == 0) {
        rc = s_bind_blob(st, 2, pk, 32);
    }
    if (rc == 0) {
        rc = s_bind_i64(st, 3, verified ? 1 : 0);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 4, now_ms);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    return s_run(st, NULL);
}

/*  Runs a contact query expected to return one row. */
static int
s_contact_one(sqlite3_stmt *st, store_contact_t *out)
{
    bool row = false;
    int rc = s_step(st, &row);
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    if (rc == 0) {
        rc = s_contact_read(st, out);
    }
    s_reset(st);
    return rc;
}

int
store_contact_by_name(store_t *self, const char *name, store_contact_t *out)
{
    size_t len = 0;
    int rc = s_name_check(name, &len);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = self->st[ST_CONTACT_BY_NAME];
    rc = s_bind_text(st, 1, name, len);
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    return s_contact_one(st, out);
}

/*  If several names share pk, the first by name. */
int
store_contact_by_pk(store_t *self, const uint8_t pk[32], store_contact_t *out)
{
    sqlite3_stmt *st = self->st[ST_CONTACT_BY_PK];
    int rc = s_bind_blob(st, 1, pk, 32);
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    return s_contact_one(st, out);
}

static int
s_contact_row(sqlite3_stmt *st, void *elem)
{
    return s_contact_read(st, elem);
}

int
store_contact_list(store_t *self, store_contact_t **out, size_t *n)
{
    sqlite3_stmt *st = self->st[ST_CONTACT_LIST];
    int rc = s_collect(st, sizeof **out, false, s_contact_row, NULL, (void **)out, n);
    s_reset(st);
    return rc;
}

int
store_contact_remove(store_t *self, const char *name)
{
    size_t len = 0;
    int rc = s_name_check(name, &len);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = self->st[ST_CONTACT_REMOVE];
    rc = s_bind_text(st, 1, name, len);
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

/*  Sets verified on every contact with key pk; NOTFOUND if there is none. */
int
store_contact_set_verified(store_t *self, const uint8_t pk[32], bool verified)
{
    sqlite3_stmt *st = self->st[ST_CONTACT_VERIFY];
    int rc = s_bind_blob(st, 1, pk, 32);
    if (rc == 0) {
        rc = s_bind_i64(st, 2, verified ? 1 : 0);
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

/* ---- peers ---- */

/*  Reads S_PEER_COLS. */
static int
s_peer_read(sqlite3_stmt *st, store_peer_t *p)
{
    memset(p, 0, sizeof *p);
    int rc = s_col_blob(st, 0, p->pk, 32);
    if (rc == 0) {
        rc = s_col_text_into(st, 1, p->endpoint, sizeof p->endpoint);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 2, &p->first_seen_ms);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 3, &p->last_seen_ms);
    }
    return rc;
}

static int
s_peer_row(sqlite3_stmt *st, void *elem)
{
    return s_peer_read(st, elem);
}

_Static_assert(sizeof(((store_peer_t *)0)->endpoint) == PARLEY_ENDPOINT_MAX + 1,
               "store_peer_t.endpoint holds PARLEY_ENDPOINT_MAX bytes and a NUL");

int
store_peer_seen(store_t *self, const uint8_t pk[32], const char *endpoint, uint64_t now_ms)
{
    size_t len = 0;
    if (endpoint != NULL) {
        len = strnlen(endpoint, (size_t)PARLEY_ENDPOINT_MAX + 1);
        if (len > PARLEY_ENDPOINT_MAX) {
            return PARLEY_ERR_LIMIT;
        }
    }
    sqlite3_stmt *st = self->st[ST_PEER_SEEN];
    int rc = s_bind_blob(st, 1, pk, 32);
    if (rc == 0) {
        rc = endpoint != NULL ? s_bind_text(st, 2, endpoint, len) : s_bind_null(st, 2);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 3, now_ms);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    return s_run(st, NULL);
}

int
store_peer_get(store_t *self, const uint8_t pk[32], store_peer_t *out)
{
    sqlite3_stmt *st = self->st[ST_PEER_GET];
    int rc = s_bind_blob(st, 1, pk, 32);
    return s_fetch_one(st, rc, s_peer_row, out);
}

int
store_peer_list(store_t *self, store_peer_t **out, size_t *n)
{
    sqlite3_stmt *st = self->st[ST_PEER_LIST];
    int rc = s_collect(st, sizeof **out, false, s_peer_row, NULL, (void **)out, n);
    s_reset(st);
    return rc;
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
    int rc = s_op_begin(self, &outer);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = self->st[ST_OWN_SUPERSEDE];
    rc = s_bind_u64(st, 1, now_ms);
    if (rc == 0) {
        rc = s_run(st, NULL);
    } else {
        s_reset(st);
    }
    st = self->st[ST_OWN_INSERT];
    if (rc == 0) {
        rc = s_bind_i64(st, 1, pk->pub.spk_id);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 2, pk->pub.owner, 32);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 3, pk->pub.spk_pub, 32);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 4, pk->pub.created_ms);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 5, pk->bundle, DM_PREKEY_BUNDLE_LEN);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 6, secret, 32);
    }
    if (rc == 0) {
        rc = s_run(st, NULL); /* a taken spk_id: constraint → EXISTS */
    } else {
        s_reset(st);
    }
    return s_op_end(self, outer, rc);
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
    sqlite3_stmt *st = self->st[ST_OWN_CURRENT];
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
store_own_prekey_secret(store_t *self, uint32_t spk_id, uint8_t secret[32])
{
    sqlite3_stmt *st = self->st[ST_OWN_SECRET];
    bool row = false;
    int rc = s_bind_i64(st, 1, spk_id);
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOKEY;
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
    sqlite3_stmt *st = self->st[ST_OWN_WIPE];
    /* "superseded before cutoff": every timestamp we store is <= INT64_MAX,
       so a larger cutoff means all of them */
    int64_t cut = cutoff_ms > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)cutoff_ms;
    int rc = s_bind_i64(st, 1, cut);
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    rc = s_run(st, NULL);
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
    if (s_fault(self, STORE_FAULT_PREKEY_PUT)) {
        return PARLEY_ERR_IO;
    }
    sqlite3_stmt *st = self->st[ST_PEER_PK_PUT];
    int rc = s_bind_blob(st, 1, pk->owner, 32);
    if (rc == 0) {
        rc = s_bind_i64(st, 2, pk->spk_id);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 3, pk->spk_pub, 32);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 4, pk->created_ms);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 5, bundle, DM_PREKEY_BUNDLE_LEN);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    rc = s_run(st, NULL);
    if (rc == 0) {
        /* the upsert's WHERE leaves a lower or equal spk_id unwritten: 0 rows */
        *changed = sqlite3_changes(self->db) == 1;
    }
    return rc;
}

int
store_peer_prekey_get(store_t *self, const uint8_t owner[32], prekey_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = self->st[ST_PEER_PK_GET];
    bool row = false;
    int rc = s_bind_blob(st, 1, owner, 32);
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
    sqlite3_stmt *st = self->st[ST_SEND_GET];
    int rc = s_bind_blob(st, 1, peer, 32);
    return s_fetch_one(st, rc, s_send_row, out);
}

/*  Replaces the session for s->peer; the old chain key is overwritten. */
int
store_send_session_put(store_t *self, const store_send_session_t *s)
{
    if (s == NULL || s->day < s->day0) {
        return PARLEY_ERR_MALFORMED;
    }
    sqlite3_stmt *st = self->st[ST_SEND_PUT];
    int rc = s_bind_blob(st, 1, s->peer, 32);
    if (rc == 0) {
        rc = s_bind_blob(st, 2, s->ek_pub, 32);
    }
    if (rc == 0) {
        rc = s_bind_i64(st, 3, s->spk_id);
    }
    if (rc == 0) {
        rc = s_bind_i64(st, 4, s->day0);
    }
    if (rc == 0) {
        rc = s_bind_i64(st, 5, s->day);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 6, s->key, 32);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    return s_run(st, NULL);
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
    sqlite3_stmt *st = self->st[ST_RECV_GET];
    int rc = s_bind_blob(st, 1, peer, 32);
    if (rc == 0) {
        rc = s_bind_blob(st, 2, ek_pub, 32);
    }
    return s_fetch_one(st, rc, s_recv_row, out);
}

/*  Inserts or replaces the session (peer, ek_pub); the old key is overwritten. */
int
store_recv_session_put(store_t *self, const store_recv_session_t *s)
{
    if (s == NULL || s->base_day < s->day0) {
        return PARLEY_ERR_MALFORMED;
    }
    sqlite3_stmt *st = self->st[ST_RECV_PUT];
    int rc = s_bind_blob(st, 1, s->peer, 32);
    if (rc == 0) {
        rc = s_bind_blob(st, 2, s->ek_pub, 32);
    }
    if (rc == 0) {
        rc = s_bind_i64(st, 3, s->spk_id);
    }
    if (rc == 0) {
        rc = s_bind_i64(st, 4, s->day0);
    }
    if (rc == 0) {
        rc = s_bind_i64(st, 5, s->base_day);
    }
    if (rc == 0) {
        rc = s_bind_blob(st, 6, s->key, 32);
    }
    if (rc == 0) {
        rc = s_bind_u64(st, 7, s->last_used_ms);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    return s_run(st, NULL);
}

/*  The array holds chain keys: the caller wipes it (sodium_memzero over
 *  *n × sizeof **out) before free(). On error nothing is returned and every
 *  copy made so far has been wiped. */
int
store_recv_session_list(store_t *self, store_recv_session_t **out, size_t *n)
{
    sqlite3_stmt *st = self->st[ST_RECV_LIST];
    int rc = s_collect(st, sizeof **out, true, s_recv_row, NULL, (void **)out, n);
    s_reset(st);
    return rc;
}
