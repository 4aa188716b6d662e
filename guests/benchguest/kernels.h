/* Compute kernels run both inside a guest (guests/benchguest) and compiled into a native
 * host program (bench/kernels-native.c), so the benchmark compares the same C code. The
 * integer and floating-point kernels are plain C; kernel_libc uses the C library (musl in
 * the guest, and musl natively too: bench/kernels-native.c is linked against it). No system
 * calls. */
#ifndef HL_BENCH_KERNELS_H
#define HL_BENCH_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

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

/* The libc-heavy kernel: snprintf("%.6f") of `nfmt` doubles, then qsort of `nsort` ints of
 * the xorshift32 stream (`ints` has room for them). Returns the formatted characters plus a
 * checksum of the sorted order, so both runs can be compared. */
static int kernel_int_cmp(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}
static inline uint64_t kernel_libc(int nfmt, int *ints, int nsort) {
  char buf[64];
  uint64_t chars = 0;
  for (int i = 0; i < nfmt; i++) chars += (uint64_t)snprintf(buf, sizeof buf, "%.6f", (i - nfmt / 2) * 1.0e-3 * (i % 97 + 1));
  uint32_t x = 0x9e3779b9u;
  for (int i = 0; i < nsort; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    ints[i] = (int)x;
  }
  qsort(ints, (size_t)nsort, sizeof *ints, kernel_int_cmp);
  uint64_t sum = chars;
  for (int i = 0; i < nsort; i += 97) sum = sum * 31 + (uint32_t)ints[i];
  return sum;
}

#endif
