/* Hand-written flatbuffer reader (every offset bounds-checked) and builder for the wire tables; no I/O, no allocation. */
#include <string.h>
#ifndef HL_HOT_
#define HL_HOT_ __attribute__((hot)) /* see internal.h */
#endif
#include "hyperlight/flatbuf.h"

#include "flatbuf_read.h"
#include "flatbuf_write.h"

int64_t hlfb_prefixed_len(const uint8_t *msg, size_t avail) { return prefixed_len_(msg, avail); }

int hlfb_read_call(const uint8_t *msg, size_t avail, hlfb_call *call, hlfb_value *params,
                   size_t max_params) {
  return read_call_(msg, avail, call, params, max_params);
}

int hlfb_read_result(const uint8_t *msg, size_t avail, hlfb_result *out) {
  return read_result_(msg, avail, out);
}

/* ---------------------------------------------------------------- builder */

typedef struct {
  uint8_t *buf;
  size_t cap;
  size_t len;
  bool failed;
} fb_builder;

/* Reserves n zeroed bytes; returns their offset (or 0 after an overflow). */
static size_t reserve(fb_builder *b, size_t n) {
  if (b->failed || n > b->cap - b->len) {
    b->failed = true;
    return 0;
  }
  size_t at = b->len;
  memset(b->buf + at, 0, n);
  b->len += n;
  return at;
}

/* Pads so that len % a == rem. Offsets are relative to the size prefix, which sits at an
 * 8-aligned address in the I/O buffers. */
static void pad_to(fb_builder *b, size_t a, size_t rem) {
  size_t n = (rem + a - b->len % a) % a;
  reserve(b, n);
}

static void put_bytes(fb_builder *b, const uint8_t *src, size_t n) {
  size_t at = reserve(b, n);
  if (b->failed || n == 0) return;
  memcpy(b->buf + at, src, n);
}

/* Points the uoffset at `at` to `target` (always later in the buffer). */
static void patch(fb_builder *b, size_t at, size_t target) {
  if (b->failed) return;
  wr32(b->buf + at, (uint32_t)(target - at));
}

typedef struct {
  uint8_t width; /* 0 absent, 1, 4 or 8 */
  bool ref;      /* a uoffset to patch later */
  uint64_t value;
  size_t at; /* where the field landed */
} fb_field;

/* Writes a vtable and then its table; fields are laid out 8-byte first so all align. */
static size_t put_table(fb_builder *b, fb_field *f, unsigned n) {
  uint16_t off[8];
  uint16_t o = 4;
  bool has8 = false;
  for (unsigned w = 8; w >= 1; w /= 2)
    for (unsigned i = 0; i < n; i++)
      if (f[i].width == w) {
        off[i] = o;
        o = (uint16_t)(o + w);
        if (w == 8) has8 = true;
      }
  for (unsigned i = 0; i < n; i++)
    if (f[i].width == 0) off[i] = 0;
  uint16_t tsize = (uint16_t)((o + 3) & ~3u);
  pad_to(b, 2, 0);
  size_t vt = reserve(b, 4 + 2 * (size_t)n);
  if (b->failed) return 0;
  uint16_t vtsize = (uint16_t)(4 + 2 * n);
  b->buf[vt] = (uint8_t)vtsize;
  b->buf[vt + 1] = (uint8_t)(vtsize >> 8);
  b->buf[vt + 2] = (uint8_t)tsize;
  b->buf[vt + 3] = (uint8_t)(tsize >> 8);
  for (unsigned i = 0; i < n; i++) {
    b->buf[vt + 4 + 2 * i] = (uint8_t)off[i];
    b->buf[vt + 5 + 2 * i] = (uint8_t)(off[i] >> 8);
  }
  pad_to(b, has8 ? 8 : 4, has8 ? 4 : 0);
  size_t pos = reserve(b, tsize);
  if (b->failed) return 0;
  wr32(b->buf + pos, (uint32_t)(pos - vt)); /* soffset: vtable lies before the table */
  for (unsigned i = 0; i < n; i++) {
    if (f[i].width == 0) continue;
    f[i].at = pos + off[i];
    for (unsigned k = 0; k < f[i].width; k++)
      b->buf[f[i].at + k] = f[i].ref ? 0 : (uint8_t)(f[i].value >> (8 * k));
  }
  return pos;
}

/* A string (u32 length, bytes, NUL) or a byte vector (no NUL). */
static size_t put_blob(fb_builder *b, const uint8_t *p, size_t n, bool nul) {
  if (n > 0x7FFFFFF0u) {
    b->failed = true;
    return 0;
  }
  pad_to(b, 4, 0);
  size_t at = reserve(b, 4);
  if (b->failed) return 0;
  wr32(b->buf + at, (uint32_t)n);
  put_bytes(b, p, n);
  if (nul) reserve(b, 1);
  return at;
}

static void begin(fb_builder *b, uint8_t *buf, size_t cap) {
  b->buf = buf;
  b->cap = cap;
  b->len = 0;
  b->failed = buf == NULL;
  reserve(b, 8); /* size prefix + root uoffset */
}

static size_t finish(fb_builder *b) {
  pad_to(b, 8, 0);
  if (b->failed) return 0;
  wr32(b->buf, (uint32_t)(b->len - 4));
  return b->len;
}

static size_t cstrlen(const char *s) {
  size_t n = 0;
  if (s)
    while (s[n]) n++;
  return n;
}

/* The layout is the generic builder's (see flatbuf_write.h), written word by word. */
size_t hlfb_build_call(uint8_t *buf, size_t cap, const char *name, size_t name_len,
                       uint8_t call_type, uint8_t return_type, const hlfb_value *params,
                       size_t n_params) {
  size_t vec = call_head_(buf, cap, name, name_len, call_type, return_type, n_params);
  if (vec == 0) return 0;
  size_t pos = vec + 4 + 4 * n_params;
  for (size_t i = 0; i < n_params; i++) {
    const hlfb_value *p = &params[i];
    uint64_t bits = 0;
    const uint8_t *ptr = NULL;
    size_t len = 0;
    switch (p->type) {
    case HLFB_PT_BOOL: bits = p->v.b ? 1 : 0; break;
    case HLFB_PT_LONG: case HLFB_PT_ULONG: case HLFB_PT_DOUBLE: bits = p->v.u64; break;
    case HLFB_PT_STRING: case HLFB_PT_VECBYTES:
      ptr = p->v.buf.ptr;
      len = p->v.buf.len;
      break;
    default: bits = p->v.u32; break;
    }
    pos = call_param_(buf, cap, vec, pos, i, p->type, bits, ptr, len);
    if (pos == 0) return 0;
  }
  return call_finish_(buf, cap, pos);
}

/* FunctionCallResult { result: ReturnValueBox { value: <table> } } written directly as
 * 8-byte words: the same bytes the generic builder (put_table) lays out, without its
 * per-byte loops. Bytes 0..40 are the same for every type (apart from the size prefix):
 * root vtable, root table, box vtable; the box table starts at 36. */
HL_HOT_ size_t hlfb_build_result(uint8_t *buf, size_t cap, const hlfb_value *value) {
  uint8_t rt = value->type;
  if (buf == NULL || rt > HLFB_RT_VECBYTES) return 0;
  uint32_t len = 0;
  size_t n;
  uint32_t off; /* box.value uoffset, from byte 40 to the value table */
  if (rt == HLFB_RT_VOID) {
    n = 56;
    off = 0x0c;
  } else if (rt == HLFB_RT_LONG || rt == HLFB_RT_ULONG || rt == HLFB_RT_DOUBLE) {
    n = 72;
    off = 0x14;
  } else if (rt == HLFB_RT_STRING || rt == HLFB_RT_VECBYTES) {
    len = value->v.buf.len;
    if (len > 0x7FFFFFF0u) return 0;
    n = rt == HLFB_RT_STRING ? (69 + (size_t)len + 7) & ~(size_t)7 : (72 + (size_t)len + 7) & ~(size_t)7;
    off = 0x10;
  } else {
    n = 64;
    off = 0x10;
  }
  if (n > cap) return 0;
  wr64(buf, (uint64_t)(n - 4) | (0x0cull << 32));
  wr64(buf + 8, 0x00040008000c0008ull);   /* root vtable: 8, 12, result_type@8, result@4 */
  wr64(buf + 16, 0x0000001000000008ull);  /* root table: soffset 8, result -> 36 */
  wr64(buf + 24, 0x000c000800000001ull);  /* result_type ReturnValueBox; box vtable ... */
  wr64(buf + 32, 0x0000000800040008ull);  /* ... value_type@8, value@4; box soffset 8 */
  wr64(buf + 40, off | ((uint64_t)(rt + 1) << 32));
  switch (rt) {
  case HLFB_RT_VOID:
    wr64(buf + 48, 0x0000000400040004ull); /* hlvoid: vtable 4, 4; soffset 4 */
    break;
  case HLFB_RT_LONG: case HLFB_RT_ULONG: case HLFB_RT_DOUBLE:
    wr64(buf + 48, 0x00000004000c0006ull); /* vtable 6, 12, value@4 (8-aligned at 64) */
    wr64(buf + 56, 0x0000000c00000000ull); /* padding; soffset 12 */
    wr64(buf + 64, value->v.u64);
    break;
  case HLFB_RT_STRING: {
    const uint8_t *p = value->v.buf.ptr ? value->v.buf.ptr : empty_string;
    wr64(buf + 48, 0x0000000400080006ull); /* vtable 6, 8, value@4 */
    wr64(buf + 56, 0x0000000400000008ull); /* soffset 8; value -> 64 */
    wr64(buf + n - 8, 0);                  /* the NUL and the padding */
    wr32(buf + 64, len);
    if (len) memcpy(buf + 68, p, len);
    break;
  }
  case HLFB_RT_VECBYTES:
    wr64(buf + 48, 0x00080004000c0008ull); /* hlsizeprefixedbuffer vtable 8, 12, size@4, value@8 */
    wr64(buf + 56, 0x08 | ((uint64_t)len << 32)); /* soffset 8; size */
    wr64(buf + n - 8, 0);                  /* the padding */
    wr64(buf + 64, 0x04 | ((uint64_t)len << 32)); /* value -> 68: the vector's length */
    if (len) memcpy(buf + 72, value->v.buf.ptr, len);
    break;
  default: /* Int UInt Float Bool: a 4-byte field */
    wr64(buf + 48, 0x0000000400080006ull); /* vtable 6, 8, value@4 */
    wr64(buf + 56, 0x08 | ((uint64_t)(rt == HLFB_RT_BOOL ? (value->v.b ? 1u : 0u) : value->v.u32) << 32));
    break;
  }
  return n;
}

size_t hlfb_build_error(uint8_t *buf, size_t cap, uint64_t code, const char *msg,
                        size_t msg_len) {
  fb_builder b;
  begin(&b, buf, cap);
  fb_field f[2] = {{1, false, 2, 0}, {4, true, 0, 0}}; /* result: GuestError */
  patch(&b, 4, put_table(&b, f, 2));
  fb_field e[2] = {{8, false, code, 0}, {4, true, 0, 0}};
  patch(&b, f[1].at, put_table(&b, e, 2));
  patch(&b, e[1].at, put_blob(&b, (const uint8_t *)(msg ? msg : ""), msg ? msg_len : 0, true));
  return finish(&b);
}

size_t hlfb_build_log(uint8_t *buf, size_t cap, uint8_t level, const char *message,
                      const char *source, const char *caller, const char *source_file,
                      uint32_t line) {
  fb_builder b;
  begin(&b, buf, cap);
  fb_field f[6] = {{4, true, 0, 0}, {4, true, 0, 0}, {1, false, level, 0},
                   {4, true, 0, 0}, {4, true, 0, 0}, {4, false, line, 0}};
  patch(&b, 4, put_table(&b, f, 6));
  const char *s[5] = {message, source, NULL, caller, source_file};
  for (unsigned i = 0; i < 5; i++) {
    if (i == 2) continue;
    const char *p = s[i] ? s[i] : "";
    patch(&b, f[i].at, put_blob(&b, (const uint8_t *)p, cstrlen(p), true));
  }
  return finish(&b);
}

HL_HOT_ size_t hlfb_result_bound(const hlfb_value *value) {
  size_t extra = 0;
  if (value->type == HLFB_RT_STRING || value->type == HLFB_RT_VECBYTES) extra = value->v.buf.len;
  return 128 + extra;
}
