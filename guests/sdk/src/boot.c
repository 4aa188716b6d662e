/* Guest start-up (PEB checks, GDT/TSS/IDT) and the abort stream with CPU exception reports; no dispatch, no libc. */
#include "internal.h"
#include "hyperlight/abi.h"

/* Read by entry.S: the 16-aligned top of the stack the dispatcher restarts on. */
HL_HOT_DATA_ uint64_t hl_stack_top;

/* What init learned from the PEB and the entry registers. */
struct hl_sdk_env {
  uint8_t *input;
  uint64_t input_size;
  uint8_t *output;
  uint64_t output_size;
  uint64_t stack_lo;
  uint8_t log_level;
};
HL_HOT_DATA_ struct hl_sdk_env hl_env;

extern char hl_exception_stubs[];

struct __attribute__((packed)) tss64 {
  uint32_t reserved0;
  uint64_t rsp[3];
  uint64_t reserved1;
  uint64_t ist[7];
  uint64_t reserved2;
  uint16_t reserved3;
  uint16_t iomap_base;
};

struct __attribute__((packed)) table_register {
  uint16_t limit;
  uint64_t base;
};

/* The constant descriptors are initialised data, so init only fills in what depends on
 * the load address (the TSS descriptor, IST1 and the IDT's handler addresses). */
static uint64_t gdt[5] __attribute__((aligned(16))) = {
    0,
    0x00AF9B000000FFFFull, /* 0x08: 64-bit code, DPL 0, L=1 */
    0x00CF93000000FFFFull, /* 0x10: data, read/write */
    0, 0,                  /* 0x18: the TSS, 16 bytes */
};
static struct tss64 tss __attribute__((aligned(16))) = {.iomap_base = sizeof(struct tss64)};
/* 32 16-byte interrupt gates, as two quadwords each. */
static uint64_t idt[64] __attribute__((aligned(16)));

static uint64_t peb_u64(const uint8_t *peb, unsigned off) {
  return *(const volatile uint64_t *)(peb + off);
}

/* ---------------------------------------------------------------- abort stream */

typedef struct {
  uint32_t word;
  unsigned n;
  unsigned total;
} abort_stream;

static void ab_byte(abort_stream *s, uint8_t b) {
  if (s->total >= HL_ABORT_MAX_BYTES) return;
  s->word |= (uint32_t)b << (8 * (s->n + 1));
  s->total++;
  if (++s->n == 3) {
    hl_out32(HL_PORT_ABORT, s->word | 3);
    s->word = 0;
    s->n = 0;
  }
}

__attribute__((noreturn)) void hl_sdk_abort(uint8_t code, const uint8_t *payload, size_t payload_len,
                                            const char *message, size_t message_len) {
  abort_stream s = {0, 0, 0};
  ab_byte(&s, code);
  for (size_t i = 0; i < payload_len; i++) ab_byte(&s, payload[i]);
  for (size_t i = 0; message && i < message_len; i++) ab_byte(&s, (uint8_t)message[i]);
  if (s.n) hl_out32(HL_PORT_ABORT, s.word | s.n);
  hl_out32(HL_PORT_ABORT, HL_ABORT_END);
  for (;;) __asm__ volatile("hlt");
}

static size_t cstrlen(const char *s) {
  size_t n = 0;
  while (s && s[n]) n++;
  return n;
}

__attribute__((noreturn)) void hl_abort_with_code(int32_t code) {
  hl_sdk_abort((uint8_t)code, NULL, 0, NULL, 0);
}

__attribute__((noreturn)) void hl_abort_with_code_and_message(int32_t code, const char *message) {
  hl_sdk_abort((uint8_t)code, NULL, 0, message, cstrlen(message));
}

/* ---------------------------------------------------------------- exceptions */

struct exception_frame {
  uint64_t vector, error, rip, cs, rflags, rsp, ss;
};

/* Names by vector, NUL-separated (a string, so that no pointer table needs relocating). */
static const char EXCEPTION_NAMES[] =
    "DivideError\0Debug\0NonMaskableInterrupt\0Breakpoint\0Overflow\0BoundRangeExceeded\0"
    "InvalidOpcode\0DeviceNotAvailable\0DoubleFault\0CoprocessorSegmentOverrun\0InvalidTSS\0"
    "SegmentNotPresent\0StackSegmentFault\0GeneralProtectionFault\0PageFault\0Reserved\0"
    "X87FloatingPoint\0AlignmentCheck\0MachineCheck\0SIMDFloatingPoint\0Virtualization\0"
    "ControlProtection\0Reserved\0Reserved\0Reserved\0Reserved\0Reserved\0Reserved\0"
    "HypervisorInjection\0VMMCommunication\0Security\0Reserved\0";

static const char *exception_name(unsigned vector) {
  const char *p = EXCEPTION_NAMES;
  for (unsigned i = 0; i < vector && i < 32; i++) p += cstrlen(p) + 1;
  return p;
}

/* Called by the stubs on the IST1 stack: report and halt. */
__attribute__((noreturn, used)) void hl_sdk_exception(struct exception_frame *f) {
  uint64_t cr2 = 0;
  __asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
  uint8_t code = HL_ABORT_CODE_EXCEPTION;
  const char *msg = exception_name((unsigned)f->vector);
  if (f->vector == 14 && cr2 < hl_env.stack_lo && cr2 >= hl_env.stack_lo - 4096) {
    code = HL_ABORT_CODE_STACK_OVERFLOW;
    msg = "StackOverflow";
  }
  uint8_t payload[25];
  payload[0] = (uint8_t)f->vector;
  for (unsigned i = 0; i < 8; i++) {
    payload[1 + i] = (uint8_t)(f->error >> (8 * i));
    payload[9 + i] = (uint8_t)(f->rip >> (8 * i));
    payload[17 + i] = (uint8_t)(cr2 >> (8 * i));
  }
  hl_sdk_abort(code, payload, sizeof payload, msg, cstrlen(msg));
}

/* ---------------------------------------------------------------- descriptor tables */

static void load_descriptor_tables(uint64_t ist_top) {
  uint64_t tss_base = (uint64_t)(uintptr_t)&tss;
  tss.ist[0] = ist_top;
  uint64_t limit = sizeof tss - 1;
  gdt[3] = (limit & 0xFFFF) | ((tss_base & 0xFFFFFF) << 16) | (0x89ull << 40) /* 64-bit TSS, present */
           | (((limit >> 16) & 0xF) << 48) | (((tss_base >> 24) & 0xFF) << 56);
  gdt[4] = tss_base >> 32; /* 0x18 is 16 bytes: upper half of the base */

  struct table_register gdtr = {sizeof gdt - 1, (uint64_t)(uintptr_t)gdt};
  __asm__ volatile(
      "lgdt %0\n\t"
      "pushq %1\n\t"
      "leaq 1f(%%rip), %%rax\n\t"
      "pushq %%rax\n\t"
      "lretq\n"
      "1:\n\t"
      "movl %2, %%eax\n\t"
      "movl %%eax, %%ds\n\t"
      "movl %%eax, %%es\n\t"
      "movl %%eax, %%ss\n\t"
      "movl %%eax, %%fs\n\t"
      "movl %%eax, %%gs\n\t"
      "movl %3, %%eax\n\t"
      "ltr %%ax\n\t"
      :
      : "m"(gdtr), "i"(HL_SEL_CODE), "i"(HL_SEL_DATA), "i"(HL_SEL_TSS)
      : "rax", "memory");

  /* Gate v points to stub v at stubs + 16 v. entry.S aligns the stubs to 512 bytes, so
   * the 32 handlers share offset bits 16..63 and gate v's low quadword is gate 0's plus
   * 16 v. The high quadword (offset bits 32..63, then zero) is 0 below 4 GiB, which the
   * zeroed .bss already holds. */
  uint64_t stubs = (uint64_t)(uintptr_t)hl_exception_stubs;
  uint64_t lo = (stubs & 0xFFFF) | ((uint64_t)HL_SEL_CODE << 16) | (1ull << 32) /* IST1 */
              | (0x8Eull << 40) /* present, DPL 0, 64-bit interrupt gate */
              | (((stubs >> 16) & 0xFFFF) << 48);
#pragma GCC unroll 32
  for (unsigned v = 0; v < 32; v++) idt[2 * v] = lo + 16 * v;
  if (stubs >> 32) {
    for (unsigned v = 0; v < 32; v++) idt[2 * v + 1] = stubs >> 32;
  }
  struct table_register idtr = {sizeof idt - 1, (uint64_t)(uintptr_t)idt};
  __asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}

static __attribute__((noreturn)) void bad_entry(const char *why) {
  hl_sdk_abort(HL_SDK_ABORT_RUNTIME, NULL, 0, why, cstrlen(why));
}

/* Called by _start with the entry registers. */
__attribute__((used)) void hl_sdk_init(const uint8_t *peb, uint64_t seed, uint64_t page_size,
                                       uint64_t log_level) {
  if (peb == NULL || ((uintptr_t)peb & 7)) bad_entry("bad PEB address");
  if (peb_u64(peb, HL_PEB_OFF_MAGIC) != HL_PEB_MAGIC) bad_entry("bad PEB magic");
  if (peb_u64(peb, HL_PEB_OFF_ABI_VERSION) != HL_ABI_VERSION) bad_entry("unsupported ABI version");
  if (page_size != 4096) bad_entry("page size is not 4096");
  uint64_t stack_lo = peb_u64(peb, HL_PEB_OFF_STACK_PTR);
  uint64_t stack_size = peb_u64(peb, HL_PEB_OFF_STACK_SIZE);
  uint64_t exn_lo = peb_u64(peb, HL_PEB_OFF_EXN_STACK_PTR);
  uint64_t exn_size = peb_u64(peb, HL_PEB_OFF_EXN_STACK_SIZE);
  if (stack_size < 4096 || exn_size < 512) bad_entry("stack or exception stack too small");
  hl_env.input = (uint8_t *)(uintptr_t)peb_u64(peb, HL_PEB_OFF_INPUT_PTR);
  hl_env.input_size = peb_u64(peb, HL_PEB_OFF_INPUT_SIZE);
  hl_env.output = (uint8_t *)(uintptr_t)peb_u64(peb, HL_PEB_OFF_OUTPUT_PTR);
  hl_env.output_size = peb_u64(peb, HL_PEB_OFF_OUTPUT_SIZE);
  hl_env.stack_lo = stack_lo;
  hl_env.log_level = log_level > hl_Level_None ? hl_Level_None : (uint8_t)log_level;
  hl_stack_top = (stack_lo + stack_size) & ~15ull;
  load_descriptor_tables((exn_lo + exn_size) & ~15ull);
  hl_heap_init((uintptr_t)peb_u64(peb, HL_PEB_OFF_HEAP_PTR), peb_u64(peb, HL_PEB_OFF_HEAP_SIZE));
  hl_rand_init(seed, peb);
}

void hl_debug_print(const char *text) {
  for (size_t i = 0; text && text[i]; i++) hl_out32(HL_PORT_DEBUG_PRINT, (uint8_t)text[i]);
}
