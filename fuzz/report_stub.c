/* The fuzz targets run the HTTP layer without a hub: what it reports
 * (a handler's failure, say) goes nowhere, as the fuzzer wants no noise. */
#include "core/core.h"

void gr__report(int kind, int err, const char *fmt, ...)
{
    (void)kind;
    (void)err;
    (void)fmt;
}
