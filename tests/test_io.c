/* Cooperative I/O on real descriptors: every call, its deadlines, its
 * cancellation, and its failure paths (reset, EPIPE without SIGPIPE,
 * half-close); the buffered reader. */
#include "common.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------- helpers */

/* Fill fd's send path until a write would block. Returns bytes written. */
static size_t fill_socket(int fd)
{
    static char junk[65536];
    size_t total = 0;
    ssize_t n;

    while ((n = send(fd, junk, sizeof junk, MSG_DONTWAIT | MSG_NOSIGNAL)) > 0)
        total += (size_t)n;
    cr_assert(errno == EAGAIN || errno == EWOULDBLOCK);
    return total;
}

static void pattern(unsigned char *p, size_t n, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1;

    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        p[i] = (unsigned char)x;
    }
}

/* --------------------------------------------------------- read/write */

static int rw_fd;

static void *write_soon(void *arg)
{
    (void)arg;
    gr_yield();
    cr_assert_eq(gr_write(rw_fd, "hello", 5, gr_now() + 1000), 5);
    return NULL;
}

static void *read_write(void *arg)
{
    int sv[2];
    char buf[16];
    gr_t w;

    (void)arg;
    unix_pair(sv);
    /* Nothing to read: deadline 0 tries once, a deadline waits that long. */
    assert_fails(gr_read(sv[0], buf, sizeof buf, 0), ETIMEDOUT);
    assert_fails(gr_read(sv[0], buf, sizeof buf, gr_now() + 5), ETIMEDOUT);
    /* Data ready: even deadline 0 succeeds. */
    cr_assert_eq(gr_write(sv[1], "abc", 3, 0), 3);
    cr_assert_eq(gr_read(sv[0], buf, sizeof buf, 0), 3);
    cr_assert_eq(memcmp(buf, "abc", 3), 0);
    /* Blocks until another green thread writes. */
    rw_fd = sv[1];
    w = gr_spawn(write_soon, NULL);
    cr_assert_eq(gr_read(sv[0], buf, sizeof buf, gr_now() + 5000), 5);
    cr_assert_eq(memcmp(buf, "hello", 5), 0);
    gr_join(w, NULL, -1);
    /* send/recv, and EOF. */
    cr_assert_eq(gr_send(sv[1], "xy", 2, 0, -1), 2);
    cr_assert_eq(gr_recv(sv[0], buf, sizeof buf, MSG_PEEK, -1), 2);
    cr_assert_eq(gr_recv(sv[0], buf, sizeof buf, 0, -1), 2);
    gr_close(sv[1]);
    cr_assert_eq(gr_read(sv[0], buf, sizeof buf, -1), 0);
    gr_close(sv[0]);
    assert_fails(gr_read(-1, buf, 1, -1), EBADF);
    return NULL;
}

Test(io, read_write_deadlines_and_eof, .timeout = 10)
{
    run_main(read_write, NULL);
}

static void *write_deadline(void *arg)
{
    int sv[2];
    char buf[4096] = {0};
    size_t done = 12345;
    gr_timeout t;

    (void)arg;
    unix_pair(sv);
    fill_socket(sv[0]);
    assert_fails(gr_write(sv[0], buf, sizeof buf, 0), ETIMEDOUT);
    assert_fails(gr_write(sv[0], buf, sizeof buf, gr_now() + 5), ETIMEDOUT);
    assert_fails(gr_write_all(sv[0], buf, sizeof buf, &done, gr_now() + 5), ETIMEDOUT);
    cr_assert_eq(done, 0);
    /* A Timeout region bounds a call with no deadline of its own. */
    gr_timeout_begin(&t, gr_now_update() + 5);
    assert_fails(gr_write(sv[0], buf, sizeof buf, -1), ETIMEDOUT);
    assert_fails(gr_read(sv[1] + 1000, buf, 1, -1), EBADF);
    gr_timeout_end(&t);
    close_pair(sv);
    return NULL;
}

Test(io, write_deadline_when_the_peer_does_not_read, .timeout = 10)
{
    run_main(write_deadline, NULL);
}

/* --------------------------------------------------------- cancellation */

enum {
    OP_READ,
    OP_READV,
    OP_RECV,
    OP_RECVFROM,
    OP_RECVMSG,
    OP_READ_EXACT,
    OP_READER_LINE,
    OP_WRITE, /* the writes, from here on */
    OP_WRITEV,
    OP_SEND,
    OP_SENDTO,
    OP_SENDMSG,
    OP_WRITE_ALL,
    OP_LAST = OP_WRITE_ALL
};
static int cancel_fd;

static void *blocked_in(void *arg)
{
    int op = (int)(intptr_t)arg;
    char big[65536] = {0}, c, rbuf[64];
    struct iovec iov = {&c, 1}, wiov = {big, sizeof big};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    struct msghdr wm = {.msg_iov = &wiov, .msg_iovlen = 1};
    gr_reader r;
    size_t done;
    long rc = 0;

    errno = 0;
    switch (op) {
    case OP_READ:
        rc = gr_read(cancel_fd, &c, 1, -1);
        break;
    case OP_WRITE:
        rc = gr_write(cancel_fd, big, sizeof big, -1);
        break;
    case OP_READV:
        rc = gr_readv(cancel_fd, &iov, 1, -1);
        break;
    case OP_RECVFROM:
        rc = gr_recvfrom(cancel_fd, &c, 1, 0, NULL, NULL, -1);
        break;
    case OP_RECVMSG:
        rc = gr_recvmsg(cancel_fd, &m, 0, -1);
        break;
    case OP_READ_EXACT:
        rc = gr_read_exact(cancel_fd, big, 10, &done, -1);
        break;
    case OP_WRITE_ALL:
        rc = gr_write_all(cancel_fd, big, sizeof big, &done, -1);
        break;
    case OP_RECV:
        rc = gr_recv(cancel_fd, &c, 1, 0, -1);
        break;
    case OP_READER_LINE:
        gr_reader_init(&r, cancel_fd, rbuf, sizeof rbuf);
        rc = gr_reader_line(&r, rbuf, sizeof rbuf, -1);
        break;
    case OP_WRITEV:
        rc = gr_writev(cancel_fd, &wiov, 1, -1);
        break;
    case OP_SEND:
        rc = gr_send(cancel_fd, big, sizeof big, 0, -1);
        break;
    case OP_SENDTO:
        rc = gr_sendto(cancel_fd, big, sizeof big, 0, NULL, 0, -1);
        break;
    case OP_SENDMSG:
        rc = gr_sendmsg(cancel_fd, &wm, 0, -1);
        break;
    }
    cr_assert_eq(rc, -1, "op %d returned %ld", op, rc);
    return (void *)(intptr_t)errno;
}

static void *cancel_each(void *arg)
{
    int sv[2];

    (void)arg;
    unix_pair(sv);
    for (int op = OP_READ; op <= OP_LAST; op++) {
        int writes = op >= OP_WRITE;
        void *r;
        gr_t g;

        if (writes)
            fill_socket(sv[0]);
        cancel_fd = sv[0];
        g = gr_spawn(blocked_in, (void *)(intptr_t)op);
        gr_yield(); /* it blocks */
        cr_assert_eq(gr_kill(g), 0);
        cr_assert_eq(gr_join(g, &r, gr_now() + 1000), 0);
        cr_assert_eq((intptr_t)r, ECANCELED, "op %d: errno %d", op, (int)(intptr_t)r);
        if (writes) { /* drain for the next round */
            char buf[65536];

            while (read(sv[1], buf, sizeof buf) > 0) {
            }
        }
    }
    close_pair(sv);
    return NULL;
}

Test(io, cancel_while_blocked_in_each_call, .timeout = 10)
{
    run_main(cancel_each, NULL);
}

static void *killed_with_data_ready(void *arg)
{
    int sv[2];
    char c;

    (void)arg;
    unix_pair(sv);
    cr_assert_eq(write(sv[1], "z", 1), 1);
    gr_kill(gr_self());
    assert_fails(gr_read(sv[0], &c, 1, -1), ECANCELED);
    assert_fails(gr_write(sv[1], "a", 1, -1), ECANCELED);
    assert_fails(gr_write_all(sv[1], "", 0, NULL, -1), ECANCELED);
    close_pair(sv);
    return NULL;
}

Test(io, killed_thread_fails_even_when_data_is_ready, .timeout = 10)
{
    run_main(killed_with_data_ready, NULL);
}

static void *reader_until_closed(void *arg)
{
    char c;

    (void)arg;
    assert_fails(gr_read(cancel_fd, &c, 1, -1), EBADF);
    return NULL;
}

static void *close_wakes_reader(void *arg)
{
    int sv[2];
    gr_t g;

    (void)arg;
    unix_pair(sv);
    cancel_fd = sv[0];
    g = gr_spawn(reader_until_closed, NULL);
    gr_yield();
    gr_close(sv[0]);
    cr_assert_eq(gr_join(g, NULL, gr_now() + 1000), 0);
    gr_close(sv[1]);
    return NULL;
}

Test(io, gr_close_wakes_a_blocked_reader_with_ebadf, .timeout = 10)
{
    run_main(close_wakes_reader, NULL);
}

/* ------------------------------------------------ resets and half-close */

static void *reset_mid_read(void *arg)
{
    int sv[2];
    struct linger lg = {1, 0};
    gr_t g;
    void *r;

    (void)arg;
    tcp_pair(sv);
    cancel_fd = sv[0];
    g = gr_spawn(blocked_in, (void *)(intptr_t)OP_READ);
    gr_yield(); /* blocked in the read */
    cr_assert_eq(setsockopt(sv[1], SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    gr_close(sv[1]); /* sends RST */
    cr_assert_eq(gr_join(g, &r, gr_now() + 5000), 0);
    cr_assert_eq((intptr_t)r, ECONNRESET);
    gr_close(sv[0]);
    return NULL;
}

Test(io, peer_reset_mid_read_is_econnreset, .timeout = 10)
{
    run_main(reset_mid_read, NULL);
}

static void *half_close_writer(void *arg)
{
    int fd = (int)(intptr_t)arg;

    /* Still writing after the other side has shut its own writing down. */
    for (int i = 0; i < 100; i++)
        cr_assert_eq(gr_write_all(fd, "0123456789", 10, NULL, gr_now() + 5000), 0);
    shutdown(fd, SHUT_WR);
    return NULL;
}

static void *half_close(void *arg)
{
    int sv[2];
    char buf[256];
    size_t got = 0;
    ssize_t n;
    gr_t w;

    (void)arg;
    tcp_pair(sv);
    cr_assert_eq(gr_write_all(sv[0], "request", 7, NULL, -1), 0);
    cr_assert_eq(shutdown(sv[0], SHUT_WR), 0);
    /* The server reads the request and then EOF... */
    cr_assert_eq(gr_read_exact(sv[1], buf, 7, NULL, gr_now() + 5000), 0);
    cr_assert_eq(gr_read(sv[1], buf, sizeof buf, gr_now() + 5000), 0);
    /* ...and still answers, which the client still reads. */
    w = gr_spawn(half_close_writer, (void *)(intptr_t)sv[1]);
    while ((n = gr_read(sv[0], buf, sizeof buf, gr_now() + 5000)) > 0)
        got += (size_t)n;
    cr_assert_eq(n, 0);
    cr_assert_eq(got, 1000);
    gr_join(w, NULL, -1);
    close_pair(sv);
    return NULL;
}

Test(io, half_close_reads_eof_while_the_other_way_flows, .timeout = 10)
{
    run_main(half_close, NULL);
}

/* --------------------------------------------------------------- SIGPIPE */

static void *no_sigpipe(void *arg)
{
    int sv[2], p[2];
    char buf[4096] = {0};
    struct iovec iov = {buf, sizeof buf};
    sigset_t pending;
    ssize_t n;

    (void)arg;
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill the test */
    unix_pair(sv);
    gr_close(sv[1]);
    assert_fails(gr_write(sv[0], buf, 10, -1), EPIPE);
    assert_fails(gr_writev(sv[0], &iov, 1, -1), EPIPE);
    assert_fails(gr_send(sv[0], buf, 10, 0, -1), EPIPE);
    assert_fails(gr_write_all(sv[0], buf, sizeof buf, NULL, -1), EPIPE);
    gr_close(sv[0]);
    /* Pipes have no MSG_NOSIGNAL: the signal is blocked and taken back. */
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    gr_close(p[0]);
    assert_fails(gr_write(p[1], buf, 10, -1), EPIPE);
    assert_fails(gr_writev(p[1], &iov, 1, -1), EPIPE);
    sigpending(&pending);
    cr_assert_not(sigismember(&pending, SIGPIPE));
    gr_close(p[1]);
    /* TCP: the first write may still succeed, then RST, then EPIPE. */
    tcp_pair(sv);
    gr_close(sv[1]);
    do
        n = gr_write(sv[0], buf, sizeof buf, gr_now() + 5000);
    while (n > 0);
    cr_assert(errno == EPIPE || errno == ECONNRESET, "errno %s", strerror(errno));
    gr_close(sv[0]);
    return NULL;
}

Test(io, writes_to_a_closed_peer_fail_with_epipe_not_sigpipe, .timeout = 10)
{
    run_main(no_sigpipe, NULL);
}

/* ------------------------------------------------------- big transfers */

#define MIB (1024 * 1024)

static void *slow_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    unsigned char *got = malloc(MIB), *want = malloc(MIB);
    size_t off = 0;

    pattern(want, MIB, 7);
    while (off < MIB) {
        ssize_t n = gr_read(fd, got + off, 16384 < MIB - off ? 16384 : MIB - off, gr_now() + 5000);

        cr_assert_gt(n, 0);
        off += (size_t)n;
        gr_sleep(gr_now() + 1); /* drains slowly */
    }
    cr_assert_eq(memcmp(got, want, MIB), 0);
    free(got);
    free(want);
    return NULL;
}

static void *write_all_slow(void *arg)
{
    int sv[2];
    unsigned char *data = malloc(MIB);
    size_t done = 0;
    gr_t r;

    (void)arg;
    tcp_pair(sv);
    pattern(data, MIB, 7);
    r = gr_spawn(slow_reader, (void *)(intptr_t)sv[1]);
    cr_assert_eq(gr_write_all(sv[0], data, MIB, &done, gr_now() + 20000), 0);
    cr_assert_eq(done, MIB);
    cr_assert_eq(gr_join(r, NULL, -1), 0);
    free(data);
    close_pair(sv);
    return NULL;
}

Test(io, write_all_of_1mib_to_a_slow_reader, .timeout = 30)
{
    run_main(write_all_slow, NULL);
}

static void *partial_progress(void *arg)
{
    int sv[2];
    unsigned char *data = calloc(1, MIB);
    size_t done = 0;

    (void)arg;
    unix_pair(sv);
    /* Nobody reads: the write gets as far as the buffers and times out. */
    assert_fails(gr_write_all(sv[0], data, MIB, &done, gr_now() + 20), ETIMEDOUT);
    cr_assert_gt(done, 0);
    cr_assert_lt(done, MIB);
    free(data);
    close_pair(sv);
    return NULL;
}

Test(io, write_all_reports_partial_progress, .timeout = 10)
{
    run_main(partial_progress, NULL);
}

static void *read_exact(void *arg)
{
    int sv[2];
    char buf[16];
    size_t done = 99;

    (void)arg;
    unix_pair(sv);
    cr_assert_eq(write(sv[1], "0123456789", 10), 10);
    cr_assert_eq(gr_read_exact(sv[0], buf, 4, &done, -1), 0);
    cr_assert_eq(done, 4);
    assert_fails(gr_read_exact(sv[0], buf, 10, &done, gr_now() + 5), ETIMEDOUT);
    cr_assert_eq(done, 6);
    cr_assert_eq(write(sv[1], "ab", 2), 2);
    gr_close(sv[1]);
    assert_fails(gr_read_exact(sv[0], buf, 10, &done, -1), EPIPE);
    cr_assert_eq(done, 2);
    cr_assert_eq(gr_read_exact(sv[0], buf, 0, &done, -1), 0);
    gr_close(sv[0]);
    return NULL;
}

Test(io, read_exact_reports_progress_and_early_eof, .timeout = 10)
{
    run_main(read_exact, NULL);
}

/* ------------------------------------------------------------ sendfile */

static int temp_file(size_t size, unsigned seed)
{
    char path[] = "/tmp/grove-io-XXXXXX";
    unsigned char *data = malloc(size);
    int f = mkstemp(path);

    cr_assert_geq(f, 0);
    unlink(path);
    pattern(data, size, seed);
    cr_assert_eq(write(f, data, size), (ssize_t)size);
    free(data);
    return f;
}

static void *sendfile_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    size_t size = 300000, off = 0;
    unsigned char *got = malloc(size), *want = malloc(size);

    pattern(want, size, 3);
    cr_assert_eq(gr_read_exact(fd, got, size - 1000, &off, gr_now() + 10000), 0);
    cr_assert_eq(memcmp(got, want + 1000, size - 1000), 0);
    free(got);
    free(want);
    return NULL;
}

static void *send_file(void *arg)
{
    int sv[2], f = temp_file(300000, 3);
    off_t off = 1000;
    size_t left = 300000 - 1000;
    gr_t r;

    (void)arg;
    tcp_pair(sv);
    r = gr_spawn(sendfile_reader, (void *)(intptr_t)sv[1]);
    while (left) { /* larger than the socket buffer: it waits for room */
        ssize_t n = gr_sendfile(sv[0], f, &off, left, gr_now() + 10000);

        cr_assert_gt(n, 0, "sendfile: %s", strerror(errno));
        left -= (size_t)n;
    }
    cr_assert_eq(off, 300000);
    cr_assert_eq(gr_join(r, NULL, -1), 0);
    /* No reader: the deadline. A closed reader: EPIPE, no SIGPIPE. */
    fill_socket(sv[0]);
    off = 0;
    assert_fails(gr_sendfile(sv[0], f, &off, 1000, gr_now() + 5), ETIMEDOUT);
    close_pair(sv);
    signal(SIGPIPE, SIG_DFL);
    unix_pair(sv);
    gr_close(sv[1]);
    off = 0;
    assert_fails(gr_sendfile(sv[0], f, &off, 1000, -1), EPIPE);
    gr_close(sv[0]);
    close(f);
    return NULL;
}

Test(io, sendfile_waits_for_room_and_never_raises_sigpipe, .timeout = 20)
{
    run_main(send_file, NULL);
}

/* ------------------------------------------------------- vectors, msgs */

static void *vectors(void *arg)
{
    int sv[2], p[2];
    char a[3], b[5], out[8];
    struct iovec w[2] = {{"abc", 3}, {"defgh", 5}}, r[2] = {{a, 3}, {b, 5}};

    (void)arg;
    unix_pair(sv);
    cr_assert_eq(gr_writev(sv[0], w, 2, -1), 8);
    cr_assert_eq(gr_readv(sv[1], r, 2, -1), 8);
    cr_assert_eq(memcmp(a, "abc", 3), 0);
    cr_assert_eq(memcmp(b, "defgh", 5), 0);
    assert_fails(gr_readv(sv[1], r, 2, gr_now() + 5), ETIMEDOUT);
    close_pair(sv);
    /* Not a socket: writev itself. */
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    cr_assert_eq(gr_writev(p[1], w, 2, -1), 8);
    cr_assert_eq(gr_write(p[1], "!", 1, -1), 1);
    cr_assert_eq(gr_read(p[0], out, sizeof out, -1), 8);
    cr_assert_eq(memcmp(out, "abcdefgh", 8), 0);
    gr_close(p[0]);
    gr_close(p[1]);
    return NULL;
}

Test(io, readv_and_writev_on_sockets_and_pipes, .timeout = 10)
{
    run_main(vectors, NULL);
}

static void *pass_fd(void *arg)
{
    int sv[2], p[2], got;
    char c = 'F', data[8];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {&c, 1};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

    (void)arg;
    unix_pair(sv);
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &p[1], sizeof(int));
    cr_assert_eq(gr_sendmsg(sv[0], &m, 0, -1), 1);

    memset(&ctl, 0, sizeof ctl);
    c = 0;
    m.msg_controllen = sizeof ctl.buf;
    cr_assert_eq(gr_recvmsg(sv[1], &m, 0, gr_now() + 1000), 1);
    cr_assert_eq(c, 'F');
    cm = CMSG_FIRSTHDR(&m);
    cr_assert_not_null(cm);
    cr_assert_eq(cm->cmsg_type, SCM_RIGHTS);
    memcpy(&got, CMSG_DATA(cm), sizeof got);
    cr_assert_neq(got, p[1]);
    cr_assert(fcntl(got, F_GETFD) & FD_CLOEXEC);
    /* The received descriptor is the pipe's write end. */
    cr_assert_eq(gr_fd_nonblock(got), 0);
    cr_assert_eq(gr_write(got, "via", 3, -1), 3);
    cr_assert_eq(gr_read(p[0], data, sizeof data, -1), 3);
    cr_assert_eq(memcmp(data, "via", 3), 0);
    assert_fails(gr_recvmsg(sv[1], &m, 0, gr_now() + 5), ETIMEDOUT);
    gr_close(got);
    gr_close(p[0]);
    gr_close(p[1]);
    close_pair(sv);
    return NULL;
}

Test(io, sendmsg_recvmsg_pass_a_descriptor, .timeout = 10)
{
    run_main(pass_fd, NULL);
}

static void *udp(void *arg)
{
    int a = gr_udp_bind("127.0.0.1", 0), b = gr_udp_bind("127.0.0.1", 0);
    gr_addr to, from;
    char buf[64];

    (void)arg;
    cr_assert_geq(a, 0);
    cr_assert_geq(b, 0);
    cr_assert_eq(gr_addr_ip(&to, "127.0.0.1", gr_local_port(b)), 0);
    cr_assert_eq(gr_sendto(a, "ping", 4, 0, &to.u.sa, to.len, -1), 4);
    from.len = sizeof from.u;
    cr_assert_eq(gr_recvfrom(b, buf, sizeof buf, 0, &from.u.sa, &from.len, gr_now() + 1000), 4);
    cr_assert_eq(memcmp(buf, "ping", 4), 0);
    cr_assert_eq(from.u.sa.sa_family, AF_INET);
    cr_assert_eq(ntohs(from.u.in4.sin_port), gr_local_port(a));
    cr_assert_eq(gr_sendto(b, "pong", 4, 0, &from.u.sa, from.len, -1), 4);
    cr_assert_eq(gr_recv(a, buf, sizeof buf, 0, gr_now() + 1000), 4);
    assert_fails(gr_recvfrom(a, buf, sizeof buf, 0, NULL, NULL, gr_now() + 5), ETIMEDOUT);
    gr_close(a);
    gr_close(b);
    return NULL;
}

Test(io, udp_sendto_recvfrom, .timeout = 10)
{
    run_main(udp, NULL);
}

Test(io, fd_nonblock_sets_both_flags)
{
    int p[2];

    cr_assert_eq(pipe(p), 0);
    cr_assert_eq(gr_fd_nonblock(p[0]), 0);
    cr_assert(fcntl(p[0], F_GETFL) & O_NONBLOCK);
    cr_assert(fcntl(p[0], F_GETFD) & FD_CLOEXEC);
    close(p[0]);
    close(p[1]);
    assert_fails(gr_fd_nonblock(p[0]), EBADF);
}

/* -------------------------------------------------------------- reader */

static int reader_wfd;

static void *trickle(void *arg)
{
    const char *s = arg;

    /* One byte per write, so records and delimiters span many reads. */
    for (; *s; s++) {
        cr_assert_eq(gr_write(reader_wfd, s, 1, -1), 1);
        gr_yield();
    }
    shutdown(reader_wfd, SHUT_WR);
    return NULL;
}

static void *reader_lines(void *arg)
{
    int sv[2];
    char buf[64], line[32];
    gr_reader r;
    gr_t w;

    (void)arg;
    unix_pair(sv);
    cr_assert_eq(gr_reader_init(&r, sv[0], buf, sizeof buf), 0);
    reader_wfd = sv[1];
    w = gr_spawn(trickle, "one\ntwo\r\n\nlast");
    cr_assert_eq(gr_reader_line(&r, line, sizeof line, -1), 4);
    cr_assert_str_eq(line, "one\n");
    cr_assert_eq(gr_reader_line(&r, line, sizeof line, -1), 5);
    cr_assert_str_eq(line, "two\r\n");
    cr_assert_eq(gr_reader_line(&r, line, sizeof line, -1), 1);
    cr_assert_str_eq(line, "\n");
    /* The last line has no newline: returned as it is at EOF. */
    cr_assert_eq(gr_reader_line(&r, line, sizeof line, -1), 4);
    cr_assert_str_eq(line, "last");
    cr_assert_eq(gr_reader_line(&r, line, sizeof line, -1), 0);
    cr_assert_eq(gr_reader_read(&r, line, sizeof line, -1), 0);
    gr_join(w, NULL, -1);
    close_pair(sv);
    return NULL;
}

Test(io, reader_lines_and_partial_last_line, .timeout = 10)
{
    run_main(reader_lines, NULL);
}

static void *reader_until(void *arg)
{
    int sv[2];
    char buf[64], out[64];
    gr_reader r;
    gr_t w;

    (void)arg;
    unix_pair(sv);
    cr_assert_eq(gr_reader_init(&r, sv[0], buf, sizeof buf), 0);
    reader_wfd = sv[1];
    w = gr_spawn(trickle, "GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY");
    cr_assert_eq(gr_reader_until(&r, "\r\n\r\n", 4, out, sizeof out, -1), 27);
    cr_assert_eq(memcmp(out, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27), 0);
    cr_assert_eq(gr_reader_read(&r, out, 2, -1), 2);
    cr_assert_eq(memcmp(out, "BO", 2), 0);
    gr_join(w, NULL, -1);
    cr_assert_eq(gr_reader_until(&r, "\r\n", 2, out, sizeof out, -1), 2);
    cr_assert_eq(memcmp(out, "DY", 2), 0);
    cr_assert_eq(gr_reader_until(&r, "\r\n", 2, out, sizeof out, -1), 0);
    /* Bad arguments. */
    assert_fails(gr_reader_until(&r, "", 0, out, sizeof out, -1), EINVAL);
    assert_fails(gr_reader_until(&r, out, 65, out, sizeof out, -1), EINVAL);
    assert_fails(gr_reader_line(&r, out, 1, -1), EINVAL);
    assert_fails(gr_reader_init(&r, sv[0], buf, 63), EINVAL);
    assert_fails(gr_reader_init(&r, sv[0], NULL, 64), EINVAL);
    close_pair(sv);
    return NULL;
}

Test(io, reader_until_a_multibyte_delimiter, .timeout = 10)
{
    run_main(reader_until, NULL);
}

static void *reader_limits(void *arg)
{
    int sv[2];
    char buf[64], out[128];
    gr_reader r;

    (void)arg;
    unix_pair(sv);
    cr_assert_eq(gr_reader_init(&r, sv[0], buf, sizeof buf), 0);
    cr_assert_eq(write(sv[1], "0123456789abcdef\n", 17), 17);
    /* Longer than max: EMSGSIZE, and nothing is consumed... */
    assert_fails(gr_reader_line(&r, out, 8, -1), EMSGSIZE);
    cr_assert_eq(gr_reader_buffered(&r), 17);
    /* ...so a larger max gets the whole line. */
    cr_assert_eq(gr_reader_line(&r, out, sizeof out, -1), 17);
    cr_assert_eq(gr_reader_buffered(&r), 0);
    /* Nothing to read: the deadline. */
    assert_fails(gr_reader_line(&r, out, sizeof out, gr_now() + 5), ETIMEDOUT);
    /* A record longer than the buffer can never be found. */
    for (int i = 0; i < 100; i++)
        cr_assert_eq(write(sv[1], "x", 1), 1);
    assert_fails(gr_reader_line(&r, out, sizeof out, gr_now() + 1000), EMSGSIZE);
    cr_assert_eq(gr_reader_buffered(&r), 64);
    /* Reading drains what is buffered first, then the fd. */
    cr_assert_eq(gr_reader_read(&r, out, sizeof out, -1), 64);
    cr_assert_eq(gr_reader_read(&r, out, sizeof out, -1), 36);
    gr_kill(gr_self());
    assert_fails(gr_reader_read(&r, out, 1, -1), ECANCELED);
    close_pair(sv);
    return NULL;
}

Test(io, reader_emsgsize_deadline_and_buffered, .timeout = 10)
{
    run_main(reader_limits, NULL);
}
