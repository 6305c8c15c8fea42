/* Building the first frame of a new aarch64 context (see ctx_aarch64.S for
 * the layout it must match). */
#include "ctx.h"

#include <stdint.h>

void gr__ctx_trampoline(void);

void gr__ctx_make(gr__ctx *ctx, void *stack_lo, size_t stack_size,
                  void (*entry)(void *), void *arg)
{
    uintptr_t top = ((uintptr_t)stack_lo + stack_size) & ~(uintptr_t)15;
    uint64_t *frame = (uint64_t *)(top - 192); /* 176-byte frame + 16 */
    uint64_t fpcr;
    int i;

    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    frame[0] = fpcr;
    frame[1] = 0;                            /* padding */
    for (i = 2; i < 10; i++)
        frame[i] = 0;                        /* d8-d15 */
    frame[10] = (uint64_t)(uintptr_t)entry;  /* x19 */
    frame[11] = (uint64_t)(uintptr_t)arg;    /* x20 */
    for (i = 12; i < 20; i++)
        frame[i] = 0;                        /* x21-x28 */
    frame[20] = 0;                           /* x29: ends frame-pointer walks */
    frame[21] = (uint64_t)(uintptr_t)gr__ctx_trampoline; /* x30 */
    frame[22] = 0; /* a zero frame record (fp, lr) above the trampoline's */
    frame[23] = 0; /* sp: the trampoline's own caller, none */
    ctx->sp = frame;
}

const char *gr__ctx_impl(void)
{
    return "aarch64";
}
