/* x86-64: everything is in ctx_x86_64.S. */
#include "ctx.h"

const char *gr__ctx_impl(void)
{
    return "x86_64";
}
