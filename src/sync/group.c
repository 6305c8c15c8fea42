/* Group and Pool (gevent.pool). Members are spawned detached and tracked by
 * an on-exit callback that runs in the member as it finishes. A pool slot
 * freed by a finishing member is handed to the first parked spawner
 * ("reserved" until it spawns), so a spawner arriving later cannot take it
 * first. */
#include "sync/sync.h"

#include <stdlib.h>

typedef struct member {
    struct member *prev, *next;
    gr_group *grp;
    gr_t g;
    gr_exit_fn hook; /* pool.c's: the member's result goes somewhere */
    void *hook_arg;
} member;

struct gr_group {
    size_t limit;           /* 0: no limit */
    size_t size;            /* members alive */
    size_t reserved;        /* slots handed to woken spawners that have yet to spawn */
    member *members, *last; /* in spawn order, so kill goes in that order */
    gr__wq joiners, spawners;
    gr__wq available; /* gr_group_wait_available: woken whole, taking no slot */
};

gr_group *gr_group_new(size_t limit)
{
    gr_group *grp = gr__calloc(1, sizeof *grp);

    if (!grp) {
        errno = ENOMEM;
        return NULL;
    }
    grp->limit = limit;
    return grp;
}

int gr_group_free(gr_group *grp)
{
    if (!grp)
        return 0;
    if (grp->size || grp->reserved || !gr__wq_empty(&grp->joiners) ||
        !gr__wq_empty(&grp->spawners) || !gr__wq_empty(&grp->available)) {
        errno = EBUSY;
        return -1;
    }
    free(grp);
    return 0;
}

static int full(const gr_group *grp)
{
    return grp->limit && grp->size + grp->reserved >= grp->limit;
}

/* Give free slots to parked spawners, first come first served; tell the
 * threads waiting for room if some is left. */
static void admit_spawners(gr_group *grp)
{
    while (!full(grp) && gr__handoff(&grp->spawners, NULL) == 0)
        grp->reserved++;
    if (!full(grp) && !gr__wq_empty(&grp->available))
        gr__wake_all(&grp->available, NULL, 0);
}

static void unlink_member(gr_group *grp, member *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else
        grp->members = m->next;
    if (m->next)
        m->next->prev = m->prev;
    else
        grp->last = m->prev;
}

/* Runs in the finishing member: the last time it touches the group. */
static void member_exited(gr_t g, void *result, void *arg)
{
    member *m = arg;
    gr_group *grp = m->grp;

    if (m->hook)
        m->hook(g, result, m->hook_arg);
    unlink_member(grp, m);
    free(m);
    grp->size--;
    admit_spawners(grp);
    if (grp->size == 0)
        gr__wake_all(&grp->joiners, NULL, 0);
}

/* Spawn into a slot already counted as free or reserved. */
static gr_t spawn_member(gr_group *grp, gr_fn fn, void *arg, const gr_opts *opts, gr_exit_fn hook,
                         void *hook_arg)
{
    gr_opts o = opts ? *opts : (gr_opts){0};
    member *m = gr__malloc(sizeof *m);
    gr_t g;

    if (!m) {
        errno = ENOMEM;
        return -1;
    }
    o.flags |= GR_DETACHED;
    if ((g = gr_spawn_opts(fn, arg, &o)) < 0) {
        free(m);
        return -1;
    }
    *m = (member){grp->last, NULL, grp, g, hook, hook_arg};
    if (gr_on_exit(g, member_exited, m) != 0) {
        /* It has not run yet: killed now, it never will. */
        gr_kill(g);
        free(m);
        errno = ENOMEM;
        return -1;
    }
    if (grp->last)
        grp->last->next = m;
    else
        grp->members = m;
    grp->last = m;
    grp->size++;
    return g;
}

gr_t gr__group_spawn_hooked(gr_group *grp, gr_fn fn, void *arg, const gr_opts *opts,
                            int64_t deadline, gr_exit_fn hook, void *hook_arg)
{
    gr__waiter w;
    gr_t g;

    if (!fn) {
        errno = EINVAL;
        return -1;
    }
    /* Spawning is not a wait: like gr_spawn it works in killed threads and
     * hub callbacks. Only waiting for room is a cancellation point. Nobody
     * is parked while the pool is not full (freed slots are handed over at
     * once), so taking a free slot here is not barging. */
    if (full(grp)) {
        if (gr__wait_queue(&grp->spawners, &w, deadline, "pool spawn") != 0)
            return -1;
        grp->reserved--;
    }
    g = spawn_member(grp, fn, arg, opts, hook, hook_arg);
    if (g < 0) {
        int err = errno;

        admit_spawners(grp); /* the slot we could not use goes on */
        errno = err;
    }
    return g;
}

gr_t gr_group_spawn(gr_group *grp, gr_fn fn, void *arg, const gr_opts *opts, int64_t deadline)
{
    return gr__group_spawn_hooked(grp, fn, arg, opts, deadline, NULL, NULL);
}

static int is_member(const gr_group *grp, gr_t g)
{
    for (const member *m = grp->members; m; m = m->next)
        if (m->g == g)
            return 1;
    return 0;
}

int gr_group_join(gr_group *grp, int64_t deadline)
{
    gr__waiter w;

    if (grp->size == 0)
        return 0;
    /* In a hub callback gr_self fails (-1 is nobody's handle); the wait
     * then fails with EDEADLK. */
    if (is_member(grp, gr_self())) {
        errno = EDEADLK; /* it would wait for itself */
        return -1;
    }
    return gr__wait_queue(&grp->joiners, &w, deadline, "group join");
}

void gr_group_kill(gr_group *grp)
{
    /* gr_kill never switches nor runs exit callbacks, so the list holds. */
    for (member *m = grp->members; m; m = m->next)
        gr_kill(m->g);
}

size_t gr_group_size(const gr_group *grp)
{
    return grp->size;
}

size_t gr_group_free_count(const gr_group *grp)
{
    if (!grp->limit)
        return SIZE_MAX;
    return full(grp) ? 0 : grp->limit - grp->size - grp->reserved;
}

int gr_group_wait_available(gr_group *grp, int64_t deadline)
{
    gr__waiter w;

    /* Woken whenever room is left after the parked spawners had theirs;
     * a newcomer may have taken it before we run: wait again then. */
    while (full(grp))
        if (gr__wait_queue(&grp->available, &w, deadline, "pool room") != 0)
            return -1;
    return 0;
}
