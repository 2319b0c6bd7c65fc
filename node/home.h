/*  node/home.h — the node's home directory and the files in it.
 *
 *  Home: --home, else $PARLEY_HOME, else $XDG_DATA_HOME/parley, else
 *  ~/.local/share/parley; created mode 0700. It holds:
 *    identity.key  the key file (proto/identity.h), created O_EXCL, mode 0600
 *    parley.db     the store (store/store.h)
 *    api.sock      the local API socket, mode 0600 (node/api.h)
 *    parleyd.lock  flock'ed by the running daemon; holds its PID
 */
#ifndef PARLEY_NODE_HOME_H
#define PARLEY_NODE_HOME_H

#include "../proto/errors.h"
#include "../proto/identity.h"
#include <stdbool.h>
#include <stddef.h>

#define HOME_PATH_MAX 4096u

/*  Resolves the home directory into out (no I/O). PARLEY_ERR_LIMIT if too
 *  long, PARLEY_ERR_NOTFOUND if no candidate variable is set. */
int home_resolve(const char *flag, char *out, size_t cap) PARLEY_WUR;
/*  Creates the home (and parents) with mode 0700 if missing. */
int home_ensure(const char *home) PARLEY_WUR;
/*  Joins home and a file name into out. */
int home_path(const char *home, const char *name, char *out, size_t cap) PARLEY_WUR;

/*  Reads a passphrase file: the first line, without its newline. Returns a
 *  sodium_malloc'd NUL-terminated string in *out (free with home_passphrase_free). */
int home_passphrase_read(const char *path, char **out, size_t *len) PARLEY_WUR;
void home_passphrase_free(char **pass_p);

/*  Creates identity.key for a new identity: O_CREAT|O_EXCL, mode 0600,
 *  fsync'ed, and the directory fsync'ed. PARLEY_ERR_EXISTS if one exists. */
int home_identity_create(const char *home, const identity_t *id, const char *pass,
                         size_t pass_len) PARLEY_WUR;
/*  Loads identity.key. PARLEY_ERR_NOTFOUND if absent, PARLEY_ERR_STATE if
 *  sealed and no passphrase was given, PARLEY_ERR_AUTH for a wrong one. */
int home_identity_load(const char *home, const char *pass, size_t pass_len,
                       identity_t **out) PARLEY_WUR;
/*  Reads only the public key (no passphrase needed). */
int home_identity_public(const char *home, uint8_t ed_pk[32]) PARLEY_WUR;

/*  Takes the daemon lock: PARLEY_ERR_BUSY with *pid set when another process
 *  holds it. The fd stays open (and locked) until home_unlock. */
int home_lock(const char *home, int *fd, long *pid) PARLEY_WUR;
void home_unlock(int *fd);

#endif
