/*  store/store.h — everything a node keeps on disk, in one SQLite file.
 *
 *  The only module that includes <sqlite3.h>. The file is opened in WAL mode
 *  with synchronous=FULL (a send is durable before it is acknowledged; group
 *  commit through store_begin/store_commit keeps throughput up), secure_delete
 *  ON (erased keys and content are overwritten), and a schema versioned with
 *  PRAGMA user_version: store_open() applies every migration in order inside
 *  one transaction and refuses a file from a newer version. Schema: the
 *  migrations in store.c; each table is documented in the file that uses it.
 *
 *  Every value read back from the file is range-checked (a blob of the wrong
 *  length is PARLEY_ERR_MALFORMED, never a crash). Secret material (prekey
 *  secrets, session chain keys) lives in this file: the home is mode 0700.
 *
 *  Not thread-safe: one store_t per thread (the node's actor owns it).
 */
#ifndef PARLEY_STORE_STORE_H
#define PARLEY_STORE_STORE_H

#include "../proto/dm.h"
#include "../proto/envelope.h"
#include "../proto/errors.h"
#include "../proto/sync.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 10
#define STORE_NAME_MAX 64u   /* contact name, bytes */
#define STORE_MSG_ID_LEN 16u /* local message id */

typedef struct _store_t store_t;

/*  Opens (creating if needed), checks (PRAGMA quick_check) and migrates the
 *  database at path. PARLEY_ERR_UNSUPPORTED for a file of a newer schema,
 *  PARLEY_ERR_CORRUPT for a damaged one (store_recover saves what it can),
 *  PARLEY_ERR_IO else. */
int store_open(const char *path, store_t **out) PARLEY_WUR;
/*  store_open, and on PARLEY_ERR_CORRUPT why (cap bytes, may be NULL) holds
 *  SQLite's first complaint ("Page 42: btreeInitPage() returns error code 11").
 *  why is "" on every other outcome. */
int store_open_why(const char *path, store_t **out, char *why, size_t cap) PARLEY_WUR;
/*  Closes the database (checkpointing the WAL). NULL-safe. */
void store_destroy(store_t **self_p);

/*  Explicit transactions for group commit. Nesting is an error
 *  (PARLEY_ERR_STATE). Every other call works inside or outside one. */
int store_begin(store_t *self) PARLEY_WUR;
/*  A transaction whose commit does not wait for the disk: for bookkeeping
 *  that promises nothing to anyone (an outbox row dropped after an ACK), so
 *  that it costs no fsync of its own. In WAL mode every fully synchronous
 *  commit first syncs the whole log, so the durable state is always a
 *  prefix of the commits: a power loss can undo a relaxed commit only
 *  together with the relaxed commits after it, never one made with
 *  store_begin (which restores synchronous=FULL first); a crash of the
 *  process loses nothing. */
int store_begin_relaxed(store_t *self) PARLEY_WUR;
/*  A transaction whose commit may be split in two: store_commit_early writes
 *  it (visible, and safe from a crash of the process: the WAL is in the
 *  kernel's hands) without waiting for the disk, and store_sync makes it
 *  durable; in between the caller may send what a power loss could not
 *  harm (node/: our own DMs, whose seqs were reserved durably before,
 *  store_seq_fresh). store_commit on it does both at once. */
int store_begin_split(store_t *self) PARLEY_WUR;
/*  Commits the open transaction. Durable when it returns 0, whatever the
 *  transaction's kind, except a relaxed one's (above); a fully synchronous
 *  commit that writes makes what early commits wrote before it durable too,
 *  a relaxed one leaves it waiting for store_sync, and waits itself
 *  (store_unsynced) when it reserved sequence numbers (store_seq_fresh). */
int store_commit(store_t *self) PARLEY_WUR;
/*  Commits a split transaction without waiting for the disk; store_sync must
 *  follow before anything is promised. Later transactions may begin before
 *  it: the WAL only grows, so a sync makes every commit before it durable.
 *  On any other transaction it is store_commit. */
int store_commit_early(store_t *self) PARLEY_WUR;
/*  Makes an early commit durable (syncs the WAL); 0 at once when none waits.
 *  When the disk fails it, what the commit wrote may or may not be on the
 *  disk, and no later write could be trusted to be: the store refuses every
 *  later transaction (PARLEY_ERR_IO) until it is opened again. */
int store_sync(store_t *self) PARLEY_WUR;
/*  Whether the open (or the last) transaction is split, and whether what an
 *  early commit wrote still waits for store_sync. */
bool store_txn_split(const store_t *self);
bool store_unsynced(const store_t *self);
int store_rollback(store_t *self) PARLEY_WUR;
bool store_in_txn(const store_t *self);
/*  TRUNCATE checkpoint: moves the WAL into the file and empties it, so wiped
 *  secrets do not linger in old WAL frames. PARLEY_ERR_BUSY when a reader or
 *  the background checkpointer kept it from completing. */
int store_checkpoint(store_t *self) PARLEY_WUR;
/*  Checkpoints on a thread of its own from now on (store_ckpt.c): a commit
 *  that leaves the WAL at STORE_CKPT_FRAMES or more wakes it, and no commit
 *  copies pages into the file itself. store_destroy stops it. */
#define STORE_CKPT_FRAMES 2000u /* 8 MB of WAL at 4 KB pages */
int store_checkpointer_start(store_t *self) PARLEY_WUR;
/*  How many checkpoints it completed (0 when not started). */
uint64_t store_checkpointer_done(store_t *self);
/*  Back to SQLite's checkpoints in the commit; NULL-safe, idempotent. */
void store_checkpointer_stop(store_t *self);

/* ---- meta: small named integers (e.g. next own prekey id) ---- */
int store_meta_get(store_t *self, const char *key, uint64_t *value) PARLEY_WUR; /* NOTFOUND */
int store_meta_set(store_t *self, const char *key, uint64_t value) PARLEY_WUR;

/* ---- envelopes: the log, as received ---- */
/*  Stores a decoded, verified envelope with its id. Returns 0, or
 *  PARLEY_ERR_DUPLICATE (same id already stored: nothing written), or
 *  PARLEY_ERR_EQUIVOCATION (another envelope holds the same author, scope
 *  and seq: this one is written to the evidence table only, while it has
 *  room: STORE_EVIDENCE_*). */
int store_envelope_put(store_t *self, const envelope_t *env, const uint8_t id[32],
                       uint64_t received_ms) PARLEY_WUR;
#define STORE_EVIDENCE_PER_AUTHOR 16u /* equivocation rows kept per author */
#define STORE_EVIDENCE_MAX 4096u      /* equivocation rows kept in all */
/*  Deletes envelope id (env decoded) stored in this transaction, with its
 *  outbox rows and, when it was the author's only one in its scope, the
 *  (scope, author) pair (an envelope the node decided not to keep after
 *  all). NOTFOUND. */
int store_envelope_forget(store_t *self, const envelope_t *env, const uint8_t id[32]) PARLEY_WUR;
/*  How many envelopes of author the log holds, and their bytes. */
int store_author_usage(store_t *self, const uint8_t author[32], uint64_t *n,
                       uint64_t *bytes) PARLEY_WUR;
bool store_envelope_has(store_t *self, const uint8_t id[32]);
/*  Copies the bytes of envelope id into *bytes (malloc'd, caller frees). */
int store_envelope_get(store_t *self, const uint8_t id[32], uint8_t **bytes,
                       size_t *len) PARLEY_WUR;
/*  Highest seq stored for (author, scope), 0 if none. */
int store_last_seq(store_t *self, const uint8_t author[32], const uint8_t scope[32],
                   uint64_t *seq) PARLEY_WUR;
/* ---- our sequence numbers (store_log.c, "Sequence numbers") ---- */
#define STORE_SEQ_BLOCK 64u /* numbers reserved per write of seq_counters */
/*  The seq for our next envelope (author: us) in scope: above every number
 *  handed out before on this file and every seq of author held in scope,
 *  and at least the floor. Reserves the next block first when needed (in
 *  the open transaction, else in one of its own). PARLEY_ERR_LIMIT when
 *  the numbers run out. */
int store_seq_next(store_t *self, const uint8_t author[32], const uint8_t scope[32],
                   uint64_t *seq) PARLEY_WUR;
/*  Records that seq was used by us in scope (an envelope of ours that came
 *  back from a peer): later numbers are above it. */
int store_seq_raise(store_t *self, const uint8_t scope[32], uint64_t seq) PARLEY_WUR;
/*  Whether the open (or the last) transaction handed out a number that only
 *  a reservation of its own covers (the first envelope of a new scope, a
 *  block used up): such a number must not leave the node before the
 *  transaction is durable, or a power loss could hand it out again. */
bool store_seq_fresh(const store_t *self);
/*  Outside a transaction: reserves, in one transaction of its own, a block
 *  ahead for every scope with less than half a block left. *n: how many. */
int store_seq_refill(store_t *self, size_t *n) PARLEY_WUR;
/*  At start, outside a transaction: moves every stored reservation a block
 *  up (committed) and loads the cursors past the old bounds, so no scope
 *  needs a reservation inside a transaction. *n: cursors loaded. */
int store_seq_load(store_t *self, size_t *n) PARLEY_WUR;
/*  Every scope's numbers start at floor or above from now on (meta
 *  seq_floor; after a lost database). */
int store_seq_floor_set(store_t *self, uint64_t floor) PARLEY_WUR;
/*  Calls fn for every stored envelope in insertion order (tests, forensics).
 *  fn returns non-zero to stop. */
int store_envelope_each(store_t *self, int (*fn)(const uint8_t *bytes, size_t len, void *arg),
                        void *arg) PARLEY_WUR;

/* ---- messages: decrypted history ---- */
enum {
    MSG_STATE_QUEUED = 0,    /* outgoing, waiting for the peer's prekey; no envelope yet */
    MSG_STATE_STORED = 1,    /* outgoing, sealed and durable in our log */
    MSG_STATE_RELAYED = 2,   /* held by another node (reserved for relays) */
    MSG_STATE_DELIVERED = 3, /* the recipient's signed receipt came back */
    MSG_STATE_READ = 4,      /* the recipient opened it */
    MSG_STATE_RECEIVED = 10, /* incoming */
    MSG_STATE_OPENED = 11,   /* incoming, and read here (a read receipt went back) */
};

typedef struct {
    uint8_t msg_id[STORE_MSG_ID_LEN]; /* local id (node/: core_msg_id) */
    bool has_env;                     /* false while QUEUED */
    uint8_t env_id[32];               /* envelope id when has_env */
    uint8_t peer[32];                 /* the other party's Ed25519 pk */
    bool outgoing;                    /* we wrote it */
    uint64_t seq;                     /* envelope seq (0 while QUEUED) */
    uint64_t ts_ms;                   /* envelope ts (queue time while QUEUED) */
    int state;                        /* MSG_STATE_* */
    uint64_t expires_ms;              /* the envelope's expiry; while QUEUED, the one to seal
                                         with (0: never). Expiry deletes the row */
    char *text;                       /* NUL-terminated, malloc'd (free with store_msgs_free) */
} store_msg_t;

/*  Inserts a message. For outgoing QUEUED messages has_env is false;
 *  otherwise its envelope must be in the log (PARLEY_ERR_NOTFOUND if not). */
int store_msg_add(store_t *self, const store_msg_t *msg) PARLEY_WUR;
/*  Gives a QUEUED message its envelope, which must be in the log
 *  (PARLEY_ERR_NOTFOUND if not): sets env_id, seq, ts, state STORED. */
int store_msg_attach(store_t *self, const uint8_t msg_id[STORE_MSG_ID_LEN],
                     const uint8_t env_id[32], uint64_t seq, uint64_t ts_ms) PARLEY_WUR;
/*  Raises the state of the outgoing message with envelope env_id to state if
 *  it is lower. *changed tells if it moved; *out (may be NULL) receives the
 *  message (free its text with store_msgs_free(out, 1) semantics: free(out->text)).
 *  PARLEY_ERR_NOTFOUND if no outgoing message has that envelope. */
int store_msg_raise(store_t *self, const uint8_t env_id[32], int state, bool *changed,
                    store_msg_t *out) PARLEY_WUR;
/*  The peer our outgoing message with envelope env_id went to (the one party
 *  whose receipt for it counts); PARLEY_ERR_NOTFOUND if we sent no message
 *  with that envelope. */
int store_msg_recipient(store_t *self, const uint8_t env_id[32], uint8_t peer[32]) PARLEY_WUR;
/*  QUEUED messages to peer, oldest first. *out is an array the caller frees
 *  with store_msgs_free. */
int store_msg_queued(store_t *self, const uint8_t peer[32], store_msg_t **out,
                     size_t *n) PARLEY_WUR;
/*  Peers that have QUEUED messages (array of 32-byte keys, caller frees). */
int store_msg_queued_peers(store_t *self, uint8_t (**peers)[32], size_t *n) PARLEY_WUR;
/*  The last `limit` messages with peer, returned oldest first, ordered by
 *  (ts_ms, outgoing-author, seq). limit 0 = all. */
int store_history(store_t *self, const uint8_t peer[32], size_t limit, store_msg_t **out,
                  size_t *n) PARLEY_WUR;
/*  As store_history, for the messages strictly before message `before` in
 *  that order (NULL: the newest): a client pages back by passing the oldest
 *  message of the page it has. PARLEY_ERR_NOTFOUND if before is not a
 *  message with peer. */
int store_history_before(store_t *self, const uint8_t peer[32],
                         const uint8_t before[STORE_MSG_ID_LEN], size_t limit, store_msg_t **out,
                         size_t *n) PARLEY_WUR;
void store_msgs_free(store_msg_t *msgs, size_t n);

/*  A direct conversation: a peer we hold messages with. */
typedef struct {
    uint8_t peer[32]; /* the other party's Ed25519 pk */
    uint64_t unread;  /* its messages received and not read here (RECEIVED) */
    uint64_t last_ms; /* the newest message's ts_ms */
} store_conv_t;
/*  The conversations, the most recently active first, at most cap (0: all);
 *  *out is the caller's to free(). One pass over the messages. */
int store_conversations(store_t *self, size_t cap, store_conv_t **out, size_t *n) PARLEY_WUR;

/* ---- outbox: envelopes a peer has not acknowledged yet ---- */
int store_outbox_add(store_t *self, const uint8_t env_id[32], const uint8_t peer[32],
                     uint64_t now_ms) PARLEY_WUR;
/*  Up to max ids pending for peer, in log order (oldest stored first), into
 *  ids (max × 32 bytes). */
int store_outbox_list(store_t *self, const uint8_t peer[32], size_t max, uint8_t *ids,
                      size_t *n) PARLEY_WUR;
/*  Up to max peers that have envelopes pending, in key order, into peers
 *  (max × 32 bytes). */
int store_outbox_peers(store_t *self, size_t max, uint8_t *peers, size_t *n) PARLEY_WUR;
/*  Removes (env_id, peer); PARLEY_ERR_NOTFOUND if absent. */
int store_outbox_ack(store_t *self, const uint8_t env_id[32], const uint8_t peer[32]) PARLEY_WUR;

/* ---- contacts ---- */
typedef struct {
    char name[STORE_NAME_MAX + 1]; /* unique, NUL-terminated */
    uint8_t pk[32];                /* Ed25519 pk */
    bool verified;                 /* safety number checked out of band */
    uint64_t added_ms;
} store_contact_t;

/*  Inserts or replaces the contact called name (verified is reset when the
 *  key changes; callers warn first). */
int store_contact_put(store_t *self, const char *name, const uint8_t pk[32], bool verified,
                      uint64_t now_ms) PARLEY_WUR;
int store_contact_by_name(store_t *self, const char *name, store_contact_t *out) PARLEY_WUR;
int store_contact_by_pk(store_t *self, const uint8_t pk[32], store_contact_t *out) PARLEY_WUR;
/*  All contacts by name; caller frees *out with free(). */
int store_contact_list(store_t *self, store_contact_t **out, size_t *n) PARLEY_WUR;
int store_contact_remove(store_t *self, const char *name) PARLEY_WUR;
int store_contact_set_verified(store_t *self, const uint8_t pk[32], bool verified) PARLEY_WUR;

/* ---- peers: nodes we have seen ---- */
typedef struct {
    uint8_t pk[32];     /* Ed25519 pk */
    char endpoint[256]; /* last known endpoint, "" if none */
    uint64_t first_seen_ms;
    uint64_t last_seen_ms;
} store_peer_t;

/*  Records a sighting; endpoint NULL keeps the stored one. */
int store_peer_seen(store_t *self, const uint8_t pk[32], const char *endpoint,
                    uint64_t now_ms) PARLEY_WUR;
int store_peer_get(store_t *self, const uint8_t pk[32], store_peer_t *out) PARLEY_WUR;
/*  All peers; caller frees *out with free(). */
int store_peer_list(store_t *self, store_peer_t **out, size_t *n) PARLEY_WUR;
/*  At most max peers, most recently seen first; caller frees *out. */
int store_peer_recent(store_t *self, size_t max, store_peer_t **out, size_t *n) PARLEY_WUR;
/*  Deletes pk's row; PARLEY_ERR_NOTFOUND if there is none. */
int store_peer_forget(store_t *self, const uint8_t pk[32]) PARLEY_WUR;

/* ---- own signed prekeys ---- */
typedef struct {
    prekey_t pub;                         /* public part */
    uint8_t bundle[DM_PREKEY_BUNDLE_LEN]; /* signed encoding */
    uint64_t superseded_ms;               /* 0 while current */
} store_own_prekey_t;

/*  Adds a new current prekey and marks the previous current one superseded
 *  at now_ms. */
int store_own_prekey_add(store_t *self, const store_own_prekey_t *pk, const uint8_t secret[32],
                         uint64_t now_ms) PARLEY_WUR;
/*  The current prekey (NOTFOUND before the first). */
int store_own_prekey_current(store_t *self, store_own_prekey_t *out) PARLEY_WUR;
/*  Secret of prekey spk_id and, when created_ms is not NULL, when it was made;
 *  PARLEY_ERR_NOKEY if unknown or wiped. */
int store_own_prekey_secret(store_t *self, uint32_t spk_id, uint8_t secret[32],
                            uint64_t *created_ms) PARLEY_WUR;
/*  Deletes every prekey superseded before cutoff_ms; *n how many. */
int store_own_prekey_wipe(store_t *self, uint64_t cutoff_ms, size_t *n) PARLEY_WUR;

/* ---- peers' prekeys ---- */
#define STORE_PEER_PREKEYS_MAX 4096u /* peers' prekeys kept; past it strangers' go */
/*  Keeps pk if its spk_id is newer than the stored one for its owner.
 *  *changed tells whether it replaced anything. Past STORE_PEER_PREKEYS_MAX
 *  the oldest of owners we have no contact, session or message with go. */
int store_peer_prekey_put(store_t *self, const prekey_t *pk,
                          const uint8_t bundle[DM_PREKEY_BUNDLE_LEN], bool *changed) PARLEY_WUR;
int store_peer_prekey_get(store_t *self, const uint8_t owner[32], prekey_t *out) PARLEY_WUR;
/*  The newest signed bundles held for others (at most max, newest first by
 *  created_ms, none dated after newest_ms), into out (max ×
 *  DM_PREKEY_BUNDLE_LEN bytes); *n how many. */
int store_peer_prekey_recent(store_t *self, uint64_t newest_ms, size_t max, uint8_t *out,
                             size_t *n) PARLEY_WUR;
/*  The signed bundle held for owner (to pass on to others). */
int store_peer_prekey_bundle(store_t *self, const uint8_t owner[32],
                             uint8_t bundle[DM_PREKEY_BUNDLE_LEN]) PARLEY_WUR;

/* ---- DM sessions ---- */
typedef struct {
    uint8_t peer[32];   /* recipient */
    uint8_t ek_pub[32]; /* session */
    uint32_t spk_id;    /* recipient prekey it was opened against */
    uint32_t day0;
    uint32_t day;    /* period of key */
    uint8_t key[32]; /* chain key of day (secret) */
} store_send_session_t;

int store_send_session_get(store_t *self, const uint8_t peer[32],
                           store_send_session_t *out) PARLEY_WUR;
int store_send_session_put(store_t *self, const store_send_session_t *s) PARLEY_WUR;

typedef struct {
    uint8_t peer[32];   /* sender */
    uint8_t ek_pub[32]; /* session */
    uint32_t spk_id;
    uint32_t day0;
    uint32_t base_day; /* oldest period still openable */
    uint8_t key[32];   /* chain key of base_day (secret) */
    uint64_t last_used_ms;
} store_recv_session_t;

int store_recv_session_get(store_t *self, const uint8_t peer[32], const uint8_t ek_pub[32],
                           store_recv_session_t *out) PARLEY_WUR;
#define STORE_RECV_PER_PEER 8u /* receiving sessions kept per peer (least recently used go) */
/*  Inserts or replaces the session (peer, ek_pub); beyond STORE_RECV_PER_PEER
 *  of the peer's, the least recently used one is deleted. */
int store_recv_session_put(store_t *self, const store_recv_session_t *s) PARLEY_WUR;
/*  Deletes the session (peer, ek_pub); NOTFOUND. */
int store_recv_session_delete(store_t *self, const uint8_t peer[32],
                              const uint8_t ek_pub[32]) PARLEY_WUR;
/*  All receiving sessions (caller frees). */
int store_recv_session_list(store_t *self, store_recv_session_t **out, size_t *n) PARLEY_WUR;

/* ---- replication (store_sync.c) ---- */

/*  Inserts the (ts, id) of every envelope of scope into set (in order). */
int store_scope_load(store_t *self, const uint8_t scope[32], sync_set_t *set) PARLEY_WUR;
/*  Calls fn(scope, author, arg) for every author seen in every scope,
 *  ordered by scope; fn returns non-zero to stop. */
int store_scope_authors(store_t *self,
                        int (*fn)(const uint8_t scope[32], const uint8_t author[32], void *arg),
                        void *arg) PARLEY_WUR;
/*  Envelopes of scope with (ts, id) after (after_ts, after_id) and at most
 *  (to_ts, to_id), in order, at most limit; fn gets views valid during the
 *  call and may not call the store. *n how many were passed. */
int store_envelope_range(store_t *self, const uint8_t scope[32], uint64_t after_ts,
                         const uint8_t after_id[32], uint64_t to_ts, const uint8_t to_id[32],
                         size_t limit,
                         int (*fn)(uint64_t ts, const uint8_t id[32], const uint8_t *bytes,
                                   size_t len, void *arg),
                         void *arg, size_t *n) PARLEY_WUR;
/*  The envelope whose id starts with prefix (SYNC_PREFIX_LEN bytes):
 *  malloc'd bytes, or PARLEY_ERR_NOTFOUND. */
int store_envelope_by_prefix(store_t *self, const uint8_t prefix[SYNC_PREFIX_LEN], uint8_t **bytes,
                             size_t *len) PARLEY_WUR;
bool store_envelope_has_prefix(store_t *self, const uint8_t prefix[SYNC_PREFIX_LEN]);

typedef struct {
    uint8_t id[32];
    uint8_t scope[32];
    uint64_t ts_ms;
} store_expired_t;

/*  Deletes up to max envelopes whose expires_ms ≤ now, with their messages
 *  and outbox rows (secure_delete overwrites them); out[0..*n) says which. */
int store_envelope_expire(store_t *self, uint64_t now_ms, size_t max, store_expired_t *out,
                          size_t *n) PARLEY_WUR;
/*  Deletes what expires with no envelope in the log: QUEUED messages and
 *  equivocation evidence whose expires_ms ≤ now. *n counts the rows. */
int store_expire_unlogged(store_t *self, uint64_t now_ms, size_t *n) PARLEY_WUR;
/*  Forgets env_id in every peer's outbox (its recipient has it). */
int store_outbox_drop(store_t *self, const uint8_t env_id[32]) PARLEY_WUR;
/*  Marks the incoming message with envelope env_id read; *changed if it was
 *  not already. */
int store_msg_mark_read(store_t *self, const uint8_t env_id[32], bool *changed) PARLEY_WUR;

/* ---- salvage (store_recover.c) ---- */

#define STORE_RECOVER_TABLES 20u

typedef struct {
    const char *table;  /* its name (static) */
    uint64_t kept;      /* rows copied into the new file */
    uint64_t lost;      /* rows skipped over in unreadable stretches, counted by the gap in
                           their rowids (so rows deleted before the damage count too: an
                           upper bound) */
    uint64_t stretches; /* unreadable stretches stepped over */
    uint64_t refused;   /* rows read but refused by the new file (an outbox row whose
                           envelope was lost, a duplicate key from a damaged index) */
    bool tail_lost;     /* the end of the table could not be read: how much is unknown */
    bool unreadable;    /* the table could not be read at all (or the file lacks it) */
} store_recover_table_t;

typedef struct {
    store_recover_table_t table[STORE_RECOVER_TABLES]; /* one per table, in copy order */
    size_t n;                                          /* entries used */
} store_recover_report_t;

/*  Copies every row that can still be read from the (damaged) database at
 *  src into a new database at dst, which must not exist yet (PARLEY_ERR_EXISTS)
 *  and is created with the current schema. src is read only: its WAL is read
 *  but never checkpointed into it, so the damaged file stays as it was for a
 *  later look. Rows are walked in rowid order; an unreadable stretch is
 *  stepped over and counted. scope_authors is rebuilt from the envelopes
 *  kept. *report says, per table, what was kept and lost. On error dst is
 *  removed. PARLEY_ERR_UNSUPPORTED if src is from a newer schema,
 *  PARLEY_ERR_CORRUPT if nothing of it can be read (its header or schema
 *  is gone). */
int store_recover(const char *src, const char *dst, store_recover_report_t *report) PARLEY_WUR;

/* ---- statistics ---- */
typedef struct {
    uint64_t envelopes;     /* rows in the log */
    uint64_t messages;      /* history rows */
    uint64_t outbox;        /* unacknowledged (envelope, peer) pairs */
    uint64_t queued;        /* messages waiting for a prekey */
    uint64_t equivocations; /* evidence rows */
    uint64_t db_bytes;      /* page_count × page_size */
    uint64_t age_ms;        /* 0: current; else counted that long ago, and written since */
} store_stats_t;

/*  The counts. count(*) walks the smallest index of each table, linear in
 *  the log (tens of ms at a million rows), so they are kept between calls
 *  and counted again only after a write or a rollback; and when counting
 *  took STORE_STATS_CHEAP_NS or more, no sooner than STORE_STATS_SHARE times
 *  that after the last count, so a client that polls costs the node at
 *  most about 1/STORE_STATS_SHARE of its time. age_ms says how old counts
 *  that may miss writes are (0 for a store counted in under a millisecond,
 *  tens of thousands of rows). */
#define STORE_STATS_SHARE 100u
#define STORE_STATS_CHEAP_NS 1000000u
int store_stats(store_t *self, store_stats_t *out) PARLEY_WUR;

/* ---- fault injection for tests ---- */

/*  Fault injection for tests: the next COUNT calls of the named operation fail
 *  as a full disk would (PARLEY_ERR_IO) without touching the file. COUNT 0 clears.
 *  A call refused before it would write (a bad argument, store_commit outside a
 *  transaction) returns its usual error and does not use up a fault. Setting a
 *  count replaces the one left; a negative count clears too; an unknown where
 *  or a NULL self is ignored. Each store_t keeps its own counts. */
typedef enum {
    STORE_FAULT_COMMIT = 1, /* store_commit: fails, and the transaction is rolled back
                               (store_in_txn() false afterwards) as SQLite does on a failed
                               COMMIT after an I/O error. Only store_commit: the commits
                               inside single calls (store_own_prekey_add...) are not hit */
    STORE_FAULT_MSG_ADD,    /* store_msg_add (every insert into message history): nothing is
                               written, and an open transaction stays open */
    STORE_FAULT_PREKEY_PUT, /* store_peer_prekey_put, which node/ (session_on_bundle) calls
                               to keep a received bundle: nothing is written, *changed is
                                                              false. Our own prekeys
                               (store_own_prekey_add) are not hit */
    STORE_FAULT_SYNC,       /* store_sync, and the sync inside store_commit of a split
                               transaction: the disk refuses the WAL's sync, after the
                               commit was written */
} store_fault_t;
void store_fault_set(store_t *self, store_fault_t where, int count);

/* ---- the private network (store_net.c) ---- */

/*  Which network this node is in: at most one row. The roster is not here:
 *  it is the envelopes of the network's scope (store_envelope_range). */
enum {
    STORE_NET_MEMBER = 1, /* joined or founded; the roster says the role */
    STORE_NET_LEFT = 2,   /* left (or was removed): open mode again */
};
typedef struct {
    uint8_t id[32];    /* network id */
    int state;         /* STORE_NET_* */
    uint64_t since_ms; /* when it took that state */
} store_network_t;
int store_network_get(store_t *self, store_network_t *out) PARLEY_WUR; /* NOTFOUND */
/*  Replaces the row (and, for another network or the state LEFT, forgets
 *  every secret). */
int store_network_set(store_t *self, const store_network_t *net) PARLEY_WUR;

/*  A network secret as an admin signed it (NETKEY, proto/SPEC.md §19). The
 *  newest STORE_NETKEYS_MAX epochs are kept; older ones are deleted
 *  (secure_delete overwrites them). */
#define STORE_NETKEYS_MAX 4u
typedef struct {
    uint32_t epoch;     /* epoch it belongs to */
    uint8_t secret[32]; /* the secret */
    uint8_t author[32]; /* the admin that made it */
    uint8_t sig[64];    /* its signature */
} store_netkey_t;
/*  Inserts or replaces epoch's key, then trims. */
int store_netkey_put(store_t *self, const store_netkey_t *key) PARLEY_WUR;
/*  The kept keys, newest epoch first, into out (cap entries); *n how many.
 *  The caller wipes out. */
int store_netkey_list(store_t *self, store_netkey_t *out, size_t cap, size_t *n) PARLEY_WUR;

/* ---- channels (store_chan.c) ----
 *
 *  A channel's control log and KEYS bodies are envelopes in its scope, and
 *  its messages envelopes in its msg scope (proto/SPEC.md §21); node/
 *  folds them. These rows are what the node derives and must keep: the
 *  channels it is in, the epoch keys it took, the chain state of every
 *  sender, the messages it opened, and the receipt marks of members. */
#define STORE_CHAN_NAME_MAX 64u     /* bytes (CONTENT_NAME_MAX) */
#define STORE_CHAN_TOPIC_MAX 512u   /* bytes (CONTENT_TOPIC_MAX) */
#define STORE_CHAN_CHAIN_MAX 40000u /* a chain's saved state, bytes (chan_rx_save) */
enum {
    STORE_CHAN_MEMBER = 1, /* in it (the fold says the role) */
    STORE_CHAN_GONE = 2,   /* left or removed: kept for its history, sends nothing */
};
/*  A message's place in a channel: every node orders by (ts_ms raised to
 *  the author's earlier messages, author, seq) (SPEC §21.5). */
typedef struct {
    uint64_t ts_ms;
    uint8_t author[32];
    uint64_t seq;
} store_chan_pos_t;
typedef struct {
    uint8_t id[32];                       /* channel id: its control scope */
    int state;                            /* STORE_CHAN_* */
    uint64_t since_ms;                    /* when it took that state */
    char name[STORE_CHAN_NAME_MAX + 1];   /* from the settings message applied; "" before */
    char topic[STORE_CHAN_TOPIC_MAX + 1]; /* likewise */
    store_chan_pos_t meta;                /* that settings message's place (ts 0: none yet) */
    store_chan_pos_t read;                /* our read marker: the last message read (ts 0: none) */
} store_chan_t;
/*  Inserts or replaces a channel's row. */
int store_chan_put(store_t *self, const store_chan_t *chan) PARLEY_WUR;
int store_chan_get(store_t *self, const uint8_t id[32],
                   store_chan_t *out) PARLEY_WUR; /* NOTFOUND */
/*  Every channel, in id order; *out is the caller's to free(). */
int store_chan_list(store_t *self, store_chan_t **out, size_t *n) PARLEY_WUR;

/*  An epoch key: taken (bound: its binding is the one our fold gives the
 *  epoch) or held aside until the fold binds it. */
typedef struct {
    uint8_t channel[32];
    uint32_t epoch;
    uint8_t key_id[8];
    uint8_t key[32]; /* K: secret */
    uint8_t author[32];
    uint8_t binding[32];
    bool bound;
    uint64_t added_ms;
} store_chan_key_t;
/*  Inserts a key, or updates bound for one held already. */
int store_chan_key_put(store_t *self, const store_chan_key_t *key) PARLEY_WUR;
/*  A channel's keys, epoch then key_id ascending; the caller wipes and
 *  frees *out (store_chan_keys_free). */
int store_chan_key_list(store_t *self, const uint8_t channel[32], store_chan_key_t **out,
                        size_t *n) PARLEY_WUR;
void store_chan_keys_free(store_chan_key_t *keys, size_t n);
/*  Deletes a channel's keys (and their chains) of epochs below epoch;
 *  *n how many keys went. */
int store_chan_key_drop(store_t *self, const uint8_t channel[32], uint32_t below,
                        size_t *n) PARLEY_WUR;

/*  A sender's chain in one epoch key, saved as chan_rx_save writes it (our
 *  own sending chain too): secret. NOTFOUND before the first. */
int store_chan_chain_get(store_t *self, const uint8_t channel[32], uint32_t epoch,
                         const uint8_t key_id[8], const uint8_t sender[32], uint8_t *buf,
                         size_t cap, size_t *len) PARLEY_WUR;
int store_chan_chain_put(store_t *self, const uint8_t channel[32], uint32_t epoch,
                         const uint8_t key_id[8], const uint8_t sender[32], const uint8_t *buf,
                         size_t len) PARLEY_WUR;

/*  The scopes of the channel control events in the log (envelope kind 3),
 *  ascending, at most cap: the channels a relay carries. */
int store_chan_control_scopes(store_t *self, uint8_t (*out)[32], size_t cap, size_t *n) PARLEY_WUR;

/*  A message of ours waiting for the current epoch's key (SPEC §21.5):
 *  sealed and sent, in the order queued, when it comes. */
typedef struct {
    int64_t n; /* its row: the order */
    uint8_t channel[32];
    uint64_t ts_ms; /* when it was queued */
    char *text;     /* NUL-terminated, malloc'd when read back */
} store_chan_queued_t;
/*  Queues text (NUL-terminated) for channel; *n its row. */
int store_chan_queue_add(store_t *self, const uint8_t channel[32], uint64_t ts_ms, const char *text,
                         int64_t *n) PARLEY_WUR;
/*  The messages queued for channel, oldest first (at most limit; 0: all);
 *  free with store_chan_queued_free. */
int store_chan_queue_list(store_t *self, const uint8_t channel[32], size_t limit,
                          store_chan_queued_t **out, size_t *n) PARLEY_WUR;
void store_chan_queued_free(store_chan_queued_t *q, size_t n);
/*  How many are queued for channel. */
int store_chan_queue_count(store_t *self, const uint8_t channel[32], uint64_t *n) PARLEY_WUR;
/*  Removes row n (sent); or, with n < 0, every row of channel (we left). */
int store_chan_queue_drop(store_t *self, const uint8_t channel[32], int64_t n) PARLEY_WUR;

/*  A message opened in a channel. pos.ts_ms is the envelope's: the store
 *  raises it to the author's earlier messages (and raises the author's
 *  later ones to it), so every node gives the same order. */
typedef struct {
    uint8_t channel[32];
    uint8_t env_id[32];
    store_chan_pos_t pos; /* its place (read back raised) */
    uint64_t sent_ms;     /* the envelope's own ts_ms */
    uint64_t expires_ms;  /* 0: never */
    char *text;           /* NUL-terminated; malloc'd when read back */
} store_chan_msg_t;
/*  EXISTS for an envelope held already. */
int store_chan_msg_add(store_t *self, const store_chan_msg_t *msg) PARLEY_WUR;
/*  The last limit messages of channel (0: all) strictly before before
 *  (NULL: the newest), oldest first; free with store_chan_msgs_free. */
int store_chan_history(store_t *self, const uint8_t channel[32], const store_chan_pos_t *before,
                       size_t limit, store_chan_msg_t **out, size_t *n) PARLEY_WUR;
/*  Messages of channel after pos (NULL: all) that are not ours: the unread
 *  count when pos is the read marker. */
int store_chan_count_after(store_t *self, const uint8_t channel[32], const store_chan_pos_t *pos,
                           const uint8_t self_pk[32], uint64_t *n) PARLEY_WUR;
/*  The highest seq held of each author of channel but except, authors
 *  ascending, at most cap (seq and author of out; ts 0): what a receipt
 *  acknowledges. */
int store_chan_tops(store_t *self, const uint8_t channel[32], const uint8_t except[32],
                    store_chan_pos_t *out, size_t cap, size_t *n) PARLEY_WUR;
void store_chan_msgs_free(store_chan_msg_t *msgs, size_t n);

/*  Receipt marks: member holds (status 1) or has read (2) every message of
 *  author up to seq. Only raised: *changed tells whether it moved. */
int store_chan_mark_raise(store_t *self, const uint8_t channel[32], const uint8_t member[32],
                          const uint8_t author[32], uint8_t status, uint64_t seq,
                          bool *changed) PARLEY_WUR;
/*  How many members other than author hold a mark of status for author at
 *  or past seq. */
int store_chan_mark_count(store_t *self, const uint8_t channel[32], const uint8_t author[32],
                          uint8_t status, uint64_t seq, uint64_t *n) PARLEY_WUR;

/* ---- self-tests, one per file (tests/store_selftest.c runs them) ---- */
void store_test(bool verbose);         /* store.c: open, migrate, bind, transactions, stats */
void store_log_test(bool verbose);     /* store_log.c */
void store_msgs_test(bool verbose);    /* store_msgs.c */
void store_peers_test(bool verbose);   /* store_peers.c */
void store_keys_test(bool verbose);    /* store_keys.c */
void store_sync_test(bool verbose);    /* store_sync.c */
void store_net_test(bool verbose);     /* store_net.c */
void store_chan_test(bool verbose);    /* store_chan.c */
void store_recover_test(bool verbose); /* store_recover.c: quick_check at open, salvage */

#endif
