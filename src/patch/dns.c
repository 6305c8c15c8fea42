/* Name resolution in green threads. Since glibc 2.34 the resolver's own
 * socket, poll and recvmsg calls are made inside libc, out of reach of
 * interposition, so these entry points are replaced whole: the real call
 * runs on grove's thread pool while the green thread waits. Results are
 * glibc's own, for every input (nsswitch.conf, /etc/hosts, search
 * domains, error codes).
 *
 * Each lookup is a job that owns copies of its inputs and buffers of its
 * own, so a caller that is killed (or whose Timeout region ends) returns
 * at once and the job, finishing later on its thread, touches nothing of
 * the caller's: the pool then frees it (discard).
 *
 * The resolver state: glibc's _res is per OS thread. A pool thread runs the
 * lookup with the caller's name servers and options when the caller has
 * initialised (and perhaps changed) its _res, and res_query runs on a
 * copy of the caller's state, as res_nquery does on the one given. */
#include "patch/io.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

enum { J_GAI, J_GNI, J_HOST, J_HOST2, J_ADDR, J_QUERY, J_SEARCH };

/* The fields of a resolver state that say where and how to ask. */
typedef struct resconf {
    int set;
    int nscount, retrans, retry;
    unsigned long options;
    unsigned ndots;
    struct sockaddr_in nsaddr_list[MAXNS];
} resconf;

typedef struct job {
    int kind;
    /* inputs */
    char *name, *service;
    struct addrinfo hints;
    int has_hints;
    struct sockaddr_storage sa;
    socklen_t salen;
    int flags, af, type, class;
    int grow; /* the non-reentrant calls: the buffer is ours to grow */
    unsigned char addr[16];
    socklen_t addrlen;
    resconf conf;
    struct __res_state state; /* J_QUERY, J_SEARCH: a copy of the caller's */
    /* outputs */
    int rc, err, herr;
    struct addrinfo *res;
    struct hostent he, *result;
    char *buf; /* host/serv (J_GNI), the hostent's data, the answer */
    size_t buflen, servlen;
} job;

/* -------------------------------------------------------- the _res state */

static void conf_take(resconf *c, const struct __res_state *r)
{
    c->set = 1;
    c->nscount = r->nscount;
    c->retrans = r->retrans;
    c->retry = r->retry;
    c->options = r->options;
    c->ndots = r->ndots;
    memcpy(c->nsaddr_list, r->nsaddr_list, sizeof c->nsaddr_list);
}

static void conf_put(const resconf *c, struct __res_state *r)
{
    r->nscount = c->nscount;
    r->retrans = c->retrans;
    r->retry = c->retry;
    r->options = c->options;
    r->ndots = c->ndots;
    memcpy(r->nsaddr_list, c->nsaddr_list, sizeof c->nsaddr_list);
}

/* The caller's settings, if it has any (an initialised _res). */
static void conf_snapshot(resconf *c)
{
    c->set = 0;
    if (_res.options & RES_INIT)
        conf_take(c, &_res);
}

/* ---------------------------------------------------------------- jobs */

static void job_free(job *j)
{
    if (j->res)
        gr__orig.freeaddrinfo(j->res);
    free(j->name);
    free(j->service);
    free(j->buf);
    free(j);
}

static void job_discard(void *result, void *arg)
{
    (void)result;
    job_free(arg);
}

/* A gethostbyname-style call into j->buf, growing it on ERANGE when the
 * caller left the size to us (grow). */
static void run_host(job *j, int grow)
{
    for (;;) {
        int herr = 0;

        if (j->kind == J_HOST)
            j->rc = gr__orig.gethostbyname_r(j->name, &j->he, j->buf, j->buflen, &j->result, &herr);
        else if (j->kind == J_HOST2)
            j->rc = gr__orig.gethostbyname2_r(j->name, j->af, &j->he, j->buf, j->buflen, &j->result,
                                              &herr);
        else
            j->rc = gr__orig.gethostbyaddr_r(j->addr, j->addrlen, j->type, &j->he, j->buf,
                                             j->buflen, &j->result, &herr);
        j->herr = herr;
        j->err = errno;
        if (!grow || j->rc != ERANGE || j->buflen >= (1u << 20))
            return;
        char *bigger = realloc(j->buf, j->buflen * 2);

        if (!bigger)
            return;
        j->buf = bigger;
        j->buflen *= 2;
    }
}

static void *run_job(void *arg)
{
    job *j = arg;
    resconf saved = {0};

    /* The caller's name servers and options, for this lookup only. */
    if (j->conf.set && j->kind != J_QUERY && j->kind != J_SEARCH) {
        if (!(_res.options & RES_INIT))
            res_init();
        conf_take(&saved, &_res);
        conf_put(&j->conf, &_res);
    }
    switch (j->kind) {
    case J_GAI:
        j->rc = gr__orig.getaddrinfo(j->name, j->service, j->has_hints ? &j->hints : NULL, &j->res);
        j->err = errno;
        break;
    case J_GNI:
        j->rc = gr__orig.getnameinfo((struct sockaddr *)&j->sa, j->salen, j->buflen ? j->buf : NULL,
                                     (socklen_t)j->buflen, j->servlen ? j->buf + j->buflen : NULL,
                                     (socklen_t)j->servlen, j->flags);
        j->err = errno;
        break;
    case J_QUERY:
    case J_SEARCH:
        j->rc = (j->kind == J_QUERY ? gr__orig.res_nquery : gr__orig.res_nsearch)(
            &j->state, j->name, j->class, j->type, (unsigned char *)j->buf, (int)j->buflen);
        j->err = errno;
        j->herr = j->state.res_h_errno;
        break;
    default:
        run_host(j, j->grow);
        break;
    }
    if (saved.set)
        conf_put(&saved, &_res);
    return j;
}

/* Run j on the pool and wait. 0 when it ran; else -1 with errno
 * (ETIMEDOUT, ECANCELED: the pool then frees j; others: j is freed here). */
static int job_run(job *j)
{
    int err;

    if (gr__glue_pool_run(run_job, j, job_discard, -1) == 0)
        return 0;
    err = errno;
    if (err != ETIMEDOUT && err != ECANCELED)
        job_free(j);
    errno = err;
    return -1;
}

static job *job_new(int kind, size_t buflen)
{
    job *j = calloc(1, sizeof *j);

    if (!j)
        return NULL;
    j->kind = kind;
    j->buflen = buflen;
    if (buflen && !(j->buf = malloc(buflen))) {
        free(j);
        return NULL;
    }
    return j;
}

static int set_string(char **dst, const char *src)
{
    return !src || (*dst = strdup(src)) != NULL;
}

/* ---------------------------------------------------------- getaddrinfo */

/* A numeric host, or none: glibc answers without any lookup. */
static int numeric_host(const char *name, const struct addrinfo *hints)
{
    unsigned char a[16];

    return !name || (hints && (hints->ai_flags & AI_NUMERICHOST)) ||
           inet_pton(AF_INET, name, a) == 1 || inet_pton(AF_INET6, name, a) == 1;
}

/* An EAI_* code for a pool that could not run the job. */
static int gai_pool_error(void)
{
    if (errno == EAGAIN)
        return EAI_AGAIN;
    return errno == ENOMEM ? EAI_MEMORY : EAI_SYSTEM;
}

int getaddrinfo(const char *restrict name, const char *restrict service,
                const struct addrinfo *restrict req, struct addrinfo **restrict pai)
{
    int err0 = errno, rc;
    job *j;

    ORIG_OR_RESOLVE(getaddrinfo, EAI_SYSTEM);
    if (!pai || numeric_host(name, req) || !gr__patch_coop(GR_PATCH_DNS))
        return gr__orig.getaddrinfo(name, service, req, pai);
    if (!(j = job_new(J_GAI, 0)) || !set_string(&j->name, name) ||
        !set_string(&j->service, service)) {
        if (j)
            job_free(j);
        return EAI_MEMORY;
    }
    if ((j->has_hints = req != NULL))
        j->hints = (struct addrinfo){.ai_flags = req->ai_flags,
                                     .ai_family = req->ai_family,
                                     .ai_socktype = req->ai_socktype,
                                     .ai_protocol = req->ai_protocol};
    conf_snapshot(&j->conf);
    if (job_run(j) != 0)
        return gai_pool_error();
    *pai = j->res;
    j->res = NULL;
    rc = j->rc;
    err0 = rc == EAI_SYSTEM ? j->err : err0;
    job_free(j);
    errno = err0;
    return rc;
}

void freeaddrinfo(struct addrinfo *ai)
{
    if (!gr__orig.freeaddrinfo && (!gr__patch_resolve() || !gr__orig.freeaddrinfo))
        return;
    gr__orig.freeaddrinfo(ai);
}

int getnameinfo(const struct sockaddr *restrict sa, socklen_t salen, char *restrict host,
                socklen_t hostlen, char *restrict serv, socklen_t servlen, int flags)
{
    int err0 = errno, rc;
    job *j;

    ORIG_OR_RESOLVE(getnameinfo, EAI_SYSTEM);
    if (!sa || salen > sizeof j->sa || (flags & NI_NUMERICHOST) || !host || !hostlen ||
        !gr__patch_coop(GR_PATCH_DNS))
        return gr__orig.getnameinfo(sa, salen, host, hostlen, serv, servlen, flags);
    if (!serv)
        servlen = 0;
    if (!(j = job_new(J_GNI, (size_t)hostlen + servlen)))
        return EAI_MEMORY;
    j->buflen = hostlen;
    j->servlen = servlen;
    memcpy(&j->sa, sa, salen);
    j->salen = salen;
    j->flags = flags;
    conf_snapshot(&j->conf);
    if (job_run(j) != 0)
        return gai_pool_error();
    rc = j->rc;
    if (rc == 0) {
        memcpy(host, j->buf, hostlen);
        if (servlen)
            memcpy(serv, j->buf + hostlen, servlen);
    }
    err0 = rc == EAI_SYSTEM ? j->err : err0;
    job_free(j);
    errno = err0;
    return rc;
}

/* ------------------------------------------------------- gethostbyname */

/* Copy a hostent whose data lies in [from, from + len) into dst, its data
 * into to (len bytes): the pointers are moved along with it. */
static char *moved(char *p, const char *from, size_t len, char *to)
{
    return p >= from && p < from + len ? to + (p - from) : p;
}

static void hostent_move(const struct hostent *src, const char *from, size_t len,
                         struct hostent *dst, char *to)
{
    memcpy(to, from, len);
    *dst = *src;
    dst->h_name = moved(src->h_name, from, len, to);
    dst->h_aliases = (char **)moved((char *)src->h_aliases, from, len, to);
    dst->h_addr_list = (char **)moved((char *)src->h_addr_list, from, len, to);
    for (char **a = dst->h_aliases; a && *a; a++)
        *a = moved(*a, from, len, to);
    for (char **a = dst->h_addr_list; a && *a; a++)
        *a = moved(*a, from, len, to);
}

/* The _r calls: the job gets a buffer of the caller's size, so ERANGE
 * comes exactly when glibc's would. */
static int host_r(job *j, struct hostent *result_buf, char *buf, size_t buflen,
                  struct hostent **result, int *h_errnop)
{
    int err0 = errno, rc;

    *result = NULL;
    conf_snapshot(&j->conf);
    if (job_run(j) != 0) {
        *h_errnop = NETDB_INTERNAL;
        return errno;
    }
    rc = j->rc;
    *h_errnop = j->herr;
    if (j->result) {
        hostent_move(&j->he, j->buf, buflen, result_buf, buf);
        *result = result_buf;
    }
    err0 = rc ? j->err : err0;
    job_free(j);
    errno = err0;
    return rc;
}

static job *host_job(int kind, const char *name, size_t buflen)
{
    job *j = job_new(kind, buflen);

    if (j && !set_string(&j->name, name)) {
        job_free(j);
        j = NULL;
    }
    return j;
}

int gethostbyname_r(const char *restrict name, struct hostent *restrict result_buf,
                    char *restrict buf, size_t buflen, struct hostent **restrict result,
                    int *restrict h_errnop)
{
    job *j;

    ORIG_OR_RESOLVE(gethostbyname_r, ENOSYS);
    if (!name || !gr__patch_coop(GR_PATCH_DNS))
        return gr__orig.gethostbyname_r(name, result_buf, buf, buflen, result, h_errnop);
    if (!(j = host_job(J_HOST, name, buflen)))
        return ENOMEM;
    return host_r(j, result_buf, buf, buflen, result, h_errnop);
}

int gethostbyname2_r(const char *restrict name, int af, struct hostent *restrict result_buf,
                     char *restrict buf, size_t buflen, struct hostent **restrict result,
                     int *restrict h_errnop)
{
    job *j;

    ORIG_OR_RESOLVE(gethostbyname2_r, ENOSYS);
    if (!name || !gr__patch_coop(GR_PATCH_DNS))
        return gr__orig.gethostbyname2_r(name, af, result_buf, buf, buflen, result, h_errnop);
    if (!(j = host_job(J_HOST2, name, buflen)))
        return ENOMEM;
    j->af = af;
    return host_r(j, result_buf, buf, buflen, result, h_errnop);
}

int gethostbyaddr_r(const void *restrict addr, __socklen_t len, int type,
                    struct hostent *restrict result_buf, char *restrict buf, size_t buflen,
                    struct hostent **restrict result, int *restrict h_errnop)
{
    job *j;

    ORIG_OR_RESOLVE(gethostbyaddr_r, ENOSYS);
    if (!addr || len > sizeof j->addr || !gr__patch_coop(GR_PATCH_DNS))
        return gr__orig.gethostbyaddr_r(addr, len, type, result_buf, buf, buflen, result, h_errnop);
    if (!(j = host_job(J_ADDR, NULL, buflen)))
        return ENOMEM;
    memcpy(j->addr, addr, len);
    j->addrlen = len;
    j->type = type;
    return host_r(j, result_buf, buf, buflen, result, h_errnop);
}

/* The non-reentrant calls keep their result per OS thread (glibc keeps one
 * per process), valid until the thread's next such call. */
static __thread struct {
    struct hostent he;
    char *buf;
    size_t cap;
} tls_host;

static struct hostent *host_static(job *j)
{
    int err0 = errno;

    j->grow = 1;
    conf_snapshot(&j->conf);
    if (job_run(j) != 0) {
        h_errno = NETDB_INTERNAL;
        return NULL;
    }
    h_errno = j->herr;
    if (!j->result) {
        err0 = j->rc ? j->rc : err0;
        job_free(j);
        errno = err0;
        return NULL;
    }
    if (tls_host.cap < j->buflen) {
        char *b = realloc(tls_host.buf, j->buflen);

        if (!b) {
            job_free(j);
            h_errno = NETDB_INTERNAL;
            errno = ENOMEM;
            return NULL;
        }
        tls_host.buf = b;
        tls_host.cap = j->buflen;
    }
    hostent_move(&j->he, j->buf, j->buflen, &tls_host.he, tls_host.buf);
    job_free(j);
    errno = err0;
    return &tls_host.he;
}

#define HOST_BUF 1024

struct hostent *gethostbyname(const char *name)
{
    job *j;

    ORIG_OR_RESOLVE(gethostbyname, NULL);
    if (!name || !gr__patch_coop(GR_PATCH_DNS))
        return gr__orig.gethostbyname(name);
    if (!(j = host_job(J_HOST, name, HOST_BUF))) {
        h_errno = NETDB_INTERNAL;
        return NULL;
    }
    return host_static(j);
}

struct hostent *gethostbyname2(const char *name, int af)
{
    job *j;

    ORIG_OR_RESOLVE(gethostbyname2, NULL);
    if (!name || !gr__patch_coop(GR_PATCH_DNS))
        return gr__orig.gethostbyname2(name, af);
    if (!(j = host_job(J_HOST2, name, HOST_BUF))) {
        h_errno = NETDB_INTERNAL;
        return NULL;
    }
    j->af = af;
    return host_static(j);
}

struct hostent *gethostbyaddr(const void *addr, __socklen_t len, int type)
{
    job *j;

    ORIG_OR_RESOLVE(gethostbyaddr, NULL);
    if (!addr || len > sizeof j->addr || !gr__patch_coop(GR_PATCH_DNS))
        return gr__orig.gethostbyaddr(addr, len, type);
    if (!(j = host_job(J_ADDR, NULL, HOST_BUF))) {
        h_errno = NETDB_INTERNAL;
        return NULL;
    }
    memcpy(j->addr, addr, len);
    j->addrlen = len;
    j->type = type;
    return host_static(j);
}

/* ------------------------------------------------------------ res_query */

static void set_h_errno(res_state statp, int herr)
{
    statp->res_h_errno = herr;
    h_errno = herr;
}

static int res_job(int kind, res_state statp, const char *dname, int class, int type,
                   unsigned char *answer, int anslen)
{
    int err0 = errno, rc;
    job *j = anslen >= 0 ? job_new(kind, (size_t)anslen) : NULL;

    if (!j || !set_string(&j->name, dname)) {
        if (j)
            job_free(j);
        set_h_errno(statp, NETDB_INTERNAL);
        errno = anslen < 0 ? EINVAL : ENOMEM;
        return -1;
    }
    /* A copy: the job may outlive a caller that gives up; the copy shares
     * glibc's reference-counted configuration, never frees it. */
    j->state = *statp;
    j->class = class;
    j->type = type;
    if (job_run(j) != 0) {
        set_h_errno(statp, NETDB_INTERNAL);
        return -1;
    }
    rc = j->rc;
    if (rc > 0)
        memcpy(answer, j->buf, (size_t)(rc < anslen ? rc : anslen));
    set_h_errno(statp, j->herr);
    err0 = rc < 0 ? j->err : err0;
    job_free(j);
    errno = err0;
    return rc;
}

/* res_query and res_search use the calling thread's _res, initialised as
 * glibc's own would on first use. */
static res_state caller_res(void)
{
    if (!(_res.options & RES_INIT) && res_init() != 0)
        return NULL;
    return &_res;
}

int res_query(const char *dname, int class, int type, unsigned char *answer, int anslen)
{
    res_state r;

    ORIG_OR_RESOLVE(res_query, (int)gr__patch_enosys());
    if (!dname || !answer || !gr__patch_coop(GR_PATCH_DNS) || !(r = caller_res()))
        return gr__orig.res_query(dname, class, type, answer, anslen);
    return res_job(J_QUERY, r, dname, class, type, answer, anslen);
}

int res_search(const char *dname, int class, int type, unsigned char *answer, int anslen)
{
    res_state r;

    ORIG_OR_RESOLVE(res_search, (int)gr__patch_enosys());
    if (!dname || !answer || !gr__patch_coop(GR_PATCH_DNS) || !(r = caller_res()))
        return gr__orig.res_search(dname, class, type, answer, anslen);
    return res_job(J_SEARCH, r, dname, class, type, answer, anslen);
}

int res_nquery(res_state statp, const char *dname, int class, int type, unsigned char *answer,
               int anslen)
{
    ORIG_OR_RESOLVE(res_nquery, (int)gr__patch_enosys());
    if (!statp || !dname || !answer || !(statp->options & RES_INIT) ||
        !gr__patch_coop(GR_PATCH_DNS))
        return gr__orig.res_nquery(statp, dname, class, type, answer, anslen);
    return res_job(J_QUERY, statp, dname, class, type, answer, anslen);
}

int res_nsearch(res_state statp, const char *dname, int class, int type, unsigned char *answer,
                int anslen)
{
    ORIG_OR_RESOLVE(res_nsearch, (int)gr__patch_enosys());
    if (!statp || !dname || !answer || !(statp->options & RES_INIT) ||
        !gr__patch_coop(GR_PATCH_DNS))
        return gr__orig.res_nsearch(statp, dname, class, type, answer, anslen);
    return res_job(J_SEARCH, statp, dname, class, type, answer, anslen);
}
