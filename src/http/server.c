/* The HTTP server on green threads: a gr_server whose connection handler
 * runs the shared connection loop with cooperative I/O. */
#include "http.h"
#include "net/net.h"
#include "net/tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A connection waiting for its next request in its thread (before it is
 * parked), so that stopping can end that wait at once. */
typedef struct waiting {
    struct waiting *prev, *next;
    gr_t thread;
    int fd;
} waiting;

struct gr_http_server {
    gr_server *srv;
    gr__http_cfg cfg;
    size_t block;    /* the size of a connection's buffers */
    waiting waiting; /* list head */
};

static ssize_t green_read(gr__http_conn *c, void *buf, size_t len, int64_t deadline)
{
    return gr_read(c->fd, buf, len, deadline);
}

static int green_write(gr__http_conn *c, struct iovec *iov, int n, int flags, int64_t deadline)
{
    while (n > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = gr_sendmsg(c->fd, &m, flags, deadline);

        if (w < 0)
            return -1;
        gr__http_iov_consume(&iov, &n, (size_t)w);
    }
    return 0;
}

static int64_t green_now(void)
{
    return gr_now();
}

static const gr__http_io green_io = {green_read, green_write, green_now};

static ssize_t tls_read(gr__http_conn *c, void *buf, size_t len, int64_t deadline)
{
    return gr__tls_read_framed(c->tls, buf, len, deadline);
}

static int tls_write(gr__http_conn *c, struct iovec *iov, int n, int flags, int64_t deadline)
{
    (void)flags; /* MSG_MORE: gr__tls_writev gathers small writes itself */
    return gr__tls_writev(c->tls, iov, n, deadline);
}

static const gr__http_io tls_io = {tls_read, tls_write, green_now};

static void idle_hook(gr__http_conn *c, int idle)
{
    gr_http_server *s = c->owner;
    waiting *me = c->hook_node;

    if (idle && !me->next) {
        me->thread = gr_self();
        me->fd = c->fd;
        me->next = s->waiting.next;
        me->prev = &s->waiting;
        s->waiting.next->prev = me;
        s->waiting.next = me;
    } else if (!idle && me->next) {
        me->prev->next = me->next;
        me->next->prev = me->prev;
        me->next = me->prev = NULL;
    }
}

/* Serve c until none of its requests is pending; returns GR__CONN_PARK
 * when it is idle, GR__CONN_CLOSE when it is done. */
static int run(gr_http_server *s, gr__http_conn *c)
{
    waiting node = {NULL, NULL, 0, -1};
    int parked;

    /* A TLS connection is not parked: OpenSSL's state for it would have to
     * outlive the thread (docs/tls.md, "Memory"). */
    c->may_park = !c->tls;
    c->owner = s;
    c->hook_node = &node;
    parked = gr__http_conn_run(c, idle_hook);
    idle_hook(c, 0);
    if (!parked) {
        /* close_notify before the TCP close: the client's TLS sees a clean
         * end. */
        if (c->tls)
            gr_tls_shutdown(c->tls, gr_now() + GR__HTTP_LINGER_MS);
        gr__http_conn_linger(c);
    }
    gr__http_conn_fini(c);
    return parked ? GR__CONN_PARK : GR__CONN_CLOSE;
}

/* HTTPS: the handshake, bounded as a request head is. NULL when it
 * failed (the connection is then dropped: no HTTP error can be sent). */
static gr_tls *tls_accept(gr_http_server *s, int fd)
{
    gr_tls *t = gr_tls_new(s->cfg.tls, fd, NULL);

    if (t && gr_tls_handshake(t, gr_now() + s->cfg.header_timeout) != 0) {
        gr_tls_free(t);
        return NULL;
    }
    return t;
}

/* One turn of a connection: its requests until none is pending. An idle
 * keep-alive connection is then parked (GR__CONN_PARK): it holds no thread,
 * no stack and no buffer until its next bytes come (docs/design.md). */
static int serve_conn(int fd, const gr_addr *peer, void *arg, int resumed)
{
    gr_http_server *s = arg;
    gr__http_conn c;
    gr_tls *tls = NULL;
    uintptr_t entry;
    void *block;
    int rc;

    /* Responses leave in one write each: Nagle would only hold them back
     * (waiting for an ACK the client delays). gr_tls_new sets it itself. */
    if (!s->cfg.tls) {
        if (!resumed)
            gr_tcp_nodelay(fd, 1);
    } else if (!(tls = tls_accept(s, fd))) {
        return GR__CONN_CLOSE;
    }
    /* The buffers come from the hub's pool, not the heap: a turn's are
     * freed when the connection idles, and freed buffers between the
     * connections' long-lived records would keep the heap's pages. */
    if (!(block = gr__block_get(s->block, &entry))) {
        gr_tls_free(tls);
        return GR__CONN_CLOSE;
    }
    gr__http_conn_init_in(&c, fd, peer, tls ? &tls_io : &green_io, &s->cfg, block);
    c.tls = tls;
    rc = run(s, &c);
    gr__block_put(entry, s->block);
    gr_tls_free(tls);
    return rc;
}

gr_http_server *gr_http_server_new(int fd, gr_http_handler handler, void *arg,
                                   const gr_http_opts *opts)
{
    gr_server_opts so = {0};
    gr_http_server *s;
    int err;

    if (fd < 0)
        return NULL; /* errno is the failed listen's */
    if (!(s = gr__calloc(1, sizeof *s))) {
        err = ENOMEM;
        goto fail;
    }
    if (gr__http_cfg_init(&s->cfg, handler, arg, opts) != 0) {
        err = errno;
        goto fail;
    }
    /* OpenSSL's handshake and the gathering of small writes need room. */
    if (s->cfg.tls && (s->cfg.tls->role != GR_TLS_SERVER || s->cfg.tls->ncerts == 0 ||
                       (opts->stack_size && opts->stack_size < GR__HTTP_TLS_STACK_MIN))) {
        err = EINVAL;
        goto fail;
    }
    if (s->cfg.tls)
        gr__ssl_ctx_ref(s->cfg.tls);
    s->waiting.next = s->waiting.prev = &s->waiting;
    so.pool = opts ? opts->max_connections : 0;
    so.stack_size = opts ? opts->stack_size : 0;
    s->block = gr__http_conn_block_size(&s->cfg);
    so.name = "http";
    /* From here gr_server_new owns fd, and closes it if it fails. */
    if (!(s->srv = gr__server_new_parking(fd, serve_conn, s, &so, s->cfg.idle_timeout))) {
        err = errno;
        gr_tls_ctx_free(s->cfg.tls);
        free(s);
        errno = err;
        return NULL;
    }
    return s;
fail:
    free(s);
    gr_close(fd);
    errno = err;
    return NULL;
}

int gr_http_server_start(gr_http_server *s)
{
    return gr_server_start(s->srv);
}

int gr_http_server_serve(gr_http_server *s)
{
    return gr_server_serve(s->srv);
}

/* End the connections waiting for a request in their thread, but not one
 * whose request is arriving (bytes already there): it is answered, with
 * Connection: close. Killing a thread unlinks it (its hook runs as it
 * unwinds). */
static void close_waiting(gr_http_server *s)
{
    waiting *w = s->waiting.next;

    while (w != &s->waiting) {
        waiting *next = w->next;
        char b;

        if (recv(w->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) != 1)
            gr_kill(w->thread);
        w = next;
    }
}

static void *close_waiting_at(void *arg)
{
    gr_http_server *s = arg;

    if (gr_sleep(atomic_load(&s->cfg.idle_until)) == 0)
        close_waiting(s);
    return NULL;
}

int gr_http_server_drain(gr_http_server *s, int64_t idle_deadline, int64_t deadline)
{
    gr_t closer;
    int rc, err;

    if (!s) {
        errno = EINVAL;
        return -1;
    }
    if (gr_self() < 0) { /* a hub callback cannot wait */
        if (errno == EPERM)
            errno = EDEADLK;
        return -1;
    }
    /* idle_until first: a connection that sees stopping reads it. */
    atomic_store(&s->cfg.idle_until, idle_deadline);
    atomic_store(&s->cfg.stopping, 1);
    /* Parked connections (no thread) may send one more request until
     * idle_deadline too; the server closes the rest then. */
    gr__server_set_park_grace(s->srv, idle_deadline);
    /* Connections waiting for a request in their thread wait with their
     * old deadline: they are ended at idle_deadline, by this thread. */
    if ((closer = gr_spawn(close_waiting_at, s)) < 0)
        close_waiting(s);
    rc = gr_server_stop(s->srv, deadline);
    err = errno;
    if (closer > 0) {
        gr_kill(closer);
        gr_join(closer, NULL, -1);
    }
    errno = err;
    return rc;
}

int gr_http_server_stop(gr_http_server *s, int64_t deadline)
{
    return gr_http_server_drain(s, 0, deadline);
}

int gr_http_server_stats_get(const gr_http_server *s, gr_server_stats *st)
{
    return gr_server_stats_get(s->srv, st);
}

int gr_http_server_free(gr_http_server *s)
{
    if (!s)
        return 0;
    if (gr_server_free(s->srv) != 0)
        return -1;
    gr_tls_ctx_free(s->cfg.tls);
    free(s);
    return 0;
}
