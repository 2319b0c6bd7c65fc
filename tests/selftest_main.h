/*  tests/selftest_main.h — the shared main() of the per-layer self-test
 *  runners: `NAME_selftest [-v] [TEST]` runs every class test (or one),
 *  printing "ok TEST" for each; exit 2 for an unknown test or bad usage.
 *  A failed check aborts (proto/selftest.h), so any other non-zero exit is
 *  a failure.
 */
#ifndef PARLEY_TESTS_SELFTEST_MAIN_H
#define PARLEY_TESTS_SELFTEST_MAIN_H

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const char *name;         /* what the command line selects it by */
    void (*fn)(bool verbose); /* the class self-test */
} selftest_t;

static inline int
selftest_main(int argc, char **argv, const selftest_t *tests, size_t n)
{
    bool verbose = false;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-v") == 0) {
            verbose = true;
        } else if (only == NULL && argv[i][0] != '-') {
            only = argv[i];
        } else {
            fprintf(stderr, "usage: %s [-v] [test]\n", argv[0]);
            return 2;
        }
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "%s: sodium_init failed\n", argv[0]);
        return 1;
    }
    size_t ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (only == NULL || strcmp(only, tests[i].name) == 0) {
            tests[i].fn(verbose);
            printf("ok %s\n", tests[i].name);
            fflush(stdout);
            ran++;
        }
    }
    if (ran == 0) {
        fprintf(stderr, "%s: no test named '%s'\n", argv[0], only);
        return 2;
    }
    return 0;
}

#endif
