/* Which calls create a hub (docs/api.md, "Which calls create a hub"), seen
 * through gr_configure: it fails with EBUSY exactly while a hub exists.
 * Each call runs on a fresh OS thread, whose hub is freed when it exits. */
#include "common.h"

#include <pthread.h>
#include <unistd.h>

static int hub_exists(void)
{
    int rc = gr_configure(&(gr_config){0});

    cr_assert(rc == 0 || errno == EBUSY, "gr_configure: %s", strerror(errno));
    return rc != 0;
}

typedef struct probe {
    const char *call;
    void (*run)(void);
    int creates;
} probe;

static void *probe_thread(void *arg)
{
    const probe *p = arg;

    p->run();
    return (void *)(intptr_t)hub_exists();
}

/* Runs each probe on a thread of its own and checks what it left. */
static void check(const probe *probes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        pthread_t t;
        void *seen;

        cr_assert_not(hub_exists(), "a hub exists before %s", probes[i].call);
        cr_assert_eq(pthread_create(&t, NULL, probe_thread, (void *)&probes[i]), 0);
        cr_assert_eq(pthread_join(t, &seen), 0);
        cr_expect_eq((intptr_t)seen, probes[i].creates, "%s %s a hub", probes[i].call,
                     seen ? "created" : "did not create");
    }
    cr_assert_not(hub_exists(), "a hub outlived its thread");
}

/* ------------------------------------------------------------- creators */

static void *nothing(void *arg)
{
    return arg;
}

static void call_spawn(void)
{
    cr_assert_eq(gr_join(gr_spawn(nothing, NULL), NULL, -1), 0);
}

static void call_yield(void)
{
    cr_assert_eq(gr_yield(), 0);
}

static void call_self(void)
{
    cr_assert_gt(gr_self(), 0);
}

static void call_hub_current(void)
{
    cr_assert_not_null(gr_hub_current());
}

static void call_sleep(void)
{
    cr_assert_eq(gr_sleep(0), 0);
}

static void call_local_set(void)
{
    int key = gr_local_key_create(NULL);

    cr_assert_eq(gr_local_set(key, &key), 0);
    cr_assert_eq(gr_local_key_delete(key), 0);
}

static void call_timeout_begin(void)
{
    gr_timeout t;

    cr_assert_eq(gr_timeout_begin(&t, -1), 0);
    cr_assert_eq(gr_timeout_end(&t), 0);
}

static void call_wait_fd(void)
{
    int sv[2];

    unix_pair(sv);
    cr_assert_eq(gr_wait_fd(sv[0], GR_WRITE, 0), GR_WRITE);
    close_pair(sv);
}

static void call_poll(void)
{
    cr_assert_eq(gr_poll(NULL, 0, 0), 0);
}

static void call_read(void)
{
    int sv[2];
    char c;

    unix_pair(sv);
    assert_fails(gr_read(sv[0], &c, 1, 0), ETIMEDOUT);
    close_pair(sv);
}

/* A hub-local sync wait that has to wait (here: once, with a deadline
 * already past) needs the hub; one that finds its outcome does not, and
 * neither do the thread-safe Event and AsyncResult (below). */
static void call_event_wait(void)
{
    gr_event e;

    gr_event_init(&e);
    assert_fails(gr_event_wait(&e, 0), ETIMEDOUT);
}

static void call_async_get(void)
{
    gr_async a;
    void *v;

    gr_async_init(&a);
    assert_fails(gr_async_get(&a, &v, 0), ETIMEDOUT);
}

static void call_sem_acquire(void)
{
    gr_sem s;

    gr_sem_init(&s, 0);
    assert_fails(gr_sem_acquire(&s, 0), ETIMEDOUT);
}

static void call_spawn_at_and_shield(void)
{
    cr_assert_eq(gr_join(gr_spawn_at(gr_now(), nothing, NULL, NULL), NULL, -1), 0);
    cr_assert_eq(gr_shield_begin(), 0);
    cr_assert_eq(gr_shield_end(), 0);
}

static void call_queue_new(void)
{
    gr_queue *q = gr_queue_new(GR_QUEUE_FIFO, 0, NULL);

    cr_assert_not_null(q);
    cr_assert_eq(gr_queue_free(q), 0);
}

static void call_lock_release(void)
{
    gr_lock l;

    gr_lock_init(&l);
    assert_fails(gr_lock_release(&l), EPERM);
}

static void *twice(void *arg)
{
    return (void *)((intptr_t)arg * 2);
}

static void call_thread_run(void)
{
    void *r;

    cr_assert_eq(gr_threadpool_run(twice, (void *)21, &r, NULL, -1), 0);
    cr_assert_eq((intptr_t)r, 42);
}

Test(hub_create, these_calls_create_one, .timeout = 30)
{
    static const probe probes[] = {
        {"gr_spawn", call_spawn, 1},
        {"gr_yield", call_yield, 1},
        {"gr_self", call_self, 1},
        {"gr_hub_current", call_hub_current, 1},
        {"gr_sleep", call_sleep, 1},
        {"gr_local_set", call_local_set, 1},
        {"gr_timeout_begin", call_timeout_begin, 1},
        {"gr_wait_fd", call_wait_fd, 1},
        {"gr_poll", call_poll, 1},
        {"gr_read", call_read, 1},
        {"gr_sem_acquire", call_sem_acquire, 1},
        {"gr_queue_new", call_queue_new, 1},
        {"gr_lock_release", call_lock_release, 1},
        {"gr_threadpool_run", call_thread_run, 1},
        {"gr_spawn_at, gr_shield_begin", call_spawn_at_and_shield, 1},
    };

    check(probes, sizeof probes / sizeof probes[0]);
}

/* -------------------------------------------------------- non-creators */

static void call_join_kill(void)
{
    assert_fails(gr_join(12345, NULL, 0), ESRCH);
    assert_fails(gr_kill(12345), ESRCH);
    cr_assert_eq(gr_testcancel(), 0);
}

static void call_time_and_stats(void)
{
    gr_stats st;

    cr_assert_gt(gr_now(), 0);
    cr_assert_gt(gr_now_update(), 0);
    cr_assert_eq(gr_stats_get(&st), 0);
    cr_assert_eq(st.threads, 0);
}

static void call_wakers(void)
{
    gr_event e;
    gr_sem s;
    gr_cond c;
    gr_async a;

    gr_event_init(&e);
    gr_event_set(&e);
    gr_event_clear(&e);
    cr_assert_not(gr_event_is_set(&e));
    gr_sem_init(&s, 0);
    cr_assert_eq(gr_sem_release(&s), 0);
    gr_cond_init(&c);
    gr_cond_signal(&c);
    gr_cond_broadcast(&c);
    gr_async_init(&a);
    cr_assert_eq(gr_async_set(&a, NULL), 0);
}

static void call_outcomes_already_there(void)
{
    gr_event e;
    gr_async a;
    gr_sem s;
    void *v;

    gr_event_init(&e);
    gr_event_set(&e);
    cr_assert_eq(gr_event_wait(&e, 0), 0);
    gr_async_init(&a);
    cr_assert_eq(gr_async_set(&a, &a), 0);
    cr_assert_eq(gr_async_get(&a, &v, 0), 0);
    gr_sem_init(&s, 1);
    cr_assert_eq(gr_sem_acquire(&s, 0), 0);
}

static void call_xchan(void)
{
    gr_xchan *c = gr_xchan_new(1);
    gr_xchan_stats st;
    void *v;

    cr_assert_not_null(c);
    assert_fails(gr_xchan_recv(c, &v, 0), ETIMEDOUT); /* would wait */
    cr_assert_eq(gr_xchan_send(c, c, 0), 0);
    assert_fails(gr_xchan_send(c, c, 0), ETIMEDOUT);
    cr_assert_eq(gr_xchan_recv_many(c, &v, 1, 0), 1);
    cr_assert_eq(gr_xchan_stats_get(c, &st), 0);
    gr_xchan_close(c);
    cr_assert_eq(gr_xchan_free(c), 0);
}

static void call_local_get(void)
{
    int key = gr_local_key_create(NULL);

    cr_assert_null(gr_local_get(key));
    cr_assert_eq(gr_local_key_delete(key), 0);
}

static void call_sockets(void)
{
    int l = gr_tcp_listen("127.0.0.1", 0, 0), u = gr_udp_bind("127.0.0.1", 0);

    cr_assert_geq(l, 0);
    cr_assert_geq(u, 0);
    cr_assert_gt(gr_local_port(l), 0);
    cr_assert_eq(gr_fd_forget(l), 0);
    cr_assert_eq(gr_close(l), 0);
    cr_assert_eq(gr_close(u), 0);
}

static void handle(int fd, const gr_addr *peer, void *arg)
{
    (void)fd, (void)peer, (void)arg;
}

static void call_server_new(void)
{
    gr_server *s = gr_server_new(gr_tcp_listen("127.0.0.1", 0, 0), handle, NULL, NULL);

    cr_assert_not_null(s);
    cr_assert_eq(gr_server_free(s), 0);
}

Test(hub_create, other_calls_do_not, .timeout = 30)
{
    static const probe probes[] = {
        {"gr_join, gr_kill, gr_testcancel", call_join_kill, 0},
        {"gr_now, gr_now_update, gr_stats_get", call_time_and_stats, 0},
        {"initialisers, setters and wakers", call_wakers, 0},
        {"the gr_xchan calls", call_xchan, 0},
        {"sync waits whose outcome is there", call_outcomes_already_there, 0},
        {"gr_event_wait (thread-safe: a plain thread blocks)", call_event_wait, 0},
        {"gr_async_get (thread-safe)", call_async_get, 0},
        {"gr_local_key_create, gr_local_get", call_local_get, 0},
        {"gr_tcp_listen, gr_udp_bind, gr_close", call_sockets, 0},
        {"gr_server_new, gr_server_free", call_server_new, 0},
    };

    check(probes, sizeof probes / sizeof probes[0]);
}

/* gr_configure's EBUSY lasts exactly as long as the hub: until gr_main
 * returns. */
static void *inside_main(void *arg)
{
    (void)arg;
    cr_assert(hub_exists());
    return NULL;
}

Test(hub_create, configure_works_again_after_gr_main, .timeout = 10)
{
    cr_assert_not(hub_exists());
    run_main(inside_main, NULL);
    cr_assert_not(hub_exists());
    cr_assert_eq(gr_configure(&(gr_config){.stack_size = 64 * 1024}), 0);
    run_main(inside_main, NULL);
}
