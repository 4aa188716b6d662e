/* Guest-call dispatch, host calls, results, errors and logging over the I/O buffer stacks; no boot code, no libc. */
#include "internal.h"
#include "hyperlight/flatbuf.h"
#include "flatbuf_read.h"
#include "flatbuf_write.h"
#include <stdio.h>
#include <stdio_ext.h>
#include <stdlib.h>
#include <string.h>


/* The fallback dispatcher is optional: weak, so it is NULL unless the guest defines it. */
extern hl_Vec *c_guest_dispatch_function(const hl_FunctionCall *call) __attribute__((weak));

/* The registry (declared in hyperlight_guest.h, filled inline by the registration
 * macro): an array in registration order and a hash table of chains through it, oldest
 * first. Lookup takes the first match, the oldest, so the first of two equal names wins.
 * `key`: see HL_KEY_ in hyperlight_guest.h. */
#define KEY_LEN(k) ((uint32_t)(k) & 0xFFFFFF)
#define KEY_COUNT(k) ((unsigned)((k) >> 24) & 15)
#define KEY_NAME_MASK 0xFFFFFFFF00FFFFFFull /* length and hash */
typedef hl_registered_fn_ registered_fn;
/* In its own section, which sdk/guest.ld places right after the hot data, on its page. */
__attribute__((section(".bss.hl_table"))) registered_fn hl_functions_[HL_MAX_FUNCTIONS];
size_t hl_functions_bytes_;
HL_HOT_DATA_ const registered_fn *hl_buckets_[HL_NAME_BUCKETS_];

/* State of the guest call in progress. */
HL_HOT_DATA_ static bool in_call;
HL_HOT_DATA_ static hl_jmp_buf call_jmp;
HL_HOT_DATA_ static uint64_t error_code;
HL_HOT_DATA_ static const char *error_message;
HL_HOT_DATA_ static size_t error_message_len;
static char error_copy[1024];
HL_HOT_DATA_ static hlfb_value host_result;

static size_t cstrlen(const char *s) {
  size_t n = 0;
  while (s && s[n]) n++;
  return n;
}

static uint64_t io_rd64(const uint8_t *p) { return *(const volatile uint64_t *)p; }
static void io_wr64(uint8_t *p, uint64_t v) { *(volatile uint64_t *)p = v; }

/* ---------------------------------------------------------------- I/O buffer stacks */

/* The top element: *elem and *avail (bytes between it and the back-pointer), *bp its offset. */
static inline __attribute__((always_inline)) bool stack_top(uint8_t *buf, uint64_t size, uint8_t **elem, uint64_t *avail, uint64_t *bp) {
  if (buf == NULL || size < 16) return false;
  uint64_t sp = io_rd64(buf);
  if (sp < 8 + 4 + 8 || sp > size) return false;
  uint64_t back = io_rd64(buf + sp - 8);
  if (back < 8 || back + 4 > sp - 8) return false;
  *elem = buf + back;
  *avail = sp - 8 - back;
  *bp = back;
  return true;
}

/* Free space for the next element of the output stack (the back-pointer is reserved). */
static inline __attribute__((always_inline)) uint8_t *push_space(size_t *cap) {
  uint8_t *buf = hl_env.output;
  uint64_t size = hl_env.output_size;
  *cap = 0;
  if (buf == NULL || size < 16) return NULL;
  uint64_t sp = io_rd64(buf);
  if (sp < 8 || sp > size - 8 || (sp & 7)) return NULL;
  *cap = (size_t)(size - sp - 8);
  return buf + sp;
}

/* Commits `len` bytes written at push_space(): back-pointer, then the new sp. */
static inline __attribute__((always_inline)) void push_commit(size_t len) {
  uint8_t *buf = hl_env.output;
  uint64_t sp = io_rd64(buf);
  io_wr64(buf + sp + len, sp);
  io_wr64(buf, sp + len + 8);
}

static bool push_bytes(const uint8_t *data, size_t len) {
  size_t cap;
  uint8_t *dst = push_space(&cap);
  if (dst == NULL || len > cap) return false;
  memcpy(dst, data, len);
  push_commit(len);
  return true;
}

static void push_error(uint64_t code, const char *msg, size_t len) {
  size_t cap;
  uint8_t *dst = push_space(&cap);
  size_t n = hlfb_build_error(dst, cap, code, msg, len);
  if (n == 0 && len > 64) n = hlfb_build_error(dst, cap, code, msg, 64);
  if (n == 0) {
    static const char why[] = "output buffer too small for a GuestError";
    hl_sdk_abort(HL_SDK_ABORT_RUNTIME, why, sizeof why - 1);
  }
  push_commit(n);
}

/* ---------------------------------------------------------------- errors */

__attribute__((noreturn)) void hl_sdk_fail_call(uint64_t code, const char *message, size_t len) {
  if (!in_call) { /* during hyperlight_main there is no call to fail */
    hl_sdk_abort(HL_SDK_ABORT_RUNTIME, message, len);
  }
  error_code = code;
  error_message = message;
  error_message_len = len;
  hl_longjmp(&call_jmp, 1);
}

void hl_set_error(hl_ErrorCode code, const char *message) {
  size_t n = cstrlen(message);
  if (n > sizeof error_copy - 1) n = sizeof error_copy - 1;
  for (size_t i = 0; i < n; i++) error_copy[i] = message[i];
  error_copy[n] = 0;
  error_code = code == hl_ErrorCode_NoError ? hl_ErrorCode_GuestError : (uint64_t)code;
  error_message = error_copy;
  error_message_len = n;
}

/* A small appender for error messages built in error_copy. */
static size_t em_len;
static void em_bytes(const char *p, size_t n) {
  for (size_t i = 0; i < n && em_len < sizeof error_copy - 1; i++) error_copy[em_len++] = p[i];
  error_copy[em_len] = 0;
}
static void em_str(const char *s) { em_bytes(s, cstrlen(s)); }
static void em_uint(uint64_t v) {
  char d[20];
  size_t n = 0;
  do d[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (n) em_bytes(&d[--n], 1);
}

/* ---------------------------------------------------------------- registry */

static __attribute__((noreturn, noinline, cold)) void bad_registration(bool too_many) {
  static const char many[] = "too many guest functions registered";
  static const char bad[] = "invalid guest function definition";
  if (too_many) hl_sdk_abort(HL_SDK_ABORT_RUNTIME, many, sizeof many - 1);
  hl_sdk_abort(HL_SDK_ABORT_RUNTIME, bad, sizeof bad - 1);
}

void hl_register_function_key_(const char *name, uint64_t key, hl_guest_function fn,
                               const hl_ParameterType *param_types) {
  if (hl_functions_bytes_ >= sizeof hl_functions_) bad_registration(true);
  if (fn == NULL || (param_types == NULL && KEY_COUNT(key) != 0)) bad_registration(false);
  hl_register_inline_(name, key, fn, param_types);
}

/* The function form; the header's macro of the same name takes the path above for literals. */
void (hl_register_function_definition)(const char *name, hl_guest_function fn, size_t param_count,
                                       const hl_ParameterType *param_types,
                                       hl_ReturnType return_type) {
  if (hl_functions_bytes_ >= sizeof hl_functions_) bad_registration(true);
  if (name == NULL || param_count > HL_MAX_GUEST_PARAMS) bad_registration(false);
  size_t n = cstrlen(name);
  if (n >= (1u << 24)) bad_registration(false);
  uint64_t key = n | (uint64_t)param_count << 24 | (uint64_t)(return_type & 15) << 28 |
                 (uint64_t)hl_name_hash_(name, n) << 32;
  hl_register_function_key_(name, key, fn, param_types);
}

/* Compares n bytes a word at a time (the last word overlaps the one before). */
static bool names_equal(const char *a, const char *b, size_t n) {
  typedef uint64_t __attribute__((may_alias, aligned(1))) u64u;
  typedef uint32_t __attribute__((may_alias, aligned(1))) u32u;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8)
      if (*(const u64u *)(a + i) != *(const u64u *)(b + i)) return false;
    return *(const u64u *)(a + n - 8) == *(const u64u *)(b + n - 8);
  }
  if (n >= 4)
    return *(const u32u *)a == *(const u32u *)b && *(const u32u *)(a + n - 4) == *(const u32u *)(b + n - 4);
  for (size_t i = 0; i < n; i++)
    if (a[i] != b[i]) return false;
  return true;
}

static const registered_fn *lookup(const char *name, uint32_t len) {
  uint64_t key = len | (uint64_t)hl_name_hash_(name, len) << 32;
  if (len <= 8) { /* the name's bytes are in the entry */
    uint64_t name8 = hl_name8_(name, len);
    for (const registered_fn *r = hl_buckets_[HL_BUCKET_(key)]; r != NULL; r = r->next)
      if ((r->key & KEY_NAME_MASK) == key && r->name8 == name8) return r;
    return NULL;
  }
  for (const registered_fn *r = hl_buckets_[HL_BUCKET_(key)]; r != NULL; r = r->next)
    if ((r->key & KEY_NAME_MASK) == key && names_equal(r->name, name, len)) return r;
  return NULL;
}

static uint32_t name_len(const registered_fn *r) { return KEY_LEN(r->key); }

/* ---------------------------------------------------------------- dispatch */

static const char TYPE_NAMES[] = "Int\0UInt\0Long\0ULong\0Float\0Double\0String\0Bool\0VecBytes\0?\0";

static const char *type_name(unsigned t) {
  const char *p = TYPE_NAMES;
  for (unsigned i = 0; i < t && i < 9; i++) p += cstrlen(p) + 1;
  return p;
}

static void to_parameter(const hlfb_value *v, hl_Parameter *p) {
  p->tag = (hl_ParameterType)v->type;
  switch (v->type) {
  case HLFB_PT_STRING: p->value.String = (char *)v->v.buf.ptr; break;
  case HLFB_PT_VECBYTES:
    p->value.VecBytes.data = (uint8_t *)v->v.buf.ptr;
    p->value.VecBytes.len = v->v.buf.len;
    break;
  case HLFB_PT_BOOL: p->value.Bool = v->v.b; break;
  default: p->value.ULong = v->v.u64; break; /* copies the widest scalar */
  }
  if (v->type == HLFB_PT_INT || v->type == HLFB_PT_UINT || v->type == HLFB_PT_FLOAT)
    p->value.UInt = v->v.u32;
}

/* Checks count and types; on a mismatch pushes the GuestError and returns false. */
static bool check_signature(const registered_fn *r, const hl_Parameter *params, size_t n) {
  /* The messages are Hyperlight's, word for word (its tests compare them). */
  if (n != KEY_COUNT(r->key)) {
    em_len = 0;
    em_str("Called function ");
    em_bytes(r->name, name_len(r));
    em_str(" with ");
    em_uint(n);
    em_str(" parameters but it takes ");
    em_uint(KEY_COUNT(r->key));
    em_str(".");
    push_error(hl_ErrorCode_GuestFunctionIncorrecNoOfParameters, error_copy, em_len);
    return false;
  }
  for (size_t i = 0; i < n; i++) {
    unsigned want = (unsigned)(r->types >> (4 * i)) & 15;
    if ((unsigned)params[i].tag != want) {
      em_len = 0;
      em_str("Expected parameter type ");
      em_str(type_name(want));
      em_str(" for parameter index ");
      em_uint(i);
      em_str(" of function ");
      em_bytes(r->name, name_len(r));
      em_str(" but got ");
      em_str(type_name(params[i].tag));
      em_str(".");
      push_error(hl_ErrorCode_GuestFunctionParameterTypeMismatch, error_copy, em_len);
      return false;
    }
  }
  return true;
}

/* The pending result of a HYPERLIGHT_WRAP_FUNCTION wrapper (see hl_wrap_result_*): the
 * value, and the object whose address stands for it. */
HL_HOT_DATA_ static hlfb_value pending;
HL_HOT_DATA_ static hl_Vec pending_vec;
static hl_Vec *make_result(const hlfb_value *v);

/* Runs fn under the error trap; returns its result or NULL with error_code set. */
static HL_HOT_ hl_Vec *run_trapped(hl_guest_function fn, const hl_FunctionCall *fc) {
  hl_Vec *volatile result = NULL;
  in_call = true;
  if (hl_setjmp(&call_jmp) == 0) {
    result = fn(fc);
    /* printf output still buffered goes out with the call (a writev system call, served by
     * the host into its print function). Only when something is buffered: fflush also
     * resets the FILE's pointers, a write to .data that restores would then copy back. */
    if (__fpending(stdout) != 0) fflush(stdout);
  }
  in_call = false;
  return result;
}

/* Pops the input stack to `bp` (0: an inline call, nothing on the stack). */
static inline void pop_input(uint64_t bp) {
  if (bp != 0) io_wr64(hl_env.input, bp);
}

/* Whether `t` is a type an inline record carries (a scalar or a String whose bytes go in the
 * name line; Void only as a value). */
static inline bool inline_type(uint8_t t, bool value) {
  return t <= HLFB_PT_STRING || t == HLFB_PT_BOOL || (value && t == HLFB_RT_VOID);
}

/* The bits of scalar `p` in an inline record (32-bit values zero-extended, Bool 0 or 1). */
static inline uint64_t scalar_bits(const hl_Parameter *p) {
  switch ((uint8_t)p->tag) {
  case hl_ParameterType_Bool: return p->value.Bool ? 1 : 0;
  case hl_ParameterType_Int: case hl_ParameterType_UInt: case hl_ParameterType_Float: return p->value.UInt;
  default: return p->value.ULong;
  }
}

static inline void set_scalar(hl_Parameter *p, uint8_t type, uint64_t bits) {
  p->tag = (hl_ParameterType)type;
  p->value.ULong = 0;
  if (type == HLFB_PT_BOOL) p->value.Bool = bits != 0;
  else if (type == HLFB_PT_INT || type == HLFB_PT_UINT || type == HLFB_PT_FLOAT) p->value.UInt = (uint32_t)bits;
  else p->value.ULong = bits;
}

/* Runs guest call `fc` (its name `name_len` bytes) and leaves its FunctionCallResult (or
 * GuestError) on the output stack, or, for an inline call with a scalar value, the value in
 * the mailbox's guest record; then pops the input stack to `bp`. */
static HL_HOT_ void run_call(hl_FunctionCall *fc, uint32_t name_len, uint64_t bp) {
  const char *name = fc->function_name;
  const registered_fn *fn = lookup(name, name_len);
  hl_guest_function target;
  if (fn != NULL) {
    if (!check_signature(fn, fc->parameters, fc->parameters_len)) {
      pop_input(bp);
      return;
    }
    target = fn->fn;
  } else if (c_guest_dispatch_function != NULL) {
    target = c_guest_dispatch_function;
  } else {
    em_len = 0;
    em_str("guest function not found: ");
    em_bytes(name, name_len);
    push_error(hl_ErrorCode_GuestFunctionNotFound, error_copy, em_len);
    pop_input(bp);
    return;
  }
  /* The call stays on the input stack while it runs, so host-call results pushed
   * above it cannot overwrite its String/VecBytes parameters; it is popped here. */
  hl_Vec *result = run_trapped(target, fc);
  if (error_code != 0) {
    push_error(error_code, error_message, error_message_len);
  } else if (result == NULL && target == c_guest_dispatch_function) {
    /* the fallback knows no such function: Hyperlight's GuestFunctionNotFound, with the name */
    const char *n = fc->function_name ? fc->function_name : "";
    push_error(hl_ErrorCode_GuestFunctionNotFound, n, strlen(n));
  } else if (result == NULL) {
    static const char m[] = "guest function returned no result (heap exhausted?)";
    push_error(hl_ErrorCode_MallocFailed, m, sizeof m - 1);
  } else if (result == &pending_vec && hl_mb_inline_call_ && inline_type(pending.type, true) &&
             (pending.type != HLFB_RT_STRING || pending.v.buf.len <= HL_MB_NAME_MAX)) {
    volatile uint8_t *rec = hl_mailbox + HL_MB_OFF_GUEST_RECORD;
    uint64_t bits = 0;
    if (pending.type == HLFB_RT_STRING) { /* its bytes in the guest name line */
      for (uint32_t i = 0; i < pending.v.buf.len; i++) hl_mailbox[HL_MB_OFF_GUEST_NAME + i] = pending.v.buf.ptr[i];
      bits = pending.v.buf.len;
    } else if (pending.type != HLFB_RT_VOID) {
      hl_Parameter v;
      set_scalar(&v, pending.type, pending.v.u64);
      bits = scalar_bits(&v);
    }
    rec[HL_MB_REC_OFF_TYPE] = pending.type;
    *(volatile uint64_t *)(rec + HL_MB_REC_OFF_VALUES) = bits;
    hl_mb_inline_result_ = true;
  } else if (result == &pending_vec) { /* written in place, no copy */
    static const char m[] = "result does not fit in the output buffer";
    size_t cap;
    uint8_t *dst = push_space(&cap);
    size_t n = hlfb_build_result(dst, cap, &pending);
    if (n == 0) push_error(hl_ErrorCode_UnknownError, m, sizeof m - 1);
    else push_commit(n);
  } else if (!push_bytes(result->data, result->len)) {
    static const char m[] = "result does not fit in the output buffer";
    push_error(hl_ErrorCode_UnknownError, m, sizeof m - 1);
  }
  if (result != NULL && result != &pending_vec) free(result);
  pop_input(bp);
}

/* An inline call (HL_MB_CMD_CALL_INLINE): the name, return type and parameters from the
 * mailbox's host record, the name and String parameters' bytes from the host name line (in
 * that order), all copied out before the call runs: each string ends with a NUL in `text`. */
static HL_HOT_ void dispatch_inline(void) {
  HL_HOT_DATA_ static hl_Parameter params[HL_MB_REC_MAX_PARAMS];
  static char name[HL_MB_NAME_MAX + 1];
  static char text[HL_MB_NAME_MAX + HL_MB_REC_MAX_PARAMS];
  static const char bad[] = "malformed inline FunctionCall";
  const volatile uint8_t *rec = hl_mailbox + HL_MB_OFF_HOST_RECORD;
  const volatile uint8_t *line = hl_mailbox + HL_MB_OFF_HOST_NAME;
  uint32_t len = rec[HL_MB_REC_OFF_NAME_LEN];
  unsigned n = rec[HL_MB_REC_OFF_COUNT];
  uint8_t rt = rec[HL_MB_REC_OFF_TYPE];
  if (len == 0 || len > HL_MB_NAME_MAX || n > HL_MB_REC_MAX_PARAMS) {
    push_error(hl_ErrorCode_UnknownError, bad, sizeof bad - 1);
    return;
  }
  uint32_t at = len; /* the next String's bytes in the line */
  size_t out = 0;    /* and in `text` */
  for (unsigned i = 0; i < n; i++) {
    uint8_t t = rec[HL_MB_REC_OFF_PTYPES + i];
    uint64_t bits = *(const volatile uint64_t *)(rec + HL_MB_REC_OFF_VALUES + 8 * i);
    if (!inline_type(t, false) || (t == HLFB_PT_STRING && bits > HL_MB_NAME_MAX - at)) {
      push_error(hl_ErrorCode_UnknownError, bad, sizeof bad - 1);
      return;
    }
    if (t == HLFB_PT_STRING) {
      params[i].tag = hl_ParameterType_String;
      params[i].value.String = &text[out];
      for (uint64_t k = 0; k < bits; k++) text[out++] = (char)line[at++];
      text[out++] = 0;
    } else {
      set_scalar(&params[i], t, bits);
    }
  }
  for (uint32_t i = 0; i < len; i++) name[i] = (char)line[i];
  name[len] = 0;
  hl_FunctionCall fc = {name, params, n, (hl_ReturnType)rt};
  run_call(&fc, len, 0);
}

/* Called from entry.S on a fresh stack for each guest call. */
__attribute__((used)) HL_HOT_ void hl_sdk_dispatch(void) {
  HL_HOT_DATA_ static hlfb_value values[HL_MAX_PARAMS];
  HL_HOT_DATA_ static hl_Parameter params[HL_MAX_PARAMS];
  uint8_t *elem;
  uint64_t avail, bp;
  error_code = 0; /* error_message and its length are set with every nonzero code */
  if (hl_mb_inline_call_) {
    dispatch_inline();
    return;
  }
  if (!stack_top(hl_env.input, hl_env.input_size, &elem, &avail, &bp)) {
    static const char m[] = "no FunctionCall in the input buffer";
    push_error(hl_ErrorCode_UnknownError, m, sizeof m - 1);
    return;
  }
  hlfb_call call;
  int r = read_call_(elem, avail, &call, values, HL_MAX_PARAMS);
  if (r != HLFB_OK) {
    static const char noname[] = "FunctionCall without a function name";
    static const char toomany[] = "too many parameters";
    static const char bad[] = "malformed FunctionCall";
    if (r == HLFB_ENONAME) push_error(hl_ErrorCode_GuestFunctionNameNotProvided, noname, sizeof noname - 1);
    else if (r == HLFB_ETOOMANY) push_error(hl_ErrorCode_GuestFunctionIncorrecNoOfParameters, toomany, sizeof toomany - 1);
    else push_error(hl_ErrorCode_UnknownError, bad, sizeof bad - 1);
    io_wr64(hl_env.input, bp);
    return;
  }
  for (uint32_t i = 0; i < call.param_count; i++) to_parameter(&values[i], &params[i]);
  hl_FunctionCall fc = {call.name, params, call.param_count, (hl_ReturnType)call.return_type};
  run_call(&fc, call.name_len, bp);
}

/* ---------------------------------------------------------------- results */


static HL_HOT_ hl_Vec *make_result(const hlfb_value *v) {
  size_t cap = hlfb_result_bound(v);
  hl_Vec *out = malloc(sizeof(hl_Vec) + cap);
  if (out == NULL) {
    hl_set_error(hl_ErrorCode_MallocFailed, "out of heap building a result");
    return NULL;
  }
  out->data = (uint8_t *)(out + 1);
  out->len = hlfb_build_result(out->data, cap, v);
  return out;
}

/* The pending result needs no heap, but it fails exactly when the heap could not have
 * held the result hl_flatbuffer_result_from_* would have built. */
static inline __attribute__((always_inline)) hl_Vec *pend(size_t extra) {
  /* what make_result would allocate: sizeof(hl_Vec) + hlfb_result_bound (128 + bytes) */
  if (!hl_heap_has_room(sizeof(hl_Vec) + 128 + extra)) {
    hl_set_error(hl_ErrorCode_MallocFailed, "out of heap building a result");
    return NULL;
  }
  return &pending_vec;
}

HL_HOT_ hl_Vec *hl_wrap_result_bits_(uint8_t type, uint64_t bits) {
  pending.type = type;
  pending.v.u64 = bits;
  return pend(0);
}

HL_HOT_ hl_Vec *hl_wrap_result_String_(const char *s) {
  pending.type = HLFB_RT_STRING;
  pending.v.buf.ptr = (const uint8_t *)(s ? s : "");
  pending.v.buf.len = (uint32_t)(s ? strlen(s) : 0);
  return pend(pending.v.buf.len);
}

HL_HOT_ hl_Vec *hl_wrap_result_Bytes_(const uint8_t *data, size_t len) {
  pending.type = HLFB_RT_VECBYTES;
  pending.v.buf.ptr = data;
  pending.v.buf.len = (uint32_t)len;
  return pend(pending.v.buf.len);
}

hl_Vec *hl_flatbuffer_result_from_Int(int32_t v) {
  hlfb_value x = {.type = HLFB_RT_INT, .v.i32 = v};
  return make_result(&x);
}
hl_Vec *hl_flatbuffer_result_from_UInt(uint32_t v) {
  hlfb_value x = {.type = HLFB_RT_UINT, .v.u32 = v};
  return make_result(&x);
}
hl_Vec *hl_flatbuffer_result_from_Long(int64_t v) {
  hlfb_value x = {.type = HLFB_RT_LONG, .v.i64 = v};
  return make_result(&x);
}
hl_Vec *hl_flatbuffer_result_from_ULong(uint64_t v) {
  hlfb_value x = {.type = HLFB_RT_ULONG, .v.u64 = v};
  return make_result(&x);
}
hl_Vec *hl_flatbuffer_result_from_Float(float v) {
  hlfb_value x = {.type = HLFB_RT_FLOAT, .v.u32 = hl_float_bits_(v)};
  return make_result(&x);
}
hl_Vec *hl_flatbuffer_result_from_Double(double v) {
  hlfb_value x = {.type = HLFB_RT_DOUBLE, .v.u64 = hl_double_bits_(v)};
  return make_result(&x);
}
hl_Vec *hl_flatbuffer_result_from_Void(void) {
  hlfb_value x = {.type = HLFB_RT_VOID};
  return make_result(&x);
}
hl_Vec *hl_flatbuffer_result_from_Bool(bool v) {
  hlfb_value x = {.type = HLFB_RT_BOOL, .v.b = v};
  return make_result(&x);
}
hl_Vec *hl_flatbuffer_result_from_String(const char *s) {
  hlfb_value x = {.type = HLFB_RT_STRING};
  x.v.buf.ptr = (const uint8_t *)(s ? s : "");
  x.v.buf.len = (uint32_t)(s ? strlen(s) : 0);
  return make_result(&x);
}
hl_Vec *hl_flatbuffer_result_from_Bytes(const uint8_t *data, size_t len) {
  hlfb_value x = {.type = HLFB_RT_VECBYTES};
  x.v.buf.ptr = data;
  x.v.buf.len = (uint32_t)len;
  return make_result(&x);
}

/* ---------------------------------------------------------------- host calls */

/* A host call with only scalar parameters, in exitless mode: posted in the mailbox's guest
 * record (HL_OP_CALL_INLINE). Returns false, having posted nothing, when a parameter is not
 * a scalar. The name is written only where it differs from the last one, so that an
 * unchanged name line stays in the host's cache. */
static const char bad_host_result[] = "malformed host function result";

/* Reads the host's FunctionCallResult from the input stack into host_result (a host
 * error fails the guest call), every bound checked; pops it: its bytes stay readable until
 * the next host call. */
static inline __attribute__((always_inline)) void take_host_result(void) {
  uint8_t *elem;
  uint64_t avail, bp;
  hlfb_result res;
  if (!stack_top(hl_env.input, hl_env.input_size, &elem, &avail, &bp) || read_result_(elem, avail, &res) != HLFB_OK)
    hl_sdk_fail_call(hl_ErrorCode_UnknownError, bad_host_result, sizeof bad_host_result - 1);
  io_wr64(hl_env.input, bp);
  if (res.is_error) hl_sdk_fail_call(res.error_code, res.error_message, res.error_message_len);
  host_result = res.value;
}

/* Writes `len` bytes at `at` of the guest name line where they differ from what is there. */
static inline void line_put(size_t at, const char *p, size_t len) {
  volatile uint8_t *line = hl_mailbox + HL_MB_OFF_GUEST_NAME;
  for (size_t i = 0; i < len; i++)
    if (line[at + i] != (uint8_t)p[i]) line[at + i] = (uint8_t)p[i];
}

static HL_HOT_ bool call_inline_(const char *name, size_t name_len, uint8_t return_type, const hl_Parameter *params,
                                 size_t n) {
  static char reply_text[HL_MB_NAME_MAX + 1];
  size_t used = name_len;
  for (size_t i = 0; i < n; i++) {
    uint8_t t = (uint8_t)params[i].tag;
    if (!inline_type(t, false)) return false;
    if (t == HLFB_PT_STRING) {
      size_t l = params[i].value.String ? strlen(params[i].value.String) : 0;
      if (l > HL_MB_NAME_MAX - used) return false;
      used += l;
    }
  }
  volatile uint8_t *rec = hl_mailbox + HL_MB_OFF_GUEST_RECORD;
  line_put(0, name, name_len);
  size_t at = name_len;
  rec[HL_MB_REC_OFF_NAME_LEN] = (uint8_t)name_len;
  rec[HL_MB_REC_OFF_COUNT] = (uint8_t)n;
  rec[HL_MB_REC_OFF_TYPE] = return_type;
  for (size_t i = 0; i < n; i++) {
    uint64_t bits;
    if (params[i].tag == hl_ParameterType_String) {
      const char *str = params[i].value.String ? params[i].value.String : "";
      bits = strlen(str);
      line_put(at, str, bits);
      at += bits;
    } else {
      bits = scalar_bits(&params[i]);
    }
    rec[HL_MB_REC_OFF_PTYPES + i] = (uint8_t)params[i].tag;
    *(volatile uint64_t *)(rec + HL_MB_REC_OFF_VALUES + 8 * i) = bits;
  }
  if (hl_mailbox_call_inline() == HL_MB_CMD_REPLY_INLINE) {
    const volatile uint8_t *hr = hl_mailbox + HL_MB_OFF_HOST_RECORD;
    uint8_t t = hr[HL_MB_REC_OFF_TYPE];
    uint64_t bits = *(const volatile uint64_t *)(hr + HL_MB_REC_OFF_VALUES);
    if (!inline_type(t, true) || (t == HLFB_RT_STRING && bits > HL_MB_NAME_MAX))
      hl_sdk_fail_call(hl_ErrorCode_UnknownError, bad_host_result, sizeof bad_host_result - 1);
    host_result.type = t;
    if (t == HLFB_RT_STRING) { /* its bytes from the host name line, kept until the next host call */
      for (uint64_t i = 0; i < bits; i++) reply_text[i] = (char)hl_mailbox[HL_MB_OFF_HOST_NAME + i];
      reply_text[bits] = 0;
      host_result.v.buf.ptr = (const uint8_t *)reply_text;
      host_result.v.buf.len = (uint32_t)bits;
    } else {
      host_result.v.u64 = t == HLFB_PT_BOOL ? (bits != 0) : bits;
    }
    return true;
  }
  take_host_result(); /* a FunctionCallResult: an error, or a value that is not inline */
  return true;
}

/* The FunctionCall is written straight into the output buffer from the hl_Parameters
 * (flatbuf_write.h: the bytes hlfb_build_call writes, without an hlfb_value copy or a
 * call), and the FunctionCallResult is read with the inlined reader: every bound checked. */
static inline __attribute__((always_inline)) void call_host_(const char *name, size_t name_len,
                                                             uint8_t return_type,
                                                             const hl_Parameter *params,
                                                             size_t n) {
  static const char toomany[] = "too many parameters for a host call";
  static const char nofit[] = "host call does not fit in the output buffer";
  if (n > HL_MAX_PARAMS) hl_sdk_fail_call(hl_ErrorCode_UnsupportedParameterType, toomany, sizeof toomany - 1);
  if (n <= HL_MB_REC_MAX_PARAMS && name_len != 0 && name_len <= HL_MB_NAME_MAX && hl_mailbox_inline() &&
      call_inline_(name, name_len, return_type, params, n))
    return;
  size_t cap;
  uint8_t *dst = push_space(&cap);
  size_t len = 0;
  size_t vec = call_head_(dst, cap, name, name_len, HLFB_CALL_HOST, return_type, n);
  if (vec != 0) {
    len = vec + 4 + 4 * n;
    for (size_t i = 0; i < n && len != 0; i++) {
      const hl_Parameter *p = &params[i];
      uint8_t pt = (uint8_t)p->tag;
      uint64_t bits = 0;
      const uint8_t *ptr = NULL;
      size_t plen = 0;
      switch (pt) {
      case hl_ParameterType_String:
        ptr = (const uint8_t *)(p->value.String ? p->value.String : "");
        plen = (uint32_t)strlen((const char *)ptr);
        break;
      case hl_ParameterType_VecBytes:
        ptr = p->value.VecBytes.data;
        plen = (uint32_t)p->value.VecBytes.len;
        break;
      case hl_ParameterType_Bool: bits = p->value.Bool ? 1 : 0; break;
      case hl_ParameterType_Int: case hl_ParameterType_UInt: case hl_ParameterType_Float:
        bits = p->value.UInt;
        break;
      default: bits = p->value.ULong; break;
      }
      len = call_param_(dst, cap, vec, len, i, pt, bits, ptr, plen);
    }
    if (len != 0) len = call_finish_(dst, cap, len);
  }
  if (len == 0) hl_sdk_fail_call(hl_ErrorCode_OutbError, nofit, sizeof nofit - 1);
  push_commit(len);
  hl_ring(HL_OP_CALL_FUNCTION, 0);
  take_host_result();
}

HL_HOT_ void hl_call_host_function(const hl_FunctionCall *call) {
  const char *name = call->function_name;
  call_host_(name, name ? strlen(name) : 0, (uint8_t)call->return_type, call->parameters,
             call->parameters_len);
}

static const char *return_type_name(uint8_t t) {
  return t == HLFB_RT_VOID ? "Void" : t == HLFB_RT_VECBYTES ? "VecBytes" : type_name(t);
}

static HL_HOT_ const hlfb_value *host_value(uint8_t type) {
  if (host_result.type != type) {
    em_len = 0;
    em_str("host function returned ");
    em_str(return_type_name(host_result.type));
    em_str(", expected ");
    em_str(return_type_name(type));
    hl_sdk_fail_call(hl_ErrorCode_GuestError, error_copy, em_len);
  }
  return &host_result;
}

int32_t hl_get_host_return_value_as_Int(void) { return host_value(HLFB_RT_INT)->v.i32; }
uint32_t hl_get_host_return_value_as_UInt(void) { return host_value(HLFB_RT_UINT)->v.u32; }
int64_t hl_get_host_return_value_as_Long(void) { return host_value(HLFB_RT_LONG)->v.i64; }
uint64_t hl_get_host_return_value_as_ULong(void) { return host_value(HLFB_RT_ULONG)->v.u64; }
bool hl_get_host_return_value_as_Bool(void) { return host_value(HLFB_RT_BOOL)->v.b; }
float hl_get_host_return_value_as_Float(void) {
  union { uint32_t u; float f; } x = {.u = host_value(HLFB_RT_FLOAT)->v.u32};
  return x.f;
}
double hl_get_host_return_value_as_Double(void) {
  union { uint64_t u; double d; } x = {.u = host_value(HLFB_RT_DOUBLE)->v.u64};
  return x.d;
}
const char *hl_get_host_return_value_as_String(void) {
  return (const char *)host_value(HLFB_RT_STRING)->v.buf.ptr;
}
hl_Vec *hl_get_host_return_value_as_VecBytes(void) {
  const hlfb_value *v = host_value(HLFB_RT_VECBYTES);
  size_t n = v->v.buf.len;
  if (n > SIZE_MAX - sizeof(hl_Vec)) return NULL;
  hl_Vec *out = malloc(sizeof(hl_Vec) + n);
  if (out == NULL) return NULL;
  out->data = (uint8_t *)(out + 1);
  out->len = n;
  if (n) memcpy(out->data, v->v.buf.ptr, n);
  return out;
}

/* ---------------------------------------------------------------- logging */

void hl_log(hl_Level level, const char *message, int line, const char *file) {
  if ((unsigned)level < hl_Level_Error || (unsigned)level > hl_Level_Trace) return;
  unsigned wire = 5 - (unsigned)level; /* Error 4, Warn 3, Info 2, Debug 1, Trace 0 */
  if (wire < hl_env.log_level) return;
  size_t cap;
  uint8_t *dst = push_space(&cap);
  size_t len = hlfb_build_log(dst, cap, (uint8_t)wire, message, "guest", "", file,
                              (uint32_t)line);
  if (len == 0) return; /* no room: the record is dropped */
  push_commit(len);
  hl_ring(HL_OP_LOG, 0);
}
