/* rand/random, abort, assert's failure path and small number helpers of the guest libc subset. */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include "internal.h"

/* The generator's state, with the PEB's host-written seed (HL_PEB_OFF_RANDOM_SEED) and the
 * value of it the state last took in: the host writes a new seed for each sandbox, also one
 * started from a copy of another's memory, and on a reseeding restore. One object, so all
 * of it lies on one data page. */
static struct {
  uint64_t state;
  const volatile uint64_t *host_seed;
  uint64_t host_seed_seen;
} rng = {0x853C49E6748FEA9Bull, NULL, 0};

void hl_rand_seed(uint64_t seed) { rng.state = seed ? seed : 0x853C49E6748FEA9Bull; }

void hl_rand_init(uint64_t seed, const uint8_t *peb) {
  rng.host_seed = (const volatile uint64_t *)(peb + HL_PEB_OFF_RANDOM_SEED);
  rng.host_seed_seen = *rng.host_seed;
  hl_rand_seed(seed ^ rng.host_seed_seen);
}

/* xorshift64*: integer only, good enough for guests. */
static uint64_t next64(void) {
  if (rng.host_seed != NULL && *rng.host_seed != rng.host_seed_seen) {
    rng.host_seed_seen = *rng.host_seed;
    hl_rand_seed(rng.host_seed_seen);
  }
  uint64_t x = rng.state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng.state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

int rand(void) { return (int)(next64() >> 33); }
void srand(unsigned int seed) { hl_rand_seed(seed); }
long random(void) { return (long)(next64() >> 33); }
void srandom(unsigned int seed) { hl_rand_seed(seed); }

__attribute__((noreturn)) void abort(void) {
  hl_stdout_flush_quiet();
  hl_abort_with_code_and_message(HL_SDK_ABORT_LIBC, "abort() called");
}

__attribute__((noreturn)) void __hl_assert_fail(const char *expr, const char *file, int line,
                                                const char *func) {
  char msg[512];
  snprintf(msg, sizeof msg, "assertion failed: %s (%s:%d, %s)", expr, file, line, func);
  hl_abort_with_code_and_message(HL_SDK_ABORT_LIBC, msg);
}

int abs(int x) { return x < 0 ? -x : x; }
long labs(long x) { return x < 0 ? -x : x; }

unsigned long strtoul(const char *s, char **end, int base) {
  while (*s == ' ' || *s == '\t' || *s == '\n') s++;
  bool neg = false;
  if (*s == '+' || *s == '-') neg = *s++ == '-';
  if ((base == 0 || base == 16) && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s += 2;
    base = 16;
  } else if (base == 0) {
    base = s[0] == '0' ? 8 : 10;
  }
  unsigned long v = 0;
  for (;; s++) {
    int d = *s >= '0' && *s <= '9' ? *s - '0'
          : *s >= 'a' && *s <= 'z' ? *s - 'a' + 10
          : *s >= 'A' && *s <= 'Z' ? *s - 'A' + 10 : 99;
    if (d >= base) break;
    v = v * (unsigned long)base + (unsigned long)d;
  }
  if (end) *end = (char *)s;
  return neg ? -v : v;
}

long strtol(const char *s, char **end, int base) { return (long)strtoul(s, end, base); }
int atoi(const char *s) { return (int)strtol(s, NULL, 10); }
