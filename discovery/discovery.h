/*  discovery/discovery.h — where peers might be: one stream of hints.
 *
 *  A CZMQ actor (zactor_t) runs the sources — host-local endpoint files
 *  (discovery/local.c) and mDNS through the system Avahi daemon
 *  (discovery/mdns.c) — and reports on its pipe, one multipart string message
 *  per event:
 *
 *      "SEEN"   NODE_ID ENDPOINT SOURCE    a node may be reachable there
 *      "GONE"   NODE_ID SOURCE             the source no longer lists it
 *      "STATUS" SOURCE STATE DETAIL        a source's health: STATE is "up",
 *                                          "down" or "off"; DETAIL says why
 *
 *  SOURCE is "local" or "mdns". Discovery never decides trust: the node
 *  dials with CURVE pinned to NODE_ID, and only the handshake proves it.
 *  GONE is not liveness either (a crashed host's mDNS records linger).
 */
#ifndef PARLEY_DISCOVERY_DISCOVERY_H
#define PARLEY_DISCOVERY_DISCOVERY_H

#include "source.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *node_id;     /* our base32 id (52 chars) */
    uint16_t port;           /* our ROUTER's TCP port */
    const char *tag;         /* network tag, "open" */
    bool mdns;               /* run the Avahi source */
    bool local;              /* run the host-local source */
    const char *runtime_dir; /* host-local directory (see discovery_runtime_dir) */
    discovery_log_fn *log;   /* the node's logger, or NULL */
    void *log_arg;           /* passed to log */
} discovery_config_t;

typedef struct _discovery_t discovery_t;

/*  Starts the actor. Caller owns the result (NULL on failure). */
discovery_t *discovery_new(const discovery_config_t *cfg);
void discovery_destroy(discovery_t **self_p);
/*  The raw ZeroMQ socket of the actor's pipe, for zmq_poll (read reports
 *  from it with zmq_msg_recv, or zstr_recvx on discovery_pipe()). */
void *discovery_socket(discovery_t *self);
void *discovery_pipe(discovery_t *self);
/*  The host-local directory: $PARLEY_RUNTIME_DIR, else
 *  $XDG_RUNTIME_DIR/parley, else /tmp/parley-UID. Writes into out. */
int discovery_runtime_dir(char *out, size_t cap);

void discovery_test(bool verbose);

#endif
