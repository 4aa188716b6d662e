// Example 5: snapshots. A sandbox's whole state (guest memory and vCPU registers) can be
// captured and put back: to undo calls, and to heal a sandbox a failed call poisoned.
import { UninitializedSandbox, GuestBinary, GuestAbortedError, bundledGuestPath } from 'hyperlight-ts';

// simpleguest keeps a static counter: SetStatic, AddToStatic(n) and GetStatic change and read it.
const sandbox = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest'))).evolve();
try {
  console.log(`after init: counter = ${sandbox.call('GetStatic', 'Int')}`);

  // 1. Take a snapshot: a copy of guest memory plus the registers.
  const clean = sandbox.snapshot();

  // 2. Calls change guest state, and it persists from call to call.
  sandbox.call('AddToStatic', 'Int', 10);
  console.log(`after two calls: counter = ${sandbox.call('AddToStatic', 'Int', 32)}`);

  // 3. restore() puts it all back. Only pages KVM's dirty log reports as written since the
  //    snapshot are copied, so this costs little when a call touched little.
  sandbox.restore(clean);
  console.log(`after restore: counter = ${sandbox.call('GetStatic', 'Int')}`);

  // 4. A guest that aborts leaves its state unknown, so the sandbox is poisoned: it refuses
  //    calls until restored.
  try {
    sandbox.call('GuestAbortWithCode', 'Int', 9);
  } catch (e) {
    if (!(e instanceof GuestAbortedError)) throw e;
    console.log(`call failed: ${e.code} (abort code ${e.abortCode}); sandbox is ${sandbox.status()}`);
  }
  try {
    sandbox.call('GetStatic', 'Int');
  } catch (e) {
    console.log(`next call refused: ${e.code}`);
  }
  sandbox.restore(clean);
  console.log(`after restore: sandbox is ${sandbox.status()}, counter = ${sandbox.call('GetStatic', 'Int')}`);
} finally {
  sandbox.close();
}
