// The TypeScript codec against the guest SDK's C flatbuffer code, both directions: TS-built
// FunctionCalls decoded by C, C-built FunctionCallResults decoded by TS (via guests/tools/fbtool).
// Then the host's hot encoders: FunctionCalls from the forward writer (src/sandbox/wire-writer.ts)
// decode in C to exactly the values sent, for every type, its boundaries and every alignment a
// parameter can land on; scalar and Void FunctionCallResults made from templates are byte for
// byte the flatbuffers Builder's. (That the SDK takes its fast path on both:
// test/unit/guest-flatbuffers-native.test.ts.)
import { execFileSync } from 'node:child_process';
import * as flatbuffers from 'flatbuffers';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FunctionCallResult } from '../../src/sandbox/fb/function-call-result.js';
import { hlbool } from '../../src/sandbox/fb/hlbool.js';
import { hldouble } from '../../src/sandbox/fb/hldouble.js';
import { hlfloat } from '../../src/sandbox/fb/hlfloat.js';
import { hlint } from '../../src/sandbox/fb/hlint.js';
import { hllong } from '../../src/sandbox/fb/hllong.js';
import { hluint } from '../../src/sandbox/fb/hluint.js';
import { hlulong } from '../../src/sandbox/fb/hlulong.js';
import { hlvoid } from '../../src/sandbox/fb/hlvoid.js';
import { ReturnValueBox } from '../../src/sandbox/fb/return-value-box.js';
import { WireCodec } from '../../src/sandbox/codec.js';
import { ParameterValue as P, type ReturnTypeName, type TypedValue } from '../../src/sandbox/values.js';

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

/** A value in fbtool's argument encoding (its header comment). */
function toolArg(v: TypedValue): string {
  switch (v.type) {
    case 'Float': return String(new Uint32Array(new Float32Array([v.value]).buffer)[0]);
    case 'Double': return String(new BigUint64Array(new Float64Array([v.value]).buffer)[0]);
    case 'Bool': return String(v.value);
    case 'VecBytes': return Buffer.from(v.value).toString('hex');
    default: return String(v.value);
  }
}


const VALUES: TypedValue[] = [
  P.Int(-0x8000_0000), P.Int(0), P.Int(0x7fff_ffff), P.UInt(0), P.UInt(0xffff_ffff),
  P.Long(-(1n << 63n)), P.Long(-1n), P.Long((1n << 63n) - 1n), P.ULong(0n), P.ULong((1n << 64n) - 1n),
  P.Float(1.5), P.Float(-0), P.Float(3.4e38), P.Double(-0.1), P.Double(1e300), P.Double(-0),
  P.String(''), P.String('a'), P.String('ab'), P.String('abc'), P.String('abcd'), P.String('héllo ✓ 😀'),
  P.String('x'.repeat(301)), P.Bool(true), P.Bool(false),
  P.VecBytes(new Uint8Array(0)), P.VecBytes(Uint8Array.of(1)), P.VecBytes(Uint8Array.of(0, 1, 255)),
  P.VecBytes(new Uint8Array(513).map((_, i) => i)),
];

/** The JSON fbtool decode-call prints for one parameter (its header comment). */
function toolJson(v: TypedValue): { t: string; v: unknown } {
  switch (v.type) {
    case 'Int': case 'UInt': return { t: v.type, v: v.value };
    case 'Bool': return { t: v.type, v: v.value };
    case 'String': return { t: v.type, v: v.value };
    default: return { t: v.type, v: toolArg(v) };
  }
}

const decodeInC = (bytes: Uint8Array): unknown => JSON.parse(execFileSync(fbtool, ['decode-call'], { input: bytes, encoding: 'utf8' }));

describe('FunctionCall: the guest SDK reads back exactly what was written', () => {
  const codec = new WireCodec();
  it.each(VALUES.map((v, i) => [i, v.type, v] as const))('one parameter, sample %i (%s)', (_i, _t, v) => {
    expect(decodeInC(codec.encodeFunctionCall('Fn', [v], 'guest', 'Int'))).toEqual({ name: 'Fn', type: 1, ret: 'Int', params: [toolJson(v)] });
  });

  it('every parameter after every other (each alignment), both call types, every return type', () => {
    const rets: ReturnTypeName[] = ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'Void', 'VecBytes'];
    for (let shift = 0; shift < 8; shift++) {
      const args = [...VALUES.slice(shift), ...VALUES.slice(0, shift)].slice(0, 32);
      const name = 'N'.repeat(shift + 1);
      const ret = rets[shift % rets.length]!;
      const callType = shift % 2 === 0 ? 'guest' : 'host';
      expect(decodeInC(codec.encodeFunctionCall(name, args, callType, ret)))
        .toEqual({ name, type: callType === 'guest' ? 1 : 2, ret, params: args.map(toolJson) });
    }
  });

  it('no parameters, an empty name and a non-ASCII name', () => {
    for (const name of ['', 'Ünïcode_名前']) {
      expect(decodeInC(codec.encodeFunctionCall(name, [], 'host', 'Void'))).toEqual({ name, type: 2, ret: 'Void', params: [] });
    }
  });
});

/** A FunctionCallResult as the flatbuffers Builder writes it (force-defaults), with the generated code. */
function builderResult(v: TypedValue | undefined): Uint8Array {
  const b = new flatbuffers.Builder(64);
  b.forceDefaults(true);
  let tag: number;
  let off: number;
  switch (v?.type) {
    case undefined: tag = 9; hlvoid.starthlvoid(b); off = hlvoid.endhlvoid(b); break;
    case 'Int': tag = 1; off = hlint.createhlint(b, v.value); break;
    case 'UInt': tag = 2; off = hluint.createhluint(b, v.value); break;
    case 'Long': tag = 3; off = hllong.createhllong(b, v.value); break;
    case 'ULong': tag = 4; off = hlulong.createhlulong(b, v.value); break;
    case 'Float': tag = 5; off = hlfloat.createhlfloat(b, v.value); break;
    case 'Double': tag = 6; off = hldouble.createhldouble(b, v.value); break;
    case 'Bool': tag = 8; off = hlbool.createhlbool(b, v.value); break;
    default: throw new Error(`no template for ${String(v?.type)}`);
  }
  b.finishSizePrefixed(FunctionCallResult.createFunctionCallResult(b, 1, ReturnValueBox.createReturnValueBox(b, tag, off)));
  return b.asUint8Array().slice();
}

describe('FunctionCallResult templates: the Builder\'s bytes', () => {
  const codec = new WireCodec();
  it.each([...VALUES.filter((v) => v.type !== 'String' && v.type !== 'VecBytes').map((v, i) => [i, v.type, v] as const),
    [-1, 'Void', undefined] as const])('sample %i (%s)', (_i, _t, v) => {
    const ours = codec.encodeFunctionCallResult({ ok: true, value: v }).slice();
    expect(ours).toEqual(builderResult(v));
    // and the guest SDK reads the value back
    expect(JSON.parse(execFileSync(fbtool, ['decode-result'], { input: ours, encoding: 'utf8' })))
      .toEqual(v === undefined ? { t: 'Void', v: null } : toolJson(v));
  });

  it('a result after a longer one keeps nothing of it', () => {
    codec.encodeFunctionCallResult({ ok: true, value: P.String('z'.repeat(4000)) }).fill(0xee);
    expect(codec.encodeFunctionCallResult({ ok: true, value: P.Long(5n) }).slice()).toEqual(builderResult(P.Long(5n)));
  });
});
