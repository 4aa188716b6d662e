/* The pieces of evolve()'s syscall sequence the ring-3 C floors share (kvm-floor-cpl3.c,
 * kvm-floor-guest.c), in evolve()'s order; each floor adds its own memory contents and
 * registers between them. Raw ioctls; any failure ends the program. */
#ifndef HL_BENCH_KVM_FLOOR_EVOLVE_H
#define HL_BENCH_KVM_FLOOR_EVOLVE_H
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include "bench-common.h"

struct floor_machine {
  int kvm, vm, vcpu;
  uint8_t *mem, *map;
  size_t mem_size, map_size, run_size;
  struct kvm_run *run;
  int sync;
};

/* As the library's main thread: /dev/kvm opened (and its API version and vCPU mmap size
 * read) at the first machine and kept, and each capability asked at the first machine that
 * needs it (src/sandbox/machine.ts: systemKvm, the capability caches). -1: not asked yet. */
static int floor_kvm = -1;
static int floor_run_size;
static int floor_manual_dirty = -1, floor_sync = -1, floor_pv_enforce = -1, floor_msr_filter = -1;

/* As the library's main thread (src/sandbox/kernel-anchor.ts): one idle VM with one vCPU
 * kept while machines come and go, so that KVM's static keys (preempt notifiers, the
 * no-in-kernel-APIC vCPU count) do not switch, rewriting kernel text with IPIs to every
 * CPU, at each machine's creation and teardown. Made once, before the first cycle; the
 * library makes it at its first machine and keeps it across a cold-start loop. */
static void floor_hold_anchor(void) {
  static int anchor_vm = -1;
  if (anchor_vm >= 0) return;
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  anchor_vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (anchor_vm < 0) die("KVM_CREATE_VM (anchor)");
  if (ioctl(anchor_vm, KVM_CREATE_VCPU, 0) < 0) die("KVM_CREATE_VCPU (anchor)");
  close(kvm);
}

/* CREATE_VM, manual dirty-log protection, guest memory with a PROT_NONE guard page on each
 * side (as GuestMemory.allocate), one dirty-logged slot. The caller copies the memory
 * contents in next. */
static void floor_create_vm(struct floor_machine *m, size_t mem_size) {
  if (floor_kvm < 0) {
    floor_kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (floor_kvm < 0) die("open /dev/kvm");
    if (ioctl(floor_kvm, KVM_GET_API_VERSION, 0) != 12) die("KVM_GET_API_VERSION");
    floor_run_size = ioctl(floor_kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (floor_run_size <= 0) die("KVM_GET_VCPU_MMAP_SIZE");
  }
  m->kvm = floor_kvm;
  m->run_size = (size_t)floor_run_size;
  m->vm = ioctl(m->kvm, KVM_CREATE_VM, 0);
  if (m->vm < 0) die("KVM_CREATE_VM");
  if (floor_manual_dirty < 0) floor_manual_dirty = ioctl(m->vm, KVM_CHECK_EXTENSION, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) > 0;
  if (floor_manual_dirty) {
    struct kvm_enable_cap cap = {.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, .args = {KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE}};
    if (ioctl(m->vm, KVM_ENABLE_CAP, &cap) < 0) die("KVM_ENABLE_CAP dirty");
  }
  m->mem_size = mem_size;
  m->map_size = mem_size + 2 * 4096;
  m->map = mmap(NULL, m->map_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m->map == MAP_FAILED) die("mmap");
  m->mem = m->map + 4096;
  if (mprotect(m->mem, mem_size, PROT_READ | PROT_WRITE) < 0) die("mprotect");
  struct kvm_userspace_memory_region region = {
    .slot = 0, .flags = KVM_MEM_LOG_DIRTY_PAGES, .guest_phys_addr = 0, .memory_size = mem_size,
    .userspace_addr = (uint64_t)(uintptr_t)m->mem,
  };
  if (ioctl(m->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
}

/* CREATE_VCPU with the library's signal mask (the thread's: its kick signal is not blocked
 * here), kvm_run, CPUID, ENFORCE_PV_FEATURE_CPUID. */
static void floor_create_vcpu(struct floor_machine *m, const struct kvm_cpuid2 *cpuid) {
  m->vcpu = ioctl(m->vm, KVM_CREATE_VCPU, 0);
  if (m->vcpu < 0) die("KVM_CREATE_VCPU");
  struct { uint32_t len; uint8_t set[8]; } mask = {.len = 8};
  sigset_t cur;
  pthread_sigmask(SIG_SETMASK, NULL, &cur);
  memcpy(mask.set, &cur, 8);
  if (ioctl(m->vcpu, KVM_SET_SIGNAL_MASK, &mask) < 0) die("KVM_SET_SIGNAL_MASK");
  if (floor_sync < 0) floor_sync = ioctl(m->vm, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
  m->sync = floor_sync;
  m->run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->vcpu, 0);
  if (m->run == MAP_FAILED) die("mmap kvm_run");
  if (ioctl(m->vcpu, KVM_SET_CPUID2, cpuid) < 0) die("KVM_SET_CPUID2");
  if (floor_pv_enforce < 0) floor_pv_enforce = ioctl(m->kvm, KVM_CHECK_EXTENSION, KVM_CAP_ENFORCE_PV_FEATURE_CPUID) > 0;
  if (floor_pv_enforce) {
    struct kvm_enable_cap cap = {.cap = KVM_CAP_ENFORCE_PV_FEATURE_CPUID, .args = {1}};
    if (ioctl(m->vcpu, KVM_ENABLE_CAP, &cap) < 0) die("KVM_ENABLE_CAP pv");
  }
}

/* The MSR filter (default deny), installed last as the library does. /dev/kvm stays open. */
static void floor_deny_msrs(struct floor_machine *m) {
  if (floor_msr_filter < 0) floor_msr_filter = ioctl(m->vm, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER) > 0;
  if (floor_msr_filter) {
    static uint8_t deny[1];
    struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_DENY};
    f.ranges[0] = (struct kvm_msr_filter_range){.flags = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, .nmsrs = 1, .base = 0, .bitmap = deny};
    if (ioctl(m->vm, KVM_X86_SET_MSR_FILTER, &f) < 0) die("KVM_X86_SET_MSR_FILTER");
  }
}

/* Whether registers go through kvm_run's sync area (both regs and sregs), as the library's do. */
static int floor_has_sync_regs(const struct floor_machine *m) {
  return (m->sync & (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS)) == (KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
}

static void floor_teardown(struct floor_machine *m) {
  munmap(m->run, m->run_size);
  close(m->vcpu);
  close(m->vm);
  munmap(m->map, m->map_size);
}
#endif
