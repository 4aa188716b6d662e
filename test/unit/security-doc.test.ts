// Keeps docs/security.md true: its test inventory must name every hostile, fuzz and soak test file, each collected by vitest, and its volumes the constants in the sources.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const DOC = readFileSync(join(ROOT, 'docs/security.md'), 'utf8');

/** Rows of the markdown table whose header starts with `| first |`, as trimmed cells. */
function table(first: string): string[][] {
  const lines = DOC.split('\n');
  const start = lines.findIndex((l) => l.startsWith(`| ${first} |`));
  if (start < 0) throw new Error(`no table starting with "${first}" in docs/security.md`);
  const rows: string[][] = [];
  for (let i = start + 2; i < lines.length && lines[i]!.startsWith('|'); i++) {
    rows.push(lines[i]!.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

const unquote = (cell: string): string => cell.replace(/^`|`$/g, '');

describe('docs/security.md', () => {
  it('lists every hostile, fuzz and soak test file, each holding tests vitest collects', () => {
    const rows = table('file');
    const listed = rows.map((r) => unquote(r[0]!));
    // The inventory is complete: no hostile, fuzz or soak test file is left out of it.
    const onDisk = readdirSync(join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
      .map((f) => `test/${f}`)
      .filter((f) => f.endsWith('.test.ts') && /hostile|fuzz|soak/.test(f));
    expect(onDisk.length).toBeGreaterThanOrEqual(5);
    expect(listed).toEqual(expect.arrayContaining(onDisk));
    const counts = new Map<string, number>();
    const vitest = join(ROOT, 'node_modules', '.bin', 'vitest');
    // `--json` goes last: it takes an optional output path and would swallow a file name.
    const soak = listed.filter((f) => f.startsWith('test/soak/'));
    const configs: [string, string[]][] = [['vitest.config.ts', listed.filter((f) => !soak.includes(f))], ['vitest.soak.config.ts', soak]];
    for (const [config, files] of configs) {
      const out = execFileSync(vitest, ['list', '--config', config, ...files, '--json'], {
        cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000,
      });
      for (const t of JSON.parse(out.slice(out.indexOf('['))) as { file: string }[]) {
        const file = relative(ROOT, t.file);
        counts.set(file, (counts.get(file) ?? 0) + 1);
      }
    }
    for (const file of listed) {
      expect(existsSync(join(ROOT, file)), `${file} exists`).toBe(true);
      expect(counts.get(file) ?? 0, `tests vitest collects from ${file}`).toBeGreaterThan(0);
    }
  }, 90_000);

  it('quotes the fuzz and soak volumes the sources define', () => {
    const rows = table('constant');
    expect(rows.length).toBeGreaterThanOrEqual(5);
    for (const [name, file, value] of rows) {
      const source = readFileSync(join(ROOT, unquote(file!)), 'utf8');
      const m = new RegExp(`export const ${unquote(name!)} = ([0-9_]+);`).exec(source);
      expect(m, `${unquote(name!)} in ${file}`).not.toBeNull();
      expect(Number(m![1]!.replace(/_/g, ''))).toBe(Number(value!.replace(/,/g, '')));
    }
  });
});
