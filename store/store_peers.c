/*  store/store_peers.c — who we know: contacts (the names we give to keys)
 *  and peers (nodes we have seen, with their last endpoint).
 *
 *  Tables (schema conventions and versions: store.c)
 *  ------
 *  contacts(name TEXT PK, pk, verified 0|1, added_ms), index contacts_pk(pk)
 *      name is 1..STORE_NAME_MAX bytes. Several names may share a key.
 *      verified is the safety number checked out of band; it does not survive
 *      a change of key under the same name.
 *
 *  peers(pk PK, endpoint TEXT, first_seen_ms, last_seen_ms)
 *      endpoint is "" or at most PARLEY_ENDPOINT_MAX bytes.
 */
#include "store.h"
#include "store_int.h"

/* ---- the statements this file runs, prepared once at open ---- */

enum {
    ST_CONTACT_PUT,
    ST_CONTACT_BY_NAME,
    ST_CONTACT_BY_PK,
    ST_CONTACT_LIST,
    ST_CONTACT_REMOVE,
    ST_CONTACT_VERIFY,
    ST_PEER_SEEN,
    ST_PEER_GET,
    ST_PEER_LIST,
    ST_PEER_RECENT,
    ST_PEER_FORGET,
    ST_PEERS_COUNT
};

#define S_CONTACT_COLS "name, pk, verified, added_ms"
#define S_PEER_COLS "pk, endpoint, first_seen_ms, last_seen_ms"

static const char *const s_sql[ST_PEERS_COUNT] = {
    /* On a key change the old verification does not carry over; with the same
       key a put can set verified but not clear it (store_contact_set_verified
       does that). added_ms is when this key was added under this name. */
    [ST_CONTACT_PUT] = "INSERT INTO contacts (" S_CONTACT_COLS ") VALUES (?1, ?2, ?3, ?4)"
                       " ON CONFLICT (name) DO UPDATE SET"
                       " verified = CASE WHEN pk = excluded.pk"
                       "   THEN max(verified, excluded.verified) ELSE excluded.verified END,"
                       " added_ms = CASE WHEN pk = excluded.pk"
                       "   THEN added_ms ELSE excluded.added_ms END,"
                       " pk = excluded.pk",
    [ST_CONTACT_BY_NAME] = "SELECT " S_CONTACT_COLS " FROM contacts WHERE name = ?1",
    [ST_CONTACT_BY_PK] = "SELECT " S_CONTACT_COLS " FROM contacts WHERE pk = ?1"
                         " ORDER BY name LIMIT 1",
    [ST_CONTACT_LIST] = "SELECT " S_CONTACT_COLS " FROM contacts ORDER BY name",
    [ST_CONTACT_REMOVE] = "DELETE FROM contacts WHERE name = ?1",
    [ST_CONTACT_VERIFY] = "UPDATE contacts SET verified = ?2 WHERE pk = ?1",
    [ST_PEER_SEEN] = "INSERT INTO peers (" S_PEER_COLS ") VALUES (?1, coalesce(?2, ''), ?3, ?3)"
                     " ON CONFLICT (pk) DO UPDATE SET endpoint = coalesce(?2, endpoint),"
                     " last_seen_ms = excluded.last_seen_ms",
    [ST_PEER_GET] = "SELECT " S_PEER_COLS " FROM peers WHERE pk = ?1",
    [ST_PEER_LIST] = "SELECT " S_PEER_COLS " FROM peers ORDER BY pk",
    [ST_PEER_RECENT] = "SELECT " S_PEER_COLS " FROM peers ORDER BY last_seen_ms DESC, pk LIMIT ?1",
    [ST_PEER_FORGET] = "DELETE FROM peers WHERE pk = ?1",
};

const store_sql_t store_peers_sql = { "store_peers.c", s_sql, ST_PEERS_COUNT };

/*  This file's statement `which`, ready to bind. */
static sqlite3_stmt *
s_st(store_t *self, int which)
{
    return self->st[STORE_PART_PEERS][which];
}

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
    self->contact_cached = false; // the table changes
    sqlite3_stmt *st = s_st(self, ST_CONTACT_PUT);
    rc = S_BIND(st, S_TEXT(name, len), S_B32(pk), S_BOOL(verified), S_U64(now_ms));
    return rc == 0 ? s_run(st, NULL) : rc;
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
    sqlite3_stmt *st = s_st(self, ST_CONTACT_BY_NAME);
    rc = S_BIND(st, S_TEXT(name, len));
    return rc == 0 ? s_contact_one(st, out) : rc;
}

/*  If several names share pk, the first by name. */
struct store_contact_cache {
    uint8_t pk[32];
    int rc; /* 0 or PARLEY_ERR_NOTFOUND */
    store_contact_t row;
};

int
store_contact_by_pk(store_t *self, const uint8_t pk[32], store_contact_t *out)
{
    struct store_contact_cache *c = self->contact_cache;
    if (self->contact_cached && memcmp(c->pk, pk, 32) == 0) {
        if (c->rc == 0) {
            *out = c->row;
        }
        return c->rc;
    }
    sqlite3_stmt *st = s_st(self, ST_CONTACT_BY_PK);
    int rc = S_BIND(st, S_B32(pk));
    if (rc == 0) {
        rc = s_contact_one(st, out);
    }
    if (!c && (rc == 0 || rc == PARLEY_ERR_NOTFOUND)) {
        c = self->contact_cache = calloc(1, sizeof *c); // NULL: no cache, no harm
    }
    if (c && (rc == 0 || rc == PARLEY_ERR_NOTFOUND)) {
        memcpy(c->pk, pk, 32);
        c->rc = rc;
        if (rc == 0) {
            c->row = *out;
        }
        self->contact_cached = true;
    }
    return rc;
}

static int
s_contact_row(sqlite3_stmt *st, void *elem)
{
    return s_contact_read(st, elem);
}

int
store_contact_list(store_t *self, store_contact_t **out, size_t *n)
{
    sqlite3_stmt *st = s_st(self, ST_CONTACT_LIST);
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
    self->contact_cached = false; // the table changes
    sqlite3_stmt *st = s_st(self, ST_CONTACT_REMOVE);
    rc = S_BIND(st, S_TEXT(name, len));
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
    if (rc == 0 && sqlite3_changes(self->db) == 0) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    return rc;
}

/*  Sets verified on every contact with key pk; NOTFOUND if there is none. */
int
store_contact_set_verified(store_t *self, const uint8_t pk[32], bool verified)
{
    self->contact_cached = false; // the table changes
    sqlite3_stmt *st = s_st(self, ST_CONTACT_VERIFY);
    int rc = S_BIND(st, S_B32(pk), S_BOOL(verified));
    if (rc == 0) {
        rc = s_run(st, NULL);
    }
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
    sqlite3_stmt *st = s_st(self, ST_PEER_SEEN);
    int rc =
        S_BIND(st, S_B32(pk), endpoint != NULL ? S_TEXT(endpoint, len) : S_NULL, S_U64(now_ms));
    return rc == 0 ? s_run(st, NULL) : rc;
}

int
store_peer_get(store_t *self, const uint8_t pk[32], store_peer_t *out)
{
    sqlite3_stmt *st = s_st(self, ST_PEER_GET);
    int rc = S_BIND(st, S_B32(pk));
    return s_fetch_one(st, rc, s_peer_row, out);
}

int
store_peer_list(store_t *self, store_peer_t **out, size_t *n)
{
    sqlite3_stmt *st = s_st(self, ST_PEER_LIST);
    int rc = s_collect(st, sizeof **out, false, s_peer_row, NULL, (void **)out, n);
    s_reset(st);
    return rc;
}

int
store_peer_recent(store_t *self, size_t max, store_peer_t **out, size_t *n)
{
    sqlite3_stmt *st = s_st(self, ST_PEER_RECENT);
    int rc = S_BIND(st, S_U64(max));
    if (rc == 0) {
        rc = s_collect(st, sizeof **out, false, s_peer_row, NULL, (void **)out, n);
    }
    s_reset(st);
    return rc;
}

int
store_peer_forget(store_t *self, const uint8_t pk[32])
{
    sqlite3_stmt *st = s_st(self, ST_PEER_FORGET);
    int rc = S_BIND(st, S_B32(pk));
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

static void
s_t_contacts(store_t *s)
{
    uint8_t ka[32];
    uint8_t kb[32];
    uint8_t kc[32];
    randombytes_buf(ka, sizeof ka);
    randombytes_buf(kb, sizeof kb);
    randombytes_buf(kc, sizeof kc);
    store_contact_t c;

    CHECK(store_contact_by_name(s, "alice", &c) == PARLEY_ERR_NOTFOUND);
    CHECK(store_contact_put(s, "alice", ka, false, 1) == 0);
    CHECK(store_contact_by_name(s, "alice", &c) == 0);
    CHECK(strcmp(c.name, "alice") == 0 && memcmp(c.pk, ka, 32) == 0 && !c.verified);
    CHECK(c.added_ms == 1);
    CHECK(store_contact_by_pk(s, ka, &c) == 0 && strcmp(c.name, "alice") == 0);

    /* same key: verification can be added, not lost; added_ms stays */
    CHECK(store_contact_put(s, "alice", ka, true, 2) == 0);
    CHECK(store_contact_by_name(s, "alice", &c) == 0 && c.verified && c.added_ms == 1);
    CHECK(store_contact_put(s, "alice", ka, false, 3) == 0);
    CHECK(store_contact_by_name(s, "alice", &c) == 0 && c.verified);
    /* a new key resets it */
    CHECK(store_contact_put(s, "alice", kb, false, 4) == 0);
    CHECK(store_contact_by_name(s, "alice", &c) == 0);
    CHECK(memcmp(c.pk, kb, 32) == 0 && !c.verified && c.added_ms == 4);
    CHECK(store_contact_by_pk(s, ka, &c) == PARLEY_ERR_NOTFOUND);

    CHECK(store_contact_put(s, "bob", kc, false, 5) == 0);
    char name64[STORE_NAME_MAX + 2];
    memset(name64, 'z', STORE_NAME_MAX);
    name64[STORE_NAME_MAX] = '\0';
    CHECK(store_contact_put(s, name64, kc, false, 6) == 0); /* a second name for kc */
    name64[STORE_NAME_MAX] = 'z';
    name64[STORE_NAME_MAX + 1] = '\0';
    CHECK(store_contact_put(s, name64, kc, false, 6) == PARLEY_ERR_LIMIT);
    CHECK(store_contact_put(s, "", kc, false, 6) == PARLEY_ERR_MALFORMED);
    CHECK(store_contact_by_name(s, NULL, &c) == PARLEY_ERR_MALFORMED);

    store_contact_t *list = NULL;
    size_t n = 0;
    CHECK(store_contact_list(s, &list, &n) == 0 && n == 3);
    CHECK(strcmp(list[0].name, "alice") == 0 && strcmp(list[1].name, "bob") == 0);
    CHECK(strlen(list[2].name) == STORE_NAME_MAX);
    free(list);

    CHECK(store_contact_set_verified(s, kc, true) == 0);
    CHECK(store_contact_by_name(s, "bob", &c) == 0 && c.verified);
    CHECK(store_contact_set_verified(s, ka, true) == PARLEY_ERR_NOTFOUND);
    CHECK(store_contact_by_pk(s, kc, &c) == 0 && strcmp(c.name, "bob") == 0);
    CHECK(store_contact_remove(s, "bob") == 0);
    CHECK(store_contact_remove(s, "bob") == PARLEY_ERR_NOTFOUND);
    CHECK(store_contact_by_name(s, "bob", &c) == PARLEY_ERR_NOTFOUND);
    CHECK(store_contact_by_pk(s, kc, &c) == 0 && c.verified); /* the other name remains */

    /* by_pk's answer is kept for the next call on that key (cached), and
       never outlives a write to contacts or a rollback */
    uint8_t kd[32];
    randombytes_buf(kd, sizeof kd);
    CHECK(store_contact_by_pk(s, kd, &c) == PARLEY_ERR_NOTFOUND);
    CHECK(store_contact_by_pk(s, kd, &c) == PARLEY_ERR_NOTFOUND);
    CHECK(store_contact_put(s, "dora", kd, false, 7) == 0);
    CHECK(store_contact_by_pk(s, kd, &c) == 0 && strcmp(c.name, "dora") == 0 && !c.verified);
    CHECK(store_contact_set_verified(s, kd, true) == 0);
    CHECK(store_contact_by_pk(s, kd, &c) == 0 && c.verified);
    CHECK(store_begin(s) == 0);
    CHECK(store_contact_remove(s, "dora") == 0);
    CHECK(store_contact_by_pk(s, kd, &c) == PARLEY_ERR_NOTFOUND);
    CHECK(store_rollback(s) == 0);
    CHECK(store_contact_by_pk(s, kd, &c) == 0 && strcmp(c.name, "dora") == 0 && c.verified);
    store_fault_set(s, STORE_FAULT_COMMIT, 1);
    CHECK(store_begin(s) == 0);
    CHECK(store_contact_put(s, "dora", kb, false, 8) == 0);
    CHECK(store_contact_by_pk(s, kd, &c) == PARLEY_ERR_NOTFOUND);
    CHECK(store_commit(s) == PARLEY_ERR_IO);
    CHECK(store_contact_by_pk(s, kd, &c) == 0 && strcmp(c.name, "dora") == 0);
    CHECK(store_contact_remove(s, "dora") == 0);
    CHECK(store_contact_by_pk(s, kd, &c) == PARLEY_ERR_NOTFOUND);
    s_t_idle(s);
}

static void
s_t_peers(store_t *s)
{
    uint8_t p[32];
    uint8_t q[32];
    randombytes_buf(p, sizeof p);
    randombytes_buf(q, sizeof q);
    store_peer_t got;
    CHECK(store_peer_get(s, p, &got) == PARLEY_ERR_NOTFOUND);
    CHECK(store_peer_seen(s, p, "tcp://10.0.0.1:4000", 10) == 0);
    CHECK(store_peer_get(s, p, &got) == 0);
    CHECK(strcmp(got.endpoint, "tcp://10.0.0.1:4000") == 0);
    CHECK(got.first_seen_ms == 10 && got.last_seen_ms == 10);
    CHECK(store_peer_seen(s, p, NULL, 20) == 0); /* keeps the endpoint */
    CHECK(store_peer_get(s, p, &got) == 0);
    CHECK(strcmp(got.endpoint, "tcp://10.0.0.1:4000") == 0);
    CHECK(got.first_seen_ms == 10 && got.last_seen_ms == 20);
    CHECK(store_peer_seen(s, p, "tcp://10.0.0.2:4001", 30) == 0);
    CHECK(store_peer_get(s, p, &got) == 0 && strcmp(got.endpoint, "tcp://10.0.0.2:4001") == 0);
    CHECK(store_peer_seen(s, q, NULL, 5) == 0);
    CHECK(store_peer_get(s, q, &got) == 0 && got.endpoint[0] == '\0');

    char ep[PARLEY_ENDPOINT_MAX + 2];
    memset(ep, 'e', sizeof ep - 1);
    ep[sizeof ep - 1] = '\0';
    CHECK(store_peer_seen(s, q, ep, 6) == PARLEY_ERR_LIMIT);
    ep[PARLEY_ENDPOINT_MAX] = '\0';
    CHECK(store_peer_seen(s, q, ep, 6) == 0);
    CHECK(store_peer_get(s, q, &got) == 0 && strlen(got.endpoint) == PARLEY_ENDPOINT_MAX);

    store_peer_t *list = NULL;
    size_t n = 0;
    CHECK(store_peer_list(s, &list, &n) == 0 && n == 2);
    CHECK(memcmp(list[0].pk, list[1].pk, 32) < 0);
    free(list);
    /* most recently seen first, bounded: p (30) before q (6) */
    CHECK(store_peer_recent(s, 10, &list, &n) == 0 && n == 2);
    CHECK(memcmp(list[0].pk, p, 32) == 0 && memcmp(list[1].pk, q, 32) == 0);
    free(list);
    CHECK(store_peer_recent(s, 1, &list, &n) == 0 && n == 1 && memcmp(list[0].pk, p, 32) == 0);
    free(list);
    CHECK(store_peer_forget(s, p) == 0);
    CHECK(store_peer_forget(s, p) == PARLEY_ERR_NOTFOUND);
    CHECK(store_peer_get(s, p, &got) == PARLEY_ERR_NOTFOUND);
    CHECK(store_peer_get(s, q, &got) == 0);
    s_t_idle(s);
}

/*  Damages one value at a time through a raw connection and checks that the
 *  call reading it says PARLEY_ERR_MALFORMED and returns nothing. */
static void
s_t_corrupt(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "corrupt.db", path, sizeof path);
    uint8_t pk[32];
    randombytes_buf(pk, sizeof pk);
    CHECK(store_contact_put(s, "carol", pk, false, 1) == 0);
    CHECK(store_peer_seen(s, pk, "tcp://x", 1) == 0);
    store_contact_t c;
    store_contact_t *clist = NULL;
    store_peer_t p;
    size_t n = 0;

    s_t_raw(path, "UPDATE contacts SET pk = x'0102'");
    CHECK(store_contact_by_name(s, "carol", &c) == PARLEY_ERR_MALFORMED);
    CHECK(store_contact_list(s, &clist, &n) == PARLEY_ERR_MALFORMED && clist == NULL);
    s_t_raw(path, "UPDATE contacts SET pk = zeroblob(32), verified = 2");
    CHECK(store_contact_by_name(s, "carol", &c) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE contacts SET verified = 0, name = printf('%.*c', 65, 'n')");
    CHECK(store_contact_list(s, &clist, &n) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE peers SET endpoint = x'00'");
    CHECK(store_peer_get(s, pk, &p) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE peers SET endpoint = printf('%.*c', 256, 'e')");
    CHECK(store_peer_get(s, pk, &p) == PARLEY_ERR_MALFORMED);
    s_t_idle(s);
    store_destroy(&s);
}

void
store_peers_test(bool verbose)
{
    s_t_kit_t kit;
    s_t_begin(&kit, "store_peers", verbose);
    char path[512];
    store_t *s = s_t_open_in(&kit, "peers.db", path, sizeof path);
    s_t_idle(s);
    s_t_say(&kit, "contacts");
    s_t_contacts(s);
    s_t_say(&kit, "peers");
    s_t_peers(s);
    store_destroy(&s);
    s_t_say(&kit, "contacts persist across reopen");
    CHECK(store_open(path, &s) == 0);
    store_contact_t c;
    CHECK(store_contact_by_name(s, "alice", &c) == 0);
    store_destroy(&s);
    s_t_say(&kit, "damaged rows");
    s_t_corrupt(&kit);
    s_t_end(&kit);
}
