// Guest instruction counts of init and of single calls, counted with KVM single-step. On
// this project's PVM host every guest instruction costs ~250-500 ns, so these counts are
// the guest side of cold start and call latency. They are deterministic (not timings);
// the ceilings sit ~25% above the counts of guests/bin so that a regression shows up.
// bench/guest-instructions.mjs prints the counts and where they go.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type BundledGuestName, GuestBinary, bundledGuestPath } from '../../src/sandbox/guest-binary.js';
import { UninitializedSandbox } from '../../src/sandbox/uninitialized-sandbox.js';
import { ParameterValue as P, type ReturnTypeName, type TypedValue } from '../../src/sandbox/values.js';
import { Vcpu } from '../../src/kvm/vcpu.js';
import { describeKvm } from '../helpers/kvm.js';

const STEP = 0x1 | 0x2; // KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP

const CEILINGS = {
  // Counts of guests/bin: init 1,087, Echo 530, NoOp 333.
  simpleguest: { init: 1360, Echo: 660, NoOp: 415 },
  // Calls that call the host once (counts of guests/bin: 986 1,098 1,015 1,091).
  hostCalls: { Add: 1230, GuestMethod1: 1370, PrintOutput: 1270, RoundTripHostString: 1365 },
  dummyguest: { init: 30, call: 60 },
};

/** While `on`, Vcpu.run single-steps the guest and counts its instructions. */
let on = false;
let count = 0;
const stepping = new WeakSet<Vcpu>();
const run = Vcpu.prototype.run;
beforeAll(() => {
  Vcpu.prototype.run = function countingRun(this: Vcpu) {
    if (on !== stepping.has(this)) {
      this.setGuestDebug({ control: on ? STEP : 0 });
      if (on) stepping.add(this); else stepping.delete(this);
    }
    for (;;) {
      const exit = run.call(this);
      if (exit.kind !== 'debug') return exit;
      count++;
    }
  };
});
afterAll(() => { Vcpu.prototype.run = run; });

function counted(fn: () => void): number {
  count = 0;
  on = true;
  try {
    fn();
  } finally {
    on = false;
  }
  return count;
}

type Call = [label: string, name: string, returnType: ReturnTypeName, args: TypedValue[], expected?: unknown];

function measure(guest: BundledGuestName, calls: Call[]): Record<string, number> {
  const u = UninitializedSandbox.create(GuestBinary.filePath(bundledGuestPath(guest)));
  u.registerPrint((text) => text.length);
  if (guest === 'simpleguest') {
    u.registerHostFunction('HostMethod1', { params: ['String'], returns: 'Int' }, (s: string) => s.length);
    u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a: number, b: number) => a + b);
    u.registerHostFunction('HostEchoString', { params: ['String'], returns: 'String' }, (s: string) => s);
  }
  const out: Record<string, number> = {};
  let sandbox: ReturnType<typeof u.evolve> | undefined;
  out.init = counted(() => { sandbox = u.evolve({ freshInit: true }); });
  try {
    for (const [label, name, ret, params, expected] of calls) {
      let value: unknown;
      out[label] = counted(() => { value = sandbox!.callGuestFunctionByName(name, ret, params); });
      if (expected !== undefined) expect(value).toBe(expected);
      // The same call again costs the same: nothing is built lazily on the first call.
      expect(counted(() => sandbox!.callGuestFunctionByName(name, ret, params))).toBe(out[label]);
    }
  } finally {
    sandbox?.close();
  }
  return out;
}

describeKvm('guest instruction counts (KVM single-step)', () => {
  it('simpleguest: init, Echo("x") and NoOp stay under their ceilings', () => {
    const n = measure('simpleguest', [['Echo', 'Echo', 'String', [P.String('x')], 'x'], ['NoOp', 'NoOp', 'Void', []]]);
    expect(n.init).toBeGreaterThan(0);
    expect(n.init).toBeLessThan(CEILINGS.simpleguest.init);
    expect(n.Echo).toBeLessThan(CEILINGS.simpleguest.Echo);
    expect(n.NoOp).toBeLessThan(CEILINGS.simpleguest.NoOp);
  });

  // The host call path: the guest writes a FunctionCall, OUT 101, the host answers (the
  // counting run() hands every non-debug exit back to the run loop), the guest reads the
  // FunctionCallResult. Only guest instructions are counted.
  it('simpleguest: calls that call the host stay under their ceilings', () => {
    const n = measure('simpleguest', [
      ['Add', 'Add', 'Int', [P.Int(2), P.Int(3)], 5],
      ['GuestMethod1', 'GuestMethod1', 'Int', [P.String('x')], 'Hello from GuestFunction1, x'.length],
      ['PrintOutput', 'PrintOutput', 'Int', [P.String('hi\n')], 3],
      ['RoundTripHostString', 'RoundTripHostString', 'String', [P.String('abc')], 'abc'],
    ]);
    for (const [label, ceiling] of Object.entries(CEILINGS.hostCalls)) {
      expect(n[label], label).toBeGreaterThan(0);
      expect(n[label], label).toBeLessThan(ceiling);
    }
  });

  it('dummyguest: init and a call stay under their ceilings', () => {
    const n = measure('dummyguest', [['call', 'AnyName', 'Void', []]]);
    expect(n.init).toBeGreaterThan(0);
    expect(n.init).toBeLessThan(CEILINGS.dummyguest.init);
    expect(n.call).toBeLessThan(CEILINGS.dummyguest.call);
  });
});
