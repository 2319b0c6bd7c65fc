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
 *  Its narrow interface to the rest of the engine: it sends through the link
 *  table (links_send), asks the session for DM scopes and prekey bundles,
 *  strikes and bans through links_strike and core->ban, and queues eager
 *  pushes on the after-commit queue. Its per-link state lives in the link's
 *  LINK_SLOT_REPLICA and lasts one connection.
 */
#ifndef PARLEY_NODE_REPLICA_H
#define PARLEY_NODE_REPLICA_H

#include "../proto/envelope.h"
#include "../proto/frame.h"
#include "core.h"
#include "link.h"
#include "session.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct replica replica_t;

/*  Loads the scope table (authors per scope) from the store. NULL and *err
 *  on failure. */
replica_t *replica_new(core_t *core, links_t *links, session_t *session, int *err);
void replica_destroy(replica_t **self_p);

/*  Whether the node takes env (from a peer) into its log. */
bool replica_accepts(replica_t *self, const envelope_t *env);
/*  Whether an envelope from link that is not ours may go into the log as
 *  far as its scope goes: yes for a scope we hold; a new one only while
 *  link made us take up fewer than REPLICA_NEW_SCOPES_PER_MIN this minute
 *  and we hold fewer than REPLICA_SCOPES_MAX. Refused ones are counted
 *  (scope_cap); a member link (not a relay) is struck for each. */
#define REPLICA_NEW_SCOPES_PER_MIN 1024u
#define REPLICA_NEW_WINDOW_MS 60000u
#define REPLICA_SCOPES_MAX 65536u
#define REPLICA_NEW_SCOPE_STRIKE 8u
bool replica_admits(replica_t *self, link_t *link, const envelope_t *env);
/*  Whether env is addressed to us: a DM in our scope with its author. */
bool replica_ours(replica_t *self, const envelope_t *env);
/*  A new envelope is in the log (this transaction): index it and queue an
 *  eager push (after the commit) to every other online peer that
 *  replicates its scope. from is the link it came on, NULL for our own. */
void replica_stored(replica_t *self, link_t *from, const envelope_t *env, const uint8_t id[32]);
/*  In a private network (id; NULL: open mode): its roster's scope is ours
 *  and every member link replicates it, and a member answers reconciliation
 *  for a scope only to a party to it or a designated relay. */
void replica_set_network(replica_t *self, const uint8_t id[32]);
/*  Who else is a party to a scope: fn(arg, scope, pk) says whether pk is
 *  (REPLICA_PARTY: a channel's members, channel.h), and whether the scope's
 *  log names pk, so that pk takes it up when offered even before it knows
 *  it (REPLICA_NAMED: a channel's control log, to a member who may have
 *  missed the push of its ADD). Pushes and, in a network, answers for a
 *  scope go to parties. */
#define REPLICA_PARTY 1u
#define REPLICA_NAMED 2u
typedef unsigned(replica_party_fn)(const void *arg, const uint8_t scope[32], const uint8_t pk[32]);
void replica_set_party(replica_t *self, replica_party_fn *fn, const void *arg);
/*  A scope we are a party to (a DM scope with a known peer). */
void replica_mine(replica_t *self, const uint8_t scope[32]);

void replica_on_reconcile(replica_t *self, link_t *link, const frame_t *f);
void replica_on_want(replica_t *self, link_t *link, const frame_t *f);
/*  The link came up, or has a new connection: an exchange in flight may
 *  have been lost with the old one, so a round opens now from scratch. */
void replica_link_up(replica_t *self, link_t *link);
void replica_link_down(replica_t *self, link_t *link);
/*  A round with link is due now (unless one runs): a scope changed hands. */
void replica_sync_soon(replica_t *self, link_t *link);
/*  The link goes: its slot is freed. */
void replica_link_free(replica_t *self, link_t *link);

/*  Timers: rounds due, expiry. Inside the iteration's transaction. */
void replica_tick(replica_t *self, uint64_t now);
/*  After commit: streams what peers lack, in bounded batches. */
void replica_pump(replica_t *self);
/*  Whether output is still waiting (the loop then polls sooner). */
bool replica_backlog(const replica_t *self);
/*  A transaction was rolled back: sets may hold items that are not stored. */
void replica_rollback(replica_t *self);

/*  Reconciliation rounds ended since start, with any peer. */
uint64_t replica_rounds_ended(const replica_t *self);
json_t *replica_status(const replica_t *self);

#endif
