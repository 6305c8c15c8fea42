/* What the os layer's files share: waiting for one child process. */
#ifndef GROVE_OS_H
#define GROVE_OS_H

#include "core/core.h"

#include <signal.h>
#include <sys/types.h>

/* A pidfd for pid (readable once it has ended), or -1 when pidfds are
 * off (GROVE_PIDFD=0, read once) or unavailable (then errno says why). */
int gr__pidfd_open(pid_t pid);

/* One attempt to reap, never blocking (a WNOHANG call): > 0 done, 0 not
 * yet, -1 with errno (done, failed). */
typedef int (*gr__reap_fn)(void *ctx);

/* Call try_reap until it is done, waiting cooperatively in between: for
 * pidfd to be readable, or without one (pidfd < 0) on a timer that backs
 * off from 1 ms to 20 ms. Returns what try_reap returned, or -1 with
 * ETIMEDOUT (one last attempt is made at the deadline), ECANCELED or
 * EDEADLK. pidfd stays the caller's (close it with gr_close: it may be
 * registered with the hub). */
int gr__child_wait(int pidfd, gr__reap_fn try_reap, void *ctx, int64_t deadline);

/* waitid(2)'s report of an ended child as waitpid(2)'s status word. */
int gr__status_of(const siginfo_t *si);

#endif
