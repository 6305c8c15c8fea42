/* Child processes: statuses, deadlines, what the child inherits (only its
 * standard fds and those passed, an empty mask, default dispositions),
 * communicate without deadlock, exec errors, sessions, and the program's
 * own children and SIGCHLD handler left alone. Every test runs twice:
 * with pidfds ("process") and with the WNOHANG timer they fall back to
 * ("process_polled", GROVE_PIDFD=0). */
#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Each test body twice: pidfds, then polling. */
#define BOTH(name, secs, fn)                                                                       \
    Test(process, name, .timeout = secs)                                                           \
    {                                                                                              \
        run_main(fn, NULL);                                                                        \
    }                                                                                              \
    Test(process_polled, name, .timeout = secs)                                                    \
    {                                                                                              \
        setenv("GROVE_PIDFD", "0", 1);                                                             \
        run_main(fn, NULL);                                                                        \
    }

/* No child at all is left, running or zombie. */
static void assert_no_children(void)
{
    siginfo_t si;

    errno = 0;
    cr_assert_eq(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT), -1, "a child is left");
    cr_assert_eq(errno, ECHILD);
}

static gr_proc *spawn(const char *const *argv, const gr_proc_opts *o)
{
    gr_proc *p = gr_proc_spawn(argv, o);

    cr_assert_not_null(p, "spawn %s: %s", argv[0], strerror(errno));
    return p;
}

/* How many descriptors are pidfds (anon_inode:[pidfd]). */
static int pidfds_open(void)
{
    char path[64], link[64];
    int n = 0;

    for (int fd = 0; fd < 1024; fd++) {
        ssize_t len;

        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if ((len = readlink(path, link, sizeof link - 1)) <= 0)
            continue;
        link[len] = '\0';
        n += strstr(link, "pidfd") != NULL;
    }
    return n;
}

/* ---------------------------------------- 1,000 runs by 100 green threads */

#define RUNNERS 100
#define RUNS 1000

static int bad_status;

static void *runner(void *arg)
{
    int id = (int)(intptr_t)arg;

    for (int i = 0; i < RUNS / RUNNERS; i++) {
        int fail = (id + i) % 2;
        const char *argv[] = {fail ? "/bin/false" : "/bin/true", NULL};
        gr_proc *p = spawn(argv, NULL);
        int st = -1;

        cr_assert_eq(gr_proc_wait(p, &st, gr_now_update() + 10000), 0, "%s", strerror(errno));
        if (!WIFEXITED(st) || WEXITSTATUS(st) != fail)
            bad_status++;
        gr_proc_free(p);
    }
    return NULL;
}

static void *thousand_runs(void *arg)
{
    gr_t t[RUNNERS];

    (void)arg;
    for (int i = 0; i < RUNNERS; i++)
        t[i] = gr_spawn(runner, (void *)(intptr_t)i);
    for (int i = 0; i < RUNNERS; i++)
        cr_assert_eq(gr_join(t[i], NULL, -1), 0);
    cr_assert_eq(bad_status, 0, "%d wrong statuses", bad_status);
    assert_no_children();
    return NULL;
}

BOTH(a_thousand_runs_by_a_hundred_threads, 120, thousand_runs)

/* --------------------------------------------------------- the deadline */

static void *sleep_times_out(void *arg)
{
    const char *argv[] = {"sleep", "10", NULL};
    gr_proc *p = spawn(argv, NULL);
    int64_t t0 = gr_now_update(), took;
    int st;

    (void)arg;
    assert_fails(gr_proc_wait(p, &st, t0 + 100), ETIMEDOUT);
    took = gr_now_update() - t0;
    cr_assert(took >= 100 && took <= 120, "the wait took %ld ms", (long)took);
    cr_assert_eq(gr_proc_kill(p, SIGKILL), 0);
    cr_assert_eq(gr_proc_wait(p, &st, gr_now_update() + 5000), 0);
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "status %#x", st);
    cr_assert_eq(gr_proc_wait(p, &st, 0), 0, "reaped: the same status again");
    cr_assert(WIFSIGNALED(st));
    assert_fails(gr_proc_kill(p, SIGTERM), ESRCH);
    gr_proc_free(p);
    assert_no_children();
    return NULL;
}

BOTH(a_wait_times_out_at_its_deadline_then_the_child_is_killed, 20, sleep_times_out)

/* ------------------------------------------------ what the child inherits */

/* The hexadecimal mask of field name in /proc/<pid>/status. */
static unsigned long long status_mask(pid_t pid, const char *name)
{
    char path[64], line[256];
    unsigned long long v = ~0ULL;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    cr_assert_not_null(f = fopen(path, "r"));
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, strlen(name)))
            sscanf(line + strlen(name), ":%llx", &v);
    fclose(f);
    return v;
}

static ino_t inode_of(const char *path)
{
    struct stat st;

    cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
    return st.st_ino;
}

static void *child_inherits_little(void *arg)
{
    const char *argv[] = {"cat", NULL};
    int leak[2], pass_a[2], pass_b[2], st;
    gr_proc_opts o = {.stdio = {{GR_STDIO_PIPE, 0}, {GR_STDIO_PIPE, 0}}};
    struct sigaction ign = {.sa_handler = SIG_IGN};
    gr_signals *s = gr_signal_open(GR_SIG(SIGHUP));
    sigset_t usr2;
    char path[64], name[80];
    struct stat sa, sb;
    gr_proc *p;
    int fds[2];
    DIR *d;
    struct dirent *e;
    int nfd = 0;

    (void)arg;
    /* What a careless parent would pass on: fds without close-on-exec, an
     * ignored signal, a blocked one, a handler. */
    cr_assert_eq(pipe(leak), 0);
    cr_assert_eq(pipe(pass_a), 0);
    cr_assert_eq(pipe2(pass_b, O_CLOEXEC), 0);
    sigaction(SIGUSR1, &ign, NULL);
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &usr2, NULL);
    fds[0] = pass_a[0];
    fds[1] = pass_b[1];
    o.fds = fds;
    o.nfds = 2;
    p = spawn(argv, &o);
    /* cat waits on its stdin: look at it meanwhile. */
    cr_assert_eq(status_mask(gr_proc_pid(p), "SigBlk"), 0, "an empty mask");
    cr_assert_eq(status_mask(gr_proc_pid(p), "SigIgn"), 0, "nothing ignored");
    cr_assert_eq(status_mask(gr_proc_pid(p), "SigCgt"), 0, "nothing caught");
    snprintf(path, sizeof path, "/proc/%d/fd", (int)gr_proc_pid(p));
    cr_assert_not_null(d = opendir(path));
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        cr_assert(atoi(e->d_name) <= 4, "the child has fd %s", e->d_name);
        nfd++;
    }
    closedir(d);
    cr_assert_eq(nfd, 5, "0-2 and the two passed");
    snprintf(name, sizeof name, "%s/3", path);
    cr_assert_eq(fstat(pass_a[0], &sa), 0);
    cr_assert_eq(inode_of(name), sa.st_ino, "fds[0] is its 3");
    snprintf(name, sizeof name, "%s/4", path);
    cr_assert_eq(fstat(pass_b[1], &sb), 0);
    cr_assert_eq(inode_of(name), sb.st_ino, "fds[1] is its 4");
    /* The parent's ends: non-blocking, close-on-exec. */
    cr_assert(fcntl(gr_proc_fd(p, 0), F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(gr_proc_fd(p, 1), F_GETFD) & FD_CLOEXEC);
    cr_assert_eq(gr_proc_fd(p, 2), -1, "stderr inherited, not a pipe");
    cr_assert_eq(gr_proc_close_fd(p, 0), 0);
    cr_assert_eq(gr_proc_wait(p, &st, gr_now_update() + 5000), 0);
    cr_assert_eq(st, 0);
    gr_proc_free(p);
    pthread_sigmask(SIG_UNBLOCK, &usr2, NULL);
    gr_signal_close(s);
    for (int i = 0; i < 2; i++) {
        close(leak[i]);
        close(pass_a[i]);
        close(pass_b[i]);
    }
    return NULL;
}

BOTH(the_child_gets_only_its_fds_an_empty_mask_and_default_dispositions, 20, child_inherits_little)

/* --------------------------------------------------------- communicate */

#define BIG ((size_t)4 << 20)

static void *communicate_big(void *arg)
{
    const char *argv[] = {"tee", "/dev/stderr", NULL};
    gr_proc_opts o = {.stdio = {{GR_STDIO_PIPE, 0}, {GR_STDIO_PIPE, 0}, {GR_STDIO_PIPE, 0}}};
    char *in = malloc(BIG), *out, *err;
    size_t outlen, errlen;
    gr_proc *p;
    int st;

    (void)arg;
    for (size_t i = 0; i < BIG; i++)
        in[i] = (char)(i * 7 + i / 4096);
    /* tee copies its input to both: all three pipes fill at once. */
    p = spawn(argv, &o);
    cr_assert_eq(
        gr_proc_communicate(p, in, BIG, &out, &outlen, &err, &errlen, &st, gr_now_update() + 30000),
        0, "%s", strerror(errno));
    cr_assert_eq(st, 0);
    cr_assert_eq(outlen, BIG);
    cr_assert_eq(errlen, BIG);
    cr_assert(!memcmp(out, in, BIG) && !memcmp(err, in, BIG));
    free(out);
    free(err);
    gr_proc_free(p);
    free(in);
    return NULL;
}

BOTH(communicate_with_large_outputs_on_both_streams, 60, communicate_big)

static void *communicate_stderr_first(void *arg)
{
    /* Much on stderr before any stdout: a reader of stdout alone would
     * wait forever, the child blocked on a full stderr. */
    const char *argv[] = {"sh", "-c", "head -c 3000000 /dev/zero >&2; echo done", NULL};
    gr_proc_opts o = {.stdio = {{GR_STDIO_NULL, 0}, {GR_STDIO_PIPE, 0}, {GR_STDIO_PIPE, 0}}};
    gr_proc *p = spawn(argv, &o);
    char *out, *err = NULL;
    size_t outlen, errlen;
    int st;

    (void)arg;
    cr_assert_eq(gr_proc_communicate(p, "ignored", 7, &out, &outlen, NULL, &errlen, &st,
                                     gr_now_update() + 30000),
                 0, "%s", strerror(errno));
    cr_assert_str_eq(out, "done\n");
    cr_assert_eq(errlen, 0, "stderr discarded, not kept");
    cr_assert_eq(st, 0);
    free(out);
    free(err);
    gr_proc_free(p);
    return NULL;
}

BOTH(communicate_reads_both_streams_at_once, 30, communicate_stderr_first)

static void *communicate_times_out(void *arg)
{
    const char *argv[] = {"sh", "-c", "echo partial; exec sleep 10", NULL};
    gr_proc_opts o = {.stdio = {[1] = {GR_STDIO_PIPE, 0}}};
    gr_proc *p = spawn(argv, &o);
    int64_t t0 = gr_now_update();
    char *out;
    size_t outlen;
    int st;

    (void)arg;
    assert_fails(gr_proc_communicate(p, NULL, 0, &out, &outlen, NULL, NULL, &st, t0 + 100),
                 ETIMEDOUT);
    cr_assert_leq(gr_now_update() - t0, 150);
    cr_assert_str_eq(out, "partial\n", "what came before the deadline");
    free(out);
    gr_proc_kill(p, SIGTERM);
    cr_assert_eq(
        gr_proc_communicate(p, NULL, 0, &out, &outlen, NULL, NULL, &st, gr_now_update() + 5000), 0);
    cr_assert_eq(outlen, 0, "a second call gets what came after");
    cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
    free(out);
    gr_proc_free(p);
    return NULL;
}

BOTH(communicate_times_out_with_what_came, 20, communicate_times_out)

/* ----------------------------------------------------------- exec errors */

static void *exec_errors(void *arg)
{
    const char *missing[] = {"/nonexistent/grove-prog", NULL};
    const char *unknown[] = {"grove-no-such-program", NULL};
    const char *truth[] = {"true", NULL};
    const char *empty[] = {NULL};
    gr_proc_opts o = {.cwd = "/nonexistent-dir"};
    int before = proc_self_count("fd");

    (void)arg;
    assert_fails_null(gr_proc_spawn(missing, NULL), ENOENT);
    assert_fails_null(gr_proc_spawn(unknown, NULL), ENOENT);
    assert_fails_null(gr_proc_spawn(truth, &o), ENOENT);
    o = (gr_proc_opts){.file = "/etc/passwd"};
    assert_fails_null(gr_proc_spawn(truth, &o), EACCES);
    assert_fails_null(gr_proc_spawn(NULL, NULL), EINVAL);
    assert_fails_null(gr_proc_spawn(empty, NULL), EINVAL);
    o = (gr_proc_opts){.stdio = {{9, 0}}};
    assert_fails_null(gr_proc_spawn(truth, &o), EINVAL);
    o = (gr_proc_opts){.stdio = {[1] = {GR_STDIO_STDOUT, 0}}};
    assert_fails_null(gr_proc_spawn(truth, &o), EINVAL);
    o = (gr_proc_opts){.flags = GR_PROC_SETSID | GR_PROC_SETPGID};
    assert_fails_null(gr_proc_spawn(truth, &o), EINVAL);
    o = (gr_proc_opts){.flags = 8};
    assert_fails_null(gr_proc_spawn(truth, &o), EINVAL);
    o = (gr_proc_opts){.stdio = {[1] = {GR_STDIO_FD, 1000}}};
    assert_fails_null(gr_proc_spawn(truth, &o), EBADF);
    o = (gr_proc_opts){.stdio = {{GR_STDIO_PIPE, 0}, {GR_STDIO_PIPE, 0}, {GR_STDIO_PIPE, 0}},
                       .cwd = "/nonexistent-dir"};
    assert_fails_null(gr_proc_spawn(truth, &o), ENOENT);
    cr_assert_eq(proc_self_count("fd"), before, "a failed spawn leaves no fd behind");
    assert_no_children();
    return NULL;
}

BOTH(exec_errors_are_errors_of_the_spawn, 20, exec_errors)

/* ------------------------------------------------ options: env, cwd, stdio */

static void *options_apply(void *arg)
{
    const char *argv[] = {"sh", "-c", "echo $GROVE_X; pwd; echo oops >&2; cat <&3", NULL};
    const char *env[] = {"GROVE_X=42", "PATH=/usr/bin:/bin", NULL};
    gr_proc_opts o = {.env = env,
                      .cwd = "/tmp",
                      .stdio = {{GR_STDIO_NULL, 0}, {GR_STDIO_PIPE, 0}, {GR_STDIO_STDOUT, 0}}};
    int extra[2], st;
    char *out;
    size_t outlen;
    gr_proc *p;

    (void)arg;
    cr_assert_eq(pipe2(extra, O_CLOEXEC), 0);
    cr_assert_eq(write(extra[1], "three\n", 6), 6);
    close(extra[1]);
    o.fds = extra;
    o.nfds = 1;
    p = spawn(argv, &o);
    close(extra[0]);
    cr_assert_eq(
        gr_proc_communicate(p, NULL, 0, &out, &outlen, NULL, NULL, &st, gr_now_update() + 5000), 0);
    cr_assert_str_eq(out, "42\n/tmp\noops\nthree\n");
    cr_assert_eq(st, 0);
    free(out);
    gr_proc_free(p);
    return NULL;
}

BOTH(env_cwd_stdio_and_passed_fds_apply, 20, options_apply)

static void *given_fd(void *arg)
{
    const char *argv[] = {"echo", "to the given fd", NULL};
    int pp[2], st;
    gr_proc_opts o = {0};
    char buf[64] = {0};
    gr_proc *p;

    (void)arg;
    cr_assert_eq(pipe2(pp, O_CLOEXEC | O_NONBLOCK), 0);
    o.stdio[1] = (gr_stdio){GR_STDIO_FD, pp[1]};
    p = spawn(argv, &o);
    cr_assert_eq(gr_proc_wait(p, &st, gr_now_update() + 5000), 0);
    cr_assert_gt(gr_read(pp[0], buf, sizeof buf - 1, gr_now() + 1000), 0);
    cr_assert_str_eq(buf, "to the given fd\n");
    cr_assert(fcntl(pp[1], F_GETFD) >= 0, "the given fd stays the caller's");
    gr_proc_free(p);
    gr_close(pp[0]);
    close(pp[1]);
    return NULL;
}

BOTH(a_given_fd_as_stdout, 20, given_fd)

static void *sessions(void *arg)
{
    const char *argv[] = {"sleep", "10", NULL};
    gr_proc_opts o = {.flags = GR_PROC_SETSID};
    gr_proc *a, *b;

    (void)arg;
    a = spawn(argv, &o);
    cr_assert_eq(getsid(gr_proc_pid(a)), gr_proc_pid(a), "leads a session of its own");
    o = (gr_proc_opts){.flags = GR_PROC_SETPGID};
    b = spawn(argv, &o);
    cr_assert_eq(getpgid(gr_proc_pid(b)), gr_proc_pid(b), "leads a group of its own");
    cr_assert_eq(getsid(gr_proc_pid(b)), getsid(0), "in the caller's session");
    /* Free kills and reaps a running child. */
    gr_proc_free(a);
    gr_proc_free(b);
    assert_no_children();
    return NULL;
}

BOTH(a_new_session_or_process_group, 20, sessions)

/* ------------------------------------------- pipes block only the thread */

static int ticks;

static void *ticker(void *arg)
{
    (void)arg;
    for (;;) {
        if (gr_sleep(gr_now_update() + 1) != 0)
            return NULL;
        ticks++;
    }
}

static void *cooperative_pipes(void *arg)
{
    const char *argv[] = {"sh", "-c", "sleep 0.2; echo hi", NULL};
    gr_proc_opts o = {.stdio = {[1] = {GR_STDIO_PIPE, 0}}};
    gr_t t = gr_spawn(ticker, NULL);
    gr_proc *p = spawn(argv, &o);
    char buf[8] = {0};

    (void)arg;
    cr_assert_eq(gr_read(gr_proc_fd(p, 1), buf, sizeof buf - 1, gr_now_update() + 5000), 3);
    cr_assert_str_eq(buf, "hi\n");
    cr_assert_gt(ticks, 50, "the hub ran others meanwhile (%d ticks)", ticks);
    cr_assert_eq(gr_proc_wait(p, NULL, gr_now_update() + 5000), 0);
    gr_kill(t);
    gr_join(t, NULL, -1);
    gr_proc_free(p);
    return NULL;
}

BOTH(pipes_and_waits_block_only_the_green_thread, 20, cooperative_pipes)

/* ------------------------------- the program's own children and SIGCHLD */

static atomic_int chld_calls;

static void on_chld(int sig)
{
    (void)sig;
    atomic_fetch_add(&chld_calls, 1);
}

static void *own_children_kept(void *arg)
{
    struct sigaction sa = {.sa_handler = on_chld, .sa_flags = SA_RESTART}, cur;
    const char *argv[] = {"true", NULL};
    pid_t own;
    int st;

    (void)arg;
    cr_assert_eq(sigaction(SIGCHLD, &sa, NULL), 0);
    if ((own = fork()) == 0)
        _exit(7);
    for (int i = 0; i < 20; i++) {
        gr_proc *p = spawn(argv, NULL);

        cr_assert_eq(gr_proc_wait(p, &st, gr_now_update() + 5000), 0);
        cr_assert_eq(st, 0);
        gr_proc_free(p);
    }
    /* grove reaped only its own: the program's child is still there. */
    cr_assert_eq(waitpid(own, &st, 0), own, "%s", strerror(errno));
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 7);
    cr_assert_geq(atomic_load(&chld_calls), 1, "the program's SIGCHLD handler ran");
    sigaction(SIGCHLD, NULL, &cur);
    cr_assert_eq(cur.sa_handler, on_chld, "still the program's");
    assert_no_children();
    return NULL;
}

BOTH(the_programs_own_children_and_sigchld_handler_keep_working, 20, own_children_kept)

static void *stolen(void *arg)
{
    const char *argv[] = {"true", NULL};
    gr_proc *p = spawn(argv, NULL);
    int st;

    (void)arg;
    /* The program reaps any child (a careless SIGCHLD handler would). */
    cr_assert_eq(waitpid(-1, &st, 0), gr_proc_pid(p));
    assert_fails(gr_proc_wait(p, &st, gr_now_update() + 5000), ECHILD);
    assert_fails(gr_proc_kill(p, SIGTERM), ESRCH);
    gr_proc_free(p);
    return NULL;
}

BOTH(a_child_reaped_by_the_program_is_echild, 20, stolen)

/* The polled variant really polls, and the other has a pidfd. */
static void *pidfd_or_not(void *arg)
{
    const char *argv[] = {"sleep", "10", NULL};
    const char *e = getenv("GROVE_PIDFD");
    int before = pidfds_open();
    gr_proc *p = spawn(argv, NULL);

    (void)arg;
    cr_assert_eq(pidfds_open() - before, e && !strcmp(e, "0") ? 0 : 1);
    gr_proc_free(p);
    cr_assert_eq(pidfds_open(), before);
    return NULL;
}

BOTH(a_pidfd_per_child_unless_forced_off, 10, pidfd_or_not)
