/* The debug console (gevent's backdoor): a line-oriented text console on a
 * Unix-domain socket, served by green threads of the hub that started it.
 *
 * No one but the program's user may reach it: the socket is never TCP; it
 * is given mode 0600 before bind creates its file (on Linux a socket's
 * mode is the one its file is created with) and again after, before it
 * listens; abstract names, which have no permissions, are refused; and a
 * client whose SO_PEERCRED user is neither ours nor root is turned away. */
#define _GNU_SOURCE
#include "net/net.h"

#include "grove/debug.h"

#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LINE_MAX_BYTES 512
#define WRITE_MS 5000
#define BT_FRAMES 64

struct gr_console {
    gr_server *srv;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

static const char help_text[] =
    "commands:\n"
    "  threads        every green thread of every hub (the run-info dump)\n"
    "  stats          this hub's counters\n"
    "  bt HANDLE      where a green thread of this hub stands\n"
    "  kill HANDLE    kill a green thread of this hub\n"
    "  help           this text\n"
    "  quit           end the session\n";

/* ------------------------------------------------------------- output */

static int say(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int say(int fd, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    return gr_write_all(fd, buf, (size_t)n, NULL, gr_now_update() + WRITE_MS);
}

/* ------------------------------------------------------------ commands */

static int parse_handle(const char *s, gr_t *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v <= 0)
        return -1;
    *out = (gr_t)v;
    return 0;
}

static int cmd_stats(int fd)
{
    gr_stats st;

    gr_stats_get(&st);
    return say(fd,
               "threads %zu\nfinished %zu\nready %zu\ntimers %zu\nfd_waiters %zu\n"
               "stacks_mapped %zu\nstacks_guarded %zu\nstacks_free %zu\nswitches %zu\n"
               "blocking_reports %zu\n",
               st.threads, st.finished, st.ready, st.timers, st.fd_waiters, st.stacks_mapped,
               st.stacks_guarded, st.stacks_free, st.switches, st.blocking_reports);
}

static int cmd_bt(int fd, const char *arg)
{
    void *frames[BT_FRAMES];
    gr_thread_info info;
    char **names;
    gr_t t;
    int n, rc = 0;

    if (parse_handle(arg, &t) != 0)
        return say(fd, "usage: bt HANDLE (a number from threads)\n");
    if (gr_thread_info_get(t, &info) != 0 || (n = gr__thread_backtrace(t, frames, BT_FRAMES)) < 0)
        return say(fd, "no thread %lld on this hub\n", (long long)t);
    if (n == 0)
        return say(fd, "%s: %s: no stack to show\n", info.name,
                   info.state == GR_THREAD_FINISHED ? "finished" : "not started");
    rc = say(fd, "%s (handle %lld):\n", info.name, (long long)t);
    names = backtrace_symbols(frames, n);
    for (int i = 0; i < n && rc == 0; i++)
        rc = names ? say(fd, "  #%d %s\n", i, names[i]) : say(fd, "  #%d %p\n", i, frames[i]);
    free(names);
    return rc;
}

static int cmd_kill(int fd, const char *arg)
{
    gr_t t;

    if (parse_handle(arg, &t) != 0)
        return say(fd, "usage: kill HANDLE (a number from threads)\n");
    if (gr_kill(t) != 0)
        return say(fd, "kill %lld: %s\n", (long long)t,
                   errno == ESRCH ? "no such thread on this hub" : "not a green thread");
    return say(fd, "killed %lld\n", (long long)t);
}

/* Returns 1 to end the session, 0 to go on, -1 when the client is gone. */
static int run_command(int fd, char *line)
{
    char *cmd = strtok(line, " \t\r\n"), *arg = strtok(NULL, " \t\r\n");

    if (!cmd)
        return 0;
    if (!strcmp(cmd, "quit") || !strcmp(cmd, "exit"))
        return 1;
    if (!strcmp(cmd, "help"))
        return say(fd, "%s", help_text);
    if (!strcmp(cmd, "threads"))
        return gr_dump_fd(fd, gr_now_update() + WRITE_MS);
    if (!strcmp(cmd, "stats"))
        return cmd_stats(fd);
    if (!strcmp(cmd, "bt"))
        return cmd_bt(fd, arg ? arg : "");
    if (!strcmp(cmd, "kill"))
        return cmd_kill(fd, arg ? arg : "");
    return say(fd, "unknown command %.40s (help lists them)\n", cmd);
}

/* ------------------------------------------------------------ sessions */

static int peer_allowed(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof cr;

    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
           (cr.uid == geteuid() || cr.uid == 0);
}

static void session(int fd, const gr_addr *peer, void *arg)
{
    char buf[2048], line[LINE_MAX_BYTES];
    gr_reader r;
    int rc = 0;

    (void)peer;
    (void)arg;
    if (!peer_allowed(fd)) {
        say(fd, "refused: not the program's user\n");
        return;
    }
    gr_reader_init(&r, fd, buf, sizeof buf);
    if (say(fd, "grove debug console (help for commands)\n> ") != 0)
        return;
    while (rc == 0) {
        ssize_t n = gr_reader_line(&r, line, sizeof line, -1);

        if (n <= 0) {
            if (n < 0 && errno == EMSGSIZE) {
                say(fd, "line too long\n");
            }
            break;
        }
        if ((rc = run_command(fd, line)) == 0)
            rc = say(fd, "> ");
    }
}

/* ------------------------------------------------------------ lifetime */

/* A socket at path, mode 0600 from its creation on, listening. */
static int listen_private(const char *path)
{
    gr_addr a;
    int fd;

    if (gr_addr_unix(&a, path) != 0)
        return -1;
    if ((fd = gr_socket(AF_UNIX, SOCK_STREAM, 0)) < 0)
        return -1;
    if (fchmod(fd, 0600) != 0 || bind(fd, &a.u.sa, a.len) != 0) {
        int err = errno;

        gr_close(fd);
        errno = err;
        return -1;
    }
    /* Not listening yet: nobody could connect before this. */
    if (chmod(path, 0600) != 0 || listen(fd, 16) != 0) {
        int err = errno;

        unlink(path);
        gr_close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

gr_console *gr_console_start(const char *path)
{
    gr_server_opts o = {.name = "console"};
    gr_console *c;
    int fd, err;

    if (!path || !*path || path[0] == '@') {
        errno = EINVAL;
        return NULL;
    }
    if (strlen(path) >= sizeof c->path) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    if (!gr_hub_current())
        return NULL;
    if (!(c = gr__calloc(1, sizeof *c))) {
        errno = ENOMEM;
        return NULL;
    }
    strcpy(c->path, path);
    if ((fd = listen_private(path)) < 0) {
        err = errno;
        free(c);
        errno = err;
        return NULL;
    }
    if (!(c->srv = gr_server_new(fd, session, c, &o)) || gr_server_start(c->srv) != 0) {
        err = errno;
        gr_server_free(c->srv);
        unlink(path);
        free(c);
        errno = err;
        return NULL;
    }
    return c;
}

int gr_console_stop(gr_console *c)
{
    int rc, err, shielded;

    if (!c) {
        errno = EINVAL;
        return -1;
    }
    /* Sessions are ended at once, and waited for even in a killed caller:
     * they must be gone before the server is freed. */
    shielded = gr_shield_begin() == 0;
    rc = gr_server_stop(c->srv, 0);
    err = errno;
    if (shielded)
        gr_shield_end();
    if (rc != 0 && err == EDEADLK) {
        errno = EDEADLK;
        return -1;
    }
    if (gr_server_free(c->srv) != 0)
        return -1;
    unlink(c->path);
    free(c);
    return 0;
}
