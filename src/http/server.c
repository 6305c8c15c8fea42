/* The HTTP server on green threads: a gr_server whose connection handler
 * runs the shared connection loop with cooperative I/O. */
#include "http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A connection waiting for its next request, so that stopping can close
 * it at once instead of waiting out the keep-alive time-out. */
typedef struct idle_conn {
    struct idle_conn *prev, *next;
    gr_t thread;
    int fd;
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

static void idle_hook(gr__http_conn *c, int idle)
{
    gr_http_server *s = c->owner;
    idle_conn *me = c->hook_node;

    if (idle && !me->next) {
        me->thread = gr_self();
        me->fd = c->fd;
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

static void serve_conn(int fd, const gr_addr *peer, void *arg)
{
    gr_http_server *s = arg;
    idle_conn node = {NULL, NULL, 0, -1};
    gr__http_conn c;

    /* Responses leave in one write each: Nagle would only hold them back
     * (waiting for an ACK the client delays). */
    gr_tcp_nodelay(fd, 1);
    if (gr__http_conn_init(&c, fd, peer, &green_io, &s->cfg) != 0)
        return;
    c.owner = s;
    c.hook_node = &node;
    gr__http_conn_run(&c, idle_hook);
    idle_hook(&c, 0);
    gr__http_conn_linger(&c);
    gr__http_conn_fini(&c);
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
    s->idle.next = s->idle.prev = &s->idle;
    so.pool = opts ? opts->max_connections : 0;
    so.stack_size = opts ? opts->stack_size : 0;
    so.name = "http";
    /* From here gr_server_new owns fd, and closes it if it fails. */
    if (!(s->srv = gr_server_new(fd, serve_conn, s, &so))) {
        free(s);
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

/* End the connections waiting for a request, but not one whose request
 * is arriving (bytes already there): it is answered, with Connection:
 * close. Killing a thread unlinks it (its hook runs as it unwinds). */
static void close_idle(gr_http_server *s)
{
    idle_conn *i = s->idle.next;

    while (i != &s->idle) {
        idle_conn *next = i->next;
        char b;

        if (recv(i->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) != 1)
            gr_kill(i->thread);
        i = next;
    }
}

static void *close_idle_at(void *arg)
{
    gr_http_server *s = arg;

    if (gr_sleep(atomic_load(&s->cfg.idle_until)) == 0)
        close_idle(s);
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
    /* Connections already waiting for a request wait with their old
     * deadline: they are ended at idle_deadline, by this thread. */
    if ((closer = gr_spawn(close_idle_at, s)) < 0)
        close_idle(s);
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
    free(s);
    return 0;
}
