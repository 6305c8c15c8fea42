/* aarch64: the switch is in ctx_aarch64.S. */
#include "ctx.h"

const char *gr__ctx_impl(void)
{
    return "aarch64";
}

/* The frame SAVE_FRAME left (ctx_aarch64.S): x29 at +160, x30 (lr) at
 * +168. */
void gr__ctx_saved_frame(const gr__ctx *ctx, uintptr_t *pc, uintptr_t *fp, uintptr_t *sp)
{
    const uintptr_t *frame = ctx->sp;

    *sp = (uintptr_t)frame;
    *fp = frame[20];
    *pc = frame[21];
}
