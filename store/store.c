/*  store/store.c — the store's core: opening, configuring and migrating the
 *  file, the registry of prepared statements, transactions, meta, statistics
 *  and checkpoints. Each table is documented at the top of the file that
 *  reads and writes it, next to its SQL:
 *      store.c        meta
 *      store_log.c    envelopes, equivocations, scope_authors
 *      store_msgs.c   messages, outbox
 *      store_peers.c  contacts, peers
 *      store_keys.c   own_prekeys, peer_prekeys, send_sessions, recv_sessions
 *      store_sync.c   no table of its own: what replication reads from the
 *                     others and deletes from them (expiry)
 *
 *  The file
 *  --------
 *  One SQLite 3 database per node, opened with:
 *    journal_mode=WAL      readers never block the writer
 *    synchronous=FULL      a commit is on disk before it returns (a send is durable
 *                          before it is acknowledged); store_begin/commit batch
 *                          rows into one fsync (group commit)
 *    secure_delete=ON      deleted rows (wiped prekey secrets, erased content) are
 *                          overwritten with zeros in the page, not just unlinked
 *    foreign_keys=ON       outbox rows must name a stored envelope
 *    trusted_schema=OFF, SQLITE_DBCONFIG_DEFENSIVE, cell_size_check=ON
 *                          a hostile or damaged file cannot run SQL functions
 *                          from its schema, nor be corrupted further through
 *                          PRAGMA writable_schema; bad cells are reported as
 *                          SQLITE_CORRUPT (→ PARLEY_ERR_CORRUPT) when read
 *    busy_timeout 5000 ms  another process holding the lock briefly is waited for
 *  The file is created mode 0600 before SQLite opens it (its -wal and -shm files
 *  inherit that mode); a symbolic link or a non-regular file at the path is
 *  refused (PARLEY_ERR_IO).
 *
 *  PRAGMA application_id = 0x50524C59 ("PRLY") marks a Parley file; PRAGMA
 *  user_version is the schema version. store_open() refuses a file with
 *  another application id, or a non-zero user_version without our id, or a
 *  user_version above STORE_SCHEMA_VERSION (PARLEY_ERR_UNSUPPORTED). Older
 *  files are brought up to date by s_migrations[v] (version v → v + 1), all
 *  in one BEGIN IMMEDIATE transaction with the new user_version, so a crash
 *  mid-migration leaves the old version intact.
 *
 *  Schema, version 9
 *  -----------------
 *  s_migrations below is the schema, as SQL:
 *    v1  every table: meta, envelopes, equivocations, messages (indexes
 *        messages_history, messages_queued), outbox (outbox_peer), contacts
 *        (contacts_pk), peers, own_prekeys (own_prekeys_current),
 *        peer_prekeys, send_sessions, recv_sessions
 *    v2  replication: the indexes envelopes_scope_ts (scope, ts_ms, id) and
 *        envelopes_expires (expires_ms) WHERE expires_ms > 0, and the table
 *        scope_authors, filled from the envelopes already held
 *    v3  disappearing means gone: messages.expires_ms and
 *        equivocations.expires_ms (INTEGER NOT NULL DEFAULT 0, 0 = never).
 *        A QUEUED message has no envelope to carry its TTL, so the row
 *        keeps it (the absolute time, fixed when it was sent): it is sealed
 *        with what remains or deleted unsent (store_expire_unlogged); rows
 *        with an envelope copy the envelope's, so receipts can expire with
 *        the message they name. Evidence of an equivocation goes when the
 *        equivocating envelope would have. No column of v2 could hold it:
 *        a QUEUED row's seq is 0 by the consistency rules, and overloading
 *        it would make every reader know a second meaning. Existing message
 *        rows take their envelope's expiry; existing evidence rows keep 0
 *        (the expiry is inside the signed bytes, which SQL does not parse).
 *    v4  sequence numbers are never reused: the table seq_counters (scope,
 *        reserved), our durable per-scope counter (store_log.c), filled
 *        from the highest seq of our own envelopes in each scope. Before
 *        v4 the next seq was the highest one still held, reused once the
 *        envelopes under it expired; what expired before the upgrade is
 *        not known, so those scopes may still reuse once (nothing can say
 *        which numbers they used).
 *    v5  the private network: network, network_keys (store_net.c)
 *    v6  channels: channels, chan_keys, chan_chains, chan_msgs, chan_marks
 *        (store_chan.c)
 *    v7  chan_queue, and envelopes_chan_control (scope) WHERE kind = 3
 *    v8  outbox_env (env_id): an envelope's outbox rows without a scan
 *        (its deletion cascades to them)
 *    v9  outbox rows name their envelope by envelopes.n (env_n), not by id:
 *        its indexes grow at their end; outbox_peer is gone (the
 *        UNIQUE (peer, env_n) index lists a peer's rows in log order)
 *    v10 messages name their envelope by envelopes.n (env_n) as well; the
 *        message goes with its envelope (ON DELETE CASCADE)
 *  All keys, ids and public keys are 32-byte BLOBs unless noted; *_ms columns
 *  are ms since the Unix epoch; integers are within [0, INT64_MAX] (uint32
 *  fields within [0, 2^32 - 1]); every read checks that.
 *
 *  meta(key TEXT PK, value INTEGER)
 *      Small named integers: seq_floor (store_log.c), lost_ms and
 *      recovered (node/node.c: a node recovering a lost database). key is 1..64 bytes.
 *      value is an opaque 64-bit pattern (a uint64 stored as its two's
 *      complement), never compared in SQL.
 *
 *  Damage
 *  ------
 *  store_open() runs PRAGMA quick_check on every open and refuses a file
 *  that fails it (PARLEY_ERR_CORRUPT; store_open_why() says what SQLite
 *  found). Every start, not only after an unclean shutdown: the damage this
 *  is for (a disk's bad sectors, a file overwritten in place) happens to a
 *  stopped node as well. Cost, measured on a 93 MB file of 100,000
 *  envelopes and their messages: 0.19 s with the file in the page cache,
 *  1.9 s cold (integrity_check: 1.6 s and 4.1 s). Damage met later, by a
 *  read, is PARLEY_ERR_CORRUPT too (SQLITE_CORRUPT, SQLITE_NOTADB). What can
 *  still be read is saved by store_recover() (store_recover.c).
 *
 *  Secrets live in own_prekeys.secret and *_sessions.key (store_keys.c).
 *  Deleting a row zeroes it in its page (secure_delete); the superseded page
 *  images remain in the WAL until store_checkpoint() truncates it.
 */
#include "store.h"
#include "store_int.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_APPLICATION_ID 0x50524C59 /* "PRLY" */
#define S_META_KEY_MAX 64u          /* meta key, bytes */

/* ---- the schema, one entry per version step ---- */

static const char *const s_migrations[] = {
    /* 0 → 1 */
    "CREATE TABLE meta ("
    "  key TEXT PRIMARY KEY NOT NULL,"
    "  value INTEGER NOT NULL"
    ");"
    "CREATE TABLE envelopes ("
    "  n INTEGER PRIMARY KEY,"
    "  id BLOB NOT NULL UNIQUE,"
    "  author BLOB NOT NULL,"
    "  scope BLOB NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  kind INTEGER NOT NULL,"
    "  bytes BLOB NOT NULL,"
    "  received_ms INTEGER NOT NULL,"
    "  UNIQUE (author, scope, seq)"
    ");"
    "CREATE TABLE equivocations ("
    "  n INTEGER PRIMARY KEY,"
    "  id BLOB NOT NULL UNIQUE,"
    "  author BLOB NOT NULL,"
    "  scope BLOB NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  held_id BLOB NOT NULL,"
    "  bytes BLOB NOT NULL,"
    "  received_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE messages ("
    "  n INTEGER PRIMARY KEY,"
    "  msg_id BLOB NOT NULL UNIQUE,"
    "  env_id BLOB UNIQUE,"
    "  peer BLOB NOT NULL,"
    "  outgoing INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  text TEXT NOT NULL"
    ");"
    "CREATE INDEX messages_history ON messages (peer, ts_ms, outgoing, seq);"
    "CREATE INDEX messages_queued ON messages (peer, ts_ms) WHERE state = 0;"
    "CREATE TABLE outbox ("
    "  n INTEGER PRIMARY KEY,"
    "  peer BLOB NOT NULL,"
    "  env_id BLOB NOT NULL REFERENCES envelopes (id) ON DELETE CASCADE,"
    "  added_ms INTEGER NOT NULL,"
    "  UNIQUE (peer, env_id)"
    ");"
    "CREATE INDEX outbox_peer ON outbox (peer);"
    "CREATE TABLE contacts ("
    "  name TEXT PRIMARY KEY NOT NULL,"
    "  pk BLOB NOT NULL,"
    "  verified INTEGER NOT NULL,"
    "  added_ms INTEGER NOT NULL"
    ");"
    "CREATE INDEX contacts_pk ON contacts (pk);"
    "CREATE TABLE peers ("
    "  pk BLOB PRIMARY KEY NOT NULL,"
    "  endpoint TEXT NOT NULL,"
    "  first_seen_ms INTEGER NOT NULL,"
    "  last_seen_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE own_prekeys ("
    "  spk_id INTEGER PRIMARY KEY,"
    "  owner BLOB NOT NULL,"
    "  spk_pub BLOB NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  bundle BLOB NOT NULL,"
    "  secret BLOB NOT NULL,"
    "  superseded_ms INTEGER"
    ");"
    "CREATE UNIQUE INDEX own_prekeys_current ON own_prekeys ((superseded_ms IS NULL))"
    "  WHERE superseded_ms IS NULL;"
    "CREATE TABLE peer_prekeys ("
    "  owner BLOB PRIMARY KEY NOT NULL,"
    "  spk_id INTEGER NOT NULL,"
    "  spk_pub BLOB NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  bundle BLOB NOT NULL"
    ");"
    "CREATE TABLE send_sessions ("
    "  peer BLOB PRIMARY KEY NOT NULL,"
    "  ek_pub BLOB NOT NULL,"
    "  spk_id INTEGER NOT NULL,"
    "  day0 INTEGER NOT NULL,"
    "  day INTEGER NOT NULL,"
    "  key BLOB NOT NULL"
    ");"
    "CREATE TABLE recv_sessions ("
    "  peer BLOB NOT NULL,"
    "  ek_pub BLOB NOT NULL,"
    "  spk_id INTEGER NOT NULL,"
    "  day0 INTEGER NOT NULL,"
    "  base_day INTEGER NOT NULL,"
    "  key BLOB NOT NULL,"
    "  last_used_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (peer, ek_pub)"
    ");",
    /* 1 → 2: replication. Sync reads a scope in (ts, id) order and streams
       ranges of it; expiry finds due envelopes; scope_authors names who
       wrote in each scope (relays hint members to their scopes with it). */
    "CREATE INDEX envelopes_scope_ts ON envelopes (scope, ts_ms, id);"
    "CREATE INDEX envelopes_expires ON envelopes (expires_ms) WHERE expires_ms > 0;"
    "CREATE TABLE scope_authors ("
    "  scope BLOB NOT NULL,"
    "  author BLOB NOT NULL,"
    "  PRIMARY KEY (scope, author)"
    ") WITHOUT ROWID;"
    "INSERT OR IGNORE INTO scope_authors SELECT DISTINCT scope, author FROM envelopes;",
    /* 2 → 3: disappearing means gone. Due rows are found by scanning the
       QUEUED messages (messages_queued) and the evidence, both small: no
       index of their own. */
    "ALTER TABLE messages ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE equivocations ADD COLUMN expires_ms INTEGER NOT NULL DEFAULT 0;"
    "UPDATE messages SET expires_ms = coalesce((SELECT e.expires_ms FROM envelopes e"
    "  WHERE e.id = messages.env_id), 0) WHERE env_id IS NOT NULL;",
    /* 3 → 4: sequence numbers are never reused. The counters start at the
       highest seq of our own envelopes held (our key is the owner of our
       prekeys; without one, every author's, which is only higher). */
    "CREATE TABLE seq_counters ("
    "  scope BLOB PRIMARY KEY NOT NULL,"
    "  reserved INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "INSERT INTO seq_counters (scope, reserved)"
    "  SELECT scope, max(seq) FROM envelopes"
    "  WHERE author IN (SELECT owner FROM own_prekeys)"
    "     OR NOT EXISTS (SELECT 1 FROM own_prekeys)"
    "  GROUP BY scope;",
    /* 4 → 5: private networks (store_net.c). The roster itself is envelopes
       in the network's scope; these rows say which network this node is in
       and hold the network secrets of the last epochs. */
    "CREATE TABLE network ("
    "  id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 32),"
    "  state INTEGER NOT NULL,"
    "  since_ms INTEGER NOT NULL"
    ");"
    "CREATE TABLE network_keys ("
    "  epoch INTEGER PRIMARY KEY NOT NULL,"
    "  secret BLOB NOT NULL CHECK (length(secret) = 32),"
    "  author BLOB NOT NULL CHECK (length(author) = 32),"
    "  sig BLOB NOT NULL CHECK (length(sig) = 64)"
    ");",
    /* 5 → 6: channels (store_chan.c). Their control logs, keys and
       messages are envelopes; these rows are what a member derived from
       them: its channels, the epoch keys it took, each sender's chain, the
       messages it opened (in channel order) and the members' receipt marks. */
    "CREATE TABLE channels ("
    "  id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 32),"
    "  state INTEGER NOT NULL,"
    "  since_ms INTEGER NOT NULL,"
    "  name TEXT NOT NULL,"
    "  topic TEXT NOT NULL,"
    "  meta_ts INTEGER NOT NULL, meta_author BLOB NOT NULL, meta_seq INTEGER NOT NULL,"
    "  read_ts INTEGER NOT NULL, read_author BLOB NOT NULL, read_seq INTEGER NOT NULL"
    ");"
    "CREATE TABLE chan_keys ("
    "  channel BLOB NOT NULL,"
    "  epoch INTEGER NOT NULL,"
    "  key_id BLOB NOT NULL CHECK (length(key_id) = 8),"
    "  key BLOB NOT NULL CHECK (length(key) = 32),"
    "  author BLOB NOT NULL CHECK (length(author) = 32),"
    "  binding BLOB NOT NULL CHECK (length(binding) = 32),"
    "  bound INTEGER NOT NULL,"
    "  added_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (channel, epoch, key_id)"
    ");"
    "CREATE TABLE chan_chains ("
    "  channel BLOB NOT NULL,"
    "  epoch INTEGER NOT NULL,"
    "  key_id BLOB NOT NULL,"
    "  sender BLOB NOT NULL,"
    "  state BLOB NOT NULL,"
    "  PRIMARY KEY (channel, epoch, key_id, sender)"
    ");"
    "CREATE TABLE chan_msgs ("
    "  n INTEGER PRIMARY KEY,"
    "  channel BLOB NOT NULL,"
    "  env_id BLOB NOT NULL UNIQUE,"
    "  ts_ms INTEGER NOT NULL,"
    "  author BLOB NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  sent_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  text TEXT NOT NULL"
    ");"
    "CREATE INDEX chan_msgs_order ON chan_msgs (channel, ts_ms, author, seq);"
    "CREATE INDEX chan_msgs_author ON chan_msgs (channel, author, seq, ts_ms);"
    "CREATE TABLE chan_marks ("
    "  channel BLOB NOT NULL,"
    "  member BLOB NOT NULL,"
    "  author BLOB NOT NULL,"
    "  status INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  PRIMARY KEY (channel, author, status, member)"
    ");",
    /* 6 → 7: our channel messages waiting for the current epoch's key. */
    "CREATE TABLE chan_queue ("
    "  n INTEGER PRIMARY KEY,"
    "  channel BLOB NOT NULL CHECK (length(channel) = 32),"
    "  ts_ms INTEGER NOT NULL,"
    "  text TEXT NOT NULL"
    ");"
    "CREATE INDEX chan_queue_channel ON chan_queue (channel, n);"
    /* a relay learns at start which channels it carries (their control
       events: a small share of the log) */
    "CREATE INDEX envelopes_chan_control ON envelopes (scope) WHERE kind = 3;",
    /* 7 → 8: deleting an envelope (expiry, erasure) drops its outbox rows
       through the foreign key, and store_outbox_drop by env_id: both were
       a scan of the whole outbox, which grows while a peer is away. */
    "CREATE INDEX outbox_env ON outbox (env_id);",
    /* 8 → 9: the outbox names an envelope by its row (envelopes.n, which
       grows with the log) instead of its id (a hash): a row queued or
       acknowledged touches the end of each outbox index, not a random page
       of two of them. Its own n stays (store_recover walks rowids). */
    "CREATE TABLE outbox_v9 ("
    "  n INTEGER PRIMARY KEY,"
    "  peer BLOB NOT NULL,"
    "  env_n INTEGER NOT NULL REFERENCES envelopes (n) ON DELETE CASCADE,"
    "  added_ms INTEGER NOT NULL,"
    "  UNIQUE (peer, env_n)"
    ");"
    "INSERT INTO outbox_v9 (n, peer, env_n, added_ms)"
    "  SELECT o.n, o.peer, e.n, o.added_ms FROM outbox o JOIN envelopes e ON e.id = o.env_id;"
    "DROP TABLE outbox;"
    "ALTER TABLE outbox_v9 RENAME TO outbox;"
    "CREATE INDEX outbox_env ON outbox (env_n);",
    /* 9 → 10: a message names its envelope by its row too, for the same
       reason: receiving or sealing one wrote a random page of the UNIQUE
       index on its id. The message goes with its envelope (expiry). A
       message whose envelope is not in the log (only damage leaves one;
       it could not be read) is not carried over. */
    "CREATE TABLE messages_v10 ("
    "  n INTEGER PRIMARY KEY,"
    "  msg_id BLOB NOT NULL UNIQUE,"
    "  env_n INTEGER UNIQUE REFERENCES envelopes (n) ON DELETE CASCADE,"
    "  peer BLOB NOT NULL,"
    "  outgoing INTEGER NOT NULL,"
    "  seq INTEGER NOT NULL,"
    "  ts_ms INTEGER NOT NULL,"
    "  state INTEGER NOT NULL,"
    "  text TEXT NOT NULL,"
    "  expires_ms INTEGER NOT NULL DEFAULT 0"
    ");"
    "INSERT INTO messages_v10 (n, msg_id, env_n, peer, outgoing, seq, ts_ms, state, text,"
    "  expires_ms)"
    "  SELECT m.n, m.msg_id, e.n, m.peer, m.outgoing, m.seq, m.ts_ms, m.state, m.text,"
    "  m.expires_ms FROM messages m LEFT JOIN envelopes e ON e.id = m.env_id"
    "  WHERE m.env_id IS NULL OR e.n IS NOT NULL;"
    "DROP TABLE messages;"
    "ALTER TABLE messages_v10 RENAME TO messages;"
    "CREATE INDEX messages_history ON messages (peer, ts_ms, outgoing, seq);"
    "CREATE INDEX messages_queued ON messages (peer, ts_ms) WHERE state = 0;",
};

_Static_assert(sizeof s_migrations / sizeof s_migrations[0] == STORE_SCHEMA_VERSION,
               "one migration per schema version");
_Static_assert(MSG_STATE_QUEUED == 0, "messages_queued and ST_STATS use state = 0");

/* ---- the statements this file runs, prepared once at open ---- */

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SP_BEGIN,
    ST_SP_RELEASE,
    ST_SP_ROLLBACK,
    ST_CHECKPOINT,
    ST_META_GET,
    ST_META_SET,
    ST_STATS,
    ST_CORE_COUNT
};

static const char *const s_sql[ST_CORE_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_SP_BEGIN] = "SAVEPOINT store_op",
    [ST_SP_RELEASE] = "RELEASE store_op",
    [ST_SP_ROLLBACK] = "ROLLBACK TO store_op",
    [ST_CHECKPOINT] = "PRAGMA wal_checkpoint(TRUNCATE)",
    [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
    [ST_META_SET] = "INSERT INTO meta (key, value) VALUES (?1, ?2)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    [ST_STATS] = "SELECT (SELECT count(*) FROM envelopes),"
                 " (SELECT count(*) FROM messages),"
                 " (SELECT count(*) FROM outbox),"
                 " (SELECT count(*) FROM messages WHERE state = 0),"
                 " (SELECT count(*) FROM equivocations),"
                 " (SELECT page_count FROM pragma_page_count()),"
                 " (SELECT page_size FROM pragma_page_size())",
};

/*  This file's statement `which`, ready to bind. */
static sqlite3_stmt *
s_st(store_t *self, int which)
{
    return self->st[STORE_PART_CORE][which];
}

/* ---- opening ---- */

/*  Runs a PRAGMA (or any one-row query) whose first column is an integer. */
static int
s_query_int(sqlite3 *db, const char *sql, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return s_err(rc);
    }
    bool row = false;
    int err = s_step(st, &row);
    if (err == 0 && !row) {
        err = PARLEY_ERR_IO;
    }
    if (err == 0) {
        err = s_col_range(st, 0, INT64_MIN, INT64_MAX, out);
    }
    (void)sqlite3_finalize(st); /* its error, if any, is the step's, handled above */
    return err;
}

static int
s_exec(sqlite3 *db, const char *sql)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : s_err(rc);
}

/*  Creates the file with mode 0600 if it does not exist yet, so the secrets
 *  in it are never readable by others, not even for the moment between
 *  SQLite's creation and a chmod. An existing file is left as it is, but it
 *  must be a regular file and not a symbolic link (which could point our
 *  secrets at a file someone else reads). Directories above it may be links:
 *  a home under a linked /home is normal, and SQLITE_OPEN_NOFOLLOW, which
 *  refuses those too, is not used for that reason. The home's mode 0700 is
 *  what keeps others from swapping the file after this check. */
static int
s_create_private(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0) {
        /* nothing was written: close cannot lose data here */
        (void)close(fd);
        return 0;
    }
    if (errno != EEXIST) {
        return PARLEY_ERR_IO;
    }
    struct stat sb;
    if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        return PARLEY_ERR_IO;
    }
    return 0;
}

#define S_BUSY_MS 5000 /* another process holding a lock briefly is waited for */

static int
s_configure(sqlite3 *db)
{
    (void)sqlite3_extended_result_codes(db, 1);
    int rc = sqlite3_busy_timeout(db, S_BUSY_MS);
    if (rc != SQLITE_OK) {
        return s_err(rc);
    }
    rc = sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    if (rc != SQLITE_OK) {
        return s_err(rc);
    }
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return s_err(rc);
    }
    bool row = false;
    int err = s_step(st, &row);
    if (err == 0) {
        /* SQLite answers with the mode it is in: anything but "wal" means the
           file system cannot do WAL (no shared memory), and we need it */
        const unsigned char *mode = row ? sqlite3_column_text(st, 0) : NULL;
        if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
            err = PARLEY_ERR_IO;
        }
    }
    (void)sqlite3_finalize(st); /* the step's error is already in err */
    if (err != 0) {
        return err;
    }
    err = s_exec(db, "PRAGMA synchronous=FULL;"
                     "PRAGMA secure_delete=ON;"
                     "PRAGMA foreign_keys=ON;"
                     "PRAGMA trusted_schema=OFF;"
                     "PRAGMA cell_size_check=ON;");
    if (err != 0) {
        return err;
    }
    /* A build without foreign keys or secure delete ignores those PRAGMAs
       silently; read them back rather than trust them. */
    int64_t fk = 0;
    int64_t sd = 0;
    int64_t sync = 0;
    err = s_query_int(db, "PRAGMA foreign_keys", &fk);
    if (err == 0) {
        err = s_query_int(db, "PRAGMA secure_delete", &sd);
    }
    if (err == 0) {
        err = s_query_int(db, "PRAGMA synchronous", &sync);
    }
    if (err == 0 && (fk != 1 || sd != 1 || sync != 2)) {
        err = PARLEY_ERR_IO;
    }
    return err;
}

/*  Reads and checks the file's identity and version: 0 with *version set,
 *  or PARLEY_ERR_UNSUPPORTED for a file that is not ours or is newer. */
static int
s_version(sqlite3 *db, int64_t *version)
{
    int64_t app = 0;
    int rc = s_query_int(db, "PRAGMA application_id", &app);
    if (rc == 0) {
        rc = s_query_int(db, "PRAGMA user_version", version);
    }
    if (rc != 0) {
        return rc;
    }
    if (app != 0 && app != S_APPLICATION_ID) {
        return PARLEY_ERR_UNSUPPORTED; /* another program's database */
    }
    if (app == 0 && *version != 0) {
        return PARLEY_ERR_UNSUPPORTED; /* versioned, but not by us */
    }
    if (*version < 0 || *version > STORE_SCHEMA_VERSION) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    return 0;
}

static int
s_migrate(sqlite3 *db)
{
    int64_t version = 0;
    int rc = s_version(db, &version);
    if (rc != 0 || version == STORE_SCHEMA_VERSION) {
        return rc;
    }
    rc = s_exec(db, "BEGIN IMMEDIATE");
    if (rc != 0) {
        return rc;
    }
    /* Read again under the write lock: another process may have migrated
       the file between our first look and the lock. */
    rc = s_version(db, &version);
    for (int64_t v = version; rc == 0 && v < STORE_SCHEMA_VERSION; v++) {
        rc = s_exec(db, s_migrations[v]);
    }
    if (rc == 0 && version < STORE_SCHEMA_VERSION) {
        char sql[96];
        int n = snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d;",
                         S_APPLICATION_ID, STORE_SCHEMA_VERSION);
        rc = (n > 0 && (size_t)n < sizeof sql) ? s_exec(db, sql) : PARLEY_ERR_IO;
    }
    if (rc == 0) {
        rc = s_exec(db, "COMMIT");
    }
    if (rc != 0 && sqlite3_get_autocommit(db) == 0) {
        /* the original error is what the caller needs; a failed rollback is
           undone by SQLite itself when the connection closes */
        (void)s_exec(db, "ROLLBACK");
    }
    return rc;
}

/* ---- the registry of prepared statements ---- */

static const store_sql_t s_core_sql = { "store.c", s_sql, ST_CORE_COUNT };

const store_sql_t *const store_parts[STORE_PART_COUNT] = {
    [STORE_PART_CORE] = &s_core_sql,     [STORE_PART_LOG] = &store_log_sql,
    [STORE_PART_MSGS] = &store_msgs_sql, [STORE_PART_PEERS] = &store_peers_sql,
    [STORE_PART_KEYS] = &store_keys_sql, [STORE_PART_SYNC] = &store_sync_sql,
    [STORE_PART_NET] = &store_net_sql,   [STORE_PART_CHAN] = &store_chan_sql,
};

/*  Prepares every statement of one file's table into a new array. */
static int
s_prepare_part(sqlite3 *db, const store_sql_t *part, sqlite3_stmt ***out)
{
    sqlite3_stmt **st = calloc(part->count, sizeof *st);
    if (st == NULL) {
        return PARLEY_ERR_NOMEM;
    }
    *out = st; /* store_destroy finalizes what was prepared, even on error */
    for (size_t i = 0; i < part->count; i++) {
        if (part->sql[i] == NULL) {
            return PARLEY_ERR_IO; /* a gap in the file's table */
        }
        const char *tail = NULL;
        int rc = sqlite3_prepare_v3(db, part->sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], &tail);
        if (rc != SQLITE_OK) {
            return s_err(rc);
        }
        if (st[i] == NULL || (tail != NULL && *tail != '\0')) {
            return PARLEY_ERR_IO; /* an empty or multi-statement entry */
        }
    }
    return 0;
}

static int
s_prepare_all(store_t *self)
{
    int rc = 0;
    for (int p = 0; rc == 0 && p < STORE_PART_COUNT; p++) {
        rc = s_prepare_part(self->db, store_parts[p], &self->st[p]);
    }
    return rc;
}

/*  Copies text into why (cap bytes; why may be NULL), cut to fit. */
static void
s_why(char *why, size_t cap, const char *text)
{
    if (why != NULL && cap > 0) {
        int n = snprintf(why, cap, "%s", text != NULL ? text : "");
        (void)n; /* a cut message is still the best one there is */
    }
}

/*  PRAGMA quick_check: every page, cell and record of every b-tree is read
 *  and checked for structure (what integrity_check does, minus the
 *  index-against-table comparison). 0 if the file is sound, else
 *  PARLEY_ERR_CORRUPT with SQLite's first complaint in why. */
static int
s_quick_check(sqlite3 *db, char *why, size_t cap)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(1)", -1, &st, NULL);
    if (rc != SQLITE_OK) {
        return s_err(rc);
    }
    bool row = false;
    int err = s_step(st, &row);
    if (err == 0 && !row) {
        err = PARLEY_ERR_IO;
    }
    if (err == 0) {
        const unsigned char *said = sqlite3_column_text(st, 0);
        if (said == NULL || strcmp((const char *)said, "ok") != 0) {
            /* one line: without the "*** in database main ***" heading */
            const char *text = said != NULL ? (const char *)said : "quick_check failed";
            const char *nl = strrchr(text, '\n');
            s_why(why, cap, nl != NULL && nl[1] != '\0' ? nl + 1 : text);
            err = PARLEY_ERR_CORRUPT;
        }
    }
    (void)sqlite3_finalize(st); /* the step's error is already in err */
    return err;
}

int
store_open(const char *path, store_t **out)
{
    return store_open_why(path, out, NULL, 0);
}

int
store_open_why(const char *path, store_t **out, char *why, size_t cap)
{
    s_why(why, cap, "");
    if (out == NULL) {
        return PARLEY_ERR_STATE;
    }
    *out = NULL;
    if (path == NULL || *path == '\0') {
        return PARLEY_ERR_IO;
    }
    int rc = s_create_private(path);
    if (rc != 0) {
        return rc;
    }
    store_t *self = calloc(1, sizeof *self);
    if (self == NULL) {
        return PARLEY_ERR_NOMEM;
    }
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int src = sqlite3_open_v2(path, &self->db, flags, NULL);
    if (src == SQLITE_NOMEM || self->db == NULL) {
        rc = PARLEY_ERR_NOMEM;
    } else if (src != SQLITE_OK) {
        rc = PARLEY_ERR_IO;
    }
    if (rc == 0) {
        rc = s_configure(self->db);
    }
    if (rc == 0) {
        /* tells which commits wrote (store_sync) and checkpoints: instead
           of SQLite's own automatic checkpoint, a hook of the same kind */
        (void)sqlite3_wal_hook(self->db, store_wal_hook, self);
    }
    /* Before anything reads a row: a damaged file is refused whole, with
       what is wrong, rather than failing later call by call with errors
       that name the wrong culprit (see "Damage" at the top). */
    if (rc == 0) {
        rc = s_quick_check(self->db, why, cap);
    }
    if (rc == 0) {
        rc = s_migrate(self->db);
    }
    if (rc == 0) {
        rc = s_prepare_all(self);
    }
    if (rc == PARLEY_ERR_CORRUPT && why != NULL && cap > 0 && why[0] == '\0') {
        s_why(why, cap, self->db != NULL ? sqlite3_errmsg(self->db) : "");
    }
    if (rc != 0) {
        store_destroy(&self);
        return rc;
    }
    *out = self;
    return 0;
}

void
store_destroy(store_t **self_p)
{
    if (self_p == NULL || *self_p == NULL) {
        return;
    }
    store_t *self = *self_p;
    store_checkpointer_stop(self);
    if (self->db != NULL && sqlite3_get_autocommit(self->db) == 0) {
        /* an uncommitted group is discarded, as a crash would; nothing to
           report from a void function, and closing rolls back anyway */
        (void)s_exec(self->db, "ROLLBACK");
    }
    for (int p = 0; p < STORE_PART_COUNT; p++) {
        for (size_t i = 0; self->st[p] != NULL && i < store_parts[p]->count; i++) {
            (void)sqlite3_finalize(self->st[p][i]); /* NULL-safe; steps reported errors */
        }
        free(self->st[p]);
        self->st[p] = NULL;
    }
    free(self->seqs);
    free(self->contact_cache);
    free(self->stats_memo);
    self->seqs = NULL;
    if (self->db != NULL) {
        /* With every statement finalized, close succeeds; as the last
           connection it checkpoints the WAL into the file and deletes it.
           close_v2 is the fallback that can never leak the handle. */
        if (sqlite3_close(self->db) != SQLITE_OK) {
            (void)sqlite3_close_v2(self->db);
        }
    }
    free(self);
    *self_p = NULL;
}

/* ---- transactions ---- */

bool
store_in_txn(const store_t *self)
{
    return self != NULL && sqlite3_get_autocommit(self->db) == 0;
}

//  What every kind of transaction checks before it begins: none open, no
//  failed sync behind. An early commit may still wait for its sync: the
//  WAL only grows, so that sync (or a fully synchronous commit's) makes
//  both durable at once.
static int
s_begin_check(store_t *self)
{
    if (store_in_txn(self)) {
        return PARLEY_ERR_STATE;
    }
    self->stats_stale = true; // a count inside it sees what it writes
    self->split = false;
    self->seq_fresh = false;
    return self->sync_failed ? PARLEY_ERR_IO : 0;
}

//  synchronous=NORMAL (relaxed) or FULL for the next transaction, written
//  only when it changes.
static int
s_sync_mode(store_t *self, bool relaxed)
{
    if (self->relaxed == relaxed) {
        return 0;
    }
    int rc = s_exec(self->db, relaxed ? "PRAGMA synchronous=NORMAL" : "PRAGMA synchronous=FULL");
    if (rc == 0) {
        self->relaxed = relaxed;
    }
    return rc;
}

int
store_begin(store_t *self)
{
    int rc = s_begin_check(self);
    if (rc != 0) {
        return rc;
    }
    /* FULL again before anything that may promise is written (SQLite takes
   the setting only outside a transaction, and when the PRAGMA is
   prepared, not stepped: it cannot be a statement of s_sql) */
    rc = s_sync_mode(self, false);
    return rc != 0 ? rc : s_run(s_st(self, ST_BEGIN), NULL);
}

int
store_begin_relaxed(store_t *self)
{
    int rc = s_begin_check(self);
    if (rc == 0) {
        rc = s_sync_mode(self, true);
    }
    return rc != 0 ? rc : s_run(s_st(self, ST_BEGIN), NULL);
}

//  A split transaction commits with synchronous=NORMAL, which in WAL mode
//  writes the frames and does not sync them; store_sync syncs the WAL file
//  itself, which is what FULL would have done at the end of the COMMIT.
int
store_begin_split(store_t *self)
{
    int rc = s_begin_check(self);
    if (rc == 0) {
        rc = s_sync_mode(self, true);
    }
    if (rc == 0) {
        rc = s_run(s_st(self, ST_BEGIN), NULL);
    }
    self->split = rc == 0;
    return rc;
}

/*  COMMIT, and the sequence cursors told; a split transaction's is written,
 *  not yet synced (self->unsynced). On failure the transaction may still be
 *  open (SQLITE_BUSY) or already rolled back by SQLite (I/O error, disk
 *  full): store_in_txn() tells which. */
static int
s_commit(store_t *self)
{
    if (!store_in_txn(self)) {
        return PARLEY_ERR_STATE;
    }
    if (s_fault(self, STORE_FAULT_COMMIT)) {
        /* what SQLite does after an I/O error in COMMIT; the error to report
           is the injected one, whatever the ROLLBACK says */
        (void)s_run(s_st(self, ST_ROLLBACK), NULL);
        store_seq_txn_end(self, false);
        store_txn_undone(self);
        return PARLEY_ERR_IO;
    }
    self->wrote = false;
    int rc = s_run(s_st(self, ST_COMMIT), NULL);
    if (rc != 0) {
        store_txn_undone(self); // SQLite may have rolled it back already
    }
    /* a failed COMMIT may leave the transaction open, to be rolled back:
       its reservations count as lost either way (the safe side) */
    store_seq_txn_end(self, rc == 0);
    /* a commit that wrote no frame (an expiry pass that found nothing) adds
       nothing to sync; a fully synchronous one that wrote synced the whole
       WAL, what an earlier early commit wrote with it; a relaxed one's
       frames wait for whichever sync comes next, promising nothing, unless
       it reserved sequence numbers of its own: none of them may leave
       before the reservation is on the disk */
    if (rc == 0 && self->wrote) {
        if (self->split || (self->relaxed && self->seq_fresh)) {
            self->unsynced = true;
        } else if (!self->relaxed) {
            self->unsynced = false;
        }
    }
    return rc;
}

int
store_commit(store_t *self)
{
    int rc = s_commit(self);
    return rc == 0 && self->split ? store_sync(self) : rc;
}

int
store_commit_early(store_t *self)
{
    return s_commit(self);
}

int
store_sync(store_t *self)
{
    if (!self->unsynced) {
        return 0;
    }
    sqlite3_file *wal = NULL;
    int rc = sqlite3_file_control(self->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
    if (s_fault(self, STORE_FAULT_SYNC)) {
        rc = SQLITE_IOERR_FSYNC;
    } else if (rc == SQLITE_OK) {
        //  Not open would mean no WAL, which this store never runs without.
        rc = wal && wal->pMethods ? wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL) : SQLITE_IOERR;
    }
    self->unsynced = false;
    if (rc != SQLITE_OK) {
        self->sync_failed = true;
        return PARLEY_ERR_IO;
    }
    return 0;
}

bool
store_txn_split(const store_t *self)
{
    return self->split;
}

bool
store_unsynced(const store_t *self)
{
    return self->unsynced;
}

int
store_rollback(store_t *self)
{
    if (!store_in_txn(self)) {
        return PARLEY_ERR_STATE;
    }
    store_seq_txn_end(self, false);
    store_txn_undone(self);
    return s_run(s_st(self, ST_ROLLBACK), NULL);
}

/*  PARLEY_ERR_BUSY when a reader (another connection) kept the checkpoint
 *  from completing: the WAL was not emptied and old frames may remain. */
int
store_checkpoint(store_t *self)
{
    if (store_in_txn(self)) {
        return PARLEY_ERR_STATE; /* a checkpoint cannot run inside our own write */
    }
    sqlite3_stmt *st = s_st(self, ST_CHECKPOINT);
    bool row = false;
    //  Not waited for: a reader or the background checkpointer holding the
    //  WAL makes it BUSY at once, and the caller tries again later, rather
    //  than the node's loop stopping for up to S_BUSY_MS.
    (void)sqlite3_busy_timeout(self->db, 0);
    int rc = s_step(st, &row);
    (void)sqlite3_busy_timeout(self->db, S_BUSY_MS);
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_IO;
    }
    int64_t busy = 0;
    if (rc == 0) {
        rc = s_col_range(st, 0, 0, 1, &busy);
    }
    if (rc == 0 && busy != 0) {
        rc = PARLEY_ERR_BUSY;
    }
    s_reset(st);
    return rc;
}

/* ---- fault injection ---- */

_Static_assert(STORE_FAULT_COMMIT >= 1 && STORE_FAULT_SYNC < S_FAULT_SLOTS,
               "store_t.fault has a slot for every store_fault_t");

void
store_fault_set(store_t *self, store_fault_t where, int count)
{
    if (self == NULL || (int)where <= 0 || (int)where >= S_FAULT_SLOTS) {
        return;
    }
    self->fault[where] = count > 0 ? count : 0;
}

/* ---- atomic operations for the other files (store_int.h) ---- */

int
store_op_begin(store_t *self, bool *outer)
{
    *outer = sqlite3_get_autocommit(self->db) != 0;
    return s_run(s_st(self, *outer ? ST_BEGIN : ST_SP_BEGIN), NULL);
}

int
store_op_end(store_t *self, bool outer, int rc)
{
    if (rc == 0) {
        rc = s_run(s_st(self, outer ? ST_COMMIT : ST_SP_RELEASE), NULL);
        if (rc == 0) {
            return 0;
        }
    }
    if (outer) {
        if (sqlite3_get_autocommit(self->db) == 0) {
            /* a failed ROLLBACK leaves nothing better to report than rc */
            (void)s_run(s_st(self, ST_ROLLBACK), NULL);
        }
    } else {
        /* ROLLBACK TO keeps the savepoint open; RELEASE then pops it. If either
           fails the caller's transaction is in doubt; rc already says so. */
        (void)s_run(s_st(self, ST_SP_ROLLBACK), NULL);
        (void)s_run(s_st(self, ST_SP_RELEASE), NULL);
    }
    return rc;
}

/* ---- meta ---- */

static int
s_meta_key_check(const char *key, size_t *len)
{
    if (key == NULL) {
        return PARLEY_ERR_MALFORMED;
    }
    *len = strnlen(key, S_META_KEY_MAX + 1);
    if (*len == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    return *len > S_META_KEY_MAX ? PARLEY_ERR_LIMIT : 0;
}

int
store_meta_get(store_t *self, const char *key, uint64_t *value)
{
    size_t len = 0;
    int rc = s_meta_key_check(key, &len);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = s_st(self, ST_META_GET);
    bool row = false;
    rc = S_BIND(st, S_TEXT(key, len));
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    int64_t v = 0;
    if (rc == 0) {
        rc = s_col_range(st, 0, INT64_MIN, INT64_MAX, &v);
    }
    if (rc == 0) {
        *value = (uint64_t)v; /* the two's complement pattern store_meta_set wrote */
    }
    s_reset(st);
    return rc;
}

int
store_meta_set(store_t *self, const char *key, uint64_t value)
{
    size_t len = 0;
    int rc = s_meta_key_check(key, &len);
    if (rc != 0) {
        return rc;
    }
    sqlite3_stmt *st = s_st(self, ST_META_SET);
    /* meta values are never compared in SQL, so the full uint64 range is kept
       as its bit pattern */
    rc = S_BIND(st, S_TEXT(key, len), S_I64((int64_t)value));
    return rc == 0 ? s_run(st, NULL) : rc;
}

/* ---- statistics ---- */

struct store_stats_memo {
    store_stats_t stats;
    uint64_t at_ns;   /* monotonic: when they were counted */
    uint64_t cost_ns; /* how long that took */
    uint64_t counts;  /* how many times they were counted (tests) */
};

static uint64_t
s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

//  Whether counts made at at_ns in cost_ns, stale or not, are counted
//  again at now_ns: a cheap count always, a dear one no more often than
//  STORE_STATS_SHARE times its cost.
static bool
s_stats_recount(bool stale, uint64_t now_ns, uint64_t at_ns, uint64_t cost_ns)
{
    return stale
           && (cost_ns < STORE_STATS_CHEAP_NS || now_ns - at_ns >= STORE_STATS_SHARE * cost_ns);
}

static int
s_stats_count(store_t *self, store_stats_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = s_st(self, ST_STATS);
    bool row = false;
    int rc = s_step(st, &row);
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_IO;
    }
    uint64_t pages = 0;
    uint64_t page_size = 0;
    if (rc == 0) {
        rc = s_col_u64(st, 0, &out->envelopes);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 1, &out->messages);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 2, &out->outbox);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 3, &out->queued);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 4, &out->equivocations);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 5, &pages);
    }
    if (rc == 0) {
        rc = s_col_u64(st, 6, &page_size);
    }
    if (rc == 0 && page_size != 0 && pages > UINT64_MAX / page_size) {
        rc = PARLEY_ERR_MALFORMED;
    }
    if (rc == 0) {
        out->db_bytes = pages * page_size;
    }
    s_reset(st);
    return rc;
}

int
store_stats(store_t *self, store_stats_t *out)
{
    struct store_stats_memo *m = self->stats_memo;
    uint64_t now = s_mono_ns();
    if (m && !s_stats_recount(self->stats_stale, now, m->at_ns, m->cost_ns)) {
        *out = m->stats;
        out->age_ms = self->stats_stale ? (now - m->at_ns) / 1000000u : 0;
        return 0;
    }
    self->stats_stale = false; // what is written from here on makes them stale again
    int rc = s_stats_count(self, out);
    uint64_t done = s_mono_ns();
    if (rc != 0) {
        self->stats_stale = true;
        return rc;
    }
    if (!m) {
        m = self->stats_memo = calloc(1, sizeof *m); // NULL: counted every time
    }
    if (m) {
        m->stats = *out;
        m->at_ns = now;
        m->cost_ns = done - now;
        m->counts++;
    }
    return 0;
}

/* ---- self-test (helpers shared with the other files: store_testkit.h) ---- */

#include "store_testkit.h"

static void
s_t_open_refused(const char *dir)
{
    char path[512];
    store_t *s = NULL;

    /* a future schema */
    s_t_path(path, sizeof path, dir, "newer.db");
    s_t_raw(path, "CREATE TABLE t (x); PRAGMA user_version=99;");
    s = (store_t *)1;
    CHECK(store_open(path, &s) == PARLEY_ERR_UNSUPPORTED);
    CHECK(s == NULL);
    char sql[96];
    CHECK(snprintf(sql, sizeof sql, "PRAGMA application_id=%d; PRAGMA user_version=%d;",
                   S_APPLICATION_ID, STORE_SCHEMA_VERSION + 1)
          > 0);
    s_t_path(path, sizeof path, dir, "newer2.db");
    s_t_raw(path, sql);
    CHECK(store_open(path, &s) == PARLEY_ERR_UNSUPPORTED);
    CHECK(s == NULL);

    /* another program's database, and garbage that is no database */
    s_t_path(path, sizeof path, dir, "other.db");
    s_t_raw(path, "PRAGMA application_id=1234;");
    CHECK(store_open(path, &s) == PARLEY_ERR_UNSUPPORTED);
    s_t_path(path, sizeof path, dir, "garbage.db");
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    uint8_t junk[4096];
    randombytes_buf(junk, sizeof junk);
    CHECK(fwrite(junk, 1, sizeof junk, f) == sizeof junk);
    CHECK(fclose(f) == 0);
    int rc = store_open(path, &s);
    CHECK(rc == PARLEY_ERR_CORRUPT || rc == PARLEY_ERR_IO);
    CHECK(s == NULL);

    /* a symbolic link in place of the file */
    char target[512];
    s_t_path(target, sizeof target, dir, "a.db");
    s_t_path(path, sizeof path, dir, "link.db");
    CHECK(symlink(target, path) == 0);
    CHECK(store_open(path, &s) == PARLEY_ERR_IO);
    CHECK(s == NULL);
    CHECK(store_open("", &s) == PARLEY_ERR_IO);
    CHECK(store_open(dir, &s) == PARLEY_ERR_IO); /* a directory */
    CHECK(s == NULL);
}

/*  A link among the directories above the file is fine (a linked home). */
static void
s_t_open_linked_dir(const char *dir)
{
    char sub[512];
    char link[512];
    char path[512];
    s_t_path(sub, sizeof sub, dir, "sub");
    s_t_path(link, sizeof link, dir, "sublink");
    CHECK(mkdir(sub, 0700) == 0);
    CHECK(symlink(sub, link) == 0);
    s_t_path(path, sizeof path, link, "x.db");
    store_t *s = NULL;
    CHECK(store_open(path, &s) == 0);
    s_t_idle(s);
    CHECK(store_meta_set(s, "k", 1) == 0);
    store_destroy(&s);
    CHECK(store_open(path, &s) == 0);
    s_t_idle(s);
    uint64_t v = 0;
    CHECK(store_meta_get(s, "k", &v) == 0 && v == 1);
    store_destroy(&s);
    s_t_path(path, sizeof path, sub, "x.db");
    CHECK(unlink(path) == 0);
    CHECK(rmdir(sub) == 0);
}

static void
s_t_open_meta(const char *dir)
{
    char path[512];
    char wal[512];
    s_t_path(path, sizeof path, dir, "a.db");
    s_t_path(wal, sizeof wal, dir, "a.db-wal");
    store_t *s = NULL;
    CHECK(store_open(path, &s) == 0);
    s_t_idle(s);

    struct stat sb;
    CHECK(stat(path, &sb) == 0);
    CHECK((sb.st_mode & 0777) == 0600);
    CHECK(s_t_int(s, "PRAGMA user_version") == STORE_SCHEMA_VERSION);
    CHECK(s_t_int(s, "PRAGMA application_id") == S_APPLICATION_ID);
    CHECK(s_t_int(s, "PRAGMA foreign_keys") == 1);
    CHECK(s_t_int(s, "PRAGMA secure_delete") == 1);
    CHECK(s_t_int(s, "PRAGMA synchronous") == 2);
    CHECK(s_t_int(s, "PRAGMA busy_timeout") == 5000);

    uint64_t v = 7;
    CHECK(store_meta_get(s, "next_spk", &v) == PARLEY_ERR_NOTFOUND);
    CHECK(store_meta_set(s, "next_spk", 42) == 0);
    CHECK(store_meta_set(s, "max", UINT64_MAX) == 0);
    CHECK(store_meta_set(s, "next_spk", 43) == 0);
    CHECK(store_meta_get(s, "next_spk", &v) == 0 && v == 43);
    CHECK(store_meta_get(s, "max", &v) == 0 && v == UINT64_MAX);
    CHECK(stat(wal, &sb) == 0); /* the WAL, holding those writes, is as private */
    CHECK((sb.st_mode & 0777) == 0600);
    char longkey[S_META_KEY_MAX + 2];
    memset(longkey, 'k', sizeof longkey - 1);
    longkey[sizeof longkey - 1] = '\0';
    CHECK(store_meta_set(s, longkey, 1) == PARLEY_ERR_LIMIT);
    CHECK(store_meta_set(s, "", 1) == PARLEY_ERR_MALFORMED);
    CHECK(store_meta_get(s, NULL, &v) == PARLEY_ERR_MALFORMED);
    s_t_idle(s);

    store_destroy(&s);
    CHECK(s == NULL);
    store_destroy(&s);
    store_destroy(NULL);
    CHECK(access(wal, F_OK) != 0); /* checkpointed into the file and removed on close */

    /* reopening finds the data and migrates nothing */
    CHECK(store_open(path, &s) == 0);
    s_t_idle(s);
    CHECK(store_meta_get(s, "next_spk", &v) == 0 && v == 43);
    CHECK(s_t_int(s, "PRAGMA user_version") == STORE_SCHEMA_VERSION);
    store_destroy(&s);
}

/*  A version 2 file (as the v2 code wrote it) is brought to the current
 *  version: its messages take their envelope's expiry, QUEUED ones and old
 *  evidence 0 (v3); outbox rows (v9) and messages (v10) name their
 *  envelopes by row. */
static void
s_t_migrate_v2(const char *dir)
{
    char path[512];
    s_t_path(path, sizeof path, dir, "v2.db");
    char sql[4096];
    int n =
        snprintf(sql, sizeof sql,
                 "PRAGMA journal_mode=WAL; BEGIN; %s %s"
                 "INSERT INTO envelopes (id, author, scope, seq, ts_ms, expires_ms, kind,"
                 " bytes, received_ms) VALUES (x'%064x', x'00', x'00', 1, 10, 5000, 1, x'00',"
                 " 10), (x'%064x', x'00', x'00', 2, 11, 0, 1, x'00', 11);"
                 "INSERT INTO messages (msg_id, env_id, peer, outgoing, seq, ts_ms, state,"
                 " text) VALUES (x'01', x'%064x', x'00', 1, 1, 10, 1, 'a'),"
                 " (x'02', x'%064x', x'00', 1, 2, 11, 1, 'b'),"
                 " (x'03', NULL, x'00', 1, 0, 12, 0, 'c'),"
                 " (x'04', x'%064x', x'00', 1, 3, 13, 1, 'no envelope');"
                 "INSERT INTO equivocations (id, author, scope, seq, held_id, bytes,"
                 " received_ms) VALUES (x'09', x'00', x'00', 1, x'00', x'00', 1);"
                 "INSERT INTO outbox (peer, env_id, added_ms) VALUES (x'aa', x'%064x', 5),"
                 " (x'bb', x'%064x', 6);"
                 "PRAGMA application_id=%d; PRAGMA user_version=2; COMMIT;",
                 s_migrations[0], s_migrations[1], 1u, 2u, 1u, 2u, 3u, 2u, 1u, S_APPLICATION_ID);
    CHECK(n > 0 && (size_t)n < sizeof sql);
    s_t_raw(path, sql);
    store_t *s = NULL;
    CHECK(store_open(path, &s) == 0);
    CHECK(s_t_int(s, "PRAGMA user_version") == STORE_SCHEMA_VERSION);
    CHECK(s_t_int(s, "SELECT expires_ms FROM messages WHERE msg_id = x'01'") == 5000);
    CHECK(s_t_int(s, "SELECT expires_ms FROM messages WHERE msg_id = x'02'") == 0);
    CHECK(s_t_int(s, "SELECT expires_ms FROM messages WHERE msg_id = x'03'") == 0);
    CHECK(s_t_int(s, "SELECT expires_ms FROM equivocations") == 0);
    /* v10: the messages name the same envelopes, by row; one naming none
       (only damage leaves one) is gone */
    CHECK(s_t_int(s, "SELECT count(*) FROM messages") == 3);
    CHECK(s_t_int(s, "SELECT count(*) FROM messages m JOIN envelopes e ON e.n = m.env_n"
                     " WHERE (m.text = 'a' AND e.seq = 1) OR (m.text = 'b' AND e.seq = 2)")
          == 2);
    CHECK(s_t_int(s, "SELECT count(*) FROM messages WHERE env_n IS NULL AND text = 'c'") == 1);
    /* v9: the outbox rows name the same envelopes, by row */
    CHECK(s_t_int(s, "SELECT count(*) FROM outbox") == 2);
    CHECK(s_t_int(s, "SELECT count(*) FROM outbox o JOIN envelopes e ON e.n = o.env_n"
                     " WHERE (o.peer = x'aa' AND e.seq = 2) OR (o.peer = x'bb' AND e.seq = 1)")
          == 2);
    s_t_idle(s);
    store_destroy(&s);
}

/*  A version 3 file is brought to version 4: the counters start at the
 *  highest seq of our own envelopes (the owner of our prekeys) per scope,
 *  not at another author's, and a node without a prekey takes every
 *  author's. */
static void
s_t_migrate_v3(const char *dir)
{
    char path[512];
    s_t_path(path, sizeof path, dir, "v3.db");
    char sql[8192];
    int n = snprintf(sql, sizeof sql,
                     "PRAGMA journal_mode=WAL; BEGIN; %s %s %s"
                     "INSERT INTO own_prekeys (spk_id, owner, spk_pub, created_ms, bundle, secret)"
                     " VALUES (1, x'%064x', x'00', 1, x'00', x'00');"
                     "INSERT INTO envelopes (id, author, scope, seq, ts_ms, expires_ms, kind,"
                     " bytes, received_ms) VALUES"
                     " (x'01', x'%064x', x'%064x', 7, 10, 0, 1, x'00', 10),"
                     " (x'02', x'%064x', x'%064x', 9, 11, 0, 1, x'00', 11),"
                     " (x'03', x'%064x', x'%064x', 50, 12, 0, 1, x'00', 12),"
                     " (x'04', x'%064x', x'%064x', 3, 13, 0, 1, x'00', 13);"
                     "PRAGMA application_id=%d; PRAGMA user_version=3; COMMIT;",
                     s_migrations[0], s_migrations[1], s_migrations[2], 0xAAu, 0xAAu, 1u, 0xAAu, 1u,
                     0xBBu, 1u, 0xBBu, 2u, S_APPLICATION_ID);
    CHECK(n > 0 && (size_t)n < sizeof sql);
    s_t_raw(path, sql);
    store_t *s = NULL;
    CHECK(store_open(path, &s) == 0);
    CHECK(s_t_int(s, "PRAGMA user_version") == STORE_SCHEMA_VERSION);
    CHECK(s_t_int(s, "SELECT count(*) FROM seq_counters") == 1);
    CHECK(s_t_int(s, "SELECT reserved FROM seq_counters") == 9);
    uint8_t me[32] = { 0 };
    uint8_t scope[32] = { 0 };
    me[31] = 0xAA;
    scope[31] = 1;
    uint64_t seq = 0;
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == 10);
    s_t_idle(s);
    store_destroy(&s);

    /* no prekey of our own: every author's highest seq counts */
    s_t_path(path, sizeof path, dir, "v3b.db");
    n = snprintf(sql, sizeof sql,
                 "PRAGMA journal_mode=WAL; BEGIN; %s %s %s"
                 "INSERT INTO envelopes (id, author, scope, seq, ts_ms, expires_ms, kind,"
                 " bytes, received_ms) VALUES"
                 " (x'01', x'%064x', x'%064x', 7, 10, 0, 1, x'00', 10),"
                 " (x'03', x'%064x', x'%064x', 50, 12, 0, 1, x'00', 12);"
                 "PRAGMA application_id=%d; PRAGMA user_version=3; COMMIT;",
                 s_migrations[0], s_migrations[1], s_migrations[2], 0xAAu, 1u, 0xBBu, 1u,
                 S_APPLICATION_ID);
    CHECK(n > 0 && (size_t)n < sizeof sql);
    s_t_raw(path, sql);
    CHECK(store_open(path, &s) == 0);
    CHECK(s_t_int(s, "SELECT reserved FROM seq_counters") == 50);
    s_t_idle(s);
    store_destroy(&s);
}

/*  S_BIND puts each kind of value into SQL as its own type, refuses a list
 *  that does not match the statement's parameters and a u64 SQL cannot
 *  compare, and leaves the statement reset and unbound after a refusal.
 *  (A value of the wrong C type for its S_* constructor does not compile,
 *  so that case cannot be run here: the _Generic in store_int.h is its
 *  test.) */
static void
s_t_bind(store_t *s)
{
    static const uint8_t key[32] = { 1, 2, 3 };
    bool yes = true; /* S_BOOL(true) does not compile: true is an int */
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(s->db,
                             "SELECT typeof(?1), typeof(?2), typeof(?3), typeof(?4), typeof(?5),"
                             " typeof(?6), ?1, ?2, ?3, ?4, ?6",
                             -1, &st, NULL)
          == SQLITE_OK);
    CHECK(S_BIND(st, S_B32(key), S_I64(-5), S_U64((uint64_t)INT64_MAX), S_BOOL(yes), S_NULL,
                 S_TEXT("hey", 3))
          == 0);
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    static const char *const types[6] = { "blob", "integer", "integer", "integer", "null", "text" };
    for (int i = 0; i < 6; i++) {
        CHECK(strcmp((const char *)sqlite3_column_text(st, i), types[i]) == 0);
    }
    uint8_t got[32];
    CHECK(s_col_blob(st, 6, got, sizeof got) == 0 && memcmp(got, key, 32) == 0);
    CHECK(sqlite3_column_int64(st, 7) == -5);
    CHECK(sqlite3_column_int64(st, 8) == INT64_MAX);
    CHECK(sqlite3_column_int64(st, 9) == 1);
    char text[8];
    CHECK(s_col_text_into(st, 10, text, sizeof text) == 0 && strcmp(text, "hey") == 0);
    s_reset(st);

    /* refused: too few values, too many, a u64 above INT64_MAX (the fourth
       value, after three were bound), a blob longer than SQLite takes */
    CHECK(S_BIND(st, S_B32(key)) == PARLEY_ERR_STATE);
    CHECK(!sqlite3_stmt_busy(st));
    CHECK(S_BIND(st, S_B32(key), S_I64(1), S_I64(2), S_I64(3), S_I64(4), S_I64(5), S_I64(6))
          == PARLEY_ERR_STATE);
    CHECK(S_BIND(st, S_B32(key), S_I64(1), S_I64(2), S_U64(UINT64_MAX), S_NULL, S_NULL)
          == PARLEY_ERR_LIMIT);
    CHECK(
        S_BIND(st, S_BLOB(key, (size_t)INT32_MAX + 1), S_I64(1), S_I64(2), S_I64(3), S_NULL, S_NULL)
        == PARLEY_ERR_LIMIT);
    /* what the refused calls bound before the bad value was cleared again */
    CHECK(sqlite3_step(st) == SQLITE_ROW);
    for (int i = 0; i < 6; i++) {
        CHECK(strcmp((const char *)sqlite3_column_text(st, i), "null") == 0);
    }
    CHECK(sqlite3_finalize(st) == SQLITE_OK);
    s_t_idle(s);
}

/*  Every statement the store prepares, through EXPLAIN QUERY PLAN: none may
 *  read a whole table or index that grows with the log (a SCAN), but for the
 *  ones listed here, each with the reason it is bounded. A new statement
 *  that scans fails this test until it gets an index or a reason. */
static const struct {
    const char *file;
    const char *needle; /* a substring of the statement */
    const char *why;
} s_t_scans[] = {
    { "store.c", "SELECT (SELECT count(*) FROM envelopes)", "status and stats: on request" },
    { "store_log.c", "FROM envelopes ORDER BY n", "store_envelope_each: reads the whole log" },
    { "store_log.c", "FROM equivocations", "kept small by STORE_EVIDENCE_MAX" },
    { "store_log.c", "seq_counters", "one row per scope we write in, read at start" },
    { "store_msgs.c", "WHERE state = 0", "partial index: queued messages only" },
    { "store_msgs.c", "GROUP BY peer", "conversations: on request, one pass of the index" },
    { "store_msgs.c", "WITH RECURSIVE p(peer)", "the CTE's own rows: one (peer, env_n) seek each" },
    { "store_peers.c", "FROM contacts ORDER BY name", "listing contacts: on request" },
    { "store_peers.c", "FROM peers ORDER BY", "bounded table, read at start and on request" },
    { "store_keys.c", "own_prekeys", "a handful of rows: rotation and grace bound them" },
    { "store_keys.c", "FROM peer_prekeys", "bounded by the eviction this statement does" },
    { "store_keys.c", "FROM recv_sessions ORDER BY", "read once at start" },
    { "store_sync.c", "FROM scope_authors ORDER BY", "read once at start" },
    { "store_sync.c", "WHERE state = 0", "partial index: queued messages only" },
    { "store_sync.c", "FROM equivocations", "kept small by STORE_EVIDENCE_MAX" },
    { "store_sync.c", "FROM peer_prekeys", "one row per peer, bounded by eviction" },
    { "store_net.c", "network", "one network, a few key epochs" },
    { "store_chan.c", "FROM channels ORDER BY id", "at most 4,096 channels, listed on request" },
    { "store_chan.c", "WHERE kind = 3", "partial index: channel control events, at start" },
};

static bool
s_t_scan_allowed(const store_sql_t *part, const char *sql)
{
    for (size_t i = 0; i < sizeof s_t_scans / sizeof s_t_scans[0]; i++) {
        if (s_t_scans[i].file && strcmp(s_t_scans[i].file, part->file) == 0
            && strstr(sql, s_t_scans[i].needle) != NULL) {
            return true;
        }
    }
    return false;
}

static void
s_t_plans(store_t *s)
{
    size_t bad = 0;
    for (int p = 0; p < STORE_PART_COUNT; p++) {
        const store_sql_t *part = store_parts[p];
        for (size_t i = 0; i < part->count; i++) {
            char *q = sqlite3_mprintf("EXPLAIN QUERY PLAN %s", part->sql[i]);
            CHECK(q != NULL);
            sqlite3_stmt *st = NULL;
            CHECK(sqlite3_prepare_v2(s->db, q, -1, &st, NULL) == SQLITE_OK);
            sqlite3_free(q);
            while (sqlite3_step(st) == SQLITE_ROW) {
                const char *detail = (const char *)sqlite3_column_text(st, 3);
                if (detail && strncmp(detail, "SCAN ", 5) == 0
                    && strcmp(detail, "SCAN CONSTANT ROW") != 0
                    && strstr(detail, "VIRTUAL TABLE") == NULL
                    && !s_t_scan_allowed(part, part->sql[i])) {
                    fprintf(stderr, "%s: statement %zu scans (%s): %s\n", part->file, i, detail,
                            part->sql[i]);
                    bad++;
                }
            }
            CHECK(sqlite3_finalize(st) == SQLITE_OK);
        }
    }
    CHECK(bad == 0);
}

/*  A relaxed transaction commits with synchronous=NORMAL; the next plain
 *  one is FULL again, and so is every statement outside one. */
static void
s_t_relaxed(store_t *s)
{
    CHECK(store_begin_relaxed(s) == 0);
    CHECK(store_begin_relaxed(s) == PARLEY_ERR_STATE);
    CHECK(store_meta_set(s, "relaxed", 1) == 0);
    CHECK(store_commit(s) == 0);
    CHECK(s_t_int(s, "PRAGMA synchronous") == 1);
    CHECK(store_begin(s) == 0);
    CHECK(s_t_int(s, "PRAGMA synchronous") == 2);
    CHECK(store_meta_set(s, "relaxed", 2) == 0);
    CHECK(store_commit(s) == 0);
    uint64_t v = 0;
    CHECK(store_meta_get(s, "relaxed", &v) == 0 && v == 2);
    s_t_idle(s);
}

/*  A split transaction: written by store_commit_early (visible at once),
 *  durable by store_sync, which every later transaction waits for; its
 *  numbers are fresh only when a reservation of its own covers them; a
 *  failed sync closes the store to writes. */
static void
s_t_split(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "split.db", path, sizeof path);
    uint8_t me[32];
    uint8_t scope[32];
    randombytes_buf(me, sizeof me);
    randombytes_buf(scope, sizeof scope);
    uint64_t v = 0;
    uint64_t seq = 0;
    size_t n = 0;

    CHECK(store_sync(s) == 0); /* nothing waits */
    CHECK(store_begin_split(s) == 0);
    CHECK(store_txn_split(s) && !store_unsynced(s));
    CHECK(s_t_int(s, "PRAGMA synchronous") == 1);
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == 1);
    CHECK(store_seq_fresh(s)); /* a new scope: its block is in this transaction */
    CHECK(store_meta_set(s, "split", 1) == 0);
    CHECK(store_commit_early(s) == 0);
    CHECK(!store_in_txn(s) && store_unsynced(s));
    CHECK(store_meta_get(s, "split", &v) == 0 && v == 1); /* visible before the sync */
    /* later transactions may begin before it: a relaxed commit and one that
       writes nothing leave it waiting, and the sync covers them all */
    CHECK(store_begin_relaxed(s) == 0);
    CHECK(store_meta_set(s, "relaxed", 1) == 0);
    CHECK(store_commit(s) == 0);
    CHECK(store_unsynced(s));
    CHECK(store_begin_split(s) == 0);
    CHECK(store_meta_get(s, "relaxed", &v) == 0 && v == 1);
    CHECK(store_commit_early(s) == 0);
    CHECK(store_unsynced(s));
    CHECK(store_begin(s) == 0);
    CHECK(store_commit(s) == 0); /* wrote nothing: synced nothing */
    CHECK(store_unsynced(s));
    CHECK(store_sync(s) == 0);
    CHECK(!store_unsynced(s));
    /* a relaxed commit that reserved numbers of its own waits for a sync */
    uint8_t scope2[32];
    randombytes_buf(scope2, sizeof scope2);
    CHECK(store_begin_relaxed(s) == 0);
    CHECK(store_seq_next(s, me, scope2, &seq) == 0 && seq == 1 && store_seq_fresh(s));
    CHECK(store_meta_set(s, "relaxed", 3) == 0);
    CHECK(store_commit(s) == 0);
    CHECK(store_unsynced(s));
    CHECK(store_sync(s) == 0);
    /* a fully synchronous commit that writes syncs what waited with it */
    CHECK(store_begin_split(s) == 0);
    CHECK(store_meta_set(s, "relaxed", 2) == 0);
    CHECK(store_commit_early(s) == 0);
    CHECK(store_unsynced(s));
    CHECK(store_begin(s) == 0);
    CHECK(store_meta_set(s, "full", 1) == 0);
    CHECK(store_commit(s) == 0);
    CHECK(!store_unsynced(s));
    CHECK(store_seq_refill(s, &n) == 0);

    /* the block is durable now: the next number is not fresh */
    CHECK(store_begin_split(s) == 0);
    CHECK(!store_seq_fresh(s));
    CHECK(store_seq_next(s, me, scope, &seq) == 0 && seq == 2);
    CHECK(!store_seq_fresh(s));
    CHECK(store_meta_set(s, "split", 2) == 0);
    CHECK(store_commit(s) == 0); /* both halves at once */
    CHECK(!store_unsynced(s));

    /* a plain transaction is FULL again; its early commit is a whole one */
    CHECK(store_begin(s) == 0);
    CHECK(!store_txn_split(s));
    CHECK(s_t_int(s, "PRAGMA synchronous") == 2);
    CHECK(store_commit_early(s) == 0);
    CHECK(!store_unsynced(s));

    /* a commit that wrote nothing has nothing to sync */
    CHECK(store_begin_split(s) == 0);
    CHECK(store_meta_get(s, "split", &v) == 0);
    CHECK(store_commit_early(s) == 0);
    CHECK(!store_unsynced(s));

    /* a failed commit leaves nothing to sync */
    store_fault_set(s, STORE_FAULT_COMMIT, 1);
    CHECK(store_begin_split(s) == 0);
    CHECK(store_commit_early(s) == PARLEY_ERR_IO);
    CHECK(!store_unsynced(s));

    /* the disk refuses the sync: the store takes no more transactions */
    CHECK(store_begin_split(s) == 0);
    CHECK(store_meta_set(s, "split", 3) == 0);
    CHECK(store_commit_early(s) == 0);
    store_fault_set(s, STORE_FAULT_SYNC, 1);
    CHECK(store_sync(s) == PARLEY_ERR_IO);
    CHECK(!store_unsynced(s));
    CHECK(store_begin(s) == PARLEY_ERR_IO);
    CHECK(store_begin_split(s) == PARLEY_ERR_IO);
    store_destroy(&s);
    CHECK(store_open(path, &s) == 0); /* open again: what is on the disk */
    CHECK(store_meta_get(s, "split", &v) == 0 && v >= 2);
    CHECK(store_begin_split(s) == 0);
    CHECK(store_meta_set(s, "split", 4) == 0);
    store_fault_set(s, STORE_FAULT_SYNC, 1);
    CHECK(store_commit(s) == PARLEY_ERR_IO); /* store_commit's own sync, too */
    CHECK(store_begin(s) == PARLEY_ERR_IO);
    store_destroy(&s);
}

/*  The background checkpointer: commits past STORE_CKPT_FRAMES wake it, it
 *  completes checkpoints while commits go on, and the file holds every
 *  commit after it stopped. */
static void
s_t_ckpt(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "ckpt.db", path, sizeof path);
    uint8_t author[32];
    uint8_t scope[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(scope, sizeof scope);
    CHECK(store_checkpointer_done(s) == 0);
    CHECK(store_checkpointer_start(s) == 0);
    CHECK(store_checkpointer_start(s) == PARLEY_ERR_STATE);
    enum { N = 1500 };
    static s_t_env_t e;
    uint64_t seq = 0;
    for (int round = 0; round < 40 && store_checkpointer_done(s) == 0; round++) {
        for (int i = 0; i < N / 10; i++) { /* each commit writes a few pages */
            seq++;
            s_t_env(&e, author, scope, seq, (uint8_t)seq);
            CHECK(store_begin(s) == 0);
            CHECK(store_envelope_put(s, &e.env, e.id, 1) == 0);
            CHECK(store_commit(s) == 0);
        }
        struct timespec nap = { 0, 50 * 1000 * 1000 };
        nanosleep(&nap, NULL);
    }
    CHECK(store_checkpointer_done(s) >= 1);
    store_checkpointer_stop(s);
    store_checkpointer_stop(s); /* idempotent */
    store_checkpointer_stop(NULL);
    CHECK(store_checkpointer_done(s) == 0);
    seq++;
    s_t_env(&e, author, scope, seq, (uint8_t)seq);
    CHECK(store_envelope_put(s, &e.env, e.id, 1) == 0); /* commits as before */
    store_destroy(&s);
    CHECK(store_open(path, &s) == 0);
    CHECK(store_envelope_has(s, e.id));
    uint64_t last = 0;
    CHECK(store_last_seq(s, author, scope, &last) == 0 && last == seq);
    store_destroy(&s);
}

static void
s_t_txn(store_t *s)
{
    uint8_t author[32];
    uint8_t scope[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(scope, sizeof scope);
    s_t_env_t a;
    s_t_env_t b;
    s_t_env(&a, author, scope, 1, 0x31);
    s_t_env(&b, author, scope, 2, 0x32);

    CHECK(!store_in_txn(s));
    CHECK(store_commit(s) == PARLEY_ERR_STATE);
    CHECK(store_rollback(s) == PARLEY_ERR_STATE);
    CHECK(store_begin(s) == 0);
    CHECK(store_in_txn(s));
    CHECK(store_begin(s) == PARLEY_ERR_STATE);
    CHECK(store_checkpoint(s) == PARLEY_ERR_STATE);
    CHECK(store_envelope_put(s, &a.env, a.id, 1) == 0);
    CHECK(store_envelope_has(s, a.id));
    CHECK(store_rollback(s) == 0);
    CHECK(!store_in_txn(s));
    CHECK(!store_envelope_has(s, a.id));

    CHECK(store_begin(s) == 0);
    CHECK(store_envelope_put(s, &a.env, a.id, 1) == 0);
    CHECK(store_envelope_put(s, &b.env, b.id, 1) == 0);
    CHECK(store_envelope_put(s, &a.env, a.id, 1) == PARLEY_ERR_DUPLICATE); /* txn goes on */
    CHECK(store_in_txn(s));
    CHECK(store_commit(s) == 0);
    CHECK(!store_in_txn(s));
    CHECK(store_envelope_has(s, a.id) && store_envelope_has(s, b.id));
    CHECK(store_checkpoint(s) == 0);
    s_t_idle(s);
}

/*  STORE_FAULT_COMMIT: a failed commit rolls back and leaves nothing stored,
 *  on disk either; the next commit works; counts, clearing, and calls that
 *  do not use a fault up. */
static void
s_t_fault_commit(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "fault.db", path, sizeof path);
    uint8_t author[32];
    uint8_t scope[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(scope, sizeof scope);
    s_t_env_t e[3];
    for (int i = 0; i < 3; i++) {
        s_t_env(&e[i], author, scope, (uint64_t)i + 1, (uint8_t)i);
    }
    uint64_t v = 0;

    store_fault_set(s, STORE_FAULT_COMMIT, 1);
    CHECK(store_commit(s) == PARLEY_ERR_STATE); /* no transaction: the fault waits */
    CHECK(store_meta_set(s, "auto", 1) == 0);   /* an autocommitted write is not hit */
    CHECK(store_begin(s) == 0);
    CHECK(store_envelope_put(s, &e[0].env, e[0].id, 1) == 0);
    CHECK(store_meta_set(s, "k", 1) == 0);
    CHECK(store_commit(s) == PARLEY_ERR_IO);
    CHECK(!store_in_txn(s));
    CHECK(!store_envelope_has(s, e[0].id));
    CHECK(store_meta_get(s, "k", &v) == PARLEY_ERR_NOTFOUND);
    s_t_idle(s);

    /* the next commit works */
    CHECK(store_begin(s) == 0);
    CHECK(store_envelope_put(s, &e[1].env, e[1].id, 1) == 0);
    CHECK(store_commit(s) == 0);
    CHECK(store_envelope_has(s, e[1].id));

    /* COUNT commits fail, then they work again; 0 clears what is left */
    store_fault_set(s, STORE_FAULT_COMMIT, 2);
    for (int i = 0; i < 3; i++) {
        CHECK(store_begin(s) == 0);
        CHECK(store_commit(s) == (i < 2 ? PARLEY_ERR_IO : 0));
        CHECK(!store_in_txn(s));
    }
    store_fault_set(s, STORE_FAULT_COMMIT, 5);
    store_fault_set(s, STORE_FAULT_COMMIT, 0);
    CHECK(store_begin(s) == 0);
    CHECK(store_envelope_put(s, &e[2].env, e[2].id, 1) == 0);
    CHECK(store_commit(s) == 0);
    /* another store's faults, unknown operations and no store are ignored */
    store_fault_set(NULL, STORE_FAULT_COMMIT, 1);
    store_fault_set(s, (store_fault_t)0, 1);
    store_fault_set(s, (store_fault_t)99, 1);
    CHECK(store_begin(s) == 0);
    CHECK(store_commit(s) == 0);
    s_t_idle(s);
    store_destroy(&s);

    /* on disk: what was committed, and nothing of the failed commit */
    CHECK(store_open(path, &s) == 0);
    CHECK(!store_envelope_has(s, e[0].id));
    CHECK(store_envelope_has(s, e[1].id) && store_envelope_has(s, e[2].id));
    CHECK(store_meta_get(s, "k", &v) == PARLEY_ERR_NOTFOUND);
    CHECK(store_meta_get(s, "auto", &v) == 0 && v == 1);
    store_destroy(&s);
}

/*  Counts rows of each kind, and finds them all again after a reopen. */
static void
s_t_stats(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "stats.db", path, sizeof path);
    store_stats_t st;
    CHECK(store_stats(s, &st) == 0);
    CHECK(st.envelopes == 0 && st.messages == 0 && st.outbox == 0);
    CHECK(st.queued == 0 && st.equivocations == 0);
    CHECK(st.db_bytes > 0 && st.db_bytes % 4096 == 0);

    uint8_t author[32];
    uint8_t scope[32];
    uint8_t peer[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(scope, sizeof scope);
    randombytes_buf(peer, sizeof peer);
    s_t_env_t e[3];
    for (int i = 0; i < 3; i++) {
        s_t_env(&e[i], author, scope, (uint64_t)i + 1, (uint8_t)i);
        CHECK(store_envelope_put(s, &e[i].env, e[i].id, 1) == 0);
    }
    s_t_env_t forged;
    s_t_env(&forged, author, scope, 2, 0xEE);
    CHECK(store_envelope_put(s, &forged.env, forged.id, 1) == PARLEY_ERR_EQUIVOCATION);
    CHECK(store_outbox_add(s, e[0].id, peer, 1) == 0);
    CHECK(store_outbox_add(s, e[1].id, peer, 1) == 0);
    store_msg_t queued = { .msg_id = { 1 }, .outgoing = true, .ts_ms = 5, .text = (char *)"q" };
    memcpy(queued.peer, peer, 32);
    store_msg_t in = { .msg_id = { 2 }, .has_env = true, .seq = 3, .ts_ms = 1003 };
    in.state = MSG_STATE_RECEIVED;
    in.text = (char *)"r";
    memcpy(in.peer, peer, 32);
    memcpy(in.env_id, e[2].id, 32);
    CHECK(store_msg_add(s, &queued) == 0);
    CHECK(store_msg_add(s, &in) == 0);

    for (int round = 0; round < 2; round++) {
        CHECK(store_stats(s, &st) == 0);
        CHECK(st.envelopes == 3 && st.equivocations == 1 && st.outbox == 2);
        CHECK(st.messages == 2 && st.queued == 1);
        CHECK(st.db_bytes > 0 && st.db_bytes % 4096 == 0);
        s_t_idle(s);
        store_destroy(&s);
        CHECK(store_open(path, &s) == 0);
    }

    /* kept while nothing is written; counted again after a write */
    CHECK(store_stats(s, &st) == 0 && st.age_ms == 0);
    uint64_t counts = s->stats_memo->counts;
    CHECK(store_stats(s, &st) == 0 && st.envelopes == 3 && st.age_ms == 0);
    CHECK(s->stats_memo->counts == counts);
    CHECK(store_outbox_add(s, e[2].id, peer, 1) == 0);
    CHECK(store_stats(s, &st) == 0 && st.outbox == 3 && st.age_ms == 0);
    CHECK(s->stats_memo->counts == counts + 1);
    /* and after a rollback, which may undo what a count inside it saw */
    CHECK(store_begin(s) == 0);
    CHECK(store_outbox_ack(s, e[2].id, peer) == 0);
    CHECK(store_stats(s, &st) == 0 && st.outbox == 2);
    CHECK(store_rollback(s) == 0);
    CHECK(store_stats(s, &st) == 0 && st.outbox == 3);
    /* a dear count (as at a million rows) is repeated no sooner than
       STORE_STATS_SHARE times its cost: meanwhile the counts say their age */
    s->stats_memo->cost_ns = 20u * 1000 * 1000;
    CHECK(store_outbox_ack(s, e[2].id, peer) == 0);
    CHECK(store_stats(s, &st) == 0 && st.outbox == 3); /* not yet counted again */
    CHECK(s->stats_memo->counts == counts + 3);
    s->stats_memo->at_ns -= 1500u * 1000 * 1000;
    CHECK(store_stats(s, &st) == 0 && st.outbox == 3 && st.age_ms >= 1500);
    s->stats_memo->at_ns -= 600u * 1000 * 1000; /* 2.1 s > 100 × 20 ms */
    CHECK(store_stats(s, &st) == 0 && st.outbox == 2 && st.age_ms == 0);
    CHECK(s->stats_memo->counts == counts + 4);
    CHECK(!s_stats_recount(false, 10, 0, 0));
    CHECK(s_stats_recount(true, 10, 0, STORE_STATS_CHEAP_NS - 1));
    CHECK(!s_stats_recount(true, 99 * STORE_STATS_CHEAP_NS, 0, STORE_STATS_CHEAP_NS));
    CHECK(s_stats_recount(true, 100 * STORE_STATS_CHEAP_NS, 0, STORE_STATS_CHEAP_NS));
    store_destroy(&s);
}

/*  A value of the core's own table damaged, then a page of the file damaged
 *  below SQL: whatever the calls answer then, they must not crash. */
static void
s_t_damaged(const s_t_kit_t *kit)
{
    char path[512];
    store_t *s = s_t_open_in(kit, "damaged.db", path, sizeof path);
    uint8_t author[32];
    uint8_t scope[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(scope, sizeof scope);
    for (int i = 0; i < 8; i++) {
        s_t_env_t e;
        s_t_env(&e, author, scope, (uint64_t)i + 1, (uint8_t)i);
        CHECK(store_envelope_put(s, &e.env, e.id, 1) == 0);
    }
    store_msg_t m = { .msg_id = { 1 }, .outgoing = true, .ts_ms = 5, .text = (char *)"q" };
    memcpy(m.peer, author, 32);
    CHECK(store_msg_add(s, &m) == 0);
    CHECK(store_contact_put(s, "carol", author, false, 1) == 0);
    CHECK(store_meta_set(s, "m", 1) == 0);

    uint64_t u = 0;
    s_t_raw(path, "UPDATE meta SET value = 'abc'");
    CHECK(store_meta_get(s, "m", &u) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE meta SET value = 2.5");
    CHECK(store_meta_get(s, "m", &u) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE meta SET value = -1");
    CHECK(store_meta_get(s, "m", &u) == 0 && u == UINT64_MAX); /* any bit pattern is a value */
    s_t_idle(s);
    store_destroy(&s);

    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    uint8_t junk[4096];
    randombytes_buf(junk, sizeof junk);
    CHECK(fseek(f, 4096, SEEK_SET) == 0);
    CHECK(fwrite(junk, 1, sizeof junk, f) == sizeof junk);
    CHECK(fclose(f) == 0);
    if (store_open(path, &s) == 0) {
        store_stats_t st;
        CHECK(store_stats(s, &st) <= 0); /* any status, as long as it returns */
        uint8_t *bytes = NULL;
        size_t len = 0;
        CHECK(store_envelope_get(s, author, &bytes, &len) <= 0);
        free(bytes);
        store_msg_t *msgs = NULL;
        size_t n = 0;
        if (store_history(s, author, 0, &msgs, &n) == 0) {
            store_msgs_free(msgs, n);
        }
        store_contact_t *clist = NULL;
        if (store_contact_list(s, &clist, &n) == 0) {
            free(clist);
        }
        s_t_idle(s);
        store_destroy(&s);
    }
}

void
store_test(bool verbose)
{
    s_t_kit_t kit;
    s_t_begin(&kit, "store", verbose);
    s_t_say(&kit, "open, migrate, reopen, meta");
    s_t_open_meta(kit.dir);
    s_t_say(&kit, "migrate a version 2 file");
    s_t_migrate_v2(kit.dir);
    s_t_say(&kit, "migrate a version 3 file: the counters start at our highest seq");
    s_t_migrate_v3(kit.dir);
    s_t_say(&kit, "refuse newer, foreign, garbage and symlinked files");
    s_t_open_refused(kit.dir);
    s_t_open_linked_dir(kit.dir);

    char path[512];
    store_t *s = s_t_open_in(&kit, "a.db", path, sizeof path);
    s_t_idle(s);
    s_t_say(&kit, "binding: value kinds, counts, limits");
    s_t_bind(s);
    s_t_say(&kit, "transactions");
    s_t_txn(s);
    s_t_say(&kit, "relaxed transactions: synchronous=NORMAL for one commit only");
    s_t_relaxed(s);
    s_t_say(&kit, "query plans: no statement scans what grows with the log");
    s_t_plans(s);
    store_destroy(&s);

    s_t_say(&kit, "the background checkpointer");
    s_t_ckpt(&kit);
    s_t_say(&kit, "split transactions: written early, synced after");
    s_t_split(&kit);
    s_t_say(&kit, "fault injection: commit");
    s_t_fault_commit(&kit);
    s_t_say(&kit, "stats, and what they count persists across reopen");
    s_t_stats(&kit);
    s_t_say(&kit, "damaged values and pages");
    s_t_damaged(&kit);
    s_t_end(&kit);
}
