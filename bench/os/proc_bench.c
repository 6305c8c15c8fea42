/* grove-proc-bench: what a child process costs with grove, against the
 * bare calls measured in the same run.
 *
 *   grove-proc-bench [--json] [--runs N] [--spawns S] [--rss MiB] [--pipe-mb M]
 *
 * The process first allocates and touches --rss MiB (default 16), as a
 * server's heap would be. Then, each figure the median of N runs
 * (default 5), the runs interleaved so that drift hits all alike:
 *
 *   spawn+wait of /bin/true, per child, mean of S (default 200):
 *     bare   posix_spawn + waitpid, nothing else
 *     grove  gr_proc_spawn + gr_proc_wait (pidfd, empty mask, default
 *            dispositions, every other fd closed) from a green thread
 *     fork   fork + execv + waitpid, the classic way, for reference: its
 *            cost grows with the parent's page tables
 *   M MB (default 100) through a pipe from a child that writes 64 KiB
 *   chunks (this program again, as --writer):
 *     blocking  read(2) on a blocking pipe, 64 KiB at a time
 *     grove     gr_read on gr_proc_fd(p, 1), 64 KiB at a time
 *   in MB/s, and in the CPU time of the reading thread (which a loaded
 *   machine's scheduling disturbs less than the elapsed time). */
#define _GNU_SOURCE
#include "../bench.h"

#include <grove.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define CHUNK (64 << 10)

static int runs = 5, spawns = 200, rss_mib = 16, pipe_mb = 100;
static const char *self_exe;
static double reader_cpu_ms; /* of the last pipe run: this thread's CPU time */

/* This thread's CPU time (user + system) in ms. */
static double thread_cpu_ms(void)
{
    struct rusage ru;

    getrusage(RUSAGE_THREAD, &ru);
    return ru.ru_utime.tv_sec * 1e3 + ru.ru_utime.tv_usec / 1e3 + ru.ru_stime.tv_sec * 1e3 +
           ru.ru_stime.tv_usec / 1e3;
}

/* ---------------------------------------------------------- spawn+wait */

static const char *true_argv[] = {"/bin/true", NULL};

static double bare_spawn(void)
{
    double t0 = bench_now_ns();

    for (int i = 0; i < spawns; i++) {
        pid_t pid;
        int st;

        if (posix_spawn(&pid, "/bin/true", NULL, NULL, (char *const *)true_argv, environ) != 0)
            bench_die("posix_spawn");
        if (waitpid(pid, &st, 0) != pid || st != 0)
            bench_die("waitpid");
    }
    return (bench_now_ns() - t0) / spawns;
}

static double grove_spawn(void)
{
    double t0 = bench_now_ns();

    for (int i = 0; i < spawns; i++) {
        gr_proc *p = gr_proc_spawn(true_argv, NULL);
        int st;

        if (!p || gr_proc_wait(p, &st, -1) != 0 || st != 0)
            bench_die("gr_proc");
        gr_proc_free(p);
    }
    return (bench_now_ns() - t0) / spawns;
}

static double fork_spawn(void)
{
    double t0 = bench_now_ns();

    for (int i = 0; i < spawns; i++) {
        pid_t pid = fork();
        int st;

        if (pid == 0) {
            execv("/bin/true", (char *const *)true_argv);
            _exit(127);
        }
        if (pid < 0 || waitpid(pid, &st, 0) != pid || st != 0)
            bench_die("fork");
    }
    return (bench_now_ns() - t0) / spawns;
}

/* ---------------------------------------------------------------- pipe */

/* The writer child: n bytes to stdout in CHUNK writes. */
static int writer(long long n)
{
    static char buf[CHUNK];

    while (n > 0) {
        ssize_t w = write(1, buf, n < CHUNK ? (size_t)n : CHUNK);

        if (w <= 0)
            return 1;
        n -= w;
    }
    return 0;
}

static const char **writer_argv(char *size)
{
    static const char *argv[4];

    snprintf(size, 32, "%lld", (long long)pipe_mb << 20);
    argv[0] = self_exe;
    argv[1] = "--writer";
    argv[2] = size;
    argv[3] = NULL;
    return argv;
}

/* MB/s of a blocking read loop. */
static double blocking_pipe(void)
{
    static char buf[CHUNK];
    char size[32];
    const char **argv = writer_argv(size);
    posix_spawn_file_actions_t fa;
    long long got = 0;
    double t0;
    int pp[2], st;
    pid_t pid;
    ssize_t n;

    if (pipe2(pp, O_CLOEXEC) != 0)
        bench_die("pipe");
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pp[1], 1);
    reader_cpu_ms = thread_cpu_ms();
    t0 = bench_now_ns();
    if (posix_spawn(&pid, self_exe, &fa, NULL, (char *const *)argv, environ) != 0)
        bench_die("posix_spawn");
    close(pp[1]);
    while ((n = read(pp[0], buf, sizeof buf)) > 0)
        got += n;
    t0 = bench_now_ns() - t0;
    reader_cpu_ms = thread_cpu_ms() - reader_cpu_ms;
    waitpid(pid, &st, 0);
    close(pp[0]);
    posix_spawn_file_actions_destroy(&fa);
    if (got != (long long)pipe_mb << 20 || st != 0)
        bench_die("blocking pipe");
    return got / (t0 / 1e9) / 1e6;
}

static double grove_pipe(void)
{
    static char buf[CHUNK];
    char size[32];
    gr_proc_opts o = {.stdio = {[1] = {GR_STDIO_PIPE, 0}}};
    long long got = 0;
    double cpu = thread_cpu_ms(), t0 = bench_now_ns();
    gr_proc *p = gr_proc_spawn(writer_argv(size), &o);
    ssize_t n;
    int st;

    if (!p)
        bench_die("gr_proc_spawn");
    while ((n = gr_read(gr_proc_fd(p, 1), buf, sizeof buf, -1)) > 0)
        got += n;
    t0 = bench_now_ns() - t0;
    reader_cpu_ms = thread_cpu_ms() - cpu;
    if (gr_proc_wait(p, &st, -1) != 0 || st != 0 || got != (long long)pipe_mb << 20)
        bench_die("grove pipe");
    gr_proc_free(p);
    return got / (t0 / 1e9) / 1e6;
}

/* ----------------------------------------------------------------- run */

/* Memory a server would have: allocated and touched, so its page tables
 * are there for fork to copy. */
static void grow_rss(void)
{
    size_t len = (size_t)rss_mib << 20;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (m == MAP_FAILED)
        bench_die("mmap");
    for (size_t i = 0; i < len; i += 4096)
        m[i] = 1;
}

static void *run(void *arg)
{
    int json = *(int *)arg;
    double b[BENCH_MAX_RUNS], g[BENCH_MAX_RUNS], f[BENCH_MAX_RUNS];
    double pb[BENCH_MAX_RUNS], pg[BENCH_MAX_RUNS], cb[BENCH_MAX_RUNS], cg[BENCH_MAX_RUNS];
    double bare, grove, frk, pblock, pgrove, cblock, cgrove;

    grow_rss();
    for (int r = 0; r < runs; r++) {
        b[r] = bare_spawn();
        g[r] = grove_spawn();
        f[r] = fork_spawn();
        pb[r] = blocking_pipe();
        cb[r] = reader_cpu_ms;
        pg[r] = grove_pipe();
        cg[r] = reader_cpu_ms;
    }
    bare = bench_median(b, runs) / 1e3;
    grove = bench_median(g, runs) / 1e3;
    frk = bench_median(f, runs) / 1e3;
    pblock = bench_median(pb, runs);
    pgrove = bench_median(pg, runs);
    cblock = bench_median(cb, runs);
    cgrove = bench_median(cg, runs);
    if (json) {
        bench_json_begin();
        bench_json("rss_mib", "%d", rss_mib);
        bench_json("bare_spawn_us", "%.1f", bare);
        bench_json("grove_spawn_us", "%.1f", grove);
        bench_json("fork_exec_us", "%.1f", frk);
        bench_json("grove_vs_bare", "%.2f", grove / bare);
        bench_json("pipe_mb", "%d", pipe_mb);
        bench_json("blocking_pipe_mbps", "%.0f", pblock);
        bench_json("grove_pipe_mbps", "%.0f", pgrove);
        bench_json("grove_vs_blocking_pipe", "%.2f", pgrove / pblock);
        bench_json("blocking_reader_cpu_ms", "%.0f", cblock);
        bench_json("grove_reader_cpu_ms", "%.0f", cgrove);
        bench_json_end();
    } else {
        printf("grove-proc-bench: a %d MiB parent, medians of %d runs\n", rss_mib, runs);
        printf("  spawn+wait /bin/true: bare posix_spawn %.1f us, grove %.1f us (%.2fx), "
               "fork+exec %.1f us\n",
               bare, grove, grove / bare, frk);
        printf("  %d MB through a pipe: blocking read %.0f MB/s, grove %.0f MB/s (%.2fx); "
               "the reader's CPU time: %.0f ms, %.0f ms\n",
               pipe_mb, pblock, pgrove, pgrove / pblock, cblock, cgrove);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int json = 0;

    if (argc == 3 && !strcmp(argv[1], "--writer"))
        return writer(atoll(argv[2]));
    self_exe = "/proc/self/exe";
    for (int i = 1; i < argc; i++) {
        if (bench_option(argc, argv, &i, &json, &runs))
            continue;
        if (!strcmp(argv[i], "--spawns") && i + 1 < argc)
            spawns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--rss") && i + 1 < argc)
            rss_mib = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--pipe-mb") && i + 1 < argc)
            pipe_mb = atoi(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--json] [--runs N] [--spawns S] [--rss MiB] [--pipe-mb M]\n",
                    argv[0]);
            return 2;
        }
    }
    if (bench_check_runs(argv[0], runs) != 0 || spawns < 1 || rss_mib < 0 || pipe_mb < 1)
        return 2;
    return gr_main(run, &json, NULL) == 0 ? 0 : 1;
}
