/* Stream and datagram servers (gevent's StreamServer and DatagramServer).
 *
 * One loop (accept, or receive) runs in a green thread of its own or in
 * the caller's; every connection or datagram gets a detached handler
 * thread, tracked in a list so that stop can wait for them or kill them.
 * The pool limit, stop and the EMFILE back-off are built on the loop's
 * latch: it waits on it when the pool is full or while it backs off, a
 * finishing handler fires it (ROOM), and a stop fires it (STOP) to end
 * whatever wait the loop is in, the wait for a connection included.
 *
 * A parking server's connection (gr__server_new_parking) lives on between
 * its handler threads: parked, it is a record in the idle list (oldest
 * first, since every one waits the same idle time) and an fd watch, and a
 * readable edge starts a new thread for it. One reaper thread per server
 * closes those that idle too long. */
#define _GNU_SOURCE
#include "net/net.h"

#include <stdlib.h>
#include <string.h>

#define BACKOFF_MIN_MS 10
#define BACKOFF_MAX_MS 1000
#define DGRAM_MAX_DEFAULT 65535
#define ACCEPT_BURST 64
/* One handler call in this many has its stack depth measured (two system
 * calls, and the pages below the call faulted in again): the first, then a
 * sample. */
#define STACK_SAMPLE 1024

enum { KIND_STREAM, KIND_DGRAM };
enum { WAIT_FD, WAIT_ROOM, WAIT_BACKOFF };

/* One handler thread: a connection, or a datagram (with its bytes copied
 * behind the record when several handlers may run at once). */
typedef struct conn {
    struct conn *prev, *next;
    gr_server *s;
    gr_t g; /* 0 while parked */
    int fd;
    uint8_t started;            /* the handler function was entered */
    uint8_t cancelled;          /* stopped before it started: never call it */
    uint8_t resumed;            /* the handler served it before it was parked */
    gr__fd_cb watch;            /* parked: the fd's */
    struct conn *iprev, *inext; /* parked: in the idle list */
    int64_t idle_until;
    gr_addr peer;
    const void *data;
    size_t len;
    char bytes[];
} conn;

struct gr_server {
    int fd;
    int kind;
    gr_handler_fn on_conn;
    gr_datagram_fn on_dgram;
    gr__parking_fn on_park;
    int64_t idle_ms;    /* parked connections are closed after this; -1 never */
    int64_t park_grace; /* a stop keeps parked connections until then */
    conn *idle_head, *idle_tail;
    size_t parked;
    gr_t reaper;
    uint8_t reaping; /* the reaper thread runs */
    uint64_t turns;  /* handler calls */
    size_t stack_hwm;
    void *arg;
    char *dbuf; /* datagram receive buffer, max_size bytes */
    size_t max_size;
    int copy_dgrams;
    size_t pool; /* 0: unbounded */
    size_t stack_size;
    char name[GR_NAME_MAX + 1];

    conn *conns;
    size_t active;
    uint64_t accepted, fd_limit;

    gr__latch wake;  /* the loop's: ROOM from exiting handlers, STOP */
    uint8_t looping; /* a loop runs, or is about to */
    uint8_t stopping, fd_closed;
    uint8_t logged_fd_limit, logged_spawn, logged_wait, logged_park;
    size_t stoppers; /* gr_server_stop calls in progress */
    gr__wq stop_q;
};

/* ------------------------------------------------------------ creation */

/* The server owns fd from the call on, so a failed creation closes it. */
static gr_server *fail_closing(int fd, int err)
{
    gr_close(fd);
    errno = err;
    return NULL;
}

static int bad_stack_size(const gr_server_opts *opts)
{
    return opts && opts->stack_size &&
           (opts->stack_size < GR_STACK_MIN || opts->stack_size > GR_STACK_MAX);
}

/* What both kinds share; has_handler: the caller's handler is not NULL. */
static gr_server *server_alloc(int fd, int kind, int has_handler, void *arg,
                               const gr_server_opts *opts)
{
    gr_server *s;

    /* A failed gr_tcp_listen() or gr_udp_bind() passed straight in: its
     * errno (EADDRINUSE, say) is the one to report, so it is left alone. */
    if (fd < 0)
        return NULL;
    if (!has_handler || bad_stack_size(opts))
        return fail_closing(fd, EINVAL);
    if (!(s = gr__calloc(1, sizeof *s)))
        return fail_closing(fd, ENOMEM);
    s->fd = fd;
    s->kind = kind;
    s->arg = arg;
    if (opts) {
        s->pool = opts->pool;
        s->stack_size = opts->stack_size;
    }
    strncpy(s->name, opts && opts->name ? opts->name : "conn", GR_NAME_MAX);
    return s;
}

gr_server *gr_server_new(int fd, gr_handler_fn handler, void *arg, const gr_server_opts *opts)
{
    gr_server *s = server_alloc(fd, KIND_STREAM, handler != NULL, arg, opts);

    if (s)
        s->on_conn = handler;
    return s;
}

gr_server *gr__server_new_parking(int fd, gr__parking_fn handler, void *arg,
                                  const gr_server_opts *opts, int64_t idle_ms)
{
    gr_server *s = server_alloc(fd, KIND_STREAM, handler != NULL, arg, opts);

    if (s) {
        s->on_park = handler;
        s->idle_ms = idle_ms;
    }
    return s;
}

gr_server *gr_datagram_server_new(int fd, gr_datagram_fn handler, void *arg, size_t max_size,
                                  const gr_server_opts *opts)
{
    gr_server *s = server_alloc(fd, KIND_DGRAM, handler != NULL, arg, opts);

    if (!s)
        return NULL;
    s->on_dgram = handler;
    s->max_size = max_size ? max_size : DGRAM_MAX_DEFAULT;
    /* One at a time (pool 0 or 1): the loop waits for each handler before
     * receiving again, so the handler can be given the loop's buffer. */
    s->copy_dgrams = s->pool > 1;
    if (!s->pool)
        s->pool = 1;
    if (!(s->dbuf = gr__malloc(s->max_size))) {
        free(s);
        return fail_closing(fd, ENOMEM);
    }
    return s;
}

/* ------------------------------------------------------------ handlers */

static void warn_once(uint8_t *logged, const char *what, int err, const char *then)
{
    if (*logged)
        return;
    *logged = 1;
    gr__report(GR_REPORT_SERVER, err, "server: %s: %s%s (logged once per server)", what,
               strerror(err), then);
}

static void close_fd(gr_server *s)
{
    if (!s->fd_closed)
        gr_close(s->fd);
    s->fd_closed = 1;
}

/* Stopped once the loop and every handler are gone; a datagram server's
 * socket is closed only then, since handlers reply on it. Stoppers look
 * again each time a handler or the loop goes. */
static void maybe_finish(gr_server *s)
{
    if (s->stopping && !s->looping && !s->active)
        close_fd(s);
    gr__wake_all(&s->stop_q, NULL, 0);
}

static void conn_done(conn *c)
{
    gr_server *s = c->s;

    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->active--;
    /* Room in the pool, and a descriptor freed for a backed-off accept. */
    gr__latch_fire(&s->wake, GR__WAKE_ROOM);
    maybe_finish(s);
    free(c);
}

static void close_conn(conn *c)
{
    gr_close(c->fd);
    conn_done(c);
}

static int park(gr_server *s, conn *c);

/* One call of the handler; a sample of them have their stack depth taken. */
static int call_handler(gr_server *s, conn *c)
{
    int sample = s->turns++ % STACK_SAMPLE == 0, rc = 0;

    if (sample)
        gr__stack_mark();
    if (s->on_park)
        rc = s->on_park(c->fd, &c->peer, s->arg, c->resumed);
    else if (s->kind == KIND_STREAM)
        s->on_conn(c->fd, &c->peer, s->arg);
    else
        s->on_dgram(s->fd, c->data, c->len, &c->peer, s->arg);
    if (sample) {
        size_t depth = gr__stack_deepest();

        if (depth > s->stack_hwm)
            s->stack_hwm = depth;
    }
    return rc;
}

/* A parking handler's turn: returns 1 when it parked the connection (the
 * thread leaves it), 0 when the connection is to be closed. */
static int serve_parking(gr_server *s, conn *c)
{
    for (;;) {
        int r;

        if (call_handler(s, c) != GR__CONN_PARK || s->stopping)
            return 0;
        c->resumed = 1;
        if ((r = gr__fd_on_readable(c->fd, &c->watch)) == 0)
            return park(s, c);
        if (r < 0) {
            /* Closing an idle keep-alive connection is allowed (clients
             * retry); holding a thread for it is what parking avoids. */
            warn_once(&s->logged_park, "watching an idle connection", errno, ": closed it");
            return 0;
        }
        /* Readable already: serve it in this thread. */
    }
}

static void *handler_main(void *arg)
{
    conn *c = arg;
    gr_server *s = c->s;

    if (!c->cancelled) {
        c->started = 1;
        if (!s->on_park)
            call_handler(s, c);
        else if (serve_parking(s, c))
            return NULL; /* c is the watch's now */
    }
    if (s->kind == KIND_STREAM)
        gr_close(c->fd);
    conn_done(c);
    return NULL;
}

static int start_thread(gr_server *s, conn *c)
{
    gr_opts o = {.name = s->name, .stack_size = s->stack_size, .flags = GR_DETACHED};

    c->started = c->cancelled = 0;
    return (c->g = gr_spawn_opts(handler_main, c, &o)) < 0 ? -1 : 0;
}

static int spawn_handler(gr_server *s, conn *c)
{
    c->s = s;
    c->resumed = 0;
    if (start_thread(s, c) != 0)
        return -1;
    c->prev = NULL;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->active++;
    return 0;
}

/* ------------------------------------------------------------- parking */

static void idle_unlink(gr_server *s, conn *c)
{
    if (c->iprev)
        c->iprev->inext = c->inext;
    else
        s->idle_head = c->inext;
    if (c->inext)
        c->inext->iprev = c->iprev;
    else
        s->idle_tail = c->iprev;
    s->parked--;
}

/* The hub's callback (nothing may block here): the parked connection is
 * readable, so its handler goes on in a new thread. */
static void on_readable(gr__fd_cb *w, int ready)
{
    conn *c = (conn *)(void *)((char *)w - offsetof(conn, watch));
    gr_server *s = c->s;

    (void)ready;
    idle_unlink(s, c);
    if (!s->stopping || gr_now_update() < s->park_grace) {
        if (start_thread(s, c) == 0)
            return;
        warn_once(&s->logged_park, "resuming an idle connection", errno, ": closed it");
    }
    close_conn(c);
}

/* Close the parked connections whose idle time is over (all of them when
 * stopping); the list is oldest first. */
static void close_idle(gr_server *s, int all)
{
    while (s->idle_head && (all || s->idle_head->idle_until <= gr_now())) {
        conn *c = s->idle_head;

        idle_unlink(s, c);
        close_conn(c);
    }
}

/* Sleeps until the oldest parked connection's time is up. With none
 * parked it sleeps one idle time (any connection parked meanwhile has
 * longer to go), and ends if none came: a server that idles holds no
 * reaper. A stop kills it. */
static void *reaper_main(void *arg)
{
    gr_server *s = arg;

    while (!s->stopping) {
        int was_empty = !s->idle_head;
        int64_t until = was_empty ? gr_now() + s->idle_ms : s->idle_head->idle_until;

        if (gr_sleep(until) != 0 && errno != ETIMEDOUT)
            break;
        if (was_empty && !s->idle_head)
            break;
        close_idle(s, 0);
    }
    s->reaping = 0;
    maybe_finish(s);
    return NULL;
}

static int park(gr_server *s, conn *c)
{
    c->g = 0;
    c->idle_until = s->idle_ms >= 0 ? gr_now() + s->idle_ms : INT64_MAX;
    c->inext = NULL;
    c->iprev = s->idle_tail;
    if (s->idle_tail)
        s->idle_tail->inext = c;
    else
        s->idle_head = c;
    s->idle_tail = c;
    s->parked++;
    c->watch.fn = on_readable;
    if (!s->reaping && s->idle_ms >= 0) {
        gr_opts o = {.name = "idle reaper", .flags = GR_DETACHED};

        /* Without one, idle connections wait until the next park tries. */
        if ((s->reaper = gr_spawn_opts(reaper_main, s, &o)) >= 0)
            s->reaping = 1;
    }
    return 1;
}

/* ---------------------------------------------------------- the loop */

/* One of the loop's waits. Returns 0 to go on (the caller looks at
 * stopping), or -1 with errno when the loop must end: killed, a Timeout
 * region, or the socket failed. */
static int loop_wait(gr_server *s, int kind, int64_t deadline)
{
    int rc;

    if (kind == WAIT_FD)
        rc = gr_wait_fd(s->fd, GR_READ | GR_EDGE, -1);
    else
        rc = gr__latch_wait(&s->wake, GR__WAKE_ROOM | GR__WAKE_STOP, deadline,
                            kind == WAIT_ROOM ? "server pool" : "server back-off");
    if (rc >= 0 || s->stopping)
        return 0;
    if (errno == ETIMEDOUT && deadline >= 0 && gr_now() >= deadline)
        return 0; /* the back-off is over */
    return -1;
}

static int wait_room(gr_server *s)
{
    while (s->pool && s->active >= s->pool && !s->stopping)
        if (loop_wait(s, WAIT_ROOM, -1) != 0)
            return -1;
    return 0;
}

/* Out of descriptors or memory: wait 10 ms, doubling to 1 s while it
 * lasts, or until a handler finishes and frees one. */
static int back_off(gr_server *s, int64_t *delay)
{
    *delay = *delay ? *delay * 2 : BACKOFF_MIN_MS;
    if (*delay > BACKOFF_MAX_MS)
        *delay = BACKOFF_MAX_MS;
    return loop_wait(s, WAIT_BACKOFF, gr_now_update() + *delay);
}

static void log_once(uint8_t *logged, const char *what, int err)
{
    warn_once(logged, what, err,
              "; backing off (10 ms doubling to 1 s) and serving the existing connections "
              "until it recovers");
}

static int is_resource_error(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* Wait for the socket to be readable. The first wait registers it with
 * epoll, which can fail for want of kernel memory (ENOMEM, or ENOSPC past
 * fs.epoll.max_user_watches): that too passes, so back off and try again
 * rather than end the loop. */
static int wait_socket(gr_server *s, int64_t *delay)
{
    if (loop_wait(s, WAIT_FD, -1) == 0)
        return 0;
    if (!is_resource_error(errno) && errno != ENOSPC)
        return -1;
    log_once(&s->logged_wait, "waiting on the socket", errno);
    return back_off(s, delay);
}

/* Accept one connection and start its handler. Returns 1 when a handler
 * was started, 0 after waiting (for a connection, or out of resources),
 * -1 when the loop must end. */
static int accept_one(gr_server *s, int64_t *delay)
{
    conn *c;
    gr_addr peer;
    int fd = gr__accept_now(s->fd, &peer);

    if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return wait_socket(s, delay);
        if (!is_resource_error(errno))
            return -1;
        if (errno == EMFILE || errno == ENFILE)
            s->fd_limit++;
        log_once(&s->logged_fd_limit, "accept", errno);
        return back_off(s, delay);
    }
    *delay = 0;
    s->accepted++;
    if ((c = gr__malloc(sizeof *c))) {
        c->fd = fd;
        c->peer = peer;
        if (spawn_handler(s, c) == 0)
            return 1;
        free(c);
    }
    gr_close(fd);
    log_once(&s->logged_spawn, "starting a connection handler", ENOMEM);
    return back_off(s, delay);
}

/* Start a handler for the n bytes received into s->dbuf: as accept_one
 * for a connection, but a datagram nobody can handle is dropped. */
static int dispatch_dgram(gr_server *s, size_t n, const gr_addr *peer, int64_t *delay)
{
    conn *c = gr__malloc(sizeof *c + (s->copy_dgrams ? n : 0));

    if (c) {
        c->fd = -1;
        c->peer = *peer;
        c->len = n;
        c->data = s->copy_dgrams ? memcpy(c->bytes, s->dbuf, n) : s->dbuf;
        if (spawn_handler(s, c) == 0)
            return 1;
        free(c);
    }
    log_once(&s->logged_spawn, "starting a datagram handler (the datagram was dropped)", ENOMEM);
    return back_off(s, delay);
}

/* Receive one datagram and start its handler; returns as accept_one. */
static int receive_one(gr_server *s, int64_t *delay)
{
    gr_addr peer;
    ssize_t n;

    peer.len = sizeof peer.u;
    n = recvfrom(s->fd, s->dbuf, s->max_size, MSG_DONTWAIT, &peer.u.sa, &peer.len);
    if (n >= 0) {
        *delay = 0;
        s->accepted++;
        return dispatch_dgram(s, (size_t)n, &peer, delay);
    }
    switch (errno) {
    case EAGAIN:
        return wait_socket(s, delay);
    case EINTR:
    case ECONNREFUSED: /* an ICMP error for an earlier reply: not ours to end */
    case EHOSTUNREACH:
    case ENETUNREACH:
        return 0;
    default:
        return is_resource_error(errno) ? back_off(s, delay) : -1;
    }
}

/* A flood of connections must not starve the handlers: after a burst of
 * accepts that found the next one already waiting, let them run. */
static int take_turns(gr_server *s, unsigned *burst)
{
    if (++*burst < ACCEPT_BURST)
        return 0;
    *burst = 0;
    return gr_yield() == 0 || s->stopping ? 0 : -1;
}

static int run_loop(gr_server *s)
{
    int64_t delay = 0;
    unsigned burst = 0;
    int rc = 0, err = 0;

    gr__latch_arm(&s->wake, GR__WAKE_STOP);
    while (!s->stopping && rc == 0) {
        if ((rc = wait_room(s)) != 0 || s->stopping)
            break;
        rc = s->kind == KIND_STREAM ? accept_one(s, &delay) : receive_one(s, &delay);
        if (rc > 0)
            rc = take_turns(s, &burst);
        else if (rc == 0)
            burst = 0;
    }
    if (rc != 0)
        err = errno;
    if (s->stopping && s->kind == KIND_STREAM)
        close_fd(s);
    gr__latch_disarm(&s->wake);
    s->looping = 0;
    maybe_finish(s);
    errno = err;
    return rc;
}

static void *loop_main(void *arg)
{
    gr_server *s = arg;
    /* Read first: once run_loop returns, a stopper may free s. */
    const char *what = s->kind == KIND_STREAM ? "accept" : "receive";

    if (run_loop(s) != 0 && errno != ECANCELED)
        gr__report(GR_REPORT_SERVER, errno, "server: the %s loop ended: %s", what, strerror(errno));
    return NULL;
}

int gr_server_start(gr_server *s)
{
    gr_opts o = {.name = "server", .flags = GR_DETACHED};
    gr_t g;

    if (!s || s->looping || s->stopping) {
        errno = EINVAL;
        return -1;
    }
    if ((g = gr_spawn_opts(loop_main, s, &o)) < 0)
        return -1;
    s->looping = 1;
    return 0;
}

int gr_server_serve(gr_server *s)
{
    if (gr__self(EDEADLK) < 0)
        return -1;
    if (!s || s->looping || s->stopping) {
        errno = EINVAL;
        return -1;
    }
    if (gr__check_cancel() != 0)
        return -1;
    s->looping = 1;
    return run_loop(s);
}

/* ---------------------------------------------------------------- stop */

/* Wait until the loop has ended and only `self` handlers (the caller's
 * own, when a handler stops its server) are left. */
static int wait_quiet(gr_server *s, int64_t deadline, size_t self)
{
    while (s->looping || s->active > self || s->reaping) {
        gr__waiter w;

        if (gr__wait_queue(&s->stop_q, &w, deadline, "server stop") != 0)
            return -1;
    }
    return 0;
}

static conn *caller_conn(gr_server *s)
{
    gr_t me = gr_self();

    for (conn *c = s->conns; c; c = c->next)
        if (c->g == me)
            return c;
    return NULL;
}

/* Kill every handler but self. One that has not started yet is only
 * marked: killing it would skip its function, and its clean-up with it. */
static size_t kill_handlers(gr_server *s, const conn *self)
{
    size_t n = 0;

    for (conn *c = s->conns; c; c = c->next) {
        if (c == self)
            continue;
        if (c->started)
            gr_kill(c->g);
        else
            c->cancelled = 1;
        n++;
    }
    return n;
}

void gr__server_set_park_grace(gr_server *s, int64_t until)
{
    s->park_grace = until;
}

/* Until the park grace (or the stop's deadline), parked connections that
 * become readable are served; wait while some are left to. */
static void wait_park_grace(gr_server *s, int64_t deadline)
{
    int64_t until = deadline >= 0 && deadline < s->park_grace ? deadline : s->park_grace;

    while (s->idle_head && gr_now_update() < until)
        if (gr_sleep(until < gr_now() + 10 ? until : gr_now() + 10) != 0 && errno != ETIMEDOUT)
            return; /* the stopper was killed: close them */
}

static int stop_steps(gr_server *s, int64_t deadline)
{
    conn *self = caller_conn(s);
    size_t nself = self != NULL;
    int err;

    s->stopping = 1;
    gr__latch_fire(&s->wake, GR__WAKE_STOP);
    if (s->reaping)
        gr_kill(s->reaper);
    wait_park_grace(s, deadline);
    /* Parked connections have no request in flight: close them now. */
    close_idle(s, 1);
    if (!s->looping && s->kind == KIND_STREAM)
        close_fd(s);
    maybe_finish(s);
    if (wait_quiet(s, deadline, nself) == 0)
        return 0;
    err = errno;
    if (kill_handlers(s, self) == 0 && err == ETIMEDOUT)
        err = 0; /* only the loop was left, and it is on its way out */
    if (wait_quiet(s, -1, nself) != 0)
        return -1;
    errno = err;
    return err ? -1 : 0;
}

int gr_server_stop(gr_server *s, int64_t deadline)
{
    int rc;

    if (!s) {
        errno = EINVAL;
        return -1;
    }
    if (gr__self(EDEADLK) < 0)
        return -1;
    s->stoppers++;
    rc = stop_steps(s, deadline);
    s->stoppers--;
    return rc;
}

int gr_server_stats_get(const gr_server *s, gr_server_stats *st)
{
    if (!s || !st) {
        errno = EINVAL;
        return -1;
    }
    *st = (gr_server_stats){s->active, s->accepted, s->fd_limit, s->parked, s->stack_hwm};
    return 0;
}

int gr_server_free(gr_server *s)
{
    if (!s)
        return 0;
    if (s->looping || s->active || s->stoppers || s->reaping) {
        errno = EBUSY;
        return -1;
    }
    close_fd(s);
    free(s->dbuf);
    free(s);
    return 0;
}
