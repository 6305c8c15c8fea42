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

#if defined(GR_CTX_UCONTEXT)
#include <ucontext.h>
#endif

typedef struct gr__ctx {
#if defined(GR_CTX_UCONTEXT)
    ucontext_t uc;
#else
    void *sp; /* everything else lives on the stack sp points into */
#endif
} gr__ctx;

/* Prepare ctx so that the first gr__ctx_switch() to it calls entry(arg) on
 * the stack [stack_lo, stack_lo + stack_size). The stack must be at least
 * 16-byte aligned at both ends. entry must never return (it must switch away
 * for the last time instead); if it does, the process traps. The initial
 * floating-point control state is copied from the caller's. */
void gr__ctx_make(gr__ctx *ctx, void *stack_lo, size_t stack_size,
                  void (*entry)(void *), void *arg);

/* Save the current context into from and resume to. Returns when some other
 * context switches back to from. Preserves exactly what the ABI requires a
 * callee to preserve: on x86-64 rbx, rbp, r12-r15, rsp, MXCSR control bits
 * and the x87 control word; on aarch64 x19-x29, lr, sp, d8-d15 and FPCR. */
void gr__ctx_switch(gr__ctx *from, gr__ctx *to);

/* The name of the implementation compiled in: "x86_64", "aarch64" or
 * "ucontext". */
const char *gr__ctx_impl(void);

#endif
