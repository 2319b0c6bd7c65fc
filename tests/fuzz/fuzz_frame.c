/*  tests/fuzz/fuzz_frame.c — frame_decode on arbitrary bytes, and a round
 *  trip through the matching encoder for every frame that decodes.
 *
 *  frame_decode is the first thing that touches a peer's bytes after CURVE.
 *  The decoder is strict (frame.c): nothing trails, every count is in range,
 *  HELLO strings are printable. So a frame that decodes has exactly one
 *  encoding, and re-encoding the decoded fields must give back the input
 *  byte for byte. A mismatch means the decoder accepts something the
 *  encoder would never produce, or they disagree on the layout.
 */
#include "fuzz_common.h"

#include "../../proto/frame.h"

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
