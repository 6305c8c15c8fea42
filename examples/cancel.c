/* Cancellation and time limits. A worker holding a resource is killed
 * while it sleeps: its blocking call fails with ECANCELED and it unwinds
 * through its own clean-up. Then a Timeout region bounds a whole sequence
 * of blocking calls with one deadline. */
/* example-expect: main: limit expired: yes */
/* example-expect: worker: cleaned up */
#include <errno.h>
#include <grove.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *worker(void *arg)
{
    char *buffer = malloc(4096); /* a resource to give back on the way out */

    (void)arg;
    for (int step = 1;; step++) {
        if (gr_sleep(gr_now() + 20) != 0) {
            printf("worker: step %d interrupted: %s\n", step, strerror(errno));
            break;
        }
        printf("worker: step %d done\n", step);
    }
    free(buffer);
    printf("worker: cleaned up\n");
    return (void *)(intptr_t)42;
}

static void *start(void *arg)
{
    gr_timeout limit;
    void *result;
    gr_t w;

    (void)arg;
    w = gr_spawn(worker, NULL);
    gr_sleep(gr_now() + 50); /* let it do two steps */
    gr_kill(w);
    gr_join(w, &result, -1);
    printf("main: worker returned %ld\n", (long)(intptr_t)result);

    /* Three sleeps of 30 ms against one 70 ms limit: the third fails. */
    gr_timeout_begin(&limit, gr_now_update() + 70);
    for (int i = 1; i <= 3; i++) {
        if (gr_sleep(gr_now() + 30) != 0) {
            printf("main: sleep %d: %s\n", i, strerror(errno));
            break;
        }
        printf("main: sleep %d done\n", i);
    }
    printf("main: limit expired: %s\n", gr_timeout_end(&limit) ? "yes" : "no");
    return NULL;
}

int main(void)
{
    return gr_main(start, NULL, NULL) == 0 ? 0 : 1;
}
