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
 */
#ifndef PARLEY_NODE_LINK_H
#define PARLEY_NODE_LINK_H

#include "core.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LINK_ROUTE_MAX 256u
#define LINK_TABLE_MAX 1024u
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

/*  The table. ctx is the node's ZeroMQ context (DEALERs and monitors are
 *  made in it); router its ROUTER (set once bound). */
links_t *links_new(core_t *core, void *ctx, links_made_fn *made, void *arg);
/*  Frees every link; the classes must have freed their slots first. */
void links_destroy(links_t **self_p);
void links_set_router(links_t *self, void *router);
size_t links_count(const links_t *self);
link_t *links_at(const links_t *self, size_t i);
link_t *links_find(const links_t *self, const uint8_t pk[32]);
link_t *links_find_x(const links_t *self, const uint8_t x_pk[32]);
/*  The link of pk, made when absent (*created then true); NULL when the
 *  table is full or memory is short, or pk is no valid key. */
link_t *links_get(links_t *self, const uint8_t pk[32], bool *created);
/*  Sends one frame to link: DEALER when up, else its route on our ROUTER.
 *  False when it cannot go out now (full queue, no connection): the outbox
 *  and reconciliation repair what mattered. */
bool links_send(links_t *self, link_t *link, const uint8_t *buf, size_t len);
/*  Only back over the connection the peer opened to our ROUTER. */
bool links_send_route(links_t *self, link_t *link, const uint8_t *buf, size_t len);
/*  Bad input of weight from link: after S_BAD_MAX in a minute the node bans
 *  it (core->ban). */
void links_strike(links_t *self, link_t *link, const char *why, unsigned weight);
/*  Opens our DEALER to link at endpoint (pinned to its key) with a monitor. */
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
bool link_hello(const link_t *self);
void link_set_hello(link_t *self);
/*  Capabilities from its HELLO (either direction). */
bool link_caps_known(const link_t *self);
bool link_relay(const link_t *self);
void link_set_caps(link_t *self, bool relay);
const char *link_source(const link_t *self);
/*  Records how we learnt of it, unless we knew already. */
void link_set_source(link_t *self, const char *source);
const char *link_endpoint(const link_t *self);
const char *link_last_error(const link_t *self);
void link_set_error(link_t *self, const char *why);
void *link_dealer(const link_t *self);
void *link_monitor(const link_t *self);
bool link_dealer_up(const link_t *self);
void link_set_dealer_up(link_t *self, bool up);
/*  Sends on the DEALER only (offline pings on a connection that may live). */
bool link_send_dealer(link_t *self, const uint8_t *buf, size_t len, uint64_t now);
/*  Closes our DEALER and its monitor; the link stays. */
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
