/* alloca for guests: the compiler builtin (stack-clash protection probes each page). */
#ifndef HL_ALLOCA_H
#define HL_ALLOCA_H
#include <stddef.h>
#define alloca(n) __builtin_alloca(n)
#endif
