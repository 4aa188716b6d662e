// Keeps docs/security.md true: its test inventory must name every hostile, fuzz and soak test file, each collected by vitest, and its volumes the constants in the sources.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
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

/** A test vitest runs: `it('...'`, `test('...'`, `it.each(...)('...'` at the start of a line. */
const TEST_CALL = /^\s*(?:it|test)(?:\.each\(.*\))?\(\s*['"`]/gm;
/** A test or suite that would not run. */
const SKIPPED = /\b(?:it|test|describe)\.(?:skip|todo|only)\b|\bskipIf\(/;

describe('docs/security.md', () => {
  it('lists every hostile, fuzz and soak test file, each holding tests that run', () => {
    const rows = table('file');
    const listed = rows.map((r) => unquote(r[0]!));
    // The inventory is complete: no hostile, fuzz or soak test file is left out of it.
    const onDisk = readdirSync(join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
      .map((f) => `test/${f}`)
      .filter((f) => f.endsWith('.test.ts') && /hostile|fuzz|soak/.test(f));
    expect(onDisk.length).toBeGreaterThanOrEqual(5);
    expect(listed).toEqual(expect.arrayContaining(onDisk));
    for (const file of listed) {
      expect(existsSync(join(ROOT, file)), `${file} exists`).toBe(true);
      // Read, not collected with `vitest list` (which imports every file again: seconds of
      // the suite's budget); the suite itself runs them, and the soak run the soak files.
      const code = readFileSync(join(ROOT, file), 'utf8').split('\n').filter((l) => !/^\s*(\/\/|\*)/.test(l)).join('\n');
      expect(code.match(TEST_CALL)?.length ?? 0, `tests in ${file}`).toBeGreaterThan(0);
      expect(code, `${file} skips nothing`).not.toMatch(SKIPPED);
    }
  });

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
