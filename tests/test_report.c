/* Reports (gr_report_hook_set): everything grove used to print goes
 * through the hook, and the default prints exactly what it always did. */
#include "common.h"

#include <grove/http.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct seen {
    int count, kind, err, async_signal_safe;
    gr_t thread;
    char name[GR_NAME_MAX + 1];
    char message[4096];
} seen;

static seen last;

static void record(const gr_report *r, void *arg)
{
    seen *s = arg;

    s->count++;
    s->kind = r->kind;
    s->err = r->err;
    s->thread = r->thread;
    s->async_signal_safe = r->async_signal_safe;
    snprintf(s->name, sizeof s->name, "%s", r->thread_name ? r->thread_name : "");
    snprintf(s->message, sizeof s->message, "%s", r->message);
}

static char *read_stderr(void)
{
    static char text[4096];
    size_t n;

    fflush(stderr);
    n = fread(text, 1, sizeof text - 1, cr_get_redirected_stderr());
    text[n] = '\0';
    return text;
}

/* ------------------------------------------------------------ default */

Test(report, the_default_prints_each_line_with_the_prefix, .timeout = 10)
{
    gr_report r = {.kind = GR_REPORT_MISUSE, .message = "first\n  second\nthird"};

    cr_redirect_stderr();
    gr_report_print(&r);
    r.message = "";
    gr_report_print(&r);
    cr_assert_str_eq(read_stderr(), "grove: first\ngrove:   second\ngrove: third\ngrove: \n");
}

/* --------------------------------------------------------------- misuse */

static void blocks_in_callback(void *arg)
{
    (void)arg;
    assert_fails(gr_sleep(-1), EDEADLK);
}

static void *misuses(void *arg)
{
    (void)arg;
    gr_hub_post(gr_hub_current(), blocks_in_callback, NULL);
    gr_sleep(gr_now_update() + 10);
    cr_assert_eq(last.count, 1);
    cr_assert_eq(last.kind, GR_REPORT_MISUSE);
    cr_assert_eq(last.thread, 0, "no green thread runs in a hub callback");
    cr_assert_not_null(strstr(last.message, "hub callback"));
    assert_fails(gr_join(gr_self(), NULL, -1), EDEADLK);
    cr_assert_eq(last.count, 2);
    cr_assert_eq(last.thread, gr_self());
    cr_assert_str_eq(last.name, "joiner");
    cr_assert_str_eq(last.message,
                     "a green thread cannot join itself (gr_join fails with EDEADLK)");
    return NULL;
}

static void *spawn_named(void *arg)
{
    gr_t g = gr_spawn_opts(arg, NULL, &(gr_opts){.name = "joiner"});

    cr_assert_eq(gr_join(g, NULL, -1), 0);
    return NULL;
}

Test(report, misuse_goes_to_the_hook_and_not_to_stderr, .timeout = 10)
{
    cr_redirect_stderr();
    memset(&last, 0, sizeof last);
    gr_report_hook_set(record, &last);
    run_main(spawn_named, misuses);
    gr_report_hook_set(NULL, NULL);
    cr_assert_str_eq(read_stderr(), "");
}

/* ------------------------------------------------------------- deadlock */

static void *waits_forever(void *arg)
{
    gr_sem s;

    (void)arg;
    gr_sem_init(&s, 0);
    assert_fails(gr_sem_acquire(&s, -1), ECANCELED);
    return NULL;
}

static void *deadlocks(void *arg)
{
    (void)arg;
    gr_spawn_opts(waits_forever, NULL, &(gr_opts){.name = "stuck"});
    return waits_forever(NULL);
}

Test(report, a_deadlock_is_one_report, .timeout = 10)
{
    cr_redirect_stderr();
    memset(&last, 0, sizeof last);
    gr_report_hook_set(record, &last);
    assert_fails(gr_main(deadlocks, NULL, NULL), EDEADLK);
    cr_assert_eq(last.count, 1);
    cr_assert_eq(last.kind, GR_REPORT_DEADLOCK);
    cr_assert_eq(last.err, EDEADLK);
    cr_assert_str_eq(last.message,
                     "deadlock: 2 green thread(s) blocked and nothing can ever wake them "
                     "(no timers, no file descriptors, no gr_hub_ref):\n"
                     "  g1 [semaphore]\n"
                     "  stuck [semaphore]");
    /* The default prints it line by line, as grove always did. */
    gr_report_hook_set(NULL, NULL);
    assert_fails(gr_main(deadlocks, NULL, NULL), EDEADLK);
    cr_assert_str_eq(read_stderr(),
                     "grove: deadlock: 2 green thread(s) blocked and nothing can ever wake them "
                     "(no timers, no file descriptors, no gr_hub_ref):\n"
                     "grove:   g1 [semaphore]\n"
                     "grove:   stuck [semaphore]\n");
}

/* ------------------------------------------------------------- overflow */

/* Async-signal-safe, as the hook must be for an overflow. */
static void overflow_hook(const gr_report *r, void *arg)
{
    static const char tag[] = "HOOK:";
    ssize_t w;

    (void)arg;
    if (r->kind != GR_REPORT_OVERFLOW || !r->async_signal_safe)
        return;
    w = write(STDERR_FILENO, tag, sizeof tag - 1);
    w = write(STDERR_FILENO, r->thread_name, strlen(r->thread_name));
    w = write(STDERR_FILENO, "\n", 1);
    (void)w;
}

static void *overflows(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)recurse_forever(NULL, 0);
}

static void *spawn_overflower(void *arg)
{
    gr_t g = gr_spawn_opts(overflows, NULL, &(gr_opts){.name = "diver", .stack_size = 65536});

    (void)arg;
    gr_join(g, NULL, -1);
    return NULL;
}

Test(report, a_stack_overflow_reaches_the_hook_in_the_signal_handler, .timeout = 20)
{
    int pfd[2], status;
    char err[4096];
    size_t n = 0;
    ssize_t r;
    pid_t pid;

    cr_assert_eq(pipe(pfd), 0);
    if ((pid = fork()) == 0) {
        dup2(pfd[1], STDERR_FILENO);
        close(pfd[0]);
        gr_report_hook_set(overflow_hook, NULL);
        gr_main(spawn_overflower, NULL, NULL);
        _exit(0);
    }
    close(pfd[1]);
    while (n < sizeof err - 1 && (r = read(pfd[0], err + n, sizeof err - 1 - n)) > 0)
        n += (size_t)r;
    err[n] = '\0';
    close(pfd[0]);
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(!WIFEXITED(status) || WEXITSTATUS(status) != 0, "the child died: %s", err);
    cr_assert_not_null(strstr(err, "HOOK:diver\n"), "stderr: %s", err);
    cr_assert_null(strstr(err, "grove: stack overflow"), "the hook replaced the default: %s", err);
}

/* ---------------------------------------------------------- HTTP handler */

static int fails(gr_http_request *req, void *arg)
{
    (void)arg;
    if (!strcmp(req->path, "/silent"))
        return 0; /* returns without answering */
    errno = EIO;
    return -1;
}

static void *handler_failures(void *arg)
{
    int l = gr_tcp_listen("127.0.0.1", 0, 0);
    gr_http_server *s = gr_http_server_new(l, fails, NULL, NULL);
    char host_port[64];
    gr_http_client *c;
    gr_http_response res;

    (void)arg;
    cr_assert_not_null(s);
    cr_assert_eq(gr_http_server_start(s), 0);
    snprintf(host_port, sizeof host_port, "%d", gr_local_port(l));
    cr_assert_not_null(c = gr_http_client_new("127.0.0.1", gr_local_port(l)));
    cr_assert_eq(gr_http_client_request(c, "GET", "/fail?x=1", NULL, 0, NULL, 0, &res,
                                        gr_now_update() + 5000),
                 0);
    cr_assert_eq(res.status, 500);
    cr_assert_eq(last.count, 1);
    cr_assert_eq(last.kind, GR_REPORT_HANDLER);
    cr_assert_eq(last.err, EIO);
    cr_assert_str_eq(last.message, "http: the handler for GET /fail?x=1 failed (Input/output "
                                   "error); answered 500");
    cr_assert_gt(last.thread, 0, "the connection's green thread");
    cr_assert_eq(
        gr_http_client_request(c, "GET", "/silent", NULL, 0, NULL, 0, &res, gr_now_update() + 5000),
        0);
    cr_assert_eq(res.status, 500);
    cr_assert_eq(last.count, 2);
    cr_assert_str_eq(last.message,
                     "http: the handler for GET /silent returned without answering; answered 500");
    gr_http_client_free(c);
    gr_http_server_stop(s, gr_now_update() + 1000);
    gr_http_server_free(s);
    return NULL;
}

Test(report, a_failed_http_handler_is_reported, .timeout = 10)
{
    memset(&last, 0, sizeof last);
    gr_report_hook_set(record, &last);
    run_main(handler_failures, NULL);
}

/* The hook may be changed while another OS thread reports: each report
 * reaches exactly one hook, with its own argument. */
static seen other;
static atomic_int reporting;

static void *reports_a_lot(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20000; i++)
        assert_fails(gr_join(gr_self(), NULL, -1), EDEADLK);
    return NULL;
}

static void *reporter_thread(void *arg)
{
    (void)arg;
    cr_assert_eq(gr_hubs_run(1, reports_a_lot, NULL, NULL), 0);
    atomic_store(&reporting, 0);
    return NULL;
}

Test(report, the_hook_can_change_while_others_report, .timeout = 20)
{
    pthread_t t;

    memset(&last, 0, sizeof last);
    memset(&other, 0, sizeof other);
    gr_report_hook_set(record, &last);
    atomic_store(&reporting, 1);
    cr_assert_eq(pthread_create(&t, NULL, reporter_thread, NULL), 0);
    for (int i = 0; atomic_load(&reporting); i++)
        gr_report_hook_set(record, i % 2 ? (void *)&other : (void *)&last);
    pthread_join(t, NULL);
    gr_report_hook_set(NULL, NULL);
    cr_assert_eq(last.count + other.count, 20000);
}
