/* Internal helpers shared by the socket and server code. */
#ifndef GROVE_NET_H
#define GROVE_NET_H

#include "io/io.h"

/* accept4(2) without waiting: a non-blocking, close-on-exec fd, or -1 with
 * errno (EAGAIN when nothing is pending). Connections that died in the
 * queue are skipped, not reported. */
int gr__accept_now(int fd, gr_addr *peer);

#endif
