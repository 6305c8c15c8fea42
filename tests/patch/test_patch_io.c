/* libgrove-patch: descriptors and their I/O in green threads. Plain
 * blocking POSIX calls park only their green thread, with the semantics of
 * the real calls: connect's errors, EAGAIN for descriptors the program
 * made non-blocking, SO_RCVTIMEO/SO_SNDTIMEO, whole writes, close and dup2
 * waking waiters with EBADF, descriptors 0-2 never made non-blocking,
 * descriptors adopted on first use, kills and Timeout regions, errno. A
 * heartbeat fails any test whose hub stalls. */
#include "patch_common.h"

#include <netinet/in.h>
#include <pty.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <termios.h>

/* ------------------------------------------------------------- helpers */

static volatile int ticks;
static volatile int ticking;

/* Counts while other green threads wait: proof the hub kept running. */
static void *ticker(void *arg)
{
    (void)arg;
    ticking = 1;
    while (ticking) {
        ticks++;
        if (gr_sleep(gr_now_update() + 1) != 0)
            break;
    }
    return NULL;
}

static gr_t start_ticker(void)
{
    ticks = 0;
    return gr_spawn(ticker, NULL);
}

static void stop_ticker(gr_t t)
{
    ticking = 0;
    gr_join(t, NULL, -1);
}

typedef struct delayed {
    int fd;
    int64_t after_ms;
    const void *data;
    size_t len;
} delayed;

/* A green thread that writes data to fd after after_ms (grove's own calls). */
static void *write_later(void *arg)
{
    delayed *d = arg;

    gr_sleep(gr_now_update() + d->after_ms);
    cr_assert_eq(gr_write_all(d->fd, d->data, d->len, NULL, -1), 0, "%s", strerror(errno));
    return NULL;
}

static void blocking_pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static int is_nonblocking(int fd)
{
    return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
}

/* Run fn under gr_main with a heartbeat. */
static void *with_heartbeat(void *arg)
{
    gr_fn fn = (gr_fn)(uintptr_t)arg;
    heartbeat hb;

    hb_start(&hb);
    fn(NULL);
    hb_check(&hb);
    return NULL;
}

static void run_hb(gr_fn fn)
{
    require_patch();
    run_main(with_heartbeat, (void *)(uintptr_t)fn);
}

/* ------------------------------------------------------------- reading */

static void *read_parks(void *arg)
{
    int sv[2];
    char buf[64];
    delayed d;
    gr_t t, w;
    ssize_t n;

    (void)arg;
    cr_assert(gr_patch_cooperative());
    blocking_pair(sv);
    d = (delayed){sv[1], 50, "hello", 5};
    t = start_ticker();
    w = gr_spawn(write_later, &d);
    errno = 4242;
    n = read(sv[0], buf, sizeof buf);
    cr_assert_eq(n, 5);
    cr_assert_eq(errno, 4242, "errno changed by a successful read: %d", errno);
    cr_assert_gt(ticks, 0, "the hub ran no other green thread while read waited");
    cr_assert(!is_nonblocking(sv[0]), "read left the socket non-blocking");
    stop_ticker(t);
    gr_join(w, NULL, -1);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_io, a_blocking_read_parks_only_its_green_thread, .timeout = 10)
{
    run_hb(read_parks);
}

static void *every_reader(void *arg)
{
    int sv[2], pfd[2];
    char buf[16], b1[3], b2[5];
    struct iovec iov[2] = {{b1, sizeof b1}, {b2, sizeof b2}};
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    delayed d;
    gr_t w;

    (void)arg;
    blocking_pair(sv);
    cr_assert_eq(pipe(pfd), 0);
    /* recv, recvfrom, recvmsg, readv on a socket; read, readv on a pipe. */
    d = (delayed){sv[1], 20, "abcdefgh", 8};
    w = gr_spawn(write_later, &d);
    cr_assert_eq(recv(sv[0], buf, 2, 0), 2);
    cr_assert_eq(recvfrom(sv[0], buf, 2, 0, (struct sockaddr *)&from, &flen), 2);
    cr_assert_eq(readv(sv[0], iov, 2), 4);
    gr_join(w, NULL, -1);
    d = (delayed){sv[1], 20, "12345678", 8};
    w = gr_spawn(write_later, &d);
    cr_assert_eq(recvmsg(sv[0], &m, 0), 8);
    cr_assert_eq(memcmp(b1, "123", 3), 0);
    cr_assert_eq(memcmp(b2, "45678", 5), 0);
    gr_join(w, NULL, -1);
    d = (delayed){pfd[1], 20, "pipe", 4};
    w = gr_spawn(write_later, &d);
    cr_assert_eq(read(pfd[0], buf, sizeof buf), 4);
    gr_join(w, NULL, -1);
    d = (delayed){pfd[1], 20, "pipev123", 8};
    w = gr_spawn(write_later, &d);
    cr_assert_eq(readv(pfd[0], iov, 2), 8);
    cr_assert(!is_nonblocking(pfd[0]));
    gr_join(w, NULL, -1);
    close(sv[0]);
    close(sv[1]);
    close(pfd[0]);
    close(pfd[1]);
    return NULL;
}

Test(patch_io, every_read_call_waits_cooperatively, .timeout = 10)
{
    run_hb(every_reader);
}

static void *waitall(void *arg)
{
    int sv[2];
    char buf[8];
    delayed d1, d2;
    gr_t w1, w2;

    (void)arg;
    blocking_pair(sv);
    d1 = (delayed){sv[1], 10, "abcd", 4};
    d2 = (delayed){sv[1], 40, "efgh", 4};
    w1 = gr_spawn(write_later, &d1);
    w2 = gr_spawn(write_later, &d2);
    cr_assert_eq(recv(sv[0], buf, 8, MSG_WAITALL), 8);
    cr_assert_eq(memcmp(buf, "abcdefgh", 8), 0);
    gr_join(w1, NULL, -1);
    gr_join(w2, NULL, -1);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_io, msg_waitall_waits_for_it_all, .timeout = 10)
{
    run_hb(waitall);
}

/* ------------------------------------------------------------- writing */

#define BIG (4 << 20)

typedef struct drain {
    int fd;
    size_t want;
    unsigned char *got;
} drain;

/* Reads slowly, with pauses, until it has want bytes. */
static void *slow_reader(void *arg)
{
    drain *d = arg;
    size_t have = 0;
    int i = 0;

    while (have < d->want) {
        ssize_t n = gr_read(d->fd, d->got + have, d->want - have < 65536 ? d->want - have : 65536,
                            gr_now_update() + 5000);

        cr_assert_gt(n, 0, "%s", strerror(errno));
        have += (size_t)n;
        if (++i % 16 == 0)
            gr_sleep(gr_now_update() + 1);
    }
    return NULL;
}

static void check_whole_write(int wfd, int rfd)
{
    unsigned char *data = malloc(BIG), *got = malloc(BIG);
    drain d = {rfd, BIG, got};
    gr_t r;

    fill_pattern(data, BIG, 7);
    gr_fd_nonblock(rfd);
    r = gr_spawn(slow_reader, &d);
    errno = 77;
    cr_assert_eq(write(wfd, data, BIG), BIG);
    cr_assert_eq(errno, 77);
    gr_join(r, NULL, -1);
    cr_assert(same_bytes(data, got, BIG), "the bytes differ");
    free(data);
    free(got);
}

static void *whole_writes(void *arg)
{
    int sv[2], pfd[2];

    (void)arg;
    blocking_pair(sv);
    check_whole_write(sv[0], sv[1]);
    cr_assert_eq(pipe(pfd), 0);
    check_whole_write(pfd[1], pfd[0]);
    close(sv[0]);
    close(sv[1]);
    close(pfd[0]);
    close(pfd[1]);
    return NULL;
}

Test(patch_io, a_blocking_write_writes_everything, .timeout = 20)
{
    run_hb(whole_writes);
}

static void *writev_sendmsg(void *arg)
{
    int sv[2];
    size_t half = BIG / 2;
    unsigned char *data = malloc(BIG), *got = malloc(BIG);
    struct iovec iov[2] = {{data, half}, {data + half, BIG - half}};
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = 2};
    drain d = {0, BIG, got};
    gr_t r;

    (void)arg;
    fill_pattern(data, BIG, 13);
    blocking_pair(sv);
    gr_fd_nonblock(sv[1]);
    d.fd = sv[1];
    r = gr_spawn(slow_reader, &d);
    cr_assert_eq(writev(sv[0], iov, 2), BIG);
    gr_join(r, NULL, -1);
    cr_assert(same_bytes(data, got, BIG));
    fill_pattern(got, BIG, 0);
    r = gr_spawn(slow_reader, &d);
    cr_assert_eq(sendmsg(sv[0], &m, 0), BIG);
    gr_join(r, NULL, -1);
    cr_assert(same_bytes(data, got, BIG));
    free(data);
    free(got);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_io, writev_and_sendmsg_write_everything, .timeout = 20)
{
    run_hb(writev_sendmsg);
}

/* ------------------------------------------------------ non-blocking fds */

static void expect_eagain(int fd)
{
    char c;
    int64_t t0 = now_ms();

    assert_fails(read(fd, &c, 1), EAGAIN);
    cr_assert_lt(now_ms() - t0, 1000, "EAGAIN came late: the read waited");
}

static void *own_nonblocking(void *arg)
{
    int sv[2], pfd[2], on = 1, l, port, c, a;

    (void)arg;
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    expect_eagain(sv[0]);
    close(sv[0]);
    close(sv[1]);
    blocking_pair(sv);
    cr_assert_eq(fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK), 0);
    expect_eagain(sv[0]);
    cr_assert_eq(ioctl(sv[1], FIONBIO, &on), 0);
    expect_eagain(sv[1]);
    /* Back to blocking: the next read waits again. */
    on = 0;
    cr_assert_eq(ioctl(sv[1], FIONBIO, &on), 0);
    cr_assert(!is_nonblocking(sv[1]));
    close(sv[0]);
    close(sv[1]);
    cr_assert_eq(pipe2(pfd, O_NONBLOCK), 0);
    expect_eagain(pfd[0]);
    close(pfd[0]);
    close(pfd[1]);
    l = posix_listen(&port);
    cr_assert_eq(fcntl(l, F_SETFL, O_NONBLOCK), 0);
    assert_fails(accept(l, NULL, NULL), EAGAIN);
    c = posix_connect(port);
    fcntl(l, F_SETFL, 0);
    a = accept4(l, NULL, NULL, SOCK_NONBLOCK);
    cr_assert_geq(a, 0);
    expect_eagain(a);
    close(a);
    close(c);
    close(l);
    return NULL;
}

Test(patch_io, descriptors_the_program_made_non_blocking_still_get_eagain, .timeout = 10)
{
    run_hb(own_nonblocking);
}

/* ------------------------------------------------------------- connect */

static int closed_port(void)
{
    int port, l = posix_listen(&port);

    close(l);
    return port;
}

static void *refused(void *arg)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    (void)arg;
    a.sin_port = htons((uint16_t)closed_port());
    assert_fails(connect(fd, (struct sockaddr *)&a, sizeof a), ECONNREFUSED);
    cr_assert(!is_nonblocking(fd), "connect left the socket non-blocking");
    close(fd);
    return NULL;
}

Test(patch_io, connect_to_a_closed_port_fails_with_econnrefused, .timeout = 10)
{
    run_hb(refused);
}

static void *connects(void *arg)
{
    int port, l = posix_listen(&port), c, a;
    char buf[4];

    (void)arg;
    errno = 55;
    c = posix_connect(port);
    cr_assert_eq(errno, 55, "errno changed by a successful connect");
    cr_assert(!is_nonblocking(c));
    a = accept(l, NULL, NULL);
    cr_assert_geq(a, 0);
    cr_assert(!is_nonblocking(a));
    cr_assert_eq(write(c, "ping", 4), 4);
    cr_assert_eq(read(a, buf, 4), 4);
    close(a);
    close(c);
    close(l);
    return NULL;
}

Test(patch_io, connect_and_accept_leave_sockets_blocking, .timeout = 10)
{
    run_hb(connects);
}

/* A connect that hangs: the listener's queue is full and never accepted
 * from, so the SYNs are dropped. */
static int hanging_connect_socket(int *l, struct sockaddr_in *a, int *filler)
{
    int port;

    *l = posix_listen(&port);
    listen(*l, 0);
    *a = (struct sockaddr_in){.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    /* Fill the queue (backlog 0 holds one or two). */
    for (int i = 0; i < 3; i++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);

        connect(s, (struct sockaddr *)a, sizeof *a);
        filler[i] = s;
    }
    gr_sleep(gr_now_update() + 20);
    return socket(AF_INET, SOCK_STREAM, 0);
}

static void *connect_timeo(void *arg)
{
    struct sockaddr_in a;
    struct timeval tv = {0, 100000};
    int l, filler[3], fd = hanging_connect_socket(&l, &a, filler);
    int64_t t0 = now_ms();

    (void)arg;
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    /* socket(7): at SO_SNDTIMEO, connect says EINPROGRESS. */
    assert_fails(connect(fd, (struct sockaddr *)&a, sizeof a), EINPROGRESS);
    cr_assert_geq(now_ms() - t0, 95);
    cr_assert_lt(now_ms() - t0, 2000);
    close(fd);
    for (int i = 0; i < 3; i++)
        close(filler[i]);
    close(l);
    return NULL;
}

Test(patch_io, so_sndtimeo_ends_a_connect_with_einprogress, .timeout = 10)
{
    run_hb(connect_timeo);
}

static void *connect_killer(void *arg)
{
    gr_t *victim = arg;

    gr_sleep(gr_now_update() + 50);
    gr_kill(*victim);
    return NULL;
}

static void *connect_killed(void *arg)
{
    struct sockaddr_in a;
    int l, filler[3], fd = hanging_connect_socket(&l, &a, filler);
    gr_t self = gr_self(), k = gr_spawn(connect_killer, &self);
    int64_t t0 = now_ms();

    (void)arg;
    assert_fails(connect(fd, (struct sockaddr *)&a, sizeof a), ECANCELED);
    cr_assert_lt(now_ms() - t0, 2000);
    gr_join(k, NULL, -1);
    close(fd);
    for (int i = 0; i < 3; i++)
        close(filler[i]);
    close(l);
    return NULL;
}

static void *killed_connect_main(void *arg)
{
    gr_t g = gr_spawn(connect_killed, arg);

    gr_join(g, NULL, -1);
    return NULL;
}

Test(patch_io, a_killed_connect_fails_with_ecanceled, .timeout = 10)
{
    run_hb(killed_connect_main);
}

/* ---------------------------------------------------- SO_*TIMEO, kills */

static void *rcvtimeo(void *arg)
{
    int sv[2];
    char buf[8];
    struct timeval tv = {0, 100000};
    int64_t t0;

    (void)arg;
    blocking_pair(sv);
    cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    t0 = now_ms();
    assert_fails(read(sv[0], buf, sizeof buf), EAGAIN);
    cr_assert_geq(now_ms() - t0, 95);
    cr_assert_lt(now_ms() - t0, 2000);
    /* MSG_WAITALL: what came before the time-out. */
    cr_assert_eq(write(sv[1], "abc", 3), 3);
    cr_assert_eq(recv(sv[0], buf, sizeof buf, MSG_WAITALL), 3);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_io, so_rcvtimeo_expires_as_socket_7_says, .timeout = 10)
{
    run_hb(rcvtimeo);
}

static void *sndtimeo(void *arg)
{
    int sv[2];
    struct timeval tv = {0, 100000};
    size_t len = 16 << 20;
    char *data = calloc(1, len);
    int64_t t0;
    ssize_t n;

    (void)arg;
    blocking_pair(sv);
    cr_assert_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), 0);
    t0 = now_ms();
    n = write(sv[0], data, len);
    cr_assert_gt(n, 0, "a write that timed out after some bytes returns their count");
    cr_assert_lt((size_t)n, len);
    cr_assert_geq(now_ms() - t0, 95);
    /* Full, nothing more goes: EAGAIN. */
    assert_fails(write(sv[0], data, len), EAGAIN);
    free(data);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_io, so_sndtimeo_gives_the_count_written_then_eagain, .timeout = 10)
{
    run_hb(sndtimeo);
}

static void *accept_timeo(void *arg)
{
    struct timeval tv = {0, 80000};
    int port, l = posix_listen(&port), c, a;
    int64_t t0;

    (void)arg;
    cr_assert_eq(setsockopt(l, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
    t0 = now_ms();
    assert_fails(accept(l, NULL, NULL), EAGAIN);
    cr_assert_geq(now_ms() - t0, 75);
    /* The accepted socket inherits the listener's time-out. */
    c = posix_connect(port);
    a = accept(l, NULL, NULL);
    cr_assert_geq(a, 0);
    t0 = now_ms();
    assert_fails(recv(a, &t0, 1, 0), EAGAIN);
    cr_assert_geq(now_ms() - t0, 75);
    close(a);
    close(c);
    close(l);
    return NULL;
}

Test(patch_io, so_rcvtimeo_applies_to_accept_and_is_inherited, .timeout = 10)
{
    run_hb(accept_timeo);
}

typedef struct victim {
    int fd;
    int err;
    ssize_t n;
    int64_t took;
} victim;

static void *blocked_reader(void *arg)
{
    victim *v = arg;
    char buf[8];
    int64_t t0 = now_ms();

    errno = 0;
    v->n = read(v->fd, buf, sizeof buf);
    v->err = errno;
    v->took = now_ms() - t0;
    return NULL;
}

static void *killed_read(void *arg)
{
    int sv[2];
    victim v = {0};
    gr_t g;

    (void)arg;
    blocking_pair(sv);
    v.fd = sv[0];
    g = gr_spawn(blocked_reader, &v);
    gr_sleep(gr_now_update() + 30);
    gr_kill(g);
    gr_join(g, NULL, -1);
    cr_assert_eq(v.n, -1);
    cr_assert_eq(v.err, ECANCELED, "a killed read: errno %d", v.err);
    cr_assert_lt(v.took, 2000);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_io, a_killed_green_thread_gets_ecanceled_not_eintr, .timeout = 10)
{
    run_hb(killed_read);
}

static void *region(void *arg)
{
    int sv[2];
    char c;
    gr_timeout t;
    int64_t t0 = now_ms();

    (void)arg;
    blocking_pair(sv);
    cr_assert_eq(gr_timeout_begin(&t, gr_now_update() + 60), 0);
    assert_fails(read(sv[0], &c, 1), ETIMEDOUT);
    gr_timeout_end(&t);
    cr_assert_geq(now_ms() - t0, 55);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_io, timeout_regions_apply_to_patched_calls, .timeout = 10)
{
    run_hb(region);
}

static void *no_default_timeout(void *arg)
{
    int sv[2];
    char buf[8];
    delayed d;
    gr_t w;

    (void)arg;
    blocking_pair(sv);
    d = (delayed){sv[1], 1200, "late", 4};
    w = gr_spawn(write_later, &d);
    cr_assert_eq(read(sv[0], buf, sizeof buf), 4, "read gave up: %s", strerror(errno));
    gr_join(w, NULL, -1);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_io, there_is_no_default_time_out, .timeout = 10)
{
    run_hb(no_default_timeout);
}

/* ------------------------------------------------------ close and dup2 */

static void *close_wakes(void *arg)
{
    int sv[2], keep;
    victim v = {0};
    gr_t g;

    (void)arg;
    blocking_pair(sv);
    v.fd = sv[0];
    g = gr_spawn(blocked_reader, &v);
    gr_sleep(gr_now_update() + 20);
    keep = dup(sv[0]); /* the description lives on after the close */
    cr_assert_eq(close(sv[0]), 0);
    gr_join(g, NULL, -1);
    cr_assert_eq(v.n, -1);
    cr_assert_eq(v.err, EBADF);
    cr_assert_lt(v.took, 2000);
    close(keep);
    close(sv[1]);
    return NULL;
}

Test(patch_io, close_wakes_a_waiting_green_thread_with_ebadf, .timeout = 10)
{
    run_hb(close_wakes);
}

static void *dup2_wakes(void *arg)
{
    int sv[2], other[2];
    victim v = {0};
    gr_t g;

    (void)arg;
    blocking_pair(sv);
    blocking_pair(other);
    v.fd = sv[0];
    g = gr_spawn(blocked_reader, &v);
    gr_sleep(gr_now_update() + 20);
    cr_assert_eq(dup2(other[0], sv[0]), sv[0]);
    gr_join(g, NULL, -1);
    cr_assert_eq(v.err, EBADF);
    /* A failed dup2 closes nothing and wakes nobody. */
    assert_fails(dup2(-5, sv[0]), EBADF);
    close(sv[0]);
    close(sv[1]);
    close(other[0]);
    close(other[1]);
    return NULL;
}

Test(patch_io, dup2_onto_a_waited_on_descriptor_wakes_it_with_ebadf, .timeout = 10)
{
    run_hb(dup2_wakes);
}

static void *no_stray(void *arg)
{
    int a[2], b[2], keep, num;
    victim v1 = {0}, v2 = {0};
    gr_t g1, g2;

    (void)arg;
    blocking_pair(a);
    num = a[0];
    v1.fd = num;
    g1 = gr_spawn(blocked_reader, &v1);
    gr_sleep(gr_now_update() + 10);
    keep = dup(num);
    close(num);
    gr_join(g1, NULL, -1);
    cr_assert_eq(v1.err, EBADF);
    /* The number comes back for a new socket; its waiter must not hear the
     * old description's data. */
    blocking_pair(b);
    cr_assert_eq(b[0], num, "the number was not reused (%d, %d)", b[0], num);
    v2.fd = b[0];
    v2.n = 99;
    g2 = gr_spawn(blocked_reader, &v2);
    gr_sleep(gr_now_update() + 10);
    cr_assert_eq(write(a[1], "old", 3), 3);
    gr_sleep(gr_now_update() + 50);
    cr_assert_eq(v2.n, 99, "the new socket's reader woke for the old one's data");
    cr_assert_eq(write(b[1], "new", 3), 3);
    gr_join(g2, NULL, -1);
    cr_assert_eq(v2.n, 3);
    close(keep);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    return NULL;
}

Test(patch_io, a_reused_descriptor_number_gets_no_stray_wake_up, .timeout = 10)
{
    run_hb(no_stray);
}

/* ------------------------------------------------------ descriptors 0-2 */

typedef struct watch {
    int fd;
    volatile int done;
    int saw_nonblock;
} watch;

/* Looks at fd's flags while another green thread waits on it. */
static void *flag_watcher(void *arg)
{
    watch *w = arg;

    while (!w->done) {
        if (is_nonblocking(w->fd))
            w->saw_nonblock = 1;
        gr_sleep(gr_now_update() + 1);
    }
    return NULL;
}

/* Put fd on descriptor 0, read from it in a green thread while data comes
 * 40 ms later from writer_fd, and check 0 never turned non-blocking. */
static void read_on_stdin(int fd, int writer_fd)
{
    int saved = dup(0);
    watch w = {0, 0, 0};
    delayed d = {writer_fd, 40, "x\n", 2};
    gr_t wt, wr, t;
    char buf[8];

    cr_assert_eq(dup2(fd, 0), 0);
    t = start_ticker();
    wt = gr_spawn(flag_watcher, &w);
    wr = gr_spawn(write_later, &d);
    cr_assert_eq(read(0, buf, sizeof buf), 2);
    cr_assert_gt(ticks, 0, "the read on 0 blocked the hub");
    w.done = 1;
    gr_join(wt, NULL, -1);
    gr_join(wr, NULL, -1);
    stop_ticker(t);
    cr_assert(!w.saw_nonblock, "descriptor 0 was made non-blocking");
    cr_assert(!is_nonblocking(0));
    dup2(saved, 0);
    close(saved);
}

static void make_raw_pty(int *master, int *slave)
{
    struct termios tio;

    cr_assert_eq(openpty(master, slave, NULL, NULL, NULL), 0);
    tcgetattr(*slave, &tio);
    cfmakeraw(&tio);
    tcsetattr(*slave, TCSANOW, &tio);
}

static void *stdin_kinds(void *arg)
{
    int sv[2], pfd[2], m, s;

    (void)arg;
    blocking_pair(sv);
    read_on_stdin(sv[0], sv[1]);
    cr_assert_eq(pipe(pfd), 0);
    read_on_stdin(pfd[0], pfd[1]);
    make_raw_pty(&m, &s);
    read_on_stdin(s, m);
    close(sv[0]);
    close(sv[1]);
    close(pfd[0]);
    close(pfd[1]);
    close(m);
    close(s);
    return NULL;
}

Test(patch_io, descriptors_0_to_2_are_never_made_non_blocking, .timeout = 10)
{
    run_hb(stdin_kinds);
}

static void *terminal(void *arg)
{
    int m, s;
    watch w = {0, 0, 0};
    delayed d;
    gr_t wt, wr;
    char buf[8];

    (void)arg;
    make_raw_pty(&m, &s);
    w.fd = s;
    d = (delayed){m, 40, "tty", 3};
    wt = gr_spawn(flag_watcher, &w);
    wr = gr_spawn(write_later, &d);
    cr_assert_eq(read(s, buf, sizeof buf), 3);
    w.done = 1;
    gr_join(wt, NULL, -1);
    gr_join(wr, NULL, -1);
    cr_assert(!w.saw_nonblock, "a terminal's mode showed through");
    close(m);
    close(s);
    return NULL;
}

Test(patch_io, a_terminal_is_read_cooperatively_and_keeps_its_mode, .timeout = 10)
{
    run_hb(terminal);
}

/* ---------------------------------------------------------- adoption */

static void *adopted(void *arg)
{
    int sv[2], efd, tfd, raw[2];
    uint64_t v = 0;
    delayed d;
    gr_t w, t;
    struct itimerspec its = {{0, 0}, {0, 50 * 1000000}};
    char buf[8];

    (void)arg;
    /* Made behind the interposers' back, as glibc or an inherited fd. */
    cr_assert_eq(syscall(SYS_socketpair, AF_UNIX, SOCK_STREAM, 0, raw), 0);
    d = (delayed){raw[1], 30, "raw", 3};
    w = gr_spawn(write_later, &d);
    cr_assert_eq(read(raw[0], buf, sizeof buf), 3);
    gr_join(w, NULL, -1);
    /* eventfd: read waits for a count. */
    efd = eventfd(0, 0);
    v = 5;
    d = (delayed){efd, 30, &v, 8};
    t = start_ticker();
    w = gr_spawn(write_later, &d);
    uint64_t got = 0;
    cr_assert_eq(read(efd, &got, 8), 8);
    cr_assert_eq(got, 5);
    cr_assert_gt(ticks, 0, "the eventfd read blocked the hub");
    gr_join(w, NULL, -1);
    /* timerfd: read waits for the expiry. */
    tfd = timerfd_create(CLOCK_MONOTONIC, 0);
    cr_assert_eq(timerfd_settime(tfd, 0, &its, NULL), 0);
    int64_t t0 = now_ms();
    cr_assert_eq(read(tfd, &got, 8), 8);
    cr_assert_geq(now_ms() - t0, 40);
    stop_ticker(t);
    close(efd);
    close(tfd);
    close(raw[0]);
    close(raw[1]);
    (void)sv;
    return NULL;
}

Test(patch_io, descriptors_made_elsewhere_are_adopted_on_first_use, .timeout = 10)
{
    run_hb(adopted);
}

static void *scm_rights(void *arg)
{
    int carrier[2], sv[2], got_fd;
    char c = 'x', buf[8];
    union {
        char b[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {&c, 1};
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    delayed d;
    gr_t w;

    (void)arg;
    blocking_pair(carrier);
    blocking_pair(sv);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &sv[0], sizeof(int));
    cr_assert_eq(sendmsg(carrier[0], &m, 0), 1);
    memset(ctl.b, 0, sizeof ctl.b);
    m.msg_controllen = sizeof ctl.b;
    cr_assert_eq(recvmsg(carrier[1], &m, 0), 1);
    memcpy(&got_fd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
    cr_assert_neq(got_fd, sv[0]);
    d = (delayed){sv[1], 30, "fd!", 3};
    w = gr_spawn(write_later, &d);
    cr_assert_eq(read(got_fd, buf, sizeof buf), 3);
    gr_join(w, NULL, -1);
    close(got_fd);
    close(carrier[0]);
    close(carrier[1]);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_io, a_descriptor_received_with_scm_rights_is_adopted, .timeout = 10)
{
    run_hb(scm_rights);
}

/* ----------------------------------------------- sendfile, batches, UDP */

static void *sendfile_whole(void *arg)
{
    char path[] = "/tmp/grove-patch-sendfile-XXXXXX";
    int f = mkstemp(path), sv[2];
    size_t len = 4 << 20;
    unsigned char *data = malloc(len), *got = malloc(len);
    drain d = {0, len, got};
    off_t off = 0;
    gr_t r;

    (void)arg;
    fill_pattern(data, len, 251);
    cr_assert_eq(write(f, data, len), (ssize_t)len);
    unlink(path);
    blocking_pair(sv);
    gr_fd_nonblock(sv[1]);
    d.fd = sv[1];
    r = gr_spawn(slow_reader, &d);
    cr_assert_eq(sendfile(sv[0], f, &off, len), (ssize_t)len);
    cr_assert_eq(off, (off_t)len);
    gr_join(r, NULL, -1);
    cr_assert(same_bytes(data, got, len));
    free(data);
    free(got);
    close(f);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_io, sendfile_sends_the_whole_count, .timeout = 20)
{
    run_hb(sendfile_whole);
}

static void *udp_batches(void *arg)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    int r = socket(AF_INET, SOCK_DGRAM, 0), s = socket(AF_INET, SOCK_DGRAM, 0);
    char b[4][8];
    struct iovec iov[4];
    struct mmsghdr mm[4];
    delayed d;
    gr_t w;

    (void)arg;
    cr_assert_eq(bind(r, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(r, (struct sockaddr *)&a, &alen);
    cr_assert_eq(connect(s, (struct sockaddr *)&a, sizeof a), 0);
    memset(mm, 0, sizeof mm);
    for (int i = 0; i < 4; i++) {
        iov[i] = (struct iovec){b[i], sizeof b[i]};
        mm[i].msg_hdr.msg_iov = &iov[i];
        mm[i].msg_hdr.msg_iovlen = 1;
    }
    d = (delayed){s, 30, "one", 3};
    w = gr_spawn(write_later, &d);
    cr_assert_eq(recvmmsg(r, mm, 4, MSG_WAITFORONE, NULL), 1);
    cr_assert_eq(mm[0].msg_len, 3);
    gr_join(w, NULL, -1);
    cr_assert_eq(sendmmsg(s, mm, 2, 0), 2);
    cr_assert_eq(recvmmsg(r, mm, 2, 0, NULL), 2);
    close(r);
    close(s);
    return NULL;
}

Test(patch_io, recvmmsg_and_sendmmsg_on_udp, .timeout = 10)
{
    run_hb(udp_batches);
}

/* ---------------------------------------------------------------- errno */

static void *errno_kept(void *arg)
{
    int sv[2];
    char buf[4];

    (void)arg;
    blocking_pair(sv);
    errno = 123;
    cr_assert_eq(write(sv[1], "ab", 2), 2);
    cr_assert_eq(errno, 123);
    cr_assert_eq(read(sv[0], buf, sizeof buf), 2);
    cr_assert_eq(errno, 123);
    cr_assert_eq(fcntl(sv[0], F_SETFL, 0), 0);
    cr_assert_eq(errno, 123);
    cr_assert_eq(close(sv[0]), 0);
    cr_assert_eq(errno, 123);
    /* Failures are the real calls' errors. */
    assert_fails(read(sv[0], buf, sizeof buf), EBADF);
    assert_fails(write(-1, buf, 1), EBADF);
    assert_fails(connect(sv[1], NULL, 0), EINVAL);
    close(sv[1]);
    return NULL;
}

Test(patch_io, errno_is_kept_on_success_and_exact_on_failure, .timeout = 10)
{
    run_hb(errno_kept);
}

/* --------------------------------------------------------------- fortify
 * Lengths the compiler cannot see, into buffers whose sizes it knows: in
 * the -D_FORTIFY_SOURCE=2 build these calls are __read_chk, __recv_chk,
 * __recvfrom_chk, __poll_chk and __ppoll_chk (patch_table checks the
 * binary imports them). */
static volatile size_t runtime_len = 4;
static volatile nfds_t runtime_nfds = 1;

static void *fortified(void *arg)
{
    int sv[2];
    char buf[16];
    struct pollfd p[2] = {{0}};
    struct timespec ts = {1, 0};
    delayed d;
    gr_t w;

    (void)arg;
    blocking_pair(sv);
    d = (delayed){sv[1], 20, "abcdefghijkl", 12};
    w = gr_spawn(write_later, &d);
    p[0] = (struct pollfd){.fd = sv[0], .events = POLLIN};
    cr_assert_eq(poll(p, runtime_nfds, 1000), 1);
    cr_assert_eq(ppoll(p, runtime_nfds, &ts, NULL), 1);
    cr_assert_eq(read(sv[0], buf, runtime_len), 4);
    cr_assert_eq(recv(sv[0], buf, runtime_len, 0), 4);
    cr_assert_eq(recvfrom(sv[0], buf, runtime_len, 0, NULL, NULL), 4);
    gr_join(w, NULL, -1);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_io, the_fortified_entry_points_wait_too, .timeout = 10)
{
    run_hb(fortified);
}
