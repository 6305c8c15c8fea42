/* poll, select and epoll_wait in green threads. The answer always comes
 * from the real call made with a zero time-out (so results, revents,
 * POLLNVAL, EBADF, EINTR under a signal mask are exactly libc's); between
 * two looks the green thread waits on the hub for any of the descriptors,
 * its deadline, or a kill. A time-out of zero is the real call as it is. */
#include "patch/io.h"

#include <stdlib.h>
#include <string.h>

static const struct timespec zero_ts = {0, 0};

/* Wait on the hub until one of fds may be ready (gr_poll, which looks with
 * poll itself) or deadline. Returns 1 to look again, 0 at the deadline,
 * -1 with errno (ECANCELED, ETIMEDOUT from a Timeout region, ENOMEM). A
 * descriptor closed under the wait makes the next look report it. */
static int wait_any(struct pollfd *fds, nfds_t nfds, int64_t deadline)
{
    int n = gr__glue_poll(fds, nfds, deadline);

    if (n > 0 || (n < 0 && errno == EBADF))
        return 1;
    return n;
}

/* -------------------------------------------------------------- poll */

/* ppoll's time-out as an absolute ms deadline (-1 for none). */
static int64_t ts_deadline(const struct timespec *ts)
{
    return ts ? gr__deadline_in_ts(ts) : -1;
}

static int ppoll_coop(struct pollfd *fds, nfds_t nfds, int64_t deadline, const __sigset_t *ss)
{
    int err0 = errno;

    for (;;) {
        int n = gr__orig.ppoll(fds, nfds, &zero_ts, ss), w;

        if (n != 0)
            return n;
        if ((w = wait_any(fds, nfds, deadline)) <= 0) {
            if (w < 0)
                return -1;
            /* The deadline: one last look, which is the answer. */
            n = gr__orig.ppoll(fds, nfds, &zero_ts, ss);
            if (n >= 0)
                errno = err0;
            return n;
        }
        errno = err0;
    }
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout)
{
    ORIG_OR(poll, (int)syscall(
                      SYS_ppoll, fds, nfds,
                      timeout < 0 ? NULL
                                  : &(struct timespec){timeout / 1000, (timeout % 1000) * 1000000L},
                      NULL, 8));
    if (timeout == 0 || !gr__patch_coop(GR_PATCH_SELECT))
        return gr__orig.poll(fds, nfds, timeout);
    return ppoll_coop(fds, nfds, gr__deadline_in_ms(timeout), NULL);
}

int __poll_chk(struct pollfd *fds, nfds_t nfds, int timeout, __SIZE_TYPE__ fdslen)
{
    if (fdslen / sizeof(*fds) < nfds)
        __chk_fail();
    return poll(fds, nfds, timeout);
}

int ppoll(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout, const __sigset_t *ss)
{
    ORIG_OR(ppoll, (int)syscall(SYS_ppoll, fds, nfds, timeout, ss, 8));
    if ((timeout && !timeout->tv_sec && !timeout->tv_nsec) || !gr__patch_coop(GR_PATCH_SELECT))
        return gr__orig.ppoll(fds, nfds, timeout, ss);
    if (timeout && (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000))
        return gr__orig.ppoll(fds, nfds, timeout, ss); /* EINVAL at once */
    return ppoll_coop(fds, nfds, ts_deadline(timeout), ss);
}

int __ppoll_chk(struct pollfd *fds, nfds_t nfds, const struct timespec *timeout,
                const __sigset_t *ss, __SIZE_TYPE__ fdslen)
{
    if (fdslen / sizeof(*fds) < nfds)
        __chk_fail();
    return ppoll(fds, nfds, timeout, ss);
}

/* ------------------------------------------------------------ select */

typedef struct sel {
    int nfds;
    fd_set *r, *w, *e;
    fd_set in_r, in_w, in_e; /* the sets as given, restored before each look */
    struct pollfd *pfd;
    nfds_t npfd;
} sel;

static void sel_restore(sel *s)
{
    if (s->r)
        *s->r = s->in_r;
    if (s->w)
        *s->w = s->in_w;
    if (s->e)
        *s->e = s->in_e;
}

/* The pollfds to wait on for the sets. -1/ENOMEM. */
static int sel_pollfds(sel *s, struct pollfd *local, nfds_t nlocal)
{
    nfds_t n = 0;

    for (int fd = 0; fd < s->nfds && fd < FD_SETSIZE; fd++)
        n += (s->r && FD_ISSET(fd, &s->in_r)) || (s->w && FD_ISSET(fd, &s->in_w)) ||
             (s->e && FD_ISSET(fd, &s->in_e));
    s->pfd = n <= nlocal ? local : malloc(n * sizeof *s->pfd);
    if (!s->pfd) {
        errno = ENOMEM;
        return -1;
    }
    s->npfd = 0;
    for (int fd = 0; fd < s->nfds && fd < FD_SETSIZE; fd++) {
        short ev = (short)((s->r && FD_ISSET(fd, &s->in_r) ? POLLIN : 0) |
                           (s->w && FD_ISSET(fd, &s->in_w) ? POLLOUT : 0) |
                           (s->e && FD_ISSET(fd, &s->in_e) ? POLLPRI : 0));

        if (ev)
            s->pfd[s->npfd++] = (struct pollfd){.fd = fd, .events = ev};
    }
    return 0;
}

/* pselect's loop: looks with the real pselect and a zero time-out. */
static int select_coop(sel *s, int64_t deadline, const __sigset_t *mask)
{
    struct pollfd local[32];
    int err0 = errno, n, w;

    if (sel_pollfds(s, local, 32) < 0)
        return -1;
    for (;;) {
        sel_restore(s);
        if ((n = gr__orig.pselect(s->nfds, s->r, s->w, s->e, &zero_ts, mask)) != 0)
            break;
        if (s->npfd == 0)
            w = gr__glue_sleep(deadline) == 0 ? 0 : -1; /* select as a sleep */
        else
            w = wait_any(s->pfd, s->npfd, deadline);
        if (w < 0) {
            n = -1;
            break;
        }
        if (w > 0) /* select ignores what the kernel's table cannot hold: so do we */
            for (nfds_t i = 0; i < s->npfd; i++)
                if (s->pfd[i].revents & POLLNVAL)
                    s->pfd[i].fd = -1;
        if (w == 0) {
            sel_restore(s);
            n = gr__orig.pselect(s->nfds, s->r, s->w, s->e, &zero_ts, mask);
            break;
        }
    }
    if (s->pfd != local) {
        int e = errno;

        free(s->pfd);
        errno = e;
    }
    if (n >= 0)
        errno = err0;
    return n;
}

static void sel_init(sel *s, int nfds, fd_set *r, fd_set *w, fd_set *e)
{
    *s = (sel){.nfds = nfds, .r = r, .w = w, .e = e};
    if (r)
        s->in_r = *r;
    if (w)
        s->in_w = *w;
    if (e)
        s->in_e = *e;
}

int select(int nfds, fd_set *restrict readfds, fd_set *restrict writefds,
           fd_set *restrict exceptfds, struct timeval *restrict timeout)
{
    int64_t deadline = -1;
    struct timespec ts;
    sel s;
    int n;

    ORIG_OR_RESOLVE(select, (int)gr__patch_enosys());
    if ((timeout && !timeout->tv_sec && !timeout->tv_usec) || nfds < 0 || nfds > FD_SETSIZE ||
        (timeout && (timeout->tv_sec < 0 || timeout->tv_usec < 0 || timeout->tv_usec >= 1000000)) ||
        !gr__patch_coop(GR_PATCH_SELECT))
        return gr__orig.select(nfds, readfds, writefds, exceptfds, timeout);
    if (timeout) {
        ts = (struct timespec){timeout->tv_sec, timeout->tv_usec * 1000};
        deadline = gr__deadline_in_ts(&ts);
    }
    sel_init(&s, nfds, readfds, writefds, exceptfds);
    n = select_coop(&s, deadline, NULL);
    if (timeout && deadline >= 0) { /* Linux writes back the time left */
        int64_t left = deadline - gr__glue_now();

        GR__KEEP_ERRNO({
            if (left < 0)
                left = 0;
            timeout->tv_sec = (time_t)(left / 1000);
            timeout->tv_usec = (suseconds_t)(left % 1000) * 1000;
        });
    }
    return n;
}

int pselect(int nfds, fd_set *restrict readfds, fd_set *restrict writefds,
            fd_set *restrict exceptfds, const struct timespec *restrict timeout,
            const __sigset_t *restrict sigmask)
{
    sel s;

    ORIG_OR_RESOLVE(pselect, (int)gr__patch_enosys());
    if ((timeout && !timeout->tv_sec && !timeout->tv_nsec) || nfds < 0 || nfds > FD_SETSIZE ||
        (timeout &&
         (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000)) ||
        !gr__patch_coop(GR_PATCH_SELECT))
        return gr__orig.pselect(nfds, readfds, writefds, exceptfds, timeout, sigmask);
    sel_init(&s, nfds, readfds, writefds, exceptfds);
    return select_coop(&s, ts_deadline(timeout), sigmask);
}

/* ------------------------------------------------------------- epoll */

/* A library's own epoll set: its epoll fd is readable when an event is
 * ready, so the green thread waits on that one descriptor. */
static int epoll_coop(int epfd, struct epoll_event *ev, int max, int64_t deadline,
                      const __sigset_t *ss)
{
    int err0 = errno;

    for (;;) {
        int n = gr__orig.epoll_pwait(epfd, ev, max, 0, ss);

        if (n != 0)
            return n;
        if (gr__glue_wait_fd(epfd, GR_READ, deadline, 1) < 0) {
            if (errno == EBADF) /* closed under us: the next look says so */
                continue;
            if (errno != ETIMEDOUT || deadline < 0 || gr__glue_now() < deadline)
                return -1;
            n = gr__orig.epoll_pwait(epfd, ev, max, 0, ss);
            if (n >= 0)
                errno = err0;
            return n;
        }
        errno = err0;
    }
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
    ORIG_OR(epoll_wait, (int)syscall(SYS_epoll_wait, epfd, events, maxevents, timeout));
    if (timeout == 0 || maxevents <= 0 || !gr__patch_coop(GR_PATCH_SELECT))
        return gr__orig.epoll_wait(epfd, events, maxevents, timeout);
    return epoll_coop(epfd, events, maxevents, gr__deadline_in_ms(timeout), NULL);
}

int epoll_pwait(int epfd, struct epoll_event *events, int maxevents, int timeout,
                const __sigset_t *ss)
{
    ORIG_OR(epoll_pwait, (int)syscall(SYS_epoll_pwait, epfd, events, maxevents, timeout, ss, 8));
    if (timeout == 0 || maxevents <= 0 || !gr__patch_coop(GR_PATCH_SELECT))
        return gr__orig.epoll_pwait(epfd, events, maxevents, timeout, ss);
    return epoll_coop(epfd, events, maxevents, gr__deadline_in_ms(timeout), ss);
}

int epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                 const struct timespec *timeout, const __sigset_t *ss)
{
    ORIG_OR(epoll_pwait2, (int)syscall(SYS_epoll_pwait2, epfd, events, maxevents, timeout, ss, 8));
    if ((timeout && !timeout->tv_sec && !timeout->tv_nsec) || maxevents <= 0 ||
        (timeout &&
         (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000)) ||
        !gr__patch_coop(GR_PATCH_SELECT))
        return gr__orig.epoll_pwait2(epfd, events, maxevents, timeout, ss);
    return epoll_coop(epfd, events, maxevents, ts_deadline(timeout), ss);
}
