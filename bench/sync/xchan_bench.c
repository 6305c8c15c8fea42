/* grove-xchan-bench: the cross-thread channel between hubs.
 *
 *   grove-xchan-bench [--json] [--runs N]
 *
 * Round trips (ns, median of N runs, default 5), measured in the same run:
 * - eventfd: two plain threads bounce a count through two eventfds with
 *   blocking reads: the peer, the kernel's cheapest wake-up between
 *   threads;
 * - xhub: two green threads on two hubs (two OS threads) bounce a message
 *   through two gr_xchan of capacity 1; with the hubs' default idle spin
 *   (20 us), and with spinning off (idle_spin_us = -1), where every hop
 *   goes through the hub's eventfd and epoll;
 * - plain: two plain threads through two gr_xchan (futex waits).
 * The ratio xhub / eventfd is what issue 15 bounds (<= 2).
 *
 * Throughput (messages/s, median): a producer green thread on one hub and
 * a consumer on another move 20 M messages through a gr_xchan of capacity
 * 4096, in batches of 256 (gr_xchan_send_many / recv_many), and one at a
 * time for comparison (2 M). */
#define _GNU_SOURCE
#include "../bench.h"

#include <grove.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum { ROUND_TRIPS = 50000, BATCH_MSGS = 20000000, SINGLE_MSGS = 2000000, BATCH = 256 };

static void check(int ok, const char *what)
{
    if (!ok)
        bench_die(what);
}

/* ------------------------------------------------------------ eventfd */

static int efd[2];

static void *eventfd_echo(void *arg)
{
    uint64_t v;

    (void)arg;
    for (int i = 0; i < ROUND_TRIPS; i++) {
        check(read(efd[0], &v, sizeof v) == sizeof v, "read");
        check(write(efd[1], &v, sizeof v) == sizeof v, "write");
    }
    return NULL;
}

static double eventfd_rtt(void)
{
    pthread_t t;
    uint64_t v = 1;
    double t0;

    efd[0] = eventfd(0, EFD_CLOEXEC);
    efd[1] = eventfd(0, EFD_CLOEXEC);
    check(efd[0] >= 0 && efd[1] >= 0, "eventfd");
    check(pthread_create(&t, NULL, eventfd_echo, NULL) == 0, "pthread_create");
    t0 = bench_now_ns();
    for (int i = 0; i < ROUND_TRIPS; i++) {
        check(write(efd[0], &v, sizeof v) == sizeof v, "write");
        check(read(efd[1], &v, sizeof v) == sizeof v, "read");
    }
    t0 = (bench_now_ns() - t0) / ROUND_TRIPS;
    pthread_join(t, NULL);
    close(efd[0]);
    close(efd[1]);
    return t0;
}

/* ----------------------------------------------------- xchan ping-pong */

static gr_xchan *ping, *pong;
static double rtt;

static void *pinger(void *arg)
{
    void *v;
    double t0;

    (void)arg;
    /* A first round trip outside the timing: both sides are waiting. */
    check(gr_xchan_send(ping, NULL, -1) == 0 && gr_xchan_recv(pong, &v, -1) == 0, "warm-up");
    t0 = bench_now_ns();
    for (intptr_t i = 0; i < ROUND_TRIPS; i++) {
        check(gr_xchan_send(ping, (void *)i, -1) == 0, "send");
        check(gr_xchan_recv(pong, &v, -1) == 0, "recv");
    }
    rtt = (bench_now_ns() - t0) / ROUND_TRIPS;
    return NULL;
}

static void *ponger(void *arg)
{
    void *v;

    (void)arg;
    for (int i = 0; i <= ROUND_TRIPS; i++) {
        check(gr_xchan_recv(ping, &v, -1) == 0, "recv");
        check(gr_xchan_send(pong, v, -1) == 0, "send");
    }
    return NULL;
}

static void *side(void *arg)
{
    return (intptr_t)arg ? pinger(NULL) : ponger(NULL);
}

/* hubs: on two hubs, else on two plain threads. */
static double xchan_rtt(int hubs)
{
    void *args[2] = {(void *)0, (void *)1};

    ping = gr_xchan_new(1);
    pong = gr_xchan_new(1);
    check(ping && pong, "gr_xchan_new");
    if (hubs) {
        check(gr_hubs_run(2, side, args, NULL) == 0, "gr_hubs_run");
    } else {
        pthread_t t;

        check(pthread_create(&t, NULL, ponger, NULL) == 0, "pthread_create");
        pinger(NULL);
        pthread_join(t, NULL);
    }
    gr_xchan_free(ping);
    gr_xchan_free(pong);
    return rtt;
}

static double xhub_rtt_nospin(void)
{
    gr_config spin_off = {.idle_spin_us = -1}, dflt = {0};
    double r;

    check(gr_configure(&spin_off) == 0, "gr_configure");
    r = xchan_rtt(1);
    check(gr_configure(&dflt) == 0, "gr_configure");
    return r;
}

/* --------------------------------------------------------- throughput */

static gr_xchan *pipe_c;
static size_t pipe_batch, pipe_msgs;
static double pipe_rate;

static void *producer(void *arg)
{
    void *items[BATCH];

    (void)arg;
    for (size_t i = 0; i < BATCH; i++)
        items[i] = (void *)(uintptr_t)(i + 1);
    for (size_t sent = 0; sent < pipe_msgs; sent += pipe_batch)
        check(gr_xchan_send_many(pipe_c, items, pipe_batch, -1) == (ssize_t)pipe_batch, "send");
    gr_xchan_close(pipe_c);
    return NULL;
}

static void *consumer(void *arg)
{
    void *items[BATCH];
    size_t got = 0;
    ssize_t n;
    double t0 = bench_now_ns();

    (void)arg;
    while ((n = gr_xchan_recv_many(pipe_c, items, pipe_batch, -1)) > 0)
        got += (size_t)n;
    check(got == pipe_msgs, "message count");
    pipe_rate = got / ((bench_now_ns() - t0) / 1e9);
    return NULL;
}

static void *pipe_side(void *arg)
{
    return (intptr_t)arg ? producer(NULL) : consumer(NULL);
}

static double throughput(size_t batch, size_t msgs)
{
    void *args[2] = {(void *)0, (void *)1};

    pipe_batch = batch;
    pipe_msgs = msgs;
    check((pipe_c = gr_xchan_new(4096)) != NULL, "gr_xchan_new");
    check(gr_hubs_run(2, pipe_side, args, NULL) == 0, "gr_hubs_run");
    gr_xchan_free(pipe_c);
    return pipe_rate;
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    double ev[BENCH_MAX_RUNS], xh[BENCH_MAX_RUNS], xn[BENCH_MAX_RUNS], pl[BENCH_MAX_RUNS],
        tb[BENCH_MAX_RUNS], ts[BENCH_MAX_RUNS];
    int json = 0, runs = 5;

    if (bench_common_args(argc, argv, &json, &runs) != 0)
        return 2;
    for (int r = 0; r < runs; r++) {
        ev[r] = eventfd_rtt();
        xh[r] = xchan_rtt(1);
        xn[r] = xhub_rtt_nospin();
        pl[r] = xchan_rtt(0);
        tb[r] = throughput(BATCH, BATCH_MSGS);
        ts[r] = throughput(1, SINGLE_MSGS);
    }
    double e = bench_median(ev, runs), x = bench_median(xh, runs), n = bench_median(xn, runs);
    double p = bench_median(pl, runs), b = bench_median(tb, runs), s = bench_median(ts, runs);

    if (json) {
        bench_json_begin();
        bench_json("eventfd_rtt_ns", "%.0f", e);
        bench_json("xhub_rtt_ns", "%.0f", x);
        bench_json("xhub_rtt_ratio", "%.2f", x / e);
        bench_json("xhub_nospin_rtt_ns", "%.0f", n);
        bench_json("xhub_nospin_rtt_ratio", "%.2f", n / e);
        bench_json("plain_xchan_rtt_ns", "%.0f", p);
        bench_json("xhub_batch_msgs_per_s", "%.0f", b);
        bench_json("xhub_single_msgs_per_s", "%.0f", s);
        bench_json("batch", "%d", BATCH);
        bench_json("runs", "%d", runs);
        bench_json_end();
        return 0;
    }
    printf("grove-xchan-bench, medians of %d runs\n", runs);
    printf("  round trip, two plain threads, eventfd        %8.0f ns\n", e);
    printf("  round trip, two hubs, gr_xchan                %8.0f ns  (%.2fx eventfd)\n", x, x / e);
    printf("  round trip, two hubs, gr_xchan, no idle spin  %8.0f ns  (%.2fx eventfd)\n", n, n / e);
    printf("  round trip, two plain threads, gr_xchan       %8.0f ns\n", p);
    printf("  two hubs, batches of %d                      %8.1f M messages/s\n", BATCH, b / 1e6);
    printf("  two hubs, one message at a time               %8.1f M messages/s\n", s / 1e6);
    return 0;
}
