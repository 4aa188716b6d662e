/* printf family of the guest libc subset (%f printed exactly from the double's bits) and the stdout buffer sent to HostPrint. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"

struct hl_FILE {
  int unused;
};
struct hl_FILE __hl_stdout;

/* ---------------------------------------------------------------- %f: exact decimal of binary64 bits */

#define LIMBS 48     /* 1536 bits: 2^1024 times 10^MAX_FPREC fits */
#define MAX_FPREC 60 /* larger precisions print zeros after the 60th digit */

typedef struct {
  uint32_t w[LIMBS]; /* little-endian limbs */
  unsigned n;        /* limbs in use */
} bignum;

static void bn_mul_small(bignum *a, uint32_t m) {
  uint64_t carry = 0;
  for (unsigned i = 0; i < a->n; i++) {
    uint64_t t = (uint64_t)a->w[i] * m + carry;
    a->w[i] = (uint32_t)t;
    carry = t >> 32;
  }
  if (carry && a->n < LIMBS) a->w[a->n++] = (uint32_t)carry;
}

static void bn_shl(bignum *a, unsigned s) {
  unsigned limbs = s / 32, bits = s % 32;
  if (limbs) {
    for (int i = (int)a->n - 1; i >= 0; i--)
      if ((unsigned)i + limbs < LIMBS) a->w[i + limbs] = a->w[i];
    for (unsigned i = 0; i < limbs && i < LIMBS; i++) a->w[i] = 0;
    a->n = a->n + limbs > LIMBS ? LIMBS : a->n + limbs;
  }
  if (bits) {
    uint32_t carry = 0;
    for (unsigned i = 0; i < a->n; i++) {
      uint32_t v = a->w[i];
      a->w[i] = (v << bits) | carry;
      carry = v >> (32 - bits);
    }
    if (carry && a->n < LIMBS) a->w[a->n++] = carry;
  }
}

static bool bn_bit(const bignum *a, unsigned i) {
  return i / 32 < a->n && ((a->w[i / 32] >> (i % 32)) & 1);
}

/* a = round_half_even(a / 2^s). */
static void bn_shr_round(bignum *a, unsigned s) {
  bool half = s > 0 && bn_bit(a, s - 1), sticky = false;
  for (unsigned i = 0; i + 1 < s && !sticky; i++) sticky = bn_bit(a, i);
  unsigned limbs = s / 32, bits = s % 32;
  if (limbs >= a->n) {
    a->n = 0;
  } else {
    for (unsigned i = 0; i + limbs < a->n; i++) a->w[i] = a->w[i + limbs];
    a->n -= limbs;
    if (bits) {
      for (unsigned i = 0; i < a->n; i++)
        a->w[i] = (a->w[i] >> bits) | (i + 1 < a->n ? a->w[i + 1] << (32 - bits) : 0);
    }
  }
  while (a->n && a->w[a->n - 1] == 0) a->n--;
  if (half && (sticky || (a->n && (a->w[0] & 1)))) { /* round up */
    unsigned i = 0;
    for (; i < a->n; i++)
      if (++a->w[i] != 0) break;
    if (i == a->n && a->n < LIMBS) a->w[a->n++] = 1;
  }
}

static uint32_t bn_divmod_small(bignum *a, uint32_t d) {
  uint64_t rem = 0;
  for (int i = (int)a->n - 1; i >= 0; i--) {
    uint64_t cur = (rem << 32) | a->w[i];
    a->w[i] = (uint32_t)(cur / d);
    rem = cur % d;
  }
  while (a->n && a->w[a->n - 1] == 0) a->n--;
  return (uint32_t)rem;
}

/* Writes the digits of round(|value| * 10^prec) into out (most significant first). */
static size_t exact_scaled_digits(uint64_t mant, int exp2, unsigned prec, char *out, size_t cap) {
  bignum a = {{0}, 0};
  a.w[0] = (uint32_t)mant;
  a.w[1] = (uint32_t)(mant >> 32);
  a.n = a.w[1] ? 2 : a.w[0] ? 1 : 0;
  for (unsigned i = 0; i < prec; i++) bn_mul_small(&a, 10);
  if (exp2 >= 0) bn_shl(&a, (unsigned)exp2);
  else bn_shr_round(&a, (unsigned)-exp2);
  char tmp[LIMBS * 10 + 2];
  size_t n = 0;
  while (a.n) {
    uint32_t r = bn_divmod_small(&a, 1000000000u);
    for (int k = 0; k < 9; k++, r /= 10) tmp[n++] = (char)('0' + r % 10);
  }
  while (n > 1 && tmp[n - 1] == '0') n--;
  if (n == 0) tmp[n++] = '0';
  size_t len = 0;
  while (n && len < cap) out[len++] = tmp[--n];
  return len;
}

/* ---------------------------------------------------------------- formatter */

/* Output goes out in runs (one call per literal run, field or padding), not per
 * character: an indirect call per character costs ~15 guest instructions. */
typedef struct {
  void (*write)(void *ctx, const char *p, size_t n);
  void *ctx;
  int count;
} sink;

static void emit_run(sink *s, const char *p, size_t n) {
  if (n == 0) return;
  s->write(s->ctx, p, n);
  s->count += (int)n;
}
static void emit(sink *s, char c) { emit_run(s, &c, 1); }
static void emit_n(sink *s, char c, int n) {
  char run[32];
  if (n <= 0) return;
  memset(run, c, n < 32 ? (size_t)n : 32);
  for (; n > 0; n -= 32) emit_run(s, run, n < 32 ? (size_t)n : 32);
}

enum { F_LEFT = 1, F_ZERO = 2, F_PLUS = 4, F_SPACE = 8, F_ALT = 16 };

/* Emits sign/prefix + zero padding + body with width handling. */
static void emit_field(sink *s, const char *prefix, const char *body, int body_len, int zeros,
                       int width, int flags) {
  int plen = (int)strlen(prefix);
  int total = plen + zeros + body_len;
  if (!(flags & F_LEFT) && !(flags & F_ZERO)) emit_n(s, ' ', width - total);
  emit_run(s, prefix, (size_t)plen);
  if (!(flags & F_LEFT) && (flags & F_ZERO)) emit_n(s, '0', width - total);
  emit_n(s, '0', zeros);
  if (body_len > 0) emit_run(s, body, (size_t)body_len);
  if (flags & F_LEFT) emit_n(s, ' ', width - total);
}

static void fmt_int(sink *s, uint64_t v, bool neg, unsigned base, bool upper, int width,
                    int prec, int flags, bool is_ptr) {
  char digits[24];
  int n = 0;
  const char *dig = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  if (!(prec == 0 && v == 0))
    do digits[n++] = dig[v % base]; while ((v /= base) != 0);
  char body[24];
  for (int i = 0; i < n; i++) body[i] = digits[n - 1 - i];
  char prefix[4] = {0};
  int p = 0;
  if (neg) prefix[p++] = '-';
  else if (flags & F_PLUS) prefix[p++] = '+';
  else if (flags & F_SPACE) prefix[p++] = ' ';
  if ((flags & F_ALT) || is_ptr) {
    if (base == 16 && (n > 0 || is_ptr)) {
      prefix[p++] = '0';
      prefix[p++] = upper ? 'X' : 'x';
    } else if (base == 8 && (n == 0 || body[0] != '0') && prec <= n) {
      prec = n + 1;
    }
  }
  int zeros = prec > n ? prec - n : 0;
  if (prec >= 0) flags &= ~F_ZERO;
  emit_field(s, prefix, body, n, zeros, width, flags);
}

static void fmt_double_bits(sink *s, uint64_t bits, int width, int prec, int flags, bool upper) {
  bool neg = bits >> 63;
  unsigned e = (unsigned)(bits >> 52) & 0x7FF;
  uint64_t m = bits & ((1ull << 52) - 1);
  const char *prefix = neg ? "-" : (flags & F_PLUS) ? "+" : (flags & F_SPACE) ? " " : "";
  if (e == 0x7FF) {
    const char *t = m ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
    emit_field(s, prefix, t, 3, 0, width, flags & ~F_ZERO);
    return;
  }
  int exp2 = e ? (int)e - 1075 : -1074;
  if (e) m |= 1ull << 52;
  if (prec < 0) prec = 6;
  unsigned p = prec > MAX_FPREC ? MAX_FPREC : (unsigned)prec;
  char digits[LIMBS * 10 + 2];
  size_t n = exact_scaled_digits(m, exp2, p, digits, sizeof digits);
  /* digits = round(|x| * 10^p); split into integer and fraction parts. */
  char body[LIMBS * 10 + MAX_FPREC + 4];
  size_t b = 0;
  size_t int_len = n > p ? n - p : 0;
  if (int_len == 0) body[b++] = '0';
  for (size_t i = 0; i < int_len; i++) body[b++] = digits[i];
  if (p > 0 || (flags & F_ALT)) body[b++] = '.';
  for (size_t i = 0; i < p; i++) {
    size_t idx = int_len + i; /* position in digits, after left-padding with zeros */
    size_t pad = n < p ? p - n : 0;
    body[b++] = i < pad ? '0' : digits[idx - pad];
  }
  emit_field(s, prefix, body, (int)b, 0, width, flags);
  emit_n(s, '0', prec - (int)p); /* beyond MAX_FPREC */
}

int hl_vformat(void (*write)(void *ctx, const char *p, size_t n), void *ctx, const char *fmt,
               va_list ap) {
  sink s = {write, ctx, 0};
  for (; *fmt; fmt++) {
    if (*fmt != '%') { /* a literal run up to the next directive */
      const char *run = fmt;
      while (fmt[1] && fmt[1] != '%') fmt++;
      emit_run(&s, run, (size_t)(fmt + 1 - run));
      continue;
    }
    const char *start = fmt++;
    int flags = 0;
    for (;; fmt++) {
      if (*fmt == '-') flags |= F_LEFT;
      else if (*fmt == '0') flags |= F_ZERO;
      else if (*fmt == '+') flags |= F_PLUS;
      else if (*fmt == ' ') flags |= F_SPACE;
      else if (*fmt == '#') flags |= F_ALT;
      else break;
    }
    int width = 0;
    if (*fmt == '*') {
      width = va_arg(ap, int);
      if (width < 0) flags |= F_LEFT, width = -width;
      fmt++;
    } else {
      while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    }
    int prec = -1;
    if (*fmt == '.') {
      fmt++;
      prec = 0;
      if (*fmt == '*') {
        prec = va_arg(ap, int);
        fmt++;
      } else {
        while (*fmt >= '0' && *fmt <= '9') prec = prec * 10 + (*fmt++ - '0');
      }
    }
    int len = 0; /* 0 int, 1 long, 2 long long, -1 short, -2 char */
    for (;; fmt++) {
      if (*fmt == 'l') len++;
      else if (*fmt == 'h') len--;
      else if (*fmt == 'z' || *fmt == 'j' || *fmt == 't') len = 2;
      else break;
    }
    char c = *fmt;
    switch (c) {
    case 'd':
    case 'i': {
      int64_t v = len >= 1 ? va_arg(ap, long long) : va_arg(ap, int);
      if (len == -1) v = (short)v;
      if (len <= -2) v = (signed char)v;
      uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
      fmt_int(&s, mag, v < 0, 10, false, width, prec, flags, false);
      break;
    }
    case 'u':
    case 'x':
    case 'X':
    case 'o': {
      uint64_t v = len >= 1 ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned);
      if (len == -1) v = (unsigned short)v;
      if (len <= -2) v = (unsigned char)v;
      unsigned base = c == 'u' ? 10 : c == 'o' ? 8 : 16;
      fmt_int(&s, v, false, base, c == 'X', width, prec, flags & ~(F_PLUS | F_SPACE), false);
      break;
    }
    case 'p': {
      uintptr_t v = (uintptr_t)va_arg(ap, void *);
      fmt_int(&s, v, false, 16, false, width, prec, flags & ~(F_PLUS | F_SPACE), true);
      break;
    }
    case 'c': {
      char ch = (char)va_arg(ap, int);
      emit_field(&s, "", &ch, 1, 0, width, flags & ~F_ZERO);
      break;
    }
    case 's': {
      const char *str = va_arg(ap, const char *);
      if (str == NULL) str = "(null)";
      int n = (int)(prec >= 0 ? strnlen(str, (size_t)prec) : strlen(str));
      emit_field(&s, "", str, n, 0, width, flags & ~F_ZERO);
      break;
    }
    case 'f':
    case 'F':
      fmt_double_bits(&s, hl_double_bits_(va_arg(ap, double)), width, prec, flags, c == 'F');
      break;
    case '%':
      emit(&s, '%');
      break;
    default: /* unknown: print the directive as written */
      emit_run(&s, start, (size_t)(fmt + (c ? 1 : 0) - start));
      if (!c) fmt--;
      break;
    }
  }
  return s.count;
}

/* ---------------------------------------------------------------- strings */

typedef struct {
  char *buf;
  size_t size;
  size_t pos;
} string_sink;

/* Stores what fits (leaving room for the NUL) and counts everything. */
static void write_string(void *ctx, const char *p, size_t n) {
  string_sink *ss = ctx;
  if (ss->pos + 1 < ss->size) {
    size_t room = ss->size - 1 - ss->pos;
    memcpy(ss->buf + ss->pos, p, n < room ? n : room);
  }
  ss->pos += n;
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap) {
  string_sink ss = {buf, size, 0};
  int n = hl_vformat(write_string, &ss, fmt, ap);
  if (size) buf[ss.pos < size ? ss.pos : size - 1] = 0;
  return n;
}

int snprintf(char *buf, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

int sprintf(char *buf, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, (size_t)-1 / 2, fmt, ap);
  va_end(ap);
  return n;
}

/* ---------------------------------------------------------------- stdout -> HostPrint */

#define OUT_CAP 512
static char out_buf[OUT_CAP + 1];
HL_HOT_DATA_ static size_t out_len;

/* Sends the buffered text to HostPrint(String)->Int. */
static void flush_out(void) {
  if (out_len == 0) return;
  out_buf[out_len] = 0;
  out_len = 0;
  /* out_len is already 0: if HostPrint fails the call, the text is not sent twice. The
   * text ends at its first NUL, as it always has (printf("%c", 0) cuts the line there). */
  hl_sdk_host_print(out_buf);
}

/* Index of the first byte c in p[0..n), or n. Reads aligned words (which never cross a
 * page), the bytes before p forced to differ from c. */
static size_t find_byte(const char *p, size_t n, unsigned char c) {
  typedef uint64_t __attribute__((may_alias)) u64a;
  if (n == 0) return 0;
  const uint64_t ones = 0x0101010101010101ull, pattern = c * ones;
  unsigned off = (unsigned)((uintptr_t)p & 7);
  const u64a *w = (const u64a *)((uintptr_t)p - off);
  uint64_t x = (*w ^ pattern) | ((1ull << (8 * off)) - 1);
  for (size_t base = 0;; base += 8) { /* w starts base - off bytes after p */
    uint64_t hit = (x - ones) & ~x & (ones << 7);
    if (hit) {
      size_t i = base + (__builtin_ctzll(hit) >> 3) - off;
      return i < n ? i : n;
    }
    if (base + 8 - off >= n) return n;
    x = *++w ^ pattern;
  }
}

/* As if each character were appended in turn, flushing after a newline or when the
 * buffer is full: the same HostPrint calls. Short runs go byte by byte (no set-up), long
 * ones are searched a word at a time and copied at once. */
static void write_stdout(void *ctx, const char *p, size_t n) {
  (void)ctx;
  if (n < 16) {
    size_t len = out_len;
    for (size_t i = 0; i < n; i++) {
      char c = p[i];
      out_buf[len++] = c;
      if (c == '\n' || len == OUT_CAP) {
        out_len = len;
        flush_out(); /* sets out_len to 0 */
        len = 0;
      }
    }
    out_len = len;
    return;
  }
  while (n) {
    size_t room = OUT_CAP - out_len;
    size_t k = n < room ? n : room;
    size_t nl = find_byte(p, k, '\n');
    if (nl < k) k = nl + 1;
    memcpy(out_buf + out_len, p, k);
    out_len += k;
    p += k;
    n -= k;
    if (nl < k || out_len == OUT_CAP) flush_out();
  }
}

static void put_stdout(void *ctx, char c) { write_stdout(ctx, &c, 1); }

HL_HOT_ size_t hl_stdout_buffered(void) { return out_len; }

/* Flush at the end of a guest call (errors then fail the call as usual). */
HL_HOT_ void hl_stdout_flush_quiet(void) { flush_out(); }

int vprintf(const char *fmt, va_list ap) { return hl_vformat(write_stdout, NULL, fmt, ap); }

int printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vprintf(fmt, ap);
  va_end(ap);
  return n;
}

int fprintf(FILE *f, const char *fmt, ...) {
  (void)f;
  va_list ap;
  va_start(ap, fmt);
  int n = vprintf(fmt, ap);
  va_end(ap);
  return n;
}

int putchar(int c) {
  put_stdout(NULL, (char)c);
  return (unsigned char)c;
}

int fputs(const char *str, FILE *f) {
  (void)f;
  write_stdout(NULL, str, strlen(str));
  return 0;
}

int puts(const char *str) {
  fputs(str, stdout);
  put_stdout(NULL, '\n');
  return 0;
}

int fflush(FILE *f) {
  (void)f;
  flush_out();
  return 0;
}
