// The flatbuffer codec of the wire protocol: encodes with the generated code, verifies and decodes guest bytes; no I/O buffers here.
//
// Decoding never trusts the guest. Each decoder is a verifying reader for exactly the tables
// of schema/hyperlight.fbs: every position it reads is checked first (size prefix, root
// offset, each table's vtable offset, vtable size, table size and field offsets, every
// string's length, NUL terminator and UTF-8, every vector's length, union tags, enum values,
// required fields). It reads fields directly with a DataView rather than through the
// generated accessors, whose ByteBuffer silently yields 0 past the end; the unit tests check
// that on valid input both agree. The schema is not recursive and the reader follows only
// schema fields, so nesting is at most three tables deep and no input can make it loop; the
// work is linear in the input (parameter lists are capped at MAX_WIRE_PARAMETERS).
// Not checked: alignment (irrelevant to DataView reads) and bytes past the size prefix.
// Every failure is a GuestProtocolError.
import * as flatbuffers from 'flatbuffers';
import { FunctionCallResult } from './fb/function-call-result.js';
import { FunctionCallResultType } from './fb/function-call-result-type.js';
import { FunctionCallType } from './fb/function-call-type.js';
import { GuestError } from './fb/guest-error.js';
import { GuestLogData } from './fb/guest-log-data.js';
import { ReturnValue as FbReturnValue } from './fb/return-value.js';
import { GuestProtocolError, ReturnTypeMismatchError } from './errors.js';
import {
  PARAM_TAG_TYPES, RETURN_ENUM_TYPES, WireWriter, checkFunctionCall, checkReturnValue, returnTypeCode,
} from './wire-writer.js';
import { hlbool } from './fb/hlbool.js';
import { hldouble } from './fb/hldouble.js';
import { hlfloat } from './fb/hlfloat.js';
import { hlint } from './fb/hlint.js';
import { hllong } from './fb/hllong.js';
import { hlsizeprefixedbuffer } from './fb/hlsizeprefixedbuffer.js';
import { hlstring } from './fb/hlstring.js';
import { hluint } from './fb/hluint.js';
import { hlulong } from './fb/hlulong.js';
import { hlvecbytes } from './fb/hlvecbytes.js';
import { hlvoid } from './fb/hlvoid.js';
import { ReturnValueBox } from './fb/return-value-box.js';
import { describeValue, type ParameterTypeName, type PlainValue, type ReturnTypeName, type TypedValue } from './values.js';

/** Who a FunctionCall is for: a guest function (host -> guest) or a host function (guest -> host). */
export type CallType = 'guest' | 'host';

/** A decoded FunctionCall. */
export interface DecodedFunctionCall {
  name: string;
  args: TypedValue[];
  callType: CallType;
  returnType: ReturnTypeName;
}

/** What a FunctionCallResult carries: a value (`undefined` for Void) or a GuestError. */
export type FunctionCallOutcome =
  | { ok: true; value: TypedValue | undefined }
  | { ok: false; code: number; message: string };

/** A decoded GuestLogData. `level` is 0 Trace .. 5 Critical, 6 None (see LOG_LEVEL_NAMES). */
export interface GuestLogRecord {
  message: string;
  source: string;
  level: number;
  caller: string;
  sourceFile: string;
  line: number;
}

/** Names of the LogLevel values, indexed by `GuestLogRecord.level`. */
export const LOG_LEVEL_NAMES: readonly string[] =
  ['Trace', 'Debug', 'Information', 'Warning', 'Error', 'Critical', 'None'];

/** Most parameters one FunctionCall may carry (Hyperlight's host-function limit). */
export const MAX_WIRE_PARAMETERS = 32;


const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // ignoreBOM: keep a leading U+FEFF

/**
 * Writes `s` as a flatbuffer string, byte-identical to Builder.createString. Short ASCII
 * strings (function names, most arguments) are written byte by byte: Builder.createString's
 * TextEncoder call costs more than half of a whole small encode on Node 20.
 */
function createString(b: flatbuffers.Builder, s: string): number {
  const n = s.length;
  if (n <= 256) {
    let i = 0;
    while (i < n && s.charCodeAt(i) < 0x80) i++;
    if (i === n) {
      b.addInt8(0);
      b.startVector(1, n, 1);
      for (let j = n - 1; j >= 0; j--) b.addInt8(s.charCodeAt(j));
      return b.endVector();
    }
  }
  return b.createString(s);
}
const U16_SIGNED_LIMIT = 0x8000;

/** Where a scalar result's value sits in its template (a Bool's byte at + 3); checked by test/unit/codec-c-crosscheck.test.ts. */
export const RESULT_VALUE_AT = 56;
/** The longest template (a Long, ULong or Double result). */
const RESULT_TEMPLATE_MAX = 64;
/** What a Reader or WireCodec holds before its first message (shared: nothing writes through them). */
const NO_BYTES = new Uint8Array(0);
const NO_VIEW = new DataView(NO_BYTES.buffer);

/** Scalar and Void results by type (WireCodec's resultFromTemplate): made once per process, on first use. */
const RESULT_TEMPLATES = new Map<ReturnTypeName, Uint8Array>();

/** The zero value of a scalar type, or undefined for Void (the templates' value). */
function zeroOf(type: ReturnTypeName): TypedValue | undefined {
  switch (type) {
    case 'Long': case 'ULong': return { type, value: 0n };
    case 'Bool': return { type, value: false };
    case 'Int': case 'UInt': case 'Float': case 'Double': return { type, value: 0 };
    default: return undefined;
  }
}

/**
 * A bounds-checked reader over one size-prefixed flatbuffer. Positions are offsets from the
 * start of `bytes` (the size prefix included). Reused across decodes by WireCodec.
 */
class Reader {
  private bytes: Uint8Array = NO_BYTES;
  private view: DataView = NO_VIEW;
  private base = 0;
  private end = 0;
  private what = '';
  /** Length of the last vector found by `vector()`. */
  vectorLength = 0;

  /** Starts reading `bytes`; `view` must cover bytes.buffer from its start. Returns the root table. */
  begin(bytes: Uint8Array, view: DataView, what: string): number {
    this.bytes = bytes;
    this.view = view;
    this.base = bytes.byteOffset;
    this.what = what;
    this.end = 0;
    if (bytes.length < 8) this.fail(`${bytes.length} bytes is too short for a size prefix and a root offset`);
    const size = view.getUint32(this.base, true);
    if (size > bytes.length - 4) this.fail(`size prefix ${size} exceeds the ${bytes.length - 4} bytes that follow it`);
    this.end = 4 + size;
    if (this.end < 8) this.fail(`size prefix ${size} leaves no room for a root offset`);
    const root = 4 + view.getUint32(this.base + 4, true);
    return this.table(root, 'root');
  }

  fail(msg: string): never {
    throw new GuestProtocolError(`malformed ${this.what}: ${msg}`);
  }

  private u16(p: number): number { return this.view.getUint16(this.base + p, true); }
  private u32(p: number): number { return this.view.getUint32(this.base + p, true); }

  /** Verifies the table at `t` (soffset, vtable and inline size in bounds) and returns `t`. */
  table(t: number, name: string): number {
    if (t > this.end - 4) this.fail(`${name} table at ${t} is out of bounds (end ${this.end})`);
    const vt = t - this.view.getInt32(this.base + t, true);
    if (vt < 0 || vt > this.end - 4) this.fail(`${name} vtable at ${vt} is out of bounds`);
    const vtSize = this.u16(vt);
    const tSize = this.u16(vt + 2);
    if (vtSize < 4 || (vtSize & 1) !== 0 || vtSize >= U16_SIGNED_LIMIT || vt + vtSize > this.end) {
      this.fail(`${name} vtable at ${vt} has a bad size ${vtSize}`);
    }
    if (tSize < 4 || tSize >= U16_SIGNED_LIMIT || t + tSize > this.end) {
      this.fail(`${name} table at ${t} has a bad inline size ${tSize}`);
    }
    return t;
  }

  /** Position of field `slot` (width `size`) of the verified table `t`, or 0 when absent. */
  field(t: number, slot: number, size: number): number {
    const vt = t - this.view.getInt32(this.base + t, true);
    const entry = 4 + 2 * slot;
    if (entry + 2 > this.u16(vt)) return 0;
    const fo = this.u16(vt + entry);
    if (fo === 0) return 0;
    if (fo < 4 || fo + size > this.u16(vt + 2)) this.fail(`field ${slot} offset ${fo} lies outside its table at ${t}`);
    return t + fo;
  }

  u8Field(t: number, slot: number): number {
    const p = this.field(t, slot, 1);
    return p === 0 ? 0 : this.bytes[p]!;
  }
  i32Field(t: number, slot: number): number {
    const p = this.field(t, slot, 4);
    return p === 0 ? 0 : this.view.getInt32(this.base + p, true);
  }
  u32Field(t: number, slot: number): number {
    const p = this.field(t, slot, 4);
    return p === 0 ? 0 : this.u32(p);
  }
  i64Field(t: number, slot: number): bigint {
    const p = this.field(t, slot, 8);
    return p === 0 ? 0n : this.view.getBigInt64(this.base + p, true);
  }
  u64Field(t: number, slot: number): bigint {
    const p = this.field(t, slot, 8);
    return p === 0 ? 0n : this.view.getBigUint64(this.base + p, true);
  }
  f32Field(t: number, slot: number): number {
    const p = this.field(t, slot, 4);
    return p === 0 ? 0 : this.view.getFloat32(this.base + p, true);
  }
  f64Field(t: number, slot: number): number {
    const p = this.field(t, slot, 8);
    return p === 0 ? 0 : this.view.getFloat64(this.base + p, true);
  }

  /** Target of the uoffset field `slot`, with at least 4 bytes in bounds, or 0 when absent. */
  private indirect(t: number, slot: number, name: string): number {
    const p = this.field(t, slot, 4);
    if (p === 0) return 0;
    const target = p + this.u32(p);
    if (target > this.end - 4) this.fail(`${name} at ${target} is out of bounds (end ${this.end})`);
    return target;
  }

  /** The sub-table in field `slot` (verified), or 0 when absent. */
  subtable(t: number, slot: number, name: string): number {
    const target = this.indirect(t, slot, name);
    return target === 0 ? 0 : this.table(target, name);
  }

  /** The vector in field `slot`: returns its first element's position and sets
   * `vectorLength`; 0 (and length 0) when absent. */
  vector(t: number, slot: number, elemSize: number, name: string): number {
    const v = this.indirect(t, slot, name);
    if (v === 0) { this.vectorLength = 0; return 0; }
    const n = this.u32(v);
    if (n > (this.end - v - 4) / elemSize) this.fail(`${name} vector at ${v} of ${n} elements overruns the buffer`);
    this.vectorLength = n;
    return v + 4;
  }

  /** Element `i` of a vector of tables starting at `start` (verified). */
  tableAt(start: number, i: number, name: string): number {
    const p = start + 4 * i;
    const target = p + this.u32(p);
    return this.table(target, name);
  }

  /** The string in field `slot`; `undefined` when absent. */
  string(t: number, slot: number, name: string): string | undefined {
    const s = this.indirect(t, slot, name);
    if (s === 0) return undefined;
    const n = this.u32(s);
    if (n > this.end - s - 5) this.fail(`${name} string at ${s} of ${n} bytes overruns the buffer`);
    const start = s + 4;
    if (this.bytes[start + n] !== 0) this.fail(`${name} string at ${s} lacks its NUL terminator`);
    return this.utf8(start, n, name);
  }

  private utf8(start: number, n: number, name: string): string {
    const b = this.bytes;
    if (n <= 64) {
      // Short ASCII strings (names, most messages) are cheaper to build by hand.
      let out = '';
      let i = start;
      for (; i < start + n; i++) {
        const c = b[i]!;
        if (c >= 0x80) break;
        out += String.fromCharCode(c);
      }
      if (i === start + n) return out;
    }
    try {
      return utf8.decode(b.subarray(start, start + n));
    } catch (e) {
      throw new GuestProtocolError(`malformed ${this.what}: ${name} string is not valid UTF-8`, { cause: e });
    }
  }

  /** Copies `n` bytes at `start` out of the buffer (decoded values must not alias guest memory). */
  copy(start: number, n: number): Uint8Array {
    return this.bytes.slice(start, start + n);
  }
}

/** Reads the plain value of the verified value table `t` holding a value of `type` (hlint .. hlvecbytes). */
function readPlain(r: Reader, type: ParameterTypeName, t: number): PlainValue {
  switch (type) {
    case 'Int': return r.i32Field(t, 0);
    case 'UInt': return r.u32Field(t, 0);
    case 'Long': return r.i64Field(t, 0);
    case 'ULong': return r.u64Field(t, 0);
    case 'Float': return r.f32Field(t, 0);
    case 'Double': return r.f64Field(t, 0);
    case 'String': return r.string(t, 0, 'hlstring.value') ?? '';
    case 'Bool': return r.u8Field(t, 0) !== 0;
    case 'VecBytes': {
      const start = r.vector(t, 0, 1, 'hlvecbytes.value');
      return r.copy(start, r.vectorLength);
    }
  }
}

/** Reads the verified value table `t` holding a value of `type` (hlint .. hlvecbytes). */
function readValue(r: Reader, type: ParameterTypeName, t: number): TypedValue {
  return { type, value: readPlain(r, type, t) } as TypedValue;
}

/** Decodes a verified FunctionCall (see the file comment for what is verified). */
function readFunctionCall(r: Reader, root: number): DecodedFunctionCall {
  const name = r.string(root, 0, 'FunctionCall.function_name');
  if (name === undefined) r.fail('the required field function_name is missing');
  const start = r.vector(root, 1, 4, 'FunctionCall.parameters');
  const count = r.vectorLength;
  if (count > MAX_WIRE_PARAMETERS) r.fail(`${count} parameters exceed the limit of ${MAX_WIRE_PARAMETERS}`);
  const args: TypedValue[] = [];
  for (let i = 0; i < count; i++) {
    const p = r.tableAt(start, i, 'Parameter');
    const tag = r.u8Field(p, 0);
    const type = PARAM_TAG_TYPES[tag - 1];
    if (type === undefined) r.fail(`parameter ${i} has ParameterValue tag ${tag}, expected 1..9`);
    const v = r.subtable(p, 1, 'Parameter.value');
    if (v === 0) r.fail(`parameter ${i} lacks its required value`);
    args.push(readValue(r, type, v));
  }
  const ct = r.u8Field(root, 2);
  if (ct !== FunctionCallType.guest && ct !== FunctionCallType.host) {
    r.fail(`function_call_type ${ct} is neither guest (1) nor host (2)`);
  }
  const rt = r.u8Field(root, 3);
  const returnType = RETURN_ENUM_TYPES[rt];
  if (returnType === undefined) r.fail(`expected_return_type ${rt} is not a ReturnType (0..9)`);
  return { name, args, callType: ct === FunctionCallType.guest ? 'guest' : 'host', returnType };
}

/**
 * A decoded FunctionCallResult as plain values, filled in place (WireCodec.decodeResultSlot):
 * `ok` with `type` and `value` (Void: `undefined`), or not `ok` with `code` and `message`.
 */
export interface ResultSlot {
  ok: boolean;
  type: ReturnTypeName;
  value: PlainValue;
  code: number;
  message: string;
}

function readFunctionCallResult(r: Reader, root: number, out: ResultSlot): ResultSlot {
  const tag = r.u8Field(root, 0);
  if (tag !== FunctionCallResultType.ReturnValueBox && tag !== FunctionCallResultType.GuestError) {
    r.fail(`result tag ${tag} is neither ReturnValueBox (1) nor GuestError (2)`);
  }
  const t = r.subtable(root, 1, tag === 1 ? 'ReturnValueBox' : 'GuestError');
  if (t === 0) r.fail('the required field result is missing');
  if (tag === FunctionCallResultType.GuestError) {
    const code = r.u64Field(t, 0);
    if (code > BigInt(Number.MAX_SAFE_INTEGER)) r.fail(`GuestError code ${code} exceeds 2^53 - 1`);
    out.ok = false;
    out.code = Number(code);
    out.message = r.string(t, 1, 'GuestError.message') ?? '';
    out.value = undefined;
    return out;
  }
  const vtag = r.u8Field(t, 0);
  if (vtag < FbReturnValue.hlint || vtag > FbReturnValue.hlsizeprefixedbuffer) {
    r.fail(`ReturnValue tag ${vtag} is not 1..10`);
  }
  const v = r.subtable(t, 1, 'ReturnValueBox.value');
  if (v === 0) r.fail('ReturnValueBox lacks its required value');
  out.ok = true;
  if (vtag === FbReturnValue.hlvoid) {
    out.type = 'Void';
    out.value = undefined;
  } else if (vtag === FbReturnValue.hlsizeprefixedbuffer) {
    const declared = r.i32Field(v, 0);
    const start = r.vector(v, 1, 1, 'hlsizeprefixedbuffer.value');
    if (declared !== r.vectorLength) {
      r.fail(`hlsizeprefixedbuffer.size ${declared} differs from its vector length ${r.vectorLength}`);
    }
    out.type = 'VecBytes';
    out.value = r.copy(start, r.vectorLength);
  } else {
    // Tags 1..8 name the same types as ParameterValue tags 1..8.
    out.type = PARAM_TAG_TYPES[vtag - 1]!;
    out.value = readPlain(r, out.type, v);
  }
  return out;
}

/** The FunctionCallOutcome of a filled slot (allocates; the calls' hot path reads the slot). */
function outcomeOf(slot: ResultSlot): FunctionCallOutcome {
  if (!slot.ok) return { ok: false, code: slot.code, message: slot.message };
  return { ok: true, value: slot.type === 'Void' ? undefined : { type: slot.type, value: slot.value } as TypedValue };
}

const newSlot = (): ResultSlot => ({ ok: false, type: 'Void', value: undefined, code: 0, message: '' });

function readGuestLogData(r: Reader, root: number): GuestLogRecord {
  const level = r.u8Field(root, 2);
  if (level > 6) r.fail(`log level ${level} is not 0..6`);
  return {
    message: r.string(root, 0, 'GuestLogData.message') ?? '',
    source: r.string(root, 1, 'GuestLogData.source') ?? '',
    level,
    caller: r.string(root, 3, 'GuestLogData.caller') ?? '',
    sourceFile: r.string(root, 4, 'GuestLogData.source_file') ?? '',
    line: r.u32Field(root, 5),
  };
}

function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer);
}

/**
 * Verifies and decodes a size-prefixed FunctionCall. Strings are decoded and VecBytes copied,
 * so the result does not alias `bytes`. Throws GuestProtocolError for any malformed input,
 * including a function_call_type of none and more than MAX_WIRE_PARAMETERS parameters.
 */
export function decodeFunctionCall(bytes: Uint8Array): DecodedFunctionCall {
  const r = new Reader();
  return readFunctionCall(r, r.begin(bytes, viewOf(bytes), 'FunctionCall'));
}

/**
 * Verifies and decodes a size-prefixed FunctionCallResult. A VecBytes result travels as
 * hlsizeprefixedbuffer, whose `size` must equal its vector length. A GuestError code above
 * 2^53 - 1 is a GuestProtocolError (Hyperlight's codes are small). Throws GuestProtocolError.
 */
export function decodeFunctionCallResult(bytes: Uint8Array): FunctionCallOutcome {
  const r = new Reader();
  return outcomeOf(readFunctionCallResult(r, r.begin(bytes, viewOf(bytes), 'FunctionCallResult'), newSlot()));
}

/** Verifies and decodes a size-prefixed GuestLogData; absent strings read as ''. Throws GuestProtocolError. */
export function decodeGuestLogData(bytes: Uint8Array): GuestLogRecord {
  const r = new Reader();
  return readGuestLogData(r, r.begin(bytes, viewOf(bytes), 'GuestLogData'));
}

/**
 * Encodes and decodes the wire messages. One instance per sandbox: it reuses one
 * flatbuffers.Builder and one reader, so it is not reentrant. Every encode returns a view of
 * the builder's buffer, valid until the next encode on the same instance (copy it, or push it
 * into an I/O buffer, before encoding again). Encoded tables always carry every scalar field
 * (force-defaults), so -0.0 and other defaults survive the trip.
 */
export class WireCodec {
  /** Made at the first message other than a FunctionCall (a call's host functions' results, tools). */
  #builder: flatbuffers.Builder | undefined;
  readonly #initialSize: number;
  /** Writes FunctionCalls; the Builder writes the other messages. */
  readonly writer = new WireWriter();
  private readonly resultBytes = new Uint8Array(RESULT_TEMPLATE_MAX);
  private readonly resultView = new DataView(this.resultBytes.buffer);
  private readonly reader = new Reader();
  private readonly slot = newSlot();
  private viewBuffer: ArrayBufferLike | undefined;
  private view: DataView = NO_VIEW;

  /** @param initialSize the builder's first buffer size in bytes; it grows as needed and keeps its size. */
  constructor(initialSize = 1024) {
    this.#initialSize = initialSize;
  }

  private get builder(): flatbuffers.Builder {
    return (this.#builder ??= new flatbuffers.Builder(this.#initialSize));
  }

  private start(): flatbuffers.Builder {
    const b = this.builder;
    b.clear();
    b.forceDefaults(true);
    return b;
  }

  /**
   * Encodes a size-prefixed FunctionCall. Each argument is validated (a hand-made TypedValue
   * that does not fit its type throws ParameterTypeMismatchError), as is the count (at most
   * MAX_WIRE_PARAMETERS). The result aliases this codec's buffer until the next encode.
   */
  encodeFunctionCall(name: string, args: readonly TypedValue[], callType: CallType, returnType: ReturnTypeName): Uint8Array {
    const n = this.writeFunctionCall(name, args, callType, returnType);
    return this.writer.bytes.subarray(0, n);
  }

  /**
   * As encodeFunctionCall, without making a view: the message is `writer.bytes[0, n)` for
   * the returned `n` (the calls' hot path pushes it from there).
   */
  writeFunctionCall(name: string, args: readonly TypedValue[], callType: CallType, returnType: ReturnTypeName): number {
    checkFunctionCall(name, args, callType, returnType, MAX_WIRE_PARAMETERS);
    return this.writer.functionCall(name, args, callType === 'guest' ? FunctionCallType.guest : FunctionCallType.host,
      returnTypeCode(returnType));
  }

  /**
   * Encodes a size-prefixed FunctionCallResult: a ReturnValueBox (VecBytes as
   * hlsizeprefixedbuffer, `undefined` as hlvoid) or a GuestError (`code` a non-negative safe
   * integer). An invalid value throws ReturnTypeMismatchError. Aliases this codec's buffers.
   */
  encodeFunctionCallResult(r: FunctionCallOutcome): Uint8Array {
    if (r.ok) {
      checkReturnValue(r.value);
      const fast = this.resultFromTemplate(r.value);
      if (fast !== undefined) return fast;
    }
    return this.buildFunctionCallResult(r);
  }

  /**
   * A scalar or Void result: its type's template (the Builder's bytes for a zero value,
   * which the guest SDK's reader recognises: host_layout_result_) with the value patched
   * in; undefined for String and VecBytes, whose layout depends on their length.
   */
  private resultFromTemplate(value: TypedValue | undefined): Uint8Array | undefined {
    const type = value === undefined ? 'Void' : value.type;
    if (type === 'String' || type === 'VecBytes') return undefined;
    let template = RESULT_TEMPLATES.get(type);
    if (template === undefined) {
      template = this.buildFunctionCallResult({ ok: true, value: zeroOf(type) }).slice();
      RESULT_TEMPLATES.set(type, template);
    }
    const out = this.resultBytes;
    out.set(template);
    const v = this.resultView;
    switch (value?.type) {
      case 'Long': v.setBigInt64(RESULT_VALUE_AT, value.value, true); break;
      case 'ULong': v.setBigUint64(RESULT_VALUE_AT, value.value, true); break;
      case 'Double': v.setFloat64(RESULT_VALUE_AT, value.value, true); break;
      case 'Float': v.setFloat32(RESULT_VALUE_AT, value.value, true); break;
      case 'Bool': out[RESULT_VALUE_AT + 3] = value.value ? 1 : 0; break;
      case 'Int': case 'UInt': v.setUint32(RESULT_VALUE_AT, value.value >>> 0, true); break;
      default: break; // Void
    }
    return out.subarray(0, template.length);
  }

  /** Encodes a FunctionCallResult with the Builder (the value validated already). */
  private buildFunctionCallResult(r: FunctionCallOutcome): Uint8Array {
    const b = this.start();
    let tag: FunctionCallResultType;
    let off: number;
    if (r.ok) {
      const v = r.value;
      let vtag: FbReturnValue;
      let voff: number;
      if (v === undefined) {
        vtag = FbReturnValue.hlvoid;
        hlvoid.starthlvoid(b);
        voff = hlvoid.endhlvoid(b);
      } else if (v.type === 'VecBytes') {
        vtag = FbReturnValue.hlsizeprefixedbuffer;
        voff = hlsizeprefixedbuffer.createhlsizeprefixedbuffer(b, v.value.length, b.createByteVector(v.value));
      } else {
        vtag = PARAM_TAG_TYPES.indexOf(v.type) + 1;
        voff = this.valueTable(v);
      }
      tag = FunctionCallResultType.ReturnValueBox;
      off = ReturnValueBox.createReturnValueBox(b, vtag, voff);
    } else {
      if (!Number.isSafeInteger(r.code) || r.code < 0) {
        throw new ReturnTypeMismatchError(`GuestError code must be a non-negative safe integer, got ${describeValue(r.code)}`);
      }
      const msg = createString(b, String(r.message));
      tag = FunctionCallResultType.GuestError;
      off = GuestError.createGuestError(b, BigInt(r.code), msg);
    }
    b.finishSizePrefixed(FunctionCallResult.createFunctionCallResult(b, tag, off));
    return b.asUint8Array();
  }

  private valueTable(v: TypedValue): number {
    const b = this.builder;
    switch (v.type) {
      case 'Int': return hlint.createhlint(b, v.value);
      case 'UInt': return hluint.createhluint(b, v.value);
      case 'Long': return hllong.createhllong(b, v.value);
      case 'ULong': return hlulong.createhlulong(b, v.value);
      case 'Float': return hlfloat.createhlfloat(b, v.value);
      case 'Double': return hldouble.createhldouble(b, v.value);
      case 'String': return hlstring.createhlstring(b, createString(b, v.value));
      case 'Bool': return hlbool.createhlbool(b, v.value);
      case 'VecBytes': return hlvecbytes.createhlvecbytes(b, b.createByteVector(v.value));
    }
  }

  /** Encodes a size-prefixed GuestLogData (the guest's side; for tests and tools). Aliases the builder's buffer. */
  encodeGuestLogData(log: GuestLogRecord): Uint8Array {
    const b = this.start();
    const message = createString(b, log.message);
    const source = createString(b, log.source);
    const caller = createString(b, log.caller);
    const sourceFile = createString(b, log.sourceFile);
    b.finishSizePrefixed(GuestLogData.createGuestLogData(b, message, source, log.level, caller, sourceFile, log.line));
    return b.asUint8Array();
  }

  private viewFor(bytes: Uint8Array): DataView {
    if (bytes.buffer !== this.viewBuffer) {
      this.viewBuffer = bytes.buffer;
      this.view = new DataView(bytes.buffer);
    }
    return this.view;
  }

  /** As the standalone decodeFunctionCall, reusing this instance's reader and view. */
  decodeFunctionCall(bytes: Uint8Array): DecodedFunctionCall {
    const r = this.reader;
    return readFunctionCall(r, r.begin(bytes, this.viewFor(bytes), 'FunctionCall'));
  }

  /** As the standalone decodeFunctionCallResult, reusing this instance's reader and view. */
  decodeFunctionCallResult(bytes: Uint8Array): FunctionCallOutcome {
    return outcomeOf(this.decodeResultSlot(bytes));
  }

  /**
   * As decodeFunctionCallResult, into this instance's one ResultSlot (overwritten by the
   * next decode): no objects made for a scalar or Void result.
   */
  decodeResultSlot(bytes: Uint8Array): ResultSlot {
    const r = this.reader;
    return readFunctionCallResult(r, r.begin(bytes, this.viewFor(bytes), 'FunctionCallResult'), this.slot);
  }

  /** As the standalone decodeGuestLogData, reusing this instance's reader and view. */
  decodeGuestLogData(bytes: Uint8Array): GuestLogRecord {
    const r = this.reader;
    return readGuestLogData(r, r.begin(bytes, this.viewFor(bytes), 'GuestLogData'));
  }
}
