/* grove: green threads for C.
 *
 * Code written in plain blocking style runs in green threads; a hub per OS
 * thread switches between them whenever one would block, waiting on epoll
 * and timers when none can run.
 *
 * Conventions that hold for every function below:
 * - Errors: functions return -1 (or NULL) and set errno. The errno values
 *   are listed per function.
 * - Time: int64_t milliseconds on the monotonic clock (see gr_now()).
 *   Every blocking call takes an absolute deadline: -1 waits forever, 0 or
 *   any time already past tries once and fails with ETIMEDOUT.
 * - Cancellation: gr_kill() makes every current and future blocking call of
 *   the target fail with ECANCELED (gr_join of a thread that has already
 *   finished excepted: it never waits, so clean-up code can collect finished
 *   children). ETIMEDOUT and ECANCELED stay distinct.
 * - Memory: calls that create the thread's hub fail with ENOMEM (or the
 *   error of epoll_create1/eventfd, such as EMFILE) when it cannot be made.
 * - Threads: a hub and its green threads belong to one OS thread. Handles
 *   and every object below are hub-local and use no atomics, unless a
 *   function says it is thread-safe.
 * - Ownership: stated per function. Handles are generation-checked
 *   integers: using one after its green thread is gone fails with ESRCH,
 *   never touches freed memory. */
#ifndef GROVE_H
#define GROVE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GR_API __attribute__((visibility("default")))
#else
#define GR_API
#endif

#define GROVE_VERSION_MAJOR 0
#define GROVE_VERSION_MINOR 1
#define GROVE_VERSION_PATCH 0

/* ------------------------------------------------------------------ time */

/* Current time in ms on the monotonic clock, as cached by the hub at the
 * start of its current loop iteration (a green thread that computes for a
 * long time sees a stale value; gr_now_update() refreshes it). Without a
 * hub on this thread, reads the clock. Never fails. */
GR_API int64_t gr_now(void);

/* Read the monotonic clock now, refresh the hub's cached time with it and
 * return it. Costs one clock read (vDSO, no system call). */
GR_API int64_t gr_now_update(void);

/* --------------------------------------------------------- green threads */

/* A green thread handle: > 0 when valid. Generation-checked: after the
 * thread has been joined (or has exited detached), the handle is stale and
 * every call taking it fails with ESRCH, even if the slot is reused. */
typedef int64_t gr_t;

/* The function a green thread runs. Its return value is the thread's
 * result, handed to gr_join() and to on-exit callbacks. */
typedef void *(*gr_fn)(void *arg);

/* The result of a green thread killed before it ever ran (its function was
 * never called). */
#define GR_CANCELED ((void *)(intptr_t)-1)

/* Default stack size of a green thread: 128 KiB. Only the pages a thread
 * touches cost memory; see docs/design.md for the trade-off. grove keeps up
 * to 1.25 KiB at the top of every stack for the thread's own record. */
#define GR_STACK_DEFAULT ((size_t)128 * 1024)
/* Smallest and largest stack size accepted by gr_spawn_opts. */
#define GR_STACK_MIN ((size_t)16 * 1024)
#define GR_STACK_MAX ((size_t)1024 * 1024 * 1024)

/* gr_opts.flags: the thread is detached from birth (see gr_detach()). */
#define GR_DETACHED 1u

/* Longest name kept for a green thread (longer names are truncated). */
#define GR_NAME_MAX 31

/* Options for gr_spawn_opts(). Zero-initialise and set what you need. */
typedef struct gr_opts {
    const char *name;  /* copied; NULL names it "g<N>", N its slot number */
    size_t stack_size; /* bytes; 0 = the configured default */
    unsigned flags;    /* GR_DETACHED */
} gr_opts;

/* Create a green thread running fn(arg) and put it at the back of the
 * ready queue; it first runs when the caller next blocks or yields, with
 * errno 0 and the default floating-point environment. Creates the thread's
 * hub if there is none. arg is passed through untouched and
 * stays owned by the caller. Returns the handle, or -1 with errno ENOMEM
 * (no memory or no address space for a stack; see docs/design.md on
 * vm.max_map_count) or EINVAL (fn is NULL). */
GR_API gr_t gr_spawn(gr_fn fn, void *arg);

/* gr_spawn() with options (opts may be NULL). name is copied. Errors as
 * gr_spawn(), plus EINVAL for a stack_size outside
 * [GR_STACK_MIN, GR_STACK_MAX] or unknown flags. */
GR_API gr_t gr_spawn_opts(gr_fn fn, void *arg, const gr_opts *opts);

/* gr_spawn_opts(), but the thread becomes ready only delay_ms after now
 * (gevent's spawn_later). Killing it before then means fn never runs.
 * Errors as gr_spawn_opts(), plus EINVAL for a negative delay. */
GR_API gr_t gr_spawn_later(int64_t delay_ms, gr_fn fn, void *arg, const gr_opts *opts);

/* Wait until g has finished and store its result in *result (result may be
 * NULL). A successful join releases g: the handle becomes stale. Several
 * green threads may join g at once; all get the result. Errors: ESRCH
 * (stale or unknown handle), EDEADLK (g is the caller; or called from a hub
 * callback; or, in the root context, nothing could ever wake the caller),
 * EINVAL (g is detached, or is a thread's root context), ETIMEDOUT,
 * ECANCELED (the caller was killed; joining a thread that has already
 * finished still succeeds). On error g is untouched. */
GR_API int gr_join(gr_t g, void **result, int64_t deadline);

/* Cancel g: its current blocking call (if any) and every later one fail
 * with ECANCELED, so it unwinds through its own clean-up code and returns.
 * A thread that never blocks is cancelled at its next blocking call; one
 * that has not started yet never runs its function (its result is
 * GR_CANCELED). Does not wait: join to wait. Killing a finished thread, or
 * one already killed, does nothing and succeeds. A thread may kill itself.
 * Errors: ESRCH (stale handle), EINVAL (g is a root context). */
GR_API int gr_kill(gr_t g);

/* Let g's resources go as soon as it finishes, without a join. The handle
 * is stale once g has finished (and the joiners already waiting, if any,
 * have taken its result). Errors: ESRCH, EINVAL (already detached, or a
 * root context). */
GR_API int gr_detach(gr_t g);

/* The running green thread. On a thread's own stack (its root context, as
 * in main()) this is the root's handle: the root can block like any green
 * thread, but cannot be joined, killed or detached. Fails with -1/EPERM
 * inside a hub callback. Creates the hub if there is none (-1/ENOMEM). */
GR_API gr_t gr_self(void);

/* Move the caller to the back of the ready queue and run the threads in
 * front of it. Returns 0, or -1/ECANCELED when the caller has been killed
 * (it still yields first, so a killed loop cannot starve the others), or
 * -1/EDEADLK inside a hub callback. */
GR_API int gr_yield(void);

/* Block until the deadline (-1: until killed). Returns 0 when the deadline
 * is reached (at once if it has passed), or -1 with ECANCELED when killed,
 * ETIMEDOUT when an enclosing gr_timeout region ends first, EDEADLK inside a
 * hub callback, or in the root context when nothing could ever wake it. */
GR_API int gr_sleep(int64_t deadline);

/* 0 if the caller may go on, -1/ECANCELED if it has been killed. For loops
 * that compute without blocking and want to honour gr_kill() early. */
GR_API int gr_testcancel(void);

/* Copy g's name (NUL-terminated, truncated to fit) into buf of size len.
 * Returns 0, or -1 with ESRCH, or EINVAL when buf is NULL or len is 0. */
GR_API int gr_name(gr_t g, char *buf, size_t len);

/* Callback run when a green thread finishes (gevent's link). */
typedef void (*gr_exit_fn)(gr_t g, void *result, void *arg);

/* Call cb(g, result, arg) when g finishes, in g itself after its function
 * returned (so cb may block, but a killed g's blocking calls fail with
 * ECANCELED), in the order registered. If g has already finished, cb runs
 * now in the caller. grove copies nothing behind arg. Errors: ESRCH,
 * EINVAL (cb NULL or g a root context), ENOMEM. */
GR_API int gr_on_exit(gr_t g, gr_exit_fn cb, void *arg);

/* --------------------------------------------- green-thread local storage */

/* Largest number of keys that may exist at once (process-wide). */
#define GR_KEYS_MAX 64

/* Create a key for a per-green-thread value, process-wide (usable on every
 * hub; thread-safe). Every green thread starts with NULL for it. When a
 * thread with a non-NULL value finishes, destructor(value) runs in it (if
 * destructor is not NULL). Returns the key (>= 0) or -1/EAGAIN when
 * GR_KEYS_MAX keys exist. */
GR_API int gr_key_create(void (*destructor)(void *value));

/* Delete a key. Values still set are not destroyed (as pthread_key_delete).
 * Thread-safe. Errors: EINVAL for an unknown key. */
GR_API int gr_key_delete(int key);

/* Set the calling green thread's value for key. grove stores the pointer
 * only. Errors: EINVAL (unknown key), EPERM (in a hub callback), ENOMEM. */
GR_API int gr_local_set(int key, void *value);

/* The calling green thread's value for key; NULL if unset, if the key is
 * unknown or deleted, or in a hub callback. */
GR_API void *gr_local_get(int key);

/* ---------------------------------------------------------------- hub */

/* A hub: the scheduler of one OS thread. Created lazily by the first grove
 * call that needs it, owned by its thread. */
typedef struct gr_hub gr_hub;

/* Run fn(arg) in a new green thread, then keep running the hub until fn
 * has returned and no green thread is left (and no gr_hub_ref() is held),
 * then free the hub. Stores fn's result in *result (result may be NULL).
 * Call it from a thread's own stack, not from a green thread. Returns 0,
 * or -1 with EINVAL (fn NULL, or called from a green thread or a hub
 * callback), ENOMEM, or EDEADLK: every remaining green thread was blocked
 * with nothing that could ever wake it; grove printed which, killed them
 * all so they could unwind, and waited for them before returning. */
GR_API int gr_main(gr_fn fn, void *arg, void **result);

/* The calling OS thread's hub, created if needed. NULL with errno ENOMEM
 * (or the error of epoll_create1/eventfd) on failure. */
GR_API gr_hub *gr_hub_current(void);

/* Run cb(arg) on hub's thread, in the hub itself, soon. Thread-safe: this
 * is how other OS threads talk to a hub. cb runs outside any green thread:
 * it must not block (blocking calls fail with EDEADLK) but may spawn, kill
 * and post. Callbacks run in the order posted. The caller must hold a
 * gr_hub_ref() or otherwise know the hub is still alive. Returns 0, or -1
 * with ENOMEM, or EINVAL when hub or cb is NULL. */
GR_API int gr_hub_post(gr_hub *hub, void (*cb)(void *arg), void *arg);

/* Declare (ref) and retract (unref) an outside source of wake-ups, such as
 * another OS thread that will gr_hub_post() to hub. While a ref is held the
 * hub is kept alive by gr_main() and never reports EDEADLK. Thread-safe. */
GR_API void gr_hub_ref(gr_hub *hub);
GR_API void gr_hub_unref(gr_hub *hub);

/* Counters of the calling thread's hub, for monitoring and tests. */
typedef struct gr_stats {
    size_t threads;        /* green threads alive (not finished), root excluded */
    size_t finished;       /* finished, waiting to be joined */
    size_t ready;          /* in the ready queue */
    size_t timers;         /* armed timers */
    size_t fd_waiters;     /* green threads waiting on file descriptors */
    size_t stacks_mapped;  /* stacks carved from mapped slabs */
    size_t stacks_guarded; /* of which have a guard page */
    size_t stacks_free;    /* of which are pooled, ready for reuse */
    size_t switches;       /* switches to ready threads since the hub was created */
} gr_stats;

/* Fill *st with the calling thread's hub counters (all zero if it has no
 * hub). Returns 0, or -1/EINVAL when st is NULL. */
GR_API int gr_stats_get(gr_stats *st);

/* ------------------------------------------------------- configuration */

/* gr_config.stack_guard */
#define GR_GUARD_AUTO 0   /* guard pages while they fit in vm.max_map_count */
#define GR_GUARD_ALWAYS 1 /* every stack guarded; spawn fails with ENOMEM beyond */
#define GR_GUARD_NEVER 2  /* no guard pages; canary checks only */

typedef struct gr_config {
    size_t stack_size;    /* default for spawns; 0 = GR_STACK_DEFAULT */
    int stack_guard;      /* GR_GUARD_AUTO (0), GR_GUARD_ALWAYS, GR_GUARD_NEVER */
    int no_overflow_trap; /* 1: do not install the SIGSEGV stack-overflow reporter */
} gr_config;

/* Set process-wide defaults. Call before any hub exists (EBUSY otherwise).
 * Errors: EINVAL for a bad field, EBUSY. Thread-safe. */
GR_API int gr_configure(const gr_config *cfg);

/* ------------------------------------------------------ waiting on fds */

#define GR_READ 1
#define GR_WRITE 2

/* Block until fd is readable (GR_READ) and/or writable (GR_WRITE), as poll()
 * would report it. Returns the ready subset of events (> 0); errors and
 * hang-ups count as ready for both directions, the peer's shutdown of its
 * writing side as readable. Any number of green threads may wait on the
 * same fd. A descriptor epoll cannot wait on (a regular file) is always
 * ready. Errors: EBADF (fd invalid, or gr_close()/gr_fd_forget() called on
 * it while waiting), EINVAL (events empty or unknown bits, or fd >= 4194304),
 * ENOMEM, ETIMEDOUT, ECANCELED, EDEADLK (hub callback), or what
 * epoll_ctl(2) reports when registering fd (such as ENOSPC). fd stays owned
 * by the caller. */
GR_API int gr_wait_fd(int fd, int events, int64_t deadline);

/* Close fd after waking every green thread waiting on it (their
 * gr_wait_fd() fails with EBADF) and removing it from the hub, so the fd
 * number can be reused at once without confusion. Use it instead of
 * close() for any fd a green thread may have waited on. Returns close()'s
 * result. */
GR_API int gr_close(int fd);

/* Tell the hub to forget fd (which someone else is about to close or has
 * just closed): waiters are woken with EBADF. Returns 0. */
GR_API int gr_fd_forget(int fd);

/* ---------------------------------------------------------- Timeout */

/* A scoped time limit (gevent.Timeout): while the region is open, every
 * blocking call of the green thread that opened it fails with ETIMEDOUT
 * when it would have to wait past the region's deadline, whatever deadline
 * the call was given (a call that need not wait, such as a wait on a ready
 * fd, still succeeds). Regions nest; the earliest deadline wins. The struct
 * lives in the caller (normally on its stack) between begin and end; its
 * fields are private. */
typedef struct gr_timeout {
    int64_t deadline_;  /* this region's own deadline */
    int64_t effective_; /* min of it and every outer region's */
    struct gr_timeout *outer_;
    void *owner_;
} gr_timeout;

/* Open a region ending at deadline (-1: none). Returns 0, or -1/EPERM in a
 * hub callback. */
GR_API int gr_timeout_begin(gr_timeout *t, int64_t deadline);

/* Close the region t (the innermost one). Returns 1 if its deadline had
 * passed, 0 if not, -1/EINVAL if t is not the innermost open region of the
 * caller. */
GR_API int gr_timeout_end(gr_timeout *t);

/* 1 if the region's deadline has passed (by the hub's cached time). */
GR_API int gr_timeout_expired(const gr_timeout *t);

#ifdef __cplusplus
}
#endif

#endif
