/* Pools that hand results back (gevent's Pool.apply_async, map and
 * imap_unordered), on group members whose finish runs a hook (group.c):
 * the hook runs in the member as it finishes, whether its function ran or
 * it was killed first, so no result is ever lost and nothing waits for a
 * member that will never report. */
#include "sync/sync.h"

#include <stdlib.h>

/* --------------------------------------------------------- apply_async */

typedef struct apply {
    gr_fn fn;
    void *arg;
    gr_async *done;
    int ran;
} apply;

static void *apply_main(void *arg)
{
    apply *a = arg;

    a->ran = 1;
    return a->fn(a->arg);
}

static void apply_finished(gr_t g, void *result, void *arg)
{
    apply *a = arg;

    (void)g;
    if (a->ran)
        gr_async_set(a->done, result);
    else
        gr_async_set_error(a->done, ECANCELED);
    free(a);
}

gr_t gr_group_apply_async(gr_group *grp, gr_fn fn, void *arg, gr_async *done, const gr_opts *opts,
                          int64_t deadline)
{
    apply *a;
    gr_t g;

    if (!grp || !fn || !done) {
        errno = EINVAL;
        return -1;
    }
    if (!(a = gr__malloc(sizeof *a))) {
        errno = ENOMEM;
        return -1;
    }
    *a = (apply){fn, arg, done, 0};
    if ((g = gr__group_spawn_hooked(grp, apply_main, a, opts, deadline, apply_finished, a)) < 0) {
        int err = errno;

        free(a);
        errno = err;
    }
    return g;
}

/* ---------------------------------------------------------------- imap */

typedef struct task {
    struct gr_imap *m;
    size_t index;
} task;

typedef struct done_entry {
    size_t index;
    void *result;
} done_entry;

struct gr_imap {
    gr_group *grp;
    gr_fn fn;
    void *const *args;
    size_t n;
    size_t started;   /* inputs spawned so far, in order */
    size_t running;   /* spawned and not finished */
    size_t returned;  /* results handed out by gr_imap_next */
    done_entry *done; /* results not yet handed out: a FIFO of at most n */
    size_t head, tail;
    task *tasks;
    gr_t *members;  /* by input: its member, to kill at gr_imap_free */
    gr__wq waiters; /* gr_imap_next; gr_imap_free waiting for the last */
};

static void *task_main(void *arg)
{
    task *t = arg;

    return t->m->fn(t->m->args ? t->m->args[t->index] : NULL);
}

/* In the finishing member (its result, or GR_CANCELED if it never ran). */
static void task_finished(gr_t g, void *result, void *arg)
{
    task *t = arg;
    gr_imap *m = t->m;

    (void)g;
    m->done[m->tail++] = (done_entry){t->index, result};
    m->members[t->index] = 0;
    m->running--;
    gr__wake_all(&m->waiters, NULL, 0);
}

gr_imap *gr_group_imap_unordered(gr_group *grp, gr_fn fn, void *const *args, size_t n)
{
    gr_imap *m;

    if (!grp || !fn) {
        errno = EINVAL;
        return NULL;
    }
    if (!(m = gr__calloc(1, sizeof *m)) || !(m->done = gr__malloc((n ? n : 1) * sizeof *m->done)) ||
        !(m->tasks = gr__malloc((n ? n : 1) * sizeof *m->tasks)) ||
        !(m->members = gr__calloc(n ? n : 1, sizeof *m->members))) {
        if (m) {
            free(m->done);
            free(m->tasks);
        }
        free(m);
        errno = ENOMEM;
        return NULL;
    }
    m->grp = grp;
    m->fn = fn;
    m->args = args;
    m->n = n;
    return m;
}

/* Start the next inputs while the pool has room; wait for room (until
 * deadline) only when none of ours runs, since then no result can come. */
static int start_more(gr_imap *m, int64_t deadline)
{
    while (m->started < m->n) {
        task *t = &m->tasks[m->started];
        gr_t g;

        *t = (task){m, m->started};
        g = gr__group_spawn_hooked(m->grp, task_main, t, NULL, m->running ? 0 : deadline,
                                   task_finished, t);
        if (g < 0)
            return m->running && errno == ETIMEDOUT ? 0 : -1;
        m->members[m->started++] = g;
        m->running++;
    }
    return 0;
}

int gr_imap_next(gr_imap *m, size_t *index, void **result, int64_t deadline)
{
    gr__waiter w;

    if (!m) {
        errno = EINVAL;
        return -1;
    }
    for (;;) {
        if (m->head != m->tail) {
            done_entry e = m->done[m->head++];

            m->returned++;
            if (index)
                *index = e.index;
            if (result)
                *result = e.result;
            return 0;
        }
        if (m->returned == m->n) {
            errno = ENOENT;
            return -1;
        }
        if (gr__check_cancel() != 0 || start_more(m, deadline) != 0)
            return -1;
        if (m->head == m->tail && m->running &&
            gr__wait_queue(&m->waiters, &w, deadline, "imap result") != 0)
            return -1;
    }
}

int gr_imap_free(gr_imap *m)
{
    gr__waiter w;

    if (!m)
        return 0;
    for (size_t i = 0; i < m->started; i++)
        if (m->members[i])
            gr_kill(m->members[i]);
    /* They must not outlive m: wait, deaf to the caller's own kill. */
    while (m->running) {
        if (gr__in_hub_callback() || gr__wait_queue_deaf(&m->waiters, &w, "imap free") != 0) {
            errno = EDEADLK;
            return -1;
        }
    }
    free(m->done);
    free(m->tasks);
    free(m->members);
    free(m);
    return 0;
}

/* ----------------------------------------------------------------- map */

int gr_group_map(gr_group *grp, gr_fn fn, void *const *args, void **results, size_t n,
                 int64_t deadline)
{
    gr_imap *m;
    size_t i;
    void *r;
    int rc, err;

    if (!results && n) {
        errno = EINVAL;
        return -1;
    }
    /* It would have to wait for its members, which cannot run meanwhile. */
    if (n && gr__in_hub_callback()) {
        errno = EDEADLK;
        return -1;
    }
    if (!(m = gr_group_imap_unordered(grp, fn, args, n)))
        return -1;
    while ((rc = gr_imap_next(m, &i, &r, deadline)) == 0)
        results[i] = r;
    err = errno;
    /* The rest are killed, and their results dropped, on failure. */
    if (gr_imap_free(m) != 0)
        return -1;
    if (err == ENOENT)
        return 0;
    errno = err;
    return -1;
}
