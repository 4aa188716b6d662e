/* Guest entry point, dispatch entry, CPU exception stubs and setjmp/longjmp of the SDK; the policy behind them lives in boot.c and dispatch.c. */
#include "hyperlight/abi.h"

        .file "entry.S"     /* a fixed name: otherwise the temporary object name lands in .symtab */

        .text

/* _start: RDI = PEB, RSI = seed, RDX = page size, RCX = log level, RSP = stack top. */
        .globl _start
        .type _start, @function
_start:
        andq $-16, %rsp
        xorl %ebp, %ebp
        call hl_sdk_init            /* validates the PEB; GDT, TSS, IDT, heap, rand */
        call hyperlight_main        /* the guest registers its functions */
        jmp hl_halt_then_dispatch
        .size _start, . - _start

/* The dispatch address the host receives in RAX: handles one guest call per Halt. Placed
 * with the rest of a warm call's code (internal.h: HL_HOT_; guest.ld orders it). */
        .section .text.hot.hl_entry,"ax",@progbits
        .globl hl_dispatch_entry
        .type hl_dispatch_entry, @function
hl_dispatch_entry:
        movq hl_stack_top(%rip), %rsp
        xorl %ebp, %ebp
        call hl_sdk_dispatch        /* pops the call, runs it, pushes the result */
hl_halt_then_dispatch:
        leaq hl_dispatch_entry(%rip), %rax
        movl $HL_PORT_HALT, %edx
        outl %eax, %dx              /* Halt; the host resumes here for the next call */
        jmp hl_dispatch_entry
        .size hl_dispatch_entry, . - hl_dispatch_entry

        .text

/* 32 exception stubs, 16 bytes apart (boot.c computes their addresses from
 * hl_exception_stubs). Each leaves {vector, error code, CPU frame} on the IST1 stack. */
        .macro STUB vec, has_error
        .balign 16
        .if \has_error == 0
        pushq $0
        .endif
        pushq $\vec
        jmp hl_exception_common
        .endm

        .balign 512                 /* boot.c: the 32 stubs share address bits 9..63 */
        .globl hl_exception_stubs
hl_exception_stubs:
        STUB 0,0
        STUB 1,0
        STUB 2,0
        STUB 3,0
        STUB 4,0
        STUB 5,0
        STUB 6,0
        STUB 7,0
        STUB 8,1
        STUB 9,0
        STUB 10,1
        STUB 11,1
        STUB 12,1
        STUB 13,1
        STUB 14,1
        STUB 15,0
        STUB 16,0
        STUB 17,1
        STUB 18,0
        STUB 19,0
        STUB 20,0
        STUB 21,1
        STUB 22,0
        STUB 23,0
        STUB 24,0
        STUB 25,0
        STUB 26,0
        STUB 27,0
        STUB 28,0
        STUB 29,1
        STUB 30,1
        STUB 31,0

        .balign 16
hl_exception_common:
        movq %rsp, %rdi             /* -> struct exception_frame */
        andq $-16, %rsp
        call hl_sdk_exception       /* reports through the abort stream; never returns */
1:      hlt
        jmp 1b

/* int hl_setjmp(hl_jmp_buf *b): saves callee-saved registers, RSP and the return address. */
        .section .text.hot.hl_entry_setjmp,"ax",@progbits
        .globl hl_setjmp
        .type hl_setjmp, @function
hl_setjmp:
        movq %rbx, 0(%rdi)
        movq %rbp, 8(%rdi)
        movq %r12, 16(%rdi)
        movq %r13, 24(%rdi)
        movq %r14, 32(%rdi)
        movq %r15, 40(%rdi)
        leaq 8(%rsp), %rdx
        movq %rdx, 48(%rdi)
        movq (%rsp), %rdx
        movq %rdx, 56(%rdi)
        xorl %eax, %eax
        ret
        .size hl_setjmp, . - hl_setjmp

/* void hl_longjmp(hl_jmp_buf *b, int v): returns v (1 if v is 0) from hl_setjmp. */
        .globl hl_longjmp
        .type hl_longjmp, @function
hl_longjmp:
        movl %esi, %eax
        testl %eax, %eax
        jnz 1f
        incl %eax
1:      movq 0(%rdi), %rbx
        movq 8(%rdi), %rbp
        movq 16(%rdi), %r12
        movq 24(%rdi), %r13
        movq 32(%rdi), %r14
        movq 40(%rdi), %r15
        movq 48(%rdi), %rsp
        jmp *56(%rdi)
        .size hl_longjmp, . - hl_longjmp

        .section .note.GNU-stack,"",@progbits
