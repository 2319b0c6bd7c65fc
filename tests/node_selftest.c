/*  tests/node_selftest.c — runs the node layer's class self-tests.
 *  Usage: node_selftest [-v] [NAME]; with no NAME runs all.
 */
#include "../node/api_req.h"
#include "../node/node.h"
#include "../node/transport.h"
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    void (*fn)(bool verbose);
} s_tests[] = {
    { "api_req", api_req_test },
    { "transport", transport_test },
    { "node", node_test },
};

int
main(int argc, char **argv)
{
    bool verbose = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            verbose = true;
        } else {
            only = argv[i];
        }
    }
    if (sodium_init() < 0) {
        return 1;
    }
    bool found = false;
    for (size_t i = 0; i < sizeof s_tests / sizeof s_tests[0]; i++) {
        if (!only || strcmp(only, s_tests[i].name) == 0) {
            s_tests[i].fn(verbose);
            printf("ok %s\n", s_tests[i].name);
            found = true;
        }
    }
    if (!found) {
        fprintf(stderr, "node_selftest: no test named '%s'\n", only);
        return 2;
    }
    return 0;
}
