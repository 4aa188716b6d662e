/* The bundled test guest: one function per behaviour the host must handle (values, printing, buffers, stack, heap, aborts, faults, host calls). */
#include <alloca.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "hyperlight_guest.h"

/* ---- echoes */
static const char *echo(const char *s) { return s; }
static int32_t echo_i32(int32_t v) { return v; }
static uint32_t echo_u32(uint32_t v) { return v; }
static int64_t echo_i64(int64_t v) { return v; }
static uint64_t echo_u64(uint64_t v) { return v; }
static float echo_float(float v) { return v; }
static double echo_double(double v) { return v; }
static bool echo_bool(bool v) { return v; }
static void no_op(void) {}
HYPERLIGHT_WRAP_FUNCTION(echo, String, 1, String)
HYPERLIGHT_WRAP_FUNCTION(echo_i32, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(echo_u32, UInt, 1, UInt)
HYPERLIGHT_WRAP_FUNCTION(echo_i64, Long, 1, Long)
HYPERLIGHT_WRAP_FUNCTION(echo_u64, ULong, 1, ULong)
HYPERLIGHT_WRAP_FUNCTION(echo_float, Float, 1, Float)
HYPERLIGHT_WRAP_FUNCTION(echo_double, Double, 1, Double)
HYPERLIGHT_WRAP_FUNCTION(echo_bool, Bool, 1, Bool)
HYPERLIGHT_WRAP_FUNCTION(no_op, Void, 0)

/* ---- printing through HostPrint */
static int32_t print_output(const char *s) {
  int n = printf("%s", s);
  fflush(stdout);
  return n;
}
HYPERLIGHT_WRAP_FUNCTION(print_output, Int, 1, String)
/* The same without fflush: the SDK sends what stdout still buffers when the call ends. */
static int32_t print_buffered(const char *s) { return printf("%s", s); }
HYPERLIGHT_WRAP_FUNCTION(print_buffered, Int, 1, String)

static const char *yes_no(bool b) { return b ? "true" : "false"; }

/* PrintTwoArgs .. PrintElevenArgs: print "Message: arg1:.. argN:..." and return its length. */
static int32_t print_args(const hl_FunctionCall *c, size_t n) {
  const hl_Parameter *p = c->parameters;
  char buf[1024];
  int len = snprintf(buf, sizeof buf, "Message: arg1:%s arg2:%d", p[0].value.String, p[1].value.Int);
  if (n > 2) len += snprintf(buf + len, sizeof buf - len, " arg3:%lld", (long long)p[2].value.Long);
  if (n > 3) len += snprintf(buf + len, sizeof buf - len, " arg4:%s", p[3].value.String);
  if (n > 4) len += snprintf(buf + len, sizeof buf - len, " arg5:%s", p[4].value.String);
  if (n > 5) len += snprintf(buf + len, sizeof buf - len, " arg6:%s", yes_no(p[5].value.Bool));
  if (n > 6) len += snprintf(buf + len, sizeof buf - len, " arg7:%s", yes_no(p[6].value.Bool));
  if (n > 7) len += snprintf(buf + len, sizeof buf - len, " arg8:%u", p[7].value.UInt);
  if (n > 8) len += snprintf(buf + len, sizeof buf - len, " arg9:%llu", (unsigned long long)p[8].value.ULong);
  if (n > 9) len += snprintf(buf + len, sizeof buf - len, " arg10:%d", p[9].value.Int);
  if (n > 10)
    len += snprintf(buf + len, sizeof buf - len, " arg11:%.3f", (double)p[10].value.Float);
  int printed = printf("%s\n", buf);
  fflush(stdout);
  return printed;
}

#define PRINT_N(fname, n)                                                             \
  static hl_Vec *fname(const hl_FunctionCall *c) {                                    \
    return hl_flatbuffer_result_from_Int(print_args(c, n));                           \
  }
PRINT_N(print_2, 2)
PRINT_N(print_3, 3)
PRINT_N(print_4, 4)
PRINT_N(print_5, 5)
PRINT_N(print_6, 6)
PRINT_N(print_7, 7)
PRINT_N(print_8, 8)
PRINT_N(print_9, 9)
PRINT_N(print_10, 10)
PRINT_N(print_11, 11)


/* ---- byte buffers */
static hl_Vec set_byte_array_to_zero(hl_Vec v) {
  memset(v.data, 0, v.len);
  return v;
}
static hl_Vec get_size_prefixed_buffer(hl_Vec v) { return v; }
static hl_Vec in24k_out8k(hl_Vec v) {
  if (v.len > 8192) v.len = 8192;
  return v;
}
HYPERLIGHT_WRAP_FUNCTION(set_byte_array_to_zero, VecBytes, 1, VecBytes)
HYPERLIGHT_WRAP_FUNCTION(get_size_prefixed_buffer, VecBytes, 1, VecBytes)
HYPERLIGHT_WRAP_FUNCTION(in24k_out8k, VecBytes, 1, VecBytes)

/* ---- host memory mapped into the guest (mapRegion) */
static hl_Vec read_mapped_buffer(uint64_t base, uint64_t len) {
  hl_Vec v = {(uint8_t *)(uintptr_t)base, (size_t)len};
  return v;
}
static bool write_mapped_buffer(uint64_t base, uint64_t len) {
  volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)base;
  for (uint64_t i = 0; i < len; i++) p[i] = (uint8_t)(i * 7 + 1);
  return true;
}
/* Sum of the region's little-endian u64 words (a whole input read once; the bench's map row). */
static uint64_t sum_mapped_buffer(uint64_t base, uint64_t len) {
  const uint64_t *p = (const uint64_t *)(uintptr_t)base;
  uint64_t s = 0;
  for (uint64_t i = 0; i < len / 8; i++) s += p[i];
  return s;
}
/* The same sum over bytes passed as an argument (the bench's copy row). */
static uint64_t sum_bytes(hl_Vec v) { return sum_mapped_buffer((uint64_t)(uintptr_t)v.data, v.len); }
/* Where mapped region i is (0 when there is none). */
static uint64_t mapped_region_base(int32_t i) {
  uint64_t base = 0;
  return hl_mapped_region((size_t)i, &base, NULL, NULL) ? base : 0;
}
HYPERLIGHT_WRAP_FUNCTION(read_mapped_buffer, VecBytes, 2, ULong, ULong)
HYPERLIGHT_WRAP_FUNCTION(write_mapped_buffer, Bool, 2, ULong, ULong)
HYPERLIGHT_WRAP_FUNCTION(sum_mapped_buffer, ULong, 2, ULong, ULong)
HYPERLIGHT_WRAP_FUNCTION(sum_bytes, ULong, 1, VecBytes)
HYPERLIGHT_WRAP_FUNCTION(mapped_region_base, ULong, 1, Int)

/* ---- stack */
static int32_t stack_allocate(int32_t n) {
  if (n < 0) n = 0;
  volatile char *p = alloca((size_t)n + 1);
  for (int32_t i = 0; i < n; i += 512) p[i] = (char)i;
  p[n] = 1;
  return n;
}

/* Recursion with 16 KiB frames; the volatile frame and the work after the call keep
 * the compiler from shrinking or tail-calling it away. */
static __attribute__((noinline)) int32_t overflow_frame(int32_t depth) {
  volatile char frame[16 * 1024];
  frame[0] = (char)depth;
  frame[sizeof frame - 1] = (char)depth;
  if (depth <= 0) return frame[0];
  return overflow_frame(depth - 1) + frame[sizeof frame - 1] - (char)depth + 1;
}
static int32_t stack_overflow(int32_t depth) { return overflow_frame(depth); }

/* As in Hyperlight's C test guest: copies the whole string into a 17-byte buffer.
 * Short strings return 17 - length; long ones smash the stack (there is no stack
 * protector), which ends in a CPU exception abort. */
static __attribute__((noinline)) int32_t buffer_overrun(const char *s) {
  char buffer[17];
  size_t length = s ? strlen(s) : 0;
  if (length > 0) memcpy((char *volatile)buffer, s, length);
  __asm__ volatile("" : : "r"(buffer) : "memory");
  return (int32_t)(17 - length);
}

static int32_t large_var(void) {
  volatile char buffer[0x10000];
  for (size_t i = 0; i < sizeof buffer; i += 4096) buffer[i] = 1;
  buffer[sizeof buffer - 1] = 1;
  return (int32_t)sizeof buffer;
}
static int32_t small_var(void) {
  volatile char buffer[1024];
  buffer[0] = 1;
  buffer[sizeof buffer - 1] = 1;
  return (int32_t)sizeof buffer;
}
static __attribute__((noinline)) int32_t recurse_forever(volatile int32_t n) {
  volatile char frame[64];
  frame[0] = (char)n;
  if (n < 0) return 0; /* never true (n only grows), but it keeps the warning quiet */
  return recurse_forever(n + 1) + frame[0];
}
static int32_t infinite_recursion(void) { return recurse_forever(0); }
HYPERLIGHT_WRAP_FUNCTION(stack_allocate, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(stack_overflow, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(buffer_overrun, Int, 1, String)
HYPERLIGHT_WRAP_FUNCTION(large_var, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(small_var, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(infinite_recursion, Int, 0)

/* ---- heap */
static int32_t call_malloc(int32_t n) {
  volatile char *p = malloc(n > 0 ? (size_t)n : 1);
  if (p == NULL) {
    hl_set_error(hl_ErrorCode_MallocFailed, "malloc failed");
    return 0;
  }
  p[0] = 1;
  if (n > 0) p[n - 1] = 1;
  return n;
}
static int32_t malloc_and_free(int32_t n) {
  char *p = malloc(n > 0 ? (size_t)n : 1);
  if (p == NULL) {
    hl_set_error(hl_ErrorCode_MallocFailed, "malloc failed");
    return 0;
  }
  memset(p, 0xAB, n > 0 ? (size_t)n : 1);
  free(p);
  return n;
}
/* Allocates until malloc returns NULL, then aborts with code 13 (MallocFailed), as a
 * Hyperlight guest does when its allocator fails: the host sees GuestAborted. */
static int32_t exhaust_heap(void) {
  size_t total = 0;
  for (size_t chunk = 4096; chunk >= 16;) {
    void *p = malloc(chunk);
    if (p == NULL) {
      chunk /= 2;
      continue;
    }
    total += chunk;
  }
  char msg[96];
  snprintf(msg, sizeof msg, "heap exhausted after %zu bytes", total);
  hl_abort_with_code_and_message(hl_ErrorCode_MallocFailed, msg);
}
/* Anonymous mappings through musl's mmap/munmap/mprotect (the SDK serves them from the heap):
 * the address or 0 on success, -errno on failure. */
static int64_t map_anonymous(int64_t len, int32_t prot, int32_t flags) {
  void *p = mmap(NULL, (size_t)len, prot, flags | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? -errno : (int64_t)(uintptr_t)p;
}
static int32_t unmap(uint64_t addr, int64_t len) {
  return munmap((void *)(uintptr_t)addr, (size_t)len) == 0 ? 0 : -errno;
}
static int32_t protect(uint64_t addr, int64_t len, int32_t prot) {
  return mprotect((void *)(uintptr_t)addr, (size_t)len, prot) == 0 ? 0 : -errno;
}
/* `rounds` malloc/free pairs of `size` bytes, each written end to end: the rounds that succeeded. */
static int32_t malloc_cycles(int32_t rounds, int32_t size) {
  int32_t ok = 0;
  for (int32_t i = 0; i < rounds; i++) {
    char *p = malloc((size_t)size);
    if (p == NULL) break;
    memset(p, i, (size_t)size);
    free(p);
    ok++;
  }
  return ok;
}
HYPERLIGHT_WRAP_FUNCTION(map_anonymous, Long, 3, Long, Int, Int)
HYPERLIGHT_WRAP_FUNCTION(unmap, Int, 2, ULong, Long)
HYPERLIGHT_WRAP_FUNCTION(protect, Int, 3, ULong, Long, Int)
HYPERLIGHT_WRAP_FUNCTION(malloc_cycles, Int, 2, Int, Int)
HYPERLIGHT_WRAP_FUNCTION(call_malloc, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(malloc_and_free, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(exhaust_heap, Int, 0)

/* ---- state kept across calls */
static int32_t counter;
static char static_buffer[16 * 1024];
static int32_t set_static(void) {
  memset(static_buffer, 5, sizeof static_buffer);
  counter = 5;
  return counter;
}
static int32_t get_static(void) { return counter; }
static int32_t add_to_static(int32_t n) { return counter += n; }
HYPERLIGHT_WRAP_FUNCTION(set_static, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(get_static, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(add_to_static, Int, 1, Int)

/* ---- aborts and faults */
static int32_t abort_with_code(int32_t code) { hl_abort_with_code(code); }
static int32_t abort_with_message(int32_t code, const char *msg) {
  hl_abort_with_code_and_message(code, msg);
}
typedef void (*thunk)(void);
static int32_t execute_on_stack(void) {
  volatile uint8_t code[16] = {0xC3}; /* ret */
  ((thunk)(uintptr_t)code)();          /* the stack is NX: #PF */
  return 0;
}
static int32_t execute_on_heap(void) {
  volatile uint8_t *code = malloc(16);
  if (code == NULL) return -1;
  code[0] = 0xC3;
  ((thunk)(uintptr_t)code)(); /* the heap is NX: #PF */
  return 0;
}
static void spin(void) {
  for (;;) __asm__ volatile("pause" ::: "memory");
}
static void trigger_exception(void) { __asm__ volatile("ud2"); }
HYPERLIGHT_WRAP_FUNCTION(abort_with_code, Int, 1, Int)
HYPERLIGHT_WRAP_FUNCTION(abort_with_message, Int, 2, Int, String)
HYPERLIGHT_WRAP_FUNCTION(execute_on_stack, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(execute_on_heap, Int, 0)
HYPERLIGHT_WRAP_FUNCTION(spin, Void, 0)
HYPERLIGHT_WRAP_FUNCTION(trigger_exception, Void, 0)

/* ---- logging */
/* `level` is an hl_Level (Rust's log::Level: 1 Error .. 5 Trace), as in Hyperlight. */
static int32_t log_message(const char *msg, int64_t level) {
  hl_log((hl_Level)level, msg, __LINE__, __FILE__);
  return (int32_t)strlen(msg);
}
HYPERLIGHT_WRAP_FUNCTION(log_message, Int, 2, String, Long)

/* ---- calls into the host */
static int32_t guest_method1(const char *s) {
  static const char prefix[] = "Hello from GuestFunction1, ";
  size_t n = strlen(s);
  char *msg = malloc(sizeof prefix + n);
  if (msg == NULL) {
    hl_set_error(hl_ErrorCode_MallocFailed, "malloc failed");
    return 0;
  }
  memcpy(msg, prefix, sizeof prefix - 1);
  memcpy(msg + sizeof prefix - 1, s, n + 1);
  hl_Parameter p = {.tag = hl_ParameterType_String, .value.String = msg};
  hl_FunctionCall call = {"HostMethod1", &p, 1, hl_ReturnType_Int};
  hl_call_host_function(&call);
  free(msg);
  return hl_get_host_return_value_as_Int();
}
static int32_t add(int32_t a, int32_t b) {
  hl_Parameter p[2] = {{.tag = hl_ParameterType_Int, .value.Int = a},
                       {.tag = hl_ParameterType_Int, .value.Int = b}};
  hl_FunctionCall call = {"HostAdd", p, 2, hl_ReturnType_Int};
  hl_call_host_function(&call);
  return hl_get_host_return_value_as_Int();
}
HYPERLIGHT_WRAP_FUNCTION(guest_method1, Int, 1, String)
HYPERLIGHT_WRAP_FUNCTION(add, Int, 2, Int, Int)

/* RoundTripHost<T>(T) -> T: calls HostEcho<T>(T) -> T and returns what it got. */
static const hl_Parameter *round_trip(const hl_FunctionCall *c, const char *host_fn,
                                      hl_ReturnType ret) {
  hl_FunctionCall call = {host_fn, c->parameters, 1, ret};
  hl_call_host_function(&call);
  return c->parameters;
}
static hl_Vec *rt_int(const hl_FunctionCall *c) {
  round_trip(c, "HostEchoInt", hl_ReturnType_Int);
  return hl_flatbuffer_result_from_Int(hl_get_host_return_value_as_Int());
}
static hl_Vec *rt_uint(const hl_FunctionCall *c) {
  round_trip(c, "HostEchoUInt", hl_ReturnType_UInt);
  return hl_flatbuffer_result_from_UInt(hl_get_host_return_value_as_UInt());
}
static hl_Vec *rt_long(const hl_FunctionCall *c) {
  round_trip(c, "HostEchoLong", hl_ReturnType_Long);
  return hl_flatbuffer_result_from_Long(hl_get_host_return_value_as_Long());
}
static hl_Vec *rt_ulong(const hl_FunctionCall *c) {
  round_trip(c, "HostEchoULong", hl_ReturnType_ULong);
  return hl_flatbuffer_result_from_ULong(hl_get_host_return_value_as_ULong());
}
static hl_Vec *rt_float(const hl_FunctionCall *c) {
  round_trip(c, "HostEchoFloat", hl_ReturnType_Float);
  return hl_flatbuffer_result_from_Float(hl_get_host_return_value_as_Float());
}
static hl_Vec *rt_double(const hl_FunctionCall *c) {
  round_trip(c, "HostEchoDouble", hl_ReturnType_Double);
  return hl_flatbuffer_result_from_Double(hl_get_host_return_value_as_Double());
}
static hl_Vec *rt_bool(const hl_FunctionCall *c) {
  round_trip(c, "HostEchoBool", hl_ReturnType_Bool);
  return hl_flatbuffer_result_from_Bool(hl_get_host_return_value_as_Bool());
}
static hl_Vec *rt_string(const hl_FunctionCall *c) {
  round_trip(c, "HostEchoString", hl_ReturnType_String);
  return hl_flatbuffer_result_from_String(hl_get_host_return_value_as_String());
}
static hl_Vec *rt_vecbytes(const hl_FunctionCall *c) {
  round_trip(c, "HostEchoVecBytes", hl_ReturnType_VecBytes);
  hl_Vec *v = hl_get_host_return_value_as_VecBytes();
  if (v == NULL) return NULL;
  hl_Vec *r = hl_flatbuffer_result_from_Bytes(v->data, v->len);
  free(v);
  return r;
}

/* ---- the C library (musl): formatting, parsing, sorting, math, time */
static const char *format_double(double d, int32_t precision) {
  static char buf[512];
  snprintf(buf, sizeof buf, "%.*f|%g|%e", (int)precision, d, d, d);
  return buf;
}
HYPERLIGHT_WRAP_FUNCTION(format_double, String, 2, Double, Int)

static double parse_double(const char *s) { return strtod(s, NULL); }
HYPERLIGHT_WRAP_FUNCTION(parse_double, Double, 1, String)

static double math_mix(double x) { return sqrt(x) + sin(x) * cos(x) + log(x) + exp(-x) + pow(x, 0.25); }
HYPERLIGHT_WRAP_FUNCTION(math_mix, Double, 1, Double)

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}
/* Sorts n pseudo-random ints (malloc'd) and returns a checksum of the sorted order (-1: not sorted). */
static int64_t sort_ints(int32_t n, int64_t seed) {
  if (n <= 0) return 0;
  int *v = malloc((size_t)n * sizeof *v);
  if (!v) return -2;
  uint64_t x = (uint64_t)seed;
  for (int32_t i = 0; i < n; i++) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    v[i] = (int)(x >> 33);
  }
  qsort(v, (size_t)n, sizeof *v, cmp_int);
  int64_t sum = 0;
  for (int32_t i = 0; i < n; i++) {
    if (i > 0 && v[i - 1] > v[i]) { free(v); return -1; }
    sum = sum * 31 + v[i];
  }
  free(v);
  return sum;
}
HYPERLIGHT_WRAP_FUNCTION(sort_ints, Long, 2, Int, Long)

static const char *upper(const char *s) {
  static char buf[256];
  size_t i = 0;
  for (; s[i] && i < sizeof buf - 1; i++) buf[i] = (char)toupper((unsigned char)s[i]);
  buf[i] = 0;
  return buf;
}
HYPERLIGHT_WRAP_FUNCTION(upper, String, 1, String)

/* Seconds since the epoch, from clock_gettime (a system call the host serves). */
static int64_t wall_clock(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_REALTIME, &ts) != 0) return -1;
  return ts.tv_sec;
}
HYPERLIGHT_WRAP_FUNCTION(wall_clock, Long, 0)

void hyperlight_main(void) {
  HYPERLIGHT_REGISTER_FUNCTION("FormatDouble", format_double);
  HYPERLIGHT_REGISTER_FUNCTION("ParseDouble", parse_double);
  HYPERLIGHT_REGISTER_FUNCTION("MathMix", math_mix);
  HYPERLIGHT_REGISTER_FUNCTION("SortInts", sort_ints);
  HYPERLIGHT_REGISTER_FUNCTION("Upper", upper);
  HYPERLIGHT_REGISTER_FUNCTION("WallClock", wall_clock);
  HYPERLIGHT_REGISTER_FUNCTION("Echo", echo);
  HYPERLIGHT_REGISTER_FUNCTION("EchoI32", echo_i32);
  HYPERLIGHT_REGISTER_FUNCTION("EchoU32", echo_u32);
  HYPERLIGHT_REGISTER_FUNCTION("EchoI64", echo_i64);
  HYPERLIGHT_REGISTER_FUNCTION("EchoU64", echo_u64);
  HYPERLIGHT_REGISTER_FUNCTION("EchoFloat", echo_float);
  HYPERLIGHT_REGISTER_FUNCTION("EchoDouble", echo_double);
  HYPERLIGHT_REGISTER_FUNCTION("EchoBool", echo_bool);
  HYPERLIGHT_REGISTER_FUNCTION("NoOp", no_op);
  HYPERLIGHT_REGISTER_FUNCTION("PrintOutput", print_output);
  HYPERLIGHT_REGISTER_FUNCTION("PrintBuffered", print_buffered);
  HYPERLIGHT_REGISTER_TYPED("PrintTwoArgs", print_2, Int, 2, String, Int);
  HYPERLIGHT_REGISTER_TYPED("PrintThreeArgs", print_3, Int, 3, String, Int, Long);
  HYPERLIGHT_REGISTER_TYPED("PrintFourArgs", print_4, Int, 4, String, Int, Long, String);
  HYPERLIGHT_REGISTER_TYPED("PrintFiveArgs", print_5, Int, 5, String, Int, Long, String, String);
  HYPERLIGHT_REGISTER_TYPED("PrintSixArgs", print_6, Int, 6, String, Int, Long, String, String, Bool);
  HYPERLIGHT_REGISTER_TYPED("PrintSevenArgs", print_7, Int, 7, String, Int, Long, String, String, Bool, Bool);
  HYPERLIGHT_REGISTER_TYPED("PrintEightArgs", print_8, Int, 8, String, Int, Long, String, String, Bool, Bool, UInt);
  HYPERLIGHT_REGISTER_TYPED("PrintNineArgs", print_9, Int, 9, String, Int, Long, String, String, Bool, Bool, UInt, ULong);
  HYPERLIGHT_REGISTER_TYPED("PrintTenArgs", print_10, Int, 10, String, Int, Long, String, String, Bool, Bool, UInt, ULong, Int);
  HYPERLIGHT_REGISTER_TYPED("PrintElevenArgs", print_11, Int, 11, String, Int, Long, String, String, Bool, Bool, UInt, ULong, Int, Float);
  HYPERLIGHT_REGISTER_FUNCTION("SetByteArrayToZero", set_byte_array_to_zero);
  HYPERLIGHT_REGISTER_FUNCTION("GetSizePrefixedBuffer", get_size_prefixed_buffer);
  HYPERLIGHT_REGISTER_FUNCTION("24K_in_8K_out", in24k_out8k);
  HYPERLIGHT_REGISTER_FUNCTION("StackAllocate", stack_allocate);
  HYPERLIGHT_REGISTER_FUNCTION("StackOverflow", stack_overflow);
  HYPERLIGHT_REGISTER_FUNCTION("BufferOverrun", buffer_overrun);
  HYPERLIGHT_REGISTER_FUNCTION("LargeVar", large_var);
  HYPERLIGHT_REGISTER_FUNCTION("SmallVar", small_var);
  HYPERLIGHT_REGISTER_FUNCTION("CallMalloc", call_malloc);
  HYPERLIGHT_REGISTER_FUNCTION("MallocAndFree", malloc_and_free);
  HYPERLIGHT_REGISTER_FUNCTION("Mmap", map_anonymous);
  HYPERLIGHT_REGISTER_FUNCTION("Munmap", unmap);
  HYPERLIGHT_REGISTER_FUNCTION("Mprotect", protect);
  HYPERLIGHT_REGISTER_FUNCTION("MallocCycles", malloc_cycles);
  HYPERLIGHT_REGISTER_FUNCTION("ExhaustHeap", exhaust_heap);
  HYPERLIGHT_REGISTER_FUNCTION("ReadMappedBuffer", read_mapped_buffer);
  HYPERLIGHT_REGISTER_FUNCTION("WriteMappedBuffer", write_mapped_buffer);
  HYPERLIGHT_REGISTER_FUNCTION("SumMappedBuffer", sum_mapped_buffer);
  HYPERLIGHT_REGISTER_FUNCTION("SumBytes", sum_bytes);
  HYPERLIGHT_REGISTER_FUNCTION("MappedRegionBase", mapped_region_base);
  HYPERLIGHT_REGISTER_FUNCTION("SetStatic", set_static);
  HYPERLIGHT_REGISTER_FUNCTION("GetStatic", get_static);
  HYPERLIGHT_REGISTER_FUNCTION("AddToStatic", add_to_static);
  HYPERLIGHT_REGISTER_FUNCTION("GuestAbortWithCode", abort_with_code);
  HYPERLIGHT_REGISTER_FUNCTION("GuestAbortWithMessage", abort_with_message);
  HYPERLIGHT_REGISTER_FUNCTION("ExecuteOnStack", execute_on_stack);
  HYPERLIGHT_REGISTER_FUNCTION("ExecuteOnHeap", execute_on_heap);
  HYPERLIGHT_REGISTER_FUNCTION("LogMessage", log_message);
  HYPERLIGHT_REGISTER_FUNCTION("GuestMethod1", guest_method1);
  HYPERLIGHT_REGISTER_FUNCTION("Add", add);
  HYPERLIGHT_REGISTER_TYPED("RoundTripHostInt", rt_int, Int, 1, Int);
  HYPERLIGHT_REGISTER_TYPED("RoundTripHostUInt", rt_uint, UInt, 1, UInt);
  HYPERLIGHT_REGISTER_TYPED("RoundTripHostLong", rt_long, Long, 1, Long);
  HYPERLIGHT_REGISTER_TYPED("RoundTripHostULong", rt_ulong, ULong, 1, ULong);
  HYPERLIGHT_REGISTER_TYPED("RoundTripHostFloat", rt_float, Float, 1, Float);
  HYPERLIGHT_REGISTER_TYPED("RoundTripHostDouble", rt_double, Double, 1, Double);
  HYPERLIGHT_REGISTER_TYPED("RoundTripHostBool", rt_bool, Bool, 1, Bool);
  HYPERLIGHT_REGISTER_TYPED("RoundTripHostString", rt_string, String, 1, String);
  HYPERLIGHT_REGISTER_TYPED("RoundTripHostVecBytes", rt_vecbytes, VecBytes, 1, VecBytes);
  HYPERLIGHT_REGISTER_FUNCTION("Spin", spin);
  HYPERLIGHT_REGISTER_FUNCTION("TriggerException", trigger_exception);
  HYPERLIGHT_REGISTER_FUNCTION("InfiniteRecursion", infinite_recursion);
}
