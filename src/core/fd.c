/* Waiting on file descriptors. Each fd is registered with the backend once,
 * edge-triggered, for both directions; edges are remembered per fd so one
 * that arrives while nobody waits is not lost. */
#define _GNU_SOURCE
#include "layout.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

static gr__fdrec *fd_rec(gr_hub *h, int fd, int create)
{
    gr__fdrec **chunk, *rec;

    if (fd < 0 || fd >= GR__FD_CHUNK * GR__FD_CHUNKS)
        return NULL;
    chunk = &h->fds[fd / GR__FD_CHUNK];
    if (!*chunk) {
        if (!create || !(*chunk = gr__calloc(GR__FD_CHUNK, sizeof **chunk)))
            return NULL;
    }
    rec = &(*chunk)[fd % GR__FD_CHUNK];
    /* From before a fork (fork.c): forget it now, on first use. */
    if (GR__UNLIKELY(rec->gen != h->fd_gen))
        *rec = (gr__fdrec){.gen = h->fd_gen};
    return rec;
}

void gr__fds_fini(gr_hub *h)
{
    for (size_t i = 0; i < GR__FD_CHUNKS; i++) {
        free(h->fds[i]);
        h->fds[i] = NULL;
    }
}

/* An edge seen earlier may be stale (the data may have been read since):
 * ask the kernel. Returns the ready subset of events, 0, or -1/EBADF. */
static int ready_now(int fd, int events)
{
    struct pollfd p = {
        fd, (short)((events & GR_READ ? POLLIN : 0) | (events & GR_WRITE ? POLLOUT : 0)), 0};

    if (poll(&p, 1, 0) <= 0)
        return 0;
    if (p.revents & POLLNVAL) {
        errno = EBADF;
        return -1;
    }
    if (p.revents & (POLLERR | POLLHUP))
        return events;
    return (p.revents & POLLIN ? GR_READ : 0) | (p.revents & POLLOUT ? GR_WRITE : 0);
}

static int ensure_registered(gr_hub *h, gr__fdrec *rec, int fd)
{
    if (rec->registered)
        return 0;
    if (gr__backend_add(&h->backend, fd) != 0)
        return -1;
    rec->registered = 1;
    /* Unknown yet: treat as maybe-ready, so the first wait asks the kernel
     * instead of sleeping through readiness that predates registration. */
    rec->ready = GR_READ | GR_WRITE;
    return 0;
}

/* Park with the waiters linked in fd queues; the record names them, so a
 * forked child can unhook a kept thread's waiters (fork.c). */
static int park_fd(gr_hub *h, gr__waiter *w, uint32_t n, int64_t deadline, const char *what)
{
    gr__g *g = h->current;
    int rc;

    h->nfd_waiters++;
    g->fdw = w;
    g->nfdw = n;
    rc = gr__park(deadline, what);
    g->nfdw = 0;
    h->nfd_waiters--;
    return rc;
}

/* The ready subset of events, or 0 when woken without an edge (a forked
 * child's hub dropped the wait), or -1. */
static int park_on(gr_hub *h, gr__fdrec *rec, int events, int64_t deadline)
{
    gr__waiter w[2] = {{0}, {0}};
    int rc;

    if (events & GR_READ) {
        gr__wq_push(&rec->readers, &w[0], h->current);
        w[0].events = events;
    }
    if (events & GR_WRITE) {
        gr__wq_push(&rec->writers, &w[1], h->current);
        w[1].events = events;
    }
    rc = park_fd(h, w, 2, deadline, "fd");
    gr__wq_remove(&w[0]);
    gr__wq_remove(&w[1]);
    return rc < 0 ? -1 : (w[0].fired | w[1].fired);
}

int gr_wait_fd(int fd, int events, int64_t deadline)
{
    gr_hub *h = gr__hub_get();
    int after_eagain = events & GR_EDGE;
    gr__fdrec *rec;
    int r;

    if (!h)
        return -1;
    events &= ~GR_EDGE;
    if (!events || (events & ~(GR_READ | GR_WRITE))) {
        errno = EINVAL;
        return -1;
    }
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (gr__may_block(h) != 0)
        return -1;
    for (;;) {
        if (!(rec = fd_rec(h, fd, 1))) {
            errno = fd >= GR__FD_CHUNK * GR__FD_CHUNKS ? EINVAL : ENOMEM;
            return -1;
        }
        if (ensure_registered(h, rec, fd) != 0)
            return errno == EPERM ? events : -1; /* EPERM: a regular file, always ready */
        if (after_eagain) {
            rec->ready &= (uint8_t)~events;
        } else if (rec->ready & events) {
            if ((r = ready_now(fd, events)) != 0)
                return r;
            rec->ready &= (uint8_t)~events;
        }
        if ((r = park_on(h, rec, events, deadline)) != 0)
            return r;
        after_eagain = 0; /* no edge came: register again and ask the kernel */
    }
}

int gr__watch_fd(gr__watch *wt, int fd, int events)
{
    gr_hub *h = gr__hub_get();
    gr__fdrec *rec;

    if (!h)
        return -1;
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (!events || (events & ~(GR_READ | GR_WRITE))) {
        errno = EINVAL;
        return -1;
    }
    if (!(rec = fd_rec(h, fd, 1))) {
        errno = fd >= GR__FD_CHUNK * GR__FD_CHUNKS ? EINVAL : ENOMEM;
        return -1;
    }
    if (ensure_registered(h, rec, fd) != 0)
        return errno == EPERM ? 1 : -1; /* EPERM: a regular file, always ready */
    wt->u.w[0].linked = wt->u.w[1].linked = 0;
    if (events & GR_READ) {
        gr__wq_push(&rec->readers, &wt->u.w[0], h->current);
        wt->u.w[0].events = events;
    }
    if (events & GR_WRITE) {
        gr__wq_push(&rec->writers, &wt->u.w[1], h->current);
        wt->u.w[1].events = events;
    }
    wt->kind = GR__WATCH_FD;
    return 0;
}

int gr_fd_take_edges(int fd, int events)
{
    gr_hub *h = gr__tls_hub;
    gr__fdrec *rec = h ? fd_rec(h, fd, 0) : NULL;
    int was;

    events &= GR_READ | GR_WRITE;
    if (!rec || !rec->registered)
        return events; /* never waited on: nothing known, maybe ready */
    was = rec->ready & events;
    rec->ready &= (uint8_t)~events;
    return was;
}

static void wake_fd_waiters(gr__wq *q, int ready)
{
    gr__waiter *w;

    while ((w = gr__wq_pop_parked(q))) {
        w->fired = ready & w->events;
        gr__unpark(w->g, 0);
    }
}

void gr__fd_event(gr_hub *h, int fd, int ready)
{
    gr__fdrec *rec;

    if (fd == h->wakefd) {
        uint64_t v;

        /* Posts are found through h->posted; this only resets the counter. */
        if (read(fd, &v, sizeof v) < 0) {
        }
        return;
    }
    if (!(rec = fd_rec(h, fd, 0)) || !rec->registered)
        return;
    rec->ready |= (uint8_t)ready;
    if (ready & GR_READ)
        wake_fd_waiters(&rec->readers, ready);
    if (ready & GR_WRITE)
        wake_fd_waiters(&rec->writers, ready);
    if ((ready & GR_READ) && rec->on_readable) {
        gr__fd_cb *w = rec->on_readable;

        rec->on_readable = NULL;
        h->nfd_cbs--;
        w->fn(w, ready);
    }
}

int gr__fd_on_readable(int fd, gr__fd_cb *w)
{
    gr_hub *h = gr__hub_get();
    gr__fdrec *rec;
    int r;

    if (!h)
        return -1;
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (!(rec = fd_rec(h, fd, 1))) {
        errno = fd >= GR__FD_CHUNK * GR__FD_CHUNKS ? EINVAL : ENOMEM;
        return -1;
    }
    if (rec->on_readable) {
        errno = EBUSY;
        return -1;
    }
    if (ensure_registered(h, rec, fd) != 0)
        return -1;
    if (rec->ready & GR_READ) {
        if ((r = ready_now(fd, GR_READ)) != 0)
            return r < 0 ? -1 : 1;
        rec->ready &= (uint8_t)~GR_READ;
    }
    rec->on_readable = w;
    h->nfd_cbs++;
    return 0;
}

int gr_fd_forget(int fd)
{
    gr_hub *h = gr__tls_hub;
    gr__fdrec *rec;

    if (!h || !(rec = fd_rec(h, fd, 0)))
        return 0;
    gr__wake_all(&rec->readers, NULL, EBADF);
    gr__wake_all(&rec->writers, NULL, EBADF);
    if (rec->on_readable) {
        rec->on_readable = NULL;
        h->nfd_cbs--;
    }
    if (rec->registered)
        gr__backend_del(&h->backend, fd);
    rec->registered = 0;
    rec->ready = 0;
    return 0;
}

int gr_close(int fd)
{
    gr_fd_forget(fd);
    return close(fd);
}

/* ------------------------------------------------------------- gr_poll */

#define POLL_MAX 65536
#define POLL_STACK 8 /* waiters kept on the stack; more are allocated */

static int poll_events_to_gr(short events)
{
    int e = 0;

    if (events & (POLLIN | POLLPRI | POLLRDHUP))
        e |= GR_READ;
    if (events & POLLOUT)
        e |= GR_WRITE;
    return e ? e : GR_READ; /* errors and hang-ups wake readers too */
}

static int poll_register(gr_hub *h, struct pollfd *fds, nfds_t nfds, gr__waiter *w)
{
    /* All unlinked first: poll_unregister must be safe after a failure. */
    for (nfds_t i = 0; i < 2 * nfds; i++)
        w[i].linked = 0;
    for (nfds_t i = 0; i < nfds; i++) {
        gr__fdrec *rec;
        int e;

        if (fds[i].fd < 0)
            continue;
        if (!(rec = fd_rec(h, fds[i].fd, 1))) {
            errno = ENOMEM;
            return -1;
        }
        /* EPERM: cannot be waited on (a regular file), and poll() called
         * it ready. Anything else (ENOMEM) fails the call: the fd would
         * never wake us. */
        if (ensure_registered(h, rec, fds[i].fd) != 0) {
            if (errno == EPERM)
                continue;
            return -1;
        }
        e = poll_events_to_gr(fds[i].events);
        gr__wq_push(e & GR_READ ? &rec->readers : &rec->writers, &w[i], h->current);
        w[i].events = e;
        if ((e & GR_READ) && (e & GR_WRITE)) {
            /* One waiter per queue: the write side gets a twin. */
            gr__wq_push(&rec->writers, &w[nfds + i], h->current);
            w[nfds + i].events = e;
        }
    }
    return 0;
}

static void poll_unregister(gr__waiter *w, nfds_t nfds)
{
    for (nfds_t i = 0; i < 2 * nfds; i++)
        gr__wq_remove(&w[i]);
}

int gr_poll(struct pollfd *fds, nfds_t nfds, int64_t deadline)
{
    gr__waiter stack_w[2 * POLL_STACK], *w = stack_w;
    gr_hub *h = gr__hub_get();
    int n, rc;

    if (!h)
        return -1;
    if (nfds > POLL_MAX || (!fds && nfds)) {
        errno = EINVAL;
        return -1;
    }
    if (gr__may_block(h) != 0)
        return -1;
    if (nfds > POLL_STACK && !(w = gr__calloc(2 * nfds, sizeof *w))) {
        errno = ENOMEM;
        return -1;
    }
    for (;;) {
        /* The kernel's answer is exact; edges only tell when to ask again. */
        if ((n = poll(fds, nfds, 0)) != 0 && !(n < 0 && errno == EINTR))
            break;
        if (deadline >= 0 && deadline <= h->now) {
            n = 0; /* poll once: nothing ready */
            break;
        }
        if ((n = poll_register(h, fds, nfds, w)) == 0) {
            rc = park_fd(h, w, 2 * (uint32_t)nfds, deadline, "poll");
        } else {
            rc = -1;
        }
        poll_unregister(w, nfds);
        if (rc != 0) {
            /* Reaching poll's own deadline is a time-out, not an error. */
            if (errno == ETIMEDOUT && deadline >= 0 && h->now >= deadline) {
                n = poll(fds, nfds, 0);
            } else {
                n = -1;
            }
            break;
        }
    }
    if (w != stack_w) {
        int err = errno;

        free(w);
        errno = err;
    }
    return n;
}
