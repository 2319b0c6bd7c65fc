/*  node/link.h — one peer connection, and the table of them.
 *
 *  A peer is reachable over our DEALER to its ROUTER (when we dial it) and/or
 *  over its DEALER to our ROUTER (when it dialled us). Frames go over the
 *  DEALER when its handshake is up, else to the peer's last routing id on our
 *  ROUTER. A DEALER learns of a (re)connection from its socket monitor; a
 *  ROUTER learns who a connection is from the ZAP User-Id (the CURVE key)
 *  and from HELLO, whose Ed25519 key must map to that CURVE key.
 *
 *      offline ──(DEALER handshake | HELLO on ROUTER | any frame)──► online
 *      online  ──(no frame for 3 × ping_ms | DEALER gone and no route | BYE
 *                 | ban)──► offline
 *
 *  A link knows nothing of sessions, delivery or replication: each of those
 *  classes keeps its own per-link state in a slot of the link that only it
 *  reads (link_slot), and frees it when the node tells it the link goes.
 *  Invariants (link_check): a monitor exists exactly when a DEALER does;
 *  dealer_up implies a DEALER; a route fits NODE_ROUTE_MAX.
 *
 *  Two classes of link. A verified one is a peer we have really talked to:
 *  a frame came over our DEALER (pinned to its key), or after its HELLO on
 *  our ROUTER it went on talking (a HELLO alone is one packet a flood can
 *  send from a fresh key). An unverified one we have only heard of: a
 *  gossiped record, an mDNS record, a HELLO and nothing more, a dial that
 *  never came up. Kept links (contacts, seeds) are never evicted.
 *
 *  Bounds, so that no number of keys fills the table or the descriptors:
 *  LINK_TABLE_MAX links, at most LINK_UNVERIFIED_MAX of them unverified. A
 *  new link that finds no room evicts (links_get): the unverified one idle
 *  longest; when the table is full and none is unverified, the offline
 *  verified one idle longest; never a kept link or an online verified one
 *  (then the new one is refused). At most LINK_DEALER_MAX DEALERs, of which at most
 *  LINK_DIAL_MAX still connecting; further dials wait (links_dial, made by
 *  links_tick oldest first, verified first). A DEALER costs 4 descriptors
 *  (its mailbox, the monitor's two PAIR sockets, its TCP connection), so
 *  our DEALERs hold at most LINK_FDS_MAX descriptors; the rest of the node
 *  is the ROUTER's inbound connections and about 30 fixed ones. A dial that
 *  fails (the monitor reports a refused connection or handshake) or is not
 *  up within LINK_DIAL_TIMEOUT_MS is closed and retried after a back-off
 *  (1 s doubling to LINK_BACKOFF_MAX_MS); an unverified link whose dial
 *  failed LINK_DIAL_TRIES times in a row is dropped.
 *
 *  A link removed (evicted, dropped, forgotten) leaves the table at once;
 *  its memory waits for links_reap at the end of the loop iteration, since
 *  frames queued in the iteration may still name it.
 */
#ifndef PARLEY_NODE_LINK_H
#define PARLEY_NODE_LINK_H

#include "core.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINK_ROUTE_MAX 256u
#define LINK_TABLE_MAX 1024u                /* links in all */
#define LINK_UNVERIFIED_MAX 256u            /* of them, links to peers only heard of */
#define LINK_DEALER_MAX 128u                /* our DEALERs in all */
#define LINK_DIAL_MAX 32u                   /* of them, still connecting */
#define LINK_FDS_MAX (4u * LINK_DEALER_MAX) /* descriptors our DEALERs may hold */
#define LINK_DIAL_TIMEOUT_MS 20000u         /* a dial not up by then is closed and retried */
#define LINK_DIAL_TRIES 3u                  /* failed dials before an unverified link goes */
#define LINK_BACKOFF_MAX_MS 60000u          /* the longest wait between dials of one link */
#define LINK_BAN_MS 60000u

typedef enum { LINK_SLOT_DELIVERY, LINK_SLOT_PEX, LINK_SLOT_REPLICA, LINK_SLOTS } link_slot_t;

/*  What a DEALER's monitor reported. */
typedef enum {
    LINK_EV_NONE,   /* nothing (or nothing we act on) */
    LINK_EV_UP,     /* handshake succeeded: the DEALER carries frames */
    LINK_EV_DOWN,   /* the DEALER's connection dropped */
    LINK_EV_FAILED, /* a handshake failed (wrong key, refused) */
    LINK_EV_RETRIED /* a connect attempt failed and is retried */
} link_event_t;

typedef struct links links_t;

/*  Called for every link the table makes, whoever asked for it. */
typedef void(links_made_fn)(void *arg, link_t *link);
/*  Called when a link leaves the table (why says why: evicted, dropped,
 *  forgotten), and again with why NULL just before it is freed: the
 *  classes free their slots (each time: a queued frame may remake one). */
typedef void(links_gone_fn)(void *arg, link_t *link, const char *why);

/*  Whether pk may have a link at all (a private network: members only). */
typedef bool(links_allow_fn)(void *arg, const uint8_t pk[32]);
/*  The table. ctx is the node's ZeroMQ context (DEALERs and monitors are
 *  made in it); router its ROUTER (set once bound). */
links_t *links_new(core_t *core, void *ctx, links_made_fn *made, links_gone_fn *gone, void *arg);
/*  Frees every link; the classes must have freed their slots first. */
void links_destroy(links_t **self_p);
void links_set_router(links_t *self, void *router);
/*  From now on links_get makes links only for keys allow accepts (called
 *  with the table's arg); the rest are refused and counted not_member. */
void links_set_allow(links_t *self, links_allow_fn *allow);
size_t links_count(const links_t *self);
link_t *links_at(const links_t *self, size_t i);
link_t *links_find(const links_t *self, const uint8_t pk[32]);
link_t *links_find_x(const links_t *self, const uint8_t x_pk[32]);
/*  The link of pk, made when absent (*created then true), unverified; to
 *  make room it may evict another (see above). NULL when nothing may be
 *  evicted (C_PEER_REFUSED), memory is short, or pk is no valid key. */
link_t *links_get(links_t *self, const uint8_t pk[32], bool *created);
/*  Takes link out of the table now (gone(why), DEALER closed); freed by
 *  links_reap. */
void links_remove(links_t *self, link_t *link, const char *why);
/*  Frees the links removed since the last call. */
void links_reap(links_t *self);
/*  Dials: closes those not up in time (back-off; an unverified one that
 *  failed LINK_DIAL_TRIES times is removed, C_DIAL_DROPPED), then opens
 *  waiting ones while the caps allow. Once per loop iteration. */
void links_tick(links_t *self, uint64_t now);
/*  Links not verified; DEALERs; DEALERs still connecting. */
size_t links_unverified(const links_t *self);
size_t links_dealers(const links_t *self);
size_t links_dialling(const links_t *self);
/*  Sends one frame to link: DEALER when up, else its route on our ROUTER.
 *  False when it cannot go out now (full queue, no connection): the outbox
 *  and reconciliation repair what mattered. */
bool links_send(links_t *self, link_t *link, const uint8_t *buf, size_t len);
/*  The same, to a key the allow filter no longer admits: only the last words
 *  of an eviction (why, and goodbye). */
bool links_send_last(links_t *self, link_t *link, const uint8_t *buf, size_t len);
/*  Only back over the connection the peer opened to our ROUTER. */
bool links_send_route(links_t *self, link_t *link, const uint8_t *buf, size_t len);
/*  Bad input of weight from link: after S_BAD_MAX in a minute the node bans
 *  it (core->ban). */
void links_strike(links_t *self, link_t *link, const char *why, unsigned weight);
/*  Opens our DEALER to link at endpoint (pinned to its key) with a monitor,
 *  now when the caps allow, else when links_tick finds room. */
int links_dial(links_t *self, link_t *link, const char *endpoint) PARLEY_WUR;

const uint8_t *link_pk(const link_t *self);
const uint8_t *link_x_pk(const link_t *self);
bool link_online(const link_t *self);
uint64_t link_connected_since(const link_t *self);
uint64_t link_last_seen(const link_t *self);
uint64_t link_last_sent(const link_t *self);
void link_seen(link_t *self, uint64_t now);
/*  Sets online or offline; true when that changed it. */
bool link_set_online(link_t *self, bool online, const char *why, uint64_t now);
/*  Whether the connection to our ROUTER with routing id rid said a HELLO we
 *  accepted. Every connection starts with one: a frame a new connection
 *  sends before its HELLO (a ping queued while it was being made) is not
 *  read, so nothing reaches us from a connection before its capabilities. */
bool link_hello(const link_t *self, const uint8_t *rid, size_t len);
/*  The connection rid said its HELLO (the last one to do so). */
void link_set_hello(link_t *self, const uint8_t *rid, size_t len);
/*  We have really talked to it (see above); once verified, always. */
bool link_verified(const link_t *self);
void link_set_verified(link_t *self);
/*  Never evicted nor dropped: a contact, a seed. */
bool link_kept(const link_t *self);
void link_set_kept(link_t *self, bool kept);
/*  The endpoint its HELLO gave, "" if none: saved once it is verified. */
const char *link_advertised(const link_t *self);
void link_set_advertised(link_t *self, const char *endpoint);
/*  Whether a dial waits for room (links_tick makes it). */
bool link_dial_waiting(const link_t *self);
/*  Capabilities from its HELLO (either direction). */
bool link_caps_known(const link_t *self);
bool link_relay(const link_t *self);
/*  In a network only designated relays are treated as relays, whatever
 *  their HELLO says (default: ok). */
void link_set_relay_ok(link_t *self, bool ok);
void link_set_caps(link_t *self, bool relay);
const char *link_source(const link_t *self);
/*  Records how we learnt of it, unless we knew already. */
void link_set_source(link_t *self, const char *source);
const char *link_endpoint(const link_t *self);
const char *link_last_error(const link_t *self);
void link_set_error(link_t *self, const char *why);
void *link_dealer(const link_t *self);

/*  The node's link policy (SPEC §11.1): whether we keep a DEALER to it. An
 *  unwanted link keeps its endpoint and is dialled once it is wanted; while
 *  unwanted, links_dial only records where it is. */
void link_set_wanted(link_t *self, bool wanted);
/*  When the table made it: when this node first heard of the peer (ms). */
uint64_t link_made_at(const link_t *self);
bool link_wanted(const link_t *self);
/*  Envelopes went either way, or the user sent it something: in use. */
void link_used(link_t *self, uint64_t now);
uint64_t link_used_ms(const link_t *self);
/*  The user sends pk something: its link is in use and wanted now, and
 *  dialled at once if it has no DEALER (a DM to a peer beyond our ring),
 *  unless links_served. */
void links_use(links_t *self, const uint8_t pk[32]);
/*  Whether the pair's connection is the peer's (SPEC §11.1, one connection
 *  per pair): it has the lower key, it is online, and its HELLO gave us the
 *  route over our ROUTER, which carries our frames to it. */
bool links_served(const links_t *self, const link_t *link);
/*  When our DEALER to it was opened (0: never). */
uint64_t link_opened_ms(const link_t *self);
/*  Where it would be dialled, "" if nowhere. */
const char *link_dial_endpoint(const link_t *self);
/*  Closes our DEALER (no longer wanted); the endpoint is kept. */
void link_close(link_t *self);

/*  The loop polls each socket's ZMQ_FD, which signals only a change in the
 *  socket's commands: a send on the socket, or a read that stopped with
 *  input left, can leave input behind that no signal announces. Such a
 *  socket is stirred: the loop looks at its input in the next iteration
 *  anyway. link_stirred returns the stirred sockets and clears them. */
#define LINK_STIR_DEALER 1u
#define LINK_STIR_MONITOR 2u
void link_stir(link_t *self, unsigned which);
unsigned link_stirred(link_t *self);
void *link_monitor(const link_t *self);
bool link_dealer_up(const link_t *self);
void link_set_dealer_up(link_t *self, bool up);
/*  Sends on the DEALER only (offline pings on a connection that may live),
 *  and only once our HELLO went out on its connection: a ping queued while
 *  the connection is made would reach the peer before the HELLO. */
bool link_send_dealer(link_t *self, const uint8_t *buf, size_t len, uint64_t now);
/*  Closes our DEALER and its monitor, and drops a waiting dial; the link
 *  stays. */
void link_undial(link_t *self);
void link_set_route(link_t *self, const uint8_t *rid, size_t len);
/*  Whether it has a connection to our ROUTER we can answer on. */
bool link_has_route(const link_t *self);
/*  Reads one monitor event. */
link_event_t link_monitor_recv(link_t *self);
/*  Bad input of the given weight: true when it crossed the budget and the
 *  peer must now be banned. */
bool link_strike(link_t *self, unsigned weight, uint64_t now);
bool link_banned(const link_t *self, uint64_t now);
/*  Frames dropped and connections refused until now + LINK_BAN_MS; our
 *  DEALER closed. The caller says BYE first and takes the link offline. */
void link_ban(link_t *self, const char *why, uint64_t now);
void *link_slot(const link_t *self, link_slot_t slot);
void link_set_slot(link_t *self, link_slot_t slot, void *state);
/*  Aborts when an invariant is broken (a programmer error). */
void link_check(const link_t *self);

#endif
