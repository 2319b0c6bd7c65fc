/*  tests/node/testkit.c — see testkit.h. */
#include "testkit.h"

#include "../../proto/content.h"
#include <errno.h>
#include <ftw.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

uint64_t
tk_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void
tk_sleep(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

uint64_t
tk_clock_now(void *arg)
{
    tk_clock_t *clock = arg;
    return (uint64_t)((int64_t)tk_ms() + atomic_load(&clock->offset_ms));
}

void
tk_clock_advance(tk_clock_t *clock, int64_t ms)
{
    atomic_fetch_add(&clock->offset_ms, ms);
}

void
tk_dir(char *out, size_t cap)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, cap, "%s/parley-selftest.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    CHECK(mkdtemp(out) != NULL);
}

static int
s_unlink(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
tk_dir_remove(const char *dir)
{
    if (getenv("PARLEY_KEEP") == NULL) {
        nftw(dir, s_unlink, 16, FTW_DEPTH | FTW_PHYS);
    }
}

tk_node_t *
tk_node_start(const char *dir, const char *name, const tk_opts_t *opts)
{
    tk_opts_t none = { 0 };
    if (!opts) {
        opts = &none;
    }
    tk_node_t *n = calloc(1, sizeof *n);
    CHECK(n);
    snprintf(n->home, sizeof n->home, "%s/%s", dir, name);
    node_config_t cfg;
    node_config_default(&cfg);
    cfg.home = n->home;
    cfg.listen = opts->listen ? opts->listen : "tcp://127.0.0.1:*";
    cfg.no_mdns = true;
    cfg.no_local = true;
    cfg.quiet = !opts->verbose;
    cfg.verbose = opts->verbose && getenv("PARLEY_TK_DEBUG") != NULL; // debug lines with -v
    cfg.ping_ms = 200;
    cfg.retry_ms = opts->retry_ms ? opts->retry_ms : 300;
    cfg.sync_ms = opts->sync_ms ? opts->sync_ms : 500;
    cfg.relay = opts->relay;
    if (opts->clock) {
        cfg.clock = tk_clock_now;
        cfg.clock_arg = opts->clock;
    }
    if (opts->seed) {
        cfg.seeds[cfg.n_seeds++] = opts->seed;
    }
    for (size_t i = 0; i < sizeof opts->more_seeds / sizeof opts->more_seeds[0]; i++) {
        if (opts->more_seeds[i]) {
            cfg.seeds[cfg.n_seeds++] = opts->more_seeds[i];
        }
    }
    int err = 0;
    char msg[512];
    n->node = parley_new(&cfg, &err, msg, sizeof msg);
    if (!n->node) {
        fprintf(stderr, "tk_node_start %s: %s\n", name, msg);
    }
    CHECK(n->node);
    CHECK(parley_start(n->node) == PARLEY_OK);
    snprintf(n->id, sizeof n->id, "%s", parley_id(n->node));
    CHECK(identity_parse_node_id(n->id, n->pk) == PARLEY_OK);
    snprintf(n->seed, sizeof n->seed, "%s#%s", parley_endpoint(n->node), n->id);
    CHECK(client_connect(n->home, &n->api) == PARLEY_OK);
    CHECK(client_connect(n->home, &n->watch) == PARLEY_OK);
    json_t *result = NULL;
    char *why = NULL;
    CHECK(client_call(n->watch, "subscribe", NULL, &result, &why) == PARLEY_OK);
    json_decref(result);
    return n;
}

void
tk_node_stop(tk_node_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    tk_node_t *n = *self_p;
    client_destroy(&n->api);
    client_destroy(&n->watch);
    int status = -1;
    parley_destroy_status(&n->node, &status);
    CHECK(status == 0);
    free(n);
    *self_p = NULL;
}

json_t *
tk_call(tk_node_t *n, const char *method, json_t *params)
{
    json_t *result = NULL;
    char *why = NULL;
    int rc = client_call(n->api, method, params, &result, &why);
    if (rc != PARLEY_OK) {
        fprintf(stderr, "tk_call %s: %s (%s)\n", method, parley_strerror(rc), why ? why : "");
    }
    CHECK(rc == PARLEY_OK && result);
    free(why);
    return result;
}

int
tk_call_err(tk_node_t *n, const char *method, json_t *params, char **msg)
{
    json_t *result = NULL;
    char *why = NULL;
    int rc = client_call(n->api, method, params, &result, &why);
    CHECK(rc != PARLEY_OK);
    json_decref(result);
    if (msg) {
        *msg = why;
    } else {
        free(why);
    }
    return rc;
}

int
tk_call_rpc(tk_node_t *n, const char *method, json_t *params, char **msg)
{
    CHECK(client_send(n->api, method, params) == PARLEY_OK);
    for (;;) {
        json_t *obj = NULL;
        CHECK(client_recv(n->api, 30000, &obj) == PARLEY_OK && obj);
        json_t *err = json_object_get(obj, "error");
        if (!json_object_get(obj, "id")) {
            json_decref(obj); // a notification: not the answer
            continue;
        }
        CHECK(err != NULL);
        int code = (int)json_integer_value(json_object_get(err, "code"));
        if (msg) {
            const char *text = json_string_value(json_object_get(err, "message"));
            *msg = strdup(text ? text : "");
        }
        json_decref(obj);
        return code;
    }
}

json_t *
tk_note(tk_node_t *n, const char *method, int timeout_ms)
{
    uint64_t end = tk_ms() + (uint64_t)timeout_ms;
    while (tk_ms() < end) {
        json_t *obj = NULL;
        int rc = client_recv(n->watch, (int)(end - tk_ms()), &obj);
        if (rc == PARLEY_ERR_STATE) {
            break;
        }
        CHECK(rc == PARLEY_OK && obj);
        const char *m = json_string_value(json_object_get(obj, "method"));
        if (m && strcmp(m, method) == 0) {
            json_t *params = json_incref(json_object_get(obj, "params"));
            json_decref(obj);
            return params;
        }
        json_decref(obj);
    }
    return NULL;
}

void
tk_notes_drain(tk_node_t *n)
{
    json_t *obj = NULL;
    while (client_recv(n->watch, 0, &obj) == PARLEY_OK) {
        json_decref(obj);
        obj = NULL;
    }
}

//  A read-only call, retried when it shared an iteration that was rolled
//  back (every pending reply of such an iteration is an error: "retry").
static json_t *
s_read(tk_node_t *n, const char *method, json_t *params)
{
    for (int attempt = 0; attempt < 10; attempt++) {
        json_t *result = NULL;
        char *why = NULL;
        int rc = client_call(n->api, method, json_incref(params), &result, &why);
        free(why);
        if (rc == PARLEY_OK && result) {
            json_decref(params);
            return result;
        }
        CHECK(rc == PARLEY_ERR_IO);
    }
    CHECK(!"ten rollbacks in a row");
    return NULL;
}

static uint64_t
s_status_field(tk_node_t *n, const char *section, const char *field)
{
    json_t *st = s_read(n, "status", NULL);
    json_t *v = json_object_get(json_object_get(st, section), field);
    CHECK(json_is_integer(v));
    uint64_t x = (uint64_t)json_integer_value(v);
    json_decref(st);
    return x;
}

uint64_t
tk_rejected(tk_node_t *n, const char *counter)
{
    return s_status_field(n, "rejected", counter);
}

uint64_t
tk_sync(tk_node_t *n, const char *field)
{
    return s_status_field(n, "sync", field);
}

bool
tk_online(tk_node_t *n, const char *peer)
{
    json_t *peers = s_read(n, "peers", NULL);
    bool online = false;
    size_t i;
    json_t *p;
    json_array_foreach(peers, i, p)
    {
        const char *id = json_string_value(json_object_get(p, "id"));
        if (id && strcmp(id, peer) == 0) {
            online = json_is_true(json_object_get(p, "online"));
        }
    }
    json_decref(peers);
    return online;
}

size_t
tk_count(tk_node_t *n, const char *peer, const char *state)
{
    json_t *h = s_read(n, "history", json_pack("{s:s, s:i}", "peer", peer, "limit", 0));
    size_t count = 0, i;
    json_t *m;
    json_array_foreach(h, i, m)
    {
        const char *s = json_string_value(json_object_get(m, "state"));
        count += state == NULL || (s && strcmp(s, state) == 0);
    }
    json_decref(h);
    return count;
}

//  Opens n's database read-only (WAL: the node keeps writing meanwhile),
//  prepares sql and steps to its first row, which must exist. The caller
//  reads the row, then hands the statement to s_sql_close.
static sqlite3_stmt *
s_sql_first_row(const tk_node_t *n, const char *sql)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/parley.db", n->home);
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    return st;
}

//  Finalizes a statement of s_sql_first_row and closes its connection.
static void
s_sql_close(sqlite3_stmt *st)
{
    sqlite3 *db = sqlite3_db_handle(st);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

int64_t
tk_sql_int(const tk_node_t *n, const char *sql)
{
    sqlite3_stmt *st = s_sql_first_row(n, sql);
    int64_t v = sqlite3_column_int64(st, 0);
    s_sql_close(st);
    return v;
}

size_t
tk_sql_blob(const tk_node_t *n, const char *sql, uint8_t *out, size_t cap)
{
    sqlite3_stmt *st = s_sql_first_row(n, sql);
    size_t len = (size_t)sqlite3_column_bytes(st, 0);
    CHECK(len <= cap);
    memcpy(out, sqlite3_column_blob(st, 0), len);
    s_sql_close(st);
    return len;
}

void
tk_sql_exec(const char *home, const char *sql)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/parley.db", home);
    sqlite3 *db = NULL;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

bool
tk_db_has(const tk_node_t *n, const char *needle)
{
    static const char *const suffix[] = { "", "-wal", "-shm" };
    size_t nlen = strlen(needle);
    for (size_t i = 0; i < 3; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/parley.db%s", n->home, suffix[i]);
        FILE *f = fopen(path, "rb");
        if (!f) {
            continue;
        }
        static uint8_t buf[1 << 20];
        size_t keep = 0, got;
        bool found = false;
        while (!found && (got = fread(buf + keep, 1, sizeof buf - keep, f)) > 0) {
            size_t len = keep + got;
            found = memmem(buf, len, needle, nlen) != NULL;
            keep = len < nlen ? len : nlen - 1;
            memmove(buf, buf + len - keep, keep);
        }
        fclose(f);
        if (found) {
            return true;
        }
    }
    return false;
}

json_t *
tk_send(tk_node_t *n, const char *peer, const char *text)
{
    return tk_call(n, "send", json_pack("{s:s, s:s}", "peer", peer, "text", text));
}

/* ---- the raw peer ---- */

identity_t *
tk_identity_load(const char *home)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/identity.key", home);
    FILE *f = fopen(path, "rb");
    CHECK(f);
    uint8_t buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    identity_t *me = NULL;
    CHECK(identity_file_decode(buf, len, NULL, 0, &me) == PARLEY_OK && me);
    sodium_memzero(buf, sizeof buf);
    return me;
}

tk_raw_t *
tk_raw_connect(const tk_node_t *n)
{
    return tk_raw_connect_as(n, identity_new());
}

tk_raw_t *
tk_raw_connect_as(const tk_node_t *n, identity_t *me)
{
    tk_raw_t *r = tk_raw_open(n, me);
    //  The node's own bundle: it may pass on other owners' bundles too.
    frame_t f;
    do {
        CHECK(tk_raw_recv(r, FRAME_PREKEY, &f, 5000));
        CHECK(dm_prekey_decode(f.bundle, f.bundle_len, &r->spk) == PARLEY_OK);
    } while (memcmp(r->spk.owner, r->node, 32) != 0);
    CHECK(dm_scope(r->me, r->node, r->scope) == PARLEY_OK);
    r->day = (uint32_t)(tk_ms() / 86400000u);
    CHECK(dm_x3dh_initiate(r->me, r->node, &r->spk, r->ek_pub, r->root) == PARLEY_OK);
    return r;
}

tk_raw_t *
tk_raw_open(const tk_node_t *n, identity_t *me)
{
    tk_raw_t *r = tk_raw_dial(n, me);
    tk_raw_hello(r);
    return r;
}

void
tk_raw_hello(tk_raw_t *r)
{
    const char *eps[1] = { "tcp://127.0.0.1:1" };
    size_t len = 0;
    CHECK(
        frame_encode_hello(identity_ed_pk(r->me), 0, "open", eps, 1, r->out, PARLEY_FRAME_MAX, &len)
        == PARLEY_OK);
    tk_raw_send(r, r->out, len);
}

tk_raw_t *
tk_raw_dial(const tk_node_t *n, identity_t *me)
{
    tk_raw_t *r = calloc(1, sizeof *r);
    CHECK(r);
    r->buf = malloc(PARLEY_FRAME_MAX);
    r->out = malloc(PARLEY_FRAME_MAX);
    r->me = me;
    r->ctx = zmq_ctx_new();
    CHECK(r->buf && r->out && r->me && r->ctx);
    identity_node_id(identity_ed_pk(r->me), r->id);
    memcpy(r->node, n->pk, 32);
    uint8_t node_x[32];
    CHECK(identity_ed_to_x(r->node, node_x) == PARLEY_OK);
    r->sock = zmq_socket(r->ctx, ZMQ_DEALER);
    int zero = 0, timeout = 5000;
    CHECK(r->sock);
    CHECK(zmq_setsockopt(r->sock, ZMQ_LINGER, &zero, sizeof zero) == 0);
    CHECK(zmq_setsockopt(r->sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout) == 0);
    CHECK(zmq_setsockopt(r->sock, ZMQ_CURVE_SERVERKEY, node_x, 32) == 0);
    CHECK(zmq_setsockopt(r->sock, ZMQ_CURVE_PUBLICKEY, identity_x_pk(r->me), 32) == 0);
    CHECK(zmq_setsockopt(r->sock, ZMQ_CURVE_SECRETKEY, identity_x_sk(r->me), 32) == 0);
    CHECK(zmq_connect(r->sock, parley_endpoint(n->node)) == 0);
    return r;
}

void
tk_raw_destroy(tk_raw_t **self_p)
{
    if (!self_p || !*self_p) {
        return;
    }
    tk_raw_t *r = *self_p;
    zmq_close(r->sock);
    zmq_ctx_term(r->ctx);
    identity_destroy(&r->me);
    sodium_memzero(r->root, sizeof r->root);
    free(r->buf);
    free(r->out);
    free(r);
    *self_p = NULL;
}

void
tk_raw_fields(const tk_raw_t *r, uint8_t kind, const uint8_t scope[32], uint64_t seq,
              envelope_t *env)
{
    memset(env, 0, sizeof *env);
    env->version = PARLEY_ENVELOPE_VERSION;
    env->kind = kind;
    memcpy(env->author, identity_ed_pk(r->me), 32);
    memcpy(env->scope, scope, 32);
    env->seq = seq;
    env->ts_ms = tk_ms();
}

size_t
tk_raw_env(tk_raw_t *r, uint8_t kind, const uint8_t scope[32], uint64_t seq, const uint8_t *body,
           size_t len, uint8_t *out)
{
    envelope_t env;
    tk_raw_fields(r, kind, scope, seq, &env);
    env.body = body;
    env.body_len = len;
    size_t n = 0;
    CHECK(envelope_seal(&env, identity_ed_sk(r->me), out, PARLEY_ENVELOPE_MAX, &n) == PARLEY_OK);
    return n;
}

size_t
tk_raw_seal(tk_raw_t *r, uint64_t seq, uint64_t ts, const char *text, const uint8_t *scope,
            const uint8_t *root, uint8_t *out)
{
    envelope_t f;
    memset(&f, 0, sizeof f);
    f.version = PARLEY_ENVELOPE_VERSION;
    f.kind = ENVELOPE_KIND_DM;
    memcpy(f.author, identity_ed_pk(r->me), 32);
    memcpy(f.scope, scope ? scope : r->scope, 32);
    f.seq = seq;
    f.ts_ms = ts ? ts : tk_ms();
    f.expires_ms = r->expires_ms;
    dm_header_t hd;
    memcpy(hd.ek_pub, r->ek_pub, 32);
    hd.spk_id = r->spk.spk_id;
    hd.day0 = r->day;
    hd.day = r->day;
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t clen = 0, len = 0;
    CHECK(content_encode_text(text, strlen(text), content, sizeof content, &clen) == PARLEY_OK);
    CHECK(dm_envelope_seal(r->me, &f, &hd, root ? root : r->root, content, clen, out,
                           PARLEY_ENVELOPE_MAX, &len)
          == PARLEY_OK);
    return len;
}

void
tk_raw_send(tk_raw_t *r, const uint8_t *buf, size_t len)
{
    CHECK(zmq_send(r->sock, buf, len, 0) == (int)len);
}

void
tk_raw_send_env(tk_raw_t *r, const uint8_t *env, size_t len)
{
    frame_batch_t b;
    frame_batch_begin(&b, r->out, PARLEY_FRAME_MAX);
    CHECK(frame_batch_add(&b, env, len) == PARLEY_OK);
    size_t n = frame_batch_finish(&b);
    tk_raw_send(r, r->out, n);
}

bool
tk_raw_recv(tk_raw_t *r, uint8_t type, frame_t *f, int timeout_ms)
{
    uint64_t end = tk_ms() + (uint64_t)timeout_ms;
    while (tk_ms() < end) {
        zmq_pollitem_t item = { r->sock, 0, ZMQ_POLLIN, 0 };
        if (zmq_poll(&item, 1, 50) <= 0) {
            continue;
        }
        int n = zmq_recv(r->sock, r->buf, PARLEY_FRAME_MAX, ZMQ_DONTWAIT);
        if (n > 0 && (size_t)n <= PARLEY_FRAME_MAX
            && frame_decode(r->buf, (size_t)n, f) == PARLEY_OK && f->type == type) {
            return true;
        }
    }
    return false;
}

bool
tk_raw_acked(tk_raw_t *r, const uint8_t *env, size_t len, int timeout_ms)
{
    uint8_t id[32];
    crypto_generichash(id, 32, env, len, NULL, 0);
    uint64_t end = tk_ms() + (uint64_t)timeout_ms;
    frame_t f;
    while (tk_ms() < end) {
        if (tk_raw_recv(r, FRAME_ACK, &f, 100)) {
            for (size_t i = 0; i < f.n_ids; i++) {
                if (memcmp(f.ids + 32 * i, id, 32) == 0) {
                    return true;
                }
            }
        }
    }
    return false;
}
