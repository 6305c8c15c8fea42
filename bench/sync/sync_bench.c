/* grove-sync-bench: the synchronisation objects' message cost.
 *
 *   grove-sync-bench [--json] [--runs N]
 *
 * Two green threads bounce a message back and forth, through a pair of
 * channels, then through a pair of unbounded queues. Each figure is the
 * time per message (one hop, so one switch), median of N runs (default 5).
 * yield_pingpong_ns is the bare switch of two threads yielding to each
 * other, measured in the same run, so the figures can be compared. */
#define _GNU_SOURCE
#include "../bench.h"

#include <grove.h>
#include <stdint.h>

enum { MESSAGES = 2000000 };

static void check(int rc, const char *what)
{
    if (rc != 0)
        bench_die(what);
}

/* Both threads run the same relay loop, as the yield ping-pong does: a
 * thread resumes where its peer blocked, so the figure is the object's own
 * cost. When the two sides run different code (client and server), every
 * resumption also returns into a caller the CPU did not predict; the
 * "asym" figures measure that case. The loops are stamped out per object
 * by a macro, so no indirect call blurs the figures. */
typedef struct relay {
    void *in, *out;
    int last_send; /* whether the last message received is passed on */
} relay;

#define PINGPONG_LOOPS(kind, SEND, RECV)                                                           \
    static void *kind##_relay(void *arg)                                                           \
    {                                                                                              \
        relay *r = arg;                                                                            \
        void *v;                                                                                   \
                                                                                                   \
        for (int i = 0; i < MESSAGES / 2; i++) {                                                   \
            check(RECV(r->in, &v), "receive");                                                     \
            if (i + 1 < MESSAGES / 2 || r->last_send)                                              \
                check(SEND(r->out, v), "send");                                                    \
        }                                                                                          \
        return NULL;                                                                               \
    }                                                                                              \
    static void *kind##_client(void *arg)                                                          \
    {                                                                                              \
        relay *r = arg;                                                                            \
        void *v;                                                                                   \
                                                                                                   \
        for (intptr_t i = 0; i < MESSAGES / 2; i++) {                                              \
            check(SEND(r->out, (void *)i), "send");                                                \
            check(RECV(r->in, &v), "receive");                                                     \
        }                                                                                          \
        return NULL;                                                                               \
    }                                                                                              \
    static void *kind##_server(void *arg)                                                          \
    {                                                                                              \
        relay *r = arg;                                                                            \
        void *v;                                                                                   \
                                                                                                   \
        for (int i = 0; i < MESSAGES / 2; i++) {                                                   \
            check(RECV(r->in, &v), "receive");                                                     \
            check(SEND(r->out, v), "send");                                                        \
        }                                                                                          \
        return NULL;                                                                               \
    }                                                                                              \
    /* MESSAGES hops between two threads over a and b; ns per hop. */                              \
    static double kind##_pingpong(void *a, void *b, int asym)                                      \
    {                                                                                              \
        relay ra = {a, b, 1}, rb = {b, a, 0};                                                      \
        gr_t ta = gr_spawn(asym ? kind##_server : kind##_relay, &ra);                              \
        gr_t tb = gr_spawn(asym ? kind##_client : kind##_relay, &rb);                              \
        double t0;                                                                                 \
                                                                                                   \
        gr_yield(); /* both started and parked: time the steady state */                           \
        t0 = bench_now_ns();                                                                       \
        if (!asym)                                                                                 \
            check(SEND(a, NULL), "send"); /* the first hop */                                      \
        check(gr_join(ta, NULL, -1), "join");                                                      \
        check(gr_join(tb, NULL, -1), "join");                                                      \
        return (bench_now_ns() - t0) / MESSAGES;                                                   \
    }

/* -------------------------------------------------------------- channel */

#define CHAN_SEND(c, v) gr_chan_send((gr_chan *)(c), (v), -1)
#define CHAN_RECV(c, v) gr_chan_recv((gr_chan *)(c), (v), -1)
PINGPONG_LOOPS(chan, CHAN_SEND, CHAN_RECV)

static void *bench_chan(void *arg)
{
    double *out = arg;
    gr_chan a, b;

    gr_chan_init(&a);
    gr_chan_init(&b);
    out[0] = chan_pingpong(&a, &b, 0);
    out[1] = chan_pingpong(&a, &b, 1);
    return NULL;
}

/* ---------------------------------------------------------------- queue */

#define QUEUE_PUT(q, v) gr_queue_put((gr_queue *)(q), (v), -1)
#define QUEUE_GET(q, v) gr_queue_get((gr_queue *)(q), (v), -1)
PINGPONG_LOOPS(queue, QUEUE_PUT, QUEUE_GET)

static void *bench_queue(void *arg)
{
    double *out = arg;
    gr_queue *a = gr_queue_new(GR_QUEUE_FIFO, 0, NULL);
    gr_queue *b = gr_queue_new(GR_QUEUE_FIFO, 0, NULL);

    if (!a || !b)
        check(-1, "gr_queue_new");
    out[0] = queue_pingpong(a, b, 0);
    out[1] = queue_pingpong(a, b, 1);
    gr_queue_free(a);
    gr_queue_free(b);
    return NULL;
}

/* ---------------------------------------------------------------- yield */

static void *yield_loop(void *arg)
{
    (void)arg;
    for (int i = 0; i < MESSAGES / 2; i++)
        gr_yield();
    return NULL;
}

static void *bench_yield(void *arg)
{
    gr_t a = gr_spawn(yield_loop, NULL), b = gr_spawn(yield_loop, NULL);
    double t0;

    gr_yield();
    t0 = bench_now_ns();
    check(gr_join(a, NULL, -1), "join");
    check(gr_join(b, NULL, -1), "join");
    *(double *)arg = (bench_now_ns() - t0) / MESSAGES;
    return NULL;
}

/* ------------------------------------------------------------------ main */

static void run_in_main(gr_fn fn, double *out)
{
    check(gr_main(fn, out, NULL), "gr_main");
}

int main(int argc, char **argv)
{
    double ch[BENCH_MAX_RUNS], cha[BENCH_MAX_RUNS], qu[BENCH_MAX_RUNS], qua[BENCH_MAX_RUNS],
        yi[BENCH_MAX_RUNS];
    int json = 0, runs = 5;

    if (bench_common_args(argc, argv, &json, &runs) != 0)
        return 2;
    for (int r = 0; r < runs; r++) {
        double two[2];

        run_in_main(bench_chan, two);
        ch[r] = two[0];
        cha[r] = two[1];
        run_in_main(bench_queue, two);
        qu[r] = two[0];
        qua[r] = two[1];
        run_in_main(bench_yield, &yi[r]);
    }
    double c = bench_median(ch, runs), ca = bench_median(cha, runs), q = bench_median(qu, runs);
    double qa = bench_median(qua, runs), y = bench_median(yi, runs);

    if (json) {
        bench_json_begin();
        bench_json("chan_pingpong_ns", "%.2f", c);
        bench_json("queue_pingpong_ns", "%.2f", q);
        bench_json("yield_pingpong_ns", "%.2f", y);
        bench_json("chan_pingpong_asym_ns", "%.2f", ca);
        bench_json("queue_pingpong_asym_ns", "%.2f", qa);
        bench_json("runs", "%d", runs);
        bench_json_end();
        return 0;
    }
    printf("grove-sync-bench, medians of %d runs, ns per message (one switch each)\n", runs);
    printf("                      same loop   client/server\n");
    printf("  channel ping-pong   %8.2f    %8.2f\n", c, ca);
    printf("  queue ping-pong     %8.2f    %8.2f\n", q, qa);
    printf("  yield ping-pong     %8.2f                (the bare switch)\n", y);
    return 0;
}
