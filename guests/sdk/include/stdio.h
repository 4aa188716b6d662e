/* The stdio part of the guest libc subset: formatted output buffered to the host's HostPrint; no input, no files. */
#ifndef HL_STDIO_H
#define HL_STDIO_H
#include <stdarg.h>
#include <stddef.h>

typedef struct hl_FILE FILE;
extern struct hl_FILE __hl_stdout;
#define stdout (&__hl_stdout)
#define stderr (&__hl_stdout)
#define EOF (-1)

/* Output is buffered (512 bytes) and sent to the host function HostPrint(String)->Int on
 * '\n', fflush or a full buffer, and at the end of every guest call.
 * Conversions: d i u x X o p s c %% and f/F; flags - 0 + space #; width and precision
 * (also *); lengths hh h l ll z j t. %f prints a double exactly (correctly rounded). */
int printf(const char *fmt, ...);
int fprintf(FILE *f, const char *fmt, ...);
int vprintf(const char *fmt, va_list ap);
int sprintf(char *buf, const char *fmt, ...);
int snprintf(char *buf, size_t size, const char *fmt, ...);
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int putchar(int c);
int puts(const char *s);
int fputs(const char *s, FILE *f);
int fflush(FILE *f);
#endif
