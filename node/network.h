/*  node/network.h — the private network this node is in (proto/SPEC.md
 *  §17–19): its roster, who may connect and post, the events this node
 *  authors, invites, and the network secret.
 *
 *  The roster is the envelopes of kind NET in the network's scope, held in
 *  the log and replicated like any scope (every member replicates it with
 *  every other); this class folds them (proto/roster.h) and answers the
 *  questions every other class asks:
 *
 *      ZAP        network_admits_x: a member's CURVE key, or a live invite's
 *                 (that connection may only run the join exchange)
 *      links      network_allows: only members' links are made at all
 *      ingest     network_accepts: a DM only from a member; a network event
 *                 that decodes, from a key the roster knows (or a JOIN with a
 *                 valid proof)
 *      relays     network_relay_ok: only designated relays get others'
 *                 envelopes and scope hints
 *
 *  In open mode (no network) every answer is yes, as before.
 *
 *  Events from peers are added as they are stored and folded once per
 *  frame (network_settle), so a roster of thousands of events syncs without
 *  a fold per event. A fold that changes the state tells the node (the
 *  changed callback): keys that stopped being members lose their links at
 *  once, and every new log entry becomes a "network" notification.
 *  A rolled-back iteration may have added events that are not stored: the
 *  roster is then read again from the store (network_rollback).
 */
#ifndef PARLEY_NODE_NETWORK_H
#define PARLEY_NODE_NETWORK_H

#include "../proto/envelope.h"
#include "../proto/frame.h"
#include "../proto/invite.h"
#include "../proto/roster.h"
#include "core.h"
#include "link.h"
#include "replica.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct network network_t;

/*  Network events a key that never was an admin may have in the roster. */
#define NETWORK_EVENTS_PER_MEMBER 256u

/*  What a fold changed, for the node. */
typedef struct {
    const uint8_t (*gone)[32]; /* keys that were members and are not now */
    size_t n_gone;
    const uint8_t (*added)[32]; /* keys that are members now and were not */
    size_t n_added;
    bool self_gone;    /* this node is no longer a member (removed, or left) */
    bool keys_changed; /* the network secrets changed (discovery re-keys) */
} network_change_t;
typedef void(network_changed_fn)(void *arg, const network_change_t *change);

/*  Loads the network row and, for a member, folds the roster from the log.
 *  NULL and *err on failure. */
network_t *network_new(core_t *core, links_t *links, replica_t *replica, network_changed_fn *fn,
                       void *arg, int *err);
void network_destroy(network_t **self_p);

/*  In a network (founded or joined, not left). */
bool network_active(const network_t *self);
/*  Its id, or NULL in open mode. */
const uint8_t *network_id(const network_t *self);
/*  Whether pk may have a link, send frames, and have its envelopes, bundles
 *  and records taken: open mode, ourselves, or a current member. */
bool network_allows(const network_t *self, const uint8_t pk[32]);
/*  ZAP: a member's CURVE key (or any key in open mode); a live invite's key
 *  is admitted too, and *invite says so (it may only run the join exchange). */
bool network_admits_x(network_t *self, const uint8_t x_pk[32], bool *invite);
/*  Whether a link's claim to be a relay stands: open mode, or designated. */
bool network_relay_ok(const network_t *self, const uint8_t pk[32]);

/*  Ingest: whether env (verified) may go into the log. For kind NET: PARLEY_OK,
 *  or _NOTFOUND (not our network's scope), _MALFORMED/_UNSUPPORTED (a body
 *  that does not decode), _LIMIT (roster full), _AUTH (an author the roster
 *  does not know, a JOIN whose proof fails). For a DM: _AUTH when its author
 *  is not a member. */
int network_accepts(network_t *self, const envelope_t *env) PARLEY_WUR;
/*  A network event is in the log (this transaction): held for the next fold. */
void network_stored(network_t *self, const envelope_t *env, const uint8_t id[32]);
/*  Folds what was stored since the last fold, and tells the node. */
void network_settle(network_t *self);
/*  The iteration rolled back: the roster is read again from the store. */
void network_rollback(network_t *self);

/*  The API (inside the transaction). Each returns PARLEY_OK and *out (a new
 *  JSON value), or an error and *why (a sentence). */
int network_create(network_t *self, const char *name, const char *my_name, json_t **out,
                   const char **why) PARLEY_WUR;
json_t *network_show(network_t *self);
json_t *network_log(network_t *self, size_t limit);
int network_leave(network_t *self, json_t **out, const char **why) PARLEY_WUR;
/*  Makes an invite: role ROSTER_ROLE_*, ttl_ms from now, uses; endpoints of
 *  ours and of up to three online members go into the code. */
int network_invite(network_t *self, const char *label, uint8_t role, uint64_t ttl_ms, uint16_t uses,
                   json_t **out, const char **why) PARLEY_WUR;
json_t *network_invites(network_t *self);
/*  arg: an invite id (or a unique prefix of at least 4 characters) or a code. */
int network_revoke(network_t *self, const char *arg, json_t **out, const char **why) PARLEY_WUR;
int network_remove(network_t *self, const uint8_t pk[32], const char *reason, json_t **out,
                   const char **why) PARLEY_WUR;
int network_set_role(network_t *self, const uint8_t pk[32], uint8_t role, json_t **out,
                     const char **why) PARLEY_WUR;
int network_set_relay(network_t *self, const uint8_t pk[32], bool on, json_t **out,
                      const char **why) PARLEY_WUR;

/* ---- the join exchange (proto/SPEC.md §19.1) ----
 *
 *  Joiner: network_join opens a DEALER per endpoint of the code, as CURVE
 *  client with the invite's key pair (the members' ZAP admits it while the
 *  invite is live), and asks each for the roster heads (ASK, again every
 *  second). The first HEADS wins: the node writes its JOIN event naming
 *  them (the proof signed with the invite's key), commits it, and sends it.
 *  DONE says added (the node is a member: it dials that member with its own
 *  key, and reconciliation brings the roster) or refused, with the reason.
 *  No answer within NETWORK_JOIN_MS: failed.
 *
 *  Member: a connection admitted with an invite's key may send ASK and one
 *  ENVELOPES frame holding a JOIN of that invite, nothing else. The JOIN
 *  goes into the log and to every member like any event; DONE answers after
 *  the commit. */
#define NETWORK_JOIN_SOCKETS INVITE_ENDPOINTS_MAX
#define NETWORK_JOIN_MS 30000u
#define NETWORK_JOIN_ASK_MS 1000u
/*  Until a member answers, ASK goes this often: the first ones are sent
 *  while the CURVE handshakes still run, and are lost. */
#define NETWORK_JOIN_DIAL_ASK_MS 100u
/*  Starts joining (network_set_router first). The result says
 *  "joining"; network_show follows the exchange. */
int network_join(network_t *self, const char *code, const char *name, json_t **out,
                 const char **why) PARLEY_WUR;
/*  The joiner's DEALER i (NULL when none), to poll; a frame on it. */
void *network_join_socket(const network_t *self, size_t i);
void network_join_recv(network_t *self, size_t i);
/*  The node's ZeroMQ context (the joiner's DEALERs are made in it) and the
 *  ROUTER the member side answers on. */
void network_set_router(network_t *self, void *ctx, void *router);
/*  A frame on our ROUTER from a connection admitted with a live invite's
 *  CURVE key (User-Id x_pk), routing id rid. */
void network_on_invite_frame(network_t *self, const uint8_t x_pk[32], const uint8_t *rid,
                             size_t rid_len, const frame_t *f);
/*  Timers: ASK again, give up. Inside the transaction. */
void network_tick(network_t *self, uint64_t now);
/*  After the commit: join frames queued in the iteration go out. */
void network_after_commit(network_t *self);

/* ---- the network secret (proto/SPEC.md §19.2) ----
 *
 *  Members share a 32-byte secret per epoch; it keys the blinded mDNS
 *  records, so only members can tell which announcement is which node. The
 *  epoch is the number of removals the roster has applied: an admin whose
 *  fold reaches an epoch it holds no secret of makes one, signs it (NETKEY)
 *  and hands it to every member online; members pass a newer one on, and
 *  every member sends its newest on each new connection with another (so
 *  one that was offline catches up). Two admins rotating at once: the more
 *  senior one's secret wins everywhere. A removed member has no connection
 *  left to receive the new one. */
#define NETWORK_EPOCH_AHEAD 16u /* how far ahead of our removals a secret may be */
/*  A new connection with a member: it gets our newest secret. */
void network_link_up(network_t *self, link_t *link);
void network_on_netkey(network_t *self, link_t *link, const frame_t *f);
/*  A member removed while connected: sends it the event that removed it
 *  and the roster's newest events (at most NETWORK_FAREWELL_EVENTS in all,
 *  one frame), so it learns why it is cut off. After the commit. */
#define NETWORK_FAREWELL_EVENTS 64u
void network_farewell(network_t *self, link_t *link);

/*  Whether this node must not be heard on mDNS at all: joining, or a member
 *  that holds no secret yet (it cannot announce blinded, and in clear it
 *  would tell the LAN who joins). network_tick reports a change as
 *  keys_changed. */
bool network_quiet(const network_t *self);
/*  The roster's fold (members, roles), or NULL in open mode. Valid until
 *  the next call into this class. */
const roster_t *network_roster(network_t *self);
/*  The network secrets, newest first (for discovery); *n how many. */
size_t network_keys(const network_t *self, uint8_t out[][32], size_t cap);

#endif
