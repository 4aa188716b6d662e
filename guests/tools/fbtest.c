/* Native self-test of the SDK's flatbuffer reader/builder (round trips, overflow, malformed input); run by test/unit/guest-flatbuffers-native.test.ts under ASan/UBSan. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyperlight/flatbuf.h"

static int failures, checks;
#define CHECK(cond, ...)                                   \
  do {                                                     \
    checks++;                                              \
    if (!(cond)) {                                         \
      failures++;                                          \
      printf("not ok: %s:%d: ", __FILE__, __LINE__);       \
      printf(__VA_ARGS__);                                 \
      printf("\n");                                        \
    }                                                      \
  } while (0)

/* A copy in an exactly sized heap block, so that ASan flags any read past its end. */
static uint8_t *exact(const uint8_t *src, size_t n) {
  uint8_t *p = malloc(n ? n : 1);
  memcpy(p, src, n);
  return p;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static const uint8_t BYTES[5] = {0, 1, 2, 0xFE, 0xFF};

static void all_params(hlfb_value *p) {
  p[0] = (hlfb_value){.type = HLFB_PT_INT, .v.i32 = -123456};
  p[1] = (hlfb_value){.type = HLFB_PT_UINT, .v.u32 = 4000000000u};
  p[2] = (hlfb_value){.type = HLFB_PT_LONG, .v.i64 = -9000000000000000000ll};
  p[3] = (hlfb_value){.type = HLFB_PT_ULONG, .v.u64 = 18000000000000000000ull};
  p[4] = (hlfb_value){.type = HLFB_PT_FLOAT, .v.u32 = 0x3FC00000};
  p[5] = (hlfb_value){.type = HLFB_PT_DOUBLE, .v.u64 = 0x400921FB54442D18ull};
  p[6] = (hlfb_value){.type = HLFB_PT_STRING, .v.buf = {(const uint8_t *)"h\xC3\xA9llo", 6}};
  p[7] = (hlfb_value){.type = HLFB_PT_BOOL, .v.b = true};
  p[8] = (hlfb_value){.type = HLFB_PT_VECBYTES, .v.buf = {BYTES, 5}};
}

static bool same_value(const hlfb_value *a, const hlfb_value *b, bool result) {
  if (a->type != b->type) return false;
  uint8_t t = a->type;
  if (t == HLFB_PT_STRING || (result ? t == HLFB_RT_VECBYTES : t == HLFB_PT_VECBYTES))
    return a->v.buf.len == b->v.buf.len && memcmp(a->v.buf.ptr, b->v.buf.ptr, a->v.buf.len) == 0 &&
           (t != HLFB_PT_STRING || a->v.buf.ptr[a->v.buf.len] == 0);
  if (t == HLFB_PT_BOOL) return a->v.b == b->v.b;
  if (result && t == HLFB_RT_VOID) return true;
  if (t == HLFB_PT_INT || t == HLFB_PT_UINT || t == HLFB_PT_FLOAT) return a->v.u32 == b->v.u32;
  return a->v.u64 == b->v.u64;
}

static void test_call_round_trip(void) {
  hlfb_value in[9], out[9];
  all_params(in);
  uint8_t buf[1024];
  size_t n = hlfb_build_call(buf, sizeof buf, "Mixed", 5, HLFB_CALL_GUEST, HLFB_RT_STRING, in, 9);
  CHECK(n > 0 && n % 8 == 0, "call built, length %zu", n);
  uint8_t *m = exact(buf, n);
  hlfb_call c;
  int r = hlfb_read_call(m, n, &c, out, 9);
  CHECK(r == HLFB_OK, "read_call -> %d", r);
  CHECK(c.name_len == 5 && memcmp(c.name, "Mixed", 6) == 0, "name");
  CHECK(c.call_type == HLFB_CALL_GUEST && c.return_type == HLFB_RT_STRING, "call/return type");
  CHECK(c.param_count == 9, "param count %u", c.param_count);
  for (int i = 0; i < 9; i++) CHECK(same_value(&in[i], &out[i], false), "param %d", i);
  /* Too many for the caller's array: validated fully, count reported. */
  r = hlfb_read_call(m, n, &c, out, 3);
  CHECK(r == HLFB_ETOOMANY && c.param_count == 9, "ETOOMANY -> %d", r);
  free(m);
  /* No parameters at all. */
  n = hlfb_build_call(buf, sizeof buf, "NoOp", 4, HLFB_CALL_GUEST, HLFB_RT_VOID, NULL, 0);
  r = hlfb_read_call(buf, n, &c, out, 9);
  CHECK(r == HLFB_OK && c.param_count == 0 && c.return_type == HLFB_RT_VOID, "empty call");
}

static void test_result_round_trip(void) {
  hlfb_value p[9];
  all_params(p);
  for (uint8_t rt = 0; rt <= HLFB_RT_VECBYTES; rt++) {
    hlfb_value v = rt == HLFB_RT_VOID ? (hlfb_value){.type = HLFB_RT_VOID}
                 : rt == HLFB_RT_VECBYTES ? p[8] : p[rt];
    v.type = rt;
    uint8_t buf[256];
    size_t n = hlfb_build_result(buf, sizeof buf, &v);
    CHECK(n > 0 && n % 8 == 0 && n <= hlfb_result_bound(&v), "result %u built (%zu)", rt, n);
    uint8_t *m = exact(buf, n);
    hlfb_result res;
    int r = hlfb_read_result(m, n, &res);
    CHECK(r == HLFB_OK && !res.is_error && same_value(&v, &res.value, true), "result %u round trip", rt);
    free(m);
  }
  uint8_t buf[256];
  size_t n = hlfb_build_error(buf, sizeof buf, 17, "host said no", 12);
  hlfb_result res;
  CHECK(hlfb_read_result(buf, n, &res) == HLFB_OK && res.is_error && res.error_code == 17 &&
            res.error_message_len == 12 && memcmp(res.error_message, "host said no", 13) == 0,
        "GuestError round trip");
}

/* The builder never writes past cap and fails cleanly for every cap below the need. */
static void test_builder_overflow(void) {
  hlfb_value p[9];
  all_params(p);
  uint8_t ref[1024];
  size_t need = hlfb_build_call(ref, sizeof ref, "Mixed", 5, 1, 6, p, 9);
  int bad = 0;
  for (size_t cap = 0; cap < need; cap++) {
    uint8_t buf[1100];
    memset(buf, 0xA5, sizeof buf);
    size_t n = hlfb_build_call(buf, cap, "Mixed", 5, 1, 6, p, 9);
    if (n != 0) bad++;
    for (size_t i = cap; i < sizeof buf; i++)
      if (buf[i] != 0xA5) {
        bad++;
        break;
      }
  }
  CHECK(bad == 0, "call builder overflow: %d bad caps", bad);
  uint8_t buf[64];
  memset(buf, 0xA5, sizeof buf);
  CHECK(hlfb_build_error(buf, 40, 8, "a long message that cannot fit", 30) == 0 && buf[40] == 0xA5,
        "error builder overflow");
  CHECK(hlfb_build_log(buf, 50, 2, "m", "s", "c", "f", 1) == 0 && buf[50] == 0xA5, "log builder overflow");
  CHECK(hlfb_build_result(NULL, 100, &p[0]) == 0, "NULL buffer");
}

static void test_specific_malformed(void) {
  uint8_t buf[512];
  hlfb_call c;
  hlfb_value out[16];
  hlfb_result res;
  size_t n = hlfb_build_call(buf, sizeof buf, "Echo", 4, 1, 6, NULL, 0);
  /* size prefix larger than the bytes available */
  CHECK(hlfb_read_call(buf, n - 1, &c, out, 16) == HLFB_EMALFORMED, "short buffer");
  CHECK(hlfb_read_call(buf, 3, &c, out, 16) == HLFB_EMALFORMED, "no prefix");
  CHECK(hlfb_read_call(NULL, 0, &c, out, 16) == HLFB_EMALFORMED, "NULL");
  /* Remove the string's NUL terminator. */
  uint8_t copy[512];
  memcpy(copy, buf, n);
  uint8_t *nul = memmem(copy, n, "Echo", 5);
  CHECK(nul != NULL, "found name");
  if (nul) nul[4] = 'X';
  CHECK(hlfb_read_call(copy, n, &c, out, 16) == HLFB_EMALFORMED, "unterminated string");
  /* Root offset pointing outside. */
  memcpy(copy, buf, n);
  copy[4] = 0xF0;
  copy[5] = 0xFF;
  CHECK(hlfb_read_call(copy, n, &c, out, 16) == HLFB_EMALFORMED, "root out of range");
  /* A FunctionCall without function_name: patch the vtable entry of field 0 to 0. */
  memcpy(copy, buf, n);
  uint32_t root = 4 + (copy[4] | copy[5] << 8);
  int32_t soff = (int32_t)(copy[root] | copy[root + 1] << 8 | copy[root + 2] << 16 | (uint32_t)copy[root + 3] << 24);
  uint32_t vt = root - soff;
  copy[vt + 4] = 0;
  copy[vt + 5] = 0;
  CHECK(hlfb_read_call(copy, n, &c, out, 16) == HLFB_ENONAME, "no name");
  /* A result whose union type is NONE or unknown. */
  hlfb_value v = {.type = HLFB_RT_INT, .v.i32 = 1};
  n = hlfb_build_result(buf, sizeof buf, &v);
  CHECK(hlfb_read_result(buf, n, &res) == HLFB_OK, "baseline result");
  root = 4 + (buf[4] | buf[5] << 8);
  soff = (int32_t)(buf[root] | buf[root + 1] << 8 | buf[root + 2] << 16 | (uint32_t)buf[root + 3] << 24);
  vt = root - soff;
  uint32_t type_at = root + (buf[vt + 4] | buf[vt + 5] << 8); /* field 0: result_type */
  for (unsigned bad_type = 0; bad_type < 256; bad_type += 3) {
    if (bad_type == 1 || bad_type == 2) continue;
    memcpy(copy, buf, n);
    copy[type_at] = (uint8_t)bad_type;
    CHECK(hlfb_read_result(copy, n, &res) == HLFB_EMALFORMED, "union type %u rejected", bad_type);
  }
}

/* Mutations and truncations must never read outside the message (ASan watches). */
static void fuzz_one(const uint8_t *msg, size_t n, bool is_call) {
  hlfb_call c;
  hlfb_value out[16];
  hlfb_result res;
  uint8_t *m = exact(msg, n);
  if (is_call) (void)hlfb_read_call(m, n, &c, out, 16);
  else (void)hlfb_read_result(m, n, &res);
  free(m);
}

static void test_fuzz(void) {
  hlfb_value p[9];
  all_params(p);
  uint8_t call[1024], result[256], err[256];
  size_t cn = hlfb_build_call(call, sizeof call, "Mixed", 5, 1, 6, p, 9);
  p[6].type = HLFB_RT_STRING;
  size_t rn = hlfb_build_result(result, sizeof result, &p[6]);
  size_t en = hlfb_build_error(err, sizeof err, 17, "boom", 4);
  const uint8_t *msgs[3] = {call, result, err};
  size_t lens[3] = {cn, rn, en};
  static const uint8_t vals[] = {0x00, 0x01, 0x04, 0x7F, 0x80, 0xFF, 0xFE, 0x10};
  long runs = 0;
  for (int k = 0; k < 3; k++) {
    uint8_t buf[1024];
    for (size_t cut = 0; cut <= lens[k]; cut++) { /* truncations, prefix made consistent */
      memcpy(buf, msgs[k], lens[k]);
      if (cut >= 4) {
        uint32_t s = (uint32_t)(cut - 4);
        memcpy(buf, &s, 4);
      }
      fuzz_one(buf, cut, k == 0);
      runs++;
    }
    for (size_t pos = 0; pos < lens[k]; pos++) /* every byte x several values */
      for (size_t v = 0; v < sizeof vals; v++) {
        memcpy(buf, msgs[k], lens[k]);
        buf[pos] = vals[v];
        fuzz_one(buf, lens[k], k == 0);
        buf[pos] = msgs[k][pos] ^ 0x01;
        fuzz_one(buf, lens[k], k == 0);
        runs += 2;
      }
    for (int i = 0; i < 30000; i++) { /* random multi-byte corruption */
      memcpy(buf, msgs[k], lens[k]);
      int flips = 1 + (int)(next() % 4);
      for (int f = 0; f < flips; f++) buf[4 + next() % (lens[k] - 4)] = (uint8_t)next();
      fuzz_one(buf, lens[k], k == 0);
      runs++;
    }
  }
  for (int i = 0; i < 20000; i++) { /* random bytes behind a plausible prefix */
    uint8_t buf[128];
    size_t n = 8 + next() % 120;
    for (size_t j = 0; j < n; j++) buf[j] = (uint8_t)next();
    uint32_t s = (uint32_t)(n - 4);
    memcpy(buf, &s, 4);
    fuzz_one(buf, n, i & 1);
    runs++;
  }
  CHECK(runs > 100000, "fuzz ran %ld inputs", runs);
}

int main(void) {
  test_call_round_trip();
  test_result_round_trip();
  test_builder_overflow();
  test_specific_malformed();
  test_fuzz();
  printf("%d checks, %d failures\n", checks, failures);
  return failures ? 1 : 0;
}
