/* The smallest valid guest: checks its entry arguments, then answers every call with a Void result; it uses no SDK code. */
#include <stdint.h>
#include "hyperlight/abi.h"

/* FunctionCallResult { result: ReturnValueBox { value: hlvoid {} } }, size-prefixed,
 * exactly as the SDK's builder lays it out (56 bytes, a multiple of 8), as seven
 * little-endian words: stored with seven instructions, not a byte loop (every guest
 * instruction is expensive, see docs/guest-sdk.md). */
static const uint64_t VOID_RESULT[7] = {
    0x0000000c00000034ull, 0x00040008000c0008ull, 0x0000001000000008ull,
    0x000c000800000001ull, 0x0000000800040008ull, 0x000000090000000cull,
    0x0000000400040004ull};

static const volatile uint64_t *peb;

/* The doorbell page (PEB): dummy_halt stores to doorbell + 8 * HL_OP_HALT. */
__attribute__((used)) volatile uint64_t *doorbell;

__attribute__((noreturn)) void dummy_halt_loop(void);

/* Called by dummy_dispatch with a fresh stack: push the Void result onto the output stack. */
__attribute__((used)) void dummy_dispatch_c(void) {
  uint8_t *out = (uint8_t *)(uintptr_t)peb[HL_PEB_OFF_OUTPUT_PTR / 8];
  uint64_t size = peb[HL_PEB_OFF_OUTPUT_SIZE / 8];
  volatile uint64_t *spp = (volatile uint64_t *)out;
  uint64_t sp = *spp;
  if (sp < HL_IOBUF_EMPTY_SP || sp > size || size - sp < sizeof VOID_RESULT + 8) return;
  typedef uint64_t __attribute__((may_alias, aligned(1))) word; /* sp may be unaligned */
  word *dst = (word *)(out + sp);
  dst[0] = VOID_RESULT[0];
  dst[1] = VOID_RESULT[1];
  dst[2] = VOID_RESULT[2];
  dst[3] = VOID_RESULT[3];
  dst[4] = VOID_RESULT[4];
  dst[5] = VOID_RESULT[5];
  dst[6] = VOID_RESULT[6];
  *(volatile uint64_t *)(out + sp + sizeof VOID_RESULT) = sp;
  *spp = sp + sizeof VOID_RESULT + 8;
}

/* Entry: RDI = PEB, RSI = seed, RDX = page size, RCX = log level. */
__attribute__((used)) void dummy_start_c(const volatile uint64_t *p, uint64_t seed,
                                         uint64_t page_size) {
  (void)seed;
  if (p == 0 || p[HL_PEB_OFF_MAGIC / 8] != HL_PEB_MAGIC ||
      p[HL_PEB_OFF_ABI_VERSION / 8] != HL_ABI_VERSION || page_size != 4096) {
    for (;;) __builtin_trap(); /* no doorbell to trust: #UD, reported by the host */
  }
  peb = p;
  doorbell = (volatile uint64_t *)(uintptr_t)p[HL_PEB_OFF_DOORBELL_PTR / 8];
}

__asm__(
    ".text\n"
    ".globl _start\n"
    "_start:\n\t"
    "andq $-16, %rsp\n\t"
    "call dummy_start_c\n\t"
    "jmp 2f\n"
    "dummy_dispatch:\n\t"
    "movq peb(%rip), %rax\n\t"
    "movq " "72" "(%rax), %rsp\n\t" /* stack.ptr + stack.size = top */
    "addq " "64" "(%rax), %rsp\n\t"
    "andq $-16, %rsp\n\t"
    "call dummy_dispatch_c\n"
    "2:\n\t"
    "leaq dummy_dispatch(%rip), %rax\n\t"
    "movq doorbell(%rip), %rdx\n\t"
    "movq %rax, 864(%rdx)\n\t" /* HL_OP_HALT * HL_DOORBELL_STRIDE */
    "jmp dummy_dispatch\n");
