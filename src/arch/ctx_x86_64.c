/* x86-64: the switch is in ctx_x86_64.S. */
#include "ctx.h"

const char *gr__ctx_impl(void)
{
    return "x86_64";
}

/* The frame SAVE_FRAME left (ctx_x86_64.S): rbp at +48, the return
 * address at +56. */
void gr__ctx_saved_frame(const gr__ctx *ctx, uintptr_t *pc, uintptr_t *fp, uintptr_t *sp)
{
    const uintptr_t *frame = ctx->sp;

    *sp = (uintptr_t)frame;
    *fp = frame[6];
    *pc = frame[7];
}
