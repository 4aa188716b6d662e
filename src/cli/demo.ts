// `hyperlight-ts demo` (what `npm start` runs): the announcement's example, a guest call
// in a fresh micro-VM, with the time each start-up phase took.
import {
  GuestBinary, ParameterValue, ReturnType, TraceRecorder, type TracedPhase, UninitializedSandbox, bundledGuestPath,
} from '../index.js';
import { UsageError, out as stdout, parseCommandArgs } from './usage.js';

export const DEMO_USAGE = `Usage: hyperlight-ts demo

Creates a sandbox on the bundled simpleguest, calls PrintOutput, prints phase timings.
This is what \`npm start\` runs.

Options:
  -h, --help   this text`;

/** The \`demo\` command. */
export function demoCommand(argv: string[]): number {
  const { values, positionals } = parseCommandArgs(argv, { help: { type: 'boolean', short: 'h' } }, DEMO_USAGE);
  if (values.help) {
    stdout(`${DEMO_USAGE}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`demo takes no arguments, got ${positionals.join(' ')}`, DEMO_USAGE);
  runDemo();
  return 0;
}

/** The phases as aligned lines, then the span from the first start to the last end. */
export function formatPhases(phases: readonly TracedPhase[], spanNs: bigint): string {
  const width = Math.max(...phases.map((p) => p.name.length), 'total (span)'.length);
  const us = (ns: bigint): string => (Number(ns) / 1000).toFixed(1).padStart(9);
  const lines = phases.map((p) => `  ${p.name.padEnd(width)}  ${us(p.endNs - p.startNs)} us`);
  lines.push(`  ${'total (span)'.padEnd(width)}  ${us(spanNs)} us`);
  return lines.join('\n');
}

/** Runs the demo, writing to `out`. Returns the guest's result. */
export function runDemo(out: (text: string) => void = (t) => process.stdout.write(t)): number {
  const t0 = process.hrtime.bigint();
  const rec = new TraceRecorder(t0);
  const uninit = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')));
  rec.phase('validate', t0, process.hrtime.bigint());
  uninit.registerHostFunction('HostMethod1', { params: ['String'], returns: 'Int' }, (s: string) => s.length);
  uninit.registerPrint((text) => { out(`guest says: ${text}`); return text.length; });
  const sandbox = uninit.evolve({ trace: rec });
  try {
    const result = sandbox.callGuestFunctionByName('PrintOutput', ReturnType.Int,
      [ParameterValue.String('Hello from a VM guest!\n')]);
    const t = process.hrtime.bigint();
    sandbox.close();
    rec.phase('close', t, process.hrtime.bigint());
    out(`PrintOutput returned ${result} (characters printed by the host)\n\n`);
    out(`A fresh KVM micro-VM, phase by phase:\n${formatPhases(rec.sortedPhases(), rec.spanNs())}\n`);
    return result;
  } finally {
    sandbox.close();
  }
}
