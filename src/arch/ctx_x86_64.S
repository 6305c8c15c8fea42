/* Context switch for x86-64, System V ABI (contract in ctx.h).
 *
 * Frame saved on the outgoing stack, lowest address first (sp points here):
 *   +0  MXCSR (4 bytes), x87 control word (2 bytes), padding
 *   +8  r15, +16 r14, +24 r13, +32 r12, +40 rbx, +48 rbp
 *   +56 return address
 * gr__ctx_switch and gr__ctx_start both leave this frame, so a context
 * suspended in either is resumed the same way. */

    .text

/* Save the callee-saved state on the stack and the stack pointer in
 * (%rdi). */
.macro SAVE_FRAME
    pushq   %rbp
    pushq   %rbx
    pushq   %r12
    pushq   %r13
    pushq   %r14
    pushq   %r15
    subq    $8, %rsp
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movq    %rsp, (%rdi)
.endm

/* Resume the context whose stack pointer is in \ctx. The control registers
 * are loaded unconditionally: comparing first would read back the value
 * stmxcsr just stored, a store-forwarding stall dearer than the loads. */
.macro RESUME ctx
    movq    (\ctx), %rsp
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    addq    $8, %rsp
    popq    %r15
    popq    %r14
    popq    %r13
    popq    %r12
    popq    %rbx
    popq    %rbp
    ret
.endm

/* void gr__ctx_switch(gr__ctx *from, gr__ctx *to) */
    .globl  gr__ctx_switch
    .hidden gr__ctx_switch
    .type   gr__ctx_switch, @function
    .p2align 4
gr__ctx_switch:
    .cfi_startproc
    endbr64
    SAVE_FRAME
    RESUME  %rsi
    .cfi_endproc
    .size   gr__ctx_switch, .-gr__ctx_switch

/* void gr__ctx_start(gr__ctx *from, gr__ctx *to, void *stack_lo,
 *                    size_t stack_size, gr__ctx_entry entry, void *arg) */
    .globl  gr__ctx_start
    .hidden gr__ctx_start
    .type   gr__ctx_start, @function
    .p2align 4
gr__ctx_start:
    .cfi_startproc
    endbr64
    SAVE_FRAME
    leaq    (%rdx, %rcx), %rsp
    andq    $-16, %rsp
    /* On the new stack: unwinders stop here, nothing called us. */
    .cfi_undefined rip
    pushq   $0                      /* keeps %rsp 16-byte aligned at the call */
    pushq   $0
    xorl    %ebp, %ebp              /* and frame-pointer walks too */
    ldmxcsr default_mxcsr(%rip)
    fldcw   default_x87cw(%rip)
    movq    %r9, %rdi
    callq   *%r8
    /* entry returned: this context is finished; resume the one it named. */
    RESUME  %rax
    .cfi_endproc
    .size   gr__ctx_start, .-gr__ctx_start

    .section .rodata
    .p2align 2
default_mxcsr:
    .long   0x1f80                  /* all exceptions masked, round to nearest */
default_x87cw:
    .short  0x037f                  /* the same for x87, extended precision */

    .section .note.GNU-stack,"",@progbits
