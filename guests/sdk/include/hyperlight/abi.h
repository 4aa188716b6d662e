/* The guest<->host ABI constants of docs/guest-abi.md (C side); it defines no code. */
/* src/sandbox/abi.ts holds the same values without the HL_ prefix; a test compares them. */
#ifndef HYPERLIGHT_ABI_H
#define HYPERLIGHT_ABI_H

/* Doorbell ops: the guest stores one u64 argument to doorbell + HL_DOORBELL_STRIDE * op
 * (the doorbell page's address is in the PEB). */
#define HL_OP_LOG 99
#define HL_OP_CALL_FUNCTION 101
#define HL_OP_ABORT 102
#define HL_OP_DEBUG_PRINT 103
#define HL_OP_HALT 108
/* Exitless mode (docs/exitless.md): the guest idles (argument 0; the host re-enters it when
 * there is work), and the guest posted a message while the host sleeps (argument 0). */
#define HL_OP_PARK 110
#define HL_OP_WAKE 111
#define HL_DOORBELL_STRIDE 8
#define HL_DEBUG_PRINT_MAX 0x10000

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
#define HL_PEB_OFF_DOORBELL_SIZE 80
#define HL_PEB_OFF_DOORBELL_PTR 88
#define HL_PEB_OFF_MAGIC 96
#define HL_PEB_OFF_ABI_VERSION 104
/* A random seed the host writes per sandbox (and on a reseeding restore); rand() reseeds
 * from it whenever it changes. */
#define HL_PEB_OFF_RANDOM_SEED 112
#define HL_PEB_SIZE 120
/* Exitless mode, in the PEB's page just past the PEB: the mailbox page (0: none). The host
 * fills these and resumes the guest's init Halt with RCX = 1; the SDK then serves calls
 * through the mailbox. */
#define HL_PEB_OFF_MAILBOX_SIZE 120
#define HL_PEB_OFF_MAILBOX_PTR 128
/* The bytes "HLTSPEB1" read as a little-endian u64. */
#define HL_PEB_MAGIC 0x3142455053544C48ULL
#define HL_ABI_VERSION 2

/* Regions the host mapped with mapRegion(): a u64 count at this PEB offset, then up to
 * HL_MAPPED_REGIONS_MAX entries of three u64: base, size, flags (bit 0 writable). */
#define HL_PEB_OFF_REGIONS 0x800
#define HL_MAPPED_REGION_ENTRY_SIZE 24
#define HL_MAPPED_REGIONS_MAX 16
#define HL_MAPPED_REGION_WRITABLE 1

/* The mailbox page (exitless mode). Host -> guest: a u32 word `seq << 4 | command` at
 * HL_MB_OFF_HOST_WORD; guest -> host: the u64 argument at HL_MB_OFF_GUEST_ARG, then the u32
 * word `seq << 8 | op` at HL_MB_OFF_GUEST_WORD (op: a doorbell op). Each side bumps its seq
 * (28 / 24 bits, wrapping) once per message. */
#define HL_MB_OFF_HOST_WORD 0
#define HL_MB_OFF_SPIN_TICKS 8
#define HL_MB_OFF_WAITING 16
#define HL_MB_OFF_GUEST_WORD 64
#define HL_MB_OFF_GUEST_ARG 72
#define HL_MB_OFF_GUEST_STATE 128
#define HL_MB_CMD_CALL 1
#define HL_MB_CMD_REPLY 2
#define HL_MB_CMD_PARK 3

/* Inline messages (exitless mode, docs/exitless.md "Inline messages"): a call, host call or
 * result whose values are all scalars travels in the mailbox page itself, in the cache line
 * of the word that announces it, instead of as a flatbuffer on an I/O stack. Each side says
 * at start-up that it understands them (a features word, bit HL_MB_FEATURE_INLINE). A record
 * is 40 bytes: u8 name length, u8 parameter count, u8 type (a call's return type, or the
 * type of the value carried), u8 0, u8 parameter types[4] (hl_ParameterType), u64 values[4]
 * (a 32-bit value zero-extended, a Bool 0 or 1); the name's bytes are in a line of their own. */
#define HL_MB_OFF_HOST_FEATURES 20
#define HL_MB_OFF_HOST_RECORD 24
#define HL_MB_OFF_GUEST_RECORD 80
#define HL_MB_OFF_GUEST_FEATURES 140
#define HL_MB_OFF_HOST_NAME 256
#define HL_MB_OFF_GUEST_NAME 384
#define HL_MB_FEATURE_INLINE 1
#define HL_MB_REC_OFF_NAME_LEN 0
#define HL_MB_REC_OFF_COUNT 1
#define HL_MB_REC_OFF_TYPE 2
#define HL_MB_REC_OFF_PTYPES 4
#define HL_MB_REC_OFF_VALUES 8
#define HL_MB_REC_MAX_PARAMS 4
#define HL_MB_NAME_MAX 120
/* A call in the host record (host -> guest). */
#define HL_MB_CMD_CALL_INLINE 4
/* The reply to a host call: its value in the host record. */
#define HL_MB_CMD_REPLY_INLINE 5
/* Guest -> host, mailbox only: a host call in the guest record; the call's value in the guest
 * record, with a Halt's argument (the command word of the call it ends). */
#define HL_OP_CALL_INLINE 112
#define HL_OP_HALT_INLINE 113

/* Aborts: at most this many message bytes are kept by the host. */
#define HL_ABORT_MAX_BYTES 1024

/* I/O buffer stacks: bytes 0..8 hold the stack pointer; 8 means empty. */
#define HL_IOBUF_EMPTY_SP 8

#endif
