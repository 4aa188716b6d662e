/* Guest entry point, dispatch entry and setjmp/longjmp of the SDK (all at CPL3; CPU exceptions are the host's: guests/sys/cpl0-stubs.S); the policy behind them lives in boot.c and dispatch.c. */
#include "hyperlight/abi.h"

        .file "entry.S"     /* a fixed name: otherwise the temporary object name lands in .symtab */

        .text

/* _start (CPL3): RDI = PEB, RSI = seed, RDX = page size, RCX = log level, RSP = stack top. */
        .globl _start
        .type _start, @function
_start:
        andq $-16, %rsp
        xorl %ebp, %ebp
        call hl_sdk_init            /* validates the PEB; doorbell, heap bounds; returns argv */
        movq %rax, %rdi
        call hl_libc_start          /* musl's start-up, then sdk_main: hyperlight_main, hl_sdk_ready */
        ud2
        .size _start, . - _start

/* hl_sdk_ready: init is done; init's Halt carries the dispatch address. */
        .globl hl_sdk_ready
        .type hl_sdk_ready, @function
hl_sdk_ready:
        leaq hl_dispatch_entry(%rip), %rax
        jmp hl_halt_with
        .size hl_sdk_ready, . - hl_sdk_ready

/* The dispatch entry: handles one guest call per Halt. Placed with the rest of a warm
 * call's code (internal.h: HL_HOT_; guest.ld orders it). */
        .section .text.hot.hl_entry,"ax",@progbits
        .globl hl_dispatch_entry
        .type hl_dispatch_entry, @function
hl_dispatch_entry:
        movq hl_stack_top(%rip), %rsp
        xorl %ebp, %ebp
        call hl_sdk_dispatch        /* pops the call, runs it, pushes the result */
        xorl %eax, %eax
hl_halt_with:
        movq hl_doorbell(%rip), %rdx
        xorl %ecx, %ecx
        movq %rax, HL_OP_HALT*HL_DOORBELL_STRIDE(%rdx) /* Halt: the host resumes after this store */
        testq %rcx, %rcx            /* RCX != 0: the host switched to exitless mode */
        jz hl_dispatch_entry
        movq hl_stack_top(%rip), %rsp
        call hl_mailbox_enable
        jmp hl_mailbox_loop
        .size hl_dispatch_entry, . - hl_dispatch_entry

/* Exitless mode: one guest call per mailbox command, with no exit (mailbox.c). */
        .type hl_mailbox_loop, @function
hl_mailbox_loop:
        movq hl_stack_top(%rip), %rsp
        xorl %ebp, %ebp
        call hl_mailbox_next        /* spins (or parks) until the host posts a call */
        call hl_sdk_dispatch
        movl $HL_OP_HALT, %edi
        xorl %esi, %esi
        call hl_mailbox_ring        /* posts Halt; the next command is waited for above */
        jmp hl_mailbox_loop
        .size hl_mailbox_loop, . - hl_mailbox_loop

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
