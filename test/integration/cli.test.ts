// The `hyperlight-ts` command as a user runs it: a child process on dist/, its stdout, stderr and exit status.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeKvm } from '../helpers/kvm.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');
const tmp = mkdtempSync(join(tmpdir(), 'hl-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Result { status: number | null; stdout: string; stderr: string }

function cli(...args: string[]): Result {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const COMMANDS = ['run', 'inspect', 'bench', 'demo', 'build-guest'];

describe('usage (no KVM needed)', () => {
  it.each(COMMANDS)('%s --help prints its usage and exits 0', (command) => {
    const r = cli(command, '--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Usage: hyperlight-ts ${command}`));
    expect(r.stdout).toContain('--help');
  });

  it('the top-level --help lists every command', () => {
    const r = cli('--help');
    expect(r.status).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toContain(`  ${c}`);
  });

  it.each([
    [[], 'Usage: hyperlight-ts <command>'],
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['run', 'simpleguest', 'Echo', 'x'], 'run needs --returns TYPE'],
    [['run', 'simpleguest'], 'run needs a guest and a function name'],
    [['run', 'simpleguest', 'Echo', 'x', '--returns', 'Strung'], 'unknown type "Strung"'],
    [['run', 'simpleguest', 'Add', '1', '--returns', 'Int', '--types', 'Int,Int'], '--types names 2 type(s) for 1 argument(s)'],
    [['run', 'simpleguest', 'EchoBool', 'yes', '--returns', 'Bool', '--types', 'Bool'], 'Bool expects true or false'],
    [['run', 'simpleguest', 'Echo', 'x', '--returns', 'String', '--heap', 'lots'], '--heap expects a byte count'],
    [['run', 'simpleguest', 'Echo', 'x', '--returns', 'String', '--bogus'], "Unknown option '--bogus'"],
    [['inspect'], 'inspect takes exactly one guest'],
    [['bench', 'extra'], 'bench takes no arguments'],
    [['build-guest', 'x.c'], 'build-guest needs -o OUT.elf'],
  ])('%j is a usage error: exit 2', (args, message) => {
    const r = cli(...args);
    expect({ status: r.status, stderr: r.stderr }).toMatchObject({ status: 2, stderr: expect.stringContaining(message) });
    expect(r.stdout).toBe('');
  });

  it('bench without the benchmark module says so and exits 1 (or runs it when present)', () => {
    const r = cli('bench', '--quick', '--json');
    if (r.stderr.includes('benchmark suite is not built')) {
      expect(r.status).toBe(1);
    } else {
      expect(r.status).toBe(0);
      expect(r.stdout.length).toBeGreaterThan(0);
    }
  });
});

describe('inspect (no KVM needed)', () => {
  it('summarises the ELF, the memory map and the page tables of simpleguest', () => {
    const r = cli('inspect', 'simpleguest');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('type         ET_DYN');
    expect(r.stdout).toMatch(/relocations {2}0\n/);
    expect(r.stdout).toMatch(/ R-X$/m); // the text segment
    expect(r.stdout).toMatch(/ RW-$/m); // data and bss
    expect(r.stdout).toMatch(/\| heap +\| 0x[0-9a-f]{8} \| 0x[0-9a-f]{8} +\| 128 KiB \| user rw- NX/);
    expect(r.stdout).toMatch(/\| sysCode +\| 0x[0-9a-f]{8} \| 0x[0-9a-f]{8} +\| 4 KiB +\| supervisor r-x/);
    expect(r.stdout).toMatch(/the vCPU starts at RIP 0x[0-9a-f]+\n/);
    expect(r.stdout).toContain('Page tables: CR3 0x1000');
    expect(r.stdout).toMatch(/^ {2}0x[0-9a-f]+ +0x[0-9a-f]+ +\d+ KiB +r-x +user +identity +image r-x$/m);
    expect(r.stdout).toMatch(/^ {2}0x6000 +0x7000 +4 KiB +r-x +supervisor +identity +sysCode$/m);
    expect(r.stdout).toMatch(/^ {2}0x[0-9a-f]+ +0x[0-9a-f]+ +132 KiB +rw- +user +identity +stack, doorbell$/m);
    // Neither the null page nor the page tables themselves are mapped.
    expect(r.stdout).not.toMatch(/^ {2}0x0 /m);
    expect(r.stdout).not.toMatch(/^ {2}0x1000 /m);
  });

  it('follows --heap into the map', () => {
    const r = cli('inspect', 'simpleguest', '--heap', '1m');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\| heap +\| 0x[0-9a-f]{8} \| 0x[0-9a-f]{8} +\| 1 MiB/);
  });

  it('a file that is not ELF: exit 1 with ERR_ELF_INVALID', () => {
    const bad = join(tmp, 'not-an-elf.elf');
    writeFileSync(bad, 'hello, I am text\n');
    const r = cli('inspect', bad);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error ERR_ELF_INVALID: /);
  });
});

describeKvm('run', () => {
  it.each([
    [['Echo', 'hello', '--returns', 'String'], 'hello'],
    [['Add', '40', '2', '--returns', 'Int'], '42'],
    [['EchoI64', '-5n', '--returns', 'Long'], '-5'],
    [['EchoU64', '18446744073709551615n', '--returns', 'ULong'], '18446744073709551615'],
    [['EchoDouble', '0.5', '--returns', 'double'], '0.5'],
    [['EchoBool', 'true', '--returns', 'Bool'], 'true'],
    [['GetSizePrefixedBuffer', '0x00ff10', '--returns', 'VecBytes'], '0x00ff10'],
    [['EchoU32', '0xffffffff', '--types', 'UInt', '--returns', 'UInt'], '4294967295'],
    [['Echo', '42', '--types', 'String', '--returns', 'String'], '42'],
    [['GuestMethod1', 'world', '--returns', 'Int'], '32'],
    [['RoundTripHostString', 'ünï', '--returns', 'String'], 'ünï'],
  ])('simpleguest %j prints %s', (args, expected) => {
    const r = cli('run', 'simpleguest', ...args);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`${expected}\n`);
  });

  it('guest output goes to stdout before the result; Void prints nothing', () => {
    expect(cli('run', 'simpleguest', 'PrintOutput', 'hi there\n', '--returns', 'Int').stdout).toBe('hi there\n9\n');
    const v = cli('run', 'simpleguest', 'NoOp', '--returns', 'Void');
    expect([v.status, v.stdout]).toEqual([0, '']);
  });

  it.each([
    [['GuestAbortWithMessage', '7', 'bye', '--returns', 'Int'], 'ERR_GUEST_ABORTED', 'guest aborted with code 7: bye'],
    [['NoSuchFunction', '--returns', 'Int'], 'ERR_GUEST_ERROR', 'guest error 4'],
    [['Echo', 'x', '--returns', 'Int'], 'ERR_RETURN_TYPE_MISMATCH', 'returned String'],
    [['EchoI32', '3000000000', '--returns', 'Int'], 'ERR_PARAMETER_TYPE_MISMATCH', 'Int expects an integer'],
    [['Spin', '--returns', 'Void', '--timeout', '50'], 'ERR_EXECUTION_CANCELED', 'time limit'],
    [['TriggerException', '--returns', 'Void'], 'ERR_GUEST_EXCEPTION', ''],
  ])('simpleguest %j: exit 1 with %s', (args, code, message) => {
    const r = cli('run', 'simpleguest', ...args);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^error ${code}: `));
    expect(r.stderr).toContain(message);
  });

  it('a bad ELF: exit 1 with ERR_ELF_INVALID; a missing file: ERR_CONFIG_INVALID', () => {
    const bad = join(tmp, 'bad.elf');
    writeFileSync(bad, Uint8Array.of(0x7f, 0x45, 0x4c, 0x46, 1, 1, 1, 0)); // ELF magic, 32-bit class
    const r = cli('run', bad, 'Echo', 'x', '--returns', 'String');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^error ERR_ELF_INVALID: /);
    const m = cli('run', join(tmp, 'missing.elf'), 'Echo', 'x', '--returns', 'String');
    expect(m.status).toBe(1);
    expect(m.stderr).toMatch(/^error ERR_CONFIG_INVALID: .*cannot read guest file/);
  });

  it('--heap reaches the guest: a 1 MiB heap holds a 600 KB allocation the default cannot', () => {
    expect(cli('run', 'simpleguest', 'CallMalloc', '600000', '--returns', 'Int', '--heap', '1m').stdout).toBe('600000\n');
    expect(cli('run', 'simpleguest', 'CallMalloc', '600000', '--returns', 'Int').status).toBe(1);
  });

  describe('--trace', () => {
    const PHASES = ['validate', 'open', 'create-vm', 'map-memory', 'load-elf', 'page-tables', 'create-vcpu', 'guest-init', 'call', 'close'];

    function parseTrace(stderr: string): { phases: string[]; exits: string[][] } {
      const [phasePart, exitPart] = stderr.split(/\n\nexits \(\d+\):\n/);
      const phases = phasePart!.split('\n').slice(2).map((l) => l.trim().split(/\s+/)[0]!).filter((n) => n !== 'total');
      const exits = exitPart!.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
      return { phases, exits };
    }

    it('prints every phase in order and one row per exit, ending with the call halting', () => {
      const r = cli('run', 'simpleguest', 'GuestMethod1', 'world', '--returns', 'Int', '--trace');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe('32\n');
      expect(r.stderr).toMatch(/^phases \(10\), microseconds since start:\n {2}phase +start us +took us\n/);
      const { phases, exits } = parseTrace(r.stderr);
      expect(phases).toEqual(PHASES);
      // init halts; the call makes one host call (HostMethod1) and halts.
      expect(exits.map((e) => `${e[2]} ${e[3]}`)).toEqual(['mmio 108', 'mmio 101', 'mmio 108']);
      expect(exits.map((e) => e[0])).toEqual(['1', '2', '3']);
      for (const e of exits) expect(e[4]).toMatch(/^0x[0-9a-f]{8,}$/);
      const times = exits.map((e) => Number(e[1]));
      expect([...times].sort((a, b) => a - b)).toEqual(times);
    });

    it('is printed also when the call fails, with the abort', () => {
      const r = cli('run', 'simpleguest', 'GuestAbortWithCode', '42', '--returns', 'Int', '--trace');
      expect(r.status).toBe(1);
      const { exits } = parseTrace(r.stderr.slice(0, r.stderr.indexOf('error ERR_GUEST_ABORTED')));
      expect(exits.filter((e) => e[3] === '102').length).toBe(1);
      expect(r.stderr).toContain('error ERR_GUEST_ABORTED: guest aborted with code 42');
    });

    it('--trace-html writes a self-contained timeline: one rect per phase, one tick per exit', () => {
      const file = join(tmp, 'trace.html');
      const r = cli('run', 'simpleguest', 'PrintOutput', 'x\n', '--returns', 'Int', '--trace', '--trace-html', file);
      expect(r.status).toBe(0);
      expect(r.stderr).toContain(`wrote ${file}`);
      const { phases, exits } = parseTrace(r.stderr.slice(0, r.stderr.indexOf('wrote ')));
      const html = readFileSync(file, 'utf8');
      expect(html).toMatch(/^<!DOCTYPE html>/);
      expect(html).toContain('<svg');
      expect(html.match(/<rect /g)).toHaveLength(phases.length);
      expect(html.match(/<line class="exit"/g)).toHaveLength(exits.length);
      for (const p of PHASES) expect(html).toContain(`<title>${p}: `);
      expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//); // no external assets
    });
  });
});
