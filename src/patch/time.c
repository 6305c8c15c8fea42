/* Sleeps in green threads: gr_sleep to the same moment, rounded up to the
 * hub's millisecond (a sleep is never shorter than asked). A killed green
 * thread's sleep ends at once with ECANCELED (not EINTR, which the usual
 * "sleep again for what is left" loop would retry for ever); a Timeout
 * region ending first gives ETIMEDOUT. Arguments the kernel would refuse
 * go to the real call, which refuses them at once. */
#include "patch/io.h"

/* Sleep until the absolute ms deadline. 0, or -1 with errno. */
static int sleep_until(int64_t deadline)
{
    int err0 = errno;

    if (gr__glue_sleep(deadline) < 0)
        return -1;
    errno = err0;
    return 0;
}

static int ts_valid(const struct timespec *ts)
{
    return ts && ts->tv_sec >= 0 && ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000;
}

/* What is left until deadline, for rem. */
static void time_left(int64_t deadline, struct timespec *rem)
{
    int64_t left;

    if (!rem)
        return;
    left = deadline < 0 ? 0 : deadline - gr__glue_now();
    if (left < 0)
        left = 0;
    rem->tv_sec = (time_t)(left / 1000);
    rem->tv_nsec = (long)(left % 1000) * 1000000;
}

/* sleep before the originals are known: the system call. */
static unsigned int raw_sleep(unsigned int seconds)
{
    struct timespec ts = {(time_t)seconds, 0}, rem = {0, 0};

    if (syscall(SYS_nanosleep, &ts, &rem) == 0)
        return 0;
    return (unsigned)rem.tv_sec + (rem.tv_nsec > 0);
}

unsigned int sleep(unsigned int seconds)
{
    int64_t deadline;

    ORIG_OR(sleep, raw_sleep(seconds));
    if (!seconds || !gr__patch_coop(GR_PATCH_TIME))
        return gr__orig.sleep(seconds);
    deadline = gr__deadline_in_ms((int64_t)seconds * 1000);
    if (sleep_until(deadline) == 0)
        return 0;
    return (unsigned)((deadline - gr__glue_now() + 999) / 1000);
}

int usleep(__useconds_t useconds)
{
    struct timespec ts = {(time_t)(useconds / 1000000), (long)(useconds % 1000000) * 1000};

    ORIG_OR(usleep, (int)syscall(SYS_nanosleep, &ts, NULL));
    if (!useconds || !gr__patch_coop(GR_PATCH_TIME))
        return gr__orig.usleep(useconds);
    return sleep_until(gr__deadline_in_ts(&ts));
}

int nanosleep(const struct timespec *requested_time, struct timespec *remaining)
{
    int64_t deadline;

    ORIG_OR(nanosleep, (int)syscall(SYS_nanosleep, requested_time, remaining));
    if (!ts_valid(requested_time) || !gr__patch_coop(GR_PATCH_TIME))
        return gr__orig.nanosleep(requested_time, remaining);
    deadline = gr__deadline_in_ts(requested_time);
    if (sleep_until(deadline) == 0)
        return 0;
    GR__KEEP_ERRNO(time_left(deadline, remaining));
    return -1;
}

/* The clocks a sleep can be mapped onto the monotonic one for. */
static int mappable(clockid_t c)
{
    return c == CLOCK_REALTIME || c == CLOCK_MONOTONIC || c == CLOCK_BOOTTIME || c == CLOCK_TAI;
}

int clock_nanosleep(clockid_t clock_id, int flags, const struct timespec *req, struct timespec *rem)
{
    struct timespec rel = {0, 0}, now;
    int64_t deadline;
    int err0 = errno, rc = 0;

    ORIG_OR(clock_nanosleep, (int)syscall(SYS_clock_nanosleep, clock_id, flags, req, rem));
    if (!mappable(clock_id) || !ts_valid(req) || !gr__patch_coop(GR_PATCH_TIME))
        return gr__orig.clock_nanosleep(clock_id, flags, req, rem);
    if (flags & TIMER_ABSTIME) {
        /* The moment on clock_id, as a delay from now (a later step of
         * that clock is not followed). */
        clock_gettime(clock_id, &now);
        rel.tv_sec = req->tv_sec - now.tv_sec;
        rel.tv_nsec = req->tv_nsec - now.tv_nsec;
        if (rel.tv_nsec < 0)
            rel.tv_nsec += 1000000000, rel.tv_sec--;
        if (rel.tv_sec < 0)
            return 0;
    } else {
        rel = *req;
    }
    deadline = gr__deadline_in_ts(&rel);
    if (sleep_until(deadline) < 0) {
        rc = errno; /* clock_nanosleep returns its error, errno untouched */
        if (!(flags & TIMER_ABSTIME))
            time_left(deadline, rem);
    }
    errno = err0;
    return rc;
}
