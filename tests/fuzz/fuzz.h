/*
 * fuzz: what every fuzz target shares.
 *
 * A target defines LLVMFuzzerTestOneInput (and may define fuzz_init, run
 * once before the first input). Built with clang's -fsanitize=fuzzer it is a
 * libFuzzer binary; otherwise replay.c supplies a main() that feeds it every
 * file of the corpus folders named on its command line, so the corpora run as
 * ordinary tests under the sanitizers of the build.
 *
 * A target checks invariants with FUZZ_ASSERT, which aborts (a finding), so a
 * wrong answer counts as much as a crash.
 */
#ifndef RHTMX_FUZZ_H
#define RHTMX_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
