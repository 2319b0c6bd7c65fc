/*  discovery/mdns.h — the mDNS source: publishes this node as _parley._tcp
 *  through the system Avahi daemon (libavahi-client over D-Bus) and browses
 *  and resolves the other nodes. The only place (with mdns.c) that includes
 *  Avahi headers.
 *
 *  It reports to a CZMQ PUSH socket it connects to cfg->report_endpoint, in
 *  the discovery.h message format ("SEEN"/"GONE"/"STATUS" ..., SOURCE "mdns").
 *  When D-Bus or the daemon is absent it says so once (STATUS mdns down WHY),
 *  keeps retrying on a timer, and recovers by itself (STATUS mdns up) when the
 *  daemon appears or restarts, republishing.
 */
#ifndef PARLEY_DISCOVERY_MDNS_H
#define PARLEY_DISCOVERY_MDNS_H

#include "source.h"
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    const char *node_id;         /* base32 node id; instance name derives from it */
    uint16_t port;               /* published port */
    const char *tag;             /* network tag for the TXT record */
    const char *report_endpoint; /* inproc endpoint of the reports PULL socket */
    discovery_log_fn *log;       /* the node's logger, or NULL (stderr) */
    void *log_arg;               /* passed to log */
} mdns_config_t;

typedef struct _mdns_t mdns_t;

mdns_t *mdns_new(const mdns_config_t *cfg);
void mdns_destroy(mdns_t **self_p);

void mdns_test(bool verbose);

#endif
