/* Waiting on several things: gr_wait_any, gr_iwait, gr_joinall,
 * gr_killall, and looking at a thread without consuming it
 * (gr_thread_info_get). Watches take nothing: every test that has a
 * consumer next to a watcher checks that the consumer still gets its
 * item, value or result. */
#include "common.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static void *returns_arg_after(void *arg)
{
    gr_sleep(gr_now_update() + (intptr_t)arg);
    return arg;
}

static void *sleeps_forever(void *arg)
{
    (void)arg;
    gr_sleep(-1);
    return (void *)7;
}

static void *returns_at_once(void *arg)
{
    return arg;
}

#define THREAD(t) ((gr_waitable){.kind = GR_WAIT_THREAD, .thread = (t)})
#define OBJ(k, o) ((gr_waitable){.kind = (k), .obj = (o)})
#define FD(f, e) ((gr_waitable){.kind = GR_WAIT_FD, .fd = (f), .events = (e)})

/* ============================================================ threads */

static void *first_of_three(void *arg)
{
    gr_waitable it[3];
    void *r;

    (void)arg;
    it[0] = THREAD(gr_spawn(returns_arg_after, (void *)60));
    it[1] = THREAD(gr_spawn(returns_arg_after, (void *)10));
    it[2] = THREAD(gr_spawn(returns_arg_after, (void *)200));
    cr_assert_eq(gr_wait_any(it, 3, gr_now_update() + 5000), 1);
    cr_assert(!it[0].ready && it[1].ready && !it[2].ready);
    /* Not consumed: the result is still the joiner's. */
    cr_assert_eq(gr_join(it[1].thread, &r, 0), 0);
    cr_assert_eq((intptr_t)r, 10);
    it[1] = THREAD(gr_spawn(returns_arg_after, (void *)300));
    cr_assert_eq(gr_wait_any(it, 3, -1), 1);
    cr_assert(it[0].ready && !it[1].ready && !it[2].ready);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(gr_join(it[i].thread, NULL, -1), 0);
    return NULL;
}

Test(wait_any, reports_the_first_thread_to_finish_and_takes_no_result, .timeout = 10)
{
    run_main(first_of_three, NULL);
}

/* A joiner parked on the same thread still gets its result. */
static gr_t target;

static void *joins_target(void *arg)
{
    void *r = NULL;

    (void)arg;
    cr_assert_eq(gr_join(target, &r, -1), 0);
    return r;
}

static void *watcher_and_joiner(void *arg)
{
    gr_waitable it;
    gr_t joiner;
    void *r;

    (void)arg;
    target = gr_spawn(returns_arg_after, (void *)20);
    joiner = gr_spawn(joins_target, NULL);
    it = THREAD(target);
    cr_assert_eq(gr_wait_any(&it, 1, gr_now_update() + 5000), 1);
    cr_assert_eq(gr_join(joiner, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 20, "the joiner collected the result");
    /* The joiner released it: a stale handle, which a new call refuses. */
    assert_fails(gr_wait_any(&it, 1, 0), ESRCH);
    return NULL;
}

Test(wait_any, watching_a_thread_leaves_its_result_to_its_joiner, .timeout = 10)
{
    run_main(watcher_and_joiner, NULL);
}

/* A detached thread's handle goes stale as it finishes: that is finishing. */
static void *detached_finishes(void *arg)
{
    gr_waitable it;

    (void)arg;
    it = THREAD(gr_spawn_opts(returns_arg_after, (void *)10, &(gr_opts){.flags = GR_DETACHED}));
    cr_assert_eq(gr_wait_any(&it, 1, gr_now_update() + 5000), 1);
    cr_assert(it.ready);
    return NULL;
}

Test(wait_any, a_detached_thread_counts_as_finished_when_it_goes, .timeout = 10)
{
    run_main(detached_finishes, NULL);
}

/* ======================================================= sync objects */

static gr_event ev;
static gr_async as;
static gr_queue *q;
static gr_chan ch;

static void *sets_event_later(void *arg)
{
    gr_sleep(gr_now_update() + (intptr_t)arg);
    gr_event_set(&ev);
    return NULL;
}

static void *puts_later(void *arg)
{
    gr_sleep(gr_now_update() + 10);
    cr_assert_eq(gr_queue_put(q, arg, -1), 0);
    return NULL;
}

static void *sends_later(void *arg)
{
    gr_sleep(gr_now_update() + 10);
    return (void *)(intptr_t)gr_chan_send(&ch, arg, gr_now_update() + 5000);
}

static void init_objects(void)
{
    gr_event_init(&ev);
    gr_async_init(&as);
    gr_chan_init(&ch);
    cr_assert_not_null(q = gr_queue_new(GR_QUEUE_FIFO, 0, NULL));
}

static void *each_object_kind(void *arg)
{
    gr_waitable it[4];
    gr_t g;
    void *v;

    (void)arg;
    init_objects();
    it[0] = OBJ(GR_WAIT_EVENT, &ev);
    it[1] = OBJ(GR_WAIT_ASYNC, &as);
    it[2] = OBJ(GR_WAIT_QUEUE, q);
    it[3] = OBJ(GR_WAIT_CHAN, &ch);
    assert_fails(gr_wait_any(it, 4, 0), ETIMEDOUT);

    g = gr_spawn(sets_event_later, (void *)10);
    cr_assert_eq(gr_wait_any(it, 4, gr_now_update() + 5000), 1);
    cr_assert(it[0].ready && !it[1].ready && !it[2].ready && !it[3].ready);
    gr_join(g, NULL, -1);
    gr_event_clear(&ev);

    gr_async_set(&as, (void *)5);
    cr_assert_eq(gr_wait_any(it, 4, 0), 1);
    cr_assert(it[1].ready);
    cr_assert_eq(gr_async_get(&as, &v, 0), 0);
    cr_assert_eq((intptr_t)v, 5, "the value is still there");

    it[1] = it[0]; /* no longer interesting */
    g = gr_spawn(puts_later, (void *)9);
    cr_assert_eq(gr_wait_any(it, 4, gr_now_update() + 5000), 1);
    cr_assert(it[2].ready);
    cr_assert_eq(gr_queue_get(q, &v, 0), 0, "the item is still in the queue");
    cr_assert_eq((intptr_t)v, 9);
    gr_join(g, NULL, -1);

    g = gr_spawn(sends_later, (void *)11);
    cr_assert_eq(gr_wait_any(it, 4, gr_now_update() + 5000), 1);
    cr_assert(it[3].ready);
    cr_assert_eq(gr_chan_recv(&ch, &v, 0), 0, "the sender still waits for a receiver");
    cr_assert_eq((intptr_t)v, 11);
    cr_assert_eq(gr_join(g, &v, -1), 0);
    cr_assert_eq((intptr_t)v, 0);

    gr_chan_close(&ch);
    cr_assert_eq(gr_wait_any(&it[3], 1, 0), 1, "a closed channel does not make receivers wait");
    cr_assert_eq(gr_queue_free(q), 0, "no watch is left in the queue");
    return NULL;
}

Test(wait_any, events_asyncs_queues_and_channels, .timeout = 10)
{
    run_main(each_object_kind, NULL);
}

/* An item handed straight to a parked getter never enters the queue: a
 * watcher is not woken for it, and never gets it. The same for a value
 * handed to a parked receiver. */
static void *gets(void *arg)
{
    void *v = NULL;

    (void)arg;
    cr_assert_eq(gr_queue_get(q, &v, gr_now_update() + 5000), 0);
    return v;
}

static void *receives(void *arg)
{
    void *v = NULL;

    (void)arg;
    cr_assert_eq(gr_chan_recv(&ch, &v, gr_now_update() + 5000), 0);
    return v;
}

static void *watchers_take_nothing(void *arg)
{
    gr_waitable it[2];
    gr_t getter, receiver;
    void *v;

    (void)arg;
    init_objects();
    it[0] = OBJ(GR_WAIT_QUEUE, q);
    it[1] = OBJ(GR_WAIT_CHAN, &ch);
    getter = gr_spawn(gets, NULL);
    receiver = gr_spawn(receives, NULL);
    gr_yield(); /* both parked */
    gr_spawn(puts_later, (void *)3);
    assert_fails(gr_wait_any(it, 1, gr_now_update() + 60), ETIMEDOUT);
    cr_assert_eq(gr_join(getter, &v, -1), 0);
    cr_assert_eq((intptr_t)v, 3);
    cr_assert_eq(gr_chan_send(&ch, (void *)4, gr_now_update() + 1000), 0);
    assert_fails(gr_wait_any(&it[1], 1, 0), ETIMEDOUT);
    cr_assert_eq(gr_join(receiver, &v, -1), 0);
    cr_assert_eq((intptr_t)v, 4);
    return NULL;
}

Test(wait_any, a_watch_never_takes_an_item_or_a_value, .timeout = 10)
{
    run_main(watchers_take_nothing, NULL);
}

/* Event and AsyncResult are set from another OS thread. */
static void *plain_sets(void *arg)
{
    (void)arg;
    usleep(20000);
    gr_async_set(&as, (void *)8);
    return NULL;
}

static void *woken_from_another_thread(void *arg)
{
    gr_waitable it[2];
    pthread_t t;

    (void)arg;
    init_objects();
    it[0] = OBJ(GR_WAIT_EVENT, &ev);
    it[1] = OBJ(GR_WAIT_ASYNC, &as);
    cr_assert_eq(pthread_create(&t, NULL, plain_sets, NULL), 0);
    cr_assert_eq(gr_wait_any(it, 2, gr_now_update() + 5000), 1);
    cr_assert(!it[0].ready && it[1].ready);
    pthread_join(t, NULL);
    gr_queue_free(q);
    return NULL;
}

Test(wait_any, woken_by_another_os_thread, .timeout = 10)
{
    run_main(woken_from_another_thread, NULL);
}

/* =========================================================== descriptors */

static void *writes_later(void *arg)
{
    gr_sleep(gr_now_update() + 10);
    cr_assert_eq(write((int)(intptr_t)arg, "x", 1), 1);
    return NULL;
}

static void *fds(void *arg)
{
    int a[2], b[2], file;
    gr_waitable it[3];
    char c;

    (void)arg;
    cr_assert_eq(pipe2(a, O_NONBLOCK | O_CLOEXEC), 0);
    cr_assert_eq(pipe2(b, O_NONBLOCK | O_CLOEXEC), 0);
    it[0] = FD(a[0], GR_READ);
    it[1] = FD(b[0], GR_READ);
    assert_fails(gr_wait_any(it, 2, 0), ETIMEDOUT);
    gr_spawn(writes_later, (void *)(intptr_t)b[1]);
    cr_assert_eq(gr_wait_any(it, 2, gr_now_update() + 5000), 1);
    cr_assert(!it[0].ready && it[1].ready == GR_READ);
    cr_assert_eq(read(b[0], &c, 1), 1);
    /* The write side of a pipe is writable; a regular file always ready. */
    it[1] = FD(a[1], GR_READ | GR_WRITE);
    cr_assert_eq(gr_wait_any(it, 2, 0), 1);
    cr_assert_eq(it[1].ready, GR_WRITE);
    cr_assert_geq(file = open("/proc/self/stat", O_RDONLY | O_CLOEXEC), 0);
    it[2] = FD(file, GR_READ);
    cr_assert_eq(gr_wait_any(it, 3, -1), 2);
    cr_assert(it[2].ready & GR_READ);
    /* A hang-up counts as ready for both. */
    gr_close(a[1]);
    cr_assert_eq(gr_wait_any(it, 1, 0), 1);
    cr_assert_eq(it[0].ready, GR_READ);
    close(file);
    gr_close(a[0]);
    assert_fails(gr_wait_any(it, 1, 0), EBADF);
    gr_close(b[0]);
    gr_close(b[1]);
    return NULL;
}

Test(wait_any, descriptors, .timeout = 10)
{
    run_main(fds, NULL);
}

/* ================================================ deadlines, kills, misuse */

static void *deadlines(void *arg)
{
    gr_waitable it;
    gr_timeout to;
    int64_t t0;

    (void)arg;
    gr_event_init(&ev);
    it = OBJ(GR_WAIT_EVENT, &ev);
    t0 = gr_now_update();
    assert_fails(gr_wait_any(&it, 1, t0 + 30), ETIMEDOUT);
    cr_assert_geq(gr_now_update(), t0 + 30);
    /* A timeout region ends it too, with ETIMEDOUT. */
    gr_timeout_begin(&to, gr_now_update() + 20);
    assert_fails(gr_wait_any(&it, 1, -1), ETIMEDOUT);
    cr_assert_eq(gr_timeout_end(&to), 1);
    /* Ready items succeed whatever the deadline. */
    gr_event_set(&ev);
    cr_assert_eq(gr_wait_any(&it, 1, 0), 1);
    cr_assert_eq(gr_wait_any(&it, 1, gr_now() - 100), 1);
    return NULL;
}

Test(wait_any, deadlines_and_timeout_regions, .timeout = 10)
{
    run_main(deadlines, NULL);
}

static void *waits_any_on_event(void *arg)
{
    gr_waitable it = OBJ(GR_WAIT_EVENT, &ev);

    (void)arg;
    assert_fails(gr_wait_any(&it, 1, -1), ECANCELED);
    /* Killed: still succeeds when ready, without waiting. */
    gr_event_set(&ev);
    cr_assert_eq(gr_wait_any(&it, 1, -1), 1);
    return NULL;
}

static void hub_callback_waits(void *arg)
{
    gr_waitable it = OBJ(GR_WAIT_EVENT, &ev);

    assert_fails(gr_wait_any(&it, 1, -1), EDEADLK);
    assert_fails(gr_wait_any(&it, 1, 0), ETIMEDOUT);
    *(int *)arg = 1;
}

static void *kills_and_callbacks(void *arg)
{
    gr_queue *q2;
    int ran = 0;
    gr_t g;

    (void)arg;
    gr_event_init(&ev);
    g = gr_spawn(waits_any_on_event, NULL);
    gr_yield();
    gr_kill(g);
    cr_assert_eq(gr_join(g, NULL, -1), 0);
    gr_event_clear(&ev);
    /* Nothing is left linked: the queue frees. */
    cr_assert_not_null(q2 = gr_queue_new(GR_QUEUE_FIFO, 0, NULL));
    gr_hub_post(gr_hub_current(), hub_callback_waits, &ran);
    gr_sleep(gr_now_update() + 20);
    cr_assert(ran);
    cr_assert_eq(gr_queue_free(q2), 0);
    return NULL;
}

Test(wait_any, kills_and_hub_callbacks, .timeout = 10)
{
    cr_redirect_stderr(); /* the EDEADLK misuse report */
    run_main(kills_and_callbacks, NULL);
}

static void *bad_arguments(void *arg)
{
    gr_waitable it[2];
    gr_t done;

    (void)arg;
    gr_event_init(&ev);
    it[0] = OBJ(GR_WAIT_EVENT, &ev);
    assert_fails(gr_wait_any(NULL, 1, 0), EINVAL);
    assert_fails(gr_wait_any(it, 0, 0), EINVAL);
    assert_fails(gr_wait_any(it, GR_WAIT_MAX + 1, 0), EINVAL);
    it[1] = (gr_waitable){.kind = 99};
    assert_fails(gr_wait_any(it, 2, 0), EINVAL);
    it[1] = OBJ(GR_WAIT_QUEUE, NULL);
    assert_fails(gr_wait_any(it, 2, 0), EINVAL);
    it[1] = FD(0, 0);
    assert_fails(gr_wait_any(it, 2, 0), EINVAL);
    it[1] = FD(0, 8);
    assert_fails(gr_wait_any(it, 2, 0), EINVAL);
    it[1] = FD(-1, GR_READ);
    assert_fails(gr_wait_any(it, 2, 0), EBADF);
    done = gr_spawn(returns_at_once, NULL);
    gr_join(done, NULL, -1);
    it[1] = THREAD(done);
    assert_fails(gr_wait_any(it, 2, 0), ESRCH);
    return NULL;
}

Test(wait_any, bad_arguments, .timeout = 10)
{
    run_main(bad_arguments, NULL);
    /* A root context never finishes: not a thread to wait for. */
    assert_fails(gr_wait_any(&THREAD(gr_self()), 1, 0), EINVAL);
    /* The root context of a thread may wait too. */
    gr_event_init(&ev);
    gr_spawn(sets_event_later, (void *)5);
    cr_assert_eq(gr_wait_any(&OBJ(GR_WAIT_EVENT, &ev), 1, gr_now_update() + 5000), 1);
}

/* More items than fit on the stack: watches are allocated. */
static void *many(void *arg)
{
    enum { N = 300 };
    gr_waitable *it = calloc(N, sizeof *it);

    (void)arg;
    for (int i = 0; i < N; i++)
        it[i] = THREAD(gr_spawn(returns_arg_after, (void *)(intptr_t)(i == 150 ? 5 : 5000)));
    cr_assert_eq(gr_wait_any(it, N, gr_now_update() + 4000), 1);
    cr_assert(it[150].ready);
    for (int i = 0; i < N; i++)
        gr_kill(it[i].thread);
    for (int i = 0; i < N; i++)
        gr_join(it[i].thread, NULL, -1);
    free(it);
    return NULL;
}

Test(wait_any, hundreds_of_items, .timeout = 10)
{
    run_main(many, NULL);
}

/* =============================================================== iwait */

static void *iterates(void *arg)
{
    gr_waitable it[4];
    gr_iwait iw;
    int order[4];

    (void)arg;
    gr_event_init(&ev);
    it[0] = THREAD(gr_spawn(returns_arg_after, (void *)40));
    it[1] = THREAD(gr_spawn(returns_arg_after, (void *)10));
    it[2] = OBJ(GR_WAIT_EVENT, &ev);
    it[3] = THREAD(gr_spawn(returns_arg_after, (void *)25));
    gr_event_set(&ev); /* ready at once */
    cr_assert_eq(gr_iwait_init(&iw, it, 4), 0);
    for (int i = 0; i < 4; i++)
        cr_assert_geq(order[i] = gr_iwait_next(&iw, gr_now_update() + 5000), 0);
    cr_assert_eq(order[0], 2);
    cr_assert_eq(order[1], 1);
    cr_assert_eq(order[2], 3);
    cr_assert_eq(order[3], 0);
    assert_fails(gr_iwait_next(&iw, -1), ENOENT);
    for (int i = 0; i < 4; i++)
        if (i != 2)
            cr_assert_eq(gr_join(it[i].thread, NULL, 0), 0);
    assert_fails(gr_iwait_init(NULL, it, 4), EINVAL);
    assert_fails(gr_iwait_init(&iw, it, 4), ESRCH);
    assert_fails(gr_iwait_next(NULL, 0), EINVAL);
    return NULL;
}

Test(iwait, reports_each_item_once_as_it_becomes_ready, .timeout = 10)
{
    run_main(iterates, NULL);
}

static void *iwait_times_out_and_goes_on(void *arg)
{
    gr_waitable it[2];
    gr_iwait iw;

    (void)arg;
    it[0] = THREAD(gr_spawn(returns_arg_after, (void *)5));
    it[1] = THREAD(gr_spawn(returns_arg_after, (void *)80));
    gr_iwait_init(&iw, it, 2);
    cr_assert_eq(gr_iwait_next(&iw, gr_now_update() + 5000), 0);
    assert_fails(gr_iwait_next(&iw, gr_now_update() + 10), ETIMEDOUT);
    /* The reported thread can be joined; the iteration goes on. */
    cr_assert_eq(gr_join(it[0].thread, NULL, 0), 0);
    cr_assert_eq(gr_iwait_next(&iw, gr_now_update() + 5000), 1);
    assert_fails(gr_iwait_next(&iw, 0), ENOENT);
    gr_join(it[1].thread, NULL, 0);
    return NULL;
}

Test(iwait, a_timeout_leaves_the_iteration_usable, .timeout = 10)
{
    run_main(iwait_times_out_and_goes_on, NULL);
}

/* ============================================================= joinall */

static void *joins_all(void *arg)
{
    gr_t g[3], late;
    void *res[3];
    int joined[3];

    (void)arg;
    for (int i = 0; i < 3; i++)
        g[i] = gr_spawn(returns_arg_after, (void *)(intptr_t)(10 * (3 - i)));
    cr_assert_eq(gr_joinall(g, 3, res, joined, gr_now_update() + 5000), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq((intptr_t)res[i], 10 * (3 - i));
        cr_assert_eq(joined[i], 1);
        assert_fails(gr_join(g[i], NULL, 0), ESRCH);
    }
    /* Deadline: joined says which finished, the others stay joinable. */
    g[0] = gr_spawn(returns_arg_after, (void *)5);
    g[1] = late = gr_spawn(returns_arg_after, (void *)400);
    assert_fails(gr_joinall(g, 2, res, joined, gr_now_update() + 60), ETIMEDOUT);
    cr_assert_eq(joined[0], 1);
    cr_assert_eq((intptr_t)res[0], 5);
    cr_assert_eq(joined[1], 0);
    cr_assert_eq(gr_kill(late), 0);
    cr_assert_eq(gr_joinall(&late, 1, NULL, NULL, -1), 0);
    return NULL;
}

Test(joinall, joins_each_and_tells_which_finished, .timeout = 10)
{
    run_main(joins_all, NULL);
}

static void *joinall_refuses(void *arg)
{
    gr_t g[2], me = gr_self();

    (void)arg;
    g[0] = gr_spawn(returns_at_once, NULL);
    g[1] = g[0];
    assert_fails(gr_joinall(NULL, 1, NULL, NULL, 0), EINVAL);
    assert_fails(gr_joinall(g, 0, NULL, NULL, 0), EINVAL);
    assert_fails(gr_joinall(g, 2, NULL, NULL, 0), EINVAL);
    g[1] = me;
    assert_fails(gr_joinall(g, 2, NULL, NULL, 0), EDEADLK);
    g[1] = gr_spawn_opts(returns_at_once, NULL, &(gr_opts){.flags = GR_DETACHED});
    assert_fails(gr_joinall(g, 2, NULL, NULL, 0), EINVAL);
    gr_yield();
    g[1] = g[0];
    cr_assert_eq(gr_join(g[0], NULL, 0), 0);
    assert_fails(gr_joinall(g, 1, NULL, NULL, 0), ESRCH);
    return NULL;
}

Test(joinall, bad_arguments_join_nothing, .timeout = 10)
{
    run_main(joinall_refuses, NULL);
}

static void *joinall_killed(void *arg)
{
    gr_t g[2];
    int joined[2];

    (void)arg;
    g[0] = gr_spawn(returns_at_once, (void *)1);
    g[1] = gr_spawn(sleeps_forever, NULL);
    gr_yield();
    gr_kill(gr_self());
    /* The finished one is still joined; then the wait fails. */
    assert_fails(gr_joinall(g, 2, NULL, joined, -1), ECANCELED);
    cr_assert(joined[0] && !joined[1]);
    gr_kill(g[1]);
    gr_shield_begin();
    cr_assert_eq(gr_join(g[1], NULL, gr_now_update() + 1000), 0);
    gr_shield_end();
    return NULL;
}

Test(joinall, a_killed_caller_collects_what_has_finished, .timeout = 10)
{
    void *r;

    cr_assert_eq(gr_main(joinall_killed, NULL, &r), 0);
}

/* ============================================================= killall */

static void *shielded_sleeper(void *arg)
{
    (void)arg;
    gr_shield_begin();
    gr_sleep(gr_now_update() + 100);
    gr_shield_end();
    return NULL;
}

static void *kills_all(void *arg)
{
    gr_t g[4];
    gr_thread_info info;
    void *r;

    (void)arg;
    g[3] = gr_spawn(returns_at_once, NULL);
    gr_join(g[3], NULL, -1); /* stale: skipped */
    g[0] = gr_spawn(sleeps_forever, NULL);
    g[1] = gr_spawn(sleeps_forever, NULL);
    gr_yield();
    g[2] = gr_spawn(returns_at_once, (void *)1); /* killed before it runs */
    cr_assert_eq(gr_killall(g, 4, gr_now_update() + 5000), 0);
    /* Finished, not joined. */
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(gr_thread_info_get(g[i], &info), 0);
        cr_assert_eq(info.state, GR_THREAD_FINISHED);
        cr_assert(info.killed);
    }
    cr_assert_eq(gr_join(g[2], &r, 0), 0);
    cr_assert_eq(r, GR_CANCELED);
    gr_join(g[0], NULL, 0);
    gr_join(g[1], NULL, 0);
    /* One that unwinds slowly: ETIMEDOUT, and the kill stands. */
    g[0] = gr_spawn(shielded_sleeper, NULL);
    gr_yield();
    assert_fails(gr_killall(g, 1, gr_now_update() + 20), ETIMEDOUT);
    assert_fails(gr_killall(g, 1, 0), ETIMEDOUT);
    cr_assert_eq(gr_join(g[0], NULL, gr_now_update() + 5000), 0);
    assert_fails(gr_killall(NULL, 1, 0), EINVAL);
    assert_fails(gr_killall(g, 0, 0), EINVAL);
    return NULL;
}

Test(killall, kills_and_waits_without_joining, .timeout = 10)
{
    gr_t root;

    run_main(kills_all, NULL);
    root = gr_self();
    assert_fails(gr_killall(&root, 1, 0), EINVAL);
}

/* The caller may be among them: it is killed too, and waits for the rest
 * only if it must (then ECANCELED). */
static void *kills_itself_too(void *arg)
{
    gr_t g[2] = {gr_self(), gr_spawn(returns_at_once, NULL)};

    (void)arg;
    gr_yield();
    cr_assert_eq(gr_killall(g, 2, -1), 0, "the other had finished");
    cr_assert_eq(gr_testcancel(), -1);
    gr_join(g[1], NULL, 0);
    g[1] = gr_spawn(sleeps_forever, NULL);
    assert_fails(gr_killall(g, 2, -1), ECANCELED);
    return NULL;
}

Test(killall, the_caller_among_them, .timeout = 10)
{
    run_main(kills_itself_too, NULL);
}

/* ========================================================= thread info */

static void *looks_at_itself(void *arg)
{
    gr_thread_info info;

    (void)arg;
    cr_assert_eq(gr_thread_info_get(gr_self(), &info), 0);
    cr_assert_eq(info.state, GR_THREAD_RUNNING);
    cr_assert(info.started);
    cr_assert_str_eq(info.name, "looker");
    return (void *)3;
}

static void *inspects(void *arg)
{
    gr_thread_info info;
    gr_t g;
    int64_t at;
    void *r;

    (void)arg;
    at = gr_now_update() + 1000;
    g = gr_spawn_at(at, returns_at_once, NULL, NULL);
    cr_assert_eq(gr_thread_info_get(g, &info), 0);
    cr_assert_eq(info.state, GR_THREAD_NEW);
    cr_assert(!info.started && !info.killed);
    gr_kill(g);
    cr_assert_eq(gr_thread_info_get(g, &info), 0);
    cr_assert(info.killed);
    cr_assert_eq(info.state, GR_THREAD_READY);
    gr_yield();
    cr_assert_eq(gr_thread_info_get(g, &info), 0);
    cr_assert_eq(info.state, GR_THREAD_FINISHED);
    cr_assert(!info.started, "killed before it ran");
    cr_assert_eq(info.result, GR_CANCELED);
    cr_assert_eq(gr_join(g, NULL, 0), 0);

    g = gr_spawn_opts(looks_at_itself, NULL, &(gr_opts){.name = "looker", .stack_size = 65536});
    cr_assert_eq(gr_thread_info_get(g, &info), 0);
    cr_assert_eq(info.state, GR_THREAD_READY);
    cr_assert_eq(info.stack_size, 65536);
    gr_yield();
    cr_assert_eq(gr_thread_info_get(g, &info), 0);
    cr_assert_eq(info.state, GR_THREAD_FINISHED);
    cr_assert(info.started && !info.killed && !info.detached);
    cr_assert_eq((intptr_t)info.result, 3);
    /* Looking consumed nothing. */
    cr_assert_eq(gr_join(g, &r, 0), 0);
    cr_assert_eq((intptr_t)r, 3);

    g = gr_spawn(returns_arg_after, (void *)1000);
    gr_yield();
    cr_assert_eq(gr_thread_info_get(g, &info), 0);
    cr_assert_eq(info.state, GR_THREAD_BLOCKED);
    cr_assert_str_eq(info.wait, "sleep");
    cr_assert_geq(info.deadline, gr_now());
    gr_detach(g);
    cr_assert_eq(gr_thread_info_get(g, &info), 0);
    cr_assert(info.detached);
    gr_kill(g);
    gr_yield();
    assert_fails(gr_thread_info_get(g, &info), ESRCH);
    assert_fails(gr_thread_info_get(gr_self(), NULL), EINVAL);
    cr_assert_eq(gr_thread_info_get(gr_self(), &info), 0);
    return NULL;
}

Test(thread_info, looks_without_consuming, .timeout = 10)
{
    gr_thread_info info;

    run_main(inspects, NULL);
    cr_assert_eq(gr_thread_info_get(gr_self(), &info), 0);
    cr_assert_eq(info.state, GR_THREAD_RUNNING);
    cr_assert_str_eq(info.name, "root");
    cr_assert_eq(info.stack_size, 0);
}

/* ================================================================ fork */

/* The root waits on a thread that a fork discards: in the child it is
 * woken and finds it gone. */
static gr_t forker;

static void *forks(void *arg)
{
    pid_t pid;

    (void)arg;
    pid = gr_fork();
    cr_assert_geq(pid, 0);
    return (void *)(intptr_t)pid;
}

Test(wait_any, a_fork_wakes_the_root_watching_a_discarded_thread, .timeout = 10)
{
    gr_waitable it[2];
    int status;
    void *r;

    it[0] = THREAD(gr_spawn(returns_arg_after, (void *)100));
    forker = gr_spawn(forks, NULL);
    it[1] = THREAD(forker);
    cr_assert_eq(gr_wait_any(it, 1, gr_now_update() + 5000), 1);
    if (gr_join(forker, &r, 0) != 0 || r == NULL)
        _exit(it[0].ready ? 0 : 1); /* the child: its watch ended at once */
    cr_assert(it[0].ready);
    cr_assert_eq(waitpid((pid_t)(intptr_t)r, &status, 0), (pid_t)(intptr_t)r);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %x", status);
}

/* A root context waiting on things nothing can make ready: EDEADLK, as
 * for any wait of the root's that nothing can end. */
Test(wait_any, a_root_nothing_can_wake_gets_edeadlk, .timeout = 10)
{
    gr_queue *q1 = gr_queue_new(GR_QUEUE_FIFO, 0, NULL);
    gr_chan c;

    gr_chan_init(&c);
    gr_waitable it[2] = {OBJ(GR_WAIT_QUEUE, q1), OBJ(GR_WAIT_CHAN, &c)};

    assert_fails(gr_wait_any(it, 2, -1), EDEADLK);
    cr_assert_eq(gr_queue_free(q1), 0, "nothing left linked");
}

/* Another joiner takes a thread's result first: joinall says so. */
static gr_t taken;

static void *joins_taken(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)gr_join(taken, NULL, -1);
}

static void *loses_one(void *arg)
{
    gr_t g[2];
    int joined[2];
    void *r;

    (void)arg;
    g[0] = gr_spawn(returns_arg_after, (void *)5);
    g[1] = taken = gr_spawn(returns_arg_after, (void *)10);
    gr_t other = gr_spawn(joins_taken, NULL);
    assert_fails(gr_joinall(g, 2, NULL, joined, gr_now_update() + 5000), ESRCH);
    cr_assert(joined[0] && !joined[1]);
    cr_assert_eq(gr_join(other, &r, -1), 0);
    cr_assert_eq((intptr_t)r, 0, "the other joiner got it");
    return NULL;
}

Test(joinall, a_thread_joined_by_another_meanwhile, .timeout = 10)
{
    run_main(loses_one, NULL);
}
