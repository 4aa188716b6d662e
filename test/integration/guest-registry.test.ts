// The guest SDK's function registry on real KVM: 200 functions under run-time names all
// answer under their own name through the hash chains, and of a name registered twice the
// first registration wins.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildGuest } from '../../src/cli/build-guest.js';
import { GuestError } from '../../src/sandbox/errors.js';
import { GuestBinary } from '../../src/sandbox/guest-binary.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { catchError } from '../helpers/errors.js';
import { describeKvm } from '../helpers/kvm.js';

const dir = mkdtempSync(join(tmpdir(), 'hl-registry-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeKvm('guest function registry', () => {
  let sandbox: MultiUseSandbox;
  beforeAll(() => {
    const elf = join(dir, 'registry.elf');
    buildGuest({ output: elf, sources: [resolve(import.meta.dirname, '../fixtures/registry-guest.c')] });
    sandbox = UninitializedSandbox.create(GuestBinary.filePath(elf)).evolve();
  });
  afterAll(() => sandbox?.close());

  it('finds each of 200 functions by its own name, and no name that was not registered', () => {
    const got = Array.from({ length: 200 }, (_, i) => sandbox.call(`F${i}`, 'Int'));
    expect(got).toEqual(Array.from({ length: 200 }, (_, i) => i));
    for (const missing of ['F200', 'F', 'f1', 'F01']) {
      const e = catchError(() => sandbox.call(missing, 'Int'));
      expect(e, missing).toBeInstanceOf(GuestError);
      expect((e as GuestError).guestCode, missing).toBe(4); // GuestFunctionNotFound
    }
  });

  it('calls the first registration of a name registered twice', () => {
    expect(sandbox.call('Twice', 'Int')).toBe(1);
  });
});
