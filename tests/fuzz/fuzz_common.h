/*  tests/fuzz/fuzz_common.h — shared helpers of the libFuzzer targets.
 *
 *  Each target is one file compiled with proto/[a-z]*.c (and node/api_req.c) under
 *  -fsanitize=fuzzer,address,undefined; see `make fuzz-build`. A target feeds
 *  arbitrary bytes to one decoder and then checks invariants that must hold
 *  for any input the decoder accepts. A broken invariant aborts, which
 *  libFuzzer reports as a crash together with the input that caused it.
 */
#ifndef PARLEY_FUZZ_COMMON_H
#define PARLEY_FUZZ_COMMON_H

#include "../../proto/bytes.h"
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*  A fixed "now" for time checks (2026-09-21), so that a run is a pure
 *  function of its input and a crash reproduces. The seed corpus
 *  (gen_corpus.c) stamps its envelopes just before it. */
#define FUZZ_NOW_MS 1790000000000ull

/*  The network secrets fuzz_txt opens blinded records with: 32 bytes of this
 *  value, and of this value + 1. gen_corpus.c seals its seeds under them. */
#define FUZZ_MDNS_SECRET_1 0x6b

/*  sodium_init() once per process: libFuzzer calls the target millions of
 *  times and the decoders need libsodium's CPU dispatch set up. */
static inline void
fuzz_init(void)
{
    static int done;
    if (!done) {
        if (sodium_init() < 0) {
            abort();
        }
        done = 1;
    }
}

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/*  The big-endian integer of n (4 or 8) bytes at p, read with proto's
 *  reader, for checking a decoder's fields against its bytes. */
static inline uint64_t
fuzz_be(const uint8_t *p, size_t n)
{
    bytes_reader_t r;
    bytes_reader_init(&r, p, n);
    return n == 4 ? bytes_get_u32(&r) : bytes_get_u64(&r);
}

/*  libFuzzer hands each input in a heap block of exactly `size` bytes, so
 *  ASan flags any read past the end: targets pass `data` straight through. */

#endif
