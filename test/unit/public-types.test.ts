// Type-level checks of the published .d.ts: tsc on test/types/public-api.ts (its @ts-expect-error lines must all fail), no @internal left in dist, and ErrorCode equal to docs/errors.md.
// Needs `npm run build` first (npm test does it): it checks dist/, what users compile against.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';

const ROOT = resolve(import.meta.dirname, '../..');
const FIXTURE = join(ROOT, 'test/types/public-api.ts');

function declarationFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.d.ts')).map((f) => join(dir, f));
}

describe('published types', () => {
  it('tsc accepts test/types/public-api.ts, where every @ts-expect-error line is a real type error', () => {
    expect(existsSync(join(ROOT, 'dist/src/index.d.ts')), 'run npm run build first').toBe(true);
    const expected = readFileSync(FIXTURE, 'utf8').split('\n').filter((l) => l.trim().startsWith('// @ts-expect-error'));
    expect(expected.length).toBeGreaterThanOrEqual(12);
    // An unneeded @ts-expect-error is itself an error (TS2578), so a clean run proves each one fails.
    let output: string;
    try {
      output = execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'test/types/tsconfig.json'),
        '--listFiles'], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      output = (e as { stdout?: string }).stdout ?? String(e);
    }
    expect(output.split('\n').filter((l) => l.includes('error TS'))).toEqual([]);
    // It compiled against dist/ (the package's self-reference), not against src/.
    expect(output).toContain(join(ROOT, 'dist/src/index.d.ts'));
    expect(output).not.toContain(join(ROOT, 'src/index.ts'));
  }, 60_000);

  it('no @internal member is left in the ESM or the CommonJS declarations', () => {
    const files = [...declarationFiles(join(ROOT, 'dist/src')), ...declarationFiles(join(ROOT, 'dist/cjs'))];
    expect(files.length).toBeGreaterThan(40);
    expect(files.filter((f) => readFileSync(f, 'utf8').includes('@internal'))).toEqual([]);
    const sandbox = readFileSync(join(ROOT, 'dist/src/sandbox/multi-use-sandbox.d.ts'), 'utf8');
    expect(sandbox).not.toMatch(/\bget machine\(\)/);
    expect(sandbox).toMatch(/call<R extends ReturnTypeName>\(name: string, returnType: R, \.\.\.args: CallArgument\[\]\): PlainOf<R>;/);
  });

  it('ErrorCode lists exactly the codes docs/errors.md documents', () => {
    const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
    const documented = [...doc.matchAll(/^\| `(ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    expect([...documented].sort()).toEqual([...ERROR_CODES].sort());
  });
});
