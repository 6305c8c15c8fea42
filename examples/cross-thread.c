/* Talking to a hub from other OS threads. Two pthreads do blocking work
 * (here: plain usleep) and post their results to the hub with
 * gr_hub_post(); the callback, running in the hub, spawns a green thread
 * per result. gr_hub_ref() tells the hub that posts are coming, so it
 * neither exits nor reports a deadlock while it waits for them. */
/* example-expect: got 9 from a pthread */
/* example-expect: got 4 from a pthread */
#include <grove.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

static gr_hub *hub;

static void *print_result(void *arg)
{
    printf("green thread: got %ld from a pthread\n", (long)(intptr_t)arg);
    return NULL;
}

/* Runs in the hub: must not block, may spawn. */
static void deliver(void *arg)
{
    gr_spawn_opts(print_result, arg, &(gr_opts){.flags = GR_DETACHED});
}

static void *blocking_worker(void *arg)
{
    intptr_t n = (intptr_t)arg;

    usleep(20000 * (useconds_t)n); /* stands for any blocking library call */
    gr_hub_post(hub, deliver, (void *)(n * n));
    gr_hub_unref(hub); /* no more posts from this thread */
    return NULL;
}

static void *start(void *arg)
{
    pthread_t t[2];

    (void)arg;
    hub = gr_hub_current();
    for (intptr_t i = 0; i < 2; i++) {
        gr_hub_ref(hub);
        pthread_create(&t[i], NULL, blocking_worker, (void *)(i + 2));
        pthread_detach(t[i]);
    }
    printf("main: the hub keeps running while the pthreads work\n");
    return NULL; /* gr_main waits for the refs and the green threads */
}

int main(void)
{
    return gr_main(start, NULL, NULL) == 0 ? 0 : 1;
}
