/* A line-based chat server. A client's first line is its name; each later
 * line goes to every other client as "name: line". Every client has its
 * own outgoing queue and a writer green thread, so a slow reader delays
 * nobody but itself; one whose queue overflows is disconnected. SIGINT or
 * SIGTERM end every session and stop the server.
 *
 *   chat-server --port P [--host H]
 *
 * Prints "listening on H:P" (with the real port when P is 0). */
/* example-run: tests/examples/chat-server.sh */
#include <errno.h>
#include <grove.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024
#define QUEUE_MAX 256 /* messages waiting for one client before it is dropped */
#define STOP_GRACE_MS 2000

/* A message, shared by the queues of all its recipients. */
typedef struct msg {
    int refs;
    size_t len;
    char text[];
} msg;

typedef struct client {
    struct client *prev, *next;
    int fd;
    char name[64];
    gr_queue *out;
    gr_t writer;
} client;

static client *room; /* everyone who has joined */
static size_t room_size;

static msg *msg_new(const char *fmt, ...)
{
    char text[LINE_MAX_BYTES + 128];
    va_list ap;
    msg *m;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0 || !(m = malloc(sizeof *m + (size_t)n)))
        return NULL;
    m->refs = 1;
    m->len = (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
    memcpy(m->text, text, m->len);
    return m;
}

static void msg_unref(msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

/* Queue m for c; a client too slow to take it (its queue is full) is
 * disconnected: its reader sees EOF and it leaves. */
static void send_to(client *c, msg *m)
{
    m->refs++;
    if (gr_queue_put(c->out, m, 0) != 0) {
        m->refs--;
        if (errno == ETIMEDOUT)
            shutdown(c->fd, SHUT_RDWR);
    }
}

/* Send m to everyone but from, and drop the caller's reference. */
static void broadcast(const client *from, msg *m)
{
    if (!m)
        return;
    for (client *c = room; c; c = c->next)
        if (c != from)
            send_to(c, m);
    msg_unref(m);
}

static void *writer_main(void *arg)
{
    client *c = arg;
    void *item;

    while (gr_queue_get(c->out, &item, -1) == 0) {
        msg *m = item;
        int rc = gr_write_all(c->fd, m->text, m->len, NULL, -1);

        msg_unref(m);
        if (rc != 0) {
            shutdown(c->fd, SHUT_RDWR); /* the reader ends the session */
            break;
        }
    }
    return NULL; /* killed, or the client is gone */
}

static void join_room(client *c)
{
    msg *hello = msg_new("* welcome %s, %zu other(s) here\n", c->name, room_size);

    if (hello) {
        send_to(c, hello);
        msg_unref(hello);
    }
    broadcast(c, msg_new("* %s joined\n", c->name));
    c->prev = NULL;
    c->next = room;
    if (room)
        room->prev = c;
    room = c;
    room_size++;
}

static void leave_room(client *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        room = c->next;
    if (c->next)
        c->next->prev = c->prev;
    room_size--;
    broadcast(c, msg_new("* %s left\n", c->name));
}

/* Stop the writer, even when the session was killed (then gr_join fails
 * until the writer is done: yield until it is), and free what it left
 * (a killed session cannot: gr_queue_get fails, and the messages left are
 * lost; the signal watcher ends sessions before stopping, so none is). */
static void writer_stop(client *c)
{
    void *item;

    gr_kill(c->writer);
    while (gr_join(c->writer, NULL, 0) != 0 && errno != ESRCH)
        gr_yield();
    while (gr_queue_get(c->out, &item, 0) == 0)
        msg_unref(item);
    gr_queue_free(c->out);
}

static void chomp(char *line)
{
    size_t n = strlen(line);

    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
}

static void session(int fd, const gr_addr *peer, void *arg)
{
    char buf[4096], line[LINE_MAX_BYTES];
    client c = {.fd = fd};
    gr_reader r;

    (void)peer;
    (void)arg;
    gr_reader_init(&r, fd, buf, sizeof buf);
    if (gr_reader_line(&r, line, sizeof line, -1) <= 0)
        return;
    chomp(line);
    snprintf(c.name, sizeof c.name, "%s", line[0] ? line : "anonymous");
    if (!(c.out = gr_queue_new(GR_QUEUE_FIFO, QUEUE_MAX, NULL)))
        return;
    if ((c.writer = gr_spawn(writer_main, &c)) < 0) {
        gr_queue_free(c.out);
        return;
    }
    join_room(&c);
    while (gr_reader_line(&r, line, sizeof line, -1) > 0) {
        chomp(line);
        broadcast(&c, msg_new("%s: %s\n", c.name, line));
    }
    leave_room(&c);
    writer_stop(&c);
}

/* ------------------------------------------------------------- main */

static int stop_fd = -1;

static void *watch_signals(void *arg)
{
    struct signalfd_siginfo si;

    if (gr_read(stop_fd, &si, sizeof si, -1) != (ssize_t)sizeof si)
        return NULL;
    /* End every session: their readers see EOF and leave normally. */
    for (client *c = room; c; c = c->next)
        shutdown(c->fd, SHUT_RD);
    gr_server_stop(arg, gr_now() + STOP_GRACE_MS);
    return NULL;
}

static void *run(void *arg)
{
    char **argv = arg, name[128];
    const char *host = argv[1];
    gr_server_opts so = {.name = "chat"};
    gr_server *server;
    gr_addr local;
    gr_t watcher;
    int fd;

    if ((fd = gr_tcp_listen(host, atoi(argv[0]), 0)) < 0) {
        fprintf(stderr, "chat-server: listen: %s\n", strerror(errno));
        return (void *)1;
    }
    if (!(server = gr_server_new(fd, session, NULL, &so))) {
        fprintf(stderr, "chat-server: %s\n", strerror(errno));
        return (void *)1;
    }
    watcher = gr_spawn(watch_signals, server);
    local.len = sizeof local.u;
    getsockname(fd, &local.u.sa, &local.len);
    gr_addr_format(&local, name, sizeof name);
    printf("listening on %s\n", name);
    fflush(stdout);
    if (gr_server_serve(server) != 0)
        gr_kill(watcher);
    gr_join(watcher, NULL, -1);
    gr_server_stop(server, gr_now() + STOP_GRACE_MS);
    gr_server_free(server);
    return NULL;
}

int main(int argc, char **argv)
{
    char *args[2] = {NULL, NULL}; /* port, host */
    sigset_t stop;
    void *result = NULL;

    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            args[0] = argv[i + 1];
        else if (!strcmp(argv[i], "--host"))
            args[1] = argv[i + 1];
    }
    if (!args[0] || argc % 2 == 0) {
        fprintf(stderr, "usage: chat-server --port P [--host H]\n");
        return 2;
    }
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    if ((stop_fd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
        gr_main(run, args, &result) != 0) {
        perror("chat-server");
        return 1;
    }
    close(stop_fd);
    return result ? 1 : 0;
}
