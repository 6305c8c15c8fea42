/* A forked child's hub. fork() copies the calling OS thread only, and
 * grove follows: in the child, only the context that forked (a green
 * thread, or the thread's root, or the hub in a callback) goes on. The
 * other green threads, finished ones included, are discarded without
 * running again: their stacks go back to the pool, their timers and waits
 * are undone, and a context that was joining one (the root in gr_main)
 * sees ESRCH.
 *
 * The kernel objects are shared with the parent, so the child must not
 * touch them: it closes its copies of the epoll and wake fds and makes new
 * ones, and forgets every fd registration (fds still waited on by a kept
 * context are registered again). Posts and references from other OS
 * threads are dropped: those threads do not exist in the child.
 * Subsystems with per-hub state (DNS) rebuild through gr__hub_on_fork.
 *
 * It all runs in a pthread_atfork child handler, so a plain fork() (or a
 * library's) leaves a working hub as gr_fork() does. */
#define _GNU_SOURCE
#include "layout.h"

#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#if defined(GR__ASAN)
#include <sanitizer/asan_interface.h>
#endif

int gr__hub_on_fork(gr_hub *h, void (*fn)(void *arg), void *arg)
{
    gr__hub_hook *k = gr__malloc(sizeof *k);

    if (!k) {
        errno = ENOMEM;
        return -1;
    }
    *k = (gr__hub_hook){h->on_fork, fn, arg};
    h->on_fork = k;
    return 0;
}

/* The child must not read or write a discarded thread's record or stack
 * unless it has to: on this machine the first touch of each page the
 * child shares with its parent costs 5-10 us, so walking a thousand
 * threads' records took 10 ms. Every context but the one forking, the
 * root and the hub is discarded, finished threads included, so the set is
 * known from pointers alone. */
typedef struct kept {
    const gr__g *keep, *root, *hubg;
} kept;

static int is_gone(const kept *k, const gr__g *g)
{
    return g != k->keep && g != k->root && g != k->hubg;
}

/* Link q's kept waiters again, in order, writing only to them and to q
 * (reading the others' waiters, which are on discarded stacks). */
static void keep_waiters(gr__wq *q, const kept *k)
{
    gr__waiter *w = q->head_, *prev = NULL;

    q->head_ = q->tail_ = NULL;
    for (; w; w = w->next) {
        if (is_gone(k, w->g))
            continue;
        w->prev = prev;
        if (prev)
            prev->next = w;
        else
            q->head_ = w;
        prev = w;
    }
    if (prev)
        prev->next = NULL;
    q->tail_ = prev;
}

/* Is q in a discarded thread's record (its joiners or its watchers)?
 * Pointer arithmetic only. */
static int in_a_gone_record(const gr_hub *h, const kept *k, const gr__wq *q)
{
    for (uint32_t i = 0; i < h->nslots; i++) {
        const gr__g *g = h->slots[i].g;

        if (g && (q == &g->joiners || q == &g->watchers))
            return is_gone(k, g);
    }
    return 0;
}

/* A discarded thread's watches leave the queues of kept objects; those in
 * discarded records go with them. */
static void drop_watches(const gr_hub *h, const kept *k, const gr__g *g)
{
    for (uint32_t i = 0; i < g->nwatches; i++) {
        gr__waiter *w = &g->watches[i].u.w[0];

        if (g->watches[i].kind == GR__WATCH_QUEUE && w->linked && !in_a_gone_record(h, k, w->q))
            keep_waiters(w->q, k);
    }
}

/* The root's watches of discarded threads are gone with their records,
 * its fd watches with the fd records: it looks again when it runs. */
static void wake_watching_root(const gr_hub *h, const kept *k, gr__g *root)
{
    for (uint32_t i = 0; i < root->nwatches; i++) {
        gr__watch *wt = &root->watches[i];

        if (wt->kind == GR__WATCH_FD)
            wt->u.w[0].linked = wt->u.w[1].linked = 0;
        else if (wt->kind == GR__WATCH_QUEUE && in_a_gone_record(h, k, wt->u.w[0].q))
            wt->u.w[0].linked = 0;
    }
    gr__unpark(root, 0);
}

/* A kept context that waits on something a discarded thread held (a join
 * of it; a wait on fds, whose queues are dropped wholesale) is woken:
 * ESRCH for the join, as for a stale handle; a wake without an edge for an
 * fd wait, which then registers its fds again with the new epoll; a wake
 * for a watch (gr_wait_any), which then looks again. Other queue waits
 * (sync objects) stay, with the discarded threads' waiters taken out of
 * their queues: a scan of the records, done only when some discarded
 * thread was in such a wait (nqwait says). */
static void undo_waits(gr_hub *h, const kept *k)
{
    gr__g *root = h->root;
    int root_parked = root->state == GR__PARKED;
    int root_qwait = root_parked && (root->qwait || root->nwatches);

    if (root_parked && root->qwait && in_a_gone_record(h, k, root->qwait->q)) {
        root->qwait->linked = 0;
        gr__unpark(root, ESRCH);
        root_qwait = 0;
    }
    if (h->nqwait > (size_t)root_qwait) {
        for (uint32_t i = 0; i < h->nslots; i++) {
            const gr__g *g = h->slots[i].g;

            if (!g || !is_gone(k, g))
                continue;
            if (g->qwait && g->qwait->linked)
                keep_waiters(g->qwait->q, k);
            if (g->nwatches)
                drop_watches(h, k, g);
        }
    }
    h->nqwait = (size_t)root_qwait;
    h->fd_gen++; /* each record is forgotten at its next use (fd.c) */
    if (root_parked && root->nwatches)
        wake_watching_root(h, k, root);
    if (root->state == GR__PARKED && root->nfdw) {
        for (uint32_t i = 0; i < root->nfdw; i++)
            root->fdw[i].linked = 0;
        gr__unpark(root, 0);
    }
    h->nfd_waiters = root->nfdw != 0 || gr__watches_fds(root);
    h->nfd_cbs = 0; /* their records are stale too: the parent's to serve */
    h->timed_waiters = root->state == GR__PARKED && root->park_deadline >= 0;
    h->later = 0;
}

/* Only kept contexts' timers stay in the heap. */
static void keep_timers(gr_hub *h, const kept *k)
{
    gr__timer_slot *v = h->timers.v;
    uint32_t n = h->timers.n, nkept = 0;

    for (uint32_t i = 0; i < n; i++) {
        const gr__g *g =
            (const gr__g *)(const void *)((const char *)v[i].t - offsetof(gr__g, timer));

        if (!is_gone(k, g))
            v[nkept++] = v[i];
    }
    h->timers.n = 0;
    for (uint32_t i = 0; i < nkept; i++) {
        gr__timer_slot s = v[i];

        s.t->idx = 0;
        gr__timer_arm(&h->timers, s.t, s.when); /* within the reserve: cannot fail */
    }
}

/* Keep the ready contexts that are kept, in order. */
static void rebuild_ready(gr_hub *h, const kept *k)
{
    uint32_t n = 0;

    for (uint32_t i = h->ready_head; i != h->ready_tail; i++) {
        gr__g *g = h->ready[i & h->ready_mask];

        if (!is_gone(k, g))
            h->ready[n++] = g;
    }
    h->ready_head = h->pass_mark = 0;
    h->ready_tail = n;
}

#if defined(GR__ASAN)
/* A discarded thread's frames never return, so ASan's poison of their
 * redzones stays on its stack, and the stack's next thread would trip on
 * it. Only the used part, from its saved stack pointer up, is unpoisoned:
 * writing the shadow of whole stacks would cost their pages. (Reading
 * the saved pointer costs no fault: the record's page is mapped.) */
static void unpoison_frames(const gr__g *g, const gr__stack *st)
{
    char *top = st->lo + st->size, *from = st->lo;

    if (!gr__ctx_started(&g->ctx))
        return; /* it never ran: no frames */
#if !defined(GR_CTX_UCONTEXT)
    if ((char *)g->ctx.sp - 256 > from && (char *)g->ctx.sp < top)
        from = (char *)g->ctx.sp - 256; /* below sp: the switch's own spills */
#endif
    __asan_unpoison_memory_region(from, (size_t)(top - from));
}
#endif

/* Slots and stacks back to the hub. A discarded thread's stack is found by
 * its address in the slab table, not read; its pages stay shared with the
 * parent until a new thread writes them, so it goes back cold. What the
 * thread had allocated (exit callbacks, locals) is left as it was. */
static void release_gone(gr_hub *h, const kept *k)
{
    size_t live = 0;

    for (uint32_t i = 0; i < h->nslots; i++) {
        gr__g *g = h->slots[i].g;
        gr__stack st;
        int in_guard;

        if (!g || !is_gone(k, g)) {
            live += g && g->kind == GR__KIND_GREEN;
            continue;
        }
        gr__slot_free(h, i);
        if (gr__stack_find(&h->stacks, g, &st, &in_guard)) {
#if defined(GR__ASAN)
            unpoison_frames(g, &st);
#endif
            gr__stack_put_cold(&h->stacks, &st);
        }
    }
    h->nlive = live;
    h->nfinished = 0;
}

static void drop_posts(gr_hub *h)
{
    gr__posts_fini(h);
    h->xwakes = NULL; /* woken by threads the child does not have */
    atomic_store(&h->posted, 0);
    atomic_store(&h->refs, 0);
    atomic_store(&h->notified, 0); /* a fork hook re-declares its wake sources */
    atomic_store(&h->wake_sources, 0);
    h->sleeping = h->wake_sent = 0;
    atomic_store(&h->waking, 0); /* writers that were mid-way are not here */
}

/* Close the child's copies of the parent's epoll and wake fds: never use
 * them, they are the parent's kernel objects. */
static void close_kernel_objects(gr_hub *h)
{
    gr__backend_fini(&h->backend);
    if (h->wakefd >= 0)
        close(h->wakefd);
    h->wakefd = -1;
}

/* New epoll and wake fds, made after the old ones are closed, so the
 * child never holds more fds than the parent did. */
static int renew_kernel_objects(gr_hub *h)
{
    if (gr__backend_init(&h->backend) != 0)
        return -1;
    h->wakefd = gr__eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return h->wakefd < 0 || gr__backend_add(&h->backend, h->wakefd) != 0 ? -1 : 0;
}

/* Nothing in the child could wait: say so and leave, as a child that
 * cannot exec does. */
static void fail_child(int err)
{
    gr__report(GR_REPORT_FORK, err, "fork: the child's hub could not be rebuilt: %s",
               strerror(err));
    _exit(127);
}

static void run_fork_hooks(gr_hub *h)
{
    for (gr__hub_hook *k = h->on_fork; k; k = k->next)
        k->fn(k->arg);
}

/* The hooks run between the two steps: fds they close (the DNS sockets)
 * are no longer registered anywhere, and their numbers cannot yet belong
 * to the new epoll or wake fd. */
void gr__hub_after_fork(gr_hub *h)
{
    kept k = {h->current, h->root, h->hubg};

    undo_waits(h, &k);
    keep_timers(h, &k);
    rebuild_ready(h, &k);
    release_gone(h, &k);
    drop_posts(h);
    close_kernel_objects(h);
    run_fork_hooks(h);
    if (renew_kernel_objects(h) != 0)
        fail_child(errno);
    gr__update_now(h);
}

void gr__hub_fds_lost(void)
{
    if (gr__tls_hub)
        gr__hub_after_fork(gr__tls_hub);
}

pid_t gr_fork(void)
{
    return fork(); /* the work is in the pthread_atfork child handler */
}
