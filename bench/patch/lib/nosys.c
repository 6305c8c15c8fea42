/* libgrove-bench-nosys.so: recv and recvfrom that return 1 at once, without
 * entering the kernel. grove-patch-bench preloads it after
 * libgrove-patch.so (which then takes it for libc's recvfrom) and alone
 * (where grove's gr_recv calls it), so the two sides of a comparison
 * differ only by what runs in user space: the interposer's own cost, which
 * a real system call's noise (a microsecond or two here, varying by more
 * than the cost) would hide. */
#define _GNU_SOURCE
#include <sys/socket.h>

static ssize_t one_byte(void *buf, size_t n)
{
    if (n)
        *(char *)buf = 'x';
    return 1;
}

__attribute__((visibility("default"))) ssize_t recv(int fd, void *buf, size_t n, int flags)
{
    (void)fd, (void)flags;
    return one_byte(buf, n);
}

__attribute__((visibility("default"))) ssize_t recvfrom(int fd, void *restrict buf, size_t n,
                                                        int flags, __SOCKADDR_ARG addr,
                                                        socklen_t *restrict len)
{
    (void)fd, (void)flags, (void)addr, (void)len;
    return one_byte(buf, n); /* not recv: that would be the interposer's */
}
