/* Looking inside running hubs: the registry of live hubs, the run-info
 * dump (gevent's format_run_info, Go's goroutine dump) and backtraces of
 * suspended green threads.
 *
 * A hub is single-threaded, so each hub describes its own threads: a dump
 * asks every other hub through a post and waits for the answers (a hub
 * busy in a long computation cannot answer; the dump says so at its
 * deadline). A hub that exits before answering is answered for, by its
 * removal from the registry, so a dump never waits on a hub that is gone
 * and nothing leaks. */
#define _GNU_SOURCE
#include "layout.h"

#include "grove/debug.h"

#include <execinfo.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

pthread_mutex_t gr__registry_lock = PTHREAD_MUTEX_INITIALIZER;
gr_hub *gr__registry_head;
static gr_hub *registry_tail;
static uint64_t hubs_made;

/* ------------------------------------------------------------ requests */

typedef struct answer {
    gr_hub *hub;
    struct request *req;
    char *text; /* malloc'd by the hub; NULL: it did not answer */
    size_t len;
    int done;
} answer;

/* A dump in flight: one answer per hub, and one reference for the caller
 * and each hub yet to answer. Linked in the in-flight list under the
 * registry lock; answers and the wait are under its own lock. */
typedef struct request {
    struct request *next;
    int lock;
    gr__xq q;
    size_t pending, refs, n;
    answer answers[];
} request;

static request *in_flight;

/* Under the registry lock. */
static void request_unref(request *r)
{
    if (--r->refs)
        return;
    for (request **p = &in_flight; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            break;
        }
    }
    for (size_t i = 0; i < r->n; i++)
        free(r->answers[i].text);
    free(r);
}

/* Under the registry lock: record a's text and wake the caller once every
 * hub has answered. */
static void answer_done(answer *a, char *text, size_t len)
{
    request *r = a->req;
    gr__xwaiter *w;

    gr__xlock(&r->lock);
    a->text = text;
    a->len = len;
    a->done = 1;
    if (--r->pending == 0 && (w = gr__xq_pop(&r->q)))
        gr__xwake(w, NULL, 0);
    gr__xunlock(&r->lock);
    request_unref(r);
}

/* ------------------------------------------------------------ registry */

void gr__registry_add(gr_hub *h)
{
    h->os_thread = pthread_self();
    h->tid = (int)syscall(SYS_gettid);
    pthread_mutex_lock(&gr__registry_lock);
    h->id = ++hubs_made;
    h->reg_prev = registry_tail;
    h->reg_next = NULL;
    if (registry_tail)
        registry_tail->reg_next = h;
    else
        gr__registry_head = h;
    registry_tail = h;
    gr__monitor_hub_added(h);
    pthread_mutex_unlock(&gr__registry_lock);
}

void gr__registry_remove(gr_hub *h)
{
    pthread_mutex_lock(&gr__registry_lock);
    if (h->reg_prev || gr__registry_head == h) {
        if (h->reg_prev)
            h->reg_prev->reg_next = h->reg_next;
        else
            gr__registry_head = h->reg_next;
        if (h->reg_next)
            h->reg_next->reg_prev = h->reg_prev;
        else
            registry_tail = h->reg_prev;
        h->reg_prev = h->reg_next = NULL;
    }
    /* Answer for it: its posted question dies with it. A hub appears once
     * in a request, whose last reference the answer may drop. */
    for (request *r = in_flight, *next; r; r = next) {
        next = r->next;
        for (size_t i = 0; i < r->n; i++) {
            if (r->answers[i].hub == h) {
                if (!r->answers[i].done)
                    answer_done(&r->answers[i], NULL, 0);
                break;
            }
        }
    }
    pthread_mutex_unlock(&gr__registry_lock);
    gr__monitor_hub_removed(h);
}

/* In a forked child, where only the forking thread (and its hub, if it
 * has one) exists: the other hubs and the dumps in flight are the
 * parent's. Nothing else runs, so no lock is needed. */
void gr__registry_after_fork(gr_hub *kept)
{
    gr__registry_head = registry_tail = NULL;
    in_flight = NULL;
    if (!kept)
        return;
    kept->reg_prev = kept->reg_next = NULL;
    kept->os_thread = pthread_self();
    kept->tid = (int)syscall(SYS_gettid);
    gr__registry_head = registry_tail = kept;
}

/* ------------------------------------------------------- one hub's dump */

/* The deepest a stack has been used: from the top of the stack down to its
 * lowest page the kernel has given memory to (mincore(2); no page is
 * touched). A pooled stack keeps the pages of its earlier users until the
 * hub trims the pool, so this is the deepest use since the stack was last
 * trimmed. One system call per 4 MiB of stack. */
static size_t stack_high_water(const gr__g *g)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)g->stack.lo & ~(uintptr_t)(page - 1);
    uintptr_t top = (uintptr_t)g->start_top;
    unsigned char vec[1024];

    for (uintptr_t a = lo; a < top; a += sizeof vec * page) {
        size_t len = top - a < sizeof vec * page ? top - a : sizeof vec * page;

        if (mincore((void *)a, len, vec) != 0)
            return 0;
        for (size_t i = 0; i < (len + page - 1) / page; i++)
            if (vec[i] & 1)
                return top - (a + i * page);
    }
    return 0;
}

static const char *state_name(const gr_hub *h, const gr__g *g)
{
    if (g == h->current)
        return "running";
    switch (g->state) {
    case GR__NEW:
        return "waiting to start";
    case GR__PARKED:
        return "blocked";
    case GR__DONE:
        return "finished";
    default:
        return "ready";
    }
}

static void dump_thread(FILE *out, gr_hub *h, const gr__g *g)
{
    char name[GR_NAME_MAX + 1];

    gr__format_name(g, name, sizeof name);
    if (g->kind == GR__KIND_GREEN)
        fprintf(out, "  %s (handle %lld): %s", name, (long long)g->handle, state_name(h, g));
    else
        fprintf(out, "  %s (handle %lld, the thread's own stack): %s", name, (long long)g->handle,
                state_name(h, g));
    if (g->state == GR__PARKED && g != h->current) {
        fprintf(out, " on %s", g->wait_what ? g->wait_what : "?");
        if (g->park_deadline >= 0)
            fprintf(out, " until %lld (in %lld ms)", (long long)g->park_deadline,
                    (long long)(g->park_deadline - h->now));
        else
            fprintf(out, " with no deadline");
    } else if (g->state == GR__NEW && g->timer.idx) {
        fprintf(out, " at %lld (in %lld ms)", (long long)g->timer.when,
                (long long)(g->timer.when - h->now));
    }
    if (g->cancelled)
        fprintf(out, ", killed");
    if (g->shield)
        fprintf(out, ", shielded");
    if (g->detached)
        fprintf(out, ", detached");
    if (g->kind == GR__KIND_GREEN && g->state != GR__DONE)
        fprintf(out, "; stack %zu of %zu bytes used at most", stack_high_water(g), g->stack.size);
    fputc('\n', out);
}

/* This hub, by its own thread. */
static void dump_hub(FILE *out, gr_hub *h)
{
    gr_stats st;

    gr_stats_get(&st);
    fprintf(out,
            "hub %llu (OS thread %d): %zu green thread(s), %zu finished, %zu ready, %zu timer(s), "
            "%zu fd waiter(s), %zu switches, %zu blocking report(s); at %lld ms\n",
            (unsigned long long)h->id, h->tid, st.threads, st.finished, st.ready, st.timers,
            st.fd_waiters, st.switches, st.blocking_reports, (long long)h->now);
    dump_thread(out, h, h->root);
    for (uint32_t i = 0; i < h->nslots; i++) {
        gr__g *g = h->slots[i].g;

        if (g && g->kind == GR__KIND_GREEN)
            dump_thread(out, h, g);
    }
}

static char *dump_own_hub(size_t *len)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, len);

    if (!out)
        return NULL;
    gr__update_now(gr__tls_hub);
    dump_hub(out, gr__tls_hub);
    if (fclose(out) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

/* Posted to each hub: answer, then let go of the request. */
static void answer_here(void *arg)
{
    answer *a = arg;
    size_t len = 0;
    char *text = dump_own_hub(&len);

    pthread_mutex_lock(&gr__registry_lock);
    if (!a->done)
        answer_done(a, text, len);
    else
        free(text);
    pthread_mutex_unlock(&gr__registry_lock);
}

/* ------------------------------------------------------------- the dump */

/* Ask every hub; answer for our own at once. Returns the request (the
 * caller holds a reference) or NULL/ENOMEM. */
static request *ask_hubs(void)
{
    size_t n = 0, i = 0;
    request *r;

    pthread_mutex_lock(&gr__registry_lock);
    for (gr_hub *h = gr__registry_head; h; h = h->reg_next)
        n++;
    if (!(r = gr__calloc(1, sizeof *r + n * sizeof r->answers[0]))) {
        pthread_mutex_unlock(&gr__registry_lock);
        errno = ENOMEM;
        return NULL;
    }
    r->n = n;
    r->refs = 1;
    r->next = in_flight;
    in_flight = r;
    for (gr_hub *h = gr__registry_head; h; h = h->reg_next, i++) {
        answer *a = &r->answers[i];

        a->hub = h;
        a->req = r;
        if (h == gr__tls_hub)
            continue; /* answered below, outside the lock */
        r->pending++;
        r->refs++;
        if (gr_hub_post(h, answer_here, a) != 0) {
            r->pending--;
            r->refs--;
            a->done = 1; /* out of memory: this one stays unanswered */
        }
    }
    pthread_mutex_unlock(&gr__registry_lock);
    return r;
}

static void wait_answers(request *r, int64_t deadline)
{
    gr__xwaiter w;

    gr__xlock(&r->lock);
    if (r->pending == 0) {
        gr__xunlock(&r->lock);
        return;
    }
    gr__xq_push(&r->q, &w);
    /* Shielded: a dump is worth finishing even in a killed thread. */
    if (gr__in_green_thread())
        gr_shield_begin();
    gr__xwait(&r->q, &r->lock, &w, deadline, "run-info dump");
    if (gr__in_green_thread())
        gr_shield_end();
}

/* The text of a finished request, hubs in creation order. */
static char *assemble(request *r, size_t *len)
{
    char *text = NULL;
    FILE *out = open_memstream(&text, len);

    if (!out)
        return NULL;
    pthread_mutex_lock(&gr__registry_lock);
    fprintf(out, "grove run info: %zu hub(s)\n", r->n);
    for (size_t i = 0; i < r->n; i++) {
        answer *a = &r->answers[i];

        if (a->text)
            fwrite(a->text, 1, a->len, out);
        else if (!a->done)
            fprintf(out, "hub %zu: no answer by the deadline (busy: see the blocking monitor)\n",
                    i + 1);
        else
            fprintf(out, "hub %zu: exited, or could not be asked\n", i + 1);
    }
    request_unref(r);
    pthread_mutex_unlock(&gr__registry_lock);
    if (fclose(out) != 0) {
        free(text);
        errno = ENOMEM;
        return NULL;
    }
    return text;
}

static char *collect(int64_t deadline, size_t *len)
{
    request *r = ask_hubs();

    if (!r)
        return NULL;
    if (gr__tls_hub) {
        size_t mine = 0;
        char *text = dump_own_hub(&mine);

        pthread_mutex_lock(&gr__registry_lock);
        for (size_t i = 0; i < r->n; i++) {
            if (r->answers[i].hub == gr__tls_hub) {
                r->answers[i].text = text;
                r->answers[i].len = mine;
                r->answers[i].done = 1;
            }
        }
        pthread_mutex_unlock(&gr__registry_lock);
    }
    wait_answers(r, deadline);
    return assemble(r, len);
}

/* All of it, waiting (cooperatively in a green thread) while fd is full. */
static int write_out(int fd, const char *p, size_t len, int64_t deadline)
{
    while (len) {
        ssize_t n = write(fd, p, len);

        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EAGAIN) {
            if (gr__in_green_thread()) {
                if (gr_wait_fd(fd, GR_WRITE, deadline) < 0)
                    return -1;
            } else {
                struct pollfd pfd = {fd, POLLOUT, 0};

                poll(&pfd, 1, 100);
            }
        } else if (n < 0 && errno != EINTR) {
            return -1;
        }
    }
    return 0;
}

int gr_dump_fd(int fd, int64_t deadline)
{
    size_t len = 0;
    char *text;
    int rc;

    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (!(text = collect(deadline, &len)))
        return -1;
    rc = write_out(fd, text, len, deadline);
    free(text);
    return rc;
}

int gr_dump(FILE *out, int64_t deadline)
{
    size_t len = 0;
    char *text;
    int rc = 0;

    if (!out) {
        errno = EINVAL;
        return -1;
    }
    if (!(text = collect(deadline, &len)))
        return -1;
    if (fwrite(text, 1, len, out) != len)
        rc = -1;
    free(text);
    return rc;
}

/* ----------------------------------------------------------- backtraces */

/* Frame records (saved frame pointer, return address) from fp up, while
 * they stay in [lo, hi) and go up. */
static int walk_frames(uintptr_t fp, uintptr_t lo, uintptr_t hi, void **frames, int n, int max)
{
    while (n < max && fp >= lo && fp + 2 * sizeof(uintptr_t) <= hi &&
           !(fp & (sizeof(uintptr_t) - 1))) {
        const uintptr_t *rec = (const uintptr_t *)fp;

        if (!rec[1])
            break;
        frames[n++] = (void *)rec[1];
        if (rec[0] <= fp)
            break;
        fp = rec[0];
    }
    return n;
}

/* The root context runs on the OS thread's own stack: its bounds. */
static int thread_stack(uintptr_t *lo, uintptr_t *hi)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;

    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return -1;
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    *lo = (uintptr_t)addr;
    *hi = *lo + size;
    return 0;
}

int gr__thread_backtrace(gr_t t, void **frames, int max)
{
    gr_hub *h = gr__hub_peek();
    gr__g *g = gr__lookup(h, t);
    uintptr_t pc, fp, sp, lo, hi;
    int n = 0;

    if (!g || g->kind == GR__KIND_HUB || g->state == GR__GONE) {
        errno = ESRCH;
        return -1;
    }
    if (max <= 0)
        return 0;
    if (g == h->current)
        return backtrace(frames, max);
    if (g->state == GR__DONE || !gr__ctx_started(&g->ctx))
        return 0;
    gr__ctx_saved_frame(&g->ctx, &pc, &fp, &sp);
    if (g->kind == GR__KIND_ROOT) {
        if (thread_stack(&lo, &hi) != 0)
            return 0;
    } else {
        lo = (uintptr_t)g->stack.lo;
        hi = (uintptr_t)g->start_top;
    }
    if (pc)
        frames[n++] = (void *)pc;
    if (sp > lo)
        lo = sp;
    return walk_frames(fp, lo, hi, frames, n, max);
}
