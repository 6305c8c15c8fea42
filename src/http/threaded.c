/* The classic thread-pool HTTP server, grove's baseline: N OS threads, each
 * accepting a connection and serving it with blocking system calls until
 * it closes, with the same parser, handlers and limits as the green-thread
 * server. It is written to be as good as this model allows (TCP_NODELAY,
 * one write per response, no per-request allocation), so that comparing
 * the two compares the models.
 *
 * Time-outs: SO_RCVTIMEO is set once per connection (the smaller of the
 * idle and header time-outs), so a classic server pays no system call per
 * read for it; a deadline is checked each time a receive times out, so
 * the header time-out of a request that trickles in is enforced within
 * one receive time-out past it. A deadline nearer than that (a handler's,
 * or the end of the body time-out) is waited for with poll, to the
 * millisecond. Writes go out without waiting, and poll waits for room
 * only when the socket is full. */
#define _GNU_SOURCE
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Connection threads need little stack: the default 8 MiB of address space
 * each would be wasteful with 10,000 of them. */
#define THREAD_STACK (256 * 1024)

/* A slot a stop is shutting down this instant. */
#define SLOT_BUSY (-2)

/* Everything a stop touches is here, allocated at new and freed at free,
 * and lock-free: gr_http_threaded_stop must be callable from a signal
 * handler. */
struct gr_http_threaded {
    gr__http_cfg cfg;
    int fd;
    size_t nthreads;
    atomic_int stop_requested;
    atomic_int serving;
    atomic_int *idle_fds; /* per thread: the fd it idles on, or -1 */
};

typedef struct worker {
    gr_http_threaded *srv;
    size_t slot;
} worker;

/* Until the deadline, or -1 for "wait as the socket's time-out says". */
static int poll_ms(int64_t deadline, int64_t rcvtimeo)
{
    int64_t left = deadline - gr_now_update();

    return left >= rcvtimeo ? -1 : left > 0 ? (int)left : 0;
}

/* Wait for fd to be ready for events until deadline: 1, or 0 at the
 * deadline. */
static int wait_ready(int fd, short events, int64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int64_t left = deadline - gr_now_update();
        int n = poll(&p, 1, left > 0 ? (int)(left < INT32_MAX ? left : INT32_MAX) : 0);

        if (n > 0)
            return 1;
        if (n == 0 && left <= 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return 1; /* let the system call that follows report it */
    }
}

static ssize_t blocking_read(gr__http_conn *c, void *buf, size_t len, int64_t deadline)
{
    gr_http_threaded *s = ((worker *)c->owner)->srv;
    int64_t rcvtimeo =
        s->cfg.idle_timeout < s->cfg.header_timeout ? s->cfg.idle_timeout : s->cfg.header_timeout;

    for (;;) {
        /* A near deadline is polled for; past it, take what is there but
         * do not wait (else a client that sends a byte at a time never
         * reaches a time-out). */
        int ms = poll_ms(deadline, rcvtimeo);
        int flags = ms >= 0 ? MSG_DONTWAIT : 0;
        ssize_t n;

        if (ms > 0 && !wait_ready(c->fd, POLLIN, deadline))
            flags = MSG_DONTWAIT;
        n = recv(c->fd, buf, len, flags);
        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* SO_RCVTIMEO ran out; a later deadline simply reads on. */
            if (gr_now_update() < deadline)
                continue;
            errno = ETIMEDOUT;
        }
        return -1;
    }
}

static int blocking_write(gr__http_conn *c, struct iovec *iov, int n, int flags, int64_t deadline)
{
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &m, flags | MSG_NOSIGNAL | MSG_DONTWAIT);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                return -1;
            if (!wait_ready(c->fd, POLLOUT, deadline)) {
                errno = ETIMEDOUT;
                return -1;
            }
            continue;
        }
        gr__http_iov_consume(&iov, &n, (size_t)w);
    }
    return 0;
}

/* The clock read each time: a handler that made itself a hub (it should
 * not) would otherwise freeze gr_now() for this thread. */
static int64_t clock_ms(void)
{
    return gr_now_update();
}

static const gr__http_io blocking_io = {blocking_read, blocking_write, clock_ms};

static void set_timeout(int fd, int opt, int64_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

/* Published so a stop can end a connection that only waits for its next
 * request. */
static void idle_hook(gr__http_conn *c, int idle)
{
    worker *w = c->owner;
    gr_http_threaded *s = w->srv;
    atomic_int *slot = &s->idle_fds[w->slot];

    /* stopping also ends kept-alive connections after their request */
    if (atomic_load(&s->stop_requested))
        atomic_store(&c->cfg->stopping, 1);

    if (idle) {
        atomic_store(slot, c->fd);
        if (atomic_load(&s->stop_requested))
            shutdown(c->fd, SHUT_RD);
        return;
    }
    /* Leaving the slot: if a stop holds it (it read the fd and is shutting
     * it down), wait the instant it takes, so that the fd is not closed,
     * and its number reused by another connection, under the stop. */
    for (int fd = c->fd; !atomic_compare_exchange_weak(slot, &fd, -1); fd = c->fd) {
        if (fd == -1)
            break; /* not published */
        if (fd == SLOT_BUSY)
            sched_yield();
    }
}

static void serve_one(worker *w, int fd, const gr_addr *peer)
{
    gr__http_cfg *cfg = &w->srv->cfg;
    gr__http_conn c;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_timeout(fd, SO_RCVTIMEO,
                cfg->idle_timeout < cfg->header_timeout ? cfg->idle_timeout : cfg->header_timeout);
    if (gr__http_conn_init(&c, fd, peer, &blocking_io, cfg) != 0)
        return;
    c.owner = w;
    gr__http_conn_run(&c, idle_hook);
    idle_hook(&c, 0);
    gr__http_conn_linger(&c);
    gr__http_conn_fini(&c);
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    gr_http_threaded *s = w->srv;

    while (!atomic_load(&s->stop_requested)) {
        gr_addr peer = {.len = sizeof peer.u};
        int fd = gr__accept4(s->fd, &peer.u.sa, &peer.len, SOCK_CLOEXEC);

        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                usleep(10000); /* out of descriptors: let some close */
            else if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
                break; /* EINVAL: the listener was shut down */
            continue;
        }
        serve_one(w, fd, &peer);
        close(fd);
    }
    return NULL;
}

static int start_workers(gr_http_threaded *s, worker *w, pthread_t *t)
{
    pthread_attr_t attr;
    size_t started = 0;
    int err = 0;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    for (; started < s->nthreads; started++) {
        w[started] = (worker){s, started};
        if ((err = gr__pthread_create(&t[started], &attr, worker_main, &w[started])) != 0)
            break;
    }
    pthread_attr_destroy(&attr);
    for (size_t i = 0; i < started; i++) {
        if (err && i == 0)
            gr_http_threaded_stop(s);
        pthread_join(t[i], NULL);
    }
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

gr_http_threaded *gr_http_threaded_new(int fd, gr_http_handler handler, void *arg,
                                       const gr_http_opts *opts, size_t nthreads)
{
    gr_http_threaded *s = NULL;
    int err = ENOMEM;

    if (fd < 0)
        return NULL; /* errno is the failed listen's */
    /* TLS needs the hub's waits: the green-thread server serves HTTPS. */
    if (nthreads == 0 || (opts && opts->tls)) {
        err = EINVAL;
        goto fail;
    }
    if (!(s = gr__calloc(1, sizeof *s)) ||
        !(s->idle_fds = gr__malloc(nthreads * sizeof *s->idle_fds)))
        goto fail;
    if (gr__http_cfg_init(&s->cfg, handler, arg, opts) != 0) {
        err = EINVAL;
        goto fail;
    }
    for (size_t i = 0; i < nthreads; i++)
        atomic_init(&s->idle_fds[i], -1);
    s->fd = fd;
    s->nthreads = nthreads;
    /* A classic server blocks in accept. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return s;
fail:
    if (s)
        free(s->idle_fds);
    free(s);
    close(fd);
    errno = err;
    return NULL;
}

int gr_http_threaded_serve(gr_http_threaded *s)
{
    pthread_t *t;
    worker *w;
    int rc;

    if (atomic_exchange(&s->serving, 1)) {
        errno = EBUSY;
        return -1;
    }
    /* A stop that came first (from a signal handler, say) is kept. */
    if (atomic_load(&s->stop_requested)) {
        atomic_store(&s->serving, 0);
        return 0;
    }
    t = gr__calloc(s->nthreads, sizeof *t);
    w = gr__calloc(s->nthreads, sizeof *w);
    if (t && w) {
        rc = start_workers(s, w, t);
    } else {
        errno = ENOMEM;
        rc = -1;
    }
    free(w);
    free(t);
    atomic_store(&s->serving, 0);
    return rc;
}

void gr_http_threaded_stop(gr_http_threaded *s)
{
    atomic_store(&s->stop_requested, 1);
    shutdown(s->fd, SHUT_RDWR); /* wakes every thread blocked in accept */
    for (size_t i = 0; i < s->nthreads; i++) {
        int idle = atomic_load(&s->idle_fds[i]);

        /* Hold the slot while shutting its fd down (see idle_hook). */
        if (idle >= 0 && atomic_compare_exchange_strong(&s->idle_fds[i], &idle, SLOT_BUSY)) {
            shutdown(idle, SHUT_RD); /* ends a wait for the next request */
            atomic_store(&s->idle_fds[i], idle);
        }
    }
}

int gr_http_threaded_free(gr_http_threaded *s)
{
    if (!s)
        return 0;
    if (atomic_load(&s->serving)) {
        errno = EBUSY;
        return -1;
    }
    close(s->fd);
    free(s->idle_fds);
    free(s);
    return 0;
}
