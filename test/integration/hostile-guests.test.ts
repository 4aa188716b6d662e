// Hostile guests on real KVM: every contract violation of guests/hostile ends in its exact typed error or a defined result, poisons exactly when it should, and both the sandbox (after restore) and the host process recover.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HyperlightError } from '../../src/errors.js';
import { MemorySnapshot } from '../../src/mem/snapshot.js';
import { WireCodec } from '../../src/sandbox/codec.js';
import {
  BufferOverflowError, EmulationFailureError, ExecutionCanceledError, GuestAbortedError, GuestError,
  GuestExceptionError, GuestProtocolError, GuestTripleFaultError, HostFunctionNotFoundError,
  MemoryAccessViolationError, ParameterTypeMismatchError, PoisonedSandboxError,
} from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { guestMsrWritesDenied } from '../../src/sandbox/msr-filter.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import type { Snapshot } from '../../src/sandbox/snapshot.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import type { SandboxConfig } from '../../src/sandbox/config.js';
import { ParameterValue as P, type ReturnTypeName, type TypedValue } from '../../src/sandbox/values.js';
import { describeKvm } from '../helpers/kvm.js';
import { simpleSandbox } from '../helpers/sandbox.js';
import { catchError } from '../helpers/errors.js';

const HOSTILE = GuestBinary.filePath(bundledGuestPath('hostileguest')).bytes();
const MiB = 1024 * 1024;

interface Hostile {
  sandbox: MultiUseSandbox;
  snap: Snapshot;
  printed: string[];
  hostAdds: { n: number };
}

/**
 * A hostileguest sandbox with HostAdd and a print sink that keeps every chunk. Its calls
 * get 30 s (floods take seconds on this KVM) unless `config` says otherwise.
 */
function hostile(config?: SandboxConfig): Hostile {
  const u = UninitializedSandbox.create(GuestBinary.buffer(HOSTILE), { maxExecutionTimeMs: 30_000, ...config });
  const printed: string[] = [];
  const hostAdds = { n: 0 };
  u.registerPrint((t) => { printed.push(t); return t.length; });
  u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => {
    hostAdds.n++;
    return a + b;
  });
  const sandbox = u.evolve();
  return { sandbox, snap: sandbox.snapshot(), printed, hostAdds };
}


// One simpleguest sandbox for the whole file: after every hostile case it must still answer.
let healthy: MultiUseSandbox;
beforeAll(() => { healthy = simpleSandbox().sandbox; });
afterAll(() => healthy?.close());

/** The sandbox was poisoned by `e`, refuses calls, and works again after restore; the host is fine. */
function expectPoisonedThenRecovers(h: Hostile, e: unknown): void {
  expect(h.sandbox.poisoned).toBe(true);
  expect(h.sandbox.status()).toBe('poisoned');
  const refused = catchError(() => h.sandbox.call('Ping', 'Int', 1));
  expect(refused).toBeInstanceOf(PoisonedSandboxError);
  expect((refused as Error).cause).toBe(e);
  expectRecovers(h);
}

/** After restore the sandbox answers from the snapshot's state, and a normal sandbox works too. */
function expectRecovers(h: Hostile): void {
  h.sandbox.restore(h.snap);
  expect(h.sandbox.status()).toBe('ready');
  expect(h.sandbox.call('Ping', 'Int', 41)).toBe(42);
  expect(h.sandbox.call('Ping', 'Int', -1)).toBe(0);
  expect(healthy.call('Echo', 'String', 'host ok')).toBe('host ok');
}

interface PoisonCase {
  fn: string;
  ret: ReturnTypeName;
  args: TypedValue[];
  cls: new (...a: never[]) => HyperlightError;
  code: string;
  message?: RegExp;
  fields?: Record<string, unknown>;
}

/** `Fn(arg, ...) -> ERR_CODE` with byte arrays shown by length and integers in hex. */
function title(c: PoisonCase): string {
  const arg = (a: TypedValue): string => a.type === 'VecBytes' ? `<${a.value.length} bytes>`
    : typeof a.value === 'bigint' || (typeof a.value === 'number' && a.value > 255) ? `0x${a.value.toString(16)}`
      : JSON.stringify(a.value);
  return `${c.fn}(${c.args.map(arg).join(', ')}) -> ${c.code}${c.message ? ` ${c.message.source.slice(0, 40)}` : ''}`;
}

/** Builds a size-prefixed buffer from u32 words (little-endian). */
function words(...w: number[]): Uint8Array {
  const b = new Uint8Array(w.length * 4);
  const v = new DataView(b.buffer);
  w.forEach((x, i) => v.setUint32(i * 4, x >>> 0, true));
  return b;
}

const codec = new WireCodec();
const validInt = codec.encodeFunctionCallResult({ ok: true, value: P.Int(7) }).slice();
const validString = codec.encodeFunctionCallResult({ ok: true, value: P.String('abc') }).slice();
/** `validString` with its string length made huge (the u32 just before "abc"). */
const stringTooLong = ((): Uint8Array => {
  const b = validString.slice();
  const at = Buffer.from(b).indexOf(Buffer.from('abc')) - 4;
  new DataView(b.buffer).setUint32(at, 0x7fff_ffff, true);
  return b;
})();
/** `validInt` whose root table's soffset points its vtable at the table itself. */
const selfVtable = ((): Uint8Array => {
  const b = validInt.slice();
  const v = new DataView(b.buffer);
  v.setInt32(4 + v.getUint32(4, true), 0, true);
  return b;
})();
/**
 * The closest a flatbuffer gets to a loop: uoffsets only point forward, so the `result`
 * field's uoffset is 0 and points at itself, and the "table" found there has itself as
 * vtable. Layout: [size 24][root 12][vtable 8,12,4,8][table: soffset 8, tag 1, uoffset 0].
 */
const cyclic = words(24, 12, (12 << 16) | 8, (8 << 16) | 4, 8, 1, 0);

const PROTOCOL_CASES: PoisonCase[] = [
  { fn: 'OutputSp', ret: 'Int', args: [P.ULong(999_999n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /stack pointer 999999 is outside \[8, 16384\]/ },
  { fn: 'OutputSp', ret: 'Int', args: [P.ULong(8n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /pop from an empty I\/O buffer/ },
  { fn: 'OutputSp', ret: 'Int', args: [P.ULong(2n ** 64n - 1n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /exceeds 2\^53 - 1/ },
  { fn: 'OutputBackPointer', ret: 'Int', args: [P.ULong(4n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /back-pointer 4 is outside/ },
  { fn: 'OutputBackPointer', ret: 'Int', args: [P.ULong(100_000n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /back-pointer 100000 is outside/ },
  { fn: 'OutputSizeClaim', ret: 'Int', args: [P.UInt(0xffff_ffff)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /claims 4294967295 bytes/ },
  { fn: 'BadUtf8', ret: 'String', args: [], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /not valid UTF-8/ },
  { fn: 'UnterminatedString', ret: 'String', args: [], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /lacks its NUL terminator/ },
  { fn: 'PushElement', ret: 'Int', args: [P.VecBytes(words(8, 0xffff_fff0, 0)), P.Int(108)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /root table at \d+ is out of bounds/ },
  { fn: 'PushElement', ret: 'Int', args: [P.VecBytes(selfVtable), P.Int(108)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /vtable .* bad size/ },
  { fn: 'PushElement', ret: 'Int', args: [P.VecBytes(cyclic), P.Int(108)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /malformed FunctionCallResult/ },
  { fn: 'PushElement', ret: 'String', args: [P.VecBytes(stringTooLong), P.Int(108)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /string at \d+ of 2147483647 bytes overruns/ },
  { fn: 'PushElement', ret: 'Int', args: [P.VecBytes(validInt), P.Int(101)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /malformed FunctionCall/ },
  { fn: 'PushElement', ret: 'Int', args: [P.VecBytes(words(4, 0)), P.Int(99)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /malformed GuestLogData/ },
  { fn: 'OutPort', ret: 'Int', args: [P.Int(1234), P.UInt(0)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /OUT to unknown port 1234/ },
  { fn: 'OutPort', ret: 'Int', args: [P.Int(0xffff), P.UInt(0xffff_ffff)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /OUT to unknown port 65535/ },
  { fn: 'OutByte', ret: 'Int', args: [P.Int(102), P.Int(1)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /abort chunks are 4-byte OUTs, got 1 x 1/ },
  { fn: 'InPort', ret: 'UInt', args: [P.Int(99)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /IN from port 99/ },
  { fn: 'InPort', ret: 'UInt', args: [P.Int(0x3f8)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /IN from port 1016/ },
  { fn: 'AbortBadChunk', ret: 'Int', args: [], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /claims 7 data bytes/ },
  { fn: 'AbortEmpty', ret: 'Int', args: [], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /ended without an abort code/ },
  { fn: 'AbortShortException', ret: 'Int', args: [], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /needs a 25-byte exception payload, got 2 bytes/ },
  // Regression: a Halt in the middle of an abort stream used to be accepted as a clean end
  // of the call, and the stale bytes became the start of the next call's abort report.
  { fn: 'AbortUnterminated', ret: 'Int', args: [], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /halted in the middle of an abort stream/ },
  { fn: 'CliHlt', ret: 'Void', args: [], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /pop from an empty I\/O buffer/ },
];

const CPU_CASES: PoisonCase[] = [
  { fn: 'TripleFault', ret: 'Void', args: [], cls: GuestTripleFaultError, code: 'ERR_GUEST_TRIPLE_FAULT' },
  { fn: 'LoadCr3', ret: 'Int', args: [P.ULong(0x7fff_f000n)], cls: GuestTripleFaultError, code: 'ERR_GUEST_TRIPLE_FAULT' },
  { fn: 'JumpToZero', ret: 'Void', args: [], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 14, rip: 0n, cr2: 0n, errorCode: 0x10n } },
  { fn: 'SmashRsp', ret: 'Void', args: [], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 14, cr2: 0xffff_ffff_ffff_fff8n } },
  { fn: 'ReadMsr', ret: 'ULong', args: [P.UInt(0x1234_5678)], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 13 } },
  { fn: 'WildAccess', ret: 'ULong', args: [P.ULong(0x4000_0000n), P.Int(0)], cls: MemoryAccessViolationError, code: 'ERR_MEMORY_ACCESS_VIOLATION', fields: { address: 0x4000_0000n, access: 'read' } },
  { fn: 'WildAccess', ret: 'ULong', args: [P.ULong(0x4000_0000n + 0x1238n), P.Int(1)], cls: MemoryAccessViolationError, code: 'ERR_MEMORY_ACCESS_VIOLATION', fields: { address: 0x4000_1238n, access: 'write' } },
  { fn: 'WildAccess', ret: 'ULong', args: [P.ULong(0x3e_8000n), P.Int(0)], cls: MemoryAccessViolationError, code: 'ERR_MEMORY_ACCESS_VIOLATION', fields: { address: 0x3e_8000n, access: 'read' } },
  { fn: 'AbortHuge', ret: 'Int', args: [P.Int(100 * 1024)], cls: GuestAbortedError, code: 'ERR_GUEST_ABORTED', fields: { abortCode: 42, guestMessage: 'ABC'.repeat(341) } },
  { fn: 'CallHostNoPop', ret: 'Int', args: [P.Int(10_000)], cls: BufferOverflowError, code: 'ERR_BUFFER_OVERFLOW' },
];

describeKvm('hostile guests: protocol violations poison with GuestProtocolError', () => {
  let h: Hostile;
  beforeAll(() => { h = hostile(); });
  afterAll(() => h?.sandbox.close());

  for (const c of PROTOCOL_CASES) it(title(c), () => {
    const e = catchError(() => h.sandbox.callGuestFunctionByName(c.fn, c.ret, c.args));
    expect(e).toBeInstanceOf(c.cls);
    expect(e).toMatchObject({ code: c.code, ...c.fields });
    if (c.message) expect((e as Error).message).toMatch(c.message);
    expectPoisonedThenRecovers(h, e);
  });
});

describeKvm('hostile guests: CPU state, memory and resource abuse poison with their own error', () => {
  let h: Hostile;
  beforeAll(() => { h = hostile(); });
  afterAll(() => h?.sandbox.close());

  for (const c of CPU_CASES) it(title(c), () => {
    const e = catchError(() => h.sandbox.callGuestFunctionByName(c.fn, c.ret, c.args));
    expect(e).toBeInstanceOf(c.cls);
    expect(e).toMatchObject({ code: c.code, ...c.fields });
    if (c.message) expect((e as Error).message).toMatch(c.message);
    expectPoisonedThenRecovers(h, e);
  });

  it('executing guest-physical memory that does not exist fails with a typed error', () => {
    const e = catchError(() => h.sandbox.callGuestFunctionByName('WildAccess', 'ULong', [P.ULong(0x4000_0000n), P.Int(2)]));
    // KVM cannot fetch from MMIO: this KVM reports an emulation failure; others may report
    // the MMIO exit or shut the vCPU down.
    expect([EmulationFailureError, MemoryAccessViolationError, GuestTripleFaultError].some((k) => e instanceof k)).toBe(true);
    expectPoisonedThenRecovers(h, e);
  });

  it('int3 is an emulation failure on this KVM (a #BP exception elsewhere) with the bytes at RIP', () => {
    const e = catchError(() => h.sandbox.call('Int3', 'Void'));
    if (e instanceof EmulationFailureError) expect(e.instructionBytes[0]).toBe(0xcc);
    else expect(e).toMatchObject({ code: 'ERR_GUEST_EXCEPTION', vector: 3 });
    expectPoisonedThenRecovers(h, e);
  });

  it('a corrupted host page table does not turn the emulation-failure report into another error (regression: GuestMemoryBoundsError)', () => {
    // PML4[0] of the host-built tables now points at a PDPT far outside guest memory; the
    // guest keeps running on its own tables and executes int3.
    const pml4 = BigInt(h.sandbox.layout.pageTables.gpa);
    const e = catchError(() => h.sandbox.callGuestFunctionByName('CorruptThenInt3', 'Void', [P.ULong(pml4), P.ULong(0x7fff_f000n | 3n)]));
    if (e instanceof EmulationFailureError) expect(e.instructionBytes[0]).toBe(0xcc);
    else expect(e).toMatchObject({ code: 'ERR_GUEST_EXCEPTION', vector: 3 });
    expectPoisonedThenRecovers(h, e);
  });

  it('cli and spin is stopped by the time limit', () => {
    const t = hostile({ maxExecutionTimeMs: 100 });
    try {
      const e = catchError(() => t.sandbox.call('CliSpin', 'Void'));
      expect(e).toBeInstanceOf(ExecutionCanceledError);
      expect(e).toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'timeout' });
      expectPoisonedThenRecovers(t, e);
    } finally {
      t.sandbox.close();
    }
  });

  it('IN then restore: the next call starts from the snapshot (regression: KVM completed the IN after restore had set the registers)', () => {
    for (let i = 0; i < 3; i++) {
      const e = catchError(() => h.sandbox.call('InPort', 'UInt', 0x60));
      expect(e).toBeInstanceOf(GuestProtocolError);
      h.sandbox.restore(h.snap);
      expect(h.sandbox.call('Ping', 'Int', i)).toBe(i + 1);
    }
    const e = catchError(() => h.sandbox.callGuestFunctionByName('WildAccess', 'ULong', [P.ULong(0x4000_0000n), P.Int(0)]));
    expect(e).toBeInstanceOf(MemoryAccessViolationError);
    h.sandbox.restore(h.snap);
    expect(h.sandbox.call('Ping', 'Int', 9)).toBe(10);
  });

  it('guest wrmsr cannot leave state behind: it faults under the MSR filter, or restore puts the value back (regression: MSRs survived restore)', () => {
    const LSTAR = 0xc000_0082;
    const KERNEL_GS_BASE = 0xc000_0102;
    const SYSENTER_EIP = 0x176;
    const read = (msr: number): unknown => h.sandbox.callGuestFunctionByName('ReadMsr', 'ULong', [P.UInt(msr)]);
    h.sandbox.restore(h.snap);
    const before = [read(LSTAR), read(KERNEL_GS_BASE), read(SYSENTER_EIP)];
    const filtered = guestMsrWritesDenied(h.sandbox.machine.vm);
    for (const msr of [LSTAR, KERNEL_GS_BASE, SYSENTER_EIP]) {
      const write = (): unknown => h.sandbox.callGuestFunctionByName('WriteMsr', 'Int', [P.UInt(msr), P.ULong(0xdead_b000n)]);
      if (filtered) {
        const e = catchError(write);
        expect(e).toMatchObject({ code: 'ERR_GUEST_EXCEPTION', vector: 13 });
        expectPoisonedThenRecovers(h, e);
      } else {
        expect(write()).toBe(1);
        expect(read(msr)).toBe(0xdead_b000n);
      }
    }
    h.sandbox.restore(h.snap);
    expect([read(LSTAR), read(KERNEL_GS_BASE), read(SYSENTER_EIP)]).toEqual(before);
    h.sandbox.restore(h.snap);
  });
});

describeKvm('hostile guests: defined results that must not poison', () => {
  let h: Hostile;
  beforeAll(() => { h = hostile(); });
  afterAll(() => h?.sandbox.close());

  it('its own page tables let the guest read the host-built tables (unmapped for it) and write its read-only PEB; restore puts them back', () => {
    const { layout, memory } = h.sandbox.machine;
    const view = new DataView(memory.bytes.buffer, memory.bytes.byteOffset);
    h.sandbox.restore(h.snap);
    const before = MemorySnapshot.capture(memory);
    const pml4 = view.getBigUint64(layout.pageTables.gpa, true);
    expect(h.sandbox.callGuestFunctionByName('WildAccess', 'ULong', [P.ULong(BigInt(layout.pageTables.gpa)), P.Int(0)])).toBe(pml4);
    expect(h.sandbox.callGuestFunctionByName('WildAccess', 'ULong', [P.ULong(BigInt(layout.peb.gpa) + 0x800n), P.Int(1)])).toBe(0n);
    expect(view.getBigUint64(layout.peb.gpa + 0x800, true)).toBe(0x5a5a_5a5a_5a5a_5a5an);
    expect(h.sandbox.poisoned).toBe(false);
    expect(h.sandbox.call('Ping', 'Int', 1)).toBe(2); // the host never reads the PEB back
    h.sandbox.restore(h.snap);
    expect(view.getBigUint64(layout.peb.gpa + 0x800, true)).toBe(0n);
    const after = MemorySnapshot.capture(memory);
    for (let p = 0; p < memory.size / 4096; p++) expect(Buffer.from(after.page(p)).equals(Buffer.from(before.page(p)))).toBe(true);
  });

  it('host calls with wrong types, a wrong count or an unknown name fail the call with GuestError 17 and a typed cause', () => {
    const cases: [string, TypedValue[], new (...a: never[]) => Error][] = [
      ['CallHostWrongTypes', [], ParameterTypeMismatchError],
      ['CallHostWrongCount', [], ParameterTypeMismatchError],
      ['CallHostUnknown', [P.String('NoSuchHostFunction')], HostFunctionNotFoundError],
      ['CallHostUnknown', [P.String('')], HostFunctionNotFoundError],
    ];
    for (const [fn, args, cause] of cases) {
      const e = catchError(() => h.sandbox.callGuestFunctionByName(fn, 'Int', args));
      expect(e).toBeInstanceOf(GuestError);
      expect(e).toMatchObject({ code: 'ERR_GUEST_ERROR', guestCode: 17 });
      expect((e as Error).cause).toBeInstanceOf(cause);
      expect(h.sandbox.poisoned).toBe(false);
    }
    const e = catchError(() => h.sandbox.call('CallHostWrongReturn', 'String'));
    expect(e).toMatchObject({ code: 'ERR_GUEST_ERROR', guestCode: 15 });
    expect(h.sandbox.call('Ping', 'Int', 2)).toBe(3);
  });

  it('10,000 host calls in a row all reach the host and are answered', () => {
    const before = h.hostAdds.n;
    expect(h.sandbox.call('CallHostRepeatedly', 'Int', 10_000)).toBe(10_000);
    expect(h.hostAdds.n - before).toBe(10_000);
    expect(h.sandbox.poisoned).toBe(false);
  });

  it('10 MiB through HostPrint arrives in full, one output-buffer-sized string at a time', () => {
    h.printed.length = 0;
    const sent = h.sandbox.call('HostPrintFlood', 'Long', BigInt(10 * MiB), 16_000) as bigint;
    expect(sent).toBeGreaterThanOrEqual(BigInt(10 * MiB));
    expect(h.printed.reduce((n, s) => n + s.length, 0)).toBe(Number(sent));
    expect(Math.max(...h.printed.map((s) => s.length))).toBe(16_000);
    h.printed.length = 0;
    expect(h.sandbox.poisoned).toBe(false);
  });

  it('DebugPrint floods arrive in lines of at most 4 KiB; 10 MiB (one exit per byte here) is cut by the time limit', () => {
    h.printed.length = 0;
    expect(h.sandbox.call('DebugFlood', 'Long', 20_000n)).toBe(20_000n);
    expect(h.printed.join('').length).toBe(20_000);
    expect(Math.max(...h.printed.map((s) => s.length))).toBeLessThanOrEqual(4096);
    const t = hostile({ maxExecutionTimeMs: 200 });
    try {
      const e = catchError(() => t.sandbox.call('DebugFlood', 'Long', BigInt(10 * MiB)));
      expect(e).toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'timeout' });
      expect(Math.max(...t.printed.map((s) => s.length))).toBeLessThanOrEqual(4096);
      expectPoisonedThenRecovers(t, e);
    } finally {
      t.sandbox.close();
    }
  });

  it('an exhausted heap fails calls with GuestError 13 (MallocFailed) until restore', () => {
    const first = h.sandbox.call('ExhaustHeapAndFree', 'Int') as number;
    expect(first).toBeGreaterThan(100);
    expect(h.sandbox.call('ExhaustHeapAndFree', 'Int')).toBe(first); // freed blocks are reusable
    expect(h.sandbox.call('AbsurdAllocations', 'Int')).toBe(0);
    const e = catchError(() => h.sandbox.call('ExhaustHeapKeep', 'Int'));
    expect(e).toBeInstanceOf(GuestError);
    expect(e).toMatchObject({ guestCode: 13 });
    expect(h.sandbox.poisoned).toBe(false);
    expect(catchError(() => h.sandbox.call('Ping', 'Int', 1))).toMatchObject({ guestCode: 13 }); // still no heap
    expectRecovers(h);
    expect(h.sandbox.call('ExhaustHeapAndFree', 'Int')).toBe(first);
  });
});

describe('hostile guest inventory', () => {
  it('every case above names a function the hostile guest registers', async () => {
    const { readFileSync } = await import('node:fs');
    const source = readFileSync(new URL('../../guests/hostile/main.c', import.meta.url), 'utf8');
    const registered = new Set([...source.matchAll(/HYPERLIGHT_REGISTER_FUNCTION\("(\w+)"/g)].map((m) => m[1]));
    for (const c of [...PROTOCOL_CASES, ...CPU_CASES]) expect(registered.has(c.fn), c.fn).toBe(true);
  });
});
