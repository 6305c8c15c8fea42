/* libgrove-patch with libcurl's easy API, as Debian ships it (its
 * threaded resolver included), against grove's own HTTP server in a
 * child process, answering after 1 s: fifty blocking curl_easy_perform
 * calls in fifty green threads of one OS thread take about 1 s in all, and
 * CURLOPT_TIMEOUT_MS fires on time while the others go on. */
#include "patch_common.h"

#include <curl/curl.h>
#include <grove/http.h>

static int http_listener = -1;

static int slow_hello(gr_http_request *req, void *arg)
{
    static const gr_http_header h[] = {{"Content-Type", "text/plain"}};

    (void)arg;
    gr_sleep(gr_now_update() + 1000);
    return gr_http_respond(req, 200, h, 1, "slow hello\n", 11, -1);
}

static void *serve(void *arg)
{
    gr_http_server *s = gr_http_server_new(http_listener, slow_hello, NULL, NULL);

    (void)arg;
    if (!s || gr_http_server_serve(s) != 0)
        _exit(3);
    return NULL;
}

static void server_child(void *arg)
{
    (void)arg;
    gr_main(serve, NULL, NULL);
}

/* The server in a child process; returns its pid and sets *port. */
static pid_t start_server(int *port)
{
    pid_t pid;

    http_listener = gr_tcp_listen("127.0.0.1", 0, 1024);
    cr_assert_geq(http_listener, 0);
    *port = gr_local_port(http_listener);
    pid = fork_child(server_child, NULL);
    close(http_listener);
    return pid;
}

static size_t sink(char *p, size_t size, size_t n, void *arg)
{
    size_t *got = arg;

    (void)p;
    *got += size * n;
    return size * n;
}

typedef struct fetch {
    char url[64];
    long timeout_ms;
    CURLcode rc;
    long status;
    size_t got;
    int64_t took;
} fetch;

static void *one_fetch(void *arg)
{
    fetch *f = arg;
    CURL *c = curl_easy_init();
    int64_t t0 = now_ms();

    curl_easy_setopt(c, CURLOPT_URL, f->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &f->got);
    if (f->timeout_ms)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, f->timeout_ms);
    f->rc = curl_easy_perform(c);
    f->took = now_ms() - t0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &f->status);
    curl_easy_cleanup(c);
    return NULL;
}

#define NFETCH 50

static int port;

static void *fifty(void *arg)
{
    static fetch f[NFETCH];
    gr_t g[NFETCH];
    heartbeat hb;
    int64_t t0 = now_ms(), took;

    (void)arg;
    hb_start(&hb);
    for (int i = 0; i < NFETCH; i++) {
        /* Half by name: curl's threaded resolver and its socketpair. */
        snprintf(f[i].url, sizeof f[i].url, "http://%s:%d/%d", i % 2 ? "localhost" : "127.0.0.1",
                 port, i);
        f[i].timeout_ms = 0;
        g[i] = gr_spawn(one_fetch, &f[i]);
    }
    for (int i = 0; i < NFETCH; i++) {
        gr_join(g[i], NULL, -1);
        cr_assert_eq(f[i].rc, CURLE_OK, "%s: %s", f[i].url, curl_easy_strerror(f[i].rc));
        cr_assert_eq(f[i].status, 200);
        cr_assert_eq(f[i].got, 11);
    }
    took = now_ms() - t0;
    hb_check(&hb);
    cr_assert_geq(took, 1000);
    cr_assert_lt(took, TIME_TARGET(1500), "50 requests answered after 1 s took %lld ms",
                 (long long)took);
    return NULL;
}

Test(patch_curl, fifty_green_threads_fetch_a_slow_page_at_once, .timeout = 30)
{
    pid_t pid;

    require_patch();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pid = start_server(&port);
    run_main(fifty, NULL);
    kill_child(pid);
    curl_global_cleanup();
}

static void *timeouts(void *arg)
{
    static fetch f[10];
    gr_t g[10];
    heartbeat hb;

    (void)arg;
    hb_start(&hb);
    for (int i = 0; i < 10; i++) {
        snprintf(f[i].url, sizeof f[i].url, "http://127.0.0.1:%d/%d", port, i);
        f[i].timeout_ms = i == 0 ? 300 : 0;
        g[i] = gr_spawn(one_fetch, &f[i]);
    }
    for (int i = 0; i < 10; i++)
        gr_join(g[i], NULL, -1);
    cr_assert_eq(f[0].rc, CURLE_OPERATION_TIMEDOUT, "%s", curl_easy_strerror(f[0].rc));
    cr_assert_geq(f[0].took, 290);
    cr_assert_lt(f[0].took, TIME_TARGET(600), "CURLOPT_TIMEOUT_MS 300 fired after %lld ms",
                 (long long)f[0].took);
    for (int i = 1; i < 10; i++) {
        cr_assert_eq(f[i].rc, CURLE_OK);
        cr_assert_geq(f[i].took, 1000);
    }
    hb_check(&hb);
    return NULL;
}

Test(patch_curl, curlopt_timeout_ms_fires_on_time_while_the_others_go_on, .timeout = 30)
{
    pid_t pid;

    require_patch();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pid = start_server(&port);
    run_main(timeouts, NULL);
    kill_child(pid);
    curl_global_cleanup();
}
