/* Channel: an unbuffered rendezvous. Whoever comes second completes the
 * exchange on the spot: it takes the value from (or puts it into) the
 * parked peer's waiter and makes the peer ready, so a message costs one
 * switch. A parked sender's value lives in its own waiter, on its stack. */
#include "sync/sync.h"

void gr_chan_init(gr_chan *c)
{
    c->senders_.head_ = c->senders_.tail_ = NULL;
    c->receivers_.head_ = c->receivers_.tail_ = NULL;
    c->watchers_.head_ = c->watchers_.tail_ = NULL;
    c->closed_ = 0;
}

static int closed(void)
{
    errno = EPIPE;
    return -1;
}

int gr_chan_send(gr_chan *c, void *v, int64_t deadline)
{
    gr__waiter w;

    if (gr__check_cancel() != 0)
        return -1;
    if (GR__UNLIKELY(c->closed_))
        return closed();
    if (gr__handoff(&c->receivers_, v) == 0)
        return 0;
    w.data = v;
    /* A waiting sender is what watches of the channel wait for. */
    if (GR__UNLIKELY(c->watchers_.head_ != NULL) && deadline != 0)
        gr__wake_all(&c->watchers_, NULL, 0);
    /* Success means a receiver took it; a close wakes us with EPIPE. */
    return gr__wait_queue(&c->senders_, &w, deadline, "channel send");
}

int gr_chan_recv(gr_chan *c, void **v, int64_t deadline)
{
    gr__waiter w, *s;

    if (gr__check_cancel() != 0)
        return -1;
    if (GR__UNLIKELY(c->closed_))
        return closed();
    if (c->senders_.head_ && (s = gr__wq_pop(&c->senders_))) {
        w.data = s->data;
        gr__wake(s, 0);
    } else if (gr__wait_queue(&c->receivers_, &w, deadline, "channel receive") != 0) {
        return -1;
    }
    if (v)
        *v = w.data;
    return 0;
}

void gr_chan_close(gr_chan *c)
{
    c->closed_ = 1;
    gr__wake_all(&c->senders_, NULL, EPIPE);
    gr__wake_all(&c->receivers_, NULL, EPIPE);
    gr__wake_all(&c->watchers_, NULL, 0);
}

int gr__chan_ready(const gr_chan *c)
{
    return c->closed_ || gr__wq_has_parked(&c->senders_);
}

/* Watches are not receivers: they take no value, and a sender hands its
 * value to a receiver only. */
int gr__chan_watch(gr_chan *c, gr__watch *wt)
{
    if (gr__chan_ready(c))
        return 1;
    gr__watch_queue(wt, &c->watchers_);
    return 0;
}
