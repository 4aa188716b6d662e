// checkGuestSregs: a snapshot's special registers are accepted only where a ring-3 guest could have changed them (FS/GS base, CR2).
import { describe, expect, it } from 'vitest';
import { kvm_sregs } from '../../src/kvm/layouts.generated.js';
import { decodeSregs } from '../../src/kvm/structs.js';
import { SnapshotIncompatibleError } from '../../src/sandbox/errors.js';
import { checkGuestSregs } from '../../src/sandbox/snapshot-file.js';
import { catchError } from '../helpers/errors.js';

const zero = decodeSregs(new DataView(new ArrayBuffer(kvm_sregs.size)));
const start = { ...zero, cs: { ...zero.cs, selector: 0x33, dpl: 3, l: 1 }, cr0: 0x80050033n, cr4: 0x620n, efer: 0xd01n };

describe('checkGuestSregs', () => {
  it('accepts FS/GS base and CR2 a guest set', () => {
    expect(() => checkGuestSregs({ ...start, fs: { ...start.fs, base: 0x7000n }, gs: { ...start.gs, base: 0x8000n }, cr2: 0x1234n }, start))
      .not.toThrow();
  });

  it('refuses other CR4 bits, another CR3, a ring-0 code segment', () => {
    for (const bad of [{ ...start, cr4: start.cr4 | 0x40000n }, { ...start, cr3: 0x2000n },
      { ...start, cs: { ...start.cs, dpl: 0 } }]) {
      expect(catchError(() => checkGuestSregs(bad, start))).toBeInstanceOf(SnapshotIncompatibleError);
    }
  });
});
