// Start-up phases and VM exits of one `run`, recorded and rendered as a text table or a self-contained HTML timeline. No VM logic.
import type { VcpuExit } from '../kvm/exit.js';
import { DOORBELL_STRIDE, OP_ABORT, OP_CALL_FUNCTION, OP_DEBUG_PRINT, OP_HALT, OP_LOG } from '../sandbox/abi.js';
import { PORT_CPU_EXCEPTION } from '../x86_64/index.js';
import type { ExitSink } from '../sandbox/run-loop.js';
import type { PhaseSink, StartPhase } from '../sandbox/machine.js';

export interface TracedPhase {
  readonly name: string;
  readonly startNs: bigint;
  readonly endNs: bigint;
}

export interface TracedExit {
  readonly timeNs: bigint;
  /** `io-out`, `io-in`, `hlt`, `mmio`, `shutdown`, ... (the decoded exit's kind, io split by direction). */
  readonly reason: string;
  /** The doorbell op (MMIO stores to the doorbell) or the I/O port (the CPL0 stubs' exception report). */
  readonly port: number | undefined;
  readonly rip: bigint;
  /** What the exit meant: the doorbell op's name, a CPU exception, an MMIO address. */
  readonly detail: string;
}

const OP_NAMES: ReadonlyMap<number, string> = new Map([
  [OP_LOG, 'log'], [OP_CALL_FUNCTION, 'host call'], [OP_ABORT, 'abort'],
  [OP_DEBUG_PRINT, 'debug print'], [OP_HALT, 'halt'],
]);

function describeExit(exit: VcpuExit): { reason: string; port: number | undefined; detail: string } {
  switch (exit.kind) {
    case 'io': {
      const name = exit.port === PORT_CPU_EXCEPTION ? 'cpu exception' : 'unknown port';
      return { reason: `io-${exit.direction}`, port: exit.port, detail: name };
    }
    case 'mmio': {
      // Doorbell stores name their op by the offset in the (page-aligned) doorbell page.
      const op = Number(exit.address & 0xfffn) / DOORBELL_STRIDE;
      const name = exit.isWrite ? OP_NAMES.get(op) : undefined;
      return name
        ? { reason: 'mmio', port: op, detail: name }
        : { reason: 'mmio', port: undefined, detail: `${exit.isWrite ? 'write' : 'read'} 0x${exit.address.toString(16)}` };
    }
    case 'internal-error': return { reason: exit.kind, port: undefined, detail: `suberror ${exit.suberror}` };
    case 'unknown': return { reason: exit.kind, port: undefined, detail: exit.name };
    default: return { reason: exit.kind, port: undefined, detail: '' };
  }
}

/** Collects phases (PhaseSink) and exits (ExitSink) against one start time. */
export class TraceRecorder implements PhaseSink, ExitSink {
  readonly startNs: bigint;
  readonly phases: TracedPhase[] = [];
  readonly exits: TracedExit[] = [];

  constructor(startNs: bigint = process.hrtime.bigint()) {
    this.startNs = startNs;
  }

  phase(name: StartPhase | 'call' | 'validate' | 'close', startNs: bigint, endNs: bigint): void {
    this.phases.push({ name, startNs, endNs });
  }

  exit(exit: VcpuExit, rip: bigint, timeNs: bigint): void {
    this.exits.push({ timeNs, rip, ...describeExit(exit) });
  }

  /** Phases by start time. */
  sortedPhases(): TracedPhase[] {
    return [...this.phases].sort((a, b) => (a.startNs < b.startNs ? -1 : a.startNs > b.startNs ? 1 : 0));
  }

  /** Nanoseconds from the start to the last phase end or exit. */
  spanNs(): bigint {
    let end = this.startNs;
    for (const p of this.phases) if (p.endNs > end) end = p.endNs;
    for (const x of this.exits) if (x.timeNs > end) end = x.timeNs;
    return end - this.startNs;
  }
}

const micros = (ns: bigint): string => (Number(ns) / 1000).toFixed(1);

function table(head: readonly string[], rows: readonly string[][], rightAligned: ReadonlySet<number>): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: readonly string[]): string =>
    '  ' + cells.map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(head), ...rows.map(line)];
}

/** The trace as aligned text: a phase table, then one row per exit. */
export function formatTrace(rec: TraceRecorder): string {
  const phases = rec.sortedPhases();
  const phaseRows = phases.map((p) => [p.name, micros(p.startNs - rec.startNs), micros(p.endNs - p.startNs)]);
  const total = phases.reduce((a, p) => a + (p.endNs - p.startNs), 0n);
  phaseRows.push(['total', '', micros(total)]);
  const exitRows = rec.exits.map((x, i) => [
    String(i + 1), micros(x.timeNs - rec.startNs), x.reason, x.port === undefined ? '' : String(x.port),
    `0x${x.rip.toString(16).padStart(8, '0')}`, x.detail,
  ]);
  return [
    `phases (${phases.length}), microseconds since start:`,
    ...table(['phase', 'start us', 'took us'], phaseRows, new Set([1, 2])),
    '',
    `exits (${rec.exits.length}):`,
    ...table(['#', 'time us', 'reason', 'op', 'rip', 'meaning'], exitRows, new Set([0, 1, 3])),
    '',
  ].join('\n');
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const PHASE_COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

function exitColor(x: TracedExit): string {
  if (x.detail === 'halt') return '#2b8a3e';
  if (x.detail === 'host call') return '#1c7ed6';
  if (x.detail === 'debug print' || x.detail === 'log') return '#868e96';
  return '#e03131';
}

/**
 * The trace as one HTML page with no external assets: an SVG with one `<rect>` per phase
 * and one `<line class="exit">` per exit on a shared time axis, then the text table.
 */
export function traceHtml(rec: TraceRecorder, title: string): string {
  const width = 1000;
  const left = 10;
  const span = Number(rec.spanNs()) || 1;
  const x = (ns: bigint): number => left + (Number(ns - rec.startNs) / span) * width;
  const phases = rec.sortedPhases();
  const svg: string[] = [];
  // One lane per phase (a Gantt chart), its name beside the bar; exits on a lane below.
  const lane = 18;
  const exitsTop = 10 + phases.length * lane + 8;
  const height = exitsTop + 48;
  phases.forEach((p, i) => {
    const x0 = x(p.startNs);
    const w = Math.max(1, x(p.endNs) - x0);
    const y = 10 + i * lane;
    const label = `${p.name}: ${micros(p.endNs - p.startNs)} us from ${micros(p.startNs - rec.startNs)} us`;
    svg.push(`<rect x="${x0.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${lane - 4}" ` +
      `fill="${PHASE_COLORS[i % PHASE_COLORS.length]}"><title>${escapeHtml(label)}</title></rect>`);
    const text = `${p.name} ${micros(p.endNs - p.startNs)} us`;
    const rightOfBar = x0 + w + 4 + text.length * 6 < left + width;
    svg.push(`<text x="${(rightOfBar ? x0 + w + 4 : x0 - 4).toFixed(2)}" y="${y + lane - 7}" font-size="10"` +
      `${rightOfBar ? '' : ' text-anchor="end"'}>${escapeHtml(text)}</text>`);
  });
  rec.exits.forEach((e, i) => {
    const xe = x(e.timeNs).toFixed(2);
    const label = `#${i + 1} ${e.reason}${e.port === undefined ? '' : ` port ${e.port}`} ${e.detail} at ` +
      `${micros(e.timeNs - rec.startNs)} us, rip 0x${e.rip.toString(16)}`;
    svg.push(`<line class="exit" x1="${xe}" y1="${exitsTop}" x2="${xe}" y2="${exitsTop + 24}" stroke="${exitColor(e)}" stroke-width="1">` +
      `<title>${escapeHtml(label)}</title></line>`);
  });
  svg.push(`<text x="${left}" y="${exitsTop + 40}" font-size="10">0 us</text>`);
  svg.push(`<text x="${left + width}" y="${exitsTop + 40}" font-size="10" text-anchor="end">${micros(rec.spanNs())} us</text>`);
  svg.push(`<text x="${left + width / 2}" y="${exitsTop + 40}" font-size="10" text-anchor="middle">exits: green halt, blue host call, grey print/log, red other</text>`);
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; }
pre { font-size: 12px; background: #f8f9fa; padding: 1em; overflow-x: auto; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>${phases.length} phases and ${rec.exits.length} VM exits over ${micros(rec.spanNs())} us. Hover for details.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${width + 2 * left}" height="${height}" viewBox="0 0 ${width + 2 * left} ${height}">
${svg.join('\n')}
</svg>
<pre>${escapeHtml(formatTrace(rec))}</pre>
</body>
</html>
`;
}
