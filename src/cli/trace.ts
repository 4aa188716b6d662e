// Renders a TraceRecorder (the library's one recorder) as a text table or a self-contained HTML timeline. No VM logic, no recording.
import type { TraceRecorder, TracedExit } from '../index.js';

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
  // The total is the span from the start to the last event, not the sum of the phases
  // (phases nest and leave gaps: host work between them is in the span too).
  phaseRows.push(['total (span)', '0.0', micros(rec.spanNs())]);
  const exitRows = rec.exits.map((x, i) => [
    String(i + 1), micros(x.timeNs - rec.startNs), x.reason, x.port === undefined ? '' : String(x.port),
    `0x${x.rip.toString(16).padStart(8, '0')}`, x.detail,
  ]);
  const calls = rec.syscallSummary();
  const syscallLine = calls.total === 0 ? [] : ['', `system calls (${calls.total}, ${calls.enosys} answered -ENOSYS): ` +
    [...calls.byName].map(([name, n]) => `${name} ${n}`).join(', ')];
  const hostRows = rec.hostCalls.map((h, i) => [
    String(i + 1), h.name, micros(h.startNs - rec.startNs), micros(h.endNs - h.startNs), h.failed ? 'threw' : 'ok',
  ]);
  return [
    `phases (${phases.length}), microseconds since start:`,
    ...table(['phase', 'start us', 'took us'], phaseRows, new Set([1, 2])),
    '',
    `exits (${rec.exits.length}):`,
    ...table(['#', 'time us', 'reason', 'op', 'rip', 'meaning'], exitRows, new Set([0, 1, 3])),
    ...syscallLine,
    ...(hostRows.length > 0 ? ['', `host calls (${hostRows.length}):`,
      ...table(['#', 'function', 'start us', 'took us', 'result'], hostRows, new Set([0, 2, 3]))] : []),
    ...(rec.failure ? ['', `failed at ${micros(rec.failure.timeNs - rec.startNs)} us: ${rec.failure.code}: ${rec.failure.message}`] : []),
    '',
  ].join('\n');
}

const escapeHtml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const PHASE_COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];

/** Colour by meaning (TracedExit.detail names the Hyperlight port). */
function exitColor(x: TracedExit): string {
  if (x.detail === 'halt' || x.reason === 'hlt') return '#2b8a3e';
  if (x.detail === 'host call') return '#1c7ed6';
  if (x.detail.startsWith('debug print') || x.detail === 'log') return '#868e96';
  if (x.syscall) return '#7048e8';
  return '#e03131';
}

/** Round tick spacing (1, 2 or 5 times a power of ten microseconds) for about `n` ticks over `spanUs`. */
function tickStep(spanUs: number, n: number): number {
  const raw = Math.max(spanUs / n, 1e-3);
  const p = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p;
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
  // One lane per phase (a Gantt chart), its name beside the bar; then a lane of host
  // calls by name, a lane of exits, and the time axis.
  const lane = 18;
  const bar = (x0: number, x1: number, y: number, fill: string, label: string, text: string, cls: string): void => {
    const w = Math.max(1, x1 - x0);
    svg.push(`<rect class="${cls}" x="${x0.toFixed(2)}" y="${y}" width="${w.toFixed(2)}" height="${lane - 4}" ` +
      `fill="${fill}"><title>${escapeHtml(label)}</title></rect>`);
    const rightOfBar = x0 + w + 4 + text.length * 6 < left + width;
    svg.push(`<text x="${(rightOfBar ? x0 + w + 4 : x0 - 4).toFixed(2)}" y="${y + lane - 7}" font-size="10"` +
      `${rightOfBar ? '' : ' text-anchor="end"'}>${escapeHtml(text)}</text>`);
  };
  phases.forEach((p, i) => {
    bar(x(p.startNs), x(p.endNs), 10 + i * lane, PHASE_COLORS[i % PHASE_COLORS.length]!,
      `${p.name}: ${micros(p.endNs - p.startNs)} us from ${micros(p.startNs - rec.startNs)} us`,
      `${p.name} ${micros(p.endNs - p.startNs)} us`, 'phase');
  });
  const hostTop = 10 + phases.length * lane + 4;
  rec.hostCalls.forEach((h) => {
    bar(x(h.startNs), x(h.endNs), hostTop, h.failed ? '#e03131' : '#1c7ed6',
      `host call ${h.name}: ${micros(h.endNs - h.startNs)} us from ${micros(h.startNs - rec.startNs)} us${h.failed ? ', threw' : ''}`,
      h.name, 'host-call');
  });
  const exitsTop = hostTop + (rec.hostCalls.length > 0 ? lane + 4 : 0) + 4;
  rec.exits.forEach((e, i) => {
    const xe = x(e.timeNs).toFixed(2);
    const label = `#${i + 1} ${e.reason}${e.port === undefined ? '' : ` ${e.syscall ? 'nr' : 'port'} ${e.port}`} ${e.detail} at ` +
      `${micros(e.timeNs - rec.startNs)} us, rip 0x${e.rip.toString(16)}`;
    svg.push(`<line class="exit" x1="${xe}" y1="${exitsTop}" x2="${xe}" y2="${exitsTop + 24}" stroke="${exitColor(e)}" stroke-width="1">` +
      `<title>${escapeHtml(label)}</title></line>`);
  });
  if (rec.failure) {
    const xf = x(rec.failure.timeNs).toFixed(2);
    svg.push(`<line class="failure" x1="${xf}" y1="4" x2="${xf}" y2="${exitsTop + 28}" stroke="#c92a2a" stroke-width="2" stroke-dasharray="4 2">` +
      `<title>${escapeHtml(`failed: ${rec.failure.code}: ${rec.failure.message}`)}</title></line>`);
  }
  // The time axis: a baseline with round ticks in microseconds.
  const axisY = exitsTop + 34;
  const spanUs = span / 1000;
  const step = tickStep(spanUs, 8);
  svg.push(`<line class="axis" x1="${left}" y1="${axisY}" x2="${left + width}" y2="${axisY}" stroke="#495057" stroke-width="1"/>`);
  for (let t = 0; t <= spanUs + 1e-9; t += step) {
    const xt = (left + (t / spanUs) * width).toFixed(2);
    svg.push(`<line class="tick" x1="${xt}" y1="${axisY}" x2="${xt}" y2="${axisY + 5}" stroke="#495057"/>` +
      `<text x="${xt}" y="${axisY + 16}" font-size="10" text-anchor="middle">${Number(t.toFixed(3))} us</text>`);
  }
  const height = axisY + 40;
  svg.push(`<text x="${left}" y="${axisY + 32}" font-size="10">exits: green halt, blue host call, grey print/log, violet system call, red other` +
    `${rec.hostCalls.length > 0 ? '; bars above them: host calls by name' : ''}</text>`);
  const failed = rec.failure
    ? `<p class="failed"><strong>Failed</strong> at ${micros(rec.failure.timeNs - rec.startNs)} us: <code>${escapeHtml(rec.failure.code)}</code> ${escapeHtml(rec.failure.message)}</p>\n`
    : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5em; }
pre { font-size: 12px; background: #f8f9fa; padding: 1em; overflow-x: auto; }
.failed { color: #c92a2a; }
</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
${failed}<p>${phases.length} phases, ${rec.hostCalls.length} host calls and ${rec.exits.length} VM exits over ${micros(rec.spanNs())} us. Hover for details.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${width + 2 * left}" height="${height}" viewBox="0 0 ${width + 2 * left} ${height}">
${svg.join('\n')}
</svg>
<pre>${escapeHtml(formatTrace(rec))}</pre>
</body>
</html>
`;
}
