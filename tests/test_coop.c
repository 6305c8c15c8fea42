/* The cooperative libc calls of src/os/coop.h, for libgrove-patch: their
 * results against libc's own (return values, errno, status words,
 * siginfo), and that they park only the calling green thread (a ticker
 * green thread keeps running meanwhile). */
#include "common.h"

#include "os/coop.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

static int ticks;

static void *ticker(void *arg)
{
    (void)arg;
    while (gr_sleep(gr_now_update() + 1) == 0)
        ticks++;
    return NULL;
}

/* Run fn in a green thread with a ticker beside it; returns the ticks seen
 * meanwhile. */
static int with_ticker(gr_fn fn, void *arg)
{
    gr_t t = gr_spawn(ticker, NULL);
    int before = ticks;

    cr_assert_eq(gr_join(gr_spawn(fn, arg), NULL, -1), 0);
    gr_kill(t);
    gr_join(t, NULL, -1);
    return ticks - before;
}

static sigset_t one(int sig)
{
    sigset_t s;

    sigemptyset(&s);
    sigaddset(&s, sig);
    return s;
}

static int blocked(int sig)
{
    sigset_t m;

    pthread_sigmask(SIG_BLOCK, NULL, &m);
    return sigismember(&m, sig);
}

/* ---------------------------------------------------------- sigtimedwait */

static atomic_int handled;

static void count_handler(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

static void on(int sig, void (*fn)(int))
{
    struct sigaction sa = {.sa_handler = fn, .sa_flags = SA_RESTART};

    sigaction(sig, &sa, NULL);
}

typedef struct delayed {
    int sig, ms, value;
} delayed;

/* Another OS thread queues a signal to the process after ms. */
static void *send_later(void *arg)
{
    delayed *d = arg;
    sigset_t all;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL); /* delivered to the hub's thread */
    usleep((useconds_t)d->ms * 1000);
    sigqueue(getpid(), d->sig, (union sigval){.sival_int = d->value});
    return NULL;
}

static pthread_t later(delayed *d)
{
    pthread_t t;

    cr_assert_eq(pthread_create(&t, NULL, send_later, d), 0);
    return t;
}

static void *waits_for_usr1(void *arg)
{
    sigset_t s = one(SIGUSR1);
    siginfo_t si;

    (void)arg;
    cr_assert_eq(gr__sigtimedwait_coop(&s, &si, NULL), SIGUSR1, "%s", strerror(errno));
    cr_assert_eq(si.si_code, SI_QUEUE);
    cr_assert_eq(si.si_value.sival_int, 5);
    cr_assert_eq(si.si_pid, getpid());
    return NULL;
}

static void *sigtimedwait_as_libc(void *arg)
{
    sigset_t s = one(SIGUSR1);
    struct timespec zero = {0, 0}, ms50 = {0, 50000000}, bad = {0, -1};
    siginfo_t a, b;
    delayed d = {SIGUSR1, 100, 5};
    pthread_t t;
    int64_t t0;

    (void)arg;
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    /* Pending already: the same siginfo as libc's (tkill folded to SI_USER). */
    raise(SIGUSR1);
    cr_assert_eq(sigtimedwait(&s, &a, &zero), SIGUSR1);
    raise(SIGUSR1);
    cr_assert_eq(gr__sigtimedwait_coop(&s, &b, &zero), SIGUSR1);
    cr_assert_eq(b.si_code, a.si_code);
    cr_assert_eq(b.si_code, SI_USER);
    cr_assert_eq(b.si_pid, a.si_pid);
    cr_assert_eq(b.si_uid, a.si_uid);
    /* Nothing comes: EAGAIN at the time-out, not before. */
    t0 = gr_now_update();
    assert_fails(gr__sigtimedwait_coop(&s, &b, &ms50), EAGAIN);
    cr_assert_geq(gr_now_update() - t0, 50);
    assert_fails(sigtimedwait(&s, &a, &zero), EAGAIN);
    assert_fails(gr__sigtimedwait_coop(&s, &b, &bad), EINVAL);
    assert_fails(sigtimedwait(&s, &a, &bad), EINVAL);
    /* Sent while the thread waits: the others run meanwhile. */
    t = later(&d);
    cr_assert_gt(with_ticker(waits_for_usr1, NULL), 30);
    pthread_join(t, NULL);
    cr_assert_eq(blocked(SIGUSR1), 1, "the program's mask is left as it was");
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    return NULL;
}

Test(coop, sigtimedwait_as_libc, .timeout = 20)
{
    run_main(sigtimedwait_as_libc, NULL);
}

static void *sigwait_forms(void *arg)
{
    sigset_t s = one(SIGUSR2);
    siginfo_t si;
    int sig = 0;

    (void)arg;
    /* Not blocked by the program, a handler installed: while waited for,
     * it goes to the wait (as the kernel's sigtimedwait takes it), not to
     * the handler; afterwards it is unblocked again. */
    on(SIGUSR2, count_handler);
    delayed d = {SIGUSR2, 50, 1};
    pthread_t t = later(&d);

    cr_assert_eq(gr__sigwait_coop(&s, &sig), 0);
    cr_assert_eq(sig, SIGUSR2);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&handled), 0);
    cr_assert_eq(blocked(SIGUSR2), 0);
    t = later(&d);
    cr_assert_eq(gr__sigwaitinfo_coop(&s, &si), SIGUSR2);
    cr_assert_eq(si.si_code, SI_QUEUE);
    pthread_join(t, NULL);
    on(SIGUSR2, SIG_DFL);
    return NULL;
}

Test(coop, sigwait_and_sigwaitinfo, .timeout = 20)
{
    run_main(sigwait_forms, NULL);
}

static void *killed_waiter(void *arg)
{
    sigset_t s = one(SIGUSR1);

    (void)arg;
    return (void *)(intptr_t)(gr__sigtimedwait_coop(&s, NULL, NULL) == -1 && errno == ECANCELED);
}

static void *kill_a_signal_waiter(void *arg)
{
    gr_t w = gr_spawn(killed_waiter, NULL);
    void *r;

    (void)arg;
    gr_yield(); /* w waits */
    gr_kill(w);
    cr_assert_eq(gr_join(w, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 1, "a killed wait fails with ECANCELED");
    cr_assert_eq(blocked(SIGUSR1), 0, "and unblocks what it blocked");
    return NULL;
}

Test(coop, a_killed_signal_wait, .timeout = 10)
{
    run_main(kill_a_signal_waiter, NULL);
}

/* ---------------------------------------------------- sigsuspend, pause */

static void *suspends(void *arg)
{
    sigset_t *mask = arg;

    return (void *)(intptr_t)(gr__sigsuspend_coop(mask) == -1 && errno == EINTR);
}

static void *sigsuspend_as_libc(void *arg)
{
    sigset_t usr1 = one(SIGUSR1), old, mask;
    delayed d = {SIGUSR1, 100, 0};
    pthread_t t;
    void *r;
    gr_t g;

    (void)arg;
    on(SIGUSR1, count_handler);
    pthread_sigmask(SIG_BLOCK, &usr1, &old);
    mask = old;
    sigdelset(&mask, SIGUSR1);
    /* libc's, with the signal pending: the handler runs, -1/EINTR. */
    raise(SIGUSR1);
    assert_fails(sigsuspend(&mask), EINTR);
    cr_assert_eq(atomic_load(&handled), 1);
    raise(SIGUSR1);
    assert_fails(gr__sigsuspend_coop(&mask), EINTR);
    cr_assert_eq(atomic_load(&handled), 2);
    /* Sent later: only the caller waits. */
    t = later(&d);
    g = gr_spawn(suspends, &mask);
    gr_t tk = gr_spawn(ticker, NULL);
    int before = ticks;

    cr_assert_eq(gr_join(g, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 1);
    cr_assert_gt(ticks - before, 30);
    gr_kill(tk);
    gr_join(tk, NULL, -1);
    pthread_join(t, NULL);
    cr_assert_eq(atomic_load(&handled), 3);
    cr_assert_eq(blocked(SIGUSR1), 1, "the mask is back");
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    on(SIGUSR1, SIG_DFL);
    return NULL;
}

Test(coop, sigsuspend_as_libc, .timeout = 20)
{
    run_main(sigsuspend_as_libc, NULL);
}

static int pause_eintr;

static void *pauses(void *arg)
{
    (void)arg;
    pause_eintr = gr__pause_coop() == -1 && errno == EINTR;
    return NULL;
}

static void *pause_parks(void *arg)
{
    delayed d = {SIGUSR2, 100, 0};
    pthread_t t;
    int ran;

    (void)arg;
    on(SIGUSR2, count_handler);
    on(SIGCHLD, SIG_DFL); /* ignored by default: would not end a pause */
    t = later(&d);
    ran = with_ticker(pauses, NULL);
    pthread_join(t, NULL);
    cr_assert_gt(ran, 30);
    cr_assert(pause_eintr, "pause returns -1/EINTR");
    cr_assert_eq(atomic_load(&handled), 1, "the handler ran");
    cr_assert_eq(blocked(SIGUSR2), 0);
    on(SIGUSR2, SIG_DFL);
    return NULL;
}

Test(coop, pause_returns_eintr_after_a_handler, .timeout = 20)
{
    run_main(pause_parks, NULL);
}

/* ----------------------------------------------------------------- waits */

static pid_t child_exits(int code, int ms)
{
    pid_t pid = fork();

    cr_assert_geq(pid, 0);
    if (pid == 0) {
        usleep((useconds_t)ms * 1000);
        _exit(code);
    }
    return pid;
}

static pid_t child_killed(int sig)
{
    pid_t pid = fork();

    if (pid == 0) {
        raise(sig);
        _exit(0);
    }
    return pid;
}

static void *waitpid_for(void *arg)
{
    pid_t pid = (pid_t)(intptr_t)arg;
    int st;

    if (gr__waitpid_coop(pid, &st, 0) != pid)
        return (void *)-1;
    return (void *)(intptr_t)st;
}

static void *waits_as_libc(void *arg)
{
    pid_t a, b;
    int sa, sb;
    struct rusage ru;
    siginfo_t ia, ib;

    (void)arg;
    /* Exit codes and signals: the same status words. */
    a = child_exits(3, 0);
    b = child_exits(3, 0);
    cr_assert_eq(waitpid(a, &sa, 0), a);
    cr_assert_eq(gr__waitpid_coop(b, &sb, 0), b);
    cr_assert_eq(sb, sa);
    cr_assert(WIFEXITED(sb) && WEXITSTATUS(sb) == 3);
    a = child_killed(SIGTERM);
    b = child_killed(SIGTERM);
    cr_assert_eq(waitpid(a, &sa, 0), a);
    cr_assert_eq(gr__wait4_coop(b, &sb, 0, &ru), b);
    cr_assert_eq(sb, sa);
    cr_assert(WIFSIGNALED(sb) && WTERMSIG(sb) == SIGTERM);
    cr_assert_gt(ru.ru_maxrss, 0, "wait4's rusage");
    /* Errors as libc's. */
    assert_fails(waitpid(1, &sa, 0), ECHILD);
    assert_fails(gr__waitpid_coop(1, &sb, 0), ECHILD);
    assert_fails(waitpid(-1, &sa, 0), ECHILD);
    assert_fails(gr__wait_coop(&sb), ECHILD);
    assert_fails(waitpid(-1, &sa, 0x4000000), EINVAL);
    assert_fails(gr__waitpid_coop(-1, &sb, 0x4000000), EINVAL);
    /* WNOHANG on a running child: 0. */
    a = child_exits(0, 200);
    cr_assert_eq(gr__waitpid_coop(a, &sb, WNOHANG), 0);
    cr_assert_eq(waitpid(a, &sa, WNOHANG), 0);
    /* waitid: the same siginfo. */
    cr_assert_eq(gr__waitid_coop(P_PID, (id_t)a, &ib, WEXITED), 0);
    b = child_exits(0, 0);
    cr_assert_eq(waitid(P_PID, (id_t)b, &ia, WEXITED), 0);
    cr_assert_eq(ib.si_signo, ia.si_signo);
    cr_assert_eq(ib.si_code, ia.si_code);
    cr_assert_eq(ib.si_status, ia.si_status);
    cr_assert_eq(ib.si_pid, a);
    cr_assert_eq(gr__waitid_coop(P_ALL, 0, &ib, WEXITED | WNOHANG), -1);
    cr_assert_eq(errno, ECHILD);
    return NULL;
}

Test(coop, waits_as_libc, .timeout = 20)
{
    run_main(waits_as_libc, NULL);
}

static void *waits_park(void *arg)
{
    pid_t pid = child_exits(4, 200);
    int st = 0, pfd;
    siginfo_t si;
    void *r;

    (void)arg;
    /* One child: parked on its pidfd (or the timer, polled). */
    gr_t g = gr_spawn(waitpid_for, (void *)(intptr_t)pid);
    gr_t t = gr_spawn(ticker, NULL);
    int before = ticks;

    cr_assert_eq(gr_join(g, &r, -1), 0);
    cr_assert_gt(ticks - before, 50);
    cr_assert(WIFEXITED((int)(intptr_t)r) && WEXITSTATUS((int)(intptr_t)r) == 4);
    /* Any child (polled), a stopped child, a pidfd. */
    pid = child_exits(5, 100);
    cr_assert_eq(gr__wait_coop(&st), pid);
    cr_assert_eq(WEXITSTATUS(st), 5);
    pid = child_killed(SIGSTOP);
    cr_assert_eq(gr__waitpid_coop(pid, &st, WUNTRACED), pid);
    cr_assert(WIFSTOPPED(st) && WSTOPSIG(st) == SIGSTOP, "status %#x", st);
    kill(pid, SIGKILL);
    cr_assert_eq(gr__waitpid_coop(pid, &st, 0), pid);
    cr_assert(WIFSIGNALED(st));
    pid = child_exits(6, 100);
    pfd = pidfd_open(pid, 0);
    cr_assert_eq(gr__waitid_coop(P_PIDFD, (id_t)pfd, &si, WEXITED), 0);
    cr_assert_eq(si.si_pid, pid);
    cr_assert_eq(si.si_status, 6);
    close(pfd);
    gr_kill(t);
    gr_join(t, NULL, -1);
    return NULL;
}

Test(coop, waits_park_only_the_caller, .timeout = 20)
{
    run_main(waits_park, NULL);
}

Test(coop, waits_park_only_the_caller_polled, .timeout = 20)
{
    setenv("GROVE_PIDFD", "0", 1);
    run_main(waits_park, NULL);
}

static void *killed_child_waiter(void *arg)
{
    return (void *)(intptr_t)(gr__waitpid_coop((pid_t)(intptr_t)arg, NULL, 0) == -1 &&
                              errno == ECANCELED);
}

static void *kill_a_child_waiter(void *arg)
{
    pid_t pid = child_exits(0, 100);
    gr_t w = gr_spawn(killed_child_waiter, (void *)(intptr_t)pid);
    void *r;
    int st;

    (void)arg;
    gr_yield();
    gr_kill(w);
    cr_assert_eq(gr_join(w, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 1);
    cr_assert_eq(gr__waitpid_coop(pid, &st, 0), pid, "the child is still there to reap");
    return NULL;
}

Test(coop, a_killed_child_wait, .timeout = 10)
{
    run_main(kill_a_child_waiter, NULL);
}

/* Outside a green thread: libc's blocking behaviour, no hub needed. */
Test(coop, outside_a_green_thread_they_block_as_libc, .timeout = 10)
{
    pid_t pid = child_exits(9, 20);
    sigset_t s = one(SIGUSR1);
    struct timespec ms10 = {0, 10000000};
    int st;

    cr_assert_eq(gr__waitpid_coop(pid, &st, 0), pid);
    cr_assert_eq(WEXITSTATUS(st), 9);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    assert_fails(gr__sigtimedwait_coop(&s, NULL, &ms10), EAGAIN);
    cr_assert_eq(gr__system_coop("exit 2"), 2 << 8);
}

/* ---------------------------------------------------------------- system */

static void *system_as_libc(void *arg)
{
    const char *lines[] = {"exit 3", "-x", "kill -TERM $$", "true", "exec /nonexistent"};
    char a[64], b[64];
    int fa, fb;

    (void)arg;
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++) {
        int want = system(lines[i]), got = gr__system_coop(lines[i]);

        cr_assert_eq(got, want, "system(\"%s\"): %#x, libc's %#x", lines[i], got, want);
    }
    cr_assert_eq(gr__system_coop(NULL), system(NULL));
    /* The shell's signal state, as libc's leaves it: compare /proc (grep
     * execs in the shell's place: a shell that forks may read its status
     * while it blocks signals around the fork). */
    snprintf(a, sizeof a, "/tmp/grove-sys-%d-a", (int)getpid());
    snprintf(b, sizeof b, "/tmp/grove-sys-%d-b", (int)getpid());
    char cmd[160];

    snprintf(cmd, sizeof cmd, "exec grep -E '^Sig(Blk|Ign|Cgt)' /proc/$$/status > %s", a);
    system(cmd);
    snprintf(cmd, sizeof cmd, "exec grep -E '^Sig(Blk|Ign|Cgt)' /proc/$$/status > %s", b);
    gr__system_coop(cmd);
    char ta[256] = {0}, tb[256] = {0};

    fa = open(a, O_RDONLY);
    fb = open(b, O_RDONLY);
    cr_assert_gt(read(fa, ta, sizeof ta - 1), 0);
    cr_assert_gt(read(fb, tb, sizeof tb - 1), 0);
    cr_assert_str_eq(tb, ta);
    close(fa);
    close(fb);
    unlink(a);
    unlink(b);
    return NULL;
}

Test(coop, system_as_libc, .timeout = 20, .init = cr_redirect_stderr)
{
    run_main(system_as_libc, NULL);
}

static int sigint_ignored_meanwhile;

static void *system_sleeps(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)gr__system_coop("sleep 0.2; exit 1");
}

static void *system_parks(void *arg)
{
    struct sigaction cur;
    gr_t g = gr_spawn(system_sleeps, NULL);
    gr_t t = gr_spawn(ticker, NULL);
    int before = ticks;
    void *r;

    (void)arg;
    gr_sleep(gr_now_update() + 50);
    sigaction(SIGINT, NULL, &cur);
    sigint_ignored_meanwhile = cur.sa_handler == SIG_IGN;
    cr_assert_eq(gr_join(g, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 1 << 8);
    cr_assert_gt(ticks - before, 50);
    cr_assert(sigint_ignored_meanwhile, "SIGINT ignored while the shell runs");
    sigaction(SIGINT, NULL, &cur);
    cr_assert_eq(cur.sa_handler, SIG_DFL, "and restored after");
    cr_assert_eq(blocked(SIGCHLD), 0);
    gr_kill(t);
    gr_join(t, NULL, -1);
    return NULL;
}

Test(coop, system_parks_only_the_caller, .timeout = 20)
{
    run_main(system_parks, NULL);
}

/* ----------------------------------------------------------------- popen */

static void *popen_as_libc(void *arg)
{
    const char *cmd = "printf 'one\\ntwo\\n'; exit 4";
    char la[64] = {0}, lb[64] = {0};
    FILE *a = popen(cmd, "r"), *b = gr__popen_coop(cmd, "r");
    size_t na, nb;

    (void)arg;
    cr_assert_not_null(b, "%s", strerror(errno));
    na = fread(la, 1, sizeof la - 1, a);
    nb = fread(lb, 1, sizeof lb - 1, b);
    cr_assert_eq(nb, na);
    cr_assert_str_eq(lb, la);
    cr_assert_eq(gr__pclose_coop(b), pclose(a));
    /* Writing, and bad modes. */
    char path[64], cat[96], got[32] = {0};
    int fd;

    snprintf(path, sizeof path, "/tmp/grove-popen-%d", (int)getpid());
    snprintf(cat, sizeof cat, "cat > %s", path);
    b = gr__popen_coop(cat, "we");
    cr_assert_not_null(b);
    cr_assert_eq(fileno(b), -1, "a cookie stream has no descriptor");
    cr_assert_geq(fputs("written\n", b), 0);
    cr_assert_eq(gr__pclose_coop(b), 0);
    cr_assert_geq(fd = open(path, O_RDONLY), 0);
    cr_assert_eq(read(fd, got, sizeof got - 1), 8);
    cr_assert_str_eq(got, "written\n");
    close(fd);
    unlink(path);
    const char *bad[] = {"rw", "x", "", "r+"};

    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        errno = 0;
        cr_assert_null(popen("true", bad[i]));
        int want = errno;

        errno = 0;
        cr_assert_null(gr__popen_coop("true", bad[i]), "mode \"%s\"", bad[i]);
        cr_assert_eq(errno, want, "mode \"%s\"", bad[i]);
    }
    /* pclose of a stream popen did not make: fclose, as libc's. */
    cr_assert_eq(gr__pclose_coop(fopen("/dev/null", "r")), 0);
    return NULL;
}

Test(coop, popen_and_pclose_as_libc, .timeout = 20)
{
    run_main(popen_as_libc, NULL);
}

static void *reads_slow_popen(void *arg)
{
    FILE *f = gr__popen_coop("sleep 0.2; echo hi", "r");
    char line[16] = {0};

    (void)arg;
    cr_assert_not_null(fgets(line, sizeof line, f));
    cr_assert_str_eq(line, "hi\n");
    cr_assert_eq(gr__pclose_coop(f), 0);
    return NULL;
}

static void *popen_parks(void *arg)
{
    FILE *w, *r;
    int64_t t0;

    (void)arg;
    cr_assert_gt(with_ticker(reads_slow_popen, NULL), 50);
    /* A later child does not inherit an earlier stream's descriptor: else
     * cat would not see its end while sleep runs. */
    w = gr__popen_coop("cat >/dev/null", "w");
    r = gr__popen_coop("sleep 1", "r");
    t0 = gr_now_update();
    cr_assert_eq(gr__pclose_coop(w), 0);
    cr_assert_lt(gr_now_update() - t0, 500, "cat saw its end at once");
    cr_assert_eq(gr__pclose_coop(r), 0);
    return NULL;
}

Test(coop, popen_streams_park_only_the_caller, .timeout = 20)
{
    run_main(popen_parks, NULL);
}
