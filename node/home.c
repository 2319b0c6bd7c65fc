/*  node/home.c — home directory, key file I/O, passphrase files, the lock.
 *
 *  Secret files are written the signify way: open(O_CREAT|O_EXCL, 0600),
 *  write, fsync, close, then fsync the directory, so a crash leaves either no
 *  key file or a whole one, and an existing key is never overwritten.
 */
#include "home.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
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
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return errno == ENOENT ? PARLEY_ERR_NOTFOUND : PARLEY_ERR_IO;
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
