/* The JavaScript guest: QuickJS (built from the npm package qjsc's unmodified sources) behind four guest
 * functions that JsSandbox (src/js/) calls. Values cross as envelopes (docs/javascript.md "Wire format");
 * this file does not decide policy (limits, restores, errors): the host does. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "hyperlight_guest.h"
#include "quickjs.h"
#include "js_heap.h"

/* Envelope kinds (src/js/envelope.ts agrees). */
enum { K_VALUE = 0, K_EXCEPTION = 1, K_OUT_OF_MEMORY = 2, K_INTERNAL = 3 };

static JSRuntime *rt;
static JSContext *ctx;
/* The prelude's helpers and the intrinsic Uint8Array prototype, held here rather than on the global. */
static JSValue helpers;
static JSValue u8proto;
static JSAtom atom_to_json, atom_mark;
static JSValue to_json_fn;

/* ---- a growable byte buffer (the envelope being built) ---- */
typedef struct {
  uint8_t *p;
  size_t len, cap;
  int failed;
} buf;

static void buf_put(buf *b, const void *data, size_t n) {
  if (b->failed) return;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap *= 2;
    uint8_t *q = realloc(b->p, cap);
    if (!q) {
      b->failed = 1;
      return;
    }
    b->p = q;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, n);
  b->len += n;
}

static void buf_u32(buf *b, uint32_t v) { buf_put(b, &v, 4); }

/* The byte arrays met while one value is serialised (Uint8Array.prototype.toJSON below). */
static buf blobs;
static uint32_t blob_count;

static JSValue u8_to_json(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  size_t off, len, bpe;
  JSValue ab = JS_GetTypedArrayBuffer(c, this_val, &off, &len, &bpe);
  if (JS_IsException(ab)) return ab;
  size_t size;
  uint8_t *p = JS_GetArrayBuffer(c, &size, ab);
  JS_FreeValue(c, ab);
  if (!p || off > size || len > size - off || len > UINT32_MAX) return JS_ThrowTypeError(c, "detached Uint8Array");
  buf_u32(&blobs, (uint32_t)len);
  buf_put(&blobs, p + off, len);
  if (blobs.failed) return JS_ThrowOutOfMemory(c);
  JSValue mark = JS_NewObject(c);
  JS_DefinePropertyValue(c, mark, atom_mark, JS_NewInt32(c, (int32_t)blob_count++), JS_PROP_C_W_E);
  return mark;
}

/* Appends [u32 json length][json][u32 blob count][blobs] for `v` (an empty text: undefined). */
static int encode_value(buf *out, JSValueConst v) {
  blobs.len = 0;
  blobs.failed = 0;
  blob_count = 0;
  JSValue before = JS_GetProperty(ctx, u8proto, atom_to_json);
  JS_DefinePropertyValue(ctx, u8proto, atom_to_json, JS_DupValue(ctx, to_json_fn), JS_PROP_CONFIGURABLE | JS_PROP_WRITABLE);
  JSValue text = JS_JSONStringify(ctx, v, JS_UNDEFINED, JS_UNDEFINED);
  if (JS_IsUndefined(before)) JS_DeleteProperty(ctx, u8proto, atom_to_json, 0);
  else JS_DefinePropertyValue(ctx, u8proto, atom_to_json, before, JS_PROP_CONFIGURABLE | JS_PROP_WRITABLE);
  if (JS_IsException(text)) return -1;
  size_t n = 0;
  const char *s = JS_IsUndefined(text) ? "" : JS_ToCStringLen(ctx, &n, text);
  JS_FreeValue(ctx, text);
  if (!s) return -1;
  buf_u32(out, (uint32_t)n);
  buf_put(out, s, n);
  if (n) JS_FreeCString(ctx, s);
  buf_u32(out, blob_count);
  buf_put(out, blobs.p, blobs.len);
  return out->failed ? -1 : 0;
}

/* ---- reading an envelope from the host (bounds-checked: the host's bytes are trusted, the code is not) ---- */
typedef struct {
  const uint8_t *p;
  size_t len, at;
} reader;

static int rd_u32(reader *r, uint32_t *v) {
  if (r->len - r->at < 4) return -1;
  memcpy(v, r->p + r->at, 4);
  r->at += 4;
  return 0;
}

/* Decodes [u32 json length][json][u32 blob count][blobs] into a value (undefined for an empty text). */
static JSValue decode_value(reader *r) {
  uint32_t n, count;
  if (rd_u32(r, &n) || r->len - r->at < n) return JS_ThrowTypeError(ctx, "malformed value envelope");
  const char *text = (const char *)r->p + r->at;
  r->at += n;
  if (rd_u32(r, &count)) return JS_ThrowTypeError(ctx, "malformed value envelope");
  if (n == 0) return JS_UNDEFINED;
  char *z = malloc((size_t)n + 1);
  if (!z) return JS_ThrowOutOfMemory(ctx);
  memcpy(z, text, n);
  z[n] = 0;
  JSValue v;
  if (count == 0) {
    v = JS_ParseJSON(ctx, z, n, "<host>");
  } else {
    JSValue arr = JS_NewArray(ctx);
    for (uint32_t i = 0; i < count; i++) {
      uint32_t len;
      if (rd_u32(r, &len) || r->len - r->at < len) {
        JS_FreeValue(ctx, arr);
        free(z);
        return JS_ThrowTypeError(ctx, "malformed value envelope");
      }
      JS_SetPropertyUint32(ctx, arr, i, JS_NewArrayBufferCopy(ctx, r->p + r->at, len));
      r->at += len;
    }
    JSValue revive = JS_GetPropertyStr(ctx, helpers, "revive");
    JSValue args[2] = {JS_NewStringLen(ctx, z, n), arr};
    v = JS_Call(ctx, revive, JS_UNDEFINED, 2, args);
    JS_FreeValue(ctx, revive);
    JS_FreeValue(ctx, args[0]);
    JS_FreeValue(ctx, args[1]);
  }
  free(z);
  return v;
}

/* ---- results ---- */
static hl_Vec *finish(buf *b) {
  hl_Vec *r = b->failed ? NULL : hl_flatbuffer_result_from_Bytes(b->p, b->len);
  free(b->p);
  if (!r) hl_set_error(hl_ErrorCode_MallocFailed, "the JS guest could not build its result");
  return r;
}

static void put_string_json(buf *b, JSValueConst v) {
  JSValue t = JS_JSONStringify(ctx, v, JS_UNDEFINED, JS_UNDEFINED);
  size_t n = 0;
  const char *s = JS_IsException(t) || JS_IsUndefined(t) ? NULL : JS_ToCStringLen(ctx, &n, t);
  if (JS_IsException(t)) JS_FreeValue(ctx, JS_GetException(ctx));
  if (s) {
    buf_put(b, s, n);
    JS_FreeCString(ctx, s);
  } else {
    buf_put(b, "null", 4);
  }
  JS_FreeValue(ctx, t);
}

/* The pending exception as {"name","message","stack"} (null where absent; a thrown non-Error: its String() as message). */
static void put_exception(buf *b, JSValueConst e) {
  JSValue name = JS_UNDEFINED, msg, stack = JS_UNDEFINED;
  if (JS_IsError(ctx, e)) {
    name = JS_GetPropertyStr(ctx, e, "name");
    msg = JS_GetPropertyStr(ctx, e, "message");
    stack = JS_GetPropertyStr(ctx, e, "stack");
  } else {
    msg = JS_ToString(ctx, e);
  }
  if (JS_IsException(msg)) {
    JS_FreeValue(ctx, JS_GetException(ctx));
    msg = JS_NewString(ctx, "(an exception whose message could not be read)");
  }
  buf_put(b, "{\"name\":", 8);
  put_string_json(b, JS_IsString(name) ? name : JS_UNDEFINED);
  buf_put(b, ",\"message\":", 11);
  put_string_json(b, JS_IsString(msg) ? msg : JS_UNDEFINED);
  buf_put(b, ",\"stack\":", 9);
  put_string_json(b, JS_IsString(stack) ? stack : JS_UNDEFINED);
  buf_put(b, "}", 1);
  JS_FreeValue(ctx, name);
  JS_FreeValue(ctx, msg);
  JS_FreeValue(ctx, stack);
}

/* Runs queued Promise jobs; settles `v` if it is a Promise (a still-pending one is an exception). */
static JSValue settle(JSValue v) {
  JSContext *c;
  int promise = 0;
  JSValue state = JS_UNDEFINED;
  if (!JS_IsException(v) && JS_IsObject(v)) {
    JSValue watch = JS_GetPropertyStr(ctx, helpers, "watch");
    state = JS_Call(ctx, watch, JS_UNDEFINED, 1, (JSValueConst *)&v);
    JS_FreeValue(ctx, watch);
    if (JS_IsException(state)) {
      JS_FreeValue(ctx, v);
      return state;
    }
    promise = JS_IsObject(state);
  }
  while (JS_ExecutePendingJob(rt, &c) > 0) {}
  if (!promise) return v;
  JS_FreeValue(ctx, v);
  JSValue s = JS_GetPropertyStr(ctx, state, "s");
  JSValue r = JS_GetPropertyStr(ctx, state, "v");
  int32_t st = 0;
  JS_ToInt32(ctx, &st, s);
  JS_FreeValue(ctx, state);
  if (st == 1) return r;
  if (st == 2) return JS_Throw(ctx, r);
  JS_FreeValue(ctx, r);
  return JS_ThrowTypeError(ctx, "the returned Promise did not settle (a guest has no timers or I/O to wait for)");
}

/* Builds the result envelope of an evaluation or call: [u8 kind] then a value or an exception's JSON. */
static hl_Vec *respond(JSValue v) {
  buf b = {0};
  v = settle(v);
  uint8_t kind = K_VALUE;
  if (!JS_IsException(v)) {
    buf_put(&b, &kind, 1);
    if (encode_value(&b, v) == 0) {
      JS_FreeValue(ctx, v);
      js_heap_call_end();
      return finish(&b);
    }
    b.len = 0;
    b.failed = 0;
  }
  JS_FreeValue(ctx, v);
  JSValue e = JS_GetException(ctx);
  kind = js_heap_limit_hit() ? K_OUT_OF_MEMORY : K_EXCEPTION;
  buf_put(&b, &kind, 1);
  js_heap_call_end(); /* the exception's description may allocate again */
  buf tmp = {0};
  put_exception(&tmp, e);
  JS_FreeValue(ctx, e);
  buf_u32(&b, (uint32_t)tmp.len);
  buf_put(&b, tmp.p, tmp.len);
  buf_u32(&b, 0);
  free(tmp.p);
  if (tmp.failed) b.failed = 1;
  return finish(&b);
}

/* ---- the guest's globals: host.*, console.* ---- */
static JSValue host_call(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv, int magic,
                         JSValue *data) {
  const char *name = JS_ToCString(c, data[0]);
  if (!name) return JS_EXCEPTION;
  JSValue arr = JS_NewArray(c);
  for (int i = 0; i < argc; i++) JS_SetPropertyUint32(c, arr, (uint32_t)i, JS_DupValue(c, argv[i]));
  buf env = {0};
  uint8_t kind = K_VALUE;
  buf_put(&env, &kind, 1);
  int rc = encode_value(&env, arr);
  JS_FreeValue(c, arr);
  if (rc) {
    JS_FreeCString(c, name);
    free(env.p);
    return JS_EXCEPTION;
  }
  hl_Parameter params[2] = {
      {.tag = hl_ParameterType_String, .value.String = (char *)name},
      {.tag = hl_ParameterType_VecBytes, .value.VecBytes = {env.p, env.len}},
  };
  hl_FunctionCall call = {"JsHost", params, 2, hl_ReturnType_VecBytes};
  fflush(stdout); /* the host's console output keeps its order around host calls */
  hl_call_host_function(&call);
  JS_FreeCString(c, name);
  free(env.p);
  hl_Vec *r = hl_get_host_return_value_as_VecBytes();
  if (!r) return JS_ThrowOutOfMemory(c);
  reader rd = {r->data, r->len, 1};
  JSValue v;
  if (r->len < 1) {
    v = JS_ThrowTypeError(c, "malformed host reply");
  } else if (r->data[0] == K_VALUE) {
    v = decode_value(&rd);
  } else {
    JSValue desc = decode_value(&rd); /* {name, message} of the host's error */
    if (JS_IsException(desc)) {
      v = desc;
    } else {
      JSValue err = JS_NewError(c);
      JS_SetPropertyStr(c, err, "message", JS_GetPropertyStr(c, desc, "message"));
      JS_SetPropertyStr(c, err, "name", JS_GetPropertyStr(c, desc, "name"));
      JS_FreeValue(c, desc);
      v = JS_Throw(c, err);
    }
  }
  free(r);
  return v;
}

static JSValue console_log(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  for (int i = 0; i < argc; i++) {
    JSValue s;
    if (JS_IsObject(argv[i]) && !JS_IsFunction(c, argv[i]) && !JS_IsError(c, argv[i])) {
      s = JS_JSONStringify(c, argv[i], JS_UNDEFINED, JS_UNDEFINED);
      if (JS_IsException(s)) JS_FreeValue(c, JS_GetException(c));
      if (!JS_IsString(s)) {
        JS_FreeValue(c, s);
        s = JS_ToString(c, argv[i]);
      }
    } else {
      s = JS_ToString(c, argv[i]);
    }
    if (JS_IsException(s)) return s;
    size_t n;
    const char *t = JS_ToCStringLen(c, &n, s);
    JS_FreeValue(c, s);
    if (!t) return JS_EXCEPTION;
    if (i) fputc(' ', stdout);
    fwrite(t, 1, n, stdout);
    JS_FreeCString(c, t);
  }
  fputc('\n', stdout);
  return JS_UNDEFINED;
}

/* Math.random: xorshift128+ seeded from the host's CSPRNG (getrandom, one exit) the first time a call uses it. QuickJS's own
 * generator is seeded once at start-up and would repeat the same sequence after every restore to a snapshot. */
static uint64_t rnd[2];
static int rnd_seeded;

static JSValue math_random(JSContext *c, JSValueConst this_val, int argc, JSValueConst *argv) {
  if (!rnd_seeded) {
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return JS_ThrowInternalError(c, "getrandom failed");
    rnd[0] |= 1;
    rnd_seeded = 1;
  }
  uint64_t x = rnd[0], y = rnd[1];
  rnd[0] = y;
  x ^= x << 23;
  rnd[1] = x ^ y ^ (x >> 17) ^ (y >> 26);
  return JS_NewFloat64(c, (double)((rnd[1] + y) >> 11) * 0x1.0p-53);
}

/* The prelude: helpers kept by C (not reachable from guest code). */
static const char prelude[] =
    "(() => {\n"
    "  const MARK = '\\u0000bytes', P = Promise, U8 = Uint8Array, keys = Object.keys, parse = JSON.parse;\n"
    "  return {\n"
    "    revive(text, buffers) {\n"
    "      return parse(text, function (k, v) {\n"
    "        if (v !== null && typeof v === 'object' && typeof v[MARK] === 'number' && keys(v).length === 1) {\n"
    "          const b = buffers[v[MARK]];\n"
    "          if (b === undefined) throw new TypeError('malformed value envelope');\n"
    "          return new U8(b);\n"
    "        }\n"
    "        return v;\n"
    "      });\n"
    "    },\n"
    "    watch(p) {\n"
    "      if (!(p instanceof P)) return undefined;\n"
    "      const st = { s: 0, v: undefined };\n"
    "      p.then((v) => { st.s = 1; st.v = v; }, (e) => { st.s = 2; st.v = e; });\n"
    "      return st;\n"
    "    },\n"
    "  };\n"
    "})()";

/* JsSetup(names, memoryLimit, stackLimit): defines host.<name> for each '\n'-separated name, then the limits. */
static hl_Vec *js_setup(const hl_FunctionCall *call) {
  const char *names = call->parameters[0].value.String;
  int64_t memory_limit = call->parameters[1].value.Long;
  int64_t stack_limit = call->parameters[2].value.Long;
  JSValue global = JS_GetGlobalObject(ctx);
  JSValue host = JS_NewObject(ctx);
  for (const char *p = names; *p;) {
    const char *e = strchr(p, '\n');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    JSValue name = JS_NewStringLen(ctx, p, n);
    JSAtom atom = JS_NewAtomLen(ctx, p, n);
    JSValue fn = JS_NewCFunctionData(ctx, host_call, 0, 0, 1, &name);
    JS_DefinePropertyValue(ctx, host, atom, fn, JS_PROP_ENUMERABLE);
    JS_FreeAtom(ctx, atom);
    JS_FreeValue(ctx, name);
    p += n;
    if (*p == '\n') p++;
  }
  JS_DefinePropertyValueStr(ctx, global, "host", host, JS_PROP_CONFIGURABLE | JS_PROP_WRITABLE);
  JS_FreeValue(ctx, global);
  if (stack_limit > 0) JS_SetMaxStackSize(rt, (size_t)stack_limit);
  js_heap_set_limit(memory_limit > 0 ? (size_t)memory_limit : 0);
  return hl_flatbuffer_result_from_Int(0);
}

/* JsEval(code, isModule=0): evaluates a script in the global scope; its completion value. */
static hl_Vec *js_eval(const hl_FunctionCall *call) {
  const char *code = call->parameters[0].value.String;
  js_heap_call_begin();
  rnd_seeded = 0;
  JSValue v = JS_Eval(ctx, code, strlen(code), "<sandbox>", JS_EVAL_TYPE_GLOBAL);
  return respond(v);
}

/* JsCall(name, args): calls the global function `name` with the decoded argument array. */
static hl_Vec *js_call(const hl_FunctionCall *call) {
  const char *name = call->parameters[0].value.String;
  const hl_Vec *env = &call->parameters[1].value.VecBytes;
  js_heap_call_begin();
  rnd_seeded = 0;
  reader rd = {env->data, env->len, env->len ? 1 : 0}; /* [u8 kind] then the argument array */
  JSValue args = decode_value(&rd);
  if (JS_IsException(args)) return respond(args);
  JSValue global = JS_GetGlobalObject(ctx);
  JSValue fn = JS_GetPropertyStr(ctx, global, name);
  JSValue v;
  if (!JS_IsFunction(ctx, fn)) {
    v = JS_ThrowTypeError(ctx, "%s is not a function", name);
  } else {
    int64_t n = 0;
    JSValue len = JS_GetPropertyStr(ctx, args, "length");
    JS_ToInt64(ctx, &n, len);
    JS_FreeValue(ctx, len);
    if (n < 0 || n > 65535) n = 0;
    JSValue *argv = js_malloc(ctx, sizeof(JSValue) * (size_t)(n ? n : 1));
    if (!argv) {
      v = JS_EXCEPTION;
    } else {
      for (int64_t i = 0; i < n; i++) argv[i] = JS_GetPropertyUint32(ctx, args, (uint32_t)i);
      v = JS_Call(ctx, fn, global, (int)n, (JSValueConst *)argv);
      for (int64_t i = 0; i < n; i++) JS_FreeValue(ctx, argv[i]);
      js_free(ctx, argv);
    }
  }
  JS_FreeValue(ctx, fn);
  JS_FreeValue(ctx, global);
  JS_FreeValue(ctx, args);
  return respond(v);
}

/* JsGc(): runs the collector (after load(), so that snapshots hold less garbage). */
static hl_Vec *js_gc(const hl_FunctionCall *call) {
  JS_RunGC(rt);
  return hl_flatbuffer_result_from_Long((int64_t)js_heap_in_use());
}

void hyperlight_main(void) {
  rt = js_heap_new_runtime();
  if (!rt) hl_abort_with_code_and_message(1, "QuickJS: JS_NewRuntime failed (heap too small?)");
  ctx = JS_NewContext(rt);
  if (!ctx) hl_abort_with_code_and_message(1, "QuickJS: JS_NewContext failed (heap too small?)");
  atom_to_json = JS_NewAtom(ctx, "toJSON");
  atom_mark = JS_NewAtomLen(ctx, "\0bytes", 6); /* the marker key "\u0000bytes" of a byte array */
  to_json_fn = JS_NewCFunction(ctx, u8_to_json, "toJSON", 0);
  helpers = JS_Eval(ctx, prelude, sizeof prelude - 1, "<prelude>", JS_EVAL_TYPE_GLOBAL);
  JSValue global = JS_GetGlobalObject(ctx);
  JSValue ctor = JS_GetPropertyStr(ctx, global, "Uint8Array");
  u8proto = JS_GetPropertyStr(ctx, ctor, "prototype");
  JS_FreeValue(ctx, ctor);
  if (JS_IsException(helpers) || !JS_IsObject(u8proto))
    hl_abort_with_code_and_message(1, "QuickJS: the prelude failed");
  JSValue console = JS_NewObject(ctx);
  static const char *const levels[] = {"log", "info", "warn", "error", "debug"};
  for (size_t i = 0; i < sizeof levels / sizeof *levels; i++)
    JS_SetPropertyStr(ctx, console, levels[i], JS_NewCFunction(ctx, console_log, levels[i], 1));
  JS_SetPropertyStr(ctx, global, "console", console);
  JSValue math = JS_GetPropertyStr(ctx, global, "Math");
  JS_SetPropertyStr(ctx, math, "random", JS_NewCFunction(ctx, math_random, "random", 0));
  JS_FreeValue(ctx, math);
  JS_SetCanBlock(rt, 0); /* Atomics.wait throws: a guest has one thread and nothing to wait for */
  JS_FreeValue(ctx, global);

  static const hl_ParameterType setup_params[] = {hl_ParameterType_String, hl_ParameterType_Long,
                                                  hl_ParameterType_Long};
  static const hl_ParameterType eval_params[] = {hl_ParameterType_String};
  static const hl_ParameterType call_params[] = {hl_ParameterType_String, hl_ParameterType_VecBytes};
  hl_register_function_definition("JsSetup", js_setup, 3, setup_params, hl_ReturnType_Int);
  hl_register_function_definition("JsEval", js_eval, 1, eval_params, hl_ReturnType_VecBytes);
  hl_register_function_definition("JsCall", js_call, 2, call_params, hl_ReturnType_VecBytes);
  hl_register_function_definition("JsGc", js_gc, 0, NULL, hl_ReturnType_Long);
}
