/*  discovery/mdns.h — the mDNS source: publishes this node as _parley._tcp
 *  through the system Avahi daemon (libavahi-client over D-Bus) and browses
 *  and resolves the other nodes. The only place (with mdns.c) that includes
 *  Avahi headers.
 *
 *  It reports to a CZMQ PUSH socket it connects to cfg->report_endpoint, in
 *  the discovery.h message format ("SEEN"/"GONE"/"STATUS"/"NAME" ..., SOURCE
 *  "mdns").
 *  When D-Bus or the daemon is absent it says so once (STATUS mdns down WHY),
 *  keeps retrying on a timer, and recovers by itself (STATUS mdns up) when the
 *  daemon appears or restarts, republishing.
 *
 *  Private networks (SPEC §19.3): given network secrets (keys, at most
 *  BLIND_KEYS_MAX; keys[0] is the current one and announces) it publishes a
 *  blinded record under a random name and reports only the blinded records
 *  its keys open; mdns_set_keys changes them at run time. Without keys it
 *  is the open mode of SPEC §12.
 */
#ifndef PARLEY_DISCOVERY_MDNS_H
#define PARLEY_DISCOVERY_MDNS_H

#include "source.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *node_id;         /* base32 node id; instance name derives from it */
    uint16_t port;               /* published port */
    const char *tag;             /* network tag for the TXT record */
    const char *report_endpoint; /* inproc endpoint of the reports PULL socket */
    discovery_log_fn *log;       /* the node's logger, or NULL (stderr) */
    void *log_arg;               /* passed to log */
    const uint8_t (*keys)[32];   /* network secrets (copied as derived keys), or NULL */
    size_t n_keys;               /* 0..BLIND_KEYS_MAX (4); 0: open mode */
    bool hush;                   /* with no keys: start silent (mdns_hush) */
} mdns_config_t;

typedef struct _mdns_t mdns_t;

/*  NULL on a bad config (an invalid id or tag, port 0, more than 4 keys, an
 *  all-zero secret) or when out of resources. Caller owns the result. */
mdns_t *mdns_new(const mdns_config_t *cfg);
void mdns_destroy(mdns_t **self_p);
/*  Replaces the network secrets (n = 0..4; 0: back to open mode); from any
 *  thread but Avahi's (the callbacks'). Our service is withdrawn and
 *  published again under a new name, and what the browser lists is looked at
 *  again with the new keys, at once. The caller keeps and wipes secrets.
 *  PARLEY_ERR_LIMIT for n > 4, _MALFORMED for an all-zero secret. */
int mdns_set_keys(mdns_t *self, const uint8_t (*secrets)[32], size_t n);
/*  Silent until the next mdns_set_keys: our service is withdrawn and nothing
 *  is published or reported (a node joining a network holds no secret to
 *  announce blinded, and announcing in clear would name it to the LAN).
 *  The browser still runs, its findings ignored. */
int mdns_hush(mdns_t *self);

void mdns_test(bool verbose);

#endif
