/* The ring-3 C floor for hyperlight-ts benchmarks: raw ioctls, no library, a guest at CPL3.
 * Prints JSON with per-iteration nanoseconds of:
 *   mmio_ns  - a warm exit round trip by an MMIO store to a page with no memslot (the
 *              library's doorbell), from a CPL3 loop `mov %rax,(%rdx); jmp`;
 *   trap_ns  - the same round trip through a CPL0 handler: `int3` at CPL3 enters a CPL0
 *              gate whose handler does `out` then `iretq` (the other exit a ring-3 guest has);
 *   loop_ns  - KVM_RUN of a CPL3 `dec/jnz` loop of LOOP_N iterations ending in the MMIO
 *              store, and loop1_ns the same with 1 iteration (guest instruction cost);
 *   evolve_ns - the cold cycle with exactly the syscalls `evolve()` from an init template
 *              makes on the main thread (strace'd), in its order: CREATE_VM, manual
 *              dirty-log protection, guest memory with guard pages, one dirty-logged slot,
 *              the template's bytes copied in, CREATE_VCPU, SET_SIGNAL_MASK, kvm_run, CPUID,
 *              ENFORCE_PV_FEATURE_CPUID, LSTAR, SET_XSAVE, the MSR filter (default deny),
 *              registers through kvm_run's sync area, one KVM_RUN to the guest's doorbell,
 *              teardown; /dev/kvm stays open, capabilities are asked once and an idle VM
 *              with one vCPU is held throughout (the kernel anchor), as the library does;
 *   evolve_bare_ns - the same cycles run first, before the anchor exists (what it saves);
 *   mailbox_ns - a call across a shared-memory mailbox, no exit: a CPL3 guest polls a
 *              request word (`pause` while idle) and answers in a response word, its vCPU in
 *              KVM_RUN on a thread of its own, this thread posting and spinning on the
 *              answer (the exitless mode's floor, docs/exitless.md);
 *   mailbox_restore_ns - the same with the guest writing 4 pages per call and this thread
 *              copying them back from a saved copy after each answer (a working-set restore).
 * Built by the benchmark with gcc -pthread. Usage: kvm-floor-cpl3 MEM_BYTES COLD_ITERS WARM_ITERS */
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
#include <pthread.h>
#include <signal.h>
#include <unistd.h>
#include "kvm-floor-evolve.h"

#define LOOP_N 1000000
#define DOORBELL 0x200000ull /* first byte past a 2 MiB slot: mapped, no memory */


/* User code at 0x4000 (mmio), 0x4100 (trap), 0x4200 (loop). */
static const uint8_t mmio_loop[] = {0x48, 0x89, 0x02, 0xeb, 0xfb};             /* 1: mov %rax,(%rdx); jmp 1b */
static const uint8_t trap_loop[] = {0xcc, 0xeb, 0xfd};                         /* 1: int3; jmp 1b */
static const uint8_t dec_loop[] = {0x48, 0xff, 0xc9, 0x75, 0xfb, 0x48, 0x89, 0x02, 0xeb, 0xf4}; /* 1: dec %rcx; jnz 1b; mov %rax,(%rdx); jmp 1b */
/* The CPL0 handler of vector 3 at 0x7000: out %al,$0xe0; iretq. */
static const uint8_t handler[] = {0xe6, 0xe0, 0x48, 0xcf};
/* The mailbox loops at 0x4300 and 0x4400, RSI = the mailbox (request u32 at +0, response u32
 * at +0x40), EBX = the last request seen:
 * 1: mov (%rsi),%eax; cmp %eax,%ebx; je 2f; mov %eax,%ebx; [mov %eax,0x1000/0x2000/0x3000/0x4000(%rsi)];
 *    mov %eax,0x40(%rsi); jmp 1b; 2: pause; jmp 1b */
static const uint8_t mailbox_loop[] = {0x8b, 0x06, 0x39, 0xc3, 0x74, 0x07, 0x89, 0xc3, 0x89, 0x46, 0x40, 0xeb, 0xf3,
                                       0xf3, 0x90, 0xeb, 0xef};
static const uint8_t mailbox_pages_loop[] = {0x8b, 0x06, 0x39, 0xc3, 0x74, 0x1f, 0x89, 0xc3,
                                             0x89, 0x86, 0x00, 0x10, 0x00, 0x00, 0x89, 0x86, 0x00, 0x20, 0x00, 0x00,
                                             0x89, 0x86, 0x00, 0x30, 0x00, 0x00, 0x89, 0x86, 0x00, 0x40, 0x00, 0x00,
                                             0x89, 0x46, 0x40, 0xeb, 0xdb, 0xf3, 0x90, 0xeb, 0xd7};
#define MAILBOX 0x10000


static struct kvm_cpuid2 *cpuid;
/* Stands in for an init template: the library copies its non-zero pages into new memory. */
static uint8_t *template_image;
static size_t template_size;
static struct kvm_xsave xsave_ref;

static void write_guest(uint8_t *mem) {
  uint64_t *pml4 = (uint64_t *)(mem + 0x1000), *pdpt = (uint64_t *)(mem + 0x2000), *pd = (uint64_t *)(mem + 0x3000);
  pml4[0] = 0x2000 | 7;          /* P W U */
  pdpt[0] = 0x3000 | 7;
  pd[0] = 0x00 | 0x87;           /* 2 MiB user page: the guest's memory (one page: this floor keeps no W^X) */
  pd[1] = DOORBELL | 0x87;       /* the doorbell: no memslot behind it */
  uint64_t *gdt = (uint64_t *)(mem + 0x5000);
  gdt[1] = 0x00AF9B000000FFFFull; /* 0x08 kernel code */
  gdt[2] = 0x00CF93000000FFFFull; /* 0x10 kernel data */
  gdt[3] = 0x00CFF3000000FFFFull; /* 0x18 user data, DPL 3 */
  gdt[4] = 0x00AFFB000000FFFFull; /* 0x20 user code, DPL 3 */
  uint64_t tss = 0x5100;
  gdt[5] = 103 | (tss << 16) | (0x8bull << 40); /* 0x28 TSS, busy */
  gdt[6] = 0;
  uint8_t *t = mem + tss;
  memset(t, 0, 104);
  *(uint64_t *)(t + 4) = 0x9000;  /* RSP0 */
  *(uint64_t *)(t + 36) = 0x9000; /* IST1 */
  *(uint16_t *)(t + 102) = 104;
  uint64_t *idt = (uint64_t *)(mem + 0x6000);
  uint64_t h = 0x7000;
  idt[6] = (h & 0xffff) | (0x08ull << 16) | (1ull << 32) | (0xeeull << 40) | ((h >> 16) << 48); /* vector 3, DPL 3, IST1 */
  idt[7] = 0;
  memcpy(mem + 0x7000, handler, sizeof handler);
  memcpy(mem + 0x4000, mmio_loop, sizeof mmio_loop);
  memcpy(mem + 0x4100, trap_loop, sizeof trap_loop);
  memcpy(mem + 0x4200, dec_loop, sizeof dec_loop);
  memcpy(mem + 0x4300, mailbox_loop, sizeof mailbox_loop);
  memcpy(mem + 0x4400, mailbox_pages_loop, sizeof mailbox_pages_loop);
}

static void set_cpl3(struct kvm_sregs *s) {
  struct kvm_segment cs = {.base = 0, .limit = 0xffffffff, .selector = 0x23, .type = 11, .present = 1, .dpl = 3, .s = 1, .l = 1, .g = 1};
  struct kvm_segment ds = {.base = 0, .limit = 0xffffffff, .selector = 0x1b, .type = 3, .present = 1, .dpl = 3, .s = 1, .db = 1, .g = 1};
  struct kvm_segment tr = {.base = 0x5100, .limit = 103, .selector = 0x28, .type = 11, .present = 1};
  s->cs = cs;
  s->ds = s->es = s->fs = s->gs = s->ss = ds;
  s->tr = tr;
  s->gdt.base = 0x5000;
  s->gdt.limit = 0x37;
  s->idt.base = 0x6000;
  s->idt.limit = 0xfff;
  s->cr3 = 0x1000;
  s->cr4 = 0x620;
  s->cr0 = 0x80050033;
  s->efer = 0xd00;
}

/* The cold cycle's syscalls, in evolve()'s order. */
static void setup(struct floor_machine *m, size_t mem_size, uint64_t rip) {
  floor_create_vm(m, mem_size);
  /* The library copies an init template's pages here (MemorySnapshot.restoreIntoZeroed). */
  memcpy(m->mem, template_image, template_size);
  write_guest(m->mem);
  floor_create_vcpu(m, cpuid);
  /* The library points LSTAR at an unmapped sentinel (a guest `syscall` then faults there). */
  struct { struct kvm_msrs hdr; struct kvm_msr_entry e[1]; } msrs = {.hdr = {.nmsrs = 1}, .e = {{.index = 0xc0000082, .data = 0x7fffffff0000ull}}};
  if (ioctl(m->vcpu, KVM_SET_MSRS, &msrs) != 1) die("KVM_SET_MSRS");
  if (ioctl(m->vcpu, KVM_SET_XSAVE, &xsave_ref) < 0) die("KVM_SET_XSAVE");
  floor_deny_msrs(m);
  if (floor_has_sync_regs(m)) {
    /* kvm_run's sync area holds the vCPU's registers only after a KVM_RUN: start from a
     * zeroed one and fill every field the guest needs, as the library does. */
    struct kvm_sregs *s = &m->run->s.regs.sregs;
    memset(s, 0, sizeof *s);
    set_cpl3(s);
    s->apic_base = 0xfee00900;
    struct kvm_regs *r = &m->run->s.regs.regs;
    memset(r, 0, sizeof *r);
    r->rip = rip;
    r->rsp = 0x8000;
    r->rdx = DOORBELL + 8 * 108;
    r->rflags = 2;
    m->run->kvm_dirty_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
  } else {
    struct kvm_sregs s;
    if (ioctl(m->vcpu, KVM_GET_SREGS, &s) < 0) die("KVM_GET_SREGS");
    set_cpl3(&s);
    if (ioctl(m->vcpu, KVM_SET_SREGS, &s) < 0) die("KVM_SET_SREGS");
    struct kvm_regs r = {.rip = rip, .rsp = 0x8000, .rdx = DOORBELL + 8 * 108, .rflags = 2};
    if (ioctl(m->vcpu, KVM_SET_REGS, &r) < 0) die("KVM_SET_REGS");
  }
}

static void run_to(struct floor_machine *m, unsigned reason) {
  if (ioctl(m->vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
  if (m->run->exit_reason != reason) {
    fprintf(stderr, "unexpected exit %u (wanted %u)\n", m->run->exit_reason, reason);
    exit(1);
  }
}

static void teardown(struct floor_machine *m) {
  floor_teardown(m);
}

/* `n` cold cycles (setup, one KVM_RUN to the doorbell, teardown) as JSON `"name":[...],`. */
static void cold_series(const char *name, size_t mem_size, int n) {
  printf("\"%s\":[", name);
  for (int i = 0; i < n; i++) {
    uint64_t t = now_ns();
    struct floor_machine m;
    setup(&m, mem_size, 0x4000);
    run_to(&m, KVM_EXIT_MMIO);
    teardown(&m);
    printf("%s%llu", i ? "," : "", (unsigned long long)(now_ns() - t));
  }
  printf("],");
}

static void series(const char *name, int first, struct floor_machine *m, unsigned reason, int n) {
  printf("%s\"%s\":[", first ? "" : ",", name);
  run_to(m, reason);
  for (int i = 0; i < n; i++) {
    uint64_t t = now_ns();
    run_to(m, reason);
    printf("%s%llu", i ? "," : "", (unsigned long long)(now_ns() - t));
  }
  printf("]");
}

static void loop_series(const char *name, struct floor_machine *m, uint64_t iterations, int n) {
  printf(",\"%s\":[", name);
  for (int i = 0; i < n; i++) {
    m->run->s.regs.regs.rip = 0x4200;
    m->run->s.regs.regs.rcx = iterations;
    m->run->s.regs.regs.rdx = DOORBELL + 8 * 108;
    m->run->s.regs.regs.rsp = 0x8000;
    m->run->s.regs.regs.rflags = 2;
    m->run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
    uint64_t t = now_ns();
    run_to(m, KVM_EXIT_MMIO);
    printf("%s%llu", i ? "," : "", (unsigned long long)(now_ns() - t));
  }
  printf("]");
}

static void on_kick(int sig) { (void)sig; }

struct vcpu_thread { struct floor_machine *m; volatile int done; };

/* The vCPU thread: one KVM_RUN that never exits on its own (a kick ends it: EINTR). */
static void *vcpu_thread(void *arg) {
  struct vcpu_thread *v = arg;
  ioctl(v->m->vcpu, KVM_RUN, 0);
  v->done = 1;
  return NULL;
}

static void mailbox_series(const char *name, size_t mem_size, uint64_t rip, int n, int restore) {
  struct floor_machine m;
  setup(&m, mem_size, rip);
  if (m.run->kvm_dirty_regs & KVM_SYNC_X86_REGS) { /* setup() set the registers through the sync area */
    m.run->s.regs.regs.rsi = MAILBOX;
    m.run->s.regs.regs.rbx = 0;
  } else {
    struct kvm_regs r;
    if (ioctl(m.vcpu, KVM_GET_REGS, &r) < 0) die("KVM_GET_REGS");
    r.rsi = MAILBOX;
    r.rbx = 0;
    if (ioctl(m.vcpu, KVM_SET_REGS, &r) < 0) die("KVM_SET_REGS");
  }
  volatile uint32_t *req = (volatile uint32_t *)(m.mem + MAILBOX), *resp = req + 16;
  static uint8_t saved[4 * 4096];
  memcpy(saved, m.mem + MAILBOX + 0x1000, sizeof saved);
  struct sigaction sa = {.sa_handler = on_kick};
  sigaction(SIGUSR1, &sa, NULL);
  struct vcpu_thread v = {.m = &m, .done = 0};
  pthread_t t;
  if (pthread_create(&t, NULL, vcpu_thread, &v) != 0) die("pthread_create");
  const int warm = 200;
  printf(",\"%s\":[", name);
  for (int i = 0; i < warm + n; i++) {
    uint32_t seq = (uint32_t)i + 1;
    uint64_t t0 = now_ns();
    __atomic_store_n(req, seq, __ATOMIC_RELEASE);
    while (__atomic_load_n(resp, __ATOMIC_ACQUIRE) != seq) {
      __builtin_ia32_pause();
      if (now_ns() - t0 > 5000000000ull) { fprintf(stderr, "mailbox: no answer\n"); exit(1); }
    }
    if (restore) memcpy(m.mem + MAILBOX + 0x1000, saved, sizeof saved);
    uint64_t dt = now_ns() - t0;
    if (i >= warm) printf("%s%llu", i > warm ? "," : "", (unsigned long long)dt);
  }
  printf("]");
  while (!v.done) {
    pthread_kill(t, SIGUSR1);
    usleep(1000);
  }
  pthread_join(t, NULL);
  teardown(&m);
}

int main(int argc, char **argv) {
  size_t mem_size = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x200000;
  int cold = argc > 2 ? atoi(argv[2]) : 200, warm = argc > 3 ? atoi(argv[3]) : 2000;
  template_size = mem_size < 0x200000 ? mem_size : 0x200000; /* the sandbox's memory size, as the library copies */
  mem_size = 0x200000; /* the 2 MiB page maps the whole slot; the doorbell is the next 2 MiB */
  template_image = calloc(1, template_size);
  for (size_t i = 0; i < template_size; i += 4096) template_image[i] = 1; /* every page non-zero, as copied */
  (void)argv;
  int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (kvm < 0) die("open /dev/kvm");
  cpuid = calloc(1, sizeof *cpuid + 256 * sizeof(struct kvm_cpuid_entry2));
  cpuid->nent = 256;
  if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0) die("KVM_GET_SUPPORTED_CPUID");
  close(kvm);
  /* A reset vCPU's XSAVE area, as the library's templates carry one. */
  struct floor_machine ref;
  {
    int k = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    ref.vm = ioctl(k, KVM_CREATE_VM, 0);
    ref.vcpu = ioctl(ref.vm, KVM_CREATE_VCPU, 0);
    if (ioctl(ref.vcpu, KVM_GET_XSAVE, &xsave_ref) < 0) die("KVM_GET_XSAVE");
    close(ref.vcpu);
    close(ref.vm);
    close(k);
  }
  /* The cold cycle first without the kernel anchor (none exists yet), then with it. */
  printf("{");
  cold_series("evolve_bare_ns", mem_size, cold);
  floor_hold_anchor();
  cold_series("evolve_ns", mem_size, cold);
  struct floor_machine m;
  setup(&m, mem_size, 0x4000);
  series("mmio_ns", 1, &m, KVM_EXIT_MMIO, warm);
  teardown(&m);
  setup(&m, mem_size, 0x4100);
  series("trap_ns", 0, &m, KVM_EXIT_IO, warm);
  teardown(&m);
  setup(&m, mem_size, 0x4000);
  run_to(&m, KVM_EXIT_MMIO);
  loop_series("loop_ns", &m, LOOP_N, 20);
  loop_series("loop1_ns", &m, 1, 200);
  teardown(&m);
  mailbox_series("mailbox_ns", mem_size, 0x4300, warm, 0);
  mailbox_series("mailbox_restore_ns", mem_size, 0x4400, warm, 1);
  printf(",\"loop_n\":%d}\n", LOOP_N);
  return 0;
}
