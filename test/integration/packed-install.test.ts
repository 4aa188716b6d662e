// Packs the package (npm pack of the built dist/), installs the tarball into fresh ESM, CommonJS and TypeScript projects, and runs the README's Quick start in each.
// Needs a build first (`npm test` does it): it tests dist/, what users install, not src/.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeKvm } from '../helpers/kvm.js';

const run = promisify(execFile);
const ROOT = resolve(import.meta.dirname, '../..');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const NPM_QUIET = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

/** The README's Quick start code block. */
function quickStart(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const code = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf('## Quick start')))?.[1];
  if (!code) throw new Error('README.md has no ```ts block under ## Quick start');
  return code;
}

/** What each project prints after the Quick start, from the sandbox it left. */
const PROBE = "console.log('RESULT ' + JSON.stringify({ add: sandbox.call('Add', 'Int', 40, 2), status: sandbox.status() }));\n";

/**
 * The Quick start (TypeScript) as the JavaScript a user of that module system would write:
 * types erased and `using` lowered (Node 20 has neither) by TypeScript's own transpiler.
 */
function asJs(code: string, module: 'esm' | 'cjs'): string {
  const out = ts.transpileModule(`${code}${PROBE}`, {
    compilerOptions: {
      target: ts.ScriptTarget.ES2022,
      module: module === 'esm' ? ts.ModuleKind.ESNext : ts.ModuleKind.CommonJS,
      esModuleInterop: true,
    },
  }).outputText;
  expect(out).not.toContain('using sandbox');
  return out;
}

let dir = '';
let tarball = '';

async function project(name: string, packageJson: object | undefined): Promise<string> {
  const p = join(dir, name);
  mkdirSync(p);
  if (packageJson) writeFileSync(join(p, 'package.json'), JSON.stringify(packageJson, null, 2));
  else await run('npm', ['init', '-y'], { cwd: p }); // what a new user starts from
  await run('npm', ['install', ...NPM_QUIET, tarball], { cwd: p, timeout: 120_000 });
  return p;
}

async function node(cwd: string, file: string): Promise<string> {
  const { stdout } = await run(process.execPath, [file], { cwd, timeout: 30_000 });
  return stdout;
}

/** The Quick start's output: the guest's greeting, then the probe line. */
function expectQuickStartRan(stdout: string): void {
  expect(stdout).toContain('Hello from a VM guest!');
  const line = /^RESULT (.*)$/m.exec(stdout)?.[1];
  expect(line, stdout).toBeDefined();
  expect(JSON.parse(line!)).toEqual({ add: 42, status: 'ready' });
}

let esm = '';
let cjs = '';
let tsProj = '';

describeKvm('packed tarball in fresh projects', () => {
  beforeAll(async () => {
    for (const f of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/cjs/index.js', 'dist/cjs/package.json']) {
      if (!existsSync(join(ROOT, f))) throw new Error(`${f} is missing: run npm run build first`);
    }
    dir = mkdtempSync(join(tmpdir(), 'hl-packed-'));
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir, '--loglevel=error'], { cwd: ROOT, timeout: 60_000 });
    const packed = readdirSync(dir).filter((f) => f.endsWith('.tgz'));
    expect(packed).toHaveLength(1);
    tarball = join(dir, packed[0]!);
    [esm, cjs, tsProj] = await Promise.all([
      project('esm', { name: 'esm-user', private: true, type: 'module' }),
      project('cjs', { name: 'cjs-user', private: true }),
      project('ts', undefined),
    ]);
  }, 180_000);
  afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('the tarball holds the two builds, the guests, the examples and the LICENSE, and no tests or benchmarks', async () => {
    const { stdout } = await run('tar', ['-tzf', tarball]);
    const files = stdout.split('\n').filter(Boolean).map((f) => f.replace(/^package\//, ''));
    expect(files).toEqual(expect.arrayContaining([
      'package.json', 'LICENSE', 'README.md', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/cjs/index.js',
      'dist/cjs/index.d.ts', 'dist/cjs/package.json', 'dist/src/cli/main.js', 'guests/bin/simpleguest.elf',
      'guests/sdk/include/hyperlight_guest.h', 'examples/01-hello-real-mode.mjs', 'guests/bin/jsguest.elf', 'NOTICE.md',
    ]));
    expect(files.filter((f) => /^(test|src|bench|dist\/bench)\//.test(f) || f.includes('.test.'))).toEqual([]);
  });

  it('ESM: import runs the Quick start', async () => {
    const code = asJs(quickStart(), 'esm');
    expect(code).toMatch(/^import \{[^}]*\} from 'hyperlight-ts';/m);
    writeFileSync(join(esm, 'index.mjs'), code);
    expectQuickStartRan(await node(esm, 'index.mjs'));
  });

  it('ESM: the shipped JavaScript guest runs with nothing compiled in the project', async () => {
    writeFileSync(join(esm, 'js.mjs'), "import { JsSandbox } from 'hyperlight-ts';\n" +
      "const js = await JsSandbox.create(); console.log('JS', await js.run('6 * 7')); await js.close();\n");
    const { stdout } = await run(process.execPath, ['js.mjs'], { cwd: esm, timeout: 60_000 });
    expect(stdout).toBe('JS 42\n');
  });

  it('CommonJS: require runs the Quick start', async () => {
    const code = asJs(quickStart(), 'cjs');
    expect(code).toContain('require("hyperlight-ts")');
    writeFileSync(join(cjs, 'index.cjs'), code);
    expectQuickStartRan(await node(cjs, 'index.cjs'));
    // The CommonJS build is a separate copy of the classes, complete on its own.
    const { stdout } = await run(process.execPath, ['-e',
      "const h = require('hyperlight-ts'); console.log(typeof h.MultiUseSandbox, typeof h.HyperlightError, require.resolve('hyperlight-ts'))"], { cwd: cjs });
    expect(stdout).toMatch(/^function function .*node_modules\/hyperlight-ts\/dist\/cjs\/index\.js\n$/);
  });

  it('TypeScript (npm init -y, module nodenext, so CommonJS): the Quick start type-checks, compiles and runs', async () => {
    writeFileSync(join(tsProj, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        module: 'nodenext', target: 'es2022', lib: ['es2022', 'esnext.disposable'], strict: true,
        skipLibCheck: false, types: ['node'], typeRoots: [join(ROOT, 'node_modules/@types')],
      },
      files: ['index.ts'],
    }));
    const code = quickStart();
    // The Quick start's typed line: call() narrows its result by the return type name.
    expect(code).toContain("const sum: number = sandbox.call('Add', 'Int', 40, 2);");
    writeFileSync(join(tsProj, 'index.ts'), `${code}${PROBE}`);
    const tsc = await run(process.execPath, [TSC, '-p', '.'], { cwd: tsProj }).catch((e: { stdout?: string }) => {
      throw new Error(`tsc failed in the TypeScript project:\n${e.stdout ?? String(e)}`);
    });
    expect(tsc.stdout).toBe('');
    expect(readFileSync(join(tsProj, 'index.js'), 'utf8')).toContain('require("hyperlight-ts")');
    expectQuickStartRan(await node(tsProj, 'index.js'));
  });
});
