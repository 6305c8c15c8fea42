/* The debug console, driven by a plain socket client on another OS thread
 * (blocking calls, as a user's socat or nc would make). */
#include "common.h"

#include <grove/debug.h>

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char sock_path[108];

static void make_path(void)
{
    snprintf(sock_path, sizeof sock_path, "/tmp/grove-console-test-%d.sock", (int)getpid());
    unlink(sock_path);
}

/* ------------------------------------------------------- a plain client */

static int client_connect(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    strcpy(a.sun_path, sock_path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int err = errno;

        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* Read until the text ends with the prompt (or the peer closes): returns
 * what came, the prompt included; "" on close. Bounded: 5 s. */
static char *until_prompt(int fd)
{
    static char buf[65536];
    size_t len = 0;

    buf[0] = '\0';
    while (len < 2 || strcmp(buf + len - 2, "> ") != 0) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        cr_assert_eq(poll(&p, 1, 5000), 1, "no answer from the console; so far: %s", buf);
        n = read(fd, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
    }
    return buf;
}

static char *ask(int fd, const char *line)
{
    cr_assert_eq(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    return until_prompt(fd);
}

/* ------------------------------------------------------------ session */

static gr_t victim;
static atomic_int client_done;

__attribute__((noinline)) void *victim_main(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)gr_sleep(-1);
}

static void *client(void *arg)
{
    char cmd[64], *out;
    int fd, fd2;

    (void)arg;
    cr_assert_geq(fd = client_connect(), 0, "connect: %s", strerror(errno));
    out = until_prompt(fd);
    cr_assert_str_eq(out, "grove debug console (help for commands)\n> ");
    out = ask(fd, "help\n");
    cr_assert_not_null(strstr(out, "commands:\n  threads"), "%s", out);
    out = ask(fd, "stats\n");
    cr_assert_not_null(strstr(out, "threads "), "%s", out);
    cr_assert_not_null(strstr(out, "\nswitches "), "%s", out);
    out = ask(fd, "threads\n");
    cr_assert_not_null(strstr(out, "grove run info: 1 hub(s)"), "%s", out);
    cr_assert_not_null(strstr(out, "  victim (handle "), "%s", out);
    cr_assert_not_null(strstr(out, "  console (handle "), "%s", out);
    snprintf(cmd, sizeof cmd, "bt %lld\n", (long long)victim);
    out = ask(fd, cmd);
    cr_assert_not_null(strstr(out, "victim (handle "), "%s", out);
    cr_assert_not_null(strstr(out, "\n  #0 "), "%s", out);
#if defined(GROVE_TEST_SANITIZED)
    /* Built with frame pointers: the walk reaches the thread's function. */
    cr_assert_not_null(strstr(out, "victim_main"), "%s", out);
#endif
    out = ask(fd, "bt\n");
    cr_assert_not_null(strstr(out, "usage: bt HANDLE"), "%s", out);
    out = ask(fd, "bt 12345\n");
    cr_assert_not_null(strstr(out, "no thread 12345 on this hub"), "%s", out);
    out = ask(fd, "kill 12345\n");
    cr_assert_not_null(strstr(out, "no such thread"), "%s", out);
    out = ask(fd, "frobnicate\n");
    cr_assert_not_null(strstr(out, "unknown command frobnicate"), "%s", out);
    out = ask(fd, "\n");
    cr_assert_str_eq(out, "> ");
    snprintf(cmd, sizeof cmd, "kill %lld\n", (long long)victim);
    out = ask(fd, cmd);
    cr_assert_not_null(strstr(out, "killed "), "%s", out);
    /* A second session at once; then quit ends the first. */
    cr_assert_geq(fd2 = client_connect(), 0);
    cr_assert_not_null(strstr(until_prompt(fd2), "grove debug console"));
    out = ask(fd, "quit\n");
    cr_assert_str_eq(out, "", "the console closed the session");
    close(fd);
    /* A line too long ends the session. */
    {
        char big[2000];

        memset(big, 'x', sizeof big - 1);
        big[sizeof big - 1] = '\n';
        cr_assert_eq(write(fd2, big, sizeof big), (ssize_t)sizeof big);
        out = until_prompt(fd2);
        cr_assert_str_eq(out, "line too long\n", "%s", out);
    }
    close(fd2);
    atomic_store(&client_done, 1);
    return NULL;
}

static void *serves_console(void *arg)
{
    gr_console *c;
    struct stat st;
    pthread_t t;
    void *r;

    (void)arg;
    make_path();
    umask(0); /* the mode must not depend on the umask */
    cr_assert_not_null(c = gr_console_start(sock_path), "start: %s", strerror(errno));
    cr_assert_eq(stat(sock_path, &st), 0);
    cr_assert(S_ISSOCK(st.st_mode));
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    victim = gr_spawn_opts(victim_main, NULL, &(gr_opts){.name = "victim"});
    cr_assert_eq(pthread_create(&t, NULL, client, NULL), 0);
    cr_assert_eq(gr_join(victim, &r, gr_now_update() + 5000), 0, "killed from the console");
    cr_assert_eq((intptr_t)r, -1);
    WAIT_FOR(atomic_load(&client_done));
    pthread_join(t, NULL);
    cr_assert_eq(gr_console_stop(c), 0);
    assert_fails(stat(sock_path, &st), ENOENT);
    return NULL;
}

Test(console, a_plain_client_lists_inspects_and_kills, .timeout = 30)
{
    run_main(serves_console, NULL);
}

/* ------------------------------------------------------- stop, misuse */

static void *idle_client(void *arg)
{
    int fd = client_connect();
    char c;

    cr_assert_geq(fd, 0);
    until_prompt(fd);
    atomic_store(&client_done, 1);
    /* The console stops: the session is ended, the connection closed. */
    cr_assert_eq(read(fd, &c, 1), 0);
    close(fd);
    return arg;
}

static void *stops_with_a_session_open(void *arg)
{
    gr_console *c;
    pthread_t t;
    int fd;

    (void)arg;
    make_path();
    cr_assert_not_null(c = gr_console_start(sock_path));
    atomic_store(&client_done, 0);
    cr_assert_eq(pthread_create(&t, NULL, idle_client, NULL), 0);
    WAIT_FOR(atomic_load(&client_done));
    cr_assert_eq(gr_console_stop(c), 0);
    pthread_join(t, NULL);
    cr_assert_lt(client_connect(), 0, "nothing listens any more");
    /* A file in the way is not replaced. */
    cr_assert_geq(fd = open(sock_path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600), 0);
    close(fd);
    errno = 0;
    cr_assert_null(gr_console_start(sock_path));
    cr_assert_eq(errno, EADDRINUSE);
    unlink(sock_path);
    errno = 0;
    cr_assert_null(gr_console_start(NULL));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(gr_console_start(""));
    cr_assert_eq(errno, EINVAL);
    cr_assert_null(gr_console_start("@abstract"));
    cr_assert_eq(errno, EINVAL);
    {
        char longer[200];

        memset(longer, 'a', sizeof longer - 1);
        longer[sizeof longer - 1] = '\0';
        cr_assert_null(gr_console_start(longer));
        cr_assert_eq(errno, ENAMETOOLONG);
    }
    assert_fails(gr_console_stop(NULL), EINVAL);
    return NULL;
}

Test(console, stop_ends_sessions_and_bad_paths_are_refused, .timeout = 30)
{
    run_main(stops_with_a_session_open, NULL);
}

/* Another user cannot even connect (the file's mode), as root can show. */
static void *foreign_user(void *arg)
{
    gr_console *c;
    int status;
    pid_t pid;

    (void)arg;
    make_path();
    cr_assert_not_null(c = gr_console_start(sock_path));
    if ((pid = fork()) == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(2);
        _exit(client_connect() < 0 && errno == EACCES ? 0 : 1);
    }
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %x", status);
    gr_console_stop(c);
    return NULL;
}

Test(console, another_user_cannot_connect, .timeout = 30)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to become another user");
    run_main(foreign_user, NULL);
}

/* From a hub callback the console cannot wait for its sessions. */
static gr_console *in_cb;

static void stops_in_callback(void *arg)
{
    (void)arg;
    assert_fails(gr_console_stop(in_cb), EDEADLK);
}

static void *callback_stop(void *arg)
{
    (void)arg;
    make_path();
    cr_assert_not_null(in_cb = gr_console_start(sock_path));
    gr_hub_post(gr_hub_current(), stops_in_callback, NULL);
    gr_sleep(gr_now_update() + 20);
    cr_assert_eq(gr_console_stop(in_cb), 0, "still whole");
    return NULL;
}

Test(console, stop_in_a_hub_callback_is_edeadlk, .timeout = 10)
{
    cr_redirect_stderr();
    run_main(callback_stop, NULL);
}
