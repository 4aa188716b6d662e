/* The bounds-checked flatbuffer reader as always-inline functions, private to the SDK:
 * flatbuf.c builds hlfb_prefixed_len, hlfb_read_call and hlfb_read_result from them, and
 * dispatch.c inlines read_call_ into the dispatcher and read_result_ into host calls (a
 * call with its register saves costs ~20 guest instructions, see docs/guest-sdk.md). */
#ifndef HL_FLATBUF_READ_H
#define HL_FLATBUF_READ_H
#include "hyperlight/flatbuf.h"

/* ---------------------------------------------------------------- reader */

typedef struct {
  const uint8_t *b; /* flatbuffer start (just after the size prefix) */
  uint32_t n;       /* its length */
  uint32_t pos;     /* table start */
  uint32_t vt;      /* vtable start */
  uint16_t vtsize;
  uint16_t tsize;
} fb_table;

/* Little-endian loads and stores of any alignment (one instruction each on x86-64). */
#define HOT static inline __attribute__((always_inline))
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
HOT uint16_t rd16(const uint8_t *p) { uint16_t v; __builtin_memcpy(&v, p, 2); return v; }
HOT uint32_t rd32(const uint8_t *p) { uint32_t v; __builtin_memcpy(&v, p, 4); return v; }
HOT uint64_t rd64(const uint8_t *p) { uint64_t v; __builtin_memcpy(&v, p, 8); return v; }
HOT void wr32(uint8_t *p, uint32_t v) { __builtin_memcpy(p, &v, 4); }
HOT void wr64(uint8_t *p, uint64_t v) { __builtin_memcpy(p, &v, 8); }
#else
HOT uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
HOT uint32_t rd32(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
HOT uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }
HOT void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
HOT void wr64(uint8_t *p, uint64_t v) {
  wr32(p, (uint32_t)v);
  wr32(p + 4, (uint32_t)(v >> 32));
}
#endif

/* Validates the table at `pos`: its soffset, vtable and inline size lie in the buffer. */
HOT bool table_at(const uint8_t *b, uint32_t n, uint32_t pos, fb_table *t) {
  if (pos > n || n - pos < 4) return false;
  int64_t vt = (int64_t)pos - (int64_t)(int32_t)rd32(b + pos);
  if (vt < 0 || vt > (int64_t)n - 4) return false;
  t->b = b;
  t->n = n;
  t->pos = pos;
  t->vt = (uint32_t)vt;
  t->vtsize = rd16(b + vt);
  t->tsize = rd16(b + vt + 2);
  if (t->vtsize < 4 || (t->vtsize & 1) || (uint64_t)t->vt + t->vtsize > n) return false;
  if (t->tsize < 4 || (uint64_t)pos + t->tsize > n) return false;
  return true;
}

/* Finds field `id` of `width` bytes: 0 absent, 1 present (*abs set), -1 out of bounds. */
HOT int field(const fb_table *t, unsigned id, uint32_t width, uint32_t *abs) {
  uint32_t vo = 4 + 2 * id;
  if (vo + 2 > t->vtsize) return 0;
  uint16_t off = rd16(t->b + t->vt + vo);
  if (off == 0) return 0;
  if ((uint32_t)off + width > t->tsize) return -1;
  *abs = t->pos + off;
  return 1;
}

HOT int read_u8(const fb_table *t, unsigned id, uint8_t *out) {
  uint32_t a;
  int r = field(t, id, 1, &a);
  *out = r == 1 ? t->b[a] : 0;
  return r;
}
HOT int read_u32(const fb_table *t, unsigned id, uint32_t *out) {
  uint32_t a;
  int r = field(t, id, 4, &a);
  *out = r == 1 ? rd32(t->b + a) : 0;
  return r;
}
HOT int read_u64(const fb_table *t, unsigned id, uint64_t *out) {
  uint32_t a;
  int r = field(t, id, 8, &a);
  *out = r == 1 ? rd64(t->b + a) : 0;
  return r;
}

/* Follows the uoffset in field `id`: 0 absent, 1 present (*target set), -1 bad. */
HOT int read_ref(const fb_table *t, unsigned id, uint32_t *target) {
  uint32_t a;
  int r = field(t, id, 4, &a);
  if (r != 1) return r;
  uint64_t tgt = (uint64_t)a + rd32(t->b + a);
  if (tgt >= t->n) return -1;
  *target = (uint32_t)tgt;
  return 1;
}

HOT int read_table(const fb_table *t, unsigned id, fb_table *out) {
  uint32_t tgt;
  int r = read_ref(t, id, &tgt);
  if (r != 1) return r;
  return table_at(t->b, t->n, tgt, out) ? 1 : -1;
}

/* A string must hold its length, its bytes and a NUL terminator inside the buffer. */
HOT int read_string(const fb_table *t, unsigned id, const uint8_t **s, uint32_t *len) {
  uint32_t tgt;
  int r = read_ref(t, id, &tgt);
  if (r != 1) return r;
  if ((uint64_t)tgt + 4 > t->n) return -1;
  uint32_t l = rd32(t->b + tgt);
  if ((uint64_t)tgt + 4 + l + 1 > t->n) return -1;
  if (t->b[tgt + 4 + l] != 0) return -1;
  *s = t->b + tgt + 4;
  *len = l;
  return 1;
}

/* A vector of `elem`-byte elements: returns the element count in *count. */
HOT int read_vector(const fb_table *t, unsigned id, uint32_t elem, uint32_t *start,
                       uint32_t *count) {
  uint32_t tgt;
  int r = read_ref(t, id, &tgt);
  if (r != 1) return r;
  if ((uint64_t)tgt + 4 > t->n) return -1;
  uint32_t c = rd32(t->b + tgt);
  if ((uint64_t)tgt + 4 + (uint64_t)c * elem > t->n) return -1;
  *start = tgt + 4;
  *count = c;
  return 1;
}

static const uint8_t empty_string[1] = {0};

/* Reads the scalar/string/bytes inside a value table (hlint .. hlvecbytes) of ParameterType pt. */
HOT int read_value_table(const fb_table *vt, uint8_t pt, hlfb_value *out) {
  int r;
  switch (pt) {
  case HLFB_PT_INT:
  case HLFB_PT_UINT:
  case HLFB_PT_FLOAT:
    r = read_u32(vt, 0, &out->v.u32);
    break;
  case HLFB_PT_LONG:
  case HLFB_PT_ULONG:
  case HLFB_PT_DOUBLE:
    r = read_u64(vt, 0, &out->v.u64);
    break;
  case HLFB_PT_BOOL: {
    uint8_t x;
    r = read_u8(vt, 0, &x);
    out->v.b = x != 0;
    break;
  }
  case HLFB_PT_STRING:
    r = read_string(vt, 0, &out->v.buf.ptr, &out->v.buf.len);
    if (r == 0) {
      out->v.buf.ptr = empty_string;
      out->v.buf.len = 0;
    }
    break;
  case HLFB_PT_VECBYTES: {
    uint32_t start = 0, count = 0;
    r = read_vector(vt, 0, 1, &start, &count);
    out->v.buf.ptr = r == 1 ? vt->b + start : empty_string;
    out->v.buf.len = count;
    break;
  }
  default:
    return -1;
  }
  return r < 0 ? -1 : 0;
}

HOT int64_t prefixed_len_(const uint8_t *msg, size_t avail) {
  if (msg == NULL || avail < 4) return -1;
  uint32_t n = rd32(msg);
  if ((uint64_t)n > (uint64_t)avail - 4) return -1;
  return n;
}

/* Opens the root table of a size-prefixed message. */
HOT bool root_of(const uint8_t *msg, size_t avail, fb_table *root) {
  int64_t n = prefixed_len_(msg, avail);
  if (n < 8) return false;
  const uint8_t *b = msg + 4;
  return table_at(b, (uint32_t)n, rd32(b), root);
}

/* FunctionCalls as this project's host writes them (src/sandbox/codec.ts, the flatbuffers
 * builder with force-defaults) use few vtables: the root's is always the 12 bytes of
 * FC_VTABLE, a Parameter's one of PARAM_VT10/PARAM_VT12, a value table's 6 bytes one of
 * the two VALUE_VT of its type. Where the bytes of a vtable are known, every check the
 * generic reader derives from them (vtable size and parity, field presence, field inside
 * the table) is decided already, and what remains are the bounds checks below: the table,
 * its vtable and whatever its fields point to lie in the buffer. A message with another
 * vtable anywhere, or that fails a check, or has more than max_params parameters, returns
 * false and takes the generic path, which then sets every output again; true means the
 * generic reader would return HLFB_OK with the same outputs (the two write the same
 * fields; test/unit/guest-flatbuffers-native.test.ts compares them on host-encoded
 * messages and their mutations). Positions are uint64_t sums of 32-bit quantities, so
 * none wraps. */
#define FC_VTABLE_LO 0x0008000C0010000Cull  /* vtsize 12, tsize 16, name at 12, params at 8 */
#define FC_VTABLE_HI 0x00060007u            /* call type at 7, return type at 6 */
#define PARAM_VT12 0x0004000B000C0008ull    /* vtsize 8, tsize 12, value_type at 11, value at 4 */
#define PARAM_VT10 0x00040009000A0008ull    /* vtsize 8, tsize 10, value_type at 9, value at 4 */
/* Per ParameterType: the value table's vtable (vtsize 6, tsize, field 0 at 4, or at 7 for
 * a Bool) as a 48-bit number; a Long/ULong/Double table has tsize 12 or 16. */
static const uint64_t VALUE_VT_A[9] = {
    0x000400080006ull, 0x000400080006ull, 0x0004000C0006ull, 0x0004000C0006ull, 0x000400080006ull,
    0x0004000C0006ull, 0x000400080006ull, 0x000700080006ull, 0x000400080006ull};
static const uint64_t VALUE_VT_B[9] = {
    0x000400080006ull, 0x000400080006ull, 0x000400100006ull, 0x000400100006ull, 0x000400080006ull,
    0x000400100006ull, 0x000400080006ull, 0x000700080006ull, 0x000400080006ull};

HOT bool host_layout_call_(const uint8_t *msg, size_t avail, hlfb_call *call, hlfb_value *params,
                           size_t max_params) {
  if (msg == NULL || avail < 4) return false;
  uint64_t n = rd32(msg);
  if (n > (uint64_t)avail - 4 || n < 32) return false;
  const uint8_t *b = msg + 4;
  /* The root: its vtable (12 bytes at vt, read as 8 + 4) and its 16-byte table at pos. */
  uint64_t pos = rd32(b);
  if (pos > n - 16) return false;
  int64_t vt = (int64_t)pos - (int64_t)(int32_t)rd32(b + pos);
  if (vt < 0 || (uint64_t)vt > n - 12) return false;
  if (((rd64(b + vt) ^ FC_VTABLE_LO) | (rd32(b + vt + 8) ^ FC_VTABLE_HI)) != 0) return false;
  /* function_name at pos + 12: a string with its NUL inside the buffer. */
  uint64_t s = pos + 12 + rd32(b + pos + 12);
  if (s + 4 > n) return false;
  uint64_t len = rd32(b + s);
  if (s + 5 + len > n || b[s + 4 + len] != 0) return false;
  /* parameters at pos + 8: a vector of uoffsets inside the buffer. */
  uint64_t v = pos + 8 + rd32(b + pos + 8);
  if (v + 4 > n) return false;
  uint64_t count = rd32(b + v);
  if (count > max_params || v + 4 + 4 * count > n) return false;
  call->name = (const char *)(b + s + 4);
  call->name_len = (uint32_t)len;
  call->call_type = b[pos + 7];
  call->return_type = b[pos + 6];
  call->param_count = (uint32_t)count;
  for (uint64_t at = v + 4, end = v + 4 + 4 * count; at < end; at += 4, params++) {
    /* The Parameter table: at most 12 bytes (its tsize), vtable of 8. */
    uint64_t p = at + rd32(b + at);
    if (p > n - 12) return false;
    int64_t pvt = (int64_t)p - (int64_t)(int32_t)rd32(b + p);
    if (pvt < 0 || (uint64_t)pvt > n - 8) return false;
    uint64_t w = rd64(b + pvt);
    if (w != PARAM_VT12 && w != PARAM_VT10) return false;
    unsigned t = (unsigned)b[p + ((w >> 32) & 0xFF)] - 1; /* value_type - 1 */
    if (t > 8) return false;
    /* The value table: its vtable (6 bytes) fixes its size, at most 16. */
    uint64_t q = p + 4 + rd32(b + p + 4);
    if (q > n - 8) return false;
    int64_t qvt = (int64_t)q - (int64_t)(int32_t)rd32(b + q);
    if (qvt < 0 || (uint64_t)qvt > n - 6) return false;
    uint64_t qw = rd32(b + qvt) | (uint64_t)rd16(b + qvt + 4) << 32;
    if (qw != VALUE_VT_A[t] && qw != VALUE_VT_B[t]) return false;
    if (q + ((qw >> 16) & 0xFFFF) > n) return false;
    params->type = (uint8_t)t;
    switch (t) {
    case HLFB_PT_INT: case HLFB_PT_UINT: case HLFB_PT_FLOAT:
      params->v.u32 = rd32(b + q + 4);
      break;
    case HLFB_PT_LONG: case HLFB_PT_ULONG: case HLFB_PT_DOUBLE:
      params->v.u64 = rd64(b + q + 4);
      break;
    case HLFB_PT_BOOL:
      params->v.b = b[q + 7] != 0;
      break;
    default: { /* String, VecBytes: a length-prefixed run (a String's with its NUL) */
      uint64_t d = q + 4 + rd32(b + q + 4);
      if (d + 4 > n) return false;
      uint64_t l = rd32(b + d);
      bool str = t == HLFB_PT_STRING;
      if (d + 4 + l + str > n || (str && b[d + 4 + l] != 0)) return false;
      params->v.buf.ptr = b + d + 4;
      params->v.buf.len = (uint32_t)l;
      break;
    }
    }
  }
  return true;
}

HOT int read_call_generic_(const uint8_t *msg, size_t avail, hlfb_call *call,
                           hlfb_value *params, size_t max_params) {
  fb_table root;
  if (!root_of(msg, avail, &root)) return HLFB_EMALFORMED;
  const uint8_t *name;
  uint32_t name_len;
  int r = read_string(&root, 0, &name, &name_len);
  if (r < 0) return HLFB_EMALFORMED;
  if (r == 0) return HLFB_ENONAME;
  call->name = (const char *)name;
  call->name_len = name_len;
  if (read_u8(&root, 2, &call->call_type) < 0) return HLFB_EMALFORMED;
  if (read_u8(&root, 3, &call->return_type) < 0) return HLFB_EMALFORMED;
  uint32_t start = 0, count = 0;
  r = read_vector(&root, 1, 4, &start, &count);
  if (r < 0) return HLFB_EMALFORMED;
  call->param_count = count;
  for (uint32_t i = 0; i < count; i++) {
    uint32_t at = start + 4 * i;
    uint64_t tgt = (uint64_t)at + rd32(root.b + at);
    fb_table param, value;
    if (tgt >= root.n || !table_at(root.b, root.n, (uint32_t)tgt, &param)) return HLFB_EMALFORMED;
    uint8_t utype;
    if (read_u8(&param, 0, &utype) != 1 || utype < 1 || utype > 9) return HLFB_EMALFORMED;
    if (read_table(&param, 1, &value) != 1) return HLFB_EMALFORMED;
    if (i >= max_params) continue; /* keep validating, report ETOOMANY at the end */
    params[i].type = (uint8_t)(utype - 1);
    if (read_value_table(&value, params[i].type, &params[i]) < 0) return HLFB_EMALFORMED;
  }
  return count > max_params ? HLFB_ETOOMANY : HLFB_OK;
}

/* Decodes a size-prefixed FunctionCall (hlfb_read_call): the host's layout, else generic. */
HOT int read_call_(const uint8_t *msg, size_t avail, hlfb_call *call, hlfb_value *params,
                   size_t max_params) {
  if (host_layout_call_(msg, avail, call, params, max_params)) return HLFB_OK;
  return read_call_generic_(msg, avail, call, params, max_params);
}

/* FunctionCallResults as this project's host writes them (src/sandbox/codec.ts, with the
 * flatbuffers builder): for a scalar, Void or String value every byte apart from the value
 * is the same each time, so a few word comparisons check the whole message where the
 * generic reader spends ~190 guest instructions. Every byte the generic reader looks at
 * is compared (or, for a String, bounds-checked as it would be), so a message matches only
 * if the generic reader accepts it with the same value; it then returns true, anything
 * else returns false and takes the generic path. Offsets are from
 * the size prefix: the root table at 16, the ReturnValueBox at 36 (value_type at byte
 * 45), the value's vtable at 46 and its table at 52, the value at 56 (a Bool's at 59; a
 * String's uoffset at 56 points to its length at 60). */
HOT bool host_layout_result_(const uint8_t *msg, size_t avail, hlfb_result *out) {
  if (msg == NULL || avail < 48) return false;
  uint32_t n = rd32(msg);
  if ((uint64_t)n > (uint64_t)avail - 4) return false;
  out->is_error = false;
  out->error_code = 0;
  out->error_message = NULL;
  out->error_message_len = 0;
  if (n == 44) { /* hlvoid */
    if (((rd64(msg) ^ 0x000000040000002Cull) | (rd64(msg + 8) ^ 0x00000010FFFFFFF4ull) |
         (rd64(msg + 16) ^ 0x000C000801000000ull) | (rd64(msg + 24) ^ 0x000000080004000Bull) |
         (rd64(msg + 32) ^ 0x090000000000000Cull) | (rd64(msg + 40) ^ 0x0000000400040004ull)) != 0)
      return false;
    out->value.type = HLFB_RT_VOID;
    return true;
  }
  if (n < 56) return false;
  uint64_t w40 = rd64(msg + 40);
  if (((rd64(msg) ^ (0x0000000C00000000ull | n)) | (rd64(msg + 8) ^ 0x0004000B000C0008ull) |
       (rd64(msg + 16) ^ 0x0000001000000008ull) | (rd64(msg + 24) ^ 0x000A000801000000ull) |
       (rd64(msg + 32) ^ 0x0000000800040009ull) | ((w40 & 0xFFFF00FFFFFFFFFFull) ^ 0x000600000000000Cull)) != 0)
    return false;
  uint8_t rt = (uint8_t)((w40 >> 40) - 1);
  uint64_t w48 = rd64(msg + 48);
  switch (rt) {
  case HLFB_RT_INT: case HLFB_RT_UINT: case HLFB_RT_FLOAT:
    if (n != 56 || w48 != 0x0000000600040008ull) return false;
    out->value.v.u64 = 0;
    out->value.v.u32 = rd32(msg + 56);
    break;
  case HLFB_RT_BOOL:
    if (n != 56 || w48 != 0x0000000600070008ull) return false;
    out->value.v.u64 = 0;
    out->value.v.b = msg[59] != 0;
    break;
  case HLFB_RT_LONG: case HLFB_RT_ULONG: case HLFB_RT_DOUBLE:
    if (n != 60 || w48 != 0x000000060004000Cull) return false;
    out->value.v.u64 = rd64(msg + 56);
    break;
  case HLFB_RT_STRING: {
    if (n < 61 || w48 != 0x0000000600040008ull || rd32(msg + 56) != 4) return false;
    uint32_t len = rd32(msg + 60);
    if ((uint64_t)len + 61 > n || msg[64 + (size_t)len] != 0) return false;
    out->value.v.buf.ptr = msg + 64;
    out->value.v.buf.len = len;
    break;
  }
  default:
    return false;
  }
  out->value.type = rt;
  return true;
}

/* Decodes a size-prefixed FunctionCallResult (hlfb_read_result). */
HOT int read_result_(const uint8_t *msg, size_t avail, hlfb_result *out) {
  if (host_layout_result_(msg, avail, out)) return HLFB_OK;
  fb_table root, inner, value;
  if (!root_of(msg, avail, &root)) return HLFB_EMALFORMED;
  uint8_t utype;
  if (read_u8(&root, 0, &utype) != 1) return HLFB_EMALFORMED;
  if (read_table(&root, 1, &inner) != 1) return HLFB_EMALFORMED;
  out->is_error = false;
  out->error_code = 0;
  out->error_message = NULL;
  out->error_message_len = 0;
  if (utype == 2) { /* GuestError */
    const uint8_t *m;
    uint32_t ml;
    out->is_error = true;
    if (read_u64(&inner, 0, &out->error_code) < 0) return HLFB_EMALFORMED;
    int r = read_string(&inner, 1, &m, &ml);
    if (r < 0) return HLFB_EMALFORMED;
    if (r == 1) {
      out->error_message = (const char *)m;
      out->error_message_len = ml;
    }
    return HLFB_OK;
  }
  if (utype != 1) return HLFB_EMALFORMED; /* ReturnValueBox */
  if (read_u8(&inner, 0, &utype) != 1 || utype < 1 || utype > 10) return HLFB_EMALFORMED;
  uint8_t rt = (uint8_t)(utype - 1);
  out->value.type = rt;
  if (read_table(&inner, 1, &value) != 1) return HLFB_EMALFORMED;
  if (rt == HLFB_RT_VOID) return HLFB_OK;
  if (rt == HLFB_RT_VECBYTES) { /* hlsizeprefixedbuffer { size: int; value: [ubyte] } */
    uint32_t start = 0, count = 0;
    int r = read_vector(&value, 1, 1, &start, &count);
    if (r < 0) return HLFB_EMALFORMED;
    out->value.v.buf.ptr = r == 1 ? value.b + start : empty_string;
    out->value.v.buf.len = count;
    return HLFB_OK;
  }
  /* ReturnType 0..7 has the same order as ParameterType 0..7. */
  return read_value_table(&value, rt, &out->value) < 0 ? HLFB_EMALFORMED : HLFB_OK;
}

#endif
