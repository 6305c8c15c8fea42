/* Internal helpers shared by the socket and server code. */
#ifndef GROVE_NET_H
#define GROVE_NET_H

#include "io/io.h"

/* accept4(2) without waiting: a non-blocking, close-on-exec fd, or -1 with
 * errno (EAGAIN when nothing is pending). Connections that died in the
 * queue are skipped, not reported. */
int gr__accept_now(int fd, gr_addr *peer);

/* A stream server whose handler can give its connection back while the
 * connection is idle, so that an idle connection holds no green thread, no
 * stack and no buffer: the HTTP server's keep-alive connections. The
 * handler returns GR__CONN_PARK after it found nothing left to read (its
 * last read said EAGAIN, or an I/O call with deadline 0 timed out); the
 * server then watches fd (gr__fd_on_readable) and calls the handler again, with
 * resumed = 1, in a new green thread when fd becomes readable. A parked
 * connection still counts against the pool (opts->pool bounds connections,
 * idle ones included); it is closed after idle_ms (-1: never) without its
 * handler, and when the server stops: at once, or at the grace below. Any
 * other return closes fd as gr_server_new's handlers do. */
enum { GR__CONN_CLOSE, GR__CONN_PARK };
typedef int (*gr__parking_fn)(int fd, const gr_addr *peer, void *arg, int resumed);
gr_server *gr__server_new_parking(int fd, gr__parking_fn handler, void *arg,
                                  const gr_server_opts *opts, int64_t idle_ms);

/* A stop lets parked connections send one more request until `until`
 * (absolute ms; 0, the default: none): those that become readable by then
 * are served (the handler sees the server stopping), the rest are closed
 * then. Set before gr_server_stop. */
void gr__server_set_park_grace(gr_server *s, int64_t until);

#endif
