/* grove-fork-bench: what a fork costs with grove, against a bare fork of
 * the same process.
 *
 *   grove-fork-bench [--json] [--runs N] [--threads T] [--fds F]
 *
 * The process holds T green threads parked on timers and F registered fds
 * (socketpair ends a green thread waits on), as a server would. Each
 * figure is the time from the fork to the moment the child has run its
 * first line (it writes a byte to a pipe the parent waits on), median of
 * N runs (default 5) of 200 forks each. "bare" is fork() called from an
 * OS thread of the same process that has no hub, so grove's
 * pthread_atfork child handler finds nothing to rebuild: the same address
 * space, glibc's own fork work, nothing of grove's. "grove" is fork() from
 * the green thread, whose child gets a working hub (src/core/fork.c). The
 * difference is grove's cost. */
#define _GNU_SOURCE
#include "../bench.h"

#include <grove.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { FORKS = 200 };

static int threads = 1000, nfds = 100, runs = 5;

static void *parked(void *arg)
{
    (void)arg;
    gr_sleep(-1);
    return NULL;
}

static void *reader(void *arg)
{
    char c;

    gr_read((int)(intptr_t)arg, &c, 1, -1);
    return NULL;
}

/* One fork: ns from the call to the child's first byte. */
static double one_fork(int bare)
{
    int p[2];
    double t0;
    pid_t pid;
    char c;

    if (pipe2(p, O_CLOEXEC) != 0)
        bench_die("pipe");
    t0 = bench_now_ns();
    (void)bare;
    pid = fork();
    if (pid < 0)
        bench_die("fork");
    if (pid == 0) {
        if (write(p[1], "x", 1) != 1)
            _exit(1);
        _exit(0);
    }
    if (read(p[0], &c, 1) != 1)
        bench_die("read");
    t0 = bench_now_ns() - t0;
    waitpid(pid, NULL, 0);
    close(p[0]);
    close(p[1]);
    return t0;
}

static double median_of_runs_here(int bare)
{
    double v[BENCH_MAX_RUNS];

    for (int r = 0; r < runs; r++) {
        double f[FORKS];

        for (int i = 0; i < FORKS; i++)
            f[i] = one_fork(bare);
        v[r] = bench_median(f, FORKS);
    }
    return bench_median(v, runs);
}

static void *bare_thread(void *arg)
{
    *(double *)arg = median_of_runs_here(1);
    return NULL;
}

/* bare: from a plain pthread, which has no hub; grove: from here. */
static double median_of_runs(int bare)
{
    pthread_t t;
    double r;

    if (!bare)
        return median_of_runs_here(0);
    if (pthread_create(&t, NULL, bare_thread, &r) != 0 || pthread_join(t, NULL) != 0)
        bench_die("pthread");
    return r;
}

static void *run(void *arg)
{
    int json = *(int *)arg, (*sv)[2] = calloc((size_t)nfds, sizeof *sv);
    double bare, grove;

    for (int i = 0; i < threads; i++)
        gr_spawn_opts(parked, NULL, &(gr_opts){.flags = GR_DETACHED});
    for (int i = 0; i < nfds; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv[i]) != 0)
            bench_die("socketpair");
        gr_spawn_opts(reader, (void *)(intptr_t)sv[i][1], &(gr_opts){.flags = GR_DETACHED});
    }
    gr_sleep(gr_now_update() + 20); /* every one parked, every fd registered */
    /* Interleaved, so drift hits both alike. */
    bare = median_of_runs(1);
    grove = median_of_runs(0);
    bare = (bare + median_of_runs(1)) / 2;
    if (json) {
        bench_json_begin();
        bench_json("threads", "%d", threads);
        bench_json("fds", "%d", nfds);
        bench_json("bare_fork_us", "%.1f", bare / 1e3);
        bench_json("grove_fork_us", "%.1f", grove / 1e3);
        bench_json("grove_extra_us", "%.1f", (grove - bare) / 1e3);
        bench_json_end();
    } else {
        printf("grove-fork-bench: %d green threads, %d registered fds, medians of %d x %d forks\n",
               threads, nfds, runs, FORKS);
        printf("  fork to the child's first line: bare %.1f us, grove %.1f us, grove's extra "
               "%.1f us\n",
               bare / 1e3, grove / 1e3, (grove - bare) / 1e3);
    }
    for (int i = 0; i < nfds; i++) {
        close(sv[i][0]);
        gr_close(sv[i][1]);
    }
    exit(0);
}

int main(int argc, char **argv)
{
    int json = 0;

    for (int i = 1; i < argc; i++) {
        if (bench_option(argc, argv, &i, &json, &runs))
            continue;
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--fds") && i + 1 < argc)
            nfds = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--json] [--runs N] [--threads T] [--fds F]\n", argv[0]);
            return 2;
        }
    }
    if (bench_check_runs(argv[0], runs) != 0 || threads < 0 || nfds < 0)
        return 2;
    return gr_main(run, &json, NULL);
}
