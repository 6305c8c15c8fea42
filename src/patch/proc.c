/* Signal waits and child processes in green threads: sigwait,
 * sigwaitinfo, sigtimedwait, sigsuspend, pause, the wait family, system,
 * popen and pclose. Each is grove's cooperative version (src/os/coop.h,
 * tested against libc's own in tests/test_coop.c) in a green thread and
 * libc's anywhere else, so a plain thread, main() or a pool worker keeps
 * libc's exact behaviour (cancellation points included). glibc's system,
 * popen and pclose wait inside libc, where no interposer sees it, so they
 * are replaced whole rather than helped.
 *
 * No call here is made by an allocator at start-up: an original not yet
 * resolved is resolved on demand, and while that cannot be (dlsym running
 * on this thread) grove's version stands in for it; outside a green
 * thread it blocks as libc's does. */
#include "patch/patch.h"

#include "os/coop.h"

/* The original of name, resolving it first if need be. */
#define REAL_READY(name)                                                                           \
    (GR__P_LIKELY(gr__orig.name != NULL) || (gr__patch_resolve() && gr__orig.name != NULL))

/* Return grove's version (call) when the family makes this call
 * cooperative here, or when libc's cannot be had. */
#define COOP_OR_REAL(fam, name, call)                                                              \
    do {                                                                                           \
        if (gr__patch_coop(fam) || GR__P_UNLIKELY(!REAL_READY(name)))                              \
            return call;                                                                           \
    } while (0)

/* ------------------------------------------------------------- signals */

int sigwait(const sigset_t *restrict set, int *restrict sig)
{
    COOP_OR_REAL(GR_PATCH_SIGNAL, sigwait, gr__sigwait_coop(set, sig));
    return gr__orig.sigwait(set, sig);
}

int sigwaitinfo(const sigset_t *restrict set, siginfo_t *restrict info)
{
    COOP_OR_REAL(GR_PATCH_SIGNAL, sigwaitinfo, gr__sigwaitinfo_coop(set, info));
    return gr__orig.sigwaitinfo(set, info);
}

int sigtimedwait(const sigset_t *restrict set, siginfo_t *restrict info,
                 const struct timespec *restrict timeout)
{
    COOP_OR_REAL(GR_PATCH_SIGNAL, sigtimedwait, gr__sigtimedwait_coop(set, info, timeout));
    return gr__orig.sigtimedwait(set, info, timeout);
}

int sigsuspend(const sigset_t *set)
{
    COOP_OR_REAL(GR_PATCH_SIGNAL, sigsuspend, gr__sigsuspend_coop(set));
    return gr__orig.sigsuspend(set);
}

int pause(void)
{
    COOP_OR_REAL(GR_PATCH_SIGNAL, pause, gr__pause_coop());
    return gr__orig.pause();
}

/* ---------------------------------------------------------- processes */

__pid_t waitpid(__pid_t pid, int *stat_loc, int options)
{
    COOP_OR_REAL(GR_PATCH_PROCESS, waitpid, gr__waitpid_coop(pid, stat_loc, options));
    return gr__orig.waitpid(pid, stat_loc, options);
}

__pid_t wait(int *stat_loc)
{
    COOP_OR_REAL(GR_PATCH_PROCESS, wait, gr__wait_coop(stat_loc));
    return gr__orig.wait(stat_loc);
}

__pid_t wait3(int *stat_loc, int options, struct rusage *usage)
{
    COOP_OR_REAL(GR_PATCH_PROCESS, wait3, gr__wait3_coop(stat_loc, options, usage));
    return gr__orig.wait3(stat_loc, options, usage);
}

__pid_t wait4(__pid_t pid, int *stat_loc, int options, struct rusage *usage)
{
    COOP_OR_REAL(GR_PATCH_PROCESS, wait4, gr__wait4_coop(pid, stat_loc, options, usage));
    return gr__orig.wait4(pid, stat_loc, options, usage);
}

int waitid(idtype_t idtype, __id_t id, siginfo_t *infop, int options)
{
    COOP_OR_REAL(GR_PATCH_PROCESS, waitid, gr__waitid_coop(idtype, id, infop, options));
    return gr__orig.waitid(idtype, id, infop, options);
}

int system(const char *command)
{
    COOP_OR_REAL(GR_PATCH_PROCESS, system, gr__system_coop(command));
    return gr__orig.system(command);
}

/* A stream made here in a green thread may be read, written and closed
 * anywhere: its cookie functions park only in a green thread. */
FILE *popen(const char *command, const char *modes)
{
    COOP_OR_REAL(GR_PATCH_PROCESS, popen, gr__popen_coop(command, modes));
    return gr__orig.popen(command, modes);
}

/* Both kinds of stream close right either way (glibc's pclose is fclose,
 * which runs our stream's own close). */
int pclose(FILE *stream)
{
    COOP_OR_REAL(GR_PATCH_PROCESS, pclose, gr__pclose_coop(stream));
    return gr__orig.pclose(stream);
}
