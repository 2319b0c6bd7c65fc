/*  tests/node_selftest.c — runs the node layer's class self-tests.
 *  Usage: node_selftest [-v] [NAME]; with no NAME runs all. The class tests
 *  of the engine (tests/node/) run real nodes inside this process.
 */
#include "../discovery/discovery.h"
#include "../discovery/local.h"
#include "../discovery/mdns.h"
#include "../node/api_req.h"
#include "../node/config.h"
#include "../node/home.h"
#include "../node/node.h"
#include "../node/transport.h"
#include "node/testkit.h"
#include "selftest_main.h"

//  mdns first: it points libdbus at a missing bus, which libdbus reads once
//  per process.
static const selftest_t s_tests[] = {
    { "mdns", mdns_test },
    { "local", local_test },
    { "discovery", discovery_test },
    { "api_req", api_req_test },
    { "config", config_test },
    { "home", home_test },
    { "transport", transport_test },
    { "node", node_test },
    { "link", link_test },
    { "session", session_test },
    { "delivery", delivery_test },
    { "hostile", hostile_test },
    { "durability", durability_test },
    { "replica", replica_test },
    { "bundles", bundles_test },
    { "api_server", api_server_test },
    { "api", api_test },
    { "parley", parley_test },
    { "network", network_test },
    { "channel", channel_test },
    { "channel_prop", channel_prop_test },
    { "verifier", verifier_test },
};

int
main(int argc, char **argv)
{
    return selftest_main(argc, argv, s_tests, sizeof s_tests / sizeof s_tests[0]);
}
