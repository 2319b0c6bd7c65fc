/*  tests/hostile_peer.c — a peer that authenticates properly over CURVE and
 *  then misbehaves, to prove a node rejects what it must and keeps serving.
 *
 *    hostile_peer ENDPOINT NODEID
 *
 *  In order it sends: a valid DM "valid 1"; the same envelope again (replay);
 *  another envelope with the same seq (equivocation); "valid 2" with a flipped
 *  signature byte (forged); "valid 2" with a flipped body byte (tampered);
 *  seq 3 dated an hour ahead (future); an envelope in a scope that is not the
 *  pair's (not ours); a frame announcing a 70,000-byte envelope (oversize);
 *  a garbage frame; a multipart message; a PEERS frame of garbage, forged and
 *  expired address records; and finally the genuine "valid 2".
 *  The test then reads the node's counters and history through its API.
 *  Exit 0 when every step could be sent and the final envelope was ACKed.
 */
#include "../proto/addr.h"
#include "../proto/content.h"
#include "../proto/dm.h"
#include "../proto/envelope.h"
#include "../proto/frame.h"
#include "../proto/identity.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

typedef struct {
    void *sock;         /* DEALER to the node */
    identity_t *me;     /* our fresh identity */
    uint8_t node[32];   /* the node's Ed25519 key */
    prekey_t spk;       /* its prekey */
    uint8_t ek_pub[32]; /* our session */
    uint8_t root[32];
    uint32_t day;
    uint8_t buf[PARLEY_FRAME_MAX];
} hostile_t;

static uint64_t
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
s_recv_frame(hostile_t *h, uint8_t type, frame_t *f, int timeout_ms)
{
    zmq_pollitem_t item = { h->sock, 0, ZMQ_POLLIN, 0 };
    uint64_t end = s_now() + (uint64_t)timeout_ms;
    while (s_now() < end) {
        if (zmq_poll(&item, 1, 100) <= 0) {
            continue;
        }
        int n = zmq_recv(h->sock, h->buf, sizeof h->buf, 0);
        if (n > 0 && frame_decode(h->buf, (size_t)n, f) == PARLEY_OK && f->type == type) {
            return 0;
        }
    }
    return -1;
}

//  Seals text as seq, at ts, in scope (NULL: the pair's) into out.
static size_t
s_seal(hostile_t *h, uint64_t seq, uint64_t ts, const char *text, const uint8_t *scope,
       uint8_t *out)
{
    envelope_t f;
    memset(&f, 0, sizeof f);
    f.version = PARLEY_ENVELOPE_VERSION;
    f.kind = ENVELOPE_KIND_DM;
    memcpy(f.author, identity_ed_pk(h->me), 32);
    if (scope) {
        memcpy(f.scope, scope, 32);
    } else if (dm_scope(h->me, h->node, f.scope) != PARLEY_OK) {
        return 0;
    }
    f.seq = seq;
    f.ts_ms = ts;
    dm_header_t hd;
    memcpy(hd.ek_pub, h->ek_pub, 32);
    hd.spk_id = h->spk.spk_id;
    hd.day0 = h->day;
    hd.day = h->day;
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t clen = 0, len = 0;
    if (content_encode_text(text, strlen(text), content, sizeof content, &clen) != PARLEY_OK
        || dm_envelope_seal(h->me, &f, &hd, h->root, content, clen, out, PARLEY_ENVELOPE_MAX, &len)
               != PARLEY_OK) {
        return 0;
    }
    return len;
}

static int
s_send_env(hostile_t *h, const uint8_t *env, size_t len)
{
    frame_batch_t b;
    frame_batch_begin(&b, h->buf, sizeof h->buf);
    if (frame_batch_add(&b, env, len) != PARLEY_OK) {
        return -1;
    }
    size_t n = frame_batch_finish(&b);
    return zmq_send(h->sock, h->buf, n, 0) < 0 ? -1 : 0;
}

static int
s_connect(hostile_t *h, const char *endpoint)
{
    uint8_t node_x[32];
    void *ctx = zmq_ctx_new();
    h->sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(h->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (identity_ed_to_x(h->node, node_x) != PARLEY_OK
        || zmq_setsockopt(h->sock, ZMQ_CURVE_SERVERKEY, node_x, 32) != 0
        || zmq_setsockopt(h->sock, ZMQ_CURVE_PUBLICKEY, identity_x_pk(h->me), 32) != 0
        || zmq_setsockopt(h->sock, ZMQ_CURVE_SECRETKEY, identity_x_sk(h->me), 32) != 0
        || zmq_connect(h->sock, endpoint) != 0) {
        return -1;
    }
    const char *eps[1] = { "tcp://127.0.0.1:1" };
    size_t len = 0;
    frame_t f;
    if (frame_encode_hello(identity_ed_pk(h->me), 0, "open", eps, 1, h->buf, sizeof h->buf, &len)
            != PARLEY_OK
        || zmq_send(h->sock, h->buf, len, 0) < 0 || s_recv_frame(h, FRAME_PREKEY, &f, 5000)
        || dm_prekey_decode(f.bundle, f.bundle_len, &h->spk) != PARLEY_OK) {
        return -1;
    }
    h->day = (uint32_t)(s_now() / 86400000u);
    return dm_x3dh_initiate(h->me, h->node, &h->spk, h->ek_pub, h->root) == PARLEY_OK ? 0 : -1;
}

//  A PEERS frame with three records a node must refuse: garbage, a valid
//  record with a flipped signature byte, and one that has expired.
static int
s_send_bad_records(hostile_t *h, uint64_t now)
{
    static uint8_t forged[ADDR_RECORD_MAX], expired[ADDR_RECORD_MAX];
    static const uint8_t garbage[] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    addr_record_t r;
    memset(&r, 0, sizeof r);
    memcpy(r.pk, identity_ed_pk(h->me), 32);
    r.n = 1;
    snprintf(r.endpoints[0], sizeof r.endpoints[0], "tcp://127.0.0.1:1");
    r.issued_ms = now;
    r.expires_ms = now + 60000;
    size_t flen = 0, elen = 0;
    if (addr_encode(&r, identity_ed_sk(h->me), forged, sizeof forged, &flen) != PARLEY_OK) {
        return -1;
    }
    forged[flen - 1] ^= 0x01;
    r.issued_ms = now - 7200000;
    r.expires_ms = now - 3600000;
    if (addr_encode(&r, identity_ed_sk(h->me), expired, sizeof expired, &elen) != PARLEY_OK) {
        return -1;
    }
    const uint8_t *recs[3] = { garbage, forged, expired };
    const size_t lens[3] = { sizeof garbage, flen, elen };
    size_t len = 0;
    if (frame_encode_peers(recs, lens, 3, h->buf, sizeof h->buf, &len) != PARLEY_OK) {
        return -1;
    }
    return zmq_send(h->sock, h->buf, len, 0) < 0 ? -1 : 0;
}

static int
s_attack(hostile_t *h)
{
    static uint8_t env[PARLEY_ENVELOPE_MAX], bad[PARLEY_ENVELOPE_MAX];
    uint64_t now = s_now();
    size_t len = s_seal(h, 1, now, "valid 1", NULL, env);
    int rc = len && s_send_env(h, env, len) == 0 ? 0 : -1;
    rc |= s_send_env(h, env, len);                              // replay
    size_t blen = s_seal(h, 1, now, "equivocating", NULL, bad); // same seq
    rc |= blen ? s_send_env(h, bad, blen) : -1;
    size_t len2 = s_seal(h, 2, now + 1, "valid 2", NULL, env);
    memcpy(bad, env, len2);
    bad[len2 - 1] ^= 0x01; // forged signature
    rc |= s_send_env(h, bad, len2);
    memcpy(bad, env, len2);
    bad[PARLEY_ENVELOPE_HEADER_LEN + 80] ^= 0x01; // tampered body
    rc |= s_send_env(h, bad, len2);
    blen = s_seal(h, 3, now + 3600000u, "from the future", NULL, bad);
    rc |= blen ? s_send_env(h, bad, blen) : -1;
    uint8_t scope[32];
    randombytes_buf(scope, sizeof scope);
    blen = s_seal(h, 1, now, "elsewhere", scope, bad);
    rc |= blen ? s_send_env(h, bad, blen) : -1;
    //  An ENVELOPES frame announcing 70,000 bytes: refused before any copy.
    uint8_t big[16] = { PARLEY_PROTO_VERSION, FRAME_ENVELOPES, 0, 1, 0, 1, 0x11, 0x70 };
    rc |= zmq_send(h->sock, big, sizeof big, 0) < 0 ? -1 : 0;
    rc |= zmq_send(h->sock, "\x01\x63garbage", 9, 0) < 0 ? -1 : 0;
    rc |= zmq_send(h->sock, "\x01\x05", 2, ZMQ_SNDMORE) < 0 ? -1 : 0;
    rc |= zmq_send(h->sock, "tail", 4, 0) < 0 ? -1 : 0;
    rc |= s_send_bad_records(h, now);
    rc |= s_send_env(h, env, len2); // the genuine one
    //  The node must still answer: wait for the ACK of "valid 2".
    uint8_t id2[32];
    crypto_generichash(id2, 32, env, len2, NULL, 0);
    frame_t f;
    uint64_t end = s_now() + 5000;
    while (rc == 0 && s_now() < end) {
        if (s_recv_frame(h, FRAME_ACK, &f, 1000) == 0) {
            for (size_t i = 0; i < f.n_ids; i++) {
                if (memcmp(f.ids + 32 * i, id2, 32) == 0) {
                    return 0;
                }
            }
        }
    }
    return -1;
}

int
main(int argc, char **argv)
{
    if (argc != 3 || sodium_init() < 0) {
        fprintf(stderr, "usage: hostile_peer ENDPOINT NODEID\n");
        return 2;
    }
    static hostile_t h;
    h.me = identity_new();
    if (!h.me || identity_parse_node_id(argv[2], h.node) != PARLEY_OK) {
        fprintf(stderr, "hostile_peer: bad node id\n");
        return 2;
    }
    if (s_connect(&h, argv[1]) != 0) {
        fprintf(stderr, "hostile_peer: could not connect and get a prekey\n");
        return 1;
    }
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(h.me), id);
    printf("%s\n", id);
    fflush(stdout);
    int rc = s_attack(&h);
    if (rc != 0) {
        fprintf(stderr, "hostile_peer: the node did not acknowledge the final envelope\n");
    }
    identity_destroy(&h.me);
    return rc ? 1 : 0;
}
