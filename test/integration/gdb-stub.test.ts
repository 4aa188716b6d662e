// The gdb stub on real KVM, driven by a JS client of gdb's remote protocol (test/helpers/rsp-client.ts): target description, registers, bounds-checked memory, software breakpoints (in guest memory, kept out of snapshots, removed at detach), single-step, continue, register writes that change the guest's result, fault reports, kill. Real gdb drives it in test/soak/gdb.test.ts.
import { readFileSync } from 'node:fs';
import { afterEach, expect, it } from 'vitest';
import { ConfigInvalidError } from '../../src/errors.js';
import { ExecutionCanceledError, GuestExceptionError } from '../../src/sandbox/errors.js';
import { TARGET_XML } from '../../src/sandbox/gdb-stub.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { catchError } from '../helpers/errors.js';
import { describeKvm } from '../helpers/kvm.js';
import { freePort, rspClient } from '../helpers/rsp-client.js';

const elf = bundledGuestPath('debugguest');
const binary = GuestBinary.filePath(elf);
const open: MultiUseSandbox[] = [];
afterEach(() => { for (const s of open.splice(0)) s.close(); });

async function debugSandbox(): Promise<{ sandbox: MultiUseSandbox; port: number }> {
  const port = await freePort();
  const sandbox = UninitializedSandbox.create(binary, { debug: { gdbPort: port } }).evolve();
  open.push(sandbox);
  return { sandbox, port };
}

/** Where function `name` of the debug guest lies in a sandbox's memory, and its first byte in the ELF file. */
function fn(sandbox: MultiUseSandbox, name: string): { va: bigint; hex: string; firstByte: number } {
  const img = binary.image();
  const sym = img.functionSymbols().find((s) => s.name === name)!;
  const va = BigInt(sandbox.layout.image.gpa + sym.value - img.linkBase);
  // The ELF's segments are at file offset = link address here (the static PIE's PT_LOADs), so the file holds the byte.
  return { va, hex: va.toString(16), firstByte: readFileSync(elf)[sym.value]! };
}

const le64 = (hex: string, reg: number): bigint => {
  const h = hex.slice(16 * reg, 16 * reg + 16);
  return BigInt(`0x${h.match(/../g)!.reverse().join('')}`);
};
const leHex64 = (v: bigint): string => v.toString(16).padStart(16, '0').match(/../g)!.reverse().join('');

describeKvm('gdb stub', () => {
  it('serves the protocol: breakpoint, register write, step, memory, snapshots and restore keep breakpoints, detach removes them', async () => {
    const { sandbox, port } = await debugSandbox();
    const sumTo = fn(sandbox, 'sum_to');
    const crashInner = fn(sandbox, 'crash_inner');
    const clean = sandbox.snapshot();
    const client = rspClient(port, [
      'qSupported:multiprocess+;swbreak+', '?', 'qXfer:features:read:target.xml:0,80', 'qOffsets', 'g', 'p10',
      'm0,4', `m${sandbox.layout.sysCode.gpa.toString(16)},4`, 'p99', 'Z1,1000,1',
      `Z0,${sumTo.hex},1`, `m${sumTo.hex},1`, 'c',
      'g', `P5=${leHex64(10n)}`, `z0,${sumTo.hex},1`, `m${sumTo.hex},1`, 's', 'g',
      `M${(sandbox.layout.stack.gpa + 16).toString(16)},4:deadbeef`, `m${(sandbox.layout.stack.gpa + 16).toString(16)},4`,
      `Z0,${crashInner.hex},1`, 'c',
      'g', 'D',
    ]);
    // Call 1 waits for the client, stops at the breakpoint; the client makes n = 10.
    expect(sandbox.call('Sum', 'Long', 5)).toBe(55n);
    const bytes = sandbox.machine.memory.bytes;
    const at = Number(crashInner.va);
    expect(bytes[at]).toBe(0xcc); // inserted while the guest runs on
    sandbox.restore(clean);
    expect(bytes[at]).toBe(0xcc); // restore brings the guest's code back and the breakpoint with it
    const snap = sandbox.snapshot();
    expect(snap.memory.page(Math.floor(at / 4096))[at % 4096]).toBe(crashInner.firstByte); // the guest's code, not int3
    sandbox.restore(snap);
    expect(bytes[at]).toBe(0xcc);
    // Call 2 stops at crash_inner; the client detaches; the guest runs on into its fault.
    const e = catchError(() => sandbox.call('Crash', 'Int', 1));
    expect(e).toBeInstanceOf(GuestExceptionError);
    expect(e).toMatchObject({ vector: 14, cr2: 0x13n });
    expect(bytes[at]).toBe(crashInner.firstByte);
    const r = await client.done;
    const [supported, stop0, xml, offsets, g0, p10, mNull, mSys, pBad, z1, z0, mPatched, stop1, g1, pWrite, z0off, mRestored,
      stop2, g2, mWrite, mRead, z0b, stop3, g3, detach] = r;
    expect(supported).toMatch(/PacketSize=[0-9a-f]+;qXfer:features:read\+;swbreak\+/);
    expect(stop0).toBe('S05');
    expect(xml).toBe(`m${TARGET_XML.slice(0, 0x80)}`);
    expect(TARGET_XML).toContain('<architecture>i386:x86-64</architecture>');
    const off = BigInt(sandbox.layout.image.gpa - binary.image().linkBase).toString(16);
    expect(offsets).toBe(`Text=${off};Data=${off};Bss=${off}`);
    expect(g0!.length).toBe(2 * (17 * 8 + 7 * 4 + 8 * 10 + 8 * 4 + 16 * 16 + 4));
    expect(p10).toBe(g0!.slice(16 * 16, 16 * 17));
    expect([mNull, mSys, pBad, z1]).toEqual(['E0e', 'E0e', 'E16', '']);
    expect([z0, mPatched]).toEqual(['OK', 'cc']);
    expect(stop1).toBe('T05swbreak:;');
    expect(le64(g1!, 16)).toBe(sumTo.va); // RIP at the breakpoint, not after the int3
    expect(le64(g1!, 5)).toBe(5n); // RDI: n
    expect([pWrite, z0off, mRestored]).toEqual(['OK', 'OK', sumTo.firstByte.toString(16).padStart(2, '0')]);
    expect(stop2).toBe('T05');
    const rip2 = le64(g2!, 16);
    expect(rip2 > sumTo.va && rip2 < sumTo.va + 16n).toBe(true); // one instruction on
    expect(le64(g2!, 5)).toBe(10n);
    expect(parseInt(g2!.slice(16 * 17, 16 * 17 + 8).match(/../g)!.reverse().join(''), 16) & 0x100).toBe(0); // TF hidden
    expect([mWrite, mRead, z0b]).toEqual(['OK', 'deadbeef', 'OK']);
    expect(stop3).toBe('T05swbreak:;');
    expect(le64(g3!, 16)).toBe(crashInner.va);
    expect(detach).toBe('OK');
  });

  it('reports a fault as its signal, then the call fails as without a debugger; gdb hears the exit at close', async () => {
    const { sandbox, port } = await debugSandbox();
    const clean = sandbox.snapshot();
    const client = rspClient(port, ['c', 'c']);
    const e = catchError(() => sandbox.call('Crash', 'Int', 1));
    expect(e).toBeInstanceOf(GuestExceptionError);
    expect(e).toMatchObject({ vector: 14 });
    sandbox.restore(clean);
    expect(sandbox.call('Sum', 'Long', 3)).toBe(6n);
    sandbox.close();
    expect(await client.done).toEqual(['T0b', 'W00', '<closed>']);
  });

  it('k kills the call (ExecutionCanceledError, killed); later calls run without a debugger', async () => {
    const { sandbox, port } = await debugSandbox();
    const clean = sandbox.snapshot();
    const client = rspClient(port, ['k']);
    const e = catchError(() => sandbox.call('Sum', 'Long', 3));
    expect(e).toBeInstanceOf(ExecutionCanceledError);
    expect(e).toMatchObject({ reason: 'killed' });
    expect(await client.done).toEqual(['', '<closed>']);
    sandbox.restore(clean);
    expect(sandbox.call('Sum', 'Long', 4)).toBe(10n);
  });
});

it('refuses a port that is in use (ConfigInvalidError naming debug.gdbPort)', async () => {
  const net = await import('node:net');
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  try {
    const e = catchError(() => UninitializedSandbox.create(binary, { debug: { gdbPort: port } }).evolve());
    expect(e).toBeInstanceOf(ConfigInvalidError);
    expect((e as ConfigInvalidError).field).toBe('debug.gdbPort');
    expect((e as Error).message).toMatch(/in use/);
  } finally {
    srv.close();
  }
});
