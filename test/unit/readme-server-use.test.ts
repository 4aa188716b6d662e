// The README's "Server use" code is an excerpt of examples/08-http-server.mjs (which the
// examples test runs): every line of it must appear in the example, in the same order.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');

it('the README "Server use" block is taken from examples/08-http-server.mjs', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Server use'));
  const block = /```js\n([\s\S]*?)```/.exec(section)?.[1];
  expect(block).toBeDefined();
  const example = readFileSync(join(ROOT, 'examples', '08-http-server.mjs'), 'utf8').split('\n');
  const lines = block!.split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('// ...'));
  expect(lines.length).toBeGreaterThan(15);
  let at = 0;
  for (const line of lines) {
    const found = example.indexOf(line, at);
    expect(found, `README line not in the example (in order): ${line}`).toBeGreaterThanOrEqual(0);
    at = found + 1;
  }
});
