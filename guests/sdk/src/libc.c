/* The SDK's side of musl (the guest's C library): the start vector musl's __libc_start_main reads (argv, envp, auxv), the heap claimed through brk, and the libc entry points the SDK replaces (malloc in malloc.c; abort, assert). No dispatch here. */
#include <assert.h>
#include <elf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "internal.h"
#include "hyperlight/abi.h"

/* musl's start-up (src/env/__libc_start_main.c): initialises the C library from argv, envp
 * and the auxiliary vector after them (TLS through arch_prctl, AT_RANDOM, AT_PAGESZ), runs
 * the constructors, then calls main. */
int __libc_start_main(int (*main)(int, char **, char **), int argc, char **argv, void (*init)(void),
                      void (*fini)(void), void (*ldso)(void));

/* Linux's process start vector, built here instead of on the stack (the dispatcher reuses the
 * whole stack): argv[0], NULL, envp NULL, then the auxv pairs, AT_NULL last. musl keeps
 * pointers into it (environ, its auxv copy), so it lives as long as the guest. */
enum { START_VEC_WORDS = 3 + 2 * 7 };
static uint64_t start_vec[START_VEC_WORDS];
static uint8_t at_random[16];
static const char argv0[] = "guest";

static uint64_t splitmix64(uint64_t *s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/* The ELF header and program headers of this image, which its first (read-only) segment maps. */
extern const Elf64_Ehdr __ehdr_start __attribute__((visibility("hidden")));

/* Called by hl_sdk_init with the entry seed; returns argv for __libc_start_main. */
char **hl_libc_start_vector(uint64_t seed) {
  uint64_t s = seed;
  uint64_t r0 = splitmix64(&s), r1 = splitmix64(&s);
  memcpy(at_random, &r0, 8);
  memcpy(at_random + 8, &r1, 8);
  const Elf64_Ehdr *eh = &__ehdr_start;
  int have_phdr = memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0 && eh->e_phentsize == sizeof(Elf64_Phdr);
  uint64_t *v = start_vec;
  *v++ = (uint64_t)(uintptr_t)argv0;
  *v++ = 0; /* end of argv */
  *v++ = 0; /* envp: empty */
  *v++ = AT_PAGESZ; *v++ = 4096;
  *v++ = AT_RANDOM; *v++ = (uint64_t)(uintptr_t)at_random;
  *v++ = AT_PHDR;   *v++ = have_phdr ? (uint64_t)(uintptr_t)eh + eh->e_phoff : 0;
  *v++ = AT_PHENT;  *v++ = sizeof(Elf64_Phdr);
  *v++ = AT_PHNUM;  *v++ = have_phdr ? eh->e_phnum : 0;
  *v++ = AT_SECURE; *v++ = 0;
  *v++ = AT_NULL;   *v++ = 0;
  return (char **)start_vec;
}

/* musl calls this as main: the C library is up. Claims the heap, lets the guest
 * register its functions, then reports ready (never returns). */
static int sdk_main(int argc, char **argv, char **envp) {
  (void)argc; (void)argv; (void)envp;
  /* One brk for the whole PEB heap: malloc.c manages it without further system calls. */
  uintptr_t want = hl_heap_hi_limit();
  if (want != 0 && (uintptr_t)syscall(SYS_brk, want) == want) hl_heap_enable();
  hyperlight_main();
  hl_sdk_ready();
}

__attribute__((noreturn, used)) void hl_libc_start(char **argv) {
  __libc_start_main(sdk_main, 1, argv, NULL, NULL, NULL);
  for (;;) __builtin_trap(); /* __libc_start_main calls exit() if main returns; sdk_main does not */
}

/* rand()/srand(): xorshift64*, seeded from the entry seed and the PEB's host-written seed
 * (HL_PEB_OFF_RANDOM_SEED), which the host changes for each sandbox (also one started from a
 * copy of another's memory) and on a reseeding restore: every draw re-checks it. They replace
 * musl's (whose object holds only these two). One object, so it lies on one data page. */
static struct {
  uint64_t state;
  const volatile uint64_t *host_seed;
  uint64_t host_seed_seen;
} rng = {0x853C49E6748FEA9Bull, NULL, 0};

static void rng_seed(uint64_t seed) { rng.state = seed ? seed : 0x853C49E6748FEA9Bull; }

void hl_rand_init(uint64_t seed, const uint8_t *peb) {
  rng.host_seed = (const volatile uint64_t *)(peb + HL_PEB_OFF_RANDOM_SEED);
  rng.host_seed_seen = *rng.host_seed;
  rng_seed(seed ^ rng.host_seed_seen);
}

int rand(void) {
  if (rng.host_seed != NULL && *rng.host_seed != rng.host_seed_seen) {
    rng.host_seed_seen = *rng.host_seed;
    rng_seed(rng.host_seed_seen);
  }
  uint64_t x = rng.state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng.state = x;
  return (int)((x * 0x2545F4914F6CDD1Dull) >> 33);
}

void srand(unsigned int seed) { rng_seed(seed); }

/* random()/srandom() draw from the same generator (as glibc's rand() is its random()), so both
 * follow the host's seed; musl's own (random.o, with initstate/setstate) is not linked. */
long random(void) { return rand(); }

void srandom(unsigned int seed) { rng_seed(seed); }

/* abort(): the sandbox aborts with HL_SDK_ABORT_LIBC (no signals in a guest). */
__attribute__((noreturn)) void abort(void) {
  fflush(stdout);
  hl_abort_with_code_and_message(HL_SDK_ABORT_LIBC, "abort() called");
}

/* A failed assert(): the same abort, with the assertion in the message. */
__attribute__((noreturn)) void __assert_fail(const char *expr, const char *file, int line, const char *func) {
  char msg[512];
  snprintf(msg, sizeof msg, "assertion failed: %s (%s:%d, %s)", expr, file, line, func);
  fflush(stdout);
  hl_abort_with_code_and_message(HL_SDK_ABORT_LIBC, msg);
}
