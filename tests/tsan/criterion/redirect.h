/* Criterion's stderr redirection, for the ThreadSanitizer build (see
 * criterion.h here): the warnings a test provokes on purpose go nowhere. */
#ifndef GROVE_TSAN_CRITERION_REDIRECT_H
#define GROVE_TSAN_CRITERION_REDIRECT_H

#include <stdio.h>

#define cr_redirect_stderr() ((void)freopen("/dev/null", "w", stderr))

#endif
