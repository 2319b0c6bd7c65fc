/*  store/store_int.h — private to store/: the store_t object, its prepared
 *  statements, and the small helpers every file in store/ uses to bind
 *  values and to read them back with range checks.
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
 */
#ifndef PARLEY_STORE_STORE_INT_H
#define PARLEY_STORE_STORE_INT_H

#include "store.h"
#include <sodium.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/*  Every statement the store runs, prepared once in store_open() and
 *  finalized in store_destroy(). The SQL text is in store.c (s_sql), next
 *  to the schema it runs against. */
typedef enum {
    /* transactions */
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_SP_BEGIN,
    ST_SP_RELEASE,
    ST_SP_ROLLBACK,
    ST_CHECKPOINT,
    /* meta, stats */
    ST_META_GET,
    ST_META_SET,
    ST_STATS,
    /* envelopes */
    ST_ENV_PUT,
    ST_ENV_HAS,
    ST_ENV_GET,
    ST_ENV_SLOT,
    ST_ENV_LAST_SEQ,
    ST_ENV_EACH,
    ST_EQUIV_PUT,
    /* messages */
    ST_MSG_ADD,
    ST_MSG_ATTACH,
    ST_MSG_STATE,
    ST_MSG_RAISE,
    ST_MSG_BY_ENV,
    ST_MSG_QUEUED,
    ST_MSG_QUEUED_PEERS,
    ST_MSG_HISTORY,
    /* outbox */
    ST_OUTBOX_ADD,
    ST_OUTBOX_LIST,
    ST_OUTBOX_ACK,
    /* contacts */
    ST_CONTACT_PUT,
    ST_CONTACT_BY_NAME,
    ST_CONTACT_BY_PK,
    ST_CONTACT_LIST,
    ST_CONTACT_REMOVE,
    ST_CONTACT_VERIFY,
    /* peers */
    ST_PEER_SEEN,
    ST_PEER_GET,
    ST_PEER_LIST,
    /* own prekeys */
    ST_OWN_SUPERSEDE,
    ST_OWN_INSERT,
    ST_OWN_CURRENT,
    ST_OWN_SECRET,
    ST_OWN_WIPE,
    /* peer prekeys */
    ST_PEER_PK_PUT,
    ST_PEER_PK_GET,
    /* sessions */
    ST_SEND_GET,
    ST_SEND_PUT,
    ST_RECV_GET,
    ST_RECV_PUT,
    ST_RECV_LIST,
    /* replication (store_sync.c) */
    ST_SCOPE_AUTHOR_PUT,
    ST_SCOPE_AUTHORS,
    ST_ENV_SCOPE_KEYS,
    ST_ENV_RANGE,
    ST_ENV_BY_PREFIX,
    ST_ENV_EXPIRED,
    ST_ENV_DELETE,
    ST_MSG_DELETE_ENV,
    ST_OUTBOX_DROP,
    ST_MSG_MARK_READ,
    ST_PEER_PK_BUNDLE,
    ST_PEER_PK_RECENT,
    ST_COUNT
} store_stmt_id_t;

struct _store_t {
    sqlite3 *db;                /* the connection; owned, closed in store_destroy */
    sqlite3_stmt *st[ST_COUNT]; /* prepared once at open; NULL only while opening */
    bool in_each;               /* store_envelope_each is stepping ST_ENV_EACH: a nested
                                   call would reset the statement under it */
    int faults[STORE_FAULT_PREKEY_PUT + 1]; /* store_fault_set: calls left to fail */
};

/*  True (and one fewer left) when a test asked this operation to fail. */
static inline bool
s_fault(store_t *self, store_fault_t where)
{
    if (self->faults[where] > 0) {
        self->faults[where]--;
        return true;
    }
    return false;
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
    case SQLITE_NOTADB:
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

static inline int
s_bind_blob(sqlite3_stmt *st, int col, const void *p, size_t len)
{
    if (len > (size_t)INT32_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    int rc = sqlite3_bind_blob(st, col, p, (int)len, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : s_err(rc);
}

static inline int
s_bind_null(sqlite3_stmt *st, int col)
{
    int rc = sqlite3_bind_null(st, col);
    return rc == SQLITE_OK ? 0 : s_err(rc);
}

/*  Binds a NUL-terminated string the caller has already length-checked. */
static inline int
s_bind_text(sqlite3_stmt *st, int col, const char *s, size_t len)
{
    if (len > (size_t)INT32_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    int rc = sqlite3_bind_text(st, col, s, (int)len, SQLITE_STATIC);
    return rc == SQLITE_OK ? 0 : s_err(rc);
}

static inline int
s_bind_i64(sqlite3_stmt *st, int col, int64_t v)
{
    int rc = sqlite3_bind_int64(st, col, (sqlite3_int64)v);
    return rc == SQLITE_OK ? 0 : s_err(rc);
}

/*  An unsigned value that SQL compares or orders: refused above INT64_MAX. */
static inline int
s_bind_u64(sqlite3_stmt *st, int col, uint64_t v)
{
    if (v > (uint64_t)INT64_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    return s_bind_i64(st, col, (int64_t)v);
}

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

/* ---- atomic multi-statement operations ---- */

/*  Starts an operation that must apply whole: BEGIN IMMEDIATE when no
 *  transaction is open (taking the write lock up front, so the busy timeout
 *  applies instead of a deadlock on upgrade), else a SAVEPOINT inside the
 *  caller's transaction. *outer records which, for s_op_end. */
static inline int
s_op_begin(store_t *self, bool *outer)
{
    *outer = sqlite3_get_autocommit(self->db) != 0;
    return s_run(self->st[*outer ? ST_BEGIN : ST_SP_BEGIN], NULL);
}

/*  Ends it: commits/releases when rc is 0, else undoes everything the
 *  operation wrote and returns rc unchanged. */
static inline int
s_op_end(store_t *self, bool outer, int rc)
{
    if (rc == 0) {
        rc = s_run(self->st[outer ? ST_COMMIT : ST_SP_RELEASE], NULL);
        if (rc == 0) {
            return 0;
        }
    }
    if (outer) {
        if (sqlite3_get_autocommit(self->db) == 0) {
            /* a failed ROLLBACK leaves nothing better to report than rc */
            (void)s_run(self->st[ST_ROLLBACK], NULL);
        }
    } else {
        /* ROLLBACK TO keeps the savepoint open; RELEASE then pops it. If either
           fails the caller's transaction is in doubt; rc already says so. */
        (void)s_run(self->st[ST_SP_ROLLBACK], NULL);
        (void)s_run(self->st[ST_SP_RELEASE], NULL);
    }
    return rc;
}

#endif
