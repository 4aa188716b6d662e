// Keeps the tooling layout: the CLI uses only the public API, the library ships no benchmark code or devDependency, and one trace recorder exists.
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string>; files: string[] };

function tsFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts')).map((f) => join(dir, f));
}
/** Module specifiers of static imports/exports (statements at the start of a line) and of `await import('...')`. */
const importsOf = (file: string): string[] =>
  [...readFileSync(join(ROOT, file), 'utf8').matchAll(/^(?:import|export|\})[^'\n]*?from '([^']+)'|^import '([^']+)'|await import\('([^']+)'\)/gm)]
    .map((m) => (m[1] ?? m[2] ?? m[3])!);

describe('tooling layout', () => {
  it('the CLI imports the public API (../index.js), its own modules and node: built-ins only', () => {
    // build-guest.ts is library code (buildGuest is public) kept beside its command.
    const cli = tsFiles('src/cli').filter((f) => !f.endsWith('build-guest.ts'));
    expect(cli.length).toBeGreaterThanOrEqual(10);
    const stray = cli.flatMap((f) => importsOf(f).filter((s) => !(s === '../index.js' || s.startsWith('node:') || /^\.\/[a-z-]+\.js$/.test(s)))
      .map((s) => `${f}: ${s}`));
    expect(stray).toEqual([]);
  });

  it('src/ holds no benchmark code and imports no devDependency; the benchmark suite is bench/, outside the package files', () => {
    const src = tsFiles('src');
    expect(src.filter((f) => f.startsWith('src/bench'))).toEqual([]);
    const dev = Object.keys(pkg.devDependencies);
    const used = src.flatMap((f) => importsOf(f).filter((s) => dev.some((d) => s === d || s.startsWith(`${d}/`))).map((s) => `${f}: ${s}`));
    expect(used).toEqual([]);
    expect(tsFiles('bench')).toEqual(expect.arrayContaining(['bench/suite.ts', 'bench/main.ts']));
    expect(pkg.files.filter((f) => f.startsWith('bench') || f.startsWith('dist/bench'))).toEqual([]);
  });

  it('TraceRecorder is the one PhaseSink/ExitSink recorder: no other class implements them', () => {
    const sources = [...tsFiles('src'), ...tsFiles('bench')];
    const recorders = sources.filter((f) => /class \w+ implements [^{]*\b(PhaseSink|ExitSink)\b/.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(recorders).toEqual(['src/sandbox/trace-recorder.ts']);
  });
});
