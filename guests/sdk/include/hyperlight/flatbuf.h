/* Bounds-checked reader and overflow-safe builder for the wire tables of schema/hyperlight.fbs; no I/O, no allocation. */
/* Portable C (stdint/stddef/stdbool only): the guest SDK uses it, and tests compile it natively. */
#ifndef HYPERLIGHT_FLATBUF_H
#define HYPERLIGHT_FLATBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ParameterType (wire enum, ubyte). */
enum {
  HLFB_PT_INT = 0, HLFB_PT_UINT, HLFB_PT_LONG, HLFB_PT_ULONG, HLFB_PT_FLOAT,
  HLFB_PT_DOUBLE, HLFB_PT_STRING, HLFB_PT_BOOL, HLFB_PT_VECBYTES
};
/* ReturnType (wire enum, ubyte); VecBytes travels as hlsizeprefixedbuffer. */
enum {
  HLFB_RT_INT = 0, HLFB_RT_UINT, HLFB_RT_LONG, HLFB_RT_ULONG, HLFB_RT_FLOAT,
  HLFB_RT_DOUBLE, HLFB_RT_STRING, HLFB_RT_BOOL, HLFB_RT_VOID, HLFB_RT_VECBYTES
};
/* FunctionCallType. */
enum { HLFB_CALL_NONE = 0, HLFB_CALL_GUEST = 1, HLFB_CALL_HOST = 2 };

/* Reader results. */
#define HLFB_OK 0
#define HLFB_EMALFORMED (-1) /* an offset, length or union is out of bounds or invalid */
#define HLFB_ETOOMANY (-2)   /* more parameters than the caller's array holds */
#define HLFB_ENONAME (-3)    /* FunctionCall without function_name */

/* One typed value. `type` is a ParameterType or a ReturnType depending on context.
 * Float and Double are IEEE-754 bit patterns (u32 / u64). A String's bytes are
 * NUL-terminated at ptr[len] (checked by the reader, written by the builder). */
typedef struct {
  uint8_t type;
  union {
    int32_t i32;
    uint32_t u32;
    int64_t i64;
    uint64_t u64;
    bool b;
    struct {
      const uint8_t *ptr;
      uint32_t len;
    } buf;
  } v;
} hlfb_value;

/* A decoded FunctionCall; strings point into the message. */
typedef struct {
  const char *name;
  uint32_t name_len;
  uint8_t call_type;
  uint8_t return_type;
  uint32_t param_count;
} hlfb_call;

/* A decoded FunctionCallResult: a value (type is a ReturnType) or a GuestError. */
typedef struct {
  bool is_error;
  hlfb_value value;
  uint64_t error_code;
  const char *error_message; /* NULL when absent */
  uint32_t error_message_len;
} hlfb_result;

/* Reads the u32 size prefix of a message of `avail` bytes; returns the flatbuffer
 * length (excluding the prefix) or -1 if it does not fit. */
int64_t hlfb_prefixed_len(const uint8_t *msg, size_t avail);

/* Decodes a size-prefixed FunctionCall. At most `max_params` parameters are stored
 * (call->param_count is set even when HLFB_ETOOMANY is returned). */
int hlfb_read_call(const uint8_t *msg, size_t avail, hlfb_call *call, hlfb_value *params,
                   size_t max_params);

/* Decodes a size-prefixed FunctionCallResult. */
int hlfb_read_result(const uint8_t *msg, size_t avail, hlfb_result *out);

/* Builders: write one size-prefixed message into buf[0..cap) and return its length
 * (a multiple of 8, prefix included), or 0 if it does not fit. Nothing is written
 * outside buf[0..cap). */
size_t hlfb_build_call(uint8_t *buf, size_t cap, const char *name, size_t name_len,
                       uint8_t call_type, uint8_t return_type, const hlfb_value *params,
                       size_t n_params);
size_t hlfb_build_result(uint8_t *buf, size_t cap, const hlfb_value *value);
size_t hlfb_build_error(uint8_t *buf, size_t cap, uint64_t code, const char *msg,
                        size_t msg_len);
size_t hlfb_build_log(uint8_t *buf, size_t cap, uint8_t level, const char *message,
                      const char *source, const char *caller, const char *source_file,
                      uint32_t line);

/* An upper bound on hlfb_build_result's output for this value. */
size_t hlfb_result_bound(const hlfb_value *value);

#endif
