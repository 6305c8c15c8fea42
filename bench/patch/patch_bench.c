/* grove-patch-bench: what libgrove-patch costs (docs/patching.md#speed).
 *
 *   grove-patch-bench [--json] [--runs N] [--seconds S] [--lib PATH]
 *
 * Three comparisons, each against a peer measured in the same run, in
 * alternating child processes (the patched ones under
 * LD_PRELOAD=libgrove-patch.so, the others without it), medians of N runs
 * (default 5):
 *   call_green    a patched call that does not block, in a green thread
 *                 (recv(MSG_PEEK) of a pending byte on a blocking socket),
 *                 against grove's own gr_recv on a non-blocking one, without
 *                 the patch: ns per call, and the difference (target: 10 ns);
 *   call_outside  the same patched recv made outside any green thread
 *                 (main(), no hub) against libc's recv without the patch:
 *                 ns per call, and the difference (target: 5 ns);
 *                 both calls measured twice: with the real system call, and
 *                 with libgrove-bench-nosys.so preloaded (a recv that never
 *                 enters the kernel) so the difference is the interposer's
 *                 own, not the kernel's noise;
 *   echo          a blocking-style POSIX echo server (socket, accept, read,
 *                 write; one green thread per connection) under the patch,
 *                 against the same server written with gr_ calls, driven by
 *                 50 connections ping-ponging 64-byte messages for S
 *                 seconds (default 2): round trips per second and the
 *                 ratio (target: 0.95 or more).
 * The library is found next to this program (../lib/libgrove-patch.so)
 * unless --lib names it. */
#define _GNU_SOURCE
#include "../bench.h"

#include <errno.h>
#include <fcntl.h>
#include <grove.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CALLS 1000000
#define MSG 64
#define CONNS 50

/* ------------------------------------------------------------ the calls */

static double ns_per_call(int fd, int native)
{
    char c;
    double t0 = bench_now_ns();

    for (int i = 0; i < CALLS; i++) {
        ssize_t n = native ? gr_recv(fd, &c, 1, MSG_PEEK, -1) : recv(fd, &c, 1, MSG_PEEK);

        if (n != 1)
            bench_die("recv");
    }
    return (bench_now_ns() - t0) / CALLS;
}

static int peek_pair(int sv[2], int nonblock)
{
    if (socketpair(AF_UNIX, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0, sv) != 0 ||
        write(sv[1], "x", 1) != 1)
        bench_die("socketpair");
    return sv[0];
}

static double green_result;

/* In a green thread: recv (patched when preloaded) or gr_recv (native). */
static void *green_calls(void *arg)
{
    int native = arg != NULL, sv[2];

    green_result = ns_per_call(peek_pair(sv, native), native);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

/* Child: print "green outside" ns per call. */
static int child_calls(int native)
{
    int sv[2];
    double outside;

    if (gr_main(green_calls, native ? (void *)1 : NULL, NULL) != 0)
        bench_die("gr_main");
    outside = ns_per_call(peek_pair(sv, 0), 0); /* main(), no hub: recv as it is */
    printf("%.3f %.3f\n", green_result, outside);
    return 0;
}

/* --------------------------------------------------------- echo servers */

static int listener;

static void *posix_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;

    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)n) != n)
            break;
    close(fd);
    return NULL;
}

static void *native_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;

    while ((n = gr_read(fd, buf, sizeof buf, -1)) > 0)
        if (gr_write_all(fd, buf, (size_t)n, NULL, -1) != 0)
            break;
    gr_close(fd);
    return NULL;
}

static void *accept_loop(void *arg)
{
    int native = arg != NULL, c;

    for (;;) {
        c = native ? gr_accept(listener, NULL, -1) : accept(listener, NULL, NULL);
        if (c < 0)
            return NULL;
        gr_detach(gr_spawn(native ? native_conn : posix_conn, (void *)(intptr_t)c));
    }
}

static int child_server(int native)
{
    if (native)
        gr_fd_nonblock(listener);
    gr_main(accept_loop, native ? (void *)1 : NULL, NULL);
    return 0;
}

/* ---------------------------------------------------------- the client */

static int port;
static volatile int client_stop;
static long round_trips;
static int64_t client_until;

static void *client_conn(void *arg)
{
    char msg[MSG] = {0}, back[MSG];
    int fd = gr_tcp_connect("127.0.0.1", port, gr_now_update() + 5000);

    (void)arg;
    if (fd < 0)
        bench_die("connect");
    while (!client_stop) {
        if (gr_write_all(fd, msg, MSG, NULL, -1) != 0 || gr_read_exact(fd, back, MSG, NULL, -1))
            bench_die("echo");
        round_trips++;
    }
    gr_close(fd);
    return NULL;
}

static void *client_timer(void *arg)
{
    (void)arg;
    gr_sleep(client_until);
    client_stop = 1;
    return NULL;
}

static void *client_main(void *arg)
{
    gr_t g[CONNS];

    (void)arg;
    for (int i = 0; i < CONNS; i++)
        g[i] = gr_spawn(client_conn, NULL);
    gr_join(gr_spawn(client_timer, NULL), NULL, -1);
    for (int i = 0; i < CONNS; i++)
        gr_join(g[i], NULL, -1);
    return NULL;
}

/* ------------------------------------------------------------ the driver */

static char self[PATH_MAX], lib[PATH_MAX], nosys[PATH_MAX];

/* Run this program again as a child (patched: under LD_PRELOAD; kernel_free:
 * with the no-system-call recv preloaded too) with
 * argv, keeping descriptor keep (or -1) open across exec; its stdout goes
 * to *out (a pipe to read). */
static pid_t run_child_with(char *const *argv, int patched, int kernel_free, int keep, int *out)
{
    int p[2];
    pid_t pid;

    if (pipe(p) != 0)
        bench_die("pipe");
    if ((pid = fork()) < 0)
        bench_die("fork");
    if (pid == 0) {
        char pre[2 * PATH_MAX + 2];

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(p[1], 1);
        close(p[0]);
        if (keep >= 0)
            fcntl(keep, F_SETFD, 0);
        snprintf(pre, sizeof pre, "%s%s%s", patched ? lib : "", patched && kernel_free ? " " : "",
                 kernel_free ? nosys : "");
        if (pre[0])
            setenv("LD_PRELOAD", pre, 1);
        else
            unsetenv("LD_PRELOAD");
        execv(self, argv);
        _exit(127);
    }
    close(p[1]);
    *out = p[0];
    return pid;
}

static pid_t run_child(char *const *argv, int patched, int keep, int *out)
{
    return run_child_with(argv, patched, 0, keep, out);
}

static void calls_round(int patched, int kernel_free, double *green, double *outside)
{
    char *argv[] = {self, "--child-calls", patched ? "patched" : "native", NULL};
    char buf[128] = "";
    int fd;
    pid_t pid = run_child_with(argv, patched, kernel_free, -1, &fd);
    ssize_t n = read(fd, buf, sizeof buf - 1);

    close(fd);
    waitpid(pid, NULL, 0);
    if (n <= 0 || sscanf(buf, "%lf %lf", green, outside) != 2)
        bench_die("a calls child failed");
}

static double echo_round(int patched, double seconds)
{
    char lfd[16];
    char *argv[] = {self, "--child-server", patched ? "posix" : "native", lfd, NULL};
    int fd;
    pid_t pid;

    listener = gr_tcp_listen("127.0.0.1", 0, 1024);
    snprintf(lfd, sizeof lfd, "%d", listener);
    port = gr_local_port(listener);
    if (!patched) /* the POSIX server gets it as a blocking socket */
        gr_fd_nonblock(listener);
    else {
        int fl = fcntl(listener, F_GETFL);

        fcntl(listener, F_SETFL, fl & ~O_NONBLOCK);
    }
    pid = run_child(argv, patched, listener, &fd);
    close(listener);
    close(fd);
    client_stop = 0;
    round_trips = 0;
    client_until = gr_now_update() + (int64_t)(seconds * 1000);
    if (gr_main(client_main, NULL, NULL) != 0)
        bench_die("client");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return round_trips / seconds;
}

/* path = the build's lib/name, found from this program's bin/. */
static int find_in_lib(char *path, size_t len, const char *name)
{
    char *slash;

    snprintf(path, len, "%s", self);
    if (!(slash = strrchr(path, '/')))
        return -1;
    *slash = 0;
    if ((slash = strrchr(path, '/')))
        *slash = 0;
    strncat(path, "/lib/", len - strlen(path) - 1);
    strncat(path, name, len - strlen(path) - 1);
    return access(path, R_OK);
}

static int find_lib(void)
{
    if (find_in_lib(nosys, sizeof nosys, "libgrove-bench-nosys.so") != 0)
        return -1;
    if (lib[0])
        return access(lib, R_OK);
    return find_in_lib(lib, sizeof lib, "libgrove-patch.so");
}

int main(int argc, char **argv)
{
    double g_p[BENCH_MAX_RUNS], g_n[BENCH_MAX_RUNS], o_p[BENCH_MAX_RUNS], o_n[BENCH_MAX_RUNS];
    double e_p[BENCH_MAX_RUNS], e_n[BENCH_MAX_RUNS], seconds = 2;
    double kg_p[BENCH_MAX_RUNS], kg_n[BENCH_MAX_RUNS], ko_p[BENCH_MAX_RUNS], ko_n[BENCH_MAX_RUNS];
    int json = 0, runs = 5;

    if (argc == 3 && !strcmp(argv[1], "--child-calls"))
        return child_calls(!strcmp(argv[2], "native"));
    if (argc == 4 && !strcmp(argv[1], "--child-server")) {
        listener = atoi(argv[3]);
        return child_server(!strcmp(argv[2], "native"));
    }
    for (int i = 1; i < argc; i++) {
        if (bench_option(argc, argv, &i, &json, &runs))
            continue;
        if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--lib") && i + 1 < argc)
            snprintf(lib, sizeof lib, "%s", argv[++i]);
        else {
            fprintf(stderr, "usage: grove-patch-bench [--json] [--runs N] [--seconds S] "
                            "[--lib PATH]\n");
            return 2;
        }
    }
    if (bench_check_runs("grove-patch-bench", runs) != 0 || seconds <= 0)
        return 2;
    if (readlink("/proc/self/exe", self, sizeof self - 1) < 0 || find_lib() != 0) {
        fprintf(stderr, "grove-patch-bench: libgrove-patch.so not found (%s); use --lib\n", lib);
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    for (int r = 0; r < runs; r++) { /* interleaved, so drift hits both */
        calls_round(1, 1, &kg_p[r], &ko_p[r]);
        calls_round(0, 1, &kg_n[r], &ko_n[r]);
        calls_round(1, 0, &g_p[r], &o_p[r]);
        calls_round(0, 0, &g_n[r], &o_n[r]);
    }
    for (int r = 0; r < runs; r++) {
        e_p[r] = echo_round(1, seconds);
        e_n[r] = echo_round(0, seconds);
    }
    double gp = bench_median(g_p, runs), gn = bench_median(g_n, runs);
    double op = bench_median(o_p, runs), on = bench_median(o_n, runs);
    double ep = bench_median(e_p, runs), en = bench_median(e_n, runs);
    double kgp = bench_median(kg_p, runs), kgn = bench_median(kg_n, runs);
    double kop = bench_median(ko_p, runs), kon = bench_median(ko_n, runs);

    if (json) {
        bench_json_begin();
        bench_json("bench", "\"patch\"");
        bench_json("runs", "%d", runs);
        bench_json("nosys_call_green_patched_ns", "%.2f", kgp);
        bench_json("nosys_call_green_native_ns", "%.2f", kgn);
        bench_json("nosys_call_green_overhead_ns", "%.2f", kgp - kgn);
        bench_json("nosys_call_outside_patched_ns", "%.2f", kop);
        bench_json("nosys_call_outside_libc_ns", "%.2f", kon);
        bench_json("nosys_call_outside_overhead_ns", "%.2f", kop - kon);
        bench_json("call_green_patched_ns", "%.2f", gp);
        bench_json("call_green_native_ns", "%.2f", gn);
        bench_json("call_green_overhead_ns", "%.2f", gp - gn);
        bench_json("call_outside_patched_ns", "%.2f", op);
        bench_json("call_outside_libc_ns", "%.2f", on);
        bench_json("call_outside_overhead_ns", "%.2f", op - on);
        bench_json("echo_posix_patched_rps", "%.0f", ep);
        bench_json("echo_native_rps", "%.0f", en);
        bench_json("echo_ratio", "%.3f", ep / en);
        bench_json_end();
    } else {
        printf("medians of %d runs, alternating processes\n", runs);
        printf("without the kernel (a recv that returns at once; the interposer's own cost):\n");
        printf("call in a green thread:   patched recv %8.1f ns  gr_recv %8.1f ns  overhead "
               "%+6.1f ns (target <= 10)\n",
               kgp, kgn, kgp - kgn);
        printf("call outside one:         patched recv %8.1f ns  libc    %8.1f ns  overhead "
               "%+6.1f ns (target <= 5)\n",
               kop, kon, kop - kon);
        printf("with the real system call (the kernel's time and noise included):\n");
        printf("call in a green thread:   patched recv %8.1f ns  gr_recv %8.1f ns  overhead "
               "%+6.1f ns (target <= 10)\n",
               gp, gn, gp - gn);
        printf("call outside one:         patched recv %8.1f ns  libc    %8.1f ns  overhead "
               "%+6.1f ns (target <= 5)\n",
               op, on, op - on);
        printf("echo, %d conns, 64 B:     POSIX patched %8.0f/s  gr_ calls %8.0f/s  ratio "
               "%.3f (target >= 0.95)\n",
               CONNS, ep, en, ep / en);
    }
    return 0;
}
