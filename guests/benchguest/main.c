/* The benchmark guest: the compute kernels of kernels.h as guest functions (integer: CRC-32
 * of a buffer; floating point: a numerical integration; libc: snprintf and qsort), for `npm run bench` and the tests
 * that check guests compute what native code computes. */
#include <stdint.h>
#include "hyperlight_guest.h"
#include "kernels.h"

#define BUF_MAX (1u << 20)
static uint8_t buffer[BUF_MAX];

/* CRC-32 of `len` bytes (at most 1 MiB) of the xorshift32 stream from `seed`. */
static uint32_t crc32_of_stream(int32_t len, uint32_t seed) {
  size_t n = len < 0 ? 0 : (size_t)len > BUF_MAX ? BUF_MAX : (size_t)len;
  kernel_fill(buffer, n, seed);
  return kernel_crc32(buffer, n);
}

static double integrate(int32_t steps) { return kernel_integrate(steps); }

/* kernel_libc: snprintf("%.6f") of `nfmt` doubles, qsort of `nsort` (at most 2^18) ints. */
#define SORT_MAX (1 << 18)
static int ints[SORT_MAX];
static uint64_t libc_kernel(int32_t nfmt, int32_t nsort) {
  if (nsort < 0 || nsort > SORT_MAX) nsort = SORT_MAX;
  return kernel_libc(nfmt, ints, nsort);
}
HYPERLIGHT_WRAP_FUNCTION(libc_kernel, ULong, 2, Int, Int)

HYPERLIGHT_WRAP_FUNCTION(crc32_of_stream, UInt, 2, Int, UInt)
HYPERLIGHT_WRAP_FUNCTION(integrate, Double, 1, Int)

void hyperlight_main(void) {
  HYPERLIGHT_REGISTER_FUNCTION("Crc32", crc32_of_stream);
  HYPERLIGHT_REGISTER_FUNCTION("Integrate", integrate);
  HYPERLIGHT_REGISTER_FUNCTION("LibcKernel", libc_kernel);
}
