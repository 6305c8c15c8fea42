/* The cross-thread channel (gr_xchan): its semantics on one hub, then
 * between hubs and plain OS threads: exact counts and per-producer order
 * under load, sends racing receivers that are about to park or give up,
 * close reaching waiters everywhere, and idle hubs that stay asleep. */
#include "sync_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

/* The race test makes a cross-thread wake-up for nearly every message
 * (20-40 us each on this loaded 2-core machine): its 10^6 iterations run in
 * the release build; ThreadSanitizer (5-15 times slower) runs 2 x 10^5;
 * the ucontext and ASan builds, which check the switch and memory rather
 * than the race, 10^5. */
#if defined(GROVE_TEST_TSAN)
#define RACE_N 200000
#elif defined(GROVE_TEST_SANITIZED) || defined(GROVE_TEST_UCONTEXT)
#define RACE_N 100000
#else
#define RACE_N 1000000
#endif

/* ------------------------------------------------------------ one hub */

static void *buffered_basics(void *arg)
{
    gr_xchan *c = gr_xchan_new(4);
    gr_xchan_stats st;
    void *v, *many[8];

    (void)arg;
    cr_assert_not_null(c);
    for (intptr_t i = 1; i <= 4; i++)
        cr_assert_eq(gr_xchan_send(c, ARG(i), 0), 0);
    assert_fails(gr_xchan_send(c, ARG(5), 0), ETIMEDOUT);
    assert_fails(gr_xchan_send(c, ARG(5), gr_now_update() + 5), ETIMEDOUT);
    cr_assert_eq(gr_xchan_stats_get(c, &st), 0);
    cr_assert_eq(st.size, 4);
    cr_assert_eq(st.capacity, 4);
    cr_assert_eq(st.senders + st.receivers, 0);
    cr_assert_eq(gr_xchan_recv(c, &v, 0), 0);
    cr_assert_eq((intptr_t)v, 1);
    cr_assert_eq(gr_xchan_recv_many(c, many, 8, 0), 3);
    for (int i = 0; i < 3; i++)
        cr_assert_eq((intptr_t)many[i], i + 2);
    assert_fails(gr_xchan_recv(c, &v, 0), ETIMEDOUT);
    assert_fails(gr_xchan_recv(c, &v, gr_now_update() + 5), ETIMEDOUT);
    /* The ring wraps: */
    for (intptr_t round = 0; round < 10; round++) {
        void *in[3] = {ARG(round), ARG(round + 1), ARG(round + 2)};

        cr_assert_eq(gr_xchan_send_many(c, in, 3, 0), 3);
        cr_assert_eq(gr_xchan_recv_many(c, many, 2, 0), 2);
        cr_assert_eq(gr_xchan_recv_many(c, many + 2, 2, 0), 1);
        for (int i = 0; i < 3; i++)
            cr_assert_eq((intptr_t)many[i], round + i);
    }
    cr_assert_eq(gr_xchan_recv_many(c, many, 0, 0), 0);
    cr_assert_eq(gr_xchan_send_many(c, NULL, 0, 0), 0);
    assert_fails(gr_xchan_send_many(c, NULL, 1, 0), EINVAL);
    assert_fails(gr_xchan_recv_many(c, NULL, 1, 0), EINVAL);
    assert_fails(gr_xchan_send(NULL, NULL, 0), EINVAL);
    assert_fails(gr_xchan_stats_get(c, NULL), EINVAL);
    cr_assert_eq(gr_xchan_free(c), 0);
    cr_assert_eq(gr_xchan_free(NULL), 0);
    return NULL;
}

Test(xchan, buffered_fifo_deadlines_and_errors, .timeout = 10)
{
    run_main(buffered_basics, NULL);
}

/* Close: sends fail, buffered items still come out, then EPIPE. */
static void *close_drains(void *arg)
{
    gr_xchan *c = gr_xchan_new(8);
    void *v;

    (void)arg;
    cr_assert_eq(gr_xchan_send(c, ARG(1), 0), 0);
    cr_assert_eq(gr_xchan_send(c, ARG(2), 0), 0);
    gr_xchan_close(c);
    gr_xchan_close(c);
    assert_fails(gr_xchan_send(c, ARG(3), -1), EPIPE);
    cr_assert_eq(gr_xchan_recv(c, &v, -1), 0);
    cr_assert_eq((intptr_t)v, 1);
    cr_assert_eq(gr_xchan_recv(c, NULL, -1), 0);
    assert_fails(gr_xchan_recv(c, &v, -1), EPIPE);
    assert_fails(gr_xchan_recv(c, &v, 0), EPIPE);
    cr_assert_eq(gr_xchan_free(c), 0);
    return NULL;
}

Test(xchan, close_fails_sends_and_drains_then_fails_receives, .timeout = 10)
{
    run_main(close_drains, NULL);
}

/* Unbuffered: a send completes only with a receiver. */
static gr_xchan *rv;

static void *rv_receiver(void *arg)
{
    void *v;

    (void)arg;
    mark('r');
    cr_assert_eq(gr_xchan_recv(rv, &v, -1), 0);
    mark((char)(intptr_t)v);
    return NULL;
}

static void *rendezvous(void *arg)
{
    gr_t r;

    (void)arg;
    reset_trail();
    rv = gr_xchan_new(0);
    assert_fails(gr_xchan_send(rv, ARG('x'), 0), ETIMEDOUT);
    r = gr_spawn(rv_receiver, NULL);
    gr_yield(); /* the receiver waits */
    mark('s');
    cr_assert_eq(gr_xchan_send(rv, ARG('1'), 0), 0); /* handed over: no wait */
    mark('S');
    cr_assert_eq(gr_join(r, NULL, -1), 0);
    assert_trail("rsS1");
    /* A receiver that comes second takes from the waiting sender. */
    r = gr_spawn(rv_receiver, NULL);
    reset_trail();
    cr_assert_eq(gr_xchan_send(rv, ARG('2'), gr_now_update() + 5000), 0);
    cr_assert_eq(gr_join(r, NULL, -1), 0);
    assert_trail("r2");
    cr_assert_eq(gr_xchan_free(rv), 0);
    return NULL;
}

Test(xchan, capacity_zero_is_a_rendezvous, .timeout = 10)
{
    run_main(rendezvous, NULL);
}

/* A batch that does not fit: what went is reported, in order. */
static gr_xchan *pc;

static void *takes_two(void *arg)
{
    void *got[2];

    (void)arg;
    cr_assert_eq(gr_xchan_recv_many(pc, got, 2, -1), 2);
    cr_assert_eq((intptr_t)got[0], 0);
    cr_assert_eq((intptr_t)got[1], 1);
    return NULL;
}

static void *partial_batches(void *arg)
{
    void *items[10], *got[10];
    gr_t t;

    (void)arg;
    for (intptr_t i = 0; i < 10; i++)
        items[i] = ARG(i);
    pc = gr_xchan_new(4);
    /* 4 fit; the receiver takes 2 and moves 2 more in for the waiting
     * sender, which then times out with 6 sent. */
    t = gr_spawn(takes_two, NULL);
    errno = 0;
    cr_assert_eq(gr_xchan_send_many(pc, items, 10, gr_now_update() + 20), 6);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_eq(gr_join(t, NULL, -1), 0);
    cr_assert_eq(gr_xchan_recv_many(pc, got, 10, 0), 4);
    for (int i = 0; i < 4; i++)
        cr_assert_eq((intptr_t)got[i], i + 2);
    /* A full channel and deadline 0: nothing went. */
    cr_assert_eq(gr_xchan_send_many(pc, items, 4, 0), 4);
    assert_fails(gr_xchan_send_many(pc, items, 4, 0), ETIMEDOUT);
    cr_assert_eq(gr_xchan_recv_many(pc, got, 10, 0), 4);
    cr_assert_eq(gr_xchan_free(pc), 0);
    return NULL;
}

Test(xchan, a_batch_that_times_out_reports_what_went, .timeout = 10)
{
    run_main(partial_batches, NULL);
}

static void *unbounded(void *arg)
{
    gr_xchan *c = gr_xchan_new(GR_XCHAN_UNBOUNDED);
    gr_xchan_stats st;
    void *v;

    (void)arg;
    for (intptr_t i = 0; i < 100000; i++)
        cr_assert_eq(gr_xchan_send(c, ARG(i), 0), 0);
    cr_assert_eq(gr_xchan_stats_get(c, &st), 0);
    cr_assert_eq(st.size, 100000);
    cr_assert_eq(st.capacity, GR_XCHAN_UNBOUNDED);
    for (intptr_t i = 0; i < 100000; i++) {
        cr_assert_eq(gr_xchan_recv(c, &v, 0), 0);
        cr_assert_eq((intptr_t)v, i);
    }
    cr_assert_eq(gr_xchan_free(c), 0);
    return NULL;
}

Test(xchan, unbounded_grows_and_keeps_order, .timeout = 10)
{
    run_main(unbounded, NULL);
}

/* Killed: send and receive fail at once, even when they need not wait. */
static gr_xchan *kc;

static void *killed_caller(void *arg)
{
    (void)arg;
    assert_fails(gr_xchan_recv(kc, NULL, -1), ECANCELED); /* waits, killed */
    assert_fails(gr_xchan_send(kc, ARG(1), 0), ECANCELED);
    assert_fails(gr_xchan_recv(kc, NULL, 0), ECANCELED);
    return NULL;
}

static void busy_callback(void *arg)
{
    (void)arg;
    assert_fails(gr_xchan_recv(kc, NULL, 0), ETIMEDOUT);
    assert_fails(gr_xchan_recv(kc, NULL, -1), EDEADLK);
    cr_assert_eq(gr_xchan_send(kc, ARG(7), -1), 0); /* room: no wait */
}

static void *kills_and_callbacks(void *arg)
{
    gr_xchan_stats st;
    gr_t t;
    void *v;

    (void)arg;
    kc = gr_xchan_new(1);
    t = gr_spawn(killed_caller, NULL);
    gr_yield();
    cr_assert_eq(gr_xchan_stats_get(kc, &st), 0);
    cr_assert_eq(st.receivers, 1);
    assert_fails(gr_xchan_free(kc), EBUSY);
    cr_assert_eq(gr_kill(t), 0);
    cr_assert_eq(gr_join(t, NULL, -1), 0);
    cr_assert_eq(gr_hub_post(gr_hub_current(), busy_callback, NULL), 0);
    cr_assert_eq(gr_xchan_recv(kc, &v, gr_now_update() + 5000), 0);
    cr_assert_eq((intptr_t)v, 7);
    cr_assert_eq(gr_xchan_free(kc), 0);
    return NULL;
}

Test(xchan, killed_callers_and_hub_callbacks, .timeout = 10)
{
    run_main(kills_and_callbacks, NULL);
}

/* ---------------------------------------------- plain OS threads only */

#define PLAIN_N 20000

static void *plain_producer(void *arg)
{
    gr_xchan *c = arg;

    for (intptr_t i = 1; i <= PLAIN_N; i++)
        cr_assert_eq(gr_xchan_send(c, ARG(i), gr_now_update() + 10000), 0);
    return NULL;
}

static void *plain_consumer(void *arg)
{
    gr_xchan *c = arg;
    intptr_t sum = 0;
    void *v;

    while (gr_xchan_recv(c, &v, gr_now_update() + 10000) == 0)
        sum += (intptr_t)v;
    cr_assert_eq(errno, EPIPE);
    return (void *)sum;
}

Test(xchan, plain_threads_without_hubs, .timeout = 30)
{
    gr_xchan *c = gr_xchan_new(0);
    pthread_t p[2], q[2];
    intptr_t sum = 0;
    void *r;

    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pthread_create(&p[i], NULL, plain_producer, c), 0);
        cr_assert_eq(pthread_create(&q[i], NULL, plain_consumer, c), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(p[i], NULL);
    gr_xchan_close(c);
    for (int i = 0; i < 2; i++) {
        pthread_join(q[i], &r);
        sum += (intptr_t)r;
    }
    cr_assert_eq(sum, 2 * (intptr_t)PLAIN_N * (PLAIN_N + 1) / 2);
    assert_fails(gr_xchan_recv(c, NULL, gr_now_update() + 5), EPIPE);
    cr_assert_eq(gr_xchan_free(c), 0);
    c = gr_xchan_new(1);
    assert_fails(gr_xchan_recv(c, NULL, gr_now_update() + 5), ETIMEDOUT);
    cr_assert_eq(gr_xchan_free(c), 0);
}

/* ----------------------------- 4 hubs x 4 producers, exact and in order */

#define HUBS 4
#define PRODUCERS_PER_HUB 4
#define NPROD (HUBS * PRODUCERS_PER_HUB)
#define TOTAL 10000000
#define PER_PRODUCER (TOTAL / NPROD)

static gr_xchan *load;
static atomic_int producers_left;
static atomic_long received_total;
static atomic_long received_from[NPROD];

static void *producer(void *arg)
{
    intptr_t id = (intptr_t)arg;
    /* Batch sizes from 1 (single sends) to 256. */
    static const size_t batch_sizes[4] = {1, 7, 64, 256};
    size_t batch = batch_sizes[id % 4];
    void *items[256];

    for (intptr_t seq = 0; seq < PER_PRODUCER;) {
        size_t k = 0;

        while (k < batch && seq < PER_PRODUCER)
            items[k++] = (void *)(id << 32 | seq++);
        cr_assert_eq(gr_xchan_send_many(load, items, k, -1), (ssize_t)k);
    }
    if (atomic_fetch_sub(&producers_left, 1) == 1)
        gr_xchan_close(load); /* the last one: receivers drain, then EPIPE */
    return NULL;
}

/* Each consumer sees each producer's messages in increasing order. */
static void *consumer(void *arg)
{
    int64_t last[NPROD];
    long count[NPROD] = {0};
    void *items[128];
    ssize_t n;

    (void)arg;
    for (int i = 0; i < NPROD; i++)
        last[i] = -1;
    while ((n = gr_xchan_recv_many(load, items, 128, -1)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            intptr_t v = (intptr_t)items[i], id = v >> 32, seq = v & 0xffffffff;

            cr_assert(id >= 0 && id < NPROD, "bad message %lx", (long)v);
            cr_assert_gt(seq, last[id], "producer %ld: %ld after %ld", (long)id, (long)seq,
                         (long)last[id]);
            last[id] = seq;
            count[id]++;
        }
    }
    cr_assert_eq(errno, EPIPE);
    for (int i = 0; i < NPROD; i++) {
        atomic_fetch_add(&received_from[i], count[i]);
        atomic_fetch_add(&received_total, count[i]);
    }
    return NULL;
}

static void *load_hub(void *arg)
{
    intptr_t hub = (intptr_t)arg;
    gr_t t[PRODUCERS_PER_HUB + 1];

    for (int i = 0; i < PRODUCERS_PER_HUB; i++)
        t[i] = gr_spawn(producer, (void *)(hub * PRODUCERS_PER_HUB + i));
    t[PRODUCERS_PER_HUB] = gr_spawn(consumer, NULL);
    join_all(t, PRODUCERS_PER_HUB + 1);
    return NULL;
}

Test(xchan, four_hubs_four_producers_each_exact_count_fifo_per_producer, .timeout = 240)
{
    void *args[HUBS];

    load = gr_xchan_new(1024);
    atomic_store(&producers_left, NPROD);
    for (intptr_t i = 0; i < HUBS; i++)
        args[i] = (void *)i;
    cr_assert_eq(gr_hubs_run(HUBS, load_hub, args, NULL), 0);
    cr_assert_eq(atomic_load(&received_total), (long)NPROD * PER_PRODUCER);
    for (int i = 0; i < NPROD; i++)
        cr_assert_eq(atomic_load(&received_from[i]), PER_PRODUCER, "producer %d", i);
    cr_assert_eq(gr_xchan_free(load), 0);
}

/* --------------- a send racing a receiver that is deciding to park */

static gr_xchan *race;

/* The receiver alternates a wait without deadline and one of 1 ms, so
 * sends race both a receiver about to park and one about to give up. */
static void *race_receiver(void *arg)
{
    intptr_t next = 0;
    long timeouts = 0;
    void *v;

    (void)arg;
    while (next < RACE_N) {
        int64_t deadline = next % 2 ? gr_now_update() + 1 : gr_now_update() + 10000;

        if (gr_xchan_recv(race, &v, deadline) != 0) {
            cr_assert_eq(errno, ETIMEDOUT, "item %ld lost", (long)next);
            cr_assert(next % 2, "item %ld lost", (long)next);
            timeouts++;
            continue;
        }
        cr_assert_eq((intptr_t)v, next);
        next++;
    }
    return (void *)timeouts;
}

static void *race_sender(void *arg)
{
    (void)arg;
    for (intptr_t i = 0; i < RACE_N; i++) {
        cr_assert_eq(gr_xchan_send(race, ARG(i), gr_now_update() + 10000), 0);
        if (i % 4096 == 0)
            gr_sleep(gr_now_update() + 2); /* let the receiver time out */
    }
    return NULL;
}

static void *race_hub(void *arg)
{
    return (intptr_t)arg ? race_sender(NULL) : race_receiver(NULL);
}

Test(xchan, a_send_racing_a_receiver_deciding_to_park_is_never_lost, .timeout = 240)
{
    void *args[2] = {(void *)0, (void *)1}, *res[2];

    /* One slot: the sender does not wait for each receive, so every send
     * meets the receiver wherever it is (taking, parking, giving up). */
    race = gr_xchan_new(1);
    cr_assert_eq(gr_hubs_run(2, race_hub, args, res), 0);
    cr_assert_eq(gr_xchan_free(race), 0);
}

/* ---------------------------------- close wakes waiters on every hub */

#define PER_HUB 3

static gr_xchan *cl_recv, *cl_send; /* nothing to receive; full */
static atomic_int epipes;

static void *waits_on_closed(void *arg)
{
    if ((intptr_t)arg)
        assert_fails(gr_xchan_send(cl_send, ARG(2), -1), EPIPE);
    else
        assert_fails(gr_xchan_recv(cl_recv, NULL, -1), EPIPE);
    atomic_fetch_add(&epipes, 1);
    return NULL;
}

static void *close_hub(void *arg)
{
    gr_t t[2 * PER_HUB];

    (void)arg;
    for (int i = 0; i < 2 * PER_HUB; i++)
        t[i] = gr_spawn(waits_on_closed, (void *)(intptr_t)(i % 2));
    join_all(t, 2 * PER_HUB);
    return NULL;
}

static void *close_all_hubs(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)gr_hubs_run(HUBS, close_hub, NULL, NULL);
}

/* Wait (polling, bounded) until c has the given waiters. */
static void wait_waiters(gr_xchan *c, size_t senders, size_t receivers)
{
    gr_xchan_stats st;

    for (int i = 0; i < 10000; i++) {
        cr_assert_eq(gr_xchan_stats_get(c, &st), 0);
        if (st.senders == senders && st.receivers == receivers)
            return;
        usleep(1000);
    }
    cr_assert_fail("waiters: %zu senders, %zu receivers", st.senders, st.receivers);
}

Test(xchan, close_wakes_waiters_on_every_hub_and_plain_threads, .timeout = 30)
{
    pthread_t hubs, plain[2];
    void *r;

    cl_recv = gr_xchan_new(0);
    cl_send = gr_xchan_new(1);
    cr_assert_eq(gr_xchan_send(cl_send, ARG(1), 0), 0);
    cr_assert_eq(pthread_create(&hubs, NULL, close_all_hubs, NULL), 0);
    for (intptr_t i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&plain[i], NULL, waits_on_closed, (void *)i), 0);
    wait_waiters(cl_recv, 0, HUBS * PER_HUB + 1);
    wait_waiters(cl_send, HUBS * PER_HUB + 1, 0);
    gr_xchan_close(cl_recv);
    gr_xchan_close(cl_send);
    pthread_join(hubs, &r);
    cr_assert_eq((intptr_t)r, 0);
    for (int i = 0; i < 2; i++)
        pthread_join(plain[i], NULL);
    cr_assert_eq(atomic_load(&epipes), 2 * (HUBS * PER_HUB + 1));
    cr_assert_eq(gr_xchan_free(cl_recv), 0);
    cr_assert_eq(gr_xchan_free(cl_send), 0);
}

/* --------------------------------------- idle hubs make no wake-ups */

static gr_xchan *idle;
static pid_t idle_tids[HUBS];

static void *idle_hub(void *arg)
{
    idle_tids[(intptr_t)arg] = (pid_t)syscall(SYS_gettid);
    assert_fails(gr_xchan_recv(idle, NULL, -1), EPIPE);
    return NULL;
}

static void *run_idle_hubs(void *args)
{
    return (void *)(intptr_t)gr_hubs_run(HUBS, idle_hub, args, NULL);
}

/* The times the kernel switched the thread out: a thread asleep in
 * epoll_wait that nothing wakes keeps both counts. */
static long context_switches(pid_t tid)
{
    char path[64], line[128];
    long total = 0, n;
    FILE *f;

    snprintf(path, sizeof path, "/proc/self/task/%d/status", (int)tid);
    f = fopen(path, "r");
    cr_assert_not_null(f, "%s: %s", path, strerror(errno));
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1 ||
            sscanf(line, "nonvoluntary_ctxt_switches: %ld", &n) == 1)
            total += n;
    fclose(f);
    return total;
}

Test(xchan, idle_hubs_make_no_wakeups, .timeout = 30)
{
    void *args[HUBS] = {(void *)0, (void *)1, (void *)2, (void *)3};
    long before[HUBS];
    pthread_t t;
    void *r;

    idle = gr_xchan_new(0);
    cr_assert_eq(pthread_create(&t, NULL, run_idle_hubs, args), 0);
    wait_waiters(idle, 0, HUBS);
    usleep(50000); /* past the hubs' idle spin (20 us): asleep in epoll */
    for (int i = 0; i < HUBS; i++)
        before[i] = context_switches(idle_tids[i]);
    usleep(500000);
    for (int i = 0; i < HUBS; i++)
        cr_assert_eq(context_switches(idle_tids[i]), before[i], "hub %d woke up", i);
    gr_xchan_close(idle);
    pthread_join(t, &r);
    cr_assert_eq((intptr_t)r, 0);
    cr_assert_eq(gr_xchan_free(idle), 0);
}

/* ------------------------------------- green and plain threads mixed */

static gr_xchan *mix_in, *mix_out;

/* A green thread relays what plain threads send to plain receivers. */
static void *relay(void *arg)
{
    void *items[32];
    ssize_t n;

    (void)arg;
    while ((n = gr_xchan_recv_many(mix_in, items, 32, -1)) > 0)
        cr_assert_eq(gr_xchan_send_many(mix_out, items, (size_t)n, -1), n);
    cr_assert_eq(errno, EPIPE);
    gr_xchan_close(mix_out);
    return NULL;
}

static void *relay_hub(void *arg)
{
    run_main(relay, arg);
    return NULL;
}

Test(xchan, green_threads_relay_between_plain_threads, .timeout = 30)
{
    pthread_t p[2], q[2], hub;
    intptr_t sum = 0;
    void *r;

    mix_in = gr_xchan_new(16);
    mix_out = gr_xchan_new(0);
    cr_assert_eq(pthread_create(&hub, NULL, relay_hub, NULL), 0);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(pthread_create(&p[i], NULL, plain_producer, mix_in), 0);
        cr_assert_eq(pthread_create(&q[i], NULL, plain_consumer, mix_out), 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(p[i], NULL);
    gr_xchan_close(mix_in);
    for (int i = 0; i < 2; i++) {
        pthread_join(q[i], &r);
        sum += (intptr_t)r;
    }
    pthread_join(hub, NULL);
    cr_assert_eq(sum, 2 * (intptr_t)PLAIN_N * (PLAIN_N + 1) / 2);
    cr_assert_eq(gr_xchan_free(mix_in), 0);
    cr_assert_eq(gr_xchan_free(mix_out), 0);
}
