/* The string and memory functions of the guest libc subset (gcc may call memcpy/memset/memmove/memcmp itself). */
#include <string.h>
#ifndef HL_HOT_
#define HL_HOT_ __attribute__((hot)) /* see internal.h */
#endif
#include <stdint.h>

/* Word-at-a-time: every guest instruction is expensive here (see docs/guest-sdk.md), so
 * these move 8 bytes per step and finish with one overlapping word instead of a byte loop.
 * Unaligned 8-byte accesses are fine on x86-64. The loop-pattern optimisation is off so
 * that gcc cannot turn these loops back into calls to themselves. */
typedef uint64_t __attribute__((may_alias, aligned(1))) u64u;
typedef uint32_t __attribute__((may_alias, aligned(1))) u32u;
typedef uint64_t __attribute__((may_alias)) u64a;
#define NO_PATTERNS __attribute__((optimize("no-tree-loop-distribute-patterns")))

NO_PATTERNS HL_HOT_ void *memcpy(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (n >= 8) {
    size_t last = n - 8, i = 0;
    uint64_t tail = *(const u64u *)(s + last);
    for (; i + 32 <= last; i += 32) {
      uint64_t w0 = *(const u64u *)(s + i), w1 = *(const u64u *)(s + i + 8);
      uint64_t w2 = *(const u64u *)(s + i + 16), w3 = *(const u64u *)(s + i + 24);
      *(u64u *)(d + i) = w0;
      *(u64u *)(d + i + 8) = w1;
      *(u64u *)(d + i + 16) = w2;
      *(u64u *)(d + i + 24) = w3;
    }
    for (; i < last; i += 8) *(u64u *)(d + i) = *(const u64u *)(s + i);
    *(u64u *)(d + last) = tail;
  } else if (n >= 4) {
    uint32_t head = *(const u32u *)s, tail = *(const u32u *)(s + n - 4);
    *(u32u *)d = head;
    *(u32u *)(d + n - 4) = tail;
  } else if (n) {
    unsigned char a = s[0], b = s[n / 2], c = s[n - 1];
    d[0] = a;
    d[n / 2] = b;
    d[n - 1] = c;
  }
  return dst;
}

/* Forward when dst is below src (each word is read before a store can reach it), else backward. */
NO_PATTERNS void *memmove(void *dst, const void *src, size_t n) {
  unsigned char *d = dst;
  const unsigned char *s = src;
  if (d == s || n == 0) return dst;
  if (n < 8 || (uintptr_t)d - (uintptr_t)s >= n) {
    if (n >= 8 && (uintptr_t)d < (uintptr_t)s) { /* overlapping forward move */
      uint64_t tail = *(const u64u *)(s + n - 8);
      for (size_t i = 0; i + 8 < n; i += 8) *(u64u *)(d + i) = *(const u64u *)(s + i);
      *(u64u *)(d + n - 8) = tail;
      return dst;
    }
    return memcpy(dst, src, n); /* no overlap, or < 8 bytes (memcpy reads all before storing) */
  }
  uint64_t head = *(const u64u *)s; /* dst above src, overlapping: copy from the end */
  for (size_t i = n; i > 8; i -= 8) *(u64u *)(d + i - 8) = *(const u64u *)(s + i - 8);
  *(u64u *)d = head;
  return dst;
}

NO_PATTERNS void *memset(void *dst, int c, size_t n) {
  unsigned char *d = dst;
  uint64_t w = (uint64_t)(unsigned char)c * 0x0101010101010101ull;
  if (n >= 8) {
    size_t last = n - 8, i = 0;
    for (; i + 32 <= last; i += 32) {
      *(u64u *)(d + i) = w;
      *(u64u *)(d + i + 8) = w;
      *(u64u *)(d + i + 16) = w;
      *(u64u *)(d + i + 24) = w;
    }
    for (; i < last; i += 8) *(u64u *)(d + i) = w;
    *(u64u *)(d + last) = w;
  } else if (n >= 4) {
    *(u32u *)d = (uint32_t)w;
    *(u32u *)(d + n - 4) = (uint32_t)w;
  } else if (n) {
    d[0] = (unsigned char)c;
    d[n / 2] = (unsigned char)c;
    d[n - 1] = (unsigned char)c;
  }
  return dst;
}

NO_PATTERNS int memcmp(const void *a, const void *b, size_t n) {
  const unsigned char *x = a, *y = b;
  size_t i = 0;
  while (i + 8 <= n && *(const u64u *)(x + i) == *(const u64u *)(y + i)) i += 8;
  for (; i < n; i++)
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  return 0;
}

/* Aligned words never cross a page, so reading a whole word past the NUL is safe. The
 * lowest bit of the zero-byte mask marks the first NUL exactly (borrows only reach higher
 * bytes), so one bit scan finds it in the last word instead of a byte loop. The head is a
 * byte loop: short strings, the common case, often end before the first aligned word. */
HL_HOT_ size_t strlen(const char *s) {
  const char *p = s;
  for (; (uintptr_t)p & 7; p++)
    if (!*p) return (size_t)(p - s);
  const u64a *w = (const u64a *)p;
  for (;; w++) {
    uint64_t zero = (*w - 0x0101010101010101ull) & ~*w & 0x8080808080808080ull;
    if (zero) return (size_t)((const char *)w - s) + (__builtin_ctzll(zero) >> 3);
  }
}

size_t strnlen(const char *s, size_t max) {
  size_t n = 0;
  while (n < max && s[n]) n++;
  return n;
}

int strcmp(const char *a, const char *b) {
  while (*a && *a == *b) a++, b++;
  return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n) {
  for (; n; n--, a++, b++) {
    if (*a != *b) return (unsigned char)*a - (unsigned char)*b;
    if (!*a) return 0;
  }
  return 0;
}

char *strcpy(char *dst, const char *src) {
  char *d = dst;
  while ((*d++ = *src++)) {}
  return dst;
}

char *strncpy(char *dst, const char *src, size_t n) {
  size_t i = 0;
  for (; i < n && src[i]; i++) dst[i] = src[i];
  for (; i < n; i++) dst[i] = 0;
  return dst;
}

char *strcat(char *dst, const char *src) {
  strcpy(dst + strlen(dst), src);
  return dst;
}

char *strncat(char *dst, const char *src, size_t n) {
  char *d = dst + strlen(dst);
  size_t i = 0;
  for (; i < n && src[i]; i++) d[i] = src[i];
  d[i] = 0;
  return dst;
}

char *strchr(const char *s, int c) {
  for (;; s++) {
    if (*s == (char)c) return (char *)s;
    if (!*s) return NULL;
  }
}

char *strrchr(const char *s, int c) {
  const char *last = NULL;
  for (;; s++) {
    if (*s == (char)c) last = s;
    if (!*s) return (char *)last;
  }
}

char *strstr(const char *h, const char *n) {
  size_t nl = strlen(n);
  if (nl == 0) return (char *)h;
  for (; *h; h++)
    if (*h == *n && strncmp(h, n, nl) == 0) return (char *)h;
  return NULL;
}
