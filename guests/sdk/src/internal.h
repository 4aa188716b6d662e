/* Declarations shared by the SDK's own sources; not part of the guest-facing API. */
#ifndef HL_SDK_INTERNAL_H
#define HL_SDK_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include "hyperlight_guest.h"
#include "hyperlight/abi.h"

/* Abort codes the SDK adds to docs/guest-abi.md's reserved range. */
#define HL_SDK_ABORT_RUNTIME 0xFC /* bad entry arguments or an SDK invariant failed */
#define HL_SDK_ABORT_LIBC 0xFB    /* abort() or a failed assert() */

/* The host's log level at entry (RCX) is a wire level: 0 Trace .. 5 Critical, 6 None. */
#define HL_WIRE_LEVEL_NONE 6

/* The code of a warm guest call (dispatcher, result writer, memcpy, strlen, host calls):
 * gcc puts it in .text.hot.*, which guest.ld lays out first, so that a call runs from as
 * few distinct pages as possible (each page a KVM_RUN touches costs ~1.4 us on nested KVM). */
#define HL_HOT_ __attribute__((hot))

/* The data a warm guest call reads or writes (call state, parameters, the pending result,
 * hl_env, the stack top, the heap bounds, the name hash table): guest.ld places section
 * .bss.hl_hot on one page of its own, so that a call touches one image data page. Only
 * zero-initialised variables; the whole section must stay within 4 KiB. */
#define HL_HOT_DATA_ __attribute__((section(".bss.hl_hot")))

/* What init learned from the PEB and the entry registers (boot.c). */
struct hl_sdk_env {
  uint8_t *input;
  uint64_t input_size;
  uint8_t *output;
  uint64_t output_size;
  uint64_t stack_lo;
  uint8_t log_level;
};
extern struct hl_sdk_env hl_env;
/* The PEB (boot.c), read-only to the guest. */
extern const volatile uint8_t *hl_peb;

/* The doorbell page (set by init from the PEB). */
extern volatile uint64_t *hl_doorbell;

/* Rings the host: one aligned 8-byte store to doorbell + 8 op, which exits to the host
 * (the page has no memory behind it). The host answers by re-entering the guest after the
 * store. A plain `mov` store, so that KVM can decode it on every kind of KVM. */
static inline void hl_doorbell_ring(unsigned op, uint64_t arg) {
  __asm__ volatile("movq %1, %0" : "=m"(hl_doorbell[op]) : "r"(arg) : "memory");
}

/* Exitless mode (mailbox.c): the mailbox page, NULL until the host turns the mode on. */
extern volatile uint8_t *hl_mailbox;
/* Posts `op` with `arg` to the mailbox and waits for the host's reply (parking when idle). */
void hl_mailbox_ring(unsigned op, uint64_t arg);
/* Inline messages (abi.h): the call in progress came in the host record (hl_mailbox_next),
 * and its value, if the dispatcher wrote it to the guest record, goes back with the Halt. */
extern bool hl_mb_inline_call_;
extern bool hl_mb_inline_result_;
/* Whether the host takes inline messages (its features word). */
static inline bool hl_mailbox_inline(void) {
  return hl_mailbox != NULL &&
         (*(volatile uint32_t *)(hl_mailbox + HL_MB_OFF_HOST_FEATURES) & HL_MB_FEATURE_INLINE) != 0;
}
/* Posts the host call written in the guest record; returns the host's reply command
 * (HL_MB_CMD_REPLY: a FunctionCallResult on the input stack; _REPLY_INLINE: the value in
 * the host record). */
unsigned hl_mailbox_call_inline(void);

/* Rings the host: with a mailbox, a message through it (no exit) for everything but an
 * abort; otherwise the doorbell. */
static inline void hl_ring(unsigned op, uint64_t arg) {
  if (__builtin_expect(hl_mailbox != NULL, 0) && op != HL_OP_ABORT) {
    hl_mailbox_ring(op, arg);
    return;
  }
  hl_doorbell_ring(op, arg);
}

/* A doorbell argument naming guest bytes: address | length << 32. */
static inline uint64_t hl_range_arg(const void *p, size_t len) {
  return (uint64_t)(uintptr_t)p | ((uint64_t)len << 32);
}

typedef struct {
  uint64_t regs[8];
} hl_jmp_buf;
int hl_setjmp(hl_jmp_buf *b) __attribute__((returns_twice));
__attribute__((noreturn)) void hl_longjmp(hl_jmp_buf *b, int v);

/* Aborts with `code` and the message (at most HL_ABORT_MAX_BYTES of it); never returns. */
__attribute__((noreturn)) void hl_sdk_abort(uint8_t code, const char *message, size_t message_len);

/* Fails the running guest call with GuestError(code, message); aborts outside a call. */
__attribute__((noreturn)) void hl_sdk_fail_call(uint64_t code, const char *message, size_t len);

/* Records the PEB heap; malloc has no memory until hl_heap_enable (after brk gave it). */
void hl_heap_init(uintptr_t base, size_t size);
/* The break that claims the whole heap (0: the heap is too small to use). */
uintptr_t hl_heap_hi_limit(void);
void hl_heap_enable(void);
/* libc.c: the start vector for musl (argv, envp, auxv), built from the entry seed. */
char **hl_libc_start_vector(uint64_t seed);
/* entry.S: init is done; rings Halt with the dispatch address (never returns). */
__attribute__((noreturn)) void hl_sdk_ready(void);
/* The heap's block header and free list (malloc.c). */
typedef struct hl_block {
  size_t size;
  struct hl_block *next; /* free blocks only; a magic value while allocated */
} hl_block;
extern hl_block *hl_free_list;
extern uintptr_t hl_heap_lo, hl_heap_hi;
/* The size of the largest free block (0 if none), kept exact by malloc.c. */
extern size_t hl_heap_max_free;

/* Whether malloc(n) would succeed now (nothing is allocated): the same test as malloc's
 * (some free block has `need` bytes), read from hl_heap_max_free so that no heap page is
 * touched. */
static inline bool hl_heap_has_room(size_t n) {
  if (n == 0) n = 1;
  if (n > hl_heap_hi - hl_heap_lo) return false;
  size_t need = ((n + 15) & ~(size_t)15) + sizeof(hl_block);
  return hl_heap_max_free >= need;
}
/* libc.c: seeds rand() from the entry seed and the PEB's host seed, which it re-checks on every draw. */
void hl_rand_init(uint64_t seed, const uint8_t *peb);

#endif
