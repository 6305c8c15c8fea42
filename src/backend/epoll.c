/* Edge-triggered epoll backend (contract in backend.h). Why edge-triggered:
 * one epoll_ctl per fd for its whole life instead of one per wait; see
 * docs/design.md. */
#define _GNU_SOURCE
#include "backend.h"

#include "arch/fail.h"

#include "grove.h"

#include <errno.h>
#include <limits.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_EVENTS 256

int gr__backend_init(gr__backend *b)
{
    b->fd = gr__epoll_create1(EPOLL_CLOEXEC);
    b->has_pwait2 = 1;
    return b->fd < 0 ? -1 : 0;
}

void gr__backend_fini(gr__backend *b)
{
    if (b->fd >= 0)
        close(b->fd);
    b->fd = -1;
}

int gr__backend_add(gr__backend *b, int fd)
{
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.fd = fd,
    };

    return gr__epoll_add(b->fd, fd, &ev);
}

int gr__backend_del(gr__backend *b, int fd)
{
    struct epoll_event ev = {0}; /* pre-2.6.9 kernels want non-NULL */

    return epoll_ctl(b->fd, EPOLL_CTL_DEL, fd, &ev);
}

static int wait_events(gr__backend *b, struct epoll_event *evs, int64_t timeout_ns)
{
    if (timeout_ns > 0 && b->has_pwait2) {
        struct timespec ts = {timeout_ns / 1000000000, timeout_ns % 1000000000};
        int n = (int)syscall(SYS_epoll_pwait2, b->fd, evs, MAX_EVENTS, &ts, NULL, 0);

        if (n >= 0 || errno != ENOSYS)
            return n;
        b->has_pwait2 = 0;
    }
    /* Millisecond fallback: round up, so a timer is never fired early. */
    int64_t ms = timeout_ns < 0 ? -1 : (timeout_ns + 999999) / 1000000;

    return epoll_wait(b->fd, evs, MAX_EVENTS, ms > INT_MAX ? INT_MAX : (int)ms);
}

int gr__backend_poll(gr__backend *b, int64_t timeout_ns, gr__backend_fn fn, void *ctx)
{
    struct epoll_event evs[MAX_EVENTS];
    int n = wait_events(b, evs, timeout_ns);

    if (n < 0)
        return 0; /* EINTR: the caller recomputes its time-out */
    for (int i = 0; i < n; i++) {
        uint32_t e = evs[i].events;
        int ready = 0;

        if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            ready |= GR_READ;
        if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
            ready |= GR_WRITE;
        fn(ctx, evs[i].data.fd, ready);
    }
    return n;
}
