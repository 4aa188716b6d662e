/* The FunctionCall writer as always-inline pieces, private to the SDK: flatbuf.c builds
 * hlfb_build_call from them and dispatch.c inlines them into hl_call_host_function (a host
 * call's message is otherwise thousands of guest instructions, see docs/guest-sdk.md).
 *
 * The bytes are exactly the ones the generic table builder in flatbuf.c lays out (vtable
 * before its table, fields 8-byte first, 8-byte scalars 8-aligned, strings NUL-terminated,
 * every padding byte zero), but every offset is computed and whole words are written:
 *
 *   0   u32 size prefix, u32 root uoffset (-> 20)
 *   8   FunctionCall vtable: 12, 16, name@4, parameters@8, call_type@12, return_type@13
 *   20  FunctionCall table: soffset 12, name (-> 36), parameters (-> vec), call_type,
 *       return_type, 2 zero bytes
 *   36  name: u32 length, bytes, NUL, zeros up to a multiple of 4 (vec)
 *   vec u32 count, one uoffset per parameter
 *   then per parameter: a zero byte if needed for 2-alignment, the Parameter vtable
 *   (8, 12, value@8, value_type@4 ... see call_param_), 2 zero bytes if needed for
 *   4-alignment, the Parameter table (12 bytes), then the value table (hlint .. hlvecbytes)
 *   with its vtable and any string or vector bytes;
 *   zeros up to a multiple of 8.
 * Offsets are relative to the size prefix, which sits at an 8-aligned address in the I/O
 * buffers. Each piece checks the capacity before it writes: nothing lands outside
 * buf[0..cap). */
#ifndef HL_FLATBUF_WRITE_H
#define HL_FLATBUF_WRITE_H
#include <string.h>
#include "flatbuf_read.h"

HOT void wr16(uint8_t *p, uint16_t v) { __builtin_memcpy(p, &v, 2); }

/* Zeroes the n (< 8) bytes at p. */
HOT void zero_small(uint8_t *p, size_t n) {
  if (n & 1) *p++ = 0;
  if (n & 2) {
    wr16(p, 0);
    p += 2;
  }
  if (n & 4) wr32(p, 0);
}

/* Writes everything up to and including the parameter vector's count; returns the
 * vector's offset (its n_params entries follow it and are written by call_param_), or 0
 * if the message cannot fit. */
HOT size_t call_head_(uint8_t *buf, size_t cap, const char *name, size_t name_len,
                      uint8_t call_type, uint8_t return_type, size_t n_params) {
  if (buf == NULL || name_len > 0x7FFFFFF0u || n_params > cap / 4) return 0;
  size_t vec = (41 + name_len + 3) & ~(size_t)3; /* 36 + length + bytes + NUL, 4-aligned */
  if (vec + 4 + 4 * n_params > cap) return 0;
  wr64(buf, 16ull << 32);                /* size prefix (call_finish_), root -> 20 */
  wr64(buf + 8, 0x000800040010000Cull);  /* vtable 12, table 16, name@4, parameters@8 */
  wr64(buf + 16, 0x0000000C000D000Cull); /* call_type@12, return_type@13; soffset 12 */
  wr64(buf + 24, 12 | (uint64_t)(vec - 28) << 32); /* name -> 36, parameters -> vec */
  wr32(buf + 32, (uint32_t)call_type | (uint32_t)return_type << 8);
  wr32(buf + 36, (uint32_t)name_len);
  wr32(buf + vec - 4, 0); /* the NUL and the padding (the name's bytes come after) */
  if (name_len) memcpy(buf + 40, name, name_len);
  wr32(buf + vec, (uint32_t)n_params);
  return vec;
}

/* Appends parameter i (ParameterType pt) at `pos`, the end of what is written so far, and
 * points vector entry i at it. Scalars come in `bits` (u32 types in the low half, Bool as
 * 0/1), String and VecBytes in ptr/len. Returns the new end, or 0 if it does not fit or pt
 * is not a ParameterType. */
HOT size_t call_param_(uint8_t *buf, size_t cap, size_t vec, size_t pos, size_t i, uint8_t pt,
                       uint64_t bits, const uint8_t *ptr, size_t len) {
  size_t vt = (pos + 1) & ~(size_t)1; /* the Parameter vtable, 2-aligned */
  size_t t = (vt + 8 + 3) & ~(size_t)3; /* the Parameter table, 4-aligned */
  size_t v = t + 12;                    /* the value table's vtable (4-aligned) */
  size_t end;
  switch (pt) {
  case HLFB_PT_INT: case HLFB_PT_UINT: case HLFB_PT_FLOAT: case HLFB_PT_BOOL:
    end = v + 16;
    break;
  case HLFB_PT_LONG: case HLFB_PT_ULONG: case HLFB_PT_DOUBLE:
    end = v + ((v & 4) ? 20 : 24); /* the 8-byte value lands 8-aligned */
    break;
  case HLFB_PT_STRING: case HLFB_PT_VECBYTES:
    if (len > 0x7FFFFFF0u) return 0;
    end = v + 20 + len + (pt == HLFB_PT_STRING);
    break;
  default:
    return 0;
  }
  if (end > cap) return 0;
  if (vt != pos) buf[pos] = 0;
  wr64(buf + vt, 0x00040008000C0008ull); /* vtable 8, table 12, value_type@8, value@4 */
  if (t != vt + 8) wr16(buf + vt + 8, 0);
  wr32(buf + t, (uint32_t)(t - vt));     /* soffset */
  wr32(buf + t + 8, (uint32_t)pt + 1);   /* value_type (ParameterValue tag), 3 zeros */
  size_t entry = vec + 4 + 4 * i;
  wr32(buf + entry, (uint32_t)(t - entry));
  size_t table; /* the value table */
  if (pt == HLFB_PT_LONG || pt == HLFB_PT_ULONG || pt == HLFB_PT_DOUBLE) {
    wr64(buf + v, 0x00000004000C0006ull); /* vtable 6, table 12, value@4; 2 zeros */
    table = v + 8;
    if (!(v & 4)) {
      wr32(buf + table, 0);
      table += 4;
    }
    wr32(buf + table, (uint32_t)(table - v));
    wr64(buf + table + 4, bits);
  } else {
    wr64(buf + v, 0x0000000400080006ull); /* vtable 6, table 8, value@4; 2 zeros */
    table = v + 8;
    if (pt == HLFB_PT_STRING || pt == HLFB_PT_VECBYTES) {
      wr64(buf + table, 8 | 4ull << 32);  /* soffset 8; value -> the length at v + 16 */
      wr32(buf + v + 16, (uint32_t)len);
      if (len) memcpy(buf + v + 20, ptr ? ptr : empty_string, len);
      if (pt == HLFB_PT_STRING) buf[v + 20 + len] = 0;
    } else {
      wr64(buf + table, 8 | (uint64_t)(uint32_t)bits << 32); /* soffset 8; value */
    }
  }
  wr32(buf + t + 4, (uint32_t)(table - (t + 4))); /* value -> the value table */
  return end;
}

/* Pads the message to a multiple of 8 and sets its size prefix; returns its length or 0. */
HOT size_t call_finish_(uint8_t *buf, size_t cap, size_t pos) {
  size_t end = (pos + 7) & ~(size_t)7;
  if (end > cap) return 0;
  zero_small(buf + pos, end - pos);
  wr32(buf, (uint32_t)(end - 4));
  return end;
}

#endif
