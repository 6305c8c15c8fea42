/* The thread pool's internals that tests reach (the API is in grove.h). */
#ifndef GROVE_OS_THREADPOOL_H
#define GROVE_OS_THREADPOOL_H

#include <stdint.h>

/* How long a worker waits for a job before it leaves: 10 s (grove.h,
 * docs/threads.md) unless a test sets a shorter time, so that no test has
 * to wait 10 s for workers to leave. ms <= 0 restores the default.
 * Thread-safe; a worker already idle keeps the time it started with. */
void gr__threadpool_set_idle_ms(int64_t ms);

#endif
