/* The debugging test guest: built with DWARF (-g -O0, frame pointers) so that gdb names its
 * functions and variables in crash dumps and through the gdb stub (docs/debugging.md). */
#include <stdint.h>

#include "hyperlight_guest.h"

/* ---- crashes three calls deep */
static __attribute__((noinline)) int32_t crash_inner(int32_t depth) {
  volatile int32_t *null_page = (volatile int32_t *)(uintptr_t)(0x10 + depth);
  *null_page = depth; /* the null page is unmapped: #PF */
  return depth;
}
static __attribute__((noinline)) int32_t crash_middle(int32_t depth) { return crash_inner(depth + 1) + 1; }
static __attribute__((noinline)) int32_t crash_outer(int32_t depth) { return crash_middle(depth + 1) + 1; }
static int32_t crash(int32_t depth) { return crash_outer(depth); }

/* ---- aborts two calls deep */
static __attribute__((noinline)) int32_t abort_inner(int32_t code) {
  hl_abort_with_code_and_message(code, "abort_inner gave up");
}
static __attribute__((noinline)) int32_t abort_outer(int32_t code) { return abort_inner(code) + 1; }
static int32_t abort_deep(int32_t code) { return abort_outer(code); }

/* ---- a loop with a local variable, to break in, step through and print */
static __attribute__((noinline)) int64_t sum_to(int32_t n) {
  int64_t total = 0;
  for (int32_t i = 1; i <= n; i++) total += i;
  return total;
}
static int64_t sum(int32_t n) { return sum_to(n); }

HYPERLIGHT_WRAP_FUNCTION(crash, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(abort_deep, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(sum, Long, 1, Int)

void hyperlight_main(void) {
  HYPERLIGHT_REGISTER_FUNCTION("Crash", crash);
  HYPERLIGHT_REGISTER_FUNCTION("AbortDeep", abort_deep);
  HYPERLIGHT_REGISTER_FUNCTION("Sum", sum);
}
