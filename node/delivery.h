/*  node/delivery.h — direct messages from send to read: sealing, the
 *  outbox and its resends, ingest of envelopes from peers, opening what is
 *  addressed to us, ACKs, receipts and delivery states.
 *
 *  The log is the truth; the wire is a hint. Every envelope we write for a
 *  peer sits in the outbox until the peer ACKs it (it ACKs after its commit),
 *  pushed after our commit when the link is up and resent every retry_ms
 *  otherwise; a receipt envelope (signed, encrypted) from the recipient raises
 *  the message to "delivered" and clears the outbox. Ingest dedupes by id, so
 *  resends are harmless:
 *
 *      limits → dedupe by id → decode → verify → time → scope → store
 *        → (author, scope, seq) → open → history → receipt
 *
 *  Message states: queued (no prekey yet) → stored → relayed (another node
 *  ACKed) → delivered (receipt) → read; incoming: received → opened.
 *  Opening is part of the ingest transaction: when it fails for a passing
 *  reason (memory, disk) the whole iteration rolls back and the sender's
 *  resend tries again; when the envelope itself cannot be opened (a day key
 *  destroyed, a forged body) it is counted, strikes its author's link, and
 *  is kept only in the log, within per-author and total quotas (beyond
 *  them it is dropped and counted undecryptable_dropped).
 */
#ifndef PARLEY_NODE_DELIVERY_H
#define PARLEY_NODE_DELIVERY_H

#include "../proto/frame.h"
#include "channel.h"
#include "core.h"
#include "link.h"
#include "network.h"
#include "replica.h"
#include "session.h"
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define DELIVERY_FLUSH_MAX 512u  /* envelopes resent per link per retry round */
#define DELIVERY_ACKED_MAX 4096u /* ACKs gathered before they are recorded */
#define DELIVERY_DUE_MAX 8192u   /* "delivered" receipts waiting to be sealed */
#define DELIVERY_HELD_MAX 4096u  /* ACKs waiting for a sync the node put off */
/*  Undecryptable DMs addressed to us kept in the log, per run: per author
 *  (count, bytes), in all, and for how many authors; beyond, not kept. */
#define DELIVERY_UNDEC_PER_AUTHOR 16u
#define DELIVERY_UNDEC_AUTHOR_BYTES (256u * 1024u)
#define DELIVERY_UNDEC_BYTES (8u * 1024u * 1024u)
#define DELIVERY_UNDEC_AUTHORS 256u
/*  Strike weight of an undecryptable DM on its author's own link: 64 in a
 *  minute ban it (S_BAD_MAX 512, node/link.c). */
#define DELIVERY_UNDEC_STRIKE 8u
/*  Envelopes a relay keeps per author of scopes it is no party to (count,
 *  bytes); beyond them it refuses more (counted relay_quota) and strikes
 *  the author's own link (DELIVERY_UNDEC_STRIKE). Counted from the log on first sight,
 *  then in memory for up to DELIVERY_QUOTA_AUTHORS authors. */
#define DELIVERY_RELAY_PER_AUTHOR 262144u
#define DELIVERY_RELAY_AUTHOR_BYTES (64u * 1024u * 1024u)
#define DELIVERY_QUOTA_AUTHORS 1024u
/*  Strike weight of an equivocation on its author's own link. */
#define DELIVERY_EQUIV_STRIKE 8u

typedef struct delivery delivery_t;

delivery_t *delivery_new(core_t *core, links_t *links, session_t *session, replica_t *replica,
                         network_t *network, channels_t *channels);
void delivery_destroy(delivery_t **self_p);
void delivery_link_free(delivery_t *self, link_t *link);

/*  Sends a text DM; fills msg (caller frees msg->text) — QUEUED when the
 *  peer's prekey is unknown or the node recovers a lost database. PARLEY_ERR_STATE to ourselves,
 * _LIMIT for an empty or long text, _MALFORMED for bad UTF-8. Inside the transaction. */
int delivery_send_text(delivery_t *self, const uint8_t peer[32], const char *text, size_t len,
                       uint64_t ttl_ms, store_msg_t *msg) PARLEY_WUR;
/*  Marks every unread message from peer read and, unless read receipts are
 *  off, tells the peer; *n how many. Inside the transaction. */
int delivery_mark_read(delivery_t *self, const uint8_t peer[32], size_t *n) PARLEY_WUR;

/*  Recovery of a lost database ended (core->recovering is false again):
 *  seals the messages that waited, QUEUED, for every peer with a link (the
 *  others' when their prekey comes). Inside the transaction. */
void delivery_resume(delivery_t *self);

/*  Frames. */
void delivery_on_envelopes(delivery_t *self, link_t *link, const frame_t *f);
void delivery_on_ack(delivery_t *self, link_t *link, const frame_t *f);
void delivery_on_prekey(delivery_t *self, link_t *link, const frame_t *f);

/*  The link came up: resend everything pending and pass on bundles. */
void delivery_link_up(delivery_t *self, link_t *link);
/*  A new connection of an online peer (its HELLO, or our handshake): it gets
 *  our prekey and everything it has not acknowledged. */
void delivery_reconnected(delivery_t *self, link_t *link);
/*  Every link whose retry time came gets the outbox again, after the commit
 *  (delivery_after_commit): nothing is sent from inside the transaction. */
void delivery_tick(delivery_t *self, uint64_t now);
/*  A new prekey of ours: every link gets it. */
void delivery_prekey_changed(delivery_t *self);
/*  Before the commit, after every other step of the iteration: records the
 *  ACKs received in it (delivery_on_ack gathers them) and seals the
 *  "delivered" receipts owed for messages committed in earlier iterations,
 *  in the iteration's transaction if one is open, else in a relaxed one
 *  (store_begin_relaxed): neither promises anything a power cut could
 *  break. */
void delivery_before_commit(delivery_t *self);
/*  The iteration was rolled back: receipts owed for its messages are not. */
void delivery_rollback(delivery_t *self);
/*  Receipts are owed for committed messages: the next iteration must not
 *  wait for input (delivery_before_commit seals them). */
bool delivery_busy(const delivery_t *self);
/*  Between an early commit and its sync (node.c): sends the queued pushes
 *  of our own DMs to links that are owed nothing before them, so the peer's
 *  commit runs while ours reaches the disk. delivery_after_commit sends the
 *  rest and skips these. */
void delivery_push_early(delivery_t *self);
/*  After the commit: the queued ACKs and pushes (core's after-commit
 *  queue), owed prekeys and bundles, and outbox resends. While what was
 *  written waits for a sync the node put off, the ACKs wait with it (up to
 *  DELIVERY_HELD_MAX); they leave after the sync, and are dropped if it
 *  fails (their senders resend). */
void delivery_after_commit(delivery_t *self);
/*  Whether this iteration's ACKs fit beside those already waiting for a
 *  sync: if not, the node syncs now rather than put it off. */
bool delivery_may_hold(const delivery_t *self);

/*  The JSON view of a message (API replies and notifications). */
json_t *delivery_msg_json(delivery_t *self, const store_msg_t *msg);
/*  status.verify: {threads (configured), running (helpers started), helped
 *  (envelopes the helpers checked)}. */
json_t *delivery_verify_status(delivery_t *self);
/*  status.disk: {syncs, deferred (commits whose sync was put off),
 *  acks_waiting (for such a sync), acks_dropped (by a failed one)}. */
json_t *delivery_disk_status(delivery_t *self);
const char *delivery_state_name(int state);

#endif
