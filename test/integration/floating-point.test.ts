// Guests run at CPL3, natively: SSE2 and x87 code computes exactly what the same C computes on the host, and float/double cross the C API as real floats.
import { crc32 } from 'node:zlib';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EmulationFailureError } from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { ParameterValue as P } from '../../src/sandbox/values.js';
import { describeKvm } from '../helpers/kvm.js';

/** The xorshift32 byte stream of guests/benchguest/kernels.h. */
function stream(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = (seed || 0x9e3779b9) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (x ^ (x << 13)) >>> 0;
    x = (x ^ (x >>> 17)) >>> 0;
    x = (x ^ (x << 5)) >>> 0;
    out[i] = x & 0xff;
  }
  return out;
}

/** kernel_integrate in double precision, step for step. */
function integrate(steps: number): number {
  const h = 1 / steps;
  let sum = 0;
  for (let i = 0; i < steps; i++) {
    const x = (i + 0.5) * h;
    sum += 4 / (1 + x * x);
  }
  return sum * h;
}

describeKvm('floating point and native compute in ring-3 guests', () => {
  let bench: MultiUseSandbox;
  let hostile: MultiUseSandbox;
  beforeAll(() => {
    bench = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('benchguest')), { maxExecutionTimeMs: 10_000 }).evolve();
    hostile = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('hostileguest'))).evolve();
  });
  afterAll(() => { bench?.close(); hostile?.close(); });

  it('an SSE2 double-precision integration equals the same arithmetic in JavaScript, bit for bit', () => {
    const got = bench.callGuestFunctionByName('Integrate', 'Double', [P.Int(100_000)]);
    expect(got).toBe(integrate(100_000));
    expect(Math.abs((got as number) - Math.PI)).toBeLessThan(1e-9);
  });

  it('CRC-32 of 1 MiB computed in the guest equals zlib\'s', () => {
    for (const [n, seed] of [[1 << 20, 1], [12345, 0xdeadbeef], [0, 7]] as const) {
      expect(bench.callGuestFunctionByName('Crc32', 'UInt', [P.Int(n), P.UInt(seed)])).toBe(crc32(stream(n, seed)));
    }
  });

  it('SSE (sqrtsd, addsd) and x87 (fld1, faddp) run in a guest without an emulation failure', () => {
    let r: unknown;
    try {
      r = hostile.callGuestFunctionByName('FpWork', 'Double', [P.Double(2)]);
    } catch (e) {
      expect(e).not.toBeInstanceOf(EmulationFailureError);
      throw e;
    }
    let s = 0;
    for (let i = 0; i < 1000; i++) s += Math.SQRT2 + Math.PI;
    expect(r).toBe(s);
    expect(hostile.callGuestFunctionByName('FpWork', 'Double', [P.Double(9)])).toBeCloseTo(1000 * (3 + Math.PI), 9);
  });
});
