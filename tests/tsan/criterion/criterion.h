/* The part of Criterion's API grove's thread tests use, for the
 * ThreadSanitizer build, where Criterion itself cannot run: its sandbox
 * maps its shared arena at fixed addresses inside TSan's reserved ranges
 * and aborts ("Could not initialize inheritable arena", Criterion issue
 * 274). The tests compile unchanged against this header; runner.c runs
 * each in a forked child with its time limit, as Criterion does. */
#ifndef GROVE_TSAN_CRITERION_H
#define GROVE_TSAN_CRITERION_H

#include <stddef.h>
#include <string.h>

struct cr_test {
    const char *suite, *name;
    void (*fn)(void);
    void (*init)(void);
    void (*fini)(void);
    double timeout; /* seconds; 0: none */
    struct cr_test *next;
};

void cr_register(struct cr_test *t);
void cr_fail_at(const char *file, int line, const char *what, const char *fmt, ...)
    __attribute__((noreturn)); /* fmt may be "": no format check */

#define Test(S, N, ...)                                                                            \
    static void S##_##N(void);                                                                     \
    static struct cr_test S##_##N##_test = {.suite = #S, .name = #N, .fn = S##_##N, __VA_ARGS__};  \
    __attribute__((constructor)) static void S##_##N##_register(void)                              \
    {                                                                                              \
        cr_register(&S##_##N##_test);                                                              \
    }                                                                                              \
    static void S##_##N(void)

/* An optional printf-style message follows the operands, as in Criterion. */
#define cr_assert(cond, ...)                                                                       \
    ((cond) ? (void)0 : cr_fail_at(__FILE__, __LINE__, #cond, "" __VA_ARGS__))
#define cr_assert_not(cond, ...) cr_assert(!(cond), __VA_ARGS__)
#define cr_assert_eq(a, b, ...) cr_assert((a) == (b), __VA_ARGS__)
#define cr_assert_neq(a, b, ...) cr_assert((a) != (b), __VA_ARGS__)
#define cr_assert_lt(a, b, ...) cr_assert((a) < (b), __VA_ARGS__)
#define cr_assert_leq(a, b, ...) cr_assert((a) <= (b), __VA_ARGS__)
#define cr_assert_gt(a, b, ...) cr_assert((a) > (b), __VA_ARGS__)
#define cr_assert_geq(a, b, ...) cr_assert((a) >= (b), __VA_ARGS__)
#define cr_assert_null(p, ...) cr_assert((p) == NULL, __VA_ARGS__)
#define cr_assert_not_null(p, ...) cr_assert((p) != NULL, __VA_ARGS__)
#define cr_assert_str_eq(a, b, ...) cr_assert(strcmp((a), (b)) == 0, __VA_ARGS__)
#define cr_assert_fail(...) cr_fail_at(__FILE__, __LINE__, "failure", "" __VA_ARGS__)
#define cr_expect_eq cr_assert_eq
#define cr_log_warn(...) ((void)0)

#endif
