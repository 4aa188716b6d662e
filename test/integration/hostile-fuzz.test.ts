// Fuzzes the whole run-loop input path on real KVM: the hostile guest copies host-chosen (mutated) bytes into its output buffer and signals Halt, CallFunction or Log; every outcome must be a value or a typed error whose poisoning matches poisons(), and restore must always recover.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { HyperlightError } from '../../src/errors.js';
import { WireCodec } from '../../src/sandbox/codec.js';
import { poisons } from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import type { Snapshot } from '../../src/sandbox/snapshot.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { ParameterValue as P, type TypedValue } from '../../src/sandbox/values.js';
import { describeKvm } from '../helpers/kvm.js';
import { prng } from '../helpers/prng.js';

/** Guest calls made by the fuzzer; docs/security.md cites this number. */
export const HOSTILE_FUZZ_ITERATIONS = 2_000;
const SEED = 0x0bad_c0de;

const codec = new WireCodec();
const VALUES: TypedValue[] = [
  P.Int(-5), P.UInt(7), P.Long(-(2n ** 40n)), P.ULong(2n ** 63n), P.Float(1.5), P.Double(-0.1),
  P.String('héllo'), P.Bool(true), P.VecBytes(new Uint8Array([1, 2, 3])),
];
const RESULTS = [
  ...VALUES.map((v) => codec.encodeFunctionCallResult({ ok: true, value: v }).slice()),
  codec.encodeFunctionCallResult({ ok: true, value: undefined }).slice(),
  codec.encodeFunctionCallResult({ ok: false, code: 17, message: 'boom' }).slice(),
];
const HOST_CALLS = [
  codec.encodeFunctionCall('HostAdd', [P.Int(1), P.Int(2)], 'host', 'Int').slice(),
  codec.encodeFunctionCall('HostPrint', [P.String('fuzz\n')], 'host', 'Int').slice(),
  codec.encodeFunctionCall('Nope', VALUES, 'host', 'Void').slice(),
];
const LOGS = [
  codec.encodeGuestLogData({ message: 'm', source: 's', level: 3, caller: 'c', sourceFile: 'f.c', line: 7 }).slice(),
];
const PORT_HALT = 108;
const PORT_CALL = 101;
const PORT_LOG = 99;

function mutate(seed: Uint8Array, rnd: () => number): Uint8Array {
  const int = (n: number): number => Math.floor(rnd() * n);
  let b = seed.slice();
  for (let r = 1 + int(3); r > 0; r--) {
    if (b.length < 8) break;
    const v = new DataView(b.buffer);
    const pos = int(b.length - 4);
    switch (int(6)) {
      case 0: b[pos] = b[pos]! ^ (1 << int(8)); break;
      case 1: v.setUint32(pos, [0, 4, 0x7fff_ffff, 0xffff_fff0, int(b.length * 2)][int(5)]!, true); break;
      case 2: v.setUint16(pos, [0, 3, 0x8000, 0xffff, int(64)][int(5)]!, true); break;
      case 3: b = b.slice(0, int(b.length + 1)); break;
      case 4: { const e = new Uint8Array(b.length + int(32)); e.set(b); b = e; break; }
      default: b[pos] = int(256);
    }
  }
  if (b.length >= 4 && rnd() < 0.7) new DataView(b.buffer).setUint32(0, b.length - 4, true);
  return b;
}

let sandbox: MultiUseSandbox;
let snap: Snapshot;
let hostAdds = 0;
beforeAll(() => {
  const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('hostileguest')));
  u.registerPrint((t) => t.length);
  u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => { hostAdds++; return a + b; });
  sandbox = u.evolve();
  snap = sandbox.snapshot();
});
afterAll(() => sandbox?.close());

describeKvm(`run-loop input fuzzing through the hostile guest (seed 0x${SEED.toString(16)})`, () => {
  it(`${HOSTILE_FUZZ_ITERATIONS} guest calls with mutated output-buffer contents end in a value or a typed error`, () => {
    const rnd = prng(SEED);
    const int = (n: number): number => Math.floor(rnd() * n);
    const outcomes = new Map<string, number>();
    const count = (k: string): void => { outcomes.set(k, (outcomes.get(k) ?? 0) + 1); };
    for (let i = 0; i < HOSTILE_FUZZ_ITERATIONS; i++) {
      const kind = int(10);
      const port = kind < 5 ? PORT_HALT : kind < 8 ? PORT_CALL : PORT_LOG;
      const seeds = port === PORT_HALT ? RESULTS : port === PORT_CALL ? HOST_CALLS : LOGS;
      const element = mutate(seeds[int(seeds.length)]!, rnd);
      let call: () => unknown;
      if (int(4) === 0) {
        // Raw bytes over the buffer, stack pointer included.
        const bytes = new Uint8Array(8 + int(300));
        const v = new DataView(bytes.buffer);
        for (let k = 0; k < bytes.length; k++) bytes[k] = int(3) === 0 ? int(256) : 0;
        v.setUint32(0, [8, 12, 20, bytes.length, bytes.length + 8, int(0x5000)][int(6)]!, true);
        if (bytes.length >= 16 && int(2) === 0) v.setUint32(bytes.length - 8, [0, 8, int(bytes.length)][int(3)]!, true);
        call = () => sandbox.callGuestFunctionByName('Scribble', 'Int', [P.VecBytes(bytes), P.Int(0), P.Int(port)]);
      } else {
        call = () => sandbox.callGuestFunctionByName('PushElement', 'Int', [P.VecBytes(element), P.Int(port)]);
      }
      try {
        const v = call();
        count(`value:${typeof v}`);
      } catch (e) {
        if (!(e instanceof HyperlightError)) {
          throw new Error(`iteration ${i}: untyped error ${String(e)} for ${Buffer.from(element).toString('hex')}`, { cause: e });
        }
        count(e.code);
        expect(sandbox.poisoned, `iteration ${i}: ${e.code} poisoning`).toBe(poisons(e));
      }
      if (sandbox.poisoned || i % 50 === 0) {
        sandbox.restore(snap);
        if (i % 50 === 0) expect(sandbox.call('Ping', 'Int', i)).toBe(i + 1);
      }
    }
    sandbox.restore(snap);
    expect(sandbox.call('Ping', 'Int', 1)).toBe(2);
    const total = [...outcomes.values()].reduce((a, b) => a + b, 0);
    expect(total).toBe(HOSTILE_FUZZ_ITERATIONS);
    // Both sides of the verifier are reached: rejected input and input the host accepted.
    expect(outcomes.get('ERR_GUEST_PROTOCOL') ?? 0).toBeGreaterThan(HOSTILE_FUZZ_ITERATIONS / 10);
    expect((outcomes.get('value:number') ?? 0) + (outcomes.get('ERR_RETURN_TYPE_MISMATCH') ?? 0)).toBeGreaterThan(50);
    expect(hostAdds).toBeGreaterThan(10);
    const allowed = new Set(['value:number', 'ERR_GUEST_PROTOCOL', 'ERR_RETURN_TYPE_MISMATCH', 'ERR_GUEST_ERROR']);
    for (const k of outcomes.keys()) expect(allowed.has(k), `unexpected outcome ${k}`).toBe(true);
  }, 120_000);
});
