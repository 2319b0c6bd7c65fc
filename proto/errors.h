/*  proto/errors.h — Parley's status codes.
 *
 *  Every status function in Parley returns int: 0 on success, or one of the
 *  negative codes below. parley_strerror() turns a code into one short line
 *  fit for a user. The numbers are part of the local API (JSON-RPC error
 *  codes are -32000 + code), so never renumber an existing code.
 */
#ifndef PARLEY_PROTO_ERRORS_H
#define PARLEY_PROTO_ERRORS_H

#define PARLEY_WUR __attribute__((warn_unused_result))

enum {
    PARLEY_OK = 0,
    PARLEY_ERR_MALFORMED = -1,     /* input does not parse or breaks the format */
    PARLEY_ERR_AUTH = -2,          /* signature, MAC or passphrase check failed */
    PARLEY_ERR_IO = -3,            /* file system, socket or database failure */
    PARLEY_ERR_NOMEM = -4,         /* allocation failed */
    PARLEY_ERR_LIMIT = -5,         /* input exceeds a limit in proto/limits.h */
    PARLEY_ERR_NOTFOUND = -6,      /* no such peer, contact, key or row */
    PARLEY_ERR_STATE = -7,         /* call not valid in the current state */
    PARLEY_ERR_EXISTS = -8,        /* refusing to overwrite an existing thing */
    PARLEY_ERR_DUPLICATE = -9,     /* already have this envelope (same id) */
    PARLEY_ERR_EQUIVOCATION = -10, /* same (author, scope, seq), different id */
    PARLEY_ERR_FUTURE = -11,       /* timestamp too far in the future */
    PARLEY_ERR_EXPIRED = -12,      /* past its expiry time */
    PARLEY_ERR_CRYPTO = -13,       /* the crypto library refused (bad point...) */
    PARLEY_ERR_NOKEY = -14,        /* the key needed is unknown or was wiped */
    PARLEY_ERR_BUSY = -15,         /* resource held by someone else (lock) */
    PARLEY_ERR_AMBIGUOUS = -16,    /* a short id or name matches several peers */
    PARLEY_ERR_UNSUPPORTED = -17,  /* unknown version or kind */
    PARLEY_ERR_CORRUPT = -18,      /* the database file is damaged (SQLite, quick_check) */
};

/*  The lowest code: loops over every code stop here. */
#define PARLEY_ERR_LAST PARLEY_ERR_CORRUPT

/*  Returns a static, human-readable string for a status code. Never NULL. */
const char *parley_strerror(int code);

#endif
