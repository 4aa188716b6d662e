/* Native command-line tool over the SDK's flatbuffer code, for cross-checks against flatc and the TypeScript codec; not part of any guest. */
/*
 * Build: gcc -O1 -iquote guests/sdk/include -o fbtool guests/tools/fbtool.c guests/sdk/src/flatbuf.c
 *
 * Modes (all messages are size-prefixed, binary on stdin/stdout):
 *   fbtool decode-call   < FunctionCall       prints one line of canonical JSON:
 *       {"name":"Echo","type":1,"ret":"String","params":[{"t":"String","v":"hi"}]}
 *     "type" is the FunctionCallType number, "ret" the ReturnType name. Per parameter
 *     "t" is the ParameterType name and "v": Int and UInt as JSON numbers; Long, ULong,
 *     Float and Double as decimal strings of the raw integer / IEEE-754 bits; Bool as
 *     true/false; String as a JSON string; VecBytes as lowercase hex. Malformed input:
 *     prints {"error":"malformed"} (or "noname", "toomany") and exits 2.
 *   fbtool decode-result < FunctionCallResult prints {"t":<ReturnType>,"v":<value>} with the
 *     same value encoding ("v":null for Void, hex for VecBytes), or
 *     {"error":{"code":17,"message":"..."}} for a GuestError (message null when absent).
 *   fbtool encode-result <type> [<value>]     writes a FunctionCallResult (ReturnValueBox).
 *   fbtool encode-error <code> <message>      writes a FunctionCallResult (GuestError).
 *   fbtool encode-call <name> <calltype> <ret> [<type> <value>]...  writes a FunctionCall.
 *   fbtool encode-log <level> <message> <source> <caller> <file> <line>  writes a GuestLogData.
 *   Type names: Int UInt Long ULong Float Double String Bool VecBytes (and Void for results).
 *   Input values use the output encoding: decimal integers (bits for Float/Double),
 *   true/false, the string itself, hex for VecBytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hyperlight/flatbuf.h"

static const char *const NAMES[] = {"Int", "UInt", "Long", "ULong", "Float", "Double",
                                    "String", "Bool", "Void", "VecBytes"};

/* Maps a type name to a ReturnType number (ParameterType equals it below 8, VecBytes is 8 there). */
static int rt_of(const char *s) {
  for (int i = 0; i < 10; i++)
    if (strcmp(s, NAMES[i]) == 0) return i;
  return -1;
}
static const char *pt_name(uint8_t pt) { return pt == HLFB_PT_VECBYTES ? "VecBytes" : NAMES[pt]; }

static void json_string(const uint8_t *p, size_t n) {
  putchar('"');
  for (size_t i = 0; i < n; i++) {
    uint8_t c = p[i];
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

/* Prints a value whose `type` is a ParameterType (rt=0) or ReturnType (rt=1). */
static void json_value(const hlfb_value *v, int rt) {
  uint8_t t = v->type;
  if (!rt && t == HLFB_PT_VECBYTES) t = HLFB_RT_VECBYTES;
  switch (t) {
  case HLFB_RT_INT: printf("%d", v->v.i32); break;
  case HLFB_RT_UINT: printf("%u", v->v.u32); break;
  case HLFB_RT_LONG: printf("\"%lld\"", (long long)v->v.i64); break;
  case HLFB_RT_ULONG: printf("\"%llu\"", (unsigned long long)v->v.u64); break;
  case HLFB_RT_FLOAT: printf("\"%u\"", v->v.u32); break;
  case HLFB_RT_DOUBLE: printf("\"%llu\"", (unsigned long long)v->v.u64); break;
  case HLFB_RT_STRING: json_string(v->v.buf.ptr, v->v.buf.len); break;
  case HLFB_RT_BOOL: printf(v->v.b ? "true" : "false"); break;
  case HLFB_RT_VOID: printf("null"); break;
  case HLFB_RT_VECBYTES:
    putchar('"');
    for (uint32_t i = 0; i < v->v.buf.len; i++) printf("%02x", v->v.buf.ptr[i]);
    putchar('"');
    break;
  }
}

static uint8_t *slurp(size_t *len) {
  size_t cap = 1 << 16, n = 0;
  uint8_t *b = malloc(cap);
  size_t r;
  while ((r = fread(b + n, 1, cap - n, stdin)) > 0) {
    n += r;
    if (n == cap) b = realloc(b, cap *= 2);
  }
  *len = n;
  return b;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Parses `text` as a value of ReturnType rt (for parameters the caller maps VecBytes). */
static int parse_value(int rt, const char *text, hlfb_value *v) {
  v->type = (uint8_t)rt;
  switch (rt) {
  case HLFB_RT_INT: v->v.i32 = (int32_t)strtol(text, NULL, 0); break;
  case HLFB_RT_UINT: case HLFB_RT_FLOAT: v->v.u32 = (uint32_t)strtoul(text, NULL, 0); break;
  case HLFB_RT_LONG: v->v.i64 = strtoll(text, NULL, 0); break;
  case HLFB_RT_ULONG: case HLFB_RT_DOUBLE: v->v.u64 = strtoull(text, NULL, 0); break;
  case HLFB_RT_BOOL: v->v.b = strcmp(text, "true") == 0; break;
  case HLFB_RT_STRING:
    v->v.buf.ptr = (const uint8_t *)text;
    v->v.buf.len = (uint32_t)strlen(text);
    break;
  case HLFB_RT_VOID: break;
  case HLFB_RT_VECBYTES: {
    size_t n = strlen(text) / 2;
    uint8_t *p = malloc(n + 1);
    for (size_t i = 0; i < n; i++) {
      int hi = hexval(text[2 * i]), lo = hexval(text[2 * i + 1]);
      if (hi < 0 || lo < 0) return -1;
      p[i] = (uint8_t)(hi * 16 + lo);
    }
    v->v.buf.ptr = p;
    v->v.buf.len = (uint32_t)n;
    break;
  }
  default: return -1;
  }
  return 0;
}

static int emit(uint8_t *buf, size_t n) {
  if (n == 0) {
    fprintf(stderr, "fbtool: message does not fit\n");
    return 1;
  }
  fwrite(buf, 1, n, stdout);
  return 0;
}

static int usage(void) {
  fprintf(stderr, "usage: fbtool decode-call|decode-result|encode-result|encode-error|"
                  "encode-call|encode-log ...\n");
  return 64;
}

int main(int argc, char **argv) {
  static uint8_t out[1 << 22];
  static hlfb_value params[64];
  if (argc < 2) return usage();
  const char *mode = argv[1];
  if (strcmp(mode, "decode-call") == 0) {
    size_t len;
    uint8_t *msg = slurp(&len);
    hlfb_call call;
    int r = hlfb_read_call(msg, len, &call, params, 64);
    if (r != HLFB_OK) {
      printf("{\"error\":\"%s\"}\n", r == HLFB_ENONAME ? "noname" : r == HLFB_ETOOMANY ? "toomany" : "malformed");
      return 2;
    }
    printf("{\"name\":");
    json_string((const uint8_t *)call.name, call.name_len);
    printf(",\"type\":%u,\"ret\":\"%s\",\"params\":[", call.call_type,
           call.return_type <= 9 ? NAMES[call.return_type] : "?");
    for (uint32_t i = 0; i < call.param_count; i++) {
      printf("%s{\"t\":\"%s\",\"v\":", i ? "," : "", pt_name(params[i].type));
      json_value(&params[i], 0);
      putchar('}');
    }
    printf("]}\n");
    return 0;
  }
  if (strcmp(mode, "decode-result") == 0) {
    size_t len;
    uint8_t *msg = slurp(&len);
    hlfb_result res;
    if (hlfb_read_result(msg, len, &res) != HLFB_OK) {
      printf("{\"error\":\"malformed\"}\n");
      return 2;
    }
    if (res.is_error) {
      printf("{\"error\":{\"code\":%llu,\"message\":", (unsigned long long)res.error_code);
      if (res.error_message) json_string((const uint8_t *)res.error_message, res.error_message_len);
      else printf("null");
      printf("}}\n");
    } else {
      printf("{\"t\":\"%s\",\"v\":", NAMES[res.value.type]);
      json_value(&res.value, 1);
      printf("}\n");
    }
    return 0;
  }
  if (strcmp(mode, "encode-result") == 0 && argc >= 3) {
    hlfb_value v;
    int rt = rt_of(argv[2]);
    if (rt < 0 || (rt != HLFB_RT_VOID && argc < 4) ||
        parse_value(rt, argc >= 4 ? argv[3] : "", &v) < 0)
      return usage();
    return emit(out, hlfb_build_result(out, sizeof out, &v));
  }
  if (strcmp(mode, "encode-error") == 0 && argc == 4) {
    return emit(out, hlfb_build_error(out, sizeof out, strtoull(argv[2], NULL, 0), argv[3],
                                      strlen(argv[3])));
  }
  if (strcmp(mode, "encode-call") == 0 && argc >= 5 && argc % 2 == 1) {
    int ret = rt_of(argv[4]);
    size_t n = (size_t)(argc - 5) / 2;
    if (ret < 0 || n > 64) return usage();
    for (size_t i = 0; i < n; i++) {
      int t = rt_of(argv[5 + 2 * i]);
      if (t < 0 || t == HLFB_RT_VOID || parse_value(t, argv[6 + 2 * i], &params[i]) < 0)
        return usage();
      if (t == HLFB_RT_VECBYTES) params[i].type = HLFB_PT_VECBYTES;
    }
    return emit(out, hlfb_build_call(out, sizeof out, argv[2], strlen(argv[2]),
                                     (uint8_t)atoi(argv[3]), (uint8_t)ret, params, n));
  }
  if (strcmp(mode, "encode-log") == 0 && argc == 8) {
    return emit(out, hlfb_build_log(out, sizeof out, (uint8_t)atoi(argv[2]), argv[3], argv[4],
                                    argv[5], argv[6], (uint32_t)strtoul(argv[7], NULL, 0)));
  }
  return usage();
}
