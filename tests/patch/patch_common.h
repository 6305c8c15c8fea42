/* What the patch tests share: the heartbeat that fails a test on any stall
 * of the hub, the peers' addresses (started by servers.sh), and small
 * helpers. Every test program is built three ways (plain, -O2
 * -D_FORTIFY_SOURCE=2, -D_FILE_OFFSET_BITS=64) and linked either with
 * -lgrove-patch or with libgrove.so and run under LD_PRELOAD: the patch
 * API is declared weak so the second way links. */
#ifndef GROVE_PATCH_TEST_COMMON_H
#define GROVE_PATCH_TEST_COMMON_H

#include "../common.h"

#include <fcntl.h>
#include <grove/patch.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#pragma weak gr_patch_parse
#pragma weak gr_patch_set
#pragma weak gr_patch_families
#pragma weak gr_patch_original
#pragma weak gr_patch_cooperative

/* The patch is there (linked, or preloaded). */
static inline void require_patch(void)
{
    cr_assert_not_null((void *)gr_patch_original, "libgrove-patch.so is not loaded");
}

/* A time target of the issue (curl, libpq, TLS: "under 1.5 s"), held in
 * the release builds; the sanitizer build, where grove and the servers it
 * runs are instrumented, checks memory and is given twice as long. */
#if defined(__SANITIZE_ADDRESS__)
#define TIME_TARGET(ms) (2 * (ms))
#else
#define TIME_TARGET(ms) (ms)
#endif

/* The monotonic clock in ms, read now (not the hub's cached time). */
static inline int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------ heartbeat
 * Fails a test whose hub stalls for more than HB_LIMIT_MS, in either way a
 * hub can stall, and only those (a machine busy with other work delays the
 * hub too, but that is neither):
 *   - blocked: a watchdog OS thread samples /proc/self/task/TID/syscall
 *     every 2 ms and times how long the hub's thread sleeps in one system
 *     call other than the hub's own epoll wait;
 *   - computing: a green thread wakes every 5 ms and measures the hub
 *     thread's CPU time between two wake-ups when no other green thread
 *     was switched to in between (one green thread that computed, or one
 *     system call that worked in the kernel, for that long; many threads
 *     each computing a little, such as fifty TLS handshakes, only make the
 *     hub look at its timers later). */
#define HB_PERIOD_MS 5
#define HB_LIMIT_MS 20

typedef struct heartbeat {
    gr_t g;
    pid_t tid;
    pthread_t wd;
    volatile int stop;
    int64_t worst_cpu_ns;   /* the most CPU time between two beats */
    int64_t worst_block_ns; /* the longest sleep in one system call */
    char worst_call[96];
    int64_t ticks;
    int blocking_only; /* the caller computes on purpose: count waits only */
    int spawns;        /* the caller spawns: fork and posix_spawn's clone wait for the
                          child's copy or exec (not patched: docs/patching.md) */
} heartbeat;

static inline int64_t thread_cpu_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void *hb_loop(void *arg)
{
    heartbeat *hb = arg;

    while (!hb->stop) {
        int64_t c0 = thread_cpu_ns(), used;
        gr_stats s0, s1;

        gr_stats_get(&s0);
        if (gr_sleep(gr_now_update() + HB_PERIOD_MS) != 0)
            break;
        used = thread_cpu_ns() - c0;
        gr_stats_get(&s1);
        /* Ours back and at most one other: nobody else could run. */
        if (s1.switches - s0.switches <= 2 && used > hb->worst_cpu_ns)
            hb->worst_cpu_ns = used;
        hb->ticks++;
    }
    return NULL;
}

/* The hub's own waits: epoll_wait, epoll_pwait, epoll_pwait2. */
static inline int hb_hub_wait(long nr)
{
    return nr == SYS_epoll_wait || nr == SYS_epoll_pwait || nr == SYS_epoll_pwait2;
}

/* The calls that make a process. */
static inline int hb_spawn_call(long nr)
{
    return nr == SYS_clone || nr == SYS_clone3 || nr == SYS_vfork || nr == SYS_fork;
}

static inline void *hb_watchdog(void *arg)
{
    heartbeat *hb = arg;
    char path[64], line[96], cur[96] = "";
    int64_t since = 0;

    snprintf(path, sizeof path, "/proc/self/task/%d/syscall", (int)hb->tid);
    while (!hb->stop) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = fd >= 0 ? read(fd, line, sizeof line - 1) : -1;
        long nr;

        if (fd >= 0)
            close(fd);
        line[n > 0 ? n : 0] = 0;
        /* "running", or the number and arguments of the call it sleeps in
         * (the same line twice: the same call). */
        if (n > 0 && sscanf(line, "%ld", &nr) == 1 && nr >= 0 && !hb_hub_wait(nr) &&
            !(hb->spawns && hb_spawn_call(nr))) {
            if (!strcmp(line, cur)) {
                int64_t d = now_ns() - since;

                if (d > hb->worst_block_ns) {
                    hb->worst_block_ns = d;
                    snprintf(hb->worst_call, sizeof hb->worst_call, "%s", line);
                }
            } else {
                snprintf(cur, sizeof cur, "%s", line);
                since = now_ns();
            }
        } else {
            cur[0] = 0;
        }
        usleep(2000);
    }
    return NULL;
}

/* spawns: see heartbeat.spawns. */
static inline void hb_start_opts(heartbeat *hb, int spawns)
{
    gr_opts o = {.name = "heartbeat"};

    memset(hb, 0, sizeof *hb);
    hb->spawns = spawns;
    hb->tid = (pid_t)syscall(SYS_gettid);
    cr_assert_eq(pthread_create(&hb->wd, NULL, hb_watchdog, hb), 0);
    hb->g = gr_spawn_opts(hb_loop, hb, &o);
    cr_assert_gt(hb->g, 0);
}

static inline void hb_start(heartbeat *hb)
{
    hb_start_opts(hb, 0);
}

/* Stop the heartbeat and fail if the hub ever stalled. */
static inline void hb_check(heartbeat *hb)
{
    for (int i = 0; i < 100 && !hb->ticks; i++)
        gr_sleep(gr_now_update() + 1);
    hb->stop = 1;
    gr_kill(hb->g);
    gr_join(hb->g, NULL, -1);
    pthread_join(hb->wd, NULL);
    cr_assert_lt(hb->worst_block_ns, (int64_t)HB_LIMIT_MS * 1000000,
                 "the hub's thread slept %.1f ms in one system call (limit %d ms): %s",
                 hb->worst_block_ns / 1e6, HB_LIMIT_MS, hb->worst_call);
    cr_assert(hb->blocking_only || hb->worst_cpu_ns < (int64_t)HB_LIMIT_MS * 1000000,
              "the hub computed for %.1f ms without a beat (limit %d ms)", hb->worst_cpu_ns / 1e6,
              HB_LIMIT_MS);
    cr_assert_gt(hb->ticks, 0, "the heartbeat never ran");
}

/* Fill and compare big buffers in slices with a pause between them (a
 * gr_yield would not do: the hub looks at its timers only every so many
 * switches), so the test's own work never looks like a stall of the hub. */
#define SLICE (1024 * 1024)

static inline void fill_pattern(unsigned char *p, size_t len, unsigned seed)
{
    for (size_t off = 0; off < len; off += SLICE) {
        size_t end = off + SLICE < len ? off + SLICE : len;

        for (size_t i = off; i < end; i++)
            p[i] = (unsigned char)(i * 31 + seed + (i >> 11));
        gr_sleep(gr_now_update() + 1);
    }
}

static inline int same_bytes(const unsigned char *a, const unsigned char *b, size_t len)
{
    for (size_t off = 0; off < len; off += SLICE) {
        size_t n = len - off < SLICE ? len - off : SLICE;

        if (memcmp(a + off, b + off, n))
            return 0;
        gr_sleep(gr_now_update() + 1);
    }
    return 1;
}

/* ------------------------------------------------------------ the peers */

/* An environment variable servers.sh set, or NULL. Outside `make test` a
 * missing peer skips the test with a note; under it (GROVE_MAKE_TEST=1,
 * everything is installed) it fails. */
static inline const char *peer_env(const char *name, const char *what)
{
    const char *v = getenv(name);

    if (v && *v)
        return v;
    if (getenv("GROVE_MAKE_TEST"))
        cr_assert_fail("%s is not set: %s did not start (see tests/patch/servers.sh)", name, what);
    cr_skip_test("%s is not running here (%s unset); skipped", what, name);
    return NULL;
}

/* Make room for many descriptors (the soft limit up to the hard one). */
static inline void raise_fd_limit(rlim_t want)
{
    struct rlimit r;

    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &r), 0);
    if (r.rlim_cur < want) {
        r.rlim_cur = r.rlim_max < want ? r.rlim_max : want;
        cr_assert_eq(setrlimit(RLIMIT_NOFILE, &r), 0);
    }
}

/* Fork a child that runs fn(arg) and dies with us. Returns its pid. */
static inline pid_t fork_child(void (*fn)(void *), void *arg)
{
    pid_t pid = fork();

    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fn(arg);
        _exit(0);
    }
    return pid;
}

static inline void kill_child(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* A TCP listener on 127.0.0.1 made with plain POSIX calls; *port gets its
 * port. */
static inline int posix_listen(int *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int one = 1, fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(listen(fd, 4096), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* A blocking TCP connection to 127.0.0.1:port with plain POSIX calls. */
static inline int posix_connect(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect: %s", strerror(errno));
    return fd;
}

#endif
