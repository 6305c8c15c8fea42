/* Sockets: creation, connect, accept, listen, and TCP connections to a
 * host name with Happy Eyeballs (RFC 8305). */
#define _GNU_SOURCE
#include "net/net.h"

#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* RFC 8305's Connection Attempt Delay. */
#define ATTEMPT_DELAY_MS 250
/* A Unix socket's full backlog is not signalled by poll: retry connect
 * with this back-off, doubling from 1 ms. */
#define UNIX_RETRY_MAX_MS 64

static void close_keep_errno(int fd)
{
    int err = errno;

    gr_close(fd);
    errno = err;
}

int gr_socket(int domain, int type, int protocol)
{
    return gr__socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}

int gr_tcp_nodelay(int fd, int on)
{
    on = !!on;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

static int so_error(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;

    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return errno;
    return err;
}

/* ------------------------------------------------------------ connect */

/* Wait for a connection in progress. A wake-up with no error is confirmed
 * by calling connect again, which the kernel answers with 0 (or EISCONN)
 * once established and EALREADY while still trying. */
static int connect_wait(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline)
{
    for (;;) {
        int err;

        if (gr_wait_fd(fd, GR_WRITE | GR_EDGE, deadline) < 0)
            return -1;
        if ((err = so_error(fd)) != 0) {
            errno = err;
            return -1;
        }
        if (connect(fd, addr, len) == 0 || errno == EISCONN)
            return 0;
        if (errno != EALREADY && errno != EINPROGRESS && errno != EINTR)
            return -1;
    }
}

static int unix_connect_retry(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline)
{
    int64_t delay = 1;

    for (;;) {
        int64_t until = gr_now() + delay;

        if (deadline >= 0 && gr_now() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        if (deadline >= 0 && until > deadline)
            until = deadline;
        if (gr_sleep(until) != 0)
            return -1;
        if (connect(fd, addr, len) == 0)
            return 0;
        if (errno != EAGAIN && errno != EINTR)
            return -1;
        if (delay < UNIX_RETRY_MAX_MS)
            delay *= 2;
    }
}

int gr_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline)
{
    if (gr__enter() != 0)
        return -1;
    if (connect(fd, addr, len) == 0)
        return 0;
    if (errno == EAGAIN && addr && addr->sa_family == AF_UNIX)
        return unix_connect_retry(fd, addr, len, deadline);
    if (errno != EINPROGRESS && errno != EINTR)
        return -1;
    return connect_wait(fd, addr, len, deadline);
}

/* ------------------------------------------------------------- accept */

int gr__accept_now(int fd, gr_addr *peer)
{
    for (;;) {
        gr_addr tmp;
        gr_addr *p = peer ? peer : &tmp;
        int c;

        p->len = sizeof p->u;
        if ((c = gr__accept4(fd, &p->u.sa, &p->len, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
            return c;
        switch (errno) {
        /* The connection died in the queue, or (accept(2), "Error
         * handling") a network error is pending on it: take the next. */
        case EINTR:
        case ECONNABORTED:
        case EPROTO:
        case ENETDOWN:
        case ENOPROTOOPT:
        case EHOSTDOWN:
        case ENONET:
        case EHOSTUNREACH:
        case ENETUNREACH:
            continue;
        default:
            return -1;
        }
    }
}

int gr_accept(int fd, gr_addr *peer, int64_t deadline)
{
    int c;

    if (gr__enter() != 0)
        return -1;
    while ((c = gr__accept_now(fd, peer)) < 0)
        if (!gr__io_again(fd, GR_READ, deadline))
            return -1;
    return c;
}

/* ------------------------------------------------------------- listen */

static int set_int(int fd, int level, int opt, int v)
{
    return setsockopt(fd, level, opt, &v, sizeof v);
}

/* A socket of type bound to addr. IPv6 sockets are made dual-stack (the
 * option must be set before bind), so "any" serves IPv4 too. */
static int bound_socket(const gr_addr *addr, int type, int reuseport)
{
    int family = addr->u.sa.sa_family;
    int fd = gr_socket(family, type, 0);

    if (fd < 0)
        return -1;
    if (family == AF_INET6)
        set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 0);
    if ((type == SOCK_STREAM && family != AF_UNIX &&
         set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1) < 0) ||
        (reuseport && set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1) < 0) ||
        bind(fd, &addr->u.sa, addr->len) < 0) {
        close_keep_errno(fd);
        return -1;
    }
    return fd;
}

int gr_listen(const gr_addr *addr, int backlog, int reuseport)
{
    int fd;

    if (!addr) {
        errno = EINVAL;
        return -1;
    }
    if ((fd = bound_socket(addr, SOCK_STREAM, reuseport)) < 0)
        return -1;
    if (listen(fd, backlog <= 0 ? SOMAXCONN : backlog) < 0) {
        close_keep_errno(fd);
        return -1;
    }
    return fd;
}

/* A listening stream socket or a bound datagram socket on addr. */
static int open_on(const gr_addr *a, int type, int backlog)
{
    return type == SOCK_STREAM ? gr_listen(a, backlog, 0) : bound_socket(a, type, 0);
}

/* open_on a numeric host. NULL or "" means any address: IPv6 dual-stack,
 * or IPv4 on a host without IPv6. */
static int open_on_host(const char *host, int port, int type, int backlog)
{
    gr_addr a;
    int fd;

    if (gr_addr_ip(&a, host, port) != 0)
        return -1;
    fd = open_on(&a, type, backlog);
    if (fd < 0 && (!host || !*host) && errno == EAFNOSUPPORT &&
        gr_addr_ip(&a, "0.0.0.0", port) == 0)
        fd = open_on(&a, type, backlog);
    return fd;
}

int gr_tcp_listen(const char *host, int port, int backlog)
{
    return open_on_host(host, port, SOCK_STREAM, backlog);
}

int gr_udp_bind(const char *host, int port)
{
    return open_on_host(host, port, SOCK_DGRAM, 0);
}

int gr_local_port(int fd)
{
    gr_addr a;

    a.len = sizeof a.u;
    if (getsockname(fd, &a.u.sa, &a.len) < 0)
        return -1;
    if (a.u.sa.sa_family == AF_INET)
        return ntohs(a.u.in4.sin_port);
    if (a.u.sa.sa_family == AF_INET6)
        return ntohs(a.u.in6.sin6_port);
    errno = EAFNOSUPPORT;
    return -1;
}

int gr_unix_connect(const char *path, int64_t deadline)
{
    gr_addr a;
    int fd;

    if (gr__enter() != 0 || gr_addr_unix(&a, path) != 0)
        return -1;
    if ((fd = gr_socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
        return -1;
    if (gr_connect(fd, &a.u.sa, a.len, deadline) != 0) {
        close_keep_errno(fd);
        return -1;
    }
    return fd;
}

/* ---------------------------------------------------- Happy Eyeballs */

typedef struct eyeballs {
    const struct addrinfo **order; /* addresses to try, families interleaved */
    size_t n, next;
    struct pollfd *pf; /* attempts in progress */
    size_t nact;
    int64_t next_at; /* when to start the next attempt */
    int last_err;
} eyeballs;

/* RFC 8305 section 4: alternate address families, starting with the
 * family of the resolver's first (most preferred) answer. */
static size_t interleave(const struct addrinfo *res, const struct addrinfo **out)
{
    const struct addrinfo *a = res, *b = res;
    int fam = res->ai_family;
    size_t n = 0;

    for (;;) {
        while (a && a->ai_family != fam)
            a = a->ai_next;
        while (b && b->ai_family == fam)
            b = b->ai_next;
        if (!a && !b)
            return n;
        if (a) {
            out[n++] = a;
            a = a->ai_next;
        }
        if (b) {
            out[n++] = b;
            b = b->ai_next;
        }
    }
}

/* Start the next attempt. Returns a connected fd, or -1 (in progress, or
 * failed at once: then the one after may start at once). */
static int attempt_start(eyeballs *e)
{
    const struct addrinfo *ai = e->order[e->next++];
    int fd = gr_socket(ai->ai_family, SOCK_STREAM, ai->ai_protocol);

    e->next_at = gr_now() + ATTEMPT_DELAY_MS;
    if (fd < 0) {
        e->last_err = errno;
        e->next_at = 0;
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS && errno != EINTR) {
        e->last_err = errno;
        e->next_at = 0;
        gr_close(fd);
        return -1;
    }
    e->pf[e->nact++] = (struct pollfd){.fd = fd, .events = POLLOUT};
    return -1;
}

/* Look at the attempts poll reported: the first connected one wins;
 * failed ones are dropped and let the next attempt start at once. */
static int attempts_reap(eyeballs *e)
{
    for (size_t i = 0; i < e->nact;) {
        struct pollfd p = e->pf[i];
        int err = p.revents ? so_error(p.fd) : 0;

        if (!err && !(p.revents & (POLLOUT | POLLERR | POLLHUP))) {
            i++; /* still connecting */
            continue;
        }
        e->pf[i] = e->pf[--e->nact];
        if (!err && !(p.revents & (POLLERR | POLLHUP)))
            return p.fd;
        e->last_err = err ? err : ECONNRESET;
        e->next_at = 0;
        gr_close(p.fd);
    }
    return -1;
}

static int64_t earlier(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static int eyeballs_run(eyeballs *e, int64_t deadline)
{
    for (;;) {
        int fd, n;

        if (e->next < e->n && (e->nact == 0 || gr_now() >= e->next_at)) {
            if ((fd = attempt_start(e)) >= 0)
                return fd;
            continue;
        }
        if (e->nact == 0) {
            errno = e->last_err;
            return -1;
        }
        n = gr_poll(e->pf, e->nact, e->next < e->n ? earlier(e->next_at, deadline) : deadline);
        if (n < 0)
            return -1;
        if (n > 0 && (fd = attempts_reap(e)) >= 0)
            return fd;
        if (deadline >= 0 && gr_now() >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
    }
}

static int gai_errno(int rc)
{
    switch (rc) {
    case EAI_SYSTEM:
        return errno;
    case EAI_AGAIN:
        return EAGAIN;
    case EAI_MEMORY:
        return ENOMEM;
    case EAI_NONAME:
    case EAI_NODATA:
    case EAI_ADDRFAMILY:
    case EAI_FAIL:
        return EADDRNOTAVAIL;
    default:
        return EINVAL;
    }
}

static int resolve(const char *host, int port, struct addrinfo **res, int64_t deadline)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    char serv[8];
    int rc;

    snprintf(serv, sizeof serv, "%d", port);
    hints.ai_flags = AI_NUMERICSERV;
    if ((rc = gr_getaddrinfo(host, serv, &hints, res, deadline)) != 0) {
        errno = gai_errno(rc);
        return -1;
    }
    if (!*res) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    return 0;
}

int gr_tcp_connect_addrinfo(const struct addrinfo *res, int64_t deadline)
{
    eyeballs e = {.last_err = EADDRNOTAVAIL};
    const struct addrinfo *ai;
    size_t n = 0;
    int fd = -1, err;

    for (ai = res; ai; ai = ai->ai_next)
        n++;
    if (!n) {
        errno = EADDRNOTAVAIL;
        return -1;
    }
    e.order = gr__malloc(n * sizeof *e.order);
    e.pf = gr__malloc(n * sizeof *e.pf);
    if (!e.order || !e.pf) {
        errno = ENOMEM;
    } else {
        e.n = interleave(res, e.order);
        if ((fd = eyeballs_run(&e, deadline)) >= 0)
            gr_tcp_nodelay(fd, 1);
    }
    err = errno;
    while (e.nact) /* the losers */
        gr_close(e.pf[--e.nact].fd);
    free(e.order);
    free(e.pf);
    errno = err;
    return fd;
}

int gr_tcp_connect(const char *host, int port, int64_t deadline)
{
    struct addrinfo *res;
    int fd, err;

    if (port <= 0 || port > 65535) {
        errno = EINVAL;
        return -1;
    }
    if (gr__enter() != 0 || resolve(host, port, &res, deadline) != 0)
        return -1;
    fd = gr_tcp_connect_addrinfo(res, deadline);
    err = errno;
    gr_freeaddrinfo(res);
    errno = err;
    return fd;
}
