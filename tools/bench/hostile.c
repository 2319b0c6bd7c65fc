/*  tools/bench/hostile.c — how well an honest pair is served while hostile
 *  peers attack one of its nodes, next to the same pair left alone, and what
 *  the worst envelope an attacker can craft costs the victim's CPU.
 *
 *  Three parts, in one run:
 *
 *  (1) Ingest CPU per envelope kind, in this process, before any node runs:
 *      the proto/ calls the node makes on an envelope from the wire
 *      (node/delivery.c s_ingest and s_open_dm: BLAKE2b id, decode, Ed25519
 *      verify, time check, our DM scope with a new author (one X25519), the
 *      DM header and its day checks, the X3DH response of a new receiving
 *      session (node/session.c) and its ratchet from day0 to day, decrypt,
 *      content decode) on envelopes an attacker can make: a small DM of a
 *      known session; a new session at the largest day distance the node
 *      accepts (day0 no earlier than its oldest prekey still held, rotation +
 *      grace; day no later than the envelope's time plus the skew, the
 *      envelope's time no later than ours plus the skew), small and with
 *      the largest content; a 64 KiB envelope in our scope, validly signed,
 *      whose body is no DM; the same with a bad signature, and a small bad
 *      signature. SQLite's share (the node stores the envelope and the
 *      session before it opens it) is not counted: tools/bench/bench.c
 *      measures commits. For reference, the ratchet a forged day0 = 0 would
 *      ask for, which node/session.c now refuses before any work.
 *
 *  (2) Baseline: two real parleyd processes (the binaries next to this one),
 *      the victim A and the honest peer B seeded with A, each in its own
 *      mkdtemp home, on tcp loopback. For D seconds B sends one 100-byte DM
 *      at a time to A through the local API (`send` on B, the "message"
 *      notification of a subscribed connection on A, as bench.c does); each
 *      DM waits at most S_MSG_MS, then the next goes. At the end, S_DRAIN_MS
 *      more for late ones. Latency p50/p99 of those delivered; delivered /
 *      sent.
 *
 *  (3) The same with P hostile peers (tests/hostile_peer.c, default 10)
 *      attacking A for the whole window. Each peer walks the table of attack
 *      modes below from its own starting row: a row runs for its seconds
 *      (given per 60 s of window), the mode started again (a fresh key each
 *      time) whenever it ends early, ended by PID when the row's time is
 *      up. A mode the binary does not know (it exits 2) is reported as
 *      skipped and left out from then on, so the table may name modes that
 *      are not there yet. With --only MODE every peer runs that one mode for
 *      the whole window instead: what one attack costs the pair.
 *
 *  Then: the ratio of the p50s (goal <= 2) and the DMs lost (goal 0); A's
 *  peak RSS (VmHWM) after each part; its database files (parley.db and its
 *  WAL) before and after each; the counters of A's status that moved.
 *  Exit 0 when every honest DM arrived; 1 when one was lost, a node died or
 *  the run failed (the p50 goal is printed, never enforced: it is timing).
 *
 *  Safety, as bench.c: only loopback (A listens on 127.0.0.1, and the
 *  hostile peers are started only against an endpoint there); the nodes are
 *  started and ended by PID in tools/bench/nodes.c, the hostile peers by PID
 *  here, and all get PR_SET_PDEATHSIG; every wait has a deadline and an
 *  alarm() backstop kills everything if the run still hangs. Temp
 *  directories are removed at the end (kept, and named, only if the
 *  backstop fires).
 *
 *  The attackers' own CPU. On one machine the hostile peers compete with
 *  A and B for the same cores; at equal priority ten busy attackers take
 *  ten shares of two cores, and the pair's latency then measures the
 *  scheduler's queue, not A's work (A used 13% of a core under attack in
 *  such a run). A high nice value is not enough either: under EEVDF
 *  (Linux 6.6 on) a nice-19 attacker that holds a core keeps it to the end
 *  of its slice when an honest thread wakes, and a DM wakes six threads on
 *  its way (B's node and I/O thread, A's I/O and node thread, the API
 *  client): a helloflood measured 7.7x at nice 19, 2.3x under SCHED_IDLE,
 *  with A working as hard in both (8.2 s and 9.9 s of CPU in the window).
 *  Attackers on other machines cost the victim only what it does with
 *  their traffic, so the peers run under SCHED_IDLE: they take every cycle
 *  the pair leaves idle, which is most of them, and yield the core the
 *  moment an honest thread wakes, so A's own cost is what shows. --nice N
 *  runs them as ordinary processes at nice N (0 for equal priority)
 *  instead, to see the shared machine.
 *
 *  Usage: bench_hostile [--quick] [--seconds N] [--peers N] [--reps N] [--only MODE]
 *                       [--nice N]
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../../node/client.h"
#include "../../node/config.h"
#include "../../proto/content.h"
#include "../../proto/dm.h"
#include "../../proto/envelope.h"
#include "../../proto/identity.h"
#include "../../proto/limits.h"
#include "nodes.h"

#define S_TEXT_LEN 100u    /* bytes of text per honest DM */
#define S_WARMUP 5u        /* DMs before any timing: the session opens */
#define S_START_MS 20000   /* a node has this long to open its API socket */
#define S_LINK_MS 30000    /* A and B have this long to see each other */
#define S_MSG_MS 15000     /* one DM has this long before the next goes */
#define S_DRAIN_MS 30000   /* late DMs have this long after the window */
#define S_CALL_MS 10000    /* an API call has this long to answer */
#define S_PEERS_MAX 16u    /* hostile peers at once */
#define S_RESTART_MS 100   /* a peer's mode starts again no sooner than this */
#define S_HP_STOP_MS 2000  /* grace between SIGTERM and SIGKILL for a peer */
#define S_RATE_MAX 5000u   /* honest DMs per second we make room for */
#define S_SECONDS_MAX 3600 /* --seconds */

/* ---- the attack table ---- */

/*  One row: hostile_peer's MODE and how long a peer keeps it going in a
 *  60 s window (scaled to other windows). A mode that ends early is started
 *  again until then; an unknown one is skipped. */
typedef struct {
    const char *mode; /* hostile_peer MODE argument */
    unsigned secs;    /* a peer's time on this row, per 60 s of window */
} s_attack_t;

static const s_attack_t s_attacks[] = {
    { "classic", 10 },    { "noconverge", 10 }, { "bigranges", 10 },  { "wantflood", 10 },
    { "envflood", 10 },   { "bigflood:8", 10 }, { "hintflood", 10 },  { "hintburst", 10 },
    { "scopeflood", 10 }, { "redial", 5 },      { "helloflood", 10 }, { "gossipflood", 10 },
    { "diskflood", 10 },
};
#define S_N_ATTACKS (sizeof s_attacks / sizeof s_attacks[0])
#define S_SCHED_IDLE (-1) /* opts_t.nice: the peers run under SCHED_IDLE (see the top) */

/*  What became of each row's runs (written by the supervisor thread only,
 *  read after it is joined). */
typedef struct {
    size_t runs;   /* processes started */
    size_t done;   /* exited 0: ran to its end */
    size_t failed; /* exited 1: could not connect or send (refused?) */
    size_t ended;  /* still running when its time was up: ended by us */
    size_t other;  /* any other end (a crash is worth a look) */
    bool skipped;  /* the binary does not know the mode (exit 2) */
} s_attack_stat_t;

/* ---- options and results ---- */

typedef struct {
    bool quick;        /* a smoke test: short windows, few repetitions */
    unsigned seconds;  /* each window: baseline, then under attack */
    size_t peers;      /* hostile peers */
    size_t reps;       /* repetitions per envelope kind */
    const char *only;  /* --only MODE: every peer runs just that, or NULL */
    int nice;          /* the peers' nice value (--nice N), or S_SCHED_IDLE */
    unsigned budget_s; /* hard limit for the whole run */
} opts_t;

typedef nodes_lat_t lat_t;

/*  One window of honest traffic, B -> A. */
typedef struct {
    const char *tag;   /* "base" or "atk": in the text, so windows never mix */
    size_t cap;        /* room for DMs */
    size_t sent;       /* `send` requests written to B */
    size_t refused;    /* B answered `send` with an error */
    size_t delivered;  /* distinct DMs notified on A */
    size_t late;       /* of those, after their S_MSG_MS */
    size_t duplicates; /* notifications for a DM already seen */
    double *t_sent;    /* per DM */
    uint8_t *seen;     /* per DM */
    double *lat;       /* per delivered DM, in arrival order */
    lat_t l;           /* of lat */
} s_window_t;

/*  A's state at one moment. */
typedef struct {
    long hwm_kb;    /* VmHWM */
    long rss_kb;    /* VmRSS */
    long long db;   /* parley.db bytes */
    long long wal;  /* parley.db-wal bytes */
    double cpu_s;   /* user + system CPU seconds used so far */
    json_t *status; /* its `status` result (owned) */
} s_snap_t;

/* ---- time, statistics ---- */

/* ---- the hostile peers' processes, and the hard timeout ---- */

/*  What the alarm handler may touch: the peers' PIDs (0: free), the nodes'
 *  (nodes.c) and a prepared message. A PID is cleared here the moment
 *  waitpid() returns it, as nodes.c does. */
static volatile pid_t s_hp_pids[S_PEERS_MAX];
static char s_alarm_msg[512];

static void
s_on_alarm(int sig)
{
    for (size_t i = 0; i < S_PEERS_MAX; i++) {
        pid_t pid = s_hp_pids[i];
        if (pid > 0) {
            kill(pid, SIGKILL);
        }
    }
    nodes_kill_all();
    ssize_t w = write(STDERR_FILENO, s_alarm_msg, strlen(s_alarm_msg));
    (void)w; // nothing more to do if stderr is gone: we are exiting anyway
    _exit(sig == SIGALRM ? 3 : 130);
}

static void
s_arm_backstop(unsigned seconds, const char *tmp_root)
{
    snprintf(s_alarm_msg, sizeof s_alarm_msg,
             "bench_hostile: FAIL: hard timeout or interrupt; processes killed, files left in "
             "%s\n",
             tmp_root);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    alarm(seconds);
}

/*  Starts `hostile_peer ENDPOINT NODEID MODE` in slot (no SEED: a fresh
 *  key), output appended to log. 0, or -1 with a message. */
static int
s_hp_spawn(size_t slot, const char *prog, const char *endpoint, const char *node_id,
           const char *mode, int nice, const char *log)
{
    const char *argv[] = { prog, endpoint, node_id, mode, NULL };
    pid_t parent = getpid();
    //  Signals stay blocked across fork until the child has dropped our
    //  handlers: a SIGTERM from s_hp_stop before its exec would otherwise
    //  run s_on_alarm in the child, which kills the nodes.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = fork();
    if (pid < 0) {
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        fprintf(stderr, "bench_hostile: fork: %s\n", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        signal(SIGALRM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        //  Dies with us (see nodes.c): no attacker outlives the benchmark.
        //  (PDEATHSIG follows the thread that forked: the attackers' thread
        //  ends them anyway before it returns.)
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        struct sched_param idle = { .sched_priority = 0 };
        if (getppid() != parent || fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0
            || (nice == S_SCHED_IDLE ? sched_setscheduler(0, SCHED_IDLE, &idle)
                                     : setpriority(PRIO_PROCESS, 0, nice))
                   != 0) {
            _exit(127);
        }
        execv(prog, (char *const *)argv);
        _exit(127);
    }
    s_hp_pids[slot] = pid;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}

/*  SIGTERM, SIGKILL after S_HP_STOP_MS, reaped. */
static void
s_hp_stop(size_t slot)
{
    pid_t pid = s_hp_pids[slot];
    if (pid <= 0) {
        return;
    }
    kill(pid, SIGTERM);
    double end = nodes_now() + S_HP_STOP_MS / 1000.0;
    int status = 0;
    pid_t got;
    while ((got = waitpid(pid, &status, WNOHANG)) == 0 && nodes_now() < end) {
        nodes_sleep_ms(5);
    }
    if (got == 0) {
        kill(pid, SIGKILL);
        got = waitpid(pid, &status, 0);
    }
    //  got < 0 cannot be ECHILD for our own unreaped child; nothing else to do.
    s_hp_pids[slot] = 0;
}

/* ---- the supervisor: P peers walking the table ---- */

typedef struct {
    size_t row;     /* its current row of the table */
    double row_end; /* when that row's time is up */
    double next;    /* no restart before this */
} s_slot_t;

typedef struct {
    const char *prog;     /* hostile_peer */
    const char *endpoint; /* A's */
    const char *node_id;  /* A's */
    int nice;             /* the peers' nice value, or S_SCHED_IDLE */
    char logs[S_PEERS_MAX][PATH_MAX];
    size_t peers;
    atomic_bool stop;                   /* set by the main thread */
    int rc;                             /* -1 if a peer could not be started */
    const s_attack_t *table;            /* s_attacks, or the one row of --only */
    size_t rows;                        /* in table */
    s_attack_stat_t stats[S_N_ATTACKS]; /* per row */
    s_slot_t slots[S_PEERS_MAX];
    unsigned window; /* seconds: rows are scaled to it */
} s_attackers_t;

/*  A row's time in a window of at->window seconds: as the table says for
 *  60 s, in proportion for shorter or longer ones (at least 2 s, so that a
 *  mode gets past its handshake). */
static double
s_row_secs(const s_attackers_t *at, size_t row)
{
    double secs = at->table[row].secs * at->window / 60.0;
    return secs < 2 ? 2 : secs;
}

//  The row after `row` whose mode is not skipped (row itself when it is the
//  only one left), or at->rows if none.
static size_t
s_next_row(const s_attackers_t *at, size_t row)
{
    for (size_t k = 1; k <= at->rows; k++) {
        size_t r = (row + k) % at->rows;
        if (!at->stats[r].skipped) {
            return r;
        }
    }
    return at->rows;
}

//  Files the end of a run of row.
static void
s_count_end(s_attackers_t *at, size_t row, int status)
{
    s_attack_stat_t *st = &at->stats[row];
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code == 0) {
        st->done++;
    } else if (code == 1) {
        st->failed++;
    } else if (code == 2) {
        st->skipped = true; // an unknown mode: left out from now on
    } else {
        st->other++;
    }
}

//  One pass over the slots: ends rows whose time is up, starts the next
//  row, or the same mode again when it ended early.
static int
s_supervise(s_attackers_t *at)
{
    double now = nodes_now();
    for (size_t i = 0; i < at->peers; i++) {
        s_slot_t *s = &at->slots[i];
        bool running = s_hp_pids[i] > 0; // s_reap ran just before
        if (running && now >= s->row_end) {
            s_hp_stop(i);
            at->stats[s->row].ended++;
            running = false;
            s->next = 0;
        }
        if (running) {
            continue;
        }
        if (at->stats[s->row].skipped || now >= s->row_end) {
            s->row = s_next_row(at, s->row);
            if (s->row == at->rows) {
                return -1; // every mode is unknown to the binary
            }
            s->row_end = now + s_row_secs(at, s->row);
            s->next = 0;
        }
        if (now < s->next) {
            continue;
        }
        if (s_hp_spawn(i, at->prog, at->endpoint, at->node_id, at->table[s->row].mode, at->nice,
                       at->logs[i])
            != 0) {
            return -1;
        }
        at->stats[s->row].runs++;
        s->next = now + S_RESTART_MS / 1000.0;
    }
    return 0;
}

//  Reaps every slot whose peer has ended, filing how it ended.
static void
s_reap(s_attackers_t *at)
{
    for (size_t i = 0; i < at->peers; i++) {
        int status = 0;
        pid_t pid = s_hp_pids[i];
        if (pid > 0 && waitpid(pid, &status, WNOHANG) == pid) {
            s_hp_pids[i] = 0;
            s_count_end(at, at->slots[i].row, status);
        }
    }
}

static void *
s_attackers_run(void *arg)
{
    s_attackers_t *at = arg;
    double now = nodes_now();
    for (size_t i = 0; i < at->peers; i++) {
        at->slots[i].row = i % at->rows;
        at->slots[i].row_end = now + s_row_secs(at, at->slots[i].row);
    }
    while (!atomic_load(&at->stop)) {
        s_reap(at);
        if (s_supervise(at) != 0) {
            at->rc = -1;
            break;
        }
        nodes_sleep_ms(20);
    }
    s_reap(at);
    for (size_t i = 0; i < at->peers; i++) {
        if (s_hp_pids[i] > 0) {
            s_hp_stop(i);
            at->stats[at->slots[i].row].ended++;
        }
    }
    return NULL;
}

/* ---- (1) ingest CPU per envelope kind ---- */

/*  The victim's side: its identity and current prekey. */
typedef struct {
    identity_t *me;
    prekey_t spk;
    uint8_t spk_secret[32];
} s_victim_t;

/*  One kind of envelope and what its ingest must come to. */
typedef struct {
    const char *name;
    uint8_t *env; /* the bytes, PARLEY_ENVELOPE_MAX of room */
    size_t len;
    bool new_author;     /* our DM scope with it is not cached: one X25519 */
    bool new_session;    /* X3DH response and the ratchet day0 -> day */
    uint8_t day_key[32]; /* the chain key of its day, when the session is known */
    uint32_t steps;      /* day - day0 */
    int expect;          /* PARLEY_OK or the error that ends its ingest */
    double us;           /* measured, per envelope */
} s_kind_t;

/*  The node's ingest of one envelope from the wire, without the store:
 *  node/delivery.c s_ingest (id, validate, scope), s_open_dm (header, day
 *  bounds, session_recv_key, open, content). Returns where it ended. */
static int
s_ingest(const s_victim_t *v, s_kind_t *k, uint64_t now)
{
    uint8_t id[32];
    crypto_generichash(id, sizeof id, k->env, k->len, NULL, 0);
    envelope_t env;
    int rc = envelope_validate(k->env, k->len, now, &env);
    uint8_t scope[32];
    if (rc == PARLEY_OK && k->new_author) {
        rc = dm_scope(v->me, env.author, scope);
        if (rc == PARLEY_OK && sodium_memcmp(scope, env.scope, 32) != 0) {
            rc = PARLEY_ERR_STATE; // not ours: the set-up is wrong
        }
    }
    dm_header_t h;
    if (rc == PARLEY_OK) {
        rc = dm_body_parse(&env, &h);
    }
    if (rc == PARLEY_OK
        && (h.day < h.day0 || h.day > (env.ts_ms + PARLEY_FUTURE_SKEW_MS) / NODE_DAY_MS)) {
        rc = PARLEY_ERR_MALFORMED;
    }
    uint8_t key[32];
    if (rc == PARLEY_OK && k->new_session) {
        rc = dm_x3dh_respond(v->me, env.author, v->spk_secret, h.spk_id, h.ek_pub, key);
        if (rc == PARLEY_OK) {
            rc = dm_chain_advance(key, h.day0, h.day);
        }
    } else if (rc == PARLEY_OK) {
        memcpy(key, k->day_key, 32);
    }
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t clen = 0;
    if (rc == PARLEY_OK) {
        rc = dm_envelope_open(&env, key, content, sizeof content, &clen);
    }
    content_t c;
    if (rc == PARLEY_OK) {
        rc = content_decode(content, clen, &c);
    }
    sodium_memzero(key, sizeof key);
    return rc;
}

/*  A DM of text_len bytes from a fresh author to v, its session opened on
 *  day0 and the message on day, dated ts. day_key gets the chain key of day. */
static int
s_make_dm(const s_victim_t *v, size_t text_len, uint32_t day0, uint32_t day, uint64_t ts,
          s_kind_t *k)
{
    identity_t *from = identity_new();
    char *text = malloc(text_len + 1);
    uint8_t *content = malloc(PARLEY_CONTENT_MAX);
    envelope_t f;
    dm_header_t h;
    memset(&f, 0, sizeof f);
    memset(&h, 0, sizeof h);
    int rc = from && text && content ? PARLEY_OK : PARLEY_ERR_NOMEM;
    size_t clen = 0;
    if (rc == PARLEY_OK) {
        memset(text, 'x', text_len);
        f.kind = ENVELOPE_KIND_DM;
        memcpy(f.author, identity_ed_pk(from), 32);
        f.seq = 1;
        f.ts_ms = ts;
        h.spk_id = v->spk.spk_id;
        h.day0 = day0;
        h.day = day;
        rc = dm_scope(from, identity_ed_pk(v->me), f.scope);
    }
    if (rc == PARLEY_OK) {
        rc = dm_x3dh_initiate(from, identity_ed_pk(v->me), &v->spk, h.ek_pub, k->day_key);
    }
    if (rc == PARLEY_OK) {
        rc = dm_chain_advance(k->day_key, day0, day);
    }
    if (rc == PARLEY_OK) {
        rc = content_encode_text(text, text_len, content, PARLEY_CONTENT_MAX, &clen);
    }
    if (rc == PARLEY_OK) {
        rc = dm_envelope_seal(from, &f, &h, k->day_key, content, clen, k->env, PARLEY_ENVELOPE_MAX,
                              &k->len);
    }
    k->steps = day - day0;
    free(content);
    free(text);
    identity_destroy(&from);
    return rc;
}

/*  A whole PARLEY_ENVELOPE_MAX envelope from a fresh author in its DM scope
 *  with v, validly signed, its body random (no DM bucket fits that size). */
static int
s_make_big(const s_victim_t *v, uint64_t ts, s_kind_t *k)
{
    identity_t *from = identity_new();
    uint8_t *body = malloc(PARLEY_BODY_MAX);
    envelope_t f;
    memset(&f, 0, sizeof f);
    int rc = from && body ? PARLEY_OK : PARLEY_ERR_NOMEM;
    if (rc == PARLEY_OK) {
        randombytes_buf(body, PARLEY_BODY_MAX);
        f.version = PARLEY_ENVELOPE_VERSION;
        f.kind = ENVELOPE_KIND_DM;
        memcpy(f.author, identity_ed_pk(from), 32);
        f.seq = 1;
        f.ts_ms = ts;
        f.body = body;
        f.body_len = PARLEY_BODY_MAX;
        rc = dm_scope(from, identity_ed_pk(v->me), f.scope);
    }
    if (rc == PARLEY_OK) {
        rc = envelope_seal(&f, identity_ed_sk(from), k->env, PARLEY_ENVELOPE_MAX, &k->len);
    }
    free(body);
    identity_destroy(&from);
    return rc;
}

/*  The largest day distance a new receiving session may claim at now
 *  (node/session.c, node/delivery.c, default configuration): day0 no earlier
 *  than the day of our oldest prekey still held (made rotation + grace ago)
 *  less the skew; day no later than that of the envelope's time plus the
 *  skew, that time no later than ours plus the skew. */
static void
s_max_distance(uint64_t now, uint32_t *day0, uint32_t *day)
{
    node_config_t cfg;
    node_config_default(&cfg);
    uint64_t oldest = now - cfg.prekey_rotate_ms - cfg.grace_ms - PARLEY_FUTURE_SKEW_MS;
    *day0 = (uint32_t)(oldest / cfg.ratchet_ms);
    *day = (uint32_t)((now + 2 * PARLEY_FUTURE_SKEW_MS) / cfg.ratchet_ms);
}

enum { K_SMALL, K_NEW_MAX, K_BIG_NEW_MAX, K_64K, K_64K_BADSIG, K_SMALL_BADSIG, K_COUNT };

static int
s_make_kinds(const s_victim_t *v, uint64_t now, s_kind_t *k)
{
    uint32_t day0 = 0, day = 0;
    s_max_distance(now, &day0, &day);
    //  Dated as far ahead as ingest takes, less a minute for the run.
    uint64_t ahead = now + PARLEY_FUTURE_SKEW_MS - 60000;
    uint32_t today = (uint32_t)(now / NODE_DAY_MS);
    k[K_SMALL] = (s_kind_t){ "DM 100 B, known session", .expect = PARLEY_OK };
    k[K_NEW_MAX] = (s_kind_t){ "DM 100 B, new author, new session at max distance",
                               .new_author = true, .new_session = true, .expect = PARLEY_OK };
    k[K_BIG_NEW_MAX] = (s_kind_t){ "DM of max content, new author, new session, max distance",
                                   .new_author = true, .new_session = true, .expect = PARLEY_OK };
    k[K_64K] = (s_kind_t){ "64 KiB envelope, new author, in scope, body no DM", .new_author = true,
                           .expect = PARLEY_ERR_MALFORMED };
    k[K_64K_BADSIG] = (s_kind_t){ "64 KiB envelope, bad signature", .expect = PARLEY_ERR_AUTH };
    k[K_SMALL_BADSIG] = (s_kind_t){ "DM 100 B, bad signature", .expect = PARLEY_ERR_AUTH };
    for (size_t i = 0; i < K_COUNT; i++) {
        k[i].env = malloc(PARLEY_ENVELOPE_MAX);
        if (!k[i].env) {
            return -1;
        }
    }
    if (s_make_dm(v, S_TEXT_LEN, today, today, now, &k[K_SMALL]) != PARLEY_OK
        || s_make_dm(v, S_TEXT_LEN, day0, day, ahead, &k[K_NEW_MAX]) != PARLEY_OK
        || s_make_dm(v, PARLEY_TEXT_MAX, day0, day, ahead, &k[K_BIG_NEW_MAX]) != PARLEY_OK
        || s_make_big(v, now, &k[K_64K]) != PARLEY_OK
        || s_make_dm(v, S_TEXT_LEN, today, today, now, &k[K_SMALL_BADSIG]) != PARLEY_OK) {
        return -1;
    }
    memcpy(k[K_64K_BADSIG].env, k[K_64K].env, k[K_64K].len);
    k[K_64K_BADSIG].len = k[K_64K].len;
    k[K_64K_BADSIG].env[k[K_64K_BADSIG].len - 1] ^= 0x01;
    k[K_SMALL_BADSIG].env[k[K_SMALL_BADSIG].len - 1] ^= 0x01;
    return 0;
}

/*  Times reps ingests of each kind, after checking each ends as it must. */
static int
s_time_kinds(const s_victim_t *v, s_kind_t *k, size_t reps)
{
    for (size_t i = 0; i < K_COUNT; i++) {
        uint64_t now = nodes_wall_ms();
        int rc = s_ingest(v, &k[i], now);
        if (rc != k[i].expect) {
            fprintf(stderr, "bench_hostile: %s: ingest ended with %s, not %s\n", k[i].name,
                    parley_strerror(rc), parley_strerror(k[i].expect));
            return -1;
        }
        double t0 = nodes_now();
        for (size_t r = 0; r < reps; r++) {
            //  Its result was checked above; the same bytes give the same one.
            int again = s_ingest(v, &k[i], now);
            (void)again;
        }
        k[i].us = (nodes_now() - t0) * 1e6 / (double)reps;
    }
    return 0;
}

/*  The ratchet from day0 = 0 to today, which a forged header once asked
 *  for; µs per call over reps calls. */
static double
s_time_day0_zero(size_t reps, uint32_t *steps)
{
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    *steps = (uint32_t)(nodes_wall_ms() / NODE_DAY_MS);
    double t0 = nodes_now();
    for (size_t r = 0; r < reps; r++) {
        if (dm_chain_advance(key, 0, *steps) != PARLEY_OK) {
            return -1;
        }
    }
    return (nodes_now() - t0) * 1e6 / (double)reps;
}

static int
s_cpu(const opts_t *o)
{
    s_victim_t v;
    s_kind_t k[K_COUNT];
    memset(&v, 0, sizeof v);
    memset(k, 0, sizeof k);
    uint64_t now = nodes_wall_ms();
    v.me = identity_new();
    int rc =
        v.me && dm_prekey_generate(identity_ed_pk(v.me), 1, now, &v.spk, v.spk_secret) == PARLEY_OK
            ? 0
            : -1;
    if (rc == 0) {
        rc = s_make_kinds(&v, now, k);
    }
    if (rc == 0) {
        rc = s_time_kinds(&v, k, o->reps);
    }
    uint32_t zero_steps = 0;
    double zero_us = rc == 0 ? s_time_day0_zero(o->reps / 50 + 1, &zero_steps) : -1;
    if (rc == 0 && zero_us >= 0) {
        printf(
            "\ningest CPU per envelope, one core, in-process (the proto/ calls of node/delivery.c\n"
            "and node/session.c; SQLite not counted), %zu repetitions each:\n",
            o->reps);
        size_t worst = 0;
        for (size_t i = 0; i < K_COUNT; i++) {
            char steps[32] = "";
            if (k[i].new_session) {
                snprintf(steps, sizeof steps, ", %u days", k[i].steps);
            }
            const char *end = k[i].expect == PARLEY_OK         ? "opened"
                              : k[i].expect == PARLEY_ERR_AUTH ? "refused: signature"
                                                               : "refused: no DM body";
            printf("  %-58s %6zu B %9.1f us  -> %s%s\n", k[i].name, k[i].len, k[i].us, end, steps);
            worst = k[i].us > k[worst].us ? i : worst;
        }
        printf("  worst: %s, %.1f us (%.0f envelopes/s per core; %.1fx a known-session DM)\n",
               k[worst].name, k[worst].us, 1e6 / k[worst].us, k[worst].us / k[K_SMALL].us);
        printf("  for reference, refused before any work since the prekey-age bound: a new\n"
               "  session with day0 = 0 would ratchet %u days, %.1f us\n",
               zero_steps, zero_us);
    } else {
        fprintf(stderr, "bench_hostile: the ingest CPU measure failed\n");
        rc = -1;
    }
    for (size_t i = 0; i < K_COUNT; i++) {
        free(k[i].env);
    }
    sodium_memzero(v.spk_secret, sizeof v.spk_secret);
    identity_destroy(&v.me);
    return rc;
}

/* ---- the nodes (tools/bench/nodes.h) ---- */

/*  Where a node lives: its own mkdtemp home and its log, in the run's root. */
typedef struct {
    char home[PATH_MAX];
    char log[PATH_MAX];
} s_place_t;

/*  "KEY: N kB" of /proc/PID/status, or -1. */
static long
s_proc_kb(pid_t pid, const char *key)
{
    char path[64];
    char line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    size_t klen = strlen(key);
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kb = strtol(line + klen + 1, NULL, 10);
        }
    }
    if (f) {
        fclose(f);
    }
    return kb;
}

/*  User + system CPU seconds of PID so far, or -1. */
static double
s_proc_cpu(pid_t pid)
{
    unsigned long long ticks = 0;
    long hz = sysconf(_SC_CLK_TCK);
    return nodes_cpu_ticks(pid, &ticks) == 0 && hz > 0 ? (double)ticks / (double)hz : -1;
}

static long long
s_file_size(const char *home, const char *name)
{
    char path[PATH_MAX];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/%s", home, name);
    if (n < 0 || (size_t)n >= sizeof path || stat(path, &st) != 0) {
        return 0; // no WAL yet (or none left after a checkpoint): nothing on disk
    }
    return (long long)st.st_size;
}

static int
s_snap(nodes_proc_t *a, s_snap_t *s)
{
    s->hwm_kb = s_proc_kb(nodes_pid(a), "VmHWM");
    s->rss_kb = s_proc_kb(nodes_pid(a), "VmRSS");
    s->db = s_file_size(nodes_home(a), "parley.db");
    s->wal = s_file_size(nodes_home(a), "parley.db-wal");
    s->cpu_s = s_proc_cpu(nodes_pid(a));
    s->status = NULL;
    return nodes_call(a, "status", NULL, S_CALL_MS, &s->status);
}

/* ---- (2), (3) honest traffic, B -> A ---- */

static int
s_window_init(s_window_t *w, const char *tag, unsigned seconds)
{
    memset(w, 0, sizeof *w);
    w->tag = tag;
    w->cap = (size_t)seconds * S_RATE_MAX + 100;
    w->t_sent = calloc(w->cap, sizeof *w->t_sent);
    w->seen = calloc(w->cap, 1);
    w->lat = calloc(w->cap, sizeof *w->lat);
    return w->t_sent && w->seen && w->lat ? 0 : -1;
}

static void
s_window_free(s_window_t *w)
{
    free(w->t_sent);
    free(w->seen);
    free(w->lat);
}

/*  Exactly S_TEXT_LEN bytes: "hb TAG NNNNNNN " then filler. */
static void
s_text(char *out, const char *tag, size_t i)
{
    int n = snprintf(out, S_TEXT_LEN + 1, "hb %s %07zu ", tag, i);
    size_t len = n > 0 ? (size_t)n : 0;
    memset(out + len, 'x', S_TEXT_LEN - len);
    out[S_TEXT_LEN] = '\0';
}

/*  Files a notification of A's: a DM of this window is delivered once. */
static void
s_on_note(s_window_t *w, json_t *note)
{
    const char *method = json_string_value(json_object_get(note, "method"));
    const char *text = json_string_value(json_object_get(json_object_get(note, "params"), "text"));
    char prefix[16];
    snprintf(prefix, sizeof prefix, "hb %s ", w->tag);
    if (!method || strcmp(method, "message") != 0 || !text
        || strncmp(text, prefix, strlen(prefix)) != 0) {
        return;
    }
    char *end = NULL;
    unsigned long long i = strtoull(text + strlen(prefix), &end, 10);
    if (end == text + strlen(prefix) || i >= w->sent) {
        return;
    }
    if (w->seen[i]) {
        w->duplicates++;
        return;
    }
    double secs = nodes_now() - w->t_sent[i];
    w->seen[i] = 1;
    w->lat[w->delivered++] = secs;
    w->late += secs > S_MSG_MS / 1000.0;
}

/*  Reads A's notifications until DM i has come or end; -1 if the
 *  subscription failed. */
static int
s_wait_dm(client_t *sub, s_window_t *w, size_t i, double end)
{
    while (!w->seen[i]) {
        json_t *note = NULL;
        int rc = client_recv(sub, nodes_ms_left(end), &note);
        if (rc == PARLEY_ERR_STATE) {
            return 0; // not yet: counted as lost unless it comes later
        }
        if (rc != PARLEY_OK) {
            fprintf(stderr, "bench_hostile: A's subscription failed: %s\n", parley_strerror(rc));
            return -1;
        }
        s_on_note(w, note);
        json_decref(note);
    }
    return 0;
}

/*  One DM from B to A: send, wait for A's notification, read B's answer. */
static int
s_one_dm(nodes_proc_t *a, nodes_proc_t *b, client_t *sub, s_window_t *w)
{
    char text[S_TEXT_LEN + 1];
    size_t i = w->sent;
    s_text(text, w->tag, i);
    json_t *params = json_pack("{s:s, s:s}", "peer", nodes_id(a), "text", text);
    w->t_sent[i] = nodes_now();
    if (!params || client_send(nodes_api(b), "send", params) != PARLEY_OK) {
        fprintf(stderr, "bench_hostile: cannot send a request to B\n");
        return -1;
    }
    w->sent++;
    if (s_wait_dm(sub, w, i, w->t_sent[i] + S_MSG_MS / 1000.0) != 0) {
        return -1;
    }
    //  B answers once it has committed, whatever A does; an error answer
    //  (printed) is a refused send, and the run goes on.
    if (nodes_response(nodes_api(b), "send on B", S_CALL_MS, NULL) != 0) {
        w->refused++;
    }
    return nodes_alive(a) && nodes_alive(b) ? 0 : -1;
}

/*  DMs one at a time for seconds. */
static int
s_window(nodes_proc_t *a, nodes_proc_t *b, client_t *sub, s_window_t *w, unsigned seconds)
{
    double end = nodes_now() + seconds;
    while (nodes_now() < end && w->sent < w->cap) {
        if (s_one_dm(a, b, sub, w) != 0) {
            return -1;
        }
    }
    return 0;
}

/*  Waits S_DRAIN_MS at most for the DMs still missing; then the figures. */
static int
s_drain(client_t *sub, s_window_t *w)
{
    double drain = nodes_now() + S_DRAIN_MS / 1000.0;
    for (size_t i = 0; i < w->sent && nodes_now() < drain; i++) {
        if (s_wait_dm(sub, w, i, drain) != 0) {
            return -1;
        }
    }
    w->l = nodes_percentiles(w->lat, w->delivered);
    return 0;
}

/*  The first DMs open the session (prekey, X3DH): not what we measure. */
static int
s_warmup(nodes_proc_t *a, nodes_proc_t *b, client_t *sub)
{
    s_window_t w;
    int rc = s_window_init(&w, "warm", 1);
    for (size_t i = 0; rc == 0 && i < S_WARMUP; i++) {
        rc = s_one_dm(a, b, sub, &w);
        if (rc == 0 && !w.seen[i]) {
            fprintf(stderr, "bench_hostile: warm-up DM %zu never arrived\n", i);
            rc = -1;
        }
    }
    s_window_free(&w);
    return rc;
}

/* ---- set-up ---- */

/*  One mkdtemp root for the run; each node's home is its own mkdtemp inside
 *  it, the peers' logs beside them, so one removal cleans everything. */
static int
s_make_dirs(char *root, size_t cap, s_place_t where[2], s_attackers_t *at)
{
    snprintf(root, cap, "/tmp/parley-hbench.XXXXXX");
    if (!mkdtemp(root)) {
        root[0] = '\0';
        return -1;
    }
    const char *names[2] = { "A", "B" };
    for (size_t i = 0; i < 2; i++) {
        snprintf(where[i].home, sizeof where[i].home, "%s/home-%s.XXXXXX", root, names[i]);
        snprintf(where[i].log, sizeof where[i].log, "%s/%s.log", root, names[i]);
        if (!mkdtemp(where[i].home)) {
            return -1;
        }
    }
    for (size_t i = 0; i < S_PEERS_MAX; i++) {
        snprintf(at->logs[i], sizeof at->logs[i], "%s/hostile-%zu.log", root, i);
    }
    return 0;
}

static void
s_usage(FILE *out)
{
    fprintf(out,
            "usage: bench_hostile [--quick] [--seconds N] [--peers N] [--reps N] [--only MODE]\n"
            "                     [--nice N]\n"
            "Measures the ingest CPU of the worst envelopes an attacker can craft, then\n"
            "starts two parleyd (victim A, honest B) on tcp loopback in temporary homes and\n"
            "sends DMs B -> A one at a time: for N seconds alone, then for N seconds while\n"
            "hostile peers (hostile_peer) attack A. Prints latency, delivery, A's memory,\n"
            "database and counters. Exit 1 if an honest DM was lost.\n"
            "  --quick      5 s windows, 200 repetitions: a smoke test\n"
            "  --seconds N  each window (default 60)\n"
            "  --peers N    hostile peers at once (default 10, at most %u)\n"
            "  --reps N     repetitions per envelope kind (default 2000)\n"
            "  --only MODE  every peer runs just this hostile_peer MODE (which attack costs\n"
            "               what), instead of the whole table\n"
            "  --nice N     run the hostile peers as ordinary processes at nice N, 0 to 19,\n"
            "               instead of under SCHED_IDLE: see the top of tools/bench/hostile.c\n",
            S_PEERS_MAX);
}

static int
s_count_arg(const char *opt, const char *arg, size_t max, size_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = arg ? strtoull(arg, &end, 10) : 0;
    if (!arg || errno || !end || *end || arg[0] == '-' || v == 0 || v > max) {
        fprintf(stderr, "bench_hostile: %s wants a count from 1 to %zu\n", opt, max);
        return -1;
    }
    *out = (size_t)v;
    return 0;
}

/*  Returns 0, 1 for help, -1 for a usage error. */
static int
s_parse(int argc, char **argv, opts_t *o)
{
    bool quick = false;
    for (int i = 1; i < argc; i++) {
        quick = quick || strcmp(argv[i], "--quick") == 0;
    }
    memset(o, 0, sizeof *o);
    o->quick = quick;
    o->seconds = quick ? 5 : 60;
    o->peers = 10;
    o->reps = quick ? 200 : 2000;
    o->nice = S_SCHED_IDLE;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        size_t n = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return 1;
        } else if (strcmp(a, "--quick") == 0) {
            continue;
        } else if (strcmp(a, "--seconds") == 0) {
            if (s_count_arg(a, v, S_SECONDS_MAX, &n) != 0) {
                return -1;
            }
            o->seconds = (unsigned)n;
            i++;
        } else if (strcmp(a, "--peers") == 0) {
            if (s_count_arg(a, v, S_PEERS_MAX, &o->peers) != 0) {
                return -1;
            }
            i++;
        } else if (strcmp(a, "--only") == 0) {
            if (!v || !v[0] || v[0] == '-') {
                fprintf(stderr, "bench_hostile: --only wants a hostile_peer MODE\n");
                return -1;
            }
            o->only = v;
            i++;
        } else if (strcmp(a, "--nice") == 0) {
            if (v && strcmp(v, "0") == 0) {
                o->nice = 0;
            } else if (s_count_arg(a, v, 19, &n) != 0) {
                return -1;
            } else {
                o->nice = (int)n;
            }
            i++;
        } else if (strcmp(a, "--reps") == 0) {
            if (s_count_arg(a, v, 1000000, &o->reps) != 0) {
                return -1;
            }
            i++;
        } else {
            fprintf(stderr, "bench_hostile: unknown option '%s'\n", a);
            return -1;
        }
    }
    //  Two windows, their drains, start-up, the CPU part; the backstop only
    //  ends a run that hangs.
    o->budget_s = 2 * o->seconds + 2 * S_DRAIN_MS / 1000 + 180 + (unsigned)(o->reps / 100);
    return 0;
}

/* ---- report ---- */

static void
s_report_window(const char *label, const s_window_t *w)
{
    printf("  %-16s p50 %8.0f us  p99 %8.0f us  delivered %zu/%zu", label, w->l.p50_us, w->l.p99_us,
           w->delivered, w->sent);
    if (w->late || w->refused || w->duplicates) {
        printf("  (%zu after %d s, %zu refused by B, %zu twice)", w->late, S_MSG_MS / 1000,
               w->refused, w->duplicates);
    }
    printf("\n");
}

static json_int_t
s_status_int(const s_snap_t *s, const char *group, const char *key)
{
    json_t *g = group ? json_object_get(s->status, group) : s->status;
    return json_integer_value(json_object_get(g, key));
}

static void
s_report_state(const opts_t *o, const s_snap_t *s0, const s_snap_t *s1, const s_snap_t *s2)
{
    printf("\nvictim A             %14s %14s %14s\n", "start", "after baseline", "after attack");
    printf("  %-18s %11ld kB %11ld kB %11ld kB\n", "peak RSS (VmHWM)", s0->hwm_kb, s1->hwm_kb,
           s2->hwm_kb);
    printf("  %-18s %11ld kB %11ld kB %11ld kB\n", "RSS now (VmRSS)", s0->rss_kb, s1->rss_kb,
           s2->rss_kb);
    printf("  %-18s %12.1f s %12.1f s %12.1f s\n", "CPU used (u+s)", s0->cpu_s, s1->cpu_s,
           s2->cpu_s);
    printf("  %-18s %11lld kB %11lld kB %11lld kB\n", "parley.db", s0->db / 1024, s1->db / 1024,
           s2->db / 1024);
    printf("  %-18s %11lld kB %11lld kB %11lld kB\n", "parley.db-wal", s0->wal / 1024,
           s1->wal / 1024, s2->wal / 1024);
    printf("  %-18s %11lld kB %11lld kB %11lld kB\n", "status log.db_bytes",
           (long long)s_status_int(s0, "log", "db_bytes") / 1024,
           (long long)s_status_int(s1, "log", "db_bytes") / 1024,
           (long long)s_status_int(s2, "log", "db_bytes") / 1024);
    printf("  %-18s %14lld %14lld %14lld\n", "envelopes (log)",
           (long long)s_status_int(s0, "log", "envelopes"),
           (long long)s_status_int(s1, "log", "envelopes"),
           (long long)s_status_int(s2, "log", "envelopes"));
    printf("  %-18s %14lld %14lld %14lld\n", "peers known",
           (long long)s_status_int(s0, "peers", "known"),
           (long long)s_status_int(s1, "peers", "known"),
           (long long)s_status_int(s2, "peers", "known"));
    printf("  growth under attack: database files %+lld kB, log.db_bytes %+lld kB, peak RSS "
           "%+ld kB\n",
           (s2->db + s2->wal - s1->db - s1->wal) / 1024,
           (long long)(s_status_int(s2, "log", "db_bytes") - s_status_int(s1, "log", "db_bytes"))
               / 1024,
           s2->hwm_kb - s1->hwm_kb);
    char how[32];
    if (o->nice == S_SCHED_IDLE) {
        snprintf(how, sizeof how, "%s", "under SCHED_IDLE");
    } else {
        snprintf(how, sizeof how, "at nice %d", o->nice);
    }
    printf("  A's CPU: %.1f s in the baseline window, %.1f s in the attack window (both\n"
           "  with their drains; the hostile peers run on the same cores %s)\n",
           s1->cpu_s - s0->cpu_s, s2->cpu_s - s1->cpu_s, how);
    printf("  counters of A's status that moved (rejected.*, then sync.*):\n");
    const char *groups[2] = { "rejected", "sync" };
    for (size_t g = 0; g < 2; g++) {
        const char *key;
        json_t *value;
        json_object_foreach(json_object_get(s2->status, groups[g]), key, value)
        {
            json_int_t before = s_status_int(s1, groups[g], key);
            if (json_is_integer(value) && json_integer_value(value) != before) {
                printf("    %s.%-22s %10lld -> %lld\n", groups[g], key, (long long)before,
                       (long long)json_integer_value(value));
            }
        }
    }
}

static void
s_report_attacks(const s_attackers_t *at)
{
    printf("\nattack modes (hostile_peer runs: started; ran to their end; could not connect\n"
           "or send; ended by us when their time was up; other ends):\n");
    for (size_t i = 0; i < at->rows; i++) {
        const s_attack_stat_t *st = &at->stats[i];
        if (st->skipped) {
            printf("  %-14s skipped: this hostile_peer does not know it\n", at->table[i].mode);
        } else if (st->runs == 0) {
            printf("  %-14s not reached in this window\n", at->table[i].mode);
        } else {
            printf("  %-14s %4zu runs %4zu done %4zu failed %4zu ended %4zu other\n",
                   at->table[i].mode, st->runs, st->done, st->failed, st->ended, st->other);
        }
    }
}

/*  0 when the honest pair lost nothing under attack. */
static int
s_report(const opts_t *o, const s_window_t *base, const s_window_t *atk)
{
    printf("\nParley hostile-load bench%s: victim A and honest B (parleyd, CURVE over tcp\n"
           "loopback), %ld CPUs online; %u-byte DMs B -> A one at a time, %u s per window;\n"
           "%zu hostile peers attack A in the second window\n\n",
           o->quick ? " (quick)" : "", sysconf(_SC_NPROCESSORS_ONLN), S_TEXT_LEN, o->seconds,
           o->peers);
    s_report_window("baseline", base);
    s_report_window("under attack", atk);
    double ratio = base->l.p50_us > 0 ? atk->l.p50_us / base->l.p50_us : 0;
    size_t lost = atk->sent - atk->delivered;
    size_t lost_base = base->sent - base->delivered;
    printf("  p50 under attack / baseline: %.2fx (goal <= 2x: %s)\n", ratio,
           ratio <= 2.0 ? "met" : "MISSED");
    printf("  lost under attack: %zu (goal 0: %s); lost in the baseline: %zu\n", lost,
           lost == 0 ? "met" : "MISSED", lost_base);
    return lost == 0 && lost_base == 0 ? 0 : -1;
}

/* ---- the run ---- */

/*  A's first endpoint, only if it is on loopback: the peers attack nothing
 *  else. */
static int
s_loopback_endpoint(const s_snap_t *s, char *out, size_t cap)
{
    const char *ep = json_string_value(json_array_get(json_object_get(s->status, "endpoints"), 0));
    const char *lo = "tcp://127.0.0.1:";
    int n = ep && strncmp(ep, lo, strlen(lo)) == 0 ? snprintf(out, cap, "%s", ep) : -1;
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "bench_hostile: A's endpoint is not on 127.0.0.1: no attack\n");
        return -1;
    }
    return 0;
}

/*  The attack window: the peers' thread and the honest DMs together; the
 *  peers are ended before the late DMs are waited for. */
static int
s_attack(nodes_proc_t *a, nodes_proc_t *b, client_t *sub, s_attackers_t *at, s_window_t *w,
         unsigned seconds)
{
    pthread_t th;
    atomic_store(&at->stop, false);
    if (pthread_create(&th, NULL, s_attackers_run, at) != 0) {
        fprintf(stderr, "bench_hostile: cannot start the attackers' thread\n");
        return -1;
    }
    int rc = s_window(a, b, sub, w, seconds);
    atomic_store(&at->stop, true);
    pthread_join(th, NULL);
    if (at->rc != 0) {
        fprintf(stderr, "bench_hostile: the hostile peers could not be run\n");
        rc = -1;
    }
    return rc == 0 ? s_drain(sub, w) : -1;
}

typedef struct {
    const char *parleyd;
    const s_place_t *where; /* A, B */
    s_attackers_t *at;
    s_window_t base;
    s_window_t atk;
    s_snap_t snap[3]; /* start, after baseline, after attack */
} s_run_t;

/*  Starts A, then B seeded with A; subscribes on A; waits for the link. */
static int
s_bring_up(s_run_t *r, nodes_proc_t **a, nodes_proc_t **b, client_t **sub)
{
    char seed[512];
    *a = nodes_start_seeded("A", r->parleyd, r->where[0].home, r->where[0].log, NULL, S_START_MS);
    if (!*a || nodes_seed(*a, S_CALL_MS, seed, sizeof seed) != 0) {
        return -1;
    }
    *b = nodes_start_seeded("B", r->parleyd, r->where[1].home, r->where[1].log, seed, S_START_MS);
    if (!*b) {
        return -1;
    }
    if (client_connect(nodes_home(*a), sub) != PARLEY_OK
        || client_send(*sub, "subscribe", NULL) != PARLEY_OK
        || nodes_response(*sub, "subscribe", S_CALL_MS, NULL) != 0) {
        fprintf(stderr, "bench_hostile: cannot subscribe to A\n");
        return -1;
    }
    return nodes_wait_link(*a, *b, S_LINK_MS);
}

static int
s_nodes(const opts_t *o, s_run_t *r)
{
    nodes_proc_t *a = NULL;
    nodes_proc_t *b = NULL;
    client_t *sub = NULL;
    char endpoint[256];
    int rc = s_bring_up(r, &a, &b, &sub);
    if (rc == 0) {
        rc = s_warmup(a, b, sub);
    }
    if (rc == 0) {
        rc = s_snap(a, &r->snap[0]);
    }
    if (rc == 0) {
        printf("bench_hostile: baseline, %u s...\n", o->seconds);
        fflush(stdout);
        rc = s_window(a, b, sub, &r->base, o->seconds);
    }
    if (rc == 0) {
        rc = s_drain(sub, &r->base);
    }
    if (rc == 0) {
        rc = s_snap(a, &r->snap[1]);
    }
    if (rc == 0) {
        rc = s_loopback_endpoint(&r->snap[1], endpoint, sizeof endpoint);
    }
    if (rc == 0) {
        printf("bench_hostile: under attack by %zu hostile peers, %u s...\n", o->peers, o->seconds);
        fflush(stdout);
        r->at->endpoint = endpoint;
        r->at->node_id = nodes_id(a);
        rc = s_attack(a, b, sub, r->at, &r->atk, o->seconds);
    }
    if (rc == 0) {
        rc = s_snap(a, &r->snap[2]);
    }
    if (rc != 0) {
        if (a) {
            nodes_show_log(a);
        }
        if (b) {
            nodes_show_log(b);
        }
    }
    client_destroy(&sub);
    nodes_destroy(&b);
    nodes_destroy(&a);
    return rc;
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
    char parleyd[PATH_MAX];
    char hostile[PATH_MAX];
    if (sodium_init() < 0 || nodes_find_sibling(argv[0], "parleyd", parleyd, sizeof parleyd) != 0
        || nodes_find_sibling(argv[0], "hostile_peer", hostile, sizeof hostile) != 0) {
        return 1;
    }
    static s_attackers_t at; // large (the peers' log paths): not on the stack
    at.prog = hostile;
    at.peers = o.peers;
    at.nice = o.nice;
    at.window = o.seconds;
    s_attack_t only = { o.only, 60 };
    at.table = o.only ? &only : s_attacks;
    at.rows = o.only ? 1 : S_N_ATTACKS;
    char root[64]; // "/tmp/parley-hbench.XXXXXX": short, so every path built on it fits
    s_place_t where[2];
    if (s_make_dirs(root, sizeof root, where, &at) != 0) {
        fprintf(stderr, "bench_hostile: cannot create temporary directories under /tmp\n");
        nodes_rm_tree(root);
        return 1;
    }
    s_arm_backstop(o.budget_s, root);
    s_run_t r;
    memset(&r, 0, sizeof r);
    r.parleyd = parleyd;
    r.where = where;
    r.at = &at;
    //  The CPU part first, while no node runs, so it has the machine alone.
    printf("bench_hostile: ingest CPU per envelope kind...\n");
    fflush(stdout);
    int rc = s_cpu(&o);
    if (rc == 0
        && (s_window_init(&r.base, "base", o.seconds) != 0
            || s_window_init(&r.atk, "atk", o.seconds) != 0)) {
        fprintf(stderr, "bench_hostile: out of memory\n");
        rc = -1;
    }
    if (rc == 0) {
        rc = s_nodes(&o, &r);
    }
    alarm(0);
    nodes_rm_tree(root);
    if (rc == 0) {
        rc = s_report(&o, &r.base, &r.atk);
        s_report_state(&o, &r.snap[0], &r.snap[1], &r.snap[2]);
        s_report_attacks(&at);
    }
    for (size_t i = 0; i < 3; i++) {
        json_decref(r.snap[i].status);
    }
    s_window_free(&r.base);
    s_window_free(&r.atk);
    if (rc != 0) {
        fprintf(stderr, "bench_hostile: FAIL\n");
        return 1;
    }
    return 0;
}
