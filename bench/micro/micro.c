/* grove-micro: the core's micro-benchmarks.
 *
 *   grove-micro [--json] [--runs N] [--million]
 *
 * Each figure is the median of N runs (default 5). ucontext_switch_ns is
 * the baseline measured in the same run: swapcontext between two contexts;
 * boost_jump_ns, when Boost.Context is installed, the peer switch with no
 * scheduler around it.
 * http_request_stack_bytes: the deepest a connection thread's stack went
 * serving one GET from a loopback client, as the HTTP server's stats
 * report it (gr_server_stats.stack_hwm).
 * --million also spawns 1,000,000 idle green threads and reports their
 * memory (needs about 5 GB of RAM and, on kernels before 6.13, a raised
 * vm.max_map_count; see docs/design.md). */
#define _GNU_SOURCE
#include "../bench.h"
#include "arch/ctx.h"   /* gr__ctx_impl: which switch was built */
#include "core/timer.h" /* the heap, measured alone */

#include <grove.h>
#include <grove/http.h>
#include <ucontext.h>

/* ------------------------------------------------------------ switching */

enum { YIELDS = 2000000 };

static void *yield_loop(void *arg)
{
    (void)arg;
    for (int i = 0; i < YIELDS; i++)
        gr_yield();
    return NULL;
}

static void *bench_switch(void *out)
{
    gr_t a = gr_spawn(yield_loop, NULL), b = gr_spawn(yield_loop, NULL);
    double t0;

    gr_yield(); /* both started, so the loop below times steady state */
    t0 = bench_now_ns();
    gr_join(a, NULL, -1);
    gr_join(b, NULL, -1);
    *(double *)out = (bench_now_ns() - t0) / (2.0 * YIELDS);
    return NULL;
}

/* ------------------------------------------------------- spawn + join */

enum { SPAWNS = 1000000 };

static void *nothing(void *arg)
{
    return arg;
}

static void *bench_spawn_join(void *out)
{
    double t0;

    gr_join(gr_spawn(nothing, NULL), NULL, -1); /* warm the stack pool */
    t0 = bench_now_ns();
    for (int i = 0; i < SPAWNS; i++)
        gr_join(gr_spawn(nothing, NULL), NULL, -1);
    *(double *)out = (bench_now_ns() - t0) / SPAWNS;
    return NULL;
}

/* ------------------------------------------------------ idle memory */

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t len = strlen(field);
    long kb = -1;

    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, field, len) && line[len] == ':')
            kb = atol(line + len + 1);
    if (f)
        fclose(f);
    return kb;
}

static void *sleep_forever(void *arg)
{
    (void)arg;
    gr_sleep(-1);
    return NULL;
}

typedef struct idle {
    int n;
    double rss_bytes, pte_bytes, spawn_ns;
    int ok;
} idle;

static void *bench_idle(void *arg)
{
    idle *r = arg;
    gr_t *g = malloc((size_t)r->n * sizeof *g);
    long rss0, pte0;
    double t0;

    rss0 = status_kb("VmRSS");
    pte0 = status_kb("VmPTE");
    t0 = bench_now_ns();
    r->ok = 1;
    for (int i = 0; i < r->n && r->ok; i++)
        if ((g[i] = gr_spawn(sleep_forever, NULL)) < 0)
            r->ok = 0;
    gr_yield(); /* every one runs and blocks in gr_sleep */
    r->spawn_ns = (bench_now_ns() - t0) / r->n;
    r->rss_bytes = (double)(status_kb("VmRSS") - rss0) * 1024 / r->n;
    r->pte_bytes = (double)(status_kb("VmPTE") - pte0) * 1024 / r->n;
    for (int i = 0; i < r->n; i++)
        if (g[i] > 0)
            gr_kill(g[i]);
    for (int i = 0; i < r->n; i++)
        if (g[i] > 0)
            gr_join(g[i], NULL, -1);
    free(g);
    return NULL;
}

/* ------------------------------------------------------------ timers */

enum { TIMERS = 100000, FIRES = 1000000 };

/* The heap alone: 100,000 armed timers; each round fires the earliest
 * (pops it) and arms it again at a later random deadline, as a hub with
 * 100,000 sleeping threads does when one wakes and sleeps again. */
static double bench_timer(void)
{
    gr__timer_heap heap = {0};
    gr__timer *t = calloc(TIMERS, sizeof *t);
    uint64_t x = 88172645463325252ULL;
    int64_t horizon = 0;
    double t0, ns;

    for (int i = 0; i < TIMERS; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        gr__timer_arm(&heap, &t[i], (int64_t)(x % 1000000));
    }
    t0 = bench_now_ns();
    for (int i = 0; i < FIRES; i++) {
        gr__timer *min = gr__timer_min(&heap);

        gr__timer_disarm(&heap, min);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        horizon = min->when;
        gr__timer_arm(&heap, min, horizon + (int64_t)(x % 1000000));
    }
    ns = (bench_now_ns() - t0) / FIRES;
    gr__timer_heap_fini(&heap);
    free(t);
    return ns;
}

/* ---------------------------------------------------- ucontext baseline */

static ucontext_t uc_main, uc_peer;

static void uc_peer_loop(void)
{
    for (;;)
        swapcontext(&uc_peer, &uc_main);
}

static double bench_ucontext(void)
{
    static char stack[64 * 1024];
    double t0;

    getcontext(&uc_peer);
    uc_peer.uc_stack.ss_sp = stack;
    uc_peer.uc_stack.ss_size = sizeof stack;
    uc_peer.uc_link = NULL;
    makecontext(&uc_peer, uc_peer_loop, 0);
    swapcontext(&uc_main, &uc_peer);
    t0 = bench_now_ns();
    for (int i = 0; i < YIELDS / 4; i++)
        swapcontext(&uc_main, &uc_peer);
    return (bench_now_ns() - t0) / (2.0 * (YIELDS / 4));
}

/* ------------------------------------------------ Boost.Context peer
 * Two contexts jumping to each other with jump_fcontext, which saves what
 * grove's switch saves (callee-saved registers, MXCSR and the x87 control
 * word) but has no scheduler, ready queue or errno around it: the floor
 * under switch_ns on this machine. */
#if defined(GROVE_HAVE_BOOST_CONTEXT)
typedef void *fcontext_t;
typedef struct {
    fcontext_t fctx;
    void *data;
} transfer_t;
transfer_t jump_fcontext(fcontext_t const to, void *vp);
fcontext_t make_fcontext(void *sp, size_t size, void (*fn)(transfer_t));

static void boost_peer_loop(transfer_t t)
{
    for (;;)
        t = jump_fcontext(t.fctx, NULL);
}

static double bench_boost(void)
{
    static char stack[64 * 1024];
    fcontext_t peer = make_fcontext(stack + sizeof stack, sizeof stack, boost_peer_loop);
    double t0;

    peer = jump_fcontext(peer, NULL).fctx;
    t0 = bench_now_ns();
    for (int i = 0; i < YIELDS; i++)
        peer = jump_fcontext(peer, NULL).fctx;
    return (bench_now_ns() - t0) / (2.0 * YIELDS);
}
#else
static double bench_boost(void)
{
    return 0; /* not built: libboost-context-dev was missing */
}
#endif

/* ------------------------------------------------------- request stack */

static int hello(gr_http_request *req, void *arg)
{
    static const gr_http_header h[] = {{"Content-Type", "text/plain"}};

    (void)arg;
    return gr_http_respond(req, 200, h, 1, "hello\n", 6, -1);
}

/* One GET over loopback, then the server's figure for its stack depth. */
static void *bench_request_stack(void *out)
{
    static const char req[] = "GET / HTTP/1.1\r\nHost: micro\r\nConnection: close\r\n\r\n";
    int l = gr_tcp_listen("127.0.0.1", 0, 0);
    gr_http_server *s = gr_http_server_new(l, hello, NULL, NULL);
    gr_server_stats st;
    char buf[512];
    int c;

    if (!s || gr_http_server_start(s) != 0)
        bench_die("gr_http_server_new");
    if ((c = gr_tcp_connect("127.0.0.1", gr_local_port(l), gr_now() + 5000)) < 0 ||
        gr_write_all(c, req, sizeof req - 1, NULL, gr_now() + 5000) != 0)
        bench_die("connect");
    while (gr_read(c, buf, sizeof buf, gr_now() + 5000) > 0) {
    }
    gr_close(c);
    gr_http_server_stats_get(s, &st);
    *(double *)out = (double)st.stack_hwm;
    gr_http_server_stop(s, gr_now() + 1000);
    gr_http_server_free(s);
    return NULL;
}

/* ------------------------------------------------------------------ main */

static double run_in_main(gr_fn fn)
{
    double v = 0;

    if (gr_main(fn, &v, NULL) != 0)
        bench_die("gr_main");
    return v;
}

static idle run_idle(int n)
{
    idle r = {.n = n};

    if (gr_main(bench_idle, &r, NULL) != 0)
        bench_die("gr_main");
    return r;
}

int main(int argc, char **argv)
{
    double sw[BENCH_MAX_RUNS], sj[BENCH_MAX_RUNS], tm[BENCH_MAX_RUNS], uc[BENCH_MAX_RUNS];
    double bc[BENCH_MAX_RUNS];
    int json = 0, runs = 5, million = 0;
    idle one, mil = {0};

    for (int i = 1; i < argc; i++) {
        if (bench_option(argc, argv, &i, &json, &runs)) {
            continue;
        } else if (!strcmp(argv[i], "--million")) {
            million = 1;
        } else {
            fprintf(stderr, "usage: %s [--json] [--runs N] [--million]\n", argv[0]);
            return 2;
        }
    }
    if (bench_check_runs("grove-micro", runs) != 0)
        return 2;
    for (int r = 0; r < runs; r++) {
        sw[r] = run_in_main(bench_switch);
        sj[r] = run_in_main(bench_spawn_join);
        tm[r] = bench_timer();
        uc[r] = bench_ucontext();
        bc[r] = bench_boost();
    }
    one = run_idle(100000);
    double rs = run_in_main(bench_request_stack);
    if (million)
        mil = run_idle(1000000);

    double s = bench_median(sw, runs), u = bench_median(uc, runs);
    double j = bench_median(sj, runs), t = bench_median(tm, runs);
    double b = bench_median(bc, runs);

    if (json) {
        bench_json_begin();
        bench_json("switch_ns", "%.2f", s);
        bench_json("spawn_join_ns", "%.2f", j);
        bench_json("idle_bytes_per_greenlet", "%.0f", one.rss_bytes);
        bench_json("idle_pte_bytes_per_greenlet", "%.0f", one.pte_bytes);
        bench_json("timer_ns", "%.2f", t);
        bench_json("ucontext_switch_ns", "%.2f", u);
        bench_json("switch_vs_ucontext", "%.3f", s / u);
        if (b > 0) {
            bench_json("boost_jump_ns", "%.2f", b);
            bench_json("switch_vs_boost_jump", "%.3f", s / b);
        }
        bench_json("http_request_stack_bytes", "%.0f", rs);
        bench_json("runs", "%d", runs);
        if (million) {
            bench_json("million_ok", "%s", mil.ok ? "true" : "false");
            bench_json("million_idle_bytes_per_greenlet", "%.0f", mil.rss_bytes);
            bench_json("million_idle_pte_bytes_per_greenlet", "%.0f", mil.pte_bytes);
        }
        bench_json_end();
        return 0;
    }
    printf("grove-micro (%s switch), medians of %d runs\n", gr__ctx_impl(), runs);
    printf("  switch through the hub   %8.2f ns per yield\n", s);
    printf("  ucontext swapcontext     %8.2f ns per switch (baseline; grove = %.3fx)\n", u, s / u);
    if (b > 0)
        printf("  Boost.Context jump       %8.2f ns per switch (no scheduler; grove = %.3fx)\n", b,
               s / b);
    else
        printf("  Boost.Context jump       not built (libboost-context-dev missing)\n");
    printf("  spawn + run + join       %8.2f ns\n", j);
    printf("  timer arm + fire         %8.2f ns (heap of %d)\n", t, TIMERS);
    printf("  idle green thread        %8.0f bytes RSS + %.0f bytes page tables (100,000 asleep)\n",
           one.rss_bytes, one.pte_bytes);
    printf("  HTTP request stack depth %8.0f bytes (one GET, server stats)\n", rs);
    if (million)
        printf("  1,000,000 idle           %s: %.0f bytes RSS + %.0f bytes page tables each\n",
               mil.ok ? "ok" : "FAILED", mil.rss_bytes, mil.pte_bytes);
    return 0;
}
