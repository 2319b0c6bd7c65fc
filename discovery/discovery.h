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
 *      "NAME"   SOURCE INSTANCE            the mDNS instance name we publish
 *                                          under, at start and at each change
 *                                          (blinded mode draws it at random)
 *
 *  SOURCE is "local" or "mdns". Discovery never decides trust: the node
 *  dials with CURVE pinned to NODE_ID, and only the handshake proves it.
 *  GONE is not liveness either (a crashed host's mDNS records linger).
 *
 *  Private networks (SPEC §19.3). The node may send two commands on the pipe:
 *
 *      "KEYS" SECRETS      SECRETS: one frame of n × 32 bytes, n = 0..4
 *      "HUSH"              silent until the next KEYS
 *
 *  the network secrets it holds, the current one first (it announces; the
 *  others, recent epochs, only open what members still announce under
 *  them); n = 0 goes back to open mode. The mDNS source then withdraws its
 *  service and publishes a blinded record (no id, no tag) under a fresh
 *  random instance name, forgets what it had found (GONE) and browses again,
 *  reporting only the blinded records the keys open — with the node id found
 *  inside, so SEEN keeps its form — and ignoring open ones. A malformed
 *  command (another size, more frames) is logged once per kind and ignored.
 *  The actor wipes the frame; the source keeps only keys derived from the
 *  secrets (sodium_malloc). discovery_config_t.keys sets them at start.
 *  HUSH (discovery_config_t.hush at start) is for a node that joins a
 *  network and holds no secret yet: the mDNS source withdraws its service
 *  and publishes and reports nothing, so the LAN does not hear its id.
 *  The host-local source stays as it is: its endpoint files name the node
 *  in clear, but only to this user (a 0700 directory of theirs), who can
 *  read the node's home anyway.
 */
#ifndef PARLEY_DISCOVERY_DISCOVERY_H
#define PARLEY_DISCOVERY_DISCOVERY_H

#include "source.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *node_id;       /* our base32 id (52 chars) */
    uint16_t port;             /* our ROUTER's TCP port */
    const char *tag;           /* network tag, "open" */
    bool mdns;                 /* run the Avahi source */
    bool local;                /* run the host-local source */
    const char *runtime_dir;   /* host-local directory (see discovery_runtime_dir) */
    discovery_log_fn *log;     /* the node's logger, or NULL */
    void *log_arg;             /* passed to log */
    const uint8_t (*keys)[32]; /* network secrets at start (see "KEYS"), or NULL; copied */
    size_t n_keys;             /* 0..4; 0: open mode */
    bool hush;                 /* no keys: start silent (see "HUSH") */
} discovery_config_t;

typedef struct _discovery_t discovery_t;

/*  Starts the actor. Caller owns the result (NULL on failure, or more than
 *  4 keys). */
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
