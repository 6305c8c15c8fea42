/* Sockets: addresses, listen/accept/connect with their deadlines,
 * cancellation and errors, Unix and UDP sockets, IPv6, and
 * gr_tcp_connect's Happy Eyeballs. */
#include "common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

static int has_ipv6(void)
{
    gr_addr a;
    int fd = socket(AF_INET6, SOCK_STREAM, 0), ok;

    if (fd < 0)
        return 0;
    gr_addr_ip(&a, "::1", 0);
    ok = bind(fd, &a.u.sa, a.len) == 0;
    close(fd);
    return ok;
}

/* A port nobody listens on: bound (so nobody else takes it), not
 * listening, so connecting to it is refused. */
static int closed_port(const char *ip, int *holder)
{
    gr_addr a;

    cr_assert_eq(gr_addr_ip(&a, ip, 0), 0);
    *holder = gr_socket(a.u.sa.sa_family, SOCK_STREAM, 0);
    cr_assert_eq(bind(*holder, &a.u.sa, a.len), 0);
    return gr_local_port(*holder);
}

/* A listener whose accept queue is full, so the kernel drops new SYNs and
 * connecting to it stays in progress. fills[] receive the connections
 * that filled it. */
static int blackhole(const char *ip, int *port, int fills[8], int *nfills)
{
    gr_addr a;
    int l;

    cr_assert_eq(gr_addr_ip(&a, ip, 0), 0);
    l = gr_socket(a.u.sa.sa_family, SOCK_STREAM, 0);
    cr_assert_eq(bind(l, &a.u.sa, a.len), 0);
    cr_assert_eq(listen(l, 0), 0);
    *port = gr_local_port(l);
    cr_assert_eq(gr_addr_ip(&a, ip, *port), 0);
    for (*nfills = 0; *nfills < 8;) {
        int c = gr_socket(a.u.sa.sa_family, SOCK_STREAM, 0);

        fills[(*nfills)++] = c;
        if (gr_connect(c, &a.u.sa, a.len, gr_now_update() + 200) != 0) {
            cr_assert_eq(errno, ETIMEDOUT, "%s", strerror(errno));
            return l;
        }
    }
    cr_assert_fail("the accept queue never filled");
    return -1;
}

static void close_all(int *fds, int n)
{
    for (int i = 0; i < n; i++)
        gr_close(fds[i]);
}

/* ------------------------------------------------------------ addresses */

static void check_format(const char *host, int port, const char *want)
{
    gr_addr a;
    char buf[128];

    cr_assert_eq(gr_addr_ip(&a, host, port), 0, "%s", host ? host : "NULL");
    cr_assert_eq(gr_addr_format(&a, buf, sizeof buf), (int)strlen(want));
    cr_assert_str_eq(buf, want);
}

Test(socket, addr_parse_and_format)
{
    gr_addr a;
    char buf[128];

    check_format("127.0.0.1", 80, "127.0.0.1:80");
    check_format("::1", 443, "[::1]:443");
    check_format("[::1]", 443, "[::1]:443");
    check_format("::ffff:1.2.3.4", 1, "[::ffff:1.2.3.4]:1");
    check_format("fe80::1%7", 9, "[fe80::1%7]:9");
    check_format(NULL, 8080, "[::]:8080");
    check_format("", 0, "[::]:0");
    cr_assert_eq(gr_addr_ip(&a, "10.1.2.3", 65535), 0);
    cr_assert_eq(a.u.sa.sa_family, AF_INET);
    cr_assert_eq(a.len, sizeof(struct sockaddr_in));
    assert_fails(gr_addr_ip(&a, "localhost", 80), EINVAL); /* numeric only */
    assert_fails(gr_addr_ip(&a, "1.2.3", 80), EINVAL);
    assert_fails(gr_addr_ip(&a, "[::1", 80), EINVAL);
    assert_fails(gr_addr_ip(&a, "::1%", 80), EINVAL);
    assert_fails(gr_addr_ip(&a, "127.0.0.1", 65536), EINVAL);
    assert_fails(gr_addr_ip(&a, "127.0.0.1", -1), EINVAL);

    cr_assert_eq(gr_addr_unix(&a, "/tmp/sock"), 0);
    cr_assert_eq(gr_addr_format(&a, buf, sizeof buf), 9);
    cr_assert_str_eq(buf, "/tmp/sock");
    cr_assert_eq(gr_addr_unix(&a, "@abstract"), 0);
    cr_assert_eq(a.u.un.sun_path[0], '\0');
    cr_assert_eq(gr_addr_format(&a, buf, sizeof buf), 9);
    cr_assert_str_eq(buf, "@abstract");
    assert_fails(gr_addr_unix(&a, ""), EINVAL);
    memset(buf, 'x', sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    assert_fails(gr_addr_unix(&a, buf), ENAMETOOLONG);

    /* Buffers too small, and families grove does not speak. */
    gr_addr_ip(&a, "::1", 443);
    assert_fails(gr_addr_format(&a, buf, 9), ENOSPC);
    cr_assert_eq(gr_addr_format(&a, buf, 10), 9);
    gr_addr_ip(&a, "255.255.255.255", 65535);
    cr_assert_eq(gr_addr_format(&a, buf, 64), 21);
    a.u.sa.sa_family = AF_PACKET;
    assert_fails(gr_addr_format(&a, buf, sizeof buf), EAFNOSUPPORT);
}

/* ------------------------------------------------- listen, accept, connect */

static void *listen_accept_connect(void *arg)
{
    gr_addr a, peer, local;
    char buf[64];
    int l, c, s, port, other;

    (void)arg;
    l = gr_tcp_listen("127.0.0.1", 0, 0);
    cr_assert_geq(l, 0);
    port = gr_local_port(l);
    cr_assert_gt(port, 0);
    /* Nobody connects: the deadline; deadline 0 tries once. */
    assert_fails(gr_accept(l, NULL, 0), ETIMEDOUT);
    assert_fails(gr_accept(l, NULL, gr_now() + 5), ETIMEDOUT);
    gr_addr_ip(&a, "127.0.0.1", port);
    c = gr_socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_eq(gr_connect(c, &a.u.sa, a.len, gr_now() + 5000), 0);
    s = gr_accept(l, &peer, gr_now() + 5000);
    cr_assert_geq(s, 0);
    cr_assert(fcntl(s, F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(s, F_GETFD) & FD_CLOEXEC);
    local.len = sizeof local.u;
    getsockname(c, &local.u.sa, &local.len);
    cr_assert_eq(peer.len, local.len);
    cr_assert_eq(memcmp(&peer.u.in4, &local.u.in4, sizeof peer.u.in4), 0);
    cr_assert_eq(gr_write(c, "hi", 2, -1), 2);
    cr_assert_eq(gr_read(s, buf, sizeof buf, -1), 2);
    /* SO_REUSEADDR: the port is free for a new listener once closed, and
     * a second listener without SO_REUSEPORT is refused. */
    assert_fails(gr_tcp_listen("127.0.0.1", port, 0), EADDRINUSE);
    gr_close(l);
    cr_assert_geq(l = gr_tcp_listen("127.0.0.1", port, 0), 0);
    gr_close(l);
    gr_addr_ip(&a, "127.0.0.1", 0);
    l = gr_listen(&a, 0, 1);
    cr_assert_geq(l, 0);
    gr_addr_ip(&a, "127.0.0.1", gr_local_port(l));
    other = gr_listen(&a, 0, 1);
    cr_assert_geq(other, 0, "SO_REUSEPORT: %s", strerror(errno));
    gr_close(other);
    gr_close(l);
    gr_close(c);
    gr_close(s);
    assert_fails(gr_tcp_listen("not-an-ip", 0, 0), EINVAL);
    assert_fails(gr_local_port(-1), EBADF);
    return NULL;
}

Test(socket, listen_accept_connect_and_deadlines, .timeout = 10)
{
    run_main(listen_accept_connect, NULL);
}

static void *refused(void *arg)
{
    int holder, port = closed_port("127.0.0.1", &holder), c;
    gr_addr a;

    (void)arg;
    gr_addr_ip(&a, "127.0.0.1", port);
    c = gr_socket(AF_INET, SOCK_STREAM, 0);
    assert_fails(gr_connect(c, &a.u.sa, a.len, gr_now() + 5000), ECONNREFUSED);
    gr_close(c);
    assert_fails(gr_tcp_connect("127.0.0.1", port, gr_now() + 5000), ECONNREFUSED);
    gr_close(holder);
    return NULL;
}

Test(socket, connect_to_a_closed_port_is_refused, .timeout = 10)
{
    run_main(refused, NULL);
}

static int accept_fd;

static void *accepts(void *arg)
{
    (void)arg;
    errno = 0;
    cr_assert_eq(gr_accept(accept_fd, NULL, -1), -1);
    return (void *)(intptr_t)errno;
}

static void *connects(void *arg)
{
    gr_addr *a = arg;
    int c = gr_socket(a->u.sa.sa_family, SOCK_STREAM, 0);
    int err;

    errno = 0;
    cr_assert_eq(gr_connect(c, &a->u.sa, a->len, -1), -1);
    err = errno;
    gr_close(c); /* a failed connect leaves the fd to its caller */
    return (void *)(intptr_t)err;
}

static void *cancel_accept_connect(void *arg)
{
    int fills[8], nfills, port, l;
    gr_addr a;
    void *r;
    gr_t g;

    (void)arg;
    /* accept: killed, then its socket closed under it. */
    accept_fd = gr_tcp_listen("127.0.0.1", 0, 0);
    g = gr_spawn(accepts, NULL);
    gr_yield();
    gr_kill(g);
    cr_assert_eq(gr_join(g, &r, gr_now() + 1000), 0);
    cr_assert_eq((intptr_t)r, ECANCELED);
    g = gr_spawn(accepts, NULL);
    gr_yield();
    gr_close(accept_fd);
    cr_assert_eq(gr_join(g, &r, gr_now() + 1000), 0);
    cr_assert_eq((intptr_t)r, EBADF);

    /* connect: to a listener that drops SYNs, it stays in progress. */
    l = blackhole("127.0.0.1", &port, fills, &nfills);
    gr_addr_ip(&a, "127.0.0.1", port);
    g = gr_spawn(connects, &a);
    gr_yield();
    gr_kill(g);
    cr_assert_eq(gr_join(g, &r, gr_now() + 1000), 0);
    cr_assert_eq((intptr_t)r, ECANCELED);
    assert_fails(gr_tcp_connect("127.0.0.1", port, gr_now() + 20), ETIMEDOUT);
    close_all(fills, nfills);
    gr_close(l);
    return NULL;
}

Test(socket, cancel_and_deadlines_of_accept_and_connect, .timeout = 20)
{
    run_main(cancel_accept_connect, NULL);
}

/* -------------------------------------------------------- gr_tcp_connect */

static void *tcp_connect(void *arg)
{
    int l = gr_tcp_listen(NULL, 0, 0), port = gr_local_port(l), c, s, on = 0;
    socklen_t len = sizeof on;
    struct addrinfo *res;
    gr_addr peer;

    (void)arg;
    cr_assert_geq(l, 0);
    /* The dual-stack listener serves IPv4... */
    c = gr_tcp_connect("127.0.0.1", port, gr_now() + 5000);
    cr_assert_geq(c, 0, "%s", strerror(errno));
    cr_assert_eq(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, &len), 0);
    cr_assert_eq(on, 1);
    s = gr_accept(l, &peer, gr_now() + 5000);
    cr_assert_geq(s, 0);
    cr_assert_eq(gr_write_all(c, "ok", 2, NULL, -1), 0);
    cr_assert_eq(gr_read_exact(s, &on, 2, NULL, gr_now() + 5000), 0);
    gr_close(c);
    gr_close(s);
    /* ...and IPv6. */
    if (has_ipv6()) {
        char name[64];

        c = gr_tcp_connect("::1", port, gr_now() + 5000);
        cr_assert_geq(c, 0, "%s", strerror(errno));
        s = gr_accept(l, &peer, gr_now() + 5000);
        cr_assert_geq(s, 0);
        cr_assert_eq(peer.u.sa.sa_family, AF_INET6);
        gr_addr_format(&peer, name, sizeof name);
        cr_assert(strncmp(name, "[::1]:", 6) == 0, "%s", name);
        gr_close(c);
        gr_close(s);
    }
    /* A name, when the resolver can resolve one. */
    if (gr_getaddrinfo("localhost", NULL, NULL, &res, gr_now() + 5000) == 0) {
        gr_freeaddrinfo(res);
        c = gr_tcp_connect("localhost", port, gr_now() + 5000);
        cr_assert_geq(c, 0, "%s", strerror(errno));
        s = gr_accept(l, NULL, gr_now() + 5000);
        cr_assert_geq(s, 0);
        gr_close(c);
        gr_close(s);
    } else {
        cr_log_warn("the resolver cannot resolve \"localhost\" yet: skipped");
    }
    assert_fails(gr_tcp_connect("127.0.0.1", 0, -1), EINVAL);
    assert_fails(gr_tcp_connect("127.0.0.1", 65536, -1), EINVAL);
    assert_fails(gr_tcp_connect("no-such-host.invalid", 80, gr_now() + 5000), EADDRNOTAVAIL);
    gr_close(l);
    return NULL;
}

Test(socket, tcp_connect_numeric_and_localhost, .timeout = 20)
{
    run_main(tcp_connect, NULL);
}

/* Addresses chained by hand, as a resolver would return them. */
typedef struct fake_ai {
    struct addrinfo ai;
    gr_addr a;
} fake_ai;

static void fake_chain(fake_ai *v, const char **ips, const int *ports, int n)
{
    for (int i = 0; i < n; i++) {
        cr_assert_eq(gr_addr_ip(&v[i].a, ips[i], ports[i]), 0);
        v[i].ai = (struct addrinfo){
            .ai_family = v[i].a.u.sa.sa_family,
            .ai_socktype = SOCK_STREAM,
            .ai_addrlen = v[i].a.len,
            .ai_addr = &v[i].a.u.sa,
            .ai_next = i + 1 < n ? &v[i + 1].ai : NULL,
        };
    }
}

static int peer_port(int fd)
{
    gr_addr a;

    a.len = sizeof a.u;
    getpeername(fd, &a.u.sa, &a.len);
    return ntohs(a.u.sa.sa_family == AF_INET ? a.u.in4.sin_port : a.u.in6.sin6_port);
}

static void *eyeballs(void *arg)
{
    int fills[8], nfills, hole, l = gr_tcp_listen("127.0.0.1", 0, 0), good, refused, holder;
    int64_t t0;
    fake_ai v[3];
    int c;

    (void)arg;
    good = gr_local_port(l);
    refused = closed_port("127.0.0.1", &holder);
    int bh = blackhole("127.0.0.1", &hole, fills, &nfills);

    /* The first address hangs: the second starts 250 ms later and wins. */
    fake_chain(v, (const char *[]){"127.0.0.1", "127.0.0.1"}, (int[]){hole, good}, 2);
    t0 = gr_now_update();
    c = gr_tcp_connect_addrinfo(&v[0].ai, gr_now() + 5000);
    cr_assert_geq(c, 0, "%s", strerror(errno));
    cr_assert_eq(peer_port(c), good);
    cr_assert_geq(gr_now_update() - t0, 240);
    cr_assert_lt(gr_now() - t0, 1000);
    gr_close(c);
    gr_close(gr_accept(l, NULL, gr_now() + 1000));

    /* A refusal starts the next attempt at once. */
    fake_chain(v, (const char *[]){"127.0.0.1", "127.0.0.1"}, (int[]){refused, good}, 2);
    t0 = gr_now_update();
    c = gr_tcp_connect_addrinfo(&v[0].ai, gr_now() + 5000);
    cr_assert_geq(c, 0);
    cr_assert_lt(gr_now_update() - t0, 200);
    gr_close(c);
    gr_close(gr_accept(l, NULL, gr_now() + 1000));

    /* Families alternate: v4, v6, v4 is tried as v4, v6, v4 but v6, v6,
     * v4 as v6, v4, v6: the v4 good address comes second, not last. */
    if (has_ipv6()) {
        int h6, fills6[8], n6, bh6 = blackhole("::1", &h6, fills6, &n6);

        fake_chain(v, (const char *[]){"::1", "::1", "127.0.0.1"}, (int[]){h6, h6, good}, 3);
        t0 = gr_now_update();
        c = gr_tcp_connect_addrinfo(&v[0].ai, gr_now() + 5000);
        cr_assert_geq(c, 0);
        cr_assert_eq(peer_port(c), good);
        cr_assert_lt(gr_now_update() - t0, 490, "the IPv4 address was not tried second");
        gr_close(c);
        gr_close(gr_accept(l, NULL, gr_now() + 1000));
        close_all(fills6, n6);
        gr_close(bh6);
    }

    /* Every address fails: the last failure's errno; or the deadline. */
    fake_chain(v, (const char *[]){"127.0.0.1", "127.0.0.1"}, (int[]){refused, refused}, 2);
    assert_fails(gr_tcp_connect_addrinfo(&v[0].ai, gr_now() + 5000), ECONNREFUSED);
    fake_chain(v, (const char *[]){"127.0.0.1", "127.0.0.1"}, (int[]){hole, hole}, 2);
    t0 = gr_now_update();
    assert_fails(gr_tcp_connect_addrinfo(&v[0].ai, gr_now() + 300), ETIMEDOUT);
    cr_assert_lt(gr_now_update() - t0, 1000);
    close_all(fills, nfills);
    gr_close(bh);
    gr_close(holder);
    gr_close(l);
    return NULL;
}

Test(socket, happy_eyeballs_staggers_and_interleaves, .timeout = 20)
{
    run_main(eyeballs, NULL);
}

/* ----------------------------------------------------------- Unix, UDP */

static void *unix_sockets(void *arg)
{
    char path[64], buf[8];
    gr_addr a;
    int l, c, s;

    (void)arg;
    snprintf(path, sizeof path, "/tmp/grove-sock-%d", (int)getpid());
    unlink(path);
    gr_addr_unix(&a, path);
    l = gr_listen(&a, 0, 0);
    cr_assert_geq(l, 0, "%s", strerror(errno));
    c = gr_unix_connect(path, gr_now() + 1000);
    cr_assert_geq(c, 0);
    s = gr_accept(l, NULL, gr_now() + 1000);
    cr_assert_geq(s, 0);
    cr_assert_eq(gr_write(c, "unix", 4, -1), 4);
    cr_assert_eq(gr_read(s, buf, sizeof buf, -1), 4);
    gr_close(c);
    gr_close(s);
    gr_close(l);
    unlink(path);
    assert_fails(gr_unix_connect(path, gr_now() + 1000), ENOENT);

    /* An abstract name; a full backlog makes connect wait and retry. */
    snprintf(path, sizeof path, "@grove-abstract-%d", (int)getpid());
    gr_addr_unix(&a, path);
    l = gr_listen(&a, 1, 0);
    cr_assert_geq(l, 0);
    int fds[16], n = 0;
    for (;;) {
        cr_assert_lt(n, 16);
        if ((fds[n] = gr_unix_connect(path, gr_now() + 50)) < 0)
            break;
        n++;
    }
    cr_assert_eq(errno, ETIMEDOUT);
    gr_close(gr_accept(l, NULL, -1)); /* room for one more */
    c = gr_unix_connect(path, gr_now() + 2000);
    cr_assert_geq(c, 0, "%s", strerror(errno));
    gr_close(c);
    close_all(fds, n);
    gr_close(l);
    return NULL;
}

Test(socket, unix_paths_abstract_names_and_full_backlogs, .timeout = 10)
{
    run_main(unix_sockets, NULL);
}

static void *udp_any(void *arg)
{
    int a = gr_udp_bind(NULL, 0), b = gr_udp_bind("127.0.0.1", 0);
    gr_addr to;
    char buf[8];

    (void)arg;
    cr_assert_geq(a, 0);
    cr_assert_geq(b, 0);
    /* "any" is dual-stack: IPv4 datagrams arrive on it. */
    gr_addr_ip(&to, "127.0.0.1", gr_local_port(a));
    cr_assert_eq(gr_sendto(b, "v4", 2, 0, &to.u.sa, to.len, -1), 2);
    cr_assert_eq(gr_recv(a, buf, sizeof buf, 0, gr_now() + 1000), 2);
    assert_fails(gr_udp_bind("127.0.0.1", gr_local_port(b)), EADDRINUSE);
    assert_fails(gr_udp_bind("nope", 0), EINVAL);
    gr_close(a);
    gr_close(b);
    return NULL;
}

Test(socket, udp_bind_any_is_dual_stack, .timeout = 10)
{
    run_main(udp_any, NULL);
}

static void *ipv6(void *arg)
{
    int l, c, s;
    gr_addr peer;
    char buf[8];

    (void)arg;
    l = gr_tcp_listen("::1", 0, 0);
    cr_assert_geq(l, 0);
    c = gr_tcp_connect("::1", gr_local_port(l), gr_now() + 5000);
    cr_assert_geq(c, 0);
    s = gr_accept(l, &peer, gr_now() + 5000);
    cr_assert_geq(s, 0);
    cr_assert_eq(peer.u.sa.sa_family, AF_INET6);
    cr_assert_eq(gr_write(s, "six", 3, -1), 3);
    cr_assert_eq(gr_read(c, buf, sizeof buf, gr_now() + 1000), 3);
    gr_close(c);
    gr_close(s);
    gr_close(l);
    return NULL;
}

Test(socket, ipv6_on_loopback, .timeout = 10)
{
    if (!has_ipv6())
        cr_skip_test("no IPv6 on this host");
    run_main(ipv6, NULL);
}

Test(socket, nodelay)
{
    int fd = gr_socket(AF_INET, SOCK_STREAM, 0), on = 0;
    socklen_t len = sizeof on;

    cr_assert_eq(gr_tcp_nodelay(fd, 1), 0);
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len);
    cr_assert_eq(on, 1);
    cr_assert_eq(gr_tcp_nodelay(fd, 0), 0);
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len);
    cr_assert_eq(on, 0);
    close(fd);
    assert_fails(gr_tcp_nodelay(fd, 1), EBADF);
}
