/*  node/channel.h — the channels this node is in (proto/SPEC.md §21): their
 *  control logs folded, the epoch keys drawn, handed out and taken, each
 *  sender's chain, and the messages sealed and opened.
 *
 *  A channel lives in two scopes of the log: its id (the control log, kind
 *  CHAN, and KEYS bodies, kind CHAN_KEYS) and its msg scope (messages, kind
 *  CHAN_MSG). This class answers the questions the rest of the engine asks
 *  of them:
 *
 *      ingest    channels_accepts: a channel envelope that decodes, of a
 *                channel we are in, or the control log of one we may be
 *                added to (held in memory until its fold names us, within
 *                CHANNELS_PENDING_MAX; a relay folds every channel it
 *                carries, within CHANNELS_RELAY_PENDING_MAX), within each
 *                author's share; channels_stored: whether to keep it
 *      replica   channels_party: whether a key is a member of the channel
 *                a scope belongs to (pushes and reconciliation go to
 *                members), and whether the control log names it
 *
 *  Control events are folded once per frame (channels_settle), as network
 *  events are. A fold that reaches an epoch without a bound key makes the
 *  most senior member with the right draw one, seal it to every other
 *  member in KEYS bodies and use it; an ADD makes its author seal the
 *  current key to the new member. A KEYS entry for us is taken when its
 *  binding is the one our fold gives its epoch, and held aside until then.
 *  A message opens with its sender's chain in the key it names; one that
 *  arrives before its key, or far ahead of its chain, waits in the log and
 *  is opened when the key comes or the chain is near.
 *
 *  Timed duties (channels_tick): the weekly REKEY, the wiping of past
 *  epochs' keys after the grace window (forward secrecy), keys owed to
 *  members that lack them, a network-wide channel following the network's
 *  roster, our messages that waited for a key, and receipts.
 *
 *  Everything runs inside the iteration's transaction; notifications and
 *  pushes leave after its commit (core.h). A rolled-back iteration reloads
 *  every channel from the store (channels_rollback).
 */
#ifndef PARLEY_NODE_CHANNEL_H
#define PARLEY_NODE_CHANNEL_H

#include "../proto/envelope.h"
#include "core.h"
#include "link.h"
#include "network.h"
#include "replica.h"
#include "session.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct channels channels_t;

#define CHANNELS_MAX 1024u                /* channels a node is in */
#define CHANNELS_PENDING_MAX 256u         /* control logs of channels not (yet) ours, in memory */
#define CHANNELS_ROTATE_STEP_MS 2000u     /* a rotator of rank r waits r × this first */
#define CHANNELS_RING_SIDE 2u             /* channel neighbours each way (channels_neighbours) */
#define CHANNELS_RECEIPT_MS 500u          /* one delivered receipt for what came meanwhile */
#define CHANNELS_EVENTS_PER_MEMBER 64u    /* control events of a key that never was an admin */
#define CHANNELS_PENDING_EVENTS 65536u    /* control events in all pending channels */
#define CHANNELS_WAITING_PER_AUTHOR 1024u /* an author's messages waiting for a key */
#define CHANNELS_UNDEC_STRIKE 8u          /* a message that does not open with the key it names */
#define CHANNELS_RELAY_PENDING_MAX 4096u  /* a relay: channels it carries, folded in memory */
#define CHANNELS_RELAY_PENDING_EVENTS 1048576u /* their events in all */
#define CHANNELS_QUEUE_MAX 1000u               /* our messages waiting for a channel's key */
#define CHANNELS_FLUSH_BATCH 64u               /* of them sent in one step once it came */
#define CHANNELS_NET_CHECK_MS 1000u            /* a network-wide channel's admins compare rosters */
#define CHANNELS_NET_BATCH 64u                 /* membership events they write in one step */
#define CHANNELS_NET_BACKOFF_MS 60000u         /* after an event of theirs ended void */

/*  Loads every channel row and folds its control log. NULL and *err on
 *  failure. */
channels_t *channels_new(core_t *core, links_t *links, replica_t *replica, session_t *session,
                         network_t *network, int *err);
void channels_destroy(channels_t **self_p);

/*  Ingest of a channel envelope (kind CHAN, CHAN_KEYS or CHAN_MSG), verified:
 *  PARLEY_OK to store it; _NOTFOUND for a scope we hold no channel of (and
 *  may not take up); _MALFORMED / _UNSUPPORTED for a body that does not
 *  decode; _AUTH for an author that is not a member (a KEYS or message) or
 *  a control event of one the fold never knew; _LIMIT when the pending
 *  channels or a fold are full. */
int channels_accepts(channels_t *self, const envelope_t *env) PARLEY_WUR;
/*  Whether env (accepted) is ours to keep as a party (not held for others). */
bool channels_ours(const channels_t *self, const envelope_t *env);
/*  A channel envelope is in the log (this transaction), come on link
 *  (NULL: ours). false: the caller forgets it again, as for an
 *  undecryptable DM: a message that does not open with the key it names
 *  (its author's own link is struck CHANNELS_UNDEC_STRIKE), or one more of
 *  an author's that wait for a key than CHANNELS_WAITING_PER_AUTHOR. */
bool channels_stored(channels_t *self, link_t *link, const envelope_t *env, const uint8_t id[32]);
/*  Folds what was stored since the last fold, rotates, hands out keys,
 *  opens messages whose key came. */
void channels_settle(channels_t *self);
/*  The iteration rolled back. */
void channels_rollback(channels_t *self);
/*  Timers: rotations due (armed in an earlier iteration: a key is never
 *  drawn in the step that applied the removal it answers). */
void channels_tick(channels_t *self, uint64_t now);
/*  Our neighbours in each channel we are a member of: on the ring of its
 *  members' keys, the CHANNELS_RING_SIDE next and previous ones (SPEC
 *  §11.1), so that the members' links carry its messages whatever links
 *  the LAN-wide ring gives. An owned array of *n keys of 32 bytes (repeats
 *  possible), NULL when out of memory. */
uint8_t *channels_neighbours(channels_t *self, size_t *n);
/*  After the iteration's commit: what was due then is armed for the next. */
void channels_after_commit(channels_t *self);
/*  Whether pk is a member of the channel scope belongs to (either scope):
 *  REPLICA_PARTY, with REPLICA_NAMED when scope is the channel's control
 *  scope (replica.h). */
unsigned channels_party(const channels_t *self, const uint8_t scope[32], const uint8_t pk[32]);

/*  The API (inside the transaction): PARLEY_OK and *out (new JSON), or an
 *  error and *why (a sentence). A channel is named by its name (with or
 *  without '#'), or a prefix of its id of at least 4 characters. */
/*  network_wide: every member of the network is in it (a network admin's). */
int channels_create(channels_t *self, const char *name, const char *topic, bool shared,
                    bool announce, bool network_wide, json_t **out, const char **why) PARLEY_WUR;
json_t *channels_list(channels_t *self);
int channels_info(channels_t *self, const char *name, json_t **out, const char **why) PARLEY_WUR;
int channels_add(channels_t *self, const char *name, const uint8_t pk[32], json_t **out,
                 const char **why) PARLEY_WUR;
int channels_remove(channels_t *self, const char *name, const uint8_t pk[32], json_t **out,
                    const char **why) PARLEY_WUR;
int channels_leave(channels_t *self, const char *name, json_t **out, const char **why) PARLEY_WUR;
int channels_rekey(channels_t *self, const char *name, json_t **out, const char **why) PARLEY_WUR;
/*  role: ROSTER_ROLE_ADMIN, _MEMBER or _READER. */
int channels_set_role(channels_t *self, const char *name, const uint8_t pk[32], uint8_t role,
                      json_t **out, const char **why) PARLEY_WUR;
int channels_topic(channels_t *self, const char *name, const char *topic, json_t **out,
                   const char **why) PARLEY_WUR;
int channels_send(channels_t *self, const char *name, const char *text, json_t **out,
                  const char **why) PARLEY_WUR;
/*  Marks the channel read up to its newest message, and (unless read
 *  receipts are off) tells the members in one aggregated receipt. */
int channels_read(channels_t *self, const char *name, json_t **out, const char **why) PARLEY_WUR;
/*  The last limit messages (0: all) strictly before the message whose
 *  cursor is before (NULL: the newest), oldest first. */
int channels_history(channels_t *self, const char *name, const char *before, size_t limit,
                     json_t **out, const char **why) PARLEY_WUR;

#endif
