/* DNS (gevent.resolver): the public entry points, and the addrinfo
 * chains both resolvers return. The lookups themselves are c-ares driven
 * by the hub (dns_ares.c), the default, or the system's getaddrinfo and
 * getnameinfo on the thread pool (dns_thread.c).
 *
 * Both resolvers answer numeric hosts (and a NULL host) with the system's
 * getaddrinfo and AI_NUMERICHOST, which does no I/O, so results for them
 * are exactly glibc's. Only real names reach c-ares or the pool. */
#define _GNU_SOURCE
#include "net/dns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ------------------------------------------------- our addrinfo chains
 * Results are ours whichever resolver made them, so gr_freeaddrinfo has
 * one way to free: each entry is one allocation holding its address and,
 * for the first, the canonical name. */

typedef struct ai_node {
    struct addrinfo ai;
    struct sockaddr_storage addr;
    char canon[];
} ai_node;

int gr__dns_chain_add(gr__dns_chain *c, int family, int socktype, int protocol,
                      const struct sockaddr *sa, socklen_t len, const char *canon)
{
    size_t clen = canon ? strlen(canon) + 1 : 0;
    ai_node *n;

    if (len > sizeof n->addr || !(n = gr__calloc(1, sizeof *n + clen)))
        return EAI_MEMORY;
    n->ai.ai_family = family;
    n->ai.ai_socktype = socktype;
    n->ai.ai_protocol = protocol;
    memcpy(&n->addr, sa, len);
    n->ai.ai_addr = (struct sockaddr *)&n->addr;
    n->ai.ai_addrlen = len;
    if (canon) {
        memcpy(n->canon, canon, clen);
        n->ai.ai_canonname = n->canon;
    }
    *c->tail = &n->ai;
    c->tail = &n->ai.ai_next;
    return 0;
}

void gr_freeaddrinfo(struct addrinfo *res)
{
    while (res) {
        struct addrinfo *next = res->ai_next;

        free(res); /* the ai_node starts with it */
        res = next;
    }
}

int gr__dns_adopt(struct addrinfo *sys, struct addrinfo **res)
{
    gr__dns_chain c = {NULL, &c.head};
    int rc = 0;

    for (struct addrinfo *a = sys; a && !rc; a = a->ai_next)
        rc = gr__dns_chain_add(&c, a->ai_family, a->ai_socktype, a->ai_protocol, a->ai_addr,
                               a->ai_addrlen, a->ai_canonname);
    freeaddrinfo(sys);
    if (rc) {
        gr_freeaddrinfo(c.head);
        return rc;
    }
    *res = c.head;
    return 0;
}

struct addrinfo gr__dns_hints(const struct addrinfo *hints)
{
    struct addrinfo h = {0};

    if (!hints) {
        h.ai_flags = AI_V4MAPPED | AI_ADDRCONFIG; /* glibc's default */
        return h;
    }
    h.ai_flags = hints->ai_flags;
    h.ai_family = hints->ai_family;
    h.ai_socktype = hints->ai_socktype;
    h.ai_protocol = hints->ai_protocol;
    return h;
}

/* Numeric hosts and NULL need no lookup: EAI_NONAME means "a name". */
static int numeric_addrinfo(const char *node, const char *service, const struct addrinfo *hints,
                            struct addrinfo **res)
{
    struct addrinfo h = gr__dns_hints(hints), *sys;
    int rc;

    h.ai_flags |= AI_NUMERICHOST;
    if ((rc = getaddrinfo(node, service, &h, &sys)) != 0)
        return rc;
    return gr__dns_adopt(sys, res);
}
/* ---------------------------------------------------- resolver choice */

static __thread int chosen = -1; /* GR_RESOLVER_*, or -1 until first asked */

static int resolver(void)
{
    if (chosen < 0) {
        const char *e = getenv("GROVE_RESOLVER");

        chosen = e && strcmp(e, "thread") == 0 ? GR_RESOLVER_THREAD : GR_RESOLVER_ARES;
    }
    return chosen;
}

int gr_resolver_set(int which)
{
    if (which != GR_RESOLVER_ARES && which != GR_RESOLVER_THREAD) {
        errno = EINVAL;
        return -1;
    }
    chosen = which;
    return 0;
}

/* ------------------------------------------------------------- public */

/* The caller may block: EAI_SYSTEM with errno EDEADLK (hub callback),
 * ECANCELED (killed) or ENOMEM (no hub) otherwise. */
static gr_hub *enter(void)
{
    return gr__enter() == 0 ? gr_hub_current() : NULL;
}

int gr_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                   struct addrinfo **res, int64_t deadline)
{
    gr_hub *h;
    int rc;

    if (!res) {
        errno = EINVAL;
        return EAI_SYSTEM;
    }
    *res = NULL;
    if ((!node && !service) || (node && !*node))
        return EAI_NONAME;
    if (!(h = enter()))
        return EAI_SYSTEM;
    rc = numeric_addrinfo(node, service, hints, res);
    if (rc != EAI_NONAME || !node || (hints && (hints->ai_flags & AI_NUMERICHOST)))
        return rc;
    if (resolver() == GR_RESOLVER_THREAD)
        return gr__dns_thread_addrinfo(node, service, hints, res, deadline);
    return gr__dns_ares_addrinfo(h, node, service, hints, res, deadline);
}

#ifndef NI_IDN
#define NI_IDN 0
#endif
#define NI_KNOWN (NI_NUMERICHOST | NI_NUMERICSERV | NI_NOFQDN | NI_NAMEREQD | NI_DGRAM | NI_IDN)

static int sockaddr_ok(const struct sockaddr *sa, socklen_t salen)
{
    if (!sa || salen < sizeof(sa_family_t) || salen > sizeof(struct sockaddr_storage))
        return 0;
    if (sa->sa_family == AF_INET)
        return salen >= sizeof(struct sockaddr_in);
    return sa->sa_family == AF_INET6 && salen >= sizeof(struct sockaddr_in6);
}

int gr_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, size_t hostlen,
                   char *serv, size_t servlen, int flags, int64_t deadline)
{
    int want_host = host && hostlen, want_serv = serv && servlen;
    gr_hub *h;

    if (!sockaddr_ok(sa, salen))
        return EAI_FAMILY;
    if (!want_host && !want_serv)
        return EAI_NONAME;
    if (flags & ~NI_KNOWN)
        return EAI_BADFLAGS;
    if (!(h = enter()))
        return EAI_SYSTEM;
    /* Without a host name to find, the system's answer costs no I/O
     * (service names come from /etc/services). */
    if (!want_host || (flags & NI_NUMERICHOST))
        return getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
    if (resolver() == GR_RESOLVER_THREAD)
        return gr__dns_thread_nameinfo(sa, salen, host, hostlen, serv, servlen, flags, deadline);
    return gr__dns_ares_nameinfo(h, sa, salen, host, hostlen, serv, servlen, flags, deadline);
}
