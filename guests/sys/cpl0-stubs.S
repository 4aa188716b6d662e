/* The host's ring-0 exception entry points (docs/guest-abi.md "Exceptions"): the only code
 * that ever runs at CPL0 in a sandbox. The host copies the assembled bytes to a
 * supervisor-only page and points IDT vectors 0-31 at stub v = base + 16 v; every gate uses
 * IST1, so the CPU always starts on the host's exception stack, whatever the guest did to its
 * own RSP. A stub leaves {cr2, rax, vector, error code, rip, cs, rflags, rsp, ss} at the top
 * of that stack and reports with one OUT to port 0xE0, which only CPL0 can execute (IOPL is
 * 0 and the TSS has no I/O bitmap). The host reads the frame; it resumes the stub only after
 * serving a system call (docs/guest-abi.md "System calls"), having rewritten the frame's RIP,
 * RFLAGS and RAX slots and put HL_SYSCALL_RESUME in its vector slot: the stub then returns to
 * ring 3 with iretq. A stub resumed with any other vector slot halts. No x87/SSE here: on some KVMs CPL0 code is emulated without them.
 * Built with `make -C guests`, which writes src/x86_64/cpl0-stubs.generated.ts. */

        .code64
        .text

        .macro STUB vec
        .balign 16
        .if \vec == 8 || (\vec >= 10 && \vec <= 14) || \vec == 17 || \vec == 21 || \vec == 29 || \vec == 30
        .else
        pushq $0                    /* no CPU error code: push a zero in its place */
        .endif
        pushq $\vec
        jmp common
        .endm

        .globl hl_cpl0_stubs
hl_cpl0_stubs:
        .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
        STUB \v
        .endr

        .balign 16
common:
        pushq %rax
        movq %cr2, %rax
        pushq %rax
        outb %al, $0xE0             /* the host takes over here */
        cmpq $0x5c, 16(%rsp)        /* HL_SYSCALL_RESUME: the host served a system call */
        jne 1f
        movq 8(%rsp), %rax          /* the result the host wrote in the RAX slot */
        addq $32, %rsp              /* CR2, RAX, vector, error code */
        iretq                       /* to the frame's CS:RIP, RFLAGS, SS:RSP (ring 3) */
1:      hlt
        jmp 1b

        .section .note.GNU-stack,"",@progbits
