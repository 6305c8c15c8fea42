/* libgrove-patch's DNS: getaddrinfo, getnameinfo, gethostbyname*,
 * gethostbyaddr* and res_query give exactly glibc's answers (compared
 * with the original called in the same thread, on a matrix of numeric
 * hosts, /etc/hosts names, names a DNS server knows and does not know,
 * flags, families and buffer sizes), while a lookup waits only its green
 * thread. Queries go to a small DNS server of our own on 127.0.0.1, which
 * the calling thread's _res names (and which the thread-pool lookups
 * follow), never to the machine's configured servers. */
#include "patch_common.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>

/* -------------------------------------------------------- the responder
 * known.grove.test  A 192.0.2.7 (no AAAA)
 * slow.grove.test   A 192.0.2.8, answered after 300 ms
 * anything else     NXDOMAIN */
static int dns_fd, dns_port;
static pthread_t dns_thread;

typedef struct pending {
    unsigned char b[512];
    size_t n;
    struct sockaddr_in to;
} pending;

static void *answer_later(void *arg)
{
    pending *p = arg;

    usleep(300000);
    sendto(dns_fd, p->b, p->n, 0, (struct sockaddr *)&p->to, sizeof p->to);
    free(p);
    return NULL;
}

/* Build the answer to q (len n) in a; returns its length. */
static size_t answer(const unsigned char *q, size_t n, unsigned char *a, int *slow)
{
    char name[256] = "";
    size_t off = 12, nl = 0;
    unsigned qtype;
    const unsigned char *addr = NULL;
    static const unsigned char known[4] = {192, 0, 2, 7}, slowa[4] = {192, 0, 2, 8};

    while (off < n && q[off]) {
        size_t l = q[off++];

        if (nl)
            name[nl++] = '.';
        memcpy(name + nl, q + off, l);
        nl += l;
        off += l;
    }
    name[nl] = 0;
    off++;
    qtype = (unsigned)(q[off] << 8 | q[off + 1]);
    off += 4;
    memcpy(a, q, off);
    a[2] = (unsigned char)(0x80 | (q[2] & 0x01)); /* QR, RD copied */
    a[3] = 0x80;                                  /* RA, NOERROR */
    a[6] = a[7] = a[8] = a[9] = a[10] = a[11] = 0;
    *slow = !strcasecmp(name, "slow.grove.test");
    if (!strcasecmp(name, "known.grove.test"))
        addr = known;
    else if (*slow)
        addr = slowa;
    else {
        a[3] |= 3; /* NXDOMAIN */
        return off;
    }
    if (qtype != ns_t_a)
        return off; /* the name exists, no data of that type */
    a[7] = 1;
    unsigned char rr[] = {0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4};
    memcpy(a + off, rr, sizeof rr);
    memcpy(a + off + sizeof rr, addr, 4);
    return off + sizeof rr + 4;
}

static void *responder(void *arg)
{
    (void)arg;
    for (;;) {
        unsigned char q[512], a[512];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(dns_fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        int slow;
        size_t len;

        if (n < 12)
            continue;
        len = answer(q, (size_t)n, a, &slow);
        if (slow) {
            pending *p = malloc(sizeof *p);
            pthread_t t;

            memcpy(p->b, a, len);
            p->n = len;
            p->to = from;
            pthread_create(&t, NULL, answer_later, p);
            pthread_detach(t);
        } else {
            sendto(dns_fd, a, len, 0, (struct sockaddr *)&from, fl);
        }
    }
    return NULL;
}

static void start_dns(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;

    dns_fd = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert_eq(bind(dns_fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(dns_fd, (struct sockaddr *)&a, &len);
    dns_port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&dns_thread, NULL, responder, NULL), 0);
    pthread_detach(dns_thread);
}

/* This thread's resolver asks our responder only, once, quickly. */
static void use_our_dns(void)
{
    cr_assert_eq(res_init(), 0);
    _res.nscount = 1;
    _res.nsaddr_list[0] = (struct sockaddr_in){.sin_family = AF_INET,
                                               .sin_port = htons((uint16_t)dns_port),
                                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    _res.retrans = 1;
    _res.retry = 1;
}

static void setup(void)
{
    require_patch();
    start_dns();
    use_our_dns();
}

/* ---------------------------------------------------------- comparisons */

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static void same_addrinfo(const struct addrinfo *a, const struct addrinfo *b, const char *what)
{
    for (; a && b; a = a->ai_next, b = b->ai_next) {
        cr_assert_eq(a->ai_flags, b->ai_flags, "%s: flags", what);
        cr_assert_eq(a->ai_family, b->ai_family, "%s: family", what);
        cr_assert_eq(a->ai_socktype, b->ai_socktype, "%s: socktype", what);
        cr_assert_eq(a->ai_protocol, b->ai_protocol, "%s: protocol", what);
        cr_assert_eq(a->ai_addrlen, b->ai_addrlen, "%s: addrlen", what);
        cr_assert_eq(memcmp(a->ai_addr, b->ai_addr, a->ai_addrlen), 0, "%s: address", what);
        cr_assert_eq(!a->ai_canonname, !b->ai_canonname, "%s: canonname", what);
        if (a->ai_canonname)
            cr_assert_str_eq(a->ai_canonname, b->ai_canonname, "%s", what);
    }
    cr_assert(!a && !b, "%s: lists of different lengths", what);
}

static const char *nodes[] = {"127.0.0.1",          "::1", "localhost", "known.grove.test",
                              "unknown.grove.test", NULL,  ""};
static const char *services[] = {NULL, "80", "http", "no-such-service"};
static const int flags[] = {0,
                            AI_PASSIVE,
                            AI_CANONNAME,
                            AI_ADDRCONFIG,
                            AI_NUMERICSERV,
                            AI_NUMERICHOST,
                            AI_CANONNAME | AI_ADDRCONFIG};
static const int families[] = {AF_UNSPEC, AF_INET, AF_INET6};
static const int socktypes[] = {0, SOCK_STREAM};

#define N(a) (sizeof a / sizeof a[0])

static void *gai_matrix(void *arg)
{
    gai_fn orig = (gai_fn)gr_patch_original("getaddrinfo");
    int cases = 0, nonames = 0;

    (void)arg;
    cr_assert(gr_patch_cooperative());
    for (size_t n = 0; n < N(nodes); n++)
        for (size_t s = 0; s < N(services); s++)
            for (size_t f = 0; f < N(flags); f++)
                for (size_t fa = 0; fa < N(families); fa++)
                    for (size_t st = 0; st < N(socktypes); st++) {
                        struct addrinfo h = {.ai_flags = flags[f],
                                             .ai_family = families[fa],
                                             .ai_socktype = socktypes[st]};
                        struct addrinfo *ra = NULL, *rb = NULL;
                        char what[160];
                        int a = orig(nodes[n], services[s], &h, &ra);
                        int b = getaddrinfo(nodes[n], services[s], &h, &rb);

                        snprintf(what, sizeof what,
                                 "getaddrinfo(%s, %s, flags 0x%x, family %d, "
                                 "socktype %d)",
                                 nodes[n] ? nodes[n] : "NULL", services[s] ? services[s] : "NULL",
                                 flags[f], families[fa], socktypes[st]);
                        cr_assert_eq(a, b, "%s: glibc %d (%s), patched %d (%s)", what, a,
                                     gai_strerror(a), b, gai_strerror(b));
                        if (!a)
                            same_addrinfo(ra, rb, what);
                        nonames += a == EAI_NONAME;
                        if (ra)
                            freeaddrinfo(ra);
                        if (rb)
                            freeaddrinfo(rb);
                        cases++;
                    }
    /* And without hints. */
    for (size_t n = 0; n < N(nodes); n++) {
        struct addrinfo *ra = NULL, *rb = NULL;
        int a = orig(nodes[n], "80", NULL, &ra), b = getaddrinfo(nodes[n], "80", NULL, &rb);

        cr_assert_eq(a, b, "getaddrinfo(%s, 80, NULL)", nodes[n] ? nodes[n] : "NULL");
        if (!a)
            same_addrinfo(ra, rb, "no hints");
        freeaddrinfo(ra);
        freeaddrinfo(rb);
    }
    cr_assert_gt(nonames, 0, "the unknown name never gave EAI_NONAME");
    cr_assert_gt(cases, 1000);
    return NULL;
}

Test(patch_dns, getaddrinfo_gives_glibcs_answers, .timeout = 60, .init = setup)
{
    run_main(gai_matrix, NULL);
}

typedef int (*gni_fn)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t,
                      int);

static void *gni_matrix(void *arg)
{
    gni_fn orig = (gni_fn)gr_patch_original("getnameinfo");
    struct sockaddr_in a4 = {.sin_family = AF_INET, .sin_port = htons(80)};
    struct sockaddr_in a5 = {.sin_family = AF_INET, .sin_port = htons(53)};
    struct sockaddr_in6 a6 = {
        .sin6_family = AF_INET6, .sin6_port = htons(443), .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    const struct sockaddr *sas[] = {(void *)&a4, (void *)&a5, (void *)&a6};
    const socklen_t lens[] = {sizeof a4, sizeof a5, sizeof a6};
    const int fl[] = {0, NI_NUMERICHOST, NI_NUMERICSERV, NI_NAMEREQD, NI_DGRAM, NI_NOFQDN};
    const socklen_t hostlens[] = {NI_MAXHOST, 3};

    (void)arg;
    inet_pton(AF_INET, "127.0.0.1", &a4.sin_addr);
    inet_pton(AF_INET, "192.0.2.7", &a5.sin_addr);
    for (size_t i = 0; i < N(sas); i++)
        for (size_t f = 0; f < N(fl); f++)
            for (size_t h = 0; h < N(hostlens); h++) {
                char ha[NI_MAXHOST] = "", hb[NI_MAXHOST] = "", sa[32] = "", sb[32] = "";
                int x = orig(sas[i], lens[i], ha, hostlens[h], sa, sizeof sa, fl[f]);
                int y = getnameinfo(sas[i], lens[i], hb, hostlens[h], sb, sizeof sb, fl[f]);

                cr_assert_eq(x, y, "getnameinfo(%zu, flags %d, hostlen %u): %d vs %d", i, fl[f],
                             hostlens[h], x, y);
                if (!x) {
                    cr_assert_str_eq(ha, hb);
                    cr_assert_str_eq(sa, sb);
                }
            }
    return NULL;
}

Test(patch_dns, getnameinfo_gives_glibcs_answers, .timeout = 60, .init = setup)
{
    run_main(gni_matrix, NULL);
}

static void same_hostent(const struct hostent *a, const struct hostent *b, const char *what)
{
    cr_assert_eq(!a, !b, "%s: one found, one not", what);
    if (!a)
        return;
    cr_assert_str_eq(a->h_name, b->h_name, "%s", what);
    cr_assert_eq(a->h_addrtype, b->h_addrtype, "%s", what);
    cr_assert_eq(a->h_length, b->h_length, "%s", what);
    for (int i = 0;; i++) {
        cr_assert_eq(!a->h_aliases[i], !b->h_aliases[i], "%s: aliases", what);
        if (!a->h_aliases[i])
            break;
        cr_assert_str_eq(a->h_aliases[i], b->h_aliases[i], "%s", what);
    }
    for (int i = 0;; i++) {
        cr_assert_eq(!a->h_addr_list[i], !b->h_addr_list[i], "%s: addresses", what);
        if (!a->h_addr_list[i])
            break;
        cr_assert_eq(memcmp(a->h_addr_list[i], b->h_addr_list[i], (size_t)a->h_length), 0);
    }
}

/* A copy of a static hostent, before the next call overwrites it. */
typedef struct saved {
    struct hostent he;
    char *names[8], *addrs[8];
    char buf[1024];
} saved;

static struct hostent *save(const struct hostent *h, saved *s)
{
    char *p = s->buf;

    if (!h)
        return NULL;
    s->he = *h;
    s->he.h_name = strcpy(p, h->h_name);
    p += strlen(p) + 1;
    for (int i = 0; i < 7 && (s->names[i] = h->h_aliases[i]); i++)
        s->names[i] = strcpy(p, h->h_aliases[i]), p += strlen(p) + 1;
    s->names[7] = NULL;
    for (int i = 0; i < 7 && (s->addrs[i] = h->h_addr_list[i]); i++)
        s->addrs[i] = memcpy(p, h->h_addr_list[i], (size_t)h->h_length), p += h->h_length;
    s->addrs[7] = NULL;
    s->he.h_aliases = s->names;
    s->he.h_addr_list = s->addrs;
    return &s->he;
}

static const char *hostnames[] = {"localhost", "known.grove.test", "unknown.grove.test",
                                  "127.0.0.1"};

static void *host_matrix(void *arg)
{
    struct hostent *(*o_byname)(const char *) = gr_patch_original("gethostbyname");
    struct hostent *(*o_byname2)(const char *, int) = gr_patch_original("gethostbyname2");
    struct hostent *(*o_byaddr)(const void *, socklen_t, int) = gr_patch_original("gethostbyaddr");
    int (*o_r)(const char *, struct hostent *, char *, size_t, struct hostent **, int *) =
        gr_patch_original("gethostbyname_r");
    struct in_addr lo = {htonl(INADDR_LOOPBACK)};
    saved s;

    (void)arg;
    for (size_t i = 0; i < N(hostnames); i++) {
        struct hostent *a, *b;
        int ea, eb;

        a = save(o_byname(hostnames[i]), &s);
        ea = h_errno;
        b = gethostbyname(hostnames[i]);
        eb = h_errno;
        same_hostent(a, b, hostnames[i]);
        if (!a)
            cr_assert_eq(ea, eb, "h_errno for %s", hostnames[i]);
        a = save(o_byname2(hostnames[i], AF_INET6), &s);
        b = gethostbyname2(hostnames[i], AF_INET6);
        same_hostent(a, b, hostnames[i]);
        /* The reentrant one, with a buffer too small and one large enough. */
        for (size_t len = 16; len <= 1024; len *= 64) {
            char ba[1024], bb[1024];
            struct hostent ha, hb, *pa, *pb;
            int ra = o_r(hostnames[i], &ha, ba, len, &pa, &ea);
            int rb = gethostbyname_r(hostnames[i], &hb, bb, len, &pb, &eb);

            cr_assert_eq(ra, rb, "gethostbyname_r(%s, %zu): %d vs %d", hostnames[i], len, ra, rb);
            cr_assert_eq(ea, eb);
            same_hostent(pa, pb, hostnames[i]);
        }
    }
    same_hostent(save(o_byaddr(&lo, sizeof lo, AF_INET), &s),
                 gethostbyaddr(&lo, sizeof lo, AF_INET), "gethostbyaddr");
    return NULL;
}

Test(patch_dns, gethostbyname_and_friends_give_glibcs_answers, .timeout = 60, .init = setup)
{
    run_main(host_matrix, NULL);
}

static void *queries(void *arg)
{
    int (*o_query)(const char *, int, int, unsigned char *, int) = gr_patch_original("res_query");
    int (*o_search)(const char *, int, int, unsigned char *, int) = gr_patch_original("res_search");
    const char *names[] = {"known.grove.test", "unknown.grove.test"};

    (void)arg;
    for (size_t i = 0; i < N(names); i++) {
        unsigned char a[512], b[512];
        int x = o_query(names[i], ns_c_in, ns_t_a, a, sizeof a), ex = h_errno;
        int y = res_query(names[i], ns_c_in, ns_t_a, b, sizeof b), ey = h_errno;

        cr_assert_eq(x, y, "res_query(%s): %d vs %d", names[i], x, y);
        cr_assert_eq(ex, ey);
        if (x > 2) /* the IDs differ; the rest is the same */
            cr_assert_eq(memcmp(a + 2, b + 2, (size_t)x - 2), 0);
        x = o_search(names[i], ns_c_in, ns_t_a, a, sizeof a);
        y = res_search(names[i], ns_c_in, ns_t_a, b, sizeof b);
        cr_assert_eq(x, y);
    }
    return NULL;
}

Test(patch_dns, res_query_gives_glibcs_answers, .timeout = 60, .init = setup)
{
    run_main(queries, NULL);
}

/* ---------------------------------------------------------- cooperation */

#define NLOOKUPS 20

static int resolved;

static void *slow_lookup(void *arg)
{
    struct addrinfo h = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    struct sockaddr_in *sin;

    (void)arg;
    cr_assert_eq(getaddrinfo("slow.grove.test", "80", &h, &res), 0);
    sin = (struct sockaddr_in *)res->ai_addr;
    cr_assert_eq(ntohl(sin->sin_addr.s_addr), 0xC0000208);
    freeaddrinfo(res);
    resolved++;
    return NULL;
}

static void *concurrent(void *arg)
{
    gr_t g[NLOOKUPS];
    heartbeat hb;
    int64_t t0 = now_ms(), took;

    (void)arg;
    hb_start(&hb);
    for (int i = 0; i < NLOOKUPS; i++)
        g[i] = gr_spawn(slow_lookup, NULL);
    for (int i = 0; i < NLOOKUPS; i++)
        gr_join(g[i], NULL, -1);
    took = now_ms() - t0;
    hb_check(&hb);
    cr_assert_eq(resolved, NLOOKUPS);
    cr_assert_lt(took, TIME_TARGET(1500), "20 lookups answered after 300 ms took %lld ms",
                 (long long)took);
    return NULL;
}

Test(patch_dns, lookups_wait_only_their_green_threads, .timeout = 60, .init = setup)
{
    run_main(concurrent, NULL);
}

static void *killed_lookup(void *arg)
{
    int *out = arg;
    struct addrinfo *res = NULL;

    errno = 0;
    out[0] = getaddrinfo("slow.grove.test", "80", NULL, &res);
    out[1] = errno;
    return NULL;
}

static void *kill_one(void *arg)
{
    int out[2] = {0, 0};
    gr_t g = gr_spawn(killed_lookup, out);
    int64_t t0 = now_ms();

    (void)arg;
    gr_sleep(gr_now_update() + 50);
    gr_kill(g);
    gr_join(g, NULL, -1);
    cr_assert_eq(out[0], EAI_SYSTEM);
    cr_assert_eq(out[1], ECANCELED);
    cr_assert_lt(now_ms() - t0, 280, "the killed lookup waited for its answer");
    gr_sleep(gr_now_update() + 400); /* the abandoned job finishes on its own */
    return NULL;
}

Test(patch_dns, a_killed_lookup_returns_at_once, .timeout = 60, .init = setup)
{
    run_main(kill_one, NULL);
}
