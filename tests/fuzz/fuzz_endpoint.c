/*  tests/fuzz/fuzz_endpoint.c — endpoint_file_decode and endpoint_valid on
 *  arbitrary bytes.
 *
 *  Host-local endpoint files are written by any process of the same user; a
 *  node reads every one in the runtime directory. A file that decodes must
 *  name a dialable endpoint and a positive PID, and re-encode to itself.
 */
#include "fuzz_common.h"

#include "../../proto/endpoint.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    (void)endpoint_valid((const char *)data, size);
    char ep[PARLEY_ENDPOINT_MAX + 1];
    long pid = 0;
    int rc = endpoint_file_decode(data, size, ep, sizeof ep, &pid);
    if (rc != PARLEY_OK) {
        FUZZ_CHECK(rc < 0);
        return 0;
    }
    FUZZ_CHECK(endpoint_valid(ep, strlen(ep)) && pid > 0);
    char again[ENDPOINT_FILE_MAX];
    size_t len = 0;
    FUZZ_CHECK(endpoint_file_encode(ep, pid, again, sizeof again, &len) == PARLEY_OK);
    FUZZ_CHECK(len == size && memcmp(again, data, size) == 0);
    return 0;
}
