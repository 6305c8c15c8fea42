/* Reports: everything grove has to tell the program (misuse, deadlocks,
 * stack overflows, a server's trouble, a hub that blocks) goes through one
 * hook, gevent's handle_error. The default prints what grove always
 * printed: "grove: " lines on stderr.
 *
 * The stack-overflow reporter calls the hook from a SIGSEGV handler, so
 * reading the hook must be async-signal-safe: it is one atomic load of a
 * pointer to a (function, argument) pair that is never written while it
 * is published. Pairs live in a ring of slots; setting a hook fills the
 * next slot and publishes it, so a reader holding the previous one keeps
 * a consistent pair until HOOK_SLOTS more hooks have been set. */
#include "layout.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

typedef struct hook {
    gr_report_fn fn;
    void *arg;
} hook;

#define HOOK_SLOTS 16

static hook slots[HOOK_SLOTS];
static unsigned next_slot;
static hook *_Atomic current_hook;
static pthread_mutex_t hook_lock = PTHREAD_MUTEX_INITIALIZER;

void gr_report_hook_set(gr_report_fn fn, void *arg)
{
    hook *k = NULL;

    pthread_mutex_lock(&hook_lock);
    if (fn) {
        k = &slots[next_slot++ % HOOK_SLOTS];
        k->fn = fn;
        k->arg = arg;
    }
    atomic_store_explicit(&current_hook, k, memory_order_release);
    pthread_mutex_unlock(&hook_lock);
}

/* ------------------------------------------------------------ printing */

typedef struct outbuf {
    char buf[2048];
    size_t n;
} outbuf;

static void flush(outbuf *o)
{
    size_t done = 0;

    while (done < o->n) {
        ssize_t r = write(STDERR_FILENO, o->buf + done, o->n - done);

        if (r <= 0)
            break; /* nothing better to do with a failing stderr */
        done += (size_t)r;
    }
    o->n = 0;
}

static void put(outbuf *o, const char *s, size_t len)
{
    while (len) {
        size_t room = sizeof o->buf - o->n, k = len < room ? len : room;

        memcpy(o->buf + o->n, s, k);
        o->n += k;
        s += k;
        len -= k;
        if (o->n == sizeof o->buf)
            flush(o);
    }
}

/* Async-signal-safe: the buffer is on the stack, the output one write(2)
 * for a report that fits in it. */
void gr_report_print(const gr_report *r)
{
    const char *line = r && r->message ? r->message : "";
    outbuf o;

    o.n = 0;
    for (;;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);

        put(&o, "grove: ", 7);
        put(&o, line, len);
        put(&o, "\n", 1);
        if (!end)
            break;
        line = end + 1;
    }
    flush(&o);
}

void gr__report_deliver(const gr_report *r)
{
    hook *k = atomic_load_explicit(&current_hook, memory_order_acquire);
    int err = errno;

    if (k)
        k->fn(r, k->arg);
    else
        gr_report_print(r);
    errno = err;
}

/* ------------------------------------------------------------ building */

static void report_v(int kind, int err, const char *fmt, va_list ap)
{
    gr_hub *h = gr__tls_hub;
    char text[1024], name[GR_NAME_MAX + 1];
    gr_report r = {.kind = kind, .message = text, .err = err};

    if (vsnprintf(text, sizeof text, fmt, ap) < 0)
        return;
    if (h && h->current && h->current != h->hubg) {
        gr__format_name(h->current, name, sizeof name);
        r.thread = h->current->handle;
        r.thread_name = name;
    }
    gr__report_deliver(&r);
}

void gr__report(int kind, int err, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report_v(kind, err, fmt, ap);
    va_end(ap);
}

void gr__warn(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    report_v(GR_REPORT_MISUSE, 0, fmt, ap);
    va_end(ap);
}
