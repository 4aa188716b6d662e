// `hyperlight-ts demo` (what `npm start` runs): the announcement's example, a guest call
// in a fresh micro-VM, with the time each start-up phase took.
import { ParameterValue, ReturnType } from '../sandbox/values.js';
import { GuestBinary, bundledGuestPath } from '../sandbox/guest-binary.js';
import { UninitializedSandbox } from '../sandbox/uninitialized-sandbox.js';
import type { PhaseSink } from '../sandbox/machine.js';
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

export interface PhaseTiming { phase: string; micros: number }

/** Collects phase timings in order. */
export class PhaseRecorder implements PhaseSink {
  readonly phases: PhaseTiming[] = [];
  phase(name: string, startNs: bigint, endNs: bigint): void {
    this.phases.push({ phase: name, micros: Number(endNs - startNs) / 1000 });
  }
}

export function formatPhases(phases: readonly PhaseTiming[]): string {
  const width = Math.max(...phases.map((p) => p.phase.length), 5);
  const lines = phases.map((p) => `  ${p.phase.padEnd(width)}  ${p.micros.toFixed(1).padStart(9)} us`);
  const total = phases.reduce((a, p) => a + p.micros, 0);
  lines.push(`  ${'total'.padEnd(width)}  ${total.toFixed(1).padStart(9)} us`);
  return lines.join('\n');
}

/** Runs the demo, writing to `out`. Returns the guest's result. */
export function runDemo(out: (text: string) => void = (t) => process.stdout.write(t)): number {
  const rec = new PhaseRecorder();
  const t0 = process.hrtime.bigint();
  const uninit = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')));
  rec.phase('validate', t0, process.hrtime.bigint());
  uninit.registerHostFunction('HostMethod1', { params: ['String'], returns: 'Int' }, (s: string) => s.length);
  uninit.registerPrint((text) => { out(`guest says: ${text}`); return text.length; });
  const sandbox = uninit.evolve({ trace: rec });
  try {
    const result = sandbox.callGuestFunctionByName('PrintOutput', ReturnType.Int,
      [ParameterValue.String('Hello from a VM guest!\n')]) as number;
    const t = process.hrtime.bigint();
    sandbox.close();
    rec.phase('close', t, process.hrtime.bigint());
    out(`PrintOutput returned ${result} (characters printed by the host)\n\n`);
    out(`A fresh KVM micro-VM, phase by phase:\n${formatPhases(rec.phases)}\n`);
    return result;
  } finally {
    sandbox.close();
  }
}
