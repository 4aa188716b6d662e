// Inline messages of the mailbox page (docs/exitless.md "Inline messages"): a call, host call or result whose values are all scalars, as a 40-byte record in the line of the word that announces it; encode and decode only, no thread or call logic.
import {
  MB_FEATURE_INLINE, MB_NAME_MAX, MB_OFF_GUEST_FEATURES, MB_OFF_GUEST_NAME, MB_OFF_GUEST_RECORD, MB_OFF_HOST_FEATURES,
  MB_OFF_HOST_NAME, MB_OFF_HOST_RECORD, MB_REC_MAX_PARAMS, MB_REC_OFF_COUNT, MB_REC_OFF_NAME_LEN, MB_REC_OFF_PTYPES,
  MB_REC_OFF_TYPE, MB_REC_OFF_VALUES,
} from '../sandbox/abi.js';
import { GuestProtocolError } from '../sandbox/errors.js';
import type { ParameterTypeName, ReturnTypeName, TypedValue } from '../sandbox/values.js';
import { PARAM_TAG_TYPES, RETURN_ENUM_TYPES, returnTypeCode } from '../sandbox/wire-writer.js';

/** The type codes a record carries (hl_ParameterType / ReturnType: the scalars; Void only as a value). */
const SCALAR: Readonly<Record<string, number>> = { Int: 0, UInt: 1, Long: 2, ULong: 3, Float: 4, Double: 5, Bool: 7 };
const VOID_CODE = returnTypeCode('Void');
const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });

/** A host call read from the guest record: valid until the next read (its objects are reused). */
export interface InlineHostCall {
  name: string;
  args: TypedValue[];
}

/**
 * One sandbox's inline records. The guest may rewrite its record and name at any time: each
 * field is read exactly once, the name's bytes are copied out once, and what is checked is
 * what is used.
 */
export class InlineRecords {
  readonly #mem: Buffer;
  readonly #view: DataView;
  readonly #base: number;
  /** The name bytes of each call name the host sent (a few names per sandbox). */
  readonly #names = new Map<string, Uint8Array>();
  /** What the host name line holds now (undefined: unknown, write it). */
  #hostName: string | undefined;
  /** The last host function name read, and its bytes: a repeated name is not decoded again. */
  #lastName = '';
  readonly #lastBytes = new Uint8Array(MB_NAME_MAX);
  #lastLength = -1;
  readonly #scratch = new Uint8Array(MB_NAME_MAX);
  /** Reused argument objects, one array per count. */
  readonly #args: { type: ParameterTypeName; value: unknown }[][] =
    Array.from({ length: MB_REC_MAX_PARAMS + 1 }, (_, n) => Array.from({ length: n }, () => ({ type: 'Int' as ParameterTypeName, value: 0 as unknown })));
  readonly #call: InlineHostCall = { name: '', args: [] };

  /** `memory`: the guest memory; `gpa`: the mailbox page. */
  constructor(memory: Uint8Array, gpa: number) {
    this.#mem = Buffer.from(memory.buffer, memory.byteOffset, memory.byteLength);
    this.#view = new DataView(memory.buffer, memory.byteOffset + gpa, 4096);
    this.#base = gpa;
  }

  /** Says that the host takes inline messages (written at each mailbox reset). */
  announce(): void {
    this.#view.setUint32(MB_OFF_HOST_FEATURES, MB_FEATURE_INLINE, true);
    this.#hostName = undefined;
  }

  /** Whether the guest said it understands inline messages (read once by the caller, at start-up). */
  guestTakesInline(): boolean {
    return (this.#view.getUint32(MB_OFF_GUEST_FEATURES, true) & MB_FEATURE_INLINE) !== 0;
  }

  /** The host name line is no longer known to hold the last name (a restore put the page back). */
  forgetName(): void {
    this.#hostName = undefined;
  }

  /**
   * Writes guest call `name(params)` into the host record, if it fits one (at most 4 scalar
   * parameters, a name of 1-120 UTF-8 bytes); false (nothing written) otherwise. `params`
   * are checked TypedValues.
   */
  writeCall(name: string, params: readonly TypedValue[], returnType: ReturnTypeName): boolean {
    if (params.length > MB_REC_MAX_PARAMS) return false;
    for (let i = 0; i < params.length; i++) if (SCALAR[params[i]!.type] === undefined) return false;
    let bytes = this.#names.get(name);
    if (bytes === undefined) {
      bytes = utf8.encode(name);
      if (bytes.length === 0 || bytes.length > MB_NAME_MAX) return false;
      if (this.#names.size >= 64) this.#names.clear();
      this.#names.set(name, bytes);
    }
    const v = this.#view;
    if (this.#hostName !== name) { // an unchanged name line stays in the guest's cache
      this.#mem.set(bytes, this.#base + MB_OFF_HOST_NAME);
      this.#hostName = name;
    }
    const r = MB_OFF_HOST_RECORD;
    v.setUint8(r + MB_REC_OFF_NAME_LEN, bytes.length);
    v.setUint8(r + MB_REC_OFF_COUNT, params.length);
    v.setUint8(r + MB_REC_OFF_TYPE, returnTypeCode(returnType));
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      v.setUint8(r + MB_REC_OFF_PTYPES + i, SCALAR[p.type]!);
      writeScalar(v, r + MB_REC_OFF_VALUES + 8 * i, p);
    }
    return true;
  }

  /**
   * Writes a host function's result into the host record when it is a scalar or Void;
   * false (nothing written) for a String or VecBytes, which go as a FunctionCallResult.
   */
  writeValue(value: TypedValue | undefined): boolean {
    const r = MB_OFF_HOST_RECORD;
    if (value === undefined) {
      this.#view.setUint8(r + MB_REC_OFF_TYPE, VOID_CODE);
      return true;
    }
    const code = SCALAR[value.type];
    if (code === undefined) return false;
    this.#view.setUint8(r + MB_REC_OFF_TYPE, code);
    writeScalar(this.#view, r + MB_REC_OFF_VALUES, value);
    return true;
  }

  /** The host call in the guest record, checked (GuestProtocolError when malformed). */
  readHostCall(): InlineHostCall {
    const v = this.#view;
    const r = MB_OFF_GUEST_RECORD;
    const len = v.getUint8(r + MB_REC_OFF_NAME_LEN);
    const count = v.getUint8(r + MB_REC_OFF_COUNT);
    if (len === 0 || len > MB_NAME_MAX) throw new GuestProtocolError(`inline host call with a ${len}-byte name (1-${MB_NAME_MAX})`);
    if (count > MB_REC_MAX_PARAMS) throw new GuestProtocolError(`inline host call with ${count} parameters (at most ${MB_REC_MAX_PARAMS})`);
    const args = this.#args[count]!;
    for (let i = 0; i < count; i++) {
      const code = v.getUint8(r + MB_REC_OFF_PTYPES + i);
      const type = PARAM_TAG_TYPES[code];
      if (type === undefined || SCALAR[type] === undefined) {
        throw new GuestProtocolError(`inline host call parameter ${i} has type code ${code}, not a scalar`);
      }
      const a = args[i]!;
      a.type = type;
      a.value = readScalar(v, r + MB_REC_OFF_VALUES + 8 * i, type);
    }
    const call = this.#call;
    call.name = this.#name(len);
    call.args = args as TypedValue[];
    return call;
  }

  /** The value in the guest record (a guest call's result), checked. */
  readValue(): { type: ReturnTypeName; value: TypedValue['value'] | undefined } {
    const code = this.#view.getUint8(MB_OFF_GUEST_RECORD + MB_REC_OFF_TYPE);
    const type = RETURN_ENUM_TYPES[code];
    if (type === undefined || (type !== 'Void' && SCALAR[type] === undefined)) {
      throw new GuestProtocolError(`inline result of type code ${code}, not a scalar or Void`);
    }
    return { type, value: type === 'Void' ? undefined : readScalar(this.#view, MB_OFF_GUEST_RECORD + MB_REC_OFF_VALUES, type as ParameterTypeName) as TypedValue['value'] };
  }

  /** The guest name line's first `len` bytes, copied out once, as a string. */
  #name(len: number): string {
    const s = this.#scratch;
    const at = this.#base + MB_OFF_GUEST_NAME;
    this.#mem.copy(s, 0, at, at + len);
    if (len === this.#lastLength) {
      let same = true;
      for (let i = 0; i < len; i++) if (s[i] !== this.#lastBytes[i]) { same = false; break; }
      if (same) return this.#lastName;
    }
    let name: string;
    try {
      name = utf8Decoder.decode(s.subarray(0, len));
    } catch {
      throw new GuestProtocolError('inline host call name is not UTF-8');
    }
    this.#lastBytes.set(s.subarray(0, len));
    this.#lastLength = len;
    this.#lastName = name;
    return name;
  }
}

function writeScalar(v: DataView, at: number, p: TypedValue): void {
  switch (p.type) {
    case 'Int': v.setInt32(at, p.value, true); v.setUint32(at + 4, 0, true); break;
    case 'UInt': v.setUint32(at, p.value, true); v.setUint32(at + 4, 0, true); break;
    case 'Float': v.setFloat32(at, p.value, true); v.setUint32(at + 4, 0, true); break;
    case 'Bool': v.setUint32(at, p.value ? 1 : 0, true); v.setUint32(at + 4, 0, true); break;
    case 'Double': v.setFloat64(at, p.value, true); break;
    case 'Long': v.setBigInt64(at, p.value, true); break;
    case 'ULong': v.setBigUint64(at, p.value, true); break;
    default: throw new TypeError(`not a scalar: ${p.type}`);
  }
}

function readScalar(v: DataView, at: number, type: ParameterTypeName): number | bigint | boolean {
  switch (type) {
    case 'Int': return v.getInt32(at, true);
    case 'UInt': return v.getUint32(at, true);
    case 'Float': return v.getFloat32(at, true);
    case 'Bool': return v.getUint32(at, true) !== 0;
    case 'Double': return v.getFloat64(at, true);
    case 'Long': return v.getBigInt64(at, true);
    default: return v.getBigUint64(at, true);
  }
}
