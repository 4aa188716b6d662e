// The forward flatbuffer writer of the host's FunctionCalls: front to back into one reused
// buffer with a DataView, no flatbuffers.Builder and no allocation per message once the
// buffer has grown to fit.
//
// Every vtable has the bytes flatbuffers.Builder (force-defaults) gives it, so the guest
// SDK's reader takes its fast path on these messages (host_layout_call_,
// guests/sdk/src/flatbuf_read.h); tables, strings and vectors are laid out in order, each
// after the vtable it uses (the order of the guest SDK's own writer, flatbuf_write.h):
//
//   0   u32 size prefix, u32 root uoffset (-> 20)
//   8   FunctionCall vtable: 12, 16, function_name@12, parameters@8, call_type@7, return_type@6
//   20  FunctionCall table: soffset 12, two zero bytes, return type, call type,
//       parameters (-> vec), function_name (-> 36)
//   36  function_name: u32 length, UTF-8 bytes, NUL, zeros up to a multiple of 4 (vec)
//   vec u32 count, one uoffset per parameter
//   then per parameter: a zero byte if needed for 2-alignment, the Parameter vtable
//   (8, 12, value_type@11, value@4), two zero bytes if needed for 4-alignment, the Parameter
//   table (soffset, value uoffset, three zero bytes, the ParameterValue tag), the value
//   table's vtable (6, table size, value@4; a Bool's value@7), two zero bytes, the value
//   table (8-byte values 8-aligned), a string's or vector's u32 length and bytes (a string
//   NUL-terminated);
//   zeros up to a multiple of 8.
//
// These are valid flatbuffers under schema/hyperlight.fbs (flatc and the generated readers
// decode them: test/unit/codec.test.ts). Every byte of a message is written, padding
// included, so nothing of an earlier, longer message survives in it. Offsets are from the
// size prefix, which lands at an 8-aligned guest address (I/O buffer elements do).
import { ParameterTypeMismatchError, ReturnTypeMismatchError } from './errors.js';
import {
  I32_MAX, I32_MIN, I64_MAX, I64_MIN, U32_MAX, U64_MAX, describeValue, validateTypedValue, type ParameterTypeName, type ReturnTypeName,
  type TypedValue,
} from './values.js';

// Value types in the order of the ParameterValue/ReturnValue union tags (tag = index + 1)
// and of the ParameterType/ReturnType enums (value = index).
export const PARAM_TAG_TYPES: readonly ParameterTypeName[] =
  ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'VecBytes'];
export const RETURN_ENUM_TYPES: readonly ReturnTypeName[] =
  ['Int', 'UInt', 'Long', 'ULong', 'Float', 'Double', 'String', 'Bool', 'Void', 'VecBytes'];

/** Index of each name in `names` (an enum value by name, without indexOf on the hot path). */
const positions = <T extends string>(names: readonly T[]): Readonly<Record<T, number>> =>
  Object.fromEntries(names.map((n, i) => [n, i])) as Record<T, number>;
const PARAM_TYPE = positions(PARAM_TAG_TYPES);
const RETURN_TYPE = positions(RETURN_ENUM_TYPES);

/** The longest string or byte vector a message may carry (the SDK's writers stop at the same length). */
const MAX_BLOB = 0x7fff_fff0;
const utf8 = new TextEncoder();

/** The ReturnType enum value of `t`, or -1 when `t` is not a return type name. */
export function returnTypeCode(t: unknown): number {
  return typeof t === 'string' && Object.hasOwn(RETURN_TYPE, t) ? RETURN_TYPE[t as ReturnTypeName] : -1;
}

/**
 * One sandbox's writer: `bytes[0, length)` is the last message written, valid until the
 * next write on this instance (push it into an I/O buffer, or copy it, first).
 */
export class WireWriter {
  bytes = new Uint8Array(1024);
  #view = new DataView(this.bytes.buffer);
  length = 0;

  /** Makes room for `n` bytes at `at` (keeping what is written before it). */
  #room(at: number, n: number): void {
    if (at + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < at + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, at));
    this.bytes = grown;
    this.#view = new DataView(grown.buffer);
  }

  /**
   * Writes a size-prefixed FunctionCall; returns its length. `returnType` is the ReturnType
   * code (returnTypeCode), `callType` 1 (guest) or 2 (host). Each argument must already be
   * validated (validateTypedValue): the writer trusts its type and range.
   */
  functionCall(name: string, args: readonly TypedValue[], callType: number, returnType: number): number {
    const nameEnd = this.#blob(40, name, true);
    const nameLen = nameEnd - 40;
    const vec = (nameEnd + 1 + 3) & ~3; // the NUL, then zeros up to a multiple of 4
    this.#room(nameEnd, vec + 4 + 4 * args.length - nameEnd);
    const b = this.bytes;
    const v = this.#view;
    b.fill(0, nameEnd, vec);
    v.setUint32(4, 16, true); // root -> 20 (the size prefix comes last)
    v.setUint32(8, 0x0010_000c, true); // vtable: 12 bytes, table 16 bytes
    v.setUint32(12, 0x0008_000c, true); // function_name@12, parameters@8
    v.setUint32(16, 0x0006_0007, true); // function_call_type@7, expected_return_type@6
    v.setInt32(20, 12, true); // soffset to the vtable
    v.setUint32(24, (returnType << 16) | (callType << 24), true); // two zero bytes, return type, call type
    v.setUint32(28, vec - 28, true); // parameters -> vec
    v.setUint32(32, 4, true); // function_name -> 36
    v.setUint32(36, nameLen, true);
    v.setUint32(vec, args.length, true);
    let pos = vec + 4 + 4 * args.length;
    for (let i = 0; i < args.length; i++) pos = this.#parameter(vec + 4 + 4 * i, pos, args[i]!);
    return this.#finish(pos);
  }

  /** Appends one Parameter (its vtable, table and value table) at `pos`; `entry` is its vector slot. Returns the new end. */
  #parameter(entry: number, pos: number, arg: TypedValue): number {
    const vt = (pos + 1) & ~1;
    const t = (vt + 8 + 3) & ~3;
    const vv = t + 12; // the value table's vtable
    this.#room(pos, vv + 24 - pos);
    const b = this.bytes;
    let v = this.#view;
    if (vt !== pos) b[pos] = 0;
    v.setUint32(vt, 0x000c_0008, true); // vtable 8, table 12
    v.setUint32(vt + 4, 0x0004_000b, true); // value_type@11, value@4
    if (t !== vt + 8) v.setUint16(vt + 8, 0, true);
    v.setInt32(t, t - vt, true);
    v.setUint32(t + 8, (PARAM_TYPE[arg.type] + 1) << 24, true); // three zero bytes, the ParameterValue tag
    v.setUint32(entry, t - entry, true);
    let table = vv + 8;
    let end: number;
    switch (arg.type) {
      case 'Long': case 'ULong': case 'Double': {
        v.setUint32(vv, 0x000c_0006, true); // vtable 6, table 12
        v.setUint32(vv + 4, 0x0000_0004, true); // value@4, two zero bytes
        if ((vv & 4) === 0) { // the value 8-aligned
          v.setUint32(table, 0, true);
          table += 4;
        }
        v.setInt32(table, table - vv, true);
        if (arg.type === 'Double') v.setFloat64(table + 4, arg.value, true);
        else if (arg.type === 'Long') v.setBigInt64(table + 4, arg.value, true);
        else v.setBigUint64(table + 4, arg.value, true);
        end = table + 12;
        break;
      }
      case 'String': case 'VecBytes': {
        v.setUint32(vv, 0x0008_0006, true); // vtable 6, table 8
        v.setUint32(vv + 4, 0x0000_0004, true); // value@4, two zero bytes
        v.setInt32(table, 8, true);
        v.setUint32(table + 4, 4, true); // value -> the length at vv + 16
        end = this.#blob(vv + 20, arg.value, arg.type === 'String');
        v = this.#view; // #blob may have grown the buffer
        v.setUint32(vv + 16, end - (vv + 20), true);
        if (arg.type === 'String') this.bytes[end++] = 0;
        break;
      }
      case 'Bool':
        v.setUint32(vv, 0x0008_0006, true);
        v.setUint32(vv + 4, 0x0000_0007, true); // value@7
        v.setInt32(table, 8, true);
        v.setUint32(table + 4, arg.value ? 1 << 24 : 0, true);
        end = vv + 16;
        break;
      default:
        v.setUint32(vv, 0x0008_0006, true);
        v.setUint32(vv + 4, 0x0000_0004, true);
        v.setInt32(table, 8, true);
        if (arg.type === 'Float') v.setFloat32(table + 4, arg.value, true);
        else v.setUint32(table + 4, arg.value >>> 0, true);
        end = vv + 16;
    }
    v.setUint32(t + 4, table - (t + 4), true);
    return end;
  }

  /**
   * Writes a string's UTF-8 (or a byte vector) at `at`; returns where it ends. Short ASCII
   * strings are written code unit by code unit (cheaper than TextEncoder for names and
   * small arguments).
   */
  #blob(at: number, s: string | Uint8Array, isString: boolean): number {
    if (!isString) {
      const bytes = s as Uint8Array;
      if (bytes.length > MAX_BLOB) throw new ParameterTypeMismatchError(`a byte vector of ${bytes.length} bytes exceeds the wire limit`);
      this.#room(at, bytes.length + 8);
      this.bytes.set(bytes, at);
      return at + bytes.length;
    }
    const str = s as string;
    const n = str.length;
    if (n > MAX_BLOB / 3) throw new ParameterTypeMismatchError(`a string of length ${n} exceeds the wire limit`);
    this.#room(at, 3 * n + 8);
    const b = this.bytes;
    let i = 0;
    for (; i < n; i++) {
      const c = str.charCodeAt(i);
      if (c >= 0x80) break;
      b[at + i] = c;
    }
    if (i === n) return at + n;
    const { written } = utf8.encodeInto(str.slice(i), b.subarray(at + i));
    return at + i + written;
  }

  /** Pads to a multiple of 8 with zeros, sets the size prefix; returns the length. */
  #finish(pos: number): number {
    const end = (pos + 7) & ~7;
    this.#room(pos, end - pos);
    this.bytes.fill(0, pos, end);
    this.#view.setUint32(0, end - 4, true);
    this.length = end;
    return end;
  }
}

/**
 * Whether `v` is a TypedValue whose value fits its type, without allocating: the common case
 * of validateTypedValue, which callers run only when this says no (for its error).
 */
function fits(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false;
  const x = (v as { value?: unknown }).value;
  switch ((v as { type?: unknown }).type) {
    case 'Int': return typeof x === 'number' && Number.isInteger(x) && x >= I32_MIN && x <= I32_MAX;
    case 'UInt': return typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= U32_MAX;
    case 'Long': return typeof x === 'bigint' && x >= I64_MIN && x <= I64_MAX;
    case 'ULong': return typeof x === 'bigint' && x >= 0n && x <= U64_MAX;
    case 'Float': return typeof x === 'number' && (!Number.isFinite(x) || Number.isFinite(Math.fround(x)));
    case 'Double': return typeof x === 'number';
    case 'String': return typeof x === 'string' && !hasLoneSurrogate(x);
    case 'Bool': return typeof x === 'boolean';
    case 'VecBytes': return x instanceof Uint8Array;
    default: return false;
  }
}

/** Whether `s` has a UTF-16 surrogate without its pair (it has no UTF-8 encoding). */
function hasLoneSurrogate(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    if (c >= 0xdc00) return true; // a low surrogate first
    const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
    if (d < 0xdc00 || d > 0xdfff) return true;
    i++;
  }
  return false;
}

/** The checks encodeFunctionCall makes before writing (with validateTypedValue's errors). */
export function checkFunctionCall(name: unknown, args: readonly TypedValue[], callType: unknown, returnType: unknown,
  maxParameters: number): void {
  if (args.length > maxParameters) {
    throw new ParameterTypeMismatchError(`${args.length} arguments exceed the limit of ${maxParameters}`);
  }
  if (typeof name !== 'string') throw new ParameterTypeMismatchError(`function name must be a string, got ${describeValue(name)}`);
  if (returnTypeCode(returnType) < 0) throw new ParameterTypeMismatchError(`unknown return type ${describeValue(returnType)}`);
  if (callType !== 'guest' && callType !== 'host') {
    throw new ParameterTypeMismatchError(`call type must be 'guest' or 'host', got ${describeValue(callType)}`);
  }
  for (let i = 0; i < args.length; i++) {
    if (!fits(args[i])) validateTypedValue(args[i], ParameterTypeMismatchError);
  }
  if (hasLoneSurrogate(name)) throw new ParameterTypeMismatchError('the function name contains a lone UTF-16 surrogate, which has no UTF-8 encoding');
}

/** The check encodeFunctionCallResult makes on a value before writing it. */
export function checkReturnValue(value: TypedValue | undefined): void {
  if (value !== undefined && !fits(value)) validateTypedValue(value, ReturnTypeMismatchError);
}
