// The KVM layer without /dev/kvm: generated layouts, ioctl numbers, exit decoding, errno names.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ExitDecoder } from '../../src/kvm/exit.js';
import * as I from '../../src/kvm/ioctl.js';
import * as C from '../../src/kvm/constants.js';
import * as X from '../../src/x86_64/index.js';
import * as L from '../../src/kvm/layouts.generated.js';
import { errnoName } from '../../src/kvm/libc.js';
import { KvmIoctlError } from '../../src/kvm/errors.js';
// @ts-expect-error: plain .mjs script without types
import { generateLayoutsSource, layoutsPath } from '../../scripts/gen-layouts.mjs';

describe('struct layouts', () => {
  it('match a fresh probe of <linux/kvm.h>', () => {
    expect((generateLayoutsSource as () => string)()).toBe(readFileSync(layoutsPath as string, 'utf8'));
  });

  it('pin the sizes and offsets the rest of the code relies on', () => {
    expect(L.kvm_regs.size).toBe(144);
    expect(L.kvm_sregs.size).toBe(312);
    expect(L.kvm_run.fields['io.data_offset'][0]).toBe(40);
    expect(L.kvm_run.fields.exit_reason[0]).toBe(8);
    expect(L.kvm_userspace_memory_region.size).toBe(32);
    expect(L.kvm_segment.size).toBe(24);
    expect(L.kvm_cpuid_entry2.size).toBe(40);
    expect(L.kvm_translation.size).toBe(24);
  });
});

describe('ioctl numbers', () => {
  it('equal the kernel values', () => {
    expect(I.KVM_RUN).toBe(0xae80);
    expect(I.KVM_SET_USER_MEMORY_REGION).toBe(0x4020ae46);
    expect(I.KVM_GET_REGS).toBe(0x8090ae81);
    expect(I.KVM_SET_SREGS).toBe(0x4138ae84);
    expect(I.KVM_CREATE_VM).toBe(0xae01);
    expect(I.KVM_GET_SUPPORTED_CPUID).toBe(0xc008ae05);
    expect(I.KVM_TRANSLATE).toBe(0xc018ae85);
    expect(I.KVM_GET_DIRTY_LOG).toBe(0x4010ae42);
  });

  it('refuse argument sizes that do not fit 14 bits', () => {
    expect(() => I._IOW(I.KVMIO, 1, 1 << 14)).toThrow(RangeError);
  });
});

describe('control register composites', () => {
  it('are Hyperlight\'s entry values', () => {
    expect(X.CR0_INIT).toBe(0x80050033n);
    expect(X.CR4_INIT).toBe(0x620n);
    expect(X.EFER_INIT).toBe(0xd01n);
  });
});

describe('exit decoding from synthetic kvm_run bytes', () => {
  const F = L.kvm_run.fields;
  function area(): { bytes: Uint8Array; v: DataView; d: ExitDecoder } {
    const bytes = new Uint8Array(3 * 4096);
    return { bytes, v: new DataView(bytes.buffer), d: new ExitDecoder(bytes) };
  }

  it('decodes an OUT with its data', () => {
    const { bytes, v, d } = area();
    v.setUint32(F.exit_reason[0], C.KVM_EXIT_IO, true);
    v.setUint8(F['io.direction'][0], C.KVM_EXIT_IO_OUT);
    v.setUint8(F['io.size'][0], 4);
    v.setUint16(F['io.port'][0], 101, true);
    v.setUint32(F['io.count'][0], 1, true);
    v.setBigUint64(F['io.data_offset'][0], 4096n, true);
    bytes.set([1, 2, 3, 4], 4096);
    const exit = d.decode(0);
    expect(exit).toMatchObject({ kind: 'io', direction: 'out', port: 101, size: 4, count: 1 });
    expect(exit.kind === 'io' && [...exit.data]).toEqual([1, 2, 3, 4]);
    expect(d.decode(0)).toBe(exit); // reused, not reallocated
  });

  it('refuses io data that lies outside the mapping', () => {
    const { v, d } = area();
    v.setUint32(F.exit_reason[0], C.KVM_EXIT_IO, true);
    v.setUint8(F['io.size'][0], 4);
    v.setUint32(F['io.count'][0], 1000, true);
    v.setBigUint64(F['io.data_offset'][0], 4096n * 2n + 100n, true);
    const exit = d.decode(0);
    expect(exit.kind === 'io' && exit.data.length).toBe(0);
  });

  it('decodes mmio, hlt, shutdown, internal error, fail entry, debug and unknown exits', () => {
    const { v, d } = area();
    v.setUint32(F.exit_reason[0], C.KVM_EXIT_MMIO, true);
    v.setBigUint64(F['mmio.phys_addr'][0], 0xdead000n, true);
    v.setUint32(F['mmio.len'][0], 4, true);
    v.setUint8(F['mmio.is_write'][0], 1);
    expect(d.decode(0)).toMatchObject({ kind: 'mmio', address: 0xdead000n, isWrite: true, length: 4 });
    v.setUint32(F.exit_reason[0], C.KVM_EXIT_HLT, true);
    expect(d.decode(0).kind).toBe('hlt');
    v.setUint32(F.exit_reason[0], C.KVM_EXIT_SHUTDOWN, true);
    expect(d.decode(0).kind).toBe('shutdown');
    v.setUint32(F.exit_reason[0], C.KVM_EXIT_INTERNAL_ERROR, true);
    v.setUint32(F['internal.suberror'][0], 1, true);
    expect(d.decode(0)).toMatchObject({ kind: 'internal-error', suberror: 1 });
    v.setUint32(F.exit_reason[0], C.KVM_EXIT_FAIL_ENTRY, true);
    v.setBigUint64(F['fail_entry.hardware_entry_failure_reason'][0], 33n, true);
    expect(d.decode(0)).toMatchObject({ kind: 'fail-entry', hardwareReason: 33n });
    v.setUint32(F.exit_reason[0], C.KVM_EXIT_DEBUG, true);
    v.setBigUint64(F['debug.arch.pc'][0], 0x1234n, true);
    expect(d.decode(0)).toMatchObject({ kind: 'debug', pc: 0x1234n });
    v.setUint32(F.exit_reason[0], C.KVM_EXIT_NMI, true);
    expect(d.decode(0)).toMatchObject({ kind: 'unknown', reason: 16, name: 'KVM_EXIT_NMI' });
    v.setUint32(F.exit_reason[0], 999, true);
    expect(d.decode(0)).toMatchObject({ kind: 'unknown', reason: 999, name: 'exit reason 999' });
    expect(d.decode(-4).kind).toBe('interrupted');
  });
});

describe('errno names and ioctl errors', () => {
  it('names errno values', () => {
    expect(errnoName(14)).toBe('EFAULT');
    expect(errnoName(4)).toBe('EINTR');
    expect(errnoName(22)).toBe('EINVAL');
    expect(errnoName(9999)).toBe('errno 9999');
  });

  it('formats an ioctl failure with the ioctl and errno names', () => {
    const e = new KvmIoctlError(I.KVM_SET_SREGS, 14);
    expect(e.message).toBe('KVM_SET_SREGS failed: EFAULT');
    expect([e.code, e.ioctl, e.errno, e.errnoName]).toEqual(['ERR_KVM_IOCTL', 'KVM_SET_SREGS', 14, 'EFAULT']);
  });
});

describe('Kvm.open without a usable device', () => {
  it('throws KvmUnavailableError saying what to check', async () => {
    const { Kvm, KvmUnavailableError } = await import('../../src/kvm/index.js');
    let error: unknown;
    try {
      Kvm.open('/nonexistent/kvm');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(KvmUnavailableError);
    expect(error).toMatchObject({ code: 'ERR_KVM_UNAVAILABLE', path: '/nonexistent/kvm' });
    expect((error as Error).message).toContain('ENOENT');
    expect((error as Error).message).toMatch(/kvm. group/);
  });

  it('refuses a device that is not KVM', async () => {
    const { Kvm, KvmUnavailableError } = await import('../../src/kvm/index.js');
    expect(() => Kvm.open('/dev/null')).toThrow(KvmUnavailableError);
  });
});
