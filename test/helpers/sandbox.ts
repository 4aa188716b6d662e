// Test helper: a simpleguest sandbox with the host functions its functions call.
import { GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import type { MultiUseSandbox } from '../../src/sandbox/multi-use-sandbox.js';
import type { SandboxConfig } from '../../src/sandbox/config.js';
import type { GuestLogRecord } from '../../src/sandbox/codec.js';

export const ECHO_TYPES = ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'Bool', 'String', 'VecBytes'] as const;

export interface TestSandbox {
  sandbox: MultiUseSandbox;
  printed: string[];
  logs: GuestLogRecord[];
  hostCalls: { name: string; args: unknown[] }[];
}

/** Builds and evolves a simpleguest sandbox; `setup` may register more host functions. */
export function simpleSandbox(config?: SandboxConfig, setup?: (u: UninitializedSandbox) => void): TestSandbox {
  const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath('simpleguest')), config);
  const t: Omit<TestSandbox, 'sandbox'> = { printed: [], logs: [], hostCalls: [] };
  u.registerPrint((text) => { t.printed.push(text); return text.length; });
  u.registerLogger((r) => t.logs.push(r), 0);
  u.registerHostFunction('HostMethod1', { params: ['String'], returns: 'Int' }, (s: string) => {
    t.hostCalls.push({ name: 'HostMethod1', args: [s] });
    return s.length;
  });
  u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => a + b);
  for (const type of ECHO_TYPES) {
    u.registerHostFunction(`HostEcho${type}`, { params: [type], returns: type }, (x) => x);
  }
  setup?.(u);
  return { sandbox: u.evolve(), ...t };
}
