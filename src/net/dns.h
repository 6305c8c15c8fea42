/* What the DNS files share: dns.c (the public calls and the addrinfo
 * chains every result is made of), dns_ares.c (c-ares on the hub) and
 * dns_thread.c (the system's resolver on the thread pool). */
#ifndef GROVE_DNS_H
#define GROVE_DNS_H

#include "core/core.h"

/* A result under construction: entries are appended at tail. Each entry is
 * one allocation (its address, and the canonical name for the first), so
 * gr_freeaddrinfo frees any result the same way. */
typedef struct gr__dns_chain {
    struct addrinfo *head, **tail;
} gr__dns_chain;

/* Append an entry. Returns 0 or EAI_MEMORY. */
int gr__dns_chain_add(gr__dns_chain *c, int family, int socktype, int protocol,
                      const struct sockaddr *sa, socklen_t len, const char *canon);

/* Copy a chain the system's getaddrinfo made into one gr_freeaddrinfo
 * frees, and free the original. Returns 0 or EAI_MEMORY. */
int gr__dns_adopt(struct addrinfo *sys, struct addrinfo **res);

/* The hints the system's getaddrinfo gets: only the fields it reads, and
 * glibc's default flags when hints is NULL. */
struct addrinfo gr__dns_hints(const struct addrinfo *hints);

/* gr_getaddrinfo and gr_getnameinfo for a real name (or a host name to
 * find), on the thread pool; arguments already checked. */
int gr__dns_thread_addrinfo(const char *node, const char *service, const struct addrinfo *hints,
                            struct addrinfo **res, int64_t deadline);
int gr__dns_thread_nameinfo(const struct sockaddr *sa, socklen_t salen, char *host, size_t hostlen,
                            char *serv, size_t servlen, int flags, int64_t deadline);

/* gr_getaddrinfo and gr_getnameinfo for a real name (or a host name to
 * find), with c-ares on h; arguments already checked. */
int gr__dns_ares_addrinfo(gr_hub *h, const char *node, const char *service,
                          const struct addrinfo *hints, struct addrinfo **res, int64_t deadline);
int gr__dns_ares_nameinfo(gr_hub *h, const struct sockaddr *sa, socklen_t salen, char *host,
                          size_t hostlen, char *serv, size_t servlen, int flags, int64_t deadline);

#endif
