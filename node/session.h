/*  node/session.h — DM key material: our signed prekeys (made, rotated,
 *  cached, published, wiped), the peers' prekey bundles we hold and pass on,
 *  the X3DH-style sending and receiving sessions with their daily chain, and
 *  the one cache of our DM scope with each author.
 *
 *  Forward secrecy lives here: prekeys superseded longer than grace_ms ago
 *  are deleted, receiving chains are advanced past days older than the
 *  window (their keys are gone), and sending chains past yesterday
 *  (session_wipe). Every stack copy of a secret is wiped on every path.
 *
 *  Prekey ids only grow, since a peer keeps a bundle only for a higher id
 *  (store_keys.c): each new one is the last + 1, and at least the sequence
 *  floor in seconds (meta seq_floor, set when the database was lost or
 *  recovered: the old ids are unknown then, and were counted up from 1).
 *
 *  Writes happen inside the iteration's transaction (core.h).
 */
#ifndef PARLEY_NODE_SESSION_H
#define PARLEY_NODE_SESSION_H

#include "../proto/dm.h"
#include "core.h"
#include "link.h"
#include <stdbool.h>
#include <stdint.h>

#define SESSION_DMC_MAX 65536u      /* authors in the DM-scope cache */
#define SESSION_BUNDLES_PASSED 256u /* bundles for others sent on link-up */
#define SESSION_TOUCH_MS 60000u /* a receiving session's last use is written at most this often */

typedef struct session session_t;

session_t *session_new(core_t *core, links_t *links);
void session_destroy(session_t **self_p);

/*  Makes our first prekey, or a new one when the current is older than
 *  prekey_rotate_ms. *rotated tells whether it made one. */
int session_rotate(session_t *self, uint64_t now, bool *rotated) PARLEY_WUR;
/*  Destroys what forward secrecy says must go (see the file comment). True
 *  if anything was overwritten (the caller then checkpoints the WAL). */
bool session_wipe(session_t *self, uint64_t now);
/*  A transaction was rolled back: the cached prekey may not be stored. */
void session_rollback(session_t *self);

/*  Our DM scope with author: from the cache, or one X25519 (then cached).
 *  False for ourselves or a key that is no valid point. */
bool session_dm_scope(session_t *self, const uint8_t author[32], uint8_t scope[32]);
/*  The same, only when it costs nothing (cached). */
bool session_dm_scope_cached(const session_t *self, const uint8_t author[32], uint8_t scope[32]);

/*  The sending session to peer for today against its prekey spk, (re)opened
 *  when spk changed: fills h and the day's chain key and stores the
 *  session. key is wiped by the caller. */
int session_send_key(session_t *self, const uint8_t peer[32], const prekey_t *spk, uint32_t today,
                     dm_header_t *h, uint8_t key[32]) PARLEY_WUR;
/*  The receiving chain key for h's day from peer, opening the session on
 *  first use (*opened: this call opened it). PARLEY_ERR_NOKEY when that day's key was destroyed;
 *  PARLEY_ERR_MALFORMED, before any ratchet work, for a new session that
 *  claims to start before the prekey it names existed (no honest sender
 *  does: the ratchet from such a day0 is work the sender chose for us). */
int session_recv_key(session_t *self, const uint8_t peer[32], const dm_header_t *h, uint8_t key[32],
                     bool *opened) PARLEY_WUR;
/*  Deletes the receiving session (peer, ek_pub): one that session_recv_key
 *  opened (*opened) for a body that then failed to open. Its header was
 *  not authenticated (only the body's MAC proves the key), so it must not
 *  leave a session behind: fresh ephemeral keys would each add a row. */
int session_recv_forget(session_t *self, const uint8_t peer[32],
                        const uint8_t ek_pub[32]) PARLEY_WUR;

/*  A PREKEY frame's bundle: verified and kept when newer; one we hold
 *  already, byte for byte, is neither verified nor written again. *owner gets whose
 *  it is, *changed whether it replaced what we held (only a higher spk_id
 *  does). PARLEY_ERR_AUTH or _MALFORMED for a forged one, PARLEY_ERR_FUTURE
 *  for one dated more than PARLEY_FUTURE_SKEW_MS after core_now (the caller
 *  strikes the peer for either); our own is
 *  PARLEY_ERR_EXISTS (ignored). A store failure fails the transaction. */
int session_on_bundle(session_t *self, const uint8_t *bundle, size_t len, uint8_t owner[32],
                      bool *changed) PARLEY_WUR;

/*  PREKEY frames to link. */
void session_send_own(session_t *self, link_t *link);
void session_send_bundle(session_t *self, link_t *link, const uint8_t *bundle);
/*  The bundles of the given authors we hold (ours from memory; never the
 *  link's own), so a receiver can answer envelopes it gets from a third node. */
void session_send_bundles(session_t *self, link_t *link, const uint8_t (*authors)[32], size_t n);
/*  On link-up: the newest bundles we hold for others. */
void session_send_held(session_t *self, link_t *link);

#endif
