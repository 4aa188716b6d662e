/* Differential test of the FunctionCall reader's host-layout fast path (host_layout_call_)
 * against the generic reader (read_call_generic_), on the size-prefixed messages read from
 * stdin (written by the host's encoder, one after another) and on mutations of each.
 * Whenever the fast path accepts, the generic reader must return HLFB_OK with byte-identical
 * outputs; read_call_ (fast path, else generic) must always match the generic reader in
 * result and outputs. Run by test/unit/guest-flatbuffers-native.test.ts under ASan/UBSan;
 * prints "<checks> checks, <accepted> fast, <hosts> host messages (<host_fast> fast), <failures> failures". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flatbuf_read.h"

#define MAXP 40
static long checks, fast_accepts, failures;

typedef struct {
  hlfb_call call;
  hlfb_value params[MAXP];
} outputs;

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static void fail(const char *what, const uint8_t *m, size_t n, size_t max) {
  failures++;
  if (failures > 20) return;
  printf("not ok: %s (max_params %zu, %zu bytes):", what, max, n);
  for (size_t i = 0; i < n && i < 256; i++) printf(" %02x", m[i]);
  printf("\n");
}

/* Runs the three readers on an exactly sized copy (ASan flags any read past its end). */
static bool check(const uint8_t *src, size_t n, size_t max) {
  uint8_t *m = malloc(n ? n : 1);
  memcpy(m, src, n);
  static outputs f, g, c;
  memset(&f, 0xA5, sizeof f);
  memset(&g, 0xA5, sizeof g);
  memset(&c, 0xA5, sizeof c);
  bool fast = host_layout_call_(m, n, &f.call, f.params, max);
  int rg = read_call_generic_(m, n, &g.call, g.params, max);
  int rc = read_call_(m, n, &c.call, c.params, max);
  checks++;
  if (fast) {
    fast_accepts++;
    if (rg != HLFB_OK) fail("fast path accepts what the generic reader rejects", m, n, max);
    else if (memcmp(&f, &g, sizeof f) != 0) fail("fast path and generic reader disagree", m, n, max);
  }
  if (rc != rg || memcmp(&c, &g, sizeof c) != 0) fail("read_call_ differs from the generic reader", m, n, max);
  free(m);
  return fast;
}

static void mutate_all(const uint8_t *msg, size_t n, size_t max) {
  static const uint8_t vals[] = {0x00, 0x01, 0x04, 0x07, 0x08, 0x0C, 0x7F, 0x80, 0xFF, 0xFE};
  uint8_t *buf = malloc(n + 16);
  for (size_t cut = 0; cut < n; cut++) { /* truncations, the prefix made consistent or not */
    memcpy(buf, msg, n);
    check(buf, cut, max);
    if (cut >= 4) {
      uint32_t s = (uint32_t)(cut - 4);
      memcpy(buf, &s, 4);
      check(buf, cut, max);
    }
  }
  for (size_t pos = 0; pos < n; pos++) { /* every byte x several values, and one bit flipped */
    memcpy(buf, msg, n);
    for (size_t v = 0; v < sizeof vals; v++) {
      buf[pos] = vals[v];
      check(buf, n, max);
    }
    buf[pos] = msg[pos] ^ (uint8_t)(1u << (next() & 7));
    check(buf, n, max);
  }
  for (int i = 0; i < 200; i++) { /* random multi-byte corruption */
    memcpy(buf, msg, n);
    int flips = 1 + (int)(next() % 4);
    for (int k = 0; k < flips; k++) buf[4 + next() % (n - 4)] = (uint8_t)next();
    check(buf, n, max);
  }
  memcpy(buf, msg, n); /* trailing bytes after the message */
  memset(buf + n, 0, 16);
  check(buf, n + 16, max);
  free(buf);
}

int main(void) {
  size_t cap = 1 << 20, len = 0;
  uint8_t *all = malloc(cap);
  size_t got;
  while ((got = fread(all + len, 1, cap - len, stdin)) > 0) {
    len += got;
    if (len == cap) all = realloc(all, cap *= 2);
  }
  long hosts = 0, host_fast = 0;
  for (size_t at = 0; at + 4 <= len;) {
    uint32_t s;
    memcpy(&s, all + at, 4);
    size_t n = 4 + (size_t)s;
    if (n > len - at) {
      printf("not ok: truncated input\n");
      return 1;
    }
    const uint8_t *msg = all + at;
    uint32_t count = 0; /* the parameter count, to pick max_params around it */
    hlfb_call call;
    static hlfb_value params[MAXP];
    if (read_call_generic_(msg, n, &call, params, MAXP) == HLFB_OK) count = call.param_count;
    else fail("host message rejected by the generic reader", msg, n, MAXP);
    hosts++;
    if (check(msg, n, 32)) host_fast++;
    else fail("host message not taken by the fast path", msg, n, 32);
    if (count > 0) check(msg, n, count - 1); /* one too many: ETOOMANY, generic path */
    check(msg, n, count);
    mutate_all(msg, n, 32);
    at += n;
  }
  free(all);
  printf("%ld checks, %ld fast, %ld host messages (%ld fast), %ld failures\n", checks, fast_accepts,
         hosts, host_fast, failures);
  return failures ? 1 : 0;
}
