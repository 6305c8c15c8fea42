/* Cooperative versions of libc's blocking signal and process calls, for
 * libgrove-patch's table of interposed functions (src/patch): each has the
 * signature of the libc function it is named after and the same results
 * (return value, errno, status encoding, siginfo), and is tested against
 * libc's own in tests/test_coop.c.
 *
 * Called from a green thread, a call that would block parks only that
 * thread; there a kill makes it fail with -1/ECANCELED (sigwait returns
 * ECANCELED), and no call fails with EINTR. Called anywhere else (a
 * thread's root context, a thread without a hub, a hub callback), each
 * blocks as libc's does. None ever calls the libc function it replaces
 * (the patch library interposes those): the real work is done by system
 * calls and by posix_spawn. */
#ifndef GROVE_OS_COOP_H
#define GROVE_OS_COOP_H

#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>

/* ------------------------------------------------------------- signals
 * (coop_signal.c) The program blocks the signals it waits for (POSIX asks
 * it to); a waited-for signal the thread does not block is blocked for
 * the wait, as the kernel does for sigtimedwait. The wait itself is a
 * signalfd (the one place where signalfd's rule, the signal blocked,
 * holds by contract) read by the hub. */
int gr__sigwait_coop(const sigset_t *set, int *sig);
int gr__sigwaitinfo_coop(const sigset_t *set, siginfo_t *info);
int gr__sigtimedwait_coop(const sigset_t *set, siginfo_t *info, const struct timespec *timeout);
/* mask is applied at the moment of delivery only: meanwhile the other
 * green threads run with the thread's own mask. */
int gr__sigsuspend_coop(const sigset_t *mask);
int gr__pause_coop(void);

/* ------------------------------------------------------------ children
 * (coop_process.c) A wait on one child (pid > 0, P_PID, P_PIDFD) for its
 * end is a wait on a pidfd; any other (pid <= 0, P_ALL, P_PGID, or
 * WUNTRACED/WSTOPPED/WCONTINUED) polls with WNOHANG on a timer backing off
 * from 1 to 20 ms. */
pid_t gr__wait_coop(int *status);
pid_t gr__waitpid_coop(pid_t pid, int *status, int options);
pid_t gr__wait3_coop(int *status, int options, struct rusage *usage);
pid_t gr__wait4_coop(pid_t pid, int *status, int options, struct rusage *usage);
int gr__waitid_coop(idtype_t idtype, id_t id, siginfo_t *info, int options);

/* system(3) as glibc 2.36's: /bin/sh -c line, SIGINT and SIGQUIT ignored
 * (reference-counted across concurrent calls) and SIGCHLD blocked in the
 * calling OS thread while the shell runs. */
int gr__system_coop(const char *line);

/* popen(3) and pclose(3) as glibc's, on a stream made with fopencookie
 * whose reads and writes park the green thread (fileno() of it is -1).
 * pclose of a stream popen did not make is fclose, as in glibc (whose
 * pclose is fclose), so libc's own popen streams close right too. */
FILE *gr__popen_coop(const char *command, const char *mode);
int gr__pclose_coop(FILE *stream);

#endif
