// The shared-memory channel between an AsyncSandbox (main thread) and the worker that owns
// its VM: control words and one message area per direction in a SharedArrayBuffer, each
// message encoded as bytes. The worker blocks in Atomics.wait (after a short poll); it tells
// the main thread about each message it writes by a byte on a pipe (the doorbell) that the
// main thread's event loop watches, so that thread never blocks. A message too large for
// its area goes, as the same bytes, over a MessagePort that the receiver reads synchronously
// (receiveMessageOnPort). No sandbox logic here.
import { Buffer } from 'node:buffer';
import net from 'node:net';
import v8 from 'node:v8';
import { type MessagePort, receiveMessageOnPort } from 'node:worker_threads';
import { close, pipe, schedYield, write } from '../kvm/libc.js';
import type { GuestLogRecord } from '../sandbox/codec.js';
import type { ParameterTypeName, PlainValue, ReturnTypeName, TypedValue } from '../sandbox/values.js';
import type { CallMeasure, FromWorker, HostReply, HostRequest, ToWorker, WireThrown } from './wire.js';

// ---- the control words (Int32 indices) -------------------------------------------------

/** Bumped by the main thread after each message to the worker and each cancel: the worker waits on it. */
export const CTL_WAKE = 0;
/** The id of the operation the main thread wants stopped (0: none). */
export const CTL_CANCEL = 1;
/** Set to 1 by the worker right before it starts closing its sandbox (then the main thread
 * must not release the VM itself, whatever happens to the thread). */
export const CTL_CLOSING = 2;
/** Messages the main thread has written to the worker's area. */
const CTL_DOWN = 3;
/** Byte length of the latest message to the worker (-1: it went over the port). */
const CTL_DOWN_LEN = 4;
/** Messages the worker has written to the main thread's area. */
const CTL_UP = 5;
/** Messages of the worker the main thread has read (the worker writes the next one only then). */
const CTL_UP_READ = 6;
const CTL_UP_LEN = 7;
/**
 * 1 + the word the worker sleeps on in Atomics.wait (0: it is awake, polling or working).
 * Whoever bumps a word notifies only when the worker sleeps on it: an Atomics.notify takes
 * a process-wide lock of V8 whether or not anyone waits, and most messages find the worker
 * polling. (The worker sets this before its last check of the word; the other side bumps
 * the word before it reads this: with sequentially consistent atomics one of them sees the
 * other's write, so no wake-up is lost.)
 */
const CTL_SLEEPING = 8;
const HEADER_BYTES = 64;

/** Bytes of each direction's area, from the guest's buffer sizes (bigger messages take the port). */
export function channelBytes(inputDataSize: number, outputDataSize: number): number {
  const area = Math.min(Math.max(inputDataSize, outputDataSize) + 4096, 1 << 20);
  return HEADER_BYTES + 2 * (Math.ceil(area / 8) * 8);
}

/**
 * How long the worker polls a word before it sleeps in Atomics.wait (ms), adapted to the
 * gaps it sees: a message that the poll would have caught with a longer poll (the worker
 * slept, and was woken less than SPIN_MAX_MS after it began to wait) lengthens the poll to
 * 1.5 times that wait; a wait longer than SPIN_MAX_MS halves it, down to SPIN_MIN_MS. So a
 * caller that makes its calls back to back finds the worker awake (no futex wake-up, which
 * costs tens of microseconds on a VM whose idle CPUs halt), and an idle sandbox polls for at
 * most SPIN_MIN_MS after a burst before it sleeps. Each poll yields the CPU (sched_yield), so
 * on a machine with no idle CPU the poll costs the other threads nothing.
 */
const SPIN_MIN_MS = 0.01;
const SPIN_MAX_MS = 0.2;
let spinMs = 0.05;
/** Whether the worker polls at all (an exitless sandbox's worker does not: its vCPU thread already keeps a CPU busy). */
let polling = true;

/**
 * Makes this thread's waits sleep at once, without the poll: for a worker whose exitless
 * vCPU spins on another thread, so that a CPU stays free for the main thread's wake-up.
 */
export function sleepWithoutPolling(): void {
  polling = false;
}

// ---- bytes -----------------------------------------------------------------------------

/** Appends values to a message: in the shared area while they fit, else in a private buffer that grows. */
export class Writer {
  readonly #area: Uint8Array;
  #buf: Buffer;
  #view: DataView;
  pos = 0;

  constructor(area: Uint8Array) {
    this.#area = area;
    this.#buf = Buffer.from(area.buffer, area.byteOffset, area.byteLength);
    this.#view = new DataView(area.buffer, area.byteOffset, area.byteLength);
  }

  reset(): this {
    if (this.#buf.buffer !== this.#area.buffer) {
      this.#buf = Buffer.from(this.#area.buffer, this.#area.byteOffset, this.#area.byteLength);
      this.#view = new DataView(this.#area.buffer, this.#area.byteOffset, this.#area.byteLength);
    }
    this.pos = 0;
    return this;
  }

  /** Whether the message is in the shared area (else `bytes()` must go over the port). */
  get inArea(): boolean {
    return this.#buf.buffer === this.#area.buffer;
  }

  /** The message written so far. */
  bytes(): Uint8Array {
    return this.#buf.subarray(0, this.pos);
  }

  #room(n: number): void {
    if (this.pos + n <= this.#buf.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(this.#buf.length * 2, this.pos + n));
    this.#buf.copy(grown, 0, 0, this.pos);
    this.#buf = grown;
    this.#view = new DataView(grown.buffer, grown.byteOffset, grown.byteLength);
  }

  u8(v: number): void {
    this.#room(1);
    this.#buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.#room(4);
    this.#view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  f64(v: number): void {
    this.#room(8);
    this.#view.setFloat64(this.pos, v, true);
    this.pos += 8;
  }

  i64(v: bigint): void {
    this.#room(8);
    this.#view.setBigInt64(this.pos, v, true);
    this.pos += 8;
  }

  u64(v: bigint): void {
    this.#room(8);
    this.#view.setBigUint64(this.pos, v, true);
    this.pos += 8;
  }

  str(s: string): void {
    const max = s.length * 3;
    this.#room(4 + (this.pos + 4 + max <= this.#buf.length ? max : Buffer.byteLength(s)));
    const n = this.#buf.write(s, this.pos + 4, 'utf8');
    this.#view.setUint32(this.pos, n, true);
    this.pos += 4 + n;
  }

  raw(b: Uint8Array): void {
    this.#room(4 + b.length);
    this.#view.setUint32(this.pos, b.length, true);
    this.#buf.set(b, this.pos + 4);
    this.pos += 4 + b.length;
  }
}

/** Reads the values of one message, bounds-checked. */
export class Reader {
  readonly #buf: Buffer;
  readonly #view: DataView;
  #pos = 0;
  #end: number;

  constructor(bytes: Uint8Array) {
    this.#buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#end = bytes.byteLength;
  }

  /** Starts over on the first `length` bytes (the area's reader, reused for every message). */
  first(length: number): this {
    if (length < 0 || length > this.#buf.length) throw new RangeError(`sandbox channel: message length ${length} out of bounds`);
    this.#pos = 0;
    this.#end = length;
    return this;
  }

  #take(n: number): number {
    const at = this.#pos;
    if (at + n > this.#end) throw new RangeError(`sandbox channel message truncated: ${n} bytes at ${at} of ${this.#end}`);
    this.#pos = at + n;
    return at;
  }

  u8(): number {
    return this.#buf[this.#take(1)]!;
  }

  u32(): number {
    return this.#view.getUint32(this.#take(4), true);
  }

  f64(): number {
    return this.#view.getFloat64(this.#take(8), true);
  }

  i64(): bigint {
    return this.#view.getBigInt64(this.#take(8), true);
  }

  u64(): bigint {
    return this.#view.getBigUint64(this.#take(8), true);
  }

  str(): string {
    const n = this.u32();
    const at = this.#take(n);
    return this.#buf.toString('utf8', at, at + n);
  }

  /** A copy (the area is reused by the next message). */
  raw(): Uint8Array {
    const n = this.u32();
    const at = this.#take(n);
    const copy = new Uint8Array(n);
    copy.set(this.#buf.subarray(at, at + n));
    return copy;
  }
}

// ---- values ----------------------------------------------------------------------------

const TYPE_NAMES: readonly ReturnTypeName[] = ['Void', 'Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'VecBytes'];
const TYPE_INDEX: ReadonlyMap<string, number> = new Map(TYPE_NAMES.map((t, i) => [t, i]));

function typeName(i: number): ReturnTypeName {
  const t = TYPE_NAMES[i];
  if (t === undefined) throw new RangeError(`sandbox channel: unknown type ${i}`);
  return t;
}

function typeIndex(t: string): number {
  const i = TYPE_INDEX.get(t);
  if (i === undefined) throw new RangeError(`sandbox channel: unknown type ${t}`);
  return i;
}

function writeTyped(w: Writer, v: TypedValue): void {
  w.u8(typeIndex(v.type));
  switch (v.type) {
    case 'Long': w.i64(v.value); break;
    case 'ULong': w.u64(v.value); break;
    case 'String': w.str(v.value); break;
    case 'Bool': w.u8(v.value ? 1 : 0); break;
    case 'VecBytes': w.raw(v.value); break;
    default: w.f64(v.value);
  }
}

function readTyped(r: Reader): TypedValue {
  const type = typeName(r.u8()) as ParameterTypeName;
  switch (type) {
    case 'Long': return { type, value: r.i64() };
    case 'ULong': return { type, value: r.u64() };
    case 'String': return { type, value: r.str() };
    case 'Bool': return { type, value: r.u8() !== 0 };
    case 'VecBytes': return { type, value: r.raw() };
    default: return { type, value: r.f64() };
  }
}

const P_UNDEFINED = 0, P_NUMBER = 1, P_I64 = 2, P_U64 = 3, P_STRING = 4, P_FALSE = 5, P_TRUE = 6, P_BYTES = 7;

function writePlain(w: Writer, v: PlainValue): void {
  switch (typeof v) {
    case 'undefined': w.u8(P_UNDEFINED); break;
    case 'number': w.u8(P_NUMBER); w.f64(v); break;
    case 'bigint':
      if (v < 0n) {
        w.u8(P_I64);
        w.i64(v);
      } else {
        w.u8(P_U64);
        w.u64(v);
      }
      break;
    case 'string': w.u8(P_STRING); w.str(v); break;
    case 'boolean': w.u8(v ? P_TRUE : P_FALSE); break;
    default: w.u8(P_BYTES); w.raw(v);
  }
}

function readPlain(r: Reader): PlainValue {
  const tag = r.u8();
  switch (tag) {
    case P_UNDEFINED: return undefined;
    case P_NUMBER: return r.f64();
    case P_I64: return r.i64();
    case P_U64: return r.u64();
    case P_STRING: return r.str();
    case P_FALSE: return false;
    case P_TRUE: return true;
    case P_BYTES: return r.raw();
    default: throw new RangeError(`sandbox channel: unknown value tag ${tag}`);
  }
}

/** Values of any kind (errors, log records) by the structured-clone serializer: rare paths only. */
function writeCloned(w: Writer, v: unknown): void {
  w.raw(v8.serialize(v));
}

function readCloned(r: Reader): unknown {
  return v8.deserialize(r.raw());
}

// ---- messages --------------------------------------------------------------------------

const D_CALL = 1, D_SNAPSHOT = 2, D_RESTORE = 3, D_DROP = 4, D_CLOSE = 5, D_REPLY = 6, D_MAP = 7;
const U_DONE = 1, U_HOST = 2, U_PRINT = 3, U_LOG = 4;

/** What the main thread sends: an operation, or the answer to the worker's host request. */
export type Down = ToWorker | ({ op: 'reply' } & HostReply);

function writeDown(w: Writer, m: Down): void {
  switch (m.op) {
    case 'call':
      w.u8(D_CALL);
      w.u32(m.id);
      w.u8(m.observe ? 1 : 0);
      w.u32(m.restoreAfter);
      w.str(m.name);
      w.u8(typeIndex(m.returns));
      w.u32(m.params.length);
      for (const p of m.params) writeTyped(w, p);
      break;
    case 'snapshot': w.u8(D_SNAPSHOT); w.u32(m.id); break;
    case 'restore': w.u8(D_RESTORE); w.u32(m.id); w.u32(m.snapshot); break;
    case 'drop': w.u8(D_DROP); w.u32(m.id); w.u32(m.snapshot); break;
    case 'map':
      w.u8(D_MAP);
      w.u32(m.id);
      writePlain(w, m.source);
      writePlain(w, m.guestAddress);
      w.u8(m.writable ? 1 : 0);
      break;
    case 'close': w.u8(D_CLOSE); w.u32(m.id); break;
    case 'reply':
      w.u8(D_REPLY);
      w.u32(m.seq);
      if (m.ok) {
        w.u8(1);
        writePlain(w, m.value);
      } else {
        w.u8(0);
        w.str(m.message);
      }
      break;
  }
}

function readDown(r: Reader): Down {
  const kind = r.u8();
  switch (kind) {
    case D_CALL: {
      const id = r.u32();
      const observe = r.u8() !== 0;
      const restoreAfter = r.u32();
      const name = r.str();
      const returns = typeName(r.u8());
      const params: TypedValue[] = new Array<TypedValue>(r.u32());
      for (let i = 0; i < params.length; i++) params[i] = readTyped(r);
      return { op: 'call', id, name, returns, params, observe, restoreAfter };
    }
    case D_SNAPSHOT: return { op: 'snapshot', id: r.u32() };
    case D_RESTORE: return { op: 'restore', id: r.u32(), snapshot: r.u32() };
    case D_DROP: return { op: 'drop', id: r.u32(), snapshot: r.u32() };
    case D_MAP: {
      const id = r.u32();
      const source = readPlain(r);
      const guestAddress = readPlain(r);
      if (!(source instanceof Uint8Array) && typeof source !== 'string') throw new RangeError('sandbox channel: a map source must be bytes or a path');
      if (typeof guestAddress !== 'bigint' && typeof guestAddress !== 'number') throw new RangeError('sandbox channel: a map address must be a number');
      return { op: 'map', id, source, guestAddress, writable: r.u8() === 1 };
    }
    case D_CLOSE: return { op: 'close', id: r.u32() };
    case D_REPLY: {
      const seq = r.u32();
      return r.u8() === 1 ? { op: 'reply', seq, ok: true, value: readPlain(r) } : { op: 'reply', seq, ok: false, message: r.str() };
    }
    default: throw new RangeError(`sandbox channel: unknown message ${kind} to the worker`);
  }
}

/** What the worker sends: an operation's outcome, or a host request. */
export type Up = Exclude<FromWorker, { kind: 'ready' } | { kind: 'failed' }>;

function writeUp(w: Writer, m: Up): void {
  switch (m.kind) {
    case 'done': {
      w.u8(U_DONE);
      w.u32(m.id);
      w.u8(m.ok ? 1 : 0);
      w.u8(m.poisoned ? 1 : 0);
      const measure = m.measure;
      w.u8(measure === undefined ? 0 : 1);
      if (measure !== undefined) {
        w.f64(measure.guestNs);
        w.f64(measure.hostNs);
        w.u32(measure.exits);
        w.u32(measure.hostCalls);
      }
      if (m.ok) writePlain(w, m.value);
      else writeCloned(w, m.error);
      break;
    }
    case 'host':
      w.u8(U_HOST);
      w.u32(m.op);
      w.u32(m.seq);
      w.str(m.name);
      w.u32(m.args.length);
      for (const a of m.args) writePlain(w, a);
      break;
    case 'print': w.u8(U_PRINT); w.u32(m.op); w.u32(m.seq); w.str(m.text); break;
    case 'log': w.u8(U_LOG); w.u32(m.op); w.u32(m.seq); writeCloned(w, m.record); break;
  }
}

function readUp(r: Reader): Up {
  const kind = r.u8();
  switch (kind) {
    case U_DONE: {
      const id = r.u32();
      const ok = r.u8() === 1;
      const poisoned = r.u8() === 1;
      let measure: CallMeasure | undefined;
      if (r.u8() === 1) measure = { guestNs: r.f64(), hostNs: r.f64(), exits: r.u32(), hostCalls: r.u32() };
      return ok ? { kind: 'done', id, ok, value: readPlain(r), poisoned, measure }
        : { kind: 'done', id, ok, error: readCloned(r) as WireThrown, poisoned, measure };
    }
    case U_HOST: {
      const op = r.u32();
      const seq = r.u32();
      const name = r.str();
      const args: PlainValue[] = new Array<PlainValue>(r.u32());
      for (let i = 0; i < args.length; i++) args[i] = readPlain(r);
      return { kind: 'host', op, seq, name, args } satisfies HostRequest;
    }
    case U_PRINT: return { kind: 'print', op: r.u32(), seq: r.u32(), text: r.str() };
    case U_LOG: return { kind: 'log', op: r.u32(), seq: r.u32(), record: readCloned(r) as GuestLogRecord };
    default: throw new RangeError(`sandbox channel: unknown message ${kind} from the worker`);
  }
}

// ---- the two ends ----------------------------------------------------------------------

/** The parts both ends share: the words, the two areas and the overflow port. */
class End {
  readonly control: Int32Array;
  protected readonly down: Uint8Array;
  protected readonly up: Uint8Array;
  protected readonly port: MessagePort;

  constructor(shared: SharedArrayBuffer, port: MessagePort) {
    this.control = new Int32Array(shared, 0, HEADER_BYTES / 4);
    const area = (shared.byteLength - HEADER_BYTES) / 2;
    this.down = new Uint8Array(shared, HEADER_BYTES, area);
    this.up = new Uint8Array(shared, HEADER_BYTES + area, area);
    this.port = port;
  }

  /** A reader of the latest message of one direction: in its area, or from the port when it overflowed. */
  protected received(area: Reader, length: number): Reader {
    if (length >= 0) return area.first(length);
    const got = receiveMessageOnPort(this.port);
    if (got === undefined || !(got.message instanceof Uint8Array)) {
      throw new RangeError('sandbox channel: an overflowed message is missing from the port');
    }
    return new Reader(got.message);
  }

  /** Writes a message into `area`, or over the port when it does not fit; its length word's value. */
  protected sent(w: Writer): number {
    if (w.inArea) return w.pos;
    this.port.postMessage(w.bytes().slice());
    return -1;
  }
}

/** The main thread's end: sends operations and host replies, receives (when the doorbell rings) without ever blocking. */
export class MainEnd extends End {
  readonly #writer: Writer;
  readonly #reader: Reader;
  /** Up messages handled so far. */
  #upSeen = 0;

  constructor(shared: SharedArrayBuffer, port: MessagePort) {
    super(shared, port);
    this.#writer = new Writer(this.down);
    this.#reader = new Reader(this.up);
  }

  /** Sends `m` and wakes the worker. Call only while the worker waits for it (see AsyncSandbox). */
  send(m: Down): void {
    const w = this.#writer.reset();
    writeDown(w, m);
    const c = this.control;
    Atomics.store(c, CTL_DOWN_LEN, this.sent(w));
    Atomics.add(c, CTL_DOWN, 1);
    this.wake();
  }

  /** Wakes the worker without a message (a cancel). */
  wake(): void {
    Atomics.add(this.control, CTL_WAKE, 1);
    wakeSleeper(this.control, CTL_WAKE);
  }

  /** The worker's next message, if it has written one; the worker may then write another. */
  receive(): Up | undefined {
    const c = this.control;
    const n = Atomics.load(c, CTL_UP);
    if (n === this.#upSeen) return undefined;
    this.#upSeen = n;
    const m = readUp(this.received(this.#reader, Atomics.load(c, CTL_UP_LEN)));
    Atomics.store(c, CTL_UP_READ, n);
    wakeSleeper(c, CTL_UP_READ);
    return m;
  }
}

/** The worker's end: blocks for operations and host replies, sends outcomes and requests. */
export class WorkerEnd extends End {
  readonly #writer: Writer;
  readonly #reader: Reader;
  #downSeen = 0;
  #upWritten = 0;
  /** The doorbell's write end (-1: none, both ends on one thread as in the unit tests). */
  readonly #bell: number;

  constructor(shared: SharedArrayBuffer, port: MessagePort, bell = -1) {
    super(shared, port);
    this.#writer = new Writer(this.up);
    this.#reader = new Reader(this.down);
    this.#bell = bell;
  }

  /** The main thread's next message, if there is one. */
  receive(): Down | undefined {
    const c = this.control;
    const n = Atomics.load(c, CTL_DOWN);
    if (n === this.#downSeen) return undefined;
    this.#downSeen = n;
    return readDown(this.received(this.#reader, Atomics.load(c, CTL_DOWN_LEN)));
  }

  /** The wake word's value, to `wait()` on after checking for messages and cancels. */
  wakeValue(): number {
    return Atomics.load(this.control, CTL_WAKE);
  }

  /** Blocks until the main thread bumps the wake word past `seen`. */
  wait(seen: number): void {
    pause(this.control, CTL_WAKE, seen);
  }

  /** Sends `m` once the main thread has read the previous message, and wakes it. */
  send(m: Up): void {
    const c = this.control;
    for (let read = Atomics.load(c, CTL_UP_READ); read !== this.#upWritten; read = Atomics.load(c, CTL_UP_READ)) {
      pause(c, CTL_UP_READ, read);
    }
    const w = this.#writer.reset();
    writeUp(w, m);
    Atomics.store(c, CTL_UP_LEN, this.sent(w));
    Atomics.store(c, CTL_UP, ++this.#upWritten);
    // A full pipe (EAGAIN) holds unread rings already; any other failure means the main
    // thread has closed it, and nobody is listening any more.
    if (this.#bell >= 0) write(this.#bell, RING);
  }
}

const RING = new Uint8Array([1]);

/**
 * The worker's way to wake the main thread: a pipe whose read end the main thread's event
 * loop watches (a net.Socket reading into one reused buffer). A byte written with write(2)
 * holds no lock of V8 or Node while it wakes the main thread. (Atomics.waitAsync, the
 * obvious alternative, posts its wake-up while holding V8's process-wide futex lock, which
 * the woken main thread then needs at once: on a busy machine the main thread blocked on
 * that lock about once per message, a second thread wake-up each time.)
 */
export class Doorbell {
  readonly #read: number;
  /** Give this to the worker (WorkerInit.doorbell). */
  readonly writeFd: number;
  #socket: net.Socket | undefined;
  #closed = false;

  /** @throws SyscallError when no pipe can be made (EMFILE: too many open files). */
  constructor() {
    [this.#read, this.writeFd] = pipe();
  }

  /**
   * Calls `onRing` from the event loop after the worker rang (rings close together may come
   * as one call), `onError` if the pipe fails. Does not keep the event loop alive.
   */
  listen(onRing: () => void, onError: (e: Error) => void): void {
    // `onread` (the constructor takes it as connect() does, though @types/node lists it for connect only).
    const options: net.SocketConstructorOpts & net.ConnectOpts = {
      fd: this.#read, readable: true, writable: false,
      onread: { buffer: Buffer.allocUnsafe(64), callback: () => { onRing(); return true; } },
    };
    const socket = new net.Socket(options);
    socket.on('error', onError);
    socket.unref();
    this.#socket = socket;
  }

  /** Closes both ends. Only once the worker thread is gone: a late ring would land on whatever reuses the fd number. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#socket !== undefined) this.#socket.destroy(); // closes the read end
    else close(this.#read);
    close(this.writeFd);
  }
}

/** Notifies the worker if it sleeps on word `i` (see CTL_SLEEPING). */
function wakeSleeper(c: Int32Array, i: number): void {
  if (Atomics.load(c, CTL_SLEEPING) === i + 1) Atomics.notify(c, i);
}

/** Polls word `i` (yielding the CPU between polls) for up to spinMs, then sleeps until it is no longer `seen`. */
function pause(c: Int32Array, i: number, seen: number): void {
  const t0 = performance.now();
  for (let n = 1; Atomics.load(c, i) === seen; n++) {
    if (polling) schedYield();
    if (!polling || ((n & 7) === 0 && performance.now() - t0 > spinMs)) {
      Atomics.store(c, CTL_SLEEPING, i + 1);
      if (Atomics.load(c, i) === seen) Atomics.wait(c, i, seen);
      Atomics.store(c, CTL_SLEEPING, 0);
      const waited = performance.now() - t0;
      spinMs = waited <= SPIN_MAX_MS ? Math.min(SPIN_MAX_MS, waited * 1.5) : Math.max(SPIN_MIN_MS, spinMs / 2);
      return;
    }
  }
}
