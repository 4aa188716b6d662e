/* The hostile test guest: each function breaks the guest/host contract in one way (buffers, flatbuffers, ports, memory, CPU state, host calls, aborts, floods) so the host's defences can be tested. */
/*
 * Most functions bypass the SDK: they write the I/O buffers directly and ring the host's
 * doorbell with raw stores, then Halt without going back through the SDK's dispatch code.
 * If the host accepts what it got and calls again, the vCPU resumes after the Halt;
 * halt_now() then jumps to the SDK's dispatch entry, as the SDK itself does. Others run
 * privileged instructions, which fault at CPL3, or change every piece of CPU state ring 3
 * can reach, for the host's restore tests.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hyperlight_guest.h"

/* ---------------------------------------------------------------- raw helpers */

extern void hl_dispatch_entry(void); /* entry.S: the address the SDK reports at init */

static inline uint64_t rd64(const volatile uint8_t *p) { return *(const volatile uint64_t *)p; }
static inline void wr64(volatile uint8_t *p, uint64_t v) { *(volatile uint64_t *)p = v; }
static inline void wr32(volatile uint8_t *p, uint32_t v) { *(volatile uint32_t *)p = v; }

/* The doorbell page, from the PEB. */
static volatile uint8_t *doorbell(void);

/* One raw doorbell store: `width` bytes (1, 2, 4 or 8) at byte `offset` of the page. */
static void ring_raw(uint64_t offset, uint64_t value, int width) {
  volatile uint8_t *p = doorbell() + offset;
  switch (width) {
  case 1: *(volatile uint8_t *)p = (uint8_t)value; break;
  case 2: *(volatile uint16_t *)p = (uint16_t)value; break;
  case 4: *(volatile uint32_t *)p = (uint32_t)value; break;
  default: *(volatile uint64_t *)p = value; break;
  }
}
static void ring(int32_t op, uint64_t value) { ring_raw((uint64_t)op * HL_DOORBELL_STRIDE, value, 8); }

/* Halt now (the call is over as far as the host can tell); a resumed vCPU re-enters dispatch. */
static __attribute__((noreturn)) void halt_now(void) {
  volatile uint64_t *halt = (volatile uint64_t *)(doorbell() + HL_OP_HALT * HL_DOORBELL_STRIDE);
  __asm__ volatile("movq $0, %0\n\tjmp hl_dispatch_entry" : "=m"(*halt) : : "memory");
  __builtin_unreachable();
}

/* The PEB, as the SDK's entry code found it in RDI (docs/guest-abi.md: the CPU state at entry). */
extern const volatile uint8_t *hl_peb;
static const uint8_t *peb(void) { return (const uint8_t *)hl_peb; }
static uint8_t *output_buf(void) { return (uint8_t *)(uintptr_t)rd64(peb() + HL_PEB_OFF_OUTPUT_PTR); }
static uint64_t output_size(void) { return rd64(peb() + HL_PEB_OFF_OUTPUT_SIZE); }
static uint8_t *input_buf(void) { return (uint8_t *)(uintptr_t)rd64(peb() + HL_PEB_OFF_INPUT_PTR); }
static volatile uint8_t *doorbell(void) { return (volatile uint8_t *)(uintptr_t)rd64(peb() + HL_PEB_OFF_DOORBELL_PTR); }

/* Pushes `len` bytes onto the output stack exactly as the ABI says (no checks). */
static void push_output(const uint8_t *data, size_t len) {
  uint8_t *out = output_buf();
  uint64_t sp = rd64(out);
  memcpy(out + sp, data, len);
  wr64(out + sp + len, sp);
  wr64(out, sp + len + 8);
}

/* Pops the top element of the input stack (a host-call result) without reading it. */
static void pop_input(void) {
  uint8_t *in = input_buf();
  uint64_t sp = rd64(in);
  wr64(in, rd64(in + sp - 8));
}

/* A valid FunctionCallResult holding Int 7, pushed onto the output stack; returns its offset. */
static uint64_t push_valid_int_result(size_t *len) {
  hl_Vec *r = hl_flatbuffer_result_from_Int(7);
  if (r == NULL) hl_abort_with_code_and_message(1, "no heap for a result");
  uint64_t at = rd64(output_buf());
  push_output(r->data, r->len);
  *len = r->len;
  return at; /* r is not freed: the call never returns through the SDK, restore clears the heap */
}

/* ---------------------------------------------------------------- the output buffer */

/* Sets the output stack pointer to any value, then halts. */
static int32_t output_sp(uint64_t sp) {
  wr64(output_buf(), sp);
  halt_now();
}

/* Pushes a valid result, then overwrites its back-pointer. */
static int32_t output_back_pointer(uint64_t bp) {
  size_t len;
  uint64_t at = push_valid_int_result(&len);
  wr64(output_buf() + at + len, bp);
  halt_now();
}

/* Pushes a valid result, then makes its size prefix claim `size` bytes. */
static int32_t output_size_claim(uint32_t size) {
  size_t len;
  uint64_t at = push_valid_int_result(&len);
  wr32(output_buf() + at, size);
  halt_now();
}

/* Pushes `element` verbatim (the caller supplies the size prefix and flatbuffer) and
 * rings doorbell op `op`: 108 makes it the call's result; 101 a host call; 99 a log record.
 * When the host accepts a host call or a log, the function returns 1 normally. */
static int32_t push_element(hl_Vec element, int32_t op) {
  wr64(output_buf(), 8);
  push_output(element.data, element.len);
  if (op == HL_OP_HALT) halt_now();
  ring(op, 0);
  if (op == HL_OP_CALL_FUNCTION) pop_input();
  wr64(output_buf(), 8);
  return 1;
}

/* Copies `bytes` over the output buffer at `offset` (0 overwrites the stack pointer too)
 * and rings `op` as push_element does. The fuzz target of the run loop's input path. */
static int32_t scribble(hl_Vec bytes, int32_t offset, int32_t op) {
  uint8_t *out = output_buf();
  uint64_t size = output_size();
  size_t n = bytes.len;
  if ((uint64_t)offset > size) offset = (int32_t)size;
  if (n > size - (uint64_t)offset) n = (size_t)(size - (uint64_t)offset);
  memcpy(out + offset, bytes.data, n);
  if (op == HL_OP_HALT) halt_now();
  ring(op, 0);
  if (op == HL_OP_CALL_FUNCTION) pop_input();
  wr64(output_buf(), 8);
  return 1;
}

/* A String result that is not valid UTF-8 (the SDK copies bytes as given). */
static const char *bad_utf8(void) { return "bad \xC3\x28 \xFF\xFE"; }

/* A String result whose NUL terminator is replaced, pushed by hand. */
static const char *unterminated_string(void) {
  hl_Vec *r = hl_flatbuffer_result_from_String("TERMINATE");
  if (r == NULL) hl_abort_with_code_and_message(1, "no heap for a result");
  for (size_t i = 0; i + 9 < r->len; i++) {
    if (memcmp(r->data + i, "TERMINATE", 9) == 0) r->data[i + 9] = 'X';
  }
  wr64(output_buf(), 8);
  push_output(r->data, r->len);
  halt_now();
}

/* ---------------------------------------------------------------- the doorbell */

/* A raw store of `width` bytes at doorbell offset `offset` (misaligned, narrow, unknown op). */
static int32_t doorbell_store(uint64_t offset, int32_t width, uint64_t value) {
  ring_raw(offset & 0xFFF, value, width);
  return 0;
}
/* A load from the doorbell page (an MMIO read). */
static uint64_t doorbell_load(uint64_t offset) { return *(volatile uint64_t *)(doorbell() + (offset & 0xFF8)); }
/* A DebugPrint of `len` bytes at guest address `addr` (outside memory, into the system area, too long). */
static int32_t debug_print_range(uint64_t addr, uint64_t len) {
  ring(HL_OP_DEBUG_PRINT, (addr & 0xFFFFFFFFull) | (len << 32));
  return 0;
}

/* ---------------------------------------------------------------- floods */

/* Sends `total` bytes of text to DebugPrint, 4 KiB per doorbell store, and returns the count. */
static int64_t debug_flood(int64_t total) {
  static char text[4096];
  for (size_t i = 0; i < sizeof text; i++) text[i] = (char)('a' + i % 26);
  text[sizeof text - 1] = '\n';
  int64_t sent = 0;
  while (sent < total) {
    size_t n = (uint64_t)(total - sent) < sizeof text ? (size_t)(total - sent) : sizeof text;
    ring(HL_OP_DEBUG_PRINT, (uint64_t)(uintptr_t)text | ((uint64_t)n << 32));
    sent += (int64_t)n;
  }
  return sent;
}

/* Sends `total` bytes to HostPrint in strings of `chunk` bytes: the first through the SDK,
 * the rest by re-sending the same FunctionCall element still lying in the output buffer
 * (the host pops it but does not erase it). Returns the bytes sent. */
static int64_t host_print_flood(int64_t total, int32_t chunk) {
  if (chunk < 1) chunk = 1;
  char *s = malloc((size_t)chunk + 1);
  if (s == NULL) hl_abort_with_code_and_message(1, "no heap for the text");
  memset(s, 'p', (size_t)chunk);
  s[chunk - 1] = '\n';
  s[chunk] = 0;
  hl_Parameter p = {.tag = hl_ParameterType_String, .value.String = s};
  hl_FunctionCall call = {"HostPrint", &p, 1, hl_ReturnType_Int};
  hl_call_host_function(&call);
  int64_t sent = chunk;
  uint8_t *out = output_buf();
  uint64_t element_end = 8 + 4 + *(volatile uint32_t *)(out + 8);
  element_end = (element_end + 7) & ~(uint64_t)7; /* the SDK pads elements to 8 bytes */
  while (sent < total) {
    wr64(out, element_end + 8); /* the back-pointer (8) is still behind the element */
    ring(HL_OP_CALL_FUNCTION, 0);
    pop_input();
    sent += chunk;
  }
  free(s);
  return sent;
}

/* Calls HostAdd(1, 2) `n` times in a row: once through the SDK, then by re-sending the
 * same FunctionCall element (guest-side flatbuffer building costs far more than the host
 * call on this KVM), popping each answer. Returns the number of calls made. */
static int32_t call_host_repeatedly(int32_t n) {
  if (n < 1) return 0;
  hl_Parameter p[2] = {{.tag = hl_ParameterType_Int, .value.Int = 1},
                       {.tag = hl_ParameterType_Int, .value.Int = 2}};
  hl_FunctionCall call = {"HostAdd", p, 2, hl_ReturnType_Int};
  hl_call_host_function(&call);
  if (hl_get_host_return_value_as_Int() != 3) return -1;
  uint8_t *out = output_buf();
  uint64_t element_end = (8 + 4 + (uint64_t) * (volatile uint32_t *)(out + 8) + 7) & ~(uint64_t)7;
  for (int32_t i = 1; i < n; i++) {
    wr64(out, element_end + 8);
    ring(HL_OP_CALL_FUNCTION, 0);
    pop_input();
  }
  return n;
}

/* Re-sends one host call `n` times without ever popping the host's answers, so the
 * input buffer fills up. */
static int32_t call_host_no_pop(int32_t n) {
  hl_Parameter p[2] = {{.tag = hl_ParameterType_Int, .value.Int = 1},
                       {.tag = hl_ParameterType_Int, .value.Int = 2}};
  hl_FunctionCall call = {"HostAdd", p, 2, hl_ReturnType_Int};
  hl_call_host_function(&call);
  uint8_t *out = output_buf();
  uint64_t element_end = (8 + 4 + (uint64_t) * (volatile uint32_t *)(out + 8) + 7) & ~(uint64_t)7;
  for (int32_t i = 0; i < n; i++) {
    wr64(out, element_end + 8);
    ring(HL_OP_CALL_FUNCTION, 0);
  }
  return n;
}

/* Host calls the host must refuse: wrong argument types, wrong count, an unknown name. */
static int32_t call_host_wrong_types(void) {
  hl_Parameter p[2] = {{.tag = hl_ParameterType_String, .value.String = "one"},
                       {.tag = hl_ParameterType_Bool, .value.Bool = true}};
  hl_FunctionCall call = {"HostAdd", p, 2, hl_ReturnType_Int};
  hl_call_host_function(&call);
  return hl_get_host_return_value_as_Int();
}
static int32_t call_host_wrong_count(void) {
  hl_Parameter p = {.tag = hl_ParameterType_Int, .value.Int = 1};
  hl_FunctionCall call = {"HostAdd", &p, 1, hl_ReturnType_Int};
  hl_call_host_function(&call);
  return hl_get_host_return_value_as_Int();
}
static int32_t call_host_unknown(const char *name) {
  hl_FunctionCall call = {name, NULL, 0, hl_ReturnType_Int};
  hl_call_host_function(&call);
  return hl_get_host_return_value_as_Int();
}
/* Asks HostAdd for a String: the host answers Int, the SDK fails the call with code 15. */
static const char *call_host_wrong_return(void) {
  hl_Parameter p[2] = {{.tag = hl_ParameterType_Int, .value.Int = 1},
                       {.tag = hl_ParameterType_Int, .value.Int = 2}};
  hl_FunctionCall call = {"HostAdd", p, 2, hl_ReturnType_String};
  hl_call_host_function(&call);
  return hl_get_host_return_value_as_String();
}

/* ---------------------------------------------------------------- aborts */

/* An abort with code 42 whose record claims `bytes` message bytes of "ABC..." (the SDK
 * would stop at 1024; the host must bound what it reads). */
static int32_t abort_huge(int32_t bytes) {
  static uint8_t record[1 + 128 * 1024];
  if (bytes < 0 || (size_t)bytes > sizeof record - 1) bytes = sizeof record - 1;
  record[0] = 42;
  for (int32_t i = 0; i < bytes; i++) record[1 + i] = (uint8_t)("ABC"[i % 3]);
  ring(HL_OP_ABORT, (uint64_t)(uintptr_t)record | ((uint64_t)(bytes + 1) << 32));
  return 0;
}
/* An abort record of zero bytes. */
static int32_t abort_empty(void) {
  static uint8_t record[1];
  ring(HL_OP_ABORT, (uint64_t)(uintptr_t)record);
  return 0;
}
/* An abort record at any address (outside memory, in the host's system area). */
static int32_t abort_at(uint64_t addr) {
  ring(HL_OP_ABORT, (addr & 0xFFFFFFFFull) | (16ull << 32));
  return 0;
}

/* ---------------------------------------------------------------- memory */

/* Reads (mode 0), writes (1) or executes (2) guest address `addr`: unmapped pages, the
 * host's supervisor-only system area, the read-only PEB and code, beyond memory. */
static uint64_t wild_access(uint64_t addr, int32_t mode) {
  volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)addr;
  uint64_t v = 0;
  if (mode == 0) v = *p;
  else if (mode == 1) *p = 0x5A5A5A5A5A5A5A5AULL;
  else ((void (*)(void))(uintptr_t)p)();
  return v;
}

static void jump_to_zero(void) {
  void (*volatile f)(void) = 0;
  f();
}

/* Loses its stack: RSP = 0, then a push (the exception still arrives on the host's IST1). */
static void smash_rsp(void) { __asm__ volatile("xor %%esp, %%esp\n\tpushq $1" ::: "memory"); }

static void int3(void) { __asm__ volatile("int3"); }

/* An integer division the compiler cannot fold: Divide(1, 0) is a #DE. */
static int32_t divide(int32_t a, int32_t b) {
  volatile int32_t d = b;
  return a / d;
}

static void spin(void) {
  for (;;) __asm__ volatile("" ::: "memory");
}

/* ---------------------------------------------------------------- privileged instructions */

/* Runs privileged instruction `which` (see the table in the host's test): each faults at
 * CPL3 (#GP or #UD), except where the CPU lets ring 3 run it (returns 1 then). */
static int32_t privileged(int32_t which, uint64_t arg) {
  struct __attribute__((packed)) {
    uint16_t limit;
    uint64_t base;
  } dt = {0, 0};
  uint32_t lo = (uint32_t)arg, hi = (uint32_t)(arg >> 32);
  switch (which) {
  case 0: __asm__ volatile("wrmsr" : : "c"((uint32_t)0xc0000082), "a"(lo), "d"(hi)); break;      /* LSTAR */
  case 1: __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"((uint32_t)0x4b564d03)); break;      /* steal time */
  case 2: __asm__ volatile("mov %0, %%cr3" : : "r"(arg) : "memory"); break;
  case 3: __asm__ volatile("lgdt %0" : : "m"(dt) : "memory"); break;
  case 4: __asm__ volatile("lidt %0" : : "m"(dt) : "memory"); break;
  case 5: __asm__ volatile("cli" ::: "memory"); break;
  case 6: __asm__ volatile("hlt" ::: "memory"); break;
  case 7: __asm__ volatile("inl %%dx, %%eax" : "=a"(lo) : "d"(0x3f8) : "memory"); break;
  case 8: __asm__ volatile("outl %%eax, %%dx" : : "a"(lo), "d"(108) : "memory"); break;
  case 9: __asm__ volatile("swapgs" ::: "memory"); break;
  case 10: __asm__ volatile("mov %0, %%dr7" : : "r"(arg | 0x401) : "memory"); break;
  case 11: __asm__ volatile("xsetbv" : : "c"(0), "a"(lo | 1), "d"(hi) : "memory"); break;
  case 12: __asm__ volatile("invlpg (%0)" : : "r"(arg) : "memory"); break;
  case 13: __asm__ volatile("vmcall" : "+a"(lo) : : "memory"); break;
  case 14: __asm__ volatile("sti" ::: "memory"); break;
  case 15: __asm__ volatile("mov %0, %%cr0" : : "r"(arg) : "memory"); break;
  case 16: __asm__ volatile("wrmsr" : : "c"((uint32_t)0x4b564d03), "a"(lo | 1), "d"(hi)); break; /* steal time */
  case 17: __asm__ volatile("mov %0, %%dr0" : : "r"(arg) : "memory"); break;
  case 18: __asm__ volatile("wrmsr" : : "c"((uint32_t)0xc0000102), "a"(lo), "d"(hi)); break;      /* KERNEL_GS_BASE */
  case 19: __asm__ volatile("int $0x80" ::: "memory"); break;
  case 20: __asm__ volatile("ltr %w0" : : "r"(0x40) : "memory"); break;
  default: return -1;
  }
  return 1;
}

/* ---------------------------------------------------------------- CPU state ring 3 can change */

/* Changes every piece of CPU state ring 3 reaches without faulting: x87 (stack, control
 * word), MXCSR, all XMM and (with AVX) YMM registers, FS/GS base (wrfsbase when enabled),
 * the data segment registers, then returns normally. `seed` varies the
 * values; returns 1 when AVX was used. */
static int32_t dirty_cpu_state(uint64_t seed, int32_t use_avx) {
  static uint64_t pattern[8] __attribute__((aligned(32)));
  for (int i = 0; i < 8; i++) pattern[i] = seed * 0x9E3779B97F4A7C15ull + (uint64_t)i;
  __asm__ volatile(
      "movdqa (%0), %%xmm0\n\tmovdqa 16(%0), %%xmm1\n\tmovdqa %%xmm0, %%xmm2\n\tmovdqa %%xmm1, %%xmm3\n\t"
      "movdqa %%xmm0, %%xmm4\n\tmovdqa %%xmm1, %%xmm5\n\tmovdqa %%xmm0, %%xmm6\n\tmovdqa %%xmm1, %%xmm7\n\t"
      "movdqa %%xmm0, %%xmm8\n\tmovdqa %%xmm1, %%xmm9\n\tmovdqa %%xmm0, %%xmm10\n\tmovdqa %%xmm1, %%xmm11\n\t"
      "movdqa %%xmm0, %%xmm12\n\tmovdqa %%xmm1, %%xmm13\n\tmovdqa %%xmm0, %%xmm14\n\tmovdqa %%xmm1, %%xmm15\n\t"
      : : "r"(pattern) : "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "memory");
  int32_t avx = 0;
  if (use_avx) {
    uint32_t a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if ((c & (1u << 27)) && (c & (1u << 28))) { /* OSXSAVE and AVX */
      uint32_t xlo, xhi;
      __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
      if ((xlo & 6) == 6) {
        __asm__ volatile("vmovdqa (%0), %%ymm0\n\tvmovdqa %%ymm0, %%ymm15" : : "r"(pattern) : "xmm0", "xmm15", "memory");
        avx = 1;
      }
    }
  }
  uint32_t mxcsr = 0x1f80 ^ 0x6000; /* rounding toward zero */
  __asm__ volatile("ldmxcsr %0" : : "m"(mxcsr));
  uint16_t fcw = 0x037f ^ 0x0c00; /* x87 rounding toward zero */
  __asm__ volatile("fldcw %0\n\tfld1\n\tfldpi\n\tfldl2e" : : "m"(fcw) : "memory");
  __asm__ volatile("movl %0, %%ds\n\tmovl %0, %%es" : : "r"(0) : "memory"); /* null selectors */
  __asm__ volatile("std\n\tcld" ::: "memory", "cc");
  return avx;
}

/* wrfsbase/wrgsbase (only where the host enabled CR4.FSGSBASE; #UD otherwise). */
static int32_t set_fs_gs_base(uint64_t fs, uint64_t gs) {
  __asm__ volatile("wrfsbase %0\n\twrgsbase %1" : : "r"(fs), "r"(gs) : "memory");
  return 1;
}

/* SSE and x87 arithmetic a CPL0 guest could not run on some KVMs: returns 1000 * (sqrt(2) + pi). */
static double fp_work(double x) {
  double s = 0, r;
  __asm__("sqrtsd %1, %0" : "=x"(r) : "x"(x)); /* SSE2 */
  for (int i = 0; i < 1000; i++) s += r + 3.141592653589793;
  long double l = 1.0L;
  __asm__ volatile("fld1\n\tfaddp" : "+t"(l));
  return s + (double)(l - 2.0L);
}

/* ---------------------------------------------------------------- exitless mode */

/* The SDK's mailbox page (mailbox.c); NULL unless the host switched to exitless mode. */
extern volatile uint8_t *hl_mailbox;
#define MBW(off) (*(volatile uint32_t *)(hl_mailbox + (off)))

/* Sets the mailbox's spin budget to forever: the guest then never parks by itself (the
 * host parks it after a time slice). -1 outside exitless mode. */
static int32_t mailbox_never_park(void) {
  if (hl_mailbox == NULL) return -1;
  *(volatile uint64_t *)(hl_mailbox + HL_MB_OFF_SPIN_TICKS) = ~0ull;
  return 0;
}

/* Posts `op` raw (argument `arg`) as the SDK would, without waiting for an answer. */
static void mailbox_post_raw(unsigned op, uint64_t arg) {
  *(volatile uint64_t *)(hl_mailbox + HL_MB_OFF_GUEST_ARG) = arg;
  uint32_t seq = (MBW(HL_MB_OFF_GUEST_STATE + 4) + 1) & 0xFFFFFF;
  MBW(HL_MB_OFF_GUEST_STATE + 4) = seq;
  __atomic_exchange_n((volatile uint32_t *)(hl_mailbox + HL_MB_OFF_GUEST_WORD), seq << 8 | op, __ATOMIC_SEQ_CST);
  if (MBW(HL_MB_OFF_WAITING) != 0) ring(HL_OP_WAKE, 0);
}

/* Posts an op no guest may post (the host poisons the sandbox). */
static int32_t mailbox_bad_op(int32_t op) {
  if (hl_mailbox == NULL) return -1;
  mailbox_post_raw((unsigned)op & 0xFF, 0);
  for (;;) __builtin_ia32_pause(); /* the host stops the vCPU */
}

/* A transient flip of one bit of *at (bit and hold time from x): held for a few pauses, then
 * put back, so that reads that overlap it see it and the others do not. */
static void transient_flip(volatile uint8_t *at, uint32_t x) {
  uint8_t bit = (uint8_t)(1u << (x >> 3 & 7));
  *at ^= bit;
  for (uint32_t d = x >> 26; d != 0; d--) __builtin_ia32_pause();
  *at ^= bit;
}

static uint32_t xorshift(uint32_t x) {
  x ^= x << 13; x ^= x >> 17; x ^= x << 5;
  return x;
}

/* The race: `rounds` times, re-posts a host call (HostAdd(1, 2), built once by the SDK) and
 * flips random bytes of the output buffer, its stack pointer and the mailbox argument while
 * the host reads them, until the host answers. Returns the rounds the host answered. */
static int32_t mailbox_flip(int32_t seed, int32_t rounds) {
  if (hl_mailbox == NULL) return -1;
  hl_Parameter p[2] = {{.tag = hl_ParameterType_Int, .value.Int = 1}, {.tag = hl_ParameterType_Int, .value.Int = 2}};
  hl_FunctionCall call = {"HostAdd", p, 2, hl_ReturnType_Int};
  /* Without the host's inline feature the SDK sends a FunctionCall flatbuffer, which stays
   * at output + 8 (with it, HostAdd's scalars would go in the mailbox record). */
  uint32_t features = MBW(HL_MB_OFF_HOST_FEATURES);
  MBW(HL_MB_OFF_HOST_FEATURES) = 0;
  hl_call_host_function(&call);
  MBW(HL_MB_OFF_HOST_FEATURES) = features;
  uint8_t *out = output_buf();
  uint32_t size = *(uint32_t *)(out + 8);
  uint64_t end = ((8 + 4 + (uint64_t)size + 7) & ~(uint64_t)7) + 8; /* element, padding, back-pointer */
  if (end > 4096) return -2;
  static uint8_t copy[4096];
  memcpy(copy, out, end);
  uint32_t x = (uint32_t)seed | 1;
  int32_t answered = 0;
  for (int32_t r = 0; r < rounds; r++) {
    memcpy(out + 8, copy + 8, end - 8);
    wr64(out, end);
    uint32_t seen = MBW(HL_MB_OFF_HOST_WORD);
    mailbox_post_raw(HL_OP_CALL_FUNCTION, 0);
    for (long i = 0; i < 2000000 && MBW(HL_MB_OFF_HOST_WORD) == seen; i++) {
      x = xorshift(x);
      volatile uint8_t *at;
      switch (x & 7) {
      case 0: at = out + (x >> 29); break;                     /* the stack pointer */
      case 1: at = hl_mailbox + HL_MB_OFF_GUEST_ARG + (x >> 29); break;
      default: at = out + 8 + (x >> 8) % (end - 8); break;     /* the element */
      }
      transient_flip(at, x);
    }
    uint32_t now = MBW(HL_MB_OFF_HOST_WORD);
    MBW(HL_MB_OFF_GUEST_STATE) = now; /* consumed, as the SDK would */
    if (now != seen && (now & 15) == HL_MB_CMD_REPLY) answered++;
  }
  return answered;
}

/* An inline host call HostAdd(a, b) written into the mailbox's guest record and name line. */
static void inline_host_add(int32_t a, int32_t b) {
  volatile uint8_t *rec = hl_mailbox + HL_MB_OFF_GUEST_RECORD;
  static const char name[] = "HostAdd";
  for (size_t i = 0; i < sizeof name - 1; i++) hl_mailbox[HL_MB_OFF_GUEST_NAME + i] = (uint8_t)name[i];
  rec[HL_MB_REC_OFF_NAME_LEN] = sizeof name - 1;
  rec[HL_MB_REC_OFF_COUNT] = 2;
  rec[HL_MB_REC_OFF_TYPE] = hl_ReturnType_Int;
  rec[HL_MB_REC_OFF_PTYPES] = hl_ParameterType_Int;
  rec[HL_MB_REC_OFF_PTYPES + 1] = hl_ParameterType_Int;
  *(volatile uint64_t *)(rec + HL_MB_REC_OFF_VALUES) = (uint32_t)a;
  *(volatile uint64_t *)(rec + HL_MB_REC_OFF_VALUES + 8) = (uint32_t)b;
}

/* The race on inline messages: `rounds` times, posts HostAdd(1, 2) as an inline host call and
 * flips random bits of its record, name line and argument while the host reads them, until
 * the host answers (inline, or with a FunctionCallResult, which is dropped). Returns the
 * rounds the host answered. */
static int32_t mailbox_flip_inline(int32_t seed, int32_t rounds) {
  if (hl_mailbox == NULL) return -1;
  uint32_t x = (uint32_t)seed | 1;
  int32_t answered = 0;
  for (int32_t r = 0; r < rounds; r++) {
    inline_host_add(1, 2);
    wr64(input_buf(), HL_IOBUF_EMPTY_SP); /* drop what a FunctionCallResult reply left */
    uint32_t seen = MBW(HL_MB_OFF_HOST_WORD);
    mailbox_post_raw(HL_OP_CALL_INLINE, 0);
    for (long i = 0; i < 2000000 && MBW(HL_MB_OFF_HOST_WORD) == seen; i++) {
      x = xorshift(x);
      volatile uint8_t *at;
      switch (x & 3) {
      case 0: at = hl_mailbox + HL_MB_OFF_GUEST_NAME + (x >> 29); break;        /* the name */
      case 1: at = hl_mailbox + HL_MB_OFF_GUEST_ARG + (x >> 29); break;
      default: at = hl_mailbox + HL_MB_OFF_GUEST_RECORD + (x >> 8) % 24; break;  /* header, types, values */
      }
      transient_flip(at, x);
    }
    uint32_t now = MBW(HL_MB_OFF_HOST_WORD);
    MBW(HL_MB_OFF_GUEST_STATE) = now; /* consumed, as the SDK would */
    unsigned cmd = now & 15;
    if (now != seen && (cmd == HL_MB_CMD_REPLY || cmd == HL_MB_CMD_REPLY_INLINE)) answered++;
  }
  wr64(input_buf(), HL_IOBUF_EMPTY_SP);
  return answered;
}

/* Posts a malformed inline message (the host poisons the sandbox): 0 a name of 0 bytes, 1 of
 * 121, 2 five parameters, 3 a String parameter whose bytes run past the name line, 4 a name
 * that is not UTF-8, 5 a call's String value of 121 bytes, 6 a call's value of type VecBytes
 * (5 and 6 with the right Halt argument). */
static int32_t mailbox_bad_inline(int32_t kind) {
  if (hl_mailbox == NULL) return -1;
  volatile uint8_t *rec = hl_mailbox + HL_MB_OFF_GUEST_RECORD;
  inline_host_add(1, 2);
  switch (kind) {
  case 0: rec[HL_MB_REC_OFF_NAME_LEN] = 0; break;
  case 1: rec[HL_MB_REC_OFF_NAME_LEN] = HL_MB_NAME_MAX + 1; break;
  case 2: rec[HL_MB_REC_OFF_COUNT] = HL_MB_REC_MAX_PARAMS + 1; break;
  case 3:
    rec[HL_MB_REC_OFF_PTYPES + 1] = hl_ParameterType_String;
    *(volatile uint64_t *)(rec + HL_MB_REC_OFF_VALUES + 8) = HL_MB_NAME_MAX - 6; /* + the 7-byte name */
    break;
  case 4: hl_mailbox[HL_MB_OFF_GUEST_NAME] = 0xff; break;
  default:
    rec[HL_MB_REC_OFF_TYPE] = kind == 5 ? hl_ReturnType_String : hl_ReturnType_VecBytes;
    *(volatile uint64_t *)(rec + HL_MB_REC_OFF_VALUES) = HL_MB_NAME_MAX + 1;
    mailbox_post_raw(HL_OP_HALT_INLINE, MBW(HL_MB_OFF_GUEST_STATE + 8)); /* the call word it answers */
    for (;;) __builtin_ia32_pause();
  }
  mailbox_post_raw(HL_OP_CALL_INLINE, 0);
  for (;;) __builtin_ia32_pause(); /* the host stops the vCPU */
}

/* ---------------------------------------------------------------- heap */

/* Allocates 1 KiB blocks until malloc fails and keeps them: the heap stays exhausted, so
 * even the result cannot be allocated (the SDK reports MallocFailed). */
static int32_t exhaust_heap_keep(void) {
  int32_t n = 0;
  while (malloc(1024) != NULL) n++;
  return n;
}
/* Allocates until malloc fails, then frees everything and returns the block count. */
static int32_t exhaust_heap_and_free(void) {
  void **head = NULL;
  int32_t n = 0;
  for (;;) {
    void **b = malloc(1024);
    if (b == NULL) break;
    *b = head;
    head = b;
    n++;
  }
  while (head != NULL) {
    void **next = *head;
    free(head);
    head = next;
  }
  return n;
}
/* Asks malloc for absurd sizes; returns how many of them did not return NULL. */
static int32_t absurd_allocations(void) {
  int32_t got = 0;
  got += malloc((size_t)-1) != NULL;
  got += malloc((size_t)-16) != NULL;
  got += calloc((size_t)1 << 40, (size_t)1 << 40) != NULL;
  got += calloc((size_t)-1, 2) != NULL;
  got += realloc(NULL, (size_t)-8) != NULL;
  return got;
}

/* A normal function, to show the sandbox works after a restore. */
static int32_t ping(int32_t v) { return v + 1; }

/* DebugPrints `text` (no newline is added) and aborts with code 42 before any Halt, so the
 * text is still waiting in the host's line buffer when the call fails. */
static int32_t print_then_abort(const char *text) {
  hl_debug_print(text);
  hl_abort_with_code(42);
}

/* 64 bits of the SDK's rand(): the same in two sandboxes exactly when their seeds are. */
static uint64_t next_random(void) {
  uint64_t hi = (uint64_t)rand();
  return (hi << 33) ^ (uint64_t)rand();
}

HYPERLIGHT_WRAP_FUNCTION(output_sp, Int, 1, ULong)
HYPERLIGHT_WRAP_FUNCTION(output_back_pointer, Int, 1, ULong)
HYPERLIGHT_WRAP_FUNCTION(output_size_claim, Int, 1, UInt)
HYPERLIGHT_WRAP_FUNCTION(push_element, Int, 2, VecBytes, Int)
HYPERLIGHT_WRAP_FUNCTION(scribble, Int, 3, VecBytes, Int, Int)
HYPERLIGHT_WRAP_FUNCTION(bad_utf8, String, 0)
HYPERLIGHT_WRAP_FUNCTION(unterminated_string, String, 0)
HYPERLIGHT_WRAP_FUNCTION(doorbell_store, Int, 3, ULong, Int, ULong)
HYPERLIGHT_WRAP_FUNCTION(doorbell_load, ULong, 1, ULong)
HYPERLIGHT_WRAP_FUNCTION(debug_print_range, Int, 2, ULong, ULong)
HYPERLIGHT_WRAP_FUNCTION(debug_flood, Long, 1, Long)
HYPERLIGHT_WRAP_FUNCTION(host_print_flood, Long, 2, Long, Int)
HYPERLIGHT_WRAP_FUNCTION(call_host_repeatedly, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(call_host_no_pop, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(call_host_wrong_types, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(call_host_wrong_count, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(call_host_unknown, Int, 1, String)
HYPERLIGHT_WRAP_FUNCTION(call_host_wrong_return, String, 0)
HYPERLIGHT_WRAP_FUNCTION(abort_huge, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(abort_empty, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(abort_at, Int, 1, ULong)
HYPERLIGHT_WRAP_FUNCTION(wild_access, ULong, 2, ULong, Int)
HYPERLIGHT_WRAP_FUNCTION(jump_to_zero, Void, 0)
HYPERLIGHT_WRAP_FUNCTION(smash_rsp, Void, 0)
HYPERLIGHT_WRAP_FUNCTION(int3, Void, 0)
HYPERLIGHT_WRAP_FUNCTION(divide, Int, 2, Int, Int)
HYPERLIGHT_WRAP_FUNCTION(spin, Void, 0)
HYPERLIGHT_WRAP_FUNCTION(privileged, Int, 2, Int, ULong)
HYPERLIGHT_WRAP_FUNCTION(dirty_cpu_state, Int, 2, ULong, Int)
HYPERLIGHT_WRAP_FUNCTION(set_fs_gs_base, Int, 2, ULong, ULong)
HYPERLIGHT_WRAP_FUNCTION(fp_work, Double, 1, Double)
HYPERLIGHT_WRAP_FUNCTION(exhaust_heap_keep, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(exhaust_heap_and_free, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(absurd_allocations, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(ping, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(mailbox_never_park, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(mailbox_bad_op, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(mailbox_flip, Int, 2, Int, Int)
HYPERLIGHT_WRAP_FUNCTION(mailbox_flip_inline, Int, 2, Int, Int)
HYPERLIGHT_WRAP_FUNCTION(mailbox_bad_inline, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(print_then_abort, Int, 1, String)
HYPERLIGHT_WRAP_FUNCTION(next_random, ULong, 0)

/* A raw Linux system call with the guest's own arguments (the host must check every one). */
static int64_t raw_syscall(int64_t nr, int64_t a, int64_t b, int64_t c) {
  int64_t r;
  register int64_t r10 __asm__("r10") = 0;
  __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
  return r;
}
HYPERLIGHT_WRAP_FUNCTION(raw_syscall, Long, 4, Long, Long, Long, Long)

/* The address of a static buffer, of the code, and of the heap's first byte, for RawSyscall targets. */
static char scratch[64];
static int64_t address_of(int32_t what) {
  if (what == 0) return (int64_t)(uintptr_t)scratch;
  if (what == 1) return (int64_t)(uintptr_t)&address_of;
  static char *heap_byte;
  if (!heap_byte) heap_byte = malloc(1);
  return (int64_t)(uintptr_t)heap_byte;
}
HYPERLIGHT_WRAP_FUNCTION(address_of, Long, 1, Int)

static const char *scratch_text(void) {
  scratch[sizeof scratch - 1] = 0;
  return scratch;
}
HYPERLIGHT_WRAP_FUNCTION(scratch_text, String, 0)


void hyperlight_main(void) {
  HYPERLIGHT_REGISTER_FUNCTION("OutputSp", output_sp);
  HYPERLIGHT_REGISTER_FUNCTION("OutputBackPointer", output_back_pointer);
  HYPERLIGHT_REGISTER_FUNCTION("OutputSizeClaim", output_size_claim);
  HYPERLIGHT_REGISTER_FUNCTION("PushElement", push_element);
  HYPERLIGHT_REGISTER_FUNCTION("Scribble", scribble);
  HYPERLIGHT_REGISTER_FUNCTION("BadUtf8", bad_utf8);
  HYPERLIGHT_REGISTER_FUNCTION("UnterminatedString", unterminated_string);
  HYPERLIGHT_REGISTER_FUNCTION("DoorbellStore", doorbell_store);
  HYPERLIGHT_REGISTER_FUNCTION("DoorbellLoad", doorbell_load);
  HYPERLIGHT_REGISTER_FUNCTION("DebugPrintRange", debug_print_range);
  HYPERLIGHT_REGISTER_FUNCTION("DebugFlood", debug_flood);
  HYPERLIGHT_REGISTER_FUNCTION("HostPrintFlood", host_print_flood);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostRepeatedly", call_host_repeatedly);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostNoPop", call_host_no_pop);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostWrongTypes", call_host_wrong_types);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostWrongCount", call_host_wrong_count);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostUnknown", call_host_unknown);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostWrongReturn", call_host_wrong_return);
  HYPERLIGHT_REGISTER_FUNCTION("AbortHuge", abort_huge);
  HYPERLIGHT_REGISTER_FUNCTION("AbortEmpty", abort_empty);
  HYPERLIGHT_REGISTER_FUNCTION("AbortAt", abort_at);
  HYPERLIGHT_REGISTER_FUNCTION("WildAccess", wild_access);
  HYPERLIGHT_REGISTER_FUNCTION("JumpToZero", jump_to_zero);
  HYPERLIGHT_REGISTER_FUNCTION("SmashRsp", smash_rsp);
  HYPERLIGHT_REGISTER_FUNCTION("Int3", int3);
  HYPERLIGHT_REGISTER_FUNCTION("Divide", divide);
  HYPERLIGHT_REGISTER_FUNCTION("Spin", spin);
  HYPERLIGHT_REGISTER_FUNCTION("Privileged", privileged);
  HYPERLIGHT_REGISTER_FUNCTION("DirtyCpuState", dirty_cpu_state);
  HYPERLIGHT_REGISTER_FUNCTION("SetFsGsBase", set_fs_gs_base);
  HYPERLIGHT_REGISTER_FUNCTION("FpWork", fp_work);
  HYPERLIGHT_REGISTER_FUNCTION("ExhaustHeapKeep", exhaust_heap_keep);
  HYPERLIGHT_REGISTER_FUNCTION("ExhaustHeapAndFree", exhaust_heap_and_free);
  HYPERLIGHT_REGISTER_FUNCTION("AbsurdAllocations", absurd_allocations);
  HYPERLIGHT_REGISTER_FUNCTION("Ping", ping);
  HYPERLIGHT_REGISTER_FUNCTION("MailboxNeverPark", mailbox_never_park);
  HYPERLIGHT_REGISTER_FUNCTION("MailboxBadOp", mailbox_bad_op);
  HYPERLIGHT_REGISTER_FUNCTION("MailboxFlip", mailbox_flip);
  HYPERLIGHT_REGISTER_FUNCTION("MailboxFlipInline", mailbox_flip_inline);
  HYPERLIGHT_REGISTER_FUNCTION("MailboxBadInline", mailbox_bad_inline);
  HYPERLIGHT_REGISTER_FUNCTION("PrintThenAbort", print_then_abort);
  HYPERLIGHT_REGISTER_FUNCTION("NextRandom", next_random);
  HYPERLIGHT_REGISTER_FUNCTION("RawSyscall", raw_syscall);
  HYPERLIGHT_REGISTER_FUNCTION("AddressOf", address_of);
  HYPERLIGHT_REGISTER_FUNCTION("ScratchText", scratch_text);
}
