/*  tests/fuzz/fuzz_config.c — config_parse on arbitrary bytes.
 *
 *  HOME/config.json is edited by hand; a mistake must be a clear error, never
 *  a crash. Anything accepted holds only seeds that parse again.
 */
#include "fuzz_common.h"

#include "../../node/config.h"
#include "../../proto/limits.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    static config_t c;
    char why[200] = "";
    int rc = config_parse((const char *)data, size, &c, why, sizeof why);
    if (rc != PARLEY_OK) {
        FUZZ_CHECK(rc < 0 && why[0] != '\0');
        return 0;
    }
    for (size_t i = 0; i < c.n_seeds; i++) {
        char ep[PARLEY_ENDPOINT_MAX + 1];
        uint8_t pk[32];
        FUZZ_CHECK(config_seed_parse(c.seeds[i], ep, sizeof ep, pk) == PARLEY_OK);
    }
    return 0;
}
