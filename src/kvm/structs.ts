// Typed JS shapes of kvm_regs, kvm_sregs (+ kvm_segment, kvm_dtable), kvm_cpuid2 and their
// encode/decode over reusable buffers. Layouts come from layouts.generated.ts.
import {
  kvm_cpuid2, kvm_cpuid_entry2, kvm_dtable, kvm_enable_cap, kvm_regs, kvm_segment, kvm_sregs,
} from './layouts.generated.js';

/** A kvm_enable_cap for KVM_ENABLE_CAP (VM or vCPU fd) with up to four u64 arguments. */
export function encodeEnableCap(cap: number, args: readonly bigint[]): Uint8Array {
  const buf = new Uint8Array(kvm_enable_cap.size);
  const v = new DataView(buf.buffer);
  v.setUint32(kvm_enable_cap.fields.cap[0], cap, true);
  args.slice(0, 4).forEach((a, i) => v.setBigUint64(kvm_enable_cap.fields.args[0] + 8 * i, a, true));
  return buf;
}

export const REG_NAMES = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12',
  'r13', 'r14', 'r15', 'rip', 'rflags',
] as const;
export type RegName = typeof REG_NAMES[number];
/** General-purpose registers (kvm_regs); every field a u64 as bigint. */
export type Regs = Record<RegName, bigint>;

export interface Segment {
  base: bigint; limit: number; selector: number; type: number; present: number; dpl: number;
  db: number; s: number; l: number; g: number; avl: number; unusable: number;
}
export interface DTable { base: bigint; limit: number }
export const SEGMENT_NAMES = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
export type SegmentName = typeof SEGMENT_NAMES[number];

/** Special registers (kvm_sregs). */
export interface Sregs extends Record<SegmentName, Segment> {
  gdt: DTable; idt: DTable;
  cr0: bigint; cr2: bigint; cr3: bigint; cr4: bigint; cr8: bigint; efer: bigint; apicBase: bigint;
  /** Pending external interrupts bitmap (256 bits), as 4 u64. */
  interruptBitmap: [bigint, bigint, bigint, bigint];
}

export function emptyRegs(): Regs {
  const r = {} as Regs;
  for (const n of REG_NAMES) r[n] = 0n;
  return r;
}

export function decodeRegs(view: DataView, out: Regs = emptyRegs()): Regs {
  for (const n of REG_NAMES) out[n] = view.getBigUint64(kvm_regs.fields[n][0], true);
  return out;
}

export function encodeRegs(view: DataView, regs: Regs): void {
  for (const n of REG_NAMES) view.setBigUint64(kvm_regs.fields[n][0], BigInt.asUintN(64, regs[n]), true);
}

const SF = kvm_segment.fields;

function decodeSegment(v: DataView, at: number): Segment {
  return {
    base: v.getBigUint64(at + SF.base[0], true),
    limit: v.getUint32(at + SF.limit[0], true),
    selector: v.getUint16(at + SF.selector[0], true),
    type: v.getUint8(at + SF.type[0]),
    present: v.getUint8(at + SF.present[0]),
    dpl: v.getUint8(at + SF.dpl[0]),
    db: v.getUint8(at + SF.db[0]),
    s: v.getUint8(at + SF.s[0]),
    l: v.getUint8(at + SF.l[0]),
    g: v.getUint8(at + SF.g[0]),
    avl: v.getUint8(at + SF.avl[0]),
    unusable: v.getUint8(at + SF.unusable[0]),
  };
}

function encodeSegment(v: DataView, at: number, s: Segment): void {
  v.setBigUint64(at + SF.base[0], BigInt.asUintN(64, s.base), true);
  v.setUint32(at + SF.limit[0], s.limit >>> 0, true);
  v.setUint16(at + SF.selector[0], s.selector, true);
  v.setUint8(at + SF.type[0], s.type);
  v.setUint8(at + SF.present[0], s.present);
  v.setUint8(at + SF.dpl[0], s.dpl);
  v.setUint8(at + SF.db[0], s.db);
  v.setUint8(at + SF.s[0], s.s);
  v.setUint8(at + SF.l[0], s.l);
  v.setUint8(at + SF.g[0], s.g);
  v.setUint8(at + SF.avl[0], s.avl);
  v.setUint8(at + SF.unusable[0], s.unusable);
}

const TF = kvm_dtable.fields;
const RF = kvm_sregs.fields;

export function decodeSregs(v: DataView): Sregs {
  const dt = (at: number): DTable => ({
    base: v.getBigUint64(at + TF.base[0], true), limit: v.getUint16(at + TF.limit[0], true),
  });
  const u64 = (at: number): bigint => v.getBigUint64(at, true);
  const bm = RF.interrupt_bitmap[0];
  const out = {
    gdt: dt(RF.gdt[0]), idt: dt(RF.idt[0]),
    cr0: u64(RF.cr0[0]), cr2: u64(RF.cr2[0]), cr3: u64(RF.cr3[0]), cr4: u64(RF.cr4[0]),
    cr8: u64(RF.cr8[0]), efer: u64(RF.efer[0]), apicBase: u64(RF.apic_base[0]),
    interruptBitmap: [u64(bm), u64(bm + 8), u64(bm + 16), u64(bm + 24)],
  } as Sregs;
  for (const n of SEGMENT_NAMES) out[n] = decodeSegment(v, RF[n][0]);
  return out;
}

export function encodeSregs(v: DataView, s: Sregs): void {
  for (const n of SEGMENT_NAMES) encodeSegment(v, RF[n][0], s[n]);
  for (const [name, t] of [['gdt', s.gdt], ['idt', s.idt]] as const) {
    v.setBigUint64(RF[name][0] + TF.base[0], BigInt.asUintN(64, t.base), true);
    v.setUint16(RF[name][0] + TF.limit[0], t.limit, true);
  }
  const u64 = (at: number, x: bigint): void => v.setBigUint64(at, BigInt.asUintN(64, x), true);
  u64(RF.cr0[0], s.cr0); u64(RF.cr2[0], s.cr2); u64(RF.cr3[0], s.cr3); u64(RF.cr4[0], s.cr4);
  u64(RF.cr8[0], s.cr8); u64(RF.efer[0], s.efer); u64(RF.apic_base[0], s.apicBase);
  const bm = RF.interrupt_bitmap[0];
  s.interruptBitmap.forEach((w, i) => u64(bm + 8 * i, w));
}

/** A flat 64-bit code or data segment for long mode (base 0, limit 4 GiB, G=1). */
export function flatSegment(selector: number, type: number, code: boolean): Segment {
  return {
    base: 0n, limit: 0xffff_ffff, selector, type, present: 1, dpl: 0,
    db: code ? 0 : 1, s: 1, l: code ? 1 : 0, g: 1, avl: 0, unusable: 0,
  };
}

export interface CpuidEntry {
  function: number; index: number; flags: number;
  eax: number; ebx: number; ecx: number; edx: number;
}

/** Encodes a kvm_cpuid2 with room for `capacity` entries (the first `entries` filled). */
export function encodeCpuid(entries: readonly CpuidEntry[], capacity = entries.length): Uint8Array {
  const buf = new Uint8Array(kvm_cpuid2.size + capacity * kvm_cpuid_entry2.size);
  const v = new DataView(buf.buffer);
  v.setUint32(kvm_cpuid2.fields.nent[0], Math.max(entries.length, capacity), true);
  const E = kvm_cpuid_entry2.fields;
  entries.forEach((e, i) => {
    const at = kvm_cpuid2.fields.entries[0] + i * kvm_cpuid_entry2.size;
    v.setUint32(at + E.function[0], e.function, true);
    v.setUint32(at + E.index[0], e.index, true);
    v.setUint32(at + E.flags[0], e.flags, true);
    v.setUint32(at + E.eax[0], e.eax, true);
    v.setUint32(at + E.ebx[0], e.ebx, true);
    v.setUint32(at + E.ecx[0], e.ecx, true);
    v.setUint32(at + E.edx[0], e.edx, true);
  });
  if (entries.length === capacity) v.setUint32(kvm_cpuid2.fields.nent[0], entries.length, true);
  return buf;
}

export function decodeCpuid(buf: Uint8Array): CpuidEntry[] {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = v.getUint32(kvm_cpuid2.fields.nent[0], true);
  const E = kvm_cpuid_entry2.fields;
  const out: CpuidEntry[] = [];
  for (let i = 0; i < n; i++) {
    const at = kvm_cpuid2.fields.entries[0] + i * kvm_cpuid_entry2.size;
    if (at + kvm_cpuid_entry2.size > buf.length) break;
    out.push({
      function: v.getUint32(at + E.function[0], true), index: v.getUint32(at + E.index[0], true),
      flags: v.getUint32(at + E.flags[0], true), eax: v.getUint32(at + E.eax[0], true),
      ebx: v.getUint32(at + E.ebx[0], true), ecx: v.getUint32(at + E.ecx[0], true),
      edx: v.getUint32(at + E.edx[0], true),
    });
  }
  return out;
}


/** A kvm_regs as bytes (for kvm_run's sync area). */
export function regsToBytes(regs: Regs): Uint8Array {
  const b = new Uint8Array(kvm_regs.size);
  encodeRegs(new DataView(b.buffer), regs);
  return b;
}

/** A kvm_sregs as bytes (for kvm_run's sync area). */
export function sregsToBytes(sregs: Sregs): Uint8Array {
  const b = new Uint8Array(kvm_sregs.size);
  encodeSregs(new DataView(b.buffer), sregs);
  return b;
}
