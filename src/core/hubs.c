/* Hubs on many OS threads: gr_hubs_run starts n threads, each running
 * gr_main(fn, args[i]), and waits for them. */
#include "layout.h"

#include <stdlib.h>

typedef struct hub_thread {
    pthread_t t;
    gr_fn fn;
    void *arg, *result;
    int rc, err;
} hub_thread;

static void *hub_thread_main(void *arg)
{
    hub_thread *ht = arg;

    ht->rc = gr_main(ht->fn, ht->arg, &ht->result);
    ht->err = ht->rc ? errno : 0;
    return NULL;
}

int gr_hubs_run(size_t n, gr_fn fn, void *const *args, void **results)
{
    hub_thread *ht;
    size_t started = 0;
    int err = 0;

    if (!n || !fn) {
        errno = EINVAL;
        return -1;
    }
    if (!(ht = gr__calloc(n, sizeof *ht))) {
        errno = ENOMEM;
        return -1;
    }
    for (; started < n; started++) {
        ht[started].fn = fn;
        ht[started].arg = args ? args[started] : NULL;
        if ((err = gr__pthread_create(&ht[started].t, NULL, hub_thread_main, &ht[started])) != 0)
            break;
    }
    for (size_t i = 0; i < started; i++) {
        pthread_join(ht[i].t, NULL);
        if (results)
            results[i] = ht[i].result;
        if (!err && ht[i].rc)
            err = ht[i].err;
    }
    free(ht);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}
