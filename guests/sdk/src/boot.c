/* Guest start-up (PEB checks, the environment the SDK keeps), the doorbell, aborts and DebugPrint; no dispatch. Runs before musl is initialised: it calls no libc function. */
#include "internal.h"
#include "hyperlight/abi.h"

/* Read by entry.S: the 16-aligned top of the stack the dispatcher restarts on. */
HL_HOT_DATA_ uint64_t hl_stack_top;
/* The doorbell page (PEB): a store to doorbell + 8 op exits to the host. */
HL_HOT_DATA_ volatile uint64_t *hl_doorbell;

/* The PEB (read-only to the guest; the host rewrites its region table between calls). */
const volatile uint8_t *hl_peb;
HL_HOT_DATA_ struct hl_sdk_env hl_env;

static uint64_t peb_u64(const uint8_t *peb, unsigned off) {
  return *(const volatile uint64_t *)(peb + off);
}

static size_t cstrlen(const char *s) {
  size_t n = 0;
  while (s && s[n]) n++;
  return n;
}

/* ---------------------------------------------------------------- aborts */

/* The record the ABORT doorbell points at: the code byte, then the message. */
static uint8_t abort_record[1 + HL_ABORT_MAX_BYTES];

__attribute__((noreturn)) void hl_sdk_abort(uint8_t code, const char *message, size_t message_len) {
  /* A longer message is sent whole in length (not in bytes): the host then reports
   * Hyperlight's GuestAborted(0, "Guest abort buffer overflowed"). */
  size_t claimed = message_len;
  if (message_len > HL_ABORT_MAX_BYTES) message_len = HL_ABORT_MAX_BYTES;
  abort_record[0] = code;
  for (size_t i = 0; i < message_len; i++) abort_record[1 + i] = (uint8_t)message[i];
  size_t arg_len = claimed > HL_ABORT_MAX_BYTES ? 2 + HL_ABORT_MAX_BYTES : 1 + message_len;
  for (;;) hl_ring(HL_OP_ABORT, hl_range_arg(abort_record, arg_len));
}

__attribute__((noreturn)) void hl_abort_with_code(int32_t code) {
  hl_sdk_abort((uint8_t)code, NULL, 0);
}

__attribute__((noreturn)) void hl_abort_with_code_and_message(int32_t code, const char *message) {
  hl_sdk_abort((uint8_t)code, message, cstrlen(message));
}

/* ---------------------------------------------------------------- start-up */

static __attribute__((noreturn)) void bad_entry(const char *why) {
  /* Before the PEB is trusted there is no doorbell to ring: fault on purpose (#UD), which
   * the host reports with this function's name as the location. */
  (void)why;
  for (;;) __builtin_trap();
}

/* Called by _start with the entry registers; returns argv for musl's start-up. */
__attribute__((used)) char **hl_sdk_init(const uint8_t *peb, uint64_t seed, uint64_t page_size,
                                       uint64_t log_level) {
  if (peb == NULL || ((uintptr_t)peb & 7)) bad_entry("bad PEB address");
  if (peb_u64(peb, HL_PEB_OFF_MAGIC) != HL_PEB_MAGIC) bad_entry("bad PEB magic");
  if (peb_u64(peb, HL_PEB_OFF_ABI_VERSION) != HL_ABI_VERSION) bad_entry("unsupported ABI version");
  if (page_size != 4096) bad_entry("page size is not 4096");
  uint64_t doorbell = peb_u64(peb, HL_PEB_OFF_DOORBELL_PTR);
  if (doorbell == 0 || (doorbell & 4095) || peb_u64(peb, HL_PEB_OFF_DOORBELL_SIZE) < 4096) bad_entry("bad doorbell");
  hl_doorbell = (volatile uint64_t *)(uintptr_t)doorbell;
  uint64_t stack_lo = peb_u64(peb, HL_PEB_OFF_STACK_PTR);
  uint64_t stack_size = peb_u64(peb, HL_PEB_OFF_STACK_SIZE);
  if (stack_size < 4096) hl_sdk_abort(HL_SDK_ABORT_RUNTIME, "stack too small", 15);
  hl_env.input = (uint8_t *)(uintptr_t)peb_u64(peb, HL_PEB_OFF_INPUT_PTR);
  hl_env.input_size = peb_u64(peb, HL_PEB_OFF_INPUT_SIZE);
  hl_env.output = (uint8_t *)(uintptr_t)peb_u64(peb, HL_PEB_OFF_OUTPUT_PTR);
  hl_env.output_size = peb_u64(peb, HL_PEB_OFF_OUTPUT_SIZE);
  hl_env.stack_lo = stack_lo;
  hl_env.log_level = log_level > HL_WIRE_LEVEL_NONE ? HL_WIRE_LEVEL_NONE : (uint8_t)log_level;
  hl_stack_top = (stack_lo + stack_size) & ~15ull;
  hl_heap_init((uintptr_t)peb_u64(peb, HL_PEB_OFF_HEAP_PTR), peb_u64(peb, HL_PEB_OFF_HEAP_SIZE));
  hl_rand_init(seed, peb);
  hl_peb = peb;
  return hl_libc_start_vector(seed);
}

size_t hl_mapped_region_count(void) {
  uint64_t n = *(const volatile uint64_t *)(hl_peb + HL_PEB_OFF_REGIONS);
  return n > HL_MAPPED_REGIONS_MAX ? HL_MAPPED_REGIONS_MAX : (size_t)n;
}

bool hl_mapped_region(size_t i, uint64_t *base, uint64_t *size, bool *writable) {
  if (i >= hl_mapped_region_count()) return false;
  const volatile uint64_t *e =
      (const volatile uint64_t *)(hl_peb + HL_PEB_OFF_REGIONS + 8 + i * HL_MAPPED_REGION_ENTRY_SIZE);
  if (base) *base = e[0];
  if (size) *size = e[1];
  if (writable) *writable = (e[2] & HL_MAPPED_REGION_WRITABLE) != 0;
  return true;
}

void hl_debug_print(const char *text) {
  size_t n = cstrlen(text);
  while (n > 0) {
    size_t chunk = n > HL_DEBUG_PRINT_MAX ? HL_DEBUG_PRINT_MAX : n;
    hl_ring(HL_OP_DEBUG_PRINT, hl_range_arg(text, chunk));
    text += chunk;
    n -= chunk;
  }
}
