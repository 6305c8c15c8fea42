/* DNS: c-ares on the hub against a small responder of our own on
 * 127.0.0.1 (A, AAAA, CNAME, PTR, NXDOMAIN, and a name it never answers),
 * /etc/hosts, numeric hosts, time-outs, cancellation, concurrency, and the
 * thread-pool resolver where the system's resolver can be pointed at it
 * (/etc/hosts and numeric names). */
#include "common.h"

#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---------------------------------------------------------- responder */

static int dns_fd = -1, dns_port;
static pthread_t dns_thread;
static atomic_int dns_stop, dns_queries, dns_asked_localhost;

typedef struct msg {
    unsigned char b[512];
    size_t n;
} msg;

static void put16(msg *m, unsigned v)
{
    m->b[m->n++] = (unsigned char)(v >> 8);
    m->b[m->n++] = (unsigned char)v;
}

static void put_name(msg *m, const char *name)
{
    while (*name) {
        const char *dot = strchr(name, '.');
        size_t len = dot ? (size_t)(dot - name) : strlen(name);

        m->b[m->n++] = (unsigned char)len;
        memcpy(m->b + m->n, name, len);
        m->n += len;
        name += len + (dot != NULL);
    }
    m->b[m->n++] = 0;
}

/* One answer record, for owner (NULL: the question's name, a pointer to
 * offset 12). */
static const char *owner;

static void put_rr(msg *m, unsigned type, const void *data, size_t len)
{
    if (owner)
        put_name(m, owner);
    else
        put16(m, 0xC00C);
    put16(m, type);
    put16(m, 1);
    put16(m, 0);
    put16(m, 60);
    put16(m, (unsigned)len);
    memcpy(m->b + m->n, data, len);
    m->n += len;
}

static void put_addr(msg *m, int family, const char *text)
{
    unsigned char a[16];

    inet_pton(family, text, a);
    put_rr(m, family == AF_INET ? 1 : 28, a, family == AF_INET ? 4 : 16);
}

static void put_target(msg *m, unsigned type, const char *target)
{
    msg t = {.n = 0};

    put_name(&t, target);
    put_rr(m, type, t.b, t.n);
}

/* Answers for name/type; -1 for "never answer", else the rcode. */
static int answer(msg *m, const char *name, unsigned type, unsigned *count)
{
    enum { A = 1, CNAME = 5, PTR = 12, AAAA = 28 };

    if (strcmp(name, "silent.grove.test") == 0)
        return -1;
    if (strcmp(name, "localhost") == 0)
        atomic_store(&dns_asked_localhost, 1);
    owner = NULL;
    if (strcmp(name, "alias.grove.test") == 0) {
        put_target(m, CNAME, "both.grove.test");
        ++*count;
        owner = name = "both.grove.test"; /* the target's records follow */
    }
    if (strcmp(name, "v4.grove.test") == 0) {
        if (type == A) {
            put_addr(m, AF_INET, "192.0.2.1");
            put_addr(m, AF_INET, "192.0.2.2");
            *count += 2;
        }
        return 0;
    }
    if (strcmp(name, "v6.grove.test") == 0) {
        if (type == AAAA) {
            put_addr(m, AF_INET6, "2001:db8::6");
            ++*count;
        }
        return 0;
    }
    if (strcmp(name, "both.grove.test") == 0) {
        if (type == A || type == AAAA) {
            put_addr(m, type == A ? AF_INET : AF_INET6, type == A ? "192.0.2.3" : "2001:db8::3");
            ++*count;
        }
        return 0;
    }
    if (strcmp(name, "1.2.0.192.in-addr.arpa") == 0 && type == PTR) {
        put_target(m, PTR, "v4.grove.test");
        ++*count;
        return 0;
    }
    return 3; /* NXDOMAIN */
}

/* Parse the question's name (lower case, dotted); returns the offset past
 * the question or 0. */
static size_t parse_question(const unsigned char *q, size_t n, char *name, unsigned *type)
{
    size_t i = 12, o = 0;

    while (i < n && q[i]) {
        size_t len = q[i++];

        if (len > 63 || i + len > n || o + len + 2 > 256)
            return 0;
        for (size_t k = 0; k < len; k++)
            name[o++] = (char)(q[i + k] | 0x20);
        name[o++] = '.';
        i += len;
    }
    name[o ? o - 1 : 0] = 0;
    if (i + 5 > n)
        return 0;
    *type = (unsigned)q[i + 1] << 8 | q[i + 2];
    return i + 5;
}

static void respond(const unsigned char *q, size_t n, const struct sockaddr_in *from)
{
    char name[256];
    unsigned type, count = 0;
    size_t qend = parse_question(q, n, name, &type);
    msg m = {.n = 0};
    int rcode;

    if (!qend)
        return;
    memcpy(m.b, q, qend); /* header and question as asked */
    m.n = qend;
    if ((rcode = answer(&m, name, type, &count)) < 0)
        return;
    m.b[2] = 0x81;                          /* QR, RD */
    m.b[3] = (unsigned char)(0x80 | rcode); /* RA */
    m.b[6] = 0;
    m.b[7] = (unsigned char)count;
    memset(m.b + 8, 0, 4); /* no authority, no additional */
    sendto(dns_fd, m.b, m.n, 0, (const struct sockaddr *)from, sizeof *from);
}

static void *serve_dns(void *arg)
{
    unsigned char q[512];

    (void)arg;
    while (!atomic_load(&dns_stop)) {
        struct pollfd p = {dns_fd, POLLIN, 0};
        struct sockaddr_in from;
        socklen_t flen = sizeof from;
        ssize_t n;

        if (poll(&p, 1, 20) <= 0)
            continue;
        n = recvfrom(dns_fd, q, sizeof q, 0, (struct sockaddr *)&from, &flen);
        if (n < 12)
            continue;
        atomic_fetch_add(&dns_queries, 1);
        respond(q, (size_t)n, &from);
    }
    return NULL;
}

static void start_dns(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    char csv[64];

    dns_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(dns_fd, 0);
    cr_assert_eq(bind(dns_fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(dns_fd, (struct sockaddr *)&a, &len);
    dns_port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&dns_thread, NULL, serve_dns, NULL), 0);
    snprintf(csv, sizeof csv, "127.0.0.1:%d", dns_port);
    cr_assert_eq(gr_resolver_servers(csv), 0);
}

static void stop_dns(void)
{
    atomic_store(&dns_stop, 1);
    pthread_join(dns_thread, NULL);
    close(dns_fd);
}

/* ------------------------------------------------------------- helpers */

/* "192.0.2.1 192.0.2.2" for the distinct addresses in res, in order. */
static void addrs_of(const struct addrinfo *res, char *out, size_t len)
{
    out[0] = 0;
    for (const struct addrinfo *a = res; a; a = a->ai_next) {
        char b[INET6_ADDRSTRLEN];
        const void *p = a->ai_family == AF_INET
                            ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
                            : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;

        inet_ntop(a->ai_family, p, b, sizeof b);
        if (strstr(out, b))
            continue;
        if (out[0])
            strncat(out, " ", len - strlen(out) - 1);
        strncat(out, b, len - strlen(out) - 1);
    }
}

static int count(const struct addrinfo *res)
{
    int n = 0;

    for (; res; res = res->ai_next)
        n++;
    return n;
}

static struct addrinfo tcp = {.ai_socktype = SOCK_STREAM};

static void expect(const char *name, int family, const char *want)
{
    struct addrinfo h = {.ai_family = family, .ai_socktype = SOCK_STREAM}, *res;
    char got[256];
    int rc = gr_getaddrinfo(name, "80", &h, &res, gr_now() + 5000);

    cr_assert_eq(rc, 0, "%s: %s", name, gai_strerror(rc));
    addrs_of(res, got, sizeof got);
    cr_assert_str_eq(got, want, "%s: got '%s', want '%s'", name, got, want);
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        cr_assert_eq(ntohs(((struct sockaddr_in *)a->ai_addr)->sin_port), 80);
        cr_assert_eq(a->ai_socktype, SOCK_STREAM);
        cr_assert_eq(a->ai_protocol, IPPROTO_TCP);
    }
    gr_freeaddrinfo(res);
}

static int64_t ms_since(int64_t t)
{
    return gr_now_update() - t;
}

/* ---------------------------------------------------- answers from DNS */

static void *a_and_aaaa(void *arg)
{
    (void)arg;
    expect("v4.grove.test", AF_UNSPEC, "192.0.2.1 192.0.2.2");
    expect("v4.grove.test", AF_INET, "192.0.2.1 192.0.2.2");
    expect("V6.Grove.Test", AF_UNSPEC, "2001:db8::6");
    expect("v6.grove.test", AF_INET6, "2001:db8::6");
    expect("both.grove.test", AF_INET, "192.0.2.3");
    expect("both.grove.test", AF_INET6, "2001:db8::3");
    return NULL;
}

Test(dns, a_and_aaaa_records, .timeout = 10, .init = start_dns, .fini = stop_dns)
{
    run_main(a_and_aaaa, NULL);
    cr_assert_gt(atomic_load(&dns_queries), 0);
}

static void *both_families(void *arg)
{
    struct addrinfo *res;
    char got[256];

    (void)arg;
    cr_assert_eq(gr_getaddrinfo("both.grove.test", "80", &tcp, &res, -1), 0);
    cr_assert_eq(count(res), 2);
    addrs_of(res, got, sizeof got);
    cr_assert(strstr(got, "192.0.2.3") && strstr(got, "2001:db8::3"), "%s", got);
    gr_freeaddrinfo(res);
    return NULL;
}

Test(dns, unspec_gets_both_families, .timeout = 10, .init = start_dns, .fini = stop_dns)
{
    run_main(both_families, NULL);
}

static void *no_address_of_family(void *arg)
{
    struct addrinfo h = {.ai_family = AF_INET6}, *res;

    (void)arg;
    cr_assert_eq(gr_getaddrinfo("v4.grove.test", NULL, &h, &res, -1), EAI_NODATA);
    cr_assert_null(res);
    return NULL;
}

Test(dns, a_name_without_that_family_is_eai_nodata, .timeout = 10, .init = start_dns,
     .fini = stop_dns)
{
    run_main(no_address_of_family, NULL);
}

/* Without a socket type, each address comes once per type, as glibc. */
static void *socktypes(void *arg)
{
    struct addrinfo h = {.ai_family = AF_INET}, *res;
    int stream = 0, dgram = 0, raw = 0;

    (void)arg;
    cr_assert_eq(gr_getaddrinfo("v4.grove.test", NULL, &h, &res, -1), 0);
    cr_assert_eq(count(res), 6);
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        stream += a->ai_socktype == SOCK_STREAM && a->ai_protocol == IPPROTO_TCP;
        dgram += a->ai_socktype == SOCK_DGRAM && a->ai_protocol == IPPROTO_UDP;
        raw += a->ai_socktype == SOCK_RAW;
    }
    cr_assert(stream == 2 && dgram == 2 && raw == 2);
    gr_freeaddrinfo(res);
    return NULL;
}

Test(dns, socket_types_as_glibc, .timeout = 10, .init = start_dns, .fini = stop_dns)
{
    run_main(socktypes, NULL);
}

static void *canonical(void *arg)
{
    struct addrinfo h = {.ai_family = AF_INET,
                         .ai_socktype = SOCK_STREAM,
                         .ai_flags = AI_CANONNAME},
                    *res;

    (void)arg;
    cr_assert_eq(gr_getaddrinfo("alias.grove.test", "80", &h, &res, -1), 0);
    cr_assert_not_null(res->ai_canonname);
    cr_assert_str_eq(res->ai_canonname, "both.grove.test");
    cr_assert_null(res->ai_next);
    gr_freeaddrinfo(res);
    cr_assert_eq(gr_getaddrinfo("localhost", "80", &h, &res, -1), 0);
    cr_assert_str_eq(res->ai_canonname, "localhost");
    gr_freeaddrinfo(res);
    return NULL;
}

Test(dns, canonical_name_follows_cnames, .timeout = 10, .init = start_dns, .fini = stop_dns)
{
    run_main(canonical, NULL);
}

static void *nxdomain(void *arg)
{
    struct addrinfo *res = (void *)1;

    (void)arg;
    cr_assert_eq(gr_getaddrinfo("nx.grove.test", "80", &tcp, &res, gr_now() + 5000), EAI_NONAME);
    cr_assert_null(res);
    return NULL;
}

Test(dns, nxdomain_is_eai_noname, .timeout = 10, .init = start_dns, .fini = stop_dns)
{
    run_main(nxdomain, NULL);
}

/* ---------------------------------------------- time-outs and cancel */

static void *silent_deadline(void *arg)
{
    struct addrinfo *res;
    int64_t start = gr_now_update();

    (void)arg;
    errno = 0;
    cr_assert_eq(gr_getaddrinfo("silent.grove.test", "80", &tcp, &res, gr_now() + 100), EAI_SYSTEM);
    cr_assert_eq(errno, ETIMEDOUT);
    cr_assert_geq(ms_since(start), 99);
    cr_assert_lt(ms_since(start), 300);
    /* The resolver still works afterwards. */
    expect("v4.grove.test", AF_INET, "192.0.2.1 192.0.2.2");
    return NULL;
}

Test(dns, a_silent_server_times_out_at_the_deadline, .timeout = 10, .init = start_dns,
     .fini = stop_dns)
{
    /* The abandoned lookup was cancelled: gr_main did not wait for
     * c-ares' own time-out (seconds). */
    cr_assert_lt(run_main_ms(silent_deadline, NULL), 1000);
}

static void *retry_timeout(void *arg)
{
    struct addrinfo *res;
    int64_t start = gr_now_update();

    (void)arg;
    cr_assert_eq(gr_getaddrinfo("silent.grove.test", "80", &tcp, &res, gr_now() + 8000), EAI_AGAIN);
    cr_assert_geq(ms_since(start), 900, "c-ares' time-out is 1 s here");
    return NULL;
}

Test(dns, c_ares_giving_up_is_eai_again, .timeout = 20, .fini = stop_dns)
{
    /* Read when the hub's channel is made: one try of 1000 ms (c-ares
     * 1.18 knows retrans/retry, not glibc's timeout/attempts). */
    setenv("RES_OPTIONS", "retrans:1000 retry:1", 1);
    start_dns();
    run_main(retry_timeout, NULL);
}

static int cancelled_rc, cancelled_errno;

static void *lookup_silent(void *arg)
{
    struct addrinfo *res;

    (void)arg;
    cancelled_rc = gr_getaddrinfo("silent.grove.test", "80", &tcp, &res, -1);
    cancelled_errno = errno;
    return NULL;
}

static void *cancel(void *arg)
{
    gr_t g;
    int64_t killed_at;

    (void)arg;
    g = gr_spawn(lookup_silent, NULL);
    gr_sleep(gr_now() + 50);
    killed_at = gr_now_update();
    gr_kill(g);
    cr_assert_eq(gr_join(g, NULL, gr_now() + 1000), 0);
    cr_assert_lt(ms_since(killed_at), 20, "the killed lookup returns at once");
    cr_assert_eq(cancelled_rc, EAI_SYSTEM);
    cr_assert_eq(cancelled_errno, ECANCELED);
    return NULL;
}

Test(dns, killing_a_lookup_returns_ecanceled_at_once, .timeout = 10, .init = start_dns,
     .fini = stop_dns)
{
    run_main(cancel, NULL);
}

/* One caller gives up while another still waits on the same channel: the
 * abandoned record is freed when its answer (never) or c-ares' time-out
 * comes, or with the hub; the other caller is unaffected. */
static void *one_gives_up(void *arg)
{
    gr_t g;

    (void)arg;
    g = gr_spawn(lookup_silent, NULL);
    gr_sleep(gr_now() + 20);
    expect("both.grove.test", AF_INET, "192.0.2.3");
    gr_kill(g);
    gr_join(g, NULL, -1);
    cr_assert_eq(cancelled_errno, ECANCELED);
    return NULL;
}

Test(dns, a_caller_giving_up_leaves_the_others_alone, .timeout = 10, .init = start_dns,
     .fini = stop_dns)
{
    run_main(one_gives_up, NULL);
}

/* ------------------------------------------------------- concurrency */

enum { LOOKUPS = 60 };
static const char *const names[] = {"v4.grove.test", "v6.grove.test", "both.grove.test",
                                    "nx.grove.test", "localhost"};
static const char *const wants[] = {"192.0.2.1 192.0.2.2", "2001:db8::6", "192.0.2.3 2001:db8::3",
                                    NULL, "127.0.0.1"};
static atomic_int lookups_ok;

static void *one_lookup(void *arg)
{
    intptr_t i = (intptr_t)arg % 5;
    struct addrinfo *res;
    char got[256];
    int rc = gr_getaddrinfo(names[i], "443", &tcp, &res, gr_now() + 5000);

    if (!wants[i]) {
        cr_assert_eq(rc, EAI_NONAME);
    } else {
        cr_assert_eq(rc, 0, "%s: %s", names[i], gai_strerror(rc));
        addrs_of(res, got, sizeof got);
        /* Sorted by c-ares' RFC 6724 rules: compare as sets. */
        for (char *tok = strtok(got, " "); tok; tok = strtok(NULL, " "))
            cr_assert(strstr(wants[i], tok), "%s: unexpected %s", names[i], tok);
        gr_freeaddrinfo(res);
    }
    atomic_fetch_add(&lookups_ok, 1);
    return NULL;
}

static void *many(void *arg)
{
    gr_t t[LOOKUPS];

    (void)arg;
    for (intptr_t i = 0; i < LOOKUPS; i++)
        t[i] = gr_spawn(one_lookup, (void *)i);
    for (int i = 0; i < LOOKUPS; i++)
        gr_join(t[i], NULL, -1);
    cr_assert_eq(atomic_load(&lookups_ok), LOOKUPS);
    return NULL;
}

Test(dns, many_concurrent_lookups, .timeout = 10, .init = start_dns, .fini = stop_dns)
{
    run_main(many, NULL);
}

/* --------------------------------------------- /etc/hosts and numeric */

static void *hosts_file(void *arg)
{
    (void)arg;
    expect("localhost", AF_INET, "127.0.0.1");
    return NULL;
}

Test(dns, localhost_comes_from_etc_hosts, .timeout = 10, .init = start_dns, .fini = stop_dns)
{
    run_main(hosts_file, NULL);
    cr_assert_eq(atomic_load(&dns_asked_localhost), 0, "the responder was never asked");
}

static void *numeric(void *arg)
{
    struct addrinfo h = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    char got[256];

    (void)arg;
    expect("127.0.0.1", AF_UNSPEC, "127.0.0.1");
    expect("::1", AF_UNSPEC, "::1");
    cr_assert_eq(gr_getaddrinfo(NULL, "8080", &h, &res, -1), 0);
    addrs_of(res, got, sizeof got);
    cr_assert(strstr(got, "0.0.0.0") || strstr(got, "::"), "passive: %s", got);
    gr_freeaddrinfo(res);
    /* Deadline 0 still answers what needs no waiting. */
    cr_assert_eq(gr_getaddrinfo("10.1.2.3", "1", &tcp, &res, 0), 0);
    gr_freeaddrinfo(res);
    cr_assert_eq(gr_getaddrinfo("localhost", "1", &tcp, &res, 0), 0);
    gr_freeaddrinfo(res);
    errno = 0;
    cr_assert_eq(gr_getaddrinfo("v4.grove.test", "1", &tcp, &res, 0), EAI_SYSTEM);
    cr_assert_eq(errno, ETIMEDOUT);
    return NULL;
}

Test(dns, numeric_hosts_need_no_lookup, .timeout = 10, .init = start_dns, .fini = stop_dns)
{
    run_main(numeric, NULL);
}

static void *bad_input(void *arg)
{
    struct addrinfo h = {0}, *res;

    (void)arg;
    cr_assert_eq(gr_getaddrinfo(NULL, NULL, NULL, &res, -1), EAI_NONAME);
    cr_assert_eq(gr_getaddrinfo("", "80", NULL, &res, -1), EAI_NONAME);
    h.ai_flags = AI_NUMERICHOST;
    cr_assert_eq(gr_getaddrinfo("localhost", "80", &h, &res, -1), EAI_NONAME);
    h.ai_flags = AI_NUMERICSERV;
    cr_assert_eq(gr_getaddrinfo("localhost", "http", &h, &res, -1), EAI_NONAME);
    h.ai_flags = 0;
    cr_assert_eq(gr_getaddrinfo("localhost", "no-such-service", &h, &res, -1), EAI_SERVICE);
    h.ai_family = 12345;
    cr_assert_eq(gr_getaddrinfo("localhost", "80", &h, &res, -1), EAI_FAMILY);
    h = (struct addrinfo){.ai_socktype = 9999};
    cr_assert_eq(gr_getaddrinfo("localhost", "80", &h, &res, -1), EAI_SOCKTYPE);
    h = (struct addrinfo){.ai_flags = 0x40000000};
    cr_assert_eq(gr_getaddrinfo("localhost", "80", &h, &res, -1), EAI_BADFLAGS);
    errno = 0;
    cr_assert_eq(gr_getaddrinfo("localhost", "80", NULL, NULL, -1), EAI_SYSTEM);
    cr_assert_eq(errno, EINVAL);
    assert_fails(gr_resolver_servers("not an address"), EINVAL);
    assert_fails(gr_resolver_set(7), EINVAL);
    return NULL;
}

Test(dns, bad_input_gets_glibcs_errors, .timeout = 10)
{
    run_main(bad_input, NULL);
}

Test(dns, service_names_come_from_etc_services, .timeout = 10)
{
    struct addrinfo *res;

    if (access("/etc/services", R_OK) != 0)
        cr_skip_test("no /etc/services");
    cr_assert_eq(gr_getaddrinfo("localhost", "http", &tcp, &res, -1), 0);
    cr_assert_eq(ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port), 80);
    gr_freeaddrinfo(res);
}

/* --------------------------------------------------------- reverse */

static struct sockaddr_in ipv4(const char *text, int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

    inet_pton(AF_INET, text, &a.sin_addr);
    return a;
}

static void *reverse(void *arg)
{
    struct sockaddr_in a = ipv4("127.0.0.1", 80);
    char host[NI_MAXHOST], serv[NI_MAXSERV], tiny[4];

    (void)arg;
    cr_assert_eq(gr_getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host, serv,
                                sizeof serv, NI_NUMERICSERV, gr_now() + 5000),
                 0);
    cr_assert_str_eq(host, "localhost");
    cr_assert_str_eq(serv, "80");
    cr_assert_eq(gr_getnameinfo((struct sockaddr *)&a, sizeof a, tiny, sizeof tiny, NULL, 0, 0, -1),
                 EAI_OVERFLOW);
    a = ipv4("192.0.2.1", 53);
    cr_assert_eq(gr_getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host, NULL, 0,
                                NI_NAMEREQD, -1),
                 0);
    cr_assert_str_eq(host, "v4.grove.test");
    a = ipv4("192.0.2.99", 53);
    cr_assert_eq(gr_getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host, NULL, 0,
                                NI_NAMEREQD, -1),
                 EAI_NONAME);
    cr_assert_eq(gr_getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host, NULL, 0, 0, -1),
                 0);
    cr_assert_str_eq(host, "192.0.2.99", "without NI_NAMEREQD: the number");
    cr_assert_eq(gr_getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host, serv,
                                sizeof serv, NI_NUMERICHOST | NI_NUMERICSERV, 0),
                 0);
    cr_assert_str_eq(serv, "53");
    cr_assert_eq(gr_getnameinfo((struct sockaddr *)&a, 3, host, sizeof host, NULL, 0, 0, -1),
                 EAI_FAMILY);
    cr_assert_eq(gr_getnameinfo((struct sockaddr *)&a, sizeof a, NULL, 0, NULL, 0, 0, -1),
                 EAI_NONAME);
    return NULL;
}

Test(dns, reverse_lookups, .timeout = 10, .init = start_dns, .fini = stop_dns)
{
    run_main(reverse, NULL);
}

/* ----------------------------------------------------- other contexts */

Test(dns, works_from_the_root_context, .timeout = 10, .init = start_dns, .fini = stop_dns)
{
    struct addrinfo *res;
    char got[256];

    cr_assert_eq(gr_getaddrinfo("v4.grove.test", "80", &tcp, &res, gr_now() + 5000), 0);
    addrs_of(res, got, sizeof got);
    cr_assert_str_eq(got, "192.0.2.1 192.0.2.2");
    gr_freeaddrinfo(res);
    errno = 0;
    cr_assert_eq(gr_getaddrinfo("silent.grove.test", "80", &tcp, &res, gr_now() + 30), EAI_SYSTEM);
    cr_assert_eq(errno, ETIMEDOUT);
}

static int callback_rc, callback_errno;

static void lookup_in_callback(void *arg)
{
    struct addrinfo *res;

    (void)arg;
    callback_rc = gr_getaddrinfo("localhost", "80", &tcp, &res, -1);
    callback_errno = errno;
}

static void *from_callback(void *arg)
{
    (void)arg;
    gr_hub_post(gr_hub_current(), lookup_in_callback, NULL);
    gr_sleep(gr_now() + 5);
    cr_assert_eq(callback_rc, EAI_SYSTEM);
    cr_assert_eq(callback_errno, EDEADLK);
    return NULL;
}

Test(dns, a_hub_callback_gets_edeadlk, .timeout = 10)
{
    cr_redirect_stderr();
    run_main(from_callback, NULL);
}

/* Servers changed while a lookup is in flight: it finishes on the old
 * channel, later ones use the new list. */
static void *switch_servers(void *arg)
{
    struct addrinfo *res;
    gr_t g;

    (void)arg;
    g = gr_spawn(lookup_silent, NULL);
    gr_sleep(gr_now() + 20);
    cr_assert_eq(gr_resolver_servers("127.0.0.1:1"), 0); /* nobody there */
    cr_assert_neq(gr_getaddrinfo("v4.grove.test", "80", &tcp, &res, gr_now() + 200), 0,
                  "the new list is used");
    cr_assert_eq(gr_resolver_servers(NULL), 0);
    gr_kill(g);
    gr_join(g, NULL, -1);
    return NULL;
}

Test(dns, changing_servers_applies_to_later_lookups, .timeout = 10, .init = start_dns,
     .fini = stop_dns)
{
    run_main(switch_servers, NULL);
}

/* --------------------------------------------- the thread-pool resolver */

static void *thread_resolver(void *arg)
{
    struct sockaddr_in a = ipv4("127.0.0.1", 80);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    struct addrinfo *res;
    int before = proc_self_count("task");

    (void)arg;
    expect("localhost", AF_INET, "127.0.0.1");
    cr_assert_gt(proc_self_count("task"), before, "a pool thread ran the lookup");
    expect("127.0.0.1", AF_UNSPEC, "127.0.0.1");
    expect("::1", AF_UNSPEC, "::1");
    cr_assert_eq(gr_getaddrinfo("localhost", "no-such-service", &tcp, &res, -1), EAI_SERVICE);
    cr_assert_eq(gr_getnameinfo((struct sockaddr *)&a, sizeof a, host, sizeof host, serv,
                                sizeof serv, NI_NUMERICSERV, gr_now() + 5000),
                 0);
    cr_assert_str_eq(host, "localhost");
    cr_assert_str_eq(serv, "80");
    return NULL;
}

Test(dns, the_thread_resolver_reads_etc_hosts, .timeout = 10)
{
    cr_assert_eq(gr_resolver_set(GR_RESOLVER_THREAD), 0);
    run_main(thread_resolver, NULL);
}

Test(dns, grove_resolver_thread_selects_it, .timeout = 10)
{
    setenv("GROVE_RESOLVER", "thread", 1);
    run_main(thread_resolver, NULL);
}

static void *thread_cancel(void *arg)
{
    struct addrinfo *res;

    (void)arg;
    gr_kill(gr_self());
    errno = 0;
    cr_assert_eq(gr_getaddrinfo("localhost", "80", &tcp, &res, -1), EAI_SYSTEM);
    cr_assert_eq(errno, ECANCELED);
    return NULL;
}

Test(dns, a_killed_caller_gets_ecanceled_from_either_resolver, .timeout = 10)
{
    run_main(thread_cancel, NULL);
    gr_resolver_set(GR_RESOLVER_THREAD);
    run_main(thread_cancel, NULL);
}
