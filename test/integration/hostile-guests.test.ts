// Hostile guests on real KVM: every contract violation of guests/hostile ends in its exact typed error or a defined result, poisons exactly when it should, and both the sandbox (after restore) and the host process recover.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HyperlightError } from '../../src/errors.js';
import { WireCodec } from '../../src/sandbox/codec.js';
import {
  BufferOverflowError, ExecutionCanceledError, GuestAbortedError, GuestError,
  GuestExceptionError, GuestProtocolError, HostFunctionNotFoundError,
  MemoryAccessViolationError, ParameterTypeMismatchError, PoisonedSandboxError,
} from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { guestMsrAccessDenied } from '../../src/sandbox/msr-filter.js';
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
  // The doorbell: only aligned 8-byte stores to the ABI's ops; pointers must lie in the guest's own memory.
  { fn: 'DoorbellStore', ret: 'Int', args: [P.ULong(8n * 50n), P.Int(8), P.ULong(0n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /doorbell op 50 is not one of the ABI's/ },
  { fn: 'DoorbellStore', ret: 'Int', args: [P.ULong(8n * 108n + 4n), P.Int(4), P.ULong(0n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /aligned 8-byte writes, got 4 bytes at offset 868/ },
  { fn: 'DoorbellStore', ret: 'Int', args: [P.ULong(8n * 108n), P.Int(1), P.ULong(0n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /got 1 bytes at offset 864/ },
  { fn: 'DoorbellStore', ret: 'Int', args: [P.ULong(8n * 103n + 3n), P.Int(8), P.ULong(0n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /aligned 8-byte writes, got 8 bytes at offset 827/ },
  { fn: 'DebugPrintRange', ret: 'Int', args: [P.ULong(0x5000n), P.ULong(16n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /DebugPrint at 0x5000 \(16 bytes\) lies outside the guest's memory/ },
  { fn: 'DebugPrintRange', ret: 'Int', args: [P.ULong(0xffff_f000n), P.ULong(16n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /lies outside the guest's memory/ },
  { fn: 'DebugPrintRange', ret: 'Int', args: [P.ULong(0x20000n), P.ULong(0xffff_ffffn)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /DebugPrint of 4294967295 bytes exceeds the 65536-byte limit/ },
  { fn: 'AbortEmpty', ret: 'Int', args: [], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /abort record is empty/ },
  { fn: 'AbortAt', ret: 'Int', args: [P.ULong(0x1000n)], cls: GuestProtocolError, code: 'ERR_GUEST_PROTOCOL', message: /the abort record at 0x1000 .* lies outside the guest's memory/ },
];

/** Privileged instructions the hostile guest runs at CPL3 (guests/hostile/main.c `privileged`). */
const PRIVILEGED: readonly [number, string, number][] = [
  [0, 'wrmsr LSTAR', 13], [1, 'rdmsr steal time', 13], [2, 'mov %cr3', 13], [3, 'lgdt', 13], [4, 'lidt', 13],
  [5, 'cli', 13], [6, 'hlt', 13], [7, 'in', 13], [8, 'out', 13], [9, 'swapgs', 13], [10, 'mov %dr7', 13],
  [11, 'xsetbv', 13], [12, 'invlpg', 13], [14, 'sti', 13], [15, 'mov %cr0', 13], [16, 'wrmsr steal time', 13],
  [17, 'mov %dr0', 13], [18, 'wrmsr KERNEL_GS_BASE', 13], [20, 'ltr', 13],
];

const CPU_CASES: PoisonCase[] = [
  { fn: 'JumpToZero', ret: 'Void', args: [], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 14, rip: 0n, cr2: 0n, errorCode: 0x14n } },
  { fn: 'SmashRsp', ret: 'Void', args: [], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 14, cr2: 0xffff_ffff_ffff_fff8n, errorCode: 0x6n } },
  { fn: 'Int3', ret: 'Void', args: [], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 3 } },
  { fn: 'Divide', ret: 'Int', args: [P.Int(1), P.Int(0)], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 0, errorCode: 0n } },
  // The host's page tables: the null page and the tables are not present (error code U only),
  // the system area is present but supervisor (P|U), the PEB and code read-only (P|W|U).
  { fn: 'WildAccess', ret: 'ULong', args: [P.ULong(0x1000n), P.Int(0)], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 14, cr2: 0x1000n, errorCode: 0x4n } },
  { fn: 'WildAccess', ret: 'ULong', args: [P.ULong(0x5008n), P.Int(0)], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 14, cr2: 0x5008n, errorCode: 0x5n } },
  { fn: 'WildAccess', ret: 'ULong', args: [P.ULong(0x5000n), P.Int(1)], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 14, cr2: 0x5000n, errorCode: 0x7n } },
  { fn: 'WildAccess', ret: 'ULong', args: [P.ULong(0x6000n), P.Int(2)], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 14, cr2: 0x6000n, errorCode: 0x15n } },
  { fn: 'WildAccess', ret: 'ULong', args: [P.ULong(0x4000_0000n), P.Int(0)], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 14, cr2: 0x4000_0000n, errorCode: 0x4n } },
  // A store across the doorbell page's end faults on the unmapped page after it.
  { fn: 'DoorbellStore', ret: 'Int', args: [P.ULong(0xffcn), P.Int(8), P.ULong(0n)], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION', fields: { vector: 14 } },
  { fn: 'DoorbellLoad', ret: 'ULong', args: [P.ULong(0n)], cls: MemoryAccessViolationError, code: 'ERR_MEMORY_ACCESS_VIOLATION', fields: { access: 'read' } },
  { fn: 'AbortHuge', ret: 'Int', args: [P.Int(100 * 1024)], cls: GuestAbortedError, code: 'ERR_GUEST_ABORTED', fields: { abortCode: 0, guestMessage: 'Guest abort buffer overflowed' } },
  { fn: 'CallHostNoPop', ret: 'Int', args: [P.Int(10_000)], cls: BufferOverflowError, code: 'ERR_BUFFER_OVERFLOW' },
  ...PRIVILEGED.map(([which, , vector]): PoisonCase => ({
    fn: 'Privileged', ret: 'Int', args: [P.Int(which), P.ULong(0x1000n)], cls: GuestExceptionError, code: 'ERR_GUEST_EXCEPTION',
    fields: { vector },
  })),
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

  for (const c of CPU_CASES) it(c.fn === 'Privileged' ? `ring 3 cannot run ${PRIVILEGED.find((p) => P.Int(p[0]).value === c.args[0]!.value)![1]}: #GP` : title(c), () => {
    const e = catchError(() => h.sandbox.callGuestFunctionByName(c.fn, c.ret, c.args));
    expect(e).toBeInstanceOf(c.cls);
    expect(e).toMatchObject({ code: c.code, ...c.fields });
    if (c.message) expect((e as Error).message).toMatch(c.message);
    expectPoisonedThenRecovers(h, e);
  });

  it('an exception names the faulting function of the guest ELF', () => {
    const e = catchError(() => h.sandbox.call('Int3', 'Void')) as GuestExceptionError;
    expect(e.location?.symbol).toBe('hl_wrapped_int3');
    expect(e.message).toMatch(/\(ELF 0x[0-9a-f]+ hl_wrapped_int3\+0x[0-9a-f]+\)/);
    expect(e.location!.imageOffset).toBe(Number(e.rip) - h.sandbox.layout.image.gpa);
    h.sandbox.restore(h.snap);
  });

  it('int $0x80 and vmcall: a fault or nothing, never a way out', () => {
    // int n: #GP on VMX/SVM (vector 0x80 lies beyond the IDT), #UD on kvm_pvm.
    const e = catchError(() => h.sandbox.callGuestFunctionByName('Privileged', 'Int', [P.Int(19), P.ULong(0n)]));
    expect([6, 13]).toContain((e as GuestExceptionError).vector);
    h.sandbox.restore(h.snap);
    // vmcall at CPL3: KVM refuses the hypercall (-KVM_EPERM in RAX) and the guest runs on,
    // or the CPU raises #UD/#GP; either way the sandbox answers from its own state after.
    let r: unknown;
    try {
      r = h.sandbox.callGuestFunctionByName('Privileged', 'Int', [P.Int(13), P.ULong(0n)]);
    } catch (err) {
      expect(err).toBeInstanceOf(GuestExceptionError);
      h.sandbox.restore(h.snap);
    }
    if (r !== undefined) expect(r).toBe(1);
    expect(h.sandbox.call('Ping', 'Int', 5)).toBe(6);
  });

  it('a spinning guest is stopped by the time limit', () => {
    const t = hostile({ maxExecutionTimeMs: 100 });
    try {
      const e = catchError(() => t.sandbox.call('Spin', 'Void'));
      expect(e).toBeInstanceOf(ExecutionCanceledError);
      expect(e).toMatchObject({ code: 'ERR_EXECUTION_CANCELED', reason: 'timeout' });
      expectPoisonedThenRecovers(t, e);
    } finally {
      t.sandbox.close();
    }
  });

  it('a fault then restore: the next call starts from the snapshot (regression: KVM completed a pending exit after restore had set the registers)', () => {
    for (let i = 0; i < 3; i++) {
      const e = catchError(() => h.sandbox.callGuestFunctionByName('Privileged', 'Int', [P.Int(7), P.ULong(0n)]));
      expect(e).toBeInstanceOf(GuestExceptionError);
      h.sandbox.restore(h.snap);
      expect(h.sandbox.call('Ping', 'Int', i)).toBe(i + 1);
    }
    const e = catchError(() => h.sandbox.callGuestFunctionByName('DoorbellLoad', 'ULong', [P.ULong(8n)]));
    expect(e).toBeInstanceOf(MemoryAccessViolationError);
    h.sandbox.restore(h.snap);
    expect(h.sandbox.call('Ping', 'Int', 9)).toBe(10);
  });

  it('no guest MSR access gets through: the filter denies all, and ring 3 faults before it', () => {
    expect(guestMsrAccessDenied(h.sandbox.machine.vm)).toBe(true);
    const before = h.sandbox.machine.vcpu.getMsrs([0xc000_0082, 0xc000_0102, 0x4b56_4d03]);
    for (const which of [0, 16, 18]) {
      const e = catchError(() => h.sandbox.callGuestFunctionByName('Privileged', 'Int', [P.Int(which), P.ULong(0xdead_b000n)]));
      expect(e).toMatchObject({ code: 'ERR_GUEST_EXCEPTION', vector: 13 });
      h.sandbox.restore(h.snap);
    }
    expect(h.sandbox.machine.vcpu.getMsrs([0xc000_0082, 0xc000_0102, 0x4b56_4d03])).toEqual(before);
  });
});

describeKvm('hostile guests: defined results that must not poison', () => {
  let h: Hostile;
  beforeAll(() => { h = hostile(); });
  afterAll(() => h?.sandbox.close());

  it('ring 3 changes its own registers, FPU/SSE state and FS/GS base freely; restore puts all of it back', () => {
    const { vcpu } = h.sandbox.machine;
    h.sandbox.restore(h.snap);
    const before = vcpu.getXsave().slice();
    expect(h.sandbox.callGuestFunctionByName('DirtyCpuState', 'Int', [P.ULong(7n), P.Int(1)])).toBeGreaterThanOrEqual(0);
    const dirty = vcpu.getXsave();
    expect(Buffer.from(dirty).equals(Buffer.from(before))).toBe(false); // MXCSR, x87 and XMM changed
    h.sandbox.restore(h.snap);
    expect(Buffer.from(vcpu.getXsave()).equals(Buffer.from(before))).toBe(true);
    expect(vcpu.getSregs()).toEqual(h.snap.sregs);
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

  it('2,000 host calls in a row all reach the host and are answered', () => {
    const before = h.hostAdds.n;
    expect(h.sandbox.call('CallHostRepeatedly', 'Int', 2_000)).toBe(2_000);
    expect(h.hostAdds.n - before).toBe(2_000);
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

  it('DebugPrint floods arrive one doorbell store (4 KiB here) at a time; 10 MiB is cut by the time limit', () => {
    h.printed.length = 0;
    expect(h.sandbox.call('DebugFlood', 'Long', 20_000n)).toBe(20_000n);
    expect(h.printed.join('').length).toBe(20_000);
    expect(h.printed.length).toBe(5);
    expect(Math.max(...h.printed.map((s) => s.length))).toBe(4096);
    // The output limit raised out of reach: on a machine with fast exits 16 MiB (the default)
    // would be printed before 200 ms, and this is about the time limit.
    const t = hostile({ maxExecutionTimeMs: 200, maxOutputBytesPerCall: 2000 * MiB });
    try {
      const e = catchError(() => t.sandbox.call('DebugFlood', 'Long', BigInt(1000 * MiB)));
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
