/* Anonymous memory mappings (mmap, munmap, mprotect) for SDK guests, served from the SDK's heap without a system call: the SDK claims the whole PEB heap with one brk, so its allocator is where free pages are. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "internal.h"

/* A mapping is a page-aligned run of one heap block (aligned_alloc). munmap may cut a
 * mapping into pieces; the block goes back to the heap with its last piece. */
typedef struct piece {
  struct piece *next;
  void *block;       /* the heap block the pages lie in */
  uintptr_t lo, hi;  /* [lo, hi), page-aligned */
} piece;

static piece *pieces;

#define PAGE ((uintptr_t)4096)
#define PROT_ALL (PROT_READ | PROT_WRITE | PROT_EXEC)

static void *fail(int e) {
  errno = e;
  return MAP_FAILED;
}

/* [addr, addr + len) rounded out to pages, or false when it wraps. */
static bool page_range(uintptr_t addr, size_t len, uintptr_t *lo, uintptr_t *hi) {
  uintptr_t end = addr + len;
  if (end < addr || end > UINTPTR_MAX - PAGE) return false;
  *lo = addr;
  *hi = (end + PAGE - 1) & ~(PAGE - 1);
  return true;
}

static bool block_in_use(const void *block) {
  for (const piece *p = pieces; p; p = p->next)
    if (p->block == block) return true;
  return false;
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  (void)off;
  uintptr_t lo, hi;
  if (len == 0 || (prot & ~PROT_ALL) || !page_range((uintptr_t)addr & ~(PAGE - 1), len, &lo, &hi)) return fail(EINVAL);
  int type = flags & MAP_TYPE;
  if (type != MAP_PRIVATE && type != MAP_SHARED) return fail(EINVAL); /* shared = private: nothing else sees it */
  if (!(flags & MAP_ANONYMOUS)) return fail(EBADF); /* a guest has no files */
  (void)fd;
  if (prot & PROT_EXEC) return fail(EPERM); /* the heap is never executable (W^X) */
  size_t size = hi - lo;
  if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
    /* Only over pages already mapped here (nothing else of the address space is the guest's to give). */
    if ((uintptr_t)addr & (PAGE - 1)) return fail(EINVAL);
    for (piece *p = pieces; p; p = p->next) {
      if (lo < p->lo || hi > p->hi) continue;
      if (flags & MAP_FIXED_NOREPLACE) return fail(EEXIST);
      memset((void *)lo, 0, size);
      return (void *)lo;
    }
    return fail(ENOMEM);
  }
  /* The hint is ignored, as Linux may. */
  piece *p = malloc(sizeof *p);
  void *block = p ? aligned_alloc(PAGE, size) : NULL;
  if (block == NULL) {
    free(p);
    return fail(ENOMEM);
  }
  memset(block, 0, size);
  *p = (piece){.next = pieces, .block = block, .lo = (uintptr_t)block, .hi = (uintptr_t)block + size};
  pieces = p;
  return block;
}

int munmap(void *addr, size_t len) {
  uintptr_t lo, hi;
  if (((uintptr_t)addr & (PAGE - 1)) || len == 0 || !page_range((uintptr_t)addr, len, &lo, &hi)) {
    errno = EINVAL;
    return -1;
  }
  /* A piece inside [lo, hi) goes, one reaching past it keeps the rest (a middle cut makes two). */
  for (piece **link = &pieces; *link;) {
    piece *p = *link;
    if (p->hi <= lo || p->lo >= hi) {
      link = &p->next;
      continue;
    }
    if (p->lo < lo && p->hi > hi) { /* the middle goes: the upper part becomes a piece of its own */
      piece *upper = malloc(sizeof *upper);
      if (upper == NULL) {
        errno = ENOMEM;
        return -1;
      }
      *upper = (piece){.next = p->next, .block = p->block, .lo = hi, .hi = p->hi};
      p->hi = lo;
      p->next = upper;
      return 0;
    }
    if (p->lo < lo) { p->hi = lo; link = &p->next; continue; }
    if (p->hi > hi) { p->lo = hi; link = &p->next; continue; }
    *link = p->next;
    void *block = p->block;
    free(p);
    if (!block_in_use(block)) free(block);
  }
  return 0; /* unmapping pages that are not mapped is not an error, as on Linux */
}

int mprotect(void *addr, size_t len, int prot) {
  uintptr_t lo, hi;
  if (((uintptr_t)addr & (PAGE - 1)) || (prot & ~PROT_ALL) || !page_range((uintptr_t)addr, len, &lo, &hi)) {
    errno = EINVAL;
    return -1;
  }
  /* The SDK's heap (its mappings and its malloc memory) is read-write and stays so. */
  if (lo < (hl_heap_lo & ~(PAGE - 1)) || hi > hl_heap_hi) {
    errno = ENOMEM;
    return -1;
  }
  if (prot & PROT_EXEC) {
    errno = EPERM;
    return -1;
  }
  return 0;
}

/* musl's own callers use these names. */
void *__mmap(void *, size_t, int, int, int, off_t) __attribute__((alias("mmap")));
int __munmap(void *, size_t) __attribute__((alias("munmap")));
int __mprotect(void *, size_t, int) __attribute__((alias("mprotect")));
