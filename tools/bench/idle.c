/*  tools/bench/idle.c — what N Parley nodes on one host cost when idle,
 *  fully meshed (build/bench_idle).
 *
 *  For each N given, one run after another, each in a fresh mkdtemp root
 *  (under $TMPDIR, else /tmp) removed at its end:
 *  1. N parleyd (the binary next to this one), each on its own home
 *     ROOT/nNNN, listening on 127.0.0.1 with mDNS off and no seeds: they
 *     meet through host-local discovery in ROOT/run, a directory of this
 *     run's own (PARLEY_RUNTIME_DIR, inherited), so no other node on the
 *     host joins in. All are spawned first, then each API is waited for.
 *  2. "All connected": from the first spawn until every node's `status`
 *     says peers.known = N-1 and peers.online >= min(N-1, 8): each knows
 *     every other and is linked to its ring neighbours (SPEC §11.1). Sweeps of status calls, one
 * per node not yet there, S_POLL_MS apart; once all are there, one more sweep over all confirms it.
 * The time carries up to one sweep plus S_POLL_MS of slack, more with many nodes on few CPUs.
 *  3. --settle seconds of rest, then utime + stime of every node from
 *     /proc/PID/stat (fields 14 and 15, clock ticks), --window seconds
 *     during which nothing calls their API (a call would cost them CPU),
 *     the same again, and VmRSS from /proc/PID/status. Afterwards one
 *     sweep of status says whether the mesh held through the window.
 *  4. Every node stopped by its PID (nodes.c: SIGTERM to all, then each
 *     reaped, SIGKILL after a grace period), the root removed.
 *  A table at the end: per N the time until all connected, CPU per node as
 *  % of one core (mean, max) and of all N together, RSS per node (mean,
 *  max), beside the goals for 19 peers as goal/figure ratios.
 *
 *  Safety: only loopback traffic and the run's own discovery directory;
 *  nodes are children ended by PID (PR_SET_PDEATHSIG as well), and a
 *  signal or the alarm() backstop kills every one still running. On a
 *  failure the root is kept, and named, for its logs (ROOT/nNNN/parleyd.log).
 *
 *  usage: bench_idle [--window S] [--settle S] N [N...]
 */
#include "nodes.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#define S_RUNS_MAX 32        /* node counts on one command line */
#define S_WINDOW_DEFAULT 30u /* seconds of measurement */
#define S_SETTLE_DEFAULT 5u  /* seconds of rest before it */
#define S_SECONDS_MAX 3600u  /* the largest --window or --settle */
#define S_BASE_MS 60000      /* the APIs, and then the mesh, have this long... */
#define S_PER_NODE_MS 1000   /* ...plus this much per node */
#define S_POLL_MS 100        /* pause between two sweeps of status calls */
#define S_CALL_MS 10000      /* one API call has this long */
#define S_GOAL_CPU_PCT 0.1   /* goal: % of one core per idle node with 19 peers */
#define S_GOAL_RSS_MIB 12.0  /* goal: RSS per idle node with 19 peers */
#define S_NEIGHBOURS 8       /* parleyd's default ring neighbours (--neighbours) */
#define S_GOAL_PEERS 19u     /* the peers the goals are set for */
#define S_NAME_FMT "n%03zu"  /* node names: n000 ... n255 */
#define S_SOCK_TAIL "/n000/api.sock"

typedef struct {
    unsigned window_s;    /* --window */
    unsigned settle_s;    /* --settle */
    size_t n[S_RUNS_MAX]; /* node counts, one run each, in order */
    size_t runs;          /* how many */
} opts_t;

typedef struct {
    size_t n;         /* nodes */
    double t_api;     /* s from the first spawn until every API answered */
    double t_mesh;    /* s from the first spawn until every node saw N-1 online */
    double window;    /* s between the two CPU readings */
    double cpu_mean;  /* per node, % of one core */
    double cpu_max;   /* the busiest node, % of one core */
    double cpu_all;   /* all N together, % of one core */
    double rss_mean;  /* per node, MiB */
    double rss_max;   /* the largest node, MiB */
    double pss_mean;  /* per node, MiB: shared pages divided among the processes mapping them */
    double anon_mean; /* per node, MiB: its own memory (RssAnon) */
    size_t lost;      /* nodes that no longer saw N-1 online after the window */
    double t_stop;    /* s to stop them all */
} result_t;

static const char *s_prog = "bench_idle";
static char s_parleyd[PATH_MAX];
static char s_root[PATH_MAX]; /* this run's root; "" between runs */
static nodes_group_t s_nodes; /* every node running */

/* ---- signals, failure ---- */

//  The message the backstop writes (nodes_backstop); names the root while a
//  run has one.
static void
s_set_signal_msg(void)
{
    char msg[PATH_MAX + 128];
    snprintf(msg, sizeof msg, "%s: FAIL: hard timeout or interrupt; nodes killed%s%s\n", s_prog,
             s_root[0] ? ", files left in " : "", s_root);
    nodes_backstop_msg(msg);
}

static void
s_arm(unsigned seconds)
{
    s_set_signal_msg();
    signal(SIGPIPE, SIG_IGN); // a node that went away fails its call instead
    nodes_backstop(seconds);
}

//  Stops every node; the root is kept for its logs.
static int
s_fail(const char *what)
{
    fprintf(stderr, "%s: FAIL: %s (files in %s)\n", s_prog, what, s_root);
    nodes_group_stop_all(&s_nodes);
    return -1;
}

/* ---- /proc ---- */

//  The kB value of the line KEY ("VmRSS:") of /proc/PID/FILE.
static int
s_proc_kb(pid_t pid, const char *file, const char *key, unsigned long long *kb)
{
    char path[64];
    char line[256];
    size_t klen = strlen(key);
    snprintf(path, sizeof path, "/proc/%ld/%s", (long)pid, file);
    FILE *f = fopen(path, "r");
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0) {
            char *end = NULL;
            errno = 0;
            *kb = strtoull(line + klen, &end, 10);
            found = errno == 0 && end != line + klen;
        }
    }
    if (f) {
        fclose(f);
    }
    if (!found) {
        fprintf(stderr, "%s: no %s in %s\n", s_prog, key, path);
    }
    return found ? 0 : -1;
}

/* ---- one run ---- */

//  A fresh root under $TMPDIR (else /tmp), short enough for every node's
//  api.sock, with host-local discovery in ROOT/run for its nodes only.
static int
s_make_root(void)
{
    const char *tmp = getenv("TMPDIR");
    tmp = tmp && tmp[0] ? tmp : "/tmp";
    int len = snprintf(s_root, sizeof s_root, "%s/parley-bench-idle.XXXXXX", tmp);
    if (len < 0 || (size_t)len + strlen(S_SOCK_TAIL) >= sizeof((struct sockaddr_un *)0)->sun_path) {
        fprintf(stderr, "%s: TMPDIR %s is too long for the nodes' API sockets\n", s_prog, tmp);
        s_root[0] = '\0';
        return -1;
    }
    if (!mkdtemp(s_root)) {
        fprintf(stderr, "%s: cannot make a directory in %s: %s\n", s_prog, tmp, strerror(errno));
        s_root[0] = '\0';
        return -1;
    }
    char run[PATH_MAX];
    if (nodes_path(run, sizeof run, s_root, "run", NULL) != 0
        || setenv("PARLEY_RUNTIME_DIR", run, 1) != 0) {
        return -1;
    }
    s_set_signal_msg();
    return 0;
}

//  Spawns n nodes into node[], then waits for each API; t0 is the first
//  spawn.
static int
s_spawn_all(nodes_proc_t **node, size_t n, double *t0)
{
    const char *args[] = { "--no-mdns", "--listen", "tcp://127.0.0.1:*", NULL };
    *t0 = nodes_now();
    for (size_t i = 0; i < n; i++) {
        char name[24];
        snprintf(name, sizeof name, S_NAME_FMT, i);
        node[i] = nodes_group_spawn(&s_nodes, s_root, name, s_parleyd, args);
        if (!node[i]) {
            return s_fail("a node could not be spawned");
        }
    }
    double end = *t0 + (S_BASE_MS + (double)n * S_PER_NODE_MS) / 1000.0;
    for (size_t i = 0; i < n; i++) {
        if (nodes_wait_api(node[i], nodes_ms_left(end)) != 0) {
            nodes_show_log(node[i]);
            return s_fail("a node's API did not come up");
        }
    }
    return 0;
}

//  One status call: the node's peers.online, or -1 (message printed) when
//  it did not answer; -2 while it knows fewer than the other n - 1 (a node
//  links to its ring neighbours only, SPEC §11.1: it is settled when it
//  knows every other and has min(n - 1, S_NEIGHBOURS) of them online).
//  *peers (if not NULL) gets the whole peers object (owned), or NULL.
static long long
s_online(nodes_proc_t *node, size_t n, json_t **peers)
{
    json_t *r = nodes_ask(node, "status", NULL, S_CALL_MS);
    long long online = nodes_json_int(r, "peers", "online", NULL);
    if (online >= 0 && nodes_json_int(r, "peers", "known", NULL) != (long long)n - 1) {
        online = -2;
    }
    if (peers) {
        *peers = json_incref(json_object_get(r, "peers"));
    }
    json_decref(r);
    return online;
}

//  How many peers each node had online when the mesh timed out, and the
//  log and status.peers of the node that had the fewest.
static void
s_show_mesh(nodes_proc_t **node, size_t n, const long long *seen)
{
    fprintf(stderr,
            "%s: peers online per node at the timeout (want min(%zu, %d) each; -2: not every"
            " other known yet):\n",
            s_prog, n - 1, S_NEIGHBOURS);
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        fprintf(stderr, "%s %s %3lld", i % 8 ? "" : "   ", nodes_name(node[i]), seen[i]);
        if (i % 8 == 7 || i + 1 == n) {
            fprintf(stderr, "\n");
        }
        worst = seen[i] < seen[worst] ? i : worst;
    }
    json_t *peers = NULL;
    (void)s_online(node[worst], n, &peers); // what it says now; -1 was printed
    char *text = peers ? json_dumps(peers, JSON_COMPACT) : NULL;
    fprintf(stderr, "%s: the fewest: node %s, status.peers now %s\n", s_prog,
            nodes_name(node[worst]), text ? text : "(no answer)");
    free(text);
    json_decref(peers);
    nodes_show_log(node[worst]);
}

//  Waits until every node sees the other n-1 online; *t_mesh gets the
//  seconds since t0 when the last of them was seen there.
static int
s_wait_mesh(nodes_proc_t **node, size_t n, double t0, double *t_mesh)
{
    double end = t0 + (S_BASE_MS + (double)n * S_PER_NODE_MS) / 1000.0;
    long long want = (long long)n - 1 < S_NEIGHBOURS ? (long long)n - 1 : S_NEIGHBOURS;
    long long seen[NODES_MAX];
    bool there[NODES_MAX];
    for (size_t i = 0; i < n; i++) {
        seen[i] = -1; // not asked yet
        there[i] = false;
    }
    size_t left = n;
    for (;;) {
        //  Calls can be slow on a loaded host: the deadline holds within a sweep too.
        for (size_t i = 0; i < n && nodes_now() <= end; i++) {
            if (there[i]) {
                continue;
            }
            seen[i] = s_online(node[i], n, NULL);
            if (!nodes_alive(node[i])) {
                nodes_show_log(node[i]);
                return s_fail("a node exited while the mesh formed");
            }
            if (seen[i] >= want) {
                there[i] = true;
                left--;
                *t_mesh = nodes_now() - t0;
            }
        }
        //  Every node got there at some point; confirm they all still are.
        for (size_t i = 0; left == 0 && i < n && nodes_now() <= end; i++) {
            seen[i] = s_online(node[i], n, NULL);
            if (seen[i] < want) {
                there[i] = false;
                left++;
            }
        }
        if (left == 0) {
            return 0;
        }
        if (nodes_now() > end) {
            s_show_mesh(node, n, seen);
            char what[96];
            snprintf(
                what, sizeof what,
                "%zu of %zu nodes did not know all %zu others with their ring online within %.0f s",
                left, n, n - 1, end - t0);
            return s_fail(what);
        }
        nodes_sleep_ms(S_POLL_MS);
    }
}

//  CPU ticks of every node into ticks[]; fails if one has exited.
static int
s_read_cpu(nodes_proc_t **node, size_t n, unsigned long long *ticks)
{
    for (size_t i = 0; i < n; i++) {
        if (!nodes_alive(node[i]) || nodes_cpu_ticks(nodes_pid(node[i]), &ticks[i]) != 0) {
            nodes_show_log(node[i]);
            return -1;
        }
    }
    return 0;
}

//  Settle, then the window: the CPU and RSS figures into r.
static int
s_measure(const opts_t *o, nodes_proc_t **node, size_t n, result_t *r)
{
    unsigned long long before[NODES_MAX], after[NODES_MAX];
    nodes_sleep_ms((long)o->settle_s * 1000);
    if (s_read_cpu(node, n, before) != 0) {
        return s_fail("a node exited while the mesh settled");
    }
    double t_a = nodes_now();
    nodes_sleep_ms((long)o->window_s * 1000);
    if (s_read_cpu(node, n, after) != 0) {
        return s_fail("a node exited during the window");
    }
    r->window = nodes_now() - t_a;
    double tck = (double)sysconf(_SC_CLK_TCK);
    unsigned long long sum = 0;
    double rss_sum = 0, pss_sum = 0, anon_sum = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned long long used = after[i] - before[i];
        unsigned long long kb = 0, pss = 0, anon = 0;
        if (s_proc_kb(nodes_pid(node[i]), "status", "VmRSS:", &kb) != 0
            || s_proc_kb(nodes_pid(node[i]), "status", "RssAnon:", &anon) != 0
            || s_proc_kb(nodes_pid(node[i]), "smaps_rollup", "Pss:", &pss) != 0) {
            return s_fail("cannot read a node's memory");
        }
        pss_sum += (double)pss / 1024.0;
        anon_sum += (double)anon / 1024.0;
        double cpu = 100.0 * (double)used / tck / r->window;
        double mib = (double)kb / 1024.0;
        sum += used;
        rss_sum += mib;
        r->cpu_max = cpu > r->cpu_max ? cpu : r->cpu_max;
        r->rss_max = mib > r->rss_max ? mib : r->rss_max;
    }
    r->cpu_all = 100.0 * (double)sum / tck / r->window;
    r->cpu_mean = r->cpu_all / (double)n;
    r->rss_mean = rss_sum / (double)n;
    r->pss_mean = pss_sum / (double)n;
    r->anon_mean = anon_sum / (double)n;
    //  After the window, so these calls cost nothing inside it.
    for (size_t i = 0; i < n; i++) {
        r->lost += s_online(node[i], n, NULL)
                   < ((long long)n - 1 < S_NEIGHBOURS ? (long long)n - 1 : S_NEIGHBOURS);
    }
    return 0;
}

static int
s_run(const opts_t *o, size_t n, result_t *r)
{
    memset(r, 0, sizeof *r);
    r->n = n;
    if (s_make_root() != 0) {
        return -1;
    }
    printf("%s: %zu nodes in %s: starting...\n", s_prog, n, s_root);
    nodes_proc_t *node[NODES_MAX];
    double t0 = 0;
    if (s_spawn_all(node, n, &t0) != 0) {
        return -1;
    }
    r->t_api = nodes_now() - t0;
    printf("%s: %zu nodes: every API answered after %.2f s; waiting for the mesh...\n", s_prog, n,
           r->t_api);
    if (s_wait_mesh(node, n, t0, &r->t_mesh) != 0) {
        return -1;
    }
    printf("%s: %zu nodes: all connected (each knows the other %zu, linked to its ring) after"
           " %.2f s; settling %u s, then a %u s window...\n",
           s_prog, n, n - 1, r->t_mesh, o->settle_s, o->window_s);
    if (s_measure(o, node, n, r) != 0) {
        return -1;
    }
    double t_stop = nodes_now();
    nodes_group_stop_all(&s_nodes);
    r->t_stop = nodes_now() - t_stop;
    printf("%s: %zu nodes: measured; all stopped in %.2f s\n", s_prog, n, r->t_stop);
    nodes_rm_tree(s_root);
    s_root[0] = '\0';
    s_set_signal_msg();
    return 0;
}

/* ---- report ---- */

//  goal/figure, or "inf" when the figure is 0 (below what a tick resolves).
static void
s_ratio(char *out, size_t cap, double goal, double figure)
{
    if (figure > 0) {
        snprintf(out, cap, "%.2f", goal / figure);
    } else {
        snprintf(out, cap, "inf");
    }
}

static void
s_report(const opts_t *o, const result_t *r, size_t count)
{
    if (count == 0) {
        return;
    }
    long tck = sysconf(_SC_CLK_TCK);
    printf("\n%s: idle parleyd nodes on one host, fully meshed over tcp loopback (host-local\n"
           "discovery, no mDNS); %ld CPUs online; window %u s, begun %u s after all connected\n",
           s_prog, sysconf(_SC_NPROCESSORS_ONLN), o->window_s, o->settle_s);
    printf("CPU: utime+stime from /proc/PID/stat across the window, no API call inside it;\n"
           "one tick (1/%ld s) is %.3f %% of a core over it. RSS: VmRSS at its end, which\n"
           "counts every shared library page a node touched in full (PSS, below, divides them).\n",
           tck, 100.0 / (double)tck / (double)o->window_s);
    printf("goals per node, with %u peers: CPU <= %.1f %% of one core, RSS <= %.0f MiB;\n"
           "ratio = goal/figure of the worst node (>= 1.00 meets the goal)\n\n",
           S_GOAL_PEERS, S_GOAL_CPU_PCT, S_GOAL_RSS_MIB);
    printf("%5s %10s  %-30s %8s  %s\n", "", "all", "CPU per node, % of one core", "all N",
           "RSS per node, MiB");
    printf("%5s %10s  %7s %7s %6s %6s  %8s  %7s %7s %6s %6s\n", "N", "connected", "mean", "max",
           "goal", "ratio", "% core", "mean", "max", "goal", "ratio");
    for (size_t i = 0; i < count; i++) {
        char cpu_ratio[16], rss_ratio[16];
        s_ratio(cpu_ratio, sizeof cpu_ratio, S_GOAL_CPU_PCT, r[i].cpu_max);
        s_ratio(rss_ratio, sizeof rss_ratio, S_GOAL_RSS_MIB, r[i].rss_max);
        printf("%5zu %8.2f s  %7.3f %7.3f %6.3f %6s  %8.3f  %7.2f %7.2f %6.1f %6s\n", r[i].n,
               r[i].t_mesh, r[i].cpu_mean, r[i].cpu_max, S_GOAL_CPU_PCT, cpu_ratio, r[i].cpu_all,
               r[i].rss_mean, r[i].rss_max, S_GOAL_RSS_MIB, rss_ratio);
    }
    printf("\n'all connected': from the first spawn until every node's status showed N-1 peers\n"
           "known and min(N-1, %d) online, its ring neighbours (polled, so up to one sweep of\n"
           "status calls plus %d ms late).\n",
           S_NEIGHBOURS, S_POLL_MS);
    for (size_t i = 0; i < count; i++) {
        printf("  N = %zu: APIs up after %.2f s; window measured %.2f s; stopped in %.2f s;"
               " per node PSS %.2f MiB, RssAnon %.2f MiB",
               r[i].n, r[i].t_api, r[i].window, r[i].t_stop, r[i].pss_mean, r[i].anon_mean);
        if (r[i].lost) {
            printf("; WARNING: %zu nodes no longer saw all %zu others after the window", r[i].lost,
                   r[i].n - 1);
        }
        printf("\n");
    }
}

/* ---- options, main ---- */

static void
s_usage(FILE *out)
{
    fprintf(out,
            "usage: bench_idle [--window S] [--settle S] N [N...]\n"
            "For each N in turn: starts N parleyd on tcp loopback in a temporary root, meeting\n"
            "through host-local discovery of their own (no mDNS, no seeds); times until every\n"
            "node knows the other N-1 and is linked to its ring neighbours; rests, then measures "
            "what they cost idle: CPU\n"
            "(utime+stime, /proc/PID/stat) over a window with no API calls, and RSS at its end.\n"
            "A table at the end, beside the goals per node with %u peers (<= %.1f %% of one\n"
            "core, <= %.0f MiB RSS).\n"
            "  --window S   seconds measured (default %u)\n"
            "  --settle S   seconds of rest between all connected and the window (default %u)\n"
            "  N            nodes in a run, 1 to %d; e.g. `bench_idle 2 20`, `bench_idle 200`\n",
            S_GOAL_PEERS, S_GOAL_CPU_PCT, S_GOAL_RSS_MIB, S_WINDOW_DEFAULT, S_SETTLE_DEFAULT,
            NODES_MAX);
}

//  An unsigned decimal in [lo, hi] into *out; fails with a message naming what.
static int
s_number(const char *what, const char *arg, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = arg ? strtoul(arg, &end, 10) : 0;
    if (!arg || errno || !end || *end || arg[0] < '0' || arg[0] > '9' || v < lo || v > hi) {
        fprintf(stderr, "%s: %s wants a whole number from %lu to %lu\n", s_prog, what, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/*  Returns 0, 1 for help, -1 for a usage error. */
static int
s_parse(int argc, char **argv, opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->window_s = S_WINDOW_DEFAULT;
    o->settle_s = S_SETTLE_DEFAULT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        unsigned long v = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return 1;
        } else if (strcmp(a, "--window") == 0 || strcmp(a, "--settle") == 0) {
            bool window = strcmp(a, "--window") == 0;
            if (s_number(a, i + 1 < argc ? argv[i + 1] : NULL, window ? 1 : 0, S_SECONDS_MAX, &v)
                != 0) {
                return -1;
            }
            *(window ? &o->window_s : &o->settle_s) = (unsigned)v;
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "%s: unknown option '%s'\n", s_prog, a);
            return -1;
        } else if (o->runs == S_RUNS_MAX) {
            fprintf(stderr, "%s: at most %d node counts\n", s_prog, S_RUNS_MAX);
            return -1;
        } else if (s_number("N", a, 1, NODES_MAX, &v) != 0) {
            return -1;
        } else {
            o->n[o->runs++] = v;
        }
    }
    if (o->runs == 0) {
        fprintf(stderr, "%s: no node count given\n", s_prog);
        return -1;
    }
    return 0;
}

//  Each node holds a socket per peer and per link of its own: with 200 on
//  one host the default soft limit can run short. The nodes inherit it.
static void
s_raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "%s: note: cannot raise the open-file limit from %llu: %s\n", s_prog,
                    (unsigned long long)was, strerror(errno));
        }
    }
}

int
main(int argc, char **argv)
{
    opts_t o;
    int prc = s_parse(argc, argv, &o);
    if (prc != 0) {
        s_usage(prc > 0 ? stdout : stderr);
        return prc > 0 ? 0 : 2;
    }
    if (nodes_find_sibling(argv[0], "parleyd", s_parleyd, sizeof s_parleyd) != 0) {
        return 1;
    }
    s_raise_nofile();
    setvbuf(stdout, NULL, _IOLBF, 0); // progress shows as it comes
    //  The backstop only ends a run that hangs: the APIs and the mesh get
    //  their deadlines, then rest, window, and stopping every node.
    unsigned long budget = 0;
    for (size_t i = 0; i < o.runs; i++) {
        budget += 2 * (S_BASE_MS + o.n[i] * S_PER_NODE_MS) / 1000 + o.settle_s + o.window_s
                  + NODES_STOP_MS / 1000 + 120;
    }
    s_arm((unsigned)budget);
    result_t r[S_RUNS_MAX];
    size_t done = 0;
    while (done < o.runs && s_run(&o, o.n[done], &r[done]) == 0) {
        done++;
    }
    alarm(0);
    s_report(&o, r, done);
    if (done < o.runs) {
        fprintf(stderr, "%s: FAIL at N = %zu\n", s_prog, o.n[done]);
        return 1;
    }
    return 0;
}
