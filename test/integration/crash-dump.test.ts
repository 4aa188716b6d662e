// Crash dumps on real KVM (crashDumpDir): the core file of a guest fault or abort read back in JS (registers at the fault, the frame chain through the guest's functions, memory); dump failures never replace the guest's error. gdb itself reads these dumps in test/soak/gdb.test.ts.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { ConfigInvalidError } from '../../src/errors.js';
import { nearestSymbol } from '../../src/elf/index.js';
import { GuestAbortedError, GuestExceptionError } from '../../src/sandbox/errors.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import type { SandboxConfig } from '../../src/sandbox/config.js';
import { parseCore, prstatusRegs, readCore } from '../helpers/core-reader.js';
import { catchError } from '../helpers/errors.js';
import { describeKvm } from '../helpers/kvm.js';

const root = mkdtempSync(join(tmpdir(), 'hlts-core-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const binary = GuestBinary.filePath(bundledGuestPath('debugguest'));

function debugSandbox(config: SandboxConfig) {
  return UninitializedSandbox.create(binary, config).evolve();
}

/** The function of the guest's ELF that contains guest address `va`. */
function functionAt(sandbox: ReturnType<typeof debugSandbox>, va: bigint): string | undefined {
  const img = binary.image();
  const off = Number(va) - sandbox.layout.image.gpa + img.linkBase;
  return nearestSymbol(img.functionSymbols(), off)?.symbol.name;
}

/**
 * The call sites of the frame-pointer chain starting at `rbp`, read from the core's memory:
 * each return address minus one (a call to a noreturn function may be a function's last
 * instruction, so its return address is the next function's first), as gdb names callers.
 */
function returnChain(core: ReturnType<typeof parseCore>, rbp: bigint, n: number): bigint[] {
  const out: bigint[] = [];
  for (let i = 0; i < n; i++) {
    const frame = readCore(core, rbp, 16);
    if (!frame) break;
    const v = new DataView(frame.buffer, frame.byteOffset, 16);
    out.push(v.getBigUint64(8, true) - 1n);
    rbp = v.getBigUint64(0, true);
  }
  return out;
}

describeKvm('crash dumps', () => {
  it('a page fault writes a core file: registers of the ring-3 frame, the stack, the frame chain through the guest functions', () => {
    const dir = mkdtempSync(join(root, 'pf-'));
    const sandbox = debugSandbox({ crashDumpDir: dir });
    try {
      const e = catchError(() => sandbox.call('Crash', 'Int', 3)) as GuestExceptionError;
      expect(e).toBeInstanceOf(GuestExceptionError);
      expect(e.vector).toBe(14);
      expect(e.crashDumpPath).toMatch(new RegExp(`^${dir}/hyperlight-\\d+-\\d+-\\d+\\.core$`));
      expect(readdirSync(dir)).toEqual([e.crashDumpPath!.slice(dir.length + 1)]);
      const core = parseCore(new Uint8Array(readFileSync(e.crashDumpPath!)));
      const r = prstatusRegs(core);
      expect(r.rip).toBe(e.rip);
      expect(functionAt(sandbox, r.rip!)).toBe('crash_inner');
      const { stack, image } = sandbox.layout;
      for (const name of ['rsp', 'rbp'] as const) {
        expect(r[name]! >= BigInt(stack.gpa) && r[name]! < BigInt(stack.gpa + stack.size), name).toBe(true);
      }
      expect([r.cs, r.ss]).toEqual([0x33n, 0x2bn]);
      // depth + 2 in crash_inner's first argument register at the store (EDI at -O0 is spilled; RAX/RDX hold it)
      expect(new DataView(core.notes[0]!.desc.buffer, core.notes[0]!.desc.byteOffset).getInt32(0, true)).toBe(11);
      const chain = returnChain(core, r.rbp!, 3).map((a) => functionAt(sandbox, a));
      expect(chain).toEqual(['crash_middle', 'crash_outer', 'crash']);
      // The image's code is in the dump, byte for byte.
      const text = readCore(core, r.rip!, 8)!;
      expect(text).toEqual(sandbox.machine.memory.bytes.slice(Number(r.rip), Number(r.rip) + 8));
      expect(readCore(core, BigInt(image.gpa), 4)).toEqual(Uint8Array.of(0x7f, 0x45, 0x4c, 0x46));
      // Nothing of the host's privileged area (page tables, stubs, exception stack) is in it.
      expect(core.loads.every((l) => l.vaddr >= BigInt(sandbox.layout.peb.gpa))).toBe(true);
    } finally {
      sandbox.close();
    }
  });

  it('an abort writes a core file whose registers are the guest\'s at its abort store (SIGABRT)', () => {
    const dir = mkdtempSync(join(root, 'abort-'));
    const sandbox = debugSandbox({ crashDumpDir: dir });
    try {
      const clean = sandbox.snapshot();
      const e = catchError(() => sandbox.call('AbortDeep', 'Int', 7)) as GuestAbortedError;
      expect(e).toBeInstanceOf(GuestAbortedError);
      expect(e.abortCode).toBe(7);
      const core = parseCore(new Uint8Array(readFileSync(e.crashDumpPath!)));
      expect(new DataView(core.notes[0]!.desc.buffer, core.notes[0]!.desc.byteOffset).getInt32(0, true)).toBe(6);
      const r = prstatusRegs(core);
      const names = [functionAt(sandbox, r.rip!), ...returnChain(core, r.rbp!, 6).map((a) => functionAt(sandbox, a))];
      expect(names.slice(names.indexOf('abort_inner'), names.indexOf('abort_inner') + 3))
        .toEqual(['abort_inner', 'abort_outer', 'abort_deep']);
      // After a restore the sandbox runs again, and a second crash gets a file of its own.
      sandbox.restore(clean);
      const again = catchError(() => sandbox.call('Crash', 'Int', 1)) as GuestExceptionError;
      expect(again.crashDumpPath).not.toBe(e.crashDumpPath);
      expect(readdirSync(dir)).toHaveLength(2);
    } finally {
      sandbox.close();
    }
  });

  it('a dump that cannot be written is recorded on the guest\'s error (crashDumpError), never in its place', () => {
    const dir = mkdtempSync(join(root, 'gone-'));
    const sandbox = debugSandbox({ crashDumpDir: dir });
    try {
      rmSync(dir, { recursive: true });
      const e = catchError(() => sandbox.call('Crash', 'Int', 3)) as GuestExceptionError;
      expect(e).toBeInstanceOf(GuestExceptionError);
      expect(e.crashDumpPath).toBeUndefined();
      expect((e.crashDumpError as NodeJS.ErrnoException).code).toBe('ENOENT');
      expect(existsSync(dir)).toBe(false);
    } finally {
      sandbox.close();
    }
  });

  it('writes nothing without crashDumpDir, and nothing for a guest error that is not a crash', () => {
    const dir = mkdtempSync(join(root, 'none-'));
    const plain = debugSandbox({});
    const dumping = debugSandbox({ crashDumpDir: dir });
    try {
      const e = catchError(() => plain.call('Crash', 'Int', 3)) as GuestExceptionError;
      expect(e).toBeInstanceOf(GuestExceptionError);
      expect(e.crashDumpPath).toBeUndefined();
      expect(e.crashDumpError).toBeUndefined();
      catchError(() => dumping.call('NoSuchFunction', 'Int'));
      expect(dumping.call('Sum', 'Long', 4)).toBe(10n);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      plain.close();
      dumping.close();
    }
  });

  it('an AsyncSandbox\'s error carries the dump path across the worker', async () => {
    const dir = mkdtempSync(join(root, 'async-'));
    const s = await UninitializedSandbox.create(binary, { crashDumpDir: dir }).evolveAsync();
    try {
      const e = await s.call('Crash', 'Int', 3).then(() => undefined, (x: unknown) => x) as GuestExceptionError;
      expect(e).toBeInstanceOf(GuestExceptionError);
      expect(existsSync(e.crashDumpPath!)).toBe(true);
      expect(e.crashDumpPath!.startsWith(dir)).toBe(true);
    } finally {
      await s.close();
    }
  });
});

it('crashDumpDir and debug are validated', () => {
  const create = (c: unknown) => catchError(() => UninitializedSandbox.create(binary, c as SandboxConfig));
  for (const bad of [{ crashDumpDir: '' }, { crashDumpDir: 7 }, { crashDumpDir: join(root, 'missing') },
    { crashDumpDir: bundledGuestPath('debugguest') }, { debug: 1 }, { debug: { gdbPort: 0 } },
    { debug: { gdbPort: 70000 } }, { debug: { gdbPort: 1.5 } }, { debug: { port: 1 } }]) {
    const e = create(bad);
    expect(e, JSON.stringify(bad)).toBeInstanceOf(ConfigInvalidError);
  }
  expect((create({ crashDumpDir: join(root, 'missing') }) as ConfigInvalidError).message).toMatch(/create the directory first/);
  expect(UninitializedSandbox.create(binary, { crashDumpDir: root, debug: {} }).config).toMatchObject({ crashDumpDir: root, gdbPort: undefined });
});
