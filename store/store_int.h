/*  store/store_int.h — private to store/: the store_t object, the registry
 *  of prepared statements, and the small helpers every file in store/ uses
 *  to bind values and to read them back with range checks.
 *
 *  Invariants the helpers keep:
 *  - Every statement is reset and its bindings cleared (s_reset) on every
 *    path before a public function returns, so no statement holds a read
 *    snapshot or a pointer into caller memory (a secret key, say) after it.
 *  - Values are bound with SQLITE_STATIC: SQLite reads them during the step
 *    and never keeps its own heap copy of a caller's secret.
 *  - Unsigned 64-bit values are stored as SQLite INTEGER (signed 64-bit).
 *    Values above INT64_MAX are refused on the way in (PARLEY_ERR_LIMIT) so
 *    that SQL comparisons, max() and ORDER BY stay correct; a negative value
 *    read back can only come from a damaged file (PARLEY_ERR_MALFORMED).
 *  - Every column read checks its storage class and length: a blob of the
 *    wrong length, a NULL where a value belongs, or an out-of-range integer
 *    is PARLEY_ERR_MALFORMED, never a crash and never a short copy.
 *
 *  The helpers are static inline so they stay private to the library and
 *  need no exported symbols; each file uses the ones it needs.
 *
 *  This header does not include store.h (which each file of store/ includes
 *  itself): a private header that pulled in the public one would make an
 *  include circle with store.c. It needs only the name store_t, declared
 *  below exactly as store.h declares it (a repeated identical typedef is
 *  valid C11).
 */
#ifndef PARLEY_STORE_STORE_INT_H
#define PARLEY_STORE_STORE_INT_H

#include "../proto/errors.h"
#include "../proto/limits.h"
#include <sodium.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct _store_t store_t;

/*  The prepared statements. Each file of store/ keeps the SQL it runs next
 *  to the code that runs it, in a table indexed by an enum of its own, and
 *  exports that table as a store_sql_t. store_open() prepares every table
 *  listed in store_parts (store.c) once; store_destroy() finalizes them. */
typedef enum {
    STORE_PART_CORE,  /* store.c: transactions, meta, stats */
    STORE_PART_LOG,   /* store_log.c: envelopes, equivocations, scope_authors */
    STORE_PART_MSGS,  /* store_msgs.c: messages, outbox */
    STORE_PART_PEERS, /* store_peers.c: contacts, peers */
    STORE_PART_KEYS,  /* store_keys.c: own and peer prekeys, sessions */
    STORE_PART_SYNC,  /* store_sync.c: what replication reads and deletes */
    STORE_PART_NET,   /* store_net.c: the private network and its secrets */
    STORE_PART_CHAN,  /* store_chan.c: channels, their keys, chains, messages, marks */
    STORE_PART_COUNT
} store_part_t;

typedef struct {
    const char *file;       /* where the SQL lives (the self-test names it) */
    const char *const *sql; /* sql[i]: statement i, exactly one statement each */
    size_t count;           /* entries in sql */
} store_sql_t;

extern const store_sql_t store_log_sql;
extern const store_sql_t store_msgs_sql;
extern const store_sql_t store_peers_sql;
extern const store_sql_t store_keys_sql;
extern const store_sql_t store_sync_sql;
extern const store_sql_t store_net_sql;
extern const store_sql_t store_chan_sql;
/*  Every table above and the core's own, indexed by store_part_t. */
extern const store_sql_t *const store_parts[STORE_PART_COUNT];

/*  One scope's sequence cursor (store_log.c, "Sequence numbers"). */
typedef struct {
    uint8_t scope[32]; /* the scope */
    uint64_t next;     /* the next seq to hand out */
    uint64_t durable;  /* every seq up to this is reserved by a committed row */
    uint64_t pending;  /* reserved by a row of the open transaction (0: none) */
} store_seq_t;

/* one slot per store_fault_t (store.h), which starts at 1; store.c checks the size */
#define S_FAULT_SLOTS 5

typedef struct store_ckpt store_ckpt_t; /* store_ckpt.c */

struct _store_t {
    sqlite3 *db;                         /* the connection; owned, closed in store_destroy */
    sqlite3_stmt **st[STORE_PART_COUNT]; /* st[part][i]: statement i of store_parts[part],
                                            prepared once at open; NULL only while opening */
    bool relaxed;                        /* synchronous=NORMAL: the last transaction was
                                    begun by store_begin_relaxed or store_begin_split */
    bool split;                          /* the last transaction was begun by store_begin_split */
    bool unsynced;                       /* an early commit waits for store_sync */
    bool sync_failed;                    /* the disk failed a sync: no more transactions */
    bool seq_fresh;                      /* the last transaction used a number of a
                                            reservation of its own (store_seq_fresh) */
    bool in_each;                        /* store_envelope_each is stepping its statement:
                                            a nested call would reset it under the walk */
    int fault[S_FAULT_SLOTS];            /* fault[where]: how many more calls of the
                                            store_fault_t where fail (store_fault_set) */
    store_seq_t *seqs;                   /* our sequence cursors, one per scope used
                                            (store_log.c, "Sequence numbers") */
    size_t n_seqs, cap_seqs;
    store_ckpt_t *ckpt; /* the background checkpointer, if started */
    bool wrote;         /* the last COMMIT wrote WAL frames (store_wal_hook) */
    /* the last store_contact_by_pk answer (a notification names its peer's
       contact, and a batch names the same peer over and over), made on first
       use (store_peers.c); forgotten by every contact write and every
       rollback (store_txn_undone) */
    struct store_contact_cache *contact_cache;
    bool contact_cached;
    /* store_stats' last counts (store.c), made on first use; stale once a
       commit wrote or a transaction was undone */
    struct store_stats_memo *stats_memo;
    bool stats_stale;
};

/*  A transaction was rolled back (or its COMMIT failed): what was read from
 *  inside it, the cached contact and the counts, may no longer hold. */
static inline void
store_txn_undone(store_t *self)
{
    self->contact_cached = false;
    self->stats_stale = true;
}

/*  The WAL hook of every store's connection (store_ckpt.c): after a commit
 *  that wrote frames, with the WAL's length; notes the write and runs or
 *  wakes the checkpoint. */
int store_wal_hook(void *arg, sqlite3 *db, const char *name, int frames);

/*  The end of a transaction, for the sequence cursors: a committed one
 *  makes its reservations durable, a rolled-back one forgets them
 *  (store_log.c). */
void store_seq_txn_end(store_t *self, bool committed);

/*  Whether this call of operation where (a store_fault_t) is one that
 *  store_fault_set() told to fail; it then counts as used up. */
static inline bool
s_fault(store_t *self, int where)
{
    if (where <= 0 || where >= S_FAULT_SLOTS || self->fault[where] <= 0) {
        return false;
    }
    self->fault[where]--;
    return true;
}

/*  Maps an SQLite result code (plain or extended) to a PARLEY_ERR_*. Never
 *  called with SQLITE_OK/ROW/DONE. A constraint failure is a unique key
 *  already taken (EXISTS); a caller that can hit another constraint (a
 *  foreign key) looks at the raw code first. */
static inline int
s_err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM: return PARLEY_ERR_NOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return PARLEY_ERR_BUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return PARLEY_ERR_CORRUPT; /* the file, not its caller, is at fault */
    case SQLITE_FORMAT:
    case SQLITE_MISMATCH: return PARLEY_ERR_MALFORMED;
    case SQLITE_TOOBIG: return PARLEY_ERR_LIMIT;
    case SQLITE_CONSTRAINT: return PARLEY_ERR_EXISTS;
    default: return PARLEY_ERR_IO;
    }
}

/*  Steps st once: 0 with *row true (a row is ready) or false (done), or an
 *  error. The statement is left for the caller to reset. */
static inline int
s_step(sqlite3_stmt *st, bool *row)
{
    int rc = sqlite3_step(st);
    *row = (rc == SQLITE_ROW);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        return 0;
    }
    return s_err(rc);
}

/*  Ends a use of st. sqlite3_reset() repeats the error of the last step,
 *  which the caller has already turned into its return value, so it is
 *  ignored here. Clearing the bindings drops our pointers into caller
 *  memory (SQLITE_STATIC) so a later step can never read a stale one. */
static inline void
s_reset(sqlite3_stmt *st)
{
    (void)sqlite3_reset(st);
    (void)sqlite3_clear_bindings(st);
}

/*  Runs a statement that returns no row we want (INSERT, UPDATE, DELETE,
 *  BEGIN...) and resets it. Returns the raw SQLite code through *sqlite_rc
 *  when the caller needs to tell constraint failures apart (may be NULL). */
static inline int
s_run(sqlite3_stmt *st, int *sqlite_rc)
{
    int rc = sqlite3_step(st);
    if (sqlite_rc != NULL) {
        *sqlite_rc = rc;
    }
    s_reset(st);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        return 0;
    }
    return s_err(rc);
}

/* ---- binding ---- */

/*  One value for one statement parameter. Made only by the S_* constructors
 *  below and bound with S_BIND. Each constructor checks the C type of what
 *  it is given with a _Generic that has no default branch, so handing it
 *  anything else (a pointer to S_U64, a signed value to S_U64, an integer
 *  to S_B32, a uint8_t * to S_TEXT...) does not compile. */
typedef enum {
    S_V_END = 0, /* ends the list S_BIND builds; never written by hand */
    S_V_NULL,    /* SQL NULL */
    S_V_I64,     /* a signed integer, bound as is */
    S_V_U64,     /* an unsigned integer: refused above INT64_MAX (PARLEY_ERR_LIMIT) */
    S_V_BLOB,    /* bytes, bound SQLITE_STATIC */
    S_V_TEXT,    /* a string the caller has length-checked, bound SQLITE_STATIC */
} s_vkind_t;

typedef struct {
    s_vkind_t kind; /* which of the fields below holds the value */
    const void *p;  /* BLOB, TEXT: the bytes, read during the step only */
    size_t len;     /* BLOB, TEXT: how many */
    int64_t i;      /* I64 */
    uint64_t u;     /* U64 */
} s_val_t;

/* _Generic association lists, which clang-format cannot lay out: */
/* clang-format off */
#define S_NULL ((s_val_t){ .kind = S_V_NULL })
#define S_I64(v)                                                                \
    ((s_val_t){ .kind = S_V_I64,                                                \
                .i = _Generic((v), signed char: (v), short: (v), int: (v),      \
                              long: (v), long long: (v)) })
#define S_U64(v)                                                                \
    ((s_val_t){ .kind = S_V_U64,                                                \
                .u = _Generic((v), unsigned char: (v), unsigned short: (v),     \
                              unsigned int: (v), unsigned long: (v),            \
                              unsigned long long: (v)) })
/*  A flag, stored as the integer 0 or 1. */
#define S_BOOL(b) ((s_val_t){ .kind = S_V_I64, .i = _Generic((b), bool: (b)) ? 1 : 0 })
#define S_BLOB(ptr, n)                                                          \
    ((s_val_t){ .kind = S_V_BLOB,                                               \
                .p = _Generic((ptr), uint8_t *: (ptr), const uint8_t *: (ptr)), \
                .len = (n) })
/*  A 32-byte key or id, the most common value. */
#define S_B32(ptr) S_BLOB(ptr, 32)
#define S_TEXT(str, n)                                                          \
    ((s_val_t){ .kind = S_V_TEXT,                                               \
                .p = _Generic((str), char *: (str), const char *: (str)),       \
                .len = (n) })
/* clang-format on */

static inline int
s_bind_one(sqlite3_stmt *st, int col, const s_val_t *v)
{
    int rc = SQLITE_MISUSE;
    switch (v->kind) {
    case S_V_NULL: rc = sqlite3_bind_null(st, col); break;
    case S_V_I64: rc = sqlite3_bind_int64(st, col, (sqlite3_int64)v->i); break;
    case S_V_U64:
        /* stored as signed 64-bit: above INT64_MAX SQL would compare it wrong */
        if (v->u > (uint64_t)INT64_MAX) {
            return PARLEY_ERR_LIMIT;
        }
        rc = sqlite3_bind_int64(st, col, (sqlite3_int64)v->u);
        break;
    case S_V_BLOB:
        if (v->len > (size_t)INT32_MAX) {
            return PARLEY_ERR_LIMIT;
        }
        rc = sqlite3_bind_blob(st, col, v->p, (int)v->len, SQLITE_STATIC);
        break;
    case S_V_TEXT:
        if (v->len > (size_t)INT32_MAX) {
            return PARLEY_ERR_LIMIT;
        }
        rc = sqlite3_bind_text(st, col, v->p, (int)v->len, SQLITE_STATIC);
        break;
    case S_V_END: break; /* not a value: MISUSE below */
    }
    return rc == SQLITE_OK ? 0 : s_err(rc);
}

/*  Binds vals[0], vals[1]... (up to the S_V_END that S_BIND appends) to ?1,
 *  ?2... There must be exactly one value per parameter of st: a missing or
 *  an extra one is a programmer error, PARLEY_ERR_STATE, which the call's
 *  self-test hits on its first run. On any error st is reset and its
 *  bindings cleared, so the caller only has to return the status. */
static inline int
s_bind_vals(sqlite3_stmt *st, const s_val_t *vals)
{
    int n = 0;
    while (vals[n].kind != S_V_END) {
        n++;
    }
    int rc = n == sqlite3_bind_parameter_count(st) ? 0 : PARLEY_ERR_STATE;
    for (int i = 0; rc == 0 && i < n; i++) {
        rc = s_bind_one(st, i + 1, &vals[i]);
    }
    if (rc != 0) {
        s_reset(st);
    }
    return rc;
}

/*  S_BIND(st, S_B32(id), S_U64(seq), ...): binds every parameter of st in
 *  order, 0 or an error (see s_bind_vals). */
#define S_BIND(st, ...) s_bind_vals((st), (const s_val_t[]){ __VA_ARGS__, { .kind = S_V_END } })

/* ---- reading columns back, range-checked ---- */

/*  Copies a blob column of exactly len bytes into dst. Anything else (NULL,
 *  text, integer, another length) is a damaged file. */
static inline int
s_col_blob(sqlite3_stmt *st, int col, void *dst, size_t len)
{
    if (sqlite3_column_type(st, col) != SQLITE_BLOB) {
        return PARLEY_ERR_MALFORMED;
    }
    const void *p = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (n < 0 || (size_t)n != len) {
        return PARLEY_ERR_MALFORMED;
    }
    if (p == NULL) {
        /* a non-empty blob reads as NULL only when SQLite ran out of memory */
        return len == 0 ? 0 : PARLEY_ERR_NOMEM;
    }
    memcpy(dst, p, len);
    return 0;
}

/*  A column that must be an integer in [min, max]. */
static inline int
s_col_range(sqlite3_stmt *st, int col, int64_t min, int64_t max, int64_t *out)
{
    if (sqlite3_column_type(st, col) != SQLITE_INTEGER) {
        return PARLEY_ERR_MALFORMED;
    }
    int64_t v = (int64_t)sqlite3_column_int64(st, col);
    if (v < min || v > max) {
        return PARLEY_ERR_MALFORMED;
    }
    *out = v;
    return 0;
}

static inline int
s_col_u64(sqlite3_stmt *st, int col, uint64_t *out)
{
    int64_t v = 0;
    int rc = s_col_range(st, col, 0, INT64_MAX, &v);
    if (rc == 0) {
        *out = (uint64_t)v;
    }
    return rc;
}

static inline int
s_col_u32(sqlite3_stmt *st, int col, uint32_t *out)
{
    int64_t v = 0;
    int rc = s_col_range(st, col, 0, (int64_t)UINT32_MAX, &v);
    if (rc == 0) {
        *out = (uint32_t)v;
    }
    return rc;
}

static inline int
s_col_bool(sqlite3_stmt *st, int col, bool *out)
{
    int64_t v = 0;
    int rc = s_col_range(st, col, 0, 1, &v);
    if (rc == 0) {
        *out = (v == 1);
    }
    return rc;
}

/*  A text column, at most max bytes, without an embedded NUL (it becomes a C
 *  string). Points *s at SQLite's copy, valid until the next step or reset. */
static inline int
s_col_text(sqlite3_stmt *st, int col, size_t max, const char **s, size_t *len)
{
    if (sqlite3_column_type(st, col) != SQLITE_TEXT) {
        return PARLEY_ERR_MALFORMED;
    }
    const unsigned char *p = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (p == NULL) {
        return PARLEY_ERR_NOMEM; /* a TEXT value reads as NULL only on OOM */
    }
    if (n < 0 || (size_t)n > max || memchr(p, '\0', (size_t)n) != NULL) {
        return PARLEY_ERR_MALFORMED;
    }
    *s = (const char *)p;
    *len = (size_t)n;
    return 0;
}

/*  A text column copied into dst[cap] (cap includes the NUL). */
static inline int
s_col_text_into(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
    const char *s = NULL;
    size_t len = 0;
    int rc = s_col_text(st, col, cap - 1, &s, &len);
    if (rc == 0) {
        memcpy(dst, s, len);
        dst[len] = '\0';
    }
    return rc;
}

/* ---- growing result arrays ---- */

/*  Makes room for at least need elements of size elem in *arr (capacity
 *  *cap). Arrays that hold secrets (secret true) are moved by hand and the
 *  old copy wiped, because realloc() may free the old block unwiped. */
static inline int
s_grow(void **arr, size_t *cap, size_t need, size_t elem, bool secret)
{
    if (need <= *cap) {
        return 0;
    }
    size_t ncap = *cap == 0 ? 16 : *cap;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2) {
            return PARLEY_ERR_NOMEM;
        }
        ncap *= 2;
    }
    if (ncap > SIZE_MAX / elem) {
        return PARLEY_ERR_NOMEM;
    }
    void *p = NULL;
    if (secret) {
        p = malloc(ncap * elem);
        if (p == NULL) {
            return PARLEY_ERR_NOMEM;
        }
        if (*arr != NULL) {
            memcpy(p, *arr, *cap * elem);
            sodium_memzero(*arr, *cap * elem);
            free(*arr);
        }
    } else {
        p = realloc(*arr, ncap * elem);
        if (p == NULL) {
            return PARLEY_ERR_NOMEM;
        }
    }
    *arr = p;
    *cap = ncap;
    return 0;
}

/*  Steps st to the end and reads each row with read() into a growing array
 *  of elem-byte items. On success *out and *n hold the array (caller frees). On
 *  error nothing is returned: the rows read so far are released with
 *  release(arr, count) when given (for rows that own memory), and a secret
 *  array is wiped before free(). Does not reset st. */
typedef int (*s_row_fn)(sqlite3_stmt *st, void *elem);

static inline int
s_collect(sqlite3_stmt *st, size_t elem, bool secret, s_row_fn read,
          void (*release)(void *arr, size_t count), void **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    void *arr = NULL;
    size_t cap = 0;
    size_t count = 0;
    int rc = 0;
    for (;;) {
        bool row = false;
        rc = s_step(st, &row);
        if (rc != 0 || !row) {
            break;
        }
        rc = s_grow(&arr, &cap, count + 1, elem, secret);
        if (rc == 0) {
            rc = read(st, (uint8_t *)arr + count * elem);
        }
        if (rc != 0) {
            break; /* a row that failed to read owns nothing */
        }
        count++;
    }
    if (rc != 0) {
        if (release != NULL) {
            release(arr, count);
        } else {
            if (secret && arr != NULL) {
                sodium_memzero(arr, cap * elem);
            }
            free(arr);
        }
        return rc;
    }
    *out = arr;
    *n = count;
    return 0;
}

/*  Finishes a one-row lookup whose parameters are bound; rc is the binding
 *  status. PARLEY_ERR_NOTFOUND when there is no row; resets st. */
static inline int
s_fetch_one(sqlite3_stmt *st, int rc, s_row_fn read, void *out)
{
    bool row = false;
    if (rc == 0) {
        rc = s_step(st, &row);
    }
    if (rc == 0 && !row) {
        rc = PARLEY_ERR_NOTFOUND;
    }
    if (rc == 0) {
        rc = read(st, out);
    }
    s_reset(st);
    return rc;
}

/* ---- stored envelopes ---- */

/* smallest and largest encoded envelope: header + empty body + signature */
#define S_ENV_MIN ((size_t)PARLEY_ENVELOPE_HEADER_LEN + PARLEY_SIG_LEN)
#define S_ENV_MAX ((size_t)PARLEY_ENVELOPE_MAX)

/*  The stored bytes of one envelope: a blob within the envelope size limits,
 *  viewed in SQLite's memory until the next step or reset. */
static inline int
s_env_bytes(sqlite3_stmt *st, int col, const void **p, size_t *len)
{
    if (sqlite3_column_type(st, col) != SQLITE_BLOB) {
        return PARLEY_ERR_MALFORMED;
    }
    *p = sqlite3_column_blob(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (n < 0 || (size_t)n < S_ENV_MIN || (size_t)n > S_ENV_MAX) {
        return PARLEY_ERR_MALFORMED;
    }
    if (*p == NULL) {
        return PARLEY_ERR_NOMEM;
    }
    *len = (size_t)n;
    return 0;
}

/*  The same, copied into *bytes (malloc'd; the caller frees). */
static inline int
s_env_copy(sqlite3_stmt *st, int col, uint8_t **bytes, size_t *len)
{
    const void *p = NULL;
    size_t n = 0;
    int rc = s_env_bytes(st, col, &p, &n);
    if (rc != 0) {
        return rc;
    }
    *bytes = malloc(n);
    if (*bytes == NULL) {
        return PARLEY_ERR_NOMEM;
    }
    memcpy(*bytes, p, n);
    *len = n;
    return 0;
}

/* ---- atomic multi-statement operations (store.c) ---- */

/*  Starts an operation that must apply whole: BEGIN IMMEDIATE when no
 *  transaction is open (taking the write lock up front, so the busy timeout
 *  applies instead of a deadlock on upgrade), else a SAVEPOINT inside the
 *  caller's transaction. *outer records which, for store_op_end. */
int store_op_begin(store_t *self, bool *outer);
/*  Ends it: commits/releases when rc is 0, else undoes everything the
 *  operation wrote and returns rc unchanged. */
int store_op_end(store_t *self, bool outer, int rc);

#endif
