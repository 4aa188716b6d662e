// The hyperlight-ts:call records of synchronous MultiUseSandbox calls: the same fields as
// the async side publishes, counted only while someone subscribes.
import diagnosticsChannel from 'node:diagnostics_channel';
import { expect, it } from 'vitest';
import { CALL_CHANNEL, type CallRecord } from '../../src/sandbox/diagnostics.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { describeKvm } from '../helpers/kvm.js';

describeKvm('sync call diagnostics', () => {
  it('publishes one record per call with host time, exits and the error code; nothing without a subscriber', () => {
    const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')));
    u.registerPrint(() => undefined);
    u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => {
      const until = performance.now() + 2;
      while (performance.now() < until) { /* host time the record must show */ }
      return a + b;
    });
    const s = u.evolve();
    const records: CallRecord[] = [];
    const onRecord = (r: unknown): void => { records.push(r as CallRecord); };
    const start = s.snapshot();
    try {
      s.call('Add', 'Int', 1, 2); // not subscribed: no record
      diagnosticsChannel.subscribe(CALL_CHANNEL, onRecord);
      let traced = 0;
      s.traceExits({ exit: () => { traced++; } }); // a sink of the user's own still sees every exit
      expect(s.call('Add', 'Int', 40, 2)).toBe(42);
      s.traceExits(undefined);
      expect(() => s.call('GuestAbortWithCode', 'Int', 3)).toThrow();
      expect(records).toHaveLength(2);
      const [ok, failed] = records as [CallRecord, CallRecord];
      expect(ok).toMatchObject({
        function: 'Add', outcome: 'ok', errorCode: undefined, hostCalls: 1, queueMs: 0, sandboxId: s.id, threadId: 0, poolId: undefined,
      });
      expect(ok.exits).toBeGreaterThanOrEqual(2); // the host call and the halt
      expect(traced).toBe(ok.exits);
      expect(ok.hostMs).toBeGreaterThanOrEqual(2);
      expect(ok.wallMs).toBeGreaterThanOrEqual(ok.hostMs + ok.guestMs - 1e-9);
      expect(ok.guestMs).toBeGreaterThan(0);
      expect(failed).toMatchObject({ function: 'GuestAbortWithCode', outcome: 'error', errorCode: 'ERR_GUEST_ABORTED', hostCalls: 0 });
      diagnosticsChannel.unsubscribe(CALL_CHANNEL, onRecord);
      s.restore(start); // the abort poisoned it
      s.call('Add', 'Int', 1, 2);
      expect(records).toHaveLength(2);
    } finally {
      diagnosticsChannel.unsubscribe(CALL_CHANNEL, onRecord);
      s.close();
    }
  });
});
