/* The process-wide thread pool (gevent.threadpool): blocking work runs on
 * OS threads while the caller's green thread waits cooperatively.
 *
 * A job record is shared by two threads, the caller's hub thread and a
 * worker, and is owned by whichever finishes last. One mutex (the pool's)
 * decides the race between "the worker finished" and "the caller gave up":
 *
 *   PENDING --worker finishes--> DONE: the worker posts deliver() to the
 *       caller's hub and drops the hub ref, both under the lock; from then
 *       on the record belongs to the hub thread (caller or deliver()).
 *   PENDING --caller times out or is killed--> ABANDONED: the caller drops
 *       the hub ref and forgets the record; the worker runs discard() and
 *       frees it. Nothing touches the caller's stack or hub afterwards.
 *
 * So the hub is referenced exactly while a caller waits, and an abandoned
 * job never keeps gr_main() from returning. */
#define _GNU_SOURCE
#include "os/threadpool.h"

#include "core/core.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define IDLE_MS 10000
#define DEFAULT_THREADS 16
#define DEFAULT_QUEUE 1024
#define THREADS_MAX 4096

enum { JOB_PENDING, JOB_DONE, JOB_ABANDONED };

typedef struct job {
    struct job *next;
    gr_work_fn fn;
    void *arg;
    void (*discard)(void *result, void *arg);
    void *result;
    gr_hub *hub;
    gr__latch delivered; /* hub thread only: fired by deliver() */
    int state;           /* JOB_*, under pool.lock */
    unsigned gen;        /* fork_gen when submitted */
    uint8_t caller_gone; /* hub thread only: deliver() frees the record */
} job;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work; /* idle workers wait here */
    job *head, *tail;
    size_t queued, threads, idle;
    size_t starting; /* started, not yet looking for a job */
    size_t max_threads, max_queue;
    int64_t idle_ms;
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .idle_ms = IDLE_MS,
    .max_threads = DEFAULT_THREADS,
    .max_queue = DEFAULT_QUEUE,
};

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

/* Idle time-outs must not jump with the wall clock. */
static void init_cond(void)
{
    pthread_condattr_t a;

    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&pool.work, &a);
    pthread_condattr_destroy(&a);
}

/* Jobs submitted before the last fork, in a child: lost (see below). */
static unsigned fork_gen;

static void before_fork(void)
{
    pthread_mutex_lock(&pool.lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&pool.lock);
}

/* A forked child has none of the parent's workers, and its hub has dropped
 * the posts and references they would answer with (core/fork.c): every
 * job from before the fork is lost, queued or running. Their callers are
 * discarded threads, except perhaps a kept root, whose wait then ends
 * with its deadline or EDEADLK; abandon() knows the job by its gen. */
static void after_fork_child(void)
{
    pthread_mutex_init(&pool.lock, NULL);
    init_cond();
    pool.threads = pool.idle = pool.starting = 0;
    pool.head = pool.tail = NULL;
    pool.queued = 0;
    fork_gen++;
}

static void pool_init(void)
{
    init_cond();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* ------------------------------------------------------------- workers */

/* With the lock held. */
static struct timespec idle_until(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += pool.idle_ms / 1000;
    ts.tv_nsec += (pool.idle_ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

/* With the lock held: the next job, or NULL when this worker should leave
 * (idle too long, or the pool was shrunk below the running count). */
static job *take_job(void)
{
    struct timespec until = idle_until();
    job *j;

    while (!pool.head && pool.threads <= pool.max_threads) {
        int rc;

        pool.idle++;
        rc = pthread_cond_timedwait(&pool.work, &pool.lock, &until);
        pool.idle--;
        if (rc == ETIMEDOUT && !pool.head)
            return NULL;
    }
    if (pool.threads > pool.max_threads) {
        if (pool.head) /* someone else must take it: we might have been the one signalled */
            pthread_cond_signal(&pool.work);
        return NULL;
    }
    j = pool.head;
    if (!(pool.head = j->next))
        pool.tail = NULL;
    pool.queued--;
    return j;
}

/* Runs on the caller's hub thread. */
static void deliver(void *arg)
{
    job *j = arg;

    if (j->caller_gone) {
        free(j);
        return;
    }
    gr__latch_fire(&j->delivered, GR__WAKE_DONE);
}

/* With the lock held, after fn returned: hand the result over, or clean up
 * after a caller that gave up. May drop and retake the lock. */
static void finish(job *j)
{
    gr_hub *hub = j->hub;

    if (j->state == JOB_ABANDONED) {
        pthread_mutex_unlock(&pool.lock);
        if (j->discard)
            j->discard(j->result, j->arg);
        free(j);
        pthread_mutex_lock(&pool.lock);
        return;
    }
    j->state = JOB_DONE;
    /* Post and unref under the lock: a caller that sees DONE may return at
     * once, and its hub may then go away, so we must be done with it. The
     * delivery itself wakes the caller too: the unref goes with the post,
     * under the hub's lock, which the hub takes before running it. */
    while (gr__hub_post_unref(hub, deliver, j) != 0)
        usleep(1000); /* ENOMEM: the caller cannot be left waiting */
}

static void *worker(void *arg)
{
    job *j;

    (void)arg;
    pthread_setname_np(pthread_self(), "grove-pool");
    pthread_mutex_lock(&pool.lock);
    pool.starting--;
    while ((j = take_job())) {
        pthread_mutex_unlock(&pool.lock);
        j->result = j->fn(j->arg);
        pthread_mutex_lock(&pool.lock);
        finish(j);
    }
    pool.threads--;
    pthread_mutex_unlock(&pool.lock);
    return NULL;
}

/* With the lock held. Workers block every signal, so signals go to the
 * application's threads and blocking calls in jobs see no EINTR. */
static int start_worker(void)
{
    sigset_t all, old;
    pthread_attr_t a;
    pthread_t t;
    int rc;

    sigfillset(&all);
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = gr__pthread_create(&t, &a, worker, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
    if (rc != 0)
        return rc;
    pool.threads++;
    pool.starting++;
    return 0;
}

/* With the lock held: wake or start workers for the queued jobs. Jobs
 * queued beyond the idle workers and those still starting get new
 * threads, up to the limit. When a thread cannot be started, the job
 * waits for one of those there are. */
static int staff(void)
{
    int rc = 0;

    if (pool.idle)
        pthread_cond_signal(&pool.work);
    while (pool.queued > pool.idle + pool.starting && pool.threads < pool.max_threads)
        if ((rc = start_worker()) != 0)
            break;
    return pool.threads ? 0 : rc;
}

static int enqueue(job *j)
{
    int rc;

    pthread_once(&pool_once, pool_init);
    pthread_mutex_lock(&pool.lock);
    j->gen = fork_gen;
    if (pool.max_queue && pool.queued >= pool.max_queue) {
        pthread_mutex_unlock(&pool.lock);
        errno = EAGAIN;
        return -1;
    }
    if (pool.tail)
        pool.tail->next = j;
    else
        pool.head = j;
    pool.tail = j;
    pool.queued++;
    if ((rc = staff()) != 0) {
        /* No thread at all to run it: take it back. It is the only one. */
        pool.head = pool.tail = NULL;
        pool.queued = 0;
        pthread_mutex_unlock(&pool.lock);
        errno = EAGAIN;
        return -1;
    }
    pthread_mutex_unlock(&pool.lock);
    return 0;
}

/* -------------------------------------------------------------- callers */

/* The caller's wait ended without a result: give the job up, unless the
 * worker finished in the meantime, in which case its result is taken. */
static int abandon(job *j, void **result)
{
    gr_hub *hub = j->hub;
    int err = errno;

    pthread_mutex_lock(&pool.lock);
    if (j->gen != fork_gen) {
        /* Lost in a fork: no worker and no deliver() will ever see it. */
        int done = j->state == JOB_DONE;

        pthread_mutex_unlock(&pool.lock);
        if (done && result)
            *result = j->result;
        free(j);
        errno = err;
        return done ? 0 : -1;
    }
    if (j->state == JOB_PENDING) {
        j->state = JOB_ABANDONED;
        pthread_mutex_unlock(&pool.lock);
        /* j is the worker's from the unlock on: it may be freed already. */
        gr_hub_unref(hub);
        errno = err;
        return -1;
    }
    pthread_mutex_unlock(&pool.lock);
    /* DONE: deliver() is already posted and will free the record. */
    if (result)
        *result = j->result;
    j->caller_gone = 1;
    return 0;
}

int gr_threadpool_run(gr_work_fn fn, void *arg, void **result,
                      void (*discard)(void *result, void *arg), int64_t deadline)
{
    gr_hub *h;
    job *j;

    if (!fn) {
        errno = EINVAL;
        return -1;
    }
    if (!(h = gr_hub_current()))
        return -1;
    /* Only the hub context is refused here. A killed caller or a past
     * deadline still queues the job and then gives it up at once, so
     * ETIMEDOUT and ECANCELED always mean "fn runs, then discard". */
    if (gr__in_hub_callback())
        return gr__enter();
    if (!(j = gr__calloc(1, sizeof *j))) {
        errno = ENOMEM;
        return -1;
    }
    *j = (job){.fn = fn, .arg = arg, .discard = discard, .hub = h};
    gr_hub_ref(h); /* the worker will post to us */
    if (enqueue(j) != 0) {
        gr_hub_unref(h);
        free(j);
        return -1;
    }
    if (gr__latch_wait(&j->delivered, GR__WAKE_DONE, deadline, "thread pool") < 0)
        return abandon(j, result);
    if (result)
        *result = j->result;
    free(j);
    return 0;
}

int gr_threadpool_size(size_t max_threads, size_t max_queue)
{
    if (max_threads == 0 || max_threads > THREADS_MAX) {
        errno = EINVAL;
        return -1;
    }
    pthread_once(&pool_once, pool_init);
    pthread_mutex_lock(&pool.lock);
    pool.max_threads = max_threads;
    pool.max_queue = max_queue;
    if (pool.threads > max_threads)
        pthread_cond_broadcast(&pool.work); /* the extra idle ones leave */
    else if (pool.queued)
        staff();
    pthread_mutex_unlock(&pool.lock);
    return 0;
}

void gr__threadpool_set_idle_ms(int64_t ms)
{
    pthread_once(&pool_once, pool_init);
    pthread_mutex_lock(&pool.lock);
    pool.idle_ms = ms > 0 ? ms : IDLE_MS;
    pthread_mutex_unlock(&pool.lock);
}
