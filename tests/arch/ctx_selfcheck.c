/* Self-check of the context-switch layer alone (src/arch), without the rest
 * of grove or Criterion, so that it also runs on a cross target under
 * qemu-user. Build it with exactly one implementation, e.g.
 *   cc -O2 -I src/arch tests/arch/ctx_selfcheck.c src/arch/ctx_aarch64.S \
 *      src/arch/ctx_aarch64.c -lm
 * (with -DGR_CTX_UCONTEXT when the implementation is ctx_ucontext.c). It
 * prints "ctx selfcheck (<impl>): ok" and exits 0, or lists the failed
 * checks and exits 1. */
#define _GNU_SOURCE /* mmap's MAP_ANONYMOUS under a strict -std */
#include "ctx.h"

#include <fenv.h>
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
#define CHECK(cond, ...)                                                     \
    do {                                                                     \
        if (!(cond) && ++failures <= 20) {                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);             \
            fprintf(stderr, __VA_ARGS__);                                    \
            fputc('\n', stderr);                                             \
        }                                                                    \
    } while (0)
#define ULL(x) ((unsigned long long)(x))

#define STACK_SIZE (64u << 10)

static gr__ctx root; /* main's context, saved whenever it switches away */

/* Stacks come from mmap, like grove's own, with a PROT_NONE guard page
 * below so that an overflow faults instead of corrupting memory. They are
 * never freed: the contexts are left suspended and the process ends soon. */
static void *stack_new(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *p = mmap(NULL, size + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    if (p == MAP_FAILED || mprotect(p, page, PROT_NONE) != 0) {
        perror("ctx selfcheck: stack");
        exit(1);
    }
    return p + page;
}

/* reg_switch(from, to, in, out) loads in[] into every callee-saved
 * register, calls gr__ctx_switch(from, to) and, once switched back to,
 * stores those registers to out[] before restoring its caller's. It is
 * top-level asm so the compiler can neither keep the values elsewhere nor
 * reload them for us: only the switch can carry them across. sp_at_call()
 * returns the stack pointer at its call site, which the ABI requires to be
 * 16-byte aligned. */
void reg_switch(gr__ctx *from, gr__ctx *to, const uint64_t *in, uint64_t *out)
    __attribute__((visibility("hidden")));
uintptr_t sp_at_call(void) __attribute__((visibility("hidden")));
#define ASM_FN(name, type)                                                   \
    ".globl " name "\n.hidden " name "\n.type " name ", " type "\n"          \
    ".p2align 4\n" name ":\n"

#if defined(__x86_64__)
#define NREGS 6
static const char *const reg_name[NREGS] = {"rbx", "rbp", "r12",
                                            "r13", "r14", "r15"};
__asm__(".pushsection .text\n" ASM_FN("reg_switch", "@function")
        "push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15\n"
        "push %rcx\n" /* out, kept on our own stack; 16-aligns rsp too */
        "mov (%rdx), %rbx; mov 8(%rdx), %rbp; mov 16(%rdx), %r12\n"
        "mov 24(%rdx), %r13; mov 32(%rdx), %r14; mov 40(%rdx), %r15\n"
        "call gr__ctx_switch@PLT\n"
        "pop %rax\n"
        "mov %rbx, (%rax); mov %rbp, 8(%rax); mov %r12, 16(%rax)\n"
        "mov %r13, 24(%rax); mov %r14, 32(%rax); mov %r15, 40(%rax)\n"
        "pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx\n"
        "ret\n.size reg_switch, .-reg_switch\n"
        ASM_FN("sp_at_call", "@function")
        "lea 8(%rsp), %rax; ret\n" /* above the return address */
        ".size sp_at_call, .-sp_at_call\n.popsection\n");

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
#else /* __aarch64__ */
#define NREGS 19
static const char *const reg_name[NREGS] = {
    "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
    "x29", "d8",  "d9",  "d10", "d11", "d12", "d13", "d14", "d15"};
/* in[] and out[] hold x19-x29 then d8-d15; our own 176-byte frame holds
 * the caller's x29, x30, x19-x28, d8-d15, then out at sp+160. */
__asm__(".pushsection .text\n" ASM_FN("reg_switch", "%function")
        "stp x29, x30, [sp, #-176]!\n"
        "stp x19, x20, [sp, #16];  stp x21, x22, [sp, #32]\n"
        "stp x23, x24, [sp, #48];  stp x25, x26, [sp, #64]\n"
        "stp x27, x28, [sp, #80];  stp d8, d9, [sp, #96]\n"
        "stp d10, d11, [sp, #112]; stp d12, d13, [sp, #128]\n"
        "stp d14, d15, [sp, #144]; str x3, [sp, #160]\n"
        "ldp x19, x20, [x2];       ldp x21, x22, [x2, #16]\n"
        "ldp x23, x24, [x2, #32];  ldp x25, x26, [x2, #48]\n"
        "ldp x27, x28, [x2, #64];  ldr x29, [x2, #80]\n"
        "ldp d8, d9, [x2, #88];    ldp d10, d11, [x2, #104]\n"
        "ldp d12, d13, [x2, #120]; ldp d14, d15, [x2, #136]\n"
        "bl gr__ctx_switch\n"
        "ldr x9, [sp, #160]\n"
        "stp x19, x20, [x9];       stp x21, x22, [x9, #16]\n"
        "stp x23, x24, [x9, #32];  stp x25, x26, [x9, #48]\n"
        "stp x27, x28, [x9, #64];  str x29, [x9, #80]\n"
        "stp d8, d9, [x9, #88];    stp d10, d11, [x9, #104]\n"
        "stp d12, d13, [x9, #120]; stp d14, d15, [x9, #136]\n"
        "ldp x19, x20, [sp, #16];  ldp x21, x22, [sp, #32]\n"
        "ldp x23, x24, [sp, #48];  ldp x25, x26, [sp, #64]\n"
        "ldp x27, x28, [sp, #80];  ldp d8, d9, [sp, #96]\n"
        "ldp d10, d11, [sp, #112]; ldp d12, d13, [sp, #128]\n"
        "ldp d14, d15, [sp, #144]; ldp x29, x30, [sp], #176\n"
        "ret\n.size reg_switch, .-reg_switch\n"
        ASM_FN("sp_at_call", "%function")
        "mov x0, sp; ret\n" /* bl does not move sp */
        ".size sp_at_call, .-sp_at_call\n.popsection\n");

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
        v[i] = tag ^ (uint64_t)(i + 1) << 40 ^ (uint64_t)round << 8 ^
               (uint64_t)(i + 1);
}

static void reg_compare(const char *who, const uint64_t *in,
                        const uint64_t *out)
{
    for (int i = 0; i < NREGS; i++)
        CHECK(out[i] == in[i], "%s: %s is %#llx after a switch, want %#llx",
              who, reg_name[i], ULL(out[i]), ULL(in[i]));
}

/* The other side: loads its own values into the same registers before
 * switching back, so any register the switch fails to save or restore
 * comes back to the root holding this context's value, and vice versa. */
static void reg_entry(void *arg)
{
    CHECK(arg == &regctx, "reg entry: arg %p, want %p", arg, (void *)&regctx);
    for (unsigned round = 0;; round++) {
        reg_fill(ctx_in, 0x5a00000000000000ull, round);
        reg_switch(&regctx, &root, ctx_in, ctx_out);
        reg_compare("context", ctx_in, ctx_out);
    }
}

static void test_regs(void)
{
    gr__ctx_make(&regctx, stack_new(STACK_SIZE), STACK_SIZE, reg_entry,
                 &regctx);
    for (unsigned round = 0; round < REG_ROUNDS; round++) {
        reg_fill(root_in, 0xa500000000000000ull, round);
        reg_switch(&root, &regctx, root_in, root_out);
        reg_compare("root", root_in, root_out);
    }
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

static void pp_entry(void *arg)
{
    struct pp *me = arg;
    long mine = 0; /* a local that must survive every switch too */

    CHECK(me == &pp[pp_turn], "pp entry: arg %p, want %p", arg,
          (void *)&pp[pp_turn]);
    check_aligned("pp entry");
    for (;;) {
        CHECK(pp_turn == me->id, "context %d ran on %d's turn", me->id,
              pp_turn);
        me->runs++;
        CHECK(++mine == me->runs, "context %d: local %ld, count %ld", me->id,
              mine, me->runs);
        if (pp_ring && me->id < 2) {
            pp_turn = me->id + 1;
            gr__ctx_switch(&me->ctx, &pp[me->id + 1].ctx);
        } else {
            pp_turn = 3;
            gr__ctx_switch(&me->ctx, &root);
        }
    }
}

static void test_pingpong(void)
{
    for (int j = 0; j < 3; j++) {
        pp[j].id = j;
        gr__ctx_make(&pp[j].ctx, stack_new(STACK_SIZE), STACK_SIZE, pp_entry,
                     &pp[j]);
    }
    for (long i = 0; i < PINGS; i++) {
        pp_turn = (int)(i % 3);
        gr__ctx_switch(&root, &pp[i % 3].ctx);
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
        CHECK(pp[j].runs == want, "context %d ran %ld times, want %ld", j,
              pp[j].runs, want);
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
    return up ? (down ? FE_TONEAREST : FE_UPWARD)
              : (down ? FE_DOWNWARD : FE_TOWARDZERO);
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
    CHECK(arith == want, "%s: arithmetic rounds %#x, want %#x", who, arith,
          want);
}

/* root -> A -> B -> A -> B -> C -> A -> root; fp_step proves the order.
 * Each arrow moves between different modes, so every one must reload. */
static gr__ctx fa, fb, fc, fd;
static int fp_step;
static uint64_t fd_want;

static void fp_a(void *arg)
{
    (void)arg;
    CHECK(fp_step++ == 0, "A started out of order");
    check_round("A at start", FE_TONEAREST); /* inherited at creation */
    fesetround(FE_UPWARD);
    gr__ctx_switch(&fa, &fb);
    CHECK(fp_step++ == 2, "A resumed out of order");
    check_round("A resumed", FE_UPWARD);
    gr__ctx_switch(&fa, &fb);
    CHECK(fp_step++ == 5, "A resumed out of order");
    check_round("A resumed again", FE_UPWARD);
    gr__ctx_switch(&fa, &root);
}

static void fp_b(void *arg)
{
    (void)arg;
    CHECK(fp_step++ == 1, "B started out of order");
    check_round("B at start", FE_TONEAREST); /* not A's FE_UPWARD */
    fesetround(FE_TOWARDZERO);
    gr__ctx_switch(&fb, &fa);
    CHECK(fp_step++ == 3, "B resumed out of order");
    check_round("B resumed", FE_TOWARDZERO);
    gr__ctx_switch(&fb, &fc);
}

static void fp_c(void *arg)
{
    (void)arg;
    CHECK(fp_step++ == 4, "C started out of order");
    check_round("C at start", FE_DOWNWARD); /* the root's mode at creation */
    gr__ctx_switch(&fc, &fa);
}

static void fp_d(void *arg)
{
    (void)arg;
    uint64_t ctl = fpctl_get();
    CHECK(ctl == fd_want, "D: FP control %#llx, want %#llx", ULL(ctl),
          ULL(fd_want));
    gr__ctx_switch(&fd, &root);
}

static void test_fpctl(void)
{
    check_round("root at start", FE_TONEAREST);
    fesetround(FE_DOWNWARD);
    gr__ctx_make(&fc, stack_new(STACK_SIZE), STACK_SIZE, fp_c, NULL);
    fesetround(FE_TONEAREST);
    gr__ctx_make(&fa, stack_new(STACK_SIZE), STACK_SIZE, fp_a, NULL);
    gr__ctx_make(&fb, stack_new(STACK_SIZE), STACK_SIZE, fp_b, NULL);
    gr__ctx_switch(&root, &fa);
    CHECK(fp_step == 6, "FP sequence stopped at step %d", fp_step);
    check_round("root after", FE_TONEAREST);

    /* A control bit other than rounding, changed only in the root; clear
     * the flags first so that on x86 MXCSR compares equal and only the
     * x87 control word differs. */
    feclearexcept(FE_ALL_EXCEPT);
    uint64_t ctl0 = fd_want = fpctl_get(), ctl;
    gr__ctx_make(&fd, stack_new(STACK_SIZE), STACK_SIZE, fp_d, NULL);
    fpctl_set(ctl0 ^ FPCTL_OTHER);
    gr__ctx_switch(&root, &fd);
    ctl = fpctl_get();
    CHECK(ctl == (ctl0 ^ FPCTL_OTHER), "root: FP control %#llx, want %#llx",
          ULL(ctl), ULL(ctl0 ^ FPCTL_OTHER));
    fpctl_set(ctl0);
}

/* ---- deep recursion on a green stack ---------------------------------- */

#if defined(__SANITIZE_ADDRESS__) /* gcc's spelling, clang's below */
#define DEEP_SIZE (4u << 20)         /* redzones make frames ~3x larger */
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

static void deep_entry(void *arg)
{
    CHECK(arg == DEEP_ARG, "deep entry: arg %p, want %p", arg, DEEP_ARG);
    check_aligned("deep entry");
    deep_sum = recurse(DEPTH);
    deep_done = 1;
    gr__ctx_switch(&deepctx, &root);
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

    gr__ctx_make(&deepctx, lo, DEEP_SIZE, deep_entry, DEEP_ARG);
    gr__ctx_switch(&root, &deepctx);
    CHECK(!deep_done, "deep context finished without switching out");
    /* Proves the recursion really ran, unflattened, on this stack. */
    CHECK(deep_sp > (uintptr_t)lo &&
              (uintptr_t)lo + DEEP_SIZE - deep_sp >= DEPTH * 16u,
          "deepest sp %#llx, stack [%p, +%#x)", ULL(deep_sp), (void *)lo,
          DEEP_SIZE);
    CHECK(deep_sp % 16 == 0, "deepest sp %#llx misaligned", ULL(deep_sp));
    scribble();
    gr__ctx_switch(&root, &deepctx);
    CHECK(deep_done, "deep context did not finish");
    for (unsigned n = 0; n <= DEPTH; n++)
        want = want * 31 + frame_value(n);
    CHECK(deep_sum == want, "deep checksum %#llx, want %#llx", ULL(deep_sum),
          ULL(want));
}

int main(void)
{
    /* A broken switch can corrupt a loop counter as easily as crash; the
     * default SIGALRM action turns such a hang into a failed exit. */
    alarm(30);
    check_aligned("main");
    /* Registers first: a broken save derails whatever C code runs next,
     * and this test names the register before that happens. */
    test_regs();
    test_pingpong();
    test_fpctl();
    test_deep();
    if (failures) {
        printf("ctx selfcheck (%s): %d check(s) failed\n", gr__ctx_impl(),
               failures);
        return 1;
    }
    printf("ctx selfcheck (%s): ok\n", gr__ctx_impl());
    return 0;
}
