/* A producer/consumer pipeline (gevent's JoinableQueue + Pool pattern).
 *
 *   producer --raw--> dispatcher --pool of 4 jobs--> --cooked--> collector
 *
 * The producer emits the numbers 1..1000, a dispatcher hands each one to a
 * job in a pool of four (gr_group_spawn waits while four are busy), each
 * job squares its number, and a collector adds the squares up. Both queues
 * are bounded, so a fast stage waits for a slow one instead of piling
 * items up (back-pressure), and both are joinable: gr_queue_join returns
 * once every item put has been marked done, which is how main knows the
 * pipeline has drained. The long-running stages are then killed: their
 * blocked gets fail with ECANCELED and they return. */
/* example-expect: pipeline: 1000 items through 3 stages */
/* example-expect: sum of squares: 333833500 (expected 333833500) */
/* example-expect: at most 4 jobs ran at once */
/* example-expect: stages stopped: 2 cancelled, queues empty */
#include <errno.h>
#include <grove.h>
#include <stdint.h>
#include <stdio.h>

#define ITEMS 1000
#define POOL 4

static gr_queue *raw, *cooked;
static gr_group *jobs;
static int busy, most_busy;
static long long total;
static int cancelled;

static void *producer(void *arg)
{
    (void)arg;
    for (intptr_t i = 1; i <= ITEMS; i++)
        if (gr_queue_put(raw, (void *)i, -1) != 0)
            return NULL;
    return NULL;
}

static void *square(void *arg)
{
    intptr_t n = (intptr_t)arg;

    if (++busy > most_busy)
        most_busy = busy;
    gr_yield(); /* stands for real work that blocks */
    gr_queue_put(cooked, (void *)(n * n), -1);
    busy--;
    gr_queue_task_done(raw); /* only now is this raw item fully handled */
    return NULL;
}

static void *dispatcher(void *arg)
{
    void *item;

    (void)arg;
    while (gr_queue_get(raw, &item, -1) == 0)
        if (gr_group_spawn(jobs, square, item, &(gr_opts){.name = "square"}, -1) < 0)
            break;
    if (errno == ECANCELED)
        cancelled++;
    return NULL;
}

static void *collector(void *arg)
{
    void *sq;

    (void)arg;
    while (gr_queue_get(cooked, &sq, -1) == 0) {
        total += (intptr_t)sq;
        gr_queue_task_done(cooked);
    }
    if (errno == ECANCELED)
        cancelled++;
    return NULL;
}

static void *start(void *arg)
{
    gr_t prod, disp, coll;

    (void)arg;
    raw = gr_queue_new(GR_QUEUE_FIFO, 8, NULL);
    cooked = gr_queue_new(GR_QUEUE_FIFO, 8, NULL);
    jobs = gr_group_new(POOL);
    if (!raw || !cooked || !jobs)
        return (void *)1;
    prod = gr_spawn(producer, NULL);
    disp = gr_spawn(dispatcher, NULL);
    coll = gr_spawn(collector, NULL);

    gr_join(prod, NULL, -1);
    gr_queue_join(raw, -1);    /* every number squared and passed on */
    gr_queue_join(cooked, -1); /* every square added up */
    gr_group_join(jobs, -1);   /* the last jobs are finishing their exit */

    printf("pipeline: %d items through 3 stages\n", ITEMS);
    printf("sum of squares: %lld (expected %lld)\n", total,
           (long long)ITEMS * (ITEMS + 1) * (2 * ITEMS + 1) / 6);
    printf("at most %d jobs ran at once\n", most_busy);

    gr_kill(disp);
    gr_kill(coll);
    gr_join(disp, NULL, -1);
    gr_join(coll, NULL, -1);
    printf("stages stopped: %d cancelled, queues %s\n", cancelled,
           gr_queue_size(raw) + gr_queue_size(cooked) == 0 ? "empty" : "not empty");
    gr_queue_free(raw);
    gr_queue_free(cooked);
    gr_group_free(jobs);
    return NULL;
}

int main(void)
{
    void *failed = NULL;

    return gr_main(start, NULL, &failed) == 0 && !failed ? 0 : 1;
}
