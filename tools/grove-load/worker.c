/* A worker process: one hub, one green thread per connection, each sending
 * requests one after the other and recording into the worker's slot of
 * the shared region.
 *
 * The hot path of a keep-alive request is two system calls: send() of the
 * prebuilt request (which always fits the socket buffer at once), and
 * read() of the response, woken by the hub's epoll in between. Every
 * connection reads into the one buffer of the worker: a green thread runs
 * alone until it blocks, and it parses what it read before it blocks
 * again, so the buffer is never shared by two reads in progress.
 *
 * A new connection is used at once: on loopback connect() has finished
 * (or failed) before it returns, so the request is sent right after it,
 * and a connection still in progress just makes that send wait. A failure
 * there is a connect failure. */
#define _GNU_SOURCE
#include "load.h"
#include "resp.h"

#include <grove/tls.h>

#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

/* The worker's read buffer: big enough for most responses in one read. */
#define RBUF_SIZE (64 * 1024)
/* Connection stacks: the loop below needs little; only touched pages cost. */
#define CONN_STACK (32 * 1024)
/* How often the watcher looks at the stop flag. */
#define WATCH_MS 50
/* Longest wait for the server to close a connection it said it would. */
#define EOF_WAIT_MS 1000

/* Outcomes of an exchange besides the failure kinds (>= 0). */
enum { XCH_OK = -1, XCH_RETRY = -2, XCH_CANCELED = -3 };

typedef struct worker {
    const gl_run *r;
    const gl_opts *o;
    const gl_target *t;
    gl_slot *slot;
    int index;
    int64_t timeout_ms;
    int64_t end_ms; /* -t/-d on the hub's clock; 0 none */
    char *rbuf;
    gr_group *conns;
    gr_t watcher, pacer;
    /* --rate */
    gr_sem tokens;
    int64_t rate_t0_ns;
    double interval_ns;
    uint64_t taken;
    int have_first;  /* a response was recorded: doc_len and server set */
    gr_tls_ctx *tls; /* https: this process's client context */
} worker;

typedef struct conn {
    worker *w;
    int fd;          /* -1: not connected */
    gr_tls *tls;     /* https: the stream over fd */
    int established; /* a send succeeded on it */
    int drained;     /* its last read took everything there was */
    size_t index;    /* among all connections, for -b */
    gl_resp resp;
} conn;

/* The timestamps of one request, ns on the monotonic clock. */
typedef struct times {
    int64_t start, connected, written, first, done;
} times;

int64_t gl_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A counter the parent reads while the run goes on: one writer, so a
 * plain load and a relaxed atomic store. */
static inline void bump(uint64_t *p, uint64_t d)
{
    __atomic_store_n(p, __atomic_load_n(p, __ATOMIC_RELAXED) + d, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ closing */

static void drop_tls(conn *c)
{
    gr_tls_free(c->tls);
    c->tls = NULL;
}

/* Reset: the socket goes at once, no TIME_WAIT on either side. */
static void close_reset(conn *c)
{
    struct linger l = {1, 0};

    drop_tls(c);
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    gr_close(c->fd);
    c->fd = -1;
}

static void close_plain(conn *c)
{
    if (c->tls)
        gr_tls_shutdown(c->tls, 0); /* close_notify, if the socket takes it now */
    drop_tls(c);
    gr_close(c->fd);
    c->fd = -1;
}

/* Read into the worker's buffer, over TLS when it is https. */
static ssize_t read_into(conn *c, int64_t deadline)
{
    if (c->tls)
        return gr_tls_read(c->tls, c->w->rbuf, RBUF_SIZE, deadline);
    return gr_read(c->fd, c->w->rbuf, RBUF_SIZE, deadline);
}

/* A response is complete and the connection is not kept. If the server is
 * closing it, wait for its FIN first, so the server holds the TIME_WAIT
 * (--close fin, as ab) or nobody does (--close rst, the default: the
 * reset then finds the server's socket already closed). */
static void finish_conn(conn *c, int saw_eof, int extra_bytes)
{
    int mode = c->w->o->close_mode;
    int64_t until = gr_now() + EOF_WAIT_MS;

    if (mode == GL_CLOSE_NOW || extra_bytes || gl_resp_reusable(&c->resp)) {
        /* Nothing to wait for: the server would keep it open. */
        if (mode == GL_CLOSE_FIN && !extra_bytes)
            close_plain(c);
        else
            close_reset(c);
        return;
    }
    while (!saw_eof) {
        ssize_t n = read_into(c, until);

        if (n <= 0) {
            if (n < 0) { /* no FIN in time, or an error: no orderly close */
                close_reset(c);
                return;
            }
            saw_eof = 1;
        }
    }
    if (mode == GL_CLOSE_FIN)
        close_plain(c);
    else
        close_reset(c);
}

/* ------------------------------------------------------------ sending */

static int open_conn(conn *c)
{
    const gl_target *t = c->w->t;
    int fd = gr_socket(t->addr.u.sa.sa_family, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    if (t->nsources) {
        /* The port is chosen at connect time, for the whole 4-tuple: each
         * source address then has the full ephemeral range per target. */
        const gr_addr *src = &t->sources[c->index % t->nsources];
        int one = 1;

        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, &src->u.sa, src->len) != 0) {
            int err = errno;

            close(fd);
            errno = err;
            return -1;
        }
    }
    if (connect(fd, &t->addr.u.sa, t->addr.len) != 0 && errno != EINPROGRESS) {
        int err = errno;

        close(fd);
        errno = err;
        return -1;
    }
    if (c->w->o->keepalive)
        gr_tcp_nodelay(fd, 1);
    /* https: the handshake runs with the first send. */
    if (c->w->tls && !(c->tls = gr_tls_new(c->w->tls, fd, c->w->o->insecure ? NULL : t->host))) {
        int err = errno;

        close(fd);
        errno = err;
        return -1;
    }
    c->fd = fd;
    c->established = 0;
    c->drained = 1; /* nothing was ever read: nothing unseen */
    bump(&c->w->slot->connects, 1);
    return 0;
}

/* The first TLS failure of the worker, in OpenSSL's words (errno alone
 * says little: "Key was rejected by service" for a certificate). */
static void tls_complaint(conn *c)
{
    static int said;
    const char *why = gr_tls_error(c->tls);

    if (!said && *why && errno != ETIMEDOUT && errno != ECANCELED) {
        said = 1;
        fprintf(stderr, "grove-load: TLS: %s%s\n", why,
                errno == EKEYREJECTED ? " (--insecure accepts it)" : "");
    }
}

/* Send the whole request. One send() nearly always does it; if not (a
 * connection still being made, a large body), wait for room. Any wait
 * lets the hub look at events, so the read that follows may not skip its
 * first try. */
static int send_request(conn *c, int64_t deadline)
{
    const gl_target *t = c->w->t;
    ssize_t n;
    size_t done;

    if (c->tls) {
        c->drained = 0;
        if (gr_tls_write(c->tls, t->request, t->request_len, &done, deadline) != 0) {
            tls_complaint(c);
            return -1;
        }
        c->established = 1;
        return 0;
    }
    n = send(c->fd, t->request, t->request_len, MSG_NOSIGNAL);
    done = n > 0 ? (size_t)n : 0;

    if (n < 0 && errno != EAGAIN && errno != EINTR)
        return -1;
    c->established |= n > 0;
    if (done == t->request_len)
        return 0;
    c->drained = 0;
    while (done < t->request_len) {
        if ((n = gr_write(c->fd, t->request + done, t->request_len - done, deadline)) < 0)
            return -1;
        c->established = 1;
        done += (size_t)n;
    }
    return 0;
}

/* ------------------------------------------------------------ reading */

/* Read into the worker's buffer. After a short read, wait for the next
 * edge without the read that would only say EAGAIN, unless the hub saw an
 * edge since that read began (data, or a FIN, that came with or after
 * it). */
static ssize_t read_some(conn *c, int64_t deadline)
{
    ssize_t n;

    if (c->tls) /* bytes OpenSSL holds are not the socket's to see */
        return gr_tls_read(c->tls, c->w->rbuf, RBUF_SIZE, deadline);
    if (c->drained && !gr_fd_take_edges(c->fd, GR_READ) &&
        gr_wait_fd(c->fd, GR_READ | GR_EDGE, deadline) < 0)
        return -1;
    gr_fd_take_edges(c->fd, GR_READ);
    n = gr_read(c->fd, c->w->rbuf, RBUF_SIZE, deadline);
    c->drained = n > 0 && n < RBUF_SIZE;
    return n;
}

static int read_failed(conn *c, int reused)
{
    int err = errno;

    if (err == ECANCELED)
        return XCH_CANCELED;
    if (err == ETIMEDOUT)
        return GL_F_TIMEOUT;
    /* A kept connection the server had closed before it saw the request:
     * send it again on a new one, as every client does. */
    if (reused && gl_resp_empty(&c->resp) && (err == ECONNRESET || err == EPIPE))
        return XCH_RETRY;
    return GL_F_READ;
}

/* Read and parse the response. On XCH_OK the connection is still open
 * unless the body ended with the close (*saw_eof); *extra tells that
 * bytes came after the response. */
static int read_response(conn *c, times *tm, int64_t deadline, int reused, int *saw_eof, int *extra)
{
    gl_slot *s = c->w->slot;

    gl_resp_begin(&c->resp, c->w->t->head_only);
    *saw_eof = *extra = 0;
    for (;;) {
        ssize_t n = read_some(c, deadline);
        size_t used;
        int rc;

        if (n < 0)
            return read_failed(c, reused);
        if (n == 0) {
            if (gl_resp_eof(&c->resp) == GL_RESP_DONE) {
                *saw_eof = 1;
                return XCH_OK;
            }
            return reused && gl_resp_empty(&c->resp) ? XCH_RETRY : GL_F_CLOSED_EARLY;
        }
        if (!tm->first)
            tm->first = gl_now_ns();
        bump(&s->bytes, (uint64_t)n);
        rc = gl_resp_feed(&c->resp, c->w->rbuf, (size_t)n, &used);
        if (rc == GL_RESP_BAD)
            return GL_F_PROTOCOL;
        if (rc == GL_RESP_DONE) {
            *extra = used < (size_t)n;
            return XCH_OK;
        }
    }
}

/* ------------------------------------------------------------ a request */

static int send_failed(conn *c, int reused)
{
    int err = errno;

    if (err == ECANCELED)
        return XCH_CANCELED;
    if (err == ETIMEDOUT) /* -s passed, whether connecting or sending */
        return GL_F_TIMEOUT;
    if (!c->established && !reused)
        return GL_F_CONNECT; /* refused, unreachable: known at the first send */
    if (reused && (err == EPIPE || err == ECONNRESET))
        return XCH_RETRY;
    return GL_F_WRITE;
}

/* One attempt: connect if needed, send, read. */
static int exchange(conn *c, times *tm, int64_t deadline)
{
    int reused = c->fd >= 0, saw_eof, extra, rc;

    if (!reused && open_conn(c) != 0)
        return errno == ECANCELED ? XCH_CANCELED : GL_F_CONNECT;
    if (send_request(c, deadline) != 0)
        return send_failed(c, reused);
    tm->written = gl_now_ns();
    if (!reused)
        tm->connected = tm->written;
    if (reused)
        bump(&c->w->slot->keepalive_reqs, 1);
    if ((rc = read_response(c, tm, deadline, reused, &saw_eof, &extra)) != XCH_OK)
        return rc;
    tm->done = gl_now_ns();
    if (!c->w->o->keepalive || extra || !gl_resp_reusable(&c->resp))
        finish_conn(c, saw_eof, extra);
    return XCH_OK;
}

static int status_class(int st)
{
    return st >= 100 && st < 600 ? st / 100 : 0;
}

static void record_ok(conn *c, const times *tm)
{
    worker *w = c->w;
    gl_slot *s = w->slot;
    const gl_resp *r = &c->resp;

    gl_hist_record(&s->total, (uint64_t)(tm->done - tm->start));
    if (!w->o->keepalive && tm->connected) {
        gl_hist_record(&s->connect, (uint64_t)(tm->connected - tm->start));
        gl_hist_record(&s->waiting, (uint64_t)((tm->first ? tm->first : tm->done) - tm->written));
        gl_hist_record(&s->processing, (uint64_t)(tm->done - tm->connected));
    }
    bump(&s->body_bytes, r->body);
    bump(&s->status[status_class(r->status)], 1);
    if (!w->have_first) {
        w->have_first = 1;
        s->doc_len = (int64_t)r->body;
    }
    bump(&s->completed, 1);
}

/* The run stops at the first socket error unless -r was given (as ab). */
static void abort_run(worker *w, int kind, int err)
{
    if (w->slot->abort_kind < 0) {
        w->slot->abort_kind = kind;
        w->slot->abort_errno = err;
    }
    __atomic_store_n(&w->r->shm->stop, 1, __ATOMIC_RELAXED);
    gr_group_kill(w->conns);
}

static int stops_run(int kind)
{
    return kind == GL_F_CONNECT || kind == GL_F_READ || kind == GL_F_WRITE || kind == GL_F_TIMEOUT;
}

/* Returns 0 to go on, -1 when the thread must stop (killed). */
static int one_request(conn *c, int64_t intended)
{
    worker *w = c->w;
    times tm = {0};
    int64_t deadline = gr_now() + w->timeout_ms;
    int rc, err;

    tm.start = intended ? intended : gl_now_ns();
    if (!w->have_first)
        c->resp.server = w->slot->server, c->resp.server_cap = sizeof w->slot->server;
    rc = exchange(c, &tm, deadline);
    if (rc == XCH_RETRY) {
        /* A fresh connection cannot ask for a retry: this ends it. */
        bump(&w->slot->reconnects, 1);
        close_reset(c);
        tm = (times){.start = tm.start};
        rc = exchange(c, &tm, deadline);
    }
    err = errno;
    c->resp.server = NULL;
    if (rc == XCH_OK) {
        record_ok(c, &tm);
        return 0;
    }
    if (c->fd >= 0)
        close_reset(c); /* whatever state it is in, it cannot be reused */
    if (rc == XCH_CANCELED)
        return -1;
    bump(&w->slot->fail[rc], 1);
    if (!w->o->keep_going && stops_run(rc)) {
        abort_run(w, rc, err);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ pacing */

/* May this connection send another request? *intended receives the time
 * it should be sent (--rate), else 0. */
static int next_request(worker *w, int64_t *intended)
{
    *intended = 0;
    if (__atomic_load_n(&w->r->shm->stop, __ATOMIC_RELAXED))
        return 0;
    if (w->interval_ns > 0) {
        if (gr_sem_acquire(&w->tokens, -1) != 0)
            return 0;
        *intended = w->rate_t0_ns + (int64_t)((double)w->taken++ * w->interval_ns);
    }
    if (w->end_ms && gr_now() >= w->end_ms)
        return 0;
    if (w->o->requests &&
        __atomic_fetch_add(&w->r->shm->issued, 1, __ATOMIC_RELAXED) >= w->o->requests)
        return 0;
    return 1;
}

/* --rate: release one token per interval. A timerfd wakes it at the exact
 * time (the hub's own timers count in milliseconds); when it wakes late,
 * every token due is released at once, and requests that wait for a
 * connection keep their intended time, so the wait counts in their
 * latency (coordinated omission corrected). */
static void *pacer_main(void *arg)
{
    worker *w = arg;
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    uint64_t released = 0, ticks;

    if (tfd < 0)
        return NULL;
    prctl(PR_SET_TIMERSLACK, 1000UL); /* 1 us instead of 50 */
    for (;;) {
        int64_t now = gl_now_ns(), next;
        uint64_t due = now < w->rate_t0_ns
                           ? 0
                           : (uint64_t)((double)(now - w->rate_t0_ns) / w->interval_ns) + 1;
        struct itimerspec its = {{0, 0}, {0, 0}};

        for (; released < due; released++)
            gr_sem_release(&w->tokens);
        next = w->rate_t0_ns + (int64_t)((double)released * w->interval_ns);
        its.it_value.tv_sec = next / 1000000000;
        its.it_value.tv_nsec = next % 1000000000;
        if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0 ||
            gr_read(tfd, &ticks, sizeof ticks, -1) < 0)
            break;
    }
    gr_close(tfd);
    return NULL;
}

/* ------------------------------------------------------------ threads */

static void *conn_main(void *arg)
{
    conn *c = arg;
    int64_t intended;

    while (next_request(c->w, &intended))
        if (one_request(c, intended) != 0)
            break;
    if (c->fd >= 0) {
        if (gr_testcancel() != 0)
            close_reset(c); /* abandoned mid-run (-d ended, interrupted) */
        else
            close_plain(c); /* an idle kept connection at the end: the polite close */
    }
    gl_resp_free(&c->resp);
    return NULL;
}

/* Ends the run on time (-t/-d) or when asked (the stop flag): in-flight
 * requests are abandoned, counted neither done nor failed (as wrk). */
static void *watcher_main(void *arg)
{
    worker *w = arg;

    for (;;) {
        int64_t until = gr_now() + WATCH_MS;

        if (w->end_ms && until > w->end_ms)
            until = w->end_ms;
        if (gr_sleep(until) != 0)
            return NULL;
        if (__atomic_load_n(&w->r->shm->stop, __ATOMIC_RELAXED) ||
            (w->end_ms && gr_now() >= w->end_ms))
            break;
    }
    gr_group_kill(w->conns);
    if (w->pacer > 0)
        gr_kill(w->pacer);
    return NULL;
}

static int start_threads(worker *w, conn *conns, size_t n)
{
    gr_opts co = {.name = "conn", .stack_size = CONN_STACK};

    for (size_t i = 0; i < n; i++)
        if (gr_group_spawn(w->conns, conn_main, &conns[i], &co, -1) < 0)
            return -1;
    if (w->interval_ns > 0 && (w->pacer = gr_spawn(pacer_main, w)) < 0)
        return -1;
    if ((w->watcher = gr_spawn(watcher_main, w)) < 0)
        return -1;
    return 0;
}

typedef struct worker_args {
    worker *w;
    conn *conns;
    size_t n;
} worker_args;

static void *worker_root(void *arg)
{
    worker_args *a = arg;
    worker *w = a->w;

    if (!(w->conns = gr_group_new(0)) || start_threads(w, a->conns, a->n) != 0) {
        w->slot->setup_errno = errno ? errno : ENOMEM;
        __atomic_store_n(&w->r->shm->stop, 1, __ATOMIC_RELAXED);
        if (w->conns)
            gr_group_kill(w->conns);
    }
    if (w->conns) {
        gr_group_join(w->conns, -1);
        gr_group_free(w->conns);
    }
    if (w->watcher > 0) {
        gr_kill(w->watcher);
        gr_join(w->watcher, NULL, -1);
    }
    if (w->pacer > 0) {
        gr_kill(w->pacer);
        gr_join(w->pacer, NULL, -1);
    }
    return NULL;
}

/* --rate R: this worker's share, and its start staggered so the workers'
 * requests interleave evenly. */
static void set_rate(worker *w)
{
    const gl_run *r = w->r;
    double per_worker = r->o->rate / r->nworkers;

    if (r->o->rate <= 0)
        return;
    w->interval_ns = 1e9 / per_worker;
    w->rate_t0_ns = r->t0_ns + (int64_t)(1e9 / r->o->rate * w->index);
    gr_sem_init(&w->tokens, 0);
}

/* https: the system's CAs and the URL's host checked, unless --insecure;
 * a full handshake per connection unless --tls-resume. */
static int tls_setup(worker *w)
{
    if (!(w->tls = gr_tls_ctx_new(GR_TLS_CLIENT)) ||
        (w->o->insecure && gr_tls_ctx_set_verify(w->tls, GR_TLS_VERIFY_NONE) != 0) ||
        gr_tls_ctx_set_session_cache(w->tls, w->o->tls_resume) != 0) {
        w->slot->setup_errno = errno;
        gr_tls_ctx_free(w->tls);
        return -1;
    }
    return 0;
}

int gl_worker_main(const gl_run *r, int index, size_t n, size_t first_conn)
{
    worker w = {.r = r, .o = r->o, .t = r->t, .slot = &r->shm->slots[index], .index = index};
    worker_args a = {&w, calloc(n, sizeof(conn)), n};

    w.timeout_ms = (int64_t)(r->o->timeout_s * 1000 + 0.5);
    w.end_ms = r->end_ns ? r->end_ns / 1000000 : 0; /* gr_now() reads the same clock */
    w.rbuf = malloc(RBUF_SIZE);
    if (!a.conns || !w.rbuf) {
        w.slot->setup_errno = ENOMEM;
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        a.conns[i] = (conn){.w = &w, .fd = -1, .index = first_conn + i};
    if (r->t->tls && tls_setup(&w) != 0)
        return 1;
    set_rate(&w);
    if (gr_main(worker_root, &a, NULL) != 0 && !w.slot->setup_errno)
        w.slot->setup_errno = errno;
    gr_tls_ctx_free(w.tls);
    return w.slot->setup_errno ? 1 : 0;
}
