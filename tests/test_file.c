/* Regular files through the pool: open/read/write/pread/pwrite, errors,
 * and callers that give up while the system call is stuck (a FIFO). */
#include "common.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], path[128], fifo[128];

static void make_dir(void)
{
    strcpy(dir, "/tmp/grove-file-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/data", dir);
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
}

static void remove_dir(void)
{
    unlink(path);
    unlink(fifo);
    rmdir(dir);
}

/* ------------------------------------------------------- read, write */

static void *read_write(void *arg)
{
    char buf[64] = {0};
    int fd;

    (void)arg;
    fd = gr_file_open(path, O_CREAT | O_RDWR | O_TRUNC, 0600, gr_now() + 5000);
    cr_assert_geq(fd, 0, "open: %s", strerror(errno));
    cr_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC, "O_CLOEXEC is added");
    cr_assert_eq(gr_file_write(fd, "hello world", 11, -1, -1), 11);
    cr_assert_eq(lseek(fd, 0, SEEK_CUR), 11, "write(2) moves the offset");
    cr_assert_eq(gr_file_write(fd, "WORLD", 5, 6, -1), 5);
    cr_assert_eq(lseek(fd, 0, SEEK_CUR), 11, "pwrite(2) does not");
    cr_assert_eq(gr_file_read(fd, buf, sizeof buf, 0, -1), 11);
    cr_assert_str_eq(buf, "hello WORLD");
    memset(buf, 0, sizeof buf);
    cr_assert_eq(gr_file_read(fd, buf, 3, 6, -1), 3);
    cr_assert_str_eq(buf, "WOR");
    cr_assert_eq(gr_file_read(fd, buf, sizeof buf, -1, -1), 0, "at the end: read(2) says 0");
    lseek(fd, 0, SEEK_SET);
    memset(buf, 0, sizeof buf);
    cr_assert_eq(gr_file_read(fd, buf, 5, -1, -1), 5);
    cr_assert_str_eq(buf, "hello");
    cr_assert_eq(gr_file_read(fd, buf, 0, 0, -1), 0);
    cr_assert_eq(close(fd), 0);
    return NULL;
}

Test(file, read_write_pread_pwrite, .timeout = 10, .init = make_dir, .fini = remove_dir)
{
    run_main(read_write, NULL);
}

static void *big(void *arg)
{
    size_t n = (size_t)3 << 20;
    char *out = malloc(n), *in = malloc(n);
    int fd;

    (void)arg;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(i * 7 + i / 251);
    fd = gr_file_open(path, O_CREAT | O_RDWR | O_TRUNC, 0600, -1);
    cr_assert_geq(fd, 0);
    cr_assert_eq(gr_file_write(fd, out, n, 0, -1), (ssize_t)n);
    cr_assert_eq(gr_file_read(fd, in, n, 0, -1), (ssize_t)n);
    cr_assert(memcmp(in, out, n) == 0);
    close(fd);
    free(in);
    free(out);
    return NULL;
}

Test(file, megabytes_round_trip, .timeout = 10, .init = make_dir, .fini = remove_dir)
{
    run_main(big, NULL);
}

/* Many green threads write their own blocks at once. */
enum { WRITERS = 16, BLOCK = 4096 };
static int shared_fd;

static void *write_block(void *arg)
{
    char block[BLOCK];
    intptr_t i = (intptr_t)arg;

    memset(block, 'a' + (int)i, sizeof block);
    cr_assert_eq(gr_file_write(shared_fd, block, BLOCK, i * BLOCK, -1), BLOCK);
    return NULL;
}

static void *many_writers(void *arg)
{
    gr_t t[WRITERS];
    char block[BLOCK];

    (void)arg;
    shared_fd = gr_file_open(path, O_CREAT | O_RDWR | O_TRUNC, 0600, -1);
    for (intptr_t i = 0; i < WRITERS; i++)
        t[i] = gr_spawn(write_block, (void *)i);
    for (int i = 0; i < WRITERS; i++)
        cr_assert_eq(gr_join(t[i], NULL, -1), 0);
    for (int i = 0; i < WRITERS; i++) {
        cr_assert_eq(gr_file_read(shared_fd, block, BLOCK, (off_t)i * BLOCK, -1), BLOCK);
        cr_assert_eq(block[0], 'a' + i);
        cr_assert_eq(block[BLOCK - 1], 'a' + i);
    }
    close(shared_fd);
    return NULL;
}

Test(file, concurrent_pwrites, .timeout = 10, .init = make_dir, .fini = remove_dir)
{
    run_main(many_writers, NULL);
}

/* ------------------------------------------------------------ errors */

static void *errors(void *arg)
{
    char buf[4];
    int fd;

    (void)arg;
    assert_fails(gr_file_open("/nonexistent/grove/file", O_RDONLY, 0, -1), ENOENT);
    assert_fails(gr_file_open(dir, O_WRONLY, 0, -1), EISDIR);
    assert_fails(gr_file_open(NULL, O_RDONLY, 0, -1), EFAULT);
    assert_fails(gr_file_read(-1, buf, sizeof buf, 0, -1), EBADF);
    assert_fails(gr_file_write(-1, "x", 1, -1, -1), EBADF);
    assert_fails(gr_file_read(0, NULL, 4, 0, -1), EFAULT);
    fd = gr_file_open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600, -1);
    cr_assert_geq(fd, 0);
    assert_fails(gr_file_read(fd, buf, sizeof buf, 0, -1), EBADF); /* write-only */
    /* A deadline already past does nothing at all. */
    assert_fails(gr_file_write(fd, "x", 1, 0, 0), ETIMEDOUT);
    assert_fails(gr_file_open(path, O_RDONLY, 0, gr_now() - 1), ETIMEDOUT);
    close(fd);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_size, 0, "the timed-out write was never made");
    return NULL;
}

Test(file, errors_are_the_system_calls, .timeout = 10, .init = make_dir, .fini = remove_dir)
{
    run_main(errors, NULL);
}

static void *killed_first(void *arg)
{
    (void)arg;
    gr_kill(gr_self());
    assert_fails(gr_file_write(*(int *)arg, "x", 1, 0, -1), ECANCELED);
    return NULL;
}

Test(file, a_killed_thread_writes_nothing, .timeout = 10, .init = make_dir, .fini = remove_dir)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    struct stat st;

    run_main(killed_first, &fd);
    cr_assert_eq(fstat(fd, &st), 0);
    cr_assert_eq(st.st_size, 0);
    close(fd);
}

Test(file, works_from_the_root_context, .timeout = 10, .init = make_dir, .fini = remove_dir)
{
    char buf[8] = {0};
    int fd = gr_file_open(path, O_CREAT | O_RDWR | O_TRUNC, 0600, -1);

    cr_assert_geq(fd, 0);
    cr_assert_eq(gr_file_write(fd, "root", 4, 0, -1), 4);
    cr_assert_eq(gr_file_read(fd, buf, sizeof buf, 0, -1), 4);
    cr_assert_str_eq(buf, "root");
    close(fd);
}

/* ------------------------------------------- giving up on a stuck call */

/* Opening a FIFO for reading blocks until a writer comes: the worker is
 * stuck in open(2) while the caller is killed. */
static void *opens_fifo(void *arg)
{
    (void)arg;
    assert_fails(gr_file_open(fifo, O_RDONLY, 0, -1), ECANCELED);
    return NULL;
}

static void *cancel_open(void *arg)
{
    int before = proc_self_count("fd"), w; /* the hub's own fds included */
    int64_t killed_at;
    gr_t g;

    (void)arg;
    g = gr_spawn(opens_fifo, NULL);
    gr_sleep(gr_now() + 30); /* the worker is now blocked in open */
    killed_at = gr_now_update();
    gr_kill(g);
    cr_assert_eq(gr_join(g, NULL, gr_now() + 1000), 0);
    cr_assert_lt(gr_now_update() - killed_at, 50, "the caller returns at once");
    /* A writer lets the abandoned open finish; discard must close its fd.
     * The open for writing succeeds once the worker is in its open (a
     * reader); writes then succeed until the last reader, the abandoned
     * open's fd, is closed, when they fail with EPIPE. */
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < 500 && (w = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC)) < 0; i++)
        gr_sleep(gr_now() + 2);
    cr_assert_geq(w, 0, "the stuck open is a reader: %s", strerror(errno));
    for (int i = 0; i < 500 && write(w, "x", 1) == 1; i++)
        gr_sleep(gr_now() + 2);
    assert_fails(write(w, "x", 1), EPIPE);
    cr_assert_eq(proc_self_count("fd"), before + 1, "the abandoned open's fd was closed");
    close(w);
    return NULL;
}

Test(file, killed_during_a_stuck_open_returns_ecanceled_and_leaks_no_fd, .timeout = 10,
     .init = make_dir, .fini = remove_dir)
{
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    run_main(cancel_open, NULL);
}

/* A read stuck on an empty FIFO times out; when data comes later the
 * worker reads it into its own buffer, never the caller's. */
static char caller_buf[16];
static int fifo_fd;

static void *times_out_reading(void *arg)
{
    int64_t start = gr_now_update();
    int n = 0;

    (void)arg;
    memset(caller_buf, '.', sizeof caller_buf);
    assert_fails(gr_file_read(fifo_fd, caller_buf, sizeof caller_buf, -1, gr_now() + 30),
                 ETIMEDOUT);
    cr_assert_lt(gr_now_update() - start, 200 * TIME_SLACK);
    cr_assert_eq(write(fifo_fd, "late data", 9), 9);
    /* Wait until the abandoned read has taken it. */
    do {
        gr_sleep(gr_now() + 2);
        cr_assert_eq(ioctl(fifo_fd, FIONREAD, &n), 0);
    } while (n > 0);
    gr_sleep(gr_now() + 50);
    for (size_t i = 0; i < sizeof caller_buf; i++)
        cr_assert_eq(caller_buf[i], '.', "the caller's buffer was written after it gave up");
    return NULL;
}

Test(file, a_timed_out_read_never_writes_the_callers_buffer, .timeout = 10, .init = make_dir,
     .fini = remove_dir)
{
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    fifo_fd = open(fifo, O_RDWR | O_CLOEXEC); /* no wait for a peer */
    cr_assert_geq(fifo_fd, 0);
    run_main(times_out_reading, NULL);
#ifndef GROVE_TEST_TSAN /* TSan cannot see that the abandoned read is over */
    close(fifo_fd);
#endif
}
