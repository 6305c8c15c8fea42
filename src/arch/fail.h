/* Fault injection: the allocations and the system calls that fail under
 * load, called through hooks that a test can make fail (neco's fail
 * counters are the model). Every layer of src/ allocates with gr__malloc,
 * gr__calloc, gr__realloc, gr__strdup, gr__strndup and makes these system
 * calls through the wrappers below, so a test can fail the Nth of them and
 * check that the failure comes out as -1 and errno, leaks nothing and
 * leaves the process able to go on (tests/test_fail.c sweeps N = 1, 2, ...
 * over whole operations).
 *
 * Disarmed, which is always outside tests, a hook costs one relaxed load
 * of a global and a branch predicted not taken: it stays compiled in every
 * build, so the tests exercise the code that ships. Thread-safe: one
 * process-wide counter, atomics, so calls made on other OS threads (the
 * thread pool's workers, the threaded HTTP server) count and fail too. */
#ifndef GROVE_ARCH_FAIL_H
#define GROVE_ARCH_FAIL_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

struct epoll_event;

/* The sites, as a mask; each fails with the error it would give under
 * load, unless the test asks for another. */
enum {
    GR__FAIL_ALLOC = 1u << 0,   /* malloc, calloc, realloc, strdup, strndup: ENOMEM */
    GR__FAIL_MMAP = 1u << 1,    /* mmap (stack slabs, signal stacks): ENOMEM */
    GR__FAIL_EPOLL = 1u << 2,   /* epoll_create1: EMFILE; epoll_ctl ADD: ENOMEM */
    GR__FAIL_SOCKET = 1u << 3,  /* socket: EMFILE */
    GR__FAIL_ACCEPT = 1u << 4,  /* accept4: EMFILE */
    GR__FAIL_EVENTFD = 1u << 5, /* eventfd: EMFILE */
    GR__FAIL_THREAD = 1u << 6,  /* pthread_create: EAGAIN */
    GR__FAIL_ALL = (1u << 7) - 1,
};

/* ------------------------------------------------------ the test switch */

/* Count the hooked calls of the sites in sites_mask from now on, and make
 * the nth of them (1-based) fail, once, with err (0: the site's own error,
 * listed above). nth <= 0 only counts. Re-arming starts a new count. */
void gr__fail_arm(unsigned sites_mask, long nth, int err);

/* Stop counting and failing. */
void gr__fail_disarm(void);

/* Hooked calls of the armed sites made since gr__fail_arm: a sweep is
 * over when an operation completes with fewer than nth. */
long gr__fail_count(void);

/* The site (one GR__FAIL_* bit) whose call was made to fail since
 * gr__fail_arm, and its error in *err (err may be NULL); 0 if none. */
unsigned gr__fail_fired(int *err);

/* -------------------------------------------------------------- hooks */

/* The armed sites: 0 when disarmed, the one thing a hook reads. */
extern atomic_uint gr__fail_sites;

/* The slow path of gr__fail: count the call; fail it if it is the nth. */
int gr__fail_hit(unsigned site, int err) __attribute__((cold, noinline));

/* 0: make the call. Otherwise the error the call must fail with (errno is
 * set to it). */
static inline int gr__fail(unsigned site, int err)
{
    if (__builtin_expect(!(atomic_load_explicit(&gr__fail_sites, memory_order_relaxed) & site), 1))
        return 0;
    return gr__fail_hit(site, err);
}

static inline void *gr__malloc(size_t n)
{
    return gr__fail(GR__FAIL_ALLOC, ENOMEM) ? NULL : malloc(n);
}

static inline void *gr__calloc(size_t n, size_t size)
{
    return gr__fail(GR__FAIL_ALLOC, ENOMEM) ? NULL : calloc(n, size);
}

static inline void *gr__realloc(void *p, size_t n)
{
    return gr__fail(GR__FAIL_ALLOC, ENOMEM) ? NULL : realloc(p, n);
}

static inline char *gr__strdup(const char *s)
{
    return gr__fail(GR__FAIL_ALLOC, ENOMEM) ? NULL : strdup(s);
}

static inline char *gr__strndup(const char *s, size_t n)
{
    return gr__fail(GR__FAIL_ALLOC, ENOMEM) ? NULL : strndup(s, n);
}

/* The system calls, out of line: a call costs nothing next to a system
 * call, and their headers' feature macros stay in fail.c. */
void *gr__mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int gr__epoll_create1(int flags);
/* epoll_ctl(EPOLL_CTL_ADD) only: removing cannot fail for want of
 * resources. */
int gr__epoll_add(int epfd, int fd, struct epoll_event *ev);
int gr__socket(int domain, int type, int protocol);
int gr__accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int gr__eventfd(unsigned initval, int flags);
/* As pthread_create: returns the error (errno is set to it too). */
int gr__pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

#endif
