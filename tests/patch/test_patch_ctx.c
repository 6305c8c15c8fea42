/* libgrove-patch: where a patched call is cooperative and where it is the
 * real call (main before gr_main, the root context, a hub callback, a
 * thread-pool worker, a plain thread), the family switches (gr_patch_set,
 * GROVE_PATCH) and the originals (gr_patch_original). */
#include "patch_common.h"

#include <dlfcn.h>
#include <pthread.h>

static volatile int ticks, ticking;

static void *ticker(void *arg)
{
    (void)arg;
    while (ticking) {
        ticks++;
        if (gr_sleep(gr_now_update() + 1) != 0)
            break;
    }
    return NULL;
}

static void pair(int sv[2])
{
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

typedef struct later {
    int fd;
    int ms;
} later;

static void *pthread_writer(void *arg)
{
    later *l = arg;

    usleep((useconds_t)l->ms * 1000);
    cr_assert_eq(write(l->fd, "x", 1), 1);
    return NULL;
}

/* A blocking read made here takes the whole of the ms the writer waits:
 * the real call. */
static void expect_real_read(int ms)
{
    int sv[2];
    char c;
    later l;
    pthread_t t;
    int64_t t0 = now_ms();

    pair(sv);
    l = (later){sv[1], ms};
    cr_assert_eq(pthread_create(&t, NULL, pthread_writer, &l), 0);
    cr_assert_eq(read(sv[0], &c, 1), 1);
    cr_assert_geq(now_ms() - t0, ms);
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
}

/* ------------------------------------------------------------- contexts */

Test(patch_ctx, before_gr_main_calls_are_the_real_ones, .timeout = 10)
{
    char c;

    require_patch();
    cr_assert(!gr_patch_cooperative());
    expect_real_read(40);
    assert_fails(read(-1, &c, 1), EBADF);
    assert_fails(close(-1), EBADF);
}

Test(patch_ctx, the_root_context_blocks_as_the_real_call, .timeout = 10)
{
    gr_t t;
    int64_t t0;

    require_patch();
    ticks = 0;
    ticking = 1;
    t = gr_spawn(ticker, NULL); /* the hub exists now; main is its root */
    cr_assert(!gr_patch_cooperative());
    t0 = now_ms();
    cr_assert_eq(usleep(30000), 0);
    cr_assert_geq(now_ms() - t0, 30);
    cr_assert_eq(ticks, 0, "the root's usleep let green threads run");
    ticking = 0;
    gr_join(t, NULL, -1);
}

typedef struct cb_rec {
    int coop;
    int rc;
    int64_t took;
} cb_rec;

static void hub_callback(void *arg)
{
    cb_rec *r = arg;
    int64_t t0 = now_ms();

    r->coop = gr_patch_cooperative();
    r->rc = usleep(30000);
    r->took = now_ms() - t0;
}

static void *hub_side(void *arg)
{
    cb_rec r = {-1, -1, 0};

    (void)arg;
    cr_assert(gr_patch_cooperative());
    cr_assert_eq(gr_hub_post(gr_hub_current(), hub_callback, &r), 0);
    gr_sleep(gr_now_update() + 60);
    cr_assert_eq(r.coop, 0, "a hub callback is not a green thread");
    cr_assert_eq(r.rc, 0);
    cr_assert_geq(r.took, 30, "the callback's usleep was the real one");
    return NULL;
}

Test(patch_ctx, on_the_hubs_own_stack_calls_are_the_real_ones, .timeout = 10)
{
    require_patch();
    run_main(hub_side, NULL);
}

static void *pool_job(void *arg)
{
    int *out = arg, sv[2];
    struct timeval tv = {0, 50000};
    char c;
    int64_t t0 = now_ms();

    out[0] = gr_patch_cooperative();
    pair(sv);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    errno = 0;
    out[1] = (int)read(sv[0], &c, 1);
    out[2] = errno;
    out[3] = (int)(now_ms() - t0);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

static void *pool_side(void *arg)
{
    int out[4] = {-1, 0, 0, 0};
    heartbeat hb;

    (void)arg;
    hb_start(&hb);
    cr_assert_eq(gr_threadpool_run(pool_job, out, NULL, NULL, -1), 0);
    hb_check(&hb);
    cr_assert_eq(out[0], 0, "a pool worker is not a green thread");
    cr_assert_eq(out[1], -1);
    cr_assert_eq(out[2], EAGAIN);
    cr_assert_geq(out[3], 50);
    return NULL;
}

Test(patch_ctx, a_thread_pool_worker_makes_the_real_calls, .timeout = 10)
{
    require_patch();
    run_main(pool_side, NULL);
}

static void *plain_thread(void *arg)
{
    int *coop = arg;

    *coop = gr_patch_cooperative();
    expect_real_read(30);
    return NULL;
}

static void *threads_side(void *arg)
{
    pthread_t t;
    int coop = -1;
    heartbeat hb;

    (void)arg;
    hb_start(&hb);
    cr_assert_eq(pthread_create(&t, NULL, plain_thread, &coop), 0);
    gr_sleep(gr_now_update() + 60);
    pthread_join(t, NULL);
    hb_check(&hb);
    cr_assert_eq(coop, 0);
    return NULL;
}

Test(patch_ctx, a_plain_thread_makes_the_real_calls, .timeout = 10)
{
    require_patch();
    run_main(threads_side, NULL);
}

/* ------------------------------------------------------------- families */

static void *dns_only(void *arg)
{
    struct addrinfo *res = NULL;
    gr_t t;
    int64_t t0 = now_ms();

    (void)arg;
    ticks = 0;
    ticking = 1;
    t = gr_spawn(ticker, NULL);
    gr_yield();
    cr_assert_eq(usleep(30000), 0);
    cr_assert_geq(now_ms() - t0, 30);
    cr_assert_leq(ticks, 1, "usleep was cooperative with the time family off");
    cr_assert_eq(gr_patch_set(GR_PATCH_ALL), 0, "no call was cooperative yet");
    cr_assert_eq(gr_patch_set(GR_PATCH_DNS), 0);
    cr_assert_eq(getaddrinfo("localhost", "80", NULL, &res), 0);
    freeaddrinfo(res);
    assert_fails(gr_patch_set(GR_PATCH_ALL), EBUSY);
    cr_assert_eq(gr_patch_families(), GR_PATCH_DNS);
    ticking = 0;
    gr_join(t, NULL, -1);
    return NULL;
}

Test(patch_ctx, a_family_switched_off_is_the_real_call_in_green_threads, .timeout = 10)
{
    require_patch();
    cr_assert_eq(gr_patch_families(), GR_PATCH_ALL, "GROVE_PATCH unset: all");
    cr_assert_eq(gr_patch_set(GR_PATCH_DNS), 0);
    run_main(dns_only, NULL);
}

Test(patch_ctx, family_lists_parse_as_grove_patch_does, .timeout = 10)
{
    unsigned f = 99;

    require_patch();
    cr_assert_eq(gr_patch_parse("all", &f), 0);
    cr_assert_eq(f, GR_PATCH_ALL);
    cr_assert_eq(gr_patch_parse("all,-dns", &f), 0);
    cr_assert_eq(f, GR_PATCH_ALL & ~GR_PATCH_DNS);
    cr_assert_eq(gr_patch_parse(" socket , time ", &f), 0);
    cr_assert_eq(f, GR_PATCH_SOCKET | GR_PATCH_TIME);
    cr_assert_eq(gr_patch_parse("none", &f), 0);
    cr_assert_eq(f, 0);
    cr_assert_eq(gr_patch_parse("select,none,dns", &f), 0);
    cr_assert_eq(f, GR_PATCH_DNS);
    f = 7;
    assert_fails(gr_patch_parse("socket,sokcet", &f), EINVAL);
    cr_assert_eq(f, 7, "untouched on error");
    assert_fails(gr_patch_parse(NULL, &f), EINVAL);
    assert_fails(gr_patch_set(0x100), EINVAL);
}

/* Run by CTest with GROVE_PATCH set and the families it should give in
 * GROVE_PATCH_EXPECT (a number). */
Test(patch_ctx, grove_patch_sets_the_families, .timeout = 10)
{
    const char *expect = getenv("GROVE_PATCH_EXPECT");

    require_patch();
    if (!expect)
        cr_skip_test("run with GROVE_PATCH and GROVE_PATCH_EXPECT (the patch_env test)");
    cr_assert_eq(gr_patch_families(), (unsigned)strtoul(expect, NULL, 0),
                 "GROVE_PATCH=%s gave 0x%x", getenv("GROVE_PATCH"), gr_patch_families());
}

/* ------------------------------------------------------------ originals */

static void *original_blocks(void *arg)
{
    ssize_t (*real_read)(int, void *, size_t) =
        (ssize_t(*)(int, void *, size_t))gr_patch_original("read");
    struct timeval tv = {0, 40000};
    int sv[2];
    char c;
    gr_t t;

    (void)arg;
    pair(sv);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ticks = 0;
    ticking = 1;
    t = gr_spawn(ticker, NULL);
    gr_yield();
    assert_fails(real_read(sv[0], &c, 1), EAGAIN);
    cr_assert_leq(ticks, 1, "the original read let the hub run");
    ticking = 0;
    gr_join(t, NULL, -1);
    close(sv[0]);
    close(sv[1]);
    return NULL;
}

Test(patch_ctx, the_originals_stay_callable, .timeout = 10)
{
    Dl_info info;
    void *p;

    require_patch();
    p = gr_patch_original("read");
    cr_assert_not_null(p);
    cr_assert(dladdr(p, &info) && strstr(info.dli_fname, "libc.so"), "read's original is in %s",
              info.dli_fname);
    cr_assert_not_null(gr_patch_original("__read_chk"));
    cr_assert_not_null(gr_patch_original("getaddrinfo"));
    cr_assert_neq(gr_patch_original("poll"), (void *)poll);
    errno = 0;
    cr_assert_null(gr_patch_original("not_a_call"));
    cr_assert_eq(errno, ENOENT);
    cr_assert_null(gr_patch_original(NULL));
    cr_assert_eq(errno, EINVAL);
    run_main(original_blocks, NULL);
}
