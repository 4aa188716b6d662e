/* The JS guest's allocator: QuickJS's memory (JS_NewRuntime2) served from one arena taken from the guest heap at init, so that no
 * allocation makes a system call; size classes with free lists. Not thread-safe (a guest has one CPU). */
#ifndef JS_HEAP_H
#define JS_HEAP_H
#include <stddef.h>
#include "quickjs.h"

/* Takes the arena (most of the free guest heap) and creates the runtime over it; NULL if the heap is too small. */
JSRuntime *js_heap_new_runtime(void);
/* The engine's memory limit in bytes (JS_SetMemoryLimit; 0: the arena's size). */
void js_heap_set_limit(size_t limit);
/* A guest call starts / has built its result: arms and disarms the "an allocation failed" flag. */
void js_heap_call_begin(void);
void js_heap_call_end(void);
/* Whether an allocation failed (limit or arena exhausted) since js_heap_call_begin. */
int js_heap_limit_hit(void);
/* Bytes held by live allocations (headers included). */
size_t js_heap_in_use(void);
#endif
