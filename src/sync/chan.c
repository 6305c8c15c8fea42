/* Channel: an unbuffered rendezvous. Whoever comes second completes the
 * exchange on the spot: it takes the value from (or puts it into) the
 * parked peer's waiter and makes the peer ready, so a message costs one
 * switch. A parked sender's value lives in its own waiter, on its stack. */
#include "sync/sync.h"

void gr_chan_init(gr_chan *c)
{
    c->senders_.head_ = c->senders_.tail_ = NULL;
    c->receivers_.head_ = c->receivers_.tail_ = NULL;
    c->closed_ = 0;
}

static int closed(void)
{
    errno = EPIPE;
    return -1;
}

int gr_chan_send(gr_chan *c, void *v, int64_t deadline)
{
    gr_hub *h = gr__hub();
    gr__waiter w;

    if (!h || gr__sync_killed(h) != 0)
        return -1;
    if (GR__UNLIKELY(c->closed_))
        return closed();
    if (gr__sync_handoff(gr__wq_of(&c->receivers_), v) == 0)
        return 0;
    w.data = v;
    /* Success means a receiver took it; a close wakes us with EPIPE. */
    return gr__sync_wait(h, gr__wq_of(&c->senders_), &w, deadline, "channel send");
}

int gr_chan_recv(gr_chan *c, void **v, int64_t deadline)
{
    gr_hub *h = gr__hub();
    gr__waiter w, *s;

    if (!h || gr__sync_killed(h) != 0)
        return -1;
    if (GR__UNLIKELY(c->closed_))
        return closed();
    if (c->senders_.head_ && (s = gr__wq_pop_parked(gr__wq_of(&c->senders_)))) {
        w.data = s->data;
        gr__unpark(s->g, 0);
    } else if (gr__sync_wait(h, gr__wq_of(&c->receivers_), &w, deadline, "channel receive") !=
               0) {
        return -1;
    }
    if (v)
        *v = w.data;
    return 0;
}

void gr_chan_close(gr_chan *c)
{
    c->closed_ = 1;
    gr__sync_wake_all(gr__wq_of(&c->senders_), NULL, EPIPE);
    gr__sync_wake_all(gr__wq_of(&c->receivers_), NULL, EPIPE);
}
