// The public value types (ParameterType, ReturnType, TypedValue, ParameterValue) and plain-JS mapping; no wire encoding here.
import { ConfigInvalidError, type HyperlightError } from '../errors.js';
import { ParameterTypeMismatchError, ReturnTypeMismatchError } from './errors.js';

/** Names of the parameter types. */
export type ParameterTypeName =
  'Int' | 'UInt' | 'Long' | 'ULong' | 'Float' | 'Double' | 'String' | 'Bool' | 'VecBytes';
/** Names of the return types: the parameter types plus `Void`. */
export type ReturnTypeName = ParameterTypeName | 'Void';

/** Enum-like object: `ParameterType.Int === 'Int'`, so the enum and its name are interchangeable. */
export const ParameterType = Object.freeze({
  Int: 'Int', UInt: 'UInt', Long: 'Long', ULong: 'ULong', Float: 'Float', Double: 'Double',
  String: 'String', Bool: 'Bool', VecBytes: 'VecBytes',
} as const satisfies { [K in ParameterTypeName]: K });
export type ParameterType = ParameterTypeName;

/** Enum-like object: `ReturnType.Void === 'Void'`. */
export const ReturnType = Object.freeze({
  ...ParameterType, Void: 'Void',
} as const satisfies { [K in ReturnTypeName]: K });
export type ReturnType = ReturnTypeName;

/** A value tagged with its wire type. Int/UInt/Float/Double are numbers, Long/ULong bigints. */
export type TypedValue =
  | { type: 'Int'; value: number }
  | { type: 'UInt'; value: number }
  | { type: 'Long'; value: bigint }
  | { type: 'ULong'; value: bigint }
  | { type: 'Float'; value: number }
  | { type: 'Double'; value: number }
  | { type: 'String'; value: string }
  | { type: 'Bool'; value: boolean }
  | { type: 'VecBytes'; value: Uint8Array };

/** The TypedValue variant of one type name. */
export type TypedValueOf<T extends ParameterTypeName> = Extract<TypedValue, { type: T }>;

/** What `toPlain` returns: the plain JS value of a TypedValue, `undefined` for Void. */
export type PlainValue = number | bigint | string | boolean | Uint8Array | undefined;

/** The plain JS type of each type name: what a call returns and a host function receives. */
export interface PlainTypes {
  Int: number; UInt: number; Long: bigint; ULong: bigint; Float: number; Double: number;
  String: string; Bool: boolean; VecBytes: Uint8Array; Void: undefined;
}

/** The plain JS type of one type name: `PlainOf<'Int'>` is `number`, `PlainOf<'Void'>` `undefined`. */
export type PlainOf<T extends ReturnTypeName> = PlainTypes[T];

/** The plain JS argument tuple of a parameter type list: `PlainArgs<['Int', 'String']>` is `[number, string]`. */
export type PlainArgs<P extends readonly ParameterTypeName[]> = { -readonly [K in keyof P]: PlainTypes[P[K]] };

/** What `call()` accepts as one argument: a plain value it maps (see fromPlain) or an explicit ParameterValue. */
export type CallArgument = number | bigint | string | boolean | Uint8Array | TypedValue;

const PARAMETER_TYPE_NAMES: readonly ParameterTypeName[] = Object.keys(ParameterType) as ParameterTypeName[];
const RETURN_TYPE_NAMES: readonly ReturnTypeName[] = Object.keys(ReturnType) as ReturnTypeName[];

export const I32_MIN = -0x8000_0000;
export const I32_MAX = 0x7fff_ffff;
export const U32_MAX = 0xffff_ffff;
export const I64_MIN = -(1n << 63n);
export const I64_MAX = (1n << 63n) - 1n;
export const U64_MAX = (1n << 64n) - 1n;

const LONE_SURROGATE = /\p{Cs}/u;

/** A short description of a value of any type, for error messages. */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'bigint': return `bigint ${v}n`;
    case 'number': return `number ${Object.is(v, -0) ? '-0' : String(v)}`;
    case 'string': return v.length > 40 ? `string of length ${v.length}` : `string ${JSON.stringify(v)}`;
    case 'boolean': return `boolean ${v}`;
    case 'undefined': return 'undefined';
    case 'function': return 'function';
    case 'symbol': return 'symbol';
    default: {
      const ctor = (v as { constructor?: { name?: unknown } }).constructor?.name;
      return typeof ctor === 'string' && ctor !== 'Object' ? `object ${ctor}` : 'object';
    }
  }
}

/**
 * Checks `v` against `type` and returns the normalised wire value, or a string saying why it
 * does not fit. Int/UInt turn -0 into 0; Float rounds to the nearest f32 (Math.fround);
 * Long/ULong accept only bigints unless `numbersForBigints` (then also safe integers).
 */
function check(type: ParameterTypeName, v: unknown, numbersForBigints: boolean): TypedValue | string {
  switch (type) {
    case 'Int':
      if (typeof v === 'number' && Number.isInteger(v) && v >= I32_MIN && v <= I32_MAX) {
        return { type, value: v + 0 };
      }
      return `Int expects an integer in [${I32_MIN}, ${I32_MAX}], got ${describeValue(v)}`;
    case 'UInt':
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX) {
        return { type, value: v + 0 };
      }
      return `UInt expects an integer in [0, ${U32_MAX}], got ${describeValue(v)}`;
    case 'Long': {
      const b = numbersForBigints && typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
      if (typeof b === 'bigint' && b >= I64_MIN && b <= I64_MAX) return { type, value: b };
      return `Long expects a bigint in [${I64_MIN}, ${I64_MAX}], got ${describeValue(v)}`;
    }
    case 'ULong': {
      const b = numbersForBigints && typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : v;
      if (typeof b === 'bigint' && b >= 0n && b <= U64_MAX) return { type, value: b };
      return `ULong expects a bigint in [0, ${U64_MAX}], got ${describeValue(v)}`;
    }
    case 'Float': {
      if (typeof v !== 'number') return `Float expects a number, got ${describeValue(v)}`;
      const f = Math.fround(v);
      if (Number.isFinite(v) && !Number.isFinite(f)) {
        return `Float expects a number within the f32 range (about ±3.4e38), got ${describeValue(v)}`;
      }
      return { type, value: f };
    }
    case 'Double':
      if (typeof v === 'number') return { type, value: v };
      return `Double expects a number, got ${describeValue(v)}`;
    case 'String':
      if (typeof v !== 'string') return `String expects a string, got ${describeValue(v)}`;
      if (LONE_SURROGATE.test(v)) return 'String contains a lone UTF-16 surrogate, which has no UTF-8 encoding';
      return { type, value: v };
    case 'Bool':
      if (typeof v === 'boolean') return { type, value: v };
      return `Bool expects a boolean, got ${describeValue(v)}`;
    case 'VecBytes':
      if (v instanceof Uint8Array) return { type, value: v };
      return `VecBytes expects a Uint8Array, got ${describeValue(v)}`;
  }
}

function build<T extends ParameterTypeName>(type: T, v: unknown): TypedValueOf<T> {
  const r = check(type, v, false);
  if (typeof r === 'string') throw new ParameterTypeMismatchError(r);
  return r as TypedValueOf<T>;
}

/**
 * Builders of explicit values; each validates and throws ParameterTypeMismatchError when the
 * value does not fit: Int an integer in i32, UInt an integer in u32, Long a bigint in i64,
 * ULong a bigint in u64, Float/Double a number (Float is stored as f32: the value is rounded
 * with Math.fround, NaN and ±Infinity pass, a finite value beyond the f32 range is rejected),
 * String a string without lone surrogates (it travels as UTF-8; an embedded NUL reaches a C
 * guest as the end of its string), Bool a boolean, VecBytes a Uint8Array (not copied: the
 * value aliases the caller's bytes until it is encoded).
 */
export const ParameterValue = Object.freeze({
  Int: (value: number): TypedValueOf<'Int'> => build('Int', value),
  UInt: (value: number): TypedValueOf<'UInt'> => build('UInt', value),
  Long: (value: bigint): TypedValueOf<'Long'> => build('Long', value),
  ULong: (value: bigint): TypedValueOf<'ULong'> => build('ULong', value),
  Float: (value: number): TypedValueOf<'Float'> => build('Float', value),
  Double: (value: number): TypedValueOf<'Double'> => build('Double', value),
  String: (value: string): TypedValueOf<'String'> => build('String', value),
  Bool: (value: boolean): TypedValueOf<'Bool'> => build('Bool', value),
  VecBytes: (value: Uint8Array): TypedValueOf<'VecBytes'> => build('VecBytes', value),
});

/** Whether `v` has the shape of a TypedValue (a known `type` and a `value` key); not validated. */
export function isTypedValue(v: unknown): v is TypedValue {
  if (typeof v !== 'object' || v === null || v instanceof Uint8Array) return false;
  const t = (v as { type?: unknown }).type;
  return typeof t === 'string' && (PARAMETER_TYPE_NAMES as readonly string[]).includes(t) && 'value' in v;
}

/**
 * Checks that `v` is a TypedValue whose value fits its type (for values made by hand rather
 * than by the builders); throws `Err` (ParameterTypeMismatchError by default) otherwise.
 */
export function validateTypedValue(
  v: unknown, Err: new (message: string) => HyperlightError = ParameterTypeMismatchError,
): asserts v is TypedValue {
  if (!isTypedValue(v)) throw new Err(`not a typed value: ${describeValue(v)}`);
  const r = check(v.type, v.value, false);
  if (typeof r === 'string') throw new Err(r);
}

/**
 * Maps a plain JS value to a TypedValue: string -> String, boolean -> Bool, bigint -> Long when
 * in i64 else ULong when in u64, Uint8Array -> VecBytes, number -> Int when an integer in i32
 * (-0 becomes Int 0), any other number (fractions, NaN, ±Infinity, large integers) -> Double.
 * A TypedValue passes through after validation. Anything else throws ParameterTypeMismatchError.
 */
export function fromPlain(v: unknown): TypedValue {
  switch (typeof v) {
    case 'string': return build('String', v);
    case 'boolean': return { type: 'Bool', value: v };
    case 'number':
      return Number.isInteger(v) && v >= I32_MIN && v <= I32_MAX
        ? { type: 'Int', value: v + 0 } : { type: 'Double', value: v };
    case 'bigint':
      if (v >= I64_MIN && v <= I64_MAX) return { type: 'Long', value: v };
      if (v >= 0n && v <= U64_MAX) return { type: 'ULong', value: v };
      throw new ParameterTypeMismatchError(`${describeValue(v)} fits neither Long (i64) nor ULong (u64)`);
    default:
      if (v instanceof Uint8Array) return { type: 'VecBytes', value: v };
      if (isTypedValue(v)) return build(v.type, v.value);
      throw new ParameterTypeMismatchError(
        `cannot pass ${describeValue(v)} to a guest: use a string, boolean, number, bigint, Uint8Array or a ParameterValue`);
  }
}

/**
 * Converts a plain value to the declared parameter type `type`, checking that it fits (see
 * ParameterValue). Long/ULong also take safe-integer numbers (exact). A TypedValue of the
 * same type passes through after validation. Throws ParameterTypeMismatchError.
 */
export function coerce(type: ParameterTypeName, v: unknown): TypedValue {
  const r = coerceOrReason(type, v);
  if (typeof r === 'string') throw new ParameterTypeMismatchError(r);
  return r;
}

/**
 * Checks a host function's return value against its declared return type: like `coerce`, and
 * for Void `undefined` or `null` (returns `undefined`). Throws ReturnTypeMismatchError.
 */
export function coerceReturn(type: ReturnTypeName, v: unknown): TypedValue | undefined {
  if (type === 'Void') {
    if (v === undefined || v === null) return undefined;
    throw new ReturnTypeMismatchError(`Void expects undefined, got ${describeValue(v)}`);
  }
  const r = coerceOrReason(type, v);
  if (typeof r === 'string') throw new ReturnTypeMismatchError(r);
  return r;
}

function coerceOrReason(type: ParameterTypeName, v: unknown): TypedValue | string {
  if (isTypedValue(v)) {
    if (v.type !== type) return `expected ${type}, got a ${v.type} value`;
    return check(type, v.value, false);
  }
  return check(type, v, true);
}

/** Hyperlight's lower-case schema names, accepted by the parsers below. */
const HL_NAMES: Readonly<Record<string, ReturnTypeName>> = {
  hlint: 'Int', hluint: 'UInt', hllong: 'Long', hlulong: 'ULong', hlfloat: 'Float',
  hldouble: 'Double', hlstring: 'String', hlbool: 'Bool', hlvecbytes: 'VecBytes',
  hlsizeprefixedbuffer: 'VecBytes', hlvoid: 'Void',
};

function lookupName(name: unknown): ReturnTypeName | undefined {
  if (typeof name !== 'string') return undefined;
  if ((RETURN_TYPE_NAMES as readonly string[]).includes(name)) return name as ReturnTypeName;
  return Object.prototype.hasOwnProperty.call(HL_NAMES, name) ? HL_NAMES[name] : undefined;
}

/**
 * Parses a parameter type name (`'Int'`, `ParameterType.Int`, or Hyperlight's `'hlint'`).
 * Throws ConfigInvalidError naming `field` when given (for signatures being registered),
 * otherwise ParameterTypeMismatchError.
 */
export function parseTypeName(name: unknown, field?: string): ParameterTypeName {
  const t = lookupName(name);
  if (t !== undefined && t !== 'Void') return t;
  const msg = `unknown parameter type ${describeValue(name)}; expected one of ${PARAMETER_TYPE_NAMES.join(', ')}`;
  throw field === undefined ? new ParameterTypeMismatchError(msg) : new ConfigInvalidError(field, msg);
}

/** Parses a return type name (the parameter names plus `'Void'`/`'hlvoid'`); throws like parseTypeName. */
export function parseReturnTypeName(name: unknown, field?: string): ReturnTypeName {
  const t = lookupName(name);
  if (t !== undefined) return t;
  const msg = `unknown return type ${describeValue(name)}; expected one of ${RETURN_TYPE_NAMES.join(', ')}`;
  throw field === undefined ? new ParameterTypeMismatchError(msg) : new ConfigInvalidError(field, msg);
}

/** The plain JS value of a TypedValue (`undefined` for a Void result). */
export function toPlain(v: TypedValue | undefined): PlainValue {
  return v === undefined ? undefined : v.value;
}
