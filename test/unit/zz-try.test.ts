import { it } from 'vitest';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
it('dumps', () => {
  console.log('start');
  const sb = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('debugguest')), { crashDumpDir: '/tmp/cd17' }).evolve();
  console.log('evolved');
  let err: any;
  try { sb.call('Crash', 'Int', 3); } catch (e) { err = e; }
  console.log(err.message, err.crashDumpPath, err.crashDumpError);
});
