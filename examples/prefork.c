/* prefork: an HTTP server in W worker processes under grove's supervisor
 * (docs/supervisor.md). The master holds the listening socket; each worker
 * serves it until told to drain. Try:
 *
 *   build/bin/prefork --port 8080 --workers 4 &
 *   curl http://127.0.0.1:8080/
 *   kill -HUP %1     # new workers, then the old ones drain: no failed request
 *   kill -TTIN %1    # one more worker; -TTOU: one fewer
 *   kill %1          # drain everything, exit 0
 *
 * With --self-test it does that to itself: two requests around a SIGHUP,
 * then SIGTERM. */
/* example-args: --port 0 --workers 2 --self-test */
/* example-expect: before the reload: 200 from worker */
/* example-expect: after the reload: 200 from worker */
/* example-expect: master: stopped */
#include <grove/http.h>
#include <grove/supervisor.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int hello(gr_http_request *req, void *arg)
{
    char body[64];
    int n = snprintf(body, sizeof body, "worker %d\n", (int)getpid());

    (void)arg;
    return gr_http_respond(req, 200, NULL, 0, body, (size_t)n, -1);
}

static int work(gr_sup_worker *w, void *arg)
{
    gr_http_server *s = gr_http_server_new(gr_sup_worker_fd(w, 0), hello, NULL, NULL);
    int64_t end, now;

    (void)arg;
    if (!s || gr_http_server_start(s) != 0)
        return 1;
    gr_sup_worker_ready(w);          /* a reload drains the old worker now */
    gr_sup_worker_wait(w, &end, -1); /* until the master says drain */
    now = gr_now_update();
    gr_http_server_drain(s, now + 1000 < end ? now + 1000 : end, end);
    gr_http_server_free(s);
    return 0;
}

typedef struct run {
    int fd, port;
    size_t workers;
    int self_test;
} run;

static void get(int port, const char *when)
{
    gr_http_client *c = gr_http_client_new("127.0.0.1", port);
    gr_http_response res;

    if (c && gr_http_client_request(c, "GET", "/", NULL, 0, NULL, 0, &res, gr_now() + 5000) == 0)
        printf("%s: %d from %s", when, res.status, res.body);
    else
        printf("%s: failed\n", when);
    fflush(stdout);
    gr_http_client_free(c);
}

/* The operator, played by a green thread of the master. */
static void *self_test(void *arg)
{
    run *r = arg;

    get(r->port, "before the reload");
    kill(getpid(), SIGHUP);
    gr_sleep(gr_now_update() + 300);
    get(r->port, "after the reload");
    kill(getpid(), SIGTERM);
    return NULL;
}

static void *master(void *arg)
{
    run *r = arg;
    gr_sup_opts o = {.workers = r->workers, .fds = &r->fd, .nfds = 1, .drain_ms = 5000};
    gr_t t = r->self_test ? gr_spawn(self_test, r) : 0;
    int rc = gr_sup_run(work, NULL, &o);

    if (t > 0)
        gr_join(t, NULL, -1);
    return rc == 0 ? NULL : (void *)1;
}

int main(int argc, char **argv)
{
    run r = {-1, 8080, 2, 0};
    void *res = NULL;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            r.port = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--workers") && i + 1 < argc)
            r.workers = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--self-test"))
            r.self_test = 1;
        else
            return fprintf(stderr, "usage: prefork [--port P] [--workers W] [--self-test]\n"), 2;
    }
    if ((r.fd = gr_tcp_listen("127.0.0.1", r.port, 0)) < 0)
        return perror("prefork: listen"), 1;
    r.port = gr_local_port(r.fd);
    printf("prefork: listening on 127.0.0.1:%d\n", r.port);
    fflush(stdout);
    if (gr_main(master, &r, &res) != 0 || res)
        return perror("prefork"), 1;
    close(r.fd);
    return 0;
}
