/* The core's contract with the layers above it (io, net, sync, os, http,
 * patch): how a blocking call waits, and how a waker ends the wait. Every
 * blocking call of grove is a few lines around one of these calls:
 *
 *   gr__wait_queue   push a waiter on a queue, park, unlink (sync objects,
 *                    joins, server stops);
 *   gr__latch_wait   park until a latch fires with a named reason (a result
 *                    delivered by another thread, a lookup finished);
 *   gr_wait_fd       park until a descriptor is ready (public: grove.h).
 *
 * Each checks the caller (a hub callback cannot block: EDEADLK; a killed
 * thread fails with ECANCELED, except in a shielded region), applies the
 * deadline and any enclosing gr_timeout region, and leaves nothing linked
 * behind on failure. The green-thread record and the hub's layout are the
 * core's own (layout.h): nothing outside src/core sees them. */
#ifndef GROVE_CORE_H
#define GROVE_CORE_H

#include "arch/fail.h" /* every allocation and failing system call goes through it */
#include "grove.h"

#include <errno.h>
#include <stdint.h>

#define GR__LIKELY(x) __builtin_expect(!!(x), 1)
#define GR__UNLIKELY(x) __builtin_expect(!!(x), 0)

struct gr__g; /* a green thread's record: opaque outside src/core */

/* ----------------------------------------------------------- the caller */

/* Precondition of every blocking call, checked before its first system
 * call so a killed thread fails even when the call could proceed: creates
 * the hub if needed (-1/ENOMEM...), then -1/EDEADLK in a hub callback and
 * -1/ECANCELED when the caller was killed outside a shielded region. */
int gr__enter(void);

/* -1/ECANCELED when the caller was killed outside a shielded region, else
 * 0 (also without a hub, or in a hub callback). For calls that take or hand
 * over something, which must fail in a killed thread even when they need
 * not wait. */
int gr__check_cancel(void);

/* gr__check_cancel, then -1/ETIMEDOUT if deadline has passed (by the
 * hub's cached time): for calls that must not start what nobody will wait
 * for, before they take locks or queue work. */
int gr__check_wait(int64_t deadline);

/* The running green thread's handle (the root's on a thread's own stack),
 * or -1 with errno err_in_hub in a hub callback (ENOMEM: no hub). */
gr_t gr__self(int err_in_hub);

/* 1 when the caller runs in a hub callback, where nothing may block. */
int gr__in_hub_callback(void);

/* 1 when the caller is a green thread (not a thread's root context, not a
 * hub callback, not a thread without a hub). Never creates a hub. Inline
 * for its most common "no" (a thread without a hub): the patch library
 * asks it on every call it interposes. */
extern __thread gr_hub *gr__tls_hub __attribute__((tls_model("initial-exec")));
int gr__in_green_thread_slow(void);
static inline int gr__in_green_thread(void)
{
    return gr__tls_hub && gr__in_green_thread_slow();
}

/* 1 if t is a green thread of this hub that has not finished and has not
 * been killed: it will run again and can be relied on to look at state. */
int gr__will_run(gr_t t);

/* ----------------------------------------------------------- wait queues
 * A waiter lives on the stack of the green thread that waits (so waiting
 * allocates nothing); gr_waitq_ (grove.h) is the queue, embedded in every
 * sync object. A waker takes the first waiter whose thread is still
 * parked: one that timed out or was killed is skipped, so it never
 * swallows a unit or an item meant for a live waiter; it unlinks itself
 * when it runs. */
typedef gr_waitq_ gr__wq;

typedef struct gr__waiter {
    struct gr__waiter *prev, *next;
    gr__wq *q; /* the queue it is linked in */
    struct gr__g *g;
    int events; /* what it waits for (fd waits) */
    int fired;  /* what woke it (fd waits) */
    void *data; /* a value handed over, in either direction */
    unsigned char linked;
} gr__waiter;

/* Wait in q until a waker hands w over (gr__wq_pop + gr__wake, or
 * gr__handoff: what was handed over is in w->data) with status 0: returns
 * 0. Otherwise -1 with the status a waker gave (EPIPE...), ETIMEDOUT (the
 * deadline or a gr_timeout region), ECANCELED, or EDEADLK (a hub callback,
 * or a root context that nothing can wake); w is then off the queue. A
 * killed caller fails before queueing; a deadline already past fails with
 * ETIMEDOUT without parking, so a hub callback may try once. w->data is
 * left as the caller set it until a waker writes it. */
int gr__wait_queue(gr__wq *q, gr__waiter *w, int64_t deadline, const char *what);

/* gr__wait_queue, deaf to kills and gr_timeout regions and without a
 * deadline, for the rare wait that must get what it waits for whatever
 * happens (a condition waiter taking its lock back). Fails only with
 * EDEADLK (nothing can ever wake the caller). */
int gr__wait_queue_deaf(gr__wq *q, gr__waiter *w, const char *what);

/* The first waiter of q whose thread is still parked, unlinked; NULL if
 * none. The caller hands it over with gr__wake. */
gr__waiter *gr__wq_pop(gr__wq *q);

/* End w's wait: its gr__wait_queue returns 0 for status 0, else -1 with
 * errno status. w must come from gr__wq_pop. */
void gr__wake(gr__waiter *w, int status);

/* The handle of the green thread waiting in w (a lock hands itself over to
 * it before waking it). */
gr_t gr__waiter_thread(const gr__waiter *w);

/* Hand data to the first parked waiter of q (status 0). Returns 0, or -1
 * when nobody is parked there. */
int gr__handoff(gr__wq *q, void *data);

/* Wake every parked waiter of q with data and status; unlink them all.
 * Returns how many were woken. */
size_t gr__wake_all(gr__wq *q, void *data, int status);

static inline int gr__wq_empty(const gr__wq *q)
{
    return q->head_ == NULL;
}

/* ---------------------------------------------------------------- latches
 * A latch ends one green thread's wait from anywhere on its hub (another
 * green thread, a hub callback posted by another OS thread, a c-ares
 * callback), with a reason, without the firer knowing the thread. Reasons
 * are bits: each fire adds one, and the waiter takes what has fired when
 * it looks. A waiter chooses which reasons end its waits; the others are
 * only recorded. */
enum gr__wake_reason {
    GR__WAKE_DONE = 1,    /* what was waited for is there */
    GR__WAKE_CHANGED = 2, /* the set of things waited on changed: look again */
    GR__WAKE_ROOM = 4,    /* a resource came free */
    GR__WAKE_STOP = 8,    /* the owner is shutting down */
};

typedef struct gr__latch {
    gr_t waiter;      /* armed by (a handle: a latch may outlive its
                       * waiter, as in a forked child); 0 when disarmed */
    unsigned wake_on; /* the reasons that end the waiter's waits */
    unsigned fired;   /* reasons fired and not yet taken */
} gr__latch;

/* Arm l for the calling green thread: from now on, firing a reason in
 * wake_on ends whatever wait the caller is in, which then fails with EINTR
 * (gr__latch_take tells why). For a thread that waits on other things
 * (descriptors, a poll) and must also hear the latch. */
void gr__latch_arm(gr__latch *l, unsigned wake_on);
void gr__latch_disarm(gr__latch *l);

/* Wait until a reason in wake_on has fired: returns those reasons (> 0)
 * and takes them, or -1 with ETIMEDOUT, ECANCELED or EDEADLK. Returns at
 * once if one has already fired; one that fires as the wait times out
 * still counts. l is left armed as it was. */
int gr__latch_wait(gr__latch *l, unsigned wake_on, int64_t deadline, const char *what);

/* Take (return and clear) every reason fired so far, without waiting. */
unsigned gr__latch_take(gr__latch *l);

/* The reasons fired so far, left in place. */
static inline unsigned gr__latch_fired(const gr__latch *l)
{
    return l->fired;
}

/* Fire reason: record it, and end the armed waiter's wait if reason is
 * one it wakes on. Never switches, never fails: call it from anything that
 * runs on l's hub. */
void gr__latch_fire(gr__latch *l, unsigned reason);

/* ---------------------------------------------------- cross-thread waits
 * For objects used by green threads of several hubs and by plain OS
 * threads (core/xwait.c explains the protocol). The object holds a lock
 * (an int, 0 when free) and a gr_xwaitq_; every call on it takes the lock.
 * A waiter: lock; outcome there? take it, unlock; else gr__xq_push(q, w)
 * and gr__xwait(q, lock, w, ...), which unlocks. A waker: lock;
 * w = gr__xq_pop(q); hand something over with gr__xwake(w, data, status)
 * (still under the lock, or after it: w is claimed either way); unlock.
 * Waking after the unlock (gr__xwake_later) is what lets a woken waiter
 * free the object at once: the waker no longer touches it. */
typedef gr_xwaitq_ gr__xq;

typedef struct gr__xwaiter {
    struct gr__xwaiter *prev, *next; /* in the object's queue, under its lock */
    struct gr__xwaiter *rnext;       /* in its hub's remote wakes, under the hub's lock */
    gr_hub *hub;                     /* the waiter's hub; NULL: a plain OS thread */
    struct gr__g *g;
    void *data; /* handed over by the waker (or to it: a sender's item) */
    int status; /* 0, or the errno the wait fails with */
    int state;  /* waiting, claimed, done (atomic; the futex word) */
    unsigned char linked, queued;
} gr__xwaiter;

void gr__xlock(int *lock);
void gr__xunlock(int *lock);

/* Wait until the lock is free. A caller that saw, without the lock, what a
 * locked section published (a flag set under it) knows then that the
 * section is over: the object is no longer touched and may be freed. */
void gr__xlock_settle(const int *lock);

/* Append the caller's waiter (under the object's lock). w->data is cleared:
 * set it after the push to hand something to the waker. */
void gr__xq_push(gr__xq *q, gr__xwaiter *w);

/* Claim the first waiter, or NULL (under the object's lock). */
gr__xwaiter *gr__xq_pop(gr__xq *q);

/* End a claimed waiter's wait: its gr__xwait returns 0 with w->data =
 * data for status 0, else -1 with errno status. Any thread. */
void gr__xwake(gr__xwaiter *w, void *data, int status);

/* Wakes to make once the object's lock is released, so that the lock is
 * not held across another hub's lock and a write(2): gr__xwake_later
 * records a claimed waiter's outcome (under the lock), gr__xwake_flush
 * (after it) ends the waits, in the order recorded. */
typedef struct gr__xwakes {
    gr__xwaiter *head, *tail;
} gr__xwakes;

void gr__xwake_later(gr__xwakes *l, gr__xwaiter *w, void *data, int status);
void gr__xwake_flush(gr__xwakes *l);

/* Called with the lock held and w pushed; unlocks, waits until woken, the
 * deadline (ETIMEDOUT) or a kill (ECANCELED), or fails with EDEADLK in a
 * hub callback. A waiter woken as it gives up counts as woken. On return
 * the lock is not held and w is in no queue. */
int gr__xwait(gr__xq *q, int *lock, gr__xwaiter *w, int64_t deadline, const char *what);

/* ----------------------------------------------- watching several things
 * For calls that wait for the first of several things (gr_wait_any): the
 * caller links a watch in each thing it waits for, parks once, unlinks
 * them all, and looks again. A watch takes nothing: watch queues are woken
 * whole (gr__wake_all), never handed a unit or an item, so a watch never
 * swallows what a getter, a receiver or a joiner was owed; a thread's
 * watches are not its joiners (they do not collect its result). A watch
 * lives on the caller's stack or heap, one per thing watched. */
typedef struct gr__watch {
    union {
        gr__waiter w[2]; /* a queue: w[0]; a descriptor: its readers, its writers */
        struct {
            gr__xwaiter xw;
            gr__xq *q;
            int *lock;
        } x; /* a cross-thread queue */
    } u;
    unsigned char kind; /* what is linked (watch.c); 0: nothing */
} gr__watch;

/* Link a watch of the caller in q, woken by gr__wake_all(q, ...). */
void gr__watch_queue(gr__watch *wt, gr__wq *q);

/* 1 if green thread t of the caller's hub has finished, 0 if not, -1 with
 * ESRCH (stale handle) or EINVAL (a root context). */
int gr__thread_done(gr_t t);

/* Watch green thread t finish: 1 if it has finished already (nothing is
 * linked), 0 when linked, -1 with ESRCH (stale handle) or EINVAL (a root
 * context). */
int gr__watch_thread(gr__watch *wt, gr_t t);

/* Watch descriptor fd for an edge of events (GR_READ, GR_WRITE): 0 when
 * linked, 1 when it is always ready (a regular file: nothing linked), -1
 * with EBADF, EINVAL, ENOMEM or what epoll_ctl(2) reports. Whether it is
 * ready now is the caller's to ask (poll(2)) before it parks. */
int gr__watch_fd(gr__watch *wt, int fd, int events);

/* Link a watch in a cross-thread queue, with its lock held (as
 * gr__xq_push); the object's waker pops and wakes it as any waiter. */
void gr__watch_xq(gr__watch *wt, gr__xq *q, int *lock);

/* Park once until something watched wakes the caller (0), or -1 with
 * ETIMEDOUT (the deadline, a gr_timeout region), ECANCELED, or EDEADLK (a
 * hub callback; a root context nothing can wake). A deadline already past
 * fails without parking. The watches stay linked: gr__unwatch them. */
int gr__watch_park(gr__watch *wts, size_t n, int64_t deadline, const char *what);

/* Unlink every watch of wts, linked or not (kind 0 is skipped). */
void gr__unwatch(gr__watch *wts, size_t n);

/* 1 if some green thread is still parked in q (a channel's sender). */
int gr__wq_has_parked(const gr__wq *q);

/* ---------------------------------------------------- readable callbacks
 * Waiting for readability without a green thread: a server's idle
 * keep-alive connection need not hold a thread and its stack while it waits
 * for its next request (src/net/server.c parks it so). The hub calls
 * w->fn(w, ready) once, in hub context, at fd's next readable edge (bytes,
 * the peer's shutdown, an error or hang-up; ready holds GR_READ and
 * whatever else the edge reported), and forgets the watch just before:
 * fn may watch again, spawn a green thread, close fd; it must not block.
 * The record is the caller's (embedded in its connection record) and must
 * stay valid while watched. One watch per fd. */
typedef struct gr__fd_cb {
    void (*fn)(struct gr__fd_cb *w, int ready);
} gr__fd_cb;

/* Watch fd. When an edge has been seen since the caller's last read ended
 * with EAGAIN (or fd was never waited on), the kernel is asked first: fd
 * readable now returns 1 and installs nothing (read it). Otherwise 0: w is
 * installed. -1 with errno: EBADF, EINVAL (fd beyond the hub's table),
 * EBUSY (fd already watched), ENOMEM, or what registering fd with epoll
 * reports (ENOSPC). A watch counts as a wait: the hub polls for it and
 * reports no deadlock while one is installed. gr_close(fd) and
 * gr_fd_forget(fd) drop it without calling fn. */
int gr__fd_on_readable(int fd, gr__fd_cb *w);

/* ---------------------------------------------------------- stack depth
 * How deep the calling green thread's stack goes over a stretch of work (a
 * server samples a request's): gr__stack_mark gives the stack's pages below
 * the caller's current depth back to the kernel; gr__stack_deepest then
 * returns how many bytes below the stack's top have been written since
 * (words written as zero count only to their page's top). Both cost a
 * system call: sample. 0 outside a green thread and under ASan. */
void gr__stack_mark(void);
size_t gr__stack_deepest(void);

/* ------------------------------------------------------- pooled blocks
 * Big buffers that come and go with green threads (an HTTP connection's,
 * freed when it idles), taken from the hub's stack pool rather than the
 * heap: reused last-freed-first while warm, their memory given back by the
 * hub's trim once they stay pooled (docs/design.md, "Stacks"), and never
 * fragmenting the heap, where freed buffers between long-lived records
 * would keep their pages. gr__block_get returns size usable bytes (8-byte
 * aligned; pages untouched until used) and fills *entry, which
 * gr__block_put takes back; NULL/ENOMEM. Put on the hub that gave it. */
void *gr__block_get(size_t size, uintptr_t *entry);
void gr__block_put(uintptr_t entry, size_t size);

/* ------------------------------------------------------------- the hub */

/* Run fn(arg) when h is destroyed (after its green threads are gone, before
 * its memory is freed), for subsystems that keep per-hub state, such as the
 * DNS channel. Hooks run newest first. Returns 0 or -1/ENOMEM. */
int gr__hub_on_destroy(gr_hub *h, void (*fn)(void *arg), void *arg);

/* Run fn(arg) in a forked child, on the hub of the thread that forked,
 * once the hub is rebuilt (core/fork.c): for subsystems whose per-hub state
 * holds kernel objects shared with the parent (the DNS channel's sockets).
 * Hooks stay registered for later forks. Returns 0 or -1/ENOMEM. */
int gr__hub_on_fork(gr_hub *h, void (*fn)(void *arg), void *arg);

/* The process has closed every fd above 2 (a daemon starting): give this
 * thread's hub new kernel objects, as in a forked child, and run the fork
 * hooks. */
void gr__hub_fds_lost(void);

/* 1 if t names a context of this hub that has not finished: a green
 * thread, or the thread's root. */
int gr__handle_alive(gr_t t);

/* gr_hub_post(h, cb, arg) and gr_hub_unref(h) in one step, for a thread
 * that holds a reference until its result is posted: done apart, the post
 * may run, its waiter return and the hub be freed before the unref touches
 * it. Returns 0 (the reference is dropped), or -1/ENOMEM (it is kept). */
int gr__hub_post_unref(gr_hub *h, void (*cb)(void *), void *arg);

/* Asynchronous notifications, for a subsystem woken by something that is
 * not a thread of grove's (a signal handler): gr__hub_notify(h, bits)
 * records bits and wakes h, and is async-signal-safe; h then calls fn(arg,
 * bits) in hub context, with every bit notified since the last call. One
 * fn per hub (the signal module's); returns -1/EBUSY if another is set. */
int gr__hub_set_notify(gr_hub *h, void (*fn)(void *arg, unsigned bits), void *arg);
void gr__hub_notify(gr_hub *h, unsigned bits);

/* Declare (+1) or retract (-1) a source of wake-ups the hub cannot see,
 * such as a signal a green thread waits for: while any is declared, the
 * hub does not report a deadlock (gr_main's EDEADLK), but unlike
 * gr_hub_ref it does not keep gr_main from returning. */
void gr__hub_wake_source(gr_hub *h, int delta);

/* ---------------------------------------------------------- reports
 * What grove tells the program goes to the hook of gr_report_hook_set
 * (report.c), by default a "grove: " line on stderr. */

/* A misuse (GR_REPORT_MISUSE), naming the running green thread. */
void gr__warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A report of kind (GR_REPORT_*) about errno value err (or 0), naming the
 * running green thread, if any. Not for signal handlers. */
void gr__report(int kind, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Deliver a report built by the caller (to the hook, or printed).
 * Async-signal-safe when r->async_signal_safe is set: the hook is read
 * with one atomic load, and the default printer only calls write(2). */
void gr__report_deliver(const gr_report *r);

/* ------------------------------------------------------------ inspection */

/* Up to max return addresses where green thread t of the caller's hub
 * stands, innermost first: the caller's own through backtrace(3); a
 * suspended thread's from its saved context, following frame pointers
 * while they stay inside its stack (code built without them shows its
 * callers only down to the first frame that omits one). Returns the count
 * (0 for a thread that has not started or has finished), or -1/ESRCH. */
int gr__thread_backtrace(gr_t t, void **frames, int max);

#endif
