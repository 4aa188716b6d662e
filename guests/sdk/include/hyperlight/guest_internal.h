/* The SDK's internals behind hyperlight_guest.h's macros and inline registration: the
 * registry layout, the name hash, the wrapper and ELF-note machinery. Included by
 * hyperlight_guest.h; not API (names end in `_` or start with HL_/hl_ and may change). */
#ifndef HYPERLIGHT_GUEST_INTERNAL_H
#define HYPERLIGHT_GUEST_INTERNAL_H

/* Internal. The registry's name hash reads the first and last 8 (or 4) bytes, so for a
 * string literal gcc computes it at compile time. The macro below then packs the name's
 * length, the parameter count, the return type and the hash into one constant `key` and
 * registering is a few stores inline (guest instructions are expensive, see
 * docs/guest-sdk.md); other names go through the function. */
static inline __attribute__((always_inline)) uint32_t hl_name_hash_(const char *s, size_t n) {
  uint64_t a = 0, b = 0;
  if (n >= 8) {
    __builtin_memcpy(&a, s, 8);
    __builtin_memcpy(&b, s + n - 8, 8);
  } else if (n >= 4) {
    uint32_t x, y;
    __builtin_memcpy(&x, s, 4);
    __builtin_memcpy(&y, s + n - 4, 4);
    a = x;
    b = y;
  } else if (n > 0) {
    a = (uint64_t)(unsigned char)s[0] | (uint64_t)(unsigned char)s[n / 2] << 8;
    b = (unsigned char)s[n - 1];
  }
  uint64_t x = (a ^ ((b << 29) | (b >> 35)) ^ n) * 0x9E3779B97F4A7C15ull;
  return (uint32_t)(x >> 32);
}
/* key = length (bits 0..23) | parameter count (24..27) | return type (28..31) | hash << 32 */
#define HL_KEY_CONST_(name, count, ret)                                                  \
  (__builtin_constant_p(__builtin_strlen(name)) && __builtin_constant_p(count) &&         \
   __builtin_constant_p(ret) && __builtin_strlen(name) < (1u << 24) && (count) <= 11 &&   \
   (unsigned)(ret) <= 9)
#define HL_KEY_(name, count, ret)                                                        \
  ((uint64_t)__builtin_strlen(name) | (uint64_t)(count) << 24 | (uint64_t)(ret) << 28 |   \
   (uint64_t)hl_name_hash_((name), __builtin_strlen(name)) << 32)
/* The registry (internal; dispatch.c): functions in registration order and a hash table
 * of chains through them, oldest first: a lookup stops at the first match, so it reads
 * only the entries registered before it in its chain (on the hot page for the first ~36). */
typedef struct hl_registered_fn_ {
  const char *name;
  hl_guest_function fn;
  uint64_t types; /* parameter i's type in bits 4i..4i+3 (hl_pack_types_) */
  uint64_t key;
  uint64_t name8; /* names of at most 8 bytes: hl_name8_(name), so lookup reads no .rodata */
  const struct hl_registered_fn_ *next;
} hl_registered_fn_;
/* The bytes of a name of n <= 8 bytes as one word: equal words mean equal names of the
 * same length (reads only bytes 0..n-1, like hl_name_hash_). */
static inline __attribute__((always_inline)) uint64_t hl_name8_(const char *s, size_t n) {
  if (n == 8) {
    uint64_t a;
    __builtin_memcpy(&a, s, 8);
    return a;
  }
  if (n >= 4) {
    uint32_t x, y;
    __builtin_memcpy(&x, s, 4);
    __builtin_memcpy(&y, s + n - 4, 4);
    return x | (uint64_t)y << 32;
  }
  uint64_t v = 0;
  for (size_t i = 0; i < n; i++) v |= (uint64_t)(unsigned char)s[i] << (8 * i);
  return v;
}
/* Parameter types, 4 bits each; a value that is no type (above VecBytes) becomes 15, which
 * matches no parameter either. n is at most 15 (the key's count field). */
static inline __attribute__((always_inline)) uint64_t hl_pack_types_(const hl_ParameterType *t,
                                                                     unsigned n) {
  uint64_t p = 0;
#pragma GCC unroll 16
  for (unsigned i = 0; i < n; i++) {
    unsigned x = (unsigned)t[i];
    p |= (uint64_t)(x > hl_ParameterType_VecBytes ? 15 : x) << (4 * i);
  }
  return p;
}
/* 64 chains, indexed by the name hash's top 6 bits: the table (512 bytes) and the first
 * ~36 registered functions then share the hot data's page (sdk/guest.ld). */
#define HL_NAME_BUCKETS_ 64
#define HL_BUCKET_(key) ((key) >> 58)
extern __attribute__((visibility("hidden"))) hl_registered_fn_ hl_functions_[HL_MAX_FUNCTIONS];
extern __attribute__((visibility("hidden"))) size_t hl_functions_bytes_; /* in use */
extern __attribute__((visibility("hidden"))) const hl_registered_fn_ *hl_buckets_[HL_NAME_BUCKETS_];
/* Checks, then registers (aborts on a full table or a bad definition). */
void hl_register_function_key_(const char *name, uint64_t key, hl_guest_function fn,
                               const hl_ParameterType *param_types);
/* Inline for literals: the checks fold away and registering is a handful of stores. */
static inline __attribute__((always_inline)) void hl_register_inline_(
    const char *name, uint64_t key, hl_guest_function fn, const hl_ParameterType *param_types) {
  size_t used = hl_functions_bytes_;
  if (used >= sizeof hl_functions_ || fn == NULL ||
      (param_types == NULL && ((key >> 24) & 15) != 0)) {
    hl_register_function_key_(name, key, fn, param_types);
    return;
  }
  hl_registered_fn_ *r = (hl_registered_fn_ *)((char *)hl_functions_ + used);
  r->name = name;
  r->fn = fn;
  r->types = hl_pack_types_(param_types, (unsigned)(key >> 24) & 15);
  r->key = key;
  if ((key & 0xFFFFFF) <= 8) r->name8 = hl_name8_(name, key & 0xFFFFFF); /* else unused */
  r->next = NULL;
  const hl_registered_fn_ **link = &hl_buckets_[HL_BUCKET_(key)];
  while (*link != NULL) link = &((hl_registered_fn_ *)*link)->next;
  *link = r;
  hl_functions_bytes_ = used + sizeof *r;
}
/* Literal names with constant counts and types register inline; anything else calls the
 * function. An inline function behind a variadic macro, so that any C argument works,
 * compound literals with commas included. */
static inline __attribute__((always_inline)) void hl_register_definition_(
    const char *name, hl_guest_function fn, size_t param_count, const hl_ParameterType *param_types,
    hl_ReturnType return_type) {
  if (HL_KEY_CONST_(name, param_count, return_type))
    hl_register_inline_(name, HL_KEY_(name, param_count, return_type), fn, param_types);
  else
    (hl_register_function_definition)(name, fn, param_count, param_types, return_type);
}

#define HL_CAT_(a, b) a##b
#define HL_CAT(a, b) HL_CAT_(a, b)
#define HL_P_(i, T) c->parameters[i].value.T
#define HL_ARGS_0()
#define HL_ARGS_1(a) HL_P_(0, a)
#define HL_ARGS_2(a, b) HL_ARGS_1(a), HL_P_(1, b)
#define HL_ARGS_3(a, b, d) HL_ARGS_2(a, b), HL_P_(2, d)
#define HL_ARGS_4(a, b, d, e) HL_ARGS_3(a, b, d), HL_P_(3, e)
#define HL_ARGS_5(a, b, d, e, f) HL_ARGS_4(a, b, d, e), HL_P_(4, f)
#define HL_ARGS_6(a, b, d, e, f, g) HL_ARGS_5(a, b, d, e, f), HL_P_(5, g)
#define HL_ARGS_7(a, b, d, e, f, g, h) HL_ARGS_6(a, b, d, e, f, g), HL_P_(6, h)
#define HL_ARGS_8(a, b, d, e, f, g, h, i) HL_ARGS_7(a, b, d, e, f, g, h), HL_P_(7, i)
#define HL_ARGS_9(a, b, d, e, f, g, h, i, j) HL_ARGS_8(a, b, d, e, f, g, h, i), HL_P_(8, j)
#define HL_ARGS_10(a, b, d, e, f, g, h, i, j, k) \
  HL_ARGS_9(a, b, d, e, f, g, h, i, j), HL_P_(9, k)
#define HL_ARGS_11(a, b, d, e, f, g, h, i, j, k, l) \
  HL_ARGS_10(a, b, d, e, f, g, h, i, j, k), HL_P_(10, l)
#define HL_T_(T) hl_ParameterType_##T,
#define HL_TYPES_0()
#define HL_TYPES_1(a) HL_T_(a)
#define HL_TYPES_2(a, b) HL_TYPES_1(a) HL_T_(b)
#define HL_TYPES_3(a, b, d) HL_TYPES_2(a, b) HL_T_(d)
#define HL_TYPES_4(a, b, d, e) HL_TYPES_3(a, b, d) HL_T_(e)
#define HL_TYPES_5(a, b, d, e, f) HL_TYPES_4(a, b, d, e) HL_T_(f)
#define HL_TYPES_6(a, b, d, e, f, g) HL_TYPES_5(a, b, d, e, f) HL_T_(g)
#define HL_TYPES_7(a, b, d, e, f, g, h) HL_TYPES_6(a, b, d, e, f, g) HL_T_(h)
#define HL_TYPES_8(a, b, d, e, f, g, h, i) HL_TYPES_7(a, b, d, e, f, g, h) HL_T_(i)
#define HL_TYPES_9(a, b, d, e, f, g, h, i, j) HL_TYPES_8(a, b, d, e, f, g, h, i) HL_T_(j)
#define HL_TYPES_10(a, b, d, e, f, g, h, i, j, k) \
  HL_TYPES_9(a, b, d, e, f, g, h, i, j) HL_T_(k)
#define HL_TYPES_11(a, b, d, e, f, g, h, i, j, k, l) \
  HL_TYPES_10(a, b, d, e, f, g, h, i, j, k) HL_T_(l)
/* Internal: what the wrappers return. The same contract as hl_flatbuffer_result_from_*
 * (NULL with MallocFailed when the heap could not hold the result), but the value is
 * kept and written straight into the output buffer by the dispatcher, without a heap
 * copy; the pointer returned means "the pending result" to the dispatcher only. */
hl_Vec *hl_wrap_result_bits_(uint8_t type, uint64_t bits);
hl_Vec *hl_wrap_result_String_(const char *s);
hl_Vec *hl_wrap_result_Bytes_(const uint8_t *data, size_t len);
#define HL_RESULT_Int(x) hl_wrap_result_bits_(hl_ReturnType_Int, (uint32_t)(int32_t)(x))
#define HL_RESULT_UInt(x) hl_wrap_result_bits_(hl_ReturnType_UInt, (uint32_t)(x))
#define HL_RESULT_Long(x) hl_wrap_result_bits_(hl_ReturnType_Long, (uint64_t)(int64_t)(x))
#define HL_RESULT_ULong(x) hl_wrap_result_bits_(hl_ReturnType_ULong, (uint64_t)(x))
#define HL_RESULT_Float(x) hl_wrap_result_bits_(hl_ReturnType_Float, hl_float_bits_(x))
#define HL_RESULT_Double(x) hl_wrap_result_bits_(hl_ReturnType_Double, hl_double_bits_(x))
#define HL_RESULT_String(x) hl_wrap_result_String_(x)
#define HL_RESULT_Bool(x) hl_wrap_result_bits_(hl_ReturnType_Bool, (x) ? 1u : 0u)
#define HL_RESULT_Void(x) ((x), hl_wrap_result_bits_(hl_ReturnType_Void, 0))
#define HL_RESULT_VecBytes(x) hl_result_from_vec_value_(x)

static inline uint32_t hl_float_bits_(float f) {
  union { float f; uint32_t u; } x = {.f = f};
  return x.u;
}
static inline uint64_t hl_double_bits_(double d) {
  union { double d; uint64_t u; } x = {.d = d};
  return x.u;
}

static inline hl_Vec *hl_result_from_vec_value_(hl_Vec v) {
  return hl_wrap_result_Bytes_(v.data, v.len);
}


/* ---- The guest-function ELF note: the format is described in hyperlight_guest.h ---- */
#define HL_NOTE_OWNER_ "Hyperlight"
#define HL_NOTE_SIGNATURE 1
#define HL_NOTE_NAME 2
#define HL_NOTE_ATTRS_ __attribute__((section(".note.hyperlight"), used, aligned(4)))
#define HL_PAD4_(n) (((n) + 3) & ~(size_t)3)
#define HL_NOTE_SIGNATURE_(fn, Ret, N, ...)                                           \
  static const struct {                                                              \
    uint32_t namesz, descsz, type;                                                   \
    char owner[HL_PAD4_(sizeof HL_NOTE_OWNER_)];                                     \
    uint8_t version, ret, count, types[11];                                          \
    uint16_t zero;                                                                   \
    char ident[HL_PAD4_(sizeof #fn)];                                                \
  } hl_note_signature_##fn HL_NOTE_ATTRS_ = {                                     \
      sizeof HL_NOTE_OWNER_, 16 + sizeof #fn, HL_NOTE_SIGNATURE, HL_NOTE_OWNER_, 1,   \
      hl_ReturnType_##Ret, (N), {HL_CAT(HL_TYPES_, N)(__VA_ARGS__)}, 0, #fn};
#define HL_NOTE_NAME_(name, fn)                                                       \
  static const struct {                                                              \
    uint32_t namesz, descsz, type;                                                   \
    char owner[HL_PAD4_(sizeof HL_NOTE_OWNER_)];                                     \
    char desc[HL_PAD4_(sizeof #fn + sizeof(name))];                                  \
  } hl_note_name_ HL_NOTE_ATTRS_ = {sizeof HL_NOTE_OWNER_, sizeof #fn + sizeof(name), \
                                    HL_NOTE_NAME, HL_NOTE_OWNER_, #fn "\0" name};

#endif
