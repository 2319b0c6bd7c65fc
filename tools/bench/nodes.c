/*  tools/bench/nodes.c — the parleyd processes of a benchmark (see nodes.h).
 *
 *  Owns each node's PID, its API connection and the table of PIDs that
 *  nodes_kill_all() reads from a signal handler. Invariant: a PID is in that
 *  table, and in its nodes_proc_t, exactly while the child is unreaped; it is
 *  cleared the moment waitpid() returns it, so no reused PID is ever
 *  signalled. A nodes_group_t is the benchmark's own list of the handles it
 *  holds; it has nothing to do with that table.
 */
#include "nodes.h"

#include "../../proto/limits.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct _nodes_proc_t {
    char name[32];                      /* labels messages: "A", "r", ... */
    char home[PATH_MAX];                /* its --home */
    char log[PATH_MAX];                 /* its stdout and stderr */
    pid_t pid;                          /* 0 once reaped */
    bool termed;                        /* SIGTERM sent already (nodes_group_stop_all) */
    int status;                         /* waitpid status, once reaped */
    size_t slot;                        /* its index in s_pids */
    client_t *api;                      /* request connection, once up */
    char id[PARLEY_NODE_ID_STRLEN + 1]; /* "" until read */
};

/*  What the signal handler may touch: plain PIDs, 0 for a free slot. */
static volatile pid_t s_pids[NODES_MAX];

double
nodes_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

uint64_t
nodes_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

long long
nodes_json_int(const json_t *j, const char *a, const char *b, const char *c)
{
    const json_t *v = json_object_get(j, a);
    v = b ? json_object_get(v, b) : v;
    v = c ? json_object_get(v, c) : v;
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

void
nodes_sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

//  The child was reaped: forget its PID everywhere.
static void
s_reaped(nodes_proc_t *self, int status)
{
    self->status = status;
    self->pid = 0;
    s_pids[self->slot] = 0;
}

nodes_proc_t *
nodes_spawn(const char *name, const char *parleyd, const char *home, const char *log,
            const char *const *args)
{
    const char *prog = program_invocation_short_name;
    const char *argv[NODES_ARGS_MAX + 4] = { parleyd, "--home", home };
    size_t argc = 3;
    for (size_t i = 0; args && args[i]; i++) {
        if (i == NODES_ARGS_MAX) {
            fprintf(stderr, "%s: node %s: more than %d options\n", prog, name, NODES_ARGS_MAX);
            return NULL;
        }
        argv[argc++] = args[i];
    }
    argv[argc] = NULL;
    size_t slot = 0;
    while (slot < NODES_MAX && s_pids[slot] != 0) {
        slot++;
    }
    nodes_proc_t *self = slot < NODES_MAX ? calloc(1, sizeof *self) : NULL;
    if (!self) {
        fprintf(stderr, "%s: node %s: %s\n", prog, name,
                slot < NODES_MAX ? "out of memory" : "too many nodes");
        return NULL;
    }
    int n1 = snprintf(self->name, sizeof self->name, "%s", name);
    int n2 = snprintf(self->home, sizeof self->home, "%s", home);
    int n3 = snprintf(self->log, sizeof self->log, "%s", log);
    if (n1 < 0 || n2 < 0 || n3 < 0 || (size_t)n1 >= sizeof self->name
        || (size_t)n2 >= sizeof self->home || (size_t)n3 >= sizeof self->log) {
        fprintf(stderr, "%s: node %s: name or path too long\n", prog, name);
        free(self);
        return NULL;
    }
    self->slot = slot;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "%s: node %s: fork: %s\n", prog, name, strerror(errno));
        free(self);
        return NULL;
    }
    if (pid == 0) {
        //  Dies with us, whatever way we go: no node outlives the benchmark.
        //  (If we died before prctl, getppid() has changed: give up.)
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(self->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (getppid() != parent || fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
            _exit(127);
        }
        execv(parleyd, (char *const *)argv);
        _exit(127);
    }
    self->pid = pid;
    s_pids[slot] = pid;
    return self;
}

bool
nodes_alive(nodes_proc_t *self)
{
    int status = 0;
    if (self->pid > 0 && waitpid(self->pid, &status, WNOHANG) == self->pid) {
        fprintf(stderr, "%s: node %s exited early (status %d)\n", program_invocation_short_name,
                self->name, status);
        s_reaped(self, status);
    }
    return self->pid > 0;
}

int
nodes_wait_api(nodes_proc_t *self, int timeout_ms)
{
    double end = nodes_now() + timeout_ms / 1000.0;
    while (!self->api) {
        if (!nodes_alive(self)) {
            return -1;
        }
        if (client_connect(self->home, &self->api) == PARLEY_OK) {
            break;
        }
        if (nodes_now() > end) {
            fprintf(stderr, "%s: node %s opened no API socket in %d s\n",
                    program_invocation_short_name, self->name, timeout_ms / 1000);
            return -1;
        }
        nodes_sleep_ms(20);
    }
    json_t *r = NULL;
    if (nodes_call(self, "id", NULL, nodes_ms_left(end) + 1000, &r) != 0) {
        return -1;
    }
    const char *id = json_string_value(json_object_get(r, "id"));
    int rc = id && strlen(id) == PARLEY_NODE_ID_STRLEN ? 0 : -1;
    if (rc == 0) {
        memcpy(self->id, id, PARLEY_NODE_ID_STRLEN + 1);
    } else {
        fprintf(stderr, "%s: node %s: no node id in its answer to id\n",
                program_invocation_short_name, self->name);
    }
    json_decref(r);
    return rc;
}

nodes_proc_t *
nodes_start(const char *name, const char *parleyd, const char *home, const char *log,
            const char *const *args, int timeout_ms)
{
    nodes_proc_t *self = nodes_spawn(name, parleyd, home, log, args);
    if (self && nodes_wait_api(self, timeout_ms) != 0) {
        fprintf(stderr, "%s: node %s did not start\n", program_invocation_short_name, name);
        nodes_show_log(self);
        nodes_destroy(&self);
    }
    return self;
}

int
nodes_stop(nodes_proc_t *self, int grace_ms)
{
    client_destroy(&self->api);
    if (self->pid > 0) {
        if (!self->termed) {
            kill(self->pid, SIGTERM);
            self->termed = true;
        }
        double end = nodes_now() + grace_ms / 1000.0;
        int status = 0;
        pid_t got;
        while ((got = waitpid(self->pid, &status, WNOHANG)) == 0) {
            if (nodes_now() > end) {
                fprintf(stderr, "%s: node %s ignored SIGTERM for %d s: killing it\n",
                        program_invocation_short_name, self->name, grace_ms / 1000);
                kill(self->pid, SIGKILL);
                got = waitpid(self->pid, &status, 0);
                break;
            }
            nodes_sleep_ms(20);
        }
        //  got < 0 cannot be ECHILD for our own unreaped child; count it as
        //  unclean rather than guess.
        s_reaped(self, got == self->pid ? status : -1);
    }
    if (!WIFEXITED(self->status) || WEXITSTATUS(self->status) != 0) {
        fprintf(stderr, "%s: note: node %s did not stop cleanly (status %d)\n",
                program_invocation_short_name, self->name, self->status);
        return -1;
    }
    return 0;
}

void
nodes_destroy(nodes_proc_t **self_p)
{
    nodes_proc_t *self = *self_p;
    if (!self) {
        return;
    }
    if (self->pid > 0 || self->api) {
        (void)nodes_stop(self, NODES_STOP_MS); // it printed a note if the stop was unclean
    }
    free(self);
    *self_p = NULL;
}

void
nodes_kill_all(void)
{
    for (size_t i = 0; i < NODES_MAX; i++) {
        pid_t pid = s_pids[i];
        if (pid > 0) {
            kill(pid, SIGKILL);
        }
    }
}

const char *
nodes_name(const nodes_proc_t *self)
{
    return self->name;
}

const char *
nodes_home(const nodes_proc_t *self)
{
    return self->home;
}

const char *
nodes_id(const nodes_proc_t *self)
{
    return self->id;
}

pid_t
nodes_pid(const nodes_proc_t *self)
{
    return self->pid;
}

client_t *
nodes_api(nodes_proc_t *self)
{
    return self->api;
}

int
nodes_response(client_t *c, const char *what, int timeout_ms, json_t **result)
{
    const char *prog = program_invocation_short_name;
    double end = nodes_now() + timeout_ms / 1000.0;
    for (;;) {
        json_t *msg = NULL;
        int rc = client_recv(c, nodes_ms_left(end), &msg);
        if (rc != PARLEY_OK) {
            fprintf(stderr, "%s: %s: no answer (%s)\n", prog, what,
                    rc == PARLEY_ERR_STATE ? "timed out" : parley_strerror(rc));
            return -1;
        }
        if (!json_object_get(msg, "id")) {
            json_decref(msg); // a notification
            continue;
        }
        json_t *err = json_object_get(msg, "error");
        if (err) {
            const char *text = json_string_value(json_object_get(err, "message"));
            fprintf(stderr, "%s: %s: error: %s\n", prog, what, text ? text : "?");
            json_decref(msg);
            return -1;
        }
        if (result) {
            *result = json_incref(json_object_get(msg, "result"));
        }
        json_decref(msg);
        return 0;
    }
}

int
nodes_call(nodes_proc_t *self, const char *method, json_t *params, int timeout_ms, json_t **result)
{
    if (!self->api || client_send(self->api, method, params) != PARLEY_OK) {
        if (!self->api) {
            json_decref(params); // stolen, as on every other path
        }
        fprintf(stderr, "%s: node %s: %s: cannot send the request\n", program_invocation_short_name,
                self->name, method);
        return -1;
    }
    return nodes_response(self->api, method, timeout_ms, result);
}

json_t *
nodes_ask(nodes_proc_t *self, const char *method, json_t *params, int timeout_ms)
{
    json_t *r = NULL;
    return nodes_call(self, method, params, timeout_ms, &r) == 0 ? r : NULL;
}

int
nodes_seed(nodes_proc_t *self, int timeout_ms, char *out, size_t cap)
{
    json_t *r = NULL;
    if (nodes_call(self, "status", NULL, timeout_ms, &r) != 0) {
        return -1;
    }
    const char *ep = json_string_value(json_array_get(json_object_get(r, "endpoints"), 0));
    int len = ep && self->id[0] ? snprintf(out, cap, "%s#%s", ep, self->id) : -1;
    json_decref(r);
    return len > 0 && (size_t)len < cap ? 0 : -1;
}

void
nodes_show_log(const nodes_proc_t *self)
{
    FILE *f = fopen(self->log, "r");
    if (!f) {
        return;
    }
    fprintf(stderr, "--- last lines of node %s's log (%s):\n", self->name, self->log);
    char lines[NODES_LOG_LINES][512];
    size_t count = 0;
    while (fgets(lines[count % NODES_LOG_LINES], sizeof lines[0], f)) {
        count++;
    }
    fclose(f);
    for (size_t i = count > NODES_LOG_LINES ? count - NODES_LOG_LINES : 0; i < count; i++) {
        fprintf(stderr, "    %s", lines[i % NODES_LOG_LINES]);
    }
}

/* ---- shared by the benchmarks: a group, a seeded pair, statistics, files ---- */

//  Makes NAME's home ROOT/NAME and names its log (into dir and log, each
//  PATH_MAX) and finds a free slot in self for it. -1 (message printed)
//  when a path does not fit, the home cannot be made or self is full.
static int
s_group_prepare(nodes_group_t *self, const char *root, const char *name, char *dir, char *log,
                size_t *slot)
{
    if (nodes_path(dir, PATH_MAX, root, name, NULL) != 0
        || nodes_path(log, PATH_MAX, root, name, "parleyd.log") != 0) {
        return -1;
    }
    //  A home that exists is reopened: a node restarted on it keeps its
    //  identity and its store.
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "%s: cannot make %s: %s\n", program_invocation_short_name, dir,
                strerror(errno));
        return -1;
    }
    *slot = 0;
    while (*slot < NODES_MAX && self->node[*slot]) {
        (*slot)++;
    }
    if (*slot == NODES_MAX) {
        fprintf(stderr, "%s: node %s: too many nodes\n", program_invocation_short_name, name);
        return -1;
    }
    return 0;
}

nodes_proc_t *
nodes_group_start(nodes_group_t *self, const char *root, const char *name, const char *parleyd,
                  const char *const *args, int timeout_ms)
{
    char dir[PATH_MAX], log[PATH_MAX];
    size_t slot = 0;
    if (s_group_prepare(self, root, name, dir, log, &slot) != 0) {
        return NULL;
    }
    self->node[slot] = nodes_start(name, parleyd, dir, log, args, timeout_ms);
    return self->node[slot];
}

nodes_proc_t *
nodes_group_spawn(nodes_group_t *self, const char *root, const char *name, const char *parleyd,
                  const char *const *args)
{
    char dir[PATH_MAX], log[PATH_MAX];
    size_t slot = 0;
    if (s_group_prepare(self, root, name, dir, log, &slot) != 0) {
        return NULL;
    }
    self->node[slot] = nodes_spawn(name, parleyd, dir, log, args);
    return self->node[slot];
}

void
nodes_group_stop(nodes_group_t *self, nodes_proc_t **node_p)
{
    for (size_t i = 0; *node_p && i < NODES_MAX; i++) {
        if (self->node[i] == *node_p) {
            self->node[i] = NULL;
        }
    }
    nodes_destroy(node_p);
}

void
nodes_group_stop_all(nodes_group_t *self)
{
    //  All at once: one by one, each waiting for its node to exit, 200
    //  nodes would take minutes.
    for (size_t i = 0; i < NODES_MAX; i++) {
        nodes_proc_t *n = self->node[i];
        if (n && n->pid > 0 && !n->termed) {
            kill(n->pid, SIGTERM);
            n->termed = true;
        }
    }
    for (size_t i = 0; i < NODES_MAX; i++) {
        nodes_destroy(&self->node[i]);
    }
}

int
nodes_path(char *out, size_t cap, const char *root, const char *home, const char *file)
{
    int len = snprintf(out, cap, "%s/%s%s%s", root, home, file ? "/" : "", file ? file : "");
    if (len < 0 || (size_t)len >= cap) {
        fprintf(stderr, "%s: path too long: %s/%s%s%s\n", program_invocation_short_name, root, home,
                file ? "/" : "", file ? file : "");
        return -1;
    }
    return 0;
}

double
nodes_status_rt(nodes_proc_t *self, size_t n, int timeout_ms)
{
    assert(n >= 1 && n <= NODES_RT_MAX);
    double rt[NODES_RT_MAX];
    for (size_t i = 0; i < n; i++) {
        double t0 = nodes_now();
        //  A failed call (message printed) still took its time: it counts.
        json_t *j = nodes_ask(self, "status", NULL, timeout_ms);
        rt[i] = nodes_now() - t0;
        json_decref(j);
    }
    return nodes_median(rt, n);
}

nodes_proc_t *
nodes_start_seeded(const char *name, const char *parleyd, const char *home, const char *log,
                   const char *seed, int timeout_ms)
{
    const char *args[] = { "--listen",   "tcp://127.0.0.1:*",    "--no-mdns",
                           "--no-local", seed ? "--seed" : NULL, seed,
                           NULL };
    return nodes_start(name, parleyd, home, log, args, timeout_ms);
}

bool
nodes_sees_online(nodes_proc_t *self, const char *peer_id, int timeout_ms)
{
    json_t *r = NULL;
    if (nodes_call(self, "peers", NULL, timeout_ms, &r) != 0) {
        return false;
    }
    bool online = false;
    for (size_t i = 0; i < json_array_size(r); i++) {
        json_t *p = json_array_get(r, i);
        const char *id = json_string_value(json_object_get(p, "id"));
        if (id && strcmp(id, peer_id) == 0 && json_is_true(json_object_get(p, "online"))) {
            online = true;
        }
    }
    json_decref(r);
    return online;
}

int
nodes_wait_link(nodes_proc_t *a, nodes_proc_t *b, int timeout_ms)
{
    double end = nodes_now() + timeout_ms / 1000.0;
    while (!nodes_sees_online(a, nodes_id(b), timeout_ms)
           || !nodes_sees_online(b, nodes_id(a), timeout_ms)) {
        if (nodes_now() > end || !nodes_alive(a) || !nodes_alive(b)) {
            fprintf(stderr, "%s: %s and %s did not connect within %d s\n",
                    program_invocation_short_name, a->name, b->name, timeout_ms / 1000);
            return -1;
        }
        nodes_sleep_ms(50);
    }
    return 0;
}

int
nodes_ms_left(double end)
{
    double left = (end - nodes_now()) * 1000.0;
    return left < 0 ? 0 : (int)left;
}

static int
s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

nodes_lat_t
nodes_percentiles(double *samples, size_t n)
{
    nodes_lat_t l = { 0, 0 };
    if (n == 0) {
        return l;
    }
    qsort(samples, n, sizeof *samples, s_cmp_double);
    //  Rank ceil(q * n), in integers: the Makefile links no libm.
    size_t i50 = (n * 50 + 99) / 100 - 1;
    size_t i99 = (n * 99 + 99) / 100 - 1;
    l.p50_us = samples[i50] * 1e6;
    l.p99_us = samples[i99] * 1e6;
    return l;
}

double
nodes_median(double *v, size_t n)
{
    assert(n > 0);
    qsort(v, n, sizeof *v, s_cmp_double);
    return v[n / 2];
}

int
nodes_find_sibling(const char *argv0, const char *name, char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
    } else {
        snprintf(self, sizeof self, "%s", argv0);
    }
    char *slash = strrchr(self, '/');
    int len = slash ? snprintf(out, cap, "%.*s/%s", (int)(slash - self), self, name)
                    : snprintf(out, cap, "./%s", name);
    if (len < 0 || (size_t)len >= cap || access(out, X_OK) != 0) {
        fprintf(stderr, "%s: no executable %s next to this binary (%s)\n",
                program_invocation_short_name, name, out);
        return -1;
    }
    return 0;
}

static int
s_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void
nodes_rm_tree(const char *root)
{
    if (root[0] && nftw(root, s_rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0) {
        fprintf(stderr, "%s: could not remove all of %s\n", program_invocation_short_name, root);
    }
}

int
nodes_cpu_ticks(pid_t pid, unsigned long long *ticks)
{
    char path[64];
    char buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) {
        fclose(f);
    }
    buf[len] = '\0';
    //  Field 2, the command, is in parentheses and may hold spaces and ')':
    //  the fields after it start after the last ')'. Next come 3 (state),
    //  4-8 (ints), 9-13 (unsigned), then utime and stime.
    const char *p = strrchr(buf, ')');
    unsigned long long utime = 0;
    unsigned long long stime = 0;
    if (!p
        || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime)
               != 2) {
        fprintf(stderr, "nodes: cannot read utime and stime from %s\n", path);
        return -1;
    }
    *ticks = utime + stime;
    return 0;
}

static char s_backstop_msg[PATH_MAX + 256];

//  Async-signal-safe: the PIDs in this file and the prepared message.
static void
s_on_backstop(int sig)
{
    nodes_kill_all();
    ssize_t w = write(STDERR_FILENO, s_backstop_msg, strlen(s_backstop_msg));
    (void)w; // nothing more to do if stderr is gone: we are exiting anyway
    _exit(sig == SIGALRM ? 3 : 130);
}

void
nodes_backstop_msg(const char *msg)
{
    snprintf(s_backstop_msg, sizeof s_backstop_msg, "%s", msg);
}

void
nodes_backstop(unsigned seconds)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_backstop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (seconds > 0) {
        alarm(seconds);
    }
}
