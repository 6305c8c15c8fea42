/* Seeing inside a running program: the blocking monitor, the run-info
 * dump (on demand, across hubs, on a signal) and stack high-water marks.
 * This binary exports its symbols (tests/CMakeLists.txt), so backtraces
 * name the functions below. */
#include "common.h"

#include <grove/debug.h>

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* Reports may come from the monitor's thread: kept under a lock. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static int nblocking, nother;
static char blocking_text[8192], blocking_name[GR_NAME_MAX + 1];

static void record(const gr_report *r, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&seen_lock);
    if (r->kind == GR_REPORT_BLOCKING) {
        nblocking++;
        snprintf(blocking_text, sizeof blocking_text, "%s", r->message);
        snprintf(blocking_name, sizeof blocking_name, "%s", r->thread_name);
    } else {
        nother++;
    }
    pthread_mutex_unlock(&seen_lock);
}

static int blocking_reports(void)
{
    int n;

    pthread_mutex_lock(&seen_lock);
    n = nblocking;
    pthread_mutex_unlock(&seen_lock);
    return n;
}

static void monitor_on(int ms, int sig)
{
    cr_assert_eq(gr_configure(&(gr_config){.max_blocking_ms = ms, .monitor_signal = sig}), 0);
    gr_report_hook_set(record, NULL);
}

static int64_t clock_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Computes without ever switching: what the monitor is for. Not static,
 * so the backtrace can name it. */
__attribute__((noinline)) void spin_for(int64_t ms)
{
    int64_t until = clock_ms() + ms;

    while (clock_ms() < until)
        __asm__ volatile("" ::: "memory");
}

static void *spinner(void *arg)
{
    spin_for((intptr_t)arg);
    return NULL;
}

static gr_t spawn_spinner(int64_t ms)
{
    return gr_spawn_opts(spinner, (void *)(intptr_t)ms, &(gr_opts){.name = "spinner"});
}

/* ==================================================== blocking monitor */

static void *stuck_once(void *arg)
{
    gr_stats st;

    (void)arg;
    gr_join(spawn_spinner(400), NULL, -1);
    WAIT_FOR(blocking_reports() >= 1);
    gr_sleep(gr_now_update() + 100); /* no second report for one episode */
    cr_assert_eq(blocking_reports(), 1);
    pthread_mutex_lock(&seen_lock);
    cr_assert_str_eq(blocking_name, "spinner");
    cr_assert_not_null(strstr(blocking_text, "blocking: hub 1 (OS thread "), "%s", blocking_text);
    cr_assert_not_null(strstr(blocking_text, "green thread \"spinner\""), "%s", blocking_text);
    cr_assert_not_null(strstr(blocking_text, "has been running all that time, at:\n  #0 "), "%s",
                       blocking_text);
    cr_assert_not_null(strstr(blocking_text, "spin_for+"), "%s", blocking_text);
    pthread_mutex_unlock(&seen_lock);
    gr_stats_get(&st);
    cr_assert_eq(st.blocking_reports, 1);
    return NULL;
}

Test(monitor, reports_a_stuck_thread_once_with_where_it_is, .timeout = 20)
{
    monitor_on(50, 0);
    run_main(stuck_once, NULL);
}

static void *two_episodes(void *arg)
{
    (void)arg;
    gr_join(spawn_spinner(200), NULL, -1);
    WAIT_FOR(blocking_reports() >= 1);
    gr_join(spawn_spinner(200), NULL, -1);
    WAIT_FOR(blocking_reports() >= 2);
    gr_sleep(gr_now_update() + 100);
    cr_assert_eq(blocking_reports(), 2);
    return NULL;
}

Test(monitor, each_episode_is_reported, .timeout = 20)
{
    monitor_on(50, 0);
    run_main(two_episodes, NULL);
}

static void *yielder(void *arg)
{
    int64_t until = gr_now_update() + 300;

    (void)arg;
    while (gr_now_update() < until)
        gr_yield();
    return NULL;
}

static void *busy_but_switching(void *arg)
{
    gr_t g[10];

    (void)arg;
    for (int i = 0; i < 10; i++)
        g[i] = gr_spawn(yielder, NULL);
    for (int i = 0; i < 10; i++)
        gr_join(g[i], NULL, -1);
    gr_sleep(gr_now_update() + 300); /* idle: the hub sleeps in epoll */
    cr_assert_eq(blocking_reports(), 0);
    return NULL;
}

Test(monitor, threads_that_switch_and_idle_hubs_are_not_reported, .timeout = 20)
{
    monitor_on(50, 0);
    run_main(busy_but_switching, NULL);
    /* A root context computing with no green thread behind it starves
     * nobody. */
    gr_hub_current();
    spin_for(200);
    cr_assert_eq(blocking_reports(), 0);
}

static void *stuck_without_signal(void *arg)
{
    (void)arg;
    gr_join(spawn_spinner(300), NULL, -1);
    WAIT_FOR(blocking_reports() >= 1);
    pthread_mutex_lock(&seen_lock);
    cr_assert_not_null(strstr(blocking_text, "green thread \"spinner\""), "%s", blocking_text);
    cr_assert_not_null(strstr(blocking_text, "(no backtrace: gr_config.monitor_signal is -1)"),
                       "%s", blocking_text);
    pthread_mutex_unlock(&seen_lock);
    return NULL;
}

Test(monitor, without_a_signal_reports_the_thread_only, .timeout = 20)
{
    monitor_on(50, -1);
    run_main(stuck_without_signal, NULL);
}

static void *blocks_the_signal_and_spins(void *arg)
{
    sigset_t s;

    (void)arg;
    sigemptyset(&s);
    sigaddset(&s, SIGRTMAX - 3);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    spin_for(400);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL); /* the late signal is ignored */
    return NULL;
}

static void *stuck_deaf(void *arg)
{
    (void)arg;
    gr_join(gr_spawn_opts(blocks_the_signal_and_spins, NULL, &(gr_opts){.name = "deaf"}), NULL, -1);
    WAIT_FOR(blocking_reports() >= 1);
    pthread_mutex_lock(&seen_lock);
    cr_assert_not_null(strstr(blocking_text, "its thread did not answer signal"), "%s",
                       blocking_text);
    pthread_mutex_unlock(&seen_lock);
    return NULL;
}

Test(monitor, a_thread_that_blocks_the_signal_is_still_reported, .timeout = 20)
{
    monitor_on(50, 0);
    run_main(stuck_deaf, NULL);
}

static void *stuck_by_environment(void *arg)
{
    (void)arg;
    gr_join(spawn_spinner(300), NULL, -1);
    WAIT_FOR(blocking_reports() >= 1);
    return NULL;
}

Test(monitor, grove_max_blocking_ms_turns_it_on, .timeout = 20)
{
    setenv("GROVE_MAX_BLOCKING_MS", "50", 1);
    gr_report_hook_set(record, NULL);
    run_main(stuck_by_environment, NULL);
}

static void *not_stuck_by_environment(void *arg)
{
    (void)arg;
    gr_join(spawn_spinner(200), NULL, -1);
    gr_sleep(gr_now_update() + 100);
    cr_assert_eq(blocking_reports(), 0);
    return NULL;
}

Test(monitor, a_bad_environment_value_is_reported_and_ignored, .timeout = 20)
{
    setenv("GROVE_MAX_BLOCKING_MS", "fifty", 1);
    gr_report_hook_set(record, NULL);
    run_main(not_stuck_by_environment, NULL);
    cr_assert_eq(nother, 1, "the bad value was reported");
    /* -1 in the configuration wins over the environment. */
    setenv("GROVE_MAX_BLOCKING_MS", "50", 1);
    nother = 0;
    cr_assert_eq(gr_configure(&(gr_config){.max_blocking_ms = -1}), 0);
    run_main(not_stuck_by_environment, NULL);
    cr_assert_eq(nother, 0);
}

Test(monitor, configuration_errors, .timeout = 10)
{
    assert_fails(gr_configure(&(gr_config){.max_blocking_ms = -2}), EINVAL);
    assert_fails(gr_configure(&(gr_config){.monitor_signal = SIGUSR1}), EINVAL);
    assert_fails(gr_configure(&(gr_config){.monitor_signal = -2}), EINVAL);
    assert_fails(gr_configure(&(gr_config){.monitor_signal = SIGRTMAX + 1}), EINVAL);
    cr_assert_eq(gr_configure(&(gr_config){.monitor_signal = SIGRTMIN}), 0);
}

/* ===================================================== run-info dump */

static char *dump_text(int64_t deadline)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    cr_assert_not_null(f);
    cr_assert_eq(gr_dump(f, deadline), 0, "gr_dump: %s", strerror(errno));
    fclose(f);
    return text;
}

static void *sleeps(void *arg)
{
    gr_sleep(gr_now_update() + (intptr_t)arg);
    return NULL;
}

static void *reads_pipe(void *arg)
{
    char c;

    return (void *)(intptr_t)gr_read((int)(intptr_t)arg, &c, 1, -1);
}

static void *returns(void *arg)
{
    return arg;
}

/* Uses about 48 KiB of stack, then blocks. */
static __attribute__((noinline)) void *goes_deep(void *arg)
{
    volatile char big[48 * 1024];

    for (size_t i = 0; i < sizeof big; i += 512)
        big[i] = (char)i;
    gr_sleep(gr_now_update() + (intptr_t)arg);
    return (void *)(intptr_t)big[512];
}

static void *dumps_own_hub(void *arg)
{
    int p[2];
    char *text;
    gr_t killed;

    (void)arg;
    cr_assert_eq(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    gr_spawn_opts(sleeps, (void *)5000, &(gr_opts){.name = "sleeper"});
    gr_spawn_opts(reads_pipe, (void *)(intptr_t)p[0], &(gr_opts){.name = "reader"});
    gr_spawn_opts(goes_deep, (void *)5000, &(gr_opts){.name = "deep"});
    gr_spawn_opts(returns, NULL, &(gr_opts){.name = "done"});
    killed = gr_spawn_opts(sleeps, (void *)5000, &(gr_opts){.name = "killed"});
    gr_yield();
    gr_kill(killed);
    gr_spawn_opts(returns, NULL, &(gr_opts){.name = "fresh"});
    gr_spawn_at(gr_now_update() + 3000, returns, NULL, &(gr_opts){.name = "later"});
    text = dump_text(gr_now_update() + 1000);
    cr_assert_not_null(strstr(text, "grove run info: 1 hub(s)\nhub 1 (OS thread "), "%s", text);
    cr_assert_not_null(strstr(text, "  root (handle "), "%s", text);
    cr_assert_not_null(
        strstr(text, ", the thread's own stack): blocked on join with no deadline\n"), "%s", text);
    cr_assert_not_null(strstr(text, "): running; stack "), "%s", text);
    cr_assert_not_null(strstr(text, "  sleeper (handle "), "%s", text);
    cr_assert_not_null(strstr(text, "): blocked on sleep until "), "%s", text);
    cr_assert_not_null(strstr(text, "  reader (handle "), "%s", text);
    cr_assert_not_null(strstr(text, "): blocked on fd with no deadline; stack "), "%s", text);
    cr_assert_not_null(strstr(text, "  done (handle "), "%s", text);
    cr_assert_not_null(strstr(text, "): finished\n"), "%s", text);
    cr_assert_not_null(strstr(text, "): ready, killed; stack "), "%s", text);
    cr_assert_not_null(strstr(text, "  fresh (handle "), "%s", text);
    cr_assert_not_null(strstr(text, "): waiting to start at "), "%s", text);
    /* The deep one has used at least its 48 KiB; the shallow ones less. */
    {
        const char *d = strstr(text, "  deep (handle ");
        const char *s = strstr(text, "  sleeper (handle ");
        size_t deep_used, sleeper_used;

        cr_assert(d && s);
        cr_assert_eq(sscanf(strstr(d, "; stack ") + 8, "%zu", &deep_used), 1);
        cr_assert_eq(sscanf(strstr(s, "; stack ") + 8, "%zu", &sleeper_used), 1);
        cr_assert_geq(deep_used, 48 * 1024, "%s", text);
        cr_assert_lt(sleeper_used, deep_used, "%s", text);
    }
    free(text);
    assert_fails(gr_dump(NULL, 0), EINVAL);
    assert_fails(gr_dump_fd(-1, 0), EBADF);
    gr_close(p[0]);
    gr_close(p[1]);
    _exit(0); /* leave the threads blocked */
}

Test(dump, lists_every_thread_with_its_state_and_stack, .timeout = 10)
{
    run_main(dumps_own_hub, NULL);
}

/* Another hub, on its own OS thread, answers for its threads. */
static gr_event b_ready, b_stop;

static void *b_main(void *arg)
{
    (void)arg;
    gr_spawn_opts(sleeps, (void *)5000, &(gr_opts){.name = "b-sleeper", .flags = GR_DETACHED});
    gr_event_set(&b_ready);
    gr_event_wait(&b_stop, -1);
    return NULL;
}

static void *b_thread(void *arg)
{
    (void)arg;
    gr_main(b_main, NULL, NULL);
    return NULL;
}

static void *plain_dumper(void *arg)
{
    int *p = arg;

    return (void *)(intptr_t)gr_dump_fd(p[1], gr_now() + 2000);
}

static void *dumps_two_hubs(void *arg)
{
    pthread_t b, plain;
    int p[2];
    char *text, buf[8192];
    ssize_t n;
    size_t len = 0;
    void *rc;

    (void)arg;
    gr_event_init(&b_ready);
    gr_event_init(&b_stop);
    cr_assert_eq(pthread_create(&b, NULL, b_thread, NULL), 0);
    cr_assert_eq(gr_event_wait(&b_ready, gr_now_update() + 5000), 0);
    gr_spawn_opts(sleeps, (void *)5000, &(gr_opts){.name = "a-sleeper"});
    text = dump_text(gr_now_update() + 2000);
    cr_assert_not_null(strstr(text, "grove run info: 2 hub(s)\nhub 1 "), "%s", text);
    cr_assert_not_null(strstr(text, "a-sleeper"), "%s", text);
    cr_assert_not_null(strstr(text, "\nhub 2 (OS thread "), "%s", text);
    cr_assert_not_null(strstr(text, "b-sleeper"), "%s", text);
    free(text);
    /* A plain OS thread, with no hub, dumps both. */
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    gr_fd_nonblock(p[0]);
    cr_assert_eq(pthread_create(&plain, NULL, plain_dumper, p), 0);
    while ((n = gr_read(p[0], buf + len, sizeof buf - 1 - len, gr_now_update() + 5000)) > 0) {
        len += (size_t)n;
        buf[len] = '\0';
        if (strstr(buf, "b-sleeper") && strstr(buf, "a-sleeper"))
            break;
    }
    pthread_join(plain, &rc);
    cr_assert_eq((intptr_t)rc, 0);
    cr_assert_not_null(strstr(buf, "grove run info: 2 hub(s)"), "%s", buf);
    gr_event_set(&b_stop);
    pthread_join(b, NULL);
    close(p[0]);
    close(p[1]);
    _exit(0);
}

Test(dump, every_hub_answers_for_its_own_threads, .timeout = 20)
{
    run_main(dumps_two_hubs, NULL);
}

/* A hub busy computing cannot answer; one that exits is answered for. */
static atomic_int c_state;

static void *busy_hub_thread(void *arg)
{
    (void)arg;
    gr_hub_current();
    atomic_store(&c_state, 1);
    spin_for(300);
    return NULL; /* the hub goes with the thread, its question unanswered */
}

static void *dumps_busy_hub(void *arg)
{
    pthread_t c;
    char *text;
    int64_t t0;

    (void)arg;
    cr_assert_eq(pthread_create(&c, NULL, busy_hub_thread, NULL), 0);
    WAIT_FOR(atomic_load(&c_state) == 1);
    t0 = gr_now_update();
    text = dump_text(t0 + 50);
    cr_assert_not_null(strstr(text, "hub 2: no answer by the deadline"), "%s", text);
    cr_assert_lt(gr_now_update(), t0 + 250);
    free(text);
    /* Asked again, it exits before it answers: answered for at once. */
    text = dump_text(gr_now_update() + 5000);
    cr_assert_not_null(strstr(text, "hub 2: exited"), "%s", text);
    free(text);
    pthread_join(c, NULL);
    text = dump_text(gr_now_update() + 5000);
    cr_assert_not_null(strstr(text, "grove run info: 1 hub(s)"), "%s", text);
    free(text);
    return NULL;
}

Test(dump, a_busy_hub_is_listed_as_not_answering, .timeout = 20)
{
    run_main(dumps_busy_hub, NULL);
}

/* ---------------------------------------------------------- on a signal */

static void *dumps_on_signal(void *arg)
{
    char buf[8192];
    size_t len = 0;
    ssize_t n;
    int p[2];

    (void)arg;
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    gr_fd_nonblock(p[0]);
    signal(SIGUSR2, SIG_IGN);
    cr_assert_eq(gr_dump_on_signal(SIGUSR2, p[1]), 0);
    gr_spawn_opts(sleeps, (void *)5000, &(gr_opts){.name = "napper", .flags = GR_DETACHED});
    gr_yield();
    raise(SIGUSR2);
    while (!strstr(buf, "napper")) {
        n = gr_read(p[0], buf + len, sizeof buf - 1 - len, gr_now_update() + 5000);
        cr_assert_gt(n, 0, "read: %s", strerror(errno));
        len += (size_t)n;
        buf[len] = '\0';
    }
    cr_assert_not_null(strstr(buf, "grove run info: 1 hub(s)"), "%s", buf);
    /* Off: the previous action (ignore) is back. */
    cr_assert_eq(gr_dump_on_signal(0, -1), 0);
    raise(SIGUSR2);
    assert_fails(gr_read(p[0], buf, sizeof buf, gr_now_update() + 100), ETIMEDOUT);
    assert_fails(gr_dump_on_signal(SIGKILL, p[1]), EINVAL);
    assert_fails(gr_dump_on_signal(SIGSEGV, p[1]), EINVAL);
    assert_fails(gr_dump_on_signal(-1, p[1]), EINVAL);
    assert_fails(gr_dump_on_signal(SIGUSR2, -1), EINVAL);
    gr_close(p[0]);
    close(p[1]);
    _exit(0);
}

Test(dump, on_a_signal_the_program_chooses, .timeout = 20)
{
    run_main(dumps_on_signal, NULL);
}
