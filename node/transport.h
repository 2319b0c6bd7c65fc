/*  node/transport.h — ZeroMQ sockets as Parley uses them, and the ZAP handler.
 *
 *  Every link is CURVE. The ROUTER (CURVE server) sets a ZAP domain and
 *  ZMQ_ZAP_ENFORCE_DOMAIN, because libzmq otherwise lets every client in when
 *  no ZAP handler answers; with both set, a node whose handler is down refuses
 *  connections. DEALERs (CURVE clients) pin the peer's key: a server holding
 *  any other key fails the handshake. The ZAP handler answers on
 *  inproc://zeromq.zap.01 in the node's own context; it sets User-Id to the
 *  hex of the client's CURVE key, which is who the peer is.
 *
 *  Bytes a peer can make us hold. libzmq queues whole messages per
 *  connection, up to a high-water mark counted in messages, each up to
 *  ZMQ_MAXMSGSIZE = PARLEY_FRAME_MAX + TRANSPORT_FRAME_SLACK (1 MiB + 1 KiB).
 *  With TRANSPORT_HWM = 32 each way, one connection holds at most
 *      received, not yet read by the node:  32 x (1 MiB + 1 KiB) ~= 32 MiB
 *      sent by us, not yet taken by the peer: 32 x (1 MiB + 1 KiB) ~= 32 MiB
 *  plus one message being decoded (<= 1 MiB + 1 KiB) and the kernel's TCP
 *  buffers. An honest peer has two connections with us (its DEALER into our
 *  ROUTER, our DEALER into its ROUTER), so ~64 MiB received and ~64 MiB
 *  unsent per peer: 128 MiB at worst. The bound is per connection: a key
 *  that dials our ROUTER n times can hold n x 32 MiB (nothing here caps the
 *  connections of one key yet). A frame that does not fit the queue
 *  is not lost silently: the sender's zmq_send fails with EAGAIN and the
 *  outbox, liveness or sync resends (node/link.c), and an inbound queue at
 *  its mark stops reading the TCP socket, which pushes back on the peer.
 *  32 frames still cover a pipelined burst: an ENVELOPES frame carries up
 *  to PARLEY_BATCH_MAX envelopes, so 32 frames are up to 2,048 envelopes.
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

/*  Send and receive high-water mark of every socket, in messages per
 *  connection: the bound above is TRANSPORT_HWM x ZMQ_MAXMSGSIZE. */
#define TRANSPORT_HWM 32
/*  ZMQ_MAXMSGSIZE is PARLEY_FRAME_MAX plus this: slack for framing. */
#define TRANSPORT_FRAME_SLACK 1024

/*  Dead connections. ZMTP heartbeats are off: in libzmq 4.3.4 the
 *  heartbeat timer writes on an engine whose input a peer has stopped
 *  (its receive queue full, TRANSPORT_HWM) and then errored, and that
 *  aborts the process (assertion !_io_error, stream_engine_base.cpp:
 *  upstream issue 4841) — any peer could end us by sending faster than we
 *  read. Liveness is the application's PING (node.c s_liveness, proto/
 *  SPEC.md); the kernel tears down a dead connection: TCP keepalive probes
 *  an idle one (idle, then cnt probes intvl apart), and data left
 *  unacknowledged for maxrt_ms closes a busy one (TCP_USER_TIMEOUT). */
typedef struct {
    int keepalive_idle_s;  /* idle this long: start probing */
    int keepalive_intvl_s; /* between probes */
    int keepalive_cnt;     /* unanswered probes: connection dead */
    int maxrt_ms;          /* data unacknowledged this long: connection dead */
    int reconnect_ivl_ms;  /* first reconnect delay */
    int reconnect_max_ms;  /* backoff ceiling */
    int hwm;               /* send/receive high-water marks, messages */
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
