/* libgrove-patch at start-up, under an allocator that does what jemalloc
 * and tcmalloc do: its first malloc, which comes before any constructor
 * has run, opens and reads a file with the interposed open/read/close.
 * The program must start (no recursion into dlsym, no deadlock), the
 * interposers' pass-through path must never allocate, and green threads
 * must then work. Prints "startup ok"; exits non-zero otherwise. Run by
 * tests/patch/startup.sh, linked with -lgrove-patch and under LD_PRELOAD
 * with jemalloc. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grove.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef NO_OWN_MALLOC
/* A bump allocator over a static arena: a size word before each block. */
static _Alignas(64) char arena[256 << 20];
static atomic_size_t used;
static atomic_int calls, started;
static atomic_flag lock = ATOMIC_FLAG_INIT;

static void first_use(void)
{
    char buf[64];
    int fd = open("/proc/self/stat", O_RDONLY);

    if (fd >= 0) {
        if (read(fd, buf, sizeof buf) <= 0)
            abort();
        close(fd);
    }
}

void *malloc(size_t n)
{
    size_t off, len = (n + 15 + 16) & ~(size_t)15;

    if (!atomic_exchange(&started, 1))
        first_use();
    atomic_fetch_add(&calls, 1);
    while (atomic_flag_test_and_set(&lock)) {
    }
    off = used;
    if (off + len > sizeof arena) {
        atomic_flag_clear(&lock);
        errno = ENOMEM;
        return NULL;
    }
    used = off + len;
    atomic_flag_clear(&lock);
    *(size_t *)(arena + off) = n;
    return arena + off + 16;
}

void free(void *p)
{
    (void)p;
}

void *calloc(size_t a, size_t b)
{
    void *p = malloc(a * b);

    if (p)
        memset(p, 0, a * b);
    return p;
}

void *realloc(void *p, size_t n)
{
    void *q = malloc(n);
    size_t old = p ? *(size_t *)((char *)p - 16) : 0;

    if (q && p)
        memcpy(q, p, old < n ? old : n);
    return q;
}

void *memalign(size_t align, size_t n)
{
    char *p = malloc(n + align);

    return p ? (void *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1)) : NULL;
}

void *aligned_alloc(size_t align, size_t n)
{
    return memalign(align, n);
}

int posix_memalign(void **out, size_t align, size_t n)
{
    return (*out = memalign(align, n)) ? 0 : ENOMEM;
}

static int allocations(void)
{
    return atomic_load(&calls);
}
#else
static int allocations(void)
{
    return 0;
}
#endif

static int sv[2];

static void *writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2; i++) {
        gr_sleep(gr_now_update() + 20);
        if (write(sv[1], "x", 1) != 1)
            return (void *)1;
    }
    return NULL;
}

static void *green(void *arg)
{
    char c;
    gr_t w = gr_spawn(writer, NULL);
    int before;

    (void)arg;
    /* The first wait on a descriptor sets the hub's table up (the core
     * allocates then); the waits after it allocate nothing. */
    if (read(sv[0], &c, 1) != 1)
        return (void *)1;
    before = allocations();
    if (read(sv[0], &c, 1) != 1)
        return (void *)1;
    if (allocations() != before) {
        fprintf(stderr, "startup: a cooperative read allocated\n");
        return (void *)1;
    }
    gr_join(w, NULL, -1);
    return NULL;
}

int main(void)
{
    int pfd[2], before;
    char c = 'a';
    void *res = (void *)1;

    if (pipe(pfd) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return 1;
    before = allocations();
    for (int i = 0; i < 1000; i++)
        if (write(pfd[1], &c, 1) != 1 || read(pfd[0], &c, 1) != 1)
            return 1;
    if (allocations() != before) {
        fprintf(stderr, "startup: the pass-through path allocated\n");
        return 1;
    }
    if (gr_main(green, NULL, &res) != 0 || res) {
        fprintf(stderr, "startup: the green thread failed\n");
        return 1;
    }
    printf("startup ok\n");
    return 0;
}
