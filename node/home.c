/*  node/home.c — home directory, key file I/O, passphrase files, the lock.
 *
 *  Secret files are written the signify way: open(O_CREAT|O_EXCL, 0600),
 *  write, fsync, close, then fsync the directory, so a crash leaves either no
 *  key file or a whole one, and an existing key is never overwritten.
 *
 *  Strict modes (the rules are listed in home.h) are checked in two places:
 *  home_check looks at the home and every file by path and says what to run
 *  to fix a bad one; the key loaders check the key again on the descriptor
 *  they read from (fstat), so a file swapped in after the check is refused
 *  too. The owner must be the effective uid exactly, root included: root
 *  owns what it creates, and a home of another user is that user's to run.
 */
#include "home.h"

#include "../proto/selftest.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define S_PASS_MAX 1024u

int
home_resolve(const char *flag, char *out, size_t cap)
{
    const char *env = getenv("PARLEY_HOME");
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *user = getenv("HOME");
    int n;
    if (flag && *flag) {
        n = snprintf(out, cap, "%s", flag);
    } else if (env && *env) {
        n = snprintf(out, cap, "%s", env);
    } else if (xdg && *xdg) {
        n = snprintf(out, cap, "%s/parley", xdg);
    } else if (user && *user) {
        n = snprintf(out, cap, "%s/.local/share/parley", user);
    } else {
        return PARLEY_ERR_NOTFOUND;
    }
    if (n < 0 || (size_t)n >= cap) {
        return PARLEY_ERR_LIMIT;
    }
    return PARLEY_OK;
}

int
home_path(const char *home, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", home, name);
    if (n < 0 || (size_t)n >= cap) {
        return PARLEY_ERR_LIMIT;
    }
    return PARLEY_OK;
}

int
home_ensure(const char *home)
{
    char path[HOME_PATH_MAX];
    int n = snprintf(path, sizeof path, "%s", home);
    if (n < 0 || (size_t)n >= sizeof path) {
        return PARLEY_ERR_LIMIT;
    }
    //  mkdir -p: create each missing parent; only the last gets 0700 semantics
    //  that matter, but parents we create are private too.
    for (char *p = path + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(path, 0700) != 0 && errno != EEXIST) {
                return PARLEY_ERR_IO;
            }
            *p = '/';
        }
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        return PARLEY_ERR_IO;
    }
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return PARLEY_ERR_IO;
    }
    return PARLEY_OK;
}

/* ---- strict modes ---- */

static int s_refuse(int rc, char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
s_refuse(int rc, char *msg, size_t cap, const char *fmt, ...)
{
    if (msg && cap > 0) {
        va_list ap;
        va_start(ap, fmt);
        //  A path too long for msg is cut short: it is a message, not a path.
        (void)vsnprintf(msg, cap, fmt, ap);
        va_end(ap);
    }
    return rc;
}

//  The rule for a private file (identity.key, parley.db) on its stat; path
//  names it in the message. The caller has refused a symbolic link already.
static int
s_private_ok(const char *path, const struct stat *st, char *msg, size_t cap)
{
    unsigned euid = (unsigned)geteuid();
    if (!S_ISREG(st->st_mode)) {
        return s_refuse(PARLEY_ERR_STATE, msg, cap,
                        "%s is not a regular file: move it away and restore the file", path);
    }
    if ((unsigned)st->st_uid != euid) {
        return s_refuse(PARLEY_ERR_STATE, msg, cap,
                        "%s is owned by uid %u, not by you (uid %u): run chown %u %s", path,
                        (unsigned)st->st_uid, euid, euid, path);
    }
    if ((st->st_mode & 077) != 0) {
        return s_refuse(PARLEY_ERR_STATE, msg, cap,
                        "%s is accessible to group/others (mode %03o): run chmod 600 %s", path,
                        (unsigned)(st->st_mode & 0777), path);
    }
    return PARLEY_OK;
}

//  A file in the home that may be absent; kind is S_IFREG for a private
//  file, S_IFSOCK for the API socket.
static int
s_check_entry(const char *home, const char *name, mode_t kind, char *msg, size_t cap)
{
    char path[HOME_PATH_MAX];
    if (home_path(home, name, path, sizeof path) != PARLEY_OK) {
        return s_refuse(PARLEY_ERR_LIMIT, msg, cap, "the home path %s is too long", home);
    }
    struct stat st;
    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            return PARLEY_OK; // created right when it is first needed
        }
        return s_refuse(PARLEY_ERR_IO, msg, cap, "cannot look at %s: %s", path, strerror(errno));
    }
    if (S_ISLNK(st.st_mode)) {
        //  A link could aim our secrets, or a forged key, at a file someone
        //  else controls: the fix is to put the file itself in its place.
        char target[HOME_PATH_MAX];
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n < 0) {
            n = 0;
        }
        target[n] = '\0';
        //  A relative target is relative to the home, not to the user's cwd.
        bool rel = n > 0 && target[0] != '/';
        return s_refuse(PARLEY_ERR_STATE, msg, cap,
                        "%s is a symbolic link: put the file itself there: run mv %s%s%s %s", path,
                        rel ? home : "", rel ? "/" : "", n > 0 ? target : "TARGET", path);
    }
    if (kind == S_IFREG) {
        return s_private_ok(path, &st, msg, cap);
    }
    unsigned euid = (unsigned)geteuid();
    if (!S_ISSOCK(st.st_mode)) {
        return s_refuse(PARLEY_ERR_STATE, msg, cap,
                        "%s is not a socket: stop parleyd and remove it", path);
    }
    if ((unsigned)st.st_uid != euid) {
        return s_refuse(PARLEY_ERR_STATE, msg, cap,
                        "%s is owned by uid %u, not by you (uid %u): stop that parleyd and "
                        "remove it",
                        path, (unsigned)st.st_uid, euid);
    }
    return PARLEY_OK;
}

int
home_check(const char *home, char *msg, size_t cap)
{
    if (msg && cap > 0) {
        msg[0] = '\0';
    }
    struct stat st;
    //  stat, not lstat: a home reached through a link is allowed (home.h).
    if (stat(home, &st) != 0) {
        if (errno == ENOENT) {
            return s_refuse(PARLEY_ERR_NOTFOUND, msg, cap, "the home %s does not exist", home);
        }
        return s_refuse(PARLEY_ERR_IO, msg, cap, "cannot look at the home %s: %s", home,
                        strerror(errno));
    }
    unsigned euid = (unsigned)geteuid();
    if (!S_ISDIR(st.st_mode)) {
        return s_refuse(PARLEY_ERR_STATE, msg, cap, "the home %s is not a directory", home);
    }
    if ((unsigned)st.st_uid != euid) {
        return s_refuse(PARLEY_ERR_STATE, msg, cap,
                        "the home %s is owned by uid %u, not by you (uid %u): run chown %u %s",
                        home, (unsigned)st.st_uid, euid, euid, home);
    }
    if ((st.st_mode & 022) != 0) {
        return s_refuse(PARLEY_ERR_STATE, msg, cap,
                        "the home %s is writable by group/others (mode %03o): run chmod 700 %s",
                        home, (unsigned)(st.st_mode & 0777), home);
    }
    int rc = s_check_entry(home, "identity.key", S_IFREG, msg, cap);
    if (rc == PARLEY_OK) {
        rc = s_check_entry(home, "parley.db", S_IFREG, msg, cap);
    }
    if (rc == PARLEY_OK) {
        rc = s_check_entry(home, "api.sock", S_IFSOCK, msg, cap);
    }
    return rc;
}

int
home_passphrase_read(const char *path, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return PARLEY_ERR_IO;
    }
    char *buf = sodium_malloc(S_PASS_MAX + 1);
    if (!buf) {
        close(fd);
        return PARLEY_ERR_NOMEM;
    }
    size_t got = 0;
    while (got < S_PASS_MAX) {
        ssize_t r = read(fd, buf + got, S_PASS_MAX - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            close(fd);
            sodium_free(buf);
            return PARLEY_ERR_IO;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    size_t n = 0;
    while (n < got && buf[n] != '\n' && buf[n] != '\r') {
        n++;
    }
    buf[n] = '\0';
    if (n == 0) {
        sodium_free(buf);
        return PARLEY_ERR_MALFORMED;
    }
    *out = buf;
    *len = n;
    return PARLEY_OK;
}

void
home_passphrase_free(char **pass_p)
{
    if (pass_p && *pass_p) {
        sodium_free(*pass_p); // sodium_free wipes before unmapping
        *pass_p = NULL;
    }
}

static int
s_fsync_dir(const char *home)
{
    int dfd = open(home, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        return PARLEY_ERR_IO;
    }
    int rc = fsync(dfd) == 0 ? PARLEY_OK : PARLEY_ERR_IO;
    close(dfd);
    return rc;
}

int
home_identity_create(const char *home, const identity_t *id, const char *pass, size_t pass_len)
{
    char path[HOME_PATH_MAX];
    int rc = home_path(home, "identity.key", path, sizeof path);
    if (rc != PARLEY_OK) {
        return rc;
    }
    uint8_t buf[IDENTITY_FILE_MAX];
    size_t len = 0;
    rc = identity_file_encode(id, pass, pass_len, 0, 0, buf, sizeof buf, &len);
    if (rc != PARLEY_OK) {
        sodium_memzero(buf, sizeof buf);
        return rc;
    }
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        sodium_memzero(buf, sizeof buf);
        return errno == EEXIST ? PARLEY_ERR_EXISTS : PARLEY_ERR_IO;
    }
    size_t off = 0;
    rc = PARLEY_OK;
    while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            rc = PARLEY_ERR_IO;
            break;
        }
        off += (size_t)w;
    }
    sodium_memzero(buf, sizeof buf);
    if (rc == PARLEY_OK && fsync(fd) != 0) {
        rc = PARLEY_ERR_IO;
    }
    close(fd);
    if (rc != PARLEY_OK) {
        unlink(path); // a partial key file must not be mistaken for one
        return rc;
    }
    return s_fsync_dir(home);
}

static int
s_read_keyfile(const char *home, uint8_t *buf, size_t cap, size_t *len)
{
    char path[HOME_PATH_MAX];
    int rc = home_path(home, "identity.key", path, sizeof path);
    if (rc != PARLEY_OK) {
        return rc;
    }
    //  O_NONBLOCK: a FIFO in its place must not hang us before fstat says no.
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        return errno == ENOENT ? PARLEY_ERR_NOTFOUND : PARLEY_ERR_IO;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || s_private_ok(path, &st, NULL, 0) != PARLEY_OK) {
        close(fd);
        return PARLEY_ERR_IO;
    }
    size_t got = 0;
    for (;;) {
        if (got == cap) {
            //  One byte more than the largest key file: reject, never truncate.
            uint8_t extra;
            ssize_t r = read(fd, &extra, 1);
            close(fd);
            if (r != 0) {
                return PARLEY_ERR_MALFORMED;
            }
            *len = got;
            return PARLEY_OK;
        }
        ssize_t r = read(fd, buf + got, cap - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            close(fd);
            return PARLEY_ERR_IO;
        }
        if (r == 0) {
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    *len = got;
    return PARLEY_OK;
}

int
home_identity_load(const char *home, const char *pass, size_t pass_len, identity_t **out)
{
    uint8_t buf[IDENTITY_FILE_MAX];
    size_t len = 0;
    int rc = s_read_keyfile(home, buf, sizeof buf, &len);
    if (rc == PARLEY_OK) {
        rc = identity_file_decode(buf, len, pass, pass_len, out);
    }
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int
home_identity_public(const char *home, uint8_t ed_pk[32])
{
    uint8_t buf[IDENTITY_FILE_MAX];
    size_t len = 0;
    int rc = s_read_keyfile(home, buf, sizeof buf, &len);
    if (rc == PARLEY_OK) {
        rc = identity_file_public(buf, len, ed_pk);
    }
    sodium_memzero(buf, sizeof buf);
    return rc;
}

int
home_lock(const char *home, int *fd, long *pid)
{
    char path[HOME_PATH_MAX];
    *fd = -1;
    *pid = 0;
    int rc = home_path(home, "parleyd.lock", path, sizeof path);
    if (rc != PARLEY_OK) {
        return rc;
    }
    int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0) {
        return PARLEY_ERR_IO;
    }
    if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        char text[32] = { 0 };
        ssize_t r = pread(lfd, text, sizeof text - 1, 0);
        if (r > 0) {
            *pid = strtol(text, NULL, 10);
        }
        close(lfd);
        return PARLEY_ERR_BUSY;
    }
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(lfd, 0) != 0 || n < 0 || pwrite(lfd, text, (size_t)n, 0) != n) {
        close(lfd);
        return PARLEY_ERR_IO;
    }
    *fd = lfd;
    return PARLEY_OK;
}

void
home_unlock(int *fd)
{
    if (fd && *fd >= 0) {
        close(*fd); // closing releases the flock
        *fd = -1;
    }
}

/* ---- self-test ---- */

static void
s_t_mode(const char *path, mode_t mode)
{
    CHECK(chmod(path, mode) == 0);
}

//  home_check must refuse with a message containing want.
static void
s_t_refused(const char *home, const char *want)
{
    char msg[HOME_PATH_MAX + 256];
    CHECK(home_check(home, msg, sizeof msg) == PARLEY_ERR_STATE);
    CHECK(strstr(msg, want) != NULL);
}

void
home_test(bool verbose)
{
    char base[] = "/tmp/parley-home-test-XXXXXX";
    CHECK(mkdtemp(base) != NULL);
    char home[256], key[300], db[300], link[300], other[300], msg[HOME_PATH_MAX + 256];
    CHECK(snprintf(home, sizeof home, "%s/a/b", base) > 0);
    CHECK(home_path(home, "identity.key", key, sizeof key) == PARLEY_OK);
    CHECK(home_path(home, "parley.db", db, sizeof db) == PARLEY_OK);
    if (verbose) {
        printf(" * home: a fresh home is 0700 and its key 0600, whatever the umask\n");
    }
    CHECK(home_check(home, msg, sizeof msg) == PARLEY_ERR_NOTFOUND && msg[0] != '\0');
    mode_t old = umask(0);
    CHECK(home_ensure(home) == PARLEY_OK);
    identity_t *id = identity_new();
    CHECK(id != NULL);
    CHECK(home_identity_create(home, id, NULL, 0) == PARLEY_OK);
    umask(old);
    struct stat st;
    CHECK(stat(home, &st) == 0 && (st.st_mode & 0777) == 0700);
    CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(home_check(home, msg, sizeof msg) == PARLEY_OK);
    uint8_t pk[32];
    identity_t *back = NULL;
    CHECK(home_identity_load(home, NULL, 0, &back) == PARLEY_OK);
    identity_destroy(&back);
    CHECK(home_identity_create(home, id, NULL, 0) == PARLEY_ERR_EXISTS);

    if (verbose) {
        printf(" * home: writable by group or others, or not ours: refused, naming the fix\n");
    }
    s_t_mode(home, 0770);
    s_t_refused(home, "run chmod 700");
    s_t_mode(home, 0702);
    s_t_refused(home, "writable by group/others");
    s_t_mode(home, 0755); // readable is what many homes are: accepted, as ssh does
    CHECK(home_check(home, msg, sizeof msg) == PARLEY_OK);
    s_t_mode(home, 0700);
    uid_t me = geteuid();
    if (chown(home, me + 1, (gid_t)-1) == 0) { // only when we may (root)
        s_t_refused(home, "run chown");
        CHECK(chown(home, me, (gid_t)-1) == 0);
    }
    CHECK(home_check(key, msg, sizeof msg) == PARLEY_ERR_STATE); // a file, not a directory

    if (verbose) {
        printf(" * home: identity.key open to others, linked or not ours: refused\n");
    }
    static const mode_t loose[] = { 0644, 0640, 0604, 0660, 0606, 0610 };
    for (size_t i = 0; i < sizeof loose / sizeof loose[0]; i++) {
        s_t_mode(key, loose[i]);
        s_t_refused(home, "run chmod 600");
        CHECK(home_identity_load(home, NULL, 0, &back) == PARLEY_ERR_IO && back == NULL);
        CHECK(home_identity_public(home, pk) == PARLEY_ERR_IO);
    }
    s_t_mode(key, 0400); // read-only for its owner is fine
    CHECK(home_check(home, msg, sizeof msg) == PARLEY_OK);
    CHECK(home_identity_public(home, pk) == PARLEY_OK);
    s_t_mode(key, 0600);
    if (chown(key, me + 1, (gid_t)-1) == 0) {
        s_t_refused(home, "run chown");
        CHECK(home_identity_public(home, pk) == PARLEY_ERR_IO);
        CHECK(chown(key, me, (gid_t)-1) == 0);
    }
    CHECK(snprintf(other, sizeof other, "%s/elsewhere.key", base) > 0);
    CHECK(rename(key, other) == 0);
    CHECK(symlink(other, key) == 0);
    s_t_refused(home, "symbolic link");
    s_t_refused(home, other); // names the target to move back
    CHECK(home_identity_load(home, NULL, 0, &back) == PARLEY_ERR_IO && back == NULL);
    CHECK(home_identity_public(home, pk) == PARLEY_ERR_IO);
    CHECK(unlink(key) == 0);
    CHECK(symlink("../elsewhere.key", key) == 0); // relative: named from the home
    CHECK(snprintf(link, sizeof link, "run mv %s/../elsewhere.key %s", home, key) > 0);
    s_t_refused(home, link);
    CHECK(unlink(key) == 0);
    CHECK(rename(other, key) == 0); // the fix the message names
    CHECK(home_check(home, msg, sizeof msg) == PARLEY_OK);
    CHECK(unlink(key) == 0);
    CHECK(mkdir(key, 0700) == 0);
    s_t_refused(home, "not a regular file");
    CHECK(rmdir(key) == 0);
    CHECK(home_identity_create(home, id, NULL, 0) == PARLEY_OK);

    if (verbose) {
        printf(" * home: parley.db and api.sock are held to the same rules\n");
    }
    int fd = open(db, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && close(fd) == 0);
    CHECK(home_check(home, msg, sizeof msg) == PARLEY_OK);
    s_t_mode(db, 0644);
    s_t_refused(home, "parley.db is accessible to group/others");
    s_t_mode(db, 0600);
    CHECK(home_path(home, "api.sock", link, sizeof link) == PARLEY_OK);
    fd = open(link, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && close(fd) == 0);
    s_t_refused(home, "is not a socket");
    CHECK(unlink(link) == 0);
    CHECK(home_check(home, msg, sizeof msg) == PARLEY_OK);

    if (verbose) {
        printf(" * home: a home reached through a link is checked where it leads\n");
    }
    CHECK(snprintf(link, sizeof link, "%s/linked", base) > 0);
    CHECK(symlink(home, link) == 0);
    CHECK(home_check(link, msg, sizeof msg) == PARLEY_OK);
    CHECK(home_identity_public(link, pk) == PARLEY_OK);
    s_t_mode(home, 0777);
    s_t_refused(link, "run chmod 700");
    s_t_mode(home, 0700);

    identity_destroy(&id);
    CHECK(unlink(link) == 0);
    CHECK(unlink(db) == 0);
    CHECK(unlink(key) == 0);
    CHECK(rmdir(home) == 0);
    CHECK(snprintf(link, sizeof link, "%s/a", base) > 0);
    CHECK(rmdir(link) == 0);
    CHECK(rmdir(base) == 0);
}
