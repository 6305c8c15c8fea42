/* Pooled blocks: big short-lived buffers from the hub's stack pool (see
 * core.h). A block is a stack of its own size class that no thread runs
 * on; its lowest GR__STACK_RESERVED bytes (the canary a stack of that size
 * would have) are never handed out, so that a stack of the same size can
 * take the region later and find its canary intact. */
#include "layout.h"

void *gr__block_get(size_t size, uintptr_t *entry)
{
    gr_hub *h = gr__hub_get();
    uintptr_t e;

    if (!h || size > GR_STACK_MAX - GR__STACK_RESERVED) {
        errno = ENOMEM;
        return NULL;
    }
    if (!(e = gr__stack_get(&h->stacks, gr__stack_round(size + GR__STACK_RESERVED))))
        return NULL;
    *entry = e;
    return (char *)(e & ~GR__STACK_GUARDED_BIT) + GR__STACK_RESERVED;
}

void gr__block_put(uintptr_t entry, size_t size)
{
    gr__stack s;

    gr__stack_from_entry(entry, gr__stack_round(size + GR__STACK_RESERVED), &s);
    gr__stack_put(&gr__tls_hub->stacks, &s);
}
