/* Allocation failures of the waiting, pool, dump and console calls, made
 * to happen with the fault-injection hooks (src/arch/fail.h): each call
 * fails with ENOMEM, leaves things as they were, and works again. */
#include "common.h"

#include "arch/fail.h"

#include <grove/debug.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

/* Fail the allocation after skip more of grove's (src/arch/fail.h). */
static void fail_after(int skip)
{
    gr__fail_arm(GR__FAIL_ALLOC, skip + 1, 0);
}

static void *returns_arg(void *arg)
{
    return arg;
}

static void *sleeps(void *arg)
{
    gr_sleep(gr_now_update() + (intptr_t)arg);
    return arg;
}

/* ---------------------------------------------------------- waiting */

static void *waits_without_memory(void *arg)
{
    gr_waitable it[9];
    gr_t t[2];
    int joined[2] = {7, 7};
    gr_iwait iw;
    gr_event e;

    (void)arg;
    gr_event_init(&e);
    for (int i = 0; i < 9; i++)
        it[i] = (gr_waitable){.kind = GR_WAIT_EVENT, .obj = &e};
    fail_after(0);
    assert_fails(gr_wait_any(it, 9, gr_now_update() + 10), ENOMEM);
    assert_fails(gr_wait_any(it, 9, gr_now_update() + 10), ETIMEDOUT);
    cr_assert_eq(gr_iwait_init(&iw, it, 9), 0);
    fail_after(0);
    assert_fails(gr_iwait_next(&iw, gr_now_update() + 10), ENOMEM);
    gr_event_set(&e);
    cr_assert_eq(gr_iwait_next(&iw, 0), 0, "the iteration goes on");

    /* joinall: the duplicate check, then the items; nothing is joined. */
    t[0] = gr_spawn(returns_arg, (void *)1);
    t[1] = gr_spawn(returns_arg, (void *)2);
    gr_yield();
    for (int k = 0; k < 2; k++) {
        fail_after(k);
        assert_fails(gr_joinall(t, 2, NULL, joined, -1), ENOMEM);
        cr_assert_eq(joined[0], 7, "joined untouched");
    }
    /* killall: nothing is killed without the memory to wait. */
    t[0] = gr_spawn(sleeps, (void *)20);
    fail_after(0);
    assert_fails(gr_killall(&t[0], 1, -1), ENOMEM);
    cr_assert_eq(gr_join(t[0], &arg, -1), 0);
    cr_assert_eq((intptr_t)arg, 20, "it was not killed");
    cr_assert_eq(gr_joinall(&t[1], 1, NULL, NULL, -1), 0);
    return NULL;
}

Test(nomem, waiting_calls_fail_cleanly, .timeout = 10)
{
    run_main(waits_without_memory, NULL);
    gr__fail_disarm();
    cr_assert_not(leaks_found());
}

/* ------------------------------------------------------------- pools */

static void *pools_without_memory(void *arg)
{
    gr_group *pool = gr_group_new(1);
    void *args[2] = {(void *)1, (void *)2}, *res[2], *r;
    gr_imap *m;
    gr_async a;
    size_t i;

    (void)arg;
    gr_async_init(&a);
    /* apply_async: its record, then the member's. */
    for (int k = 0; k < 2; k++) {
        fail_after(k);
        assert_fails(gr_group_apply_async(pool, returns_arg, NULL, &a, NULL, -1), ENOMEM);
        cr_assert_not(gr_async_ready(&a));
        cr_assert_eq(gr_group_free_count(pool), 1, "no slot was kept");
    }
    /* imap: each of its four allocations. */
    for (int k = 0; k < 4; k++) {
        fail_after(k);
        errno = 0;
        cr_assert_null(gr_group_imap_unordered(pool, returns_arg, args, 2));
        cr_assert_eq(errno, ENOMEM);
    }
    gr__fail_disarm();
    /* Starting a member fails: the call may be repeated. */
    cr_assert_not_null(m = gr_group_imap_unordered(pool, returns_arg, args, 2));
    fail_after(0);
    assert_fails(gr_imap_next(m, &i, &r, gr_now_update() + 1000), ENOMEM);
    cr_assert_eq(gr_imap_next(m, &i, &r, gr_now_update() + 1000), 0);
    cr_assert_eq(gr_imap_next(m, &i, &r, gr_now_update() + 1000), 0);
    cr_assert_eq(gr_imap_free(m), 0);
    fail_after(0);
    assert_fails(gr_group_map(pool, returns_arg, args, res, 2, -1), ENOMEM);
    cr_assert_eq(gr_group_size(pool), 0);
    cr_assert_eq(gr_group_free(pool), 0);
    return NULL;
}

Test(nomem, pool_calls_fail_cleanly, .timeout = 10)
{
    run_main(pools_without_memory, NULL);
    gr__fail_disarm();
    cr_assert_not(leaks_found());
}

/* ---------------------------------------------------- dump, console */

static void *debug_without_memory(void *arg)
{
    char path[64];
    struct stat st;
    FILE *f = fopen("/dev/null", "w");

    (void)arg;
    fail_after(0);
    assert_fails(gr_dump(f, gr_now_update() + 1000), ENOMEM);
    cr_assert_eq(gr_dump(f, gr_now_update() + 1000), 0);
    fclose(f);
    snprintf(path, sizeof path, "/tmp/grove-nomem-%d.sock", (int)getpid());
    unlink(path);
    fail_after(0);
    errno = 0;
    cr_assert_null(gr_console_start(path));
    cr_assert_eq(errno, ENOMEM);
    assert_fails(stat(path, &st), ENOENT);
    return NULL;
}

Test(nomem, dump_and_console_fail_cleanly, .timeout = 10)
{
    run_main(debug_without_memory, NULL);
    gr__fail_disarm();
    cr_assert_not(leaks_found());
}

/* -------------------------------------------------- system resources */

static void *debug_without_resources(void *arg)
{
    char path[64];
    struct stat st;

    (void)arg;
    snprintf(path, sizeof path, "/tmp/grove-nofd-%d.sock", (int)getpid());
    unlink(path);
    gr__fail_arm(GR__FAIL_SOCKET, 1, 0);
    errno = 0;
    cr_assert_null(gr_console_start(path));
    cr_assert_eq(errno, EMFILE);
    assert_fails(stat(path, &st), ENOENT);
    /* The dump's monitor thread: its eventfd, then the thread itself. */
    signal(SIGUSR2, SIG_IGN);
    gr__fail_arm(GR__FAIL_EVENTFD, 1, 0);
    assert_fails(gr_dump_on_signal(SIGUSR2, 2), EMFILE);
    gr__fail_arm(GR__FAIL_THREAD, 1, 0);
    assert_fails(gr_dump_on_signal(SIGUSR2, 2), EAGAIN);
    gr__fail_disarm();
    raise(SIGUSR2); /* still ignored: nothing was installed */
    cr_assert_eq(gr_dump_on_signal(SIGUSR2, 2), 0);
    cr_assert_eq(gr_dump_on_signal(0, -1), 0);
    return NULL;
}

Test(nomem, console_and_signal_dumps_without_fds_or_threads, .timeout = 10)
{
    run_main(debug_without_resources, NULL);
}

static int reports;
static char report_text[512];

static void record(const gr_report *r, void *arg)
{
    (void)arg;
    reports++;
    snprintf(report_text, sizeof report_text, "%s", r->message);
}

static void *nothing(void *arg)
{
    return arg;
}

Test(nomem, a_monitor_that_cannot_start_is_reported, .timeout = 10)
{
    gr_report_hook_set(record, NULL);
    cr_assert_eq(gr_configure(&(gr_config){.max_blocking_ms = 50}), 0);
    gr__fail_arm(GR__FAIL_THREAD, 1, 0);
    run_main(nothing, NULL); /* the hub is made all the same */
    gr__fail_disarm();
    cr_assert_eq(reports, 1);
    cr_assert_not_null(strstr(report_text, "the blocking monitor could not start"), "%s",
                       report_text);
}
