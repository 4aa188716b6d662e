// The messages between an AsyncSandbox (main thread) and the worker thread that owns its
// VM (channel.ts carries them as bytes), and errors made cloneable. No policy, no sandbox logic.
import * as baseErrors from '../errors.js';
import * as kvmErrors from '../kvm/errors.js';
import * as sandboxErrors from '../sandbox/errors.js';
import type { MessagePort } from 'node:worker_threads';
import type { ExitlessOptions } from '../exitless/exitless-sandbox.js';
import type { SandboxConfig } from '../sandbox/config.js';
import type { GuestLogRecord } from '../sandbox/codec.js';
import type { ParameterTypeName, PlainValue, ReturnTypeName, TypedValue } from '../sandbox/values.js';
import * as asyncErrors from './errors.js';
import type { VmResources } from './reclaim.js';

// ---- messages --------------------------------------------------------------------------

/** A host function as the worker registers it (the function itself stays on the main thread). */
export interface HostSignature {
  name: string;
  params: ParameterTypeName[];
  returns: ReturnTypeName;
}

/** `workerData` of a sandbox worker. */
export interface WorkerInit {
  /** The guest ELF (already validated on the main thread). */
  guest: Uint8Array;
  config: SandboxConfig;
  hosts: HostSignature[];
  /** Guest log level to forward (6 = None: no logger registered). */
  logLevel: number;
  /** The channel's words and message areas (channel.ts). */
  channel: SharedArrayBuffer;
  /** Where messages too large for the channel's areas go, both ways (read with receiveMessageOnPort). */
  overflow: MessagePort;
  /** The write end of the doorbell pipe (channel.ts): one byte after each message to the main thread. */
  doorbell: number;
  freshInit: boolean;
  /** A snapshot file's bytes (AsyncSandbox.fromSnapshot): the worker starts from it instead of the guest ELF. */
  snapshot?: Uint8Array;
  /** Evolve in exitless mode with these (checked) options. */
  exitless?: Required<ExitlessOptions>;
}

/** Main -> worker. Each `id` is answered by exactly one `done`. */
export type ToWorker =
  | { op: 'call'; id: number; name: string; returns: ReturnTypeName; params: TypedValue[];
      /** Count exits and time for a diagnostics record. */
      observe: boolean;
      /** A snapshot to restore after replying (0: none). */
      restoreAfter: number }
  | { op: 'snapshot'; id: number }
  | { op: 'restore'; id: number; snapshot: number }
  | { op: 'map'; id: number; source: Uint8Array | string; guestAddress: bigint | number; writable: boolean }
  | { op: 'drop'; id: number; snapshot: number }
  | { op: 'close'; id: number };

/** What the worker measured for one call (only when `observe` was set). */
export interface CallMeasure {
  /** Time inside the worker's guest call, host waits excluded (ns). */
  guestNs: number;
  /** Time the worker waited for the main thread's host functions (ns). */
  hostNs: number;
  exits: number;
  hostCalls: number;
}

/** Worker -> main. */
export type FromWorker =
  | { kind: 'ready'; interrupt: SharedArrayBuffer; initSnapshot: number; resources: VmResources }
  | { kind: 'failed'; error: WireThrown }
  | { kind: 'done'; id: number; ok: true; value: PlainValue; poisoned: boolean; measure?: CallMeasure }
  | { kind: 'done'; id: number; ok: false; error: WireThrown; poisoned: boolean; measure?: CallMeasure }
  | HostRequest;

/** The guest is waiting in its exit for the main thread. */
export type HostRequest =
  | { kind: 'host'; op: number; seq: number; name: string; args: PlainValue[] }
  | { kind: 'print'; op: number; seq: number; text: string }
  | { kind: 'log'; op: number; seq: number; record: GuestLogRecord };

/** Main -> worker: the answer to host request `seq`. */
export type HostReply =
  | { seq: number; ok: true; value: PlainValue }
  | { seq: number; ok: false; message: string };

// ---- errors across threads -------------------------------------------------------------

/** An error (or any thrown value) in structured-clone form, class and fields kept. */
export type WireThrown =
  | { kind: 'error'; name: string; message: string; stack: string | undefined;
      props: Record<string, unknown>; cause?: WireThrown }
  | { kind: 'value'; value: unknown };

type ErrorClass = new (...args: never[]) => Error;

/** Every error class of the library, by name (so a worker's error keeps its class here). */
const LIBRARY_ERRORS: ReadonlyMap<string, ErrorClass> = new Map(
  [baseErrors, kvmErrors, sandboxErrors, asyncErrors].flatMap((m) => Object.values(m))
    .filter((v): v is ErrorClass => typeof v === 'function' && v.prototype instanceof Error)
    .map((c) => [c.name, c]),
);

const BUILTIN_ERRORS: ReadonlyMap<string, ErrorClass> = new Map(
  [TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError].map((c) => [c.name, c]),
);

const MAX_CAUSE_DEPTH = 8;

function cloneable(v: unknown): boolean {
  switch (typeof v) {
    case 'function': case 'symbol': return false;
    case 'object':
      if (v === null || v instanceof Uint8Array) return true;
      try {
        structuredClone(v);
        return true;
      } catch {
        return false;
      }
    default: return true;
  }
}

/** `e` in a form postMessage can carry. Fields that cannot be cloned are left out. */
export function toWire(e: unknown, depth = 0): WireThrown {
  if (!(e instanceof Error)) return cloneable(e) ? { kind: 'value', value: e } : { kind: 'value', value: String(e) };
  const props: Record<string, unknown> = {};
  for (const key of Object.keys(e)) {
    if (key === 'message' || key === 'stack' || key === 'cause') continue;
    const v = (e as unknown as Record<string, unknown>)[key];
    if (cloneable(v)) props[key] = v;
  }
  const w: WireThrown = { kind: 'error', name: e.constructor.name, message: e.message, stack: e.stack, props };
  if ('cause' in e && e.cause !== undefined && depth < MAX_CAUSE_DEPTH) w.cause = toWire(e.cause, depth + 1);
  return w;
}

/** Rebuilds an error from `toWire`: the same class (library or built-in), message, stack, fields and cause. */
export function fromWire(w: WireThrown): unknown {
  if (w.kind === 'value') return w.value;
  const C = LIBRARY_ERRORS.get(w.name) ?? BUILTIN_ERRORS.get(w.name) ?? Error;
  const e = Object.create(C.prototype) as Error;
  // A class of neither kind keeps its name (the worker's HostCallFailed, which a failed print
  // raises when the guest's write system call reaches it).
  if (C === Error && w.name !== 'Error') Object.defineProperty(e, 'name', { value: w.name, writable: true, configurable: true });
  Object.defineProperty(e, 'message', { value: w.message, writable: true, configurable: true });
  Object.defineProperty(e, 'stack', { value: w.stack, writable: true, configurable: true });
  Object.assign(e, w.props);
  if (w.cause !== undefined) setCause(e, fromWire(w.cause));
  return e;
}

/** Sets `cause` the way `new Error(m, { cause })` does (own, non-enumerable). */
export function setCause(e: Error, cause: unknown): void {
  Object.defineProperty(e, 'cause', { value: cause, writable: true, configurable: true });
}
