/* The guest heap over the PEB heap region: first-fit, address-ordered free list with coalescing; not thread-safe (guests have one CPU). */
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include "internal.h"

/* The block header (hl_block, internal.h) is 16 bytes; `size` includes it. Free blocks
 * are linked in address order so that neighbours can be merged on free. */
typedef hl_block block;

#define HDR sizeof(block)
#define MIN_BLOCK (2 * HDR)
#define MAGIC_USED ((block *)(uintptr_t)0x5553454455534544ull)

/* Shared with internal.h's hl_heap_has_room (on the hot data page). */
HL_HOT_DATA_ block *hl_free_list;
HL_HOT_DATA_ uintptr_t hl_heap_lo, hl_heap_hi;
HL_HOT_DATA_ size_t hl_heap_max_free;
#define max_free hl_heap_max_free

#define free_list hl_free_list
#define heap_lo hl_heap_lo
#define heap_hi hl_heap_hi

/* Recomputes max_free after the block that had the largest size changed. */
static void update_max_free(void) {
  size_t m = 0;
  for (const block *b = free_list; b; b = b->next)
    if (b->size > m) m = b->size;
  max_free = m;
}

/* The heap's bounds from the PEB, before brk gave the SDK the memory. */
static uintptr_t pending_lo, pending_hi;

void hl_heap_init(uintptr_t base, size_t size) {
  pending_lo = (base + 15) & ~(uintptr_t)15;
  pending_hi = (base + size) & ~(uintptr_t)4095;
  free_list = NULL;
  max_free = 0;
  heap_lo = heap_hi = pending_lo;
}

uintptr_t hl_heap_hi_limit(void) {
  return pending_hi > pending_lo && pending_hi - pending_lo >= MIN_BLOCK ? pending_hi : 0;
}

/* The host's brk moved the break to hl_heap_hi_limit(): the whole heap is malloc's. */
void hl_heap_enable(void) {
  uintptr_t lo = pending_lo, hi = pending_hi;
  heap_hi = hi;
  free_list = (block *)lo;
  free_list->size = hi - lo;
  free_list->next = NULL;
  max_free = hi - lo;
}

HL_HOT_ void *malloc(size_t n) {
  if (n == 0) n = 1;
  if (n > heap_hi - heap_lo) return NULL;
  size_t need = ((n + 15) & ~(size_t)15) + HDR;
  for (block **link = &free_list; *link; link = &(*link)->next) {
    block *b = *link;
    if (b->size < need) continue;
    size_t was = b->size;
    if (b->size - need >= MIN_BLOCK) { /* split: the tail stays free */
      block *rest = (block *)((char *)b + need);
      rest->size = b->size - need;
      rest->next = b->next;
      *link = rest;
      b->size = need;
    } else {
      *link = b->next;
    }
    b->next = MAGIC_USED;
    if (was == max_free) update_max_free(); /* it was a largest block: it shrank or went */
    return (char *)b + HDR;
  }
  return NULL;
}

HL_HOT_ void free(void *p) {
  if (p == NULL) return;
  block *b = (block *)((char *)p - HDR);
  if ((uintptr_t)b < heap_lo || (uintptr_t)b >= heap_hi || ((uintptr_t)p & 15) ||
      b->next != MAGIC_USED)
    hl_abort_with_code_and_message(HL_SDK_ABORT_LIBC, "free(): invalid pointer or double free");
  block *prev = NULL, *cur = free_list;
  while (cur && cur < b) prev = cur, cur = cur->next;
  b->next = cur;
  if (cur && (char *)b + b->size == (char *)cur) { /* merge with the following block */
    b->size += cur->size;
    b->next = cur->next;
  }
  if (prev && (char *)prev + prev->size == (char *)b) { /* merge into the preceding one */
    prev->size += b->size;
    prev->next = b->next;
    if (prev->size > max_free) max_free = prev->size;
  } else {
    if (prev) prev->next = b;
    else free_list = b;
    if (b->size > max_free) max_free = b->size;
  }
}

void *calloc(size_t count, size_t size) {
  if (size && count > (size_t)-1 / size) return NULL;
  void *p = malloc(count * size);
  /* Hide where p came from: gcc turns malloc + memset(0) into a call to calloc, here itself. */
  __asm__("" : "+r"(p));
  if (p) memset(p, 0, count * size);
  return p;
}

void *realloc(void *p, size_t n) {
  if (p == NULL) return malloc(n);
  if (n == 0) {
    free(p);
    return NULL;
  }
  block *b = (block *)((char *)p - HDR);
  size_t have = b->size - HDR;
  if (n <= have) return p;
  void *q = malloc(n);
  if (q == NULL) return NULL;
  memcpy(q, p, have);
  free(p);
  return q;
}

size_t malloc_usable_size(void *p) {
  return p ? ((block *)((uintptr_t)p - HDR))->size - HDR : 0;
}

/* An aligned block: a larger one, with the bytes before the aligned address given back as a
 * free block of their own. `align` a power of two. */
void *aligned_alloc(size_t align, size_t n) {
  if (align == 0 || (align & (align - 1))) return NULL;
  if (align <= 16) return malloc(n);
  if (n > (size_t)-1 / 2 - align) return NULL;
  char *p = malloc(n + align + MIN_BLOCK);
  if (p == NULL) return NULL;
  uintptr_t q = ((uintptr_t)p + MIN_BLOCK + align - 1) & ~(uintptr_t)(align - 1);
  block *b = (block *)((uintptr_t)p - HDR);
  size_t lead = q - (uintptr_t)p;
  block *nb = (block *)(q - HDR);
  nb->size = b->size - lead;
  nb->next = MAGIC_USED;
  b->size = lead;
  free(p);
  return (void *)q;
}

void *memalign(size_t align, size_t n) { return aligned_alloc(align, n); }

int posix_memalign(void **out, size_t align, size_t n) {
  if (align < sizeof(void *) || (align & (align - 1))) return 22; /* EINVAL */
  void *p = aligned_alloc(align, n);
  if (p == NULL) return 12; /* ENOMEM */
  *out = p;
  return 0;
}
