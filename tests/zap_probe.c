/*  tests/zap_probe.c — tries to connect to a node the way an attacker or a
 *  misconfigured peer would, and reports whether the node let it in.
 *
 *    zap_probe ENDPOINT NODEID null|wrongkey|right
 *
 *  null:     a plain (NULL mechanism) DEALER, no encryption at all
 *  wrongkey: a CURVE client that pins a key other than the node's
 *  right:    a CURVE client pinned to the node's real key (the control)
 *
 *  Prints "accepted" if the handshake succeeded within 3 s, else "refused".
 */
#include "../proto/identity.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

int
main(int argc, char **argv)
{
    if (argc != 4 || sodium_init() < 0) {
        fprintf(stderr, "usage: zap_probe ENDPOINT NODEID null|wrongkey|right\n");
        return 2;
    }
    uint8_t ed[32], server_x[32], pk[32], sk[32];
    if (identity_parse_node_id(argv[2], ed) != PARLEY_OK
        || identity_ed_to_x(ed, server_x) != PARLEY_OK) {
        fprintf(stderr, "zap_probe: bad node id\n");
        return 2;
    }
    crypto_box_keypair(pk, sk);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (strcmp(argv[3], "null") != 0) {
        if (strcmp(argv[3], "wrongkey") == 0) {
            uint8_t other_sk[32];
            crypto_box_keypair(server_x, other_sk); // a key the node does not hold
        }
        zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_x, 32);
        zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pk, 32);
        zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sk, 32);
    }
    zmq_socket_monitor(s, "inproc://probe-mon", ZMQ_EVENT_HANDSHAKE_SUCCEEDED);
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    zmq_connect(mon, "inproc://probe-mon");
    if (zmq_connect(s, argv[1]) != 0) {
        fprintf(stderr, "zap_probe: bad endpoint\n");
        return 2;
    }
    //  Something to deliver, so a NULL connection would show if it got in.
    zmq_send(s, "\x01\x05\0\0\0\0\0\0\0\0", 10, ZMQ_DONTWAIT);
    zmq_pollitem_t item = { mon, 0, ZMQ_POLLIN, 0 };
    bool ok = zmq_poll(&item, 1, 3000) > 0;
    puts(ok ? "accepted" : "refused");
    zmq_close(mon);
    zmq_close(s);
    zmq_ctx_term(ctx);
    return 0;
}
