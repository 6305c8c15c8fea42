/* What the synchronisation objects share: the core's queue wait
 * (gr__wait_queue and its wakers, core/core.h), and two rules that hold for
 * every object (docs/sync.md explains them):
 * - Handoff: a waker gives what it releases (a unit, an item, a lock, a
 *   value) to the first waiter still parked, through gr__wq_pop, and
 *   unparks it with status 0. A waiter that timed out or was killed is no
 *   longer parked, so it is skipped and can never swallow what was meant for
 *   it; a waiter woken with 0 owns what it was given, even if it is killed
 *   before it runs. A woken waiter never touches the object again, so the
 *   waker may free the object as soon as it is done with it.
 * - Cancellation: calls that take or hand over something (acquire, get, put,
 *   send, receive, wait on a condition) fail with ECANCELED at once in a
 *   killed thread, so a killed worker stops taking work. Calls that only wait
 *   for an outcome (event, async result, queue and group join, peek) succeed
 *   when the outcome is already there, as gr_join of a finished thread does,
 *   so clean-up code can collect it. Either kind fails with ECANCELED when it
 *   would have to wait. */
#ifndef GROVE_SYNC_H
#define GROVE_SYNC_H

#include "core/core.h"

#include <errno.h>
#include <stddef.h>

/* gr_group_spawn, with hook(g, result, hook_arg) run in the member as it
 * finishes (also when it was killed before it ran: result GR_CANCELED). */
gr_t gr__group_spawn_hooked(gr_group *grp, gr_fn fn, void *arg, const gr_opts *opts,
                            int64_t deadline, gr_exit_fn hook, void *hook_arg);

/* Watches (gr_wait_any, wait.c): 1 if the object is ready now (nothing is
 * linked), else 0 with a watch of the caller linked in it (core.h). */
int gr__event_watch(gr_event *e, gr__watch *wt);
int gr__async_watch(gr_async *a, gr__watch *wt);
int gr__queue_watch(gr_queue *q, gr__watch *wt);
int gr__chan_watch(gr_chan *c, gr__watch *wt);
/* A channel a receive would not wait on: a sender waits, or it is closed. */
int gr__chan_ready(const gr_chan *c);

#endif
