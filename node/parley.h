/*  node/parley.h — libparley: the node as an embeddable actor, like zyre_t.
 *
 *      parley_t *p = parley_new(&cfg, &err, msg, sizeof msg);  // opens the home
 *      parley_start(p);                                        // its loop, in its thread
 *      ... talk to it through its API socket (parley_api_path, client.h) ...
 *      parley_destroy(&p);                                     // stops, commits, closes
 *
 *  parley_new does everything that can fail for a user-facing reason (lock,
 *  identity, database, listening socket) in the caller's thread and says why;
 *  parley_start hands the node to a CZMQ actor whose thread owns it from then
 *  on (commands over the actor's inproc pipe). Several nodes run in one
 *  process, each with its own home, ZeroMQ context and thread; the clock is
 *  injectable through node_config_t for tests.
 */
#ifndef PARLEY_NODE_PARLEY_H
#define PARLEY_NODE_PARLEY_H

#include "node.h"
#include <stdbool.h>
#include <stddef.h>

typedef struct _parley_t parley_t;

/*  Opens a node. NULL on failure, with *err a PARLEY_ERR_* code and errmsg
 *  one line for the user. */
parley_t *parley_new(const node_config_t *cfg, int *err, char *errmsg, size_t cap);
/*  Starts its loop in a thread of its own. */
int parley_start(parley_t *self) PARLEY_WUR;
/*  Stops the loop (after its last commit, BYE to peers), closes the node.
 *  NULL-safe. Returns through *status (may be NULL) how the loop ended. */
void parley_destroy_status(parley_t **self_p, int *status);
void parley_destroy(parley_t **self_p);
/*  Valid while the node lives. */
const char *parley_endpoint(const parley_t *self);
const char *parley_id(const parley_t *self);
const char *parley_api_path(const parley_t *self);

/*  Tests only: the next COUNT calls of a store operation fail as a full disk
 *  would (WHERE is a store_fault_t, store/store.h); through the actor's pipe
 *  once started, so the fault lands between two iterations. */
void parley_fault(parley_t *self, int where, int count);

#endif
