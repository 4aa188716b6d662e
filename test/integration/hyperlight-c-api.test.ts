// A guest written against Hyperlight's C API the way Hyperlight's own C guests are (test/fixtures/hl-style-guest.c), built with build-guest (gcc, and clang when installed), behaves as Hyperlight's tests expect.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { buildGuest } from '../../src/cli/build-guest.js';
import { GuestError, hyperlightEquivalent } from '../../src/sandbox/errors.js';
import { GuestBinary } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { ParameterValue as P } from '../../src/sandbox/values.js';
import { describeKvm } from '../helpers/kvm.js';

const SOURCE = resolve(import.meta.dirname, '../fixtures/hl-style-guest.c');
const dir = mkdtempSync(join(tmpdir(), 'hl-capi-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function hasClang(): boolean {
  try {
    execFileSync('clang', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const compilers = hasClang() ? ['gcc', 'clang'] : ['gcc'];

describeKvm('Hyperlight-style C guest', () => {
  for (const cc of compilers) {
    it(`builds with ${cc} and every function behaves as Hyperlight's tests expect`, () => {
      const elf = join(dir, `hl-style-${cc}.elf`);
      buildGuest({ output: elf, sources: [SOURCE], cc });
      const u = UninitializedSandbox.create(GuestBinary.filePath(elf));
      u.registerHostFunction('HostEchoVecBytes', { params: ['VecBytes'], returns: 'VecBytes' }, (b: Uint8Array) => b);
      const logs: { level: number; message: string }[] = [];
      u.registerLogger((r) => { logs.push(r); }, 0);
      const s = u.evolve();
      try {
        expect(s.callGuestFunctionByName('AddDoubles', 'Double', [P.Double(1.25), P.Double(2.5)])).toBe(3.75);
        expect(s.callGuestFunctionByName('ScaleFloat', 'Float', [P.Float(2)])).toBe(5);
        expect(s.call('StackHungry', 'Int', 100_000)).toBe(2);
        expect(s.call('EchoHostBytes', 'VecBytes', Uint8Array.of(1, 2, 3))).toEqual(Uint8Array.of(1, 2, 3));
        expect(s.call('FormatPi', 'String', 3)).toBe('3.142');
        expect(s.call('LogInfo', 'Int', 'info line')).toBe(3);
        expect(logs.at(-1)).toMatchObject({ message: 'info line', level: 2 }); // Info is Information on the wire
        expect(s.call('Fallback', 'Int')).toBe(99);
        // Unknown through the fallback: GuestError 4 (GuestFunctionNotFound) with the name.
        let e: unknown;
        try { s.call('NoSuchFunction', 'Int'); } catch (x) { e = x; }
        expect(e).toBeInstanceOf(GuestError);
        expect(e).toMatchObject({ guestCode: 4, guestMessage: 'NoSuchFunction' });
        expect(hyperlightEquivalent(e)).toEqual({ error: 'GuestError', code: 4, message: 'NoSuchFunction' });
        try { s.call('FailAsHost', 'Int'); } catch (x) { e = x; }
        expect(e).toMatchObject({ guestCode: 17 });
        expect(s.call('Fallback', 'Int')).toBe(99); // not poisoned
      } finally {
        s.close();
      }
    });
  }
});
