/*  node/transport.h — ZeroMQ sockets as Parley uses them, and the ZAP handler.
 *
 *  Every link is CURVE. The ROUTER (CURVE server) sets a ZAP domain and
 *  ZMQ_ZAP_ENFORCE_DOMAIN, because libzmq otherwise lets every client in when
 *  no ZAP handler answers; with both set, a node whose handler is down refuses
 *  connections. DEALERs (CURVE clients) pin the peer's key: a server holding
 *  any other key fails the handshake. The ZAP handler answers on
 *  inproc://zeromq.zap.01 in the node's own context; it sets User-Id to the
 *  hex of the client's CURVE key, which is who the peer is.
 */
#ifndef PARLEY_NODE_TRANSPORT_H
#define PARLEY_NODE_TRANSPORT_H

#include "../proto/errors.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
/*  In Debian's libzmq 4.3.4 this option works but its name is behind
 *  ZMQ_BUILD_DRAFT_API; the number is fixed by libzmq's ABI. */
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

#define TRANSPORT_ZAP_DOMAIN "parley"
#define TRANSPORT_ZAP_ENDPOINT "inproc://zeromq.zap.01"

typedef struct {
    int heartbeat_ivl_ms;     /* ZMTP PING interval */
    int heartbeat_ttl_ms;     /* how long the remote keeps us without traffic */
    int heartbeat_timeout_ms; /* no traffic for this long: connection dead */
    int reconnect_ivl_ms;     /* first reconnect delay */
    int reconnect_max_ms;     /* backoff ceiling */
    int hwm;                  /* send/receive high-water marks */
} transport_opts_t;

void transport_opts_default(transport_opts_t *opts);

/*  A ROUTER bound to endpoint as CURVE server with key x_sk. The bound
 *  endpoint (with the real port) goes to bound (cap bytes). */
int transport_server_new(void *ctx, const transport_opts_t *opts, const uint8_t x_sk[32],
                         const char *endpoint, void **sock, char *bound, size_t cap) PARLEY_WUR;
/*  A DEALER connected to endpoint as CURVE client pinned to server_x_pk. */
int transport_client_new(void *ctx, const transport_opts_t *opts, const uint8_t x_pk[32],
                         const uint8_t x_sk[32], const uint8_t server_x_pk[32],
                         const char *endpoint, void **sock) PARLEY_WUR;

/*  Admission policy of the ZAP handler. */
typedef bool (*transport_admit_fn)(const uint8_t client_x_pk[32], void *arg);

/*  The REP socket of the ZAP handler, bound in ctx. */
int transport_zap_new(void *ctx, void **sock) PARLEY_WUR;
/*  Answers one pending ZAP request (call when the socket is readable).
 *  Only CURVE is admitted, and only keys admit() accepts (NULL: open mode).
 *  *admitted tells the outcome (for counters). */
int transport_zap_handle(void *sock, transport_admit_fn admit, void *arg,
                         bool *admitted) PARLEY_WUR;

void transport_test(bool verbose);

#endif
