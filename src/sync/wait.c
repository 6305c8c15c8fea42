/* Waiting on several things at once: gr_wait_any and gr_iwait (gevent's
 * wait and iwait), gr_joinall and gr_killall on top of them.
 *
 * One round: look at every item (descriptors with one poll(2)); if none
 * is ready, link a watch in each (core.h: watches take nothing), park
 * once, unlink them all, and look again. Linking re-checks each object,
 * under its lock for the thread-safe ones, so a set that lands between
 * the look and the park is not missed. */
#include "sync/sync.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define ON_STACK 8

/* What one call works with: a watch per item, a pollfd per descriptor. */
typedef struct work {
    gr_waitable *items;
    size_t n;
    int iter; /* gr_iwait: items already reported are left alone */
    gr__watch *w;
    struct pollfd *pfd;
    void *heap;
    gr__watch w_stack[ON_STACK];
    struct pollfd pfd_stack[ON_STACK];
} work;

static int skip(const work *wk, size_t i)
{
    return wk->iter && wk->items[i].reported_;
}

/* --------------------------------------------------------- checking */

static int check_item(const gr_waitable *it)
{
    switch (it->kind) {
    case GR_WAIT_THREAD:
        return gr__thread_done(it->thread) < 0 ? -1 : 0;
    case GR_WAIT_EVENT:
    case GR_WAIT_ASYNC:
    case GR_WAIT_QUEUE:
    case GR_WAIT_CHAN:
        break;
    case GR_WAIT_FD:
        if (it->fd < 0) {
            errno = EBADF;
            return -1;
        }
        if (!it->events || (it->events & ~(GR_READ | GR_WRITE))) {
            errno = EINVAL;
            return -1;
        }
        return 0;
    default:
        errno = EINVAL;
        return -1;
    }
    if (!it->obj) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

static int check_items(const gr_waitable *items, size_t n)
{
    if (!items || n == 0 || n > GR_WAIT_MAX) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if (check_item(&items[i]) != 0)
            return -1;
    return 0;
}

/* ------------------------------------------------------------ looking */

/* Ready now? A thread whose handle went stale since the call began was
 * joined or freed: it finished. */
static int ready_now(const gr_waitable *it)
{
    switch (it->kind) {
    case GR_WAIT_THREAD:
        return gr__thread_done(it->thread) != 0;
    case GR_WAIT_EVENT:
        return gr_event_is_set(it->obj);
    case GR_WAIT_ASYNC:
        return gr_async_ready(it->obj);
    case GR_WAIT_QUEUE:
        return gr_queue_size(it->obj) > 0;
    case GR_WAIT_CHAN:
        return gr__chan_ready(it->obj);
    default:
        return 0;
    }
}

static int fd_ready(const gr_waitable *it, short revents)
{
    if (revents & (POLLERR | POLLHUP))
        return it->events;
    return (revents & POLLIN ? GR_READ : 0) | (revents & POLLOUT ? GR_WRITE : 0);
}

/* The descriptors, with one poll(2). Returns how many are ready, or -1. */
static int look_at_fds(work *wk)
{
    nfds_t np = 0;
    int count = 0;

    for (size_t i = 0; i < wk->n; i++) {
        const gr_waitable *it = &wk->items[i];

        if (it->kind == GR_WAIT_FD && !skip(wk, i))
            wk->pfd[np++] = (struct pollfd){it->fd,
                                            (short)((it->events & GR_READ ? POLLIN : 0) |
                                                    (it->events & GR_WRITE ? POLLOUT : 0)),
                                            0};
    }
    if (np == 0 || poll(wk->pfd, np, 0) <= 0)
        return 0; /* EINTR: nothing seen this time */
    np = 0;
    for (size_t i = 0; i < wk->n; i++) {
        gr_waitable *it = &wk->items[i];

        if (it->kind != GR_WAIT_FD || skip(wk, i))
            continue;
        if (wk->pfd[np].revents & POLLNVAL) {
            errno = EBADF;
            return -1;
        }
        it->ready = fd_ready(it, wk->pfd[np++].revents);
        count += it->ready != 0;
    }
    return count;
}

/* Set ready on every item looked at; how many are, or -1. */
static int look(work *wk)
{
    int count = look_at_fds(wk);

    if (count < 0)
        return -1;
    for (size_t i = 0; i < wk->n; i++) {
        gr_waitable *it = &wk->items[i];

        if (it->kind != GR_WAIT_FD && !skip(wk, i)) {
            it->ready = ready_now(it);
            count += it->ready != 0;
        }
    }
    return count;
}

/* ------------------------------------------------------------ watching */

/* 0 when linked, 1 when ready meanwhile, -1 on error. */
static int watch_item(gr_waitable *it, gr__watch *wt)
{
    switch (it->kind) {
    case GR_WAIT_THREAD: {
        int rc = gr__watch_thread(wt, it->thread);

        return rc < 0 && errno == ESRCH ? 1 : rc; /* gone: it finished */
    }
    case GR_WAIT_EVENT:
        return gr__event_watch(it->obj, wt);
    case GR_WAIT_ASYNC:
        return gr__async_watch(it->obj, wt);
    case GR_WAIT_QUEUE:
        return gr__queue_watch(it->obj, wt);
    case GR_WAIT_CHAN:
        return gr__chan_watch(it->obj, wt);
    default:
        return gr__watch_fd(wt, it->fd, it->events);
    }
}

static int watch_all(work *wk)
{
    for (size_t i = 0; i < wk->n; i++) {
        int rc;

        wk->w[i].kind = 0;
        if (skip(wk, i))
            continue;
        if ((rc = watch_item(&wk->items[i], &wk->w[i])) != 0)
            return rc;
    }
    return 0;
}

/* ------------------------------------------------------------- waiting */

static int work_init(work *wk, gr_waitable *items, size_t n, int iter)
{
    size_t nfd = 0;

    wk->items = items;
    wk->n = n;
    wk->iter = iter;
    wk->heap = NULL;
    wk->w = wk->w_stack;
    wk->pfd = wk->pfd_stack;
    for (size_t i = 0; i < n; i++)
        nfd += items[i].kind == GR_WAIT_FD;
    if (n <= ON_STACK)
        return 0;
    if (!(wk->heap = gr__malloc(n * sizeof *wk->w + nfd * sizeof *wk->pfd))) {
        errno = ENOMEM;
        return -1;
    }
    wk->w = wk->heap;
    wk->pfd = (struct pollfd *)(wk->w + n);
    return 0;
}

/* Returns how many items are ready (> 0), or -1. */
static int wait_items(gr_waitable *items, size_t n, int iter, int64_t deadline)
{
    work wk;
    int k, err;

    if (!gr_hub_current() || work_init(&wk, items, n, iter) != 0)
        return -1;
    for (;;) {
        if ((k = look(&wk)) != 0 || (k = gr__check_wait(deadline)) != 0)
            break;
        k = watch_all(&wk);
        if (k == 0)
            k = gr__watch_park(wk.w, n, deadline, "wait any");
        err = errno;
        gr__unwatch(wk.w, n);
        if (k > 0)
            continue; /* ready while linking: look again */
        if (k < 0) {
            /* One that became ready as the time ran out still counts. */
            if (err == ETIMEDOUT && (k = look(&wk)) > 0)
                break;
            errno = err;
            k = -1;
            break;
        }
    }
    err = errno;
    free(wk.heap);
    errno = err;
    return k;
}

int gr_wait_any(gr_waitable *items, size_t n, int64_t deadline)
{
    if (check_items(items, n) != 0)
        return -1;
    return wait_items(items, n, 0, deadline);
}

/* ------------------------------------------------------------- iwait */

int gr_iwait_init(gr_iwait *it, gr_waitable *items, size_t n)
{
    if (!it) {
        errno = EINVAL;
        return -1;
    }
    if (check_items(items, n) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        items[i].ready = 0;
        items[i].reported_ = 0;
    }
    it->items_ = items;
    it->n_ = n;
    it->left_ = n;
    return 0;
}

/* An item found ready by an earlier round and not yet returned, if any. */
static int take_ready(gr_iwait *it)
{
    for (size_t i = 0; i < it->n_; i++) {
        gr_waitable *w = &it->items_[i];

        if (w->ready && !w->reported_) {
            w->reported_ = 1;
            it->left_--;
            return (int)i;
        }
    }
    return -1;
}

int gr_iwait_next(gr_iwait *it, int64_t deadline)
{
    int i;

    if (!it || !it->items_) {
        errno = EINVAL;
        return -1;
    }
    if (it->left_ == 0) {
        errno = ENOENT;
        return -1;
    }
    if ((i = take_ready(it)) >= 0)
        return i;
    /* Checked by gr_iwait_init: a handle gone stale since has finished. */
    if (wait_items(it->items_, it->n_, 1, deadline) < 0)
        return -1;
    return take_ready(it);
}

/* --------------------------------------------------- joinall, killall */

static int cmp_handle(const void *a, const void *b)
{
    gr_t x = *(const gr_t *)a, y = *(const gr_t *)b;

    return (x > y) - (x < y);
}

static int has_duplicates(const gr_t *threads, size_t n)
{
    gr_t *v = gr__malloc(n * sizeof *v);
    int dup = 0;

    if (!v)
        return -1;
    memcpy(v, threads, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_handle);
    for (size_t i = 1; i < n && !dup; i++)
        dup = v[i] == v[i - 1];
    free(v);
    return dup;
}

static int check_joinable(const gr_t *threads, size_t n)
{
    gr_t self = gr__self(EPERM);
    gr_thread_info info;
    int dup;

    if (!threads || n == 0 || n > GR_WAIT_MAX) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (gr__thread_done(threads[i]) < 0 || gr_thread_info_get(threads[i], &info) != 0)
            return -1;
        if (info.detached) {
            errno = EINVAL;
            return -1;
        }
        if (threads[i] == self) {
            errno = EDEADLK;
            return -1;
        }
    }
    if ((dup = has_duplicates(threads, n)) != 0) {
        errno = dup < 0 ? ENOMEM : EINVAL;
        return -1;
    }
    return 0;
}

static gr_waitable *thread_items(const gr_t *threads, size_t n)
{
    gr_waitable *items = gr__calloc(n, sizeof *items);

    if (!items) {
        errno = ENOMEM;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].kind = GR_WAIT_THREAD;
        items[i].thread = threads[i];
    }
    return items;
}

int gr_joinall(const gr_t *threads, size_t n, void **results, int *joined, int64_t deadline)
{
    gr_waitable *items;
    int i, rc = 0, lost = 0, err;
    gr_iwait it;

    if (check_joinable(threads, n) != 0 || !(items = thread_items(threads, n)))
        return -1;
    if (joined)
        memset(joined, 0, n * sizeof *joined);
    gr_iwait_init(&it, items, n);
    while ((i = gr_iwait_next(&it, deadline)) >= 0) {
        /* Finished, so the join does not wait; ESRCH: another joined it. */
        if (gr_join(threads[i], results ? &results[i] : NULL, 0) == 0) {
            if (joined)
                joined[i] = 1;
        } else {
            lost = 1;
        }
    }
    if (errno != ENOENT) {
        rc = -1;
    } else if (lost) {
        errno = ESRCH;
        rc = -1;
    }
    err = errno;
    free(items);
    errno = err;
    return rc;
}

int gr_killall(const gr_t *threads, size_t n, int64_t deadline)
{
    gr_t self = gr__self(EPERM);
    gr_waitable *items;
    size_t left = 0;
    int rc = 0, err;
    gr_iwait it;

    if (!threads || n == 0 || n > GR_WAIT_MAX) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (gr__thread_done(threads[i]) < 0 && errno == EINVAL)
            return -1; /* a root context */
    }
    if (!(items = thread_items(threads, n)))
        return -1;
    for (size_t i = 0; i < n; i++) {
        gr_kill(threads[i]); /* a stale handle is one already gone */
        /* The caller cannot wait for its own end. */
        if (threads[i] != self && gr__thread_done(threads[i]) == 0)
            items[left++].thread = threads[i];
    }
    if (left) {
        gr_iwait_init(&it, items, left);
        while (gr_iwait_next(&it, deadline) >= 0)
            ;
        rc = errno == ENOENT ? 0 : -1;
    }
    err = errno;
    free(items);
    errno = err;
    return rc;
}
