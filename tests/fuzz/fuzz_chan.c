/*  tests/fuzz/fuzz_chan.c — a channel's two decoders on arbitrary bytes.
 *
 *  The first byte chooses: 0 feeds the rest to chan_keys_decode (a KEYS body
 *  any member of a channel may write, SPEC §21.3), 2 to chan_rx_load (a
 *  chain's saved state, read back from a database that may be damaged),
 *  anything else to chan_body_parse (a channel message body). What decodes must describe its
 *  bytes field by field, and every entry of a KEYS body is then opened with
 *  a fixed day key: a forged entry must be refused, never crash.
 */
#include "fuzz_common.h"

#include "../../proto/chan.h"

static void
s_keys(const uint8_t *data, size_t size)
{
    chan_keys_t k;
    int rc = chan_keys_decode(data, size, &k);
    if (rc != PARLEY_OK) {
        FUZZ_CHECK(rc < 0 && k.n == 0 && k.entries == NULL);
        return;
    }
    //  Layout from proto/chan.c: the fixed part, then n entries.
    FUZZ_CHECK(size == CHAN_KEYS_FIXED + k.n * CHAN_KEYS_ENTRY_LEN);
    FUZZ_CHECK(data[0] == CHAN_VERSION && k.epoch == (uint32_t)fuzz_be(data + 1, 4));
    FUZZ_CHECK(memcmp(k.key_id, data + 5, CHAN_KEY_ID_LEN) == 0);
    FUZZ_CHECK(memcmp(k.binding, data + 13, 32) == 0 && memcmp(k.nonce, data + 45, 16) == 0);
    FUZZ_CHECK(k.part == data[61] && k.parts == data[62] && k.part < k.parts);
    FUZZ_CHECK(k.n >= 1 && k.n <= CHAN_KEYS_MAX && k.entries == data + CHAN_KEYS_FIXED);
    static const uint8_t channel[32], day_key[32] = { 1 };
    for (size_t i = 0; i < k.n; i++) {
        chan_keys_entry_t e;
        chan_keys_entry_at(&k, i, &e);
        FUZZ_CHECK(e.day >= e.day0);
        FUZZ_CHECK(i == 0 || memcmp(e.recipient - CHAN_KEYS_ENTRY_LEN, e.recipient, 32) < 0);
        uint8_t key[32];
        if (chan_keys_entry_open(channel, &k, &e, day_key, key) != PARLEY_OK) {
            FUZZ_CHECK(sodium_is_zero(key, sizeof key)); // nothing left behind
        }
        sodium_memzero(key, sizeof key);
    }
}

static void
s_body(const uint8_t *data, size_t size)
{
    chan_msg_header_t h;
    int rc = chan_body_parse(data, size, &h);
    if (rc != PARLEY_OK) {
        FUZZ_CHECK(rc < 0 && h.epoch == 0 && h.counter == 0);
        return;
    }
    FUZZ_CHECK(size >= CHAN_MSG_HEADER_LEN + 16 + 64 && data[0] == CHAN_VERSION);
    FUZZ_CHECK(h.epoch == (uint32_t)fuzz_be(data + 1, 4));
    FUZZ_CHECK(memcmp(h.key_id, data + 5, CHAN_KEY_ID_LEN) == 0);
    FUZZ_CHECK(h.counter == (uint32_t)fuzz_be(data + 13, 4));
    static const uint8_t env_header[PARLEY_ENVELOPE_HEADER_LEN], mk[32];
    static uint8_t content[PARLEY_CONTENT_MAX];
    size_t len = 1;
    rc = chan_body_open(env_header, data, size, mk, content, sizeof content, &len);
    FUZZ_CHECK(rc == PARLEY_OK ? len < size : (rc < 0 && len == 0));
}

//  A chain's saved state (a damaged database is input too): what loads
//  saves to the same bytes, and its keys answer without crashing.
static void
s_rx(const uint8_t *data, size_t size)
{
    int err = 0;
    chan_rx_t *rx = chan_rx_load(data, size, &err);
    if (!rx) {
        FUZZ_CHECK(err < 0);
        return;
    }
    static uint8_t out[CHAN_RX_SAVED_MAX];
    size_t len = 0;
    FUZZ_CHECK(chan_rx_save(rx, out, sizeof out, &len) == PARLEY_OK);
    FUZZ_CHECK(len == size && memcmp(out, data, size) == 0);
    uint32_t next = chan_rx_next(rx);
    uint8_t mk[32];
    FUZZ_CHECK(chan_rx_key(rx, next, mk) == PARLEY_OK || next == UINT32_MAX);
    if (next > 0) {
        int rc = chan_rx_key(rx, next - 1, mk);
        FUZZ_CHECK(rc == PARLEY_OK || rc == PARLEY_ERR_DUPLICATE);
    }
    sodium_memzero(mk, sizeof mk);
    chan_rx_destroy(&rx);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size < 1) {
        return 0;
    }
    if (data[0] == 0) {
        s_keys(data + 1, size - 1);
    } else if (data[0] == 2) {
        s_rx(data + 1, size - 1);
    } else {
        s_body(data + 1, size - 1);
    }
    return 0;
}
