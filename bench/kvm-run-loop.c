/* The C counterpart of hyperlight-ts's `Vcpu.run()` hot loop, for issue 2's target (JS run()
 * round trip within 1.3x of C): each iteration is one KVM_RUN on a warm vCPU, the return
 * check, and a decode of the exit fields Vcpu.run() decodes (reason, direction, size, port,
 * count, data pointer), timed exactly as the JS side times it. Not a cold-start floor (that
 * is kvm-floor.c). Prints JSON: {"run_ns":[...per iteration...],"batch_ns_per_run":N}.
 * Usage: kvm-run-loop MEM_BYTES ITERS */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* What the JS decoder fills for an I/O exit. */
struct io_exit { int kind; int direction; int size; int port; uint32_t count; const uint8_t *data; };

/* Guest at 0x4000 in long mode: out 101, al; jmp back to the out. One exit per KVM_RUN. */
static const uint8_t guest[] = { 0x66, 0xba, 0x65, 0x00, 0xee, 0xeb, 0xfd };

static inline int run_and_decode(int vcpu, struct kvm_run *run, struct io_exit *out) {
  int r = ioctl(vcpu, KVM_RUN, 0);
  if (r < 0 && errno != EINTR) return -1;
  if (r < 0) { out->kind = -1; return 0; }
  if (run->exit_reason != KVM_EXIT_IO) { out->kind = (int)run->exit_reason; return 0; }
  out->kind = KVM_EXIT_IO;
  out->direction = run->io.direction;
  out->size = run->io.size;
  out->port = run->io.port;
  out->count = run->io.count;
  out->data = (const uint8_t *)run + run->io.data_offset;
  return 0;
}

int main(int argc, char **argv) {
  size_t mem_size = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x200000;
  int iters = argc > 2 ? atoi(argv[2]) : 5000;
  if (mem_size < 0x10000) mem_size = 0x10000; /* the tables, code and stack need 64 KiB */
  if (iters < 1) iters = 1;
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  int vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (vm < 0) die("KVM_CREATE_VM");
  uint8_t *mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (mem == MAP_FAILED) die("mmap");
  struct kvm_userspace_memory_region region = {
    .slot = 0, .guest_phys_addr = 0, .memory_size = mem_size, .userspace_addr = (uint64_t)(uintptr_t)mem,
  };
  if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
  uint64_t *pml4 = (uint64_t *)(mem + 0x1000), *pdpt = (uint64_t *)(mem + 0x2000), *pd = (uint64_t *)(mem + 0x3000);
  pml4[0] = 0x2000 | 3;
  pdpt[0] = 0x3000 | 3;
  pd[0] = 0x83;
  memcpy(mem + 0x4000, guest, sizeof guest);
  int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
  if (vcpu < 0) die("KVM_CREATE_VCPU");
  struct kvm_run *run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) die("mmap kvm_run");
  struct kvm_sregs sregs;
  if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
  struct kvm_segment cs = { .limit = 0xffffffff, .selector = 8, .type = 11, .present = 1, .s = 1, .l = 1, .g = 1 };
  struct kvm_segment ds = { .limit = 0xffffffff, .selector = 16, .type = 3, .present = 1, .s = 1, .db = 1, .g = 1 };
  sregs.cs = cs;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = ds;
  sregs.cr3 = 0x1000;
  sregs.cr4 = 0x620;
  sregs.cr0 = 0x80050033;
  sregs.efer = 0xd01;
  if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
  struct kvm_regs regs = { .rip = 0x4000, .rsp = 0x8000, .rflags = 2 };
  if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");

  struct io_exit exit_info = { 0 };
  uint64_t *samples = calloc((size_t)iters, sizeof *samples);
  if (!samples) die("calloc");
  /* Warm-up: the first runs of a vCPU are slow (first KVM_RUN ~120 us here). */
  for (int i = 0; i < 100; i++) {
    if (run_and_decode(vcpu, run, &exit_info) < 0) die("KVM_RUN");
  }
  for (int i = 0; i < iters; i++) {
    uint64_t t = now_ns();
    if (run_and_decode(vcpu, run, &exit_info) < 0) die("KVM_RUN");
    samples[i] = now_ns() - t;
    if (exit_info.kind != KVM_EXIT_IO || exit_info.port != 101) {
      fprintf(stderr, "unexpected exit %d\n", exit_info.kind);
      return 1;
    }
  }
  uint64_t t0 = now_ns();
  for (int i = 0; i < iters; i++) {
    if (run_and_decode(vcpu, run, &exit_info) < 0) die("KVM_RUN");
  }
  double batch = (double)(now_ns() - t0) / iters;
  printf("{\"run_ns\":[");
  for (int i = 0; i < iters; i++) printf("%s%llu", i ? "," : "", (unsigned long long)samples[i]);
  printf("],\"batch_ns_per_run\":%.1f}\n", batch);
  munmap(run, (size_t)run_size);
  close(vcpu);
  munmap(mem, mem_size);
  close(vm);
  close(kvm);
  free(samples);
  return 0;
}
