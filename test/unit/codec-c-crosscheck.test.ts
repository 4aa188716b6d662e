// The TypeScript codec against the guest SDK's C flatbuffer code, both directions: TS-built
// FunctionCalls decoded by C, C-built FunctionCallResults decoded by TS (via guests/tools/fbtool).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WireCodec } from '../../src/sandbox/codec.js';
import { ParameterValue as P, type TypedValue } from '../../src/sandbox/values.js';

let dir: string;
let fbtool: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlts-fbtool-'));
  fbtool = join(dir, 'fbtool');
  execFileSync('gcc', ['-O1', '-iquote', 'guests/sdk/include', '-o', fbtool, 'guests/tools/fbtool.c', 'guests/sdk/src/flatbuf.c']);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const f32bits = (x: number): string => String(new Uint32Array(new Float32Array([x]).buffer)[0]);
const f64bits = (x: number): string => String(new BigUint64Array(new Float64Array([x]).buffer)[0]);

describe('TS encodes a FunctionCall, C decodes it', () => {
  const codec = new WireCodec();
  it('carries every parameter type at its boundaries', () => {
    const args: TypedValue[] = [
      P.Int(-0x8000_0000), P.UInt(0xffff_ffff), P.Long(-(1n << 63n)), P.ULong((1n << 64n) - 1n),
      P.Float(1.5), P.Double(-0.1), P.String('héllo ✓'), P.Bool(true), P.VecBytes(Uint8Array.of(0, 1, 255)),
    ];
    const bytes = codec.encodeFunctionCall('PrintElevenArgs', args, 'guest', 'Int');
    const out = JSON.parse(execFileSync(fbtool, ['decode-call'], { input: bytes, encoding: 'utf8' })) as unknown;
    expect(out).toEqual({
      name: 'PrintElevenArgs', type: 1, ret: 'Int',
      params: [
        { t: 'Int', v: -0x8000_0000 }, { t: 'UInt', v: 0xffff_ffff },
        { t: 'Long', v: '-9223372036854775808' }, { t: 'ULong', v: '18446744073709551615' },
        { t: 'Float', v: f32bits(1.5) }, { t: 'Double', v: f64bits(-0.1) },
        { t: 'String', v: 'héllo ✓' }, { t: 'Bool', v: true }, { t: 'VecBytes', v: '0001ff' },
      ],
    });
  });

  it('carries a host call with no parameters', () => {
    const bytes = codec.encodeFunctionCall('NoOp', [], 'host', 'Void');
    const out = JSON.parse(execFileSync(fbtool, ['decode-call'], { input: bytes, encoding: 'utf8' })) as unknown;
    expect(out).toEqual({ name: 'NoOp', type: 2, ret: 'Void', params: [] });
  });
});

describe('C encodes a FunctionCallResult, TS decodes it', () => {
  const codec = new WireCodec();
  const decode = (args: string[]): unknown => codec.decodeFunctionCallResult(new Uint8Array(execFileSync(fbtool, args)));
  it.each([
    [['Int', '-2147483648'], P.Int(-2147483648)],
    [['UInt', '4294967295'], P.UInt(4294967295)],
    [['Long', '-9223372036854775808'], P.Long(-(1n << 63n))],
    [['ULong', '18446744073709551615'], P.ULong((1n << 64n) - 1n)],
    [['Float', f32bits(-2.5)], P.Float(-2.5)],
    [['Double', f64bits(1e300)], P.Double(1e300)],
    [['String', 'ünï'], P.String('ünï')],
    [['Bool', 'false'], P.Bool(false)],
    [['VecBytes', 'deadbeef'], P.VecBytes(Uint8Array.of(0xde, 0xad, 0xbe, 0xef))],
  ] as const)('%j', (args, expected) => {
    expect(decode(['encode-result', ...args])).toEqual({ ok: true, value: expected });
  });

  it('Void and GuestError', () => {
    expect(decode(['encode-result', 'Void'])).toEqual({ ok: true, value: undefined });
    expect(decode(['encode-error', '17', 'host exploded'])).toEqual({ ok: false, code: 17, message: 'host exploded' });
  });

  it('a C-built FunctionCall (host call) decodes in TS', () => {
    const bytes = new Uint8Array(execFileSync(fbtool, ['encode-call', 'HostAdd', '2', 'Int', 'Int', '40', 'Int', '2']));
    expect(codec.decodeFunctionCall(bytes)).toEqual({
      name: 'HostAdd', callType: 'host', returnType: 'Int', args: [P.Int(40), P.Int(2)],
    });
  });
});
