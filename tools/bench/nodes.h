/*  tools/bench/nodes.h — the parleyd processes of a benchmark (bench,
 *  bench_sync, bench_hostile, bench_network, bench_channel, bench_idle):
 *  start one on a home with the given options, wait until its API answers,
 *  read its id, call its API, stop it by its PID; a group that tracks the
 *  nodes a benchmark runs, so that one call stops them all.
 *
 *  Every node is a child of the benchmark, started here and ended here by the
 *  PID fork() returned (SIGTERM, then SIGKILL after a grace period); it gets
 *  PR_SET_PDEATHSIG, so it dies with the benchmark whatever way that goes.
 *  A PID is never signalled after it has been reaped. nodes_kill_all() is for
 *  a signal handler: it kills every node still running. One thread drives
 *  the nodes; at most NODES_MAX run at once.
 */
#ifndef PARLEY_TOOLS_BENCH_NODES_H
#define PARLEY_TOOLS_BENCH_NODES_H

#include "../../node/client.h"
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define NODES_MAX 256       /* nodes running at once (bench_idle runs 200) */
#define NODES_ARGS_MAX 24   /* options after --home HOME */
#define NODES_STOP_MS 10000 /* grace between SIGTERM and SIGKILL in nodes_destroy */
#define NODES_LOG_LINES 20  /* lines nodes_show_log prints */
#define NODES_RT_MAX 256    /* samples nodes_status_rt takes at most */

typedef struct _nodes_proc_t nodes_proc_t;

/*  Monotonic seconds; wall-clock milliseconds (to compare with the ts_ms
 *  nodes report); a sleep that resumes after signals. */
double nodes_now(void);
uint64_t nodes_wall_ms(void);
void nodes_sleep_ms(long ms);
/*  The integer at j.a(.b(.c)) (b, c may be NULL), -1 when absent. */
long long nodes_json_int(const json_t *j, const char *a, const char *b, const char *c);

/*  Starts `parleyd --home HOME ARGS...` (args: NULL-terminated, borrowed)
 *  with stdout and stderr appended to LOG; NAME labels its messages. Does not
 *  wait for it. Returns an owned handle, or NULL with a message printed. */
nodes_proc_t *nodes_spawn(const char *name, const char *parleyd, const char *home, const char *log,
                          const char *const *args);
/*  Waits until the node's API accepts a connection, then reads its id; fails
 *  (message printed) if it exits first or takes longer than timeout_ms. */
int nodes_wait_api(nodes_proc_t *self, int timeout_ms) PARLEY_WUR;
/*  nodes_spawn, then nodes_wait_api. On failure prints the node's log, stops
 *  it and returns NULL; else an owned handle. */
nodes_proc_t *nodes_start(const char *name, const char *parleyd, const char *home, const char *log,
                          const char *const *args, int timeout_ms);
/*  SIGTERM, SIGKILL after grace_ms, reaped; closes the API connection. 0 when
 *  the node exited 0 (now or earlier), -1 (with a note printed) otherwise. */
int nodes_stop(nodes_proc_t *self, int grace_ms);
/*  Stops the node (NODES_STOP_MS) if it still runs, frees it. NULL-safe. */
void nodes_destroy(nodes_proc_t **self_p);
/*  Async-signal-safe: SIGKILL to every node still running (nothing reaped). */
void nodes_kill_all(void);

/*  Still running? Reaps it, with a message, if it has exited. */
bool nodes_alive(nodes_proc_t *self);
const char *nodes_name(const nodes_proc_t *self);
const char *nodes_home(const nodes_proc_t *self);
/*  Its node id; "" until nodes_wait_api succeeded. */
const char *nodes_id(const nodes_proc_t *self);
/*  Its PID, 0 once it has been reaped. */
pid_t nodes_pid(const nodes_proc_t *self);
/*  Its request connection (borrowed; NULL until nodes_wait_api succeeded). */
client_t *nodes_api(nodes_proc_t *self);

/*  One request on the node's connection (steals params; may be NULL) and
 *  its response within timeout_ms. *result (if result is not NULL) is owned. */
int nodes_call(nodes_proc_t *self, const char *method, json_t *params, int timeout_ms,
               json_t **result) PARLEY_WUR;
/*  nodes_call for its result: owned by the caller, or NULL (message
 *  printed) when the call failed. */
json_t *nodes_ask(nodes_proc_t *self, const char *method, json_t *params, int timeout_ms);
/*  Reads from c until a response (a line with an "id") arrives, skipping
 *  notifications; a JSON-RPC error is printed and fails. For pipelined
 *  requests; WHAT labels the messages. *result (if wanted) is owned. */
int nodes_response(client_t *c, const char *what, int timeout_ms, json_t **result) PARLEY_WUR;
/*  "ENDPOINT#ID" of the running node, for another node's --seed. */
int nodes_seed(nodes_proc_t *self, int timeout_ms, char *out, size_t cap) PARLEY_WUR;
/*  Prints the last NODES_LOG_LINES lines of the node's log to stderr. */
void nodes_show_log(const nodes_proc_t *self);

/*  A pair of nodes joined by a seed: NAME's node on HOME (log LOG),
 *  listening on loopback with discovery off, so nothing is announced
 *  beyond loopback and no other node on this host joins in; SEED
 *  ("ENDPOINT#ID", or NULL) is the node it dials. nodes_start otherwise. */
nodes_proc_t *nodes_start_seeded(const char *name, const char *parleyd, const char *home,
                                 const char *log, const char *seed, int timeout_ms);
/*  Whether self's `peers` shows peer_id online (timeout_ms for the call). */
bool nodes_sees_online(nodes_proc_t *self, const char *peer_id, int timeout_ms);
/*  Waits until a and b each see the other online; fails (message printed)
 *  after timeout_ms or when one exits. */
int nodes_wait_link(nodes_proc_t *a, nodes_proc_t *b, int timeout_ms) PARLEY_WUR;
/*  Milliseconds until end (nodes_now() seconds), never below 0. */
int nodes_ms_left(double end);

/*  The backstop of a benchmark: on SIGALRM, SIGINT or SIGTERM every node
 *  still running is killed (nodes_kill_all), the message last given to
 *  nodes_backstop_msg is written to stderr, and the process exits (3 after
 *  the alarm, 130 otherwise). nodes_backstop installs the handler and arms
 *  alarm(seconds) (0: no alarm); nodes_backstop_msg copies msg (cut to
 *  fit) for the handler to write. */
void nodes_backstop(unsigned seconds);
void nodes_backstop_msg(const char *msg);

/*  utime + stime of pid so far, in clock ticks (sysconf(_SC_CLK_TCK) a
 *  second): fields 14 and 15 of /proc/PID/stat. -1 (message printed) when
 *  it cannot be read. */
int nodes_cpu_ticks(pid_t pid, unsigned long long *ticks) PARLEY_WUR;

/*  The median round trip, in seconds, of n bare `status` calls on self
 *  (1 <= n <= NODES_RT_MAX), each given timeout_ms; the API floor. */
double nodes_status_rt(nodes_proc_t *self, size_t n, int timeout_ms);

/*  The nodes a benchmark runs, tracked so that nodes_group_stop_all stops
 *  every one still running (at the end, or on a failure). A zeroed group is
 *  empty; it owns the nodes in it. At most NODES_MAX at once. */
typedef struct {
    nodes_proc_t *node[NODES_MAX]; /* owned; NULL for a free slot */
} nodes_group_t;

/*  Starts node NAME on home ROOT/NAME (made, mode 0700, if missing) with
 *  its log in ROOT/NAME/parleyd.log and args as nodes_start takes them,
 *  and tracks it in self. Returns the node (borrowed: self owns it until
 *  nodes_group_stop), or NULL (message printed) when it did not come up. */
nodes_proc_t *nodes_group_start(nodes_group_t *self, const char *root, const char *name,
                                const char *parleyd, const char *const *args, int timeout_ms);
/*  As nodes_group_start, but does not wait: the node is spawned and tracked
 *  (borrowed, as there), and the caller runs nodes_wait_api on it: many
 *  nodes then start side by side rather than one after another. NULL
 *  (message printed) when it could not be spawned. */
nodes_proc_t *nodes_group_spawn(nodes_group_t *self, const char *root, const char *name,
                                const char *parleyd, const char *const *args);
/*  Forgets *node_p in self, then stops and frees it (nodes_destroy);
 *  *node_p becomes NULL. NULL-safe. */
void nodes_group_stop(nodes_group_t *self, nodes_proc_t **node_p);
/*  Stops and frees every node in self; self is empty afterwards. Every
 *  node gets SIGTERM first, so they shut down side by side and the whole
 *  stop takes about as long as the slowest one, not the sum. */
void nodes_group_stop_all(nodes_group_t *self);
/*  ROOT/HOME, or ROOT/HOME/FILE when file is not NULL, into out; fails
 *  (message printed) when it does not fit in cap. */
int nodes_path(char *out, size_t cap, const char *root, const char *home,
               const char *file) PARLEY_WUR;

/*  Latency figures in µs. */
typedef struct {
    double p50_us;
    double p99_us;
} nodes_lat_t;
/*  Nearest-rank percentiles of n samples in seconds. Sorts them. */
nodes_lat_t nodes_percentiles(double *samples, size_t n);
/*  The median of the n values v (n > 0): v[n / 2] once v is sorted in
 *  ascending order, as it is on return (v[0] the least, v[n - 1] the
 *  greatest). */
double nodes_median(double *v, size_t n);

/*  The executable NAME next to this program (through /proc/self/exe, so it
 *  also works when found on PATH, else next to argv0) into out; fails with
 *  a message. */
int nodes_find_sibling(const char *argv0, const char *name, char *out, size_t cap) PARLEY_WUR;
/*  Removes the tree at root ("" does nothing); says so when some is left. */
void nodes_rm_tree(const char *root);

#endif
