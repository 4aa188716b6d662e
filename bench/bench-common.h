/* Helpers shared by the benchmark's C programs (each is its own executable). */
#ifndef HL_BENCH_COMMON_H
#define HL_BENCH_COMMON_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void die(const char *what) {
  perror(what);
  exit(1);
}
#endif
