/* Stack-overflow reporting. A green thread that runs off the bottom of a
 * guarded stack faults on the guard page; the SIGSEGV handler, on an
 * alternate signal stack (the faulting one is full), recognises the address
 * and names the thread before the process dies of the fault as usual. An
 * unguarded stack is checked by its canary at every switch. */
#define _GNU_SOURCE
#include "layout.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALTSTACK_SIZE (64 * 1024)

static struct sigaction previous;
static pthread_once_t install_once = PTHREAD_ONCE_INIT;

/* ------------------------------------- async-signal-safe message builder */

typedef struct msg {
    char buf[512];
    size_t n;
} msg;

static void put(msg *m, const char *s)
{
    while (*s && m->n < sizeof m->buf - 1)
        m->buf[m->n++] = *s++;
}

static void put_num(msg *m, uint64_t v, int hex)
{
    char d[24];
    size_t n = 0;

    do {
        unsigned x = (unsigned)(v % (hex ? 16 : 10));
        d[n++] = (char)(x < 10 ? '0' + x : 'a' + x - 10);
    } while ((v /= (hex ? 16 : 10)));
    if (hex)
        put(m, "0x");
    while (n && m->n < sizeof m->buf - 1)
        m->buf[m->n++] = d[--n];
}

static void put_thread(msg *m, const gr__g *g)
{
    char name[GR_NAME_MAX + 1];

    gr__format_name(g, name, sizeof name);
    put(m, "green thread \"");
    put(m, name);
    put(m, "\"");
    if (g->kind == GR__KIND_GREEN) {
        put(m, " (handle ");
        put_num(m, (uint64_t)g->handle, 0);
        put(m, ")");
    }
}

/* To the report hook, still async-signal-safe: the message is on the
 * stack, the hook one atomic load away (report.c). */
static void emit(msg *m, const gr__g *g)
{
    char name[GR_NAME_MAX + 1];
    gr_report r = {.kind = GR_REPORT_OVERFLOW, .message = m->buf, .async_signal_safe = 1};

    m->buf[m->n] = '\0';
    gr__format_name(g, name, sizeof name);
    r.thread_name = name;
    if (g->kind == GR__KIND_GREEN)
        r.thread = g->handle;
    gr__report_deliver(&r);
}

/* ------------------------------------------------------------- reports */

static const gr__g *owner_of(gr_hub *h, const gr__stack *s)
{
    if (h->current && h->current->stack.lo == s->lo)
        return h->current;
    if (h->hubg && h->hubg->stack.lo == s->lo)
        return h->hubg;
    return gr__record_of(s);
}

static void report_guard_hit(gr_hub *h, const gr__stack *s, const void *addr)
{
    const gr__g *g = owner_of(h, s);
    msg m = {.n = 0};

    put(&m, "stack overflow in ");
    put_thread(&m, g);
    put(&m, ": it ran past the end of its ");
    put_num(&m, s->size, 0);
    put(&m, "-byte stack (guard page hit at ");
    put_num(&m, (uintptr_t)addr, 1);
    put(&m, "). Give it a larger gr_opts.stack_size, or make it use less stack.");
    emit(&m, g);
}

void gr__overflow_canary(gr__g *g)
{
    msg m = {.n = 0};

    put(&m, "stack overflow in ");
    put_thread(&m, g);
    put(&m, ": the canary at the bottom of its ");
    put_num(&m, g->stack.size, 0);
    put(&m, "-byte stack was overwritten");
    if (!g->stack.guarded)
        put(&m, " (this stack has no guard page: see vm.max_map_count in docs/design.md)");
    put(&m, ". Give it a larger gr_opts.stack_size, or make it use less stack.");
    emit(&m, g);
    abort();
}

/* ------------------------------------------------------------- handler */

static void chain(int sig, siginfo_t *si, void *uc)
{
    if (previous.sa_flags & SA_SIGINFO) {
        if (previous.sa_sigaction) {
            previous.sa_sigaction(sig, si, uc);
            return;
        }
    } else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
        previous.sa_handler(sig);
        return;
    }
    /* Default action: a real fault repeats when we return and kills the
     * process (with a core dump, as without us); a sent signal is raised
     * again. */
    signal(sig, SIG_DFL);
    if (si->si_code <= 0)
        raise(sig);
}

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    gr_hub *h = gr__tls_hub;
    int saved = errno;
    gr__stack s;
    int in_guard;

    if (h && si->si_code > 0 && gr__stack_find(&h->stacks, si->si_addr, &s, &in_guard) && in_guard)
        report_guard_hit(h, &s, si->si_addr);
    errno = saved;
    chain(sig, si, uc);
}

static void install(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous);
}

int gr__overflow_trap_init(gr_hub *h)
{
    stack_t cur, ss;

    if (gr__config()->no_overflow_trap)
        return 0;
    /* A thread that already has an alternate stack keeps it. */
    if (sigaltstack(NULL, &cur) == 0 && (cur.ss_flags & SS_DISABLE)) {
        void *mem = gr__mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        if (mem == MAP_FAILED)
            return -1;
        ss = (stack_t){.ss_sp = mem, .ss_size = ALTSTACK_SIZE, .ss_flags = 0};
        if (sigaltstack(&ss, NULL) != 0) {
            munmap(mem, ALTSTACK_SIZE);
            return -1;
        }
        h->altstack = mem;
    }
    pthread_once(&install_once, install);
    return 0;
}

void gr__overflow_trap_fini(gr_hub *h)
{
    stack_t off = {.ss_flags = SS_DISABLE};

    if (!h->altstack)
        return;
    sigaltstack(&off, NULL);
    munmap(h->altstack, ALTSTACK_SIZE);
    h->altstack = NULL;
}
