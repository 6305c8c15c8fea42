/* grove/debug.h: seeing inside a running program (docs/debug.md).
 *
 * - The run-info dump (gevent's format_run_info, Go's goroutine dump):
 *   every green thread of every hub, on demand or on a signal.
 * - The debug console (gevent's backdoor): a text console on a Unix
 *   socket only the program's user can reach.
 *
 * The blocking monitor and the report hook are in grove.h
 * (gr_config.max_blocking_ms, gr_report_hook_set). */
#ifndef GROVE_DEBUG_H
#define GROVE_DEBUG_H

#include <grove.h>

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Write the run-info dump to out: for every live hub (in creation order),
 * its counters and each of its green threads (the root context first):
 * name, handle, state, what it waits for and until when, whether it was
 * killed, and its stack's high-water mark. Each hub describes its own
 * threads, asked through gr_hub_post; the caller waits for the answers
 * until deadline (cooperatively in a green thread, shielded from kills),
 * and a hub that has not answered by then (one busy in a long computation)
 * is listed as not answering. Any thread may call it; it creates no hub.
 * Returns 0, or -1 with EINVAL (out NULL), ENOMEM, or the error of the
 * write (errno as fwrite left it). */
GR_API int gr_dump(FILE *out, int64_t deadline);

/* gr_dump to a file descriptor (written whole; a non-blocking fd is waited
 * for until deadline). Errors: EBADF, ENOMEM, the write's errno,
 * ETIMEDOUT. */
GR_API int gr_dump_fd(int fd, int64_t deadline);

/* From now on, signal sig writes the run-info dump to fd (Go's SIGQUIT
 * dump, without the exit). The handler is async-signal-safe: it only wakes
 * grove's monitor thread (started on first use), which makes the dump, so
 * the signal may come on any thread. One signal at a time: a later call
 * replaces the signal and the fd (the old signal's previous action is put
 * back). sig 0 turns it off. fd stays the caller's and must stay open.
 * Returns 0, or -1 with EINVAL (sig SIGKILL, SIGSTOP, SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL, the monitor's own signal, or not a signal), or the
 * error of sigaction, eventfd or pthread_create. Thread-safe. */
GR_API int gr_dump_on_signal(int sig, int fd);

/* ------------------------------------------------------------ console */

typedef struct gr_console gr_console;

/* Serve a debug console (gevent's backdoor) on a new Unix-domain socket
 * at path, in the calling thread's hub (its own green threads; it creates
 * the hub if needed). No one but the program's user can reach it: the
 * socket file is created with mode 0600 and listens only then, abstract
 * names ("@...") are refused, and a client whose user id (SO_PEERCRED) is
 * neither the program's nor root's is turned away; it is never TCP. An
 * existing file at path is not replaced (EADDRINUSE): remove a stale
 * socket first. Commands, one per line: help, threads (the run-info dump
 * of every hub), stats, bt HANDLE (where a green thread of this hub
 * stands), kill HANDLE, quit. Returns the console, or NULL with EINVAL
 * (path NULL, empty or abstract), ENAMETOOLONG, EADDRINUSE, EACCES,
 * ENOMEM, or the error of socket, bind or listen. */
GR_API gr_console *gr_console_start(const char *path);

/* Stop the console, from its hub: no new clients, open sessions are ended
 * at once (and waited for, even if the caller has been killed), the
 * socket file is removed and c is freed. Returns 0, or -1 with EINVAL (c
 * NULL) or EDEADLK (a hub callback: c is not freed). */
GR_API int gr_console_stop(gr_console *c);

#ifdef __cplusplus
}
#endif

#endif
