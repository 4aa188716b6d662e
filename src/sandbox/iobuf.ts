// The I/O buffer stacks (docs/guest-abi.md) over guest memory: reset, push, pop with every guest-written pointer checked; it does not encode messages.
//
// A buffer is a region of guest memory. Bytes 0..8 hold a u64 stack pointer `sp` (offset
// from the region start of the next free byte; IOBUF_EMPTY_SP = 8 when empty). Push writes
// the element at sp, then a u64 back-pointer holding the old sp, then sp += length + 8. Pop
// reads the back-pointer at sp - 8, the u32 size prefix of the element found there, and sets
// sp back. The guest can write anything into a buffer, so every value read is checked.
//
// All functions take the whole guest memory as `mem` and `view` (a DataView over the same
// bytes with the same origin: view offset i is mem[i]) plus the region's offset and size in
// bytes. They allocate nothing except the subarray popElement returns.
import { GuestMemoryBoundsError } from '../errors.js';
import { IOBUF_EMPTY_SP } from './abi.js';
import { BufferOverflowError, GuestProtocolError } from './errors.js';

const TWO_32 = 0x1_0000_0000;
const BACK_POINTER_SIZE = 8;
const SIZE_PREFIX_SIZE = 4;
/** Up to this many bytes a prefix of an element is copied byte by byte (no subarray). */
const SMALL_COPY = 256;

function checkRegion(mem: Uint8Array, regionOffset: number, regionSize: number): void {
  if (!Number.isSafeInteger(regionOffset) || !Number.isSafeInteger(regionSize) || regionOffset < 0 ||
      regionSize < IOBUF_EMPTY_SP || regionOffset + regionSize > mem.length) {
    throw new GuestMemoryBoundsError(regionOffset, regionSize, mem.length, 'guest memory (I/O buffer region)');
  }
}

/** Reads a guest-written u64 at `p` as a number; values above 2^53 - 1 are a GuestProtocolError. */
function readU64(view: DataView, p: number, what: string): number {
  const hi = view.getUint32(p + 4, true);
  if (hi > 0x1f_ffff) throw new GuestProtocolError(`I/O buffer ${what} exceeds 2^53 - 1`);
  return hi * TWO_32 + view.getUint32(p, true);
}

/** Writes a u64 that is known to be a small non-negative integer, without a bigint. */
function writeU64(view: DataView, p: number, v: number): void {
  view.setUint32(p, v % TWO_32, true);
  view.setUint32(p + 4, Math.floor(v / TWO_32), true);
}

/** The buffer's stack pointer, checked: 8 <= sp <= regionSize, else GuestProtocolError. */
export function readStackPointer(mem: Uint8Array, view: DataView, regionOffset: number, regionSize: number): number {
  checkRegion(mem, regionOffset, regionSize);
  const sp = readU64(view, regionOffset, 'stack pointer');
  if (sp < IOBUF_EMPTY_SP || sp > regionSize) {
    throw new GuestProtocolError(`I/O buffer stack pointer ${sp} is outside [${IOBUF_EMPTY_SP}, ${regionSize}]`);
  }
  return sp;
}

/** Empties the buffer (sp = 8). Throws GuestMemoryBoundsError if the region is not inside `mem`. */
export function resetStack(mem: Uint8Array, view: DataView, regionOffset: number, regionSize: number): void {
  checkRegion(mem, regionOffset, regionSize);
  writeU64(view, regionOffset, IOBUF_EMPTY_SP);
}

/**
 * Pushes `element` (a size-prefixed flatbuffer, copied in; only its first `length` bytes
 * when given) onto the buffer. Throws
 * BufferOverflowError (ERR_BUFFER_OVERFLOW) when element + back-pointer do not fit, and
 * GuestProtocolError when the guest left a bad stack pointer.
 */
export function pushElement(mem: Uint8Array, view: DataView, regionOffset: number, regionSize: number, element: Uint8Array,
  length = element.length): void {
  const sp = readStackPointer(mem, view, regionOffset, regionSize);
  const needed = length + BACK_POINTER_SIZE;
  if (needed > regionSize - sp) throw new BufferOverflowError(needed, regionSize - sp);
  const at = regionOffset + sp;
  if (length === element.length) mem.set(element, at);
  else if (length <= SMALL_COPY) for (let i = 0; i < length; i++) mem[at + i] = element[i]!;
  else mem.set(element.subarray(0, length), at);
  writeU64(view, at + length, sp);
  writeU64(view, regionOffset, sp + needed);
}

/**
 * Pops the top element and returns it (size prefix included) as a subarray of `mem`, valid
 * until guest memory is written again: decode or copy it first. Checks sp within
 * [8, regionSize], the back-pointer within [8, sp - 12], and that the element (4 + its u32
 * size prefix) ends at or before the back-pointer; any violation, or an empty buffer, is a
 * GuestProtocolError and leaves sp unchanged.
 */
export function popElement(mem: Uint8Array, view: DataView, regionOffset: number, regionSize: number): Uint8Array {
  const sp = readStackPointer(mem, view, regionOffset, regionSize);
  if (sp === IOBUF_EMPTY_SP) throw new GuestProtocolError('pop from an empty I/O buffer');
  if (sp < IOBUF_EMPTY_SP + SIZE_PREFIX_SIZE + BACK_POINTER_SIZE) {
    throw new GuestProtocolError(`I/O buffer stack pointer ${sp} leaves no room for an element`);
  }
  const limit = sp - BACK_POINTER_SIZE;
  const bp = readU64(view, regionOffset + limit, 'back-pointer');
  if (bp < IOBUF_EMPTY_SP || bp > limit - SIZE_PREFIX_SIZE) {
    throw new GuestProtocolError(`I/O buffer back-pointer ${bp} is outside [${IOBUF_EMPTY_SP}, ${limit - SIZE_PREFIX_SIZE}]`);
  }
  const size = view.getUint32(regionOffset + bp, true);
  if (size > limit - bp - SIZE_PREFIX_SIZE) {
    throw new GuestProtocolError(`I/O buffer element at ${bp} claims ${size} bytes but only ${limit - bp - SIZE_PREFIX_SIZE} lie before the back-pointer`);
  }
  writeU64(view, regionOffset, bp);
  return mem.subarray(regionOffset + bp, regionOffset + bp + SIZE_PREFIX_SIZE + size);
}

/**
 * A sandbox's two I/O buffers (input: host to guest; output: guest to host) over its guest
 * memory, with a record of how far the host wrote into each since the last snapshot or
 * restore (those bytes are not in KVM's dirty log: the host writes them itself).
 */
export class IoBuffers {
  readonly #mem: Uint8Array;
  readonly #view: DataView;
  readonly #input: { gpa: number; size: number };
  readonly #output: { gpa: number; size: number };
  /** Highest byte offset (exclusive) the host wrote into each buffer since `clearHostWrites()`. */
  hostWriteEndInput = 0;
  hostWriteEndOutput = 0;

  constructor(mem: Uint8Array, view: DataView, input: { gpa: number; size: number }, output: { gpa: number; size: number }) {
    this.#mem = mem;
    this.#view = view;
    this.#input = input;
    this.#output = output;
  }

  /** Empties both buffers and pushes `message` (its first `length` bytes) onto the input buffer. */
  startCall(message: Uint8Array, length = message.length): void {
    this.emptyStacks();
    this.pushInput(message, length);
    if (this.hostWriteEndOutput < IOBUF_EMPTY_SP) this.hostWriteEndOutput = IOBUF_EMPTY_SP;
  }

  /** Empties both buffers (their stack pointers back to 8). */
  emptyStacks(): void {
    resetStack(this.#mem, this.#view, this.#output.gpa, this.#output.size);
    resetStack(this.#mem, this.#view, this.#input.gpa, this.#input.size);
  }

  /** Pushes a message (its first `length` bytes) onto the input buffer (a call, or a host-call result). */
  pushInput(message: Uint8Array, length = message.length): void {
    const inp = this.#input;
    pushElement(this.#mem, this.#view, inp.gpa, inp.size, message, length);
    const sp = readU64(this.#view, inp.gpa, 'stack pointer'); // as pushElement just wrote it
    if (sp > this.hostWriteEndInput) this.hostWriteEndInput = sp;
  }

  /** Pops the guest's latest message from the output buffer (a view, valid until the next write). */
  popOutput(): Uint8Array {
    return popElement(this.#mem, this.#view, this.#output.gpa, this.#output.size);
  }

  clearHostWrites(): void {
    this.hostWriteEndInput = 0;
    this.hostWriteEndOutput = 0;
  }
}
