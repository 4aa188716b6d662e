// The shared-memory channel between an AsyncSandbox and its worker, both ends driven from
// one thread: every value type as bytes, errors with their class, messages too large for
// their area over the port, bounds-checked reading.
import { MessageChannel } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { Doorbell, MainEnd, Reader, WorkerEnd, Writer, channelBytes } from '../../src/async/channel.js';
import { fromWire, toWire } from '../../src/async/wire.js';
import { GuestAbortedError } from '../../src/sandbox/errors.js';
import type { TypedValue } from '../../src/sandbox/values.js';
import { openFdCount } from '../helpers/kvm.js';

const opened: MessageChannel[] = [];
afterEach(() => {
  for (const c of opened.splice(0)) {
    c.port1.close();
    c.port2.close();
  }
});

/** Both ends of one channel whose areas hold `area` bytes each. */
function ends(area = 4096): { main: MainEnd; worker: WorkerEnd } {
  const shared = new SharedArrayBuffer(channelBytes(area - 4096, 0));
  const ports = new MessageChannel();
  opened.push(ports);
  return { main: new MainEnd(shared, ports.port1), worker: new WorkerEnd(shared, ports.port2) };
}

const EVERY_TYPE: TypedValue[] = [
  { type: 'Int', value: -0x8000_0000 }, { type: 'UInt', value: 0xffff_ffff },
  { type: 'Long', value: -(1n << 63n) }, { type: 'ULong', value: (1n << 64n) - 1n },
  { type: 'Float', value: Math.fround(1.5) }, { type: 'Double', value: -0 },
  { type: 'String', value: 'héllo, 世界 🚀' }, { type: 'Bool', value: true }, { type: 'Bool', value: false },
  { type: 'VecBytes', value: new Uint8Array([0, 1, 254, 255]) }, { type: 'String', value: '' },
];

describe('sandbox channel', () => {
  it('carries a call with every parameter type to the worker and each kind of result back', () => {
    const { main, worker } = ends();
    expect(worker.receive()).toBeUndefined();
    main.send({ op: 'call', id: 7, name: 'Fn', returns: 'VecBytes', params: EVERY_TYPE, observe: true, restoreAfter: 3 });
    const got = worker.receive();
    expect(got).toEqual({ op: 'call', id: 7, name: 'Fn', returns: 'VecBytes', params: EVERY_TYPE, observe: true, restoreAfter: 3 });
    expect(Object.is((got as { params: TypedValue[] }).params[5]!.value, -0)).toBe(true);
    expect(worker.receive()).toBeUndefined(); // read once

    const results = [undefined, 42.5, -5n, 1n << 63n, 'ok', true, false, new Uint8Array([9, 8])];
    for (const value of results) {
      worker.send({ kind: 'done', id: 7, ok: true, value, poisoned: false });
      const done = main.receive();
      expect(done).toEqual({ kind: 'done', id: 7, ok: true, value, poisoned: false, measure: undefined });
      expect(main.receive()).toBeUndefined();
    }
    worker.send({ kind: 'done', id: 8, ok: true, value: 1, poisoned: true, measure: { guestNs: 1.5, hostNs: 2, exits: 3, hostCalls: 4 } });
    expect(main.receive()).toMatchObject({ poisoned: true, measure: { guestNs: 1.5, hostNs: 2, exits: 3, hostCalls: 4 } });
  });

  it('returns bytes that do not alias the shared memory (the next message reuses it)', () => {
    const { main, worker } = ends();
    worker.send({ kind: 'done', id: 1, ok: true, value: new Uint8Array([1, 2, 3]), poisoned: false });
    const first = (main.receive() as { value: Uint8Array }).value;
    worker.send({ kind: 'done', id: 2, ok: true, value: new Uint8Array([7, 7, 7]), poisoned: false });
    main.receive();
    expect(first).toEqual(new Uint8Array([1, 2, 3]));
    expect(first.buffer).not.toBeInstanceOf(SharedArrayBuffer);
  });

  it('carries host requests, prints, logs, replies and errors with their class', () => {
    const { main, worker } = ends();
    worker.send({ kind: 'host', op: 3, seq: 9, name: 'HostAdd', args: [1, 'x', 2n, new Uint8Array([5])] });
    expect(main.receive()).toEqual({ kind: 'host', op: 3, seq: 9, name: 'HostAdd', args: [1, 'x', 2n, new Uint8Array([5])] });
    worker.send({ kind: 'print', op: 3, seq: 10, text: 'line\n' });
    expect(main.receive()).toEqual({ kind: 'print', op: 3, seq: 10, text: 'line\n' });
    const record = { level: 2, message: 'm', source: 's', sourceFile: 'f.c', line: 4 };
    worker.send({ kind: 'log', op: 3, seq: 11, record: record as never });
    expect(main.receive()).toEqual({ kind: 'log', op: 3, seq: 11, record });
    main.send({ op: 'reply', seq: 9, ok: true, value: 3 });
    expect(worker.receive()).toEqual({ op: 'reply', seq: 9, ok: true, value: 3 });
    main.send({ op: 'reply', seq: 10, ok: false, message: 'print failed' });
    expect(worker.receive()).toEqual({ op: 'reply', seq: 10, ok: false, message: 'print failed' });

    worker.send({ kind: 'done', id: 4, ok: false, error: toWire(new GuestAbortedError(3, 'bye')), poisoned: true });
    const done = main.receive() as { ok: false; error: Parameters<typeof fromWire>[0]; poisoned: boolean };
    expect(done.poisoned).toBe(true);
    const e = fromWire(done.error);
    expect(e).toBeInstanceOf(GuestAbortedError);
    expect(e).toMatchObject({ abortCode: 3 });
  });

  it('sends a message too large for its area over the port, and the next small one in the area again', () => {
    const { main, worker } = ends(8192);
    const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
    const text = 'é'.repeat(50_000);
    main.send({ op: 'call', id: 1, name: 'Big', returns: 'Void', params: [{ type: 'VecBytes', value: big }, { type: 'String', value: text }], observe: false, restoreAfter: 0 });
    const got = worker.receive() as { params: TypedValue[] };
    const same = (a: unknown): boolean => a instanceof Uint8Array && Buffer.compare(a, big) === 0;
    expect(same(got.params[0]!.value)).toBe(true);
    expect(got.params[1]!.value).toBe(text);
    worker.send({ kind: 'done', id: 1, ok: true, value: big, poisoned: false });
    expect(same((main.receive() as { value: Uint8Array }).value)).toBe(true);
    main.send({ op: 'snapshot', id: 2 });
    expect(worker.receive()).toEqual({ op: 'snapshot', id: 2 });
    worker.send({ kind: 'done', id: 2, ok: true, value: 'small', poisoned: false });
    expect(main.receive()).toMatchObject({ value: 'small' });
  });

  it('rings the doorbell once per message to the main thread, and close() frees both ends of its pipe', async () => {
    const before = await openFdCount();
    const bell = new Doorbell();
    expect(await openFdCount()).toBe(before + 2);
    const shared = new SharedArrayBuffer(channelBytes(0, 0));
    const ports = new MessageChannel();
    opened.push(ports);
    const main = new MainEnd(shared, ports.port1);
    const worker = new WorkerEnd(shared, ports.port2, bell.writeFd);
    const got: unknown[] = [];
    let rang!: () => void;
    let ringing = new Promise<void>((r) => { rang = r; });
    bell.listen(() => {
      for (let m = main.receive(); m !== undefined; m = main.receive()) got.push(m);
      rang();
    }, (e) => { throw e; });
    expect(main.receive()).toBeUndefined();
    worker.send({ kind: 'print', op: 1, seq: 1, text: 'one' });
    await ringing;
    expect(got).toEqual([{ kind: 'print', op: 1, seq: 1, text: 'one' }]);
    ringing = new Promise<void>((r) => { rang = r; });
    worker.send({ kind: 'done', id: 1, ok: true, value: 5, poisoned: false });
    await ringing;
    expect(got).toHaveLength(2);
    expect(got[1]).toMatchObject({ kind: 'done', id: 1, value: 5 });
    bell.close();
    bell.close(); // idempotent
    expect(await openFdCount()).toBe(before);
  });

  it('reads only within a message: a length past its end is a RangeError, not a read of stale bytes', () => {
    const w = new Writer(new Uint8Array(64));
    w.u32(1000); // a string length that the message does not hold
    const r = new Reader(w.bytes());
    expect(() => r.str()).toThrow(RangeError);
    const area = new Uint8Array(16);
    expect(() => new Reader(area).first(17)).toThrow(RangeError);
    const shortOne = new Reader(area).first(2);
    expect(() => shortOne.u32()).toThrow(/truncated/);
  });
});
