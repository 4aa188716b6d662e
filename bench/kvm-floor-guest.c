/* The C floor with the library's own guest: raw ioctls, no JavaScript, running the very
 * memory and vCPU state a sandbox has right before its first call (written by the
 * benchmark to a file: simpleguest's init template with Echo("hi") in its input buffer).
 * So the guest executes exactly the code a JS call runs, touching the same pages; only the
 * host side differs. Prints JSON with per-iteration nanoseconds of:
 *   cold_ns - evolve()'s syscalls from an init template (as kvm-floor-cpl3's evolve_ns,
 *             with the captured memory, registers, XSAVE, CPUID, LSTAR and XCR0, and the
 *             kernel anchor held), then one KVM_RUN to the guest's Halt doorbell (the first
 *             call), then teardown;
 *   warm_ns - a warm call on one machine: the call's input and output stack pointers put
 *             back as the library's I/O buffers leave them, KVM_RUN to the Halt doorbell.
 * Every run must end at the Halt doorbell (an MMIO store): anything else (a system call
 * through the stubs, a fault) is an error, as the guest made none of them in JS either.
 * Usage: kvm-floor-guest IMAGE COLD_ITERS WARM_ITERS */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kvm-floor-evolve.h"

#define PAGE 4096
#define MAGIC "HLFLOOR1"

/* The image file (little-endian), written by bench/guest-floor.ts. */
struct image_header {
  char magic[8];
  uint64_t mem_size, halt_gpa, input_gpa, output_gpa, io_prefix, npages;
  uint64_t dirty_regs, lstar, xcr0, regs_size, sregs_size, xsave_size, cpuid_size;
};

static struct image_header h;
static struct kvm_regs regs;
static struct kvm_sregs sregs;
static struct kvm_xsave xsave;
static struct kvm_cpuid2 *cpuid;
static uint64_t *page_gpa;
static uint8_t *page_data;
static uint8_t *input_prefix, *output_prefix;

static void read_exact(FILE *f, void *dst, size_t n, const char *what) {
  if (fread(dst, 1, n, f) != n) {
    fprintf(stderr, "kvm-floor-guest: image truncated reading %s\n", what);
    exit(1);
  }
}

static void load_image(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) die(path);
  read_exact(f, &h, sizeof h, "the header");
  if (memcmp(h.magic, MAGIC, 8) != 0 || h.regs_size != sizeof regs || h.sregs_size != sizeof sregs ||
      h.xsave_size != sizeof xsave || h.mem_size % PAGE || h.npages > h.mem_size / PAGE ||
      h.io_prefix > PAGE || h.cpuid_size < sizeof *cpuid || h.cpuid_size > (1u << 20)) {
    fprintf(stderr, "kvm-floor-guest: %s is not an image this program reads\n", path);
    exit(1);
  }
  read_exact(f, &regs, sizeof regs, "kvm_regs");
  read_exact(f, &sregs, sizeof sregs, "kvm_sregs");
  read_exact(f, &xsave, sizeof xsave, "the XSAVE area");
  cpuid = malloc(h.cpuid_size);
  if (!cpuid) die("malloc");
  read_exact(f, cpuid, h.cpuid_size, "kvm_cpuid2");
  page_gpa = malloc(h.npages * sizeof *page_gpa);
  page_data = malloc(h.npages * PAGE);
  if (!page_gpa || !page_data) die("malloc");
  for (uint64_t i = 0; i < h.npages; i++) {
    read_exact(f, &page_gpa[i], 8, "a page address");
    if (page_gpa[i] % PAGE || page_gpa[i] >= h.mem_size) {
      fprintf(stderr, "kvm-floor-guest: page address 0x%llx outside memory\n", (unsigned long long)page_gpa[i]);
      exit(1);
    }
    read_exact(f, page_data + i * PAGE, PAGE, "a page");
  }
  fclose(f);
}

/* evolve()'s syscalls from an init template, in its order, with the captured state. */
static void setup(struct floor_machine *m) {
  floor_create_vm(m, h.mem_size);
  for (uint64_t i = 0; i < h.npages; i++) memcpy(m->mem + page_gpa[i], page_data + i * PAGE, PAGE);
  floor_create_vcpu(m, cpuid);
  struct { struct kvm_msrs hdr; struct kvm_msr_entry e[1]; } msrs = {.hdr = {.nmsrs = 1}, .e = {{.index = 0xc0000082, .data = h.lstar}}};
  if (ioctl(m->vcpu, KVM_SET_MSRS, &msrs) != 1) die("KVM_SET_MSRS");
  if (h.xcr0) {
    struct kvm_xcrs xcrs = {.nr_xcrs = 1, .xcrs = {{.xcr = 0, .value = h.xcr0}}};
    if (ioctl(m->vcpu, KVM_SET_XCRS, &xcrs) < 0) die("KVM_SET_XCRS");
  }
  if (ioctl(m->vcpu, KVM_SET_XSAVE, &xsave) < 0) die("KVM_SET_XSAVE");
  floor_deny_msrs(m);
  if (floor_has_sync_regs(m)) {
    m->run->s.regs.regs = regs;
    m->run->s.regs.sregs = sregs;
    m->run->kvm_dirty_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
  } else {
    if (ioctl(m->vcpu, KVM_SET_SREGS, &sregs) < 0) die("KVM_SET_SREGS");
    if (ioctl(m->vcpu, KVM_SET_REGS, &regs) < 0) die("KVM_SET_REGS");
  }
}

/* One call: KVM_RUN to the Halt doorbell. */
static void run_call(struct floor_machine *m) {
  if (ioctl(m->vcpu, KVM_RUN, 0) < 0) die("KVM_RUN");
  if (m->run->exit_reason != KVM_EXIT_MMIO || m->run->mmio.phys_addr != h.halt_gpa || !m->run->mmio.is_write) {
    fprintf(stderr, "kvm-floor-guest: the call ended with exit %u at 0x%llx, not at the Halt doorbell\n",
            m->run->exit_reason, (unsigned long long)m->run->mmio.phys_addr);
    exit(1);
  }
}


/* The I/O buffers as the library leaves them for the call: the input holds the call, the output is empty. */
static void reset_io(struct floor_machine *m) {
  memcpy(m->mem + h.input_gpa, input_prefix, h.io_prefix);
  memcpy(m->mem + h.output_gpa, output_prefix, h.io_prefix);
}

static uint8_t *captured(uint64_t gpa) {
  uint8_t *copy = calloc(1, PAGE);
  if (!copy) die("calloc");
  for (uint64_t i = 0; i < h.npages; i++) {
    if (page_gpa[i] == (gpa & ~(uint64_t)(PAGE - 1))) memcpy(copy, page_data + i * PAGE + (gpa % PAGE), PAGE - gpa % PAGE);
  }
  return copy;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: kvm-floor-guest IMAGE COLD_ITERS WARM_ITERS\n");
    return 2;
  }
  load_image(argv[1]);
  int cold = atoi(argv[2]), warm = atoi(argv[3]);
  input_prefix = captured(h.input_gpa);
  output_prefix = captured(h.output_gpa);
  floor_hold_anchor();
  printf("{\"cold_ns\":[");
  for (int i = 0; i < cold; i++) {
    struct floor_machine m;
    uint64_t t = now_ns();
    setup(&m);
    run_call(&m);
    floor_teardown(&m);
    printf("%s%llu", i ? "," : "", (unsigned long long)(now_ns() - t));
  }
  printf("],\"warm_ns\":[");
  struct floor_machine m;
  setup(&m);
  run_call(&m);
  for (int i = 0; i < 100; i++) { reset_io(&m); run_call(&m); } /* warm-up, as the JS rows have */
  for (int i = 0; i < warm; i++) {
    uint64_t t = now_ns();
    reset_io(&m);
    run_call(&m);
    printf("%s%llu", i ? "," : "", (unsigned long long)(now_ns() - t));
  }
  floor_teardown(&m);
  printf("]}\n");
  return 0;
}
