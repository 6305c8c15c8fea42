/* docs/http.md's example: an HTTP server on a free loopback port, and
 * grove's HTTP client asking it three times over one kept-alive
 * connection, in one process. Both are green threads on one hub. */
/* example-expect: 200 hello, /three */
/* example-expect: stopped */
#include <grove/http.h>

#include <stdio.h>
#include <stdlib.h>

static int hello(gr_http_request *req, void *arg)
{
    static const gr_http_header h[] = {{"Content-Type", "text/plain"}};
    char body[256];
    int n = snprintf(body, sizeof body, "hello, %s", req->path);

    (void)arg;
    return gr_http_respond(req, 200, h, 1, body, (size_t)n, gr_now() + 5000);
}

static void *run(void *arg)
{
    static const char *paths[] = {"/one", "/two", "/three"};
    int fd = gr_tcp_listen("127.0.0.1", 0, 0), port = fd >= 0 ? gr_local_port(fd) : -1;
    gr_http_server *s = gr_http_server_new(fd, hello, NULL, NULL); /* owns fd */
    gr_http_client *c = gr_http_client_new("127.0.0.1", port);
    gr_http_response res;

    (void)arg;
    if (!s || !c || gr_http_server_start(s) != 0) { /* accepts in a green thread */
        perror("http-hello");
        exit(1);
    }
    for (int i = 0; i < 3; i++) {
        if (gr_http_client_request(c, "GET", paths[i], NULL, 0, NULL, 0, &res, gr_now() + 5000) !=
            0) {
            perror("GET");
            exit(1);
        }
        printf("%d %s\n", res.status, res.body);
    }
    gr_http_client_free(c);
    gr_http_server_stop(s, gr_now() + 1000);
    gr_http_server_free(s);
    puts("stopped");
    return NULL;
}

int main(void)
{
    return gr_main(run, NULL, NULL) == 0 ? 0 : 1;
}
