/*  store/store_recover.c — salvage: copies what can still be read from a
 *  damaged database into a new one (store_recover), for `parley recover`.
 *
 *  Owns no table and no prepared statement of the registry: it works on two
 *  connections of its own for the length of one call, the damaged file (src)
 *  and a new store (dst, made by store_open, so it has the current schema).
 *
 *  SQLite's own salvage (the CLI's .recover, the sqlite3_recover API of
 *  ext/recover) is not part of the library Debian 12 ships (libsqlite3
 *  3.40.1 exports no sqlite3_recover_*), so this walks the tables itself:
 *    - each table of the schema (s_tables, in an order where a message or an
 *      outbox row comes after the envelope it names) is read in rowid order with
 *      SELECT rowid, <dst's columns> FROM t WHERE rowid > ?1 ORDER BY rowid,
 *      and each row is inserted into dst as it comes;
 *    - when a step fails (a damaged page, a bad cell, an overflow chain that
 *      breaks), the walk starts again after the last row it read plus a gap
 *      that doubles on each failure (1, 2, 4, ... rowids): a damaged leaf
 *      page is stepped over in a few probes, and a damaged interior page
 *      ends the table after about 62 (tail_lost). The rowids jumped over are
 *      counted as lost (an upper bound: rows deleted before the damage left
 *      gaps too);
 *    - a row dst refuses (NOT NULL, UNIQUE, an outbox row or a message whose
 *      envelope was lost: foreign keys are on, and both name their envelope
 *      by its row) is counted as refused and skipped;
 *    - scope_authors (WITHOUT ROWID, derived data) is rebuilt from the
 *      envelopes kept rather than copied;
 *    - seq_counters (WITHOUT ROWID) is not copied: what the damage hid of
 *      it cannot be known, so the new file gets a sequence floor instead
 *      (meta seq_floor = the time of the recovery in ms, or the old floor
 *      if higher; store_log.c "Sequence numbers"): every scope's next
 *      number is above any the node used before.
 *  Values are copied as they are: a value of the wrong type or length that
 *  a damaged page yields is caught later by the store's range checks
 *  (PARLEY_ERR_MALFORMED on the call that reads it), as for any row.
 *
 *  src is opened read-write only because reading a WAL file needs its -shm;
 *  PRAGMA query_only forbids writes and SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE
 *  keeps its WAL out of it, so the damaged file is left as it was.
 */
#include "store.h"
#include "store_int.h"
#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* every table of the schema with a rowid, parents before children */
static const char *const s_tables[] = {
    "meta",          "envelopes", "equivocations", "messages",     "outbox",
    "contacts",      "peers",     "own_prekeys",   "peer_prekeys", "send_sessions",
    "recv_sessions", "network",   "network_keys",  "channels",     "chan_keys",
    "chan_chains",   "chan_msgs", "chan_marks",    "chan_queue",
};
#define S_TABLES (sizeof s_tables / sizeof s_tables[0])
_Static_assert(S_TABLES + 1 <= STORE_RECOVER_TABLES, "a report entry per table and scope_authors");

#define S_SQL_MAX 1024u /* one SELECT or INSERT of a table */
#define S_PROBE_MAX 62u /* doublings of the gap before the rest of a table is given up */

/*  Appends to buf (cap bytes, holding *len); PARLEY_ERR_LIMIT when full. */
static int
s_append(char *buf, size_t cap, size_t *len, const char *a, const char *b, const char *c)
{
    int n = snprintf(buf + *len, cap - *len, "%s%s%s", a, b, c);
    if (n < 0 || (size_t)n >= cap - *len) {
        return PARLEY_ERR_LIMIT;
    }
    *len += (size_t)n;
    return 0;
}

/*  Builds the SELECT for src and the INSERT for dst of table, from dst's
 *  columns (the current schema; our own names, no quoting needed beyond ""). */
static int
s_build_sql(sqlite3 *dst, const char *table, char *sel, char *ins, size_t *ncols)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(dst, "SELECT name FROM pragma_table_info(?1)", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return s_err(rc);
    }
    (void)sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC); /* cannot fail: index 1 exists */
    size_t sl = 0;
    size_t il = 0;
    size_t vl = 0;
    char vals[S_SQL_MAX];
    int err = s_append(sel, S_SQL_MAX, &sl, "SELECT rowid", "", "");
    if (err == 0) {
        err = s_append(ins, S_SQL_MAX, &il, "INSERT INTO ", table, " (");
    }
    *ncols = 0;
    bool row = false;
    while (err == 0 && (err = s_step(st, &row)) == 0 && row) {
        const char *col = (const char *)sqlite3_column_text(st, 0);
        if (col == NULL) {
            err = PARLEY_ERR_NOMEM;
            break;
        }
        const char *comma = *ncols == 0 ? "" : ", ";
        err = s_append(sel, S_SQL_MAX, &sl, ", \"", col, "\"");
        if (err == 0) {
            err = s_append(ins, S_SQL_MAX, &il, comma, "\"", col);
        }
        if (err == 0) {
            err = s_append(ins, S_SQL_MAX, &il, "\"", "", "");
        }
        if (err == 0) {
            err = s_append(vals, sizeof vals, &vl, comma, "?", "");
        }
        (*ncols)++;
    }
    (void)sqlite3_finalize(st); /* the step's error is already in err */
    if (err == 0 && *ncols == 0) {
        err = PARLEY_ERR_IO; /* dst lacks the table: our own schema list is wrong */
    }
    if (err == 0) {
        err =
            s_append(sel, S_SQL_MAX, &sl, " FROM \"", table, "\" WHERE rowid > ?1 ORDER BY rowid");
    }
    if (err == 0) {
        err = s_append(ins, S_SQL_MAX, &il, ") VALUES (", vals, ")");
    }
    return err;
}

/*  Copies one table from src to dst into *t, as the file comment says.
 *  An error return is dst's (it cannot be written) or a lack of memory:
 *  damage in src is counted, never returned. */
static int
s_copy_table(sqlite3 *src, sqlite3 *dst, const char *table, store_recover_table_t *t)
{
    char sel_sql[S_SQL_MAX];
    char ins_sql[S_SQL_MAX];
    size_t ncols = 0;
    t->table = table;
    int err = s_build_sql(dst, table, sel_sql, ins_sql, &ncols);
    if (err != 0) {
        return err;
    }
    sqlite3_stmt *ins = NULL;
    int rc = sqlite3_prepare_v2(dst, ins_sql, -1, &ins, NULL);
    if (rc != SQLITE_OK) {
        return s_err(rc);
    }
    sqlite3_stmt *sel = NULL;
    rc = sqlite3_prepare_v2(src, sel_sql, -1, &sel, NULL);
    if (rc != SQLITE_OK) {
        (void)sqlite3_finalize(ins); /* nothing was stepped */
        t->unreadable = true;        /* no such table, or a schema SQLite cannot read */
        return (rc & 0xff) == SQLITE_NOMEM ? PARLEY_ERR_NOMEM : 0;
    }
    int64_t after = INT64_MIN;
    int64_t last = 0; /* the last rowid read; 0 before the first (rowids start at 1) */
    bool failing = false;
    uint64_t gap = 1;
    unsigned probes = 0;
    bool read_any = false;
    for (;;) {
        (void)sqlite3_bind_int64(sel, 1, after); /* cannot fail: index 1 exists */
        int src_rc = SQLITE_OK;
        while (err == 0 && (src_rc = sqlite3_step(sel)) == SQLITE_ROW) {
            int64_t r = sqlite3_column_int64(sel, 0);
            if (read_any && r <= last) {
                continue; /* out of order: a damaged page; never read a row twice */
            }
            if (failing) {
                t->stretches++;
                t->lost += r > last ? (uint64_t)(r - last) - 1 : 0;
                failing = false;
            }
            last = r;
            read_any = true;
            gap = 1;
            probes = 0;
            for (size_t i = 0; i < ncols; i++) {
                /* copies the value; cannot fail for an index in range but
                   for memory, which the step below then reports */
                (void)sqlite3_bind_value(ins, (int)i + 1, sqlite3_column_value(sel, (int)i + 1));
            }
            int irc = sqlite3_step(ins);
            (void)sqlite3_reset(ins); /* repeats irc, handled here */
            (void)sqlite3_clear_bindings(ins);
            if (irc == SQLITE_DONE) {
                t->kept++;
            } else if ((irc & 0xff) == SQLITE_CONSTRAINT) {
                t->refused++;
            } else {
                err = s_err(irc); /* dst cannot be written: stop */
            }
        }
        (void)sqlite3_reset(sel); /* repeats src_rc, handled below */
        if (err != 0 || src_rc == SQLITE_DONE) {
            if (err == 0 && failing) {
                /* a probe ran past the end: the tail was the damage */
                t->stretches++;
                t->tail_lost = true;
            }
            break;
        }
        if ((src_rc & 0xff) == SQLITE_NOMEM) {
            err = PARLEY_ERR_NOMEM;
            break;
        }
        /* unreadable from after on: step over a gap that doubles */
        failing = true;
        if (probes >= S_PROBE_MAX || last > INT64_MAX - (int64_t)gap) {
            t->stretches++;
            t->tail_lost = true;
            if (!read_any) {
                t->unreadable = true;
            }
            break;
        }
        after = last + (int64_t)gap;
        gap *= 2;
        probes++;
    }
    (void)sqlite3_finalize(sel); /* errors were counted above */
    (void)sqlite3_finalize(ins);
    return err;
}

/*  Opens src for reading only, as the file comment says. */
static int
s_open_src(const char *path, sqlite3 **out)
{
    int rc = sqlite3_open_v2(path, out, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK || *out == NULL) {
        return rc == SQLITE_NOMEM || *out == NULL ? PARLEY_ERR_NOMEM : PARLEY_ERR_IO;
    }
    sqlite3 *db = *out;
    (void)sqlite3_extended_result_codes(db, 1);
    rc = sqlite3_busy_timeout(db, 5000);
    if (rc == SQLITE_OK) {
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    }
    if (rc == SQLITE_OK) {
        rc = sqlite3_exec(db,
                          "PRAGMA query_only=1; PRAGMA trusted_schema=OFF;"
                          " PRAGMA cell_size_check=ON;",
                          NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        return s_err(rc);
    }
    /* the header and the schema must be readable, and the file not newer */
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return s_err(rc);
    }
    bool row = false;
    int err = s_step(st, &row);
    if (err == 0 && (!row || sqlite3_column_int64(st, 0) > STORE_SCHEMA_VERSION)) {
        err = PARLEY_ERR_UNSUPPORTED;
    }
    (void)sqlite3_finalize(st); /* the step's error is already in err */
    if (err == 0) {
        err = sqlite3_exec(db, "SELECT count(*) FROM sqlite_schema", NULL, NULL, NULL) == SQLITE_OK
                  ? 0
                  : PARLEY_ERR_CORRUPT;
    }
    return err;
}

static void
s_unlink_db(const char *path)
{
    static const char *const suffix[] = { "", "-wal", "-shm", "-journal" };
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        char p[4200];
        int n = snprintf(p, sizeof p, "%s%s", path, suffix[i]);
        if (n > 0 && (size_t)n < sizeof p) {
            (void)unlink(p); /* a file that is not there is what we want */
        }
    }
}

int
store_recover(const char *src, const char *dst, store_recover_report_t *report)
{
    if (src == NULL || dst == NULL || report == NULL || *src == '\0' || *dst == '\0') {
        return PARLEY_ERR_STATE;
    }
    memset(report, 0, sizeof *report);
    struct stat sb;
    if (lstat(dst, &sb) == 0) {
        return PARLEY_ERR_EXISTS;
    }
    if (errno != ENOENT) {
        return PARLEY_ERR_IO;
    }
    sqlite3 *old = NULL;
    int rc = s_open_src(src, &old);
    store_t *s = NULL;
    bool made = false;
    if (rc == 0) {
        rc = store_open(dst, &s);
        made = rc == 0;
    }
    if (rc == 0) {
        rc = store_begin(s);
    }
    for (size_t i = 0; rc == 0 && i < S_TABLES; i++) {
        rc = s_copy_table(old, s->db, s_tables[i], &report->table[i]);
        report->n = i + 1;
    }
    if (rc == 0) {
        store_recover_table_t *t = &report->table[report->n++];
        t->table = "scope_authors";
        int x = sqlite3_exec(s->db,
                             "INSERT OR IGNORE INTO scope_authors"
                             " SELECT DISTINCT scope, author FROM envelopes",
                             NULL, NULL, NULL);
        rc = x == SQLITE_OK ? 0 : s_err(x);
        if (rc == 0) {
            t->kept = (uint64_t)sqlite3_changes64(s->db);
        }
    }
    if (rc == 0) {
        struct timespec ts;
        uint64_t floor = 0;
        (void)clock_gettime(CLOCK_REALTIME, &ts); /* cannot fail for this clock */
        uint64_t now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
        rc = store_meta_get(s, "seq_floor", &floor);
        rc = rc == PARLEY_ERR_NOTFOUND ? 0 : rc;
        if (rc == 0) {
            rc = store_seq_floor_set(s, floor > now_ms ? floor : now_ms);
        }
    }
    if (rc == 0) {
        rc = store_commit(s);
    }
    /* dst's connection first: closing it moves its WAL into the file */
    store_destroy(&s);
    if (old != NULL && sqlite3_close(old) != SQLITE_OK) {
        (void)sqlite3_close_v2(old); /* nothing was written to it: nothing to lose */
    }
    if (rc != 0 && made) {
        s_unlink_db(dst);
    }
    return rc;
}

/* ---- self-test (helpers shared with the other files: store_testkit.h) ---- */

#include "store_testkit.h"

#define S_T_ENVS 600

/*  Overwrites the page of path that holds needle with random bytes, as
 *  `dd conv=notrunc` would; returns the page number (0 = first). */
static long
s_t_smash_page_with(const char *path, const uint8_t *needle, size_t len)
{
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    CHECK(fseek(f, 0, SEEK_END) == 0);
    long size = ftell(f);
    CHECK(size > 0);
    CHECK(fseek(f, 0, SEEK_SET) == 0);
    uint8_t *buf = malloc((size_t)size);
    CHECK(buf != NULL);
    CHECK(fread(buf, 1, (size_t)size, f) == (size_t)size);
    const uint8_t *at = memmem(buf, (size_t)size, needle, len);
    CHECK(at != NULL);
    long page_size = (long)((buf[16] << 8) | buf[17]);
    CHECK(page_size >= 512);
    long page = (long)(at - buf) / page_size;
    CHECK(page > 0);
    uint8_t junk[65536];
    randombytes_buf(junk, (size_t)page_size);
    CHECK(fseek(f, page * page_size, SEEK_SET) == 0);
    CHECK(fwrite(junk, 1, (size_t)page_size, f) == (size_t)page_size);
    CHECK(fclose(f) == 0);
    free(buf);
    return page;
}

static void
s_t_damaged(const s_t_kit_t *kit)
{
    char path[512];
    char out[512];
    s_t_path(path, sizeof path, kit->dir, "damaged.db");
    s_t_path(out, sizeof out, kit->dir, "saved.db");
    store_t *s = NULL;
    CHECK(store_open(path, &s) == 0);
    uint8_t author[32];
    uint8_t scope[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(scope, sizeof scope);
    static s_t_env_t e[S_T_ENVS];
    CHECK(store_begin(s) == 0);
    for (int i = 0; i < S_T_ENVS; i++) {
        s_t_env(&e[i], author, scope, (uint64_t)i + 1, (uint8_t)(i % 251));
        CHECK(store_envelope_put(s, &e[i].env, e[i].id, 1) == 0);
        store_msg_t m = { .has_env = true,
                          .outgoing = false,
                          .seq = (uint64_t)i + 1,
                          .ts_ms = 1000 + (uint64_t)i,
                          .state = MSG_STATE_RECEIVED,
                          .text = (char *)"hello" };
        randombytes_buf(m.msg_id, sizeof m.msg_id);
        memcpy(m.env_id, e[i].id, 32);
        memcpy(m.peer, author, 32);
        CHECK(store_msg_add(s, &m) == 0);
    }
    CHECK(store_contact_put(s, "alice", author, true, 5) == 0);
    store_chan_key_t key = { .epoch = 3, .bound = true };
    memcpy(key.channel, scope, 32);
    memset(key.key, 0x4b, 32);
    CHECK(store_chan_key_put(s, &key) == 0);
    CHECK(store_commit(s) == 0);
    s_t_idle(s);
    store_destroy(&s); /* checkpointed: everything is in the file */

    /* the page that holds envelope 300's bytes: a leaf of the envelopes table */
    s_t_say(kit, "quick_check refuses a file with a page overwritten");
    long page = s_t_smash_page_with(path, e[300].bytes, sizeof e[300].bytes);
    CHECK(page > 1);
    char why[256];
    s = (store_t *)1;
    CHECK(store_open_why(path, &s, why, sizeof why) == PARLEY_ERR_CORRUPT);
    CHECK(s == NULL && why[0] != '\0');
    CHECK(store_open(path, &s) == PARLEY_ERR_CORRUPT && s == NULL);

    s_t_say(kit, "store_recover keeps the rows it can read");
    store_recover_report_t rep;
    CHECK(store_recover(path, out, &rep) == 0);
    CHECK(rep.n == S_TABLES + 1);
    CHECK(strcmp(rep.table[1].table, "envelopes") == 0);
    const store_recover_table_t *te = &rep.table[1];
    CHECK(te->kept > S_T_ENVS / 2 && te->kept < S_T_ENVS);
    CHECK(te->stretches >= 1 && te->lost >= S_T_ENVS - te->kept && !te->unreadable);
    CHECK(te->kept + te->lost + te->refused >= S_T_ENVS);
    /* a message names its envelope by row: those of the lost ones go too */
    CHECK(strcmp(rep.table[3].table, "messages") == 0 && rep.table[3].kept == te->kept);
    CHECK(rep.table[3].refused == S_T_ENVS - te->kept);
    CHECK(strcmp(rep.table[5].table, "contacts") == 0 && rep.table[5].kept == 1);
    CHECK(strcmp(rep.table[14].table, "chan_keys") == 0 && rep.table[14].kept == 1);
    CHECK(strcmp(rep.table[S_TABLES].table, "scope_authors") == 0 && rep.table[S_TABLES].kept == 1);

    /* the saved file opens clean, and holds exactly the envelopes it says */
    CHECK(store_open_why(out, &s, why, sizeof why) == 0 && why[0] == '\0');
    s_t_idle(s);
    uint64_t found = 0;
    for (int i = 0; i < S_T_ENVS; i++) {
        uint8_t *bytes = NULL;
        size_t len = 0;
        int rc = store_envelope_get(s, e[i].id, &bytes, &len);
        CHECK(rc == 0 || rc == PARLEY_ERR_NOTFOUND);
        if (rc == 0) {
            CHECK(len == sizeof e[i].bytes && memcmp(bytes, e[i].bytes, len) == 0);
            found++;
        }
        free(bytes);
    }
    CHECK(found == te->kept);
    CHECK(!store_envelope_has(s, e[300].id)); /* it was on the page overwritten */
    store_contact_t c;
    CHECK(store_contact_by_name(s, "alice", &c) == 0 && c.verified);
    store_stats_t st;
    CHECK(store_stats(s, &st) == 0 && st.envelopes == te->kept && st.messages == te->kept);
    /* the counters are not copied: a floor at the recovery's time stands
       for whatever the damage hid (a random author's next number is at it) */
    uint64_t floor = 0;
    CHECK(store_meta_get(s, "seq_floor", &floor) == 0 && floor > 1700000000000u);
    uint8_t me[32];
    uint8_t fresh[32];
    randombytes_buf(me, sizeof me);
    randombytes_buf(fresh, sizeof fresh);
    uint64_t seq = 0;
    CHECK(store_seq_next(s, me, fresh, &seq) == 0 && seq == floor);
    s_t_idle(s);
    store_destroy(&s);

    store_recover_report_t again;
    CHECK(store_recover(path, out, &again) == PARLEY_ERR_EXISTS); /* never over a file */

    /* the damaged file itself was not changed by the salvage */
    CHECK(store_open(path, &s) == PARLEY_ERR_CORRUPT);
}

static void
s_t_hopeless(const s_t_kit_t *kit)
{
    char path[512];
    char out[512];
    s_t_say(kit, "a file that is no database: refused, nothing made");
    s_t_path(path, sizeof path, kit->dir, "junk.db");
    s_t_path(out, sizeof out, kit->dir, "junk-saved.db");
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    uint8_t junk[8192];
    randombytes_buf(junk, sizeof junk);
    CHECK(fwrite(junk, 1, sizeof junk, f) == sizeof junk);
    CHECK(fclose(f) == 0);
    store_t *s = NULL;
    char why[256];
    CHECK(store_open_why(path, &s, why, sizeof why) == PARLEY_ERR_CORRUPT && why[0] != '\0');
    store_recover_report_t rep;
    CHECK(store_recover(path, out, &rep) == PARLEY_ERR_CORRUPT);
    CHECK(access(out, F_OK) != 0);
    s_t_path(path, sizeof path, kit->dir, "missing.db");
    CHECK(store_recover(path, out, &rep) == PARLEY_ERR_IO);
    CHECK(access(out, F_OK) != 0);
    CHECK(access(path, F_OK) != 0); /* not created by the attempt */
}

void
store_recover_test(bool verbose)
{
    if (verbose) {
        printf(" * store_recover: quick_check at open, salvage of a damaged file\n");
    }
    s_t_kit_t kit;
    s_t_begin(&kit, "recover", verbose);
    s_t_damaged(&kit);
    s_t_hopeless(&kit);
    s_t_end(&kit);
}
