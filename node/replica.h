/*  node/replica.h — replication: which scopes this node holds, reconciliation
 *  rounds with each peer, and the envelopes that flow because of them.
 *
 *  A member node replicates the DM scopes it is a party to; a relay
 *  (--relay) every scope it hears of. The log is the truth: eager pushes
 *  carry new envelopes for latency, and rounds of range-based set
 *  reconciliation (proto/sync.h, SPEC §15) repair whatever the wire lost.
 *  Rounds start on link-up and every sync_ms (jittered) from the side with
 *  the smaller key; what a round finds missing is streamed from the store in
 *  bounded batches after each commit, so a slow peer never stalls others.
 *
 *  Part of the node's single thread; see node_internal.h.
 */
#ifndef PARLEY_NODE_REPLICA_H
#define PARLEY_NODE_REPLICA_H

#include "../proto/envelope.h"
#include "../proto/frame.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct _node_t node_t;
typedef struct link link_t;
typedef struct replica replica_t;

/*  Loads the scope table (authors per scope) from the store. */
int replica_new(node_t *node, replica_t **out) PARLEY_WUR;
void replica_destroy(replica_t **self_p);

/*  Whether the node takes env (from link, NULL for our own) into its log. */
bool replica_accepts(node_t *node, const envelope_t *env);
/*  A new envelope is in the log (this transaction): index it and queue an
 *  eager push to every other peer that replicates its scope. */
void replica_stored(node_t *node, link_t *from, const envelope_t *env, const uint8_t id[32]);
/*  Our DM scope with author, cached (an X25519 the first time); false for
 *  ourselves or a key that is no valid point. */
bool replica_dm_scope(node_t *node, const uint8_t author[32], uint8_t scope[32]);
/*  A scope we are a party to (a DM scope with a known peer). */
void replica_mine(node_t *node, const uint8_t scope[32]);

void replica_on_reconcile(node_t *node, link_t *link, const frame_t *f);
void replica_on_want(node_t *node, link_t *link, const frame_t *f);
void replica_link_up(node_t *node, link_t *link);
void replica_link_down(node_t *node, link_t *link);
void replica_link_free(link_t *link);

/*  Timers: rounds due, expiry. Inside the iteration's transaction. */
void replica_tick(node_t *node, uint64_t now);
/*  After commit: streams what peers lack, in bounded batches. */
void replica_pump(node_t *node);
/*  Whether output is still waiting (the loop then polls sooner). */
bool replica_backlog(node_t *node);
/*  A transaction was rolled back: sets may hold items that are not stored. */
void replica_rollback(node_t *node);
/*  Frames a link sent that broke the rules: after enough, it is banned. */
void replica_strike(node_t *node, link_t *link, const char *why, unsigned weight);
bool replica_banned(node_t *node, const uint8_t x_pk[32]);

json_t *replica_status(node_t *node);

#endif
