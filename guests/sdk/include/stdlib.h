/* The stdlib part of the guest libc subset: heap (over the PEB heap), rand, abort; no environment, no exit. */
#ifndef HL_STDLIB_H
#define HL_STDLIB_H
#include <stddef.h>

#define RAND_MAX 0x7fffffff
#define EXIT_SUCCESS 0
#define EXIT_FAILURE 1

/* First-fit free list with coalescing over the PEB heap; 16-byte aligned; NULL when exhausted. */
void *malloc(size_t size);
void free(void *ptr);
void *calloc(size_t count, size_t size);
void *realloc(void *ptr, size_t size);

/* Seeded from the entry seed (RSI) and the PEB's host seed; srand/srandom reseed, and so
 * does a new host seed (a new sandbox, or a reseeding restore). */
int rand(void);
void srand(unsigned int seed);
long random(void);
void srandom(unsigned int seed);

/* Aborts the sandbox with abort code 0xFB and the message "abort() called". */
__attribute__((noreturn)) void abort(void);

int abs(int x);
long labs(long x);
int atoi(const char *s);
long strtol(const char *s, char **end, int base);
unsigned long strtoul(const char *s, char **end, int base);
#endif
