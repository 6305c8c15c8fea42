/* gr_spawn_on: a green thread started on another OS thread's hub, its
 * result delivered to a thread-safe AsyncResult. The request travels as a
 * post; a reference keeps the target hub alive until the thread exists
 * (from then on the thread itself keeps gr_main there from returning). */
#include "sync/sync.h"

#include <stdlib.h>
#include <string.h>

typedef struct remote {
    gr_hub *hub;
    gr_fn fn;
    void *arg;
    gr_async *done;
    gr_opts opts;
    char name[GR_NAME_MAX + 1];
} remote;

static void *remote_main(void *arg)
{
    remote r = *(remote *)arg;

    free(arg);
    gr_async_set(r.done, r.fn(r.arg));
    return NULL;
}

/* In the target hub. */
static void start(void *arg)
{
    remote *r = arg;
    gr_hub *hub = r->hub;
    gr_async *done = r->done;

    if (r->opts.name)
        r->opts.name = r->name;
    r->opts.flags |= GR_DETACHED;
    if (gr_spawn_opts(remote_main, r, &r->opts) < 0) {
        int err = errno;

        free(r);
        gr_async_set_error(done, err);
    }
    gr_hub_unref(hub);
}

int gr_spawn_on(gr_hub *hub, gr_fn fn, void *arg, const gr_opts *opts, gr_async *done)
{
    remote *r;

    if (!hub || !fn || !done || (opts && (opts->flags & ~GR_DETACHED))) {
        errno = EINVAL;
        return -1;
    }
    if (!(r = gr__calloc(1, sizeof *r))) {
        errno = ENOMEM;
        return -1;
    }
    *r = (remote){.hub = hub, .fn = fn, .arg = arg, .done = done};
    if (opts) {
        r->opts = *opts;
        if (opts->name)
            strncpy(r->name, opts->name, GR_NAME_MAX);
    }
    gr_hub_ref(hub);
    if (gr_hub_post(hub, start, r) != 0) {
        int err = errno;

        gr_hub_unref(hub);
        free(r);
        errno = err;
        return -1;
    }
    return 0;
}
