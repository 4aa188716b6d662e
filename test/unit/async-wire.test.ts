// The async API's pieces that need no KVM: errors across threads, latency percentiles,
// host-function results that are Promises.
import { describe, expect, it } from 'vitest';
import { PoolBusyError, WorkerCrashedError } from '../../src/async/errors.js';
import { LatencyRing } from '../../src/async/latency.js';
import { fromWire, toWire } from '../../src/async/wire.js';
import { ConfigInvalidError, HyperlightError } from '../../src/errors.js';
import { KvmIoctlError } from '../../src/kvm/errors.js';
import {
  EmulationFailureError, GuestError, GuestExceptionError, ReturnTypeMismatchError, poisons,
} from '../../src/sandbox/errors.js';
import { HostFunctionRegistry, isThenable } from '../../src/sandbox/host-functions.js';

/** What the other thread would see: the wire form after a structured clone. */
const roundTrip = (e: unknown): unknown => fromWire(structuredClone(toWire(e)));

describe('errors across threads', () => {
  it('keep their class, code, fields and message', () => {
    const x = roundTrip(new GuestExceptionError(14, 2n, 0x1234n, 0x400000n, 'fault'));
    expect(x).toBeInstanceOf(GuestExceptionError);
    expect(x).toBeInstanceOf(HyperlightError);
    expect(x).toMatchObject({ code: 'ERR_GUEST_EXCEPTION', name: 'GuestExceptionError', vector: 14, errorCode: 2n, rip: 0x1234n, cr2: 0x400000n });
    expect((x as Error).message).toContain('PageFault');
    const em = roundTrip(new EmulationFailureError('bad', 1n, new Uint8Array([0xd9, 0xe8]), 1));
    expect((em as EmulationFailureError).instructionBytes).toEqual(new Uint8Array([0xd9, 0xe8]));
    expect(roundTrip(new KvmIoctlError('KVM_RUN', 4))).toMatchObject({ code: 'ERR_KVM_IOCTL', ioctl: 'KVM_RUN', errnoName: 'EINTR' });
    expect(roundTrip(new ConfigInvalidError('heapSize', 'too small'))).toMatchObject({ field: 'heapSize' });
    expect(roundTrip(new PoolBusyError(3))).toBeInstanceOf(PoolBusyError);
    expect(roundTrip(new WorkerCrashedError(7, 1))).toMatchObject({ threadId: 7, exitCode: 1 });
  });

  it('keep a chain of causes, built-in error classes, thrown non-errors; drop what cannot be cloned', () => {
    const inner = new TypeError('inner');
    const outer = new GuestError(17, 'host failed', { cause: inner });
    const x = roundTrip(outer) as Error;
    expect(x).toBeInstanceOf(GuestError);
    expect(x.cause).toBeInstanceOf(TypeError);
    expect((x.cause as Error).message).toBe('inner');
    expect(roundTrip('a string')).toBe('a string');
    expect(roundTrip(42)).toBe(42);
    const odd = Object.assign(new Error('odd'), { callback: () => 1, n: 5 });
    expect(roundTrip(odd)).toMatchObject({ message: 'odd', n: 5 });
    expect((roundTrip(odd) as { callback?: unknown }).callback).toBeUndefined();
    class Custom extends Error {}
    const c = roundTrip(new Custom('mine'));
    expect(c).toBeInstanceOf(Error);
    expect((c as Error).message).toBe('mine');
  });

  it('a full queue does not poison (nothing ran); a crashed worker does', () => {
    expect(poisons(new PoolBusyError(1))).toBe(false);
    expect(poisons(new WorkerCrashedError(1, 1))).toBe(true);
  });
});

describe('LatencyRing', () => {
  it('gives nearest-rank percentiles over the most recent samples', () => {
    const r = new LatencyRing(100);
    expect(r.summary()).toEqual({ samples: 0, p50: 0, p90: 0, p99: 0, max: 0 });
    for (let i = 1; i <= 100; i++) r.add(i);
    expect(r.summary()).toEqual({ samples: 100, p50: 50, p90: 90, p99: 99, max: 100 });
    for (let i = 0; i < 100; i++) r.add(1000); // the ring forgets the old samples
    expect(r.summary()).toEqual({ samples: 100, p50: 1000, p90: 1000, p99: 1000, max: 1000 });
  });
});

describe('host functions returning Promises', () => {
  it('are a clear error in a synchronous sandbox (and their rejection is not left unhandled)', () => {
    const r = new HostFunctionRegistry();
    r.register('F', { params: [], returns: 'Int' }, () => Promise.reject(new Error('never seen')));
    expect(() => r.call('F', [])).toThrow(ReturnTypeMismatchError);
    expect(() => r.call('F', [])).toThrow(/evolveAsync/);
  });

  it('give a Promise of the checked value through callPlain (the async sandboxes\' path)', async () => {
    const r = new HostFunctionRegistry();
    r.register('Add', { params: ['Int', 'Int'], returns: 'Int' }, async (a: number, b: number) => a + b);
    r.register('Bad', { params: [], returns: 'Int' }, async () => 'x');
    r.register('Sync', { params: [], returns: 'String' }, () => 'now');
    await expect(r.callPlain('Add', [1, 2])).resolves.toEqual({ type: 'Int', value: 3 });
    await expect(r.callPlain('Bad', [])).rejects.toBeInstanceOf(ReturnTypeMismatchError);
    expect(r.callPlain('Sync', [])).toEqual({ type: 'String', value: 'now' });
    expect(isThenable({ then: () => undefined })).toBe(true);
    expect(isThenable(null)).toBe(false);
  });
});
