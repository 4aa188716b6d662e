/* The C floor for hyperlight-ts benchmarks: the same KVM ioctl sequence with no library
 * around it. Prints JSON: per-iteration nanoseconds of (1) the cold cycle: create VM, map
 * memory, create vCPU, set registers, run to the first exit, tear down; (2) a single-exit
 * round trip (KVM_RUN -> OUT -> back) on a warm vCPU; (3) the cold cycle's phases
 * (cold_phase_ns: create-vm, map-memory, create-vcpu, set-regs, first-run, teardown).
 * An idle VM with one vCPU is held throughout, as the library's main thread does.
 * Built by the benchmark with gcc.
 * Usage: kvm-floor MEM_BYTES COLD_ITERS WARM_ITERS */
#define _GNU_SOURCE
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

/* Guest code at 0x4000: out 0x65, al; jmp back to the out (long mode). */
static const uint8_t code[] = {
  0x66, 0xba, 0x65, 0x00, /* mov dx, 101 */
  0xee,                   /* out dx, al */
  0xeb, 0xfd,             /* jmp -3 (back to the out) */
};

struct machine { int vm, vcpu; uint8_t *mem; size_t mem_size; struct kvm_run *run; size_t run_size; };

/* Cold-cycle phase boundaries: marks[0] = start, marks[1..6] = end of each phase. */
enum { PH_CREATE_VM, PH_MAP, PH_VCPU, PH_REGS, PH_RUN, PH_TEARDOWN, PH_COUNT };
static const char *const phase_names[PH_COUNT] = {
  "create-vm", "map-memory", "create-vcpu", "set-regs", "first-run", "teardown",
};
static uint64_t marks[PH_COUNT + 1];

static void setup(int kvm, struct machine *m, size_t mem_size, int run_size) {
  m->mem_size = mem_size;
  m->vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (m->vm < 0) die("KVM_CREATE_VM");
  marks[1 + PH_CREATE_VM] = now_ns();
  m->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m->mem == MAP_FAILED) die("mmap");
  struct kvm_userspace_memory_region region = {
    .slot = 0, .guest_phys_addr = 0, .memory_size = mem_size, .userspace_addr = (uint64_t)(uintptr_t)m->mem,
  };
  if (ioctl(m->vm, KVM_SET_USER_MEMORY_REGION, &region) < 0) die("KVM_SET_USER_MEMORY_REGION");
  marks[1 + PH_MAP] = now_ns();
  /* Identity map of the first 2 MiB: PML4 0x1000 -> PDPT 0x2000 -> PD 0x3000 (one 2 MiB page). */
  uint64_t *pml4 = (uint64_t *)(m->mem + 0x1000), *pdpt = (uint64_t *)(m->mem + 0x2000), *pd = (uint64_t *)(m->mem + 0x3000);
  pml4[0] = 0x2000 | 3;
  pdpt[0] = 0x3000 | 3;
  pd[0] = 0x83;
  memcpy(m->mem + 0x4000, code, sizeof code);
  m->vcpu = ioctl(m->vm, KVM_CREATE_VCPU, 0);
  if (m->vcpu < 0) die("KVM_CREATE_VCPU");
  m->run_size = (size_t)run_size;
  m->run = mmap(NULL, m->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, m->vcpu, 0);
  if (m->run == MAP_FAILED) die("mmap kvm_run");
  marks[1 + PH_VCPU] = now_ns();
  struct kvm_sregs sregs;
  if (ioctl(m->vcpu, KVM_GET_SREGS, &sregs) < 0) die("KVM_GET_SREGS");
  struct kvm_segment cs = { .base = 0, .limit = 0xffffffff, .selector = 8, .type = 11, .present = 1, .s = 1, .l = 1, .g = 1 };
  struct kvm_segment ds = { .base = 0, .limit = 0xffffffff, .selector = 16, .type = 3, .present = 1, .s = 1, .db = 1, .g = 1 };
  sregs.cs = cs;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = ds;
  sregs.cr3 = 0x1000;
  sregs.cr4 = 0x620;
  sregs.cr0 = 0x80050033;
  sregs.efer = 0xd01;
  if (ioctl(m->vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
  struct kvm_regs regs = { .rip = 0x4000, .rsp = 0x8000, .rflags = 2 };
  if (ioctl(m->vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");
  marks[1 + PH_REGS] = now_ns();
}

static void run_once(struct machine *m) {
  if (ioctl(m->vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
  if (m->run->exit_reason != KVM_EXIT_IO || m->run->io.port != 101) {
    fprintf(stderr, "unexpected exit %u\n", m->run->exit_reason);
    exit(1);
  }
}

static void teardown(struct machine *m) {
  munmap(m->run, m->run_size);
  close(m->vcpu);
  munmap(m->mem, m->mem_size);
  close(m->vm);
}

int main(int argc, char **argv) {
  size_t mem_size = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x200000;
  int cold = argc > 2 ? atoi(argv[2]) : 200, warm = argc > 3 ? atoi(argv[3]) : 5000;
  if (mem_size < 0x10000) mem_size = 0x10000; /* the tables, code and stack need 64 KiB; the 2 MiB page maps only what the guest touches */
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
  /* The kernel anchor, as the library's main thread holds one (kvm-floor-evolve.h). */
  int anchor_vm = ioctl(kvm, KVM_CREATE_VM, 0);
  if (anchor_vm < 0 || ioctl(anchor_vm, KVM_CREATE_VCPU, 0) < 0) die("anchor VM");
  uint64_t *phase_ns = calloc((size_t)(cold > 0 ? cold : 1) * PH_COUNT, sizeof *phase_ns);
  if (!phase_ns) die("calloc");
  printf("{\"cold_ns\":[");
  for (int i = 0; i < cold; i++) {
    uint64_t t = now_ns();
    marks[0] = t;
    struct machine m;
    setup(kvm, &m, mem_size, run_size);
    run_once(&m);
    marks[1 + PH_RUN] = now_ns();
    teardown(&m);
    uint64_t end = now_ns();
    marks[1 + PH_TEARDOWN] = end;
    printf("%s%llu", i ? "," : "", (unsigned long long)(end - t));
    for (int p = 0; p < PH_COUNT; p++) phase_ns[(size_t)i * PH_COUNT + p] = marks[p + 1] - marks[p];
  }
  printf("],\"cold_phase_ns\":{");
  for (int p = 0; p < PH_COUNT; p++) {
    printf("%s\"%s\":[", p ? "," : "", phase_names[p]);
    for (int i = 0; i < cold; i++) printf("%s%llu", i ? "," : "", (unsigned long long)phase_ns[(size_t)i * PH_COUNT + p]);
    printf("]");
  }
  free(phase_ns);
  printf("}");
  printf(",\"warm_ns\":[");
  struct machine m;
  setup(kvm, &m, mem_size, run_size);
  run_once(&m);
  for (int i = 0; i < warm; i++) {
    uint64_t t = now_ns();
    run_once(&m);
    printf("%s%llu", i ? "," : "", (unsigned long long)(now_ns() - t));
  }
  teardown(&m);
  printf("]}\n");
  close(kvm);
  return 0;
}
