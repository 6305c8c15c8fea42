/* The one table of interposed calls: every libc symbol libgrove-patch.so
 * defines, with its family and how it is handled. Everything else is made
 * from it:
 *   - the interposers' declarations (patch.h), which the compiler checks
 *     against glibc's own prototypes and against each definition;
 *   - the originals' table (orig.c: one typed pointer per entry, resolved
 *     with dlsym(RTLD_NEXT));
 *   - the .so's exported symbol list (the version script that table_gen.c
 *     writes; linked with --no-undefined-version, so an entry without a
 *     definition fails the link);
 *   - the list in docs/patching.md (table_gen.c --doc; the patch_table
 *     test fails when the doc or the .so's exports differ from it).
 *
 * GR_PATCH(family, handling, return type, name, parameters, note)
 *   family:   SOCKET, SELECT, TIME, DNS, SIGNAL, PROCESS (GROVE_PATCH /
 *             gr_patch_set)
 *   handling: WAIT   parks the green thread while the call would block
 *             LOOK   the real call with a zero time-out; the hub only says
 *                    when to look again
 *             SLEEP  gr_sleep to the same deadline
 *             POOL   replaced whole: the real call on grove's thread pool,
 *                    waited for cooperatively
 *             BOOK   never blocks: the real call, plus the bookkeeping of
 *                    descriptors (done in every context, so it stays true)
 *             CHK    a _FORTIFY_SOURCE entry point: checks the size, then
 *                    as the call the note names
 *             PASS   the real call (the partner of a replaced one)
 *             OWN    replaced whole by grove's own version (src/os/coop.h),
 *                    whose waits park the green thread: libc's makes them
 *                    inside libc, out of reach
 * The parameter lists are glibc 2.36's, spelled as its headers spell them
 * (__SOCKADDR_ARG is its transparent union). */

/* ----------------------------------------------------- descriptors */
GR_PATCH(SOCKET, BOOK, int, socket, (int domain, int type, int protocol),
         "records the type and SOCK_NONBLOCK")
GR_PATCH(SOCKET, BOOK, int, socketpair, (int domain, int type, int protocol, int fds[2]),
         "records both ends")
GR_PATCH(SOCKET, BOOK, int, pipe, (int fds[2]), "records both ends")
GR_PATCH(SOCKET, BOOK, int, pipe2, (int fds[2], int flags), "records both ends and O_NONBLOCK")
GR_PATCH(SOCKET, WAIT, int, accept, (int fd, __SOCKADDR_ARG addr, socklen_t *restrict len),
         "SO_RCVTIMEO applies; the new socket inherits the time-outs")
GR_PATCH(SOCKET, WAIT, int, accept4,
         (int fd, __SOCKADDR_ARG addr, socklen_t *restrict len, int flags), "as accept")
GR_PATCH(SOCKET, WAIT, int, connect, (int fd, __CONST_SOCKADDR_ARG addr, socklen_t len),
         "ECONNREFUSED as the kernel says; EINPROGRESS only at an SO_SNDTIMEO expiry")
GR_PATCH(SOCKET, BOOK, int, close, (int fd),
         "wakes the fd's waiters with EBADF and unregisters it first")
GR_PATCH(SOCKET, BOOK, int, close_range, (unsigned int first, unsigned int last, int flags),
         "as close, for each descriptor (not with CLOSE_RANGE_CLOEXEC)")
GR_PATCH(SOCKET, BOOK, void, closefrom, (int lowfd), "as close_range")
GR_PATCH(SOCKET, BOOK, int, dup, (int fd), "the copy shares the record")
GR_PATCH(SOCKET, BOOK, int, dup2, (int fd, int fd2), "a live fd2 is closed as by close")
GR_PATCH(SOCKET, BOOK, int, dup3, (int fd, int fd2, int flags), "as dup2")
GR_PATCH(SOCKET, BOOK, int, fcntl, (int fd, int cmd, ...),
         "F_SETFL records O_NONBLOCK; F_DUPFD* as dup")
GR_PATCH(SOCKET, BOOK, int, fcntl64, (int fd, int cmd, ...), "as fcntl (_FILE_OFFSET_BITS=64)")
GR_PATCH(SOCKET, BOOK, int, ioctl, (int fd, unsigned long int request, ...),
         "FIONBIO records non-blocking mode")
GR_PATCH(SOCKET, BOOK, int, setsockopt,
         (int fd, int level, int optname, const void *optval, socklen_t optlen),
         "SO_RCVTIMEO and SO_SNDTIMEO become the waits' deadlines")

/* ---------------------------------------------------------- reading */
GR_PATCH(SOCKET, WAIT, ssize_t, read, (int fd, void *buf, size_t nbytes),
         "sockets, pipes, FIFOs, terminals, eventfd, timerfd...; regular files as they are")
GR_PATCH(SOCKET, CHK, ssize_t, __read_chk, (int fd, void *buf, size_t nbytes, size_t buflen),
         "read")
GR_PATCH(SOCKET, WAIT, ssize_t, readv, (int fd, const struct iovec *iov, int iovcnt), "as read")
GR_PATCH(SOCKET, WAIT, ssize_t, recv, (int fd, void *buf, size_t n, int flags),
         "MSG_WAITALL waits for it all; MSG_DONTWAIT never waits")
GR_PATCH(SOCKET, CHK, ssize_t, __recv_chk, (int fd, void *buf, size_t n, size_t buflen, int flags),
         "recv")
GR_PATCH(SOCKET, WAIT, ssize_t, recvfrom,
         (int fd, void *restrict buf, size_t n, int flags, __SOCKADDR_ARG addr,
          socklen_t *restrict addr_len),
         "as recv")
GR_PATCH(SOCKET, CHK, ssize_t, __recvfrom_chk,
         (int fd, void *restrict buf, size_t n, size_t buflen, int flags, __SOCKADDR_ARG addr,
          socklen_t *restrict addr_len),
         "recvfrom")
GR_PATCH(SOCKET, WAIT, ssize_t, recvmsg, (int fd, struct msghdr *message, int flags),
         "as recv; descriptors received with SCM_RIGHTS are adopted")
GR_PATCH(SOCKET, WAIT, int, recvmmsg,
         (int fd, struct mmsghdr *vmessages, unsigned int vlen, int flags, struct timespec *tmo),
         "waits for vlen messages unless MSG_WAITFORONE, as the kernel does")

/* ---------------------------------------------------------- writing */
GR_PATCH(SOCKET, WAIT, ssize_t, write, (int fd, const void *buf, size_t n),
         "a blocking write writes everything (or returns the count at an SO_SNDTIMEO expiry)")
GR_PATCH(SOCKET, WAIT, ssize_t, writev, (int fd, const struct iovec *iov, int iovcnt), "as write")
GR_PATCH(SOCKET, WAIT, ssize_t, send, (int fd, const void *buf, size_t n, int flags), "as write")
GR_PATCH(SOCKET, WAIT, ssize_t, sendto,
         (int fd, const void *buf, size_t n, int flags, __CONST_SOCKADDR_ARG addr,
          socklen_t addr_len),
         "as write")
GR_PATCH(SOCKET, WAIT, ssize_t, sendmsg, (int fd, const struct msghdr *message, int flags),
         "as write; ancillary data goes with the first byte")
GR_PATCH(SOCKET, WAIT, int, sendmmsg,
         (int fd, struct mmsghdr *vmessages, unsigned int vlen, int flags),
         "every message, as the kernel does")
GR_PATCH(SOCKET, WAIT, ssize_t, sendfile, (int out_fd, int in_fd, off_t *offset, size_t count),
         "waits on out_fd")
GR_PATCH(SOCKET, WAIT, ssize_t, sendfile64,
         (int out_fd, int in_fd, __off64_t *offset, size_t count),
         "as sendfile (_FILE_OFFSET_BITS=64)")

/* ---------------------------------------------------------- waiting */
GR_PATCH(SELECT, LOOK, int, poll, (struct pollfd * fds, nfds_t nfds, int timeout),
         "a closed fd shows as POLLNVAL, as in poll")
GR_PATCH(SELECT, CHK, int, __poll_chk,
         (struct pollfd * fds, nfds_t nfds, int timeout, __SIZE_TYPE__ fdslen), "poll")
GR_PATCH(SELECT, LOOK, int, ppoll,
         (struct pollfd * fds, nfds_t nfds, const struct timespec *timeout, const __sigset_t *ss),
         "the mask applies to each look")
GR_PATCH(SELECT, CHK, int, __ppoll_chk,
         (struct pollfd * fds, nfds_t nfds, const struct timespec *timeout, const __sigset_t *ss,
          __SIZE_TYPE__ fdslen),
         "ppoll")
GR_PATCH(SELECT, LOOK, int, select,
         (int nfds, fd_set *restrict readfds, fd_set *restrict writefds, fd_set *restrict exceptfds,
          struct timeval *restrict timeout),
         "the time-out is updated as Linux does; no descriptors: a sleep")
GR_PATCH(SELECT, LOOK, int, pselect,
         (int nfds, fd_set *restrict readfds, fd_set *restrict writefds, fd_set *restrict exceptfds,
          const struct timespec *restrict timeout, const __sigset_t *restrict sigmask),
         "as select and ppoll")
GR_PATCH(SELECT, LOOK, int, epoll_wait,
         (int epfd, struct epoll_event *events, int maxevents, int timeout),
         "a library's own epoll set, waited on through its epoll fd")
GR_PATCH(SELECT, LOOK, int, epoll_pwait,
         (int epfd, struct epoll_event *events, int maxevents, int timeout, const __sigset_t *ss),
         "as epoll_wait and ppoll")
GR_PATCH(SELECT, LOOK, int, epoll_pwait2,
         (int epfd, struct epoll_event *events, int maxevents, const struct timespec *timeout,
          const __sigset_t *ss),
         "as epoll_pwait")

/* ------------------------------------------------------------- time */
GR_PATCH(TIME, SLEEP, unsigned int, sleep, (unsigned int seconds),
         "returns the seconds left when killed")
GR_PATCH(TIME, SLEEP, int, usleep, (__useconds_t useconds), "")
GR_PATCH(TIME, SLEEP, int, nanosleep,
         (const struct timespec *requested_time, struct timespec *remaining),
         "rounded up to the hub's millisecond")
GR_PATCH(TIME, SLEEP, int, clock_nanosleep,
         (clockid_t clock_id, int flags, const struct timespec *req, struct timespec *rem),
         "CLOCK_REALTIME, MONOTONIC, BOOTTIME and TAI; relative or TIMER_ABSTIME")

/* -------------------------------------------------------------- DNS */
GR_PATCH(DNS, POOL, int, getaddrinfo,
         (const char *restrict name, const char *restrict service,
          const struct addrinfo *restrict req, struct addrinfo **restrict pai),
         "numeric hosts answered in place (no I/O)")
GR_PATCH(DNS, PASS, void, freeaddrinfo, (struct addrinfo * ai), "the results are glibc's")
GR_PATCH(DNS, POOL, int, getnameinfo,
         (const struct sockaddr *restrict sa, socklen_t salen, char *restrict host,
          socklen_t hostlen, char *restrict serv, socklen_t servlen, int flags),
         "NI_NUMERICHOST answered in place")
GR_PATCH(DNS, POOL, struct hostent *, gethostbyname, (const char *name),
         "the result lives until the OS thread's next such call")
GR_PATCH(DNS, POOL, struct hostent *, gethostbyname2, (const char *name, int af),
         "as gethostbyname")
GR_PATCH(DNS, POOL, struct hostent *, gethostbyaddr, (const void *addr, __socklen_t len, int type),
         "as gethostbyname")
GR_PATCH(DNS, POOL, int, gethostbyname_r,
         (const char *restrict name, struct hostent *restrict result_buf, char *restrict buf,
          size_t buflen, struct hostent **restrict result, int *restrict h_errnop),
         "ERANGE as glibc")
GR_PATCH(DNS, POOL, int, gethostbyname2_r,
         (const char *restrict name, int af, struct hostent *restrict result_buf,
          char *restrict buf, size_t buflen, struct hostent **restrict result,
          int *restrict h_errnop),
         "as gethostbyname_r")
GR_PATCH(DNS, POOL, int, gethostbyaddr_r,
         (const void *restrict addr, __socklen_t len, int type, struct hostent *restrict result_buf,
          char *restrict buf, size_t buflen, struct hostent **restrict result,
          int *restrict h_errnop),
         "as gethostbyname_r")
GR_PATCH(DNS, POOL, int, res_query,
         (const char *dname, int class, int type, unsigned char *answer, int anslen),
         "the caller's _res; one query at a time per OS thread")
GR_PATCH(DNS, POOL, int, res_search,
         (const char *dname, int class, int type, unsigned char *answer, int anslen),
         "as res_query")
GR_PATCH(DNS, POOL, int, res_nquery,
         (res_state statp, const char *dname, int class, int type, unsigned char *answer,
          int anslen),
         "as res_query, on statp")
GR_PATCH(DNS, POOL, int, res_nsearch,
         (res_state statp, const char *dname, int class, int type, unsigned char *answer,
          int anslen),
         "as res_nquery")

/* ---------------------------------------------------------- signals
 * src/os/coop.h: the answer is the kernel's (rt_sigtimedwait with a zero
 * time-out); between two looks the green thread waits on a signalfd of the
 * set. */
GR_PATCH(SIGNAL, WAIT, int, sigwait, (const sigset_t *restrict set, int *restrict sig),
         "returns ECANCELED when the green thread is killed, never EINTR")
GR_PATCH(SIGNAL, WAIT, int, sigwaitinfo, (const sigset_t *restrict set, siginfo_t *restrict info),
         "as sigtimedwait without a time-out")
GR_PATCH(SIGNAL, WAIT, int, sigtimedwait,
         (const sigset_t *restrict set, siginfo_t *restrict info,
          const struct timespec *restrict timeout),
         "the set is blocked in the OS thread during the wait, as the kernel does; a zero "
         "time-out is the real call")
GR_PATCH(SIGNAL, WAIT, int, sigsuspend, (const sigset_t *set),
         "the mask applies at delivery only: the hub's other green threads keep the thread's own")
GR_PATCH(SIGNAL, WAIT, int, pause, (void), "as sigsuspend with the thread's mask")

/* ---------------------------------------------------------- processes
 * src/os/coop.h: a wait on one child waits on its pidfd; any other polls
 * with WNOHANG on a timer backing off from 1 to 20 ms. Nothing here takes
 * SIGCHLD or reaps a child it was not asked for. */
GR_PATCH(PROCESS, WAIT, __pid_t, waitpid, (__pid_t pid, int *stat_loc, int options),
         "pid > 0: on the child's pidfd; WNOHANG is the real call")
GR_PATCH(PROCESS, WAIT, __pid_t, wait, (int *stat_loc), "as waitpid(-1, ..., 0)")
GR_PATCH(PROCESS, WAIT, __pid_t, wait3, (int *stat_loc, int options, struct rusage *usage),
         "as wait4(-1, ...)")
GR_PATCH(PROCESS, WAIT, __pid_t, wait4,
         (__pid_t pid, int *stat_loc, int options, struct rusage *usage), "as waitpid")
GR_PATCH(PROCESS, WAIT, int, waitid, (idtype_t idtype, __id_t id, siginfo_t *infop, int options),
         "P_PID and P_PIDFD on a pidfd")
GR_PATCH(PROCESS, OWN, int, system, (const char *command),
         "glibc's steps (SIGINT and SIGQUIT ignored, SIGCHLD blocked) with posix_spawn")
GR_PATCH(PROCESS, OWN, FILE *, popen, (const char *command, const char *modes),
         "a fopencookie stream whose reads and writes park the green thread; its fileno() is -1")
GR_PATCH(PROCESS, OWN, int, pclose, (FILE * stream),
         "any popen stream; one made outside a green thread (libc's) is closed by libc, blocking")
