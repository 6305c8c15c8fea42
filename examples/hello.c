/* The README's example: three green threads sleep and count concurrently;
 * the whole run takes as long as the longest of them, not the sum. */
/* example-expect: thread 3 returned 300 */
#include <grove.h>
#include <stdint.h>
#include <stdio.h>

static void *count(void *arg)
{
    intptr_t id = (intptr_t)arg;

    for (int i = 1; i <= 3; i++) {
        gr_sleep(gr_now() + 10 * id); /* blocks this green thread only */
        printf("thread %ld: %d\n", (long)id, i);
    }
    return (void *)(id * 100);
}

static void *start(void *arg)
{
    gr_t t[3];

    (void)arg;
    for (intptr_t i = 0; i < 3; i++)
        t[i] = gr_spawn(count, (void *)(i + 1));
    for (int i = 0; i < 3; i++) {
        void *result;

        gr_join(t[i], &result, -1);
        printf("thread %d returned %ld\n", i + 1, (long)(intptr_t)result);
    }
    return NULL;
}

int main(void)
{
    return gr_main(start, NULL, NULL) == 0 ? 0 : 1;
}
