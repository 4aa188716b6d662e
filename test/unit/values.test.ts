// Unit tests of the public value types: builders, plain-JS mapping, coercion and type names; no encoding.
import { describe, expect, it } from 'vitest';
import {
  ParameterType, ParameterValue, ReturnType, coerce, coerceReturn, fromPlain, isTypedValue,
  parseReturnTypeName, parseTypeName, toPlain, type TypedValue,
} from '../../src/sandbox/values.js';

const mismatch = expect.objectContaining({ code: 'ERR_PARAMETER_TYPE_MISMATCH' });
const retMismatch = expect.objectContaining({ code: 'ERR_RETURN_TYPE_MISMATCH' });
const loose = ParameterValue as unknown as Record<string, (v: unknown) => TypedValue>;

describe('type names', () => {
  it('enum members equal their names', () => {
    expect(ParameterType.Int).toBe('Int');
    expect(ParameterType.VecBytes).toBe('VecBytes');
    expect(ReturnType.Void).toBe('Void');
    expect(ReturnType.Double).toBe('Double');
    expect(Object.keys(ParameterType)).toEqual(['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'VecBytes']);
    expect(Object.keys(ReturnType)).toHaveLength(10);
    expect(Object.isFrozen(ParameterType)).toBe(true);
  });

  it('parse names, enum members and Hyperlight lower-case names', () => {
    expect(parseTypeName('Int')).toBe('Int');
    expect(parseTypeName(ParameterType.ULong)).toBe('ULong');
    expect(parseTypeName('hlvecbytes')).toBe('VecBytes');
    expect(parseReturnTypeName('Void')).toBe('Void');
    expect(parseReturnTypeName('hlvoid')).toBe('Void');
    expect(parseReturnTypeName('hlsizeprefixedbuffer')).toBe('VecBytes');
  });

  it('reject unknown names with the right error', () => {
    expect(() => parseTypeName('Void')).toThrow(mismatch);
    expect(() => parseTypeName('int')).toThrow(mismatch);
    expect(() => parseTypeName(3)).toThrow(/unknown parameter type number 3/);
    expect(() => parseTypeName('toString')).toThrow(mismatch);
    expect(() => parseReturnTypeName('constructor')).toThrow(mismatch);
    expect(() => parseTypeName('Str', 'params[1]'))
      .toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID', field: 'params[1]' }));
    expect(() => parseReturnTypeName(undefined, 'returns'))
      .toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
  });
});

describe('ParameterValue builders', () => {
  it('Int accepts exactly i32 integers', () => {
    expect(ParameterValue.Int(5)).toEqual({ type: 'Int', value: 5 });
    expect(ParameterValue.Int(-2147483648).value).toBe(-2147483648);
    expect(ParameterValue.Int(2147483647).value).toBe(2147483647);
    expect(Object.is(ParameterValue.Int(-0).value, 0)).toBe(true);
    for (const bad of [2147483648, -2147483649, 1.5, NaN, Infinity, '1', 1n, null]) {
      expect(() => loose.Int!(bad), String(bad)).toThrow(mismatch);
    }
    expect(() => ParameterValue.Int(1.5)).toThrow(/Int expects an integer in \[-2147483648, 2147483647\], got number 1.5/);
  });

  it('UInt accepts exactly u32 integers', () => {
    expect(ParameterValue.UInt(0).value).toBe(0);
    expect(ParameterValue.UInt(4294967295).value).toBe(4294967295);
    expect(Object.is(ParameterValue.UInt(-0).value, 0)).toBe(true);
    for (const bad of [-1, 4294967296, 0.5, NaN, 1n]) expect(() => loose.UInt!(bad)).toThrow(mismatch);
  });

  it('Long and ULong accept bigints in range only', () => {
    expect(ParameterValue.Long(-(2n ** 63n)).value).toBe(-(2n ** 63n));
    expect(ParameterValue.Long(2n ** 63n - 1n).value).toBe(2n ** 63n - 1n);
    expect(() => ParameterValue.Long(2n ** 63n)).toThrow(mismatch);
    expect(() => ParameterValue.Long(-(2n ** 63n) - 1n)).toThrow(mismatch);
    expect(() => loose.Long!(5)).toThrow(/Long expects a bigint.*got number 5/);
    expect(ParameterValue.ULong(0n).value).toBe(0n);
    expect(ParameterValue.ULong(2n ** 64n - 1n).value).toBe(2n ** 64n - 1n);
    expect(() => ParameterValue.ULong(2n ** 64n)).toThrow(mismatch);
    expect(() => ParameterValue.ULong(-1n)).toThrow(mismatch);
    expect(() => loose.ULong!(1)).toThrow(mismatch);
  });

  it('Float rounds to f32, keeps NaN, ±0, ±Infinity; rejects finite overflow', () => {
    expect(ParameterValue.Float(0.1).value).toBe(Math.fround(0.1));
    expect(ParameterValue.Float(0.1).value).not.toBe(0.1);
    expect(ParameterValue.Float(NaN).value).toBeNaN();
    expect(Object.is(ParameterValue.Float(-0).value, -0)).toBe(true);
    expect(ParameterValue.Float(-Infinity).value).toBe(-Infinity);
    expect(ParameterValue.Float(3.4028234663852886e38).value).toBe(3.4028234663852886e38);
    expect(() => ParameterValue.Float(1e39)).toThrow(mismatch);
    expect(() => loose.Float!('1')).toThrow(mismatch);
  });

  it('Double keeps every number exactly', () => {
    expect(ParameterValue.Double(0.1).value).toBe(0.1);
    expect(Object.is(ParameterValue.Double(-0).value, -0)).toBe(true);
    expect(ParameterValue.Double(NaN).value).toBeNaN();
    expect(ParameterValue.Double(Number.MAX_VALUE).value).toBe(Number.MAX_VALUE);
    expect(() => loose.Double!(1n)).toThrow(mismatch);
  });

  it('String, Bool and VecBytes', () => {
    expect(ParameterValue.String('').value).toBe('');
    expect(ParameterValue.String('héllo wörld 😀 中文').value).toBe('héllo wörld 😀 中文');
    expect(() => ParameterValue.String('a\uD800b')).toThrow(/lone UTF-16 surrogate/);
    expect(() => loose.String!(5)).toThrow(mismatch);
    expect(ParameterValue.Bool(false)).toEqual({ type: 'Bool', value: false });
    expect(() => loose.Bool!(0)).toThrow(mismatch);
    const big = new Uint8Array(24 * 1024).map((_, i) => i & 0xff);
    expect(ParameterValue.VecBytes(big).value).toBe(big);
    expect(ParameterValue.VecBytes(new Uint8Array(0)).value.length).toBe(0);
    expect(ParameterValue.VecBytes(Buffer.from('x')).type).toBe('VecBytes');
    for (const bad of [new Uint16Array(2), new ArrayBuffer(2), [1, 2], 'ab']) {
      expect(() => loose.VecBytes!(bad)).toThrow(mismatch);
    }
  });
});

describe('fromPlain', () => {
  it('maps each plain JS type', () => {
    expect(fromPlain('hi')).toEqual({ type: 'String', value: 'hi' });
    expect(fromPlain(true)).toEqual({ type: 'Bool', value: true });
    expect(fromPlain(7)).toEqual({ type: 'Int', value: 7 });
    expect(fromPlain(-2147483648)).toEqual({ type: 'Int', value: -2147483648 });
    expect(fromPlain(2147483648)).toEqual({ type: 'Double', value: 2147483648 });
    expect(fromPlain(1.5)).toEqual({ type: 'Double', value: 1.5 });
    expect(fromPlain(NaN).type).toBe('Double');
    expect(fromPlain(-0)).toEqual({ type: 'Int', value: 0 });
    expect(fromPlain(-5n)).toEqual({ type: 'Long', value: -5n });
    expect(fromPlain(2n ** 63n - 1n).type).toBe('Long');
    expect(fromPlain(2n ** 63n)).toEqual({ type: 'ULong', value: 2n ** 63n });
    expect(fromPlain(2n ** 64n - 1n).type).toBe('ULong');
    const bytes = new Uint8Array([1, 2]);
    expect(fromPlain(bytes)).toEqual({ type: 'VecBytes', value: bytes });
    expect(fromPlain(ParameterValue.Float(1.5))).toEqual({ type: 'Float', value: 1.5 });
  });

  it('rejects everything else', () => {
    for (const bad of [2n ** 64n, -(2n ** 63n) - 1n, null, undefined, {}, [], Symbol('s'), () => 1,
      new Float32Array(1), { type: 'Int', value: 1.5 }, { type: 'Nope', value: 1 }]) {
      expect(() => fromPlain(bad)).toThrow(mismatch);
    }
  });
});

describe('coerce and coerceReturn', () => {
  it('coerce checks a plain value against a declared type', () => {
    expect(coerce('Int', 5)).toEqual({ type: 'Int', value: 5 });
    expect(coerce('Long', 5)).toEqual({ type: 'Long', value: 5n });
    expect(coerce('ULong', 2 ** 53 - 1)).toEqual({ type: 'ULong', value: 2n ** 53n - 1n });
    expect(coerce('Float', 0.1).value).toBe(Math.fround(0.1));
    expect(coerce('Int', ParameterValue.Int(3))).toEqual({ type: 'Int', value: 3 });
    expect(() => coerce('Int', 2 ** 31)).toThrow(mismatch);
    expect(() => coerce('Long', 2 ** 53)).toThrow(mismatch);
    expect(() => coerce('ULong', -1)).toThrow(mismatch);
    expect(() => coerce('Int', ParameterValue.UInt(3))).toThrow(/expected Int, got a UInt value/);
    expect(() => coerce('String', 1)).toThrow(mismatch);
  });

  it('coerceReturn throws ReturnTypeMismatchError and handles Void', () => {
    expect(coerceReturn('Int', 42)).toEqual({ type: 'Int', value: 42 });
    expect(coerceReturn('Void', undefined)).toBeUndefined();
    expect(coerceReturn('Void', null)).toBeUndefined();
    expect(() => coerceReturn('Void', 0)).toThrow(retMismatch);
    expect(() => coerceReturn('Int', 'x')).toThrow(retMismatch);
    expect(() => coerceReturn('UInt', -1)).toThrow(retMismatch);
    expect(() => coerceReturn('Bool', 1)).toThrow(retMismatch);
  });
});

describe('toPlain and isTypedValue', () => {
  it('unwraps values and Void', () => {
    expect(toPlain(ParameterValue.Long(3n))).toBe(3n);
    expect(toPlain(undefined)).toBeUndefined();
    expect(isTypedValue(ParameterValue.Bool(true))).toBe(true);
    expect(isTypedValue({ type: 'Int' })).toBe(false);
    expect(isTypedValue(new Uint8Array(1))).toBe(false);
  });
});
