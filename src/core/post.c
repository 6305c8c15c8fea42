/* The only way in from other OS threads: posted callbacks, and references
 * that keep a hub alive for them. */
#include "layout.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

/* Called with h->lock held: wake a sleeping hub, once per sleep. */
static void wake_locked(gr_hub *h)
{
    uint64_t one = 1;

    atomic_store(&h->posted, 1);
    if (h->sleeping && !h->wake_sent) {
        h->wake_sent = 1;
        if (write(h->wakefd, &one, sizeof one) < 0) {
            /* EAGAIN: the counter is already non-zero, the hub will wake. */
        }
    }
}

int gr_hub_post(gr_hub *h, void (*cb)(void *), void *arg)
{
    gr__post *p;

    if (!h || !cb) {
        errno = EINVAL;
        return -1;
    }
    if (!(p = gr__malloc(sizeof *p))) {
        errno = ENOMEM;
        return -1;
    }
    *p = (gr__post){NULL, cb, arg};
    pthread_mutex_lock(&h->lock);
    if (h->posts_tail)
        h->posts_tail->next = p;
    else
        h->posts_head = p;
    h->posts_tail = p;
    wake_locked(h);
    pthread_mutex_unlock(&h->lock);
    return 0;
}

void gr_hub_ref(gr_hub *h)
{
    if (h)
        atomic_fetch_add(&h->refs, 1);
}

void gr_hub_unref(gr_hub *h)
{
    if (!h)
        return;
    /* Under the lock, so the hub cannot be freed before we are done: a hub
     * about to exit takes the lock to read its posts. The last unref wakes
     * it to notice it may be done. */
    pthread_mutex_lock(&h->lock);
    if (atomic_fetch_sub(&h->refs, 1) == 1)
        wake_locked(h);
    pthread_mutex_unlock(&h->lock);
}

void gr__posts_run(gr_hub *h)
{
    gr__post *p;

    pthread_mutex_lock(&h->lock);
    p = h->posts_head;
    h->posts_head = h->posts_tail = NULL;
    atomic_store(&h->posted, 0);
    if (h->xwakes)
        gr__xwakes_run_locked(h);
    pthread_mutex_unlock(&h->lock);
    while (p) {
        gr__post *next = p->next;

        p->cb(p->arg);
        free(p);
        p = next;
    }
}

void gr__posts_fini(gr_hub *h)
{
    gr__post *p = h->posts_head;

    while (p) {
        gr__post *next = p->next;

        free(p);
        p = next;
    }
    h->posts_head = h->posts_tail = NULL;
}

/* ------------------------------------------------------- notifications */

int gr__hub_set_notify(gr_hub *h, void (*fn)(void *, unsigned), void *arg)
{
    if (h->notify_fn && (h->notify_fn != fn || h->notify_arg != arg)) {
        errno = EBUSY;
        return -1;
    }
    h->notify_fn = fn;
    h->notify_arg = arg;
    return 0;
}

/* Async-signal-safe: an atomic and a write(2). The write wakes a hub
 * sleeping in epoll; a hub that is not sleeping sees the bits at its next
 * look around. */
void gr__hub_notify(gr_hub *h, unsigned bits)
{
    uint64_t one = 1;
    int err = errno;

    atomic_fetch_or(&h->notified, bits);
    if (write(h->wakefd, &one, sizeof one) < 0) {
        /* EAGAIN: the counter is already non-zero, the hub will wake. */
    }
    errno = err;
}

void gr__notified_run(gr_hub *h)
{
    unsigned bits = atomic_exchange(&h->notified, 0);

    if (bits && h->notify_fn)
        h->notify_fn(h->notify_arg, bits);
}

void gr__hub_wake_source(gr_hub *h, int delta)
{
    atomic_fetch_add(&h->wake_sources, delta);
}
