/*  tests/hostile_peer.c — a peer that authenticates properly over CURVE and
 *  then misbehaves, to prove a node rejects what it must and keeps serving.
 *
 *    hostile_peer ENDPOINT NODEID [MODE [SEED]]
 *
 *  SEED (64 hex digits) fixes our Ed25519 key, so that a later run can show
 *  the node still refuses it; without it every run is a fresh key.
 *
 *  classic (the default) sends, in order: a valid DM "valid 1"; the same
 *  envelope again (replay); another envelope with the same seq
 *  (equivocation); "valid 2" with a flipped signature byte (forged); "valid
 *  2" with a flipped body byte (tampered); seq 3 dated an hour ahead
 *  (future); an envelope in a scope that is not the pair's (not ours); a
 *  frame announcing a 70,000-byte envelope (oversize); a garbage frame; a
 *  multipart message; a PEERS frame of garbage, forged and expired address
 *  records; and finally the genuine "valid 2". Exit 0 when every step could
 *  be sent and the final envelope was ACKed.
 *
 *  The other modes abuse replication (proto/sync.h, node/replica.c):
 *
 *    noconverge  opens a round over our DM scope with the node and answers
 *                every RECONCILE with a fresh random fingerprint over the
 *                whole key space, so the exchange never ends; goes on until
 *                BYE (the node gave up on us) or 1,000 messages.
 *    bigranges   RECONCILE at the limits, each of which must be answered:
 *                one block of SYNC_RANGES_MAX ranges; SYNC_BLOCKS_MAX blocks
 *                of scopes the node does not hold; SYNC_BLOCKS_MAX blocks of
 *                our scope; IDS ranges of SYNC_IDS_MAX ids; then a WANT of
 *                SYNC_WANT_MAX. Then frames one past each limit and malformed
 *                ones, every one checked against our own decoder first (each
 *                must be counted bad_frame); a PING that must be answered; a
 *                frame past the transport's size limit (the node's socket
 *                drops the connection) and a fresh HELLO that must be answered.
 *    wantflood   stores one genuine DM, then sends WANT frames of
 *                SYNC_WANT_MAX prefixes, random ones alternating with that
 *                DM's prefix over and over, far past the node's budget of
 *                outstanding prefixes, until BYE or 400 frames.
 *                (wantflood-random, wantflood-echo: one kind only.)
 *    envflood    ENVELOPES of validly signed envelopes in random scopes (not
 *                the node's) alternating with forged ones, until BYE or 40
 *                frames of 64.
 *    redial      no HELLO: only whether the node admits our key (handshake).
 *
 *    diskflood[:S]  for S seconds (default 15), ENVELOPES frames of large
 *                (32 KB of text) validly signed DMs in our scope with the
 *                node, with a genuine header (our session) sealed under a
 *                random key: each one is undecryptable, as fast as the link
 *                takes them. Variants: diskflood-ek[:S], a fresh ephemeral
 *                key in each header (each would open a receiving session);
 *                equivflood[:S], small envelopes all at seq 1 (equivocation
 *                evidence); diskflood-relay[:S], the big ones in our scope
 *                with a fresh key that is not the node's (a relay keeps
 *                them for others); diskflood-fresh[:S], each by a fresh
 *                author key in its scope with the node (forwarded, as it
 *                were: no author's quota fills). Prints sent, bytes, then
 *                the ban report.
 *
 *    scopestore[:N]  N (default 65,536) small envelopes, each by a fresh
 *                author key in its DM scope with another fresh key: every one
 *                a scope a relay never held and takes up when it stores it
 *                (the connection's key is ours; envelopes carry their own).
 *                Stops at BYE; then the ban report.
 *
 *    bigflood[:S]  for S seconds (default 10), frames of exactly
 *                PARLEY_FRAME_MAX bytes (a version byte, an unknown type,
 *                random bytes: each one a bad frame) as fast as the link
 *                takes them, never reading. Whatever the node has not read
 *                yet waits in its libzmq queues: the test watches the node's
 *                memory (node/transport.h states the bound). Then a PING
 *                after draining (the node still answers us).
 *
 *  After noconverge, wantflood and envflood it checks what a ban means: a
 *  PING on the old connection gets no PONG, and a new connection with the
 *  same key fails its handshake (ZAP refuses it).
 *
 *  Cost probes (they show how much of the node's loop a peer can take):
 *
 *    hintflood[:N]   N RECONCILE messages (not OPEN) of SYNC_BLOCKS_MAX
 *                    blocks, each a random scope hinting two fresh authors;
 *                    each sent after the answer to the one before.
 *    hintburst[:N]   the same, all N built first and sent together.
 *    scopeflood[:N]  blocks of the node's real DM scope with a fresh key
 *                    each, that key as the hint (the node adopts each scope).
 *
 *  Peer-table floods (node/link.h states the bounds):
 *
 *    helloflood[:N]   N fresh keys (default 2000), each on its own DEALER:
 *                     a CURVE handshake and a HELLO, then the socket closes
 *                     once the node answered (or after 5 s); at most
 *                     S_FLOOD_OPEN sockets open at once. Reports each
 *                     key (key HEX), hello_sent, hello_answered,
 *                     hello_timeout.
 *    gossipflood[:N]  over our one connection, PEERS frames carrying N
 *                     (default 2000) validly signed address records of
 *                     fresh keys, all at tcp://127.0.0.1:1 (nothing listens
 *                     there); then a PING. Reports records_sent, pong, bye.
 *
 *  Output: our node id on the first line, then one "name value" line per
 *  observation (sent, answered, bye, pong, reconnect, malformed, answer_ms,
 *  ...) for the test to check against the node's counters. Exit 0 when the
 *  mode ran to its end (whatever the node did); 1 when we could not connect
 *  or send; 2 on bad arguments.
 */
#include "../proto/addr.h"
#include "../proto/content.h"
#include "../proto/dm.h"
#include "../proto/envelope.h"
#include "../proto/frame.h"
#include "../proto/identity.h"
#include "../proto/sync.h"
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

typedef struct {
    void *ctx;          /* ZeroMQ context */
    void *sock;         /* DEALER to the node */
    identity_t *me;     /* our identity: fresh, or from SEED */
    uint8_t node[32];   /* the node's Ed25519 key */
    prekey_t spk;       /* its prekey */
    uint8_t ek_pub[32]; /* our session */
    uint8_t root[32];
    uint32_t day;
    uint8_t scope[32];                    /* our DM scope with the node */
    bool bye;                             /* the node said BYE */
    uint8_t buf[PARLEY_FRAME_MAX];        /* frames received, and classic's sends */
    uint8_t out[PARLEY_FRAME_MAX + 8192]; /* frames we build (one may be over the limit) */
} hostile_t;

static uint64_t
s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

//  The next frame of any type within timeout_ms (a BYE is noted); -1 if none.
static int
s_recv_any(hostile_t *h, frame_t *f, int timeout_ms)
{
    zmq_pollitem_t item = { h->sock, 0, ZMQ_POLLIN, 0 };
    uint64_t end = s_now() + (uint64_t)timeout_ms;
    do {
        if (zmq_poll(&item, 1, timeout_ms > 100 ? 100 : timeout_ms) <= 0) {
            continue;
        }
        int n = zmq_recv(h->sock, h->buf, sizeof h->buf, ZMQ_DONTWAIT);
        if (n > 0 && (size_t)n <= sizeof h->buf
            && frame_decode(h->buf, (size_t)n, f) == PARLEY_OK) {
            h->bye = h->bye || f->type == FRAME_BYE;
            return 0;
        }
    } while (s_now() < end);
    return -1;
}

static int
s_recv_frame(hostile_t *h, uint8_t type, frame_t *f, int timeout_ms)
{
    uint64_t end = s_now() + (uint64_t)timeout_ms;
    while (s_now() < end) {
        if (s_recv_any(h, f, 100) == 0 && f->type == type) {
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
    frame_batch_begin(&b, h->out, sizeof h->out);
    if (frame_batch_add(&b, env, len) != PARLEY_OK) {
        return -1;
    }
    size_t n = frame_batch_finish(&b);
    return zmq_send(h->sock, h->out, n, 0) < 0 ? -1 : 0;
}

//  A DEALER to the node with our CURVE key, or NULL.
static void *
s_socket(hostile_t *h, const char *endpoint)
{
    uint8_t node_x[32];
    void *s = zmq_socket(h->ctx, ZMQ_DEALER);
    int zero = 0, timeout = 5000;
    if (!s || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) != 0
        || zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof timeout) != 0
        || identity_ed_to_x(h->node, node_x) != PARLEY_OK
        || zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, node_x, 32) != 0
        || zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, identity_x_pk(h->me), 32) != 0
        || zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, identity_x_sk(h->me), 32) != 0
        || zmq_connect(s, endpoint) != 0) {
        if (s) {
            zmq_close(s);
        }
        return NULL;
    }
    return s;
}

//  HELLO, then the node's PREKEY within timeout_ms.
static int
s_hello(hostile_t *h, int timeout_ms)
{
    const char *eps[1] = { "tcp://127.0.0.1:1" };
    size_t len = 0;
    frame_t f;
    if (frame_encode_hello(identity_ed_pk(h->me), 0, "open", eps, 1, h->out, sizeof h->out, &len)
            != PARLEY_OK
        || zmq_send(h->sock, h->out, len, 0) < 0 || s_recv_frame(h, FRAME_PREKEY, &f, timeout_ms)
        || dm_prekey_decode(f.bundle, f.bundle_len, &h->spk) != PARLEY_OK) {
        return -1;
    }
    return 0;
}

static int
s_connect(hostile_t *h, const char *endpoint)
{
    h->ctx = zmq_ctx_new();
    if (!h->ctx || !(h->sock = s_socket(h, endpoint)) || s_hello(h, 5000) != 0
        || dm_scope(h->me, h->node, h->scope) != PARLEY_OK) {
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
    if (frame_encode_peers(recs, lens, 3, h->out, sizeof h->out, &len) != PARLEY_OK) {
        return -1;
    }
    return zmq_send(h->sock, h->out, len, 0) < 0 ? -1 : 0;
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

/* ------------------------------------------------------ shared by the modes */

static int
s_send(hostile_t *h, const uint8_t *buf, size_t len)
{
    return zmq_send(h->sock, buf, len, 0) == (int)len ? 0 : -1;
}

//  Reads and drops whatever the node sent within ms (a BYE is noted).
static void
s_drain(hostile_t *h, int ms)
{
    frame_t f;
    uint64_t end = s_now() + (uint64_t)ms;
    while (s_now() < end && !h->bye) {
        (void)s_recv_any(h, &f, 50);
    }
}

//  PING; milliseconds until its PONG, or -1 when none came within timeout_ms.
static long
s_ping(hostile_t *h, int timeout_ms)
{
    uint64_t nonce = ((uint64_t)randombytes_random() << 32) | randombytes_random();
    size_t len = 0;
    uint64_t t0 = s_now();
    if (frame_encode_ping(FRAME_PING, nonce, h->out, sizeof h->out, &len) != PARLEY_OK
        || s_send(h, h->out, len) != 0) {
        return -1;
    }
    frame_t f;
    while (s_now() < t0 + (uint64_t)timeout_ms) {
        if (s_recv_any(h, &f, 100) == 0 && f.type == FRAME_PONG && f.nonce == nonce) {
            return (long)(s_now() - t0);
        }
    }
    return -1;
}

//  Drops our connection and dials again with the same key: "accepted" when
//  the CURVE handshake succeeds within 3 s, "refused" when it fails or
//  never completes (a banned key: ZAP denies it).
static const char *
s_redial(hostile_t *h, const char *endpoint, long *ms)
{
    uint64_t t0 = s_now();
    if (h->sock) {
        zmq_close(h->sock);
        h->sock = NULL;
    }
    void *s = s_socket(h, endpoint);
    if (!s) {
        return "error";
    }
    int events = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
                 | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    void *mon = zmq_socket(h->ctx, ZMQ_PAIR);
    const char *verdict = "error";
    if (mon && zmq_socket_monitor(s, "inproc://hostile-redial", events) == 0
        && zmq_connect(mon, "inproc://hostile-redial") == 0) {
        verdict = "refused";
        zmq_pollitem_t item = { mon, 0, ZMQ_POLLIN, 0 };
        uint8_t ev[64];
        int n;
        if (zmq_poll(&item, 1, 3000) > 0 && (n = zmq_recv(mon, ev, sizeof ev, 0)) >= 2) {
            uint16_t event = 0;
            memcpy(&event, ev, 2); // host order, by libzmq's definition
            verdict = event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED ? "accepted" : "refused";
            *ms = (long)(s_now() - t0);
        }
    }
    int zero = 0;
    if (mon) {
        zmq_setsockopt(mon, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(mon);
    }
    h->sock = s;
    return verdict;
}

//  What a ban looks like from here: the old connection is ignored (no PONG)
//  and the same key cannot connect again.
static void
s_report_ban(hostile_t *h, const char *endpoint)
{
    s_drain(h, 300);
    printf("bye %d\n", h->bye ? 1 : 0);
    printf("pong %d\n", s_ping(h, 1000) >= 0 ? 1 : 0);
    long ms = -1;
    printf("reconnect %s\n", s_redial(h, endpoint, &ms));
    printf("reconnect_ms %ld\n", ms);
}

static void
s_bound_zero(sync_bound_t *b)
{
    memset(b, 0, sizeof *b);
}

//  One range over the whole key space with a fingerprint that matches
//  nothing: a random sum, and a count too large to be listed.
static void
s_block_random_fp(sync_writer_t *w, const uint8_t scope[32], const uint8_t *hint)
{
    sync_bound_t lower, upper;
    s_bound_zero(&lower);
    sync_bound_inf(&upper);
    sync_acc_t acc;
    randombytes_buf(acc.sum, sizeof acc.sum);
    acc.count = 1000 + randombytes_uniform(1000);
    sync_writer_begin(w, scope, hint, hint ? 1 : 0);
    sync_writer_fp(w, &lower, &upper, &acc);
    sync_writer_end(w);
}

/* ------------------------------------------------------------- noconverge */

static int
s_noconverge(hostile_t *h)
{
    sync_writer_t w;
    sync_writer_init(&w, h->out, sizeof h->out, SYNC_F_OPEN, NULL);
    s_block_random_fp(&w, h->scope, identity_ed_pk(h->me));
    size_t len = sync_writer_finish(&w);
    if (len == 0 || s_send(h, h->out, len) != 0) {
        return -1;
    }
    size_t sent = 1, answered = 0, quiet = 0;
    uint64_t end = s_now() + 20000;
    frame_t f;
    while (!h->bye && sent < 1000 && s_now() < end) {
        if (s_recv_any(h, &f, 500) != 0) {
            //  No answer: stir again with a fresh OPEN (a node that stopped
            //  reading us stays silent; three of those and we stop).
            if (++quiet == 3) {
                break;
            }
            sync_writer_init(&w, h->out, sizeof h->out, SYNC_F_OPEN, NULL);
            s_block_random_fp(&w, h->scope, identity_ed_pk(h->me));
        } else if (f.type != FRAME_RECONCILE) {
            continue;
        } else {
            answered++;
            quiet = 0;
            //  Every scope it answered gets a new random fingerprint.
            sync_msg_reader_t rd;
            sync_msg_open(&rd, f.sync, f.sync_len);
            sync_writer_init(&w, h->out, sizeof h->out, 0, NULL);
            sync_block_t blk;
            size_t n = 0;
            while (n < 64 && sync_msg_next(&rd, &blk)) {
                s_block_random_fp(&w, blk.scope, NULL);
                n++;
            }
            if (n == 0) {
                s_block_random_fp(&w, h->scope, identity_ed_pk(h->me));
            }
        }
        len = sync_writer_finish(&w);
        if (len == 0 || s_send(h, h->out, len) != 0) {
            return -1;
        }
        sent++;
    }
    //  After a BYE, one more message must go unanswered.
    size_t before = answered;
    sync_writer_init(&w, h->out, sizeof h->out, SYNC_F_OPEN, NULL);
    s_block_random_fp(&w, h->scope, identity_ed_pk(h->me));
    len = sync_writer_finish(&w);
    if (len == 0 || s_send(h, h->out, len) != 0) {
        return -1;
    }
    uint64_t until = s_now() + 1000;
    while (s_now() < until) {
        if (s_recv_any(h, &f, 100) == 0 && f.type == FRAME_RECONCILE) {
            answered++;
        }
    }
    printf("sent %zu\nanswered %zu\nanswered_after %zu\n", sent, before, answered - before);
    return 0;
}

/* -------------------------------------------------------------- bigranges */

static int
s_prefix_cmp(const void *a, const void *b)
{
    return memcmp(a, b, SYNC_PREFIX_LEN);
}

//  Random prefixes in ascending order (strictly: duplicates are redrawn).
static void
s_sorted_prefixes(uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        randombytes_buf(out + i * SYNC_PREFIX_LEN, SYNC_PREFIX_LEN);
    }
    for (;;) {
        qsort(out, n, SYNC_PREFIX_LEN, s_prefix_cmp);
        bool dup = false;
        for (size_t i = 1; i < n; i++) {
            if (memcmp(out + (i - 1) * SYNC_PREFIX_LEN, out + i * SYNC_PREFIX_LEN, SYNC_PREFIX_LEN)
                == 0) {
                randombytes_buf(out + i * SYNC_PREFIX_LEN, SYNC_PREFIX_LEN);
                dup = true;
            }
        }
        if (!dup) {
            return;
        }
    }
}

static void
s_rc_begin(hostile_t *h, bytes_writer_t *w, uint8_t flags, uint16_t n_blocks)
{
    bytes_writer_init(w, h->out, sizeof h->out);
    bytes_put_u8(w, PARLEY_PROTO_VERSION);
    bytes_put_u8(w, FRAME_RECONCILE);
    bytes_put_u8(w, flags);
    bytes_put_u16(w, n_blocks);
}

static size_t
s_rc_len(hostile_t *h, const bytes_writer_t *w)
{
    return bytes_writer_ok(w) ? (size_t)(w->p - h->out) : 0;
}

//  The i-th of n bounds of a block: ts i + 1 (prefix empty), the last one
//  infinity. *prev is the previous bound's ts.
static void
s_rc_bound(bytes_writer_t *w, size_t i, size_t n, uint64_t *prev)
{
    if (i + 1 == n) {
        bytes_put_varint(w, 0);
        return;
    }
    uint64_t ts = i + 1;
    bytes_put_varint(w, ts - *prev + 1);
    bytes_put_u8(w, 0);
    *prev = ts;
}

static void
s_rc_fp(bytes_writer_t *w)
{
    uint8_t fp[SYNC_FP_LEN];
    randombytes_buf(fp, sizeof fp);
    bytes_put_u8(w, SYNC_FP);
    bytes_put_varint(w, 1000 + randombytes_uniform(1000));
    bytes_put(w, fp, sizeof fp);
}

//  OPEN with one block over our DM scope of n ranges, each a random FP.
static size_t
s_many_ranges(hostile_t *h, size_t n)
{
    bytes_writer_t w;
    s_rc_begin(h, &w, SYNC_F_OPEN, 1);
    bytes_put(&w, h->scope, 32);
    bytes_put_u8(&w, 1);
    bytes_put(&w, identity_ed_pk(h->me), 32);
    bytes_put_u16(&w, (uint16_t)n);
    uint64_t prev = 0;
    for (size_t i = 0; i < n; i++) {
        s_rc_bound(&w, i, n, &prev);
        s_rc_fp(&w);
    }
    return s_rc_len(h, &w);
}

//  OPEN with n blocks of one range each. ours: our DM scope, a random FP
//  (each block is answered, until the answer is full); else random scopes
//  the node does not hold, REQ (each block is skipped).
static size_t
s_many_blocks(hostile_t *h, size_t n, bool ours)
{
    bytes_writer_t w;
    s_rc_begin(h, &w, SYNC_F_OPEN, (uint16_t)n);
    for (size_t i = 0; i < n; i++) {
        if (ours) {
            bytes_put(&w, h->scope, 32);
            bytes_put_u8(&w, 1);
            bytes_put(&w, identity_ed_pk(h->me), 32);
        } else {
            uint8_t scope[32];
            randombytes_buf(scope, sizeof scope);
            bytes_put(&w, scope, 32);
            bytes_put_u8(&w, 0);
        }
        bytes_put_u16(&w, 1);
        bytes_put_varint(&w, 0);
        if (ours) {
            s_rc_fp(&w);
        } else {
            bytes_put_u8(&w, SYNC_REQ);
        }
    }
    return s_rc_len(h, &w);
}

/*  IDS ranges of SYNC_IDS_MAX ids that fit one frame (63 at 1 MiB). */
#define S_IDS_RANGES ((PARLEY_FRAME_MAX - 256u) / (SYNC_IDS_MAX * SYNC_PREFIX_LEN + 8u))

//  OPEN with one block over our DM scope of n_ranges IDS ranges of n_ids
//  random ids each (ids we do not hold: the node wants them all).
static size_t
s_many_ids(hostile_t *h, size_t n_ranges, size_t n_ids)
{
    static uint8_t ids[(SYNC_IDS_MAX + 1) * SYNC_PREFIX_LEN];
    if (n_ids > SYNC_IDS_MAX + 1) {
        return 0;
    }
    bytes_writer_t w;
    s_rc_begin(h, &w, SYNC_F_OPEN, 1);
    bytes_put(&w, h->scope, 32);
    bytes_put_u8(&w, 1);
    bytes_put(&w, identity_ed_pk(h->me), 32);
    bytes_put_u16(&w, (uint16_t)n_ranges);
    uint64_t prev = 0;
    for (size_t i = 0; i < n_ranges; i++) {
        s_rc_bound(&w, i, n_ranges, &prev);
        s_sorted_prefixes(ids, n_ids);
        bytes_put_u8(&w, SYNC_IDS);
        bytes_put_varint(&w, n_ids);
        bytes_put(&w, ids, n_ids * SYNC_PREFIX_LEN);
    }
    return s_rc_len(h, &w);
}

//  A WANT frame that claims count prefixes and holds have_bytes random
//  bytes of them (which need not be count × SYNC_PREFIX_LEN).
static size_t
s_raw_want(hostile_t *h, uint16_t count, size_t have_bytes)
{
    if (have_bytes > sizeof h->out - 4) {
        return 0;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, h->out, sizeof h->out);
    bytes_put_u8(&w, PARLEY_PROTO_VERSION);
    bytes_put_u8(&w, FRAME_WANT);
    bytes_put_u16(&w, count);
    randombytes_buf(w.p, have_bytes);
    w.p += have_bytes;
    return (size_t)(w.p - h->out);
}

/*  Small RECONCILE frames, each broken in one way. The base is an OPEN with
 *  one block over our DM scope, one hint (us), three ranges:
 *  [0, 10) FP, [10, 20) IDS of three ids, [20, inf) REQ. */
enum {
    B_FLAGS,         /* an unknown flag bit */
    B_DIGEST_ALONE,  /* DIGEST without OPEN */
    B_DIGEST_BLOCKS, /* DIGEST with a block */
    B_HINTS,         /* SYNC_HINTS_MAX + 1 hints */
    B_NO_RANGES,     /* a block of zero ranges */
    B_EQUAL,         /* the second bound equals the first */
    B_LAST_FINITE,   /* the last bound is not infinity */
    B_INF_EARLY,     /* infinity before the last range */
    B_MODE,          /* an unknown range mode */
    B_IDS_ORDER,     /* ids not ascending */
    B_IDS_DUP,       /* an id twice */
    B_PREFIX_LEN,    /* a bound prefix of 33 bytes */
    B_VARINT,        /* a non-minimal varint */
    B_TS_OVERFLOW,   /* bound timestamps that wrap past 2^64 */
    B_IDS_SHORT,     /* an IDS count past the end of the frame */
    B_TRAILING,      /* a byte after the last block */
    B_TRUNCATED,     /* cut inside the last range */
    B_BLOCKS_CLAIM,  /* n_blocks 65535 with one block present */
    B_COUNT
};

static size_t
s_small_bad(hostile_t *h, int bad)
{
    bytes_writer_t w;
    if (bad == B_DIGEST_ALONE || bad == B_DIGEST_BLOCKS) {
        bytes_writer_init(&w, h->out, sizeof h->out);
        bytes_put_u8(&w, PARLEY_PROTO_VERSION);
        bytes_put_u8(&w, FRAME_RECONCILE);
        bytes_put_u8(&w, bad == B_DIGEST_ALONE ? SYNC_F_DIGEST : SYNC_F_OPEN | SYNC_F_DIGEST);
        uint8_t digest[SYNC_FP_LEN];
        randombytes_buf(digest, sizeof digest);
        bytes_put(&w, digest, sizeof digest);
        bytes_put_u16(&w, bad == B_DIGEST_ALONE ? 0 : 1);
        if (bad == B_DIGEST_ALONE) {
            return s_rc_len(h, &w);
        }
    } else {
        s_rc_begin(h, &w, bad == B_FLAGS ? SYNC_F_OPEN | 0x04u : SYNC_F_OPEN,
                   bad == B_BLOCKS_CLAIM ? 0xffffu : 1);
    }
    bytes_put(&w, h->scope, 32);
    size_t n_hints = bad == B_HINTS ? SYNC_HINTS_MAX + 1 : 1;
    bytes_put_u8(&w, (uint8_t)n_hints);
    for (size_t k = 0; k < n_hints; k++) {
        bytes_put(&w, identity_ed_pk(h->me), 32);
    }
    if (bad == B_NO_RANGES) {
        bytes_put_u16(&w, 0);
        return s_rc_len(h, &w);
    }
    bytes_put_u16(&w, 3);
    //  [0, 10) FP
    if (bad == B_VARINT) {
        bytes_put_u8(&w, 0x8b); // 11 with a needless continuation byte
        bytes_put_u8(&w, 0x00);
    } else if (bad == B_TS_OVERFLOW) {
        bytes_put_varint(&w, UINT64_MAX); // ts 2^64 - 2: allowed, but the next one wraps
    } else {
        bytes_put_varint(&w, 11);
    }
    if (bad == B_PREFIX_LEN) {
        uint8_t prefix[33];
        randombytes_buf(prefix, sizeof prefix);
        bytes_put_u8(&w, 33);
        bytes_put(&w, prefix, sizeof prefix);
    } else {
        bytes_put_u8(&w, 0);
    }
    if (bad == B_MODE) {
        bytes_put_u8(&w, 4);
        bytes_put_varint(&w, 1000);
        bytes_put(&w, h->scope, SYNC_FP_LEN);
    } else {
        s_rc_fp(&w);
    }
    //  [10, 20) IDS
    if (bad == B_INF_EARLY) {
        bytes_put_varint(&w, 0);
    } else {
        bytes_put_varint(&w, bad == B_EQUAL ? 1 : 11);
        bytes_put_u8(&w, 0);
    }
    uint8_t ids[3 * SYNC_PREFIX_LEN];
    s_sorted_prefixes(ids, 3);
    if (bad == B_IDS_ORDER) {
        uint8_t t[SYNC_PREFIX_LEN];
        memcpy(t, ids, SYNC_PREFIX_LEN);
        memcpy(ids, ids + 2 * SYNC_PREFIX_LEN, SYNC_PREFIX_LEN);
        memcpy(ids + 2 * SYNC_PREFIX_LEN, t, SYNC_PREFIX_LEN);
    } else if (bad == B_IDS_DUP) {
        memcpy(ids + SYNC_PREFIX_LEN, ids, SYNC_PREFIX_LEN);
    }
    bytes_put_u8(&w, SYNC_IDS);
    bytes_put_varint(&w, 3);
    bytes_put(&w, ids, sizeof ids);
    //  [20, inf) REQ, or a list that claims more than the frame holds
    if (bad == B_LAST_FINITE) {
        bytes_put_varint(&w, 11);
        bytes_put_u8(&w, 0);
    } else {
        bytes_put_varint(&w, 0);
    }
    if (bad == B_IDS_SHORT) {
        bytes_put_u8(&w, SYNC_IDS);
        bytes_put_varint(&w, SYNC_IDS_MAX);
        bytes_put(&w, ids, sizeof ids);
    } else {
        bytes_put_u8(&w, SYNC_REQ);
    }
    if (bad == B_TRAILING) {
        bytes_put_u8(&w, 0);
    }
    size_t len = s_rc_len(h, &w);
    return bad == B_TRUNCATED && len > 5 ? len - 5 : len;
}

//  Sends a frame that must decode (valid) or must not; a frame our own
//  decoder disagrees about is counted in *wrong and not sent.
static int
s_send_checked(hostile_t *h, size_t len, bool valid, size_t *wrong)
{
    frame_t f;
    if (len == 0) {
        return -1;
    }
    if ((frame_decode(h->out, len, &f) == PARLEY_OK) != valid) {
        (*wrong)++;
        return 0;
    }
    return s_send(h, h->out, len);
}

//  Waits for the node's answer to an OPEN (a RECONCILE without OPEN):
//  milliseconds since t0, or -1.
static long
s_await_answer(hostile_t *h, uint64_t t0, int timeout_ms)
{
    frame_t f;
    uint64_t end = s_now() + (uint64_t)timeout_ms;
    while (s_now() < end && !h->bye) {
        if (s_recv_any(h, &f, 100) == 0 && f.type == FRAME_RECONCILE && f.sync_len > 0
            && !(f.sync[0] & SYNC_F_OPEN)) {
            return (long)(s_now() - t0);
        }
    }
    return -1;
}

static int
s_bigranges(hostile_t *h)
{
    size_t wrong = 0, malformed = 0;
    //  At the limits: each must be accepted and answered.
    static const char *const names[4] = { "ranges", "blocks_foreign", "blocks_ours", "ids" };
    for (size_t i = 0; i < 4; i++) {
        size_t len = i == 0   ? s_many_ranges(h, SYNC_RANGES_MAX)
                     : i == 1 ? s_many_blocks(h, SYNC_BLOCKS_MAX, false)
                     : i == 2 ? s_many_blocks(h, SYNC_BLOCKS_MAX, true)
                              : s_many_ids(h, S_IDS_RANGES, SYNC_IDS_MAX);
        uint64_t t0 = s_now();
        if (s_send_checked(h, len, true, &wrong) != 0) {
            return -1;
        }
        long ms = s_await_answer(h, t0, 15000);
        printf("bytes_%s %zu\nanswer_ms_%s %ld\n", names[i], len, names[i], ms);
        fflush(stdout);
    }
    if (s_send_checked(h, s_raw_want(h, SYNC_WANT_MAX, SYNC_WANT_MAX * SYNC_PREFIX_LEN), true,
                       &wrong)
        != 0) {
        return -1;
    }
    //  One past each limit, and broken structure: refused by the decoder.
    for (int k = 0; k < 10 + B_COUNT; k++) {
        size_t len;
        switch (k) {
        case 0: len = s_many_ranges(h, SYNC_RANGES_MAX + 1); break;
        case 1: len = s_many_blocks(h, SYNC_BLOCKS_MAX + 1, true); break;
        case 2: len = s_many_ids(h, 1, SYNC_IDS_MAX + 1); break;
        case 3:
            len = s_raw_want(h, SYNC_WANT_MAX + 1, (SYNC_WANT_MAX + 1) * SYNC_PREFIX_LEN);
            break;
        case 4: len = s_raw_want(h, 0, 0); break;
        case 5: len = s_raw_want(h, 2, SYNC_PREFIX_LEN + 7); break;
        case 6: len = s_raw_want(h, 1, 2 * SYNC_PREFIX_LEN); break;
        case 7: // an unknown protocol version
            len = s_many_ids(h, 1, 3);
            h->out[0] = PARLEY_PROTO_VERSION + 1;
            break;
        case 8: // an unknown frame type
            len = s_many_ids(h, 1, 3);
            h->out[1] = FRAME_WANT + 1;
            break;
        case 9: // one byte past PARLEY_FRAME_MAX (the transport allows a little slack)
            len = s_many_ids(h, 1, 3);
            memset(h->out + len, 0, PARLEY_FRAME_MAX + 1 - len);
            len = PARLEY_FRAME_MAX + 1;
            break;
        default: len = s_small_bad(h, k - 10); break;
        }
        if (s_send_checked(h, len, false, &wrong) != 0) {
            return -1;
        }
        malformed++;
    }
    s_drain(h, 200);
    long pong = s_ping(h, 10000);
    printf("malformed %zu\nwrong_local %zu\npong %d\npong_ms %ld\n", malformed - wrong, wrong,
           pong >= 0, pong);
    fflush(stdout);
    //  Past the transport's message size (the frame limit plus 1 KiB of
    //  slack): the node's socket drops the connection; ours dials again and
    //  a fresh HELLO must be answered.
    memset(h->out, 0, sizeof h->out);
    h->out[0] = PARLEY_PROTO_VERSION;
    h->out[1] = FRAME_RECONCILE;
    if (s_send(h, h->out, sizeof h->out) != 0) {
        return -1;
    }
    s_drain(h, 500);
    bool again = false;
    for (int i = 0; i < 3 && !again; i++) {
        again = s_hello(h, 3000) == 0;
    }
    printf("hello_after_oversize %d\nbye %d\n", again, h->bye ? 1 : 0);
    return 0;
}

/* -------------------------------------------------------------- wantflood */

//  A genuine DM the node stores; its id in id. 0 once ACKed.
static int
s_store_one(hostile_t *h, uint8_t id[32])
{
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    size_t len = s_seal(h, 1, s_now(), "wanted", NULL, env);
    if (len == 0 || s_send_env(h, env, len) != 0) {
        return -1;
    }
    crypto_generichash(id, 32, env, len, NULL, 0);
    frame_t f;
    uint64_t end = s_now() + 5000;
    while (s_now() < end) {
        if (s_recv_frame(h, FRAME_ACK, &f, 500) == 0) {
            for (size_t i = 0; i < f.n_ids; i++) {
                if (memcmp(f.ids + 32 * i, id, 32) == 0) {
                    return 0;
                }
            }
        }
    }
    return -1;
}

//  kind: 'r' random prefixes, 'e' the stored DM's prefix over and over (each
//  one an envelope the node must send), 'm' alternating frames of both.
static int
s_wantflood(hostile_t *h, const char *endpoint, char kind)
{
    uint8_t id[32];
    if (s_store_one(h, id) != 0) {
        fprintf(stderr, "hostile_peer: the node did not store our DM\n");
        return -1;
    }
    static uint8_t prefixes[SYNC_WANT_MAX * SYNC_PREFIX_LEN];
    size_t sent = 0, got_envelopes = 0;
    uint64_t t0 = s_now();
    while (sent < 400 && !h->bye) {
        bool echo = kind == 'e' || (kind == 'm' && sent % 2 == 1);
        for (size_t i = 0; i < SYNC_WANT_MAX; i++) {
            if (echo) {
                memcpy(prefixes + i * SYNC_PREFIX_LEN, id, SYNC_PREFIX_LEN);
            } else {
                randombytes_buf(prefixes + i * SYNC_PREFIX_LEN, SYNC_PREFIX_LEN);
            }
        }
        size_t len = 0;
        if (frame_encode_want(prefixes, SYNC_WANT_MAX, h->out, sizeof h->out, &len) != PARLEY_OK
            || s_send(h, h->out, len) != 0) {
            return -1;
        }
        sent++;
        frame_t f;
        while (!h->bye && s_recv_any(h, &f, 0) == 0) {
            got_envelopes += f.type == FRAME_ENVELOPES ? f.n_envelopes : 0;
        }
    }
    printf("sent %zu\nprefixes %zu\nflood_ms %llu\n", sent, sent * SYNC_WANT_MAX,
           (unsigned long long)(s_now() - t0));
    s_report_ban(h, endpoint);
    printf("envelopes_back %zu\n", got_envelopes);
    return 0;
}

/* --------------------------------------------------------------- envflood */

static int
s_envflood(hostile_t *h, const char *endpoint)
{
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    static uint8_t frame[PARLEY_FRAME_MAX];
    size_t sent = 0, not_ours = 0, forged = 0;
    uint64_t now = s_now();
    for (size_t k = 0; k < 40 && !h->bye; k++) {
        frame_batch_t b;
        frame_batch_begin(&b, frame, sizeof frame);
        for (size_t i = 0; i < PARLEY_BATCH_MAX; i++) {
            uint8_t scope[32];
            randombytes_buf(scope, sizeof scope);
            //  Even frames: signed, in a scope that is neither ours nor the
            //  node's. Odd frames: our own scope, signature flipped.
            bool forge = k % 2 == 1;
            size_t len = s_seal(h, 1 + k * PARLEY_BATCH_MAX + i, now + k, "flood",
                                forge ? NULL : scope, env);
            if (len == 0) {
                return -1;
            }
            if (forge) {
                env[len - 1 - (i % 32)] ^= 0x01;
            }
            if (frame_batch_add(&b, env, len) != PARLEY_OK) {
                return -1;
            }
        }
        size_t flen = frame_batch_finish(&b);
        if (s_send(h, frame, flen) != 0) {
            return -1;
        }
        sent++;
        *(k % 2 == 1 ? &forged : &not_ours) += PARLEY_BATCH_MAX;
        s_drain(h, 20);
    }
    printf("sent %zu\nnot_ours_sent %zu\nforged_sent %zu\n", sent, not_ours, forged);
    s_report_ban(h, endpoint);
    return 0;
}

/* ------------------------------------------------ diskflood, equivflood */

//  A DM at seq in our scope whose header is genuine (or names a fresh
//  ephemeral key: fresh_ek) and whose body is sealed under a random key:
//  valid to every check but the opening. big: 32 KB of text, else a word.
static size_t
s_seal_garbage(hostile_t *h, const identity_t *author, uint64_t seq, uint64_t ts, bool fresh_ek,
               bool big, uint8_t *out)
{
    static char text[PARLEY_TEXT_MAX + 1];
    if (text[0] == '\0') {
        memset(text, 'x', PARLEY_TEXT_MAX);
    }
    envelope_t f;
    memset(&f, 0, sizeof f);
    f.version = PARLEY_ENVELOPE_VERSION;
    f.kind = ENVELOPE_KIND_DM;
    memcpy(f.author, identity_ed_pk(author ? author : h->me), 32);
    memcpy(f.scope, h->scope, 32);
    if (author && dm_scope(author, h->node, f.scope) != PARLEY_OK) {
        return 0;
    }
    f.seq = seq;
    f.ts_ms = ts;
    dm_header_t hd;
    memcpy(hd.ek_pub, h->ek_pub, 32);
    if (fresh_ek || author) {
        uint8_t sk[32];
        randombytes_buf(sk, sizeof sk);
        crypto_scalarmult_base(hd.ek_pub, sk);
        sodium_memzero(sk, sizeof sk);
    }
    hd.spk_id = h->spk.spk_id;
    hd.day0 = h->day;
    hd.day = h->day;
    uint8_t key[32];
    randombytes_buf(key, sizeof key);
    uint8_t content[PARLEY_CONTENT_MAX];
    size_t clen = 0, len = 0;
    size_t tlen = big ? PARLEY_TEXT_MAX - 64 : 5;
    char save = text[tlen];
    text[tlen] = '\0';
    int rc = content_encode_text(text, tlen, content, sizeof content, &clen);
    text[tlen] = save;
    if (rc != PARLEY_OK
        || dm_envelope_seal(author ? author : h->me, &f, &hd, key, content, clen, out,
                            PARLEY_ENVELOPE_MAX, &len)
               != PARLEY_OK) {
        return 0;
    }
    return len;
}

//  For seconds: frames of garbage DMs (see the header comment), each frame
//  as full as PARLEY_FRAME_MAX allows; stops early at BYE.
static int
s_diskflood(hostile_t *h, const char *endpoint, unsigned seconds, char variant)
{
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    static uint8_t frame[PARLEY_FRAME_MAX];
    int timeout = 1000;
    if (zmq_setsockopt(h->sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout) != 0) {
        return -1;
    }
    size_t sent = 0, frames = 0, bytes = 0;
    uint64_t seq = 1, t0 = s_now(), end = t0 + (uint64_t)seconds * 1000u;
    bool equiv = variant == 'q';
    if (variant == 'r') {
        //  Our scope with someone else: a relay holds it, and cannot read it.
        uint8_t other[32], sk[64];
        crypto_sign_keypair(other, sk);
        sodium_memzero(sk, sizeof sk);
        if (dm_scope(h->me, other, h->scope) != PARLEY_OK) {
            return -1;
        }
    }
    while (s_now() < end && !h->bye) {
        frame_batch_t b;
        frame_batch_begin(&b, frame, sizeof frame);
        size_t n = 0, nbytes = 0;
        for (; n < PARLEY_BATCH_MAX; n++) {
            identity_t *author = variant == 'f' ? identity_new() : NULL;
            size_t len = variant == 'f' && !author
                             ? 0
                             : s_seal_garbage(h, author, equiv ? 1 : seq, s_now(), variant == 'e',
                                              !equiv, env);
            identity_destroy(&author);
            if (len == 0) {
                return -1;
            }
            if (frame_batch_add(&b, env, len) != PARLEY_OK) {
                break; // the frame is full: this one goes in the next (a new seq)
            }
            seq++;
            nbytes += len;
        }
        size_t flen = frame_batch_finish(&b);
        if (zmq_send(h->sock, frame, flen, 0) != (int)flen) {
            if (zmq_errno() == EAGAIN) {
                s_drain(h, 50);
                continue; // the node pushes back
            }
            return -1;
        }
        frames++;
        sent += n;
        bytes += nbytes;
        s_drain(h, 1);
    }
    printf("frames %zu\nsent %zu\nbytes %zu\nflood_ms %llu\n", frames, sent, bytes,
           (unsigned long long)(s_now() - t0));
    fflush(stdout);
    s_report_ban(h, endpoint);
    return 0;
}

/* --------------------------------------------------------------- scopestore */

//  n small envelopes, each by a fresh author in its DM scope with another
//  fresh key: a relay stores each, and each is a scope it never held.
//  Sent in full batches, a short drain between frames; stops at BYE.
static int
s_scopestore(hostile_t *h, const char *endpoint, size_t n)
{
    static uint8_t env[PARLEY_ENVELOPE_MAX];
    static uint8_t frame[PARLEY_FRAME_MAX];
    uint8_t content[PARLEY_CONTENT_MAX], key[32];
    size_t clen = 0, sent = 0, frames = 0;
    if (content_encode_text("scope", 5, content, sizeof content, &clen) != PARLEY_OK) {
        return -1;
    }
    randombytes_buf(key, sizeof key);
    uint64_t t0 = s_now();
    while (sent < n && !h->bye) {
        frame_batch_t b;
        frame_batch_begin(&b, frame, sizeof frame);
        for (size_t i = 0; i < PARLEY_BATCH_MAX && sent + i < n; i++) {
            identity_t *author = identity_new();
            uint8_t other[32], sk[64];
            crypto_sign_keypair(other, sk);
            sodium_memzero(sk, sizeof sk);
            envelope_t f;
            memset(&f, 0, sizeof f);
            f.version = PARLEY_ENVELOPE_VERSION;
            f.kind = ENVELOPE_KIND_DM;
            dm_header_t hd;
            memset(&hd, 0, sizeof hd);
            randombytes_buf(hd.ek_pub, sizeof hd.ek_pub);
            hd.day0 = hd.day = (uint32_t)(t0 / 86400000u);
            size_t len = 0;
            int rc = author ? dm_scope(author, other, f.scope) : -1;
            if (rc == PARLEY_OK) {
                memcpy(f.author, identity_ed_pk(author), 32);
                f.seq = 1;
                f.ts_ms = s_now();
                rc = dm_envelope_seal(author, &f, &hd, key, content, clen, env, sizeof env, &len);
            }
            identity_destroy(&author);
            if (rc != PARLEY_OK || frame_batch_add(&b, env, len) != PARLEY_OK) {
                return -1;
            }
        }
        size_t flen = frame_batch_finish(&b);
        size_t in = n - sent < PARLEY_BATCH_MAX ? n - sent : PARLEY_BATCH_MAX;
        if (s_send(h, frame, flen) != 0) {
            return -1;
        }
        sent += in;
        frames++;
        s_drain(h, 5);
    }
    printf("frames %zu\nsent %zu\nflood_ms %llu\n", frames, sent,
           (unsigned long long)(s_now() - t0));
    fflush(stdout);
    s_report_ban(h, endpoint);
    return 0;
}

/* --------------------------------------------------------------- bigflood */

static int
s_bigflood(hostile_t *h, unsigned seconds)
{
    //  Short send timeouts so that the deadline holds when the node pushes
    //  back; a small queue of our own so that the bytes wait in the node,
    //  not here.
    int timeout = 200, hwm = 4;
    if (zmq_setsockopt(h->sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout) != 0
        || zmq_setsockopt(h->sock, ZMQ_SNDHWM, &hwm, sizeof hwm) != 0) {
        return -1;
    }
    randombytes_buf(h->out, PARLEY_FRAME_MAX);
    h->out[0] = PARLEY_PROTO_VERSION;
    h->out[1] = 0x63; // no such frame type
    size_t sent = 0, blocked = 0;
    uint64_t t0 = s_now(), end = t0 + (uint64_t)seconds * 1000u;
    while (s_now() < end) {
        h->out[2 + sent % 64] ^= 0x5a; // no two frames alike
        if (zmq_send(h->sock, h->out, PARLEY_FRAME_MAX, 0) == (int)PARLEY_FRAME_MAX) {
            sent++;
        } else if (zmq_errno() == EAGAIN) {
            blocked++; // the node pushes back: that is what the bound is for
        } else {
            return -1;
        }
    }
    printf("sent %zu\nbytes %zu\nblocked %zu\nflood_ms %llu\n", sent, sent * PARLEY_FRAME_MAX,
           blocked, (unsigned long long)(s_now() - t0));
    fflush(stdout);
    timeout = 5000;
    (void)zmq_setsockopt(h->sock, ZMQ_SNDTIMEO, &timeout, sizeof timeout); // only a wait
    long pong = s_ping(h, 30000);
    printf("pong %d\npong_ms %ld\n", pong >= 0, pong);
    return 0;
}

/* ------------------------------------------------ hintflood, scopeflood */

//  A RECONCILE message (not OPEN) of SYNC_BLOCKS_MAX blocks. hinted: random
//  scopes, each with two fresh authors as hints (the node computes its DM
//  scope with each to see whether it is a party). computed: per block a
//  fresh key K, the node's real DM scope with K, K as the hint, and an
//  empty id list (the node takes the scope as its own, loads it and keeps
//  it; its answer is empty, which ends the exchange).
static size_t
s_flood_msg(hostile_t *h, bool computed)
{
    bytes_writer_t w;
    s_rc_begin(h, &w, 0, SYNC_BLOCKS_MAX);
    for (size_t i = 0; i < SYNC_BLOCKS_MAX; i++) {
        uint8_t scope[32], pk[SYNC_HINTS_MAX][32], sk[64];
        size_t n_hints = computed ? 1 : SYNC_HINTS_MAX;
        if (computed) {
            identity_t *other = identity_new();
            if (!other || dm_scope(other, h->node, scope) != PARLEY_OK) {
                identity_destroy(&other);
                return 0;
            }
            memcpy(pk[0], identity_ed_pk(other), 32);
            identity_destroy(&other);
        } else {
            randombytes_buf(scope, sizeof scope);
            for (size_t j = 0; j < n_hints; j++) {
                crypto_sign_keypair(pk[j], sk);
            }
            sodium_memzero(sk, sizeof sk);
        }
        bytes_put(&w, scope, 32);
        bytes_put_u8(&w, (uint8_t)n_hints);
        bytes_put(&w, pk, n_hints * 32);
        bytes_put_u16(&w, 1);
        bytes_put_varint(&w, 0);
        bytes_put_u8(&w, computed ? SYNC_IDS : SYNC_REQ);
        if (computed) {
            bytes_put_varint(&w, 0);
        }
    }
    return s_rc_len(h, &w);
}

//  n messages of s_flood_msg; burst: all built first and sent together (the
//  node reads them in one batch), else one at a time, each after the answer
//  to the one before. Prints how long the node took to answer each.
static int
s_blockflood(hostile_t *h, bool computed, bool burst, size_t n)
{
    uint8_t **msgs = calloc(n ? n : 1, sizeof *msgs);
    size_t *lens = calloc(n ? n : 1, sizeof *lens);
    int rc = msgs && lens ? 0 : -1;
    for (size_t k = 0; burst && rc == 0 && k < n; k++) {
        lens[k] = s_flood_msg(h, computed);
        if (lens[k] == 0 || !(msgs[k] = malloc(lens[k]))) {
            rc = -1;
        } else {
            memcpy(msgs[k], h->out, lens[k]);
        }
    }
    long worst = -1, total = 0;
    uint64_t t0 = s_now();
    for (size_t k = 0; rc == 0 && k < n && !h->bye; k++) {
        if (burst) {
            rc = s_send(h, msgs[k], lens[k]);
        } else {
            size_t len = s_flood_msg(h, computed);
            t0 = s_now();
            rc = len ? s_send(h, h->out, len) : -1;
        }
        if (rc != 0 || (burst && k + 1 < n)) {
            continue;
        }
        for (size_t a = 0; a < (burst ? n : 1); a++) {
            long ms = s_await_answer(h, t0, 30000);
            printf("answer_ms %ld\n", ms);
            fflush(stdout);
            worst = ms > worst ? ms : worst;
            total += ms > 0 ? ms : 0;
        }
    }
    for (size_t k = 0; msgs && k < n; k++) {
        free(msgs[k]);
    }
    free(msgs);
    free(lens);
    if (rc == 0) {
        printf("worst_ms %ld\ntotal_ms %ld\nbye %d\n", worst, total, h->bye ? 1 : 0);
    }
    return rc;
}

/* ---- peer-table floods ---- */

#define S_FLOOD_OPEN 200     /* helloflood: sockets open at once */
#define S_FLOOD_WAIT_MS 5000 /* helloflood: a socket waits this long for an answer */

//  A DEALER to the node with id's CURVE key and a HELLO queued on it (sent
//  once the handshake is done), or NULL.
static void *
s_flood_socket(hostile_t *h, const identity_t *id, const char *endpoint)
{
    uint8_t node_x[32];
    void *s = zmq_socket(h->ctx, ZMQ_DEALER);
    int zero = 0;
    const char *eps[1] = { "tcp://127.0.0.1:1" };
    size_t len = 0;
    if (!s || zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero) != 0
        || identity_ed_to_x(h->node, node_x) != PARLEY_OK
        || zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, node_x, 32) != 0
        || zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, identity_x_pk(id), 32) != 0
        || zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, identity_x_sk(id), 32) != 0
        || zmq_connect(s, endpoint) != 0
        || frame_encode_hello(identity_ed_pk(id), 0, "open", eps, 1, h->out, sizeof h->out, &len)
               != PARLEY_OK
        || zmq_send(s, h->out, len, ZMQ_DONTWAIT) < 0) {
        if (s) {
            zmq_close(s);
        }
        return NULL;
    }
    return s;
}

static int
s_helloflood(hostile_t *h, const char *endpoint, size_t n)
{
    void *socks[S_FLOOD_OPEN] = { NULL };
    uint64_t since[S_FLOOD_OPEN] = { 0 };
    zmq_pollitem_t items[S_FLOOD_OPEN];
    size_t sent = 0, answered = 0, timeouts = 0, open = 0;
    while (sent < n || open > 0) {
        for (size_t i = 0; i < S_FLOOD_OPEN && sent < n; i++) {
            if (socks[i]) {
                continue;
            }
            identity_t *id = identity_new();
            socks[i] = id ? s_flood_socket(h, id, endpoint) : NULL;
            if (socks[i]) {
                char hex[65];
                sodium_bin2hex(hex, sizeof hex, identity_ed_pk(id), 32);
                printf("key %s\n", hex);
            }
            identity_destroy(&id);
            if (!socks[i]) {
                return -1;
            }
            since[i] = s_now();
            sent++;
            open++;
        }
        for (size_t i = 0; i < S_FLOOD_OPEN; i++) {
            items[i] = (zmq_pollitem_t){ socks[i], -1, socks[i] ? ZMQ_POLLIN : 0, 0 };
        }
        if (zmq_poll(items, S_FLOOD_OPEN, 50) < 0) {
            return -1;
        }
        uint64_t now = s_now();
        for (size_t i = 0; i < S_FLOOD_OPEN; i++) {
            bool got = socks[i] && (items[i].revents & ZMQ_POLLIN);
            if (!socks[i] || (!got && now < since[i] + S_FLOOD_WAIT_MS)) {
                continue;
            }
            answered += got;
            timeouts += !got;
            zmq_close(socks[i]);
            socks[i] = NULL;
            open--;
        }
    }
    printf("hello_sent %zu\nhello_answered %zu\nhello_timeout %zu\n", sent, answered, timeouts);
    return 0;
}

static int
s_gossipflood(hostile_t *h, size_t n)
{
    static uint8_t recs[PARLEY_PEERS_MAX][ADDR_RECORD_MAX];
    const uint8_t *views[PARLEY_PEERS_MAX];
    size_t lens[PARLEY_PEERS_MAX];
    size_t sent = 0;
    while (sent < n) {
        size_t k = 0;
        uint64_t now = s_now();
        for (; k < PARLEY_PEERS_MAX && sent + k < n; k++) {
            identity_t *id = identity_new();
            addr_record_t r;
            memset(&r, 0, sizeof r);
            if (!id) {
                return -1;
            }
            memcpy(r.pk, identity_ed_pk(id), 32);
            r.n = 1;
            snprintf(r.endpoints[0], sizeof r.endpoints[0], "tcp://127.0.0.1:1");
            r.issued_ms = now;
            r.expires_ms = now + 600000;
            int rc = addr_encode(&r, identity_ed_sk(id), recs[k], sizeof recs[k], &lens[k]);
            identity_destroy(&id);
            if (rc != PARLEY_OK) {
                return -1;
            }
            views[k] = recs[k];
        }
        size_t len = 0;
        if (frame_encode_peers(views, lens, k, h->out, sizeof h->out, &len) != PARLEY_OK
            || s_send(h, h->out, len) != 0) {
            return -1;
        }
        sent += k;
    }
    long pong = s_ping(h, 10000); // also lets what is queued reach the node before we close
    printf("records_sent %zu\npong %d\nbye %d\n", sent, pong >= 0 ? 1 : 0, h->bye ? 1 : 0);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *mode = argc >= 4 ? argv[3] : "classic";
    if (argc < 3 || argc > 5 || sodium_init() < 0) {
        fprintf(stderr,
                "usage: hostile_peer ENDPOINT NODEID [MODE [SEED]]\n"
                "  MODE: classic noconverge bigranges wantflood envflood redial\n"
                "        hintflood[:N] scopeflood[:N] bigflood[:SECONDS]\n"
                "        diskflood[:S] diskflood-ek[:S] diskflood-relay[:S] equivflood[:S]\n"
                "        diskflood-fresh[:S] scopestore[:N] helloflood[:N] gossipflood[:N]\n"
                "  SEED: 64 hex digits, our Ed25519 seed (default: a fresh key)\n");
        return 2;
    }
    static hostile_t h;
    uint8_t seed[32];
    if (argc == 5) {
        size_t n = 0;
        if (sodium_hex2bin(seed, sizeof seed, argv[4], strlen(argv[4]), NULL, &n, NULL) != 0
            || n != sizeof seed) {
            fprintf(stderr, "hostile_peer: SEED must be 64 hex digits\n");
            return 2;
        }
        h.me = identity_new_from_seed(seed);
        sodium_memzero(seed, sizeof seed);
    } else {
        h.me = identity_new();
    }
    if (!h.me || identity_parse_node_id(argv[2], h.node) != PARLEY_OK) {
        fprintf(stderr, "hostile_peer: bad node id\n");
        return 2;
    }
    char id[PARLEY_NODE_ID_STRLEN + 1];
    identity_node_id(identity_ed_pk(h.me), id);
    if (strcmp(mode, "redial") == 0) {
        //  Only the handshake: whether the node lets this key in now.
        h.ctx = zmq_ctx_new();
        if (!h.ctx) {
            return 1;
        }
        long ms = -1;
        const char *verdict = s_redial(&h, argv[1], &ms);
        printf("%s\nreconnect %s\nreconnect_ms %ld\n", id, verdict, ms);
        if (h.sock) {
            zmq_close(h.sock);
        }
        zmq_ctx_term(h.ctx);
        identity_destroy(&h.me);
        return 0;
    }
    if (s_connect(&h, argv[1]) != 0) {
        fprintf(stderr, "hostile_peer: could not connect and get a prekey\n");
        return 1;
    }
    printf("%s\n", id);
    fflush(stdout);
    int rc;
    if (strcmp(mode, "classic") == 0) {
        rc = s_attack(&h);
        if (rc != 0) {
            fprintf(stderr, "hostile_peer: the node did not acknowledge the final envelope\n");
        }
    } else if (strcmp(mode, "noconverge") == 0) {
        rc = s_noconverge(&h);
        if (rc == 0) {
            s_report_ban(&h, argv[1]);
        }
    } else if (strcmp(mode, "bigranges") == 0) {
        rc = s_bigranges(&h);
    } else if (strcmp(mode, "wantflood") == 0) {
        rc = s_wantflood(&h, argv[1], 'm');
    } else if (strcmp(mode, "wantflood-random") == 0) {
        rc = s_wantflood(&h, argv[1], 'r');
    } else if (strcmp(mode, "wantflood-echo") == 0) {
        rc = s_wantflood(&h, argv[1], 'e');
    } else if (strcmp(mode, "envflood") == 0) {
        rc = s_envflood(&h, argv[1]);
    } else if (strncmp(mode, "diskflood", 9) == 0 || strncmp(mode, "equivflood", 10) == 0) {
        const char *colon = strchr(mode, ':');
        char variant = mode[0] == 'e'                              ? 'q'
                       : strncmp(mode, "diskflood-ek", 12) == 0    ? 'e'
                       : strncmp(mode, "diskflood-relay", 15) == 0 ? 'r'
                       : strncmp(mode, "diskflood-fresh", 15) == 0 ? 'f'
                                                                   : 'd';
        rc =
            s_diskflood(&h, argv[1], colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 15u, variant);
    } else if (strncmp(mode, "scopestore", 10) == 0) {
        const char *colon = strchr(mode, ':');
        rc = s_scopestore(&h, argv[1], colon ? strtoul(colon + 1, NULL, 10) : 65536);
    } else if (strncmp(mode, "bigflood", 8) == 0) {
        const char *colon = strchr(mode, ':');
        rc = s_bigflood(&h, colon ? (unsigned)strtoul(colon + 1, NULL, 10) : 10u);
    } else if (strncmp(mode, "hintflood", 9) == 0 || strncmp(mode, "hintburst", 9) == 0
               || strncmp(mode, "scopeflood", 10) == 0) {
        const char *colon = strchr(mode, ':');
        rc = s_blockflood(&h, mode[0] == 's', strncmp(mode, "hintburst", 9) == 0,
                          colon ? strtoul(colon + 1, NULL, 10) : 8);
    } else if (strncmp(mode, "helloflood", 10) == 0) {
        const char *colon = strchr(mode, ':');
        rc = s_helloflood(&h, argv[1], colon ? strtoul(colon + 1, NULL, 10) : 2000);
    } else if (strncmp(mode, "gossipflood", 11) == 0) {
        const char *colon = strchr(mode, ':');
        rc = s_gossipflood(&h, colon ? strtoul(colon + 1, NULL, 10) : 2000);
    } else {
        fprintf(stderr, "hostile_peer: unknown mode %s\n", mode);
        rc = 2;
    }
    fflush(stdout);
    if (rc == -1) {
        fprintf(stderr, "hostile_peer: %s could not run to its end\n", mode);
    }
    if (h.sock) {
        zmq_close(h.sock);
    }
    zmq_ctx_term(h.ctx);
    identity_destroy(&h.me);
    return rc == 0 ? 0 : rc == 2 ? 2 : 1;
}
