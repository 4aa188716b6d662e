/* Prints the sizes and field offsets of the <linux/kvm.h> structs hyperlight-ts uses, as
 * JSON, for scripts/gen-layouts.mjs. Build: gcc -o probe kvm-layout-probe.c. It does not
 * open /dev/kvm. */
#include <stddef.h>
#include <stdio.h>
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <linux/memfd.h>
#include <time.h>
#include <linux/kvm.h>

static int first = 1;

static void begin(const char *name, size_t size) {
  printf("%s\n  \"%s\": { \"size\": %zu, \"fields\": {", first ? "" : ",", name, size);
  first = 0;
}

static int firstField;
#define BEGIN(type) do { begin(#type, sizeof(struct type)); firstField = 1; } while (0)
#define F(type, path, member) do { \
    printf("%s\n    \"%s\": [%zu, %zu]", firstField ? "" : ",", path, \
           offsetof(struct type, member), sizeof(((struct type *)0)->member)); \
    firstField = 0; } while (0)
/* A flexible array member has no size of its own: record 0. */
#define FLEX(type, path, member) do { \
    printf("%s\n    \"%s\": [%zu, 0]", firstField ? "" : ",", path, \
           offsetof(struct type, member)); \
    firstField = 0; } while (0)
#define END() printf("\n  } }")

int main(void) {
  printf("{");
  BEGIN(kvm_regs);
  F(kvm_regs, "rax", rax); F(kvm_regs, "rbx", rbx); F(kvm_regs, "rcx", rcx);
  F(kvm_regs, "rdx", rdx); F(kvm_regs, "rsi", rsi); F(kvm_regs, "rdi", rdi);
  F(kvm_regs, "rsp", rsp); F(kvm_regs, "rbp", rbp); F(kvm_regs, "r8", r8);
  F(kvm_regs, "r9", r9); F(kvm_regs, "r10", r10); F(kvm_regs, "r11", r11);
  F(kvm_regs, "r12", r12); F(kvm_regs, "r13", r13); F(kvm_regs, "r14", r14);
  F(kvm_regs, "r15", r15); F(kvm_regs, "rip", rip); F(kvm_regs, "rflags", rflags);
  END();

  BEGIN(kvm_segment);
  F(kvm_segment, "base", base); F(kvm_segment, "limit", limit);
  F(kvm_segment, "selector", selector); F(kvm_segment, "type", type);
  F(kvm_segment, "present", present); F(kvm_segment, "dpl", dpl);
  F(kvm_segment, "db", db); F(kvm_segment, "s", s); F(kvm_segment, "l", l);
  F(kvm_segment, "g", g); F(kvm_segment, "avl", avl); F(kvm_segment, "unusable", unusable);
  END();

  BEGIN(kvm_dtable);
  F(kvm_dtable, "base", base); F(kvm_dtable, "limit", limit);
  END();

  BEGIN(kvm_sregs);
  F(kvm_sregs, "cs", cs); F(kvm_sregs, "ds", ds); F(kvm_sregs, "es", es);
  F(kvm_sregs, "fs", fs); F(kvm_sregs, "gs", gs); F(kvm_sregs, "ss", ss);
  F(kvm_sregs, "tr", tr); F(kvm_sregs, "ldt", ldt); F(kvm_sregs, "gdt", gdt);
  F(kvm_sregs, "idt", idt); F(kvm_sregs, "cr0", cr0); F(kvm_sregs, "cr2", cr2);
  F(kvm_sregs, "cr3", cr3); F(kvm_sregs, "cr4", cr4); F(kvm_sregs, "cr8", cr8);
  F(kvm_sregs, "efer", efer); F(kvm_sregs, "apic_base", apic_base);
  F(kvm_sregs, "interrupt_bitmap", interrupt_bitmap);
  END();

  BEGIN(kvm_run);
  F(kvm_run, "request_interrupt_window", request_interrupt_window);
  F(kvm_run, "immediate_exit", immediate_exit);
  F(kvm_run, "exit_reason", exit_reason);
  F(kvm_run, "ready_for_interrupt_injection", ready_for_interrupt_injection);
  F(kvm_run, "if_flag", if_flag);
  F(kvm_run, "flags", flags);
  F(kvm_run, "cr8", cr8);
  F(kvm_run, "apic_base", apic_base);
  F(kvm_run, "hw.hardware_exit_reason", hw.hardware_exit_reason);
  F(kvm_run, "fail_entry.hardware_entry_failure_reason", fail_entry.hardware_entry_failure_reason);
  F(kvm_run, "fail_entry.cpu", fail_entry.cpu);
  F(kvm_run, "ex.exception", ex.exception);
  F(kvm_run, "ex.error_code", ex.error_code);
  F(kvm_run, "io.direction", io.direction);
  F(kvm_run, "io.size", io.size);
  F(kvm_run, "io.port", io.port);
  F(kvm_run, "io.count", io.count);
  F(kvm_run, "io.data_offset", io.data_offset);
  F(kvm_run, "debug.arch.exception", debug.arch.exception);
  F(kvm_run, "debug.arch.pc", debug.arch.pc);
  F(kvm_run, "debug.arch.dr6", debug.arch.dr6);
  F(kvm_run, "debug.arch.dr7", debug.arch.dr7);
  F(kvm_run, "mmio.phys_addr", mmio.phys_addr);
  F(kvm_run, "mmio.data", mmio.data);
  F(kvm_run, "mmio.len", mmio.len);
  F(kvm_run, "mmio.is_write", mmio.is_write);
  F(kvm_run, "internal.suberror", internal.suberror);
  F(kvm_run, "internal.ndata", internal.ndata);
  F(kvm_run, "internal.data", internal.data);
  F(kvm_run, "system_event.type", system_event.type);
  F(kvm_run, "kvm_valid_regs", kvm_valid_regs);
  F(kvm_run, "kvm_dirty_regs", kvm_dirty_regs);
  F(kvm_run, "s.regs.regs", s.regs.regs);
  F(kvm_run, "s.regs.sregs", s.regs.sregs);
  END();

  BEGIN(kvm_userspace_memory_region);
  F(kvm_userspace_memory_region, "slot", slot);
  F(kvm_userspace_memory_region, "flags", flags);
  F(kvm_userspace_memory_region, "guest_phys_addr", guest_phys_addr);
  F(kvm_userspace_memory_region, "memory_size", memory_size);
  F(kvm_userspace_memory_region, "userspace_addr", userspace_addr);
  END();

  BEGIN(kvm_fpu);
  F(kvm_fpu, "fpr", fpr); F(kvm_fpu, "fcw", fcw); F(kvm_fpu, "fsw", fsw);
  F(kvm_fpu, "ftwx", ftwx); F(kvm_fpu, "last_opcode", last_opcode);
  F(kvm_fpu, "last_ip", last_ip); F(kvm_fpu, "last_dp", last_dp);
  F(kvm_fpu, "xmm", xmm); F(kvm_fpu, "mxcsr", mxcsr);
  END();

  BEGIN(kvm_cpuid_entry2);
  F(kvm_cpuid_entry2, "function", function); F(kvm_cpuid_entry2, "index", index);
  F(kvm_cpuid_entry2, "flags", flags); F(kvm_cpuid_entry2, "eax", eax);
  F(kvm_cpuid_entry2, "ebx", ebx); F(kvm_cpuid_entry2, "ecx", ecx);
  F(kvm_cpuid_entry2, "edx", edx);
  END();

  BEGIN(kvm_cpuid2);
  F(kvm_cpuid2, "nent", nent); FLEX(kvm_cpuid2, "entries", entries);
  END();

  BEGIN(kvm_msr_entry);
  F(kvm_msr_entry, "index", index); F(kvm_msr_entry, "data", data);
  END();

  BEGIN(kvm_msrs);
  F(kvm_msrs, "nmsrs", nmsrs); FLEX(kvm_msrs, "entries", entries);
  END();

  BEGIN(kvm_guest_debug);
  F(kvm_guest_debug, "control", control); F(kvm_guest_debug, "arch.debugreg", arch.debugreg);
  END();

  BEGIN(kvm_debugregs);
  F(kvm_debugregs, "db", db); F(kvm_debugregs, "dr6", dr6); F(kvm_debugregs, "dr7", dr7);
  F(kvm_debugregs, "flags", flags);
  END();

  BEGIN(kvm_dirty_log);
  F(kvm_dirty_log, "slot", slot); F(kvm_dirty_log, "dirty_bitmap", dirty_bitmap);
  END();

  BEGIN(kvm_translation);
  F(kvm_translation, "linear_address", linear_address);
  F(kvm_translation, "physical_address", physical_address);
  F(kvm_translation, "valid", valid); F(kvm_translation, "writeable", writeable);
  F(kvm_translation, "usermode", usermode);
  END();

  BEGIN(kvm_clear_dirty_log);
  F(kvm_clear_dirty_log, "slot", slot); F(kvm_clear_dirty_log, "num_pages", num_pages);
  F(kvm_clear_dirty_log, "first_page", first_page); F(kvm_clear_dirty_log, "dirty_bitmap", dirty_bitmap);
  END();

  BEGIN(kvm_xsave);
  F(kvm_xsave, "region", region);
  END();

  BEGIN(kvm_xcr);
  F(kvm_xcr, "xcr", xcr); F(kvm_xcr, "value", value);
  END();

  BEGIN(kvm_xcrs);
  F(kvm_xcrs, "nr_xcrs", nr_xcrs); F(kvm_xcrs, "flags", flags); F(kvm_xcrs, "xcrs", xcrs);
  END();

  BEGIN(kvm_msr_list);
  F(kvm_msr_list, "nmsrs", nmsrs); FLEX(kvm_msr_list, "indices", indices);
  END();

  BEGIN(kvm_enable_cap);
  F(kvm_enable_cap, "cap", cap); F(kvm_enable_cap, "flags", flags); F(kvm_enable_cap, "args", args);
  END();

  BEGIN(kvm_vcpu_events);
  F(kvm_vcpu_events, "exception.injected", exception.injected);
  F(kvm_vcpu_events, "interrupt.injected", interrupt.injected);
  F(kvm_vcpu_events, "nmi.injected", nmi.injected);
  F(kvm_vcpu_events, "flags", flags);
  END();

  BEGIN(sigaction);
  F(sigaction, "sa_handler", sa_handler); F(sigaction, "sa_mask", sa_mask);
  F(sigaction, "sa_flags", sa_flags);
  END();

  BEGIN(sigevent);
  F(sigevent, "sigev_value", sigev_value); F(sigevent, "sigev_signo", sigev_signo);
  F(sigevent, "sigev_notify", sigev_notify);
  F(sigevent, "sigev_notify_thread_id", _sigev_un._tid);
  END();

  BEGIN(itimerspec);
  F(itimerspec, "it_interval.tv_sec", it_interval.tv_sec);
  F(itimerspec, "it_interval.tv_nsec", it_interval.tv_nsec);
  F(itimerspec, "it_value.tv_sec", it_value.tv_sec);
  F(itimerspec, "it_value.tv_nsec", it_value.tv_nsec);
  END();

  /* libc constants the bindings pass to the kernel. */
  printf(",\n  \"constants\": {");
  firstField = 1;
#define C(name) do { printf("%s\n    \"%s\": %lld", firstField ? "" : ",", #name, \
                            (long long)(name)); firstField = 0; } while (0)
  C(O_RDWR); C(O_CLOEXEC); C(PROT_NONE); C(PROT_READ); C(PROT_WRITE); C(PROT_EXEC);
  C(MAP_PRIVATE); C(MAP_SHARED); C(MAP_ANONYMOUS); C(MAP_NORESERVE); C(MAP_FIXED);
  C(MADV_DONTNEED); C(MFD_CLOEXEC); C(SIGEV_THREAD_ID); C(CLOCK_MONOTONIC); C(SA_RESTART);
  printf("\n  },\n  \"errno\": {");
  firstField = 1;
  C(EPERM); C(ENOENT); C(ESRCH); C(EINTR); C(EIO); C(ENXIO); C(E2BIG); C(ENOEXEC);
  C(EBADF); C(ECHILD); C(EAGAIN); C(ENOMEM); C(EACCES); C(EFAULT); C(EBUSY); C(EEXIST);
  C(ENODEV); C(ENOTDIR); C(EINVAL); C(ENFILE); C(EMFILE); C(ENOTTY); C(EFBIG);
  C(ENOSPC); C(ESPIPE); C(EROFS); C(ERANGE); C(ENOSYS); C(EOPNOTSUPP); C(ETIMEDOUT);
  C(EOVERFLOW); C(ENXIO); C(EHWPOISON);
  printf("\n  }\n}\n");
  return 0;
}
