/* Compute kernels run both inside a guest (guests/benchguest) and compiled into a native
 * host program (bench/kernels-native.c), so the benchmark compares the same C code. Plain
 * C: no libc, no system calls. */
#ifndef HL_BENCH_KERNELS_H
#define HL_BENCH_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/* Fills buf with the xorshift32 stream from `seed` (one byte per step, the low byte). */
static inline void kernel_fill(uint8_t *buf, size_t n, uint32_t seed) {
  uint32_t x = seed ? seed : 0x9e3779b9u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    buf[i] = (uint8_t)x;
  }
}

/* CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), table-driven, as zlib computes it. */
static inline uint32_t kernel_crc32(const uint8_t *buf, size_t n) {
  static uint32_t table[256];
  static int ready;
  if (!ready) {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
    ready = 1;
  }
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ buf[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

/* The midpoint rule for the integral of 4 / (1 + x^2) over [0, 1] (= pi) with `steps` steps. */
static inline double kernel_integrate(int32_t steps) {
  if (steps < 1) return 0;
  double h = 1.0 / steps, sum = 0;
  for (int32_t i = 0; i < steps; i++) {
    double x = (i + 0.5) * h;
    sum += 4.0 / (1.0 + x * x);
  }
  return sum * h;
}

#endif
