/*  tests/store_selftest.c — runs the store layer's self-tests.
 *
 *    store_selftest            run them all, one "ok NAME" line each
 *    store_selftest -v         the same, saying what each test does
 *    store_selftest NAME       run one (exit 2 if there is no such test)
 *
 *  Links only libstore and libproto: the layering is checked at link time.
 *  A failed check aborts the process (proto/selftest.h), so a non-zero exit
 *  status is a failure.
 */
#include "../store/store.h"
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;         /* what the command line selects it by */
    void (*fn)(bool verbose); /* the class self-test */
} selftest_t;

static const selftest_t s_tests[] = {
    { "store", store_test },
};

int
main(int argc, char **argv)
{
    bool verbose = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            verbose = true;
        } else if (only == NULL) {
            only = argv[i];
        } else {
            fprintf(stderr, "usage: %s [-v] [test]\n", argv[0]);
            return 2;
        }
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "store_selftest: sodium_init failed\n");
        return 1;
    }
    size_t ran = 0;
    for (size_t i = 0; i < sizeof s_tests / sizeof s_tests[0]; i++) {
        if (only != NULL && strcmp(only, s_tests[i].name) != 0) {
            continue;
        }
        s_tests[i].fn(verbose);
        printf("ok %s\n", s_tests[i].name);
        fflush(stdout);
        ran++;
    }
    if (ran == 0) {
        fprintf(stderr, "store_selftest: no test named %s\n", only);
        return 2;
    }
    return 0;
}
