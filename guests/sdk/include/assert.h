/* assert for guests: a failed assertion aborts the sandbox with code 0xFB and the expression text. */
#undef assert
#ifdef NDEBUG
#define assert(e) ((void)0)
#else
__attribute__((noreturn)) void __hl_assert_fail(const char *expr, const char *file, int line,
                                                const char *func);
#define assert(e) ((e) ? (void)0 : __hl_assert_fail(#e, __FILE__, __LINE__, __func__))
#endif
