/* c-ares driven by the hub: the default resolver behind gr_getaddrinfo
 * and gr_getnameinfo (dns.c).
 *
 * One channel per hub, kept in thread-local state and created on the first
 * lookup; a hub-destruction hook destroys it. c-ares calls us back from
 * inside its own calls; nothing here blocks in those callbacks. A "driver"
 * green thread, spawned when a lookup is in flight and gone when none is
 * (so gr_main can finish), waits on c-ares' sockets with gr_poll() until
 * c-ares' next time-out, then lets c-ares process them. A new lookup may
 * add a socket or an earlier time-out, so it fires the driver's latch
 * (GR__WAKE_CHANGED), which ends its poll; it then polls the new set.
 *
 * Each lookup has a heap record: c-ares may call back long after the
 * caller gave up. A caller that times out or is killed marks the record
 * abandoned and returns; the callback then frees the record. When no
 * caller waits any more, every lookup is cancelled, so abandoned lookups
 * do not keep the driver (and gr_main) alive until c-ares gives up on
 * them. */
#define _GNU_SOURCE
#include "net/dns.h"

#include <ares.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* ------------------------------------------------------ status mapping */

static int eai_of(int status)
{
    switch (status) {
    case ARES_SUCCESS:
        return 0;
    case ARES_ENOTFOUND:
    case ARES_EBADNAME:
    case ARES_ENONAME:
        return EAI_NONAME;
    case ARES_ENODATA:
        return EAI_NODATA; /* the name exists, without an address of that family */
    case ARES_ETIMEOUT:
    case ARES_ESERVFAIL:
    case ARES_ECONNREFUSED:
    case ARES_EREFUSED:
    case ARES_EOF:
        return EAI_AGAIN;
    case ARES_ENOMEM:
        return EAI_MEMORY;
    case ARES_EBADFAMILY:
        return EAI_FAMILY;
    case ARES_EBADFLAGS:
    case ARES_EBADHINTS:
        return EAI_BADFLAGS;
    case ARES_ESERVICE:
        return EAI_SERVICE;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        errno = ECANCELED;
        return EAI_SYSTEM;
    default:
        return EAI_FAIL;
    }
}
/* ------------------------------------------------- thread-local state
 * One hub per OS thread, so one channel and one driver per OS thread. */

typedef struct chan {
    struct chan *next;
    ares_channel ch;
    size_t pending; /* lookups c-ares has not called back yet */
} chan;

typedef struct query {
    struct query *prev, *next;
    chan *c;
    gr__latch done;    /* fired by the c-ares callback */
    uint8_t abandoned; /* the caller gave up: the callback frees the record */
    int status;
    struct ares_addrinfo *ai;
    char *host, *serv;
} query;

static __thread struct {
    char *servers; /* gr_resolver_servers' list, or NULL */
    gr_hub *hub;   /* the hub our destruction hook is registered with */
    chan *cur;     /* where new lookups go */
    chan *retired; /* replaced channels with lookups still in flight */
    query *queries;
    size_t waiting; /* lookups whose caller still waits */
    gr_t driver;
    gr__latch kick; /* the driver's: fired when the set of sockets changes */
    struct pollfd *pfd;
    chan **owner;
    size_t cap;
} dns;

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;
static int lib_status;
static pthread_key_t servers_key;

/* A thread's server list is freed when the thread exits. */
static void init_lib(void)
{
    lib_status = ares_library_init(ARES_LIB_INIT_ALL);
    pthread_key_create(&servers_key, free);
}

/* ------------------------------------------------------------ sockets
 * c-ares' sockets go through these so that they are non-blocking, never
 * raise SIGPIPE, and are closed with gr_close(): the hub forgets an fd
 * before its number can be reused. */

static ares_socket_t sock_open(int domain, int type, int protocol, void *u)
{
    (void)u;
    return gr__socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
}

static int sock_close(ares_socket_t fd, void *u)
{
    (void)u;
    return gr_close(fd);
}

static int sock_connect(ares_socket_t fd, const struct sockaddr *sa, ares_socklen_t len, void *u)
{
    (void)u;
    return connect(fd, sa, len);
}

static ares_ssize_t sock_recvfrom(ares_socket_t fd, void *buf, size_t len, int flags,
                                  struct sockaddr *from, ares_socklen_t *fromlen, void *u)
{
    (void)u;
    return recvfrom(fd, buf, len, flags, from, fromlen);
}

static ares_ssize_t sock_sendv(ares_socket_t fd, const struct iovec *iov, int n, void *u)
{
    struct msghdr m = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};

    (void)u;
    return sendmsg(fd, &m, MSG_NOSIGNAL);
}

static const struct ares_socket_functions sock_funcs = {
    sock_open, sock_close, sock_connect, sock_recvfrom, sock_sendv,
};

/* ----------------------------------------------------------- channels */

static void chan_destroy(chan *c)
{
    ares_destroy(c->ch); /* calls back every lookup left with EDESTRUCTION */
    free(c);
}

/* Retired channels go once their last lookup has called back. Never
 * called from inside a c-ares callback. */
static void sweep(void)
{
    chan **p = &dns.retired;

    while (*p) {
        chan *c = *p;

        if (c->pending) {
            p = &c->next;
        } else {
            *p = c->next;
            chan_destroy(c);
        }
    }
}

/* Destroy every channel: c-ares calls back every lookup in flight with
 * ARES_EDESTRUCTION, and lookups nobody waits for are freed. */
static void drop_channels(void)
{
    chan *c;

    if ((c = dns.cur))
        c->next = dns.retired;
    else
        c = dns.retired;
    dns.cur = dns.retired = NULL;
    while (c) {
        chan *next = c->next;

        chan_destroy(c);
        c = next;
    }
    free(dns.pfd);
    free(dns.owner);
    dns.pfd = NULL;
    dns.owner = NULL;
    dns.cap = 0;
    dns.driver = 0;
    dns.kick = (gr__latch){0};
}

/* The hub is going: its green threads are gone or abandoned, so no
 * caller can take a result any more. */
static void hub_gone(void *arg)
{
    (void)arg;
    for (query *q = dns.queries; q; q = q->next)
        q->abandoned = 1;
    dns.waiting = 0;
    drop_channels();
    dns.hub = NULL;
}

/* A forked child: the channels' sockets are the parent's too, so they go,
 * and the next lookup makes a new channel. A lookup of a context the child
 * kept (the root) fails with ECANCELED; the others' callers are gone. */
static void hub_forked(void *arg)
{
    (void)arg;
    for (query *q = dns.queries; q; q = q->next) {
        if (!q->abandoned && !gr__handle_alive(q->done.waiter)) {
            q->abandoned = 1;
            dns.waiting--;
        }
    }
    drop_channels();
}

static int new_ares_channel(ares_channel *ch, const char *servers)
{
    int rc;

    pthread_once(&lib_once, init_lib);
    if (lib_status != ARES_SUCCESS)
        return lib_status;
    if ((rc = ares_init(ch)) != ARES_SUCCESS)
        return rc;
    if (servers && (rc = ares_set_servers_ports_csv(*ch, servers)) != ARES_SUCCESS) {
        ares_destroy(*ch);
        return rc;
    }
    ares_set_socket_functions(*ch, &sock_funcs, NULL);
    return ARES_SUCCESS;
}

/* The channel for new lookups on hub h. NULL with an EAI_* code. */
static chan *channel(gr_hub *h, int *eai)
{
    chan *c;
    int rc;

    if (dns.cur)
        return dns.cur;
    if (dns.hub != h) {
        if (gr__hub_on_destroy(h, hub_gone, NULL) != 0 ||
            gr__hub_on_fork(h, hub_forked, NULL) != 0) {
            *eai = EAI_MEMORY;
            return NULL;
        }
        dns.hub = h;
    }
    if (!(c = gr__calloc(1, sizeof *c))) {
        *eai = EAI_MEMORY;
        return NULL;
    }
    if ((rc = new_ares_channel(&c->ch, dns.servers)) != ARES_SUCCESS) {
        free(c);
        *eai = rc == ARES_ENOMEM ? EAI_MEMORY : EAI_FAIL;
        return NULL;
    }
    return dns.cur = c;
}

/* Later lookups get a fresh channel; this one stays while it has some. */
static void retire_current(void)
{
    chan *c = dns.cur;

    if (!c)
        return;
    dns.cur = NULL;
    if (!c->pending) {
        chan_destroy(c);
        return;
    }
    c->next = dns.retired;
    dns.retired = c;
}

int gr_resolver_servers(const char *csv)
{
    char *copy = NULL;

    if (csv) {
        ares_channel probe;
        int rc = new_ares_channel(&probe, csv);

        if (rc != ARES_SUCCESS) {
            errno = rc == ARES_ENOMEM ? ENOMEM : EINVAL;
            return -1;
        }
        ares_destroy(probe);
        if (!(copy = gr__strdup(csv))) {
            errno = ENOMEM;
            return -1;
        }
    }
    pthread_once(&lib_once, init_lib);
    free(dns.servers);
    dns.servers = copy;
    pthread_setspecific(servers_key, copy);
    retire_current();
    return 0;
}

/* ------------------------------------------------------------- driver */

static void each_channel(void (*fn)(chan *c))
{
    if (dns.cur)
        fn(dns.cur);
    for (chan *c = dns.retired; c; c = c->next)
        fn(c);
}

static void cancel_chan(chan *c)
{
    if (c->pending)
        ares_cancel(c->ch);
}

static void expire_chan(chan *c)
{
    if (c->pending)
        ares_process_fd(c->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
}

static int reserve_pollfds(size_t n)
{
    struct pollfd *p;
    chan **o;

    if (n <= dns.cap)
        return 0;
    if (!(p = gr__realloc(dns.pfd, n * sizeof *p)))
        return -1;
    dns.pfd = p;
    if (!(o = gr__realloc(dns.owner, n * sizeof *o)))
        return -1;
    dns.owner = o;
    dns.cap = n;
    return 0;
}

/* Add c's sockets to the poll set and lower *tv to its next time-out. */
static size_t gather_chan(chan *c, size_t n, struct timeval **tv, struct timeval *best)
{
    ares_socket_t s[ARES_GETSOCK_MAXNUM];
    struct timeval mine, *t;
    unsigned bits;

    if (!c->pending || reserve_pollfds(n + ARES_GETSOCK_MAXNUM) != 0)
        return n;
    /* Unsigned: c-ares' own macros shift 1 into the sign bit for socket 15. */
    bits = (unsigned)ares_getsock(c->ch, s, ARES_GETSOCK_MAXNUM);
    for (int i = 0; i < ARES_GETSOCK_MAXNUM; i++) {
        int rd = bits >> i & 1, wr = bits >> (i + ARES_GETSOCK_MAXNUM) & 1;

        if (!rd && !wr)
            continue;
        dns.pfd[n] = (struct pollfd){s[i], (short)((rd ? POLLIN : 0) | (wr ? POLLOUT : 0)), 0};
        dns.owner[n++] = c;
    }
    if ((t = ares_timeout(c->ch, *tv, &mine)) == &mine) {
        *best = mine;
        *tv = best;
    }
    return n;
}

/* The poll set of every channel, and the deadline of the earliest
 * time-out among them. */
static size_t gather(int64_t *deadline)
{
    struct timeval best, *tv = NULL;
    size_t n = 0;

    if (dns.cur)
        n = gather_chan(dns.cur, n, &tv, &best);
    for (chan *c = dns.retired; c; c = c->next)
        n = gather_chan(c, n, &tv, &best);
    *deadline = -1;
    if (tv)
        *deadline = gr_now_update() + tv->tv_sec * 1000 + (tv->tv_usec + 999) / 1000;
    else if (n == 0)
        *deadline = gr_now_update() + 100; /* no socket, no time-out: look again soon */
    return n;
}

static void process(size_t n)
{
    for (size_t i = 0; i < n; i++) {
        short r = dns.pfd[i].revents;
        ares_socket_t fd = dns.pfd[i].fd;

        if (!r)
            continue;
        ares_process_fd(dns.owner[i]->ch, r & (POLLIN | POLLERR | POLLHUP) ? fd : ARES_SOCKET_BAD,
                        r & (POLLOUT | POLLERR | POLLHUP) ? fd : ARES_SOCKET_BAD);
    }
    each_channel(expire_chan);
}

static void *driver(void *arg)
{
    gr_t self = gr_self();

    (void)arg;
    gr__latch_arm(&dns.kick, GR__WAKE_CHANGED);
    while (dns.queries) {
        int64_t deadline;
        size_t n;
        int rc;

        gr__latch_take(&dns.kick); /* the set gathered now is the new one */
        n = gather(&deadline);
        rc = gr_poll(dns.pfd, n, deadline);

        if (rc < 0 && errno == ECANCELED) {
            /* Killed (gr_main's deadlock handling): nobody will drive
             * c-ares on this hub, so every lookup ends now. */
            each_channel(cancel_chan);
            break;
        }
        if (rc < 0 && errno == ENOMEM)
            gr_sleep(gr_now() + 10);
        if (rc < 0) /* EINTR: the kick latch; EBADF: a socket went */
            n = 0;
        process(n);
        sweep();
    }
    gr__latch_disarm(&dns.kick);
    if (dns.driver == self)
        dns.driver = 0;
    sweep();
    return NULL;
}

/* Whether a driver is alive and will loop again. A driver killed before
 * it ever ran never will: it does not count. */
static int driver_live(void)
{
    return dns.driver && gr__will_run(dns.driver);
}

/* Make sure a driver runs and polls the current set of sockets. */
static int kick_driver(void)
{
    gr_opts o = {.name = "dns", .flags = GR_DETACHED};
    gr_t t;

    if (driver_live()) {
        gr__latch_fire(&dns.kick, GR__WAKE_CHANGED);
        return 0;
    }
    if ((t = gr_spawn_opts(driver, NULL, &o)) < 0)
        return -1;
    dns.driver = t;
    return 0;
}

/* ------------------------------------------------------------ lookups */

static query *query_new(chan *c)
{
    query *q = gr__calloc(1, sizeof *q);

    if (!q)
        return NULL;
    q->c = c;
    q->next = dns.queries;
    if (dns.queries)
        dns.queries->prev = q;
    dns.queries = q;
    c->pending++;
    dns.waiting++;
    return q;
}

/* Free a finished lookup's record and what its callback stored there,
 * keeping errno (an EAI_SYSTEM outcome's). */
static void query_free(query *q)
{
    int err = errno;

    if (q->ai)
        ares_freeaddrinfo(q->ai);
    free(q->host);
    free(q->serv);
    free(q);
    errno = err;
}

/* In a c-ares callback: the lookup is over. Returns 1 if its caller still
 * waits (and is now woken), 0 if the record is the callback's to free. */
static int query_finish(query *q, int status)
{
    if (q->prev)
        q->prev->next = q->next;
    else
        dns.queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->c->pending--;
    if (q->abandoned)
        return 0;
    q->status = status;
    dns.waiting--;
    gr__latch_fire(&q->done, GR__WAKE_DONE); /* nothing switches here */
    return 1;
}

/* The caller stops waiting. The last one to leave cancels the lookups
 * nobody wants any more, so they do not outlive their callers. */
static void query_give_up(query *q)
{
    q->abandoned = 1;
    if (--dns.waiting == 0) {
        each_channel(cancel_chan);
        sweep();
    }
    if (!dns.queries && driver_live()) {
        /* Let it see it has nothing left and leave now: a root context
         * may never run the hub again, and gr_main need not wait. */
        gr__latch_fire(&dns.kick, GR__WAKE_CHANGED);
        gr_yield();
    }
}

/* Wait for q's callback. 0 when it came (q->status holds the outcome);
 * EAI_SYSTEM (errno ETIMEDOUT, ECANCELED...) or EAI_MEMORY when the caller
 * gave up, and q is no longer the caller's. */
static int query_wait(query *q, int64_t deadline)
{
    if (!gr__latch_fired(&q->done) && kick_driver() != 0) {
        query_give_up(q);
        return EAI_MEMORY;
    }
    if (gr__latch_wait(&q->done, GR__WAKE_DONE, deadline, "dns") < 0) {
        int err = errno;

        query_give_up(q);
        errno = err;
        return EAI_SYSTEM;
    }
    return 0;
}

static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    query *q = arg;

    (void)timeouts;
    q->ai = ai;
    if (!query_finish(q, status))
        query_free(q);
}

/* The canonical name: follow the CNAME chain from the name asked. */
static const char *canonical(const struct ares_addrinfo *ai)
{
    const char *name = ai->name;

    for (int hops = 0; hops < 16; hops++) {
        const struct ares_addrinfo_cname *c = ai->cnames;

        while (c && !(c->alias && name && strcasecmp(c->alias, name) == 0))
            c = c->next;
        if (!c)
            break;
        name = c->name;
    }
    if (name == ai->name && ai->cnames && !ai->cnames->alias && ai->cnames->name)
        name = ai->cnames->name; /* /etc/hosts: the entry's own name */
    return name;
}

static socklen_t with_port(struct sockaddr_storage *ss, const struct ares_addrinfo_node *n,
                           in_port_t port)
{
    memcpy(ss, n->ai_addr, n->ai_addrlen);
    if (n->ai_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = port;
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = port;
    return (socklen_t)n->ai_addrlen;
}

/* Every address c-ares found, once per socket type and port that the
 * system's getaddrinfo gives the service (tpl). */
static int build(const struct ares_addrinfo *ai, const struct addrinfo *tpl, int want_canon,
                 struct addrinfo **res)
{
    const char *canon = want_canon ? canonical(ai) : NULL;
    gr__dns_chain c = {NULL, &c.head};
    int rc = 0;

    for (const struct ares_addrinfo_node *n = ai->nodes; n && !rc; n = n->ai_next) {
        if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
            n->ai_addrlen > sizeof(struct sockaddr_storage))
            continue;
        for (const struct addrinfo *t = tpl; t && !rc; t = t->ai_next) {
            struct sockaddr_storage ss;
            socklen_t len = with_port(&ss, n, ((struct sockaddr_in *)t->ai_addr)->sin_port);

            rc = gr__dns_chain_add(&c, n->ai_family, t->ai_socktype, t->ai_protocol,
                                   (struct sockaddr *)&ss, len, c.head ? NULL : canon);
        }
    }
    if (!rc && !c.head)
        rc = EAI_NODATA;
    if (rc) {
        gr_freeaddrinfo(c.head);
        return rc;
    }
    *res = c.head;
    return 0;
}

/* The socket types, protocols and port the service maps to, from the
 * system's getaddrinfo on a numeric host: its checks and errors
 * (EAI_SERVICE, EAI_SOCKTYPE...) come first, as they would in glibc. */
static int service_template(const char *service, const struct addrinfo *hints,
                            struct addrinfo **tpl)
{
    struct addrinfo h = gr__dns_hints(hints);

    h.ai_family = AF_INET;
    h.ai_flags = AI_PASSIVE | (h.ai_flags & AI_NUMERICSERV);
    return getaddrinfo(NULL, service ? service : "0", &h, tpl);
}

static int ares_flags_of(int flags)
{
    return (flags & AI_CANONNAME ? ARES_AI_CANONNAME : 0) |
           (flags & AI_V4MAPPED ? ARES_AI_V4MAPPED : 0) | (flags & AI_ALL ? ARES_AI_ALL : 0) |
           (flags & AI_ADDRCONFIG ? ARES_AI_ADDRCONFIG : 0);
}

int gr__dns_ares_addrinfo(gr_hub *h, const char *node, const char *service,
                          const struct addrinfo *hints, struct addrinfo **res, int64_t deadline)
{
    struct addrinfo hc = gr__dns_hints(hints), *tpl;
    struct ares_addrinfo_hints ah = {.ai_flags = ares_flags_of(hc.ai_flags),
                                     .ai_family = hc.ai_family};
    int rc, err;
    chan *c;
    query *q;

    if ((rc = service_template(service, hints, &tpl)) != 0)
        return rc;
    if (!(c = channel(h, &rc)) || !(q = query_new(c))) {
        freeaddrinfo(tpl);
        return c ? EAI_MEMORY : rc;
    }
    ares_getaddrinfo(c->ch, node, NULL, &ah, on_addrinfo, q);
    if ((rc = query_wait(q, deadline)) == 0) {
        if ((rc = eai_of(q->status)) == 0)
            rc = build(q->ai, tpl, hc.ai_flags & AI_CANONNAME, res);
        query_free(q);
    }
    err = errno; /* EAI_SYSTEM's, which freeaddrinfo need not keep */
    freeaddrinfo(tpl);
    errno = err;
    return rc;
}

static void on_nameinfo(void *arg, int status, int timeouts, char *node, char *service)
{
    query *q = arg;

    (void)timeouts;
    if (!query_finish(q, status)) {
        query_free(q);
        return;
    }
    /* c-ares' strings live only during this call. */
    if ((node && !(q->host = gr__strdup(node))) || (service && !(q->serv = gr__strdup(service))))
        q->status = ARES_ENOMEM;
}

static int copy_name(char *dst, size_t len, const char *src)
{
    if (!dst || !len)
        return 0;
    if (!src)
        return EAI_NONAME;
    if (strlen(src) >= len)
        return EAI_OVERFLOW;
    strcpy(dst, src);
    return 0;
}

static int ares_ni_flags_of(int flags, int want_serv)
{
    return (flags & NI_NOFQDN ? ARES_NI_NOFQDN : 0) | (flags & NI_NAMEREQD ? ARES_NI_NAMEREQD : 0) |
           (flags & NI_NUMERICSERV ? ARES_NI_NUMERICSERV : 0) |
           (flags & NI_DGRAM ? ARES_NI_DGRAM : 0) | ARES_NI_LOOKUPHOST |
           (want_serv ? ARES_NI_LOOKUPSERVICE : 0);
}

int gr__dns_ares_nameinfo(gr_hub *h, const struct sockaddr *sa, socklen_t salen, char *host,
                          size_t hostlen, char *serv, size_t servlen, int flags, int64_t deadline)
{
    int af = ares_ni_flags_of(flags, serv && servlen);
    int rc;
    chan *c;
    query *q;

    if (!(c = channel(h, &rc)))
        return rc;
    if (!(q = query_new(c)))
        return EAI_MEMORY;
    ares_getnameinfo(c->ch, sa, salen, af, on_nameinfo, q);
    if ((rc = query_wait(q, deadline)) != 0)
        return rc;
    if ((rc = eai_of(q->status)) == 0 && (rc = copy_name(host, hostlen, q->host)) == 0)
        rc = copy_name(serv, servlen, q->serv);
    query_free(q);
    return rc;
}
