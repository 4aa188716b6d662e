// x86-64 segment descriptors, the 64-bit TSS and interrupt gates as the CPU reads them (Intel SDM vol. 3A 3.4.5, 7.2.3, 7.7, 6.14.1), and the GDT selectors of a sandbox; encoding only.

// Selectors of the host-built GDT. The order is the one `syscall`/`sysret` need (kernel CS,
// kernel SS = CS + 8; STAR[63:48] + 8 = user SS, + 16 = user CS), as in Linux.
export const SEL_KERNEL_CODE = 0x10;
export const SEL_KERNEL_DATA = 0x18;
/** A 32-bit user code segment slot, left not present: a far jump into compatibility mode faults. */
export const SEL_USER32_CODE = 0x20;
/** User data and stack, DPL 3; the value a guest loads is 0x2b (RPL 3). */
export const SEL_USER_DATA = 0x28 | 3;
/** 64-bit user code, DPL 3; CS = 0x33 while the guest runs. */
export const SEL_USER_CODE = 0x30 | 3;
/** The 64-bit TSS (16 bytes: 0x40 and 0x48). */
export const SEL_TSS = 0x40;
/** Bytes of the GDT (null, unused, kernel code/data, user32, user data, user code, unused, TSS). */
export const GDT_SIZE = 0x50;

// Descriptor types (SDM vol. 3A, 3.4.5.1 table 3-1, and 3.5 table 3-2 for S = 0).
export const SEG_TYPE_DATA_RW_ACCESSED = 3;
export const SEG_TYPE_CODE_X_ACCESSED = 9;
export const SEG_TYPE_CODE_XR_ACCESSED = 11;
export const SEG_TYPE_LDT = 2;
export const SEG_TYPE_TSS64_AVAILABLE = 9;
export const SEG_TYPE_TSS64_BUSY = 11;
export const GATE_TYPE_INTERRUPT64 = 14;

/** Bytes of a 64-bit TSS without an I/O bitmap (SDM vol. 3A, 8.7 figure 8-11). */
export const TSS_SIZE = 104;
export const TSS_OFF_RSP0 = 4;
/** IST1..IST7 at 36 + 8 (n - 1). */
export const TSS_OFF_IST1 = 36;
export const TSS_OFF_IOMAP_BASE = 102;
/** Bytes of one IDT gate in long mode. */
export const GATE_SIZE = 16;

export interface CodeDataDescriptor {
  readonly type: number;
  readonly dpl: 0 | 3;
  readonly code: boolean;
  /** 64-bit code (L = 1); data segments ignore it. */
  readonly long: boolean;
  readonly present: boolean;
}

/**
 * A flat code or data descriptor (base 0, limit 0xFFFFF pages, G = 1). 64-bit code has
 * L = 1, D = 0; data has D/B = 1. Accessed bits are preset in `type`, so loading a selector
 * never makes the CPU write to the (read-only) GDT.
 */
export function codeDataDescriptor(d: CodeDataDescriptor): bigint {
  let v = 0xffffn | (0xfn << 48n);             // limit 19:0
  v |= BigInt(d.type & 0xf) << 40n;
  v |= 1n << 44n;                                // S: code or data
  v |= BigInt(d.dpl) << 45n;
  if (d.present) v |= 1n << 47n;
  if (d.code && d.long) v |= 1n << 53n;          // L
  if (!d.code || !d.long) v |= 1n << 54n;        // D/B
  v |= 1n << 55n;                                // G
  return v;
}

/** The two quadwords of a 64-bit TSS descriptor (SDM vol. 3A, 8.2.3), type busy. */
export function tssDescriptor(base: bigint, limit: number): [bigint, bigint] {
  const lo = BigInt(limit & 0xffff) | ((base & 0xff_ffffn) << 16n) | (BigInt(SEG_TYPE_TSS64_BUSY) << 40n) |
    (1n << 47n) | (BigInt((limit >> 16) & 0xf) << 48n) | (((base >> 24n) & 0xffn) << 56n);
  return [lo, (base >> 32n) & 0xffff_ffffn];
}

/** The two quadwords of a 64-bit interrupt gate to `handler` (SDM vol. 3A, 6.14.1). */
export function interruptGate(handler: bigint, selector: number, ist: number, dpl: 0 | 3): [bigint, bigint] {
  const lo = (handler & 0xffffn) | (BigInt(selector) << 16n) | (BigInt(ist & 7) << 32n) |
    (BigInt(GATE_TYPE_INTERRUPT64) << 40n) | (BigInt(dpl) << 45n) | (1n << 47n) | (((handler >> 16n) & 0xffffn) << 48n);
  return [lo, (handler >> 32n) & 0xffff_ffffn];
}
