/*  proto/errors.c — parley_strerror(): one short line per status code.
 *
 *  Owns nothing; the strings are static. Invariant: every code in errors.h
 *  has its own line, and an unknown code still yields a non-NULL string.
 */
#include "errors.h"

const char *
parley_strerror(int code)
{
    switch (code) {
    case PARLEY_OK: return "success";
    case PARLEY_ERR_MALFORMED: return "malformed input";
    case PARLEY_ERR_AUTH: return "authentication failed (signature, MAC or passphrase)";
    case PARLEY_ERR_IO: return "input/output error";
    case PARLEY_ERR_NOMEM: return "out of memory";
    case PARLEY_ERR_LIMIT: return "input exceeds a protocol limit";
    case PARLEY_ERR_NOTFOUND: return "not found";
    case PARLEY_ERR_STATE: return "not valid in the current state";
    case PARLEY_ERR_EXISTS: return "already exists";
    case PARLEY_ERR_DUPLICATE: return "duplicate envelope";
    case PARLEY_ERR_EQUIVOCATION:
        return "equivocation: same author, scope and seq with different content";
    case PARLEY_ERR_FUTURE: return "timestamp too far in the future";
    case PARLEY_ERR_EXPIRED: return "expired";
    case PARLEY_ERR_CRYPTO: return "cryptographic operation refused";
    case PARLEY_ERR_NOKEY: return "key unknown or destroyed";
    case PARLEY_ERR_BUSY: return "resource busy";
    case PARLEY_ERR_AMBIGUOUS: return "ambiguous name or short id";
    case PARLEY_ERR_UNSUPPORTED: return "unsupported version or kind";
    case PARLEY_ERR_CORRUPT: return "database damaged";
    default: return "unknown error";
    }
}
