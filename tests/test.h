/* A minimal test harness: each tests/test_*.c is one executable; a failed CHECK prints the
 * location and the test exits non-zero at the end. */
#ifndef CV_TEST_H
#define CV_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "cvision/cvision.h"

static int test_failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

/* Checks that a cvision call succeeds, printing the context's message if not. */
#define CHECK_OK(ctx, expr)                                                                        \
    do {                                                                                           \
        cv_status s_ = (expr);                                                                     \
        if (s_ != CV_OK) {                                                                         \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,                   \
                    cv_ctx_error(ctx));                                                            \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                      \
    do {                                                                                           \
        double a_ = (a), b_ = (b);                                                                 \
        if (!(fabs(a_ - b_) <= (tol))) {                                                           \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s = %.9g, %s = %.9g\n", __FILE__,          \
                    __LINE__, #a, a_, #b, b_);                                                     \
            test_failures++;                                                                       \
        }                                                                                          \
    } while (0)

#define RUN(test)                                                                                  \
    do {                                                                                           \
        int before_ = test_failures;                                                               \
        test();                                                                                    \
        fprintf(stderr, "%s %s\n", test_failures == before_ ? "ok  " : "FAIL", #test);             \
    } while (0)

#define TEST_EXIT() return test_failures ? 1 : 0

#endif
