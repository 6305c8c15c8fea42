/* Portable context switch on ucontext: slow (swapcontext makes a
 * sigprocmask system call per switch) but available everywhere, and run
 * by the tests so the core never depends on what only the assembly does. */
#include "ctx.h"

#include <stdint.h>
#include <stdlib.h>

/* makecontext passes only int arguments, so the entry and its argument
 * travel as 32-bit halves. */
static void ucontext_start(unsigned entry_hi, unsigned entry_lo, unsigned arg_hi,
                           unsigned arg_lo)
{
    uintptr_t entry = (uintptr_t)((uint64_t)entry_hi << 32 | entry_lo);
    uintptr_t arg = (uintptr_t)((uint64_t)arg_hi << 32 | arg_lo);

    ((void (*)(void *))entry)((void *)arg);
    abort(); /* entry must never return */
}

void gr__ctx_make(gr__ctx *ctx, void *stack_lo, size_t stack_size,
                  void (*entry)(void *), void *arg)
{
    uint64_t e = (uint64_t)(uintptr_t)entry;
    uint64_t a = (uint64_t)(uintptr_t)arg;

    getcontext(&ctx->uc);
    ctx->uc.uc_stack.ss_sp = stack_lo;
    ctx->uc.uc_stack.ss_size = stack_size;
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, (void (*)(void))ucontext_start, 4, (unsigned)(e >> 32),
                (unsigned)e, (unsigned)(a >> 32), (unsigned)a);
}

void gr__ctx_switch(gr__ctx *from, gr__ctx *to)
{
    swapcontext(&from->uc, &to->uc);
}

const char *gr__ctx_impl(void)
{
    return "ucontext";
}
