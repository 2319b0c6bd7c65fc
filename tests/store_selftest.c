/*  tests/store_selftest.c — runs the store layer's self-tests.
 *  Links only libstore and libproto: the layering is checked at link time.
 */
#include "../store/store.h"
#include "selftest_main.h"

static const selftest_t s_tests[] = {
    { "store", store_test },
    { "store_log", store_log_test },
    { "store_msgs", store_msgs_test },
    { "store_peers", store_peers_test },
    { "store_keys", store_keys_test },
    { "store_sync", store_sync_test },
    { "store_net", store_net_test },
    { "store_chan", store_chan_test },
    { "store_recover", store_recover_test },
};

int
main(int argc, char **argv)
{
    return selftest_main(argc, argv, s_tests, sizeof s_tests / sizeof s_tests[0]);
}
