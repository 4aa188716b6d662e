// Keeps docs/security.md true: its test inventory must match the tests vitest collects from each file, and its volumes the constants in the sources.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
  it('lists every inventory file with the number of tests vitest collects from it', () => {
    const rows = table('file');
    expect(rows.length).toBeGreaterThanOrEqual(5);
    const files = rows.map((r) => unquote(r[0]!));
    const vitest = join(ROOT, 'node_modules', '.bin', 'vitest');
    const out = execFileSync(vitest, ['list', ...files, '--json'], {
      cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000,
    });
    const collected = JSON.parse(out.slice(out.indexOf('['))) as { name: string; file: string }[];
    const counts = new Map<string, number>();
    for (const t of collected) {
      const file = relative(ROOT, t.file);
      counts.set(file, (counts.get(file) ?? 0) + 1);
    }
    for (const row of rows) {
      const file = unquote(row[0]!);
      expect({ file, tests: counts.get(file) ?? 0 }).toEqual({ file, tests: Number(row[1]) });
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
