/* The native baseline of the compute rows: the kernels of guests/benchguest/kernels.h, the
 * same C the benchmark guest runs, compiled into this host program with gcc -O2 for ordinary
 * x86-64 (as the guest is) and linked statically against the same musl (kernel_libc). Prints JSON with per-iteration nanoseconds and the results (which
 * the benchmark checks against the guest's). Usage: kernels-native ITERS [LIBC_ITERS] */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "../guests/benchguest/kernels.h"
#include "bench-common.h"

#define CRC_BYTES (1u << 20)
#define STEPS 1000000
#define LIBC_FMT 10000
#define LIBC_SORT 100000


static uint8_t buffer[CRC_BYTES];
static int ints[LIBC_SORT];

int main(int argc, char **argv) {
  int iters = argc > 1 ? atoi(argv[1]) : 50;
  int libc_iters = argc > 2 ? atoi(argv[2]) : 0; /* kernel_libc runs (0: not run, libc 0) */
  volatile uint32_t crc = 0;
  volatile double pi = 0;
  printf("{\"crc32_ns\":[");
  for (int i = 0; i < iters + 1; i++) { /* the first run warms the table and the buffer's pages */
    uint64_t t = now_ns();
    kernel_fill(buffer, CRC_BYTES, 1);
    crc = kernel_crc32(buffer, CRC_BYTES);
    uint64_t d = now_ns() - t;
    if (i > 0) printf("%s%llu", i > 1 ? "," : "", (unsigned long long)d);
  }
  printf("],\"integrate_ns\":[");
  for (int i = 0; i < iters + 1; i++) {
    uint64_t t = now_ns();
    pi = kernel_integrate(STEPS);
    uint64_t d = now_ns() - t;
    if (i > 0) printf("%s%llu", i > 1 ? "," : "", (unsigned long long)d);
  }
  volatile uint64_t libc = 0;
  printf("],\"libc_ns\":[");
  for (int i = 0; i < libc_iters + (libc_iters > 0); i++) {
    uint64_t t = now_ns();
    libc = kernel_libc(LIBC_FMT, ints, LIBC_SORT);
    uint64_t d = now_ns() - t;
    if (i > 0) printf("%s%llu", i > 1 ? "," : "", (unsigned long long)d);
  }
  printf("],\"crc32\":%u,\"integrate\":%.17g,\"libc\":\"%llu\",\"crc_bytes\":%u,\"steps\":%d}\n", (unsigned)crc,
         (double)pi, (unsigned long long)libc, CRC_BYTES, STEPS);
  return 0;
}
