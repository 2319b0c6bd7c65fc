/*  node/node.h — the Parley node: one identity, its log, its links, its API.
 *
 *  node_new() opens the home (lock, identity, store), binds the CURVE ROUTER
 *  and the local API socket, and dials every seed; node_run() is the event
 *  loop (one thread owns everything: ZeroMQ sockets, SQLite, API clients);
 *  node_stop() may be called from a signal handler and makes node_run()
 *  return after the current iteration has committed. node_destroy() closes
 *  the database cleanly. Embedders use parley.h, which runs this loop in a
 *  thread of its own.
 */
#ifndef PARLEY_NODE_NODE_H
#define PARLEY_NODE_NODE_H

#include "../proto/errors.h"
#include "config.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _node_t node_t;

/*  Creates a node. On failure returns NULL, *err gets a PARLEY_ERR_* code and
 *  errmsg one line for the user. */
node_t *node_new(const node_config_t *cfg, int *err, char *errmsg, size_t cap);
/*  Runs until node_stop(). Returns 0, or an error that stopped the node. */
int node_run(node_t *self);
/*  Runs until node_stop() or "$TERM" on pipe (a CZMQ actor pipe, zsock_t),
 *  which also answers "ENDPOINT", "ID" and "API" with one string each.
 *  *term tells whether it ended on "$TERM" (else the caller still owes the
 *  pipe's owner a wait for it). */
int node_run_pipe(node_t *self, void *pipe, bool *term);
/*  Async-signal-safe. */
void node_stop(node_t *self);
void node_destroy(node_t **self_p);
/*  The endpoint the ROUTER is bound to (valid while the node lives). */
const char *node_endpoint(const node_t *self);
/*  The node's id, base32 (valid while the node lives). */
const char *node_id(const node_t *self);
/*  The path of its API socket (valid while the node lives). */
const char *node_api_path(const node_t *self);

/*  Tests only: the next COUNT calls of a store operation fail as a full disk
 *  would (WHERE is a store_fault_t, store.h). Call from the node's thread, or
 *  before node_run. */
void node_fault(node_t *self, int where, int count);

void node_test(bool verbose);

#endif
