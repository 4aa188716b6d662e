// The main thread's side of host calls from a sandbox worker: runs the (possibly async)
// host function, print or logger, and wakes the waiting worker with the answer.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { MessagePort } from 'node:worker_threads';
import type { GuestLogRecord } from '../sandbox/codec.js';
import { type HostFunctionRegistry, isThenable } from '../sandbox/host-functions.js';
import { type TypedValue, toPlain } from '../sandbox/values.js';
import { CTL_SEQ, type HostReply, type HostRequest } from './wire.js';

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

export class HostBridge {
  readonly #side: HostSide;
  readonly #owner: object;
  readonly #control: Int32Array;
  readonly #replies: MessagePort;

  constructor(side: HostSide, owner: object, control: Int32Array, replies: MessagePort) {
    this.#side = side;
    this.#owner = owner;
    this.#control = control;
    this.#replies = replies;
  }

  /** Answers `req`; a failure is also stored in `sink.hostError` (it becomes the `cause`). */
  handle(req: HostRequest, sink: HostErrorSink): void {
    const seq = req.seq;
    const fail = (e: unknown): void => {
      sink.hostError = e;
      this.#reply({ seq, ok: false, message: e instanceof Error ? e.message : String(e) });
    };
    let result: unknown;
    try {
      result = inHostFunction.run(this.#owner, () => this.#dispatch(req));
    } catch (e) {
      fail(e);
      return;
    }
    if (isThenable(result)) {
      result.then((v) => { this.#reply({ seq, ok: true, value: req.kind === 'host' ? toPlain(v as TypedValue | undefined) : undefined }); }, fail);
    } else {
      this.#reply({ seq, ok: true, value: req.kind === 'host' ? toPlain(result as TypedValue | undefined) : undefined });
    }
  }

  #dispatch(req: HostRequest): unknown {
    switch (req.kind) {
      case 'host': return this.#side.hosts.callPlain(req.name, req.args);
      case 'print': return this.#side.print(req.text);
      case 'log': return this.#side.log?.(req.record);
    }
  }

  #reply(r: HostReply): void {
    this.#replies.postMessage(r);
    Atomics.add(this.#control, CTL_SEQ, 1);
    Atomics.notify(this.#control, CTL_SEQ);
  }
}
