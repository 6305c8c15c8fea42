/* grove-signal-bench: how long from kill(2) to the code that handles the
 * signal, with grove and with the classic sigwaitinfo thread.
 *
 *   grove-signal-bench [--json] [--runs N] [--signals S] [--busy B]
 *
 * A sender thread (with every signal blocked) sends SIGUSR1 to the
 * process S times (default 1,000), each once the previous was handled
 * (the handler writes a byte to a pipe the sender reads); the latency is
 * from just before kill to the first line of the handling code:
 *
 *   sigwaitinfo    a thread blocked in sigwaitinfo (every thread blocks
 *                  the signal), the peer
 *   grove waiter   a green thread in gr_signal_next, on an idle hub
 *   grove handler  gr_signal_handler's green thread, on an idle hub
 *   grove busy     gr_signal_handler's green thread, with B (default
 *                  1,000) green threads yielding in a loop; also counted
 *                  in their yields between the kill and the handler: one
 *                  pass over the ready threads is B yields (samples where
 *                  the sender lost its core around the kill are left out
 *                  of that count)
 *
 * p50 and p99 of each, the median over N runs (default 3). */
#define _GNU_SOURCE
#include "../bench.h"

#include <grove.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

static int runs = 3, nsig = 1000, nbusy = 1000;

static double *sent, *got;
static long *yields_sent, *yields_got;
static char *clean;
static atomic_long yields;
static atomic_int idx, stop_busy;
static int ack[2];

static void block_usr1(int how)
{
    sigset_t s;

    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(how, &s, NULL);
}

/* The receiving side, whatever it is: note the time, acknowledge. */
static void handled(void)
{
    int i = atomic_load(&idx);

    got[i] = bench_now_ns();
    yields_got[i] = atomic_load(&yields);
    atomic_store(&idx, i + 1);
    if (write(ack[1], "k", 1) != 1)
        bench_die("ack");
}

static void *sender(void *arg)
{
    sigset_t all;
    char c;

    (void)arg;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (int i = 0; i < nsig; i++) {
        usleep(100); /* the receiver's hub goes back to sleep, when idle */
        yields_sent[i] = atomic_load(&yields);
        sent[i] = bench_now_ns();
        kill(getpid(), SIGUSR1);
        /* A sender that lost its core around the kill counts the busy
         * threads' yields meanwhile: such a sample's yields are left out. */
        clean[i] = atomic_load(&yields) - yields_sent[i] <= 64;
        if (read(ack[0], &c, 1) != 1)
            bench_die("read ack");
    }
    atomic_store(&stop_busy, 1);
    return NULL;
}

static pthread_t start_sender(void)
{
    pthread_t t;

    atomic_store(&idx, 0);
    atomic_store(&stop_busy, 0);
    if (pthread_create(&t, NULL, sender, NULL) != 0)
        bench_die("pthread_create");
    return t;
}

typedef struct result {
    double p50, p99, y50, y99;
} result;

static result summarize(void)
{
    double *l = malloc(sizeof(double) * (size_t)nsig), *y = malloc(sizeof(double) * (size_t)nsig);
    result r;

    int ny = 0;

    for (int i = 0; i < nsig; i++) {
        l[i] = got[i] - sent[i];
        if (clean[i])
            y[ny++] = (double)(yields_got[i] - yields_sent[i]);
    }
    qsort(l, (size_t)nsig, sizeof *l, bench_cmp_double);
    qsort(y, (size_t)ny, sizeof *y, bench_cmp_double);
    r = (result){l[nsig / 2] / 1e3, l[nsig * 99 / 100] / 1e3, ny ? y[ny / 2] : 0,
                 ny ? y[ny * 99 / 100] : 0};
    free(l);
    free(y);
    return r;
}

/* ------------------------------------------------------------ the peer */

static void *sigwaitinfo_thread(void *arg)
{
    sigset_t s;
    siginfo_t si;

    (void)arg;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    for (int i = 0; i < nsig; i++) {
        if (sigwaitinfo(&s, &si) != SIGUSR1)
            bench_die("sigwaitinfo");
        handled();
    }
    return NULL;
}

static result run_sigwaitinfo(void)
{
    pthread_t r, s;

    block_usr1(SIG_BLOCK); /* every thread: the waiter's, the sender's, this one */
    if (pthread_create(&r, NULL, sigwaitinfo_thread, NULL) != 0)
        bench_die("pthread_create");
    s = start_sender();
    pthread_join(s, NULL);
    pthread_join(r, NULL);
    block_usr1(SIG_UNBLOCK);
    return summarize();
}

/* ---------------------------------------------------------------- grove */

static void on_usr1(const gr_siginfo *info, void *arg)
{
    (void)info;
    (void)arg;
    handled();
}

static void *busy(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop_busy)) {
        atomic_fetch_add(&yields, 1);
        gr_yield();
    }
    return NULL;
}

static result run_grove_waiter(void)
{
    gr_signals *s = gr_signal_open(GR_SIG(SIGUSR1));
    pthread_t t = start_sender();

    for (int i = 0; i < nsig; i++) {
        if (gr_signal_next(s, NULL, -1) != SIGUSR1)
            bench_die("gr_signal_next");
        handled();
    }
    pthread_join(t, NULL);
    gr_signal_close(s);
    return summarize();
}

/* The handler's threads, and b busy ones; the caller looks every 5 ms
 * whether all were handled, so the hub sleeps between signals unless
 * b > 0. */
static result run_grove_handler(int b)
{
    gr_signals *h = gr_signal_handler(GR_SIG(SIGUSR1), on_usr1, NULL);
    gr_t *t = calloc((size_t)b + 1, sizeof *t);
    pthread_t s;

    for (int i = 0; i < b; i++)
        t[i] = gr_spawn(busy, NULL);
    s = start_sender();
    while (atomic_load(&idx) < nsig)
        gr_sleep(gr_now_update() + 5);
    pthread_join(s, NULL);
    for (int i = 0; i < b; i++)
        gr_join(t[i], NULL, -1);
    free(t);
    gr_signal_close(h);
    return summarize();
}

static int cmp_result_p50(const void *a, const void *b)
{
    double x = ((const result *)a)->p50, y = ((const result *)b)->p50;

    return (x > y) - (x < y);
}

/* The run whose p50 is the median, with its p99. */
static result median_result(result *v)
{
    qsort(v, (size_t)runs, sizeof *v, cmp_result_p50);
    return v[runs / 2];
}

static void print(int json, const char *name, result r, int with_yields)
{
    if (json) {
        char key[64];

        snprintf(key, sizeof key, "%s_p50_us", name);
        bench_json(key, "%.1f", r.p50);
        snprintf(key, sizeof key, "%s_p99_us", name);
        bench_json(key, "%.1f", r.p99);
        if (with_yields) {
            snprintf(key, sizeof key, "%s_p50_yields", name);
            bench_json(key, "%.0f", r.y50);
            snprintf(key, sizeof key, "%s_p99_yields", name);
            bench_json(key, "%.0f", r.y99);
        }
        return;
    }
    printf("  %-15s p50 %7.1f us   p99 %7.1f us", name, r.p50, r.p99);
    if (with_yields)
        printf("   (p50 %.0f, p99 %.0f yields of the busy threads)", r.y50, r.y99);
    printf("\n");
}

static void *run(void *arg)
{
    int json = *(int *)arg;
    result peer[BENCH_MAX_RUNS], wait[BENCH_MAX_RUNS], idle[BENCH_MAX_RUNS], loaded[BENCH_MAX_RUNS];

    if (pipe2(ack, O_CLOEXEC) != 0)
        bench_die("pipe");
    for (int r = 0; r < runs; r++) {
        peer[r] = run_sigwaitinfo();
        wait[r] = run_grove_waiter();
        idle[r] = run_grove_handler(0);
        loaded[r] = run_grove_handler(nbusy);
    }
    if (json) {
        bench_json_begin();
        bench_json("signals", "%d", nsig);
        bench_json("busy", "%d", nbusy);
    } else {
        printf("grove-signal-bench: kill to handler, %d signals one at a time, medians of %d "
               "runs\n",
               nsig, runs);
    }
    print(json, "sigwaitinfo", median_result(peer), 0);
    print(json, "grove_waiter", median_result(wait), 0);
    print(json, "grove_handler", median_result(idle), 0);
    print(json, "grove_busy", median_result(loaded), 1);
    if (json)
        bench_json_end();
    return NULL;
}

int main(int argc, char **argv)
{
    int json = 0;

    for (int i = 1; i < argc; i++) {
        if (bench_option(argc, argv, &i, &json, &runs))
            continue;
        if (!strcmp(argv[i], "--signals") && i + 1 < argc)
            nsig = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--busy") && i + 1 < argc)
            nbusy = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--json] [--runs N] [--signals S] [--busy B]\n", argv[0]);
            return 2;
        }
    }
    if (bench_check_runs(argv[0], runs) != 0 || nsig < 1 || nbusy < 0)
        return 2;
    sent = calloc((size_t)nsig, sizeof *sent);
    got = calloc((size_t)nsig, sizeof *got);
    yields_sent = calloc((size_t)nsig, sizeof *yields_sent);
    yields_got = calloc((size_t)nsig, sizeof *yields_got);
    clean = calloc((size_t)nsig, 1);
    return gr_main(run, &json, NULL) == 0 ? 0 : 1;
}
