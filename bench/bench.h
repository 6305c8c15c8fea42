/* What the benchmarks share: the clock, medians, the common options and
 * one-line JSON output. Header-only, since every bench/<area>/<name>.c is
 * a program of its own (see CMakeLists.txt). */
#ifndef GROVE_BENCH_H
#define GROVE_BENCH_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The most runs a benchmark takes the median of (--runs). */
#define BENCH_MAX_RUNS 21

/* The monotonic clock in ns, as a double: benchmarks divide it anyway. */
static inline double bench_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

/* The median of n figures (sorts v). */
static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static inline __attribute__((noreturn)) void bench_die(const char *what)
{
    perror(what);
    exit(1);
}

/* Options every benchmark takes: --json, and --runs N where it repeats
 * its figures (runs NULL: it does not). Returns 1 when argv[*i] was one
 * (*i then moved past its value), 0 for an option of the benchmark's own. */
static inline int bench_option(int argc, char **argv, int *i, int *json, int *runs)
{
    if (!strcmp(argv[*i], "--json")) {
        *json = 1;
        return 1;
    }
    if (runs && !strcmp(argv[*i], "--runs") && *i + 1 < argc) {
        *runs = atoi(argv[++*i]);
        return 1;
    }
    return 0;
}

/* 0 if runs is within 1..BENCH_MAX_RUNS, else -1 after saying so. */
static inline int bench_check_runs(const char *name, int runs)
{
    if (runs >= 1 && runs <= BENCH_MAX_RUNS)
        return 0;
    fprintf(stderr, "%s: --runs must be 1..%d\n", name, BENCH_MAX_RUNS);
    return -1;
}

/* For a benchmark whose only options are the common ones: parse them.
 * Returns 0, or 2 (the exit status) after printing the usage. */
static inline int bench_common_args(int argc, char **argv, int *json, int *runs)
{
    for (int i = 1; i < argc; i++) {
        if (!bench_option(argc, argv, &i, json, runs)) {
            fprintf(stderr, "usage: %s [--json] [--runs N]\n", argv[0]);
            return 2;
        }
    }
    return bench_check_runs(argv[0], *runs) == 0 ? 0 : 2;
}

/* One JSON object on one line, its fields printed as they come:
 *   bench_json_begin(); bench_json("switch_ns", "%.2f", s); bench_json_end(); */
static int bench_json_fields;

static inline void bench_json_begin(void)
{
    bench_json_fields = 0;
    putchar('{');
}

/* A field: name, then the value as printf's fmt makes it (numbers, true,
 * false: fmt is not quoted). */
static inline __attribute__((format(printf, 2, 3))) void bench_json(const char *name,
                                                                    const char *fmt, ...)
{
    va_list ap;

    printf("%s\"%s\": ", bench_json_fields++ ? ", " : "", name);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
}

static inline void bench_json_end(void)
{
    printf("}\n");
}

#endif
