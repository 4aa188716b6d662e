// Type-level tests of the published declarations (dist/src/*.d.ts, through the package's own name): each `@ts-expect-error` line must fail to compile, every other line must compile.
// Checked by test/unit/public-types.test.ts with tsc; nothing here runs.
import {
  AsyncSnapshot, type AsyncSandbox, type ErrorCode, type HyperlightError, MultiUseSandbox, ParameterType, ParameterValue, ReturnType,
  type SandboxPool, Snapshot, type UninitializedSandbox, bundledGuestPath,
} from 'hyperlight-ts';

declare const sb: MultiUseSandbox;
declare const u: UninitializedSandbox;

// call() and callGuestFunctionByName() narrow their result by the return type name.
export const sum: number = sb.call('Add', 'Int', 40, 2);
export const echoed: string = sb.call('Echo', 'String', 'hi');
export const long: bigint = sb.call('EchoI64', 'Long', 5n);
export const flag: boolean = sb.call('EchoBool', ReturnType.Bool, true);
export const bytes: Uint8Array = sb.callGuestFunctionByName('EchoBytes', 'VecBytes', [ParameterValue.VecBytes(new Uint8Array(1))]);
export const nothing: undefined = sb.call('DoNothing', 'Void');
// @ts-expect-error 'Itn' is not a return type name
sb.call('Add', 'Itn', 40, 2);
// @ts-expect-error an Int result is a number, not a string
export const wrong: string = sb.call('Add', 'Int', 40, 2);
// @ts-expect-error a Void result is undefined
export const notVoid: number = sb.callGuestFunctionByName('DoNothing', 'Void');
// @ts-expect-error a plain object is not a call argument
sb.call('Echo', 'String', { text: 'hi' });

// The async API narrows the same way.
declare const asb: AsyncSandbox;
declare const pool: SandboxPool;
export const asyncSum: Promise<number> = asb.call('Add', 'Int', 40, 2);
export const pooled: Promise<string> = pool.callGuestFunctionByName('Echo', 'String', ['hi']);
// @ts-expect-error 'Itn' is not a return type name
void pool.call('Add', 'Itn', 40, 2);
// @ts-expect-error a Long result is a bigint
export const notBig: Promise<number> = asb.call('EchoI64', 'Long', 5n);

// Host functions: parameter types follow `params`, the result follows `returns`.
u.registerHostFunction('HostAdd', { params: ['Int', 'Int'], returns: 'Int' }, (a, b) => a + b);
u.registerHostFunction('HostAdd', { params: [ParameterType.Int, 'Int'], returns: ReturnType.Int }, (a: number, b: number) => a + b);
u.registerHostFunction('HostLen', { params: ['String', 'VecBytes'], returns: 'Long' }, (s, b) => BigInt(s.length + b.length));
u.registerHostFunction('HostNothing', { params: [], returns: 'Void' }, () => undefined);
// Async host functions (for evolveAsync() and pools) return a Promise of the same.
u.registerHostFunction('HostLater', { params: ['Int'], returns: 'Int' }, async (a) => a + 1);
// @ts-expect-error a String parameter is a string, not a number
u.registerHostFunction('HostLen', { params: ['String'], returns: 'Int' }, (s: number) => s);
// @ts-expect-error the inferred parameter is a string: no arithmetic on it
u.registerHostFunction('HostHalf', { params: ['String'], returns: 'Double' }, (s) => s / 2);
// @ts-expect-error a Long result is a bigint (or a safe-integer number), not a string
u.registerHostFunction('HostLong', { params: [], returns: 'Long' }, () => 'x');
// @ts-expect-error 'Strng' is not a parameter type
u.registerHostFunction('HostBad', { params: ['Strng'], returns: 'Int' }, () => 1);
// @ts-expect-error 'Void' is a return type only
u.registerHostFunction('HostBad', { params: ['Void'], returns: 'Int' }, () => 1);

// Bundled guest names are a union, not any string.
export const guest: string = bundledGuestPath('simpleguest');
// @ts-expect-error no bundled guest of that name
bundledGuestPath('simpleguset');

// HyperlightError.code is a union of the stable codes.
export function describe(e: HyperlightError): string {
  switch (e.code) {
    case 'ERR_GUEST_ERROR': return 'guest error';
    case 'ERR_SANDBOX_POISONED': return 'poisoned';
    default: {
      const other: ErrorCode = e.code;
      return other;
    }
  }
}
// @ts-expect-error not one of the codes
export const bogus: ErrorCode = 'ERR_NOPE';

// @internal members are stripped from the published declarations.
// @ts-expect-error `machine` is internal
void sb.machine;

// Sandboxes and snapshots come from the library only (evolve(), fromSnapshot(), snapshot(), load()).
// @ts-expect-error the constructor is private
export const made = new MultiUseSandbox();
// @ts-expect-error the constructor is private
export const forged = new Snapshot();
// @ts-expect-error the constructor is private
export const forgedAsync = new AsyncSnapshot();
export const restoreOptions: Parameters<MultiUseSandbox['restore']>[1] = { reseed: true, allowOtherSandbox: true };
