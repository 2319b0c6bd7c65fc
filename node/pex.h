/*  node/pex.h — peer exchange: our own signed address record and the
 *  verified records of others, gossiped in PEERS frames (SPEC §13–14).
 *
 *  A record only says where a key might be: a dial made from it is pinned to
 *  that key, so a forged or stale record costs a failed handshake, never a
 *  wrong peer. Records are never passed on once expired. Per link we keep
 *  its latest verified record and whether it is owed a PEERS frame.
 *
 *  One peer's records may make at most PEX_NEW_MAX new links a minute; the
 *  rest are dropped (C_RECORD_DROPPED) and each strikes the sender once, so
 *  a sender that keeps flooding is banned (link.h, S_BAD_MAX).
 */
#ifndef PARLEY_NODE_PEX_H
#define PARLEY_NODE_PEX_H

#include "../proto/frame.h"
#include "core.h"
#include "link.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PEX_LIFETIME_MS (60u * 60u * 1000u)
#define PEX_NEW_MAX 32u /* new links one peer's records may make per window */
#define PEX_NEW_WINDOW_MS 60000u
#define PEX_HELD_MAX 32u /* records of keys that could not have a link yet */

typedef struct pex pex_t;

typedef struct {
    char name[32];  /* interface name */
    char addr[16];  /* dotted IPv4 address */
    bool multicast; /* mDNS can run on it */
} pex_iface_t;

/*  endpoint: the ROUTER's bound endpoint (copied). */
pex_t *pex_new(core_t *core, links_t *links, const char *endpoint);
void pex_destroy(pex_t **self_p);
/*  The link goes: its record is freed. */
void pex_link_free(pex_t *self, link_t *link);
/*  The link came up: it is owed our records. */
void pex_link_up(pex_t *self, link_t *link);
/*  Re-signs our record when half its lifetime is gone, and offers it. */
void pex_renew(pex_t *self, uint64_t now);
/*  A PEERS frame from link. */
void pex_on_peers(pex_t *self, link_t *from, const frame_t *f);
/*  Keys may have links now that could not (the roster gained members):
 *  the records held back for them are taken and dialled. */
void pex_retry(pex_t *self);
/*  Sends the PEERS frames owed to online links. */
void pex_flush(pex_t *self);

/*  Up, non-loopback IPv4 interfaces, at most max, into out. */
size_t pex_interfaces(pex_iface_t *out, size_t max);

#endif
