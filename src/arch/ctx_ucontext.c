/* Portable context switch on ucontext: slow (swapcontext makes a
 * sigprocmask system call per switch, and carry_mask one more) but
 * available everywhere, and run by the tests so the core never depends on
 * what only the assembly does. */
#define _GNU_SOURCE /* REG_RIP and co. */
#include "ctx.h"

#include <fenv.h>
#include <fpu_control.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

/* The signal mask is the OS thread's, as under the assembly switch, which
 * never touches it; swapcontext and setcontext would give each context a
 * mask of its own. The green threads of a thread share its mask: grove's
 * sigwait and sigsuspend block the signals they wait for in the thread
 * while they are parked (src/os/coop_signal.c), and system blocks SIGCHLD
 * there while its shell runs. So the next context gets the mask in force. */
static void carry_mask(gr__ctx *to)
{
    pthread_sigmask(SIG_BLOCK, NULL, &to->uc.uc_sigmask);
}

/* makecontext passes only int arguments, so the pointers travel as 32-bit
 * halves. */
typedef struct start {
    gr__ctx_entry entry;
    void *arg;
} start;

static void ucontext_start(unsigned hi, unsigned lo)
{
    start *s = (start *)(uintptr_t)((uint64_t)hi << 32 | lo);
    gr__ctx *next;
    fpu_control_t cw = _FPU_DEFAULT;

    fesetenv(FE_DFL_ENV);
    /* FE_DFL_ENV leaves what glibc takes for reserved bits as they were,
     * on aarch64 FPCR's DN and AHP among them: set the default control word
     * itself too. */
    _FPU_SETCW(cw);
    next = s->entry(s->arg);
    carry_mask(next);
    setcontext(&next->uc);
    abort();
}

void gr__ctx_start(gr__ctx *from, gr__ctx *to, void *stack_lo, size_t stack_size,
                   gr__ctx_entry entry, void *arg)
{
    /* Lives in the starter's frame, which stays put until to has read it. */
    start s = {entry, arg};
    uint64_t p = (uint64_t)(uintptr_t)&s;

    getcontext(&to->uc);
    to->uc.uc_stack.ss_sp = stack_lo;
    to->uc.uc_stack.ss_size = stack_size;
    to->uc.uc_link = NULL;
    to->started = 1;
    from->started = 1;
    makecontext(&to->uc, (void (*)(void))ucontext_start, 2, (unsigned)(p >> 32), (unsigned)p);
    swapcontext(&from->uc, &to->uc);
}

void gr__ctx_switch(gr__ctx *from, gr__ctx *to)
{
    from->started = 1; /* a context that ran without being started: a root */
    carry_mask(to);
    swapcontext(&from->uc, &to->uc);
}

const char *gr__ctx_impl(void)
{
    return "ucontext";
}

/* What swapcontext saved (the registers of its caller). */
void gr__ctx_saved_frame(const gr__ctx *ctx, uintptr_t *pc, uintptr_t *fp, uintptr_t *sp)
{
    const mcontext_t *m = &ctx->uc.uc_mcontext;

#if defined(__x86_64__)
    *pc = (uintptr_t)m->gregs[REG_RIP];
    *fp = (uintptr_t)m->gregs[REG_RBP];
    *sp = (uintptr_t)m->gregs[REG_RSP];
#elif defined(__aarch64__)
    *pc = (uintptr_t)m->pc;
    *fp = (uintptr_t)m->regs[29];
    *sp = (uintptr_t)m->sp;
#else
    (void)m;
    *pc = *fp = *sp = 0;
#endif
}
