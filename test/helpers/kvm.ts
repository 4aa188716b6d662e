// Test helper: whether /dev/kvm is usable. Integration suites skip with a reason when it
// is not, except under CI=true, where a missing KVM fails the run instead.
import { accessSync, constants } from 'node:fs';
import { describe } from 'vitest';

export const KVM_PATH = '/dev/kvm';

function kvmProblem(): string | undefined {
  try {
    accessSync(KVM_PATH, constants.R_OK | constants.W_OK);
    return undefined;
  } catch (e) {
    return `${KVM_PATH} not usable: ${(e as Error).message}`;
  }
}

const problem = kvmProblem();
if (problem && process.env.CI === 'true') {
  throw new Error(`CI requires KVM: ${problem}`);
}

/** `describe` for suites that need real KVM. */
export const describeKvm: typeof describe = problem
  ? (describe.skip as typeof describe)
  : describe;

export const kvmSkipReason = problem;

/**
 * Number of open file descriptors of this process, not counting the kernel anchor's (an
 * idle VM the main thread keeps for a while after its last machine: src/sandbox/kernel-anchor.ts).
 */
export async function openFdCount(): Promise<number> {
  const { readdirSync } = await import('node:fs');
  const { kernelAnchorFds } = await import('../../src/sandbox/kernel-anchor.js');
  const anchor = new Set(kernelAnchorFds().map(String));
  return readdirSync('/proc/self/fd').filter((fd) => !anchor.has(fd)).length;
}
