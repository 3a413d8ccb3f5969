/* ctx_aarch64.S - context switch for AArch64 (AAPCS64).
 *
 * chime__ctx_swap(void **from, void *to): stores the callee-saved registers
 * (x19-x28, the frame pointer x29, the link register x30, the low halves
 * d8-d15 of v8-v15) and FPCR in a 176-byte frame on the current stack,
 * stores the stack pointer in *from, loads `to` as the stack pointer,
 * restores the same frame from it and returns through x30.  No system call.
 *
 * A new context's frame (see coro.c) makes the `ret` land in
 * chime__ctx_start with x19 = entry function and x20 = its argument.
 */
        .text
        .globl  chime__ctx_swap
        .hidden chime__ctx_swap
        .type   chime__ctx_swap, %function
        .p2align 4
chime__ctx_swap:
        .cfi_startproc
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]
        mov     x9, sp
        str     x9, [x0]
        mov     sp, x1
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldr     x9, [sp, #160]
        msr     fpcr, x9
        add     sp, sp, #176
        ret
        .cfi_endproc
        .size   chime__ctx_swap, .-chime__ctx_swap

        .globl  chime__ctx_start
        .hidden chime__ctx_start
        .type   chime__ctx_start, %function
        .p2align 4
chime__ctx_start:
        .cfi_startproc
        .cfi_undefined x30      /* the outermost frame: unwinders stop here */
        hint    #34             /* bti c, where branch protection is on */
        mov     x0, x20
        blr     x19
        brk     #0              /* the entry function never returns */
        .cfi_endproc
        .size   chime__ctx_start, .-chime__ctx_start

        .section .note.GNU-stack,"",%progbits
