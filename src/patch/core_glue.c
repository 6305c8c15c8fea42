/* The interposers' view of the core: the one file of src/patch that
 * includes core.h (the core's contract; never its layout). Everything else
 * in src/patch asks through these functions, so a change in the core (or a
 * renamed public call) is mended here alone.
 *
 * The rule for "inside a green thread": the OS thread has a hub and the
 * context running is one of its green threads. The root context (main()
 * before gr_main, or any thread's own stack), the hub's own stack (a
 * gr_hub_post callback) and threads without a hub (plain pthreads, the
 * thread pool's workers) are outside: there a patched call is the real
 * call. */
#include "patch/patch.h"

#include "core/core.h"

int gr__glue_in_green(void)
{
    return gr__in_green_thread();
}

int gr__glue_wait_fd(int fd, int events, int64_t deadline, int after_eagain)
{
    return gr_wait_fd(fd, events | (after_eagain ? GR_EDGE : 0), deadline);
}

int gr__glue_poll(struct pollfd *fds, nfds_t nfds, int64_t deadline)
{
    return gr_poll(fds, nfds, deadline);
}

int gr__glue_sleep(int64_t deadline)
{
    return gr_sleep(deadline);
}

int gr__glue_testcancel(void)
{
    return gr_testcancel();
}

int64_t gr__glue_now(void)
{
    return gr_now_update();
}

void gr__glue_forget(int fd)
{
    gr_fd_forget(fd);
}

int gr__glue_pool_run(void *(*fn)(void *), void *arg, void (*discard)(void *res, void *arg),
                      int64_t deadline)
{
    return gr_threadpool_run(fn, arg, NULL, discard, deadline);
}
