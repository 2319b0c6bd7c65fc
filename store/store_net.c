/*  store/store_net.c — which private network this node is in, and the
 *  network secrets of its last epochs (see store.h).
 *
 *  network       one row at most: the network id, member or left, since when
 *  network_keys  epoch → secret, author, signature; the newest
 *                STORE_NETKEYS_MAX kept
 *
 *  The roster is not stored here: its events are envelopes of the network's
 *  scope in the log, replicated like any other, and node/ folds them again
 *  at start. A secret is deleted as soon as it is old enough to go; the
 *  connection runs with secure_delete, so its bytes do not linger in free
 *  pages.
 */
#include "store.h"
#include "store_int.h"
#include <sodium.h>

enum {
    ST_NET_GET,
    ST_NET_CLEAR,
    ST_NET_PUT,
    ST_KEYS_CLEAR,
    ST_KEY_PUT,
    ST_KEY_TRIM,
    ST_KEY_LIST,
    ST_NET_COUNT
};

static const char *const s_sql[ST_NET_COUNT] = {
    [ST_NET_GET] = "SELECT id, state, since_ms FROM network",
    [ST_NET_CLEAR] = "DELETE FROM network WHERE id != ?1",
    [ST_NET_PUT] = "INSERT INTO network (id, state, since_ms) VALUES (?1, ?2, ?3)"
                   " ON CONFLICT (id) DO UPDATE SET state = excluded.state,"
                   " since_ms = excluded.since_ms",
    [ST_KEYS_CLEAR] = "DELETE FROM network_keys",
    [ST_KEY_PUT] = "INSERT INTO network_keys (epoch, secret, author, sig) VALUES (?1, ?2, ?3, ?4)"
                   " ON CONFLICT (epoch) DO UPDATE SET secret = excluded.secret,"
                   " author = excluded.author, sig = excluded.sig",
    [ST_KEY_TRIM] = "DELETE FROM network_keys WHERE epoch NOT IN"
                    " (SELECT epoch FROM network_keys ORDER BY epoch DESC LIMIT ?1)",
    [ST_KEY_LIST] = "SELECT epoch, secret, author, sig FROM network_keys ORDER BY epoch DESC",
};

const store_sql_t store_net_sql = { "store_net.c", s_sql, ST_NET_COUNT };

static sqlite3_stmt *
s_st(store_t *self, int which)
{
    return self->st[STORE_PART_NET][which];
}

int
store_network_get(store_t *self, store_network_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = s_st(self, ST_NET_GET);
    bool row = false;
    int rc = s_step(st, &row);
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    int64_t state = 0;
    if (rc == 0) {
        rc = s_col_blob(st, 0, out->id, 32);
    }
    if (rc == 0) {
        rc = s_col_range(st, 1, STORE_NET_MEMBER, STORE_NET_LEFT, &state);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 2, &out->since_ms);
    }
    if (rc == 0) {
        out->state = (int)state;
        rc = s_step(st, &row); // one row at most: a second is a damaged file
        if (rc == 0 && row) {
            rc = PARLEY_ERR_MALFORMED;
        }
    }
    s_reset(st);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

int
store_network_set(store_t *self, const store_network_t *net)
{
    if (net->state != STORE_NET_MEMBER && net->state != STORE_NET_LEFT) {
        return PARLEY_ERR_MALFORMED;
    }
    store_network_t old;
    int rc = store_network_get(self, &old);
    bool other = rc == PARLEY_ERR_NOTFOUND || (rc == 0 && memcmp(old.id, net->id, 32) != 0);
    if (rc != 0 && rc != PARLEY_ERR_NOTFOUND) {
        return rc;
    }
    sqlite3_stmt *st = s_st(self, ST_NET_CLEAR);
    rc = S_BIND(st, S_B32(net->id));
    rc = rc == 0 ? s_run(st, NULL) : rc;
    if (rc == 0 && (other || net->state == STORE_NET_LEFT)) {
        //  Another network's secrets are no use; a node out of its network
        //  (left, or removed) must not keep the secrets either.
        rc = s_run(s_st(self, ST_KEYS_CLEAR), NULL);
    }
    if (rc == 0) {
        st = s_st(self, ST_NET_PUT);
        rc = S_BIND(st, S_B32(net->id), S_I64((int64_t)net->state), S_U64(net->since_ms));
        rc = rc == 0 ? s_run(st, NULL) : rc;
    }
    return rc;
}

int
store_netkey_put(store_t *self, const store_netkey_t *key)
{
    sqlite3_stmt *st = s_st(self, ST_KEY_PUT);
    int rc = S_BIND(st, S_I64((int64_t)key->epoch), S_B32(key->secret), S_B32(key->author),
                    S_BLOB(key->sig, 64));
    rc = rc == 0 ? s_run(st, NULL) : rc;
    if (rc == 0) {
        st = s_st(self, ST_KEY_TRIM);
        rc = S_BIND(st, S_I64((int64_t)STORE_NETKEYS_MAX));
        rc = rc == 0 ? s_run(st, NULL) : rc;
    }
    return rc;
}

int
store_netkey_list(store_t *self, store_netkey_t *out, size_t cap, size_t *n)
{
    *n = 0;
    sqlite3_stmt *st = s_st(self, ST_KEY_LIST);
    int rc = 0;
    bool row = true;
    while (rc == 0 && (rc = s_step(st, &row)) == 0 && row && *n < cap) {
        store_netkey_t *k = &out[*n];
        rc = s_col_u32(st, 0, &k->epoch);
        if (rc == 0) {
            rc = s_col_blob(st, 1, k->secret, 32);
        }
        if (rc == 0) {
            rc = s_col_blob(st, 2, k->author, 32);
        }
        if (rc == 0) {
            rc = s_col_blob(st, 3, k->sig, 64);
        }
        if (rc == 0) {
            (*n)++;
        }
    }
    s_reset(st);
    if (rc != 0) {
        sodium_memzero(out, cap * sizeof *out);
        *n = 0;
    }
    return rc;
}

/* ---- self-test ---- */

#include "store_testkit.h"

void
store_net_test(bool verbose)
{
    s_t_kit_t kit;
    s_t_begin(&kit, "store_net", verbose);
    char path[512];
    store_t *s = s_t_open_in(&kit, "net.db", path, sizeof path);
    store_network_t net, got;
    s_t_say(&kit, "no network: not found");
    CHECK(store_network_get(s, &got) == PARLEY_ERR_NOTFOUND);
    memset(&net, 0, sizeof net);
    memset(net.id, 0xA1, 32);
    net.state = STORE_NET_MEMBER;
    net.since_ms = 1234;
    CHECK(store_network_set(s, &net) == 0);
    CHECK(store_network_get(s, &got) == 0 && memcmp(got.id, net.id, 32) == 0
          && got.state == STORE_NET_MEMBER && got.since_ms == 1234);
    net.state = 7;
    CHECK(store_network_set(s, &net) == PARLEY_ERR_MALFORMED);

    s_t_say(&kit, "secrets: the newest STORE_NETKEYS_MAX epochs are kept, newest first");
    store_netkey_t k, list[8];
    size_t n = 0;
    for (uint32_t e = 0; e < 6; e++) {
        memset(&k, 0, sizeof k);
        k.epoch = e;
        memset(k.secret, (int)(0x10 + e), 32);
        memset(k.author, 0xB0, 32);
        memset(k.sig, 0xC0, 64);
        CHECK(store_netkey_put(s, &k) == 0);
    }
    CHECK(store_netkey_list(s, list, 8, &n) == 0 && n == STORE_NETKEYS_MAX);
    CHECK(list[0].epoch == 5 && list[0].secret[0] == 0x15 && list[3].epoch == 2);
    k.epoch = 5;
    memset(k.secret, 0x77, 32);
    CHECK(store_netkey_put(s, &k) == 0);
    CHECK(store_netkey_list(s, list, 1, &n) == 0 && n == 1 && list[0].secret[0] == 0x77);

    s_t_say(&kit, "the same network keeps its secrets; leaving it forgets them");
    net.state = STORE_NET_MEMBER;
    net.since_ms = 98;
    CHECK(store_network_set(s, &net) == 0);
    CHECK(store_netkey_list(s, list, 8, &n) == 0 && n == STORE_NETKEYS_MAX);
    net.state = STORE_NET_LEFT;
    net.since_ms = 99;
    CHECK(store_network_set(s, &net) == 0);
    CHECK(store_network_get(s, &got) == 0 && got.state == STORE_NET_LEFT && got.since_ms == 99);
    CHECK(store_netkey_list(s, list, 8, &n) == 0 && n == 0);

    s_t_say(&kit, "another network replaces the row and forgets every secret");
    CHECK(store_netkey_put(s, &k) == 0);
    memset(net.id, 0xA2, 32);
    net.state = STORE_NET_MEMBER;
    CHECK(store_network_set(s, &net) == 0);
    CHECK(store_network_get(s, &got) == 0 && got.id[0] == 0xA2);
    CHECK(store_netkey_list(s, list, 8, &n) == 0 && n == 0);
    store_destroy(&s);

    s_t_say(&kit, "persists across reopen");
    CHECK(store_open(path, &s) == 0);
    CHECK(store_network_get(s, &got) == 0 && got.id[0] == 0xA2 && got.state == STORE_NET_MEMBER);
    store_destroy(&s);
    sodium_memzero(list, sizeof list);
    s_t_end(&kit);
}
