// Runs the README's quick start (its first ```ts block) against the sources, so the
// example stays true to the code.
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect, it } from 'vitest';
import { describeKvm } from '../helpers/kvm.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

describeKvm('README quick start', () => {
  it('runs and prints the guest greeting', async () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## Quick start'));
    const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    expect(code).toBeDefined();
    const dir = join(root, 'test', '.generated');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'readme-quickstart.ts');
    const source = code!.replace("from 'hyperlight-ts'", `from ${JSON.stringify(pathToFileURL(join(root, 'src', 'index.ts')).href)}`);
    writeFileSync(file, `${source}\nexport const result = { snap, sandbox };\n`);
    const written: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => { written.push(String(chunk)); return true; }) as typeof process.stdout.write;
    try {
      const mod = await import(pathToFileURL(file).href) as { result: { sandbox: { status(): string } } };
      expect(mod.result.sandbox.status()).toBe('closed'); // `using` closed it
    } finally {
      process.stdout.write = write;
      rmSync(dir, { recursive: true, force: true });
    }
    expect(written.join('')).toContain('Hello from a VM guest!');
  });
});
