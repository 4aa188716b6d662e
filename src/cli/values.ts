// Command-line text to typed guest arguments and guest results back to text, for `run`. No guest calls here.
import {
  ParameterValue, type ParameterTypeName, type PlainValue, type ReturnTypeName, type TypedValue,
} from '../index.js';
import { UsageError } from './usage.js';

const PARAMETER_TYPES: readonly ParameterTypeName[] =
  ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'VecBytes'];
const RETURN_TYPES: readonly ReturnTypeName[] = [...PARAMETER_TYPES, 'Void'];

/** A type name, case-insensitive (`int`, `Int`, `VECBYTES`). */
export function parseTypeName(text: string, allowVoid: boolean, usage: string): ReturnTypeName {
  const names = allowVoid ? RETURN_TYPES : PARAMETER_TYPES;
  const found = names.find((n) => n.toLowerCase() === text.trim().toLowerCase());
  if (!found) throw new UsageError(`unknown type ${JSON.stringify(text)}; types: ${names.join(', ')}`, usage);
  return found;
}

const DECIMAL_INT = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
const BIGINT = /^[+-]?(\d+|0x[0-9a-f]+)n$/i;
const HEX_BYTES = /^0x([0-9a-f]{2})*$/i;
const I64_MAX = (1n << 63n) - 1n;
const I64_MIN = -(1n << 63n);

function hexBytes(text: string, usage: string): Uint8Array {
  const digits = text.replace(/^0x/i, '');
  if (!/^([0-9a-f]{2})*$/i.test(digits)) {
    throw new UsageError(`bytes are written as hex with an even number of digits (0x01ff), got ${JSON.stringify(text)}`, usage);
  }
  return Uint8Array.from(digits.match(/../g) ?? [], (h) => parseInt(h, 16));
}

/**
 * The type an untyped argument gets: `true`/`false` Bool; `12n` Long (ULong above i64);
 * `0x` followed by pairs of hex digits VecBytes; a decimal integer Int (outside i32 the
 * call fails with ERR_PARAMETER_TYPE_MISMATCH: write `5000000000n` or use --types);
 * any other decimal number Double; anything else String.
 */
export function inferType(text: string): ParameterTypeName {
  if (text === 'true' || text === 'false') return 'Bool';
  if (BIGINT.test(text)) {
    const v = BigInt(text.slice(0, -1).replace(/^\+/, ''));
    return v > I64_MAX ? 'ULong' : 'Long';
  }
  if (HEX_BYTES.test(text)) return 'VecBytes';
  if (DECIMAL_INT.test(text)) return 'Int';
  if (NUMBER.test(text)) return 'Double';
  return 'String';
}

function integer(text: string, type: string, usage: string): bigint {
  const t = text.trim().replace(/n$/, '').replace(/^\+/, '');
  const negative = t.startsWith('-');
  const body = negative ? t.slice(1) : t;
  if (!/^(\d+|0x[0-9a-f]+)$/i.test(body)) throw new UsageError(`${type} expects an integer, got ${JSON.stringify(text)}`, usage);
  const v = BigInt(body);
  return negative ? -v : v;
}

function float(text: string, type: string, usage: string): number {
  const t = text.trim();
  if (t === 'NaN') return NaN;
  if (/^[+-]?Infinity$/.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
  if (!NUMBER.test(t)) throw new UsageError(`${type} expects a number, got ${JSON.stringify(text)}`, usage);
  return Number(t);
}

/**
 * Parses `text` as a value of `type`. Integers may be decimal or 0x hex (a trailing `n` is
 * allowed); Float/Double also take NaN and ±Infinity; Bool is true/false; VecBytes is hex
 * with or without 0x. Range checks are the library's (ERR_PARAMETER_TYPE_MISMATCH).
 * @throws UsageError when the text is not of the type's form.
 */
export function parseValue(type: ParameterTypeName, text: string, usage: string): TypedValue {
  switch (type) {
    case 'Int': return ParameterValue.Int(Number(integer(text, type, usage)));
    case 'UInt': return ParameterValue.UInt(Number(integer(text, type, usage)));
    case 'Long': return ParameterValue.Long(integer(text, type, usage));
    case 'ULong': return ParameterValue.ULong(integer(text, type, usage));
    case 'Float': return ParameterValue.Float(float(text, type, usage));
    case 'Double': return ParameterValue.Double(float(text, type, usage));
    case 'String': return ParameterValue.String(text);
    case 'Bool':
      if (text !== 'true' && text !== 'false') throw new UsageError(`Bool expects true or false, got ${JSON.stringify(text)}`, usage);
      return ParameterValue.Bool(text === 'true');
    case 'VecBytes': return ParameterValue.VecBytes(hexBytes(text, usage));
  }
}

/** Typed arguments from texts, typed by `types` (one per argument) or inferred. */
export function parseArguments(texts: readonly string[], types: readonly ParameterTypeName[] | undefined,
  usage: string): TypedValue[] {
  if (types && types.length !== texts.length) {
    throw new UsageError(`--types names ${types.length} type(s) for ${texts.length} argument(s)`, usage);
  }
  return texts.map((t, i) => parseValue(types ? types[i]! : inferType(t), t, usage));
}

/**
 * A guest result as one line of text: numbers as JavaScript prints them (-0, NaN,
 * Infinity included), bigints as plain digits (no `n`), booleans true/false, strings as
 * they are, bytes as 0x-prefixed lowercase hex (`0x` when empty); Void as nothing.
 */
export function formatResult(v: PlainValue): string | undefined {
  if (v === undefined) return undefined;
  if (v instanceof Uint8Array) return '0x' + Array.from(v, (b) => b.toString(16).padStart(2, '0')).join('');
  if (typeof v === 'number' && Object.is(v, -0)) return '-0';
  return String(v);
}
