/* Context switch for aarch64, AAPCS64 (contract in ctx.h).
 *
 * Frame saved on the outgoing stack, lowest address first (sp points here,
 * and stays 16-byte aligned; the frame is 176 bytes):
 *   +0   FPCR (8 bytes), +8 padding
 *   +16  d8,  +24 d9,  +32 d10, +40 d11
 *   +48  d12, +56 d13, +64 d14, +72 d15
 *   +80  x19, +88 x20, +96 x21, +104 x22, +112 x23
 *   +120 x24, +128 x25, +136 x26, +144 x27, +152 x28
 *   +160 x29 (fp), +168 x30 (lr: where the suspended call returns to)
 * Only the low 64 bits of v8-v15 are callee-saved, hence d8-d15. FPSR (the
 * sticky exception flags) is caller-saved and left alone.
 * gr__ctx_switch and gr__ctx_start both leave this frame, with the same
 * SAVE_FRAME, and the lr in it returns to their caller, so a context
 * suspended in either is resumed the same way, by RESUME_FRAME: by the
 * switch, or by gr__ctx_start once the entry it called has returned. */

    .text

/* Save the callee-saved state in a frame below sp and the new sp in [x0];
 * leaves the FPCR just saved in x9. The CFI describes the frame, and, past
 * the stack swap that follows, the incoming frame, which has the same
 * layout, so unwinding stays correct throughout. */
.macro SAVE_FRAME
    sub     sp, sp, #176
    .cfi_def_cfa_offset 176
    stp     x19, x20, [sp, #80]
    stp     x21, x22, [sp, #96]
    stp     x23, x24, [sp, #112]
    stp     x25, x26, [sp, #128]
    stp     x27, x28, [sp, #144]
    stp     x29, x30, [sp, #160]
    stp     d8,  d9,  [sp, #16]
    stp     d10, d11, [sp, #32]
    stp     d12, d13, [sp, #48]
    stp     d14, d15, [sp, #64]
    .cfi_offset x19, -96
    .cfi_offset x20, -88
    .cfi_offset x21, -80
    .cfi_offset x22, -72
    .cfi_offset x23, -64
    .cfi_offset x24, -56
    .cfi_offset x25, -48
    .cfi_offset x26, -40
    .cfi_offset x27, -32
    .cfi_offset x28, -24
    .cfi_offset x29, -16
    .cfi_offset x30, -8
    .cfi_offset d8,  -160
    .cfi_offset d9,  -152
    .cfi_offset d10, -144
    .cfi_offset d11, -136
    .cfi_offset d12, -128
    .cfi_offset d13, -120
    .cfi_offset d14, -112
    .cfi_offset d15, -104
    mrs     x9, fpcr
    str     x9, [sp]
    mov     x10, sp                 /* str cannot take sp as its source */
    str     x10, [x0]
.endm

/* Resume the frame sp points to, x9 holding the FPCR now in force, and
 * return into the code that saved it. */
.macro RESUME_FRAME
    /* Writing FPCR can stall the pipeline; contexts nearly always share
     * the same settings, so compare first. */
    ldr     x11, [sp]
    cmp     x11, x9
    b.eq    1f
    msr     fpcr, x11
1:  ldp     d8,  d9,  [sp, #16]
    ldp     d10, d11, [sp, #32]
    ldp     d12, d13, [sp, #48]
    ldp     d14, d15, [sp, #64]
    ldp     x19, x20, [sp, #80]
    ldp     x21, x22, [sp, #96]
    ldp     x23, x24, [sp, #112]
    ldp     x25, x26, [sp, #128]
    ldp     x27, x28, [sp, #144]
    ldp     x29, x30, [sp, #160]
    add     sp, sp, #176
    .cfi_def_cfa_offset 0
    .cfi_restore x19
    .cfi_restore x20
    .cfi_restore x21
    .cfi_restore x22
    .cfi_restore x23
    .cfi_restore x24
    .cfi_restore x25
    .cfi_restore x26
    .cfi_restore x27
    .cfi_restore x28
    .cfi_restore x29
    .cfi_restore x30
    .cfi_restore d8
    .cfi_restore d9
    .cfi_restore d10
    .cfi_restore d11
    .cfi_restore d12
    .cfi_restore d13
    .cfi_restore d14
    .cfi_restore d15
    ret
.endm

/* void gr__ctx_switch(gr__ctx *from, gr__ctx *to) */
    .globl  gr__ctx_switch
    .hidden gr__ctx_switch
    .type   gr__ctx_switch, %function
    .p2align 4
gr__ctx_switch:
    .cfi_startproc
    hint    #34                     /* bti c: a landing pad if BTI is on */
    SAVE_FRAME
    ldr     x10, [x1]
    mov     sp, x10
    RESUME_FRAME
    .cfi_endproc
    .size   gr__ctx_switch, .-gr__ctx_switch

/* void gr__ctx_start(gr__ctx *from, gr__ctx *to, void *stack_lo,
 *                    size_t stack_size, gr__ctx_entry entry, void *arg)
 *
 * to itself is not written: its sp stays NULL (unstarted) until the new
 * context first switches away. */
    .globl  gr__ctx_start
    .hidden gr__ctx_start
    .type   gr__ctx_start, %function
    .p2align 4
gr__ctx_start:
    .cfi_startproc
    hint    #34                     /* bti c */
    SAVE_FRAME
    .cfi_remember_state
    add     x10, x2, x3
    and     sp, x10, #~15           /* the top of the new stack, aligned */
    /* On the new stack: nothing called this frame. lr is undefined for the
     * CFI unwinders (libgcc, gdb), and for frame-pointer walkers fp is zero
     * with a zero frame record at sp, so backtraces end here. */
    .cfi_undefined x30
    stp     xzr, xzr, [sp, #-16]!
    mov     x29, xzr
    msr     fpcr, xzr               /* the default: round to nearest, no
                                     * flush-to-zero, no default NaN, no
                                     * traps */
    mov     x0, x5
    blr     x4                      /* x1-x18 are dead from here on */
    /* entry returned: this context is finished. Resume the one it named,
     * suspended by SAVE_FRAME like the starter was. */
    ldr     x10, [x0]
    mov     sp, x10
    .cfi_restore_state              /* sp is at a saved frame again */
    mrs     x9, fpcr                /* entry may have changed it */
    RESUME_FRAME
    .cfi_endproc
    .size   gr__ctx_start, .-gr__ctx_start

    .section .note.GNU-stack,"",@progbits
