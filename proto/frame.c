/*  proto/frame.c — encode and decode the frames nodes exchange.
 *
 *  Owns nothing: a decoded frame_t views the caller's buffer. Invariants:
 *  the decoder is strict — version, type, every count and length in range,
 *  HELLO strings printable ASCII (the tag may hold spaces, endpoints not),
 *  and nothing trailing — and a decoded frame is never longer than
 *  PARLEY_FRAME_MAX; every encoder checks its capacity and refuses to
 *  produce anything the decoder would reject. Format: frame.h, proto/SPEC.md.
 */
#include "frame.h"
#include "addr.h"

#include <sodium.h>
#include <string.h>

#include "bytes.h"
#include "dm.h"
#include "netkey.h"
#include "roster.h"
#include "selftest.h"
#include "sync.h"

#define S_PREKEY_LEN DM_PREKEY_BUNDLE_LEN
#define S_ID_LEN 32u
#define S_BATCH_HEAD 4u /* version, type, count u16 */

/*  Printable ASCII; spaces only where allowed. Keeps control bytes and NULs
 *  from a peer out of logs, C strings and the terminal. */
static bool
s_printable(const uint8_t *s, size_t len, bool allow_space)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t lo = allow_space ? 0x20 : 0x21;
        if (s[i] < lo || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* ----------------------------------------------------------------- decoding */

/*  Reads len bytes of a HELLO string into *out; len was read by the caller. */
static int
s_get_string(bytes_reader_t *r, size_t len, bool allow_space, const char **out)
{
    const uint8_t *s = bytes_view(r, len);
    if (!bytes_reader_ok(r)) {
        return PARLEY_ERR_MALFORMED;
    }
    if (len > 0 && !s_printable(s, len, allow_space)) {
        return PARLEY_ERR_MALFORMED;
    }
    *out = (const char *)s;
    return PARLEY_OK;
}

static int
s_decode_hello(bytes_reader_t *r, frame_t *f)
{
    f->ed_pk = bytes_view(r, 32);
    f->caps = bytes_get_u32(r);
    f->tag_len = bytes_get_u8(r);
    if (f->tag_len > PARLEY_NETTAG_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    int rc = s_get_string(r, f->tag_len, true, &f->tag);
    if (rc != 0) {
        return rc;
    }
    f->n_endpoints = bytes_get_u8(r);
    if (f->n_endpoints > PARLEY_HELLO_ENDPOINTS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    for (size_t i = 0; i < f->n_endpoints; i++) {
        f->endpoint_lens[i] = bytes_get_u8(r);
        if (bytes_reader_ok(r) && f->endpoint_lens[i] == 0) {
            return PARLEY_ERR_MALFORMED;
        }
        rc = s_get_string(r, f->endpoint_lens[i], false, &f->endpoints[i]);
        if (rc != 0) {
            return rc;
        }
    }
    return PARLEY_OK;
}

static int
s_decode_envelopes(bytes_reader_t *r, frame_t *f)
{
    size_t count = bytes_get_u16(r);
    if (!bytes_reader_ok(r) || count == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (count > PARLEY_BATCH_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    for (size_t i = 0; i < count; i++) {
        size_t len = bytes_get_u32(r);
        if (!bytes_reader_ok(r) || len == 0) {
            return PARLEY_ERR_MALFORMED;
        }
        if (len > PARLEY_ENVELOPE_MAX) {
            return PARLEY_ERR_LIMIT;
        }
        f->envelopes[i] = bytes_view(r, len);
        f->envelope_lens[i] = len;
        if (!bytes_reader_ok(r)) {
            return PARLEY_ERR_MALFORMED;
        }
    }
    f->n_envelopes = count;
    return PARLEY_OK;
}

static int
s_decode_ack(bytes_reader_t *r, frame_t *f)
{
    size_t count = bytes_get_u16(r);
    if (!bytes_reader_ok(r) || count == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (count > PARLEY_ACK_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    f->ids = bytes_view(r, count * S_ID_LEN);
    f->n_ids = count;
    return PARLEY_OK;
}

static int
s_decode_peers(bytes_reader_t *r, frame_t *f)
{
    size_t count = bytes_get_u8(r);
    if (!bytes_reader_ok(r) || count == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (count > PARLEY_PEERS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    for (size_t i = 0; i < count; i++) {
        size_t len = bytes_get_u16(r);
        if (!bytes_reader_ok(r) || len == 0) {
            return PARLEY_ERR_MALFORMED;
        }
        if (len > ADDR_RECORD_MAX) {
            return PARLEY_ERR_LIMIT;
        }
        f->records[i] = bytes_view(r, len);
        f->record_lens[i] = len;
        if (!bytes_reader_ok(r)) {
            return PARLEY_ERR_MALFORMED;
        }
    }
    f->n_records = count;
    return PARLEY_OK;
}

/*  n ids of 32 bytes, each strictly above the one before it (so no two
 *  equal): one encoding per set of heads. */
static bool
s_ascending(const uint8_t *ids, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        if (memcmp(ids + (i - 1) * S_ID_LEN, ids + i * S_ID_LEN, S_ID_LEN) >= 0) {
            return false;
        }
    }
    return true;
}

/*  DONE's status and reason: refused may say why, added says nothing. */
static int
s_check_done(uint8_t status, const uint8_t *why, size_t why_len)
{
    if (status != FRAME_JOIN_ADDED && status != FRAME_JOIN_REFUSED) {
        return PARLEY_ERR_MALFORMED;
    }
    if (why_len > ROSTER_REASON_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (status == FRAME_JOIN_ADDED && why_len != 0) {
        return PARLEY_ERR_MALFORMED;
    }
    return roster_text_valid(why, why_len) ? PARLEY_OK : PARLEY_ERR_MALFORMED;
}

static int
s_decode_join(bytes_reader_t *r, frame_t *f)
{
    f->step = bytes_get_u8(r);
    if (!bytes_reader_ok(r)) {
        return PARLEY_ERR_MALFORMED;
    }
    switch (f->step) {
    case FRAME_JOIN_ASK: f->network_id = bytes_view(r, 32); return PARLEY_OK;
    case FRAME_JOIN_HEADS: {
        size_t n = bytes_get_u8(r);
        if (!bytes_reader_ok(r) || n == 0) {
            return PARLEY_ERR_MALFORMED;
        }
        if (n > ROSTER_PARENTS_MAX) {
            return PARLEY_ERR_LIMIT;
        }
        f->heads = bytes_view(r, n * S_ID_LEN);
        if (!f->heads || !s_ascending(f->heads, n)) {
            return PARLEY_ERR_MALFORMED;
        }
        f->n_heads = n;
        return PARLEY_OK;
    }
    case FRAME_JOIN_DONE: {
        f->status = bytes_get_u8(r);
        size_t len = bytes_get_u8(r);
        if (!bytes_reader_ok(r)) {
            return PARLEY_ERR_MALFORMED;
        }
        if (len > ROSTER_REASON_MAX) {
            return PARLEY_ERR_LIMIT;
        }
        const uint8_t *why = bytes_view(r, len);
        if (!bytes_reader_ok(r)) {
            return PARLEY_ERR_MALFORMED;
        }
        int rc = s_check_done(f->status, why, len);
        if (rc != PARLEY_OK) {
            return rc;
        }
        f->why = (const char *)why;
        f->why_len = len;
        return PARLEY_OK;
    }
    /* A later version may add steps, as it may add frame types. */
    default: return PARLEY_ERR_UNSUPPORTED;
    }
}

static int
s_decode_netkey(bytes_reader_t *r, frame_t *f)
{
    f->network_id = bytes_view(r, 32);
    f->epoch = bytes_get_u32(r);
    f->secret = bytes_view(r, NETKEY_SECRET_LEN);
    f->author = bytes_view(r, 32);
    f->sig = bytes_view(r, NETKEY_SIG_LEN);
    if (!bytes_reader_ok(r)) {
        return PARLEY_ERR_MALFORMED;
    }
    /* No honest member draws the all-zero secret: it would key every
     * network's records alike. */
    return sodium_is_zero(f->secret, NETKEY_SECRET_LEN) ? PARLEY_ERR_MALFORMED : PARLEY_OK;
}

static int
s_decode_payload(bytes_reader_t *r, frame_t *f)
{
    switch (f->type) {
    case FRAME_HELLO: return s_decode_hello(r, f);
    case FRAME_PREKEY:
        f->bundle = bytes_view(r, S_PREKEY_LEN);
        f->bundle_len = S_PREKEY_LEN;
        return PARLEY_OK;
    case FRAME_ENVELOPES: return s_decode_envelopes(r, f);
    case FRAME_ACK: return s_decode_ack(r, f);
    case FRAME_PING:
    case FRAME_PONG: f->nonce = bytes_get_u64(r); return PARLEY_OK;
    case FRAME_BYE: f->reason = bytes_get_u8(r); return PARLEY_OK;
    case FRAME_PEERS: return s_decode_peers(r, f);
    case FRAME_RECONCILE: {
        size_t n = bytes_remaining(r);
        f->sync = bytes_view(r, n);
        f->sync_len = n;
        return sync_msg_check(f->sync, n);
    }
    case FRAME_WANT: {
        size_t n = bytes_remaining(r);
        const uint8_t *p = bytes_view(r, n);
        int rc = sync_want_check(p, n, &f->n_prefixes);
        f->prefixes = rc == PARLEY_OK ? p + 2 : NULL;
        return rc;
    }
    case FRAME_JOIN: return s_decode_join(r, f);
    case FRAME_NETKEY: return s_decode_netkey(r, f);
    default: return PARLEY_ERR_UNSUPPORTED;
    }
}

static int
s_decode(const uint8_t *buf, size_t len, frame_t *f)
{
    if (len > PARLEY_FRAME_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (!buf || len < 2) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_reader_t r;
    bytes_reader_init(&r, buf, len);
    if (bytes_get_u8(&r) != PARLEY_PROTO_VERSION) {
        return PARLEY_ERR_UNSUPPORTED;
    }
    f->type = bytes_get_u8(&r);
    int rc = s_decode_payload(&r, f);
    if (rc != 0) {
        return rc;
    }
    return bytes_reader_done(&r) ? PARLEY_OK : PARLEY_ERR_MALFORMED;
}

int
frame_decode(const uint8_t *buf, size_t len, frame_t *out)
{
    if (!out) {
        return PARLEY_ERR_STATE;
    }
    memset(out, 0, sizeof *out);
    int rc = s_decode(buf, len, out);
    if (rc != 0) {
        memset(out, 0, sizeof *out);
    }
    return rc;
}

/* ----------------------------------------------------------------- encoding */

/*  Finishes an encoder: LIMIT if it ran out of room. */
static int
s_finish(const bytes_writer_t *w, const uint8_t *out, size_t *out_len)
{
    if (!bytes_writer_ok(w)) {
        return PARLEY_ERR_LIMIT;
    }
    *out_len = (size_t)(w->p - out);
    return PARLEY_OK;
}

static void
s_begin(bytes_writer_t *w, uint8_t type, uint8_t *out, size_t cap)
{
    bytes_writer_init(w, out, cap);
    bytes_put_u8(w, PARLEY_PROTO_VERSION);
    bytes_put_u8(w, type);
}

/*  Length of a HELLO string, or a negative code. */
static int
s_hello_string(const char *s, size_t max, bool allow_space, size_t *len)
{
    if (!s) {
        return PARLEY_ERR_MALFORMED;
    }
    *len = strnlen(s, max + 1);
    if (*len > max) {
        return PARLEY_ERR_LIMIT;
    }
    return s_printable((const uint8_t *)s, *len, allow_space) ? PARLEY_OK : PARLEY_ERR_MALFORMED;
}

static int
s_check_hello(const char *tag, const char *const *endpoints, size_t n_endpoints)
{
    size_t len = 0;
    int rc = s_hello_string(tag ? tag : "", PARLEY_NETTAG_MAX, true, &len);
    if (rc != 0) {
        return rc;
    }
    if (n_endpoints > PARLEY_HELLO_ENDPOINTS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (n_endpoints > 0 && !endpoints) {
        return PARLEY_ERR_MALFORMED;
    }
    for (size_t i = 0; i < n_endpoints; i++) {
        rc = s_hello_string(endpoints[i], PARLEY_ENDPOINT_MAX, false, &len);
        if (rc == 0 && len == 0) {
            rc = PARLEY_ERR_MALFORMED;
        }
        if (rc != 0) {
            return rc;
        }
    }
    return PARLEY_OK;
}

int
frame_encode_hello(const uint8_t ed_pk[32], uint32_t caps, const char *tag,
                   const char *const *endpoints, size_t n_endpoints, uint8_t *out, size_t cap,
                   size_t *out_len)
{
    if (!ed_pk || !out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    int rc = s_check_hello(tag, endpoints, n_endpoints);
    if (rc != 0) {
        return rc;
    }
    tag = tag ? tag : "";
    bytes_writer_t w;
    s_begin(&w, FRAME_HELLO, out, cap);
    bytes_put(&w, ed_pk, 32);
    bytes_put_u32(&w, caps);
    bytes_put_u8(&w, (uint8_t)strlen(tag));
    bytes_put(&w, tag, strlen(tag));
    bytes_put_u8(&w, (uint8_t)n_endpoints);
    for (size_t i = 0; i < n_endpoints; i++) {
        size_t len = strlen(endpoints[i]);
        bytes_put_u8(&w, (uint8_t)len);
        bytes_put(&w, endpoints[i], len);
    }
    return s_finish(&w, out, out_len);
}

int
frame_encode_prekey(const uint8_t *bundle, size_t bundle_len, uint8_t *out, size_t cap,
                    size_t *out_len)
{
    if (!out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    if (!bundle || bundle_len != S_PREKEY_LEN) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_writer_t w;
    s_begin(&w, FRAME_PREKEY, out, cap);
    bytes_put(&w, bundle, bundle_len);
    return s_finish(&w, out, out_len);
}

void
frame_batch_begin(frame_batch_t *b, uint8_t *buf, size_t cap)
{
    b->buf = buf;
    b->cap = cap > PARLEY_FRAME_MAX ? PARLEY_FRAME_MAX : cap;
    b->len = 0;
    b->count = 0;
    if (buf && b->cap >= S_BATCH_HEAD) {
        buf[0] = PARLEY_PROTO_VERSION;
        buf[1] = FRAME_ENVELOPES;
        buf[2] = 0;
        buf[3] = 0;
        b->len = S_BATCH_HEAD;
    }
}

int
frame_batch_add(frame_batch_t *b, const uint8_t *env, size_t env_len)
{
    if (b->len < S_BATCH_HEAD) {
        return PARLEY_ERR_LIMIT; /* buffer too small for even the head */
    }
    if (!env || env_len == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    if (env_len > PARLEY_ENVELOPE_MAX || b->count >= PARLEY_BATCH_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    bytes_writer_t w;
    bytes_writer_init(&w, b->buf + b->len, b->cap - b->len);
    bytes_put_u32(&w, (uint32_t)env_len);
    bytes_put(&w, env, env_len);
    if (!bytes_writer_ok(&w)) {
        return PARLEY_ERR_LIMIT;
    }
    b->len += 4 + env_len;
    b->count++;
    return PARLEY_OK;
}

size_t
frame_batch_finish(frame_batch_t *b)
{
    if (b->count == 0) {
        return 0;
    }
    b->buf[2] = (uint8_t)(b->count >> 8);
    b->buf[3] = (uint8_t)b->count;
    return b->len;
}

int
frame_encode_ack(const uint8_t *ids, size_t n_ids, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    if (n_ids > PARLEY_ACK_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (!ids || n_ids == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_writer_t w;
    s_begin(&w, FRAME_ACK, out, cap);
    bytes_put_u16(&w, (uint16_t)n_ids);
    bytes_put(&w, ids, n_ids * S_ID_LEN);
    return s_finish(&w, out, out_len);
}

int
frame_encode_ping(uint8_t type, uint64_t nonce, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    if (type != FRAME_PING && type != FRAME_PONG) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_writer_t w;
    s_begin(&w, type, out, cap);
    bytes_put_u64(&w, nonce);
    return s_finish(&w, out, out_len);
}

int
frame_encode_peers(const uint8_t *const *records, const size_t *lens, size_t n, uint8_t *out,
                   size_t cap, size_t *out_len)
{
    if (!out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    if (n > PARLEY_PEERS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (!records || !lens || n == 0) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_writer_t w;
    s_begin(&w, FRAME_PEERS, out, cap);
    bytes_put_u8(&w, (uint8_t)n);
    for (size_t i = 0; i < n; i++) {
        if (!records[i] || lens[i] == 0) {
            return PARLEY_ERR_MALFORMED;
        }
        if (lens[i] > ADDR_RECORD_MAX) {
            return PARLEY_ERR_LIMIT;
        }
        bytes_put_u16(&w, (uint16_t)lens[i]);
        bytes_put(&w, records[i], lens[i]);
    }
    return s_finish(&w, out, out_len);
}

int
frame_encode_want(const uint8_t *prefixes, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    if (n == 0 || !prefixes) {
        return PARLEY_ERR_MALFORMED;
    }
    if (n > SYNC_WANT_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    bytes_writer_t w;
    s_begin(&w, FRAME_WANT, out, cap);
    bytes_put_u16(&w, (uint16_t)n);
    bytes_put(&w, prefixes, n * SYNC_PREFIX_LEN);
    return s_finish(&w, out, out_len);
}

int
frame_encode_bye(uint8_t reason, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    bytes_writer_t w;
    s_begin(&w, FRAME_BYE, out, cap);
    bytes_put_u8(&w, reason);
    return s_finish(&w, out, out_len);
}

int
frame_encode_join_ask(const uint8_t network_id[32], uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    if (!network_id) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_writer_t w;
    s_begin(&w, FRAME_JOIN, out, cap);
    bytes_put_u8(&w, FRAME_JOIN_ASK);
    bytes_put(&w, network_id, 32);
    return s_finish(&w, out, out_len);
}

int
frame_encode_join_heads(const uint8_t *heads, size_t n, uint8_t *out, size_t cap, size_t *out_len)
{
    if (!out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    if (n > ROSTER_PARENTS_MAX) {
        return PARLEY_ERR_LIMIT;
    }
    if (!heads || n == 0 || !s_ascending(heads, n)) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_writer_t w;
    s_begin(&w, FRAME_JOIN, out, cap);
    bytes_put_u8(&w, FRAME_JOIN_HEADS);
    bytes_put_u8(&w, (uint8_t)n);
    bytes_put(&w, heads, n * S_ID_LEN);
    return s_finish(&w, out, out_len);
}

int
frame_encode_join_done(uint8_t status, const char *why, size_t why_len, uint8_t *out, size_t cap,
                       size_t *out_len)
{
    if (!out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    if (why_len > 0 && !why) {
        return PARLEY_ERR_MALFORMED;
    }
    int rc = s_check_done(status, (const uint8_t *)why, why_len);
    if (rc != PARLEY_OK) {
        return rc;
    }
    bytes_writer_t w;
    s_begin(&w, FRAME_JOIN, out, cap);
    bytes_put_u8(&w, FRAME_JOIN_DONE);
    bytes_put_u8(&w, status);
    bytes_put_u8(&w, (uint8_t)why_len);
    bytes_put(&w, why, why_len);
    return s_finish(&w, out, out_len);
}

int
frame_encode_netkey(const uint8_t network_id[32], uint32_t epoch, const uint8_t secret[32],
                    const uint8_t author[32], const uint8_t sig[64], uint8_t *out, size_t cap,
                    size_t *out_len)
{
    if (!out_len) {
        return PARLEY_ERR_STATE;
    }
    *out_len = 0;
    if (!network_id || !secret || !author || !sig || sodium_is_zero(secret, NETKEY_SECRET_LEN)) {
        return PARLEY_ERR_MALFORMED;
    }
    bytes_writer_t w;
    s_begin(&w, FRAME_NETKEY, out, cap);
    bytes_put(&w, network_id, 32);
    bytes_put_u32(&w, epoch);
    bytes_put(&w, secret, NETKEY_SECRET_LEN);
    bytes_put(&w, author, 32);
    bytes_put(&w, sig, NETKEY_SIG_LEN);
    int rc = s_finish(&w, out, out_len);
    if (rc != PARLEY_OK && out && cap > 0) {
        sodium_memzero(out, cap); /* a partial frame may hold part of the secret */
    }
    return rc;
}

/* ---------------------------------------------------------------- self-test */

static bool
s_inside(const void *view, size_t n, const uint8_t *buf, size_t len)
{
    const uint8_t *v = view;
    return n == 0 || (v && v >= buf && n <= len && (size_t)(v - buf) <= len - n);
}

/*  Every view of a decoded frame lies inside the buffer it came from. */
static bool
s_views_inside(const frame_t *f, const uint8_t *buf, size_t len)
{
    bool ok = s_inside(f->ed_pk, f->ed_pk ? 32 : 0, buf, len)
              && s_inside(f->tag, f->tag_len, buf, len)
              && s_inside(f->bundle, f->bundle_len, buf, len)
              && s_inside(f->ids, f->n_ids * S_ID_LEN, buf, len)
              && s_inside(f->network_id, f->network_id ? 32 : 0, buf, len)
              && s_inside(f->heads, f->n_heads * S_ID_LEN, buf, len)
              && s_inside(f->why, f->why_len, buf, len)
              && s_inside(f->secret, f->secret ? 32 : 0, buf, len)
              && s_inside(f->author, f->author ? 32 : 0, buf, len)
              && s_inside(f->sig, f->sig ? 64 : 0, buf, len) && f->n_heads <= ROSTER_PARENTS_MAX
              && f->why_len <= ROSTER_REASON_MAX && f->n_endpoints <= PARLEY_HELLO_ENDPOINTS_MAX
              && f->n_envelopes <= PARLEY_BATCH_MAX;
    for (size_t i = 0; ok && i < f->n_endpoints; i++) {
        ok = f->endpoint_lens[i] >= 1 && s_inside(f->endpoints[i], f->endpoint_lens[i], buf, len);
    }
    for (size_t i = 0; ok && i < f->n_envelopes; i++) {
        ok = s_inside(f->envelopes[i], f->envelope_lens[i], buf, len);
    }
    return ok;
}

/*  Truncation at every length and a trailing byte fail; flipping any bit
 *  of any byte never crashes and never yields a view outside the buffer;
 *  flips at the listed structural offsets fail. */
static void
s_attack(const uint8_t *frame, size_t len, const size_t *structural, size_t n_struct)
{
    uint8_t *buf = malloc(len + 1);
    CHECK(buf);
    memcpy(buf, frame, len);
    frame_t f;
    CHECK(frame_decode(buf, len, &f) == 0 && s_views_inside(&f, buf, len));
    for (size_t cut = 0; cut < len; cut++) {
        CHECK(frame_decode(buf, cut, &f) != 0);
        CHECK(f.type == 0 && f.n_envelopes == 0);
    }
    buf[len] = 0;
    CHECK(frame_decode(buf, len + 1, &f) == PARLEY_ERR_MALFORMED);
    for (size_t i = 0; i < len; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            buf[i] ^= (uint8_t)(1u << bit);
            int rc = frame_decode(buf, len, &f);
            CHECK(rc != 0 || s_views_inside(&f, buf, len));
            buf[i] ^= (uint8_t)(1u << bit);
        }
    }
    for (size_t k = 0; k < n_struct; k++) {
        buf[structural[k]] ^= 0x80;
        CHECK(frame_decode(buf, len, &f) != 0);
        buf[structural[k]] ^= 0x80;
        buf[structural[k]] ^= 0x01;
        CHECK(frame_decode(buf, len, &f) != 0);
        buf[structural[k]] ^= 0x01;
    }
    free(buf);
}

static void
s_test_hello(uint8_t *buf, size_t cap)
{
    uint8_t pk[32];
    memset(pk, 0xab, sizeof pk);
    const char *eps[] = { "tcp://10.0.0.1:5670", "tcp://[fe80::1]:5670", "ipc:///tmp/p" };
    size_t len = 0;
    CHECK(frame_encode_hello(pk, 0x3u, "main office", eps, 3, buf, cap, &len) == 0);
    frame_t f;
    CHECK(frame_decode(buf, len, &f) == 0 && f.type == FRAME_HELLO);
    CHECK(memcmp(f.ed_pk, pk, 32) == 0 && f.caps == 3 && f.n_endpoints == 3);
    CHECK(f.tag_len == 11 && memcmp(f.tag, "main office", 11) == 0);
    CHECK(f.endpoint_lens[1] == strlen(eps[1]) && memcmp(f.endpoints[1], eps[1], 20) == 0);
    /* version, type, tag_len, n, each endpoint length */
    const size_t structural[] = { 0, 1, 38, 50, 51, 71, 92 };
    s_attack(buf, len, structural, sizeof structural / sizeof structural[0]);
}

static void
s_test_hello_limits(uint8_t *buf, size_t cap)
{
    uint8_t pk[32];
    memset(pk, 0xab, sizeof pk);
    size_t len = 0;
    frame_t f;
    CHECK(frame_encode_hello(pk, 0, NULL, NULL, 0, buf, cap, &len) == 0 && len == 40);
    CHECK(frame_decode(buf, len, &f) == 0 && f.tag_len == 0 && f.n_endpoints == 0);
    CHECK(frame_encode_hello(pk, 0, NULL, NULL, 0, buf, 39, &len) == PARLEY_ERR_LIMIT);

    char tag[PARLEY_NETTAG_MAX + 2];
    memset(tag, 't', sizeof tag - 1);
    tag[sizeof tag - 1] = '\0';
    CHECK(frame_encode_hello(pk, 0, tag, NULL, 0, buf, cap, &len) == PARLEY_ERR_LIMIT);
    tag[PARLEY_NETTAG_MAX] = '\0';
    CHECK(frame_encode_hello(pk, 0, tag, NULL, 0, buf, cap, &len) == 0);
    CHECK(frame_encode_hello(pk, 0, "bad\ttag", NULL, 0, buf, cap, &len) == PARLEY_ERR_MALFORMED);

    char ep[PARLEY_ENDPOINT_MAX + 2];
    memset(ep, 'e', sizeof ep - 1);
    ep[sizeof ep - 1] = '\0';
    const char *many[PARLEY_HELLO_ENDPOINTS_MAX + 1];
    for (size_t i = 0; i < PARLEY_HELLO_ENDPOINTS_MAX + 1; i++) {
        many[i] = ep;
    }
    CHECK(frame_encode_hello(pk, 0, "", many, 1, buf, cap, &len) == PARLEY_ERR_LIMIT);
    ep[PARLEY_ENDPOINT_MAX] = '\0';
    CHECK(frame_encode_hello(pk, 0, "", many, PARLEY_HELLO_ENDPOINTS_MAX, buf, cap, &len) == 0);
    CHECK(frame_decode(buf, len, &f) == 0 && f.n_endpoints == PARLEY_HELLO_ENDPOINTS_MAX);
    CHECK(f.endpoint_lens[7] == PARLEY_ENDPOINT_MAX);
    CHECK(frame_encode_hello(pk, 0, "", many, PARLEY_HELLO_ENDPOINTS_MAX + 1, buf, cap, &len)
          == PARLEY_ERR_LIMIT);
    const char *odd[] = { "" };
    CHECK(frame_encode_hello(pk, 0, "", odd, 1, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    odd[0] = "tcp://a b";
    CHECK(frame_encode_hello(pk, 0, "", odd, 1, buf, cap, &len) == PARLEY_ERR_MALFORMED);
}

static void
s_test_hello_hostile(void)
{
    frame_t f;

    /* Hand-made hostile HELLOs. */
    uint8_t h[64] = { PARLEY_PROTO_VERSION, FRAME_HELLO };
    h[38] = PARLEY_NETTAG_MAX + 1;                      /* tag_len */
    CHECK(frame_decode(h, 39, &f) == PARLEY_ERR_LIMIT); /* refused before the tag is read */
    h[38] = 0;
    h[39] = PARLEY_HELLO_ENDPOINTS_MAX + 1; /* n */
    CHECK(frame_decode(h, 40, &f) == PARLEY_ERR_LIMIT);
    h[39] = 1;
    h[40] = 0; /* an empty endpoint */
    CHECK(frame_decode(h, 41, &f) == PARLEY_ERR_MALFORMED);
    h[40] = 1;
    h[41] = 0; /* a NUL in an endpoint */
    CHECK(frame_decode(h, 42, &f) == PARLEY_ERR_MALFORMED);
    h[41] = 'x';
    CHECK(frame_decode(h, 42, &f) == 0);
}

static void
s_test_envelopes(uint8_t *buf, size_t cap)
{
    uint8_t env[300];
    for (size_t i = 0; i < sizeof env; i++) {
        env[i] = (uint8_t)i;
    }
    frame_batch_t b;
    frame_batch_begin(&b, buf, cap);
    CHECK(frame_batch_finish(&b) == 0);
    CHECK(frame_batch_add(&b, env, 0) == PARLEY_ERR_MALFORMED);
    CHECK(frame_batch_add(&b, env, PARLEY_ENVELOPE_MAX + 1) == PARLEY_ERR_LIMIT);
    CHECK(frame_batch_add(&b, env, 200) == 0);
    CHECK(frame_batch_add(&b, env + 10, 100) == 0);
    size_t len = frame_batch_finish(&b);
    CHECK(len == 4 + 204 + 104);
    frame_t f;
    CHECK(frame_decode(buf, len, &f) == 0 && f.type == FRAME_ENVELOPES && f.n_envelopes == 2);
    CHECK(f.envelope_lens[1] == 100 && memcmp(f.envelopes[1], env + 10, 100) == 0);
    const size_t structural[] = { 0, 1, 2, 3, 4, 5, 6, 7, 208, 209, 210, 211 };
    s_attack(buf, len, structural, sizeof structural / sizeof structural[0]);

    frame_batch_begin(&b, buf, cap);
    for (size_t i = 0; i < PARLEY_BATCH_MAX; i++) {
        CHECK(frame_batch_add(&b, env, 1) == 0);
    }
    CHECK(frame_batch_add(&b, env, 1) == PARLEY_ERR_LIMIT);
    len = frame_batch_finish(&b);
    CHECK(frame_decode(buf, len, &f) == 0 && f.n_envelopes == PARLEY_BATCH_MAX);
    buf[3] = PARLEY_BATCH_MAX + 1;
    CHECK(frame_decode(buf, len, &f) == PARLEY_ERR_LIMIT);

    frame_batch_begin(&b, buf, 4 + 4 + 99);
    CHECK(frame_batch_add(&b, env, 100) == PARLEY_ERR_LIMIT); /* out of room */
    CHECK(frame_batch_add(&b, env, 99) == 0);
    frame_batch_begin(&b, buf, 3);
    CHECK(frame_batch_add(&b, env, 1) == PARLEY_ERR_LIMIT);
    CHECK(frame_batch_finish(&b) == 0);

    /* A length that claims more than the frame holds, or than an envelope may. */
    const uint8_t lie[] = { PARLEY_PROTO_VERSION, FRAME_ENVELOPES, 0, 1, 0, 0x01, 0, 1, 'x' };
    CHECK(frame_decode(lie, sizeof lie, &f) == PARLEY_ERR_LIMIT);
    const uint8_t lie2[] = { PARLEY_PROTO_VERSION, FRAME_ENVELOPES, 0, 1, 0, 0, 0, 2, 'x' };
    CHECK(frame_decode(lie2, sizeof lie2, &f) == PARLEY_ERR_MALFORMED);
    const uint8_t none[] = { PARLEY_PROTO_VERSION, FRAME_ENVELOPES, 0, 0 };
    CHECK(frame_decode(none, sizeof none, &f) == PARLEY_ERR_MALFORMED);
}

static void
s_test_small_frames(uint8_t *buf, size_t cap)
{
    uint8_t ids[3 * 32];
    memset(ids, 0x11, sizeof ids);
    size_t len = 0;
    frame_t f;
    CHECK(frame_encode_ack(ids, 3, buf, cap, &len) == 0 && len == 4 + 96);
    CHECK(frame_decode(buf, len, &f) == 0 && f.type == FRAME_ACK && f.n_ids == 3);
    const size_t ack_struct[] = { 0, 1, 2, 3 };
    s_attack(buf, len, ack_struct, 4);
    CHECK(frame_encode_ack(ids, 0, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    CHECK(frame_encode_ack(ids, PARLEY_ACK_MAX + 1, buf, cap, &len) == PARLEY_ERR_LIMIT);
    CHECK(frame_encode_ack(ids, 3, buf, 99, &len) == PARLEY_ERR_LIMIT);
    const uint8_t big_ack[] = { PARLEY_PROTO_VERSION, FRAME_ACK, 0x04, 0x01 };
    CHECK(frame_decode(big_ack, sizeof big_ack, &f) == PARLEY_ERR_LIMIT);

    CHECK(frame_encode_ping(FRAME_PING, 0x0102030405060708ull, buf, cap, &len) == 0);
    CHECK(len == 10 && frame_decode(buf, len, &f) == 0 && f.nonce == 0x0102030405060708ull);
    const size_t ping_struct[] = { 0 };
    s_attack(buf, len, ping_struct, 1);
    CHECK(frame_encode_ping(FRAME_PONG, 9, buf, cap, &len) == 0);
    CHECK(frame_decode(buf, len, &f) == 0 && f.type == FRAME_PONG && f.nonce == 9);
    CHECK(frame_encode_ping(FRAME_BYE, 9, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    CHECK(frame_encode_ping(FRAME_PING, 9, buf, 9, &len) == PARLEY_ERR_LIMIT);

    CHECK(frame_encode_bye(3, buf, cap, &len) == 0 && len == 3);
    CHECK(frame_decode(buf, len, &f) == 0 && f.type == FRAME_BYE && f.reason == 3);
    s_attack(buf, len, ping_struct, 1);

    uint8_t bundle[DM_PREKEY_BUNDLE_LEN];
    memset(bundle, 0x22, sizeof bundle);
    CHECK(frame_encode_prekey(bundle, sizeof bundle - 1, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    CHECK(frame_encode_prekey(bundle, sizeof bundle, buf, cap, &len) == 0);
    CHECK(frame_decode(buf, len, &f) == 0 && f.bundle_len == DM_PREKEY_BUNDLE_LEN);
    s_attack(buf, len, ping_struct, 1);

    //  PEERS: round trip, and every truncation refused.
    const uint8_t r1[] = { 1, 2, 3 }, r2[] = { 4, 5 };
    const uint8_t *recs[2] = { r1, r2 };
    const size_t rlens[2] = { sizeof r1, sizeof r2 };
    CHECK(frame_encode_peers(recs, rlens, 2, buf, cap, &len) == PARLEY_OK);
    CHECK(frame_decode(buf, len, &f) == 0 && f.type == FRAME_PEERS && f.n_records == 2
          && f.record_lens[1] == 2 && memcmp(f.records[0], r1, 3) == 0);
    for (size_t cut = 0; cut < len; cut++) {
        CHECK(frame_decode(buf, cut, &f) != PARLEY_OK);
    }
    CHECK(frame_encode_peers(recs, rlens, 0, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    CHECK(frame_encode_peers(recs, rlens, PARLEY_PEERS_MAX + 1, buf, cap, &len)
          == PARLEY_ERR_LIMIT);
    const uint8_t unknown[] = { PARLEY_PROTO_VERSION, 99, 0 };
    CHECK(frame_decode(unknown, sizeof unknown, &f) == PARLEY_ERR_UNSUPPORTED);
    const uint8_t future[] = { PARLEY_PROTO_VERSION + 1, FRAME_BYE, 0 };
    CHECK(frame_decode(future, sizeof future, &f) == PARLEY_ERR_UNSUPPORTED);
    /* The length alone is refused: buf is never read. */
    CHECK(frame_decode(buf, PARLEY_FRAME_MAX + 1, &f) == PARLEY_ERR_LIMIT);
    CHECK(frame_decode(NULL, 0, &f) == PARLEY_ERR_MALFORMED);
}

static void
s_test_join(uint8_t *buf, size_t cap)
{
    uint8_t net[32];
    memset(net, 0x42, sizeof net);
    size_t len = 0;
    frame_t f;
    CHECK(frame_encode_join_ask(net, buf, cap, &len) == 0 && len == 35);
    CHECK(frame_decode(buf, len, &f) == 0 && f.type == FRAME_JOIN && f.step == FRAME_JOIN_ASK);
    CHECK(f.network_id == buf + 3 && memcmp(f.network_id, net, 32) == 0);
    const size_t ask_struct[] = { 0, 1, 2 };
    s_attack(buf, len, ask_struct, 3);
    CHECK(frame_encode_join_ask(net, buf, 34, &len) == PARLEY_ERR_LIMIT && len == 0);
    CHECK(frame_encode_join_ask(NULL, buf, cap, &len) == PARLEY_ERR_MALFORMED);

    /* HEADS: the most there may be, then two, every structural byte. */
    uint8_t heads[(ROSTER_PARENTS_MAX + 1) * 32];
    for (size_t i = 0; i < ROSTER_PARENTS_MAX + 1; i++) {
        memset(heads + i * 32, 0xee, 32);
        heads[i * 32] = (uint8_t)(0x10 + i); /* ascending: the first byte decides */
    }
    CHECK(frame_encode_join_heads(heads, ROSTER_PARENTS_MAX, buf, cap, &len) == 0);
    CHECK(frame_decode(buf, len, &f) == 0 && f.n_heads == ROSTER_PARENTS_MAX);
    CHECK(frame_encode_join_heads(heads, ROSTER_PARENTS_MAX + 1, buf, cap, &len)
          == PARLEY_ERR_LIMIT);
    CHECK(frame_encode_join_heads(heads, 0, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    CHECK(frame_encode_join_heads(heads, 2, buf, cap, &len) == 0 && len == 4 + 64);
    CHECK(frame_decode(buf, len, &f) == 0 && f.step == FRAME_JOIN_HEADS && f.n_heads == 2);
    CHECK(f.heads == buf + 4 && memcmp(f.heads, heads, 64) == 0);
    const size_t heads_struct[] = { 0, 1, 2, 3 };
    s_attack(buf, len, heads_struct, 4);
    /* Equal or descending heads: refused by both sides. */
    uint8_t twice[64];
    memcpy(twice, heads, 32);
    memcpy(twice + 32, heads, 32);
    CHECK(frame_encode_join_heads(twice, 2, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    memcpy(twice, heads + 32, 32);
    CHECK(frame_encode_join_heads(twice, 2, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    uint8_t h[4 + 64] = { PARLEY_PROTO_VERSION, FRAME_JOIN, FRAME_JOIN_HEADS, 2 };
    memcpy(h + 4, twice, 64);
    CHECK(frame_decode(h, sizeof h, &f) == PARLEY_ERR_MALFORMED);
    h[3] = 0;
    CHECK(frame_decode(h, 4, &f) == PARLEY_ERR_MALFORMED);
    h[3] = ROSTER_PARENTS_MAX + 1;
    CHECK(frame_decode(h, sizeof h, &f) == PARLEY_ERR_LIMIT);

    /* DONE: added, refused with and without a reason. */
    CHECK(frame_encode_join_done(FRAME_JOIN_ADDED, NULL, 0, buf, cap, &len) == 0 && len == 5);
    CHECK(frame_decode(buf, len, &f) == 0 && f.step == FRAME_JOIN_DONE && f.status == 0);
    CHECK(f.why_len == 0);
    const size_t added_struct[] = { 0, 1, 2, 4 }; /* status 0 → 1 is a valid refusal */
    s_attack(buf, len, added_struct, 4);
    const char *why = "invite used up \xc3\xa9"; /* UTF-8 is fine */
    CHECK(frame_encode_join_done(FRAME_JOIN_REFUSED, why, strlen(why), buf, cap, &len) == 0);
    CHECK(frame_decode(buf, len, &f) == 0 && f.status == FRAME_JOIN_REFUSED);
    CHECK(f.why_len == strlen(why) && memcmp(f.why, why, f.why_len) == 0);
    const size_t refused_struct[] = { 0, 1, 2, 3, 4 };
    s_attack(buf, len, refused_struct, 5);
    CHECK(frame_encode_join_done(FRAME_JOIN_REFUSED, "", 0, buf, cap, &len) == 0 && len == 5);
    CHECK(frame_decode(buf, len, &f) == 0 && f.why_len == 0);
    char long_why[ROSTER_REASON_MAX + 1];
    memset(long_why, 'r', sizeof long_why);
    CHECK(frame_encode_join_done(1, long_why, ROSTER_REASON_MAX, buf, cap, &len) == 0);
    CHECK(frame_decode(buf, len, &f) == 0 && f.why_len == ROSTER_REASON_MAX);
    CHECK(frame_encode_join_done(1, long_why, ROSTER_REASON_MAX + 1, buf, cap, &len)
          == PARLEY_ERR_LIMIT);
    CHECK(frame_encode_join_done(FRAME_JOIN_ADDED, "x", 1, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    CHECK(frame_encode_join_done(2, NULL, 0, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    CHECK(frame_encode_join_done(1, NULL, 3, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    /* Controls (C0, DEL, C1), broken UTF-8 and overlong forms: refused. */
    const char *bad[] = { "a\x1b[2Jb", "a\nb",     "\x7f",         "\xc2\x85",
                          "\xff",      "\xc0\xaf", "\xed\xa0\x80", "\xe2\x82" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(frame_encode_join_done(1, bad[i], strlen(bad[i]), buf, cap, &len)
              == PARLEY_ERR_MALFORMED);
        uint8_t d[16] = { PARLEY_PROTO_VERSION, FRAME_JOIN, FRAME_JOIN_DONE, 1,
                          (uint8_t)strlen(bad[i]) };
        memcpy(d + 5, bad[i], strlen(bad[i]));
        CHECK(frame_decode(d, 5 + strlen(bad[i]), &f) == PARLEY_ERR_MALFORMED);
    }
    uint8_t d[8] = { PARLEY_PROTO_VERSION, FRAME_JOIN, FRAME_JOIN_DONE, 0, 1, 'x' };
    CHECK(frame_decode(d, 6, &f) == PARLEY_ERR_MALFORMED); /* added with a reason */
    d[3] = 2;
    d[4] = 0;
    CHECK(frame_decode(d, 5, &f) == PARLEY_ERR_MALFORMED); /* unknown status */
    d[3] = 1;
    d[4] = ROSTER_REASON_MAX + 1;
    CHECK(frame_decode(d, 5, &f) == PARLEY_ERR_LIMIT); /* refused before it is read */

    /* Steps: none, unknown (a later version's), or cut short. */
    const uint8_t step0[] = { PARLEY_PROTO_VERSION, FRAME_JOIN, 0 };
    CHECK(frame_decode(step0, sizeof step0, &f) == PARLEY_ERR_UNSUPPORTED);
    const uint8_t step4[] = { PARLEY_PROTO_VERSION, FRAME_JOIN, 4 };
    CHECK(frame_decode(step4, sizeof step4, &f) == PARLEY_ERR_UNSUPPORTED);
    CHECK(frame_decode(step4, 2, &f) == PARLEY_ERR_MALFORMED);
}

static void
s_test_netkey(uint8_t *buf, size_t cap)
{
    uint8_t pk[32], sk[64], net[32], secret[32], sig[64];
    crypto_sign_keypair(pk, sk);
    memset(net, 0x33, sizeof net);
    randombytes_buf(secret, sizeof secret);
    CHECK(netkey_sign(net, 0x01020304u, secret, sk, sig) == PARLEY_OK);
    size_t len = 0;
    CHECK(frame_encode_netkey(net, 0x01020304u, secret, pk, sig, buf, cap, &len) == 0);
    CHECK(len == 2 + 32 + 4 + 32 + 32 + 64);
    frame_t f;
    CHECK(frame_decode(buf, len, &f) == 0 && f.type == FRAME_NETKEY && f.epoch == 0x01020304u);
    CHECK(f.network_id == buf + 2 && f.secret == buf + 38 && f.author == buf + 70);
    CHECK(f.sig == buf + 102);
    /* The decoder does not verify; what it returns verifies as signed. */
    CHECK(netkey_verify(f.network_id, f.epoch, f.secret, f.author, f.sig) == PARLEY_OK);
    const size_t netkey_struct[] = { 0, 1 };
    s_attack(buf, len, netkey_struct, 2);
    /* A changed epoch still parses but no longer verifies. */
    buf[37] ^= 1;
    CHECK(frame_decode(buf, len, &f) == 0);
    CHECK(netkey_verify(f.network_id, f.epoch, f.secret, f.author, f.sig) == PARLEY_ERR_AUTH);
    buf[37] ^= 1;
    /* An all-zero secret: refused by both sides. */
    memset(buf + 38, 0, 32);
    CHECK(frame_decode(buf, len, &f) == PARLEY_ERR_MALFORMED);
    uint8_t zero[32] = { 0 };
    CHECK(frame_encode_netkey(net, 1, zero, pk, sig, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    CHECK(frame_encode_netkey(net, 1, secret, NULL, sig, buf, cap, &len) == PARLEY_ERR_MALFORMED);
    /* Out of room: nothing of the secret is left behind. */
    CHECK(frame_encode_netkey(net, 1, secret, pk, sig, buf, 100, &len) == PARLEY_ERR_LIMIT);
    CHECK(len == 0 && sodium_is_zero(buf, 100));
    sodium_memzero(sk, sizeof sk);
    sodium_memzero(secret, sizeof secret);
}

/*  Random mutations of a valid HELLO: never a crash, never a stray view. */
static void
s_test_mutations(uint8_t *buf, size_t cap)
{
    uint8_t pk[32] = { 1 };
    const char *eps[] = { "tcp://127.0.0.1:1", "tcp://127.0.0.1:2" };
    size_t len = 0;
    CHECK(frame_encode_hello(pk, 1, "net", eps, 2, buf, cap, &len) == 0);
    uint8_t *copy = malloc(len);
    CHECK(copy);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 20000; round++) {
        memcpy(copy, buf, len);
        for (int k = 0; k < 3; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            copy[x % len] = (uint8_t)(x >> 32);
        }
        frame_t f;
        size_t cut = (size_t)(x >> 40) % (len + 1);
        int rc = frame_decode(copy, cut, &f);
        CHECK(rc != 0 || s_views_inside(&f, copy, cut));
    }
    free(copy);
}

void
frame_test(bool verbose)
{
    if (verbose) {
        printf(" * frame: every type (JOIN steps, NETKEY), truncation, bit flips, limits, "
               "mutations\n");
    }
    size_t cap = 70000;
    uint8_t *buf = malloc(cap);
    CHECK(buf);
    s_test_hello(buf, cap);
    s_test_hello_limits(buf, cap);
    s_test_hello_hostile();
    s_test_envelopes(buf, cap);
    s_test_small_frames(buf, cap);
    s_test_join(buf, cap);
    s_test_netkey(buf, cap);
    s_test_mutations(buf, cap);
    free(buf);
}
