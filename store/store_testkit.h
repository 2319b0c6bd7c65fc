/*  store/store_testkit.h — private to the self-tests of store/: the helpers
 *  every file's self-test shares (store_test in store.c, store_log_test in
 *  store_log.c, and so on).
 *
 *  Each test works on real files in a fresh mkdtemp directory of its own
 *  (s_t_begin ... s_t_end, which removes it). After its calls it checks
 *  that no prepared statement was left un-reset (s_t_idle), the invariant
 *  store_int.h promises. It damages rows through a second, raw SQLite
 *  connection to the same file (s_t_raw), as a disk error or an attacker
 *  with write access to the file would.
 *
 *  Like store_int.h, this header does not include store.h, so that no file
 *  of store/ includes a header that includes it back: it needs only what
 *  store_int.h declares. Opening a store is therefore left to each test
 *  (store_open, then s_t_idle).
 *
 *  The helpers are static inline: test code in the library, no symbols.
 */
#ifndef PARLEY_STORE_STORE_TESTKIT_H
#define PARLEY_STORE_STORE_TESTKIT_H

#include "../proto/envelope.h"
#include "../proto/limits.h"
#include "../proto/selftest.h"
#include "store_int.h"
#include <dirent.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *name; /* the test's name, in front of what it says */
    bool verbose;     /* say each step (s_t_say) */
    char dir[64];     /* its mkdtemp directory, removed by s_t_end */
} s_t_kit_t;

static inline void
s_t_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    CHECK(n > 0 && (size_t)n < cap);
}

/*  Starts a test: a fresh directory for its files. */
/*  Opens a fresh store at KIT's folder/NAME; its path goes to path (cap). */
static inline store_t *
s_t_open_in(const s_t_kit_t *kit, const char *name, char *path, size_t cap)
{
    s_t_path(path, cap, kit->dir, name);
    store_t *s = NULL;
    CHECK(store_open(path, &s) == 0);
    return s;
}

static inline void
s_t_begin(s_t_kit_t *kit, const char *name, bool verbose)
{
    memset(kit, 0, sizeof *kit);
    kit->name = name;
    kit->verbose = verbose;
    int n = snprintf(kit->dir, sizeof kit->dir, "/tmp/parley-%s-XXXXXX", name);
    CHECK(n > 0 && (size_t)n < sizeof kit->dir);
    CHECK(mkdtemp(kit->dir) != NULL);
}

static inline void
s_t_say(const s_t_kit_t *kit, const char *what)
{
    if (kit->verbose) {
        printf("  %s: %s\n", kit->name, what);
        fflush(stdout); /* a failed CHECK aborts: keep what was said */
    }
}

/*  Ends it: removes the files in its directory, then the directory. */
static inline void
s_t_end(s_t_kit_t *kit)
{
    DIR *d = opendir(kit->dir);
    CHECK(d != NULL);
    struct dirent *e = NULL;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char p[512];
        s_t_path(p, sizeof p, kit->dir, e->d_name);
        CHECK(unlink(p) == 0);
    }
    CHECK(closedir(d) == 0);
    CHECK(rmdir(kit->dir) == 0);
}

/*  No statement of ours is mid-step: each public call reset what it used.
 *  Names the file and the statement that was left busy. */
static inline void
s_t_idle(store_t *self)
{
    for (int p = 0; p < STORE_PART_COUNT; p++) {
        for (size_t i = 0; i < store_parts[p]->count; i++) {
            sqlite3_stmt *st = self->st[p][i];
            if (st == NULL || sqlite3_stmt_busy(st)) {
                fprintf(stderr, "%s: statement %zu %s\n", store_parts[p]->file, i,
                        st == NULL ? "not prepared" : "left busy");
            }
            CHECK(st != NULL && !sqlite3_stmt_busy(st));
        }
    }
    CHECK(!self->in_each);
}

/*  Runs sql on path through a raw connection of its own. */
static inline void
s_t_raw(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
          == SQLITE_OK);
    CHECK(sqlite3_busy_timeout(db, 5000) == SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "raw sql failed: %s: %s\n", sql, err != NULL ? err : "?");
    }
    sqlite3_free(err);
    CHECK(rc == SQLITE_OK);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

/*  An integer from a one-row query run on the store's own connection. */
static inline int64_t
s_t_int(store_t *self, const char *sql)
{
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(self->db, sql, -1, &st, NULL) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    int64_t v = 0;
    CHECK(s_col_range(st, 0, INT64_MIN, INT64_MAX, &v) == 0);
    CHECK(sqlite3_finalize(st) == SQLITE_OK);
    return v;
}

/*  An envelope row with id id in the log (author and scope id, seq 1): for
 *  a test of messages, which name their envelope by its row, and not of
 *  envelopes. Once is enough; again does nothing. */
static inline void
s_t_log_id(store_t *self, const uint8_t id[32])
{
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(self->db,
                             "INSERT OR IGNORE INTO envelopes (id, author, scope, seq, ts_ms,"
                             " expires_ms, kind, bytes, received_ms)"
                             " VALUES (?1, ?1, ?1, 1, 1, 0, 1, x'00', 1)",
                             -1, &st, NULL)
          == SQLITE_OK);
    CHECK(sqlite3_bind_blob(st, 1, id, 32, SQLITE_STATIC) == SQLITE_OK);
    CHECK(sqlite3_step(st) == SQLITE_DONE);
    CHECK(sqlite3_finalize(st) == SQLITE_OK);
}

/*  Does the file at path contain the bytes needle[len]? Missing file: no. */
static inline bool
s_t_file_has(const char *path, const uint8_t *needle, size_t len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return false;
    }
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long size = ftell(f);
    CHECK(size >= 0);
    CHECK(fseek(f, 0, SEEK_SET) == 0);
    uint8_t *buf = malloc((size_t)size + 1);
    CHECK(buf != NULL);
    CHECK(fread(buf, 1, (size_t)size, f) == (size_t)size);
    CHECK(fclose(f) == 0);
    bool found = memmem(buf, (size_t)size, needle, len) != NULL;
    free(buf);
    return found;
}

/*  A stand-in envelope: the right shape and a real BLAKE2b id, but no valid
 *  signature (the store keeps fields and bytes; it never verifies). */
typedef struct {
    envelope_t env;     /* views into bytes */
    uint8_t bytes[200]; /* header | 42-byte body | 64-byte "signature" */
    uint8_t id[32];     /* BLAKE2b-256 of bytes */
} s_t_env_t;

/*  Envelope seq of author in scope, ts 1000 + seq, never expiring, its
 *  body filled with salt (which tells envelopes apart). */
static inline void
s_t_env(s_t_env_t *e, const uint8_t author[32], const uint8_t scope[32], uint64_t seq, uint8_t salt)
{
    memset(e, 0, sizeof *e);
    e->bytes[0] = PARLEY_ENVELOPE_VERSION;
    e->bytes[1] = ENVELOPE_KIND_DM;
    memcpy(e->bytes + 2, author, 32);
    memcpy(e->bytes + 34, scope, 32);
    for (int i = 0; i < 8; i++) {
        e->bytes[66 + i] = (uint8_t)(seq >> (56 - 8 * i));
    }
    memset(e->bytes + PARLEY_ENVELOPE_HEADER_LEN, salt,
           sizeof e->bytes - PARLEY_ENVELOPE_HEADER_LEN);
    e->env.version = PARLEY_ENVELOPE_VERSION;
    e->env.kind = ENVELOPE_KIND_DM;
    memcpy(e->env.author, author, 32);
    memcpy(e->env.scope, scope, 32);
    e->env.seq = seq;
    e->env.ts_ms = 1000 + seq;
    e->env.expires_ms = 0;
    e->env.body = e->bytes + PARLEY_ENVELOPE_HEADER_LEN;
    e->env.body_len = sizeof e->bytes - PARLEY_ENVELOPE_HEADER_LEN - PARLEY_SIG_LEN;
    e->env.signature = e->bytes + sizeof e->bytes - PARLEY_SIG_LEN;
    e->env.bytes = e->bytes;
    e->env.bytes_len = sizeof e->bytes;
    crypto_generichash(e->id, 32, e->bytes, sizeof e->bytes, NULL, 0);
}

#endif
