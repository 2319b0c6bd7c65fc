/*  proto/selftest.h — the check macro every class self-test uses.
 *
 *  Self-tests are test code: a failed check prints where and aborts the
 *  test process, which the runner reports as a failure. Never used by code
 *  that handles input.
 */
#ifndef PARLEY_PROTO_SELFTEST_H
#define PARLEY_PROTO_SELFTEST_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
