/* Socket addresses: numeric parsing and formatting, no name resolution. */
#define _GNU_SOURCE
#include "core/core.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "fe80::1%eth0" or "fe80::1%2": the scope after '%', or 0 for none. */
static int parse_scope(const char *s, uint32_t *scope)
{
    char *end;
    unsigned long v;

    *scope = 0;
    if (!s)
        return 0;
    if (!*s)
        return -1;
    v = strtoul(s, &end, 10);
    if (*end == '\0' && v <= UINT32_MAX) {
        *scope = (uint32_t)v;
        return 0;
    }
    return (*scope = if_nametoindex(s)) ? 0 : -1;
}

static int parse_ip6(gr_addr *a, const char *host, uint16_t port)
{
    char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
    size_t n = strlen(host);
    char *pct;
    uint32_t scope;

    if (host[0] == '[') { /* "[::1]" */
        if (n < 3 || host[n - 1] != ']')
            return -1;
        host++;
        n -= 2;
    }
    if (n >= sizeof buf)
        return -1;
    memcpy(buf, host, n);
    buf[n] = '\0';
    if ((pct = strchr(buf, '%')))
        *pct++ = '\0';
    if (inet_pton(AF_INET6, buf, &a->u.in6.sin6_addr) != 1 || parse_scope(pct, &scope) != 0)
        return -1;
    a->u.in6.sin6_family = AF_INET6;
    a->u.in6.sin6_port = htons(port);
    a->u.in6.sin6_scope_id = scope;
    a->len = sizeof a->u.in6;
    return 0;
}

int gr_addr_ip(gr_addr *a, const char *host, int port)
{
    if (!a || port < 0 || port > 65535) {
        errno = EINVAL;
        return -1;
    }
    memset(a, 0, sizeof *a);
    if (!host || !*host) {
        a->u.in6.sin6_family = AF_INET6;
        a->u.in6.sin6_addr = in6addr_any;
        a->u.in6.sin6_port = htons((uint16_t)port);
        a->len = sizeof a->u.in6;
        return 0;
    }
    if (inet_pton(AF_INET, host, &a->u.in4.sin_addr) == 1) {
        a->u.in4.sin_family = AF_INET;
        a->u.in4.sin_port = htons((uint16_t)port);
        a->len = sizeof a->u.in4;
        return 0;
    }
    if (parse_ip6(a, host, (uint16_t)port) == 0)
        return 0;
    memset(a, 0, sizeof *a);
    errno = EINVAL;
    return -1;
}

int gr_addr_unix(gr_addr *a, const char *path)
{
    size_t n;

    if (!a || !path || !*path) {
        errno = EINVAL;
        return -1;
    }
    n = strlen(path);
    /* A path needs its NUL; an abstract name trades '@' for the leading NUL. */
    if (n >= sizeof a->u.un.sun_path + (path[0] == '@')) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memset(a, 0, sizeof *a);
    a->u.un.sun_family = AF_UNIX;
    memcpy(a->u.un.sun_path, path, n);
    if (path[0] == '@') {
        a->u.un.sun_path[0] = '\0';
        a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

/* A path up to its NUL; an abstract name as '@' and its bytes; an unnamed
 * socket (as accept reports a Unix peer) as "". */
static int format_unix(const gr_addr *a, char *buf, size_t len)
{
    size_t off = offsetof(struct sockaddr_un, sun_path);
    size_t n = a->len > off ? a->len - off : 0;
    const char *p = a->u.un.sun_path;
    int abstract = n > 0 && p[0] == '\0';

    if (n > sizeof a->u.un.sun_path)
        n = sizeof a->u.un.sun_path;
    if (abstract) {
        p++;
        n--;
    } else {
        n = strnlen(p, n);
    }
    if ((size_t)abstract + n + 1 > len) {
        errno = ENOSPC;
        return -1;
    }
    if (abstract)
        *buf++ = '@';
    memcpy(buf, p, n);
    buf[n] = '\0';
    return abstract + (int)n;
}

int gr_addr_format(const gr_addr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    int n;

    if (!a || !buf) {
        errno = EINVAL;
        return -1;
    }
    switch (a->u.sa.sa_family) {
    case AF_INET:
        inet_ntop(AF_INET, &a->u.in4.sin_addr, ip, sizeof ip);
        n = snprintf(buf, len, "%s:%u", ip, ntohs(a->u.in4.sin_port));
        break;
    case AF_INET6:
        inet_ntop(AF_INET6, &a->u.in6.sin6_addr, ip, sizeof ip);
        if (a->u.in6.sin6_scope_id)
            n = snprintf(buf, len, "[%s%%%u]:%u", ip, a->u.in6.sin6_scope_id,
                         ntohs(a->u.in6.sin6_port));
        else
            n = snprintf(buf, len, "[%s]:%u", ip, ntohs(a->u.in6.sin6_port));
        break;
    case AF_UNIX:
        return format_unix(a, buf, len);
    default:
        errno = EAFNOSUPPORT;
        return -1;
    }
    if (n < 0 || (size_t)n >= len) {
        if (len)
            buf[0] = '\0';
        errno = ENOSPC;
        return -1;
    }
    return n;
}
