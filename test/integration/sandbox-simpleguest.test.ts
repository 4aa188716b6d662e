// Every simpleguest function on a real sandbox: exact results, exact error classes and codes.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ParameterValue as P, ReturnType, type ReturnTypeName, type TypedValue } from '../../src/sandbox/values.js';
import {
  BufferOverflowError, GuestAbortedError, GuestError, GuestExceptionError, PoisonedSandboxError,
  ReturnTypeMismatchError, StackOverflowError, ParameterTypeMismatchError,
} from '../../src/sandbox/errors.js';
import type { Snapshot } from '../../src/sandbox/snapshot.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { catchError } from '../helpers/errors.js';
import { describeKvm } from '../helpers/kvm.js';
import { type TestSandbox, simpleSandbox } from '../helpers/sandbox.js';

const I32_MIN = -0x8000_0000;
const I32_MAX = 0x7fff_ffff;
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

describeKvm('simpleguest on a MultiUseSandbox', () => {
  let t: TestSandbox;
  let clean: Snapshot;
  beforeAll(() => {
    t = simpleSandbox({ inputDataSize: 0x8000, outputDataSize: 0x8000 });
    clean = t.sandbox.snapshot();
  });
  afterAll(() => t.sandbox.close());
  beforeEach(() => {
    t.sandbox.restore(clean);
    t.printed.length = 0;
    t.logs.length = 0;
    t.hostCalls.length = 0;
  });
  const call = (name: string, ret: ReturnTypeName, ...params: TypedValue[]): unknown =>
    t.sandbox.callGuestFunctionByName(name, ret, params);

  it('runs the seed example: PrintOutput through the host print function', () => {
    expect(t.sandbox.callGuestFunctionByName('PrintOutput', ReturnType.Int,
      [P.String('Hello from a VM guest!\n')])).toBe(23);
    expect(t.printed.join('')).toBe('Hello from a VM guest!\n');
  });

  it('printf output still buffered when a call returns reaches the print function by the end of that call, once', () => {
    t.printed.length = 0;
    expect(call('PrintBuffered', 'Int', P.String('no newline, no fflush'))).toBe(21);
    expect(t.printed.join('')).toBe('no newline, no fflush');
    expect(call('Echo', 'String', P.String('x'))).toBe('x'); // nothing buffered: nothing printed again
    expect(t.printed.join('')).toBe('no newline, no fflush');
  });

  describe('echoes every value type at its boundaries', () => {
    it.each([
      ['Echo', 'String', P.String('hi'), 'hi'],
      ['Echo', 'String', P.String(''), ''],
      ['Echo', 'String', P.String('héllo wörld ✓ 🚀'), 'héllo wörld ✓ 🚀'],
      ['EchoI32', 'Int', P.Int(I32_MIN), I32_MIN],
      ['EchoI32', 'Int', P.Int(I32_MAX), I32_MAX],
      ['EchoI32', 'Int', P.Int(0), 0],
      ['EchoU32', 'UInt', P.UInt(0xffff_ffff), 0xffff_ffff],
      ['EchoU32', 'UInt', P.UInt(0), 0],
      ['EchoI64', 'Long', P.Long(I64_MIN), I64_MIN],
      ['EchoI64', 'Long', P.Long(I64_MAX), I64_MAX],
      ['EchoU64', 'ULong', P.ULong(U64_MAX), U64_MAX],
      ['EchoU64', 'ULong', P.ULong(0n), 0n],
      ['EchoFloat', 'Float', P.Float(1.5), 1.5],
      ['EchoFloat', 'Float', P.Float(-3.4028234663852886e38), -3.4028234663852886e38],
      ['EchoDouble', 'Double', P.Double(Number.MAX_VALUE), Number.MAX_VALUE],
      ['EchoDouble', 'Double', P.Double(-5e-324), -5e-324],
      ['EchoBool', 'Bool', P.Bool(true), true],
      ['EchoBool', 'Bool', P.Bool(false), false],
    ] as const)('%s(%s %o)', (name, ret, arg, expected) => {
      expect(call(name, ret, arg)).toStrictEqual(expected);
    });

    it('keeps NaN and -0 through EchoDouble', () => {
      expect(call('EchoDouble', 'Double', P.Double(NaN))).toBeNaN();
      expect(Object.is(call('EchoDouble', 'Double', P.Double(-0)), -0)).toBe(true);
    });
  });

  it('takes plain JS values through call()', () => {
    expect(t.sandbox.call('Echo', 'String', 'plain')).toBe('plain');
    expect(t.sandbox.call('EchoI32', 'Int', -7)).toBe(-7);
    expect(t.sandbox.call('EchoI64', 'Long', 5n)).toBe(5n);
    expect(t.sandbox.call('EchoBool', 'Bool', true)).toBe(true);
    expect(t.sandbox.call('EchoDouble', 'Double', 0.5)).toBe(0.5);
  });

  it("call() converts plain values to the types simpleguest's ELF declares", () => {
    // LogMessage(String, Long): the 3 becomes a Long, as declared (without the note it went as an Int).
    expect(t.sandbox.call('LogMessage', 'Int', 'hi', 3)).toBe(2);
    expect(t.sandbox.call('EchoI64', 'Long', 5)).toBe(5n);
    expect(t.sandbox.call('EchoU32', 'UInt', 4_000_000_000)).toBe(4_000_000_000);
    expect(t.sandbox.call('EchoFloat', 'Float', 1.5)).toBe(1.5);
    // A wrong return type or argument is refused before the guest runs, naming the signature.
    expect(() => t.sandbox.call('Add', 'String', 1, 2)).toThrow(ReturnTypeMismatchError);
    expect(() => t.sandbox.call('Add', 'Int', 1)).toThrow(/Add\(Int, Int\) -> Int takes 2 arguments, got 1/);
    expect(() => t.sandbox.call('EchoI32', 'Int', 'x')).toThrow(ParameterTypeMismatchError);
    expect(t.hostCalls).toEqual([]);
    expect(t.sandbox.poisoned).toBe(false);
  });

  it('without the ELF note, a wrongly guessed plain type fails in the guest with a hint saying what to do', () => {
    // simpleguest with its PT_NOTE program header turned into PT_NULL: no declared functions.
    const bytes = new Uint8Array(readFileSync(bundledGuestPath('simpleguest')));
    const v = new DataView(bytes.buffer);
    const phoff = Number(v.getBigUint64(32, true));
    let notes = 0;
    for (let i = 0; i < v.getUint16(56, true); i++) {
      if (v.getUint32(phoff + i * 56, true) === 4) { v.setUint32(phoff + i * 56, 0, true); notes++; }
    }
    expect(notes).toBe(1);
    const binary = GuestBinary.buffer(bytes);
    expect(binary.functions()).toEqual([]);
    using s = UninitializedSandbox.create(binary).evolve();
    const e = catchError(() => s.call('LogMessage', 'Int', 'hi', 3));
    expect(e).toBeInstanceOf(GuestError);
    expect((e as GuestError).guestCode).toBe(14);
    expect((e as Error).message).toMatch(/Expected parameter type Long for parameter index 1 of function LogMessage but got Int\. \(call\(\) typed its plain arguments as \(String, Int\); the guest's ELF declares no signature for LogMessage: pass ParameterValue\.Long\(3n\)/);
    expect(s.call('LogMessage', 'Int', 'hi', 3n)).toBe(2);
  });

  it('NoOp returns undefined', () => {
    expect(call('NoOp', 'Void')).toBeUndefined();
  });

  it('PrintTwoArgs .. PrintElevenArgs print every argument and return the length', () => {
    const args = [P.String('a'), P.Int(2), P.Long(3n), P.String('d'), P.String('e'), P.Bool(true),
      P.Bool(false), P.UInt(8), P.ULong(9n), P.Int(10), P.Float(3.5)];
    const names = ['Two', 'Three', 'Four', 'Five', 'Six', 'Seven', 'Eight', 'Nine', 'Ten', 'Eleven'];
    names.forEach((n, i) => {
      t.printed.length = 0;
      const len = call(`Print${n}Args`, 'Int', ...args.slice(0, i + 2));
      expect(len).toBe(t.printed.join('').length);
    });
    expect(t.printed.join('')).toBe('Message: arg1:a arg2:2 arg3:3 arg4:d arg5:e arg6:true arg7:false arg8:8 arg9:9 arg10:10 arg11:3.500\n');
  });

  it('handles byte arrays: zeroing, echo, 24 KiB in and 8 KiB out', () => {
    expect(call('SetByteArrayToZero', 'VecBytes', P.VecBytes(Uint8Array.of(1, 2, 3)))).toStrictEqual(new Uint8Array(3));
    const data = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    expect(call('GetSizePrefixedBuffer', 'VecBytes', P.VecBytes(data))).toStrictEqual(data);
    expect(call('GetSizePrefixedBuffer', 'VecBytes', P.VecBytes(new Uint8Array(0)))).toStrictEqual(new Uint8Array(0));
    const big = Uint8Array.from({ length: 24 * 1024 }, (_, i) => (i * 7) & 0xff);
    expect(call('24K_in_8K_out', 'VecBytes', P.VecBytes(big))).toStrictEqual(big.slice(0, 8 * 1024));
  });

  it('refuses a call that does not fit the input buffer without poisoning', () => {
    expect(() => call('Echo', 'String', P.String('x'.repeat(0x9000)))).toThrow(BufferOverflowError);
    expect(t.sandbox.poisoned).toBe(false);
    expect(call('Echo', 'String', P.String('still fine'))).toBe('still fine');
  });

  it('stack and heap functions return their sizes', () => {
    expect(call('StackAllocate', 'Int', P.Int(4096))).toBe(4096);
    expect(call('SmallVar', 'Int')).toBe(1024);
    expect(call('LargeVar', 'Int')).toBe(65536);
    expect(call('CallMalloc', 'Int', P.Int(4000))).toBe(4000);
    expect(call('MallocAndFree', 'Int', P.Int(50_000))).toBe(50_000);
    // MallocAndFree really frees: the 128 KiB heap survives many 50 KB rounds.
    for (let i = 0; i < 10; i++) expect(call('MallocAndFree', 'Int', P.Int(50_000))).toBe(50_000);
    expect(call('BufferOverrun', 'Int', P.String('short'))).toBe(12);
  });

  it('keeps static state across calls', () => {
    expect(call('SetStatic', 'Int')).toBe(5);
    expect(call('AddToStatic', 'Int', P.Int(37))).toBe(42);
    expect(call('GetStatic', 'Int')).toBe(42);
  });

  it('calls host functions from the guest', () => {
    expect(call('GuestMethod1', 'Int', P.String('world'))).toBe('Hello from GuestFunction1, world'.length);
    expect(t.hostCalls).toEqual([{ name: 'HostMethod1', args: ['Hello from GuestFunction1, world'] }]);
    expect(call('Add', 'Int', P.Int(40), P.Int(2))).toBe(42);
  });

  it.each([
    ['Int', P.Int(I32_MIN), I32_MIN],
    ['UInt', P.UInt(0xffff_ffff), 0xffff_ffff],
    ['Long', P.Long(I64_MIN), I64_MIN],
    ['ULong', P.ULong(U64_MAX), U64_MAX],
    ['Float', P.Float(0.25), 0.25],
    ['Double', P.Double(-1e300), -1e300],
    ['Bool', P.Bool(true), true],
    ['String', P.String('ünïcödé'), 'ünïcödé'],
    ['VecBytes', P.VecBytes(Uint8Array.of(0, 255, 7)), Uint8Array.of(0, 255, 7)],
  ] as const)('RoundTripHost%s goes guest -> host -> guest -> host', (type, arg, expected) => {
    expect(call(`RoundTripHost${type}`, type, arg)).toStrictEqual(expected);
  });

  it('logs reach the logger with their level', () => {
    expect(call('LogMessage', 'Int', P.String('hello log'), P.Long(3n))).toBe(9);
    expect(t.logs).toHaveLength(1);
    // LogMessage's level is an hl_Level (Rust's log::Level): 3 is Info, Information (2) on the wire
    expect(t.logs[0]).toMatchObject({ message: 'hello log', level: 2 });
  });

  describe('errors that do not poison', () => {
    it('an unknown function is GuestError 4', () => {
      const e = catchError(() => call('NoSuchFunction', 'Int'));
      expect(e).toBeInstanceOf(GuestError);
      expect(e).toMatchObject({ code: 'ERR_GUEST_ERROR', guestCode: 4 });
      expect(t.sandbox.poisoned).toBe(false);
    });

    it('a wrong parameter type is GuestError 14, a wrong count GuestError 5', () => {
      expect(catchError(() => call('EchoI32', 'Int', P.String('x')))).toMatchObject({ guestCode: 14 });
      expect(catchError(() => call('EchoI32', 'Int'))).toMatchObject({ guestCode: 5 });
      expect(t.sandbox.poisoned).toBe(false);
    });

    it('a result of another type is ReturnTypeMismatchError', () => {
      const e = catchError(() => call('EchoI32', 'String', P.Int(1)));
      expect(e).toBeInstanceOf(ReturnTypeMismatchError);
      expect(e).toMatchObject({ code: 'ERR_RETURN_TYPE_MISMATCH' });
      expect(t.sandbox.poisoned).toBe(false);
    });

    it('a value that does not fit its type is ParameterTypeMismatchError before the guest runs', () => {
      expect(() => t.sandbox.call('EchoI32', 'Int', {} as never /* not a CallArgument: checked at run time */)).toThrow(ParameterTypeMismatchError);
      expect(() => P.Int(2 ** 31)).toThrow(ParameterTypeMismatchError);
      expect(t.sandbox.poisoned).toBe(false);
    });
  });

  describe('errors that poison, and restore', () => {
    function expectPoisonedThenRestored(): void {
      expect(t.sandbox.poisoned).toBe(true);
      expect(t.sandbox.status()).toBe('poisoned');
      expect(catchError(() => call('Echo', 'String', P.String('x')))).toBeInstanceOf(PoisonedSandboxError);
      t.sandbox.restore(clean);
      expect(call('Echo', 'String', P.String('back'))).toBe('back');
    }

    it('GuestAbortWithCode', () => {
      const e = catchError(() => call('GuestAbortWithCode', 'Int', P.Int(42)));
      expect(e).toBeInstanceOf(GuestAbortedError);
      expect(e).toMatchObject({ code: 'ERR_GUEST_ABORTED', abortCode: 42 });
      expectPoisonedThenRestored();
    });

    it('GuestAbortWithMessage', () => {
      const e = catchError(() => call('GuestAbortWithMessage', 'Int', P.Int(7), P.String('bye now')));
      expect(e).toMatchObject({ code: 'ERR_GUEST_ABORTED', abortCode: 7, guestMessage: 'bye now' });
      expectPoisonedThenRestored();
    });

    it('ExhaustHeap aborts with MallocFailed (13)', () => {
      const e = catchError(() => call('ExhaustHeap', 'Int'));
      expect(e).toMatchObject({ code: 'ERR_GUEST_ABORTED', abortCode: 13 });
      expectPoisonedThenRestored();
    });

    it('StackOverflow and InfiniteRecursion are StackOverflowError', () => {
      expect(call('StackOverflow', 'Int', P.Int(2))).toBeTypeOf('number');
      expect(catchError(() => call('StackOverflow', 'Int', P.Int(100)))).toBeInstanceOf(StackOverflowError);
      expectPoisonedThenRestored();
      const e = catchError(() => call('InfiniteRecursion', 'Int'));
      expect(e).toBeInstanceOf(StackOverflowError);
      expect(e).toMatchObject({ code: 'ERR_STACK_OVERFLOW' });
      expectPoisonedThenRestored();
    });

    it('TriggerException is a #UD (vector 6)', () => {
      const e = catchError(() => call('TriggerException', 'Void'));
      expect(e).toBeInstanceOf(GuestExceptionError);
      expect(e).toMatchObject({ code: 'ERR_GUEST_EXCEPTION', vector: 6 });
      expect((e as Error).message).toContain('Exception vector: 6');
      expectPoisonedThenRestored();
    });

    it.each(['ExecuteOnStack', 'ExecuteOnHeap'])('%s faults: the page is not executable', (name) => {
      const e = catchError(() => call(name, 'Int'));
      expect(e).toBeInstanceOf(GuestExceptionError);
      const x = e as GuestExceptionError;
      expect(x.vector).toBe(14);
      expect(x.errorCode & 0x10n).toBe(0x10n); // instruction fetch
      expect(x.cr2).toBe(x.rip);
      expectPoisonedThenRestored();
    });
  });
});

