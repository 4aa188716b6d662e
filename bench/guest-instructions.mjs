// Counts guest instructions with KVM single-step (KVM_GUESTDBG_ENABLE | SINGLESTEP): every
// guest instruction becomes a debug exit, so the counts are exact and deterministic (unlike
// time). Reports init (_start -> first Halt) and one call for simpleguest and dummyguest,
// including calls that call back into the host (Add, GuestMethod1, PrintOutput,
// RoundTripHost*): the wrapped run() returns every non-debug exit (OUT 101, 99, 108) to the
// sandbox's run loop, which answers the host call as usual, so host-call paths count too
// (the host's own work is not counted; only guest instructions are).
// Build the TypeScript first: `npx tsc -p . && node bench/guest-instructions.mjs [--top N] [--json]`.
// --top N prints the N functions with the most instructions per measured path; --pcs FN
// prints per-address counts inside function FN (match them with `objdump -d`). --pages
// prints, per measured path, the distinct 4 KiB code pages the guest executed from (image
// offset >> 12, with the functions on each) and the guest pages it wrote (KVM's dirty log
// read right before and after the path, named by layout region). Each distinct page a
// KVM_RUN touches costs ~1.4 us on this project's PVM host; pages only read are not seen.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  UninitializedSandbox, GuestBinary, bundledGuestPath, Vcpu, ParameterValue as P, parseElf,
} from '../dist/src/index.js';

const GUESTDBG_ENABLE = 0x1;
const GUESTDBG_SINGLESTEP = 0x2;

/** Wraps Vcpu.prototype.run: while `active`, single-steps and counts every guest instruction. */
class Counter {
  active = false;
  count = 0;
  pcs = new Map();
  /** Guest-physical address of the image's vaddr 0 (learned from the first RIP). */
  base = null;
  entry = 0n;
  #stepping = new WeakSet();

  install() {
    const orig = Vcpu.prototype.run;
    const self = this;
    Vcpu.prototype.run = function run() {
      if (self.base === null) self.base = this.getRegs().rip - self.entry;
      if (self.active !== self.#stepping.has(this)) {
        this.setGuestDebug({ control: self.active ? GUESTDBG_ENABLE | GUESTDBG_SINGLESTEP : 0 });
        if (self.active) self.#stepping.add(this); else self.#stepping.delete(this);
      }
      for (;;) {
        const exit = orig.call(this);
        if (exit.kind !== 'debug') return exit;
        self.count++;
        const pc = Number(exit.pc - self.base);
        self.pcs.set(pc, (self.pcs.get(pc) ?? 0) + 1);
      }
    };
    return () => { Vcpu.prototype.run = orig; };
  }

  measure(fn) {
    this.count = 0;
    this.pcs = new Map();
    this.active = true;
    try {
      fn();
    } finally {
      this.active = false;
    }
    return { count: this.count, pcs: this.pcs };
  }
}

/** Function symbols of an ELF (vaddr-sorted), for attributing PCs. */
function symbols(path) {
  const out = execFileSync('nm', ['-n', path], { encoding: 'utf8' });
  return out.split('\n').map((l) => l.split(' ')).filter((f) => f.length === 3 && /[tTwW]/.test(f[1]))
    .map(([a, , name]) => ({ addr: parseInt(a, 16), name }));
}

function byFunction(pcs, syms) {
  const totals = new Map();
  for (const [pc, n] of pcs) {
    let name = '?';
    for (const s of syms) { if (s.addr <= pc) name = s.name; else break; }
    totals.set(name, (totals.get(name) ?? 0) + n);
  }
  return [...totals].sort((a, b) => b[1] - a[1]);
}

/** The pages set in a dirty bitmap, each as "region+page" (page index inside the region). */
function dirtyPages(bitmap, layout) {
  const out = [];
  for (let i = 0; i < bitmap.length; i++) {
    if (bitmap[i] === 0) continue;
    for (let b = 0; b < 8; b++) {
      if (!(bitmap[i] & (1 << b))) continue;
      const gpa = (i * 8 + b) * 4096;
      const r = layout.regions.find((x) => gpa >= x.gpa && gpa < x.gpa + x.size);
      out.push(r ? `${r.name}+${(gpa - r.gpa) / 4096}` : `0x${gpa.toString(16)}`);
    }
  }
  return out;
}

/** Distinct code pages (image offset >> 12) of a path, each with the functions run on it. */
function codePages(pcs, syms) {
  const pages = new Map();
  for (const pc of pcs.keys()) {
    let name = '?';
    for (const s of syms) { if (s.addr <= pc) name = s.name; else break; }
    const p = pc >> 12;
    if (!pages.has(p)) pages.set(p, new Set());
    pages.get(p).add(name);
  }
  return [...pages].sort((a, b) => a[0] - b[0]);
}

function guestEntry(path) {
  return BigInt(parseElf(readFileSync(path)).entryOffset);
}

/**
 * Measures one guest: init, then each call in `calls` ([label, name, returnType, params]).
 * Returns { label: { count, pcs } }.
 */
export function measureGuest(counter, guest, calls, setup, pages = false) {
  const path = bundledGuestPath(guest);
  counter.base = null;
  counter.entry = guestEntry(path);
  const u = UninitializedSandbox.create(GuestBinary.filePath(path));
  u.registerPrint((text) => text.length);
  setup?.(u);
  const results = {};
  let sandbox;
  results.init = counter.measure(() => { sandbox = u.evolve({ freshInit: true }); });
  try {
    const vm = sandbox.machine.vm;
    for (const [label, name, ret, params] of calls) {
      let value;
      if (pages) vm.getDirtyLog(0);
      results[label] = counter.measure(() => { value = sandbox.callGuestFunctionByName(name, ret, params); });
      if (pages) results[label].dirty = dirtyPages(vm.getDirtyLog(0), sandbox.machine.layout);
      results[label].value = value;
    }
  } finally {
    sandbox.close();
  }
  return results;
}

export const SIMPLE_CALLS = [
  ['Echo("x")', 'Echo', 'String', [P.String('x')]],
  ['Echo("x") again', 'Echo', 'String', [P.String('x')]],
  ['NoOp', 'NoOp', 'Void', []],
  ['EchoI32(7)', 'EchoI32', 'Int', [P.Int(7)]],
  ['GetStatic', 'GetStatic', 'Int', []],
  ['Add(2,3)', 'Add', 'Int', [P.Int(2), P.Int(3)]],
  ['GuestMethod1("x")', 'GuestMethod1', 'Int', [P.String('x')]],
  ['PrintOutput("hi\\n")', 'PrintOutput', 'Int', [P.String('hi\n')]],
  ['RoundTripHostInt(7)', 'RoundTripHostInt', 'Int', [P.Int(7)]],
  ['RoundTripHostString("abc")', 'RoundTripHostString', 'String', [P.String('abc')]],
  ['RoundTripHostVecBytes([1,2,3])', 'RoundTripHostVecBytes', 'VecBytes', [P.VecBytes(new Uint8Array([1, 2, 3]))]],
];
/** The host functions simpleguest's host-calling functions use (as in test/helpers/sandbox.ts). */
export function registerSimpleHostFunctions(u) {
  u.registerHostFunction('HostMethod1', { params: ['String'], returns: 'Int' }, (s) => s.length);
  u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a, b) => (a + b) | 0);
  for (const type of ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'Bool', 'String', 'VecBytes']) {
    u.registerHostFunction(`HostEcho${type}`, { params: [type], returns: type }, (x) => x);
  }
}
export const DUMMY_CALLS = [['call', 'AnyName', 'Void', []]];

function main() {
  const args = process.argv.slice(2);
  const top = args.includes('--top') ? Number(args[args.indexOf('--top') + 1]) : 0;
  const json = args.includes('--json');
  const pcsOf = args.includes('--pcs') ? args[args.indexOf('--pcs') + 1] : undefined;
  const pages = args.includes('--pages');
  const counter = new Counter();
  const uninstall = counter.install();
  try {
    const report = {};
    for (const [guest, calls, setup] of [['simpleguest', SIMPLE_CALLS, registerSimpleHostFunctions], ['dummyguest', DUMMY_CALLS]]) {
      const res = measureGuest(counter, guest, calls, setup, pages);
      const syms = symbols(bundledGuestPath(guest));
      report[guest] = {};
      for (const [label, r] of Object.entries(res)) {
        const code = pages ? codePages(r.pcs, syms) : [];
        report[guest][label] = pages ? { instructions: r.count, codePages: code.length, dirtyPages: r.dirty?.length ?? 0 } : r.count;
        if (!json) {
          const shown = r.value === undefined ? '' : `  -> ${r.value instanceof Uint8Array ? `[${[...r.value]}]` : JSON.stringify(r.value)}`;
          console.log(`${guest.padEnd(12)} ${label.padEnd(34)} ${String(r.count).padStart(7)} instructions${shown}`);
          if (top > 0) {
            for (const [name, n] of byFunction(r.pcs, syms).slice(0, top)) console.log(`      ${String(n).padStart(7)}  ${name}`);
          }
          if (pages) {
            console.log(`      code pages ${code.length}: ${code.map(([p, f]) => `${p}[${[...f].join(' ')}]`).join('  ')}`);
            if (r.dirty) console.log(`      pages written ${r.dirty.length}: ${r.dirty.join(' ')}`);
          }
          if (pcsOf) {
            const i = syms.findIndex((s) => s.name === pcsOf);
            const lo = syms[i]?.addr ?? -1, hi = syms[i + 1]?.addr ?? lo;
            const inside = [...r.pcs].filter(([pc]) => pc >= lo && pc < hi).sort((a, b) => a[0] - b[0]);
            for (const [pc, n] of inside) console.log(`      ${pc.toString(16).padStart(8)} ${String(n).padStart(5)}`);
          }
        }
      }
    }
    if (json) console.log(JSON.stringify(report, null, 2));
  } finally {
    uninstall();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) main();
