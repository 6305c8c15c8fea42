/* A concurrent resolver: one green thread per name, all lookups in flight
 * at once on one OS thread (c-ares on the hub), then each name printed
 * with its addresses sorted (IPv4 first), in the order given.
 *
 *   resolve [--server ip:port] [--thread] [--timeout ms] name...
 *
 * --server uses that DNS server instead of /etc/resolv.conf's; --thread
 * uses the system resolver on the thread pool instead of c-ares. Names in
 * /etc/hosts and numeric addresses give the same answer everywhere. */
/* example-args: localhost 127.0.0.1 ::1 */
/* example-expect: localhost -> 127.0.0.1 */
/* example-expect: 127.0.0.1 -> 127.0.0.1 */
/* example-expect: ::1 -> ::1 */
#define _GNU_SOURCE
#include <grove.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ADDRS 64

typedef struct lookup {
    const char *name;
    int rc, err;
    int n;
    char addrs[MAX_ADDRS][INET6_ADDRSTRLEN];
} lookup;

static int64_t timeout_ms = 5000;

/* IPv4 before IPv6 ("." sorts before ":" would not hold), then by text. */
static int by_family_then_text(const void *a, const void *b)
{
    const char *x = a, *y = b;
    int x6 = strchr(x, ':') != NULL, y6 = strchr(y, ':') != NULL;

    return x6 != y6 ? x6 - y6 : strcmp(x, y);
}

static void add_addr(lookup *l, const struct addrinfo *ai)
{
    const void *p = ai->ai_family == AF_INET
                        ? (const void *)&((const struct sockaddr_in *)ai->ai_addr)->sin_addr
                        : (const void *)&((const struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
    char buf[INET6_ADDRSTRLEN];

    if (!inet_ntop(ai->ai_family, p, buf, sizeof buf))
        return;
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->addrs[i], buf) == 0)
            return;
    if (l->n < MAX_ADDRS)
        strcpy(l->addrs[l->n++], buf);
}

static void *resolve_one(void *arg)
{
    lookup *l = arg;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;

    l->rc = gr_getaddrinfo(l->name, NULL, &hints, &res, gr_now() + timeout_ms);
    l->err = errno;
    if (l->rc != 0)
        return NULL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        add_addr(l, ai);
    gr_freeaddrinfo(res);
    qsort(l->addrs, (size_t)l->n, sizeof l->addrs[0], by_family_then_text);
    return NULL;
}

static void print(const lookup *l)
{
    if (l->rc == EAI_SYSTEM) {
        printf("%s: error: %s\n", l->name, strerror(l->err));
    } else if (l->rc != 0) {
        printf("%s: error: %s\n", l->name, gai_strerror(l->rc));
    } else {
        printf("%s ->", l->name);
        for (int i = 0; i < l->n; i++)
            printf(" %s", l->addrs[i]);
        printf("\n");
    }
}

typedef struct job {
    lookup *lookups;
    int n;
} job;

static void *resolve_all(void *arg)
{
    job *j = arg;
    gr_t *t = calloc((size_t)j->n, sizeof *t);
    int failed = 0;

    if (!t)
        return (void *)1;
    for (int i = 0; i < j->n; i++)
        t[i] = gr_spawn(resolve_one, &j->lookups[i]);
    for (int i = 0; i < j->n; i++) {
        gr_join(t[i], NULL, -1);
        print(&j->lookups[i]);
        failed |= j->lookups[i].rc != 0;
    }
    free(t);
    return (void *)(intptr_t)failed;
}

static int usage(void)
{
    fprintf(stderr, "usage: resolve [--server ip:port] [--thread] [--timeout ms] name...\n");
    return 2;
}

int main(int argc, char **argv)
{
    job j = {calloc((size_t)argc, sizeof(lookup)), 0};
    void *failed = NULL;

    if (!j.lookups)
        return 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--server") == 0 && i + 1 < argc) {
            if (gr_resolver_servers(argv[++i]) != 0) {
                fprintf(stderr, "resolve: bad server list '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--thread") == 0) {
            gr_resolver_set(GR_RESOLVER_THREAD);
        } else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            timeout_ms = atoll(argv[++i]);
        } else if (argv[i][0] == '-') {
            return usage();
        } else {
            j.lookups[j.n++].name = argv[i];
        }
    }
    if (j.n == 0)
        return usage();
    if (gr_main(resolve_all, &j, &failed) != 0)
        return 1;
    free(j.lookups);
    return failed ? 1 : 0;
}
