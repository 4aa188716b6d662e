/* The Hyperlight C guest API (source-compatible with Hyperlight's hyperlight_guest.h): value types, function registration, results, host calls, errors, aborts and logging. The C library is musl's. */
#ifndef HYPERLIGHT_GUEST_H
#define HYPERLIGHT_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hyperlight/abi.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Parameter and return types; the values are the wire enums of schema/hyperlight.fbs. */
typedef enum {
  hl_ParameterType_Int = 0,
  hl_ParameterType_UInt = 1,
  hl_ParameterType_Long = 2,
  hl_ParameterType_ULong = 3,
  hl_ParameterType_Float = 4,
  hl_ParameterType_Double = 5,
  hl_ParameterType_String = 6,
  hl_ParameterType_Bool = 7,
  hl_ParameterType_VecBytes = 8
} hl_ParameterType;

typedef enum {
  hl_ReturnType_Int = 0,
  hl_ReturnType_UInt = 1,
  hl_ReturnType_Long = 2,
  hl_ReturnType_ULong = 3,
  hl_ReturnType_Float = 4,
  hl_ReturnType_Double = 5,
  hl_ReturnType_String = 6,
  hl_ReturnType_Bool = 7,
  hl_ReturnType_Void = 8,
  hl_ReturnType_VecBytes = 9 /* hlsizeprefixedbuffer on the wire */
} hl_ReturnType;

/* Guest error codes (GuestError.code on the wire). */
typedef enum {
  hl_ErrorCode_NoError = 0,
  hl_ErrorCode_UnsupportedParameterType = 2,
  hl_ErrorCode_GuestFunctionNameNotProvided = 3,
  hl_ErrorCode_GuestFunctionNotFound = 4,
  hl_ErrorCode_GuestFunctionIncorrecNoOfParameters = 5,
  hl_ErrorCode_GispatchFunctionPointerNotSet = 6,
  hl_ErrorCode_OutbError = 7,
  hl_ErrorCode_UnknownError = 8,
  hl_ErrorCode_StackOverflow = 9,
  hl_ErrorCode_GsCheckFailed = 10,
  hl_ErrorCode_TooManyGuestFunctions = 11,
  hl_ErrorCode_FailureInDlmalloc = 12,
  hl_ErrorCode_MallocFailed = 13,
  hl_ErrorCode_GuestFunctionParameterTypeMismatch = 14,
  hl_ErrorCode_GuestError = 15,
  hl_ErrorCode_ArrayLengthParamIsMissing = 16,
  hl_ErrorCode_HostFunctionError = 17,
  hl_ErrorCode_HostError = 17 /* this SDK's earlier name */
} hl_ErrorCode;

/* Log levels of hl_log: Rust's log::Level, as in Hyperlight (Error is the most severe).
 * On the wire (GuestLogData.level) they become Error 4, Warn 3, Info 2, Debug 1, Trace 0. */
typedef enum {
  hl_Level_Error = 1,
  hl_Level_Warn = 2,
  hl_Level_Info = 3,
  hl_Level_Debug = 4,
  hl_Level_Trace = 5
} hl_Level;

/* gcc has no `optnone` (clang's "do not optimise this function"), which Hyperlight's C guests
 * use to keep stack-hungry test functions intact: map it to gcc's equivalent. */
#if defined(__GNUC__) && !defined(__clang__)
#define optnone optimize("O0")
#endif

/* A byte vector. As a parameter it points into the input buffer (valid for the call). */
typedef struct {
  uint8_t *data;
  size_t len;
} hl_Vec;

/* One parameter value (Float is a C float, Double a double: guests run at CPL3, where
 * x87/SSE/AVX work natively). */
typedef struct {
  hl_ParameterType tag;
  union {
    int32_t Int;
    uint32_t UInt;
    int64_t Long;
    uint64_t ULong;
    float Float;
    double Double;
    bool Bool;
    char *String; /* NUL-terminated */
    hl_Vec VecBytes;
  } value;
} hl_Parameter;

/* A call: the one a guest function receives, or the one it makes to the host. */
typedef struct {
  const char *function_name;
  const hl_Parameter *parameters;
  size_t parameters_len;
  hl_ReturnType return_type;
} hl_FunctionCall;

/* A guest function returns a result made by one of the hl_flatbuffer_result_from_*
 * functions (the SDK frees it). Returning NULL without hl_set_error reports
 * MallocFailed. */
typedef hl_Vec *(*hl_guest_function)(const hl_FunctionCall *call);

/* Guest functions take at most this many parameters (as in Hyperlight). */
#define HL_MAX_GUEST_PARAMS 11
/* Host calls and the fallback dispatcher take at most this many parameters. */
#define HL_MAX_PARAMS 32
/* Registered guest functions at most. */
#define HL_MAX_FUNCTIONS 256

/* The guest defines this: called once at init to register functions. */
void hyperlight_main(void);

/* Optional fallback for names nobody registered (weak in the SDK). */
hl_Vec *c_guest_dispatch_function(const hl_FunctionCall *call);

/* Registers `name` (kept by pointer: pass a string literal) with its signature; the
 * types are copied. Aborts if more than HL_MAX_FUNCTIONS are
 * registered or param_count > HL_MAX_GUEST_PARAMS. If a name is registered twice, the
 * first registration is the one called. */
void hl_register_function_definition(const char *name, hl_guest_function fn,
                                     size_t param_count, const hl_ParameterType *param_types,
                                     hl_ReturnType return_type);

/* The machinery behind the macros below (not API; may change between versions). */
#include "hyperlight/guest_internal.h"

#define hl_register_function_definition(...) hl_register_definition_(__VA_ARGS__)

/* Calls a host function; fetch its value with hl_get_host_return_value_as_*. If the
 * host answers with a GuestError (e.g. code 17 HostError), the current guest call
 * fails with that error (this function does not return). */
void hl_call_host_function(const hl_FunctionCall *call);

/* The last host call's return value. A type mismatch fails the guest call with code
 * 15 (GuestError). String and VecBytes point into the input buffer: valid until the
 * next host call. */
int32_t hl_get_host_return_value_as_Int(void);
uint32_t hl_get_host_return_value_as_UInt(void);
int64_t hl_get_host_return_value_as_Long(void);
uint64_t hl_get_host_return_value_as_ULong(void);
bool hl_get_host_return_value_as_Bool(void);
float hl_get_host_return_value_as_Float(void);
double hl_get_host_return_value_as_Double(void);
const char *hl_get_host_return_value_as_String(void);
/* A heap copy of the returned bytes (one allocation: release it with free()); NULL when
 * the heap cannot hold it. */
hl_Vec *hl_get_host_return_value_as_VecBytes(void);

/* Result builders (heap allocated; NULL when the heap is exhausted). */
hl_Vec *hl_flatbuffer_result_from_Int(int32_t v);
hl_Vec *hl_flatbuffer_result_from_UInt(uint32_t v);
hl_Vec *hl_flatbuffer_result_from_Long(int64_t v);
hl_Vec *hl_flatbuffer_result_from_ULong(uint64_t v);
hl_Vec *hl_flatbuffer_result_from_Float(float v);
hl_Vec *hl_flatbuffer_result_from_Double(double v);
hl_Vec *hl_flatbuffer_result_from_Void(void);
hl_Vec *hl_flatbuffer_result_from_String(const char *s);
hl_Vec *hl_flatbuffer_result_from_Bool(bool v);
hl_Vec *hl_flatbuffer_result_from_Bytes(const uint8_t *data, size_t len);

/* Makes the current guest call fail with GuestError(code, message) once the function
 * returns (its return value is then discarded). The message is copied (up to 1023 bytes). */
void hl_set_error(hl_ErrorCode code, const char *message);

/* Aborts the sandbox (the ABORT doorbell): the host receives the low byte of `code`
 * (use 0..0xEF; 0xF0..0xFF are reserved by the SDK) and the message. Never returns. */
__attribute__((noreturn)) void hl_abort_with_code(int32_t code);
__attribute__((noreturn)) void hl_abort_with_code_and_message(int32_t code, const char *message);

/* Sends a GuestLogData to the host (the LOG doorbell) unless level is below the host's level;
 * a value that is no hl_Level is dropped. */
void hl_log(hl_Level level, const char *message, int line, const char *file);
/* hl_log with the caller's line and file. */
#define HL_LOG(level, message) hl_log((level), (message), __LINE__, __FILE__)
/* Hyperlight's header defines the same macro as LOG, and its C guests use it: kept under that
 * name for source compatibility unless the guest defines HL_NO_LOG_MACRO (or LOG itself) first. */
#if !defined(HL_NO_LOG_MACRO) && !defined(LOG)
#define LOG(level, message) HL_LOG(level, message)
#endif

/* Host memory the host mapped into this guest (MultiUseSandbox.mapRegion), from the PEB:
 * how many regions there are now, and region i's guest address, size in bytes and whether
 * the guest may write it (false: a write faults). Regions can change between calls. */
size_t hl_mapped_region_count(void);
bool hl_mapped_region(size_t i, uint64_t *base, uint64_t *size, bool *writable);

/* Writes text to the host's debug console (the DEBUG_PRINT doorbell: one exit per call). */
void hl_debug_print(const char *text);

/* ---- HYPERLIGHT_WRAP_FUNCTION(fn, Ret, N, T1..TN) / HYPERLIGHT_REGISTER_FUNCTION ----
 * Ret and Ti are type names: Int UInt Long ULong Float Double String Bool VecBytes
 * (and Void for Ret). The C types are: int32_t uint32_t int64_t uint64_t float double
 * const char* bool hl_Vec (by value); a String
 * return is copied, a VecBytes return is an hl_Vec whose bytes are copied. */
#define HYPERLIGHT_WRAP_FUNCTION(fn, Ret, N, ...)                                     \
  static __attribute__((hot)) hl_Vec *hl_wrapped_##fn(const hl_FunctionCall *c) {          \
    (void)c;                                                                         \
    return HL_RESULT_##Ret(fn(HL_CAT(HL_ARGS_, N)(__VA_ARGS__)));                     \
  }                                                                                  \
  static const size_t hl_nparams_##fn = (N);                                  \
  static const hl_ReturnType hl_ret_##fn = hl_ReturnType_##Ret;              \
  static const hl_ParameterType hl_params_##fn[(N) + 1] = {                  \
      HL_CAT(HL_TYPES_, N)(__VA_ARGS__) hl_ParameterType_Int};                        \
  HL_NOTE_SIGNATURE_(fn, Ret, N, __VA_ARGS__)

/* `name` must be a string literal: it is also recorded in the ELF note (below). */
#define HYPERLIGHT_REGISTER_FUNCTION(name, fn)                                        \
  __extension__({                                                                    \
    HL_NOTE_NAME_(name, fn)                                                          \
    hl_register_function_definition((name), hl_wrapped_##fn, hl_nparams_##fn,         \
                                    hl_params_##fn, hl_ret_##fn);                     \
  })

/* Registers a plain hl_guest_function `fn` (one that reads c->parameters itself) under
 * the literal `name` with return type Ret and N parameter types, like
 * hl_register_function_definition, and records the signature in the ELF note. */
#define HYPERLIGHT_REGISTER_TYPED(name, fn, Ret, N, ...)                              \
  __extension__({                                                                    \
    HL_NOTE_SIGNATURE_(fn, Ret, N, __VA_ARGS__)                                      \
    HL_NOTE_NAME_(name, fn)                                                          \
    static const hl_ParameterType hl_types_[(N) + 1] = {                             \
        HL_CAT(HL_TYPES_, N)(__VA_ARGS__) hl_ParameterType_Int};                      \
    hl_register_function_definition((name), (fn), (N), hl_types_, hl_ReturnType_##Ret); \
  })

/* ---- The guest-function ELF note (read by the host without running the guest) ----
 * Section .note.hyperlight (SHT_NOTE, so it has a PT_NOTE program header), owner
 * "Hyperlight", 4-byte aligned records of two types:
 *   HL_NOTE_SIGNATURE (1), from HYPERLIGHT_WRAP_FUNCTION: desc = u8 version (1),
 *     u8 return type (hl_ReturnType), u8 parameter count, u8 types[11] (hl_ParameterType;
 *     entries past the count are 0), u16 0, then the C function's identifier, NUL-terminated;
 *   HL_NOTE_NAME (2), from HYPERLIGHT_REGISTER_FUNCTION: desc = the C function's
 *     identifier, NUL, the registered name, NUL.
 * The host joins them by identifier (docs/guest-sdk.md, src/elf/guest-functions.ts); the
 * macros that write them are in hyperlight/guest_internal.h. */
#ifdef __cplusplus
}
#endif
#endif
