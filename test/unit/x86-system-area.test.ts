// The x86-64 corner without KVM: descriptor and gate encodings against the SDM's known values, the host-built system area's layout, the exception frame reader, the stubs' source against the committed bytes, and ELF symbol lookup.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nearestSymbol, readFunctionSymbols } from '../../src/elf/index.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import * as X from '../../src/x86_64/index.js';
// @ts-expect-error: a plain .mjs script without types
import { assembleStubs } from '../../scripts/gen-cpl0-stubs.mjs';

describe('descriptors', () => {
  it('encodes the flat code and data segments Linux and Hyperlight use', () => {
    const code = (dpl: 0 | 3): bigint => X.codeDataDescriptor({ type: X.SEG_TYPE_CODE_XR_ACCESSED, dpl, code: true, long: true, present: true });
    const data = (dpl: 0 | 3): bigint => X.codeDataDescriptor({ type: X.SEG_TYPE_DATA_RW_ACCESSED, dpl, code: false, long: false, present: true });
    expect(code(0)).toBe(0x00af_9b00_0000_ffffn);
    expect(data(0)).toBe(0x00cf_9300_0000_ffffn);
    expect(code(3)).toBe(0x00af_fb00_0000_ffffn);
    expect(data(3)).toBe(0x00cf_f300_0000_ffffn);
    expect(X.SEL_USER_CODE).toBe(0x33);
    expect(X.SEL_USER_DATA).toBe(0x2b);
  });

  it('encodes a 64-bit interrupt gate and TSS descriptor field by field', () => {
    const [lo, hi] = X.interruptGate(0x1234_5678_9abc_def0n, X.SEL_KERNEL_CODE, 1, 3);
    expect(lo & 0xffffn).toBe(0xdef0n);
    expect((lo >> 16n) & 0xffffn).toBe(0x10n);
    expect((lo >> 32n) & 7n).toBe(1n);
    expect((lo >> 40n) & 0xffn).toBe(0xeen); // P=1, DPL=3, type 0xE
    expect((lo >> 48n) & 0xffffn).toBe(0x9abcn);
    expect(hi).toBe(0x1234_5678n);
    const [tlo, thi] = X.tssDescriptor(0xab_cdef_1234n, 103);
    expect(tlo & 0xffffn).toBe(103n);
    expect((tlo >> 16n) & 0xff_ffffn).toBe(0xef_1234n);
    expect((tlo >> 40n) & 0xffn).toBe(0x8bn); // P=1, busy 64-bit TSS
    expect((tlo >> 56n) & 0xffn).toBe(0xcdn);
    expect(thi).toBe(0xabn);
  });
});

describe('the system area', () => {
  const mem = new Uint8Array(0x10000);
  const tables = X.writeSystemArea(mem, { tables: 0x2000, code: 0x3000, exceptionStackTop: 0x6000 });
  const v = new DataView(mem.buffer);

  it('places GDT, TSS and IDT in the tables page and the stubs in the code page', () => {
    expect(tables.gdt).toEqual({ base: 0x2000n, limit: X.GDT_SIZE - 1 });
    expect(tables.tss).toEqual({ base: 0x2080n, limit: X.TSS_SIZE - 1 });
    expect(tables.idt).toEqual({ base: 0x2100n, limit: 32 * 16 - 1 });
    expect(v.getBigUint64(0x2000 + 0x30, true)).toBe(0x00af_fb00_0000_ffffn);
    expect(mem.subarray(0x3000, 0x3000 + X.CPL0_STUBS.length)).toEqual(X.CPL0_STUBS);
  });

  it('points RSP0 and IST1 at the exception stack and leaves no I/O bitmap', () => {
    expect(v.getBigUint64(0x2080 + X.TSS_OFF_RSP0, true)).toBe(0x6000n);
    expect(v.getBigUint64(0x2080 + X.TSS_OFF_IST1, true)).toBe(0x6000n);
    expect(v.getUint16(0x2080 + X.TSS_OFF_IOMAP_BASE, true)).toBe(X.TSS_SIZE);
  });

  it('gives vector v the stub at code + 16 v on IST1; only #BP and #OF are reachable from ring 3', () => {
    for (let vec = 0; vec < 32; vec++) {
      const lo = v.getBigUint64(0x2100 + 16 * vec, true);
      const handler = (lo & 0xffffn) | (((lo >> 48n) & 0xffffn) << 16n) | (v.getBigUint64(0x2108 + 16 * vec, true) << 32n);
      expect(handler).toBe(BigInt(0x3000 + 16 * vec));
      expect((lo >> 32n) & 7n).toBe(1n);
      expect(Number((lo >> 45n) & 3n)).toBe(vec === 3 || vec === 4 ? 3 : 0);
    }
  });

  it('reads back the frame the stubs leave', () => {
    const top = 0x6000;
    const words = [0xdeadn, 0x77n, 14n, 6n, 0x4000n, 0x33n, 0x202n, 0x8000n, 0x2bn]; // cr2 rax vec err rip cs rflags rsp ss
    words.forEach((w, i) => v.setBigUint64(top - X.EXCEPTION_FRAME_SIZE + 8 * i, w, true));
    expect(X.readExceptionFrame(v, top)).toEqual({
      cr2: 0xdeadn, rax: 0x77n, vector: 14, errorCode: 6n, rip: 0x4000n, cs: 0x33, rflags: 0x202n, rsp: 0x8000n, ss: 0x2b,
    });
  });

  it('the committed stub bytes are what guests/sys/cpl0-stubs.S assembles to', () => {
    expect(Buffer.from(assembleStubs() as Uint8Array).toString('hex')).toBe(Buffer.from(X.CPL0_STUBS).toString('hex'));
    // Each stub pushes (zero and) its vector, then jumps to the common tail at 0x200.
    expect(X.CPL0_STUBS.length).toBeGreaterThan(0x200);
    expect([...X.CPL0_STUBS.subarray(0x10 * 14, 0x10 * 14 + 2)]).toEqual([0x6a, 14]); // #PF: CPU error code, push $14
    expect([...X.CPL0_STUBS.subarray(0x10 * 3, 0x10 * 3 + 4)]).toEqual([0x6a, 0, 0x6a, 3]);
  });
});

describe('ELF function symbols', () => {
  it('finds the SDK functions of simpleguest and names an address inside one', () => {
    const bytes = GuestBinary.filePath(bundledGuestPath('simpleguest')).bytes();
    const syms = readFunctionSymbols(bytes);
    const dispatch = syms.find((s) => s.name === 'hl_sdk_dispatch');
    expect(dispatch).toBeDefined();
    expect(nearestSymbol(syms, dispatch!.value + 3)).toEqual({ symbol: dispatch, offset: 3 });
    expect(readFunctionSymbols(new Uint8Array(10))).toEqual([]);
    expect(readFunctionSymbols(readFileSync(new URL(import.meta.url)))).toEqual([]);
  });
});
