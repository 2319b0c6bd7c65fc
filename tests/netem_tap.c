/*  tests/netem_tap.c — a userspace netem on the link between one simulated
 *  host and its bridge, for the network-namespace tests (netns_setup_tap in
 *  tests/netns/lib.sh; tests/netns/t_faults.sh).
 *
 *    netem_tap HOST_NS HOST_IFACE BRIDGE_NS BRIDGE_PORT PARAMS_FILE
 *
 *  Why: the test kernel has no sch_netem (CONFIG_NET_SCH_NETEM is not set),
 *  so tc can neither delay nor jitter nor reorder packets. It has TUN/TAP, so
 *  the link itself is made of two TAP devices and this process in between.
 *
 *  What it owns: a TAP device HOST_IFACE in the network namespace HOST_NS (the
 *  host's "eth0") and a TAP device BRIDGE_PORT in BRIDGE_NS (the bridge's
 *  port), both IFF_TAP | IFF_NO_PI and not persistent: they exist exactly as
 *  long as this process (their file descriptors) does. Once both exist it
 *  prints "ready" on stdout; the caller then gives HOST_IFACE its address and
 *  enslaves BRIDGE_PORT to the bridge, as it would the two ends of a veth
 *  pair. Every Ethernet frame (unicast, broadcast, multicast: mDNS is just
 *  frames) is copied from one TAP to the other.
 *
 *  Directions are named from the host: "tx" is what HOST_IFACE sends (towards
 *  the bridge), "rx" what it receives. Each has its own parameters, queue and
 *  counters. A frame read from one side goes through, in order:
 *    1. down: dropped (the link is cut, a partition);
 *    2. loss: dropped with probability loss_pct / 100;
 *    3. reorder: with probability reorder_pct / 100, written at once, ahead
 *       of the frames held (netem's "reorder": a share of packets skips the
 *       delay);
 *    4. otherwise held for delay_ms + U(-jitter_ms, +jitter_ms) ms (never
 *       below 0; uniform, as netem's jitter without a distribution table) in
 *       a queue ordered by (due time, arrival) and written when due. Jitter
 *       wider than the gap between two frames reorders them, as in netem.
 *       A queue holds at most NETEM_QUEUE_MAX frames: a full queue drops.
 *  A held frame whose direction is down when it falls due is dropped too: a
 *  cut loses what was on the wire.
 *
 *  PARAMS_FILE: KEY=VALUE tokens separated by white space, '#' to the end of
 *  a line is a comment. KEY is delay_ms, jitter_ms, loss_pct, reorder_pct
 *  (decimals) or down (0 or 1); alone it sets both directions, prefixed with
 *  "tx." or "rx." only that one (later tokens win). A key not given is 0, so
 *  an empty file is a clean link. For example
 *      delay_ms=20 jitter_ms=10 loss_pct=10 reorder_pct=25 down=0
 *  The file is read at start (it must parse) and again on SIGHUP. Each load
 *  prints "LABEL load=K tx ... rx ..." on stderr, LABEL being "netem_tap
 *  HOST_IFACE@HOST_NS", or "LABEL load=K rejected: WHY" and keeps the
 *  parameters in force. Frames already held keep their due times.
 *
 *  Counters, on SIGUSR1 and at exit (SIGTERM or SIGINT: a clean exit), one
 *  line per direction on stderr, cumulative since start:
 *      LABEL report=K tx in=.. fwd=.. delayed=.. bypassed=.. reordered=..
 *          lost=.. cut=.. full=.. err=.. held=.. hold_us=.. avg_ms=..
 *  in: frames read; fwd: written; delayed: held for a positive time;
 *  bypassed: sent at once by the reorder draw; reordered: written after a
 *  frame for the same destination MAC address that arrived later (by jitter
 *  or by bypass): what that receiver sees out of order (the first
 *  NETEM_DESTS destinations of a direction are tracked, later ones are not
 *  counted); lost: dropped by
 *  the loss draw; cut: dropped while down; full: dropped on a full queue (or
 *  out of memory); err: failed writes; held: frames in the queue now;
 *  hold_us: total time the written frames spent here, avg_ms its mean.
 *
 *  Randomness: splitmix64, seeded from /dev/urandom, or from NETEM_TAP_SEED
 *  (decimal or 0x hex) to replay the same draws; "LABEL seed=0x..." is printed
 *  at start. Not for anything but tests.
 *
 *  Invariants: at most NETEM_QUEUE_MAX frames held per direction, each at most
 *  NETEM_FRAME_MAX bytes; a direction writes its held frames in (due, arrival)
 *  order; every frame read is counted exactly once as fwd, lost, cut, full or
 *  err, or is still held.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define NETEM_QUEUE_MAX 4096   /* frames held per direction */
#define NETEM_FRAME_MAX 65536  /* largest frame read; without GSO a TAP gives MTU + 18 */
#define NETEM_BATCH 64         /* frames read from one TAP per turn, so both sides get turns */
#define NETEM_PARAMS_MAX 4096  /* bytes of PARAMS_FILE, at most */
#define NETEM_DELAY_MAX 60000. /* ms: the largest delay_ms and jitter_ms */
#define NETEM_DESTS 64         /* destination MACs tracked per direction for reordering */
#define NETEM_TX 0             /* host to bridge */
#define NETEM_RX 1             /* bridge to host */

typedef struct {
    double delay_ms;    /* added to the hold time of every frame not bypassed */
    double jitter_ms;   /* half width of the uniform spread around delay_ms */
    double loss_pct;    /* chance (percent) that a frame is dropped */
    double reorder_pct; /* chance (percent) that a frame skips the delay */
    bool down;          /* every frame dropped: the link is cut */
} netem_params_t;

typedef struct {
    uint64_t due_ns; /* monotonic time at which it is written */
    uint64_t in_ns;  /* monotonic time at which it was read */
    uint64_t seq;    /* arrival order within its direction, from 1 */
    size_t len;      /* bytes in data */
    uint8_t data[];  /* the Ethernet frame */
} netem_frame_t;

typedef struct {
    uint64_t in;        /* frames read */
    uint64_t fwd;       /* frames written */
    uint64_t delayed;   /* frames held for a positive time */
    uint64_t bypassed;  /* frames the reorder draw sent at once */
    uint64_t reordered; /* frames written after a later one for the same destination */
    uint64_t lost;      /* frames dropped by the loss draw */
    uint64_t cut;       /* frames dropped while down */
    uint64_t full;      /* frames dropped on a full queue or out of memory */
    uint64_t err;       /* frames whose write failed */
    uint64_t hold_us;   /* total time the written frames spent here */
} netem_counts_t;

typedef struct {
    uint8_t mac[6];        /* a destination MAC address */
    uint64_t max_sent_seq; /* highest seq written to it so far */
} netem_dest_t;

typedef struct {
    const char *name;                     /* "tx" or "rx" */
    int in_fd;                            /* TAP the frames are read from */
    int out_fd;                           /* TAP they are written to */
    netem_params_t params;                /* in force */
    netem_frame_t *heap[NETEM_QUEUE_MAX]; /* held frames, a min-heap on (due_ns, seq) */
    size_t held;                          /* frames in heap */
    uint64_t last_seq;                    /* seq of the last frame accepted */
    netem_dest_t dests[NETEM_DESTS];      /* destinations seen, for reordered */
    size_t n_dests;                       /* entries in dests */
    netem_counts_t counts;                /* since start */
} netem_dir_t;

typedef struct {
    char label[300];    /* "netem_tap HOST_IFACE@HOST_NS", opening every line printed */
    const char *params; /* PARAMS_FILE */
    netem_dir_t dir[2]; /* NETEM_TX, NETEM_RX */
    uint64_t rng;       /* splitmix64 state */
    unsigned reports;   /* counter reports printed */
    unsigned loads;     /* parameter loads tried */
} netem_tap_t;

static int
s_usage(void)
{
    fprintf(stderr, "usage: netem_tap HOST_NS HOST_IFACE BRIDGE_NS BRIDGE_PORT PARAMS_FILE\n");
    return 2;
}

static uint64_t
s_now_ns(void)
{
    struct timespec ts;
    // CLOCK_MONOTONIC cannot fail with a valid pointer on Linux.
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// --- randomness -------------------------------------------------------------

/*  splitmix64: one 64-bit state, full period, good enough statistics for
 *  drawing losses and delays. */
static uint64_t
s_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/*  Uniform in [0, 1). */
static double
s_uniform(uint64_t *state)
{
    return (double)(s_next(state) >> 11) * 0x1.0p-53;
}

/*  True with probability pct / 100; draws nothing when pct is 0. */
static bool
s_chance(uint64_t *state, double pct)
{
    return pct > 0 && s_uniform(state) * 100. < pct;
}

/*  The seed: NETEM_TAP_SEED if set (it must parse), else /dev/urandom. */
static int
s_seed(uint64_t *seed)
{
    const char *env = getenv("NETEM_TAP_SEED");
    if (env) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(env, &end, 0);
        if (errno != 0 || end == env || *end != '\0') {
            fprintf(stderr, "netem_tap: NETEM_TAP_SEED is not a number: %s\n", env);
            return -1;
        }
        *seed = (uint64_t)v;
        return 0;
    }
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "netem_tap: /dev/urandom: %s\n", strerror(errno));
        return -1;
    }
    ssize_t n = read(fd, seed, sizeof *seed);
    close(fd);
    if (n != (ssize_t)sizeof *seed) {
        fprintf(stderr, "netem_tap: short read from /dev/urandom\n");
        return -1;
    }
    return 0;
}

// --- parameters -------------------------------------------------------------

/*  Parses a finite decimal in [lo, hi]; false on anything else (NaN fails
 *  the range test as written). */
static bool
s_decimal(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo && v <= hi)) {
        return false;
    }
    *out = v;
    return true;
}

/*  Sets KEY to the text VALUE in the directions of mask (bit 0 tx, 1 rx). */
static int
s_param_set(netem_params_t p[2], unsigned mask, const char *key, const char *value, char *why,
            size_t why_size)
{
    double v = 0;
    bool ok;
    if (strcmp(key, "delay_ms") == 0 || strcmp(key, "jitter_ms") == 0) {
        ok = s_decimal(value, 0, NETEM_DELAY_MAX, &v);
    } else if (strcmp(key, "loss_pct") == 0 || strcmp(key, "reorder_pct") == 0) {
        ok = s_decimal(value, 0, 100, &v);
    } else if (strcmp(key, "down") == 0) {
        ok = strcmp(value, "0") == 0 || strcmp(value, "1") == 0;
        v = value[0] == '1';
    } else {
        snprintf(why, why_size, "unknown key '%s'", key);
        return -1;
    }
    if (!ok) {
        snprintf(why, why_size, "bad value for %s: '%s'", key, value);
        return -1;
    }
    for (int d = 0; d < 2; d++) {
        if (!(mask & (1u << d))) {
            continue;
        }
        if (strcmp(key, "delay_ms") == 0) {
            p[d].delay_ms = v;
        } else if (strcmp(key, "jitter_ms") == 0) {
            p[d].jitter_ms = v;
        } else if (strcmp(key, "loss_pct") == 0) {
            p[d].loss_pct = v;
        } else if (strcmp(key, "reorder_pct") == 0) {
            p[d].reorder_pct = v;
        } else {
            p[d].down = v != 0;
        }
    }
    return 0;
}

/*  Reads PATH into out[NETEM_TX], out[NETEM_RX]; on an error says why and
 *  leaves out untouched. */
static int
s_params_read(const char *path, netem_params_t out[2], char *why, size_t why_size)
{
    char text[NETEM_PARAMS_MAX];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, text + len, sizeof text - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            snprintf(why, why_size, "%s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
        if (len == sizeof text) {
            snprintf(why, why_size, "%s: longer than %d bytes", path, NETEM_PARAMS_MAX - 1);
            close(fd);
            return -1;
        }
    }
    close(fd);
    text[len] = '\0';
    // Comments become blanks, so that tokens never span them.
    for (char *c = strchr(text, '#'); c; c = strchr(c, '#')) {
        while (*c != '\0' && *c != '\n') {
            *c++ = ' ';
        }
    }
    netem_params_t p[2] = { { 0 }, { 0 } };
    char *save = NULL;
    for (char *tok = strtok_r(text, " \t\r\n", &save); tok;
         tok = strtok_r(NULL, " \t\r\n", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) {
            snprintf(why, why_size, "not KEY=VALUE: '%s'", tok);
            return -1;
        }
        *eq = '\0';
        unsigned mask = 3;
        const char *key = tok;
        if (strncmp(key, "tx.", 3) == 0) {
            mask = 1u << NETEM_TX;
            key += 3;
        } else if (strncmp(key, "rx.", 3) == 0) {
            mask = 1u << NETEM_RX;
            key += 3;
        }
        if (s_param_set(p, mask, key, eq + 1, why, why_size) != 0) {
            return -1;
        }
    }
    out[NETEM_TX] = p[NETEM_TX];
    out[NETEM_RX] = p[NETEM_RX];
    return 0;
}

/*  Loads PARAMS_FILE into both directions and says so; a bad file is
 *  reported and the parameters in force stay (an error at start is fatal). */
static int
s_params_load(netem_tap_t *self)
{
    netem_params_t p[2];
    char why[256];
    self->loads++;
    if (s_params_read(self->params, p, why, sizeof why) != 0) {
        fprintf(stderr, "%s load=%u rejected: %s\n", self->label, self->loads, why);
        return -1;
    }
    fprintf(stderr, "%s load=%u", self->label, self->loads);
    for (int d = 0; d < 2; d++) {
        self->dir[d].params = p[d];
        fprintf(stderr, " %s delay_ms=%g jitter_ms=%g loss_pct=%g reorder_pct=%g down=%d",
                self->dir[d].name, p[d].delay_ms, p[d].jitter_ms, p[d].loss_pct, p[d].reorder_pct,
                p[d].down ? 1 : 0);
    }
    fprintf(stderr, "\n");
    return 0;
}

// --- counters -----------------------------------------------------------------

static void
s_report(netem_tap_t *self)
{
    self->reports++;
    for (int d = 0; d < 2; d++) {
        const netem_dir_t *dir = &self->dir[d];
        const netem_counts_t *c = &dir->counts;
        double avg_ms = c->fwd ? (double)c->hold_us / 1000. / (double)c->fwd : 0.;
        fprintf(stderr,
                "%s report=%u %s in=%" PRIu64 " fwd=%" PRIu64 " delayed=%" PRIu64
                " bypassed=%" PRIu64 " reordered=%" PRIu64 " lost=%" PRIu64 " cut=%" PRIu64
                " full=%" PRIu64 " err=%" PRIu64 " held=%zu hold_us=%" PRIu64 " avg_ms=%.2f\n",
                self->label, self->reports, dir->name, c->in, c->fwd, c->delayed, c->bypassed,
                c->reordered, c->lost, c->cut, c->full, c->err, dir->held, c->hold_us, avg_ms);
    }
}

// --- the queue: a binary min-heap on (due_ns, seq) -----------------------------

static bool
s_before(const netem_frame_t *a, const netem_frame_t *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->seq < b->seq);
}

static void
s_heap_push(netem_dir_t *dir, netem_frame_t *frame)
{
    // s_accept checks for room first: a push onto a full heap is a bug here.
    assert(dir->held < NETEM_QUEUE_MAX);
    size_t i = dir->held++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_before(frame, dir->heap[parent])) {
            break;
        }
        dir->heap[i] = dir->heap[parent];
        i = parent;
    }
    dir->heap[i] = frame;
}

static netem_frame_t *
s_heap_pop(netem_dir_t *dir)
{
    netem_frame_t *top = dir->heap[0];
    netem_frame_t *last = dir->heap[--dir->held];
    size_t i = 0;
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= dir->held) {
            break;
        }
        if (child + 1 < dir->held && s_before(dir->heap[child + 1], dir->heap[child])) {
            child++;
        }
        if (!s_before(dir->heap[child], last)) {
            break;
        }
        dir->heap[i] = dir->heap[child];
        i = child;
    }
    if (dir->held > 0) {
        dir->heap[i] = last;
    }
    return top;
}

// --- forwarding ---------------------------------------------------------------

/*  The reordering record of the frame's destination MAC address (its first
 *  6 bytes), added if new; NULL when the table is full or the frame too
 *  short to have one. */
static netem_dest_t *
s_dest(netem_dir_t *dir, const uint8_t *data, size_t len)
{
    if (len < sizeof dir->dests[0].mac) {
        return NULL;
    }
    for (size_t k = 0; k < dir->n_dests; k++) {
        if (memcmp(dir->dests[k].mac, data, sizeof dir->dests[k].mac) == 0) {
            return &dir->dests[k];
        }
    }
    if (dir->n_dests == NETEM_DESTS) {
        return NULL;
    }
    netem_dest_t *dest = &dir->dests[dir->n_dests++];
    memcpy(dest->mac, data, sizeof dest->mac);
    dest->max_sent_seq = 0;
    return dest;
}

/*  Writes one frame out and counts it; a failed write is counted, not fatal
 *  (a TAP whose interface is still down refuses frames, as a cable with no
 *  one at the other end would). */
static void
s_send(netem_dir_t *dir, const uint8_t *data, size_t len, uint64_t seq, uint64_t in_ns,
       uint64_t now)
{
    ssize_t n = write(dir->out_fd, data, len);
    if (n < 0 || (size_t)n != len) {
        dir->counts.err++;
        return;
    }
    dir->counts.fwd++;
    dir->counts.hold_us += (now - in_ns) / 1000;
    netem_dest_t *dest = s_dest(dir, data, len);
    if (dest && seq < dest->max_sent_seq) {
        dir->counts.reordered++;
    } else if (dest) {
        dest->max_sent_seq = seq;
    }
}

/*  One frame read from dir's input: dropped, sent at once or held. */
static void
s_accept(netem_tap_t *self, netem_dir_t *dir, const uint8_t *data, size_t len, uint64_t now)
{
    const netem_params_t *p = &dir->params;
    dir->counts.in++;
    if (p->down) {
        dir->counts.cut++;
        return;
    }
    if (s_chance(&self->rng, p->loss_pct)) {
        dir->counts.lost++;
        return;
    }
    uint64_t seq = ++dir->last_seq;
    if (s_chance(&self->rng, p->reorder_pct)) {
        dir->counts.bypassed++;
        s_send(dir, data, len, seq, now, now);
        return;
    }
    double hold_ms = p->delay_ms;
    if (p->jitter_ms > 0) {
        hold_ms += (2. * s_uniform(&self->rng) - 1.) * p->jitter_ms;
    }
    uint64_t hold_ns = hold_ms > 0 ? (uint64_t)(hold_ms * 1e6 + .5) : 0;
    if (hold_ns == 0) {
        s_send(dir, data, len, seq, now, now);
        return;
    }
    netem_frame_t *frame = NULL;
    if (dir->held < NETEM_QUEUE_MAX) {
        frame = malloc(sizeof *frame + len);
    }
    if (!frame) {
        // A full queue, or no memory for the frame: a congested link drops.
        dir->counts.full++;
        return;
    }
    frame->due_ns = now + hold_ns;
    frame->in_ns = now;
    frame->seq = seq;
    frame->len = len;
    memcpy(frame->data, data, len);
    dir->counts.delayed++;
    s_heap_push(dir, frame);
}

/*  Writes (or, while down, drops) every held frame that is due. */
static void
s_release(netem_dir_t *dir, uint64_t now)
{
    while (dir->held > 0 && dir->heap[0]->due_ns <= now) {
        netem_frame_t *frame = s_heap_pop(dir);
        if (dir->params.down) {
            dir->counts.cut++;
        } else {
            s_send(dir, frame->data, frame->len, frame->seq, frame->in_ns, now);
        }
        free(frame);
    }
}

/*  Reads up to NETEM_BATCH frames from dir's input; -1 when the TAP is
 *  unusable (its interface was deleted). */
static int
s_drain(netem_tap_t *self, netem_dir_t *dir, uint8_t *buf)
{
    for (int k = 0; k < NETEM_BATCH; k++) {
        ssize_t n = read(dir->in_fd, buf, NETEM_FRAME_MAX);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
                return 0;
            }
            fprintf(stderr, "%s: read (%s side): %s\n", self->label, dir->name, strerror(errno));
            return -1;
        }
        if (n == 0) {
            return 0;
        }
        s_accept(self, dir, buf, (size_t)n, s_now_ns());
    }
    return 0;
}

// --- devices ------------------------------------------------------------------

/*  Moves this process into the network namespace NAME, as `ip netns` names
 *  it. */
static int
s_enter_ns(const char *name)
{
    static const char *const dirs[] = { "/var/run/netns", "/run/netns" };
    if (name[0] == '\0' || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        fprintf(stderr, "netem_tap: bad namespace name '%s'\n", name);
        return -1;
    }
    int err = ENOENT;
    for (size_t k = 0; k < sizeof dirs / sizeof dirs[0]; k++) {
        char path[512];
        int n = snprintf(path, sizeof path, "%s/%s", dirs[k], name);
        if (n < 0 || (size_t)n >= sizeof path) {
            fprintf(stderr, "netem_tap: namespace name too long\n");
            return -1;
        }
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int rc = setns(fd, CLONE_NEWNET);
        err = errno;
        close(fd);
        if (rc == 0) {
            return 0;
        }
        fprintf(stderr, "netem_tap: setns %s: %s\n", path, strerror(err));
        return -1;
    }
    fprintf(stderr, "netem_tap: namespace %s: %s\n", name, strerror(err));
    return -1;
}

/*  A TAP device IFNAME in namespace NS; returns its non-blocking fd, or -1.
 *  /dev/net/tun is opened after setns because a TAP is created in the
 *  namespace that was current when the file was opened, not at the ioctl. */
static int
s_tap_open(const char *ns, const char *ifname)
{
    size_t len = strlen(ifname);
    if (len == 0 || len >= IFNAMSIZ) {
        fprintf(stderr, "netem_tap: bad interface name '%s'\n", ifname);
        return -1;
    }
    if (s_enter_ns(ns) != 0) {
        return -1;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "netem_tap: /dev/net/tun: %s\n", strerror(errno));
        return -1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    memcpy(ifr.ifr_name, ifname, len);
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
        fprintf(stderr, "netem_tap: TAP %s in %s: %s\n", ifname, ns, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/*  SIGHUP, SIGUSR1, SIGTERM and SIGINT arrive through a signalfd (the event
 *  loop polls it), so nothing runs in a signal handler. */
static int
s_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    // A background job of a non-interactive shell starts with SIGINT
    // ignored; blocked signals are queued anyway, but say what we mean.
    signal(SIGINT, SIG_DFL);
    if (sigprocmask(SIG_BLOCK, &set, NULL) != 0) {
        fprintf(stderr, "netem_tap: sigprocmask: %s\n", strerror(errno));
        return -1;
    }
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "netem_tap: signalfd: %s\n", strerror(errno));
    }
    return fd;
}

/*  Handles the pending signals; false once asked to exit. */
static bool
s_on_signals(netem_tap_t *self, int sig_fd)
{
    struct signalfd_siginfo si;
    bool running = true;
    while (read(sig_fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            // A rejected file is reported by s_params_load; the old
            // parameters stay in force, which is what the caller asked for.
            (void)s_params_load(self);
        } else if (si.ssi_signo == SIGUSR1) {
            s_report(self);
        } else {
            running = false;
        }
    }
    return running;
}

/*  The time until the earliest held frame is due, for ppoll: NULL (no limit)
 *  when nothing is held. */
static const struct timespec *
s_timeout(const netem_tap_t *self, uint64_t now, struct timespec *ts)
{
    uint64_t due = UINT64_MAX;
    for (int d = 0; d < 2; d++) {
        if (self->dir[d].held > 0 && self->dir[d].heap[0]->due_ns < due) {
            due = self->dir[d].heap[0]->due_ns;
        }
    }
    if (due == UINT64_MAX) {
        return NULL;
    }
    uint64_t wait = due > now ? due - now : 0;
    ts->tv_sec = (time_t)(wait / 1000000000u);
    ts->tv_nsec = (long)(wait % 1000000000u);
    return ts;
}

/*  Forwards until a signal asks to stop (0) or a TAP fails (-1). */
static int
s_run(netem_tap_t *self, int sig_fd)
{
    static uint8_t buf[NETEM_FRAME_MAX];
    for (;;) {
        uint64_t now = s_now_ns();
        s_release(&self->dir[NETEM_TX], now);
        s_release(&self->dir[NETEM_RX], now);
        struct pollfd fds[3] = {
            { .fd = self->dir[NETEM_TX].in_fd, .events = POLLIN },
            { .fd = self->dir[NETEM_RX].in_fd, .events = POLLIN },
            { .fd = sig_fd, .events = POLLIN },
        };
        struct timespec ts;
        int n = ppoll(fds, 3, s_timeout(self, now, &ts), NULL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            fprintf(stderr, "%s: ppoll: %s\n", self->label, strerror(errno));
            return -1;
        }
        if ((fds[2].revents & POLLIN) && !s_on_signals(self, sig_fd)) {
            return 0;
        }
        for (int d = 0; d < 2; d++) {
            if (fds[d].revents & (POLLERR | POLLHUP | POLLNVAL)) {
                fprintf(stderr, "%s: the %s side's TAP is gone\n", self->label, self->dir[d].name);
                return -1;
            }
            if ((fds[d].revents & POLLIN) && s_drain(self, &self->dir[d], buf) != 0) {
                return -1;
            }
        }
    }
}

/*  Opens both TAPs (into self's directions, so that main closes them), says
 *  "ready" and forwards until told to stop; the exit status. */
static int
s_main(netem_tap_t *self, char **argv, int sig_fd)
{
    if (s_params_load(self) != 0 || s_seed(&self->rng) != 0) {
        return 1;
    }
    fprintf(stderr, "%s seed=0x%016" PRIx64 "\n", self->label, self->rng);
    int host_fd = s_tap_open(argv[1], argv[2]);
    if (host_fd < 0) {
        return 1;
    }
    self->dir[NETEM_TX].in_fd = host_fd;
    self->dir[NETEM_RX].out_fd = host_fd;
    int bridge_fd = s_tap_open(argv[3], argv[4]);
    if (bridge_fd < 0) {
        return 1;
    }
    self->dir[NETEM_TX].out_fd = bridge_fd;
    self->dir[NETEM_RX].in_fd = bridge_fd;
    printf("ready\n");
    fflush(stdout);
    int rc = s_run(self, sig_fd) == 0 ? 0 : 1;
    s_report(self);
    return rc;
}

int
main(int argc, char **argv)
{
    if (argc != 6) {
        return s_usage();
    }
    netem_tap_t *self = calloc(1, sizeof *self);
    if (!self) {
        fprintf(stderr, "netem_tap: out of memory\n");
        return 1;
    }
    snprintf(self->label, sizeof self->label, "netem_tap %s@%s", argv[2], argv[1]);
    self->params = argv[5];
    self->dir[NETEM_TX].name = "tx";
    self->dir[NETEM_RX].name = "rx";
    self->dir[NETEM_TX].in_fd = self->dir[NETEM_TX].out_fd = -1;
    self->dir[NETEM_RX].in_fd = self->dir[NETEM_RX].out_fd = -1;
    int sig_fd = s_signals();
    int rc = sig_fd < 0 ? 1 : s_main(self, argv, sig_fd);
    for (int d = 0; d < 2; d++) {
        while (self->dir[d].held > 0) {
            free(s_heap_pop(&self->dir[d]));
        }
        // Each TAP fd is the input of one direction: closed once.
        if (self->dir[d].in_fd >= 0) {
            close(self->dir[d].in_fd);
        }
    }
    if (sig_fd >= 0) {
        close(sig_fd);
    }
    free(self);
    return rc;
}
