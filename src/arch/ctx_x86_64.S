/* Context switch for x86-64, System V ABI.
 *
 * Frame saved on the outgoing stack, lowest address first (sp points here):
 *   +0  MXCSR (4 bytes), x87 control word (2 bytes), padding
 *   +8  r15, +16 r14, +24 r13, +32 r12, +40 rbx, +48 rbp
 *   +56 return address
 * gr__ctx_make (ctx_x86_64.c) builds the same frame for a new context, with
 * the return address pointing at gr__ctx_trampoline. */

    .text

/* void gr__ctx_switch(gr__ctx *from, gr__ctx *to) */
    .globl  gr__ctx_switch
    .hidden gr__ctx_switch
    .type   gr__ctx_switch, @function
    .p2align 4
gr__ctx_switch:
    .cfi_startproc
    endbr64
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
    movq    (%rsi), %rsp
    /* Unconditional loads: comparing first would read back the value
     * stmxcsr just stored, a store-forwarding stall dearer than the loads. */
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
    .cfi_endproc
    .size   gr__ctx_switch, .-gr__ctx_switch

/* First code run by a new context: entry (rbx) is called with arg (r12).
 * The stack above holds a zero return address and the CFI marks rip as
 * undefined, so debuggers end their backtraces here. */
    .globl  gr__ctx_trampoline
    .hidden gr__ctx_trampoline
    .type   gr__ctx_trampoline, @function
    .p2align 4
gr__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    endbr64
    movq    %r12, %rdi
    callq   *%rbx
    ud2
    .cfi_endproc
    .size   gr__ctx_trampoline, .-gr__ctx_trampoline

    .section .note.GNU-stack,"",@progbits
