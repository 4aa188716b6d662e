// Example 6: example 4's mechanism inside a real sandbox. A host function called by the
// guest, with every VM exit of the call printed (the ExitSink tracing hook).
import { UninitializedSandbox, GuestBinary, bundledGuestPath } from 'hyperlight-ts';

// The guest leaves the VM by storing to its doorbell page (mapped, but with no memory behind
// it): an MMIO exit whose address names the op (doorbell + 8 * op).
const OPS = { 99: 'log', 101: 'host call', 102: 'abort', 103: 'debug print', 108: 'halt' };

const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')));
// simpleguest's GuestMethod1(s) calls the host function HostMethod1 with a greeting.
u.registerHostFunction('HostMethod1', { params: ['String'], returns: 'Int' }, (text) => {
  console.log(`  host function HostMethod1(${JSON.stringify(text)}) runs on the host`);
  return text.length;
});
const sandbox = u.evolve();
try {
  const start = process.hrtime.bigint();
  // The sink sees each exit before the run loop handles it. The exit object is reused
  // by the next KVM_RUN: copy what you keep.
  sandbox.traceExits({
    exit(exit, rip, timeNs) {
      const us = (Number(timeNs - start) / 1000).toFixed(0);
      const op = Number(exit.address & 0xfffn) / 8;
      const what = exit.kind === 'mmio' ? `doorbell op ${op} (${OPS[op] ?? '?'})` : exit.kind;
      console.log(`  exit at +${us} us: ${what}, RIP 0x${rip.toString(16)}`);
    },
  });
  console.log('calling GuestMethod1("world"):');
  const result = sandbox.call('GuestMethod1', 'Int', 'world');
  console.log(`result ${result}: the guest returned what the host function returned`);
  // The flow: the guest pushes a FunctionCall onto its output buffer and rings doorbell op
  // 101; the run loop pops and decodes it, calls the host function, pushes the
  // FunctionCallResult onto the input buffer and resumes the vCPU after the store; the guest
  // finishes and rings op 108 (halt).
} finally {
  sandbox.close();
}
