/*  node/home.h — the node's home directory and the files in it.
 *
 *  Home: --home, else $PARLEY_HOME, else $XDG_DATA_HOME/parley, else
 *  ~/.local/share/parley; created mode 0700. It holds:
 *    identity.key  the key file (proto/identity.h), created O_EXCL, mode 0600
 *    parley.db     the store (store/store.h)
 *    api.sock      the local API socket, mode 0600 (node/api.h)
 *    parleyd.lock  flock'ed by the running daemon; holds its PID
 *
 *  Strict modes (as ssh's StrictModes): home_check refuses a home, or a file
 *  in it, that someone other than the running user could change or read:
 *    home          a directory owned by the effective uid, not writable by
 *                  group or others (0700 as created; 0755 is accepted). The
 *                  home may be reached through a symbolic link (a home under
 *                  a linked /home or ~/.local is normal, and store/ accepts
 *                  linked directories too): the directory it names is checked.
 *                  The directories above it are not checked.
 *    identity.key  a regular file, not a symbolic link, owned by the
 *                  effective uid, no access at all for group or others
 *    parley.db     the same (it holds session keys and messages)
 *    api.sock      a socket owned by the effective uid, not a symbolic link
 *  A file that does not exist yet passes: it is created right (0600).
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
/*  Creates the home (and parents) with mode 0700 if missing. It does not
 *  judge an existing home: call home_check after it. */
int home_ensure(const char *home) PARLEY_WUR;
/*  Checks the home and the files in it against the rules above. PARLEY_OK if
 *  they are safe to use; PARLEY_ERR_NOTFOUND if the home does not exist;
 *  PARLEY_ERR_STATE if one is unsafe, PARLEY_ERR_IO if one cannot be looked
 *  at: on every error msg holds one line (no program name, no newline) that
 *  says what is wrong and the command that fixes it. */
int home_check(const char *home, char *msg, size_t cap) PARLEY_WUR;
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
 *  sealed and no passphrase was given, PARLEY_ERR_AUTH for a wrong one,
 *  PARLEY_ERR_IO if the file breaks home_check's rule for it (checked again
 *  on the open file, so a swap after home_check is caught too). */
int home_identity_load(const char *home, const char *pass, size_t pass_len,
                       identity_t **out) PARLEY_WUR;
/*  Reads only the public key (no passphrase needed); same file rule. */
int home_identity_public(const char *home, uint8_t ed_pk[32]) PARLEY_WUR;

/*  Takes the daemon lock: PARLEY_ERR_BUSY with *pid set when another process
 *  holds it. The fd stays open (and locked) until home_unlock. */
int home_lock(const char *home, int *fd, long *pid) PARLEY_WUR;
void home_unlock(int *fd);

/*  Self-test: creation modes, each refusal of home_check and of the key
 *  loaders, and a home of the old shape that must keep working. */
void home_test(bool verbose);

#endif
