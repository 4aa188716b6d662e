// The host's side of the mailbox page (docs/exitless.md): posting commands, polling the guest's word, and copying guest messages out exactly once before they are checked. No thread or call logic.
import {
  IOBUF_EMPTY_SP, MB_OFF_GUEST_ARG, MB_OFF_GUEST_WORD, MB_OFF_HOST_WORD, MB_OFF_SPIN_TICKS, MB_OFF_WAITING,
} from '../sandbox/abi.js';
import { GuestProtocolError } from '../sandbox/errors.js';
import { popElement } from '../sandbox/iobuf.js';

const HOST_SEQ_MASK = 0x0fff_ffff;
const TWO_32 = 0x1_0000_0000;

/**
 * One sandbox's mailbox page in guest memory. The guest may rewrite any of its bytes at any
 * time: every word is read once (Atomics.load) and what it names is checked by the caller.
 */
export class HostMailbox {
  /** FFI: a view of the mailbox page inside guest memory; the sandbox's memory outlives it. */
  readonly #w: Uint32Array;
  #hostSeq = 0;
  #guestSeen = 0;

  constructor(memory: Uint8Array, readonly gpa: number) {
    this.#w = new Uint32Array(memory.buffer, memory.byteOffset + gpa, 1024);
  }

  /** Zeroes the page and sets the guest's spin budget in TSC ticks. */
  reset(spinTicks: number): void {
    this.#w.fill(0);
    this.#w[MB_OFF_SPIN_TICKS / 4] = spinTicks % TWO_32;
    this.#w[MB_OFF_SPIN_TICKS / 4 + 1] = Math.floor(spinTicks / TWO_32);
    this.#hostSeq = 0;
    this.#guestSeen = 0;
  }

  /** Takes the sequence numbers from the page as it is now (after a restore put it back). */
  resync(): void {
    this.#hostSeq = (Atomics.load(this.#w, MB_OFF_HOST_WORD / 4) >>> 4) & HOST_SEQ_MASK;
    this.#guestSeen = Atomics.load(this.#w, MB_OFF_GUEST_WORD / 4);
  }

  /** Posts command `cmd` (MB_CMD_*): one seq-cst store of `seq << 4 | cmd`; returns the word. */
  post(cmd: number): number {
    this.#hostSeq = (this.#hostSeq + 1) & HOST_SEQ_MASK;
    const word = ((this.#hostSeq << 4) | cmd) >>> 0;
    Atomics.store(this.#w, MB_OFF_HOST_WORD / 4, word);
    return word;
  }

  /** The guest's new word (`seq << 8 | op`) if it posted since the last poll, else 0. */
  poll(): number {
    const w = Atomics.load(this.#w, MB_OFF_GUEST_WORD / 4);
    if (w === this.#guestSeen) return 0;
    this.#guestSeen = w;
    return w === 0 ? 0x100 : w; // a guest that wrote 0 posts op 0 (a protocol error), never "nothing"
  }

  /** The argument of the message just polled, low and high halves (each read once). */
  argLow(): number {
    return Atomics.load(this.#w, MB_OFF_GUEST_ARG / 4);
  }

  argHigh(): number {
    return Atomics.load(this.#w, MB_OFF_GUEST_ARG / 4 + 1);
  }

  /** Tells the guest whether the host sleeps (then it rings OP_WAKE after posting). */
  setWaiting(on: boolean): void {
    Atomics.store(this.#w, MB_OFF_WAITING / 4, on ? 1 : 0);
  }
}

/**
 * Copies the guest's output stack out of guest memory once, then pops its top element from
 * the copy: the checks and the decoder see bytes the guest can no longer change. The
 * popped stack pointer is written back to guest memory, as a pop there would.
 */
export class OutputCopier {
  readonly #scratch: Uint8Array;
  readonly #scratchView: DataView;
  /** Guest memory as a Buffer (no copy): its copy() takes offsets, so a pop makes no view. */
  readonly #memory: Buffer;
  /** Highest stack pointer seen since the last `clearHigh()` (a working-set restore puts that much back). */
  high = IOBUF_EMPTY_SP;

  constructor(memory: Uint8Array, private readonly view: DataView, private readonly gpa: number,
    private readonly size: number) {
    this.#scratch = new Uint8Array(size);
    this.#scratchView = new DataView(this.#scratch.buffer);
    this.#memory = Buffer.from(memory.buffer, memory.byteOffset, memory.length);
  }

  /** The top element, as a view of the host's copy (valid until the next pop). */
  pop(): Uint8Array {
    const lo = this.view.getUint32(this.gpa, true);
    const hi = this.view.getUint32(this.gpa + 4, true);
    if (hi !== 0 || lo < IOBUF_EMPTY_SP || lo > this.size) {
      throw new GuestProtocolError(`output buffer stack pointer ${hi * TWO_32 + lo} is outside [${IOBUF_EMPTY_SP}, ${this.size}]`);
    }
    if (lo > this.high) this.high = lo;
    // One copy of the used part, then the stack pointer as it was read (not as copied).
    this.#memory.copy(this.#scratch, 0, this.gpa, this.gpa + lo);
    this.#scratchView.setUint32(0, lo, true);
    this.#scratchView.setUint32(4, 0, true);
    const element = popElement(this.#scratch, this.#scratchView, 0, this.size);
    this.view.setUint32(this.gpa, this.#scratchView.getUint32(0, true), true);
    this.view.setUint32(this.gpa + 4, 0, true);
    return element;
  }
}
