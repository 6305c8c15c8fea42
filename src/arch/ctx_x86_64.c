/* Building the first frame of a new x86-64 context (see ctx_x86_64.S for
 * the layout it must match). */
#include "ctx.h"

#include <stdint.h>

void gr__ctx_trampoline(void);

void gr__ctx_make(gr__ctx *ctx, void *stack_lo, size_t stack_size,
                  void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)stack_lo + stack_size) & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)(top - 80);
    uint32_t mxcsr;
    uint16_t x87cw;

    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(x87cw));
    frame[0] = mxcsr | (uint64_t)x87cw << 32;
    frame[1] = 0;                         /* r15 */
    frame[2] = 0;                         /* r14 */
    frame[3] = 0;                         /* r13 */
    frame[4] = (uint64_t)(uintptr_t)arg;  /* r12 */
    frame[5] = (uint64_t)(uintptr_t)entry; /* rbx */
    frame[6] = 0;                         /* rbp: ends frame-pointer walks */
    frame[7] = (uint64_t)(uintptr_t)gr__ctx_trampoline;
    frame[8] = 0; /* the trampoline's own return address: none */
    frame[9] = 0;
    ctx->sp = frame;
}

const char *gr__ctx_impl(void)
{
    return "x86_64";
}
