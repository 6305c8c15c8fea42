/* grove/patch.h: libgrove-patch.so, gevent's monkey patching for C.
 *
 * libgrove-patch.so is grove (every gr_ function of grove.h) plus
 * interposers of libc's blocking calls: read, connect, poll, sleep,
 * getaddrinfo... (the full list, with how each is handled, is in
 * docs/patching.md). Made in a green thread, a call that would block parks
 * only that green thread; made anywhere else (a plain OS thread, the root
 * context such as main() before or after gr_main, the hub's own stack in a
 * gr_hub_post callback, a thread-pool worker) it is the unpatched call:
 * same results, same errno, same blocking.
 *
 * Two ways in (docs/patching.md has the exact commands):
 *   - link with it instead of libgrove: `pkg-config --libs grove-patch`,
 *     i.e. -lgrove-patch ahead of libc and kept with --no-as-needed;
 *   - LD_PRELOAD=libgrove-patch.so for a program linked with libgrove.so
 *     (a program with grove linked in statically keeps its own grove, which
 *     the interposers cannot see: nothing becomes cooperative).
 *
 * The functions below exist only in libgrove-patch.so. A program that
 * may also run without it (LD_PRELOAD) can declare them weak
 * (#pragma weak gr_patch_original) and test their address. */
#ifndef GROVE_PATCH_H
#define GROVE_PATCH_H

#include <grove.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Families, as gevent's patch_all(socket=..., dns=..., ...):
 * SOCKET  descriptors and their I/O: sockets, pipes, FIFOs, terminals,
 *         eventfd... (socket, accept, connect, read/write/recv/send...,
 *         sendfile, close, dup, fcntl, ioctl FIONBIO, setsockopt)
 * SELECT  poll, ppoll, select, pselect, epoll_wait, epoll_pwait(2)
 * TIME    sleep, usleep, nanosleep, clock_nanosleep
 * DNS     getaddrinfo, getnameinfo, gethostbyname*, gethostbyaddr*, res_*
 * SIGNAL  sigwait, sigwaitinfo, sigtimedwait, sigsuspend, pause
 * PROCESS waitpid, wait, wait3, wait4, waitid, system, popen, pclose
 * A family switched off leaves its calls exactly as libc makes them, in
 * green threads too. The bookkeeping of descriptors (close waking the
 * fd's waiters, dup, ...) is done whatever the families. GR_PATCH_ALL is
 * every family of this version (it grows when a family is added). */
#define GR_PATCH_SOCKET 0x1u
#define GR_PATCH_SELECT 0x2u
#define GR_PATCH_TIME 0x4u
#define GR_PATCH_DNS 0x8u
#define GR_PATCH_SIGNAL 0x10u
#define GR_PATCH_PROCESS 0x20u
#define GR_PATCH_ALL 0x3fu

/* Parse a family list, the syntax of the GROVE_PATCH environment variable:
 * comma-separated names among socket, select, time, dns, signal, process,
 * plus "all" and "none"; a name with a leading '-' is taken out
 * ("all,-dns"). Items apply left to right, from nothing. Stores the families in *families. Returns
 * 0, or -1/EINVAL (spec or families NULL, or an unknown name: *families is
 * then untouched). */
GR_API int gr_patch_parse(const char *spec, unsigned *families);

/* Choose the families (GR_PATCH_* bits). The process starts with those of
 * GROVE_PATCH (all when unset; an unknown name there is reported on stderr
 * and ignored). Call it before the first patched call is made in a green
 * thread. Thread-safe. Returns 0, or -1 with EINVAL (unknown bits) or
 * EBUSY (a patched call has already been made cooperative). */
GR_API int gr_patch_set(unsigned families);

/* The families in force. Never fails. */
GR_API unsigned gr_patch_families(void);

/* libc's own function for an interposed name ("read", "getaddrinfo",
 * "__read_chk"...), as gevent's get_original: calling it bypasses grove
 * in every context. Cast it to the function's type. Returns NULL with
 * errno ENOENT for a name the table does not list, EINVAL for NULL, or
 * ENOSYS when this libc lacks the function. Thread-safe. */
GR_API void *gr_patch_original(const char *name);

/* 1 when a patched call made here, now, would be cooperative in its
 * family's switch permitting: the caller runs in a green thread. 0 in
 * every other context. Never fails. */
GR_API int gr_patch_cooperative(void);

#ifdef __cplusplus
}
#endif

#endif
