// A guest written against Hyperlight's C API the way Hyperlight's own C test guest is (test/fixtures/hl-style-guest.c), built with build-guest by gcc and clang, behaves as Hyperlight's host tests expect of that guest (docs/hyperlight-compat.md maps each case).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { buildGuest } from '../../src/cli/build-guest.js';
import {
  GuestAbortedError, GuestError, GuestExceptionError, StackOverflowError, hyperlightEquivalent,
} from '../../src/sandbox/errors.js';
import { GuestBinary } from '../../src/sandbox/guest-binary.js';
import { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import type { Snapshot } from '../../src/sandbox/snapshot.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { ParameterValue as P } from '../../src/sandbox/values.js';
import type { GuestLogRecord } from '../../src/sandbox/codec.js';
import { catchError } from '../helpers/errors.js';
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

// Hyperlight builds its C guests with clang; CI installs it (.ci/run), elsewhere gcc alone is enough.
const compilers = hasClang() || process.env.CI === 'true' ? ['gcc', 'clang'] : ['gcc'];

// Hyperlight's guest_abort_with_context2 message is longer than the 1 KiB abort buffer.
const LONG_MESSAGE = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit. '.repeat(40);

describeKvm('Hyperlight-style C guest', () => {
  for (const cc of compilers) {
    describe(`built with ${cc}`, () => {
      let elf: string;
      let s: MultiUseSandbox;
      let clean: Snapshot;
      const printed: string[] = [];
      const logs: GuestLogRecord[] = [];
      const greeted: string[] = [];
      let greetFails = false;
      const sandbox = (): MultiUseSandbox => {
        // 25 KiB of input, as Hyperlight's 24K_in_8K_out benchmark sets.
        const u = UninitializedSandbox.create(GuestBinary.filePath(elf), { inputDataSize: 25 * 1024 });
        u.registerPrint((t) => { printed.push(t); return t.length; });
        u.registerLogger((r) => { logs.push(r); }, 0);
        u.registerHostFunction('HostGreet', { params: ['String'], returns: 'Int' }, (m: string) => {
          if (greetFails) throw new Error('Host function error!');
          greeted.push(m);
          return m.length;
        });
        u.registerHostFunction('HostCompare', { params: ['Int', 'Int'], returns: 'Bool' }, (a: number, b: number) => a + b > 10);
        u.registerHostFunction('HostSumFloat', { params: ['Float', 'Float'], returns: 'Float' }, (a: number, b: number) => a + b);
        u.registerHostFunction('HostSumDouble', { params: ['Double', 'Double'], returns: 'Double' }, (a: number, b: number) => a + b);
        u.registerHostFunction('HostSuffix', { params: ['String'], returns: 'String' }, (a: string) => `${a}, suffixed by the host`);
        u.registerHostFunction('HostEchoVecBytes', { params: ['VecBytes'], returns: 'VecBytes' }, (b: Uint8Array) => b);
        return u.evolve();
      };
      beforeAll(() => {
        elf = join(dir, `hl-style-${cc}.elf`);
        buildGuest({ output: elf, sources: [SOURCE], cc });
        s = sandbox();
        clean = s.snapshot();
      });
      afterAll(() => s?.close());
      beforeEach(() => {
        s.restore(clean);
        printed.length = 0;
        logs.length = 0;
        greeted.length = 0;
        greetFails = false;
      });
      const failure = (fn: () => unknown): unknown => catchError(fn);

      it('passes values through: strings, bytes, doubles and floats at their extremes', () => {
        expect(s.call('RepeatString', 'String', 'world')).toBe('world');
        expect(s.call('ZeroedCopy', 'VecBytes', new Uint8Array(10).fill(1))).toEqual(new Uint8Array(10));
        expect(s.call('BytesBack', 'VecBytes', Uint8Array.of(1, 2, 3, 4, 5, 6))).toEqual(Uint8Array.of(1, 2, 3, 4, 5, 6));
        expect(s.call('EchoHostBytes', 'VecBytes', Uint8Array.of(7, 8))).toEqual(Uint8Array.of(7, 8));
        for (const d of [0, 1, -1, Math.PI, -1231.43821, Number.MAX_VALUE, -Number.MAX_VALUE, Number.EPSILON, Infinity, -Infinity]) {
          expect(s.callGuestFunctionByName('RepeatDouble', 'Double', [P.Double(d)])).toBe(d);
        }
        expect(s.callGuestFunctionByName('RepeatDouble', 'Double', [P.Double(NaN)])).toBeNaN();
        for (const f of [0, 1, -1, Math.fround(Math.PI), Math.fround(-1231.4382), 3.4028234663852886e38, 2 ** -23, -Infinity]) {
          expect(s.callGuestFunctionByName('RepeatFloat', 'Float', [P.Float(f)])).toBe(f);
        }
        expect(s.callGuestFunctionByName('RepeatFloat', 'Float', [P.Float(NaN)])).toBeNaN();
        expect(s.call('FirstThird', 'VecBytes', new Uint8Array(24 * 1024).fill(5))).toEqual(new Uint8Array(8 * 1024).fill(5));
        expect(s.call('FillTable', 'Int')).toBe(1 << 20);
        expect(s.call('FormatPi', 'String', 3)).toBe('3.142');
      });

      it('prints through the host print function, every parameter type formatted', () => {
        expect(s.call('Say', 'Int', 'hello')).toBe(5);
        expect(printed).toEqual(['hello']);
        printed.length = 0;
        const text = 'Got: a=1 b=2 c=3 d=4 e=5 f=true g=false h=8 i=9 j=10 k=3.123.';
        expect(s.callGuestFunctionByName('DescribeAll', 'Int', [P.String('1'), P.Int(2), P.Long(3n), P.String('4'),
          P.String('5'), P.Bool(true), P.Bool(false), P.UInt(8), P.ULong(9n), P.Int(10), P.Float(3.123)])).toBe(text.length);
        expect(printed.join('')).toBe(text);
        printed.length = 0;
        expect(s.call('DescribeTwo', 'Int', 'Test4', 3)).toBe('Got: a=Test4 b=3.'.length);
        expect(printed.join('')).toBe('Got: a=Test4 b=3.');
      });

      it('reports unknown functions and wrong arguments as Hyperlight does, without poisoning', () => {
        expect(s.call('Fallback', 'Int')).toBe(99);
        const e = failure(() => s.call('FunctionDoesntExist', 'Int'));
        expect(e).toBeInstanceOf(GuestError);
        expect(hyperlightEquivalent(e)).toEqual({ error: 'GuestError', code: 4, message: 'FunctionDoesntExist' });
        expect(hyperlightEquivalent(failure(() => s.callGuestFunctionByName('RepeatString', 'String', [P.Int(2)]))))
          .toEqual({ error: 'GuestError', code: 14,
            message: 'Expected parameter type String for parameter index 0 of function RepeatString but got Int.' });
        expect(hyperlightEquivalent(failure(() => s.callGuestFunctionByName('RepeatString', 'String', [P.String('1'), P.Int(2)]))))
          .toEqual({ error: 'GuestError', code: 5, message: 'Called function RepeatString with 2 parameters but it takes 1.' });
        expect(hyperlightEquivalent(failure(() => s.call('FailAsHost', 'Int'))))
          .toEqual({ error: 'GuestError', code: 17, message: 'reported as a host function error' });
        expect(s.poisoned).toBe(false);
        expect(s.call('Fallback', 'Int')).toBe(99);
      });

      it('calls host functions of every return type; a throwing one fails the call with its message', () => {
        expect(s.call('GreetHost', 'Int', 'Hello world')).toBe('Greetings from the guest, Hello world'.length);
        expect(greeted).toEqual(['Greetings from the guest, Hello world']);
        for (let i = 1; i < 10; i++) expect(s.call('HostCompareBool', 'Bool', i, i)).toBe(i >= 6);
        expect(s.callGuestFunctionByName('HostSumFloatValue', 'Float', [P.Float(1.34), P.Float(1.34)])).toBe(Math.fround(2.68));
        expect(s.callGuestFunctionByName('HostSumDoubleValue', 'Double', [P.Double(1.34), P.Double(1.34)])).toBe(2.68);
        expect(s.call('HostSuffixString', 'String')).toBe('guest text, suffixed by the host');
        greetFails = true;
        for (let i = 0; i < 20; i++) {
          expect(hyperlightEquivalent(failure(() => s.call('GreetHost', 'Int', 'x'))))
            .toEqual({ error: 'GuestError', code: 17, message: 'Host function error!' });
        }
        expect(s.poisoned).toBe(false);
      });

      it('allocates on the heap; a failed malloc is GuestError 15 "Malloc Failed"', () => {
        expect(s.call('Grab', 'Int', 2000)).toBe(2000);
        expect(s.call('GrabAndRelease', 'Int', 100_000)).toBe(100_000);
        expect(hyperlightEquivalent(failure(() => s.call('Grab', 'Int', 0x7fff_ffff))))
          .toEqual({ error: 'GuestError', code: 15, message: 'Malloc Failed' });
        expect(s.poisoned).toBe(false);
      });

      it('uses the stack; exhausting it is GuestAborted 13 (MallocFailed) in Hyperlight terms, and poisons', () => {
        expect(s.call('OnStack', 'Int', 100)).toBe(100);
        expect(s.call('SmallLocal', 'Int')).toBe(512);
        expect(s.call('Recurse', 'Int', 1)).toBe(1);
        expect(s.call('CopyIntoSmall', 'Int', 'short')).toBe(12);
        for (const [name, arg] of [['OnStack', 0x800_0000], ['HugeLocal', undefined], ['Recurse', 32]] as const) {
          const e = failure(() => (arg === undefined ? s.call(name, 'Int') : s.call(name, 'Int', arg)));
          expect(e).toBeInstanceOf(StackOverflowError);
          expect(hyperlightEquivalent(e)).toEqual({ error: 'GuestAborted', code: 13 });
          expect(s.poisoned).toBe(true);
          s.restore(clean);
        }
      });

      it('aborts with a code, a message, or an over-long message; executing the stack aborts too; all poison', () => {
        const cases: Array<[() => unknown, object]> = [
          [() => s.call('StopWith', 'Int', 13), { error: 'GuestAborted', code: 13, message: '' }],
          [() => s.call('StopWithMessage', 'Int', 25, 'Oh no'), { error: 'GuestAborted', code: 25, message: 'Oh no' }],
          [() => s.call('StopWithMessage', 'Int', 75, 'This is a test error message'),
            { error: 'GuestAborted', code: 75, message: 'This is a test error message' }],
          [() => s.call('StopWithMessage', 'Int', 60, LONG_MESSAGE), { error: 'GuestAborted', code: 0, message: 'Guest abort buffer overflowed' }],
          [() => s.call('RunStackBytes', 'Int'), { error: 'GuestAborted', code: 15, message: 'Exception vector: 14' }],
        ];
        for (const [run, want] of cases) {
          const e = failure(run);
          expect(e instanceof GuestAbortedError || e instanceof GuestExceptionError).toBe(true);
          expect(hyperlightEquivalent(e)).toEqual(want);
          expect(s.poisoned).toBe(true);
          s.restore(clean);
        }
      });

      it('logs through LOG with the level, line and file', () => {
        expect(s.call('LogAt', 'Int', 'a log line', 3n)).toBe(3);
        expect(logs).toHaveLength(1);
        expect(logs[0]).toMatchObject({ message: 'a log line', level: 2 }); // Rust's Info is Information on the wire
        expect(logs[0]!.sourceFile).toMatch(/hl-style-guest\.c$/);
        expect(s.call('LogAt', 'Int', 'an error', 1n)).toBe(1);
        expect(logs[1]).toMatchObject({ message: 'an error', level: 4 });
      });

      it('rand() and random() differ between sandboxes from one snapshot and after a reseeding restore', () => {
        const draws = (sb: MultiUseSandbox): string =>
          [0, 1, 2, 3].map(() => `${String(sb.call('Draw', 'Int'))}/${String(sb.call('DrawLong', 'Long'))}`).join();
        const a = MultiUseSandbox.fromSnapshot(clean);
        const b = MultiUseSandbox.fromSnapshot(clean);
        try {
          const [da, db] = [draws(a), draws(b)];
          expect(da).not.toBe(db);
          for (const part of [0, 1]) {
            expect(da.split(',').map((x) => x.split('/')[part])).not.toEqual(db.split(',').map((x) => x.split('/')[part]));
          }
        } finally {
          a.close();
          b.close();
        }
        const before = draws(s);
        s.restore(clean);
        expect(draws(s)).toBe(before); // a plain restore replays the snapshot's sequence
        s.restore(clean, { reseed: true });
        expect(draws(s)).not.toBe(before);
      });
    });
  }
});
