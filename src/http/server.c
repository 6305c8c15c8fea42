/* The HTTP server on green threads: a gr_server whose connection handler
 * runs the shared connection loop with cooperative I/O. */
#include "http.h"
#include "net/tls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A connection waiting for its next request, so that stopping can close
 * it at once instead of waiting out the keep-alive time-out. */
typedef struct idle_conn {
    struct idle_conn *prev, *next;
    gr_t thread;
} idle_conn;

struct gr_http_server {
    gr_server *srv;
    gr__http_cfg cfg;
    idle_conn idle; /* list head */
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
    idle_conn *me = c->hook_node;

    if (idle && !me->next) {
        me->thread = gr_self();
        me->next = s->idle.next;
        me->prev = &s->idle;
        s->idle.next->prev = me;
        s->idle.next = me;
    } else if (!idle && me->next) {
        me->prev->next = me->next;
        me->next->prev = me->prev;
        me->next = me->prev = NULL;
    }
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

static void serve_conn(int fd, const gr_addr *peer, void *arg)
{
    gr_http_server *s = arg;
    idle_conn node = {NULL, NULL, 0};
    gr_tls *tls = NULL;
    gr__http_conn c;

    /* Responses leave in one write each: Nagle would only hold them back
     * (waiting for an ACK the client delays). gr_tls_new sets it itself. */
    if (!s->cfg.tls)
        gr_tcp_nodelay(fd, 1);
    else if (!(tls = tls_accept(s, fd)))
        return;
    if (gr__http_conn_init(&c, fd, peer, tls ? &tls_io : &green_io, &s->cfg) != 0) {
        gr_tls_free(tls);
        return;
    }
    c.tls = tls;
    c.owner = s;
    c.hook_node = &node;
    gr__http_conn_run(&c, idle_hook);
    idle_hook(&c, 0);
    /* close_notify before the TCP close: the client's TLS sees a clean end. */
    if (tls)
        gr_tls_shutdown(tls, gr_now() + GR__HTTP_LINGER_MS);
    gr__http_conn_linger(&c);
    gr__http_conn_fini(&c);
    gr_tls_free(tls);
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
    s->idle.next = s->idle.prev = &s->idle;
    so.pool = opts ? opts->max_connections : 0;
    so.stack_size = opts ? opts->stack_size : 0;
    so.name = "http";
    /* From here gr_server_new owns fd, and closes it if it fails. */
    if (!(s->srv = gr_server_new(fd, serve_conn, s, &so))) {
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

int gr_http_server_stop(gr_http_server *s, int64_t deadline)
{
    atomic_store(&s->cfg.stopping, 1);
    /* Idle keep-alive connections have no request in flight: end them now.
     * Killing one unlinks it (its hook runs as it unwinds). */
    for (idle_conn *i = s->idle.next; i != &s->idle; i = i->next)
        gr_kill(i->thread);
    return gr_server_stop(s->srv, deadline);
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
