/* Plain POSIX code under libgrove-patch: a blocking-style echo server
 * written with socket, bind, listen, accept, read and write only, one
 * green thread per connection, on one OS thread, serves 1,000 concurrent
 * clients (a child process, grove's own calls) with every byte returned. */
#include "patch_common.h"

#define NCLIENTS 1000
#define PER_CLIENT 16384

static int port;

static int listener;

/* ------------------------------------------------------ the clients */

static gr_event all_connected;
static int connected, failures;

static unsigned char pattern(int client, size_t i)
{
    return (unsigned char)(client * 131 + i * 7 + (i >> 9));
}

static void *client(void *arg)
{
    int id = (int)(intptr_t)arg, fd;
    unsigned char out[PER_CLIENT], in[PER_CLIENT];
    int64_t deadline = gr_now_update() + 60000;

    for (size_t i = 0; i < PER_CLIENT; i++)
        out[i] = pattern(id, i);
    if ((fd = gr_tcp_connect("127.0.0.1", port, deadline)) < 0) {
        failures++;
        return NULL;
    }
    if (++connected == NCLIENTS)
        gr_event_set(&all_connected);
    /* Everyone connected first: the server holds 1,000 at once. */
    gr_event_wait(&all_connected, deadline);
    for (size_t off = 0; off < PER_CLIENT;) { /* in pieces of varied sizes */
        size_t n = 1 + (size_t)(id + off) % 1500;

        if (n > PER_CLIENT - off)
            n = PER_CLIENT - off;
        if (gr_write_all(fd, out + off, n, NULL, deadline) != 0) {
            failures++;
            gr_close(fd);
            return NULL;
        }
        off += n;
    }
    if (gr_read_exact(fd, in, PER_CLIENT, NULL, deadline) != 0 || memcmp(in, out, PER_CLIENT))
        failures++;
    gr_close(fd);
    return NULL;
}

static void *clients(void *arg)
{
    gr_opts o = {.stack_size = 64 * 1024};
    gr_t g[NCLIENTS];

    (void)arg;
    gr_event_init(&all_connected);
    for (int i = 0; i < NCLIENTS; i++)
        g[i] = gr_spawn_opts(client, (void *)(intptr_t)i, &o);
    for (int i = 0; i < NCLIENTS; i++)
        gr_join(g[i], NULL, -1);
    return NULL;
}

static int report[2];

static void clients_child(void *arg)
{
    char verdict;

    (void)arg;
    close(report[0]);
    close(listener);
    raise_fd_limit(4096);
    gr_main(clients, NULL, NULL);
    verdict = failures == 0 && connected == NCLIENTS ? 'y' : 'n';
    if (write(report[1], &verdict, 1) != 1)
        _exit(2);
}

/* -------------------------------------------------- the server (POSIX) */
static int active, most_active;

static void *echo(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;

    if (++active > most_active)
        most_active = active;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (write(fd, buf, (size_t)n) != n)
            break;
    close(fd);
    active--;
    return NULL;
}

static void *acceptor(void *arg)
{
    int c;

    (void)arg;
    while ((c = accept(listener, NULL, NULL)) >= 0)
        gr_detach(gr_spawn(echo, (void *)(intptr_t)c));
    cr_assert_eq(errno, EBADF, "accept: %s", strerror(errno));
    return NULL;
}

static void *server(void *arg)
{
    heartbeat hb;
    char verdict = 0;
    gr_t a;

    (void)arg;
    hb_start(&hb);
    a = gr_spawn(acceptor, NULL);
    cr_assert_eq(read(report[0], &verdict, 1), 1);
    close(listener); /* wakes the acceptor with EBADF */
    gr_join(a, NULL, -1);
    while (active)
        gr_sleep(gr_now_update() + 5);
    hb_check(&hb);
    cr_assert_eq(verdict, 'y', "a client lost bytes or could not connect");
    cr_assert_eq(most_active, NCLIENTS, "only %d connections at once", most_active);
    return NULL;
}

Test(patch_echo, a_blocking_posix_echo_server_serves_1000_clients, .timeout = 120)
{
    pid_t pid;

    require_patch();
    raise_fd_limit(4096);
    listener = posix_listen(&port);
    cr_assert_eq(pipe(report), 0);
    pid = fork_child(clients_child, NULL);
    close(report[1]);
    run_main(server, NULL);
    kill_child(pid);
}
