/* Per-descriptor records (patch.h). Process-wide, since descriptors are:
 * any OS thread may create, use or close one. A record is a few atomic
 * words in fixed chunks that are mapped on first need and never freed or
 * moved, so a lookup takes no lock and costs two loads.
 *
 * A record is only a cache of what the kernel knows (grove never changes
 * a descriptor's mode behind the program's back): it is set where the
 * interposers see a descriptor made, cleared where they see one closed,
 * and filled from the kernel (fstat, F_GETFL, the socket's time-outs) the
 * first time a descriptor nobody recorded is used in a green thread:
 * inherited ones, those glibc or another library made without us, those
 * received with SCM_RIGHTS, eventfd, timerfd... */
#include "patch/patch.h"

#include <sys/mman.h>
#include <sys/stat.h>

typedef gr__fdinfo rec;

#define CHUNK GR__FDS_CHUNK
#define CHUNKS GR__FDS_CHUNKS
#define chunks gr__fds

gr__fdinfo *gr__fds[GR__FDS_CHUNKS];
static int high_fd = -1;

static rec *rec_of(int fd, int create)
{
    rec *c, *fresh = NULL;

    if (fd < 0 || fd >= CHUNK * CHUNKS)
        return NULL;
    c = __atomic_load_n(&chunks[fd / CHUNK], __ATOMIC_ACQUIRE);
    if (GR__P_LIKELY(c != NULL))
        return &c[fd % CHUNK];
    if (!create)
        return NULL;
    /* mmap, not malloc: this may run inside an allocator's own start-up. */
    fresh =
        mmap(NULL, CHUNK * sizeof(rec), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fresh == MAP_FAILED)
        return NULL;
    if (!__atomic_compare_exchange_n(&chunks[fd / CHUNK], &c, fresh, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_ACQUIRE)) {
        munmap(fresh, CHUNK * sizeof(rec));
        return &c[fd % CHUNK];
    }
    return &fresh[fd % CHUNK];
}

static void note_high(int fd)
{
    int h = __atomic_load_n(&high_fd, __ATOMIC_RELAXED);

    while (fd > h &&
           !__atomic_compare_exchange_n(&high_fd, &h, fd, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

int gr__fd_high(void)
{
    return __atomic_load_n(&high_fd, __ATOMIC_RELAXED);
}

static void store(rec *r, unsigned state, int rcv, int snd)
{
    __atomic_store_n(&r->rcv_ms, rcv, __ATOMIC_RELAXED);
    __atomic_store_n(&r->snd_ms, snd, __ATOMIC_RELAXED);
    __atomic_store_n(&r->state, state, __ATOMIC_RELEASE);
}

/* A socket time-out as ms, rounded up (0: none). */
static int sock_timeo_ms(int fd, int opt)
{
    struct timeval tv = {0, 0};
    socklen_t len = sizeof tv;
    int64_t ms;

    if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len) < 0)
        return 0;
    ms = (int64_t)tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

/* Learn fd from the kernel. 0 when fd is not open. */
static unsigned adopt(int fd)
{
    struct stat st;
    unsigned state;
    int fl, rcv = 0, snd = 0;
    rec *r;

    if (fstat(fd, &st) < 0 || (fl = gr__orig.fcntl(fd, F_GETFL)) < 0)
        return 0;
    if (S_ISSOCK(st.st_mode)) {
        state = GR__FD_SOCK;
        rcv = sock_timeo_ms(fd, SO_RCVTIMEO);
        snd = sock_timeo_ms(fd, SO_SNDTIMEO);
    } else if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode) || S_ISBLK(st.st_mode)) {
        state = GR__FD_PASS; /* epoll cannot wait on these: they never block for long */
    } else {
        state = S_ISFIFO(st.st_mode) ? GR__FD_PIPE : GR__FD_OTHER;
    }
    if (fl & O_NONBLOCK)
        state |= GR__FD_NONBLOCK;
    if ((r = rec_of(fd, 1))) {
        note_high(fd);
        store(r, state, rcv, snd);
    }
    return state;
}

unsigned gr__fd_adopt(int fd)
{
    int err = errno;
    unsigned s = adopt(fd);

    errno = err;
    return s;
}

void gr__fd_set(int fd, unsigned state, int rcv_ms, int snd_ms)
{
    int err = errno;
    rec *r = rec_of(fd, 1);

    if (r) {
        note_high(fd);
        store(r, state, rcv_ms, snd_ms);
    }
    errno = err;
}

void gr__fd_clear(int fd)
{
    rec *r = rec_of(fd, 0);

    if (r)
        __atomic_store_n(&r->state, 0, __ATOMIC_RELEASE);
}

void gr__fd_copy(int from, int to)
{
    rec *f = rec_of(from, 0);
    unsigned s = f ? __atomic_load_n(&f->state, __ATOMIC_ACQUIRE) : 0;

    if (!s) {
        gr__fd_clear(to);
        return;
    }
    gr__fd_set(to, s, __atomic_load_n(&f->rcv_ms, __ATOMIC_RELAXED),
               __atomic_load_n(&f->snd_ms, __ATOMIC_RELAXED));
}

/* Set or clear bits of a record that exists (one without a record is
 * adopted with the kernel's view later anyway). */
static void update_bits(int fd, unsigned set, unsigned clear)
{
    rec *r = rec_of(fd, 0);
    unsigned s;

    if (!r)
        return;
    s = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
    while (s && !__atomic_compare_exchange_n(&r->state, &s, (s | set) & ~clear, 1, __ATOMIC_ACQ_REL,
                                             __ATOMIC_ACQUIRE)) {
    }
}

void gr__fd_set_nonblock(int fd, int on)
{
    update_bits(fd, on ? GR__FD_NONBLOCK : 0, on ? 0 : GR__FD_NONBLOCK);
}

void gr__fd_add_flags(int fd, unsigned flags)
{
    update_bits(fd, flags, 0);
}

int gr__fd_timeo(int fd, int rcv)
{
    rec *r = rec_of(fd, 0);

    if (!r)
        return 0;
    return __atomic_load_n(rcv ? &r->rcv_ms : &r->snd_ms, __ATOMIC_RELAXED);
}

void gr__fd_set_timeo(int fd, int rcv, int ms)
{
    rec *r = rec_of(fd, 0);

    if (r && __atomic_load_n(&r->state, __ATOMIC_ACQUIRE))
        __atomic_store_n(rcv ? &r->rcv_ms : &r->snd_ms, ms, __ATOMIC_RELAXED);
}
