/* Work over several cores: gr_hubs_run starts one hub per OS thread, and
 * cross-thread channels (gr_xchan) connect them to a plain thread. The
 * plain thread sends 1,000 jobs; four green threads on each of two hubs
 * take them, "compute" (a square) and send the results back; the plain
 * thread adds them up. Closing the jobs channel tells the workers that
 * no more is coming. */
/* example-expect: sum of squares 1..1000 = 333833500 */
#include <grove.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#define JOBS 1000
#define HUBS 2
#define WORKERS_PER_HUB 4

static gr_xchan *jobs, *results;

static void *worker(void *arg)
{
    void *job;

    (void)arg;
    /* Fails with EPIPE once jobs is closed and drained. */
    while (gr_xchan_recv(jobs, &job, -1) == 0) {
        intptr_t n = (intptr_t)job;

        if (gr_xchan_send(results, (void *)(n * n), -1) != 0)
            break;
    }
    return NULL;
}

/* Each hub runs its workers and returns when they have all finished. */
static void *hub_main(void *arg)
{
    gr_t t[WORKERS_PER_HUB];

    (void)arg;
    for (int i = 0; i < WORKERS_PER_HUB; i++)
        t[i] = gr_spawn(worker, NULL);
    for (int i = 0; i < WORKERS_PER_HUB; i++)
        gr_join(t[i], NULL, -1);
    return NULL;
}

static void *run_hubs(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)gr_hubs_run(HUBS, hub_main, NULL, NULL);
}

int main(void)
{
    pthread_t hubs;
    long long sum = 0;
    void *v;

    jobs = gr_xchan_new(64); /* at most 64 jobs queued: the sender waits */
    results = gr_xchan_new(GR_XCHAN_UNBOUNDED);
    if (!jobs || !results || pthread_create(&hubs, NULL, run_hubs, NULL) != 0)
        return 1;
    for (intptr_t n = 1; n <= JOBS; n++) /* this plain thread blocks when full */
        gr_xchan_send(jobs, (void *)n, -1);
    gr_xchan_close(jobs);
    for (int i = 0; i < JOBS; i++) {
        if (gr_xchan_recv(results, &v, -1) != 0)
            return 1;
        sum += (intptr_t)v;
    }
    pthread_join(hubs, NULL);
    printf("sum of squares 1..%d = %lld\n", JOBS, sum);
    gr_xchan_free(jobs);
    gr_xchan_free(results);
    return 0;
}
