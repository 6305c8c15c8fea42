/* The thread-pool resolver (GR_RESOLVER_THREAD): the system's
 * getaddrinfo/getnameinfo on a pool thread, which honours everything the
 * system does (nsswitch.conf...) at the price of a pool thread per lookup
 * in flight. The job owns copies of every input and its own result
 * buffers, so an abandoned lookup touches nothing of the caller's; discard
 * frees what it made. */
#define _GNU_SOURCE
#include "net/dns.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct tjob {
    char *node, *service;
    struct addrinfo hints;
    int has_hints;
    struct addrinfo *res;
    struct sockaddr_storage sa;
    socklen_t salen;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    size_t hostlen, servlen;
    int flags;
    int rc, err;
} tjob;

static void tjob_free(tjob *j)
{
    gr_freeaddrinfo(j->res);
    free(j->node);
    free(j->service);
    free(j);
}

static void tjob_discard(void *result, void *arg)
{
    (void)result;
    tjob_free(arg);
}

static void *run_getaddrinfo(void *arg)
{
    tjob *j = arg;
    struct addrinfo *sys;

    j->rc = getaddrinfo(j->node, j->service, j->has_hints ? &j->hints : NULL, &sys);
    j->err = errno;
    if (j->rc == 0)
        j->rc = gr__dns_adopt(sys, &j->res);
    return j;
}

static void *run_getnameinfo(void *arg)
{
    tjob *j = arg;

    j->rc = getnameinfo((struct sockaddr *)&j->sa, j->salen, j->hostlen ? j->host : NULL,
                        j->hostlen, j->servlen ? j->serv : NULL, j->servlen, j->flags);
    j->err = errno;
    return j;
}

/* Run j on the pool. 0 when it ran (j->rc holds the outcome), else an
 * EAI_* code; j is then freed or the pool's. */
static int tjob_run(tjob *j, gr_work_fn fn, int64_t deadline)
{
    int err;

    if (gr_threadpool_run(fn, j, NULL, tjob_discard, deadline) == 0)
        return 0;
    if ((err = errno) == ETIMEDOUT || err == ECANCELED)
        return EAI_SYSTEM; /* the pool discards j when fn is done */
    tjob_free(j);
    errno = err;
    if (err == EAGAIN)
        return EAI_AGAIN;
    return err == ENOMEM ? EAI_MEMORY : EAI_SYSTEM;
}

/* Free a job that ran and return its outcome; errno for EAI_SYSTEM is set
 * once j is freed, so no free() can change it. */
static int tjob_finish(tjob *j)
{
    int rc = j->rc, err = j->err;

    tjob_free(j);
    if (rc == EAI_SYSTEM)
        errno = err;
    return rc;
}

static char *dup_or_null(const char *s, int *failed)
{
    char *d = s ? gr__strdup(s) : NULL;

    *failed |= s && !d;
    return d;
}

int gr__dns_thread_addrinfo(const char *node, const char *service, const struct addrinfo *hints,
                            struct addrinfo **res, int64_t deadline)
{
    tjob *j = gr__calloc(1, sizeof *j);
    int failed = 0, rc;

    if (!j)
        return EAI_MEMORY;
    j->node = dup_or_null(node, &failed);
    j->service = dup_or_null(service, &failed);
    if (failed) {
        tjob_free(j);
        return EAI_MEMORY;
    }
    j->has_hints = hints != NULL;
    j->hints = gr__dns_hints(hints);
    if ((rc = tjob_run(j, run_getaddrinfo, deadline)) != 0)
        return rc;
    if (j->rc == 0) {
        *res = j->res;
        j->res = NULL;
    }
    return tjob_finish(j);
}

int gr__dns_thread_nameinfo(const struct sockaddr *sa, socklen_t salen, char *host, size_t hostlen,
                            char *serv, size_t servlen, int flags, int64_t deadline)
{
    tjob *j = gr__calloc(1, sizeof *j);
    int rc;

    if (!j)
        return EAI_MEMORY;
    memcpy(&j->sa, sa, salen);
    j->salen = salen;
    /* Never more than the caller's room, so EAI_OVERFLOW is the system's. */
    j->hostlen = host && hostlen ? (hostlen < sizeof j->host ? hostlen : sizeof j->host) : 0;
    j->servlen = serv && servlen ? (servlen < sizeof j->serv ? servlen : sizeof j->serv) : 0;
    j->flags = flags;
    if ((rc = tjob_run(j, run_getnameinfo, deadline)) != 0)
        return rc;
    if (j->rc == 0) {
        if (j->hostlen)
            strcpy(host, j->host);
        if (j->servlen)
            strcpy(serv, j->serv);
    }
    return tjob_finish(j);
}
