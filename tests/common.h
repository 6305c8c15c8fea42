/* Helpers shared by the tests. */
#define _GNU_SOURCE
#ifndef GROVE_TEST_COMMON_H
#define GROVE_TEST_COMMON_H

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <dirent.h>
#include <errno.h>
#include <grove.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* How much longer a bound on elapsed time is under ThreadSanitizer, which
 * runs code 5-15 times slower (such bounds check "did not wait for X",
 * not speed). */
#ifdef GROVE_TEST_TSAN
#define TIME_SLACK 10
#else
#define TIME_SLACK 1
#endif

/* Run fn(arg) under gr_main and require that it returned cleanly. */
static inline void run_main(gr_fn fn, void *arg)
{
    void *result = NULL;
    int rc = gr_main(fn, arg, &result);

    cr_assert_eq(rc, 0, "gr_main failed: %s", strerror(errno));
}

/* run_main(fn, arg), returning how long it took in ms (on the monotonic
 * clock, read around the whole of gr_main). */
static inline int64_t run_main_ms(gr_fn fn, void *arg)
{
    struct timespec a, b;

    clock_gettime(CLOCK_MONOTONIC, &a);
    run_main(fn, arg);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
}

/* How many entries /proc/self/<what> has: "fd" counts the open
 * descriptors, "task" the process's OS threads. */
static inline int proc_self_count(const char *what)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    int n = 0;

    snprintf(path, sizeof path, "/proc/self/%s", what);
    d = opendir(path);
    cr_assert_not_null(d, "%s: %s", path, strerror(errno));
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ------------------------------------------------------------- sockets */

/* A connected, non-blocking Unix stream pair. */
static inline void unix_pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* A TCP listener on 127.0.0.1, on a free port (see gr_local_port). */
static inline int loopback_listen(void)
{
    int l = gr_tcp_listen("127.0.0.1", 0, 0);

    cr_assert_geq(l, 0, "listen: %s", strerror(errno));
    return l;
}

/* A TCP connection to 127.0.0.1:port. */
static inline int loopback_connect(int port)
{
    int c = gr_tcp_connect("127.0.0.1", port, gr_now() + 5000);

    cr_assert_geq(c, 0, "connect: %s", strerror(errno));
    return c;
}

/* A connected TCP pair on loopback: sv[0] the client, sv[1] the server. */
static inline void tcp_pair(int sv[2])
{
    int l = loopback_listen();

    sv[0] = loopback_connect(gr_local_port(l));
    sv[1] = gr_accept(l, NULL, gr_now() + 5000);
    cr_assert_geq(sv[1], 0, "accept: %s", strerror(errno));
    gr_close(l);
}

static inline void close_pair(int sv[2])
{
    gr_close(sv[0]);
    gr_close(sv[1]);
}

/* Assert a call failed with the given errno. */
#define assert_fails(call, err)                                                                    \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long rc_ = (long)(call);                                                                   \
        int e_ = errno;                                                                            \
        cr_assert_eq(rc_, -1, "%s returned %ld, expected -1", #call, rc_);                         \
        cr_assert_eq(e_, (err), "%s: errno %d (%s), expected %d (%s)", #call, e_, strerror(e_),    \
                     (err), strerror(err));                                                        \
    } while (0)

/* Run off the end of the stack, 512 bytes a frame, as a runaway recursion
 * does (the stack-overflow tests). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Winfinite-recursion"
static __attribute__((noinline, unused)) int recurse_forever(volatile char *prev, int depth)
{
    volatile char frame[512];

    frame[0] = (char)depth;
    frame[511] = prev ? prev[0] : 0;
    return recurse_forever(frame, depth + 1) + frame[100];
}
#pragma GCC diagnostic pop

/* LeakSanitizer checks a test's process as it exits, but Criterion has
 * already counted the test as passed by then: the report is printed and
 * nothing fails. A test that must leak nothing asks (leaks_found). The
 * report goes to the stderr the test started with, even when the test
 * redirected stderr. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#include <fcntl.h>
#include <sanitizer/lsan_interface.h>
#include <unistd.h>

__attribute__((constructor)) static void lsan_reports_to_real_stderr(void)
{
    int fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3); /* not for exec'd children */

    if (fd >= 0)
        __sanitizer_set_report_fd((void *)(intptr_t)fd);
}

/* 1 when LeakSanitizer finds memory leaked so far (it prints which). */
static inline int leaks_found(void)
{
    return __lsan_do_recoverable_leak_check() != 0;
}
#else
static inline int leaks_found(void)
{
    return 0;
}
#endif
/* Assert a call returning a pointer failed (NULL) with the given errno. */
#define assert_fails_null(call, err)                                                               \
    do {                                                                                           \
        errno = 0;                                                                                 \
        void *p_ = (void *)(call);                                                                 \
        int e_ = errno;                                                                            \
        cr_assert_null(p_, "%s succeeded, expected NULL", #call);                                  \
        cr_assert_eq(e_, (err), "%s: errno %d (%s), expected %d (%s)", #call, e_, strerror(e_),    \
                     (err), strerror(err));                                                        \
    } while (0)

/* Wait (yielding to the other green threads) until cond holds, within
 * 5 s, or fail the test. */
#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        int64_t until_ = gr_now_update() + 5000;                                                   \
        while (!(cond)) {                                                                          \
            cr_assert_lt(gr_now_update(), until_, "timed out waiting for %s", #cond);              \
            gr_sleep(gr_now() + 1);                                                                \
        }                                                                                          \
    } while (0)

#endif
