/* Fork: the child keeps only the context that forked, with a working hub
 * (new epoll and wake fds, DNS and the thread pool back on demand); the
 * parent is untouched. Children report through their exit status. */
#include "common.h"

#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Wait for pid without blocking the hub (its pidfd becomes readable when
 * it exits). Returns its exit status, or -1 if it did not exit within ms. */
static int reap(pid_t pid, int64_t ms)
{
    int pfd = (int)syscall(SYS_pidfd_open, pid, 0), st, late = 0;

    cr_assert_geq(pfd, 0, "pidfd_open: %s", strerror(errno));
    if (gr_wait_fd(pfd, GR_READ, gr_now_update() + ms) < 0) {
        kill(pid, SIGKILL);
        late = 1;
    }
    gr_close(pfd);
    cr_assert_eq(waitpid(pid, &st, 0), pid);
    return !late && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void *square(void *arg)
{
    return (void *)((intptr_t)arg * (intptr_t)arg);
}

/* What a child checks: the hub works (sleep, spawn, an fd wait), DNS and
 * the thread pool come back. Returns an exit status: 0, or the failed
 * step's number. */
static int child_works(int sock)
{
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res;
    gr_stats st;
    void *r;
    char c;

    if (gr_stats_get(&st) != 0 || st.threads != 1)
        return 2; /* only the caller is left */
    if (gr_sleep(gr_now_update() + 2) != 0)
        return 3;
    if (gr_join(gr_spawn(square, (void *)7), &r, gr_now() + 1000) != 0 || (intptr_t)r != 49)
        return 4;
    if (gr_getaddrinfo("localhost", "80", &hints, &res, gr_now() + 1000) != 0)
        return 5;
    gr_freeaddrinfo(res);
    if (gr_threadpool_run(square, (void *)9, &r, NULL, gr_now() + 1000) != 0 || (intptr_t)r != 81)
        return 6;
    if (sock >= 0) {
        if (gr_read(sock, &c, 1, gr_now() + 1000) != 1)
            return 7;
        c++;
        if (gr_write(sock, &c, 1, gr_now() + 1000) != 1)
            return 8;
    }
    return 0;
}

/* ----------------------------------------------------------- the load */

#define SLEEPERS 1000
#define READERS 100

static int readers[READERS][2];
static int echoed;

static void *sleeper(void *arg)
{
    (void)arg;
    while (gr_sleep(gr_now() + 50 + rand() % 450) == 0) {
    }
    return NULL;
}

static void *reader(void *arg)
{
    int fd = readers[(intptr_t)arg][1];
    char c;

    while (gr_read(fd, &c, 1, -1) == 1)
        echoed++;
    return NULL;
}

static void *busy_job(void *arg)
{
    (void)arg;
    usleep(20000);
    return NULL;
}

static void *keeps_pool_busy(void *arg)
{
    (void)arg;
    while (gr_threadpool_run(busy_job, NULL, NULL, NULL, -1) == 0) {
    }
    return NULL;
}

static void *lookup_never_answered(void *arg)
{
    struct addrinfo *res;

    (void)arg;
    /* The blackhole server never answers: in flight until killed. */
    gr_getaddrinfo("in-flight.grove.test", "80", NULL, &res, -1);
    return NULL;
}

static int forks_done;

static void *forker(void *arg)
{
    int n = (int)(intptr_t)arg;

    for (int i = 0; i < n; i++) {
        int sv[2];
        pid_t pid;
        char c = 'a';

        unix_pair(sv);
        if ((pid = gr_fork()) == 0) {
            close(sv[0]);
            _exit(child_works(sv[1]));
        }
        cr_assert_gt(pid, 0, "fork: %s", strerror(errno));
        gr_close(sv[1]);
        cr_assert_eq(gr_write(sv[0], &c, 1, gr_now() + 1000), 1);
        cr_assert_eq(gr_read(sv[0], &c, 1, gr_now() + 1000), 1, "the child served its socket");
        cr_assert_eq(c, 'b');
        cr_assert_eq(reap(pid, 1000), 0, "child %d failed its checks or took over 1 s", i);
        gr_close(sv[0]);
        forks_done++;
    }
    return NULL;
}

#define FORKERS 4

/* Open fds, but the c-ares socket talking to the blackhole: c-ares may
 * replace it on a retry, which is not the forks' doing. */
static int fds_but_dns(int blackhole)
{
    struct sockaddr_in dns, peer;
    socklen_t len = sizeof dns;
    int n = 0;

    cr_assert_eq(getsockname(blackhole, (struct sockaddr *)&dns, &len), 0);
    for (int fd = 0; fd < 4096; fd++) {
        if (fcntl(fd, F_GETFD) < 0)
            continue;
        len = sizeof peer;
        if (getpeername(fd, (struct sockaddr *)&peer, &len) == 0 && peer.sin_family == AF_INET &&
            peer.sin_port == dns.sin_port && fd != blackhole)
            continue;
        n++;
    }
    return n;
}

static void *fork_under_load(void *arg)
{
    gr_t forkers[FORKERS];
    int n = (int)(intptr_t)arg, blackhole = gr_udp_bind("127.0.0.1", 0);
    char servers[64];
    gr_t t[SLEEPERS + READERS + 4];
    int nt = 0, fds_before, fds_after;

    snprintf(servers, sizeof servers, "127.0.0.1:%d", gr_local_port(blackhole));
    /* Long c-ares time-outs: the lookup stays in flight, with the same
     * socket, as long as c-ares lets it (its socket is not counted). */
    setenv("RES_OPTIONS", "timeout:30 attempts:5", 1);
    cr_assert_eq(gr_resolver_servers(servers), 0);
    for (int i = 0; i < SLEEPERS; i++)
        t[nt++] = gr_spawn(sleeper, NULL);
    for (intptr_t i = 0; i < READERS; i++) {
        unix_pair(readers[i]);
        t[nt++] = gr_spawn(reader, (void *)i);
    }
    t[nt++] = gr_spawn(keeps_pool_busy, NULL);
    t[nt++] = gr_spawn(keeps_pool_busy, NULL);
    t[nt++] = gr_spawn(lookup_never_answered, NULL);
    gr_sleep(gr_now_update() + 30);
    fds_before = fds_but_dns(blackhole);
    /* Four forkers at once: each child is mostly waited for. */
    for (int i = 0; i < FORKERS; i++)
        forkers[i] = gr_spawn(forker, (void *)(intptr_t)(n / FORKERS));
    for (int i = 0; i < FORKERS; i++)
        cr_assert_eq(gr_join(forkers[i], NULL, -1), 0);
    cr_assert_eq(forks_done, n);
    /* The parent's sockets all still get events. */
    for (int i = 0; i < READERS; i++)
        cr_assert_eq(write(readers[i][0], "x", 1), 1);
    WAIT_FOR(echoed == READERS);
    fds_after = fds_but_dns(blackhole);
    cr_assert_eq(fds_after, fds_before, "fds %d before the forks, %d after", fds_before, fds_after);
    for (int i = 0; i < nt; i++)
        gr_kill(t[i]);
    for (int i = 0; i < nt; i++)
        gr_join(t[i], NULL, gr_now() + 5000);
    for (int i = 0; i < READERS; i++)
        close_pair(readers[i]);
    gr_close(blackhole);
    return NULL;
}

/* 1,000 forks; 100 under the sanitizers, whose every fork copies their
 * shadow memory. */
#ifdef GROVE_TEST_SANITIZED
#define FORKS 100
#else
#define FORKS 1000
#endif

Test(fork, children_work_and_the_parent_is_untouched, .timeout = 280)
{
    run_main(fork_under_load, (void *)(intptr_t)FORKS);
}

/* ----------------------------------------- what the child keeps, exactly */

static void *finishes_fast(void *arg)
{
    return arg;
}

static int forked_status = -1;

static void *forks_once(void *arg)
{
    gr_t done = gr_spawn(finishes_fast, (void *)5);
    gr_t waiter = *(gr_t *)arg;
    pid_t pid;
    void *r;

    gr_yield(); /* done finishes */
    if ((pid = gr_fork()) == 0) {
        /* Every other thread is gone, finished or not. */
        if (gr_join(done, &r, 0) != -1 || errno != ESRCH)
            _exit(2);
        if (gr_kill(waiter) != -1 || errno != ESRCH)
            _exit(3);
        return (void *)1; /* the child's gr_main returns; its main exits 10 */
    }
    gr_join(done, NULL, 0);
    forked_status = reap(pid, 5000);
    return NULL;
}

static void *waits_forever(void *arg)
{
    (void)arg;
    gr_sleep(-1);
    return NULL;
}

static void *fork_from_a_side_thread(void *arg)
{
    gr_t w = gr_spawn(waits_forever, NULL);
    gr_t f = gr_spawn(forks_once, &w);
    void *r;

    (void)arg;
    /* In the child, this join of the discarded main thread is never
     * reached: the root's join sees ESRCH and gr_main returns. */
    cr_assert_eq(gr_join(f, &r, -1), 0);
    gr_kill(w);
    gr_join(w, NULL, -1);
    return r;
}

Test(fork, only_the_caller_goes_on_in_the_child, .timeout = 20)
{
    void *r = NULL;
    pid_t me = getpid();
    int rc = gr_main(fork_from_a_side_thread, NULL, &r);

    if (getpid() != me)
        _exit(rc == 0 ? 10 : 11); /* the child, its gr_main over */
    cr_assert_eq(rc, 0);
    cr_assert_eq(forked_status, 10, "child exit %d", forked_status);
}

/* ------------------------------------------- a hub on another OS thread */

static void *fork_on_this_thread(void *arg)
{
    pid_t pid;

    (void)arg;
    if ((pid = gr_fork()) == 0)
        _exit(child_works(-1));
    return (void *)(intptr_t)reap(pid, 5000);
}

static void *os_thread(void *arg)
{
    void *r = (void *)-1;

    (void)arg;
    if (gr_main(fork_on_this_thread, NULL, &r) != 0)
        return (void *)-2;
    return r;
}

Test(fork, from_a_hub_on_another_os_thread, .timeout = 20)
{
    pthread_t t;
    void *r;

    cr_assert_eq(pthread_create(&t, NULL, os_thread, NULL), 0);
    cr_assert_eq(pthread_join(t, &r), 0);
    cr_assert_eq((intptr_t)r, 0, "child status %ld", (long)(intptr_t)r);
}

/* -------------------------------------------------------------- daemon */

static char dir[64];

static void *daemon_main(void *arg)
{
    char path[128], tmp[128], line[256], cwd[64];
    int l, c, nfd;
    FILE *f;

    (void)arg;
    if (gr_daemonize(0) != 0)
        _exit(20);
    /* The daemon: its own session, in "/", only 0-2 (plus grove's) open. */
    nfd = proc_self_count("fd");
    if (!getcwd(cwd, sizeof cwd))
        _exit(21);
    if ((l = gr_tcp_listen("127.0.0.1", 0, 0)) < 0)
        _exit(22);
    snprintf(path, sizeof path, "%s/port", dir);
    snprintf(tmp, sizeof tmp, "%s/port.tmp", dir);
    if (!(f = fopen(tmp, "w")))
        _exit(23);
    fprintf(f, "%d\n", gr_local_port(l));
    fclose(f);
    rename(tmp, path);
    if ((c = gr_accept(l, NULL, gr_now_update() + 10000)) < 0)
        _exit(24);
    snprintf(line, sizeof line, "%d %d %s %d\n", (int)getpid(), (int)getsid(0), cwd, nfd);
    gr_write_all(c, line, strlen(line), NULL, gr_now() + 1000);
    gr_close(c);
    _exit(0);
}

Test(fork, daemonize_detaches_and_serves, .timeout = 30)
{
    char path[128], line[256], cwd[64];
    int port = 0, c, pid, sid, nfd;
    pid_t starter;
    FILE *f = NULL;
    ssize_t n;

    snprintf(dir, sizeof dir, "/tmp/grove-daemon-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/port", dir);
    /* The process that daemonizes exits: let it be a child of the test. */
    if ((starter = fork()) == 0)
        _exit(gr_main(daemon_main, NULL, NULL) == 0 ? 30 : 31);
    cr_assert_eq(waitpid(starter, &c, 0), starter);
    cr_assert(WIFEXITED(c) && WEXITSTATUS(c) == 0, "the starter exits 0 once the daemon runs");
    for (int i = 0; i < 500 && !(f = fopen(path, "r")); i++)
        usleep(10000);
    cr_assert_not_null(f, "the daemon never wrote its port");
    cr_assert_eq(fscanf(f, "%d", &port), 1);
    fclose(f);
    c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    n = read(c, line, sizeof line - 1);
    cr_assert_gt(n, 0);
    line[n] = '\0';
    close(c);
    cr_assert_eq(sscanf(line, "%d %d %63s %d", &pid, &sid, cwd, &nfd), 4, "%s", line);
    /* A session of its own that it does not lead: it can never acquire a
     * controlling terminal (the reason for the second fork). */
    cr_assert_neq(sid, (int)getsid(0), "the daemon has a session of its own");
    cr_assert_neq(pid, sid);
    cr_assert_neq(pid, (int)starter);
    cr_assert_str_eq(cwd, "/");
    /* 0-2, grove's epoll and wake fds, and the directory proc_self_count
     * reads; the report pipe is closed. */
    cr_assert_leq(nfd, 6, "the daemon had %d fds open", nfd);
    unlink(path);
    rmdir(dir);
}

/* A daemon as a service runs one: a server, SIGHUP to reload (here: count),
 * SIGTERM to stop gracefully. The test process is a subreaper, so the
 * daemon (a grandchild whose parent exits) becomes its child again and
 * its exit status can be read. */
static int hups;

static void answer_hups(int fd, const gr_addr *peer, void *arg)
{
    char line[32];

    (void)peer;
    (void)arg;
    snprintf(line, sizeof line, "hups=%d\n", hups);
    gr_write_all(fd, line, strlen(line), NULL, gr_now() + 1000);
}

static void *service_main(void *arg)
{
    char path[128], tmp[128];
    gr_signals *s;
    gr_server *srv;
    int l, sig;
    FILE *f;

    (void)arg;
    if (gr_daemonize(0) != 0)
        _exit(20);
    if (!(s = gr_signal_open(GR_SIG(SIGHUP) | GR_SIG(SIGTERM))))
        _exit(21);
    l = gr_tcp_listen("127.0.0.1", 0, 0);
    if (!(srv = gr_server_new(l, answer_hups, NULL, NULL)) || gr_server_start(srv) != 0)
        _exit(22);
    snprintf(path, sizeof path, "%s/port", dir);
    snprintf(tmp, sizeof tmp, "%s/port.tmp", dir);
    if (!(f = fopen(tmp, "w")))
        _exit(23);
    fprintf(f, "%d %d\n", gr_local_port(l), (int)getpid());
    fclose(f);
    rename(tmp, path);
    while ((sig = gr_signal_next(s, NULL, -1)) == SIGHUP)
        hups++;
    if (sig != SIGTERM)
        _exit(24);
    if (gr_server_stop(srv, gr_now_update() + 1000) != 0)
        _exit(25);
    gr_server_free(srv);
    gr_signal_close(s);
    return NULL; /* its gr_main returns: the daemon exits 30 */
}

/* The daemon's answer: its SIGHUP count. */
static int ask_hups(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), n = -1;
    char line[32];
    ssize_t r;

    cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof a), 0, "%s", strerror(errno));
    if ((r = read(c, line, sizeof line - 1)) > 0) {
        line[r] = '\0';
        sscanf(line, "hups=%d", &n);
    }
    close(c);
    return n;
}

/* Ask until the count is want (the signal is handled asynchronously). */
static void await_hups(int port, int want)
{
    int n = -1;

    for (int i = 0; i < 500 && (n = ask_hups(port)) != want; i++)
        usleep(10000);
    cr_assert_eq(n, want, "the daemon counted %d SIGHUP, not %d", n, want);
}

Test(fork, a_daemon_serves_and_handles_sighup_and_sigterm, .timeout = 30)
{
    char path[128];
    int port = 0, pid = 0, st;
    pid_t starter;
    FILE *f = NULL;

    cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
    snprintf(dir, sizeof dir, "/tmp/grove-daemon-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/port", dir);
    if ((starter = fork()) == 0)
        _exit(gr_main(service_main, NULL, NULL) == 0 ? 30 : 31);
    cr_assert_eq(waitpid(starter, &st, 0), starter);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the starter exits 0 once the daemon runs");
    for (int i = 0; i < 500 && !(f = fopen(path, "r")); i++)
        usleep(10000);
    cr_assert_not_null(f, "the daemon never wrote its port");
    cr_assert_eq(fscanf(f, "%d %d", &port, &pid), 2);
    fclose(f);
    await_hups(port, 0);
    cr_assert_eq(kill(pid, SIGHUP), 0);
    await_hups(port, 1);
    cr_assert_eq(kill(pid, SIGHUP), 0);
    await_hups(port, 2);
    cr_assert_eq(kill(pid, SIGTERM), 0);
    cr_assert_eq(waitpid(pid, &st, 0), pid, "the daemon is the subreaper's child");
    cr_assert(WIFEXITED(st), "the daemon ended by a signal (%#x): SIGTERM not handled", st);
    cr_assert_eq(WEXITSTATUS(st), 30, "the daemon exited %d", WEXITSTATUS(st));
    unlink(path);
    rmdir(dir);
}

Test(fork, daemonize_refuses_unknown_flags, .timeout = 10)
{
    assert_fails(gr_daemonize(4), EINVAL);
}

/* ------------------------------------ the root waits on an fd meanwhile */

static int rootpipe[2];

static void *forks_then_writes(void *arg)
{
    pid_t pid;

    (void)arg;
    gr_sleep(gr_now_update() + 10); /* the root is waiting on the pipe by now */
    if ((pid = gr_fork()) == 0) {
        /* In the child, the root's wait was woken and registered again
         * with the new epoll: this write must reach it. */
        cr_assert_eq(write(rootpipe[1], "c", 1), 1);
        return NULL;
    }
    return (void *)(intptr_t)reap(pid, 5000);
}

Test(fork, a_waiting_root_is_registered_again_in_the_child, .timeout = 20)
{
    pid_t me = getpid();
    gr_t t;
    void *r;

    cr_assert_eq(pipe2(rootpipe, O_NONBLOCK | O_CLOEXEC), 0);
    t = gr_spawn(forks_then_writes, NULL);
    cr_assert_eq(gr_wait_fd(rootpipe[0], GR_READ, gr_now_update() + 5000), GR_READ);
    if (getpid() != me)
        _exit(0); /* the child: its root woke for the child's write */
    cr_assert_eq(gr_join(t, &r, gr_now() + 5000), 0);
    cr_assert_eq((intptr_t)r, 0, "the child's root did not see the write (status %ld)",
                 (long)(intptr_t)r);
}
