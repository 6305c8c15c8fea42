/* Internal helpers shared by the socket and server code. */
#ifndef GROVE_NET_H
#define GROVE_NET_H

#include "io/io.h"

/* accept4(2) without waiting: a non-blocking, close-on-exec fd, or -1 with
 * errno (EAGAIN when nothing is pending). Connections that died in the
 * queue are skipped, not reported. */
int gr__accept_now(int fd, gr_addr *peer);

/* gr_tcp_connect after resolution: Happy Eyeballs over the addresses of
 * res (which stays the caller's). Returns a connected fd with TCP_NODELAY
 * or -1 with errno. */
int gr__connect_addrs(struct addrinfo *res, int64_t deadline);

#endif
