/*  tests/fuzz/fuzz_frame.c — frame_decode on arbitrary bytes, and a round
 *  trip through the matching encoder for every frame that decodes.
 *
 *  frame_decode is the first thing that touches a peer's bytes after CURVE.
 *  The decoder is strict (frame.c): nothing trails, every count is in range,
 *  HELLO strings are printable. So a frame that decodes has exactly one
 *  encoding, and re-encoding the decoded fields must give back the input
 *  byte for byte. A mismatch means the decoder accepts something the
 *  encoder would never produce, or they disagree on the layout.
 *
 *  RECONCILE has no encoder that takes decoded fields (sync_writer_t builds
 *  ranges from a set and its accumulators), so its payload is rebuilt here
 *  from what the sync readers return, field by field in the layout at the
 *  top of proto/sync_msg.c: the same bytes back mean the readers lose
 *  nothing and the checker admits one encoding per message. The engine's
 *  answers to such frames are fuzzed by fuzz_sync.c.
 *
 *  JOIN (every step) and NETKEY round-trip through their encoders too; the
 *  seed corpus holds one of each (gen_corpus.c), so the fuzzer starts past
 *  the type and step bytes. NETKEY's signature is not checked by the decoder
 *  (the node does it), so any bytes there must round-trip.
 */
#include "fuzz_common.h"

#include "../../proto/frame.h"
#include "../../proto/roster.h"
#include "../../proto/sync_msg.h"

/*  Large enough for any frame; static so the target stays stack-light. */
static uint8_t s_out[PARLEY_FRAME_MAX];

static void
s_check_same(const uint8_t *data, size_t size, int rc, size_t out_len)
{
    FUZZ_CHECK(rc == PARLEY_OK);
    FUZZ_CHECK(out_len == size);
    FUZZ_CHECK(memcmp(s_out, data, size) == 0);
}

/*  The decoded strings are views without a NUL: copy them out for the
 *  encoder, which takes C strings. */
static void
s_roundtrip_hello(const uint8_t *data, size_t size, const frame_t *f)
{
    char tag[PARLEY_NETTAG_MAX + 1];
    char eps[PARLEY_HELLO_ENDPOINTS_MAX][PARLEY_ENDPOINT_MAX + 1];
    const char *ep_ptrs[PARLEY_HELLO_ENDPOINTS_MAX];
    FUZZ_CHECK(f->tag_len <= PARLEY_NETTAG_MAX);
    FUZZ_CHECK(f->n_endpoints <= PARLEY_HELLO_ENDPOINTS_MAX);
    memcpy(tag, f->tag, f->tag_len);
    tag[f->tag_len] = '\0';
    for (size_t i = 0; i < f->n_endpoints; i++) {
        FUZZ_CHECK(f->endpoint_lens[i] >= 1 && f->endpoint_lens[i] <= PARLEY_ENDPOINT_MAX);
        memcpy(eps[i], f->endpoints[i], f->endpoint_lens[i]);
        eps[i][f->endpoint_lens[i]] = '\0';
        ep_ptrs[i] = eps[i];
    }
    size_t len = 0;
    int rc = frame_encode_hello(f->ed_pk, f->caps, tag, ep_ptrs, f->n_endpoints, s_out,
                                sizeof s_out, &len);
    s_check_same(data, size, rc, len);
}

static void
s_roundtrip_envelopes(const uint8_t *data, size_t size, const frame_t *f)
{
    FUZZ_CHECK(f->n_envelopes >= 1 && f->n_envelopes <= PARLEY_BATCH_MAX);
    frame_batch_t b;
    frame_batch_begin(&b, s_out, sizeof s_out);
    for (size_t i = 0; i < f->n_envelopes; i++) {
        FUZZ_CHECK(f->envelope_lens[i] <= PARLEY_ENVELOPE_MAX);
        FUZZ_CHECK(frame_batch_add(&b, f->envelopes[i], f->envelope_lens[i]) == PARLEY_OK);
    }
    size_t len = frame_batch_finish(&b);
    s_check_same(data, size, PARLEY_OK, len);
}

/*  One range as the readers returned it; prev_ts is the block's previous
 *  finite bound (bounds are delta-coded). */
static void
s_put_range(bytes_writer_t *w, const sync_range_t *rg, uint64_t *prev_ts)
{
    if (sync_bound_is_inf(&rg->upper)) {
        bytes_put_varint(w, 0);
    } else {
        FUZZ_CHECK(rg->upper.ts >= *prev_ts && rg->upper.len <= 32);
        bytes_put_varint(w, rg->upper.ts - *prev_ts + 1);
        bytes_put_u8(w, rg->upper.len);
        bytes_put(w, rg->upper.prefix, rg->upper.len);
        *prev_ts = rg->upper.ts;
    }
    bytes_put_u8(w, (uint8_t)rg->mode);
    if (rg->mode == SYNC_FP) {
        bytes_put_varint(w, rg->count);
        bytes_put(w, rg->fp, SYNC_FP_LEN);
    } else if (rg->mode == SYNC_IDS) {
        FUZZ_CHECK(rg->n_ids <= SYNC_IDS_MAX);
        bytes_put_varint(w, rg->n_ids);
        bytes_put(w, rg->ids, rg->n_ids * SYNC_PREFIX_LEN);
    }
}

static void
s_roundtrip_reconcile(const uint8_t *data, size_t size, const frame_t *f)
{
    FUZZ_CHECK(f->sync == data + 2 && f->sync_len == size - 2);
    bytes_writer_t w;
    bytes_writer_init(&w, s_out, sizeof s_out);
    bytes_put_u8(&w, PARLEY_PROTO_VERSION);
    bytes_put_u8(&w, FRAME_RECONCILE);
    sync_msg_reader_t rd;
    sync_msg_open(&rd, f->sync, f->sync_len);
    bytes_put_u8(&w, rd.flags);
    if (rd.digest) {
        bytes_put(&w, rd.digest, SYNC_FP_LEN);
    }
    FUZZ_CHECK(rd.n_blocks <= SYNC_BLOCKS_MAX);
    bytes_put_u16(&w, (uint16_t)rd.n_blocks);
    sync_block_t blk;
    size_t n_blocks = 0;
    while (sync_msg_next(&rd, &blk)) {
        FUZZ_CHECK(blk.n_hints <= SYNC_HINTS_MAX && blk.n_ranges <= SYNC_RANGES_MAX);
        bytes_put(&w, blk.scope, 32);
        bytes_put_u8(&w, (uint8_t)blk.n_hints);
        bytes_put(&w, blk.hints, blk.n_hints * 32);
        bytes_put_u16(&w, (uint16_t)blk.n_ranges);
        sync_range_reader_t rr;
        sync_ranges_open(&rr, &blk);
        sync_range_t rg;
        uint64_t prev_ts = 0;
        size_t n_ranges = 0;
        while (sync_ranges_next(&rr, &rg)) {
            s_put_range(&w, &rg, &prev_ts);
            n_ranges++;
        }
        FUZZ_CHECK(n_ranges == blk.n_ranges);
        n_blocks++;
    }
    FUZZ_CHECK(n_blocks == rd.n_blocks);
    FUZZ_CHECK(bytes_writer_ok(&w));
    s_check_same(data, size, PARLEY_OK, (size_t)(w.p - s_out));
}

/*  JOIN, by step; the views must be where the layout puts them. */
static void
s_roundtrip_join(const uint8_t *data, size_t size, const frame_t *f)
{
    size_t len = 0;
    FUZZ_CHECK(data[2] == f->step);
    switch (f->step) {
    case FRAME_JOIN_ASK:
        FUZZ_CHECK(f->network_id == data + 3);
        s_check_same(data, size, frame_encode_join_ask(f->network_id, s_out, sizeof s_out, &len),
                     len);
        break;
    case FRAME_JOIN_HEADS:
        FUZZ_CHECK(f->n_heads >= 1 && f->n_heads <= ROSTER_PARENTS_MAX && f->heads == data + 4);
        s_check_same(data, size,
                     frame_encode_join_heads(f->heads, f->n_heads, s_out, sizeof s_out, &len), len);
        break;
    case FRAME_JOIN_DONE:
        FUZZ_CHECK(f->status <= FRAME_JOIN_REFUSED && f->why_len <= ROSTER_REASON_MAX);
        FUZZ_CHECK(f->status == FRAME_JOIN_REFUSED || f->why_len == 0);
        FUZZ_CHECK(roster_text_valid((const uint8_t *)f->why, f->why_len));
        s_check_same(
            data, size,
            frame_encode_join_done(f->status, f->why, f->why_len, s_out, sizeof s_out, &len), len);
        break;
    default: FUZZ_CHECK(!"frame_decode accepted an unknown JOIN step");
    }
}

static void
s_roundtrip(const uint8_t *data, size_t size, const frame_t *f)
{
    size_t len = 0;
    switch (f->type) {
    case FRAME_HELLO: s_roundtrip_hello(data, size, f); break;
    case FRAME_PREKEY:
        s_check_same(data, size,
                     frame_encode_prekey(f->bundle, f->bundle_len, s_out, sizeof s_out, &len), len);
        break;
    case FRAME_ENVELOPES: s_roundtrip_envelopes(data, size, f); break;
    case FRAME_ACK:
        FUZZ_CHECK(f->n_ids >= 1 && f->n_ids <= PARLEY_ACK_MAX);
        s_check_same(data, size, frame_encode_ack(f->ids, f->n_ids, s_out, sizeof s_out, &len),
                     len);
        break;
    case FRAME_PING:
    case FRAME_PONG:
        s_check_same(data, size, frame_encode_ping(f->type, f->nonce, s_out, sizeof s_out, &len),
                     len);
        break;
    case FRAME_BYE:
        s_check_same(data, size, frame_encode_bye(f->reason, s_out, sizeof s_out, &len), len);
        break;
    case FRAME_PEERS:
        FUZZ_CHECK(f->n_records >= 1 && f->n_records <= PARLEY_PEERS_MAX);
        s_check_same(
            data, size,
            frame_encode_peers(f->records, f->record_lens, f->n_records, s_out, sizeof s_out, &len),
            len);
        break;
    case FRAME_RECONCILE: s_roundtrip_reconcile(data, size, f); break;
    case FRAME_WANT:
        FUZZ_CHECK(f->n_prefixes >= 1 && f->n_prefixes <= SYNC_WANT_MAX);
        FUZZ_CHECK(f->prefixes == data + 4);
        s_check_same(data, size,
                     frame_encode_want(f->prefixes, f->n_prefixes, s_out, sizeof s_out, &len), len);
        break;
    case FRAME_JOIN: s_roundtrip_join(data, size, f); break;
    case FRAME_NETKEY:
        FUZZ_CHECK(f->network_id == data + 2 && f->epoch == fuzz_be(data + 34, 4));
        FUZZ_CHECK(!sodium_is_zero(f->secret, 32));
        s_check_same(data, size,
                     frame_encode_netkey(f->network_id, f->epoch, f->secret, f->author, f->sig,
                                         s_out, sizeof s_out, &len),
                     len);
        break;
    default: FUZZ_CHECK(!"frame_decode accepted an unknown type");
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    frame_t f;
    int rc = frame_decode(data, size, &f);
    if (rc != PARLEY_OK) {
        FUZZ_CHECK(rc < 0);
        return 0;
    }
    FUZZ_CHECK(size >= 2 && size <= PARLEY_FRAME_MAX);
    FUZZ_CHECK(data[0] == PARLEY_PROTO_VERSION && data[1] == f.type);
    s_roundtrip(data, size, &f);
    return 0;
}
