/* ctx_x86_64.S - context switch for x86-64 (System V ABI).
 *
 * chime__ctx_swap(void **from, void *to): pushes the callee-saved registers
 * (rbp, rbx, r12-r15) and the callee-saved control words (MXCSR's control
 * bits and the x87 control word) on the current stack, stores the stack
 * pointer in *from, loads `to` as the stack pointer and pops the same frame
 * from it.  Ten instructions each way, no system call.
 *
 * A new context's frame (see coro.c) makes the final `ret` land in
 * chime__ctx_start with r12 = entry function and r13 = its argument.
 */
        .text
        .globl  chime__ctx_swap
        .hidden chime__ctx_swap
        .type   chime__ctx_swap, @function
        .p2align 4
chime__ctx_swap:
        .cfi_startproc
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
        movq    %rsi, %rsp
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
        .size   chime__ctx_swap, .-chime__ctx_swap

        .globl  chime__ctx_start
        .hidden chime__ctx_start
        .type   chime__ctx_start, @function
        .p2align 4
chime__ctx_start:
        .cfi_startproc
        .cfi_undefined rip      /* the outermost frame: unwinders stop here */
        movq    %r13, %rdi
        callq   *%r12
        ud2                     /* the entry function never returns */
        .cfi_endproc
        .size   chime__ctx_start, .-chime__ctx_start

        .section .note.GNU-stack,"",@progbits
