/* Self-check of the context-switch layer alone (src/arch), without the rest
 * of grove or Criterion, so that it also runs on a cross target under
 * qemu-user. Build it with exactly one implementation, e.g.
 *   cc -O2 -I src/arch tests/arch/ctx_selfcheck.c src/arch/ctx_aarch64.S \
 *      src/arch/ctx_aarch64.c -lm
 * (with -DGR_CTX_UCONTEXT when the implementation is ctx_ucontext.c). It
 * prints "ctx selfcheck (<impl>): ok" and exits 0, or lists the failed
 * checks and exits 1; a crash or a hang is reported with the test it
 * happened in, and exits 1 too. */
#define _GNU_SOURCE /* mmap's MAP_ANONYMOUS under a strict -std */
#include "ctx.h"

#include <fenv.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "the register checks know only x86-64 and aarch64"
#endif

static int failures;

/* Checks also run inside contexts, where aborting would hide the rest, so
 * a failure is counted and reported; the report is capped because some
 * checks sit in 100,000-iteration loops. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond) && ++failures <= 20) {                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)
#define ULL(x) ((unsigned long long)(x))

#define STACK_SIZE (64u << 10)

static gr__ctx root; /* main's context, saved whenever it switches away */

/* Stacks come from mmap, like grove's own, with a PROT_NONE guard page
 * below so that an overflow faults instead of corrupting memory. They are
 * never freed: some contexts are left suspended and the process ends
 * soon. */
static void *stack_new(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED || mprotect(p, page, PROT_NONE) != 0) {
        perror("ctx selfcheck: stack");
        exit(1);
    }
    return p + page;
}

/* ---- crashes and hangs -------------------------------------------------- */

/* A broken switch crashes (a bad return address, a misaligned sp) or
 * corrupts a loop counter and hangs, which the alarm in main catches.
 * Either way the handler names the test that was running, on a stack of
 * its own since the one in use may be the culprit. */
static const char *volatile phase = "setup";

static void say(const char *s)
{
    ssize_t r = write(2, s, strlen(s));
    (void)r;
}

static void on_fatal(int sig)
{
    say("FAIL: ");
    say(sig == SIGALRM   ? "timed out (SIGALRM)"
        : sig == SIGSEGV ? "SIGSEGV"
        : sig == SIGBUS  ? "SIGBUS"
        : sig == SIGILL  ? "SIGILL"
        : sig == SIGTRAP ? "SIGTRAP"
        : sig == SIGFPE  ? "SIGFPE"
                         : "fatal signal");
    say(" in test ");
    say(phase);
    say("\nctx selfcheck: failed\n");
    _exit(1);
}

static void watchdog(void)
{
    static char altstack[64 << 10];
    static const int sigs[] = {SIGALRM, SIGSEGV, SIGBUS, SIGILL, SIGTRAP, SIGFPE};
    stack_t ss;
    struct sigaction sa;

    memset(&ss, 0, sizeof ss);
    ss.ss_sp = altstack;
    ss.ss_size = sizeof altstack;
    sigaltstack(&ss, NULL);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    alarm(30);
}

/* ---- helpers in assembly ------------------------------------------------ */

/* reg_switch(from, to, in, out) loads in[] into every callee-saved
 * register, calls gr__ctx_switch(from, to) and, once switched back to,
 * stores those registers to out[] before restoring its caller's. reg_start
 * does the same around gr__ctx_start(from, to, lo, size, entry, arg). They
 * are top-level asm so the compiler can neither keep the values elsewhere
 * nor reload them for us: only the context layer can carry them across.
 *
 * sp_at_call() returns the stack pointer at its call site, which the ABI
 * requires to be 16-byte aligned.
 *
 * fp_probe_entry is an entry for gr__ctx_start that records the frame
 * pointer it was called with in fp_probe_fp, then tail-calls
 * fp_probe_c(arg). */
void reg_switch(gr__ctx *from, gr__ctx *to, const uint64_t *in, uint64_t *out)
    __attribute__((visibility("hidden")));
void reg_start(gr__ctx *from, gr__ctx *to, void *lo, size_t size, gr__ctx_entry entry, void *arg,
               const uint64_t *in, uint64_t *out) __attribute__((visibility("hidden")));
uintptr_t sp_at_call(void) __attribute__((visibility("hidden")));
gr__ctx *fp_probe_entry(void *arg) __attribute__((visibility("hidden")));
gr__ctx *fp_probe_c(void *arg) __attribute__((visibility("hidden"), used));
uintptr_t fp_probe_fp __attribute__((visibility("hidden")));
#define ASM_FN(name, type)                                                                         \
    ".globl " name "\n.hidden " name "\n.type " name ", " type "\n"                                \
    ".p2align 4\n" name ":\n"

#if defined(__x86_64__)
#define NREGS 6
#define REG_FP 1 /* rbp's index in in[] */
static const char *const reg_name[NREGS] = {"rbx", "rbp", "r12", "r13", "r14", "r15"};
#define X86_LOAD(p)                                                                                \
    "mov (" p "), %rbx; mov 8(" p "), %rbp; mov 16(" p "), %r12\n"                                 \
    "mov 24(" p "), %r13; mov 32(" p "), %r14; mov 40(" p "), %r15\n"
#define X86_STORE(p)                                                                               \
    "mov %rbx, (" p "); mov %rbp, 8(" p "); mov %r12, 16(" p ")\n"                                 \
    "mov %r13, 24(" p "); mov %r14, 32(" p "); mov %r15, 40(" p ")\n"
#define X86_PUSH "push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15\n"
#define X86_POP "pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx\n"
__asm__(".pushsection .text\n" ASM_FN("reg_switch", "@function") X86_PUSH
        "push %rcx\n" /* out, kept on our own stack; 16-aligns rsp too */
        X86_LOAD("%rdx") "call gr__ctx_switch@PLT\n"
                         "pop %rax\n" X86_STORE("%rax") X86_POP
        "ret\n.size reg_switch, .-reg_switch\n" ASM_FN("reg_start", "@function") X86_PUSH
        /* in and out came on the stack, now at 56 and 64(%rsp) */
        "mov 64(%rsp), %rax; push %rax\n" /* out; 16-aligns rsp */
        "mov 64(%rsp), %rax\n"            /* in */
        X86_LOAD("%rax") "call gr__ctx_start@PLT\n"
                         "pop %rax\n" X86_STORE("%rax") X86_POP
        "ret\n.size reg_start, .-reg_start\n" ASM_FN(
            "sp_at_call",
            "@function") "lea 8(%rsp), %rax; ret\n" /* above the return address */
                         ".size sp_at_call, .-sp_at_call\n" ASM_FN(
                             "fp_probe_entry",
                             "@function") "mov %rbp, fp_probe_fp(%rip)\n"
                                          "jmp fp_probe_c\n"
                                          ".size fp_probe_entry, .-fp_probe_entry\n.popsection\n");

/* The FP control state a switch must carry: the MXCSR control bits (its
 * low six bits are sticky status flags, not control) and, in the high
 * half, the x87 control word. */
static uint64_t fpctl_get(void)
{
    uint32_t mxcsr;
    uint16_t cw;

    __asm__ volatile("stmxcsr %0; fnstcw %1" : "=m"(mxcsr), "=m"(cw));
    return (mxcsr & 0xffc0) | (uint64_t)cw << 32;
}

static void fpctl_set(uint64_t v)
{
    uint32_t mxcsr;
    uint16_t cw = (uint16_t)(v >> 32);

    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    mxcsr = (mxcsr & 0x3f) | (uint32_t)(v & 0xffc0);
    __asm__ volatile("ldmxcsr %0; fldcw %1" : : "m"(mxcsr), "m"(cw));
}

/* x87 precision control 64 -> 53 bits: changes the x87 control word but
 * not MXCSR, the one case where the x86 switch skips ldmxcsr yet must
 * still run fldcw. */
#define FPCTL_OTHER ((uint64_t)0x100 << 32)
/* A new context's state: every exception masked and round to nearest in
 * both units, no flush-to-zero or denormals-are-zero, x87 precision 64. */
#define FPCTL_DEFAULT ((uint64_t)0x1f80 | (uint64_t)0x037f << 32)
/* Not rounding, not default either: MXCSR flush-to-zero and
 * denormals-are-zero, and FPCTL_OTHER. */
#define FPCTL_ODD ((uint64_t)0x8040)
#else /* __aarch64__ */
#define NREGS 19
#define REG_FP 10 /* x29's index in in[] */
static const char *const reg_name[NREGS] = {"x19", "x20", "x21", "x22", "x23", "x24", "x25",
                                            "x26", "x27", "x28", "x29", "d8",  "d9",  "d10",
                                            "d11", "d12", "d13", "d14", "d15"};
/* in[] and out[] hold x19-x29 then d8-d15; our own 176-byte frame holds
 * the caller's x29, x30, x19-x28, d8-d15, then out at sp+160. */
#define A64_REG_CALL(name, callee, in, out)                                                        \
    ASM_FN(name, "%function")                                                                      \
    "stp x29, x30, [sp, #-176]!\n"                                                                 \
    "stp x19, x20, [sp, #16];  stp x21, x22, [sp, #32]\n"                                          \
    "stp x23, x24, [sp, #48];  stp x25, x26, [sp, #64]\n"                                          \
    "stp x27, x28, [sp, #80];  stp d8, d9, [sp, #96]\n"                                            \
    "stp d10, d11, [sp, #112]; stp d12, d13, [sp, #128]\n"                                         \
    "stp d14, d15, [sp, #144]; str " out ", [sp, #160]\n"                                          \
    "ldp x19, x20, [" in "];       ldp x21, x22, [" in ", #16]\n"                                  \
    "ldp x23, x24, [" in ", #32];  ldp x25, x26, [" in ", #48]\n"                                  \
    "ldp x27, x28, [" in ", #64];  ldr x29, [" in ", #80]\n"                                       \
    "ldp d8, d9, [" in ", #88];    ldp d10, d11, [" in ", #104]\n"                                 \
    "ldp d12, d13, [" in ", #120]; ldp d14, d15, [" in ", #136]\n"                                 \
    "bl " callee "\n"                                                                              \
    "ldr x9, [sp, #160]\n"                                                                         \
    "stp x19, x20, [x9];       stp x21, x22, [x9, #16]\n"                                          \
    "stp x23, x24, [x9, #32];  stp x25, x26, [x9, #48]\n"                                          \
    "stp x27, x28, [x9, #64];  str x29, [x9, #80]\n"                                               \
    "stp d8, d9, [x9, #88];    stp d10, d11, [x9, #104]\n"                                         \
    "stp d12, d13, [x9, #120]; stp d14, d15, [x9, #136]\n"                                         \
    "ldp x19, x20, [sp, #16];  ldp x21, x22, [sp, #32]\n"                                          \
    "ldp x23, x24, [sp, #48];  ldp x25, x26, [sp, #64]\n"                                          \
    "ldp x27, x28, [sp, #80];  ldp d8, d9, [sp, #96]\n"                                            \
    "ldp d10, d11, [sp, #112]; ldp d12, d13, [sp, #128]\n"                                         \
    "ldp d14, d15, [sp, #144]; ldp x29, x30, [sp], #176\n"                                         \
    "ret\n.size " name ", .-" name "\n"
__asm__(
    ".pushsection .text\n" A64_REG_CALL("reg_switch", "gr__ctx_switch", "x2", "x3")
        A64_REG_CALL("reg_start", "gr__ctx_start", "x6", "x7") ASM_FN(
            "sp_at_call",
            "%function") "mov x0, sp; ret\n" /* bl does not move sp */
                         ".size sp_at_call, .-sp_at_call\n" ASM_FN(
                             "fp_probe_entry",
                             "%function") "adrp x9, fp_probe_fp\n"
                                          "str x29, [x9, #:lo12:fp_probe_fp]\n"
                                          "b fp_probe_c\n"
                                          ".size fp_probe_entry, .-fp_probe_entry\n.popsection\n");

static uint64_t fpctl_get(void)
{
    uint64_t v;

    __asm__ volatile("mrs %0, fpcr" : "=r"(v));
    return v;
}

static void fpctl_set(uint64_t v)
{
    __asm__ volatile("msr fpcr, %0" : : "r"(v));
}

#define FPCTL_OTHER ((uint64_t)1 << 24) /* FPCR.FZ: a non-rounding bit */
#define FPCTL_DEFAULT ((uint64_t)0)
/* FPCR.DN (default NaN) and AHP (alternative half precision). */
#define FPCTL_ODD ((uint64_t)3 << 25)
#endif

static void check_aligned(const char *who)
{
    uintptr_t sp = sp_at_call();

    CHECK(sp % 16 == 0, "%s: sp %#llx not 16-byte aligned", who, ULL(sp));
}

/* ---- callee-saved registers ------------------------------------------ */

#define REG_ROUNDS 1000
static gr__ctx regctx;
static uint64_t root_in[NREGS], root_out[NREGS], ctx_in[NREGS], ctx_out[NREGS];

/* Distinct per register, per side (tag) and per round, with both 32-bit
 * halves varying so that a half-width save would show. */
static void reg_fill(uint64_t *v, uint64_t tag, unsigned round)
{
    for (int i = 0; i < NREGS; i++)
        v[i] = tag ^ (uint64_t)(i + 1) << 40 ^ (uint64_t)round << 8 ^ (uint64_t)(i + 1);
}

static void reg_compare(const char *who, const uint64_t *in, const uint64_t *out)
{
    for (int i = 0; i < NREGS; i++)
        CHECK(out[i] == in[i], "%s: %s is %#llx, want %#llx", who, reg_name[i], ULL(out[i]),
              ULL(in[i]));
}

/* The other side: loads its own values into the same registers before
 * switching back, so any register the switch fails to save or restore
 * comes back to the root holding this context's value, and vice versa. */
static gr__ctx *reg_entry(void *arg)
{
    CHECK(arg == &regctx, "reg entry: arg %p, want %p", arg, (void *)&regctx);
    for (unsigned round = 0;; round++) {
        reg_fill(ctx_in, 0x5a00000000000000ull, round);
        reg_switch(&regctx, &root, ctx_in, ctx_out);
        reg_compare("context", ctx_in, ctx_out);
    }
    return NULL; /* not reached (gcc -O0 cannot tell) */
}

/* The first round goes through gr__ctx_start, which must save the root
 * exactly as the switch does; the rest through the switch. */
static void test_regs(void)
{
    gr__ctx_init(&regctx);
    for (unsigned round = 0; round < REG_ROUNDS; round++) {
        reg_fill(root_in, 0xa500000000000000ull, round);
        if (round == 0)
            reg_start(&root, &regctx, stack_new(STACK_SIZE), STACK_SIZE, reg_entry, &regctx,
                      root_in, root_out);
        else
            reg_switch(&root, &regctx, root_in, root_out);
        reg_compare(round ? "root" : "root, after starting", root_in, root_out);
    }
}

/* ---- callee-saved registers across an entry's return ------------------ */

/* X, suspended in gr__ctx_switch at first, then in gr__ctx_start, starts Y
 * every round, with X's own values in every callee-saved register. Y's
 * entry returns &root on even rounds: gr__ctx_start's return path must
 * then load all of the root's registers over X's (an entry, like any
 * callee, hands back the registers it was called with, X's). On odd rounds
 * Y returns X, its starter, which then switches to the root itself. Y also
 * leaves a rounding mode of its own behind, which neither may see. */
static gr__ctx xctx, yctx;
static char *ylo;
static uint64_t x_in[NREGS], x_out[NREGS];
static unsigned ret_round;
static unsigned y_runs;

/* Every context has a rounding mode that neither of the others has, and
 * check_round compares all of them, so it comes in useful everywhere. */
static void check_round(const char *who, int want);

static gr__ctx *y_entry(void *arg)
{
    CHECK(arg == &yctx, "Y entry: arg %p, want %p", arg, (void *)&yctx);
    check_aligned("Y entry");
    y_runs++;
    fesetround(FE_UPWARD);
    return ret_round % 2 ? &xctx : &root;
}

static gr__ctx *x_entry(void *arg)
{
    CHECK(arg == &xctx, "X entry: arg %p, want %p", arg, (void *)&xctx);
    gr__ctx_switch(&xctx, &root); /* parked: the root resumes it later */
    for (;;) {
        unsigned round = ret_round;

        reg_fill(x_in, 0x3c00000000000000ull, round);
        fesetround(FE_TOWARDZERO);
        gr__ctx_init(&yctx);
        reg_start(&xctx, &yctx, ylo, STACK_SIZE, y_entry, &yctx, x_in, x_out);
        reg_compare(round % 2 ? "X, returned to by Y" : "X, after Y returned root", x_in, x_out);
        check_round("X after starting Y", FE_TOWARDZERO);
        if (round % 2)
            gr__ctx_switch(&xctx, &root);
    }
    return NULL; /* not reached */
}

static void test_regs_return(void)
{
    ylo = stack_new(STACK_SIZE);
    gr__ctx_init(&xctx);
    gr__ctx_start(&root, &xctx, stack_new(STACK_SIZE), STACK_SIZE, x_entry, &xctx);
    CHECK(gr__ctx_started(&xctx), "X not started after switching away");
    for (unsigned round = 0; round < REG_ROUNDS; round++) {
        ret_round = round;
        reg_fill(root_in, 0xc300000000000000ull, round);
        fesetround(FE_DOWNWARD);
        reg_switch(&root, &xctx, root_in, root_out);
        reg_compare(round % 2 ? "root, switched to by X" : "root, returned to by Y's entry",
                    root_in, root_out);
        check_round("root, Y finished", FE_DOWNWARD);
        CHECK(y_runs == round + 1, "round %u: Y ran %u times", round, y_runs);
    }
    fesetround(FE_TONEAREST);
}

/* ---- ping-pong: root <-> 3 contexts, then a ring of them ------------ */

#define PINGS 100000
static struct pp {
    gr__ctx ctx;
    int id;
    long runs;
} pp[3];
static int pp_turn; /* who must run next: 0-2 a context, 3 the root */
static int pp_ring; /* 0: back to root each time; 1: 0 -> 1 -> 2 -> root */

static gr__ctx *pp_entry(void *arg)
{
    struct pp *me = arg;
    long mine = 0; /* a local that must survive every switch too */

    CHECK(me == &pp[pp_turn], "pp entry: arg %p, want %p", arg, (void *)&pp[pp_turn]);
    check_aligned("pp entry");
    for (;;) {
        CHECK(pp_turn == me->id, "context %d ran on %d's turn", me->id, pp_turn);
        me->runs++;
        CHECK(++mine == me->runs, "context %d: local %ld, count %ld", me->id, mine, me->runs);
        if (pp_ring && me->id < 2) {
            pp_turn = me->id + 1;
            gr__ctx_switch(&me->ctx, &pp[me->id + 1].ctx);
        } else {
            pp_turn = 3;
            gr__ctx_switch(&me->ctx, &root);
        }
    }
    return NULL; /* not reached */
}

/* Like grove's scheduler: each context is started on its first turn and
 * switched to on later ones, as gr__ctx_started() tells. */
static void test_pingpong(void)
{
    for (int j = 0; j < 3; j++) {
        pp[j].id = j;
        gr__ctx_init(&pp[j].ctx);
        CHECK(!gr__ctx_started(&pp[j].ctx), "context %d started after init", j);
    }
    for (long i = 0; i < PINGS; i++) {
        struct pp *p = &pp[i % 3];

        pp_turn = (int)(i % 3);
        if (gr__ctx_started(&p->ctx)) {
            gr__ctx_switch(&root, &p->ctx);
        } else {
            CHECK(i < 3, "star %ld: context %d not started", i, p->id);
            gr__ctx_start(&root, &p->ctx, stack_new(STACK_SIZE), STACK_SIZE, pp_entry, p);
            CHECK(gr__ctx_started(&p->ctx), "context %d not started after switching away", p->id);
        }
        CHECK(pp_turn == 3, "star %ld: root resumed on %d's turn", i, pp_turn);
    }
    pp_ring = 1;
    for (long i = 0; i < PINGS; i++) {
        pp_turn = 0;
        gr__ctx_switch(&root, &pp[0].ctx);
        CHECK(pp_turn == 3, "ring %ld: root resumed on %d's turn", i, pp_turn);
    }
    for (int j = 0; j < 3; j++) {
        long want = PINGS / 3 + (j < PINGS % 3) + PINGS;
        CHECK(pp[j].runs == want, "context %d ran %ld times, want %ld", j, pp[j].runs, want);
    }
}

/* ---- floating-point control ------------------------------------------ */

/* How arithmetic really rounds: 5/3 lies 2/3 ulp above a double and -5/3
 * as far below, so the pair tells all four modes apart. volatile keeps the
 * compiler from folding the divisions, which assume round-to-nearest. */
static int arith_round(void)
{
    volatile double pos = 5.0, neg = -5.0, three = 3.0;
    double hi = pos / three, lo = neg / three;
    uint64_t h, l;

    memcpy(&h, &hi, sizeof h);
    memcpy(&l, &lo, sizeof l);
    int up = h == 0x3ffaaaaaaaaaaaabull;   /* +5/3 rounded away from 0 */
    int down = l == 0xbffaaaaaaaaaaaabull; /* -5/3 rounded away from 0 */
    return up ? (down ? FE_TONEAREST : FE_UPWARD) : (down ? FE_DOWNWARD : FE_TOWARDZERO);
}

/* Every copy of the rounding mode must agree with want: libm's view, the
 * raw control register(s) and the arithmetic itself. */
static void check_round(const char *who, int want)
{
    uint64_t ctl = fpctl_get();
    int libm = fegetround(), arith = arith_round();

    CHECK(libm == want, "%s: fegetround %#x, want %#x", who, libm, want);
#if defined(__x86_64__)
    int x87 = (int)(ctl >> 32 & 0xc00), sse = (int)(ctl >> 3 & 0xc00);
    CHECK(x87 == want, "%s: x87 rounding %#x, want %#x", who, x87, want);
    CHECK(sse == want, "%s: MXCSR rounding %#x, want %#x", who, sse, want);
#else
    int fpcr = (int)(ctl & 0xc00000);
    CHECK(fpcr == want, "%s: FPCR rounding %#x, want %#x", who, fpcr, want);
#endif
    CHECK(arith == want, "%s: arithmetic rounds %#x, want %#x", who, arith, want);
}

/* A new context starts in the default state, whatever its starter had. */
static void check_default(const char *who)
{
    uint64_t ctl = fpctl_get();

    check_round(who, FE_TONEAREST);
    CHECK(ctl == FPCTL_DEFAULT, "%s: FP control %#llx, want the default %#llx", who, ULL(ctl),
          ULL(FPCTL_DEFAULT));
}

/* C is started by the root in an odd state and comes straight back. Then
 * root -> A -> B -> A -> B -> C -> A -> root, where A starts B; fp_step
 * proves the order. Each arrow moves between different modes, so every
 * one must reload. */
static gr__ctx fa, fb, fc, fd;
static int fp_step;
static uint64_t fd_want;

static gr__ctx *fp_b(void *arg);

static gr__ctx *fp_a(void *arg)
{
    (void)arg;
    CHECK(fp_step++ == 1, "A started out of order");
    check_default("A at start");
    fesetround(FE_UPWARD);
    gr__ctx_init(&fb);
    gr__ctx_start(&fa, &fb, stack_new(STACK_SIZE), STACK_SIZE, fp_b, NULL);
    CHECK(fp_step++ == 3, "A resumed out of order");
    check_round("A resumed", FE_UPWARD);
    gr__ctx_switch(&fa, &fb);
    CHECK(fp_step++ == 6, "A resumed out of order");
    check_round("A resumed again", FE_UPWARD);
    gr__ctx_switch(&fa, &root);
    CHECK(0, "A resumed after its last switch");
    return &root;
}

static gr__ctx *fp_b(void *arg)
{
    (void)arg;
    CHECK(fp_step++ == 2, "B started out of order");
    check_default("B at start, started by A in FE_UPWARD");
    fesetround(FE_TOWARDZERO);
    gr__ctx_switch(&fb, &fa);
    CHECK(fp_step++ == 4, "B resumed out of order");
    check_round("B resumed", FE_TOWARDZERO);
    gr__ctx_switch(&fb, &fc);
    CHECK(0, "B resumed after its last switch");
    return &root;
}

static gr__ctx *fp_c(void *arg)
{
    (void)arg;
    CHECK(fp_step++ == 0, "C started out of order");
    check_default("C at start, started by the root in FE_DOWNWARD");
    gr__ctx_switch(&fc, &root);
    CHECK(fp_step++ == 5, "C resumed out of order");
    check_default("C resumed"); /* its own: B's FE_TOWARDZERO before */
    gr__ctx_switch(&fc, &fa);
    CHECK(0, "C resumed after its last switch");
    return &root;
}

static gr__ctx *fp_d(void *arg)
{
    (void)arg;
    check_default("D at start");
    for (;;) {
        uint64_t ctl = fpctl_get();
        CHECK(ctl == fd_want, "D: FP control %#llx, want %#llx", ULL(ctl), ULL(fd_want));
        gr__ctx_switch(&fd, &root);
    }
    return NULL; /* not reached */
}

static void test_fpctl(void)
{
    uint64_t ctl0, odd, ctl;

    /* Clear the flags first, so that on x86 MXCSR compares equal below
     * wherever only the x87 control word differs. */
    feclearexcept(FE_ALL_EXCEPT);
    ctl0 = fpctl_get();
    CHECK(ctl0 == FPCTL_DEFAULT, "root: FP control %#llx at start, want %#llx", ULL(ctl0),
          ULL(FPCTL_DEFAULT));
    check_round("root at start", FE_TONEAREST);

    fesetround(FE_DOWNWARD);
    fpctl_set(fpctl_get() ^ FPCTL_OTHER ^ FPCTL_ODD);
    odd = fpctl_get(); /* what the hardware kept of it */
    gr__ctx_init(&fc);
    gr__ctx_start(&root, &fc, stack_new(STACK_SIZE), STACK_SIZE, fp_c, NULL);
    ctl = fpctl_get();
    CHECK(ctl == odd, "root after starting C: FP control %#llx, want %#llx", ULL(ctl), ULL(odd));
    check_round("root after starting C", FE_DOWNWARD);
    fpctl_set(ctl0);

    gr__ctx_init(&fa);
    gr__ctx_start(&root, &fa, stack_new(STACK_SIZE), STACK_SIZE, fp_a, NULL);
    CHECK(fp_step == 7, "FP sequence stopped at step %d", fp_step);
    check_round("root after", FE_TONEAREST);

    /* A control bit other than rounding, changed only in the root. */
    fd_want = ctl0;
    gr__ctx_init(&fd);
    gr__ctx_start(&root, &fd, stack_new(STACK_SIZE), STACK_SIZE, fp_d, NULL);
    fpctl_set(ctl0 ^ FPCTL_OTHER);
    gr__ctx_switch(&root, &fd);
    ctl = fpctl_get();
    CHECK(ctl == (ctl0 ^ FPCTL_OTHER), "root: FP control %#llx, want %#llx", ULL(ctl),
          ULL(ctl0 ^ FPCTL_OTHER));
    fpctl_set(ctl0);
}

/* An entry that leaves its own FP state and returns: whoever is resumed
 * gets back exactly its own, the root started E, or E2 which E started
 * and returned to. */
static gr__ctx fe, fe2;
static uint64_t fe2_odd;

static gr__ctx *fp_e2(void *arg)
{
    (void)arg;
    check_default("E2 at start, started by E in FE_TOWARDZERO");
    fesetround(FE_UPWARD);
    return &fe;
}

static gr__ctx *fp_e(void *arg)
{
    uint64_t ctl;

    (void)arg;
    check_default("E at start");
    fesetround(FE_TOWARDZERO);
    fpctl_set(fpctl_get() ^ FPCTL_OTHER);
    fe2_odd = fpctl_get();
    gr__ctx_init(&fe2);
    gr__ctx_start(&fe, &fe2, stack_new(STACK_SIZE), STACK_SIZE, fp_e2, NULL);
    ctl = fpctl_get();
    CHECK(ctl == fe2_odd, "E, returned to by E2: FP control %#llx, want %#llx", ULL(ctl),
          ULL(fe2_odd));
    check_round("E, returned to by E2", FE_TOWARDZERO);
    fesetround(FE_UPWARD);
    return &root;
}

static void test_fpctl_return(void)
{
    uint64_t ctl0 = fpctl_get(), odd, ctl;

    fesetround(FE_DOWNWARD);
    fpctl_set(fpctl_get() ^ FPCTL_ODD);
    odd = fpctl_get();
    gr__ctx_init(&fe);
    gr__ctx_start(&root, &fe, stack_new(STACK_SIZE), STACK_SIZE, fp_e, NULL);
    ctl = fpctl_get();
    CHECK(ctl == odd, "root, returned to by E: FP control %#llx, want %#llx", ULL(ctl), ULL(odd));
    check_round("root, returned to by E", FE_DOWNWARD);
    fpctl_set(ctl0);
}

/* ---- deep recursion on a green stack ---------------------------------- */

#if defined(__SANITIZE_ADDRESS__) /* gcc's spelling, clang's below */
#define DEEP_SIZE (4u << 20)      /* redzones make frames ~3x larger */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEEP_SIZE (4u << 20)
#endif
#endif
#ifndef DEEP_SIZE
#define DEEP_SIZE (1u << 20)
#endif
#define DEPTH 10000
#define DEEP_ARG ((void *)(uintptr_t)0xfedcba9876543210ull) /* all 64 bits */
static gr__ctx deepctx;
static uintptr_t deep_sp;
static uint64_t deep_sum;
static int deep_done;

static uint64_t frame_value(unsigned n)
{
    return n * 0x9e3779b97f4a7c15ull ^ n >> 3;
}

/* Each frame keeps its value in a volatile local, in memory on the green
 * stack, and uses it only after the call below returns, so the whole
 * chain must survive the switch out from the deepest frame. */
__attribute__((noinline)) static uint64_t recurse(unsigned n)
{
    volatile uint64_t mine = frame_value(n);
    uint64_t below = 0;

    if (n == 0) {
        deep_sp = sp_at_call();
        gr__ctx_switch(&deepctx, &root);
    } else {
        below = recurse(n - 1);
    }
    return below * 31 + mine;
}

/* Returns the root: it resumes in its gr__ctx_switch. */
static gr__ctx *deep_entry(void *arg)
{
    CHECK(arg == DEEP_ARG, "deep entry: arg %p, want %p", arg, DEEP_ARG);
    check_aligned("deep entry");
    deep_sum = recurse(DEPTH);
    deep_done = 1;
    return &root;
}

/* Dirties the root stack while the deep context is parked. */
__attribute__((noinline)) static void scribble(void)
{
    volatile unsigned char buf[32768];

    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)i;
}

static void test_deep(void)
{
    char *lo = stack_new(DEEP_SIZE);
    uint64_t want = 0;

    gr__ctx_init(&deepctx);
    gr__ctx_start(&root, &deepctx, lo, DEEP_SIZE, deep_entry, DEEP_ARG);
    CHECK(!deep_done, "deep context finished without switching out");
    /* Proves the recursion really ran, unflattened, on this stack. */
    CHECK(deep_sp > (uintptr_t)lo && (uintptr_t)lo + DEEP_SIZE - deep_sp >= DEPTH * 16u,
          "deepest sp %#llx, stack [%p, +%#x)", ULL(deep_sp), (void *)lo, DEEP_SIZE);
    CHECK(deep_sp % 16 == 0, "deepest sp %#llx misaligned", ULL(deep_sp));
    scribble();
    gr__ctx_switch(&root, &deepctx);
    CHECK(deep_done, "deep context did not finish");
    for (unsigned n = 0; n <= DEPTH; n++)
        want = want * 31 + frame_value(n);
    CHECK(deep_sum == want, "deep checksum %#llx, want %#llx", ULL(deep_sum), ULL(want));
}

/* ---- the return protocol -------------------------------------------- */

/* ret_step proves the order of each sequence. */
static gr__ctx ra, rb, rp, rq;
static int ret_step;

/* 1. A's entry returns the root: the root continues after its
 *    gr__ctx_start. */
static gr__ctx *ra_root(void *arg)
{
    CHECK(arg == &ra, "A entry: arg %p, want %p", arg, (void *)&ra);
    CHECK(ret_step++ == 0, "A ran out of order");
    return &root;
}

/* 2. B parks; A's entry (A restarted on its old stack) returns B, which
 *    resumes in its gr__ctx_switch and switches to the root, which
 *    continues after its gr__ctx_start of A. Then the root switches to B,
 *    whose entry returns the root: it continues after that switch. */
static gr__ctx *ra_b(void *arg)
{
    CHECK(arg == &ra, "A entry: arg %p, want %p", arg, (void *)&ra);
    CHECK(ret_step++ == 2, "A ran out of order, the second time");
    return &rb;
}

static gr__ctx *rb_entry(void *arg)
{
    CHECK(arg == &rb, "B entry: arg %p, want %p", arg, (void *)&rb);
    CHECK(ret_step++ == 1, "B started out of order");
    gr__ctx_switch(&rb, &root);
    CHECK(ret_step++ == 3, "B resumed out of order");
    gr__ctx_switch(&rb, &root);
    CHECK(ret_step++ == 5, "B resumed out of order, the second time");
    return &root;
}

/* 3. The root starts P, P starts Q, Q returns P, which continues after its
 *    gr__ctx_start and returns the root. */
static gr__ctx *rq_entry(void *arg)
{
    CHECK(arg == &rq, "Q entry: arg %p, want %p", arg, (void *)&rq);
    CHECK(ret_step++ == 7, "Q ran out of order");
    check_aligned("Q entry");
    return &rp;
}

static gr__ctx *rp_entry(void *arg)
{
    volatile int mine = 77;

    CHECK(arg == &rp, "P entry: arg %p, want %p", arg, (void *)&rp);
    CHECK(ret_step++ == 6, "P ran out of order");
    gr__ctx_init(&rq);
    gr__ctx_start(&rp, &rq, stack_new(STACK_SIZE), STACK_SIZE, rq_entry, &rq);
    CHECK(ret_step++ == 8, "P resumed out of order");
    CHECK(mine == 77, "P's local is %d after Q returned, want 77", mine);
    return &root;
}

static void test_return(void)
{
    volatile int mine = 42;
    char *alo = stack_new(STACK_SIZE);

    gr__ctx_init(&ra);
    gr__ctx_start(&root, &ra, alo, STACK_SIZE, ra_root, &ra);
    CHECK(ret_step == 1, "root resumed at step %d, want 1", ret_step);
    CHECK(gr__ctx_started(&root), "root not started after switching away");

    gr__ctx_init(&rb);
    gr__ctx_start(&root, &rb, stack_new(STACK_SIZE), STACK_SIZE, rb_entry, &rb);
    CHECK(ret_step == 2, "root resumed at step %d, want 2", ret_step);
    CHECK(gr__ctx_started(&rb), "B not started after switching away");
    gr__ctx_init(&ra);
    gr__ctx_start(&root, &ra, alo, STACK_SIZE, ra_b, &ra);
    CHECK(ret_step++ == 4, "root resumed at step %d, want 4", ret_step - 1);
    gr__ctx_switch(&root, &rb);
    CHECK(ret_step == 6, "root resumed at step %d, want 6", ret_step);

    gr__ctx_init(&rp);
    gr__ctx_start(&root, &rp, stack_new(STACK_SIZE), STACK_SIZE, rp_entry, &rp);
    CHECK(ret_step == 9, "root resumed at step %d, want 9", ret_step);
    CHECK(mine == 42, "root's local is %d, want 42", mine);
}

/* ---- stack reuse, stack top -------------------------------------------- */

/* R is started again and again on one stack, as grove reuses stacks: each
 * time re-initialised, started, switched away from once and resumed, and
 * finished by returning the root. The size shrinks by 0-15 bytes in turn:
 * ctx.h asks for an aligned top, but every implementation rounds it down,
 * and the entry must find sp aligned, within the stack, near its top, and
 * the same for the same size each time. */
#define REUSE_ROUNDS 48
static gr__ctx rr;
static char *rlo;
static size_t rsize;
static uintptr_t r_sp[16];
static int r_phase;

static gr__ctx *rr_entry(void *arg)
{
    unsigned k = (unsigned)(uintptr_t)arg % 16, round = (unsigned)(uintptr_t)arg;
    uintptr_t sp = sp_at_call(), top = (uintptr_t)rlo + rsize;

    check_aligned("R entry");
    CHECK(sp < top && top - sp <= 512, "R round %u: entry sp %#llx, stack top %#llx", round,
          ULL(sp), ULL(top));
    if (round < 16)
        r_sp[k] = sp;
    else
        CHECK(sp == r_sp[k], "R round %u: entry sp %#llx, was %#llx", round, ULL(sp), ULL(r_sp[k]));
    CHECK(r_phase++ == 0, "R round %u: started out of order", round);
    gr__ctx_switch(&rr, &root);
    CHECK(r_phase++ == 1, "R round %u: resumed out of order", round);
    return &root;
}

static void test_reuse(void)
{
    rlo = stack_new(STACK_SIZE);
    for (unsigned round = 0; round < REUSE_ROUNDS; round++) {
        rsize = STACK_SIZE - round % 16;
        r_phase = 0;
        gr__ctx_init(&rr);
        CHECK(!gr__ctx_started(&rr), "R round %u: started after init", round);
        gr__ctx_start(&root, &rr, rlo, rsize, rr_entry, (void *)(uintptr_t)round);
        CHECK(r_phase == 1, "R round %u: root resumed at phase %d", round, r_phase);
        CHECK(gr__ctx_started(&rr), "R round %u: not started after switching away", round);
        gr__ctx_switch(&root, &rr);
        CHECK(r_phase == 2, "R round %u: root resumed at phase %d, want 2", round, r_phase);
    }
}

/* ---- where backtraces end ---------------------------------------------- */

/* With the root's frame pointer loaded with garbage, the new context's
 * first frame must be called with a frame pointer that is zero or points
 * at a zero frame record on its own stack, so that frame-pointer walkers
 * (perf, sanitizers' fast unwinders) stop there. The ucontext fallback
 * leaves that to glibc. */
#if !defined(GR_CTX_UCONTEXT)
static gr__ctx fpctx;
static char *fplo;

gr__ctx *fp_probe_c(void *arg)
{
    uintptr_t fp = fp_probe_fp, top = (uintptr_t)fplo + STACK_SIZE;

    CHECK(arg == &fpctx, "probe entry: arg %p, want %p", arg, (void *)&fpctx);
    if (fp != 0) {
        CHECK(fp > (uintptr_t)fplo && fp < top && fp % 8 == 0,
              "new context's fp %#llx: neither zero nor on its stack", ULL(fp));
        if (fp > (uintptr_t)fplo && fp < top && fp % 8 == 0)
            CHECK(*(uintptr_t *)fp == 0, "new context's fp %#llx: its record links to %#llx, not 0",
                  ULL(fp), ULL(*(uintptr_t *)fp));
    }
    return &root;
}

static void test_frame_end(void)
{
    fplo = stack_new(STACK_SIZE);
    reg_fill(root_in, 0x6900000000000000ull, 0);
    CHECK(root_in[REG_FP] != 0, "the garbage frame pointer is zero");
    gr__ctx_init(&fpctx);
    reg_start(&root, &fpctx, fplo, STACK_SIZE, fp_probe_entry, &fpctx, root_in, root_out);
    reg_compare("root, returned to by the probe", root_in, root_out);
}
#else
gr__ctx *fp_probe_c(void *arg)
{
    return arg;
}

static void test_frame_end(void)
{
}
#endif

int main(void)
{
    /* A broken switch can corrupt a loop counter as easily as crash: the
     * watchdog turns either into a failed exit naming the test. */
    watchdog();
    check_aligned("main");
    gr__ctx_init(&root);
    CHECK(!gr__ctx_started(&root), "root started after init");
    /* Registers first: a broken save derails whatever C code runs next,
     * and this test names the register before that happens. */
    phase = "regs";
    test_regs();
    phase = "regs_return";
    test_regs_return();
    phase = "pingpong";
    test_pingpong();
    phase = "fpctl";
    test_fpctl();
    phase = "fpctl_return";
    test_fpctl_return();
    phase = "deep";
    test_deep();
    phase = "return";
    test_return();
    phase = "reuse";
    test_reuse();
    phase = "frame_end";
    test_frame_end();
    phase = "report";
    if (failures) {
        printf("ctx selfcheck (%s): %d check(s) failed\n", gr__ctx_impl(), failures);
        return 1;
    }
    printf("ctx selfcheck (%s): ok\n", gr__ctx_impl());
    return 0;
}
