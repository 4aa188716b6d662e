/* The guest<->host ABI constants of docs/guest-abi.md (C side); it defines no code. */
/* src/sandbox/abi.ts holds the same values without the HL_ prefix; a test compares them. */
#ifndef HYPERLIGHT_ABI_H
#define HYPERLIGHT_ABI_H

/* OUT ports (the guest uses `out %eax, %dx`). */
#define HL_PORT_LOG 99
#define HL_PORT_CALL_FUNCTION 101
#define HL_PORT_ABORT 102
#define HL_PORT_DEBUG_PRINT 103
#define HL_PORT_HALT 108

/* PEB field offsets: 15 little-endian u64 values, read-only to the guest. */
#define HL_PEB_OFF_INPUT_SIZE 0
#define HL_PEB_OFF_INPUT_PTR 8
#define HL_PEB_OFF_OUTPUT_SIZE 16
#define HL_PEB_OFF_OUTPUT_PTR 24
#define HL_PEB_OFF_INIT_SIZE 32
#define HL_PEB_OFF_INIT_PTR 40
#define HL_PEB_OFF_HEAP_SIZE 48
#define HL_PEB_OFF_HEAP_PTR 56
#define HL_PEB_OFF_STACK_SIZE 64
#define HL_PEB_OFF_STACK_PTR 72
#define HL_PEB_OFF_EXN_STACK_SIZE 80
#define HL_PEB_OFF_EXN_STACK_PTR 88
#define HL_PEB_OFF_MAGIC 96
#define HL_PEB_OFF_ABI_VERSION 104
/* A random seed the host writes per sandbox (and on a reseeding restore); rand() reseeds
 * from it whenever it changes. */
#define HL_PEB_OFF_RANDOM_SEED 112
#define HL_PEB_SIZE 120
/* The bytes "HLTSPEB1" read as a little-endian u64. */
#define HL_PEB_MAGIC 0x3142455053544C48ULL
#define HL_ABI_VERSION 1

/* The abort stream (port 102). */
#define HL_ABORT_CODE_EXCEPTION 0xFE
#define HL_ABORT_CODE_STACK_OVERFLOW 0xFD
#define HL_ABORT_END 0xFF
#define HL_ABORT_MAX_BYTES 1024

/* I/O buffer stacks: bytes 0..8 hold the stack pointer; 8 means empty. */
#define HL_IOBUF_EMPTY_SP 8

/* GDT selectors the guest loads. */
#define HL_SEL_CODE 0x08
#define HL_SEL_DATA 0x10
#define HL_SEL_TSS 0x18

#endif
