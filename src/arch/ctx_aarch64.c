/* aarch64: everything is in ctx_aarch64.S. */
#include "ctx.h"

const char *gr__ctx_impl(void)
{
    return "aarch64";
}
