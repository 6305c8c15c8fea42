/* Fault injection (contract in fail.h): the test switch and the system
 * call hooks. */
#define _GNU_SOURCE
#include "fail.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

atomic_uint gr__fail_sites;

/* The switch's state besides the armed sites. The sites are stored last
 * when arming and first when disarming, so a hook that sees them armed
 * sees the rest set. */
static struct {
    atomic_long calls;
    atomic_long nth;
    atomic_int err;
    atomic_uint fired_site;
    atomic_int fired_err;
} fail;

void gr__fail_arm(unsigned sites_mask, long nth, int err)
{
    atomic_store(&gr__fail_sites, 0);
    atomic_store(&fail.calls, 0);
    atomic_store(&fail.nth, nth);
    atomic_store(&fail.err, err);
    atomic_store(&fail.fired_site, 0);
    atomic_store(&fail.fired_err, 0);
    atomic_store(&gr__fail_sites, sites_mask & GR__FAIL_ALL);
}

void gr__fail_disarm(void)
{
    atomic_store(&gr__fail_sites, 0);
}

long gr__fail_count(void)
{
    return atomic_load(&fail.calls);
}

unsigned gr__fail_fired(int *err)
{
    if (err)
        *err = atomic_load(&fail.fired_err);
    return atomic_load(&fail.fired_site);
}

int gr__fail_hit(unsigned site, int err)
{
    /* Exactly one call draws nth, whatever the threads. */
    long n = atomic_fetch_add(&fail.calls, 1) + 1;

    if (n != atomic_load(&fail.nth))
        return 0;
    if (atomic_load(&fail.err))
        err = atomic_load(&fail.err);
    atomic_store(&fail.fired_err, err);
    atomic_store(&fail.fired_site, site);
    errno = err;
    return err;
}

/* ------------------------------------------------------- system calls */

void *gr__mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return gr__fail(GR__FAIL_MMAP, ENOMEM) ? MAP_FAILED : mmap(addr, len, prot, flags, fd, off);
}

int gr__epoll_create1(int flags)
{
    return gr__fail(GR__FAIL_EPOLL, EMFILE) ? -1 : epoll_create1(flags);
}

int gr__epoll_add(int epfd, int fd, struct epoll_event *ev)
{
    return gr__fail(GR__FAIL_EPOLL, ENOMEM) ? -1 : epoll_ctl(epfd, EPOLL_CTL_ADD, fd, ev);
}

int gr__socket(int domain, int type, int protocol)
{
    return gr__fail(GR__FAIL_SOCKET, EMFILE) ? -1 : socket(domain, type, protocol);
}

int gr__accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
    return gr__fail(GR__FAIL_ACCEPT, EMFILE) ? -1 : accept4(fd, addr, len, flags);
}

int gr__eventfd(unsigned initval, int flags)
{
    return gr__fail(GR__FAIL_EVENTFD, EMFILE) ? -1 : eventfd(initval, flags);
}

int gr__pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
    int err = gr__fail(GR__FAIL_THREAD, EAGAIN);

    return err ? err : pthread_create(t, attr, fn, arg);
}
