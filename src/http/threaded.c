/* The classic thread-pool HTTP server, grove's baseline: N OS threads, each
 * accepting a connection and serving it with blocking system calls until
 * it closes, with the same parser, handlers and limits as the green-thread
 * server. It is written to be as good as this model allows (TCP_NODELAY,
 * one write per response, no per-request allocation), so that comparing
 * the two compares the models.
 *
 * Time-outs use SO_RCVTIMEO/SO_SNDTIMEO, set once per connection: a
 * classic server does not pay a system call per read for them. So a
 * deadline is checked before each read and after each partial write: the
 * header time-out of a request that trickles in is enforced within one
 * receive time-out (the smaller of the idle and header time-outs) past
 * it. */
#define _GNU_SOURCE
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
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

/* One server at a time: gr_http_threaded_stop must be callable from a
 * signal handler, so its state is static and lock-free. */
static atomic_int stop_requested;
static atomic_int listen_fd = -1;
static _Atomic(atomic_int *) idle_fds; /* per thread: the fd it idles on, or -1 */
static atomic_size_t nslots;
static atomic_int stoppers; /* gr_http_threaded_stop calls under way */

typedef struct worker {
    gr__http_cfg *cfg;
    int fd;
    size_t slot;
} worker;

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static ssize_t blocking_read(gr__http_conn *c, void *buf, size_t len, int64_t deadline)
{
    for (;;) {
        /* Past the deadline, take what is there but do not wait: else a
         * client that sends a byte at a time never reaches a time-out. */
        int flags = mono_ms() >= deadline ? MSG_DONTWAIT : 0;
        ssize_t n = recv(c->fd, buf, len, flags);

        if (n >= 0)
            return n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            /* SO_RCVTIMEO ran out; a longer deadline simply reads on. */
            if (mono_ms() < deadline)
                continue;
            errno = ETIMEDOUT;
        }
        return -1;
    }
}

static int blocking_write(gr__http_conn *c, struct iovec *iov, int n, int flags, int64_t deadline)
{
    /* SO_SNDTIMEO bounds each send; the deadline the whole write, checked
     * when a send went only part of the way (a client reading slowly). */
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &m, flags | MSG_NOSIGNAL);

        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN)
                errno = ETIMEDOUT;
            return -1;
        }
        gr__http_iov_consume(&iov, &n, (size_t)w);
        if (n > 0 && mono_ms() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
    return 0;
}

static const gr__http_io blocking_io = {blocking_read, blocking_write, mono_ms};

static void set_timeout(int fd, int opt, int64_t ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv);
}

/* A slot a stop is shutting down this instant. */
#define SLOT_BUSY (-2)

/* Published so a stop can end a connection that only waits for its next
 * request. */
static void idle_hook(gr__http_conn *c, int idle)
{
    worker *w = c->owner;
    atomic_int *slot = &atomic_load(&idle_fds)[w->slot];

    /* stopping also ends kept-alive connections after their request */
    if (atomic_load(&stop_requested))
        atomic_store(&c->cfg->stopping, 1);

    if (idle) {
        atomic_store(slot, c->fd);
        if (atomic_load(&stop_requested))
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
    gr__http_conn c;
    int one = 1;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_timeout(fd, SO_RCVTIMEO, w->cfg->idle_timeout < w->cfg->header_timeout
                                     ? w->cfg->idle_timeout
                                     : w->cfg->header_timeout);
    set_timeout(fd, SO_SNDTIMEO, w->cfg->write_timeout);
    if (gr__http_conn_init(&c, fd, peer, &blocking_io, w->cfg) != 0)
        return;
    c.owner = w;
    gr__http_conn_run(&c, idle_hook);
    idle_hook(&c, 0);
    /* A lingering read must not hold the thread for a whole receive
     * time-out. */
    set_timeout(fd, SO_RCVTIMEO, GR__HTTP_LINGER_MS);
    gr__http_conn_linger(&c);
    gr__http_conn_fini(&c);
}

static void *worker_main(void *arg)
{
    worker *w = arg;

    while (!atomic_load(&stop_requested)) {
        gr_addr peer = {.len = sizeof peer.u};
        int fd = gr__accept4(w->fd, &peer.u.sa, &peer.len, SOCK_CLOEXEC);

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

static int start_workers(worker *w, pthread_t *t, size_t n, gr__http_cfg *cfg, int fd)
{
    pthread_attr_t attr;
    size_t started = 0;
    int err = 0;

    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK);
    for (; started < n; started++) {
        w[started] = (worker){cfg, fd, started};
        if ((err = gr__pthread_create(&t[started], &attr, worker_main, &w[started])) != 0)
            break;
    }
    pthread_attr_destroy(&attr);
    if (err) {
        gr_http_threaded_stop();
        for (size_t i = 0; i < started; i++)
            pthread_join(t[i], NULL);
        errno = err;
        return -1;
    }
    return 0;
}

int gr_http_threaded_serve(int fd, gr_http_handler handler, void *arg,
                           const gr_http_opts *opts, size_t nthreads)
{
    gr__http_cfg cfg;
    atomic_int *slots;
    pthread_t *t;
    worker *w;
    int rc = -1;

    if (fd < 0 || nthreads == 0 || gr__http_cfg_init(&cfg, handler, arg, opts) != 0) {
        errno = EINVAL;
        return -1;
    }
    /* A classic server blocks in accept. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    t = gr__calloc(nthreads, sizeof *t);
    w = gr__calloc(nthreads, sizeof *w);
    slots = gr__malloc(nthreads * sizeof *slots);
    if (t && w && slots) {
        for (size_t i = 0; i < nthreads; i++)
            atomic_init(&slots[i], -1);
        /* stop_requested is not cleared here: a stop that came before
         * (from a signal handler, say) makes this return at once. */
        atomic_store(&nslots, nthreads);
        atomic_store(&idle_fds, slots);
        atomic_store(&listen_fd, fd);
        if (start_workers(w, t, nthreads, &cfg, fd) == 0) {
            for (size_t i = 0; i < nthreads; i++)
                pthread_join(t[i], NULL);
            rc = 0;
        }
        atomic_store(&listen_fd, -1);
        atomic_store(&idle_fds, NULL);
        atomic_store(&nslots, 0);
        /* A stop that read the old values may still be using them: the
         * slots must not be freed, nor fd handed back, under it. */
        while (atomic_load(&stoppers))
            sched_yield();
        atomic_store(&stop_requested, 0);
    } else {
        errno = ENOMEM;
    }
    free(slots);
    free(w);
    free(t);
    return rc;
}

void gr_http_threaded_stop(void)
{
    atomic_int *slots;
    size_t n;
    int fd;

    atomic_fetch_add(&stoppers, 1);
    atomic_store(&stop_requested, 1);
    slots = atomic_load(&idle_fds);
    n = atomic_load(&nslots);
    fd = atomic_load(&listen_fd);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR); /* wakes every thread blocked in accept */
    for (size_t i = 0; slots && i < n; i++) {
        int idle = atomic_load(&slots[i]);

        /* Hold the slot while shutting its fd down (see idle_hook). */
        if (idle >= 0 && atomic_compare_exchange_strong(&slots[i], &idle, SLOT_BUSY)) {
            shutdown(idle, SHUT_RD); /* ends a wait for the next request */
            atomic_store(&slots[i], idle);
        }
    }
    atomic_fetch_sub(&stoppers, 1);
}
