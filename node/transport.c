/*  node/transport.c — socket set-up and the ZAP handler (ZeroMQ RFC 27).
 *
 *  ZAP request frames: version "1.0" | request id | domain | address |
 *  routing id | mechanism | credentials... (CURVE: the 32-byte client key).
 *  Reply: version | request id | status "200"/"400" | text | user id | metadata.
 *  A malformed request is answered 500 when it can be, never trusted.
 */
#include "transport.h"

#include "../proto/b32.h"
#include "../proto/limits.h"
#include "../proto/selftest.h"
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

void
transport_opts_default(transport_opts_t *opts)
{
    opts->keepalive_idle_s = 5;
    opts->keepalive_intvl_s = 1;
    opts->keepalive_cnt = 3;
    opts->maxrt_ms = 30000;
    opts->reconnect_ivl_ms = 100;
    opts->reconnect_max_ms = 5000;
    opts->hwm = TRANSPORT_HWM;
}

static int
s_setint(void *sock, int opt, int value)
{
    return zmq_setsockopt(sock, opt, &value, sizeof value) == 0 ? PARLEY_OK : PARLEY_ERR_IO;
}

static int
s_common(void *sock, const transport_opts_t *opts)
{
    int64_t maxmsg = (int64_t)PARLEY_FRAME_MAX + TRANSPORT_FRAME_SLACK;
    int rc = PARLEY_OK;
    rc |= s_setint(sock, ZMQ_LINGER, 0);
    rc |= s_setint(sock, ZMQ_SNDHWM, opts->hwm);
    rc |= s_setint(sock, ZMQ_RCVHWM, opts->hwm);
    rc |= s_setint(sock, ZMQ_HEARTBEAT_IVL, 0); // off: see transport.h
    rc |= s_setint(sock, ZMQ_TCP_KEEPALIVE, 1);
    rc |= s_setint(sock, ZMQ_TCP_KEEPALIVE_IDLE, opts->keepalive_idle_s);
    rc |= s_setint(sock, ZMQ_TCP_KEEPALIVE_INTVL, opts->keepalive_intvl_s);
    rc |= s_setint(sock, ZMQ_TCP_KEEPALIVE_CNT, opts->keepalive_cnt);
    rc |= s_setint(sock, ZMQ_TCP_MAXRT, opts->maxrt_ms);
    if (zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg) != 0) {
        rc = PARLEY_ERR_IO;
    }
    return rc ? PARLEY_ERR_IO : PARLEY_OK;
}

int
transport_server_new(void *ctx, const transport_opts_t *opts, const uint8_t x_sk[32],
                     const char *endpoint, void **sock, char *bound, size_t cap)
{
    *sock = NULL;
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    if (!s) {
        return PARLEY_ERR_IO;
    }
    int rc = s_common(s, opts);
    rc |= s_setint(s, ZMQ_ROUTER_MANDATORY, 1);
    rc |= s_setint(s, ZMQ_CURVE_SERVER, 1);
    if (zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, x_sk, 32) != 0
        || zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, TRANSPORT_ZAP_DOMAIN, strlen(TRANSPORT_ZAP_DOMAIN))
               != 0) {
        rc = PARLEY_ERR_IO;
    }
    rc |= s_setint(s, ZMQ_ZAP_ENFORCE_DOMAIN, 1);
    if (rc != PARLEY_OK || zmq_bind(s, endpoint) != 0) {
        zmq_close(s);
        return PARLEY_ERR_IO;
    }
    size_t len = cap;
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, bound, &len) != 0) {
        zmq_close(s);
        return PARLEY_ERR_IO;
    }
    *sock = s;
    return PARLEY_OK;
}

int
transport_client_new(void *ctx, const transport_opts_t *opts, const uint8_t x_pk[32],
                     const uint8_t x_sk[32], const uint8_t server_x_pk[32], const char *endpoint,
                     void **sock)
{
    *sock = NULL;
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (!s) {
        return PARLEY_ERR_IO;
    }
    int rc = s_common(s, opts);
    //  Queue nothing for a link that is not up: the outbox is the queue, and
    //  a frame sent into a half-open link would only be lost later.
    rc |= s_setint(s, ZMQ_IMMEDIATE, 1);
    rc |= s_setint(s, ZMQ_RECONNECT_IVL, opts->reconnect_ivl_ms);
    rc |= s_setint(s, ZMQ_RECONNECT_IVL_MAX, opts->reconnect_max_ms);
    if (zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_x_pk, 32) != 0
        || zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, x_pk, 32) != 0
        || zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, x_sk, 32) != 0) {
        rc = PARLEY_ERR_IO;
    }
    if (rc != PARLEY_OK || zmq_connect(s, endpoint) != 0) {
        zmq_close(s);
        return PARLEY_ERR_MALFORMED; // almost always a bad endpoint string
    }
    *sock = s;
    return PARLEY_OK;
}

int
transport_zap_new(void *ctx, void **sock)
{
    *sock = NULL;
    void *s = zmq_socket(ctx, ZMQ_REP);
    if (!s) {
        return PARLEY_ERR_IO;
    }
    if (s_setint(s, ZMQ_LINGER, 0) != PARLEY_OK || zmq_bind(s, TRANSPORT_ZAP_ENDPOINT) != 0) {
        zmq_close(s);
        return PARLEY_ERR_IO;
    }
    *sock = s;
    return PARLEY_OK;
}

#define S_ZAP_PARTS 8

static int
s_send_part(void *sock, const void *data, size_t len, bool more)
{
    return zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0 ? PARLEY_ERR_IO : PARLEY_OK;
}

int
transport_zap_handle(void *sock, transport_admit_fn admit, void *arg, bool *admitted)
{
    *admitted = false;
    zmq_msg_t parts[S_ZAP_PARTS];
    size_t n = 0;
    int more = 1;
    int rc = PARLEY_OK;
    //  Read the whole request, keeping at most S_ZAP_PARTS parts; drain the rest.
    while (more) {
        zmq_msg_t scratch;
        zmq_msg_t *m = n < S_ZAP_PARTS ? &parts[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            rc = PARLEY_ERR_IO;
            break;
        }
        more = zmq_msg_more(m);
        if (m == &scratch) {
            zmq_msg_close(m);
        } else {
            n++;
        }
    }
    if (rc != PARLEY_OK && n == 0) {
        return rc;
    }
    const char *status = "400";
    const char *text = "denied";
    char user[65] = "";
    bool wellformed =
        n >= 6 && zmq_msg_size(&parts[0]) == 3 && memcmp(zmq_msg_data(&parts[0]), "1.0", 3) == 0;
    if (!wellformed) {
        status = "500";
        text = "malformed ZAP request";
    } else if (zmq_msg_size(&parts[5]) == 5 && memcmp(zmq_msg_data(&parts[5]), "CURVE", 5) == 0
               && n == 7 && zmq_msg_size(&parts[6]) == 32) {
        const uint8_t *key = zmq_msg_data(&parts[6]);
        if (!admit || admit(key, arg)) {
            status = "200";
            text = "OK";
            if (hex_encode(key, 32, user, sizeof user) != PARLEY_OK) {
                status = "500";
                text = "internal";
                user[0] = '\0';
            }
        }
    } else {
        text = "only CURVE is accepted";
    }
    *admitted = status[0] == '2';
    //  A REP socket must answer every request it received, even a bad one.
    const void *reqid = n > 1 ? zmq_msg_data(&parts[1]) : "";
    size_t reqid_len = n > 1 ? zmq_msg_size(&parts[1]) : 0;
    rc = s_send_part(sock, "1.0", 3, true);
    rc |= s_send_part(sock, reqid, reqid_len, true);
    rc |= s_send_part(sock, status, 3, true);
    rc |= s_send_part(sock, text, strlen(text), true);
    rc |= s_send_part(sock, user, strlen(user), true);
    rc |= s_send_part(sock, "", 0, false);
    for (size_t i = 0; i < n && i < S_ZAP_PARTS; i++) {
        zmq_msg_close(&parts[i]);
    }
    return rc ? PARLEY_ERR_IO : PARLEY_OK;
}

/* ---- self-test ---- */

//  Waits up to ms for a message on sock; true if one arrived.
static bool
s_wait_recv(void *sock, int ms, char *buf, size_t cap)
{
    zmq_pollitem_t item = { sock, 0, ZMQ_POLLIN, 0 };
    if (zmq_poll(&item, 1, ms) <= 0) {
        return false;
    }
    return zmq_recv(sock, buf, cap, ZMQ_DONTWAIT) >= 0;
}

//  Sets up a server in ctx (with or without a ZAP handler) and a client with
//  the given pinned key; returns whether a message got through.
static bool
s_link_works(bool with_zap, bool right_key, bool pump_zap)
{
    void *ctx = zmq_ctx_new();
    transport_opts_t opts;
    transport_opts_default(&opts);
    uint8_t spk[32], ssk[32], cpk[32], csk[32], other[32], osk[32];
    //  CURVE keys are X25519 keys: libsodium's box key pairs serve.
    crypto_box_keypair(spk, ssk);
    crypto_box_keypair(cpk, csk);
    crypto_box_keypair(other, osk);
    void *zap = NULL;
    if (with_zap) {
        CHECK(transport_zap_new(ctx, &zap) == PARLEY_OK);
    }
    void *server = NULL, *client = NULL;
    char bound[256];
    CHECK(transport_server_new(ctx, &opts, ssk, "tcp://127.0.0.1:*", &server, bound, sizeof bound)
          == PARLEY_OK);
    CHECK(transport_client_new(ctx, &opts, cpk, csk, right_key ? spk : other, bound, &client)
          == PARLEY_OK);
    bool got = false;
    char buf[64];
    for (int i = 0; i < 40 && !got; i++) {
        if (zap && pump_zap) {
            zmq_pollitem_t item = { zap, 0, ZMQ_POLLIN, 0 };
            bool admitted;
            if (zmq_poll(&item, 1, 0) > 0) {
                CHECK(transport_zap_handle(zap, NULL, NULL, &admitted) == PARLEY_OK);
            }
        }
        zmq_send(client, "hi", 2, ZMQ_DONTWAIT); // EAGAIN until the handshake is done
        got = s_wait_recv(server, 25, buf, sizeof buf);
    }
    zmq_close(client);
    zmq_close(server);
    if (zap) {
        zmq_close(zap);
    }
    zmq_ctx_term(ctx);
    return got;
}

//  The options that bound what a peer makes us hold are the ones set, on
//  both kinds of socket.
static void
s_bounds_set(void)
{
    void *ctx = zmq_ctx_new();
    transport_opts_t opts;
    transport_opts_default(&opts);
    CHECK(opts.hwm == TRANSPORT_HWM);
    uint8_t pk[32], sk[32];
    crypto_box_keypair(pk, sk);
    void *server = NULL, *client = NULL;
    char bound[256];
    CHECK(transport_server_new(ctx, &opts, sk, "tcp://127.0.0.1:*", &server, bound, sizeof bound)
          == PARLEY_OK);
    CHECK(transport_client_new(ctx, &opts, pk, sk, pk, bound, &client) == PARLEY_OK);
    void *socks[2] = { server, client };
    for (size_t i = 0; i < 2; i++) {
        int hwm = 0;
        int64_t maxmsg = 0;
        size_t len = sizeof hwm;
        CHECK(zmq_getsockopt(socks[i], ZMQ_RCVHWM, &hwm, &len) == 0 && hwm == TRANSPORT_HWM);
        len = sizeof hwm;
        CHECK(zmq_getsockopt(socks[i], ZMQ_SNDHWM, &hwm, &len) == 0 && hwm == TRANSPORT_HWM);
        len = sizeof maxmsg;
        CHECK(zmq_getsockopt(socks[i], ZMQ_MAXMSGSIZE, &maxmsg, &len) == 0
              && maxmsg == (int64_t)PARLEY_FRAME_MAX + TRANSPORT_FRAME_SLACK);
        //  The bound transport.h states: at most 33 MiB queued per direction.
        CHECK((int64_t)hwm * maxmsg <= 33 * 1024 * 1024);
        //  No ZMTP heartbeats (transport.h: they can abort us); the kernel
        //  watches the connection instead.
        int v = -1;
        len = sizeof v;
        CHECK(zmq_getsockopt(socks[i], ZMQ_HEARTBEAT_IVL, &v, &len) == 0 && v == 0);
        len = sizeof v;
        CHECK(zmq_getsockopt(socks[i], ZMQ_TCP_KEEPALIVE, &v, &len) == 0 && v == 1);
        len = sizeof v;
        CHECK(zmq_getsockopt(socks[i], ZMQ_TCP_MAXRT, &v, &len) == 0 && v == opts.maxrt_ms);
    }
    zmq_close(client);
    zmq_close(server);
    zmq_ctx_term(ctx);
    sodium_memzero(sk, sizeof sk);
}

void
transport_test(bool verbose)
{
    (void)verbose;
    s_bounds_set();
    CHECK(s_link_works(true, true, true));    // control: the right key gets in
    CHECK(!s_link_works(true, false, true));  // a key other than the pinned one: refused
    CHECK(!s_link_works(false, true, false)); // no ZAP handler: the node refuses everyone
    CHECK(!s_link_works(true, true, false));  // handler bound but not answering: refused
}
