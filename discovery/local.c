/*  discovery/local.c — the host-local source (see local.h). Runs inside the
 *  discovery actor's thread; every file it reads is a hint checked by
 *  proto/endpoint.c and, later, by the CURVE handshake.
 */
#include "local.h"

#include "../proto/endpoint.h"
#include "../proto/identity.h"
#include "../proto/selftest.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char id[PARLEY_NODE_ID_STRLEN + 1];     /* node id (file name) */
    char endpoint[PARLEY_ENDPOINT_MAX + 1]; /* last endpoint reported */
    ino_t ino;                              /* its file's inode when read */
    long pid;                               /* and the process it names */
    bool present;                           /* seen in the current scan */
} s_known_t;

struct _local_t {
    char dir[1024];                     /* the shared directory */
    char path[1100];                    /* our own file */
    char id[PARLEY_NODE_ID_STRLEN + 1]; /* our id, skipped in scans */
    s_known_t *known;                   /* peers currently reported SEEN, by id */
    size_t n_known;
    int watch; /* inotify descriptor on dir, -1 without one */
};

static int
s_ensure_dir(const char *dir, const char **why)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        *why = "cannot create the host-local directory";
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        *why = "the host-local path is not a directory";
        return -1;
    }
    //  Another user's directory could feed us endpoints or collect ours.
    if (st.st_uid != geteuid()) {
        *why = "the host-local directory belongs to another user";
        return -1;
    }
    return 0;
}

static int
s_publish(local_t *self, uint16_t port)
{
    char ep[64], body[ENDPOINT_FILE_MAX], tmp[1200];
    size_t len = 0;
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%u", (unsigned)port);
    if (endpoint_file_encode(ep, (long)getpid(), body, sizeof body, &len) != PARLEY_OK) {
        return -1;
    }
    snprintf(tmp, sizeof tmp, "%s/.%s.%ld", self->dir, self->id, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        return -1;
    }
    bool ok = write(fd, body, len) == (ssize_t)len;
    close(fd);
    //  rename() replaces a stale file of ours (after a kill -9) in one step.
    if (!ok || rename(tmp, self->path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

local_t *
local_new(const char *dir, const char *node_id, uint16_t port, const char **why)
{
    local_t *self = zmalloc(sizeof *self);
    if (!self) {
        *why = "out of memory";
        return NULL;
    }
    snprintf(self->dir, sizeof self->dir, "%s", dir);
    snprintf(self->id, sizeof self->id, "%s", node_id);
    snprintf(self->path, sizeof self->path, "%s/%s", dir, node_id);
    if (s_ensure_dir(dir, why) != 0) {
        free(self);
        return NULL;
    }
    if (s_publish(self, port) != 0) {
        *why = "cannot write our endpoint file";
        free(self);
        return NULL;
    }
    //  Files written (rename), removed or closed after writing: a scan is
    //  due. Without inotify (a limit reached), scans run on a timer alone.
    self->watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (self->watch >= 0
        && inotify_add_watch(self->watch, dir,
                             IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE
                                 | IN_DELETE_SELF | IN_MOVE_SELF)
               < 0) {
        close(self->watch);
        self->watch = -1;
    }
    return self;
}

int
local_fd(const local_t *self)
{
    return self->watch;
}

bool
local_changed(local_t *self)
{
    if (self->watch < 0) {
        return false;
    }
    //  Only whether anything happened: the scan reads the directory itself
    //  (an overflowed queue says so too).
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;
    while (read(self->watch, buf, sizeof buf) > 0) {
        any = true;
    }
    return any;
}

void
local_destroy(local_t **self_p)
{
    if (self_p && *self_p) {
        if ((*self_p)->watch >= 0) {
            close((*self_p)->watch);
        }
        unlink((*self_p)->path);
        free((*self_p)->known);
        free(*self_p);
        *self_p = NULL;
    }
}

//  Whether pid is a live process; EPERM means alive but another user's.
static bool
s_alive(long pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

//  Reads and checks one peer file; true with endpoint and *pid filled if it
//  is live.
static bool
s_read_peer(const local_t *self, const char *name, char *endpoint, size_t cap, long *pid)
{
    char path[1200];
    uint8_t buf[ENDPOINT_FILE_MAX + 1];
    int plen = snprintf(path, sizeof path, "%s/%s", self->dir, name);
    if (plen < 0 || (size_t)plen >= sizeof path) {
        return false;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0) {
        return false;
    }
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    *pid = 0;
    if (n <= 0 || endpoint_file_decode(buf, (size_t)n, endpoint, cap, pid) != PARLEY_OK) {
        return false;
    }
    return s_alive(*pid);
}

//  The index in known (sorted by id) of id, or where it would go; *found
//  tells which. A rescan looks up every record: on a host of hundreds of
//  nodes a linear search made it quadratic.
static size_t
s_index(const local_t *self, const char *id, bool *found)
{
    size_t lo = 0, hi = self->n_known;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(self->known[mid].id, id);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *found = false;
    return lo;
}

static s_known_t *
s_find(local_t *self, const char *id)
{
    bool found = false;
    size_t i = s_index(self, id, &found);
    return found ? &self->known[i] : NULL;
}

static void
s_seen(local_t *self, const char *id, const char *endpoint, ino_t ino, long pid, zsock_t *out)
{
    bool found = false;
    size_t i = s_index(self, id, &found);
    if (!found) {
        if (self->n_known >= LOCAL_MAX_PEERS || strlen(id) != PARLEY_NODE_ID_STRLEN) {
            return; // full, or not a node id: never kept
        }
        s_known_t *grown = realloc(self->known, (self->n_known + 1) * sizeof *grown);
        if (!grown) {
            return;
        }
        self->known = grown;
        memmove(&self->known[i + 1], &self->known[i], (self->n_known - i) * sizeof *grown);
        self->n_known++;
        memset(&self->known[i], 0, sizeof *grown);
        memcpy(self->known[i].id, id, PARLEY_NODE_ID_STRLEN + 1);
    }
    s_known_t *k = &self->known[i];
    k->present = true;
    k->ino = ino;
    k->pid = pid;
    if (strcmp(k->endpoint, endpoint) != 0) {
        snprintf(k->endpoint, sizeof k->endpoint, "%s", endpoint);
        zstr_sendx(out, "SEEN", id, endpoint, "local", NULL);
    }
}

void
local_scan(local_t *self, zsock_t *out)
{
    DIR *d = opendir(self->dir);
    if (!d) {
        return; // the directory went away: try again next scan
    }
    for (size_t i = 0; i < self->n_known; i++) {
        self->known[i].present = false;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != PARLEY_NODE_ID_STRLEN || strcmp(e->d_name, self->id) == 0) {
            continue;
        }
        //  A record is only ever replaced whole (s_publish renames a new
        //  file over it): one known under the same inode is unchanged, and
        //  needs no decoding — on a host of hundreds of nodes the rescan
        //  costs a kill() each, not a file read and a curve check.
        s_known_t *k = s_find(self, e->d_name);
        if (k && k->ino == e->d_ino) {
            k->present = s_alive(k->pid);
            continue;
        }
        uint8_t pk[32];
        char endpoint[PARLEY_ENDPOINT_MAX + 1];
        long pid = 0;
        if (identity_parse_node_id(e->d_name, pk) != PARLEY_OK
            || !s_read_peer(self, e->d_name, endpoint, sizeof endpoint, &pid)) {
            continue;
        }
        s_seen(self, e->d_name, endpoint, e->d_ino, pid, out);
    }
    closedir(d);
    size_t keep = 0; // in order: known stays sorted
    for (size_t i = 0; i < self->n_known; i++) {
        if (self->known[i].present) {
            self->known[keep++] = self->known[i];
        } else {
            zstr_sendx(out, "GONE", self->known[i].id, "local", NULL);
        }
    }
    self->n_known = keep;
}

//  The next report on pull is SEEN id at endpoint.
static void
s_expect_seen(zsock_t *pull, const char *id, const char *endpoint)
{
    char *kind = NULL, *got = NULL, *ep = NULL, *src = NULL;
    CHECK(zstr_recvx(pull, &kind, &got, &ep, &src, NULL) == 4);
    CHECK(streq(kind, "SEEN") && streq(got, id) && streq(ep, endpoint));
    zstr_free(&kind);
    zstr_free(&got);
    zstr_free(&ep);
    zstr_free(&src);
}

//  The next n reports on pull are kind, one for each of ids[0..n) in any
//  order; then nothing more comes.
static void
s_expect_each(zsock_t *pull, const char *kind, char ids[][PARLEY_NODE_ID_STRLEN + 1], size_t n)
{
    bool got[8] = { false };
    CHECK(n <= 8);
    zsock_set_rcvtimeo(pull, 1000);
    for (size_t i = 0; i < n; i++) {
        zmsg_t *m = zmsg_recv(pull);
        CHECK(m);
        char *k = zmsg_popstr(m), *id = zmsg_popstr(m);
        CHECK(k && id && streq(k, kind));
        size_t j = 0;
        while (j < n && !streq(ids[j], id)) {
            j++;
        }
        CHECK(j < n && !got[j]);
        got[j] = true;
        zstr_free(&k);
        zstr_free(&id);
        zmsg_destroy(&m);
    }
    zsock_set_rcvtimeo(pull, 50);
    CHECK(zstr_recv(pull) == NULL);
}

void
local_test(bool verbose)
{
    (void)verbose;
    char dir[] = "/tmp/parley-local-test.XXXXXX";
    CHECK(mkdtemp(dir));
    const char *why = NULL;
    identity_t *a = identity_new(), *b = identity_new();
    char ida[PARLEY_NODE_ID_STRLEN + 1], idb[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(a), ida);
    identity_node_id(identity_ed_pk(b), idb);
    local_t *la = local_new(dir, ida, 7001, &why);
    CHECK(la && local_fd(la) >= 0);
    (void)local_changed(la);
    CHECK(!local_changed(la));
    local_t *lb = local_new(dir, idb, 7002, &why);
    CHECK(lb);
    //  b's file arrived: a's watch says so.
    struct pollfd pfd = { local_fd(la), POLLIN, 0 };
    CHECK(poll(&pfd, 1, 1000) == 1 && local_changed(la));
    CHECK(!local_changed(la));
    //  Hostile neighbours: garbage, a bad endpoint, a dead PID, a wrong name.
    char path[512];
    snprintf(path, sizeof path, "%s/%.52s", dir,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    FILE *f = fopen(path, "w");
    CHECK(f);
    fputs("tcp://0.0.0.0:1\n1\n", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/notanid", dir);
    f = fopen(path, "w");
    CHECK(f);
    fputs("\x01\x02garbage", f);
    fclose(f);
    zsock_t *pull = zsock_new_pull("inproc://local-test");
    zsock_t *push = zsock_new_push("inproc://local-test");
    CHECK(pull && push);
    local_scan(la, push);
    s_expect_seen(pull, idb, "tcp://127.0.0.1:7002");
    local_scan(la, push); // nothing changed: nothing reported
    zsock_set_rcvtimeo(pull, 50);
    CHECK(zstr_recv(pull) == NULL);
    //  b's record replaced (a restart on another port): read again.
    local_t *lb2 = local_new(dir, idb, 7003, &why);
    CHECK(lb2);
    local_scan(la, push);
    zsock_set_rcvtimeo(pull, 1000);
    s_expect_seen(pull, idb, "tcp://127.0.0.1:7003");
    local_destroy(&lb2); // the file is gone with it
    local_destroy(&lb);
    local_scan(la, push);
    zsock_set_rcvtimeo(pull, 1000);
    char *kind = NULL, *id = NULL, *src = NULL;
    CHECK(zstr_recvx(pull, &kind, &id, &src, NULL) == 3);
    CHECK(streq(kind, "GONE") && streq(id, idb));
    zstr_free(&kind);
    zstr_free(&id);
    zstr_free(&src);
    //  Many at once, found by id in any order: each is reported once, and
    //  the ones that go are the ones said GONE.
    enum { S_MANY = 6 };
    char ids[S_MANY][PARLEY_NODE_ID_STRLEN + 1];
    local_t *many[S_MANY];
    for (int i = 0; i < S_MANY; i++) {
        identity_t *who = identity_new();
        CHECK(who);
        identity_node_id(identity_ed_pk(who), ids[i]);
        identity_destroy(&who);
        many[i] = local_new(dir, ids[i], (uint16_t)(7100 + i), &why);
        CHECK(many[i]);
    }
    local_scan(la, push);
    s_expect_each(pull, "SEEN", ids, S_MANY);
    local_scan(la, push);
    s_expect_each(pull, "SEEN", ids, 0);
    char gone[3][PARLEY_NODE_ID_STRLEN + 1];
    for (int i = 0; i < 3; i++) {
        memcpy(gone[i], ids[2 * i], sizeof gone[i]);
        local_destroy(&many[2 * i]);
    }
    local_scan(la, push);
    s_expect_each(pull, "GONE", gone, 3);
    local_scan(la, push);
    s_expect_each(pull, "GONE", gone, 0);
    for (int i = 0; i < 3; i++) {
        local_destroy(&many[2 * i + 1]);
    }
    local_destroy(&la);
    zsock_destroy(&push);
    zsock_destroy(&pull);
    identity_destroy(&a);
    identity_destroy(&b);
    unlink(path);
    snprintf(path, sizeof path, "%s/%.52s", dir,
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    unlink(path);
    CHECK(rmdir(dir) == 0);
}
