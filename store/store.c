/*  store/store.c — the store's core: opening and migrating the file, the
 *  schema, every SQL statement, transactions, meta, statistics, and the
 *  self-test. The per-table functions live in store_log.c (envelopes,
 *  messages, outbox) and store_keys.c (contacts, peers, prekeys, sessions).
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
 *                          SQLITE_CORRUPT (→ PARLEY_ERR_MALFORMED) when read
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
 *  Schema, version 1
 *  -----------------
 *  All keys, ids and public keys are 32-byte BLOBs unless noted; *_ms columns
 *  are ms since the Unix epoch; integers are within [0, INT64_MAX] (uint32
 *  fields within [0, 2^32 - 1]); every read checks that.
 *
 *  meta(key TEXT PK, value INTEGER)
 *      Small named integers (the next own prekey id...). value is an opaque
 *      64-bit pattern (a uint64 stored as its two's complement).
 *
 *  envelopes(n INTEGER PK, id UNIQUE, author, scope, seq, ts_ms, expires_ms,
 *            kind, bytes, received_ms, UNIQUE(author, scope, seq))
 *      The log, as received. n is the insertion order (an explicit rowid alias
 *      so VACUUM keeps it). bytes is the whole signed envelope (158..65536
 *      bytes); the other columns repeat its header for indexing.
 *      Indexes, and why only these: at a million rows the cost of an INSERT is
 *      dominated by B-tree pages dirtied far apart by random 32-byte keys
 *      (notes/limits.md: ~60 µs and ~20 KB written per row at 1M rows).
 *      - the table itself is keyed by n, so rows append at its right edge;
 *      - UNIQUE(id) is the one random-key index, needed to dedupe and to
 *        serve WANT requests by id;
 *      - UNIQUE(author, scope, seq) detects equivocation and serves
 *        store_last_seq; an author's next envelope in a scope lands next to
 *        its previous one, so it stays clustered rather than random.
 *      Deliberately absent: an index on ts_ms or expires_ms (expiry and the
 *      (scope, ts, id) reconciliation order will add their own, in a later
 *      migration, when those features are written), and any index leading
 *      with scope or id besides the two above.
 *
 *  equivocations(n INTEGER PK, id UNIQUE, author, scope, seq, held_id, bytes,
 *                received_ms)
 *      Evidence: an envelope whose (author, scope, seq) is already held under
 *      another id (held_id). bytes is the full signed envelope, so two rows of
 *      envelopes/equivocations prove the author signed both. Never synced.
 *
 *  messages(n INTEGER PK, msg_id BLOB(16) UNIQUE, env_id UNIQUE NULL, peer,
 *           outgoing 0|1, seq, ts_ms, state, text TEXT)
 *      Decrypted direct-message history. env_id is NULL exactly while state is
 *      MSG_STATE_QUEUED (outgoing, not yet sealed). seq/ts_ms are the
 *      envelope's (ts_ms is the queue time while QUEUED). text is at most
 *      PARLEY_TEXT_MAX bytes, no NUL.
 *      Indexes: msg_id and env_id (the lookups store_msg_attach/raise need);
 *      messages_history(peer, ts_ms, outgoing, seq) serves "last N with peer"
 *      in exactly the store_history order, reading N entries with no sort;
 *      messages_queued(peer, ts_ms) WHERE state = 0 is a partial index that
 *      holds only queued rows, so finding them costs nothing as history grows.
 *      No foreign key to envelopes: a QUEUED message has no envelope yet, and
 *      history outlives the log's retention of the envelope.
 *
 *  outbox(n INTEGER PK, peer, env_id → envelopes(id) ON DELETE CASCADE,
 *         added_ms, UNIQUE(peer, env_id))
 *      Envelopes a peer has not acknowledged. n orders by insertion;
 *      outbox_peer(peer) (entries (peer, n)) lists a peer's pending ids oldest
 *      first without sorting. An envelope must be stored before it is queued
 *      (the foreign key); deleting it from the log drops it from the outbox.
 *
 *  contacts(name TEXT PK, pk, verified 0|1, added_ms), index contacts_pk(pk)
 *      name is 1..STORE_NAME_MAX bytes. Several names may share a key.
 *
 *  peers(pk PK, endpoint TEXT, first_seen_ms, last_seen_ms)
 *      endpoint is "" or at most PARLEY_ENDPOINT_MAX bytes.
 *
 *  own_prekeys(spk_id INTEGER PK, owner, spk_pub, created_ms,
 *              bundle BLOB(141), secret BLOB(32), superseded_ms NULL)
 *      Our signed prekeys with their X25519 secrets. superseded_ms is NULL for
 *      the current one (exactly zero or one row, enforced by the unique
 *      partial index own_prekeys_current) and the time it was replaced for the
 *      others, which store_own_prekey_wipe() deletes after the grace window.
 *
 *  peer_prekeys(owner PK, spk_id, spk_pub, created_ms, bundle BLOB(141))
 *      The newest prekey each peer has published (by spk_id).
 *
 *  send_sessions(peer PK, ek_pub, spk_id, day0, day, key BLOB(32))
 *  recv_sessions(peer, ek_pub, spk_id, day0, base_day, key BLOB(32),
 *                last_used_ms, PK(peer, ek_pub))
 *      DM chain keys (dm.h). key is secret and overwritten in place as it
 *      ratchets; day >= day0 and base_day >= day0.
 *
 *  Secrets live in own_prekeys.secret and *_sessions.key. Deleting a row
 *  zeroes it in its page (secure_delete); the superseded page images remain in
 *  the WAL until store_checkpoint() truncates it.
 */
#include "store_int.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
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
};

_Static_assert(sizeof s_migrations / sizeof s_migrations[0] == STORE_SCHEMA_VERSION,
               "one migration per schema version");
_Static_assert(MSG_STATE_QUEUED == 0, "messages_queued and the SQL below use state = 0");

/* ---- every statement, prepared once at open ---- */

#define S_MSG_COLS "msg_id, env_id, peer, outgoing, seq, ts_ms, state, text"
#define S_CONTACT_COLS "name, pk, verified, added_ms"
#define S_PEER_COLS "pk, endpoint, first_seen_ms, last_seen_ms"
#define S_RECV_COLS "peer, ek_pub, spk_id, day0, base_day, key, last_used_ms"

static const char *const s_sql[ST_COUNT] = {
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

    [ST_ENV_PUT] = "INSERT OR IGNORE INTO envelopes (id, author, scope, seq, ts_ms,"
                   " expires_ms, kind, bytes, received_ms)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_ENV_HAS] = "SELECT 1 FROM envelopes WHERE id = ?1",
    [ST_ENV_GET] = "SELECT bytes FROM envelopes WHERE id = ?1",
    [ST_ENV_SLOT] = "SELECT id FROM envelopes WHERE author = ?1 AND scope = ?2 AND seq = ?3",
    [ST_ENV_LAST_SEQ] = "SELECT max(seq) FROM envelopes WHERE author = ?1 AND scope = ?2",
    [ST_ENV_EACH] = "SELECT bytes FROM envelopes ORDER BY n",
    [ST_EQUIV_PUT] = "INSERT OR IGNORE INTO equivocations (id, author, scope, seq, held_id,"
                     " bytes, received_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",

    [ST_MSG_ADD] = "INSERT INTO messages (" S_MSG_COLS ")"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [ST_MSG_ATTACH] = "UPDATE messages SET env_id = ?2, seq = ?3, ts_ms = ?4, state = 1"
                      " WHERE msg_id = ?1 AND state = 0",
    [ST_MSG_STATE] = "SELECT state FROM messages WHERE msg_id = ?1",
    [ST_MSG_RAISE] = "UPDATE messages SET state = ?2"
                     " WHERE env_id = ?1 AND outgoing = 1 AND state < ?2",
    [ST_MSG_BY_ENV] = "SELECT " S_MSG_COLS " FROM messages WHERE env_id = ?1 AND outgoing = 1",
    [ST_MSG_QUEUED] = "SELECT " S_MSG_COLS " FROM messages"
                      " WHERE peer = ?1 AND state = 0 ORDER BY ts_ms, n",
    [ST_MSG_QUEUED_PEERS] = "SELECT DISTINCT peer FROM messages WHERE state = 0 ORDER BY peer",
    /* newest first so LIMIT keeps the last ones; store_history reverses them */
    [ST_MSG_HISTORY] = "SELECT " S_MSG_COLS " FROM messages WHERE peer = ?1"
                       " ORDER BY ts_ms DESC, outgoing DESC, seq DESC, n DESC LIMIT ?2",

    [ST_OUTBOX_ADD] = "INSERT OR IGNORE INTO outbox (peer, env_id, added_ms)"
                      " VALUES (?1, ?2, ?3)",
    [ST_OUTBOX_LIST] = "SELECT env_id FROM outbox WHERE peer = ?1 ORDER BY n LIMIT ?2",
    [ST_OUTBOX_ACK] = "DELETE FROM outbox WHERE peer = ?1 AND env_id = ?2",

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

    [ST_OWN_SUPERSEDE] = "UPDATE own_prekeys SET superseded_ms = ?1"
                         " WHERE superseded_ms IS NULL",
    [ST_OWN_INSERT] = "INSERT INTO own_prekeys (spk_id, owner, spk_pub, created_ms, bundle,"
                      " secret) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_OWN_CURRENT] = "SELECT spk_id, owner, spk_pub, created_ms, bundle, superseded_ms"
                       " FROM own_prekeys WHERE superseded_ms IS NULL",
    [ST_OWN_SECRET] = "SELECT secret FROM own_prekeys WHERE spk_id = ?1",
    [ST_OWN_WIPE] = "DELETE FROM own_prekeys"
                    " WHERE superseded_ms IS NOT NULL AND superseded_ms < ?1",

    [ST_PEER_PK_PUT] = "INSERT INTO peer_prekeys (owner, spk_id, spk_pub, created_ms, bundle)"
                       " VALUES (?1, ?2, ?3, ?4, ?5)"
                       " ON CONFLICT (owner) DO UPDATE SET spk_id = excluded.spk_id,"
                       " spk_pub = excluded.spk_pub, created_ms = excluded.created_ms,"
                       " bundle = excluded.bundle"
                       " WHERE excluded.spk_id > peer_prekeys.spk_id",
    [ST_PEER_PK_GET] = "SELECT owner, spk_id, spk_pub, created_ms FROM peer_prekeys"
                       " WHERE owner = ?1",

    [ST_SEND_GET] = "SELECT peer, ek_pub, spk_id, day0, day, key FROM send_sessions"
                    " WHERE peer = ?1",
    [ST_SEND_PUT] = "INSERT INTO send_sessions (peer, ek_pub, spk_id, day0, day, key)"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                    " ON CONFLICT (peer) DO UPDATE SET ek_pub = excluded.ek_pub,"
                    " spk_id = excluded.spk_id, day0 = excluded.day0, day = excluded.day,"
                    " key = excluded.key",
    [ST_RECV_GET] = "SELECT " S_RECV_COLS " FROM recv_sessions WHERE peer = ?1 AND ek_pub = ?2",
    [ST_RECV_PUT] = "INSERT INTO recv_sessions (" S_RECV_COLS ")"
                    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                    " ON CONFLICT (peer, ek_pub) DO UPDATE SET spk_id = excluded.spk_id,"
                    " day0 = excluded.day0, base_day = excluded.base_day, key = excluded.key,"
                    " last_used_ms = excluded.last_used_ms",
    [ST_RECV_LIST] = "SELECT " S_RECV_COLS " FROM recv_sessions ORDER BY peer, ek_pub",

    [ST_SCOPE_AUTHOR_PUT] = "INSERT OR IGNORE INTO scope_authors (scope, author) VALUES (?1, ?2)",
    [ST_SCOPE_AUTHORS] = "SELECT scope, author FROM scope_authors ORDER BY scope, author",
    [ST_ENV_SCOPE_KEYS] = "SELECT ts_ms, id FROM envelopes WHERE scope = ?1 ORDER BY ts_ms, id",
    [ST_ENV_RANGE] = "SELECT ts_ms, id, bytes FROM envelopes WHERE scope = ?1"
                     " AND (ts_ms, id) > (?2, ?3) AND (ts_ms, id) <= (?4, ?5)"
                     " ORDER BY ts_ms, id LIMIT ?6",
    [ST_ENV_BY_PREFIX] = "SELECT bytes FROM envelopes WHERE id >= ?1 AND id <= ?2 LIMIT 1",
    [ST_ENV_EXPIRED] = "SELECT id, scope, ts_ms FROM envelopes"
                       " WHERE expires_ms > 0 AND expires_ms <= ?1 LIMIT ?2",
    [ST_ENV_DELETE] = "DELETE FROM envelopes WHERE id = ?1",
    [ST_MSG_DELETE_ENV] = "DELETE FROM messages WHERE env_id = ?1",
    [ST_OUTBOX_DROP] = "DELETE FROM outbox WHERE env_id = ?1",
    [ST_MSG_MARK_READ] = "UPDATE messages SET state = 11 WHERE env_id = ?1 AND state = 10",
    [ST_PEER_PK_BUNDLE] = "SELECT bundle FROM peer_prekeys WHERE owner = ?1",
    [ST_PEER_PK_RECENT] = "SELECT bundle FROM peer_prekeys ORDER BY created_ms DESC LIMIT ?1",
};

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

static int
s_configure(sqlite3 *db)
{
    (void)sqlite3_extended_result_codes(db, 1);
    int rc = sqlite3_busy_timeout(db, 5000);
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

static int
s_prepare_all(store_t *self)
{
    for (int i = 0; i < ST_COUNT; i++) {
        const char *tail = NULL;
        int rc = sqlite3_prepare_v3(self->db, s_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &self->st[i],
                                    &tail);
        if (rc != SQLITE_OK) {
            return s_err(rc);
        }
        if (self->st[i] == NULL || (tail != NULL && *tail != '\0')) {
            return PARLEY_ERR_IO; /* an empty or multi-statement entry in s_sql */
        }
    }
    return 0;
}

int
store_open(const char *path, store_t **out)
{
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
        rc = s_migrate(self->db);
    }
    if (rc == 0) {
        rc = s_prepare_all(self);
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
    if (self->db != NULL && sqlite3_get_autocommit(self->db) == 0) {
        /* an uncommitted group is discarded, as a crash would; nothing to
           report from a void function, and closing rolls back anyway */
        (void)s_exec(self->db, "ROLLBACK");
    }
    for (int i = 0; i < ST_COUNT; i++) {
        (void)sqlite3_finalize(self->st[i]); /* NULL-safe; errors were reported by steps */
        self->st[i] = NULL;
    }
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

int
store_begin(store_t *self)
{
    if (store_in_txn(self)) {
        return PARLEY_ERR_STATE;
    }
    return s_run(self->st[ST_BEGIN], NULL);
}

/*  On failure the transaction may still be open (SQLITE_BUSY) or already
 *  rolled back by SQLite (I/O error, disk full): store_in_txn() tells which. */
int
store_commit(store_t *self)
{
    if (!store_in_txn(self)) {
        return PARLEY_ERR_STATE;
    }
    if (s_fault(self, STORE_FAULT_COMMIT)) {
        (void)s_run(self->st[ST_ROLLBACK], NULL);
        return PARLEY_ERR_IO;
    }
    return s_run(self->st[ST_COMMIT], NULL);
}

void
store_fault_set(store_t *self, store_fault_t where, int count)
{
    if (self != NULL && where >= STORE_FAULT_COMMIT && where <= STORE_FAULT_PREKEY_PUT) {
        self->faults[where] = count > 0 ? count : 0;
    }
}

int
store_rollback(store_t *self)
{
    if (!store_in_txn(self)) {
        return PARLEY_ERR_STATE;
    }
    return s_run(self->st[ST_ROLLBACK], NULL);
}

/*  PARLEY_ERR_BUSY when a reader (another connection) kept the checkpoint
 *  from completing: the WAL was not emptied and old frames may remain. */
int
store_checkpoint(store_t *self)
{
    if (store_in_txn(self)) {
        return PARLEY_ERR_STATE; /* a checkpoint cannot run inside our own write */
    }
    sqlite3_stmt *st = self->st[ST_CHECKPOINT];
    bool row = false;
    int rc = s_step(st, &row);
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
    sqlite3_stmt *st = self->st[ST_META_GET];
    bool row = false;
    rc = s_bind_text(st, 1, key, len);
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
    sqlite3_stmt *st = self->st[ST_META_SET];
    rc = s_bind_text(st, 1, key, len);
    if (rc == 0) {
        /* meta values are never compared in SQL, so the full uint64 range is
           kept as its bit pattern */
        rc = s_bind_i64(st, 2, (int64_t)value);
    }
    if (rc != 0) {
        s_reset(st);
        return rc;
    }
    return s_run(st, NULL);
}

/* ---- statistics ---- */

/*  Counts rows with count(*), which walks the smallest index of each table:
 *  linear in the log (tens of ms at a million rows). Meant for status
 *  displays and tests, not for a hot path. */
int
store_stats(store_t *self, store_stats_t *out)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = self->st[ST_STATS];
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

/* ---- self-test ----
 *
 *  Real files in a fresh mkdtemp directory, removed at the end. After every
 *  call the test checks that no prepared statement was left un-reset
 *  (s_t_idle), which is the invariant store_int.h promises. Damaged rows are
 *  written through a second, raw SQLite connection to the same file, as a
 *  disk error or an attacker with write access to the file would. */

#include "../proto/selftest.h"

static bool s_t_verbose;

static void
s_t_say(const char *what)
{
    if (s_t_verbose) {
        printf("  store: %s\n", what);
        fflush(stdout); /* a failed CHECK aborts: keep what was said */
    }
}

/*  No statement of ours is mid-step: each public call reset what it used. */
static void
s_t_idle(store_t *self)
{
    for (int i = 0; i < ST_COUNT; i++) {
        CHECK(self->st[i] != NULL);
        CHECK(!sqlite3_stmt_busy(self->st[i]));
    }
    CHECK(!self->in_each);
}

static void
s_t_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    CHECK(n > 0 && (size_t)n < cap);
}

/*  Runs sql on path through a raw connection of its own. */
static void
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
static int64_t
s_t_int(store_t *self, const char *sql)
{
    int64_t v = 0;
    CHECK(s_query_int(self->db, sql, &v) == 0);
    return v;
}

static void
s_t_rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    struct dirent *e = NULL;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char p[512];
        s_t_path(p, sizeof p, dir, e->d_name);
        CHECK(unlink(p) == 0);
    }
    CHECK(closedir(d) == 0);
    CHECK(rmdir(dir) == 0);
}

/*  Does the file at path contain the bytes needle[len]? Missing file: no. */
static bool
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

static void
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

static store_t *
s_t_open(const char *path)
{
    store_t *s = NULL;
    CHECK(store_open(path, &s) == 0);
    CHECK(s != NULL);
    s_t_idle(s);
    return s;
}

static int
s_t_range_fn(uint64_t ts, const uint8_t id[32], const uint8_t *bytes, size_t len, void *arg)
{
    (void)id;
    (void)bytes;
    CHECK(len > 0);
    uint64_t *last = arg;
    CHECK(ts > *last);
    *last = ts;
    return 0;
}

static int
s_t_authors_fn(const uint8_t scope[32], const uint8_t author[32], void *arg)
{
    (void)scope;
    (void)author;
    (*(size_t *)arg)++;
    return 0;
}

static void
s_t_replication(const char *dir)
{
    char path[4096];
    s_t_path(path, sizeof path, dir, "replication.db");
    store_t *s = s_t_open(path);
    uint8_t author[32], other[32], scope[32];
    randombytes_buf(author, 32);
    randombytes_buf(other, 32);
    randombytes_buf(scope, 32);
    s_t_env_t e[6];
    for (uint64_t i = 0; i < 6; i++) {
        s_t_env(&e[i], i % 2 ? other : author, scope, i + 1, (uint8_t)(0xa0 + i));
        e[i].env.expires_ms = i == 5 ? 5000 : 0;
        CHECK(store_envelope_put(s, &e[i].env, e[i].id, 1) == 0);
    }
    size_t n_authors = 0;
    CHECK(store_scope_authors(s, s_t_authors_fn, &n_authors) == 0 && n_authors >= 2);
    sync_set_t *set = sync_set_new();
    CHECK(set && store_scope_load(s, scope, set) == 0 && sync_set_count(set) == 6);
    //  Ranges: after the first item up to the fourth, in order.
    const sync_item_t *first = sync_set_at(set, 0);
    uint8_t fid[32], tid[32];
    uint64_t fts = first->ts, tts = sync_set_at(set, 3)->ts;
    memcpy(fid, first->id, 32);
    memcpy(tid, sync_set_at(set, 3)->id, 32);
    uint64_t last = 0;
    size_t n = 0;
    CHECK(store_envelope_range(s, scope, fts, fid, tts, tid, 100, s_t_range_fn, &last, &n) == 0);
    CHECK(n == 3 && last == tts);
    CHECK(store_envelope_range(s, scope, fts, fid, tts, tid, 2, s_t_range_fn, &(uint64_t){ 0 }, &n)
          == 0);
    CHECK(n == 2);
    //  Prefix lookups.
    uint8_t *bytes = NULL;
    size_t len = 0;
    CHECK(store_envelope_by_prefix(s, e[2].id, &bytes, &len) == 0 && len == sizeof e[2].bytes);
    CHECK(memcmp(bytes, e[2].bytes, len) == 0);
    free(bytes);
    CHECK(store_envelope_has_prefix(s, e[4].id));
    uint8_t none[SYNC_PREFIX_LEN] = { 0 };
    CHECK(!store_envelope_has_prefix(s, none));
    CHECK(store_envelope_by_prefix(s, none, &bytes, &len) == PARLEY_ERR_NOTFOUND);
    //  Expiry: only the due one goes, with its outbox row and its message.
    uint8_t peer[32] = { 9 };
    CHECK(store_outbox_add(s, e[5].id, peer, 1) == 0);
    store_expired_t gone[4];
    CHECK(store_envelope_expire(s, 4999, 4, gone, &n) == 0 && n == 0);
    CHECK(store_envelope_expire(s, 5000, 4, gone, &n) == 0 && n == 1);
    CHECK(memcmp(gone[0].id, e[5].id, 32) == 0 && gone[0].ts_ms == e[5].env.ts_ms);
    CHECK(!store_envelope_has(s, e[5].id));
    uint8_t ids[32 * 4];
    CHECK(store_outbox_list(s, peer, 4, ids, &n) == 0 && n == 0);
    sync_set_destroy(&set);
    store_destroy(&s);
}

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
    CHECK(rc == PARLEY_ERR_MALFORMED || rc == PARLEY_ERR_IO);
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
    store_t *s = s_t_open(path);
    CHECK(store_meta_set(s, "k", 1) == 0);
    store_destroy(&s);
    s = s_t_open(path);
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
    store_t *s = s_t_open(path);

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
    s = s_t_open(path);
    CHECK(store_meta_get(s, "next_spk", &v) == 0 && v == 43);
    CHECK(s_t_int(s, "PRAGMA user_version") == STORE_SCHEMA_VERSION);
    store_destroy(&s);
}

static void
s_t_envelopes(store_t *s)
{
    uint8_t author[32];
    uint8_t author2[32];
    uint8_t scope[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(author2, sizeof author2);
    randombytes_buf(scope, sizeof scope);
    s_t_env_t e[3];
    for (int i = 0; i < 3; i++) {
        s_t_env(&e[i], author, scope, (uint64_t)i + 1, (uint8_t)i);
        CHECK(store_envelope_put(s, &e[i].env, e[i].id, 5000) == 0);
    }
    s_t_idle(s);

    /* the same envelope again: nothing written */
    CHECK(store_envelope_put(s, &e[0].env, e[0].id, 6000) == PARLEY_ERR_DUPLICATE);
    store_stats_t stats;
    CHECK(store_stats(s, &stats) == 0);
    CHECK(stats.envelopes == 3 && stats.equivocations == 0);
    CHECK(s_t_int(s, "SELECT received_ms FROM envelopes ORDER BY n LIMIT 1") == 5000);

    /* another envelope for (author, scope, 2): evidence, not the log */
    s_t_env_t forged;
    s_t_env(&forged, author, scope, 2, 0xEE);
    CHECK(store_envelope_put(s, &forged.env, forged.id, 7000) == PARLEY_ERR_EQUIVOCATION);
    CHECK(store_envelope_put(s, &forged.env, forged.id, 7001) == PARLEY_ERR_EQUIVOCATION);
    CHECK(store_stats(s, &stats) == 0);
    CHECK(stats.envelopes == 3 && stats.equivocations == 1);
    CHECK(s_t_int(s, "SELECT count(*) FROM equivocations WHERE seq = 2 AND received_ms = 7000")
          == 1);
    uint8_t *bytes = NULL;
    size_t len = 0;
    CHECK(store_envelope_get(s, e[1].id, &bytes, &len) == 0);
    CHECK(len == sizeof e[1].bytes && memcmp(bytes, e[1].bytes, len) == 0);
    free(bytes);
    CHECK(store_envelope_get(s, forged.id, &bytes, &len) == PARLEY_ERR_NOTFOUND);
    CHECK(bytes == NULL && len == 0);
    CHECK(store_envelope_has(s, e[2].id));
    CHECK(!store_envelope_has(s, forged.id));
    s_t_idle(s);

    /* the same seq by another author is no conflict */
    s_t_env_t other;
    s_t_env(&other, author2, scope, 2, 9);
    CHECK(store_envelope_put(s, &other.env, other.id, 5000) == 0);

    uint64_t seq = 99;
    CHECK(store_last_seq(s, author, scope, &seq) == 0 && seq == 3);
    CHECK(store_last_seq(s, author2, scope, &seq) == 0 && seq == 2);
    CHECK(store_last_seq(s, scope, author, &seq) == 0 && seq == 0);

    /* refused before anything is written */
    s_t_env_t bad;
    s_t_env(&bad, author, scope, 10, 1);
    bad.env.bytes_len = PARLEY_ENVELOPE_HEADER_LEN + PARLEY_SIG_LEN - 1;
    CHECK(store_envelope_put(s, &bad.env, bad.id, 1) == PARLEY_ERR_MALFORMED);
    bad.env.bytes_len = PARLEY_ENVELOPE_MAX + 1;
    CHECK(store_envelope_put(s, &bad.env, bad.id, 1) == PARLEY_ERR_LIMIT);
    bad.env.bytes_len = sizeof bad.bytes;
    bad.env.bytes = NULL;
    CHECK(store_envelope_put(s, &bad.env, bad.id, 1) == PARLEY_ERR_MALFORMED);
    bad.env.bytes = bad.bytes;
    bad.env.seq = UINT64_MAX;
    CHECK(store_envelope_put(s, &bad.env, bad.id, 1) == PARLEY_ERR_LIMIT);
    CHECK(store_stats(s, &stats) == 0 && stats.envelopes == 4);
    s_t_idle(s);
}

/*  store_envelope_each callback: records first bytes' salt, stops at arg limit. */
typedef struct {
    size_t n;          /* calls so far */
    size_t stop_after; /* return non-zero at this call */
    uint8_t salt[8];   /* body byte of each envelope seen */
    store_t *store;    /* to try a nested walk */
    int nested_rc;     /* what the nested walk returned */
} s_t_walk_t;

static int
s_t_walk_fn(const uint8_t *bytes, size_t len, void *arg)
{
    s_t_walk_t *w = arg;
    CHECK(len == 200);
    if (w->n < sizeof w->salt) {
        w->salt[w->n] = bytes[PARLEY_ENVELOPE_HEADER_LEN];
    }
    w->n++;
    if (w->store != NULL) {
        w->nested_rc = store_envelope_each(w->store, s_t_walk_fn, arg);
        w->store = NULL;
    }
    return w->n == w->stop_after;
}

static void
s_t_each(store_t *s)
{
    s_t_walk_t w = { .stop_after = 0 };
    CHECK(store_envelope_each(s, s_t_walk_fn, &w) == 0);
    CHECK(w.n == 4);
    CHECK(w.salt[0] == 0 && w.salt[1] == 1 && w.salt[2] == 2 && w.salt[3] == 9);
    s_t_walk_t stop = { .stop_after = 2, .store = s };
    CHECK(store_envelope_each(s, s_t_walk_fn, &stop) == 0);
    CHECK(stop.n == 2);
    CHECK(stop.nested_rc == PARLEY_ERR_STATE);
    s_t_idle(s);
}

static store_msg_t
s_t_msg(uint8_t tag, const uint8_t peer[32], bool outgoing, int state, uint64_t seq, uint64_t ts,
        const char *text)
{
    store_msg_t m;
    memset(&m, 0, sizeof m);
    memset(m.msg_id, tag, sizeof m.msg_id);
    memcpy(m.peer, peer, 32);
    m.has_env = state != MSG_STATE_QUEUED;
    memset(m.env_id, tag, sizeof m.env_id);
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

    store_msg_t q1 = s_t_msg(1, p1, true, MSG_STATE_QUEUED, 0, 100, "hello");
    store_msg_t q2 = s_t_msg(2, p1, true, MSG_STATE_QUEUED, 0, 101, "world");
    CHECK(store_msg_add(s, &q2) == 0);
    CHECK(store_msg_add(s, &q1) == 0);
    CHECK(store_msg_add(s, &q1) == PARLEY_ERR_EXISTS);

    /* inconsistent or oversized messages are refused */
    store_msg_t bad = q1;
    memset(bad.msg_id, 0x77, sizeof bad.msg_id);
    bad.has_env = true;
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_MALFORMED); /* QUEUED with an envelope */
    bad = s_t_msg(0x78, p1, true, MSG_STATE_RECEIVED, 1, 1, "x");
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_MALFORMED); /* outgoing RECEIVED */
    bad = s_t_msg(0x79, p1, false, MSG_STATE_DELIVERED, 1, 1, "x");
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_MALFORMED); /* incoming DELIVERED */
    bad = s_t_msg(0x7a, p1, true, 7, 1, 1, "x");
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_MALFORMED);
    bad = s_t_msg(0x7b, p1, true, MSG_STATE_STORED, 1, 1, NULL);
    CHECK(store_msg_add(s, &bad) == PARLEY_ERR_MALFORMED);
    char *huge = malloc(PARLEY_TEXT_MAX + 2);
    CHECK(huge != NULL);
    memset(huge, 'a', PARLEY_TEXT_MAX + 1);
    huge[PARLEY_TEXT_MAX + 1] = '\0';
    bad = s_t_msg(0x7c, p1, true, MSG_STATE_STORED, 1, 1, huge);
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
    CHECK(strcmp(out.text, "hello") == 0);
    free(out.text);
    CHECK(store_msg_raise(s, e1, MSG_STATE_RELAYED, &changed, &out) == 0);
    CHECK(!changed && out.state == MSG_STATE_DELIVERED);
    free(out.text);
    CHECK(store_msg_raise(s, e1, MSG_STATE_DELIVERED, &changed, NULL) == 0 && !changed);
    CHECK(store_msg_raise(s, e1, MSG_STATE_READ, &changed, NULL) == 0 && changed);
    CHECK(store_msg_raise(s, e2, MSG_STATE_READ, &changed, &out) == PARLEY_ERR_NOTFOUND);
    CHECK(!changed && out.text == NULL);
    CHECK(store_msg_raise(s, e1, MSG_STATE_RECEIVED, &changed, NULL) == PARLEY_ERR_MALFORMED);
    CHECK(store_msg_raise(s, e1, MSG_STATE_QUEUED, &changed, NULL) == PARLEY_ERR_MALFORMED);
    store_msg_t in = s_t_msg(9, p2, false, MSG_STATE_RECEIVED, 4, 300, "incoming");
    CHECK(store_msg_add(s, &in) == 0);
    CHECK(store_msg_raise(s, in.env_id, MSG_STATE_READ, &changed, NULL) == PARLEY_ERR_NOTFOUND);
    s_t_idle(s);

    /* history: the last `limit`, oldest first, ties by (outgoing, seq) */
    uint8_t p3[32];
    randombytes_buf(p3, sizeof p3);
    static const uint64_t ts[10] = { 1005, 1002, 1009, 1000, 1007, 1001, 1008, 1003, 1006, 1004 };
    for (int i = 0; i < 10; i++) {
        store_msg_t m = s_t_msg((uint8_t)(0x40 + i), p3, false, MSG_STATE_RECEIVED, (uint64_t)i + 1,
                                ts[i], "h");
        CHECK(store_msg_add(s, &m) == 0);
    }
    store_msg_t mine = s_t_msg(0x60, p3, true, MSG_STATE_STORED, 1, 2000, "mine");
    store_msg_t theirs = s_t_msg(0x61, p3, false, MSG_STATE_RECEIVED, 50, 2000, "theirs");
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
    uint8_t stranger[32];
    randombytes_buf(stranger, sizeof stranger);
    CHECK(store_history(s, stranger, 5, &msgs, &n) == 0 && n == 0);
    store_msgs_free(msgs, n);
    store_msgs_free(NULL, 0);
    s_t_idle(s);
}

static void
s_t_outbox(store_t *s)
{
    /* ids of the four envelopes stored by s_t_envelopes, in log order */
    uint8_t ids[4][32];
    sqlite3_stmt *st = NULL;
    CHECK(sqlite3_prepare_v2(s->db, "SELECT id FROM envelopes ORDER BY n", -1, &st, NULL)
          == SQLITE_OK);
    for (int i = 0; i < 4; i++) {
        CHECK(sqlite3_step(st) == SQLITE_ROW);
        CHECK(s_col_blob(st, 0, ids[i], 32) == 0);
    }
    CHECK(sqlite3_finalize(st) == SQLITE_OK);

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
    CHECK(memcmp(got, ids[3], 32) == 0); /* insertion order, not id order */
    CHECK(memcmp(got + 32, ids[0], 32) == 0);
    CHECK(memcmp(got + 64, ids[2], 32) == 0);
    CHECK(store_outbox_list(s, peer, 2, got, &n) == 0 && n == 2);
    CHECK(store_outbox_list(s, peer, 0, got, &n) == 0 && n == 0);
    CHECK(store_outbox_ack(s, ids[0], peer) == 0);
    CHECK(store_outbox_ack(s, ids[0], peer) == PARLEY_ERR_NOTFOUND);
    CHECK(store_outbox_ack(s, ids[1], peer) == PARLEY_ERR_NOTFOUND); /* it is other's */
    CHECK(store_outbox_list(s, peer, 8, got, &n) == 0 && n == 2);
    CHECK(memcmp(got, ids[3], 32) == 0 && memcmp(got + 32, ids[2], 32) == 0);
    store_stats_t stats;
    CHECK(store_stats(s, &stats) == 0 && stats.outbox == 3);
    s_t_idle(s);
}

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
    s_t_idle(s);
}

static void
s_t_own_prekey(store_own_prekey_t *k, const uint8_t owner[32], uint32_t id, uint8_t secret[32])
{
    memset(k, 0, sizeof *k);
    memcpy(k->pub.owner, owner, 32);
    k->pub.spk_id = id;
    randombytes_buf(k->pub.spk_pub, 32);
    k->pub.created_ms = 1000u * id;
    randombytes_buf(k->bundle, sizeof k->bundle);
    randombytes_buf(secret, 32);
}

static void
s_t_prekeys(store_t *s, const char *path)
{
    uint8_t me[32];
    randombytes_buf(me, sizeof me);
    store_own_prekey_t k1;
    store_own_prekey_t k2;
    store_own_prekey_t k3;
    store_own_prekey_t got;
    uint8_t s1[32];
    uint8_t s2[32];
    uint8_t s3[32];
    uint8_t sec[32];
    s_t_own_prekey(&k1, me, 1, s1);
    s_t_own_prekey(&k2, me, 2, s2);
    s_t_own_prekey(&k3, me, 3, s3);

    CHECK(store_own_prekey_current(s, &got) == PARLEY_ERR_NOTFOUND);
    CHECK(store_own_prekey_add(s, &k1, s1, 100) == 0);
    CHECK(store_own_prekey_current(s, &got) == 0);
    CHECK(got.pub.spk_id == 1 && got.superseded_ms == 0 && got.pub.created_ms == 1000);
    CHECK(memcmp(&got.pub.spk_pub, k1.pub.spk_pub, 32) == 0);
    CHECK(memcmp(got.bundle, k1.bundle, sizeof got.bundle) == 0);
    CHECK(store_own_prekey_add(s, &k2, s2, 200) == 0);
    CHECK(store_own_prekey_current(s, &got) == 0 && got.pub.spk_id == 2);
    CHECK(s_t_int(s, "SELECT superseded_ms FROM own_prekeys WHERE spk_id = 1") == 200);

    /* a reused id changes nothing, not even the current one's status */
    CHECK(store_own_prekey_add(s, &k2, s2, 300) == PARLEY_ERR_EXISTS);
    CHECK(store_own_prekey_current(s, &got) == 0 && got.pub.spk_id == 2);
    CHECK(s_t_int(s, "SELECT superseded_ms FROM own_prekeys WHERE spk_id = 1") == 200);
    s_t_idle(s);

    /* inside the caller's transaction the add is a savepoint, undone with it */
    CHECK(store_begin(s) == 0);
    CHECK(store_own_prekey_add(s, &k3, s3, 400) == 0);
    CHECK(store_own_prekey_current(s, &got) == 0 && got.pub.spk_id == 3);
    CHECK(store_rollback(s) == 0);
    CHECK(store_own_prekey_current(s, &got) == 0 && got.pub.spk_id == 2);

    CHECK(store_own_prekey_secret(s, 1, sec) == 0 && sodium_memcmp(sec, s1, 32) == 0);
    CHECK(store_own_prekey_secret(s, 2, sec) == 0 && sodium_memcmp(sec, s2, 32) == 0);
    CHECK(store_own_prekey_secret(s, 3, sec) == PARLEY_ERR_NOKEY);
    size_t n = 9;
    CHECK(store_own_prekey_wipe(s, 200, &n) == 0 && n == 0); /* superseded at 200, not before */
    CHECK(store_own_prekey_wipe(s, 201, &n) == 0 && n == 1);
    CHECK(store_own_prekey_secret(s, 1, sec) == PARLEY_ERR_NOKEY);
    CHECK(store_own_prekey_secret(s, 2, sec) == 0 && sodium_memcmp(sec, s2, 32) == 0);
    CHECK(store_own_prekey_wipe(s, UINT64_MAX, &n) == 0 && n == 0); /* current stays */

    /* after a TRUNCATE checkpoint the wiped secret is nowhere on disk */
    char wal[512];
    CHECK(snprintf(wal, sizeof wal, "%s-wal", path) > 0);
    CHECK(store_checkpoint(s) == 0);
    CHECK(!s_t_file_has(path, s1, 32));
    CHECK(!s_t_file_has(wal, s1, 32));
    CHECK(s_t_file_has(path, s2, 32)); /* the search works: the live one is there */
    s_t_idle(s);

    /* peers' prekeys: only a higher spk_id replaces */
    uint8_t owner[32];
    randombytes_buf(owner, sizeof owner);
    prekey_t pk = { .spk_id = 5, .created_ms = 50 };
    memcpy(pk.owner, owner, 32);
    randombytes_buf(pk.spk_pub, 32);
    uint8_t bundle[DM_PREKEY_BUNDLE_LEN];
    randombytes_buf(bundle, sizeof bundle);
    prekey_t pgot;
    bool changed = false;
    CHECK(store_peer_prekey_get(s, owner, &pgot) == PARLEY_ERR_NOTFOUND);
    CHECK(store_peer_prekey_put(s, &pk, bundle, &changed) == 0 && changed);
    prekey_t older = pk;
    older.spk_id = 4;
    randombytes_buf(older.spk_pub, 32);
    CHECK(store_peer_prekey_put(s, &older, bundle, &changed) == 0 && !changed);
    prekey_t same = pk;
    randombytes_buf(same.spk_pub, 32);
    CHECK(store_peer_prekey_put(s, &same, bundle, &changed) == 0 && !changed);
    CHECK(store_peer_prekey_get(s, owner, &pgot) == 0);
    CHECK(pgot.spk_id == 5 && memcmp(pgot.spk_pub, pk.spk_pub, 32) == 0);
    CHECK(memcmp(pgot.owner, owner, 32) == 0 && pgot.created_ms == 50);
    prekey_t newer = pk;
    newer.spk_id = 6;
    newer.created_ms = 60;
    CHECK(store_peer_prekey_put(s, &newer, bundle, &changed) == 0 && changed);
    CHECK(store_peer_prekey_get(s, owner, &pgot) == 0);
    CHECK(pgot.spk_id == 6 && pgot.created_ms == 60);

    sodium_memzero(s1, sizeof s1);
    sodium_memzero(s2, sizeof s2);
    sodium_memzero(s3, sizeof s3);
    sodium_memzero(sec, sizeof sec);
    s_t_idle(s);
}

static void
s_t_sessions(store_t *s)
{
    store_send_session_t snd;
    store_send_session_t sgot;
    memset(&snd, 0, sizeof snd);
    randombytes_buf(snd.peer, 32);
    randombytes_buf(snd.ek_pub, 32);
    randombytes_buf(snd.key, 32);
    snd.spk_id = 7;
    snd.day0 = 20000;
    snd.day = 20000;
    CHECK(store_send_session_get(s, snd.peer, &sgot) == PARLEY_ERR_NOTFOUND);
    CHECK(store_send_session_put(s, &snd) == 0);
    CHECK(store_send_session_get(s, snd.peer, &sgot) == 0);
    CHECK(memcmp(sgot.ek_pub, snd.ek_pub, 32) == 0 && sgot.spk_id == 7);
    CHECK(sgot.day0 == 20000 && sgot.day == 20000 && sodium_memcmp(sgot.key, snd.key, 32) == 0);
    snd.day = 20003;
    snd.spk_id = UINT32_MAX;
    randombytes_buf(snd.key, 32);
    CHECK(store_send_session_put(s, &snd) == 0);
    CHECK(store_send_session_get(s, snd.peer, &sgot) == 0);
    CHECK(sgot.day == 20003 && sgot.spk_id == UINT32_MAX);
    CHECK(sodium_memcmp(sgot.key, snd.key, 32) == 0);
    snd.day = 1;
    CHECK(store_send_session_put(s, &snd) == PARLEY_ERR_MALFORMED);

    store_recv_session_t r[2];
    store_recv_session_t rgot;
    memset(r, 0, sizeof r);
    for (int i = 0; i < 2; i++) {
        memcpy(r[i].peer, snd.peer, 32);
        randombytes_buf(r[i].ek_pub, 32);
        randombytes_buf(r[i].key, 32);
        r[i].spk_id = 3;
        r[i].day0 = 100;
        r[i].base_day = 100 + (uint32_t)i;
        r[i].last_used_ms = 5000 + (uint64_t)i;
        CHECK(store_recv_session_put(s, &r[i]) == 0);
    }
    CHECK(store_recv_session_get(s, r[1].peer, r[1].ek_pub, &rgot) == 0);
    CHECK(rgot.base_day == 101 && rgot.last_used_ms == 5001);
    CHECK(sodium_memcmp(rgot.key, r[1].key, 32) == 0);
    CHECK(store_recv_session_get(s, r[1].ek_pub, r[1].peer, &rgot) == PARLEY_ERR_NOTFOUND);
    r[0].base_day = 150;
    CHECK(store_recv_session_put(s, &r[0]) == 0); /* replaces, does not add */
    r[0].base_day = 99;
    CHECK(store_recv_session_put(s, &r[0]) == PARLEY_ERR_MALFORMED);

    store_recv_session_t *list = NULL;
    size_t n = 0;
    CHECK(store_recv_session_list(s, &list, &n) == 0 && n == 2);
    CHECK(memcmp(list[0].ek_pub, list[1].ek_pub, 32) < 0);
    for (size_t i = 0; i < n; i++) {
        int j = memcmp(list[i].ek_pub, r[0].ek_pub, 32) == 0 ? 0 : 1;
        CHECK(memcmp(list[i].ek_pub, r[j].ek_pub, 32) == 0);
        CHECK(list[i].base_day == (j == 0 ? 150u : 101u));
    }
    sodium_memzero(list, n * sizeof *list);
    free(list);
    sodium_memzero(&snd, sizeof snd);
    sodium_memzero(&sgot, sizeof sgot);
    sodium_memzero(r, sizeof r);
    sodium_memzero(&rgot, sizeof rgot);
    s_t_idle(s);
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

static void
s_t_stats(store_t *s)
{
    store_stats_t st;
    CHECK(store_stats(s, &st) == 0);
    CHECK(st.envelopes == 6 && st.equivocations == 1);
    CHECK(st.messages == 16 && st.queued == 1 && st.outbox == 3);
    CHECK(st.db_bytes > 0 && st.db_bytes % 4096 == 0);
    s_t_idle(s);
}

/*  Damages one value at a time through a raw connection and checks that the
 *  call reading it says PARLEY_ERR_MALFORMED, leaves its outputs empty, and
 *  that the store keeps working for other rows. */
static void
s_t_corrupt(const char *dir)
{
    char path[512];
    s_t_path(path, sizeof path, dir, "corrupt.db");
    store_t *s = s_t_open(path);

    uint8_t author[32];
    uint8_t scope[32];
    randombytes_buf(author, sizeof author);
    randombytes_buf(scope, sizeof scope);
    s_t_env_t e[2];
    for (int i = 0; i < 2; i++) {
        s_t_env(&e[i], author, scope, (uint64_t)i + 1, (uint8_t)i);
        CHECK(store_envelope_put(s, &e[i].env, e[i].id, 1) == 0);
    }
    uint8_t pk[32];
    randombytes_buf(pk, sizeof pk);
    CHECK(store_contact_put(s, "carol", pk, false, 1) == 0);
    CHECK(store_peer_seen(s, pk, "tcp://x", 1) == 0);
    store_msg_t m = s_t_msg(1, pk, true, MSG_STATE_STORED, 1, 10, "text");
    CHECK(store_msg_add(s, &m) == 0);
    store_own_prekey_t k;
    uint8_t secret[32];
    s_t_own_prekey(&k, pk, 1, secret);
    CHECK(store_own_prekey_add(s, &k, secret, 1) == 0);
    prekey_t ppk = k.pub;
    CHECK(store_peer_prekey_put(s, &ppk, k.bundle, &(bool){ false }) == 0);
    store_send_session_t snd = { .spk_id = 1 };
    memcpy(snd.peer, pk, 32);
    CHECK(store_send_session_put(s, &snd) == 0);
    store_recv_session_t rcv = { .spk_id = 1 };
    memcpy(rcv.peer, pk, 32);
    CHECK(store_recv_session_put(s, &rcv) == 0);
    CHECK(store_meta_set(s, "m", 1) == 0);

    uint8_t *bytes = NULL;
    size_t len = 0;
    uint64_t u = 0;
    store_msg_t *msgs = NULL;
    size_t n = 0;
    store_contact_t c;
    store_contact_t *clist = NULL;
    store_peer_t p;
    store_own_prekey_t own;
    prekey_t pgot;
    store_send_session_t sgot;
    store_recv_session_t rgot;
    store_recv_session_t *rlist = NULL;
    uint8_t sec[32];
    bool changed = false;

    s_t_raw(path, "UPDATE envelopes SET bytes = x'00' WHERE seq = 1");
    CHECK(store_envelope_get(s, e[0].id, &bytes, &len) == PARLEY_ERR_MALFORMED);
    CHECK(bytes == NULL && len == 0);
    s_t_walk_t w = { .stop_after = 0 };
    CHECK(store_envelope_each(s, s_t_walk_fn, &w) == PARLEY_ERR_MALFORMED && w.n == 0);
    CHECK(store_envelope_get(s, e[1].id, &bytes, &len) == 0); /* the other row is fine */
    free(bytes);
    s_t_raw(path, "UPDATE envelopes SET bytes = zeroblob(65537) WHERE seq = 1");
    CHECK(store_envelope_get(s, e[0].id, &bytes, &len) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE envelopes SET seq = -seq");
    CHECK(store_last_seq(s, author, scope, &u) == PARLEY_ERR_MALFORMED && u == 0);
    s_t_raw(path, "UPDATE envelopes SET seq = -seq;" /* back to 1, 2 */
                  "UPDATE envelopes SET id = x'0102' WHERE seq = 1");
    s_t_env_t again;
    s_t_env(&again, author, scope, 1, 0x55);
    CHECK(store_envelope_put(s, &again.env, again.id, 1) == PARLEY_ERR_MALFORMED);
    s_t_idle(s);

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
    s_t_raw(path, "UPDATE messages SET ts_ms = 10");
    CHECK(store_history(s, pk, 0, &msgs, &n) == 0 && n == 1); /* repaired: readable again */
    store_msgs_free(msgs, n);
    s_t_idle(s);

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

    s_t_raw(path, "UPDATE own_prekeys SET secret = x'00'");
    memset(sec, 0xAA, sizeof sec);
    CHECK(store_own_prekey_secret(s, 1, sec) == PARLEY_ERR_MALFORMED);
    CHECK(sec[0] == 0xAA && sec[31] == 0xAA); /* nothing copied */
    s_t_raw(path, "UPDATE own_prekeys SET bundle = zeroblob(140)");
    CHECK(store_own_prekey_current(s, &own) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE peer_prekeys SET spk_id = 4294967296");
    CHECK(store_peer_prekey_get(s, pk, &pgot) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE send_sessions SET key = zeroblob(31)");
    CHECK(store_send_session_get(s, pk, &sgot) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE send_sessions SET key = zeroblob(32), day0 = 5, day = 4");
    CHECK(store_send_session_get(s, pk, &sgot) == PARLEY_ERR_MALFORMED);
    s_t_raw(path, "UPDATE recv_sessions SET key = 'text instead of 32 bytes of key!'");
    CHECK(store_recv_session_get(s, rcv.peer, rcv.ek_pub, &rgot) == PARLEY_ERR_MALFORMED);
    CHECK(store_recv_session_list(s, &rlist, &n) == PARLEY_ERR_MALFORMED);
    CHECK(rlist == NULL && n == 0);
    s_t_raw(path, "UPDATE meta SET value = 'abc'");
    CHECK(store_meta_get(s, "m", &u) == PARLEY_ERR_MALFORMED);
    s_t_idle(s);

    /* two "current" prekeys, once the unique index is gone */
    s_t_raw(path, "DROP INDEX own_prekeys_current;"
                  "UPDATE own_prekeys SET bundle = zeroblob(141);"
                  "INSERT INTO own_prekeys SELECT 2, owner, spk_pub, created_ms, bundle,"
                  " secret, NULL FROM own_prekeys;");
    CHECK(store_own_prekey_current(s, &own) == PARLEY_ERR_MALFORMED);
    s_t_idle(s);
    store_destroy(&s);

    /* the file damaged below SQL: whatever the calls answer, they must not crash */
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
        w.n = 0;
        CHECK(store_envelope_each(s, s_t_walk_fn, &w) <= 0);
        if (store_history(s, pk, 0, &msgs, &n) == 0) {
            store_msgs_free(msgs, n);
        }
        if (store_contact_list(s, &clist, &n) == 0) {
            free(clist);
        }
        s_t_idle(s);
        store_destroy(&s);
    }
    sodium_memzero(secret, sizeof secret);
}

void
store_test(bool verbose)
{
    s_t_verbose = verbose;
    char dir[] = "/tmp/parley-store-test-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[512];
    s_t_path(path, sizeof path, dir, "a.db");

    s_t_say("open, migrate, reopen, meta");
    s_t_open_meta(dir);
    s_t_say("refuse newer, foreign, garbage and symlinked files");
    s_t_open_refused(dir);
    s_t_open_linked_dir(dir);

    store_t *s = s_t_open(path);
    s_t_say("envelopes: put, duplicate, equivocation, get, last_seq");
    s_t_envelopes(s);
    s_t_say("envelopes: each");
    s_t_each(s);
    s_t_say("messages: queue, attach, raise, history");
    s_t_messages(s);
    s_t_say("outbox");
    s_t_outbox(s);
    s_t_say("replication: scope keys, ranges, prefixes, authors, expiry");
    s_t_replication(dir);
    s_t_say("contacts");
    s_t_contacts(s);
    s_t_say("peers");
    s_t_peers(s);
    s_t_say("own and peer prekeys, wipe");
    s_t_prekeys(s, path);
    s_t_say("sessions");
    s_t_sessions(s);
    s_t_say("transactions");
    s_t_txn(s);
    s_t_say("stats");
    s_t_stats(s);
    store_destroy(&s);

    s_t_say("everything persists across reopen");
    s = s_t_open(path);
    s_t_stats(s);
    store_contact_t c;
    CHECK(store_contact_by_name(s, "alice", &c) == 0);
    store_own_prekey_t own;
    CHECK(store_own_prekey_current(s, &own) == 0 && own.pub.spk_id == 2);
    store_destroy(&s);

    s_t_say("damaged rows and pages");
    s_t_corrupt(dir);

    s_t_rmtree(dir);
}
