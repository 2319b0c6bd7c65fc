/*  tests/fuzz/fuzz_addr.c — addr_decode on arbitrary bytes.
 *
 *  Address records are gossiped between peers: any connected peer can hand
 *  over any bytes, claiming they are some node's signed addresses, and what
 *  decodes decides where a node dials. The decoder checks structure,
 *  endpoints, lifetime, the signature and the clock; anything else must be
 *  an error. A record cannot be re-encoded without its signer's key, so a
 *  record that decodes is checked field by field against its bytes instead,
 *  and its signature is checked again here, independently of the decoder.
 */
#include "fuzz_common.h"

#include "../../proto/addr.h"
#include "../../proto/endpoint.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    addr_record_t r;
    int rc = addr_decode(data, size, FUZZ_NOW_MS, &r);
    if (rc != PARLEY_OK) {
        FUZZ_CHECK(rc < 0);
        return 0;
    }
    //  Layout from proto/addr.h: version | pk | issued | expires | n | endpoints | sig.
    FUZZ_CHECK(size >= ADDR_RECORD_MIN && size <= ADDR_RECORD_MAX);
    FUZZ_CHECK(data[0] == ADDR_VERSION);
    FUZZ_CHECK(memcmp(r.pk, data + 1, 32) == 0);
    FUZZ_CHECK(r.issued_ms == fuzz_be(data + 33, 8));
    FUZZ_CHECK(r.expires_ms == fuzz_be(data + 41, 8));
    FUZZ_CHECK(r.n == data[49] && r.n >= 1 && r.n <= PARLEY_HELLO_ENDPOINTS_MAX);
    size_t off = ADDR_HEADER_LEN;
    for (size_t i = 0; i < r.n; i++) {
        FUZZ_CHECK(off < size);
        size_t len = data[off++];
        FUZZ_CHECK(len >= 1 && len <= size - off);
        FUZZ_CHECK(strlen(r.endpoints[i]) == len);
        FUZZ_CHECK(memcmp(r.endpoints[i], data + off, len) == 0);
        FUZZ_CHECK(endpoint_valid(r.endpoints[i], len));
        off += len;
    }
    FUZZ_CHECK(off + PARLEY_SIG_LEN == size);
    //  Unused slots stay empty.
    for (size_t i = r.n; i < PARLEY_HELLO_ENDPOINTS_MAX; i++) {
        FUZZ_CHECK(r.endpoints[i][0] == '\0');
    }
    //  Times: a sane lifetime, current at FUZZ_NOW_MS.
    FUZZ_CHECK(r.issued_ms < r.expires_ms);
    FUZZ_CHECK(r.expires_ms - r.issued_ms <= ADDR_MAX_LIFETIME_MS);
    FUZZ_CHECK(r.expires_ms > FUZZ_NOW_MS);
    FUZZ_CHECK(r.issued_ms <= FUZZ_NOW_MS || r.issued_ms - FUZZ_NOW_MS <= PARLEY_FUTURE_SKEW_MS);
    //  The signature, verified again over domain || signed bytes.
    uint8_t msg[sizeof ADDR_SIG_DOMAIN + ADDR_RECORD_MAX];
    memcpy(msg, ADDR_SIG_DOMAIN, sizeof ADDR_SIG_DOMAIN);
    memcpy(msg + sizeof ADDR_SIG_DOMAIN, data, off);
    FUZZ_CHECK(crypto_sign_verify_detached(data + off, msg, sizeof ADDR_SIG_DOMAIN + off, r.pk)
               == 0);
    //  Decoding is a pure function of the bytes, and no proper prefix of a
    //  record is a record.
    addr_record_t again;
    FUZZ_CHECK(addr_decode(data, size, FUZZ_NOW_MS, &again) == PARLEY_OK);
    FUZZ_CHECK(memcmp(&again, &r, sizeof r) == 0);
    FUZZ_CHECK(addr_decode(data, size - 1, FUZZ_NOW_MS, &again) != PARLEY_OK);
    return 0;
}
