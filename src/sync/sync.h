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

#endif
