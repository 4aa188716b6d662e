// Runs every fenced `sh` block of README.md and docs/*.md, so no documented command rots; it does not check the prose.
//
// Rules (also written in docs/README.md):
// - Each block runs with `bash -eo pipefail`, cwd = the repository root, and must exit 0
//   and print something (stdout or stderr).
// - Blocks that run npm (`npm install`, `npm test`, `npm start`, ...) are set-up steps: they
//   are skipped. (`npm test` would run this test again, recursively.)
// - A block naming a file that an earlier code block of the same page defines (its first
//   line a comment `/* NAME: ...` or `// NAME: ...`) runs in a scratch project instead:
//   those files written, `hyperlight-ts` installed there as a link to this checkout.
// - npx runs offline (npm_config_offline), so a command never downloads anything.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { describeKvm } from '../helpers/kvm.js';

const ROOT = resolve(import.meta.dirname, '../..');
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)];

interface Block { page: string; line: number; script: string; files: Map<string, string> }

const FENCE = /^```(\S*)\s*$/;
const FILE_COMMENT = /^(?:\/\*|\/\/)\s*([\w.-]+\.\w+):/;

/** The sh blocks of one page, each with the files defined by earlier blocks of the page. */
function shBlocks(page: string): Block[] {
  const lines = readFileSync(join(ROOT, page), 'utf8').split('\n');
  const files = new Map<string, string>();
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    if (open[1] === 'sh') {
      out.push({ page, line: start + 1, script: body.join('\n'), files: new Map(files) });
    } else if (open[1] !== '') {
      const name = FILE_COMMENT.exec(body[0] ?? '')?.[1];
      if (name) files.set(name, `${body.join('\n')}\n`);
    }
  }
  return out;
}

const isSetUp = (b: Block): boolean => b.script.split('\n').some((l) => /^\s*npm\s/.test(l) || /&&\s*npm\s/.test(l));
const all = PAGES.flatMap(shBlocks);
const runnable = all.filter((b) => !isSetUp(b));

const scratchDirs: string[] = [];
afterAll(() => { for (const d of scratchDirs) rmSync(d, { recursive: true, force: true }); });

/** A project that has hyperlight-ts installed (linked to this checkout) and `files` in it. */
function scratchProject(files: ReadonlyMap<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'hl-docs-'));
  scratchDirs.push(dir);
  writeFileSync(join(dir, 'package.json'), '{ "name": "docs-scratch", "private": true, "type": "module" }\n');
  mkdirSync(join(dir, 'node_modules/.bin'), { recursive: true });
  symlinkSync(ROOT, join(dir, 'node_modules/hyperlight-ts'));
  symlinkSync(join(ROOT, 'dist/src/cli/main.js'), join(dir, 'node_modules/.bin/hyperlight-ts'));
  for (const [name, text] of files) writeFileSync(join(dir, name), text);
  return dir;
}

it('finds the documented commands, and skips only npm set-up blocks', () => {
  expect(all.filter(isSetUp).every((b) => /\bnpm (install|test|start|ci|run)\b/.test(b.script))).toBe(true);
  const pages = new Set(runnable.map((b) => b.page));
  for (const p of ['README.md', 'docs/README.md', 'docs/how-a-microvm-starts.md', 'docs/exit-flow.md']) {
    expect(pages, p).toContain(p);
  }
});

describeKvm('documented commands', () => {
  it.each(runnable.map((b) => [`${b.page}:${b.line}`, b] as const))('%s', (_where, block) => {
    const used = [...block.files.keys()].filter((f) => block.script.includes(f));
    const cwd = used.length > 0 ? scratchProject(block.files) : ROOT;
    const r = spawnSync('bash', ['-eo', 'pipefail', '-c', block.script], {
      cwd, encoding: 'utf8', timeout: 120_000,
      env: { ...process.env, npm_config_offline: 'true', npm_config_update_notifier: 'false' },
    });
    const output = `${r.stdout}${r.stderr}`;
    expect({ status: r.status, output }).toMatchObject({ status: 0 });
    expect(output.trim().length).toBeGreaterThan(0);
  });
});
