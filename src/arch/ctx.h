/* The contract between the core and the per-architecture context switch.
 *
 * A context is the saved machine state of one flow of control: the stack
 * pointer, with the callee-saved registers and the floating-point control
 * state pushed on the stack it points into. Three implementations exist,
 * chosen at build time: hand-written assembly for x86-64 (System V) and for
 * aarch64 (AAPCS64), and a portable ucontext fallback (GR_CTX_UCONTEXT).
 *
 * This header is self-contained on purpose: the aarch64 self-check program
 * (tests/arch) builds the arch layer alone, without the rest of grove. */
#ifndef GROVE_ARCH_CTX_H
#define GROVE_ARCH_CTX_H

#include <stddef.h>
#include <stdint.h>

#if defined(GR_CTX_UCONTEXT)
#include <ucontext.h>
#endif

typedef struct gr__ctx {
#if defined(GR_CTX_UCONTEXT)
    ucontext_t uc;
    int started;
#else
    void *sp; /* NULL until the context first switches away; everything
                 else lives on the stack sp points into */
#endif
} gr__ctx;

/* Mark ctx as a context that has not run yet (see gr__ctx_start). */
static inline void gr__ctx_init(gr__ctx *ctx)
{
#if defined(GR_CTX_UCONTEXT)
    ctx->started = 0;
#else
    ctx->sp = NULL;
#endif
}

/* 1 once ctx has been started: it can then be resumed by gr__ctx_switch. */
static inline int gr__ctx_started(const gr__ctx *ctx)
{
#if defined(GR_CTX_UCONTEXT)
    return ctx->started;
#else
    return ctx->sp != NULL;
#endif
}

/* The function a new context runs. It returns the context to resume once
 * it is finished (a started one); or it never returns. */
typedef gr__ctx *(*gr__ctx_entry)(void *arg);

/* Save the current context into from, then run entry(arg) as the context
 * to, on the stack [stack_lo, stack_lo + stack_size) (16-byte aligned at
 * both ends), with the default floating-point control state. When entry
 * returns, to is finished and the context entry returned is resumed. The
 * call returns when some context switches back to from.
 *
 * Why entry returns instead of switching away for good: the new context's
 * first frame is a call made by the starter, and its death is a return to
 * it, so the return-stack predictor of the CPU is right both times. In the
 * common case (the starter is the one resumed, as when a thread spawns a
 * child and joins it) not one return in the whole sequence is
 * mispredicted. */
void gr__ctx_start(gr__ctx *from, gr__ctx *to, void *stack_lo, size_t stack_size,
                   gr__ctx_entry entry, void *arg);

/* Save the current context into from and resume to (a started context).
 * Returns when some other context switches back to from. Preserves exactly
 * what the ABI requires a callee to preserve: on x86-64 rbx, rbp, r12-r15,
 * rsp, MXCSR control bits and the x87 control word; on aarch64 x19-x29, lr,
 * sp, d8-d15 and FPCR. */
void gr__ctx_switch(gr__ctx *from, gr__ctx *to);

/* The name of the implementation compiled in: "x86_64", "aarch64" or
 * "ucontext". */
const char *gr__ctx_impl(void);

/* Where a suspended context stands, for backtraces of threads that are not
 * running: *pc the address it resumes at (in the caller of
 * gr__ctx_switch), *fp its frame pointer (rbp, x29) and *sp its stack
 * pointer as they were when it switched away. ctx must be started and not
 * running. */
void gr__ctx_saved_frame(const gr__ctx *ctx, uintptr_t *pc, uintptr_t *fp, uintptr_t *sp);

#endif
