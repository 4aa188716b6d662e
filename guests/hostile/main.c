/* The hostile test guest: each function breaks the guest/host contract in one way (buffers, flatbuffers, ports, memory, CPU state, host calls, aborts, floods) so the host's defences can be tested. */
/*
 * Most functions bypass the SDK: they write the I/O buffers directly and signal the host
 * with raw `out` instructions, then Halt (OUT 108) without going back through the SDK's
 * dispatch code. If the host accepts what it got and calls again, the vCPU resumes after
 * the Halt; halt_now() then jumps to the SDK's dispatch entry, as the SDK itself does.
 * Nothing here uses floating point; everything is built with the Makefile's flags.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hyperlight_guest.h"

/* ---------------------------------------------------------------- raw helpers */

extern void hl_dispatch_entry(void); /* entry.S: the address the SDK reports at init */

static inline void out32(uint16_t port, uint32_t value) {
  __asm__ volatile("outl %0, %1" : : "a"(value), "Nd"(port) : "memory");
}
static inline void out8(uint16_t port, uint8_t value) {
  __asm__ volatile("outb %0, %1" : : "a"(value), "Nd"(port) : "memory");
}
static inline uint32_t in32(uint16_t port) {
  uint32_t v;
  __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
  return v;
}
static inline uint64_t rd64(const volatile uint8_t *p) { return *(const volatile uint64_t *)p; }
static inline void wr64(volatile uint8_t *p, uint64_t v) { *(volatile uint64_t *)p = v; }
static inline void wr32(volatile uint8_t *p, uint32_t v) { *(volatile uint32_t *)p = v; }

/* Halt now (the call is over as far as the host can tell); a resumed vCPU re-enters dispatch. */
static __attribute__((noreturn)) void halt_now(void) {
  __asm__ volatile("outl %%eax, %%dx\n\tjmp hl_dispatch_entry" : : "a"(0), "d"(HL_PORT_HALT) : "memory");
  __builtin_unreachable();
}

/* The PEB: the first page below this guest's image that carries the PEB magic. Every page
 * between it and our code belongs to the image, so the downward scan touches only mapped pages. */
static const uint8_t *peb(void) {
  static const uint8_t *found;
  if (found) return found;
  uintptr_t p = (uintptr_t)&peb & ~(uintptr_t)0xFFF;
  while (rd64((const uint8_t *)p + HL_PEB_OFF_MAGIC) != HL_PEB_MAGIC) p -= 0x1000;
  found = (const uint8_t *)p;
  return found;
}
static uint8_t *output_buf(void) { return (uint8_t *)(uintptr_t)rd64(peb() + HL_PEB_OFF_OUTPUT_PTR); }
static uint64_t output_size(void) { return rd64(peb() + HL_PEB_OFF_OUTPUT_SIZE); }
static uint8_t *input_buf(void) { return (uint8_t *)(uintptr_t)rd64(peb() + HL_PEB_OFF_INPUT_PTR); }

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
 * signals `port`: 108 makes it the call's result; 101 a host call; 99 a log record.
 * When the host accepts a host call or a log, the function returns 1 normally. */
static int32_t push_element(hl_Vec element, int32_t port) {
  wr64(output_buf(), 8);
  push_output(element.data, element.len);
  if (port == HL_PORT_HALT) halt_now();
  out32((uint16_t)port, 0);
  if (port == HL_PORT_CALL_FUNCTION) pop_input();
  wr64(output_buf(), 8);
  return 1;
}

/* Copies `bytes` over the output buffer at `offset` (0 overwrites the stack pointer too)
 * and signals `port` as push_element does. The fuzz target of the run loop's input path. */
static int32_t scribble(hl_Vec bytes, int32_t offset, int32_t port) {
  uint8_t *out = output_buf();
  uint64_t size = output_size();
  size_t n = bytes.len;
  if ((uint64_t)offset > size) offset = (int32_t)size;
  if (n > size - (uint64_t)offset) n = (size_t)(size - (uint64_t)offset);
  memcpy(out + offset, bytes.data, n);
  if (port == HL_PORT_HALT) halt_now();
  out32((uint16_t)port, 0);
  if (port == HL_PORT_CALL_FUNCTION) pop_input();
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

/* ---------------------------------------------------------------- ports */

static int32_t out_port(int32_t port, uint32_t value) {
  out32((uint16_t)port, value);
  return 0;
}
static int32_t out_byte(int32_t port, int32_t value) {
  out8((uint16_t)port, (uint8_t)value);
  return 0;
}
static uint32_t in_port(int32_t port) { return in32((uint16_t)port); }

/* ---------------------------------------------------------------- floods */

/* Sends `total` bytes of text to DebugPrint (port 103) with `rep outsb`, 4 KiB per
 * instruction, and returns the count. */
static int64_t debug_flood(int64_t total) {
  static char text[4096];
  for (size_t i = 0; i < sizeof text; i++) text[i] = (char)('a' + i % 26);
  text[sizeof text - 1] = '\n';
  int64_t sent = 0;
  while (sent < total) {
    size_t n = (uint64_t)(total - sent) < sizeof text ? (size_t)(total - sent) : sizeof text;
    const char *p = text;
    size_t c = n;
    __asm__ volatile("rep outsb" : "+S"(p), "+c"(c) : "d"(HL_PORT_DEBUG_PRINT) : "memory");
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
    out32(HL_PORT_CALL_FUNCTION, 0);
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
    out32(HL_PORT_CALL_FUNCTION, 0);
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
    out32(HL_PORT_CALL_FUNCTION, 0);
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

static void abort_chunk(uint32_t n, const uint8_t *b) {
  uint32_t w = n;
  for (uint32_t i = 0; i < n; i++) w |= (uint32_t)b[i] << (8 * (i + 1));
  out32(HL_PORT_ABORT, w);
}

/* An abort stream with code 42 and a message of `bytes` bytes, sent by hand (the SDK
 * would stop at 1024 bytes; the host must bound what it keeps). */
static int32_t abort_huge(int32_t bytes) {
  static const uint8_t code = 42;
  static const uint8_t abc[3] = {'A', 'B', 'C'};
  abort_chunk(1, &code);
  for (int32_t i = 0; i < bytes; i += 3) abort_chunk(bytes - i < 3 ? (uint32_t)(bytes - i) : 3, abc);
  out32(HL_PORT_ABORT, HL_ABORT_END);
  halt_now();
}
/* Starts an abort stream, never ends it, and returns a normal result. */
static int32_t abort_unterminated(void) {
  static const uint8_t b[3] = {42, 'h', 'i'};
  abort_chunk(3, b);
  return 5;
}
/* An abort chunk that claims 7 data bytes. */
static int32_t abort_bad_chunk(void) {
  out32(HL_PORT_ABORT, 0x41414107);
  return 0;
}
/* An abort stream that ends before its first byte. */
static int32_t abort_empty(void) {
  out32(HL_PORT_ABORT, HL_ABORT_END);
  return 0;
}
/* Code 0xFE (CPU exception) without the 25-byte payload. */
static int32_t abort_short_exception(void) {
  static const uint8_t b[3] = {0xFE, 14, 0};
  abort_chunk(3, b);
  out32(HL_PORT_ABORT, HL_ABORT_END);
  return 0;
}

/* ---------------------------------------------------------------- memory and CPU state */

/* Page tables the guest builds in its own .bss: the identity map of the first 1 GiB with
 * 2 MiB pages (read/write/execute: the guest grants itself W+X) and, at virtual 1 GiB,
 * one 2 MiB window onto any guest-physical address. */
static uint64_t own_pml4[512] __attribute__((aligned(4096)));
static uint64_t own_pdpt[512] __attribute__((aligned(4096)));
static uint64_t own_pd[512] __attribute__((aligned(4096)));
static uint64_t own_pd_wild[512] __attribute__((aligned(4096)));

#define PTE_P 1ULL
#define PTE_W 2ULL
#define PTE_PS 0x80ULL
#define PTE_A 0x20ULL
#define PTE_D 0x40ULL
#define WILD_VA 0x40000000ULL

static uint64_t read_cr3(void) {
  uint64_t v;
  __asm__ volatile("mov %%cr3, %0" : "=r"(v));
  return v;
}
static void write_cr3(uint64_t v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }

static void build_own_tables(uint64_t wild_gpa) {
  for (int i = 0; i < 512; i++) {
    own_pd[i] = ((uint64_t)i << 21) | PTE_P | PTE_W | PTE_PS | PTE_A | PTE_D;
    own_pd_wild[i] = 0;
  }
  own_pd_wild[0] = (wild_gpa & ~0x1FFFFFULL) | PTE_P | PTE_W | PTE_PS | PTE_A | PTE_D;
  memset(own_pdpt, 0, sizeof own_pdpt);
  memset(own_pml4, 0, sizeof own_pml4);
  own_pdpt[0] = (uint64_t)(uintptr_t)own_pd | PTE_P | PTE_W | PTE_A;
  own_pdpt[1] = (uint64_t)(uintptr_t)own_pd_wild | PTE_P | PTE_W | PTE_A;
  own_pml4[0] = (uint64_t)(uintptr_t)own_pdpt | PTE_P | PTE_W | PTE_A;
}

/* Switches to its own page tables and reads (mode 0), writes (1) or executes (2)
 * guest-physical `gpa` through the wild window, then switches back. Inside the memory
 * slot this reaches pages the host left unmapped (page tables) or read-only (PEB, code);
 * outside it, KVM has no memory and reports an MMIO exit. */
static uint64_t wild_access(uint64_t gpa, int32_t mode) {
  uint64_t saved = read_cr3();
  build_own_tables(gpa);
  write_cr3((uint64_t)(uintptr_t)own_pml4);
  volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)(WILD_VA + (gpa & 0x1FFFF8ULL));
  uint64_t v = 0;
  if (mode == 0) v = *p;
  else if (mode == 1) *p = 0x5A5A5A5A5A5A5A5AULL;
  else ((void (*)(void))(uintptr_t)p)();
  write_cr3(saved);
  return v;
}

/* On its own tables, writes `value` at guest-physical `gpa` (e.g. a host-built page-table
 * entry pointing outside guest memory), then executes int3: an emulation failure on this
 * KVM, whose report reads the instruction bytes through the page tables. */
static void corrupt_then_int3(uint64_t gpa, uint64_t value) {
  build_own_tables(gpa);
  write_cr3((uint64_t)(uintptr_t)own_pml4);
  *(volatile uint64_t *)(uintptr_t)(WILD_VA + (gpa & 0x1FFFF8ULL)) = value;
  __asm__ volatile("int3");
}

/* Loads CR3 with any value (e.g. a table outside guest memory). */
static int32_t load_cr3(uint64_t value) {
  write_cr3(value);
  return 1;
}

/* An empty IDT, then a fault: #UD cannot be delivered, nor #DF: the CPU shuts down. */
static void triple_fault(void) {
  struct __attribute__((packed)) {
    uint16_t limit;
    uint64_t base;
  } idtr = {0, 0};
  __asm__ volatile("lidt %0\n\tud2" : : "m"(idtr) : "memory");
}

static void jump_to_zero(void) {
  void (*volatile f)(void) = 0;
  f();
}

static void cli_spin(void) {
  __asm__ volatile("cli");
  for (;;) __asm__ volatile("" ::: "memory");
}
static void cli_hlt(void) { __asm__ volatile("cli\n\thlt" ::: "memory"); }

/* Loses its stack: RSP = 0, then a push (the exception still arrives on IST1). */
static void smash_rsp(void) { __asm__ volatile("xor %%esp, %%esp\n\tpushq $1" ::: "memory"); }

static void int3(void) { __asm__ volatile("int3"); }

static int32_t write_msr(uint32_t index, uint64_t value) {
  __asm__ volatile("wrmsr" : : "c"(index), "a"((uint32_t)value), "d"((uint32_t)(value >> 32)));
  return 1;
}
static uint64_t read_msr(uint32_t index) {
  uint32_t lo, hi;
  __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(index));
  return ((uint64_t)hi << 32) | lo;
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
HYPERLIGHT_WRAP_FUNCTION(out_port, Int, 2, Int, UInt)
HYPERLIGHT_WRAP_FUNCTION(out_byte, Int, 2, Int, Int)
HYPERLIGHT_WRAP_FUNCTION(in_port, UInt, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(debug_flood, Long, 1, Long)
HYPERLIGHT_WRAP_FUNCTION(host_print_flood, Long, 2, Long, Int)
HYPERLIGHT_WRAP_FUNCTION(call_host_repeatedly, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(call_host_no_pop, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(call_host_wrong_types, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(call_host_wrong_count, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(call_host_unknown, Int, 1, String)
HYPERLIGHT_WRAP_FUNCTION(call_host_wrong_return, String, 0)
HYPERLIGHT_WRAP_FUNCTION(abort_huge, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(abort_unterminated, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(abort_bad_chunk, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(abort_empty, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(abort_short_exception, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(wild_access, ULong, 2, ULong, Int)
HYPERLIGHT_WRAP_FUNCTION(load_cr3, Int, 1, ULong)
HYPERLIGHT_WRAP_FUNCTION(corrupt_then_int3, Void, 2, ULong, ULong)
HYPERLIGHT_WRAP_FUNCTION(triple_fault, Void, 0)
HYPERLIGHT_WRAP_FUNCTION(jump_to_zero, Void, 0)
HYPERLIGHT_WRAP_FUNCTION(cli_spin, Void, 0)
HYPERLIGHT_WRAP_FUNCTION(cli_hlt, Void, 0)
HYPERLIGHT_WRAP_FUNCTION(smash_rsp, Void, 0)
HYPERLIGHT_WRAP_FUNCTION(int3, Void, 0)
HYPERLIGHT_WRAP_FUNCTION(write_msr, Int, 2, UInt, ULong)
HYPERLIGHT_WRAP_FUNCTION(read_msr, ULong, 1, UInt)
HYPERLIGHT_WRAP_FUNCTION(exhaust_heap_keep, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(exhaust_heap_and_free, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(absurd_allocations, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(ping, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(print_then_abort, Int, 1, String)
HYPERLIGHT_WRAP_FUNCTION(next_random, ULong, 0)

void hyperlight_main(void) {
  HYPERLIGHT_REGISTER_FUNCTION("OutputSp", output_sp);
  HYPERLIGHT_REGISTER_FUNCTION("OutputBackPointer", output_back_pointer);
  HYPERLIGHT_REGISTER_FUNCTION("OutputSizeClaim", output_size_claim);
  HYPERLIGHT_REGISTER_FUNCTION("PushElement", push_element);
  HYPERLIGHT_REGISTER_FUNCTION("Scribble", scribble);
  HYPERLIGHT_REGISTER_FUNCTION("BadUtf8", bad_utf8);
  HYPERLIGHT_REGISTER_FUNCTION("UnterminatedString", unterminated_string);
  HYPERLIGHT_REGISTER_FUNCTION("OutPort", out_port);
  HYPERLIGHT_REGISTER_FUNCTION("OutByte", out_byte);
  HYPERLIGHT_REGISTER_FUNCTION("InPort", in_port);
  HYPERLIGHT_REGISTER_FUNCTION("DebugFlood", debug_flood);
  HYPERLIGHT_REGISTER_FUNCTION("HostPrintFlood", host_print_flood);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostRepeatedly", call_host_repeatedly);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostNoPop", call_host_no_pop);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostWrongTypes", call_host_wrong_types);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostWrongCount", call_host_wrong_count);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostUnknown", call_host_unknown);
  HYPERLIGHT_REGISTER_FUNCTION("CallHostWrongReturn", call_host_wrong_return);
  HYPERLIGHT_REGISTER_FUNCTION("AbortHuge", abort_huge);
  HYPERLIGHT_REGISTER_FUNCTION("AbortUnterminated", abort_unterminated);
  HYPERLIGHT_REGISTER_FUNCTION("AbortBadChunk", abort_bad_chunk);
  HYPERLIGHT_REGISTER_FUNCTION("AbortEmpty", abort_empty);
  HYPERLIGHT_REGISTER_FUNCTION("AbortShortException", abort_short_exception);
  HYPERLIGHT_REGISTER_FUNCTION("WildAccess", wild_access);
  HYPERLIGHT_REGISTER_FUNCTION("LoadCr3", load_cr3);
  HYPERLIGHT_REGISTER_FUNCTION("CorruptThenInt3", corrupt_then_int3);
  HYPERLIGHT_REGISTER_FUNCTION("TripleFault", triple_fault);
  HYPERLIGHT_REGISTER_FUNCTION("JumpToZero", jump_to_zero);
  HYPERLIGHT_REGISTER_FUNCTION("CliSpin", cli_spin);
  HYPERLIGHT_REGISTER_FUNCTION("CliHlt", cli_hlt);
  HYPERLIGHT_REGISTER_FUNCTION("SmashRsp", smash_rsp);
  HYPERLIGHT_REGISTER_FUNCTION("Int3", int3);
  HYPERLIGHT_REGISTER_FUNCTION("WriteMsr", write_msr);
  HYPERLIGHT_REGISTER_FUNCTION("ReadMsr", read_msr);
  HYPERLIGHT_REGISTER_FUNCTION("ExhaustHeapKeep", exhaust_heap_keep);
  HYPERLIGHT_REGISTER_FUNCTION("ExhaustHeapAndFree", exhaust_heap_and_free);
  HYPERLIGHT_REGISTER_FUNCTION("AbsurdAllocations", absurd_allocations);
  HYPERLIGHT_REGISTER_FUNCTION("Ping", ping);
  HYPERLIGHT_REGISTER_FUNCTION("PrintThenAbort", print_then_abort);
  HYPERLIGHT_REGISTER_FUNCTION("NextRandom", next_random);
}
