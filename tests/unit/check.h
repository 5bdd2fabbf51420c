/*
 * check: the unit tests' whole framework.
 *
 * A test program is a main() calling CHECK* macros; each failure prints the
 * file, line and what differed, and the program's exit status is the number
 * of failures (capped), so ctest reads the verdict from it.
 */
#ifndef RHTMX_CHECK_H
#define RHTMX_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failures;

#define CHECK_AT(line, cond, ...)                                                                  \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            check_failures++;                                                                      \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, (line), #cond);                 \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

#define CHECK(cond) CHECK_AT(__LINE__, cond, "%s", "")
#define CHECK_INT(got, want)                                                                       \
    do {                                                                                           \
        long long g_ = (got), w_ = (want);                                                         \
        CHECK_AT(__LINE__, g_ == w_, "got %lld, want %lld", g_, w_);                               \
    } while (0)
#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        CHECK_AT(__LINE__, g_ != NULL && strcmp(g_, w_) == 0, "got \"%s\", want \"%s\"",           \
                 g_ ? g_ : "(null)", w_);                                                          \
    } while (0)
#define CHECK_CONTAINS(hay, needle)                                                                \
    do {                                                                                           \
        const char *h_ = (hay), *n_ = (needle);                                                    \
        CHECK_AT(__LINE__, h_ != NULL && strstr(h_, n_) != NULL, "\"%s\" does not contain \"%s\"", \
                 h_ ? h_ : "(null)", n_);                                                          \
    } while (0)

static int
check_done(const char *name)
{
    if (check_failures == 0)
        printf("%s: all checks passed\n", name);
    else
        printf("%s: %d check(s) failed\n", name, check_failures);
    return check_failures > 100 ? 100 : check_failures;
}

#endif
