/* Exitless mode: guest calls, host calls, prints and logs through a mailbox page the guest polls instead of exits (docs/exitless.md); no dispatch logic. */
#include "internal.h"
#include "hyperlight/abi.h"

/* The mailbox page (PEB), NULL until the host switches the guest to exitless mode. */
HL_HOT_DATA_ volatile uint8_t *hl_mailbox;

#define MB_U32(off) (*(volatile uint32_t *)(hl_mailbox + (off)))
#define MB_U64(off) (*(volatile uint64_t *)(hl_mailbox + (off)))
/* The guest's own state lives in the mailbox page, not in .bss: a working-set restore
 * copies .bss back while the guest waits, and these must survive it. */
#define HOST_SEEN MB_U32(HL_MB_OFF_GUEST_STATE)
#define GUEST_SEQ MB_U32(HL_MB_OFF_GUEST_STATE + 4)
#define CALL_SEEN MB_U32(HL_MB_OFF_GUEST_STATE + 8) /* the command word of the call in progress */


static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (uint64_t)hi << 32 | lo;
}

HL_HOT_DATA_ bool hl_mb_inline_call_;
HL_HOT_DATA_ bool hl_mb_inline_result_;

/* Waits for the host's next command and returns it (a call or a reply, HL_MB_CMD_*). After
 * spin_ticks without one, or when the host asks, the guest parks: one doorbell exit; the
 * host re-enters it when there is work. */
static HL_HOT_ unsigned wait_host(void) {
  uint64_t start = rdtsc();
  for (;;) {
    uint32_t w = MB_U32(HL_MB_OFF_HOST_WORD);
    if (w != HOST_SEEN) {
      HOST_SEEN = w;
      unsigned cmd = w & 15;
      if (cmd != HL_MB_CMD_PARK) return cmd;
      hl_doorbell_ring(HL_OP_PARK, 0);
      start = rdtsc();
      continue;
    }
    __builtin_ia32_pause();
    if (rdtsc() - start >= MB_U64(HL_MB_OFF_SPIN_TICKS)) {
      hl_doorbell_ring(HL_OP_PARK, 0);
      start = rdtsc();
    }
  }
}

/* Posts `op` with `arg`: the argument, then the word (a locked exchange: a full barrier
 * before reading `waiting`, so that a host that went to sleep is always woken). */
static HL_HOT_ void post(unsigned op, uint64_t arg) {
  MB_U64(HL_MB_OFF_GUEST_ARG) = arg;
  uint32_t seq = (GUEST_SEQ + 1) & 0xFFFFFF;
  GUEST_SEQ = seq;
  __atomic_exchange_n((volatile uint32_t *)(hl_mailbox + HL_MB_OFF_GUEST_WORD), seq << 8 | op, __ATOMIC_SEQ_CST);
  if (MB_U32(HL_MB_OFF_WAITING) != 0) hl_doorbell_ring(HL_OP_WAKE, 0);
}

static __attribute__((noreturn, cold, noinline)) void protocol_abort(bool reply) {
  static const char call[] = "exitless: call command while waiting for a reply";
  static const char rep[] = "exitless: reply command with no host call open";
  if (reply) hl_sdk_abort(HL_SDK_ABORT_RUNTIME, rep, sizeof rep - 1);
  hl_sdk_abort(HL_SDK_ABORT_RUNTIME, call, sizeof call - 1);
}

HL_HOT_ void hl_mailbox_ring(unsigned op, uint64_t arg) {
  if (op == HL_OP_HALT) {
    /* A Halt names the call command it answers, so that the host can never take one for
     * another; the next call's command is waited for by hl_mailbox_next. */
    bool value = hl_mb_inline_result_;
    hl_mb_inline_result_ = false; /* before the post: after it, a restore may be copying .bss back */
    post(value ? HL_OP_HALT_INLINE : HL_OP_HALT, CALL_SEEN);
    return;
  }
  post(op, arg);
  /* a call command while a host call is open breaks the protocol: fail the guest */
  if (wait_host() != HL_MB_CMD_REPLY) protocol_abort(false);
}

HL_HOT_ unsigned hl_mailbox_call_inline(void) {
  post(HL_OP_CALL_INLINE, 0);
  unsigned cmd = wait_host();
  if (cmd != HL_MB_CMD_REPLY && cmd != HL_MB_CMD_REPLY_INLINE) protocol_abort(false);
  return cmd;
}

/* Called from entry.S once the host resumed the init Halt with RCX != 0: finds the mailbox
 * in the PEB and shrinks the input buffer to what the host says is left of it. */
__attribute__((used)) void hl_mailbox_enable(void) {
  uint64_t size = *(const volatile uint64_t *)(hl_peb + HL_PEB_OFF_MAILBOX_SIZE);
  uint64_t ptr = *(const volatile uint64_t *)(hl_peb + HL_PEB_OFF_MAILBOX_PTR);
  if (ptr == 0 || (ptr & 4095) || size < 4096) {
    static const char m[] = "exitless: the PEB names no valid mailbox";
    hl_sdk_abort(HL_SDK_ABORT_RUNTIME, m, sizeof m - 1);
  }
  hl_env.input_size = *(const volatile uint64_t *)(hl_peb + HL_PEB_OFF_INPUT_SIZE);
  hl_mailbox = (volatile uint8_t *)(uintptr_t)ptr;
  MB_U32(HL_MB_OFF_GUEST_FEATURES) = HL_MB_FEATURE_INLINE;
}

/* Called from entry.S before each exitless call: waits for the host's call command. */
__attribute__((used)) HL_HOT_ void hl_mailbox_next(void) {
  unsigned cmd = wait_host();
  if (cmd != HL_MB_CMD_CALL && cmd != HL_MB_CMD_CALL_INLINE) protocol_abort(true);
  hl_mb_inline_call_ = cmd == HL_MB_CMD_CALL_INLINE;
  CALL_SEEN = HOST_SEEN;
}
