/*  tests/fuzz/fuzz_prekey.c — dm_prekey_decode on arbitrary bytes.
 *
 *  A signed prekey bundle arrives in a PREKEY frame from any connected peer
 *  and decides the key a DM session is opened against. The decoder checks
 *  length, version and the owner's signature; anything else must be an error.
 *  A bundle that decodes must describe its bytes field by field.
 */
#include "fuzz_common.h"

#include "../../proto/dm.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    prekey_t pk;
    int rc = dm_prekey_decode(data, size, &pk);
    if (rc != PARLEY_OK) {
        FUZZ_CHECK(rc < 0);
        return 0;
    }
    //  Layout from proto/dm.h: version | owner | spk_id | spk_pub | created | sig.
    FUZZ_CHECK(size == DM_PREKEY_BUNDLE_LEN);
    FUZZ_CHECK(data[0] == 1);
    FUZZ_CHECK(memcmp(pk.owner, data + 1, 32) == 0);
    FUZZ_CHECK(pk.spk_id == (uint32_t)fuzz_be(data + 33, 4));
    FUZZ_CHECK(memcmp(pk.spk_pub, data + 37, 32) == 0);
    FUZZ_CHECK(pk.created_ms == fuzz_be(data + 69, 8));
    return 0;
}
