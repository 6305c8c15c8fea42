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

#include <netdb.h>
#include <stdio.h>
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <sys/un.h>

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

/* gr_spawn_opts(), but the thread becomes ready only at when, an absolute
 * time in ms as gr_now() (gevent's spawn_later, with a deadline instead of
 * a delay: gr_spawn_at(gr_now() + 100, ...)). A time already reached makes
 * it ready at once, as gr_spawn_opts. Killing it before then means fn never
 * runs (its result is GR_CANCELED). Errors as gr_spawn_opts(), plus EINVAL
 * for a negative when. */
GR_API gr_t gr_spawn_at(int64_t when, gr_fn fn, void *arg, const gr_opts *opts);

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

/* Shielded regions, for clean-up that must block after a kill (gevent's
 * `finally: child.join()`): between gr_shield_begin() and gr_shield_end()
 * the caller's blocking calls ignore gr_kill() (a kill that lands meanwhile
 * neither wakes nor fails them), never their deadlines or an enclosing
 * gr_timeout region. The kill is kept: once the outermost region has ended,
 * the next blocking call fails with ECANCELED. Regions nest; each begin
 * needs its end in the same green thread. Give every call inside a
 * deadline: a shielded thread cannot be killed out of a wait.
 * gr_shield_begin returns 0, or -1 with EPERM in a hub callback, ENOMEM (no
 * hub could be made) or EOVERFLOW (65535 regions open). gr_shield_end
 * returns 1 if the caller has been killed, 0 if not, or -1/EINVAL when no
 * region is open. */
GR_API int gr_shield_begin(void);
GR_API int gr_shield_end(void);

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

/* gr_thread_info.state */
#define GR_THREAD_NEW 0      /* spawned by gr_spawn_at, waiting for its start time */
#define GR_THREAD_READY 1    /* in the ready queue */
#define GR_THREAD_RUNNING 2  /* the caller itself */
#define GR_THREAD_BLOCKED 3  /* parked in a blocking call */
#define GR_THREAD_FINISHED 4 /* its function has returned; not yet joined */

/* What gr_thread_info_get tells about a green thread. */
typedef struct gr_thread_info {
    int state;   /* GR_THREAD_* */
    int killed;  /* gr_kill was called on it */
    int started; /* its function was called (0: killed before it ran) */
    int detached;
    void *result;      /* FINISHED: its result (GR_CANCELED if it never ran); else NULL */
    const char *wait;  /* BLOCKED: what it waits for ("join", "queue get", "fd"...;
                        * static text); else NULL */
    int64_t deadline;  /* BLOCKED: when its wait times out (gr_now scale), -1: never */
    size_t stack_size; /* usable bytes of its stack (0 for a root context) */
    char name[GR_NAME_MAX + 1];
} gr_thread_info;

/* Look at green thread g of the calling thread's hub without consuming it
 * (gevent's ready, successful, value, dead): a later gr_join works as
 * before. A root context's handle is accepted (state RUNNING or BLOCKED,
 * started 1). Never blocks. Returns 0, or -1 with ESRCH (stale handle) or
 * EINVAL (info NULL). */
GR_API int gr_thread_info_get(gr_t g, gr_thread_info *info);

/* --------------------------------------------- green-thread local storage */

/* Largest number of keys that may exist at once (process-wide). */
#define GR_LOCAL_KEYS_MAX 64

/* Create a key for a per-green-thread value, process-wide (usable on every
 * hub; thread-safe). Every green thread starts with NULL for it. When a
 * thread with a non-NULL value finishes, destructor(value) runs in it (if
 * destructor is not NULL). Returns the key (>= 0) or -1/EAGAIN when
 * GR_LOCAL_KEYS_MAX keys exist. */
GR_API int gr_local_key_create(void (*destructor)(void *value));

/* Delete a key. Values still set are not destroyed (as pthread_key_delete).
 * Thread-safe. Errors: EINVAL for an unknown key. */
GR_API int gr_local_key_delete(int key);

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

/* fork(2) for a program that uses grove (a plain fork() does the same
 * work, through pthread_atfork; this name is for readers). In the child,
 * the caller (a green thread, or the thread's root context) goes on alone,
 * as POSIX does for OS threads: every other green thread of its hub is
 * discarded without running again (its clean-up code does not run; what it
 * held stays as it was: memory, fds, locks), a thread that was joining one
 * gets ESRCH, finished threads stay joinable. The child's hub gets new
 * epoll and wake fds; the thread pool, the DNS channel and other OS
 * threads' hubs are gone and come back on demand. The parent is untouched.
 * Returns as fork: the child's pid in the parent, 0 in the child, or -1
 * with errno (EAGAIN, ENOMEM) in the parent. If the child cannot rebuild
 * its hub (no memory for an epoll fd), it prints why and exits with 127. */
GR_API pid_t gr_fork(void);

/* gr_daemonize flags, as daemon(3)'s arguments. */
#define GR_DAEMON_NOCHDIR 1u /* stay in the current directory (default: "/") */
#define GR_DAEMON_NOCLOSE 2u /* keep fds above 2 open (default: close them) */

/* Detach from the terminal and the session (daemon(3), done right): fork,
 * setsid, fork again, chdir("/"), standard fds to /dev/null, every other fd
 * closed (grove's own are made anew). The calling process exits with status
 * 0 once the daemon is set up; the daemon (the caller's green thread, alone
 * as after gr_fork) returns 0. Returns -1 with errno in the calling process
 * (EINVAL for unknown flags, the errno of a failed fork, setsid, chdir or
 * open: then no daemon runs). Blocks the whole OS thread while it waits for
 * the daemon to report. */
GR_API int gr_daemonize(unsigned flags);

/* Run fn(args[i]) under gr_main on n new OS threads, each with its own
 * hub, and wait for all of them (the calling thread just waits: it need
 * not have a hub). results[i] receives each thread's result (results may
 * be NULL; args may be NULL, then every fn gets NULL). Returns 0, or -1
 * with errno: EINVAL (n is 0 or fn NULL), the error of pthread_create
 * (EAGAIN: the threads already started are waited for first), or the first
 * failed gr_main's (ENOMEM, EDEADLK...). Thread-safe. */
GR_API int gr_hubs_run(size_t n, gr_fn fn, void *const *args, void **results);

/* Counters of the calling thread's hub, for monitoring and tests. */
typedef struct gr_stats {
    size_t threads;          /* green threads alive (not finished), root excluded */
    size_t finished;         /* finished, waiting to be joined */
    size_t ready;            /* in the ready queue */
    size_t timers;           /* armed timers */
    size_t fd_waiters;       /* green threads waiting on file descriptors */
    size_t stacks_mapped;    /* stacks carved from mapped slabs */
    size_t stacks_guarded;   /* of which have a guard page */
    size_t stacks_free;      /* of which are pooled, ready for reuse */
    size_t switches;         /* switches to ready threads since the hub was created */
    size_t blocking_reports; /* times the blocking monitor reported this hub */
} gr_stats;

/* Fill *st with the calling thread's hub counters (all zero if it has no
 * hub). Returns 0, or -1/EINVAL when st is NULL. */
GR_API int gr_stats_get(gr_stats *st);

/* ------------------------------------------------------- configuration */

/* gr_config.stack_guard */
#define GR_GUARD_AUTO 0   /* guard pages while they fit in vm.max_map_count */
#define GR_GUARD_ALWAYS 1 /* every stack guarded; spawn fails with ENOMEM beyond */
#define GR_GUARD_NEVER 2  /* no guard pages; canary checks only */

/* gr_config.idle_spin_us: an idle hub polls for events this long before
 * it sleeps in the kernel, so an event that is about to come (the next
 * connection, the answer to a request just sent) is taken without the
 * wake-up of a sleeping CPU, which costs the waker too. Costs at most that
 * much CPU time each time the hub runs out of work. */
#define GR_IDLE_SPIN_DEFAULT_US 20
#define GR_IDLE_SPIN_MAX_US 10000

typedef struct gr_config {
    size_t stack_size;    /* default for spawns; 0 = GR_STACK_DEFAULT */
    int stack_guard;      /* GR_GUARD_AUTO (0), GR_GUARD_ALWAYS, GR_GUARD_NEVER */
    int no_overflow_trap; /* 1: do not install the SIGSEGV stack-overflow reporter */
    int idle_spin_us;     /* 0 = GR_IDLE_SPIN_DEFAULT_US; -1 = never spin; at most
                           * GR_IDLE_SPIN_MAX_US */
    int max_blocking_ms;  /* blocking monitor: report a hub that has not switched for
                           * this long; 0 = the GROVE_MAX_BLOCKING_MS environment
                           * variable, or off; -1 = off */
    int monitor_signal;   /* the real-time signal the monitor sends a stuck hub's
                           * thread for a backtrace; 0 = SIGRTMAX - 3; -1 = none (a
                           * report without a backtrace) */
} gr_config;

/* Set process-wide defaults. Call before any hub exists (EBUSY otherwise).
 * Errors: EINVAL for a bad field, EBUSY. Thread-safe. */
GR_API int gr_configure(const gr_config *cfg);

/* --------------------------------------------------------------- reports */

/* What grove reports (gr_report.kind). */
#define GR_REPORT_MISUSE                                                                           \
    1                        /* a call made where it cannot work (blocking in a hub                \
                              * callback, a thread joining itself) */
#define GR_REPORT_DEADLOCK 2 /* gr_main found every green thread blocked for good */
#define GR_REPORT_OVERFLOW 3 /* a stack overflow: the process dies after the hook */
#define GR_REPORT_SERVER 4   /* a server's accept loop: out of descriptors, or ended */
#define GR_REPORT_HANDLER 5  /* an HTTP handler failed (answered 500, or cut short) */
#define GR_REPORT_BLOCKING 6 /* the blocking monitor: a hub has not switched for long */
#define GR_REPORT_FORK 7     /* a forked child could not rebuild its hub: it exits */

/* A report (gevent's handle_error). Valid during the hook call only. */
typedef struct gr_report {
    int kind;                /* GR_REPORT_* */
    const char *message;     /* without the "grove: " prefix; lines joined by
                              * '\n', no newline at the end */
    gr_t thread;             /* the green thread concerned (a handle of the hub
                              * it ran on), or 0 */
    const char *thread_name; /* its name, or NULL */
    int err;                 /* the errno value concerned, or 0 */
    int async_signal_safe;   /* 1: the hook runs in a signal handler or on an
                              * overflowed stack (GR_REPORT_OVERFLOW): it may
                              * only make async-signal-safe calls, with little
                              * stack; the process dies when it returns */
} gr_report;

typedef void (*gr_report_fn)(const gr_report *r, void *arg);

/* Send every report to fn(report, arg) instead of printing it; NULL
 * restores the default, gr_report_print. The hook is called on the thread
 * where the report arises (a hub's, the blocking monitor's, a threaded
 * server's) and may be called from several at once. grove copies nothing
 * behind arg. Thread-safe; never fails. */
GR_API void gr_report_hook_set(gr_report_fn fn, void *arg);

/* The default: each line of r->message on stderr, prefixed "grove: ",
 * in one write(2). Async-signal-safe. */
GR_API void gr_report_print(const gr_report *r);

/* ------------------------------------------------------ waiting on fds */

#define GR_READ 1
#define GR_WRITE 2
/* With GR_READ and/or GR_WRITE in gr_wait_fd's events: the caller has just
 * seen EAGAIN (or knows otherwise that fd is not ready), so the hub waits
 * for the next edge without first asking the kernel about readiness it
 * remembers. Saves a poll(2) per wait on the hot path of protocol code. */
#define GR_EDGE 4

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

/* Return and forget the edges among events (GR_READ, GR_WRITE) that the hub
 * has seen on fd since the last call (all of events for an fd never waited
 * on: nothing is known, so it may be ready). For readers that skip the read
 * that would fail with EAGAIN: take the edges just before a read; if the
 * read comes back short and no edge has been seen since, nothing has
 * arrived (not even a FIN), and gr_wait_fd(fd, GR_READ | GR_EDGE, ...) may
 * wait straight away. Never fails, never blocks. */
GR_API int gr_fd_take_edges(int fd, int events);

/* Close fd after waking every green thread waiting on it (their
 * gr_wait_fd() fails with EBADF) and removing it from the hub, so the fd
 * number can be reused at once without confusion. Use it instead of
 * close() for any fd a green thread may have waited on. Returns close()'s
 * result. */
GR_API int gr_close(int fd);

/* Tell the hub to forget fd (which someone else is about to close or has
 * just closed): waiters are woken with EBADF. Returns 0. */
GR_API int gr_fd_forget(int fd);

/* poll(2) for green threads: block until one of the nfds descriptors has an
 * event in its .events (POLLIN, POLLOUT; errors and hang-ups are always
 * reported), then fill every .revents as poll() does and return how many
 * are non-zero. Entries with a negative fd are ignored. deadline 0 polls
 * once without blocking and returns 0 when nothing is ready (as poll with
 * a zero time-out), and so does reaching any deadline: the time-out of
 * poll is not an error. Errors: EINVAL (nfds over 65536, or fds NULL with
 * nfds > 0), ENOMEM, ECANCELED, EDEADLK (hub callback), ETIMEDOUT only
 * when an enclosing gr_timeout region ends first. fds stays the caller's. */
GR_API int gr_poll(struct pollfd *fds, nfds_t nfds, int64_t deadline);

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

/* ================================================================== I/O
 * Cooperative versions of the blocking calls, for descriptors in
 * non-blocking mode (grove's own sockets are; gr_fd_nonblock makes any
 * other fd so). Each behaves as its POSIX namesake, except that where the
 * call would block, the green thread waits (until deadline) and the hub
 * runs others. Each is a cancellation point and fails with ECANCELED once
 * the caller is killed, and with ETIMEDOUT at the deadline. Sends never
 * raise SIGPIPE: a write to a closed peer fails with EPIPE. Buffers stay
 * the caller's; nothing is kept after the call returns. */

/* Put fd in non-blocking, close-on-exec mode. Returns 0 or -1 (EBADF). */
GR_API int gr_fd_nonblock(int fd);

GR_API ssize_t gr_read(int fd, void *buf, size_t len, int64_t deadline);
GR_API ssize_t gr_write(int fd, const void *buf, size_t len, int64_t deadline);
GR_API ssize_t gr_readv(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
GR_API ssize_t gr_writev(int fd, const struct iovec *iov, int iovcnt, int64_t deadline);
GR_API ssize_t gr_recv(int fd, void *buf, size_t len, int flags, int64_t deadline);
GR_API ssize_t gr_send(int fd, const void *buf, size_t len, int flags, int64_t deadline);
GR_API ssize_t gr_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
                           socklen_t *addrlen, int64_t deadline);
GR_API ssize_t gr_sendto(int fd, const void *buf, size_t len, int flags,
                         const struct sockaddr *addr, socklen_t addrlen, int64_t deadline);
/* gr_recvmsg adds MSG_CMSG_CLOEXEC: received descriptors are close-on-exec. */
GR_API ssize_t gr_recvmsg(int fd, struct msghdr *msg, int flags, int64_t deadline);
GR_API ssize_t gr_sendmsg(int fd, const struct msghdr *msg, int flags, int64_t deadline);

/* sendfile(2) from a regular file in_fd to a socket out_fd: waits while
 * the socket is full. *offset as sendfile (NULL: in_fd's own offset). */
GR_API ssize_t gr_sendfile(int out_fd, int in_fd, off_t *offset, size_t count, int64_t deadline);

/* Write all len bytes, however many writes that takes. Returns 0, or -1
 * with errno (EPIPE, ECONNRESET, ETIMEDOUT, ECANCELED, ...). If done is not
 * NULL it receives the number of bytes written, on success or failure,
 * so a caller can tell how far a timed-out write got. */
GR_API int gr_write_all(int fd, const void *buf, size_t len, size_t *done, int64_t deadline);

/* Read exactly len bytes. Returns 0, or -1 with errno; EPIPE means the
 * peer closed the stream before len bytes came. *done (if not NULL)
 * receives the number of bytes read, on success or failure. */
GR_API int gr_read_exact(int fd, void *buf, size_t len, size_t *done, int64_t deadline);

/* A buffered reader over a stream fd, for protocol code: lines, delimited
 * records, exact counts. The struct lives where the caller puts it; the
 * buffer is the caller's (cap bytes, at least 64), so a reader allocates
 * nothing. Fields are private. */
typedef struct gr_reader {
    int fd_;
    char *buf_;
    size_t cap_, start_, end_;
    int eof_;
} gr_reader;

/* Set r up to read fd through buf. Returns 0, or -1/EINVAL (buf NULL or cap
 * under 64). Neither fd nor buf is owned by the reader. */
GR_API int gr_reader_init(gr_reader *r, int fd, void *buf, size_t cap);

/* Read up to len bytes: buffered bytes first, else one read of the fd.
 * Returns the count, 0 at end of stream, or -1 with errno. */
GR_API ssize_t gr_reader_read(gr_reader *r, void *buf, size_t len, int64_t deadline);

/* Read up to and including the first occurrence of delim (dlen bytes,
 * 1 <= dlen <= 64) into out (max bytes); out is not NUL-terminated.
 * Returns the length, delimiter included; 0 at end of stream with nothing
 * buffered; the bytes left when the stream ends without a delimiter (as
 * for a last line without a newline); or -1 with errno: EMSGSIZE when no
 * delimiter was found within max bytes (nothing is consumed, so the caller
 * may recover), EINVAL, ETIMEDOUT, ECANCELED or a read error. A record
 * longer than the reader's buffer cannot be found: make the buffer at
 * least as large as max. */
GR_API ssize_t gr_reader_until(gr_reader *r, const void *delim, size_t dlen, void *out, size_t max,
                               int64_t deadline);

/* gr_reader_until with "\n", and the line NUL-terminated in out (so at
 * most max - 1 bytes of line; max >= 2). */
GR_API ssize_t gr_reader_line(gr_reader *r, char *out, size_t max, int64_t deadline);

/* Bytes read from the fd but not yet consumed (to hand a connection over
 * to other code together with what was read ahead). */
GR_API size_t gr_reader_buffered(const gr_reader *r);

/* =========================================================== sockets */

/* A socket address of any family grove speaks: IPv4, IPv6, Unix. */
typedef struct gr_addr {
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
        struct sockaddr_un un;
        struct sockaddr_storage ss;
    } u;
    socklen_t len;
} gr_addr;

/* Fill a from a numeric host ("127.0.0.1", "::1", "[::1]", or NULL/"" for
 * any address, IPv6 dual-stack) and port; no name resolution. Returns 0 or
 * -1/EINVAL. */
GR_API int gr_addr_ip(gr_addr *a, const char *host, int port);

/* Fill a with a Unix-domain path (a leading '@' names an abstract socket).
 * Returns 0 or -1 with EINVAL or ENAMETOOLONG. */
GR_API int gr_addr_unix(gr_addr *a, const char *path);

/* Format a as "1.2.3.4:80", "[::1]:80" or the Unix path, NUL-terminated in
 * buf. Returns the length, or -1 with ENOSPC (buf too small; len >= 64 is
 * always enough for IP) or EAFNOSUPPORT. */
GR_API int gr_addr_format(const gr_addr *a, char *buf, size_t len);

/* socket(2), always non-blocking and close-on-exec. */
GR_API int gr_socket(int domain, int type, int protocol);

/* connect(2) on a non-blocking socket, waiting for the outcome: returns 0,
 * or -1 with the errno the kernel reports (ECONNREFUSED, ENETUNREACH,
 * EHOSTUNREACH, ETIMEDOUT from the kernel or the deadline, ...), or
 * ECANCELED. */
GR_API int gr_connect(int fd, const struct sockaddr *addr, socklen_t len, int64_t deadline);

/* accept4(2) waiting for a connection. The new fd is non-blocking and
 * close-on-exec. peer (may be NULL) receives the peer's address. Errors:
 * as accept(2) (EMFILE, ENFILE, ...), ETIMEDOUT, ECANCELED, EBADF when the
 * listening socket is closed with gr_close while waiting. */
GR_API int gr_accept(int fd, gr_addr *peer, int64_t deadline);

/* A listening socket: SO_REUSEADDR, and SO_REUSEPORT when reuseport is 1
 * (several processes may then listen on one port). backlog <= 0 means
 * SOMAXCONN. Returns the fd or -1 with errno (EADDRINUSE, EACCES, ...). */
GR_API int gr_listen(const gr_addr *addr, int backlog, int reuseport);

/* gr_listen on a numeric host and TCP port (port 0: any free port, see
 * gr_local_port). */
GR_API int gr_tcp_listen(const char *host, int port, int backlog);

/* The local port a socket is bound to, or -1. */
GR_API int gr_local_port(int fd);

/* Connect to host:port over TCP, like Python's create_connection: resolve
 * host (names, or numeric addresses), then try each address in turn,
 * IPv6 and IPv4 interleaved, starting the next attempt 250 ms after the
 * previous one if it has not finished (Happy Eyeballs, RFC 8305); the
 * first to connect wins and the others are abandoned. Returns a connected,
 * non-blocking socket with TCP_NODELAY set, or -1 with the errno of the
 * last failure (ECONNREFUSED, ...), ETIMEDOUT, ECANCELED, EADDRNOTAVAIL
 * when the name does not resolve (NXDOMAIN, no address), EAGAIN when the
 * resolver failed temporarily, EINVAL for a bad port. */
GR_API int gr_tcp_connect(const char *host, int port, int64_t deadline);

/* <netdb.h> defines it only under POSIX feature macros (_POSIX_C_SOURCE);
 * declared here so that this header compiles in strict C as well. */
struct addrinfo;

/* gr_tcp_connect after name resolution: Happy Eyeballs over the addresses
 * of the list res (from gr_getaddrinfo or getaddrinfo; only ai_family,
 * ai_protocol, ai_addr and ai_addrlen are read, ai_next links them). res
 * stays the caller's. Returns a connected, non-blocking socket with
 * TCP_NODELAY, or -1 with errno as gr_tcp_connect (EADDRNOTAVAIL for an
 * empty list). */
GR_API int gr_tcp_connect_addrinfo(const struct addrinfo *res, int64_t deadline);

/* Connect to a Unix-domain stream socket. */
GR_API int gr_unix_connect(const char *path, int64_t deadline);

/* A UDP socket bound to host:port (numeric; port 0 for any). */
GR_API int gr_udp_bind(const char *host, int port);

/* setsockopt TCP_NODELAY. Returns 0 or -1. */
GR_API int gr_tcp_nodelay(int fd, int on);

/* ============================================================ servers */

/* A connection handler: runs in its own green thread with a connected,
 * non-blocking socket. The server closes fd when the handler returns (so
 * the handler must not close it; dup() it to keep it). peer is valid for
 * the handler's run. */
typedef void (*gr_handler_fn)(int fd, const gr_addr *peer, void *arg);

/* Options for gr_server_new; zero-initialise. */
typedef struct gr_server_opts {
    size_t pool;       /* at most this many handlers at once (gevent's spawn=N);
                          the accept loop waits for room. 0: unbounded */
    size_t stack_size; /* handler stacks; 0: the default */
    const char *name;  /* handler thread names; NULL: "conn" */
} gr_server_opts;

typedef struct gr_server gr_server;

/* A stream server (gevent's StreamServer) on the listening socket fd,
 * which it owns from the call on: it is closed on any failure too. A
 * negative fd (a failed listen passed straight in, as in
 * gr_server_new(gr_tcp_listen(...), ...)) returns NULL with errno as that
 * call left it (EADDRINUSE, say). Otherwise NULL with EINVAL (NULL
 * handler, stack size out of range) or ENOMEM. */
GR_API gr_server *gr_server_new(int fd, gr_handler_fn handler, void *arg,
                                const gr_server_opts *opts);

/* Start accepting in a green thread of its own and return at once.
 * Errors: EINVAL (already started), ENOMEM. */
GR_API int gr_server_start(gr_server *s);

/* Accept in the calling green thread until gr_server_stop (returns 0) or
 * the caller is killed (-1/ECANCELED); also -1 with EINVAL (already
 * started or stopped) or ETIMEDOUT (an enclosing gr_timeout region). On
 * EMFILE/ENFILE the server logs once, backs off (10 ms doubling to 1 s,
 * and at once when a handler exits) and keeps serving what it has; it
 * recovers when descriptors free up. */
GR_API int gr_server_serve(gr_server *s);

/* Graceful stop: stop accepting and close the listening socket, let
 * handlers finish until deadline, then kill the rest and wait for them to
 * unwind. Returns 0, or -1/ETIMEDOUT if handlers had to be killed, or
 * -1/ECANCELED if the caller was killed (handlers are then killed but not
 * waited for). A handler may stop its own server. */
GR_API int gr_server_stop(gr_server *s, int64_t deadline);

/* Counters of a server. */
typedef struct gr_server_stats {
    size_t active;     /* handlers running */
    uint64_t accepted; /* connections accepted (datagrams, for a datagram server) */
    uint64_t fd_limit; /* accepts that failed with EMFILE or ENFILE */
    size_t parked;     /* of the active ones, idle connections held without a
                          green thread (the HTTP server's keep-alive ones) */
    size_t stack_hwm;  /* the deepest a handler call's stack went, in bytes
                          (the first call and one in 1,024 are measured; 0 under
                          ASan) */
} gr_server_stats;

GR_API int gr_server_stats_get(const gr_server *s, gr_server_stats *st);

/* Free a stopped (or never started) server. EBUSY if it is running. */
GR_API int gr_server_free(gr_server *s);

/* A datagram handler: one datagram, its sender, the server's socket to
 * reply on (gr_sendto). data is valid for the handler's run. */
typedef void (*gr_datagram_fn)(int fd, const void *data, size_t len, const gr_addr *peer,
                               void *arg);

/* A datagram server (gevent's DatagramServer) on a bound UDP (or Unix
 * datagram) socket fd, which it owns from the call on, as gr_server_new
 * (closed on failure; a negative fd returns NULL with errno untouched).
 * Each datagram, up to max_size bytes (0: 65535), runs the handler in a
 * green thread, at most opts->pool at once (0: one at a time, in arrival
 * order). Start, serve, stop and free with the gr_server functions. */
GR_API gr_server *gr_datagram_server_new(int fd, gr_datagram_fn handler, void *arg, size_t max_size,
                                         const gr_server_opts *opts);

/* ================================================================ DNS */

/* Resolvers (gr_resolver_set): c-ares on the hub, the default, or the
 * system's getaddrinfo run in the thread pool. */
#define GR_RESOLVER_ARES 0
#define GR_RESOLVER_THREAD 1

/* Choose the resolver for the calling OS thread's later lookups. The
 * environment variable GROVE_RESOLVER=ares|thread sets the initial choice.
 * Returns 0 or -1/EINVAL. */
GR_API int gr_resolver_set(int which);

/* Use these name servers instead of /etc/resolv.conf's, for the calling OS
 * thread's c-ares resolver: "ip[:port],ip[:port]..." (as c-ares's
 * ares_set_servers_ports_csv). NULL restores resolv.conf. The setting is
 * per OS thread and applies to lookups started afterwards. Returns 0 or -1
 * (EINVAL: not parsable; ENOMEM). */
GR_API int gr_resolver_servers(const char *csv);

/* getaddrinfo(3) that blocks only the green thread: honours /etc/hosts and
 * /etc/resolv.conf. Returns 0 or an EAI_* code as getaddrinfo does
 * (EAI_NONAME for NXDOMAIN, ...); EAI_SYSTEM with errno ETIMEDOUT at the
 * deadline or ECANCELED when killed (the lookup is abandoned), EINVAL when
 * res is NULL, EDEADLK in a hub callback. Free *res with gr_freeaddrinfo,
 * never freeaddrinfo. */
GR_API int gr_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                          struct addrinfo **res, int64_t deadline);

GR_API void gr_freeaddrinfo(struct addrinfo *res);

/* getnameinfo(3) that blocks only the green thread (reverse lookups).
 * Returns 0 or an EAI_* code, with EAI_SYSTEM/errno as gr_getaddrinfo. */
GR_API int gr_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, size_t hostlen,
                          char *serv, size_t servlen, int flags, int64_t deadline);

/* ========================================================= thread pool */

/* A function run on a pool OS thread: it may block as it likes. */
typedef void *(*gr_work_fn)(void *arg);

/* Run fn(arg) on the process-wide thread pool and wait, cooperatively, for
 * its result (stored in *result if result is not NULL). Returns 0, or -1
 * with ETIMEDOUT or ECANCELED: the caller returns at once; fn still runs to
 * completion on its thread and, if discard is not NULL, discard(its result,
 * arg) is then called on that thread, so nothing leaks. ETIMEDOUT and
 * ECANCELED always mean exactly that, even for a deadline already past or
 * a caller already killed (the job is queued and given up at once); a job
 * that finishes just as its caller gives up returns 0. arg must stay valid
 * until fn (and discard) are done with it, which after a time-out is later
 * than the call. Also ENOMEM, EAGAIN when the pool's queue is full, and
 * EDEADLK in a hub callback. */
GR_API int gr_threadpool_run(gr_work_fn fn, void *arg, void **result,
                             void (*discard)(void *result, void *arg), int64_t deadline);

/* Size the pool: at most max_threads OS threads (default 16), and at most
 * max_queue jobs waiting for one (default 1024; 0: unlimited). Threads are
 * started on demand and leave after 10 s idle. Returns 0 or -1/EINVAL. */
GR_API int gr_threadpool_size(size_t max_threads, size_t max_queue);

/* Regular files through the pool, since epoll cannot wait on them. As
 * open(2) (O_CLOEXEC added), pread(2)/pwrite(2) when offset >= 0, else
 * read(2)/write(2); at most 16 MiB moves per call (more gives a short
 * count). The data goes through a buffer of the job's own, so a caller that
 * times out or is killed returns at once and its buffer is never touched
 * afterwards. Unlike gr_threadpool_run, they fail before doing anything when
 * the caller is already killed or the deadline has passed. */
GR_API int gr_file_open(const char *path, int flags, mode_t mode, int64_t deadline);
GR_API ssize_t gr_file_read(int fd, void *buf, size_t len, off_t offset, int64_t deadline);
GR_API ssize_t gr_file_write(int fd, const void *buf, size_t len, off_t offset, int64_t deadline);

/* ============================================================ signals
 * Signals delivered to green threads (docs/process.md). Sets of signals
 * are bit masks: GR_SIG(SIGTERM) | GR_SIG(SIGHUP). While a hub has a
 * subscription to a signal, grove's handler (installed with SA_RESTART) is
 * the signal's disposition, process-wide; the previous one is saved and
 * restored when the last subscription to it, on any hub, is closed. It is
 * not called meanwhile (no chaining). Deliveries coalesce as the kernel's
 * do: two SIGUSR1 that arrive before the hub looks are one delivery, and
 * carry the second one's details. Refused (EINVAL): SIGKILL, SIGSTOP, the
 * fault signals SIGSEGV, SIGBUS, SIGFPE and SIGILL (a handler that returns
 * from a fault faults again), and glibc's internal real-time signals (32
 * up to SIGRTMIN). A subscription does not keep gr_main from returning,
 * but while one is open the hub does not report a deadlock: a signal may
 * still come. grove never blocks or unblocks signals: one blocked in every
 * thread is never delivered. */
#define GR_SIG(signo) ((uint64_t)1 << ((signo)-1))

/* The details of a delivery, from its siginfo_t. */
typedef struct gr_siginfo {
    int signo;
    int code;       /* si_code: SI_USER, SI_QUEUE, SI_TKILL, SI_KERNEL, CLD_EXITED... */
    pid_t pid;      /* the sender (SI_USER, SI_QUEUE, SI_TKILL), or the child (SIGCHLD) */
    uid_t uid;      /* the sender's real user id, where pid is set */
    int status;     /* SIGCHLD: the exit status, or the signal */
    intptr_t value; /* sigqueue(3)'s or a timer's value (sival_ptr, or sival_int) */
} gr_siginfo;

/* A subscription of one hub to a set of signals. */
typedef struct gr_signals gr_signals;

/* Subscribe the calling OS thread's hub to the signals in sigs, from now
 * on: each delivery is kept (coalesced per signal) until gr_signal_next
 * takes it. Returns the subscription, which the caller frees with
 * gr_signal_close (on the same OS thread; also after its hub is gone), or
 * NULL with EINVAL (sigs empty, or holding a refused signal or bits over
 * 64), EAGAIN (64 hubs already subscribed), ENOMEM, or the errno of
 * sigaction(2). Never blocks. */
GR_API gr_signals *gr_signal_open(uint64_t sigs);

/* Wait for the next delivery to s: returns the signal number (the lowest
 * one if several are pending) and fills *info (info may be NULL). Fails
 * with -1 and ETIMEDOUT, ECANCELED, EDEADLK (hub callback), or EINVAL (s
 * is NULL, a handler subscription, another OS thread's, or its hub is
 * gone). Several green threads may wait on one subscription; each
 * delivery wakes one. */
GR_API int gr_signal_next(gr_signals *s, gr_siginfo *info, int64_t deadline);

/* Close s: no more deliveries; the signal's previous disposition is back
 * once no hub subscribes to it. Returns 0, or -1 with EBUSY (a green thread
 * waits on it: kill it first) or EINVAL (s NULL, or another OS thread's
 * while its hub lives). A handler subscription's green threads already
 * spawned run on. */
GR_API int gr_signal_close(gr_signals *s);

/* gr_signal_open, gr_signal_next and gr_signal_close in one call: wait for
 * one of sigs, which arrive only during the call. Returns the signal, or
 * -1 with the errors of the three. */
GR_API int gr_signal_wait(uint64_t sigs, gr_siginfo *info, int64_t deadline);

/* A function run for a delivery; info is valid during the call. */
typedef void (*gr_signal_fn)(const gr_siginfo *info, void *arg);

/* gevent's signal_handler: run fn(info, arg) in a new detached green
 * thread of the calling OS thread's hub for each delivery of one of sigs.
 * Returns the subscription (stop it with gr_signal_close), or NULL with
 * the errors of gr_signal_open, or EINVAL when fn is NULL. arg stays the
 * caller's. A delivery for which no thread can be made (ENOMEM) is
 * dropped with a warning. */
GR_API gr_signals *gr_signal_handler(uint64_t sigs, gr_signal_fn fn, void *arg);

/* ========================================================== processes
 * Child processes whose waits and pipes block only the green thread
 * (docs/process.md). A child is made with posix_spawn (so the cost does
 * not grow with the parent's memory), with an empty signal mask, every
 * signal at its default disposition, and no descriptor but its standard
 * ones and those passed in gr_proc_opts.fds. Each child is waited for on
 * its own (a pidfd; else waitpid(pid, WNOHANG) on a backing-off timer):
 * grove never installs a SIGCHLD handler and never reaps a child that is
 * not its own, so a program's own fork() children and SIGCHLD handler
 * keep working. Setting GROVE_PIDFD=0 in the environment (read once, at
 * the first spawn) forces the timer. */

/* gr_stdio.how: where a child's standard stream goes. */
#define GR_STDIO_INHERIT 0 /* the parent's same descriptor, as it is (the default) */
#define GR_STDIO_PIPE 1    /* a pipe; the parent's end is gr_proc_fd(p, n) */
#define GR_STDIO_NULL 2    /* /dev/null */
#define GR_STDIO_FD 3      /* the parent's descriptor .fd (a copy: .fd stays the caller's) */
#define GR_STDIO_STDOUT 4  /* stderr only: where stdout goes (2>&1) */

typedef struct gr_stdio {
    int how;
    int fd; /* GR_STDIO_FD's */
} gr_stdio;

/* gr_proc_opts.flags */
#define GR_PROC_SETSID 1u  /* a session of its own (setsid), so a process group too */
#define GR_PROC_SETPGID 2u /* process group .pgid (0: a new one led by the child) */

/* How to spawn; a zero-filled struct (or NULL) spawns argv[0] with the
 * caller's environment, directory and standard streams. Everything is
 * read during the call only. */
typedef struct gr_proc_opts {
    const char *file;       /* the program; NULL: argv[0]. Without a '/', searched
                             * in the caller's PATH (as execvp) */
    const char *const *env; /* "NAME=value" strings, NULL-terminated; NULL: the caller's */
    const char *cwd;        /* the child's working directory; NULL: the caller's */
    gr_stdio stdio[3];      /* stdin, stdout, stderr */
    const int *fds;         /* more descriptors for the child: fds[i] becomes its 3 + i */
    size_t nfds;
    unsigned flags; /* GR_PROC_* */
    pid_t pgid;     /* with GR_PROC_SETPGID */
} gr_proc_opts;

/* A child process and the parent's ends of its pipes. */
typedef struct gr_proc gr_proc;

/* Start argv[0] (or opts->file) with the arguments argv (NULL-terminated).
 * Returns once the child has executed the program, or NULL with errno:
 * the program's exec error (ENOENT, EACCES, ENOEXEC, E2BIG...), a cwd
 * that cannot be entered (ENOENT...), EINVAL (argv NULL or empty, unknown
 * flags or stdio, GR_STDIO_STDOUT other than for stderr, both SETSID and
 * SETPGID), EBADF (a descriptor given is not open), EMFILE, ENOMEM,
 * EAGAIN, or ECANCELED when the caller was killed (nothing is started).
 * Blocks the OS thread while the kernel makes the child and the child
 * executes (under a millisecond). The caller owns the result and frees it
 * with gr_proc_free. */
GR_API gr_proc *gr_proc_spawn(const char *const *argv, const gr_proc_opts *opts);

/* The child's process id. */
GR_API pid_t gr_proc_pid(const gr_proc *p);

/* The parent's end of the pipe of standard stream n (0, 1, 2), or -1 if
 * that stream is not a pipe (or was closed). Non-blocking and close-on-
 * exec: use it with gr_read/gr_write. p owns it: close it only with
 * gr_proc_close_fd. */
GR_API int gr_proc_fd(const gr_proc *p, int n);

/* Close the parent's end of stream n's pipe (closing stdin's tells the
 * child it has all its input). Returns 0, or -1/EINVAL (n outside 0..2,
 * or not an open pipe). */
GR_API int gr_proc_close_fd(gr_proc *p, int n);

/* Wait until the child has ended, reap it, and store its status as
 * waitpid(2) encodes it (WIFEXITED, WEXITSTATUS, WIFSIGNALED, WTERMSIG...)
 * in *status (status may be NULL). Once reaped, returns the same status
 * again at once. Returns 0, or -1 with ETIMEDOUT, ECANCELED, EDEADLK (hub
 * callback), or ECHILD (someone else reaped it: a waitpid(-1) of the
 * program's). */
GR_API int gr_proc_wait(gr_proc *p, int *status, int64_t deadline);

/* Send signal signo (0: only check) to the child. Returns 0, or -1 with
 * ESRCH (already reaped: grove never signals a pid that may have been
 * reused), EINVAL (bad signo), or EPERM. */
GR_API int gr_proc_kill(gr_proc *p, int signo);

/* Feed in (inlen bytes) to the child's stdin and close it, while reading
 * its stdout and stderr to their ends, all at once (no deadlock however
 * full the pipes get), then wait for it to end (*status as gr_proc_wait,
 * status may be NULL). What stdout and stderr gave is in *out and *err
 * (each malloc'd, NUL-terminated, lengths in *outlen and *errlen; the
 * caller frees them); a NULL out or err discards that stream, and one that
 * is not a pipe gives NULL and 0. A stdin that is not a pipe is not fed
 * (in is then ignored); one the child closes early is not fed further.
 * Returns 0, or -1 with ETIMEDOUT, ECANCELED, EDEADLK, ENOMEM, or the read
 * or wait error: then *out and *err hold what came so far (free them),
 * stdin is closed, the child is left running, and a later call collects
 * what comes after. */
GR_API int gr_proc_communicate(gr_proc *p, const void *in, size_t inlen, char **out, size_t *outlen,
                               char **err, size_t *errlen, int *status, int64_t deadline);

/* Close the pipes and free p. A child not yet reaped is killed (SIGKILL)
 * and reaped first, so none is left behind, running or as a zombie (this
 * may block the OS thread for the moment the kernel takes to end it).
 * Returns 0; p NULL is allowed. */
GR_API int gr_proc_free(gr_proc *p);

/* ============================================================ sync
 * Synchronisation between green threads. Every object but Event,
 * AsyncResult and the cross-thread channel (gr_xchan) is hub-local and uses
 * no atomics: use it only from the OS thread whose hub its waiters belong
 * to (a queue belongs to the hub of the thread that created it;
 * gr_queue_post is its one thread-safe entry). Those three are
 * thread-safe: used from any hub or plain OS thread. Structs may live
 * anywhere (stack, heap, inside other structs), a zero-filled struct is a
 * valid object, and they must not move or be freed while a green thread
 * waits on them; their fields are private.
 *
 * Every call that waits takes a deadline and fails with ETIMEDOUT at it,
 * ECANCELED when the caller is killed, and in a hub callback with EDEADLK
 * when it would have to wait (ETIMEDOUT if its deadline has passed).
 * Calls that take or hand over something (acquire, get, put, send,
 * receive, gr_cond_wait) fail with ECANCELED at once in a killed thread,
 * so a killed worker stops taking jobs; calls that wait for an outcome
 * (gr_event_wait, gr_async_get, gr_queue_peek, gr_queue_join,
 * gr_group_join) succeed if the outcome is already there, as gr_join of a
 * finished thread does. Waiters are served first come, first served, and
 * what is released goes straight to the first waiter (no barging). See
 * docs/sync.md. */

/* A waiter list, the one internal piece every object below embeds: the
 * core's own wait-queue type (its waiters live on the waiting threads'
 * stacks). */
struct gr__waiter;
typedef struct gr_waitq_ {
    struct gr__waiter *head_, *tail_;
} gr_waitq_;

/* A waiter list of the thread-safe objects (waiters of several hubs and
 * plain OS threads), with the lock that guards it. */
struct gr__xwaiter;
typedef struct gr_xwaitq_ {
    struct gr__xwaiter *head_, *tail_;
} gr_xwaitq_;

/* Event: a flag green threads can wait for (gevent.event.Event).
 * Thread-safe: set, cleared and waited for by green threads of any hub
 * and by plain OS threads (which then block). */
typedef struct gr_event {
    gr_xwaitq_ q_;
    int lock_;
    int set_;
} gr_event;

GR_API void gr_event_init(gr_event *e);
/* Set the flag and wake every waiter. */
GR_API void gr_event_set(gr_event *e);
GR_API void gr_event_clear(gr_event *e);
GR_API int gr_event_is_set(const gr_event *e);
/* Wait until the flag is set (returns 0 at once if it is). Errors:
 * ETIMEDOUT, ECANCELED, EDEADLK (hub callback). */
GR_API int gr_event_wait(gr_event *e, int64_t deadline);

/* AsyncResult: a value or an error delivered once, waited for by any
 * number (gevent.event.AsyncResult). Thread-safe, as gr_event. */
typedef struct gr_async {
    gr_xwaitq_ q_;
    void *value_;
    int lock_;
    int state_; /* 0 pending, 1 value, 2 error */
    int error_;
} gr_async;

GR_API void gr_async_init(gr_async *a);
/* Deliver a value and wake every waiter. -1/EALREADY if already set. */
GR_API int gr_async_set(gr_async *a, void *value);
/* Deliver an error (an errno value, > 0). -1/EALREADY, or EINVAL. */
GR_API int gr_async_set_error(gr_async *a, int err);
/* 1 once a value or an error has been delivered. */
GR_API int gr_async_ready(const gr_async *a);
/* Wait for the outcome: 0 and *value (if value not NULL), or -1 with the
 * delivered error as errno; or -1 with ETIMEDOUT/ECANCELED/EDEADLK. */
GR_API int gr_async_get(gr_async *a, void **value, int64_t deadline);

/* Start fn(arg) in a new green thread on hub, soon (the thread of another
 * OS thread's hub, or this one's). Its result is delivered to done, a
 * thread-safe AsyncResult that must live until then; any thread waits for
 * it with gr_async_get (a failed start on the target, ENOMEM, is delivered
 * as the error). opts as gr_spawn_opts (the name is copied; the thread is
 * always detached). The target hub is kept alive until the thread exists;
 * the caller must know it is alive at the call (e.g. from gr_hub_current
 * on that thread, and a gr_hub_ref). Thread-safe. Returns 0, or -1 with
 * EINVAL (hub, fn or done NULL, unknown flags) or ENOMEM. */
GR_API int gr_spawn_on(gr_hub *hub, gr_fn fn, void *arg, const gr_opts *opts, gr_async *done);

/* Semaphore and BoundedSemaphore. */
typedef struct gr_sem {
    gr_waitq_ q_;
    size_t value_;
    size_t bound_; /* 0: unbounded */
} gr_sem;

GR_API void gr_sem_init(gr_sem *s, size_t value);
/* A bounded semaphore: releasing above the initial value is an error. */
GR_API void gr_sem_init_bounded(gr_sem *s, size_t value);
/* Take one unit, waiting for one if there is none. */
GR_API int gr_sem_acquire(gr_sem *s, int64_t deadline);
/* Give one unit back (or hand it to the first waiter). -1/EOVERFLOW for a
 * bounded semaphore already at its bound (or any at SIZE_MAX). */
GR_API int gr_sem_release(gr_sem *s);
GR_API size_t gr_sem_value(const gr_sem *s);

/* Lock (owned by the green thread that acquired it) and RLock (the owner
 * may acquire again; it is free after as many releases). */
typedef struct gr_lock {
    gr_waitq_ q_;
    gr_t owner_;
    size_t depth_;
    int recursive_;
} gr_lock;

GR_API void gr_lock_init(gr_lock *l);
GR_API void gr_rlock_init(gr_lock *l);
/* Acquire. Errors: EDEADLK (a non-recursive lock already held by the
 * caller, or hub callback), ETIMEDOUT, ECANCELED. */
GR_API int gr_lock_acquire(gr_lock *l, int64_t deadline);
/* Release. -1/EPERM if the caller does not own it. The lock goes to the
 * first waiter, if any. */
GR_API int gr_lock_release(gr_lock *l);
/* 1 if some green thread holds it. */
GR_API int gr_lock_locked(const gr_lock *l);

/* Condition variable over a gr_lock (or RLock, fully released while
 * waiting). */
typedef struct gr_cond {
    gr_waitq_ q_;
} gr_cond;

GR_API void gr_cond_init(gr_cond *c);
/* Release l, wait for a signal, re-acquire l (even on error: on return the
 * caller holds l again, as pthread_cond_wait; the re-acquire ignores kills
 * and time-out regions). Errors: EPERM (the caller does not hold l, or hub
 * callback), ETIMEDOUT, ECANCELED; EDEADLK in a root context that nothing
 * can ever wake, which then returns without l. */
GR_API int gr_cond_wait(gr_cond *c, gr_lock *l, int64_t deadline);
GR_API void gr_cond_signal(gr_cond *c);
GR_API void gr_cond_broadcast(gr_cond *c);

/* Queues of pointers: FIFO, LIFO or priority order, bounded or not
 * (gevent.queue). Every queue is also joinable (JoinableQueue):
 * gr_queue_task_done / gr_queue_join. */
#define GR_QUEUE_FIFO 0
#define GR_QUEUE_LIFO 1
#define GR_QUEUE_PRIORITY 2 /* smallest first by cmp; equal ones FIFO */

typedef struct gr_queue gr_queue;

/* A new queue. maxsize 0: unbounded. cmp is required for
 * GR_QUEUE_PRIORITY (and ignored otherwise): like qsort's, on the item
 * pointers themselves. Returns NULL with EINVAL or ENOMEM. */
GR_API gr_queue *gr_queue_new(int kind, size_t maxsize, int (*cmp)(const void *a, const void *b));
/* Free a queue nobody waits on and no post is on its way to (-1/EBUSY
 * otherwise). NULL is accepted. Items still in it are the caller's to free
 * first (gr_queue_get with deadline 0). */
GR_API int gr_queue_free(gr_queue *q);
/* Add item, waiting for room in a full bounded queue. A waiting getter
 * receives it directly. Also ENOMEM (an unbounded queue that cannot grow). */
GR_API int gr_queue_put(gr_queue *q, void *item, int64_t deadline);
/* Remove the next item into *item, waiting for one. Getters are served in
 * the order they came. */
GR_API int gr_queue_get(gr_queue *q, void **item, int64_t deadline);
/* The next item without removing it (0, or -1/ETIMEDOUT at deadline). */
GR_API int gr_queue_peek(gr_queue *q, void **item, int64_t deadline);
GR_API size_t gr_queue_size(const gr_queue *q);
/* Mark one item taken by a get as processed. -1/EINVAL if more calls than
 * puts. */
GR_API int gr_queue_task_done(gr_queue *q);
/* Wait until every item put has been marked done. */
GR_API int gr_queue_join(gr_queue *q, int64_t deadline);
/* Thread-safe, from any OS thread: put item in the queue soon, through
 * its hub (gr_hub_post), ignoring maxsize. Items posted by one thread
 * arrive in order. The queue (and its hub) must outlive the call. Returns
 * 0 or -1/ENOMEM. */
GR_API int gr_queue_post(gr_queue *q, void *item);

/* Channel: unbuffered rendezvous; a send completes when a receiver takes
 * the value. */
typedef struct gr_chan {
    gr_waitq_ senders_, receivers_;
    int closed_;
    gr_waitq_ watchers_; /* gr_wait_any: woken when a sender comes, taking nothing */
} gr_chan;

GR_API void gr_chan_init(gr_chan *c);
/* Hand v to a receiver, waiting for one. -1/EPIPE once closed. */
GR_API int gr_chan_send(gr_chan *c, void *v, int64_t deadline);
/* Take a value from a sender, waiting for one. -1/EPIPE once closed. */
GR_API int gr_chan_recv(gr_chan *c, void **v, int64_t deadline);
/* Close: every waiting and later send and receive fails with EPIPE. */
GR_API void gr_chan_close(gr_chan *c);

/* Cross-thread channel: the thread-safe queue and channel in one type
 * (Python's queue.Queue made cooperative, Go's chan). Multi-producer,
 * multi-consumer, FIFO: green threads of any hub and plain OS threads
 * send and receive on the same channel (a green thread parks, a plain
 * thread blocks). capacity 0 makes an unbuffered rendezvous, n > 0 a
 * bounded buffer of n items (allocated at creation), GR_XCHAN_UNBOUNDED
 * a buffer that grows (sends never wait). Items are pointers passed
 * through untouched; they stay the caller's. See docs/sync.md. */
#define GR_XCHAN_UNBOUNDED SIZE_MAX

typedef struct gr_xchan gr_xchan;

/* A new channel; the caller frees it with gr_xchan_free. Returns NULL with
 * ENOMEM. Thread-safe, as every call below. */
GR_API gr_xchan *gr_xchan_new(size_t capacity);
/* Free a channel nobody waits on (-1/EBUSY otherwise; NULL is accepted).
 * Items still buffered are the caller's to take first. */
GR_API int gr_xchan_free(gr_xchan *c);
/* Send item: to the first waiting receiver, else into the buffer, else
 * wait for room (or, unbuffered, for a receiver). Returns 0, or -1 with
 * EPIPE (closed), ETIMEDOUT, ECANCELED (killed: also when it need not
 * wait), EDEADLK (hub callback that would wait), ENOMEM (an unbounded
 * channel that cannot grow); then nobody received item. */
GR_API int gr_xchan_send(gr_xchan *c, void *item, int64_t deadline);
/* Receive the oldest item into *item (item may be NULL), waiting for one.
 * After a close, the buffered items are still received; then -1/EPIPE.
 * Errors as gr_xchan_send (but not ENOMEM). */
GR_API int gr_xchan_recv(gr_xchan *c, void **item, int64_t deadline);
/* Send items[0..n) in order, with no other sender's items between them,
 * waiting for room as gr_xchan_send does (one lock and one wait for the
 * lot, not one per item). Returns n once all
 * went, or, when the deadline, a close or a kill stops it after k > 0
 * items went, k (the first k; errno says why); -1 with errno when none
 * went. EINVAL: c NULL, or items NULL with n > 0. */
GR_API ssize_t gr_xchan_send_many(gr_xchan *c, void *const *items, size_t n, int64_t deadline);
/* Receive up to n items into items[], waiting until there is at least
 * one: returns how many (1..n; 0 when n is 0), or -1 with errno as
 * gr_xchan_recv. */
GR_API ssize_t gr_xchan_recv_many(gr_xchan *c, void **items, size_t n, int64_t deadline);
/* Close: every send from now on, and every one waiting, fails with EPIPE;
 * waiting receivers fail with EPIPE; later receives take what is buffered,
 * then fail with EPIPE. Closing twice does nothing. */
GR_API void gr_xchan_close(gr_xchan *c);

/* A channel's state at one instant, for monitoring and tests. */
typedef struct gr_xchan_stats {
    size_t size;      /* items buffered */
    size_t capacity;  /* as created */
    size_t senders;   /* threads waiting in a send */
    size_t receivers; /* threads waiting in a receive */
    int closed;
} gr_xchan_stats;

/* Fill *st. Returns 0, or -1/EINVAL (c or st NULL). */
GR_API int gr_xchan_stats_get(gr_xchan *c, gr_xchan_stats *st);

/* Group: a set of green threads to wait for or kill together; with a
 * limit it is a Pool, whose spawn waits for room (gevent.pool). Members
 * are detached: their results are dropped; use gr_async to return data. */
typedef struct gr_group gr_group;

/* limit 0: a plain group. Returns NULL/ENOMEM. */
GR_API gr_group *gr_group_new(size_t limit);
/* Spawn fn(arg) into the group, first waiting for room (pools; only that
 * wait can be cancelled). Returns its handle, stale once the member has
 * finished, or -1 with ETIMEDOUT, ECANCELED, or gr_spawn_opts' errors. */
GR_API gr_t gr_group_spawn(gr_group *g, gr_fn fn, void *arg, const gr_opts *opts, int64_t deadline);
/* Wait until every member has finished. EDEADLK when called by a member. */
GR_API int gr_group_join(gr_group *g, int64_t deadline);
/* Kill every member (they unwind on their own; join to wait). */
GR_API void gr_group_kill(gr_group *g);
GR_API size_t gr_group_size(const gr_group *g);
/* Free an empty group (-1/EBUSY while it has members). NULL is accepted. */
GR_API int gr_group_free(gr_group *g);

/* How many more members a pool can take now (its limit minus the members
 * running and the slots promised to waiting spawners); SIZE_MAX for a
 * plain group (gevent's free_count). */
GR_API size_t gr_group_free_count(const gr_group *g);
/* Wait until the pool can take a member (gevent's wait_available): 0 at
 * once if it can. It takes no slot: a spawner may still have to wait.
 * Errors: ETIMEDOUT, ECANCELED, EDEADLK (hub callback). */
GR_API int gr_group_wait_available(gr_group *g, int64_t deadline);
/* Spawn fn(arg) into the group as gr_group_spawn does, and deliver its
 * result to done (gevent's apply_async): gr_async_set with fn's return
 * value, or gr_async_set_error(done, ECANCELED) when the member was killed
 * before it ran. done must stay valid until then. Returns the member's
 * handle (stale once it has finished), or -1 with EINVAL (fn or done
 * NULL), ETIMEDOUT, ECANCELED (waiting for room), ENOMEM; then done is
 * untouched. */
GR_API gr_t gr_group_apply_async(gr_group *g, gr_fn fn, void *arg, gr_async *done,
                                 const gr_opts *opts, int64_t deadline);
/* results[i] = fn(args[i]) for i < n, with at most the pool's limit of
 * members running at once (gevent's Pool.map): inputs are started in
 * order as slots come free, results land in input order. A member killed
 * before it ran gets GR_CANCELED. args and results stay the caller's;
 * args may be NULL (every fn gets NULL). Returns 0 once all have finished;
 * or -1 with ETIMEDOUT at deadline or ECANCELED: then every member still
 * running is killed and waited for (they unwind), and only the results of
 * those that had finished are written. Also EINVAL (fn NULL, results
 * NULL with n > 0), ENOMEM. */
GR_API int gr_group_map(gr_group *g, gr_fn fn, void *const *args, void **results, size_t n,
                        int64_t deadline);

/* An iterator over results as they come (gevent's imap_unordered). */
typedef struct gr_imap gr_imap;
/* Start mapping fn over args[0..n) in the group (at most its limit
 * running at once, started in input order as gr_imap_next is called).
 * args must stay valid until gr_imap_free (may be NULL: every fn gets
 * NULL). Returns the iterator, or NULL with EINVAL (fn NULL) or ENOMEM.
 * Nothing starts before the first gr_imap_next. */
GR_API gr_imap *gr_group_imap_unordered(gr_group *g, gr_fn fn, void *const *args, size_t n);
/* The next result to finish, with its input's index: 0, *index and
 * *result set (either may be NULL); -1/ENOENT once all n have been
 * returned. Starts as many inputs as the pool has room for first. Errors:
 * ETIMEDOUT, ECANCELED (a result already there is still returned),
 * EDEADLK (hub callback), ENOMEM (starting one: retry later). */
GR_API int gr_imap_next(gr_imap *m, size_t *index, void **result, int64_t deadline);
/* Kill the members still running, wait for them to unwind (ignoring the
 * caller's own kill), and free m. NULL is accepted. Returns 0, or
 * -1/EDEADLK when it would have to wait in a hub callback (m is then not
 * freed). */
GR_API int gr_imap_free(gr_imap *m);

/* ============================================= waiting on several things
 * gevent's wait and iwait, joinall and killall. An item names one thing
 * and says when it is ready: */
#define GR_WAIT_THREAD 1 /* a green thread has finished (thread) */
#define GR_WAIT_EVENT 2  /* a gr_event is set (obj) */
#define GR_WAIT_ASYNC 3  /* a gr_async has its outcome (obj) */
#define GR_WAIT_QUEUE 4  /* a gr_queue has an item (obj) */
#define GR_WAIT_CHAN 5   /* a gr_chan has a sender waiting, or is closed (obj) */
#define GR_WAIT_FD 6     /* a descriptor is ready for events (fd, events) */

/* Most items one call takes. */
#define GR_WAIT_MAX 65536

typedef struct gr_waitable {
    int kind;      /* GR_WAIT_* */
    void *obj;     /* EVENT, ASYNC, QUEUE, CHAN: the object */
    gr_t thread;   /* THREAD: a green thread of the caller's hub */
    int fd;        /* FD */
    int events;    /* FD: GR_READ and/or GR_WRITE */
    int ready;     /* out: 0, or non-zero when ready (FD: the ready subset of
                    * events, errors and hang-ups counting as both) */
    int reported_; /* private: returned by gr_iwait_next */
} gr_waitable;

/* Wait until at least one of the n items is ready, then set every item's
 * ready field (0 or not) and return how many are ready (> 0). Nothing is
 * taken: a queue keeps its item, a thread its result (join it), a sender
 * still waits. Watching costs one waiter per item and one park, whatever
 * the kinds. A thread that has finished counts as ready; so does one
 * whose handle went stale during the wait (joined by another, or detached
 * and gone). Items already ready succeed even in a killed caller or a hub
 * callback (deadline 0 only asks). Errors: EINVAL (items NULL, n 0 or
 * over GR_WAIT_MAX, an unknown kind, obj NULL, events empty or unknown, a
 * root context's handle), ESRCH (a stale thread handle, at the call),
 * EBADF (a negative fd), ETIMEDOUT, ECANCELED, EDEADLK (hub callback, or a
 * root nothing can wake), ENOMEM. Creates the hub. */
GR_API int gr_wait_any(gr_waitable *items, size_t n, int64_t deadline);

/* Iterate over items as each becomes ready, each once (gevent's iwait). */
typedef struct gr_iwait {
    gr_waitable *items_;
    size_t n_, left_;
} gr_iwait;

/* Start an iteration over items (which must stay valid during it): checks
 * them as gr_wait_any does and clears their ready and reported state.
 * Returns 0, or -1 with EINVAL (it NULL, or as gr_wait_any), ESRCH,
 * EBADF. */
GR_API int gr_iwait_init(gr_iwait *it, gr_waitable *items, size_t n);
/* The index of the next item to become ready (lowest index first among
 * those ready at once), its ready field set; each item is returned once.
 * -1/ENOENT once every item has been returned; otherwise errors as
 * gr_wait_any. */
GR_API int gr_iwait_next(gr_iwait *it, int64_t deadline);

/* Join each of threads[0..n) as it finishes, until all have or the
 * deadline (gevent's joinall): results[i] (results may be NULL) receives
 * thread i's result and joined[i] (may be NULL) 1 once it is joined (its
 * handle is then stale), else 0. Returns 0 when all are joined, or -1
 * with ETIMEDOUT or ECANCELED (joined says which finished; the others stay
 * joinable), EINVAL (threads NULL, n 0 or over GR_WAIT_MAX, a handle
 * listed twice, a detached thread or a root context), ESRCH (a stale
 * handle; or, once the rest are joined, one that another thread joined
 * meanwhile: its joined[i] is 0), EDEADLK (the caller is among them; hub
 * callback), ENOMEM. Argument errors are found before anything is joined. */
GR_API int gr_joinall(const gr_t *threads, size_t n, void **results, int *joined, int64_t deadline);

/* Kill every thread of threads[0..n) (stale handles, threads already gone,
 * are skipped), then wait until all have finished, without joining them
 * (gevent's killall). The kills are delivered whatever the wait gives.
 * The caller may be among them: it is killed too, and does not wait for
 * itself. Returns 0, or -1 with ETIMEDOUT (some are still unwinding at
 * deadline; 0 does not wait), ECANCELED, EDEADLK (hub callback), EINVAL
 * (threads NULL, n 0 or over GR_WAIT_MAX, a root context: before anything
 * is killed), ENOMEM. */
GR_API int gr_killall(const gr_t *threads, size_t n, int64_t deadline);

#ifdef __cplusplus
}
#endif

#endif
