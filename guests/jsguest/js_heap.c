/* The JS guest's allocator (js_heap.h): an arena carved by a bump pointer into blocks of ~60 size classes (16-byte steps to 256,
 * then four per power of two), each freed block kept on its class's list for reuse. O(1) malloc and free, no coalescing: the
 * sandbox's restore() puts the arena back between calls, so fragmentation only matters within one call or under keepState. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "hyperlight_guest.h"
#include "js_heap.h"

#define ALIGN 16u
#define HDR 16u
#define CLASSES 128
#define BLOCK_MAGIC 0x4a534850u /* "JSHP" */

typedef struct free_block {
  struct free_block *next;
} free_block;

/* Before each block's payload: its class and a check word (a free of a foreign pointer aborts). */
typedef struct {
  uint32_t cls;
  uint32_t check;
  uint64_t pad;
} header;

static uintptr_t arena_lo, arena_hi, bump;
static free_block *lists[CLASSES];
static size_t in_use;
static int armed, hit;
static JSRuntime *runtime;

/* The payload size of class c. Classes 0..15: 16..256 in steps of 16; then 4 per power of two. */
static size_t class_size(unsigned c) {
  if (c < 16) return (size_t)(c + 1) * 16;
  unsigned k = (c - 16) / 4, j = (c - 16) % 4;
  return ((size_t)256 << k) + (((size_t)64 << k) * (j + 1));
}

/* The smallest class holding n bytes (CLASSES when none does). */
static unsigned class_of(size_t n) {
  if (n <= 256) return n ? (unsigned)((n - 1) / 16) : 0;
  unsigned k = 0;
  while (((size_t)512 << k) < n && k < 60) k++;
  size_t base = (size_t)256 << k, step = (size_t)64 << k;
  unsigned j = (unsigned)((n - base + step - 1) / step) - 1;
  unsigned c = 16 + 4 * k + j;
  return c < CLASSES ? c : CLASSES;
}

/* A block of class c or, once the bump area is spent, of a larger one; *cls receives its class. */
static void *take(unsigned c, unsigned *cls) {
  free_block *b = lists[c];
  *cls = c;
  if (b) {
    lists[c] = b->next;
    return b;
  }
  size_t need = HDR + class_size(c);
  if (arena_hi - bump >= need) {
    uintptr_t p = bump + HDR;
    bump += need;
    return (void *)p;
  }
  /* The bump area is spent: a free block of a larger class serves (its class is kept). */
  for (unsigned d = c + 1; d < CLASSES; d++) {
    if (lists[d]) {
      b = lists[d];
      lists[d] = b->next;
      *cls = d;
      return b;
    }
  }
  return NULL;
}

static header *header_of(const void *p) { return (header *)((uintptr_t)p - HDR); }

static void *heap_malloc(JSMallocState *s, size_t n) {
  unsigned c = class_of(n);
  if (c >= CLASSES) goto fail;
  size_t size = class_size(c) + HDR;
  if (s->malloc_limit && s->malloc_size + size > s->malloc_limit) goto fail;
  unsigned cls;
  void *p = take(c, &cls);
  if (!p) goto fail;
  header *h = header_of(p);
  h->cls = cls;
  size = class_size(cls) + HDR;
  h->check = BLOCK_MAGIC ^ h->cls;
  s->malloc_count++;
  s->malloc_size += size;
  in_use += size;
  return p;
fail:
  if (armed) hit = 1;
  return NULL;
}

static void heap_free(JSMallocState *s, void *p) {
  if (!p) return;
  header *h = header_of(p);
  if ((uintptr_t)p < arena_lo + HDR || (uintptr_t)p >= bump || ((uintptr_t)p & (ALIGN - 1)) || h->cls >= CLASSES ||
      h->check != (BLOCK_MAGIC ^ h->cls))
    hl_abort_with_code_and_message(0xE0, "js_heap: free of an invalid pointer or a double free");
  size_t size = class_size(h->cls) + HDR;
  h->check = (BLOCK_MAGIC ^ h->cls) + 1; /* marks it free */
  s->malloc_count--;
  s->malloc_size -= size;
  in_use -= size;
  free_block *b = p;
  b->next = lists[h->cls];
  lists[h->cls] = b;
}

static size_t heap_usable(const void *p) { return p ? class_size(header_of(p)->cls) : 0; }

static void *heap_realloc(JSMallocState *s, void *p, size_t n) {
  if (!p) return n ? heap_malloc(s, n) : NULL;
  if (n == 0) {
    heap_free(s, p);
    return NULL;
  }
  size_t have = heap_usable(p);
  if (n <= have && (have <= 256 || n > have / 2)) return p;
  void *q = heap_malloc(s, n);
  if (!q) return NULL;
  memcpy(q, p, n < have ? n : have);
  heap_free(s, p);
  return q;
}

static const JSMallocFunctions functions = {heap_malloc, heap_free, heap_realloc, heap_usable};

JSRuntime *js_heap_new_runtime(void) {
  /* The largest block the SDK's heap can give, less an eighth (at least 256 KiB) left to the SDK for results and
   * host-call replies. */
  size_t size = (size_t)1 << 40;
  void *p = NULL;
  while (size >= 4096 && !(p = malloc(size))) size -= size / 16 + 1;
  if (!p) return NULL;
  free(p);
  size_t reserve = size / 8 > 256 * 1024 ? size / 8 : 256 * 1024;
  if (size <= reserve + 1024 * 1024) return NULL;
  size -= reserve;
  p = malloc(size);
  if (!p) return NULL;
  arena_lo = ((uintptr_t)p + ALIGN - 1) & ~(uintptr_t)(ALIGN - 1);
  arena_hi = (uintptr_t)p + size;
  bump = arena_lo;
  runtime = JS_NewRuntime2(&functions, NULL);
  return runtime;
}

void js_heap_set_limit(size_t limit) { JS_SetMemoryLimit(runtime, limit); }
void js_heap_call_begin(void) { armed = 1, hit = 0; }
void js_heap_call_end(void) { armed = 0; }
int js_heap_limit_hit(void) { return hit; }
size_t js_heap_in_use(void) { return in_use; }
