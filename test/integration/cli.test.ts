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

const COMMANDS = ['run', 'inspect', 'types', 'demo', 'build-guest'];

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
    [['run', 'simpleguest', 'NotAFunction', 'x'], 'run needs --returns TYPE: the guest declares no function "NotAFunction"'],
    [['run', 'simpleguest', 'Echo', 'x', '--log-level', 'loud'], '--log-level expects one of Trace, Debug'],
    [['run', 'simpleguest', 'Echo', 'x', '--host-module', 'no-such-file.mjs'], '--host-module no-such-file.mjs: cannot import it'],
    [['types'], 'types takes exactly one guest'],
    [['types', 'dummyguest'], 'dummyguest declares no guest functions'],
    [['run', 'simpleguest'], 'run needs a guest and a function name'],
    [['run', 'simpleguest', 'Echo', 'x', '--returns', 'Strung'], 'unknown type "Strung"'],
    [['run', 'simpleguest', 'Add', '1', '--returns', 'Int', '--types', 'Int,Int'], '--types names 2 type(s) for 1 argument(s)'],
    [['run', 'simpleguest', 'EchoBool', 'yes', '--returns', 'Bool', '--types', 'Bool'], 'Bool expects true or false'],
    [['run', 'simpleguest', 'Echo', 'x', '--returns', 'String', '--heap', 'lots'], '--heap expects a byte count'],
    [['run', 'simpleguest', 'Echo', 'x', '--returns', 'String', '--bogus'], "Unknown option '--bogus'"],
    [['inspect'], 'inspect takes exactly one guest'],
    [['build-guest', 'x.c'], 'build-guest needs -o OUT.elf'],
  ])('%j is a usage error: exit 2', (args, message) => {
    const r = cli(...args);
    expect({ status: r.status, stderr: r.stderr }).toMatchObject({ status: 2, stderr: expect.stringContaining(message) });
    expect(r.stdout).toBe('');
  });

  it('--version prints the package version', () => {
    const r = cli('--version');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(r).toEqual({ status: 0, stdout: `hyperlight-ts ${pkg.version}\n`, stderr: '' });
  });

  it.each(COMMANDS)('help %s prints that command\'s usage, as --help does', (command) => {
    const r = cli('help', command);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(cli(command, '--help').stdout);
    expect(r.stdout).toMatch(new RegExp(`^Usage: hyperlight-ts ${command}`));
  });

  it('bench is no command of the published CLI: the benchmarks live in the repository', () => {
    const r = cli('bench');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('unknown command "bench"');
    expect(cli('--help').stdout).toContain("'npm run bench' in a clone");
  });
});

describe('inspect (no KVM needed)', () => {
  it('summarises the ELF, the memory map and the page tables of simpleguest', () => {
    const r = cli('inspect', 'simpleguest');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('type         ET_DYN');
    expect(r.stdout).toMatch(/relocations {2}\d+\n/); // musl's pointer tables: R_X86_64_RELATIVE only (guest-build.test.ts)
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

  it("lists the guest functions simpleguest's ELF declares, or says there are none", () => {
    const r = cli('inspect', 'simpleguest');
    const n = /^Guest functions \((\d+), declared in the ELF's notes\):$/m.exec(r.stdout);
    expect(Number(n?.[1])).toBeGreaterThanOrEqual(45);
    expect(r.stdout).toContain('\n  Add(Int, Int) -> Int\n');
    expect(r.stdout).toContain('\n  LogMessage(String, Long) -> Int\n');
    expect(cli('inspect', 'dummyguest').stdout).toContain('Guest functions: none declared');
  });

  it('types prints a module whose signatures tsc uses to type calls through typedGuest()', () => {
    const r = cli('types', 'simpleguest');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^\/\/ The guest functions of simpleguest, from its ELF notes/);
    expect(r.stdout).toContain("export const simpleguest = {\n");
    expect(r.stdout).toContain("  Add: { params: ['Int', 'Int'], returns: 'Int' },\n");
    expect(r.stdout).toContain("  \"24K_in_8K_out\": { params: ['VecBytes'], returns: 'VecBytes' },\n");
    expect(r.stdout).toContain('export type SimpleguestFunctions = typeof simpleguest;');
    // The printed module, and a user of it, type-check against the published declarations.
    const dir = mkdtempSync(join(ROOT, 'test', '.types-'));
    try {
      writeFileSync(join(dir, 'simpleguest.guest.ts'), r.stdout);
      writeFileSync(join(dir, 'use.ts'), [
        "import { typedGuest, type MultiUseSandbox } from 'hyperlight-ts';",
        "import { simpleguest } from './simpleguest.guest.js';",
        'declare const sandbox: MultiUseSandbox;',
        'const g = typedGuest(sandbox, simpleguest);',
        'export const n: number = g.Add(40, 2);',
        "export const s: string = g.Echo('hi');",
        "export const l: number = g.LogMessage('hi', 3n);",
        '// @ts-expect-error Add takes two Ints',
        "g.Add('40', 2);",
        '// @ts-expect-error Echo returns a string',
        "export const wrong: number = g.Echo('hi');",
        '// @ts-expect-error no such guest function',
        'g.Ad(1, 2);',
        '',
      ].join('\n'));
      writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
        compilerOptions: { module: 'nodenext', target: 'es2022', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
        include: ['*.ts'],
      }));
      const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
      expect(tsc.stdout).toBe('');
      expect(tsc.status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

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

  it('takes the return and argument types the guest declares when --returns and --types are left out', () => {
    expect(cli('run', 'simpleguest', 'Add', '40', '2')).toMatchObject({ status: 0, stdout: '42\n' });
    // LogMessage(String, Long): 3 is a Long because the ELF says so.
    expect(cli('run', 'simpleguest', 'LogMessage', 'hello', '3')).toMatchObject({ status: 0, stdout: '5\n' });
    expect(cli('run', 'simpleguest', 'EchoFloat', '1.5')).toMatchObject({ status: 0, stdout: '1.5\n' });
  });

  it('--log-level prints guest log records at that level and above to stderr', () => {
    // LogMessage's level is an hl_Level (Rust's log::Level): 2 is Warn, 3 is Info
    const warn = cli('run', 'simpleguest', 'LogMessage', 'careful', '2', '--log-level', 'warning');
    expect(warn.status).toBe(0);
    expect(warn.stderr).toMatch(/^guest log Warning: careful \(.*main\.c:\d+\)\n$/);
    expect(cli('run', 'simpleguest', 'LogMessage', 'quiet', '3', '--log-level', 'Error').stderr).toBe('');
    expect(cli('run', 'simpleguest', 'LogMessage', 'quiet', '3').stderr).toBe('');
  });

  it('--host-module registers the exported host functions (replacing the built-in ones)', () => {
    const mod = join(tmp, 'hosts.mjs');
    writeFileSync(mod, "export const HostAdd = { params: ['Int', 'Int'], returns: 'Int', fn: (a, b) => a * 100 + b };\n" +
      "export const HostMethod1 = { params: ['String'], returns: 'Int', fn: (s) => s.length * 1000 };\n");
    expect(cli('run', 'simpleguest', 'Add', '4', '2', '--host-module', mod)).toMatchObject({ status: 0, stdout: '402\n' });
    const traced = cli('run', 'simpleguest', 'GuestMethod1', 'ab', '--host-module', mod, '--trace');
    expect(traced.stderr).toMatch(/ HostMethod1 +[\d.]+ +[\d.]+ +ok\n/);
    const bad = join(tmp, 'bad-hosts.mjs');
    writeFileSync(bad, 'export const HostAdd = (a, b) => a + b;\n');
    const r = cli('run', 'simpleguest', 'Add', '4', '2', '--host-module', bad);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('export "HostAdd" is not a host function');
    const badType = join(tmp, 'bad-type.mjs');
    writeFileSync(badType, "export const HostAdd = { params: ['Itn'], returns: 'Int', fn: () => 1 };\n");
    expect(cli('run', 'simpleguest', 'Add', '4', '2', '--host-module', badType)).toMatchObject({ status: 1, stderr: expect.stringContaining('error ERR_CONFIG_INVALID') });
  });

  it('--heap reaches the guest: a 1 MiB heap holds a 600 KB allocation the default cannot', () => {
    expect(cli('run', 'simpleguest', 'CallMalloc', '600000', '--returns', 'Int', '--heap', '1m').stdout).toBe('600000\n');
    expect(cli('run', 'simpleguest', 'CallMalloc', '600000', '--returns', 'Int').status).toBe(1);
  });

  describe('--trace', () => {
    const PHASES = ['validate', 'open', 'create-vm', 'map-memory', 'load-elf', 'page-tables', 'create-vcpu', 'guest-init', 'call', 'close'];

    function parseTrace(stderr: string): { phases: string[]; exits: string[][] } {
      const [phasePart, rest] = stderr.split(/\n\nexits \(\d+\):\n/);
      const exitPart = rest!.split(/\n\n(?:system calls|host calls|failed)/)[0]!;
      const phases = phasePart!.split('\n').slice(2).map((l) => l.trim().split(/\s+/)[0]!).filter((n) => n !== 'total');
      const exits = exitPart.trim().split('\n').slice(1).map((l) => l.trim().split(/\s+/));
      return { phases, exits };
    }

    it('prints every phase in order and one row per exit, ending with the call halting', () => {
      const r = cli('run', 'simpleguest', 'GuestMethod1', 'world', '--returns', 'Int', '--trace');
      expect(r.status).toBe(0);
      expect(r.stdout).toBe('32\n');
      expect(r.stderr).toMatch(/^phases \(10\), microseconds since start:\n {2}phase +start us +took us\n/);
      const { phases, exits } = parseTrace(r.stderr);
      expect(phases).toEqual(PHASES);
      // init makes musl's three system calls (arch_prctl, set_tid_address, brk: each reaches
      // the host as a stub's exception report, shown as the call it is) and halts; the call
      // makes one host call (HostMethod1) and halts.
      expect(exits.map((e) => `${e[2]} ${e[3]}`)).toEqual(['syscall 158', 'syscall 218', 'syscall 12', 'mmio 108', 'mmio 101', 'mmio 108']);
      expect(exits.slice(0, 3).map((e) => e.slice(5).join(' '))).toEqual(['arch_prctl = 0', 'set_tid_address = 1', expect.stringMatching(/^brk = 0x[0-9a-f]+$/)]);
      expect(r.stderr).toContain('\n\nsystem calls (3, 0 answered -ENOSYS): arch_prctl 1, set_tid_address 1, brk 1\n');
      expect(exits.map((e) => e[0])).toEqual(['1', '2', '3', '4', '5', '6']);
      for (const e of exits) expect(e[4]).toMatch(/^0x[0-9a-f]{8,}$/);
      const times = exits.map((e) => Number(e[1]));
      expect([...times].sort((a, b) => a - b)).toEqual(times);
      // The total is the span to the last event, not the sum of the phases.
      const rows = r.stderr.split('\n\nexits')[0]!.split('\n').slice(2).map((l) => l.trim().split(/\s{2,}/));
      const ends = rows.filter((c) => c[0] !== 'total (span)').map((c) => Number(c[1]) + Number(c[2]));
      const total = rows.find((c) => c[0] === 'total (span)');
      expect(total?.[1]).toBe('0.0');
      expect(Number(total![2])).toBeGreaterThanOrEqual(Math.max(...ends, ...times) - 0.25); // each shown value is rounded to 0.1
      // The host call, by name.
      expect(r.stderr).toMatch(/host calls \(1\):\n {2}# +function +start us +took us +result\n {2}1 +HostMethod1 +[\d.]+ +[\d.]+ +ok\n/);
    });

    it('is printed also when the call fails, with the abort', () => {
      const r = cli('run', 'simpleguest', 'GuestAbortWithCode', '42', '--returns', 'Int', '--trace');
      expect(r.status).toBe(1);
      const { exits } = parseTrace(r.stderr.slice(0, r.stderr.indexOf('error ERR_GUEST_ABORTED')));
      expect(exits.filter((e) => e[3] === '102').length).toBe(1);
      expect(r.stderr).toMatch(/\n\nfailed at [\d.]+ us: ERR_GUEST_ABORTED: guest aborted with code 42\n/);
      expect(r.stderr).toContain('error ERR_GUEST_ABORTED: guest aborted with code 42');
    });

    it('--trace-html marks a failure on the timeline and above it', () => {
      const file = join(tmp, 'failed.html');
      const r = cli('run', 'simpleguest', 'GuestAbortWithCode', '42', '--returns', 'Int', '--trace-html', file);
      expect(r.status).toBe(1);
      const html = readFileSync(file, 'utf8');
      expect(html).toMatch(/<p class="failed"><strong>Failed<\/strong> at [\d.]+ us: <code>ERR_GUEST_ABORTED<\/code> guest aborted with code 42<\/p>/);
      expect(html.match(/<line class="failure"/g)).toHaveLength(1);
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
      expect(html.match(/<rect class="phase"/g)).toHaveLength(phases.length);
      expect(html.match(/<line class="exit"/g)).toHaveLength(exits.length);
      for (const p of PHASES) expect(html).toContain(`<title>${p}: `);
      // PrintOutput's host call, named, on its own lane.
      expect(html.match(/<rect class="host-call"[^>]*><title>host call HostPrint: /g)).toHaveLength(1);
      // A time axis: a baseline and round ticks from 0 us.
      expect(html.match(/<line class="axis"/g)).toHaveLength(1);
      const ticks = [...html.matchAll(/<text [^>]*text-anchor="middle">([\d.]+) us<\/text>/g)].map((m) => Number(m[1]));
      expect(ticks[0]).toBe(0);
      expect(ticks.length).toBeGreaterThanOrEqual(4);
      const steps = ticks.slice(1).map((t, i) => t - ticks[i]!);
      for (const d of steps) expect(d).toBeCloseTo(steps[0]!, 6);
      expect(html.match(/<line class="failure"/g)).toBeNull();
      expect(html).not.toMatch(/(src|href)=["']?(https?:)?\/\//); // no external assets
    });
  });
});
