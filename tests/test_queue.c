/* Message passing. Queues: FIFO, LIFO and priority order, maxsize, fair
 * handoff between getters and putters, time-outs and cancellation,
 * JoinableQueue, gr_queue_post from other OS threads. Channels: rendezvous,
 * order, close, one switch per message. Races are arranged
 * deterministically (equal deadlines fire in arming order in one pass). */
#include "sync_common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

static intptr_t get_now(gr_queue *q)
{
    void *v = NULL;

    cr_assert_eq(gr_queue_get(q, &v, 0), 0);
    return (intptr_t)v;
}

static gr_queue *q;

/* ================================================================ order */

static void *fifo_and_lifo(void *arg)
{
    gr_queue *f = gr_queue_new(GR_QUEUE_FIFO, 0, NULL);
    gr_queue *l = gr_queue_new(GR_QUEUE_LIFO, 0, NULL);
    void *v;

    (void)arg;
    /* Enough to grow storage several times, and to wrap the ring. */
    for (intptr_t round = 0; round < 3; round++) {
        for (intptr_t i = 0; i < 1000; i++) {
            cr_assert_eq(gr_queue_put(f, ARG(i), -1), 0);
            cr_assert_eq(gr_queue_put(l, ARG(i), 0), 0);
        }
        for (intptr_t i = 0; i < 500; i++)
            cr_assert_eq(get_now(f), i);
        for (intptr_t i = 0; i < 500; i++)
            cr_assert_eq(gr_queue_put(f, ARG(1000 + i), -1), 0);
        cr_assert_eq(gr_queue_size(f), 1000);
        cr_assert_eq(gr_queue_peek(f, &v, 0), 0);
        cr_assert_eq((intptr_t)v, 500);
        for (intptr_t i = 500; i < 1500; i++)
            cr_assert_eq(get_now(f), i);
        cr_assert_eq(gr_queue_peek(l, &v, 0), 0);
        cr_assert_eq((intptr_t)v, 999);
        for (intptr_t i = 999; i >= 0; i--)
            cr_assert_eq(get_now(l), i);
        cr_assert_eq(gr_queue_size(l), 0);
    }
    assert_fails(gr_queue_get(f, &v, 0), ETIMEDOUT);
    assert_fails(gr_queue_peek(l, &v, 0), ETIMEDOUT);
    cr_assert_eq(gr_queue_free(f), 0);
    cr_assert_eq(gr_queue_free(l), 0);
    return NULL;
}

Test(queue, fifo_and_lifo_order, .timeout = 10)
{
    run_main(fifo_and_lifo, NULL);
}

typedef struct prio_item {
    int prio, seq;
} prio_item;

static int by_prio(const void *a, const void *b)
{
    const prio_item *x = a, *y = b;

    return (x->prio > y->prio) - (x->prio < y->prio);
}

/* Stable order: by priority, then by insertion. */
static int by_prio_then_seq(const void *a, const void *b)
{
    const prio_item *x = *(const prio_item *const *)a, *y = *(const prio_item *const *)b;
    int c = by_prio(x, y);

    return c ? c : (x->seq > y->seq) - (x->seq < y->seq);
}

static void *priority_order(void *arg)
{
    enum { N = 5000 };
    prio_item *items = calloc(N, sizeof *items);
    prio_item **want = calloc(N, sizeof *want);
    gr_queue *p = gr_queue_new(GR_QUEUE_PRIORITY, 0, by_prio);
    uint32_t x = 12345;
    void *v;

    (void)arg;
    for (int i = 0; i < N; i++) {
        x = x * 1103515245u + 12345u;
        items[i] = (prio_item){(int)(x >> 16) % 50, i}; /* many ties */
        want[i] = &items[i];
        cr_assert_eq(gr_queue_put(p, &items[i], -1), 0);
    }
    qsort(want, N, sizeof *want, by_prio_then_seq);
    cr_assert_eq(gr_queue_peek(p, &v, 0), 0);
    cr_assert_eq(v, want[0]);
    for (int i = 0; i < N; i++) {
        cr_assert_eq(gr_queue_get(p, &v, 0), 0);
        cr_assert_eq(v, want[i], "position %d: prio %d seq %d, want prio %d seq %d", i,
                     ((prio_item *)v)->prio, ((prio_item *)v)->seq, want[i]->prio, want[i]->seq);
    }
    cr_assert_eq(gr_queue_free(p), 0);
    free(items);
    free(want);
    return NULL;
}

Test(queue, priority_smallest_first_ties_in_put_order, .timeout = 10)
{
    run_main(priority_order, NULL);
}

#define assert_new_fails(kind, cmp)                                                                \
    do {                                                                                           \
        errno = 0;                                                                                 \
        cr_assert_null(gr_queue_new(kind, 0, cmp));                                                \
        cr_assert_eq(errno, EINVAL);                                                               \
    } while (0)

Test(queue, new_validates_its_arguments, .timeout = 10)
{
    assert_new_fails(3, NULL);
    assert_new_fails(-1, NULL);
    assert_new_fails(GR_QUEUE_PRIORITY, NULL);
    gr_queue *f = gr_queue_new(GR_QUEUE_FIFO, 0, by_prio); /* cmp ignored */

    cr_assert_not_null(f);
    cr_assert_eq(gr_queue_free(f), 0);
    cr_assert_eq(gr_queue_free(NULL), 0);
}

/* ==================================================== getters, putters */

static void *getter(void *arg)
{
    void *v;

    cr_assert_eq(gr_queue_get(q, &v, -1), 0);
    mark((char)(intptr_t)arg);
    return v;
}

static void *putter(void *arg)
{
    cr_assert_eq(gr_queue_put(q, arg, -1), 0);
    mark((char)(intptr_t)arg);
    return NULL;
}

/* A put hands the item straight to the first parked getter. */
static void *getters_in_order(void *arg)
{
    gr_t g[3];
    void *v;

    (void)arg;
    q = gr_queue_new(GR_QUEUE_FIFO, 0, NULL);
    for (int i = 0; i < 3; i++)
        g[i] = gr_spawn(getter, ARG('A' + i));
    gr_yield();
    cr_assert_eq(gr_queue_put(q, ARG(1), -1), 0);
    /* A owns it already: nothing for a newcomer. */
    cr_assert_eq(gr_queue_size(q), 0);
    assert_fails(gr_queue_get(q, &v, 0), ETIMEDOUT);
    cr_assert_eq(gr_queue_put(q, ARG(2), -1), 0);
    cr_assert_eq(gr_queue_put(q, ARG(3), -1), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(gr_join(g[i], &v, -1), 0);
        cr_assert_eq((intptr_t)v, i + 1);
    }
    assert_trail("ABC");
    cr_assert_eq(gr_queue_free(q), 0);
    return NULL;
}

Test(queue, getters_served_in_order_by_handoff, .timeout = 10)
{
    run_main(getters_in_order, NULL);
}

/* A full queue blocks put; each get lets the first blocked putter in. */
static void *bounded(void *arg)
{
    gr_t g[3];

    (void)arg;
    q = gr_queue_new(GR_QUEUE_FIFO, 2, NULL);
    cr_assert_eq(gr_queue_put(q, ARG('0'), -1), 0);
    cr_assert_eq(gr_queue_put(q, ARG('1'), -1), 0);
    assert_fails(gr_queue_put(q, ARG('x'), 0), ETIMEDOUT);
    assert_fails(gr_queue_put(q, ARG('x'), gr_now_update() + 10), ETIMEDOUT);
    for (int i = 0; i < 3; i++)
        g[i] = gr_spawn(putter, ARG('A' + i));
    gr_yield();
    cr_assert_eq(ntrail, 0, "the putters must be blocked");
    cr_assert_eq(get_now(q), '0');
    /* A's item went in on A's behalf: the queue is full again. */
    cr_assert_eq(gr_queue_size(q), 2);
    assert_fails(gr_queue_put(q, ARG('x'), 0), ETIMEDOUT);
    cr_assert_eq(get_now(q), '1');
    cr_assert_eq(get_now(q), 'A');
    cr_assert_eq(get_now(q), 'B');
    join_all(g, 3);
    assert_trail("ABC");
    cr_assert_eq(get_now(q), 'C');
    cr_assert_eq(gr_queue_size(q), 0);
    cr_assert_eq(gr_queue_free(q), 0);
    return NULL;
}

Test(queue, maxsize_blocks_put_and_get_admits_putters_in_order, .timeout = 10)
{
    run_main(bounded, NULL);
}

static void *putter_at_instant(void *arg)
{
    cr_assert_eq(gr_sleep(instant), 0);
    cr_assert_eq(gr_queue_put(q, arg, -1), 0);
    mark('P');
    return NULL;
}

static void *getter_until_instant(void *arg)
{
    (void)arg;
    assert_fails(gr_queue_get(q, NULL, instant), ETIMEDOUT);
    mark('T');
    return NULL;
}

static void *getter_at_instant(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_sleep(instant), 0);
    mark('G');
    cr_assert_eq(get_now(q), 'a');
    return NULL;
}

static void *putter_until_instant(void *arg)
{
    (void)arg;
    assert_fails(gr_queue_put(q, ARG('t'), instant), ETIMEDOUT);
    mark('T');
    return NULL;
}

/* The waker and the waiter's deadline fire in one pass, the waker first:
 * the timed-out waiter is passed over. */
static void *timed_out_waiters(void *arg)
{
    gr_t g[3];
    void *v;

    (void)arg;
    q = gr_queue_new(GR_QUEUE_FIFO, 1, NULL);
    instant = gr_now_update() + 20;
    g[0] = gr_spawn(putter_at_instant, ARG('i'));
    g[1] = gr_spawn(getter_until_instant, NULL);
    g[2] = gr_spawn(getter, ARG('F'));
    join_all(g, 3);
    assert_trail("PTF");
    cr_assert_eq(gr_queue_size(q), 0);

    /* With nobody behind it, the item stays in the queue. */
    instant = gr_now_update() + 20;
    g[0] = gr_spawn(putter_at_instant, ARG('j'));
    g[1] = gr_spawn(getter_until_instant, NULL);
    join_all(g, 2);
    cr_assert_eq(get_now(q), 'j');

    /* A putter timing out as room appears does not get its item in. */
    reset_trail();
    cr_assert_eq(gr_queue_put(q, ARG('a'), -1), 0);
    instant = gr_now_update() + 20;
    g[0] = gr_spawn(getter_at_instant, NULL);
    g[1] = gr_spawn(putter_until_instant, NULL);
    join_all(g, 2);
    assert_trail("GT");
    cr_assert_eq(gr_queue_size(q), 0);
    assert_fails(gr_queue_get(q, &v, 0), ETIMEDOUT);
    cr_assert_eq(gr_queue_free(q), 0);
    return NULL;
}

Test(queue, timed_out_waiters_lose_nothing, .timeout = 10)
{
    run_main(timed_out_waiters, NULL);
}

/* ========================================================= cancellation */

static void *killed_getter(void *arg)
{
    (void)arg;
    assert_fails(gr_queue_get(q, NULL, -1), ECANCELED);
    return NULL;
}

static void *killed_putter(void *arg)
{
    (void)arg;
    assert_fails(gr_queue_put(q, ARG('k'), -1), ECANCELED);
    /* Taking work is refused even when some is there... */
    assert_fails(gr_queue_get(q, NULL, 0), ECANCELED);
    assert_fails(gr_queue_put(q, NULL, 0), ECANCELED);
    /* ...looking at it and waiting for what is done are not. */
    cr_assert_eq(gr_queue_peek(q, NULL, -1), 0);
    /* Clean-up code can still hand something over. */
    cr_assert_eq(gr_queue_post(q, ARG('z')), 0);
    return NULL;
}

static void *killed_joiner(void *arg)
{
    (void)arg;
    assert_fails(gr_queue_join(q, -1), ECANCELED);
    return NULL;
}

static void *killed_peeker(void *arg)
{
    (void)arg;
    assert_fails(gr_queue_peek(q, NULL, -1), ECANCELED);
    return NULL;
}

static void *cancel_every_wait(void *arg)
{
    gr_t g[4];

    (void)arg;
    q = gr_queue_new(GR_QUEUE_FIFO, 1, NULL);
    g[0] = gr_spawn(killed_getter, NULL);
    g[1] = gr_spawn(killed_peeker, NULL);
    gr_yield();
    gr_kill(g[0]);
    gr_kill(g[1]);
    join_all(g, 2);
    cr_assert_eq(gr_queue_put(q, ARG('a'), -1), 0);
    g[2] = gr_spawn(killed_putter, NULL);
    g[3] = gr_spawn(killed_joiner, NULL);
    gr_yield();
    gr_kill(g[2]);
    gr_kill(g[3]);
    join_all(g + 2, 2);
    gr_sleep(gr_now() + 1); /* the hub looks around: the post arrives */
    cr_assert_eq(gr_queue_size(q), 2);
    cr_assert_eq(get_now(q), 'a');
    cr_assert_eq(get_now(q), 'z');
    assert_fails(gr_queue_get(q, NULL, 0), ETIMEDOUT);
    cr_assert_eq(gr_queue_task_done(q), 0);
    cr_assert_eq(gr_queue_task_done(q), 0);
    cr_assert_eq(gr_queue_join(q, 0), 0);
    cr_assert_eq(gr_queue_free(q), 0);
    return NULL;
}

Test(queue, kill_interrupts_every_wait, .timeout = 10)
{
    run_main(cancel_every_wait, NULL);
}

/* ======================================================= JoinableQueue */

static void *worker(void *arg)
{
    void *v;

    (void)arg;
    while (gr_queue_get(q, &v, -1) == 0) {
        gr_sleep(gr_now() + 1);
        mark((char)(intptr_t)v);
        cr_assert_eq(gr_queue_task_done(q), 0);
    }
    cr_assert_eq(errno, ECANCELED);
    return NULL;
}

static void *joinable(void *arg)
{
    gr_t w[2];

    (void)arg;
    q = gr_queue_new(GR_QUEUE_FIFO, 0, NULL);
    assert_fails(gr_queue_task_done(q), EINVAL);
    cr_assert_eq(gr_queue_join(q, -1), 0, "nothing put: done at once");
    for (int i = 0; i < 2; i++)
        w[i] = gr_spawn(worker, NULL);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(gr_queue_put(q, ARG('a' + i), -1), 0);
    assert_fails(gr_queue_join(q, 0), ETIMEDOUT);
    cr_assert_eq(gr_queue_join(q, -1), 0);
    cr_assert_eq(ntrail, 6, "join returned before every task was done");
    assert_trail("abcdef");
    assert_fails(gr_queue_task_done(q), EINVAL);
    for (int i = 0; i < 2; i++)
        gr_kill(w[i]);
    join_all(w, 2);

    /* Items handed straight to a getter count too. */
    w[0] = gr_spawn(worker, NULL);
    gr_yield();
    cr_assert_eq(gr_queue_put(q, ARG('g'), -1), 0);
    cr_assert_eq(gr_queue_join(q, gr_now_update() + 5000), 0);
    assert_trail("abcdefg");
    gr_kill(w[0]);
    join_all(w, 1);
    cr_assert_eq(gr_queue_free(q), 0);
    return NULL;
}

Test(queue, joinable_task_done_and_join, .timeout = 10)
{
    run_main(joinable, NULL);
}

/* =============================================================== peek */

static void *peeker(void *arg)
{
    void *v;

    cr_assert_eq(gr_queue_peek(q, &v, -1), 0);
    mark((char)(intptr_t)arg);
    return v;
}

static void *peek_waits(void *arg)
{
    gr_t g[3];
    void *v;

    (void)arg;
    q = gr_queue_new(GR_QUEUE_LIFO, 0, NULL);
    g[0] = gr_spawn(peeker, ARG('p'));
    g[1] = gr_spawn(peeker, ARG('q'));
    gr_yield();
    assert_fails(gr_queue_peek(q, &v, gr_now_update() + 5), ETIMEDOUT);
    cr_assert_eq(gr_queue_put(q, ARG(7), -1), 0);
    g[2] = gr_spawn(getter, ARG('g'));
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(gr_join(g[i], &v, -1), 0);
        cr_assert_eq((intptr_t)v, 7);
    }
    cr_assert_eq(gr_join(g[2], &v, -1), 0);
    cr_assert_eq((intptr_t)v, 7);
    assert_trail("pqg");
    cr_assert_eq(gr_queue_free(q), 0);
    return NULL;
}

Test(queue, peek_waits_and_does_not_take, .timeout = 10)
{
    run_main(peek_waits, NULL);
}

/* ================================================================ misuse */

static void *free_busy(void *arg)
{
    gr_t g;

    (void)arg;
    q = gr_queue_new(GR_QUEUE_FIFO, 0, NULL);
    g = gr_spawn(getter, ARG('x'));
    gr_yield();
    assert_fails(gr_queue_free(q), EBUSY);
    cr_assert_eq(gr_queue_put(q, ARG(1), -1), 0);
    cr_assert_eq(gr_join(g, NULL, -1), 0);

    /* A post on its way keeps the queue busy until it has arrived. */
    cr_assert_eq(gr_queue_post(q, ARG(2)), 0);
    assert_fails(gr_queue_free(q), EBUSY);
    cr_assert_eq(gr_queue_get(q, NULL, -1), 0);
    cr_assert_eq(gr_queue_free(q), 0);
    return NULL;
}

Test(queue, free_is_ebusy_while_in_use, .timeout = 10)
{
    run_main(free_busy, NULL);
}

static int callback_ran;

static void in_callback(void *arg)
{
    void *v;

    (void)arg;
    cr_assert_eq(gr_queue_put(q, ARG(1), -1), 0);
    cr_assert_eq(gr_queue_get(q, &v, -1), 0);
    cr_assert_eq((intptr_t)v, 1);
    assert_fails(gr_queue_get(q, &v, 0), ETIMEDOUT);
    cr_assert_eq(gr_queue_put(q, ARG(2), 0), 0);
    assert_fails(gr_queue_put(q, ARG(3), 0), ETIMEDOUT); /* full */
    assert_fails(gr_queue_put(q, ARG(3), -1), EDEADLK);
    callback_ran = 1;
}

static void *from_callback(void *arg)
{
    (void)arg;
    q = gr_queue_new(GR_QUEUE_FIFO, 1, NULL);
    cr_assert_eq(gr_hub_post(gr_hub_current(), in_callback, NULL), 0);
    gr_sleep(gr_now() + 1);
    cr_assert(callback_ran);
    cr_assert_eq(get_now(q), 2);
    cr_assert_eq(gr_queue_free(q), 0);
    return NULL;
}

Test(queue, hub_callbacks_may_put_and_get_without_waiting, .timeout = 10)
{
    cr_redirect_stderr(); /* the EDEADLK warning */
    run_main(from_callback, NULL);
}

/* ========================================================= gr_queue_post */

enum { POSTERS = 4, PER_POSTER = 10000 };
static gr_hub *hub;

static void *poster(void *arg)
{
    intptr_t who = (intptr_t)arg;

    for (intptr_t i = 0; i < PER_POSTER; i++)
        cr_assert_eq(gr_queue_post(q, ARG(who * PER_POSTER + i + 1)), 0);
    gr_hub_unref(hub);
    return NULL;
}

static void *posted_items_arrive(void *arg)
{
    pthread_t t[POSTERS];
    intptr_t next[POSTERS] = {0};
    void *v;

    (void)arg;
    /* Bounded, to show that posts ignore maxsize. */
    q = gr_queue_new(GR_QUEUE_FIFO, 16, NULL);
    hub = gr_hub_current();
    for (intptr_t i = 0; i < POSTERS; i++) {
        gr_hub_ref(hub);
        cr_assert_eq(pthread_create(&t[i], NULL, poster, (void *)i), 0);
    }
    for (int n = 0; n < POSTERS * PER_POSTER; n++) {
        intptr_t item;

        cr_assert_eq(gr_queue_get(q, &v, gr_now_update() + 5000), 0);
        item = (intptr_t)v - 1;
        cr_assert_eq(item % PER_POSTER, next[item / PER_POSTER], "poster %ld out of order",
                     (long)(item / PER_POSTER));
        next[item / PER_POSTER]++;
        cr_assert_eq(gr_queue_task_done(q), 0);
    }
    for (int i = 0; i < POSTERS; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(next[i], PER_POSTER);
    }
    cr_assert_eq(gr_queue_join(q, 0), 0);
    assert_fails(gr_queue_get(q, &v, 0), ETIMEDOUT);
    cr_assert_eq(gr_queue_free(q), 0);
    return NULL;
}

Test(queue, posts_from_four_pthreads_arrive_complete_and_in_order, .timeout = 30)
{
    run_main(posted_items_arrive, NULL);
}

static void *post_beyond_maxsize(void *arg)
{
    gr_t g;
    void *v;

    (void)arg;
    q = gr_queue_new(GR_QUEUE_PRIORITY, 1, by_prio);
    g = gr_spawn(getter, ARG('g'));
    gr_yield();
    /* A waiting getter is handed the posted item. */
    prio_item a = {5, 0}, b = {1, 1}, c = {3, 2};
    cr_assert_eq(gr_queue_post(q, &a), 0);
    cr_assert_eq(gr_join(g, &v, -1), 0);
    cr_assert_eq(v, &a);
    cr_assert_eq(gr_queue_post(q, &a), 0);
    cr_assert_eq(gr_queue_post(q, &b), 0);
    cr_assert_eq(gr_queue_post(q, &c), 0);
    gr_sleep(gr_now() + 1);
    cr_assert_eq(gr_queue_size(q), 3);
    cr_assert_eq(gr_queue_get(q, &v, 0), 0);
    cr_assert_eq(v, &b);
    cr_assert_eq(gr_queue_size(q), 2);
    assert_fails(gr_queue_put(q, &a, 0), ETIMEDOUT);
    cr_assert_eq(gr_queue_get(q, &v, 0), 0);
    cr_assert_eq(v, &c);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(gr_queue_task_done(q), 0);
    assert_fails(gr_queue_join(q, 0), ETIMEDOUT);
    cr_assert_eq(gr_queue_get(q, NULL, 0), 0);
    cr_assert_eq(gr_queue_task_done(q), 0);
    cr_assert_eq(gr_queue_join(q, 0), 0);
    cr_assert_eq(gr_queue_free(q), 0);
    return NULL;
}

Test(queue, post_ignores_maxsize_and_counts_as_a_put, .timeout = 10)
{
    run_main(post_beyond_maxsize, NULL);
}

/* ============================================================== Channel */

static gr_chan ch;

static void *chan_sender(void *arg)
{
    mark('s');
    cr_assert_eq(gr_chan_send(&ch, arg, -1), 0);
    mark('S');
    return NULL;
}

static void *chan_receiver(void *arg)
{
    void *v;

    (void)arg;
    mark('r');
    cr_assert_eq(gr_chan_recv(&ch, &v, -1), 0);
    mark('R');
    return v;
}

static void *chan_rendezvous(void *arg)
{
    gr_t s, r;
    void *v;

    (void)arg;
    gr_chan_init(&ch);
    s = gr_spawn(chan_sender, ARG(1));
    gr_yield();
    assert_blocked(s); /* no receiver yet */
    mark('-');
    r = gr_spawn(chan_receiver, NULL);
    cr_assert_eq(gr_join(r, &v, -1), 0);
    cr_assert_eq((intptr_t)v, 1);
    cr_assert_eq(gr_join(s, NULL, -1), 0);

    r = gr_spawn(chan_receiver, NULL);
    gr_yield();
    mark('-');
    s = gr_spawn(chan_sender, ARG(2));
    cr_assert_eq(gr_join(s, NULL, -1), 0);
    cr_assert_eq(gr_join(r, &v, -1), 0);
    cr_assert_eq((intptr_t)v, 2);
    assert_trail("s-rRSr-sSR");

    assert_fails(gr_chan_send(&ch, ARG(3), 0), ETIMEDOUT);
    assert_fails(gr_chan_recv(&ch, &v, 0), ETIMEDOUT);
    assert_fails(gr_chan_recv(&ch, &v, gr_now_update() + 10), ETIMEDOUT);
    return NULL;
}

Test(chan, send_and_receive_meet, .timeout = 10)
{
    run_main(chan_rendezvous, NULL);
}

static void *chan_fifo(void *arg)
{
    gr_t g[3];
    void *v;

    (void)arg;
    gr_chan_init(&ch);
    for (int i = 0; i < 3; i++)
        g[i] = gr_spawn(chan_sender, ARG(10 + i));
    gr_yield();
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(gr_chan_recv(&ch, &v, -1), 0);
        cr_assert_eq((intptr_t)v, 10 + i);
    }
    join_all(g, 3);
    for (int i = 0; i < 3; i++)
        g[i] = gr_spawn(chan_receiver, NULL);
    gr_yield();
    for (int i = 0; i < 3; i++)
        cr_assert_eq(gr_chan_send(&ch, ARG(20 + i), -1), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(gr_join(g[i], &v, -1), 0);
        cr_assert_eq((intptr_t)v, 20 + i);
    }
    return NULL;
}

Test(chan, senders_and_receivers_served_in_order, .timeout = 10)
{
    run_main(chan_fifo, NULL);
}

static void *closed_sender(void *arg)
{
    (void)arg;
    assert_fails(gr_chan_send(&ch, ARG(1), -1), EPIPE);
    return NULL;
}

static void *closed_receiver(void *arg)
{
    (void)arg;
    assert_fails(gr_chan_recv(&ch, NULL, -1), EPIPE);
    return NULL;
}

static void *chan_close(void *arg)
{
    gr_chan other;
    gr_t g[4];

    (void)arg;
    gr_chan_init(&ch);
    g[0] = gr_spawn(closed_receiver, NULL);
    g[1] = gr_spawn(closed_receiver, NULL);
    gr_yield();
    gr_chan_close(&ch);
    join_all(g, 2);
    assert_fails(gr_chan_send(&ch, NULL, -1), EPIPE);
    assert_fails(gr_chan_recv(&ch, NULL, -1), EPIPE);
    gr_chan_close(&ch); /* twice: nothing more happens */

    gr_chan_init(&ch);
    g[2] = gr_spawn(closed_sender, NULL);
    g[3] = gr_spawn(closed_sender, NULL);
    gr_yield();
    gr_chan_close(&ch);
    join_all(g + 2, 2);
    gr_chan_init(&other);
    gr_chan_close(&other);
    assert_fails(gr_chan_recv(&other, NULL, 0), EPIPE);
    return NULL;
}

Test(chan, close_wakes_everyone_with_epipe, .timeout = 10)
{
    run_main(chan_close, NULL);
}

static void *chan_sender_until_instant(void *arg)
{
    (void)arg;
    assert_fails(gr_chan_send(&ch, ARG(1), instant), ETIMEDOUT);
    mark('T');
    return NULL;
}

static void *chan_receiver_at_instant(void *arg)
{
    void *v = NULL;

    (void)arg;
    cr_assert_eq(gr_sleep(instant), 0);
    mark('R');
    cr_assert_eq(gr_chan_recv(&ch, &v, -1), 0);
    return v;
}

static void *killed_receiver(void *arg)
{
    (void)arg;
    assert_fails(gr_chan_recv(&ch, NULL, -1), ECANCELED);
    return NULL;
}

static void *killed_sender(void *arg)
{
    (void)arg;
    assert_fails(gr_chan_send(&ch, ARG(9), -1), ECANCELED);
    return NULL;
}

static void *chan_race_and_cancel(void *arg)
{
    gr_t r, t, s, k;
    void *v;

    (void)arg;
    gr_chan_init(&ch);
    k = gr_spawn(killed_receiver, NULL);
    gr_yield();
    gr_kill(k);
    cr_assert_eq(gr_join(k, NULL, -1), 0);
    k = gr_spawn(killed_sender, NULL);
    gr_yield();
    gr_kill(k);
    cr_assert_eq(gr_join(k, NULL, -1), 0);
    assert_fails(gr_chan_recv(&ch, &v, 0), ETIMEDOUT); /* its value is gone */

    /* A timed-out sender's value is never delivered: the receiver, woken
     * in the same pass, gets the next sender's. */
    instant = gr_now_update() + 20;
    r = gr_spawn(chan_receiver_at_instant, NULL);
    t = gr_spawn(chan_sender_until_instant, NULL);
    s = gr_spawn(chan_sender, ARG(2));
    cr_assert_eq(gr_join(r, &v, -1), 0);
    cr_assert_eq((intptr_t)v, 2);
    join_all((gr_t[]){t, s}, 2);
    assert_trail("sRTS");
    return NULL;
}

Test(chan, timed_out_and_killed_peers_are_passed_over, .timeout = 10)
{
    run_main(chan_race_and_cancel, NULL);
}

enum { ECHOES = 1000 };
static gr_chan ping, pong;

static void *echo(void *arg)
{
    void *v;

    (void)arg;
    for (int i = 0; i < ECHOES; i++) {
        cr_assert_eq(gr_chan_recv(&ping, &v, -1), 0);
        cr_assert_eq(gr_chan_send(&pong, v, -1), 0);
    }
    return NULL;
}

/* Meeting a waiting peer completes the exchange on the spot: one switch
 * per message. */
static void *chan_one_switch(void *arg)
{
    gr_stats a, b;
    gr_t g;
    void *v;

    (void)arg;
    gr_chan_init(&ping);
    gr_chan_init(&pong);
    g = gr_spawn(echo, NULL);
    gr_yield();
    gr_stats_get(&a);
    for (intptr_t i = 0; i < ECHOES; i++) {
        cr_assert_eq(gr_chan_send(&ping, ARG(i), -1), 0);
        cr_assert_eq(gr_chan_recv(&pong, &v, -1), 0);
        cr_assert_eq((intptr_t)v, i);
    }
    gr_stats_get(&b);
    cr_assert_eq(b.switches - a.switches, 2 * ECHOES, "%zu switches for %d messages",
                 b.switches - a.switches, 2 * ECHOES);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    return NULL;
}

Test(chan, one_switch_per_message, .timeout = 10)
{
    run_main(chan_one_switch, NULL);
}
