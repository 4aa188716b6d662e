// The guest ABI constants (docs/guest-abi.md: the doorbell, the PEB, aborts, I/O buffers) and the PEB writer; it does not lay out guest memory or run anything.
// The C side is guests/sdk/include/hyperlight/abi.h (same names with an `HL_` prefix);
// test/unit/abi-agreement.test.ts checks that the two agree.
import { ConfigInvalidError, GuestMemoryBoundsError } from '../errors.js';

// ---- The doorbell (the guest stores one u64 to doorbell + 8 * op) ----
// A store to the doorbell page (PEB doorbell pointer) is the guest's only way out: the page
// is mapped user-writable but has no memory behind it, so KVM exits with KVM_EXIT_MMIO and
// the host reads the op from the address and the u64 argument from the data. The op
// numbers are Hyperlight's port numbers.
/** A GuestLogData was pushed onto the output buffer; argument 0. */
export const OP_LOG = 99;
/** A FunctionCall (type host) was pushed onto the output buffer; argument 0. */
export const OP_CALL_FUNCTION = 101;
/** The guest aborts; argument = record address | record length << 32 (code byte, then message). */
export const OP_ABORT = 102;
/** Text to print; argument = address | length << 32 (UTF-8, at most DEBUG_PRINT_MAX bytes). */
export const OP_DEBUG_PRINT = 103;
/** Init or call finished; argument = the dispatch address at init, 0 after a call. */
export const OP_HALT = 108;
/** Exitless mode: the guest idles until the host re-enters it (argument 0). */
export const OP_PARK = 110;
/** Exitless mode: the guest posted a mailbox message while the host sleeps (argument 0). */
export const OP_WAKE = 111;
/** Bytes between two ops' doorbell addresses (each store is one aligned u64). */
export const DOORBELL_STRIDE = 8;
/** Largest DebugPrint the host reads in one exit, in bytes. */
export const DEBUG_PRINT_MAX = 0x10000;

// ---- PEB: 15 little-endian u64 fields, read-only to the guest ----
export const PEB_OFF_INPUT_SIZE = 0;
export const PEB_OFF_INPUT_PTR = 8;
export const PEB_OFF_OUTPUT_SIZE = 16;
export const PEB_OFF_OUTPUT_PTR = 24;
export const PEB_OFF_INIT_SIZE = 32;
export const PEB_OFF_INIT_PTR = 40;
export const PEB_OFF_HEAP_SIZE = 48;
export const PEB_OFF_HEAP_PTR = 56;
export const PEB_OFF_STACK_SIZE = 64;
export const PEB_OFF_STACK_PTR = 72;
export const PEB_OFF_DOORBELL_SIZE = 80;
export const PEB_OFF_DOORBELL_PTR = 88;
export const PEB_OFF_MAGIC = 96;
export const PEB_OFF_ABI_VERSION = 104;
/**
 * A random u64 the host writes for each sandbox (and on `restore(s, { reseed: true })`);
 * the SDK reseeds `rand()` whenever it differs from the value it last saw.
 */
export const PEB_OFF_RANDOM_SEED = 112;
/** Size of the PEB in bytes. */
export const PEB_SIZE = 120;
/**
 * Exitless mode, in the PEB's page just past the PEB (docs/exitless.md): size and guest
 * address of the mailbox page (0: none). The host fills them and resumes the guest's init
 * Halt with RCX = 1.
 */
export const PEB_OFF_MAILBOX_SIZE = 120;
export const PEB_OFF_MAILBOX_PTR = 128;

// ---- The mailbox page (exitless mode) ----
// Host -> guest: a u32 word `seq << 4 | command`; guest -> host: the u64 argument, then a
// u32 word `seq << 8 | op` (op: a doorbell op). Each side bumps its seq once per message.
export const MB_OFF_HOST_WORD = 0;
/** u64: TSC ticks the guest polls before it parks. */
export const MB_OFF_SPIN_TICKS = 8;
/** u32: nonzero while the host sleeps; the guest then rings OP_WAKE after posting. */
export const MB_OFF_WAITING = 16;
export const MB_OFF_GUEST_WORD = 64;
export const MB_OFF_GUEST_ARG = 72;
/** The guest's own mailbox state (its sequence numbers) from here on. */
export const MB_OFF_GUEST_STATE = 128;
export const MB_CMD_CALL = 1;
export const MB_CMD_REPLY = 2;
export const MB_CMD_PARK = 3;

// ---- Inline messages (exitless mode, docs/exitless.md "Inline messages") ----
// A call, host call or result whose values are all scalars travels in the mailbox page, in
// the cache line of the word that announces it: a 40-byte record (u8 name length, u8
// parameter count, u8 type, u8 0, u8 parameter types[4], u64 values[4]); the name's bytes
// in a line of their own. Used only when both sides set MB_FEATURE_INLINE in their features word.
export const MB_OFF_HOST_FEATURES = 20;
export const MB_OFF_HOST_RECORD = 24;
export const MB_OFF_GUEST_RECORD = 80;
export const MB_OFF_GUEST_FEATURES = 140;
export const MB_OFF_HOST_NAME = 256;
export const MB_OFF_GUEST_NAME = 384;
export const MB_FEATURE_INLINE = 1;
export const MB_REC_OFF_NAME_LEN = 0;
export const MB_REC_OFF_COUNT = 1;
export const MB_REC_OFF_TYPE = 2;
export const MB_REC_OFF_PTYPES = 4;
export const MB_REC_OFF_VALUES = 8;
export const MB_REC_MAX_PARAMS = 4;
export const MB_NAME_MAX = 120;
/** A call in the host record. */
export const MB_CMD_CALL_INLINE = 4;
/** A host call's value in the host record. */
export const MB_CMD_REPLY_INLINE = 5;
/** Mailbox only: a host call in the guest record. */
export const OP_CALL_INLINE = 112;
/** Mailbox only: the call's value in the guest record; the argument as a Halt's. */
export const OP_HALT_INLINE = 113;
/** The bytes "HLTSPEB1" read as a little-endian u64. */
export const PEB_MAGIC = 0x3142455053544C48n;
/** Version of this ABI, stored in the PEB (2: ring-3 guests and the doorbell). */
export const ABI_VERSION = 2;

// ---- Aborts ----
/** The host keeps at most this many message bytes of one abort. */
export const ABORT_MAX_BYTES = 1024;

// ---- I/O buffers ----
/** Stack pointer of an empty I/O buffer (bytes 0..8 hold the pointer itself). */
export const IOBUF_EMPTY_SP = 8;

/** A u64 PEB value: a non-negative safe integer or a bigint in u64. */
export type PebValue = number | bigint;

/** What the host tells the guest through the PEB. Sizes in bytes, pointers are guest addresses. */
export interface PebFields {
  inputSize: PebValue;
  inputPtr: PebValue;
  outputSize: PebValue;
  outputPtr: PebValue;
  /** 0 when there is no init data. */
  initSize: PebValue;
  /** 0 when there is no init data. */
  initPtr: PebValue;
  heapSize: PebValue;
  heapPtr: PebValue;
  stackSize: PebValue;
  /** Lowest address of the stack; the guard page lies just below. */
  stackPtr: PebValue;
  doorbellSize: PebValue;
  /** Guest address of the doorbell page. */
  doorbellPtr: PebValue;
  /** Fresh entropy for the guest's PRNG (default 0: the SDK keeps its entry seed). */
  randomSeed?: PebValue;
}

const PEB_FIELD_OFFSETS: ReadonlyArray<readonly [Exclude<keyof PebFields, 'randomSeed'>, number]> = [
  ['inputSize', PEB_OFF_INPUT_SIZE], ['inputPtr', PEB_OFF_INPUT_PTR],
  ['outputSize', PEB_OFF_OUTPUT_SIZE], ['outputPtr', PEB_OFF_OUTPUT_PTR],
  ['initSize', PEB_OFF_INIT_SIZE], ['initPtr', PEB_OFF_INIT_PTR],
  ['heapSize', PEB_OFF_HEAP_SIZE], ['heapPtr', PEB_OFF_HEAP_PTR],
  ['stackSize', PEB_OFF_STACK_SIZE], ['stackPtr', PEB_OFF_STACK_PTR],
  ['doorbellSize', PEB_OFF_DOORBELL_SIZE], ['doorbellPtr', PEB_OFF_DOORBELL_PTR],
];

const U64_MAX = (1n << 64n) - 1n;

function toU64(name: string, v: PebValue): bigint {
  if (typeof v === 'bigint') {
    if (v < 0n || v > U64_MAX) throw new ConfigInvalidError(`peb.${name}`, `${v} is not a u64`);
    return v;
  }
  if (!Number.isSafeInteger(v) || v < 0) {
    throw new ConfigInvalidError(`peb.${name}`, `${v} is not a non-negative safe integer`);
  }
  return BigInt(v);
}

/**
 * Writes the whole PEB (all 12 region fields, the magic, the ABI version and the random
 * seed) at `offset` of `view` (offset relative to the view). Throws ConfigInvalidError for
 * a value that is not a u64 and GuestMemoryBoundsError when the PEB does not fit in the view.
 */
export function writePeb(view: DataView, offset: number, fields: PebFields): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + PEB_SIZE > view.byteLength) {
    throw new GuestMemoryBoundsError(offset, PEB_SIZE, view.byteLength, 'the PEB view');
  }
  // Convert everything first so a bad value leaves the PEB untouched.
  const values = PEB_FIELD_OFFSETS.map(([name, off]) => [off, toU64(name, fields[name])] as const);
  const seed = toU64('randomSeed', fields.randomSeed ?? 0);
  for (const [off, v] of values) view.setBigUint64(offset + off, v, true);
  view.setBigUint64(offset + PEB_OFF_RANDOM_SEED, seed, true);
  view.setBigUint64(offset + PEB_OFF_MAGIC, PEB_MAGIC, true);
  view.setBigUint64(offset + PEB_OFF_ABI_VERSION, BigInt(ABI_VERSION), true);
}

/** Writes only the PEB's random seed (a new sandbox from a template, a reseeding restore). */
export function writePebRandomSeed(view: DataView, offset: number, seed: bigint): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + PEB_SIZE > view.byteLength) {
    throw new GuestMemoryBoundsError(offset, PEB_SIZE, view.byteLength, 'the PEB view');
  }
  view.setBigUint64(offset + PEB_OFF_RANDOM_SEED, toU64('randomSeed', seed), true);
}

/**
 * The mapped-region table in the PEB page (host-written, read-only to the guest): a u64
 * count at this offset, then up to MAPPED_REGIONS_MAX entries of three u64 (base, size,
 * flags with bit 0 = writable), one per `mapRegion`.
 */
export const PEB_OFF_REGIONS = 0x800;
export const MAPPED_REGION_ENTRY_SIZE = 24;
export const MAPPED_REGIONS_MAX = 16;
export const MAPPED_REGION_WRITABLE = 1;

/** Reads a PEB back (host-side tests and debugging); every field as a bigint. */
export function readPeb(view: DataView, offset: number): Record<keyof PebFields | 'magic' | 'abiVersion', bigint> {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + PEB_SIZE > view.byteLength) {
    throw new GuestMemoryBoundsError(offset, PEB_SIZE, view.byteLength, 'the PEB view');
  }
  const out = {} as Record<keyof PebFields | 'magic' | 'abiVersion', bigint>;
  for (const [name, off] of PEB_FIELD_OFFSETS) out[name] = view.getBigUint64(offset + off, true);
  out.magic = view.getBigUint64(offset + PEB_OFF_MAGIC, true);
  out.abiVersion = view.getBigUint64(offset + PEB_OFF_ABI_VERSION, true);
  out.randomSeed = view.getBigUint64(offset + PEB_OFF_RANDOM_SEED, true);
  return out;
}
