// The main thread's side of host calls from a sandbox worker: runs the (possibly async)
// host function, print or logger, and hands the answer to the AsyncSandbox that sends it.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { GuestLogRecord } from '../sandbox/codec.js';
import { type HostFunctionRegistry, isThenable } from '../sandbox/host-functions.js';
import { type TypedValue, toPlain } from '../sandbox/values.js';
import type { HostReply, HostRequest } from './wire.js';

/** Who is running a host function right now (an AsyncSandbox or a SandboxPool): calls on
 * it from inside its own host function would wait for themselves, so they are refused. */
const inHostFunction = new AsyncLocalStorage<object>();

/** Whether the current code runs inside a host function of `owner`. */
export function insideHostFunctionOf(owner: object): boolean {
  return inHostFunction.getStore() === owner;
}

export interface HostSide {
  hosts: HostFunctionRegistry;
  /** Prints guest DebugPrint text. */
  print: (text: string) => unknown;
  /** Receives guest log records (already filtered by level). */
  log: ((record: GuestLogRecord) => unknown) | undefined;
}

/** Where the outcome of one host request is recorded (the operation it belongs to). */
export interface HostErrorSink {
  hostError: unknown;
}

/** Sends the answer of a host request of `sink`'s operation (if that operation still waits for it). */
export type HostReplySender<S extends HostErrorSink> = (sink: S, reply: HostReply) => void;

export class HostBridge<S extends HostErrorSink> {
  readonly #side: HostSide;
  readonly #owner: object;
  readonly #send: HostReplySender<S>;

  constructor(side: HostSide, owner: object, send: HostReplySender<S>) {
    this.#side = side;
    this.#owner = owner;
    this.#send = send;
  }

  /** Answers `req`; a failure is also stored in `sink.hostError` (it becomes the `cause`). */
  handle(req: HostRequest, sink: S): void {
    const seq = req.seq;
    const fail = (e: unknown): void => {
      sink.hostError = e;
      this.#send(sink, { seq, ok: false, message: e instanceof Error ? e.message : String(e) });
    };
    let result: unknown;
    try {
      result = inHostFunction.run(this.#owner, () => this.#dispatch(req));
    } catch (e) {
      fail(e);
      return;
    }
    if (isThenable(result)) {
      result.then((v) => { this.#send(sink, { seq, ok: true, value: req.kind === 'host' ? toPlain(v as TypedValue | undefined) : undefined }); }, fail);
    } else {
      this.#send(sink, { seq, ok: true, value: req.kind === 'host' ? toPlain(result as TypedValue | undefined) : undefined });
    }
  }

  #dispatch(req: HostRequest): unknown {
    switch (req.kind) {
      case 'host': return this.#side.hosts.callPlain(req.name, req.args);
      case 'print': return this.#side.print(req.text);
      case 'log': return this.#side.log?.(req.record);
    }
  }
}
