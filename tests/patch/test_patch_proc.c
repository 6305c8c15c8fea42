/* libgrove-patch: signal waits and child processes in green threads (the
 * signal and process families), called as plain POSIX code calls them.
 * Many green threads, each waiting for its own child (fork + waitpid), its
 * own shell (system), its own popen stream (fgets) or its own signal
 * (sigtimedwait), on one OS thread, all finish in about one period, not
 * the sum of the periods, with the heartbeat on; the results are those
 * libc's own calls (gr_patch_original) give for the same inputs. The
 * other signal waits park alone too; a plain fork() leaves the child a
 * working hub; a program's own fork, waitpid and SIGCHLD handler keep
 * working, and its handler without SA_RESTART ends no wait; kills give
 * ECANCELED; outside green threads, and with the families switched off,
 * the calls are libc's. */
#include "patch_common.h"

#include <stdatomic.h>
#include <stdio.h>

#define N 20
#define PERIOD_MS 200
/* Not the sum: one after the other, the N waits would take at least N
 * periods (4 s). Together they take about one period plus the spawns,
 * which block the hub until the child runs (fork, posix_spawn: not
 * patched): 0.4-0.6 s here when quiet, 2.4 s at a load of 12 on the 2
 * cores; so the bound is the sum itself, which no machine load makes a
 * serial run pass. */
#define CONCURRENT_MS (N * PERIOD_MS)

/* Ticks of the ticker (1 ms) that show the hub ran during a wait of a
 * period or more: one blocking the hub's thread allows at most one, and a
 * loaded machine still gives dozens. */
#define HUB_RAN 5

static volatile int ticks, ticking;

static void *ticker(void *arg)
{
    (void)arg;
    while (ticking) {
        ticks++;
        if (gr_sleep(gr_now_update() + 1) != 0)
            break;
    }
    return NULL;
}

static gr_t start_ticker(void)
{
    gr_t t;

    ticks = 0;
    ticking = 1;
    t = gr_spawn(ticker, NULL);
    cr_assert_gt(t, 0);
    gr_yield();
    return t;
}

static void stop_ticker(gr_t t)
{
    ticking = 0;
    gr_join(t, NULL, -1);
}

/* libc's own function for name. */
static void *orig(const char *name)
{
    void *p = gr_patch_original(name);

    cr_assert_not_null(p, "no original for %s", name);
    return p;
}

/* No child is left, running or zombie. */
static void assert_no_children(void)
{
    siginfo_t si;

    errno = 0;
    cr_assert_eq(waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT), -1, "a child is left");
    cr_assert_eq(errno, ECHILD);
}

/* One of N green threads: its index, and what its call gave. */
typedef struct job {
    int i;
    int result, err;
    char out[32];
    int at_eof;
} job;

/* Run fn(&jobs[i]) on N green threads at once, with the heartbeat (fork
 * and posix_spawn's clone are allowed their wait for the child: they are
 * not patched). Returns how long they took in all, in ms. */
static int64_t run_many(gr_fn fn, job *jobs)
{
    heartbeat hb;
    gr_t g[N];
    int64_t t0, took;

    hb_start_opts(&hb, 1);
    t0 = now_ms();
    for (int i = 0; i < N; i++) {
        jobs[i] = (job){.i = i, .result = -1};
        cr_assert_gt(g[i] = gr_spawn(fn, &jobs[i]), 0);
    }
    for (int i = 0; i < N; i++)
        cr_assert_eq(gr_join(g[i], NULL, -1), 0);
    took = now_ms() - t0;
    hb_check(&hb);
    cr_assert_geq(took, PERIOD_MS, "done in %lld ms: before the children ended?", (long long)took);
    cr_log_info("%d waits of %d ms: %lld ms in all", N, PERIOD_MS, (long long)took);
    cr_assert_lt(took, CONCURRENT_MS, "%d waits of %d ms took %lld ms: one after the other?", N,
                 PERIOD_MS, (long long)took);
    return took;
}

/* ----------------------------------------------------------- waitpid */

/* A child that ends after ms: with exit code i, or (every third) killed
 * by SIGTERM. */
static pid_t fork_ending(int i, int ms)
{
    pid_t pid = fork();

    cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (ms)
            usleep((useconds_t)ms * 1000);
        if (i % 3 == 2) {
            signal(SIGTERM, SIG_DFL);
            raise(SIGTERM);
        }
        _exit(i);
    }
    return pid;
}

/* The status libc's waitpid gives for child i. */
static int libc_status(int i)
{
    pid_t (*real_waitpid)(pid_t, int *, int) = (pid_t(*)(pid_t, int *, int))orig("waitpid");
    pid_t pid = fork_ending(i, 0);
    int st = -1;

    cr_assert_eq(real_waitpid(pid, &st, 0), pid);
    return st;
}

static void *waits_for_its_child(void *arg)
{
    job *j = arg;
    pid_t pid = fork_ending(j->i, PERIOD_MS);

    if (waitpid(pid, &j->result, 0) != pid)
        j->err = errno;
    return NULL;
}

static void *many_waitpids(void *arg)
{
    job jobs[N];

    (void)arg;
    run_many(waits_for_its_child, jobs);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(jobs[i].err, 0, "waitpid %d: %s", i, strerror(jobs[i].err));
        cr_assert_eq(jobs[i].result, libc_status(i), "child %d: status %#x", i, jobs[i].result);
    }
    cr_assert(WIFSIGNALED(jobs[2].result) && WTERMSIG(jobs[2].result) == SIGTERM);
    cr_assert(WIFEXITED(jobs[4].result) && WEXITSTATUS(jobs[4].result) == 4);
    assert_no_children();
    return NULL;
}

Test(patch_proc, waitpids_of_many_green_threads_overlap, .timeout = 60)
{
    require_patch();
    run_main(many_waitpids, NULL);
}

/* ------------------------------------------------------------ system */

static const char *const shell_lines[] = {"sleep 0.2", "sleep 0.2; exit 3",
                                          "sleep 0.2; kill -TERM $$"};
#define NLINES (int)(sizeof shell_lines / sizeof *shell_lines)

static void *runs_system(void *arg)
{
    job *j = arg;

    j->result = system(shell_lines[j->i % NLINES]);
    j->err = j->result == -1 ? errno : 0;
    return NULL;
}

static void *many_systems(void *arg)
{
    int (*real_system)(const char *) = (int (*)(const char *))orig("system");
    int want[NLINES];
    job jobs[N];

    (void)arg;
    run_many(runs_system, jobs);
    for (int k = 0; k < NLINES; k++)
        want[k] = real_system(shell_lines[k]);
    cr_assert_eq(want[1], 3 << 8);
    for (int i = 0; i < N; i++)
        cr_assert_eq(jobs[i].result, want[i % NLINES], "system(\"%s\"): %#x, libc's %#x",
                     shell_lines[i % NLINES], jobs[i].result, want[i % NLINES]);
    assert_no_children();
    return NULL;
}

Test(patch_proc, systems_of_many_green_threads_overlap, .timeout = 60)
{
    require_patch();
    run_main(many_systems, NULL);
}

/* ------------------------------------------------------------- popen */

#define POPEN_CODES 4

static void popen_line(int i, char *cmd, size_t len)
{
    snprintf(cmd, len, "sleep 0.2; echo x%d; exit %d", i, i % POPEN_CODES);
}

/* Read the command's one line and its end, then close it: *j gets the
 * line, whether the end came, and pclose's status. */
static void read_popen(job *j, FILE *(*open_fn)(const char *, const char *),
                       int (*close_fn)(FILE *))
{
    char cmd[64], rest[8];
    FILE *f;

    popen_line(j->i, cmd, sizeof cmd);
    cr_assert_not_null(f = open_fn(cmd, "r"), "popen: %s", strerror(errno));
    if (!fgets(j->out, sizeof j->out, f))
        j->out[0] = '\0';
    j->at_eof = !fgets(rest, sizeof rest, f) && feof(f);
    j->result = close_fn(f);
}

static void *reads_popen(void *arg)
{
    read_popen(arg, popen, pclose);
    return NULL;
}

static void *many_popens(void *arg)
{
    job jobs[N], want[POPEN_CODES];

    (void)arg;
    run_many(reads_popen, jobs);
    for (int k = 0; k < POPEN_CODES; k++) {
        want[k] = (job){.i = k};
        read_popen(&want[k], (FILE * (*)(const char *, const char *)) orig("popen"),
                   (int (*)(FILE *))orig("pclose"));
        cr_assert_eq(want[k].result, k << 8);
    }
    for (int i = 0; i < N; i++) {
        char line[16];

        snprintf(line, sizeof line, "x%d\n", i);
        cr_assert_str_eq(jobs[i].out, line);
        cr_assert(jobs[i].at_eof, "the stream of %d did not end", i);
        cr_assert_eq(jobs[i].result, want[i % POPEN_CODES].result, "pclose %d: %#x, libc's %#x", i,
                     jobs[i].result, want[i % POPEN_CODES].result);
    }
    assert_no_children();
    return NULL;
}

Test(patch_proc, popen_reads_of_many_green_threads_overlap, .timeout = 60)
{
    require_patch();
    run_main(many_popens, NULL);
}

/* A writer to a slow reader: the pipe fills, and only the writer waits. */
static void *writes_popen(void *arg)
{
    static char chunk[4096];
    char path[64], cmd[128], got[32] = {0};
    size_t total = 1 << 20;
    heartbeat hb;
    FILE *f, *in;
    gr_t t;

    (void)arg;
    snprintf(path, sizeof path, "/tmp/grove-patch-popen-%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "sleep 0.2; wc -c > %s", path);
    memset(chunk, 'w', sizeof chunk);
    hb_start_opts(&hb, 1);
    t = start_ticker();
    cr_assert_not_null(f = popen(cmd, "w"));
    for (size_t done = 0; done < total; done += sizeof chunk)
        cr_assert_eq(fwrite(chunk, 1, sizeof chunk, f), sizeof chunk);
    cr_assert_eq(pclose(f), 0);
    cr_assert_gt(ticks, HUB_RAN, "the other green threads stood still (%d ticks)", ticks);
    stop_ticker(t);
    hb_check(&hb);
    cr_assert_not_null(in = fopen(path, "r"));
    cr_assert_not_null(fgets(got, sizeof got, in));
    fclose(in);
    unlink(path);
    cr_assert_eq(strtoul(got, NULL, 10), total);
    return NULL;
}

Test(patch_proc, a_popen_writer_waits_alone, .timeout = 30)
{
    require_patch();
    run_main(writes_popen, NULL);
}

/* ------------------------------------------------------ sigtimedwait */

/* Green thread i waits for signal SIGRTMIN + i: the odd ones get it,
 * queued to the hub's thread with a value after a period; the even ones
 * time out after a period. The program blocks them first, as POSIX asks;
 * they are queued to the hub's thread only (Criterion's own thread does
 * not block them). */
static pthread_t hub_thread;

static sigset_t the_signals(void)
{
    sigset_t s;

    sigemptyset(&s);
    for (int i = 0; i < N; i++)
        sigaddset(&s, SIGRTMIN + i);
    return s;
}

static void *waits_for_its_signal(void *arg)
{
    job *j = arg;
    struct timespec period = {0, PERIOD_MS * 1000000L}, long_ = {10, 0};
    sigset_t s;
    siginfo_t si;

    sigemptyset(&s);
    sigaddset(&s, SIGRTMIN + j->i);
    memset(&si, 0, sizeof si);
    j->result = sigtimedwait(&s, &si, j->i % 2 ? &long_ : &period);
    j->err = j->result < 0 ? errno : 0;
    if (j->result > 0)
        snprintf(j->out, sizeof j->out, "%d %d %d", si.si_code, si.si_value.sival_int,
                 (int)si.si_pid);
    return NULL;
}

static void *sends_signals(void *arg)
{
    (void)arg;
    gr_sleep(gr_now_update() + PERIOD_MS);
    for (int i = 1; i < N; i += 2)
        cr_assert_eq(
            pthread_sigqueue(hub_thread, SIGRTMIN + i, (union sigval){.sival_int = i * 10}), 0);
    return NULL;
}

static void *many_sigtimedwaits(void *arg)
{
    int (*real_sigtimedwait)(const sigset_t *, siginfo_t *, const struct timespec *) =
        (int (*)(const sigset_t *, siginfo_t *, const struct timespec *))orig("sigtimedwait");
    struct timespec ms10 = {0, 10000000};
    sigset_t one;
    siginfo_t si;
    job jobs[N];
    char want[32];
    gr_t sender;

    (void)arg;
    hub_thread = pthread_self();
    cr_assert_gt(sender = gr_spawn(sends_signals, NULL), 0);
    run_many(waits_for_its_signal, jobs);
    gr_join(sender, NULL, -1);
    /* libc's answers to the same. */
    sigemptyset(&one);
    sigaddset(&one, SIGRTMIN + 1);
    pthread_sigqueue(hub_thread, SIGRTMIN + 1, (union sigval){.sival_int = 10});
    cr_assert_eq(real_sigtimedwait(&one, &si, &ms10), SIGRTMIN + 1);
    snprintf(want, sizeof want, "%d %d %d", si.si_code, si.si_value.sival_int, (int)si.si_pid);
    cr_assert_eq(real_sigtimedwait(&one, &si, &ms10), -1);
    cr_assert_eq(errno, EAGAIN);
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0) {
            cr_assert_eq(jobs[i].result, -1, "%d took a signal nobody sent", i);
            cr_assert_eq(jobs[i].err, EAGAIN, "%d: %s, libc's EAGAIN", i, strerror(jobs[i].err));
            continue;
        }
        cr_assert_eq(jobs[i].result, SIGRTMIN + i, "%d: %s", i, strerror(jobs[i].err));
        if (i == 1)
            cr_assert_str_eq(jobs[i].out, want, "siginfo (code value pid) unlike libc's");
        cr_assert_eq(atoi(strchr(jobs[i].out, ' ') + 1), i * 10, "the value of %d", i);
    }
    return NULL;
}

Test(patch_proc, sigtimedwaits_of_many_green_threads_overlap, .timeout = 60)
{
    sigset_t s = the_signals();

    require_patch();
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
    run_main(many_sigtimedwaits, NULL);
}

/* sigwait, sigwaitinfo, sigsuspend and pause park only their green
 * thread, and return what libc's do (0 and the signal; the signal and its
 * siginfo; -1/EINTR after the handler ran). The signals are sent to the
 * hub's thread; SIGUSR1, SIGUSR2 and SIGWINCH are blocked by the program
 * (sigsuspend lets SIGWINCH in), SIGHUP is not: pause must be parked when
 * it comes, which it is once the pauser has set `pausing` (nothing switches
 * between that and the park). */
static atomic_int handled_hup, handled_winch;
static volatile int pausing;

static void on_hup(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled_hup, 1);
}

static void on_winch(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled_winch, 1);
}

static void *does_sigwait(void *arg)
{
    job *j = arg;
    sigset_t s;

    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    j->err = sigwait(&s, &j->result);
    return NULL;
}

static void *does_sigwaitinfo(void *arg)
{
    job *j = arg;
    siginfo_t si;
    sigset_t s;

    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    j->result = sigwaitinfo(&s, &si);
    j->err = j->result < 0 ? errno : si.si_code == SI_QUEUE ? si.si_value.sival_int : -1;
    return NULL;
}

static void *does_pause(void *arg)
{
    job *j = arg;

    pausing = 1;
    j->result = pause();
    j->err = errno;
    return NULL;
}

static void *does_sigsuspend(void *arg)
{
    job *j = arg;
    sigset_t m;

    pthread_sigmask(SIG_BLOCK, NULL, &m);
    sigdelset(&m, SIGWINCH);
    j->result = sigsuspend(&m);
    j->err = errno;
    return NULL;
}

static void *signal_waits(void *arg)
{
    gr_fn fns[] = {does_sigwait, does_sigwaitinfo, does_pause, does_sigsuspend};
    job jobs[4] = {{0}};
    gr_t g[4], t;

    (void)arg;
    hub_thread = pthread_self();
    t = start_ticker();
    for (int i = 0; i < 4; i++)
        cr_assert_gt(g[i] = gr_spawn(fns[i], &jobs[i]), 0);
    while (!pausing)
        gr_sleep(gr_now_update() + 1);
    gr_sleep(gr_now_update() + PERIOD_MS);
    cr_assert_gt(ticks, HUB_RAN, "the waits stopped the hub (%d ticks)", ticks);
    cr_assert_eq(pthread_kill(hub_thread, SIGHUP), 0);
    cr_assert_eq(pthread_sigqueue(hub_thread, SIGUSR1, (union sigval){.sival_int = 1}), 0);
    cr_assert_eq(pthread_sigqueue(hub_thread, SIGUSR2, (union sigval){.sival_int = 2}), 0);
    cr_assert_eq(gr_join(g[2], NULL, gr_now_update() + 5000), 0, "pause did not end");
    cr_assert_eq(pthread_kill(hub_thread, SIGWINCH), 0);
    for (int i = 0; i < 4; i++)
        if (i != 2)
            cr_assert_eq(gr_join(g[i], NULL, gr_now_update() + 5000), 0, "%d: %s", i,
                         strerror(errno));
    stop_ticker(t);
    cr_assert_eq(jobs[0].err, 0, "sigwait: %s", strerror(jobs[0].err));
    cr_assert_eq(jobs[0].result, SIGUSR1);
    cr_assert_eq(jobs[1].result, SIGUSR2, "sigwaitinfo: %s", strerror(jobs[1].err));
    cr_assert_eq(jobs[1].err, 2, "sigwaitinfo's siginfo");
    cr_assert_eq(jobs[2].result, -1);
    cr_assert_eq(jobs[2].err, EINTR, "pause: %s", strerror(jobs[2].err));
    cr_assert_eq(atomic_load(&handled_hup), 1);
    cr_assert_eq(jobs[3].result, -1);
    cr_assert_eq(jobs[3].err, EINTR, "sigsuspend: %s", strerror(jobs[3].err));
    cr_assert_eq(atomic_load(&handled_winch), 1);
    return NULL;
}

Test(patch_proc, sigwait_sigwaitinfo_pause_and_sigsuspend_park_only_their_thread, .timeout = 30)
{
    struct sigaction hup = {.sa_handler = on_hup}, winch = {.sa_handler = on_winch};
    sigset_t s;

    require_patch();
    sigaction(SIGHUP, &hup, NULL);
    sigaction(SIGWINCH, &winch, NULL);
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2);
    sigaddset(&s, SIGWINCH);
    cr_assert_eq(pthread_sigmask(SIG_BLOCK, &s, NULL), 0);
    run_main(signal_waits, NULL);
}

/* ------------------------------------------- wait4, wait3, waitid */

/* The other waits park too, with libc's results: wait4 and waitid on one
 * child (its pidfd), wait3 on any (the WNOHANG timer). */
static void *other_waits(void *arg)
{
    pid_t (*real_wait4)(pid_t, int *, int, struct rusage *) =
        (pid_t(*)(pid_t, int *, int, struct rusage *))orig("wait4");
    int (*real_waitid)(idtype_t, id_t, siginfo_t *, int) =
        (int (*)(idtype_t, id_t, siginfo_t *, int))orig("waitid");
    struct rusage ru;
    siginfo_t si, want_si;
    pid_t pid;
    int st, want;
    gr_t t;

    (void)arg;
    pid = fork_ending(2, 0);
    cr_assert_eq(real_wait4(pid, &want, 0, &ru), pid);
    pid = fork_ending(3, 0);
    cr_assert_eq(real_waitid(P_PID, (id_t)pid, &want_si, WEXITED), 0);
    t = start_ticker();
    pid = fork_ending(2, PERIOD_MS);
    memset(&ru, 0, sizeof ru);
    cr_assert_eq(wait4(pid, &st, 0, &ru), pid, "wait4: %s", strerror(errno));
    cr_assert_eq(st, want);
    cr_assert_gt(ru.ru_maxrss, 0, "wait4's rusage");
    pid = fork_ending(3, PERIOD_MS);
    memset(&si, 0, sizeof si);
    cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED), 0, "waitid: %s", strerror(errno));
    cr_assert_eq(si.si_pid, pid);
    cr_assert_eq(si.si_code, want_si.si_code);
    cr_assert_eq(si.si_status, want_si.si_status);
    pid = fork_ending(2, PERIOD_MS);
    cr_assert_eq(wait3(&st, 0, NULL), pid, "wait3: %s", strerror(errno));
    cr_assert_eq(st, want);
    cr_assert_gt(ticks, HUB_RAN, "the waits stopped the hub (%d ticks in %d ms)", ticks,
                 3 * PERIOD_MS);
    stop_ticker(t);
    assert_no_children();
    return NULL;
}

Test(patch_proc, wait4_waitid_and_wait3_park_with_libcs_results, .timeout = 30)
{
    require_patch();
    run_main(other_waits, NULL);
}

/* ------------------------------------------ the program's own SIGCHLD */

static atomic_int chld_handled;

static void counts_chld(int sig)
{
    (void)sig;
    atomic_fetch_add(&chld_handled, 1);
}

/* The classic handler that reaps every child it can, recording them. */
static pid_t reaped_pid[N];
static int reaped_status[N];
static atomic_int nreaped;

static void reaps_chld(int sig)
{
    int st, err = errno;
    pid_t p;

    (void)sig;
    while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
        int k = atomic_fetch_add(&nreaped, 1);

        if (k < N)
            reaped_pid[k] = p, reaped_status[k] = st;
    }
    errno = err;
}

static void on_chld(void (*fn)(int))
{
    struct sigaction sa = {.sa_handler = fn, .sa_flags = SA_RESTART | SA_NOCLDSTOP};

    sigemptyset(&sa.sa_mask);
    cr_assert_eq(sigaction(SIGCHLD, &sa, NULL), 0);
}

/* Wait (cooperatively: usleep is patched) until *n reaches want, 5 s at
 * most: the handler runs asynchronously, maybe on another OS thread. */
static void await_count(atomic_int *n, int want)
{
    for (int i = 0; i < 2500 && atomic_load(n) < want; i++)
        usleep(2000);
    cr_assert_geq(atomic_load(n), want, "the handler ran %d times, not %d", atomic_load(n), want);
}

static void *own_children(void *arg)
{
    struct sigaction cur;
    job jobs[N];
    pid_t pids[N];
    int want[N], st;
    gr_t t;

    (void)arg;
    for (int i = 0; i < N; i++)
        want[i] = libc_status(i);
    /* Its own handler, its own fork and waitpid: each wait gets its
     * child, and the handler is told. */
    on_chld(counts_chld);
    run_many(waits_for_its_child, jobs);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(jobs[i].err, 0, "waitpid %d: %s", i, strerror(jobs[i].err));
        cr_assert_eq(jobs[i].result, want[i]);
    }
    await_count(&chld_handled, 1);
    cr_assert_eq(sigaction(SIGCHLD, NULL, &cur), 0);
    cr_assert_eq(cur.sa_handler, counts_chld, "the program's handler was replaced");
    /* wait() for any child parks too. */
    t = start_ticker();
    pids[0] = fork_ending(7, PERIOD_MS / 2);
    cr_assert_eq(wait(&st), pids[0]);
    cr_assert_eq(st, 7 << 8);
    cr_assert_gt(ticks, HUB_RAN, "wait() stopped the hub (%d ticks)", ticks);
    stop_ticker(t);
    /* A handler that reaps: it gets every child and its status; grove
     * reaps none (its waits are per child, and none is made here). */
    on_chld(reaps_chld);
    for (int i = 0; i < N; i++)
        pids[i] = fork_ending(i, PERIOD_MS / 2);
    await_count(&nreaped, N);
    for (int i = 0; i < N; i++) {
        int k = 0;

        while (k < N && reaped_pid[k] != pids[i])
            k++;
        cr_assert_lt(k, N, "child %d was not reaped by the handler", i);
        cr_assert_eq(reaped_status[k], want[i], "child %d: status %#x", i, reaped_status[k]);
    }
    on_chld(SIG_DFL);
    assert_no_children();
    return NULL;
}

Test(patch_proc, the_programs_own_fork_waitpid_and_sigchld_handler_work, .timeout = 60)
{
    require_patch();
    run_main(own_children, NULL);
}

/* ------------------------------------------------------- a plain fork */

/* In the child of a plain fork() from a green thread, under the patch: the
 * caller alone goes on (the ticker stays still), on a working hub (grove's
 * atfork handler): a patched read waits on it, getaddrinfo runs on the
 * rebuilt thread pool, usleep parks. Returns the failed step, or 0. */
static int child_checks(int fd)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    int before = ticks;
    char c;

    if (read(fd, &c, 1) != 1 || c != 'p')
        return 2;
    if (getaddrinfo("localhost", "80", &hints, &res) != 0)
        return 3;
    freeaddrinfo(res);
    if (usleep(20000) != 0 || ticks != before)
        return 4; /* the parent's ticker ran in the child */
    if (write(fd, "c", 1) != 1)
        return 5;
    return 0;
}

static void *plain_fork(void *arg)
{
    int sv[2], st;
    pid_t pid;
    char c;
    gr_t t;

    (void)arg;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    t = start_ticker();
    if ((pid = fork()) == 0)
        _exit(child_checks(sv[1]));
    cr_assert_gt(pid, 0);
    close(sv[1]);
    cr_assert_eq(write(sv[0], "p", 1), 1);
    cr_assert_eq(read(sv[0], &c, 1), 1, "the child never answered");
    cr_assert_eq(c, 'c');
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child failed step %d (status %#x)",
              WEXITSTATUS(st), st);
    stop_ticker(t);
    close(sv[0]);
    return NULL;
}

Test(patch_proc, a_plain_fork_gives_the_child_a_working_hub, .timeout = 30)
{
    require_patch();
    run_main(plain_fork, NULL);
}

/* ----------------------------------------- a handler without SA_RESTART */

/* libc's waits fail with EINTR when such a handler runs; in a green thread
 * the hub absorbs the interruption and the wait goes on. */
static atomic_int flood_stop, flooded;

static void on_usr1(int sig)
{
    (void)sig;
    atomic_fetch_add(&flooded, 1);
}

static void *flood_hub(void *arg)
{
    (void)arg;
    while (!atomic_load(&flood_stop)) {
        pthread_kill(hub_thread, SIGUSR1);
        usleep(100);
    }
    return NULL;
}

static void *waits_under_a_flood(void *arg)
{
    struct sigaction sa = {.sa_handler = on_usr1}, ign = {.sa_handler = SIG_IGN};
    struct timespec period = {0, PERIOD_MS * 1000000L};
    char line[16];
    sigset_t s;
    pthread_t t;
    pid_t pid;
    FILE *f;
    int st;

    (void)arg;
    hub_thread = pthread_self();
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    cr_assert_eq(sigaction(SIGUSR1, &sa, NULL), 0); /* no SA_RESTART */
    cr_assert_eq(pthread_create(&t, NULL, flood_hub, NULL), 0);
    pid = fork_ending(4, PERIOD_MS);
    cr_assert_eq(waitpid(pid, &st, 0), pid, "waitpid: %s", strerror(errno));
    cr_assert_eq(st, 4 << 8);
    assert_fails(sigtimedwait(&s, NULL, &period), EAGAIN);
    cr_assert_eq(system("sleep 0.2; exit 3"), 3 << 8, "system: %s", strerror(errno));
    cr_assert_not_null(f = popen("sleep 0.2; echo x", "r"));
    cr_assert_not_null(fgets(line, sizeof line, f), "fgets: %s", strerror(errno));
    cr_assert_str_eq(line, "x\n");
    cr_assert_eq(pclose(f), 0);
    atomic_store(&flood_stop, 1);
    pthread_join(t, NULL);
    sigaction(SIGUSR1, &ign, NULL);
    cr_assert_gt(atomic_load(&flooded), 10, "the flood was not handled");
    assert_no_children();
    return NULL;
}

Test(patch_proc, a_handler_without_sa_restart_does_not_end_the_waits, .timeout = 30)
{
    require_patch();
    run_main(waits_under_a_flood, NULL);
}

/* ------------------------------------------------------------- kills */

static void *system_of_a_long_sleep(void *arg)
{
    job *j = arg;

    j->result = system("exec sleep 10"); /* the kill reaches sleep itself */
    j->err = errno;
    return NULL;
}

static void *waitpid_of_a_slow_child(void *arg)
{
    job *j = arg;

    j->result = waitpid((pid_t)j->i, NULL, 0);
    j->err = errno;
    return NULL;
}

static void *kills(void *arg)
{
    job a = {0}, b = {0};
    pid_t pid = fork_ending(4, PERIOD_MS);
    gr_t ga, gb;
    int64_t t0 = now_ms();
    int st;

    (void)arg;
    b.i = (int)pid;
    ga = gr_spawn(system_of_a_long_sleep, &a);
    gb = gr_spawn(waitpid_of_a_slow_child, &b);
    gr_sleep(gr_now_update() + 50);
    gr_kill(ga);
    gr_kill(gb);
    cr_assert_eq(gr_join(ga, NULL, -1), 0);
    cr_assert_eq(gr_join(gb, NULL, -1), 0);
    cr_assert_lt(now_ms() - t0, 5000, "the killed system() waited for its shell");
    cr_assert_eq(a.result, -1);
    cr_assert_eq(a.err, ECANCELED, "system: %s", strerror(a.err));
    cr_assert_eq(b.result, -1);
    cr_assert_eq(b.err, ECANCELED, "waitpid: %s", strerror(b.err));
    cr_assert_eq(waitpid(pid, &st, 0), pid, "the child is still there to reap");
    cr_assert_eq(st, 4 << 8);
    assert_no_children();
    return NULL;
}

Test(patch_proc, killed_green_threads_get_ecanceled_and_leave_no_zombie, .timeout = 30)
{
    require_patch();
    run_main(kills, NULL);
}

/* ---------------------------------------------------------- contexts */

/* The stream of popen in a green thread is grove's (a cookie stream, no
 * descriptor); one made in main() is libc's, and closes right in a green
 * thread too. */
static void *green_popen(void *arg)
{
    FILE *root = arg, *f;
    char line[16];

    cr_assert(gr_patch_cooperative());
    cr_assert_not_null(f = popen("echo green; exit 2", "r"));
    cr_assert_eq(fileno(f), -1, "not grove's stream");
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert_str_eq(line, "green\n");
    cr_assert_eq(pclose(f), 2 << 8);
    cr_assert_not_null(fgets(line, sizeof line, root));
    cr_assert_str_eq(line, "root\n");
    cr_assert_eq(pclose(root), 3 << 8);
    return NULL;
}

Test(patch_proc, outside_green_threads_the_calls_are_libcs, .timeout = 30)
{
    FILE *f;
    sigset_t s;
    struct timespec ms30 = {0, 30000000};
    int64_t t0;
    pid_t pid;
    int st;

    require_patch();
    cr_assert(!gr_patch_cooperative());
    cr_assert_not_null(f = popen("echo root; exit 3", "r"));
    cr_assert_geq(fileno(f), 0, "main()'s popen is libc's");
    cr_assert_eq(system("exit 4"), 4 << 8);
    pid = fork_ending(6, 0);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    cr_assert_eq(st, 6 << 8);
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    t0 = now_ms();
    assert_fails(sigtimedwait(&s, NULL, &ms30), EAGAIN);
    cr_assert_geq(now_ms() - t0, 30);
    run_main(green_popen, f);
    assert_no_children();
}

/* ------------------------------------------------------ families off */

/* A call that blocks the OS thread lets no other green thread run. */
#define ASSERT_BLOCKED(call)                                                                       \
    do {                                                                                           \
        ticks = 0;                                                                                 \
        call;                                                                                      \
        cr_assert_eq(ticks, 0, "%s let the hub run: cooperative with its family off", #call);      \
    } while (0)

static void *families_off(void *arg)
{
    struct timespec ms30 = {0, 30000000};
    sigset_t s;
    char line[16];
    FILE *f;
    pid_t pid;
    int st;
    gr_t t;

    (void)arg;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    t = start_ticker();
    pid = fork_ending(6, 50);
    ASSERT_BLOCKED(cr_assert_eq(waitpid(pid, &st, 0), pid));
    cr_assert_eq(st, 6 << 8);
    ASSERT_BLOCKED(assert_fails(sigtimedwait(&s, NULL, &ms30), EAGAIN));
    ASSERT_BLOCKED(cr_assert_eq(system("sleep 0.05; exit 2"), 2 << 8));
    cr_assert_not_null(f = popen("echo libc", "r"));
    cr_assert_geq(fileno(f), 0, "popen's stream is grove's with the process family off");
    cr_assert_not_null(fgets(line, sizeof line, f));
    st = pclose(f);
    cr_assert_eq(st, 0, "pclose: %#x %s", st, strerror(errno));
    stop_ticker(t);
    assert_no_children();
    return NULL;
}

/* Switched off by gr_patch_set, or by GROVE_PATCH (the patch_env_proc_off
 * test runs this one with GROVE_PATCH=socket,select,time,dns). */
Test(patch_proc, without_their_families_the_calls_are_libcs, .timeout = 30)
{
    require_patch();
    if (!getenv("GROVE_PATCH"))
        cr_assert_eq(gr_patch_set(GR_PATCH_ALL & ~(GR_PATCH_SIGNAL | GR_PATCH_PROCESS)), 0);
    cr_assert_eq(gr_patch_families() & (GR_PATCH_SIGNAL | GR_PATCH_PROCESS), 0u);
    cr_assert_neq(gr_patch_families() & GR_PATCH_TIME, 0u);
    run_main(families_off, NULL);
}
