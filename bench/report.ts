// The benchmark's result types and its Markdown rendering. No measuring here (index.ts runs
// the operations; stats.ts and the ops-*.ts files time them).

export type RowGroup = 'C floor' | 'KVM layer from JS' | 'compute' | 'hyperlight-ts' | 'async' | 'javascript' | 'alternatives' | 'capacity' | 'guest';
export type RowUnit = 'ns' | 'KiB' | 'sandboxes' | 'instructions' | 'x' | 'calls/s' | '%';

export interface BenchRow {
  /** Stable key, e.g. `warm-echo`. */
  id: string;
  label: string;
  group: RowGroup;
  unit: RowUnit;
  /** Timed iterations kept (0 for single readings). */
  iterations: number;
  /** Untimed iterations run first. */
  warmup: number;
  /** In `unit`; null only when the row was skipped. */
  median: number | null;
  p99: number | null;
  /** Row id whose median this row's median is divided by; null for rows that are not times. */
  baseline: string | null;
  /** median / baseline median; null when there is no baseline or the row was skipped. */
  ratio: number | null;
  /** The design target, as text, or null. */
  target: string | null;
  /** What the row includes. */
  note: string;
  /** Why the row was not measured. */
  skipped?: string;
}

export interface PhaseStat { phase: string; median: number; p99: number; n: number }

export interface MachineInfo {
  cpuModel: string;
  cpus: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  /** kvm_pvm, kvm_intel, kvm_amd or unknown. */
  kvm: string;
  loadAverageStart: number[];
  loadAverageEnd: number[];
}

/** A warm call's median time inside KVM_RUN and outside it (measured by wrapping vcpu.run). */
export interface CallTimeSplit {
  totalNs: number;
  inKvmNs: number;
  hostNs: number;
  runsPerCall: number;
  /** The guest's instructions x ns per instruction (an estimate of guest execution). */
  guestEstimateNs: number | null;
}

export interface TimeBreakdown {
  /** ns per guest instruction measured with a dec/jnz loop. */
  nsPerInstruction: number | null;
  echoInstructions: number | null;
  initInstructions: number | null;
  /** Warm Echo("hi"). */
  warmEcho: CallTimeSplit | null;
  /** Add(2, 3), which makes one host call. */
  hostCall: CallTimeSplit | null;
  /** guest-init phase median against init's instructions x ns/instruction. */
  guestInit: { phaseNs: number; guestNs: number } | null;
}

export interface BenchResult {
  version: 1;
  quick: boolean;
  startedAt: string;
  durationMs: number;
  machine: MachineInfo;
  /** Guest memory size of a simpleguest sandbox (layout.totalSize), used for the floors too. */
  memBytes: number;
  rows: BenchRow[];
  phases: { cFloor: PhaseStat[]; jsKvmLayer: PhaseStat[]; coldStart: PhaseStat[] };
  breakdown: TimeBreakdown;
  notes: string[];
}

/** ns as a short human figure. */
export function formatNs(ns: number): string {
  if (!Number.isFinite(ns)) return '-';
  if (Math.abs(ns) < 10) return `${ns.toFixed(2)} ns`; // a native instruction is a fraction of a ns
  if (ns < 1_000) return `${ns.toFixed(0)} ns`;
  if (ns < 1_000_000) return `${(ns / 1_000).toFixed(ns < 10_000 ? 2 : 1)} us`;
  return `${(ns / 1_000_000).toFixed(ns < 10_000_000 ? 3 : 1)} ms`;
}

function formatValue(v: number | null, unit: RowUnit): string {
  if (v === null) return '-';
  switch (unit) {
    case 'ns': return formatNs(v);
    case 'KiB': return `${v.toFixed(0)} KiB`;
    case 'sandboxes': return v.toFixed(0);
    case 'instructions': return v.toFixed(0);
    case 'x': return `${v.toFixed(2)}x`;
    case 'calls/s': return `${Math.round(v).toLocaleString('en-US')}/s`;
    case '%': return `${v.toFixed(2)} %`;
  }
}

function cell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

/** The main table: one line per row, baselines named by label. */
export function markdownTable(result: BenchResult): string {
  const byId = new Map(result.rows.map((r) => [r.id, r]));
  const lines = [
    '| operation | n | median | p99 | baseline | ratio | target |',
    '|---|---:|---:|---:|---|---:|---|',
  ];
  for (const r of result.rows) {
    const base = r.baseline === null ? '-' : r.baseline === r.id ? '(is the baseline)' : (byId.get(r.baseline)?.label ?? r.baseline);
    const ratio = r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`;
    const label = r.skipped ? `${r.label} (skipped)` : r.label;
    lines.push(`| ${cell(label)} | ${r.iterations || 1} | ${formatValue(r.median, r.unit)} | ${formatValue(r.p99, r.unit)} | ${cell(base)} | ${ratio} | ${cell(r.target ?? '')} |`);
  }
  return lines.join('\n');
}

function phaseTable(title: string, phases: readonly PhaseStat[], total: number | null): string {
  if (phases.length === 0) return '';
  const lines = [`**${title}**`, '', '| phase | median | p99 | share of median total |', '|---|---:|---:|---:|'];
  const sum = phases.reduce((a, p) => a + p.median, 0);
  const whole = total ?? sum;
  for (const p of phases) {
    lines.push(`| ${p.phase} | ${formatNs(p.median)} | ${formatNs(p.p99)} | ${((100 * p.median) / whole).toFixed(0)}% |`);
  }
  lines.push(`| (sum of medians) | ${formatNs(sum)} | | |`);
  return lines.join('\n');
}

/** The whole Markdown report: machine, table, notes, phases, where the time goes. */
export function markdownReport(result: BenchResult): string {
  const m = result.machine;
  const parts: string[] = [];
  parts.push(`# hyperlight-ts benchmarks${result.quick ? ' (--quick: a smoke run, not a measurement)' : ''}`);
  parts.push(`${result.startedAt}; ${m.cpuModel}, ${m.cpus} CPUs, ${m.memoryGiB} GiB, Linux ${m.kernel}, ` +
    `KVM: ${m.kvm}, Node ${m.node}; load average ${m.loadAverageStart.map((x) => x.toFixed(2)).join(' ')} at start, ` +
    `${m.loadAverageEnd.map((x) => x.toFixed(2)).join(' ')} at end; guest memory ${(result.memBytes / 1024).toFixed(0)} KiB; ` +
    `${(result.durationMs / 1000).toFixed(1)} s.`);
  parts.push(markdownTable(result));
  const byId = new Map(result.rows.map((r) => [r.id, r]));
  const notes = result.rows.map((r) => `- **${r.label}**: ${r.skipped ? `skipped: ${r.skipped}` : r.note}`);
  parts.push(`What each row includes:\n\n${notes.join('\n')}`);
  const coldTotal = byId.get('cold-start-simpleguest')?.median ?? null;
  const cTotal = byId.get('c-floor-cold')?.median ?? null;
  const jsTotal = byId.get('js-cold-cycle')?.median ?? null;
  parts.push('## Where the time goes');
  const b = result.breakdown;
  const where: string[] = [];
  if (b.nsPerInstruction !== null) {
    where.push(`- One guest instruction costs about ${formatNs(b.nsPerInstruction)} on this KVM (a dec/jnz loop between two exits).`);
  }
  const firstTouch = byId.get('guest-page-first-touch')?.median ?? null;
  const rewrite = byId.get('guest-page-rewrite')?.median ?? null;
  if (firstTouch !== null && rewrite !== null) {
    where.push(`- A guest write to a page costs ~${formatNs(firstTouch)} the first time after VM creation and ~${formatNs(rewrite)} ` +
      'on later runs (each including the probe loop\'s 4 instructions).');
  }
  const split = (name: string, c: CallTimeSplit | null, instructions: number | null): void => {
    if (!c) return;
    const guest = c.guestEstimateNs !== null && instructions !== null
      ? ` (its ${instructions} guest instructions at the dec/jnz rate account for ~${formatNs(c.guestEstimateNs)}, ` +
        `one exit for ~${formatNs(byId.get('c-floor-warm')?.median ?? Number.NaN)}; the rest of KVM_RUN is not explained by ` +
        'instruction count at that rate)' : '';
    where.push(`- ${name}: ${formatNs(c.totalNs)} median, of which ${formatNs(c.inKvmNs)} inside KVM_RUN ` +
      `(${c.runsPerCall.toFixed(0)} run${c.runsPerCall === 1 ? '' : 's'} per call)${guest} and ${formatNs(c.hostNs)} in host JS ` +
      '(encode, I/O buffers, run loop, decode).');
  };
  split('Warm Echo("hi")', b.warmEcho, b.echoInstructions);
  split('Add(2, 3) with one host call', b.hostCall, null);
  if (b.guestInit) {
    where.push(`- Guest init ${formatNs(b.guestInit.phaseNs)} (median phase), of which ~${formatNs(b.guestInit.guestNs)} is its ` +
      `${b.initInstructions} guest instructions.`);
  }
  if (where.length) parts.push(where.join('\n'));
  for (const t of [
    phaseTable('C floor cold cycle', result.phases.cFloor, cTotal),
    phaseTable('The same cycle through the KVM layer from JS', result.phases.jsKvmLayer, jsTotal),
    phaseTable('Cold start on simpleguest (create + evolve + Echo + close)', result.phases.coldStart, coldTotal),
  ]) {
    if (t) parts.push(t);
  }
  if (result.notes.length) parts.push(`Notes:\n\n${result.notes.map((n) => `- ${n}`).join('\n')}`);
  return `${parts.join('\n\n')}\n`;
}
