/* sigwait, sigwaitinfo, sigtimedwait, sigsuspend and pause for green
 * threads (contract in coop.h). The answer always comes from the kernel:
 * rt_sigtimedwait with a zero time-out takes a pending signal exactly as
 * the real call would; between two tries the green thread waits on a
 * signalfd of the set, which the hub's epoll reports readable when one of
 * the signals is pending for this thread or the process. A signal stays
 * pending only while blocked, so the signals waited for are blocked in the
 * OS thread during the wait (the kernel does the same for sigtimedwait),
 * with a count per signal so that overlapping waits of several green
 * threads unblock only when the last ends. */
#define _GNU_SOURCE
#include "os/coop.h"

#include "core/core.h"

#include <pthread.h>
#include <stdint.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SIGSET_BYTES (_NSIG / 8)

/* Waits of this OS thread holding each signal blocked, and the signals
 * they blocked (those the thread did not block already). */
static __thread unsigned short held[_NSIG];
static __thread sigset_t blocked_here;

static int raw_sigtimedwait(const sigset_t *set, siginfo_t *info, const struct timespec *ts)
{
    int r = (int)syscall(SYS_rt_sigtimedwait, set, info, ts, SIGSET_BYTES);

    /* glibc folds tkill's code into SI_USER (raise uses tkill). */
    if (r > 0 && info && info->si_code == SI_TKILL)
        info->si_code = SI_USER;
    return r;
}

static int take_now(const sigset_t *set, siginfo_t *info)
{
    static const struct timespec zero;

    return raw_sigtimedwait(set, info, &zero);
}

static void hold(const sigset_t *set)
{
    sigset_t cur, add;

    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    sigemptyset(&add);
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sigismember(set, sig) != 1 || held[sig]++ || sigismember(&cur, sig) == 1)
            continue;
        sigaddset(&add, sig);
        sigaddset(&blocked_here, sig);
    }
    pthread_sigmask(SIG_BLOCK, &add, NULL);
}

static void release(const sigset_t *set)
{
    sigset_t del;

    sigemptyset(&del);
    for (int sig = 1; sig < _NSIG; sig++) {
        if (sigismember(set, sig) != 1 || --held[sig] || sigismember(&blocked_here, sig) != 1)
            continue;
        sigaddset(&del, sig);
        sigdelset(&blocked_here, sig);
    }
    pthread_sigmask(SIG_UNBLOCK, &del, NULL);
}

/* The thread's mask as the program set it: without the signals that the
 * waits in progress blocked. */
static void program_mask(sigset_t *m)
{
    pthread_sigmask(SIG_BLOCK, NULL, m);
    for (int sig = 1; sig < _NSIG; sig++)
        if (sigismember(&blocked_here, sig) == 1)
            sigdelset(m, sig);
}

static int ts_valid(const struct timespec *ts)
{
    return ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000;
}

/* An absolute deadline in ms, rounded up so the call never ends early. */
static int64_t deadline_in(const struct timespec *ts)
{
    int64_t now = gr_now_update(), ms;

    if (!ts)
        return -1;
    if (ts->tv_sec > (INT64_MAX - now) / 1000 - 1)
        return -1; /* centuries: forever */
    ms = (int64_t)ts->tv_sec * 1000 + (ts->tv_nsec + 999999) / 1000000;
    return now + ms;
}

/* Wait for the signalfd to be readable; without one (EMFILE), sleep a
 * little, never past the deadline. 0, or -1 with errno (ETIMEDOUT...). */
#define POLL_MS 5
static int wait_a_while(int sfd, int64_t deadline)
{
    int64_t now = gr_now_update();

    if (sfd >= 0)
        return gr_wait_fd(sfd, GR_READ, deadline) < 0 ? -1 : 0;
    if (deadline >= 0 && deadline <= now) {
        errno = ETIMEDOUT;
        return -1;
    }
    return gr_sleep(deadline >= 0 && deadline < now + POLL_MS ? deadline : now + POLL_MS);
}

/* Park until one of set is pending (ready() says whether one is), or the
 * deadline: then -1/ETIMEDOUT. Returns 0 or -1 with errno (ECANCELED...),
 * and ready()'s last answer in *result. */
static int park_for(const sigset_t *set, int (*ready)(const sigset_t *, void *), void *ctx,
                    int *result, int64_t deadline)
{
    int sfd = signalfd(-1, set, SFD_NONBLOCK | SFD_CLOEXEC), rc;

    while (!(rc = ready(set, ctx))) {
        if (wait_a_while(sfd, deadline) != 0) {
            int err = errno;

            /* One that came just as the deadline did counts. */
            if (err != ETIMEDOUT || !(rc = ready(set, ctx))) {
                rc = -1;
                errno = err;
            }
            break;
        }
    }
    if (sfd >= 0) {
        int err = errno;

        gr_close(sfd);
        errno = err;
    }
    *result = rc;
    return rc < 0 ? -1 : 0;
}

/* ----------------------------------------------------------- sigtimedwait */

typedef struct take_ctx {
    siginfo_t *info;
    int sig;
} take_ctx;

/* ready(): 1 once a signal is taken (c->sig), 0 while none is pending, -1
 * with errno on an error of the call. */
static int try_take(const sigset_t *set, void *ctx)
{
    take_ctx *c = ctx;
    int r = take_now(set, c->info);

    if (r > 0) {
        c->sig = r;
        return 1;
    }
    return errno == EAGAIN || errno == EINTR ? 0 : -1;
}

int gr__sigtimedwait_coop(const sigset_t *set, siginfo_t *info, const struct timespec *timeout)
{
    int64_t deadline;
    take_ctx c = {info, 0};
    int err = errno, r, rc;

    if (!gr__in_green_thread() ||
        (timeout && (!ts_valid(timeout) || (!timeout->tv_sec && !timeout->tv_nsec))))
        return raw_sigtimedwait(set, info, timeout);
    if ((r = take_now(set, info)) > 0 || errno != EAGAIN)
        return r;
    deadline = deadline_in(timeout);
    hold(set);
    r = park_for(set, try_take, &c, &rc, deadline);
    release(set);
    if (r == 0) {
        errno = err;
        return c.sig;
    }
    if (errno == ETIMEDOUT && deadline >= 0 && gr_now_update() >= deadline)
        errno = EAGAIN; /* the call's own time-out, as the kernel reports it */
    return -1;
}

int gr__sigwaitinfo_coop(const sigset_t *set, siginfo_t *info)
{
    return gr__sigtimedwait_coop(set, info, NULL);
}

int gr__sigwait_coop(const sigset_t *set, int *sig)
{
    siginfo_t si;
    int err = errno, r;

    while ((r = gr__sigtimedwait_coop(set, &si, NULL)) < 0 && errno == EINTR) {
    }
    if (r < 0) {
        r = errno;
        errno = err;
        return r;
    }
    *sig = r;
    return 0;
}

/* -------------------------------------------------------------- sigsuspend */

/* Would delivering sig end a sigsuspend: does it run a handler or end the
 * process (not ignored; not a default of ignore, stop or continue)? */
static int ends_suspend(int sig)
{
    struct sigaction sa;

    if (sig == SIGKILL || sig == SIGSTOP || (sig >= 32 && sig < SIGRTMIN) ||
        sigaction(sig, NULL, &sa) != 0 || sa.sa_handler == SIG_IGN)
        return 0;
    if (sa.sa_handler != SIG_DFL)
        return 1;
    switch (sig) {
    case SIGCHLD:
    case SIGURG:
    case SIGWINCH:
    case SIGCONT:
    case SIGTSTP:
    case SIGTTIN:
    case SIGTTOU:
        return 0;
    default:
        return 1;
    }
}

static int any_pending(const sigset_t *set, void *ctx)
{
    sigset_t p;

    (void)ctx;
    sigpending(&p);
    for (int sig = 1; sig < _NSIG; sig++)
        if (sigismember(set, sig) == 1 && sigismember(&p, sig) == 1)
            return 1;
    return 0;
}

int gr__sigsuspend_coop(const sigset_t *mask)
{
    sigset_t wake, cur;
    int rc, r, err;

    if (!gr__in_green_thread() || !mask)
        return (int)syscall(SYS_rt_sigsuspend, mask, SIGSET_BYTES);
    sigemptyset(&wake);
    for (int sig = 1; sig < _NSIG; sig++)
        if (sigismember(mask, sig) != 1 && ends_suspend(sig))
            sigaddset(&wake, sig);
    if (sigisemptyset(&wake)) {
        /* Nothing can end it but a kill (as sigsuspend, whom only the end
         * of the process ends). */
        while (gr_sleep(-1) == 0) {
        }
        return -1;
    }
    hold(&wake);
    r = park_for(&wake, any_pending, NULL, &rc, -1);
    err = errno;
    if (r == 0) {
        /* Let the pending signals in as sigsuspend would: their handlers
         * run before this call returns. */
        pthread_sigmask(SIG_SETMASK, mask, &cur);
        pthread_sigmask(SIG_SETMASK, &cur, NULL);
        err = EINTR;
    }
    release(&wake);
    errno = err;
    return -1;
}

int gr__pause_coop(void)
{
    sigset_t m;

    program_mask(&m);
    return gr__sigsuspend_coop(&m);
}
